#!/usr/bin/env python3
"""Compare `xsr info --json --vcpu 0` with HMP `info registers` of the same guest.

usage: regs.py REGS.TXT VCPU.JSON [--absent NAME,...]   prints one line per
register compared; exit 1 on a difference.  --absent names registers the
image's source does not carry (a dump-guest-memory file has no EFER): they
are left out of the comparison, and said so.  32-bit and 16-bit guests print EIP/ESP...; 64-bit
ones RIP/RSP...: both are read.
"""
import json
import re
import sys

lines = []


def say(line):
    lines.append(line)

text = open(sys.argv[1]).read()
v = json.load(open(sys.argv[2]))
hmp = {}
for m in re.finditer(r'\b([RE]?[A-Z0-9]{2,3})=([0-9a-fA-F]+)\b', text):
    hmp.setdefault(m.group(1), int(m.group(2), 16))
seg = {m.group(1): (int(m.group(2), 16), int(m.group(3), 16))
       for m in re.finditer(r'^(CS|DS|ES|FS|GS|SS) *=([0-9a-f]{4}) ([0-9a-f]+)', text, re.M)}


def h(name):
    for k in ('R' + name, 'E' + name, name):
        if k in hmp:
            return hmp[k]
    return None


absent = set(sys.argv[4].split(',')) if len(sys.argv) > 4 and sys.argv[3] == '--absent' else set()
pairs = [('rip', h('IP')), ('rsp', h('SP')), ('rax', h('AX')), ('rcx', h('CX')), ('rsi', h('SI')),
         ('rbp', h('BP')), ('rflags', hmp.get('RFL', hmp.get('EFL'))), ('cr0', hmp.get('CR0')),
         ('cr2', hmp.get('CR2')), ('cr3', hmp.get('CR3')), ('cr4', hmp.get('CR4')), ('efer', hmp.get('EFER'))]
bad = n = 0
for name, want in pairs:
    if name in absent:
        say('%-6s not in the source: not compared' % name)
        continue
    got = int(v[name], 16)
    n += 1
    ok = want is not None and got == want
    bad += not ok
    say('%-6s image 0x%x  qemu %s  %s' % (name, got, 'none' if want is None else '0x%x' % want, 'ok' if ok else 'DIFFERS'))
for s, (sel, base) in sorted(seg.items()):
    g = v['segments'][s.lower()]
    n += 1
    ok = g['selector'] == sel and int(g['base'], 16) == base
    bad += not ok
    say('%-6s image %04x/0x%x  qemu %04x/0x%x  %s' % (s.lower(), g['selector'], int(g['base'], 16), sel, base,
                                                       'ok' if ok else 'DIFFERS'))
# The x87 and SSE state (FXSAVE image): FCW, FSW, FTW, MXCSR, the eight
# x87 registers by physical number (HMP's FPRn; the image holds ST(i) =
# register (TOP + i) mod 8) and XMM0-15 (HMP prints XMMnn, YMMnn or ZMMnn
# as quadwords, the highest first).  Required unless --absent names fpu.
fpu_hmp = re.search(r'FCW=([0-9a-f]+) FSW=([0-9a-f]+) \[ST=\d\] FTW=([0-9a-f]+) MXCSR=([0-9a-f]+)', text)
if 'fpu' in absent:
    say('fpu    not in the source: not compared')
elif 'fpu' not in v or not fpu_hmp:
    bad += 1
    say('fpu    image %s, qemu %s: DIFFERS' % ('has it' if 'fpu' in v else 'has none',
                                                'has it' if fpu_hmp else 'has none'))
else:
    f = v['fpu']
    want = [int(x, 16) for x in fpu_hmp.groups()]
    for name, got, w in zip(('fcw', 'fsw', 'ftw', 'mxcsr'), (f['fcw'], f['fsw'], f['ftw'], f['mxcsr']), want):
        n += 1
        bad += got != w
        say('%-6s image 0x%x  qemu 0x%x  %s' % (name, got, w, 'ok' if got == w else 'DIFFERS'))
    top = (f['fsw'] >> 11) & 7
    fprs = list(re.finditer(r'FPR(\d)=([0-9a-f]{16}) ([0-9a-f]{4})', text))
    if len(fprs) != 8:
        bad += 1
        say('fpr    qemu printed %d x87 registers, not 8: DIFFERS' % len(fprs))
    for m in fprs:
        i = int(m.group(1))
        st = f['st'][(i - top) & 7]
        got = (int(st['mantissa'], 16), st['exponent'])
        w = (int(m.group(2), 16), int(m.group(3), 16))
        n += 1
        bad += got != w
        say('fpr%d   image %016x %04x  qemu %016x %04x  %s' % (i, got[0], got[1], w[0], w[1],
                                                             'ok' if got == w else 'DIFFERS'))
    xmm = {}
    for m in re.finditer(r'[XYZ]MM(\d\d)=((?:[0-9a-f]{16} )*[0-9a-f]{16} [0-9a-f]{16})\b', text):
        q = m.group(2).split()
        xmm[int(m.group(1))] = int(q[-2] + q[-1], 16)
    if not xmm:
        bad += 1
        say('xmm    qemu printed none: DIFFERS')
    for i, w in sorted(xmm.items()):
        if i >= 16:
            continue
        got = int(f['xmm'][i], 16)
        n += 1
        bad += got != w
        if got != w or w:
            say('xmm%-3d image 0x%x  qemu 0x%x  %s' % (i, got, w, 'ok' if got == w else 'DIFFERS'))
# the differences first: a failing check shows only the first lines
for line in sorted(lines, key=lambda l: 'DIFFERS' not in l):
    print(line)
print('%d registers compared, %d differ' % (n, bad))
sys.exit(1 if bad else 0)
