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

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	# No KVM here: the same demo, on a real guest, in the nested-KVM rig.
	if why=$(tests/kvm-rig/rig.sh probe 2>&1); then
		echo "No usable /dev/kvm here: the demo runs in the nested-KVM rig (Debian's kernel in QEMU/TCG"
		echo "with kvm_amd, this machine's root shared read-only; docs/rigs.md).  Its first start downloads"
		echo "and unpacks the kernel (~20 s); every start then boots in ~30 s, and the guest runs emulated."
		t0=$(date +%s.%N)
		rc=0
		tests/kvm-rig/rig.sh exec scripts/demo.sh || rc=$?
		echo "(rig: built, booted, ran the demo and powered off in $(echo "$(date +%s.%N) - $t0" | bc | cut -d. -f1) s)"
		exit $rc
	fi
	echo "SKIPPED: /dev/kvm is not usable here and the nested-KVM rig cannot run ($why); showing the format on a synthetic domain instead"
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
