#!/usr/bin/env python3
"""An xsrelf reader written from docs/xsrelf-format.md alone.

It shares no code with libxsrelf: it reads the octets as the spec
describes them and checks every rule the spec gives a reader, so that
the C writer and reader cannot drift from the spec together unnoticed.
Hashes and decompression come from the reference libraries (libxxhash,
libzstd, liblz4) through ctypes.

  xsrelf_check.py FILE...            check; "FILE: ok ..." or the first
                                     violation ("FILE: where: what"), exit 1
  xsrelf_check.py --json FILE        the image as JSON: header, sections,
                                     memory map, a hash of every page's
                                     final content, vCPUs, config
  xsrelf_check.py --page PFN FILE    the 4096 octets of a page, raw
"""
import ctypes
import ctypes.util
import json
import mmap
import struct
import sys

SENT = 0xFFFFFFFFFFFFFFFF
PAGE = 4096
MAX_VCPUS, MAX_RUNS, MAX_SECTIONS = 4096, 65533, 65280
MAX_RECORD, MAX_BATCH, MAX_PAGES = 1 << 27, 1024, 1 << 36
MAX_PFN = 0x000FFFFFFFFFFFFF
PFN_ZERO, PFN_RESERVED = 1 << 52, 0x0FE0000000000000
NOTE_SIZE = 356
BOTH, SEEK, STREAM = "both", "seekable", "stream"

# code: (name, ELF section name, min length, max length, where) -- the
# "Record and section types" table.
TYPES = {
    0x00: ("END", None, 32, 32, STREAM),
    0x01: ("NOTES", ".note", 356, (356 + 460) * 4096 + 24 + 1048576 + 96, BOTH),
    0x02: ("MEMMAP", ".xsr.memmap", 0, 65533 * 16, BOTH),
    0x03: ("PRODUCER", ".xsr.producer", 240, 240, BOTH),
    0x04: ("CONFIG", ".xsr.config", 0, 1 << 24, BOTH),
    0x05: ("VCPU", ".xsr.vcpu", 1064, MAX_RECORD, BOTH),
    0x06: ("P2M", ".xsr.p2m", 0, MAX_RECORD, BOTH),
    0x07: ("PAGES", ".xsr.pages", 24, 16 + 1024 * 4104, BOTH),
    0x08: ("INDEX", ".xsr.index", 0, MAX_PAGES * 16, SEEK),
    0x09: ("DOMCTX", ".xsr.domctx", 0, MAX_RECORD, BOTH),
    0x0A: ("XENSTORE", ".xsr.xenstore", 0, MAX_RECORD, BOTH),
    0x0B: ("EMULATOR", ".xsr.emulator", 0, MAX_RECORD, BOTH),
    0x0C: ("PASSTHRU", ".xsr.passthru", 8, MAX_RECORD, BOTH),
    0x0D: ("STRTAB", ".shstrtab", 1, 1048576, SEEK),
    0x0E: ("INTEGRITY", ".xsr.integrity", 64, 64, SEEK),
    0x0F: ("VMCOREINFO", ".xsr.vmcoreinfo", 0, 1048576, BOTH),
    0x10: ("MIG-BEGIN", None, 32, 32, STREAM),
    0x11: ("MIG-ROUND", None, 32, 32, STREAM),
    0x12: ("POSTCOPY-BEGIN", None, 32, 32, STREAM),
    0x13: ("POSTCOPY-PFNS", None, 16, 8 + 1024 * 8, STREAM),
    0x14: ("POSTCOPY-TRANSITION", None, 0, 0, STREAM),
    0x15: ("XEN-P2M-TREE", ".xsr.xen-p2m-tree", 12352, MAX_RECORD, BOTH),
}


class Bad(Exception):
    pass


def _lib(name, soname):
    path = ctypes.util.find_library(name) or soname
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        sys.exit(f"xsrelf_check: cannot load {soname} ({e}); install libxxhash0, libzstd1, liblz4-1")


_xx = _lib("xxhash", "libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_xx.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xx.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
_zstd = _lib("zstd", "libzstd.so.1")
_zstd.ZSTD_decompress.restype = ctypes.c_size_t
_zstd.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
_zstd.ZSTD_isError.restype = ctypes.c_uint
_zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
_lz4 = _lib("lz4", "liblz4.so.1")
_lz4.LZ4_decompress_safe.restype = ctypes.c_int
_lz4.LZ4_decompress_safe.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]


def xxh3(b, seed=None):
    b = bytes(b)
    if seed is None:
        return _xx.XXH3_64bits(b, len(b))
    return _xx.XXH3_64bits_withSeed(b, len(b), seed)


def decompress(kind, src, want, where):
    dst = ctypes.create_string_buffer(want)
    src = bytes(src)
    if kind == 1:
        n = _zstd.ZSTD_decompress(dst, want, src, len(src))
        if _zstd.ZSTD_isError(n) or n != want:
            raise Bad(f"{where}: zstd frame does not decode to {want} octets")
    else:
        n = _lz4.LZ4_decompress_safe(src, dst, len(src), want)
        if n != want:
            raise Bad(f"{where}: lz4 block does not decode to {want} octets")
    return dst.raw


def align8(n):
    return (n + 7) & ~7


def cstr(b, where):
    if 0 not in b:
        raise Bad(f"{where}: string not NUL-terminated")
    s = bytes(b[: b.index(0)])
    if any(b[b.index(0):]):
        raise Bad(f"{where}: octets after the string's NUL are not zero")
    return s.decode("utf-8", "replace")


class Image:
    def __init__(self, data):
        self.d = data
        self.size = len(data)
        self.records = []  # (code, name, offset, size, info, trailer)
        self.pages = {}  # pfn -> bytes (non-zero final content)
        self.runs = []
        self.vcpus = {}
        self.config = None
        self.vmcoreinfo = None
        self.domctx = []
        self.notes = []

    def u(self, fmt, off):
        if off < 0 or off + struct.calcsize(fmt) > self.size:
            raise Bad(f"offset {off:#x}: {struct.calcsize(fmt)} octets past the end of the file ({self.size:#x})")
        return struct.unpack_from("<" + fmt, self.d, off)

    # --- ELF header and file header (both layouts)
    def header(self):
        if self.size < 128:
            raise Bad(f"file of {self.size} octets: shorter than the 128-octet header")
        d = self.d
        if d[0:4] != b"\x7fELF":
            raise Bad("offset 0x0: no ELF magic")
        if d[0x40:0x48] != b"XSRELF\0\0":
            raise Bad("offset 0x40: no XSRELF magic")
        if (d[4], d[5], d[6]) != (2, 1, 1):
            raise Bad("offset 0x4: ELF class/data/version not 64-bit little-endian version 1")
        hdr = bytearray(d[0:128])
        hdr[0x78:0x80] = b"\0" * 8
        (ck,) = self.u("Q", 0x78)
        if xxh3(hdr) != ck:
            raise Bad(f"offset 0x78: header checksum {ck:#x} != XXH3 of the header {xxh3(hdr):#x}")
        (self.vmaj, self.vmin, self.layout, self.kind, pg_sh, rsvd0, self.flags, self.nr_vcpus, sent,
         self.nr_pages, self.producer_version, rsvd1) = self.u("HHBBBBIIQQQQ", 0x48)
        if self.vmaj != 1:
            raise Bad(f"offset 0x48: format major {self.vmaj}, this reader knows 1")
        e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, \
            self.e_phnum, e_shentsize, self.e_shnum, self.e_shstrndx = self.u("HHIQQQIHHHHHH", 0x10)
        if d[7] != 0 or any(d[8:16]):
            raise Bad("offset 0x7: EI_OSABI and e_ident[8..15] must be 0")
        if (e_type, e_machine, e_version, e_entry, e_flags) != (4, 62, 1, 0, 0):
            raise Bad("offset 0x10: not an x86-64 ET_CORE of ELF version 1 with e_entry = e_flags = 0")
        if (e_ehsize, e_phentsize, e_shentsize) != (64, 56, 64):
            raise Bad("offset 0x34: e_ehsize/e_phentsize/e_shentsize not 64/56/64")
        if self.layout not in (1, 2):
            raise Bad(f"offset 0x4c: layout {self.layout}")
        if self.kind not in (1, 2, 3):
            raise Bad(f"offset 0x4d: kind {self.kind}")
        if pg_sh != 12 or rsvd0 or rsvd1 or sent != SENT:
            raise Bad("offset 0x4e: page_shift not 12, a reserved field not 0, or sentinel wrong")
        if self.flags & ~0x3 or self.flags == 0x3:
            raise Bad(f"offset 0x50: flags {self.flags:#x}")
        if not 1 <= self.nr_vcpus <= MAX_VCPUS:
            raise Bad(f"offset 0x54: nr_vcpus {self.nr_vcpus}")
        if self.nr_pages > MAX_PAGES:
            raise Bad(f"offset 0x60: nr_pages {self.nr_pages} > 2^36")
        if self.layout == 2:
            if (e_phoff, e_shoff) != (SENT, SENT) or self.e_phnum or self.e_shnum or self.e_shstrndx:
                raise Bad("offset 0x20: a stream's e_phoff/e_shoff must be the sentinel, its counts 0")
            if self.flags:
                raise Bad("offset 0x50: a stream has no flags")
        else:
            if e_phoff != 128 or e_shoff == SENT:
                raise Bad(f"offset 0x20: e_phoff {e_phoff:#x} (must be 0x80), e_shoff {e_shoff:#x}")
            self.e_shoff = e_shoff

    def check_runs(self, body, where):
        if len(body) % 16:
            raise Bad(f"{where}: MEMMAP length {len(body)} not a multiple of 16")
        runs, total, end = [], 0, 0
        for i in range(len(body) // 16):
            pfn, count = struct.unpack_from("<QQ", body, 16 * i)
            if count == 0 or pfn > MAX_PFN or pfn + count - 1 > MAX_PFN:
                raise Bad(f"{where}: run {i} (pfn {pfn:#x}, {count} pages) empty or past the largest pfn")
            if i and pfn < end:
                raise Bad(f"{where}: run {i} (pfn {pfn:#x}) overlaps or is out of order")
            end = pfn + count
            total += count
            runs.append((pfn, count))
        if len(runs) > MAX_RUNS:
            raise Bad(f"{where}: {len(runs)} runs > {MAX_RUNS}")
        if total != self.nr_pages:
            raise Bad(f"{where}: runs hold {total} pages, the header says {self.nr_pages}")
        self.runs = runs

    def slot(self, pfn):
        base = 0
        for rp, rc in self.runs:
            if rp <= pfn < rp + rc:
                return base + pfn - rp
            base += rc
        return None

    def decode_type(self, t, where):
        if t == 7:
            return 0x01, False
        if t == 3 and self.layout == 1:
            return 0x0D, False
        if not t & 0x80000000 or t & 0x3FFF0000:
            raise Bad(f"{where}: sh_type {t:#x} is not an xsrelf record")
        return t & 0xFFFF, bool(t & 0x40000000)

    def allowed(self, code, opt, t, other, where):
        """A type of the other layout only (@other), or an unknown mandatory one, is refused."""
        if code in TYPES and TYPES[code][4] == other:
            raise Bad(f"{where}: {other}-only type {TYPES[code][0]} in a{'' if other == SEEK else ' seekable'} "
                      f"{'stream' if other == SEEK else 'image'}")
        if code not in TYPES and not opt:
            raise Bad(f"{where}: unknown mandatory type {code} ({t:#x})")

    def check_len(self, code, size, where):
        if code in TYPES:
            name, _, lo, hi, _ = TYPES[code]
            if not lo <= size <= hi:
                raise Bad(f"{where}: {name} body of {size} octets outside {lo}..{hi}")
        elif size > MAX_RECORD:
            raise Bad(f"{where}: unknown optional record of {size} octets > {MAX_RECORD}")

    def record(self, start, code_want=None):
        """Check the record at @start; returns (hdr fields, body, end, trailer)."""
        where = f"record at {start:#x}"
        name, t, flags, addr, off, size, link, info, align, entsize = self.u("IIQQQQIIQQ", start)
        code, opt = self.decode_type(t, where)
        where = f"{TYPES.get(code, ('type %d' % code,))[0]} record at {start:#x}"
        if flags or addr or link or name:
            raise Bad(f"{where}: sh_name/sh_flags/sh_addr/sh_link not 0 in the record header")
        self.check_len(code, size, where)
        if align != (4 if code == 1 else 8):
            raise Bad(f"{where}: sh_addralign {align}")
        if code in (2, 8) and entsize != 16:
            raise Bad(f"{where}: sh_entsize {entsize}, must be 16")
        body_end = start + 64 + size
        end = start + 64 + align8(size) + 8
        if end > self.size:
            raise Bad(f"{where}: record of {size} octets runs past the end of the file")
        if any(self.d[body_end:end - 8]):
            raise Bad(f"{where}: padding not zero")
        (trailer,) = self.u("Q", end - 8)
        if xxh3(self.d[start:end - 8]) != trailer:
            raise Bad(f"{where}: checksum mismatch")
        return (code, opt, off, size, info, entsize), self.d[start + 64:body_end], end, trailer

    # --- bodies
    def body(self, code, body, info, where):
        if code == 3:
            fmaj, fmin, r0, pv = struct.unpack_from("<HHIQ", body, 0)
            if (fmaj, fmin) != (self.vmaj, self.vmin) or r0 or pv != self.producer_version:
                raise Bad(f"{where}: PRODUCER does not repeat the header's versions")
            self.producer = [cstr(body[o:o + n], f"{where} +{o:#x}") for o, n in
                             ((0x10, 32), (0x30, 32), (0x50, 32), (0x70, 64), (0xB0, 64))]
        elif code == 5:
            self.vcpu(body, info, where)
        elif code == 4:
            self.config = bytes(body).decode("utf-8", "replace")
        elif code == 0x0F:
            self.vmcoreinfo = bytes(body).decode("utf-8", "replace")
        elif code == 9:
            o = 0
            while o < len(body):
                if len(body) - o < 16:
                    raise Bad(f"{where} +{o:#x}: DOMCTX descriptor cut short")
                tc, fl, vid, ln = struct.unpack_from("<HHIQ", body, o)
                if fl & ~1 or ln > len(body) - o - 16 or align8(ln) > len(body) - o - 16:
                    raise Bad(f"{where} +{o:#x}: DOMCTX descriptor flags {fl:#x} or length {ln} bad")
                if any(body[o + 16 + ln:o + 16 + align8(ln)]):
                    raise Bad(f"{where} +{o:#x}: DOMCTX padding not zero")
                self.domctx.append({"type": tc, "flags": fl, "vcpu": vid, "length": ln,
                                    "xxh3": "%016x" % xxh3(body[o + 16:o + 16 + ln])})
                o += 16 + align8(ln)
        elif code == 1:
            self.notes_body(body, where)

    def vcpu(self, b, info, where):
        vid, valid = struct.unpack_from("<II", b, 0)
        xsave_len, nr_msrs, lapic_len = struct.unpack_from("<III", b, 444)
        if vid != info or vid >= self.nr_vcpus:
            raise Bad(f"{where}: vcpu_id {vid}, sh_info {info}, nr_vcpus {self.nr_vcpus}")
        if valid & ~0x7F or any(b[1032:1064]):
            raise Bad(f"{where}: unknown valid bits {valid:#x} or reserved not zero")
        if xsave_len > 16384 or nr_msrs > 1024 or lapic_len not in (0, 1024):
            raise Bad(f"{where}: xsave_len {xsave_len}, nr_msrs {nr_msrs}, lapic_len {lapic_len}")
        want = 1064 + align8(xsave_len) + 16 * nr_msrs + align8(lapic_len)
        if len(b) != want:
            raise Bad(f"{where}: length {len(b)}, the blobs make {want}")
        if any(b[1064 + xsave_len:1064 + align8(xsave_len)]):
            raise Bad(f"{where}: XSAVE padding not zero")
        if vid in self.vcpus:
            raise Bad(f"{where}: a second VCPU for vCPU {vid}")
        gpr = struct.unpack_from("<16Q", b, 8)
        msrs = {}
        mo = 1064 + align8(xsave_len)
        for i in range(nr_msrs):
            idx, r, val = struct.unpack_from("<IIQ", b, mo + 16 * i)
            if r:
                raise Bad(f"{where}: MSR {i} reserved not zero")
            msrs["%#x" % idx] = "%#x" % val
        rip, rflags = struct.unpack_from("<QQ", b, 136)
        cr = struct.unpack_from("<6Q", b, 312)
        self.vcpus[vid] = {
            "valid": valid, "rax": "%#x" % gpr[0], "rsp": "%#x" % gpr[6], "rip": "%#x" % rip,
            "rflags": "%#x" % rflags, "cr0": "%#x" % cr[0], "cr3": "%#x" % cr[2], "cr4": "%#x" % cr[3],
            "efer": "%#x" % cr[5], "cs_selector": struct.unpack_from("<H", b, 152 + 12)[0],
            "xsave_len": xsave_len, "xsave_xxh3": "%016x" % xxh3(b[1064:1064 + xsave_len]),
            "msrs": msrs, "lapic_len": lapic_len,
        }

    def notes_body(self, b, where):
        o = 0
        for v in range(self.nr_vcpus):
            nz, dz, nt = struct.unpack_from("<III", b, o) if len(b) - o >= 12 else (0, 0, 0)
            if (nz, dz, nt) != (5, 336, 1) or bytes(b[o + 12:o + 20]) != b"CORE\0\0\0\0":
                raise Bad(f"{where} +{o:#x}: NT_PRSTATUS note {v} header wrong")
            (pid,) = struct.unpack_from("<I", b, o + 20 + 32)
            if pid != v + 1:
                raise Bad(f"{where} +{o:#x}: pr_pid {pid}, must be vCPU id + 1 = {v + 1}")
            rip = struct.unpack_from("<Q", b, o + 20 + 112 + 16 * 8)[0]
            self.notes.append({"type": "NT_PRSTATUS", "pid": pid, "rip": "%#x" % rip})
            o += NOTE_SIZE
        while o < len(b):
            nz, dz, nt = struct.unpack_from("<III", b, o)
            name = bytes(b[o + 12:o + 12 + nz])
            n = 12 + ((nz + 3) & ~3) + ((dz + 3) & ~3)
            if o + n > len(b):
                raise Bad(f"{where} +{o:#x}: note runs past the section")
            if name == b"VMCOREINFO\0" and nt == 0:
                self.notes.append({"type": "VMCOREINFO", "length": dz})
            elif self.flags & 2 and name in (b"QEMU\0", b"Xen\0"):
                self.notes.append({"type": name[:-1].decode(), "length": dz})
            else:
                raise Bad(f"{where} +{o:#x}: unexpected note {name!r} type {nt}")
            o += n

    # --- seekable
    def seekable(self):
        d, nr = self.d, self.nr_pages
        shnum, shoff = self.e_shnum, self.e_shoff
        if not 8 <= shnum <= MAX_SECTIONS or shoff % 8 or shoff + 64 * shnum != self.size:
            raise Bad(f"offset 0x28: section table ({shnum} at {shoff:#x}) must be 8..65280 entries ending the file")
        if not 0 < self.e_shstrndx < shnum:
            raise Bad(f"offset 0x3e: e_shstrndx {self.e_shstrndx}")
        if not 1 <= self.e_phnum < 0xFFFF or 128 + 56 * self.e_phnum > self.size:
            raise Bad(f"offset 0x38: e_phnum {self.e_phnum}")
        if any(d[shoff:shoff + 64]):
            raise Bad(f"section 0 at {shoff:#x}: not all zero")
        regions = [(0, 128, "header"), (128, 128 + 56 * self.e_phnum, "program headers"),
                   (shoff, self.size, "section headers")]
        secs, chain, nrec = [], 0, 0
        for i in range(1, shnum):
            so = shoff + 64 * i
            name, t, flags, addr, off, size, link, info, align, entsize = self.u("IIQQQQIIQQ", so)
            where = f"section {i} (shdr at {so:#x})"
            code, opt = self.decode_type(t, where)
            if flags or addr or link:
                raise Bad(f"{where}: sh_flags/sh_addr/sh_link not 0")
            self.allowed(code, opt, t, STREAM, where)
            if code == 7:
                if t != 0x80000007 or align != 4096 or entsize != 4096 or off % 4096 or size != nr * PAGE \
                        or off > self.size or size > self.size - off:
                    raise Bad(f"{where}: .xsr.pages must be 4096-aligned and hold nr_pages slots in the file")
                regions.append((off, off + size, ".xsr.pages"))
                self.pages_off = off
                secs.append((i, code, name, off, size, info, entsize, None))
                continue
            if off < 128 + 64 or off == SENT:
                raise Bad(f"{where}: sh_offset {off:#x}")
            hdr, body, end, trailer = self.record(off - 64)
            if hdr != (code, opt, off, size, info, entsize) or self.u("I", off - 60)[0] != t:
                raise Bad(f"{where}: the record header at {off - 64:#x} differs from its section header")
            if code == 8 and size != 16 * nr:
                raise Bad(f"{where}: INDEX of {size} octets for {nr} pages")
            regions.append((off - 64, end, TYPES.get(code, ("unknown",))[0]))
            secs.append((i, code, name, off, size, info, entsize, trailer))
            if code != 0x0E:
                chain = xxh3(struct.pack("<Q", trailer), chain)
                nrec += 1
        codes = [s[1] for s in secs]
        for c in (1, 3, 2, 8, 7, 0x0D, 0x0E):
            if codes.count(c) != 1:
                raise Bad(f"section table: {codes.count(c)} {TYPES[c][0]} sections, must be exactly 1")
        if codes[:5] != [1, 3, 2, 8, 7] or codes[-2:] != [0x0D, 0x0E]:
            raise Bad("section table: order must be .note .xsr.producer .xsr.memmap .xsr.index .xsr.pages ... .shstrtab .xsr.integrity")
        if secs[self.e_shstrndx - 1][1] != 0x0D:
            raise Bad("e_shstrndx does not name the STRTAB")
        by = {s[1]: s for s in secs}
        st = by[0x0D]
        strtab = d[st[3]:st[3] + st[4]]
        if strtab[0] != 0 or strtab[-1] != 0:
            raise Bad(f".shstrtab at {st[3]:#x}: must start and end with NUL")
        for (i, code, name, off, size, info, entsize, _) in secs:
            want = TYPES[code][1] if code in TYPES else ".xsr.unknown"
            if name >= len(strtab) or cstr(strtab[name:name + strtab[name:].index(0) + 1], "name") != want:
                raise Bad(f"section {i}: sh_name {name} does not name {want}")
        self.secnames = [TYPES[c][1] if c in TYPES else ".xsr.unknown" for c in codes]
        mm = by[2]
        self.check_runs(d[mm[3]:mm[3] + mm[4]], f".xsr.memmap at {mm[3]:#x}")
        for (i, code, name, off, size, info, entsize, trailer) in secs:
            if code != 7:
                self.body(code, d[off:off + size], info, f"{self.secnames[i - 1]} at {off:#x}")
                self.records.append({"name": self.secnames[i - 1], "code": code, "offset": off, "size": size,
                                     "info": info, "trailer": "%016x" % trailer})
            else:
                self.records.append({"name": ".xsr.pages", "code": 7, "offset": off, "size": size})
        self.phdrs(by[1])
        ix = by[8][3]
        for s in range(nr):
            h, fl, r = struct.unpack_from("<QII", d, ix + 16 * s)
            page = d[self.pages_off + PAGE * s:self.pages_off + PAGE * (s + 1)]
            where = f".xsr.index entry {s} at {ix + 16 * s:#x}"
            if fl & ~0xF0000001 or r:
                raise Bad(f"{where}: flags {fl:#x} or reserved not zero")
            if fl & 1:
                if xxh3(page) != h:
                    raise Bad(f"{where}: page slot {s} does not hash to {h:#x}")
            elif h or any(page):
                raise Bad(f"{where}: slot {s} without DATA is not zero (or hash not 0)")
        for s, pfn in enumerate(p for rp, rc in self.runs for p in range(rp, rp + rc)):
            page = d[self.pages_off + PAGE * s:self.pages_off + PAGE * (s + 1)]
            if any(page):
                self.pages[pfn] = bytes(page)
        regions.sort()
        for (a0, a1, an), (b0, b1, bn) in zip(regions, regions[1:]):
            if b0 < a1:
                raise Bad(f"{an} ({a0:#x}..{a1:#x}) overlaps {bn} at {b0:#x}")
            if any(d[a1:b0]):
                raise Bad(f"gap {a1:#x}..{b0:#x} after {an} is not zero")
        io = by[0x0E][3]
        alg, r0, ph, sh, ch, nrr, fsz, r1, r2 = self.u("IIQQQQQQQ", io)
        if alg != 1 or r0 or r1 or r2:
            raise Bad(f".xsr.integrity at {io:#x}: algorithm {alg} or reserved not zero")
        if ph != xxh3(d[128:128 + 56 * self.e_phnum]):
            raise Bad(f".xsr.integrity at {io:#x}: phdr_hash mismatch")
        if sh != xxh3(d[shoff:self.size]):
            raise Bad(f".xsr.integrity at {io:#x}: shdr_hash mismatch")
        if ch != chain or nrr != nrec or fsz != self.size:
            raise Bad(f".xsr.integrity at {io:#x}: chain/nr_records/file_size do not match")
        if set(self.vcpus) != set(range(self.nr_vcpus)):
            raise Bad(f"VCPU sections for vCPUs {sorted(self.vcpus)}, nr_vcpus {self.nr_vcpus}")

    def phdrs(self, note):
        ph = [self.u("IIQQQQQQ", 128 + 56 * i) for i in range(self.e_phnum)]
        t, fl, off, va, pa, fsz, msz, al = ph[0]
        if (t, fl, va, pa, msz, al) != (4, 0, 0, 0, 0, 4) or off != note[3] \
                or fsz not in (NOTE_SIZE * self.nr_vcpus, note[4]):
            raise Bad("program header 0: not the PT_NOTE over .note")
        self.loads = []
        # p_align 4096, or 0 when VMCOREINFO has a KERNELOFFSET line (crash's kdump class)
        kaslr = self.vmcoreinfo is not None and any(
            l.startswith("KERNELOFFSET=") for l in self.vmcoreinfo.split("\n"))
        want_al = 0 if kaslr else 4096
        base = [0]
        for rp, rc in self.runs:
            base.append(base[-1] + rc)
        for i, (t, fl, off, va, pa, fsz, msz, al) in enumerate(ph[1:], 1):
            where = f"program header {i} at {128 + 56 * i:#x}"
            if t != 1 or fsz != msz or fsz % PAGE or off % PAGE:
                raise Bad(f"{where}: not a page-aligned PT_LOAD with p_filesz = p_memsz")
            self.loads.append((va, pa, fsz))
            if self.flags == 0:
                if i > len(self.runs):
                    raise Bad(f"{where}: more PT_LOADs than runs")
                rp, rc = self.runs[i - 1]
                if (va, pa, fsz, fl, al, off) != (rp * PAGE, rp * PAGE, rc * PAGE, 7, want_al,
                                                  self.pages_off + PAGE * base[i - 1]):
                    raise Bad(f"{where}: does not cover run {i - 1} exactly")
            else:
                gp = pa if self.flags & 1 else va  # paging view: p_paddr; Xen machine layout: p_vaddr
                s = self.slot(gp // PAGE)
                if s is None and self.flags & 2 and i == len(ph) - 1:
                    continue  # the XEN-P2M-TREE's pages
                if s is None or self.slot(gp // PAGE + fsz // PAGE - 1) != s + fsz // PAGE - 1 \
                        or off != self.pages_off + PAGE * s:
                    raise Bad(f"{where}: not inside one run at its slot")
        if self.flags == 0 and len(ph) - 1 != len(self.runs):
            raise Bad(f"{len(ph) - 1} PT_LOADs for {len(self.runs)} runs")

    # --- stream
    def stream(self):
        off, chain, nrec, seen_memmap, ended = 128, 0, 0, False, False
        while off < self.size:
            if ended:
                raise Bad(f"offset {off:#x}: data after END")
            (code, opt, sho, size, info, entsize), body, end, trailer = self.record(off)
            name = TYPES[code][0] if code in TYPES else f"type {code}"
            where = f"{name} record at {off:#x}"
            if sho != SENT:
                raise Bad(f"{where}: sh_offset not the sentinel")
            self.allowed(code, opt, self.u("I", off + 4)[0], SEEK, where)
            if code == 0:
                n, ch, r0, r1 = struct.unpack_from("<QQQQ", body, 0)
                if r0 or r1 or n != nrec or ch != chain:
                    raise Bad(f"{where}: END says {n} records, chain {ch:#x}; counted {nrec}, {chain:#x}")
                ended = True
            else:
                chain = xxh3(struct.pack("<Q", trailer), chain)
                nrec += 1
                self.records.append({"name": name, "code": code, "size": size, "info": info,
                                     "trailer": "%016x" % trailer})
            if code == 2:
                if seen_memmap:
                    raise Bad(f"{where}: a second MEMMAP")
                self.check_runs(body, where)
                seen_memmap = True
            elif code in (5, 7) and not seen_memmap:
                raise Bad(f"{where}: before MEMMAP")
            if code == 7:
                self.records[-1].update(self.batch(body, where))
            elif code:
                self.body(code, body, info, where)
            off = end
        if not ended:
            raise Bad(f"offset {off:#x}: stream ends without END (truncated)")
        if set(self.vcpus) != set(range(self.nr_vcpus)):
            raise Bad(f"VCPU records for vCPUs {sorted(self.vcpus)}, nr_vcpus {self.nr_vcpus}")

    def batch(self, b, where):
        count, comp, r0, r1, dlen = struct.unpack_from("<IBBHQ", b, 0)
        if not 1 <= count <= MAX_BATCH or comp > 2 or r0 or r1:
            raise Bad(f"{where}: count {count}, compress {comp} or reserved bad")
        if len(b) != 16 + 8 * count + dlen:
            raise Bad(f"{where}: length {len(b)} != 16 + 8 x {count} + data_len {dlen}")
        pfns = struct.unpack_from(f"<{count}Q", b, 16)
        data = b[16 + 8 * count:]
        nd = sum(1 for p in pfns if not p & PFN_ZERO)
        if comp == 0:
            if dlen != PAGE * nd:
                raise Bad(f"{where}: data_len {dlen} for {nd} data pages")
        elif nd == 0:
            raise Bad(f"{where}: a batch without data pages is compressed")
        else:
            data = decompress(comp, data, PAGE * nd, where)
        k = 0
        for i, e in enumerate(pfns):
            if e & PFN_RESERVED or self.slot(e & MAX_PFN) is None:
                raise Bad(f"{where}: pfn entry {i} ({e:#x}) reserved bits set or outside every run")
            pfn = e & MAX_PFN
            if e & PFN_ZERO:
                self.pages.pop(pfn, None)
            else:
                page = bytes(data[PAGE * k:PAGE * (k + 1)])
                k += 1
                if any(page):
                    self.pages[pfn] = page
                else:
                    self.pages.pop(pfn, None)
        return {"count": count, "compress": comp, "data_len": dlen}

    def check(self):
        self.header()
        self.seekable() if self.layout == 1 else self.stream()

    def summary(self):
        return {
            "layout": {1: "seekable", 2: "stream"}[self.layout],
            "kind": self.kind, "format": f"{self.vmaj}.{self.vmin}", "flags": self.flags,
            "nr_vcpus": self.nr_vcpus, "nr_pages": self.nr_pages,
            "producer_version": "%#x" % self.producer_version, "producer": self.producer,
            "runs": [["%#x" % p, c] for p, c in self.runs],
            "records": self.records,
            "pages": {"%#x" % p: "%016x" % xxh3(v) for p, v in sorted(self.pages.items())},
            "vcpus": {str(k): v for k, v in sorted(self.vcpus.items())},
            "config": self.config, "vmcoreinfo": self.vmcoreinfo, "domctx": self.domctx,
            "notes": self.notes,
        }


def load(path):
    f = open(path, "rb")
    try:
        return f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:  # empty file
        return f, b""


def main(argv):
    mode, page = "check", None
    args = argv[1:]
    if args[:1] == ["--json"]:
        mode, args = "json", args[1:]
    elif args[:1] == ["--page"] and len(args) >= 2:
        mode, page, args = "page", int(args[1], 0), args[2:]
    if not args or args[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rc = 0
    for path in args:
        f, data = load(path)
        img = Image(data)
        try:
            img.check()
        except (Bad, struct.error) as e:
            print(f"{path}: {e}")
            rc = 1
            continue
        finally:
            pass
        if mode == "json":
            json.dump(img.summary(), sys.stdout, indent=1, sort_keys=True)
            print()
        elif mode == "page":
            if img.slot(page) is None:
                print(f"{path}: pfn {page:#x} is not in the memory map", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(img.pages.get(page, bytes(PAGE)))
        else:
            print(f"{path}: ok ({'seekable' if img.layout == 1 else 'stream'}, {img.nr_pages} pages, "
                  f"{len(img.pages)} with data, {len(img.records)} records)")
        f.close()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
