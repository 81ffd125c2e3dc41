#!/usr/bin/env bash
# Migration benchmark (not a test): throughput as a ratio to raw loopback TCP
# carrying the same bytes in the same run; downtime of a 1 GiB guest while the
# VMM's test-only dirtier (XSR_TEST_DIRTY_MBPS, vmm/vmm.h) rewrites guest pages
# at a set rate; total bytes as a multiple of guest memory, with and without
# compression.  The guest's own dirtying is emulated (~1 M instr/s), hence the
# dirtier.  Needs KVM; prints SKIPPED otherwise.
set -uo pipefail
. "$(dirname "$0")/../migrate/lib.inc"
. "$(dirname "$0")/lib.inc"
require_kvm
MEM=${BENCH_MIG_MEM:-1G}
RATE=${BENCH_MIG_RATE:-50}

# Raw loopback TCP: N octets from a writer to a reader, seconds.
raw_tcp() {
	python3 - "$1" <<'PY'
import socket, sys, time, threading
n = int(sys.argv[1]); buf = b"\x5a" * (1 << 20)
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def sink():
    c, _ = ls.accept(); got = 0
    while got < n:
        b = c.recv(1 << 20)
        if not b: break
        got += len(b)
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(ls.getsockname()); t0 = time.monotonic(); left = n
while left > 0:
    k = s.sendall(buf[:min(left, len(buf))]); left -= min(left, len(buf))
s.close(); t.join(); print(time.monotonic() - t0)
PY
}

# run TAG MIGRATE-ARGS...: migrate a $MEM guest with the dirtier on; JSON in $TMP/TAG.json
run() {
	local tag=$1 src=$TMP/$1.src dst=$TMP/$1.dst
	shift
	XSR_TEST_DIRTY_MBPS=$RATE start_vm "$src" "$MEM" 1 || return 1
	wait_moving "$src"
	sleep 1 # let the dirtier reach its rate
	start_receiver "$tag" --control "$dst" --once --json || return 1
	"$XSR" migrate vm:"$src" tcp:127.0.0.1:"$RX_PORT" --json "$@" >"$TMP/$tag.json" || return 1
	wait_gone "$RX_PID"
	rx_vm_pid >/dev/null
	stop_vm "$dst"
}

memb=$("$XSR" vm start --help >/dev/null 2>&1; python3 -c "import sys;s='$MEM';m={'K':1<<10,'M':1<<20,'G':1<<30};print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))")
echo "guest $MEM, test dirtier at $RATE MB/s"
for c in none lz4 zstd; do
	run "$c" --compress "$c" --max-downtime 100 || { echo "migrate ($c) failed"; continue; }
	j=$TMP/$c.json
	bytes=$(jq -r .total_bytes "$j") # 64-bit values are strings (xsr(1), JSON OUTPUT)
	el=$(jq .elapsed_ms "$j")
	raw=$(raw_tcp "$bytes")
	awk -v b="$bytes" -v m="$memb" -v el="$el" -v raw="$raw" -v c="$c" \
	    -v r="$(jq .rounds "$j")" -v d="$(jq .downtime_ms "$j")" -v cr="$(jq .compression_ratio "$j")" \
	    -v g="$MEM" -v rate="$RATE" \
	    'BEGIN { printf "%-5s rounds %d  total %.1f MiB = %.3f x guest memory  compression %.2f  downtime %.1f ms  migrate %.1f MB/s vs raw TCP %.1f MB/s for the same bytes: ratio %.2f\n", c, r, b/1048576, b/m, cr, d, b/el/1e3, b/raw/1e6, (b/el/1e3)/(b/raw/1e6)
	      w = sprintf("migrate %s guest, dirtier %d MB/s, --compress %s", g, rate, c)
	      printf "@row\t%s: throughput\t%.2f\tMB/s\traw loopback TCP, same bytes\t%.2f\t%.3f\tmigrate / raw TCP\t\t\n", w, b/el/1e3, b/raw/1e6, (b/el/1e3)/(b/raw/1e6)
	      printf "@row\t%s: downtime\t%.1f\tms\t\t\t\t\t\t\n", w, d
	      printf "@row\t%s: bytes sent (%d rounds)\t%.3f\tx guest memory\t\t\t\t\t\t\n", w, r, b/m }'
	jq -c '[.round[] | {round, pages, bytes, dirtied, ms}]' "$j"
done
run postcopy --postcopy --postcopy-rounds 1 && jq -c '{mode:"postcopy",rounds,downtime_ms,postcopy_pages,faults,faults_served,total_bytes,elapsed_ms}' "$TMP/postcopy.json" &&
	row "migrate $MEM guest, dirtier $RATE MB/s, --postcopy: downtime" "$(jq .downtime_ms "$TMP/postcopy.json")" ms
