#!/usr/bin/env bash
# xsr vm start / status / pause / resume / stop, and their error paths.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

S=$TMP/vm.sock
check "vm start 2 vCPUs" start_vm "$S" 64M 2
check "status: running" test "$(state "$S")" = running
check "status: pid is the daemon's" test "$(status "$S" | jq .pid)" = "$VM_PID"
check "status: 2 vCPUs, 2 counters" test "$(status "$S" | jq '[.vcpus, (.counters|length)] == [2,2]')" = true
check "status: 64 MiB" test "$(status "$S" | jq -r .mem)" = $((64 << 20))
check "counters move" wait_moving "$S"
check "status (text) names the state" bash -c "'$XSR' vm status '$S' | grep -q '^state: *running'"

check "pause" "$XSR" vm pause "$S"
check "status: paused" test "$(state "$S")" = paused
a=$(counters "$S")
sleep 0.3 # the guest must NOT move: only a wait can show that
check "paused counters stay put" test "$(counters "$S")" = "$a"
check "pause twice is harmless" "$XSR" vm pause "$S"
check "resume" "$XSR" vm resume "$S"
check "status: running again" test "$(state "$S")" = running
check "counters move after resume" wait_moving "$S"
check "guest_errors is 0" test "$(errors "$S")" = 0

# Issue 15, finding 6, for the verbs that need a live guest: stdout that
# cannot be written is a failure (exit 3, a message), not a silent success,
# and the guest runs on.
full() { # description, then the command; stdout goes to /dev/full
	local d=$1 rc=0
	shift
	"$@" >/dev/full 2>"$TMP/full.err" || rc=$?
	check "stdout on /dev/full: $d -> exit 3 ($rc), saying why" \
		bash -c "[ $rc -eq 3 ] && grep -qi 'space\\|writ' '$TMP/full.err'"
}
full "vm status" "$XSR" vm status "$S"
full "vm status --json" "$XSR" vm status "$S" --json
full "save vm:SOCK -" "$XSR" save "vm:$S" -
full "core vm:SOCK -" "$XSR" core "vm:$S" -
check "the guest runs on after them" test "$(state "$S")" = running
check "  ... and its counters move" wait_moving "$S"

out=$("$XSR" vm start --mem 4M --vcpus 1 --control "$S" 2>&1) && rc=0 || rc=$?
check "second VMM on a live socket is refused" test "$rc" -ne 0
check "  ... saying so" grep -q "in use" <<<"$out"

check "stop" "$XSR" vm stop "$S"
check "stop removes the socket" test ! -e "$S"
for ((i = 0; i < 100; i++)); do alive "$VM_PID" || break; sleep 0.05; done
check "stop ends the daemon" bash -c "! [ -d /proc/$VM_PID ] || grep -q '^State:.*Z' /proc/$VM_PID/status"

out=$("$XSR" vm status "$S" 2>&1) && rc=0 || rc=$?
check "status of a missing socket fails" test "$rc" -eq 3
check "  ... with a clear message" grep -q "no VMM control socket at $S" <<<"$out"
out=$("$XSR" vm start --mem 1M --vcpus 1 --control "$TMP/small.sock" 2>&1) && rc=0 || rc=$?
check "too little memory is refused" test "$rc" -ne 0
check "  ... naming the size" grep -q "memory size" <<<"$out"
check "refused start leaves no socket" test ! -e "$TMP/small.sock"
"$XSR" vm start --vcpus 1 --mem 4M >/dev/null 2>&1 && rc=0 || rc=$?
check "start without --control is a usage error" test "$rc" -eq 2
"$XSR" vm frobnicate x >/dev/null 2>&1 && rc=0 || rc=$?
check "unknown subcommand is a usage error" test "$rc" -eq 2
# The data mode: --fill 0.5 of a 16 MiB guest is 3 MiB of data pages above
# 4 MiB (1536 pages with the guest's own few), rewritten by --dirty-mbps.
D=$TMP/data.sock
check "vm start --fill 0.5 --dirty-mbps 20" start_vm "$D" 16M 1 --fill 0.5 --dirty-mbps 20
check "  ... the guest counts" wait_moving "$D"
check "  ... the VMM says so in its log" grep -q "data mode: 1536 pages" "$D.log"
check "  ... and runs the dirtier" grep -q "dirtier: 20.0 MB/s over the data-mode pages" "$D.log"
"$XSR" save "vm:$D" "$TMP/data.elf" --json >"$TMP/data.json" 2>&1
check "  ... a save holds the data pages (>= 1536 with data)" test "$(jq -r .pages "$TMP/data.json")" -ge 1536
check "  ... and verifies" "$XSR" verify "$TMP/data.elf"
"$XSR" vm stop "$D" >/dev/null
for bad in "--fill 1.5" "--fill x" "--dirty-mbps -1"; do
	"$XSR" vm start --mem 16M --vcpus 1 $bad --control "$TMP/bad.sock" >/dev/null 2>&1 && rc=0 || rc=$?
	check "vm start $bad is a usage error" test "$rc" -eq 2
done
for v in "vm" "vm start" "vm status" "vm pause" "vm resume" "vm stop" save core restore; do
	check "xsr $v --help" bash -c "'$XSR' $v --help | grep -q usage"
done
finish
