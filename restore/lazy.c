/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lazy restore: the guest starts before any page is loaded.
 *
 * Guest memory (what the backend's ops->map_guest hands out: for KVM, its
 * memfd mapping) is registered with userfaultfd in MISSING mode.  A fault thread serves each first touch, by a
 * vCPU or by KVM itself on the guest's behalf, with one verified page read
 * from the image (xsr_image_read_page: random access through the index);
 * a prefetch thread copies every remaining data page in, in slot order.  Once
 * all data pages are in, the range is unregistered: the pages never written
 * are zero in the image and read as zero from the memfd anyway.
 *
 * Time to running is the cost of opening the image, creating the VM and
 * setting the vCPUs: nothing in it scales with guest memory.
 *
 * The two threads use two image handles on the same fd (pread), so a fault
 * never waits behind a prefetch read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xsrelf/reader.h>

#include "../util/clock.h"
#include "../util/err.h"
#include "restore.h"

#define PREFETCH_CHUNK 256 /* index entries read at a time */

struct xsr_lazy {
	struct xsr_backend *be;
	struct xsr_image *img_fault, *img_prefetch;
	int fd; /* the image; ours once lazy_restore() succeeded */
	FILE *log;
	int uffd;
	int wake[2]; /* stop pipe: lazy_stop -> both threads */
	uint8_t *base;
	uint64_t len;
	/* The backend's runs (borrowed) and the first page slot of each: slot -> pfn. */
	const struct xsr_memrun *runs;
	uint64_t *slot0;
	uint32_t nr_runs;
	pthread_t fault_tid, prefetch_tid;
	bool have_fault, have_prefetch;
	atomic_uint_fast64_t faults, prefetched, errors;
	atomic_int done, stop;
};

static void lz_log(struct xsr_lazy *lz, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lz_log(struct xsr_lazy *lz, const char *fmt, ...)
{
	va_list ap;

	fprintf(lz->log, "lazy: ");
	va_start(ap, fmt);
	vfprintf(lz->log, fmt, ap);
	va_end(ap);
	fputc('\n', lz->log);
	fflush(lz->log);
}

/* Copy one page in; 0 if it is in (by us or by the other thread). */
static int place_page(struct xsr_lazy *lz, uint64_t addr, const void *page, int wake_on_exist)
{
	for (;;) {
		int r;

		if (page) {
			struct uffdio_copy c = {
			    .dst = addr, .src = (uintptr_t)page, .len = XSR_PAGE_SIZE, .mode = 0};
			r = ioctl(lz->uffd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = {.range = {.start = addr, .len = XSR_PAGE_SIZE},
						    .mode = 0};
			r = ioctl(lz->uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (r == 0)
			return 0;
		if (errno == EAGAIN)
			continue; /* the mm changed under us: try again */
		if (errno == EEXIST) {
			/* Somebody placed it first; a faulting thread may still wait. */
			if (wake_on_exist) {
				struct uffdio_range w = {.start = addr, .len = XSR_PAGE_SIZE};

				ioctl(lz->uffd, UFFDIO_WAKE, &w);
			}
			return 0;
		}
		return -errno;
	}
}

/* Guest frame of page slot @slot (backend.h: slots in run order); -1 past the end. */
static int slot_pfn(const struct xsr_lazy *lz, uint64_t slot, uint64_t *pfn)
{
	uint32_t lo = 0, hi = lz->nr_runs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (slot < lz->slot0[mid])
			hi = mid;
		else if (slot - lz->slot0[mid] >= lz->runs[mid].count)
			lo = mid + 1;
		else {
			*pfn = lz->runs[mid].pfn + (slot - lz->slot0[mid]);
			return 0;
		}
	}
	return -1;
}

/* After create: where guest memory is and how its slots map to frames. */
static int map_guest(struct xsr_lazy *lz, char *err, size_t errlen)
{
	struct xsr_backend *be = lz->be;
	struct xsr_domain_info info;
	void *base;
	uint64_t n = 0;
	int r = be->ops->map_guest(be, &base, &lz->len);

	if (r == 0)
		r = be->ops->describe(be, &info);
	if (r < 0)
		return util_fail(err, errlen, r, "%s", be->ops->error(be));
	lz->base = base;
	lz->runs = info.runs;
	lz->nr_runs = info.nr_runs;
	lz->slot0 = calloc(info.nr_runs ? info.nr_runs : 1, sizeof(*lz->slot0));
	if (!lz->slot0)
		return util_fail(err, errlen, XSR_E_NOMEM, "out of memory");
	for (uint32_t i = 0; i < info.nr_runs; i++) {
		lz->slot0[i] = n;
		n += info.runs[i].count;
	}
	if (n > lz->len >> XSR_PAGE_SHIFT)
		return util_fail(err, errlen, XSR_E_BACKEND, "map_guest: %" PRIu64 " octets for %" PRIu64 " pages",
				 lz->len, n);
	return 0;
}

static void serve_fault(struct xsr_lazy *lz, uint64_t address, uint8_t *buf)
{
	uint64_t addr = address & ~(XSR_PAGE_SIZE - 1), slot, pfn;
	uint32_t flags = 0;
	int r;

	if (addr < (uintptr_t)lz->base || addr - (uintptr_t)lz->base >= lz->len) {
		lz_log(lz, "fault at 0x%" PRIx64 " outside guest memory", address);
		atomic_fetch_add(&lz->errors, 1);
		return;
	}
	slot = (addr - (uintptr_t)lz->base) >> XSR_PAGE_SHIFT;
	if (slot_pfn(lz, slot, &pfn) < 0) {
		lz_log(lz, "fault in slot %" PRIu64 ": no such slot", slot);
		atomic_fetch_add(&lz->errors, 1);
		return;
	}
	r = xsr_image_read_page(lz->img_fault, pfn, buf, &flags);
	if (r < 0) {
		/*
		 * Serving anything else would hand the guest wrong memory; the
		 * faulting vCPU stays blocked and status shows lazy errors.
		 */
		lz_log(lz, "pfn 0x%" PRIx64 ": %s", pfn, xsr_image_error(lz->img_fault));
		atomic_fetch_add(&lz->errors, 1);
		return;
	}
	r = place_page(lz, addr, (flags & XSR_IDX_DATA) ? buf : NULL, 1);
	if (r < 0) {
		lz_log(lz, "pfn 0x%" PRIx64 ": UFFDIO_%s: %s", pfn,
		       (flags & XSR_IDX_DATA) ? "COPY" : "ZEROPAGE", strerror(-r));
		atomic_fetch_add(&lz->errors, 1);
		return;
	}
	atomic_fetch_add(&lz->faults, 1);
}


int lazy_uffd_wait(int uffd, int wakefd, struct uffd_msg *msgs, size_t max, int *err)
{
	struct pollfd p[2] = {{.fd = uffd, .events = POLLIN}, {.fd = wakefd, .events = POLLIN}};
	ssize_t n;

	*err = 0;
	if (poll(p, 2, -1) < 0 && errno != EINTR) {
		*err = errno;
		return -1;
	}
	if (p[1].revents)
		return -1;
	if (!(p[0].revents & POLLIN))
		return 0;
	n = read(uffd, msgs, max * sizeof(*msgs));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		*err = errno;
		return -1;
	}
	return (int)((size_t)n / sizeof(*msgs));
}

static void *fault_thread(void *arg)
{
	struct xsr_lazy *lz = arg;
	uint8_t *buf = aligned_alloc(XSR_PAGE_SIZE, XSR_PAGE_SIZE);

	if (!buf) {
		lz_log(lz, "fault thread: out of memory");
		return NULL;
	}
	while (!atomic_load(&lz->stop)) {
		struct uffd_msg msgs[16];
		int e, n = lazy_uffd_wait(lz->uffd, lz->wake[0], msgs, 16, &e);

		if (n < 0) {
			if (e)
				lz_log(lz, "read userfaultfd: %s", strerror(e));
			break;
		}
		for (int i = 0; i < n; i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				serve_fault(lz, msgs[i].arg.pagefault.address, buf);
	}
	free(buf);
	return NULL;
}

static void *prefetch_thread(void *arg)
{
	struct xsr_lazy *lz = arg;
	struct xsr_index_entry idx[PREFETCH_CHUNK];
	const struct xsr_memrun *runs = xsr_image_runs(lz->img_prefetch);
	uint32_t nruns = xsr_image_nruns(lz->img_prefetch);
	uint8_t *buf = aligned_alloc(XSR_PAGE_SIZE, XSR_PAGE_SIZE);
	uint64_t slot0 = 0, t0 = util_now_ns();

	if (!buf) {
		lz_log(lz, "prefetch thread: out of memory");
		return NULL;
	}
	for (uint32_t r = 0; r < nruns && !atomic_load(&lz->stop); r++) {
		for (uint64_t first = 0; first < runs[r].count && !atomic_load(&lz->stop);) {
			uint64_t n = runs[r].count - first;

			if (n > PREFETCH_CHUNK)
				n = PREFETCH_CHUNK;
			if (xsr_image_run_index(lz->img_prefetch, r, first, n, idx) < 0) {
				lz_log(lz, "run %u index at slot %" PRIu64 ": %s", r, first,
				       xsr_image_error(lz->img_prefetch));
				atomic_fetch_add(&lz->errors, 1);
				goto out;
			}
			for (uint64_t j = 0; j < n && !atomic_load(&lz->stop); j++) {
				uint64_t pfn = runs[r].pfn + first + j;
				uint64_t addr =
				    (uintptr_t)lz->base + ((slot0 + first + j) << XSR_PAGE_SHIFT);
				uint32_t flags;
				int rc;

				if (!(idx[j].flags & XSR_IDX_DATA))
					continue;
				if (xsr_image_read_page(lz->img_prefetch, pfn, buf, &flags) < 0) {
					lz_log(lz, "prefetch pfn 0x%" PRIx64 ": %s", pfn,
					       xsr_image_error(lz->img_prefetch));
					atomic_fetch_add(&lz->errors, 1);
					continue;
				}
				rc = place_page(lz, addr, buf, 0);
				if (rc < 0) {
					lz_log(lz, "prefetch pfn 0x%" PRIx64 ": UFFDIO_COPY: %s",
					       pfn, strerror(-rc));
					atomic_fetch_add(&lz->errors, 1);
					continue;
				}
				atomic_fetch_add(&lz->prefetched, 1);
			}
			first += n;
		}
		slot0 += runs[r].count;
	}
	if (!atomic_load(&lz->stop) && atomic_load(&lz->errors) == 0) {
		/* Every data page is in; what is still missing is zero in the image. */
		struct uffdio_range all = {.start = (uintptr_t)lz->base, .len = lz->len};

		if (ioctl(lz->uffd, UFFDIO_UNREGISTER, &all) < 0)
			lz_log(lz, "UFFDIO_UNREGISTER: %s", strerror(errno));
		else
			atomic_store(&lz->done, 1);
		lz_log(lz,
		       "prefetch done: %" PRIu64 " pages prefetched, %" PRIu64
		       " served on fault, %.1f ms",
		       (uint64_t)atomic_load(&lz->prefetched), (uint64_t)atomic_load(&lz->faults),
		       (util_now_ns() - t0) / 1e6);
	}
out:
	free(buf);
	return NULL;
}

/* Everything but vCPUs and pages, as restore/restore.c hands them over. */
static int load_sections(struct xsr_lazy *lz, char *err, size_t errlen)
{
	struct xsr_image *img = lz->img_fault;
	uint32_t n = xsr_image_nsections(img);

	for (uint32_t i = 0; i < n; i++) {
		struct xsr_section_info si;
		void *body = NULL;
		uint64_t len = 0;
		int r;

		if (xsr_image_section(img, i, &si) < 0)
			continue;
		if (!backend_extra_section(si.code))
			continue;
		r = xsr_image_read_section(img, si.index, &body, &len);
		if (r < 0)
			return util_fail(err, errlen, r, "section %s: %s", si.name ? si.name : "?",
					 xsr_image_error(img));
		r = lz->be->ops->load_extra(lz->be, si.code, si.info, body, len);
		free(body);
		if (r < 0)
			return util_fail(err, errlen, r, "%s", lz->be->ops->error(lz->be));
	}
	return 0;
}

int lazy_restore(struct xsr_backend *be, int fd, FILE *log, struct xsr_lazy **out,
		 struct xsr_restore_stats *st, char *err, size_t errlen)
{
	struct xsr_lazy *lz;
	struct xsr_vcpu_state *vs = NULL;
	struct stat sb;
	uint64_t t0 = util_now_ns();
	int r, e;

	*out = NULL;
	memset(st, 0, sizeof(*st));
	if (!be->ops->map_guest)
		return util_fail(err, errlen, XSR_E_UNSUPPORTED, "the %s backend has no lazy restore", be->ops->name);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return util_fail(err, errlen, XSR_E_INVAL,
				 "lazy restore needs a seekable image file, "
				 "not a pipe or stream");
	lz = calloc(1, sizeof(*lz));
	if (!lz)
		return util_fail(err, errlen, XSR_E_NOMEM, "out of memory");
	lz->be = be;
	lz->log = log ? log : stderr;
	lz->uffd = lz->wake[0] = lz->wake[1] = lz->fd = -1;

	r = xsr_image_open(&lz->img_fault, fd, err, errlen);
	if (r == 0)
		r = xsr_image_open(&lz->img_prefetch, fd, err, errlen);
	if (r < 0)
		goto fail;
	if (pipe2(lz->wake, O_CLOEXEC) < 0) {
		r = util_fail(err, errlen, XSR_E_IO, "pipe: %s", strerror(errno));
		goto fail;
	}

	const struct xsr_file_header *h = xsr_image_header(lz->img_fault);
	struct xsr_domain_info info = {
	    .nr_vcpus = h->nr_vcpus,
	    .nr_runs = xsr_image_nruns(lz->img_fault),
	    .runs = xsr_image_runs(lz->img_fault),
	};
	r = be->ops->create(be, &info);
	if (r < 0) {
		util_fail(err, errlen, r, "%s", be->ops->error(be));
		goto fail;
	}
	r = map_guest(lz, err, errlen);
	if (r < 0)
		goto fail;

	lz->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (lz->uffd < 0) {
		e = errno;
		r = util_fail(err, errlen, XSR_E_UNSUPPORTED, "userfaultfd: %s%s", strerror(e),
			      e == EPERM ? " (needs root, or sysctl vm.unprivileged_userfaultfd=1)"
				    : "");
		goto fail;
	}
	struct uffdio_api api = {.api = UFFD_API, .features = 0};
	if (ioctl(lz->uffd, UFFDIO_API, &api) < 0) {
		r = util_fail(err, errlen, XSR_E_UNSUPPORTED, "UFFDIO_API: %s", strerror(errno));
		goto fail;
	}
	struct uffdio_register reg = {
	    .range = {.start = (uintptr_t)lz->base, .len = lz->len},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(lz->uffd, UFFDIO_REGISTER, &reg) < 0) {
		r = util_fail(err, errlen, XSR_E_UNSUPPORTED,
			      "UFFDIO_REGISTER guest memory (memfd, %" PRIu64 " MiB): %s", lz->len >> 20,
			      strerror(errno));
		goto fail;
	}
	if (!(reg.ioctls & (UINT64_C(1) << _UFFDIO_COPY)) ||
	    !(reg.ioctls & (UINT64_C(1) << _UFFDIO_ZEROPAGE))) {
		r = util_fail(err, errlen, XSR_E_UNSUPPORTED,
			      "userfaultfd on shared memory lacks UFFDIO_COPY/ZEROPAGE here");
		goto fail;
	}
	/* Before anything can touch guest memory (KVM does, e.g. for kvmclock). */
	e = pthread_create(&lz->fault_tid, NULL, fault_thread, lz);
	if (e) {
		r = util_fail(err, errlen, XSR_E_NOMEM, "fault thread: %s", strerror(e));
		goto fail;
	}
	lz->have_fault = true;

	r = load_sections(lz, err, errlen);
	if (r < 0)
		goto fail;
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		r = util_fail(err, errlen, XSR_E_NOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < h->nr_vcpus; i++) {
		r = xsr_image_vcpu(lz->img_fault, i, vs);
		if (r < 0) {
			util_fail(err, errlen, r, "vcpu %u: %s", i, xsr_image_error(lz->img_fault));
			goto fail;
		}
		r = be->ops->set_vcpu(be, vs);
		if (r < 0) {
			util_fail(err, errlen, r, "%s", be->ops->error(be));
			goto fail;
		}
	}
	free(vs);
	vs = NULL;

	e = pthread_create(&lz->prefetch_tid, NULL, prefetch_thread, lz);
	if (e) {
		r = util_fail(err, errlen, XSR_E_NOMEM, "prefetch thread: %s", strerror(e));
		goto fail;
	}
	lz->have_prefetch = true;
	r = be->ops->start(be);
	if (r < 0) {
		util_fail(err, errlen, r, "%s", be->ops->error(be));
		goto fail;
	}
	st->elapsed_ns = util_now_ns() - t0;
	lz->fd = fd;
	*out = lz;
	return 0;
fail:
	/* No vCPU runs: ops->start is the last step, and stops its threads itself when it fails. */
	free(vs);
	lazy_stop(lz);
	return r;
}

void lazy_stats(struct xsr_lazy *lz, struct xsr_lazy_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!lz)
		return;
	st->faults = atomic_load(&lz->faults);
	st->prefetched = atomic_load(&lz->prefetched);
	st->errors = atomic_load(&lz->errors);
	st->done = atomic_load(&lz->done);
}

void lazy_stop(struct xsr_lazy *lz)
{
	if (!lz)
		return;
	atomic_store(&lz->stop, 1);
	if (lz->wake[1] >= 0)
		(void)!write(lz->wake[1], "x", 1);
	if (lz->have_prefetch)
		pthread_join(lz->prefetch_tid, NULL);
	if (lz->have_fault)
		pthread_join(lz->fault_tid, NULL);
	if (lz->uffd >= 0)
		close(lz->uffd);
	if (lz->wake[0] >= 0)
		close(lz->wake[0]);
	if (lz->wake[1] >= 0)
		close(lz->wake[1]);
	xsr_image_close(lz->img_fault);
	xsr_image_close(lz->img_prefetch);
	free(lz->slot0);
	if (lz->fd >= 0)
		close(lz->fd);
	free(lz);
}
