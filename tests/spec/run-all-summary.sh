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

# Without /dev/kvm (forced here with XSR_KVM_RIG=1): a KVM tier goes to the
# rig (a mock that runs it), and the Xen rig's tier starts beside the native
# tiers once the KVM rig and the Xen prebuild are done, and runs once.
M2=$T/mock2
mkdir -p "$M2/tests/build" "$M2/tests/a" "$M2/tests/k" "$M2/tests/kvm-rig" "$M2/tests/xen-rig" "$M2/tests/rig"
cp "$ROOT/tests/run-all.sh" "$M2/tests/"
cp "$M/tests/build/unit" "$M2/tests/build/"
cat >"$M2/tests/kvm-rig/rig.sh" <<'EOF2'
case $1 in
probe | build) exit 0 ;;
tiers) out=$2; shift 2; mkdir -p "$out"
	for t; do n=${t#tests/}; n=${n//\//_}; n=${n%.sh}; bash "$t" >"$out/$n.log" 2>&1; echo $? >"$out/$n.rc"; done ;;
*) exit 2 ;;
esac
EOF2
printf 'require_kvm() { :; }\nrequire_kvm\necho "4 passed, 0 failed"\n' >"$M2/tests/k/kvm.sh"
printf 'if [ "${1:-}" = build ]; then exit 0; fi\necho xen >>"%s/xen.runs"\necho "7 passed, 0 failed"\n' "$M2" >"$M2/tests/xen-rig/rig.sh"
chmod +x "$M2/tests/kvm-rig/rig.sh" "$M2/tests/xen-rig/rig.sh"
for i in 1 2 3; do printf 'sleep 1\necho "1 passed, 0 failed"\n' >"$M2/tests/a/slow$i.sh"; done
XSR_KVM_RIG=1 bash "$M2/tests/run-all.sh" >"$T/out2" 2>&1; rc=$?; line=$(tail -n1 "$T/out2")
check "rig and overlap: every tier counted once: '3+3+4+7 = 17 passed' (got '$line', exit $rc)" \
	test "$line" = "17 passed, 0 failed, 0 skipped" -a "$rc" -eq 0
check "  ... the Xen rig's tier ran once ($(cat "$M2/xen.runs" 2>/dev/null | wc -l))" test "$(cat "$M2/xen.runs" 2>/dev/null | wc -l)" -eq 1
check "  ... and started before the last native tier, beside it" bash -c \
	"grep -n '^=== ' '$T/out2' | grep -A1 'xen-rig/rig.sh: started' | grep -q 'a/slow'"
check "  ... the KVM tier's result came back from the rig" grep -q '^=== k/kvm.sh (in the nested-KVM rig)' "$T/out2"
summary
