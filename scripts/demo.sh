#!/bin/bash
# The main job, as a demo: start the KVM test guest, save it, look inside the
# image, restore it and watch it carry on counting.
set -euo pipefail
cd "$(dirname "$0")/.."
XSR=$PWD/bin/xsr
D=$(mktemp -d /tmp/xsr-demo.XXXXXX)
pids=()
cleanup() {
	for s in "$D"/*.sock; do [ -S "$s" ] && "$XSR" vm stop "$s" >/dev/null 2>&1 || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$D"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

# Which guest: the KVM test VMM where /dev/kvm works; otherwise the same test
# guest under QEMU (TCG), which needs neither KVM nor root.  XSR_DEMO=kvm,
# qemu or rig (the nested-KVM rig, as root) chooses.
kvm_ok() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
mode=${XSR_DEMO:-}
if [ -z "$mode" ]; then
	if kvm_ok; then mode=kvm
	elif command -v qemu-system-x86_64 >/dev/null; then mode=qemu
	else mode=rig
	fi
fi
case $mode in
kvm | qemu | rig) ;;
*) echo "demo: XSR_DEMO=$mode: expected kvm, qemu or rig" >&2; exit 2 ;;
esac
if [ "$mode" = kvm ] && ! kvm_ok; then
	echo "demo: XSR_DEMO=kvm but /dev/kvm is not usable here (try XSR_DEMO=qemu)" >&2
	exit 2
fi

if [ "$mode" = qemu ]; then
	# The project's test guest booted by QEMU (its PVH entry), saved with
	# `xsr save qemu:SOCK`, opened, and restored into a new QEMU with
	# `xsr restore --qemu`.  The counter is read through QMP (HMP xp).
	command -v qemu-system-x86_64 >/dev/null || { echo "demo: qemu-system-x86_64 not installed (make deps installs it)" >&2; exit 2; }
	GUEST=$PWD/bin/xsr-guest.elf
	Q() { timeout 30 python3 tests/qemu/qmpc.py "$@"; }
	sym() { nm "$GUEST" | awk -v n="$1" '$3 == n { print $1 }'; }
	vma=$(sym GUEST_KERNEL_VMA)
	cpa=$((0x$(sym guest_counters) - 0x$vma))
	epa=$((0x$(sym guest_errors) - 0x$vma))
	qword() { Q "$1" hmp "$(printf 'xp /1gx 0x%x' "$2")" | tr -d '\r' | awk '{ print $NF }'; }
	counters() { printf '    guest_counters[0] = %d, guest_errors = %d\n' "$(qword "$1" $cpa)" "$(qword "$1" $epa)"; }
	QARGS=(qemu-system-x86_64 -accel tcg -machine pc-i440fx-7.2 -m 64 -nographic -nodefaults -kernel "$GUEST")
	echo "No /dev/kvm needed: the test guest runs under QEMU (TCG).  XSR_DEMO=kvm or XSR_DEMO=rig choose the others."
	say "${QARGS[*]} -qmp unix:src.sock,server=on,wait=off &"
	"${QARGS[@]}" -qmp "unix:$D/src.sock,server=on,wait=off" </dev/null >"$D/src.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		c=$(qword "$D/src.sock" $cpa 2>/dev/null) && [ $((c)) -gt 0 ] && break
		sleep 0.2
	done
	counters "$D/src.sock"
	printf "\n    (QMP stop: the guest pauses; the counter below is the one the image keeps)\n"
	Q "$D/src.sock" stop >/dev/null
	counters "$D/src.sock"
	run "$XSR" save "qemu:$D/src.sock" "$D/guest.elf" --stop --json
	say "$XSR info $D/guest.elf"
	"$XSR" info "$D/guest.elf" >"$D/info.txt"
	awk '/^  \.xsr\.passthru / { n++; next } /^config:/ && n { printf "  (and %d .xsr.passthru sections: QEMU device state, kept verbatim)\n", n; n = 0 } { print }' "$D/info.txt"
	run "$XSR" verify "$D/guest.elf"
	say "gdb -batch -c guest.elf -ex 'info registers rip rsp'"
	gdb -nx -batch -c "$D/guest.elf" -ex 'info registers rip rsp' 2>/dev/null | grep -E '^(rip|rsp)' || true
	say "xsr restore guest.elf --qemu --json -- ${QARGS[*]} -qmp unix:dst.sock,server=on,wait=off"
	"$XSR" restore "$D/guest.elf" --qemu --json -- "${QARGS[@]}" -qmp "unix:$D/dst.sock,server=on,wait=off" \
		>"$D/r.json" 2>"$D/r.err" || { cat "$D/r.err" >&2; exit 1; }
	cat "$D/r.json"
	pids+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$D/r.json")")
	for i in 1 2 3; do
		sleep 1
		counters "$D/dst.sock"
	done
	echo
	echo "The restored guest continues from the saved counters with errors: 0."
	exit 0
fi

if [ "$mode" = rig ]; then
	# No KVM and no QEMU path chosen: the KVM demo, on a real guest, in the nested-KVM rig.
	if why=$(tests/kvm-rig/rig.sh probe 2>&1); then
		echo "The demo runs in the nested-KVM rig (Debian's kernel in QEMU/TCG"
		echo "with kvm_amd, this machine's root shared read-only; docs/rigs.md).  Its first start downloads"
		echo "and unpacks the kernel (~20 s); every start then boots in ~30 s, and the guest runs emulated."
		t0=$(date +%s.%N)
		rc=0
		XSR_DEMO=kvm tests/kvm-rig/rig.sh exec scripts/demo.sh || rc=$?
		echo "(rig: built, booted, ran the demo and powered off in $(echo "$(date +%s.%N) - $t0" | bc | cut -d. -f1) s)"
		exit $rc
	fi
	echo "SKIPPED: /dev/kvm is not usable here, QEMU is not installed and the nested-KVM rig cannot run ($why); showing the format on a synthetic domain instead"
	run "$XSR" synth --mem 64M --vcpus 2 --zero-fraction 0.5 "$D/synth.elf"
	run "$XSR" info "$D/synth.elf"
	run "$XSR" verify "$D/synth.elf"
	exit 0
fi
pids+=("$("$XSR" vm start --mem 64M --vcpus 2 --control "$D/src.sock")")
say "xsr vm start --mem 64M --vcpus 2 --control src.sock   (pid ${pids[0]})"
sleep 1
run "$XSR" vm status "$D/src.sock"
run "$XSR" save "vm:$D/src.sock" "$D/guest.elf" --stop --json
run "$XSR" info "$D/guest.elf"
run "$XSR" verify "$D/guest.elf"
say "gdb -batch -c guest.elf -ex 'info threads'"
gdb -nx -batch -c "$D/guest.elf" -ex 'info threads' 2>/dev/null | grep -E 'LWP|Id'
run "$XSR" restore "$D/guest.elf" --control "$D/dst.sock" --json
for i in 1 2 3; do
	sleep 1
	run "$XSR" vm status "$D/dst.sock"
done
echo
echo "The restored guest continues from the saved counters with errors: 0."
