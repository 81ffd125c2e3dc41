/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The XENSTORE subtree body (xsrelf/xenstore.h): what the readers' validator,
 * `xsr info` and a restore walk.  Oracles: a body refused has a message; a
 * body accepted rebuilds through the builder to exactly the same octets (the
 * encoding is canonical: sorted, padding zero), and every node it yields is
 * one the builder takes.
 */
#include <stdio.h>

#include <xsrelf/xenstore.h>

#include "../common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	uint32_t nodes = 0;
	uint64_t octets = 0;
	/* the readers hand bodies 8-aligned; libFuzzer's buffer may not be */
	uint8_t *body = malloc(size ? size : 1);
	if (!body)
		abort();
	memcpy(body, data, size);
	int rc = xsr_xs_check(body, size, &nodes, &octets, err, sizeof(err));
	if (rc < 0) {
		if (!err[0])
			abort();
		free(body);
		return 0;
	}
	struct xsr_xs_iter it;
	struct xsr_xs_entry e;
	struct xsr_xs_builder *b;
	struct xsr_xs_perm perms[XSR_XS_MAX_PERMS];
	if (xsr_xs_iter_init(&it, body, size, err, sizeof(err)) < 0 || xsr_xs_builder_new(&b, it.domid) < 0)
		abort();
	uint32_t n = 0;
	while ((rc = xsr_xs_iter_next(&it, &e, err, sizeof(err))) == 1) {
		for (uint32_t i = 0; i < e.nr_perms; i++)
			xsr_xs_perm_get(&e, i, &perms[i]);
		(void)xsr_xs_toolstack_key(e.path, e.path_len);
		if (xsr_xs_builder_add(b, e.path, e.path_len, e.value, e.value_len, perms, e.nr_perms, err,
				       sizeof(err)) < 0) {
			fprintf(stderr, "a node the iterator gave, the builder refused: %s\n", err);
			abort();
		}
		n++;
	}
	if (rc != 0 || n != nodes)
		abort();
	void *again;
	uint64_t alen;
	if (xsr_xs_builder_finish(b, &again, &alen, err, sizeof(err)) < 0 || alen != size ||
	    memcmp(again, body, size)) {
		fprintf(stderr, "parse/rebuild is not an identity (%llu of %zu octets)\n", (unsigned long long)alen, size);
		abort();
	}
	free(again);
	xsr_xs_builder_free(b);
	free(body);
	return 0;
}
