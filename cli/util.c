/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the xsr verbs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xsrelf/format.h>
#include <xsrelf/paging.h>

#include "cli.h"

int64_t xsr_parse_size(const char *s)
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

int xsr_parse_compress(const char *verb, const char *s)
{
	if (!strcmp(s, "none"))
		return XSR_COMPRESS_NONE;
	if (!strcmp(s, "zstd"))
		return XSR_COMPRESS_ZSTD;
	if (!strcmp(s, "lz4"))
		return XSR_COMPRESS_LZ4;
	xsr_err(verb, "--compress %s: need none, zstd or lz4", s);
	return -1;
}

int xsr_parse_vcpu(const char *verb, const char *opt, const char *s, uint32_t *out)
{
	char *e;
	errno = 0;
	unsigned long v = strtoul(s, &e, 0);
	if (errno || e == s || *e || *s == '-' || v >= XSR_MAX_VCPUS) {
		xsr_err(verb, "%s %s: need a vCPU number below %u", opt, s, XSR_MAX_VCPUS);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int xsr_read_file(const char *verb, const char *path, size_t max, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		xsr_err(verb, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char *b = malloc(max + 1);
	size_t n = b ? fread(b, 1, max + 1, f) : 0;
	int bad = !b || ferror(f);
	fclose(f);
	if (bad || n == 0 || n > max) {
		xsr_err(verb, "%s: %s", path, !b ? "out of memory" : bad ? "read error" : n == 0 ? "empty" : "too large");
		free(b);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

void xsr_err(const char *verb, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "xsr %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int xsr_open_in(const char *verb, const char *path)
{
	if (!strcmp(path, "-"))
		return STDIN_FILENO;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		xsr_err(verb, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

void xsr_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
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

void xsr_paging_report(FILE *f, const struct xsr_paging_stats *st, uint32_t vcpu, int json)
{
	if (json) {
		fprintf(f, "{\"vcpu\":%u,\"mappings\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"kept\":%" PRIu64
			   ",\"kept_octets\":%" PRIu64 ",\"kernel_octets\":%" PRIu64 ",\"direct_map\":%" PRIu64
			   ",\"direct_octets\":%" PRIu64 ",\"left_out\":%" PRIu64 ",\"left_out_octets\":%" PRIu64
			   ",\"left_out_start\":%" PRIu64 ",\"left_out_last\":%" PRIu64 ",\"left_out_kernel\":%" PRIu64
			   ",\"left_out_direct\":%" PRIu64 ",\"left_out_repeats\":%" PRIu64 ",\"outside_pages\":%" PRIu64 ",\"tables\":%" PRIu64
			   ",\"machine_frames\":%s,\"skip_start\":%" PRIu64 ",\"skip_end\":%" PRIu64 "}",
			vcpu, st->mappings, st->octets, st->kept, st->kept_octets, st->kernel_octets, st->direct_map,
			st->direct_octets, st->left_out, st->left_out_octets, st->left_out_start, st->left_out_last,
			st->left_out_kernel, st->left_out_direct, st->left_out_repeats, st->outside_pages, st->tables,
			st->machine_frames ? "true" : "false", st->skip_start, st->skip_end);
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

int xsr_out_open(struct xsr_outfile *o, const char *verb, const char *path)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (!strcmp(path, "-")) {
		o->fd = STDOUT_FILENO;
		o->is_stdout = 1;
		return 0;
	}
	o->path = strdup(path);
	char *dup = strdup(path);
	if (!o->path || !dup) {
		free(dup);
		xsr_err(verb, "out of memory");
		return -1;
	}
	const char *dir = dirname(dup);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (asprintf(&o->tmp, "%s/.%s.xsr-tmp.XXXXXX", dir, base) < 0) {
		o->tmp = NULL;
		free(dup);
		xsr_err(verb, "out of memory");
		return -1;
	}
	free(dup);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		xsr_err(verb, "cannot create a temporary file beside %s: %s", path, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	fchmod(o->fd, 0644);
	return 0;
}

int xsr_out_commit(struct xsr_outfile *o, const char *verb)
{
	int rc = 0;
	if (o->is_stdout)
		return 0;
	if (fsync(o->fd) < 0) {
		xsr_err(verb, "fsync of %s: %s", o->tmp, strerror(errno));
		rc = -1;
	} else if (rename(o->tmp, o->path) < 0) {
		xsr_err(verb, "renaming %s to %s: %s", o->tmp, o->path, strerror(errno));
		rc = -1;
	}
	if (rc < 0) {
		xsr_out_abort(o);
		return rc;
	}
	/* Make the rename itself durable. */
	char *dup = strdup(o->path);
	if (dup) {
		int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dup);
	}
	close(o->fd);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	o->fd = -1;
	return 0;
}

void xsr_out_abort(struct xsr_outfile *o)
{
	if (o->is_stdout || o->fd < 0)
		return;
	close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	o->fd = -1;
}

int64_t xsr_writev_all(int fd, struct iovec *iov, int n)
{
	int64_t total = 0;
	while (n > 0) {
		ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		total += w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return total;
}
