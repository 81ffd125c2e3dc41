/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr migrate / xsr receive.
 *
 * migrate: connect to the receiver, hand the connected socket to the source
 * VMM ("migrate" request, vmm/vmm.h), which runs the sender; print what it
 * reports (a Xen domain: the engine migrate/send_xen.c with the domain's
 * backend).  receive: listen, and for each connection start a VMM whose build
 * step runs the receiver (or write a seekable image with --to-file, or with
 * --xen restore it through the Xen backend's restore half).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backends/kvm.h"
#include "../backends/qemu.h"
#include "../backends/xen.h"
#include "../migrate/migrate.h"
#include "../restore/restore.h"
#include "../util/clock.h"
#include "../vmm/vmm.h"
#include "cli.h"

#define XSR_EXIT_SPLIT 4 /* post-copy broke: guest state split (docs/migration-protocol.md) */

/* "tcp:HOST:PORT" -> host, port (host may be [v6]). 0 or -1 with message. */
static int parse_tcp(const char *verb, const char *s, char *host, size_t hlen, char *port, size_t plen)
{
	const char *h, *colon;

	if (strncmp(s, "tcp:", 4)) {
		cli_err(verb, "%s: expected tcp:HOST:PORT", s);
		return -1;
	}
	h = s + 4;
	colon = strrchr(h, ':');
	if (!colon || colon == h || !colon[1]) {
		cli_err(verb, "%s: expected tcp:HOST:PORT", s);
		return -1;
	}
	size_t n = (size_t)(colon - h);
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= hlen || strlen(colon + 1) >= plen) {
		cli_err(verb, "%s: address too long", s);
		return -1;
	}
	memcpy(host, h, n);
	host[n] = 0;
	strcpy(port, colon + 1);
	return 0;
}

static void tune(int fd)
{
	int one = 1;

	/* HELLO/ACK/FAULT are small and latency-bound. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ------------------------------------------------------------------ */
/* xsr migrate                                                         */
/* ------------------------------------------------------------------ */

static void migrate_usage(FILE *f)
{
	fprintf(f,
		"usage: xsr migrate vm:SOCK tcp:HOST:PORT [--postcopy] [--postcopy-rounds N]\n"
		"                   [--compress zstd|lz4] [--max-downtime MS] [--min-rounds N]\n"
		"                   [--max-rounds N] [--json]\n"
		"       xsr migrate DOMID tcp:HOST:PORT [--compress zstd|lz4] [--json]   (Xen, in dom0)\n"
		"       xsr migrate qemu:SOCK tcp:HOST:PORT [--compress zstd|lz4] [--json]\n"
		"                   [--qemu-path auto|transcode|shared]\n"
		"\n"
		"Live-migrate the guest of the VMM behind SOCK to `xsr receive` at HOST:PORT.\n"
		"Pre-copy rounds copy memory while the guest runs (round 0: every page, then\n"
		"what the dirty log reports), each acknowledged by the receiver.  Rounds stop\n"
		"when the remaining dirty pages fit --max-downtime MS at the measured\n"
		"bandwidth (without it: fewer than 50 pages), or after --max-rounds (5);\n"
		"then the guest pauses, the rest goes over and the receiver resumes it.  The\n"
		"source VMM exits only after the receiver's COMMIT; on any failure before\n"
		"that the guest keeps running here.\n"
		"--postcopy resumes the guest on the receiver after --postcopy-rounds (1)\n"
		"rounds (0: none, every page follows) with the dirty pages still missing;\n"
		"they follow on demand (faults)\n"
		"and in the background.  If the connection breaks after the guest resumed\n"
		"there, the guest's state is split: exit status 4, the source holds its copy\n"
		"paused (see docs/migration-protocol.md).\n"
		"--compress compresses page batches.  --json prints rounds, pages and bytes\n"
		"per round, total bytes, compression ratio, downtime and faults served.\n"
		"A Xen domain (DOMID or xen:DOMID; receiver: `xsr receive --xen`) is\n"
		"suspended by libxl and sent as one xsrelf stream; the receiver restores it\n"
		"paused as NAME--incoming, and after its COMMIT this side destroys its copy\n"
		"and the receiver's takes the name and runs.  With log-dirty libxl pre-copies\n"
		"first; without it (e.g. Xen built without shadow paging) the migration is\n"
		"stop-and-copy, and says so.  Any failure before the hand-over resumes the\n"
		"domain here.\n"
		"A running QEMU (qemu:SOCK, its QMP socket; receiver: `xsr receive --qemu`)\n"
		"pre-copies its own stream into xsr while the guest runs; the stream is\n"
		"imported onto the connection, and after the receiver's COMMIT this QEMU\n"
		"quits.  The guest stays paused from QEMU's final stop until the receiver\n"
		"resumes it.  Any failure before the hand-over resumes it here.\n"
		"--qemu-path shared (pc.ram a shared memory backend) is xsr's own stop-and-copy\n"
		"instead: the guest stops, xsr reads pc.ram itself and QEMU sends only its\n"
		"device state and other blocks (x-ignore-shared); auto and transcode take\n"
		"QEMU's pre-copy.\n"
		"On a terminal, the rounds are shown on stderr (not with --quiet or --json).\n"
		"Exit status: 0 migrated, 2 usage, 3 failed (guest still here), 4 split.\n"
		XSR_COMMON_HELP);
}

static int connect_tcp(const char *host, const char *port, char *msg, size_t mlen);

/*
 * A domain its backend saves whole (save_domain), sent by the engine
 * migrate/send_xen.c: xsr migrate DOMID (Xen, in dom0) or qemu:SOCK.  @qsock:
 * the QMP socket of a QEMU, else NULL and @domid is a Xen domain's.
 */
static int migrate_whole(uint32_t domid, const char *qsock, const char *host, const char *port, const char *compress,
			 int json, int others, int testsrc, int qpath)
{
	char msg[512], err[2048], what[300];
	struct xsr_mig_xen_stats st;
	const char *peer = qsock ? "xsr receive --qemu" : "xsr receive --xen";

	if (qsock)
		snprintf(what, sizeof(what), "QEMU at %s", qsock);
	else
		snprintf(what, sizeof(what), "domain %u", domid);
	if (others) {
		cli_err("migrate", "%s: --postcopy, --postcopy-rounds, --max-downtime, --min-rounds and --max-rounds "
				   "are for vm:SOCK guests (%s)",
			what, qsock ? "QEMU pre-copies by itself" : "a Xen domain's rounds are libxl's");
		return XSR_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN); /* a receiver that goes away is an error to report, not a signal */
	int fd = connect_tcp(host, port, msg, sizeof(msg));
	if (fd < 0) {
		cli_err("migrate", "%s (is `%s` listening there?)", msg, peer);
		return XSR_EXIT_FAIL;
	}
	struct xsr_mig_send_opts o = {
	    .compress = !strcmp(compress, "zstd") ? XSR_COMPRESS_ZSTD : !strcmp(compress, "lz4") ? XSR_COMPRESS_LZ4 : 0,
	    .progress_fd = 2, /* the stop-and-copy notice goes to stderr, --json or not */
	    .hello_timeout_ms = 30000, .ack_timeout_ms = 600000, .memory_path = qpath};
#if XSR_TESTHOOKS
	mig_set_cut(getenv("XSR_MIG_TEST_CUT_SENDER"));
#endif
	struct xsr_backend *be = NULL;
	int r = 0;
	if (qsock)
		r = qemu_open(&be, qsock, err, sizeof(err)) < 0 ? XSR_E_BACKEND : 0;
	else if (!testsrc && (r = xen_open(&be, domid, err, sizeof(err))) < 0)
		r = XSR_E_BACKEND;
	if (r == 0)
		r = migrate_send_xen(be, domid, fd, &o, &st, err, sizeof(err));
	if (be)
		be->ops->close(be);
	close(fd);
	if (r < 0) {
		cli_err("migrate", "%s: %s (%s)", what, err,
			qsock ? "the guest stays here, as it was" : "the domain keeps running here");
		return XSR_EXIT_FAIL;
	}
	if (json) {
		if (qsock) {
			fputs("{\"qemu\":", stdout);
			cli_json_str(stdout, qsock);
		} else
			printf("{\"domid\":%u", domid);
		printf(",\"mode\":\"%s\",\"log_dirty\":\"%s\",\"total_bytes\":%s"
		       ",\"pages\":%s,\"suspend_ms\":%.1f,\"transfer_ms\":%.1f,\"receiver_load_ms\":%.1f"
		       ",\"downtime_ms\":%.1f,\"elapsed_ms\":%.1f,\"engine\":\"%s\"",
		       st.mode, st.why, cli_jdec(st.bytes), cli_jdec(st.pages), st.suspend_ns / 1e6, st.transfer_ns / 1e6,
		       st.receiver_load_ns / 1e6, st.downtime_ns / 1e6, st.elapsed_ns / 1e6,
		       qsock ? "qemu" : st.native ? "native" : "libxl");
		if (qsock)
			printf(",\"path\":\"%s\"", CLI_QEMU_PATH_NAME(st.shared_memory));
		printf("}\n");
	} else
		printf("migrated: %s, %s%s%s, %" PRIu64 " octets, downtime %.1f ms (suspend %.1f ms, transfer %.1f ms, "
		       "receiver restore %.1f ms)\n",
		       what, st.mode, qsock ? ", " : "", qsock ? CLI_QEMU_PATH_NAME(st.shared_memory) : "", st.bytes, st.downtime_ns / 1e6, st.suspend_ns / 1e6, st.transfer_ns / 1e6,
		       st.receiver_load_ns / 1e6);
	return XSR_EXIT_OK;
}

static int connect_tcp(const char *host, const char *port, char *msg, size_t mlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *p;
	int fd = -1, r = getaddrinfo(host, port, &hints, &ai);

	if (r) {
		snprintf(msg, mlen, "%s:%s: %s", host, port, gai_strerror(r));
		return -1;
	}
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
			break;
		snprintf(msg, mlen, "connecting to %s:%s: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		tune(fd);
	return fd;
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"postcopy", no_argument, NULL, 'p'},     {"postcopy-rounds", required_argument, NULL, 'P'},
	    {"compress", required_argument, NULL, 'c'}, {"max-downtime", required_argument, NULL, 'd'},
	    {"min-rounds", required_argument, NULL, 'm'}, {"max-rounds", required_argument, NULL, 'M'},
	    {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
	    {"qemu-path", required_argument, NULL, CLI_OPT_QEMU_PATH},
	    XSR_COMMON_OPTS,                          {NULL, 0, NULL, 0}};
	const char *compress = "none";
	int qpath = -1;
	unsigned long postcopy_rounds = 1, min_rounds = 1, max_rounds = 5, max_downtime = 0;
	int postcopy = 0, json = 0, o;
	char host[256], port[32], msg[512], req[512], *reply = NULL, *end;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			postcopy = 1;
			break;
		case 'c':
			if (strcmp(optarg, "zstd") && strcmp(optarg, "lz4") && strcmp(optarg, "none")) {
				cli_err("migrate", "--compress %s: none, zstd or lz4", optarg);
				return XSR_EXIT_USAGE;
			}
			compress = optarg;
			break;
		case 'P':
		case 'd':
		case 'm':
		case 'M': {
			/* strtoul() wraps '-1' and saturates on overflow: neither is a number here. */
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || !*optarg || errno || strchr(optarg, '-') || v > UINT32_MAX || (o != 'd' && (v < (o == 'P' ? 0u : 1u) || v > 60))) {
				cli_err("migrate", "%s %s: expected %s", o == 'd' ? "--max-downtime" : "a round count",
					optarg, o == 'd' ? "milliseconds" : "1..60");
				return XSR_EXIT_USAGE;
			}
			*(o == 'P' ? &postcopy_rounds : o == 'd' ? &max_downtime : o == 'm' ? &min_rounds : &max_rounds) = v;
			break;
		}
		case 'j':
			json = 1;
			break;
		case CLI_OPT_QEMU_PATH:
			if (cli_qemu_path("migrate", optarg, &qpath) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'h':
			migrate_usage(stdout);
			return XSR_EXIT_OK;
		default:
			if (cli_common_opt(o))
				break;
			migrate_usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		cli_err("migrate", "expected vm:SOCK and tcp:HOST:PORT");
		migrate_usage(stderr);
		return XSR_EXIT_USAGE;
	}
	uint32_t domid;
	if (xen_target(argv[optind], &domid)) {
		if (parse_tcp("migrate", argv[optind + 1], host, sizeof(host), port, sizeof(port)) < 0)
			return XSR_EXIT_USAGE;
		int others = postcopy || max_downtime || postcopy_rounds != 1 || min_rounds != 1 || max_rounds != 5;
		int testsrc = 0;
#if XSR_TESTHOOKS
		testsrc = getenv("XSR_MIG_TEST_XEN_SOURCE") != NULL;
#endif
		if (!xen_supported() && !testsrc) {
			cli_err("migrate", "%s looks like a Xen domain id, but this xsr was built without Xen support "
					   "(a VMM is vm:SOCK)", argv[optind]);
			return XSR_EXIT_FAIL;
		}
		if (qpath >= 0) {
			cli_err("migrate", "--qemu-path is for qemu:SOCK");
			return XSR_EXIT_USAGE;
		}
		return migrate_whole(domid, NULL, host, port, compress, json, others, testsrc, 0);
	}
	if (qemu_target(argv[optind])) {
		if (parse_tcp("migrate", argv[optind + 1], host, sizeof(host), port, sizeof(port)) < 0)
			return XSR_EXIT_USAGE;
		int others = postcopy || max_downtime || postcopy_rounds != 1 || min_rounds != 1 || max_rounds != 5;
		return migrate_whole(0, qemu_target(argv[optind]), host, port, compress, json, others, 0,
				     qpath < 0 ? XSR_MEMPATH_AUTO : qpath);
	}
	if (qpath >= 0) {
		cli_err("migrate", "--qemu-path is for qemu:SOCK");
		return XSR_EXIT_USAGE;
	}
	const char *sock = cli_ctl_target("migrate", argv[optind]);
	if (!sock)
		return XSR_EXIT_USAGE;
	if (parse_tcp("migrate", argv[optind + 1], host, sizeof(host), port, sizeof(port)) < 0)
		return XSR_EXIT_USAGE;
	if (access(sock, F_OK) < 0) {
		cli_err("migrate", "no VMM control socket at %s", sock);
		return XSR_EXIT_FAIL;
	}
	int fd = connect_tcp(host, port, msg, sizeof(msg));
	if (fd < 0) {
		cli_err("migrate", "%s (is `xsr receive` listening there?)", msg);
		return XSR_EXIT_FAIL;
	}
	int progress = isatty(2) && !json && cli_verbosity >= 0;
	cli_detail("migrate", "%s -> %s:%s (compress %s%s)", sock, host, port, compress, postcopy ? ", post-copy" : "");
	const char *cut = NULL;
#if XSR_TESTHOOKS
	cut = getenv("XSR_MIG_TEST_CUT_SENDER");
#endif
	snprintf(req, sizeof(req),
		 "migrate compress=%s postcopy=%d postcopy_rounds=%lu max_downtime=%lu min_rounds=%lu max_rounds=%lu "
		 "progress=%d%s%s",
		 compress, postcopy, postcopy_rounds, max_downtime, min_rounds, max_rounds, progress,
		 cut ? " cut=" : "", cut ? cut : "");
	int fds[2] = {fd, 2};
	int r = cli_ctl_call("migrate", sock, req, fds, progress ? 2 : 1, &reply);
	close(fd);
	if (r < 0) {
		int split = 0;
		if (reply)
			vmm_json_bool(reply, "split", &split);
		free(reply);
		if (split) {
			fprintf(stderr, "xsr migrate: the source VMM holds the guest paused as of the switch-over.\n"
					"  `xsr vm resume %s` runs that copy again (safe only if the guest did\n"
					"  nothing visible outside since it resumed remotely); `xsr vm stop %s` abandons it.\n",
				sock, sock);
			return XSR_EXIT_SPLIT;
		}
		return XSR_EXIT_FAIL;
	}
	if (json) {
		/* The VMM's reply is the report; drop its "ok". */
		const char *body = strstr(reply, "\"ok\":true,");
		size_t n = strcspn(reply, "\n");
		reply[n] = 0;
		printf("{%s\n", body ? body + 10 : reply + 1);
	} else {
		uint64_t rounds = 0, bytes = 0, faults = 0;
		const char *d = strstr(reply, "\"downtime_ms\":");
		vmm_json_u64(reply, "rounds", &rounds);
		vmm_json_u64(reply, "total_bytes", &bytes);
		vmm_json_u64(reply, "faults", &faults);
		printf("migrated: %" PRIu64 " rounds, %" PRIu64 " octets, downtime %.1f ms%s\n", rounds, bytes,
		       d ? strtod(d + 14, NULL) : 0.0, postcopy ? ", post-copy" : "");
	}
	free(reply);
	return XSR_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* xsr receive                                                         */
/* ------------------------------------------------------------------ */

static void receive_usage(FILE *f)
{
	fprintf(f,
		"usage: xsr receive tcp:HOST:PORT --control SOCK [--once] [--json]\n"
		"                   [--max-mem SIZE] [--max-vcpus N]\n"
		"       xsr receive tcp:HOST:PORT --to-file FILE [--once] [--json]\n"
		"       xsr receive tcp:HOST:PORT --xen [--paused] [--once] [--json]   (Xen, in dom0)\n"
		"       xsr receive tcp:HOST:PORT --qemu [--paused] [--once] [--json]\n"
		"                   [--qemu-path auto|transcode|shared] -- QEMU-COMMAND...\n"
		"\n"
		"Listen on HOST:PORT (PORT 0: any; the port is printed as 'listening on\n"
		"HOST:PORT') for one `xsr migrate`.  The arriving guest runs in a new VMM with\n"
		"control socket SOCK (log SOCK.log) and the command prints the VMM's pid.\n"
		"A failed attempt is discarded (no VMM, no socket left) and the command\n"
		"keeps listening for a retry; --once exits after the first attempt,\n"
		"whatever its outcome.  --to-file stores the guest as a seekable save\n"
		"image FILE instead (atomically; the source VM then ends).\n"
		"Before any page moves the receiver refuses guests with more than\n"
		"--max-vcpus vCPUs (64) or more memory than --max-mem (MemAvailable), and\n"
		"streams with unknown mandatory records.\n"
		"--xen takes a Xen domain from `xsr migrate DOMID` and restores it through\n"
		"libxl, paused as NAME--incoming; once the sender has given its copy up\n"
		"(RELEASED) it is renamed NAME and unpaused (--paused: left paused), and the\n"
		"new domain id is printed.  Without RELEASED it is destroyed.\n"
		"--qemu takes a QEMU guest from `xsr migrate qemu:SOCK`: QEMU-COMMAND (the\n"
		"program and the guest's options: machine, -m, devices) is started with -S\n"
		"-incoming defer and fed the image as QEMU's own stream (as `xsr restore\n"
		"--qemu`); after RELEASED the guest runs (--paused: stays paused) and QEMU's\n"
		"pid is printed.  Without RELEASED that QEMU is stopped.  --qemu-path is as\n"
		"for `xsr restore --qemu`: with pc.ram on a shared memory backend (or, with\n"
		"shared, one xsr adds) xsr writes the guest's memory into it itself.\n"
		"The 'listening on' line is printed even with --quiet (it tells the port).\n"
		"Exit status: 0 received, 2 usage, 3 failed.\n"
		XSR_COMMON_HELP);
}

static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;

	if (!f)
		return UINT64_C(1) << 40;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? (uint64_t)kb << 10 : UINT64_C(1) << 40;
}

struct recv_ctx {
	int listen_fd, conn;
	struct xsr_mig_recv_opts o;
	struct xsr_mig_recv_stats st;
};

/* Fills the VM the shared builder opened (vmm/build.c). */
static int recv_load(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	struct recv_ctx *c = arg;
	int r;

	c->o.log = v->log;
	r = migrate_receive(v->be, c->conn, &c->o, &c->st, msg, msglen);
	if (r < 0)
		mig_linger_close(c->conn);
	else
		close(c->conn);
	return r;
}

static int recv_build(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	struct recv_ctx *c = arg;
	const struct xsr_vmm_load l = {.what = "receive", .load = recv_load, .ctx = c};
	int r;

	close(c->listen_fd); /* the listener stays with `xsr receive` */
	r = vmm_build_kvm(v, &l, msg, msglen);
	if (r < 0)
		return r;
	snprintf(msg, msglen,
		 "{\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s,\"rounds\":%" PRIu64
		 ",\"postcopy\":%s,\"postcopy_pages\":%s,\"faults\":%s,\"load_ms\":%.3f}",
		 cli_jdec(c->st.bytes), cli_jdec(c->st.pages), cli_jdec(c->st.zero_pages), c->st.rounds,
		 c->st.postcopy ? "true" : "false", cli_jdec(c->st.postcopy_pages), cli_jdec(c->st.faults), c->st.load_ns / 1e6);
	return 0;
}

static int commit_file(void *ctx, char *err, size_t errlen)
{
	(void)err, (void)errlen; /* cli_out_commit says why on stderr */
	return cli_out_commit(ctx, "receive") < 0 ? XSR_E_IO : 0;
}

static int listen_tcp(const char *host, const char *port, char *bound, size_t blen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	int fd, one = 1, r = getaddrinfo(host, port, &hints, &ai);

	if (r) {
		cli_err("receive", "%s:%s: %s", host, port, gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
		cli_err("receive", "cannot listen on %s:%s: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[128] = "?", p[16] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(bound, blen, "%s:%s", h, p);
	return fd;
}

/*
 * xsr receive --xen / --qemu: the stream goes into an anonymous image, which
 * the backend's restore half restores paused (libxl: as NAME--incoming; a
 * QEMU started here with -S -incoming defer); after the sender's RELEASED it
 * is renamed and resumed.  @qargv: the QEMU command of --qemu, else NULL.
 */
struct whole_in {
	int img, paused;
	char **qargv;
	int qargc;
	int qpath; /* XSR_MEMPATH_* */
	int shared_memory;
	uint32_t domid;
	pid_t pid;
	struct xsr_backend *be; /* the backend's restore half (restore_domain), once opened */
	int have_domain;
	uint64_t restore_ns;
	struct xsr_xenstore_stats xs; /* the image's xenstore keys, written before the unpause */
	int xs_found;
	char err[1024];
};

static int whole_in_commit(void *ctx, char *err, size_t errlen)
{
	struct whole_in *x = ctx;
	struct xsr_domain_stats st = {0};
	struct xsr_domain_restore_opts ro = {.paused = 1, .name_suffix = "--incoming", .memory_path = x->qpath};
	const char *lacks = NULL, *into = x->qargv ? "restoring into QEMU" : "restoring into Xen";
	uint64_t ram = 0;

	if (x->qargv && x->qpath == XSR_MEMPATH_SHARED && cli_image_ram("receive", x->img, &ram) < 0) {
		snprintf(x->err, sizeof(x->err), "%s: the received image does not open", into);
		return XSR_E_FORMAT;
	}
	if (!x->be && (x->qargv ? qemu_spawn(&x->be, x->qargv, x->qargc, 1, ram, &x->pid, err, errlen)
				: xen_open_restore(&x->be, err, errlen)) < 0) {
		snprintf(x->err, sizeof(x->err), "%s: %s", into, err);
		return XSR_E_BACKEND;
	}
	if ((lacks = backend_lacks(x->be->ops, XSR_NEED_DOMAIN_RESTORE)))
		snprintf(err, errlen, "%s: not supported by this backend", lacks);
	else if (lseek(x->img, 0, SEEK_SET) != 0)
		snprintf(err, errlen, "rewinding the received image: %s", strerror(errno));
	else if (x->be->ops->restore_domain(x->be, x->img, &ro, &st) < 0)
		snprintf(err, errlen, "%s", x->be->ops->error(x->be));
	else if (restore_xenstore(x->be, x->img, &x->xs, &x->xs_found, err, errlen) < 0)
		x->be->ops->finish(x->be, 1); /* not released yet: the sender's copy carries on */
	else
		lacks = "";
	if (!lacks || *lacks) {
		snprintf(x->err, sizeof(x->err), "%s: %s", into, err);
		if (x->qargv) /* the QEMU started for it goes too */
			x->be->ops->finish(x->be, 1);
		return XSR_E_BACKEND;
	}
	x->domid = st.domid;
	x->shared_memory = st.shared_memory;
	x->have_domain = 1;
	x->restore_ns = st.elapsed_ns;
	return 0;
}

static int whole_in_release(void *ctx, int released)
{
	struct whole_in *x = ctx;
	char what[64];

	if (x->qargv)
		snprintf(what, sizeof(what), "QEMU pid %d", (int)x->pid);
	else
		snprintf(what, sizeof(what), "domain %u", x->domid);
	if (!released) {
		/* The source may be resuming its own copy: this one must not run. */
		x->be->ops->finish(x->be, 1);
		x->have_domain = 0;
		snprintf(x->err, sizeof(x->err), "no RELEASED from the sender: %s %s", what,
			 x->qargv ? "stopped" : "destroyed");
		return XSR_E_PEER;
	}
	/* From here on this is the only copy: on trouble keep it (paused), never destroy it. */
	x->have_domain = 0;
	if (x->be->ops->rename(x->be, "--incoming", "") < 0)
		cli_err("receive", "%s: %s; it keeps the name NAME--incoming", what, x->be->ops->error(x->be));
	if (!x->paused && x->be->ops->resume(x->be) < 0)
		cli_err("receive", "%s: %s; it stays paused (%s)", what, x->be->ops->error(x->be),
			x->qargv ? "QMP cont" : "xl unpause");
	return 0;
}

static int receive_whole(struct recv_ctx *c, int paused, int json, const char *ph, const char *pp, char **qargv,
			 int qargc, int qpath)
{
	struct whole_in x = {.paused = paused, .qargv = qargv, .qargc = qargc, .qpath = qpath,
			     .img = memfd_create("xsr-receive", MFD_CLOEXEC)};
	char msg[2048];

	if (x.img < 0) {
		cli_err("receive", "memfd_create: %s", strerror(errno));
		close(c->conn);
		return -1;
	}
	c->o.out_fd = x.img;
	c->o.before_commit = whole_in_commit;
	c->o.after_release = whole_in_release;
	c->o.commit_ctx = &x;
	int r = migrate_receive(NULL, c->conn, &c->o, &c->st, msg, sizeof(msg));
	close(x.img);
	if (r < 0 && x.have_domain) /* restored, but COMMIT could not be sent: discard */
		x.be->ops->finish(x.be, 1);
	if (x.be)
		x.be->ops->close(x.be);
	if (r < 0) {
		cli_err("receive", "migration from %s:%s failed, nothing kept: %s", ph, pp, msg);
		mig_linger_close(c->conn);
		return -1;
	}
	close(c->conn);
	if (x.xs_found)
		cli_detail("receive", "xenstore: %u keys written, %u left as libxl made them, %u of the toolstack's skipped",
			   x.xs.written, x.xs.kept, x.xs.skipped);
	if (json && qargv)
		printf("{\"pid\":%d,\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s"
		       ",\"restore_ms\":%.1f,\"paused\":%s,\"path\":\"%s\"}\n",
		       (int)x.pid, cli_jdec(c->st.bytes), cli_jdec(c->st.pages), cli_jdec(c->st.zero_pages),
		       x.restore_ns / 1e6, paused ? "true" : "false", CLI_QEMU_PATH_NAME(x.shared_memory));
	else if (json)
		printf("{\"domid\":%u,\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s"
		       ",\"restore_ms\":%.1f,\"paused\":%s,\"xenstore_written\":%u,\"xenstore_kept\":%u}\n",
		       x.domid, cli_jdec(c->st.bytes), cli_jdec(c->st.pages), cli_jdec(c->st.zero_pages), x.restore_ns / 1e6,
		       paused ? "true" : "false", x.xs.written, x.xs.kept);
	else
		printf("%u\n", qargv ? (unsigned)x.pid : x.domid);
	return 0;
}

/* receive_file() and receive_vmm() results besides 0 (received) and -1 (failed, listen again unless --once). */
#define RECV_STOP (-2)    /* stop listening */
#define RECV_REFUSED (-3) /* refused before anything was read: listen again (no retry note) */

/* xsr receive --to-file FILE: one migration into a seekable image. */
static int receive_file(struct recv_ctx *c, const char *file, int json, const char *ph, const char *pp)
{
	struct xsr_outfile out;
	char msg[2048];
	if (cli_out_open(&out, "receive", file) < 0) {
		close(c->conn);
		return RECV_STOP;
	}
	c->o.out_fd = out.fd;
	c->o.before_commit = commit_file;
	c->o.commit_ctx = &out;
	int r = migrate_receive(NULL, c->conn, &c->o, &c->st, msg, sizeof(msg));
	if (r == 0) {
		close(c->conn);
		if (json) {
			printf("{\"file\":");
			cli_json_str(stdout, file);
			printf(",\"bytes\":%s,\"pages\":%s,\"zero_pages\":%s,\"rounds\":%" PRIu64 "}\n",
			       cli_jdec(c->st.bytes), cli_jdec(c->st.pages), cli_jdec(c->st.zero_pages), c->st.rounds);
		}
		return 0;
	}
	if (r < 0) {
		cli_out_abort(&out);
		cli_err("receive", "migration from %s:%s failed, nothing kept: %s", ph, pp, msg);
	}
	mig_linger_close(c->conn);
	return -1;
}

/* 1 if a VMM answers on the control socket @sock; a dead one's socket (nobody answers) is removed if @reap. */
static int sock_busy(const char *sock, int reap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int busy = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (!busy && reap && errno == ECONNREFUSED)
		unlink(sock);
	close(probe);
	return busy;
}

/* xsr receive --control SOCK: a VMM whose build step runs the receiver (recv_build). */
static int receive_vmm(struct recv_ctx *c, const char *sock, int json, const char *ph, const char *pp)
{
	char msg[2048];
	pid_t pid;
	/* A VMM already owns the control socket: say so, rather than hang up. */
	if (sock_busy(sock, 0)) {
		snprintf(msg, sizeof(msg), "control socket %s is in use by a running VMM", sock);
		mig_refuse(c->conn, XSR_E_STATE, msg);
		cli_err("receive", "migration from %s:%s refused: %s", ph, pp, msg);
		return RECV_REFUSED;
	}
	int r = vmm_spawn(sock, recv_build, c, 0, &pid, msg, sizeof(msg));
	close(c->conn);
	if (r == 0) {
		if (json) {
			printf("{\"pid\":%d,\"control\":", (int)pid);
			cli_json_str(stdout, sock);
			printf(",\"receive\":%s}\n", msg);
		} else
			printf("%d\n", (int)pid);
		return 0;
	}
	/* A VMM that died (killed) could not remove its socket: nobody answers there. */
	sock_busy(sock, 1);
	cli_err("receive", "migration from %s:%s failed, nothing kept: %s", ph, pp, msg);
	return -1;
}

int cmd_receive(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'}, {"to-file", required_argument, NULL, 'f'},
	    {"once", no_argument, NULL, '1'},          {"json", no_argument, NULL, 'j'},
	    {"max-mem", required_argument, NULL, 'm'}, {"max-vcpus", required_argument, NULL, 'n'},
	    {"xen", no_argument, NULL, 'X'},           {"paused", no_argument, NULL, 'P'},
	    {"qemu", no_argument, NULL, 'Q'},          {"help", no_argument, NULL, 'h'},
	    {"qemu-path", required_argument, NULL, CLI_OPT_QEMU_PATH},
	    XSR_COMMON_OPTS,
	    {NULL, 0, NULL, 0}};
	const char *sock = NULL, *file = NULL;
	int once = 0, json = 0, o, rc = XSR_EXIT_FAIL, xen = 0, qemu = 0, paused = 0, qpath = -1;
	char host[256], port[32], bound[160], *end;
	struct recv_ctx c = {.listen_fd = -1, .conn = -1, .o = {.out_fd = -1, .max_vcpus = 64}};

	optind = 1;
	while ((o = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			sock = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case '1':
			once = 1;
			break;
		case 'X':
			xen = 1;
			break;
		case 'Q':
			qemu = 1;
			break;
		case CLI_OPT_QEMU_PATH:
			if (cli_qemu_path("receive", optarg, &qpath) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'P':
			paused = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'm': {
			int64_t v = cli_parse_size(optarg);
			if (v <= 0) {
				cli_err("receive", "--max-mem %s: expected a size (e.g. 512M)", optarg);
				return XSR_EXIT_USAGE;
			}
			c.o.mem_limit = (uint64_t)v;
			break;
		}
		case 'n': {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || errno || strchr(optarg, '-') || v < 1 || v > XSR_MAX_VCPUS) {
				cli_err("receive", "--max-vcpus %s: expected 1..%u", optarg, XSR_MAX_VCPUS);
				return XSR_EXIT_USAGE;
			}
			c.o.max_vcpus = (uint32_t)v;
			break;
		}
		case 'h':
			receive_usage(stdout);
			return XSR_EXIT_OK;
		default:
			if (cli_common_opt(o))
				break;
			receive_usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	/* --qemu: the QEMU command follows tcp:HOST:PORT after -- */
	if ((qemu ? argc - optind < 2 : argc - optind != 1) || (!!sock + !!file + xen + qemu) != 1) {
		cli_err("receive", "%s",
			qemu && argc - optind < 2 ? "--qemu: expected tcp:HOST:PORT -- QEMU-COMMAND..."
			: argc - optind != 1 && !qemu ? "expected one tcp:HOST:PORT"
						      : "give exactly one of --control SOCK, --to-file FILE, --xen and --qemu");
		receive_usage(stderr);
		return XSR_EXIT_USAGE;
	}
	if (paused && !xen && !qemu) {
		cli_err("receive", "--paused is for --xen and --qemu");
		return XSR_EXIT_USAGE;
	}
	if (qpath >= 0 && !qemu) {
		cli_err("receive", "--qemu-path is for --qemu");
		return XSR_EXIT_USAGE;
	}
	if (xen && !xen_supported()) {
		cli_err("receive", "--xen: this xsr was built without Xen support");
		return XSR_EXIT_FAIL;
	}
	c.o.xen = xen;
	if (parse_tcp("receive", argv[optind], host, sizeof(host), port, sizeof(port)) < 0)
		return XSR_EXIT_USAGE;
	if (!c.o.mem_limit)
		c.o.mem_limit = mem_available();
#if XSR_TESTHOOKS
	mig_set_cut(getenv("XSR_MIG_TEST_CUT_RECEIVER"));
#endif
	signal(SIGPIPE, SIG_IGN);
	c.listen_fd = listen_tcp(host, port, bound, sizeof(bound));
	if (c.listen_fd < 0)
		return XSR_EXIT_FAIL;
	fprintf(stderr, "xsr receive: listening on %s\n", bound);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		char ph[128] = "?", pp[16] = "?";

		c.conn = accept4(c.listen_fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		if (c.conn < 0) {
			if (errno == EINTR)
				continue;
			cli_err("receive", "accept: %s", strerror(errno));
			break;
		}
		getnameinfo((struct sockaddr *)&peer, pl, ph, sizeof(ph), pp, sizeof(pp), NI_NUMERICHOST | NI_NUMERICSERV);
		tune(c.conn);
		/* A silent sender must not hold us forever. */
		struct timeval tv = {.tv_sec = 60};
		setsockopt(c.conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c.conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		int r = xen || qemu ? receive_whole(&c, paused, json, ph, pp, qemu ? argv + optind + 1 : NULL,
						    argc - optind - 1, qpath < 0 ? XSR_MEMPATH_AUTO : qpath)
			    : file ? receive_file(&c, file, json, ph, pp) : receive_vmm(&c, sock, json, ph, pp);
		if (r == 0) {
			rc = XSR_EXIT_OK;
			break;
		}
		if (r == RECV_STOP)
			break;
		if (r == RECV_REFUSED) {
			c.conn = -1;
			if (once)
				break;
			continue;
		}
		c.conn = -1;
		if (once)
			break;
		cli_note("receive", "listening on %s for a retry", bound);
	}
	close(c.listen_fd);
	return rc;
}
