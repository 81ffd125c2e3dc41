#!/bin/bash
# JSON tier (issue 15, "--json everywhere a script would want it"): every
# --json output parses; 64-bit values are strings (xsr(1), JSON OUTPUT);
# verify --json places damage by section, offset and pfn, with the same
# section names for both layouts; info --json holds what the text shows;
# a failing verb in --json mode prints one error object on stdout with its
# exit status; stdout on /dev/full is exit 3.  No KVM needed.
#
# The JSON checks are queued (q) and judged by one python3 at the end: a
# python3 per check made this tier slow on a loaded machine.  Each stays
# one check that passes or fails on its own.
set -uo pipefail
. "$(dirname "$0")/lib.inc"

# q "description" 'python expression': judged at the end (see judge.py)
q() { printf '%s\t%s\n' "$1" "$(tr '\n\t' '  ' <<<"$2")" >>"$T/queue"; }
: >"$T/queue"
# flip FILE OFFSET: invert one octet
flip() {
	local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# secoff FILE NAME: file offset of section NAME (readelf)
secoff() { printf '%d' "0x$(readelf -SW "$1" | awk -v n="$2" '{for (i = 1; i < NF; i++) if ($i == n) print $(i + 3)}' | head -n1)"; }

"$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 --json "$T/a.img" >"$T/synth.json"
"$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 --stream "$T/a.stream"
"$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 --compress zstd "$T/z.stream"
"$XSR" convert "$T/z.stream" "$T/z.img"

# ---- every --json output parses, and no 64-bit value is left a number ----
q "synth --json parses, bytes/pages/zero_pages are decimal strings" \
	"all(decs(load('$T/synth.json')[k]) for k in ('bytes', 'pages', 'zero_pages'))
	 and int(load('$T/synth.json')['pages']) + int(load('$T/synth.json')['zero_pages']) == 2048"
n=0
for f in a.img a.stream z.stream z.img; do
	n=$((n + 1))
	"$XSR" info --json "$T/$f" >"$T/i$n.json"
	"$XSR" info "$T/$f" >"$T/i$n.txt"
	q "info --json $f parses, no number of 64 bits" "not big_numbers(load('$T/i$n.json'))"
	q "info --json $f: counts and sizes decimal strings, pfns and offsets 0x strings" "info_strings(load('$T/i$n.json'))"
	q "info --json $f: the producer, config, sections and runs the text shows" "info_has_text(load('$T/i$n.json'), text('$T/i$n.txt'))"
done
"$XSR" info --json --vcpu 1 "$T/a.img" >"$T/v.json"
"$XSR" info --vcpu 1 "$T/a.img" >"$T/v.txt"
q "info --vcpu 1 --json: registers, bases, MSR values are 0x strings" "vcpu_strings(load('$T/v.json'))"
q "info --vcpu 1 --json: rip as the text has it" "'rip    0x%016x' % int(load('$T/v.json')['rip'], 0) in text('$T/v.txt')"

# ---- section names: one name per type in both layouts ----
q "a stream's sections are named as the seekable layout names them" "same_names(load('$T/i1.json'), load('$T/i2.json'))"

# ---- verify --json ----
for f in a.img a.stream z.stream; do
	"$XSR" verify --json "$T/$f" >"$T/ok-$f.json"
	rc=$?
	check "verify --json $f intact: exit 0" test $rc = 0
	q "verify --json $f intact: intact, no findings" "intact(load('$T/ok-$f.json'))"
done

# one octet of page data flipped in the seekable image: .xsr.pages, its page's offset and pfn
cp "$T/a.img" "$T/d.img"
at=$(($(secoff "$T/a.img" .xsr.pages) + 0x101 * 4096 + 123))
flip "$T/d.img" $at
"$XSR" verify --json "$T/d.img" >"$T/d.json" 2>"$T/d.err"
rc=$?
check "verify --json, damaged page: exit 1" test $rc = 1
q "verify --json, damaged page: .xsr.pages, the page's offset and its pfn" \
	"page_finding(load('$T/d.json'), load('$T/i1.json'), $((at & ~4095)), 0x101)"
check "verify --json, damaged page: the stderr message stays" grep -q "page data of pfn" "$T/d.err"

# a vCPU record damaged in either layout: the same section name
cp "$T/a.img" "$T/v.img"
flip "$T/v.img" $(($(secoff "$T/a.img" .xsr.vcpu) + 40))
"$XSR" verify --json "$T/v.img" >"$T/vi.json" 2>/dev/null
rc=$?
check "verify --json, damaged vCPU section: exit 1" test $rc = 1
vs=$(jq -r '[.sections[] | select(.name == ".xsr.vcpu")][0].offset // empty' "$T/i2.json" 2>/dev/null)
[[ $vs =~ ^0x[0-9a-f]+$ ]] || { bad "info --json a.stream: a .xsr.vcpu section at an 0x offset (got '$vs')"; vs=0x1000; }
vstream=$((vs))
cp "$T/a.stream" "$T/v.stream"
flip "$T/v.stream" $((vstream + 40))
"$XSR" verify --json "$T/v.stream" >"$T/vs.json" 2>/dev/null
rc=$?
check "verify --json, damaged stream vCPU record: exit 1" test $rc = 1
q "verify --json, damaged vCPU: .xsr.vcpu in both layouts, the stream's at its record" \
	"vcpu_findings(load('$T/vi.json'), load('$T/vs.json'), $vstream)"
# a page batch of a stream: .xsr.pages as in the seekable layout
cp "$T/a.stream" "$T/p.stream"
flip "$T/p.stream" $((vstream - 5000))
"$XSR" verify --json "$T/p.stream" >"$T/ps.json" 2>/dev/null
rc=$?
check "verify --json, damaged stream page batch: exit 1" test $rc = 1
q "verify --json, damaged stream page batch: .xsr.pages, an offset, no pfn" \
	"first(load('$T/ps.json'))['section'] == '.xsr.pages' and hexs(first(load('$T/ps.json'))['offset'])
	 and first(load('$T/ps.json'))['pfn'] is None"
# the file header: in no section, at offset 0
cp "$T/a.img" "$T/h.img"
flip "$T/h.img" $((0x50))
"$XSR" verify --json "$T/h.img" >"$T/h.json" 2>/dev/null
rc=$?
check "verify --json, damaged file header: exit 1" test $rc = 1
q "verify --json, damaged file header: no section, offset 0x0" \
	"first(load('$T/h.json'))['section'] is None and first(load('$T/h.json'))['offset'] == '0x0'"

# ---- errors in --json mode: one object on stdout with the exit status ----
# jerr RC VERB ARGS...: xsr VERB ARGS must exit RC and print {"error":{"verb":VERB,...,"exit":RC}}
ne=0
jerr() {
	local want=$1 verb=$2; shift 2
	ne=$((ne + 1))
	"$XSR" "$verb" "$@" >"$T/e$ne.out" 2>"$T/e$ne.err"
	local rc=$?
	check "$verb $*: exit $want" test $rc = "$want"
	check "$verb $*: the message on stderr too" test -s "$T/e$ne.err"
	q "$verb $*: one error object on stdout, exit $want in it" "error_obj(text('$T/e$ne.out'), '$verb', $want)"
}
jerr 3 info --json "$T/missing.img"
jerr 2 info --json --bogus "$T/a.img"
jerr 2 info --bogus --json "$T/a.img"
jerr 3 verify --json "$T/missing.img"
jerr 2 verify --json "$T/a.img" "$T/a.img"
jerr 2 synth --json "$T/s.img"
jerr 3 convert --paging --json "$T/a.img" "$T/pv.img"
jerr 3 vm status "$T/no.sock" --json
jerr 3 save vm:"$T/no.sock" "$T/s.img" --json
jerr 3 core vm:"$T/no.sock" "$T/c.img" --json
jerr 3 restore "$T/a.img" --control "$T/r.sock" --json
jerr 3 migrate vm:"$T/no.sock" tcp:127.0.0.1:1 --json
jerr 2 receive --json
jerr 2 nosuchverb --json
# a seekable image on a pipe cannot be verified there: exit 3, not damage
cat "$T/a.img" | "$XSR" verify --json - >"$T/pipe.out" 2>"$T/pipe.err"
rc=$?
check "verify --json - (a seekable image on a pipe): exit 3" test $rc = 3
q "verify --json - (a seekable image on a pipe): an error object, exit 3" "error_obj(text('$T/pipe.out'), 'verify', 3)"
q "info --json on a missing file: the message names the file" "'missing.img' in json.loads(text('$T/e1.out'))['error']['message']"
"$XSR" info "$T/missing.img" >"$T/m.txt" 2>/dev/null
check "without --json a failure prints nothing on stdout" test ! -s "$T/m.txt"
q "verify --json on damage: the findings object, no error object" "'error' not in load('$T/d.json') and 'findings' in load('$T/d.json')"
"$XSR" synth --mem 4M --vcpus 1 --json - >"$T/s.stream" 2>"$T/s.err"
check "synth --json -: stdout holds only the image" "$XSR" verify -q - <"$T/s.stream"
q "synth --json -: the summary on stderr" "decs(load('$T/s.err')['bytes'])"

# ---- stdout on /dev/full in --json mode: exit 3 ----
for args in "info --json $T/a.img" "info --json --vcpu 0 $T/a.img" "verify --json $T/a.img" \
	"verify --json $T/d.img" "info --json $T/missing.img" "synth --mem 4M --vcpus 1 --json $T/f.img"; do
	# shellcheck disable=SC2086
	"$XSR" $args >/dev/full 2>/dev/null
	rc=$?
	check "xsr $args >/dev/full: exit 3" test $rc = 3
done

# ---- the queued JSON checks ----
cat >"$T/judge.py" <<'PY'
import json, re, sys

def load(p):
    with open(p) as f:
        return json.load(f)
def text(p):
    with open(p) as f:
        return f.read()
def hexs(v):
    return isinstance(v, str) and re.fullmatch(r"0x[0-9a-f]+", v) is not None
def decs(v):
    return isinstance(v, str) and re.fullmatch(r"[0-9]+", v) is not None
def big_numbers(v, path="$"):
    """Paths of JSON numbers a double cannot be trusted with (a 64-bit value left a number)."""
    if isinstance(v, bool):
        return []
    if isinstance(v, int):
        return [path] if not -2**31 <= v < 2**32 else []
    if isinstance(v, dict):
        return sum((big_numbers(x, path + "." + k) for k, x in v.items()), [])
    if isinstance(v, list):
        return sum((big_numbers(x, "%s[%d]" % (path, i)) for i, x in enumerate(v)), [])
    return []
def first(j):
    return j["findings"][0]
def info_strings(j):
    return (all(decs(j[k]) for k in ("pages", "zero_pages", "data_pages", "page_records"))
            and j["memory_runs"] and j["sections"]
            and all(hexs(r["pfn"]) and hexs(r["last"]) and decs(r["count"]) for r in j["memory_runs"])
            and all(hexs(s["offset"]) and decs(s["size"]) for s in j["sections"])
            and hexs(j["producer"]["producer_version"]))
def info_has_text(j, t):
    cfg = [l[len("config:     "):] for l in t.splitlines() if l.startswith("config:")]
    p = j["producer"]
    line = "producer:   %s %s on '%s'; hypervisor %s %s" % (p["name"], p["version"], p["host"], p["hypervisor"],
                                                          p["hypervisor_version"])
    return (cfg and j["config"] and j["config"].startswith(cfg[0].rstrip()) and line in t
            and all(s["name"] in t and s["type_name"] in t for s in j["sections"])
            and ("%d run(s)" % len(j["memory_runs"])) in t
            and ("%s populated" % j["pages"]) in t and ("%s zero" % j["zero_pages"]) in t)
def vcpu_strings(j):
    return (all(hexs(j[k]) for k in ("rax", "r15", "rip", "rflags", "cr0", "cr3", "cr4", "efer", "apic_base", "xcr0"))
            and all(hexs(s["base"]) and isinstance(s["selector"], int) for s in j["segments"].values())
            and all(hexs(d) for d in j["dr"]) and hexs(j["gdt"]["base"]) and j["msrs"]
            and all(hexs(v) for v in j["msrs"].values()) and j["vcpu"] == 1 and not big_numbers(j))
def same_names(img, st):
    names = {s["name"] for s in img["sections"]}
    sn = [s["name"] for s in st["sections"]]
    return sn and all(n in names for n in sn) and {".xsr.producer", ".xsr.memmap", ".xsr.vcpu", ".note"} <= set(sn)
def intact(j):
    return (j["intact"] is True and j["findings"] == [] and j["counts"]["problems"] == 0
            and decs(j["counts"]["pages"]) and not big_numbers(j))
def page_finding(j, info, off, slot):
    pfn = None
    for r in info["memory_runs"]:  # slots follow the runs in order
        if slot < int(r["count"]):
            pfn = int(r["pfn"], 0) + slot
            break
        slot -= int(r["count"])
    f = first(j)
    return (j["intact"] is False and j["layout"] == "seekable" and j["counts"]["problems"] == 1
            and f["section"] == ".xsr.pages" and f["offset"] == hex(off) and f["pfn"] == hex(pfn)
            and f["error"] == "checksum mismatch" and "pfn %s" % hex(pfn) in f["message"])
def vcpu_findings(a, b, body):
    fa, fb = first(a), first(b)
    # a stream names where the damaged record begins: its 64-octet header before the body
    return (a["layout"] == "seekable" and b["layout"] == "stream" and fa["section"] == fb["section"] == ".xsr.vcpu"
            and int(fb["offset"], 0) == body - 64 and fb["pfn"] is None and hexs(fa["offset"]))
def error_obj(out, verb, want):
    e = json.loads(out)["error"]
    return out.count("\n") == 1 and e["verb"] == verb and e["exit"] == want and e["message"]

for line in open(sys.argv[1]):
    desc, expr = line.rstrip("\n").split("\t", 1)
    try:
        good, why = bool(eval(expr)), ""
    except Exception as e:
        good, why = False, "%s: %s" % (type(e).__name__, e)
    print("%s - %s" % ("ok  " if good else "FAIL", desc))
    if not good:
        print("     %s\n     %s" % (expr[:300], why))
PY
python3 "$T/judge.py" "$T/queue" >"$T/judged"
cat "$T/judged"
PASS=$((PASS + $(grep -c '^ok' "$T/judged")))
FAIL=$((FAIL + $(grep -c '^FAIL' "$T/judged")))
[ "$(grep -c '^ok\|^FAIL' "$T/judged")" = "$(wc -l <"$T/queue")" ] || bad "every queued check was judged"
summary
