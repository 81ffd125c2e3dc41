#!/bin/bash
# QEMU tier: `make demo`'s QEMU path (XSR_DEMO=qemu, the default without
# /dev/kvm) runs end to end: the test guest counts under QEMU, is saved,
# verifies, opens in gdb, is restored by `xsr restore --qemu` and counts on
# from the saved counter with guest_errors at 0.  The demo stops its QEMUs
# by PID; this tier checks none is left.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
for tool in qemu-system-x86_64 python3 nm gdb; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed (tests/install-deps.sh installs it)"
		summary
		exit 0
	fi
done
before=$(pgrep -fc -- "-kernel $ROOT/bin/xsr-guest.elf")
XSR_DEMO=qemu timeout 180 bash "$ROOT/scripts/demo.sh" >"$T/demo.out" 2>&1
rc=$?
sed 's/^/     /' "$T/demo.out" | grep -v '^     *\.xsr\.' | head -60
check "XSR_DEMO=qemu scripts/demo.sh exits 0 ($rc)" test "$rc" -eq 0
mapfile -t c < <(sed -n 's/^ *guest_counters\[0\] = \([0-9]*\), guest_errors = \([0-9]*\)$/\1 \2/p' "$T/demo.out")
check "it shows the counter 5 times: 2 before the save, 3 after the restore (${#c[@]})" test "${#c[@]}" -eq 5
saved=${c[1]%% *}
check "the guest counted before it was saved (${c[0]%% *} -> $saved)" test "${saved:-0}" -gt 0
prev=$saved bad_err=0 grew=1
for i in 2 3 4; do
	v=${c[$i]%% *} e=${c[$i]##* }
	[ "${e:-1}" -eq 0 ] || bad_err=1
	[ "${v:-0}" -gt "$prev" ] || grew=0
	prev=${v:-0}
done
check "the restored guest counts on from the saved counter ($saved -> ${c[2]%% *} -> ${c[3]%% *} -> ${c[4]%% *})" test "$grew" -eq 1
check "guest_errors stays 0" test "$bad_err" -eq 0
check "the image verified in the demo" grep -q ': intact$' "$T/demo.out"
check "gdb showed the saved vCPU's rip" grep -qE '^rip +0x' "$T/demo.out"
sleep 0.5
after=$(pgrep -fc -- "-kernel $ROOT/bin/xsr-guest.elf")
check "no QEMU of the demo is left ($before before, $after after)" test "$after" -le "$before"
XSR_DEMO=bogus bash "$ROOT/scripts/demo.sh" >"$T/bogus.out" 2>&1
rc=$?
check "XSR_DEMO=bogus is refused with exit 2 and names the choices ($rc)" \
	bash -c "[ $rc -eq 2 ] && grep -q 'expected kvm, qemu or rig' '$T/bogus.out'"
summary
