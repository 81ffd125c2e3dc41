#!/usr/bin/env bash
# Fault injection: the connection breaks (the sender's side shuts it, or the
# receiver is killed -9) at every phase of a migration, and the outcome is
# the one docs/migration-protocol.md documents:
#  - before COMMIT: the source guest runs on unharmed, the receiver keeps
#    nothing (no VMM, no socket), and a retry succeeds;
#  - in post-copy, once the guest ran on the receiver: exit 4 ("split"), the
#    source holds its copy paused; `xsr vm resume` runs it again.
# Plus hostile input: a FAULT for a pfn outside the guest, a corrupted stream.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

S=$TMP/src.sock
start_vm "$S" 16M 2
wait_moving "$S"

no_receiver_proc() { ! pgrep -f "^$XSR receive tcp:127.0.0.1:0 --control $1( |\$)" >/dev/null; }

# attempt TAG SIDE POINT EXPECT-RC MIGRATE-ARGS...
attempt() {
	local tag=$1 side=$2 point=$3 want=$4 dst=$TMP/$1.dst rc out
	shift 4
	# A case that went wrong (e.g. migrated when it should not) must not take
	# the source away from the cases after it.
	if [ ! -S "$S" ]; then
		nok "$tag: the source VM from the previous case is gone; starting a new one"
		start_vm "$S" 16M 2 && wait_moving "$S"
	fi
	if [ "$side" = receiver ]; then
		XSR_MIG_TEST_CUT_RECEIVER=$point start_receiver "$tag" --control "$dst" --once || { nok "$tag: receiver"; return; }
		out=$("$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT" "$@" 2>&1) && rc=0 || rc=$?
	else
		start_receiver "$tag" --control "$dst" --once || { nok "$tag: receiver"; return; }
		out=$(XSR_MIG_TEST_CUT_SENDER=$point "$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT" "$@" 2>&1) && rc=0 || rc=$?
	fi
	check "$tag: migrate exits $want" test "$rc" = "$want"
	[ "$rc" = "$want" ] || echo "     $out"
	check "$tag: the receiver gave up and exited" wait_gone "$RX_PID"
	check "$tag: no receiving VMM socket left" test ! -e "$dst"
	# If one is left after all, stop it: a failed case leaves nothing running.
	[ -S "$dst" ] && "$XSR" vm stop "$dst" >/dev/null 2>&1
	check "$tag: no receiving VMM process left" no_receiver_proc "$dst"
	if [ "$want" = 4 ]; then
		check "$tag: source holds the guest paused (split state)" test "$(state "$S")" = paused
		check "$tag: the message says split and how to recover" grep -q "split" <<<"$out"
		"$XSR" vm resume "$S" >/dev/null
	fi
	check "$tag: source guest runs on" wait_moving "$S"
	check "$tag: source guest_errors is 0" test "$(errors "$S")" = 0
}

attempt rx-hello receiver hello 3
attempt rx-round0 receiver round0 3
attempt rx-round1 receiver round1 3 --min-rounds 3
attempt rx-final receiver final 3
attempt rx-end receiver end 3
attempt tx-hello sender hello 3
attempt tx-round0 sender round0 3
attempt tx-round1 sender round1 3 --min-rounds 3
attempt tx-final sender final 3
attempt tx-end sender end 3
attempt rx-postcopy receiver postcopy 4 --postcopy --postcopy-rounds 0
attempt tx-postcopy sender postcopy 4 --postcopy --postcopy-rounds 0
attempt badfault receiver badfault 3 --postcopy --postcopy-rounds 0
check "badfault: refused with a clear error" grep -q "outside the guest's memory" "$TMP/src.sock.log"

# A corrupted stream: a proxy flips one octet of the sender's stream, at
# 50000 and 150000 (page data the receiver reads straight into guest memory:
# the damage must still fail the receive, not reach a guest).  Round 0 sends
# only the pages that hold data, which for the idle test guest can be fewer
# than 150000 octets in all (the flip then never happened and the guest
# migrated): the source gets 8 MiB of data first (--fill), and the proxy
# says how far the stream went, so that a flip past its end fails the test.
stop_vm "$S"
start_vm "$S" 16M 2 --fill 0.5 && wait_moving "$S"
corrupt_at() {
local at=$1
start_receiver corrupt$at --control "$TMP/corrupt$at.dst" --once
python3 - "$RX_PORT" "$at" "$TMP/proxy$at.n" >"$TMP/proxy$at.port" 2>/dev/null <<'PY' &
import socket, sys, threading
up, at = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
print(ls.getsockname()[1], flush=True)
c, _ = ls.accept(); u = socket.create_connection(("127.0.0.1", up))
def back():
    while (b := u.recv(65536)):
        c.sendall(b)
    c.close()
threading.Thread(target=back, daemon=True).start()
n = 0
while (b := c.recv(65536)):
    if n <= at < n + len(b):
        b = bytearray(b); b[at - n] ^= 0x40; b = bytes(b)
    n += len(b); u.sendall(b)
    open(sys.argv[3], 'w').write('%d\n' % n)
u.shutdown(socket.SHUT_WR)
PY
PIDS+=($!)
for ((i = 0; i < 100; i++)); do [ -s "$TMP/proxy$at.port" ] && break; sleep 0.05; done
out=$("$XSR" migrate vm:"$S" tcp:127.0.0.1:"$(cat "$TMP/proxy$at.port")" 2>&1) && rc=0 || rc=$?
check "corrupt stream at octet $at: the stream went past it ($(cat "$TMP/proxy$at.n" 2>/dev/null) octets forwarded)" \
	test "$(cat "$TMP/proxy$at.n" 2>/dev/null || echo 0)" -gt "$at"
check "corrupt stream at octet $at: migrate exits 3" test "$rc" = 3
check "  ... the receiver names the damage" grep -q "checksum mismatch" <<<"$out"
wait_gone "$RX_PID" || true
check "  ... nothing kept on the receiver" test ! -e "$TMP/corrupt$at.dst"
check "  ... source guest runs on" wait_moving "$S"
}
corrupt_at 50000
corrupt_at 150000

# After all that, a clean migration of the same guest succeeds.
start_receiver retry --control "$TMP/retry.dst" --once
check "retry after every failure succeeds" "$XSR" migrate vm:"$S" tcp:127.0.0.1:"$RX_PORT"
wait_gone "$RX_PID" || true
rx_vm_pid >/dev/null
check "  ... counting with guest_errors 0" bash -c "[ \"\$('$XSR' vm status '$TMP/retry.dst' --json | jq -r .errors)\" = 0 ]"
stop_vm "$TMP/retry.dst"
finish
