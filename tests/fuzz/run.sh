#!/bin/sh
# tests/fuzz/run.sh - runs the libFuzzer targets (by `make fuzz` and
# `make fuzz-short`).
#
# Usage: run.sh BUILDDIR SECONDS TARGET...
#
# For each TARGET (a binary BUILDDIR/TARGET built from tests/fuzz/TARGET.c;
# FUZZ_JOBS of them at a time, one per CPU by default):
#   1. replays every file in tests/fuzz/regressions/TARGET/ and
#      tests/fuzz/corpus/TARGET/ once, each on its own;
#   2. fuzzes for SECONDS, starting from the checked-in seeds plus what
#      earlier runs found (BUILDDIR/corpus/TARGET: new inputs go there,
#      never into the source tree), with the dictionary BUILDDIR/TARGET.dict
#      if the Makefile made one.
# A crash, leak, sanitizer report or timeout fails the target; its input is
# left in BUILDDIR/artifacts/TARGET/ to be copied into regressions/TARGET/
# once fixed.  Prints the executions per target (libFuzzer's
# stat::number_of_executed_units) and exits 1 if any target failed.
set -u

cd "$(dirname "$0")/../.." || exit 1
[ $# -ge 3 ] || { echo "usage: $0 BUILDDIR SECONDS TARGET..." >&2; exit 2; }
build=$1
seconds=$2
shift 2

# One target: replay, then fuzz; its outcome goes to BUILDDIR/TARGET.result
# (the summary line, then FAIL if it failed).
run_target() {
	t=$1
	bin=$build/$t
	seeds=tests/fuzz/corpus/$t
	regr=tests/fuzz/regressions/$t
	work=$build/corpus/$t
	art=$build/artifacts/$t
	log=$build/$t.log
	res=$build/$t.result
	rm -f "$res"
	mkdir -p "$work" "$art"

	# 1. Replay: each file run once, no mutation.
	files=$(find "$regr" "$seeds" -type f 2>/dev/null | sort)
	nfiles=$(printf '%s\n' "$files" | grep -c .)
	if [ "$nfiles" -gt 0 ]; then
		# shellcheck disable=SC2086 # file names are ours, without spaces
		if ! "$bin" -runs=1 $files >"$build/$t.replay.log" 2>&1; then
			echo "FAIL $t: replay of $regr and $seeds (see $build/$t.replay.log)" >&2
			grep -E 'ERROR|SUMMARY|Running: ' "$build/$t.replay.log" | tail -5 >&2
			echo FAIL >"$res"
			return
		fi
	fi

	# 2. Fuzz.
	echo "fuzz $t: ${seconds}s (replayed $nfiles files)"
	seedarg=""
	[ -d "$seeds" ] && seedarg=$seeds
	dictarg=""
	[ -f "$build/$t.dict" ] && dictarg=-dict=$build/$t.dict
	"$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 ${dictarg:+"$dictarg"} \
		-artifact_prefix="$art/" "$work" ${seedarg:+"$seedarg"} >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	printf '%-20s %12s executions in %ss\n' "$t" "${execs:-?}" "$seconds" >"$res"
	if [ $rc -ne 0 ]; then
		echo "FAIL $t (exit $rc, see $log):" >&2
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written to' "$log" | head -5 >&2
		echo FAIL >>"$res"
	fi
}

# FUZZ_JOBS targets at a time (default: one per CPU), each in its own
# subshell; libFuzzer itself runs one process per target.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
n=0
for t in "$@"; do
	(run_target "$t") &
	n=$((n + 1))
	if [ "$n" -ge "$jobs" ]; then
		wait
		n=0
	fi
done
wait

failed=""
summary=""
for t in "$@"; do
	res=$build/$t.result
	[ -s "$res" ] || echo "FAIL" >>"$res"
	summary="$summary$(grep -v '^FAIL$' "$res")
"
	grep -q '^FAIL$' "$res" && failed="$failed $t"
done

printf '%s' "$summary"
if [ -n "$failed" ]; then
	echo "fuzzing FAILED:$failed" >&2
	exit 1
fi
echo "fuzzing OK: $*"
