#!/usr/bin/env python3
"""The shape of a QEMU migration stream's `ram` sections, for tests/qemu/export.sh.

usage: ramsecs.py STREAM
Walks the header, CONFIGURATION and the ram START/PART/END sections (QEMU
migration/ram.c entries: ZERO 0x02 + fill octet, PAGE 0x08 + 4096 octets,
CONTINUE 0x20, EOS 0x10; MEM_SIZE 0x04 + block list) up to the first
device section and prints one line:
  parts=N entries=M resent=R start_end=OFF devices=OFF
(start_end: the end of the START section, footer included; devices: the
first SECTION_FULL).  Exit 1 on anything it does not know.
"""
import struct
import sys

d = open(sys.argv[1], 'rb').read()
assert d[:4] == b'QEVM' and struct.unpack_from('>I', d, 4)[0] == 3
o = 8
if d[o] == 7:  # CONFIGURATION: name, subsections (name, version, body sizes known to the import)
    n, = struct.unpack_from('>I', d, o + 1)
    o += 5 + n
    bodies = {b'configuration/target-page-bits': 4, b'configuration/uuid': 16}
    while d[o] == 5:
        nl = d[o + 1]
        name = d[o + 2:o + 2 + nl]
        o += 2 + nl + 4
        if name not in bodies:
            sys.exit('unknown CONFIGURATION subsection %r' % name)
        o += bodies[name]
parts = entries = 0
seen = set()
resent = 0
start_end = None
blocks = {}
cur = None
while d[o] in (1, 2, 3):
    t = d[o]
    sid, = struct.unpack_from('>I', d, o + 1)
    o += 5
    if t == 1:
        nl = d[o]
        o += 1 + nl + 8
    parts += t == 2
    while True:
        v, = struct.unpack_from('>Q', d, o)
        o += 8
        fl, addr = v & 0xfff, v & ~0xfff
        if fl & 0x04:
            total, s = addr, 0
            while s < total:
                nl = d[o]
                name = d[o + 1:o + 1 + nl]
                used, = struct.unpack_from('>Q', d, o + 1 + nl)
                blocks[name] = used
                s += used
                o += 1 + nl + 8
            continue
        if fl & 0x10:
            break
        if not fl & 0x20:
            nl = d[o]
            cur = d[o + 1:o + 1 + nl]
            o += 1 + nl
        if fl & ~0x20 == 0x02:
            o += 1
        elif fl & ~0x20 == 0x08:
            o += 4096
        else:
            sys.exit('entry flags 0x%x at 0x%x' % (fl, o - 8))
        entries += 1
        if (cur, addr) in seen:
            resent += 1
        seen.add((cur, addr))
    if d[o] == 0x7e:
        o += 5
    if t == 1:
        start_end = o
if d[o] != 4:
    sys.exit('no device section after the ram sections (0x%x at 0x%x)' % (d[o], o))
print('parts=%d entries=%d resent=%d start_end=%d devices=%d' % (parts, entries, resent, start_end, o))
