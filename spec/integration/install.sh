#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# `cmake --install` gives a usable package: a program builds against the installed header
# and library through pkg-config and through find_package(reactcfg), and runs; the Lua
# module loads from the install tree; reactcfg-lua runs.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/reactcfg.h"
test -f "$prefix/lib/pkgconfig/reactcfg.pc" -o -f "$prefix/lib/x86_64-linux-gnu/pkgconfig/reactcfg.pc"
libdir=$(dirname "$(find "$prefix" -name 'libreactcfg.so' | head -1)")
test -f "$libdir/libreactcfg.a"
test -x "$prefix/bin/reactcfg-lua"

cat > "$tmp/consumer.c" <<'C'
#include <reactcfg.h>
#include <stdio.h>
#include <string.h>
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
# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$tmp/consumer" "$tmp/consumer.c" $(pkg-config --cflags --libs reactcfg) -Wl,-rpath,"$libdir"
"$tmp/consumer" | grep -q "EIO"

# find_package(reactcfg)
mkdir -p "$tmp/cm"
cp "$tmp/consumer.c" "$tmp/cm/"
cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(reactcfg REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE reactcfg::reactcfg)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cm/build/consumer" | grep -q "EIO"

# Static linking, both ways, with no flags of the consumer's own: every library the
# archive needs (the C++ runtime of the JSON parser included) comes from reactcfg.pc's
# Libs.private / Requires.private, or from reactcfg::reactcfg_static's interface.
# pkg-config: in a copy of the install without the shared library, as a static-only
# install is, so that -lreactcfg can only mean libreactcfg.a.
cp -a "$prefix" "$tmp/static-prefix"
static_libdir=$(dirname "$(find "$tmp/static-prefix" -name 'libreactcfg.a' | head -1)")
rm -f "$static_libdir"/libreactcfg.so*
PKG_CONFIG_PATH="$static_libdir/pkgconfig" \
  cc -o "$tmp/consumer-static" "$tmp/consumer.c" \
  $(PKG_CONFIG_PATH="$static_libdir/pkgconfig" pkg-config --static --cflags --libs reactcfg)
"$tmp/consumer-static" | grep -q "EIO"
! ldd "$tmp/consumer-static" | grep -q libreactcfg

# find_package(reactcfg) + reactcfg::reactcfg_static, from a C-only project.
mkdir -p "$tmp/cms"
cp "$tmp/consumer.c" "$tmp/cms/"
cat > "$tmp/cms/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(reactcfg REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE reactcfg::reactcfg_static)
CM
cmake -S "$tmp/cms" -B "$tmp/cms/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cms/build" >/dev/null
"$tmp/cms/build/consumer" | grep -q "EIO"
! ldd "$tmp/cms/build/consumer" | grep -q libreactcfg

# the Lua module and the CLI from the install tree
LUA_CPATH="$libdir/lua/5.4/?.so;;" lua5.4 -e 'local rc = require "reactcfg"; assert(rc.engine and rc.file)'
LD_LIBRARY_PATH="$libdir" "$prefix/bin/reactcfg-lua" --version | grep -q '^reactcfg-lua '
echo "install: ok"
