#!/bin/sh
# Usage: fuzz.sh BUILD_DIR SECONDS
# Runs every libFuzzer target BUILD_DIR/fuzz/fuzz_<name> for SECONDS, starting
# from a copy of its seeds (fuzz/corpus/<name>; the committed corpus is left
# alone), then reports executions and findings per target. Crashes, leaks,
# timeouts and out-of-memory inputs are kept in BUILD_DIR/fuzz-out/<name>/
# artifacts/; the exit status is non-zero if there is any, or if a target
# fails to run. Reproduce one with: BUILD_DIR/fuzz/fuzz_<name> <artifact>.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out="$build/fuzz-out"
status=0
targets=0

# Prints the last value of a libFuzzer -print_final_stats line.
stat_of() {
	sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

fuzz_one() {
	bin=$1
	name=${bin##*/fuzz_}
	work="$out/$name"
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts"
	if [ -d "$root/fuzz/corpus/$name" ]; then
		cp "$root/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null
	fi
	seeds=$(ls "$work/corpus" | wc -l)
	# -timeout: one input taking this long is a finding (a hang), not noise.
	"$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
		"$work/corpus" >"$work/log" 2>&1
	rc=$?
	found=$(ls "$work/artifacts" | wc -l)
	echo "$name: $(stat_of number_of_executed_units "$work/log") execs," \
		"corpus $seeds -> $(ls "$work/corpus" | wc -l), $found finding(s), exit $rc"
	if [ "$found" -ne 0 ] || [ "$rc" -ne 0 ]; then
		ls "$work/artifacts" | sed "s|^|  $work/artifacts/|"
		grep -m 3 -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error" \
			"$work/log" | sed 's/^/  /'
		echo "  log: $work/log"
		status=1
	fi
}

for bin in "$build"/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	targets=$((targets + 1))
	fuzz_one "$bin"
done
if [ "$targets" -eq 0 ]; then
	echo "fuzz.sh: no fuzz_* targets in $build/fuzz (configure with CC=clang -Dfuzzers=enabled)" >&2
	exit 1
fi
exit $status
