#!/bin/bash
# gdb tier: gdb-scripts/xsrelf.py driven by real gdb in batch mode, on a
# synthetic image (xsr info, xsr vcpu checked against `xsr info --vcpu --json`)
# and on a core with hand-built page tables (tests/gdb/mkpt.c): 4 KiB, 2 MiB,
# 1 GiB, non-present, hostile and 5-level walks, and read-virt bytes.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
SCRIPT=${XSR_GDB_SCRIPT:-$ROOT/gdb-scripts/xsrelf.py}

if ! command -v gdb >/dev/null || ! gdb -nx -batch -ex 'python import gdb' >/dev/null 2>&1; then
	echo "SKIPPED: gdb with Python is not installed"
	summary
	exit 0
fi
[ -x "$XSR" ] || { bad "bin/xsr missing: run make first"; summary; exit 1; }
[ -f "$ROOT/lib/libxsrelf.a" ] || { bad "lib/libxsrelf.a missing: run make first"; summary; exit 1; }

# xsrgdb CORE CMD...: run xsr commands in gdb on CORE, output in $T/gdb.out.
xsrgdb() {
	local core=$1; shift
	local args=()
	for c in "$@"; do args+=(-ex "$c"); done
	timeout 60 gdb -nx -batch -c "$core" -ex "source $SCRIPT" "${args[@]}" >"$T/gdb.out" 2>&1
}
has() { grep -qF -- "$1" "$T/gdb.out"; }

# ---- synthetic image ----
"$XSR" synth --mem 64M --vcpus 2 "$T/img.elf" >/dev/null || { bad "xsr synth"; summary; exit 1; }

xsrgdb "$T/img.elf" "xsr info"
for s in .note .xsr.producer .xsr.memmap .xsr.index .xsr.pages .xsr.vcpu .xsr.config .shstrtab .xsr.integrity; do
	if has " $s "; then ok "xsr info names section $s"; else bad "xsr info names section $s"; cat "$T/gdb.out"; fi
done
check "xsr info shows the producer and 2 vCPUs" bash -c "grep -q 'producer:  xsrelf' '$T/gdb.out' && grep -q 'vcpus:     2' '$T/gdb.out' && grep -q '^vcpu 1: ' '$T/gdb.out'"

xsrgdb "$T/img.elf" "xsr vcpu 1"
"$XSR" info --vcpu 1 --json "$T/img.elf" >"$T/v1.json"
check "xsr vcpu 1 matches xsr info --vcpu 1 --json (CR0/3/4, EFER, RIP, segments, MSRs)" python3 - "$T/gdb.out" "$T/v1.json" <<'PY'
import json, re, sys
out = open(sys.argv[1]).read()
j = json.load(open(sys.argv[2]))
# registers are "0x..." strings (xsr(1), JSON OUTPUT)
j = {k: int(v, 0) if isinstance(v, str) and v.startswith("0x") else v for k, v in j.items()}
def reg(name):
    m = re.search(r"\b%s\s+(0x[0-9a-f]+)" % name, out)
    assert m, "no %s in: %s" % (name, out)
    return int(m.group(1), 16)
assert reg("cr3") == 0x1000 == j["cr3"], (reg("cr3"), j["cr3"])
assert reg("efer") == 0xd01 == j["efer"], (reg("efer"), j["efer"])
for k in ("cr0", "cr4", "rip", "rflags", "rsp", "rax", "r15"):
    assert reg(k) == j[k], (k, reg(k), j[k])
gs = re.search(r"gs\s+sel 0x([0-9a-f]+) base 0x([0-9a-f]+)", out)
assert int(gs.group(2), 16) == int(j["segments"]["gs"]["base"], 0), gs.group(0)
msrs = {int(a, 16): int(b, 16) for a, b in re.findall(r"msr (0x[0-9a-f]+) = (0x[0-9a-f]+)", out)}
assert msrs == {int(k, 16): int(v, 0) for k, v in j["msrs"].items()}, (msrs, j["msrs"])
PY
cat "$T/gdb.out" >"$T/vcpu1.out"

xsrgdb "$T/img.elf" "xsr vcpu 2" "xsr vcpu x" "xsr virt" "xsr read-virt 0 0" "xsr p2m 5" "xsr bogus"
check "bad input gives clear errors, gdb survives" bash -c "
	grep -q 'vCPU 2: the image has vCPUs 0..1' '$T/gdb.out' &&
	grep -q \"vCPU 'x': not a number or expression\" '$T/gdb.out' &&
	grep -q 'usage: xsr virt ADDR' '$T/gdb.out' &&
	grep -q 'length 0: need 1..' '$T/gdb.out' &&
	grep -q 'no .xsr.p2m section' '$T/gdb.out' &&
	grep -q 'Undefined xsr command' '$T/gdb.out'"

# ---- page tables ----
MKPT=$ROOT/tests/build/mkpt
mkdir -p "$ROOT/tests/build"
# make test SANITIZE=1 builds the library with ASan/UBSan: link against it the same way.
SAN=; grep -q __asan_init "$ROOT/lib/libxsrelf.a" 2>/dev/null && SAN="-fsanitize=address,undefined"
if ! cc -std=gnu11 -Wall -Wextra $SAN -I"$ROOT/libxsrelf/include" -o "$MKPT" "$ROOT/tests/gdb/mkpt.c" \
	"$ROOT/lib/libxsrelf.a" -lelf -lxxhash -lzstd -llz4 -lpthread 2>"$T/cc.err"; then
	bad "build tests/gdb/mkpt.c"; cat "$T/cc.err"; summary; exit 1
fi
"$MKPT" "$T/pt.elf" || { bad "mkpt"; summary; exit 1; }
check "page-table core verifies" "$XSR" verify "$T/pt.elf"

# virt VA VCPU PHYS SIZE [extra text]: the walk ends at PHYS with SIZE pages.
virt() {
	local va=$1 vcpu=$2 phys=$3 size=$4 extra=${5:-}
	xsrgdb "$T/pt.elf" "xsr virt $va --vcpu $vcpu"
	if grep -qE "^virtual $va -> physical $phys \($size page" "$T/gdb.out" &&
		{ [ -z "$extra" ] || has "$extra"; }; then
		ok "xsr virt $va (vCPU $vcpu) -> $phys, $size"
	else
		bad "xsr virt $va (vCPU $vcpu) -> $phys, $size $extra"; sed 's/^/     /' "$T/gdb.out"
	fi
}
# errs VA VCPU TEXT: the walk fails with TEXT.
errs() {
	xsrgdb "$T/pt.elf" "xsr virt $1 --vcpu $2"
	if has "$3"; then ok "xsr virt $1 (vCPU $2): $3"; else bad "xsr virt $1 (vCPU $2): want '$3'"; sed 's/^/     /' "$T/gdb.out"; fi
}
virt 0x7f0000001000 0 0x5000 "4 KiB" "RO, user)"
check "4 KiB walk prints all four levels" bash -c "grep -c -E '^  (PML4E|PDPTE|PDE  |PTE  )\[' '$T/gdb.out' | grep -qx 4"
virt 0xffff888000201234 0 0x201234 "2 MiB" "PS"
virt 0xffffffff80005000 0 0x5000 "1 GiB" ", NX)"
errs 0x7f0000002000 0 "PTE[2] = 0x0000000000000000 is not present"
errs 0x100000000000 0 "PML4E[32] = 0x0000000000000000 is not present"
errs 0x7f0000200000 0 "the table (from PDE) is outside guest memory"
LOOPVA=$(printf '0x%x' $(((100 << 39) | (100 << 30) | (100 << 21) | (100 << 12))))
virt "$LOOPVA" 0 0x1000 "4 KiB"
virt 0xf07f0000001008 1 0x5008 "4 KiB" "5-level paging"
check "5-level walk prints a PML5E" grep -q '^  PML5E\[240\]' "$T/gdb.out"
errs 0xf07f0000001008 0 "is not canonical for 4-level paging"

# read-virt gives the bytes the image holds at the physical address.
"$XSR" cat-page "$T/pt.elf" 5 >"$T/pfn5"
"$XSR" cat-page "$T/pt.elf" 0x200 >"$T/pfn200"
"$XSR" cat-page "$T/pt.elf" 0x201 >"$T/pfn201"
# rv VA LEN VCPU FILE SKIP: read-virt output equals LEN octets of FILE from SKIP.
rv() {
	xsrgdb "$T/pt.elf" "xsr read-virt $1 $2 --vcpu $3"
	if python3 - "$T/gdb.out" "$4" "$5" "$2" <<'PY'; then ok "xsr read-virt $1 $2 (vCPU $3)"; else bad "xsr read-virt $1 $2 (vCPU $3)"; sed 's/^/     /' "$T/gdb.out" | head; fi
import re, sys
out, ref, skip, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
got = bytearray()
for line in open(out):
    m = re.match(r"0x[0-9a-f]{16}: ((?:[0-9a-f]{2} )*[0-9a-f]{2})", line)
    if m:
        got += bytes.fromhex(m.group(1))
want = open(ref, "rb").read()[skip:skip + n]
assert bytes(got) == want, (bytes(got[:16]).hex(), want[:16].hex())
PY
}
rv 0x7f0000001000 64 0 "$T/pfn5" 0
rv 0xffffffff80005010 32 0 "$T/pfn5" 16
rv 0xf07f0000001100 48 1 "$T/pfn5" 256
cat "$T/pfn200" "$T/pfn201" >"$T/pfn200-201"
rv 0xffff888000200ff0 32 0 "$T/pfn200-201" 4080
xsrgdb "$T/pt.elf" "xsr read-virt 0x7f0000001ff8 16 --vcpu 0"
check "read-virt into an unmapped page names the level" grep -q 'PTE\[2\] = 0x0000000000000000 is not present' "$T/gdb.out"

summary
