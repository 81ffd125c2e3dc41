#!/bin/bash
# Export into a pipe, the way a restore into Xen feeds libxl: the page data
# goes by splice from the image's page cache and the zero pages by vmsplice,
# and the octets must be those of the export into a file and of the xl save
# the image came from.  A damaged data page must still stop the export.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-export-pipe
. tests/xen/lib.inc
rm -rf "$B" && mkdir -p "$B"

S=$G/xen417-rigu.save.zst
if [ ! -f "$S" ]; then
	ko "golden xl save $S missing"
	echo "$pass passed, $fail failed"
	exit 1
fi
zstd -q -d -c "$S" >"$B/rigu.save"
check "import the golden xl save" "$X" import "$B/rigu.save" "$B/img.elf"
check "export into a file" "$X" export "$B/img.elf" "$B/file.exp"
check "the file export is the xl save" cmp "$B/rigu.save" "$B/file.exp"

pipe_cmp() { # want env... -- export args...: export into a pipe, compare what came out with want
	local want=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" "$X" export "$@" - | cat >"$B/pipe.exp" && cmp "$want" "$B/pipe.exp"
}
check "export into a pipe: the xl save, byte for byte" pipe_cmp "$B/rigu.save" -- "$B/img.elf"
check "export into a pipe, splice and vmsplice refused (copied): the same" \
	pipe_cmp "$B/rigu.save" XSR_TEST_EXPORT_NO_SPLICE=1 -- "$B/img.elf"
check "export --format libxc into a pipe: the file export, byte for byte" bash -c \
	"set -o pipefail; '$X' export --format libxc '$B/img.elf' '$B/file.libxc' && '$X' export --format libxc '$B/img.elf' - | cat >'$B/pipe.libxc' && cmp '$B/file.libxc' '$B/pipe.libxc'"
check "export of an image on stdin into a pipe: the same" bash -c \
	"set -o pipefail; '$X' export - - <'$B/img.elf' | cat >'$B/pipe.exp' && cmp '$B/rigu.save' '$B/pipe.exp'"
check "export of a streamed image (via a temporary file) into a pipe: the same" bash -c \
	"set -o pipefail; '$X' import --stream '$B/rigu.save' '$B/img.s.elf' && '$X' export '$B/img.s.elf' - | cat >'$B/pipe.exp' && cmp '$B/rigu.save' '$B/pipe.exp'"
rm -f "$B/img.s.elf" "$B/file.libxc" "$B/pipe.libxc"

# libxl stops reading: the export ends with EPIPE (SIGPIPE ignored, as in a restore), not hanging
check "the reader goes away: the export fails with EPIPE, in time" bash -c \
	"trap '' PIPE; timeout 60 '$X' export '$B/img.elf' - 2>'$B/epipe.err' | head -c 100000 >/dev/null;
	 s=\${PIPESTATUS[0]}; cat '$B/epipe.err'; [ \$s != 124 ] && [ \$s != 0 ] && grep -q 'Broken pipe' '$B/epipe.err'"

# the syscalls: the data by splice, the zero pages by vmsplice, and neither refused (without
# LeakSanitizer in a SANITIZE=1 build: it cannot run under ptrace)
if command -v strace >/dev/null; then
	check "export into a pipe uses splice and vmsplice" bash -c \
		"set -o pipefail; ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -s 0 -e trace=splice,vmsplice -o '$B/strace.txt' '$X' export '$B/img.elf' - | cat >/dev/null &&
		 grep -c '^[0-9]* *splice(' '$B/strace.txt' && grep -c '^[0-9]* *vmsplice(' '$B/strace.txt' &&
		 ! grep -E 'splice\\(.*= -1' '$B/strace.txt'"
else
	echo "SKIPPED: strace is not installed, so whether the pipe export uses splice and vmsplice is not checked"
fi

# xsr restore off Xen: libxl_ctx_alloc fails while the export thread is already filling the pipe;
# the thread must end (EPIPE) and be joined, and the message must be libxl's, not the export's
if [ -e /dev/xen/privcmd ] || [ -e /proc/xen/privcmd ]; then
	echo "SKIPPED: this host runs Xen, so the restore's failure off Xen is not checked"
else
	timeout 60 "$X" restore "$B/img.elf" >"$B/restore.out" 2>&1
	s=$?
	if grep -q "built without Xen support" "$B/restore.out"; then
		echo "SKIPPED: xsr built without Xen, so the restore's failure off Xen is not checked"
	else
		check "restore off Xen: fails in time with libxl's message, the export thread joined" bash -c \
			"cat '$B/restore.out'; [ $s != 0 ] && [ $s != 124 ] && grep -q 'libxl_ctx_alloc failed' '$B/restore.out' &&
			 ! grep -Eq 'Broken pipe|exporting the image' '$B/restore.out'"
	fi
fi

# one octet flipped in a data page (the rig domU's marker, in the pages section): the export must fail
bad=$(python3 - "$X" "$B/img.elf" "$MARK" <<'EOF'
import json, subprocess, sys
x, img, mark = sys.argv[1], sys.argv[2], sys.argv[3].encode()
info = json.loads(subprocess.run([x, "info", "--json", img], capture_output=True, check=True).stdout)
p = next(s for s in info["sections"] if s["name"] == ".xsr.pages")
with open(img, "rb") as f:
    f.seek(int(p["offset"], 0))  # 64-bit values are strings (xsr(1), JSON OUTPUT)
    at = f.read(int(p["size"])).find(mark)
print(int(p["offset"], 0) + at if at >= 0 else "")
EOF
)
if [ -n "$bad" ]; then
	cp "$B/img.elf" "$B/bad.elf"
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); c = f.read(1)[0]; f.seek(-1, 1); f.write(bytes([c ^ 0xff]))' \
		"$B/bad.elf" "$bad"
	check "the damaged image fails xsr verify" bash -c "! '$X' verify '$B/bad.elf'"
	for how in splice copy; do
		envs=()
		[ $how = copy ] && envs=(XSR_TEST_EXPORT_NO_SPLICE=1)
		check "damaged data page, export into a pipe ($how): fails, naming the checksum" bash -c \
			"env ${envs[*]} '$X' export '$B/bad.elf' - 2>'$B/bad.err' | cat >/dev/null; s=\${PIPESTATUS[0]};
			 cat '$B/bad.err'; [ \$s != 0 ] && grep -q 'checksum mismatch' '$B/bad.err'"
	done
	check "damaged data page, export into a file: fails too" bash -c "! '$X' export '$B/bad.elf' '$B/bad.exp'"
else
	ko "the domU's marker is not in the pages section of the import"
fi
rm -f "$B"/*.elf "$B"/*.exp "$B"/rigu.save
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
