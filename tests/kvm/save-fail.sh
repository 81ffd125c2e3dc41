#!/usr/bin/env bash
# A failed save leaves an earlier file at that path untouched, no temporary
# file behind, and the guest running (not paused).
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

S=$TMP/vm.sock
start_vm "$S" 64M 2
wait_moving "$S"

# 1. The destination fills up half-way: a small tmpfs holds one image only.
D=$TMP/small
mkdir -p "$D"
if mount -t tmpfs -o size=512k xsr-test "$D" 2>/dev/null; then
	MOUNTS+=("$D")
	check "first save fits" bash -c "'$XSR' save vm:'$S' '$D/img.xsr' >/dev/null"
	sum=$(sha256sum <"$D/img.xsr")
	out=$("$XSR" save vm:"$S" "$D/img.xsr" 2>&1) && rc=0 || rc=$?
	check "second save fails (no space)" test "$rc" -eq 3
	check "  ... with a message naming the cause" grep -qi "space" <<<"$out"
	check "  ... the earlier image is untouched" test "$(sha256sum <"$D/img.xsr")" = "$sum"
	check "  ... no temporary file is left" test "$(ls -A "$D")" = img.xsr
	check "  ... the guest is running, not paused" test "$(state "$S")" = running
	check "  ... and counting" wait_moving "$S"
	out=$("$XSR" save --stop vm:"$S" "$D/img.xsr" 2>&1) && rc=0 || rc=$?
	check "failed save --stop fails" test "$rc" -eq 3
	check "  ... and leaves the VM running" test "$(state "$S")" = running
	check "  ... and counting" wait_moving "$S"
	check "the earlier image still verifies" bash -c "'$XSR' verify '$D/img.xsr' >/dev/null"
else
	echo "SKIPPED: disk-full case: cannot mount a tmpfs here (needs root)"
fi

# 2. The reader of a stream goes away: the VMM gets EPIPE, not SIGPIPE.
out=$( ("$XSR" save vm:"$S" - | head -c 1000 >/dev/null) 2>&1) || true
check "a save whose reader vanishes leaves the VMM alive" alive "$VM_PID"
check "  ... and the guest running" test "$(state "$S")" = running
check "  ... and counting" wait_moving "$S"

# 3. The destination directory does not exist.
out=$("$XSR" save vm:"$S" "$TMP/no/such/dir/img.xsr" 2>&1) && rc=0 || rc=$?
check "save into a missing directory fails" test "$rc" -ne 0
check "  ... naming the path" grep -q "no/such/dir" <<<"$out"
check "  ... the guest keeps running" test "$(state "$S")" = running
check "guest_errors is 0 after all that" test "$(errors "$S")" = 0
stop_vm "$S"
finish
