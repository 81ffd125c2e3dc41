#!/bin/bash
# Run every test tier and print one summary line that CI reads:
#   N passed, M failed, K skipped
# A tier that exits non-zero without a "N passed, M failed" line of its own
# (it died before its summary) counts as one failure, as does one whose line
# says 0 failed; K counts the tiers that printed SKIPPED lines.
#
# Tiers that need /dev/kvm (those calling require_kvm) run natively where it
# works, and otherwise all together in one boot of the nested-KVM rig
# (tests/kvm-rig, docs/rigs.md), whose logs come back here and are counted
# exactly as native ones.  XSR_KVM_RIG=1 uses the rig even with /dev/kvm;
# XSR_KVM_RIG=0 never does (the tiers then say SKIPPED without /dev/kvm).
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
failed=()
# count NAME RC LOG: add a tier's result to the totals.
count() {
	local name=$1 rc=$2 log=$3
	tail -n 15 "$log" | sed 's/^/    /'
	local line; line=$(grep -E '^(SKIPPED|[0-9]+ passed, [0-9]+ failed)' "$log" | tail -n1)
	if grep -q '^SKIPPED' "$log"; then
		grep '^SKIPPED' "$log" | sed 's/^/!!! /'
		skip=$((skip + 1))
	fi
	local counted=0
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		pass=$((pass + BASH_REMATCH[1])); fail=$((fail + BASH_REMATCH[2])); counted=${BASH_REMATCH[2]}
	elif [[ $name == unit ]] && grep -q 'Synthesis: Tested:' "$log"; then
		local s; s=$(grep 'Synthesis: Tested:' "$log" | tail -n1)
		[[ $s =~ Passing:\ ([0-9]+) ]] && pass=$((pass + BASH_REMATCH[1]))
		[[ $s =~ Failing:\ ([0-9]+) ]] && { fail=$((fail + BASH_REMATCH[1])); counted=$((counted + BASH_REMATCH[1])); }
		[[ $s =~ Crashing:\ ([0-9]+) ]] && { fail=$((fail + BASH_REMATCH[1])); counted=$((counted + BASH_REMATCH[1])); }
	fi
	if [ "$rc" -ne 0 ]; then
		failed+=("$name (exit $rc, log $log)")
		# a tier that failed must show in the count, whatever its own line said
		[ "$counted" -gt 0 ] || fail=$((fail + 1))
	fi
}
run() { # name cmd...
	local name=$1; shift
	local log=tests/build/log-${name//\//_}.txt t0=$SECONDS
	echo "=== $name"
	"$@" >"$log" 2>&1
	local rc=$?
	count "$name" "$rc" "$log"
	echo "    ($((SECONDS - t0)) s)"
}
mkdir -p tests/build
run unit env LSAN_OPTIONS="suppressions=$PWD/tests/unit/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" tests/build/unit --jobs 2

tiers=()
for t in tests/*/*.sh; do
	# tests/kvm-rig/rig.sh is the rig itself (run below), not a tier
	case "$t" in tests/bench/* | tests/fuzz/* | tests/install-deps.sh | tests/kvm-rig/*) continue ;; esac
	[ -f "$t" ] && tiers+=("$t")
done
# Which tiers need KVM, and where they run: native, rig, or (neither) natively to say SKIPPED.
kvm_tiers=()
for t in "${tiers[@]}"; do grep -q '^require_kvm' "$t" && kvm_tiers+=("$t"); done
kvm_where=native
if [ ${#kvm_tiers[@]} -gt 0 ]; then
	if [ "${XSR_KVM_RIG:-}" = 1 ] || { [ "${XSR_KVM_RIG:-}" != 0 ] && ! { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; }; then
		if why=$(tests/kvm-rig/rig.sh probe 2>&1); then
			kvm_where=rig
		else
			export XSR_KVM_NO_RIG="the nested-KVM rig cannot run either: $why"
		fi
	fi
fi
# The KVM rig runs one vCPU and leaves a core mostly idle: the Xen rig's
# cache (debootstrap, ~200 s cold) is built meanwhile, for its tier below.
# A failure here only costs time: the tier builds again and says why.
# (The KVM rig's own build goes first, so that the two never run apt at once.)
xen_prebuild=
[ "$kvm_where" = rig ] && tests/kvm-rig/rig.sh build >tests/build/log-kvm-rig-build.txt 2>&1
# With /dev/kvm the native KVM tiers leave a core as idle as the rig did: the
# Xen rig's cache is built beside them too (its tier was 717 s in line, cold).
if [ "$(id -u)" = 0 ] && [ "${SANITIZE:-0}" != 1 ] &&
	! ldd bin/xsr 2>/dev/null | grep -q 'libasan\|libubsan' && [ -x tests/xen-rig/rig.sh ]; then
	tests/xen-rig/rig.sh build >tests/build/log-xen-rig-prebuild.txt 2>&1 &
	xen_prebuild=$!
fi
# The rig runs in the background while the native tiers run beside it (it
# keeps one core busy, they the other); its tiers are counted once it is done.
# The Xen rig's tier waits for both (it needs its cache and both cores).
# XSR_TEST_SERIAL=1 runs the rig first and alone, as before.
rig_pid=
rig_done() { # wait for the KVM rig and count its tiers
	[ -n "$rig_pid" ] || return 0
	wait "$rig_pid"
	rig_rc=$(cat tests/build/kvm-rig.rc 2>/dev/null || echo 1)
	rig_pid=
	echo "=== nested-KVM rig for ${#kvm_tiers[@]} tiers without /dev/kvm: ${kvm_tiers[*]}"
	sed 's/^/    /' tests/build/log-kvm-rig.txt | tail -n 40
	echo "    (rig: $((SECONDS - rig_t0)) s, exit $rig_rc)"
	local t name n log rc
	for t in "${kvm_tiers[@]}"; do
		name=${t#tests/}
		n=${name//\//_}
		n=${n%.sh}
		log=tests/build/log-${name//\//_}.txt
		echo "=== $name (in the nested-KVM rig)"
		if [ -f "$rig_out/$n.rc" ]; then
			cp "$rig_out/$n.log" "$log"
			[ ! -s "$rig_out/$n.hang" ] || { echo "--- the tier ran out of time; processes then:"; cat "$rig_out/$n.hang"; } >>"$log"
			rc=$(cat "$rig_out/$n.rc")
			[[ $rc =~ ^[0-9]+$ ]] || rc=1 # cut short while writing it
			count "$name" "$rc" "$log"
			# the rig exists to run these: a skip there is a failure
			if grep -q '^SKIPPED' "$log" && [ "$rc" -eq 0 ]; then
				fail=$((fail + 1))
				failed+=("$name (SKIPPED inside the nested-KVM rig, log $log)")
			fi
		else
			echo "the nested-KVM rig did not run this tier (rig exit $rig_rc; see tests/build/log-kvm-rig.txt)" >"$log"
			count "$name" 1 "$log"
		fi
	done
}
prebuild_done() {
	[ -n "$xen_prebuild" ] || return 0
	wait "$xen_prebuild" && echo "    (the Xen rig's cache was built beside the KVM rig)" ||
		echo "    (building the Xen rig's cache beside the KVM rig failed; its tier builds again: tests/build/log-xen-rig-prebuild.txt)"
	xen_prebuild=
}
if [ "$kvm_where" = rig ]; then
	echo "=== nested-KVM rig started for ${#kvm_tiers[@]} tiers; the native tiers run beside it"
	rig_out=tests/build/kvm-rig
	rm -rf "$rig_out" tests/build/kvm-rig.rc
	rig_t0=$SECONDS
	{
		tests/kvm-rig/rig.sh tiers "$rig_out" "${kvm_tiers[@]}" >tests/build/log-kvm-rig.txt 2>&1
		echo $? >tests/build/kvm-rig.rc
	} &
	rig_pid=$!
	[ "${XSR_TEST_SERIAL:-0}" != 1 ] || { rig_done; prebuild_done; }
fi

# The Xen rig's tier starts once the KVM rig and the prebuild are done,
# beside the native tiers still left: before, it ran after all of them,
# alone, while its dom0 mostly kept one of its two vCPUs busy.
# XSR_TEST_SERIAL=1 keeps it last and alone.
deferred=() bg_pid= bg_name= bg_t0=
bg_start() { # start the deferred tiers' first, in the background
	[ ${#deferred[@]} -gt 0 ] && [ -z "$bg_pid" ] || return 0
	bg_name=${deferred[0]#tests/}
	deferred=("${deferred[@]:1}")
	echo "=== $bg_name: started; the tiers below run beside it"
	bg_t0=$SECONDS
	{ bash "tests/$bg_name" >"tests/build/log-${bg_name//\//_}.txt" 2>&1; echo $? >tests/build/bg.rc; } &
	bg_pid=$!
}
bg_done() {
	[ -n "$bg_pid" ] || return 0
	wait "$bg_pid"
	bg_pid=
	echo "=== $bg_name"
	count "$bg_name" "$(cat tests/build/bg.rc 2>/dev/null || echo 1)" "tests/build/log-${bg_name//\//_}.txt"
	echo "    ($((SECONDS - bg_t0)) s)"
}
# ready_for_bg: the KVM rig and the Xen prebuild have finished (not waiting for them)
ready_for_bg() {
	[ "${XSR_TEST_SERIAL:-0}" != 1 ] || return 1
	{ [ -z "$rig_pid" ] || [ -f tests/build/kvm-rig.rc ]; } &&
		{ [ -z "$xen_prebuild" ] || ! kill -0 "$xen_prebuild" 2>/dev/null; }
}
rm -f tests/build/bg.rc
for t in "${tiers[@]}"; do
	[ "$t" = tests/xen-rig/rig.sh ] && [ -n "$rig_pid$xen_prebuild" ] && deferred+=("$t")
done
held=" ${deferred[*]} "
for t in "${tiers[@]}"; do
	name=${t#tests/}
	[ "$kvm_where" = rig ] && grep -q '^require_kvm' "$t" && continue
	[[ $held == *" $t "* ]] && continue
	if [ ${#deferred[@]} -gt 0 ] && ready_for_bg; then
		rig_done
		prebuild_done
		bg_start
	fi
	run "$name" bash "$t"
done
rig_done
prebuild_done
bg_done
for t in "${deferred[@]}"; do run "${t#tests/}" bash "$t"; done
echo
# The failing checks again, last: CI keeps only the end of the output.
for f in "${failed[@]}"; do
	log=${f##*log }; log=${log%)}
	[ -f "$log" ] && grep -A6 '^FAIL\|ACCEPT.*FAIL' "$log" | head -30 | sed "s|^|    ${f%% *}: |"
done
[ ${#failed[@]} -gt 0 ] && printf 'FAILED: %s\n' "${failed[@]}"
[ $skip -gt 0 ] && echo "($skip tier(s) printed SKIPPED lines; see above)"
echo "(all tiers: $SECONDS s)"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ ${#failed[@]} -eq 0 ]
