/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the inspection verbs: see inspect.h. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/io.h>

#include "cli.h"
#include "inspect.h"

/* An unnamed read-write file in $TMPDIR: O_TMPFILE, or a named one unlinked at once. */
static int tmp_file(const char *verb)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	size_t n = strlen(dir) + 32;
	char *path = malloc(n);
	if (!path) {
		cli_err(verb, "out of memory");
		return -1;
	}
	snprintf(path, n, "%s/.xsr-inspect.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	else
		cli_err(verb, "cannot make a temporary file in %s: %s", dir, strerror(errno));
	free(path);
	return fd;
}

/* Copy @in (a pipe, a device) into a temporary file, 256 KiB at a time; @in is closed. */
static int copy_in(const char *verb, int in, const char *name)
{
	int fd = tmp_file(verb), out = -1;
	if (fd < 0)
		goto done;
	enum { CHUNK = 256 << 10 };
	char *buf = malloc(CHUNK);
	if (!buf) {
		cli_err(verb, "out of memory");
		close(fd);
		goto done;
	}
	for (;;) {
		ssize_t r = read(in, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_err(verb, "reading %s: %s", name, strerror(errno));
			break;
		}
		if (r == 0) {
			out = fd;
			break;
		}
		struct iovec iov = {buf, (size_t)r};
		int w = xsr_write_all(fd, &iov, 1);
		if (w < 0) {
			cli_err(verb, "copying %s to a temporary file: %s", name, strerror(-w));
			break;
		}
	}
	free(buf);
	if (out < 0)
		close(fd);
done:
	if (in != STDIN_FILENO)
		close(in);
	return out;
}

int cli_anyimg_open(struct xsr_anyimg *a, const char *verb, const char *path, int verbose)
{
	memset(a, 0, sizeof(*a));
	a->fd = a->img_fd = -1;
	const char *name = strcmp(path, "-") ? path : "standard input";
	struct stat sb;
	uint8_t hdr[XSR_HEADER_END];
	a->fd = cli_open_in(verb, path);
	if (a->fd < 0)
		return XSR_EXIT_FAIL;
	if (fstat(a->fd, &sb) < 0) {
		cli_err(verb, "%s: %s", name, strerror(errno));
		goto fail;
	}
	/* A pipe or a device (stdin, <(...)) is read once: random access needs a copy. */
	if (!S_ISREG(sb.st_mode)) {
		if (verbose)
			fprintf(stderr, "xsr %s: copying %s to a temporary file\n", verb,
				cli_esc(name, SIZE_MAX));
		a->fd = copy_in(verb, a->fd, name);
		a->stdin_copy = 1;
		if (a->fd < 0 || fstat(a->fd, &sb) < 0)
			goto fail;
	}
	if (sb.st_size < XSR_HEADER_END || xsr_read_at(a->fd, hdr, sizeof(hdr), 0) < 0) {
		cli_err(verb,
			"%s: %lld octets, shorter than the 128-octet header: truncated or not an "
			"xsrelf image",
			name, (long long)sb.st_size);
		goto fail;
	}
	char err[1024] = "";
	int rc;
	a->layout =
	    hdr[XSR_EHDR_SIZE + 12] == XSR_LAYOUT_STREAM ? XSR_LAYOUT_STREAM : XSR_LAYOUT_SEEKABLE;
	if (a->layout == XSR_LAYOUT_STREAM) {
		/*
		 * The seekable copy's index follows the header's claim (16 octets a
		 * page, all read back when the writer closes), and its page slots
		 * too: a 4 KiB stream claiming 2^36 pages would cost a terabyte of
		 * index where the file system allows it.  Every page a stream holds
		 * costs it at least an 8-octet pfn entry, so a larger claim is
		 * refused before anything is written.
		 */
		uint64_t claim;
		memcpy(&claim, hdr + XSR_EHDR_SIZE + offsetof(struct xsr_file_header, nr_pages),
		       sizeof(claim));
		if (claim > XSR_INSPECT_FREE_PAGES && claim > (uint64_t)sb.st_size / 8) {
			cli_err(verb,
				"%s: the stream claims 0x%llx pages, more than its %lld octets can "
				"hold (an 8-octet "
				"entry a page): refusing to make a seekable copy that large",
				name, (unsigned long long)claim, (long long)sb.st_size);
			goto fail;
		}
		if (verbose)
			fprintf(
			    stderr,
			    "xsr %s: %s is a stream: converting it to a temporary seekable file\n",
			    verb, cli_esc(name, SIZE_MAX));
		if ((a->img_fd = tmp_file(verb)) < 0)
			goto fail;
		const struct xsr_convert_opts o = {.layout = XSR_LAYOUT_SEEKABLE};
		if ((rc = xsr_convert(a->fd, a->img_fd, &o, err, sizeof(err))) < 0) {
			cli_err(verb, "%s: %s", name, err);
			goto fail;
		}
	} else {
		a->img_fd = a->fd;
	}
	if ((rc = xsr_image_open(&a->img, a->img_fd, err, sizeof(err))) < 0) {
		cli_err(verb, "%s: %s", name, err);
		goto fail;
	}
	return 0;
fail:
	cli_anyimg_close(a);
	return XSR_EXIT_FAIL;
}

void cli_anyimg_close(struct xsr_anyimg *a)
{
	xsr_image_close(a->img);
	if (a->img_fd >= 0 && a->img_fd != a->fd)
		close(a->img_fd);
	if (a->fd >= 0 && a->fd != STDIN_FILENO)
		close(a->fd);
	memset(a, 0, sizeof(*a));
	a->fd = a->img_fd = -1;
}

void cli_json_hex(FILE *f, uint64_t v)
{
	fprintf(f, "\"0x%llx\"", (unsigned long long)v);
}

void cli_json_dec(FILE *f, uint64_t v)
{
	fprintf(f, "\"%llu\"", (unsigned long long)v);
}

int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out)
{
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 0);
	/* strtoull takes " -1" as 2^64 - 1 and a leading 0 as octal: refuse both surprises. */
	if (errno || *s < '0' || *s > '9' || *e || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) {
		cli_err(verb, "%s %s: need a number (decimal, or hex with 0x) below 2^64", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}
