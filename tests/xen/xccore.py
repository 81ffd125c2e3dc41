#!/usr/bin/env python3
"""Check `xsr export --format xc-core` files against the xsrelf image they came from.

An independent reading of both files (ELF section headers, the image's page
slots and index, the dump's .xen_pages in the order of its pfn map), and an
independent localisation (libxc's x86_pv_localise_page, to the P2M's mfns).

usage:
  xccore.py check-save IMAGE XC     IMAGE imported from a PV libxc stream: XC's
                                    .xen_p2m is IMAGE's P2M, every page is the
                                    image's (page tables localised), .xen_prstatus
                                    is the X86_PV_VCPU_BASIC records localised,
                                    .xen_shared_info the SHARED_INFO record
  xccore.py check-pages IMAGE XC    every page XC maps equals IMAGE's page
  xccore.py same-pages A B          two images hold the same pfns and pages
  xccore.py sections-equal A B NAME...  the named sections of two ELF files are equal
  xccore.py has-section FILE NAME   exit 0 if FILE has a section NAME (2: FILE unreadable)
  xccore.py lacks-section FILE NAME exit 0 if FILE, an ELF file, has no section NAME
  xccore.py cr3 XC N                ctrlreg[3] of .xen_prstatus entry N
  xccore.py p2m IMAGE PFN           the P2M's mfn of PFN
Each prints one line saying what it found; exit 0 if it holds, 1 if not.
"""
import struct
import sys

PAGE = 4096
FRAME = 0x000ffffffffff000
CTX = 5168
# vcpu_guest_context_x86_64 offsets (xen/foreign/x86_64.h)
RDX, GDT_FRAMES, GDT_ENTS, CTRLREG = 520 + 12 * 8, 4832, 4960, 4984


class Elf:
    def __init__(self, path):
        self.f = open(path, "rb")
        eh = self.f.read(64)
        shoff, = struct.unpack_from("<Q", eh, 0x28)
        shnum, shstrndx = struct.unpack_from("<HH", eh, 0x3c)
        self.f.seek(shoff)
        sh = [struct.unpack("<IIQQQQIIQQ", self.f.read(64)) for _ in range(shnum)]
        strtab = self.read(sh[shstrndx][4], sh[shstrndx][5])
        self.sec = [(strtab[s[0]:strtab.index(b"\0", s[0])].decode(), s[4], s[5]) for s in sh]

    def read(self, off, n):
        self.f.seek(off)
        b = self.f.read(n)
        return b + b"\0" * (n - len(b))

    def find(self, name):
        return [(o, n) for s, o, n in self.sec if s == name]

    def body(self, name):
        f = self.find(name)
        if not f:
            raise SystemExit("no section %s" % name)
        return self.read(*f[0])


class Image(Elf):
    """A seekable xsrelf image: runs, index, page slots, P2M, PASSTHRU items."""

    def __init__(self, path):
        super().__init__(path)
        mm = self.body(".xsr.memmap")
        self.runs, base = [], 0
        for i in range(0, len(mm), 16):
            pfn, count = struct.unpack_from("<QQ", mm, i)
            self.runs.append((pfn, count, base))
            base += count
        self.index = self.body(".xsr.index")
        self.pages_off = self.find(".xsr.pages")[0][0]

    def slot(self, pfn):
        for p, c, b in self.runs:
            if p <= pfn < p + c:
                return b + pfn - p
        return None

    def pfns(self):
        for p, c, _ in self.runs:
            yield from range(p, p + c)

    def xen_type(self, pfn):
        return struct.unpack_from("<I", self.index, self.slot(pfn) * 16 + 8)[0] >> 28

    def page(self, pfn):
        return self.read(self.pages_off + self.slot(pfn) * PAGE, PAGE)

    def p2m(self):
        b = self.body(".xsr.p2m")
        return [struct.unpack_from("<QQ", b, i) for i in range(0, len(b), 16)]

    def items(self):
        """(type, origin, body) of the PASSTHRU items."""
        out = []
        for o, n in self.find(".xsr.passthru"):
            b = self.read(o, n)
            t, ln, origin, flags, seq = struct.unpack_from("<IIHHI", b)
            out.append((t, origin, b[16:16 + ln]))
        return out


def xc_map(xc):
    """[(pfn or None, index in .xen_pages)] of a dump-core file."""
    if xc.find(".xen_p2m"):
        b = xc.body(".xen_p2m")
        pf = [struct.unpack_from("<Q", b, i)[0] for i in range(0, len(b), 16)]
    else:
        b = xc.body(".xen_pfn")
        pf = [struct.unpack_from("<Q", b, i)[0] for i in range(0, len(b), 8)]
    return [(None if p == (1 << 64) - 1 else p, i) for i, p in enumerate(pf)]


def localise(page, level, p2m):
    out = bytearray(page)
    for i in range(512):
        pte, = struct.unpack_from("<Q", out, i * 8)
        if not pte & 1 or (level == 4 and 256 <= i <= 271):
            continue
        struct.pack_into("<Q", out, i * 8, (pte & ~FRAME & (1 << 64) - 1) | p2m[(pte & FRAME) >> 12] << 12)
    return bytes(out)


def localise_ctx(ctx, vcpu, p2m):
    c = bytearray(ctx)
    get = lambda off: struct.unpack_from("<Q", c, off)[0]
    put = lambda off, v: struct.pack_into("<Q", c, off, v)
    if vcpu == 0:
        put(RDX, p2m[get(RDX)])
    for i in range((get(GDT_ENTS) + 511) // 512):
        put(GDT_FRAMES + 8 * i, p2m[get(GDT_FRAMES + 8 * i)])
    put(CTRLREG + 24, p2m[get(CTRLREG + 24) >> 12] << 12)
    if get(CTRLREG + 8) & 1:
        put(CTRLREG + 8, p2m[get(CTRLREG + 8) >> 12] << 12)
    return bytes(c)


def check_save(img_path, xc_path):
    img, xc = Image(img_path), Elf(xc_path)
    p2m_list = img.p2m()
    p2m = dict(p2m_list)
    bad = []
    if xc.body(".xen_p2m") != img.body(".xsr.p2m"):
        bad.append(".xen_p2m differs from the image's P2M")
    mp = xc_map(xc)
    if [p for p, _ in mp] != [p for p, _ in p2m_list]:
        bad.append("the dump's pfns are not the P2M's")
    pages_off = xc.find(".xen_pages")[0][0]
    ntab = nlocal = 0
    for pfn, i in mp:
        want = img.page(pfn)
        level = img.xen_type(pfn) & 7
        if 1 <= level <= 4:
            ntab += 1
            loc = localise(want, level, p2m)
            nlocal += loc != want
            want = loc
        if xc.read(pages_off + i * PAGE, PAGE) != want:
            bad.append("page of pfn 0x%x (Xen type 0x%x) differs" % (pfn, img.xen_type(pfn)))
            if len(bad) > 5:
                break
    basic = {}
    for t, origin, body in img.items():
        if origin == 5 and t == 4:
            basic[struct.unpack_from("<I", body)[0]] = body[8:]
    prs = xc.body(".xen_prstatus")
    want = b"".join(localise_ctx(basic[v], v, p2m) for v in sorted(basic))
    if prs != want:
        bad.append(".xen_prstatus is not the localised X86_PV_VCPU_BASIC records (%d vs %d octets)" % (len(prs), len(want)))
    shinfo = [body for t, origin, body in img.items() if origin == 5 and t == 7]
    if shinfo and xc.body(".xen_shared_info") != shinfo[-1]:
        bad.append(".xen_shared_info is not the SHARED_INFO record")
    notes = xc.body(".note.Xen")
    magic, nv, npages, psize = struct.unpack_from("<QQQQ", notes, 16 + 16)
    if (magic, nv, npages, psize) != (0xF00FEBED, len(basic), len(p2m_list), PAGE):
        bad.append("DUMPCORE_HEADER note says magic 0x%x, %d vCPUs, %d pages, page size %d" % (magic, nv, npages, psize))
    for b in bad:
        print("DIFFER: " + b)
    print("%s: %d pages (%d page tables, %d changed by localisation), %d vCPUs, P2M of %d entries"
          % ("OK" if not bad else "BAD", len(mp), ntab, nlocal, len(basic), len(p2m_list)))
    return 1 if bad or (ntab and not nlocal) else 0


def check_pages(img_path, xc_path):
    img, xc = Image(img_path), Elf(xc_path)
    pages_off = xc.find(".xen_pages")[0][0]
    n = 0
    for pfn, i in xc_map(xc):
        got = xc.read(pages_off + i * PAGE, PAGE)
        if pfn is None:
            if got.strip(b"\0"):
                print("DIFFER: padding page %d is not zero" % i)
                return 1
            continue
        if img.slot(pfn) is None or got != img.page(pfn):
            print("DIFFER: page of pfn 0x%x" % pfn)
            return 1
        n += 1
    print("OK: %d pages equal" % n)
    return 0


def same_pages(a_path, b_path):
    a, b = Image(a_path), Image(b_path)
    pa, pb = list(a.pfns()), list(b.pfns())
    if pa != pb:
        print("DIFFER: %d vs %d pfns" % (len(pa), len(pb)))
        return 1
    for p in pa:
        if a.page(p) != b.page(p):
            print("DIFFER: page of pfn 0x%x" % p)
            return 1
    print("OK: %d pages equal" % len(pa))
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check-save":
        sys.exit(check_save(*args))
    if cmd == "check-pages":
        sys.exit(check_pages(*args))
    if cmd == "same-pages":
        sys.exit(same_pages(*args))
    if cmd == "sections-equal":
        a, b = Elf(args[0]), Elf(args[1])
        bad = [n for n in args[2:] if a.body(n) != b.body(n)]
        print(("DIFFER: " + " ".join(bad)) if bad else "OK: %s equal" % " ".join(args[2:]))
        sys.exit(1 if bad else 0)
    if cmd in ("has-section", "lacks-section"):
        try:  # a file that cannot be read is neither: exit 2, so "! has-section" cannot pass on it
            found = bool(Elf(args[0]).find(args[1]))
        except (OSError, struct.error, IndexError, ValueError) as e:
            print("%s: %s" % (args[0], e), file=sys.stderr)
            sys.exit(2)
        sys.exit(0 if found == (cmd == "has-section") else 1)
    if cmd == "cr3":
        print("0x%x" % struct.unpack_from("<Q", Elf(args[0]).body(".xen_prstatus"), CTX * int(args[1]) + CTRLREG + 24)[0])
        return
    if cmd == "p2m":
        print("0x%x" % dict(Image(args[0]).p2m())[int(args[1], 0)])
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
