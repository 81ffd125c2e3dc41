/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr save, and what it shares with xsr core (cli/cmd_core.c): the capture
 * of a guest into FILE.  For a VM (vm:SOCK) the verbs are clients of a VMM:
 * only the VMM can read its vCPUs, so the client opens the output
 * (atomically: a temporary file beside FILE) and passes the descriptor over
 * the control socket; the VMM writes the image with save_guest() or
 * core_guest() and replies with statistics; the client then commits
 * (fsync + rename) or removes the temporary file.  An earlier FILE is never
 * touched by a failed save.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/paging.h>
#include <xsrelf/reader.h>

#include "../backends/qemu.h"
#include "../backends/xen.h"
#include "../core/core.h"
#include "../save/save.h"
#include "../vmm/vmm.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr save vm:SOCK|DOMID|qemu:SOCK FILE [--stop] [--live] [--json] [--compress zstd|lz4]\n"
		"                [--qemu-path auto|transcode|shared]\n"
		"\n"
		"Save the guest behind the VMM control socket SOCK to FILE ('-' streams to\n"
		"stdout; so do a FIFO, a device and --compress).  FILE is replaced\n"
		"atomically, keeping its mode (a new FILE is 0600): a failed save\n"
		"leaves an earlier FILE untouched and the guest running.  --stop ends\n"
		"the VM once FILE is safely on disk.  --live copies memory while the guest runs (dirty\n"
		"logging) and pauses only for the last round.  --json prints bytes, pages,\n"
		"zero_pages, pause_ms, elapsed_ms.\n"
		"\n"
		"DOMID (or xen:DOMID) is a Xen domain (run in dom0): libxl suspends it and\n"
		"its stream is transcoded into FILE on the fly.  Without --stop the domain\n"
		"resumes afterwards; with --stop it is destroyed once FILE is safe (xl save).\n"
		"Xen saves are stop-and-copy: --live is refused (no log-dirty here).\n"
		"\n"
		"qemu:SOCK is a running QEMU (started with -qmp unix:SOCK,server=on,wait=off):\n"
		"QEMU migrates into a pipe, the stream is kept in an unlinked file in $TMPDIR\n"
		"(default /var/tmp) and imported into FILE (docs/qemu-compat.md).  The guest\n"
		"is stopped for it, or with --live pre-copied while it runs; it runs on\n"
		"afterwards, or with --stop QEMU quits once FILE is safe.  When pc.ram is a\n"
		"shared memory backend (-object memory-backend-memfd|file,id=pc.ram,share=on,...\n"
		"-machine memory-backend=pc.ram) xsr takes the shared-memory path instead:\n"
		"the guest is stopped, QEMU sends only its device state and other blocks\n"
		"(x-ignore-shared) and xsr reads pc.ram itself.  --qemu-path transcode or\n"
		"shared forces a path (shared is refused, saying why, where it cannot be;\n"
		"auto takes QEMU's stream with --live).  The output names the path taken.\n"
		"\n"
		"On a terminal, progress is shown on stderr (not with --quiet or --json).\n"
		XSR_COMMON_HELP);
}

/* What xsr save / xsr core were asked (capture_opts()). */
struct capture {
	const char *verb;
	int kind; /* XSR_KIND_SAVE or XSR_KIND_CORE */
	void (*usage)(FILE *f);
	const char *target, *file, *compress;
	int stop, live, json, paging;
	int qemu_path; /* XSR_MEMPATH_* (backends/backend.h) */
	uint32_t pvcpu;
	char *vmci; /* --vmcoreinfo text (owned) */
	uint32_t vmci_len;
};

/*
 * The physical core is in @out; the paging view and the VMCOREINFO note are
 * added to a copy (the core engine's core_compose), which replaces it.
 * 0, or -1 with @out removed.
 */
static int rewrite_core(const struct capture *c, struct xsr_outfile *out, struct xsr_paging_stats *pst)
{
	struct xsr_outfile pv;
	struct xsr_core_view cv = {.paging = c->paging, .vcpu = c->pvcpu, .vmcoreinfo = c->vmci,
				   .vmcoreinfo_len = c->vmci_len, .paging_stats = pst};
	char err[512];
	if (cli_out_open(&pv, c->verb, out->path) < 0) {
		cli_out_abort(out);
		return -1;
	}
	if (core_compose(out->fd, pv.fd, &cv, err, sizeof(err)) < 0) {
		cli_err(c->verb, "%s", err);
		cli_out_abort(&pv);
		cli_out_abort(out);
		return -1;
	}
	cli_out_abort(out);
	*out = pv;
	return 0;
}

/*
 * xsr save|core DOMID FILE: the Xen backend.  A core goes through the core
 * engine like a KVM core; a save through the backend's save_domain (see
 * backends/xen.h).
 * Either way FILE is committed (fsync + rename) before the domain is
 * destroyed (save --stop) and a failure leaves it running.
 */
static int xen_capture(const struct capture *c, uint32_t domid)
{
	const char *verb = c->verb, *file = c->file;
	int kind = c->kind, stop = c->stop, json = c->json, paging = c->paging;
	uint32_t pvcpu = c->pvcpu;
	struct xsr_paging_stats pst;
	struct xsr_outfile out;
	char err[1024] = "";
	uint64_t bytes = 0, pages = 0, zero = 0, t_start = util_now_ns();
	double pms = 0, ems = 0, open_ms = 0, xms = 0, commit_ms = 0, finish_ms = 0;
	int overlapped = 0, native = 0;
	if (!xen_supported()) {
		struct xsr_backend *be;
		xen_open(&be, domid, err, sizeof(err));
		cli_err(verb, "domain %u: %s", domid, err);
		return XSR_EXIT_FAIL;
	}
	if (!strcmp(file, "-") && isatty(1)) {
		cli_err(verb, "refusing to write an image to a terminal");
		return XSR_EXIT_USAGE;
	}
	if (cli_out_open(&out, verb, file) < 0)
		return XSR_EXIT_FAIL;
	if (kind == XSR_KIND_CORE) {
		struct xsr_backend *be;
		struct xsr_progress pg;
		cli_progress_init(&pg, verb, "pages", json);
		struct xsr_save_opts o = {.progress = util_progress_cb, .progress_ctx = &pg};
		struct xsr_save_stats st;
		uint64_t t0 = util_now_ns();
		int orc = xen_open(&be, domid, err, sizeof(err));
		open_ms = (util_now_ns() - t0) / 1e6;
		orc = orc < 0 ? orc : core_guest(be, out.fd, &o, &st, err, sizeof(err));
		util_progress_end(&pg);
		if (orc < 0) {
			if (be)
				be->ops->close(be);
			cli_err(verb, "domain %u: %s", domid, err);
			cli_out_abort(&out);
			return XSR_EXIT_FAIL;
		}
		be->ops->close(be);
		bytes = st.bytes, pages = st.pages, zero = st.zero_pages;
		pms = st.pause_ns / 1e6, ems = st.elapsed_ns / 1e6;
		if ((paging || c->vmci) && rewrite_core(c, &out, &pst) < 0)
			return XSR_EXIT_FAIL;
		if (cli_out_commit(&out, verb) < 0)
			return XSR_EXIT_FAIL;
	} else {
		/* The whole-domain save of the backend (backends/backend.h: save_domain, finish). */
		struct xsr_backend *be;
		struct xsr_domain_stats st = {0};
		struct xsr_domain_save_opts so = {.stream = cli_out_streamed(&out), .catch_signals = 1};
		const char *lacks = NULL;
		if (xen_open(&be, domid, err, sizeof(err)) < 0 ||
		    (lacks = backend_lacks(be->ops, XSR_NEED_DOMAIN_SAVE))) {
			if (lacks)
				snprintf(err, sizeof(err), "%s: not supported by this backend", lacks);
			if (be)
				be->ops->close(be);
			cli_err(verb, "domain %u: %s", domid, err);
			cli_out_abort(&out);
			return XSR_EXIT_FAIL;
		}
		/* the domain's xenstore subtree goes in last, with the domain suspended */
		so.end = save_xenstore_end;
		so.end_ctx = be;
		if (be->ops->save_domain(be, out.fd, &so, &st) < 0) {
			snprintf(err, sizeof(err), "%s", be->ops->error(be));
			be->ops->close(be);
			cli_err(verb, "domain %u: %s%s", domid, err,
				st.stays_suspended ? "" : " (the domain keeps running)");
			cli_out_abort(&out);
			/* Interrupted: the temporary file is gone, the status says which signal (xsr(1)). */
			return st.stop_signal ? 128 + st.stop_signal : XSR_EXIT_FAIL;
		}
		uint64_t tc = util_now_ns();
		int committed = cli_out_commit(&out, verb) == 0;
		uint64_t tf = util_now_ns();
		commit_ms = (tf - tc) / 1e6;
		/* The domain is suspended: destroy it only for --stop and only once FILE is safe. */
		if (be->ops->finish(be, committed && stop) < 0)
			cli_err(verb, "domain %u: %s", domid, be->ops->error(be));
		be->ops->close(be);
		finish_ms = (util_now_ns() - tf) / 1e6;
		if (!committed)
			return XSR_EXIT_FAIL;
		bytes = st.bytes;
		ems = st.elapsed_ns / 1e6;
		xms = st.transcode_ns / 1e6;
		pms = st.suspend_ns / 1e6;
		overlapped = st.overlapped;
		native = st.native;
	}
	FILE *sf = !strcmp(file, "-") ? stderr : stdout;
	/* A Xen save is counted by libxl, not page by page: no pages/zero_pages (xsr info has them). */
	double total_ms = (util_now_ns() - t_start) / 1e6;
	if (json && kind == XSR_KIND_CORE) {
		fprintf(sf, "{\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s"
			    ",\"pause_ms\":%.3f,\"elapsed_ms\":%.3f,\"open_ms\":%.3f,\"total_ms\":%.3f,\"domid\":%u",
			cli_jdec(bytes), cli_jdec(pages), cli_jdec(zero), pms, ems, open_ms, total_ms, domid);
		if (paging) {
			fprintf(sf, ",\"paging\":");
			cli_paging_report(sf, &pst, pvcpu, 1);
		}
		fprintf(sf, "}\n");
	} else if (json)
		fprintf(sf, "{\"bytes\":%s,\"suspend_ms\":%.3f,\"transcode_ms\":%.3f,\"elapsed_ms\":%.3f,"
			    "\"commit_ms\":%.3f,\"finish_ms\":%.3f,\"total_ms\":%.3f,\"domid\":%u,\"destroyed\":%s,"
			    "\"overlapped\":%s,\"engine\":\"%s\"}\n",
			cli_jdec(bytes), pms, xms, ems, commit_ms, finish_ms, total_ms, domid, stop ? "true" : "false",
			overlapped ? "true" : "false", native ? "native" : "libxl");
	else if (kind == XSR_KIND_CORE) {
		fprintf(sf, "%s: %" PRIu64 " octets, %" PRIu64 " pages (%" PRIu64 " zero), Xen domain %u paused %.1f ms, %.1f ms in all\n",
			file, bytes, pages, zero, domid, pms, ems);
		if (paging)
			cli_paging_report(sf, &pst, pvcpu, 0);
	} else
		fprintf(sf, "%s: %" PRIu64 " octets, Xen domain %u suspended %.1f ms%s, %.1f ms in all; %s\n", file, bytes,
			domid, pms, native ? "" : " (libxl's save)", ems, stop ? "domain destroyed" : "domain resumed");
	return XSR_EXIT_OK;
}

/*
 * xsr save|core qemu:SOCK FILE: the QEMU backend's save_domain (QEMU's own
 * stream, transcoded; backends/qemu.h).  FILE is committed before QEMU
 * quits (save --stop); a core only adds the paging view or VMCOREINFO, as
 * for the other targets, and never stops the guest.
 */
static int qemu_capture(const struct capture *c, const char *sock)
{
	struct xsr_backend *be;
	struct xsr_domain_stats st = {0};
	struct xsr_paging_stats pst;
	struct xsr_outfile out;
	char err[1024];
	uint64_t t_start = util_now_ns();

	if (!strcmp(c->file, "-") && isatty(1)) {
		cli_err(c->verb, "refusing to write an image to a terminal");
		return XSR_EXIT_USAGE;
	}
	if (qemu_open(&be, sock, err, sizeof(err)) < 0) {
		cli_err(c->verb, "%s", err);
		return XSR_EXIT_FAIL;
	}
	if (cli_out_open(&out, c->verb, c->file) < 0) {
		be->ops->close(be);
		return XSR_EXIT_FAIL;
	}
	struct xsr_domain_save_opts so = {.stream = cli_out_streamed(&out) || strcmp(c->compress, "none"),
					  .compress = !strcmp(c->compress, "zstd")  ? XSR_COMPRESS_ZSTD
						      : !strcmp(c->compress, "lz4") ? XSR_COMPRESS_LZ4
										    : XSR_COMPRESS_NONE,
					  .live = c->live,
					  .catch_signals = 1,
					  .memory_path = c->qemu_path};
	cli_detail(c->verb, "QEMU at %s -> %s (%s)", sock, c->file, so.stream ? "streamed" : "seekable");
	if (be->ops->save_domain(be, out.fd, &so, &st) < 0) {
		cli_err(c->verb, "QEMU at %s: %s%s", sock, be->ops->error(be),
			st.stays_suspended ? " (the guest stays paused: resuming it failed)" : "");
		be->ops->close(be);
		cli_out_abort(&out);
		return st.stop_signal ? 128 + st.stop_signal : XSR_EXIT_FAIL;
	}
	int ok = (!(c->paging || c->vmci) || rewrite_core(c, &out, &pst) == 0) && cli_out_commit(&out, c->verb) == 0;
	/* QEMU leaves the guest paused after a migration: resume it, or quit QEMU for --stop once FILE is safe */
	if (be->ops->finish(be, ok && c->stop) < 0)
		cli_err(c->verb, "QEMU at %s: %s", sock, be->ops->error(be));
	be->ops->close(be);
	if (!ok)
		return XSR_EXIT_FAIL;
	FILE *sf = !strcmp(c->file, "-") ? stderr : stdout;
	double pms = st.suspend_ns / 1e6, xms = st.transcode_ns / 1e6, ems = st.elapsed_ns / 1e6;
	double total_ms = (util_now_ns() - t_start) / 1e6;
	if (c->json) {
		fprintf(sf, "{\"bytes\":%s,\"pause_ms\":%.3f,\"transcode_ms\":%.3f,\"elapsed_ms\":%.3f,\"total_ms\":%.3f,"
			    "\"live\":%s,\"stopped\":%s,\"path\":\"%s\",\"path_why\":",
			cli_jdec(st.bytes), pms, xms, ems, total_ms, c->live && !st.shared_memory ? "true" : "false",
			c->stop ? "true" : "false", CLI_QEMU_PATH_NAME(st.shared_memory));
		cli_json_str(sf, st.path_why);
		if (c->paging) {
			fprintf(sf, ",\"paging\":");
			cli_paging_report(sf, &pst, c->pvcpu, 1);
		}
		fprintf(sf, "}\n");
	} else if (sf != stderr || cli_verbosity >= 0) {
		fprintf(sf, "%s: %" PRIu64 " octets, %s path (%s), guest paused %.1f ms%s, import %.1f ms, %.1f ms in all%s\n",
			c->file, st.bytes, CLI_QEMU_PATH_NAME(st.shared_memory),
			st.shared_memory ? "pc.ram read from its shared memory, the rest from QEMU's stream" : "QEMU's stream",
			pms, c->live && !st.shared_memory ? " (QEMU's downtime)" : "", xms, ems, c->stop ? "; QEMU quit" : "");
		if (st.path_why[0])
			cli_detail(c->verb, "%s path: %s", CLI_QEMU_PATH_NAME(st.shared_memory), st.path_why);
		if (c->paging)
			cli_paging_report(sf, &pst, c->pvcpu, 0);
	}
	return XSR_EXIT_OK;
}

/* One option of xsr save / core: -1 to go on, else the exit status. */
static int capture_opt(struct capture *c, int o)
{
	switch (o) {
	case 's':
		if (c->kind == XSR_KIND_CORE) {
			cli_err(c->verb, "--stop: a core never stops the guest");
			return XSR_EXIT_USAGE;
		}
		c->stop = 1;
		return -1;
	case 'j':
		c->json = 1;
		return -1;
	case 'L':
		c->live = 1;
		return -1;
	case 'V': {
		size_t l;
		if (c->kind != XSR_KIND_CORE) {
			cli_err(c->verb, "--vmcoreinfo is for xsr core");
			return XSR_EXIT_USAGE;
		}
		free(c->vmci);
		c->vmci = NULL;
		/* a file that cannot be read is a failure (3), like an input (xsr(1), EXIT STATUS) */
		if (cli_read_file(c->verb, optarg, XSR_MAX_VMCOREINFO, &c->vmci, &l) < 0)
			return XSR_EXIT_FAIL;
		c->vmci_len = (uint32_t)l;
		return -1;
	}
	case 'p':
	case 'n':
		if (c->kind != XSR_KIND_CORE) {
			cli_err(c->verb, "--paging and --vcpu are for xsr core");
			return XSR_EXIT_USAGE;
		}
		if (o == 'n') {
			char *e;
			unsigned long n = strtoul(optarg, &e, 0);
			if (*e || e == optarg || strchr(optarg, '-') || n >= XSR_MAX_VCPUS) {
				cli_err(c->verb, "--vcpu %s: need a vCPU number", optarg);
				return XSR_EXIT_USAGE;
			}
			c->pvcpu = (uint32_t)n;
		}
		c->paging |= o == 'p';
		return -1;
	case 'c':
		if (strcmp(optarg, "zstd") && strcmp(optarg, "lz4") && strcmp(optarg, "none")) {
			cli_err(c->verb, "--compress %s: none, zstd or lz4", optarg);
			return XSR_EXIT_USAGE;
		}
		c->compress = optarg;
		return -1;
	case CLI_OPT_QEMU_PATH:
		return cli_qemu_path(c->verb, optarg, &c->qemu_path) < 0 ? XSR_EXIT_USAGE : -1;
	case 'h':
		c->usage(stdout);
		return XSR_EXIT_OK;
	default:
		if (cli_common_opt(o))
			return -1;
		c->usage(stderr);
		return XSR_EXIT_USAGE;
	}
}

/* The command line into @c: -1 to go on, else the exit status. */
static int capture_opts(struct capture *c, int argc, char **argv)
{
	static const struct option opts[] = {{"stop", no_argument, NULL, 's'},
					     {"live", no_argument, NULL, 'L'},
					     {"json", no_argument, NULL, 'j'},
					     {"compress", required_argument, NULL, 'c'},
					     {"paging", no_argument, NULL, 'p'},
					     {"vcpu", required_argument, NULL, 'n'},
					     {"vmcoreinfo", required_argument, NULL, 'V'},
					     {"qemu-path", required_argument, NULL, CLI_OPT_QEMU_PATH},
					     {"help", no_argument, NULL, 'h'},
					     XSR_COMMON_OPTS,
					     {NULL, 0, NULL, 0}};
	int o, rc;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1)
		if ((rc = capture_opt(c, o)) >= 0)
			return rc;
	if (argc - optind != 2) {
		cli_err(c->verb, "expected a target (vm:SOCK, DOMID or qemu:SOCK) and FILE");
		c->usage(stderr);
		return XSR_EXIT_USAGE;
	}
	c->target = argv[optind];
	c->file = argv[optind + 1];
	if ((c->paging || c->vmci) && !cli_out_regular(c->file)) {
		cli_err(c->verb, "%s: --paging and --vmcoreinfo need a regular file", c->file);
		return XSR_EXIT_USAGE;
	}
	return -1;
}

/* The summary of a VM capture, from the VMM's @reply. */
static void vm_report(const struct capture *c, const char *reply, const struct xsr_paging_stats *pst)
{
	uint64_t bytes = 0, pages = 0, zero = 0;

	vmm_json_u64(reply, "bytes", &bytes);
	vmm_json_u64(reply, "pages", &pages);
	vmm_json_u64(reply, "zero_pages", &zero);
	/* With FILE '-' stdout carries the image: the summary goes to stderr. */
	FILE *sf = !strcmp(c->file, "-") ? stderr : stdout;
	const char *pause_ms = strstr(reply, "\"pause_ms\":");
	const char *elapsed_ms = strstr(reply, "\"elapsed_ms\":");
	double pms = pause_ms ? strtod(pause_ms + 11, NULL) : 0;
	double ems = elapsed_ms ? strtod(elapsed_ms + 13, NULL) : 0;

	if (c->json) {
		fprintf(sf,
			"{\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s,\"pause_ms\":%.3f,\"elapsed_ms\":%.3f",
			cli_jdec(bytes), cli_jdec(pages), cli_jdec(zero), pms, ems);
		if (c->paging) {
			fprintf(sf, ",\"paging\":");
			cli_paging_report(sf, pst, c->pvcpu, 1);
		}
		fprintf(sf, "}\n");
	} else if (sf != stderr || cli_verbosity >= 0) {
		/* (with FILE '-' the summary is a note: --quiet drops it) */
		fprintf(sf,
			"%s: %" PRIu64 " octets, %" PRIu64 " pages (%" PRIu64
			" zero), guest paused %.1f ms, %.1f ms in all%s\n",
			c->file, bytes, pages, zero, pms, ems, c->stop ? "; VM stopped" : "");
		if (c->paging)
			cli_paging_report(sf, pst, c->pvcpu, 0);
	}
}

/*
 * xsr save|core vm:SOCK FILE: the VMM writes the image into the descriptor
 * we pass it, then FILE is committed (and the VM stopped for save --stop).
 */
static int vm_capture(const struct capture *c, const char *sock)
{
	struct xsr_paging_stats pst;
	struct xsr_outfile out;
	struct xsr_progress pg;
	char req[256], *reply = NULL;
	int fds[2], nfds = 1, rc = XSR_EXIT_FAIL;

	if (!strcmp(c->file, "-") && isatty(1)) {
		cli_err(c->verb, "refusing to write an image to a terminal");
		return XSR_EXIT_USAGE;
	}
	if (cli_out_open(&out, c->verb, c->file) < 0)
		return XSR_EXIT_FAIL;
	fds[0] = out.fd;
	/* The VMM draws the progress on our stderr (xsr_progress rules: a tty, not --quiet or --json). */
	cli_progress_init(&pg, c->verb, "pages", c->json);
	if (pg.on)
		fds[nfds++] = 2;
	/*
	 * Stdout, a FIFO or a device gets a stream, as '-' promises: stdout
	 * redirected to a file is write-only and a seekable image is read back.
	 */
	int streamed = cli_out_streamed(&out) || strcmp(c->compress, "none");
	cli_detail(c->verb, "%s -> %s (%s)", c->target, c->file, streamed ? "streamed" : "seekable");
	snprintf(req, sizeof(req), "save kind=%s hold=%d progress=%d compress=%s live=%d layout=%s",
		 c->kind == XSR_KIND_CORE ? "core" : "save", c->stop, nfds > 1, c->compress, c->live,
		 streamed ? "stream" : "auto");
	if (cli_ctl_call(c->verb, sock, req, fds, nfds, &reply) < 0) {
		cli_out_abort(&out);
		free(reply);
		return XSR_EXIT_FAIL;
	}
	/* The VMM wrote the physical core; the paging view / VMCOREINFO note is added to a copy. */
	if ((c->paging || c->vmci) && rewrite_core(c, &out, &pst) < 0)
		goto done;
	if (cli_out_commit(&out, c->verb) < 0) {
		char *r2 = NULL;

		/* The image is not safe: the guest must not stay stopped for it. */
		if (c->stop)
			cli_ctl_call(c->verb, sock, "resume", NULL, 0, &r2);
		free(r2);
		goto done;
	}
	if (c->stop) {
		char *r2 = NULL;
		int r = cli_ctl_call(c->verb, sock, "stop", NULL, 0, &r2);

		free(r2);
		if (r < 0)
			goto done;
	}
	vm_report(c, reply, &pst);
	rc = XSR_EXIT_OK;
done:
	free(reply);
	return rc;
}

int cli_capture_main(const char *verb, int kind, void (*usage)(FILE *f), int argc, char **argv)
{
	struct capture c = {.verb = verb, .kind = kind, .usage = usage, .compress = "none"};
	struct xsr_target t;
	int rc = capture_opts(&c, argc, argv);

	if (rc >= 0)
		goto out;
	rc = XSR_EXIT_USAGE;
	if (cli_target_resolve(verb, c.target, XSR_TARGET_VM | XSR_TARGET_XEN | XSR_TARGET_QEMU, &t) < 0)
		goto out;
	if (c.qemu_path && t.kind != XSR_TARGET_QEMU) {
		cli_err(verb, "%s: --qemu-path is for qemu:SOCK targets", c.target);
		goto out;
	}
	if (t.kind == XSR_TARGET_QEMU) {
		rc = qemu_capture(&c, t.sock);
	} else if (t.kind == XSR_TARGET_XEN) {
		if (c.live || strcmp(c.compress, "none")) {
			cli_err(verb, "%s: --live and --compress are for vm:SOCK targets (a Xen %s is stop-and-copy, uncompressed)",
				c.target, verb);
			goto out;
		}
		rc = xen_capture(&c, t.domid);
	} else {
		rc = vm_capture(&c, t.sock);
	}
out:
	free(c.vmci);
	return rc;
}

int cmd_save(int argc, char **argv)
{
	return cli_capture_main("save", XSR_KIND_SAVE, usage, argc, argv);
}
