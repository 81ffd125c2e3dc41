#!/usr/bin/env python3
"""The bench's rows as one JSON file and one Markdown table.

usage: table.py [--json OUT] [--mode full|quick] [-- COMMAND...]
       table.py --markdown RESULTS.json

Reads the bench's output (COMMAND's, or stdin without one) and passes every
line through except the `@row` lines (tests/bench/lib.inc), which it
collects; a `SKIPPED: reason` line becomes a row too, with the reason.  At
the end it writes OUT:

  {"schema": "xsrelf-bench/1", "mode": ..., "machine": {"cpu", "cores",
   "kernel", "date", "commit", "loadavg"}, "rows": [{"name", "figure",
   "unit", "reference", "reference_figure", "ratio", "ratio_is", "goal",
   "goal_met", "skipped"}, ...]}

(fields that do not apply are null; goal_met is true, false, or null with
no goal) and prints the same rows as a Markdown table.  Exit status:
COMMAND's, or 3 if a `@row` line was malformed (the other rows are still
written).  --markdown prints the table of a results file written earlier.
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys

SCHEMA = 'xsrelf-bench/1'
GOAL = re.compile(r'^(figure|ratio)(<=|>=|<|>|~)(-?[0-9.]+(?:e-?[0-9]+)?)$')


def number(s, what):
    try:
        v = float(s)
    except ValueError:
        raise ValueError('%s %r is not a number' % (what, s))
    if v != v or v in (float('inf'), float('-inf')):
        raise ValueError('%s %r is not finite' % (what, s))
    return v


def goal_met(goal, figure, ratio):
    m = GOAL.match(goal)
    on, op, want = m.group(1), m.group(2), float(m.group(3))
    v = figure if on == 'figure' else ratio
    if v is None:
        return None
    if op == '~':
        return abs(v - want) <= 0.25 * abs(want)
    return {'<=': v <= want, '>=': v >= want, '<': v < want, '>': v > want}[op]


def parse_row(line):
    f = line.rstrip('\n').split('\t')[1:]
    if len(f) != 9:
        raise ValueError('%d fields, expected 9' % len(f))
    name, fig, unit, ref, rfig, ratio, ratio_is, goal, goal_text = f
    if not name or not unit:
        raise ValueError('a row needs a name and a unit')
    r = {'name': name, 'figure': number(fig, 'figure'), 'unit': unit,
         'reference': ref or None,
         'reference_figure': number(rfig, 'reference figure') if rfig else None,
         'ratio': number(ratio, 'ratio') if ratio else None,
         'ratio_is': ratio_is or None, 'goal': None, 'goal_met': None, 'skipped': None}
    if r['ratio'] is not None and not ratio_is:
        raise ValueError('a ratio needs a RATIO-IS saying what it divides')
    if (r['reference'] is None) != (r['reference_figure'] is None):
        raise ValueError('a reference needs its figure and the other way round')
    if goal:
        if not GOAL.match(goal):
            raise ValueError('goal %r is not figure|ratio OP NUMBER' % goal)
        r['goal'] = goal_text or goal
        r['goal_met'] = goal_met(goal, r['figure'], r['ratio'])
    return r


def skipped_row(line):
    # "SKIPPED: WHAT: WHY" is a row named WHAT skipped for WHY
    text = line[len('SKIPPED:'):].strip()
    name, reason = text.split(': ', 1) if ': ' in text else ('skipped', text)
    return {'name': name,
            'figure': None, 'unit': None, 'reference': None, 'reference_figure': None,
            'ratio': None, 'ratio_is': None, 'goal': None, 'goal_met': None,
            'skipped': reason or 'no reason given'}


def machine():
    cpu = None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = ''
    return {'cpu': cpu, 'cores': os.cpu_count(), 'kernel': platform.release(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
            'commit': commit or None, 'loadavg': list(os.getloadavg())}


def fmt(v):
    if v is None:
        return ''
    if v == int(v) or abs(v) >= 100:
        return '%.0f' % v
    if abs(v) >= 10:
        return '%.1f' % v
    if abs(v) >= 0.1:
        return '%.3g' % v if abs(v) < 1 else '%.2f' % v
    return '%.3g' % v


def markdown(res):
    m = res['machine']
    out = ['%s run, %s, %s cores, Linux %s, %s%s' % (
        res['mode'], m['cpu'] or 'CPU unknown', m['cores'], m['kernel'], m['date'],
        ', commit %s' % m['commit'] if m.get('commit') else ''), '',
        '| row | figure | reference | ratio | goal |', '|---|---|---|---|---|']
    for r in res['rows']:
        cell = lambda s: (s or '').replace('|', '\\|')
        if r['skipped']:
            out.append('| %s | SKIPPED: %s | | | |' % (cell(r['name']), cell(r['skipped'])))
            continue
        ref = '%s: %s %s' % (r['reference'], fmt(r['reference_figure']), r['unit']) if r['reference'] else ''
        ratio = '%s (%s)' % (fmt(r['ratio']), r['ratio_is']) if r['ratio'] is not None else ''
        goal = ''
        if r['goal']:
            goal = '%s: %s' % (r['goal'], {True: 'met', False: '**missed**', None: '?'}[r['goal_met']])
        out.append('| %s | %s %s | %s | %s | %s |' % (cell(r['name']), fmt(r['figure']), r['unit'],
                                                      cell(ref), cell(ratio), cell(goal)))
    return '\n'.join(out) + '\n'


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == '--markdown':
        with open(args[1]) as f:
            sys.stdout.write(markdown(json.load(f)))
        return 0
    out, mode, cmd = None, 'full', None
    while args:
        a = args.pop(0)
        if a == '--json' and args:
            out = args.pop(0)
        elif a == '--mode' and args and args[0] in ('full', 'quick'):
            mode = args.pop(0)
        elif a == '--':
            cmd = args
            break
        else:
            sys.exit(__doc__)
    res = {'schema': SCHEMA, 'mode': mode, 'machine': machine(), 'rows': []}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) if cmd else None
    src = proc.stdout if proc else sys.stdin
    bad = 0
    for n, line in enumerate(src, 1):
        if line.startswith('@row\t'):
            try:
                res['rows'].append(parse_row(line))
            except ValueError as e:
                bad += 1
                print('table.py: line %d: malformed row: %s: %r' % (n, e, line.rstrip('\n')),
                      file=sys.stderr)
            continue
        if line.startswith('SKIPPED:'):
            res['rows'].append(skipped_row(line.rstrip('\n')))
        sys.stdout.write(line)
        sys.stdout.flush()
    rc = proc.wait() if proc else 0
    if out:
        os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
        with open(out + '.tmp', 'w') as f:
            json.dump(res, f, indent=1)
            f.write('\n')
        os.rename(out + '.tmp', out)
    print()
    sys.stdout.write(markdown(res))
    if out:
        print('\n(%d rows in %s)' % (len(res['rows']), out))
    return rc or (3 if bad else 0)


if __name__ == '__main__':
    sys.exit(main())
