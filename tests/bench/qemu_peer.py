#!/usr/bin/env python3
"""make bench, QEMU peer rows: xsr against QEMU's own commands on one guest.

usage: qemu_peer.py --xsr BIN --guest ELF --dir DIR [--mem MIB] [--fill MIB]
                    [--rounds N]

One QEMU (TCG, i440fx) boots the project's test guest with -kernel; a
`-device loader` puts FILL MiB of random octets at 16 MiB, so most of the
guest's memory holds data that neither QEMU (zero-page detection) nor xsr
can skip.  The guest is stopped; then, in interleaved rounds (which goes
first alternates), each pair runs on the same stopped guest:

  save:    QMP `migrate exec:cat > FILE`   vs  `xsr save qemu:SOCK FILE`
  core:    QMP `dump-guest-memory`         vs  `xsr core qemu:SOCK FILE`
  restore: a new QEMU `-incoming exec:cat FILE` until query-migrate says
           completed  vs  `xsr restore FILE --qemu --paused -- QEMU...`

A second QEMU runs the same guest with the same data, pc.ram on a shared
memory backend (memory-backend-memfd, share=on, id=pc.ram), for the rows of
xsr's shared-memory path (issue 18, path (b)), against QEMU's own commands
on that same QEMU:

  shared save:    QMP `migrate exec:cat > FILE`  vs  `xsr save qemu:SOCK FILE`
  shared core:    QMP `dump-guest-memory`        vs  `xsr save qemu:SOCK FILE`
  shared restore: `-incoming exec:cat FILE`  vs  `xsr restore FILE --qemu
                  --qemu-path shared --paused -- QEMU...` (xsr adds the memfd)

with the file-size ratio beside the time ratio.

QEMU's max-bandwidth is raised to 1 TiB/s before the rounds (xsr save
qemu: does the same for itself).  A QEMU timing runs from connecting to its
QMP socket to the command's completion, seen by polling query-migrate every
5 ms; an xsr timing is the process's wall time.  Before every save or core
the guest is resumed and stopped again: QEMU refuses to migrate a guest
left paused by a migration ("postmigrate").

Prints the human lines and one `@row` line per pair (tests/bench/lib.inc);
median of the rounds, ratio = xsr time / QEMU time.  Not a test.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

LOAD_ADDR = 16 << 20
TIB = 1 << 40


class QMP:
    def __init__(self, path, wait=10.0):
        self.s = socket.socket(socket.AF_UNIX)
        end = time.monotonic() + wait
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.005)
        self.f = self.s.makefile('rw')
        json.loads(self.f.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError('QEMU closed QMP during %s' % name)
            r = json.loads(line)
            if 'return' in r:
                return r['return']
            if 'error' in r:
                raise RuntimeError('%s: %s' % (name, r['error'].get('desc')))

    def wait_migrate(self, timeout=600):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.cmd('query-migrate').get('status')
            if st == 'completed':
                return
            if st in ('failed', 'cancelled'):
                raise RuntimeError('migration %s' % st)
            time.sleep(0.005)
        raise RuntimeError('migration did not complete')

    def close(self):
        # the makefile() object holds the fd open too; QEMU serves one
        # QMP client at a time
        self.f.close()
        self.s.close()


PROCS = []


def cleanup(*_):
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


def spawn(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    return p


def xsr(args, env=None):
    # stdout and stderr are files: the QEMU that `xsr restore --qemu` starts
    # keeps xsr's stderr (its own messages go there), so a pipe never ends.
    with open(os.path.join(env['TMPDIR'], 'xsr.out'), 'w+') as out, \
         open(os.path.join(env['TMPDIR'], 'xsr.err'), 'w+') as err:
        t0 = time.monotonic()
        rc = subprocess.call(args, stdout=out, stderr=err, env=env)
        t = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        if rc:
            raise RuntimeError('%s: exit %d: %s' % (' '.join(args[:3]), rc, err.read().strip()))
        return t, out.read()


def restop(sock):
    q = QMP(sock)
    q.cmd('cont')
    q.cmd('stop')
    q.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--xsr', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--mem', type=int, default=256)
    ap.add_argument('--fill', type=int, default=192)
    ap.add_argument('--rounds', type=int, default=5)
    a = ap.parse_args()
    if (LOAD_ADDR >> 20) + a.fill > a.mem:
        sys.exit('--fill %d MiB at 16 MiB does not fit in %d MiB' % (a.fill, a.mem))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    d = a.dir
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, TMPDIR=d)  # xsr save qemu: spills QEMU's stream there
    blob = os.path.join(d, 'fill.bin')
    with open(blob, 'wb') as f:
        for _ in range(a.fill):
            f.write(os.urandom(1 << 20))
    qemu = ['qemu-system-x86_64', '-accel', 'tcg', '-machine', 'pc-i440fx-7.2',
            '-m', str(a.mem), '-nographic', '-nodefaults', '-kernel', a.guest]
    src = os.path.join(d, 'src.sock')
    spawn(qemu + ['-device', 'loader,file=%s,addr=0x%x,force-raw=on' % (blob, LOAD_ADDR),
                  '-qmp', 'unix:%s,server=on,wait=off' % src])
    shm = ['-object', 'memory-backend-memfd,id=pc.ram,size=%dM,share=on' % a.mem, '-machine', 'memory-backend=pc.ram']
    ssrc = os.path.join(d, 'ssrc.sock')
    spawn(qemu + shm + ['-device', 'loader,file=%s,addr=0x%x,force-raw=on' % (blob, LOAD_ADDR),
                        '-qmp', 'unix:%s,server=on,wait=off' % ssrc])
    for s in (src, ssrc):
        q = QMP(s)
        q.cmd('migrate-set-parameters', **{'max-bandwidth': TIB})
        q.cmd('stop')
        q.close()
    os.unlink(blob)

    t = {k: [] for k in ('qsave', 'xsave', 'qcore', 'xcore', 'qrest', 'xrest',
                         'sqsave', 'sxsave', 'sqcore', 'sqrest', 'sxrest')}
    size = {}
    # xsr's own split (--json): QEMU's stream into the spill file, then the import
    part = {k: [] for k in ('save_stream', 'save_import', 'core_stream', 'core_import')}

    def split(verb, out):
        j = json.loads(out)
        part[verb + '_stream'].append(j['pause_ms'] / 1e3)
        part[verb + '_import'].append(j['transcode_ms'] / 1e3)

    # QEMU's own commands, timed into t[key]; each returns what the size rows need
    def qemu_migrate(sock, mig, key):
        restop(sock)
        t0 = time.monotonic()
        q = QMP(sock)
        q.cmd('migrate', uri='exec:cat > %s' % mig)
        q.wait_migrate()
        t[key].append(time.monotonic() - t0)
        q.close()
        return os.path.getsize(mig)

    def qemu_dump(sock, out, key):
        restop(sock)
        t0 = time.monotonic()
        q = QMP(sock)
        q.cmd('dump-guest-memory', paging=False, protocol='file:' + out)
        t[key].append(time.monotonic() - t0)
        q.close()
        n = os.stat(out).st_blocks * 512
        os.unlink(out)
        return n

    def qemu_incoming(args, mig, sock, key):
        t0 = time.monotonic()
        p = spawn(args + ['-incoming', 'exec:cat %s' % mig, '-qmp', 'unix:%s,server=on,wait=off' % sock])
        q = QMP(sock)
        q.wait_migrate()
        t[key].append(time.monotonic() - t0)
        q.close()
        p.kill()
        p.wait()

    mig = os.path.join(d, 'qemu.mig')
    img = os.path.join(d, 'xsr.elf')
    for i in range(a.rounds):
        def q_save():
            qemu_migrate(src, mig, 'qsave')

        def x_save():
            restop(src)
            el, out = xsr([a.xsr, 'save', 'qemu:' + src, img, '--json'], env)
            t['xsave'].append(el)
            split('save', out)

        def q_core():
            qemu_dump(src, os.path.join(d, 'qemu.core'), 'qcore')

        def x_core():
            restop(src)
            out = os.path.join(d, 'xsr.core')
            el, js = xsr([a.xsr, 'core', 'qemu:' + src, out, '--json'], env)
            t['xcore'].append(el)
            split('core', js)
            os.unlink(out)

        def q_rest():
            qemu_incoming(qemu, mig, os.path.join(d, 'qr.sock'), 'qrest')

        def x_rest():
            el, out = xsr([a.xsr, 'restore', img, '--qemu', '--paused', '--json', '--'] + qemu, env)
            t['xrest'].append(el)
            os.kill(json.loads(out)['pid'], signal.SIGKILL)

        smig = os.path.join(d, 'sqemu.mig')
        simg = os.path.join(d, 'sxsr.elf')

        def sq_save():
            size['qmig'] = qemu_migrate(ssrc, smig, 'sqsave')

        def sx_save():
            restop(ssrc)
            el, out = xsr([a.xsr, 'save', 'qemu:' + ssrc, simg, '--json', '--qemu-path', 'shared'], env)
            t['sxsave'].append(el)
            size['ximg'] = os.stat(simg).st_blocks * 512  # allocated: zero pages are holes

        def sq_core():
            size['qcore'] = qemu_dump(ssrc, os.path.join(d, 'sqemu.core'), 'sqcore')

        def sq_rest():
            qemu_incoming(qemu + shm, smig, os.path.join(d, 'sqr.sock'), 'sqrest')

        def sx_rest():
            el, out = xsr([a.xsr, 'restore', simg, '--qemu', '--qemu-path', 'shared', '--paused', '--json', '--']
                          + qemu, env)
            t['sxrest'].append(el)
            os.kill(json.loads(out)['pid'], signal.SIGKILL)

        pairs = [(q_save, x_save), (q_core, x_core), (q_rest, x_rest), (sq_save, sx_save), (sq_core, sx_save),
                 (sq_rest, sx_rest)]
        for qf, xf in pairs:
            for f in ((qf, xf) if i % 2 == 0 else (xf, qf)):
                f()
    cleanup()

    med = {k: statistics.median(v) for k, v in t.items()}
    what = '%d MiB guest, %d MiB of it random data' % (a.mem, a.fill)
    rows = [
        ('save', 'xsave', 'qsave', 'xsr save qemu:SOCK FILE', 'QEMU migrate "exec:cat > FILE"'),
        ('core', 'xcore', 'qcore', 'xsr core qemu:SOCK FILE', 'QEMU dump-guest-memory (paging off)'),
        ('restore', 'xrest', 'qrest', 'xsr restore FILE --qemu --paused -- QEMU...', 'QEMU -incoming "exec:cat FILE"'),
    ]
    print('== QEMU peer rows: one stopped %s under TCG, tmpfs at %s, median of %d interleaved rounds'
          % (what, d, a.rounds))
    for tag, x, r, xname, rname in rows:
        ratio = med[x] / med[r]
        print('%-44s %.3f s  vs  %-38s %.3f s  -> xsr/QEMU time %.2f   (rounds: xsr %s; QEMU %s)'
              % (xname, med[x], rname, med[r], ratio,
                 ' '.join('%.3f' % v for v in t[x]), ' '.join('%.3f' % v for v in t[r])))
        print('\t'.join(['@row', 'QEMU peer, %s: %s (%s)' % (tag, xname, what), '%.4f' % med[x], 's',
                         rname, '%.4f' % med[r], '%.3f' % ratio, 'xsr time / QEMU time', '', '']))
    what_s = what + ', pc.ram a shared memfd'
    srows = [
        ('shared save', 'sxsave', 'sqsave', 'xsr save qemu:SOCK FILE (shared-memory path)',
         'QEMU migrate "exec:cat > FILE"', 'ximg', 'qmig'),
        ('shared core', 'sxsave', 'sqcore', 'xsr save qemu:SOCK FILE (shared-memory path)',
         'QEMU dump-guest-memory (paging off)', 'ximg', 'qcore'),
        ('shared restore', 'sxrest', 'sqrest', 'xsr restore FILE --qemu --qemu-path shared',
         'QEMU -incoming "exec:cat FILE" (same memfd pc.ram)', None, None),
    ]
    for tag, x, r, xname, rname, xs, rs in srows:
        ratio = med[x] / med[r]
        sz = ''
        if xs:
            sz = '; file size xsr/QEMU %.2f (%d / %d octets allocated)' % (size[xs] / size[rs], size[xs], size[rs])
        print('%-44s %.3f s  vs  %-38s %.3f s  -> xsr/QEMU time %.2f%s   (rounds: xsr %s; QEMU %s)'
              % (xname, med[x], rname, med[r], ratio, sz,
                 ' '.join('%.3f' % v for v in t[x]), ' '.join('%.3f' % v for v in t[r])))
        print('\t'.join(['@row', 'QEMU peer, %s: %s (%s)' % (tag, xname, what_s), '%.4f' % med[x], 's',
                         rname, '%.4f' % med[r], '%.3f' % ratio, 'xsr time / QEMU time', 'ratio<=0.5',
                         'at least 2x faster (issue 18)']))
        if xs:
            print('\t'.join(['@row', 'QEMU peer, %s: file size of xsr %s (%s)' % (tag, tag.split()[1], what_s),
                             '%d' % size[xs], 'octets', rname, '%d' % size[rs], '%.3f' % (size[xs] / size[rs]),
                             'xsr size / QEMU size', '', '']))
    for verb in ('save', 'core'):
        st, im = statistics.median(part[verb + '_stream']), statistics.median(part[verb + '_import'])
        print('  xsr %s qemu: of which QEMU\'s stream into the spill file %.3f s, the import %.3f s (medians, xsr --json)'
              % (verb, st, im))
        print('\t'.join(['@row', 'QEMU peer, %s: the import part of xsr %s qemu: (%s)' % (verb, verb, what),
                         '%.4f' % im, 's', 'its QEMU-stream part', '%.4f' % st, '%.3f' % (im / st),
                         'import / stream', '', '']))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    finally:
        cleanup()
