#!/usr/bin/env bash
# Post-copy: the guest resumes on the receiver with pages still missing;
# userfaultfd turns its first touches into FAULT requests that the sender
# serves ahead of its background push.  Counters continue, guest_errors 0.
set -euo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm

# postcopy TAG VCPUS MEM MIGRATE-ARGS...
postcopy() {
	local tag=$1 n=$2 mem=$3 src=$TMP/$1.src dst=$TMP/$1.dst
	shift 3
	start_vm "$src" "$mem" "$n" || { nok "$tag: start"; return; }
	local spid=$VM_PID before
	wait_moving "$src" || { nok "$tag: source counting"; return; }
	start_receiver "$tag" --control "$dst" --once --json || { nok "$tag: receiver"; return; }
	before=$(counters "$src")
	if "$XSR" migrate vm:"$src" tcp:127.0.0.1:"$RX_PORT" --postcopy --json "$@" >"$TMP/$tag.json" 2>"$TMP/$tag.err"; then
		ok "$tag: post-copy migration completes"
	else
		nok "$tag: migrate: $(cat "$TMP/$tag.err")"
		return
	fi
	wait_gone "$RX_PID" || true
	rx_vm_pid >/dev/null
	check "$tag: source VMM exited after COMPLETE and COMMIT" wait_gone "$spid"
	check "$tag: report says post-copy, with its pages" jq -e '.postcopy == true and (.postcopy_pages | tonumber) > 0' "$TMP/$tag.json"
	check "$tag: receiver saw the same post-copy pages" bash -c "[ \"\$(jq -r .receive.postcopy_pages '$RX_OUT')\" = \"\$(jq -r .postcopy_pages '$TMP/$tag.json')\" ]"
	check "$tag: counters continue (from $before)" counters_at_least "$dst" "$before"
	check "$tag: guest keeps counting" wait_moving "$dst"
	check "$tag: guest_errors is 0" test "$(errors "$dst")" = 0
	stop_vm "$dst"
}

# Pure post-copy: every page follows the guest, so its first instructions
# fault.  The sender holds its background push back for a moment (a test
# hook) so that the guest's first touches, not the push, fetch its pages.
export XSR_MIG_TEST_PUSH_DELAY_MS=1500
postcopy pure-1 1 64M --postcopy-rounds 0
check "pure-1: the guest's first touches became FAULT requests" jq -e '(.faults | tonumber) >= 1' "$TMP/pure-1.json"
postcopy pure-2 2 64M --postcopy-rounds 0 --compress lz4
check "pure-2: the guest's first touches became FAULT requests" jq -e '(.faults | tonumber) >= 1' "$TMP/pure-2.json"
check "pure-1: every fault was served ahead of the push" jq -e '(.faults_served | tonumber) >= 1' "$TMP/pure-1.json"
unset XSR_MIG_TEST_PUSH_DELAY_MS
# One pre-copy round, then the pages the dirtier and the guest touched since.
export XSR_TEST_DIRTY_MBPS=40
postcopy after-round 2 32M --postcopy-rounds 1
unset XSR_TEST_DIRTY_MBPS
# FAULT requests that crossed the last pushed pages on the wire reach the
# sender after it has sent everything: dropped, the migration completes
# (the receiver sends three before COMPLETE: a test hook).
# The VMM's dirtier makes sure pages are still missing after the round: the
# guest itself may get no CPU during it (in the nested-KVM rig its vCPU runs
# at nice 19 on one CPU, and post-copy then carried 0 pages).
export XSR_MIG_TEST_CUT_RECEIVER=latefault XSR_TEST_DIRTY_MBPS=40
postcopy late-fault 1 16M --postcopy-rounds 1
unset XSR_MIG_TEST_CUT_RECEIVER XSR_TEST_DIRTY_MBPS
finish
