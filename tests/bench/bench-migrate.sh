#!/usr/bin/env bash
# Migration benchmark (not a test), on two guests of $MEM: the idle test
# guest, and the same guest in its data mode (xsr vm start --fill: $FILL of
# its memory holds data, half code, half random, which the guest itself
# rewrites at $RATE MB/s, seen by KVM's own dirty log).
#  - pre-copy round 0 throughput (its octets on the wire / its time, the
#    receiver's ACK included) as a ratio to a plain loopback TCP copy of the
#    same octets (tests/bench/tcpcopy.c), measured right after each
#    migration; medians of $REPS interleaved pairs.  The idle guest sends
#    little more than its zero-page entries, so its row is guest memory
#    covered per second against a TCP copy of all of it;
#  - downtime, and total octets as a multiple of guest memory, with and
#    without compression.
# Needs KVM; prints SKIPPED otherwise.
set -uo pipefail
. "$(dirname "$0")/../migrate/lib.inc"
. "$(dirname "$0")/lib.inc"
require_kvm
MEM=${BENCH_MIG_MEM:-1G}
RATE=${BENCH_MIG_RATE:-50}
FILL=${BENCH_MIG_FILL:-1}
REPS=${BENCH_MIG_REPS:-3}
TCPCOPY=$TMP/tcpcopy
cc -O2 -pthread -o "$TCPCOPY" "$(dirname "$0")/tcpcopy.c" || { echo "SKIPPED: migration rows: tests/bench/tcpcopy.c does not build"; exit 0; }

# run TAG 'VM-START-ARGS' MIGRATE-ARGS...: migrate a $MEM guest; JSON in $TMP/TAG.json
run() {
	local tag=$1 src=$TMP/$1.src dst=$TMP/$1.dst vmargs
	read -ra vmargs <<<"$2"
	shift 2
	rm -f "$src" "$dst"
	start_vm "$src" "$MEM" 1 "${vmargs[@]}" || return 1
	wait_moving "$src"
	start_receiver "$tag" --control "$dst" --once --json || return 1
	"$XSR" migrate vm:"$src" tcp:127.0.0.1:"$RX_PORT" --json "$@" >"$TMP/$tag.json" || return 1
	wait_gone "$RX_PID"
	rx_vm_pid >/dev/null
	stop_vm "$dst"
}
med() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

memb=$(numfmt --from=iec "$MEM")
for g in idle data; do
	if [ $g = idle ]; then vm="" what="idle $MEM guest"; else
		vm="--fill $FILL --dirty-mbps $RATE" what="$MEM guest, $FILL of it data, guest dirtying $RATE MB/s"; fi
	echo "== migrate: $what"
	for c in none lz4 zstd; do
		# throughput pairs only uncompressed; compression rows once
		n=1
		[ $c = none ] && n=$REPS
		: >"$TMP/pairs"
		for ((i = 0; i < n; i++)); do
			run "$g-$c" "$vm" --compress "$c" --max-downtime 30 || { echo "migrate ($g, $c) failed"; continue 2; }
			j=$TMP/$g-$c.json
			b0=$(jq -r '.round[0].bytes' "$j")
			[ $g = idle ] && b0=$memb # guest memory covered, not the few octets sent
			ms0=$(jq -r '.round[0].ms' "$j")
			raw=$("$TCPCOPY" "$b0")
			echo "$b0 $ms0 $raw $(jq .downtime_ms "$j") $(jq -r .total_bytes "$j") $(jq .rounds "$j")" >>"$TMP/pairs"
			jq -c '{rounds, downtime_ms, total_bytes, round: [.round[] | {round, pages, zero_pages, bytes, dirtied, ms}]}' "$j"
		done
		[ -s "$TMP/pairs" ] || continue
		mig=$(awk '{print $1 / $2 / 1e3}' "$TMP/pairs" | med)
		ref=$(awk '{print $1 / $3 / 1e6}' "$TMP/pairs" | med)
		ratio=$(awk '{print ($1 / $2 / 1e3) / ($1 / $3 / 1e6)}' "$TMP/pairs" | med)
		down=$(awk '{print $4}' "$TMP/pairs" | med)
		tot=$(awk -v m="$memb" '{print $5 / m}' "$TMP/pairs" | med)
		rounds=$(awk '{print $6}' "$TMP/pairs" | med)
		w="migrate $what, --compress $c"
		printf '%s: round 0 %.1f MB/s, raw loopback TCP %.1f MB/s for the same octets (idle: guest memory): ratio %.3f (median of %d); downtime %.1f ms; %d rounds, %.3f x guest memory\n' \
			"$w" "$mig" "$ref" "$ratio" "$(wc -l <"$TMP/pairs")" "$down" "$rounds" "$tot"
		if [ $g = idle ]; then
			row "$w: pre-copy round 0, guest memory covered per second (median of $(wc -l <"$TMP/pairs"))" "$(printf %.1f "$mig")" MB/s \
				"plain loopback TCP copy of all guest memory (tcpcopy.c)" "$(printf %.1f "$ref")" "$(printf %.3f "$ratio")" \
				"migrate / raw TCP"
		elif [ $c = none ]; then
			row "$w: pre-copy round 0 throughput (median of $(wc -l <"$TMP/pairs"))" "$(printf %.1f "$mig")" MB/s \
				"plain loopback TCP copy of the same octets (tcpcopy.c)" "$(printf %.1f "$ref")" "$(printf %.3f "$ratio")" \
				"migrate / raw TCP" "ratio>=0.8" ">= 0.8 x raw TCP"
		else
			row "$w: pre-copy round 0 throughput" "$(printf %.1f "$mig")" MB/s \
				"plain loopback TCP copy of the same octets (tcpcopy.c)" "$(printf %.1f "$ref")" "$(printf %.3f "$ratio")" "migrate / raw TCP"
		fi
		if [ $g = data ]; then
			row "$w: downtime" "$(printf %.1f "$down")" ms "" "" "" "" "figure<=30" "<= 30 ms"
		else
			row "$w: downtime" "$(printf %.1f "$down")" ms
		fi
		row "$w: octets sent ($rounds rounds)" "$(printf %.3f "$tot")" "x guest memory"
	done
done
run postcopy "--fill $FILL --dirty-mbps $RATE" --postcopy --postcopy-rounds 1 &&
	jq -c '{mode:"postcopy",rounds,downtime_ms,postcopy_pages,faults,faults_served,total_bytes,elapsed_ms}' "$TMP/postcopy.json" &&
	row "migrate $MEM guest, $FILL of it data, guest dirtying $RATE MB/s, --postcopy: downtime" "$(jq .downtime_ms "$TMP/postcopy.json")" ms
