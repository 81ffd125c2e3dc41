#!/bin/bash
# make bench: speed and memory, as ratios against references measured in
# the same run on the same machine (these machines are shared and noisy).
# Not a test: nothing here fails on a number.
set -euo pipefail
cd "$(dirname "$0")/../.."
XSR=$PWD/bin/xsr
MEM=${BENCH_MEM:-1G}
DIR=${BENCH_DIR:-/dev/shm}/xsr-bench.$$
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
cc -O2 -Ilibxsrelf/include -o "$DIR/hashcost" tests/bench/hashcost.c build/backends/synth.o lib/libxsrelf.a -lelf -lxxhash -lzstd -llz4
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b=999999 x; for i in 1 2 3 4 5; do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc -l); done; echo "$b"; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

echo "== xsrelf bench: $MEM synthetic guest (zero fraction 0), tmpfs at $DIR, best of 5"
save=$(best "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/a.elf")
bytes=$(stat -c %s "$DIR/a.elf")
cp_t=$(best cp "$DIR/a.elf" "$DIR/cp.elf")
rm -f "$DIR/cp.elf"
echo "save (synth -> seekable):   $(printf %.3f "$save") s  $(ratio "$bytes / 1048576" "$save") MiB/s   = $(ratio "$cp_t" "$save") x cp throughput"
sst=$(best "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 --stream "$DIR/a.stream")
echo "save (synth -> stream):     $(printf %.3f "$sst") s  = $(ratio "$cp_t" "$sst") x cp throughput"
c1=$(best "$XSR" convert "$DIR/a.elf" "$DIR/b.stream" --to stream)
echo "convert seekable -> stream: $(printf %.3f "$c1") s  = $(ratio "$cp_t" "$c1") x cp throughput"
c2=$(best "$XSR" convert "$DIR/a.stream" "$DIR/b.elf" --to seekable)
echo "convert stream -> seekable: $(printf %.3f "$c2") s  = $(ratio "$cp_t" "$c2") x cp throughput"
v=$(best "$XSR" verify "$DIR/a.elf")
echo "verify seekable:            $(printf %.3f "$v") s  = $(ratio "$cp_t" "$v") x cp throughput"
pages=$(( $(numfmt --from=iec "$MEM") / 4096 ))
h=$("$DIR/hashcost" "$pages" | cut -d' ' -f1)
echo "XXH3-64 of every page alone (pages in cache): $(printf %.3f "$h") s = $(ratio "100 * $h" "$save") % of the save time"
# Interleaved pairs (with, without checksums) so both see the same machine; medians.
pairs=""
for i in 1 2 3 4 5 6 7; do
	a=$(t "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/h.elf")
	b=$(XSR_BENCH_NOHASH=1 t "$XSR" synth --mem "$MEM" --vcpus 2 --seed 1 "$DIR/h.elf")
	pairs="$pairs$a $b
"
done
rm -f "$DIR/h.elf"
med() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
wh=$(printf '%s' "$pairs" | awk 'NF{print $1}' | med)
nh=$(printf '%s' "$pairs" | awk 'NF{print $2}' | med)
echo "save with / without page checksums (median of 7 interleaved pairs): $(printf %.3f "$wh") s / $(printf %.3f "$nh") s -> checksum overhead $(ratio "100 * ($wh - $nh)" "$nh") % of a save to tmpfs (goal <= 5 %)"
rm -f "$DIR"/*.elf "$DIR"/*.stream

echo "== memory: 16 GiB synthetic guest (90 % zero pages, so the file fits), peak RSS of the writer"
/usr/bin/time -f "%M" -o "$DIR/rss" "$XSR" synth --mem 16G --vcpus 4 --zero-fraction 0.9 "$DIR/big.elf"
echo "peak RSS of xsr synth --mem 16G: $(( $(cat "$DIR/rss") / 1024 )) MiB (goal <= 64 MiB)"
/usr/bin/time -f "%M" -o "$DIR/rss2" "$XSR" convert "$DIR/big.elf" - > /dev/null
echo "peak RSS of xsr convert (16G seekable -> stream): $(( $(cat "$DIR/rss2") / 1024 )) MiB"
rm -f "$DIR/big.elf"
# The KVM rows: natively with /dev/kvm, else in the nested-KVM rig (one boot),
# where their references are measured inside the same rig.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	for b in tests/bench/bench-*.sh; do [ -f "$b" ] && bash "$b"; done
elif why=$(tests/kvm-rig/rig.sh probe 2>&1); then
	echo "== the KVM rows below: nested KVM in TCG (tests/kvm-rig, no /dev/kvm here); ratios are against references measured inside the same rig"
	printf 'for b in tests/bench/bench-*.sh; do [ -f "$b" ] && bash "$b"; done\n' >"$DIR/kvm-bench.sh"
	# one boot for every KVM row; migration rows under TCG take minutes each
	RIG_TIMEOUT=${RIG_TIMEOUT:-3600} tests/kvm-rig/rig.sh exec "$DIR/kvm-bench.sh" | sed 's/^== /== [nested KVM in TCG] /'
else
	echo "SKIPPED: KVM rows: no /dev/kvm, and the nested-KVM rig cannot run: $why"
fi
exit 0
