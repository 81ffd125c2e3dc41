#!/bin/bash
# QEMU tier: a real Linux guest's images read by crash and drgn (issue 18).
# Debian 12's own kernel (the package linux-image-amd64 depends on, as the
# rigs fetch it: tests/rig/lib.inc) boots under TCG with a busybox initrd
# (tests/qemu/linux-init) that loads qemu_fw_cfg, so that QEMU's
# `-device vmcoreinfo` learns where the kernel's VMCOREINFO note is.  One
# boot gives three images of the same guest:
#   (c) `xsr core qemu:SOCK` of the running guest,
#   (b) `xsr import` of a `migrate exec:` stream of it,
#   (a) `xsr import` of that stream in a virsh save file (virshsave.py, gzip);
# each must carry VMCOREINFO taken from the vmcoreinfo device's section, and
# crash (`sys`, `bt`, `log`, `kmem -i`, `p jiffies_64`) and drgn (release,
# jiffies_64, the task list) must read the guest from it with the debug
# vmlinux (tests/xen/vmlinux.inc; KASLR on).  What works how is in
# docs/qemu-compat.md, "Linux guests: crash and drgn".  QEMU is stopped by
# its PID.  Knob: XSR_LINUX_CACHE (default tests/qemu/cache).
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
HERE=$ROOT/tests/qemu
C=${XSR_LINUX_CACHE:-$HERE/cache}
RIG_NAME=qemu-linux
. "$ROOT/tests/rig/lib.inc" # its EXIT trap kills RIG_QEMU_PID and runs RIG_CLEANUP
. "$ROOT/tests/xen/vmlinux.inc"
RIG_CLEANUP='rm -rf "$T"'
skip() {
	echo "SKIPPED: $*; nothing counted for it"
	summary
	exit 0
}
for tool in qemu-system-x86_64 crash cpio depmod modprobe dpkg-deb; do
	command -v "$tool" >/dev/null || skip "$tool is not installed (tests/install-deps.sh)"
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || skip "no static /bin/busybox (package busybox-static)"

# ---- the kernel, its qemu_fw_cfg module, the initrd and the debug vmlinux (cached) ----
kernel_ok() { [ -s "$1/vmlinuz" ] && [ -s "$1/version" ] && grep -qx qemu_fw_cfg.ko "$1/modules.load"; }
build_kernel() { rig_kernel_tree "$1" qemu_fw_cfg; }
build_initrd() {
	local out=$1 d
	d=$(mktemp -d) || return 1
	mkdir -p "$d/bin" "$d/modules" &&
		cp /bin/busybox "$d/bin/busybox" &&
		cp "$C/kernel/modules/"*.ko "$d/modules/" &&
		cp "$C/kernel/modules.load" "$d/modules.load" &&
		cp "$HERE/linux-init" "$d/init" && chmod 755 "$d/init" &&
		(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1 >"$out")
	local rc=$?
	rm -rf "$d"
	return $rc
}
initrd_ok() { rig_cpio_ok "$1" && [ "$1" -nt "$HERE/linux-init" ]; }
mkdir -p "$C" || skip "cannot make the cache $C"
rig_kernel_deb "$C/debs" >"$T/kdeb.log" 2>&1 || skip "Debian's kernel package cannot be fetched ($(tail -n1 "$T/kdeb.log"))"
if [ -e "$C/kernel" ] && [ "$(cat "$C/kernel/deb" 2>/dev/null)" != "${RIG_KDEB##*/}" ]; then rm -rf "$C/kernel" "$C/initrd.gz"; fi
rig_cached "$C/kernel" kernel_ok build_kernel >"$T/kbuild.log" 2>&1 || { cat "$T/kbuild.log"; skip "the kernel of $RIG_KDEB cannot be unpacked"; }
echo "${RIG_KDEB##*/}" >"$C/kernel/deb"
rig_cached "$C/initrd.gz" initrd_ok build_initrd || { bad "the initrd (busybox, qemu_fw_cfg, linux-init)"; summary; exit 1; }
KREL=$(cat "$C/kernel/version")
abi=${RIG_KPKG#linux-image-}
KVER=$(dpkg-deb -f "$RIG_KDEB" Version)
VMLINUX=$(xsr_vmlinux "${abi%-amd64}" "$KVER" 2>"$T/vmlinux.err") || skip "no debug vmlinux for $KREL $KVER ($(tail -n1 "$T/vmlinux.err"))"
DRGN_PY=
for p in python3 /usr/bin/python3; do
	"$p" -c 'import drgn' 2>/dev/null && { DRGN_PY=$p; break; }
done

# ---- one boot ----
Q() { python3 "$HERE/qmpc.py" "$T/q.sock" "$@"; }
t0=$(rig_now)
pdeath=()
command -v setpriv >/dev/null && pdeath=(setpriv --pdeathsig KILL)
"${pdeath[@]}" qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 256M -smp 1 -nographic -nodefaults -no-reboot \
	-device vmcoreinfo -serial "file:$T/console.log" -qmp "unix:$T/q.sock,server=on,wait=off" \
	-kernel "$C/kernel/vmlinuz" -initrd "$C/initrd.gz" -append "console=ttyS0 panic=-1 rdinit=/init" \
	</dev/null >"$T/qemu.log" 2>&1 &
RIG_QEMU_PID=$!
up=
for _ in $(seq 180); do
	grep -q '^LINUX-UP' "$T/console.log" 2>/dev/null && { up=1; break; }
	kill -0 "$RIG_QEMU_PID" 2>/dev/null || break
	sleep 1
done
if [ -z "$up" ]; then
	bad "Debian's $KREL boots to linux-init in TCG (console: last lines below)"
	tail -n 15 "$T/console.log" "$T/qemu.log" 2>/dev/null | sed 's/^/     /'
	summary
	exit 1
fi
echo "     booted $KREL in $(rig_since "$t0") s: $(grep '^LINUX-UP' "$T/console.log" | tr -d '\r')"
check "the guest's qemu_fw_cfg sees the vmcoreinfo device" grep -q 'LINUX-UP.*vmcoreinfo-device=present' "$T/console.log"

check "(c) xsr core qemu:SOCK of the running guest" "$XSR" core "qemu:$T/q.sock" "$T/core.elf"
check "  ... leaves it running" bash -c "python3 '$HERE/qmpc.py' '$T/q.sock' query-status | grep -q '\"running\"'"
check "(b) QEMU writes a migrate exec: stream" Q migrate "{\"uri\": \"exec:cat > $T/mig.qemu\"}"
for _ in $(seq 120); do
	Q query-migrate | grep -q '"status": "\(completed\|failed\|cancelled\)"' && break
	sleep 0.5
done
check "  ... that completes" bash -c "python3 '$HERE/qmpc.py' '$T/q.sock' query-migrate | grep -q '\"completed\"'"
check "  ... xsr import of it" "$XSR" import "$T/mig.qemu" "$T/mig.elf"
check "(a) the stream in a virsh save file (gzip), xsr import of it" bash -c \
	"python3 '$HERE/virshsave.py' '$T/mig.qemu' '$T/guest.save' gzip && '$XSR' import '$T/guest.save' '$T/virsh.elf'"
# the rest reads files only: QEMU goes now, by its PID
kill "$RIG_QEMU_PID" 2>/dev/null
wait "$RIG_QEMU_PID" 2>/dev/null
RIG_QEMU_PID=

# ---- each image: VMCOREINFO, crash, drgn ----
printf 'sys\nbt\nlog\nkmem -i\np jiffies_64\nq\n' >"$T/crash.in"
declare -A JIF
for img in core mig virsh; do
	f=$T/$img.elf
	check "$img: verifies" "$XSR" verify "$f"
	check "$img: xsr info: VMCOREINFO from the vmcoreinfo device" bash -c \
		"'$XSR' info '$f' | grep -q '^vmcoreinfo: [0-9]* octets, from the vmcoreinfo device: the guest.s note at 0x'"
	check "$img: its VMCOREINFO note says OSRELEASE=$KREL and a KERNELOFFSET (KASLR)" bash -c \
		"readelf -n '$f' | grep -q VMCOREINFO && python3 - '$f' <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(1 << 20)
i = d.find(b'VMCOREINFO\0\0')
n = struct.unpack_from('<I', d, i - 8)[0]
t = d[i + 12:i + 12 + n].decode()
assert t.startswith('OSRELEASE=$KREL\n'), t[:40]
assert 'KERNELOFFSET=' in t, 'no KERNELOFFSET'
PY"
	# crash: a physical-view ELF core is a 'netdump' to crash 8.0.2, which takes
	# the KASLR offset from VMCOREINFO only with --kaslr auto (docs/qemu-compat.md)
	nice -n 5 crash -s --kaslr auto "$VMLINUX" "$f" <"$T/crash.in" >"$T/$img.crash" 2>&1
	check "$img: crash sys: RELEASE $KREL" grep -q "RELEASE: $KREL\$" "$T/$img.crash"
	check "$img: crash bt: the active task's stack" bash -c \
		"grep -q '^PID: [0-9]* *TASK: ' '$T/$img.crash' && grep -Eq '^ #[0-9]+ \[ffff[0-9a-f]+\] [a-z_]' '$T/$img.crash'"
	check "$img: crash log: linux-init's marker" grep -q 'XSR-LINUX-MARKER-7f3a' "$T/$img.crash"
	check "$img: crash kmem -i: TOTAL MEM" grep -Eq '^ *TOTAL MEM +[0-9]+ ' "$T/$img.crash"
	JIF[$img]=$(sed -n 's/^jiffies_64 = \$[0-9]* = \([0-9]*\)$/\1/p' "$T/$img.crash")
	# INITIAL_JIFFIES is 2^32 - 300 * HZ: past it once the kernel has run
	check "$img: crash p jiffies_64 (${JIF[$img]:-none}) is past INITIAL_JIFFIES" \
		test "${JIF[$img]:-0}" -gt 4294667296
	if grep -q 'do not match\|crash: ' "$T/$img.crash"; then sed -n '/do not match\|^crash: /p' "$T/$img.crash" | head -3 | sed 's/^/     /'; fi
	if [ -z "$DRGN_PY" ]; then
		[ "$img" != core ] || echo "SKIPPED: the drgn checks (python3-drgn is not installed: tests/install-deps.sh); nothing counted for them"
		continue
	fi
	# drgn 0.0.22 reads kernel virtual addresses only through PT_LOADs that map them:
	# the physical view is not enough (docs/qemu-compat.md), the paging view is
	"$DRGN_PY" "$HERE/drgncheck.py" "$f" "$VMLINUX" >"$T/$img.drgn-phys" 2>&1
	echo "     drgn on the physical view: $(head -c 200 "$T/$img.drgn-phys")"
	check "$img: xsr convert --paging (vCPU 0's mappings)" "$XSR" convert -q --paging "$f" "$T/$img.paging.elf"
	"$DRGN_PY" "$HERE/drgncheck.py" "$T/$img.paging.elf" "$VMLINUX" >"$T/$img.drgn" 2>&1
	check "$img: drgn: a Linux kernel core, release $KREL, jiffies_64 as crash read it, the task list" \
		python3 - "$T/$img.drgn" "$KREL" "${JIF[$img]:-0}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r)
assert r.get("kernel"), "not taken as a Linux kernel core"
assert r["release"] == sys.argv[2], r["release"]
assert r["jiffies_64"] == int(sys.argv[3]), (r["jiffies_64"], sys.argv[3])
comms = {c for _, c in r["comms"]}
assert r["tasks"] >= 10 and [1, "init"] in r["comms"] and "kthreadd" in comms, r["comms"][:8]
PY
done
check "the images are in time order: jiffies_64 of the core (${JIF[core]:-}) <= the migration's (${JIF[mig]:-})" \
	test "${JIF[core]:-1}" -le "${JIF[mig]:-0}"
check "the virsh save's import holds the same jiffies_64 as the stream's" test "${JIF[virsh]:-1}" = "${JIF[mig]:-0}"

# ---- the same stream without VMCOREINFO ----
# has_vmcoreinfo is the first octet of the vmcoreinfo section's state (QEMU 7.2)
check "a stream whose vmcoreinfo device is empty imports, saying so" bash -c "
	cp '$T/mig.qemu' '$T/empty.qemu' &&
	python3 - '$T/empty.qemu' <<'PY' &&
import sys
f = open(sys.argv[1], 'r+b'); d = f.read()
i = d.index(b'\x0avmcoreinfo\x00\x00\x00\x00\x00\x00\x00\x01')  # name, instance 0, version 1
f.seek(i + 11 + 8); assert f.read(1) == b'\x01'; f.seek(i + 11 + 8); f.write(b'\x00')
PY
	'$XSR' import '$T/empty.qemu' '$T/empty.elf' && '$XSR' info '$T/empty.elf' | grep -q '^vmcoreinfo: none: the guest did not fill' &&
	! readelf -n '$T/empty.elf' | grep -q VMCOREINFO"
nice -n 5 crash -s --kaslr auto "$VMLINUX" "$T/empty.elf" <"$T/crash.in" >"$T/empty.crash" 2>&1
echo "     crash --kaslr auto without VMCOREINFO: $(grep -m1 -o 'do not match!\|RELEASE: .*' "$T/empty.crash" || echo '(neither a match nor a release)')"
if [ -n "$DRGN_PY" ] && "$XSR" convert -q --paging "$T/empty.elf" "$T/empty.paging.elf" >/dev/null 2>&1; then
	"$DRGN_PY" "$HERE/drgncheck.py" "$T/empty.paging.elf" "$VMLINUX" >"$T/empty.drgn" 2>&1
	echo "     drgn on its paging view, without VMCOREINFO: $(head -c 200 "$T/empty.drgn")"
fi
summary
