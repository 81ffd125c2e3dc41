# tests/rig/lib.sh - what the Xen rig (tests/xen-rig) and the KVM rig
# (tests/kvm-rig) have in common, sourced by both (docs/rigs.md):
#
#   rig_step NAME CMD...      run one build step; if it fails, say which step
#                             and exit the rig at once (exit 1)
#   rig_apt_install PKG...    apt-get install what is missing, waiting for the
#                             dpkg lock instead of failing, retried
#   rig_download DIR PKG...   apt-get download into DIR, retried; a .deb is
#                             moved into DIR only once it is whole
#   rig_cached PATH CHECK BUILD
#                             PATH is a cache entry: reuse it only when CHECK
#                             (a command, given PATH) accepts it; otherwise
#                             BUILD (given a temporary name beside PATH) makes
#                             it, CHECK must accept the result, and only then
#                             is it renamed to PATH.  A failed or interrupted
#                             build leaves nothing that a later run reuses.
#   rig_kernel_deb DIR        download Debian's current linux-image-amd64
#                             kernel into DIR; sets RIG_KPKG, RIG_KDEB
#   rig_qemu LOG TIMEOUT DONE QEMU-ARGS...
#                             run QEMU in the background with its console in
#                             LOG, watched by PID: killed TIMEOUT s after the
#                             start, on a panic, or 20 s after the line DONE
#                             shows up without a power-off; returns 0 when
#                             DONE was seen and no panic/timeout happened
#
# Set RIG_NAME (for messages) before sourcing.  Needs bash.

RIG_NAME=${RIG_NAME:-rig}
rig_log() { echo "[$RIG_NAME $(date +%H:%M:%S)] $*" >&2; }
rig_now() { date +%s.%N; }
rig_since() { awk -v a="$1" -v b="$(rig_now)" 'BEGIN{printf "%.1f", b-a}'; }

# rig_step NAME CMD...: a build step that stops the rig, naming itself, when it fails.
rig_step() {
	local name=$1 rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "$RIG_NAME: build step '$name' failed (exit $rc); nothing from it is kept in the cache" >&2
		exit 1
	fi
}

# rig_retry N CMD...: up to N tries, 2 s, 4 s, ... apart.
rig_retry() {
	local n=$1 i rc=0
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		rc=$?
		[ "$i" -lt "$n" ] && { rig_log "try $i of $n failed (exit $rc): $*; again in $((2 * i)) s"; sleep $((2 * i)); }
	done
	return "$rc"
}

RIG_APT=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
_rig_apt_updated=
rig_apt_install() {
	local need=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
	done
	[ ${#need[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "$RIG_NAME: needs ${need[*]} installed (not root: cannot apt-get install)" >&2
		return 1
	fi
	rig_log "installing on the host: ${need[*]}"
	if [ -z "$_rig_apt_updated" ]; then
		rig_retry 3 apt-get "${RIG_APT[@]}" update -qq >&2 || return 1
		_rig_apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive rig_retry 3 apt-get "${RIG_APT[@]}" install -y -q --no-install-recommends "${need[@]}" >&2
}

# rig_download DIR PKG...: each package's .deb lands in DIR whole, or not at all.
rig_download() {
	local dir=$1 tmp rc=0
	shift
	mkdir -p "$dir" || return 1
	tmp=$(mktemp -d "$dir/.download.XXXXXX") || return 1
	# apt drops root for the download; the _apt user must be able to write there
	chmod 755 "$tmp"
	chown _apt "$tmp" 2>/dev/null || true
	(cd "$tmp" && rig_retry 3 apt-get "${RIG_APT[@]}" download -q "$@" >&2) || rc=$?
	if [ "$rc" -eq 0 ]; then
		local f
		for f in "$tmp"/*.deb; do
			[ -e "$f" ] || { rc=1; break; }
			dpkg-deb -f "$f" Package >/dev/null 2>&1 || { rig_log "damaged download: ${f##*/}"; rc=1; break; }
			mv -f "$f" "$dir/"
		done
	fi
	rm -rf "$tmp"
	return "$rc"
}

# rig_cached PATH CHECK BUILD: see the head of this file.
rig_cached() {
	local path=$1 check=$2 build=$3 tmp
	rm -rf "$path".tmp.* 2>/dev/null # what a build that was interrupted left
	if [ -e "$path" ]; then
		"$check" "$path" >/dev/null 2>&1 && return 0
		rig_log "cache entry $path fails its check: rebuilding it"
		rm -rf "$path"
	fi
	tmp=$path.tmp.$$
	"$build" "$tmp" || { rm -rf "$tmp"; return 1; }
	if ! "$check" "$tmp"; then
		rig_log "the new $path fails its check: not kept"
		rm -rf "$tmp"
		return 1
	fi
	mv -f "$tmp" "$path"
}

# Checks for rig_cached.
rig_nonempty() { [ -s "$1" ]; }
rig_is_deb() { dpkg-deb -f "$1" Package >/dev/null 2>&1; }
# a compressed cpio: the whole archive decompresses and lists
rig_cpio_ok() {
	local n
	case $1 in
	*.zst | *.zst.tmp.*) n=$(zstd -dc "$1" 2>/dev/null | cpio -t --quiet 2>/dev/null | wc -l) ;;
	*) n=$(gzip -dc "$1" 2>/dev/null | cpio -t --quiet 2>/dev/null | wc -l) ;;
	esac
	[ "${n:-0}" -gt 2 ]
}

# rig_kernel_deb DIR: the package linux-image-amd64 points at, downloaded once.
rig_kernel_deb() {
	local dir=$1
	RIG_KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
	if [ -z "$RIG_KPKG" ]; then
		rig_retry 3 apt-get "${RIG_APT[@]}" update -qq >&2 || return 1
		RIG_KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
	fi
	[ -n "$RIG_KPKG" ] || { echo "$RIG_NAME: apt knows no linux-image-amd64 (apt-get update?)" >&2; return 1; }
	RIG_KDEB=$(ls "$dir/${RIG_KPKG}"_*.deb 2>/dev/null | head -1)
	if [ -z "$RIG_KDEB" ] || ! rig_is_deb "$RIG_KDEB"; then
		rm -f "$dir/${RIG_KPKG}"_*.deb
		rig_log "apt-get download $RIG_KPKG"
		rig_download "$dir" "$RIG_KPKG" || return 1
		RIG_KDEB=$(ls "$dir/${RIG_KPKG}"_*.deb | head -1)
	fi
}

# rig_qemu LOG TIMEOUT DONE QEMU-ARGS...: see the head of this file.
RIG_QEMU_PID=
rig_qemu() {
	local log=$1 timeout=$2 done_mark=$3 t0 el done_at="" why=""
	shift 3
	t0=$(rig_now)
	qemu-system-x86_64 "$@" </dev/null >"$log" 2>&1 &
	RIG_QEMU_PID=$!
	while kill -0 "$RIG_QEMU_PID" 2>/dev/null; do
		sleep 1
		el=$(rig_since "$t0")
		el=${el%.*}
		if [ -z "$done_at" ] && grep -q "$done_mark" "$log"; then done_at=$el; fi
		if [ -n "$done_at" ] && [ $((el - done_at)) -gt 20 ]; then
			rig_log "no power-off 20 s after $done_mark: killing QEMU $RIG_QEMU_PID"
			break
		fi
		if grep -qE 'Panic on CPU|Kernel panic|KVM internal error' "$log"; then
			why="a panic (see $log)"
			break
		fi
		if [ "$el" -gt "$timeout" ]; then
			why="the timeout of $timeout s"
			break
		fi
	done
	[ -z "$why" ] || rig_log "$why: killing QEMU $RIG_QEMU_PID"
	kill -9 "$RIG_QEMU_PID" 2>/dev/null || true
	wait "$RIG_QEMU_PID" 2>/dev/null || true
	rig_log "QEMU ran $(rig_since "$t0") s"
	RIG_QEMU_PID=
	[ -z "$why" ] || return 1
	# QEMU that ended before the command list did is not a pass either
	grep -q "$done_mark" "$log" || { rig_log "QEMU ended before $done_mark (see $log)"; return 1; }
}
