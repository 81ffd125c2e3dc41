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
        print('%-6s not in the source: not compared' % name)
        continue
    got = int(v[name], 16)
    n += 1
    ok = want is not None and got == want
    bad += not ok
    print('%-6s image 0x%x  qemu %s  %s' % (name, got, 'none' if want is None else '0x%x' % want, 'ok' if ok else 'DIFFERS'))
for s, (sel, base) in sorted(seg.items()):
    g = v['segments'][s.lower()]
    n += 1
    ok = g['selector'] == sel and int(g['base'], 16) == base
    bad += not ok
    print('%-6s image %04x/0x%x  qemu %04x/0x%x  %s' % (s.lower(), g['selector'], int(g['base'], 16), sel, base,
                                                       'ok' if ok else 'DIFFERS'))
print('%d registers compared, %d differ' % (n, bad))
sys.exit(1 if bad else 0)
