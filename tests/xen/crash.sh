#!/bin/bash
# crash (the real tool, Debian's 8.0.2) with the golden domU's debug vmlinux
# on xc_core files: the original `xl dump-core` (the baseline), and what
# `xsr export --format xc-core` makes of the imported dump-core, of the
# imported `xl save` (page tables localised) and of the dump-core read as an
# `xsr core DOMID` image.  Asserts on what crash prints: sys, bt, bt -a, log,
# vtop, kmem -i and a kernel variable.  crash 8.0.2's `ps` lists only the
# swapper on 6.1 kernels (fixed in 8.0.4), so ps is not asked.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/tests/build/xen-crash
. tests/xen/lib.inc
rm -rf "$B" && mkdir -p "$B"

if ! command -v crash >/dev/null; then
	echo "SKIPPED: crash is not installed (tests/install-deps.sh installs it); nothing counted"
	exit 0
fi
source tests/xen/vmlinux.inc
V=$(golden_vmlinux crash "crash on the golden domU's xc_core exports") || exit 0
for f in xen417-rigu.core.zst xen417-rigu.save.zst; do
	[ -f "$G/$f" ] || { ko "golden file $G/$f missing"; echo "$pass passed, $fail failed"; exit 1; }
done

zstd -q -d -c "$G/xen417-rigu.core.zst" >"$B/rigu.core"
zstd -q -d -c "$G/xen417-rigu.save.zst" >"$B/rigu.save"
check "import the golden xl dump-core" "$X" import "$B/rigu.core" "$B/core.elf"
check "import the golden xl save" "$X" import "$B/rigu.save" "$B/save.elf"
rm -f "$B/rigu.save"
check "export the imported dump-core as xc-core" "$X" export --format xc-core "$B/core.elf" "$B/core.xc"
check "export the imported save as xc-core" "$X" export --format xc-core "$B/save.elf" "$B/save.xc"
check "export the dump-core read as an xsr core image as xc-core" \
	env XSR_TEST_XCCORE_NATIVE=1 "$X" export --format xc-core "$B/core.elf" "$B/native.xc"
rm -f "$B/core.elf" "$B/save.elf"

printf '%s\n' sys bt "bt -a" log "vtop ffffffff81000000" "kmem -i" "p jiffies_64" quit >"$B/cmds"
runcrash() { # FILE -> FILE.crash (timeout: crash must never hang the test)
	timeout -k 10 180 crash -s "$V" "$1" -i "$B/cmds" </dev/null >"$1.crash" 2>&1
}
has() { grep -q -- "$2" "$1" || { echo "no '$2' in $1:"; head -n 40 "$1"; return 1; }; }
export -f has
common() { # NAME FILE: what every one of these dumps must show
	local n=$1 o=$2.crash
	check "$n: sys says RELEASE 6.1.0-56-amd64, 1 CPU, 127.6 MB" bash -c \
		"grep -q 'RELEASE: 6.1.0-56-amd64' '$o' && grep -q 'CPUS: 1\$' '$o' && grep -q 'MEMORY: 127.6 MB' '$o'"
	check "$n: bt of the idle task runs down to xen_start_kernel" bash -c \
		"has '$o' 'PID: 0 .*COMMAND: \"swapper/0\"' && has '$o' 'do_idle at ffffffff' && has '$o' 'xen_start_kernel at ffffffff'"
	check "$n: log holds the boot lines" bash -c \
		"has '$o' 'Linux version 6.1.0-56-amd64' && has '$o' 'Hypervisor detected: Xen PV' && has '$o' 'Run /init as init process'"
	check "$n: vtop translates the kernel text through the machine frames" bash -c \
		"has '$o' '^ffffffff81000000  1000000 ' && has '$o' 'PAGE: .* \\[machine\\]' && has '$o' '1000065   1000000  (PRESENT'"
	check "$n: kmem -i shows TOTAL MEM 20516 pages" has "$o" 'TOTAL MEM    20516      80.1 MB'
	check "$n: no read errors" bash -c "! grep -E -i 'read error|cannot read|invalid kernel virtual|seek error' '$o'"
}

check "crash on the original xl dump-core (baseline)" runcrash "$B/rigu.core"
common "xl dump-core" "$B/rigu.core"
check "xl dump-core: bt is xen_safe_halt in the idle loop" has "$B/rigu.core.crash" 'xen_safe_halt at ffffffff81027761'
check "xl dump-core: jiffies_64 = 4294901056" has "$B/rigu.core.crash" 'jiffies_64 = $1 = 4294901056'

check "crash on the export of the imported dump-core" runcrash "$B/core.xc"
common "export of the dump-core" "$B/core.xc"
check "export of the dump-core: crash prints exactly what it prints for the original" \
	diff <(grep -v DUMPFILE "$B/rigu.core.crash") <(grep -v DUMPFILE "$B/core.xc.crash")

check "crash on the export of the dump-core read as an xsr core image" runcrash "$B/native.xc"
common "xsr core shape" "$B/native.xc"
check "xsr core shape: crash prints exactly what it prints for the original" \
	diff <(grep -v DUMPFILE "$B/rigu.core.crash") <(grep -v DUMPFILE "$B/native.xc.crash")

check "crash on the export of the imported xl save" runcrash "$B/save.xc"
common "export of the save" "$B/save.xc"
check "export of the save: bt -a finds the vCPU in xen_suspend under stop_machine (migration/0)" bash -c \
	"has '$B/save.xc.crash' 'COMMAND: \"migration/0\"' && has '$B/save.xc.crash' 'xen_suspend at ffffffff' && has '$B/save.xc.crash' 'multi_cpu_stop at ffffffff'"
check "export of the save: jiffies_64 = 4294924030 (the save's own, later than the dump's)" \
	has "$B/save.xc.crash" 'jiffies_64 = $1 = 4294924030'

for f in rigu.core core.xc native.xc save.xc; do
	echo "---- crash on $f (excerpt: sys, bt -a, vtop, kmem -i, p jiffies_64)"
	awk '/^PID:/ { n++ } n == 1 && /^( #|PID:)/ { next } { print }' "$B/$f.crash" |
		grep -E 'DUMPFILE|RELEASE|^PID|^ #[0-9]|^ffffffff81000000|PAGE: .*machine|^ *TOTAL MEM|jiffies_64' | sed 's/^/     /' 
done
rm -f "$B"/*.core "$B"/*.xc
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
