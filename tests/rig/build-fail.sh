#!/bin/bash
# The rigs' build steps (tests/rig/lib.inc): a step that fails stops the rig
# naming the step, and nothing from the failed attempt is reused later.
#  - rig_cached on its own: a builder that leaves 20 octets and fails, a
#    half-written entry from an earlier crash, an entry that fails its check;
#  - the KVM rig's real build with a cpio that fails (a fake on PATH): it
#    stops at the initramfs step, leaves no initrd, and the next build with
#    the real cpio makes a whole one.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
RIG_NAME=test-rig
. "$ROOT/tests/rig/lib.inc"

# --- rig_cached
ok_gz() { rig_cpio_ok "$1"; }
bad_build() { printf '12345678901234567890' >"$1"; return 1; }
good_build() {
	local d
	d=$(mktemp -d) && mkdir -p "$d/bin" && echo x >"$d/bin/a" && echo y >"$d/init" &&
		(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1 >"$1")
	local rc=$?
	rm -rf "$d"
	return $rc
}
E=$T/cache/initrd.gz
mkdir -p "$T/cache"
(rig_cached "$E" ok_gz bad_build) 2>/dev/null && rc=0 || rc=$?
check "a failed build returns failure" test "$rc" -ne 0
check "  ... and leaves no entry and no temporary" bash -c "[ ! -e '$E' ] && ! ls '$T/cache' | grep -q ."
printf '12345678901234567890' >"$E"
out=$(rig_cached "$E" ok_gz good_build 2>&1)
check "a 20-octet entry left by an earlier failure is not reused: it is rebuilt" rig_cpio_ok "$E"
check "  ... saying so" grep -q "fails its check: rebuilding" <<<"$out"
echo junk >"$E.tmp.4242"
rig_cached "$E" ok_gz good_build
check "a half-written temporary of an interrupted build is removed" test ! -e "$E.tmp.4242"
sum=$(md5sum <"$E")
rig_cached "$E" ok_gz bad_build
check "an entry that passes its check is reused (the builder is not run)" test "$(md5sum <"$E")" = "$sum"
out=$( (rig_step "step with a name" false) 2>&1) && rc=0 || rc=$?
check "rig_step: a failed step exits the rig" test "$rc" -eq 1
check "  ... naming the step" grep -q "build step 'step with a name' failed" <<<"$out"

# --- the KVM rig's build, with a fake cpio that fails
if [ "$(id -u)" != 0 ] || ! command -v qemu-system-x86_64 >/dev/null; then
	echo "SKIPPED: the KVM rig's build-failure check needs root and qemu-system-x86_64 (nothing counted for it)"
else
	mkdir -p "$T/fake" "$T/kcache"
	printf '#!/bin/sh\necho "fake cpio: failing on purpose" >&2\nexit 1\n' >"$T/fake/cpio"
	chmod +x "$T/fake/cpio"
	# the kernel package comes from the real cache when it is there (no download)
	[ -d "$ROOT/tests/kvm-rig/cache/debs" ] && cp -a "$ROOT/tests/kvm-rig/cache/debs" "$T/kcache/"
	out=$(PATH=$T/fake:$PATH CACHE=$T/kcache "$ROOT/tests/kvm-rig/rig.sh" build 2>&1) && rc=0 || rc=$?
	check "KVM rig build with a failing cpio fails" test "$rc" -ne 0
	check "  ... naming the initramfs step" grep -q "build step 'initramfs.*failed" <<<"$out"
	check "  ... leaving no initrd and no temporary of it" bash -c "! ls '$T/kcache' | grep -q '^initrd'"
	out=$(CACHE=$T/kcache "$ROOT/tests/kvm-rig/rig.sh" build 2>&1) && rc=0 || rc=$?
	check "the next build with the real cpio succeeds" test "$rc" -eq 0
	check "  ... and its initrd is a whole archive with /init" bash -c "gzip -dc '$T/kcache/initrd.gz' | cpio -t --quiet 2>/dev/null | grep -qx init"
fi
summary
