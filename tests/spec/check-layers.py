#!/usr/bin/env python3
"""The dependency rules of docs/architecture.md, checked from what the
compiler and the linker see, not from grep.

Includes come from `cc -MM` (every project header a file reaches, through
any chain); calls come from `nm` on the built objects (a file that leaves a
symbol undefined which another file defines depends on that file).  The
same symbols give the naming rule: `xsr_` is the library's public API, so a
tool object defines no global `xsr_*` that libxsrelf.map does not list.

    check-layers.py [--root DIR] [--objs DIR] [--known FILE] [--map FILE]

Exit 0 when every violation found is in the known list and every entry of
the list is still found; 1 otherwise (a new violation, or a fixed one whose
entry should go: the list only shrinks); 2 when the tools fail.  Without
--objs the call rules are not checked.
"""
import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

ENGINES = ("save", "restore", "core", "migrate")
# A backend's interface; every other header under backends/ is private to it.
BACKEND_INTERFACE = {"backends/backend.h"}
# util/: the floor below the backends (the clock, progress drawing) that every
# folder of the tool may use; it uses nothing of the project itself.
TOOL_DIRS = ("util", "cli") + ENGINES + ("backends", "vmm")


def layer(path):
    top = path.split("/", 1)[0]
    if top == "libxsrelf":
        return "lib"
    if top == "tests":
        return "fuzz" if path.startswith("tests/fuzz/") else "tests"
    return top


def includes(root, srcs):
    """{src: project headers (relative to root) that src reaches}, from one cc -MM."""
    cmd = ["cc", "-MM", "-D_GNU_SOURCE", "-DXSR_HAVE_XEN=1", "-DXSR_TESTHOOKS=1",
           "-Ilibxsrelf/include"] + srcs
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("check-layers: cc -MM failed:\n%s" % r.stderr.strip())
    out = {}
    # one rule per source: "NAME.o: SRC DEP DEP ..."
    for rule in r.stdout.replace("\\\n", " ").splitlines():
        if ":" not in rule:
            continue
        deps = [os.path.normpath(d) for d in rule.split(":", 1)[1].split()]
        out[deps[0]] = {d for d in deps[1:] if not os.path.isabs(d)}
    missing = set(srcs) - set(out)
    if missing:
        sys.exit("check-layers: cc -MM gave no rule for %s" % ", ".join(sorted(missing)))
    return out


def include_violations(root):
    srcs = []
    for top in ("libxsrelf/src",) + TOOL_DIRS + ("tests/fuzz",):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith(".c"):
                    srcs.append(os.path.relpath(os.path.join(dirpath, f), root))
    found = set()
    inc = includes(root, srcs) if srcs else {}
    for src in sorted(srcs):
        me = layer(src)
        for h in sorted(inc[src]):
            hl = layer(h)
            if me == "lib" and hl != "lib":
                found.add("lib-includes-outside %s %s" % (src, h))
            if hl == "cli" and me != "cli":
                found.add("includes-cli %s %s" % (src, h))
            if me == "backends" and hl in ENGINES + ("vmm", "cli"):
                found.add("backend-uses-%s %s %s" % (hl, src, h))
            if me == "util" and hl != "util":
                found.add("util-uses-outside %s %s" % (src, h))
            if me in ENGINES and hl == "backends" and h not in BACKEND_INTERFACE:
                found.add("engine-includes-backend-private %s %s" % (src, h))
            if me in ENGINES and hl == "vmm":
                found.add("engine-uses-vmm %s %s" % (src, h))
            if me == "fuzz" and hl not in ("lib", "fuzz"):
                # the migration receiver's target may use the engine, and the
                # backend interface the engine is handed (never a backend)
                if not (src.startswith("tests/fuzz/migrate-recv/") and
                        (hl == "migrate" or h in BACKEND_INTERFACE)):
                    found.add("fuzz-includes-tool %s %s" % (src, h))
    return found


def nm(objs):
    """{obj: (strong definitions, weak definitions, undefined symbols)}, from one nm -A."""
    r = subprocess.run(["nm", "-A", "-g"] + objs, capture_output=True, text=True)
    if r.returncode:
        sys.exit("check-layers: nm failed: %s" % r.stderr.strip())
    out = {o: (set(), set(), set()) for o in objs}
    for line in r.stdout.splitlines():
        # "FILE:ADDR TYPE SYM", or "FILE: U SYM" (padded) for an undefined one
        f, rest = line.split(":", 1)
        parts = rest.split()
        if len(parts) < 2 or f not in out:
            continue
        typ, sym = parts[-2], parts[-1]
        out[f][2 if typ in "Uwv" else 1 if typ in "WV" else 0].add(sym)
    return out


def sccs(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = n[0]
        n[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = n[0]
                    n[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def map_symbols(path):
    """The names libxsrelf.map exports (its `name;` lines; a missing map exports none)."""
    try:
        with open(path) as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    except FileNotFoundError:
        return set()
    return set(re.findall(r"^\s*(xsr_\w+)\s*;", text, flags=re.M))


def call_violations(objdir, exported=frozenset()):
    objs = []
    for top in ("libxsrelf",) + TOOL_DIRS:  # not build/fuzz/ and the like: other builds of the same files
        for dirpath, _, files in os.walk(os.path.join(objdir, top)):
            for f in files:
                if f.endswith(".o"):
                    objs.append(os.path.join(dirpath, f))
    if not objs:
        sys.exit("check-layers: no objects under %s (run make first)" % objdir)
    owner, uses = {}, {}
    syms = nm(sorted(objs))
    src = {o: os.path.relpath(o, objdir)[:-2] + ".c" for o in objs}
    # a strong definition wins over a weak one (cli/stubs.c's fallbacks)
    for kind in (0, 1):
        for o in sorted(objs):
            for s in syms[o][kind]:
                owner.setdefault(s, src[o])
    found = set()
    for o in objs:
        uses[src[o]] = syms[o][2]
        # xsr_ names the library's API; a tool symbol starts with its module's name
        if layer(src[o]) in TOOL_DIRS:
            for s in syms[o][0] | syms[o][1]:
                if s.startswith("xsr_") and s not in exported:
                    found.add("tool-defines-xsr %s %s" % (src[o], s))
    graph = defaultdict(set)
    for src, u in uses.items():
        graph[src]
        for s in u:
            if s in owner and owner[s] != src:
                graph[src].add(owner[s])
    for src, deps in graph.items():
        me = layer(src)
        for d in deps:
            dl = layer(d)
            if me == "lib" and dl != "lib":
                found.add("lib-calls-outside %s %s" % (src, d))
            if dl == "cli" and me != "cli":
                found.add("calls-cli %s %s" % (src, d))
            if me == "backends" and dl in ENGINES + ("vmm", "cli"):
                found.add("backend-calls-%s %s %s" % (dl, src, d))
            if me == "util" and dl != "util":
                found.add("util-calls-outside %s %s" % (src, d))
            if me in ENGINES and dl == "vmm":
                found.add("engine-calls-vmm %s %s" % (src, d))
            # engines reach a backend through its ops struct (function
            # pointers, no link-time symbol) and backends/backend.c's lookup
            if me in ENGINES and dl == "backends" and d != "backends/backend.c":
                found.add("engine-calls-backend %s %s" % (src, d))
    for comp in sccs(graph):
        found.add("circle " + " ".join(comp))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".")
    ap.add_argument("--objs")
    ap.add_argument("--known")
    ap.add_argument("--map", help="the library's linker map (default ROOT/libxsrelf/libxsrelf.map)")
    a = ap.parse_args()
    found = include_violations(a.root)
    if a.objs:
        found |= call_violations(a.objs, map_symbols(a.map or os.path.join(a.root, "libxsrelf/libxsrelf.map")))
    known = set()
    if a.known:
        with open(a.known) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    known.add(re.sub(r"\s+", " ", line))
    new = sorted(found - known)
    gone = sorted(known - found)
    for v in new:
        print("NEW violation: %s" % v)
    for v in gone:
        print("FIXED (remove it from %s): %s" % (a.known, v))
    print("%d violations found, %d of them known, %d new, %d known ones fixed"
          % (len(found), len(found & known), len(new), len(gone)))
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
