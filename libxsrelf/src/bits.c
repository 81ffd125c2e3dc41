/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A sparse bit set over 64-bit indices: a radix tree of 512-pointer nodes over 4 KiB
 * leaves of 32768 bits.  Memory follows the bits that were ever set, not the range an
 * input claims: a stream that says 2^36 pages and carries 200 costs one path of nodes,
 * not an 8 GiB bitmap (docs/limits.md, "Memory of the writer").
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define LEAF_SHIFT 15 /* bits per leaf: 2^15 in 4 KiB */
#define NODE_SHIFT 9  /* pointers per node: 2^9 in 4 KiB */
#define NODE_SIZE (1u << NODE_SHIFT)

void xsr_bits_init(struct xsr_bits *b, uint64_t n)
{
	*b = (struct xsr_bits){0};
	unsigned covered = LEAF_SHIFT;
	while (covered < 64 && n > UINT64_C(1) << covered) {
		covered += NODE_SHIFT;
		b->levels++;
	}
}

/* The leaf holding bit @i, made on the way when @make; NULL when absent (or no memory). */
static uint64_t *leaf_of(struct xsr_bits *b, uint64_t i, bool make)
{
	uint64_t key = i >> LEAF_SHIFT;
	if (b->last && b->last_key == key)
		return b->last;
	void **slot = &b->root;
	for (unsigned l = b->levels; l > 0; l--) {
		if (!*slot) {
			if (!make || !(*slot = calloc(NODE_SIZE, sizeof(void *))))
				return NULL;
		}
		slot = (void **)*slot + (key >> NODE_SHIFT * (l - 1) & (NODE_SIZE - 1));
	}
	if (!*slot && (!make || !(*slot = calloc(1, UINT64_C(1) << LEAF_SHIFT >> 3))))
		return NULL;
	b->last = *slot;
	b->last_key = key;
	return *slot;
}

bool xsr_bits_get(struct xsr_bits *b, uint64_t i)
{
	const uint64_t *leaf = leaf_of(b, i, false);
	uint64_t bit = i & ((UINT64_C(1) << LEAF_SHIFT) - 1);
	return leaf && (leaf[bit / 64] >> (bit % 64) & 1);
}

int xsr_bits_put(struct xsr_bits *b, uint64_t i, bool v)
{
	uint64_t *leaf = leaf_of(b, i, v);
	uint64_t bit = i & ((UINT64_C(1) << LEAF_SHIFT) - 1);
	if (!leaf)
		return v ? -ENOMEM : 0; /* clearing a bit that was never set */
	if (v)
		leaf[bit / 64] |= UINT64_C(1) << (bit % 64);
	else
		leaf[bit / 64] &= ~(UINT64_C(1) << (bit % 64));
	return 0;
}

static void free_level(void *node, unsigned level)
{
	if (node && level > 0)
		for (unsigned k = 0; k < NODE_SIZE; k++)
			free_level(((void **)node)[k], level - 1);
	free(node);
}

void xsr_bits_free(struct xsr_bits *b)
{
	free_level(b->root, b->levels);
	*b = (struct xsr_bits){0};
}
