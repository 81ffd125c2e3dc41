#!/bin/bash
# Xen PV images laid out for crash (docs/xsrelf-format.md, "Xen PV guests and
# crash"): the golden `xl dump-core` and `xl save` of the rig's 128 MiB PV
# domU are imported; crash 8.0.x opens them directly with the guest's debug
# vmlinux, while gdb, readelf, eu-readelf and xsrelf's own readers keep
# working, and conversions stay byte for byte.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-crash-direct
. tests/xen/lib.inc
rm -rf "$B" && mkdir -p "$B"

# Header flags, PT_LOAD count and p_align of an image; the guest-physical
# address (by p_vaddr) of the first file offset holding $MARK.
phdrs() {
	python3 - "$1" "$MARK" <<'EOF'
import struct, sys
f = open(sys.argv[1], "rb"); d = f.read()
phoff, = struct.unpack_from("<Q", d, 0x20); phnum, = struct.unpack_from("<H", d, 0x38)
flags, = struct.unpack_from("<I", d, 0x50)
loads = [struct.unpack_from("<IIQQQQQQ", d, phoff + 56 * i) for i in range(phnum)]
loads = [l for l in loads if l[0] == 1]
at = d.find(sys.argv[2].encode())
gpa = [l[3] + at - l[2] for l in loads[:-1] if l[2] <= at < l[2] + l[5]]
print("flags=%d loads=%d align=%s gpa=%s" % (flags, len(loads), ",".join(sorted({str(l[7]) for l in loads})),
                                          hex(gpa[0]) if gpa else "none"))
EOF
}

. tests/xen/vmlinux.inc
VM=$(golden_vmlinux crash "crash on the Xen images") || VM=""
printf '%s\n' sys bt 'bt ffff888005258000' 'log | tail -3' 'vtop ffffffff81000000' 'kmem -i' 'p jiffies_64' \
	'help -D' >"$B/cmds"
run_crash() { timeout 180 crash -s "$VM" "$1" -i "$B/cmds" </dev/null >"$2" 2>&1; }
has() { grep -q -- "$2" "$1"; }

for kind in core save; do
	Z=$G/xen417-rigu.$kind.zst
	if [ ! -f "$Z" ]; then
		ko "golden $Z missing"
		continue
	fi
	zstd -q -d -c "$Z" >"$B/rigu.$kind"
	I=$B/$kind.elf
	check "$kind: import" "$X" import "$B/rigu.$kind" "$I"
	check "$kind: xsr verify" "$X" verify "$I"
	P=$(phdrs "$I")
	echo "     $kind: $P, $(stat -c %s "$I") octets"
	want=2
	[ "$kind" = core ] && want=65 # 64 runs of 2 MiB consecutive in pfn and mfn, + the p2m tree
	check "$kind: header flag XEN_MACHINE_PADDR, $want PT_LOADs, p_align 0" \
		bash -c "[ '${P%% gpa=*}' = 'flags=2 loads=$want align=0' ]"
	check "$kind: readelf -a accepts it" bash -c "readelf -a '$I' >/dev/null 2>'$B/re.err' && [ ! -s '$B/re.err' ]"
	if command -v eu-readelf >/dev/null; then
		check "$kind: eu-readelf -a accepts it" bash -c "eu-readelf -a '$I' >/dev/null 2>'$B/eu.err' && [ ! -s '$B/eu.err' ]"
	else
		echo "SKIPPED: $kind: eu-readelf check (elfutils is not installed); nothing counted for it"
	fi
	check "$kind: notes are PRSTATUS, QEMU, VMCOREINFO, Xen CRASH_INFO" bash -c \
		"readelf -nW '$I' | grep -v '^  Owner' | awk '/^  [A-Z]/ {printf \"%s \", \$1}' | grep -qx 'CORE QEMU VMCOREINFO Xen '"
	check "$kind: the VMCOREINFO found in guest memory is the kernel's" bash -c \
		"readelf -x .xsr.vmcoreinfo '$I' | grep -q 'OSRELEASE=6.1.0'"
	if command -v gdb >/dev/null; then
		check "$kind: gdb reads vCPU 0's registers (a kernel rip)" bash -c \
			"gdb -nx -batch -c '$I' -ex 'info registers rip' 2>&1 | grep -q 'rip *0xffffffff8'"
		gpa=${P##*gpa=}
		check "$kind: gdb reads the marker at its guest-physical address $gpa" bash -c \
			"gdb -nx -batch -c '$I' -ex 'x/s $gpa' 2>&1 | grep -q '$MARK'"
		check "$kind: the gdb script opens it (xsr info)" bash -c \
			"gdb -nx -batch -c '$I' -ex 'source gdb-scripts/xsrelf.py' -ex 'xsr info' 2>&1 | grep -q 'vcpu'"
	else
		echo "SKIPPED: $kind: gdb checks (gdb is not installed; tests/install-deps.sh installs it); nothing counted for them"
	fi
	check "$kind: seekable -> stream -> seekable is byte for byte" bash -c \
		"'$X' convert '$I' '$B/$kind.str' --to stream && '$X' convert '$B/$kind.str' '$B/$kind.rt' && cmp '$I' '$B/$kind.rt'"
	check "$kind: import --stream, then convert, gives the same image" bash -c \
		"'$X' import --stream '$B/rigu.$kind' '$B/$kind.istr' && '$X' convert '$B/$kind.istr' '$B/$kind.is' && cmp '$I' '$B/$kind.is'"
	# A p_paddr that disagrees with the p2m tree must be refused (the reader re-makes the layout).
	cp "$I" "$B/bad.elf"
	python3 - "$B/bad.elf" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b"); f.seek(128 + 56 + 24); p, = struct.unpack("<Q", f.read(8))
f.seek(128 + 56 + 24); f.write(struct.pack("<Q", p + 0x200000))
EOF
	check "$kind: a PT_LOAD whose p_paddr disagrees with the p2m tree is refused" bash -c \
		"! '$X' info '$B/bad.elf' >'$B/bad.out' 2>&1 && grep -q 'not the PT_LOAD the memory map and the p2m tree make' '$B/bad.out'"
	rm -f "$B/bad.elf" "$B/$kind.str" "$B/$kind.rt" "$B/$kind.istr" "$B/$kind.is"
	if [ "$kind" = save ]; then
		check "save: the export is still the xl save, byte for byte" bash -c \
			"'$X' export '$I' '$B/save.exp' && cmp '$B/rigu.save' '$B/save.exp'"
		rm -f "$B/save.exp"
	fi
	if [ -n "$VM" ]; then
		O=$B/crash-$kind.txt
		run_crash "$I" "$O"
		cp "$O" "$B/crash-$kind.kept.txt"
		check "$kind: crash sys: RELEASE 6.1.0-56-amd64" has "$O" 'RELEASE: 6.1.0-56-amd64'
		check "$kind: crash reads it as a Xen kdump (KDUMP_ELF64, KDUMP_MFN_LIST)" bash -c \
			"grep -q 'KDUMP_LOCAL|KDUMP_ELF64' '$O' && grep -q 'KDUMP_P2M_INIT|KDUMP_MFN_LIST' '$O'"
		check "$kind: crash vtop ffffffff81000000 gives PHYSICAL 1000000" bash -c \
			"grep -A1 '^VIRTUAL *PHYSICAL' '$O' | grep -q '^ffffffff81000000 *1000000'"
		check "$kind: crash kmem -i: TOTAL MEM" has "$O" 'TOTAL MEM *20516'
		if [ "$kind" = core ]; then
			check "core: crash bt: xen_hypercall_pv, xen_safe_halt .. xen_start_kernel" bash -c \
				"grep -q 'exception RIP: xen_hypercall_pv' '$O' && grep -q '#0 .* xen_safe_halt' '$O' && grep -q 'xen_start_kernel' '$O'"
			check "core: crash p jiffies_64 = 4294901056" has "$O" 'jiffies_64 = $1 = 4294901056'
		else
			check "save: crash log ends with the suspend" has "$O" 'suspending xenstore'
			check "save: crash bt of the suspending task: xen_suspend" has "$O" 'xen_suspend at'
			check "save: crash p jiffies_64 = 4294924030" has "$O" 'jiffies_64 = $1 = 4294924030'
		fi
	fi
	rm -f "$B/rigu.$kind"
done
rm -f "$B"/*.elf
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
