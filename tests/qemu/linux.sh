#!/bin/bash
# QEMU tier: a real Linux guest's images read by crash and drgn (issue 18).
# Debian 12's own kernel (the package linux-image-amd64 depends on, as the
# rigs fetch it: tests/rig/lib.inc) boots under TCG with a busybox initrd
# (tests/qemu/linux-init) that loads qemu_fw_cfg, so that QEMU's
# `-device vmcoreinfo` learns where the kernel's VMCOREINFO note is.  One
# boot gives three images of the same guest:
#   (c) `xsr core qemu:SOCK` of the running guest,
#   (b) `xsr import` of a `migrate exec:` stream of it,
#   (a) `xsr import` of a real `virsh save` of it: the guest runs under a
#       libvirt session daemon of the test's own (tests/qemu/libvirt.inc)
#       where libvirt is installed; else QEMU runs it and (a) is the stream
#       of (b) in a virsh save file laid out by virshsave.py (gzip);
# each must carry VMCOREINFO taken from the vmcoreinfo device's section, and
# crash (`sys`, `bt`, `log`, `kmem -i`, `p jiffies_64`) and drgn (release,
# jiffies_64, the task list) must read the guest from it with the debug
# vmlinux (tests/xen/vmlinux.inc; KASLR on).  What works how is in
# docs/qemu-compat.md, "Linux guests: crash and drgn".  QEMU is stopped by
# its PID, libvirt's daemons likewise.  Knobs: XSR_LINUX_CACHE (default
# tests/qemu/cache), XSR_LINUX_LIBVIRT=0 (QEMU itself, not libvirt).
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
HERE=$ROOT/tests/qemu
C=${XSR_LINUX_CACHE:-$HERE/cache}
RIG_NAME=qemu-linux
. "$ROOT/tests/rig/lib.inc" # its EXIT trap kills RIG_QEMU_PID and runs RIG_CLEANUP
RIG_CLEANUP='rm -rf "$T"'
. "$ROOT/tests/xen/vmlinux.inc"
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
if ! rig_cached "$C/kernel" kernel_ok build_kernel >"$T/kbuild.log" 2>&1; then
	bad "unpack the kernel and qemu_fw_cfg from $RIG_KDEB"
	sed 's/^/     /' "$T/kbuild.log"
	summary
	exit 1
fi
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

# ---- one boot: under libvirt where it runs (a real `virsh save` for (a)), else QEMU itself ----
Q() { python3 "$HERE/qmpc.py" "$QSOCK" "$@"; }
. "$HERE/libvirt.inc"
LV=$T/lv
DOM=xsr-linux-test
LVMODE=
RIG_CLEANUP='[ -z "$LVMODE" ] || lv_stop; rm -rf "$T"'
# up CONSOLE: wait for linux-init's LINUX-UP (3 min at most) while QEMU (RIG_QEMU_PID) lives
up() {
	local i
	for i in $(seq 180); do
		grep -q '^LINUX-UP' "$1" 2>/dev/null && return 0
		[ -z "$RIG_QEMU_PID" ] || kill -0 "$RIG_QEMU_PID" 2>/dev/null || return 1
		sleep 1
	done
	return 1
}
# libvirt: the domain boots the same kernel, with <vmcoreinfo/> (-device
# vmcoreinfo) and ACPI (without it libvirt passes -no-acpi, and
# qemu_fw_cfg, which finds the device through ACPI, never probes); a second
# QMP socket (qemu:commandline) for xsr and the migrate exec:; QEMU's
# seccomp sandbox off, because it kills QEMU when `migrate exec:` forks
boot_libvirt() {
	mkdir -p "$LV/home/.config/libvirt" "$LV/run" "$LV/out" && chmod 700 "$LV/run" || return 1
	cp "$C/kernel/vmlinuz" "$C/initrd.gz" "$LV/" || return 1
	echo 'seccomp_sandbox = 0' >"$LV/home/.config/libvirt/qemu.conf"
	cat >"$LV/dom.xml" <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>$LV/vmlinuz</kernel><initrd>$LV/initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 rdinit=/init</cmdline></os>
  <features><acpi/><vmcoreinfo state='on'/></features>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator>
    <serial type='file'><source path='$LV/console.log'/><target port='0'/></serial>
    <memballoon model='none'/></devices>
  <qemu:commandline><qemu:arg value='-qmp'/><qemu:arg value='unix:$LV/q.sock,server=on,wait=off'/></qemu:commandline>
</domain>
XML
	chown -R "$(lv_user)" "$LV" && chmod 755 "$T" || return 1
	LVMODE=1
	QSOCK=$LV/q.sock CONSOLE=$LV/console.log MIGF=$LV/out/mig.qemu # QEMU runs as lv_user: it writes there
	V create "$LV/dom.xml" >"$T/lv-create.log" 2>&1 || { sed 's/^/     /' "$T/lv-create.log"; return 1; }
	RIG_QEMU_PID=$(cat "$LV/run/libvirt/qemu/run/$DOM.pid" 2>/dev/null)
	up "$CONSOLE"
}
boot_qemu() {
	local pdeath=()
	command -v setpriv >/dev/null && pdeath=(setpriv --pdeathsig KILL)
	QSOCK=$T/q.sock CONSOLE=$T/console.log MIGF=$T/mig.qemu
	"${pdeath[@]}" qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 256M -smp 1 -nographic -nodefaults -no-reboot \
		-device vmcoreinfo -serial "file:$CONSOLE" -qmp "unix:$QSOCK,server=on,wait=off" \
		-kernel "$C/kernel/vmlinuz" -initrd "$C/initrd.gz" -append "console=ttyS0 panic=-1 rdinit=/init" \
		</dev/null >"$T/qemu.log" 2>&1 &
	RIG_QEMU_PID=$!
	up "$CONSOLE"
}
t0=$(rig_now)
how="QEMU itself"
if [ "${XSR_LINUX_LIBVIRT:-1}" != 0 ] && command -v virsh >/dev/null && [ -x /usr/sbin/libvirtd ] &&
	{ [ "$(id -u)" -ne 0 ] || command -v runuser >/dev/null; }; then
	if boot_libvirt; then
		how="libvirt (a session of $(lv_user)'s)"
	else
		echo "     libvirt did not boot the guest (console: $(tail -n1 "$LV/console.log" 2>/dev/null)): QEMU itself instead,"
		echo "     and (a) is the stream of (b) in a virsh save file laid out by virshsave.py"
		V destroy "$DOM" >/dev/null 2>&1
		lv_stop
		LVMODE= RIG_QEMU_PID=
		t0=$(rig_now)
	fi
fi
if [ -z "$LVMODE" ] && ! boot_qemu; then
	bad "Debian's $KREL boots to linux-init in TCG (console: last lines below)"
	tail -n 15 "$CONSOLE" "$T/qemu.log" 2>/dev/null | sed 's/^/     /'
	summary
	exit 1
fi
echo "     booted $KREL under $how in $(rig_since "$t0") s: $(grep '^LINUX-UP' "$CONSOLE" | tr -d '\r')"
check "the guest's qemu_fw_cfg sees the vmcoreinfo device" grep -q 'LINUX-UP.*vmcoreinfo-device=present' "$CONSOLE"

check "(c) xsr core qemu:SOCK of the running guest" "$XSR" core "qemu:$QSOCK" "$T/core.elf"
check "  ... leaves it running" bash -c "python3 '$HERE/qmpc.py' '$QSOCK' query-status | grep -q '\"running\"'"
# QEMU's own dump-guest-memory carries the note itself: its import says so
DGM=${MIGF%/*}/dgm.elf
check "QEMU's dump-guest-memory: its import takes VMCOREINFO from the dump's note" bash -c "
	python3 '$HERE/qmpc.py' '$QSOCK' dump-guest-memory '{\"paging\": false, \"protocol\": \"file:$DGM\"}' >/dev/null &&
	'$XSR' import '$DGM' '$T/dgm.xsr' && rm -f '$DGM' &&
	'$XSR' info '$T/dgm.xsr' | grep -q '^vmcoreinfo: [0-9]* octets, from the dump.s VMCOREINFO note'"
check "(b) QEMU writes a migrate exec: stream" Q migrate "{\"uri\": \"exec:cat > $MIGF\"}"
for _ in $(seq 120); do
	Q query-migrate | grep -q '"status": "\(completed\|failed\|cancelled\)"' && break
	sleep 0.5
done
check "  ... that completes" bash -c "python3 '$HERE/qmpc.py' '$QSOCK' query-migrate | grep -q '\"completed\"'"
check "  ... xsr import of it" "$XSR" import "$MIGF" "$T/mig.elf"
if [ -n "$LVMODE" ]; then
	# the migration left the guest paused; virsh save takes it running, as a user has it
	V resume "$DOM" >/dev/null 2>&1
	check "(a) virsh save of the running domain (libvirt's own file)" V save "$DOM" "$LV/out/guest.save"
	check "  ... a LibvirtQemudSave file, xsr import of it" bash -c \
		"head -c 16 '$LV/out/guest.save' | grep -q LibvirtQemudSave && '$XSR' import '$LV/out/guest.save' '$T/virsh.elf'"
else
	check "(a) the stream in a virsh save file (virshsave.py, gzip), xsr import of it" bash -c \
		"python3 '$HERE/virshsave.py' '$MIGF' '$T/guest.save' gzip && '$XSR' import '$T/guest.save' '$T/virsh.elf'"
fi
# the rest reads files only: QEMU (and libvirt's daemons) go now, by PID
[ -z "$RIG_QEMU_PID" ] || kill "$RIG_QEMU_PID" 2>/dev/null
[ -z "$LVMODE" ] || lv_stop
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
	# crash takes the KASLR offset from VMCOREINFO by itself only from a core it
	# classes as kdump: a VMCOREINFO with KERNELOFFSET gives p_align 0 (docs/xsrelf-format.md)
	check "$img: every PT_LOAD has p_align 0 (crash's kdump class)" bash -c \
		"[ \"\$(readelf -lW '$f' | awk '\$1 == \"LOAD\" {print \$NF}' | sort -u)\" = 0 ]"
	nice -n 5 crash -s "$VMLINUX" "$f" <"$T/crash.in" >"$T/$img.crash" 2>&1
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
check "the images are in time order: jiffies_64 of the core ${JIF[core]:-} <= the migration's ${JIF[mig]:-} <= the virsh save's ${JIF[virsh]:-}" \
	bash -c "[ '${JIF[core]:-1}' -le '${JIF[mig]:-0}' ] && [ '${JIF[mig]:-1}' -le '${JIF[virsh]:-0}' ]"

# ---- the same stream without VMCOREINFO ----
# has_vmcoreinfo is the first octet of the vmcoreinfo section's state (QEMU 7.2)
check "a stream whose vmcoreinfo device is empty imports, saying so" bash -c "
	cp '$MIGF' '$T/empty.qemu' &&
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
