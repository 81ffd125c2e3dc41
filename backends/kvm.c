/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM backend: plain KVM ioctls, one memfd for guest memory, one thread per
 * vCPU.  See kvm.h for the life cycle.
 *
 * Pausing: a vCPU thread only enters KVM_RUN while the pause depth is zero.
 * To pause, set kvm_run.immediate_exit (covers a thread about to enter
 * KVM_RUN) and send SIGUSR1 (covers a thread inside it), then wait until
 * every thread reports itself parked.  Nothing but these threads ever enters
 * KVM_RUN, so once parked, vCPU state is stable for get_vcpu.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <xsrelf/writer.h>

#include "kvm.h"
#include "../util/err.h"

_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events is the 64-octet blob");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state");
_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data");

#define KVM_KICK_SIGNAL SIGUSR1
/* Where KVM puts its private TSS / identity map on VMX; kept out of RAM. */
#define KVM_TSS_ADDR 0xfffbd000u
#define KVM_IDMAP_ADDR 0xfffbc000u

struct kvm_vcpu_slot {
	struct xsr_kvm *k;
	uint32_t id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t tid;
	bool have_thread;
	bool parked;  /* outside KVM_RUN and waiting (under k->lock) */
	bool entered; /* entered KVM_RUN at least once */
	bool failed;  /* stopped by an unexpected exit */
	bool halted;
};

struct kvm_slot_mem {
	uint64_t pfn, count;
	uint64_t slot0; /* first page slot of this run */
	uint64_t *log;	/* dirty bitmap scratch */
};

struct xsr_kvm {
	struct xsr_backend be;
	char err[512];
	FILE *log;
	int kvm_fd, vm_fd;
	int api_version;
	bool irqchip;
	bool have_xsave, have_xcrs, have_debugregs, have_events;
	uint32_t xsave_size; /* KVM_CAP_XSAVE2 size, or 4096 */

	/* memory */
	int memfd;
	uint8_t *mem;
	uint64_t mem_len;
	uint32_t nr_runs;
	struct xsr_memrun *runs;
	struct kvm_slot_mem *slots;
	bool dirty_on;
	uint64_t *soft_dirty; /* kvm_mark_dirty(): bit per slot, ORed into fetches */

	/* vCPUs */
	uint32_t nr_vcpus;
	struct kvm_vcpu_slot *vcpus;
	struct kvm_cpuid2 *cpuid;
	uint32_t nr_msrs;
	uint32_t *msr_index; /* the MSRs vCPU 0 could read at create */

	pthread_mutex_t lock;
	pthread_cond_t run_cv;	  /* vCPUs wait here while paused */
	pthread_cond_t parked_cv; /* pausers wait here for vCPUs */
	uint32_t pause_depth;
	bool started, quit;

	char *config;
};

static struct xsr_kvm *K(struct xsr_backend *be)
{
	return (struct xsr_kvm *)be;
}

/* The reason into the backend's message, and @code back. */
#define seterr(k, code, ...) util_fail((k)->err, sizeof((k)->err), (code), __VA_ARGS__)

/* "KVM_SET_SREGS vcpu 1: Invalid argument" */
static int ioerr(struct xsr_kvm *k, const char *what, int vcpu)
{
	int e = errno;

	if (vcpu >= 0)
		return seterr(k, XSR_E_BACKEND, "%s vcpu %d: %s", what, vcpu, strerror(e));
	return seterr(k, XSR_E_BACKEND, "%s: %s", what, strerror(e));
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

/* ------------------------------------------------------------------ */
/* Open / create                                                       */
/* ------------------------------------------------------------------ */

int kvm_open(struct xsr_backend **out, char *err, size_t errlen)
{
	struct xsr_kvm *k;
	struct sigaction sa;
	int r;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	k->be.ops = &kvm_ops;
	k->log = stderr;
	k->kvm_fd = k->vm_fd = k->memfd = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->run_cv, NULL);
	pthread_cond_init(&k->parked_cv, NULL);

	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		r = seterr(k, XSR_E_UNSUPPORTED, "cannot open /dev/kvm: %s", strerror(errno));
		goto fail;
	}
	k->api_version = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (k->api_version != KVM_API_VERSION) {
		r = seterr(k, XSR_E_UNSUPPORTED, "KVM API version %d, need %d", k->api_version,
			   KVM_API_VERSION);
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		r = seterr(k, XSR_E_UNSUPPORTED, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	k->have_xsave = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	k->have_xcrs = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	k->have_debugregs = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	k->have_events = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
	k->xsave_size = sizeof(struct kvm_xsave);
	r = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (r > (int)sizeof(struct kvm_xsave) && r <= (int)XSR_MAX_XSAVE)
		k->xsave_size = (uint32_t)r;
	else if (r > (int)XSR_MAX_XSAVE)
		k->have_xsave = false; /* cannot be saved whole: fall back to FPU */

	/*
	 * VMX needs these below 4 GiB outside RAM; elsewhere they are no-ops
	 * or absent, so failure is not fatal.
	 */
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		fprintf(k->log, "kvm: KVM_SET_TSS_ADDR: %s (ignored)\n", strerror(errno));
	uint64_t idmap = KVM_IDMAP_ADDR;
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		fprintf(k->log, "kvm: KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)\n", strerror(errno));

	/* An in-kernel LAPIC makes the LAPIC state part of what a save carries. */
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) == 0)
		k->irqchip = true;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KVM_KICK_SIGNAL, &sa, NULL) < 0) {
		r = ioerr(k, "sigaction", -1);
		goto fail;
	}
	*out = &k->be;
	return 0;
fail:
	snprintf(err, errlen, "%s", k->err);
	kvm_ops.close(&k->be);
	return r;
}

void kvm_set_log(struct xsr_backend *be, FILE *log)
{
	K(be)->log = log ? log : stderr;
}

static int get_supported_cpuid(struct xsr_kvm *k)
{
	for (uint32_t n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return seterr(k, XSR_E_NOMEM, "out of memory");
		c->nent = n;
		if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return ioerr(k, "KVM_GET_SUPPORTED_CPUID", -1);
	}
	return seterr(k, XSR_E_BACKEND, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

/* The supported CPUID with this vCPU's APIC id, so APs are told apart. */
static int set_cpuid(struct xsr_kvm *k, struct kvm_vcpu_slot *v)
{
	size_t sz = sizeof(*k->cpuid) + k->cpuid->nent * sizeof(k->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	int r = 0;

	if (!c)
		return seterr(k, XSR_E_NOMEM, "out of memory");
	memcpy(c, k->cpuid, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | (v->id << 24);
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->id;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		r = ioerr(k, "KVM_SET_CPUID2", (int)v->id);
	free(c);
	return r;
}

/* Keep the MSRs of KVM's list that vCPU 0 can read: those are what we save. */
static int probe_msrs(struct xsr_kvm *k)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	struct kvm_msr_list *list;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one;

	if (ioctl(k->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return ioerr(k, "KVM_GET_MSR_INDEX_LIST", -1);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	k->msr_index = calloc(probe.nmsrs ? probe.nmsrs : 1, sizeof(uint32_t));
	if (!list || !k->msr_index) {
		free(list);
		return seterr(k, XSR_E_NOMEM, "out of memory");
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(k->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return ioerr(k, "KVM_GET_MSR_INDEX_LIST", -1);
	}
	for (uint32_t i = 0; i < list->nmsrs && k->nr_msrs < XSR_MAX_MSRS; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = list->indices[i];
		if (ioctl(k->vcpus[0].fd, KVM_GET_MSRS, &one) == 1)
			k->msr_index[k->nr_msrs++] = list->indices[i];
	}
	free(list);
	return 0;
}

static int kvm_create(struct xsr_backend *be, const struct xsr_domain_info *info)
{
	struct xsr_kvm *k = K(be);
	uint64_t pages = 0;
	int mmap_size, r, max_slots;

	if (k->vcpus || k->mem)
		return seterr(k, XSR_E_STATE, "create: the VM already has memory and vCPUs");
	if (info->nr_vcpus < 1 || info->nr_vcpus > XSR_MAX_VCPUS)
		return seterr(k, XSR_E_RANGE, "create: %u vCPUs", info->nr_vcpus);
	max_slots = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	if (max_slots <= 0)
		max_slots = 32;
	if (info->nr_runs < 1 || info->nr_runs > (uint32_t)max_slots)
		return seterr(k, XSR_E_LIMIT, "create: %u memory runs, KVM allows 1..%d",
			      info->nr_runs, max_slots);
	for (uint32_t i = 0; i < info->nr_runs; i++) {
		const struct xsr_memrun *m = &info->runs[i];

		if (m->count == 0 || m->count > XSR_MAX_PAGES || m->pfn > XSR_MAX_PFN - m->count ||
		    (i && m->pfn < info->runs[i - 1].pfn + info->runs[i - 1].count))
			return seterr(k, XSR_E_RANGE,
				      "create: memory run %u (pfn 0x%llx count %llu) "
				      "is empty, out of range or out of order",
				      i, (unsigned long long)m->pfn, (unsigned long long)m->count);
		if (pages > XSR_MAX_PAGES - m->count)
			return seterr(k, XSR_E_LIMIT, "create: more than %llu pages",
				      (unsigned long long)XSR_MAX_PAGES);
		pages += m->count;
	}

	k->nr_runs = info->nr_runs;
	k->runs = calloc(k->nr_runs, sizeof(*k->runs));
	k->slots = calloc(k->nr_runs, sizeof(*k->slots));
	if (!k->runs || !k->slots)
		return seterr(k, XSR_E_NOMEM, "out of memory");
	memcpy(k->runs, info->runs, k->nr_runs * sizeof(*k->runs));

	/* One memfd: shareable with a migration helper, and lazy restore's uffd. */
	k->mem_len = pages << XSR_PAGE_SHIFT;
	k->memfd = memfd_create("xsr-guest-memory", MFD_CLOEXEC);
	if (k->memfd < 0)
		return ioerr(k, "memfd_create", -1);
	if (ftruncate(k->memfd, (off_t)k->mem_len) < 0)
		return ioerr(k, "ftruncate guest memory", -1);
	k->mem =
	    mmap(NULL, k->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, k->memfd, 0);
	if (k->mem == MAP_FAILED) {
		k->mem = NULL;
		return ioerr(k, "mmap guest memory", -1);
	}
	madvise(k->mem, k->mem_len, MADV_DONTDUMP);

	uint64_t slot0 = 0;
	for (uint32_t i = 0; i < k->nr_runs; i++) {
		struct kvm_slot_mem *s = &k->slots[i];
		struct kvm_userspace_memory_region reg = {
		    .slot = i,
		    .guest_phys_addr = k->runs[i].pfn << XSR_PAGE_SHIFT,
		    .memory_size = k->runs[i].count << XSR_PAGE_SHIFT,
		    .userspace_addr = (uintptr_t)(k->mem + (slot0 << XSR_PAGE_SHIFT)),
		};

		s->pfn = k->runs[i].pfn;
		s->count = k->runs[i].count;
		s->slot0 = slot0;
		slot0 += s->count;
		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
			return seterr(
			    k, XSR_E_BACKEND,
			    "KVM_SET_USER_MEMORY_REGION slot %u (gpa 0x%llx, %llu KiB): %s", i,
			    (unsigned long long)reg.guest_phys_addr,
			    (unsigned long long)reg.memory_size >> 10, strerror(errno));
	}

	r = get_supported_cpuid(k);
	if (r < 0)
		return r;
	mmap_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return ioerr(k, "KVM_GET_VCPU_MMAP_SIZE", -1);
	k->vcpus = calloc(info->nr_vcpus, sizeof(*k->vcpus));
	if (!k->vcpus)
		return seterr(k, XSR_E_NOMEM, "out of memory");
	for (uint32_t i = 0; i < info->nr_vcpus; i++) {
		struct kvm_vcpu_slot *v = &k->vcpus[i];

		v->k = k;
		v->id = i;
		v->parked = true;
		v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0)
			return ioerr(k, "KVM_CREATE_VCPU", (int)i);
		k->nr_vcpus = i + 1;
		v->run_size = (size_t)mmap_size;
		v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			return ioerr(k, "mmap kvm_run", (int)i);
		}
		r = set_cpuid(k, v);
		if (r < 0)
			return r;
	}
	return probe_msrs(k);
}

static int kvm_describe(struct xsr_backend *be, struct xsr_domain_info *out)
{
	struct xsr_kvm *k = K(be);
	struct utsname u;

	if (!k->vcpus)
		return seterr(k, XSR_E_STATE, "describe: the VM has no memory or vCPUs yet");
	memset(out, 0, sizeof(*out));
	out->nr_vcpus = k->nr_vcpus;
	out->nr_runs = k->nr_runs;
	out->runs = k->runs;
	snprintf(out->hypervisor, sizeof(out->hypervisor), "kvm");
	if (uname(&u) == 0)
		snprintf(out->hypervisor_version, sizeof(out->hypervisor_version),
			 "KVM API %d, Linux %.40s", k->api_version, u.release);
	return 0;
}

/* ------------------------------------------------------------------ */
/* vCPU threads, pause / resume                                        */
/* ------------------------------------------------------------------ */

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO:
		return "IO";
	case KVM_EXIT_MMIO:
		return "MMIO";
	case KVM_EXIT_HLT:
		return "HLT";
	case KVM_EXIT_SHUTDOWN:
		return "SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY:
		return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR:
		return "INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT:
		return "SYSTEM_EVENT";
	default:
		return "unexpected";
	}
}

static void log_exit(struct kvm_vcpu_slot *v)
{
	struct xsr_kvm *k = v->k;
	struct kvm_regs regs;
	struct kvm_run *run = v->run;

	memset(&regs, 0, sizeof(regs));
	ioctl(v->fd, KVM_GET_REGS, &regs);
	fprintf(k->log, "kvm: vcpu %u: exit %u (%s) at rip 0x%llx", v->id, run->exit_reason,
		exit_name(run->exit_reason), (unsigned long long)regs.rip);
	if (run->exit_reason == KVM_EXIT_IO)
		fprintf(k->log, ": port 0x%x %s size %u", run->io.port,
			run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.size);
	else if (run->exit_reason == KVM_EXIT_MMIO)
		fprintf(k->log, ": gpa 0x%llx len %u", (unsigned long long)run->mmio.phys_addr,
			run->mmio.len);
	else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(k->log, ": suberror %u", run->internal.suberror);
	else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(k->log, ": hardware reason 0x%llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	fprintf(k->log, "\n");
	fflush(k->log);
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu_slot *v = arg;
	struct xsr_kvm *k = v->k;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KVM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/*
	 * XSR_VCPU_NICE=N (0..19): run the vCPU threads at nice N, so that a
	 * guest that never halts (the test guest counts without pause) leaves
	 * the CPUs to the host's own work first.  The nested-KVM rig sets it:
	 * there every vCPU is a TCG thread on the same two cores as the tests.
	 */
	const char *nice_s = getenv("XSR_VCPU_NICE");
	if (nice_s) {
		char *end;
		long n = strtol(nice_s, &end, 10);
		if (*nice_s && !*end && n >= 0 && n <= 19)
			setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)n);
	}

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->quit && (k->pause_depth || v->failed || v->halted)) {
			if (!v->parked) {
				v->parked = true;
				pthread_cond_broadcast(&k->parked_cv);
			}
			pthread_cond_wait(&k->run_cv, &k->lock);
		}
		if (k->quit)
			break;
		v->parked = false;
		v->entered = true;
		pthread_mutex_unlock(&k->lock);

		int r = ioctl(v->fd, KVM_RUN, 0);
		int e = errno;

		pthread_mutex_lock(&k->lock);
		if (r < 0) {
			if (e == EINTR || e == EAGAIN)
				continue;
			fprintf(k->log, "kvm: vcpu %u: KVM_RUN: %s\n", v->id, strerror(e));
			fflush(k->log);
			v->failed = true;
			continue;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			/* The guest halts only on a bad vCPU id (guest/entry.S). */
			log_exit(v);
			v->halted = true;
			break;
		default:
			log_exit(v);
			v->failed = true;
			break;
		}
	}
	v->parked = true;
	pthread_cond_broadcast(&k->parked_cv);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static bool all_parked(struct xsr_kvm *k)
{
	for (uint32_t i = 0; i < k->nr_vcpus; i++)
		if (k->vcpus[i].have_thread && !k->vcpus[i].parked)
			return false;
	return true;
}

/* Under k->lock: make every vCPU thread leave KVM_RUN and wait until it has. */
static void park_all(struct xsr_kvm *k)
{
	while (!all_parked(k)) {
		struct timespec ts;

		for (uint32_t i = 0; i < k->nr_vcpus; i++) {
			struct kvm_vcpu_slot *v = &k->vcpus[i];

			if (v->have_thread && !v->parked) {
				v->run->immediate_exit = 1;
				pthread_kill(v->tid, KVM_KICK_SIGNAL);
			}
		}
		/* Re-kick now and then: a vCPU can sit in a (uffd) fault. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&k->parked_cv, &k->lock, &ts);
	}
}

static int kvm_pause(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);

	pthread_mutex_lock(&k->lock);
	k->pause_depth++;
	park_all(k);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int kvm_resume(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);

	pthread_mutex_lock(&k->lock);
	if (!k->pause_depth) {
		pthread_mutex_unlock(&k->lock);
		return seterr(k, XSR_E_STATE, "resume: the VM is not paused");
	}
	if (--k->pause_depth == 0) {
		for (uint32_t i = 0; i < k->nr_vcpus; i++)
			if (k->vcpus[i].run)
				k->vcpus[i].run->immediate_exit = 0;
		pthread_cond_broadcast(&k->run_cv);
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int kvm_start(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);
	int r = 0;

	if (!k->vcpus)
		return seterr(k, XSR_E_STATE, "start: the VM has no vCPUs (create first)");
	pthread_mutex_lock(&k->lock);
	if (k->started) {
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	for (uint32_t i = 0; i < k->nr_vcpus; i++) {
		struct kvm_vcpu_slot *v = &k->vcpus[i];
		int e = pthread_create(&v->tid, NULL, vcpu_thread, v);

		if (e) {
			r = seterr(k, XSR_E_BACKEND, "start: thread for vcpu %u: %s", i,
				   strerror(e));
			break;
		}
		v->have_thread = true;
		v->parked = false;
	}
	k->started = true;
	pthread_mutex_unlock(&k->lock);
	if (r < 0)
		kvm_stop(be);
	return r;
}

void kvm_stop(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);

	pthread_mutex_lock(&k->lock);
	k->quit = true;
	pthread_cond_broadcast(&k->run_cv);
	park_all(k);
	pthread_mutex_unlock(&k->lock);
	for (uint32_t i = 0; i < k->nr_vcpus; i++) {
		struct kvm_vcpu_slot *v = &k->vcpus[i];

		if (v->have_thread) {
			pthread_join(v->tid, NULL);
			v->have_thread = false;
		}
	}
}

uint32_t kvm_pause_depth(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);
	uint32_t d;

	pthread_mutex_lock(&k->lock);
	d = k->pause_depth;
	pthread_mutex_unlock(&k->lock);
	return d;
}

void kvm_status(struct xsr_backend *be, struct xsr_kvm_status *st)
{
	struct xsr_kvm *k = K(be);

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&k->lock);
	st->nr_vcpus = k->nr_vcpus;
	st->started = k->started && !k->quit;
	st->pause_depth = k->pause_depth;
	for (uint32_t i = 0; i < k->nr_vcpus; i++) {
		st->entered += k->vcpus[i].entered;
		st->failed += k->vcpus[i].failed;
		st->halted += k->vcpus[i].halted;
	}
	pthread_mutex_unlock(&k->lock);
}

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* Index of the run holding @pfn, or -1. */
static int find_run(const struct xsr_kvm *k, uint64_t pfn)
{
	uint32_t lo = 0, hi = k->nr_runs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (pfn < k->runs[mid].pfn)
			hi = mid;
		else if (pfn - k->runs[mid].pfn >= k->runs[mid].count)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

static int kvm_map(struct xsr_backend *be, uint64_t pfn, uint64_t count, int writable, void **addr)
{
	struct xsr_kvm *k = K(be);
	int i = find_run(k, pfn);

	(void)writable; /* the memfd mapping is always writable */
	if (i < 0 || count == 0 || count > k->runs[i].count - (pfn - k->runs[i].pfn))
		return seterr(k, XSR_E_RANGE, "map: pfn 0x%llx count %llu is not inside one run",
			      (unsigned long long)pfn, (unsigned long long)count);
	*addr = k->mem + ((k->slots[i].slot0 + pfn - k->runs[i].pfn) << XSR_PAGE_SHIFT);
	return 0;
}

static void kvm_unmap(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count)
{
	(void)be; /* map() hands out the permanent mapping */
	(void)addr;
	(void)pfn;
	(void)count;
}

/*
 * Guest memory is a memfd: pages the guest never wrote are holes, found with
 * SEEK_DATA/SEEK_HOLE without faulting them in (reading them would allocate
 * all of guest memory).
 */
static int kvm_zero_hint(struct xsr_backend *be, uint64_t pfn, uint64_t count, uint8_t *zero)
{
	struct xsr_kvm *k = K(be);
	int i = find_run(k, pfn);

	if (i < 0 || count == 0 || count > k->runs[i].count - (pfn - k->runs[i].pfn))
		return seterr(k, XSR_E_RANGE, "zero_hint: pfn 0x%llx count %llu is not inside one run",
			      (unsigned long long)pfn, (unsigned long long)count);
	off_t start = (off_t)((k->slots[i].slot0 + pfn - k->runs[i].pfn) << XSR_PAGE_SHIFT);
	off_t end = start + (off_t)(count << XSR_PAGE_SHIFT), pos = start;

	while (pos < end) {
		off_t data = lseek(k->memfd, pos, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return 0; /* no hole information: claim nothing */
		off_t stop = data < 0 || data > end ? end : data;
		for (off_t p = pos; p < stop; p += XSR_PAGE_SIZE)
			zero[(p - start) >> XSR_PAGE_SHIFT] = 1;
		if (data < 0 || data >= end)
			break;
		off_t hole = lseek(k->memfd, data, SEEK_HOLE);
		if (hole < 0)
			return 0;
		pos = hole & ~(off_t)(XSR_PAGE_SIZE - 1);
		if (pos <= data)
			pos = data + XSR_PAGE_SIZE;
	}
	return 0;
}

void *kvm_mem(struct xsr_backend *be, uint64_t *len)
{
	if (len)
		*len = K(be)->mem_len;
	return K(be)->mem;
}

void *kvm_gpa(struct xsr_backend *be, uint64_t gpa, uint64_t len)
{
	struct xsr_kvm *k = K(be);
	uint64_t pfn = gpa >> XSR_PAGE_SHIFT;
	uint64_t last = len ? (gpa + len - 1) >> XSR_PAGE_SHIFT : pfn;
	int i = find_run(k, pfn);

	if (i < 0 || last < pfn || last - k->runs[i].pfn >= k->runs[i].count)
		return NULL;
	return k->mem + ((k->slots[i].slot0 + pfn - k->runs[i].pfn) << XSR_PAGE_SHIFT) +
	       (gpa & (XSR_PAGE_SIZE - 1));
}

/* The memfd mapping, slot order (kvm.h): what lazy restore registers with userfaultfd. */
static int kvm_map_guest(struct xsr_backend *be, void **addr, uint64_t *len)
{
	struct xsr_kvm *k = K(be);

	if (!k->mem)
		return seterr(k, XSR_E_STATE, "map_guest: the VM has no memory (create first)");
	*addr = k->mem;
	*len = k->mem_len;
	return 0;
}

static int set_log_dirty(struct xsr_kvm *k, bool on)
{
	for (uint32_t i = 0; i < k->nr_runs; i++) {
		struct kvm_userspace_memory_region reg = {
		    .slot = i,
		    .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = k->slots[i].pfn << XSR_PAGE_SHIFT,
		    .memory_size = k->slots[i].count << XSR_PAGE_SHIFT,
		    .userspace_addr = (uintptr_t)(k->mem + (k->slots[i].slot0 << XSR_PAGE_SHIFT)),
		};

		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
			return seterr(k, XSR_E_BACKEND,
				      "KVM_SET_USER_MEMORY_REGION slot %u (dirty logging %s): %s",
				      i, on ? "on" : "off", strerror(errno));
	}
	k->dirty_on = on;
	return 0;
}

static int kvm_dirty_start(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);

	if (!k->mem)
		return seterr(k, XSR_E_STATE, "dirty_start: the VM has no memory");
	for (uint32_t i = 0; i < k->nr_runs; i++) {
		if (k->slots[i].log)
			continue;
		k->slots[i].log = calloc((k->slots[i].count + 63) / 64, sizeof(uint64_t));
		if (!k->slots[i].log)
			return seterr(k, XSR_E_NOMEM, "out of memory for dirty bitmaps");
	}
	return set_log_dirty(k, true);
}

static int kvm_dirty_fetch(struct xsr_backend *be, uint64_t *bitmap, uint64_t nslots)
{
	struct xsr_kvm *k = K(be);

	if (!k->dirty_on)
		return seterr(k, XSR_E_STATE, "dirty_fetch: dirty logging is not on");
	for (uint32_t i = 0; i < k->nr_runs; i++) {
		struct kvm_slot_mem *s = &k->slots[i];
		uint64_t words = (s->count + 63) / 64;
		struct kvm_dirty_log dl = {.slot = i, .dirty_bitmap = s->log};

		memset(s->log, 0, words * sizeof(uint64_t));
		if (ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0)
			return seterr(k, XSR_E_BACKEND, "KVM_GET_DIRTY_LOG slot %u: %s", i,
				      strerror(errno));
		for (uint64_t w = 0; w < words; w++) {
			uint64_t bits = s->log[w];

			while (bits) {
				uint64_t j = w * 64 + (uint64_t)__builtin_ctzll(bits);
				uint64_t slot = s->slot0 + j;

				bits &= bits - 1;
				if (j < s->count && slot < nslots)
					bitmap[slot / 64] |= UINT64_C(1) << (slot % 64);
			}
		}
	}
	if (k->soft_dirty) {
		uint64_t words = (k->mem_len >> XSR_PAGE_SHIFT) / 64 + 1;

		for (uint64_t w = 0; w < words && w * 64 < nslots; w++) {
			uint64_t bits = __atomic_exchange_n(&k->soft_dirty[w], 0, __ATOMIC_ACQ_REL);

			if (w * 64 + 64 > nslots && nslots % 64)
				bits &= (UINT64_C(1) << (nslots % 64)) - 1;
			bitmap[w] |= bits;
		}
	}
	return 0;
}

int kvm_mark_dirty(struct xsr_backend *be, uint64_t slot)
{
	struct xsr_kvm *k = K(be);
	uint64_t nslots = k->mem_len >> XSR_PAGE_SHIFT;

	if (slot >= nslots)
		return XSR_E_RANGE;
	if (!__atomic_load_n(&k->soft_dirty, __ATOMIC_ACQUIRE)) {
		uint64_t *bm = calloc(nslots / 64 + 1, sizeof(uint64_t)), *none = NULL;

		if (!bm)
			return XSR_E_NOMEM;
		if (!__atomic_compare_exchange_n(&k->soft_dirty, &none, bm, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			free(bm);
	}
	__atomic_fetch_or(&k->soft_dirty[slot / 64], UINT64_C(1) << (slot % 64), __ATOMIC_RELEASE);
	return 0;
}

static int kvm_dirty_stop(struct xsr_backend *be)
{
	struct xsr_kvm *k = K(be);

	if (!k->dirty_on)
		return 0;
	return set_log_dirty(k, false);
}

/* ------------------------------------------------------------------ */
/* vCPU state                                                          */
/* ------------------------------------------------------------------ */

static void seg_out(const struct kvm_segment *s, struct xsr_x86_segment *o)
{
	o->base = s->base;
	o->limit = s->limit;
	o->selector = s->selector;
	o->attr = (uint16_t)((s->type & 0xf) | (s->s & 1) << 4 | (s->dpl & 3) << 5 |
			     (s->present & 1) << 7 | (s->avl & 1) << 8 | (s->l & 1) << 9 |
			     (s->db & 1) << 10 | (s->g & 1) << 11 | (s->unusable & 1) << 12);
}

static void seg_in(const struct xsr_x86_segment *o, struct kvm_segment *s)
{
	memset(s, 0, sizeof(*s));
	s->base = o->base;
	s->limit = o->limit;
	s->selector = o->selector;
	s->type = o->attr & 0xf;
	s->s = (o->attr >> 4) & 1;
	s->dpl = (o->attr >> 5) & 3;
	s->present = (o->attr >> 7) & 1;
	s->avl = (o->attr >> 8) & 1;
	s->l = (o->attr >> 9) & 1;
	s->db = (o->attr >> 10) & 1;
	s->g = (o->attr >> 11) & 1;
	s->unusable = (o->attr >> 12) & 1;
}

/* struct kvm_fpu <-> the 512-octet FXSAVE image (SDM vol. 1, table 10-2). */
static void fpu_to_fxsave(const struct kvm_fpu *f, uint8_t fx[512])
{
	memset(fx, 0, 512);
	memcpy(fx + 0, &f->fcw, 2);
	memcpy(fx + 2, &f->fsw, 2);
	fx[4] = f->ftwx;
	memcpy(fx + 6, &f->last_opcode, 2);
	memcpy(fx + 8, &f->last_ip, 8);
	memcpy(fx + 16, &f->last_dp, 8);
	memcpy(fx + 24, &f->mxcsr, 4);
	memcpy(fx + 32, f->fpr, sizeof(f->fpr));
	memcpy(fx + 160, f->xmm, sizeof(f->xmm));
}

static void fxsave_to_fpu(const uint8_t fx[512], struct kvm_fpu *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(&f->fcw, fx + 0, 2);
	memcpy(&f->fsw, fx + 2, 2);
	f->ftwx = fx[4];
	memcpy(&f->last_opcode, fx + 6, 2);
	memcpy(&f->last_ip, fx + 8, 8);
	memcpy(&f->last_dp, fx + 16, 8);
	memcpy(&f->mxcsr, fx + 24, 4);
	memcpy(f->fpr, fx + 32, sizeof(f->fpr));
	memcpy(f->xmm, fx + 160, sizeof(f->xmm));
}

static int kvm_get_vcpu(struct xsr_backend *be, uint32_t id, struct xsr_vcpu_state *out)
{
	struct xsr_kvm *k = K(be);
	struct kvm_vcpu_slot *v;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_mp_state mp;
	struct xsr_x86_vcpu *r = &out->r;
	int fd;

	if (id >= k->nr_vcpus)
		return seterr(k, XSR_E_RANGE, "get_vcpu: vcpu %u of %u", id, k->nr_vcpus);
	v = &k->vcpus[id];
	fd = v->fd;
	memset(r, 0, sizeof(*r));
	r->vcpu_id = id;

	if (ioctl(fd, KVM_GET_REGS, &regs) < 0)
		return ioerr(k, "KVM_GET_REGS", (int)id);
	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return ioerr(k, "KVM_GET_SREGS", (int)id);
	const uint64_t gpr[16] = {regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi,
				  regs.rsp, regs.rbp, regs.r8,	regs.r9,  regs.r10, regs.r11,
				  regs.r12, regs.r13, regs.r14, regs.r15};
	memcpy(r->gpr, gpr, sizeof(gpr));
	r->rip = regs.rip;
	r->rflags = regs.rflags;
	seg_out(&sregs.cs, &r->cs);
	seg_out(&sregs.ds, &r->ds);
	seg_out(&sregs.es, &r->es);
	seg_out(&sregs.fs, &r->fs);
	seg_out(&sregs.gs, &r->gs);
	seg_out(&sregs.ss, &r->ss);
	seg_out(&sregs.tr, &r->tr);
	seg_out(&sregs.ldt, &r->ldt);
	r->gdt.base = sregs.gdt.base;
	r->gdt.limit = sregs.gdt.limit;
	r->idt.base = sregs.idt.base;
	r->idt.limit = sregs.idt.limit;
	r->cr0 = sregs.cr0;
	r->cr2 = sregs.cr2;
	r->cr3 = sregs.cr3;
	r->cr4 = sregs.cr4;
	r->cr8 = sregs.cr8;
	r->efer = sregs.efer;
	r->apic_base = sregs.apic_base;
	r->valid |= XSR_VCPU_HAVE_SREGS;

	if (ioctl(fd, KVM_GET_MP_STATE, &mp) < 0)
		return ioerr(k, "KVM_GET_MP_STATE", (int)id);
	r->mp_state = mp.mp_state;

	if (k->have_xsave) {
		/* KVM_GET_XSAVE2 fills as much as KVM_CAP_XSAVE2 said; plain
		 * KVM_GET_XSAVE is the 4096-octet struct. */
		unsigned long req =
		    k->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;

		memset(out->xsave, 0, k->xsave_size);
		if (ioctl(fd, req, out->xsave) < 0)
			return ioerr(k, req == KVM_GET_XSAVE ? "KVM_GET_XSAVE" : "KVM_GET_XSAVE2",
				     (int)id);
		r->xsave_len = k->xsave_size;
		memcpy(r->fxsave, out->xsave, 512);
		r->valid |= XSR_VCPU_HAVE_XSAVE | XSR_VCPU_HAVE_FPU;
	} else {
		struct kvm_fpu fpu;

		if (ioctl(fd, KVM_GET_FPU, &fpu) < 0)
			return ioerr(k, "KVM_GET_FPU", (int)id);
		fpu_to_fxsave(&fpu, r->fxsave);
		r->valid |= XSR_VCPU_HAVE_FPU;
	}
	if (k->have_xcrs) {
		struct kvm_xcrs xcrs;

		if (ioctl(fd, KVM_GET_XCRS, &xcrs) < 0)
			return ioerr(k, "KVM_GET_XCRS", (int)id);
		for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
			if (xcrs.xcrs[i].xcr == 0)
				r->xcr0 = xcrs.xcrs[i].value;
	}

	if (k->nr_msrs) {
		size_t sz = sizeof(struct kvm_msrs) + k->nr_msrs * sizeof(struct kvm_msr_entry);
		struct kvm_msrs *m = calloc(1, sz);
		int got;

		if (!m)
			return seterr(k, XSR_E_NOMEM, "out of memory");
		m->nmsrs = k->nr_msrs;
		for (uint32_t i = 0; i < k->nr_msrs; i++)
			m->entries[i].index = k->msr_index[i];
		got = ioctl(fd, KVM_GET_MSRS, m);
		if (got < 0 || (uint32_t)got != k->nr_msrs) {
			int e = errno;

			if (got >= 0)
				seterr(k, XSR_E_BACKEND,
				       "KVM_GET_MSRS vcpu %u: MSR 0x%x unreadable", id,
				       k->msr_index[got]);
			else
				seterr(k, XSR_E_BACKEND, "KVM_GET_MSRS vcpu %u: %s", id,
				       strerror(e));
			free(m);
			return XSR_E_BACKEND;
		}
		for (uint32_t i = 0; i < k->nr_msrs; i++) {
			out->msrs[i].index = m->entries[i].index;
			out->msrs[i].reserved = 0;
			out->msrs[i].value = m->entries[i].data;
		}
		r->nr_msrs = k->nr_msrs;
		r->valid |= XSR_VCPU_HAVE_MSRS;
		free(m);
	}

	if (k->irqchip) {
		if (ioctl(fd, KVM_GET_LAPIC, out->lapic) < 0)
			return ioerr(k, "KVM_GET_LAPIC", (int)id);
		r->lapic_len = sizeof(struct kvm_lapic_state);
		r->valid |= XSR_VCPU_HAVE_LAPIC;
	}
	if (k->have_debugregs) {
		struct kvm_debugregs d;

		if (ioctl(fd, KVM_GET_DEBUGREGS, &d) < 0)
			return ioerr(k, "KVM_GET_DEBUGREGS", (int)id);
		memcpy(r->dr, d.db, sizeof(d.db));
		r->dr[6] = d.dr6;
		r->dr[7] = d.dr7;
		r->valid |= XSR_VCPU_HAVE_DEBUG;
	}
	if (k->have_events) {
		if (ioctl(fd, KVM_GET_VCPU_EVENTS, r->events) < 0)
			return ioerr(k, "KVM_GET_VCPU_EVENTS", (int)id);
		r->valid |= XSR_VCPU_HAVE_EVENTS;
	}
	return 0;
}

/* Segments, descriptor tables, control registers, EFER: the mode the rest is read in. */
static int set_sregs(struct xsr_kvm *k, int fd, int id, const struct xsr_vcpu_state *st)
{
	const struct xsr_x86_vcpu *r = &st->r;

	if (r->valid & XSR_VCPU_HAVE_SREGS) {
		struct kvm_sregs sregs;

		/* Start from KVM's view: interrupt_bitmap and anything we do not carry. */
		if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
			return ioerr(k, "KVM_GET_SREGS", id);
		seg_in(&r->cs, &sregs.cs);
		seg_in(&r->ds, &sregs.ds);
		seg_in(&r->es, &sregs.es);
		seg_in(&r->fs, &sregs.fs);
		seg_in(&r->gs, &sregs.gs);
		seg_in(&r->ss, &sregs.ss);
		seg_in(&r->tr, &sregs.tr);
		seg_in(&r->ldt, &sregs.ldt);
		sregs.gdt.base = r->gdt.base;
		sregs.gdt.limit = (uint16_t)r->gdt.limit;
		sregs.idt.base = r->idt.base;
		sregs.idt.limit = (uint16_t)r->idt.limit;
		sregs.cr0 = r->cr0;
		sregs.cr2 = r->cr2;
		sregs.cr3 = r->cr3;
		sregs.cr4 = r->cr4;
		sregs.cr8 = r->cr8;
		sregs.efer = r->efer;
		if (r->apic_base)
			sregs.apic_base = r->apic_base;
		memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
		if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
			return ioerr(k, "KVM_SET_SREGS", id);
	}
	return 0;
}

static int set_regs(struct xsr_kvm *k, int fd, int id, const struct xsr_vcpu_state *st)
{
	const struct xsr_x86_vcpu *r = &st->r;

	struct kvm_regs regs = {
	    .rax = r->gpr[XSR_RAX],
	    .rbx = r->gpr[XSR_RBX],
	    .rcx = r->gpr[XSR_RCX],
	    .rdx = r->gpr[XSR_RDX],
	    .rsi = r->gpr[XSR_RSI],
	    .rdi = r->gpr[XSR_RDI],
	    .rsp = r->gpr[XSR_RSP],
	    .rbp = r->gpr[XSR_RBP],
	    .r8 = r->gpr[XSR_R8],
	    .r9 = r->gpr[XSR_R9],
	    .r10 = r->gpr[XSR_R10],
	    .r11 = r->gpr[XSR_R11],
	    .r12 = r->gpr[XSR_R12],
	    .r13 = r->gpr[XSR_R13],
	    .r14 = r->gpr[XSR_R14],
	    .r15 = r->gpr[XSR_R15],
	    .rip = r->rip,
	    .rflags = r->rflags,
	};
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return ioerr(k, "KVM_SET_REGS", id);
	return 0;
}

/* XCR0 before the XSAVE image it gates; the legacy FPU image when there is no XSAVE. */
static int set_fpu(struct xsr_kvm *k, int fd, int id, const struct xsr_vcpu_state *st)
{
	const struct xsr_x86_vcpu *r = &st->r;

	if (k->have_xcrs && r->xcr0) {
		struct kvm_xcrs xcrs;

		memset(&xcrs, 0, sizeof(xcrs));
		xcrs.nr_xcrs = 1;
		xcrs.xcrs[0].xcr = 0;
		xcrs.xcrs[0].value = r->xcr0;
		if (ioctl(fd, KVM_SET_XCRS, &xcrs) < 0)
			return ioerr(k, "KVM_SET_XCRS", id);
	}
	if ((r->valid & XSR_VCPU_HAVE_XSAVE) && r->xsave_len && k->have_xsave) {
		/* KVM_SET_XSAVE reads KVM's whole uabi size: hand it a full buffer. */
		uint8_t *buf = calloc(1, XSR_MAX_XSAVE);

		if (!buf)
			return seterr(k, XSR_E_NOMEM, "out of memory");
		memcpy(buf, st->xsave, r->xsave_len < XSR_MAX_XSAVE ? r->xsave_len : XSR_MAX_XSAVE);
		int rc = ioctl(fd, KVM_SET_XSAVE, buf);
		free(buf);
		if (rc < 0)
			return ioerr(k, "KVM_SET_XSAVE", id);
	} else if (r->valid & (XSR_VCPU_HAVE_FPU | XSR_VCPU_HAVE_XSAVE)) {
		struct kvm_fpu fpu;

		fxsave_to_fpu(r->fxsave, &fpu);
		if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
			return ioerr(k, "KVM_SET_FPU", id);
	}
	return 0;
}

static int set_msrs(struct xsr_kvm *k, int fd, int id, const struct xsr_vcpu_state *st)
{
	const struct xsr_x86_vcpu *r = &st->r;

	if ((r->valid & XSR_VCPU_HAVE_MSRS) && r->nr_msrs) {
		size_t sz = sizeof(struct kvm_msrs) + r->nr_msrs * sizeof(struct kvm_msr_entry);
		struct kvm_msrs *m = calloc(1, sz);
		int done;

		if (!m)
			return seterr(k, XSR_E_NOMEM, "out of memory");
		m->nmsrs = r->nr_msrs;
		for (uint32_t i = 0; i < r->nr_msrs; i++) {
			m->entries[i].index = st->msrs[i].index;
			m->entries[i].data = st->msrs[i].value;
		}
		done = ioctl(fd, KVM_SET_MSRS, m);
		if (done < 0 || (uint32_t)done != r->nr_msrs) {
			int e = errno;

			if (done >= 0)
				seterr(k, XSR_E_BACKEND,
				       "KVM_SET_MSRS vcpu %d: MSR 0x%x = 0x%llx refused", id,
				       st->msrs[done].index,
				       (unsigned long long)st->msrs[done].value);
			else
				seterr(k, XSR_E_BACKEND, "KVM_SET_MSRS vcpu %d: %s", id,
				       strerror(e));
			free(m);
			return XSR_E_BACKEND;
		}
		free(m);
	}
	return 0;
}

/* LAPIC, debug registers, pending events and MP state: what happens at the next KVM_RUN. */
static int set_lapic_events(struct xsr_kvm *k, int fd, int id, const struct xsr_vcpu_state *st)
{
	const struct xsr_x86_vcpu *r = &st->r;

	if ((r->valid & XSR_VCPU_HAVE_LAPIC) && r->lapic_len) {
		if (!k->irqchip)
			return seterr(k, XSR_E_UNSUPPORTED,
				      "set_vcpu %d: the image has LAPIC state but this VM has no "
				      "in-kernel irqchip",
				      id);
		if (ioctl(fd, KVM_SET_LAPIC, st->lapic) < 0)
			return ioerr(k, "KVM_SET_LAPIC", id);
	}
	if ((r->valid & XSR_VCPU_HAVE_DEBUG) && k->have_debugregs) {
		struct kvm_debugregs d;

		memset(&d, 0, sizeof(d));
		memcpy(d.db, r->dr, sizeof(d.db));
		d.dr6 = r->dr[6];
		d.dr7 = r->dr[7];
		if (ioctl(fd, KVM_SET_DEBUGREGS, &d) < 0)
			return ioerr(k, "KVM_SET_DEBUGREGS", id);
	}
	if ((r->valid & XSR_VCPU_HAVE_EVENTS) && k->have_events) {
		struct kvm_vcpu_events ev;

		memcpy(&ev, r->events, sizeof(ev));
		if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			return ioerr(k, "KVM_SET_VCPU_EVENTS", id);
	}
	struct kvm_mp_state mp = {.mp_state = r->mp_state};
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return ioerr(k, "KVM_SET_MP_STATE", id);
	return 0;
}

/*
 * Order matters: SREGS first (CR0/CR4/EFER decide how the rest is read),
 * then REGS; XCR0 before the XSAVE image it gates; MSRs (TSC, the PV clock)
 * before LAPIC (the TSC deadline timer); events and MP state last, as they
 * describe what happens at the next KVM_RUN.
 */
static int kvm_set_vcpu(struct xsr_backend *be, const struct xsr_vcpu_state *st)
{
	struct xsr_kvm *k = K(be);
	uint32_t id = st->r.vcpu_id;

	if (id >= k->nr_vcpus)
		return seterr(k, XSR_E_RANGE, "set_vcpu: vcpu %u of %u", id, k->nr_vcpus);
	int fd = k->vcpus[id].fd, rc = set_sregs(k, fd, (int)id, st);

	if (rc == 0)
		rc = set_regs(k, fd, (int)id, st);
	if (rc == 0)
		rc = set_fpu(k, fd, (int)id, st);
	if (rc == 0)
		rc = set_msrs(k, fd, (int)id, st);
	if (rc == 0)
		rc = set_lapic_events(k, fd, (int)id, st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Domain context: KVM clock, irqchip, config                          */
/* ------------------------------------------------------------------ */

static int put_desc(uint8_t **buf, size_t *len, uint16_t type, const void *payload, uint64_t n)
{
	struct xsr_domctx_desc d = {
	    .typecode = type, .flags = 0, .vcpu_id = XSR_DOMCTX_ALL_VCPUS, .length = n};
	size_t padded = (size_t)((n + 7) & ~UINT64_C(7));
	uint8_t *p = realloc(*buf, *len + sizeof(d) + padded);

	if (!p)
		return XSR_E_NOMEM;
	memcpy(p + *len, &d, sizeof(d));
	memcpy(p + *len + sizeof(d), payload, n);
	memset(p + *len + sizeof(d) + n, 0, padded - n);
	*buf = p;
	*len += sizeof(d) + padded;
	return 0;
}

static int kvm_save_extra(struct xsr_backend *be, struct xsr_writer *w)
{
	struct xsr_kvm *k = K(be);
	struct kvm_clock_data clock;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(&clock, 0, sizeof(clock));
	if (ioctl(k->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return ioerr(k, "KVM_GET_CLOCK", -1);
	r = put_desc(&buf, &len, XSR_DC_KVM_CLOCK, &clock, sizeof(clock));
	if (r == 0 && k->irqchip) {
		/* PIC master, PIC slave, IOAPIC: the same order restore applies them. */
		struct kvm_irqchip chips[3];

		memset(chips, 0, sizeof(chips));
		for (uint32_t i = 0; i < 3; i++) {
			chips[i].chip_id = i;
			if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0) {
				free(buf);
				return seterr(k, XSR_E_BACKEND, "KVM_GET_IRQCHIP chip %u: %s", i,
					      strerror(errno));
			}
		}
		r = put_desc(&buf, &len, XSR_DC_IRQCHIP, chips, sizeof(chips));
	}
	if (r < 0) {
		free(buf);
		return seterr(k, r, "out of memory");
	}
	r = xsr_writer_add(w, XSR_SEC_DOMCTX, 0, buf, len);
	free(buf);
	if (r < 0)
		return seterr(k, r, "writing the domain context: %s", xsr_writer_error(w));
	if (k->config) {
		r = xsr_writer_add(w, XSR_SEC_CONFIG, 0, k->config, strlen(k->config));
		if (r < 0)
			return seterr(k, r, "writing the config: %s", xsr_writer_error(w));
	}
	return 0;
}

static int load_domctx(struct xsr_kvm *k, const uint8_t *p, uint64_t len)
{
	uint64_t off = 0;

	while (off < len) {
		struct xsr_domctx_desc d;
		uint64_t padded;

		if (len - off < sizeof(d))
			return seterr(k, XSR_E_FORMAT,
				      "domctx at +%llu: %llu octets left, "
				      "descriptor needs 16",
				      (unsigned long long)off, (unsigned long long)(len - off));
		memcpy(&d, p + off, sizeof(d));
		off += sizeof(d);
		padded = (d.length + 7) & ~UINT64_C(7);
		if (d.length > len - off || padded > len - off)
			return seterr(k, XSR_E_FORMAT,
				      "domctx type %u at +%llu: length %llu "
				      "overruns the section",
				      d.typecode, (unsigned long long)(off - sizeof(d)),
				      (unsigned long long)d.length);
		const uint8_t *body = p + off;
		off += padded;

		if (d.typecode == XSR_DC_KVM_CLOCK) {
			struct kvm_clock_data clock;

			if (d.length != sizeof(clock))
				return seterr(k, XSR_E_FORMAT,
					      "domctx kvm-clock: length %llu != %zu",
					      (unsigned long long)d.length, sizeof(clock));
			memcpy(&clock, body, sizeof(clock));
			/* The guest's clock carries on from the saved value, with no jump
			 * for the time the image sat on disk. */
			clock.flags = 0;
			if (ioctl(k->vm_fd, KVM_SET_CLOCK, &clock) < 0)
				return ioerr(k, "KVM_SET_CLOCK", -1);
		} else if (d.typecode == XSR_DC_IRQCHIP) {
			struct kvm_irqchip chips[3];

			if (d.length != sizeof(chips))
				return seterr(k, XSR_E_FORMAT, "domctx irqchip: length %llu != %zu",
					      (unsigned long long)d.length, sizeof(chips));
			if (!k->irqchip)
				return seterr(k, XSR_E_UNSUPPORTED,
					      "domctx irqchip: this VM has no "
					      "in-kernel irqchip");
			memcpy(chips, body, sizeof(chips));
			for (uint32_t i = 0; i < 3; i++)
				if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
					return seterr(k, XSR_E_BACKEND,
						      "KVM_SET_IRQCHIP chip %u: %s",
						      chips[i].chip_id, strerror(errno));
		} else if (!(d.flags & XSR_DOMCTX_IGNORE)) {
			return seterr(k, XSR_E_UNSUPPORTED,
				      "domctx type %u cannot be applied to a "
				      "KVM guest",
				      d.typecode);
		}
	}
	return 0;
}

static int kvm_load_extra(struct xsr_backend *be, uint32_t code, uint32_t info, const void *body,
			  uint64_t len)
{
	struct xsr_kvm *k = K(be);

	(void)info;
	switch (code) {
	case XSR_SEC_DOMCTX:
		return load_domctx(k, body, len);
	case XSR_SEC_CONFIG:
		if (len > XSR_MAX_CONFIG)
			return seterr(k, XSR_E_LIMIT, "config: %llu octets",
				      (unsigned long long)len);
		free(k->config);
		k->config = strndup(body, (size_t)len);
		if (!k->config)
			return seterr(k, XSR_E_NOMEM, "out of memory");
		return 0;
	default:
		return 0; /* not KVM's business (Xen records, VMCOREINFO, ...) */
	}
}

int kvm_set_config(struct xsr_backend *be, const char *text)
{
	struct xsr_kvm *k = K(be);
	char *c = strdup(text);

	if (!c)
		return seterr(k, XSR_E_NOMEM, "out of memory");
	free(k->config);
	k->config = c;
	return 0;
}

const char *kvm_config(struct xsr_backend *be)
{
	return K(be)->config;
}

static const char *kvm_error(struct xsr_backend *be)
{
	return K(be)->err;
}

static void kvm_close(struct xsr_backend *be)
{
	struct xsr_kvm *k;

	if (!be)
		return;
	k = K(be);
	kvm_stop(be);
	for (uint32_t i = 0; i < k->nr_vcpus; i++) {
		if (k->vcpus[i].run)
			munmap(k->vcpus[i].run, k->vcpus[i].run_size);
		if (k->vcpus[i].fd >= 0)
			close(k->vcpus[i].fd);
	}
	free(k->vcpus);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	if (k->mem)
		munmap(k->mem, k->mem_len);
	if (k->memfd >= 0)
		close(k->memfd);
	for (uint32_t i = 0; k->slots && i < k->nr_runs; i++)
		free(k->slots[i].log);
	free(k->slots);
	free(k->runs);
	free(k->cpuid);
	free(k->msr_index);
	free(k->config);
	free(k->soft_dirty);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->run_cv);
	pthread_cond_destroy(&k->parked_cv);
	free(k);
}

const struct xsr_backend_ops kvm_ops = {
    .name = "kvm",
    .describe = kvm_describe,
    .pause = kvm_pause,
    .resume = kvm_resume,
    .map = kvm_map,
    .unmap = kvm_unmap,
    .zero_hint = kvm_zero_hint,
    .get_vcpu = kvm_get_vcpu,
    .save_extra = kvm_save_extra,
    .dirty_start = kvm_dirty_start,
    .dirty_fetch = kvm_dirty_fetch,
    .dirty_stop = kvm_dirty_stop,
    .create = kvm_create,
    .set_vcpu = kvm_set_vcpu,
    .load_extra = kvm_load_extra,
    .start = kvm_start,
    .map_guest = kvm_map_guest,
    .error = kvm_error,
    .close = kvm_close,
};
