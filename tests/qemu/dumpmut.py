#!/usr/bin/env python3
"""Variants of real dump-guest-memory files for tests/qemu/dumpmem.sh.

usage: dumpmut.py WHAT IN OUT [ARG]
WHAT (IN is QEMU's ELF dump for elf-*, a kdump not flattened for kd-*,
QEMU's flattened kdump for flat-*):
  elf-vmcoreinfo TEXT  a VMCOREINFO note added to the PT_NOTE (QEMU writes
                       one for a guest with the vmcoreinfo device); the
                       PT_LOADs' data moves down, their offsets with it
  elf-note-past-end    the QEMU note's description length runs past the notes
  elf-load-past-end    PT_LOAD 1's p_filesz (and p_memsz) twice the file
  elf-load-offset      PT_LOAD 1's data starts a page before the file's end
  kd-bitmap-blocks     bitmap_blocks 0x7ffffffe: the bitmaps past the file
  kd-max-mapnr         max_mapnr_64 past what the bitmap holds
  kd-note-size         the sub header's note_size 1 GiB
  kd-desc-offset       the first page_desc with data points at 1 TiB
  kd-desc-size         the first page_desc with data says 5000 octets
  kd-desc-array        the page_desc array cut: the file ends inside it
  kd-zlib-corrupt      the first zlib page's data damaged
  flat-chunk-len       the third chunk's length past the file's end
  flat-overlap         the second chunk moved onto the first
  flat-no-end          the end marker cut off
"""
import struct
import sys

what, src, dst = sys.argv[1:4]
d = bytearray(open(src, 'rb').read())


def phdrs():
    phoff, = struct.unpack_from('<Q', d, 32)
    phnum, = struct.unpack_from('<H', d, 56)
    return [(phoff + 56 * i,) + struct.unpack_from('<IIQQQQQQ', d, phoff + 56 * i) for i in range(phnum)]


def notes():
    for at, t, fl, off, va, pa, fs, ms, al in phdrs():
        if t == 4:
            return off, fs
    sys.exit('dumpmut: no PT_NOTE')


def kd():
    sub, bmb = struct.unpack_from('<II', d, 432)
    maxmap, = struct.unpack_from('<Q', d, 4096 + 96)
    bm = (1 + sub) * 4096
    blen = bmb // 2 * 4096
    n = sum(bin(x).count('1') for x in d[bm + blen:bm + blen + (maxmap + 7) // 8])
    return bm + 2 * blen, n


def first_data_desc(flag=None):
    desc, n = kd()
    for k in range(n):
        off, size, fl, pf = struct.unpack_from('<QIIQ', d, desc + 24 * k)
        if (flag is None and size and off != struct.unpack_from('<Q', d, desc)[0]) or (flag is not None and fl == flag):
            return desc + 24 * k
    sys.exit('dumpmut: no such page_desc')


def chunks():
    out, i = [], 4096
    while True:
        off, n = struct.unpack_from('>qq', d, i)
        if off == -1:
            return out, i
        out.append(i)
        i += 16 + n


if what == 'elf-vmcoreinfo':
    text = sys.argv[4].replace('\\n', '\n').encode()
    note = struct.pack('<III', 11, len(text), 0) + b'VMCOREINFO\0\0' + text + bytes(-len(text) % 4)
    noff, nsz = notes()
    for at, t, fl, off, va, pa, fs, ms, al in phdrs():
        if t == 4:
            struct.pack_into('<Q', d, at + 32, nsz + len(note))
        elif t == 1 and fs:
            struct.pack_into('<Q', d, at + 8, off + len(note))
    d[noff + nsz:noff + nsz] = note
elif what == 'elf-note-past-end':
    noff, nsz = notes()
    namesz, descsz = struct.unpack_from('<II', d, noff)
    q = noff + 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4  # the second note: QEMU's
    struct.pack_into('<I', d, q + 4, 0x10000000)
elif what in ('elf-load-past-end', 'elf-load-offset'):
    at = [p for p in phdrs() if p[1] == 1][0][0]
    if what == 'elf-load-past-end':
        struct.pack_into('<QQ', d, at + 32, 2 * len(d), 2 * len(d))
    else:
        struct.pack_into('<Q', d, at + 8, len(d) - 4096)
elif what == 'kd-bitmap-blocks':
    struct.pack_into('<I', d, 436, 0x7ffffffe)
elif what == 'kd-max-mapnr':
    struct.pack_into('<Q', d, 4096 + 96, 1 << 45)
elif what == 'kd-note-size':
    struct.pack_into('<Q', d, 4096 + 56, 1 << 30)
elif what == 'kd-desc-offset':
    struct.pack_into('<Q', d, first_data_desc(), 1 << 40)
elif what == 'kd-desc-size':
    struct.pack_into('<I', d, first_data_desc() + 8, 5000)
elif what == 'kd-desc-array':
    desc, n = kd()
    del d[desc + 24 * (n // 2):]
elif what == 'kd-zlib-corrupt':
    off, size = struct.unpack_from('<QI', d, first_data_desc(1))
    for k in range(2, min(size, 40)):
        d[off + k] ^= 0x5a
elif what == 'flat-chunk-len':
    c, _ = chunks()
    struct.pack_into('>q', d, c[2] + 8, len(d))
elif what == 'flat-overlap':
    c, _ = chunks()
    struct.pack_into('>q', d, c[1], struct.unpack_from('>q', d, c[0])[0] + 8)
elif what == 'flat-no-end':
    _, end = chunks()
    del d[end:]
else:
    sys.exit(__doc__)
open(dst, 'wb').write(d)
