/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming reader: record by record from any source (source.c: a pipe,
 * socket or file, or a buffer), with memory bounded by the largest record
 * the format allows, never by the image.  From a buffer, record bodies are
 * used in place.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"

struct xsr_stream {
	struct xsr_source src;
	uint64_t src_off; /* octets taken from the source (the prefix comes first) */
	uint64_t off;
	uint8_t *pre;
	size_t prelen, prepos;
	bool have_header, have_memmap, have_notes, ended;
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	struct xsr_memrun *runs;
	uint64_t *base;
	uint32_t nruns;
	uint8_t *body;
	size_t cap;
	const uint8_t *rec; /* the current record's body: in s->body or in place in the source */
	uint8_t *pages; /* decompressed batch */
	size_t pages_cap;
	uint8_t *vcpu_seen;
	struct xsr_vcpu_state *vcpu; /* scratch for checking VCPU records, allocated at the first */
	uint64_t nrec, chain;
	char err[XSR_ERRLEN];
	/* where the record being read begins, its type (0: none yet), and a pfn at fault */
	uint64_t cur_at, cur_pfn;
	uint32_t cur_type;
	bool want_ahead;      /* start the read-ahead once the file header is read */
	struct sahead *ahead; /* records read and hashed ahead (conversion), or NULL */
	struct aitem *item;   /* the record taken from it, until the next step */
	/* xsr_stream_set_placement: where a page's data may be read to directly */
	xsr_place_fn place;
	void *place_ctx;
};

/*
 * Read-ahead (conversion only, xsr_stream_read_all_ahead): a second thread
 * reads each record's header and body and hashes them while this one
 * checks and hands on the record before, so that on two cores the
 * stream's read and checksum overlap the consumer's hashing and writing
 * (issue 19: stream -> seekable was 0.77x cp).  The thread only reads in
 * order and hashes; every check, message and decision stays here, made on
 * the octets as they came: a record's header, its body and trailer, and
 * whether the source failed or ended inside them and after how many
 * octets, so the messages are those of the plain reader.  It stops after
 * END, a source failure or end, a length over the table's limit, or when
 * told; what follows is then read here as before.  Only regular files.
 */
struct aitem {
	uint8_t rh[sizeof(struct xsr_record_header)];
	size_t rh_got;  /* octets of the header read */
	int rh_err;     /* -errno from the source reading the header, or 0 */
	bool body;      /* the body was read (else this one reads it, from where the thread stopped) */
	uint8_t *buf;   /* the body and trailer */
	size_t cap, got, span;
	int err;        /* -errno reading the body, or 0 (end of source when got < span) */
	uint64_t hash;  /* xsr_record_hash of header and body, when got == span */
	bool full;
};

struct sahead {
	struct xsr_worker w;
	struct xsr_stream *s;
	struct aitem it[2];
	unsigned next_fill, next_take;
	bool done; /* the thread has returned, after its last item */
};

static int sfail(struct xsr_stream *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sfail(struct xsr_stream *s, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return rc;
}

const char *xsr_stream_error(const struct xsr_stream *s)
{
	return s ? s->err : "no stream";
}

void xsr_stream_error_at(const struct xsr_stream *s, struct xsr_finding *out)
{
	xsr_finding_clear(out);
	if (!s) {
		out->message = "no stream";
		return;
	}
	uint64_t off = xsr_msg_offset(s->err); /* the file header's messages: "offset 0x38: ..." */
	xsr_finding_set(out, s->cur_type ? xsr_section_elf_name(s->cur_type) : NULL,
			off != XSR_NO_OFFSET ? off : s->cur_at, s->cur_pfn);
	out->message = s->err;
}

uint64_t xsr_stream_offset(const struct xsr_stream *s)
{
	return s->off;
}

const struct xsr_file_header *xsr_stream_header(const struct xsr_stream *s)
{
	return s->have_header ? &s->fh : NULL;
}

static int stream_open(struct xsr_stream **out, const struct xsr_source *src, char *err, size_t errlen)
{
	struct xsr_stream *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s) {
		xsr_fmt(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	s->src = *src;
	s->cur_pfn = XSR_NO_PFN;
	*out = s;
	return 0;
}

int xsr_stream_open(struct xsr_stream **out, int fd, char *err, size_t errlen)
{
	struct xsr_source src;
	xsr_source_fd(&src, fd);
	return stream_open(out, &src, err, errlen);
}

int xsr_stream_open_source(struct xsr_stream **out, struct xsr_source *src, char *err, size_t errlen)
{
	*out = NULL;
	if (!src) {
		xsr_fmt(err, errlen, "xsr_stream_open_source: no source");
		return XSR_E_INVAL;
	}
	return stream_open(out, src, err, errlen);
}

int xsr_stream_open_mem(struct xsr_stream **out, const void *buf, size_t len, char *err, size_t errlen)
{
	struct xsr_source src;
	*out = NULL;
	if (!buf && len) {
		xsr_fmt(err, errlen, "xsr_stream_open_mem: no buffer for %zu octets", len);
		return XSR_E_INVAL;
	}
	xsr_source_mem(&src, buf, len);
	return stream_open(out, &src, err, errlen);
}

static void ahead_stop(struct xsr_stream *s);

void xsr_stream_close(struct xsr_stream *s)
{
	if (!s)
		return;
	free(s->pre);
	free(s->runs);
	free(s->base);
	free(s->body);
	free(s->pages);
	free(s->vcpu_seen);
	free(s->vcpu);
	ahead_stop(s);
	free(s);
}

int xsr_stream_prefix(struct xsr_stream *s, const void *buf, size_t len)
{
	uint8_t *n = realloc(s->pre, s->prelen - s->prepos + len + 1);
	if (!n)
		return XSR_E_NOMEM;
	memmove(n, n + s->prepos, s->prelen - s->prepos);
	s->prelen -= s->prepos;
	s->prepos = 0;
	if (len) /* callers with nothing sniffed pass NULL, 0; memcpy(.., NULL, 0) is UB */
		memcpy(n + s->prelen, buf, len);
	s->prelen += len;
	s->pre = n;
	return 0;
}

/*
 * Read exactly @len octets, the part of @total that follows @before octets
 * already read; XSR_E_TRUNCATED at EOF, counting in @total.
 */
static int get_part(struct xsr_stream *s, void *buf, size_t len, const char *what, size_t before, size_t total)
{
	size_t done = 0;
	if (s->prepos < s->prelen) {
		size_t n = s->prelen - s->prepos < len ? s->prelen - s->prepos : len;
		memcpy(buf, s->pre + s->prepos, n);
		s->prepos += n;
		done = n;
	}
	if (done < len) {
		ssize_t r = s->src.ops->read(&s->src, (char *)buf + done, len - done, s->src_off);
		if (r < 0)
			return sfail(s, XSR_E_IO, "stream offset 0x%llx: reading %s: %s",
				     (unsigned long long)(s->off + done), what, strerror((int)-r));
		s->src_off += (uint64_t)r;
		done += (size_t)r;
	}
	if (done < len) {
		s->off += done;
		return sfail(s, XSR_E_TRUNCATED, "stream truncated at offset 0x%llx inside %s (%zu of %zu octets)",
			     (unsigned long long)s->off, what, before + done, total);
	}
	s->off += len;
	return 0;
}

static int get(struct xsr_stream *s, void *buf, size_t len, const char *what)
{
	return get_part(s, buf, len, what, 0, len);
}

/*
 * Under AddressSanitizer (make SANITIZE=1, the fuzz targets) a record's
 * buffer is exactly its size, so that a read past the record is an error
 * there too and not a read of the last record's leftovers: in a 64 KiB
 * buffer, issue 15's overread of a PAGES record went unseen.
 */
#if defined(__SANITIZE_ADDRESS__)
#define XSR_EXACT_BUFFERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XSR_EXACT_BUFFERS 1
#endif
#endif

/* The first part of a record body read into s->body; take() doubles it from there. */
#define XSR_TAKE_FIRST ((size_t)1 << 20)

static int grow(struct xsr_stream *s, size_t need)
{
#ifdef XSR_EXACT_BUFFERS
	if (need == s->cap)
		return 0;
	size_t cap = need ? need : 1;
#else
	if (need <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 1 << 16;
	while (cap < need)
		cap *= 2;
#endif
	uint8_t *n = realloc(s->body, cap);
	if (!n)
		return sfail(s, XSR_E_NOMEM, "out of memory for a record of %zu octets", need);
	s->body = n;
	s->cap = cap;
	return 0;
}

/*
 * The next @len octets of a record body, of which the first @done are
 * already in s->body: in place when the source holds them in memory
 * (8-aligned: bodies are read as structs), else read into s->body.
 */
static int take_from(struct xsr_stream *s, size_t len, size_t done, const char *what)
{
	if (done == 0 && s->prepos == s->prelen) {
		const uint8_t *p = s->src.ops->view(&s->src, s->src_off, len);
		if (p && (uintptr_t)p % 8 == 0) {
			s->src_off += len;
			s->off += len;
			s->rec = p;
			return 0;
		}
	}
	/*
	 * The buffer follows the octets that arrive, not the length the record
	 * claims: a 30-octet stream announcing a 128 MiB record must not cost
	 * 128 MiB.  Read the first MiB, then double, so that memory is at most
	 * twice what the input really holds and a large record costs
	 * log2(len / 1 MiB) extra reallocs.
	 */
	size_t part = len < XSR_TAKE_FIRST ? len : XSR_TAKE_FIRST;
	int rc;
	/* Room an earlier record's octets paid for is used whole: one read per page batch, not four. */
	if (part < s->cap)
		part = len < s->cap ? len : s->cap;
	if (part < done)
		part = done;
	s->rec = s->body;
	for (;;) {
		if ((rc = grow(s, part)) < 0)
			return rc;
		s->rec = s->body;
		if ((rc = get_part(s, s->body + done, part - done, what, done, len)) < 0)
			return rc;
		if ((done = part) == len)
			return 0;
		part = len - part > part ? part * 2 : len;
	}
}

/* Read up to @len octets for the thread: the number read (short only at the end), or -errno. */
static ssize_t ahead_read(struct xsr_stream *s, void *buf, size_t len, size_t *got)
{
	ssize_t r = s->src.ops->read(&s->src, buf, len, s->src_off);
	if (r > 0) {
		s->src_off += (uint64_t)r;
		*got += (size_t)r;
	}
	return r;
}

/* One record into @it: header, then body and trailer grown as take() grows them.  False: stop after it. */
static bool ahead_record(struct xsr_stream *s, struct aitem *it)
{
	struct xsr_record_header rh;
	it->rh_got = it->got = 0;
	it->rh_err = it->err = 0;
	it->body = false;
	ssize_t r = ahead_read(s, it->rh, sizeof(it->rh), &it->rh_got);
	if (r < 0)
		it->rh_err = (int)r;
	if (it->rh_got < sizeof(it->rh))
		return false;
	memcpy(&rh, it->rh, sizeof(rh));
	uint32_t code = rh.sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh.sh_type & XSR_SHT_CODE_MASK;
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	if (rh.sh_size > (d ? d->max_len : XSR_MAX_RECORD))
		return false; /* this one refuses it before reading on */
	it->span = (size_t)(ALIGN8(rh.sh_size) + 8);
	size_t part = it->span < XSR_TAKE_FIRST ? it->span : XSR_TAKE_FIRST;
	if (part < it->cap)
		part = it->span < it->cap ? it->span : it->cap;
	it->body = true;
	for (;;) {
		if (part > it->cap) {
			uint8_t *n = realloc(it->buf, part);
			if (!n) {
				it->err = -ENOMEM;
				return false;
			}
			it->buf = n;
			it->cap = part;
		}
		r = ahead_read(s, it->buf + it->got, part - it->got, &it->got);
		if (r < 0) {
			it->err = (int)r;
			return false;
		}
		if (it->got < part)
			return false; /* the end of the source */
		if (part == it->span)
			break;
		part = it->span - part > part ? part * 2 : it->span;
	}
	struct iovec v = {it->buf, (size_t)rh.sh_size};
	it->hash = xsr_record_hash(&rh, &v, 1, rh.sh_size);
	return !(code == XSR_SEC_END && (rh.sh_type & XSR_SHT_BASE));
}

static void *ahead_main(void *arg)
{
	struct sahead *a = arg;
	for (bool more = true; more;) {
		struct aitem *it = &a->it[a->next_fill % 2];
		pthread_mutex_lock(&a->w.lock);
		while (it->full && !a->w.stop)
			pthread_cond_wait(&a->w.cond, &a->w.lock);
		bool stop = a->w.stop;
		pthread_mutex_unlock(&a->w.lock);
		if (stop)
			break;
		more = ahead_record(a->s, it);
		pthread_mutex_lock(&a->w.lock);
		it->full = true;
		a->next_fill++;
		pthread_cond_broadcast(&a->w.cond);
		pthread_mutex_unlock(&a->w.lock);
	}
	pthread_mutex_lock(&a->w.lock);
	a->done = true;
	pthread_cond_broadcast(&a->w.cond);
	pthread_mutex_unlock(&a->w.lock);
	return NULL;
}

static void ahead_stop(struct xsr_stream *s)
{
	struct sahead *a = s->ahead;
	if (!a)
		return;
	xsr_worker_stop(&a->w);
	free(a->it[0].buf);
	free(a->it[1].buf);
	free(a);
	s->ahead = NULL;
	s->item = NULL;
}

/*
 * Start after the file header, when the prefix is used up; false: read in
 * line.  Only from a regular file: a read from a pipe or socket may wait
 * for a producer for ever, and a reader that has failed must not wait for
 * its thread to come back from such a read.
 */
static bool ahead_start(struct xsr_stream *s)
{
	struct stat sb;
	if (s->prepos != s->prelen || !xsr_source_is_fd(&s->src) || fstat(s->src.fd, &sb) < 0 ||
	    !S_ISREG(sb.st_mode) || xsr_usable_cpus() < 2)
		return false;
	struct sahead *a = calloc(1, sizeof(*a));
	if (!a)
		return false;
	a->s = s;
	if (xsr_worker_start(&a->w, ahead_main, a) < 0) {
		free(a);
		return false;
	}
	s->ahead = a;
	return true;
}

/*
 * The next record from the thread (the one before is released), or NULL
 * when it has stopped and every record it read is taken: the source is
 * then read here, from where the thread left it.
 */
static struct aitem *ahead_take(struct xsr_stream *s)
{
	struct sahead *a = s->ahead;
	pthread_mutex_lock(&a->w.lock);
	if (s->item) {
		s->item->full = false;
		s->item = NULL;
		pthread_cond_broadcast(&a->w.cond);
	}
	struct aitem *it = &a->it[a->next_take % 2];
	while (!it->full && !a->done)
		pthread_cond_wait(&a->w.cond, &a->w.lock);
	bool have = it->full;
	pthread_mutex_unlock(&a->w.lock);
	if (!have)
		return NULL; /* the thread is done: src_off is where it stopped */
	a->next_take++;
	s->item = it;
	return it;
}

/* get() of a record header, from the thread's item: the same octets, offsets and messages. */
static int item_header(struct xsr_stream *s, struct aitem *it, struct xsr_record_header *rh)
{
	const char *what = "a record header";
	if (it->rh_got == sizeof(*rh)) {
		memcpy(rh, it->rh, sizeof(*rh));
		s->off += sizeof(*rh);
		return 0;
	}
	if (it->rh_err)
		return sfail(s, XSR_E_IO, "stream offset 0x%llx: reading %s: %s", (unsigned long long)(s->off + it->rh_got),
			     what, strerror(-it->rh_err));
	s->off += it->rh_got;
	return sfail(s, XSR_E_TRUNCATED, "stream truncated at offset 0x%llx inside %s (%zu of %zu octets)",
		     (unsigned long long)s->off, what, it->rh_got, sizeof(*rh));
}

/* take() of the body and trailer, from the thread's item: the same octets, offsets and messages. */
static int item_body(struct xsr_stream *s, struct aitem *it, size_t len, const char *what)
{
	if (it->err == -ENOMEM)
		return sfail(s, XSR_E_NOMEM, "out of memory for a record of %zu octets", len);
	if (it->err)
		return sfail(s, XSR_E_IO, "stream offset 0x%llx: reading %s: %s", (unsigned long long)(s->off + it->got), what,
			     strerror(-it->err));
	if (it->got < len) {
		s->off += it->got;
		return sfail(s, XSR_E_TRUNCATED, "stream truncated at offset 0x%llx inside %s (%zu of %zu octets)",
			     (unsigned long long)s->off, what, it->got, len);
	}
	s->off += len;
	s->rec = it->buf;
	return 0;
}

static int read_header(struct xsr_stream *s, const struct xsr_stream_ops *ops, void *ctx)
{
	uint8_t hdr[XSR_HEADER_END];
	int rc = get(s, hdr, sizeof(hdr), "the file header");
	if (rc < 0)
		return rc;
	if ((rc = xsr_check_headers(hdr, XSR_LAYOUT_STREAM, s->err, sizeof(s->err))) < 0)
		return rc;
	memcpy(&s->eh, hdr, sizeof(s->eh));
	memcpy(&s->fh, hdr + XSR_EHDR_SIZE, sizeof(s->fh));
	if (s->eh.e_phnum || s->eh.e_shnum || s->eh.e_shstrndx)
		return sfail(s, XSR_E_FORMAT, "offset 0x38: a stream's e_phnum/e_shnum/e_shstrndx must be 0");
	s->vcpu_seen = calloc(s->fh.nr_vcpus, 1);
	if (!s->vcpu_seen)
		return sfail(s, XSR_E_NOMEM, "out of memory");
	s->have_header = true;
	if (ops && ops->header)
		return ops->header(ctx, &s->fh);
	return 0;
}

/* A batch the validator passed (@ndata entries with data): decoded and handed on. */
static int do_pages(struct xsr_stream *s, uint64_t at, uint32_t ndata, const struct xsr_stream_ops *ops, void *ctx)
{
	struct xsr_page_batch b;
	memcpy(&b, s->rec, sizeof(b));
	const uint64_t *pfns = (const uint64_t *)(s->rec + sizeof(b));
	const uint8_t *data = (const uint8_t *)(pfns + b.count);
	if (b.compress != XSR_COMPRESS_NONE) {
		/* Only compressed streams need a batch buffer, and only as large as their batches. */
		size_t need = (size_t)ndata * XSR_PAGE_SIZE;
		if (need > s->pages_cap) {
			free(s->pages); /* nothing in it to keep */
			s->pages_cap = 0;
			if (!(s->pages = malloc(need)))
				return sfail(s, XSR_E_NOMEM, "out of memory for a page batch");
			s->pages_cap = need;
		}
		if (!ndata || xsr_decompress(b.compress, data, b.data_len, s->pages, (size_t)ndata * XSR_PAGE_SIZE))
			return sfail(s, XSR_E_FORMAT, "record pages at stream offset 0x%llx: compressed data does not decode to %u pages",
				     (unsigned long long)at, ndata);
		data = s->pages;
	}
	return ops && ops->pages ? ops->pages(ctx, pfns, b.count, data) : 0;
}

static int do_end(struct xsr_stream *s, uint64_t at, const struct xsr_stream_ops *ops, void *ctx)
{
	struct xsr_end e;
	memcpy(&e, s->rec, sizeof(e));
	if (e.nr_records != s->nrec || e.chain != s->chain)
		return sfail(s, XSR_E_CHECKSUM, "record end at stream offset 0x%llx: %llu records and their checksum chain do not match the %llu received (records lost, added or reordered)",
			     (unsigned long long)at, (unsigned long long)e.nr_records, (unsigned long long)s->nrec);
	if (!s->have_memmap || !s->have_notes)
		return sfail(s, XSR_E_FORMAT, "stream ends without a %s record", s->have_memmap ? "notes" : "memmap");
	for (uint32_t i = 0; i < s->fh.nr_vcpus; i++)
		if (!s->vcpu_seen[i])
			return sfail(s, XSR_E_FORMAT, "stream ends without the state of vCPU %u", i);
	s->ended = true;
	return ops && ops->end ? ops->end(ctx, &e) : 0;
}

/*
 * Fault in, writable, the memory a placed batch is about to be read into:
 * one call for a run of pages.  A page fault inside the socket copy holds
 * the socket locked while the page is allocated and cleared, and the
 * packets that arrive meanwhile are processed late, from the backlog:
 * profiled, that made placing pages into fresh memory cost the receiver
 * more CPU than reading them into a buffer and copying.  Advice only:
 * without MADV_POPULATE_WRITE (Linux < 5.14) the copy faults as before.
 */
static void prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	(void)madvise(p, len, MADV_POPULATE_WRITE);
#else
	(void)p, (void)len;
#endif
}

void xsr_stream_set_placement(struct xsr_stream *s, xsr_place_fn dest, void *ctx)
{
	s->place = dest;
	s->place_ctx = ctx;
}

/* At most this many separate destinations per batch, else the batch is read whole. */
#define XSR_PLACE_MAX_RUNS 8u

/*
 * An uncompressed PAGES record whose page data goes straight where the
 * consumer's placement callback says (xsr_stream_set_placement): the batch
 * header and pfns are read and checked first, then each run of pages with
 * consecutive destinations is read there, then the checksum is verified
 * over what arrived.  1 when done (ops->pages called with data NULL), 0
 * when the batch does not lend itself (compressed, scattered, a
 * destination refused, or anything the checks below would refuse: the
 * ordinary path then reads the rest and reports it as it always did),
 * with *@have octets of the body in s->body; < 0 on a read error or a
 * checksum mismatch, after which the destinations hold what arrived.
 */
static int place_pages(struct xsr_stream *s, const struct xsr_record_header *rh, uint64_t at, uint64_t span,
		       const char *what, size_t *have, const struct xsr_stream_ops *ops, void *ctx)
{
	struct xsr_page_batch b;
	struct iovec iov[1 + XSR_PLACE_MAX_RUNS];
	uint32_t nruns = 0, ndata = 0;
	int rc;

	/* Sources in memory are read in place anyway; a read error is the ordinary path's to report. */
	if (s->prepos != s->prelen || !s->have_memmap || s->src.ops->view(&s->src, s->src_off, (size_t)span) ||
	    (rc = take_from(s, sizeof(b), 0, what)) < 0)
		return 0;
	*have = sizeof(b);
	memcpy(&b, s->body, sizeof(b));
	uint64_t fixed = sizeof(b) + (uint64_t)b.count * 8;
	if (b.compress != XSR_COMPRESS_NONE || b.count == 0 || b.count > XSR_MAX_BATCH || fixed > rh->sh_size ||
	    rh->sh_size - fixed != b.data_len || b.data_len % XSR_PAGE_SIZE)
		return 0;
	if (take_from(s, (size_t)fixed, sizeof(b), what) < 0)
		return 0;
	*have = (size_t)fixed;
	char bwhy[256];
	struct xsr_sec_check_ctx cc = {
		.layout = XSR_LAYOUT_STREAM, .fh = &s->fh, .runs = s->runs, .base = s->base,
		.nruns = s->nruns, .pfn = &s->cur_pfn, .ndata = &ndata,
	};
	/* The check reads the header and pfns only; a refusal is reported after the checksum, as ever. */
	if (xsr_sec_check(XSR_SEC_PAGES, s->body, rh->sh_size, &cc, bwhy, sizeof(bwhy)) < 0 || ndata == 0) {
		s->cur_pfn = XSR_NO_PFN;
		return 0;
	}
	const uint64_t *pfns = (const uint64_t *)(s->body + sizeof(b));
	iov[0] = (struct iovec){s->body, (size_t)fixed};
	for (uint32_t i = 0; i < b.count; i++) {
		if (pfns[i] & XSR_PFN_ZERO)
			continue;
		uint8_t *d = s->place(s->place_ctx, pfns[i]);
		if (!d)
			return 0;
		if (nruns && (uint8_t *)iov[nruns].iov_base + iov[nruns].iov_len == d) {
			iov[nruns].iov_len += XSR_PAGE_SIZE;
			continue;
		}
		if (nruns == XSR_PLACE_MAX_RUNS)
			return 0;
		iov[++nruns] = (struct iovec){d, XSR_PAGE_SIZE};
	}
	/* Committed: from here the data goes to the destinations. */
	size_t done = (size_t)fixed;
	for (uint32_t r = 1; r <= nruns; r++)
		prefault(iov[r].iov_base, iov[r].iov_len);
	for (uint32_t r = 1; r <= nruns; r++) {
		if ((rc = get_part(s, iov[r].iov_base, iov[r].iov_len, what, done, (size_t)span)) < 0)
			return rc;
		done += iov[r].iov_len;
	}
	uint8_t tail[16]; /* padding (none: a batch body is 8-aligned) and the trailer */
	uint64_t pad = ALIGN8(rh->sh_size) - rh->sh_size, trailer;
	if ((rc = get_part(s, tail, (size_t)pad + 8, what, done, (size_t)span)) < 0)
		return rc;
	memcpy(&trailer, tail + pad, 8);
	const char *name = "pages";
	if (xsr_record_hash(rh, iov, (int)nruns + 1, rh->sh_size) != trailer)
		return sfail(s, XSR_E_CHECKSUM, "record %s at stream offset 0x%llx: checksum mismatch", name, (unsigned long long)at);
	s->chain = XXH3_64bits_withSeed(&trailer, 8, s->chain);
	s->nrec++;
	if (ops && ops->pages && (rc = ops->pages(ctx, pfns, b.count, NULL)) < 0)
		return rc;
	return 1;
}

int xsr_stream_step(struct xsr_stream *s, const struct xsr_stream_ops *ops, void *ctx)
{
	struct xsr_record_header rh;
	int rc;
	if (s->ended)
		return 1;
	s->cur_at = s->off;
	s->cur_type = 0;
	s->cur_pfn = XSR_NO_PFN;
	if (!s->have_header) {
		rc = read_header(s, ops, ctx);
		if (rc == 0 && s->want_ahead)
			ahead_start(s);
		return rc;
	}
	uint64_t at = s->off;
	struct aitem *it = s->ahead ? ahead_take(s) : NULL;
	if ((rc = it ? item_header(s, it, &rh) : get(s, &rh, sizeof(rh), "a record header")) < 0) {
		if (rc == XSR_E_TRUNCATED && s->off == at)
			return sfail(s, rc, "stream truncated at offset 0x%llx: no END record (%llu records read)",
				     (unsigned long long)at, (unsigned long long)s->nrec);
		return rc;
	}
	s->cur_type = rh.sh_type;
	uint32_t code;
	if (rh.sh_type == SHT_NOTE)
		code = XSR_SEC_NOTES;
	else if ((rh.sh_type & XSR_SHT_BASE) && !(rh.sh_type & ~(XSR_SHT_BASE | XSR_SHT_OPTIONAL | XSR_SHT_CODE_MASK)))
		code = rh.sh_type & XSR_SHT_CODE_MASK;
	else
		return sfail(s, XSR_E_FORMAT, "record at stream offset 0x%llx: type 0x%x is not an xsrelf record", (unsigned long long)at, rh.sh_type);
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	const char *name = d ? d->name : "unknown";
	if (rh.sh_offset != XSR_OFF_STREAMED || rh.sh_name || rh.sh_flags || rh.sh_addr || rh.sh_link ||
	    rh.sh_addralign != (code == XSR_SEC_NOTES ? 4u : 8u))
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: sh_offset is not the streamed sentinel or a zero field is set",
			     name, (unsigned long long)at);
	const char *why = code == XSR_SEC_PAGES ? (rh.sh_info || rh.sh_entsize ? "sh_info and sh_entsize must be 0" : NULL)
						: xsr_rh_fixed(code, d, rh.sh_info, rh.sh_entsize, rh.sh_addralign);
	if (why)
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: %s", name, (unsigned long long)at, why);
	/* The writer's order: PRODUCER, then MEMMAP, before anything else. */
	if ((s->nrec == 0 && code != XSR_SEC_PRODUCER) || (s->nrec == 1 && code != XSR_SEC_MEMMAP))
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: a stream begins with producer and memmap records",
			     name, (unsigned long long)at);
	if (!d && !(rh.sh_type & XSR_SHT_OPTIONAL))
		return sfail(s, XSR_E_UNSUPPORTED, "record at stream offset 0x%llx: unknown mandatory record type %u (0x%x); this reader knows types 0..%u",
			     (unsigned long long)at, code, rh.sh_type, XSR_SEC__COUNT - 1);
	uint64_t max = d ? d->max_len : XSR_MAX_RECORD;
	if (rh.sh_size > max || (d && rh.sh_size < d->min_len))
		return sfail(s, XSR_E_LIMIT, "record %s at stream offset 0x%llx: %llu octets, must be %llu..%llu", name,
			     (unsigned long long)at, (unsigned long long)rh.sh_size, (unsigned long long)(d ? d->min_len : 0),
			     (unsigned long long)max);
	if (d && d->seekable_only)
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: only allowed in seekable images", name, (unsigned long long)at);
	uint64_t span = ALIGN8(rh.sh_size) + 8;
	/* a length damaged upwards shows as a cut: name the record that claimed it */
	char what[96];
	snprintf(what, sizeof(what), "the body of record %s at stream offset 0x%llx", name, (unsigned long long)at);
	bool ahead = it && it->body;
	size_t have = 0;
	if (!ahead && code == XSR_SEC_PAGES && s->place) {
		/* 1: placed and handed on; 0: not placeable, @have octets of the body are in s->body */
		if ((rc = place_pages(s, &rh, at, span, what, &have, ops, ctx)) != 0)
			return rc < 0 ? rc : 0;
	}
	if ((rc = ahead ? item_body(s, it, (size_t)span, what) : take_from(s, (size_t)span, have, what)) < 0)
		return rc;
	uint64_t pad = ALIGN8(rh.sh_size) - rh.sh_size, trailer;
	memcpy(&trailer, s->rec + ALIGN8(rh.sh_size), 8);
	if (!xsr_is_zero(s->rec + rh.sh_size, pad))
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: padding is not zero", name, (unsigned long long)at);
	struct iovec v = {(void *)s->rec, rh.sh_size};
	if ((ahead ? it->hash : xsr_record_hash(&rh, &v, 1, rh.sh_size)) != trailer)
		return sfail(s, XSR_E_CHECKSUM, "record %s at stream offset 0x%llx: checksum mismatch", name, (unsigned long long)at);
	/* Order, repetition and the vCPU filed under are the stream's to judge, before the body. */
	if (d && d->per_vcpu) {
		if (rh.sh_info >= s->fh.nr_vcpus)
			return sfail(s, XSR_E_RANGE, "record %s at stream offset 0x%llx: vCPU %u of %u", name, (unsigned long long)at, rh.sh_info, s->fh.nr_vcpus);
		if (code == XSR_SEC_VCPU) {
			if (s->vcpu_seen[rh.sh_info])
				return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: second state for vCPU %u", name, (unsigned long long)at, rh.sh_info);
			s->vcpu_seen[rh.sh_info] = 1;
		}
	}
	if ((code == XSR_SEC_MEMMAP && s->have_memmap) || (code == XSR_SEC_NOTES && s->have_notes))
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: a second %s record", name,
			     (unsigned long long)at, name);
	if ((code == XSR_SEC_PAGES || code == XSR_SEC_VCPU) && !s->have_memmap)
		return sfail(s, XSR_E_FORMAT, "record %s at stream offset 0x%llx: comes before the memmap record", name,
			     (unsigned long long)at);
	if (code == XSR_SEC_VCPU && !s->vcpu && !(s->vcpu = malloc(sizeof(*s->vcpu))))
		return sfail(s, XSR_E_NOMEM, "out of memory");
	/*
	 * The body through the table's validator, as the seekable reader and
	 * verify do (check.c): every VCPU record is decoded here, not only by
	 * consumers that need the state, so that verify refuses what convert
	 * and restore refuse (issue 15).
	 */
	uint32_t ndata = 0;
	char bwhy[256];
	struct xsr_sec_check_ctx cc = {
		.layout = XSR_LAYOUT_STREAM, .info = rh.sh_info, .fh = &s->fh, .runs = s->runs, .base = s->base,
		.nruns = s->nruns, .pfn = &s->cur_pfn, .ndata = &ndata, .vcpu = s->vcpu,
	};
	if ((rc = xsr_sec_check(code, s->rec, rh.sh_size, &cc, bwhy, sizeof(bwhy))) < 0)
		return sfail(s, rc, "record %s at stream offset 0x%llx: %s", name, (unsigned long long)at, bwhy);
	if (code == XSR_SEC_END)
		return (rc = do_end(s, at, ops, ctx)) < 0 ? rc : 1;
	s->chain = XXH3_64bits_withSeed(&trailer, 8, s->chain);
	s->nrec++;
	if (!d)
		return 0; /* unknown optional record: skipped */
	if (code == XSR_SEC_MEMMAP) {
		s->nruns = (uint32_t)(rh.sh_size / sizeof(struct xsr_memrun));
		s->runs = malloc(rh.sh_size + 1);
		s->base = malloc(((size_t)s->nruns + 1) * 8);
		if (!s->runs || !s->base)
			return sfail(s, XSR_E_NOMEM, "out of memory");
		memcpy(s->runs, s->rec, rh.sh_size);
		uint64_t total = 0;
		for (uint32_t i = 0; i < s->nruns; i++) {
			s->base[i] = total;
			total += s->runs[i].count;
		}
		s->have_memmap = true;
	} else if (code == XSR_SEC_NOTES) {
		s->have_notes = true;
	} else if (code == XSR_SEC_PAGES) {
		return do_pages(s, at, ndata, ops, ctx);
	}
	if (ops && ops->section) {
		rc = ops->section(ctx, &rh, s->rec);
		if (rc < 0 && !s->err[0])
			sfail(s, rc, "record %s at stream offset 0x%llx: refused by the consumer", name, (unsigned long long)at);
		return rc;
	}
	return 0;
}

int xsr_stream_run(struct xsr_stream *s, const struct xsr_stream_ops *ops, void *ctx)
{
	int rc;
	while ((rc = xsr_stream_step(s, ops, ctx)) == 0)
		;
	return rc < 0 ? rc : 0;
}

int xsr_stream_expect_eof(struct xsr_stream *s)
{
	uint8_t b;
	s->cur_at = s->off;
	s->cur_type = 0;
	s->cur_pfn = XSR_NO_PFN;
	if (!s->ended)
		return sfail(s, XSR_E_STATE, "stream offset 0x%llx: END not read yet", (unsigned long long)s->off);
	ssize_t r = s->prepos < s->prelen ? 1 : s->src.ops->read(&s->src, &b, 1, s->src_off);
	if (r < 0)
		return sfail(s, XSR_E_IO, "stream offset 0x%llx: reading past the END record: %s", (unsigned long long)s->off,
			     strerror((int)-r));
	if (r > 0)
		return sfail(s, XSR_E_FORMAT, "data after the END record at stream offset 0x%llx", (unsigned long long)s->off);
	return 0;
}

static int read_all(int fd, const void *prefix, size_t plen, const struct xsr_stream_ops *ops, void *ctx,
		    char *err, size_t errlen, bool ahead)
{
	struct xsr_stream *s;
	int rc = xsr_stream_open(&s, fd, err, errlen);
	if (rc < 0)
		return rc;
	s->want_ahead = ahead;
	if (plen && (rc = xsr_stream_prefix(s, prefix, plen)) < 0) {
		xsr_fmt(err, errlen, "out of memory");
		xsr_stream_close(s);
		return rc;
	}
	if (err && errlen)
		err[0] = 0;
	rc = xsr_stream_run(s, ops, ctx);
	if (rc == 0)
		rc = xsr_stream_expect_eof(s);
	/* The reader's message names the offset; a consumer's names the cause. */
	if (rc < 0 && (!err || !err[0] || rc == XSR_E_TRUNCATED || rc == XSR_E_CHECKSUM || rc == XSR_E_FORMAT))
		xsr_fmt(err, errlen, "%s", s->err);
	xsr_stream_close(s);
	return rc;
}

int xsr_stream_read_all(int fd, const void *prefix, size_t plen, const struct xsr_stream_ops *ops, void *ctx,
			char *err, size_t errlen)
{
	return read_all(fd, prefix, plen, ops, ctx, err, errlen, false);
}

int xsr_stream_read_all_ahead(int fd, const void *prefix, size_t plen, const struct xsr_stream_ops *ops, void *ctx,
			      char *err, size_t errlen)
{
	return read_all(fd, prefix, plen, ops, ctx, err, errlen, true);
}
