#!/usr/bin/env bash
# xsr core of a running guest: gdb opens it with one thread per vCPU whose
# rip lies in the guest's code; the guest keeps running; --json reports the
# pause.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm
command -v gdb >/dev/null || skip "core test: gdb is not installed"

# The guest's code: [lowest text symbol, highest text symbol end).
# (bash arithmetic is signed 64-bit; the guest's addresses are all in the
# top half, so differences between them are still right.)
text_lo= text_hi=
while read -r addr size type _; do
	case $type in T | t) ;; *) continue ;; esac
	a=$((0x$addr)) e=$((0x$addr + 0x$size))
	if [ -z "$text_lo" ] || ((a < text_lo)); then text_lo=$a; fi
	if [ -z "$text_hi" ] || ((e > text_hi)); then text_hi=$e; fi
done < <(nm -S --defined-only "$GUEST")
[ -n "$text_lo" ] || { echo "FAIL - no text symbols in $GUEST"; exit 1; }

for n in 1 2; do
	S=$TMP/core$n.sock
	C=$TMP/core$n.xsr
	start_vm "$S" 64M "$n"
	wait_moving "$S"
	check "$n vCPU: xsr core --json" bash -c "'$XSR' core vm:'$S' '$C' --json >'$TMP/core$n.json'"
	check "$n vCPU: --json reports pause_ms" bash -c "jq -e '.pause_ms >= 0 and (.bytes | tonumber) > 0' '$TMP/core$n.json' >/dev/null"
	check "$n vCPU: the guest runs on after the core" wait_moving "$S"
	check "$n vCPU: and is not paused" test "$(state "$S")" = running
	check "$n vCPU: xsr verify accepts the core" bash -c "'$XSR' verify '$C' >/dev/null"
	out=$(gdb -nx -batch -c "$C" -ex 'info threads' -ex 'info registers rip' \
		-ex 'thread apply all info registers rip' 2>&1) || true
	threads=$(grep -cE '^\*? +[0-9]+ +(LWP|Thread|process)' <<<"$out" || true)
	check "$n vCPU: gdb sees $n thread(s) (saw $threads)" test "$threads" -eq "$n"
	rips=($(awk '$1 == "rip" { print $2 }' <<<"$out" | sort -u))
	check "$n vCPU: gdb prints rip" test "${#rips[@]}" -ge 1
	inside=0
	for r in "${rips[@]}"; do
		v=$((r))
		# bash arithmetic is signed: compare the offsets from the text start
		off=$((v - text_lo))
		((off >= 0 && off < text_hi - text_lo)) && inside=$((inside + 1))
	done
	check "$n vCPU: every rip (${rips[*]}) lies in the guest's text" test "$inside" -eq "${#rips[@]}"
	stop_vm "$S"
done
finish
