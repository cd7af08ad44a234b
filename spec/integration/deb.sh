#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# `cpack -G DEB` gives a package that installs everything: after `dpkg -i`, a C program
# builds against the installed header and library through pkg-config and through
# find_package(reactcfg) with no paths given, and runs; the Lua module loads in a plain
# lua5.4; reactcfg-lua runs, `man reactcfg-lua` shows its page and the bash completion
# completes its options. `dpkg -P` (remove and purge) then takes every file away. Needs
# root (exit 77 without).
set -euo pipefail
build=$(cd "$1" && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "deb: skipped: dpkg -i needs root"
  exit 77
fi
if dpkg-query -W -f='${Status}' reactcfg 2>/dev/null | grep -q "ok installed"; then
  echo "deb: skipped: a reactcfg package is installed already; not touching it"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rc-deb.XXXXXX")
installed=0
cleanup() {
  if [[ $installed -eq 1 ]]; then dpkg -P reactcfg >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 \
  || { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/pkg/reactcfg_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$tmp/files"
for f in /usr/include/reactcfg.h /usr/lib/libreactcfg.a /usr/lib/pkgconfig/reactcfg.pc \
         /usr/lib/cmake/reactcfg/reactcfgConfig.cmake /usr/lib/lua/5.4/reactcfg.so \
         /usr/bin/reactcfg-lua /usr/share/man/man1/reactcfg-lua.1 \
         /usr/share/bash-completion/completions/reactcfg-lua \
         /usr/share/doc/reactcfg/SIDECAR.md /usr/share/doc/reactcfg/LICENSE; do
  grep -qx "$f" "$tmp/files" || { echo "deb: $f is not in the package"; exit 1; }
done
grep -q '^/usr/lib/libreactcfg\.so\.0' "$tmp/files"
dpkg-deb -f "$deb" Depends | grep -q 'libuv1'   # dpkg-shlibdeps ran

dpkg -i "$deb" >/dev/null
installed=1

cat > "$tmp/consumer.c" <<'C'
#include <reactcfg.h>
#include <stdio.h>
int main(void) {
  rc_error err;
  rc_engine_t *eng = rc_engine_new(&err);
  if (!eng) return 1;
  int rc = rc_engine_load_policy(eng, "/nonexistent/policy.lua", &err);
  printf("%s %s\n", rc_version(), rc_err_name(rc));
  rc_engine_free(eng);
  return rc == RC_EIO ? 0 : 1;
}
C
# No paths given: the system's pkg-config, linker and loader (ldconfig ran) find it.
cc -o "$tmp/consumer" "$tmp/consumer.c" $(pkg-config --cflags --libs reactcfg)
"$tmp/consumer" | grep -q "EIO"
ldd "$tmp/consumer" | grep -q 'libreactcfg\.so\.0 => /\(usr/\)\?lib/libreactcfg'
cc -o "$tmp/consumer-static" "$tmp/consumer.c" -Wl,-Bstatic -lreactcfg -Wl,-Bdynamic \
  $(pkg-config --static --libs-only-other --libs-only-l reactcfg | sed 's/-lreactcfg//')
"$tmp/consumer-static" | grep -q "EIO"

mkdir -p "$tmp/cm"
cp "$tmp/consumer.c" "$tmp/cm/"
cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(reactcfg REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE reactcfg::reactcfg)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
"$tmp/cm/build/consumer" | grep -q "EIO"

env -u LUA_CPATH -u LUA_CPATH_5_4 lua5.4 -e 'local rc = require "reactcfg"; assert(rc.engine)'
/usr/bin/reactcfg-lua --version | grep -q '^reactcfg-lua '
MANWIDTH=100 man reactcfg-lua 2>/dev/null | grep -q -- '--exec-restart'
bash -c 'source /usr/share/bash-completion/completions/reactcfg-lua
  COMP_WORDS=(reactcfg-lua run policy.lua --exec-r); COMP_CWORD=3; _reactcfg_lua
  [[ "${COMPREPLY[*]}" == "--exec-restart" ]]'

dpkg -P reactcfg >/dev/null
installed=0
while read -r f; do
  if [[ -f $f ]]; then echo "deb: $f is still there after dpkg -P"; exit 1; fi
done < "$tmp/files"
echo "deb: ok"
