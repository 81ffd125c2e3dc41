/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seekable reader behind valid checksums (see ../resum.h): table, memmap,
 * program header and section checks, page reads and verify.
 */
#include <xsrelf/reader.h>

#include "../common.h"
#include "../resum.h"
#include "../structmut.h"

/* Edge values in record fields half of the time (../structmut.h says why). */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	return structure_mutate(data, size, max_size, seed, 0);
}

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xsr_vcpu_state vs;
	static uint8_t page[XSR_PAGE_SIZE];
	char err[256];
	struct xsr_image *img;
	uint8_t *b = malloc(size + 1);
	memcpy(b, data, size);
	resum_image(b, size);
	int fd = fuzz_memfd(b, size);
	free(b);
	if (xsr_image_open(&img, fd, err, sizeof(err)) < 0) {
		return 0;
	}
	for (uint32_t i = 0; i < xsr_image_nsections(img); i++) {
		void *body;
		uint64_t len;
		if (xsr_image_read_section(img, i, &body, &len) == 0) {
			sink += fuzz_touch(body, len);
			free(body);
		}
	}
	for (uint32_t v = 0; v < xsr_image_header(img)->nr_vcpus && v < 4; v++)
		if (xsr_image_vcpu(img, v, &vs) == 0)
			sink += vs.r.rip;
	const struct xsr_memrun *runs = xsr_image_runs(img);
	for (uint32_t r = 0; r < xsr_image_nruns(img) && r < 8; r++) {
		struct xsr_index_entry e;
		uint64_t last = runs[r].pfn + runs[r].count - 1;
		if (xsr_image_read_page(img, runs[r].pfn, page, NULL) == 0)
			sink += page[0];
		if (xsr_image_page_entry(img, last, &e) == 0)
			sink += e.hash;
	}
	(void)xsr_image_verify(img, NULL, NULL);
	xsr_image_close(img);
	return 0;
}
