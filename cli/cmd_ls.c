/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr ls: the extents of populated pages (zero or with data) and the sections of an image. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "inspect.h"
#include "scan.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr ls [--pages | --sections] [--zero | --nonzero] [--range PFN[-PFN]]\n"
		   "              [--limit N] [--json] [--quiet | --verbose] FILE\n\n"
		   "List an image's populated guest pages as extents (consecutive pfns that are\n"
		   "all zero or all with data) and its sections (name, type, offset, size), for\n"
		   "either layout ('-' reads standard input).  --pages or --sections lists only\n"
		   "those; --zero or --nonzero only such extents; --range only the pfns from\n"
		   "PFN to PFN (inclusive); --limit at most N extents.  Section offsets of a\n"
		   "stream are stream offsets.  A stream or a pipe is read through a temporary\n"
		   "file (--verbose says so).  Exit 0, 2 usage, 3 unreadable.\n");
}

struct ls {
	int json, want_pages, want_secs, want_zero, want_data;
	uint64_t lo, hi, limit;
	/* the extent being grown */
	bool have;
	uint64_t first, count;
	bool zero;
	/* totals over the selected range */
	uint64_t pages, data, zero_pages, extents, listed;
};

static void emit(struct ls *l)
{
	if (!l->have)
		return;
	l->have = false;
	if ((l->zero && !l->want_zero) || (!l->zero && !l->want_data))
		return;
	l->extents++;
	if (l->listed >= l->limit)
		return;
	if (l->json) {
		printf("%s{\"first\": ", l->listed ? ", " : "");
		cli_json_hex(stdout, l->first);
		printf(", \"last\": ");
		cli_json_hex(stdout, l->first + l->count - 1);
		printf(", \"count\": ");
		cli_json_dec(stdout, l->count);
		printf(", \"zero\": %s}", l->zero ? "true" : "false");
	} else {
		printf("  0x%09llx  0x%09llx %12llu  %s\n", (unsigned long long)l->first,
		       (unsigned long long)(l->first + l->count - 1), (unsigned long long)l->count,
		       l->zero ? "zero" : "data");
	}
	l->listed++;
}

static void add_page(struct ls *l, uint64_t pfn, bool zero)
{
	if (l->have && zero == l->zero && pfn == l->first + l->count) {
		l->count++;
	} else {
		emit(l);
		l->have = true;
		l->first = pfn;
		l->count = 1;
		l->zero = zero;
	}
	l->pages++;
	if (zero)
		l->zero_pages++;
	else
		l->data++;
}

/* The index of every run, 512 entries at a time: memory does not depend on the image. */
static int list_pages(struct ls *l, struct xsr_image *img, const char *file)
{
	const struct xsr_memrun *runs = xsr_image_runs(img);
	struct xsr_index_entry ent[512];
	if (l->json)
		printf(", \"extents\": [");
	else
		printf("pages:\n  %-11s  %-11s %12s  %s\n", "first", "last", "count", "content");
	for (uint32_t r = 0; r < xsr_image_nruns(img); r++) {
		uint64_t first = runs[r].pfn, last = runs[r].pfn + runs[r].count - 1;
		if (last < l->lo || first > l->hi)
			continue;
		uint64_t from = first < l->lo ? l->lo - first : 0,
			 to = (last > l->hi ? l->hi : last) - first;
		for (uint64_t i = from; i <= to; i += 512) {
			uint64_t n = to - i + 1 < 512 ? to - i + 1 : 512;
			int rc = xsr_image_run_index(img, r, i, n, ent);
			if (rc < 0) {
				cli_err("ls", "%s: %s", file, xsr_image_error(img));
				return rc;
			}
			for (uint64_t k = 0; k < n; k++)
				add_page(l, first + i + k, !(ent[k].flags & XSR_IDX_DATA));
		}
	}
	emit(l);
	if (l->json) {
		printf("], \"extents_total\": ");
		cli_json_dec(stdout, l->extents);
		printf(", \"extents_left_off\": ");
		cli_json_dec(stdout, l->extents - l->listed);
		printf(", \"pages\": ");
		cli_json_dec(stdout, l->pages);
		printf(", \"data_pages\": ");
		cli_json_dec(stdout, l->data);
		printf(", \"zero_pages\": ");
		cli_json_dec(stdout, l->zero_pages);
	} else {
		if (l->listed < l->extents)
			printf("  ... %llu more extent(s) (--limit)\n",
			       (unsigned long long)(l->extents - l->listed));
		printf("  %llu page(s) in range: %llu with data, %llu zero; %llu extent(s) listed "
		       "of %llu\n",
		       (unsigned long long)l->pages, (unsigned long long)l->data,
		       (unsigned long long)l->zero_pages, (unsigned long long)l->listed,
		       (unsigned long long)l->extents);
	}
	return 0;
}

static void list_sections(const struct ls *l, const struct scan *s)
{
	if (l->json)
		printf(", \"sections\": [");
	else
		printf("sections:\n  %-16s %-12s %-6s %-18s %14s\n", "name", "type", "vcpu",
		       s->layout == XSR_LAYOUT_STREAM ? "stream offset" : "offset", "size");
	for (uint32_t i = 0; i < s->nsecs; i++) {
		const struct scan_sec *x = &s->secs[i];
		const char *t = xsr_section_name(x->sh_type);
		if (l->json) {
			printf("%s{\"name\": ", i ? ", " : "");
			cli_json_strn(stdout, x->name, sizeof(x->name));
			printf(", \"type\": ");
			cli_json_str(stdout, t ? t : "unknown");
			printf(", \"sh_type\": \"0x%x\", \"info\": %u, \"offset\": ", x->sh_type,
			       x->info);
			cli_json_hex(stdout, x->offset);
			printf(", \"size\": ");
			cli_json_dec(stdout, x->size);
			printf("}");
			continue;
		}
		char vc[16] = "-";
		if (x->code == XSR_SEC_VCPU)
			snprintf(vc, sizeof(vc), "%u", x->info);
		printf("  %-16s %-12s %-6s 0x%016llx %14llu\n", cli_esc(x->name, sizeof(x->name)),
		       t ? t : "unknown", vc, (unsigned long long)x->offset,
		       (unsigned long long)x->size);
	}
	if (l->json)
		printf("]");
}

/* "PFN" or "PFN-PFN" into [lo, hi]; -1 with a message printed. */
static int parse_range(const char *s, uint64_t *lo, uint64_t *hi)
{
	char buf[64];
	const char *dash = strchr(s, '-');
	if (strlen(s) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", s);
	if (dash)
		buf[dash - s] = 0;
	if (cli_parse_u64("ls", "--range", buf, lo) < 0)
		return -1;
	*hi = *lo;
	if (dash && cli_parse_u64("ls", "--range", dash + 1, hi) < 0)
		return -1;
	if (*hi < *lo || *hi > XSR_MAX_PFN)
		goto bad;
	return 0;
bad:
	cli_err("ls", "--range %s: need PFN or FIRST-LAST, FIRST <= LAST <= 0x%llx", s,
		(unsigned long long)XSR_MAX_PFN);
	return -1;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pages", no_argument, 0, 'p'},
	    {"sections", no_argument, 0, 's'},
	    {"zero", no_argument, 0, 'z'},
	    {"nonzero", no_argument, 0, 'n'},
	    {"range", required_argument, 0, 'r'},
	    {"limit", required_argument, 0, 'l'},
	    {"json", no_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},
	    XSR_COMMON_OPTS,
	    {0, 0, 0, 0},
	};
	struct ls l = {.hi = XSR_MAX_PFN, .limit = UINT64_MAX};
	int pages = 0, secs = 0, zero = 0, nonzero = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pages = 1;
			break;
		case 's':
			secs = 1;
			break;
		case 'z':
			zero = 1;
			break;
		case 'n':
			nonzero = 1;
			break;
		case 'r':
			if (parse_range(optarg, &l.lo, &l.hi) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'l':
			if (cli_parse_u64("ls", "--limit", optarg, &l.limit) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'j':
			l.json = 1;
			break;
		case 'h':
			usage(stdout);
			return XSR_EXIT_OK;
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
	l.want_pages = pages || !secs;
	l.want_secs = secs || !pages;
	l.want_zero = zero || !nonzero;
	l.want_data = nonzero || !zero;
	const char *file = argv[optind];
	struct xsr_anyimg a;
	if (cli_anyimg_open(&a, "ls", file, cli_verbosity > 0))
		return XSR_EXIT_FAIL;
	struct scan s;
	memset(&s, 0, sizeof(s));
	s.want_vcpu = -1;
	s.want_pfn = -1;
	int rc = 0;
	if (l.want_secs) {
		/* The sections as the input holds them (stream offsets for a stream): scan the
		 * input itself. */
		char err[1024] = "";
		if (lseek(a.fd, 0, SEEK_SET) < 0 ||
		    (rc = cli_scan(a.fd, &s, err, sizeof(err))) < 0) {
			cli_err("ls", "%s: %s", file, err[0] ? err : "cannot seek the input");
			rc = -1;
			goto out;
		}
	}
	if (l.json) {
		printf("{\"file\": ");
		cli_json_str(stdout, file);
		printf(", \"layout\": \"%s\", \"runs\": %u",
		       a.layout == XSR_LAYOUT_STREAM ? "stream" : "seekable",
		       xsr_image_nruns(a.img));
	}
	if (l.want_pages && (rc = list_pages(&l, a.img, file)) < 0)
		goto out;
	if (l.want_secs)
		list_sections(&l, &s);
	if (l.json)
		printf("}\n");
out:
	cli_scan_free(&s);
	cli_anyimg_close(&a);
	return rc < 0 ? XSR_EXIT_FAIL : XSR_EXIT_OK;
}
