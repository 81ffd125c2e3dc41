/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPU section decoder.  Oracle: a body that decodes re-encodes to exactly
 * the same octets (every reserved field and padding is checked zero, so the
 * encoding is canonical).
 */
#include <stdio.h>

#include <xsrelf/vcpu.h>

#include "../common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xsr_vcpu_state st;
	static uint8_t out[sizeof(struct xsr_x86_vcpu) + XSR_MAX_XSAVE + XSR_MAX_MSRS * 16 + 1024];
	const char *why = NULL;
	uint8_t pr[XSR_PRSTATUS_SIZE];
	if (xsr_vcpu_decode(data, size, &st, &why) < 0) {
		if (!why)
			abort();
		return 0;
	}
	if (xsr_vcpu_encoded_size(&st) != size)
		abort();
	int64_t n = xsr_vcpu_encode(&st, out, sizeof(out));
	if (n != (int64_t)size || memcmp(out, data, size)) {
		fprintf(stderr, "decode/encode is not an identity (%lld of %zu octets)\n", (long long)n, size);
		abort();
	}
	uint64_t v;
	(void)xsr_vcpu_msr(&st, 0xc0000080, &v);
	xsr_vcpu_prstatus(&st.r, pr);
	return 0;
}
