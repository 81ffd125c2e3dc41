#!/bin/bash
# The inspection verbs (issue 15): xsr diff, ls and dump on both layouts, their
# exit codes and errors, and the bash completion.  Cheap: 8 MiB images, < 30 s.
set -uo pipefail
. "$(dirname "$0")/lib.inc"
build_helper mkpair
build_helper mkpt
build_helper craft

# xsr_rc WANT DESCRIPTION CMD...: CMD exits WANT (stdout and stderr in $T/out, $T/err).
xsr_rc() {
	local want=$1 d=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$d (exit $want)"; else
		bad "$d: exit $rc, want $want"; sed 's/^/     /' "$T/err" | head -5; fi
}
# has FILE PATTERN DESCRIPTION: grep -E PATTERN in FILE.
has() { if grep -qE -- "$2" "$1"; then ok "$3"; else bad "$3: no /$2/ in:"; sed 's/^/     /' "$1" | head -10; fi; }
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); $2" "$1"; }

export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
S="--mem 8M --vcpus 2"
"$XSR" synth $S --seed 1 "$T/a1.elf" && "$XSR" synth $S --seed 2 "$T/a2.elf" &&
	"$XSR" synth $S --seed 1 --stream "$T/s1.stream" && "$XSR" synth $S --seed 1 --compress zstd "$T/z1.stream" &&
	"$XSR" synth $S --seed 3 --zero-fraction 0.25 "$T/q.elf" && "$XSR" convert --to stream "$T/q.elf" "$T/q.stream" ||
	{ bad "synth the test images"; summary; exit 1; }
P=$ROOT/tests/build
"$P/mkpair" "$T/p0.elf" && "$P/mkpair" --variant "$T/p1.elf" && "$P/mkpair" --variant --stream "$T/p1.stream" &&
	"$P/mkpt" "$T/pt.elf" || { bad "mkpair / mkpt"; summary; exit 1; }

# ---------------- diff ----------------
xsr_rc 0 "diff: seed 1 seekable vs streamed" "$XSR" diff "$T/a1.elf" "$T/s1.stream"
check "  ... prints nothing" test ! -s "$T/out"
xsr_rc 0 "diff: zstd stream vs seekable" "$XSR" diff "$T/z1.stream" "$T/a1.elf"
xsr_rc 0 "diff: two streams, one compressed" "$XSR" diff "$T/s1.stream" "$T/z1.stream"
xsr_rc 0 "diff: a stream on stdin" bash -c "'$XSR' diff - '$T/a1.elf' < '$T/s1.stream'"
xsr_rc 1 "diff: seeds 1 and 2 differ" "$XSR" diff "$T/a1.elf" "$T/a2.elf"
has "$T/out" '^pages 0x0-0x9f: differ \(160 pages\)$' "  ... names pfns 0x0-0x9f"
has "$T/out" '^pages 0x100-0x85f: differ \(1888 pages\)$' "  ... and 0x100-0x85f"
has "$T/out" '^section \.xsr\.producer: differs' "  ... and the producer section (seed in its text)"
check "  ... and no vCPU field (synth registers do not depend on the seed)" bash -c "! grep -q '^vcpu' '$T/out'"
xsr_rc 1 "diff: seeds differ across layouts (stream vs seekable)" "$XSR" diff "$T/z1.stream" "$T/a2.elf"
xsr_rc 1 "diff --quiet" "$XSR" diff --quiet "$T/a1.elf" "$T/a2.elf"
check "  ... prints nothing" test ! -s "$T/out" -a ! -s "$T/err"
xsr_rc 1 "diff --json seeds 1 and 2" "$XSR" diff --json "$T/a1.elf" "$T/a2.elf"
check "  ... valid JSON, pfns as hex strings, counts as strings" json "$T/out" '
r = j["page_ranges"]
assert j["identical"] is False and len(r) == 2, j
assert r[0] == {"first": "0x0", "last": "0x9f", "count": "160", "kind": "differ"}, r[0]
assert j["pages_differ"] == "2048" and j["pages_only_a"] == "0", j'
xsr_rc 1 "diff --limit 1" "$XSR" diff --limit 1 "$T/a1.elf" "$T/a2.elf"
check "  ... lists one range and says one more" bash -c "[ \$(grep -c '^pages 0x' '$T/out') -eq 1 ] && grep -q '^pages: 1 more range' '$T/out'"

# One page and two vCPU fields apart (tests/cli/mkpair.c): exactly those, in both layouts.
cat >"$T/pair.want" <<'EOF'
pages 0x42: differ
vcpu 0 msr 0xc0000100: 0x7f00 | 0x7f01
vcpu 1 rip: 0xffffffff81000100 | 0xffffffff81000110
differ: 1 page(s) in 1 range(s), 2 vCPU field(s), 0 section(s), 0 header field(s)
EOF
xsr_rc 1 "diff: one flipped page, one register, one MSR" "$XSR" diff "$T/p0.elf" "$T/p1.elf"
check "  ... names exactly pfn 0x42, rip of vCPU 1 and MSR 0xc0000100 of vCPU 0" diff -u "$T/pair.want" "$T/out"
xsr_rc 1 "diff: the same against the streamed variant" "$XSR" diff "$T/p0.elf" "$T/p1.stream"
check "  ... same report" diff -u "$T/pair.want" "$T/out"
xsr_rc 0 "diff: variant seekable vs variant stream" "$XSR" diff "$T/p1.elf" "$T/p1.stream"
"$XSR" diff --json "$T/p1.stream" "$T/p0.elf" >"$T/pj.json"
check "diff --json: vCPU fields by name with hex-string values" json "$T/pj.json" '
v = {(x["vcpu"], x["field"]): (x["a"], x["b"]) for x in j["vcpus"]}
assert v == {(0, "msr 0xc0000100"): ("0x7f01", "0x7f00"), (1, "rip"): ("0xffffffff81000110", "0xffffffff81000100")}, v
assert j["page_ranges"] == [{"first": "0x42", "last": "0x42", "count": "1", "kind": "differ"}], j'
xsr_rc 1 "diff: different memory maps" "$XSR" diff "$T/p0.elf" "$T/a1.elf"
has "$T/out" '^pages 0xa0-0xff: only in A \(96 pages\)$' "  ... pages only in A named"
has "$T/out" '^pages 0x100-0x3ff: only in B \(768 pages\)$' "  ... pages only in B named"
has "$T/out" '^pages 0x400-0x4ff: differ \(256 pages\)$' "  ... pages held by both that differ"
has "$T/out" '^header nr_pages: 0x200 \| 0x800$' "  ... header nr_pages"
has "$T/out" '^section \.xsr\.config: differs' "  ... config section"

"$XSR" synth --mem 8M --vcpus 3 --seed 1 "$T/v3.elf"
xsr_rc 1 "diff: a vCPU more" "$XSR" diff -s "$T/a1.elf" "$T/v3.elf"
xsr_rc 1 "  ... without -s" "$XSR" diff "$T/a1.elf" "$T/v3.elf"
has "$T/out" '^vcpu 2: only in B$' "  ... names it"
has "$T/out" '^header nr_vcpus: 0x2 \| 0x3$' "  ... and the header field"
check "  ... and no page (same seed)" bash -c "! grep -q '^pages' '$T/out'"
xsr_rc 0 "diff: a pipe given by name (process substitution)" bash -c "'$XSR' diff <(cat '$T/a1.elf') <(cat '$T/z1.stream')"
# A real Xen guest: many PASSTHRU sections of one type, matched in their order.
G=$ROOT/tests/xen/golden/xen417-rigu.save.zst
if [ -f "$G" ] && command -v zstd >/dev/null; then
	zstd -q -d -c "$G" >"$T/rigu.save" && "$XSR" import "$T/rigu.save" "$T/rigu.img" &&
		"$XSR" import --stream "$T/rigu.save" "$T/rigu.stream" || bad "import the golden Xen save"
	xsr_rc 0 "diff: an imported Xen save, seekable vs streamed (16 PASSTHRU sections)" "$XSR" diff "$T/rigu.img" "$T/rigu.stream"
	rm -f "$T/rigu.save" "$T/rigu.stream"
fi
xsr_rc 2 "diff: one file is a usage error" "$XSR" diff "$T/a1.elf"
xsr_rc 2 "diff: stdin twice is a usage error" "$XSR" diff - -
xsr_rc 2 "diff --limit x is a usage error" "$XSR" diff --limit x "$T/a1.elf" "$T/a2.elf"
xsr_rc 2 "diff --limit -1 is a usage error" "$XSR" diff --limit -1 "$T/a1.elf" "$T/a2.elf"
xsr_rc 3 "diff: missing file" "$XSR" diff "$T/a1.elf" "$T/nonexistent"
head -c 100000 "$T/s1.stream" >"$T/trunc.stream"
head -c 500000 "$T/a1.elf" >"$T/trunc.elf"
xsr_rc 3 "diff: truncated stream" "$XSR" diff "$T/trunc.stream" "$T/a1.elf"
has "$T/err" 'trunc\.stream' "  ... names the file"
xsr_rc 3 "diff: truncated seekable image" "$XSR" diff "$T/a1.elf" "$T/trunc.elf"
xsr_rc 3 "diff: stdout on /dev/full" bash -c "'$XSR' diff '$T/a1.elf' '$T/a2.elf' > /dev/full"

# ---------------- ls ----------------
"$XSR" info --json "$T/q.elf" >"$T/info.json"
for f in q.elf q.stream; do
	xsr_rc 0 "ls --json $f" "$XSR" ls --json "$T/$f"
	cp "$T/out" "$T/ls-$f.json"
done
# One Python for every JSON check of ls: it prints what the text checks below compare with.
python3 - "$T/ls-q.elf.json" "$T/ls-q.stream.json" "$T/info.json" >"$T/ls-check" 2>&1 <<'PY'
import json, sys
le, ls, i = (json.load(open(f)) for f in sys.argv[1:4])
for l in (le, ls):
    ext = l["extents"]
    tot = sum(int(e["count"]) for e in ext)
    zero = sum(int(e["count"]) for e in ext if e["zero"])
    assert tot == int(i["pages"]) == int(l["pages"]), ("pages", tot, i["pages"])
    assert zero == int(i["zero_pages"]) and tot - zero == int(i["data_pages"]), ("zero", zero, i["zero_pages"])
    assert l["runs"] == len(i["memory_runs"]) == 2, ("runs", l["runs"])
    assert 0 < zero < tot and l["extents_left_off"] == "0"
    for a, b in zip(ext, ext[1:]):   # sorted; neighbours differ or are not contiguous
        assert int(a["last"], 16) < int(b["first"], 16)
        assert a["zero"] != b["zero"] or int(a["last"], 16) + 1 != int(b["first"], 16)
assert [s["name"] for s in le["sections"]] == [s["name"] for s in i["sections"]], "section names"
assert le["extents"] == ls["extents"], "the layouts' extents differ"
print(len(le["extents"]), len(i["sections"]), i["zero_pages"])
PY
rc=$?
check "ls --json of both layouts: extents add up to info's pages, data and zero pages, sorted, merged, alike" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/     /' "$T/ls-check"
read -r n_ext n_sec n_zero <"$T/ls-check"
xsr_rc 0 "ls (text)" "$XSR" ls "$T/q.elf"
check "  ... one line per extent ($n_ext)" test "$(grep -cE '^  0x[0-9a-f]+  0x[0-9a-f]+ +[0-9]+  (data|zero)$' "$T/out")" -eq "${n_ext:-0}"
check "  ... and every section info lists ($n_sec)" test "$(sed -n '/^sections:/,$p' "$T/out" | grep -c '^  \.')" -eq "${n_sec:-0}"
xsr_rc 0 "ls --zero" "$XSR" ls --zero --pages "$T/q.elf"
check "  ... only zero extents, as many pages as info's zero pages ($n_zero)" bash -c "! grep -qE '  data$' '$T/out' &&
	[ \$(awk '/  zero\$/ {s += \$3} END {print s}' '$T/out') -eq '${n_zero:-x}' ]"
xsr_rc 0 "ls --nonzero" "$XSR" ls --nonzero --pages "$T/q.stream"
check "  ... only data extents" bash -c "! grep -qE '  zero$' '$T/out' && grep -qE '  data$' '$T/out'"
xsr_rc 0 "ls --range 0x100-0x1ff" "$XSR" ls --range 0x100-0x1ff --json "$T/q.elf"
check "  ... 256 pages, first 0x100, last 0x1ff" json "$T/out" '
e = j["extents"]; assert j["pages"] == "256" and e[0]["first"] == "0x100" and e[-1]["last"] == "0x1ff", j'
xsr_rc 0 "ls --pages prints no sections" "$XSR" ls --pages "$T/a1.elf"
check "  ... right" bash -c "grep -q '^pages:' '$T/out' && ! grep -q '^sections:' '$T/out'"
xsr_rc 0 "ls --sections of a stream on stdin" bash -c "'$XSR' ls --sections - < '$T/s1.stream'"
check "  ... stream offsets, no pages" bash -c "grep -q 'stream offset' '$T/out' && ! grep -q '^pages:' '$T/out' && grep -q '^  .xsr.vcpu ' '$T/out'"
xsr_rc 0 "ls --limit 2" "$XSR" ls --pages --limit 2 "$T/q.elf"
check "  ... two extents and the rest counted" bash -c "[ \$(grep -cE '  (data|zero)\$' '$T/out') -eq 2 ] && grep -q 'more extent' '$T/out'"
xsr_rc 2 "ls --range 5-3" "$XSR" ls --range 5-3 "$T/q.elf"
xsr_rc 2 "ls --range x" "$XSR" ls --range x "$T/q.elf"
xsr_rc 2 "ls --range 0x10000000000000 (past the largest pfn)" "$XSR" ls --range 0x10000000000000 "$T/q.elf"
xsr_rc 3 "ls: missing file" "$XSR" ls "$T/nonexistent"
xsr_rc 3 "ls: truncated stream" "$XSR" ls "$T/trunc.stream"
xsr_rc 3 "ls: not an image" "$XSR" ls /etc/passwd
xsr_rc 3 "ls: stdout on /dev/full" bash -c "'$XSR' ls '$T/q.elf' > /dev/full"

# ---------------- dump ----------------
for p in 0x201 0x202 0x203; do "$XSR" cat-page "$T/a1.elf" $p >"$T/cat-$p"; done
xsr_rc 0 "dump --paddr of one page" bash -c "'$XSR' dump --paddr 0x201000 --len 4096 '$T/a1.elf' > '$T/d.bin'"
check "  ... equals cat-page 0x201" cmp "$T/d.bin" "$T/cat-0x201"
cat "$T/cat-0x201" "$T/cat-0x202" "$T/cat-0x203" | tail -c +2049 | head -c 8192 >"$T/span.want"
xsr_rc 0 "dump across two page boundaries (seekable)" bash -c "'$XSR' dump --paddr 0x201800 --len 8K '$T/a1.elf' > '$T/span.bin'"
check "  ... equals the cat-page bytes" cmp "$T/span.bin" "$T/span.want"
xsr_rc 0 "dump across two page boundaries (zstd stream on stdin)" bash -c "'$XSR' dump --paddr 0x201800 --len 8192 - < '$T/z1.stream' > '$T/span2.bin'"
check "  ... the same bytes" cmp "$T/span2.bin" "$T/span.want"
xsr_rc 0 "dump --hex" "$XSR" dump --hex --paddr 0x201ff8 --len 16 "$T/a1.elf"
check "  ... one line at 0x201ff8: the last 8 octets of pfn 0x201, the first 8 of 0x202" bash -c "
	[ \$(wc -l < '$T/out') -eq 1 ] &&
	grep -q '^0000000000201ff8  $(tail -c 8 "$T/cat-0x201" | od -An -tx1 | xargs)  $(head -c 8 "$T/cat-0x202" | od -An -tx1 | xargs)  |' '$T/out'"
xsr_rc 0 "dump --json" "$XSR" dump --json --paddr 0x201ff8 --len 16 "$T/a1.elf"
check "  ... address and data" json "$T/out" "
assert j['address'] == '0x201ff8' and j['len'] == '16' and j['space'] == 'physical'
assert bytes.fromhex(j['data']) == open('$T/span.want', 'rb').read()[0x7f8:0x808], j"

# --vaddr through the hand-built tables of tests/gdb/mkpt.c (mappings listed there).
"$XSR" cat-page "$T/pt.elf" 5 >"$T/pfn5"
xsr_rc 0 "dump --vaddr of a 4 KiB mapping" bash -c "'$XSR' dump --vaddr 0x7f0000001000 --len 4096 '$T/pt.elf' > '$T/v.bin'"
check "  ... equals its physical page (pfn 5)" cmp "$T/v.bin" "$T/pfn5"
vp() { # VADDR PADDR LEN [dump options]: --vaddr and --paddr give the same bytes
	local va=$1 pa=$2 len=$3; shift 3
	"$XSR" dump "$@" --vaddr "$va" --len "$len" "$T/pt.elf" >"$T/vv" 2>"$T/err" &&
		"$XSR" dump --paddr "$pa" --len "$len" "$T/pt.elf" >"$T/pp" && cmp -s "$T/vv" "$T/pp" && [ -s "$T/vv" ]
}
check "dump --vaddr across a 2 MiB mapping's pages == --paddr" vp 0xffff888000201ff8 0x201ff8 16
check "dump --vaddr in a 1 GiB mapping == --paddr" vp 0xffffffff80005000 0x5000 4096
check "dump --vaddr --vcpu 1 (5-level paging) == --paddr" vp 0xf07f0000001008 0x5008 8 --vcpu 1
check "dump --vaddr --cr3 0xa000 --vcpu 1 == --paddr" vp 0xf07f0000001008 0x5008 8 --cr3 0xa000 --vcpu 1
check "dump --vaddr, the loop through PML4 slot 100 == --paddr 0x1000" \
	vp "$(printf '0x%x' $(((100 << 39) | (100 << 30) | (100 << 21) | (100 << 12))))" 0x1000 64
xsr_rc 3 "dump --vaddr of an unmapped page" "$XSR" dump --vaddr 0x7f0000001ff8 --len 16 "$T/pt.elf"
has "$T/err" '0x7f0000002000 is not mapped' "  ... names the address"
check "  ... and writes nothing" test ! -s "$T/out"
xsr_rc 0 "dump --vaddr --fill" bash -c "'$XSR' dump --fill --vaddr 0x7f0000001ff8 --len 16 '$T/pt.elf' > '$T/f.bin'"
check "  ... the mapped half, then zeros" bash -c "cmp <(tail -c 8 '$T/pfn5'; head -c 8 /dev/zero) '$T/f.bin'"
xsr_rc 3 "dump --vaddr, 5-level address with vCPU 0's 4-level tables" "$XSR" dump --vaddr 0xf07f0000001008 --len 8 "$T/pt.elf"
has "$T/err" 'not a canonical 4-level address' "  ... says why"
xsr_rc 3 "dump --vaddr --vcpu 7 (the image has 2)" "$XSR" dump --vcpu 7 --vaddr 0x7f0000001000 --len 8 "$T/pt.elf"
has "$T/err" 'no vCPU 7' "  ... says so"

xsr_rc 3 "dump --paddr in a hole of the memory map" "$XSR" dump --paddr 0x9f000 --len 8K "$T/a1.elf"
has "$T/err" 'guest-physical 0xa0000 \(pfn 0xa0\) is not in the image' "  ... names the first missing page"
check "  ... and writes nothing" test ! -s "$T/out"
xsr_rc 0 "dump --paddr --fill over the hole" bash -c "'$XSR' dump --fill --paddr 0x9f000 --len 8K '$T/a1.elf' > '$T/h.bin'"
check "  ... page 0x9f, then 4096 zeros" bash -c "cmp <('$XSR' cat-page '$T/a1.elf' 0x9f; head -c 4096 /dev/zero) '$T/h.bin'"
xsr_rc 3 "dump --paddr beyond memory" "$XSR" dump --paddr 0x100000000 --len 1 "$T/a1.elf"
xsr_rc 3 "dump --len 1T (past the end of memory), refused before output" "$XSR" dump --paddr 0 --len 1T "$T/a1.elf"
check "  ... nothing written" test ! -s "$T/out"
xsr_rc 2 "dump --len 0" "$XSR" dump --paddr 0 --len 0 "$T/a1.elf"
xsr_rc 2 "dump --len 99999999999999999999" "$XSR" dump --paddr 0 --len 99999999999999999999 "$T/a1.elf"
xsr_rc 2 "dump --paddr 0xffffffffffffffff --len 2 (wraps)" "$XSR" dump --paddr 0xffffffffffffffff --len 2 "$T/a1.elf"
xsr_rc 2 "dump --paddr 12abc" "$XSR" dump --paddr 12abc --len 1 "$T/a1.elf"
xsr_rc 2 "dump --paddr -1" "$XSR" dump --paddr -1 --len 1 "$T/a1.elf"
xsr_rc 2 "dump --paddr 0777 (octal-looking)" "$XSR" dump --paddr 0777 --len 1 "$T/a1.elf"
xsr_rc 2 "dump without --len" "$XSR" dump --paddr 0 "$T/a1.elf"
xsr_rc 2 "dump with both --paddr and --vaddr" "$XSR" dump --paddr 0 --vaddr 0 --len 1 "$T/a1.elf"
xsr_rc 2 "dump --paddr with --cr3" "$XSR" dump --paddr 0 --cr3 0x1000 --len 1 "$T/a1.elf"
xsr_rc 2 "dump --hex --force" "$XSR" dump --hex --force --paddr 0 --len 1 "$T/a1.elf"
xsr_rc 3 "dump: missing file" "$XSR" dump --paddr 0 --len 1 "$T/nonexistent"
xsr_rc 3 "dump: stdout on /dev/full" bash -c "'$XSR' dump --paddr 0 --len 64K '$T/a1.elf' > /dev/full"
# A terminal gets no binary: run it on a pseudo-terminal.
tty_rc() {
	if command -v script >/dev/null; then
		script -qec "$(printf '%q ' "$@")" /dev/null
		return
	fi
	python3 - "$@" <<'PY'
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.run(sys.argv[1:], stdout=s, stderr=subprocess.PIPE)
os.close(s)
sys.stderr.buffer.write(p.stderr)
sys.exit(p.returncode)
PY
}
xsr_rc 2 "dump to a terminal is refused" tty_rc "$XSR" dump --paddr 0x201000 --len 16 "$T/a1.elf"
cat "$T/out" "$T/err" >"$T/both"
has "$T/both" 'refusing to write binary memory to a terminal' "  ... says why"
xsr_rc 0 "dump --hex to a terminal is fine" tty_rc "$XSR" dump --hex --paddr 0x201000 --len 16 "$T/a1.elf"
xsr_rc 0 "dump --force to a terminal is fine" tty_rc "$XSR" dump --force --paddr 0x201000 --len 16 "$T/a1.elf"

# A stream's seekable copy follows its header's claim: a claim its size cannot hold is
# refused before anything is written (on tmpfs, which allows a 256 TiB sparse file,
# the copy of this 8 MiB stream claiming 2^36 pages would never end).
"$ROOT/tests/build/craft" huge-claim "$T/s1.stream" "$T/huge.stream" || bad "craft huge-claim"
for v in ls diff dump; do
	case $v in ls) a=() ;; diff) a=("$T/a1.elf") ;; dump) a=(--paddr 0 --len 1) ;; esac
	xsr_rc 3 "$v of a stream claiming 2^36 pages, refused at once" \
		env TMPDIR="$([ -w /dev/shm ] && echo /dev/shm || echo "$TMPDIR")" timeout 20 "$XSR" $v "${a[@]}" "$T/huge.stream"
	has "$T/err" 'claims 0x1000000000 pages, more than its [0-9]+ octets can hold' "  ... says why"
done

# Streams are held in unnamed temporary files: none is left behind.
check "no temporary file left in \$TMPDIR" test -z "$(ls -A "$TMPDIR")"
# Memory does not follow the image: a 256 MiB guest diffed (both layouts) under a 64 MiB data limit.
if ! grep -q __asan_init "$XSR"; then
	"$XSR" synth --mem 256M --vcpus 1 --zero-fraction 0.99 "$T/big.elf" && "$XSR" convert --to stream "$T/big.elf" "$T/big.stream"
	check "diff of a 256 MiB guest's two layouts within a 64 MiB data limit" \
		bash -c "ulimit -d 65536; '$XSR' diff '$T/big.elf' '$T/big.stream'"
	rm -f "$T/big.elf" "$T/big.stream"
fi

# ---------------- completion and manual ----------------
C=$ROOT/contrib/bash-completion/xsr
verbs=$(sed -n '/^} verbs\[\] = {/,/^};/p' "$ROOT/cli/main.c" | grep -oE '^[[:space:]]*\{"[a-z-]+"' | grep -oE '[a-z-]+')
check "verb table read from cli/main.c (ls, diff and dump in it)" bash -c "echo '$verbs' | grep -qx ls && echo '$verbs' | grep -qx diff && echo '$verbs' | grep -qx dump"
missing=
for v in $verbs; do
	bash -c ". '$C'; [[ \" \$_xsr_verbs \" == *' $v '* ]]" || missing+=" $v"
done
check "completion names every verb of the table${missing:+ (missing:$missing)}" test -z "$missing"
# The options a verb's usage (its --help up to the first blank line) names.
missing=
for v in $verbs; do
	opts=$(. "$C"; _xsr_opts "$v")
	for o in $("$XSR" $v --help </dev/null 2>&1 | sed '/^$/q' | grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | grep -oE -- '--.*' | sort -u); do
		[[ " $opts " == *" $o "* ]] || missing+=" $v:$o"
	done
done
check "completion names every long option of each verb's usage${missing:+ (missing:$missing)}" test -z "$missing"
check "completion: 'xsr d<TAB>' offers diff and dump" bash -c ". '$C'; COMP_WORDS=(xsr d); COMP_CWORD=1; _xsr; [ \"\${COMPREPLY[*]}\" = 'diff dump' ]"
check "completion: 'xsr dump --v<TAB>' offers --vaddr --vcpu --verbose" bash -c ". '$C'; COMP_WORDS=(xsr dump --v); COMP_CWORD=2; _xsr; [ \"\${COMPREPLY[*]}\" = '--vaddr --vcpu --verbose' ]"
check "make install puts it in share/bash-completion/completions/xsr" bash -c \
	"make -n -C '$ROOT' install PREFIX=/usr DESTDIR=/x 2>/dev/null | grep -q 'contrib/bash-completion/xsr /x/usr/share/bash-completion/completions/xsr'"
for v in ls diff dump; do
	check "man page describes xsr $v" grep -q "^\.B $v " "$ROOT/docs/man/xsr.1"
done
summary
