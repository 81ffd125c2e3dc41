#!/bin/bash
# Real Xen files (tests/xen/golden/, made by the rig: docs/xen-rig.md):
# `xl save` and `xl dump-core` of the rig's 128 MiB busybox PV domU under
# Xen 4.17.7.  Import, verify, export, byte-for-byte round trip, Xen's
# verify-stream-v2 on the exports, gdb on the imported core.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-golden
. tests/xen/lib.inc
rm -rf "$B" && mkdir -p "$B"

# verify-stream-v2 from Debian's xen-utils-4.17 (unpacked, never installed), shared with xen.sh
VERIFY=""
D=$PWD/tests/build/xen-deb
deb=$(ls "$D"/xen-utils-4.17_*.deb 2>/dev/null | head -n1)
if [ -z "$deb" ]; then
	mkdir -p "$D" && (cd "$D" && apt-get download xen-utils-4.17 >/dev/null 2>&1)
	deb=$(ls "$D"/xen-utils-4.17_*.deb 2>/dev/null | head -n1)
fi
if [ -n "$deb" ]; then
	mkdir -p "$B/xu" && dpkg -x "$deb" "$B/xu"
	V=$B/xu/usr/lib/xen-4.17
	[ -x "$V/bin/verify-stream-v2" ] && VERIFY=$V/bin/verify-stream-v2
fi
[ -z "$VERIFY" ] && echo "SKIPPED: verify-stream-v2 on the golden files (no xen-utils-4.17 .deb); nothing counted for it"
vs() { PYTHONPATH=$V/lib/python python3 "$VERIFY" -f "$1" -i "$2"; }

# ---- xl save ----
S=$G/xen417-rigu.save.zst
if [ -f "$S" ]; then
	zstd -q -d -c "$S" >"$B/rigu.save" # a regular file: verify-stream-v2 cannot read pipes
	check "xl save: import" "$X" import "$B/rigu.save" "$B/save.elf"
	check "xl save: xsr verify" "$X" verify "$B/save.elf"
	check "xl save: info says xen 4.17, x86 PV 64-bit, 32768 pages" bash -c \
		"'$X' info '$B/save.elf' | grep -q 'x86 PV 64-bit' && '$X' info '$B/save.elf' | grep -q '32768 populated'"
	check "xl save: the domU's marker is in the imported memory" grep -qa "$MARK" "$B/save.elf"
	check "xl save: export" "$X" export "$B/save.elf" "$B/save.exp"
	check "xl save: the export is the xl save, byte for byte" cmp "$B/rigu.save" "$B/save.exp"
	check "xl save: export --format libxc" "$X" export --format libxc "$B/save.elf" "$B/save.libxc"
	check "xl save: streamed import gives the same export" bash -c \
		"'$X' import --stream '$B/rigu.save' '$B/save.s.elf' && '$X' export '$B/save.s.elf' '$B/save.exp2' && cmp '$B/rigu.save' '$B/save.exp2'"
	if [ -n "$VERIFY" ]; then
		check "xl save: verify-stream-v2 -f xl accepts the original" vs xl "$B/rigu.save"
		check "xl save: verify-stream-v2 -f xl accepts the export" vs xl "$B/save.exp"
		check "xl save: verify-stream-v2 -f libxc accepts the libxc export" vs libxc "$B/save.libxc"
	fi
	# follow mode (xsr save DOMID): the input grows while it is read; the pages go to the writer
	# as they arrive, or, when the stream is off the plan (here: a wrong vCPU count), at the end
	for v in 1 2; do
		want="written as they arrived"
		[ $v = 2 ] && want="written at the end"
		check "xl save, read while it grows ($want): the same image, byte for byte" bash -c \
			"XSR_IMPORT_TEST_FOLLOW=$v '$X' import '$B/rigu.save' '$B/save.f.elf' 2>'$B/follow.err' &&
			 grep -q '$want' '$B/follow.err' && cmp '$B/save.elf' '$B/save.f.elf'"
	done
	# the native save's path (backends/xen_save.c): PAGE_DATA records whose data areas are holes,
	# the pages handed over by a callback; the same image, and the same stream as the follow mode's
	check "xl save with its page data punched out, pages by callback: the same image, byte for byte" bash -c \
		"XSR_IMPORT_TEST_HOLES=1 '$X' import '$B/rigu.save' '$B/save.h.elf' && cmp '$B/save.elf' '$B/save.h.elf'"
	check "the same as a stream: the follow mode's stream, byte for byte" bash -c \
		"XSR_IMPORT_TEST_HOLES=1 '$X' import --stream '$B/rigu.save' '$B/save.hs.elf' &&
		 XSR_IMPORT_TEST_FOLLOW=1 '$X' import --stream '$B/rigu.save' '$B/save.fs.elf' 2>/dev/null &&
		 cmp '$B/save.hs.elf' '$B/save.fs.elf'"
	rm -f "$B/save.exp2" "$B/save.s.elf" "$B/save.f.elf" "$B/save.h.elf" "$B/save.hs.elf" "$B/save.fs.elf"
else
	ko "golden xl save $S missing"
fi

# ---- xl dump-core ----
C=$G/xen417-rigu.core.zst
if [ -f "$C" ]; then
	zstd -q -d -c "$C" >"$B/rigu.core"
	check "xl dump-core: import" "$X" import "$B/rigu.core" "$B/core.elf"
	check "xl dump-core: xsr verify" "$X" verify "$B/core.elf"
	check "xl dump-core: the marker is in the imported memory" grep -qa "$MARK" "$B/core.elf"
	check "xl dump-core: readelf -l shows PT_LOADs" bash -c "readelf -lW '$B/core.elf' | grep -q LOAD"
	if command -v gdb >/dev/null; then
		check "xl dump-core: gdb reads vCPU 0's registers (a kernel rip)" bash -c \
			"gdb -nx -batch -c '$B/core.elf' -ex 'info registers rip' 2>&1 | grep -q 'rip *0xffffffff8'"
	else
		echo "SKIPPED: xl dump-core: gdb check (gdb is not installed); nothing counted for it"
	fi
else
	echo "SKIPPED: no golden xl dump-core (only the save is kept); nothing counted for it"
fi
rm -f "$B"/*.elf "$B"/*.exp "$B"/*.libxc "$B"/rigu.*
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
