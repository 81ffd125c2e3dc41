#!/bin/bash
# tests/run-all.sh's summary line, on a mock tree of tiers: a tier that dies
# before its own summary, one whose line says 0 failed but exits 1, and a
# skip must all show in "N passed, M failed, K skipped", and the exit code.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
M=$T/mock
mkdir -p "$M/tests/build" "$M/tests/a" "$M/tests/b"
cp "$ROOT/tests/run-all.sh" "$M/tests/"
printf '#!/bin/sh\necho "[====] Synthesis: Tested: 3 | Passing: 3 | Failing: 0 | Crashing: 0"\n' >"$M/tests/build/unit"
chmod +x "$M/tests/build/unit"
printf 'echo "ok - one"\necho "2 passed, 0 failed"\n' >"$M/tests/a/good.sh"
printf 'echo "SKIPPED: mock: nothing to run here"\necho "0 passed, 0 failed"\n' >"$M/tests/a/skips.sh"
# the rig's own script and the helpers are not tiers
mkdir -p "$M/tests/kvm-rig" "$M/tests/rig"
printf 'echo "usage: ..."\nexit 2\n' >"$M/tests/kvm-rig/rig.sh"
printf 'exit 3\n' >"$M/tests/rig/lib.inc"

summary_of() { bash "$M/tests/run-all.sh" >"$T/out" 2>&1; rc=$?; line=$(tail -n1 "$T/out"); }
summary_of
check "all good: '5 passed, 0 failed, 1 skipped', exit 0 (got '$line', exit $rc)" test "$line" = "5 passed, 0 failed, 1 skipped" -a "$rc" -eq 0

printf 'echo "ok - before dying"\nexit 1\n' >"$M/tests/b/dies.sh"
summary_of
check "a tier that exits 1 before its summary counts as a failure (got '$line', exit $rc)" test "$line" = "5 passed, 1 failed, 1 skipped" -a "$rc" -ne 0
check "  ... and is named in a FAILED line" grep -q '^FAILED: b/dies.sh (exit 1' "$T/out"

printf 'echo "3 passed, 0 failed"\nexit 1\n' >"$M/tests/b/dies.sh"
summary_of
check "a tier whose line says 0 failed but exits 1 counts as a failure (got '$line')" test "$line" = "8 passed, 1 failed, 1 skipped" -a "$rc" -ne 0

printf 'echo "3 passed, 2 failed"\nexit 1\n' >"$M/tests/b/dies.sh"
summary_of
check "a tier with its own failures adds them, not one more (got '$line')" test "$line" = "8 passed, 2 failed, 1 skipped" -a "$rc" -ne 0
summary
