#!/bin/bash
# tests/bench/table.py, on a canned bench output (no timing is measured
# here): the @row lines of tests/bench/lib.inc and the SKIPPED lines must
# become the rows of bench/results/*.json with the schema the README
# documents and goal_met worked out from the goal; every other line passes
# through; a malformed row is an error that names its line; the Markdown
# table holds every row.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
TABLE=$ROOT/tests/bench/table.py
. "$ROOT/tests/bench/lib.inc"

{
	echo "== xsrelf bench: a canned run"
	row "save, 1G synthetic guest -> seekable file" 1.25 s "cp of the same 1G image" 2.5 2.00 "cp time / this time (x cp throughput)"
	row "save with page checksums" 1.10 s "the same save without them" 1.00 1.10 "with / without (overhead = ratio - 1)" "ratio<=1.05" "overhead <= 5 %"
	row "peak RSS of xsr synth" 7 MiB "" "" "" "" "figure<=64" "<= 64 MiB"
	row "lazy restore time-to-running, 4 GiB against 256 MiB" 130 ms "the same at 256 MiB" 118 1.10 "4 GiB / 256 MiB" "ratio~1" "about 1"
	row "pause | with a bar" 12.5 ms
	echo "SKIPPED: KVM rows (save pause): no /dev/kvm"
	printf '@row\t[nested KVM in TCG] migrate: downtime\t39000.0\tms\t\t\t\t\t\t\n'
	echo "a line for people"
} >"$T/good.txt"

python3 "$TABLE" --mode quick --json "$T/r.json" <"$T/good.txt" >"$T/out.txt" 2>"$T/err.txt"
rc=$?
check "table.py takes a good canned output: exit 0 (exit $rc)" test "$rc" -eq 0
check "  and nothing on stderr" test ! -s "$T/err.txt"
check "other lines pass through, @row lines do not" bash -c "grep -qx 'a line for people' '$T/out.txt' &&
	grep -qx '== xsrelf bench: a canned run' '$T/out.txt' && ! grep -q '^@row' '$T/out.txt'"
check "SKIPPED lines pass through too (run-all and people read them)" grep -qx 'SKIPPED: KVM rows (save pause): no /dev/kvm' "$T/out.txt"

check "the JSON has the schema: machine object, one object per row, every key" python3 - "$T/r.json" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
assert j['schema'] == 'xsrelf-bench/1' and j['mode'] == 'quick', j
m = j['machine']
assert set(m) == {'cpu', 'cores', 'kernel', 'date', 'commit', 'loadavg'}, m
assert isinstance(m['cpu'], str) and m['cpu'], m
assert isinstance(m['cores'], int) and m['cores'] > 0, m
assert isinstance(m['kernel'], str) and m['kernel'], m
assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', m['date']), m
assert len(m['loadavg']) == 3, m
keys = {'name', 'figure', 'unit', 'reference', 'reference_figure', 'ratio', 'ratio_is', 'goal', 'goal_met', 'skipped'}
rows = j['rows']
assert len(rows) == 7, len(rows)
for r in rows:
    assert set(r) == keys, r
    if r['skipped'] is None:
        assert isinstance(r['figure'], float) and isinstance(r['unit'], str), r
r = rows[0]
assert (r['figure'], r['unit'], r['reference'], r['reference_figure'], r['ratio']) == \
    (1.25, 's', 'cp of the same 1G image', 2.5, 2.0), r
assert r['goal'] is None and r['goal_met'] is None, r
PY

check "goal_met: overhead 10 % against <= 5 % is missed, 7 MiB <= 64 is met, 1.10 is about 1" python3 - "$T/r.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))['rows']
got = [(r['goal'], r['goal_met']) for r in rows[1:4]]
assert got == [('overhead <= 5 %', False), ('<= 64 MiB', True), ('about 1', True)], got
PY
check "a SKIPPED line is a row with its reason and no figure" python3 - "$T/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['rows'][5]
assert (r['name'], r['skipped'], r['figure']) == ('KVM rows (save pause)', 'no /dev/kvm', None), r
PY
check "a row from the rig (empty trailing fields) keeps its name and figure" python3 - "$T/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['rows'][6]
assert (r['name'], r['figure'], r['unit'], r['reference']) == ('[nested KVM in TCG] migrate: downtime', 39000.0, 'ms', None), r
PY

python3 "$TABLE" --markdown "$T/r.json" >"$T/md.txt"
check "the Markdown table: a header and one line per row" bash -c "[ \$(grep -c '^| ' '$T/md.txt') -eq 8 ] &&
	grep -qx '|---|---|---|---|---|' '$T/md.txt' &&
	grep -q '^| row | figure | reference | ratio | goal |\$' '$T/md.txt'"
check "  a missed goal is marked, a met one too" bash -c "grep -q 'overhead <= 5 %: \*\*missed\*\*' '$T/md.txt' && grep -q '<= 64 MiB: met' '$T/md.txt'"
check "  a | in a name is escaped" grep -qF '| pause \| with a bar | 12.5 ms |' "$T/md.txt"
check "  it is the table printed at the end of the run" bash -c "diff <(sed -n '/^quick run, /,\$p' '$T/out.txt' | head -n -2) '$T/md.txt' &&
	tail -n 1 '$T/out.txt' | grep -qx '(7 rows in .*r.json)'"

# Malformed rows: each is named with its line, the good ones are still written, exit 3.
for bad in $'@row\tno unit\t1.5' \
	$'@row\tnot a number\tfast\ts\t\t\t\t\t\t' \
	$'@row\ta ratio without saying what it is\t1\ts\tref\t2\t0.5\t\t\t' \
	$'@row\ta goal that is not one\t1\ts\t\t\t\t\tsmall\t' \
	$'@row\ta reference without a figure\t1\ts\tcp\t\t\t\t\t'; do
	{ head -n 3 "$T/good.txt"; echo "$bad"; } >"$T/bad.txt"
	python3 "$TABLE" --json "$T/b.json" <"$T/bad.txt" >/dev/null 2>"$T/err.txt"
	rc=$?
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$T/b.json" 2>/dev/null)
	check "malformed '$(echo "$bad" | cut -f2)': exit 3, line 4 named, 2 good rows kept (exit $rc, $n rows)" \
		bash -c "[ $rc -eq 3 ] && grep -q 'line 4: malformed row' '$T/err.txt' && [ '$n' = 2 ]"
done

# With a command: its output is read and its exit status returned.
python3 "$TABLE" --json "$T/c.json" -- bash -c "cat '$T/good.txt'; exit 5" >/dev/null 2>&1
rc=$?
check "-- COMMAND: the command's exit status (5) is table.py's ($rc)" test "$rc" -eq 5
check "  and its rows are written" python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["rows"]) == 7' "$T/c.json"

# The bench scripts' awk-made rows have the nine fields row() makes.
check "every literal @row format in tests/bench has nine tab-separated fields" python3 - "$ROOT/tests/bench" <<'PY'
import glob, re, sys
bad = []
for f in glob.glob(sys.argv[1] + '/*.sh'):
    for n, line in enumerate(open(f), 1):
        for fmt in re.findall(r'"@row(\\t[^"]*)\\n"', line):
            if fmt.count('\\t') != 9:
                bad.append('%s:%d: %d fields' % (f, n, fmt.count('\\t')))
assert not bad, bad
PY
check "the committed results files are valid by the same schema" python3 - "$ROOT/bench/results" <<'PY'
import glob, json, sys
files = glob.glob(sys.argv[1] + '/quick-*.json') + glob.glob(sys.argv[1] + '/full-*.json')
assert files, 'no committed results in bench/results'
for f in files:
    j = json.load(open(f))
    assert j['schema'] == 'xsrelf-bench/1' and j['machine']['cpu'] and j['rows'], f
    for r in j['rows']:
        assert r['skipped'] or (isinstance(r['figure'], float) and r['unit']), (f, r)
PY
summary
