#!/bin/bash
# Run every test tier and print one summary line that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
failed=()
run() { # name cmd...
	local name=$1; shift
	local log=tests/build/log-${name//\//_}.txt
	echo "=== $name"
	"$@" >"$log" 2>&1
	local rc=$?
	tail -n 15 "$log" | sed 's/^/    /'
	local line; line=$(grep -E '^(SKIPPED|[0-9]+ passed, [0-9]+ failed)' "$log" | tail -n1)
	if grep -q '^SKIPPED' "$log"; then
		grep '^SKIPPED' "$log" | sed 's/^/!!! /'
		skip=$((skip + 1))
	fi
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		pass=$((pass + BASH_REMATCH[1])); fail=$((fail + BASH_REMATCH[2]))
	elif [[ $name == unit ]] && grep -q 'Synthesis: Tested:' "$log"; then
		local s; s=$(grep 'Synthesis: Tested:' "$log" | tail -n1)
		[[ $s =~ Passing:\ ([0-9]+) ]] && pass=$((pass + BASH_REMATCH[1]))
		[[ $s =~ Failing:\ ([0-9]+) ]] && fail=$((fail + BASH_REMATCH[1]))
		[[ $s =~ Crashing:\ ([0-9]+) ]] && fail=$((fail + BASH_REMATCH[1]))
	fi
	if [ $rc -ne 0 ]; then
		failed+=("$name (exit $rc, log $log)")
		[[ $line =~ ^[0-9]+\ passed,\ 0\ failed ]] && fail=$((fail + 1))
	fi
}
mkdir -p tests/build
run unit tests/build/unit --jobs 2
# Every tier folder's *.sh is a test (helpers are *.inc); bench and fuzz are not tests.
for t in tests/*/*.sh; do
	case "$t" in tests/bench/* | tests/fuzz/* | tests/install-deps.sh) continue ;; esac
	[ -f "$t" ] || continue
	run "${t#tests/}" bash "$t"
done
echo
[ ${#failed[@]} -gt 0 ] && printf 'FAILED: %s\n' "${failed[@]}"
[ $skip -gt 0 ] && echo "($skip tier(s) printed SKIPPED lines; see above)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ ${#failed[@]} -eq 0 ]
