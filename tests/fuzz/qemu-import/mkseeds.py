#!/usr/bin/env python3
"""Small QEMU migration streams for the qemu-import fuzz target's seeds.

Built by hand after the facts of docs/qemu-compat.md (a real stream is
~700 KiB, mostly BIOS pages; these hold the same structure in a few
hundred octets): header and CONFIGURATION, a ram START with a MEM_SIZE
list (pc.ram of 4 pages, pc.bios of 1), PAGE / ZERO / CONTINUE entries,
a resent page, PART and END sections with footers, a device section with
a subsection, two cpu sections, EOF and the VMDESCRIPTION; nodesc.qemu,
the same without a VMDESCRIPTION (suppress-vmdesc=on), whose cpu sections
are QEMU 7.2's version 12 layout (1817 octets, the built-in table of
libxsrelf/src/qemu_cputab.c) and a subsection; three with
a vmcoreinfo device section (QEMU's -device vmcoreinfo) pointing at a
VMCOREINFO note in pc.ram, outside RAM, and at a page that is no note;
vmcoreinfo-nodesc.qemu, the first of them without a VMDESCRIPTION (the
device's state decoded as QEMU 7.2's version 1 layout, 17 octets).
With REGRESSDIR, also the inputs replayed but not mutated (README.md):
regress-struct-offset-wrap.qemu, a cpu whose env.segs struct lists a
member of 4 x (2^62 - 1) octets before `flags`, so that flags' offset
wraps to -4: the import read 4 octets before the cpu state (UBSan
"addition of unsigned offset overflowed", a heap overread without it).
usage: mkseeds.py OUTDIR [REGRESSDIR]
"""
import json
import struct
import sys

out = sys.argv[1]
be32 = lambda v: struct.pack('>I', v)
be64 = lambda v: struct.pack('>Q', v)
name = lambda s: bytes([len(s)]) + s.encode()


def table_body(c):
    """A cpu state laid out as QEMU 7.2's vmstate_x86_cpu version 12 (docs/qemu-compat.md), then a subsection."""
    b = bytearray(1817)
    b[0:128] = b''.join(be64(0x1000 * c + i) for i in range(16))  # env.regs
    b[128:136] = be64(0xfff0 + c)  # env.eip
    b[136:144] = be64(0x2)  # env.eflags
    for i in range(6):  # env.segs: selector, base, limit, flags
        b[236 + 20 * i:256 + 20 * i] = be32(0x10) + be64(0) + be32(0xffff) + be32(0x9300)
    b[456:464] = be64(0x60000011)  # env.cr[0]
    b[472:480] = be64(0x1000)  # env.cr[3]
    b[816:824] = be64(0x500)  # env.efer
    b[856:864] = be64(0xffff888000000000)  # env.kernelgsbase
    return bytes(b) + b'\x05' + name('cpu/poll_control_msr') + be32(1) + be64(0)


def vmci_note(text):
    """Linux's VMCOREINFO ELF note: Nhdr (namesz 11, descsz, type 0), "VMCOREINFO" padded to 12, the text."""
    return struct.pack('<III', 11, len(text), 0) + b'VMCOREINFO\0\0' + text


def stream(machine='pc-i440fx-7.2', ncpu=2, footers=True, q35=False, wrap=False, vmci=None, vmdesc=True):
    """vmci: (has, guest_format, size, paddr) of a vmcoreinfo device section; pc.ram page 2 then holds a note."""
    foot = lambda i: (b'\x7e' + be32(i)) if footers else b''
    s = b'QEVM' + be32(3)
    s += b'\x07' + be32(len(machine)) + machine.encode()
    # ram START: MEM_SIZE, pc.ram 4 pages, pc.bios 1 page
    s += b'\x01' + be32(2) + name('ram') + be32(0) + be32(4)
    s += be64(5 * 4096 | 0x04) + name('pc.ram') + be64(4 * 4096) + name('pc.bios') + be64(4096)
    s += be64(0x10) + foot(2)
    # PART: a page of pc.ram, a zero page, a CONTINUE page; pc.bios
    s += b'\x02' + be32(2)
    s += be64(0 | 0x08) + name('pc.ram') + b'A' * 4096
    s += be64(1 * 4096 | 0x02 | 0x20) + b'\x00'
    s += be64(3 * 4096 | 0x08 | 0x20) + bytes(range(256)) * 16
    if vmci:
        note = vmci_note(b'OSRELEASE=6.1.0-xsr-seed\nPAGESIZE=4096\nKERNELOFFSET=2c00000\n')
        s += be64(2 * 4096 | 0x08 | 0x20) + note + bytes(4096 - len(note))
    s += be64(0 | 0x08) + name('pc.bios') + b'B' * 4096
    s += be64(0x10) + foot(2)
    # END: page 0 resent
    s += b'\x03' + be32(2) + be64(0 | 0x08) + name('pc.ram') + b'C' * 4096 + be64(0x10) + foot(2)
    devs = []
    # a device with a subsection
    body = b'\x01\x02' + b'\x05' + name('dev/sub') + be32(1) + be32(7)
    s += b'\x04' + be32(3) + name('dev') + be32(0) + be32(1) + body + foot(3)
    devs.append({'name': 'dev', 'instance_id': 0, 'vmsd_name': 'dev', 'version': 1,
                 'fields': [{'name': 'a', 'type': 'uint8', 'size': 1}, {'name': 'b', 'type': 'uint8', 'size': 1}],
                 'subsections': [{'vmsd_name': 'dev/sub', 'version': 1,
                                  'fields': [{'name': 'c', 'type': 'uint32', 'size': 4}]}]})
    segf = [{'name': 'selector', 'type': 'uint32', 'size': 4}, {'name': 'base', 'type': 'uint64', 'size': 8},
            {'name': 'limit', 'type': 'uint32', 'size': 4}, {'name': 'flags', 'type': 'uint32', 'size': 4}]
    if wrap:  # flags at offset 4 * (2^62 - 1) = -4 (mod 2^64) of each segment; env.segs first in the state
        segf = [{'name': 'x', 'type': 'uint64', 'size': 2**62 - 1, 'array_len': 4}] + segf[3:] + segf[:3]
    for c in range(ncpu):
        regs = b''.join(be64(0x1000 * c + i) for i in range(16))
        segs = b''.join(be32(0x10) + be64(0) + be32(0xffff) + be32(0x9300) for _ in range(6))
        body = (segs + regs + be64(0xfff0 + c) + be64(0x2)) if wrap else (regs + be64(0xfff0 + c) + be64(0x2) + segs)
        body += be64(0x60000011) + be64(0x1000)
        if not vmdesc:
            body = table_body(c)
        s += b'\x04' + be32(4 + c) + name('cpu') + be32(c) + be32(12) + body + foot(4 + c)
        fields = [{'name': 'env.regs', 'array_len': 16, 'type': 'uint64', 'size': 8},
                  {'name': 'env.eip', 'type': 'uint64', 'size': 8}, {'name': 'env.eflags', 'type': 'uint64', 'size': 8},
                  {'name': 'env.segs', 'array_len': 6, 'type': 'struct',
                   'struct': {'vmsd_name': 'segment', 'version': 1, 'fields': segf}, 'size': 20}]
        if wrap:
            fields = fields[3:] + fields[:3]
        fields += [{'name': 'env.cr[0]', 'type': 'uint64', 'size': 8}, {'name': 'env.cr[3]', 'type': 'uint64', 'size': 8}]
        devs.append({'name': 'cpu', 'instance_id': c, 'vmsd_name': 'cpu', 'version': 12, 'fields': fields})
    if vmci:  # QEMU hw/misc/vmcoreinfo.c: has_vmcoreinfo, then FWCfgVMCoreInfo's fields, each big-endian
        has, fmt, size, paddr = vmci
        body = bytes([has]) + struct.pack('>HHIQ', 1, fmt, size, paddr)
        s += b'\x04' + be32(4 + ncpu) + name('vmcoreinfo') + be32(0) + be32(1) + body + foot(4 + ncpu)
        devs.append({'name': 'vmcoreinfo', 'instance_id': 0, 'vmsd_name': 'vmcoreinfo', 'version': 1,
                     'fields': [{'name': 'has_vmcoreinfo', 'type': 'bool', 'size': 1},
                                {'name': 'vmcoreinfo.host_format', 'type': 'uint16', 'size': 2},
                                {'name': 'vmcoreinfo.guest_format', 'type': 'uint16', 'size': 2},
                                {'name': 'vmcoreinfo.size', 'type': 'uint32', 'size': 4},
                                {'name': 'vmcoreinfo.paddr', 'type': 'uint64', 'size': 8}]})
    js = json.dumps({'page_size': 4096, 'devices': devs}).encode()
    return s + b'\x00' + (b'\x06' + be32(len(js)) + js if vmdesc else b'')


seeds = {
    'i440fx.qemu': stream(),
    'q35.qemu': stream('pc-q35-7.2', 1),
    'nofooters.qemu': stream(footers=False),
    'unknown-machine.qemu': stream('microvm'),
    # the vmcoreinfo device: a note in pc.ram page 2; one outside RAM; one where no note is
    'vmcoreinfo.qemu': stream(vmci=(1, 1, 4096, 0x2000)),
    'vmcoreinfo-outside.qemu': stream(vmci=(1, 1, 4096, 0x100000)),
    'vmcoreinfo-notnote.qemu': stream(vmci=(1, 1, 4096, 0x3000)),
}
cut = stream()
seeds['cut.qemu'] = cut[:len(cut) // 2]
seeds['no-vmdesc.qemu'] = cut[:cut.rindex(b'\x06')]
seeds['nodesc.qemu'] = stream(vmdesc=False)
seeds['vmcoreinfo-nodesc.qemu'] = stream(vmci=(1, 1, 4096, 0x2000), vmdesc=False)
x = bytearray(stream())
x[x.index(b'\x08\x06pc.ram')] |= 0x40
seeds['xbzrle.qemu'] = bytes(x)
for n, d in seeds.items():
    open(out + '/' + n, 'wb').write(d)
if len(sys.argv) > 2:
    open(sys.argv[2] + '/regress-struct-offset-wrap.qemu', 'wb').write(stream(ncpu=1, wrap=True))
