#!/usr/bin/env python3
"""Write Xen save files, migration streams and xc_core dumps from the specs.

Facts: docs/specs/libxc-migration-stream.pandoc, libxl-migration-stream.pandoc,
docs/misc/dump-core-format.txt and tools/xl/xl.h of Xen 4.17, and the seed
proposals 001 (DOMAIN_CONTEXT, v4) and 002 (post-copy records, v2).
usage: gen.py OUTDIR  -> writes every case and prints their names.
       gen.py xccore OUTDIR -> the PV saves with real page tables for the
                               xc_core export tests (tests/xen/xccore.sh).
"""
import json
import os
import struct
import sys

PAGE = 4096
RIP = {0: 0xffffffff81000123, 1: 0xffffffff81000456}


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def rec(rtype, body=b""):
    return struct.pack("<II", rtype, len(body)) + pad8(body)


def ihdr(version=3):
    return struct.pack(">QIIHHI", 0xffffffffffffffff, 0x58454E46, version, 0, 0, 0)


def dhdr(gtype, major=4, minor=17):
    return struct.pack("<IHHII", gtype, 12, 0, major, minor)


def page(pfn, gen=0):
    """Deterministic page content; pfn 5 is all zero."""
    if pfn == 5:
        return b"\0" * PAGE
    seed = (pfn * 2654435761 + gen * 97) & 0xffffffff
    return (struct.pack("<II", pfn, seed) * (PAGE // 8))


def page_data(entries):
    """entries: (pfn, type, gen) ; data for types 0-4 and 9-12."""
    hdr = struct.pack("<II", len(entries), 0)
    pfns = b"".join(struct.pack("<Q", p | (t << 60)) for p, t, _ in entries)
    data = b"".join(page(p, g) for p, t, g in entries if (t & 7) <= 4 and t < 0xd)
    return rec(1, hdr + pfns + data)


def pv_ctx(vcpu):
    """vcpu_guest_context_x86_64 (5168 octets): fpu_ctxt[512], flags, user_regs..."""
    b = bytearray(5168)
    struct.pack_into("<Q", b, 512, 1 << 2 | 1)  # VGCF_in_kernel | i387_valid
    regs = [0x1500 + vcpu, 0x1400, 0x1300, 0x1200, 0xbb00 + vcpu, 0x0b00,  # r15 r14 r13 r12 rbp rbx
            0x1100, 0x1000, 0x900, 0x800, 0xaa00 + vcpu, 0xcc00, 0xdd00, 0x5100, 0xd100]  # r11..r8 rax rcx rdx rsi rdi
    off = 520
    for r in regs:
        struct.pack_into("<Q", b, off, r)
        off += 8
    struct.pack_into("<II", b, off, 0, 0)  # error_code, entry_vector
    off += 8
    struct.pack_into("<Q", b, off, RIP[vcpu])  # rip
    struct.pack_into("<H", b, off + 8, 0xe033)  # cs
    struct.pack_into("<Q", b, off + 16, 0x246)  # rflags
    struct.pack_into("<Q", b, off + 24, 0xffffc90000001f00 + vcpu)  # rsp
    struct.pack_into("<H", b, off + 32, 0xe02b)  # ss
    # ctrlreg[] after trap_ctxt(256*16), ldt_base/ents, gdt_frames[16], gdt_ents, kernel_ss/sp
    cr = 520 + 200 + 4096 + 16 + 136 + 16
    struct.pack_into("<QQQQQ", b, cr, 0x80050033, 0, 0, 0x3 << 12, 0x2660)
    struct.pack_into("<QQQ", b, 5168 - 24, 0x7f0000001000, 0xffff888000000000, 0)
    return bytes(b)


def hvm_context(nvcpus):
    """hvm_save_header, one CPU record (1032 octets) per vCPU, END."""
    out = struct.pack("<HHI", 1, 0, 24) + struct.pack("<IIQII", 0x54381286, 1, 0xabcd, 0x306c3, 1000000)
    for v in range(nvcpus):
        cpu = bytearray(1032)
        struct.pack_into("<QQQQ", cpu, 512, 0xaa00 + v, 0xbb00, 0xcc00, 0xdd00)  # rax rbx rcx rdx
        struct.pack_into("<Q", cpu, 512 + 8 * 16, RIP[v])  # rip after 16 gprs
        struct.pack_into("<Q", cpu, 512 + 8 * 17, 0x202)  # rflags
        struct.pack_into("<QQQQ", cpu, 512 + 8 * 18, 0x80050033, 0, 0x1000, 0x6f0)
        out += struct.pack("<HHI", 2, v, len(cpu)) + bytes(cpu)
    return out + struct.pack("<HHI", 0, 0, 0)


def libxc_pv(version=3, live=False, static_end=True, extra=b""):
    s = ihdr(version) + dhdr(1)
    s += rec(2, struct.pack("<BBHI", 8, 4, 0, 0))
    if version >= 3:
        s += rec(0x11, struct.pack("<IIIIII", 0, 0xffffffff, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69))
        s += rec(0x12, struct.pack("<IIQ", 0xce, 0, 0))
        if static_end:
            s += rec(0x10)
    s += rec(3, struct.pack("<II", 0, 63) + struct.pack("<Q", 40))  # p2m frame is pfn 40
    pages = [(p, 0, 0) for p in range(0, 64)]
    pages[3] = (3, 4 | 8, 0)  # pinned L4
    pages[4] = (4, 3, 0)
    pages[6] = (6, 2, 0)
    pages[7] = (7, 1, 0)
    pages[50] = (50, 0xd, 0)  # broken
    pages[51] = (51, 0xe, 0)  # xalloc
    s += page_data(pages[:32]) + page_data(pages[32:])
    s += page_data([(0x100000, 0, 0)])  # a lone pfn far away
    if live:
        s += page_data([(10, 0, 1), (11, 0, 1), (60, 0, 1)])  # dirtied: last wins
        s += page_data([(61, 0xf, 0), (62, 0, 2)])  # pfn 61 ballooned out: XTAB
        s += page_data([(10, 0, 2)])
        s += rec(0xd)  # VERIFY: the sender repeats all memory
        s += page_data([(p, t, g) for p, t, g in pages[:8]])
    s += extra
    s += rec(8, struct.pack("<IIQII", 1, 2000000, 123456789, 1, 0))
    s += rec(7, bytes(range(256)) * 16)
    for v in (0, 1):
        s += rec(4, struct.pack("<II", v, 0) + pv_ctx(v))
        s += rec(5, struct.pack("<II", v, 0) + (b"" if live else struct.pack("<Q", 0x1234)))
        s += rec(6, struct.pack("<II", v, 0) + struct.pack("<QQ", 7, 7) + b"\x5a" * 576)
        s += rec(0xc, struct.pack("<II", v, 0) + struct.pack("<IIQ", 0xc0000080, 0, 0xd01))
    return s + rec(0)


def libxc_hvm(version=3, checkpoint=False, zero_params=False):
    s = ihdr(version) + dhdr(2)
    if version >= 3:
        s += rec(0x11, struct.pack("<IIIIII", 0, 0xffffffff, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69))
        s += rec(0x12, struct.pack("<IIQ", 0xce, 0, 0))
        s += rec(0x10)
    s += page_data([(p, 0, 0) for p in range(0, 48)])
    s += page_data([(p, 0, 0) for p in range(0xfeff0, 0xfeff4)])
    ctx = rec(8, struct.pack("<IIQII", 0, 0, 0, 0, 0)) + rec(9, hvm_context(2))
    params = rec(0xa, struct.pack("<II", 0, 0)) if zero_params else \
        rec(0xa, struct.pack("<II", 2, 0) + struct.pack("<QQQQ", 2, 0xfeff0, 4, 0xfeff1))
    s += ctx + params
    if checkpoint:
        s += rec(0xe)  # CHECKPOINT: another round follows
        s += page_data([(1, 0, 3), (2, 0, 3)]) + ctx + params + rec(0xe)
    return s + rec(0)


def xl_header(config, mflags=None):
    cfg = json.dumps(config, indent=4).encode() + b"\0"
    opt = struct.pack("<I", len(cfg)) + cfg
    flags = 3 if mflags is None else mflags
    return b"Xen saved domain, xl format\n \0 \r" + struct.pack("<IIII", 0x01020304, flags, 0, len(opt)) + opt


def libxl(libxc, emu=(), ):
    s = struct.pack(">QII", 0x4c6962786c466d74, 2, 0)
    s += struct.pack("<II", 1, 0) + libxc
    for t, body in emu:
        s += struct.pack("<II", t, len(body)) + pad8(body)
    return s + struct.pack("<II", 0, 0)


def xc_core(hvm=False):
    nv, pfns = 2, [p for p in range(0, 24)] + [0x300 + p for p in range(8)]
    npages = len(pfns) + 2  # two ~0 padding entries at the end
    notes = b""

    def note(ntype, desc):
        return struct.pack("<III", 4, len(desc), ntype) + b"Xen\0" + pad8(desc)[:len(desc) + (-len(desc) % 4)]
    notes += note(0x2000000, b"")
    notes += note(0x2000001, struct.pack("<QQQQ", 0xF00FEBEE if hvm else 0xF00FEBED, nv, npages, 4096))
    ver = struct.pack("<QQ", 4, 17) + b".7".ljust(16, b"\0") + b"\0" * (1280 - 32 - 8) + struct.pack("<Q", 4096)
    notes += note(0x2000002, ver)
    notes += note(0x2000003, struct.pack("<Q", 1))
    prs = b"".join(pv_ctx(v) for v in range(nv))
    if hvm:
        prs = bytearray(prs)
        for v in range(nv):  # HVM: cr3 is guest-physical already
            pass
        prs = bytes(prs)
    shinfo = bytes(range(256)) * 16
    if hvm:
        mapping = b"".join(struct.pack("<Q", p) for p in pfns) + b"\xff" * 16
    else:
        mapping = b"".join(struct.pack("<QQ", p, 0x80000 + p) for p in pfns) + b"\xff" * 32
    pages = b"".join(page(p) for p in pfns) + b"\0" * 2 * PAGE
    names = [b"", b".shstrtab", b".note.Xen", b".xen_prstatus", b".xen_shared_info",
             b".xen_pfn" if hvm else b".xen_p2m", b".xen_pages"]
    strtab = b"\0".join(names) + b"\0"
    name_off = [0]
    for n in names[1:]:
        name_off.append(strtab.index(b"\0" + n + b"\0") + 1)
    bodies = [b"", strtab, notes, prs, shinfo, mapping, pages]
    types = [0, 3, 7, 1, 1, 1, 1]
    out = bytearray(64)
    offs = [0]
    for i, body in enumerate(bodies[1:], 1):
        align = 4096 if i == 6 else 8
        out += b"\0" * (-len(out) % align)
        offs.append(len(out))
        out += body
    out += b"\0" * (-len(out) % 8)
    shoff = len(out)
    for i, body in enumerate(bodies):
        out += struct.pack("<IIQQQQIIQQ", name_off[i], types[i], 0, 0, offs[i] if i else 0, len(body), 0, 0,
                           4096 if i == 6 else (8 if i else 0), 0)
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    eh += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(bodies), 1)
    out[0:64] = eh
    return bytes(out)


def pv_tables_mfn(pfn):
    """The source machine frame of each pfn of the page-table cases: unique, not the pfn."""
    return 0x8a000 + (63 - pfn) * 5


def libxc_pv_tables(variant=""):
    """A 64-pfn PV guest whose page tables (normalised: PTEs hold pfns) and p2m agree.

    L4 at pfn 3 (pinned): slot 0 and 511 -> L3 pfn 4, slot 273 -> L3 pfn 12,
    slot 260 a present entry in Xen's own slots (left alone by localisation);
    L3s -> L2 pfn 6 -> L1 pfn 7 -> pfns 16..31 (NX set on odd ones); pinned L1
    pfn 20 -> pfns 30..33; non-present entries keep junk frame bits.  The p2m
    frame is pfn 40; pfn 62 is ballooned out (XTAB, no p2m entry).
    variant: badpte (an L1 entry names pfn 0x50, outside the p2m), dupmfn (two
    pfns on one mfn), shortp2m (the p2m covers pfns 0..31 only), badcr3 (vCPU
    1's cr3 names the ballooned pfn).
    """
    def table(entries):
        b = bytearray(PAGE)
        for i, v in entries.items():
            struct.pack_into("<Q", b, i * 8, v)
        return bytes(b)
    tabs = {
        3: (4 | 8, table({0: 4 << 12 | 0x67, 511: 4 << 12 | 0x67, 273: 12 << 12 | 0x63, 260: 0x123456 << 12 | 0x63})),
        4: (3, table({0: 6 << 12 | 0x67, 510: 6 << 12 | 0x63, 7: 0x55555 << 12})),
        12: (3, table({0: 6 << 12 | 0x63})),
        6: (2, table({8: 7 << 12 | 0x63, 9: 0x55555 << 12, 10: 20 << 12 | 0x67})),
        7: (1, table(dict([(i, (16 + i) << 12 | 0x63 | (1 << 63 if i % 2 else 0)) for i in range(16)] +
                          [(100, 0x77777 << 12)] + ([(20, 0x50 << 12 | 0x63)] if variant == "badpte" else [])))),
        20: (1 | 8, table({i: (30 + i) << 12 | 0x67 for i in range(4)})),
    }
    p2m = [pv_tables_mfn(p) for p in range(64)]
    p2m[62] = (1 << 64) - 1
    if variant == "dupmfn":
        p2m[33] = p2m[34]
    p2m_page = b"".join(struct.pack("<Q", m) for m in p2m) + b"\xff" * (PAGE - 64 * 8)
    end = 31 if variant == "shortp2m" else 63
    s = ihdr(3) + dhdr(1)
    s += rec(2, struct.pack("<BBHI", 8, 4, 0, 0))
    s += rec(0x11, struct.pack("<IIIIII", 0, 0xffffffff, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69))
    s += rec(0x12, struct.pack("<IIQ", 0xce, 0, 0)) + rec(0x10)
    s += rec(3, struct.pack("<II", 0, end) + struct.pack("<Q", 40))
    entries, data = [], b""
    for p in range(64):
        t, d = tabs.get(p, (0, page(p)))
        if p == 40:
            d = p2m_page
        if p == 62:
            t, d = 0xf, b""
        entries.append(struct.pack("<Q", p | t << 60))
        data += d
    s += rec(1, struct.pack("<II", 64, 0) + b"".join(entries) + data)
    s += rec(8, struct.pack("<IIQII", 1, 2000000, 123456789, 1, 0))
    s += rec(7, bytes(range(256)) * 16)
    for v in (0, 1):
        c = bytearray(pv_ctx(v))
        if v == 0:
            struct.pack_into("<Q", c, 520 + 12 * 8, 10)  # rdx: the start_info pfn (suspend record)
        struct.pack_into("<Q", c, 4832, 9)  # gdt_frames[0]
        struct.pack_into("<Q", c, 4960, 16)  # gdt_ents
        struct.pack_into("<Q", c, 4984 + 8, 3 << 12 | 1)  # ctrlreg[1]: the user L4, marked
        if variant == "badcr3" and v == 1:
            struct.pack_into("<Q", c, 4984 + 24, 62 << 12)
        s += rec(4, struct.pack("<II", v, 0) + bytes(c))
    return s + rec(0)


def hostile(base_libxc):
    """(name, bytes) of broken streams; each must fail naming record and offset."""
    cases = []
    h = ihdr(3) + dhdr(1)
    pv_info = rec(2, struct.pack("<BBHI", 8, 4, 0, 0))
    cases.append(("huge-length", h + pv_info + struct.pack("<II", 7, (128 << 20) + 8)))
    cases.append(("count-zero", h + pv_info + rec(1, struct.pack("<II", 0, 0)) + rec(0)))
    cases.append(("pfn-reserved", h + pv_info + rec(1, struct.pack("<IIQ", 1, 0, 1 << 55) + page(0)) + rec(0)))
    cases.append(("pd-reserved", h + pv_info + rec(1, struct.pack("<IIQ", 1, 7, 1) + page(1)) + rec(0)))
    cases.append(("pd-short", h + pv_info + rec(1, struct.pack("<IIQ", 2, 0, 1)) + rec(0)))
    cases.append(("bad-type", h + pv_info + rec(1, struct.pack("<IIQ", 1, 0, 1 | 6 << 60)) + rec(0)))
    cases.append(("truncated", base_libxc[:len(base_libxc) - 4000]))
    bad_pad = bytearray(h + pv_info + rec(7, b"x" * 4095) + rec(0))
    bad_pad[len(h) + 16 + 8 + 4095] = 1
    cases.append(("bad-padding", bytes(bad_pad)))
    cases.append(("unknown-mandatory", h + pv_info + rec(0x77, b"") + rec(0)))
    cases.append(("trailing", base_libxc + b"junk\0\0\0\0"))
    cases.append(("hvm-in-pv", h + pv_info + rec(9, b"x" * 8) + rec(0)))
    cases.append(("tsc-reserved", h + pv_info + rec(8, struct.pack("<IIQII", 0, 0, 0, 0, 9)) + rec(0)))
    # in a v2 stream 0x11 is seed 002's POSTCOPY_PFNS_BEGIN (length 0), not a CPUID policy
    cases.append(("v2-cpuid-policy", ihdr(2) + dhdr(1) + pv_info + rec(0x11, bytes(24)) + rec(0)))
    return cases


def parse(path):
    """Non-page records in order and the final pages (last wins) of a Xen file."""
    b = open(path, "rb").read()
    recs, pages, off = [], {}, 0
    if b.startswith(b"Xen saved domain, xl format"):
        _, mflags, _, optlen = struct.unpack_from("<IIII", b, 32)
        recs.append(("xl", 0, b[:48 + optlen]))
        off = 48 + optlen
    layer = "libxc"
    if b[off:off + 8] == b"LibxlFmt":
        recs.append(("libxl-hdr", 0, b[off:off + 16]))
        off += 16
        layer = "libxl"
    in_libxc, seen_hdr, version = layer == "libxc", False, 0
    while off < len(b):
        if in_libxc and not seen_hdr:
            recs.append(("libxc-hdr", 0, b[off:off + 40]))
            version = struct.unpack_from(">I", b, off + 12)[0]
            off += 40
            seen_hdr = True
            continue
        t, n = struct.unpack_from("<II", b, off)
        body = b[off + 8:off + 8 + n]
        off += 8 + n + (-n % 8)
        if in_libxc and (t == 1 or (version == 2 and t == 0x14)):
            cnt = struct.unpack_from("<I", body)[0]
            d = 8 + 8 * cnt
            for i in range(cnt):
                e = struct.unpack_from("<Q", body, 8 + 8 * i)[0]
                typ = e >> 60
                if (typ & 7) <= 4 and typ < 0xd:
                    pages[e & ((1 << 52) - 1)] = (typ, body[d:d + 4096])
                    d += 4096
                else:
                    pages[e & ((1 << 52) - 1)] = (typ, None)
            if t == 1:
                continue
        recs.append(("libxc" if in_libxc else "libxl", t, body))
        if in_libxc and (t == 0 or (t == 0xe and layer == "libxl")):
            in_libxc = False
        elif not in_libxc and t == 1:
            in_libxc = True
        elif not in_libxc and t == 0:
            break
    return recs, pages, len(b) - off


def compare(a, b):
    ra, pa, ta = parse(a)
    rb, pb, tb = parse(b)
    # page data may be regrouped; the pfn -> (type, data) map must match, zero pages included
    za = {k: (t, d if d is None or d.strip(b"\0") else "zero") for k, (t, d) in pa.items()}
    zb = {k: (t, d if d is None or d.strip(b"\0") else "zero") for k, (t, d) in pb.items()}
    ok = True
    if ra != rb:
        ok = False
        for i, (x, y) in enumerate(zip(ra, rb)):
            if x != y:
                print("record %d differs: %s 0x%x (%d octets) vs %s 0x%x (%d octets)" %
                      (i, x[0], x[1], len(x[2]), y[0], y[1], len(y[2])))
                break
        if len(ra) != len(rb):
            print("%d records vs %d" % (len(ra), len(rb)))
    if za != zb:
        ok = False
        print("pages differ: %d vs %d pfns, first differing pfn %s" %
              (len(za), len(zb), min((k for k in set(za) | set(zb) if za.get(k) != zb.get(k)), default=None)))
    if ta or tb:
        ok = False
        print("trailing octets: %d / %d" % (ta, tb))
    print("%s: %d records and %d pages equal %s" % ("OK" if ok else "DIFFER", len(ra), len(za), b))
    return 0 if ok else 1


def main():
    if sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if sys.argv[1] == "xccore":
        out = sys.argv[2]
        os.makedirs(out, exist_ok=True)
        for v in ("", "badpte", "dupmfn", "shortp2m", "badcr3"):
            n = "pv-tables%s.libxc" % ("-" + v if v else "")
            with open(os.path.join(out, n), "wb") as f:
                f.write(libxc_pv_tables(v))
            print(n)
        return
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cfg_pv = {"c_info": {"type": "pv", "name": "gen-pv"}, "b_info": {"max_vcpus": 2, "max_memkb": 262144}}
    cfg_hvm = {"c_info": {"type": "hvm", "name": "gen-hvm"}, "b_info": {"max_vcpus": 2}}
    files = {
        "pv-v3.libxc": libxc_pv(),
        "pv-live-v2.libxc": libxc_pv(version=2, live=True),
        "pv-v3-nostaticend.libxc": libxc_pv(version=3, static_end=True),
        "hvm-v3.libxc": libxc_hvm(),
        "hvm-v2-zeroparams.libxc": libxc_hvm(version=2, zero_params=True),
        "hvm-checkpoint.libxc": libxc_hvm(checkpoint=True),
        "pv.xl": xl_header(cfg_pv) + libxl(libxc_pv()),
        "pv-live.xl": xl_header(cfg_pv) + libxl(libxc_pv(version=2, live=True)),
        "hvm.xl": xl_header(cfg_hvm) + libxl(libxc_hvm(), emu=[
            (2, struct.pack("<II", 2, 0)),
            (3, struct.pack("<II", 2, 0) + b"QEVM\0\0\0\3" + bytes(range(200)))]),
        "hvm-xsdata.xl": xl_header(cfg_hvm) + libxl(libxc_hvm(), emu=[
            (2, struct.pack("<II", 2, 0) + b"physmap/1/start_addr\0f0000000\0"),
            (3, struct.pack("<II", 2, 0) + b"QEVM" + bytes(64))]),
        "pv-bare.xl": xl_header(cfg_pv, mflags=1) + libxc_pv(),
        # seed 001: v4 with DOMAIN_CONTEXT 0x13 instead of SHARED_INFO/TSC_INFO
        "pv-v4-domctx.libxc": libxc_pv(version=4, extra=rec(0x13, b"DOMCTX" + bytes(58))),
        # seed 002: v2 with the post-copy records (0x10..0x16 in a v2 stream)
        "hvm-v2-postcopy.libxc": (lambda s: s[:-8] + rec(0x10) + rec(0x11) +
                                  rec(0x12, struct.pack("<IIQQ", 2, 0, 20, 21)) + rec(0x13) +
                                  rec(0x14, struct.pack("<IIQQ", 2, 0, 20, 21) + page(20, 9) + page(21, 9)) +
                                  rec(0x16) + rec(0))(libxc_hvm(version=2)),
        "pv.core": xc_core(),
        "hvm.core": xc_core(hvm=True),
    }
    # the v3 stream without STATIC_DATA_END is only legal as v2: make the real case
    files["pv-v2-nostaticend.libxc"] = libxc_pv(version=2)
    del files["pv-v3-nostaticend.libxc"]
    for n, b in sorted(files.items()):
        with open(os.path.join(out, n), "wb") as f:
            f.write(b)
        print(n)
    hd = os.path.join(out, "hostile")
    os.makedirs(hd, exist_ok=True)
    more = [("xl-optlen", files["pv.xl"][:44] + struct.pack("<I", 0x7fffffff) + files["pv.xl"][48:]),
            ("libxl-unknown", xl_header(cfg_pv) + struct.pack(">QII", 0x4c6962786c466d74, 2, 0) + rec(9)),
            ("libxl-no-end", files["pv.xl"][:-8]),
            ("core-prstatus", (lambda c: c.replace(struct.pack("<QQQQ", 0xF00FEBED, 2, 34, 4096),
                                                   struct.pack("<QQQQ", 0xF00FEBED, 3, 34, 4096)))(files["pv.core"])),
            ("core-pfn-order", (lambda c: c.replace(struct.pack("<QQ", 2, 0x80002), struct.pack("<QQ", 0x305, 0x80002)))(files["pv.core"]))]
    for n, b in hostile(files["pv-v3.libxc"]) + more:
        with open(os.path.join(hd, n + ".libxc"), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
