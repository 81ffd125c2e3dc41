#!/bin/bash
# CLI tier: synth/info/verify/convert/cat-page, checked against readelf,
# eu-readelf and gdb, which must read every seekable image without complaint.
set -uo pipefail
. "$(dirname "$0")/lib.inc"

check "synth seekable" "$XSR" synth --mem 32M --vcpus 2 --zero-fraction 0.25 --seed 5 "$T/a.elf"
check "synth streamed to stdout" bash -c "'$XSR' synth --mem 32M --vcpus 2 --zero-fraction 0.25 --seed 5 - > '$T/a.stream'"
check "verify seekable intact" "$XSR" verify "$T/a.elf"
check "verify stream intact" "$XSR" verify "$T/a.stream"
check "verify stream from stdin" bash -c "'$XSR' verify - < '$T/a.stream'"

# info --json carries the documented keys, and both layouts agree.
for f in a.elf a.stream; do
	"$XSR" info --json "$T/$f" > "$T/$f.json"
	check "info --json $f has layout/vcpus/pages/zero_pages/sections" python3 - "$T/$f.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("layout", "vcpus", "pages", "zero_pages", "sections"):
    assert k in j, k
assert j["vcpus"] == 2 and int(j["pages"]) == 8192, j
assert 0.15 < int(j["zero_pages"]) / int(j["pages"]) < 0.35, j["zero_pages"]
PY
done
check "layouts named" bash -c "grep -q '\"layout\": \"seekable\"' '$T/a.elf.json' && grep -q '\"layout\": \"stream\"' '$T/a.stream.json'"
check "same zero-page count in both layouts" bash -c "[ \"\$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))[\"zero_pages\"])' '$T/a.elf.json')\" = \"\$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))[\"zero_pages\"])' '$T/a.stream.json')\" ]"

# Round trips.
check "stream -> seekable is byte-identical to the direct save" bash -c "'$XSR' convert '$T/a.stream' '$T/b.elf' && cmp '$T/a.elf' '$T/b.elf'"
check "seekable -> stream (pipe) -> seekable is byte-identical" bash -c "'$XSR' convert '$T/a.elf' - | '$XSR' convert - '$T/c.elf' && cmp '$T/a.elf' '$T/c.elf'"
check "zstd stream restores into the synthetic domain" bash -c "'$XSR' convert --to stream --compress zstd '$T/a.elf' '$T/z.stream' && '$XSR' synth --mem 32M --vcpus 2 --zero-fraction 0.25 --seed 5 --check '$T/z.stream'"
check "wrong seed is noticed (--check fails)" bash -c "! '$XSR' synth --mem 32M --vcpus 2 --zero-fraction 0.25 --seed 6 --check '$T/a.elf'"

# Zero pages are holes.
"$XSR" synth --mem 64M --vcpus 1 --zero-fraction 0.9 "$T/sparse.elf"
size=$(stat -c %s "$T/sparse.elf"); used=$(( $(stat -c %b "$T/sparse.elf") * 512 ))
check "90% zero guest uses < 20% of its size on disk ($used of $size)" test "$used" -lt $((size / 5))

# Real tools: readelf and eu-readelf parse without warnings.
check "readelf -a: no warnings" bash -c "readelf -a '$T/a.elf' > '$T/re.out' 2> '$T/re.err' && ! grep -qi warn '$T/re.err' '$T/re.out' && [ ! -s '$T/re.err' ]"
check "readelf sees PT_NOTE first and 2 PT_LOADs" bash -c "readelf -lW '$T/a.elf' | awk '/^  (NOTE|LOAD)/{print \$1}' | tr '\n' ' ' | grep -qx 'NOTE LOAD LOAD '"
check "readelf -n: one NT_PRSTATUS per vCPU" bash -c "[ \$(readelf -n '$T/a.elf' | grep -c NT_PRSTATUS) -eq 2 ]"
check "eu-readelf -a: no warnings" bash -c "eu-readelf -a '$T/a.elf' > '$T/eu.out' 2> '$T/eu.err' && [ ! -s '$T/eu.err' ] && ! grep -qiE 'invalid|warn' '$T/eu.out'"

# gdb: one thread per vCPU, registers, and guest-physical memory equal to cat-page.
gdb -nx -batch -c "$T/a.elf" -ex 'info threads' -ex 'thread 2' -ex 'info registers rip' \
	-ex 'dump binary memory '"$T"'/gdb-page.bin 0x201000 0x202000' > "$T/gdb.out" 2>&1
check "gdb: one thread per vCPU" bash -c "[ \$(grep -cE '^[* ] +[0-9]+ +LWP' '$T/gdb.out') -eq 2 ]"
check "gdb: vCPU 1 rip matches the saved state" grep -q 'rip *0xffffffff81000100' "$T/gdb.out"
"$XSR" cat-page "$T/a.elf" 0x201 > "$T/cat.bin"
check "gdb dump memory == xsr cat-page (seekable)" cmp "$T/gdb-page.bin" "$T/cat.bin"
"$XSR" cat-page "$T/a.stream" 0x201 > "$T/cat2.bin"
check "xsr cat-page on a stream == on the seekable image" cmp "$T/cat.bin" "$T/cat2.bin"
check "cat-page of an unpopulated pfn fails cleanly" bash -c "'$XSR' cat-page '$T/a.elf' 0xa5 > /dev/null 2> '$T/e'; [ \$? -eq 3 ] && grep -q 'not populated' '$T/e'"

# verify: exit codes, damage named with section/pfn, never a signal.
# Damage octet 100 of pfn 0x201, a data page (gdb and cat-page read it above):
# its slot is 0xa0 + (0x201 - 0x100) pages into .xsr.pages, whose offset
# readelf gives.
cp "$T/a.elf" "$T/d.elf"
pages_off=$((0x$(readelf -SW "$T/a.elf" | awk '{for (i = 1; i < NF; i++) if ($i == ".xsr.pages") print $(i + 3)}')))
check "pfn 0x201 holds data (so the damage below is in a data page)" bash -c "od -An -tx1 '$T/cat.bin' | grep -qv '^ 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00$'"
printf '\x55' | dd of="$T/d.elf" bs=1 seek=$((pages_off + (0xa0 + 0x201 - 0x100) * 4096 + 100)) conv=notrunc 2>/dev/null
"$XSR" verify "$T/d.elf" > /dev/null 2> "$T/v.err"; rc=$?
check "verify: damaged page -> exit 1" test $rc -eq 1
check "verify: message names the damaged pfn 0x201" grep -q 'pfn 0x0*201\b' "$T/v.err"
check "verify: usage error -> exit 2" bash -c "'$XSR' verify; [ \$? -eq 2 ]"
check "verify: missing file -> exit 3" bash -c "'$XSR' verify /nonexistent; [ \$? -eq 3 ]"
head -c 100000 "$T/a.stream" > "$T/trunc.stream"
"$XSR" verify "$T/trunc.stream" 2> "$T/t.err"; rc=$?
check "verify: truncated stream -> exit 1, names the offset" bash -c "[ $rc -eq 1 ] && grep -q 'truncated at offset' '$T/t.err'"
head -c 5000000 "$T/a.elf" > "$T/trunc.elf"
"$XSR" verify "$T/trunc.elf" 2> "$T/t2.err"; rc=$?
check "verify: truncated image -> exit 1" test $rc -eq 1
check "info on a truncated image fails with exit 3 and a message" bash -c "'$XSR' info '$T/trunc.elf' 2>'$T/e'; [ \$? -eq 3 ] && [ -s '$T/e' ]"
# VMCOREINFO: a section and the note crash reads, kept by conversions both ways.
printf 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=0\n' > "$T/vmci.txt"
check "convert --vmcoreinfo" "$XSR" convert --vmcoreinfo "$T/vmci.txt" "$T/a.elf" "$T/v.elf"
check "  ... verifies" "$XSR" verify -q "$T/v.elf"
check "  ... readelf -n shows 2 NT_PRSTATUS and the VMCOREINFO note" bash -c "readelf -n '$T/v.elf' > '$T/vn.out' && [ \$(grep -c NT_PRSTATUS '$T/vn.out') -eq 2 ] && grep -q '^  VMCOREINFO' '$T/vn.out'"
check "  ... eu-readelf -a: no warnings" bash -c "eu-readelf -a '$T/v.elf' >/dev/null 2>'$T/ve.err' && [ ! -s '$T/ve.err' ]"
check "  ... survives seekable -> stream -> seekable byte for byte" bash -c "'$XSR' convert '$T/v.elf' - | '$XSR' convert - '$T/v2.elf' && cmp '$T/v.elf' '$T/v2.elf'"
check "  ... gdb still sees 2 threads" bash -c "[ \$(gdb -nx -batch -c '$T/v.elf' -ex 'info threads' 2>/dev/null | grep -cE '^[* ] +[0-9]+ +LWP') -eq 2 ]"
# p_align: 4096, or 0 with a KASLR kernel's VMCOREINFO (crash then reads it as kdump and takes KERNELOFFSET).
check "  ... its PT_LOADs have p_align 0x1000 (no KERNELOFFSET line)" bash -c "[ \"\$(readelf -lW '$T/v.elf' | awk '\$1 == \"LOAD\" {print \$NF}' | sort -u)\" = 0x1000 ]"
printf 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=1a000000\nNUMBER(phys_base)=0\n' > "$T/vmcik.txt"
"$XSR" convert --vmcoreinfo "$T/vmcik.txt" "$T/a.elf" "$T/vk.elf"
check "a VMCOREINFO with KERNELOFFSET: every PT_LOAD has p_align 0 (crash's kdump class)" bash -c "[ \"\$(readelf -lW '$T/vk.elf' | awk '\$1 == \"LOAD\" {print \$NF}' | sort -u)\" = 0 ]"
check "  ... verifies, and survives seekable -> stream -> seekable byte for byte" bash -c "'$XSR' verify -q '$T/vk.elf' && '$XSR' convert '$T/vk.elf' - | '$XSR' convert - '$T/vk2.elf' && cmp '$T/vk.elf' '$T/vk2.elf'"
check "  ... gdb reads the same page as from the p_align 4096 image" bash -c "gdb -nx -batch -c '$T/v.elf' -ex 'x/4gx 0x1000' 2>/dev/null | grep '^0x' > '$T/g1'; gdb -nx -batch -c '$T/vk.elf' -ex 'x/4gx 0x1000' 2>/dev/null | grep '^0x' > '$T/g2'; [ -s '$T/g1' ] && cmp '$T/g1' '$T/g2'"
# Every image this tier wrote, read by the spec's own reader (tests/spec/xsrelf_check.py,
# written from docs/xsrelf-format.md alone); the damaged ones it must refuse.
for f in "$T"/*.elf "$T"/*.stream; do
	case ${f##*/} in
	d.elf | trunc.*) check "spec reader refuses ${f##*/}" bash -c "! python3 '$ROOT/tests/spec/xsrelf_check.py' '$f'" ;;
	*) check "spec reader accepts ${f##*/}" python3 "$ROOT/tests/spec/xsrelf_check.py" "$f" ;;
	esac
done
check "help on every verb" bash -c "for v in synth info verify convert cat-page; do '$XSR' \$v --help | grep -q usage || exit 1; done"

summary
