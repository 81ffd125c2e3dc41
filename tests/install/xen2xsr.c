/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program outside the tree: a Xen save (xl save file, libxl or libxc
 * stream, xc_core dump) to an xsrelf image with nothing but the installed
 * libxsrelf.so and its headers, built with `pkg-config --cflags --libs
 * xsrelf` (tests/install/pkgconfig.sh).
 *
 *   xen2xsr [--stream] IN OUT
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/xen.h>

static void progress(void *ctx, uint64_t done, uint64_t total)
{
	*(uint64_t *)ctx = done == total ? total : 0;
}

int main(int argc, char **argv)
{
	int stream = argc == 4 && !strcmp(argv[1], "--stream");
	if (argc != 3 + stream) {
		fprintf(stderr, "usage: xen2xsr [--stream] IN OUT\n");
		return 2;
	}
	const char *in = argv[1 + stream], *out = argv[2 + stream];
	int ifd = open(in, O_RDONLY | O_CLOEXEC);
	/* read-write: a seekable image reads its page index back */
	int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ifd < 0 || ofd < 0) {
		perror(ifd < 0 ? in : out);
		return 1;
	}
	uint64_t pages = 0;
	struct xsr_xen_import_opts o = {.cb = {.progress = progress, .progress_ctx = &pages},
					.layout = stream ? XSR_LAYOUT_STREAM : XSR_LAYOUT_SEEKABLE};
	struct xsr_xen_import_stats st;
	char err[1024] = "";
	int rc = xsr_xen_import_fd(ifd, ofd, &o, &st, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "xen2xsr: %s: %s (%s)\n", in, err, xsr_strerror(rc));
		return 1;
	}
	if (close(ofd) < 0) {
		perror(out);
		return 1;
	}
	printf("%s: %s, %u vCPU(s), %llu pages (progress saw %llu)\n", in, st.format, st.nr_vcpus,
	       (unsigned long long)st.nr_pages, (unsigned long long)pages);
	return pages == st.nr_pages ? 0 : 1;
}
