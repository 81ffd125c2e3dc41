/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr verify: exit 0 intact, 1 damage found, 2 usage, 3 could not read. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "scan.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr verify [--quiet] FILE\n\n"
		   "Check every checksum and structure of an xsrelf image ('-' = stream on stdin):\n"
		   "headers, program and section header tables, every section or record, every\n"
		   "page against the index, the record chain, and that all padding is zero.\n"
		   "Exit 0: intact.  Exit 1: damage found (each problem is named with its section\n"
		   "and offset, and pages with their pfn).  Exit 2: usage.  Exit 3: unreadable.\n"
		   "--quiet leaves out the \"FILE: intact\" line: only the exit status tells.\n"
		   XSR_COMMON_HELP);
}

static void report(void *ctx, const char *msg)
{
	xsr_err("verify", "%s: %s", (const char *)ctx, msg);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (xsr_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	const char *file = argv[optind];
	int fd = xsr_open_in("verify", file);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	char err[1024] = "";
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	int rc, damaged = 0;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= XSR_HEADER_END &&
	    pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr) && hdr[XSR_EHDR_SIZE + 12] == XSR_LAYOUT_SEEKABLE) {
		struct xsr_image *img;
		xsr_detail("verify", "%s: a seekable image of %lld octets", file, (long long)sb.st_size);
		/* Open without the structure check: verify makes it itself and lists every problem. */
		rc = xsr_image_open_flags(&img, fd, XSR_OPEN_NO_CHECK, err, sizeof(err));
		if (rc < 0) {
			xsr_err("verify", "%s: %s", file, err);
			damaged = rc == XSR_E_IO || rc == XSR_E_NOMEM ? -1 : 1;
		} else {
			rc = xsr_image_verify(img, report, (void *)file);
			if (rc < 0) {
				xsr_err("verify", "%s: %s", file, xsr_image_error(img));
				damaged = rc == XSR_E_NOMEM ? -1 : 1;
			}
			xsr_image_close(img);
		}
	} else {
		struct scan s;
		memset(&s, 0, sizeof(s));
		s.want_vcpu = -1;
		s.want_pfn = -1;
		xsr_detail("verify", "%s: read as a stream", file);
		rc = xsr_scan(fd, &s, err, sizeof(err));
		if (rc == XSR_E_STATE) {
			/* A seekable image on a pipe is not damage: it cannot be read there (exit 3). */
			xsr_err("verify", "%s: a seekable image on a pipe: give it as a file (random access is needed)", file);
			damaged = -1;
		} else if (rc < 0) {
			xsr_err("verify", "%s: %s", file, err);
			damaged = rc == XSR_E_IO || rc == XSR_E_NOMEM ? -1 : 1;
		} else if (s.trailing) {
			xsr_err("verify", "%s: data after the END record at stream offset 0x%llx", file,
				(unsigned long long)s.stream_end);
			damaged = 1;
		}
		xsr_scan_free(&s);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (damaged < 0)
		return XSR_EXIT_FAIL;
	if (damaged)
		return XSR_EXIT_DAMAGE;
	if (xsr_verbosity >= 0)
		printf("%s: intact\n", file);
	return XSR_EXIT_OK;
}
