#!/bin/bash
# tests/kvm-rig/rig.sh - nested KVM for machines without /dev/kvm (docs/rigs.md).
# Debian's kernel boots in qemu-system-x86_64 under TCG with -cpu max (which
# has svm and npt), loads kvm_amd, mounts this machine's root read-only over
# 9p (under a tmpfs overlay, so that the same bin/xsr, test scripts, bash,
# python3, gdb, readelf, eu-readelf, strace and sanitizer runtimes are there)
# and runs commands inside, with their output in a run directory shared
# read-write with the host.
#
#   rig.sh build              fetch and build the kernel and initramfs (cached)
#   rig.sh probe              exit 0 if the rig can run here, else print why
#   rig.sh tiers OUT T...     run test tiers (tests/*/NAME.sh, relative to the
#                             checkout) in one boot; OUT/NAME.log gets each
#                             one's output, OUT/NAME.rc its exit code
#   rig.sh exec SCRIPT [ARG...]
#                             run a bash script inside, its output on stdout
#   rig.sh clean              remove the cache
#
# Knobs: CACHE (default tests/kvm-rig/cache), RIG_MEM (QEMU -m, default 6G),
# RIG_SMP (QEMU -smp, default 1: see docs/rigs.md, two vCPUs locked up),
# RIG_TIMEOUT (s for one boot; default: every tier's time + 300 s, or 600 for exec),
# RIG_TIER_TIMEOUT (s per tier,
# default 900).  Needs root (the 9p share of / is read with root's rights).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
C=$(realpath -m "${CACHE:-$HERE/cache}")
RIG_NAME=kvm-rig
. "$TOP/tests/rig/lib.inc"
# The modules the initramfs loads, with their dependencies (in load order).
MODULES=(virtio_pci 9pnet_virtio 9p overlay kvm_amd)

probe() {
	[ "$(id -u)" = 0 ] || { echo "not root (the rig shares / read with root's rights)"; return 1; }
	command -v qemu-system-x86_64 >/dev/null || command -v apt-get >/dev/null ||
		{ echo "no qemu-system-x86_64 and no apt-get to install it"; return 1; }
	return 0
}

host_deps() {
	local need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v cpio >/dev/null || need+=(cpio)
	command -v depmod >/dev/null || need+=(kmod)
	command -v zstd >/dev/null || need+=(zstd)
	# the initramfs needs a static busybox (ldd fails on a static binary)
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
	[ ${#need[@]} -eq 0 ] || rig_apt_install "${need[@]}"
}

# The kernel tree (vmlinuz + modules) unpacked from the .deb.
build_kernel() { rig_kernel_tree "$1" "${MODULES[@]}"; }
kernel_ok() {
	[ -s "$1/vmlinuz" ] && [ -s "$1/modules.load" ] && [ -s "$1/version" ] || return 1
	local m
	for m in kvm-amd.ko 9p.ko 9pnet_virtio.ko overlay.ko; do grep -qx "$m" "$1/modules.load" || return 1; done
	while IFS= read -r m; do [ -s "$1/modules/$m" ] || return 1; done <"$1/modules.load"
}

build_initrd() {
	local out=$1 d
	d=$(mktemp -d) || return 1
	mkdir -p "$d/bin" "$d/modules" || return 1
	cp /bin/busybox "$d/bin/busybox" &&
		cp "$C/kernel/modules/"*.ko "$d/modules/" &&
		cp "$C/kernel/modules.load" "$d/modules.load" &&
		cp "$HERE/files/init" "$d/init" && chmod 755 "$d/init" &&
		(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1 >"$out")
	local rc=$?
	rm -rf "$d"
	return $rc
}
initrd_ok() { rig_cpio_ok "$1" && [ "$1" -nt "$HERE/files/init" ]; }

build() {
	local t0
	t0=$(rig_now)
	mkdir -p "$C"
	rig_step "host packages (qemu-system-x86 busybox-static cpio kmod zstd)" host_deps
	rig_step "download Debian's kernel package" rig_kernel_deb "$C/debs"
	# a new kernel package: the old tree goes
	if [ -e "$C/kernel" ] && [ "$(cat "$C/kernel/deb" 2>/dev/null)" != "${RIG_KDEB##*/}" ]; then rm -rf "$C/kernel" "$C/initrd.gz"; fi
	rig_step "unpack the kernel and its modules ($RIG_KPKG)" rig_cached "$C/kernel" kernel_ok build_kernel
	echo "${RIG_KDEB##*/}" >"$C/kernel/deb"
	rig_step "initramfs (busybox, modules, files/init)" rig_cached "$C/initrd.gz" initrd_ok build_initrd
	rig_log "build done in $(rig_since "$t0") s (kernel $(cat "$C/kernel/version"))"
}

# The hot layer, rebuilt each run (bin/xsr changes): the programs the tests
# run, their shared libraries and the dynamic loader, copied into the
# initramfs at their own paths, as the overlay's upper lower layer.  Each
# open of a file over 9p costs several round trips to QEMU (~5 ms each under
# TCG): an exec of bin/xsr, which loads ~30 libraries, took ~1 s from 9p
# alone, and the tests exec thousands of commands.  Everything else still
# comes from the host's root.
HOT_CMDS=(bash sh env cat cp mv rm mkdir rmdir mktemp ls ln head tail cut tr wc sort uniq tee touch test sleep
	date stat seq timeout id basename dirname readlink realpath truncate dd od cmp diff sha256sum md5sum numfmt
	grep sed awk jq xxd bc gdb readelf objdump eu-readelf strace pgrep ps kill mount umount setsid nproc expr
	true false xargs find chmod sync printf python3 gzip tar)
# hot_files FILE...: FILE and the libraries it loads (with the loader), one a line.
hot_files() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		echo "$f"
		[ -f "$f" ] && [ -x "$f" ] || continue
		ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'  || true # a static binary: no libraries
	done | sort -u
}
# hot_cpio OUT: the files listed on stdin, under hot/ at their own paths, as
# a zstd cpio (tests/rig/newc.py: one process).  zstd, not gzip: the rig's
# kernel unpacks it under TCG, and the firmware loads it first; both cost
# with size and with the decoder (docs/rigs.md, "Time").
hot_cpio() {
	local st
	python3 "$TOP/tests/rig/newc.py" - hot | zstd -q -3 -T0 >"$1"
	st=("${PIPESTATUS[@]}")
	[ "${st[*]}" = "0 0" ]
}
# The system part, cached: rebuilt when any command, the loader's cache or
# the installed packages change.  Listing the libraries takes an ldd per
# command (~20 s on a loaded 2-core machine), so the key is taken from what
# changes whenever a library does (/etc/ld.so.cache, dpkg's status) and the
# commands themselves, and the list is made only to build.
hot_sys_cmds() {
	local c
	for c in "${HOT_CMDS[@]}"; do
		# the command PATH finds here, and Debian's own where PATH has a wrapper first (pyenv)
		type -P "$c" || true
		[ ! -x "/usr/bin/$c" ] || echo "/usr/bin/$c"
	done | sort -u
}
hot_sys_list() { hot_sys_cmds | { mapfile -t l; hot_files "${l[@]}" /etc/ld.so.cache; }; }
hot_sys_key() {
	{ hot_sys_cmds; echo /etc/ld.so.cache; echo /var/lib/dpkg/status; echo "$TOP/tests/rig/newc.py"; } |
		xargs -d '\n' stat -L -c '%n %s %Y' 2>/dev/null | md5sum | cut -d' ' -f1
}
build_hot_sys() { hot_sys_list | hot_cpio "$1"; }
hot_sys_ok() { rig_cpio_ok "$1" && [ -s "$C/hot-sys.key" ] && [ "$(cat "$C/hot-sys.key")" = "$HOT_KEY" ]; }

# hot_layer RUNDIR: RUNDIR/initrd = the initramfs, the cached system layer,
# and this checkout's bin/xsr, guest and their libraries (a sanitizer
# build's runtimes too).
hot_layer() {
	local r=$1
	HOT_KEY=$(hot_sys_key)
	if ! hot_sys_ok "$C/hot-sys.cpio.zst"; then
		rm -f "$C/hot-sys.key" "$C/hot-sys.cpio.zst" "$C/hot-sys.cpio.gz"
		rig_cached "$C/hot-sys.cpio.zst" rig_cpio_ok build_hot_sys || return 1
		echo "$HOT_KEY" >"$C/hot-sys.key"
	fi
	hot_files "$TOP/bin/xsr" "$TOP/bin/xsr-guest.elf" | hot_cpio "$r/hot-run.cpio.zst" || return 1
	cat "$C/initrd.gz" "$C/hot-sys.cpio.zst" "$r/hot-run.cpio.zst" >"$r/initrd" && rm -f "$r/hot-run.cpio.zst"
}

# boot RUNDIR: run RUNDIR/run.sh inside; its console in RUNDIR/console.log.
boot() {
	local r=$1 t0
	t0=$(rig_now)
	rig_step "hot layer (the tests' programs and libraries)" hot_layer "$r"
	rig_log "hot layer: $(($(stat -c %s "$r/initrd") / 1048576)) MiB initramfs in $(rig_since "$t0") s"
	rig_log "booting nested KVM in TCG (console: $r/console.log)"
	rig_qemu "$r/console.log" "${RIG_TIMEOUT:-$RIG_BOOT_TIMEOUT}" RIG-DONE \
		-accel tcg,thread=multi -cpu max -smp "${RIG_SMP:-1}" -m "${RIG_MEM:-6G}" -nographic -nic none -no-reboot \
		-kernel "$C/kernel/vmlinuz" -initrd "$r/initrd" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init xsrrig=$r" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$r,mount_tag=rigio,security_model=none" || return 1
	if grep -q '^RIG-FAIL' "$r/console.log"; then
		grep '^RIG-FAIL' "$r/console.log" | sed "s/^/$RIG_NAME: /" >&2
		return 1
	fi
}

# The environment the commands inside get: this one's PATH and the test knobs.
env_file() {
	local v
	# XSR_VCPU_NICE: the test guest spins; its vCPUs (TCG threads on the
	# same two cores) must not starve the tests' own commands
	echo "export PATH='$PATH' HOME=/root TMPDIR=/tmp TERM=dumb XSR_RIG=kvm XSR_VCPU_NICE=19"
	for v in $(compgen -e); do
		case $v in
		SANITIZE | LSAN_OPTIONS | ASAN_OPTIONS | UBSAN_OPTIONS | XSR_* | CI) printf 'export %s=%q\n' "$v" "${!v}" ;;
		esac
	done
}

RIG_BOOT_TIMEOUT=600
newrun() {
	R=$C/run.$$
	rm -rf "$R" && mkdir -p "$R/out"
	RIG_CLEANUP='rm -rf "$R"'
}

tiers() {
	local out=$1 t name
	shift
	build
	newrun
	mkdir -p "$out"
	# one boot: room for every tier's own timeout
	RIG_BOOT_TIMEOUT=$((${RIG_TIER_TIMEOUT:-900} * $# + 300))
	{
		env_file
		echo "cd '$TOP'"
		cat <<'EOS'
hangdump() {
	sleep "$2" || return
	{ ps -eo pid,ppid,stat,wchan:30,etime,args; for t in /proc/[0-9]*/task/[0-9]*; do
		case $(cat "$t/comm" 2>/dev/null) in xsr*) echo "--- $t $(cat "$t/comm") $(cat "$t/wchan")"; cat "$t/stack" 2>/dev/null ;; esac
	done; } >"$1" 2>&1
}
EOS
		for t in "$@"; do
			name=${t#tests/}
			name=${name//\//_}
			name=${name%.sh}
			echo "echo \"RIG: tier $t at \$(cut -d' ' -f1 /proc/uptime) s\""
			# a tier that runs out of time leaves what every process was doing in NAME.hang
			echo "hangdump '$R/out/$name.hang' \$((${RIG_TIER_TIMEOUT:-900} - 20)) & hd=\$!"
			echo "timeout -k 10 ${RIG_TIER_TIMEOUT:-900} bash '$t' >'$R/out/$name.log' 2>&1; echo \$? >'$R/out/$name.rc'"
			echo "kill \$hd 2>/dev/null; wait \$hd 2>/dev/null"
			echo "echo \"RIG: tier $t exit \$(cat '$R/out/$name.rc') at \$(cut -d' ' -f1 /proc/uptime) s\""
		done
	} >"$R/run.sh"
	local rc=0
	boot "$R" || rc=1
	grep '^RIG' "$R/console.log" | grep -v '^RIG-DONE' | sed 's/^/    /' >&2 || true
	cp "$R"/out/* "$out/" 2>/dev/null || true
	cp "$R/console.log" "$out/console.log"
	return $rc
}

exec_script() {
	local s=$1
	shift
	build
	newrun
	# a script in this checkout runs where it is (it may find the checkout
	# from its own path); any other goes into the run directory: a path
	# under /dev/shm or /run on the host is not there inside
	local sp
	sp=$(realpath "$s") || return 1
	case $sp in
	"$TOP"/*) ;;
	*) cp "$sp" "$R/script.sh" && sp=$R/script.sh || return 1 ;;
	esac
	{
		env_file
		echo "cd '$TOP'"
		printf 'bash %q' "$sp"
		printf ' %q' "$@"
		echo " >'$R/out/stdout' 2>&1; echo \$? >'$R/out/rc'"
	} >"$R/run.sh"
	boot "$R" || { cat "$R/out/stdout" 2>/dev/null; tail -n 30 "$R/console.log" >&2; return 1; }
	cat "$R/out/stdout"
	return "$(cat "$R/out/rc" 2>/dev/null || echo 1)"
}

case "${1:-}" in
build) build ;;
probe) probe ;;
tiers) shift; tiers "$@" ;;
exec) shift; exec_script "$@" ;;
clean) rm -rf "$C" ;;
*) sed -n '2,20p' "$0"; exit 2 ;;
esac
