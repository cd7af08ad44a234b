#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# run.sh LUA BUSTED SPEC: runs SPEC in a network namespace of its own, whose loopback the
# spec may take down to make every peer vanish without a word (no FIN, no RST), as a
# host that lost power would. Exit 77 (ctest: skipped, said as such) where no namespace
# can be made (not root, or no CAP_SYS_ADMIN).
set -uo pipefail
# The sanitizer runtime an ASan build preloads is for the Lua process only.
preload=${LD_PRELOAD:-}
unset LD_PRELOAD
if ! unshare --net true 2>/dev/null; then
  echo "skipped: no network namespace can be made here (unshare --net)"
  exit 77
fi
export RC_PRELOAD=$preload
exec unshare --net bash -c 'ip link set lo up && LD_PRELOAD=$RC_PRELOAD RC_NETNS=1 exec "$0" "$@"' \
  "$@"
