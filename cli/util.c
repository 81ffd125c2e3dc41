/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the xsr verbs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xsrelf/format.h>
#include <xsrelf/io.h>
#include <xsrelf/paging.h>
#include <xsrelf/reader.h>

#include "../backends/backend.h"
#include "../vmm/vmm.h"
#include "cli.h"

int64_t cli_parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end || v > (unsigned long long)INT64_MAX >> shift)
		return -1;
	return (int64_t)(v << shift);
}

int cli_parse_compress(const char *verb, const char *s)
{
	if (!strcmp(s, "none"))
		return XSR_COMPRESS_NONE;
	if (!strcmp(s, "zstd"))
		return XSR_COMPRESS_ZSTD;
	if (!strcmp(s, "lz4"))
		return XSR_COMPRESS_LZ4;
	cli_err(verb, "--compress %s: need none, zstd or lz4", s);
	return -1;
}

int cli_parse_vcpu(const char *verb, const char *opt, const char *s, uint32_t *out)
{
	char *e;
	errno = 0;
	unsigned long v = strtoul(s, &e, 0);
	if (errno || e == s || *e || *s == '-' || v >= XSR_MAX_VCPUS) {
		cli_err(verb, "%s %s: need a vCPU number below %u", opt, s, XSR_MAX_VCPUS);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int cli_qemu_path(const char *verb, const char *arg, int *path)
{
	static const char *const names[] = {[XSR_MEMPATH_AUTO] = "auto", [XSR_MEMPATH_TRANSCODE] = "transcode",
					    [XSR_MEMPATH_SHARED] = "shared"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(arg, names[i])) {
			*path = i;
			return 0;
		}
	cli_err(verb, "--qemu-path %s: auto, transcode or shared", arg);
	return -1;
}

int cli_image_ram(const char *verb, int fd, uint64_t *bytes)
{
	struct xsr_image *img;
	char err[512];
	if (xsr_image_open(&img, fd, err, sizeof(err)) < 0) {
		cli_err(verb, "%s", err);
		return -1;
	}
	uint64_t n = 0;
	for (uint32_t r = 0; r < xsr_image_nruns(img); r++)
		n += xsr_image_runs(img)[r].count; /* the reader bounds the sum by XSR_MAX_PAGES */
	xsr_image_close(img);
	*bytes = n * XSR_PAGE_SIZE;
	return 0;
}

int cli_read_file(const char *verb, const char *path, size_t max, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		cli_err(verb, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char *b = malloc(max + 1);
	size_t n = b ? fread(b, 1, max + 1, f) : 0;
	int bad = !b || ferror(f);
	fclose(f);
	if (bad || n == 0 || n > max) {
		cli_err(verb, "%s: %s", path, !b ? "out of memory" : bad ? "read error" : n == 0 ? "empty" : "too large");
		free(b);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

/*
 * Length of the UTF-8 sequence at @s (at most @n octets) when it is valid,
 * shortest-form and encodes U+00A0 or above (no C1 control); else 0.
 */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp < 0xa0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

size_t cli_esc_to(char *out, size_t outlen, const char *s, size_t max, int keep_nl)
{
	size_t o = 0;
	if (!outlen)
		return 0;
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t n = 0, u = 0;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			tmp[n++] = (char)c;
		else if (c == '\\')
			tmp[n++] = '\\', tmp[n++] = '\\';
		else if (keep_nl && (c == '\n' || c == '\t'))
			tmp[n++] = (char)c;
		else if (c >= 0x80 && (u = utf8_printable((const unsigned char *)s + i, strnlen(s + i, max - i))) > 0) {
			memcpy(tmp, s + i, u);
			n = u;
			i += u - 1;
		} else
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		if (o + n >= outlen)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = 0;
	return o;
}

const char *cli_esc(const char *s, size_t max)
{
	static char ring[8][1024];
	static unsigned next;
	char *b = ring[next++ % 8];
	cli_esc_to(b, sizeof(ring[0]), s, max, 0);
	return b;
}

/*
 * --json errors: the first message a verb gives through cli_err() is kept,
 * and cli_json_error_exit() turns it into the one object on stdout.  The
 * first, because later messages are mostly the consequences of the first.
 */
static struct {
	int on, answered, stdout_data;
	char verb[32];
	char msg[4096];
} jerr;

void cli_json_errors(const char *verb)
{
	jerr.on = 1;
	snprintf(jerr.verb, sizeof(jerr.verb), "%s", verb);
}

void cli_json_answered(void)
{
	jerr.answered = 1;
}

void cli_stdout_is_data(void)
{
	jerr.stdout_data = 1;
}

int cli_json_error_exit(int rc)
{
	if (!jerr.on || jerr.answered || rc == XSR_EXIT_OK)
		return rc;
	/* A verb that writes an image to stdout keeps it free of anything else. */
	FILE *f = jerr.stdout_data ? stderr : stdout;
	fprintf(f, "{\"error\":{\"verb\":");
	cli_json_str(f, jerr.verb);
	fprintf(f, ",\"message\":");
	if (jerr.msg[0])
		cli_json_str(f, jerr.msg);
	else if (rc == XSR_EXIT_USAGE)
		fprintf(f, "\"bad command line: see 'xsr %s --help'\"", jerr.verb[0] ? jerr.verb : "--");
	else
		fprintf(f, "\"failed (exit %d)\"", rc);
	fprintf(f, ",\"exit\":%d}}\n", rc);
	jerr.answered = 1;
	return rc;
}

void cli_err(const char *verb, const char *fmt, ...)
{
	/* Messages carry names and text from images: escaped like stdout. */
	char raw[4096], esc[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	cli_esc_to(esc, sizeof(esc), raw, sizeof(raw), 1);
	fprintf(stderr, "xsr %s: %s\n", verb, esc);
	/* raw: cli_json_str() escapes what JSON must not carry */
	if (jerr.on && !jerr.msg[0])
		snprintf(jerr.msg, sizeof(jerr.msg), "%s", raw);
}

int cli_open_in(const char *verb, const char *path)
{
	if (!strcmp(path, "-"))
		return STDIN_FILENO;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		cli_err(verb, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

void cli_json_strn(FILE *f, const char *s, size_t max)
{
	fputc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t u;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, f);
		else if (c >= 0x80 && (u = utf8_printable((const unsigned char *)s + i, strnlen(s + i, max - i))) > 0) {
			fwrite(s + i, 1, u, f);
			i += u - 1;
		} else
			fprintf(f, "\\u%04x", c); /* controls, DEL, and each octet that is not UTF-8 */
	}
	fputc('"', f);
}

void cli_json_str(FILE *f, const char *s)
{
	cli_json_strn(f, s, SIZE_MAX);
}

static char *jring(void)
{
	static char ring[64][24];
	static unsigned next;
	return ring[next++ % 64];
}

const char *cli_jhex(uint64_t v)
{
	char *b = jring();
	snprintf(b, 24, "\"0x%" PRIx64 "\"", v);
	return b;
}

const char *cli_jdec(uint64_t v)
{
	char *b = jring();
	snprintf(b, 24, "\"%" PRIu64 "\"", v);
	return b;
}

/* "12 KiB", "127.9 MiB": a size for people, in @buf. */
static const char *size_str(char buf[32], uint64_t octets)
{
	if (octets < (1u << 20))
		snprintf(buf, 32, "%" PRIu64 " KiB", octets >> 10);
	else
		snprintf(buf, 32, "%.1f MiB", octets / 1048576.0);
	return buf;
}

void cli_paging_report(FILE *f, const struct xsr_paging_stats *st, uint32_t vcpu, int json)
{
	if (json) {
		/* addresses as "0x...", counts and sizes as decimal strings (xsr(1), JSON OUTPUT) */
		fprintf(f, "{\"vcpu\":%u,\"mappings\":%s,\"octets\":%s,\"kept\":%s"
			   ",\"kept_octets\":%s,\"kernel_octets\":%s,\"direct_map\":%s"
			   ",\"direct_octets\":%s,\"left_out\":%s,\"left_out_octets\":%s"
			   ",\"left_out_start\":%s,\"left_out_last\":%s,\"left_out_kernel\":%s"
			   ",\"left_out_direct\":%s,\"left_out_repeats\":%s,\"outside_pages\":%s,\"tables\":%s"
			   ",\"machine_frames\":%s,\"skip_start\":%s,\"skip_end\":%s}",
			vcpu, cli_jdec(st->mappings), cli_jdec(st->octets), cli_jdec(st->kept), cli_jdec(st->kept_octets),
			cli_jdec(st->kernel_octets), cli_jhex(st->direct_map), cli_jdec(st->direct_octets),
			cli_jdec(st->left_out), cli_jdec(st->left_out_octets), cli_jhex(st->left_out_start),
			cli_jhex(st->left_out_last), cli_jdec(st->left_out_kernel), cli_jdec(st->left_out_direct),
			cli_jdec(st->left_out_repeats), cli_jdec(st->outside_pages), cli_jdec(st->tables),
			st->machine_frames ? "true" : "false", cli_jhex(st->skip_start), cli_jhex(st->skip_end));
		return;
	}
	char a[32], b[32];
	fprintf(f, "paging view of vCPU %u: %" PRIu64 " PT_LOADs mapping %s; kernel image and above %s", vcpu,
		st->kept, size_str(a, st->kept_octets), size_str(b, st->kernel_octets));
	if (st->direct_map)
		fprintf(f, ", direct map at 0x%" PRIx64 " %s", st->direct_map, size_str(a, st->direct_octets));
	fprintf(f, "\n");
	if (st->machine_frames)
		fprintf(f, "  page-table entries read as machine frames, through .xsr.p2m (a Xen PV core)\n");
	if (st->skip_start < st->skip_end)
		fprintf(f, "  0x%" PRIx64 "-0x%" PRIx64 " not walked (Xen's part of a PV guest)\n", st->skip_start,
			st->skip_end - 1);
	if (!st->left_out)
		return;
	fprintf(f, "  left out (a core holds at most %u PT_LOADs): %" PRIu64 " of %" PRIu64 " mappings, %s, between 0x%" PRIx64
		   " and 0x%" PRIx64 "; %" PRIu64 " of them repeat the frames of the mapping before them\n",
		XSR_MAX_RUNS, st->left_out, st->mappings, size_str(a, st->left_out_octets), st->left_out_start,
		st->left_out_last, st->left_out_repeats);
	if (st->left_out_kernel || st->left_out_direct)
		fprintf(f, "  warning: %" PRIu64 " mappings of the kernel image and above and %" PRIu64
			   " of the direct map are among them\n", st->left_out_kernel, st->left_out_direct);
	else
		fprintf(f, "  none of the kernel image and above or of the direct map\n");
}

/*
 * The hidden temporary files that exist right now, so that SIGINT, SIGTERM
 * and SIGHUP can remove them (a crash or SIGKILL cannot: see xsr(1), FILES).
 * Slots are filled and cleared with the three signals blocked; the handler
 * only reads them and calls unlink() and _exit(), both async-signal-safe.
 */
#define XSR_MAX_TMP 4
static char *volatile live_tmp[XSR_MAX_TMP];

static void on_stop_signal(int sig)
{
	for (int i = 0; i < XSR_MAX_TMP; i++)
		if (live_tmp[i])
			unlink(live_tmp[i]);
	_exit(128 + sig);
}

static void block_stop_signals(int how, sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(how, &set, old);
}

static void track_tmp(char *tmp, int add)
{
	static int installed;
	sigset_t old;
	block_stop_signals(SIG_BLOCK, &old);
	for (int i = 0; i < XSR_MAX_TMP; i++)
		if (add ? !live_tmp[i] : live_tmp[i] == tmp) {
			live_tmp[i] = add ? tmp : NULL;
			break;
		}
	if (add && !installed) {
		/* A signal the caller ignores (nohup) stays ignored. */
		static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct sigaction sa, prev;
			if (sigaction(sigs[i], NULL, &prev) == 0 && prev.sa_handler == SIG_IGN)
				continue;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_stop_signal;
			sigfillset(&sa.sa_mask);
			sigaction(sigs[i], &sa, NULL);
		}
		installed = 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void out_free(struct xsr_outfile *o)
{
	if (o->tmp)
		track_tmp(o->tmp, 0);
	free(o->tmp);
	free(o->path);
	free(o->target);
	o->tmp = o->path = o->target = NULL;
	o->fd = -1;
}

/* A FIFO or a character device at @path: written where it is, never replaced. */
static int open_in_place(struct xsr_outfile *o, const char *verb)
{
	o->fd = open(o->path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (o->fd < 0) {
		cli_err(verb, "cannot open %s: %s", o->path, strerror(errno));
		out_free(o);
		return -1;
	}
	struct stat sb;
	if (fstat(o->fd, &sb) < 0 || !(S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode))) {
		/* It changed between the look and the open: refuse rather than guess. */
		cli_err(verb, "%s changed while it was opened; not writing to it", o->path);
		close(o->fd);
		out_free(o);
		return -1;
	}
	o->in_place = 1;
	return 0;
}

int cli_out_regular(const char *path)
{
	struct stat sb;
	if (!strcmp(path, "-"))
		return 0;
	return stat(path, &sb) < 0 ? errno == ENOENT : S_ISREG(sb.st_mode);
}

int cli_out_open(struct xsr_outfile *o, const char *verb, const char *path)
{
	struct stat sb;
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (!strcmp(path, "-")) {
		/* Image octets on a terminal are garbage at best and escape sequences at worst. */
		if (isatty(STDOUT_FILENO)) {
			cli_err(verb, "refusing to write an image to a terminal; redirect stdout");
			return -1;
		}
		o->fd = STDOUT_FILENO;
		o->is_stdout = 1;
		cli_stdout_is_data();
		return 0;
	}
	o->path = strdup(path);
	if (!o->path) {
		cli_err(verb, "out of memory");
		return -1;
	}
	int have = lstat(path, &sb) == 0;
	if (!have && errno != ENOENT) {
		cli_err(verb, "%s: %s", path, strerror(errno));
		out_free(o);
		return -1;
	}
	if (have && S_ISLNK(sb.st_mode)) {
		/* A symbolic link is followed: its target is written, the link stays. */
		if (stat(path, &sb) < 0 || !(o->target = realpath(path, NULL))) {
			cli_err(verb, "%s is a symbolic link to a missing file (%s); not creating through it", path,
				strerror(errno));
			out_free(o);
			return -1;
		}
	}
	if (have && (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)))
		return open_in_place(o, verb);
	if (have && !S_ISREG(sb.st_mode)) {
		cli_err(verb, "%s is not a regular file, a FIFO or a character device; not replacing it", path);
		out_free(o);
		return -1;
	}
	const char *target = o->target ? o->target : path;
	char *dup = strdup(target);
	if (!dup) {
		cli_err(verb, "out of memory");
		out_free(o);
		return -1;
	}
	const char *dir = dirname(dup);
	const char *base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	if (asprintf(&o->tmp, "%s/.%s.xsr-tmp.XXXXXX", dir, base) < 0) {
		o->tmp = NULL;
		free(dup);
		cli_err(verb, "out of memory");
		out_free(o);
		return -1;
	}
	free(dup);
	sigset_t old;
	/* No signal between creating the file and recording its name. */
	block_stop_signals(SIG_BLOCK, &old);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	int e = errno;
	if (o->fd >= 0)
		track_tmp(o->tmp, 1);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (o->fd < 0) {
		cli_err(verb, "cannot create %s (a temporary file beside it): %s", path, strerror(e));
		free(o->tmp);
		o->tmp = NULL;
		out_free(o);
		return -1;
	}
	/*
	 * A new file keeps mkostemp()'s 0600 (less the umask): an image holds guest
	 * memory.  A file that is replaced keeps its mode, and its owner and
	 * group where we may set them.
	 */
	if (have) {
		/* Group bits are for the old group: where it cannot be kept, they and the other bits go. */
		if ((sb.st_uid != geteuid() || sb.st_gid != getegid()) && fchown(o->fd, sb.st_uid, sb.st_gid) < 0 &&
		    fchown(o->fd, (uid_t)-1, sb.st_gid) < 0)
			sb.st_mode &= ~(mode_t)077;
		fchmod(o->fd, sb.st_mode & 07777);
	}
	return 0;
}

int cli_out_commit(struct xsr_outfile *o, const char *verb)
{
	struct stat sb;
	if (o->is_stdout)
		return 0;
	if (o->in_place) {
		int rc = close(o->fd);
		if (rc < 0)
			cli_err(verb, "writing %s: %s", o->path, strerror(errno));
		out_free(o);
		return rc < 0 ? -1 : 0;
	}
	const char *target = o->target ? o->target : o->path;
	int e;
	if ((e = xsr_fsync(o->fd)) < 0) {
		cli_err(verb, "writing %s: %s", o->path, strerror(-e));
		cli_out_abort(o);
		return -1;
	}
	/* Whatever appeared at the path meanwhile, only a regular file is replaced. */
	if (lstat(target, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		cli_err(verb, "%s is no longer a regular file; not replacing it", o->path);
		cli_out_abort(o);
		return -1;
	}
	if ((e = xsr_rename(o->tmp, target)) < 0) {
		cli_err(verb, "cannot replace %s: %s", o->path, strerror(-e));
		cli_out_abort(o);
		return -1;
	}
	/* Make the rename itself durable. */
	char *dup = strdup(target);
	if (dup) {
		int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dup);
	}
	close(o->fd);
	out_free(o);
	return 0;
}

void cli_out_abort(struct xsr_outfile *o)
{
	if (o->is_stdout || o->fd < 0)
		return;
	close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	out_free(o);
}

int64_t cli_writev_all(int fd, struct iovec *iov, int n)
{
	/* the library's writer: a fault-injection point like its own writes */
	int64_t total = 0;
	for (int i = 0; i < n; i++)
		total += (int64_t)iov[i].iov_len;
	int rc = xsr_write_all(fd, iov, n);
	return rc < 0 ? rc : total;
}

/*
 * The verbs' face of the VMM client (vmm/control.c prints nothing).  Here
 * rather than in target.c while migrate/cmd_migrate.c, a verb outside cli/,
 * still calls them: it may reach util.c only.  cli_target_resolve() reads
 * vm:SOCK with cli_ctl_target().
 */
int cli_ctl_call(const char *verb, const char *sock, const char *req, const int *fds, int nfds,
		 char **reply)
{
	char err[1024];

	if (vmm_ctl_request(sock, req, fds, nfds, reply, err, sizeof(err)) == 0)
		return 0;
	cli_err(verb, "%s", err);
	return -1;
}

const char *cli_ctl_target(const char *verb, const char *target)
{
	if (strncmp(target, "vm:", 3) != 0 || !target[3]) {
		cli_err(verb, "target '%s': expected vm:SOCK (a VMM's control socket)", target);
		return NULL;
	}
	return target + 3;
}
