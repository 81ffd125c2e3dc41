/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend (see xen.h for the split between the core ops and the
 * libxl-driven save/restore, and docs/xen-rig.md for the measurements).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

int xsr_xen_target(const char *t, uint32_t *domid)
{
	if (!strncmp(t, "xen:", 4))
		t += 4;
	if (!*t || strlen(t) > 5)
		return 0;
	for (const char *p = t; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	unsigned long v = strtoul(t, NULL, 10);
	if (v >= 0x7ff0) /* DOMID_FIRST_RESERVED */
		return 0;
	*domid = (uint32_t)v;
	return 1;
}

#if defined(XSR_HAVE_XEN) && __has_include(<xenctrl.h>) && __has_include(<libxl.h>)

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>

#include "../cli/cli.h"
#include "../util/clock.h"
#include <xsrelf/xen.h>
#include "xen_priv.h"

int xsr_xen_supported(void) { return 1; }

/* ---------------- core backend ---------------- */

/* A batch handed out by map(): the foreign mapping, or a copy when some frames failed to map. */
struct xmap {
	void *addr;
	uint64_t count;
	int copied;
};

struct xen_be {
	struct xsr_backend be;
	uint32_t domid;
	xc_interface *xch;
	xenforeignmemory_handle *fmem;
	xc_dominfo_t info;
	unsigned width; /* guest width in octets (PV) */
	int hvm;
	struct xc_domain_meminfo minfo; /* PV: the guest's p2m, mapped */
	uint64_t nr_pfns;
	struct xsr_memrun run;
	xen_pfn_t *mfns;  /* batch scratch */
	int *errs;
	struct xmap maps[4];
	uint8_t *hvmctx;
	uint32_t hvmctx_len;
	struct xsr_xen_pv pv; /* 64-bit PV: the p2m as it was at describe() */
	uint64_t *pv_mfn;
	int paused;
	char err[512];
};

static int xfail(struct xen_be *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xfail(struct xen_be *x, const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	return e > 0 ? -e : -EIO;
}

static uint64_t p2m_get(const struct xen_be *x, uint64_t pfn)
{
	if (x->hvm)
		return pfn;
	if (x->width == 8)
		return ((const uint64_t *)x->minfo.p2m_table)[pfn];
	uint32_t m = ((const uint32_t *)x->minfo.p2m_table)[pfn];
	return m == UINT32_MAX ? UINT64_MAX : m;
}

/* A PV p2m entry that names no frame (never populated, or ballooned out). */
static int p2m_invalid(uint64_t mfn) { return mfn == UINT64_MAX || mfn == INVALID_MFN || mfn == 0xffffffffu; }

static int x_describe(struct xsr_backend *be, struct xsr_domain_info *out)
{
	struct xen_be *x = (struct xen_be *)be;
	int v = xc_version(x->xch, XENVER_version, NULL);
	xen_extraversion_t extra = "";
	xc_version(x->xch, XENVER_extraversion, &extra);
	memset(out, 0, sizeof(*out));
	out->nr_vcpus = x->info.max_vcpu_id + 1;
	out->nr_runs = 1;
	out->runs = &x->run;
	snprintf(out->hypervisor, sizeof(out->hypervisor), "xen");
	snprintf(out->hypervisor_version, sizeof(out->hypervisor_version), "%d.%d%.16s (xsr core, x86 %s%s)", v >> 16,
		 v & 0xffff, extra, x->hvm ? "HVM" : "PV ", x->hvm ? "" : x->width == 8 ? "64-bit" : "32-bit");
	/*
	 * A PV guest's page tables name machine frames: the writer lays the
	 * image out for crash from a copy of the p2m (the guest may change its
	 * own while the image is written; a frame it moves after this point is
	 * mapped where it was).
	 */
	if (!x->hvm && x->width == 8) {
		free(x->pv_mfn);
		if ((x->pv_mfn = malloc(x->nr_pfns * sizeof(*x->pv_mfn)))) {
			for (uint64_t p = 0; p < x->nr_pfns; p++) {
				uint64_t m = p2m_get(x, p);
				x->pv_mfn[p] = p2m_invalid(m) ? XSR_XEN_NO_MFN : m;
			}
			x->pv = (struct xsr_xen_pv){.xen_major = (uint32_t)v >> 16, .xen_minor = (uint32_t)v & 0xffff,
						    .nr_pfns = x->nr_pfns, .mfn = x->pv_mfn};
			out->xen_pv = &x->pv;
		}
	}
	return 0;
}

static int x_pause(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	if (!x->paused && xc_domain_pause(x->xch, x->domid) < 0)
		return xfail(x, "xc_domain_pause(%u): %s", x->domid, strerror(errno));
	x->paused = 1;
	return 0;
}

static int x_resume(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x->paused && xc_domain_unpause(x->xch, x->domid) < 0)
		return xfail(x, "xc_domain_unpause(%u): %s", x->domid, strerror(errno));
	x->paused = 0;
	return 0;
}

/*
 * One xenforeignmemory_map per batch (save/save.c asks for up to 1024
 * frames): one hypercall-backed ioctl instead of one per page, which is
 * where xl dump-core spends its time.  Frames that fail to map (no p2m
 * entry, I/O pages) would fault when read, so such a batch is copied with
 * those frames as zeros.
 */
static int x_map(struct xsr_backend *be, uint64_t pfn, uint64_t count, int writable, void **addr)
{
	struct xen_be *x = (struct xen_be *)be;
	struct xmap *slot = NULL;
	if (writable)
		return xfail(x, "the Xen core backend maps guest memory read-only");
	if (pfn > x->nr_pfns || x->nr_pfns - pfn < count || count > 1024)
		return xfail(x, "pfn 0x%llx+%llu outside the domain's 0x%llx frames", (unsigned long long)pfn,
			     (unsigned long long)count, (unsigned long long)x->nr_pfns);
	for (size_t i = 0; i < sizeof(x->maps) / sizeof(x->maps[0]); i++)
		if (!x->maps[i].addr)
			slot = &x->maps[i];
	if (!slot)
		return xfail(x, "too many batches mapped at once");
	int bad = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t m = p2m_get(x, pfn + i);
		x->mfns[i] = p2m_invalid(m) ? INVALID_MFN : (xen_pfn_t)m;
		x->errs[i] = 0;
	}
	void *p = xenforeignmemory_map(x->fmem, x->domid, PROT_READ, count, x->mfns, x->errs);
	if (!p)
		return xfail(x, "xenforeignmemory_map of %llu frames at pfn 0x%llx: %s", (unsigned long long)count,
			     (unsigned long long)pfn, strerror(errno));
	for (uint64_t i = 0; i < count; i++)
		bad |= x->errs[i] != 0;
	slot->count = count;
	slot->copied = bad;
	if (bad) {
		uint8_t *c = calloc(count, 4096);
		if (!c) {
			xenforeignmemory_unmap(x->fmem, p, count);
			return xfail(x, "out of memory");
		}
		for (uint64_t i = 0; i < count; i++)
			if (!x->errs[i])
				memcpy(c + i * 4096, (uint8_t *)p + i * 4096, 4096);
		xenforeignmemory_unmap(x->fmem, p, count);
		p = c;
	}
	slot->addr = p;
	*addr = p;
	return 0;
}

static void x_unmap(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count)
{
	struct xen_be *x = (struct xen_be *)be;
	for (size_t i = 0; i < sizeof(x->maps) / sizeof(x->maps[0]); i++) {
		struct xmap *m = &x->maps[i];
		if (m->addr != addr)
			continue;
		if (m->copied)
			free(addr);
		else
			xenforeignmemory_unmap(x->fmem, addr, m->count);
		m->addr = NULL;
		return;
	}
}

static int x_zero_hint(struct xsr_backend *be, uint64_t pfn, uint64_t count, uint8_t *zero)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x->hvm)
		return 0;
	for (uint64_t i = 0; i < count && pfn + i < x->nr_pfns; i++) {
		uint64_t m = p2m_get(x, pfn + i);
		unsigned t = x->minfo.pfn_type ? (unsigned)(x->minfo.pfn_type[pfn + i] >> XEN_PFN_TYPE_SHIFT) : 0;
		if (p2m_invalid(m) || t == XEN_PT_XTAB || t == XEN_PT_BROKEN)
			zero[i] = 1;
	}
	return 0;
}

/* cr3 holds a machine frame in a PV guest: the p2m, searched backwards, names its pfn. */
static int mfn_to_pfn(void *ctx, uint64_t mfn, uint64_t *pfn)
{
	struct xen_be *x = ctx;
	for (uint64_t p = 0; p < x->nr_pfns; p++)
		if (p2m_get(x, p) == mfn) {
			*pfn = p;
			return 0;
		}
	return -1;
}

static int x_get_vcpu(struct xsr_backend *be, uint32_t vcpu, struct xsr_vcpu_state *out)
{
	struct xen_be *x = (struct xen_be *)be;
	const char *why;
	memset(out, 0, sizeof(*out));
	out->r.vcpu_id = vcpu;
	if (x->hvm) {
		if (!x->hvmctx) {
			int len = xc_domain_hvm_getcontext(x->xch, x->domid, NULL, 0);
			if (len <= 0 || !(x->hvmctx = malloc((size_t)len)))
				return xfail(x, "HVM context size of domain %u: %s", x->domid, strerror(errno));
			len = xc_domain_hvm_getcontext(x->xch, x->domid, x->hvmctx, (uint32_t)len);
			if (len <= 0)
				return xfail(x, "xc_domain_hvm_getcontext(%u): %s", x->domid, strerror(errno));
			x->hvmctx_len = (uint32_t)len;
		}
		why = xsr_xen_hvm_vcpu(x->hvmctx, x->hvmctx_len, vcpu, out);
	} else {
		vcpu_guest_context_any_t c;
		if (xc_vcpu_getcontext(x->xch, x->domid, vcpu, &c) < 0)
			return xfail(x, "xc_vcpu_getcontext(%u, vCPU %u): %s", x->domid, vcpu, strerror(errno));
		if (x->width == 8)
			why = xsr_xen_pv_basic((const uint8_t *)&c.x64, sizeof(c.x64), 8, out, mfn_to_pfn, x);
		else
			why = xsr_xen_pv_basic((const uint8_t *)&c.x32, sizeof(c.x32), 4, out, NULL, NULL);
	}
	out->r.vcpu_id = vcpu;
	if (why) {
		errno = EINVAL;
		return xfail(x, "vCPU %u: %s", vcpu, why);
	}
	return 0;
}

/* The P2M section: which machine frame each pfn had (PV page tables name those). */
static int x_save_extra(struct xsr_backend *be, struct xsr_writer *w)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x->hvm)
		return 0;
	struct xsr_p2m_entry *e = malloc(x->nr_pfns * sizeof(*e));
	uint64_t n = 0;
	if (!e)
		return xfail(x, "out of memory");
	for (uint64_t p = 0; p < x->nr_pfns; p++) {
		uint64_t m = p2m_get(x, p);
		if (!p2m_invalid(m))
			e[n++] = (struct xsr_p2m_entry){p, m};
	}
	int rc = xsr_writer_add(w, XSR_SEC_P2M, 0, e, n * sizeof(*e));
	free(e);
	return rc < 0 ? rc : 0;
}

static int x_no_dirty(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	errno = ENOTSUP;
	return xfail(x, "no log-dirty in the Xen core backend: a core is taken paused (stop-and-copy)");
}
static int x_no_dirty_fetch(struct xsr_backend *be, uint64_t *bitmap, uint64_t nslots) { return x_no_dirty(be); }

static int x_no_restore(struct xen_be *x)
{
	errno = ENOTSUP;
	return xfail(x, "the Xen core backend does not build domains: restores go through libxenguest (xsr restore FILE)");
}
static int x_create(struct xsr_backend *be, const struct xsr_domain_info *info) { return x_no_restore((struct xen_be *)be); }
static int x_set_vcpu(struct xsr_backend *be, const struct xsr_vcpu_state *st) { return x_no_restore((struct xen_be *)be); }
static int x_load_extra(struct xsr_backend *be, uint32_t code, uint32_t info, const void *body, uint64_t len)
{
	return x_no_restore((struct xen_be *)be);
}
static int x_start(struct xsr_backend *be) { return x_no_restore((struct xen_be *)be); }

static const char *x_error(struct xsr_backend *be) { return ((struct xen_be *)be)->err; }

static void x_close(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	if (!x)
		return;
	x_resume(be); /* never leave the domain paused behind us */
	for (size_t i = 0; i < sizeof(x->maps) / sizeof(x->maps[0]); i++)
		if (x->maps[i].addr)
			x_unmap(be, x->maps[i].addr, 0, x->maps[i].count);
	free(x->pv_mfn);
	if (x->minfo.p2m_table)
		xc_unmap_domain_meminfo(x->xch, &x->minfo);
	if (x->fmem)
		xenforeignmemory_close(x->fmem);
	if (x->xch)
		xc_interface_close(x->xch);
	free(x->mfns);
	free(x->errs);
	free(x->hvmctx);
	free(x);
}

static const struct xsr_backend_ops xen_ops = {
	.name = "xen",
	.describe = x_describe,
	.pause = x_pause,
	.resume = x_resume,
	.map = x_map,
	.unmap = x_unmap,
	.zero_hint = x_zero_hint,
	.get_vcpu = x_get_vcpu,
	.save_extra = x_save_extra,
	.dirty_start = x_no_dirty,
	.dirty_fetch = x_no_dirty_fetch,
	.dirty_stop = x_no_dirty,
	.create = x_create,
	.set_vcpu = x_set_vcpu,
	.load_extra = x_load_extra,
	.start = x_start,
	.error = x_error,
	.close = x_close,
};

int xsr_xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen)
{
	struct xen_be *x = calloc(1, sizeof(*x));
	*out = NULL;
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->be.ops = &xen_ops;
	x->domid = domid;
	if (!(x->xch = xc_interface_open(NULL, NULL, 0))) {
		snprintf(err, errlen, "xc_interface_open: %s (is this dom0, with /dev/xen/privcmd?)", strerror(errno));
		goto fail;
	}
	if (!(x->fmem = xenforeignmemory_open(NULL, 0))) {
		snprintf(err, errlen, "xenforeignmemory_open: %s", strerror(errno));
		goto fail;
	}
	if (xc_domain_getinfo(x->xch, domid, 1, &x->info) != 1 || x->info.domid != domid) {
		snprintf(err, errlen, "no domain %u", domid);
		goto fail;
	}
	x->hvm = x->info.hvm;
	if (x->hvm) {
		xen_pfn_t max = 0;
		if (xc_domain_maximum_gpfn(x->xch, domid, &max) < 0) {
			snprintf(err, errlen, "xc_domain_maximum_gpfn(%u): %s", domid, strerror(errno));
			goto fail;
		}
		x->nr_pfns = (uint64_t)max + 1;
	} else {
		if (xc_domain_get_guest_width(x->xch, domid, &x->width) < 0) {
			snprintf(err, errlen, "xc_domain_get_guest_width(%u): %s", domid, strerror(errno));
			goto fail;
		}
		/* libxenguest maps the guest's own p2m (frame list list in shared_info). */
		if (xc_map_domain_meminfo(x->xch, domid, &x->minfo) < 0) {
			snprintf(err, errlen, "xc_map_domain_meminfo(%u): %s", domid, strerror(errno));
			goto fail;
		}
		x->nr_pfns = x->minfo.p2m_size;
	}
	x->run = (struct xsr_memrun){.pfn = 0, .count = x->nr_pfns};
	x->mfns = calloc(1024, sizeof(*x->mfns));
	x->errs = calloc(1024, sizeof(*x->errs));
	if (!x->mfns || !x->errs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*out = &x->be;
	return 0;
fail:
	x_close(&x->be);
	return -EIO;
}

/* ---------------- save / restore through libxl ---------------- */

struct lx {
	libxl_ctx *ctx;
	xentoollog_logger_stdiostream *log;
};

/*
 * One libxl context per process, made at the first use and freed at exit: a
 * save opens it for the suspend and again for the destroy, and each
 * libxl_ctx_alloc talks to xenstore (dear in the TCG rig's dom0).  Only the
 * calling thread uses it (the transcoding threads never call libxl).
 */
static struct lx lx_cached;

static void lx_free_cached(void)
{
	if (lx_cached.ctx)
		libxl_ctx_free(lx_cached.ctx);
	if (lx_cached.log)
		xtl_logger_destroy((xentoollog_logger *)lx_cached.log);
	lx_cached = (struct lx){0};
}

static int lx_open(struct lx *l, char *err, size_t errlen)
{
	if (!lx_cached.ctx) {
		lx_cached.log = xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
		if (libxl_ctx_alloc(&lx_cached.ctx, LIBXL_VERSION, 0, (xentoollog_logger *)lx_cached.log) < 0) {
			snprintf(err, errlen, "libxl_ctx_alloc failed (is this dom0 with xenstored running?)");
			lx_free_cached();
			return -1;
		}
		atexit(lx_free_cached);
	}
	*l = lx_cached;
	return 0;
}

static void lx_close(struct lx *l) { (void)l; /* the context stays for the next call; freed at exit */ }

libxl_ctx *xsr_xen_libxl(char *err, size_t errlen)
{
	struct lx l;
	return lx_open(&l, err, errlen) < 0 ? NULL : l.ctx;
}

int xsr_xen_xl_header(libxl_ctx *ctx, uint32_t domid, int fd, char *err, size_t errlen)
{
	libxl_domain_config dc;
	char *json = NULL;
	int rc = -1;
	libxl_domain_config_init(&dc);
	if (libxl_retrieve_domain_configuration(ctx, domid, &dc, NULL) != 0 ||
	    !(json = libxl_domain_config_to_json(ctx, &dc))) {
		snprintf(err, errlen, "domain %u: cannot read its libxl configuration (not a domain libxl knows?)", domid);
		goto out;
	}
	uint32_t clen = (uint32_t)strlen(json) + 1;
	uint32_t hdr[4] = {XEN_XL_BYTEORDER, XEN_XL_FLAG_STREAMV2 | XEN_XL_FLAG_JSON, 0, clen + 4};
	struct iovec xlh[4] = {{(void *)XEN_XL_MAGIC, 32}, {hdr, sizeof(hdr)}, {&clen, 4}, {json, clen}};
	if (xsr_writev_all(fd, xlh, 4) < 0) {
		snprintf(err, errlen, "writing the xl header: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(json);
	libxl_domain_config_dispose(&dc);
	return rc;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * libxl suspends @domid into a new memfd (xl header first).  @ready, if not
 * NULL, is called with the memfd and the domain's vCPU count once the header
 * is in and before libxl starts writing; its < 0 aborts.
 */
static int suspend_into(uint32_t domid, int live, int (*ready)(void *ctx, int mfd, uint32_t vcpus), void *rctx,
			struct xsr_xen_stats *st, char *err, size_t errlen)
{
	struct lx l;
	int mfd = -1, ok = 0;
	uint64_t t0 = xsr_now_ns();
	memset(st, 0, sizeof(*st));
	if (lx_open(&l, err, errlen) < 0)
		return -1;
	/*
	 * The import reads its input twice (check, then write): the libxc
	 * stream goes to an anonymous memory file, never to the file system.
	 */
	mfd = memfd_create("xsr-xen-save", MFD_CLOEXEC);
	if (mfd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		goto out;
	}
	if (xsr_xen_xl_header(l.ctx, domid, mfd, err, errlen) < 0)
		goto out;
	if (ready) {
		libxl_dominfo di;
		libxl_dominfo_init(&di);
		uint32_t nv = libxl_domain_info(l.ctx, &di, domid) == 0 ? di.vcpu_max_id + 1 : 0;
		libxl_dominfo_dispose(&di);
		if (ready(rctx, mfd, nv) < 0) {
			snprintf(err, errlen, "cannot start the transcoding thread");
			goto out;
		}
	}
	if (libxl_domain_suspend(l.ctx, domid, mfd, live ? LIBXL_SUSPEND_LIVE : 0, NULL) != 0) {
		snprintf(err, errlen, "libxl_domain_suspend(%u) failed (see the libxl messages above)", domid);
		/* it may have got as far as suspending: resume either way */
		libxl_domain_resume(l.ctx, domid, 1, NULL);
		goto out;
	}
	ok = 1;
	st->suspend_ns = xsr_now_ns() - t0;
out:
	if (!ok && mfd >= 0) {
		close(mfd);
		mfd = -1;
	}
	lx_close(&l);
	return mfd;
}

int xsr_xen_suspend(uint32_t domid, int live, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	return suspend_into(domid, live, NULL, NULL, st, err, errlen);
}

/*
 * The save's transcode runs on a thread that follows libxl's memfd as it
 * grows (xsr_xen_import_opts.follow_done), so that it overlaps the suspend.
 */
struct follower {
	pthread_t tid;
	int started, out, mfd, rc, overlapped;
	uint32_t vcpus;
	atomic_int done;
	char err[1024];
};

/* The importer's XSR_XEN_TIMING notes ("timing: ..."), printed as before the library had them. */
static void timing_note(void *ctx, const char *msg)
{
	fprintf(stderr, "xsr %s\n", msg);
}

static void *follow_main(void *arg)
{
	struct follower *f = arg;
	struct xsr_xen_import_opts o = {.cb = {.note = timing_note}, .follow_done = &f->done, .vcpus_hint = f->vcpus};
	struct xsr_xen_import_stats st;
	f->rc = xsr_xen_import_fd(f->mfd, f->out, &o, &st, f->err, sizeof(f->err));
	f->overlapped = st.overlapped;
	return NULL;
}

static int follow_start(void *ctx, int mfd, uint32_t vcpus)
{
	struct follower *f = ctx;
	f->mfd = mfd;
	f->vcpus = vcpus;
	if (pthread_create(&f->tid, NULL, follow_main, f) != 0)
		return -1;
	f->started = 1;
	return 0;
}

int xsr_xen_save(uint32_t domid, int out_fd, int stream, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	uint64_t t0 = xsr_now_ns();
	int rc, mfd;
	const char *via = getenv("XSR_XEN_SAVE_VIA");
	/* 64-bit PV: the native save (backends/xen_save.c); "libxl" keeps libxl's engine, for comparison */
	if (!via || strcmp(via, "libxl")) {
		rc = xsr_xen_save_native(domid, out_fd, stream, st, err, errlen);
		if (rc != 1)
			return rc;
	}
	/* A stream cannot be started again if the stream turns out off the plan: transcode at the end. */
	if (!stream && !getenv("XSR_XEN_SAVE_NO_OVERLAP")) {
		struct follower f = {.out = out_fd};
		mfd = suspend_into(domid, 0, follow_start, &f, st, err, errlen);
		if (getenv("XSR_XEN_TIMING"))
			fprintf(stderr, "xsr timing: libxl suspend returned %.1f ms\n", xsr_now_ns() / 1e6);
		atomic_store(&f.done, 1);
		if (f.started)
			pthread_join(f.tid, NULL);
		if (mfd < 0)
			return -1; /* the domain was resumed */
		close(mfd);
		rc = f.started ? f.rc : -1;
		if (rc < 0)
			snprintf(err, errlen, "%s", f.started ? f.err : "the transcoding thread did not start");
		st->overlapped = f.overlapped;
		st->transcode_ns = xsr_now_ns() - t0 - st->suspend_ns; /* what was left after libxl's part */
	} else {
		mfd = suspend_into(domid, 0, NULL, NULL, st, err, errlen);
		if (mfd < 0)
			return -1;
		uint64_t t1 = xsr_now_ns();
		struct xsr_xen_import_opts io = {.layout = stream ? XSR_LAYOUT_STREAM : 0};
		rc = xsr_xen_import_fd(mfd, out_fd, &io, NULL, err, errlen);
		close(mfd);
		st->transcode_ns = xsr_now_ns() - t1;
	}
	if (rc < 0) {
		char e2[256];
		xsr_xen_save_finish(domid, 0, e2, sizeof(e2));
	} else {
		struct stat sb;
		if (fstat(out_fd, &sb) == 0)
			st->bytes = (uint64_t)sb.st_size;
	}
	st->elapsed_ns = xsr_now_ns() - t0;
	return rc;
}

int xsr_xen_logdirty(uint32_t domid, char *why, size_t whylen)
{
	xc_interface *xch = xc_interface_open(NULL, NULL, 0);
	if (!xch) {
		snprintf(why, whylen, "xc_interface_open: %s", strerror(errno));
		return -1;
	}
	int r = xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0);
	int e = errno;
	if (r == 0) {
		xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
		snprintf(why, whylen, "log-dirty available");
	} else {
		snprintf(why, whylen, "XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY on domain %u: %s", domid, strerror(e));
	}
	xc_interface_close(xch);
	return r == 0;
}

/* Rename domain @domid: append @add ("" for none) after stripping @strip from its end. */
int xsr_xen_rename(uint32_t domid, const char *strip, const char *add, char *err, size_t errlen)
{
	struct lx l;
	int rc = -1;
	if (lx_open(&l, err, errlen) < 0)
		return -1;
	char *old = libxl_domid_to_name(l.ctx, domid), *nn = NULL;
	if (!old) {
		snprintf(err, errlen, "domain %u has no name (gone?)", domid);
		goto out;
	}
	size_t n = strlen(old), sl = strlen(strip);
	if (sl && n >= sl && !strcmp(old + n - sl, strip))
		n -= sl;
	if (asprintf(&nn, "%.*s%s", (int)n, old, add) < 0) {
		nn = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (libxl_domain_rename(l.ctx, domid, old, nn) != 0) {
		snprintf(err, errlen, "renaming domain %u from %s to %s failed", domid, old, nn);
		goto out;
	}
	rc = 0;
out:
	free(old);
	free(nn);
	lx_close(&l);
	return rc;
}

int xsr_xen_unpause(uint32_t domid, char *err, size_t errlen)
{
	struct lx l;
	if (lx_open(&l, err, errlen) < 0)
		return -1;
	int rc = libxl_domain_unpause(l.ctx, domid, NULL);
	if (rc != 0)
		snprintf(err, errlen, "libxl_domain_unpause(%u) failed", domid);
	lx_close(&l);
	return rc != 0 ? -1 : 0;
}

int xsr_xen_save_finish(uint32_t domid, int committed, char *err, size_t errlen)
{
	struct lx l;
	int rc;
	if (lx_open(&l, err, errlen) < 0)
		return -1;
	rc = committed ? libxl_domain_destroy(l.ctx, domid, NULL) : libxl_domain_resume(l.ctx, domid, 1, NULL);
	xsr_xen_save_reap(); /* the native save's unmapping ran alongside */
	if (rc != 0)
		snprintf(err, errlen, "%s domain %u failed", committed ? "destroying" : "resuming", domid);
	lx_close(&l);
	return rc != 0 ? -1 : 0;
}

/*
 * Restore: the image is exported as an xl save file and libxl reads it.  Two
 * ways, chosen by XSR_XEN_RESTORE_VIA (docs/xen-rig.md has the measurements):
 *  - "pipe" (default): a thread exports into a pipe (8 MiB) while libxl
 *    reads it, so the export overlaps libxl's restore;
 *  - "memfd": export into an anonymous memory file first, then libxl.
 * A failed export shows up to libxl as a short stream; the export's own
 * message is the one reported.
 */
struct exp_thr {
	pthread_t tid;
	int img_fd, wfd, rc;
	void (*progress)(void *, uint64_t, uint64_t);
	void *pctx;
	uint64_t done_ns;
	char err[512];
};

static void *exp_main(void *arg)
{
	struct exp_thr *t = arg;
	struct xsr_xen_export_opts o = {.cb = {.progress = t->progress, .progress_ctx = t->pctx}};
	struct xsr_xen_export_stats st;
	t->rc = xsr_xen_export_fd(t->img_fd, t->wfd, &o, &st, t->err, sizeof(t->err));
	if (t->rc < 0 && st.epipe)
		t->rc = -EPIPE; /* libxl stopped reading: its failure is the one to tell */
	t->done_ns = xsr_now_ns();
	close(t->wfd);
	t->wfd = -1;
	return NULL;
}

int xsr_xen_restore(int img_fd, int paused, const char *name_suffix, void (*progress)(void *, uint64_t, uint64_t),
		    void *pctx, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	struct lx l = {0};
	libxl_domain_config dc;
	libxl_domain_restore_params params;
	int mfd = -1, rc = -1, threaded = 0;
	uint32_t domid = (uint32_t)INVALID_DOMID;
	char *json = NULL;
	uint64_t t0 = xsr_now_ns();
	const char *via = getenv("XSR_XEN_RESTORE_VIA");
	struct exp_thr t = {.img_fd = img_fd, .wfd = -1, .progress = progress, .pctx = pctx};
	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = 0;
	libxl_domain_config_init(&dc);
	libxl_domain_restore_params_init(&params);
	if (via && !strcmp(via, "memfd")) {
		if (lx_open(&l, err, errlen) < 0)
			goto out;
		if ((mfd = memfd_create("xsr-xen-restore", MFD_CLOEXEC)) < 0) {
			snprintf(err, errlen, "memfd_create: %s", strerror(errno));
			goto out;
		}
		struct xsr_xen_export_opts eo = {.cb = {.progress = progress, .progress_ctx = pctx}};
		if (xsr_xen_export_fd(img_fd, mfd, &eo, NULL, err, errlen) < 0 || lseek(mfd, 0, SEEK_SET) != 0)
			goto out;
		st->transcode_ns = xsr_now_ns() - t0;
	} else {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			goto out;
		}
		/*
		 * A pipe that holds a small guest's whole stream lets the export (and
		 * its checking of every page) finish early, away from libxl's busiest
		 * part: rig, 6 interleaved rounds, 0.62 s against 0.645 s with 8 MiB.
		 * Spliced pages are references to the image's page cache, not copies.
		 * Best effort, smaller sizes if refused (the limits are for non-root).
		 */
		for (int mb = 128; mb >= 1 && fcntl(p[1], F_SETPIPE_SZ, mb << 20) < 0; mb /= 2)
			;
		if (getenv("XSR_XEN_TIMING"))
			fprintf(stderr, "xsr timing: restore: pipe of %d octets\n", fcntl(p[1], F_GETPIPE_SZ));
		mfd = p[0];
		t.wfd = p[1];
		/* libxl may stop reading early: the export then gets EPIPE, not a signal */
		signal(SIGPIPE, SIG_IGN);
		if (pthread_create(&t.tid, NULL, exp_main, &t) != 0) {
			close(t.wfd);
			snprintf(err, errlen, "cannot start the export thread");
			goto out;
		}
		threaded = 1;
		/* libxl_ctx_alloc talks to xenstore (tens of ms in the rig's dom0): meanwhile the export fills the pipe */
		if (lx_open(&l, err, errlen) < 0)
			goto out;
	}
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: libxl context +%.1f ms\n", (xsr_now_ns() - t0) / 1e6);
	/* The xl header, as xl restore reads it: magic, 4 words, optional data (u32 length + JSON). */
	uint8_t magic[32];
	uint32_t hdr[4];
	if (read_all(mfd, magic, 32) < 0 || memcmp(magic, XEN_XL_MAGIC, 32) || read_all(mfd, hdr, 16) < 0 ||
	    hdr[0] != XEN_XL_BYTEORDER || !(hdr[1] & XEN_XL_FLAG_JSON) || hdr[3] < 4 || hdr[3] > (16u << 20)) {
		snprintf(err, errlen, "the image holds no xl header with a JSON domain configuration");
		goto out;
	}
	uint8_t *opt = malloc(hdr[3] + 1);
	if (!opt || read_all(mfd, opt, hdr[3]) < 0) {
		free(opt);
		snprintf(err, errlen, "reading the xl header's configuration failed");
		goto out;
	}
	json = (char *)opt;
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: xl header read +%.1f ms\n", (xsr_now_ns() - t0) / 1e6);
	uint32_t clen;
	memcpy(&clen, opt, 4);
	if (clen > hdr[3] - 4) {
		snprintf(err, errlen, "xl header: config length %u > optional data %u", clen, hdr[3] - 4);
		goto out;
	}
	opt[4 + clen] = 0;
	if (libxl_domain_config_from_json(l.ctx, &dc, json + 4) != 0) {
		snprintf(err, errlen, "the image's domain configuration is not libxl JSON");
		goto out;
	}
	if (name_suffix && *name_suffix) {
		char *nn = NULL;
		if (asprintf(&nn, "%s%s", dc.c_info.name ? dc.c_info.name : "xsr", name_suffix) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		free(dc.c_info.name);
		dc.c_info.name = nn;
	}
	params.checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
	params.stream_version = hdr[1] & XEN_XL_FLAG_STREAMV2 ? 2 : 1;
	uint64_t t1 = xsr_now_ns();
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: config parsed +%.1f ms\n", (t1 - t0) / 1e6);
	int crc = libxl_domain_create_restore(l.ctx, &dc, &domid, mfd, -1, &params, NULL, NULL);
	st->suspend_ns = xsr_now_ns() - t1; /* for a restore: libxl's own part */
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: libxl returned +%.1f ms, export done +%.1f ms\n",
			(xsr_now_ns() - t0) / 1e6, t.done_ns ? (t.done_ns - t0) / 1e6 : -1.0);
	if (threaded) {
		close(mfd); /* unblocks the export if libxl stopped reading */
		mfd = -1;
		pthread_join(t.tid, NULL);
		threaded = 0;
	}
	if (crc != 0 || t.rc < 0) {
		/* EPIPE: libxl stopped reading, and its failure is the one to tell */
		if (t.rc < 0 && (t.rc != -EPIPE || crc == 0))
			snprintf(err, errlen, "exporting the image for libxl: %s", t.err);
		else
			snprintf(err, errlen, "libxl_domain_create_restore failed (see the libxl messages above)");
		if (domid != (uint32_t)INVALID_DOMID)
			libxl_domain_destroy(l.ctx, domid, NULL);
		goto out;
	}
	if (!paused && libxl_domain_unpause(l.ctx, domid, NULL) != 0) {
		snprintf(err, errlen, "domain %u restored but libxl_domain_unpause failed", domid);
		goto out;
	}
	st->domid = domid;
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: unpaused +%.1f ms\n", (xsr_now_ns() - t0) / 1e6);
	struct stat sb;
	if (fstat(img_fd, &sb) == 0)
		st->bytes = (uint64_t)sb.st_size;
	rc = 0;
out:
	if (mfd >= 0)
		close(mfd);
	if (threaded) {
		/* the read end is closed: an export still writing gets EPIPE and ends */
		pthread_join(t.tid, NULL);
		if (t.rc < 0 && (t.rc != -EPIPE || !errlen || !err[0]))
			snprintf(err, errlen, "exporting the image for libxl: %s", t.err);
	}
	free(json);
	libxl_domain_restore_params_dispose(&params);
	libxl_domain_config_dispose(&dc);
	lx_close(&l);
	st->elapsed_ns = xsr_now_ns() - t0;
	return rc;
}

#else /* built without Xen */

#define NO_XEN "this xsr was built without Xen support (needs libxen-dev: xenctrl.h, libxl.h and pkg-config's xencontrol)"

int xsr_xen_supported(void) { return 0; }

int xsr_xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen, "%s", NO_XEN);
	return -ENOTSUP;
}

int xsr_xen_save(uint32_t domid, int out_fd, int stream, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_save_finish(uint32_t domid, int committed, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_restore(int img_fd, int paused, const char *name_suffix, void (*progress)(void *, uint64_t, uint64_t),
		    void *pctx, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_suspend(uint32_t domid, int live, struct xsr_xen_stats *st, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_save_native_opts(uint32_t domid, int out_fd, const struct xsr_xen_import_opts *io, struct xsr_xen_stats *st,
			     char *err, size_t errlen)
{
	return 1; /* not handled here: xsr_xen_suspend says why */
}

void xsr_xen_save_catch_signals(void) {}

int xsr_xen_save_stop_signal(void)
{
	return 0;
}

int xsr_xen_logdirty(uint32_t domid, char *why, size_t whylen)
{
	snprintf(why, whylen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_rename(uint32_t domid, const char *strip, const char *add, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

int xsr_xen_unpause(uint32_t domid, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", NO_XEN);
	return -1;
}

#endif
