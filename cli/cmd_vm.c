/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr vm: start the test guest in a VMM daemon, and talk to it. */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/vmm.h"
#include "cli.h"

#define VERB "vm"
#define START_TIMEOUT_NS (UINT64_C(60) * 1000000000)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr vm start --mem SIZE --vcpus N --control SOCK [--guest PATH]\n"
		"                    [--fill FRACTION [--dirty-mbps N]] [--json]\n"
		"       xsr vm status SOCK [--json]\n"
		"       xsr vm pause|resume|stop SOCK\n"
		"\n"
		"start   run the test guest (default: xsr-guest.elf beside the xsr binary) in a\n"
		"        background VMM that answers on the UNIX socket SOCK and logs to\n"
		"        SOCK.log; returns once every vCPU's counter moves and prints the\n"
		"        VMM's pid.  SIZE takes K/M/G suffixes (at least 4M); N is 1..8.\n"
		"        --fill FRACTION (0..1): that part of guest memory above 4 MiB holds\n"
		"        data (half a window of the guest image, half random) when the guest\n"
		"        starts; --dirty-mbps N: the VMM rewrites those pages (without --fill:\n"
		"        all above 4 MiB, random) at N MB/s while the guest runs, marking them\n"
		"        in the dirty log as guest writes would be.\n"
		"status  running/paused, vCPUs, pid, the guest's counters and error count\n"
		"pause   stop the vCPUs (the VMM stays up); resume lets them run again\n"
		"stop    end the VM; the VMM removes SOCK and exits\n"
		XSR_COMMON_HELP);
}

/* Runs in the VMM daemon (vmm_spawn): the shared builder with the test guest. */
static int start_build(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	const struct xsr_vmm_load l = {.what = "start", .load = vmm_load_guest, .ctx = arg};

	return vmm_build_kvm(v, &l, msg, msglen);
}

/* Poll status until every vCPU's counter has moved (or the VM failed). */
static int wait_counting(const char *sock, uint32_t vcpus)
{
	uint64_t first[8], now[8];
	uint64_t t0 = util_now_ns();
	int have_first = 0;

	for (;;) {
		char *reply = NULL;
		uint64_t failed = 0;

		if (cli_ctl_call(VERB, sock, "status", NULL, 0, &reply) < 0)
			return -1;
		int n = vmm_json_u64_array(reply, "counters", now, 8);
		vmm_json_u64(reply, "failed", &failed);
		free(reply);
		if (failed) {
			cli_err(VERB, "a vCPU of the guest stopped unexpectedly (see %s.log)",
				sock);
			return -1;
		}
		if (n >= (int)vcpus) {
			if (!have_first) {
				memcpy(first, now, sizeof(first));
				have_first = 1;
			} else {
				uint32_t moved = 0;

				for (uint32_t i = 0; i < vcpus; i++)
					moved += now[i] != first[i];
				if (moved == vcpus)
					return 0;
			}
		}
		if (util_now_ns() - t0 > START_TIMEOUT_NS) {
			cli_err(VERB, "the guest's counters did not move within %d s (see %s.log)",
				(int)(START_TIMEOUT_NS / 1000000000), sock);
			return -1;
		}
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	}
}

static int vm_start(int argc, char **argv)
{
	static const struct option opts[] = {{"mem", required_argument, NULL, 'm'},
					     {"vcpus", required_argument, NULL, 'n'},
					     {"control", required_argument, NULL, 'c'},
					     {"guest", required_argument, NULL, 'g'},
					     {"fill", required_argument, NULL, 'f'},
					     {"dirty-mbps", required_argument, NULL, 'd'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     XSR_COMMON_OPTS,
					     {NULL, 0, NULL, 0}};
	struct xsr_vmm_guest c = {.mem = 64 << 20, .vcpus = 1};
	const char *sock = NULL;
	char guest[PATH_MAX], msg[2048];
	int json = 0, o;
	pid_t pid;

	c.path = NULL;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'm': {
			int64_t m = cli_parse_size(optarg);

			if (m <= 0) {
				cli_err(VERB, "--mem %s: not a size", optarg);
				return XSR_EXIT_USAGE;
			}
			c.mem = (uint64_t)m;
			break;
		}
		case 'n': {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || n < 1 || n > 8) {
				cli_err(VERB, "--vcpus %s: need 1..8", optarg);
				return XSR_EXIT_USAGE;
			}
			c.vcpus = (uint32_t)n;
			break;
		}
		case 'f':
		case 'd': {
			char *end;
			double x = strtod(optarg, &end);

			if (*end || end == optarg || !(x >= 0) || (o == 'f' && x > 1) || (o == 'd' && x > 1e5)) {
				cli_err(VERB, "--%s %s: need %s", o == 'f' ? "fill" : "dirty-mbps", optarg,
					o == 'f' ? "a fraction 0..1" : "MB/s, 0..100000");
				return XSR_EXIT_USAGE;
			}
			*(o == 'f' ? &c.fill : &c.dirty_mbps) = x;
			break;
		}
		case 'c':
			sock = optarg;
			break;
		case 'g':
			c.path = optarg;
			break;
		case 'j':
			json = 1;
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
	if (!sock || optind != argc) {
		cli_err(VERB, "start: %s",
			sock ? "unexpected argument" : "--control SOCK is required");
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	if (!c.path) {
		if (vmm_guest_default_path(guest, sizeof(guest)) < 0) {
			cli_err(VERB, "cannot find the test guest; pass --guest PATH");
			return XSR_EXIT_FAIL;
		}
		c.path = guest;
	} else if (!realpath(c.path, guest)) {
		cli_err(VERB, "guest %s: %s", c.path, strerror(errno));
		return XSR_EXIT_FAIL;
	} else {
		c.path = guest;
	}
	if (access(c.path, R_OK) < 0) {
		cli_err(VERB, "guest %s: %s", c.path, strerror(errno));
		return XSR_EXIT_FAIL;
	}
	cli_detail(VERB, "starting %s with %llu MiB and %u vCPUs on %s", c.path, (unsigned long long)(c.mem >> 20),
		   c.vcpus, sock);
	if (vmm_spawn(sock, start_build, &c, 0, &pid, msg, sizeof(msg)) < 0) {
		cli_err(VERB, "start: %s", msg);
		return XSR_EXIT_FAIL;
	}
	if (wait_counting(sock, c.vcpus) < 0) {
		char *reply = NULL;

		/* Stop it by socket if it answers, and by pid in any case: none is left behind. */
		if (cli_ctl_call(VERB, sock, "stop", NULL, 0, &reply) < 0)
			kill(pid, SIGTERM);
		free(reply);
		return XSR_EXIT_FAIL;
	}
	if (json)
		printf("{\"pid\":%d,\"control\":", (int)pid), cli_json_str(stdout, sock),
		    printf("}\n");
	else
		printf("%d\n", (int)pid);
	return XSR_EXIT_OK;
}

static int vm_simple(const char *what, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
					     XSR_COMMON_OPTS, {NULL, 0, NULL, 0}};
	int json = 0, o;
	const char *sock = NULL;
	char *reply = NULL;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			if (strcmp(what, "status")) {
				cli_err(VERB, "%s: --json is for status", what);
				return XSR_EXIT_USAGE;
			}
			json = 1;
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
	if (argc - optind > 1) {
		cli_err(VERB, "%s: unexpected argument %s", what, argv[optind + 1]);
		return XSR_EXIT_USAGE;
	}
	sock = argc - optind == 1 ? argv[optind] : NULL;
	if (!sock) {
		cli_err(VERB, "%s: the control socket SOCK is required", what);
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	cli_detail(VERB, "%s: asking the VMM on %s", what, sock);
	if (cli_ctl_call(VERB, sock, what, NULL, 0, &reply) < 0) {
		free(reply);
		return XSR_EXIT_FAIL;
	}
	if (!strcmp(what, "status")) {
		if (json) {
			printf("%s", reply);
		} else {
			uint64_t pid = 0, vcpus = 0, mem = 0, errors = 0, c[64];
			char *state = vmm_json_str_dup(reply, "state");
			int n;

			vmm_json_u64(reply, "pid", &pid);
			vmm_json_u64(reply, "vcpus", &vcpus);
			vmm_json_u64(reply, "mem", &mem);
			vmm_json_u64(reply, "errors", &errors);
			n = vmm_json_u64_array(reply, "counters", c, 64);
			printf("state:    %s\npid:      %" PRIu64 "\nvcpus:    %" PRIu64
			       "\nmemory:   %" PRIu64 " MiB\ncounters:",
			       state ? state : "?", pid, vcpus, mem >> 20);
			for (int i = 0; i < n && i < 64; i++)
				printf(" %" PRIu64, c[i]);
			printf("\nerrors:   %" PRIu64 "\n", errors);
			free(state);
		}
	}
	free(reply);
	return XSR_EXIT_OK;
}

int cmd_vm(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? XSR_EXIT_USAGE : XSR_EXIT_OK;
	}
	if (!strcmp(argv[1], "start"))
		return vm_start(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status") || !strcmp(argv[1], "pause") || !strcmp(argv[1], "resume") ||
	    !strcmp(argv[1], "stop"))
		return vm_simple(argv[1], argc - 1, argv + 1);
	cli_err(VERB, "unknown subcommand '%s' (start, status, pause, resume, stop)", argv[1]);
	return XSR_EXIT_USAGE;
}
