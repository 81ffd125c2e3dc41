/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr restore: start a VMM daemon whose VM comes from an image.  The daemon
 * does the restore itself (KVM vCPU ioctls only work in the VM's process);
 * this command waits until the guest runs and reports.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/kvm.h"
#include "../backends/xen.h"
#include "../cli/cli.h"
#include "../save/save.h"
#include "../vmm/vmm.h"
#include "restore.h"

#define VERB "restore"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr restore FILE --control SOCK [--lazy] [--paused] [--json]\n"
		"       xsr restore FILE [--paused] [--json]          (Xen, in dom0)\n"
		"\n"
		"Start a VMM (control socket SOCK, log SOCK.log) running the guest saved in\n"
		"FILE ('-' reads a stream from stdin) and print its pid.  Without --lazy the\n"
		"whole image is loaded (and every page checksum verified) before the guest\n"
		"runs.  --lazy (seekable files only) starts the guest at once: each page is\n"
		"read from FILE on first touch and the rest prefetched in the background;\n"
		"FILE must stay in place until `xsr vm status` shows the prefetch done.\n"
		"--paused leaves the restored guest paused until `xsr vm resume SOCK`.\n"
		"--json prints pid, bytes, pages, zero_pages, elapsed_ms, time_to_running_ms.\n"
		"\n"
		"Without --control, FILE (an image of a Xen domain: xsr save DOMID, or xsr\n"
		"import of an xl save) is restored into Xen through libxl, and the new\n"
		"domain id is printed.\n"
		"\n"
		"On a terminal, progress is shown on stderr (not with --quiet, --json or\n"
		"--lazy).\n"
		XSR_COMMON_HELP);
}

struct restore_ctx {
	int fd;
	int lazy;
	int paused;
	struct xsr_progress pg; /* decided here, drawn by the VMM while it builds */
};

static int restore_build(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	struct restore_ctx *c = arg;
	struct xsr_restore_stats st;
	struct xsr_domain_info info;
	int r;

	memset(&st, 0, sizeof(st));
	r = xsr_kvm_open(&v->be, msg, msglen);
	if (r < 0)
		return r;
	xsr_kvm_set_log(v->be, v->log);
	if (c->paused) {
		/* Held from before the vCPU threads exist: they park at once. */
		v->be->ops->pause(v->be);
		v->user_paused = true;
	}
	if (c->lazy) {
		r = xsr_lazy_restore(v->be, c->fd, v->log, &v->lazy, &st, msg, msglen);
		if (r == 0)
			c->fd = -1; /* the lazy handle reads it until the prefetch ends */
	} else {
		struct xsr_restore_opts o = {.progress = xsr_progress_cb, .progress_ctx = &c->pg};

		r = xsr_restore_domain(v->be, c->fd, &o, &st, msg, msglen);
		xsr_progress_end(&c->pg);
		close(c->fd); /* every octet is in guest memory now */
		c->fd = -1;
	}
	if (r < 0)
		return r;
	if (v->be->ops->describe(v->be, &info) == 0) {
		for (uint32_t i = 0; i < info.nr_runs; i++)
			v->mem_bytes += info.runs[i].count << XSR_PAGE_SHIFT;
	}
	/* Images from other producers have no counters to show; that is fine. */
	if (xsr_vmm_parse_config(v, xsr_kvm_config(v->be)) < 0)
		fprintf(v->log, "restore: no xsr VMM config in the image: status shows no "
				"counters\n");
	snprintf(msg, msglen,
		 "{\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s,\"elapsed_ms\":%.3f}",
		 xsr_jdec(st.bytes), xsr_jdec(st.pages), xsr_jdec(st.zero_pages), st.elapsed_ns / 1e6);
	return 0;
}

/*
 * Without --control the image goes back into Xen (run in dom0): exported as
 * an xl stream into a pipe that libxl_domain_create_restore reads.
 */
static int restore_xen(const char *file, int paused, int json, int lazy)
{
	struct xsr_progress pg;
	struct xsr_domain_stats st = {0};
	char err[1024] = "";
	int fd;
	if (lazy) {
		xsr_err(VERB, "--lazy is for KVM (--control SOCK); a Xen restore loads the whole image");
		return XSR_EXIT_USAGE;
	}
	if (!xsr_xen_supported()) {
		xsr_err(VERB, "--control SOCK is required: this xsr was built without Xen support");
		return XSR_EXIT_USAGE;
	}
	if ((fd = xsr_open_in(VERB, file)) < 0)
		return XSR_EXIT_FAIL;
	xsr_progress_init(&pg, VERB, "pages", json);
	xsr_detail(VERB, "%s into Xen%s", file, paused ? ", paused" : "");
	/* The restore half of the backend (backends/backend.h: restore_domain). */
	struct xsr_backend *be;
	struct xsr_domain_restore_opts ro = {.paused = paused, .progress = xsr_progress_cb, .pctx = &pg};
	int rc = xsr_xen_open_restore(&be, err, sizeof(err));
	if (rc == 0) {
		rc = be->ops->restore_domain(be, fd, &ro, &st);
		if (rc < 0)
			snprintf(err, sizeof(err), "%s", be->ops->error(be));
		be->ops->close(be);
	}
	xsr_progress_end(&pg);
	if (rc < 0) {
		xsr_err(VERB, "%s: Xen restore: %s (a KVM image needs --control SOCK)", file, err);
		close(fd);
		return XSR_EXIT_FAIL;
	}
	close(fd);
	if (json)
		printf("{\"domid\":%u,\"bytes\":%s,\"export_ms\":%.3f,\"libxl_ms\":%.3f,\"elapsed_ms\":%.3f}\n",
		       st.domid, xsr_jdec(st.bytes), st.transcode_ns / 1e6, st.suspend_ns / 1e6, st.elapsed_ns / 1e6);
	else
		printf("%s: restored into Xen domain %u (%" PRIu64 " octets, %.1f ms)%s\n", file, st.domid, st.bytes,
		       st.elapsed_ns / 1e6, paused ? ", paused" : "");
	return XSR_EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'}, {"lazy", no_argument, NULL, 'l'},
	    {"paused", no_argument, NULL, 'p'},	       {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},	       XSR_COMMON_OPTS,
	    {NULL, 0, NULL, 0}};
	struct restore_ctx c = {.fd = -1};
	const char *sock = NULL, *file;
	char msg[2048];
	int json = 0, o;
	pid_t pid;
	uint64_t t0 = xsr_now_ns();

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			sock = optarg;
			break;
		case 'l':
			c.lazy = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			c.paused = 1;
			break;
		case 'h':
			usage(stdout);
			return XSR_EXIT_OK;
		default:
			if (xsr_common_opt(o))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		xsr_err(VERB, "expected one FILE");
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	file = argv[optind];
	if (!sock)
		return restore_xen(file, c.paused, json, c.lazy);
	if (c.lazy && !strcmp(file, "-")) {
		xsr_err(VERB, "--lazy needs a seekable image file, not a stream on stdin");
		return XSR_EXIT_USAGE;
	}
	c.fd = xsr_open_in(VERB, file);
	if (c.fd < 0)
		return XSR_EXIT_FAIL;
	if (c.lazy) {
		struct stat sb;

		if (fstat(c.fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			xsr_err(VERB, "--lazy: %s is not a regular file", file);
			close(c.fd);
			return XSR_EXIT_USAGE;
		}
	}
	xsr_progress_init(&c.pg, VERB, "pages", json);
	c.pg.on &= !c.lazy; /* a lazy restore loads pages after the guest runs */
	xsr_detail(VERB, "%s into a VMM on %s%s", file, sock, c.lazy ? ", lazily" : "");
	if (xsr_vmm_spawn(sock, restore_build, &c, c.pg.on, &pid, msg, sizeof(msg)) < 0) {
		xsr_err(VERB, "%s: %s", file, msg);
		if (c.fd > 0)
			close(c.fd);
		return XSR_EXIT_FAIL;
	}
	if (c.fd > 0)
		close(c.fd);

	double ttr = (xsr_now_ns() - t0) / 1e6;
	if (json) {
		uint64_t bytes = 0, pages = 0, zero = 0;
		const char *e = strstr(msg, "\"elapsed_ms\":");

		xsr_json_u64(msg, "bytes", &bytes);
		xsr_json_u64(msg, "pages", &pages);
		xsr_json_u64(msg, "zero_pages", &zero);
		printf("{\"pid\":%d,\"lazy\":%s,\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s"
		       ",\"elapsed_ms\":%.3f,\"time_to_running_ms\":%.3f}\n",
		       (int)pid, c.lazy ? "true" : "false", xsr_jdec(bytes), xsr_jdec(pages), xsr_jdec(zero),
		       e ? strtod(e + 13, NULL) : 0.0, ttr);
	} else {
		printf("%d\n", (int)pid);
	}
	return XSR_EXIT_OK;
}
