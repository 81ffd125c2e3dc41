#!/bin/bash
# QEMU tier: `xsr import` of dump-guest-memory files (issue 18).  The
# project's test guest (bin/xsr-guest.elf, -kernel, PVH) runs under TCG, is
# stopped, and from the same stopped guest QMP writes `info registers`, a
# dump in every format this QEMU offers (ELF with paging false and true,
# kdump-zlib, and kdump-lzo / kdump-snappy where built in) and a migration
# stream.  Each dump's import must verify, hold the stream import's memory
# page for page, vCPU 0's registers as `info registers` printed them (EFER's
# LME and LMA inferred), the guest's counter through vCPU 0's page tables,
# and open in gdb and readelf.  The flattened kdump is also read rebuilt (as
# `makedumpfile -R` leaves it) and with its pages stored again raw, with
# LZO (lzop's) and as snappy (tests/qemu/kdumpconv.py): Debian's QEMU 7.2
# writes kdump-zlib only.  A VMCOREINFO note (added: the test guest has no
# vmcoreinfo driver) must become the image's VMCOREINFO.  Hostile variants
# (cut files, a note past the notes, a PT_LOAD past the file, a kdump bitmap
# or page_desc out of range, damaged chunks) are refused with a message
# naming an offset and exit status 1..127, leaving no output.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
. "$(dirname "$0")/lib.inc"
D=$T/g
mkdir -p "$D"

# The guest, stopped after it ran a second; regs.txt, *.dump, stream.bin and formats.txt in $D.
cat >"$T/dumps.py" <<'EOF'
import sys, time
sys.path.insert(0, sys.argv[3])
from qmp import QMP
q, out = QMP(sys.argv[1]), sys.argv[2]
fmts = q.cmd('query-dump-guest-memory-capability')['formats']
open(out + '/formats.txt', 'w').write(' '.join(fmts) + '\n')
q.cmd('cont')
time.sleep(1)
q.cmd('stop')
open(out + '/regs.txt', 'w').write(q.hmp('info registers'))
q.cmd('dump-guest-memory', paging=False, protocol='file:' + out + '/elf.dump')
q.cmd('dump-guest-memory', paging=True, protocol='file:' + out + '/elfpg.dump')
for f in ('kdump-zlib', 'kdump-lzo', 'kdump-snappy'):
    if f in fmts:
        q.cmd('dump-guest-memory', paging=False, format=f, protocol='file:' + out + '/' + f + '.dump')
q.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})
q.cmd('migrate', uri='exec:cat > ' + out + '/stream.bin')
st = q.wait_migration()['status']
if st != 'completed':
    sys.exit('migration ' + st)
EOF
run_guest() {
	qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -S -kernel "$GUEST" \
		-qmp "unix:$D/q.sock,server=on,wait=off" </dev/null >"$D/qemu.log" 2>&1 &
	local pid=$!
	QPIDS+=("$pid")
	timeout 300 python3 "$T/dumps.py" "$D/q.sock" "$D" "$HERE" >"$D/qmp.log" 2>&1
	local rc=$?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}
if ! check "QEMU boots the guest, stops it, dumps it and migrates it to a file" run_guest; then
	sed 's/^/     /' "$D/qmp.log" "$D/qemu.log" | head
	summary
	exit 1
fi
echo "     this QEMU's dump formats: $(cat "$D/formats.txt")"
for f in kdump-lzo kdump-snappy; do
	grep -qw "$f" "$D/formats.txt" || echo "     $f: not built into this QEMU; its pages are made by kdumpconv.py below"
done
check "xsr import of the migration stream (the reference)" "$XSR" import "$D/stream.bin" "$D/stream.xsr"
END=4000000 # pc.ram, 64 MiB
CVA=0x$(sym guest_counters)

# one NAME FILE WHAT: the checks on one dump's import
one() {
	local n=$1 f=$2 w=$3 img=$D/$1.xsr
	if ! check "$w: xsr import" "$XSR" import -v "$f" "$img"; then
		sed 's/^/     /' "$T/last.out" | head -5
		return
	fi
	cp "$T/last.out" "$D/$n.imp"
	grep 'dump-guest-memory\|kdump header' "$D/$n.imp" | sed 's/^/     /'
	check "$w: xsr verify" "$XSR" verify "$img"
	check "$w: pc.ram is the stream import's, page by page" python3 "$HERE/elfmem.py" "$D/stream.xsr" "$img" "0-$END"
	grep 'compared' "$T/last.out" | sed 's/^/     /'
	"$XSR" info --json --vcpu 0 "$img" >"$D/$n.json" 2>&1
	check "$w: vCPU 0 is QEMU's info registers (EFER: LME and LMA inferred, the guest sets no more)" \
		python3 "$HERE/regs.py" "$D/regs.txt" "$D/$n.json" --absent fpu
	grep 'registers compared' "$T/last.out" | sed 's/^/     /'
	check "$w: guest_counters[0] (> 0) through vCPU 0's page tables is the one at its physical address" \
		bash -c "v=\$('$XSR' dump --vaddr $CVA --vcpu 0 --len 8 --force '$img' | od -An -tu8) && [ -n \"\$v\" ] && [ \$v -gt 0 ] &&
			 [ \"\$v\" = \"\$('$XSR' dump --paddr $CPA --len 8 --force '$img' | od -An -tu8)\" ]"
	"$XSR" info "$img" >"$D/$n.info" 2>&1
	check "$w: the producer says dump-guest-memory" grep -q 'hypervisor qemu dump-guest-memory' "$D/$n.info"
	check "$w: kind core, the header and notes kept (qemu dump: header note x2)" \
		bash -c "grep -q '^kind: *core' '$D/$n.info' && grep -q 'qemu dump: header note x2' '$D/$n.info'"
	if command -v gdb >/dev/null; then
		local rip
		rip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rip'])" "$D/$n.json")
		check "$w: gdb reads the image's NT_PRSTATUS (rip $rip)" \
			bash -c "gdb -nx -batch -c '$img' -ex 'p/x \$rip' 2>/dev/null | grep -q '= $rip\$'"
	fi
	if command -v readelf >/dev/null; then
		check "$w: readelf reads the image's notes and loads" \
			bash -c "readelf -lnW '$img' | grep -q NT_PRSTATUS && readelf -lW '$img' | grep -q LOAD"
	fi
}
one elf "$D/elf.dump" "ELF, paging false"
one elfpg "$D/elfpg.dump" "ELF, paging true"
check "ELF, paging true: CONFIG says paging" grep -q '"paging": true' "$D/elfpg.info"
check "ELF, paging false: the BIOS's PT_LOAD is kept at 0xfffc0000" grep -q 'pfn 0x0000fffc0..0x0000fffff' "$D/elf.info"
for f in kdump-zlib kdump-lzo kdump-snappy; do
	[ -s "$D/$f.dump" ] && one "$f" "$D/$f.dump" "$f (QEMU, flattened)"
done
check "kdump-zlib: CONFIG says kdump-zlib, flattened" \
	grep -q '"format": "kdump-zlib", "flattened": true' "$D/kdump-zlib.info"

# the flattened kdump rebuilt, and its pages stored again in each way
K=$D/kdump-zlib.dump
for p in zlib raw lzo snappy; do
	if [ "$p" = lzo ] && ! command -v lzop >/dev/null; then
		echo "SKIPPED: lzop not installed (tests/install-deps.sh installs it): no LZO pages"
		continue
	fi
	if check "kdump rebuilt, pages $p (kdumpconv.py)" python3 "$HERE/kdumpconv.py" "$K" "$D/k-$p.dump" --pages "$p"; then
		one "k-$p" "$D/k-$p.dump" "kdump, not flattened, pages $p"
		check "kdump, pages $p: the import decoded $p pages" grep -Eq "[ ,]$p [1-9]" "$D/k-$p.imp"
	fi
done

# VMCOREINFO: a note added to the ELF and to the kdump
VM='OSRELEASE=6.1.0-xsr-test\nPAGESIZE=4096\nNUMBER(phys_base)=0\n'
vmci_ok() { # IMG: the image's VMCOREINFO note holds the text
	python3 - "$1" "$VM" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
want = sys.argv[2].replace('\\n', '\n').encode()
phoff, = struct.unpack_from('<Q', d, 32)
for i in range(struct.unpack_from('<H', d, 56)[0]):
    t, _, off, _, _, fs = struct.unpack_from('<IIQQQQ', d, phoff + 56 * i)
    if t != 4:
        continue
    p = off
    while p < off + fs:
        nsz, dsz, ty = struct.unpack_from('<III', d, p)
        name = d[p + 12:p + 12 + nsz]
        desc = d[p + 12 + (nsz + 3) // 4 * 4:][:dsz]
        if name == b'VMCOREINFO\0':
            sys.exit(0 if desc == want else 'VMCOREINFO note holds %r' % desc)
        p += 12 + (nsz + 3) // 4 * 4 + (dsz + 3) // 4 * 4
sys.exit('no VMCOREINFO note')
EOF
}
python3 "$HERE/dumpmut.py" elf-vmcoreinfo "$D/elf.dump" "$D/elf-vmci.dump" "$VM"
python3 "$HERE/kdumpconv.py" "$K" "$D/k-vmci.dump" --vmcoreinfo "$VM"
for v in elf-vmci k-vmci; do
	check "$v: xsr import" "$XSR" import "$D/$v.dump" "$D/$v.xsr"
	check "$v: xsr verify" "$XSR" verify "$D/$v.xsr"
	check "$v: the image has a VMCOREINFO section" bash -c "'$XSR' info '$D/$v.xsr' | grep -q vmcoreinfo"
	check "$v: its VMCOREINFO note is the guest's text" vmci_ok "$D/$v.xsr"
	check "$v: memory still the stream's" python3 "$HERE/elfmem.py" "$D/stream.xsr" "$D/$v.xsr" "0-$END"
done

check "a streamed image of the kdump from a pipe verifies" \
	bash -c "cat '$K' | '$XSR' import --layout stream - '$D/s.xsr' && '$XSR' verify '$D/s.xsr'"
check "its conversion to seekable holds the same memory" \
	bash -c "'$XSR' convert '$D/s.xsr' '$D/s.elf' && python3 '$HERE/elfmem.py' '$D/kdump-zlib.xsr' '$D/s.elf' 0-$END"

# Hostile inputs: refused with a message naming an offset, never a crash.
refused() { # NAME FILE
	rm -f "$T/bad.elf"
	"$XSR" import "$2" "$T/bad.elf" >"$T/bad.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'offset 0x' "$T/bad.out" && [ ! -e "$T/bad.elf" ]; then
		ok "$1 is refused: $(head -c 170 "$T/bad.out" | tr '\n' ' ')"
	else
		bad "$1 is refused naming an offset (exit $rc)"
		sed 's/^/     /' "$T/bad.out" | head -5
	fi
}
S=$(stat -c %s "$D/elf.dump")
# (QEMU 7.2 ends the file with 11 octets of .shstrtab, which the import does not read: cut into the last page)
for n in 100 300 900 5000 $((S / 2)) $((S - 4096)); do
	head -c "$n" "$D/elf.dump" >"$T/cut"
	refused "the ELF dump cut to $n octets" "$T/cut"
done
S=$(stat -c %s "$K")
for n in 100 5000 $((S / 2)) $((S - 17)) $((S - 1)); do
	head -c "$n" "$K" >"$T/cut"
	refused "the flattened kdump cut to $n octets" "$T/cut"
done
S=$(stat -c %s "$D/k-zlib.dump")
for n in 500 5000 $((S / 2)) $((S - 1)); do
	head -c "$n" "$D/k-zlib.dump" >"$T/cut"
	refused "the kdump cut to $n octets" "$T/cut"
done
for m in elf-note-past-end elf-load-past-end elf-load-offset; do
	python3 "$HERE/dumpmut.py" "$m" "$D/elf.dump" "$T/mut"
	refused "ELF: $m" "$T/mut"
done
for m in kd-bitmap-blocks kd-max-mapnr kd-note-size kd-desc-offset kd-desc-size kd-desc-array kd-zlib-corrupt; do
	python3 "$HERE/dumpmut.py" "$m" "$D/k-zlib.dump" "$T/mut"
	refused "kdump: $m" "$T/mut"
done
for m in flat-chunk-len flat-overlap flat-no-end; do
	python3 "$HERE/dumpmut.py" "$m" "$K" "$T/mut"
	refused "flattened: $m" "$T/mut"
done
summary
