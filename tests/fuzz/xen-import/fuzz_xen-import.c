/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Xen import: xl save files, libxl v2 / libxc v2-v4 streams and xc_core
 * dumps, through `xsr import IN OUT` itself (the parser is private to
 * xen/import.c).  Oracle: an image import writes must verify intact.
 */
#include <fcntl.h>
#include <stdio.h>

#include <xsrelf/reader.h>

#include "../common.h"

int cmd_import(int argc, char **argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[64];
	char in[64], err[512];
	if (!out[0])
		snprintf(out, sizeof(out), "/dev/shm/xsr-fuzz-import-%d.xsr", (int)getpid());
	int fd = fuzz_memfd(data, size);
	snprintf(in, sizeof(in), "/proc/self/fd/%d", fd);
	char *argv[] = {"import", in, out, NULL};
	unlink(out);
	if (cmd_import(3, argv) == 0) {
		int o = open(out, O_RDONLY | O_CLOEXEC);
		struct xsr_image *img;
		if (o < 0 || xsr_image_open(&img, o, err, sizeof(err)) < 0) {
			fprintf(stderr, "imported image does not open: %s\n", err);
			abort();
		}
		if (xsr_image_verify(img, NULL, NULL) < 0) {
			fprintf(stderr, "imported image does not verify: %s\n", xsr_image_error(img));
			abort();
		}
		xsr_image_close(img);
		close(o);
		unlink(out);
	}
	return 0;
}
