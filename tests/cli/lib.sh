# Shared helpers for the shell test tiers: source it, call ok/bad/check, end with summary.
PASS=0 FAIL=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XSR=${XSR:-$ROOT/bin/xsr}
T=$(mktemp -d /tmp/xsr-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
# check "description" command...   (passes if the command exits 0)
check() { local d=$1; shift; if "$@" >"$T/last.out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/     /' "$T/last.out" | head -20; fi; }
summary() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }
