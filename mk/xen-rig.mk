# make check-xen: the Xen-in-QEMU rig (tests/xen-rig/, docs/xen-rig.md): boots
# Debian's Xen 4.17 under TCG with a PV dom0, runs the acceptance list with
# bin/xsr against a busybox PV domU, checks the results on the host.  Needs
# root and the Debian mirror the first time (cache: tests/xen-rig/cache/).
check-xen: all
	XSR_XEN_RIG=1 tests/xen-rig/rig.sh check

xen-rig-clean:
	tests/xen-rig/rig.sh clean

.PHONY: check-xen xen-rig-clean
