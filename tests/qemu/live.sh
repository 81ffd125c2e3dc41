#!/bin/bash
# QEMU tier: `xsr save qemu:SOCK` and `xsr core qemu:SOCK` of a running
# QEMU (issue 18, path (a): QEMU's own stream through `getfd` + `migrate
# fd:`, imported).  A BIOS-only guest runs under TCG.  A paused guest's
# image must hold the registers `info registers` prints and the memory
# dump-guest-memory writes; the guest must be left as it was (paused,
# running), QEMU's bandwidth cap put back, and --stop must end QEMU only
# after the file is safe.  QEMU is always stopped by its PID.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
HERE=$ROOT/tests/qemu
for tool in qemu-system-x86_64 python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed (tests/install-deps.sh installs qemu-system-x86)"
		summary
		exit 0
	fi
done
QPIDS=()
trap 'for p in "${QPIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
Q() { python3 "$HERE/qmpc.py" "$@"; }

# start NAME [QEMU-ARGS...]: a 64 MiB i440fx guest, its QMP socket $T/NAME.sock, pid in QPID
start() {
	local n=$1
	shift
	qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults \
		-qmp "unix:$T/$n.sock,server=on,wait=off" "$@" </dev/null >"$T/$n.log" 2>&1 &
	QPID=$!
	QPIDS+=("$QPID")
	Q "$T/$n.sock" query-status >/dev/null
}
status() { Q "$T/$1.sock" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
bandwidth() { Q "$T/$1.sock" query-migrate-parameters | python3 -c 'import json,sys; print(json.load(sys.stdin)["max-bandwidth"])'; }

# A paused guest (-S, after a second of BIOS): the image is that guest.
start p -S
Q "$T/p.sock" cont >/dev/null
sleep 1
Q "$T/p.sock" stop >/dev/null
bw0=$(bandwidth p)
Q "$T/p.sock" hmp 'info registers' >"$T/regs.txt"
Q "$T/p.sock" dump-guest-memory '{"paging": false, "protocol": "file:'"$T"'/dump.elf"}' >/dev/null
check "xsr save qemu:SOCK of a paused guest" "$XSR" save "qemu:$T/p.sock" "$T/p.elf" --json
grep -o '"pause_ms":[0-9.]*,"transcode_ms":[0-9.]*' "$T/last.out" | sed 's/^/     /'
check "the image verifies" "$XSR" verify "$T/p.elf"
check "its producer is QEMU's machine" bash -c "'$XSR' info '$T/p.elf' | grep -q 'hypervisor qemu pc-i440fx-7.2'"
check "pc.ram is dump-guest-memory's, page by page" python3 "$HERE/elfmem.py" "$T/dump.elf" "$T/p.elf" 0-4000000
"$XSR" info --json --vcpu 0 "$T/p.elf" >"$T/vcpu.json"
check "vCPU 0 is QEMU's info registers" python3 "$HERE/regs.py" "$T/regs.txt" "$T/vcpu.json"
check "the guest did not run (QEMU's state after a migration: postmigrate)" test "$(status p)" = postmigrate
"$XSR" save "qemu:$T/p.sock" "$T/p3.elf" >"$T/n.out" 2>&1
rc=$?
check "a second save of it: exit 3, saying QEMU wants it resumed first (exit $rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'postmigrate.*resume it first' '$T/n.out' && [ ! -e '$T/p3.elf' ]"
check "after cont, xsr save qemu:SOCK works again" bash -c \
	"python3 '$HERE/qmpc.py' '$T/p.sock' cont >/dev/null && '$XSR' save 'qemu:$T/p.sock' '$T/p3.elf' && '$XSR' verify '$T/p3.elf'"
check "QEMU's bandwidth cap is put back ($bw0)" test "$(bandwidth p)" = "$bw0"
# fresh TAG: run the guest a moment, pause it, and take its registers and memory as TAG.*
fresh() {
	Q "$T/p.sock" cont >/dev/null && sleep 0.3 && Q "$T/p.sock" stop >/dev/null &&
		Q "$T/p.sock" hmp 'info registers' >"$T/$1.regs" &&
		Q "$T/p.sock" dump-guest-memory '{"paging": false, "protocol": "file:'"$T/$1.dump"'"}' >/dev/null
}
if command -v gdb >/dev/null; then
	fresh c
	"$XSR" core "qemu:$T/p.sock" "$T/c.elf" >/dev/null
	"$XSR" info --json --vcpu 0 "$T/c.elf" >"$T/c.json"
	check "xsr core qemu:SOCK: vCPU 0 is info registers" python3 "$HERE/regs.py" "$T/c.regs" "$T/c.json"
	rip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rip'])" "$T/c.json")
	check "  ... and gdb reads rip $rip from it" bash -c \
		"gdb -nx -batch -c '$T/c.elf' -ex 'p/x \$rip' 2>/dev/null | grep -q '= $rip\$'"
else
	echo "SKIPPED: the core and gdb checks (gdb is not installed); nothing counted for them"
fi
fresh s
check "save to stdout (a pipe) gives a stream that verifies" \
	bash -c "'$XSR' save 'qemu:$T/p.sock' - | cat >'$T/p.xsr' && '$XSR' verify '$T/p.xsr' && '$XSR' info '$T/p.xsr' | grep -qi stream"
check "  ... holding dump-guest-memory's memory" bash -c \
	"'$XSR' convert '$T/p.xsr' '$T/p2.elf' && python3 '$HERE/elfmem.py' '$T/s.dump' '$T/p2.elf' 0-4000000"
kill "$QPID" 2>/dev/null

# A running guest: saved (stopped for it, or --live) and running again afterwards.
start r
check "the guest runs" test "$(status r)" = running
check "xsr save qemu:SOCK of a running guest" "$XSR" save "qemu:$T/r.sock" "$T/r.elf"
check "  ... verifies" "$XSR" verify "$T/r.elf"
check "  ... and the guest runs again" test "$(status r)" = running
check "xsr save --live" bash -c "'$XSR' save --live --json 'qemu:$T/r.sock' '$T/l.elf' >'$T/l.json'"
sed 's/^/     /' "$T/l.json"
check "  ... says live, verifies, and the guest runs" bash -c \
	"grep -q '\"live\":true' '$T/l.json' && '$XSR' verify '$T/l.elf' && [ \"\$(python3 '$HERE/qmpc.py' '$T/r.sock' query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = running ]"
check "xsr core of the running guest leaves it running" bash -c \
	"'$XSR' core 'qemu:$T/r.sock' '$T/rc.elf' && '$XSR' verify '$T/rc.elf' && python3 '$HERE/qmpc.py' '$T/r.sock' query-status | grep -q '\"running\": true'"
# --stop: QEMU quits, after the file is on disk
rpid=$QPID
check "xsr save --stop" "$XSR" save --stop "qemu:$T/r.sock" "$T/s.elf"
for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
check "  ... QEMU has quit" bash -c "! kill -0 $rpid 2>/dev/null"
check "  ... and the file verifies" "$XSR" verify "$T/s.elf"
check "core --stop is refused (a core never stops the guest)" bash -c "! '$XSR' core --stop 'qemu:$T/r.sock' '$T/x.elf' 2>/dev/null"

# Refusals: clear, naming the socket; nothing left behind.
"$XSR" save "qemu:$T/none.sock" "$T/n.elf" >"$T/n.out" 2>&1
rc=$?
check "no QEMU at the socket: exit 3 naming it (exit $rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'QMP socket $T/none.sock' '$T/n.out' && [ ! -e '$T/n.elf' ]"
python3 -c "
import socket, sys, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
if os.fork() == 0:
    c, _ = s.accept(); c.sendall(b'hello, not QMP\n'); c.recv(10); os._exit(0)
" "$T/fake.sock"
"$XSR" save "qemu:$T/fake.sock" "$T/n.elf" >"$T/n.out" 2>&1
rc=$?
check "a socket that is not QMP: exit 3, 'not a QMP socket' (exit $rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'not a QMP socket' '$T/n.out' && [ ! -e '$T/n.elf' ]"
# (vm takes VMM control sockets only; migrate qemu: is tests/qemu/migrate.sh's)
"$XSR" vm pause "qemu:$T/p.sock" >"$T/n.out" 2>&1
rc=$?
check "qemu: is refused by a verb that does not take it (vm pause: exit $rc)" bash -c \
	"[ $rc -eq 3 ] && grep -q 'no VMM control socket' '$T/n.out'"
summary
