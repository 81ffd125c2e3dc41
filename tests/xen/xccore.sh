#!/bin/bash
# xsr export --format xc-core (docs/xen-compat.md, "Export as xc_core"):
# imported dump-cores come back byte for byte; imported saves come out with
# their page tables localised to the source's mfns (checked page by page by
# tests/xen/xccore.py, an independent reading); images without Xen records
# (xsr core DOMID) come out in Xen's layout; non-Xen images and bad P2Ms are
# refused without leaving OUT.  crash on these files: tests/xen/crash.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-xccore
. tests/xen/lib.inc
GEN="python3 $PWD/tests/xen/gen.py"
CHK="python3 $PWD/tests/xen/xccore.py"
refused() { # IMAGE PATTERN: export --format xc-core fails naming PATTERN, leaves no OUT and no temporary file
	local out=$B/refused.xc
	rm -f "$out"
	"$X" export --format xc-core "$1" "$out" >"$B/refused.err" 2>&1
	local rc=$?
	cat "$B/refused.err"
	[ $rc = 3 ] && grep -q -- "$2" "$B/refused.err" && [ ! -e "$out" ] && ! ls -a "$B" | grep -q 'xsr-tmp'
}
rm -rf "$B" && mkdir -p "$B/w"
W=$B/w
$GEN "$W" >/dev/null && $GEN xccore "$W" >/dev/null || { ko "generators"; echo "$pass passed, $fail failed"; exit 1; }

# ---- imported dump-cores (generated: Xen's order of sections and another) ----
for n in pv.core hvm.core; do
	check "$n: import" "$X" import "$W/$n" "$W/$n.elf"
	check "$n: export --format xc-core gives the original byte for byte" bash -c \
		"'$X' export --format xc-core '$W/$n.elf' '$W/$n.xc' && cmp '$W/$n' '$W/$n.xc'"
	check "$n: the same from a streamed image on stdin to stdout" bash -c \
		"'$X' convert '$W/$n.elf' - --to stream | '$X' export --format xc-core - - >'$W/$n.xc2' && cmp '$W/$n' '$W/$n.xc2'"
	check "$n: plain export still refuses, pointing at --format xc-core" bash -c \
		"! '$X' export '$W/$n.elf' '$W/$n.x' 2>'$W/$n.err' && grep -q -- '--format xc-core' '$W/$n.err' && [ ! -e '$W/$n.x' ]"
done

# ---- an imported PV save with real page tables ----
n=pv-tables.libxc
check "$n: import" "$X" import "$W/$n" "$W/$n.elf"
check "$n: export --format xc-core" "$X" export --format xc-core "$W/$n.elf" "$W/$n.xc"
check "$n: pages, page tables localised to the P2M's mfns, vCPUs, shared_info (xccore.py)" $CHK check-save "$W/$n.elf" "$W/$n.xc"
check "$n: readelf reads the dump without warnings" bash -c "readelf -SW '$W/$n.xc' 2>&1 | grep -q '.xen_p2m' && ! readelf -SW '$W/$n.xc' 2>&1 | grep -qi warning"
check "$n: the dump imports again" "$X" import "$W/$n.xc" "$W/$n.re.elf"
check "$n: the re-import's P2M is the save's" $CHK sections-equal "$W/$n.elf" "$W/$n.re.elf" .xsr.p2m
check "$n: the re-import's vCPU 0 cr3 is the save's pfn again (0x3000)" bash -c \
	"'$X' info --vcpu 0 '$W/$n.re.elf' | grep -q 'cr3    0x0000000000003000'"
check "$n: the dump's vCPU 0 cr3 is p2m[3] << 12" bash -c "[ \$($CHK cr3 '$W/$n.xc' 0) = \$(printf '0x%x' \$(( \$($CHK p2m '$W/$n.elf' 3) << 12 ))) ]"

# ---- an imported HVM save: .xen_pfn, no localisation ----
n=hvm-v3.libxc
check "$n: import" "$X" import "$W/$n" "$W/$n.elf"
check "$n: export --format xc-core" "$X" export --format xc-core "$W/$n.elf" "$W/$n.xc"
check "$n: the dump has .xen_pfn and no .xen_p2m" bash -c "$CHK has-section '$W/$n.xc' .xen_pfn && ! $CHK has-section '$W/$n.xc' .xen_p2m"
check "$n: every page of the dump is the image's" $CHK check-pages "$W/$n.elf" "$W/$n.xc"
check "$n: the dump imports again with the same pages" bash -c \
	"'$X' import '$W/$n.xc' '$W/$n.re.elf' && $CHK same-pages '$W/$n.elf' '$W/$n.re.elf'"
check "$n: vCPU 1's rip survives" bash -c "'$X' info --vcpu 1 '$W/$n.re.elf' | grep -q 'rip    0xffffffff81000456'"

# ---- refusals: nothing written ----
export X B
export -f refused
for n in pv-tables-badpte pv-tables-dupmfn pv-tables-shortp2m pv-tables-badcr3 pv-v3; do
	check "$n.libxc: import (the stream itself is fine)" "$X" import "$W/$n.libxc" "$W/$n.libxc.elf"
done
check "pv-tables-badpte: an L1 entry naming a pfn without P2M entry is refused" \
	refused "$W/pv-tables-badpte.libxc.elf" "L1 page table at pfn 0x7, entry 20 = 0x0000000000050063: pfn 0x50 has no P2M entry"
check "pv-tables-dupmfn: two pfns on one mfn are refused" refused "$W/pv-tables-dupmfn.libxc.elf" "pfns 0x21 and 0x22 are both on mfn"
check "pv-tables-shortp2m: pages the P2M leaves out are refused" refused "$W/pv-tables-shortp2m.libxc.elf" "pfn 0x20 of the image holds data but has no P2M entry"
check "pv-tables-badcr3: a cr3 without P2M entry is refused" refused "$W/pv-tables-badcr3.libxc.elf" "vCPU 1: cr3 names pfn 0x3e, which has no P2M entry"
check "pv-v3.libxc: a P2M of junk (gen.py's) is refused" refused "$W/pv-v3.libxc.elf" "which no page-table entry can hold"
check "a synthetic (non-Xen) image is refused" bash -c \
	"'$X' synth --mem 1M --vcpus 1 '$W/synth.elf' && refused '$W/synth.elf' 'only images of Xen guests'"
check "--foreign with --format xc-core is a usage error" bash -c \
	"'$X' export --format xc-core --foreign keep '$W/pv.core.elf' '$W/f.xc'; [ \$? = 2 ] && [ ! -e '$W/f.xc' ]"
check "an earlier OUT survives a refused export" bash -c \
	"echo keep >'$W/old.xc' && ! '$X' export --format xc-core '$W/pv-tables-badpte.libxc.elf' '$W/old.xc' 2>/dev/null && [ \"\$(cat '$W/old.xc')\" = keep ]"
check "export --help names xc-core" bash -c "'$X' export --help | grep -q 'xc-core'"
rm -rf "$W"
mkdir -p "$W"

# ---- the golden files of a real Xen 4.17 PV domU ----
ms() { local t0 t1; t0=$(date +%s%N); "$@" || return 1; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
C=$G/xen417-rigu.core.zst
S=$G/xen417-rigu.save.zst
if [ -f "$C" ]; then
	zstd -q -d -c "$C" >"$B/rigu.core"
	check "golden core: import" "$X" import "$B/rigu.core" "$B/core.elf"
	t=$(ms "$X" export --format xc-core "$B/core.elf" "$B/core.xc") && ok "golden core: export --format xc-core ($t ms for 128 MiB)" ||
		ko "golden core: export --format xc-core"
	check "golden core: the export is the xl dump-core, byte for byte" cmp "$B/rigu.core" "$B/core.xc"
	rm -f "$B/core.xc"
	# What `xsr core DOMID` records of the same domU: no Xen items, no shared_info (test hook)
	t=$(XSR_TEST_XCCORE_NATIVE=1 ms "$X" export --format xc-core "$B/core.elf" "$B/native.xc") &&
		ok "golden core read as an xsr core image: export ($t ms)" || ko "golden core read as an xsr core image: export"
	check "... laid out by Xen's rules: no .xen_shared_info (xsr core keeps none)" $CHK lacks-section "$B/native.xc" .xen_shared_info
	check "... .xen_pages and .xen_p2m equal the xl dump-core's" $CHK sections-equal "$B/rigu.core" "$B/native.xc" .xen_pages .xen_p2m
	check "... vCPU 0's cr3 is the dump's" bash -c "a=\$($CHK cr3 '$B/rigu.core' 0) && b=\$($CHK cr3 '$B/native.xc' 0) && [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
	rm -f "$B/native.xc" "$B/core.elf" "$B/rigu.core"
else
	ko "golden xl dump-core $C missing"
fi
if [ -f "$S" ]; then
	zstd -q -d -c "$S" >"$B/rigu.save"
	check "golden save: import" "$X" import "$B/rigu.save" "$B/save.elf"
	rm -f "$B/rigu.save"
	t=$(ms "$X" export --format xc-core "$B/save.elf" "$B/save.xc") && ok "golden save: export --format xc-core ($t ms for 128 MiB)" ||
		ko "golden save: export --format xc-core"
	check "golden save: pages, localised page tables, vCPU, shared_info (xccore.py)" $CHK check-save "$B/save.elf" "$B/save.xc"
	check "golden save: the dump imports again and verifies" bash -c "'$X' import '$B/save.xc' '$B/re.elf' && '$X' verify '$B/re.elf'"
	check "golden save: the re-import's P2M is the save's" $CHK sections-equal "$B/save.elf" "$B/re.elf" .xsr.p2m
	cr3=$("$X" info --vcpu 0 "$B/save.elf" | sed -n 's/.*cr3 *\(0x[0-9a-f]*\).*/\1/p')
	check "golden save: the re-import's vCPU 0 cr3 is the save's ($cr3)" bash -c "'$X' info --vcpu 0 '$B/re.elf' | grep -q 'cr3    $cr3'"
	check "golden save: the dump's cr3 is p2m[cr3 pfn] << 12" bash -c \
		"[ \$($CHK cr3 '$B/save.xc' 0) = \$(printf '0x%x' \$(( \$($CHK p2m '$B/save.elf' \$(($cr3 >> 12))) << 12 ))) ]"
	rm -f "$B/save.elf" "$B/save.xc" "$B/re.elf"
else
	ko "golden xl save $S missing"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
