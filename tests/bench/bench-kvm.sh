#!/bin/bash
# make bench, KVM part: lazy restore time-to-running at 256 MiB and 4 GiB
# (should be about equal), full restore throughput against reading the same
# bytes, and the pause of a save (plain and --live); the same rows again on a
# 1 GiB guest in its data mode (xsr vm start --fill: memory that holds data,
# rewritten by the guest at BENCH_MIG_RATE MB/s).  Not a test.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.inc
XSR=$PWD/bin/xsr
if ! [ -w /dev/kvm ]; then echo "SKIPPED: bench-kvm: /dev/kvm not usable"; exit 0; fi
D=$(mktemp -d /var/tmp/xsr-bench-kvm.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$D"; }
trap cleanup EXIT
j() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# full_restore IMAGE CONTROL: a full restore of IMAGE (elapsed in full_ms)
# and a read of the same file from the page cache (read_ms), its reference
full_restore() {
	local s e out
	cat "$1" >/dev/null
	s=$(date +%s%N); cat "$1" >/dev/null; e=$(date +%s%N)
	read_ms=$(echo "($e - $s) / 1000000" | bc -l)
	out=$("$XSR" restore "$1" --control "$2" --json)
	PIDS+=("$(echo "$out" | j pid)")
	full_ms=$(echo "$out" | j elapsed_ms)
	"$XSR" vm stop "$2" >/dev/null
}

echo "== KVM: lazy restore time-to-running, full restore, save pause"
# lazy_best IMAGE CTL: the best time-to-running of three lazy restores of IMAGE into $best.
lazy_best() {
	local i out t
	best=999999
	for i in 1 2 3; do
		out=$("$XSR" restore "$1" --lazy --control "$2$i" --json)
		PIDS+=("$(echo "$out" | j pid)")
		t=$(echo "$out" | j time_to_running_ms)
		"$XSR" vm stop "$2$i" >/dev/null
		best=$(echo "if ($t < $best) $t else $best" | bc -l)
	done
}
for mem in 256M 4G; do
	PIDS+=("$("$XSR" vm start --mem $mem --vcpus 2 --control "$D/s$mem")")
	sleep 0.5
	p=$("$XSR" save "vm:$D/s$mem" "$D/g$mem.elf" --json | j pause_ms)
	pl=$("$XSR" save --live "vm:$D/s$mem" "$D/l$mem.elf" --json | j pause_ms)
	"$XSR" vm stop "$D/s$mem" >/dev/null
	echo "save pause, $mem guest: ${p} ms (plain), ${pl} ms (--live)"
	row "save pause, $mem guest (plain)" "$p" ms
	row "save pause, $mem guest (--live)" "$pl" ms
	lazy_best "$D/g$mem.elf" "$D/r$mem"
	eval "lazy_$mem=$best"
	echo "lazy restore time-to-running, $mem guest: $best ms (best of 3)"
	row "lazy restore time-to-running, $mem guest (best of 3)" "$best" ms
done
echo "lazy time-to-running 4 GiB / 256 MiB: $(ratio "$lazy_4G" "$lazy_256M") (goal: about 1)"
row "lazy restore time-to-running, 4 GiB against 256 MiB" "$lazy_4G" ms "the same at 256 MiB" "$lazy_256M" "$(ratio "$lazy_4G" "$lazy_256M")" "4 GiB / 256 MiB" "ratio~1" "about 1"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
full_restore "$D/g4G.elf" "$D/full"
echo "full restore of 4 GiB: ${full_ms} ms; reading the same 4 GiB file (cached): $(printf %.1f "$read_ms") ms -> restore runs at $(ratio "$read_ms" "$full_ms") x read speed"
row "full restore of a 4 GiB guest" "$full_ms" ms "cat of the same file (cached)" "$(printf %.1f "$read_ms")" "$(ratio "$read_ms" "$full_ms")" "read time / restore time (x read speed)"

# The data-mode guest: every row above once more on memory that holds data.
DMEM=${BENCH_DATA_MEM:-1G} FILL=${BENCH_MIG_FILL:-1} RATE=${BENCH_MIG_RATE:-50}
dw="$DMEM guest, $FILL of it data, guest dirtying $RATE MB/s"
echo "== KVM: the same on a $dw"
if ! pid=$("$XSR" vm start --mem "$DMEM" --vcpus 2 --fill "$FILL" --dirty-mbps "$RATE" --control "$D/d"); then
	echo "SKIPPED: KVM rows on the data guest: xsr vm start --fill failed"
	exit 0
fi
PIDS+=("$pid")
p=$("$XSR" save "vm:$D/d" "$D/d.elf" --json | j pause_ms)
pl=$("$XSR" save --live "vm:$D/d" "$D/dl.elf" --json | j pause_ms)
"$XSR" vm stop "$D/d" >/dev/null
echo "save pause, $dw: ${p} ms (plain), ${pl} ms (--live); image $(( $(stat -c %s "$D/d.elf") >> 20 )) MiB"
row "save pause, $dw (plain)" "$p" ms
row "save pause, $dw (--live)" "$pl" ms
lazy_best "$D/d.elf" "$D/dr"
echo "lazy restore time-to-running, $dw: $best ms (best of 3)"
row "lazy restore time-to-running, $dw (best of 3)" "$best" ms
full_restore "$D/d.elf" "$D/dfull"
echo "full restore, $dw: ${full_ms} ms; cat of the same file (cached): $(printf %.1f "$read_ms") ms -> $(ratio "$read_ms" "$full_ms") x read speed"
row "full restore, $dw" "$full_ms" ms "cat of the same file (cached)" "$(printf %.1f "$read_ms")" "$(ratio "$read_ms" "$full_ms")" "read time / restore time (x read speed)"
