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

#include "../backends/qemu.h"
#include "../backends/xen.h"
#include "../restore/restore.h"
#include "../vmm/vmm.h"
#include "cli.h"

#define VERB "restore"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr restore FILE --control SOCK [--lazy] [--paused] [--json]\n"
		"       xsr restore FILE [--paused] [--json]          (Xen, in dom0)\n"
		"       xsr restore FILE --qemu [--paused] [--json] [--qemu-path auto|transcode|shared]\n"
		"                   -- QEMU-COMMAND...\n"
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
		"With --qemu, FILE (a seekable image imported from QEMU: xsr import of a\n"
		"migration stream, xsr save qemu:SOCK) is exported as QEMU's migration stream\n"
		"into a new QEMU started as QEMU-COMMAND (the program and the guest's options,\n"
		"as when it was saved: machine, -m, devices) plus -incoming defer and a\n"
		"private QMP socket; its pid is printed and it runs on after xsr exits (give\n"
		"it your own -qmp to reach it later).  When QEMU-COMMAND puts pc.ram on a\n"
		"shared memory backend (-object memory-backend-memfd|file,id=pc.ram,share=on,...\n"
		"-machine memory-backend=pc.ram) xsr writes the image's memory into it\n"
		"itself and QEMU gets only the device state and other blocks (x-ignore-shared):\n"
		"the shared-memory path.  --qemu-path shared insists on it and, if\n"
		"QEMU-COMMAND names no memory-backend=, adds a memfd backend for pc.ram;\n"
		"transcode always sends QEMU's stream.  The output names the path taken.\n"
		"\n"
		"On a terminal, progress is shown on stderr (not with --quiet, --json or\n"
		"--lazy).\n"
		XSR_COMMON_HELP);
}

struct restore_ctx {
	struct xsr_vmm_image img; /* what the VMM loads (vmm/build.c) */
	int paused;
	struct xsr_progress pg; /* decided here, drawn by the VMM while it builds */
};

/* Runs in the VMM daemon (vmm_spawn): the shared builder, then the reply for the parent. */
static int restore_build(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	struct restore_ctx *c = arg;
	const struct xsr_vmm_load l = {.what = "restore", .paused = c->paused, .load = vmm_load_image,
				       .ctx = &c->img};
	int r = vmm_build_kvm(v, &l, msg, msglen);

	util_progress_end(&c->pg);
	if (r < 0)
		return r;
	snprintf(msg, msglen, "{\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s,\"elapsed_ms\":%.3f}",
		 cli_jdec(c->img.st.bytes), cli_jdec(c->img.st.pages), cli_jdec(c->img.st.zero_pages),
		 c->img.st.elapsed_ns / 1e6);
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
		cli_err(VERB, "--lazy is for KVM (--control SOCK); a Xen restore loads the whole image");
		return XSR_EXIT_USAGE;
	}
	if (!xen_supported()) {
		cli_err(VERB, "--control SOCK is required: this xsr was built without Xen support");
		return XSR_EXIT_USAGE;
	}
	if ((fd = cli_open_in(VERB, file)) < 0)
		return XSR_EXIT_FAIL;
	cli_progress_init(&pg, VERB, "pages", json);
	cli_detail(VERB, "%s into Xen%s", file, paused ? ", paused" : "");
	/* The restore half of the backend (backends/backend.h: restore_domain). */
	struct xsr_backend *be;
	/* paused until the image's xenstore keys are back (restore_xenstore) */
	struct xsr_domain_restore_opts ro = {.paused = 1, .progress = util_progress_cb, .pctx = &pg};
	struct xsr_xenstore_stats xst = {0};
	int found = 0;
	int rc = xen_open_restore(&be, err, sizeof(err));
	if (rc == 0) {
		rc = be->ops->restore_domain(be, fd, &ro, &st);
		if (rc < 0)
			snprintf(err, sizeof(err), "%s", be->ops->error(be));
		else if ((rc = restore_xenstore(be, fd, &xst, &found, err, sizeof(err))) < 0)
			be->ops->finish(be, 1); /* the image is still there: no half-restored domain stays */
		else if (!paused && (rc = be->ops->resume(be)) < 0)
			snprintf(err, sizeof(err), "unpausing domain %u: %s (it stays paused)", st.domid,
				 be->ops->error(be));
		be->ops->close(be);
	}
	util_progress_end(&pg);
	if (rc < 0) {
		cli_err(VERB, "%s: Xen restore: %s (a KVM image needs --control SOCK)", file, err);
		close(fd);
		return XSR_EXIT_FAIL;
	}
	close(fd);
	if (found)
		cli_detail(VERB, "xenstore: %u keys written, %u left as libxl made them, %u of the toolstack's skipped",
			   xst.written, xst.kept, xst.skipped);
	if (json)
		printf("{\"domid\":%u,\"bytes\":%s,\"export_ms\":%.3f,\"libxl_ms\":%.3f,\"elapsed_ms\":%.3f,"
		       "\"xenstore_written\":%u,\"xenstore_kept\":%u}\n",
		       st.domid, cli_jdec(st.bytes), st.transcode_ns / 1e6, st.suspend_ns / 1e6, st.elapsed_ns / 1e6,
		       xst.written, xst.kept);
	else
		printf("%s: restored into Xen domain %u (%" PRIu64 " octets, %.1f ms)%s\n", file, st.domid, st.bytes,
		       st.elapsed_ns / 1e6, paused ? ", paused" : "");
	return XSR_EXIT_OK;
}

/* With --qemu: a new QEMU, @qargv its command, takes the image as an incoming migration. */
static int restore_qemu(const char *file, int paused, int json, int qpath, char **qargv, int qargc)
{
	struct xsr_backend *be;
	struct xsr_domain_stats st = {0};
	struct xsr_domain_restore_opts ro = {.paused = paused, .memory_path = qpath};
	uint64_t ram = 0;
	char err[1024] = "";
	pid_t pid = 0;
	int fd = cli_open_in(VERB, file);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		cli_err(VERB, "--qemu: %s is not a regular file (a stream: xsr convert it to a seekable image first)",
			file);
		close(fd);
		return XSR_EXIT_USAGE;
	}
	if (qpath == XSR_MEMPATH_SHARED && cli_image_ram(VERB, fd, &ram) < 0) {
		close(fd);
		return XSR_EXIT_FAIL;
	}
	cli_detail(VERB, "%s into a new QEMU (%s)%s", file, qargv[0], paused ? ", paused" : "");
	if (qemu_spawn(&be, qargv, qargc, paused, ram, &pid, err, sizeof(err)) < 0) {
		cli_err(VERB, "%s: %s", file, err);
		close(fd);
		return XSR_EXIT_FAIL;
	}
	if (be->ops->restore_domain(be, fd, &ro, &st) < 0) {
		cli_err(VERB, "%s: QEMU (pid %d): %s", file, (int)pid, be->ops->error(be));
		be->ops->finish(be, 1); /* a failed restore leaves no QEMU behind */
		be->ops->close(be);
		close(fd);
		return XSR_EXIT_FAIL;
	}
	be->ops->finish(be, 0);
	be->ops->close(be);
	close(fd);
	if (json)
		printf("{\"pid\":%d,\"bytes\":%s,\"export_ms\":%.3f,\"elapsed_ms\":%.3f,\"paused\":%s,\"path\":\"%s\"}\n",
		       (int)pid, cli_jdec(st.bytes), st.transcode_ns / 1e6, st.elapsed_ns / 1e6, paused ? "true" : "false",
		       CLI_QEMU_PATH_NAME(st.shared_memory));
	else
		printf("%d\n", (int)pid);
	cli_detail(VERB, "QEMU pid %d: %s path%s%s, %" PRIu64 " octets of stream in %.1f ms%s", (int)pid,
		   CLI_QEMU_PATH_NAME(st.shared_memory), st.path_why[0] ? ": " : "", st.path_why, st.bytes,
		   st.elapsed_ns / 1e6, paused ? ", paused" : "");
	return XSR_EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'}, {"lazy", no_argument, NULL, 'l'},
	    {"paused", no_argument, NULL, 'p'},	       {"json", no_argument, NULL, 'j'},
	    {"qemu", no_argument, NULL, 'Q'},		{"qemu-path", required_argument, NULL, CLI_OPT_QEMU_PATH},
	    {"help", no_argument, NULL, 'h'},	       XSR_COMMON_OPTS,
	    {NULL, 0, NULL, 0}};
	struct restore_ctx c = {.img.fd = -1};
	const char *sock = NULL, *file;
	char msg[2048];
	int json = 0, qemu = 0, o, qpath = -1;
	pid_t pid;
	uint64_t t0 = util_now_ns();

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			sock = optarg;
			break;
		case 'l':
			c.img.lazy = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			c.paused = 1;
			break;
		case 'Q':
			qemu = 1;
			break;
		case CLI_OPT_QEMU_PATH:
			if (cli_qemu_path(VERB, optarg, &qpath) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return XSR_EXIT_OK;
		default:
			if (cli_common_opt(o))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (qemu) {
		if (sock || c.img.lazy || argc - optind < 2) {
			cli_err(VERB, sock || c.img.lazy ? "--qemu takes neither --control nor --lazy"
							 : "--qemu: expected FILE -- QEMU-COMMAND...");
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
		return restore_qemu(argv[optind], c.paused, json, qpath < 0 ? XSR_MEMPATH_AUTO : qpath, argv + optind + 1,
				    argc - optind - 1);
	}
	if (qpath >= 0) {
		cli_err(VERB, "--qemu-path is for --qemu");
		return XSR_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		cli_err(VERB, "expected one FILE");
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	file = argv[optind];
	if (!sock)
		return restore_xen(file, c.paused, json, c.img.lazy);
	if (c.img.lazy && !strcmp(file, "-")) {
		cli_err(VERB, "--lazy needs a seekable image file, not a stream on stdin");
		return XSR_EXIT_USAGE;
	}
	c.img.fd = cli_open_in(VERB, file);
	if (c.img.fd < 0)
		return XSR_EXIT_FAIL;
	if (c.img.lazy) {
		struct stat sb;

		if (fstat(c.img.fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			cli_err(VERB, "--lazy: %s is not a regular file", file);
			close(c.img.fd);
			return XSR_EXIT_USAGE;
		}
	}
	cli_progress_init(&c.pg, VERB, "pages", json);
	c.pg.on &= !c.img.lazy; /* a lazy restore loads pages after the guest runs */
	c.img.progress = util_progress_cb;
	c.img.progress_ctx = &c.pg;
	cli_detail(VERB, "%s into a VMM on %s%s", file, sock, c.img.lazy ? ", lazily" : "");
	if (vmm_spawn(sock, restore_build, &c, c.pg.on, &pid, msg, sizeof(msg)) < 0) {
		cli_err(VERB, "%s: %s", file, msg);
		if (c.img.fd > 0)
			close(c.img.fd);
		return XSR_EXIT_FAIL;
	}
	if (c.img.fd > 0)
		close(c.img.fd);

	double ttr = (util_now_ns() - t0) / 1e6;
	if (json) {
		uint64_t bytes = 0, pages = 0, zero = 0;
		const char *e = strstr(msg, "\"elapsed_ms\":");

		vmm_json_u64(msg, "bytes", &bytes);
		vmm_json_u64(msg, "pages", &pages);
		vmm_json_u64(msg, "zero_pages", &zero);
		printf("{\"pid\":%d,\"lazy\":%s,\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s"
		       ",\"elapsed_ms\":%.3f,\"time_to_running_ms\":%.3f}\n",
		       (int)pid, c.img.lazy ? "true" : "false", cli_jdec(bytes), cli_jdec(pages), cli_jdec(zero),
		       e ? strtod(e + 13, NULL) : 0.0, ttr);
	} else {
		printf("%d\n", (int)pid);
	}
	return XSR_EXIT_OK;
}
