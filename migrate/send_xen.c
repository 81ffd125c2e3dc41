/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sending side of a migration of a domain saved whole by its backend's
 * save_domain hook (backends/backend.h): a Xen domain, run in dom0 by
 * `xsr migrate DOMID tcp:HOST:PORT`, or a QEMU guest, `xsr migrate
 * qemu:SOCK tcp:HOST:PORT` (QEMU's stream imported onto the socket).
 *
 * The backend writes the domain as an xsrelf migration stream onto the
 * socket (Xen: its native save of a 64-bit PV guest, or libxl's engine with
 * libxenguest's save, after libxl's own pre-copy rounds when live_probe()
 * finds log-dirty), the same
 * records an `xsr save DOMID` image holds: header, PRODUCER, MEMMAP,
 * MIG_BEGIN (the receiver's HELLO is awaited before anything else goes),
 * the Xen records, CONFIG, DOMCTX, P2M, vCPUs, PAGES, NOTES, END.  The
 * receiver (`xsr receive --xen`) restores it paused as
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

#include "../backends/backend.h"
#include "../save/save.h"
#include "../util/clock.h"
#include <xsrelf/xen.h>
#include "migrate.h"

struct xsnd {
	int fd;
	const struct xsr_mig_send_opts *o;
	int peer_spoke; /* the error already holds what the receiver said: do not ask it again */
};

static void xcut(int fd, const char *point)
{
	if (mig_cut_here(point))
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
	if ((rc = mig_expect(c->fd, XSR_MIG_R_HELLO, c->o->hello_timeout_ms, body, &len, err, errlen)) < 0) {
		c->peer_spoke = rc == XSR_E_PEER;
		return rc;
	}
	if (len <= sizeof(h)) {
		snprintf(err, errlen, "the receiver sent a malformed HELLO (%zu octets)", len);
		c->peer_spoke = 1;
		return XSR_E_PEER;
	}
	memcpy(&h, body, sizeof(h));
	body[len - 1] = 0;
	if (h.status != XSR_MIG_HELLO_ACCEPT) {
		snprintf(err, errlen, "the receiver refused the guest: %s", (char *)body + sizeof(h));
		c->peer_spoke = 1;
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

/*
 * The test source (XSR_MIG_TEST_XEN_SOURCE): an xl save file stands in for
 * the suspended domain, transcoded by the library's Xen importer (no Xen needed).
 */
static int send_test_source(const char *src, int fd, const struct xsr_domain_save_opts *so,
			    struct xsr_mig_xen_stats *st, char *err, size_t errlen)
{
	struct xsr_xen_import_opts io = {.layout = so->stream ? XSR_LAYOUT_STREAM : 0, .kind = so->kind,
					 .compress = so->compress, .begin = so->begin, .begin_ctx = so->ctx};
	snprintf(st->mode, sizeof(st->mode), "stop-and-copy");
	snprintf(st->why, sizeof(st->why), "test source %s", src);
	int mfd = open(src, O_RDONLY | O_CLOEXEC);
	if (mfd < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return XSR_E_IO;
	}
	uint64_t t1 = util_now_ns();
	int rc = xsr_xen_import_fd(mfd, fd, &io, NULL, err, errlen);
	close(mfd);
	if (rc < 0) {
		if (!((struct xsnd *)so->ctx)->peer_spoke)
			mig_peer_reason(fd, err, errlen);
		return XSR_E_PEER;
	}
	st->transfer_ns = util_now_ns() - t1;
	return 0;
}

/* Live if the backend's probe finds dirty logging; say which on the progress fd.  0 or < 0. */
static int send_probe(struct xsr_backend *be, uint32_t domid, const struct xsr_mig_send_opts *o,
		      struct xsr_mig_xen_stats *st, char *err, size_t errlen)
{
	int live = be->ops->live_probe(be, st->why, sizeof(st->why));
	if (live < 0) {
		snprintf(err, errlen, "%s", st->why);
		return XSR_E_BACKEND;
	}
	st->live = live;
	/* the backend's pre-copy (libxl's with log-dirty, QEMU's own), before its final stop */
	snprintf(st->mode, sizeof(st->mode), "%s", live ? "live (the hypervisor's pre-copy)" : "stop-and-copy");
	if (o->progress_fd >= 0 && live)
		dprintf(o->progress_fd, "xsr migrate: live: %s\n", st->why);
	else if (o->progress_fd >= 0)
		dprintf(o->progress_fd,
			"xsr migrate: domain %u: no log-dirty on this hypervisor (%s): stop-and-copy, the "
			"domain stays suspended for the whole transfer\n",
			domid, st->why);
	return 0;
}

/* After the receiver's COMMIT: rename this copy away, send RELEASED, give it up.  0 or < 0 (the caller resumes it). */
static int send_release(struct xsr_backend *be, int fd, const struct xsr_mig_send_opts *o, uint64_t t0,
			struct xsr_mig_xen_stats *st, char *err, size_t errlen)
{
	/* Free the name for the receiver's copy, then give this one up. */
	if (be && be->ops->rename(be, "", "--migratedaway") < 0) {
		snprintf(err, errlen, "after the receiver's COMMIT: %s", be->ops->error(be));
		return XSR_E_BACKEND;
	}
	struct xsr_mig_ack rel = {.round = 0};
	if (mig_send(fd, XSR_MIG_R_RELEASED, &rel, sizeof(rel)) < 0) {
		snprintf(err, errlen, "sending RELEASED after the receiver's COMMIT: %s", strerror(errno));
		if (be)
			be->ops->rename(be, "--migratedaway", "");
		return XSR_E_IO;
	}
	st->downtime_ns = util_now_ns() - t0;
	if (be && be->ops->finish(be, 1) < 0 && o->progress_fd >= 0)
		dprintf(o->progress_fd, "xsr migrate: the guest runs on the receiver, but the source copy: %s\n",
			be->ops->error(be));
	return 0;
}

int migrate_send_xen(struct xsr_backend *be, uint32_t domid, int fd, const struct xsr_mig_send_opts *o,
		     struct xsr_mig_xen_stats *st, char *err, size_t errlen)
{
	struct xsnd c = {.fd = fd, .o = o};
	struct xsr_domain_save_opts so = {.stream = 1, .kind = XSR_KIND_MIGRATION, .compress = o->compress,
					  .catch_signals = 1, .begin = xhello, .ctx = &c,
					  /* the domain's xenstore subtree, read once it is suspended */
					  .end = be ? save_xenstore_end : NULL, .end_ctx = be};
	struct xsr_domain_stats xs = {0};
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	size_t len;
	int rc, suspended = 0;
	uint64_t t0 = util_now_ns();
	const char *src = NULL, *lacks;

	memset(st, 0, sizeof(*st));
#if XSR_TESTHOOKS
	src = getenv("XSR_MIG_TEST_XEN_SOURCE");
#endif
	if (src) {
		if ((rc = send_test_source(src, fd, &so, st, err, errlen)) < 0)
			goto fail;
		goto sent;
	}
	if (!be || (lacks = backend_lacks(be->ops, XSR_NEED_DOMAIN_SAVE))) {
		snprintf(err, errlen, "%s: not supported by this backend", be ? lacks : "save_domain");
		return XSR_E_BACKEND;
	}
	so.memory_path = o->memory_path;
	if (o->memory_path == XSR_MEMPATH_SHARED) {
		/* xsr moves the memory itself: no hypervisor pre-copy to probe */
		snprintf(st->mode, sizeof(st->mode), "stop-and-copy");
		snprintf(st->why, sizeof(st->why), "the shared-memory path has no dirty log");
		if (o->progress_fd >= 0)
			dprintf(o->progress_fd, "xsr migrate: shared-memory path: stop-and-copy, the guest stays paused for the "
						"whole transfer\n");
	} else if ((rc = send_probe(be, domid, o, st, err, errlen)) < 0) {
		return rc;
	}
	so.live = st->live;
	uint64_t t1 = util_now_ns();
	if (be->ops->save_domain(be, fd, &so, &xs) < 0) { /* the domain was resumed */
		snprintf(err, errlen, "%s", be->ops->error(be));
		if (!xs.suspend_ns)
			return XSR_E_BACKEND;
		if (!c.peer_spoke)
			mig_peer_reason(fd, err, errlen);
		st->elapsed_ns = util_now_ns() - t0;
		return XSR_E_PEER;
	}
	suspended = 1;
	st->native = xs.native;
	st->shared_memory = xs.shared_memory;
	st->suspend_ns = xs.suspend_ns;
	st->transfer_ns = util_now_ns() - t1 - xs.suspend_ns; /* the suspend (and libxl's pre-copy) ran inside */
sent:
	st->bytes = bytes_sent(fd);
	xcut(fd, "end");
	if ((rc = mig_expect(fd, XSR_MIG_R_COMMIT, o->ack_timeout_ms, body, &len, err, errlen)) < 0)
		goto fail;
	struct xsr_mig_ack a;
	memcpy(&a, body, sizeof(a));
	st->receiver_load_ns = a.load_ns;
	st->pages = a.pages;
	if ((rc = send_release(suspended ? be : NULL, fd, o, t0, st, err, errlen)) < 0)
		goto fail;
	st->elapsed_ns = util_now_ns() - t0;
	return 0;
fail:
	if (suspended && be->ops->finish(be, 0) < 0)
		snprintf(err + strlen(err), errlen - strlen(err), "; resuming domain %u failed too: %s", domid,
			 be->ops->error(be));
	st->elapsed_ns = util_now_ns() - t0;
	return rc < 0 ? rc : XSR_E_PEER;
}
