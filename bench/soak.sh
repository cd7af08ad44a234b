#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# soak.sh: `scripts/bench soak [--minutes N]`: builds reactcfg-lua and the Lua module
# (Release, in build-bench/) and runs bench/soak.lua: N minutes (default 10) of mixed
# sources with random changes, malformed writes and a server restart every 2 minutes,
# the engine in a process of its own (reactcfg-lua --run) whose memory, descriptors and
# threads are sampled. Not part of the default benchmark run nor of the tests (it takes
# minutes by design).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    --minutes=*) minutes=${1#--minutes=}; shift ;;
    -h | --help) echo "usage: scripts/bench soak [--minutes N]"; exit 0 ;;
    *) echo "scripts/bench soak: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "--minutes: a number expected" >&2; exit 2; }
for tool in nginx etcd curl python3 lua5.4; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    { echo "scripts/bench soak: $tool is missing (scripts/setup --test installs it)" >&2; exit 1; }
done
build=$root/build-bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target reactcfg_lua reactcfg-lua \
  >/dev/null
mkdir -p "$build/soak"
echo "# scripts/bench soak --minutes $minutes ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
LUA_CPATH="$build/lua/?.so;;" LUA_PATH="$root/?.lua;;" RC_TEST_TMP="$build/soak" \
  exec lua5.4 bench/soak.lua "$minutes" "$build/reactcfg-lua"
