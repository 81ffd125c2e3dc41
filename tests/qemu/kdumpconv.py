#!/usr/bin/env python3
"""Rewrite a kdump-compressed file for tests/qemu/dumpmem.sh.

usage: kdumpconv.py IN OUT [--pages raw|zlib|snappy|lzo] [--vmcoreinfo TEXT]
IN: a kdump-compressed file, flattened (what QEMU writes) or not.  OUT: the
same dump not flattened (the file `makedumpfile -R` rebuilds), with
--pages: every page stored again as the kind named (snappy: written here,
literals and copies; lzo: each page through the lzop program, its LZO1X
block taken out of lzop's framing; a page compression does not shrink is
stored raw, as QEMU does), and with --vmcoreinfo: a VMCOREINFO note added
after the notes and named by the sub header, as QEMU writes it for a guest
with the vmcoreinfo device.  QEMU 7.2 in Debian offers only kdump-zlib;
this is how the import's other decoders meet real LZO data and a snappy
stream.  Prints nothing; exit 1 with a reason.
"""
import struct
import subprocess
import sys
import zlib

PAGE = 4096


def unflatten(d):
    if d[:12] != b'makedumpfile':
        return bytearray(d)
    out = bytearray()
    i = 4096
    while True:
        off, n = struct.unpack_from('>qq', d, i)
        i += 16
        if off == -1:
            return out
        if len(out) < off + n:
            out.extend(bytes(off + n - len(out)))
        out[off:off + n] = d[i:i + n]
        i += n


def snappy(page):
    """A raw snappy stream: runs of one octet as copies at offset 1, the rest as literals."""
    out = bytearray()
    n = len(page)
    while True:  # varint length
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    lit = bytearray()

    def flush():
        k = 0
        while k < len(lit):
            chunk = lit[k:k + 65536]
            v = len(chunk) - 1
            if v < 60:
                out.append(v << 2)
            elif v < 256:
                out.extend([60 << 2, v])
            else:
                out.extend([61 << 2, v & 0xff, v >> 8])
            out.extend(chunk)
            k += len(chunk)
        lit.clear()
    i = 0
    while i < len(page):
        j = i + 1
        while j < len(page) and page[j] == page[i] and j - i < 65:
            j += 1
        if j - i >= 5:  # one literal octet, then a copy of the rest
            lit.append(page[i])
            flush()
            ln = j - i - 1
            if 4 <= ln <= 11:
                out.extend([((ln - 4) << 2) | 1, 1])  # 1-octet offset
            else:
                out.extend([((ln - 1) << 2) | 2, 1, 0])  # 2-octet offset
            i = j
        else:
            lit.append(page[i])
            i += 1
    flush()
    return bytes(out)


def lzo(page):
    r = subprocess.run(['lzop', '-c'], input=page, stdout=subprocess.PIPE, check=True).stdout
    i = 9
    version, = struct.unpack_from('>H', r, i)
    i += 4
    if version >= 0x0940:
        i += 2
    i += 1
    if version >= 0x0940:
        i += 1
    flags, = struct.unpack_from('>I', r, i)
    i += 4
    if flags & 0x800:
        i += 4
    i += 8
    if version >= 0x0940:
        i += 4
    i += 1 + r[i] + 4
    if flags & 0x40:
        ex, = struct.unpack_from('>I', r, i)
        i += 8 + ex
    dst, src = struct.unpack_from('>II', r, i)
    i += 8 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x100)
    if src < dst:
        i += 4 * bool(flags & 0x2) + 4 * bool(flags & 0x200)
        return r[i:i + src]
    return None


def main():
    a = sys.argv[1:]
    if len(a) < 2:
        sys.exit(__doc__)
    d = unflatten(open(a[0], 'rb').read())
    opts = dict(zip(a[2::2], a[3::2]))
    if d[:8] != b'KDUMP   ':
        sys.exit('kdumpconv: not a kdump')
    sub, bmb = struct.unpack_from('<II', d, 432)
    maxmap, = struct.unpack_from('<Q', d, PAGE + 96)
    bm = (1 + sub) * PAGE
    blen = bmb // 2 * PAGE
    desc = bm + 2 * blen
    npages = sum(bin(x).count('1') for x in d[bm + blen:bm + blen + (maxmap + 7) // 8])
    if '--vmcoreinfo' in opts:
        text = opts['--vmcoreinfo'].replace('\\n', '\n').encode()
        noff, nsize = struct.unpack_from('<QQ', d, PAGE + 48)
        note = struct.pack('<III', 11, len(text), 0) + b'VMCOREINFO\0\0' + text + bytes(-len(text) % 4)
        if noff + nsize + len(note) > (1 + sub) * PAGE:
            sys.exit('kdumpconv: no room for the note in the sub header blocks')
        d[noff + nsize:noff + nsize + len(note)] = note
        struct.pack_into('<QQQQ', d, PAGE + 32, noff + nsize + 24, len(text), noff, nsize + len(note))
    kind = opts.get('--pages')
    if kind:
        out = bytearray(d[:desc])
        data = desc + 24 * npages
        pages = bytearray()
        descs = bytearray()
        memo = {}
        code = {'raw': 0, 'zlib': 1, 'lzo': 2, 'snappy': 4}[kind]
        for k in range(npages):
            off, size, fl, pf = struct.unpack_from('<QIIQ', d, desc + 24 * k)
            raw = d[off:off + size]
            if fl & 1:
                raw = zlib.decompress(raw)
            elif fl:
                sys.exit('kdumpconv: page %d is not raw or zlib' % k)
            raw = bytes(raw)
            if raw not in memo:  # zero pages are many and alike: one lzop run each kind of page
                memo[raw] = {'raw': lambda p: None, 'zlib': lambda p: zlib.compress(p, 1), 'lzo': lzo, 'snappy': snappy}[kind](raw)
            c = memo[raw]
            if c is None or len(c) >= PAGE:
                c, f = raw, 0
            else:
                f = code
            descs += struct.pack('<QIIQ', data + len(pages), len(c), f, 0)
            pages += c
        out += descs + pages
        struct.pack_into('<I', out, 424, code)
        d = out
    open(a[1], 'wb').write(d)


main()
