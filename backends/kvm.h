/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVM backend: a VM owned by *this* process.
 *
 * KVM only accepts vCPU ioctls from the process that created the VM, so the
 * backend lives inside the VMM (vmm/) and save/restore/core run there too;
 * the `xsr save` etc. commands are clients that hand the VMM a file
 * descriptor.
 *
 * Life cycle:
 *   kvm_open()          /dev/kvm, KVM_CREATE_VM, irqchip
 *   ops->create()           guest memory (one memfd, one memslot per run)
 *                           and the vCPUs (CPUID set, not yet running)
 *   ops->set_vcpu() ...     registers
 *   ops->start()            one thread per vCPU enters KVM_RUN
 *   ops->pause/resume()     nest: vCPUs run only when every pause was resumed
 *   kvm_stop()          join the vCPU threads (the VM stays intact)
 *   ops->close()            everything is freed; the guest is gone
 *
 * Guest memory is laid out in the memfd in memory-run order, so page slot i
 * (backend.h) lives at memfd offset i * 4096; lazy restore relies on that
 * (ops->map_guest).
 */
#ifndef XSR_KVM_H
#define XSR_KVM_H

#include <stdint.h>
#include <stdio.h>

#include "backend.h"

extern const struct xsr_backend_ops kvm_ops;

/*
 * Open /dev/kvm and create an empty VM.  Returns 0, or XSR_E_UNSUPPORTED when
 * there is no usable KVM (message in @err says why: tests turn that into
 * SKIPPED), or another <0.
 */
int kvm_open(struct xsr_backend **out, char *err, size_t errlen);

/* Where the vCPU threads report unexpected exits (default stderr); borrowed. */
void kvm_set_log(struct xsr_backend *be, FILE *log);

/* After create: the guest memory mapping (all runs, slot order). Borrowed. */
void *kvm_mem(struct xsr_backend *be, uint64_t *len);
/* Host address of guest-physical [@gpa, @gpa + @len) if it lies in one run. */
void *kvm_gpa(struct xsr_backend *be, uint64_t gpa, uint64_t len);

/*
 * The text saved as the XSR_SEC_CONFIG section (copied).  After a restore,
 * kvm_config() returns the image's config (borrowed; NULL if none).
 */
int kvm_set_config(struct xsr_backend *be, const char *text);
const char *kvm_config(struct xsr_backend *be);

/*
 * Mark page slot @slot dirty as if the guest had written it: the next
 * dirty_fetch() reports it along with KVM's own dirty log.  For writes the
 * VMM itself makes to guest memory (and the test-only dirtier of
 * XSR_TEST_DIRTY_MBPS, vmm/vmm.h).  Thread-safe.
 */
int kvm_mark_dirty(struct xsr_backend *be, uint64_t slot);

/* Pause nesting depth (0 = running, once started). */
uint32_t kvm_pause_depth(struct xsr_backend *be);

struct xsr_kvm_status {
	uint32_t nr_vcpus;
	uint32_t entered; /* vCPUs that have entered KVM_RUN at least once */
	uint32_t failed;  /* vCPUs stopped by an unexpected exit (see the log) */
	uint32_t halted;  /* vCPUs that executed HLT */
	int started;
	uint32_t pause_depth;
};
void kvm_status(struct xsr_backend *be, struct xsr_kvm_status *st);

/* Stop and join the vCPU threads; they cannot be restarted.  Idempotent. */
void kvm_stop(struct xsr_backend *be);

#endif
