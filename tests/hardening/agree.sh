#!/bin/bash
# Property (issue 15): verify and convert agree.  On the committed fuzz
# seeds (tests/fuzz/*/seeds: every hand-made and regress-* seed, and every
# 4th of the corpus-* inputs grown by the fuzzers, to keep make test inside
# its time; XSR_AGREE_CORPUS=1: all of them, and the local corpora
# build/fuzz/corpus/*) and on a sample of sweep variants (one bit flipped,
# with and without every checksum recomputed), `xsr verify` exits 0 exactly
# when `xsr convert` succeeds.  verify exit 1 (damage) or 3 (unreadable) and
# a convert failure both mean "refused"; a signal or a hang fails by itself.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"

build_helper craft
CRAFT=$ROOT/tests/build/craft
N_FLIPS=${XSR_AGREE_FLIPS:-40}   # per image and mode: 2 images x 2 modes x 40 = 160 variants

# Memory (docs/limits.md, "Memory of the reading verbs"): no input, however
# hostile, makes verify or convert exceed MAX_RSS_KIB; the largest is reported.
MAX_RSS_KIB=65536
RSS_MAX=0 RSS_WHAT=none RSS_OVER=0
rss() { # rss WHAT FILE-WRITTEN-BY-/usr/bin/time
	local k
	k=$(tail -n1 "$2" 2>/dev/null)
	case $k in '' | *[!0-9]*) bad "$1: no RSS measured ($(head -c 100 "$2" 2>/dev/null))"; return ;; esac
	[ "$k" -gt "$RSS_MAX" ] && RSS_MAX=$k RSS_WHAT=$1
	[ "$k" -le $MAX_RSS_KIB ] || { RSS_OVER=$((RSS_OVER + 1)); echo "     over the bound: $1: $k KiB"; }
}

agree() { # agree WHAT FILE
	local what=$1 f=$2 v c
	/usr/bin/time -f %M -o "$T/vrss" timeout 60 "$XSR" verify -q "$f" >/dev/null 2>"$T/verr"; v=$?
	rm -f "$T/conv"
	# To a stream: the output then needs no room for pages the input only claims (a stream may
	# claim 2^36 pages, a seekable copy of it does not fit a file system); the reading is the same.
	/usr/bin/time -f %M -o "$T/crss" timeout 60 "$XSR" convert --to stream "$f" "$T/conv" >/dev/null 2>"$T/cerr"; c=$?
	rss "$what: verify" "$T/vrss"
	rss "$what: convert" "$T/crss"
	if [ $v -ge 124 ] || [ $c -ge 124 ]; then
		bad "$what: a signal or a hang (verify $v, convert $c)"; return
	fi
	if { [ $v -eq 0 ] && [ $c -eq 0 ]; } || { [ $v -ne 0 ] && [ $c -ne 0 ]; }; then
		AGREE=$((AGREE + 1))
	else
		bad "$what: verify exit $v, convert exit $c"
		sed 's/^/     verify:  /' "$T/verr" | head -2; sed 's/^/     convert: /' "$T/cerr" | head -2
	fi
}

AGREE=0
n=0 grown=0 left=0
dirs=("$ROOT"/tests/fuzz/*/seeds "$ROOT"/tests/fuzz/*/regress)
all=${XSR_AGREE_CORPUS:-0}
[ "$all" = 1 ] && dirs+=("$ROOT"/build/fuzz/corpus/*)
for d in "${dirs[@]}"; do
	for f in "$d"/*; do
		[ -f "$f" ] || continue
		case ${f##*/} in corpus-*)
			grown=$((grown + 1))
			[ "$all" = 1 ] || [ $((grown % 4)) -eq 0 ] || { left=$((left + 1)); continue; } ;;
		esac
		agree "${f#$ROOT/}" "$f"
		n=$((n + 1))
	done
done
check "verify and convert agree on all $n corpus files ($AGREE agreed; $left grown inputs left to XSR_AGREE_CORPUS=1)" \
	test $AGREE -eq $n -a $n -gt 40

SYNTH=(--mem 768K --vcpus 2 --zero-fraction 0.25 --seed 7)
"$XSR" synth "${SYNTH[@]}" "$T/s.elf"
"$XSR" synth "${SYNTH[@]}" --stream "$T/s.stream"
AGREE=0 n=0
for img in s.elf s.stream; do
	size=$(stat -c %s "$T/$img")
	# Offsets spread over the whole file, the header and tables weighted in (a fixed sequence: reproducible).
	for i in $(seq 1 "$N_FLIPS"); do
		if [ $((i % 3)) -eq 0 ]; then off=$(( (i * 7919) % 4096 % size )); else off=$(( (i * 2654435761) % size )); fi
		bit=$((i % 8))
		cp "$T/$img" "$T/f"
		printf "\\x$(printf %02x $(( $(od -An -tu1 -j "$off" -N1 "$T/f") ^ (1 << bit) )))" |
			dd of="$T/f" bs=1 seek="$off" conv=notrunc 2>/dev/null
		agree "$img flip at $off bit $bit" "$T/f"
		"$CRAFT" flip "$off" "$bit" "$T/$img" "$T/g" && agree "$img flip at $off bit $bit, checksums recomputed" "$T/g"
		n=$((n + 2))
	done
done
check "verify and convert agree on all $n sweep variants ($AGREE agreed)" test $AGREE -eq $n -a $n -ge 160
check "no input made verify or convert exceed $MAX_RSS_KIB KiB of RSS (largest: $RSS_MAX KiB, $RSS_WHAT)" \
	test "$RSS_OVER" -eq 0 -a "$RSS_MAX" -gt 0
summary
