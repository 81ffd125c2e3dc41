/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr verify: exit 0 intact, 1 damage found, 2 usage, 3 could not read. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "scan.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr verify [--quiet] [--json] FILE\n\n"
		   "Check every checksum and structure of an xsrelf image ('-' = stream on stdin):\n"
		   "headers, program and section header tables, every section or record, every\n"
		   "page against the index, the record chain, and that all padding is zero.\n"
		   "Exit 0: intact.  Exit 1: damage found (each problem is named with its section\n"
		   "and offset, and pages with their pfn).  Exit 2: usage.  Exit 3: unreadable.\n"
		   "--quiet leaves out the \"FILE: intact\" line: only the exit status tells.\n"
		   "--json prints one object: layout, intact, counts and the findings, each with\n"
		   "its section, offset, pfn and message (see xsr(1), JSON OUTPUT).\n"
		   XSR_COMMON_HELP);
}

/* What verify found, kept for --json (the library lists at most 50 problems). */
struct found {
	const char *file;
	struct xsr_finding *f;
	uint32_t n;
	uint64_t total;
	int oom;
};

static void add(struct found *fd, const struct xsr_finding *f, const char *msg)
{
	cli_err("verify", "%s: %s", fd->file, msg);
	fd->total++;
	struct xsr_finding *n = realloc(fd->f, (fd->n + 1) * sizeof(*n));
	char *m = strdup(msg);
	if (!n || !m) {
		free(m);
		if (n)
			fd->f = n;
		fd->oom = 1;
		return;
	}
	fd->f = n;
	n[fd->n] = *f;
	n[fd->n++].message = m;
}

static void on_finding(void *ctx, const struct xsr_finding *f)
{
	add(ctx, f, f->message);
}

static void print_json(const struct found *fd, int layout, const struct xsr_file_header *fh, uint32_t nsecs)
{
	printf("{\"file\": ");
	cli_json_str(stdout, fd->file);
	printf(", \"layout\": %s, \"intact\": %s, \"counts\": {\"problems\": %llu, \"listed\": %u",
	       layout == XSR_LAYOUT_SEEKABLE ? "\"seekable\"" : layout == XSR_LAYOUT_STREAM ? "\"stream\"" : "null",
	       fd->total ? "false" : "true", (unsigned long long)fd->total, fd->n);
	if (fh)
		printf(", \"sections\": %u, \"vcpus\": %u, \"pages\": %s", nsecs, fh->nr_vcpus, cli_jdec(fh->nr_pages));
	printf("}, \"findings\": [");
	for (uint32_t i = 0; i < fd->n; i++) {
		const struct xsr_finding *f = &fd->f[i];
		printf("%s{\"section\": ", i ? ", " : "");
		if (f->section[0])
			cli_json_strn(stdout, f->section, sizeof(f->section));
		else
			printf("null");
		printf(", \"offset\": %s, \"pfn\": %s, \"code\": %d, \"error\": \"%s\", \"message\": ",
		       f->offset == XSR_NO_OFFSET ? "null" : cli_jhex(f->offset),
		       f->pfn == XSR_NO_PFN ? "null" : cli_jhex(f->pfn), f->code, xsr_strerror(f->code));
		cli_json_str(stdout, f->message);
		printf("}");
	}
	printf("]}\n");
	cli_json_answered();
}

/* A seekable image: every problem, each placed. */
static int verify_image(int fd, struct found *fo, int json)
{
	char err[1024] = "";
	struct xsr_image *img;
	struct xsr_finding where;
	/* Open without the structure check: verify makes it itself and lists every problem. */
	int rc = xsr_image_open_where(&img, fd, XSR_OPEN_NO_CHECK, err, sizeof(err), &where);
	if (rc < 0) {
		if (rc == XSR_E_IO || rc == XSR_E_NOMEM) {
			cli_err("verify", "%s: %s", fo->file, err);
			return -1;
		}
		add(fo, &where, err);
		if (json)
			print_json(fo, XSR_LAYOUT_SEEKABLE, NULL, 0);
		return 1;
	}
	rc = xsr_image_verify_findings(img, on_finding, fo, &fo->total);
	int damaged = 0;
	if (rc < 0 && (rc == XSR_E_NOMEM || rc == XSR_E_IO) && !fo->total) {
		cli_err("verify", "%s: %s", fo->file, xsr_image_error(img));
		damaged = -1;
	} else if (rc < 0) {
		if (fo->total > fo->n)
			cli_err("verify", "%s: (%llu further problems not listed)", fo->file,
				(unsigned long long)(fo->total - fo->n));
		cli_err("verify", "%s: %s", fo->file, xsr_image_error(img));
		damaged = rc == XSR_E_NOMEM ? -1 : 1;
	}
	if (json && damaged >= 0)
		print_json(fo, XSR_LAYOUT_SEEKABLE, xsr_image_header(img), xsr_image_nsections(img) - 1);
	xsr_image_close(img);
	return damaged;
}

/* A stream: the reader stops at the first problem. */
static int verify_stream(int fd, struct found *fo, int json)
{
	char err[1024] = "";
	struct scan s;
	int damaged = 0;
	memset(&s, 0, sizeof(s));
	s.want_vcpu = -1;
	s.want_pfn = -1;
	int rc = cli_scan(fd, &s, err, sizeof(err));
	if (rc == XSR_E_STATE) {
		/* A seekable image on a pipe is not damage: it cannot be read there (exit 3). */
		cli_err("verify", "%s: a seekable image on a pipe: give it as a file (random access is needed)", fo->file);
		damaged = -1;
	} else if (rc == XSR_E_IO || rc == XSR_E_NOMEM) {
		cli_err("verify", "%s: %s", fo->file, err);
		damaged = -1;
	} else if (rc < 0) {
		add(fo, &s.err_at, err);
		damaged = 1;
	} else if (s.trailing) {
		char m[128];
		struct xsr_finding f = {.section = "", .offset = s.stream_end, .pfn = XSR_NO_PFN, .code = XSR_E_FORMAT};
		snprintf(m, sizeof(m), "data after the END record at stream offset 0x%llx", (unsigned long long)s.stream_end);
		add(fo, &f, m);
		damaged = 1;
	}
	if (json && damaged >= 0)
		print_json(fo, XSR_LAYOUT_STREAM, s.fh.nr_vcpus ? &s.fh : NULL, s.nsecs);
	cli_scan_free(&s);
	return damaged;
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS,
					     {0, 0, 0, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	struct found fo = {.file = argv[optind]};
	int fd = cli_open_in("verify", fo.file);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	int damaged;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= XSR_HEADER_END &&
	    pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr) && xsr_sniff_layout(hdr, sizeof(hdr)) == XSR_LAYOUT_SEEKABLE) {
		cli_detail("verify", "%s: a seekable image of %lld octets", fo.file, (long long)sb.st_size);
		damaged = verify_image(fd, &fo, json);
	} else {
		cli_detail("verify", "%s: read as a stream", fo.file);
		damaged = verify_stream(fd, &fo, json);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	for (uint32_t i = 0; i < fo.n; i++)
		free((char *)fo.f[i].message);
	free(fo.f);
	if (damaged < 0)
		return XSR_EXIT_FAIL;
	if (damaged)
		return XSR_EXIT_DAMAGE;
	if (cli_verbosity >= 0 && !json)
		printf("%s: intact\n", fo.file);
	return XSR_EXIT_OK;
}
