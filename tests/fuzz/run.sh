#!/bin/bash
# Run libFuzzer targets: run.sh SECONDS BIN...  or  run.sh regress BIN...
# Per target: executions, and findings (crash/leak/timeout/oom files written
# under build/fuzz/artifacts/NAME/).  New corpus entries go to
# build/fuzz/corpus/NAME; the committed seeds in tests/fuzz/NAME/seeds are
# read only.  tests/fuzz/NAME/regress holds inputs that are replayed
# (regress) but not mutated: seeds so large that their mutants would take
# most of a run's time (README.md, "Where an execution's time goes").
# Exit 1 if anything was found.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=$1; shift
total_find=0
# A 32 MiB quarantine, not ASan's 256 MiB: a use after free inside one
# execution is still reported (no execution frees that much), and the
# allocator reuses memory that is still mapped and in cache instead of
# faulting in new pages; migrate-recv ran twice as fast (README.md).
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
for bin in "$@"; do
	name=$(basename "$bin"); name=${name#fuzz_}
	seeds=tests/fuzz/$name/seeds
	corpus=build/fuzz/corpus/$name
	art=build/fuzz/artifacts/$name
	mkdir -p "$corpus" "$art"
	log=build/fuzz/$name.log
	if [ "$mode" = regress ]; then
		reg=tests/fuzz/$name/regress
		[ -d "$reg" ] || reg=
		"$bin" -runs=0 "$seeds" $reg > "$log" 2>&1
		rc=$?
		n=$(ls "$seeds" $reg | grep -vc -e '^$' -e ':$')
		if [ $rc -eq 0 ]; then echo "$name: $n seed/regression files: ok"
		else echo "$name: FAILED on a seed (see $log)"; total_find=$((total_find + 1)); fi
		continue
	fi
	# The record and section types, magics and the lengths where the limits and the
	# arithmetic live (tests/fuzz/mkdict.py; README.md says why).
	dict=tests/fuzz/$name/dict
	[ -f "$dict" ] || dict=tests/fuzz/xsrelf.dict
	before=$(ls "$art" | wc -l)
	# -max_len: above the largest seed a target mutates (the 110 KiB PV core of convert);
	# mutants of the largest inputs otherwise fill the corpus and set the rate.
	nice -n 10 "$bin" -max_total_time="$mode" -timeout=10 -close_fd_mask=2 -rss_limit_mb=2048 -max_len=131072 \
		-dict="$dict" -artifact_prefix="$art/" -print_final_stats=1 "$corpus" "$seeds" > "$log" 2>&1
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	after=$(ls "$art" | wc -l)
	found=$((after - before))
	total_find=$((total_find + found))
	echo "$name: ${execs:-0} executions in $mode s, $found finding(s)$( [ $found -gt 0 ] && echo " in $art (log $log)")"
done
[ $total_find -eq 0 ]
