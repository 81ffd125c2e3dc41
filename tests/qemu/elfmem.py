#!/usr/bin/env python3
"""Compare the guest-physical memory of two ELF cores page by page.

usage: elfmem.py A B RANGES   RANGES: start-end[,start-end...] in hex (the
guest-physical ranges to compare, e.g. pc.ram's).  Each file's PT_LOADs
give paddr -> file offset (p_filesz short of p_memsz reads as zeros).
Prints "compared N pages, M differ" and the first differing pages; exit 1
if any page differs or a page of the ranges is in neither file's loads.
"""
import struct
import sys

PAGE = 4096


def loads(path):
    f = open(path, 'rb')
    eh = f.read(64)
    if eh[:4] != b'\x7fELF' or eh[4] != 2:
        sys.exit('%s: not an ELF64 file' % path)
    phoff, = struct.unpack_from('<Q', eh, 32)
    phentsize, phnum = struct.unpack_from('<HH', eh, 54)
    out = []
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        p_type, _, p_offset, _, p_paddr, p_filesz, p_memsz, _ = struct.unpack('<IIQQQQQQ', f.read(56))
        if p_type == 1:
            out.append((p_paddr, p_memsz, p_offset, p_filesz))
    return f, out


def page(fl, addr):
    f, ls = fl
    for paddr, memsz, off, filesz in ls:
        if paddr <= addr < paddr + memsz:
            rel = addr - paddr
            if rel >= filesz:
                return bytes(PAGE)
            f.seek(off + rel)
            d = f.read(min(PAGE, filesz - rel))
            return d + bytes(PAGE - len(d))
    return None


a, b = loads(sys.argv[1]), loads(sys.argv[2])
n = bad = 0
for r in sys.argv[3].split(','):
    lo, hi = (int(x, 16) for x in r.split('-'))
    for addr in range(lo, hi, PAGE):
        pa, pb = page(a, addr), page(b, addr)
        n += 1
        if pa is None or pb is None or pa != pb:
            bad += 1
            if bad <= 10:
                print('differs: 0x%x (%s)' % (addr, 'missing in ' + (sys.argv[1] if pa is None else sys.argv[2])
                                              if pa is None or pb is None else 'contents'))
print('compared %d pages, %d differ' % (n, bad))
sys.exit(1 if bad else 0)
