#!/bin/bash
# Corruption and truncation sweeps over QEMU migration streams and virsh save
# files (issue 18).  A small stream (qemu-small.py, 5 309 octets), the same
# without a VMDESCRIPTION (qemu-small.py --nodesc, 6 232 octets: device
# sections delimited by their footers, the cpu state read with the built-in
# table) and the first as a virsh save file, raw and through the real gzip,
# bzip2, xz, lzop and zstd (tests/qemu/virshsave.py, 64 octets of padding):
#
#  1. in-process (tests/hardening/qemu_sweep.c): every octet flipped and a
#     cut at every length of every file through the library's import; each
#     variant imports and verifies, or is refused with a damage code and a
#     message naming an offset; every cut is refused;
#  2. through `xsr import`, a sample (every 89th flip and every 97th cut of
#     each file; spawning xsr for all 44 512 would take minutes): exit 0
#     with an output that verifies, or exit 3 with a message; never a
#     signal or a hang; no output file left after a failure; at most
#     MAX_RSS_KIB of memory;
#  3. a 3 KiB bzip2 file inflating to a 90 MB stream of one page resent 10
#     million times imports in bounded memory (docs/limits.md).
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"

build_helper qemu-sweep
SWEEP=$ROOT/tests/build/qemu-sweep
python3 "$ROOT/tests/hardening/qemu-small.py" "$T/small.qemu"
python3 "$ROOT/tests/hardening/qemu-small.py" "$T/nodesc.qemu" --nodesc
files=("$T/small.qemu" "$T/nodesc.qemu")
for c in raw gzip bzip2 xz lzop zstd; do
	if [ "$c" != raw ] && ! command -v "$c" >/dev/null; then
		echo "SKIPPED: $c not installed: no virsh save file through it (tests/install-deps.sh installs it)"
		continue
	fi
	python3 "$ROOT/tests/qemu/virshsave.py" "$T/small.qemu" "$T/small-$c.save" "$c" pad=64
	files+=("$T/small-$c.save")
done
total=0
for f in "${files[@]}"; do total=$((total + $(stat -c %s "$f"))); done
check "the sweep files are small (${#files[@]} files, $total octets)" test "$total" -le 28000

# An ASan build holds more (shadow memory, quarantine): the bounds are its own.
asan=0
grep -q __asan_init "$XSR" 2>/dev/null && asan=1
[ $asan = 1 ] && MAX_RSS_KIB=262144 || MAX_RSS_KIB=65536

# --- 1. in process: every octet, every length ---
# (under ASan its quarantine, 256 MiB by default, would be most of the RSS measured: 32 MiB as tests/fuzz/run.sh)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32" timeout 600 "$SWEEP" "${files[@]}" >"$T/sweep.out" 2>&1
rc=$?
grep -E '^(ok|FAIL)' "$T/sweep.out"
PASS=$((PASS + $(grep -c '^ok' "$T/sweep.out")))
FAIL=$((FAIL + $(grep -c '^FAIL' "$T/sweep.out")))
if [ $rc -ge 124 ] || [ $rc -eq 2 ]; then bad "sweep program died (exit $rc)"; tail -5 "$T/sweep.out"; fi
read -r flips imported refused cuts cut_refused < <(awk '/^stats: .* flips/{f+=$4; i+=$6; r+=$8} /^stats: .* cuts/{c+=$4; cr+=$6}
	END{printf "%d %d %d %d %d\n", f, i, r, c, cr}' "$T/sweep.out")
rss=$(sed -n 's/^maxrss //p' "$T/sweep.out")
echo "TOTAL in-process: $flips flips ($imported imported and verified, $refused refused), $cuts cuts ($cut_refused refused), max RSS ${rss:-?} KiB"
check "in-process: every octet of the $total flipped, each imported or refused cleanly" \
	test "$flips" -eq "$total" -a $((imported + refused)) -eq "$flips"
check "in-process: a cut at every one of the $total lengths, each refused cleanly" \
	test "$cuts" -eq "$total" -a "$cut_refused" -eq "$cuts"
check "in-process: max RSS ${rss:-?} KiB <= $MAX_RSS_KIB KiB" test "${rss:-999999999}" -le "$MAX_RSS_KIB"

# --- 2. through xsr import: a sample ---
have_time=1
[ -x /usr/bin/time ] || { have_time=0; echo "SKIPPED: /usr/bin/time not installed: the CLI sample's RSS is not measured"; }
# imp IN: xsr import IN -> $T/o.elf; sets $rc and $rss (KiB), stderr in $T/err.
imp() {
	rm -f "$T/o.elf" "$T/rss"
	if [ $have_time = 1 ]; then
		/usr/bin/time -f %M -o "$T/rss" timeout 30 "$XSR" import -q "$1" "$T/o.elf" >/dev/null 2>"$T/err"; rc=$?
		rss=$(tail -n1 "$T/rss" 2>/dev/null)
		# /usr/bin/time reports a child killed by a signal as "Command terminated by signal N" and exit 128+N
		grep -q 'terminated by signal' "$T/rss" 2>/dev/null && rc=$((rc < 128 ? 128 : rc))
	else
		timeout 30 "$XSR" import -q "$1" "$T/o.elf" >/dev/null 2>"$T/err"; rc=$?
		rss=0
	fi
}
# judge WHAT MUST_FAIL: the last imp's outcome
judge() {
	local what=$1 must_fail=$2
	runs=$((runs + 1))
	if [ "$rc" -ge 124 ] || [ "$rc" -eq 2 ] || [ "$rc" -eq 1 ]; then
		bad "xsr import $what: exit $rc (a signal, a hang or a usage error): $(head -c 200 "$T/err")"; cli_bad=$((cli_bad + 1))
	elif [ "${rss:-0}" -gt "$MAX_RSS_KIB" ]; then
		bad "xsr import $what: max RSS $rss KiB > $MAX_RSS_KIB KiB"; cli_bad=$((cli_bad + 1))
	elif [ "$rc" -eq 0 ]; then
		if [ "$must_fail" = 1 ]; then
			bad "xsr import $what: exit 0 (a cut file must be refused)"; cli_bad=$((cli_bad + 1))
		elif ! "$XSR" verify -q "$T/o.elf" >/dev/null 2>&1; then
			bad "xsr import $what: exit 0 but the image does not verify"; cli_bad=$((cli_bad + 1))
		else
			cli_ok=$((cli_ok + 1))
		fi
	elif [ "$rc" -ne 3 ] || [ ! -s "$T/err" ] || [ -e "$T/o.elf" ]; then
		bad "xsr import $what: exit $rc (want 3, a message and no output left): $(head -c 200 "$T/err")"; cli_bad=$((cli_bad + 1))
	else
		cli_refused=$((cli_refused + 1))
	fi
}
runs=0 cli_ok=0 cli_refused=0 cli_bad=0
# the sampled variants, written at once: flip-OFFSET-NAME and cut-LENGTH-NAME
mkdir -p "$T/var"
want_runs=$(python3 - "$T/var" "${files[@]}" <<'PY'
import os, sys
d, n = sys.argv[1], 0
for f in sys.argv[2:]:
    b = open(f, 'rb').read()
    for i in range(0, len(b), 89):
        open(os.path.join(d, 'flip-%d-%s' % (i, os.path.basename(f))), 'wb').write(b[:i] + bytes([b[i] ^ 0xff]) + b[i + 1:])
        n += 1
    for i in range(0, len(b), 97):
        open(os.path.join(d, 'cut-%d-%s' % (i, os.path.basename(f))), 'wb').write(b[:i])
        n += 1
print(n)
PY
)
for v in "$T"/var/*; do
	imp "$v"
	name=${v##*/}
	case $name in
	flip-*) judge "$name (flipped at an octet)" 0 ;;
	cut-*) judge "$name (cut at a length)" 1 ;;
	esac
	rm -f "$v"
done
echo "TOTAL CLI: $runs runs of xsr import ($cli_ok imported and verified, $cli_refused refused)"
check "CLI: $runs sampled variants (every 89th flip, every 97th cut; $want_runs wanted, >= 300): exit 0 and verified, or exit 3 with a message and no output; no signal; RSS <= $MAX_RSS_KIB KiB" \
	test "$cli_bad" -eq 0 -a "$runs" -eq "$want_runs" -a "$runs" -ge 300

# --- 3. resent pages in a decompression bomb: memory follows pages, not entries ---
if command -v bzip2 >/dev/null && [ $have_time = 1 ]; then
	imp "$ROOT/tests/fuzz/libvirt-import/regress/bomb-resend-bzip2"
	check "a 3 KiB bzip2 virsh save of a 90 MB stream resending one page 10^7 times imports (exit $rc) in $rss KiB <= $MAX_RSS_KIB KiB" \
		test "$rc" -eq 0 -a "${rss:-999999999}" -le "$MAX_RSS_KIB"
else
	echo "SKIPPED: bzip2 or /usr/bin/time not installed: the resend bomb is not run"
fi
summary
