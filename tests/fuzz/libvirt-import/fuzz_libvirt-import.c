/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt save import: `virsh save` files (header, domain XML, a QEMU
 * stream raw or through gzip, bzip2, xz or lzop) through the library's
 * entry point (xsrelf/libvirt.h) on the input's octets in memory.
 * Oracle: an image the import writes must verify intact.
 *
 * Bounds: max_ram as qemu-import's; max_stream 4 MiB, so that a
 * decompression bomb (regress/bomb-*) costs at most 4 MiB of inflating and
 * temporary file per execution and is refused (XSR_E_LIMIT) or refused
 * earlier for not inflating to a QEMU stream.  The temporary file goes to
 * /dev/shm where there is one (tmpfs: no journal, no disk).
 */
#include <stdio.h>
#include <unistd.h>

#include <xsrelf/libvirt.h>
#include <xsrelf/reader.h>

#include "../common.h"

#define MAX_STREAM (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *tmpdir;
	if (!tmpdir)
		tmpdir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[1024];
	int out = fuzz_outfd(0);
	struct xsr_libvirt_import_opts o = {.qemu = {.max_ram = 256u * 4096}, .tmpdir = tmpdir, .max_stream = MAX_STREAM};
	struct xsr_libvirt_import_stats st;
	int rc = xsr_libvirt_import_mem(data, size, out, &o, &st, err, sizeof(err));
	if (st.stream_size > MAX_STREAM) {
		fprintf(stderr, "the stream inflated to %llu octets past max_stream: %s\n", (unsigned long long)st.stream_size,
			rc ? err : "(imported)");
		abort();
	}
	if (rc == 0) {
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
