/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sending side of a migration of a Xen domain (run in dom0 by
 * `xsr migrate DOMID tcp:HOST:PORT`).
 *
 * libxl suspends the domain into an anonymous memory file (libxenguest's
 * save: PV page tables normalised to pfns, the p2m and vCPU contexts in
 * Xen's records; with log-dirty, LIBXL_SUSPEND_LIVE runs libxl's own
 * pre-copy rounds first, while the guest runs).  The library's Xen importer (xsrelf/xen.h) then
 * transcodes that into the xsrelf migration stream on the socket, the same
 * records an `xsr save DOMID` image holds: header, PRODUCER, MEMMAP,
 * MIG_BEGIN (the receiver's HELLO is awaited before anything else goes),
 * the Xen records, CONFIG, DOMCTX, P2M, vCPUs, PAGES, NOTES, END.  The
 * receiver (`xsr receive --xen`) restores it through libxl paused as
 * "NAME--incoming" and answers COMMIT; this side renames its suspended copy
 * "NAME--migratedaway", sends RELEASED and destroys it, and the receiver
 * renames its copy NAME and unpauses it.  Any failure before RELEASED went
 * out resumes the source domain under its own name.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xsrelf/writer.h>

#include "../backends/xen.h"
#include "../util/clock.h"
#include <xsrelf/xen.h>
#include "migrate.h"

struct xsnd {
	int fd;
	const struct xsr_mig_send_opts *o;
};

static void xcut(int fd, const char *point)
{
	if (xsr_mig_cut_here(point))
		shutdown(fd, SHUT_RDWR); /* test hook: as if the network went away here */
}

/* The importer's begin hook: MIG_BEGIN, then the receiver's HELLO. */
static int xhello(void *ctx, struct xsr_writer *w, char *err, size_t errlen)
{
	struct xsnd *c = ctx;
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	struct xsr_mig_begin b = {0};
	struct xsr_mig_hello h;
	size_t len;
	int rc;

	xcut(c->fd, "hello");
	if ((rc = xsr_writer_add(w, XSR_SEC_MIG_BEGIN, 0, &b, sizeof(b))) < 0) {
		snprintf(err, errlen, "%s", xsr_writer_error(w));
		return rc;
	}
	if ((rc = xsr_mig_expect(c->fd, XSR_MIG_R_HELLO, c->o->hello_timeout_ms, body, &len, err, errlen)) < 0)
		return rc;
	if (len <= sizeof(h)) {
		snprintf(err, errlen, "the receiver sent a malformed HELLO (%zu octets)", len);
		return XSR_E_PEER;
	}
	memcpy(&h, body, sizeof(h));
	body[len - 1] = 0;
	if (h.status != XSR_MIG_HELLO_ACCEPT) {
		snprintf(err, errlen, "the receiver refused the guest: %s", (char *)body + sizeof(h));
		return XSR_E_PEER;
	}
	return 0;
}

static uint64_t bytes_sent(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 ? ti.tcpi_bytes_acked : 0;
}

int xsr_migrate_send_xen(uint32_t domid, int fd, const struct xsr_mig_send_opts *o, struct xsr_mig_xen_stats *st,
			 char *err, size_t errlen)
{
	struct xsnd c = {.fd = fd, .o = o};
	struct xsr_xen_import_opts io = {.layout = XSR_LAYOUT_STREAM, .kind = XSR_KIND_MIGRATION,
					 .compress = o->compress, .begin = xhello, .begin_ctx = &c};
	struct xsr_xen_stats xs;
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	size_t len;
	int mfd = -1, rc, suspended = 0;
	uint64_t t0 = xsr_now_ns();
	const char *src = NULL;

	memset(st, 0, sizeof(*st));
#if XSR_TESTHOOKS
	/* Test hook: an xl save file stands in for the suspended domain (no Xen needed). */
	src = getenv("XSR_MIG_TEST_XEN_SOURCE");
#endif
	if (src) {
		snprintf(st->mode, sizeof(st->mode), "stop-and-copy");
		snprintf(st->why, sizeof(st->why), "test source %s", src);
		if ((mfd = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
			snprintf(err, errlen, "%s: %s", src, strerror(errno));
			return XSR_E_IO;
		}
	} else {
		int live = xsr_xen_logdirty(domid, st->why, sizeof(st->why));
		if (live < 0) {
			snprintf(err, errlen, "%s", st->why);
			return XSR_E_BACKEND;
		}
		st->live = live;
		snprintf(st->mode, sizeof(st->mode), "%s", live ? "live (libxl pre-copy with log-dirty)" : "stop-and-copy");
		if (o->progress_fd >= 0)
			dprintf(o->progress_fd,
				live ? "xsr migrate: domain %u: log-dirty available: libxl pre-copies while the guest runs\n"
				     : "xsr migrate: domain %u: no log-dirty on this hypervisor (%s): stop-and-copy, the "
				       "domain stays suspended for the whole transfer\n",
				domid, st->why);
		/*
		 * Stop-and-copy of a 64-bit PV guest: the native save writes the
		 * migration stream onto the socket as it maps the guest (no libxl
		 * stream in between); otherwise libxl suspends into a memfd.
		 */
		if (!live && !getenv("XSR_XEN_SAVE_VIA")) {
			xsr_xen_save_catch_signals();
			uint64_t t1 = xsr_now_ns();
			int nr = xsr_xen_save_native_opts(domid, fd, &io, &xs, err, errlen);
			if (nr < 0) { /* the domain was resumed */
				if (!xs.suspend_ns)
					return XSR_E_BACKEND;
				if (!strstr(err, "receiver"))
					xsr_mig_peer_reason(fd, err, errlen);
				st->elapsed_ns = xsr_now_ns() - t0;
				return XSR_E_PEER;
			}
			if (nr == 0) {
				suspended = 1;
				st->native = 1;
				st->suspend_ns = xs.suspend_ns;
				st->transfer_ns = xsr_now_ns() - t1 - xs.suspend_ns;
				goto sent;
			}
		}
		mfd = xsr_xen_suspend(domid, live, &xs, err, errlen);
		if (mfd < 0)
			return XSR_E_BACKEND; /* the domain was resumed */
		suspended = 1;
		st->suspend_ns = xs.suspend_ns;
	}
	uint64_t t1 = xsr_now_ns();
	if ((rc = xsr_xen_import_fd(mfd, fd, &io, NULL, err, errlen)) < 0) {
		rc = XSR_E_PEER;
		if (!strstr(err, "receiver"))
			xsr_mig_peer_reason(fd, err, errlen);
		goto fail;
	}
	st->transfer_ns = xsr_now_ns() - t1;
sent:
	st->bytes = bytes_sent(fd);
	xcut(fd, "end");
	if ((rc = xsr_mig_expect(fd, XSR_MIG_R_COMMIT, o->ack_timeout_ms, body, &len, err, errlen)) < 0)
		goto fail;
	struct xsr_mig_ack a;
	memcpy(&a, body, sizeof(a));
	st->receiver_load_ns = a.load_ns;
	st->pages = a.pages;
	/* Free the name for the receiver's copy, then give this one up. */
	char e2[512];
	if (suspended && xsr_xen_rename(domid, "", "--migratedaway", e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "after the receiver's COMMIT: %s", e2);
		rc = XSR_E_BACKEND;
		goto fail;
	}
	struct xsr_mig_ack rel = {.round = 0};
	if (xsr_mig_send(fd, XSR_MIG_R_RELEASED, &rel, sizeof(rel)) < 0) {
		snprintf(err, errlen, "sending RELEASED after the receiver's COMMIT: %s", strerror(errno));
		rc = XSR_E_IO;
		if (suspended)
			xsr_xen_rename(domid, "--migratedaway", "", e2, sizeof(e2));
		goto fail;
	}
	st->downtime_ns = xsr_now_ns() - t0;
	if (suspended && xsr_xen_save_finish(domid, 1, e2, sizeof(e2)) < 0 && o->progress_fd >= 0)
		dprintf(o->progress_fd, "xsr migrate: the guest runs on the receiver, but the source copy: %s\n", e2);
	if (mfd >= 0)
		close(mfd);
	st->elapsed_ns = xsr_now_ns() - t0;
	return 0;
fail:
	if (suspended) {
		char e3[512];
		if (xsr_xen_save_finish(domid, 0, e3, sizeof(e3)) < 0)
			snprintf(err + strlen(err), errlen - strlen(err), "; resuming domain %u failed too: %s", domid, e3);
	}
	if (mfd >= 0)
		close(mfd);
	st->elapsed_ns = xsr_now_ns() - t0;
	return rc < 0 ? rc : XSR_E_PEER;
}
