# Shared helpers for the KVM tests (sourced, not run).
#
# Every test starts its VMMs through start_vm/restore_vm, which record the
# daemon's pid; the EXIT trap stops them by pid whatever happens.  Nothing
# sleeps a fixed time: progress is polled with a deadline, because the guest
# may run under KVM's instruction emulator at ~1 M instructions/s.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XSR=${XSR:-$ROOT/bin/xsr}
GUEST=${GUEST:-$ROOT/bin/xsr-guest.elf}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/xsr-kvm.XXXXXX")
PIDS=()
MOUNTS=()
PASS=0
FAIL=0
DEADLINE=${XSR_TEST_DEADLINE:-60}

ok() { echo "ok   - $*"; PASS=$((PASS + 1)); }
nok() { echo "FAIL - $*"; FAIL=$((FAIL + 1)); }
# check "description" command...: pass if the command succeeds
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else nok "$d"; fi
}

alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

cleanup() {
	local p i
	for p in "${PIDS[@]}"; do
		alive "$p" && kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.05; done
		alive "$p" && kill -9 "$p" 2>/dev/null
	done
	for p in "${MOUNTS[@]}"; do umount "$p" 2>/dev/null || true; done
	if [ "${FAIL:-0}" -ne 0 ] && [ -z "${XSR_KEEP_TMP:-}" ]; then
		for f in "$TMP"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

finish() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

skip() {
	echo "SKIPPED: $*"
	echo "0 passed, 0 failed (skipped)"
	exit 0
}

# Skip loudly unless this machine can run a KVM guest at all.
require_kvm() {
	[ -x "$XSR" ] || { echo "FAIL - $XSR not built (run make)"; exit 1; }
	[ -r "$GUEST" ] || { echo "FAIL - $GUEST not built (run make)"; exit 1; }
	[ -e /dev/kvm ] || skip "KVM tests: /dev/kvm does not exist on this machine"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "KVM tests: /dev/kvm is not accessible to uid $(id -u)"
	local out pid
	if ! out=$("$XSR" vm start --mem 4M --vcpus 1 --control "$TMP/probe" 2>&1); then
		case $out in
		*"/dev/kvm"* | *KVM_CREATE_VM* | *"KVM API"*) skip "KVM tests: $out" ;;
		esac
		echo "FAIL - probe VM did not start: $out"
		exit 1
	fi
	pid=$out
	PIDS+=("$pid")
	"$XSR" vm stop "$TMP/probe" >/dev/null
}

# start_vm SOCK MEM VCPUS: prints nothing, records the pid in VM_PID.
start_vm() {
	VM_PID=$("$XSR" vm start --mem "$2" --vcpus "$3" --control "$1" --guest "$GUEST") || return 1
	PIDS+=("$VM_PID")
}

# restore_vm SOCK ARGS...: xsr restore ARGS --control SOCK; pid in VM_PID.
restore_vm() {
	local sock=$1
	shift
	VM_PID=$("$XSR" restore "$@" --control "$sock") || return 1
	PIDS+=("$VM_PID")
}

status() { "$XSR" vm status "$1" --json; }
counters() { status "$1" | jq -r '.counters | join(" ")'; }
errors() { status "$1" | jq -r '.errors'; }
state() { status "$1" | jq -r '.state'; }

# wait_moving SOCK: every vCPU's counter moves past its current value.
wait_moving() {
	local first now t0=$SECONDS
	first=($(counters "$1")) || return 1
	while ((SECONDS - t0 < DEADLINE)); do
		now=($(counters "$1")) || return 1
		local moved=0 i
		for i in "${!first[@]}"; do ((now[i] > first[i])) && moved=$((moved + 1)); done
		((moved == ${#first[@]})) && return 0
		sleep 0.05
	done
	echo "counters stuck at ${now[*]} (from ${first[*]})" >&2
	return 1
}

# counters_at_least SOCK "C0 C1 ...": each counter >= the given value.
counters_at_least() {
	local want=($2) now i
	now=($(counters "$1")) || return 1
	((${#now[@]} == ${#want[@]})) || return 1
	for i in "${!want[@]}"; do ((now[i] >= want[i])) || return 1; done
}

stop_vm() { "$XSR" vm stop "$1" >/dev/null; }
