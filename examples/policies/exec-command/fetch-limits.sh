#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# Stands for a command-line client that prints configuration: prints $LIMITS_FILE, or
# fails like a client whose server is unreachable while ./offline exists.
if [ -e offline ]; then
  echo "fetch-limits: connecting to the limits service" >&2
  echo "fetch-limits: connection refused" >&2
  exit 2
fi
[ "$1" = "--format" ] && [ "$2" = "json" ] || { echo "usage: $0 --format json" >&2; exit 64; }
cat -- "${LIMITS_FILE:?LIMITS_FILE is not set}"
