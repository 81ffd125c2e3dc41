#!/usr/bin/env python3
"""What drgn reads from a Linux guest's core, as one JSON line (tests/qemu/linux.sh).

usage: drgncheck.py CORE VMLINUX
Prints {"kernel": bool, "release": ..., "jiffies_64": N, "tasks": N,
"comms": [...the first 64 (pid, comm)...]}, or {"error": "..."} with exit 1
when drgn cannot read them (the message is drgn's own).
"""
import json
import sys

import drgn
from drgn.helpers.linux.pid import for_each_task

core, vmlinux = sys.argv[1:3]
prog = drgn.Program()
try:
    prog.set_core_dump(core)
    prog.load_debug_info([vmlinux])
    out = {"kernel": bool(prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL),
           "release": prog["init_uts_ns"].name.release.string_().decode(),
           "jiffies_64": int(prog["jiffies_64"])}
    tasks = [(int(t.pid), t.comm.string_().decode()) for t in for_each_task(prog)]
    out["tasks"] = len(tasks)
    out["comms"] = tasks[:64]
except Exception as e:  # drgn's FaultError, ValueError, ... : the reason is the finding
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.exit(1)
print(json.dumps(out))
