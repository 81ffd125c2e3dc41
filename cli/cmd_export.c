/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr export: an image of a Xen guest back in a Xen format (xl, libxc,
 * xc-core), or of a QEMU guest back to a QEMU migration stream.  The
 * conversions are the library's (xsrelf/xen.h, xsrelf/qemu.h); this is the
 * verb around them: options, opening the image (a streamed one is made
 * seekable in a temporary file first), the output file, messages and
 * progress.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <inttypes.h>

#include <xsrelf/libvirt.h>
#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>
#include <xsrelf/xen.h>
#include <xsrelf/xenstore.h>

#include "../save/save.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr export [--format xl|libxc|xc-core|qemu|virsh] [--foreign refuse|drop|keep] [--json] IMAGE OUT\n\n"
		   "Write an image of a Xen guest back in a Xen format, or of a QEMU guest\n"
		   "back to a QEMU migration stream:\n"
		   "  xl       (default) an xl save file, what `xl restore` reads\n"
		   "  libxc    a bare libxc migration stream\n"
		   "  xc-core  an `xl dump-core` file, what crash reads with the guest's vmlinux\n"
		   "  qemu     a QEMU migration stream v3, what `qemu-system-x86_64 -incoming`\n"
		   "           restores (the same -machine and -m as the source)\n"
		   "  virsh    a `virsh save` file, what `virsh restore` reads: the imported\n"
		   "           file's header and domain XML, then the qemu stream, raw\n\n"
		   "xl and libxc need an image imported from an xl save or a libxc stream:\n"
		   "records are replayed as they came; the final pages become PAGE_DATA\n"
		   "records.  Records Xen 4.17 cannot read (never-merged proposals such as\n"
		   "DOMAIN_CONTEXT or the post-copy records, back-channel and unknown records)\n"
		   "make export refuse unless --foreign drop (leave them out, one warning each)\n"
		   "or --foreign keep (write them verbatim).\n\n"
		   "xc-core takes any image of a 64-bit Xen guest: an imported dump-core comes\n"
		   "back byte for byte; an imported save gets its page tables and cr3 put back\n"
		   "to the source's machine frames (from the P2M section), as a restore would;\n"
		   "an `xsr core DOMID` image is written as Xen lays the file out.\n\n"
		   "qemu needs an image imported from a QEMU stream (`xsr import STREAM`): the\n"
		   "device sections, the RAM blocks other than pc.ram and the stream header\n"
		   "are written as they came, pc.ram from the image's memory (changes made to\n"
		   "it since the import included), in the canonical form of\n"
		   "docs/qemu-compat.md.  virsh needs an image imported from a virsh save\n"
		   "file (its header and domain XML travel in the image).\n\n"
		   "--json prints what was written as one JSON object on stdout.\n"
		   "On a terminal, progress is shown on stderr (not with --quiet or --json).\n"
		   XSR_COMMON_HELP);
}

/* The library's warnings (a record left out or refused), one line each. */
static void export_note(void *ctx, const char *msg)
{
	fprintf(stderr, "xsr export: %s\n", cli_esc(msg, 1024));
}

/* The options into @o: 1 to go on, or 0 with the verb's exit status in *@rc (help, usage errors, printed). */
static int parse_opts(int argc, char **argv, struct xsr_xen_export_opts *o, int *qemu, int *json, int *rc)
{
	static const struct option opts[] = {{"format", required_argument, 0, 'f'}, {"foreign", required_argument, 0, 'F'},
					     {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS,
					     {0, 0, 0, 0}};
	int foreign_set = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			*qemu = !strcmp(optarg, "qemu") ? 1 : !strcmp(optarg, "virsh") ? 2 : 0;
			if (*qemu)
				;
			else if (!strcmp(optarg, "xl"))
				o->format = XSR_XEN_FORMAT_XL;
			else if (!strcmp(optarg, "libxc"))
				o->format = XSR_XEN_FORMAT_LIBXC;
			else if (!strcmp(optarg, "xc-core"))
				o->format = XSR_XEN_FORMAT_XC_CORE;
			else {
				cli_err("export", "--format %s: need xl, libxc, xc-core, qemu or virsh", optarg);
				goto usage_err;
			}
			break;
		case 'F':
			foreign_set = 1;
			if (!strcmp(optarg, "refuse"))
				o->foreign = XSR_XEN_FOREIGN_REFUSE;
			else if (!strcmp(optarg, "drop"))
				o->foreign = XSR_XEN_FOREIGN_DROP;
			else if (!strcmp(optarg, "keep"))
				o->foreign = XSR_XEN_FOREIGN_KEEP;
			else {
				cli_err("export", "--foreign %s: need refuse, drop or keep", optarg);
				goto usage_err;
			}
			break;
		case 'j':
			*json = 1;
			break;
		case 'h':
			usage(stdout);
			*rc = XSR_EXIT_OK;
			return 0;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			goto usage_err;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		goto usage_err;
	}
	if ((o->format == XSR_XEN_FORMAT_XC_CORE || *qemu) && foreign_set) {
		cli_err("export", "--foreign is about libxc records; it does not apply to --format %s",
			*qemu == 2 ? "virsh" : *qemu ? "qemu" : "xc-core");
		goto usage_err;
	}
	return 1;
usage_err:
	*rc = XSR_EXIT_USAGE;
	return 0;
}

/*
 * The image IN on @fd, opened seekable: itself, or (a streamed image, stdin)
 * converted into an unlinked temporary file, whose fd goes to *@tmp.
 */
static int open_image(const char *in, int fd, struct xsr_image **img, int *tmp)
{
	char err[1024] = "";
	if (xsr_image_open(img, fd, err, sizeof(err)) == 0)
		return 0;
	char t[] = "/tmp/xsr-export-XXXXXX";
	if (lseek(fd, 0, SEEK_SET) != 0 && fd != STDIN_FILENO) {
		cli_err("export", "%s: %s", in, err);
		return -1;
	}
	if ((*tmp = mkstemp(t)) < 0) {
		cli_err("export", "temporary file: %s", strerror(errno));
		return -1;
	}
	unlink(t);
	struct xsr_convert_opts co = {.layout = XSR_LAYOUT_SEEKABLE};
	char cerr[1024] = "";
	if (xsr_convert(fd, *tmp, &co, cerr, sizeof(cerr)) < 0 || xsr_image_open(img, *tmp, err, sizeof(err)) < 0) {
		cli_err("export", "%s: %s", in, cerr[0] ? cerr : err);
		return -1;
	}
	return 0;
}

int cmd_export(int argc, char **argv)
{
	struct xsr_xen_export_opts o = {.cb = {.note = export_note}};
	int prc, qemu = 0, json = 0;
	if (!parse_opts(argc, argv, &o, &qemu, &json, &prc))
		return prc;
	const char *in = argv[optind], *outp = argv[optind + 1];
	int fd = cli_open_in("export", in), tmp = -1, ret = XSR_EXIT_FAIL;
	if (fd < 0)
		return XSR_EXIT_FAIL;
	struct xsr_image *img = NULL;
	struct xsr_outfile out = {.fd = -1};
	char err[1024] = "";
	struct xsr_progress pg;
	cli_progress_init(&pg, "export", "pages", json);
	o.cb.progress = util_progress_cb;
	o.cb.progress_ctx = &pg;
	if (open_image(in, fd, &img, &tmp) < 0)
		goto done;
	if (cli_out_open(&out, "export", outp) < 0)
		goto done;
	/* A failure may be in reading IN or in writing OUT: messages name both. */
	char *both = NULL;
	if (asprintf(&both, "%s -> %s", in, outp) < 0)
		both = NULL;
	o.name = both ? both : in;
	cli_detail("export", "%s -> %s as %s", in, outp,
		   qemu == 2				? "a virsh save file"
		   : qemu				? "a QEMU migration stream"
		   : o.format == XSR_XEN_FORMAT_XC_CORE ? "an xc_core file"
		   : o.format == XSR_XEN_FORMAT_XL    ? "an xl save"
						      : "a libxc stream");
	/* No foreign format has a place for the domain's own xenstore subtree: say once that it stays behind. */
	void *xs = NULL;
	uint64_t xslen = 0;
	uint32_t xsn = 0;
	if (xsr_image_xenstore(img, &xs, &xslen) == 1 && xsr_xs_check(xs, xslen, &xsn, NULL, err, sizeof(err)) == 0)
		fprintf(stderr, "xsr export: warning: the domain's xenstore subtree (%u keys) is left out: %s has no place for it (xsr restore carries it)\n",
			xsn,
			qemu == 2				? "a virsh save file"
			: qemu					? "QEMU's stream"
			: o.format == XSR_XEN_FORMAT_XC_CORE	? "an xc_core file"
			: o.format == XSR_XEN_FORMAT_XL		? "xl's format"
								: "a libxc stream");
	free(xs);
	err[0] = 0;
	uint64_t t0 = util_now_ns();
	struct xsr_xen_export_stats xst;
	struct xsr_qemu_export_stats qst;
	int xrc;
	struct xsr_libvirt_export_stats lst;
	if (qemu == 2) {
		struct xsr_qemu_export_opts qo = {.cb = o.cb};
		xrc = xsr_libvirt_export(img, out.fd, &qo, &lst, err, sizeof(err));
		qst = lst.qemu;
		qst.bytes = lst.bytes;
	} else if (qemu) {
		struct xsr_qemu_export_opts qo = {.cb = o.cb};
		xrc = xsr_qemu_export(img, out.fd, &qo, &qst, err, sizeof(err));
	} else {
		xrc = xsr_xen_export(img, tmp >= 0 ? tmp : fd, out.fd, &o, &xst, err, sizeof(err));
	}
	util_progress_end(&pg);
	if (xrc < 0)
		cli_err("export", "%s: %s", o.name, err);
	free(both);
	if (xrc < 0) {
		cli_out_abort(&out);
		goto done;
	}
	if (cli_out_commit(&out, "export") < 0)
		goto done;
	double ms = (util_now_ns() - t0) / 1e6;
	cli_detail("export", "%s: done in %.1f ms", outp, ms);
	if (json) {
		/* OUT on stdout: the JSON goes to stderr, as xsr save does */
		FILE *jf = !strcmp(outp, "-") ? stderr : stdout;
		if (qemu)
			fprintf(jf, "{\"format\":\"%s\",\"bytes\":%s,\"pages\":%s,\"page_entries\":%s,"
				    "\"zero_entries\":%s,\"blocks\":%" PRIu32 ",\"sections\":%" PRIu32 ",\"elapsed_ms\":%.3f}\n",
				qemu == 2 ? "virsh" : "qemu", cli_jdec(qst.bytes), cli_jdec(qst.nr_pages), cli_jdec(qst.page_entries),
				cli_jdec(qst.zero_entries), qst.nr_blocks, qst.nr_sections, ms);
		else
			fprintf(jf, "{\"format\":\"%s\",\"bytes\":%s,\"dropped\":%" PRIu32 ",\"elapsed_ms\":%.3f}\n",
				o.format == XSR_XEN_FORMAT_XC_CORE ? "xc-core" : o.format == XSR_XEN_FORMAT_XL ? "xl" : "libxc",
				cli_jdec(xst.bytes), xst.dropped, ms);
	}
	ret = XSR_EXIT_OK;
done:
	xsr_image_close(img);
	if (tmp >= 0)
		close(tmp);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}
