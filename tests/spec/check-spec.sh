#!/bin/bash
# Spec tier: format.h, docs/xsrelf-format.md and gdb-scripts/xsrelf.py agree.
#
# The C side is not regex-parsed: the preprocessor lists the XSR_* macros
# (cc -dM), a generated program prints their values, the section table is
# printed from the library itself, and enum values, struct sizes and field
# offsets come from the program's DWARF through gdb's Python API.
#
# Overrides (to prove the test can fail on a modified copy):
#   SPEC_DOC, SPEC_PY, SPEC_INC (directory holding xsrelf/format.h), SPEC_SRC
#   (directory holding common.c and internal.h)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DOC=${SPEC_DOC:-$ROOT/docs/xsrelf-format.md}
PY=${SPEC_PY:-$ROOT/gdb-scripts/xsrelf.py}
INC=${SPEC_INC:-$ROOT/libxsrelf/include}
SRC=${SPEC_SRC:-$ROOT/libxsrelf/src}
CC=${CC:-cc}
T=$(mktemp -d /tmp/xsr-spec.XXXXXX)
trap 'rm -rf "$T"' EXIT

for tool in "$CC" gdb python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed"
		echo "0 passed, 0 failed"
		exit 0
	fi
done
# 1. Object-like XSR_* macros, as the preprocessor sees them.
echo '#include <xsrelf/format.h>' | "$CC" -dM -E -I"$INC" - |
	awk '$1 == "#define" && $2 ~ /^XSR_[A-Za-z0-9_]*$/ { print $2 }' | sort >"$T/macros"
if [ ! -s "$T/macros" ]; then
	echo "FAIL - no XSR_ macros found in $INC/xsrelf/format.h"
	echo "0 passed, 1 failed"
	exit 1
fi

# 2. A program that prints every macro's value and the section table (built
#    from sections.c itself, so a stale lib/ cannot disagree with the header;
#    the validators it names come from check.c and what that calls).
{
	cat <<'EOF'
#include <stdio.h>
#include <string.h>
#include <xsrelf/format.h>
#include "internal.h"

static void num(const char *n, unsigned long long v, size_t len)
{
	(void)len;
	printf("const %s %llu\n", n, v);
}
static void str(const char *n, const char *s, size_t len)
{
	printf("str %s ", n);
	for (size_t i = 0; i + 1 < len; i++) /* every octet but the terminator */
		printf("%02x", (unsigned char)s[i]);
	printf("\n");
}
/* _Generic picks the printer, so a string never meets num's conversion. */
#define PR(x) _Generic((x), char *: str, const char *: str, default: num)(#x, (x), sizeof(x))

/* Anchors so the DWARF keeps every type of format.h. */
enum xsr_sec a_sec; enum xsr_domctx a_dc; enum xsr_kind a_kind;
enum xsr_layout a_layout; enum xsr_compress a_compress;

int main(void)
{
EOF
	sed 's/.*/\tPR(&);/' "$T/macros"
	cat <<'EOF'
	for (unsigned c = 0; c < XSR_SEC__COUNT; c++) {
		const struct xsr_sec_desc *d = &xsr_sec_table[c];
		if (!d->name)
			continue;
		printf("sec %u %s %s %llu %llu %d %d %d %d\n", c, d->name, d->elfname ? d->elfname : "-",
		       (unsigned long long)d->min_len, (unsigned long long)d->max_len, d->optional,
		       d->stream_only, d->seekable_only, d->per_vcpu);
	}
	return 0;
}
EOF
} >"$T/dump.c"
if ! "$CC" -std=gnu11 -g -O0 -fno-eliminate-unused-debug-types -I"$INC" -I"$SRC" \
	-fvisibility=hidden -o "$T/dump" "$T/dump.c" "$SRC/sections.c" "$SRC/check.c" "$SRC/common.c" \
	"$SRC/vcpu.c" "$SRC/xenpv.c" "$SRC/xenstore.c" -lelf -lxxhash -lzstd -llz4 \
	2>"$T/cc.err"; then
	echo "FAIL - the constants program does not build:"
	sed 's/^/     /' "$T/cc.err" | head -20
	echo "0 passed, 1 failed"
	exit 1
fi
"$T/dump" >"$T/c.txt"

# 3. Enums, struct sizes and field offsets from the DWARF, via gdb's Python.
cat >"$T/dwarf.py" <<'EOF'
import gdb, re
for e in ("xsr_sec", "xsr_domctx", "xsr_kind", "xsr_layout", "xsr_compress"):
    for f in gdb.lookup_type("enum " + e).fields():
        print("enum %s %s %d" % (e, f.name, f.enumval))
out = gdb.execute("info types ^xsr_", to_string=True)
cur = None
for line in out.splitlines():
    m = re.match(r"File (.*):$", line)
    if m:
        cur = m.group(1)
        continue
    m = re.search(r"\bstruct (xsr_\w+);", line)
    if m and cur and cur.endswith("xsrelf/format.h"):
        t = gdb.lookup_type("struct " + m.group(1))
        print("struct %s %d" % (m.group(1), t.sizeof))
        for f in t.fields():
            print("field %s %s %d" % (m.group(1), f.name, f.bitpos // 8))
EOF
gdb -nx -batch -ex "python exec(open('$T/dwarf.py').read())" "$T/dump" >>"$T/c.txt" 2>"$T/gdb.err"

# 4. Compare.
python3 - "$T/c.txt" "$PY" "$DOC" <<'EOF'
import importlib.util, re, sys

ctxt, pypath, docpath = sys.argv[1:4]
passed = failed = 0

def ok(msg):
    global passed
    passed += 1

def bad(msg):
    global failed
    failed += 1
    print("FAIL - " + msg)

def check(cond, msg):
    (ok if cond else bad)(msg)

consts, secs, structs, fields = {}, [], {}, {}
for line in open(ctxt):
    w = line.split()
    if not w:
        continue
    if w[0] == "const":
        consts[w[1]] = int(w[2])
    elif w[0] == "str":
        consts[w[1]] = bytes.fromhex(w[2]) if len(w) > 2 else b""
    elif w[0] == "enum":
        consts[w[2]] = int(w[3])
    elif w[0] == "struct":
        structs[w[1]] = int(w[2])
    elif w[0] == "field":
        fields.setdefault(w[1], {})[w[2]] = int(w[3])
    elif w[0] == "sec":
        secs.append(dict(code=int(w[1]), name=w[2], elfname=w[3], min=int(w[4]), max=int(w[5]),
                         optional=int(w[6]), stream_only=int(w[7]), seekable_only=int(w[8])))
check(len(consts) > 50 and len(structs) >= 15 and len(secs) >= 16,
      "C side: %d constants, %d structs, %d section types extracted" % (len(consts), len(structs), len(secs)))

spec = importlib.util.spec_from_file_location("xsrelf", pypath)
py = importlib.util.module_from_spec(spec)
spec.loader.exec_module(py)
P, PS, PO = py.XSR_CONSTANTS, py.XSR_SIZEOF, py.XSR_OFFSETOF

doc = open(docpath, encoding="utf-8").read()
doclines = doc.splitlines()

def doc_value(tok):
    tok = tok.strip()
    if tok.startswith('"') and tok.endswith('"'):
        return tok[1:-1].encode("ascii").decode("unicode_escape").encode("latin1")
    try:
        return int(tok, 0)
    except ValueError:
        return None

def doc_cells(key):
    """Value cells of every table row whose first cell is exactly `key` and whose
    next cell is a value (prose that merely starts with the name is skipped)."""
    cells = []
    for line in doclines:
        s = line.strip().strip("|").strip()
        if s.startswith("`" + key + "`"):
            rest = s[len(key) + 2:].strip().strip("|").strip()
            if rest and doc_value(rest.split()[0]) is not None:
                cells.append(rest.split()[0])
    return cells

def check_doc(key, val, what):
    cells = doc_cells(key)
    if not cells:
        bad("%s = %r has no row in the spec's tables (%s)" % (what, val, docpath))
    for c in cells:
        check(doc_value(c) == val, "%s: format.h %r, a spec table says %s" % (what, val, c))

# Constants: C == Python == doc.
for name, val in sorted(consts.items()):
    if name not in P:
        bad("%s = %r is in format.h but not in XSR_CONSTANTS (%s)" % (name, val, pypath))
    else:
        check(P[name] == val, "%s: format.h %r, xsrelf.py %r" % (name, val, P[name]))
    check_doc(name, val, name)
for name in sorted(P):
    check(name in consts, "XSR_CONSTANTS has %s, which format.h does not define" % name)

# Struct sizes and the field offsets the script uses.
for s, size in sorted(structs.items()):
    check(PS.get(s) == size, "sizeof(struct %s): format.h %d, xsrelf.py %r" % (s, size, PS.get(s)))
    check_doc("struct " + s, size, "sizeof(struct %s)" % s)
for s in sorted(PS):
    check(s in structs, "XSR_SIZEOF has struct %s, which format.h does not define" % s)
for s, fl in sorted(PO.items()):
    for f, off in sorted(fl.items()):
        check(fields.get(s, {}).get(f) == off,
              "offsetof(struct %s, %s): format.h %r, xsrelf.py %d" % (s, f, fields.get(s, {}).get(f), off))

# Section types: library table == Python names == the spec's type table.
for d in secs:
    check(py.SEC_NAMES.get(d["code"]) == d["name"],
          "section code 0x%02x: library name %s, xsrelf.py %r" % (d["code"], d["name"], py.SEC_NAMES.get(d["code"])))
    row = None
    for line in doclines:
        w = line.split()
        if len(w) > 3 and w[0] == "0x%02x" % d["code"] and w[1] == d["name"].upper():
            row = line
    if row is None:
        bad("section code 0x%02x (%s) has no row in the spec's type table" % (d["code"], d["name"]))
        continue
    nums = [int(x) for x in re.findall(r"(?<![\w.^×])(\d+)(?![\w^])", row.split(None, 3)[3])]
    # stream-only types have a name for messages and verify --json, never an ELF section
    elf = d["elfname"] if d["elfname"] != "-" and not d["stream_only"] else "(none)"
    check(("`%s`" % elf) in row or elf in row, "type %s: ELF name %s not in the spec row" % (d["name"], elf))
    check(nums and nums[0] == d["min"], "type %s: min length %d, spec row %r" % (d["name"], d["min"], row.strip()))
    check(d["max"] in nums, "type %s: max length %d, not in the spec row %r" % (d["name"], d["max"], row.strip()))
    opt = re.search(r"\s(yes|no)\s", row)
    check(opt is not None and (opt.group(1) == "yes") == bool(d["optional"]),
          "type %s: optional=%d, spec row %r" % (d["name"], d["optional"], row.strip()))
    where = row.split()[-2:] if row.rstrip().endswith("only") else []
    check(bool(d["stream_only"]) == ("stream" in where) and bool(d["seekable_only"]) == ("seekable" in where),
          "type %s: stream_only=%d seekable_only=%d, spec row %r"
          % (d["name"], d["stream_only"], d["seekable_only"], row.strip()))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
