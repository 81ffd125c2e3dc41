#!/bin/bash
# QEMU tier: the shared-memory path (issue 18, path (b)).  The project's
# test guest runs under real QEMU (TCG, PVH entry) with pc.ram on a shared
# memory backend (memory-backend-memfd, or -file with share=on, id=pc.ram,
# -machine memory-backend=pc.ram).  `xsr save qemu:SOCK` must take the
# shared-memory path by itself (x-ignore-shared: QEMU sends the device
# state, xsr reads pc.ram), say so, and write an image that verifies, holds
# the memory dump-guest-memory writes and the guest's counter, and restores
# both ways: natively (xsr fills the new QEMU's shared pc.ram) and through
# QEMU's stream into a QEMU without shared memory; an image of a guest
# without shared memory restores natively too.  A migration over loopback
# on the shared path must move the guest, counting on with guest_errors 0.
# Refusals (shared forced on a guest without it, a shared file truncated
# under QEMU, QEMU killed during the save) must fail with a message and exit
# 3, leaving the guest as it was.  Every QEMU is stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
QEMU_KILL=-9 QMP_TIMEOUT=30
. "$(dirname "$0")/lib.inc"
TAG=xsr-shared-test-$$
QARGS=(qemu-system-x86_64 -name "$TAG" -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -kernel "$GUEST")
MEMFD=(-object memory-backend-memfd,id=pc.ram,size=64M,share=on -machine memory-backend=pc.ram)
left() { pgrep -f -- "-name $TAG" | wc -l; }
status() { Q "$1" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
# past SOCK V: poll (up to 20 s) until the counter is past V; print it
past() {
	local v=-1
	for _ in $(seq 100); do
		[ -S "$1" ] || break
		v=$(xp "$1" "$CPA")
		[ "$v" -gt "$2" ] && break
		sleep 0.2
	done
	echo "$v"
}
sock_up() { for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.1; done; }
# boot NAME ARGS...: the guest under QEMU with QMP at $T/NAME.sock, pid in QPID, counting
boot() {
	local n=$1
	shift
	"${QARGS[@]}" "$@" -qmp "unix:$T/$n.sock,server=on,wait=off" </dev/null >"$T/$n.log" 2>&1 &
	QPID=$!
	QPIDS+=("$QPID")
	sock_up "$T/$n.sock"
	past "$T/$n.sock" 0 >/dev/null
}
# counter of the image FILE (the guest's qword at CPA), decimal
img_counter() { "$XSR" dump --paddr "$CPA" --len 8 "$1" | od -An -tu8 | tr -d ' '; }

# 1. Save on the shared path: a paused guest, against dump-guest-memory.
boot a "${MEMFD[@]}"
Q "$T/a.sock" stop >/dev/null
S=$(xp "$T/a.sock" "$CPA")
check "the guest counts with pc.ram on a memfd ($S)" is "$S > 0"
Q "$T/a.sock" dump-guest-memory '{"paging": false, "protocol": "file:'"$T"'/a.dump"}' >/dev/null
Q "$T/a.sock" hmp 'info registers' >"$T/a.regs"
check "xsr save qemu:SOCK (auto)" bash -c "'$XSR' save --json 'qemu:$T/a.sock' '$T/a.elf' >'$T/a.json'"
sed 's/^/     /' "$T/a.json"
check "  ... took the shared-memory path, and says why" bash -c \
	"[ \"\$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j[\"path\"], \"memfd\" in j[\"path_why\"])' '$T/a.json')\" = 'shared-memory True' ]"
check "  ... the image verifies" "$XSR" verify "$T/a.elf"
check "  ... xsr info says pc.ram came from shared memory" bash -c "'$XSR' info --json '$T/a.elf' | grep -q 'ram_from[^a-z]*shared memory (x-ignore-shared)'"
check "  ... pc.ram is dump-guest-memory's, page by page" python3 "$HERE/elfmem.py" "$T/a.dump" "$T/a.elf" 0-4000000
check "  ... the counter page holds the value read at the stop ($(img_counter "$T/a.elf") = $S)" \
	is "$(img_counter "$T/a.elf") == $S"
"$XSR" info --json --vcpu 0 "$T/a.elf" >"$T/a.vcpu"
check "  ... vCPU 0 is QEMU's info registers" python3 "$HERE/regs.py" "$T/a.regs" "$T/a.vcpu"
check "  ... x-ignore-shared is off again" bash -c \
	"python3 '$HERE/qmpc.py' '$T/a.sock' query-migrate-capabilities | python3 -c 'import json,sys; sys.exit(0 if not [c for c in json.load(sys.stdin) if c[\"capability\"] == \"x-ignore-shared\" and c[\"state\"]] else 1)'"
check "  ... and the guest did not run (postmigrate, as after QEMU's own save)" test "$(status "$T/a.sock")" = postmigrate
# the same guest, moments later, on QEMU's stream: the same kind of image
Q "$T/a.sock" cont >/dev/null
sleep 0.3
check "--qemu-path transcode takes QEMU's stream on the same guest" bash -c \
	"'$XSR' save --json --qemu-path transcode 'qemu:$T/a.sock' '$T/at.elf' >'$T/at.json' && grep -q '\"path\":\"transcode\"' '$T/at.json' && '$XSR' verify '$T/at.elf'"
check "  ... both images have the same sections, names and types" bash -c \
	"diff <('$XSR' info '$T/a.elf' | awk '/^  \\./ { print \$1, \$2, \$3 }') <('$XSR' info '$T/at.elf' | awk '/^  \\./ { print \$1, \$2, \$3 }')"
# x-ignore-shared left on by someone else: QEMU's stream would hold no page
# of pc.ram, so the transcoding save turns it off for its migration and back on
Q "$T/a.sock" cont >/dev/null
Q "$T/a.sock" migrate-set-capabilities '{"capabilities": [{"capability": "x-ignore-shared", "state": true}]}' >/dev/null
sleep 0.3
check "--qemu-path transcode with x-ignore-shared already on: the image holds pc.ram" bash -c \
	"'$XSR' save --qemu-path transcode 'qemu:$T/a.sock' '$T/ai.elf' && '$XSR' verify '$T/ai.elf' && [ \$('$XSR' dump --paddr $CPA --len 8 '$T/ai.elf' | od -An -tu8 | tr -d ' ') -gt $S ]"
check "  ... and x-ignore-shared is on again, as it was" bash -c \
	"python3 '$HERE/qmpc.py' '$T/a.sock' query-migrate-capabilities | grep -q '\"state\": true, \"capability\": \"x-ignore-shared\"'"
Q "$T/a.sock" migrate-set-capabilities '{"capabilities": [{"capability": "x-ignore-shared", "state": false}]}' >/dev/null
Q "$T/a.sock" cont >/dev/null
check "xsr core qemu:SOCK on the shared path leaves the guest running" bash -c \
	"'$XSR' core --json 'qemu:$T/a.sock' '$T/ac.elf' | grep -q '\"path\":\"shared-memory\"' && '$XSR' verify '$T/ac.elf' && [ \"\$(python3 '$HERE/qmpc.py' '$T/a.sock' query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = running ]"
check "save --live on auto takes QEMU's pre-copy (no dirty log of shared memory over QMP)" bash -c \
	"'$XSR' save --live --json 'qemu:$T/a.sock' '$T/al.elf' | grep -q '\"path\":\"transcode\"'"
"$XSR" save --live --qemu-path shared "qemu:$T/a.sock" "$T/x.elf" >"$T/f.out" 2>&1
rc=$?
check "save --live --qemu-path shared: exit 3, saying there is no dirty log ($rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'no dirty log' '$T/f.out' && [ ! -e '$T/x.elf' ]"
check "  ... the guest runs on" test "$(status "$T/a.sock")" = running

# 2. Restore: natively into QEMU's own memfd (added by --qemu-path shared), paused.
"$XSR" restore "$T/a.elf" --qemu --qemu-path shared --paused --json -- "${QARGS[@]}" \
	-qmp "unix:$T/r1.sock,server=on,wait=off" >"$T/r1.json" 2>"$T/r1.err"
rc=$?
P=$(jget "$T/r1.json" pid)
[ -n "$P" ] && QPIDS+=("$P")
sed 's/^/     /' "$T/r1.json" "$T/r1.err" | head -3
check "xsr restore --qemu --qemu-path shared: exit 0, path shared-memory ($rc)" bash -c \
	"[ $rc -eq 0 ] && [ \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"path\"])' '$T/r1.json')\" = shared-memory ]"
check "  ... the stream QEMU read was device state only (< 4 MiB for 64 MiB of RAM)" is "$(jget "$T/r1.json" bytes) < 4194304"
check "  ... and the new QEMU has x-ignore-shared off again (its own migrations send pc.ram)" bash -c \
	"! python3 '$HERE/qmpc.py' '$T/r1.sock' query-migrate-capabilities | grep -q '\"state\": true, \"capability\": \"x-ignore-shared\"'"
check "  ... paused, with the counter of the save ($(xp "$T/r1.sock" "$CPA") = $S)" bash -c \
	"[ \"$(status "$T/r1.sock")\" = paused ] && [ $(xp "$T/r1.sock" "$CPA") -eq $S ]"
Q "$T/r1.sock" hmp 'info registers' >"$T/r1.regs"
check "  ... with the registers of the save (info registers, line for line)" diff "$T/a.regs" "$T/r1.regs"
Q "$T/r1.sock" cont >/dev/null
C=$(past "$T/r1.sock" "$S")
check "  ... after cont it counts on ($S -> $C), guest_errors 0" bash -c "[ $C -gt $S ] && [ $(xp "$T/r1.sock" "$EPA") -eq 0 ]"
[ -n "$P" ] && kill "$P" 2>/dev/null

# the shared-path image through QEMU's stream, into a QEMU without shared memory
P=$(timeout 120 "$XSR" restore "$T/a.elf" --qemu --paused -- "${QARGS[@]}" -qmp "unix:$T/r2.sock,server=on,wait=off" 2>"$T/r2.err")
rc=$?
[ -n "$P" ] && QPIDS+=("$P")
check "the shared-path image restores through QEMU's stream (no shared memory): exit 0 ($rc)" test $rc -eq 0
check "  ... the counter of the save ($(xp "$T/r2.sock" "$CPA") = $S)" is "$(xp "$T/r2.sock" "$CPA") == $S"
Q "$T/r2.sock" cont >/dev/null
C=$(past "$T/r2.sock" "$S")
check "  ... counting on ($S -> $C), guest_errors 0" bash -c "[ $C -gt $S ] && [ $(xp "$T/r2.sock" "$EPA") -eq 0 ]"
[ -n "$P" ] && kill "$P" 2>/dev/null

# an image of a guest without shared memory (path (a)) restores natively
boot b
Q "$T/b.sock" stop >/dev/null
SB=$(xp "$T/b.sock" "$CPA")
"$XSR" save --json "qemu:$T/b.sock" "$T/b.elf" >"$T/b.json" 2>&1
check "a guest without shared memory saves on QEMU's stream (auto)" grep -q '"path":"transcode"' "$T/b.json"
kill "$QPID" 2>/dev/null
# the new QEMU's pc.ram a file the command line names (memory-backend-file, share=on)
"$XSR" restore "$T/b.elf" --qemu --paused --json -- "${QARGS[@]}" \
	-object "memory-backend-file,id=pc.ram,size=64M,share=on,mem-path=$T/ram.bin" -machine memory-backend=pc.ram \
	-qmp "unix:$T/r3.sock,server=on,wait=off" >"$T/r3.json" 2>"$T/r3.err"
rc=$?
P=$(jget "$T/r3.json" pid)
[ -n "$P" ] && QPIDS+=("$P")
check "that image into a QEMU whose pc.ram is a shared file: exit 0, shared-memory path ($rc)" bash -c \
	"[ $rc -eq 0 ] && grep -q '\"path\":\"shared-memory\"' '$T/r3.json'"
check "  ... the file holds the counter of the save, written by xsr" bash -c \
	"[ \$(od -An -tu8 -j \$(($CPA)) -N8 '$T/ram.bin' | tr -d ' ') -eq $SB ]"
Q "$T/r3.sock" cont >/dev/null
C=$(past "$T/r3.sock" "$SB")
check "  ... counting on ($SB -> $C), guest_errors 0" bash -c "[ $C -gt $SB ] && [ $(xp "$T/r3.sock" "$EPA") -eq 0 ]"
# and that guest (file-backed) saves on the shared path by itself
check "a file-backed guest saves on the shared path, naming the file" bash -c \
	"'$XSR' save --json 'qemu:$T/r3.sock' '$T/f.elf' >'$T/f.json' && grep -q '\"path\":\"shared-memory\"' '$T/f.json' && grep -q 'ram.bin' '$T/f.json' && '$XSR' verify '$T/f.elf'"

# 3. Refusals, each leaving the guest as it was.
# a restore into shared memory of another size: refused before QEMU gets a stream, and that QEMU stopped
n0=$(left)
timeout 120 "$XSR" restore "$T/a.elf" --qemu --qemu-path shared -- "${QARGS[@]/#64/128}" \
	-object memory-backend-memfd,id=pc.ram,size=128M,share=on -machine memory-backend=pc.ram >"$T/f.out" 2>&1
rc=$?
n1=$(left)
sed 's/^/     /' "$T/f.out" | head -2
check "a restore into shared pc.ram of 128 MiB from a 64 MiB image: exit 3, naming both sizes, no QEMU left ($rc; $n0 -> $n1)" bash -c \
	"[ $rc -eq 3 ] && grep -q \"image's memory is 0x4000000 octets, QEMU's pc.ram shared memory 0x8000000\" '$T/f.out' && [ $n1 -le $n0 ]"

# the output fails while pc.ram is read (after the stop and x-ignore-shared): all of it undone
XSR_FAULT=write:12:ENOSPC "$XSR" save "qemu:$T/r3.sock" "$T/x.elf" >"$T/f.out" 2>&1
rc=$?
sed 's/^/     /' "$T/f.out" | head -2
check "a write failing mid-save on the shared path: exit 3, saying so, no file ($rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'No space left' '$T/f.out' && [ ! -e '$T/x.elf' ]"
r0=$(xp "$T/r3.sock" "$CPA")
check "  ... the guest runs again ($(status "$T/r3.sock"), $r0 -> $(past "$T/r3.sock" "$r0")), x-ignore-shared off" bash -c \
	"[ \"$(status "$T/r3.sock")\" = running ] && [ $(past "$T/r3.sock" "$r0") -gt $r0 ] && ! python3 '$HERE/qmpc.py' '$T/r3.sock' query-migrate-capabilities | grep -q '\"state\": true, \"capability\": \"x-ignore-shared\"'"
boot c
"$XSR" save --qemu-path shared "qemu:$T/c.sock" "$T/x.elf" >"$T/f.out" 2>&1
rc=$?
sed 's/^/     /' "$T/f.out" | head -2
check "--qemu-path shared on a guest without shared memory: exit 3, saying share is off ($rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'shared-memory path is not possible: pc.ram' '$T/f.out' && [ ! -e '$T/x.elf' ]"
c0=$(xp "$T/c.sock" "$CPA")
check "  ... the guest runs on ($(status "$T/c.sock"), $c0 -> $(past "$T/c.sock" "$c0"))" bash -c \
	"[ \"$(status "$T/c.sock")\" = running ] && [ $(past "$T/c.sock" "$c0") -gt $c0 ]"
kill "$QPID" 2>/dev/null
# a shared file truncated under QEMU (paused: its guest would fault on the lost pages)
"${QARGS[@]}" -S -object "memory-backend-file,id=pc.ram,size=64M,share=on,mem-path=$T/small.bin" \
	-machine memory-backend=pc.ram -qmp "unix:$T/d.sock,server=on,wait=off" </dev/null >"$T/d.log" 2>&1 &
QPID=$!
QPIDS+=("$QPID")
Q "$T/d.sock" query-status >/dev/null
truncate -s 32M "$T/small.bin"
"$XSR" save "qemu:$T/d.sock" "$T/x.elf" >"$T/f.out" 2>&1
rc=$?
sed 's/^/     /' "$T/f.out" | head -2
check "a shared file smaller than pc.ram: exit 3, naming the file and both sizes ($rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'small.bin holds 33554432 octets, fewer than pc.ram.s 67108864' '$T/f.out' && [ ! -e '$T/x.elf' ]"
check "  ... QEMU is as it was (prelaunch, x-ignore-shared off)" bash -c \
	"[ \"$(status "$T/d.sock")\" = prelaunch ] && ! python3 '$HERE/qmpc.py' '$T/d.sock' query-migrate-capabilities | grep -q '\"state\": true, \"capability\": \"x-ignore-shared\"'"
kill "$QPID" 2>/dev/null
# 1 GiB of shared RAM the guest never touched: the save reads only the memfd's data (SEEK_DATA), so
# QEMU's shared memory does not grow by the holes read, and they are zero pages of the image
"${QARGS[@]/#64/1024}" -object memory-backend-memfd,id=pc.ram,size=1G,share=on -machine memory-backend=pc.ram \
	-qmp "unix:$T/e.sock,server=on,wait=off" </dev/null >"$T/e.log" 2>&1 &
EPID=$!
QPIDS+=("$EPID")
sock_up "$T/e.sock"
past "$T/e.sock" 0 >/dev/null
shmem() { awk '/^RssShmem:/ { print $2 }' "/proc/$1/status"; }
k0=$(shmem "$EPID")
check "1 GiB guest: xsr save on the shared path" bash -c "'$XSR' save --json 'qemu:$T/e.sock' '$T/g.elf' >'$T/g.json' && grep -q shared-memory '$T/g.json'"
sed 's/^/     /' "$T/g.json"
k1=$(shmem "$EPID")
check "  ... QEMU's resident shared memory stays small (${k0} kB -> ${k1} kB, < 64 MiB)" is "$k1 < 65536"
check "  ... the image has 262144 pages, nearly all zero" bash -c \
	"'$XSR' info '$T/g.elf' | grep -Eq 'pages: +262144 populated .* ([0-9]{6}) zero'"
# QEMU killed while it writes its stream into xsr: gdb stops xsr where it starts reading the stream
# (drain), QEMU is killed by its pid there, and xsr goes on
Q "$T/e.sock" cont >/dev/null
if command -v gdb >/dev/null; then
	# LeakSanitizer cannot run under ptrace (a SANITIZE=1 build would exit 1 at its end): off for this run
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		gdb -nx -batch -ex 'set breakpoint pending on' -ex 'break drain' -ex run -ex "shell kill -9 $EPID" -ex continue \
		--args "$XSR" save "qemu:$T/e.sock" "$T/e.elf" >"$T/e.out" 2>&1
	rc=$(sed -n 's/.*exited with code \([0-9]*\).*/\1/p' "$T/e.out" | tail -1)
	grep '^xsr save' "$T/e.out" | sed 's/^/     /' | head -2
	check "QEMU killed during the save: exit 3 (${rc:-none}), saying QEMU went away, no file" bash -c \
		"[ '${rc:-}' = 03 ] && grep -Eq 'Breakpoint 1, (0x[0-9a-f]+ in )?drain' '$T/e.out' && grep -Eq 'xsr save: .*(QEMU closed the connection|Connection reset|Broken pipe)' '$T/e.out' && [ ! -e '$T/e.elf' ]"
else
	echo "SKIPPED: QEMU killed during the save (gdb is not installed); nothing counted for it"
fi

# 4. Migration over loopback on the shared path.
boot m "${MEMFD[@]}"
receiver recv --json --qemu-path shared -- "${QARGS[@]}" -qmp "unix:$T/n.sock,server=on,wait=off"
M0=$(xp "$T/m.sock" "$CPA")
timeout 300 "$XSR" migrate "qemu:$T/m.sock" "tcp:127.0.0.1:$PORT" --qemu-path shared --json >"$T/mig.json" 2>"$T/mig.err"
rc=$?
timeout 60 tail --pid="$RPID" -f /dev/null
wait "$RPID"
rrc=$?
sed 's/^/     /' "$T/mig.json" "$T/recv.out" | head -3
NPID=$(jget "$T/recv.out" pid)
[ -n "$NPID" ] && QPIDS+=("$NPID")
check "xsr migrate --qemu-path shared to xsr receive --qemu-path shared: exit 0 both ($rc, $rrc)" bash -c "[ $rc -eq 0 ] && [ $rrc -eq 0 ]"
check "  ... both say shared-memory, the sender stop-and-copy" bash -c \
	"grep -q '\"path\":\"shared-memory\"' '$T/mig.json' && grep -q '\"mode\":\"stop-and-copy\"' '$T/mig.json' && grep -q '\"path\":\"shared-memory\"' '$T/recv.out'"
for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
check "  ... the source QEMU quit" bash -c "! kill -0 $QPID 2>/dev/null"
M1=$(past "$T/n.sock" "$M0")
check "  ... the guest counts on in the receiver's QEMU ($M0 -> $M1), guest_errors 0" bash -c \
	"[ $M1 -gt $M0 ] && [ $(xp "$T/n.sock" "$EPA") -eq 0 ]"
# the paths mix: QEMU's pre-copy on the sender (auto, a guest without shared memory), the shared path on the receiver
boot s
receiver recv2 --json -- "${QARGS[@]}" "${MEMFD[@]}" -qmp "unix:$T/o.sock,server=on,wait=off"
S0=$(xp "$T/s.sock" "$CPA")
timeout 300 "$XSR" migrate "qemu:$T/s.sock" "tcp:127.0.0.1:$PORT" --json >"$T/mig2.json" 2>"$T/mig2.err"
rc=$?
timeout 60 tail --pid="$RPID" -f /dev/null
wait "$RPID"
rrc=$?
OPID=$(jget "$T/recv2.out" pid)
[ -n "$OPID" ] && QPIDS+=("$OPID")
check "QEMU's pre-copy (transcode) into a receiver whose QEMU has shared pc.ram: exit 0 both ($rc, $rrc)" bash -c \
	"[ $rc -eq 0 ] && [ $rrc -eq 0 ] && grep -q '\"path\":\"transcode\"' '$T/mig2.json' && grep -q '\"path\":\"shared-memory\"' '$T/recv2.out'"
S1=$(past "$T/o.sock" "$S0")
check "  ... the guest counts on there ($S0 -> $S1), guest_errors 0" bash -c \
	"[ $S1 -gt $S0 ] && [ $(xp "$T/o.sock" "$EPA") -eq 0 ]"
[ -n "$NPID" ] && kill "$NPID" 2>/dev/null
[ -n "$OPID" ] && kill "$OPID" 2>/dev/null
sleep 0.5
check "no QEMU of this tier left but those killed at exit ($(left))" test "$(left)" -le "${#QPIDS[@]}"
summary
