#!/bin/bash
# CLI contract tier (xsr(1): COMMON OPTIONS, PROGRESS, LAYOUT, EXIT STATUS):
# usage errors exit 2 in every verb; every verb takes --quiet/-q and
# --verbose/-v; --quiet silences, --verbose adds; progress is drawn on a
# terminal with the verb's label and not elsewhere; --layout is one spelling
# for synth, convert and import (the old ones still work); the man page
# names every option each verb's --help lists.  Runs in a few seconds: no
# KVM, no Xen, small images.
set -uo pipefail
. "$(dirname "$0")/lib.inc"
MAN=$ROOT/docs/man/xsr.1

# every verb, with the subcommand where there is one
VERBS=(synth info verify convert cat-page "vm start" "vm status" "vm pause" "vm resume" "vm stop"
	save core restore migrate receive import export)

# rc_is WANT CMD...: the command exits WANT (its output kept in $T/last.out by check)
rc_is() { local want=$1; shift; "$@"; local rc=$?; [ "$rc" -eq "$want" ] || { echo "exit $rc, expected $want"; return 1; }; }
# on_tty OUT CMD: run CMD (one shell string) with stdin, stdout and stderr on a pty; all it wrote goes to OUT
on_tty() { script -qec "$2" /dev/null </dev/null >"$1" 2>&1; }
# layout_of FILE: the layout xsr info names ("seekable" or "stream")
layout_of() { "$XSR" info "$1" | awk '$1 == "layout:" { print $2 }'; }

# ---- exit status 2 for usage errors, in every verb ----
check "no verb: exit 2" rc_is 2 "$XSR"
check "unknown verb: exit 2" rc_is 2 "$XSR" no-such-verb
for v in "${VERBS[@]}"; do
	# shellcheck disable=SC2086 # $v is "vm start" etc.: two words on purpose
	check "$v: an unknown option exits 2" rc_is 2 "$XSR" $v --no-such-option x y
	# shellcheck disable=SC2086
	check "$v: missing operands exit 2" rc_is 2 "$XSR" $v
	# shellcheck disable=SC2086
	check "$v: too many operands exit 2" rc_is 2 "$XSR" $v a b c d e f
	# getopt reads in order: an option the table lacks would be a usage error before --help
	# shellcheck disable=SC2086
	check "$v: --quiet and -q are options (then --help exits 0)" rc_is 0 "$XSR" $v --quiet -q --help
	# shellcheck disable=SC2086
	check "$v: --verbose and -v are options (then --help exits 0)" rc_is 0 "$XSR" $v --verbose -v --help
done
check "a required option's value missing exits 2" rc_is 2 "$XSR" synth --vcpus 1 "$T/x.elf" --mem
check "a bad option value exits 2" rc_is 2 "$XSR" convert --compress gzip "$T/x" "$T/y"
check "options that do not go together exit 2" rc_is 2 "$XSR" convert --layout seekable --compress zstd "$T/x" "$T/y"
check "an input that cannot be read exits 3, not 2" rc_is 3 "$XSR" info "$T/no-such-file"
check "a --vmcoreinfo file that cannot be read exits 3, like an input" rc_is 3 "$XSR" convert --vmcoreinfo "$T/no-such-file" "$T/x" "$T/y"

# ---- --quiet and --verbose ----
"$XSR" synth --mem 4M --vcpus 2 --zero-fraction 0.25 --seed 3 "$T/a.elf" 2>/dev/null
"$XSR" synth --mem 4M --vcpus 2 --zero-fraction 0.25 --seed 3 - >"$T/a.stream" 2>/dev/null
for c in "synth --mem 4M --vcpus 1 $T/q.elf" "convert $T/a.elf $T/q.stream" "info $T/a.elf" "verify $T/a.elf" \
	"cat-page $T/a.elf 0x10"; do
	# shellcheck disable=SC2086
	"$XSR" ${c%% *} -v ${c#* } >"$T/v.out" 2>"$T/v.err"
	check "${c%% *} --verbose: details on stderr" grep -q "^xsr ${c%% *}: " "$T/v.err"
	# shellcheck disable=SC2086
	"$XSR" ${c%% *} ${c#* } >"$T/n.out" 2>"$T/n.err"
	check "${c%% *} without --verbose: stderr empty" test ! -s "$T/n.err"
	check "${c%% *} --verbose: stdout as without it" cmp "$T/n.out" "$T/v.out"
done
check "convert --verbose names the layout" grep -q "streamed\|seekable" "$T/v.err"
on_tty "$T/tty-q.out" "'$XSR' convert --quiet '$T/a.stream' '$T/q2.elf'"
check "convert --quiet on a terminal: nothing at all" test ! -s "$T/tty-q.out"
on_tty "$T/tty-q.out" "'$XSR' synth -q --mem 4M --vcpus 1 '$T/q3.elf'"
check "synth -q on a terminal: nothing at all" test ! -s "$T/tty-q.out"
check "verify --quiet: no output, exit 0" bash -c "[ -z \"\$('$XSR' verify --quiet '$T/a.elf' 2>&1)\" ]"
check "verify without --quiet: 'intact'" bash -c "'$XSR' verify '$T/a.elf' | grep -q ': intact$'"
check "the last of --verbose and --quiet wins" bash -c "[ -z \"\$('$XSR' verify -v --quiet '$T/a.elf' 2>&1)\" ]"

# ---- progress: on a terminal, labelled, not otherwise ----
# has_progress LABEL FILE: "\rLABEL: N/M pages (P%)" lines, the last at 100%, and no other label's
has_progress() {
	local lines; lines=$(tr '\r' '\n' <"$2" | grep -E '^[a-z-]+: [0-9]+/[0-9]+ pages \([0-9]+%\) *$')
	[ -n "$lines" ] || { echo "no progress in: $(head -c 200 "$2" | od -c | head -5)"; return 1; }
	! grep -v "^$1: " <<<"$lines" || { echo "other labels above"; return 1; }
	tail -n1 <<<"$lines" | grep -q '(100%)' || { echo "does not end at 100%"; return 1; }
}
on_tty "$T/tty.out" "'$XSR' convert '$T/a.stream' '$T/p.elf'"
check "convert on a terminal: '\\rconvert: N/M pages (P%)' up to 100%" has_progress convert "$T/tty.out"
on_tty "$T/tty.out" "'$XSR' convert '$T/a.elf' '$T/p.stream'"
check "convert from a seekable image: progress too" has_progress convert "$T/tty.out"
on_tty "$T/tty.out" "'$XSR' synth --mem 4M --vcpus 1 '$T/p2.elf'"
check "synth on a terminal: labelled synth" has_progress synth "$T/tty.out"
# synth --check goes through the restore engine (restore/restore.c), the one xsr restore uses
for f in a.elf a.stream; do
	on_tty "$T/tty.out" "'$XSR' synth --mem 4M --vcpus 2 --zero-fraction 0.25 --seed 3 --check '$T/$f'"
	check "synth --check $f on a terminal: the restore engine's progress" has_progress synth "$T/tty.out"
done
on_tty "$T/tty.out" "'$XSR' synth --json --mem 4M --vcpus 1 '$T/p3.elf'"
check "synth --json on a terminal: no progress" bash -c "! tr '\\r' '\\n' <'$T/tty.out' | grep -q '^synth: ' && grep -q '\"pages\"' '$T/tty.out'"
"$XSR" convert "$T/a.stream" "$T/np.elf" 2>"$T/np.err"
check "convert, stderr not a terminal: no progress" test ! -s "$T/np.err"

mkdir -p "$T/xen"
if python3 "$ROOT/tests/xen/gen.py" "$T/xen" >/dev/null 2>"$T/gen.err"; then
	on_tty "$T/tty.out" "'$XSR' import '$T/xen/pv.xl' '$T/pv.elf'"
	check "import on a terminal: '\\rimport: N/M pages (P%)' up to 100%" has_progress import "$T/tty.out"
	"$XSR" import "$T/xen/hvm.xl" "$T/hvm.elf" 2>"$T/np.err"
	check "import, stderr not a terminal: no progress" test ! -s "$T/np.err"
	on_tty "$T/tty.out" "'$XSR' import -q '$T/xen/hvm.xl' '$T/hvm-q.elf'"
	check "import --quiet on a terminal: nothing" test ! -s "$T/tty.out"
	on_tty "$T/tty.out" "'$XSR' export '$T/pv.elf' '$T/pv-back.xl'"
	check "export on a terminal: labelled export" has_progress export "$T/tty.out"
	"$XSR" export "$T/pv.elf" "$T/pv-back2.xl" 2>"$T/np.err"
	check "export, stderr not a terminal: no progress" test ! -s "$T/np.err"
	check "export with and without progress: the same file" cmp "$T/pv-back.xl" "$T/pv-back2.xl"
	"$XSR" import -v "$T/xen/pv.xl" "$T/pv-v.elf" 2>"$T/v.err"
	check "import --verbose: what was read and written, on stderr" grep -q "^xsr import: .*pv.xl" "$T/v.err"
	"$XSR" export --verbose "$T/pv.elf" "$T/pv-v.xl" 2>"$T/v.err"
	check "export --verbose: the format, on stderr" grep -q "^xsr export: .* as an xl save" "$T/v.err"
	# ---- --layout for import ----
	"$XSR" import --layout stream "$T/xen/pv.xl" "$T/pv-l.stream" && "$XSR" import --stream "$T/xen/pv.xl" "$T/pv-s.stream"
	check "import --layout stream writes a stream" test "$(layout_of "$T/pv-l.stream")" = stream
	check "import --stream (the older spelling) is --layout stream" cmp "$T/pv-l.stream" "$T/pv-s.stream"
	check "import --layout seekable writes a seekable image" bash -c "'$XSR' import --layout seekable '$T/xen/pv.xl' '$T/pv-l.elf' && cmp '$T/pv-l.elf' '$T/pv.elf'"
	check "import --layout bogus exits 2" rc_is 2 "$XSR" import --layout bogus "$T/xen/pv.xl" "$T/pv-b.elf"
	check "import --layout seekable onto stdout exits 2" rc_is 2 "$XSR" import --layout seekable "$T/xen/pv.xl" -
else
	bad "generate the Xen inputs (tests/xen/gen.py)"
	cat "$T/gen.err"
fi

# ---- --layout for synth and convert ----
S=(--mem 4M --vcpus 2 --zero-fraction 0.25 --seed 3)
"$XSR" synth "${S[@]}" --layout stream "$T/l.stream"
check "synth --layout stream writes a stream" test "$(layout_of "$T/l.stream")" = stream
"$XSR" synth "${S[@]}" --stream "$T/s.stream"
check "synth --stream (the older spelling) is --layout stream" cmp "$T/l.stream" "$T/s.stream"
"$XSR" synth "${S[@]}" --layout seekable "$T/l.elf"
check "synth --layout seekable: the image synth writes without --layout" cmp "$T/l.elf" "$T/a.elf"
check "synth --layout seekable: layout seekable" test "$(layout_of "$T/l.elf")" = seekable
check "synth --layout bogus exits 2" rc_is 2 "$XSR" synth "${S[@]}" --layout bogus "$T/b.elf"
check "synth --layout seekable onto stdout exits 2" rc_is 2 "$XSR" synth "${S[@]}" --layout seekable -
"$XSR" convert --layout stream "$T/a.elf" "$T/c-l.stream"
check "convert --layout stream writes a stream" test "$(layout_of "$T/c-l.stream")" = stream
"$XSR" convert --to stream "$T/a.elf" "$T/c-t.stream"
check "convert --to stream (the older spelling) is --layout stream" cmp "$T/c-l.stream" "$T/c-t.stream"
check "convert --layout seekable from a stream: the direct seekable image" \
	bash -c "'$XSR' convert --layout seekable '$T/c-l.stream' '$T/c-l.elf' && cmp '$T/c-l.elf' '$T/a.elf'"
check "convert --layout bogus exits 2" rc_is 2 "$XSR" convert --layout bogus "$T/a.elf" "$T/b.elf"
check "convert --layout seekable onto stdout exits 2" rc_is 2 "$XSR" convert --layout seekable "$T/a.elf" -

# ---- the man page: every option of every verb's --help, every verb in EXIT STATUS ----
# One python3 run for every verb (starting python3 is the slow part of this tier).
HV=(synth info verify convert cat-page vm save core restore migrate receive import export)
for v in "${HV[@]}"; do "$XSR" "$v" --help >"$T/help-$v.txt" 2>&1; done
"$XSR" --help >"$T/help.txt"
python3 - "$MAN" "$T" "${HV[@]}" >"$T/man.res" 2>&1 <<'PY'
import re, sys
man, tdir, verbs = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
text = re.sub(r"\\f[BIRP]", "", man).replace("\\-", "-")
sections = re.split(r"^\.SH ", text, flags=re.M)
common = next(s for s in sections if s.startswith("COMMON OPTIONS"))
verbs_sec = next(s for s in sections if s.startswith("VERBS"))
# a verb's entries: ".TP" then ".B VERB ..." up to the next ".TP" + ".B"
entries = re.split(r"^\.TP\n(?=\.B )", verbs_sec, flags=re.M)
for verb in verbs:
    opts = set(re.findall(r"(?<![A-Za-z0-9-])(--[a-z][a-z0-9-]*)", open("%s/help-%s.txt" % (tdir, verb)).read()))
    mine = "\n".join(e for e in entries if re.match(r"\.B " + re.escape(verb) + r"\b", e))
    missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z0-9-])", mine + common))
    if not opts:
        print("BAD %s no options found in --help" % verb)
    elif not mine:
        print("BAD %s no entry under VERBS" % verb)
    elif missing:
        print("BAD %s not in the man page: %s" % (verb, " ".join(missing)))
    else:
        print("OK %s %d options" % (verb, len(opts)))
table = text[text.index("EXIT STATUS"):]
table = table[table.index(".TS"):table.index(".TE")]
rows = {l.split("|")[0] for l in table.splitlines() if "|" in l}
listed = re.findall(r"^  ([a-z-]+) ", open(tdir + "/help.txt").read(), flags=re.M)
missing = [v for v in listed if v not in rows]
print("%s exit-status %s" % ("BAD" if missing or not listed else "OK", " ".join(missing) or len(listed)))
PY
# man_ok KEY: the python3 run above said "OK KEY"
man_ok() { grep -q "^OK $1 " "$T/man.res" || { grep "^BAD $1 " "$T/man.res"; cat "$T/man.res" | grep -v '^\(OK\|BAD\) '; return 1; }; }
for v in "${HV[@]}"; do
	check "man page: every option 'xsr $v --help' lists is under $v (or COMMON OPTIONS)" man_ok "$v"
done
check "man page: EXIT STATUS has a row for every verb 'xsr --help' lists" man_ok exit-status

summary
