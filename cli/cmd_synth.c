/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr synth: a deterministic synthetic domain through the one writer. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "../restore/restore.h"
#include "../save/save.h"
#include "cli.h"

void synth_expect(struct xsr_backend *be, uint64_t *checked, uint64_t *mismatches);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr synth --mem SIZE --vcpus N [--zero-fraction F] [--seed S]\n"
		"                 [--layout seekable|stream] [--compress zstd|lz4] [--json] OUT\n"
		"       xsr synth --mem SIZE --vcpus N [--zero-fraction F] [--seed S] --check IMAGE\n\n"
		"Write a deterministic synthetic domain (page content and registers are a\n"
		"documented function of pfn, vCPU and seed) to OUT ('-' = stdout, streamed).\n"
		"--layout stream (or --stream) writes the streamed layout to a regular file,\n"
		"and so does --compress (only stream page batches are compressed); without\n"
		"--layout a regular file is seekable.  --json prints bytes, pages,\n"
		"zero_pages and elapsed_ms.  --check restores IMAGE into a synthetic domain\n"
		"of the same parameters and reports whether every page and vCPU came back\n"
		"identical (exit 0) or not (exit 1).\n"
		XSR_COMMON_HELP);
}

/*
 * synth --check FILE: restore FILE into the synthetic domain of the same
 * parameters, which compares every page and vCPU as it is loaded.
 */
static int synth_check(struct xsr_backend *be, const char *check, int json, uint32_t nr_vcpus)
{
	char err[512] = "";
	int fd = cli_open_in("synth", check);
	if (fd < 0) {
		be->ops->close(be);
		return XSR_EXIT_FAIL;
	}
	/* the restore engine's progress, as xsr restore shows it, labelled synth */
	struct xsr_progress pg;
	cli_progress_init(&pg, "synth", "pages", json);
	struct xsr_restore_opts ro = {.progress = util_progress_cb, .progress_ctx = &pg};
	struct xsr_restore_stats rs;
	uint64_t checked, bad;
	synth_expect(be, NULL, NULL);
	int rc = restore_guest(be, fd, &ro, &rs, err, sizeof(err));
	util_progress_end(&pg);
	synth_expect(be, &checked, &bad);
	char be_err[256];
	snprintf(be_err, sizeof(be_err), "%llu of %llu pages differ from the synthetic domain (first: %s)",
		 (unsigned long long)bad, (unsigned long long)checked, be->ops->error(be));
	be->ops->close(be);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc < 0 || bad) {
		cli_err("synth", "%s: %s", check, rc < 0 ? err : be_err);
		return XSR_EXIT_DAMAGE;
	}
	printf("%s: %llu pages and %u vCPUs match the synthetic domain\n", check, (unsigned long long)checked, nr_vcpus);
	return XSR_EXIT_OK;
}

int cmd_synth(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mem", required_argument, 0, 'm'}, {"vcpus", required_argument, 0, 'n'},
		{"zero-fraction", required_argument, 0, 'z'}, {"seed", required_argument, 0, 's'},
		{"layout", required_argument, 0, 'L'}, {"stream", no_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
		{"compress", required_argument, 0, 'c'}, {"check", required_argument, 0, 'C'},
		{"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0},
	};
	struct xsr_synth_params p = {.nr_vcpus = 1, .seed = 1};
	int layout = 0, json = 0, compress = 0, c;
	const char *check = NULL;
	int64_t mem = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if ((mem = cli_parse_size(optarg)) < 0 || mem % 4096) {
				cli_err("synth", "--mem %s: need a size that is a multiple of 4 KiB (e.g. 64M)", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		case 'n': {
			char *e;
			errno = 0;
			unsigned long v = strtoul(optarg, &e, 10);
			if (*e || e == optarg || errno || v == 0 || v > XSR_MAX_VCPUS) {
				cli_err("synth", "--vcpus %s: need 1..%u", optarg, XSR_MAX_VCPUS);
				return XSR_EXIT_USAGE;
			}
			p.nr_vcpus = (uint32_t)v;
			break;
		}
		case 'z': {
			char *e;
			p.zero_fraction = strtod(optarg, &e);
			if (*e || p.zero_fraction < 0 || p.zero_fraction > 1) {
				cli_err("synth", "--zero-fraction %s: need a number in 0..1", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		}
		case 's': {
			char *e;
			errno = 0;
			p.seed = strtoull(optarg, &e, 0);
			if (*e || e == optarg || errno || optarg[strspn(optarg, " \t")] == '-') {
				cli_err("synth", "--seed %s: need an integer from 0 to 2^64-1", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		}
		case 'S': layout = XSR_LAYOUT_STREAM; break;
		case 'L':
			if ((layout = cli_parse_layout("synth", "--layout", optarg)) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'j': json = 1; break;
		case 'C': check = optarg; break;
		case 'c':
			if ((compress = cli_parse_compress("synth", optarg)) < 0)
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
	if (mem < 0 || (!check && optind != argc - 1) || (check && optind != argc)) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	if ((compress || layout) && check) {
		cli_err("synth", "--compress and --layout are for writing an image, not --check");
		return XSR_EXIT_USAGE;
	}
	/* Compression is of stream page batches: --compress writes the streamed layout. */
	if (compress && layout == XSR_LAYOUT_SEEKABLE) {
		cli_err("synth", "--compress makes a stream: it does not go with --layout seekable");
		return XSR_EXIT_USAGE;
	}
	if (layout == XSR_LAYOUT_SEEKABLE && !cli_out_regular(argv[optind])) {
		cli_err("synth", "%s: a seekable image needs a regular file", argv[optind]);
		return XSR_EXIT_USAGE;
	}
	p.mem_bytes = (uint64_t)mem;
	struct xsr_backend *be;
	char err[512] = "";
	if (synth_open(&be, &p) < 0) {
		cli_err("synth", "out of memory");
		return XSR_EXIT_FAIL;
	}
	if (check)
		return synth_check(be, check, json, p.nr_vcpus);
	struct xsr_outfile out;
	if (cli_out_open(&out, "synth", argv[optind]) < 0) {
		be->ops->close(be);
		return XSR_EXIT_FAIL;
	}
	struct xsr_progress pg;
	cli_progress_init(&pg, "synth", "pages", json);
	struct xsr_save_opts so = {.kind = XSR_KIND_SAVE,
				   .layout = layout == XSR_LAYOUT_STREAM || compress || cli_out_streamed(&out)
						 ? XSR_LAYOUT_STREAM : 0,
				   .compress = (uint8_t)compress, .progress = util_progress_cb, .progress_ctx = &pg};
	struct xsr_save_stats st;
	int rc = save_guest(be, out.fd, &so, &st, err, sizeof(err));
	util_progress_end(&pg);
	be->ops->close(be);
	if (rc < 0) {
		cli_err("synth", "%s: %s", argv[optind], err);
		cli_out_abort(&out);
		return XSR_EXIT_FAIL;
	}
	if (cli_out_commit(&out, "synth") < 0)
		return XSR_EXIT_FAIL;
	cli_detail("synth", "%s: %s layout%s, %llu pages (%llu zero), %llu octets, %.1f ms", argv[optind],
		   so.layout == XSR_LAYOUT_STREAM ? "streamed" : "seekable", compress ? ", compressed" : "",
		   (unsigned long long)st.pages, (unsigned long long)st.zero_pages, (unsigned long long)st.bytes,
		   st.elapsed_ns / 1e6);
	if (json)
		fprintf(out.is_stdout ? stderr : stdout,
			"{\"bytes\": %s, \"pages\": %s, \"zero_pages\": %s, \"elapsed_ms\": %.3f}\n",
			cli_jdec(st.bytes), cli_jdec(st.pages), cli_jdec(st.zero_pages),
			st.elapsed_ns / 1e6);
	return XSR_EXIT_OK;
}
