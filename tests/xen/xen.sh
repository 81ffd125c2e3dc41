#!/bin/bash
# Xen compatibility: import / export round trips over generated xl, libxl,
# libxc and xc_core files, Xen's own verify-stream-v2 on every export, gdb on
# the imported vCPUs, and hostile inputs.  See docs/xen-compat.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen
. tests/xen/lib.inc
GEN="python3 $PWD/tests/xen/gen.py"

rm -rf "$B/w" && mkdir -p "$B/w"
W=$B/w
$GEN "$W" >/dev/null || { ko "generator"; echo "$pass passed, $fail failed"; exit 1; }

# ---- verify-stream-v2 from Debian's xen-utils-4.17, unpacked, never installed ----
VERIFY=""
deb=$(ls "$B"/../xen-deb/xen-utils-4.17_*.deb 2>/dev/null | head -n1)
if [ -z "$deb" ]; then
	mkdir -p "$B/../xen-deb"
	(cd "$B/../xen-deb" && { apt-get download xen-utils-4.17 >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get download xen-utils-4.17 >/dev/null 2>&1; }; })
	deb=$(ls "$B"/../xen-deb/xen-utils-4.17_*.deb 2>/dev/null | head -n1)
fi
if [ -n "$deb" ]; then
	rm -rf "$B/xen-utils" && mkdir -p "$B/xen-utils" && dpkg -x "$deb" "$B/xen-utils"
	V=$B/xen-utils/usr/lib/xen-4.17
	[ -x "$V/bin/verify-stream-v2" ] && [ -d "$V/lib/python/xen/migration" ] && VERIFY=$V/bin/verify-stream-v2
fi
[ -z "$VERIFY" ] && echo "SKIPPED: verify-stream-v2 checks (apt-get download xen-utils-4.17 failed or the package has no verify-stream-v2); nothing counted as passed for them"
vs() { # FORMAT FILE -> exit status of Xen's verifier (regular file, never a pipe)
	PYTHONPATH=$V/lib/python python3 "$VERIFY" -v -f "$1" -i "$2"
}

# ---- round trips ----
for f in "$W"/*.xl "$W"/*.libxc; do
	n=$(basename "$f")
	fmt=xl
	[[ $n == *.libxc ]] && fmt=libxc
	foreign=""
	case "$n" in pv-v4-domctx.* | hvm-v2-postcopy.*) foreign="--foreign keep" ;; esac
	check "$n: import" "$X" import "$f" "$W/$n.a.elf"
	check "$n: xsr verify of the import" "$X" verify "$W/$n.a.elf"
	check "$n: export --format $fmt" "$X" export --format $fmt $foreign "$W/$n.a.elf" "$W/$n.exp"
	check "$n: exported records equal the originals record for record" $GEN compare "$f" "$W/$n.exp"
	check "$n: import of the export" "$X" import "$W/$n.exp" "$W/$n.b.elf"
	check "$n: import -> export -> import gives an identical image" cmp "$W/$n.a.elf" "$W/$n.b.elf"
	check "$n: import --stream from stdin" bash -c "cat '$f' | '$X' import --stream - '$W/$n.s.elf'"
	check "$n: streamed image verifies" "$X" verify "$W/$n.s.elf"
	check "$n: export of the streamed image is the same file" bash -c \
		"'$X' export --format $fmt $foreign '$W/$n.s.elf' '$W/$n.exp2' && cmp '$W/$n.exp' '$W/$n.exp2'"
	check "$n: export into a pipe (splice, vmsplice) is the same file" bash -c \
		"set -o pipefail; '$X' export --format $fmt $foreign '$W/$n.a.elf' - | cat >'$W/$n.exp3' && cmp '$W/$n.exp' '$W/$n.exp3'"
	if [ -n "$VERIFY" ]; then
		vs $fmt "$f" >"$W/$n.vin" 2>&1; rin=$?
		vs $fmt "$W/$n.exp" >"$W/$n.vout" 2>&1; rout=$?
		case "$n" in
		hvm-xsdata.xl)
			# verify-stream-v2 4.17 under Python 3 compares bytes[-1] with '\0' and so refuses
			# any non-empty EMULATOR_XENSTORE_DATA: the export must fail exactly like the original.
			check "$n: verify-stream-v2 refuses export and original alike (its Python 3 bug)" \
				bash -c "[ $rin = 1 ] && [ $rout = 1 ] && grep -q 'Data not NUL terminated' '$W/$n.vout'" ;;
		pv-v4-domctx.* | hvm-v2-postcopy.*)
			check "$n: verify-stream-v2 refuses the verbatim export like the original" bash -c "[ $rin != 0 ] && [ $rout != 0 ]"
			check "$n: export --foreign drop" "$X" export --format $fmt --foreign drop "$W/$n.a.elf" "$W/$n.drop"
			check "$n: verify-stream-v2 -f $fmt accepts the --foreign drop export" vs $fmt "$W/$n.drop"
			check "$n: export without --foreign refuses" bash -c "! '$X' export --format $fmt '$W/$n.a.elf' '$W/$n.no' 2>'$W/$n.err' && grep -q 'cannot read' '$W/$n.err'" ;;
		*)
			check "$n: verify-stream-v2 -v -f $fmt accepts the original" test $rin = 0
			check "$n: verify-stream-v2 -v -f $fmt accepts the export" test $rout = 0
			check "$n: verify-stream-v2 lists the same records for original and export" \
				bash -c "diff <(grep -v -e Squashed -e '^Processed' '$W/$n.vin') <(grep -v -e Squashed -e '^Processed' '$W/$n.vout')" ;;
		esac
	fi
done

# xl files also export as bare libxc streams, and bare streams as xl files
for n in pv.xl hvm.xl; do
	check "$n: export --format libxc" "$X" export --format libxc "$W/$n.a.elf" "$W/$n.libxc"
	[ -n "$VERIFY" ] && check "$n: verify-stream-v2 -f libxc accepts it" vs libxc "$W/$n.libxc"
done
check "pv-v3.libxc: export --format xl wraps it in xl + libxl" "$X" export --format xl "$W/pv-v3.libxc.a.elf" "$W/pv-v3.wrapped.xl"
[ -n "$VERIFY" ] && check "pv-v3.libxc: verify-stream-v2 -f xl accepts the wrapped file" vs xl "$W/pv-v3.wrapped.xl"

# ---- xc_core ----
for n in pv.core hvm.core; do
	check "$n: import" "$X" import "$W/$n" "$W/$n.a.elf"
	check "$n: xsr verify of the import" "$X" verify "$W/$n.a.elf"
	check "$n: export as xl refuses (no libxc stream), pointing at --format xc-core (tests/xen/xccore.sh)" bash -c \
		"! '$X' export '$W/$n.a.elf' '$W/$n.exp' 2>'$W/$n.err' && grep -q 'xc-core' '$W/$n.err'"
	check "$n: pages equal .xen_pages" bash -c "'$X' cat-page '$W/$n.a.elf' 0x301 | cmp - <(python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack(\"<II\", 0x301, (0x301*2654435761)&0xffffffff)*512)')"
done

# ---- gdb reads the imported vCPUs ----
if command -v gdb >/dev/null; then
	for n in pv.xl hvm.xl pv-v3.libxc pv.core; do
		check "$n: gdb shows vCPU 0's rip" bash -c "gdb -nx -batch -c '$W/$n.a.elf' -ex 'info registers rip' 2>&1 | grep -q '0xffffffff81000123'"
	done
	check "pv.xl: gdb shows vCPU 1's rip" bash -c "gdb -nx -batch -c '$W/pv.xl.a.elf' -ex 'thread 2' -ex 'info registers rip' 2>&1 | grep -q '0xffffffff81000456'"
else
	echo "SKIPPED: gdb checks (no gdb)"
fi

# ---- image contents ----
check "pv-live-v2: last copy of a repeated page wins" bash -c "'$X' cat-page '$W/pv-live-v2.libxc.a.elf' 10 | cmp - <(python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack(\"<II\", 10, (10*2654435761+2*97)&0xffffffff)*512)')"
check "xsr info names the Xen source" bash -c "'$X' info '$W/pv.xl.a.elf' | grep -q 'hypervisor xen 4.17 (xl, libxl v2, libxc v3, x86 PV 64-bit)'"

# ---- hostile inputs: refused, naming record and offset ----
for f in "$W"/hostile/*; do
	n=$(basename "$f")
	"$X" import "$f" "$W/h.elf" >"$W/h.out" 2>&1
	rc=$?
	if [ $rc = 3 ] && grep -q 'offset 0x' "$W/h.out" && [ ! -e "$W/h.elf" ]; then
		ok "hostile $n: $(head -c 150 "$W/h.out")"
	else
		ko "hostile $n: exit $rc: $(cat "$W/h.out")"
	fi
done

# ---- xsr info names the Xen guest type, version and source records ----
"$X" import "$W/pv.xl" "$W/info.elf" >/dev/null 2>&1
"$X" info "$W/info.elf" >"$W/info.out" 2>&1
check "info: producer names Xen and the guest type" grep -q "hypervisor xen .*x86 PV" "$W/info.out"
check "info: lists the libxc records it came from" grep -q "libxc: X86_PV_INFO .*X86_PV_VCPU_BASIC" "$W/info.out"
check "info: counts pages by Xen type" grep -q "pages by Xen type: .*L4TAB|pinned 1" "$W/info.out"
"$X" info --json "$W/info.elf" >"$W/info.json"
check "info --json: xen_source and xen_page_types" python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert any(r['record']=='X86_PV_INFO' for r in j['xen_source']) and int(j['xen_page_types']['NOTAB']) > 0" "$W/info.json"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
