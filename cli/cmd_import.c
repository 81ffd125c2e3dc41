/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr import: a Xen save file, stream or dump -> an xsrelf image.  The
 * conversion is the library's (xsrelf/xen.h); this is the verb around it:
 * options, the input (a pipe is spooled to a temporary file: the import
 * reads its input twice), the output file, messages and progress.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/xen.h>

#include "../save/save.h"
#include "cli.h"

/* Copy a pipe or other unseekable input to an unlinked temporary file. */
static int spool(int in)
{
	char tmpl[] = "/tmp/xsr-import-XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return -1;
	unlink(tmpl);
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			return fd;
		for (ssize_t o = 0; o < n;) {
			ssize_t m = write(fd, buf + o, (size_t)(n - o));
			if (m <= 0) {
				close(fd);
				return -1;
			}
			o += m;
		}
	}
}

/* The library's notes (the test hooks' "follow test: ..."), as notes of the verb. */
static void import_note(void *ctx, const char *msg)
{
	cli_note("import", "%s", msg);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr import [--layout seekable|stream] IN OUT\n\n"
		   "Read an xl save file, a libxl v2 or libxc v2/v3 migration stream, or an\n"
		   "xl dump-core (xc_core) file ('-' = stdin) and write it as an xsrelf image:\n"
		   "seekable unless --layout stream (or --stream) or OUT is '-', a FIFO or a\n"
		   "device.  Every record is kept: export gives the Xen records back.  On a\n"
		   "terminal, progress is shown on stderr.  See docs/xen-compat.md.\n"
		   XSR_COMMON_HELP);
}

/* IN as a regular file: itself, or a spooled copy of a pipe; -1 with the message printed. */
static int open_input(const char *in, struct stat *sb)
{
	int fd = cli_open_in("import", in);
	if (fd < 0)
		return -1;
	if (fstat(fd, sb) == 0 && S_ISREG(sb->st_mode))
		return fd;
	int t = spool(fd);
	if (fd != STDIN_FILENO)
		close(fd);
	if (t < 0 || fstat(t, sb) < 0) {
		cli_err("import", "%s: cannot copy the input to a temporary file", in);
		if (t >= 0)
			close(t);
		return -1;
	}
	return t;
}

int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {{"layout", required_argument, 0, 'L'}, {"stream", no_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int layout = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'S': layout = XSR_LAYOUT_STREAM; break;
		case 'L':
			if ((layout = cli_parse_layout("import", "--layout", optarg)) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	const char *in = argv[optind], *outp = argv[optind + 1];
	if (layout == XSR_LAYOUT_SEEKABLE && !cli_out_regular(outp)) {
		cli_err("import", "%s: a seekable image needs a regular file", outp);
		return XSR_EXIT_USAGE;
	}
	struct stat sb;
	int fd = open_input(in, &sb);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	int ret = XSR_EXIT_FAIL;
	struct xsr_outfile out = {.fd = -1};
	char err[1024] = "";
	if (cli_out_open(&out, "import", outp) < 0)
		goto done;
	int stream = layout == XSR_LAYOUT_STREAM || cli_out_streamed(&out);
	struct xsr_progress pg;
	cli_progress_init(&pg, "import", "pages", 0);
	cli_detail("import", "%s (%lld octets) -> %s, %s layout", in, (long long)sb.st_size, outp,
		   stream ? "streamed" : "seekable");
	uint64_t t0 = util_now_ns();
	struct xsr_xen_import_opts o = {
		.cb = {.progress = util_progress_cb, .progress_ctx = &pg, .note = import_note},
		.layout = stream ? XSR_LAYOUT_STREAM : 0, /* 0: seekable in out's temporary file */
	};
	int irc = xsr_xen_import_fd(fd, out.fd, &o, NULL, err, sizeof(err));
	util_progress_end(&pg);
	if (irc < 0) {
		cli_err("import", "%s -> %s: %s", in, outp, err);
		cli_out_abort(&out);
		goto done;
	}
	off_t size = cli_out_streamed(&out) ? -1 : lseek(out.fd, 0, SEEK_END);
	if (cli_out_commit(&out, "import") < 0)
		goto done;
	cli_detail("import", "%s: %lld octets in %.1f ms", outp, (long long)size, (util_now_ns() - t0) / 1e6);
	ret = XSR_EXIT_OK;
done:
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}
