#!/bin/bash
# QEMU tier: `xsr restore FILE --qemu -- QEMU-COMMAND...` (issue 18).  The
# project's test guest runs under real QEMU (TCG, PVH entry); `xsr save
# qemu:SOCK` saves it; `xsr restore --qemu` starts a new QEMU with
# -incoming defer and sends it the image as QEMU's own stream.  The
# restored guest must hold the registers (`info registers`) and the
# counter the original had at the save, count on from there with
# guest_errors at 0, and be paused or running as asked.  An image QEMU
# cannot take, a QEMU that refuses the stream and a program that does not
# exist must each fail with a message and leave no QEMU behind.  Every QEMU
# is stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
QEMU_KILL=-9 QMP_TIMEOUT=60
. "$(dirname "$0")/lib.inc"
# A tag in every QEMU command line of this run, to find any QEMU left behind.
TAG=xsr-restore-test-$$
QARGS=(qemu-system-x86_64 -name "$TAG" -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -kernel "$GUEST")
left() { pgrep -f -- "-name $TAG" | grep -vx "$$" | wc -l; }

# The source: the guest counts, is paused, and is saved by xsr.
"${QARGS[@]}" -qmp "unix:$T/src.sock,server=on,wait=off" </dev/null >"$T/src.log" 2>&1 &
QPIDS+=($!)
for _ in $(seq 100); do
	c=$(xp "$T/src.sock" "$CPA")
	[ "$c" -gt 0 ] 2>/dev/null && break
	sleep 0.2
done
check "the guest counts under QEMU ($c)" is "$c > 0"
Q "$T/src.sock" stop >/dev/null
S=$(xp "$T/src.sock" "$CPA")
Q "$T/src.sock" hmp 'info registers' >"$T/regs-src.txt"
check "xsr save qemu:SOCK of the paused guest" "$XSR" save "qemu:$T/src.sock" "$T/img.elf"
check "the image verifies" "$XSR" verify "$T/img.elf"

# --paused: the restored guest waits, with the source's registers and counter.
"$XSR" restore "$T/img.elf" --qemu --paused --json -- "${QARGS[@]}" \
	-qmp "unix:$T/dst.sock,server=on,wait=off" >"$T/r.json" 2>"$T/r.err"
rc=$?
cat "$T/r.json" "$T/r.err" | sed 's/^/     /' | head -5
P=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/r.json" 2>/dev/null)
[ -n "$P" ] && QPIDS+=("$P")
check "xsr restore --qemu --paused --json: exit 0 and QEMU's pid ($P)" bash -c "[ $rc -eq 0 ] && [ -n '$P' ] && kill -0 '$P'"
check "the JSON says paused and how many octets went" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["paused"] is True and int(j["bytes"]) > 64 * 4096 and j["elapsed_ms"] > 0 else str(j))' "$T/r.json"
st=$(Q "$T/dst.sock" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
check "the restored QEMU is paused ($st)" test "$st" = paused
R0=$(xp "$T/dst.sock" "$CPA")
check "its counter is the one read at the save ($R0 = $S)" is "$R0 == $S && $S > 0"
Q "$T/dst.sock" hmp 'info registers' >"$T/regs-dst.txt"
check "its registers are the source's, line for line (info registers)" diff "$T/regs-src.txt" "$T/regs-dst.txt"
Q "$T/dst.sock" cont >/dev/null
for _ in $(seq 100); do
	R1=$(xp "$T/dst.sock" "$CPA")
	[ "$R1" -gt "$S" ] && break
	sleep 0.2
done
check "after cont it counts on from there ($S -> $R1)" is "$R1 > $S"
check "guest_errors is 0 after the restore" is "$(xp "$T/dst.sock" "$EPA") == 0"
kill "$P" 2>/dev/null
wait "$P" 2>/dev/null

# Without --paused the guest runs on its own; the pid is on stdout alone,
# and $(...) returns when xsr exits (QEMU does not hold xsr's stdout).
P=$(timeout 120 "$XSR" restore "$T/img.elf" --qemu -- "${QARGS[@]}" -qmp "unix:$T/run.sock,server=on,wait=off" 2>"$T/r2.err")
rc=$?
[ -n "$P" ] && QPIDS+=("$P")
check "xsr restore --qemu inside \$(...): exit 0, a pid alone on stdout ($P)" bash -c "[ $rc -eq 0 ] && [[ '$P' =~ ^[0-9]+\$ ]] && kill -0 '$P'"
for _ in $(seq 100); do
	R2=$(xp "$T/run.sock" "$CPA")
	[ "$R2" -gt "$S" ] && break
	sleep 0.2
done
check "without --paused the guest runs at once ($S -> $R2)" is "$R2 > $S"
kill "$P" 2>/dev/null
wait "$P" 2>/dev/null

# Refusals: each a message and an exit status, and no QEMU left behind.
expect_fail() { # DESC STATUS PATTERN CMD...
	local desc=$1 want=$2 pat=$3
	shift 3
	timeout 120 "$@" >"$T/f.out" 2>&1
	local rc=$?
	local n
	n=$(left)
	check "$desc: exit $want, says '$pat', no QEMU left (exit $rc, $n left)" bash -c \
		"[ $rc -eq $want ] && grep -q -- '$pat' '$T/f.out' && [ $n -eq 0 ]" || sed 's/^/     /' "$T/f.out" | head -5
}
Q "$T/src.sock" quit >/dev/null 2>&1
sleep 0.5
"$XSR" synth --mem 4M --vcpus 1 "$T/synth.elf" >/dev/null
expect_fail "an image not imported from QEMU" 3 "no QEMU stream items" \
	"$XSR" restore "$T/synth.elf" --qemu -- "${QARGS[@]}"
expect_fail "a QEMU whose RAM differs (-m 128)" 3 "QEMU refused the stream and exited" \
	"$XSR" restore "$T/img.elf" --qemu -- "${QARGS[@]/#64/128}"
expect_fail "a program that does not exist" 3 "exited" \
	"$XSR" restore "$T/img.elf" --qemu -- /nonexistent/qemu -m 64
expect_fail "a stream on stdin" 2 "not a regular file" \
	bash -c "cat '$T/img.elf' | '$XSR' restore - --qemu -- ${QARGS[*]}"
expect_fail "--qemu with --lazy" 2 "neither --control nor --lazy" \
	"$XSR" restore "$T/img.elf" --qemu --lazy -- "${QARGS[@]}"
expect_fail "--qemu without a command" 2 "expected FILE -- QEMU-COMMAND" \
	"$XSR" restore "$T/img.elf" --qemu
summary
