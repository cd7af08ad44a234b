#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# run.sh BUILD_DIR: runs every hostile policy of spec/hostile/ through the CLI of
# BUILD_DIR and checks that the engine neither hangs nor crashes: `--check` gives the
# error named on the file's "-- expect:" line (or "<file>: ok"), and a "-- run:" policy
# runs under `--run` until its output shows that line, then stops promptly on SIGTERM.
# Then the hostile paths: a FIFO, /dev/zero, a directory and an oversized file as the
# policy, and the CLI with 5 to 20 file descriptors. Every step is bounded: a hang
# fails with the step's name. ctest runs it in the normal and the ASan build.
set -uo pipefail
build=${1:?usage: run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cli=$build/reactcfg-lua
tmp=$(mktemp -d "${RC_TEST_TMP:-/tmp}/hostile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
fail() { echo "not ok - $1"; failed=$((failed + 1)); }
pass() { echo "ok - $1"; passed=$((passed + 1)); }

# --check must end (within a few budgets) with the expected message.
check_case() {
  local name=$1 file=$2 want=$3 out status
  out=$(timeout 60 "$cli" --check "$file" 2>&1)
  status=$?
  if [[ $status -eq 124 ]]; then fail "$name: --check hangs"; return; fi
  if [[ $status -gt 1 ]]; then fail "$name: --check exited with $status: $out"; return; fi
  if ! grep -qE -- "$want" <<<"$out"; then
    fail "$name: --check said '$out', expected /$want/"
    return
  fi
  pass "$name"
}

# --run must show `want`, then stop within 10 s of SIGTERM with status 0.
run_case() {
  local name=$1 file=$2 want=$3 log=$tmp/run.log
  : >"$log"
  "$cli" --run "$file" >"$log" 2>&1 &
  local pid=$! seen=0
  for _ in $(seq 1 300); do
    if grep -qE -- "$want" "$log"; then seen=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null
  local waited=0
  while kill -0 "$pid" 2>/dev/null && [[ $waited -lt 100 ]]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    fail "$name: --run did not stop within 10 s of SIGTERM"
    return
  fi
  wait "$pid"
  local status=$?
  if [[ $seen -ne 1 ]]; then fail "$name: --run never said /$want/: $(tail -5 "$log")"; return; fi
  if [[ $status -ne 0 ]]; then fail "$name: --run exited with $status: $(tail -5 "$log")"; return; fi
  pass "$name (--run, stopped by SIGTERM)"
}

for f in "$here"/*.lua; do
  name=$(basename "$f")
  expect=$(sed -n 's/^-- expect: //p' "$f" | head -n1)
  run=$(sed -n 's/^-- run: //p' "$f" | head -n1)
  [[ -n $expect ]] && check_case "$name" "$f" "$expect"
  [[ -n $run ]] && run_case "$name" "$f" "$run"
done

# ---- hostile paths as the policy ----
mkfifo "$tmp/fifo.lua"
check_case "a FIFO as the policy" "$tmp/fifo.lua" "the policy is a FIFO, not a regular file"
check_case "/dev/zero as the policy" /dev/zero "the policy is a character device, not a regular file"
mkdir "$tmp/dir.lua"
check_case "a directory as the policy" "$tmp/dir.lua" "the policy is a directory, not a regular file"
head -c $((9 << 20)) /dev/zero | tr '\0' ' ' >"$tmp/huge.lua"
check_case "a 9 MiB policy" "$tmp/huge.lua" "the policy is larger than the limit of 8388608 bytes"

# ---- few file descriptors: a clear EMFILE error, or a degraded run that ends cleanly ----
# The CLI under ulimit -n 5 .. 20 on a policy with file, remote, env and Lua sources:
# --check and --run (SIGTERM after it started) must end with status 0, or 1 with a
# message naming the lack of descriptors; never a signal (abort, segfault) or a hang.
# LeakSanitizer needs descriptors of its own, so leaks are not checked here.
fds_case() {
  local n=$1 mode=$2 log=$tmp/fds.log status
  : >"$log"
  if [[ $mode == --check ]]; then
    (ulimit -n "$n"; ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
      timeout 60 "$cli" --check "$here/fds/policy.lua") >"$log" 2>&1
    status=$?
  else
    (ulimit -n "$n"; ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
      exec "$cli" --run "$here/fds/policy.lua") >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 50); do
      grep -q "engine.started\|too many open files\|EMFILE" "$log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    sleep 0.3
    kill -TERM "$pid" 2>/dev/null
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [[ $waited -lt 100 ]]; do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid"
      wait "$pid" 2>/dev/null
      fail "ulimit -n $n $mode: did not stop within 10 s of SIGTERM"
      return
    fi
    wait "$pid"
    status=$?
  fi
  if grep -q "runtime error" "$log"; then
    fail "ulimit -n $n $mode: undefined behaviour: $(grep -m1 'runtime error' "$log")"
  elif [[ $status -eq 124 ]]; then
    fail "ulimit -n $n $mode: hangs"
  elif [[ $status -eq 0 ]]; then
    pass "ulimit -n $n $mode"
  elif [[ $status -eq 1 ]] && grep -qi "too many open files\|EMFILE" "$log"; then
    pass "ulimit -n $n $mode (EMFILE: $(grep -m1 -i 'too many open files\|EMFILE' "$log"))"
  else
    fail "ulimit -n $n $mode: exit status $status: $(grep -v '^ *#' "$log" | tail -3 | tr '\n' ' ')"
  fi
}
for n in 5 6 7 8 9 10 11 12 13 14 15 16 18 20; do
  fds_case "$n" --check
  fds_case "$n" --run
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
