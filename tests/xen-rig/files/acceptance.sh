#!/bin/bash
# The acceptance list of issue 7, run in the rig's dom0 (cwd = $OUT, which
# comes back to the host).  Each check prints "ACCEPT <name>: PASS|FAIL ...";
# each timed step prints "TIMING <name> <seconds>".  host-check.sh reads both.
# the helpers (tick, continues, xs_keys, ...) are shared with files/xenstore.sh
. "$IN/lib.sh"

xl info | grep -E 'xen_version|total_memory|free_memory|xen_caps'
xsr --help >/dev/null 2>&1; ldd /usr/local/bin/xsr | grep -E 'xen|not found'
timed create xl create "$IN/domu.cfg"
wait_tick 2 90 || { echo "ACCEPT boot: FAIL domU never ticked"; cat "$LOG"; exit 1; }
echo "ACCEPT boot: PASS domU ticking (tick $(tick))"
xl list

# 1. xsr core -> gdb (gdb runs on the host on xsr.core); xl dump-core for the timing
D=$(domid)
# paused around it: xl dump-core copies a running guest's memory as it goes, and a dump
# caught mid-fork is one crash cannot open (its current task is not in the PID hash yet)
xl pause rigu
timed xl-dump-core xl dump-core rigu xl.core
xl unpause rigu
# xl.core comes back: the host opens its import with crash (host-check.sh)
T=$(tick)
if timed xsr-core xsr core "$D" xsr.core --json && xsr verify xsr.core >/dev/null; then
	xsr info xsr.core | head -20
	continues "$T" core-guest-runs-on
	echo "ACCEPT xsr-core: PASS (gdb on the host: host-check.sh)"
else
	echo "ACCEPT xsr-core: FAIL"
fi

# the paging view of the running domU (gdb vmlinux reads the dump's values: host-check.sh)
if timed xsr-core-paging xsr core --paging "$D" xsr-paging.core --json; then
	echo "ACCEPT xsr-core-paging: PASS"
else
	echo "ACCEPT xsr-core-paging: FAIL"
fi

# failures leave nothing behind; a save without --stop is a checkpoint
if ! xsr core 4321 nodom.core 2>nodom.err && [ ! -e nodom.core ] && grep -q 'domain 4321' nodom.err; then
	echo "ACCEPT xsr-core-no-domain: PASS refused, no file ($(cat nodom.err))"
else
	echo "ACCEPT xsr-core-no-domain: FAIL"
fi
if ! xsr save 4321 nodom.save 2>nodom.err && [ ! -e nodom.save ]; then
	echo "ACCEPT xsr-save-no-domain: PASS refused, no file ($(head -c 200 nodom.err))"
else
	echo "ACCEPT xsr-save-no-domain: FAIL"
fi
rm -f nodom.*
T=$(tick)
if timed xsr-save-checkpoint xsr save "$D" ckpt.xsr --json && xsr verify ckpt.xsr >/dev/null && ! gone; then
	continues "$T" xsr-save-checkpoint-keeps-running
else
	echo "ACCEPT xsr-save-checkpoint-keeps-running: FAIL"
fi
rm -f ckpt.xsr
# libxl's engine (what HVM and 32-bit PV guests get): a checkpoint through it too, transcoded
# while libxl writes
T=$(tick)
if XSR_XEN_SAVE_VIA=libxl xsr save "$D" lx.xsr --json >lx.json && xsr verify lx.xsr >/dev/null && ! gone &&
	grep -q '"overlapped":true' lx.json && grep -q '"engine":"libxl"' lx.json; then
	continues "$T" xsr-save-libxl-engine
else
	echo "ACCEPT xsr-save-libxl-engine: FAIL $(cat lx.json)"
fi
rm -f lx.xsr lx.json
# a save that fails half-way (the file system fills up) resumes the domain and leaves no file
mkdir -p small && mount -t tmpfs -o size=16m xsrsmall small
T=$(tick)
if ! xsr save "$D" small/full.xsr --stop 2>full.err && [ -z "$(ls small)" ] && ! gone && [ "$(domid)" = "$D" ]; then
	echo "refused: $(tail -c 300 full.err)"
	continues "$T" xsr-save-enospc-resumes
else
	echo "ACCEPT xsr-save-enospc-resumes: FAIL $(cat full.err); $(ls -la small)"
	xl list
fi
umount small
# interrupted (SIGINT while the pages go out, slowed by a test hook), or its reader gone
# (SIGPIPE): the save stops, the domain is resumed, no file is left
T=$(tick)
XSR_XEN_SAVE_TEST_BATCH_MS=40 xsr save "$D" int.xsr --stop 2>int.err &
SP=$!
# Once its temporary file holds pages (at most 30 s): a fixed sleep raced a
# start-up slowed by a busy host, and a SIGINT before xsr's handler is in
# place is ignored (a background job's SIGINT is SIG_IGN), so the save ran
# to the end and --stop destroyed the domain every later check needs.
for i in $(seq 1 300); do
	[ -n "$(find . -maxdepth 1 -name '.int.xsr.xsr-tmp.*' -size +256k 2>/dev/null)" ] && break
	sleep 0.1
done
kill -INT $SP
wait $SP; rc=$?
if [ $rc != 0 ] && grep -q 'interrupted by signal 2' int.err && [ ! -e int.xsr ] && ! gone && [ "$(domid)" = "$D" ]; then
	echo "refused: $(cat int.err)"
	continues "$T" xsr-save-sigint-resumes
else
	echo "ACCEPT xsr-save-sigint-resumes: FAIL rc=$rc $(cat int.err)"
	xl list
fi
T=$(tick)
xsr save "$D" - --stop 2>pipe.err | head -c 4096 >/dev/null
if [ "${PIPESTATUS[0]}" != 0 ] && ! gone && [ "$(domid)" = "$D" ]; then
	echo "refused: $(cat pipe.err)"
	continues "$T" xsr-save-epipe-resumes
else
	echo "ACCEPT xsr-save-epipe-resumes: FAIL $(cat pipe.err)"
	xl list
fi
rm -f int.err pipe.err
D=$(domid)

# 2. xsr save --stop -> gone from xl list -> xsr restore
T=$(tick)
xs_plant "$D" || echo "RIG: writing the xenstore keys failed"
XS_BEFORE=$(xs_keys "$D")
echo "xenstore before xsr save: $(echo $XS_BEFORE)"
if timed xsr-save xsr save "$D" xsr.save --stop --json >save.json; then
	cat save.json
	xl list
	if gone; then echo "ACCEPT xsr-save-gone: PASS rigu not in xl list"; else echo "ACCEPT xsr-save-gone: FAIL rigu still listed"; fi
	xsr verify xsr.save && xsr info xsr.save | head -12
	if grep -q '"engine":"native"' save.json; then
		echo "ACCEPT xsr-save-native: PASS saved by xsr's own PV save, not libxl's engine"
	else
		echo "ACCEPT xsr-save-native: FAIL $(cat save.json)"
	fi
	if timed xsr-restore xsr restore xsr.save --json; then
		xl list
		continues "$T" xsr-save-restore
		xs_same xsr-save-restore-xenstore "$XS_BEFORE" "$(domid)"
	else
		echo "ACCEPT xsr-save-restore: FAIL xsr restore"
	fi
else
	echo "ACCEPT xsr-save-restore: FAIL xsr save"
fi

# 3. xl save -> xsr import -> xsr export -> xl restore
T=$(tick)
if gone; then xsr restore xsr.save; fi # keep going even if 2 failed
if timed xl-save xl save rigu xl.save && gone &&
	timed xsr-import xsr import xl.save xl-imported.xsr &&
	timed xsr-export xsr export xl-imported.xsr xl-exported.save; then
	if cmp xl.save xl-exported.save; then
		echo "ACCEPT xl-import-export-identical: PASS the export of the import is the xl save, byte for byte"
	else
		echo "ACCEPT xl-import-export-identical: FAIL the export of the import differs from the xl save"
	fi
	sha256sum xl.save xl-imported.xsr xl-exported.save
	# the native save writes the records xc_domain_save writes, in the same order
	xsr info xsr.save | grep -E '^  (libxc|libxl|xl header|libxc header)' >native.recs
	xsr info xl-imported.xsr | grep -E '^  (libxc|libxl|xl header|libxc header)' >xl.recs
	if [ -s xl.recs ] && cmp -s native.recs xl.recs; then
		echo "ACCEPT xsr-save-records-as-xl: PASS $(grep '^  libxc:' native.recs)"
	else
		echo "ACCEPT xsr-save-records-as-xl: FAIL"; diff native.recs xl.recs
	fi
	if timed xl-restore xl restore xl-exported.save; then
		continues "$T" xl-import-export-restore
		# the difference users get: libxl rebuilds the subtree from the configuration
		xs_dropped "$(domid)"
	else
		echo "ACCEPT xl-import-export-restore: FAIL xl restore"
	fi
else
	echo "ACCEPT xl-import-export-restore: FAIL before xl restore"
fi
rm -f xl-imported.xsr xl-exported.save

# 4. xsr migrate DOMID -> xsr receive --xen on loopback (stop-and-copy here: no log-dirty)
D=$(domid)
# a receiver that goes away after HELLO: the migration fails and the domain runs on here
T=$(tick)
timeout 120 xsr receive tcp:127.0.0.1:7706 --xen --once >recv-cut.log 2>&1 &
RPID=$!
sleep 1
XSR_MIG_TEST_CUT_SENDER=hello timeout 120 xsr migrate "$D" tcp:127.0.0.1:7706 >mig-cut.log 2>&1
reap $RPID
cat mig-cut.log recv-cut.log
# it must have got as far as suspending and sending (not refused at connect)
if grep -q 'mig-begin\|receiver' mig-cut.log && ! grep -q '^migrated' mig-cut.log && [ "$(domid)" = "$D" ] &&
	! xl list | grep -q incoming; then
	continues "$T" xsr-migrate-cut-resumes
else
	echo "ACCEPT xsr-migrate-cut-resumes: FAIL"
	xl list
fi
D=$(domid)
T=$(tick)
xs_plant "$D" || echo "RIG: writing the xenstore keys failed"
XS_BEFORE=$(xs_keys "$D")
timeout 300 xsr receive tcp:127.0.0.1:7707 --xen --once --json >recv.json 2>recv.log &
RPID=$!
sleep 1
if timed xsr-migrate timeout 300 xsr migrate "$D" tcp:127.0.0.1:7707 --json >mig.json 2>mig.log; then
	reap $RPID
	cat mig.json mig.log recv.json recv.log
	xl list
	if gone_id "$D" && [ -n "$(domid)" ] && ! xl list | grep -q -- '--incoming\|--migratedaway' &&
		grep -q 'stop-and-copy' mig.json && grep -q 'no log-dirty' mig.log; then
		continues "$T" xsr-migrate
	else
		echo "ACCEPT xsr-migrate: FAIL source still there, no rigu, a leftover name, or no stop-and-copy notice"
	fi
	xs_same xsr-migrate-xenstore "$XS_BEFORE" "$(domid)"
	if grep -q '"engine":"native"' mig.json; then
		echo "ACCEPT xsr-migrate-native: PASS the stream went out as the native save mapped the guest"
	else
		echo "ACCEPT xsr-migrate-native: FAIL $(cat mig.json)"
	fi
else
	kill $RPID 2>/dev/null
	cat mig.json mig.log recv.json recv.log
	echo "ACCEPT xsr-migrate: FAIL"
	echo "ACCEPT xsr-migrate-xenstore: FAIL no migration"
fi

# xl against xsr on the same domU, interleaved so that a noisy TCG host
# slows both alike: 3 rounds of xl save/restore, xsr save --stop/restore
# (export through a pipe, the default) and xsr save/restore with the export
# through a memfd; the order rotates each round.  host-check.sh prints the
# medians and ratios.
quiet() { "$@" >/dev/null 2>&1; }
pair_xl() { timed pair-xl-save quiet xl save rigu p.xl && timed pair-xl-restore quiet xl restore p.xl; rm -f p.xl; }
pair_xsr() { timed pair-xsr-save quiet xsr save "$(domid)" p.xsr --stop && timed pair-xsr-restore quiet xsr restore p.xsr; rm -f p.xsr; }
pair_libxl() { XSR_XEN_SAVE_VIA=libxl timed pair-xsr-save-libxl quiet xsr save "$(domid)" p.xsr --stop && timed pair-xsr-restore quiet xsr restore p.xsr; rm -f p.xsr; }
pair_memfd() { timed pair-xsr-save quiet xsr save "$(domid)" p.xsr --stop &&
	XSR_XEN_RESTORE_VIA=memfd timed pair-xsr-restore-memfd quiet xsr restore p.xsr; rm -f p.xsr; }
[ -n "$(domid)" ] || xl restore xl.save
[ -e "$IN/quick" ] && { echo "RIG: quick run (make test): no timing rounds"; xl list; cat $LOGS >guest-console.log; echo "RUN-END"; exit 0; }
for order in "pair_xl pair_xsr pair_memfd pair_libxl" "pair_xsr pair_libxl pair_memfd pair_xl" "pair_libxl pair_memfd pair_xl pair_xsr" "pair_memfd pair_xl pair_xsr pair_libxl"; do
	for f in $order; do $f; sleep 1; done
done
T=$(tick)
[ -n "$(domid)" ] && continues "$T" after-timing-rounds
xl list

# the native save of a 2-vCPU domU (full list only): both vCPUs' records, restored, both online
xl destroy rigu
cat $LOGS >guest-console-1vcpu.log
for f in $LOGS; do : >"$f"; done # a new boot: continues() counts DOMU-UP lines
xl create "$IN/domu.cfg" vcpus=2 maxvcpus=2 >/dev/null 2>&1
if wait_tick 2 90 && [ "$(xl vcpu-list rigu | awk 'NR>1' | wc -l)" = 2 ]; then
	T=$(tick)
	D=$(domid)
	if xsr save "$D" v2.xsr --stop --json >v2.json && gone && xsr restore v2.xsr >/dev/null &&
		[ "$(xsr info v2.xsr | grep -o 'X86_PV_VCPU_BASIC' | wc -l)" = 2 ] && grep -q '"engine":"native"' v2.json &&
		[ "$(xl vcpu-list rigu | awk 'NR>1 && $5 !~ /p/' | wc -l)" = 2 ]; then
		continues "$T" xsr-save-restore-2-vcpus
	else
		echo "ACCEPT xsr-save-restore-2-vcpus: FAIL $(cat v2.json)"; xl list; xl vcpu-list
	fi
	rm -f v2.xsr v2.json
else
	echo "ACCEPT xsr-save-restore-2-vcpus: FAIL the 2-vCPU domU did not come up"
fi

# where a transcode's time goes under TCG (docs/xen-rig.md): the same xl save read, copied, imported
if [ -s xl.save ]; then
	D=$(domid); XSR_XEN_TIMING=1 xsr save "$D" exp.xsr 2>&1 | grep 'xsr timing'; rm -f exp.xsr
	D=$(domid); XSR_XEN_TIMING=1 xsr save "$D" exp.xsr 2>&1 | grep 'xsr timing'; rm -f exp.xsr
	timed exp-start xsr --help >/dev/null
	timed exp-xl-start xl help >/dev/null
	timed exp-cat cat xl.save >/dev/null
	timed exp-cp cp xl.save exp.copy
	rm -f exp.copy
	timed exp-import xsr import xl.save exp.xsr
	rm -f exp.xsr
	XSR_BENCH_NOHASH=1 timed exp-import-nohash xsr import xl.save exp.xsr
	rm -f exp.xsr
	XSR_NO_HASH_THREAD=1 timed exp-import-onethread xsr import xl.save exp.xsr
	rm -f exp.xsr
	timed exp-import-stream xsr import --stream xl.save exp.xsr
	rm -f exp.xsr
fi
xl list
cat $LOGS >guest-console.log
echo "RUN-END"
