#!/bin/bash
# QEMU tier: the project's test guest under real QEMU (TCG), booted by
# `-kernel bin/xsr-guest.elf` through its PVH entry (guest/entry.S).  It
# must count with guest_errors at 0; QEMU's own save and restore
# (`stop`, `migrate "exec:cat > FILE"`, a fresh QEMU with `-incoming defer`,
# `migrate-incoming`, `cont`) must leave it counting on from where it
# stopped; and `xsr import` of that stream must hold the counter read at
# the stop, at the symbol's guest-physical address and through vCPU 0's
# page tables.  QEMU is always stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
. "$(dirname "$0")/lib.inc"
CVA=0x$(sym guest_counters)
PML4=$(pa pvh_pml4)
echo "     guest_counters at $CPA, guest_errors at $EPA (guest-physical)"
check "the guest ELF has the PVH note (Xen, XEN_ELFNOTE_PHYS32_ENTRY)" \
	bash -c "readelf -nW '$GUEST' | grep -A0 '^ *Xen ' | grep -q '0x00000012'"

# qemu_run NAME SIDE ARG...: guest_qmp (lib.inc) on pc-i440fx-7.2 in $T/NAME
qemu_run() { guest_qmp "$T/$1" pc-i440fx-7.2 "${@:2}"; }
# kv NAME KEY: a number guestqmp.py printed, -1 when it printed none
kv() { guest_kv "$T/$1" "$2"; }
# is EXPR: an arithmetic test, for check

check "QEMU boots the guest and guestqmp.py watches it" qemu_run src run "$T/src" "$CPA" "$EPA"
C1=$(kv src c1) C2=$(kv src c2) S=$(kv src stop_c)
check "the guest counts under QEMU (guest_counters[0] = $C1)" is "$C1 > 0"
check "it keeps counting ($C1 -> $C2)" is "$C2 > $C1"
check "guest_errors is 0 while it runs" is "$(kv src e1) == 0 && $(kv src e2) == 0"
check "stop stops it ($S, then $(kv src stop_c2))" is "$S > 0 && $S >= $C2 && $S == $(kv src stop_c2)"
check "guest_errors is 0 at the stop" is "$(kv src stop_e) == 0"
check "migrate \"exec:cat > FILE\" completes" grep -qx 'migrate=completed' "$T/src/kv"
STREAM=$T/src/stream.bin
if [ ! -s "$STREAM" ] || [ "$S" -le 0 ]; then
	summary
	exit 1
fi

check "a fresh QEMU with -incoming defer restores the stream" qemu_run dst incoming "$STREAM" "$CPA" "$EPA"
R0=$(kv dst in_c0) R1=$(kv dst in_c1) R2=$(kv dst in_c2)
check "migrate-incoming completes" grep -qx 'incoming=completed' "$T/dst/kv"
check "before cont the counter is the one read at the stop ($R0 = $S)" is "$R0 == $S"
check "after cont it counts on from there ($R1 -> $R2)" is "$R1 > $S && $R2 > $R1"
check "guest_errors stays 0 after the restore" \
	is "$(kv dst in_e0) == 0 && $(kv dst in_e1) == 0 && $(kv dst in_e2) == 0"

IMG=$T/img.elf
check "xsr import of QEMU's stream" "$XSR" import "$STREAM" "$IMG"
check "xsr verify of the image" "$XSR" verify "$IMG"
# u64 ARGS...: xsr dump's 8 octets as a decimal, -1 when it cannot
u64() {
	local v
	v=$("$XSR" dump "$@" --len 8 --force "$IMG" | od -An -tu8 | tr -d ' ')
	echo "${v:--1}"
}
V=$(u64 --paddr "$CPA")
check "the image's guest_counters[0] is the one read at the stop ($V = $S)" is "$V == $S"
V=$(u64 --paddr "$EPA")
check "the image's guest_errors is 0 ($V)" is "$V == 0"
V=$(u64 --vaddr "$CVA" --vcpu 0)
check "guest_counters[0] at its linked address, through vCPU 0's page tables ($V)" is "$V == $S"
"$XSR" info --json --vcpu 0 "$IMG" >"$T/vcpu.json" 2>&1
check "vCPU 0's CR3 is the PVH entry's PML4 ($PML4)" python3 -c "
import json, sys
v = json.load(open(sys.argv[1]))
sys.exit(0 if int(str(v['cr3']), 0) == int(sys.argv[2], 0) else 'cr3 %s' % v['cr3'])" "$T/vcpu.json" "$PML4"
summary
