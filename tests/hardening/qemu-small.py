#!/usr/bin/env python3
"""A small QEMU migration stream v3 for tests/hardening/qemu-sweep.sh (5 309 octets).

Every kind of item the import reads, once: header, CONFIGURATION with a
target-page-bits subsection, a ram START with a MEM_SIZE list (pc.ram of
2 pages, pc.bios of 1), ZERO, CONTINUE and one PAGE entry (the only 4 KiB
of page data), PART and END sections with footers, a device section with
a subsection, a cpu section whose segments are a described struct, EOF
and a compact VMDESCRIPTION.  The facts are docs/qemu-compat.md's, as in
tests/fuzz/qemu-import/mkseeds.py.  With --nodesc, the same without a
VMDESCRIPTION (suppress-vmdesc=on, 6 232 octets): the cpu state is then
QEMU 7.2's version 12 layout (1817 octets, the import's built-in table)
followed by a subsection, and the stream ends with the EOF octet.
usage: qemu-small.py OUT [--nodesc]
"""
import json, struct, sys
be32 = lambda v: struct.pack('>I', v); be64 = lambda v: struct.pack('>Q', v)
name = lambda s: bytes([len(s)]) + s.encode()
foot = lambda i: b'\x7e' + be32(i)
s = b'QEVM' + be32(3) + b'\x07' + be32(13) + b'pc-i440fx-7.2'
s += b'\x05' + name('configuration/target-page-bits') + be32(1) + be32(12)
s += b'\x01' + be32(2) + name('ram') + be32(0) + be32(4)
s += be64(3 * 4096 | 0x04) + name('pc.ram') + be64(2 * 4096) + name('pc.bios') + be64(4096) + be64(0x10) + foot(2)
s += b'\x02' + be32(2) + be64(0x02) + name('pc.ram') + b'\0' + be64(4096 | 0x28) + bytes(range(256)) * 16
s += be64(0x02) + name('pc.bios') + b'\0' + be64(0x10) + foot(2)
s += b'\x03' + be32(2) + be64(0x22) + b'\0' + be64(0x10) + foot(2)
body = b'\x01\x02' + b'\x05' + name('dev/sub') + be32(1) + be32(7)
s += b'\x04' + be32(3) + name('dev') + be32(0) + be32(1) + body + foot(3)
devs = [{'name': 'dev', 'instance_id': 0, 'vmsd_name': 'dev', 'version': 1,
         'fields': [{'name': 'a', 'type': 'uint8', 'size': 1}, {'name': 'b', 'type': 'uint8', 'size': 1}],
         'subsections': [{'vmsd_name': 'dev/sub', 'version': 1, 'fields': [{'name': 'c', 'type': 'uint32', 'size': 4}]}]}]
segf = [{'name': 'selector', 'size': 4}, {'name': 'base', 'size': 8}, {'name': 'limit', 'size': 4}, {'name': 'flags', 'size': 4}]
regs = b''.join(be64(0x1000 + i) for i in range(16))
body = regs + be64(0xfff0) + be64(0x2) + b''.join(be32(0x10) + be64(0) + be32(0xffff) + be32(0x9300) for _ in range(6))
nodesc = sys.argv[2:] == ['--nodesc']
if nodesc:  # env.regs, eip, eflags at 0, 128, 136; env.segs at 236; cr0 at 456; efer at 816
    t = bytearray(1817)
    t[0:144] = body[0:144]
    t[236:356] = body[144:264]
    t[456:464] = be64(0x80050033)
    t[816:824] = be64(0x500)
    body = bytes(t) + b'\x05' + name('cpu/poll_control_msr') + be32(1) + be64(0)
s += b'\x04' + be32(4) + name('cpu') + be32(0) + be32(12) + body + foot(4)
devs.append({'name': 'cpu', 'instance_id': 0, 'vmsd_name': 'cpu', 'version': 12, 'fields': [
    {'name': 'env.regs', 'array_len': 16, 'size': 8}, {'name': 'env.eip', 'size': 8}, {'name': 'env.eflags', 'size': 8},
    {'name': 'env.segs', 'array_len': 6, 'struct': {'vmsd_name': 'segment', 'version': 1, 'fields': segf}, 'size': 20}]})
js = json.dumps({'page_size': 4096, 'devices': devs}, separators=(',', ':')).encode()
s += b'\x00' + (b'' if nodesc else b'\x06' + be32(len(js)) + js)
open(sys.argv[1], 'wb').write(s)
