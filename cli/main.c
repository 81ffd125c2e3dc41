/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr: xl-style verbs over libxsrelf. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/xsrelf.h>

#include "cli.h"
#include "../util/clock.h"

static const struct {
	const char *name;
	xsr_cmd_fn fn;
	const char *summary;
} verbs[] = {
	{"synth", cmd_synth, "make a deterministic synthetic domain image"},
	{"info", cmd_info, "describe an image (--json, --vcpu N)"},
	{"verify", cmd_verify, "check every checksum and structure of an image"},
	{"convert", cmd_convert, "convert between seekable and streamed layouts"},
	{"cat-page", cmd_cat_page, "write one guest page to stdout"},
	{"ls", cmd_ls, "list page extents (zero or with data) and sections of an image"},
	{"diff", cmd_diff, "which pages, vCPU fields and sections differ between two images"},
	{"dump", cmd_dump, "write guest-physical or guest-virtual memory to stdout"},
	{"vm", cmd_vm, "run and control a KVM test guest (start/status/pause/resume/stop)"},
	{"save", cmd_save, "save a running guest to an image"},
	{"restore", cmd_restore, "restore a guest from an image (full or --lazy)"},
	{"core", cmd_core, "write a crash core of a running guest"},
	{"migrate", cmd_migrate, "live-migrate a running guest over TCP"},
	{"receive", cmd_receive, "receive a migrating guest (or store it as an image)"},
	{"import", cmd_import, "import Xen save files, migration streams and dump-core files"},
	{"export", cmd_export, "export an image as an xl save file, libxc stream, xc_core or QEMU stream"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr VERB [options] ...\n\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\n'xsr VERB --help' describes a verb.  'xsr --version' prints the version.\n");
}

/* XSR_BACKTRACE=1: a crash prints its stack (for bug reports) before dying as it would. */
static void on_crash(int sig)
{
	void *bt[64];
	int n = backtrace(bt, 64);
	static const char m[] = "xsr: fatal signal; stack:\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* XSR_XEN_TIMING: when main() began and when exit() ran its handlers (monotonic ms). */
static uint64_t main_t0;
static void timing_exit(void)
{
	fprintf(stderr, "xsr timing: main %.1f ms -> exit %.1f ms (%.1f ms)\n", main_t0 / 1e6, util_now_ns() / 1e6,
		(util_now_ns() - main_t0) / 1e6);
}

/*
 * What the verb printed must have reached stdout: a full disk or a closed
 * pipe is a failure (exit 3), not a silent success.  A stdout that was
 * closed before we started and never written to is not an error.
 */
static int close_stdout(const char *verb, int rc)
{
	int bad = fflush(stdout) != 0 || ferror(stdout);
	int e = errno;
	if (fclose(stdout) != 0 && !bad && errno != EBADF) {
		bad = 1;
		e = errno;
	}
	if (!bad)
		return rc;
	fprintf(stderr, "xsr%s%s: writing stdout: %s\n", verb ? " " : "", verb ? verb : "", strerror(e));
	return rc == XSR_EXIT_OK || rc == XSR_EXIT_DAMAGE ? XSR_EXIT_FAIL : rc;
}

int main(int argc, char **argv)
{
	/*
	 * A closed 0, 1 or 2 would be the next file opened, and a message or
	 * --json meant for stdout would land in the image: hold them with /dev/null.
	 */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			return XSR_EXIT_FAIL;
	if (getenv("XSR_XEN_TIMING")) {
		main_t0 = util_now_ns();
		atexit(timing_exit);
	}
	if (getenv("XSR_BACKTRACE")) {
		signal(SIGSEGV, on_crash);
		signal(SIGBUS, on_crash);
		signal(SIGABRT, on_crash);
	}
	if (argc < 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return close_stdout(NULL, XSR_EXIT_OK);
	}
	if (!strcmp(argv[1], "--version")) {
		printf("xsr %s (libxsrelf %s, format %d.%d)\n", XSR_PRODUCER_VERSION_STR, xsr_version(),
		       XSR_VERSION_MAJOR, XSR_VERSION_MINOR);
		return close_stdout(NULL, XSR_EXIT_OK);
	}
	/*
	 * Seen here, not by each verb's option parser: a bad option before
	 * --json still gets its error as JSON.  "--" ends the options.
	 */
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			cli_json_errors(argv[1]);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name)) {
			uint64_t t0 = util_now_ns();
			int rc = close_stdout(verbs[i].name, cli_json_error_exit(verbs[i].fn(argc - 1, argv + 1)));
			/* --verbose, for every verb: how it ended and how long it took */
			cli_detail(verbs[i].name, "exit status %d after %.1f ms", rc, (util_now_ns() - t0) / 1e6);
			return rc;
		}
	cli_err(argv[1], "unknown verb");
	usage(stderr);
	return close_stdout(NULL, cli_json_error_exit(XSR_EXIT_USAGE));
}
