/*
 * The writer's sparse bit set (libxsrelf/src/bits.c): bits across leaf and node
 * boundaries, at the ends of the range, and clearing that never allocates.
 */
#include <criterion/criterion.h>
#include <stdint.h>

#include "../../libxsrelf/src/internal.h"

static const uint64_t probe[] = {0, 1, 63, 64, 32767, 32768, 32769, (UINT64_C(1) << 24) - 1,
				 UINT64_C(1) << 24, 12345678901, (UINT64_C(1) << 36) - 1};

Test(bits, set_get_clear_over_a_claimed_2e36_range)
{
	struct xsr_bits b;
	xsr_bits_init(&b, UINT64_C(1) << 36);
	cr_assert_eq(b.levels, 3, "2^36 bits = 2^15 per leaf under 3 levels of 2^9, got %u", b.levels);
	for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++)
		cr_assert_eq(xsr_bits_put(&b, probe[k], true), 0);
	for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++) {
		cr_assert(xsr_bits_get(&b, probe[k]), "bit %llu set", (unsigned long long)probe[k]);
		cr_assert_not(xsr_bits_get(&b, probe[k] ^ 2), "bit %llu never set", (unsigned long long)(probe[k] ^ 2));
	}
	cr_assert_eq(xsr_bits_put(&b, 32768, false), 0);
	cr_assert_not(xsr_bits_get(&b, 32768));
	cr_assert(xsr_bits_get(&b, 32767) && xsr_bits_get(&b, 32769), "neighbours keep their bits");
	xsr_bits_free(&b);
	cr_assert_null(b.root);
}

Test(bits, clearing_and_reading_allocate_nothing)
{
	struct xsr_bits b;
	xsr_bits_init(&b, UINT64_C(1) << 40);
	for (uint64_t i = 0; i < 100000; i += 777)
		cr_assert_eq(xsr_bits_put(&b, i << 20, false), 0);
	cr_assert_not(xsr_bits_get(&b, 5));
	cr_assert_null(b.root, "no node made for clears and reads");
	xsr_bits_free(&b);
}

Test(bits, levels_follow_the_range)
{
	struct xsr_bits b;
	xsr_bits_init(&b, 1);
	cr_assert_eq(b.levels, 0);
	xsr_bits_init(&b, 32768);
	cr_assert_eq(b.levels, 0, "one leaf holds 32768 bits");
	xsr_bits_init(&b, 32769);
	cr_assert_eq(b.levels, 1);
	xsr_bits_init(&b, UINT64_MAX);
	cr_assert_eq(b.levels, 6);
	cr_assert_eq(xsr_bits_put(&b, UINT64_MAX, true), 0);
	cr_assert(xsr_bits_get(&b, UINT64_MAX));
	cr_assert_not(xsr_bits_get(&b, UINT64_MAX - 1));
	xsr_bits_free(&b);
}
