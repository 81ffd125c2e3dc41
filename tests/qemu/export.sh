#!/bin/bash
# QEMU tier: `xsr export --format qemu` (issue 18, item 2).  A BIOS-only
# guest runs a second under TCG (SeaBIOS has set up memory and registers),
# is stopped and migrated to a file as in import.sh; the stream is
# imported, exported back, and a fresh QEMU with the same machine and -m
# restores the export (-S -incoming defer, migrate-incoming "exec:cat").
# The restored guest's `info registers` must be the original's and its
# dump-guest-memory the same pc.ram; the export must be byte for byte the
# stream QEMU wrote (the canonical form of docs/qemu-compat.md, Export).
# An image not imported from QEMU and a damaged image are refused.  QEMU
# is always stopped by its PID.
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

# qemu_run DIR MACHINE MIB QMP-ARGS...: a QEMU of MACHINE with MIB MiB, driven by qmp.py QMP-ARGS, stopped after
qemu_run() {
	local d=$1 m=$2 mib=$3 inc=()
	shift 3
	[ "${1:-}" = --incoming ] && inc=(-incoming defer)
	mkdir -p "$d"
	qemu-system-x86_64 -accel tcg -machine "$m" -m "$mib" -nographic -nodefaults -S "${inc[@]}" \
		-qmp "unix:$d/q.sock,server=on,wait=off" </dev/null >"$d/qemu.log" 2>&1 &
	local pid=$!
	QPIDS+=("$pid")
	python3 "$HERE/qmp.py" "$d/q.sock" "$d" "$@" >"$d/qmp.log" 2>&1
	local rc=$?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ $rc -eq 0 ] || sed 's/^/     /' "$d/qmp.log" "$d/qemu.log" | head -8
	return $rc
}

# restored SRC-DIR DIR STREAM MACHINE MIB END WHAT: restore STREAM, compare with SRC-DIR's guest
restored() {
	local s=$1 d=$2 stream=$3 m=$4 mib=$5 end=$6 what=$7
	if ! check "$what: a fresh QEMU ($m, $mib MiB, -incoming defer) restores it" \
		qemu_run "$d" "$m" "$mib" --incoming "$stream"; then
		return
	fi
	check "$what: the restored guest's info registers are the original's" diff "$s/regs.txt" "$d/regs.txt"
	check "$what: the restored guest's pc.ram is the original's, page by page" \
		python3 "$HERE/elfmem.py" "$s/dump.elf" "$d/dump.elf" "0-$end"
	grep 'compared' "$T/last.out" | sed 's/^/     /'
}

# round DIR MACHINE MIB: one guest, exported and restored
round() {
	local d=$1 m=$2 mib=$3 end
	end=$(printf '%x' $((mib << 20)))
	if ! check "$m, $mib MiB: QEMU runs SeaBIOS 1 s, stops, migrates to a file" qemu_run "$d/src" "$m" "$mib" 1; then
		return 1
	fi
	check "$m: xsr import" "$XSR" import "$d/src/stream.bin" "$d/img.elf"
	local t0 t1
	t0=$(date +%s%N)
	check "$m: xsr export --format qemu --json" \
		bash -c "'$XSR' export --format qemu --json '$d/img.elf' '$d/out.bin' >'$d/exp.json'"
	t1=$(date +%s%N)
	echo "     $(cat "$d/exp.json") ($(((t1 - t0) / 1000000)) ms with the tool's start)"
	check "$m: --json counts every pc.ram page and the octets written" \
		python3 -c "
import json, os, sys
j = json.load(open(sys.argv[1]))
assert j['format'] == 'qemu' and int(j['pages']) == $mib * 256, j
assert int(j['bytes']) == os.path.getsize(sys.argv[2]), j
assert int(j['page_entries']) + int(j['zero_entries']) >= $mib * 256 and j['sections'] > 0, j" "$d/exp.json" "$d/out.bin"
	# The canonical form is what QEMU 7.2 writes for a stopped guest sent in one iteration: then the
	# export is the stream byte for byte.  QEMU ends an iteration after 50 ms, so on a loaded machine it
	# may split the pages over several PARTs; then only the octets outside the ram pages must agree.
	local src exp
	src=$(python3 "$HERE/ramsecs.py" "$d/src/stream.bin")
	exp=$(python3 "$HERE/ramsecs.py" "$d/out.bin")
	echo "     QEMU's stream: $src; the export: $exp"
	check "$m: the export has one PART, each page once, the stream's device sections at the same distance from the end" \
		python3 -c "
import sys
s = dict(kv.split('=') for kv in sys.argv[1].split())
e = dict(kv.split('=') for kv in sys.argv[2].split())
assert e['parts'] == '1' and e['resent'] == '0' and e['start_end'] == s['start_end'], (s, e)
a, b = open(sys.argv[3], 'rb').read(), open(sys.argv[4], 'rb').read()
assert a[:int(s['start_end'])] == b[:int(e['start_end'])], 'header and START differ'
assert a[int(s['devices']):] == b[int(e['devices']):], 'device sections, EOF or VMDESCRIPTION differ'" "$src" "$exp" "$d/src/stream.bin" "$d/out.bin"
	if [ "${src%% *}" = parts=1 ] && [[ $src == *resent=0* ]]; then
		check "$m: QEMU sent its RAM in one PART: the export is its stream byte for byte ($(stat -c %s "$d/out.bin") octets)" \
			cmp "$d/src/stream.bin" "$d/out.bin"
	else
		echo "     (not compared byte for byte: QEMU split or resent pages, $src)"
	fi
	restored "$d/src" "$d/dst" "$d/out.bin" "$m" "$mib" "$end" "$m export"
}

round "$T/fx" pc-i440fx-7.2 64 || true
round "$T/q35" pc-q35-7.2 96 || true
D=$T/fx
if [ ! -s "$D/img.elf" ]; then
	summary
	exit 1
fi

# QEMU capped at 1 MiB/s ends each iteration at its rate limit: its RAM comes in several PARTs, which
# the export writes as one; QEMU restores that all the same.
P=$T/parts
if QMP_MAX_BANDWIDTH=$((1 << 20)) check "1 MiB/s cap: QEMU migrates to a file" qemu_run "$P/src" pc-i440fx-7.2 64 1; then
	PS=$(python3 "$HERE/ramsecs.py" "$P/src/stream.bin")
	echo "     QEMU's stream: $PS"
	check "1 MiB/s cap: QEMU's stream has more than one PART" bash -c "[[ '$PS' != parts=[01]\ * ]]"
	check "1 MiB/s cap: import, export" \
		bash -c "'$XSR' import '$P/src/stream.bin' '$P/img.elf' && '$XSR' export --format qemu '$P/img.elf' '$P/out.bin'"
	check "1 MiB/s cap: the export has one PART" bash -c "python3 '$HERE/ramsecs.py' '$P/out.bin' | grep -q '^parts=1 '"
	restored "$P/src" "$P/dst" "$P/out.bin" pc-i440fx-7.2 64 4000000 "1 MiB/s cap"
fi

# Other images of the same stream: a streamed image (made seekable by export), another layout.
check "a streamed image (--layout stream) exports to the same octets" \
	bash -c "'$XSR' import --layout stream '$D/src/stream.bin' '$D/s.xsr' &&
		 '$XSR' export --format qemu '$D/s.xsr' - >'$D/s.bin' && cmp '$D/out.bin' '$D/s.bin'"
# --ram-below-4g 32M puts pc.ram past 32 MiB at 4 GiB: export must map it back
check "an image with pc.ram split at 32 MiB (pfn 0x100000 up) exports to the same octets" \
	bash -c "'$XSR' import --ram-below-4g 32M '$D/src/stream.bin' '$D/low.elf' &&
		 '$XSR' export --format qemu '$D/low.elf' '$D/low.bin' && cmp '$D/out.bin' '$D/low.bin'"
# a changed page of memory: the export carries the image's memory, and QEMU restores it
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.index(b'\\x08\\x06pc.ram', 64) + 8 + 64   # 64 octets into the first pc.ram PAGE entry's data
d[i] ^= 0x5a
open(sys.argv[2], 'wb').write(d)" "$D/src/stream.bin" "$T/chg.bin"
check "a changed pc.ram page: import, export" \
	bash -c "'$XSR' import '$T/chg.bin' '$D/chg.elf' && '$XSR' export --format qemu '$D/chg.elf' '$D/chg.out'"
if qemu_run "$D/chg" pc-i440fx-7.2 64 --incoming "$D/chg.out"; then
	check "a changed pc.ram page: the restored guest holds the image's memory" \
		python3 "$HERE/elfmem.py" "$D/chg.elf" "$D/chg/dump.elf" 0-4000000
	check "a changed pc.ram page: which differs from the original in one page" \
		bash -c "! python3 '$HERE/elfmem.py' '$D/src/dump.elf' '$D/chg/dump.elf' 0-4000000 >'$T/d.out'; grep -q ', 1 differ' '$T/d.out'"
else
	bad "a changed pc.ram page: QEMU restores the export"
fi

# Refused: with a message saying what is missing, exit 3, and no OUT left behind.
refused() { # NAME IMAGE PATTERN
	"$XSR" export --format qemu "$2" "$T/bad.bin" >"$T/bad.out" 2>&1
	local rc=$?
	if [ $rc -eq 3 ] && grep -q "$3" "$T/bad.out" && [ ! -e "$T/bad.bin" ]; then
		ok "$1 is refused (exit 3): $(head -c 200 "$T/bad.out" | tr '\n' ' ')"
	else
		bad "$1 is refused with exit 3 and a message matching '$3' (exit $rc)"
		sed 's/^/     /' "$T/bad.out" | head -5
	fi
}
"$XSR" synth --mem 4M --vcpus 1 "$T/synth.elf" >/dev/null 2>&1
refused "a synthetic image (not imported from QEMU)" "$T/synth.elf" "no QEMU stream items in this image.*not imported from a QEMU migration stream"
# a damaged device section: an octet of the cpu state in the image flipped
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[d.index(b'\\x03cpu\\x00\\x00\\x00\\x00') + 40] ^= 0x01
open(sys.argv[2], 'wb').write(d)" "$D/img.elf" "$T/dmg.elf"
refused "an image with a damaged device section" "$T/dmg.elf" "checksum"
# a damaged pc.ram page: the first page of data after the headers flipped
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
s = open(sys.argv[2], 'rb').read()
i = s.index(b'\\x08\\x06pc.ram', 64) + 8
d[d.index(s[i:i + 4096]) + 100] ^= 0x01
open(sys.argv[3], 'wb').write(d)" "$D/img.elf" "$D/src/stream.bin" "$T/dmgp.elf"
refused "an image with a damaged pc.ram page" "$T/dmgp.elf" "pfn 0x"
check "--foreign does not go with --format qemu (usage error)" \
	bash -c "'$XSR' export --format qemu --foreign drop '$D/img.elf' '$T/x.bin' 2>&1; [ \$? -eq 2 ]"
summary
