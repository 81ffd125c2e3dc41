#!/usr/bin/env python3
"""A tiny QMP client for tests/qemu/import.sh and export.sh.

usage: qmp.py SOCKET OUTDIR [RUN_SECONDS]
Runs the paused guest for RUN_SECONDS (default 1), stops it, raises the
migration bandwidth cap, then from the SAME stopped guest writes
OUTDIR/regs.txt (HMP `info registers`), OUTDIR/dump.elf (dump-guest-memory,
paging false) and OUTDIR/stream.bin (migrate "exec:cat > ..."), waiting
for the migration to complete.  QMP_MAX_BANDWIDTH in the environment sets
the cap instead (octets per second).

usage: qmp.py SOCKET OUTDIR --incoming STREAM
For a QEMU started with -S -incoming defer: restores STREAM
(migrate-incoming "exec:cat STREAM"), waits until the migration completes
(exit 1 if it fails), then writes OUTDIR/regs.txt and OUTDIR/dump.elf of
the restored, still stopped guest.

As a module (tests/qemu/guestqmp.py) it lends its QMP class.
"""
import json
import os
import socket
import sys
import time


class QMP:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit('qmp: cannot connect to %s' % path)
        self.f = self.s.makefile('rw')
        json.loads(self.f.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if 'return' in r:
                return r['return']
            if 'error' in r:
                sys.exit('qmp: %s: %s' % (name, r['error']))

    def hmp(self, line):
        return self.cmd('human-monitor-command', **{'command-line': line})

    def wait_migration(self):
        """Poll query-migrate until the migration ends; its last status."""
        while True:
            st = self.cmd('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                return st
            time.sleep(0.05)


def main():
    sock, out = sys.argv[1], sys.argv[2]
    q = QMP(sock)
    if len(sys.argv) > 4 and sys.argv[3] == '--incoming':
        t0 = time.time()
        q.cmd('migrate-incoming', uri='exec:cat ' + sys.argv[4])
        st = q.wait_migration()
        if st['status'] != 'completed':
            sys.exit('qmp: incoming migration %s' % st['status'])
        print('incoming: %.2f s' % (time.time() - t0))
        open(out + '/regs.txt', 'w').write(q.hmp('info registers'))
        q.cmd('dump-guest-memory', paging=False, protocol='file:' + out + '/dump.elf')
        return
    run = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    q.cmd('cont')
    time.sleep(run)
    q.cmd('stop')
    # QMP_MAX_BANDWIDTH (octets/s): a low cap makes QEMU split its RAM over several PART sections
    q.cmd('migrate-set-parameters', **{'max-bandwidth': int(os.environ.get('QMP_MAX_BANDWIDTH', 1 << 40))})
    open(out + '/regs.txt', 'w').write(q.hmp('info registers'))
    q.cmd('dump-guest-memory', paging=False, protocol='file:' + out + '/dump.elf')
    t0 = time.time()
    q.cmd('migrate', uri='exec:cat > ' + out + '/stream.bin')
    st = q.wait_migration()
    if st['status'] != 'completed':
        sys.exit('qmp: migration %s' % st['status'])
    print('migrate: %.2f s' % (time.time() - t0))


if __name__ == '__main__':
    main()
