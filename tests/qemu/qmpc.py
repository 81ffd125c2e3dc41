#!/usr/bin/env python3
"""One QMP command from the shell, for the QEMU tiers.

usage: qmpc.py SOCKET COMMAND [ARGS-JSON]
       qmpc.py SOCKET hmp 'info registers'
Connects (retrying for up to 10 s while QEMU starts), negotiates, runs
COMMAND and prints its "return" value as JSON (a string bare).  Exit 1 with
QEMU's error on stderr if it refuses.
"""
import json
import socket
import sys
import time

sock, name = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sock)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit('qmpc: cannot connect to %s' % sock)
f = s.makefile('rw')
json.loads(f.readline())


def cmd(n, args):
    f.write(json.dumps({'execute': n, 'arguments': args}) + '\n')
    f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit('qmpc: QEMU closed the connection')
        r = json.loads(line)
        if 'return' in r:
            return r['return']
        if 'error' in r:
            sys.exit('qmpc: %s: %s' % (n, r['error'].get('desc', r['error'])))


cmd('qmp_capabilities', {})
if name == 'hmp':
    r = cmd('human-monitor-command', {'command-line': sys.argv[3]})
else:
    r = cmd(name, json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
print(r if isinstance(r, str) else json.dumps(r))
