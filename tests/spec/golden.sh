#!/bin/bash
# Golden xsrelf images (tests/spec/golden/, format 1.0, made once by
# mkgolden.c and never regenerated): a seekable image, a stream, a zstd and
# an lz4 stream of the same small domain.
#  - The spec's own reader (xsrelf_check.py, written from
#    docs/xsrelf-format.md alone) accepts each and describes it exactly as
#    the .json beside it says: header, section table, offsets, trailers,
#    index, page hashes, vCPU, notes.
#  - The facts mkgolden.c put in are checked again here, written down by
#    hand: memory map, the content of every data page, registers, MSRs,
#    config, VMCOREINFO, the section order.
#  - Today's xsr reads all four (verify, info, cat-page, convert) and gets the
#    same; what today's writer makes of them the spec reader accepts.
#  - The spec reader refuses every flipped octet of the compressed streams,
#    every 5th of the stream and every 7th of the image, and truncations:
#    it can fail.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
G=$ROOT/tests/spec/golden
CHK=$ROOT/tests/spec/xsrelf_check.py
IMGS=(xsrelf-1.0.img xsrelf-1.0.stream xsrelf-1.0-zstd.stream xsrelf-1.0-lz4.stream)

for f in "${IMGS[@]}"; do
	check "spec reader accepts golden $f" python3 "$CHK" "$G/$f"
	python3 "$CHK" --json "$G/$f" >"$T/$f.json" 2>&1
	check "  ... and describes it exactly as $f.json" diff -u "$G/$f.json" "$T/$f.json"
done

# Facts written down by hand (see mkgolden.c), checked on each layout.
for f in "${IMGS[@]}"; do
	check "$f: header, memory map, vCPU, config, VMCOREINFO, DOMCTX as made" python3 - "$T/$f.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = {"kind": 1, "format": "1.0", "nr_vcpus": 1, "nr_pages": 20, "flags": 0,
        "runs": [["0x0", 8], ["0x100", 12]], "config": '{"golden": 1}',
        "vmcoreinfo": "OSRELEASE=golden\nPAGESIZE=4096\n", "producer_version": "0x10000"}
for k, v in want.items():
    assert d[k] == v, (k, d[k], v)
assert d["producer"][0] == "xsrelf" and d["producer"][2:4] == ["synthetic", "golden 1.0"], d["producer"]
assert sorted(d["pages"]) == sorted(["0x1", "0x2", "0x3", "0x100", "0x10b"]), d["pages"]
v = d["vcpus"]["0"]
assert (v["rip"], v["rax"], v["rsp"], v["cr3"], v["efer"], v["cs_selector"]) == \
    ("0xffffffff81000000", "0x1122334455667788", "0x7000", "0x1000", "0x500", 0x10), v
assert v["xsave_len"] == 64 and v["lapic_len"] == 0, v
assert v["msrs"] == {"0xc0000100": "0x12345678", "0xc0000102": "0xfeedface00000000"}, v["msrs"]
assert [(x["type"], x["length"], x["vcpu"]) for x in d["domctx"]] == [(1, 48, 0xffffffff)], d["domctx"]
assert [n["type"] for n in d["notes"]] == ["NT_PRSTATUS", "VMCOREINFO"], d["notes"]
PY
done
check "xsrelf-1.0.img: sections in the spec's order" python3 - "$T/xsrelf-1.0.img.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = [r["name"] for r in d["records"]]
assert names == [".note", ".xsr.producer", ".xsr.memmap", ".xsr.index", ".xsr.pages", ".xsr.vmcoreinfo",
                 ".xsr.vcpu", ".xsr.config", ".xsr.domctx", ".shstrtab", ".xsr.integrity"], names
PY
check "the zstd and lz4 streams' page batches are compressed (1, 2), the plain one's not" python3 - "$T"/xsrelf-1.0{,-zstd,-lz4}.stream.json <<'PY'
import json, sys
for path, c in zip(sys.argv[1:], (0, 1, 2)):
    b = [r for r in json.load(open(path))["records"] if r["name"] == "PAGES"]
    assert len(b) == 4 and all(r["compress"] == c for r in b), (path, b)
PY
check "pfn 0x100 written twice: the stream keeps both batches, the image the last" python3 - "$T/xsrelf-1.0.stream.json" <<'PY'
import json, sys
b = [r for r in json.load(open(sys.argv[1]))["records"] if r["name"] == "PAGES"]
assert [r["count"] for r in b] == [3, 1, 1, 1], b
PY

# The page contents, made here independently of the files.
python3 - "$T" <<'PY'
import sys
t = sys.argv[1]
pages = {
    "0x1": (b"golden page 1\n" * 293)[:4096],
    "0x2": b"\xff" * 4096,
    "0x3": bytes(i & 0xff for i in range(4096)),
    "0x100": b"B" * 4096,
    "0x10b": bytes(4000) + b"xsrelf golden end\n" + bytes(4096 - 4018),
    "0x4": bytes(4096),
}
for k, v in pages.items():
    open(f"{t}/want-{k}", "wb").write(v)
PY
for f in "${IMGS[@]}"; do
	for p in 0x1 0x2 0x3 0x100 0x10b 0x4; do
		check "$f pfn $p: the spec reader's page is the one made" bash -c "python3 '$CHK' --page $p '$G/$f' | cmp - '$T/want-$p'"
		check "$f pfn $p: xsr cat-page gives the same" bash -c "'$XSR' cat-page '$G/$f' $p | cmp - '$T/want-$p'"
	done
done

# Today's xsr on the goldens.
for f in "${IMGS[@]}"; do
	check "xsr verify: golden $f intact" "$XSR" verify "$G/$f"
	check "xsr info --json $f: 20 pages, 15 zero, 1 vCPU" python3 -c "
import json, subprocess, sys
d = json.loads(subprocess.run(['$XSR', 'info', '--json', '$G/$f'], capture_output=True, check=True).stdout)
assert (int(d['pages']), int(d['zero_pages']), d['vcpus']) == (20, 15, 1), d"
	check "xsr convert $f -> seekable: the spec reader accepts it" bash -c "'$XSR' convert --to seekable '$G/$f' '$T/c-$f.img' && python3 '$CHK' '$T/c-$f.img'"
	check "  ... with the same pages, vCPU, config and DOMCTX" python3 - "$T/$f.json" "$CHK" "$T/c-$f.img" <<'PY'
import json, subprocess, sys
a = json.load(open(sys.argv[1]))
b = json.loads(subprocess.run([sys.executable, sys.argv[2], "--json", sys.argv[3]], capture_output=True, check=True).stdout)
for k in ("pages", "vcpus", "config", "vmcoreinfo", "domctx", "runs", "producer"):
    assert a[k] == b[k], k
PY
	check "xsr convert $f -> zstd stream: the spec reader accepts it" bash -c "'$XSR' convert --to stream --compress zstd '$G/$f' '$T/c-$f.zst' && python3 '$CHK' '$T/c-$f.zst'"
done
check "the stream converted to seekable is byte for byte the golden image" cmp "$G/xsrelf-1.0.img" "$T/c-xsrelf-1.0.stream.img"

# The spec reader can fail: every flipped octet of the streams, every 7th
# of the image, and truncations.
check "spec reader refuses every flipped octet (compressed streams), every 5th (stream), every 7th (image), and truncations" python3 - "$CHK" "$G" <<'PY'
import importlib.util, struct, sys
spec = importlib.util.spec_from_file_location("chk", sys.argv[1])
X = importlib.util.module_from_spec(spec)
spec.loader.exec_module(X)
g = sys.argv[2]
total = 0
for name, step in (("xsrelf-1.0.stream", 5), ("xsrelf-1.0-zstd.stream", 1), ("xsrelf-1.0-lz4.stream", 1),
                   ("xsrelf-1.0.img", 7)):
    data = bytearray(open(f"{g}/{name}", "rb").read())
    for off in range(0, len(data), step):
        data[off] ^= 0x10
        try:
            X.Image(data).check()
            sys.exit(f"{name}: flip at {off:#x} not noticed")
        except (X.Bad, struct.error):
            pass
        data[off] ^= 0x10
        total += 1
    for cut in list(range(0, 512, 8)) + list(range(512, len(data), 509)):
        try:
            X.Image(bytes(data[:cut])).check()
            sys.exit(f"{name}: cut at {cut:#x} not noticed")
        except (X.Bad, struct.error):
            pass
print(f"{total} flips refused")
assert total > 24000, total
PY
summary
