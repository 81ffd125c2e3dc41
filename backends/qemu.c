/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU backend (backends/qemu.h): QMP over a unix socket, and a save by
 * transcoding QEMU's own migration stream, or, when pc.ram is shared
 * memory, by reading pc.ram from it (the shared-memory path).
 *
 * QMP is one JSON object a line.  Replies start with {"return" or
 * {"error"; events ({"timestamp": ..., "event": ...}) may come between a
 * command and its reply and are skipped.  Nothing read from QEMU is trusted
 * for size: a line is at most QMP_LINE_MAX octets, every wait has a
 * timeout, and a value is taken only from the reply to the command that
 * asked for it.  Commands carry no text from the user.
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
#include <dirent.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

#include "../util/clock.h"
#include "../util/err.h"
#include "qemu.h"

#define QMP_LINE_MAX (64u << 10)
#define QMP_TIMEOUT_MS 30000
/* QEMU caps a migration at 128 MiB/s by default; a save lifts it (and puts it back) */
#define QMP_SAVE_BANDWIDTH (1ull << 40)
#define QMP_FDNAME "xsr-save"

struct qemu_be {
	struct xsr_backend be;
	int fd;
	char sock[108];
	char line[QMP_LINE_MAX + 1]; /* the last line read */
	char rbuf[QMP_LINE_MAX];     /* read ahead */
	size_t rlen;
	int was_running; /* before save_domain */
	pid_t pid;       /* a QEMU we started (qemu_spawn), else 0 */
	char err[1024];
};

static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig) { stop_sig = sig; }

#define qfail(q, ...) util_fail((q)->err, sizeof((q)->err), -1, __VA_ARGS__)

const char *qemu_target(const char *s)
{
	return !strncmp(s, "qemu:", 5) && s[5] ? s + 5 : NULL;
}

/* The next line from QEMU into q->line (NUL-terminated, no newline): 0, or -1 with q->err set. */
static int qmp_line(struct qemu_be *q)
{
	for (;;) {
		char *nl = memchr(q->rbuf, '\n', q->rlen);
		if (nl) {
			size_t n = (size_t)(nl - q->rbuf);
			memcpy(q->line, q->rbuf, n);
			q->line[n && q->line[n - 1] == '\r' ? n - 1 : n] = 0;
			memmove(q->rbuf, nl + 1, q->rlen - n - 1);
			q->rlen -= n + 1;
			return 0;
		}
		if (q->rlen == sizeof(q->rbuf))
			return qfail(q, "QMP at %s: a line longer than %u octets", q->sock, QMP_LINE_MAX);
		struct pollfd p = {.fd = q->fd, .events = POLLIN};
		int r = poll(&p, 1, QMP_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return qfail(q, "QMP at %s: %s", q->sock, r ? strerror(errno) : "no reply in 30 s");
		ssize_t k = read(q->fd, q->rbuf + q->rlen, sizeof(q->rbuf) - q->rlen);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return qfail(q, "QMP at %s: %s", q->sock, k ? strerror(errno) : "QEMU closed the connection");
		q->rlen += (size_t)k;
	}
}

/*
 * The string value of "@key" in q->line (the first occurrence), at most
 * @cap - 1 octets, JSON escapes left as they are: 0, or -1 if absent.
 */
static int jstr(const char *line, const char *key, char *out, size_t cap)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = strstr(line, k);
	if (!p)
		return -1;
	p += strlen(k);
	while (*p == ' ')
		p++;
	if (*p++ != '"')
		return -1;
	size_t n = 0;
	while (*p && *p != '"' && n + 1 < cap) {
		if (*p == '\\' && p[1])
			out[n++] = *p++;
		if (n + 1 < cap)
			out[n++] = *p++;
	}
	out[n] = 0;
	return 0;
}

/* The unsigned number value of "@key" in @line: 0, or -1 if absent or not a number. */
static int jnum(const char *line, const char *key, uint64_t *v)
{
	char k[64], *e;
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = strstr(line, k);
	if (!p)
		return -1;
	p += strlen(k);
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	*v = strtoull(p, &e, 10);
	return errno ? -1 : 0;
}

/*
 * Send @cmd (one JSON object, no newline), with @pass_fd as SCM_RIGHTS when
 * it is >= 0, and wait for its reply, left in q->line: 0 for "return", -1
 * with q->err set for "error" (QEMU's desc) or a broken connection.
 */
static int qmp(struct qemu_be *q, const char *cmd, int pass_fd)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return qfail(q, "QMP command too long");
	struct iovec iov = {.iov_base = msg, .iov_len = (size_t)n};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} c;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pass_fd >= 0) {
		memset(&c, 0, sizeof(c));
		mh.msg_control = c.b;
		mh.msg_controllen = sizeof(c.b);
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
	}
	ssize_t w;
	do
		w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w != n)
		return qfail(q, "QMP at %s: %s%s", q->sock, w < 0 && (errno == EPIPE || errno == ECONNRESET) ? "QEMU closed the connection; sending: " : "sending: ",
			     w < 0 ? strerror(errno) : "short write");
	for (;;) {
		if (qmp_line(q) < 0)
			return -1;
		if (!strncmp(q->line, "{\"return\"", 9))
			return 0;
		if (!strncmp(q->line, "{\"error\"", 8)) {
			char desc[512] = "";
			jstr(q->line, "desc", desc, sizeof(desc));
			return qfail(q, "QEMU refused %.*s: %s", (int)strcspn(cmd, ","), cmd, desc[0] ? desc : q->line);
		}
		/* an event, or the greeting's echo: not the reply */
	}
}

/* query-migrate until it is no longer active: 0 when "completed", else -1 with QEMU's reason. */
static int wait_migration(struct qemu_be *q, uint64_t *downtime_ms)
{
	char st[64] = "";
	for (int i = 0; i < QMP_TIMEOUT_MS / 10; i++) {
		if (qmp(q, "{\"execute\":\"query-migrate\"}", -1) < 0)
			return -1;
		if (jstr(q->line, "status", st, sizeof(st)) < 0)
			st[0] = 0;
		if (!strcmp(st, "completed")) {
			*downtime_ms = 0;
			jnum(q->line, "downtime", downtime_ms);
			return 0;
		}
		if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			char why[512] = "";
			jstr(q->line, "error-desc", why, sizeof(why));
			return qfail(q, "QEMU's migration %s%s%s", st, why[0] ? ": " : "", why);
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return qfail(q, "QEMU's migration still '%s' 30 s after its stream ended", st);
}

/* ---------------- the shared-memory path ---------------- */

/* pc.ram's shared memory, mapped here (find_shared). */
struct qshared {
	int fd;
	uint8_t *map;
	uint64_t len;
	char what[160]; /* "/memfd:... (deleted)" or the file's path, as QEMU's fd names it */
};

static void shared_close(struct qshared *sh)
{
	if (sh->map)
		munmap(sh->map, sh->len);
	if (sh->fd >= 0)
		close(sh->fd);
	sh->map = NULL;
	sh->fd = -1;
}

/* QEMU's pid: the one we started, else the QMP socket's peer (SO_PEERCRED). */
static pid_t qemu_pid(struct qemu_be *q)
{
	if (q->pid > 0)
		return q->pid;
	struct ucred cr;
	socklen_t l = sizeof(cr);
	return getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 ? cr.pid : -1;
}

/*
 * Which memory backend holds pc.ram, from query-memdev: 1 with *@size when
 * the one named pc.ram (-object memory-backend-...,id=pc.ram -machine
 * memory-backend=pc.ram: the block takes the backend's id) has share=on and
 * no other backend shares (x-ignore-shared would leave that one out of the
 * stream too); 0 with @why otherwise; -1 if QMP fails.
 */
static int pcram_memdev(struct qemu_be *q, uint64_t *size, char *why, size_t whylen)
{
	if (qmp(q, "{\"execute\":\"query-memdev\"}", -1) < 0)
		return -1;
	int found = 0;
	char id[128], other[128] = "";
	/* a flat array of flat objects ("host-nodes" is an array of numbers) */
	for (const char *o = strchr(q->line, '{'); o && (o = strchr(o + 1, '{'));) {
		const char *e = strchr(o, '}');
		if (!e)
			break;
		char obj[1024];
		snprintf(obj, sizeof(obj), "%.*s", (int)(e - o + 1 < (long)sizeof(obj) ? e - o + 1 : (long)sizeof(obj) - 1), o);
		int shared = strstr(obj, "\"share\": true") || strstr(obj, "\"share\":true");
		if (jstr(obj, "id", id, sizeof(id)) < 0)
			id[0] = 0;
		if (!strcmp(id, "pc.ram")) {
			if (!shared)
				return snprintf(why, whylen, "pc.ram's memory backend has share=off"), 0;
			if (jnum(obj, "size", size) < 0 || !*size || *size % 4096)
				return snprintf(why, whylen, "query-memdev gives pc.ram no page-multiple size"), 0;
			found = 1;
		} else if (shared && !other[0]) {
			snprintf(other, sizeof(other), "%s", id);
		}
		o = e;
	}
	if (!found)
		return snprintf(why, whylen, "pc.ram is not a memory backend of its own (start QEMU with -object "
					     "memory-backend-memfd,id=pc.ram,size=...,share=on -machine memory-backend=pc.ram)"), 0;
	if (other[0])
		return snprintf(why, whylen, "memory backend %s is shared too, and x-ignore-shared would leave it out of the "
					     "stream", other), 0;
	return 1;
}

/*
 * pc.ram's shared memory, opened through QEMU's own fd for it and mapped
 * (@writable, for a restore; a save gets the fd alone): the /proc/PID/maps line
 * mapping @size octets shared from offset 0 names its device and inode, and
 * the fd in /proc/PID/fd with that inode is the one.  1 with @sh, 0 with
 * @why when it cannot be found; -1 (q->err) when it can but is unusable
 * (smaller than pc.ram, or not to be opened).
 */
static int open_shared(struct qemu_be *q, uint64_t size, int writable, struct qshared *sh, char *why, size_t whylen)
{
	pid_t pid = qemu_pid(q);
	char path[64], line[512];
	struct {
		dev_t dev;
		ino_t ino;
	} cand[8];
	int nc = 0;
	if (pid <= 0)
		return snprintf(why, whylen, "QEMU's pid is not known (SO_PEERCRED)"), 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return snprintf(why, whylen, "%s: %s", path, strerror(errno)), 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, mnr;
		char perm[8];
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perm, &off, &maj, &mnr, &ino) != 7)
			continue;
		if (perm[3] == 's' && off == 0 && hi - lo == size && ino && nc < 8)
			cand[nc++] = (typeof(cand[0])){makedev(maj, mnr), (ino_t)ino};
	}
	fclose(f);
	if (!nc)
		return snprintf(why, whylen, "QEMU (pid %d) maps no shared memory of pc.ram's 0x%llx octets", (int)pid,
				(unsigned long long)size), 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return snprintf(why, whylen, "%s: %s (QEMU runs as another user?)", path, strerror(errno)), 0;
	int hits = 0;
	char fdp[330] = "";
	struct dirent *de;
	while ((de = readdir(d))) {
		char p2[330];
		struct stat sb;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name);
		if (stat(p2, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		for (int i = 0; i < nc; i++)
			if (sb.st_dev == cand[i].dev && sb.st_ino == cand[i].ino) {
				if (!hits++)
					snprintf(fdp, sizeof(fdp), "%s", p2);
				break;
			}
	}
	closedir(d);
	if (hits != 1)
		return snprintf(why, whylen, hits ? "QEMU (pid %d) has %d fds of memory mapped like pc.ram: which one is not known"
						  : "none of QEMU's (pid %d) fds is its shared memory of pc.ram's size%.0d",
				(int)pid, hits), 0;
	ssize_t n = readlink(fdp, sh->what, sizeof(sh->what) - 1);
	sh->what[n > 0 ? n : 0] = 0;
	if ((sh->fd = open(fdp, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)) < 0)
		return qfail(q, "pc.ram's shared memory %s (%s): %s", sh->what, fdp, strerror(errno));
	struct stat sb;
	if (fstat(sh->fd, &sb) < 0 || (uint64_t)sb.st_size < size) {
		qfail(q, "pc.ram's shared memory %s holds %lld octets, fewer than pc.ram's %llu: it was truncated under QEMU",
		      sh->what, (long long)sb.st_size, (unsigned long long)size);
		shared_close(sh);
		return -1;
	}
	sh->len = size;
	if (!writable)
		return 1; /* a save hands the fd to the library, which maps it and skips its holes */
	sh->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sh->fd, 0);
	if (sh->map == MAP_FAILED) {
		sh->map = NULL;
		qfail(q, "mapping pc.ram's shared memory %s: %s", sh->what, strerror(errno));
		shared_close(sh);
		return -1;
	}
	return 1;
}

/*
 * Decide the memory path (XSR_MEMPATH_*): 1 with @sh mapped for the
 * shared-memory path, 0 for QEMU's stream (@why says why, for AUTO), -1
 * with q->err (SHARED asked for and not possible, or the memory unusable).
 */
static int choose_path(struct qemu_be *q, int want, int live, int writable, struct qshared *sh, char *why,
		       size_t whylen)
{
	uint64_t size = 0;
	int r;
	why[0] = 0;
	if (want == XSR_MEMPATH_TRANSCODE)
		return 0;
	if (live) {
		snprintf(why, whylen, "--live: QEMU pre-copies by itself; QMP gives no dirty log of shared memory");
		r = 0;
	} else if ((r = pcram_memdev(q, &size, why, whylen)) == 1) {
		r = open_shared(q, size, writable, sh, why, whylen);
	}
	if (r < 0)
		return -1;
	if (r == 0 && want == XSR_MEMPATH_SHARED)
		return qfail(q, "the shared-memory path is not possible: %s", why);
	if (r == 1)
		snprintf(why, whylen, "pc.ram is shared memory (%s)", sh->what);
	return r;
}

/* Whether query-migrate-capabilities' reply @line has capability @name on: its object {"state": ..., "capability": ...}. */
static int cap_on(const char *line, const char *name)
{
	char k[80];
	snprintf(k, sizeof(k), "\"%s\"", name);
	const char *c = strstr(line, k);
	if (!c)
		return 0;
	const char *a = c, *e = strchr(c, '}');
	while (a > line && *a != '{')
		a--;
	if (!e)
		return 0;
	const char *t = strstr(a, "true");
	return t && t < e;
}

/* migrate-set-capabilities x-ignore-shared to @on: 0, or -1 with q->err. */
static int ignore_shared(struct qemu_be *q, int on)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":"
		 "\"x-ignore-shared\",\"state\":%s}]}}",
		 on ? "true" : "false");
	return qmp(q, cmd, -1);
}

/*
 * x-ignore-shared back to @on after a save changed it, once QEMU's
 * migration (if @started, cancelled) is no longer active (up to 5 s).  On
 * failure the reason joins q->err (a failed save's, or a new one): left
 * wrong, QEMU's own later migrations would leave pc.ram out, or send it
 * when the user wanted it out.  0 or -1.
 */
static int restore_cap(struct qemu_be *q, int started, int on)
{
	char keep[sizeof(q->err)], st[64] = "";
	memcpy(keep, q->err, sizeof(keep));
	for (int i = 0; started && i < 500; i++) {
		if (qmp(q, "{\"execute\":\"query-migrate\"}", -1) < 0 || jstr(q->line, "status", st, sizeof(st)) < 0 ||
		    (strcmp(st, "setup") && strcmp(st, "active") && strcmp(st, "cancelling") && strcmp(st, "device") &&
		     strcmp(st, "pre-switchover")))
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (ignore_shared(q, on) == 0) {
		memcpy(q->err, keep, sizeof(keep));
		return 0;
	}
	char why[sizeof(q->err)];
	memcpy(why, q->err, sizeof(why));
	if (keep[0])
		snprintf(q->err, sizeof(q->err), "%.400s; and QEMU's x-ignore-shared could not be put back %s: %.300s", keep,
			 on ? "on" : "off", why);
	else
		snprintf(q->err, sizeof(q->err), "QEMU's x-ignore-shared could not be put back %s after the save: %.300s",
			 on ? "on" : "off", why);
	return -1;
}

/* An unlinked file for the stream: $TMPDIR, else /var/tmp (a guest's RAM: disk, not tmpfs). */
static int spool_file(struct qemu_be *q)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/var/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	snprintf(path, sizeof(path), "%s/xsr-qemu.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return qfail(q, "a temporary file in %s for QEMU's stream: %s", dir, strerror(errno));
	unlink(path);
	return fd;
}

/* The pipe into @out until EOF, with splice (no copy through us): octets, or -1 with q->err set. */
static int64_t drain(struct qemu_be *q, int in, int out)
{
	int64_t total = 0;
	for (;;) {
		if (stop_sig)
			return qfail(q, "stopped by signal %d", (int)stop_sig);
		ssize_t k = splice(in, NULL, out, NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return qfail(q, "copying QEMU's stream to a temporary file: %s", strerror(errno));
		if (k == 0)
			return total;
		total += k;
	}
}

static int q_save_domain(struct xsr_backend *be, int out_fd, const struct xsr_domain_save_opts *o,
			 struct xsr_domain_stats *st)
{
	struct qemu_be *q = (struct qemu_be *)be;
	uint64_t t0 = util_now_ns(), bw = 0, downtime = 0, t_stop = 0, t_done;
	int p[2] = {-1, -1}, spool = -1, bw_set = 0, started = 0, stopped = 0, rc = -1, shared = 0, cap_set = 0;
	struct qshared sh = {.fd = -1};
	char cmd[256];

	memset(st, 0, sizeof(*st));
	if (o->catch_signals) {
		struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: splice returns EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	if (qmp(q, "{\"execute\":\"query-status\"}", -1) < 0)
		return -1;
	q->was_running = strstr(q->line, "\"running\": true") || strstr(q->line, "\"running\":true");
	char state[64] = "";
	jstr(q->line, "status", state, sizeof(state));
	if (!strcmp(state, "postmigrate"))
		return qfail(q, "the guest is paused after an earlier migration (QEMU's state 'postmigrate'), and QEMU "
				"refuses to migrate it again until it has run: resume it first (QMP cont)");
	if ((shared = choose_path(q, o->memory_path, o->live, 0, &sh, st->path_why, sizeof(st->path_why))) < 0)
		return -1;
	/*
	 * x-ignore-shared on for the shared path, off for QEMU's stream (set by
	 * someone else, it would leave shared pc.ram out of the stream); put
	 * back as it was at the end
	 */
	if (qmp(q, "{\"execute\":\"query-migrate-capabilities\"}", -1) < 0) {
		shared_close(&sh);
		return -1;
	}
	int was_on = cap_on(q->line, "x-ignore-shared");
	if (was_on != !!shared && ignore_shared(q, shared) < 0) {
		shared_close(&sh);
		return -1;
	}
	cap_set = was_on != !!shared;
	if (shared) {
		st->shared_memory = 1;
		st->native = 1;
	}
	if (qmp(q, "{\"execute\":\"query-migrate-parameters\"}", -1) < 0 || jnum(q->line, "max-bandwidth", &bw) < 0) {
		if (!q->err[0])
			qfail(q, "QEMU's migration parameters have no max-bandwidth");
		goto out; /* x-ignore-shared is put back there */
	}
	snprintf(cmd, sizeof(cmd), "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":%llu}}",
		 QMP_SAVE_BANDWIDTH);
	if (qmp(q, cmd, -1) < 0)
		goto out;
	bw_set = 1;
	if ((spool = spool_file(q)) < 0)
		goto out;
	if (pipe2(p, O_CLOEXEC) < 0) {
		qfail(q, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((!o->live || shared) && q->was_running) {
		if (qmp(q, "{\"execute\":\"stop\"}", -1) < 0)
			goto out;
		stopped = 1;
	}
	t_stop = util_now_ns();
	if (qmp(q, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"" QMP_FDNAME "\"}}", p[1]) < 0)
		goto out;
	close(p[1]);
	p[1] = -1;
	if (qmp(q, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:" QMP_FDNAME "\"}}", -1) < 0) {
		char keep[sizeof(q->err)];
		memcpy(keep, q->err, sizeof(keep));
		qmp(q, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"" QMP_FDNAME "\"}}", -1);
		memcpy(q->err, keep, sizeof(keep));
		goto out;
	}
	started = 1;
	int64_t got = drain(q, p[0], spool);
	if (got < 0)
		goto out;
	if (wait_migration(q, &downtime) < 0)
		goto out;
	started = 0;
	t_done = util_now_ns();
	/* QEMU's stream is whole and the guest paused (postmigrate): now the import. */
	struct xsr_qemu_import_opts io = {.layout = o->stream ? XSR_LAYOUT_STREAM : 0, .compress = o->compress,
					  .kind = o->kind, .begin = o->begin, .begin_ctx = o->ctx};
	struct xsr_qemu_import_stats is;
	char ierr[512];
	/* the shared path: QEMU's stream holds the device state and the other blocks, pc.ram comes from the mapping */
	if ((shared ? xsr_qemu_import_shared_fd(spool, sh.fd, sh.len, out_fd, &io, &is, ierr, sizeof(ierr))
		    : xsr_qemu_import_fd(spool, out_fd, &io, &is, ierr, sizeof(ierr))) < 0) {
		qfail(q, "QEMU's stream (%" PRId64 " octets) does not import%s: %s", got,
		      shared ? " with pc.ram from its shared memory" : "", ierr);
		goto out;
	}
	off_t end = lseek(out_fd, 0, SEEK_END);
	st->bytes = end > 0 ? (uint64_t)end : 0;
	st->transcode_ns = util_now_ns() - t_done;
	/* without --live: stopped until finish(); with it: QEMU's own downtime */
	st->suspend_ns = o->live && !shared ? downtime * 1000000ull : t_done - t_stop;
	rc = 0;
out:
	shared_close(&sh);
	if (stop_sig)
		st->stop_signal = stop_sig;
	if (started) {
		char keep[sizeof(q->err)];
		memcpy(keep, q->err, sizeof(keep));
		qmp(q, "{\"execute\":\"migrate_cancel\"}", -1);
		memcpy(q->err, keep, sizeof(keep));
	}
	if (p[0] >= 0)
		close(p[0]); /* a QEMU blocked writing into the pipe gets EPIPE and finishes cancelling */
	if (p[1] >= 0)
		close(p[1]);
	if (spool >= 0)
		close(spool);
	/* QEMU refuses migrate-set-capabilities while a migration is active: put it back once none is */
	if (cap_set && restore_cap(q, started, !shared) < 0 && rc == 0)
		rc = -1;
	if (bw_set) {
		char keep[sizeof(q->err)];
		memcpy(keep, q->err, sizeof(keep));
		snprintf(cmd, sizeof(cmd),
			 "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":%" PRIu64 "}}", bw);
		qmp(q, cmd, -1);
		memcpy(q->err, keep, sizeof(keep));
	}
	if (rc < 0 && (stopped || (q->was_running && o->live))) {
		/* a failed save leaves the guest as it was */
		char keep[sizeof(q->err)];
		memcpy(keep, q->err, sizeof(keep));
		if (qmp(q, "{\"execute\":\"cont\"}", -1) < 0)
			st->stays_suspended = 1;
		memcpy(q->err, keep, sizeof(keep));
	}
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}

static int q_live_probe(struct xsr_backend *be, char *why, size_t whylen)
{
	(void)be;
	snprintf(why, whylen, "QEMU pre-copies while the guest runs");
	return 1;
}

static int q_finish(struct xsr_backend *be, int destroy)
{
	struct qemu_be *q = (struct qemu_be *)be;
	if (destroy) {
		/* the reply may not come before QEMU closes the socket: either is an end */
		if (qmp(q, "{\"execute\":\"quit\"}", -1) < 0 && !strstr(q->err, "closed the connection")) {
			if (q->pid > 0)
				kill(q->pid, SIGKILL);
			else
				return -1;
		}
		if (q->pid > 0) {
			/* QEMU exits at once after quit; 10 s, then it is killed */
			int gone = 0;
			for (int i = 0; i < 200 && !(gone = waitpid(q->pid, NULL, WNOHANG) != 0); i++)
				nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
			if (!gone) {
				kill(q->pid, SIGKILL);
				waitpid(q->pid, NULL, 0);
			}
			q->pid = 0;
		}
		return 0;
	}
	if (q->pid > 0)
		return 0; /* a QEMU we started runs on: resume() decided whether its guest does */
	return q->was_running ? qmp(q, "{\"execute\":\"cont\"}", -1) : 0;
}

/* ---- the restore half: a QEMU we start with -incoming defer (qemu_spawn) ---- */

#define QMP_IN_FDNAME "xsr-restore"

/*
 * The shared path's first half: the image's memory (pc.ram, its runs in
 * order) into @sh, data pages read straight into the mapping a span at a
 * time, zero pages punched out as holes (the memory may hold an earlier
 * guest's octets: a file backend reused).  0, or -1 with q->err.
 */
static int fill_shared(struct qemu_be *q, struct xsr_image *img, struct qshared *sh,
		       const struct xsr_domain_restore_opts *o)
{
	enum { B = 1024 };
	uint32_t nruns = xsr_image_nruns(img);
	const struct xsr_memrun *runs = xsr_image_runs(img);
	uint64_t slots = 0, done = 0;
	for (uint32_t r = 0; r < nruns; r++)
		slots += runs[r].count; /* the reader checked the sum against XSR_MAX_PAGES */
	if (slots * 4096 != sh->len)
		return qfail(q, "the image's memory is 0x%llx octets, QEMU's pc.ram shared memory 0x%llx: -m and the memory "
				"backend's size must be the saved guest's",
			     (unsigned long long)(slots * 4096), (unsigned long long)sh->len);
	int rc = xsr_image_check_index(img);
	struct xsr_index_entry *ix = malloc(B * sizeof(*ix));
	if (rc < 0 || !ix) {
		free(ix);
		return qfail(q, "page index: %s", rc < 0 ? xsr_image_error(img) : "out of memory");
	}
	for (uint32_t r = 0; r < nruns; r++) {
		for (uint64_t first = 0; first < runs[r].count; first += B) {
			uint64_t m = runs[r].count - first < B ? runs[r].count - first : B;
			if ((rc = xsr_image_run_index(img, r, first, m, ix)) < 0)
				goto fail;
			for (uint64_t k = 0; k < m;) {
				uint64_t z = k + 1, data = ix[k].flags & XSR_IDX_DATA;
				while (z < m && !!(ix[z].flags & XSR_IDX_DATA) == !!data)
					z++;
				uint8_t *at = sh->map + (done + k) * 4096;
				if (data) {
					if ((rc = xsr_image_read_pages(img, r, first + k, z - k, at, ix + k)) < 0)
						goto fail;
				} else if (fallocate(sh->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)((done + k) * 4096),
						     (off_t)((z - k) * 4096)) < 0) {
					memset(at, 0, (z - k) * 4096); /* a file system without holes */
				}
				k = z;
			}
			done += m;
			if (o->progress)
				o->progress(o->pctx, done, slots);
		}
	}
	free(ix);
	return 0;
fail:
	free(ix);
	return qfail(q, "the image's pages: %s", xsr_image_error(img));
}

static int q_restore_domain(struct xsr_backend *be, int img_fd, const struct xsr_domain_restore_opts *o,
			    struct xsr_domain_stats *st)
{
	struct qemu_be *q = (struct qemu_be *)be;
	struct xsr_image *img = NULL;
	struct xsr_qemu_export_stats es = {0};
	uint64_t t0 = util_now_ns(), t_sent;
	int p[2] = {-1, -1}, rc = -1, shared;
	struct qshared sh = {.fd = -1};
	char ierr[512];

	memset(st, 0, sizeof(*st));
	if (xsr_image_open(&img, img_fd, ierr, sizeof(ierr)) < 0)
		return qfail(q, "%s", ierr);
	if ((shared = choose_path(q, o->memory_path, 0, 1, &sh, st->path_why, sizeof(st->path_why))) < 0)
		goto out;
	/* the shared path: pc.ram written here, and QEMU told to expect no page of it */
	if (shared && (fill_shared(q, img, &sh, o) < 0 || ignore_shared(q, 1) < 0))
		goto out;
	st->shared_memory = st->native = shared;
	if (pipe2(p, O_CLOEXEC) < 0) {
		qfail(q, "pipe: %s", strerror(errno));
		goto out;
	}
	if (qmp(q, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"" QMP_IN_FDNAME "\"}}", p[0]) < 0)
		goto out;
	close(p[0]);
	p[0] = -1;
	if (qmp(q, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:" QMP_IN_FDNAME "\"}}", -1) < 0)
		goto out;
	/* QEMU reads the stream as it comes: the export writes straight into the pipe */
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int erc = (shared ? xsr_qemu_export_shared : xsr_qemu_export)(img, p[1], NULL, &es, ierr, sizeof(ierr));
	signal(SIGPIPE, old);
	close(p[1]);
	p[1] = -1;
	t_sent = util_now_ns();
	if (erc < 0) {
		/* QEMU stopped reading: its reason is the one to give */
		uint64_t dt;
		if (es.epipe && wait_migration(q, &dt) < 0)
			goto out;
		qfail(q, "%s", ierr);
		goto out;
	}
	uint64_t downtime;
	if (wait_migration(q, &downtime) < 0)
		goto out;
	/* left on, a later migration of this QEMU (QEMU's own, or xsr's transcode) would leave pc.ram out */
	if (shared && ignore_shared(q, 0) < 0)
		goto out;
	/*
	 * QEMU leaves the guest in the state its stream's global-state section
	 * names (a guest saved paused stays paused, whatever -S says); the
	 * guest runs unless --paused asked otherwise.
	 */
	if (!o->paused && qmp(q, "{\"execute\":\"cont\"}", -1) < 0)
		goto out;
	st->bytes = es.bytes;
	st->transcode_ns = t_sent - t0;
	st->suspend_ns = util_now_ns() - t0;
	rc = 0;
out:
	shared_close(&sh);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	xsr_image_close(img);
	/*
	 * QEMU exits when an incoming migration fails to load (other RAM sizes,
	 * devices or machine), so QMP may only say that the socket went away:
	 * say what happened instead.  Its own message went to its stderr.
	 */
	int status;
	for (int i = 0; rc < 0 && q->pid > 0 && i < 40; i++) {
		if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
			q->pid = 0;
			qfail(q, "QEMU refused the stream and exited (%s %d; its message is above): the machine, -m and "
				 "devices of QEMU-COMMAND must be the saved guest's",
			      WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			break;
		}
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}

static int q_resume(struct xsr_backend *be)
{
	return qmp((struct qemu_be *)be, "{\"execute\":\"cont\"}", -1);
}

static int q_rename(struct xsr_backend *be, const char *strip, const char *add)
{
	/*
	 * The migration hand-over renames the two copies so that they never
	 * share a name (Xen's domain names).  Two QEMUs share nothing by name:
	 * the receiver's copy stays paused until RELEASED, and this one quits.
	 */
	(void)be;
	(void)strip;
	(void)add;
	return 0;
}

static const char *q_error(struct xsr_backend *be)
{
	return ((struct qemu_be *)be)->err;
}

static void q_close(struct xsr_backend *be)
{
	struct qemu_be *q = (struct qemu_be *)be;
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}

static const struct xsr_backend_ops qemu_ops = {
	.name = "qemu",
	.save_domain = q_save_domain,
	.live_probe = q_live_probe,
	.restore_domain = q_restore_domain,
	.resume = q_resume,
	.finish = q_finish,
	.rename = q_rename,
	.error = q_error,
	.close = q_close,
};

/* Connect to @sock and negotiate: 0, or -1 with the reason in @err (@q is kept either way). */
static int qmp_connect(struct qemu_be *q, const char *sock, char *err, size_t errlen);

int qemu_spawn(struct xsr_backend **be, char *const *argv, int argc, int paused, uint64_t shared_ram, pid_t *pid,
	       char *err, size_t errlen)
{
	struct qemu_be *q = calloc(1, sizeof(*q));
	char dir[] = "/tmp/xsr-qemu.XXXXXX", sock[64], spec[96], memobj[128];
	char **av = NULL;

	*be = NULL;
	if (!q || argc < 1 || argc > 4096 || !(av = calloc((size_t)argc + 10, sizeof(*av)))) {
		free(q);
		return util_fail(err, errlen, -1, argc < 1 ? "no QEMU command after --" : "out of memory");
	}
	q->be.ops = &qemu_ops;
	q->fd = -1;
	if (!mkdtemp(dir)) {
		util_fail(err, errlen, -1, "a directory for QEMU's QMP socket: %s", strerror(errno));
		goto fail;
	}
	snprintf(sock, sizeof(sock), "%s/qmp.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", sock);
	int n = 0;
	for (int i = 0; i < argc; i++)
		av[n++] = argv[i];
	av[n++] = "-incoming";
	av[n++] = "defer";
	av[n++] = "-qmp";
	av[n++] = spec;
	if (paused)
		av[n++] = "-S";
	int has_backend = 0;
	for (int i = 1; i < argc; i++)
		has_backend |= strstr(argv[i], "memory-backend=") != NULL;
	if (shared_ram && !has_backend) {
		/* QEMU makes the memfd; restore_domain finds it through /proc/PID/fd as for any shared pc.ram */
		snprintf(memobj, sizeof(memobj), "memory-backend-memfd,id=pc.ram,size=%llu,share=on",
			 (unsigned long long)shared_ram);
		av[n++] = "-object";
		av[n++] = memobj;
		av[n++] = "-machine";
		av[n++] = "memory-backend=pc.ram";
	}
	av[n] = NULL;
	q->pid = fork();
	if (q->pid < 0) {
		util_fail(err, errlen, -1, "fork: %s", strerror(errno));
		goto fail_dir;
	}
	if (q->pid == 0) {
		setsid(); /* QEMU outlives xsr, out of its terminal's signals */
		/* stdin from /dev/null; stdout onto stderr, so that pid=$(xsr restore ...)
		 * sees the end of xsr's output when xsr exits, not when QEMU does */
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(2, 1);
		execvp(av[0], av);
		fprintf(stderr, "xsr restore: %s: %s\n", av[0], strerror(errno));
		_exit(127);
	}
	/* until QEMU listens, or exits */
	int ok = -1;
	for (int i = 0; i < 300 && ok < 0; i++) {
		int status;
		if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
			q->pid = 0;
			util_fail(err, errlen, -1, "%s exited (%s %d) before its QMP socket was up; its messages are above",
				  av[0], WIFEXITED(status) ? "status" : "signal",
				  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			goto fail_dir;
		}
		if (access(sock, F_OK) == 0)
			ok = qmp_connect(q, sock, err, errlen);
		if (ok < 0) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (ok < 0) {
		if (!err[0])
			util_fail(err, errlen, -1, "%s: no QMP socket after 15 s", av[0]);
		goto fail_dir;
	}
	/* connected: nobody else needs the path */
	unlink(sock);
	rmdir(dir);
	free(av);
	*pid = q->pid;
	*be = &q->be;
	return 0;
fail_dir:
	unlink(sock);
	rmdir(dir);
fail:
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	free(av);
	if (q->fd >= 0)
		close(q->fd);
	free(q);
	return -1;
}

static int qmp_connect(struct qemu_be *q, const char *sock, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(a.sun_path))
		return util_fail(err, errlen, -1, "QMP socket path %s: longer than %zu octets", sock,
				 sizeof(a.sun_path) - 1);
	snprintf(q->sock, sizeof(q->sock), "%s", sock);
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	if (q->fd >= 0)
		close(q->fd);
	q->rlen = 0;
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return util_fail(err, errlen, -1, "QMP socket %s: %s (start QEMU with -qmp unix:%s,server=on,wait=off)",
				 sock, strerror(errno), sock);
	/* the greeting, then capabilities negotiation */
	if (qmp_line(q) < 0 || strncmp(q->line, "{\"QMP\"", 6))
		return util_fail(err, errlen, -1, "%s: not a QMP socket%s%s", sock, q->err[0] ? ": " : "", q->err);
	if (qmp(q, "{\"execute\":\"qmp_capabilities\"}", -1) < 0)
		return util_fail(err, errlen, -1, "%s", q->err);
	return 0;
}

int qemu_open(struct xsr_backend **be, const char *sock, char *err, size_t errlen)
{
	struct qemu_be *q = calloc(1, sizeof(*q));

	*be = NULL;
	if (!q)
		return util_fail(err, errlen, -1, "out of memory");
	q->be.ops = &qemu_ops;
	q->fd = -1;
	if (qmp_connect(q, sock, err, errlen) < 0) {
		q_close(&q->be);
		return -1;
	}
	*be = &q->be;
	return 0;
}
