#!/usr/bin/env python3
"""QMP side of tests/qemu/guest.sh: watch the test guest's counters in a
QEMU that booted bin/xsr-guest.elf, and save or restore it.

usage: guestqmp.py run SOCKET OUTDIR COUNTER_PA ERRORS_PA
       guestqmp.py incoming SOCKET STREAM COUNTER_PA ERRORS_PA
       guestqmp.py resave SOCKET STREAM:OUTDIR COUNTER_PA ERRORS_PA
run: waits for the guest to count, reads guest_counters[0] and
guest_errors twice, stops it, reads them twice more, writes HMP `info
registers` to OUTDIR/regs.txt and migrates it to OUTDIR/stream.bin
("exec:cat > ...").  incoming: migrate-incoming from STREAM, reads them
before `cont`, then twice while it runs.  resave: migrate-incoming from
STREAM and, the guest still stopped, writes OUTDIR/regs.txt and migrates
it again to OUTDIR/stream.bin (tests/qemu/nodesc.sh: the same guest state
written by a QEMU of other -machine options).  Both print
KEY=VALUE lines (decimal) for the shell to check: the checks are there.
A wait for the counter to move gives up after WAIT seconds and prints what
it saw; nothing here asserts a time.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMP  # noqa: E402

WAIT = 60.0


def read64(q, pa):
    out = q.hmp('xp /1gx 0x%x' % pa)  # "0000000000118020: 0x000000000024080b"
    return int(out.split()[-1], 16)


def moved(q, pa, past):
    """Poll until the qword at pa is past `past` (or WAIT ends); the last read."""
    end = time.time() + WAIT
    while True:
        v = read64(q, pa)
        if v > past or time.time() > end:
            return v
        time.sleep(0.1)


def show(**kv):
    for k, v in kv.items():
        print('%s=%s' % (k, v))
    sys.stdout.flush()


def run(q, out, cpa, epa):
    c1 = moved(q, cpa, 0)
    e1 = read64(q, epa)
    c2 = moved(q, cpa, c1)
    e2 = read64(q, epa)
    show(c1=c1, e1=e1, c2=c2, e2=e2)
    q.cmd('stop')
    s1 = read64(q, cpa)
    time.sleep(0.3)
    show(stop_c=s1, stop_c2=read64(q, cpa), stop_e=read64(q, epa))
    open(out + '/regs.txt', 'w').write(q.hmp('info registers'))
    q.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})
    q.cmd('migrate', uri='exec:cat > ' + out + '/stream.bin')
    show(migrate=q.wait_migration()['status'])


def incoming(q, stream, cpa, epa):
    q.cmd('migrate-incoming', uri='exec:cat ' + stream)
    show(incoming=q.wait_migration()['status'], state=q.cmd('query-status')['status'])
    r0 = read64(q, cpa)
    show(in_c0=r0, in_e0=read64(q, epa))
    q.cmd('cont')
    r1 = moved(q, cpa, r0)
    e1 = read64(q, epa)
    r2 = moved(q, cpa, r1)
    show(in_c1=r1, in_e1=e1, in_c2=r2, in_e2=read64(q, epa))


def resave(q, stream, out, cpa, epa):
    q.cmd('migrate-incoming', uri='exec:cat ' + stream)
    show(incoming=q.wait_migration()['status'], state=q.cmd('query-status')['status'])
    show(in_c0=read64(q, cpa), in_e0=read64(q, epa))
    open(out + '/regs.txt', 'w').write(q.hmp('info registers'))
    q.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})
    q.cmd('migrate', uri='exec:cat > ' + out + '/stream.bin')
    show(migrate=q.wait_migration()['status'])


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ('run', 'incoming', 'resave'):
        sys.exit(__doc__)
    q = QMP(sys.argv[2])
    cpa, epa = int(sys.argv[4], 0), int(sys.argv[5], 0)
    if sys.argv[1] == 'run':
        run(q, sys.argv[3], cpa, epa)
    elif sys.argv[1] == 'resave':
        stream, out = sys.argv[3].rsplit(':', 1)
        resave(q, stream, out, cpa, epa)
    else:
        incoming(q, sys.argv[3], cpa, epa)


if __name__ == '__main__':
    main()
