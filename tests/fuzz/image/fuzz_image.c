/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seekable image reader: xsr_image_open, then everything a restore or
 * `xsr info` / `xsr cat-page` / `xsr verify` does with the handle.
 */
#include <xsrelf/reader.h>

#include "../common.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xsr_vcpu_state vs;
	static uint8_t page[XSR_PAGE_SIZE];
	char err[256];
	struct xsr_image *img;
	int fd = fuzz_memfd(data, size);
	if (xsr_image_open(&img, fd, err, sizeof(err)) < 0) {
		close(fd);
		return 0;
	}
	const struct xsr_file_header *fh = xsr_image_header(img);
	for (uint32_t i = 0; i < xsr_image_nsections(img); i++) {
		struct xsr_section_info si;
		void *body;
		uint64_t len;
		if (xsr_image_section(img, i, &si) < 0)
			abort();
		sink += fuzz_touch(si.name, strlen(si.name));
		if (xsr_image_read_section(img, i, &body, &len) == 0) {
			sink += fuzz_touch(body, len);
			free(body);
		}
	}
	for (uint32_t v = 0; v < fh->nr_vcpus && v < 4; v++)
		if (xsr_image_vcpu(img, v, &vs) == 0)
			sink += vs.r.rip;
	const struct xsr_memrun *runs = xsr_image_runs(img);
	for (uint32_t r = 0; r < xsr_image_nruns(img) && r < 8; r++) {
		uint64_t pfns[3] = {runs[r].pfn, runs[r].pfn + runs[r].count / 2, runs[r].pfn + runs[r].count - 1};
		struct xsr_index_entry e[4];
		uint32_t flags;
		for (int k = 0; k < 3; k++) {
			if (xsr_image_read_page(img, pfns[k], page, &flags) == 0)
				sink += page[0] + flags;
			if (xsr_image_page_entry(img, pfns[k], e) == 0)
				sink += e[0].hash;
		}
		uint64_t n = runs[r].count < 4 ? runs[r].count : 4;
		if (xsr_image_run_index(img, r, runs[r].count - n, n, e) == 0)
			sink += e[0].flags;
		sink += xsr_image_run_offset(img, r);
	}
	/* Never populated: pfn past the limit and pfn 0 (maybe not populated). */
	(void)xsr_image_read_page(img, XSR_MAX_PFN + 1, page, NULL);
	(void)xsr_image_read_page(img, 0, page, NULL);
	(void)xsr_image_verify(img, NULL, NULL);
	sink += fuzz_touch(xsr_image_error(img), strlen(xsr_image_error(img)));
	xsr_image_close(img);
	close(fd);
	return 0;
}
