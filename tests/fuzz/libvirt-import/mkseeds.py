#!/usr/bin/env python3
"""Seeds of the libvirt-import fuzz target: small `virsh save` files.

The QEMU stream inside is qemu-import's i440fx.qemu seed (mkseeds.py
there, 19 KiB), wrapped by tests/qemu/virshsave.py with 64 octets of
padding instead of libvirt's 64 KiB, raw and through the real gzip, bzip2,
xz, lzop and zstd (the programs libvirt runs), plus a raw file with a
big-endian header and a version 1 header.  With REGRESSDIR, also the
decompression bombs replayed but not mutated (README.md): a QEMU stream
header ("QEVM", version 3, so that the import's first check passes) and
zeros, 8 MiB through gzip, xz, lzop and zstd (bomb-gzip, -xz, -lzop,
-zstd) and 1 GiB
through bzip2 (bomb-bzip2, about 1 KiB), which the target's max_stream
(4 MiB) refuses; and bomb-resend-bzip2, 2.8 KiB inflating to a valid
90 MB stream whose one page is sent 10 million times (ZERO entries of 9
octets): refused by max_stream here; `xsr import` imports it in 12 MiB of
memory (tests/hardening/qemu-sweep.sh), where it took 169 MiB, 16 octets
an entry, before the import dropped resent copies as it went.
usage: mkseeds.py OUTDIR [REGRESSDIR]
"""
import json
import struct
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, '..', '..', '..')
wrap = os.path.join(root, 'tests', 'qemu', 'virshsave.py')
out = sys.argv[1]
with tempfile.TemporaryDirectory() as t:
    subprocess.run([sys.executable, os.path.join(here, '..', 'qemu-import', 'mkseeds.py'), t], check=True)
    stream = os.path.join(t, 'i440fx.qemu')
    for comp in ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd']:
        subprocess.run([sys.executable, wrap, stream, os.path.join(out, comp + '.save'), comp, 'pad=64'], check=True)
    subprocess.run([sys.executable, wrap, stream, os.path.join(out, 'raw-big-endian.save'), 'raw', 'pad=64', 'swap=1'],
                   check=True)
    subprocess.run([sys.executable, wrap, stream, os.path.join(out, 'raw-v1.save'), 'raw', 'pad=64', 'version=1'],
                   check=True)
    if len(sys.argv) > 2:
        zeros = os.path.join(t, 'zeros')
        for comp, size in [('gzip', 8 << 20), ('xz', 8 << 20), ('lzop', 8 << 20), ('zstd', 8 << 20), ('bzip2', 1 << 30)]:
            with open(zeros, 'wb') as f:
                f.write(b'QEVM\0\0\0\3')
                f.truncate(size)
            subprocess.run([sys.executable, wrap, zeros, os.path.join(sys.argv[2], 'bomb-' + comp), comp, 'pad=64'],
                           check=True)
        be32 = lambda v: struct.pack('>I', v)
        be64 = lambda v: struct.pack('>Q', v)
        name = lambda n: bytes([len(n)]) + n.encode()
        s = b'QEVM' + be32(3) + b'\x07' + be32(13) + b'pc-i440fx-7.2'
        s += b'\x01' + be32(2) + name('ram') + be32(0) + be32(4)
        s += be64(4096 | 0x04) + name('pc.ram') + be64(4096) + be64(0x10) + b'\x7e' + be32(2)
        s += b'\x02' + be32(2) + be64(0x02) + name('pc.ram') + b'\0' + (be64(0x22) + b'\0') * 10000000
        s += be64(0x10) + b'\x7e' + be32(2) + b'\x03' + be32(2) + be64(0x10) + b'\x7e' + be32(2)
        body = b''.join(be64(i) for i in range(16)) + be64(0xfff0) + be64(2)
        s += b'\x04' + be32(4) + name('cpu') + be32(0) + be32(12) + body + b'\x7e' + be32(4)
        devs = [{'name': 'cpu', 'instance_id': 0, 'vmsd_name': 'cpu', 'version': 12, 'fields': [
            {'name': 'env.regs', 'array_len': 16, 'type': 'uint64', 'size': 8},
            {'name': 'env.eip', 'type': 'uint64', 'size': 8}, {'name': 'env.eflags', 'type': 'uint64', 'size': 8}]}]
        js = json.dumps({'page_size': 4096, 'devices': devs}).encode()
        with open(zeros, 'wb') as f:
            f.write(s + b'\x00\x06' + be32(len(js)) + js)
        subprocess.run([sys.executable, wrap, zeros, os.path.join(sys.argv[2], 'bomb-resend-bzip2'), 'bzip2', 'pad=64'],
                       check=True)
