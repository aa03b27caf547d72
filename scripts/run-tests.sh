#!/bin/sh
# Runs the Meson test suites of the given build directories and ends with one
# line, "N passed, N failed", counting individual test cases.
set -u
status=0
for b in "$@"; do
	echo "== tests in $b =="
	meson test -C "$b" --print-errorlogs --num-processes 2 || status=1
done
python3 "$(dirname "$0")/summarize-tests.py" "$@" || status=1
exit $status
