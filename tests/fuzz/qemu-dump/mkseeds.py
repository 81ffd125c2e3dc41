#!/usr/bin/env python3
"""Small dump-guest-memory files for the qemu-dump fuzz target's seeds.

Built by hand after QEMU's dump/dump.c and makedumpfile's diskdump_mod.h
(a real dump of the test guest is 64 MiB or 900 KiB; these hold the same
structure in a few KiB): an ELF core with NT_PRSTATUS, QEMU and VMCOREINFO
notes and PT_LOADs (one short of p_memsz, two aliasing one page as paging
true writes them; one with e_phnum PN_XNUM), and a kdump (16 pfns, 4 present: raw, zlib, the shared
zero page, zlib; a VMCOREINFO the sub header names), plain and flattened.
usage: mkseeds.py OUTDIR
"""
import struct
import sys
import zlib

out = sys.argv[1]
P = 4096


def note(name, typ, desc):
    n = name.encode() + b'\0'
    return struct.pack('<III', len(n), len(desc), typ) + n + bytes(-len(n) % 4) + desc + bytes(-len(desc) % 4)


def vcpu_notes():
    pr = bytearray(336)
    struct.pack_into('<I', pr, 32, 1)
    regs = list(range(1, 28))
    regs[16] = 0xffffffff80100140  # rip
    struct.pack_into('<27Q', pr, 112, *regs)
    q = bytearray(440)
    struct.pack_into('<II', q, 0, 1, 440)
    struct.pack_into('<18Q', q, 8, *range(100, 118))
    for i in range(10):  # cs ds es fs gs ss ldt tr gdt idt
        struct.pack_into('<IIIIQ', q, 152 + 24 * i, 8 * i, 0xffffffff, 0xa09b00, 0, 0x1000 * i)
    struct.pack_into('<6Q', q, 392, 0x80050033, 0, 0, 0x102000, 0x620, 0x1234)
    return note('CORE', 1, bytes(pr)) + note('QEMU', 0, bytes(q))


VMCI = b'OSRELEASE=6.1.0\nPAGESIZE=4096\n'


def elf(paging, xnum=False):
    notes = vcpu_notes() + note('VMCOREINFO', 0, VMCI)
    pages = bytes([0x11]) * P + bytes([0x22]) * 100 + bytes(P - 100) + bytes([0x33]) * P
    loads = [(0, 0, 2 * P), (0x100000, 2 * P, P)] if not paging else \
        [(0xffffffff80000000, 0, 2 * P), (0xffff000000000000, 0, 2 * P), (0x100000, 2 * P, P // 2)]
    phnum = 1 + len(loads)
    noff = 64 + 56 * phnum
    shoff = 64 + 56 * phnum  # PN_XNUM: section 0 after the program headers, its sh_info the count (QEMU's layout)
    eh = b'\x7fELF\x02\x01\x01' + bytes(9) + struct.pack('<HHIQQQIHHHHHH', 4, 62, 1, 0, 64, shoff if xnum else 0, 0, 64, 56,
                                                          0xffff if xnum else phnum, 64 if xnum else 0, 1 if xnum else 0, 0)
    if xnum:
        noff += 64
    doff = noff + len(notes)
    ph = struct.pack('<IIQQQQQQ', 4, 0, noff, 0, 0, len(notes), len(notes), 0)
    for i, (va, off, fs) in enumerate(loads):
        pa = 0 if va != 0x100000 else 0x100000
        ph += struct.pack('<IIQQQQQQ', 1, 0, doff + off, va, pa, fs, max(fs, P if i == 2 else fs), 0)
    return eh + ph + (struct.pack('<IIQQQQIIQQ', 0, 0, 0, 0, 0, 0, 0, phnum, 0, 0) if xnum else b'') + notes + pages


def kdump():
    notes = vcpu_notes()
    noff = P + 104
    vmoff = noff + len(notes) + 24
    notes += note('VMCOREINFO', 0, VMCI)
    h = bytearray(464)
    h[0:8] = b'KDUMP   '
    struct.pack_into('<I', h, 8, 6)
    h[12 + 4 * 65:12 + 4 * 65 + 6] = b'x86_64'
    struct.pack_into('<IIIII', h, 424, 1, P, 1, 2, 16)
    struct.pack_into('<I', h, 460, 1)
    sub = struct.pack('<QiiQQQQQQQQQQQ', 0, 1, 0, 0, 0, vmoff, len(VMCI), noff, len(notes), 0, 0, 0, 16, 16)
    bm = bytes([0b00100111, 0]) + bytes(P - 2)
    desc = 4 * P
    data = desc + 4 * 24
    z = zlib.compress(bytes([0x44]) * P)
    pd = [(data + P, P, 0), (data + P + P, len(z), 1), (data, P, 0), (data + P + P, len(z), 1)]
    body = bytes(P) + bytes([0x55]) * 64 + bytes(P - 64) + z
    f = bytearray(h) + bytes(P - len(h)) + sub + notes
    f += bytes(2 * P - len(f)) + bm + bm
    f += b''.join(struct.pack('<QIIQ', o, s, fl, 0) for o, s, fl in pd) + body
    return bytes(f)


def flatten(d):
    f = b'makedumpfile' + bytes(4) + struct.pack('>qq', 1, 1)
    f += bytes(P - len(f))
    for lo in range(0, len(d), 3000):
        c = d[lo:lo + 3000]
        if c.strip(b'\0'):
            f += struct.pack('>qq', lo, len(c)) + c
    return f + struct.pack('>qq', -1, -1)


open(out + '/elf.dump', 'wb').write(elf(False))
open(out + '/elf-paging.dump', 'wb').write(elf(True))
open(out + '/elf-pn-xnum.dump', 'wb').write(elf(False, True))
open(out + '/kdump.dump', 'wb').write(kdump())
open(out + '/kdump-flat.dump', 'wb').write(flatten(kdump()))
