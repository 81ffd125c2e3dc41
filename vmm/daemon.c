/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMM daemon: forked by `xsr vm start` and `xsr restore`, owns one KVM
 * VM, serves the control socket one request at a time (the protocol is in
 * vmm.h).  Requests are serialised on purpose: a save and a pause never
 * interleave, and the vCPU threads are the only other threads touching the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backends/kvm.h"
#include "../core/core.h"
#include "../migrate/migrate.h"
#include "../save/save.h"
#include "../util/progress.h"
#include "vmm.h"

#define REQ_MAX 1024
#define REQ_MAX_FDS 4

static volatile sig_atomic_t daemon_quit;

static void on_term(int sig)
{
	(void)sig;
	daemon_quit = 1;
}

static void vlog(struct xsr_vmm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vlog(struct xsr_vmm *v, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(v->log, "[%lld.%03ld] vmm %d: ", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
		(int)getpid());
	va_start(ap, fmt);
	vfprintf(v->log, fmt, ap);
	va_end(ap);
	fputc('\n', v->log);
	fflush(v->log);
}

int vmm_parse_config(struct xsr_vmm *v, const char *config)
{
	uint64_t n = 0;

	if (!config)
		return -1;
	if (vmm_json_u64(config, "counters_gpa", &v->counters_gpa) < 0 ||
	    vmm_json_u64(config, "errors_gpa", &v->errors_gpa) < 0 ||
	    vmm_json_u64(config, "nr_counters", &n) < 0 || n > 4096)
		return -1;
	v->nr_counters = (uint32_t)n;
	vmm_json_u64(config, "mem", &v->mem_bytes);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

void vmm_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void reply_err(FILE *out, const char *msg)
{
	fputs("{\"ok\":false,\"error\":", out);
	vmm_json_str(out, msg);
	fputs("}", out);
}

static uint64_t guest_u64(struct xsr_vmm *v, uint64_t gpa)
{
	uint64_t *p = kvm_gpa(v->be, gpa, 8);

	return p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
}

static void do_status(struct xsr_vmm *v, FILE *out)
{
	struct xsr_kvm_status ks;
	const char *state;

	kvm_status(v->be, &ks);
	if (ks.failed)
		state = "failed";
	else if (!ks.started)
		state = "stopped";
	else if (ks.pause_depth)
		state = "paused";
	else
		state = "running";
	fprintf(out,
		"{\"ok\":true,\"state\":\"%s\",\"pid\":%d,\"vcpus\":%u,\"mem\":\"%" PRIu64 "\""
		",\"entered\":%u,\"failed\":%u,\"halted\":%u,\"held\":%s,\"counters\":[",
		state, (int)getpid(), ks.nr_vcpus, v->mem_bytes, ks.entered, ks.failed, ks.halted,
		v->held ? "true" : "false");
	/*
	 * 64-bit values as strings, as xsr vm status --json passes them on
	 * (xsr(1), JSON OUTPUT); quoted here, since the VMM does not use cli/.
	 */
	for (uint32_t i = 0; i < ks.nr_vcpus && i < v->nr_counters; i++)
		fprintf(out, "%s\"%" PRIu64 "\"", i ? "," : "", guest_u64(v, v->counters_gpa + 8 * i));
	fprintf(out, "],\"errors\":\"%" PRIu64 "\"", v->nr_counters ? guest_u64(v, v->errors_gpa) : 0);
	if (v->lazy) {
		struct xsr_lazy_stats ls;

		lazy_stats(v->lazy, &ls);
		fprintf(out,
			",\"lazy\":{\"faults\":\"%" PRIu64 "\",\"prefetched\":\"%" PRIu64 "\",\"errors\":\"%" PRIu64 "\",\"done\":%s}",
			ls.faults, ls.prefetched, ls.errors, ls.done ? "true" : "false");
	}
	fputs("}", out);
}

static const char *arg(char **argv, int argc, const char *key)
{
	size_t kl = strlen(key);

	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], key, kl) && argv[i][kl] == '=')
			return argv[i] + kl + 1;
	return NULL;
}

static void do_save(struct xsr_vmm *v, char **argv, int argc, const int *fds, int nfds, FILE *out)
{
	struct xsr_save_opts o = {.kind = XSR_KIND_SAVE};
	struct xsr_progress pg;
	struct xsr_save_stats st;
	const char *kind = arg(argv, argc, "kind"), *hold = arg(argv, argc, "hold");
	const char *progress = arg(argv, argc, "progress"), *comp = arg(argv, argc, "compress");
	char err[1024] = "";
	int saved_stderr = -1, r;
	uint32_t before, after;

	if (nfds < 1) {
		reply_err(out, "save: no output file descriptor came with the request");
		return;
	}
	if (kind && !strcmp(kind, "core"))
		o.kind = XSR_KIND_CORE;
	else if (kind && strcmp(kind, "save")) {
		reply_err(out, "save: kind must be save or core");
		return;
	}
	if (comp && !strcmp(comp, "zstd"))
		o.compress = XSR_COMPRESS_ZSTD;
	else if (comp && !strcmp(comp, "lz4"))
		o.compress = XSR_COMPRESS_LZ4;
	if (arg(argv, argc, "layout") && !strcmp(arg(argv, argc, "layout"), "stream"))
		o.layout = XSR_LAYOUT_STREAM;
	o.leave_paused = hold && !strcmp(hold, "1");
	o.live = arg(argv, argc, "live") && !strcmp(arg(argv, argc, "live"), "1");
	if (progress && !strcmp(progress, "1") && nfds >= 2) {
		/* Progress goes to stderr: lend it the client's (the client checked its tty and --quiet). */
		fflush(stderr);
		saved_stderr = dup(2);
		if (saved_stderr >= 0 && dup2(fds[1], 2) >= 0) {
			util_progress_start(&pg, o.kind == XSR_KIND_CORE ? "core" : "save", "pages", 1);
			o.progress = util_progress_cb;
			o.progress_ctx = &pg;
		}
	}

	vlog(v, "%s to fd (hold=%d)", o.kind == XSR_KIND_CORE ? "core" : "save", o.leave_paused);
	before = kvm_pause_depth(v->be);
	memset(&st, 0, sizeof(st));
	r = o.kind == XSR_KIND_CORE ? core_guest(v->be, fds[0], &o, &st, err, sizeof(err))
				    : save_guest(v->be, fds[0], &o, &st, err, sizeof(err));
	after = kvm_pause_depth(v->be);
	if (saved_stderr >= 0) {
		util_progress_end(&pg);
		fflush(stderr);
		dup2(saved_stderr, 2);
		close(saved_stderr);
	}

	/* Whatever the save left behind, the guest runs again unless held. */
	if (r < 0 || !o.leave_paused) {
		while (after > before && v->be->ops->resume(v->be) == 0)
			after--;
	} else {
		if (after == before)
			v->be->ops->pause(v->be);
		else
			while (after > before + 1 && v->be->ops->resume(v->be) == 0)
				after--;
		v->held = true;
	}
	if (r < 0) {
		vlog(v, "save failed: %s", err);
		reply_err(out, err[0] ? err : "save failed");
		return;
	}
	vlog(v, "saved %" PRIu64 " octets, %" PRIu64 " pages (%" PRIu64 " zero), paused %.3f ms",
	     st.bytes, st.pages, st.zero_pages, st.pause_ns / 1e6);
	fprintf(out,
		"{\"ok\":true,\"bytes\":\"%" PRIu64 "\",\"pages\":\"%" PRIu64 "\",\"zero_pages\":\"%" PRIu64 "\""
		",\"pause_ms\":%.3f,\"elapsed_ms\":%.3f,\"held\":%s}",
		st.bytes, st.pages, st.zero_pages, st.pause_ns / 1e6, st.elapsed_ns / 1e6,
		v->held ? "true" : "false");
}

static void shutdown_vm(struct xsr_vmm *v)
{
	if (!v->be)
		return;
	vmm_dirtier_stop(v);
	/* vCPUs first: one may sit in a userfault that only the lazy thread serves. */
	kvm_stop(v->be);
	lazy_stop(v->lazy);
	v->lazy = NULL;
	v->be->ops->close(v->be);
	v->be = NULL;
}

static uint64_t arg_u64(char **argv, int argc, const char *key, uint64_t dflt)
{
	const char *s = arg(argv, argc, key);

	return s ? strtoull(s, NULL, 10) : dflt;
}

static void do_migrate(struct xsr_vmm *v, char **argv, int argc, const int *fds, int nfds, FILE *out,
		       int *quit)
{
	struct xsr_mig_send_opts o = {.progress_fd = -1, .hello_timeout_ms = 30000, .ack_timeout_ms = 60000};
	struct xsr_mig_send_stats *st = calloc(1, sizeof(*st));
	const char *comp = arg(argv, argc, "compress"), *progress = arg(argv, argc, "progress");
	char err[2048] = "";
	int r;

	if (!st) {
		reply_err(out, "migrate: out of memory");
		return;
	}
	if (nfds < 1) {
		reply_err(out, "migrate: no connection came with the request");
		free(st);
		return;
	}
	if (comp && !strcmp(comp, "zstd"))
		o.compress = XSR_COMPRESS_ZSTD;
	else if (comp && !strcmp(comp, "lz4"))
		o.compress = XSR_COMPRESS_LZ4;
	o.postcopy = arg_u64(argv, argc, "postcopy", 0) != 0;
	o.postcopy_rounds = (uint32_t)arg_u64(argv, argc, "postcopy_rounds", 1);
	o.max_downtime_ms = arg_u64(argv, argc, "max_downtime", 0);
	o.min_rounds = (uint32_t)arg_u64(argv, argc, "min_rounds", 1);
	o.max_rounds = (uint32_t)arg_u64(argv, argc, "max_rounds", 5);
	if (o.max_rounds < 1)
		o.max_rounds = 1;
	if (progress && !strcmp(progress, "1") && nfds >= 2)
		o.progress_fd = fds[1];
	o.config = kvm_config(v->be);
	mig_set_cut(arg(argv, argc, "cut"));
	vlog(v, "migrate: starting (postcopy=%d compress=%u max_downtime=%llu ms)", o.postcopy, o.compress,
	     (unsigned long long)o.max_downtime_ms);
	r = migrate_send(v->be, fds[0], &o, st, err, sizeof(err));
	mig_set_cut(NULL);
	if (r < 0) {
		vlog(v, "migrate failed, guest resumed here: %s", err);
		reply_err(out, err[0] ? err : "migration failed");
		free(st);
		return;
	}
	if (r == XSR_MIG_SPLIT) {
		v->held = true; /* `resume` rolls back to the switch-over, `stop` abandons */
		vlog(v, "migrate: %s", err);
		fputs("{\"ok\":false,\"split\":true,\"error\":", out);
		vmm_json_str(out, err);
		fputs("}", out);
		free(st);
		return;
	}
	/* Committed: the receiver runs the guest; this copy goes now. */
	vlog(v, "migrate: committed after %u rounds, %llu octets, downtime %.3f ms; stopping", st->rounds,
	     (unsigned long long)st->total_bytes, st->downtime_ns / 1e6);
	shutdown_vm(v);
	unlink(v->sock_path);
	*quit = 1;
	fprintf(out, "{\"ok\":true,\"rounds\":%u,\"round\":[", st->rounds);
	for (uint32_t i = 0; i < st->rounds && i < XSR_MIG_MAX_ROUNDS_STAT; i++)
		fprintf(out,
			"%s{\"round\":%u,\"pages\":\"%" PRIu64 "\",\"zero_pages\":\"%" PRIu64 "\",\"bytes\":\"%" PRIu64 "\",\"dirtied\":\"%" PRIu64 "\",\"ms\":%.3f,\"paused\":%s}",
			i ? "," : "", i, st->round[i].pages, st->round[i].zero_pages,
			st->round[i].bytes, st->round[i].dirty, st->round[i].ns / 1e6,
			st->round[i].paused ? "true" : "false");
	fprintf(out,
		"],\"total_bytes\":\"%" PRIu64 "\",\"data_pages\":\"%" PRIu64 "\",\"zero_pages\":\"%" PRIu64 "\""
		",\"compression_ratio\":%.3f,\"bandwidth_mbps\":%.1f,\"downtime_ms\":%.3f,\"receiver_load_ms\":%.3f"
		",\"postcopy\":%s,\"postcopy_pages\":\"%" PRIu64 "\",\"faults\":\"%" PRIu64 "\",\"faults_served\":\"%" PRIu64 "\",\"elapsed_ms\":%.3f}",
		st->total_bytes, st->data_pages, st->zero_pages,
		st->page_wire_bytes ? (double)st->page_raw_bytes / (double)st->page_wire_bytes : 1.0, st->bandwidth / 1e6,
		st->downtime_ns / 1e6, st->receiver_load_ns / 1e6, st->postcopy ? "true" : "false",
		st->postcopy_pages, st->faults, st->faults_served, st->elapsed_ns / 1e6);
	free(st);
}

/* Read one request line and its descriptors. */
static int read_request(int conn, char *buf, size_t cap, int *fds, int *nfds)
{
	size_t len = 0;

	*nfds = 0;
	while (len + 1 < cap) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * REQ_MAX_FDS)];
		} cm;
		struct iovec iov = {.iov_base = buf + len, .iov_len = cap - len - 1};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cm.b,
				    .msg_controllen = sizeof(cm.b)};
		ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int in[REQ_MAX_FDS];

			memcpy(in, CMSG_DATA(c),
			       sizeof(int) * (size_t)(k < REQ_MAX_FDS ? k : REQ_MAX_FDS));
			for (int i = 0; i < k && i < REQ_MAX_FDS; i++) {
				if (*nfds < REQ_MAX_FDS)
					fds[(*nfds)++] = in[i];
				else
					close(in[i]);
			}
		}
		len += (size_t)n;
		buf[len] = 0;
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = 0;
			return 0;
		}
	}
	return -1;
}

static void handle(struct xsr_vmm *v, int conn, int *quit)
{
	char req[REQ_MAX], *argv[16], *save;
	int fds[REQ_MAX_FDS], nfds = 0, argc = 0;
	char *reply = NULL;
	size_t reply_len = 0;
	FILE *out;
	struct timeval tv = {.tv_sec = 10};

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (read_request(conn, req, sizeof(req), fds, &nfds) < 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	for (char *t = strtok_r(req, " \t\r", &save); t && argc < 16;
	     t = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = t;
	out = open_memstream(&reply, &reply_len);
	if (!out) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}

	if (argc == 0) {
		reply_err(out, "empty request");
	} else if (!strcmp(argv[0], "status")) {
		do_status(v, out);
	} else if (!strcmp(argv[0], "pause")) {
		if (!v->user_paused && v->be->ops->pause(v->be) == 0)
			v->user_paused = true;
		vlog(v, "paused");
		fputs("{\"ok\":true,\"state\":\"paused\"}", out);
	} else if (!strcmp(argv[0], "resume")) {
		if (v->held && v->be->ops->resume(v->be) == 0)
			v->held = false;
		if (v->user_paused && v->be->ops->resume(v->be) == 0)
			v->user_paused = false;
		vlog(v, "resumed");
		fputs("{\"ok\":true,\"state\":\"running\"}", out);
	} else if (!strcmp(argv[0], "save")) {
		do_save(v, argv, argc, fds, nfds, out);
	} else if (!strcmp(argv[0], "migrate")) {
		do_migrate(v, argv, argc, fds, nfds, out, quit);
	} else if (!strcmp(argv[0], "stop")) {
		vlog(v, "stop requested");
		shutdown_vm(v);
		unlink(v->sock_path);
		fputs("{\"ok\":true,\"state\":\"stopped\"}", out);
		*quit = 1;
	} else {
		fputs("{\"ok\":false,\"error\":\"unknown request ", out);
		fprintf(out, "'%.64s' (status, pause, resume, stop, save, migrate)\"}", argv[0]);
	}
	fputc('\n', out);
	fclose(out);
	for (size_t off = 0; reply && off < reply_len;) {
		ssize_t n = send(conn, reply + off, reply_len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(reply);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

static int bind_control(const char *sock, char *msg, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		snprintf(msg, len, "control socket path '%s' is longer than %zu octets", sock,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, len, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			goto bind_fail;
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (probe >= 0)
			close(probe);
		if (live) {
			snprintf(msg, len, "control socket %s is in use by a running VMM", sock);
			close(fd);
			return -1;
		}
		unlink(sock); /* stale: its VMM is gone */
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto bind_fail;
	}
	if (listen(fd, 16) < 0) {
		snprintf(msg, len, "listen on %s: %s", sock, strerror(errno));
		close(fd);
		unlink(sock);
		return -1;
	}
	return fd;
bind_fail:
	snprintf(msg, len, "cannot bind control socket %s: %s", sock, strerror(errno));
	close(fd);
	return -1;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void __attribute__((noreturn))
daemon_main(const char *sock, xsr_vmm_build_fn build, void *ctx, int keep_stderr, int wfd)
{
	struct xsr_vmm v;
	struct sigaction sa;
	char logpath[4096], msg[2048] = "", line[2200];
	int devnull, lfd, r, quit = 0;
	FILE *log;

	memset(&v, 0, sizeof(v));
	setsid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL); /* a save's reader may go away */
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	snprintf(logpath, sizeof(logpath), "%s.log", sock);
	log = fopen(logpath, "ae");
	if (!log)
		log = fopen("/dev/null", "we");
	if (log)
		setvbuf(log, NULL, _IOLBF, 0);
	v.log = log ? log : stderr;
	v.sock_path = sock;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	lfd = log ? fileno(log) : devnull;
	/* The command's caller may read our stdout to EOF: never keep it. */
	if (devnull >= 0)
		dup2(devnull, 1);
	if (!keep_stderr && lfd >= 0)
		dup2(lfd, 2);

	int lsock = bind_control(sock, msg, sizeof(msg));
	if (lsock < 0) {
		snprintf(line, sizeof(line), "ERR %s\n", msg);
		write_all(wfd, line, strlen(line));
		_exit(1);
	}
	r = build(&v, ctx, msg, sizeof(msg));
	if (r < 0) {
		vlog(&v, "start failed: %s", msg);
		snprintf(line, sizeof(line), "ERR %s\n", msg);
		write_all(wfd, line, strlen(line));
		shutdown_vm(&v);
		close(lsock);
		unlink(sock);
		_exit(1);
	}
	if (v.be && v.be->ops == &kvm_ops)
		kvm_set_log(v.be, v.log);
#if XSR_TESTHOOKS
	if (v.be && v.be->ops == &kvm_ops && !(v.dirty_mbps > 0) && getenv("XSR_TEST_DIRTY_MBPS"))
		v.dirty_mbps = strtod(getenv("XSR_TEST_DIRTY_MBPS"), NULL);
#endif
	if (v.be && v.be->ops == &kvm_ops && v.dirty_mbps > 0) {
		if (vmm_dirtier_start(&v, v.dirty_mbps) == 0)
			vlog(&v, "dirtier: %.1f MB/s %s", v.dirty_mbps,
			     v.fill_pages ? "over the data-mode pages" : "above 4 MiB");
		else
			vlog(&v, "dirtier: cannot start its thread");
	}
	vlog(&v, "serving %s", sock);
	snprintf(line, sizeof(line), "OK %d %s\n", (int)getpid(), msg);
	write_all(wfd, line, strlen(line));
	close(wfd);
	if (devnull >= 0)
		dup2(devnull, 0);
	if (keep_stderr && lfd >= 0)
		dup2(lfd, 2);

	while (!quit && !daemon_quit) {
		struct pollfd p = {.fd = lsock, .events = POLLIN};
		int n = poll(&p, 1, 500);

		if (n <= 0)
			continue;
		int conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		handle(&v, conn, &quit);
		close(conn);
	}
	if (daemon_quit)
		vlog(&v, "terminated by signal");
	shutdown_vm(&v);
	close(lsock);
	/*
	 * stop and a committed migration unlinked the socket already; by now a
	 * new VMM may own that path, so only a signal exit removes it here.
	 */
	if (daemon_quit)
		unlink(sock);
	vlog(&v, "exit");
	_exit(0);
}

int vmm_spawn(const char *sock, xsr_vmm_build_fn build, void *ctx, int keep_stderr, pid_t *pid,
	      char *msg, size_t msglen)
{
	char buf[4096];
	size_t len = 0;
	int p[2];
	pid_t c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	c = fork();
	if (c < 0) {
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (c == 0) {
		close(p[0]);
		daemon_main(sock, build, ctx, keep_stderr, p[1]);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len + 1 >= sizeof(buf) || memchr(buf, '\n', len))
			break;
	}
	close(p[0]);
	buf[len] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!strncmp(buf, "OK ", 3)) {
		char *end;

		*pid = (pid_t)strtol(buf + 3, &end, 10);
		snprintf(msg, msglen, "%s", *end == ' ' ? end + 1 : "");
		return 0;
	}
	if (!strncmp(buf, "ERR ", 4))
		snprintf(msg, msglen, "%s", buf + 4);
	else
		snprintf(msg, msglen, "the VMM exited during start-up (see %s.log)", sock);
	waitpid(c, NULL, 0);
	return -1;
}
