#!/bin/bash
# Corruption and truncation sweeps (issue 8).  The per-bit sweep runs in one
# C program (tests/hardening/sweep.c, ~10^5 flips); then a sample of its flips
# and truncation points goes through the real CLI: xsr verify must exit 1,
# xsr info / convert / synth --check (the restore path) must fail cleanly
# (exit 1 or 3 with a message) or, when they succeed, be right; nothing may
# die by a signal or hang.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"

build_helper sweep
SWEEP=$ROOT/tests/build/sweep
SYNTH=(--mem 768K --vcpus 2 --zero-fraction 0.25 --seed 7)
"$XSR" synth "${SYNTH[@]}" "$T/s.elf"
"$XSR" synth "${SYNTH[@]}" --stream "$T/s.stream"
check "the sweep images are small (<= 1 MiB)" test "$(stat -c %s "$T/s.elf")" -le 1048576

timeout 600 "$SWEEP" "$T/s.elf" "$T/s.stream" >"$T/sweep.out" 2>&1
rc=$?
grep -E '^(ok|FAIL|     )' "$T/sweep.out"
PASS=$((PASS + $(grep -c '^ok' "$T/sweep.out")))
FAIL=$((FAIL + $(grep -c '^FAIL' "$T/sweep.out")))
if [ $rc -ge 124 ] || [ $rc -eq 2 ]; then bad "sweep program died (exit $rc)"; tail -5 "$T/sweep.out"; fi
read -r flips detected truncs truncs_clean < <(awk '/^stats: flip/{f+=$(NF-1); d+=$NF} /^stats: truncate/{t+=$(NF-1); c+=$NF}
     END{printf "%d %d %d %d\n", f, d, t, c}' "$T/sweep.out")
echo "TOTAL in-process: $flips bit flips, $detected detected; $truncs truncations, $truncs_clean failed cleanly"
# What the sweep makes of these three images (docs/reliability.md): fewer
# means coverage was lost (a sweep that flipped nothing must not pass).
MIN_FLIPS=170736 MIN_TRUNCS=404
check "in-process: $flips bit flips (at least $MIN_FLIPS), every one reported as damage" \
	test "$flips" -ge "$MIN_FLIPS" -a "$detected" -eq "$flips"
check "in-process: $truncs truncations (at least $MIN_TRUNCS), every one failed cleanly" \
	test "$truncs" -ge "$MIN_TRUNCS" -a "$truncs_clean" -eq "$truncs"

file_of() { case $1 in seekable) echo "$T/s.elf" ;; stream) echo "$T/s.stream" ;; esac; }
# run VERB ARGS...: sets $rc, stderr in $T/err; a signal or a hang is a failure by itself.
run() { timeout 30 "$XSR" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
signal_or_hang() { [ "$rc" -ge 124 ]; }

cli_flips=0 cli_bad=0 verify_hit=0
while read -r _ name off bit what; do
	src=$(file_of "$name")
	cp "$src" "$T/f"
	orig=$(xxd -s "$off" -l 1 -p "$T/f")
	printf "%02x" $((0x$orig ^ (1 << bit))) | xxd -r -p | dd of="$T/f" bs=1 seek="$off" conv=notrunc 2>/dev/null
	cli_flips=$((cli_flips + 1))
	where="$name $what octet $off bit $bit"
	# verify: exit 1 and a line that says what is wrong where, not only the count
	run verify "$T/f"
	if [ $rc -eq 1 ] && grep -qv 'problem(s) found$' "$T/err"; then verify_hit=$((verify_hit + 1)); else
		bad "verify: $where: exit $rc (want 1 and a message naming the damage): $(head -c 200 "$T/err")"; cli_bad=$((cli_bad + 1)); fi
	# info refuses what verify reports; only seekable page data is not read by it
	run info "$T/f"
	if [ "$name" = seekable ] && [ "${what#page data}" != "$what" ]; then
		if signal_or_hang || { [ $rc -ne 0 ] && [ ! -s "$T/err" ]; } || { [ $rc -eq 0 ] && ! grep -q '^pages:' "$T/out"; }; then
			bad "info: $where: exit $rc"; cli_bad=$((cli_bad + 1)); fi
	elif [ $rc -ne 3 ] || [ ! -s "$T/err" ]; then
		bad "info: $where: exit $rc (want 3 and a message): $(head -c 200 "$T/err")"; cli_bad=$((cli_bad + 1))
	fi
	rm -f "$T/conv.elf"
	run convert "$T/f" "$T/conv.elf"
	if signal_or_hang || [ $rc -eq 2 ] || { [ $rc -ne 0 ] && { [ ! -s "$T/err" ] || [ -e "$T/conv.elf" ]; }; }; then
		bad "convert: $where: exit $rc (or output left behind)"; cli_bad=$((cli_bad + 1))
	elif [ $rc -eq 0 ] && ! { "$XSR" verify -q "$T/conv.elf" && "$XSR" synth "${SYNTH[@]}" --check "$T/conv.elf"; } >/dev/null 2>&1; then
		bad "convert: $where: accepted the damage and wrote a wrong image"; cli_bad=$((cli_bad + 1))
	fi
	# every flip is damage: restoring the image into the domain must not succeed
	run synth "${SYNTH[@]}" --check "$T/f"
	if signal_or_hang || [ $rc -eq 0 ] || [ $rc -eq 2 ] || [ ! -s "$T/err" ]; then
		bad "synth --check: $where: exit $rc (want a refusal with a message)"; cli_bad=$((cli_bad + 1)); fi
done < <(grep -E '^sample (seekable|stream) ' "$T/sweep.out")
check "CLI: $verify_hit of $cli_flips sampled flips -> xsr verify exit 1 naming the damage" \
	test "$verify_hit" -eq "$cli_flips" -a "$cli_flips" -ge 78
check "CLI: info refuses, convert refuses or stays correct, synth --check refuses, on all $cli_flips sampled flips" test "$cli_bad" -eq 0

cuts=0 cut_bad=0 i=0
while read -r _ name at; do
	src=$(file_of "$name")
	head -c "$at" "$src" >"$T/c"
	i=$((i + 1))
	[ $((i % 2)) -eq 0 ] || continue
	cuts=$((cuts + 1))
	run verify "$T/c"
	# exit 1, naming where the file ends (the cut, in hex or decimal)
	if [ $rc -ne 1 ] || ! grep -qwE "$(printf '0x%x' "$at")|$at" "$T/err"; then
		bad "verify: $name cut at $at: exit $rc, $(head -c 200 "$T/err")"; cut_bad=$((cut_bad + 1))
	fi
	[ $((i % 6)) -eq 0 ] || continue
	for v in info "convert $T/c $T/conv.elf" "synth ${SYNTH[*]} --check $T/c"; do
		rm -f "$T/conv.elf"
		if [ "$v" = info ]; then run info "$T/c"; else run $v; fi
		if [ $rc -eq 0 ] || signal_or_hang || [ $rc -eq 2 ] || [ ! -s "$T/err" ] || [ -e "$T/conv.elf" ]; then
			bad "${v%% *}: $name cut at $at: exit $rc"; cut_bad=$((cut_bad + 1))
		fi
	done
done < <(grep -E '^cut (seekable|stream) ' "$T/sweep.out")
check "CLI: $cuts truncations (every 2nd) -> verify exit 1 naming where the file ends; info/convert/check fail cleanly on every 6th" \
	test "$cut_bad" -eq 0 -a "$cuts" -ge 100
echo "TOTAL CLI: $cli_flips sampled flips x 4 verbs, $cuts truncations through verify"
summary
