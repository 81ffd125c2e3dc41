/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU dump import: dump-guest-memory ELF cores and kdump-compressed files,
 * flattened or not, through the library's entry point (xsrelf/qemu_dump.h)
 * on the input's octets in memory.  Oracle: an image the import writes
 * must verify intact.
 */
#include <stdio.h>

#include <xsrelf/qemu_dump.h>
#include <xsrelf/reader.h>

#include "../common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	int out = fuzz_outfd(0);
	if (xsr_qemu_dump_import_mem(data, size, out, NULL, NULL, err, sizeof(err)) == 0) {
		struct xsr_image *img;
		if (xsr_image_open(&img, out, err, sizeof(err)) < 0) {
			fprintf(stderr, "imported image does not open: %s\n", err);
			abort();
		}
		if (xsr_image_verify(img, NULL, NULL) < 0) {
			fprintf(stderr, "imported image does not verify: %s\n", xsr_image_error(img));
			abort();
		}
		xsr_image_close(img);
	}
	return 0;
}
