#!/usr/bin/env python3
# newc.py OUT PREFIX < LIST: a newc cpio (the initramfs format the kernel
# unpacks) of the files listed on stdin, one path a line, each stored under
# PREFIX at its own absolute path, symlinks followed.  OUT "-" is stdout.
#
# It replaces a loop of mkdir + cp -L per file, then find | cpio | gzip: for
# the KVM rig's hot layer (~150 files, ~200 MiB) that took 35 s of a loaded
# 2-core machine, mostly process starts; this is one process.
#
# A path that is a link to the file (a library's soname, libfoo.so.1 ->
# libfoo.so.1.2; python3 -> python3.11) is stored as a link too, relative,
# so it resolves inside the archive and nothing needs a lookup over 9p.
# Entries that are symlinks at the top (merged /usr: /bin -> usr/bin) are
# kept as links.  Parent directories come before their files, as the
# kernel's unpacker needs.
import os
import stat
import sys

out_path, prefix = sys.argv[1], sys.argv[2].strip("/")
ino = [1000]


def pad4(n):
    return (4 - n % 4) % 4


def header(f, name, mode, size, mtime=0, nlink=1):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    fields = (ino[0], mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, len(name_b), 0)
    h = b"070701" + b"".join(b"%08X" % v for v in fields)
    f.write(h + name_b + b"\0" * pad4(len(h) + len(name_b)))


files = set()  # archive paths of regular files, each its own source
links = {l: os.readlink(l) for l in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32") if os.path.islink(l)}
for line in sys.stdin:
    p = line.rstrip("\n")
    if not p or not os.path.exists(p):
        continue
    real = os.path.realpath(p)
    files.add(real)
    via = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
    if via != real:
        links[via] = os.path.relpath(real, os.path.dirname(via))

dirs = set()
for p in list(files) + list(links):
    d = os.path.dirname(p)
    while d not in ("/", ""):
        dirs.add(d)
        d = os.path.dirname(d)
# a directory that is also a top-level link (/lib under merged /usr) stays a link
dirs -= set(l for l in links if os.path.dirname(l) == "/")

with (os.fdopen(sys.stdout.fileno(), "wb", closefd=False) if out_path == "-" else open(out_path, "wb")) as f:
    header(f, prefix, stat.S_IFDIR | 0o755, 0, nlink=2)
    for d in sorted(dirs):
        header(f, prefix + d, stat.S_IFDIR | 0o755, 0, nlink=2)
    for l, target in sorted(links.items()):
        t = target.encode()
        header(f, prefix + l, stat.S_IFLNK | 0o777, len(t))
        f.write(t + b"\0" * pad4(len(t)))
    for p in sorted(files):
        src = p
        st = os.stat(src)
        header(f, prefix + p, stat.S_IFREG | stat.S_IMODE(st.st_mode), st.st_size, int(st.st_mtime))
        with open(src, "rb") as s:
            left = st.st_size
            while left > 0:
                b = s.read(min(left, 1 << 22))
                if not b:
                    sys.exit("newc.py: %s shrank while being read" % src)
                f.write(b)
                left -= len(b)
        f.write(b"\0" * pad4(st.st_size))
    header(f, "TRAILER!!!", 0, 0)
