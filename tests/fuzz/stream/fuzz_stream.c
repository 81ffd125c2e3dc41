/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming reader: xsr_stream_run over the input with callbacks that read
 * every octet they are handed (so ASan checks the reader's promises), from
 * an fd and from memory (xsr_stream_open_mem, bodies used in place), which
 * must end the same way at the same offset with the same message.
 */
#include <stdio.h>

#include <xsrelf/reader.h>

#include "../common.h"

static volatile uint64_t sink;

static int on_header(void *ctx, const struct xsr_file_header *h)
{
	sink += fuzz_touch(h, sizeof(*h));
	return 0;
}

static int on_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	sink += fuzz_touch(rh, sizeof(*rh)) + fuzz_touch(body, rh->sh_size);
	return 0;
}

static int on_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!(pfns[i] & XSR_PFN_ZERO))
			ndata++;
	sink += fuzz_touch(pfns, n * sizeof(*pfns)) + fuzz_touch(data, (size_t)ndata * XSR_PAGE_SIZE);
	return 0;
}

static int on_end(void *ctx, const struct xsr_end *e)
{
	sink += fuzz_touch(e, sizeof(*e));
	return 0;
}

/* Run @s to its end; the return code, or abort() if the reader broke a promise. */
static int run(struct xsr_stream *s, size_t size)
{
	static const struct xsr_stream_ops ops = {on_header, on_section, on_pages, on_end};
	int rc = xsr_stream_run(s, &ops, NULL);
	/* After END the reader must say "done", never read on. */
	if (rc == 0 && xsr_stream_step(s, &ops, NULL) != 1)
		abort();
	if (xsr_stream_offset(s) > size)
		abort();
	sink += fuzz_touch(xsr_stream_error(s), strlen(xsr_stream_error(s)));
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct xsr_stream *s, *m;
	int fd = fuzz_memfd(data, size);
	if (xsr_stream_open(&s, fd, err, sizeof(err)) < 0 || xsr_stream_open_mem(&m, data, size, err, sizeof(err)) < 0)
		abort();
	int rc = run(s, size), mrc = run(m, size);
	if (rc != mrc || xsr_stream_offset(s) != xsr_stream_offset(m) || strcmp(xsr_stream_error(s), xsr_stream_error(m))) {
		fprintf(stderr, "fd: %d at 0x%llx \"%s\"; memory: %d at 0x%llx \"%s\"\n", rc,
			(unsigned long long)xsr_stream_offset(s), xsr_stream_error(s), mrc,
			(unsigned long long)xsr_stream_offset(m), xsr_stream_error(m));
		abort();
	}
	xsr_stream_close(s);
	xsr_stream_close(m);
	return 0;
}
