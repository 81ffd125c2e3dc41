/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr cat-page: one guest page, verified, to stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "scan.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr cat-page FILE PFN\n\nWrite guest page PFN (decimal or 0x hex) of an image to stdout:\n"
		   "4096 octets, checked against its checksum.  Works on both layouts\n"
		   "('-' = stream on stdin); in a stream the last copy of the page wins.\n"
		   XSR_COMMON_HELP);
}

int cmd_cat_page(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	argv += optind - 1; /* FILE is argv[1], PFN argv[2] */
	char *e;
	errno = 0;
	unsigned long long pfn = strtoull(argv[2], &e, 0);
	if (errno || *e || argv[2][0] == '-' || pfn > XSR_MAX_PFN) {
		cli_err("cat-page", "PFN %s: need a frame number up to 0x%llx", argv[2], (unsigned long long)XSR_MAX_PFN);
		return XSR_EXIT_USAGE;
	}
	if (isatty(STDOUT_FILENO)) {
		cli_err("cat-page", "refusing to write a binary page to a terminal; redirect stdout");
		return XSR_EXIT_USAGE;
	}
	int fd = cli_open_in("cat-page", argv[1]);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	struct scan s;
	memset(&s, 0, sizeof(s));
	s.want_vcpu = -1;
	s.want_pfn = (int64_t)pfn;
	char err[1024] = "";
	int rc = cli_scan(fd, &s, err, sizeof(err));
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc < 0) {
		cli_err("cat-page", "%s: %s", argv[1], err);
		cli_scan_free(&s);
		return XSR_EXIT_FAIL;
	}
	cli_detail("cat-page", "%s: pfn 0x%llx read from a %s image", argv[1], pfn,
		   s.layout == XSR_LAYOUT_SEEKABLE ? "seekable" : "streamed");
	size_t off = 0;
	while (off < sizeof(s.page)) {
		ssize_t w = write(STDOUT_FILENO, s.page + off, sizeof(s.page) - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cli_err("cat-page", "writing stdout: %s", strerror(errno));
			cli_scan_free(&s);
			return XSR_EXIT_FAIL;
		}
		off += (size_t)w;
	}
	cli_scan_free(&s);
	return XSR_EXIT_OK;
}
