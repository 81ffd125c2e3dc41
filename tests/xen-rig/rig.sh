#!/bin/bash
# tests/xen-rig/rig.sh - a real Xen 4.17 (Debian 12's hypervisor) with a Debian
# 6.1 PV dom0 inside qemu-system-x86_64 (TCG), a tiny busybox PV domU, and a
# command list run in dom0 with the project's bin/xsr.  See docs/xen-rig.md.
#
#   rig.sh build          fetch and build everything into $CACHE (idempotent)
#   rig.sh run [CMDS]     build, boot, run CMDS (default files/acceptance.sh) in
#                         dom0, bring $OUT back to $CACHE/run/out, power off
#   rig.sh check          run + host-side checks (files/host-check.sh); exit 0 = pass
#   rig.sh                the make test tier: run (QUICK) + check, as root and
#                         not for a sanitizer build (docs/xen-rig.md)
#
# Knobs: CACHE (default tests/xen-rig/cache), TIMEOUT (s, default 900), GOLDEN=1
#   (bring the xl dump-core back too, for tests/xen/golden),
#   XSR (the xsr binary to put in dom0, default bin/xsr), TCG_CPU (qemu64).
# Needs root (debootstrap, chroot).  The guest has no network.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
C=${CACHE:-$HERE/cache}
F=$HERE/files
TIMEOUT=${TIMEOUT:-900}
XSR=${XSR:-$TOP/bin/xsr}
KVER_PKG=""
mkdir -p "$C"
RIG_NAME=xen-rig
. "$TOP/tests/rig/lib.inc"
log() { rig_log "$@"; }
now() { rig_now; }
since() { rig_since "$1"; }

host_deps() {
	local need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v debootstrap >/dev/null || need+=(debootstrap)
	command -v cpio >/dev/null || need+=(cpio)
	command -v zstd >/dev/null || need+=(zstd)
	command -v depmod >/dev/null || need+=(kmod)
	# the domU needs a static busybox (ldd fails on a static binary)
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
	[ ${#need[@]} -eq 0 ] || rig_apt_install "${need[@]}"
}

# Debian packages, downloaded once: the hypervisor, the kernel (dom0 and
# domU), xen-utils (host-side verify-stream-v2).
debs() {
	mkdir -p "$C/debs"
	rig_kernel_deb "$C/debs" || return 1
	KVER_PKG=$RIG_KPKG
	local want=() p
	for p in xen-hypervisor-4.17-amd64 xen-utils-4.17; do
		ls "$C"/debs/${p}_*.deb >/dev/null 2>&1 && rig_is_deb "$(ls "$C"/debs/${p}_*.deb | head -1)" ||
			{ rm -f "$C"/debs/${p}_*.deb; want+=("$p"); }
	done
	[ ${#want[@]} -eq 0 ] && return 0
	log "apt-get download ${want[*]}"
	rig_download "$C/debs" "${want[@]}"
}

unpack_xen() { local d; d=$(mktemp -d) && dpkg -x "$C"/debs/xen-hypervisor-4.17-amd64_*.deb "$d" &&
	# QEMU's multiboot loader takes the 32-bit ELF, not the .gz
	zcat "$d"/boot/xen-4.17-amd64.gz >"$1"; local rc=$?; rm -rf "$d"; return $rc; }
xen_ok() { [ -s "$1" ] && [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }
unpack_utils() { mkdir -p "$1" && dpkg -x "$C"/debs/xen-utils-4.17_*.deb "$1"; }
utils_ok() { [ -x "$1/usr/lib/xen-4.17/bin/verify-stream-v2" ]; }
unpack_kernel() { mkdir -p "$1" && dpkg -x "$C"/debs/"$KVER_PKG"_*.deb "$1"; }
kernel_ok() { ls "$1"/boot/vmlinuz-* >/dev/null 2>&1 && [ -d "$1/lib/modules" ]; }
hypervisor_and_kernel() {
	rig_cached "$C/xen" xen_ok unpack_xen || return 1
	rig_cached "$C/xen-utils" utils_ok unpack_utils || return 1
	# a kernel package that is not the unpacked one: unpack again
	if [ -d "$C/kernel" ] && ! ls "$C/kernel/boot/vmlinuz-${KVER_PKG#linux-image-}" >/dev/null 2>&1; then
		rm -rf "$C/kernel" "$C/vmlinuz"
	fi
	rig_cached "$C/kernel" kernel_ok unpack_kernel || return 1
	cp "$C"/kernel/boot/vmlinuz-* "$C/vmlinuz.tmp" && mv "$C/vmlinuz.tmp" "$C/vmlinuz"
}

# The dom0 root: debootstrap minbase + xen-utils + the runtime libraries of
# bin/xsr, trimmed, as one zstd cpio (built once; ~45 s of debootstrap).
dom0_root() { rig_cached "$C/dom0-base.cpio.zst" rig_cpio_ok build_dom0_root; }
build_dom0_root() {
	local out=$1 r="$C/dom0-root"
	rm -rf "$r"
	log "debootstrap bookworm minbase (dom0 root)"
	debootstrap --variant=minbase --include=xen-utils-4.17,libxenmisc4.17,zstd,kmod,libelf1,libxxhash0,liblz4-1,libzstd1,liblzo2-2,libbz2-1.0,liblzma5,zlib1g,util-linux,procps \
		bookworm "$r" http://deb.debian.org/debian >"$C/debootstrap.log" 2>&1 ||
		{ tail -20 "$C/debootstrap.log" >&2; return 1; }
	# xen-utils must match the hypervisor (4.17.7 from bookworm-security)
	local uv hv
	uv=$(chroot "$r" dpkg-query -W -f '${Version}' xen-utils-4.17)
	hv=$(dpkg-deb -f "$C"/debs/xen-hypervisor-4.17-amd64_*.deb Version)
	if [ "$uv" != "$hv" ]; then
		log "dom0 xen-utils $uv != hypervisor $hv: installing the security versions"
		rm -rf "$C/debs/dom0"
		rig_download "$C/debs/dom0" xen-utils-4.17 xen-utils-common libxenmisc4.17 \
			libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 \
			libxenhypfs1 libxenstore4 libxentoolcore1 libxentoollog1 || return 1
		cp "$C"/debs/dom0/*.deb "$r/tmp/" || return 1
		chroot "$r" sh -c 'dpkg -i /tmp/*.deb' >>"$C/debootstrap.log" 2>&1 || { tail -20 "$C/debootstrap.log" >&2; return 1; }
		rm -f "$r"/tmp/*.deb
		uv=$(chroot "$r" dpkg-query -W -f '${Version}' xen-utils-4.17)
		[ "$uv" = "$hv" ] || { echo "dom0 xen-utils is still $uv, the hypervisor $hv" >&2; return 1; }
	fi
	rm -rf "$r"/usr/share/{doc,man,locale,info} "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
	[ -x "$r/usr/lib/xen-4.17/bin/xl" ] || { echo "debootstrap made no xl" >&2; return 1; }
	(cd "$r" && find . -xdev | cpio -o -H newc --quiet | zstd -q -T0 -3 >"$out")
}

# The domU: busybox-static and files/domu-init, gzip cpio (~1 MB).
domu_initrd() {
	[ "$C/domu-initrd.gz" -nt "$F/domu-init" ] || rm -f "$C/domu-initrd.gz"
	rig_cached "$C/domu-initrd.gz" rig_cpio_ok build_domu_initrd
}
build_domu_initrd() {
	local out=$1 d="$C/domu-root"
	rm -rf "$d" && mkdir -p "$d"/{bin,proc,sys,dev,tmp} || return 1
	cp /bin/busybox "$d/bin/busybox" || return 1
	cp "$F/domu-init" "$d/init" && chmod +x "$d/init" || return 1
	(cd "$d" && find . | cpio -o -H newc --quiet | gzip -9 >"$out")
}

# The shared libraries bin/xsr needs that the cached dom0 root lacks (one
# added since the root was built, as liblzo2 for virsh save files): the
# host's, under usr/lib (merged /usr).  What the root has (glibc, Xen's
# libraries matched to the hypervisor) is never replaced.
overlay_libs() {
	local o=$1 have l
	have=$(zstd -dc "$C/dom0-base.cpio.zst" | cpio -t --quiet 2>/dev/null | sed 's|.*/||' | sort -u) || return 1
	for l in $(ldd "$XSR" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
		grep -qxF "$(basename "$l")" <<<"$have" && continue
		mkdir -p "$o/usr/lib/x86_64-linux-gnu" && cp -L "$l" "$o/usr/lib/x86_64-linux-gnu/" || return 1
	done
}

# The overlay (rebuilt every run, ~1 s): /init, the modules dom0 needs, the
# domU kernel + initrd, and bin/xsr.
overlay() {
	local o="$C/overlay" kv m
	rm -rf "$o" && mkdir -p "$o"/{rig,proc,sys,dev,usr/local/bin} || return 1
	kv=$(ls "$C"/kernel/lib/modules) || return 1
	for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio_blk virtio_ring virtio; do
		mkdir -p "$o/usr/lib/modules/$kv/extra"
		find "$C/kernel/lib/modules/$kv" -name "$m.ko*" -exec cp {} "$o/usr/lib/modules/$kv/extra/" \;
	done
	# the .deb has no modules.dep (merged /usr: write under usr/lib, never lib/)
	depmod -b "$o/usr" "$kv" 2>/dev/null || true
	cp "$F/dom0-init" "$o/init" && chmod +x "$o/init" &&
		cp "$C/vmlinuz" "$C/domu-initrd.gz" "$o/rig/" &&
		install -m755 "$XSR" "$o/usr/local/bin/xsr" &&
		install -m755 /bin/busybox "$o/usr/local/bin/busybox" && # static: `ip link set lo up` in dom0-init
		overlay_libs "$o" &&
		(cd "$o" && find . | cpio -o -H newc --quiet | zstd -q -3 >"$C/overlay.cpio.zst") &&
		cat "$C/dom0-base.cpio.zst" "$C/overlay.cpio.zst" >"$C/dom0-initrd"
}

build() {
	local t0
	t0=$(now)
	rig_step "host packages" host_deps
	rig_step "download the hypervisor, xen-utils and the kernel" debs
	rig_step "unpack the hypervisor, xen-utils and the kernel" hypervisor_and_kernel
	rig_step "dom0 root (debootstrap, log: $C/debootstrap.log)" dom0_root
	rig_step "domU initramfs" domu_initrd
	[ -x "$XSR" ] || { log "no $XSR: run make first"; exit 1; }
	rig_step "dom0 overlay (modules, bin/xsr)" overlay
	log "build done in $(since "$t0") s"
}

run() {
	local cmds=${1:-$F/acceptance.sh} R="$C/run" rc=0
	build
	rm -rf "$R" && mkdir -p "$R/in" "$R/out"
	cp "$cmds" "$R/in/run.sh" && chmod +x "$R/in/run.sh" && cp "$F/lib.sh" "$R/in/"
	cp "$F"/domu.cfg "$R/in/" 2>/dev/null || true
	[ -n "${GOLDEN:-}" ] && touch "$R/in/golden" # keep the xl dump-core for tests/xen/golden
	[ -n "${QUICK:-}" ] && touch "$R/in/quick" # make test: no timing rounds
	tar -cf "$R/in.tar" -C "$R/in" .
	truncate -s 2G "$R/out.img"
	log "booting (log: $R/serial.log)"
	rig_qemu "$R/serial.log" "$TIMEOUT" RIG-DONE \
		-accel tcg -cpu "${TCG_CPU:-qemu64}" -m 3G -smp 2 -nographic -nic none \
		-no-reboot -kernel "$C/xen" \
		-append "console=com1 com1=115200,8n1 dom0_mem=2048M,max:2048M dom0_max_vcpus=2 loglvl=all guest_loglvl=all console_timestamps=boot" \
		-initrd "$C/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init quiet,$C/dom0-initrd" \
		-drive file="$R/in.tar",format=raw,if=virtio,readonly=on \
		-drive file="$R/out.img",format=raw,if=virtio || rc=1
	(cd "$R/out" && tar -xf "$R/out.img") 2>/dev/null || true
	rm -f "$R/out.img"
	[ -s "$R/out/run.log" ] || { log "no run.log came back"; return 1; }
	return $rc
}

# Without arguments this is the `make test` tier (tests/run-all.sh runs every
# tests/*/*.sh): the acceptance list without the timing rounds (QUICK), then
# the host checks, counted from their ACCEPT lines.  docs/xen-rig.md has the
# measurements behind running it there.
tier() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIPPED: Xen rig (tests/xen-rig): needs root (debootstrap, chroot); run as root or: sudo make check-xen"
		return 0
	fi
	if [ "${SANITIZE:-0}" = 1 ] || ldd "$XSR" 2>/dev/null | grep -q 'libasan\|libubsan'; then
		echo "SKIPPED: Xen rig (tests/xen-rig): $XSR is a sanitizer build, whose runtime is not in dom0; the plain make test runs the rig"
		return 0
	fi
	local out rc=0
	out=$(mktemp)
	# a subshell: a build step that fails exits it, and its reason is in $out
	if ! (QUICK=1 run) >"$out" 2>&1; then rc=1; fi
	CACHE=$C "$F/host-check.sh" "$C/run/out" >>"$out" 2>&1 || rc=1
	grep -E '^(\[xen-rig|ACCEPT)' "$out" || true
	local p f
	p=$(grep -c '^ACCEPT .*: PASS' "$out" || true)
	f=$(grep -c '^ACCEPT .*: FAIL' "$out" || true)
	[ "$rc" = 0 ] || [ "$f" -gt 0 ] || f=1 # a run that broke before its checks
	# the quick list and the host checks print 39 ACCEPT lines: fewer means
	# some never ran, which is not a pass
	if [ $((p + f)) -lt 39 ]; then
		echo "FAIL: only $((p + f)) ACCEPT lines, the quick list and host checks print 39"
		f=$((f + 1))
	fi
	[ "$rc" = 0 ] || tail -n 40 "$out"
	rm -f "$out"
	echo "$p passed, $f failed"
	[ "$f" = 0 ]
}

case "${1:-tier}" in
tier) tier ;;
build) build ;;
run) shift; run "$@" ;;
check) shift; run "$@"; CACHE=$C "$F/host-check.sh" "$C/run/out" ;;
clean) rm -rf "$C" ;;
*) sed -n '2,13p' "$0"; exit 2 ;;
esac
