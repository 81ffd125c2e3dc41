#!/bin/bash
# Crash analysis on a real KVM guest: a paging core lets `gdb xsr-guest.elf
# CORE` print the guest's variables as `xsr vm status` saw them; the gdb
# script's `xsr virt` translates a symbol to the physical address whose bytes
# match; one thread per vCPU; rip matches the saved state.
set -uo pipefail
. "$(dirname "$0")/lib.inc"
require_kvm
SCRIPT=$ROOT/gdb-scripts/xsrelf.py


for vcpus in 1 2; do
	S=$TMP/g$vcpus.sock
	start_vm "$S" 16M "$vcpus" || { nok "start a $vcpus-vCPU guest"; continue; }
	# Let it count, then hold it still so status and core see the same moment.
	for ((i = 0; i < 100; i++)); do
		c=$("$XSR" vm status "$S" --json | python3 -c 'import json,sys; print(min(map(int, json.load(sys.stdin)["counters"])))')
		[ "$c" -gt 5 ] && break
		sleep 0.1
	done
	"$XSR" vm pause "$S" >/dev/null
	want=$("$XSR" vm status "$S" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(" ".join(map(str, j["counters"][:'"$vcpus"'])), j["errors"])')
	check "$vcpus vCPU(s): core --paging of the running guest" "$XSR" core --paging vm:"$S" "$TMP/paging.elf"
	check "$vcpus vCPU(s): physical core" "$XSR" core vm:"$S" "$TMP/phys.elf"
	"$XSR" vm resume "$S" >/dev/null
	check "$vcpus vCPU(s): the paging core verifies" "$XSR" verify -q "$TMP/paging.elf"
	got=$(gdb -nx -batch "$GUEST" -c "$TMP/paging.elf" -ex 'print guest_counters' -ex 'print guest_errors' 2>/dev/null |
		python3 -c '
import re, sys
lines = sys.stdin.read().splitlines()
c = re.search(r"\$1 = \{([^}]*)\}", "\n".join(lines)).group(1).split(",")
e = re.search(r"\$2 = (\d+)", "\n".join(lines)).group(1)
print(" ".join(x.strip() for x in c[:'"$vcpus"']), e)')
	check "$vcpus vCPU(s): gdb prints guest_counters/guest_errors = status at that moment ($want)" test "$got" = "$want"
	n=$(gdb -nx -batch -c "$TMP/phys.elf" -ex 'info threads' 2>/dev/null | grep -cE '^[* ] +[0-9]+ +LWP')
	check "$vcpus vCPU(s): info threads shows $vcpus thread(s)" test "$n" -eq "$vcpus"
	for ((v = 0; v < vcpus; v++)); do
		rip=$("$XSR" info --vcpu "$v" --json "$TMP/phys.elf" | python3 -c 'import json,sys; print(hex(int(json.load(sys.stdin)["rip"], 0)))')
		g=$(gdb -nx -batch -c "$TMP/phys.elf" -ex "thread $((v + 1))" -ex 'info registers rip' 2>/dev/null | awk '/^rip/{print $2}')
		check "$vcpus vCPU(s): vCPU $v info registers rip ($g) = saved state ($rip)" test "$g" = "$rip"
	done
	# xsr virt on &guest_counters: the physical address it finds holds the counters.
	addr=$(nm "$GUEST" | awk '$3 == "guest_counters" {print "0x"$1}')
	gdb -nx -batch -c "$TMP/phys.elf" -ex "source $SCRIPT" -ex "xsr virt $addr" >"$TMP/virt.out" 2>&1
	pa=$(grep -oE 'physical 0x[0-9a-f]+' "$TMP/virt.out" | head -1 | cut -d' ' -f2)
	if [ -n "$pa" ]; then
		pfn=$(printf '0x%x' $((pa >> 12)))
		off=$((pa & 4095))
		"$XSR" cat-page "$TMP/phys.elf" "$pfn" > "$TMP/page.bin"
		bytes=$(od -An -tu8 -j "$off" -N $((8 * vcpus)) "$TMP/page.bin" | xargs)
		check "$vcpus vCPU(s): xsr virt $addr -> $pa, whose bytes are the counters ($bytes)" test "$bytes" = "${want% *}"
	else
		nok "$vcpus vCPU(s): xsr virt $addr gave no physical address"; cat "$TMP/virt.out"
	fi
	"$XSR" vm stop "$S" >/dev/null
done
# refused as a usage error (exit 2) naming the reason, before any VMM is asked:
# "vm:/nonexistent would fail anyway" is not what is being checked
out=$("$XSR" core --paging vm:/nonexistent - 2>&1 >/dev/null) && rc=0 || rc=$?
check "core --paging refuses stdout (exit 2)" test "$rc" -eq 2
check "  ... saying it needs a regular file" grep -q "need a regular file" <<<"$out"
finish
