/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend's restore half (backends/xen.h): the restore_domain op.
 * The image is exported as an xl save file and libxl reads it
 * (libxl_domain_create_restore, libxenguest's xc_domain_restore).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

#if defined(XSR_HAVE_XEN) && __has_include(<xenctrl.h>) && __has_include(<libxl.h>)

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxl.h>
#include <xenctrl.h>

#include <xsrelf/xen.h>
#include "xen_priv.h"

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
	t->done_ns = util_now_ns();
	close(t->wfd);
	t->wfd = -1;
	return NULL;
}

/*
 * The xl header, as xl restore reads it: magic, 4 words, optional data (u32
 * length + JSON), parsed into @dc.  *@json is the buffer (the caller frees).
 */
static int read_xl_config(libxl_ctx *ctx, int mfd, libxl_domain_config *dc, char **json, uint32_t *stream_version,
			  uint64_t t0, char *err, size_t errlen)
{
	uint8_t magic[32];
	uint32_t hdr[4];
	if (read_all(mfd, magic, 32) < 0 || memcmp(magic, XEN_XL_MAGIC, 32) || read_all(mfd, hdr, 16) < 0 ||
	    hdr[0] != XEN_XL_BYTEORDER || !(hdr[1] & XEN_XL_FLAG_JSON) || hdr[3] < 4 || hdr[3] > (16u << 20)) {
		snprintf(err, errlen, "the image holds no xl header with a JSON domain configuration");
		return -1;
	}
	uint8_t *opt = malloc(hdr[3] + 1);
	if (!opt || read_all(mfd, opt, hdr[3]) < 0) {
		free(opt);
		snprintf(err, errlen, "reading the xl header's configuration failed");
		return -1;
	}
	*json = (char *)opt;
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: xl header read +%.1f ms\n", (util_now_ns() - t0) / 1e6);
	uint32_t clen;
	memcpy(&clen, opt, 4);
	if (clen > hdr[3] - 4) {
		snprintf(err, errlen, "xl header: config length %u > optional data %u", clen, hdr[3] - 4);
		return -1;
	}
	opt[4 + clen] = 0;
	if (libxl_domain_config_from_json(ctx, dc, *json + 4) != 0) {
		snprintf(err, errlen, "the image's domain configuration is not libxl JSON");
		return -1;
	}
	*stream_version = hdr[1] & XEN_XL_FLAG_STREAMV2 ? 2 : 1;
	return 0;
}

int xen_restore_domain(int img_fd, const struct xsr_domain_restore_opts *o, struct xsr_domain_stats *st, char *err,
		       size_t errlen)
{
	libxl_ctx *ctx = NULL;
	libxl_domain_config dc;
	libxl_domain_restore_params params;
	int mfd = -1, rc = -1, threaded = 0, paused = o->paused;
	const char *name_suffix = o->name_suffix;
	void (*progress)(void *, uint64_t, uint64_t) = o->progress;
	void *pctx = o->pctx;
	uint32_t domid = (uint32_t)INVALID_DOMID;
	char *json = NULL;
	uint32_t stream_version = 1;
	uint64_t t0 = util_now_ns();
	const char *via = getenv("XSR_XEN_RESTORE_VIA");
	struct exp_thr t = {.img_fd = img_fd, .wfd = -1, .progress = progress, .pctx = pctx};
	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = 0;
	libxl_domain_config_init(&dc);
	libxl_domain_restore_params_init(&params);
	if (via && !strcmp(via, "memfd")) {
		if (!(ctx = xen_lx_ctx(err, errlen)))
			goto out;
		if ((mfd = memfd_create("xsr-xen-restore", MFD_CLOEXEC)) < 0) {
			snprintf(err, errlen, "memfd_create: %s", strerror(errno));
			goto out;
		}
		struct xsr_xen_export_opts eo = {.cb = {.progress = progress, .progress_ctx = pctx}};
		if (xsr_xen_export_fd(img_fd, mfd, &eo, NULL, err, errlen) < 0 || lseek(mfd, 0, SEEK_SET) != 0)
			goto out;
		st->transcode_ns = util_now_ns() - t0;
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
		if (!(ctx = xen_lx_ctx(err, errlen)))
			goto out;
	}
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: libxl context +%.1f ms\n", (util_now_ns() - t0) / 1e6);
	if (read_xl_config(ctx, mfd, &dc, &json, &stream_version, t0, err, errlen) < 0)
		goto out;
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
	params.stream_version = stream_version;
	uint64_t t1 = util_now_ns();
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: config parsed +%.1f ms\n", (t1 - t0) / 1e6);
	int crc = libxl_domain_create_restore(ctx, &dc, &domid, mfd, -1, &params, NULL, NULL);
	st->suspend_ns = util_now_ns() - t1; /* for a restore: libxl's own part */
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: libxl returned +%.1f ms, export done +%.1f ms\n",
			(util_now_ns() - t0) / 1e6, t.done_ns ? (t.done_ns - t0) / 1e6 : -1.0);
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
			libxl_domain_destroy(ctx, domid, NULL);
		goto out;
	}
	if (!paused && libxl_domain_unpause(ctx, domid, NULL) != 0) {
		snprintf(err, errlen, "domain %u restored but libxl_domain_unpause failed", domid);
		goto out;
	}
	st->domid = domid;
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: restore: unpaused +%.1f ms\n", (util_now_ns() - t0) / 1e6);
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
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}

#endif
