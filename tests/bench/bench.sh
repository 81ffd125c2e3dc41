#!/bin/bash
# make bench: speed and memory, as ratios against references measured in
# the same run on the same machine (these machines are shared and noisy).
# Not a test: nothing here fails on a number.  Every figure is printed
# for a person and once more as an `@row` line (tests/bench/lib.inc) that
# tests/bench/table.py turns into bench/results/*.json and a Markdown table.
# BENCH_QUICK=1 (make bench-quick): small sizes, fewer rounds, no rig boot.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.inc
XSR=$PWD/bin/xsr
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	MEM=${BENCH_MEM:-256M} BEST=3 PAIRS=7 BIG=2G QMEM=128 QFILL=96 QROUNDS=7
else
	MEM=${BENCH_MEM:-1G} BEST=5 PAIRS=7 BIG=16G QMEM=256 QFILL=192 QROUNDS=7
fi
DIR=${BENCH_DIR:-/dev/shm}/xsr-bench.$$
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
cc -O2 -Ilibxsrelf/include -o "$DIR/hashcost" tests/bench/hashcost.c build/backends/synth.o lib/libxsrelf.a -lelf -lxxhash -lzstd -llz4
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b=999999 x; for ((i = 0; i < BEST; i++)); do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc -l); done; echo "$b"; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

echo "== xsrelf bench: $MEM synthetic guest (zero fraction 0), tmpfs at $DIR, best of $BEST"
save=$(best "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/a.elf")
bytes=$(stat -c %s "$DIR/a.elf")
cp_t=$(best cp "$DIR/a.elf" "$DIR/cp.elf")
rm -f "$DIR/cp.elf"
echo "save (synth -> seekable):   $(printf %.3f "$save") s  $(ratio "$bytes / 1048576" "$save") MiB/s   = $(ratio "$cp_t" "$save") x cp throughput"
CP="cp of the same $MEM image"
CPIS="cp time / this time (x cp throughput)"
row "save, $MEM synthetic guest -> seekable file" "$save" s "$CP" "$cp_t" "$(ratio "$cp_t" "$save")" "$CPIS" "ratio>=0.9" ">= 0.9x cp"
sst=$(best "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 --stream "$DIR/a.stream")
echo "save (synth -> stream):     $(printf %.3f "$sst") s  = $(ratio "$cp_t" "$sst") x cp throughput"
row "save, $MEM synthetic guest -> stream" "$sst" s "$CP" "$cp_t" "$(ratio "$cp_t" "$sst")" "$CPIS"
c1=$(best "$XSR" convert "$DIR/a.elf" "$DIR/b.stream" --to stream)
echo "convert seekable -> stream: $(printf %.3f "$c1") s  = $(ratio "$cp_t" "$c1") x cp throughput"
row "convert seekable -> stream, $MEM" "$c1" s "$CP" "$cp_t" "$(ratio "$cp_t" "$c1")" "$CPIS" "ratio>=0.8" ">= 0.8x cp"
c2=$(best "$XSR" convert "$DIR/a.stream" "$DIR/b.elf" --to seekable)
echo "convert stream -> seekable: $(printf %.3f "$c2") s  = $(ratio "$cp_t" "$c2") x cp throughput"
row "convert stream -> seekable, $MEM" "$c2" s "$CP" "$cp_t" "$(ratio "$cp_t" "$c2")" "$CPIS" "ratio>=0.8" ">= 0.8x cp"
v=$(best "$XSR" verify "$DIR/a.elf")
echo "verify seekable:            $(printf %.3f "$v") s  = $(ratio "$cp_t" "$v") x cp throughput"
row "verify seekable, $MEM" "$v" s "$CP" "$cp_t" "$(ratio "$cp_t" "$v")" "$CPIS"
pages=$(( $(numfmt --from=iec "$MEM") / 4096 ))
h=$("$DIR/hashcost" "$pages" | cut -d' ' -f1)
echo "XXH3-64 of every page alone (pages in cache): $(printf %.3f "$h") s = $(ratio "100 * $h" "$save") % of the save time"
row "XXH3-64 of every page of $MEM alone (pages in cache)" "$h" s "save, $MEM -> seekable file" "$save" "$(echo "scale=4; $h / $save" | bc -l)" "hash time / save time"
# Interleaved pairs (with, without checksums) so both see the same machine; medians.
# Twice: on every core (the writer hashes on a second thread while it writes)
# and on one (taskset -c 0: the hash is then not hidden behind the write).
med() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
hashpairs() { # $1: label, $2: what the row says, then the command prefix
	local label=$1 where=$2 pairs="" a b wh nh
	shift 2
	for ((i = 0; i < PAIRS; i++)); do
		a=$(t "$@" "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/h.elf")
		b=$(XSR_BENCH_NOHASH=1 t "$@" "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/h.elf")
		pairs="$pairs$a $b
"
	done
	rm -f "$DIR/h.elf"
	wh=$(printf '%s' "$pairs" | awk 'NF{print $1}' | med)
	nh=$(printf '%s' "$pairs" | awk 'NF{print $2}' | med)
	echo "save with / without page checksums, $label (median of $PAIRS interleaved pairs): $(printf %.3f "$wh") s / $(printf %.3f "$nh") s -> checksum overhead $(ratio "100 * ($wh - $nh)" "$nh") % of a save to tmpfs (goal <= 5 %)"
	row "save of $MEM to tmpfs with page checksums$where (median of $PAIRS pairs)" "$wh" s "the same save without them" "$nh" "$(echo "scale=4; $wh / $nh" | bc -l)" "with / without (overhead = ratio - 1)" "ratio<=1.05" "overhead <= 5 %"
}
hashpairs "$(nproc) cores" ""
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
	hashpairs "one core (taskset -c 0)" ", one core (taskset -c 0)" taskset -c 0
else
	echo "SKIPPED: save of $MEM to tmpfs with page checksums, one core (taskset -c 0): taskset -c 0 cannot run here"
fi
rm -f "$DIR"/*.elf "$DIR"/*.stream

echo "== memory: $BIG synthetic guest (90 % zero pages, so the file fits), peak RSS of the writer"
/usr/bin/time -f "%M" -o "$DIR/rss" "$XSR" synth --mem $BIG --vcpus 4 --zero-fraction 0.9 "$DIR/big.elf"
echo "peak RSS of xsr synth --mem $BIG: $(( $(cat "$DIR/rss") / 1024 )) MiB (goal <= 64 MiB)"
row "peak RSS of xsr synth --mem $BIG (90 % zero pages)" "$(( $(cat "$DIR/rss") / 1024 ))" MiB "" "" "" "" "figure<=64" "<= 64 MiB"
/usr/bin/time -f "%M" -o "$DIR/rss2" "$XSR" convert "$DIR/big.elf" - > /dev/null
echo "peak RSS of xsr convert ($BIG seekable -> stream): $(( $(cat "$DIR/rss2") / 1024 )) MiB"
row "peak RSS of xsr convert ($BIG seekable -> stream)" "$(( $(cat "$DIR/rss2") / 1024 ))" MiB
rm -f "$DIR/big.elf"
# QEMU peers: xsr's qemu: paths against QEMU's own commands on one TCG guest.
if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "SKIPPED: QEMU peer rows: qemu-system-x86_64 not installed (tests/install-deps.sh installs qemu-system-x86)"
elif ! python3 tests/bench/qemu_peer.py --xsr "$XSR" --guest bin/xsr-guest.elf --dir "$DIR/qemu" \
	--mem "$QMEM" --fill "$QFILL" --rounds "$QROUNDS"; then
	echo "SKIPPED: QEMU peer rows: tests/bench/qemu_peer.py failed (its message is above)"
fi
rm -rf "$DIR/qemu"
# The KVM rows: natively with /dev/kvm, else in the nested-KVM rig (one boot),
# where their references are measured inside the same rig.
if [ "$QUICK" = 1 ]; then
	echo "SKIPPED: KVM rows (save pause, lazy and full restore, migration): make bench-quick boots no rig; make bench runs them"
elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	for b in tests/bench/bench-*.sh; do [ -f "$b" ] && bash "$b"; done
elif why=$(tests/kvm-rig/rig.sh probe 2>&1); then
	echo "== the KVM rows below: nested KVM in TCG (tests/kvm-rig, no /dev/kvm here); ratios are against references measured inside the same rig"
	printf 'for b in tests/bench/bench-*.sh; do [ -f "$b" ] && bash "$b"; done\n' >"$DIR/kvm-bench.sh"
	# one boot for every KVM row; migration rows under TCG take minutes each
	RIG_TIMEOUT=${RIG_TIMEOUT:-3600} tests/kvm-rig/rig.sh exec "$DIR/kvm-bench.sh" | sed -e 's/^== /== [nested KVM in TCG] /' -e 's/^@row\t/@row\t[nested KVM in TCG] /'
else
	echo "SKIPPED: KVM rows: no /dev/kvm, and the nested-KVM rig cannot run: $why"
fi
exit 0
