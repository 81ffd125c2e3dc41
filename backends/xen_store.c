/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend's xenstore ops (backend.h: xenstore_read, xenstore_write):
 * the domain's own subtree /local/domain/N/ read into a XENSTORE body and
 * written back under a new domain, through libxenstore.
 *
 * libxl rebuilds a restored domain's xenstore from its configuration, so
 * what the guest or a management stack wrote under the domain since it
 * booted (a guest agent's data/, control/ feature flags) is lost by
 * `xl save`/`xl restore`; these two carry it.  The keys libxl makes itself
 * are the library's list (xsr_xs_toolstack_key): left out when reading, and
 * when writing a node libxl already made is left as libxl made it, since
 * the new domain's wiring is libxl's and not the old one's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

#if defined(XSR_HAVE_XEN) && __has_include(<xenstore.h>)

#include <xenstore.h>

#include <xsrelf/xenstore.h>
#include "xen_priv.h"

struct walk {
	struct xs_handle *h;
	uint32_t domid;
	struct xsr_xs_builder *b;
	char path[XSR_XS_MAX_PATH + 64]; /* the absolute path being read */
	size_t root;                     /* length of "/local/domain/N" */
	char *err;
	size_t errlen;
};

/*
 * Depth-first from the node in w->path (length @len): every child not the
 * toolstack's, with its value and permissions, then its children.  The
 * recursion is bounded by the path limit (a level costs at least two
 * octets of path) and keeps its paths in the one buffer.
 */
static int walk_children(struct walk *w, size_t len)
{
	unsigned n = 0;
	char **kids = xs_directory(w->h, XBT_NULL, w->path, &n);
	if (!kids) {
		if (errno == ENOENT) /* gone meanwhile (dom0 may still write) */
			return 0;
		snprintf(w->err, w->errlen, "xenstore: listing %s: %s", w->path, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		size_t kl = strlen(kids[i]);
		size_t nl = len + 1 + kl, rl = nl - w->root - 1;
		if (rl > XSR_XS_MAX_PATH || nl >= sizeof(w->path)) {
			snprintf(w->err, w->errlen, "xenstore: a node under %s: its path passes %d octets", w->path,
				 XSR_XS_MAX_PATH);
			rc = -1;
			break;
		}
		w->path[len] = '/';
		memcpy(w->path + len + 1, kids[i], kl + 1);
		const char *rel = w->path + w->root + 1;
		if (xsr_xs_toolstack_key(rel, rl))
			goto next;
		unsigned vlen = 0, np = 0;
		char *val = xs_read(w->h, XBT_NULL, w->path, &vlen);
		struct xs_permissions *xp = val ? xs_get_permissions(w->h, XBT_NULL, w->path, &np) : NULL;
		if (!val || !xp) {
			free(val);
			if (errno == ENOENT)
				goto next;
			snprintf(w->err, w->errlen, "xenstore: reading %s: %s", w->path, strerror(errno));
			rc = -1;
			break;
		}
		struct xsr_xs_perm *pm = calloc(np ? np : 1, sizeof(*pm));
		if (!pm) {
			snprintf(w->err, w->errlen, "out of memory");
			rc = -1;
		}
		for (unsigned j = 0; pm && j < np; j++) {
			pm[j].domid = xp[j].id;
			/* XS_PERM_OWNER and friends are xenstored's own, never set by a client */
			pm[j].perm = (xp[j].perms & XS_PERM_READ ? XSR_XS_PERM_READ : 0) |
				     (xp[j].perms & XS_PERM_WRITE ? XSR_XS_PERM_WRITE : 0);
		}
		if (pm) {
			int r = xsr_xs_builder_add(w->b, rel, rl, val, vlen, pm, np, w->err, w->errlen);
			if (r < 0)
				rc = -1;
		}
		free(pm);
		free(xp);
		free(val);
		if (rc == 0)
			rc = walk_children(w, nl);
	next:
		w->path[len] = '\0';
	}
	free(kids);
	return rc;
}

int xen_xs_read(uint32_t domid, void **body, uint64_t *len, char *err, size_t errlen)
{
	struct walk w = {.domid = domid, .err = err, .errlen = errlen};
	int rc = -1;
	*body = NULL;
	*len = 0;
	if (!(w.h = xs_open(0))) {
		snprintf(err, errlen, "xs_open: %s (is xenstored running?)", strerror(errno));
		return -1;
	}
	if (xsr_xs_builder_new(&w.b, domid) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	w.root = (size_t)snprintf(w.path, sizeof(w.path), "/local/domain/%u", domid);
	if (walk_children(&w, w.root) == 0 && xsr_xs_builder_finish(w.b, body, len, err, errlen) == 0)
		rc = 0;
out:
	xsr_xs_builder_free(w.b);
	xs_close(w.h);
	return rc;
}

/* One attempt inside transaction @t: 0, or -1 with errno (EAGAIN: try again). */
static int write_nodes(struct xs_handle *h, xs_transaction_t t, uint32_t domid, const void *body, uint64_t blen,
		       struct xsr_xenstore_stats *st, char *err, size_t errlen)
{
	struct xsr_xs_iter it;
	struct xsr_xs_entry e;
	char path[XSR_XS_MAX_PATH + 64];
	struct xs_permissions *xp = NULL;
	int rc = xsr_xs_iter_init(&it, body, blen, err, errlen);
	memset(st, 0, sizeof(*st));
	while (rc == 0 && (rc = xsr_xs_iter_next(&it, &e, err, errlen)) == 1) {
		rc = 0;
		if (xsr_xs_toolstack_key(e.path, e.path_len)) {
			st->skipped++;
			continue;
		}
		snprintf(path, sizeof(path), "/local/domain/%u/%.*s", domid, (int)e.path_len, e.path);
		unsigned l;
		char *have = xs_read(h, t, path, &l);
		if (have) {
			free(have);
			st->kept++;
			continue;
		}
		if (errno != ENOENT) {
			snprintf(err, errlen, "xenstore: reading %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		free(xp);
		if (!(xp = calloc(e.nr_perms, sizeof(*xp)))) {
			snprintf(err, errlen, "out of memory");
			errno = ENOMEM;
			rc = -1;
			break;
		}
		for (uint32_t i = 0; i < e.nr_perms; i++) {
			struct xsr_xs_perm p;
			xsr_xs_perm_get(&e, i, &p);
			xp[i].id = p.domid == it.domid ? domid : p.domid;
			xp[i].perms = (p.perm & XSR_XS_PERM_READ ? XS_PERM_READ : 0) |
				      (p.perm & XSR_XS_PERM_WRITE ? XS_PERM_WRITE : 0);
		}
		if (!xs_write(h, t, path, e.value, e.value_len) || !xs_set_permissions(h, t, path, xp, e.nr_perms)) {
			snprintf(err, errlen, "xenstore: writing %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		st->written++;
	}
	free(xp);
	if (rc < -1) { /* the body itself: not worth another attempt */
		errno = EINVAL;
		return -1;
	}
	return rc;
}

int xen_xs_write(uint32_t domid, const void *body, uint64_t len, struct xsr_xenstore_stats *st, char *err,
		 size_t errlen)
{
	struct xsr_xenstore_stats dummy;
	struct xs_handle *h = xs_open(0);
	int rc = -1;
	if (!st)
		st = &dummy;
	if (!h) {
		snprintf(err, errlen, "xs_open: %s (is xenstored running?)", strerror(errno));
		return -1;
	}
	/* One transaction, so that the guest sees all of it or none; xenstored says EAGAIN on a conflict. */
	for (int attempt = 0; attempt < 8; attempt++) {
		xs_transaction_t t = xs_transaction_start(h);
		if (t == XBT_NULL) {
			snprintf(err, errlen, "xenstore: starting a transaction: %s", strerror(errno));
			break;
		}
		int r = write_nodes(h, t, domid, body, len, st, err, errlen);
		if (r < 0) {
			int e = errno;
			xs_transaction_end(h, t, true);
			if (e == EAGAIN)
				continue;
			break;
		}
		if (xs_transaction_end(h, t, false)) {
			rc = 0;
			break;
		}
		if (errno != EAGAIN) {
			snprintf(err, errlen, "xenstore: ending the transaction: %s", strerror(errno));
			break;
		}
		snprintf(err, errlen, "xenstore: the transaction kept conflicting (EAGAIN 8 times)");
	}
	xs_close(h);
	return rc;
}

#endif
