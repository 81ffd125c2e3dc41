/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend's libxl glue (backends/xen.h says how Xen is split): the
 * process's libxl context, the xl save file's header, libxl's suspend into a
 * memory file, and the domain-wide steps both halves end with (resume,
 * destroy, rename, unpause).  It calls nothing else of the backend: the
 * save half (xen_save.c) and the restore half (xen_restore.c) call it, and
 * xen.c calls all three.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

#if defined(XSR_HAVE_XEN) && __has_include(<xenctrl.h>) && __has_include(<libxl.h>)

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>

#include <xsrelf/io.h>

#include <xsrelf/xen.h>
#include "xen_priv.h"

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

libxl_ctx *xen_lx_ctx(char *err, size_t errlen)
{
	struct lx l;
	return lx_open(&l, err, errlen) < 0 ? NULL : l.ctx;
}

int xen_lx_xl_header(libxl_ctx *ctx, uint32_t domid, int fd, char *err, size_t errlen)
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
	int wr = xsr_write_all(fd, xlh, 4);
	if (wr < 0) {
		snprintf(err, errlen, "writing the xl header: %s", strerror(-wr));
		goto out;
	}
	rc = 0;
out:
	free(json);
	libxl_domain_config_dispose(&dc);
	return rc;
}

/*
 * libxl suspends @domid into a new memfd (xl header first).  @ready, if not
 * NULL, is called with the memfd and the domain's vCPU count once the header
 * is in and before libxl starts writing; its < 0 aborts.
 */
int xen_lx_suspend(uint32_t domid, int live, int (*ready)(void *ctx, int mfd, uint32_t vcpus), void *rctx,
		   struct xsr_domain_stats *st, char *err, size_t errlen)
{
	struct lx l;
	int mfd = -1, ok = 0;
	uint64_t t0 = util_now_ns();
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
	if (xen_lx_xl_header(l.ctx, domid, mfd, err, errlen) < 0)
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
	st->suspend_ns = util_now_ns() - t0;
out:
	if (!ok && mfd >= 0) {
		close(mfd);
		mfd = -1;
	}
	lx_close(&l);
	return mfd;
}

/* Rename domain @domid: append @add ("" for none) after stripping @strip from its end. */
int xen_lx_rename(uint32_t domid, const char *strip, const char *add, char *err, size_t errlen)
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

int xen_lx_unpause(uint32_t domid, char *err, size_t errlen)
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

int xen_lx_finish(uint32_t domid, int destroy, char *err, size_t errlen)
{
	struct lx l;
	int rc;
	if (lx_open(&l, err, errlen) < 0)
		return -1;
	rc = destroy ? libxl_domain_destroy(l.ctx, domid, NULL) : libxl_domain_resume(l.ctx, domid, 1, NULL);
	if (rc != 0)
		snprintf(err, errlen, "%s domain %u failed", destroy ? "destroying" : "resuming", domid);
	lx_close(&l);
	return rc != 0 ? -1 : 0;
}

#endif
