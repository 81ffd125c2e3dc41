#!/bin/bash
# The paging view of real Xen PV Linux images (tests/xen/golden/: `xl
# dump-core` and `xl save` of the rig's 128 MiB 6.1 PV domU): `xsr convert
# --paging` maps the kernel image and the direct map, so that
# `gdb vmlinux CORE` prints the dump's values and not vmlinux's own initial
# data (what gdb prints when no PT_LOAD covers a variable).  The core's page
# tables name machine frames (read through .xsr.p2m), the save's pfns.
# Without the guest's debug vmlinux (tests/xen/vmlinux.inc) only the
# structure is checked, and a SKIPPED line says so.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-paging
. tests/xen/lib.inc
# is DESCRIPTION GOT WANT
is() { if [ "$2" = "$3" ]; then ok "$1 ($2)"; else ko "$1: got '$2', want '$3'"; fi; }
rm -rf "$B" && mkdir -p "$B"

# jiffies_64 in the xl dump-core, as crash reads it from the original file
CORE_JIFFIES=4294901056
RELEASE=6.1.0-56-amd64

. tests/xen/vmlinux.inc
VMLINUX=$(golden_vmlinux gdb "gdb vmlinux on the paging views") || VMLINUX=""

# What gdb prints from vmlinux alone: the initial value the dump must not give.
if [ -n "$VMLINUX" ]; then
	BASE=$(gdb -nx -batch -ex 'p jiffies_64' "$VMLINUX" 2>/dev/null | sed -n 's/^\$1 = //p')
	check "gdb vmlinux alone prints an initial jiffies_64 ($BASE)" test -n "$BASE"
fi

# json FILE KEY: a number from convert --json
# json FILE KEY: the value, or "<no KEY in FILE>" (so two absent keys never compare equal);
# 64-bit values come as "0x..." or decimal strings (xsr(1), JSON OUTPUT): printed in decimal
json() { python3 -c 'import json,re,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2]; v=d.get(k, "<no %s in %s>" % (k, sys.argv[1])); v=int(v, 0) if isinstance(v, str) and re.fullmatch(r"0x[0-9a-f]+|[0-9]+", v) else v; print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2" 2>&1; }

# gdbread CORE: the dump's values through the kernel image and the direct map
gdbread() {
	gdb -nx -batch \
		-ex 'p jiffies_64' \
		-ex 'printf "release %s\n", init_uts_ns.name.release' \
		-ex 'printf "direct %lu\n", *(unsigned long *)(0xffff888000000000 + (unsigned long)&jiffies_64 - 0xffffffff80000000 + phys_base)' \
		-ex 'printf "next 0x%lx\n", (unsigned long)init_task.tasks.next' \
		-ex 'printf "back %d\n", init_task.tasks.next->prev == &init_task.tasks' \
		-ex 'printf "comm %s\n", (char *)init_task.tasks.next - ((char *)&init_task.tasks - (char *)&init_task) + ((char *)&init_task.comm - (char *)&init_task)' \
		"$VMLINUX" "$1" 2>&1
}

# paging NAME GOLDEN KIND: import, paging view, structure, and gdb when vmlinux is there
paging() {
	local name=$1 golden=$2 kind=$3 want=${4:-}
	local in=$B/$name.xen img=$B/$name.elf pv=$B/$name.paging.elf
	if [ ! -f "$golden" ]; then
		ko "golden $golden missing"
		return
	fi
	zstd -q -d -c "$golden" >"$in"
	check "$name: import" "$X" import "$in" "$img"
	check "$name: convert --paging" "$X" convert --paging "$img" "$pv"
	"$X" convert --paging --json "$img" "$B/$name.tmp.elf" >"$B/$name.json" 2>&1
	check "$name: convert --paging --json is JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$B/$name.json"
	rm -f "$B/$name.tmp.elf"
	check "$name: the paging view verifies" "$X" verify -q "$pv"
	check "$name: readelf -lW shows a PT_LOAD at the kernel image 0xffffffff81000000" bash -c \
		"readelf -lW '$pv' | grep -qE '^ +LOAD +0x[0-9a-f]+ 0xffffffff81000000 '"
	check "$name: readelf -lW shows a PT_LOAD at the direct map 0xffff888000000000" bash -c \
		"readelf -lW '$pv' | grep -qE '^ +LOAD +0x[0-9a-f]+ 0xffff888000000000 0x0+ '"
	check "$name: no PT_LOAD in Xen's slots 0xffff800000000000-0xffff87ffffffffff" bash -c \
		"! readelf -lW '$pv' | grep -qE '^ +LOAD +0x[0-9a-f]+ 0xffff8[0-7]'"
	is "$name: machine frames read through .xsr.p2m" "$(json "$B/$name.json" machine_frames)" \
		"$([ "$kind" = core ] && echo true || echo false)"
	is "$name: the direct map found at page_offset_base" "$(json "$B/$name.json" direct_map)" 18446612682070032384
	is "$name: the whole direct map kept (128 MiB)" "$(json "$B/$name.json" direct_octets)" 134217728
	is "$name: nothing of the kernel image left out" "$(json "$B/$name.json" left_out_kernel)" 0
	is "$name: nothing of the direct map left out" "$(json "$B/$name.json" left_out_direct)" 0
	is "$name: all that is left out repeats a frame (Xen's p2m list fill)" "$(json "$B/$name.json" left_out_repeats)" \
		"$(json "$B/$name.json" left_out)"
	[ -z "$VMLINUX" ] && return
	gdbread "$pv" >"$B/$name.gdb"
	local jif rel direct next back comm
	jif=$(sed -n 's/^\$1 = //p' "$B/$name.gdb")
	rel=$(sed -n 's/^release //p' "$B/$name.gdb")
	direct=$(sed -n 's/^direct //p' "$B/$name.gdb")
	next=$(sed -n 's/^next //p' "$B/$name.gdb")
	back=$(sed -n 's/^back //p' "$B/$name.gdb")
	comm=$(sed -n 's/^comm //p' "$B/$name.gdb")
	if [ -n "$want" ]; then
		is "$name: gdb vmlinux CORE: p jiffies_64 is the dump's" "$jif" "$want"
	fi
	check "$name: ... and not vmlinux's initial value $BASE ($jif)" test -n "$jif" -a "$jif" != "$BASE"
	is "$name: jiffies_64 read through the direct map = through the kernel image" "$direct" "$jif"
	# the same octets straight from the image's page (phys_base is 0 in this guest)
	local va pa
	va=$(nm "$VMLINUX" | awk '$3 == "jiffies_64" {print $1}')
	pa=$((0x$va - 0xffffffff80000000))
	local raw
	raw=$("$X" cat-page "$img" $((pa >> 12)) | od -An -tu8 -j $((pa & 4095)) -N 8 | tr -d ' ')
	is "$name: jiffies_64 = the octets of its page in the image" "$jif" "$raw"
	is "$name: init_uts_ns.name.release" "$rel" "$RELEASE"
	check "$name: init_task.tasks.next points into the direct map ($next)" bash -c "[[ '$next' == 0xffff888* ]]"
	is "$name: init_task.tasks.next->prev, read through the direct map, is &init_task.tasks" "$back" 1
	is "$name: the next task's comm, read through the direct map" "$comm" init
}

paging save "$G/xen417-rigu.save.zst" save
paging core "$G/xen417-rigu.core.zst" core "$CORE_JIFFIES"

# crash on the original xl dump-core is the reference for the core's value.
if [ -n "$VMLINUX" ] && command -v crash >/dev/null && [ -f "$B/core.xen" ]; then
	c=$(printf 'p jiffies_64\nquit\n' | timeout 300 crash -s "$VMLINUX" "$B/core.xen" 2>&1 |
		sed -n 's/^jiffies_64 = \$1 = //p')
	is "crash on the xl dump-core reads the same jiffies_64" "$c" "$CORE_JIFFIES"
elif [ -n "$VMLINUX" ]; then
	echo "SKIPPED: crash as the reference on the xl dump-core (no crash); nothing counted for it"
fi

# The gdb script's walker (xsr virt) translates the core's machine frames too.
if ! command -v gdb >/dev/null; then
	echo "SKIPPED: xsr virt on the PV core (gdb is not installed); nothing counted for it"
elif [ ! -f "$B/core.elf" ]; then
	ko "xsr virt on the PV core: $B/core.elf was not made"
else
	gdb -nx -batch -c "$B/core.elf" -ex "source $PWD/gdb-scripts/xsrelf.py" -ex 'xsr virt 0xffffffff82a079c0' \
		>"$B/virt.out" 2>&1
	check "xsr virt 0xffffffff82a079c0 on the PV core -> physical 0x2a079c0" \
		grep -q 'virtual 0xffffffff82a079c0 -> physical 0x2a079c0 ' "$B/virt.out"
fi
rm -f "$B"/*.elf "$B"/*.xen
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
