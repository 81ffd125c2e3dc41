/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: the XENSTORE section body of a domain's own subtree (the
 * body that begins with XSR_XS_MAGIC; struct xsr_xs_head and friends in
 * xsrelf/format.h, docs/xsrelf-format.md "XENSTORE: the domain's subtree").
 *
 * Encoding: a builder collects nodes in any order and writes the body
 * sorted.  Decoding: an iterator over a body, which checks every limit and
 * rule as it goes (the readers' validator is the same walk), so that a
 * caller never sees a node it could not write back.  Nothing here talks to
 * xenstore or prints: the Xen backend reads and writes the keys.
 *
 * Which keys travel: xsr_xs_toolstack_key() names the keys libxl makes from
 * the domain's configuration (device wiring, the console and store rings,
 * the name and memory sizes).  A capture leaves them out; a restore skips
 * them in an image that has them and writes the others only where libxl has
 * not made the node.
 */
#ifndef XSRELF_XENSTORE_H
#define XSRELF_XENSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/format.h>
#include <xsrelf/reader.h>
#include <xsrelf/xsrelf.h>

/* 1 if the XENSTORE body @body (@len octets) is a domain's subtree (it begins with XSR_XS_MAGIC), 0 if libxl's record. */
XSR_API int xsr_xs_is_subtree(const void *body, uint64_t len);
/*
 * The domain's subtree of @img, if it has one: 1 with the body in *@body
 * (malloc'd, the caller frees; checksum and rules verified) and *@len; 0 if
 * none of its XENSTORE sections is one; < 0 with xsr_image_error().
 */
XSR_API int xsr_image_xenstore(struct xsr_image *img, void **body, uint64_t *len);

/* One node of a body; the pointers are borrowed from the body (not NUL-terminated). */
struct xsr_xs_entry {
	const char *path; /* relative to the domain's root: "data/marker" */
	uint32_t path_len;
	const char *value;
	uint32_t value_len;
	const void *perms; /* nr_perms struct xsr_xs_perm, maybe unaligned: read them with xsr_xs_perm_get() */
	uint32_t nr_perms;
};

struct xsr_xs_iter {
	const uint8_t *body;
	uint64_t len, off;
	uint32_t nr_nodes, seen;
	uint32_t domid; /* the saved domain (struct xsr_xs_head) */
	const char *prev;
	uint32_t prev_len;
};

/*
 * Start on @body (@len octets): checks the head.  0, or XSR_E_FORMAT /
 * XSR_E_LIMIT with the reason (and the offset) in @err.
 */
XSR_API int xsr_xs_iter_init(struct xsr_xs_iter *it, const void *body, uint64_t len, char *err, size_t errlen);
/*
 * The next node into *@e: 1, or 0 after the last one (when the body must
 * also end there), or XSR_E_FORMAT / XSR_E_LIMIT with the node's number and
 * offset in @err.
 */
XSR_API int xsr_xs_iter_next(struct xsr_xs_iter *it, struct xsr_xs_entry *e, char *err, size_t errlen);
/* Permission @i (< e->nr_perms) of @e into *@out. */
XSR_API void xsr_xs_perm_get(const struct xsr_xs_entry *e, uint32_t i, struct xsr_xs_perm *out);
/* The whole walk: 0 and *@nodes, *@value_octets (each may be NULL), or as xsr_xs_iter_next. */
XSR_API int xsr_xs_check(const void *body, uint64_t len, uint32_t *nodes, uint64_t *value_octets, char *err,
			 size_t errlen);

/*
 * 1 if @path (relative, @len octets) is one of the keys the toolstack makes
 * (docs/xsrelf-format.md lists them): the node or anything under
 * device, backend, console, store, image, vm, name, domid, cpu, memory,
 * control/shutdown, control/sysrq.  0 otherwise.
 */
XSR_API int xsr_xs_toolstack_key(const char *path, size_t len);

/* The builder.  Close accepts NULL. */
struct xsr_xs_builder;
/* A builder for the subtree of domain @domid: 0 or XSR_E_NOMEM. */
XSR_API int xsr_xs_builder_new(struct xsr_xs_builder **out, uint32_t domid);
XSR_API void xsr_xs_builder_free(struct xsr_xs_builder *b);
/*
 * Add one node (all copied).  0, or XSR_E_LIMIT / XSR_E_FORMAT (a path with
 * characters xenstore refuses, an empty component, a permission bit beyond
 * read and write) / XSR_E_NOMEM, with the reason in @err.
 */
XSR_API int xsr_xs_builder_add(struct xsr_xs_builder *b, const char *path, size_t path_len, const void *value,
			       size_t value_len, const struct xsr_xs_perm *perms, size_t nr_perms, char *err,
			       size_t errlen);
/*
 * The body, nodes sorted by path, into *@body (malloc'd: the caller frees)
 * and *@len.  A path added twice is XSR_E_FORMAT.
 */
XSR_API int xsr_xs_builder_finish(struct xsr_xs_builder *b, void **body, uint64_t *len, char *err, size_t errlen);

#endif
