#!/bin/bash
# QEMU tier: `xsr import` of `virsh save` files (issue 18).  Two sources:
#
#  1. Real libvirt (libvirtd in session mode, as the unprivileged user
#     nobody when run as root; QEMU under TCG): a paused guest gives `info
#     registers`, `virsh dump --memory-only` (ELF, and kdump-zlib: both
#     imported as dumps, holding the save's memory and QEMU's registers
#     of a guest not in long mode), `virsh dump` (a bare
#     stream) and `virsh save`; the save is restored paused and saved again
#     with each save_image_format (gzip, bzip2, xz, lzop), so that all five
#     files hold the same guest.  Each must import, verify, hold the dump's
#     memory and QEMU's registers, and the same memory and vCPU as the raw
#     one's.  Skipped, loudly, where libvirt is not installed.
#  2. Files laid out by tests/qemu/virshsave.py (libvirt's documented
#     header, written with Python's struct; libvirt is not run for these)
#     around a stream QEMU wrote (virsh dump's above, else one QEMU
#     writes here as tests/qemu/import.sh has it do), compressed with the real gzip, bzip2, xz,
#     lzop and zstd (zstd: newer libvirt only): each must import to the same memory and vCPU as the plain
#     stream.  Hostile variants are refused with a clear message and exit
#     code, never a crash.
# QEMU and libvirtd are always stopped by their PIDs.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
HERE=$ROOT/tests/qemu
. "$HERE/libvirt.inc"
for tool in qemu-system-x86_64 python3 gzip bzip2 xz lzop zstd; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed (tests/install-deps.sh installs it)"
		summary
		exit 0
	fi
done
PIDS=()
START=$(date +%s)
LVDUMP=
LV=
stop_all() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$LV" ] && lv_stop
	rm -rf "$T"
}
trap stop_all EXIT

# same_guest A.elf B.elf: every page and every vCPU field (xsr diff; the
# PASSTHRU and CONFIG sections differ by design), and the whole vCPU 0 state
same_guest() {
	# exit 0: identical (an export whose CONFIG comes back the same), else only sections may differ
	"$XSR" diff "$1" "$2" >"$T/diff.out" 2>&1 ||
		grep -q '^differ: 0 page(s) in 0 range(s), 0 vCPU field(s), ' "$T/diff.out" || { tail -3 "$T/diff.out"; return 1; }
	diff <("$XSR" info --json --vcpu 0 "$1") <("$XSR" info --json --vcpu 0 "$2") >"$T/vdiff.out" ||
		{ head -5 "$T/vdiff.out"; return 1; }
}

# ---------------------------------------------------------------- libvirt
LV=$T/lv
lv_format() { # FORMAT: the daemon restarted with this save_image_format
	lv_stop
	echo "save_image_format = \"$1\"" >"$LV/home/.config/libvirt/qemu.conf"
	chown "$(lv_user)" "$LV/home/.config/libvirt/qemu.conf"
}
DOM=xsr-virsh-test
real_libvirt() {
	mkdir -p "$LV/home/.config/libvirt" "$LV/run" "$LV/out"
	chmod 700 "$LV/run"
	cat >"$LV/dom.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator></devices>
</domain>
EOF
	chown -R "$(lv_user)" "$LV"
	chmod 755 "$T"
	local O=$LV/out
	if ! check "libvirt: a TCG domain starts in a session daemon" V create "$LV/dom.xml"; then
		return
	fi
	sleep 1
	V suspend "$DOM" >/dev/null
	V qemu-monitor-command --hmp "$DOM" 'info registers' >"$T/lv-regs.txt"
	check "libvirt: virsh dump --memory-only (ELF) of the paused guest" V dump --memory-only "$DOM" "$O/mem.elf"
	check "libvirt: virsh dump --memory-only --format kdump-zlib of the paused guest" \
		V dump --memory-only --format kdump-zlib "$DOM" "$O/mem.kdump"
	check "libvirt: virsh save (raw)" V save "$DOM" "$O/save.raw"
	check "libvirt: the save file begins with LibvirtQemudSave" bash -c "head -c 16 '$O/save.raw' | grep -q LibvirtQemudSave"
	check "libvirt: xsr import of the raw virsh save" "$XSR" import "$O/save.raw" "$T/lv-raw.elf"
	check "libvirt: it verifies" "$XSR" verify "$T/lv-raw.elf"
	check "libvirt: pc.ram is virsh dump --memory-only's, page by page" \
		python3 "$HERE/elfmem.py" "$O/mem.elf" "$T/lv-raw.elf" 0-4000000
	"$XSR" info --json --vcpu 0 "$T/lv-raw.elf" >"$T/lv-vcpu.json"
	check "libvirt: vCPU 0 registers are QEMU's info registers" python3 "$HERE/regs.py" "$T/lv-regs.txt" "$T/lv-vcpu.json"
	"$XSR" info "$T/lv-raw.elf" >"$T/lv-info.txt"
	local d
	for d in mem.elf mem.kdump; do # the dump-guest-memory import (tests/qemu/dumpmem.sh has the rest)
		check "libvirt: xsr import of virsh dump --memory-only's $d, a crash core that verifies" \
			bash -c "'$XSR' import '$O/$d' '$T/lv-$d.xsr' && '$XSR' verify '$T/lv-$d.xsr'"
		check "libvirt: $d's import holds the save's pc.ram, page by page" \
			python3 "$HERE/elfmem.py" "$T/lv-raw.elf" "$T/lv-$d.xsr" 0-4000000
		"$XSR" info --json --vcpu 0 "$T/lv-$d.xsr" >"$T/lv-$d.json"
		check "libvirt: $d's vCPU 0 is QEMU's info registers (a guest in the BIOS: i386 notes, EM_386)" \
			python3 "$HERE/regs.py" "$T/lv-regs.txt" "$T/lv-$d.json" --absent fpu
	done
	check "libvirt: xsr info names the domain, was_running and the compression" \
		grep -q "\"libvirt\": {\"domain\": \"$DOM\", \"uuid\": \"[0-9a-f-]\{36\}\", \"was_running\": false, \"compression\": \"raw\"" "$T/lv-info.txt"
	check "libvirt: the header and XML are kept (PASSTHRU origin libvirt header)" grep -q '^  libvirt header:' "$T/lv-info.txt"
	echo "     libvirt: $(($(date +%s) - START)) s so far"
	# QEMU migrates a guest once only (then it is "paused due to previous
	# migration"): each further file comes from the raw save restored paused
	local f
	for f in gzip bzip2 xz lzop; do
		lv_format "$f"
		if ! V restore --paused "$O/save.raw" >"$T/last.out" 2>&1 || ! V save "$DOM" "$O/save.$f" >>"$T/last.out" 2>&1; then
			bad "libvirt: restore --paused, then virsh save with save_image_format $f"
			sed 's/^/     /' "$T/last.out" | head -5
			return
		fi
		check "libvirt ($f): the header says compressed $f" python3 -c "
import struct, sys
h = open(sys.argv[1], 'rb').read(92)
sys.exit(struct.unpack_from('<I', h, 28)[0] != {'gzip': 1, 'bzip2': 2, 'xz': 3, 'lzop': 4}[sys.argv[2]])" "$O/save.$f" "$f"
		check "libvirt ($f): xsr import and verify" \
			bash -c "'$XSR' import '$O/save.$f' '$T/lv-$f.elf' && '$XSR' verify '$T/lv-$f.elf'"
		check "libvirt ($f): the same memory and vCPU as the raw save's" same_guest "$T/lv-raw.elf" "$T/lv-$f.elf"
	done
	echo "     libvirt: $(($(date +%s) - START)) s so far"
	# export --format virsh: libvirt itself restores it, and the guest is the saved one
	lv_stop
	check "libvirt: xsr export --format virsh of the xz save's import" \
		bash -c "'$XSR' export --format virsh '$T/lv-xz.elf' '$O/export.save' && chown '$(lv_user)' '$O/export.save'"
	if check "libvirt: virsh restore --paused of that export" V restore --paused "$O/export.save"; then
		V qemu-monitor-command --hmp "$DOM" 'info registers' >"$T/lv-regs2.txt"
		check "libvirt: the restored guest's info registers are the saved guest's, line for line" \
			diff "$T/lv-regs.txt" "$T/lv-regs2.txt"
		V destroy "$DOM" >/dev/null 2>&1
	fi
	# virsh dump without --memory-only writes a bare QEMU stream: the plain QEMU path imports it
	V restore --paused "$O/save.raw" >/dev/null 2>&1
	check "libvirt: virsh dump (a bare migration stream) of the restored guest" V dump "$DOM" "$O/dump.bin"
	V destroy "$DOM" >/dev/null 2>&1
	check "libvirt: virsh dump's bare stream imports through the QEMU path" \
		bash -c "head -c 4 '$O/dump.bin' | grep -q QEVM && '$XSR' import '$O/dump.bin' '$T/lv-dump.elf' && '$XSR' verify '$T/lv-dump.elf'"
	check "libvirt: ... and holds the save's memory and vCPU" same_guest "$T/lv-raw.elf" "$T/lv-dump.elf"
	LVDUMP=$O/dump.bin
	lv_stop
}
if command -v virsh >/dev/null && [ -x /usr/sbin/libvirtd ] && { [ "$(id -u)" -ne 0 ] || command -v runuser >/dev/null; }; then
	real_libvirt
else
	echo "SKIPPED: real libvirt checks (virsh and libvirtd not installed; tests/install-deps.sh installs them)"
fi
LV=
echo "     $(($(date +%s) - START)) s so far"

# ---------------------------------------------------------------- laid out here
D=$T/q
mkdir -p "$D"
if [ -s "$LVDUMP" ]; then
	cp "$LVDUMP" "$D/stream.bin" # a real QEMU stream already: virsh dump's
	ok "the stream: virsh dump's, from QEMU"
else
	qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -S \
		-qmp "unix:$D/q.sock,server=on,wait=off" </dev/null >"$D/qemu.log" 2>&1 &
	QPID=$!
	PIDS+=("$QPID")
	python3 "$HERE/qmp.py" "$D/q.sock" "$D" 1 >"$D/qmp.log" 2>&1
	rc=$?
	kill "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	if ! check "QEMU runs, stops and migrates to a file" test "$rc" -eq 0 -a -s "$D/stream.bin"; then
		sed 's/^/     /' "$D/qmp.log" "$D/qemu.log" | head
		summary
		exit 1
	fi
fi
check "the plain stream imports" "$XSR" import "$D/stream.bin" "$T/plain.elf"
for c in raw gzip bzip2 xz lzop zstd; do
	python3 "$HERE/virshsave.py" "$D/stream.bin" "$T/s.$c" "$c"
	check "$c: import and verify" bash -c "'$XSR' import '$T/s.$c' '$T/s-$c.elf' && '$XSR' verify '$T/s-$c.elf'"
	check "$c: the same memory and vCPU as the plain stream's import" same_guest "$T/plain.elf" "$T/s-$c.elf"
	check "$c: xsr info states the domain and the compression" \
		bash -c "'$XSR' info '$T/s-$c.elf' | grep -q '\"domain\": \"xsr-test-$c\", .*\"was_running\": true, \"compression\": \"$c\"'"
	check "$c: export --format virsh: the same header and XML (compressed 0), and it imports to the same guest" \
		bash -c "'$XSR' export --format virsh '$T/s-$c.elf' '$T/e.$c' && '$XSR' import '$T/e.$c' '$T/e-$c.elf' &&
			 python3 -c 'import sys; a = open(sys.argv[1], \"rb\").read(); b = open(sys.argv[2], \"rb\").read()
n = 92 + int.from_bytes(a[20:24], \"little\")
sys.exit(not (a[:28] == b[:28] and b[28:32] == bytes(4) and a[32:n] == b[32:n]))' '$T/s.$c' '$T/e.$c'"
	check "$c: ... holding the same memory and vCPU" same_guest "$T/s-$c.elf" "$T/e-$c.elf"
done
"$XSR" export --format virsh "$T/plain.elf" "$T/nolv.save" >"$T/nolv.out" 2>&1
rc=$?
check "export --format virsh of a bare stream's import: exit 3, libvirt needs its XML ($rc)" \
	bash -c "[ $rc -eq 3 ] && grep -q 'no libvirt save header' '$T/nolv.out' && [ ! -e '$T/nolv.save' ]"
check "the streamed layout from a pipe verifies and converts to the same memory" \
	bash -c "cat '$T/s.xz' | '$XSR' import --layout stream - '$T/s.xsr' && '$XSR' verify '$T/s.xsr' &&
		 '$XSR' convert '$T/s.xsr' '$T/s2.elf' && python3 '$HERE/elfmem.py' '$T/s-raw.elf' '$T/s2.elf' 0-4000000"
python3 "$HERE/virshsave.py" "$D/stream.bin" "$T/be.gz" gzip swap=1
check "a big-endian header (libvirt byte-swaps it) imports" bash -c "'$XSR' import '$T/be.gz' '$T/be.elf' &&
	'$XSR' info '$T/be.elf' | grep -q '\"byte_order\": \"big-endian\"'"
python3 "$HERE/virshsave.py" "$D/stream.bin" "$T/esc" raw name=$'a"b\\c\x1b[31m'
check "a domain name with quotes and escapes is escaped in xsr info" \
	bash -c "'$XSR' import '$T/esc' '$T/esc.elf' && '$XSR' info '$T/esc.elf' | grep -qF 'a\\\\u0022b\\\\u005cc\\\\u001b[31m'"
"$XSR" info --json "$T/s-gzip.elf" >"$T/info.json"
check "xsr info --json: the PASSTHRU items begin with the libvirt header" \
	python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
src = j['xen_source']
sys.exit(not (src[0]['origin'] == 'libvirt header' and src[1]['origin'] == 'qemu header' and
              json.loads(j['config'])['libvirt']['cookie_octets'] > 0))" "$T/info.json"

# ---------------------------------------------------------------- hostile
refused() { # NAME FILE WORDS: refused, exit 1..127, no output, a message with WORDS
	"$XSR" import "$2" "$T/bad.elf" >"$T/bad.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "$3" "$T/bad.out" && [ ! -e "$T/bad.elf" ]; then
		ok "$1 is refused: $(head -c 170 "$T/bad.out" | tr '\n' ' ')"
	else
		bad "$1 is refused with '$3' (exit $rc)"
		sed 's/^/     /' "$T/bad.out" | head -5
	fi
}
S=$D/stream.bin
mk() { python3 "$HERE/virshsave.py" "$S" "$T/h" "$@"; }
mk raw cut=50
refused "a header cut to 50 octets" "$T/h" "libvirt save header at offset 0x0: .*truncated"
mk raw magic=LibvirtQemudPart
refused "a LibvirtQemudPart file" "$T/h" "incomplete save"
mk raw data_len=$((1 << 30))
refused "data_len past the end of the file" "$T/h" "limit\|truncated\|data_len"
mk raw data_len=4294967295
refused "data_len 0xffffffff" "$T/h" "data_len 4294967295: more than"
mk raw data_len=$((2 << 20))
refused "data_len 2 MiB, past the end of a small file" "$T/h" "the file ends at"
mk raw compressed=9
refused "compression 9" "$T/h" "unknown compression 9"
mk raw compressed=6
refused "compression 6 (sparse: QEMU's mapped-ram)" "$T/h" "compression 6 (sparse"
mk zstd args=--long=31
refused "a zstd frame declaring a 2 GiB window" "$T/h" "needs a window larger than 128 MiB"
mk raw version=7
refused "version 7" "$T/h" "version"
mk raw was_running=2
refused "was_running 2" "$T/h" "was_running 2"
mk raw cut=$((92 + 200))
refused "a file cut inside the XML" "$T/h" "truncated"
# corrupt(FILE, AT): flip an octet AT octets into the compressed stream (from its end if negative)
corrupt() { python3 -c "
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
at = 92 + struct.unpack_from('<I', d, 20)[0] + int(sys.argv[2]) if int(sys.argv[2]) >= 0 else len(d) + int(sys.argv[2])
d[at] ^= 0x55
open(sys.argv[3], 'wb').write(d)" "$1" "$2" "$T/h"; }
SZ=$(stat -c %s "$T/s.gzip")
corrupt "$T/s.gzip" $(((SZ - 66000) / 2))
refused "a corrupt gzip payload" "$T/h" "gzip stream"
corrupt "$T/s.gzip" -6
refused "a gzip payload with a wrong CRC" "$T/h" "gzip stream"
head -c $((SZ - 1000)) "$T/s.gzip" >"$T/h"
refused "a cut gzip payload" "$T/h" "truncated"
SZ=$(stat -c %s "$T/s.bzip2")
corrupt "$T/s.bzip2" $(((SZ - 66000) / 2))
refused "a corrupt bzip2 payload" "$T/h" "bzip2 stream"
SZ=$(stat -c %s "$T/s.xz")
corrupt "$T/s.xz" $(((SZ - 66000) / 2))
refused "a corrupt xz payload" "$T/h" "xz stream"
corrupt "$T/s.xz" 0
refused "an xz payload without its magic" "$T/h" "not xz data"
SZ=$(stat -c %s "$T/s.lzop")
corrupt "$T/s.lzop" $(((SZ - 66000) / 2))
refused "a corrupt lzop payload (a block's data)" "$T/h" "lzop"
corrupt "$T/s.lzop" 20
refused "an lzop header with a flipped octet (its checksum)" "$T/h" "lzop header"
python3 -c "
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
p = 92 + struct.unpack_from('<I', d, 20)[0]
n = d[p + 9 + 2 + 2 + 2 + 1 + 1 + 4 + 4 + 4 + 4]   # the name's length (lzop 1.04 header)
b = p + 9 + 25 + n + 4                            # the first block
struct.pack_into('>I', d, b, 0x7fffffff)          # a block length past lzop's limit
open(sys.argv[2], 'wb').write(d)" "$T/s.lzop" "$T/h"
refused "an lzop block of 2 GiB" "$T/h" "lzop block at offset 0x[0-9a-f]*: 2147483647 octets"
SZ=$(stat -c %s "$T/s.zstd")
corrupt "$T/s.zstd" $(((SZ - 66000) / 2))
refused "a corrupt zstd payload" "$T/h" "zstd stream"
corrupt "$T/s.zstd" 0
refused "a zstd payload without its magic" "$T/h" "not zstd data"
mk zstd cut=$((92 + 66000 + 100))
refused "a zstd stream cut after about 300 octets" "$T/h" "zstd stream at offset 0x[0-9a-f]* ends before its end marker"
python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(d + b'abc')" "$T/s.zstd" "$T/h"
refused "three trailing octets after the zstd stream, at the right offset" "$T/h" \
	"octets after its end at 0x$(printf %x "$SZ")"
# A zstd payload whose last decode fills the output buffer exactly (64 KiB
# and 128 KiB inflated) is whole, not cut: the QEMU import is what refuses
# this one (a stream header and zeros), saying how much it inflated to.
for n in 65536 131072; do
	python3 -c "import sys; open(sys.argv[1], 'wb').write(b'QEVM\0\0\0\3' + bytes($n - 8))" "$T/z.bin"
	python3 "$HERE/virshsave.py" "$T/z.bin" "$T/h" zstd pad=64
	refused "a zstd payload inflating to exactly $n octets (no false 'truncated')" "$T/h" "zstd, inflated to $n octets"
done
mk gzip cut=$((92 + 66000 + 100))
refused "a gzip stream cut after 100 octets" "$T/h" "truncated"
python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(d + b'garbage')" "$T/s.gzip" "$T/h"
refused "trailing octets after the gzip stream" "$T/h" "octets after its end"
python3 -c "
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
struct.pack_into('<I', d, 40, 1)   # an unused word
open(sys.argv[2], 'wb').write(d)" "$T/s.raw" "$T/h"
refused "a nonzero unused header word" "$T/h" "unused field"
# A decompression bomb: the real stream's first 4 KiB (its ram section
# declares 64.5 MiB of RAM), then 400 MiB of zeros, gzip'd into ~2 MB.  By
# default the import inflates at most twice the declared RAM plus 256 MiB.
python3 -c "
import struct, sys, zlib
d = bytearray(open(sys.argv[1], 'rb').read())
dl = struct.unpack_from('<I', d, 20)[0]
pre, stream = d[:92 + dl], bytes(d[92 + dl:])
struct.pack_into('<I', pre, 28, 1)   # compressed: gzip
c = zlib.compressobj(1, zlib.DEFLATED, 31)
with open(sys.argv[2], 'wb') as f:
    f.write(pre)
    f.write(c.compress(stream[:4096]))
    z = bytes(1 << 20)
    for _ in range(400):
        f.write(c.compress(z))
    f.write(c.flush())" "$T/s.raw" "$T/bomb"
refused "a gzip bomb (400 MiB of zeros after the stream's start), by default" "$T/bomb" \
	"inflates to more than [0-9]* octets: twice the [0-9]* octets of RAM it declares plus 256 MiB"
"$XSR" import --max-stream 1M "$T/bomb" "$T/bad.elf" >"$T/bad.out" 2>&1
rc=$?
check "--max-stream 1M refuses it after 1 MiB ($rc)" bash -c "[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'more than 1048576 octets' '$T/bad.out' && [ ! -e '$T/bad.elf' ]"
"$XSR" import --max-stream none "$T/bomb" "$T/bad.elf" >"$T/bad.out" 2>&1
rc=$?
check "--max-stream none inflates all of it; the QEMU import then refuses the zeros ($rc)" \
	bash -c "[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'inflated to 419434496 octets' '$T/bad.out' && ! grep -q 'more than' '$T/bad.out'"
"$XSR" import --max-stream 12 "$T/s.gzip" "$T/bad.elf" >"$T/bad.out" 2>&1
rc=$?
check "--max-stream 12 (octets) refuses an honest file too: the bound is the caller's ($rc)" bash -c "[ $rc -ne 0 ] && grep -q 'more than 12 octets' '$T/bad.out'"
"$XSR" import --max-stream 3x "$T/s.gzip" "$T/bad.elf" >"$T/bad.out" 2>&1
rc=$?
check "--max-stream 3x is a usage error (exit $rc)" bash -c "[ $rc -eq 2 ] && grep -q 'need a size' '$T/bad.out'"
# a stream damaged inside: the QEMU import's message, with the offset in the stream
python3 -c "
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[92 + struct.unpack_from('<I', d, 20)[0] + 11] ^= 0x40   # the CONFIGURATION name's length
open(sys.argv[2], 'wb').write(d)" "$T/s.raw" "$T/h"
refused "a raw save whose QEMU stream is damaged" "$T/h" "QEMU stream at offset 0x[0-9a-f]* (offsets from there): QEMU .*offset 0x"
summary
