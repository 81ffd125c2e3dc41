/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The XENSTORE body of a domain's own subtree (xsrelf/xenstore.h).
 *
 * The sorted order is what lets a restore write a parent before its
 * children and what lets the iterator refuse duplicates without a set: a
 * path's prefixes sort before it, so ascending octet order is parent-first
 * order, and "strictly" rules out a node twice.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/xenstore.h>

#include "internal.h"

static uint64_t pad8(uint64_t n) { return (8 - (n & 7)) & 7; }

/* xenstored's own rule for a path's characters (alphanumerics and -/_@), relative, no empty component. */
static const char *path_fault(const char *p, size_t len)
{
	if (len == 0)
		return "an empty path";
	if (len > XSR_XS_MAX_PATH)
		return "a path longer than 3072 octets";
	if (p[0] == '/')
		return "an absolute path";
	if (p[len - 1] == '/')
		return "a path ending in /";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!isalnum(c) && c != '-' && c != '/' && c != '_' && c != '@')
			return "a character xenstore refuses in the path";
		if (c == '/' && p[i + 1] == '/')
			return "an empty path component";
	}
	return NULL;
}

static int path_cmp(const char *a, uint32_t al, const char *b, uint32_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

int xsr_xs_is_subtree(const void *body, uint64_t len)
{
	uint32_t m;
	if (len < sizeof(m))
		return 0;
	memcpy(&m, body, sizeof(m));
	return m == XSR_XS_MAGIC;
}

int xsr_xs_iter_init(struct xsr_xs_iter *it, const void *body, uint64_t len, char *err, size_t errlen)
{
	struct xsr_xs_head h;
	memset(it, 0, sizeof(*it));
	if (!body && len)
		return XSR_E_INVAL;
	if (len < sizeof(h)) {
		xsr_fmt(err, errlen, "xenstore body of %llu octets: shorter than its 16-octet head",
			(unsigned long long)len);
		return XSR_E_FORMAT;
	}
	memcpy(&h, body, sizeof(h));
	if (h.magic != XSR_XS_MAGIC) {
		xsr_fmt(err, errlen, "xenstore head: magic 0x%08x, not 0x%08x", h.magic, XSR_XS_MAGIC);
		return XSR_E_FORMAT;
	}
	if (h.version != XSR_XS_VERSION) {
		xsr_fmt(err, errlen, "xenstore body version %u: only %u is known", h.version, XSR_XS_VERSION);
		return XSR_E_UNSUPPORTED;
	}
	if (h.reserved) {
		xsr_fmt(err, errlen, "xenstore head: reserved word 0x%x is not zero", h.reserved);
		return XSR_E_FORMAT;
	}
	if (h.nr_nodes > XSR_XS_MAX_NODES) {
		xsr_fmt(err, errlen, "xenstore head: %u nodes, must be 0..%u", h.nr_nodes, XSR_XS_MAX_NODES);
		return XSR_E_LIMIT;
	}
	it->body = body;
	it->len = len;
	it->off = sizeof(h);
	it->nr_nodes = h.nr_nodes;
	it->domid = h.domid;
	return 0;
}

int xsr_xs_iter_next(struct xsr_xs_iter *it, struct xsr_xs_entry *e, char *err, size_t errlen)
{
	struct xsr_xs_node n;
	uint64_t off = it->off, left = it->len - it->off;
	if (it->seen == it->nr_nodes) {
		if (left) {
			xsr_fmt(err, errlen, "xenstore body: %llu octets after its %u nodes (offset 0x%llx)",
				(unsigned long long)left, it->nr_nodes, (unsigned long long)off);
			return XSR_E_FORMAT;
		}
		return 0;
	}
	if (left < sizeof(n)) {
		xsr_fmt(err, errlen, "xenstore node %u at offset 0x%llx: the body ends (%u nodes announced)", it->seen,
			(unsigned long long)off, it->nr_nodes);
		return XSR_E_FORMAT;
	}
	memcpy(&n, it->body + off, sizeof(n));
	const char *lim = NULL;
	if (n.path_len == 0 || n.path_len > XSR_XS_MAX_PATH)
		lim = "path of %u octets, must be 1..3072";
	else if (n.value_len > XSR_XS_MAX_VALUE)
		lim = "value of %u octets, must be 0..4096";
	else if (n.nr_perms == 0 || n.nr_perms > XSR_XS_MAX_PERMS)
		lim = "%u permissions, must be 1..1024";
	if (lim) {
		char m[64];
		xsr_fmt(m, sizeof(m), lim,
			n.path_len == 0 || n.path_len > XSR_XS_MAX_PATH ? n.path_len
			: n.value_len > XSR_XS_MAX_VALUE		 ? n.value_len
									 : n.nr_perms);
		xsr_fmt(err, errlen, "xenstore node %u at offset 0x%llx: %s", it->seen, (unsigned long long)off, m);
		return XSR_E_LIMIT;
	}
	/* Each term is bounded (8 + 8192 + 3072 + 4096 + 7), so the sum cannot overflow. */
	uint64_t plen = (uint64_t)n.nr_perms * sizeof(struct xsr_xs_perm);
	uint64_t raw = sizeof(n) + plen + n.path_len + n.value_len;
	uint64_t need = raw + pad8(raw);
	if (need > left) {
		xsr_fmt(err, errlen, "xenstore node %u at offset 0x%llx: %llu octets, %llu left in the body", it->seen,
			(unsigned long long)off, (unsigned long long)need, (unsigned long long)left);
		return XSR_E_FORMAT;
	}
	const uint8_t *p = it->body + off + sizeof(n);
	for (uint32_t i = 0; i < n.nr_perms; i++) {
		struct xsr_xs_perm pm;
		memcpy(&pm, p + i * sizeof(pm), sizeof(pm));
		if (pm.perm & ~(uint32_t)(XSR_XS_PERM_READ | XSR_XS_PERM_WRITE)) {
			xsr_fmt(err, errlen, "xenstore node %u at offset 0x%llx: permission %u has bits 0x%x beyond read and write",
				it->seen, (unsigned long long)off, i, pm.perm);
			return XSR_E_FORMAT;
		}
	}
	const char *path = (const char *)p + plen;
	const char *why = path_fault(path, n.path_len);
	for (uint64_t i = raw; !why && i < need; i++)
		if (it->body[off + i])
			why = "padding that is not zero";
	if (!why && it->seen && path_cmp(it->prev, it->prev_len, path, n.path_len) >= 0)
		why = "a path not after the one before (paths are sorted, each once)";
	if (why) {
		xsr_fmt(err, errlen, "xenstore node %u at offset 0x%llx (\"%.*s\"): %s", it->seen,
			(unsigned long long)off, (int)(n.path_len > 64 ? 64 : n.path_len), path, why);
		return XSR_E_FORMAT;
	}
	e->perms = p;
	e->nr_perms = n.nr_perms;
	e->path = path;
	e->path_len = n.path_len;
	e->value = path + n.path_len;
	e->value_len = n.value_len;
	it->prev = path;
	it->prev_len = n.path_len;
	it->off = off + need;
	it->seen++;
	return 1;
}

void xsr_xs_perm_get(const struct xsr_xs_entry *e, uint32_t i, struct xsr_xs_perm *out)
{
	memcpy(out, (const uint8_t *)e->perms + (size_t)i * sizeof(*out), sizeof(*out));
}

int xsr_xs_check(const void *body, uint64_t len, uint32_t *nodes, uint64_t *value_octets, char *err, size_t errlen)
{
	struct xsr_xs_iter it;
	struct xsr_xs_entry e;
	uint64_t v = 0;
	int rc = xsr_xs_iter_init(&it, body, len, err, errlen);
	while (rc == 0 && (rc = xsr_xs_iter_next(&it, &e, err, errlen)) == 1) {
		v += e.value_len;
		rc = 0;
	}
	if (rc < 0)
		return rc;
	if (nodes)
		*nodes = it.nr_nodes;
	if (value_octets)
		*value_octets = v;
	return 0;
}

/*
 * The keys libxl writes from the domain's configuration when it builds or
 * restores a domain (libxl__domain_make, libxl__build_post, the device and
 * console code of Xen 4.17): restoring a saved copy over them would wire the
 * new domain to the old one's event channels, rings and backends.
 */
static const char *const toolstack_keys[] = {
    "device", "backend", "console", "store", "image",	       "vm",	"name",
    "domid",  "cpu",	 "memory",  "device-model", "control/shutdown", "control/sysrq",
};

int xsr_xs_toolstack_key(const char *path, size_t len)
{
	for (size_t i = 0; i < sizeof(toolstack_keys) / sizeof(toolstack_keys[0]); i++) {
		size_t k = strlen(toolstack_keys[i]);
		if (len >= k && !memcmp(path, toolstack_keys[i], k) && (len == k || path[k] == '/'))
			return 1;
	}
	return 0;
}

/* ---- the builder ---- */

struct bnode {
	char *path; /* perms, path and value in one allocation that starts at perms */
	uint32_t path_len, value_len, nr_perms;
	struct xsr_xs_perm *perms;
	char *value;
};

struct xsr_xs_builder {
	uint32_t domid;
	struct bnode *n;
	size_t count, cap;
	uint64_t octets; /* the body so far, kept below XSR_MAX_RECORD */
};

int xsr_xs_builder_new(struct xsr_xs_builder **out, uint32_t domid)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return XSR_E_NOMEM;
	(*out)->domid = domid;
	(*out)->octets = sizeof(struct xsr_xs_head);
	return 0;
}

void xsr_xs_builder_free(struct xsr_xs_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->count; i++)
		free(b->n[i].perms);
	free(b->n);
	free(b);
}

int xsr_xs_builder_add(struct xsr_xs_builder *b, const char *path, size_t path_len, const void *value,
		       size_t value_len, const struct xsr_xs_perm *perms, size_t nr_perms, char *err, size_t errlen)
{
	const char *why = path_fault(path, path_len);
	int code = path_len > XSR_XS_MAX_PATH ? XSR_E_LIMIT : XSR_E_FORMAT;
	if (!why && value_len > XSR_XS_MAX_VALUE)
		why = "a value longer than 4096 octets", code = XSR_E_LIMIT;
	if (!why && (nr_perms == 0 || nr_perms > XSR_XS_MAX_PERMS))
		why = "not 1..1024 permissions", code = XSR_E_LIMIT;
	for (size_t i = 0; !why && i < nr_perms; i++)
		if (perms[i].perm & ~(uint32_t)(XSR_XS_PERM_READ | XSR_XS_PERM_WRITE))
			why = "a permission beyond read and write", code = XSR_E_FORMAT;
	if (!why && b->count >= XSR_XS_MAX_NODES)
		why = "more than 65536 nodes", code = XSR_E_LIMIT;
	uint64_t raw = sizeof(struct xsr_xs_node) + nr_perms * sizeof(struct xsr_xs_perm) + path_len + value_len;
	if (!why && b->octets + raw + pad8(raw) > XSR_MAX_RECORD)
		why = "the body would pass 128 MiB", code = XSR_E_LIMIT;
	if (why) {
		xsr_fmt(err, errlen, "xenstore node \"%.*s\": %s", (int)(path_len > 64 ? 64 : path_len), path, why);
		return code;
	}
	if (b->count == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		struct bnode *nn = realloc(b->n, nc * sizeof(*nn));
		if (!nn)
			return XSR_E_NOMEM;
		b->n = nn;
		b->cap = nc;
	}
	size_t plen = nr_perms * sizeof(struct xsr_xs_perm);
	char *m = malloc(plen + path_len + value_len + 1);
	if (!m)
		return XSR_E_NOMEM;
	struct bnode *n = &b->n[b->count++];
	n->perms = (struct xsr_xs_perm *)(void *)m; /* the allocation's start, which free() takes */
	memcpy(n->perms, perms, plen);
	n->path = m + plen;
	memcpy(n->path, path, path_len);
	n->value = n->path + path_len;
	if (value_len)
		memcpy(n->value, value, value_len);
	n->path_len = (uint32_t)path_len;
	n->value_len = (uint32_t)value_len;
	n->nr_perms = (uint32_t)nr_perms;
	b->octets += raw + pad8(raw);
	return 0;
}

static int bnode_cmp(const void *a, const void *b)
{
	const struct bnode *x = a, *y = b;
	return path_cmp(x->path, x->path_len, y->path, y->path_len);
}

int xsr_xs_builder_finish(struct xsr_xs_builder *b, void **body, uint64_t *len, char *err, size_t errlen)
{
	*body = NULL;
	*len = 0;
	if (b->count > 1)
		qsort(b->n, b->count, sizeof(*b->n), bnode_cmp);
	for (size_t i = 1; i < b->count; i++)
		if (bnode_cmp(&b->n[i - 1], &b->n[i]) == 0) {
			xsr_fmt(err, errlen, "xenstore node \"%.*s\": added twice",
				(int)(b->n[i].path_len > 64 ? 64 : b->n[i].path_len), b->n[i].path);
			return XSR_E_FORMAT;
		}
	uint8_t *out = calloc(1, (size_t)b->octets);
	if (!out)
		return XSR_E_NOMEM;
	struct xsr_xs_head h = {.magic = XSR_XS_MAGIC, .version = XSR_XS_VERSION, .nr_nodes = (uint32_t)b->count,
				.domid = b->domid};
	memcpy(out, &h, sizeof(h));
	uint64_t off = sizeof(h);
	for (size_t i = 0; i < b->count; i++) {
		const struct bnode *n = &b->n[i];
		struct xsr_xs_node nh = {.path_len = (uint16_t)n->path_len, .nr_perms = (uint16_t)n->nr_perms,
					 .value_len = n->value_len};
		size_t plen = n->nr_perms * sizeof(struct xsr_xs_perm);
		memcpy(out + off, &nh, sizeof(nh));
		memcpy(out + off + sizeof(nh), n->perms, plen);
		memcpy(out + off + sizeof(nh) + plen, n->path, n->path_len);
		memcpy(out + off + sizeof(nh) + plen + n->path_len, n->value, n->value_len);
		uint64_t raw = sizeof(nh) + plen + n->path_len + n->value_len;
		off += raw + pad8(raw);
	}
	*body = out;
	*len = off;
	return 0;
}
