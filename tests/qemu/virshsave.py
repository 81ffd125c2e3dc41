#!/usr/bin/env python3
"""Write a `virsh save` file around a QEMU migration stream, as libvirt lays it out.

usage: virshsave.py STREAM OUT raw|gzip|bzip2|xz|lzop|zstd [key=value ...]
  keys: magic=TEXT (16 octets), version=N, data_len=N, was_running=N,
        compressed=N (overrides the number written), name=TEXT, swap=1
        (data_len= changes the header's number, not the octets written)
        (big-endian header), cut=N (keep the first N octets),
        pad=N (zeros after the XML and cookie: 65536 as libvirt, fewer
        for small fuzz seeds), args=A,B (more arguments to the compressor,
        e.g. args=--long=31 for a zstd frame that declares a 2 GiB window)

The layout is libvirt's src/qemu/qemu_saveimage.[ch] (virQEMUSaveHeader and
virQEMUSaveDataWrite): "LibvirtQemudSave", then u32 version (2), data_len,
was_running, compressed, cookieOffset and 14 unused u32s in the host's
order (92 octets); the domain XML and the cookie XML, each NUL-terminated,
padded with 64 KiB of zeros to data_len; then the stream, piped through
`PROGRAM -c` (the same programs libvirt runs) unless raw.  libvirt itself
is not run here: tests/qemu/virsh.sh runs real `virsh save` beside it.
"""
import struct
import subprocess
import sys

stream, out, comp = sys.argv[1:4]
kv = dict(a.split('=', 1) for a in sys.argv[4:])
codes = {'raw': 0, 'gzip': 1, 'bzip2': 2, 'xz': 3, 'lzop': 4, 'zstd': 5}
name = kv.get('name', 'xsr-test-' + comp)
xml = ("<domain type='qemu'>\n  <name>%s</name>\n  <uuid>6f1c2a4e-0d7b-4c1e-9a55-%012x</uuid>\n"
       "  <memory unit='KiB'>65536</memory>\n</domain>\n" % (name, codes[comp])).encode() + b'\0'
cookie = b"<cookie>\n  <cpu mode='custom'/>\n</cookie>\n\0"
pad = int(kv.get('pad', 65536))
data_len = int(kv.get('data_len', len(xml) + len(cookie) + pad))
fields = [int(kv.get('version', 2)), data_len, int(kv.get('was_running', 1)),
          int(kv.get('compressed', codes[comp])), len(xml)] + [0] * 14
hdr = kv.get('magic', 'LibvirtQemudSave').encode() + struct.pack(('>' if kv.get('swap') else '<') + '19I', *fields)
assert len(hdr) == 92
body = open(stream, 'rb').read()
if comp != 'raw':
    extra = kv['args'].split(',') if kv.get('args') else []
    body = subprocess.run([comp, '-c'] + extra, input=body, stdout=subprocess.PIPE, check=True).stdout
data = xml + cookie + b'\0' * pad  # what is written; a data_len= key changes the header only
blob = hdr + data + body
if 'cut' in kv:
    blob = blob[:int(kv['cut'])]
open(out, 'wb').write(blob)
