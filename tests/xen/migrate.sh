#!/bin/bash
# Migration of a Xen domain (xsr migrate DOMID / xsr receive --xen), on the
# host: the real `xl save` of tests/xen/golden stands in for libxl's suspend
# (test hook XSR_MIG_TEST_XEN_SOURCE), so the sender's transcode, the
# protocol over real loopback TCP and the receiver run as in dom0; the rig
# (make check-xen) runs the same against a real Xen.  Every process started
# here is stopped here, by PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
X=$PWD/bin/xsr
G=$PWD/tests/xen/golden
B=$PWD/tests/build/xen-migrate
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
ko() { fail=$((fail + 1)); echo "FAIL $*"; }
rm -rf "$B" && mkdir -p "$B"
zstd -q -d -c "$G/xen417-rigu.save.zst" >"$B/rigu.save"
RPID=""
cleanup() { [ -n "$RPID" ] && kill "$RPID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# start_receiver ARGS...: xsr receive on an ephemeral loopback port; sets RPID and PORT
start_receiver() {
	rm -f "$B/recv.out" "$B/recv.err"
	"$X" receive tcp:127.0.0.1:0 --once "$@" >"$B/recv.out" 2>"$B/recv.err" &
	RPID=$!
	PORT=""
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$B/recv.err" 2>/dev/null | head -n1)
		[ -n "$PORT" ] && return 0
		sleep 0.05
	done
	return 1
}
# wait_receiver: its exit status, killing it after 60 s
wait_receiver() {
	local i
	for i in $(seq 1 600); do
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$RPID" 2>/dev/null
	wait "$RPID"
	local rc=$?
	RPID=""
	return $rc
}

# 1. the whole domain arrives: the received image exports to the xl save, byte for byte
for comp in none zstd lz4; do
	rm -f "$B/in.xsr" "$B/in.save" "$B/total-$comp"
	start_receiver --to-file "$B/in.xsr" --json || { ko "$comp: receiver did not start"; continue; }
	XSR_MIG_TEST_XEN_SOURCE="$B/rigu.save" "$X" migrate 7 "tcp:127.0.0.1:$PORT" --compress "$comp" --json \
		>"$B/mig.json" 2>"$B/mig.err"
	src=$?
	wait_receiver
	rrc=$?
	if [ $src = 0 ] && [ $rrc = 0 ]; then ok "$comp: migrate and receive exit 0"; else
		ko "$comp: migrate $src, receive $rrc"; cat "$B/mig.err" "$B/recv.err"; continue; fi
	sed -n 's/.*"total_bytes":"\([0-9]*\)".*/\1/p' "$B/mig.json" >"$B/total-$comp" # a string (xsr(1), JSON OUTPUT)
	grep -q '"mode":"stop-and-copy"' "$B/mig.json" && grep -q '"pages":"32768"' "$B/mig.json" &&
		ok "$comp: --json says stop-and-copy and 32768 pages" || { ko "$comp: --json"; cat "$B/mig.json"; }
	"$X" verify "$B/in.xsr" >/dev/null 2>&1 && ok "$comp: the received image verifies" || ko "$comp: xsr verify"
	"$X" info "$B/in.xsr" | grep -q 'L4TAB|pinned 7' && ok "$comp: Xen page types arrived (L4TAB|pinned 7)" ||
		ko "$comp: page types lost: $("$X" info "$B/in.xsr" | grep 'by Xen type')"
	"$X" export "$B/in.xsr" "$B/in.save" 2>/dev/null && cmp -s "$B/in.save" "$B/rigu.save" &&
		ok "$comp: export of the received image is the xl save, byte for byte" || ko "$comp: export differs"
done
# Half the guest's pages are zero, so even an uncompressed migration sends
# fewer octets than its memory: each compressor is compared with "none".
none=$(cat "$B/total-none" 2>/dev/null)
for comp in zstd lz4; do
	t=$(cat "$B/total-$comp" 2>/dev/null)
	if [ -n "$none" ] && [ -n "$t" ] && [ "$t" -lt $((none * 9 / 10)) ]; then
		ok "$comp: at least 10 % fewer octets on the wire than uncompressed ($t < $none)"
	else
		ko "$comp: total_bytes '$t', uncompressed '$none'"
	fi
done

# 2. the connection breaks before HELLO: the sender fails (exit 3) and the receiver keeps nothing
rm -f "$B/cut.xsr"
start_receiver --to-file "$B/cut.xsr"
XSR_MIG_TEST_CUT_SENDER=hello XSR_MIG_TEST_XEN_SOURCE="$B/rigu.save" "$X" migrate 7 "tcp:127.0.0.1:$PORT" \
	>/dev/null 2>"$B/mig.err"
src=$?
wait_receiver
rrc=$?
if [ $src = 3 ] && [ $rrc != 0 ] && [ ! -e "$B/cut.xsr" ] && grep -q 'domain 7' "$B/mig.err"; then
	ok "cut before HELLO: sender exit 3 naming the domain, receiver failed, no file ($(head -c 160 "$B/mig.err"))"
else
	ko "cut before HELLO: sender $src, receiver $rrc, file $(ls "$B/cut.xsr" 2>&1)"
	cat "$B/mig.err"
fi

# 3. --xen without a hypervisor (this host): the receiver fails at the restore and says why;
#    the sender learns it from the receiver's ERROR
start_receiver --xen
XSR_MIG_TEST_XEN_SOURCE="$B/rigu.save" "$X" migrate 7 "tcp:127.0.0.1:$PORT" >/dev/null 2>"$B/mig.err"
src=$?
wait_receiver
rrc=$?
if [ -e /proc/xen/capabilities ] && grep -q control_d /proc/xen/capabilities; then
	echo "SKIPPED: --xen failure path: this is a Xen dom0 (the rig covers --xen)"
elif [ $src = 3 ] && [ $rrc != 0 ] && grep -q 'receiver failed: storing the image failed: .*libxl' "$B/mig.err" && grep -q 'libxl' "$B/recv.err"; then
	ok "receive --xen without Xen: both sides fail with the reason ($(head -c 200 "$B/mig.err"))"
else
	ko "receive --xen without Xen: sender $src, receiver $rrc"
	cat "$B/mig.err" "$B/recv.err"
fi

# 4. usage errors name what was wrong
"$X" migrate 7 tcp:127.0.0.1:1 --postcopy >/dev/null 2>"$B/u.err"
[ $? = 2 ] && grep -q 'vm:SOCK guests' "$B/u.err" && ok "migrate DOMID --postcopy: usage error" || ko "migrate DOMID --postcopy: $(cat "$B/u.err")"
"$X" receive tcp:127.0.0.1:0 --xen --to-file x >/dev/null 2>"$B/u.err"
[ $? = 2 ] && grep -q 'exactly one of' "$B/u.err" && ok "receive --xen --to-file: usage error" || ko "receive --xen --to-file"
"$X" receive tcp:127.0.0.1:0 --to-file x --paused >/dev/null 2>"$B/u.err"
[ $? = 2 ] && grep -q -- '--paused is for --xen' "$B/u.err" && ok "receive --paused without --xen: usage error" || ko "receive --paused"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
