/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * In-process corruption and truncation sweeps over a seekable image and a
 * streamed image (run by tests/hardening/sweep.sh; spawning xsr per flip
 * would take hours).
 *
 *   sweep SEEKABLE STREAM
 *
 * plus a zstd-compressed stream it writes itself (synthetic pages do not
 * compress).  Bit flips: every bit of every octet outside page data, and all
 * 8 bits of one octet in every page slot (seekable) or every page carried
 * (stream; in the zstd stream every bit of the compressed data).
 * Each flipped copy goes through what `xsr verify` does; every flip must be
 * reported as damage (every octet of both layouts is covered by a header
 * checksum, a record trailer, the integrity section, the page index or the
 * zero-padding rule).  Truncation: at every 4 KiB boundary and every record
 * boundary; the reader must fail and name an offset.  A crash or hang kills
 * the run, which the script reports as a failure.
 *
 * The flips are made in a private copy of the image, in a buffer of exactly
 * its size (ASan sees a read past the end), and opened from memory
 * (xsr_image_open_mem, xsr_stream_open_mem): no system call per variant.
 * The fd reader is exercised too, through one memfd: the intact images,
 * every 61st flip and every truncation (a prefix in a buffer of its own
 * length, and the same prefix in the memfd) go through both readers, which
 * must return the same code and the same message.
 *
 * Prints "ok"/"FAIL" lines, a "stats:" line per sweep, and "N passed, M failed".
 */
#include <elf.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

static int passed, failed;

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(int ok, const char *fmt, ...)
{
	va_list ap;
	printf("%s - ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	ok ? passed++ : failed++;
}

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "sweep: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*len);
	if (!b || fread(b, 1, *len, f) != *len)
		exit(2);
	fclose(f);
	return b;
}

/* One memfd reused for every variant: rewrite only what changed. */
static int mfd = -1;
static void put(const uint8_t *buf, size_t len)
{
	if (mfd < 0 && (mfd = memfd_create("xsr-sweep", MFD_CLOEXEC)) < 0)
		exit(2);
	if (ftruncate(mfd, 0) < 0 || pwrite(mfd, buf, len, 0) != (ssize_t)len)
		exit(2);
}

static void poke(size_t off, uint8_t v)
{
	if (pwrite(mfd, &v, 1, (off_t)off) != 1)
		exit(2);
}

static int is_damage(int rc)
{
	return rc < 0 && rc != XSR_E_IO && rc != XSR_E_NOMEM;
}

static char msg[1024];
/* Every message of the last verify(): the open error, or each problem verify reported. */
static char all[16384];
static size_t all_len;

static void add_msg(void *ctx, const char *m)
{
	(void)ctx;
	int n = snprintf(all + all_len, sizeof(all) - all_len, "%s\n", m);
	if (n > 0)
		all_len = all_len + (size_t)n < sizeof(all) ? all_len + (size_t)n : sizeof(all) - 1;
}

/*
 * What `xsr verify` does: the file's own layout byte picks the reader.  The
 * @size octets at @buf, or the memfd's when @buf is NULL.
 */
static int verify(const uint8_t *buf, size_t size)
{
	uint8_t hdr[128];
	const uint8_t *h = buf;
	msg[0] = 0;
	all[0] = 0;
	all_len = 0;
	if (!buf && size >= 128 && pread(mfd, hdr, 128, 0) == 128)
		h = hdr;
	if (size >= 128 && h && h[64 + 12] == XSR_LAYOUT_SEEKABLE) {
		struct xsr_image *img;
		int rc = buf ? xsr_image_open_mem(&img, buf, size, 0, msg, sizeof(msg))
			     : xsr_image_open(&img, mfd, msg, sizeof(msg));
		if (rc < 0) {
			add_msg(NULL, msg);
			return rc;
		}
		rc = xsr_image_verify(img, buf ? add_msg : NULL, NULL);
		if (rc < 0)
			snprintf(msg, sizeof(msg), "%s", xsr_image_error(img));
		xsr_image_close(img);
		return rc;
	}
	struct xsr_stream *s;
	if (buf ? xsr_stream_open_mem(&s, buf, size, msg, sizeof(msg)) < 0
		: lseek(mfd, 0, SEEK_SET) < 0 || xsr_stream_open(&s, mfd, msg, sizeof(msg)) < 0)
		exit(2);
	int rc = xsr_stream_run(s, NULL, NULL);
	if (rc < 0)
		snprintf(msg, sizeof(msg), "%s", xsr_stream_error(s));
	else if (xsr_stream_offset(s) != size) {
		snprintf(msg, sizeof(msg), "data after the END record at stream offset 0x%llx",
			 (unsigned long long)xsr_stream_offset(s));
		rc = XSR_E_FORMAT;
	}
	xsr_stream_close(s);
	add_msg(NULL, msg);
	return rc;
}

struct span {
	size_t start, end; /* [start, end) */
	const char *what;
	const char *name;  /* a name a message may give the place by ("" = none) */
	size_t rec;        /* start of the record the span is part of */
};

/* Seekable page slots: slot -> pfn, for "names the pfn". */
static const struct xsr_memrun *slot_runs;
static uint32_t slot_nruns;
static size_t slot_base;

static uint64_t slot_pfn(size_t off)
{
	uint64_t s = (off - slot_base) / 4096;
	for (uint32_t i = 0; i < slot_nruns; i++) {
		if (s < slot_runs[i].count)
			return slot_runs[i].pfn + s;
		s -= slot_runs[i].count;
	}
	return UINT64_MAX;
}

/*
 * A report "names the place" of a flip at @off in @sp when a message gives
 * an offset inside the span's record (from 64 octets before it, for a
 * record header named by its body, to its end), the flipped octet's pfn,
 * or one of the span's names ("section header|(header ": either).
 */
static char sh_names[64][48]; /* seekable: the name of section header k */
static uint32_t sh_count;

static int names_place(const struct span *sp, size_t off)
{
	char want[48];
	if (!strcmp(sp->what, "section headers") && sh_count) {
		/* the section whose header was flipped: by index or by name */
		uint32_t k = (uint32_t)((off - sp->start) / 64);
		snprintf(want, sizeof(want), "header %u", k);
		/* (or the table, when only its hash in .xsr.integrity can tell) */
		if (strstr(all, want) || (k && k < sh_count && strstr(all, sh_names[k])) ||
		    strstr(all, "section header table"))
			return 1;
		return 0;
	}
	/* sp->name: alternatives separated by '|' */
	for (const char *n = sp->name; *n;) {
		size_t l = strcspn(n, "|");
		char one[48];
		snprintf(one, sizeof(one), "%.*s", (int)l, n);
		if (strstr(all, one))
			return 1;
		n += l + (n[l] == '|');
	}
	if (slot_runs && !strncmp(sp->what, "page data (", 11)) {
		snprintf(want, sizeof(want), "pfn 0x%llx", (unsigned long long)slot_pfn(off));
		if (strstr(all, want))
			return 1;
	}
	size_t lo = sp->rec >= 64 ? sp->rec - 64 : 0;
	for (const char *p = all; (p = strstr(p, "0x")); p += 2) {
		unsigned long long v = strtoull(p, NULL, 16);
		if (v >= lo && v < sp->end + 8)
			return 1;
	}
	return 0;
}

/* Flip every bit of [a, b), or 8 bits of one octet per page in page spans. */
struct tally {
	unsigned long flips, detected, named;
};

/* The flips that also go through the memfd, in one sweep. */
#define FD_EVERY 61
static struct {
	unsigned long nth, tried, same, shown;
} fdflips;

/*
 * The memfd holds the original; @work is a copy of it, which the flip
 * changes and restores.  Through the fd, the same result and message.
 */
static void flip_octet(const uint8_t *orig, uint8_t *work, size_t size, size_t off, const struct span *sp,
		       struct tally *t, unsigned long *missed, unsigned long *unnamed)
{
	const char *what = sp->what;
	for (int bit = 0; bit < 8; bit++) {
		work[off] = orig[off] ^ (uint8_t)(1u << bit);
		int rc = verify(work, size);
		t->flips++;
		if (is_damage(rc)) {
			t->detected++;
			if (names_place(sp, off))
				t->named++;
			else if ((*unnamed)++ < 5)
				printf("     not named: %s, octet 0x%zx bit %d: %s", what, off, bit, all);
		} else if ((*missed)++ < 10) {
			printf("     undetected: %s, octet 0x%zx bit %d (rc %d %s)\n", what, off, bit, rc, msg);
		}
		if (++fdflips.nth % FD_EVERY)
			continue;
		char mem_msg[sizeof(msg)];
		memcpy(mem_msg, msg, sizeof(msg));
		poke(off, work[off]);
		int fd_rc = verify(NULL, size);
		poke(off, orig[off]);
		fdflips.tried++;
		if (fd_rc == rc && !strcmp(msg, mem_msg))
			fdflips.same++;
		else if (fdflips.shown++ < 10)
			printf("     %s, octet 0x%zx bit %d: from memory rc %d \"%s\", through an fd rc %d \"%s\"\n", what,
			       off, bit, rc, mem_msg, fd_rc, msg);
	}
	work[off] = orig[off];
}

static void flip_spans(const char *name, const uint8_t *orig, size_t size, const struct span *sp, int nsp)
{
	uint8_t *work = malloc(size);
	if (!work)
		exit(2);
	memcpy(work, orig, size);
	memset(&fdflips, 0, sizeof(fdflips));
	for (int i = 0; i < nsp; i++) {
		struct tally t = {0, 0, 0};
		unsigned long missed = 0, unnamed = 0;
		int pages = !strncmp(sp[i].what, "page", 4);
		for (size_t off = sp[i].start; off < sp[i].end; off++) {
			if (pages) {
				/* one octet per 4 KiB page, at a position that wanders */
				size_t pg = (off - sp[i].start) / 4096;
				off = sp[i].start + pg * 4096 + (pg * 997 + 13) % 4096;
				if (off >= sp[i].end)
					break;
				flip_octet(orig, work, size, off, &sp[i], &t, &missed, &unnamed);
				off = sp[i].start + (pg + 1) * 4096 - 1;
				continue;
			}
			flip_octet(orig, work, size, off, &sp[i], &t, &missed, &unnamed);
		}
		/* Three octets of each span for the (slower) CLI pass of sweep.sh. */
		if (sp[i].end > sp[i].start) {
			size_t mid = sp[i].start + (sp[i].end - sp[i].start) / 2, last = sp[i].end - 1;
			if (pages)
				mid = sp[i].start + 4096 + 101, last = sp[i].start + 8 * 4096 + 3001;
			printf("sample %s %zu %d %s\n", name, sp[i].start, (int)(i % 8), sp[i].what);
			if (mid < sp[i].end && mid > sp[i].start)
				printf("sample %s %zu %d %s\n", name, mid, (int)((i + 3) % 8), sp[i].what);
			if (last < sp[i].end && last > mid)
				printf("sample %s %zu %d %s\n", name, last, (int)((i + 5) % 8), sp[i].what);
		}
		result(t.flips > 0 && t.detected == t.flips, "%s: %s [0x%zx, 0x%zx): %lu of %lu bit flips reported as damage", name,
		       sp[i].what, sp[i].start, sp[i].end, t.detected, t.flips);
		printf("stats: flip %s %s %lu %lu\n", name, sp[i].what, t.flips, t.detected);
		result(t.named == t.detected, "%s: %s: %lu of %lu reports name the place (an offset in the record, the pfn or the name)",
		       name, sp[i].what, t.named, t.detected);
	}
	result(fdflips.tried > 0 && fdflips.same == fdflips.tried,
	       "%s: %lu of %lu flips sampled through an fd (one in %d) give the memory reader's result", name,
	       fdflips.same, fdflips.tried, FD_EVERY);
	free(work);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* @num appears in @s as a whole number (not inside a longer one). */
static int has_number(const char *s, const char *num)
{
	size_t l = strlen(num);
	for (const char *p = s; (p = strstr(p, num)); p++) {
		int before = p > s && (isalnum((unsigned char)p[-1]) || (num[0] != '0' && p[-1] == 'x'));
		if (!before && !isxdigit((unsigned char)p[l]))
			return 1;
	}
	return 0;
}

static void truncations(const char *name, const uint8_t *orig, size_t size, size_t *cuts, int ncuts)
{
	unsigned long tried = 0, clean = 0;
	qsort(cuts, (size_t)ncuts, sizeof(*cuts), cmp_size);
	size_t prev = (size_t)-1;
	for (int i = 0; i < ncuts; i++) {
		if (cuts[i] >= size || cuts[i] == prev)
			continue;
		prev = cuts[i];
		printf("cut %s %zu\n", name, cuts[i]);
		/* A buffer of the prefix's length: ASan sees a read past its end. */
		uint8_t *prefix = malloc(cuts[i] ? cuts[i] : 1);
		if (!prefix)
			exit(2);
		memcpy(prefix, orig, cuts[i]);
		int rc = verify(prefix, cuts[i]);
		free(prefix);
		char mem_msg[sizeof(msg)];
		memcpy(mem_msg, msg, sizeof(msg));
		put(orig, cuts[i]);
		int fd_rc = verify(NULL, cuts[i]);
		tried++;
		/* A clear error: damage (not I/O), and the message names where the file
		 * ends (the cut, in hex or decimal); the same through an fd. */
		char hex[32], dec[32];
		snprintf(hex, sizeof(hex), "0x%zx", cuts[i]);
		snprintf(dec, sizeof(dec), "%zu", cuts[i]);
		if (is_damage(rc) && (has_number(mem_msg, hex) || has_number(mem_msg, dec)) && fd_rc == rc &&
		    !strcmp(msg, mem_msg))
			clean++;
		else
			printf("     cut at %zu: from memory rc %d \"%s\", through an fd rc %d \"%s\"\n", cuts[i], rc,
			       mem_msg, fd_rc, msg);
	}
	put(orig, size);
	result(tried > 0 && clean == tried, "%s: %lu of %lu truncations fail with a message naming where the file ends",
	       name, clean, tried);
	printf("stats: truncate %s %lu %lu\n", name, tried, clean);
}

static void sweep_seekable(const char *path)
{
	size_t size;
	uint8_t *orig = load(path, &size);
	char err[512];
	struct xsr_image *img;
	put(orig, size);
	result(verify(orig, size) == 0 && verify(NULL, size) == 0,
	       "seekable %s verifies intact before the sweep, from memory and through an fd", path);
	if (xsr_image_open(&img, mfd, err, sizeof(err)) < 0) {
		result(0, "open %s: %s", path, err);
		return;
	}
	uint32_t ns = xsr_image_nsections(img);
	struct span *sp = calloc(ns * 2 + 8, sizeof(*sp));
	size_t *cuts = calloc(ns * 4 + size / 4096 + 16, sizeof(*cuts));
	int n = 0, nc = 0;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)orig;
	sp[n++] = (struct span){0, 64, "ELF header", "ELF header", 0};
	sp[n++] = (struct span){64, 128, "xsrelf file header", "file header", 64};
	sp[n++] = (struct span){eh->e_phoff, eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr), "program headers",
				"program header", eh->e_phoff};
	sp[n++] = (struct span){eh->e_shoff, eh->e_shoff + eh->e_shnum * sizeof(Elf64_Shdr), "section headers",
				"section header|(header ", eh->e_shoff};
	cuts[nc++] = eh->e_shoff;
	/* Whatever lies between the regions below is padding, flipped too. */
	size_t covered_to = sp[2].end;
	for (uint32_t i = 1; i < ns; i++) {
		struct xsr_section_info si;
		xsr_image_section(img, i, &si);
		static char names[64][64], secname[64][48];
		snprintf(secname[i % 64], 48, "%s", si.name);
		if (i < 64) {
			snprintf(sh_names[i], sizeof(sh_names[i]), "%s", si.name);
			sh_count = i + 1;
		}
		if (si.code == XSR_SEC_PAGES) {
			snprintf(names[i % 64], 64, "page data (%s)", si.name);
			if (si.offset > covered_to)
				sp[n++] = (struct span){covered_to, si.offset, "padding", "padding", covered_to};
			sp[n++] = (struct span){si.offset, si.offset + si.size, names[i % 64], "", si.offset};
			covered_to = si.offset + si.size;
			continue;
		}
		size_t start = si.offset - 64, end = si.offset + ((si.size + 7) & ~7ull) + 8;
		snprintf(names[i % 64], 64, "record %s", si.name);
		if (start > covered_to)
			sp[n++] = (struct span){covered_to, start, "padding", "padding", covered_to};
		sp[n++] = (struct span){start, end, names[i % 64], secname[i % 64], start};
		covered_to = end;
		cuts[nc++] = start;
		cuts[nc++] = si.offset;
		cuts[nc++] = end;
	}
	if (eh->e_shoff > covered_to)
		sp[n++] = (struct span){covered_to, eh->e_shoff, "padding", "padding", covered_to};
	uint32_t nruns = xsr_image_nruns(img);
	struct xsr_memrun *runs = malloc((nruns + 1) * sizeof(*runs));
	if (!runs)
		exit(2);
	memcpy(runs, xsr_image_runs(img), nruns * sizeof(*runs));
	slot_base = xsr_image_run_offset(img, 0);
	xsr_image_close(img);
	for (size_t o = 4096; o < size; o += 4096)
		cuts[nc++] = o;
	cuts[nc++] = 0;
	cuts[nc++] = 64;
	cuts[nc++] = 128;
	cuts[nc++] = size - 1;
	slot_runs = runs;
	slot_nruns = nruns;
	flip_spans("seekable", orig, size, sp, n);
	slot_runs = NULL;
	truncations("seekable", orig, size, cuts, nc);
	free(runs);
	free(sp);
	free(cuts);
	free(orig);
}

static void sweep_stream(const char *name, const char *path, uint8_t *orig, size_t size)
{
	if (!orig)
		orig = load(path, &size);
	put(orig, size);
	result(verify(orig, size) == 0 && verify(NULL, size) == 0,
	       "stream %s verifies intact before the sweep, from memory and through an fd", path);
	int cap = 64, n = 0, nc = 0;
	struct span *sp = calloc((size_t)cap, sizeof(*sp));
	size_t *cuts = calloc(size / 4096 + 2 * 4096 + 8, sizeof(*cuts));
	sp[n++] = (struct span){0, 128, "stream header", "header", 0};
	/* Walk the records by their headers; the reader already accepted them. */
	size_t off = 128;
	while (off + 64 <= size) {
		struct xsr_record_header rh;
		memcpy(&rh, orig + off, sizeof(rh));
		size_t end = off + 64 + ((rh.sh_size + 7) & ~7ull) + 8;
		if (n + 3 > cap) {
			cap *= 2;
			sp = realloc(sp, (size_t)cap * sizeof(*sp));
		}
		const char *nm = xsr_section_name(rh.sh_type);
		static char names[4096][48];
		int k = n % 4096;
		cuts[nc++] = off;
		cuts[nc++] = off + 64;
		if (rh.sh_type == XSR_SHT(XSR_SEC_PAGES, 0)) {
			struct xsr_page_batch b;
			memcpy(&b, orig + off + 64, sizeof(b));
			size_t data = off + 64 + sizeof(b) + (size_t)b.count * 8;
			snprintf(names[k], 48, "batch header at 0x%zx", off);
			sp[n++] = (struct span){off, data, names[k], "", off};
			k = n % 4096;
			if (b.data_len) {
				/* compressed data is flipped bit by bit, raw page data sampled */
				snprintf(names[k], 48, "%s at 0x%zx", b.compress ? "compressed data" : "page data", data);
				sp[n++] = (struct span){data, data + b.data_len, names[k], "", off};
			}
			k = n % 4096;
			snprintf(names[k], 48, "batch trailer at 0x%zx", off);
			sp[n++] = (struct span){data + b.data_len, end, names[k], "", off};
		} else {
			snprintf(names[k], 48, "%s record at 0x%zx", nm ? nm : "?", off);
			sp[n++] = (struct span){off, end, names[k], "", off};
		}
		off = end;
	}
	cuts[nc++] = size;
	for (size_t o = 4096; o < size; o += 4096)
		cuts[nc++] = o;
	cuts[nc++] = 0;
	cuts[nc++] = 64;
	cuts[nc++] = 127;
	cuts[nc++] = size - 1;
	result(off == size, "stream records tile the file (%zu of %zu octets)", off, size);
	flip_spans(name, orig, size, sp, n);
	truncations(name, orig, size, cuts, nc);
	free(sp);
	free(cuts);
	free(orig);
}

/*
 * A zstd stream whose batches really are compressed.  Synthetic pages are
 * random and the writer stores incompressible batches raw, so this one is
 * made here: 64 pages of a repeating pattern, a quarter of them zero.
 */
static uint8_t *zstd_stream(size_t *size)
{
	static const struct xsr_memrun runs[2] = {{0, 48}, {0x100, 16}};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = XSR_LAYOUT_STREAM,
				      .nr_vcpus = 1, .nr_runs = 2, .runs = runs, .hypervisor = "sweep",
				      .compress = XSR_COMPRESS_ZSTD};
	char err[256];
	struct xsr_writer *w;
	int fd = memfd_create("xsr-sweep-zstd", MFD_CLOEXEC);
	if (fd < 0 || xsr_writer_open(&w, fd, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "sweep: zstd stream: %s\n", err);
		exit(2);
	}
	static uint8_t pages[64][4096];
	uint64_t pfns[64];
	const void *ptr[64];
	for (int i = 0; i < 64; i++) {
		pfns[i] = i < 48 ? (uint64_t)i : 0x100 + (uint64_t)(i - 48);
		for (int k = 0; k < 4096; k++)
			pages[i][k] = (uint8_t)(k % 61 + i);
		ptr[i] = i % 4 == 3 ? NULL : pages[i];
	}
	static struct xsr_vcpu_state vs;
	vs.r.rip = 0xffffffff81000000;
	if (xsr_writer_put_pages(w, pfns, 64, ptr) < 0 || xsr_writer_set_vcpu(w, &vs) < 0 ||
	    xsr_writer_close(w, err, sizeof(err)) < 0) {
		fprintf(stderr, "sweep: zstd stream: %s\n", err);
		exit(2);
	}
	off_t len = lseek(fd, 0, SEEK_END);
	uint8_t *b = malloc((size_t)len);
	if (len <= 0 || !b || pread(fd, b, (size_t)len, 0) != len)
		exit(2);
	close(fd);
	*size = (size_t)len;
	return b;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sweep SEEKABLE STREAM\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sweep_seekable(argv[1]);
	sweep_stream("stream", argv[2], NULL, 0);
	size_t zlen;
	uint8_t *z = zstd_stream(&zlen);
	printf("zstd stream: %zu octets for 64 pages\n", zlen);
	sweep_stream("zstd-stream", "(built in memory)", z, zlen);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
