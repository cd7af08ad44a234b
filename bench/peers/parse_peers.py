#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""parse_peers.py: Python peers of `reactcfg-bench parse`, run on the same files.

    parse_peers.py PEER FILE [--iterations N]

PEER is one of
  tomllib   tomllib.loads (Python 3.11's standard library; pure Python)
  pyyaml    yaml.load(text, Loader=yaml.CSafeLoader) (Debian's python3-yaml: PyYAML over
            libyaml's C scanner and parser; building the Python objects is still Python)
  json      json.loads (standard library; C scanner)
  dotenv    dotenv.dotenv_values(stream=StringIO(text), interpolate=False) (Debian's
            python3-dotenv, python-dotenv; pure Python)
and prints the line reactcfg-bench prints:

    format=<f> bytes=<n> parse_ms=<median ms> mb_per_s=<bytes / 1e6 / median s>

The file is read and decoded once; only the call above is timed (time.perf_counter_ns).
One warm-up parse, which also sizes N (default: about 2 s worth, at least 5), then N
parses. The previous tree is dropped and gc.collect() runs outside the timed part,
as reactcfg-bench frees each tree outside it. bytes is the file's size in bytes, so the
MB/s are comparable with reactcfg's.
"""
import gc
import io
import sys
import time


def load_peer(name):
    """Returns (format, parse function of the text) or exits with a message."""
    try:
        if name == "tomllib":
            import tomllib
            return "toml", tomllib.loads
        if name == "json":
            import json
            return "json", json.loads
        if name == "pyyaml":
            import yaml
            if not hasattr(yaml, "CSafeLoader"):
                sys.exit("parse_peers.py: this PyYAML was built without libyaml "
                         "(no CSafeLoader)")
            loader = yaml.CSafeLoader
            return "yaml", lambda text: yaml.load(text, Loader=loader)
        if name == "dotenv":
            from dotenv import dotenv_values
            return "dotenv", lambda text: dotenv_values(stream=io.StringIO(text),
                                                        interpolate=False)
    except ImportError as e:
        sys.exit("parse_peers.py: %s: %s" % (name, e))
    sys.exit("parse_peers.py: unknown peer %r (tomllib, pyyaml, json or dotenv)" % name)


def main(argv):
    args, iterations = [], 0
    i = 0
    while i < len(argv):
        if argv[i] == "--iterations" and i + 1 < len(argv):
            try:
                iterations = int(argv[i + 1])
            except ValueError:
                iterations = 0
            if iterations < 1:
                sys.exit("parse_peers.py: --iterations wants a positive number")
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 2:
        sys.exit("usage: parse_peers.py tomllib|pyyaml|json|dotenv FILE [--iterations N]")
    fmt, parse = load_peer(args[0])
    path = args[1]
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        sys.exit("parse_peers.py: %s: %s" % (path, e))

    def timed():
        gc.collect()
        t0 = time.perf_counter_ns()
        try:
            v = parse(text)
        except Exception as e:  # each library has its own error classes
            sys.exit("parse_peers.py: %s: %s: %s" % (args[0], path, e))
        ms = (time.perf_counter_ns() - t0) / 1e6
        del v  # freed here, outside the timed part
        return ms

    one = timed()  # warm-up, and the size of N
    if not iterations:
        iterations = max(5, min(10000, int(2000 / max(one, 0.001))))
    ms = sorted(timed() for _ in range(iterations))
    n = len(ms)
    med = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    print("format=%s bytes=%d parse_ms=%.3f mb_per_s=%.3f"
          % (fmt, len(raw), med, len(raw) / 1e6 / (med / 1e3)))


if __name__ == "__main__":
    main(sys.argv[1:])
