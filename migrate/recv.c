/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The receiving side of a live migration.
 *
 * The sender's stream is read record by record (xsr_stream_step: every
 * record's checksum, every pfn against the memory map, END's chain), and
 * applied to a fresh domain (or to a seekable image on disk).  The receiver
 * answers on the same connection: HELLO once it has seen the header, memory
 * map and config (refusing before a single page moved if it cannot take the
 * guest), ACK at the end of each pre-copy round, COMMIT once the guest runs.
 *
 * Post-copy: at TRANSITION the still-missing pages (POSTCOPY_PFNS) are
 * removed from guest memory, the memory is registered with userfaultfd and
 * the guest starts.  A fault thread turns first touches of missing pages
 * into FAULT records; the main thread keeps reading page batches and
 * places each page with UFFDIO_COPY, which also wakes whoever waits for it.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

#include "../restore/restore.h"
#include "../util/clock.h"
#include "../util/err.h"
#include "migrate.h"

struct rcv {
	struct xsr_backend *be;
	const struct xsr_mig_recv_opts *o;
	struct xsr_mig_recv_stats *st;
	int fd;
	const struct xsr_file_header *fh;
	struct xsr_producer pr;
	bool have_pr, created, hello_sent, begun, postcopy, transitioned, ended;
	struct xsr_memrun *runs;
	uint32_t nruns;
	uint64_t *slot0, nslots;
	uint8_t **base; /* host address of each run (VM sink) */
	struct xsr_vcpu_state *vs;
	uint64_t round;        /* rounds acknowledged */
	uint64_t round_pages;  /* pages in the current round (for the cut point) */
	/* file sink */
	struct xsr_writer *w;
	char *last_config;
	/* post-copy */
	uint64_t *pending; /* bit per slot, atomically cleared */
	uint64_t *asked;   /* FAULT sent */
	atomic_uint_fast64_t npending, faults;
	int uffd, wake[2];
	pthread_t tid;
	bool have_thread;
	pthread_mutex_t send_lock;
	uint64_t t_transition;
	int refuse_rc; /* refusal found before MIG_BEGIN, answered at MIG_BEGIN */
	char refusal[XSR_MIG_MAX_TEXT];
	char *err;
	size_t errlen;
};

/* The reason into the caller's buffer, and @rc back. */
#define rfail(c, rc, ...) util_fail((c)->err, (c)->errlen, (rc), __VA_ARGS__)

static void rlog(struct rcv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rlog(struct rcv *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->o->log)
		return;
	fprintf(c->o->log, "receive: ");
	va_start(ap, fmt);
	vfprintf(c->o->log, fmt, ap);
	va_end(ap);
	fputc('\n', c->o->log);
	fflush(c->o->log);
}

/* Test hook: the receiver dies here, as if killed. */
static void die_at(const char *point)
{
	if (mig_cut_here(point))
		raise(SIGKILL);
}

static int answer(struct rcv *c, uint32_t code, const void *body, size_t len)
{
	pthread_mutex_lock(&c->send_lock);
	int rc = mig_send(c->fd, code, body, len);
	pthread_mutex_unlock(&c->send_lock);
	if (rc < 0)
		return rfail(c, rc, "answering %s: the sender is gone (%s)", mig_rec_name(code), strerror(errno));
	return 0;
}

static int send_hello(struct rcv *c, int status, const char *reason)
{
	uint8_t buf[sizeof(struct xsr_mig_hello) + XSR_MIG_MAX_TEXT];
	struct xsr_mig_hello h = {
	    .status = (uint32_t)status,
	    .flags = c->be ? XSR_MIG_POSTCOPY : 0,
	    .mem_limit = c->o->mem_limit,
	    .max_vcpus = c->o->max_vcpus,
	};
	size_t n = strnlen(reason, XSR_MIG_MAX_TEXT - 1);

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), reason, n);
	buf[sizeof(h) + n] = 0;
	c->hello_sent = true;
	return answer(c, XSR_MIG_R_HELLO, buf, sizeof(h) + n + 1);
}

/* Tell the sender why we give up (HELLO refusal before HELLO, else ERROR). */
static void tell_failure(struct rcv *c, int code)
{
	uint8_t buf[sizeof(struct xsr_mig_error) + XSR_MIG_MAX_TEXT];
	struct xsr_mig_error e = {.code = code};
	size_t n = strnlen(c->err, XSR_MIG_MAX_TEXT - 1);
	char keep[XSR_MIG_MAX_TEXT];

	snprintf(keep, sizeof(keep), "%s", c->err);
	if (!c->hello_sent) {
		send_hello(c, -code, keep);
	} else {
		memcpy(buf, &e, sizeof(e));
		memcpy(buf + sizeof(e), keep, n);
		buf[sizeof(e) + n] = 0;
		answer(c, XSR_MIG_R_ERROR, buf, sizeof(e) + n + 1);
	}
	snprintf(c->err, c->errlen, "%s", keep);
	/*
	 * Half-close and drain briefly so that our answer is read before the
	 * connection resets (a reset may discard data the sender has not read).
	 */
	shutdown(c->fd, SHUT_WR);
	uint64_t t0 = util_now_ns();
	char sink[65536];
	while (util_now_ns() - t0 < 2000000000ull) {
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		if (recv(c->fd, sink, sizeof(sink), 0) <= 0)
			break;
	}
}

static int64_t slot_of(const struct rcv *c, uint64_t pfn)
{
	uint32_t lo = 0, hi = c->nruns;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (pfn < c->runs[mid].pfn)
			hi = mid;
		else if (pfn - c->runs[mid].pfn >= c->runs[mid].count)
			lo = mid + 1;
		else
			return (int64_t)(c->slot0[mid] + pfn - c->runs[mid].pfn);
	}
	return -1;
}

static uint8_t *host_addr(const struct rcv *c, uint64_t pfn)
{
	for (uint32_t r = 0; r < c->nruns; r++)
		if (pfn >= c->runs[r].pfn && pfn - c->runs[r].pfn < c->runs[r].count)
			return c->base[r] + ((pfn - c->runs[r].pfn) << XSR_PAGE_SHIFT);
	return NULL;
}

static bool test_bit(const uint64_t *bm, uint64_t s)
{
	return __atomic_load_n(&bm[s / 64], __ATOMIC_ACQUIRE) >> (s % 64) & 1;
}

/* ---------------- stream callbacks ---------------- */

static int on_header(void *ctx, const struct xsr_file_header *h)
{
	struct rcv *c = ctx;

	/*
	 * A refusal is answered at MIG_BEGIN, when the sender waits for HELLO:
	 * closing now, while it still writes, could reset the connection before
	 * it reads why.
	 */
	c->fh = h;
	if (h->kind != XSR_KIND_MIGRATION)
		return rfail(c, XSR_E_UNSUPPORTED, "not a migration stream (image kind %u, want %u)", h->kind,
			     XSR_KIND_MIGRATION);
	if (h->nr_vcpus > c->o->max_vcpus) {
		c->refuse_rc = XSR_E_LIMIT;
		snprintf(c->refusal, sizeof(c->refusal), "the guest has %u vCPUs, this receiver takes at most %u",
			 h->nr_vcpus, c->o->max_vcpus);
	} else if (h->nr_pages > c->o->mem_limit / XSR_PAGE_SIZE) {
		c->refuse_rc = XSR_E_LIMIT;
		snprintf(c->refusal, sizeof(c->refusal),
			 "the guest has %" PRIu64 " MiB of memory, this receiver has room for %" PRIu64 " MiB",
			 h->nr_pages >> 8, c->o->mem_limit >> 20);
	}
	return 0;
}

static int on_memmap(struct rcv *c, const void *body, uint64_t len)
{
	c->nruns = (uint32_t)(len / sizeof(struct xsr_memrun));
	c->runs = malloc(len + 1);
	c->slot0 = calloc(c->nruns + 1, 8);
	c->base = calloc(c->nruns + 1, sizeof(*c->base));
	if (!c->runs || !c->slot0 || !c->base)
		return rfail(c, XSR_E_NOMEM, "out of memory");
	memcpy(c->runs, body, len);
	for (uint32_t r = 0; r < c->nruns; r++) {
		c->slot0[r] = c->nslots;
		c->nslots += c->runs[r].count;
	}
	if (!c->have_pr)
		return rfail(c, XSR_E_FORMAT, "memmap before producer");
	if (c->refuse_rc)
		return 0;
	if (c->be) {
		struct xsr_domain_info info = {.nr_vcpus = c->fh->nr_vcpus, .nr_runs = c->nruns, .runs = c->runs};
		int rc;

		snprintf(info.hypervisor, sizeof(info.hypervisor), "%.31s", c->pr.hypervisor);
		snprintf(info.hypervisor_version, sizeof(info.hypervisor_version), "%.63s", c->pr.hypervisor_version);
		if ((rc = c->be->ops->create(c->be, &info)) < 0)
			return rfail(c, rc, "creating the domain: %s", c->be->ops->error(c->be));
		c->created = true;
		for (uint32_t r = 0; r < c->nruns; r++) {
			void *a;
			if ((rc = c->be->ops->map(c->be, c->runs[r].pfn, c->runs[r].count, 1, &a)) < 0)
				return rfail(c, rc, "mapping memory run %u: %s", r, c->be->ops->error(c->be));
			c->base[r] = a;
		}
	} else {
		struct xsr_writer_params p = {
		    .machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = XSR_LAYOUT_SEEKABLE,
		    .nr_vcpus = c->fh->nr_vcpus, .nr_runs = c->nruns, .runs = c->runs, .producer = &c->pr,
		};
		int rc = xsr_writer_open(&c->w, c->o->out_fd, &p, c->err, c->errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int start_postcopy(struct rcv *c);

static int on_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct rcv *c = ctx;
	uint32_t code = rh->sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh->sh_type & XSR_SHT_CODE_MASK;
	int rc;

	switch (code) {
	case XSR_SEC_PRODUCER:
		memcpy(&c->pr, body, sizeof(c->pr));
		c->have_pr = true;
		return 0;
	case XSR_SEC_MEMMAP:
		return on_memmap(c, body, rh->sh_size);
	case XSR_SEC_NOTES:
		return 0; /* derived from the vCPU records */
	case XSR_SEC_MIG_BEGIN: {
		struct xsr_mig_begin b;
		memcpy(&b, body, sizeof(b));
		if (c->begun || b.reserved0 || b.reserved[0] || b.reserved[1] || b.reserved[2] || (b.flags & ~XSR_MIG_POSTCOPY))
			return rfail(c, XSR_E_FORMAT, "mig-begin: repeated, or unknown flags 0x%x / reserved fields set", b.flags);
		if (!c->runs)
			return rfail(c, XSR_E_FORMAT, "mig-begin before the memory map");
		if (c->refuse_rc)
			return rfail(c, c->refuse_rc, "%s", c->refusal);
		if ((b.flags & XSR_MIG_POSTCOPY) && !c->be)
			return rfail(c, XSR_E_UNSUPPORTED, "post-copy needs a VM on this side, not --to-file");
		int is_xen = c->have_pr && !strncmp(c->pr.hypervisor, "xen", sizeof(c->pr.hypervisor));
		if (c->o->xen && !is_xen)
			return rfail(c, XSR_E_UNSUPPORTED, "a %.31s guest, not a Xen domain: this receiver (--xen) restores into Xen",
				     c->have_pr ? c->pr.hypervisor : "?");
		if (c->be && is_xen)
			return rfail(c, XSR_E_UNSUPPORTED,
				     "a Xen domain: receive it in dom0 with `xsr receive --xen` (or --to-file)");
		if (is_xen && (b.flags & XSR_MIG_POSTCOPY))
			return rfail(c, XSR_E_UNSUPPORTED, "post-copy of a Xen domain is not supported");
		c->begun = true;
		die_at("hello");
		rlog(c, "guest: %u vCPUs, %" PRIu64 " pages, %u runs; accepted", c->fh->nr_vcpus, c->fh->nr_pages, c->nruns);
		return send_hello(c, XSR_MIG_HELLO_ACCEPT, "");
	}
	case XSR_SEC_MIG_ROUND: {
		struct xsr_mig_round r;
		memcpy(&r, body, sizeof(r));
		if (!c->begun || c->postcopy || r.round != c->round || r.flags || r.reserved0 || r.reserved1)
			return rfail(c, XSR_E_FORMAT, "mig-round %" PRIu64 " out of place (expected round %" PRIu64 ")", r.round,
				     c->round);
		struct xsr_mig_ack a = {.round = r.round, .pages = c->st->pages + c->st->zero_pages};
		/* Test hook: round 1 may carry no page (an idle guest); die at its end then. */
		if (r.round == 1)
			die_at("round1");
		c->round++;
		c->round_pages = 0;
		c->st->rounds = c->round;
		return answer(c, XSR_MIG_R_ACK, &a, sizeof(a));
	}
	case XSR_SEC_POSTCOPY_BEGIN: {
		struct xsr_mig_round r;
		memcpy(&r, body, sizeof(r));
		if (!c->begun || c->postcopy || !c->be || r.reserved0 || r.reserved1 || r.pages > c->nslots)
			return rfail(c, XSR_E_FORMAT, "postcopy-begin out of place or malformed");
		c->postcopy = true;
		c->st->postcopy = 1;
		c->pending = calloc(c->nslots / 64 + 2, 8);
		c->asked = calloc(c->nslots / 64 + 2, 8);
		if (!c->pending || !c->asked)
			return rfail(c, XSR_E_NOMEM, "out of memory");
		return 0;
	}
	case XSR_SEC_POSTCOPY_PFNS: {
		struct xsr_mig_pfns h;
		memcpy(&h, body, sizeof(h));
		if (!c->postcopy || c->transitioned || h.reserved || h.count == 0 || h.count > XSR_MAX_BATCH ||
		    rh->sh_size != sizeof(h) + (uint64_t)h.count * 8)
			return rfail(c, XSR_E_FORMAT, "postcopy-pfns out of place or malformed (count %u)", h.count);
		for (uint32_t i = 0; i < h.count; i++) {
			uint64_t pfn;
			memcpy(&pfn, (const uint8_t *)body + sizeof(h) + 8 * i, 8);
			int64_t s = pfn > XSR_MAX_PFN ? -1 : slot_of(c, pfn);
			if (s < 0)
				return rfail(c, XSR_E_RANGE, "postcopy-pfns: pfn 0x%" PRIx64 " is outside the guest", pfn);
			if (!test_bit(c->pending, (uint64_t)s)) {
				c->pending[s / 64] |= UINT64_C(1) << (s % 64);
				c->npending++;
			}
		}
		return 0;
	}
	case XSR_SEC_POSTCOPY_TRANSITION:
		if (!c->postcopy || c->transitioned)
			return rfail(c, XSR_E_FORMAT, "postcopy-transition out of place");
		return start_postcopy(c);
	case XSR_SEC_VCPU: {
		const char *why;
		die_at("final");
		if ((rc = xsr_vcpu_decode(body, rh->sh_size, c->vs, &why)) < 0 || c->vs->r.vcpu_id != rh->sh_info)
			return rfail(c, rc < 0 ? rc : XSR_E_FORMAT, "vCPU %u record: %s", rh->sh_info, rc < 0 ? why : "wrong vCPU id");
		if (c->be) {
			if ((rc = c->be->ops->set_vcpu(c->be, c->vs)) < 0)
				return rfail(c, rc, "setting vCPU %u: %s", rh->sh_info, c->be->ops->error(c->be));
		} else if ((rc = xsr_writer_set_vcpu(c->w, c->vs)) < 0) {
			return rfail(c, rc, "%s", xsr_writer_error(c->w));
		}
		return 0;
	}
	default:
		break;
	}
	if (!c->runs)
		return rfail(c, XSR_E_FORMAT, "a %s record before the memory map", xsr_section_name(rh->sh_type));
	if (c->refuse_rc)
		return 0;
	if (c->be) {
		if (!backend_extra_section(code))
			return 0;
		if ((rc = c->be->ops->load_extra(c->be, code, rh->sh_info, body, rh->sh_size)) < 0)
			return rfail(c, rc, "loading a %s record: %s", xsr_section_name(rh->sh_type), c->be->ops->error(c->be));
		return 0;
	}
	/* The early config comes again with the context; store it once. */
	if (code == XSR_SEC_CONFIG) {
		if (c->last_config && strlen(c->last_config) == rh->sh_size && !memcmp(c->last_config, body, rh->sh_size))
			return 0;
		free(c->last_config);
		c->last_config = strndup(body, rh->sh_size);
	}
	struct iovec iov = {(void *)body, rh->sh_size};
	if ((rc = xsr_writer_add_section(c->w, code, !!(rh->sh_type & XSR_SHT_OPTIONAL), rh->sh_info, rh->sh_entsize, &iov, 1)) < 0)
		return rfail(c, rc, "%s", xsr_writer_error(c->w));
	return 0;
}

/* Post-copy: place one arrived page and wake whoever waits for it. */
static int place(struct rcv *c, uint64_t pfn, const uint8_t *data)
{
	int64_t s = slot_of(c, pfn);
	uint8_t *addr = host_addr(c, pfn);

	if (s < 0 || !test_bit(c->pending, (uint64_t)s))
		return rfail(c, XSR_E_FORMAT, "post-copy page for pfn 0x%" PRIx64 " that is not pending (sent twice or never listed)",
			     pfn);
	for (;;) {
		int r;
		if (data) {
			struct uffdio_copy cp = {.dst = (uintptr_t)addr, .src = (uintptr_t)data, .len = XSR_PAGE_SIZE};
			r = ioctl(c->uffd, UFFDIO_COPY, &cp);
		} else {
			struct uffdio_zeropage z = {.range = {.start = (uintptr_t)addr, .len = XSR_PAGE_SIZE}};
			r = ioctl(c->uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (r == 0 || errno == EEXIST)
			break;
		if (errno != EAGAIN)
			return rfail(c, XSR_E_BACKEND, "post-copy pfn 0x%" PRIx64 ": UFFDIO_%s: %s", pfn, data ? "COPY" : "ZEROPAGE",
				     strerror(errno));
	}
	__atomic_fetch_and(&c->pending[s / 64], ~(UINT64_C(1) << (s % 64)), __ATOMIC_RELEASE);
	c->npending--;
	c->st->postcopy_pages++;
	return 0;
}

/*
 * Pre-copy into a VM: page data is read from the socket straight into guest
 * memory (xsr_stream_set_placement), which the guest does not run on yet;
 * a batch that fails its checksum fails the receive, and the guest with it.
 * Post-copy pages go through UFFDIO_COPY (place()), and a file sink takes
 * them from the reader's buffer.
 */
static void *page_dest(void *ctx, uint64_t pfn)
{
	struct rcv *c = ctx;

	if (!c->be || !c->begun || c->postcopy || c->refuse_rc)
		return NULL;
	return host_addr(c, pfn & XSR_PFN_MASK);
}

static int on_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct rcv *c = ctx;
	const void *ptrs[XSR_MAX_BATCH];
	uint64_t clean[XSR_MAX_BATCH];
	int rc;

	if (!c->begun)
		return rfail(c, XSR_E_FORMAT, "page data before mig-begin");
	if (c->round == 1 && c->round_pages == 0)
		die_at("round1");
	bool placed = data == NULL; /* page_dest() said where, and the data is there */
	if (placed && (!c->be || c->postcopy))
		return rfail(c, XSR_E_STATE, "a page batch was placed where it must not be");
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pfn = pfns[i] & XSR_PFN_MASK;
		const uint8_t *src = (pfns[i] & XSR_PFN_ZERO) ? NULL : placed ? (const uint8_t *)"" : data;

		if (src && !placed)
			data += XSR_PAGE_SIZE;
		if (src)
			c->st->pages++;
		else
			c->st->zero_pages++;
		c->st->bytes += XSR_PAGE_SIZE;
		if (c->transitioned) {
			if ((rc = place(c, pfn, src)) < 0)
				return rc;
			if (c->st->postcopy_pages == 64)
				die_at("postcopy");
			continue;
		}
		if (c->postcopy)
			return rfail(c, XSR_E_FORMAT, "page data between postcopy-begin and postcopy-transition");
		if (c->be) {
			uint8_t *dst = host_addr(c, pfn);
			if (!src) {
				if (c->round) /* round 0 lands in fresh, zero memory */
					memset(dst, 0, XSR_PAGE_SIZE);
			} else if (!placed) {
				memcpy(dst, src, XSR_PAGE_SIZE);
			}
		} else {
			/* An image keeps what the pfn says besides its number (a Xen page's type). */
			clean[i] = pfns[i] & ~XSR_PFN_ZERO;
			ptrs[i] = src;
		}
	}
	c->round_pages += n;
	if (c->round == 0 && c->round_pages >= c->nslots / 2 && c->round_pages - n < c->nslots / 2)
		die_at("round0");
	if (!c->be && (rc = xsr_writer_put_pages(c->w, clean, n, ptrs)) < 0)
		return rfail(c, rc, "%s", xsr_writer_error(c->w));
	return 0;
}

static int on_end(void *ctx, const struct xsr_end *e)
{
	struct rcv *c = ctx;

	(void)e;
	if (!c->begun)
		return rfail(c, XSR_E_FORMAT, "END before mig-begin");
	if (c->postcopy && !c->transitioned)
		return rfail(c, XSR_E_FORMAT, "END inside the post-copy set-up");
	if (c->transitioned && c->npending)
		return rfail(c, XSR_E_FORMAT, "END with %" PRIu64 " post-copy pages never sent", (uint64_t)c->npending);
	c->ended = true;
	return 0;
}

/* ---------------- post-copy ---------------- */

static void fault_batch(struct rcv *c, uint64_t *pfns, uint32_t *n)
{
	uint8_t buf[XSR_MIG_MAX_RREC];
	struct xsr_mig_pfns h = {.count = *n};

	if (!*n)
		return;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), pfns, (size_t)*n * 8);
	if (answer(c, XSR_MIG_R_FAULT, buf, sizeof(h) + (size_t)*n * 8) < 0)
		rlog(c, "post-copy: cannot send FAULT: %s", c->err);
	c->faults += *n;
	*n = 0;
}

static void *fault_thread(void *arg)
{
	struct rcv *c = arg;

	for (;;) {
		struct uffd_msg msgs[XSR_MIG_MAX_FAULT];
		uint64_t want[XSR_MIG_MAX_FAULT];
		uint32_t nwant = 0;
		int e, n = lazy_uffd_wait(c->uffd, c->wake[0], msgs, XSR_MIG_MAX_FAULT, &e);

		if (n < 0) {
			if (e)
				rlog(c, "post-copy: read userfaultfd: %s", strerror(e));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t a = msgs[i].arg.pagefault.address & ~(XSR_PAGE_SIZE - 1), pfn = 0;
			int64_t s = -1;

			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			for (uint32_t r = 0; r < c->nruns; r++) {
				uint64_t lo = (uintptr_t)c->base[r];
				if (a >= lo && a - lo < c->runs[r].count << XSR_PAGE_SHIFT) {
					pfn = c->runs[r].pfn + ((a - lo) >> XSR_PAGE_SHIFT);
					s = (int64_t)(c->slot0[r] + ((a - lo) >> XSR_PAGE_SHIFT));
				}
			}
			if (s < 0) {
				rlog(c, "post-copy: fault at 0x%" PRIx64 " outside guest memory", a);
				continue;
			}
			if (test_bit(c->pending, (uint64_t)s)) {
				if (!test_bit(c->asked, (uint64_t)s)) {
					c->asked[s / 64] |= UINT64_C(1) << (s % 64);
					want[nwant++] = pfn;
				}
				continue;
			}
			/* Never sent with data and not pending: a zero page.  EEXIST: it just arrived. */
			struct uffdio_zeropage z = {.range = {.start = a, .len = XSR_PAGE_SIZE}};
			if (ioctl(c->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno == EEXIST) {
				struct uffdio_range w = {.start = a, .len = XSR_PAGE_SIZE};
				ioctl(c->uffd, UFFDIO_WAKE, &w);
			}
		}
		fault_batch(c, want, &nwant);
	}
	return NULL;
}

static int start_postcopy(struct rcv *c)
{
	int e;

	if (mig_cut_here("badfault")) {
		/* Test hook: behave like a hostile receiver. */
		uint8_t buf[16];
		struct xsr_mig_pfns h = {.count = 1};
		uint64_t pfn = c->runs[c->nruns - 1].pfn + c->runs[c->nruns - 1].count + 12345;
		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), &pfn, 8);
		answer(c, XSR_MIG_R_FAULT, buf, sizeof(buf));
	}
	c->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (c->uffd < 0)
		return rfail(c, XSR_E_UNSUPPORTED, "post-copy: userfaultfd: %s%s", strerror(errno),
			     errno == EPERM ? " (needs root, or sysctl vm.unprivileged_userfaultfd=1)" : "");
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(c->uffd, UFFDIO_API, &api) < 0)
		return rfail(c, XSR_E_UNSUPPORTED, "post-copy: UFFDIO_API: %s", strerror(errno));
	for (uint32_t r = 0; r < c->nruns; r++) {
		struct uffdio_register reg = {
		    .range = {.start = (uintptr_t)c->base[r], .len = c->runs[r].count << XSR_PAGE_SHIFT},
		    .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(c->uffd, UFFDIO_REGISTER, &reg) < 0)
			return rfail(c, XSR_E_UNSUPPORTED, "post-copy: UFFDIO_REGISTER run %u: %s", r, strerror(errno));
	}
	if (pipe2(c->wake, O_CLOEXEC) < 0)
		return rfail(c, XSR_E_IO, "pipe: %s", strerror(errno));
	/* Drop the stale copies of the pending pages: the next touch must fault. */
	for (uint64_t s = 0; s < c->nslots; s++) {
		if (!test_bit(c->pending, s))
			continue;
		uint32_t r = 0;
		while (r + 1 < c->nruns && s >= c->slot0[r + 1])
			r++;
		if (madvise(c->base[r] + ((s - c->slot0[r]) << XSR_PAGE_SHIFT), XSR_PAGE_SIZE, MADV_REMOVE) < 0)
			return rfail(c, XSR_E_BACKEND, "post-copy: dropping a stale page: %s", strerror(errno));
	}
	if ((e = pthread_create(&c->tid, NULL, fault_thread, c)) != 0)
		return rfail(c, XSR_E_NOMEM, "post-copy: fault thread: %s", strerror(e));
	c->have_thread = true;
	c->transitioned = true;
	int rc = c->be->ops->start(c->be);
	if (rc < 0)
		return rfail(c, rc, "starting the domain: %s", c->be->ops->error(c->be));
	struct xsr_mig_ack a = {.pages = c->npending, .load_ns = util_now_ns() - c->t_transition};
	rlog(c, "post-copy: guest resumed with %" PRIu64 " pages missing", (uint64_t)c->npending);
	return answer(c, XSR_MIG_R_RESUMED, &a, sizeof(a));
}

static void stop_postcopy(struct rcv *c)
{
	if (c->uffd >= 0) {
		for (uint32_t r = 0; r < c->nruns && c->base && c->base[r]; r++) {
			struct uffdio_range rg = {.start = (uintptr_t)c->base[r], .len = c->runs[r].count << XSR_PAGE_SHIFT};
			ioctl(c->uffd, UFFDIO_UNREGISTER, &rg);
		}
	}
	if (c->have_thread) {
		(void)!write(c->wake[1], "x", 1);
		pthread_join(c->tid, NULL);
		c->have_thread = false;
	}
	if (c->uffd >= 0)
		close(c->uffd);
	c->uffd = -1;
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	c->wake[0] = c->wake[1] = -1;
}

/* ---------------- the receive loop ---------------- */

/* What a receive allocated, on every way out. */
static void rcv_free(struct rcv *c, struct xsr_stream *s)
{
	xsr_stream_close(s);
	free(c->vs);
	free(c->runs);
	free(c->slot0);
	free(c->base);
	free(c->pending);
	free(c->asked);
	free(c->last_config);
	pthread_mutex_destroy(&c->send_lock);
}

int migrate_receive(struct xsr_backend *be, int fd, const struct xsr_mig_recv_opts *o,
		    struct xsr_mig_recv_stats *st, char *err, size_t errlen)
{
	struct rcv c = {.be = be, .o = o, .st = st, .fd = fd, .err = err, .errlen = errlen,
			.uffd = -1, .wake = {-1, -1}};
	const struct xsr_stream_ops ops = {.header = on_header, .section = on_section, .pages = on_pages, .end = on_end};
	struct xsr_stream *s = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	err[0] = 0;
	pthread_mutex_init(&c.send_lock, NULL);
	c.vs = malloc(sizeof(*c.vs));
	if (!c.vs) {
		rc = rfail(&c, XSR_E_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = xsr_stream_open(&s, fd, err, errlen)) < 0)
		goto fail;
	if (be)
		xsr_stream_set_placement(s, page_dest, &c);
	for (;;) {
		uint64_t before = xsr_stream_offset(s);

		err[0] = 0;
		rc = xsr_stream_step(s, &ops, &c);
		if (rc < 0) {
			/* Our callbacks set err; the reader's own findings are in its message. */
			if (!err[0] || rc == XSR_E_TRUNCATED || rc == XSR_E_CHECKSUM)
				snprintf(err, errlen, "%s", xsr_stream_error(s));
			if (rc == XSR_E_TRUNCATED || rc == XSR_E_IO)
				snprintf(err + strlen(err), errlen - strlen(err), " (the sender went away)");
			goto fail;
		}
		if (c.postcopy && !c.transitioned)
			c.t_transition = util_now_ns();
		if (rc == 1)
			break;
		(void)before;
	}
	uint64_t tend = util_now_ns();
	if (c.transitioned) {
		stop_postcopy(&c);
		struct xsr_mig_ack a = {.pages = st->postcopy_pages, .faults = c.faults};
		st->faults = c.faults;
		rlog(&c, "post-copy complete: %" PRIu64 " pages, %" PRIu64 " faults", st->postcopy_pages, st->faults);
		if (mig_cut_here("latefault")) {
			/* Test hook: FAULTs that crossed the last pushed pages on the wire come before COMPLETE. */
			uint8_t buf[16];
			struct xsr_mig_pfns h = {.count = 1};
			memcpy(buf, &h, sizeof(h));
			memcpy(buf + sizeof(h), &c.runs[0].pfn, 8);
			for (int i = 0; i < 3; i++)
				answer(&c, XSR_MIG_R_FAULT, buf, sizeof(buf));
		}
		if ((rc = answer(&c, XSR_MIG_R_COMPLETE, &a, sizeof(a))) < 0)
			goto fail_quiet;
	} else if (be) {
		if ((rc = be->ops->start(be)) < 0) {
			rfail(&c, rc, "starting the domain: %s", be->ops->error(be));
			goto fail;
		}
	} else {
		if (c.last_config == NULL && 0)
			goto fail;
		rc = xsr_writer_close(c.w, err, errlen);
		c.w = NULL;
		if (rc < 0)
			goto fail;
		int e = xsr_fsync(o->out_fd);
		if (e < 0) {
			rc = rfail(&c, XSR_E_IO, "fsync: %s", strerror(-e));
			goto fail;
		}
		/* COMMIT promises the file is in place: rename it first. */
		char why[1024] = "";
		if (o->before_commit && (rc = o->before_commit(o->commit_ctx, why, sizeof(why))) < 0) {
			rfail(&c, rc, "storing the image failed%s%s", why[0] ? ": " : "", why);
			goto fail;
		}
	}
	st->load_ns = util_now_ns() - tend;
	die_at("end");
	struct xsr_mig_ack a = {.round = c.round, .pages = st->pages + st->zero_pages, .faults = c.faults,
				.load_ns = st->load_ns};
	if ((rc = answer(&c, XSR_MIG_R_COMMIT, &a, sizeof(a))) < 0)
		goto fail_quiet;
	/*
	 * The sender answers COMMIT with RELEASED once it has given its copy up.
	 * Without it (connection cut, sender gone) the sender may be resuming
	 * its own copy, so this one must not run on: discard it.
	 */
	{
		uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
		size_t blen;
		char e[256];
		int code = mig_recv(fd, 10000, body, &blen, e, sizeof(e));
		if (!be && o->after_release && (rc = o->after_release(o->commit_ctx, code == XSR_MIG_R_RELEASED)) < 0) {
			rfail(&c, rc, "after %s: the image could not be taken over",
			      code == XSR_MIG_R_RELEASED ? "RELEASED" : "a missing RELEASED");
			goto fail_quiet;
		}
		if (code != XSR_MIG_R_RELEASED && be) {
			rc = rfail(&c, XSR_E_PEER, "no RELEASED after COMMIT (%s): the source may run its copy; discarding this one",
				   code < 0 ? e : mig_rec_name((uint32_t)code));
			if (be)
				be->ops->pause(be);
			goto fail_quiet;
		}
	}
	rlog(&c, "committed: %" PRIu64 " pages (%" PRIu64 " zero), %" PRIu64 " rounds", st->pages, st->zero_pages, st->rounds);
	rcv_free(&c, s);
	return 0;
fail:
	tell_failure(&c, rc);
fail_quiet:
	rlog(&c, "failed: %s", err);
	stop_postcopy(&c);
	xsr_writer_abort(c.w);
	rcv_free(&c, s);
	return rc < 0 ? rc : XSR_E_PEER;
}
