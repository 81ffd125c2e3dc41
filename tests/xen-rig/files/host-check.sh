#!/bin/bash
# Host side of the rig's acceptance: the ACCEPT lines of the dom0 run, gdb on
# the xsr core (registers, one thread per vCPU, the domU's marker read from
# guest memory), xsr verify, and Xen's verify-stream-v2 on the xl save and on
# the export of the xsr save.  Exit 0 only if everything passed.
set -u
OUT=${1:?usage: host-check.sh OUTDIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TOP=$(cd "$HERE/../.." && pwd)
C=${CACHE:-$HERE/cache}
XSR=$TOP/bin/xsr
fail=0
res() { echo "ACCEPT $1: $2"; case "$2" in PASS*) ;; *) fail=1 ;; esac; }
cd "$OUT" || exit 1
grep -E '^(ACCEPT|TIMING)' run.log
grep -q '^ACCEPT .*: FAIL' run.log && fail=1
grep -q '^RUN-END' run.log || res dom0-run "FAIL the command list did not finish"

if [ -s xsr.core ]; then
	"$XSR" verify xsr.core >/dev/null && res host-verify-core PASS || res host-verify-core FAIL
	# the marker's file offset -> its guest-physical address through the PT_LOADs -> gdb x/s
	addr=$(python3 - <<'PY'
import struct
f = open("xsr.core", "rb"); d = f.read()
i = d.find(b"marker=XENRIG_DOMU_MARKER_0123456789abcdef")
e_phoff, = struct.unpack_from("<Q", d, 0x20); e_phentsize, e_phnum = struct.unpack_from("<HH", d, 0x36)
for k in range(e_phnum):
    p_type, p_flags, p_off, p_vaddr, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", d, e_phoff + k * e_phentsize)
    if p_type == 1 and p_off <= i + 7 < p_off + p_filesz:
        print(hex(p_vaddr + i + 7 - p_off)); break
PY
)
	g=$(gdb -nx -batch -c xsr.core -ex 'info threads' -ex 'info registers rip rsp cr3' ${addr:+-ex "x/s $addr"} 2>&1)
	echo "$g" | sed 's/^/gdb: /'
	if echo "$g" | grep -q 'rip ' && echo "$g" | grep -q 'XENRIG_DOMU_MARKER_0123456789abcdef'; then
		res gdb-core "PASS registers and the marker at $addr"
	else
		res gdb-core "FAIL (marker address: ${addr:-not found in the core})"
	fi
fi
VS=$C/xen-utils/usr/lib/xen-4.17/bin/verify-stream-v2
export PYTHONPATH=$C/xen-utils/usr/lib/xen-4.17/lib/python:$(ls -d "$C"/xen-utils/usr/lib/python3*/dist-packages 2>/dev/null | head -1)
if [ -s xl.save ]; then
	python3 "$VS" -f xl -i xl.save >/dev/null 2>&1 && res verify-stream-xl-save PASS || res verify-stream-xl-save FAIL
fi
if [ -s xsr.save ]; then
	"$XSR" export xsr.save xsr-export.save && python3 "$VS" -f xl -i xsr-export.save >/dev/null 2>&1 &&
		res verify-stream-xsr-save-export PASS || res verify-stream-xsr-save-export FAIL
	rm -f xsr-export.save
fi
echo "== timings (s)"
grep '^TIMING' run.log | awk '{printf "%-28s %s %s\n", $2, $3, $4}'
echo "== xl against xsr, interleaved rounds: median seconds (samples)"
grep '^TIMING pair-' run.log | awk '$4=="rc=0"{v[$2]=v[$2]" "$3} END{for(k in v) print k, v[k]}' | sort |
	while read -r k vals; do
		echo "$k $(echo $vals | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR}')"
	done | tee timing-medians.txt | awk '{printf "%-28s %s s (%s)\n", $1, $2, $3}'
awk '{m[$1]=$2} END{
	if (m["pair-xl-save"]>0) printf "xsr save / xl save:                 %.2f\n", m["pair-xsr-save"]/m["pair-xl-save"];
	if (m["pair-xl-restore"]>0) printf "xsr restore (pipe) / xl restore:    %.2f\n", m["pair-xsr-restore"]/m["pair-xl-restore"];
	if (m["pair-xl-restore"]>0) printf "xsr restore (memfd) / xl restore:   %.2f\n", m["pair-xsr-restore-memfd"]/m["pair-xl-restore"];
}' timing-medians.txt
exit $fail
