# Helpers of the rig's command lists (files/acceptance.sh, files/xenstore.sh),
# sourced in dom0 from $IN (rig.sh copies this file there).
LOG=/var/log/xen/console/guest-rigu.log
# xenconsoled names a domain's log when it sees the domain: one restored by
# `xsr receive --xen` as rigu--incoming logs to guest-rigu--incoming.log
LOGS=/var/log/xen/console/guest-rigu*.log
now() { date +%s.%N; }
timed() { # timed NAME CMD...: run, print its time, keep its status
	local n=$1 t0 rc
	shift
	t0=$(now)
	"$@"
	rc=$?
	echo "TIMING $n $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}') rc=$rc" >&2
	return $rc
}
# the domU's latest tick: the last one in the log written last (a restore of
# an older image starts from a lower tick)
tick() { grep -o 'domU tick [0-9]*' "$(ls -t $LOGS 2>/dev/null | head -n1)" 2>/dev/null | tail -1 | awk '{print $3+0}'; }
# wait until the console shows a tick above $1 (at most $2 s)
wait_tick() {
	local i
	for i in $(seq 1 $((${2:-60} * 2))); do
		[ "$(tick)" -gt "$1" ] 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}
# the guest continued from where it was: a tick above $1 came, it never
# rebooted (one DOMU-UP), the marker and the pattern are intact
continues() {
	local before=$1 name=$2
	if ! wait_tick "$before" 40; then
		echo "ACCEPT $name: FAIL no tick above $before within 40 s (last: $(tick))"
		return 1
	fi
	local ups last
	ups=$(cat $LOGS | grep -c DOMU-UP)
	last=$(cat $LOGS | grep 'domU tick' | sort -k3,3n | tail -1)
	if [ "$ups" != 1 ]; then echo "ACCEPT $name: FAIL the guest booted again ($ups DOMU-UP lines)"; return 1; fi
	case "$last" in
	*marker=XENRIG_DOMU_MARKER_0123456789abcdef*pattern=ok*) ;;
	*) echo "ACCEPT $name: FAIL last line: $last"; return 1 ;;
	esac
	echo "ACCEPT $name: PASS ticks $before -> $(tick), marker and pattern intact ($last)"
}
gone() { ! xl list | awk 'NR>1{print $1}' | grep -qx rigu; }
domid() { xl domid rigu 2>/dev/null; }
# reap PID: wait at most 15 s for a background receiver, then kill it
reap() {
	local i
	for i in $(seq 1 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
gone_id() { ! xl list | awk 'NR>1{print $2}' | grep -qx "$1"; }
# The domU's own xenstore keys (issue 20): dom0 writes a random marker and a
# nested key whose permissions name dom0 and the domU.  xs_keys DOMID prints
# them with their permissions, the domid written as D, so that the keys of
# the saved and of the restored domain (a new domid) compare equal.  A
# restore writes nodes in path order, so xenstore-ls's order is not kept.
XS_MARK=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
xs_plant() {
	local r=/local/domain/$1
	xenstore-write $r/data/xsrelf-marker "$XS_MARK" $r/data/xsrelf/nested/key "nested-$XS_MARK" &&
		xenstore-chmod $r/data/xsrelf/nested/key n0 r$1
}
xs_keys() {
	local r=/local/domain/$1
	{
		echo "marker=$(xenstore-read $r/data/xsrelf-marker 2>&1)"
		echo "nested=$(xenstore-read $r/data/xsrelf/nested/key 2>&1)"
		# sorted: xenstored lists a directory in creation order, which a restore does not keep
		xenstore-ls -p $r/data 2>&1 | grep -E 'xsrelf|nested|key' | sed 's/^ *//' | sort
	} | sed -E "s/ (\. )+/ /; s/([nrwb])$1([,)])/\1D\2/g"
}
# xs_dropped DOMID: after xl save -> xl restore (libxl rebuilds the subtree
# from the configuration) the planted keys must be gone
xs_dropped() {
	local now
	now=$(xs_keys "$1")
	if echo "$now" | grep -q "marker=$XS_MARK"; then
		echo "ACCEPT xl-save-restore-drops-xenstore: FAIL the marker survived xl save/restore: $(echo $now)"
	else
		echo "ACCEPT xl-save-restore-drops-xenstore: PASS after xl save -> xl restore the keys are gone: $(echo $now)"
	fi
}
# xs_same NAME BEFORE DOMID: the keys of DOMID are BEFORE, marker included
xs_same() {
	local now
	now=$(xs_keys "$3")
	if [ "$now" = "$2" ] && echo "$now" | grep -q "marker=$XS_MARK" && echo "$now" | grep -q "n0,rD"; then
		echo "ACCEPT $1: PASS the marker and the nested key came back with their permissions: $(echo $now)"
	else
		echo "ACCEPT $1: FAIL before: $(echo $2); after (domain $3): $(echo $now)"
	fi
}
