/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr convert: seekable <-> stream, losslessly, through the one writer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/paging.h>
#include <xsrelf/reader.h>

#include "../util/clock.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr convert [--layout seekable|stream] [--compress zstd|lz4] IN OUT\n"
		   "       xsr convert --paging [--vcpu N] [--json] IN OUT\n"
		   "       xsr convert --vmcoreinfo FILE IN OUT\n\n"
		   "Copy an image into the other layout ('-' = stdin / stdout).  Without\n"
		   "--layout (or its older spelling --to), a regular-file OUT becomes seekable\n"
		   "and stdout, a FIFO or a device a stream; --compress makes a stream.  Every\n"
		   "page and record is verified on the way; a later copy of a page in a stream\n"
		   "wins.  On a terminal, progress is shown on stderr.\n"
		   "--paging writes a core whose PT_LOADs are vCPU N's guest-virtual mappings\n"
		   "(default vCPU 0), so `gdb GUEST.elf OUT` reads variables at their linked\n"
		   "addresses; IN and OUT must be files.  Mappings contiguous in virtual and\n"
		   "physical space are merged; past 65533 the kernel image (0xffffffff80000000\n"
		   "up) and the direct map are kept first and what is left out is reported\n"
		   "(--json: as JSON).  Xen PV images: Xen's slots are not walked, and a core's\n"
		   "page tables are read through its P2M.  --vmcoreinfo carries a Linux guest's\n"
		   "VMCOREINFO text (as the kernel exports it) as a section and as the\n"
		   "VMCOREINFO note in PT_NOTE, where crash looks for it.\n"
		   XSR_COMMON_HELP);
}

/* --vmcoreinfo text, freed by cmd_convert() whichever way convert_main() returns */
static char *vmci;

static int convert_main(int argc, char **argv)
{
	static const struct option opts[] = {{"layout", required_argument, 0, 'L'}, {"to", required_argument, 0, 't'},
					     {"compress", required_argument, 0, 'c'}, {"paging", no_argument, 0, 'p'},
					     {"vcpu", required_argument, 0, 'n'}, {"vmcoreinfo", required_argument, 0, 'V'},
					     {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
					     XSR_COMMON_OPTS, {0, 0, 0, 0}};
	struct xsr_paging_stats pst;
	struct xsr_convert_opts co = {.paging_stats = &pst};
	int c, json = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'L':
		case 't': {
			int l = cli_parse_layout("convert", c == 't' ? "--to" : "--layout", optarg);
			if (l < 0)
				return XSR_EXIT_USAGE;
			co.layout = (uint8_t)l;
			break;
		}
		case 'c': {
			int z = cli_parse_compress("convert", optarg);
			if (z < 0)
				return XSR_EXIT_USAGE;
			co.compress = (uint8_t)z;
			break;
		}
		case 'p': co.paging = 1; break;
		case 'j': json = 1; break;
		case 'V': {
			char *b;
			size_t l;
			/* a file that cannot be read is a failure (3), like IN (xsr(1), EXIT STATUS) */
			if (cli_read_file("convert", optarg, XSR_MAX_VMCOREINFO, &b, &l) < 0)
				return XSR_EXIT_FAIL;
			free(vmci);
			vmci = b;
			co.vmcoreinfo = b;
			co.vmcoreinfo_len = (uint32_t)l;
			break;
		}
		case 'n':
			if (cli_parse_vcpu("convert", "--vcpu", optarg, &co.paging_vcpu) < 0)
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
	if (json && !co.paging) {
		cli_err("convert", "--json reports a paging view: it goes with --paging");
		return XSR_EXIT_USAGE;
	}
	/* Compression is of stream page batches: --compress means --layout stream. */
	if (co.compress && (co.layout == XSR_LAYOUT_SEEKABLE || co.paging)) {
		cli_err("convert", "--compress makes a stream: it does not go with %s",
			co.paging ? "--paging" : "--layout seekable");
		return XSR_EXIT_USAGE;
	}
	if (co.compress)
		co.layout = XSR_LAYOUT_STREAM;
	if ((co.layout == XSR_LAYOUT_SEEKABLE || co.paging) && !cli_out_regular(outp)) {
		cli_err("convert", "%s: a seekable image needs a regular file", outp);
		return XSR_EXIT_USAGE;
	}
	int fd = cli_open_in("convert", in);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	struct xsr_outfile out;
	if (cli_out_open(&out, "convert", outp) < 0) {
		if (fd != STDIN_FILENO)
			close(fd);
		return XSR_EXIT_FAIL;
	}
	if (cli_out_streamed(&out))
		co.layout = XSR_LAYOUT_STREAM;
	char err[1024] = "";
	struct xsr_progress pg;
	cli_progress_init(&pg, "convert", "pages", json);
	co.progress = util_progress_cb;
	co.progress_ctx = &pg;
	cli_detail("convert", "%s -> %s (%s, %s layout%s)", in, outp,
		   out.is_stdout ? "stdout" : out.in_place ? "written in place" : "a new file",
		   co.paging ? "paging view" : co.layout == XSR_LAYOUT_STREAM ? "streamed" : "seekable",
		   co.compress ? ", compressed" : "");
	uint64_t t0 = util_now_ns();
	int rc = xsr_convert(fd, out.fd, &co, err, sizeof(err));
	util_progress_end(&pg);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc < 0) {
		/* The failure may be in reading IN or in writing OUT: name both. */
		cli_err("convert", "%s -> %s: %s", in, outp, err);
		cli_out_abort(&out);
		return XSR_EXIT_FAIL;
	}
	off_t size = out.is_stdout || out.in_place ? -1 : lseek(out.fd, 0, SEEK_END);
	if (cli_out_commit(&out, "convert") < 0)
		return XSR_EXIT_FAIL;
	if (size >= 0)
		cli_detail("convert", "%s: %lld octets in %.1f ms", outp, (long long)size, (util_now_ns() - t0) / 1e6);
	else
		cli_detail("convert", "%s: done in %.1f ms", outp, (util_now_ns() - t0) / 1e6);
	if (co.paging) {
		cli_paging_report(stdout, &pst, co.paging_vcpu, json);
		if (json)
			putchar('\n');
	}
	return XSR_EXIT_OK;
}

int cmd_convert(int argc, char **argv)
{
	int rc = convert_main(argc, argv);
	free(vmci);
	vmci = NULL;
	return rc;
}
