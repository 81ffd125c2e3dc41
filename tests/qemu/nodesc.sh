#!/bin/bash
# QEMU tier: streams without a VMDESCRIPTION (issue 18: "a built-in table
# for streams that have none").  The project's test guest (bin/xsr-guest.elf,
# PVH entry) counts under QEMU started with `-machine ...,suppress-vmdesc=on`;
# it is stopped and migrated to a file, which then ends with the EOF octet.
# `xsr import` must delimit its device sections by their footers and decode
# vCPU 0 with the built-in table of QEMU 7.2's cpu section: the registers
# must be HMP `info registers` of the stopped guest, and every decoded
# field must equal what the VMDESCRIPTION path decodes from a stream of the
# same stopped state (a second QEMU, without suppress-vmdesc, restores the
# stream and migrates it again before it runs), whose import must also find
# the table agreeing with its VMDESCRIPTION.  The image exports back to a
# stream (byte for byte when QEMU sent its RAM in one PART) that a fresh
# QEMU restores, the guest counting on from the stop with guest_errors 0;
# `xsr save qemu:SOCK` of such a guest works too.  Cut, damaged and
# ambiguous streams, and the footer scan's bounds, are refused naming an
# offset.  QEMU is always stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
. "$(dirname "$0")/lib.inc"

qemu_run() { guest_qmp "$@"; }
kv() { guest_kv "$@"; }
# vcpu IMAGE: vCPU 0 as `xsr info --json --vcpu 0` prints it
vcpu() { "$XSR" info --json --vcpu 0 "$1"; }
# cfg IMAGE: the CONFIG section's JSON
cfg() { "$XSR" info --json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['config'])"; }
u64() { # IMAGE PADDR: 8 octets of guest memory as a decimal, -1 when it cannot
	local v
	v=$("$XSR" dump --paddr "$2" --len 8 --force "$1" | od -An -tu8 | tr -d ' ')
	echo "${v:--1}"
}

# round DIR MACHINE: one guest, its suppress-vmdesc stream imported, compared, exported, restored
round() {
	local d=$1 m=$2
	if ! check "$m,suppress-vmdesc=on: the guest counts, stops and migrates to a file" \
		qemu_run "$d/src" "$m,suppress-vmdesc=on" run "$d/src" "$CPA" "$EPA"; then
		return 1
	fi
	local S
	S=$(kv "$d/src" stop_c)
	check "$m: it counted ($(kv "$d/src" c1) -> $(kv "$d/src" c2)), stopped at $S, guest_errors 0" \
		is "$(kv "$d/src" c2) > $(kv "$d/src" c1) && $S >= $(kv "$d/src" c2) && $(kv "$d/src" stop_e) == 0"
	check "$m: migrate completed" grep -qx 'migrate=completed' "$d/src/kv"
	local ND=$d/src/stream.bin
	check "$m: QEMU's stream has no VMDESCRIPTION: it ends with a footer and EOF" python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
assert d[-6] == 0x7e and d[-1] == 0, d[-16:].hex()
assert b'\"vmsd_name\"' not in d and b'\"instance_id\"' not in d, 'JSON in the stream'" "$ND"
	check "$m: xsr import of the stream" "$XSR" import "$ND" "$d/img.elf"
	check "$m: xsr verify of the image" "$XSR" verify "$d/img.elf"
	"$XSR" info "$d/img.elf" >"$d/info.txt" 2>&1
	check "$m: xsr info says the vCPUs come from the built-in table" grep -q '"vcpus_from": "table"' "$d/info.txt"
	cfg "$d/img.elf" >"$d/cfg.txt" 2>&1
	check "$m: and CONFIG that the stream had no VMDESCRIPTION" \
		grep -q '"vmdesc": false, "cpu_table": "QEMU 7.2 vmstate_x86_cpu version 12' "$d/cfg.txt"
	vcpu "$d/img.elf" >"$d/vcpu.json"
	check "$m: vCPU 0 (built-in table) is QEMU's info registers" python3 "$HERE/regs.py" "$d/src/regs.txt" "$d/vcpu.json"
	grep 'registers compared' "$T/last.out" | sed 's/^/     /'
	local V
	V=$(u64 "$d/img.elf" "$CPA")
	check "$m: the image's guest_counters[0] is the one read at the stop ($V = $S)" is "$V == $S"
	V=$(u64 "$d/img.elf" "$EPA")
	check "$m: the image's guest_errors is 0 ($V)" is "$V == 0"

	# the same stopped state, written with a VMDESCRIPTION by a QEMU without suppress-vmdesc
	if check "$m: a QEMU without suppress-vmdesc restores the stream and migrates it again, stopped" \
		qemu_run "$d/vd" "$m" resave "$ND:$d/vd" "$CPA" "$EPA"; then
		check "$m: its info registers are the original's" diff "$d/src/regs.txt" "$d/vd/regs.txt"
		check "$m: xsr import of that stream (with a VMDESCRIPTION)" "$XSR" import "$d/vd/stream.bin" "$d/vd.elf"
		cfg "$d/vd.elf" >"$d/vdcfg.txt" 2>&1
		check "$m: CONFIG: vCPUs from the VMDESCRIPTION, which the built-in table agrees with" \
			grep -q '"vcpus_from": "vmdesc".*"vmdesc": true, "cpu_table": "agrees with the VMDESCRIPTION"' "$d/vdcfg.txt"
		vcpu "$d/vd.elf" >"$d/vd.json"
		check "$m: every field of vCPU 0 the table decodes is what the VMDESCRIPTION decodes" \
			diff "$d/vd.json" "$d/vcpu.json"
		# that stream cut after its EOF is what suppress-vmdesc=on writes: the same octets, both ways
		python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
for q in range(len(d) - 6, 0, -1):
    if d[q] == 6 and d[q - 1] == 0 and int.from_bytes(d[q + 1:q + 5], 'big') == len(d) - q - 5:
        open(sys.argv[2], 'wb').write(d[:q]); break" "$d/vd/stream.bin" "$d/vdcut.bin"
		check "$m: the same octets without their VMDESCRIPTION decode to the same vCPU" \
			bash -c "'$XSR' import '$d/vdcut.bin' '$d/vdcut.elf' && '$XSR' info --json --vcpu 0 '$d/vdcut.elf' | diff '$d/vd.json' -"
	fi

	# export, and a fresh QEMU restores it
	check "$m: xsr export --format qemu of the image" "$XSR" export --format qemu "$d/img.elf" "$d/out.bin"
	local src exp
	src=$(python3 "$HERE/ramsecs.py" "$ND")
	exp=$(python3 "$HERE/ramsecs.py" "$d/out.bin")
	echo "     QEMU's stream: $src; the export: $exp"
	check "$m: the export's header, START, device sections and EOF are QEMU's" python3 -c "
import sys
s = dict(kv.split('=') for kv in sys.argv[1].split())
e = dict(kv.split('=') for kv in sys.argv[2].split())
assert e['parts'] == '1' and e['resent'] == '0' and e['start_end'] == s['start_end'], (s, e)
a, b = open(sys.argv[3], 'rb').read(), open(sys.argv[4], 'rb').read()
assert a[:int(s['start_end'])] == b[:int(e['start_end'])], 'header and START differ'
assert a[int(s['devices']):] == b[int(e['devices']):], 'device sections or EOF differ'
assert b[-1] == 0 and b[-6] == 0x7e, 'the export does not end as QEMU wrote it'" "$src" "$exp" "$ND" "$d/out.bin"
	if [ "${src%% *}" = parts=1 ] && [[ $src == *resent=0* ]]; then
		check "$m: QEMU sent its RAM in one PART: the export is its stream byte for byte" cmp "$ND" "$d/out.bin"
	else
		echo "     (not compared byte for byte: QEMU split or resent pages, $src)"
	fi
	if check "$m,suppress-vmdesc=on: a fresh QEMU (-incoming defer) restores the export" \
		qemu_run "$d/dst" "$m,suppress-vmdesc=on" incoming "$d/out.bin" "$CPA" "$EPA"; then
		local R0 R1 R2
		R0=$(kv "$d/dst" in_c0) R1=$(kv "$d/dst" in_c1) R2=$(kv "$d/dst" in_c2)
		check "$m: migrate-incoming completes" grep -qx 'incoming=completed' "$d/dst/kv"
		check "$m: before cont the counter is the one read at the stop ($R0 = $S)" is "$R0 == $S"
		check "$m: after cont it counts on ($R1 -> $R2)" is "$R1 > $S && $R2 > $R1"
		check "$m: guest_errors stays 0" \
			is "$(kv "$d/dst" in_e0) == 0 && $(kv "$d/dst" in_e1) == 0 && $(kv "$d/dst" in_e2) == 0"
	fi
}

round "$T/fx" pc-i440fx-7.2 || true
round "$T/q35" pc-q35-7.2 || true
ND=$T/fx/src/stream.bin
if [ ! -s "$ND" ]; then
	summary
	exit 1
fi

# A live target: `xsr save qemu:SOCK` of a guest started with suppress-vmdesc=on reads its stream the same way
L=$T/live
mkdir -p "$L"
qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2,suppress-vmdesc=on -m 64 -nographic -nodefaults -kernel "$GUEST" \
	-qmp "unix:$L/q.sock,server=on,wait=off" </dev/null >"$L/qemu.log" 2>&1 &
LPID=$!
QPIDS+=("$LPID")
for _ in $(seq 100); do [ -S "$L/q.sock" ] && break; sleep 0.1; done
check "xsr save qemu: of a running guest with suppress-vmdesc=on" "$XSR" save "qemu:$L/q.sock" "$L/img.elf"
"$XSR" info "$L/img.elf" >"$L/info.txt" 2>&1
check "its image verifies, its vCPUs from the built-in table" \
	bash -c "'$XSR' verify '$L/img.elf' && grep -q '\"vcpus_from\": \"table\"' '$L/info.txt'"
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null

# Hostile: refused with a message naming an offset, exit below 128, no OUT left behind.
refused() { # NAME FILE [PATTERN]
	"$XSR" import "$2" "$T/bad.elf" >"$T/bad.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'offset 0x' "$T/bad.out" && [ ! -e "$T/bad.elf" ] &&
		grep -q -- "${3:-.}" "$T/bad.out"; then
		ok "$1 is refused: $(head -c 220 "$T/bad.out" | tr '\n' ' ')"
	else
		bad "$1 is refused naming an offset${3:+ and matching '$3'} (exit $rc)"
		sed 's/^/     /' "$T/bad.out" | head -5
	fi
}
# where things are: the first device section, the cpu section's header and state
read -r DEV CPU CPUID NEXTID < <(python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
dev = int(dict(kv.split('=') for kv in sys.argv[2].split())['devices'])
c = d.index(b'\x03cpu\x00\x00\x00\x00', dev) - 5
body = c + 5 + 4 + 8
nxt = d.index(b'\x7e' + d[c + 1:c + 5] + b'\x04', body) + 5
print(dev, c, int.from_bytes(d[c + 1:c + 5], 'big'), int.from_bytes(d[nxt + 1:nxt + 5], 'big'))" \
	"$ND" "$(python3 "$HERE/ramsecs.py" "$ND")")
SIZE=$(stat -c %s "$ND")
echo "     device sections from $DEV, cpu section at $CPU (id $CPUID, next id $NEXTID), $SIZE octets"
for n in $((DEV + 3)) $((CPU + 100)) $((CPU + 2000)) $((SIZE - 6)) $((SIZE - 1)); do
	head -c "$n" "$ND" >"$T/cut.bin"
	refused "the stream without a VMDESCRIPTION cut to $n octets" "$T/cut.bin"
done
# patch OFFSET HEX: a copy with octets replaced
patch() { python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); o = int(sys.argv[2]); b = bytes.fromhex(sys.argv[3])
d[o:o + len(b)] = b; open(sys.argv[4], 'wb').write(d)" "$ND" "$1" "$2" "$T/p.bin"; }
patch $((SIZE - 1)) 01
refused "a stream whose final EOF octet is flipped" "$T/p.bin"
patch $((CPU + 13)) 0000000b
refused "a cpu section of version 11 (the table knows 12)" "$T/p.bin" 'version 11.*only version 12'
# a footer and header inside the cpu state (its x87 registers, 156 octets in): two ends for one section
FAKE=$(printf '7e%08x04%08x03616263%016x' "$CPUID" "$NEXTID" 0)
patch $((CPU + 17 + 156)) "$FAKE"
refused "a fake footer and header inside the cpu state" "$T/p.bin" 'ambiguous'
# the cpu section's own footer damaged: it has no end
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); c = int(sys.argv[2])
f = d.index(b'\x7e' + d[c + 1:c + 5] + b'\x04', c + 18); d[f + 4] ^= 0xff
open(sys.argv[3], 'wb').write(d)" "$ND" "$CPU" "$T/p.bin"
refused "a stream whose cpu section's footer is damaged" "$T/p.bin" 'no footer'
# the footer scan's bounds (docs/limits.md): a first device section followed by 8 MiB of 0x7e octets
# (each looked at, none a footer), and 2^17 + 1 fake footers and headers (the candidates kept)
python3 -c "
import sys
d = open(sys.argv[1], 'rb').read(); dev = int(sys.argv[2])
hdr = d[:dev + 6 + d[dev + 5] + 8]
open(sys.argv[3] + '/tilde.bin', 'wb').write(hdr + b'\x7e' * (8 << 20) + b'\x00')
fake = b'\x7e' + (7777).to_bytes(4, 'big') + b'\x04' + (7778).to_bytes(4, 'big') + b'\x01a' + bytes(8)
open(sys.argv[3] + '/bomb.bin', 'wb').write(hdr + fake * ((1 << 17) + 1) + b'\x00')" "$ND" "$DEV" "$T"
refused "a device section followed by 8 MiB of 0x7e octets" "$T/tilde.bin" 'no footer'
refused "2^17 + 1 fake footers and headers" "$T/bomb.bin" 'more than 131072'
rm -f "$T/tilde.bin" "$T/bomb.bin"
# a flipped octet of the cpu state is state, not structure: it imports
patch $((CPU + 17 + 8)) ff
check "a changed octet of the cpu state still imports" "$XSR" import "$T/p.bin" "$T/p.elf"
summary
