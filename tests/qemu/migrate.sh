#!/bin/bash
# QEMU tier: `xsr migrate qemu:SOCK tcp:HOST:PORT` to `xsr receive --qemu
# -- QEMU-COMMAND` over loopback (issue 18).  The project's test guest runs
# under real QEMU (TCG, PVH entry).  After a migration the guest must run in
# the receiver's QEMU, counting on from past the value read before, with
# guest_errors at 0, and the source QEMU must have quit; --paused must leave
# it paused.  A receiver whose QEMU refuses the stream must fail the
# migration and leave the source guest running, with no QEMU of its own
# left.  Every QEMU is stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
QEMU_KILL=-9 QMP_TIMEOUT=15
. "$(dirname "$0")/lib.inc"
status() { Q "$1" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
# past SOCK V: poll (up to 20 s) until the counter is past V; print it
past() {
	local v=-1
	for _ in $(seq 100); do
		[ -S "$1" ] || break # no QEMU there: no use waiting
		v=$(xp "$1" "$CPA")
		[ "$v" -gt "$2" ] && break
		sleep 0.2
	done
	echo "$v"
}
TAG=xsr-migrate-test-$$
QARGS=(qemu-system-x86_64 -name "$TAG" -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -kernel "$GUEST")
left() { pgrep -f -- "-name $TAG" | wc -l; }


"${QARGS[@]}" -qmp "unix:$T/a.sock,server=on,wait=off" </dev/null >"$T/a.log" 2>&1 &
APID=$!
QPIDS+=("$APID")
for _ in $(seq 100); do [ -S "$T/a.sock" ] && break; sleep 0.1; done
C0=$(past "$T/a.sock" 0)
check "the guest counts under QEMU ($C0)" is "$C0 > 0"

# 1. A running guest moves, and runs on the other side.
receiver r1 --json -- "${QARGS[@]}" -qmp "unix:$T/b.sock,server=on,wait=off"
check "xsr receive --qemu listens ($PORT)" test -n "$PORT"
timeout 300 "$XSR" migrate "qemu:$T/a.sock" "tcp:127.0.0.1:$PORT" --json >"$T/m1.json" 2>"$T/m1.err"
rc=$?
sed 's/^/     /' "$T/m1.json" "$T/m1.err" | head -4
check "xsr migrate qemu:SOCK: exit 0 ($rc)" test $rc -eq 0
timeout 60 tail --pid="$RPID" -f /dev/null
wait "$RPID"
rrc=$?
BPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/r1.out" 2>/dev/null)
[ -n "$BPID" ] && QPIDS+=("$BPID")
check "xsr receive: exit 0, JSON with the new QEMU's pid ($rrc, $BPID)" bash -c "[ $rrc -eq 0 ] && kill -0 '$BPID'"
check "the migrate JSON says QEMU and live" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["qemu"].endswith("a.sock") and j["mode"].startswith("live") and int(j["total_bytes"]) > 0 else str(j))' "$T/m1.json"
for _ in $(seq 50); do kill -0 "$APID" 2>/dev/null || break; sleep 0.2; done
check "the source QEMU quit after the hand-over" bash -c "! kill -0 $APID 2>/dev/null"
check "the guest is running on the receiver ($(status "$T/b.sock"))" test "$(status "$T/b.sock")" = running
C1=$(past "$T/b.sock" "$C0")
check "it counts on from past the source's value ($C0 -> $C1)" is "$C1 > $C0"
check "guest_errors is 0 there" is "$(xp "$T/b.sock" "$EPA") == 0"

# 2. Back again, --paused: it waits, then runs on cont.
receiver r2 --paused -- "${QARGS[@]}" -qmp "unix:$T/c.sock,server=on,wait=off"
timeout 300 "$XSR" migrate "qemu:$T/b.sock" "tcp:127.0.0.1:$PORT" >"$T/m2.out" 2>&1
rc=$?
timeout 60 tail --pid="$RPID" -f /dev/null
wait "$RPID"
rrc=$?
CPID=$(head -n1 "$T/r2.out")
[ -n "$CPID" ] && QPIDS+=("$CPID")
check "a second migration, receiver --paused: exit 0 both ($rc, $rrc), a pid ($CPID)" bash -c \
	"[ $rc -eq 0 ] && [ $rrc -eq 0 ] && kill -0 '$CPID'"
check "the guest is paused there ($(status "$T/c.sock"))" test "$(status "$T/c.sock")" = paused
P1=$(xp "$T/c.sock" "$CPA")
sleep 1
check "its counter holds while paused ($P1 = $(xp "$T/c.sock" "$CPA")), past the first side's ($C1)" \
	is "$P1 == $(xp "$T/c.sock" "$CPA") && $P1 > $C1"
Q "$T/c.sock" cont >/dev/null
C2=$(past "$T/c.sock" "$P1")
check "after cont it counts on ($P1 -> $C2)" is "$C2 > $P1"

# 3. A receiver whose QEMU refuses the stream (-m 128): the source runs on.
receiver r3 -- "${QARGS[@]/#64/128}"
timeout 300 "$XSR" migrate "qemu:$T/c.sock" "tcp:127.0.0.1:$PORT" >"$T/m3.out" 2>&1
rc=$?
timeout 60 tail --pid="$RPID" -f /dev/null
wait "$RPID"
rrc=$?
sed 's/^/     /' "$T/m3.out" | head -3
check "a receiver's QEMU that refuses: migrate exit 3, receive exit 3 ($rc, $rrc)" bash -c "[ $rc -eq 3 ] && [ $rrc -eq 3 ]"
check "... the receiver says QEMU refused the stream" grep -q "QEMU refused the stream and exited" "$T/r3.err"
check "... the source guest is running again ($(status "$T/c.sock"))" test "$(status "$T/c.sock")" = running
C3=$(past "$T/c.sock" "$C2")
check "... and counting ($C2 -> $C3)" is "$C3 > $C2"
check "... the receiver left no QEMU of its own ($(($(left) - 1)) besides the source)" test "$(left)" -eq 1

# 4. Nobody listening: a clear error, the guest untouched.
"$XSR" migrate "qemu:$T/c.sock" tcp:127.0.0.1:1 >"$T/m4.out" 2>&1
rc=$?
check "no receiver: exit 3 naming the address ($rc)" bash -c "[ $rc -eq 3 ] && grep -q '127.0.0.1:1' '$T/m4.out'"
check "... the guest still runs" test "$(status "$T/c.sock")" = running
"$XSR" migrate "qemu:$T/c.sock" tcp:127.0.0.1:1 --postcopy >"$T/m5.out" 2>&1
rc=$?
check "--postcopy with qemu:SOCK: exit 2, saying QEMU pre-copies by itself ($rc)" bash -c \
	"[ $rc -eq 2 ] && grep -q 'QEMU pre-copies by itself' '$T/m5.out'"
summary
