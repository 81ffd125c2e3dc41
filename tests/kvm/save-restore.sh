#!/usr/bin/env bash
# save -> restore -> the guest carries on: counters continue from exactly the
# saved values and guest_errors stays 0 (the guest re-checks its working-set
# pages against its registers), for 1 and 2 vCPUs, seekable and streamed
# images, full and lazy restores; plus save --stop and save --live.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

# roundtrip VCPUS MODE: MODE is full, lazy or stream
roundtrip() {
	local n=$1 mode=$2 src=$TMP/src-$1-$2.sock dst=$TMP/dst-$1-$2.sock img=$TMP/img-$1-$2.xsr
	local tag="$n vCPU, $mode"
	start_vm "$src" 64M "$n" || { nok "$tag: start"; return; }
	wait_moving "$src" || { nok "$tag: source counting"; return; }
	# Pause first so the saved counters are known exactly.
	"$XSR" vm pause "$src"
	local saved
	saved=$(counters "$src")
	case $mode in
	full | lazy)
		check "$tag: save" bash -c "'$XSR' save vm:'$src' '$img' >/dev/null"
		local extra=()
		[ "$mode" = lazy ] && extra=(--lazy)
		restore_vm "$dst" "$img" "${extra[@]}" --paused || { nok "$tag: restore"; return; }
		;;
	stream)
		# The VMM writes straight into the pipe that xsr restore reads.
		local pid
		pid=$("$XSR" save vm:"$src" - 2>/dev/null | "$XSR" restore - --paused --control "$dst") ||
			{ nok "$tag: save | restore"; return; }
		VM_PID=$pid
		PIDS+=("$pid")
		;;
	esac
	check "$tag: restored counters equal the saved ones ($saved)" test "$(counters "$dst")" = "$saved"
	check "$tag: restored guest is paused" test "$(state "$dst")" = paused
	"$XSR" vm resume "$dst"
	check "$tag: restored counters move" wait_moving "$dst"
	check "$tag: restored counters continue from the saved values" counters_at_least "$dst" "$saved"
	check "$tag: restored guest_errors is 0" test "$(errors "$dst")" = 0
	if [ "$mode" = lazy ]; then
		local t0=$SECONDS
		while ((SECONDS - t0 < DEADLINE)) && [ "$(status "$dst" | jq .lazy.done)" != true ]; do
			sleep 0.05
		done
		check "$tag: prefetch completes" test "$(status "$dst" | jq .lazy.done)" = true
		check "$tag: no lazy page errors" test "$(status "$dst" | jq -r .lazy.errors)" = 0
		check "$tag: still counting after prefetch" wait_moving "$dst"
	fi
	"$XSR" vm resume "$src"
	check "$tag: source keeps running after the save" wait_moving "$src"
	check "$tag: source guest_errors is 0" test "$(errors "$src")" = 0
	stop_vm "$dst"
	stop_vm "$src"
}

for n in 1 2; do
	for mode in full lazy stream; do
		roundtrip "$n" "$mode"
	done
done

# save --stop: the file is committed, then the VM ends.
S=$TMP/stop.sock
start_vm "$S" 32M 2
wait_moving "$S"
check "save --stop" bash -c "'$XSR' save --stop vm:'$S' '$TMP/stop.xsr' --json >'$TMP/stop.json'"
check "save --stop --json has the summary keys" bash -c "jq -e 'has(\"bytes\") and has(\"pages\") and has(\"zero_pages\") and has(\"pause_ms\") and has(\"elapsed_ms\")' '$TMP/stop.json' >/dev/null"
check "save --stop removed the VM's socket" test ! -e "$S"
restore_vm "$TMP/stop2.sock" "$TMP/stop.xsr"
check "image of a stopped VM restores and counts" wait_moving "$TMP/stop2.sock"
check "  ... with guest_errors 0" test "$(errors "$TMP/stop2.sock")" = 0
stop_vm "$TMP/stop2.sock"

# save --live: pre-copy rounds with the KVM dirty log, then a short pause.
S=$TMP/live.sock
start_vm "$S" 64M 2
wait_moving "$S"
check "save --live" bash -c "'$XSR' save --live vm:'$S' '$TMP/live.xsr' >/dev/null"
check "source still running after live save" wait_moving "$S"
restore_vm "$TMP/live2.sock" "$TMP/live.xsr" --lazy
check "live image restores lazily and counts" wait_moving "$TMP/live2.sock"
check "  ... with guest_errors 0" test "$(errors "$TMP/live2.sock")" = 0
stop_vm "$TMP/live2.sock"
# Issue 15: stdout redirected to a file is write-only; the image must still be whole.
check "save vm:SOCK - > FILE makes an intact image" bash -c "'$XSR' save vm:'$S' - > '$TMP/redir.xsr' && '$XSR' verify -q '$TMP/redir.xsr'"
check "a new saved FILE is mode 0600 under umask 022" bash -c "umask 022; '$XSR' save vm:'$S' '$TMP/mode.xsr' >/dev/null && [ \$(stat -c %a '$TMP/mode.xsr') = 600 ]"
stop_vm "$S"

# A VM above 3 GiB has two memory runs (RAM skips the LAPIC/IOAPIC window).
S=$TMP/big.sock
start_vm "$S" 3200M 1
wait_moving "$S"
"$XSR" vm pause "$S"
saved=$(counters "$S")
check "two-run guest saves" bash -c "'$XSR' save vm:'$S' '$TMP/big.xsr' >/dev/null"
check "  ... with two memory runs" bash -c "'$XSR' info '$TMP/big.xsr' | grep -q '2 run'"
stop_vm "$S"
restore_vm "$TMP/big2.sock" "$TMP/big.xsr" --lazy --paused
check "two-run guest restores lazily with its counters" test "$(counters "$TMP/big2.sock")" = "$saved"
"$XSR" vm resume "$TMP/big2.sock"
check "  ... and counts on" wait_moving "$TMP/big2.sock"
stop_vm "$TMP/big2.sock"

out=$("$XSR" restore - --lazy --control "$TMP/x.sock" </dev/null 2>&1) && rc=0 || rc=$?
check "lazy restore from a stream is refused" test "$rc" -eq 2
check "  ... saying why" grep -q "seekable" <<<"$out"
out=$("$XSR" save vm:"$TMP/nothing.sock" "$TMP/never.xsr" 2>&1) && rc=0 || rc=$?
check "save from a missing VMM fails" test "$rc" -eq 3
check "  ... clearly" grep -q "no VMM control socket" <<<"$out"
check "  ... and leaves no file or temporary behind" bash -c "! ls -a '$TMP' | grep -q never"
finish
