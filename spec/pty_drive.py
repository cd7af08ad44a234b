#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""pty_drive.py: runs a program on a pseudo-terminal and plays a script against it, for
the REPL specs (spec/lua/repl_spec.lua).

usage: pty_drive.py STEPS_JSON -- PROGRAM [ARGS...]

STEPS_JSON is a JSON list of steps, run in order:
  {"send": "text"}     write text to the terminal (keys: "\\t" tab, "\\x04" Ctrl-D, ...)
  {"expect": "text"}   wait until the output after the previous match contains text
                       (ANSI escape sequences and carriage returns removed first)
  {"expect_raw": "t"}  the same, on the output as the program wrote it
  {"expect_re": "re"}  the same on the cleaned output, for a Python regular expression
                       (re.search from the previous match: "(?m)^> " is a prompt at the
                       start of a line, even right after a match that ended with "\\n")
  {"exit": N}          wait for the program to exit and check its status is N
  {"eof": N}           type Ctrl-D until the program exits (a key typed just as readline
                       switches the terminal mode can be lost, so it is repeated each
                       second), then check its exit status is N
Each wait fails after $PTY_TIMEOUT seconds (10 by default). Prints the whole transcript
(cleaned) on stdout; exits 0 when every step passed, else 1 with the reason on stderr.
"""
import json
import os
import pty
import re
import select
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def shown(step):
    """What an expect step waits for, as the spec wrote it."""
    return step.get("expect", step.get("expect_raw", step.get("expect_re")))


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write(__doc__)
        return 2
    steps = json.loads(sys.argv[1])
    argv = sys.argv[3:]
    timeout = float(os.environ.get("PTY_TIMEOUT", "10"))
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.setdefault("TERM", "xterm")
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    raw = bytearray()
    mark = {"raw": 0, "clean": 0}
    status = None

    def pump(deadline):
        """Reads what is available until the deadline; False once the child has gone."""
        r, _, _ = select.select([fd], [], [], max(0.0, min(0.1, deadline - time.time())))
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            raw.extend(data)
        return True

    def fail(why):
        sys.stdout.write(ANSI.sub(b"", bytes(raw)).decode("utf-8", "replace"))
        sys.stderr.write("pty_drive: " + why + "\n")
        if os.environ.get("PTY_RAW"):
            sys.stderr.write(repr(bytes(raw)) + "\n")
        return 1

    for step in steps:
        if "send" in step:
            os.write(fd, step["send"].encode())
        elif "expect" in step or "expect_raw" in step or "expect_re" in step:
            is_raw = "expect_raw" in step
            if "expect_re" in step:
                pattern = re.compile(step["expect_re"].encode())
            else:
                pattern = re.compile(re.escape(
                    (step["expect_raw"] if is_raw else step["expect"]).encode()))
            key = "raw" if is_raw else "clean"
            deadline = time.time() + timeout

            def find():
                text = bytes(raw) if is_raw else ANSI.sub(b"", bytes(raw))
                return pattern.search(text, mark[key])
            while True:
                m = find()
                if m:
                    mark[key] = m.end()
                    break
                if time.time() > deadline:
                    return fail("timed out waiting for %r" % shown(step))
                if not pump(deadline):
                    m = find()
                    if not m:
                        return fail("program ended before %r" % shown(step))
                    mark[key] = m.end()
                    break
        elif "exit" in step or "eof" in step:
            want = step["exit"] if "exit" in step else step["eof"]
            deadline = time.time() + timeout
            resend = time.time()
            while status is None:
                if "eof" in step and time.time() >= resend:
                    os.write(fd, b"\x04")
                    resend = time.time() + 1
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(st)
                    break
                if time.time() > deadline:
                    os.kill(pid, 9)
                    return fail("timed out waiting for the program to exit")
                pump(deadline)
            while pump(time.time()):
                pass
            if status != want:
                return fail("exit status %d, expected %d" % (status, want))
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    sys.stdout.write(ANSI.sub(b"", bytes(raw)).decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
