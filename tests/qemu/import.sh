#!/bin/bash
# QEMU tier: `xsr import` of real QEMU migration streams (issue 18, first
# slice).  A BIOS-only guest runs a second under TCG, is stopped, and from
# the same stopped guest QMP writes `info registers`, a dump-guest-memory
# ELF (paging false) and a `migrate "exec:cat > FILE"` stream; the stream's
# import must verify, hold pc.ram identical to the dump page by page, and
# the vCPU registers QEMU printed.  Cut and damaged streams are refused
# with a message naming an offset.  QEMU is always stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
HERE=$ROOT/tests/qemu
for tool in qemu-system-x86_64 python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed (tests/install-deps.sh installs qemu-system-x86)"
		summary
		exit 0
	fi
done
QPIDS=()
trap 'for p in "${QPIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT

# run_guest DIR MACHINE MIB: a stopped guest's regs.txt, dump.elf and stream.bin in DIR
run_guest() {
	local d=$1 m=$2 mib=$3
	mkdir -p "$d"
	qemu-system-x86_64 -accel tcg -machine "$m" -m "$mib" -nographic -nodefaults -S \
		-qmp "unix:$d/q.sock,server=on,wait=off" </dev/null >"$d/qemu.log" 2>&1 &
	local pid=$!
	QPIDS+=("$pid")
	python3 "$HERE/qmp.py" "$d/q.sock" "$d" 1 >"$d/qmp.log" 2>&1
	local rc=$?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}

# import_checks DIR MACHINE MIB: the checks on one guest
import_checks() {
	local d=$1 m=$2 mib=$3 end
	end=$(printf '%x' $((mib << 20)))
	if ! check "$m, $mib MiB: QEMU runs, stops, dumps and migrates to a file" run_guest "$d" "$m" "$mib"; then
		sed 's/^/     /' "$d/qmp.log" "$d/qemu.log" | head
		return
	fi
	local t0 t1
	t0=$(date +%s%N)
	check "$m: xsr import of the stream" "$XSR" import "$d/stream.bin" "$d/img.elf"
	t1=$(date +%s%N)
	echo "     stream $(stat -c %s "$d/stream.bin") octets, $(grep -o '[0-9.]* s' "$d/qmp.log") to migrate, import $(((t1 - t0) / 1000000)) ms"
	check "$m: xsr verify of the image" "$XSR" verify "$d/img.elf"
	"$XSR" info "$d/img.elf" >"$d/info.txt" 2>&1
	check "$m: xsr info states the layout inferred from the machine" \
		grep -q "config: .*\"layout\": \"pc.ram 0x0-0x$end at 0x0 (inferred from the machine type and RAM size)\"" "$d/info.txt"
	check "$m: the producer names QEMU and the machine" grep -q "hypervisor qemu $m" "$d/info.txt"
	check "$m: the other RAM blocks and device sections are kept (PASSTHRU)" grep -q 'qemu: SECTION_FULL x[0-9]* EOF' "$d/info.txt"
	check "$m: pc.ram in the image is the dump-guest-memory ELF's, page by page" \
		python3 "$HERE/elfmem.py" "$d/dump.elf" "$d/img.elf" "0-$end"
	grep 'compared' "$T/last.out" | sed 's/^/     /'
	"$XSR" info --json --vcpu 0 "$d/img.elf" >"$d/vcpu.json"
	check "$m: vCPU 0 registers are QEMU's info registers" python3 "$HERE/regs.py" "$d/regs.txt" "$d/vcpu.json"
	grep 'registers compared' "$T/last.out" | sed 's/^/     /'
	if command -v gdb >/dev/null; then
		local rip
		rip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rip'])" "$d/vcpu.json")
		check "$m: gdb reads the image's NT_PRSTATUS (rip $rip)" \
			bash -c "gdb -nx -batch -c '$d/img.elf' -ex 'p/x \$rip' 2>/dev/null | grep -q '= $rip\$'"
	fi
}

import_checks "$T/fx" pc-i440fx-7.2 64
import_checks "$T/q35" pc-q35-7.2 96
D=$T/fx
if [ ! -s "$D/stream.bin" ]; then
	summary
	exit 1
fi
check "a streamed image from a pipe verifies" \
	bash -c "cat '$D/stream.bin' | '$XSR' import --layout stream - '$D/s.xsr' && '$XSR' verify '$D/s.xsr'"
check "its conversion to seekable holds the same memory" \
	bash -c "'$XSR' convert '$D/s.xsr' '$D/s.elf' && python3 '$HERE/elfmem.py' '$D/img.elf' '$D/s.elf' 0-4000000"
check "the import of a file and of a pipe are the same octets" \
	bash -c "cat '$D/stream.bin' | '$XSR' import - '$D/p.elf' && cmp '$D/img.elf' '$D/p.elf'"
# --ram-below-4g: pc.ram past 32 MiB goes to 4 GiB
check "--ram-below-4g 32M: two runs, the second at 4 GiB" \
	bash -c "'$XSR' import --ram-below-4g 32M '$D/stream.bin' '$D/low.elf' && '$XSR' verify '$D/low.elf' &&
		 '$XSR' info '$D/low.elf' | grep -q 'pfn 0x000100000..0x000101fff' &&
		 '$XSR' info '$D/low.elf' | grep -q 'given by the caller'"
check "--ram-below-4g 32M: pfn 0x100000 is pc.ram's page at 32 MiB" \
	bash -c "cmp <('$XSR' cat-page '$D/low.elf' 0x100000) <('$XSR' cat-page '$D/img.elf' 0x2000)"

# Hostile inputs: refused with a message naming an offset, never a crash.
refused() { # NAME FILE
	"$XSR" import "$2" "$T/bad.elf" >"$T/bad.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'offset 0x' "$T/bad.out" && [ ! -e "$T/bad.elf" ]; then
		ok "$1 is refused: $(head -c 150 "$T/bad.out" | tr '\n' ' ')"
	else
		bad "$1 is refused naming an offset (exit $rc)"
		sed 's/^/     /' "$T/bad.out" | head -5
	fi
}
SIZE=$(stat -c %s "$D/stream.bin")
for n in 12 40 5000 $((SIZE / 2)) $((SIZE - 30)) $((SIZE - 1)); do
	head -c "$n" "$D/stream.bin" >"$T/cut.bin"
	refused "the stream cut to $n octets" "$T/cut.bin"
done
# flip(OFFSET, XOR): a copy with one octet changed
flip() { python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[int(sys.argv[2], 0)] ^= int(sys.argv[3], 0); open(sys.argv[4], 'wb').write(d)
" "$D/stream.bin" "$1" "$2" "$T/flip.bin"; }
flip 11 0x40 # the CONFIGURATION name's length
refused "a flipped CONFIGURATION length" "$T/flip.bin"
RAMOFF=$(python3 -c "
import sys
d = open(sys.argv[1], 'rb').read(); print(d.index(b'\x06pc.ram') + 7)" "$D/stream.bin")
flip $((RAMOFF + 3)) 0x10 # pc.ram's used length
refused "a flipped RAM block length" "$T/flip.bin"
flip $((SIZE - $(python3 -c "
import sys
d = open(sys.argv[1], 'rb').read(); print(len(d) - d.rindex(b'\x06'))" "$D/stream.bin") + 2)) 0x01 # the VMDESCRIPTION length
refused "a flipped VMDESCRIPTION length" "$T/flip.bin"
CPUOFF=$(python3 -c "
import sys
d = open(sys.argv[1], 'rb').read(); print(d.index(b'\x03cpu\x00\x00\x00\x00') + 12 + 8 * 3)" "$D/stream.bin")
flip "$CPUOFF" 0x80 # inside the cpu state: imports, with a different register
check "a flipped octet of the cpu state still imports (it is state, not structure)" "$XSR" import "$T/flip.bin" "$T/f.elf"
rm -f "$T/f.elf"
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
# the first entry naming pc.ram (flags octet, then the name) also gets the XBZRLE flag
i = min(x for x in (d.find(b'\\x08\\x06pc.ram', 64), d.find(b'\\x02\\x06pc.ram', 64)) if x > 0)
d[i] |= 0x40
open(sys.argv[2], 'wb').write(d)" "$D/stream.bin" "$T/xbzrle.bin"
refused "an XBZRLE entry (not supported yet)" "$T/xbzrle.bin"
grep -q 'XBZRLE' "$T/bad.out" && ok "the message names XBZRLE" || bad "the message names XBZRLE"
# The vmcoreinfo device's section (QEMU's -device vmcoreinfo): the fuzz seeds
# made by tests/fuzz/qemu-import/mkseeds.py hold one pointing at a note in
# pc.ram, one outside RAM, one at a page that is no note.  A real guest's is
# in tests/qemu/linux.sh.
SEEDS=$ROOT/tests/fuzz/qemu-import/seeds
check "vmcoreinfo device: the guest's note becomes the image's VMCOREINFO" bash -c "
	'$XSR' import '$SEEDS/vmcoreinfo.qemu' '$T/vmci.elf' && '$XSR' verify '$T/vmci.elf' &&
	'$XSR' info '$T/vmci.elf' | grep -qx \"vmcoreinfo: 60 octets, from the vmcoreinfo device: the guest's note at 0x2000 (4096 octets), 60 octets of text\" &&
	readelf -n '$T/vmci.elf' | grep -q VMCOREINFO"
check "vmcoreinfo device without a VMDESCRIPTION (its 17-octet layout): the same VMCOREINFO" bash -c "
	'$XSR' import '$SEEDS/vmcoreinfo-nodesc.qemu' '$T/vmci-nd.elf' && '$XSR' verify '$T/vmci-nd.elf' &&
	'$XSR' info '$T/vmci-nd.elf' | grep -qx \"vmcoreinfo: 60 octets, from the vmcoreinfo device: the guest's note at 0x2000 (4096 octets), 60 octets of text\" &&
	'$XSR' info '$T/vmci-nd.elf' | grep -q '\"vcpus_from\": \"table\"'"
for v in "outside:is not in guest RAM" "notnote:is not an ELF note named VMCOREINFO"; do
	check "vmcoreinfo device, note ${v%%:*}: imports without VMCOREINFO, saying why" bash -c "
		'$XSR' import '$SEEDS/vmcoreinfo-${v%%:*}.qemu' '$T/vmci-x.elf' 2>'$T/vmci.err' &&
		grep -q 'VMCOREINFO left out: .*${v#*:}' '$T/vmci.err' &&
		'$XSR' info '$T/vmci-x.elf' | grep -q '^vmcoreinfo: left out: .*${v#*:}' &&
		! readelf -n '$T/vmci-x.elf' | grep -q VMCOREINFO"
done
check "a stream without the device: xsr info says there is none" bash -c "
	'$XSR' import '$SEEDS/i440fx.qemu' '$T/novmci.elf' &&
	'$XSR' info '$T/novmci.elf' | grep -q '^vmcoreinfo: none: the stream has no vmcoreinfo device'"
summary
