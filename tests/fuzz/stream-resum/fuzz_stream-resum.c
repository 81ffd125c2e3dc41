/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming reader behind valid checksums (see ../resum.h): the semantic
 * checks of every record.  A stream the reader accepts is also converted to
 * a seekable image, which must then verify intact.
 */
#include <stdio.h>

#include <xsrelf/reader.h>

#include "../common.h"
#include "../resum.h"
#include "../structmut.h"

/* Edge values in record fields half of the time (../structmut.h says why). */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	return structure_mutate(data, size, max_size, seed, 1);
}

static volatile uint64_t sink;

static int on_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	sink += fuzz_touch(body, rh->sh_size);
	return 0;
}

static int on_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < n; i++)
		ndata += !(pfns[i] & XSR_PFN_ZERO);
	sink += fuzz_touch(pfns, n * 8) + fuzz_touch(data, (size_t)ndata * XSR_PAGE_SIZE);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xsr_stream_ops ops = {.section = on_section, .pages = on_pages};
	char err[512];
	uint8_t *b = malloc(size + 1);
	memcpy(b, data, size);
	resum_stream(b, size);
	int fd = fuzz_memfd(b, size);
	struct xsr_stream *s;
	if (xsr_stream_open(&s, fd, err, sizeof(err)) < 0)
		abort();
	int rc = xsr_stream_run(s, &ops, NULL);
	const struct xsr_file_header *fh = xsr_stream_header(s);
	/* Conversion makes a sparse file of nr_pages slots: keep it small. */
	int convert = rc == 0 && fh && fh->nr_pages <= 4096;
	xsr_stream_close(s);
	if (convert) {
		int out = fuzz_outfd(0);
		struct xsr_convert_opts o = {.layout = XSR_LAYOUT_SEEKABLE};
		if (lseek(fd, 0, SEEK_SET) < 0)
			abort();
		if (xsr_convert(fd, out, &o, err, sizeof(err)) == 0) {
			struct xsr_image *img;
			if (xsr_image_open(&img, out, err, sizeof(err)) < 0) {
				fprintf(stderr, "converted stream does not open: %s\n", err);
				abort();
			}
			if (xsr_image_verify(img, NULL, NULL) < 0) {
				fprintf(stderr, "converted stream does not verify: %s\n", xsr_image_error(img));
				abort();
			}
			xsr_image_close(img);
		}
	}
	free(b);
	return 0;
}
