#!/bin/bash
# The domU's xenstore subtree alone (issue 20), for `rig.sh run
# tests/xen-rig/files/xenstore.sh` on a host too loaded for the whole list:
# the same checks as acceptance.sh's xsr-save-restore-xenstore,
# xl-save-restore-drops-xenstore and xsr-migrate-xenstore, in the same order,
# with nothing else between them.  Its ACCEPT lines are in run.log.
. "$IN/lib.sh"

timed create xl create "$IN/domu.cfg"
wait_tick 2 180 || { echo "ACCEPT boot: FAIL domU never ticked"; cat "$LOG"; exit 1; }
echo "ACCEPT boot: PASS domU ticking (tick $(tick))"
D=$(domid)

# xsr save --stop -> xsr restore
xs_plant "$D" || echo "RIG: writing the xenstore keys failed"
XS_BEFORE=$(xs_keys "$D")
echo "xenstore before xsr save: $(echo $XS_BEFORE)"
if timed xsr-save xsr save "$D" xsr.save --stop --json >save.json && timed xsr-restore xsr restore xsr.save --json -v; then
	xsr info xsr.save | grep '^xenstore:'
	xs_same xsr-save-restore-xenstore "$XS_BEFORE" "$(domid)"
else
	echo "ACCEPT xsr-save-restore-xenstore: FAIL xsr save or restore"
fi

# xl save -> xl restore: libxl rebuilds the subtree
if timed xl-save xl save rigu xl.save && timed xl-restore xl restore xl.save; then
	xs_dropped "$(domid)"
else
	echo "ACCEPT xl-save-restore-drops-xenstore: FAIL xl save or restore"
fi

# xsr migrate -> xsr receive --xen on loopback
D=$(domid)
xs_plant "$D" || echo "RIG: writing the xenstore keys failed"
XS_BEFORE=$(xs_keys "$D")
timeout 600 xsr receive tcp:127.0.0.1:7707 --xen --once --json -v >recv.json 2>recv.log &
RPID=$!
sleep 1
if timed xsr-migrate timeout 600 xsr migrate "$D" tcp:127.0.0.1:7707 --json >mig.json 2>mig.log; then
	reap $RPID
	cat mig.json recv.json recv.log
	xs_same xsr-migrate-xenstore "$XS_BEFORE" "$(domid)"
else
	kill $RPID 2>/dev/null
	cat mig.json mig.log recv.json recv.log
	echo "ACCEPT xsr-migrate-xenstore: FAIL no migration"
fi
xl list
echo "RUN-END"
