/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Conversion: any input (seekable or stream, detected) through xsr_convert to
 * a seekable image in a memfd, and that image to its paging view (the
 * page-table walker reads the guest's tables, and a PV core's P2M, as they
 * come).  Oracle: whatever conversion accepts, it must write an image that
 * opens and verifies intact.
 */
#include <stdio.h>

#include <xsrelf/reader.h>

#include "../common.h"

static void check(int fd, const char *what)
{
	char err[512];
	struct xsr_image *img;
	if (xsr_image_open(&img, fd, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s does not open: %s\n", what, err);
		abort();
	}
	if (xsr_image_verify(img, NULL, NULL) < 0) {
		fprintf(stderr, "%s does not verify: %s\n", what, xsr_image_error(img));
		abort();
	}
	xsr_image_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	uint64_t nr_pages;
	/*
	 * A valid header may claim up to 2^36 pages; the writer then makes a
	 * sparse file of that size and hashes its index.  That is allowed by the
	 * format (docs/limits.md) but would only time the fuzzer out.
	 */
	if (size >= 128) {
		memcpy(&nr_pages, data + 96, 8);
		if (nr_pages > 4096)
			return 0;
	}
	int in = fuzz_memfd(data, size), out = fuzz_outfd(0);
	struct xsr_convert_opts o = {.layout = XSR_LAYOUT_SEEKABLE};
	if (xsr_convert(in, out, &o, err, sizeof(err)) == 0) {
		check(out, "converted image");
		int pv = fuzz_outfd(1);
		struct xsr_convert_opts po = {.layout = XSR_LAYOUT_SEEKABLE, .paging = 1};
		if (xsr_convert(out, pv, &po, err, sizeof(err)) == 0)
			check(pv, "paging view");
	}
	return 0;
}
