/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend's domain access and its ops (xen.h says how Xen is split:
 * this file calls the save half, xen_save.c, the restore half,
 * xen_restore.c, and the libxl glue, xen_libxl.c; none of them calls it).
 * docs/xen-rig.md has the measurements.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

int xen_target(const char *t, uint32_t *domid)
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

#include <xsrelf/xen.h>
#include "xen_priv.h"

int xen_supported(void) { return 1; }

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
	int have_memory; /* x_memory() ran */
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

/*
 * The guest's memory layout, found at the first op that needs it rather than
 * at open: a whole-domain save (save_domain) maps the p2m itself, after the
 * suspend, and never needs this one.
 */
static int x_memory(struct xen_be *x)
{
	if (x->have_memory)
		return 0;
	if (x->hvm) {
		xen_pfn_t max = 0;
		if (xc_domain_maximum_gpfn(x->xch, x->domid, &max) < 0)
			return xfail(x, "xc_domain_maximum_gpfn(%u): %s", x->domid, strerror(errno));
		x->nr_pfns = (uint64_t)max + 1;
	} else {
		/* libxenguest maps the guest's own p2m (frame list list in shared_info). */
		if (xc_map_domain_meminfo(x->xch, x->domid, &x->minfo) < 0)
			return xfail(x, "xc_map_domain_meminfo(%u): %s", x->domid, strerror(errno));
		x->nr_pfns = x->minfo.p2m_size;
	}
	x->run = (struct xsr_memrun){.pfn = 0, .count = x->nr_pfns};
	x->have_memory = 1;
	return 0;
}

static int x_describe(struct xsr_backend *be, struct xsr_domain_info *out)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x_memory(x) < 0)
		return -EIO;
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
	if (x_memory(x) < 0)
		return -EIO;
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
	if (x_memory(x) < 0)
		return -EIO;
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
	if (x_memory(x) < 0)
		return -EIO;
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

static const char *x_error(struct xsr_backend *be) { return ((struct xen_be *)be)->err; }

static const struct xsr_backend_ops xen_ops;

static void x_close(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	if (!x)
		return;
	if (x->be.ops == &xen_ops)
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

/* ---- the whole-domain hooks: the save half (xen_save.c), the restore half (xen_restore.c) ---- */

static int x_save_domain(struct xsr_backend *be, int out_fd, const struct xsr_domain_save_opts *o,
			 struct xsr_domain_stats *st)
{
	struct xen_be *x = (struct xen_be *)be;
	return xen_save_domain(x->domid, out_fd, o, st, x->err, sizeof(x->err));
}

/* Log-dirty, probed: enabled, then off again. */
static int x_live_probe(struct xsr_backend *be, char *why, size_t whylen)
{
	struct xen_be *x = (struct xen_be *)be;
	int r = xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0);
	int e = errno;
	if (r == 0) {
		xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
		snprintf(why, whylen, "log-dirty available");
	} else {
		snprintf(why, whylen, "XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY on domain %u: %s", x->domid, strerror(e));
	}
	return r == 0;
}

static int x_finish(struct xsr_backend *be, int destroy)
{
	struct xen_be *x = (struct xen_be *)be;
	return xen_save_finish(x->domid, destroy, x->err, sizeof(x->err));
}

static int x_rename(struct xsr_backend *be, const char *strip, const char *add)
{
	struct xen_be *x = (struct xen_be *)be;
	return xen_lx_rename(x->domid, strip, add, x->err, sizeof(x->err));
}

static int x_restore_domain(struct xsr_backend *be, int img_fd, const struct xsr_domain_restore_opts *o,
			    struct xsr_domain_stats *st)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x->domid != (uint32_t)INVALID_DOMID) {
		errno = EBUSY;
		return xfail(x, "this Xen restore backend holds domain %u already", x->domid);
	}
	int rc = xen_restore_domain(img_fd, o, st, x->err, sizeof(x->err));
	if (rc == 0)
		x->domid = st->domid;
	return rc;
}

/* The restore half's resume: libxl unpauses the domain it restored paused. */
static int x_unpause(struct xsr_backend *be)
{
	struct xen_be *x = (struct xen_be *)be;
	return xen_lx_unpause(x->domid, x->err, sizeof(x->err));
}

/* The domain's own xenstore subtree (xen_store.c). */
static int x_xenstore_read(struct xsr_backend *be, void **body, uint64_t *len)
{
	struct xen_be *x = (struct xen_be *)be;
	return xen_xs_read(x->domid, body, len, x->err, sizeof(x->err));
}

static int x_xenstore_write(struct xsr_backend *be, const void *body, uint64_t len, struct xsr_xenstore_stats *st)
{
	struct xen_be *x = (struct xen_be *)be;
	if (x->domid == (uint32_t)INVALID_DOMID)
		return xfail(x, "no domain restored yet to write xenstore keys under");
	return xen_xs_write(x->domid, body, len, st, x->err, sizeof(x->err));
}

/* A domain: its memory and vCPUs (no dirty log, no page-by-page restore), and the whole-domain save. */
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
	.save_domain = x_save_domain,
	.live_probe = x_live_probe,
	.finish = x_finish,
	.rename = x_rename,
	.xenstore_read = x_xenstore_read,
	.error = x_error,
	.close = x_close,
};

/* The restore half: no domain until restore_domain made one. */
static const struct xsr_backend_ops xen_restore_ops = {
	.name = "xen",
	.resume = x_unpause,
	.restore_domain = x_restore_domain,
	.finish = x_finish,
	.rename = x_rename,
	.xenstore_write = x_xenstore_write,
	.error = x_error,
	.close = x_close,
};

int xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen)
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
	if (!x->hvm && xc_domain_get_guest_width(x->xch, domid, &x->width) < 0) {
		snprintf(err, errlen, "xc_domain_get_guest_width(%u): %s", domid, strerror(errno));
		goto fail;
	}
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

int xen_open_restore(struct xsr_backend **out, char *err, size_t errlen)
{
	struct xen_be *x = calloc(1, sizeof(*x));
	*out = NULL;
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->be.ops = &xen_restore_ops;
	x->domid = (uint32_t)INVALID_DOMID;
	*out = &x->be;
	return 0;
}

#else /* built without Xen */

#define NO_XEN "this xsr was built without Xen support (needs libxen-dev: xenctrl.h, libxl.h and pkg-config's xencontrol)"

int xen_supported(void) { return 0; }

int xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen, "%s", NO_XEN);
	return -ENOTSUP;
}

int xen_open_restore(struct xsr_backend **out, char *err, size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen, "%s", NO_XEN);
	return -ENOTSUP;
}

#endif
