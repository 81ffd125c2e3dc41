/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seekable image reader: xsr_image_open, then everything a restore or
 * `xsr info` / `xsr cat-page` / `xsr verify` does with the handle.  The
 * same input also goes through xsr_image_open_mem (libFuzzer's buffer is
 * exactly the input: ASan sees a read past its end); both readers must
 * agree on every result and message.
 */
#include <stdio.h>

#include <xsrelf/reader.h>
#include <xsrelf/xenstore.h>

#include "../common.h"

static volatile uint64_t sink;

/* A digest of everything the handle returns, codes and messages included. */
static uint64_t exercise(struct xsr_image *img)
{
	static struct xsr_vcpu_state vs;
	static uint8_t page[XSR_PAGE_SIZE];
	uint64_t acc = 0;
	const struct xsr_file_header *fh = xsr_image_header(img);
	for (uint32_t i = 0; i < xsr_image_nsections(img); i++) {
		struct xsr_section_info si;
		void *body;
		uint64_t len;
		if (xsr_image_section(img, i, &si) < 0)
			abort();
		acc = acc * 31 + fuzz_touch(si.name, strlen(si.name));
		int rc = xsr_image_read_section(img, i, &body, &len);
		acc = acc * 31 + (uint64_t)rc;
		if (rc == 0) {
			acc = acc * 31 + fuzz_touch(body, len);
			free(body);
		}
	}
	/* the domain's xenstore subtree, as a restore and `xsr info` walk it */
	void *xs;
	uint64_t xslen;
	if (xsr_image_xenstore(img, &xs, &xslen) == 1) {
		struct xsr_xs_iter it;
		struct xsr_xs_entry e;
		char err[256];
		if (xsr_xs_iter_init(&it, xs, xslen, err, sizeof(err)) < 0)
			abort(); /* the reader validated it */
		while (xsr_xs_iter_next(&it, &e, err, sizeof(err)) == 1)
			acc = acc * 31 + fuzz_touch(e.path, e.path_len) + fuzz_touch(e.value, e.value_len) + e.nr_perms;
		free(xs);
	}
	for (uint32_t v = 0; v < fh->nr_vcpus && v < 4; v++)
		if (xsr_image_vcpu(img, v, &vs) == 0)
			acc = acc * 31 + vs.r.rip;
	const struct xsr_memrun *runs = xsr_image_runs(img);
	for (uint32_t r = 0; r < xsr_image_nruns(img) && r < 8; r++) {
		uint64_t pfns[3] = {runs[r].pfn, runs[r].pfn + runs[r].count / 2, runs[r].pfn + runs[r].count - 1};
		struct xsr_index_entry e[4];
		uint32_t flags;
		for (int k = 0; k < 3; k++) {
			int rc = xsr_image_read_page(img, pfns[k], page, &flags);
			acc = acc * 31 + (uint64_t)rc;
			if (rc == 0)
				acc = acc * 31 + fuzz_touch(page, sizeof(page)) + flags;
			if (xsr_image_page_entry(img, pfns[k], e) == 0)
				acc = acc * 31 + e[0].hash;
		}
		uint64_t n = runs[r].count < 4 ? runs[r].count : 4;
		if (xsr_image_run_index(img, r, runs[r].count - n, n, e) == 0)
			acc = acc * 31 + e[0].flags;
		acc = acc * 31 + xsr_image_run_offset(img, r);
	}
	/* Never populated: pfn past the limit and pfn 0 (maybe not populated). */
	(void)xsr_image_read_page(img, XSR_MAX_PFN + 1, page, NULL);
	(void)xsr_image_read_page(img, 0, page, NULL);
	acc = acc * 31 + (uint64_t)xsr_image_verify(img, NULL, NULL);
	return acc * 31 + fuzz_touch(xsr_image_error(img), strlen(xsr_image_error(img)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], merr[256];
	struct xsr_image *img, *mem;
	int fd = fuzz_memfd(data, size);
	int rc = xsr_image_open(&img, fd, err, sizeof(err));
	int mrc = xsr_image_open_mem(&mem, data, size, 0, merr, sizeof(merr));
	if (rc != mrc || (rc < 0 && strcmp(err, merr))) {
		fprintf(stderr, "fd: %d \"%s\"; memory: %d \"%s\"\n", rc, rc < 0 ? err : "", mrc, mrc < 0 ? merr : "");
		abort();
	}
	if (rc == 0) {
		uint64_t a = exercise(img), b = exercise(mem);
		if (a != b) {
			fprintf(stderr, "fd and memory readers disagree: \"%s\" / \"%s\"\n", xsr_image_error(img),
				xsr_image_error(mem));
			abort();
		}
		sink += a;
	}
	xsr_image_close(img);
	xsr_image_close(mem);
	return 0;
}
