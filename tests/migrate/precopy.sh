#!/usr/bin/env bash
# Pre-copy live migration over loopback TCP: 1 and 2 vCPU guests that keep
# dirtying memory move to a new VMM; their counters continue, guest_errors
# stays 0, the source goes away only after the receiver's COMMIT.  Also:
# compression, --max-downtime with a set dirty rate, --to-file, refusals.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

# migrate_ok TAG VCPUS MIGRATE-ARGS...
migrate_ok() {
	local tag=$1 n=$2 src=$TMP/$1.src dst=$TMP/$1.dst
	shift 2
	start_vm "$src" 32M "$n" || { nok "$tag: start"; return; }
	local spid=$VM_PID
	wait_moving "$src" || { nok "$tag: source counting"; return; }
	start_receiver "$tag" --control "$dst" --once --json || { nok "$tag: receiver"; return; }
	local before
	before=$(counters "$src")
	if "$XSR" migrate vm:"$src" tcp:127.0.0.1:"$RX_PORT" --json "$@" >"$TMP/$tag.json" 2>"$TMP/$tag.err"; then
		ok "$tag: migrate succeeds"
	else
		nok "$tag: migrate: $(cat "$TMP/$tag.err")"
		return
	fi
	wait_gone "$RX_PID" || true
	rx_vm_pid >/dev/null || { nok "$tag: receiver printed no VMM"; return; }
	check "$tag: source VMM exited after the commit" wait_gone "$spid"
	check "$tag: source control socket removed" test ! -e "$src"
	check "$tag: counters continue on the receiver (from $before)" counters_at_least "$dst" "$before"
	check "$tag: receiver's guest keeps counting" wait_moving "$dst"
	check "$tag: receiver's guest_errors is 0" test "$(errors "$dst")" = 0
	check "$tag: report has rounds, bytes, downtime" jq -e '.rounds >= 1 and (.round | length) == .rounds and (.total_bytes | tonumber) > 0 and .downtime_ms > 0 and has("compression_ratio")' "$TMP/$tag.json"
	stop_vm "$dst"
}

migrate_ok one-vcpu 1
migrate_ok two-vcpu 2
migrate_ok zstd 2 --compress zstd
check "zstd: compression shrinks the stream" jq -e '.compression_ratio > 1' "$TMP/zstd.json"
migrate_ok lz4 1 --compress lz4
check "lz4: compression shrinks the stream" jq -e '.compression_ratio > 1' "$TMP/lz4.json"

# A set dirty rate (the VMM's test-only dirtier) forces several rounds.
export XSR_TEST_DIRTY_MBPS=40
migrate_ok dirtier 2 --max-downtime 20 --min-rounds 2 --max-rounds 8
unset XSR_TEST_DIRTY_MBPS
check "dirtier: several pre-copy rounds, later ones resend dirtied pages" jq -e '.rounds >= 3 and (.round[1].pages | tonumber) > 0' "$TMP/dirtier.json"

# --to-file: the arriving stream becomes a seekable save image.
S=$TMP/tofile.src
start_vm "$S" 16M 2
spid=$VM_PID
wait_moving "$S"
start_receiver tofile --to-file "$TMP/arrived.xsr" --once
check "migrate to a receiver writing a file" "$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT"
check "  ... the receiver exits" wait_gone "$RX_PID"
check "  ... source VMM gone after the commit" wait_gone "$spid"
check "  ... the file verifies" "$XSR" verify "$TMP/arrived.xsr"
check "  ... no temporary file left" bash -c "! ls -a '$TMP' | grep -q 'arrived.xsr.'"
restore_vm "$TMP/fromfile.sock" "$TMP/arrived.xsr"
check "  ... and restores, counting with guest_errors 0" bash -c "$(declare -f status counters wait_moving); XSR='$XSR' DEADLINE=$DEADLINE wait_moving '$TMP/fromfile.sock' && [ \"\$('$XSR' vm status '$TMP/fromfile.sock' --json | jq -r .errors)\" = 0 ]"
stop_vm "$TMP/fromfile.sock"

# Refusals come before any page moves; the source runs on.
S=$TMP/refuse.src
start_vm "$S" 16M 2
wait_moving "$S"
start_receiver refuse-vcpus --control "$TMP/never.sock" --once --max-vcpus 1
out=$("$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT" 2>&1) && rc=0 || rc=$?
check "too many vCPUs: refused (exit 3)" test "$rc" = 3
check "  ... saying why" grep -q "refused.*2 vCPUs.*at most 1" <<<"$out"
start_receiver refuse-mem --control "$TMP/never2.sock" --once --max-mem 8M
out=$("$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT" 2>&1) && rc=0 || rc=$?
check "too much memory: refused (exit 3)" test "$rc" = 3
check "  ... saying why" grep -q "refused.*16 MiB.*8 MiB" <<<"$out"
check "  ... the source keeps running" wait_moving "$S"
check "  ... no receiving VMM or socket left" test ! -e "$TMP/never.sock" -a ! -e "$TMP/never2.sock"
# A receiver whose control socket is taken refuses with that reason, not a hang-up.
start_receiver busy --control "$S" --once
out=$("$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT" 2>&1) && rc=0 || rc=$?
check "control socket in use: refused (exit 3)" test "$rc" = 3
check "  ... saying why" grep -q "refused.*in use" <<<"$out"
check "  ... the source keeps running" wait_moving "$S"
# A receiver without --once keeps listening after a failed attempt.
start_receiver retry --control "$TMP/retry.sock"
"$XSR" migrate vm:"$S" tcp:127.0.0.1:1 >/dev/null 2>&1 && nok "migrate to a closed port fails" || ok "migrate to a closed port fails"
check "retry to a listening receiver succeeds" "$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT"
wait_gone "$RX_PID" || true
rx_vm_pid >/dev/null
check "  ... and counts with guest_errors 0" bash -c "[ \"\$('$XSR' vm status '$TMP/retry.sock' --json | jq -r .errors)\" = 0 ]"
stop_vm "$TMP/retry.sock"

out=$("$XSR" migrate --help) && check "migrate --help" grep -q "max-downtime" <<<"$out"
out=$("$XSR" receive --help) && check "receive --help" grep -q "to-file" <<<"$out"
out=$("$XSR" migrate vm:/nonexistent tcp:127.0.0.1:1 2>&1) && rc=0 || rc=$?
check "migrate from a missing VMM: exit 3, clear" bash -c "[ $rc = 3 ] && grep -q 'no VMM control socket' <<<'$out'"
out=$("$XSR" migrate vm:x udp:1 2>&1) && rc=0 || rc=$?
check "bad address: exit 2" bash -c "[ $rc = 2 ] && grep -q 'tcp:HOST:PORT' <<<'$out'"
finish
