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
	echo "SKIPPED: /dev/kvm is not usable here; showing the format on a synthetic domain instead"
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
