/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replay: a seekable image driven into the stream callbacks, so that a
 * consumer (conversion, restore, the tool's scan) is written once for both
 * layouts.  The stream side is the stream reader; what a seekable image
 * adds is the order a stream writer would use (writer.c, open_stream and
 * close_stream) and the checks a random-access reader owes: the index once,
 * every data page against it, every zero-indexed slot read as zero.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Pages per batch: the writer's put_pages chunk, so that a conversion's output does not change. */
#define CHUNK 256u

struct ahead;

struct rp {
	struct xsr_image *img;
	const struct xsr_replay_ops *ops;
	void *ctx;
	bool consumer; /* a callback stopped the replay (its reason is its own) */
	uint8_t *buf;  /* CHUNK pages */
	uint64_t pfns[CHUNK];
	struct xsr_index_entry ent[CHUNK];
	struct ahead *ahead; /* the read-ahead thread, when there is one (XSR_REPLAY_AHEAD_) */
};

static void ahead_stop(struct rp *r);

/* A callback's result: <0 stops the replay, and the image's error says the consumer refused. */
static int cb(struct rp *r, int rc, const char *what)
{
	if (rc < 0) {
		ahead_stop(r); /* the read-ahead thread must be done with the image before its error is set */
		r->consumer = true;
		xsr_image_refused(r->img, rc, what);
	}
	return rc;
}

static int one_section(struct rp *r, uint32_t i)
{
	struct xsr_section_info si;
	void *body;
	uint64_t len;
	int rc;
	if (xsr_image_section(r->img, i, &si) < 0)
		return 0;
	if ((rc = xsr_image_read_section(r->img, i, &body, &len)) < 0)
		return rc;
	rc = r->ops->stream.section ? r->ops->stream.section(r->ctx, xsr_image_rh(r->img, i), body) : 0;
	free(body);
	char what[96];
	snprintf(what, sizeof(what), "section %s", si.name);
	return cb(r, rc, what);
}

/* What a stream writer emits right after the header, in its order. */
static const uint32_t stream_first[] = {XSR_SEC_PRODUCER, XSR_SEC_MEMMAP, XSR_SEC_VMCOREINFO, XSR_SEC_XEN_P2M_TREE};

static bool is_first(uint32_t code)
{
	for (size_t k = 0; k < sizeof(stream_first) / sizeof(stream_first[0]); k++)
		if (code == stream_first[k])
			return true;
	return false;
}

static int sections(struct rp *r)
{
	struct xsr_section_info si;
	int rc;
	for (size_t k = 0; k < sizeof(stream_first) / sizeof(stream_first[0]); k++) {
		int i = xsr_image_find(r->img, stream_first[k], UINT32_MAX, &si);
		if (i > 0 && (rc = one_section(r, (uint32_t)i)) < 0)
			return rc;
	}
	for (uint32_t i = 1; i < xsr_image_nsections(r->img); i++) {
		xsr_image_section(r->img, i, &si);
		if (si.code == UINT32_MAX || is_first(si.code) ||
		    (xsr_section_writer_made(si.code) && si.code != XSR_SEC_VCPU))
			continue;
		if ((rc = one_section(r, i)) < 0)
			return rc;
	}
	return 0;
}

static uint64_t pfn_of(const struct xsr_memrun *run, uint64_t i, const struct xsr_index_entry *e)
{
	uint64_t p = (run->pfn + i) | (uint64_t)(e->flags >> XSR_IDX_XEN_TYPE_SHIFT) << XSR_PFN_XEN_TYPE_SHIFT;
	return e->flags & XSR_IDX_DATA ? p : p | XSR_PFN_ZERO;
}

static int give(struct rp *r, uint32_t m, const uint8_t *data)
{
	if (!m || !r->ops->stream.pages)
		return 0;
	char what[64];
	snprintf(what, sizeof(what), "page batch at pfn 0x%llx", (unsigned long long)(r->pfns[0] & XSR_PFN_MASK));
	return cb(r, r->ops->stream.pages(r->ctx, r->pfns, m, data), what);
}

/*
 * A chunk whose data runs the consumer may place: each run of data pages is
 * one read into the consumer's memory (no bounce copy), zero runs are
 * checked where they lie; what is not placed comes through pages.
 */
static int chunk_placed(struct rp *r, uint32_t run, uint64_t first, uint32_t n)
{
	const struct xsr_memrun *mr = &xsr_image_runs(r->img)[run];
	uint32_t m = 0; /* entries in r->pfns; data of those with data packed in r->buf */
	uint8_t *data = r->buf;
	int rc;
	for (uint32_t k = 0; k < n;) {
		const struct xsr_index_entry *e = &r->ent[k];
		uint32_t z = 1;
		bool isdata = e->flags & XSR_IDX_DATA;
		while (k + z < n && !!(r->ent[k + z].flags & XSR_IDX_DATA) == isdata)
			z++;
		if (!isdata) {
			if ((rc = xsr_image_zero_slots(r->img, run, first + k, z, e)) < 0)
				return rc;
			for (uint32_t q = 0; q < z; q++)
				r->pfns[m++] = pfn_of(mr, first + k + q, &e[q]);
			k += z;
			continue;
		}
		uint64_t pfn = mr->pfn + first + k;
		void *dst = NULL;
		char what[64];
		snprintf(what, sizeof(what), "pages at pfn 0x%llx", (unsigned long long)pfn);
		if ((rc = cb(r, r->ops->place(r->ctx, pfn, z, &dst), what)) < 0)
			return rc;
		if (dst) {
			rc = xsr_image_fill(r->img, run, first + k, z, dst, e);
			int rc2 = r->ops->placed ? r->ops->placed(r->ctx, pfn, z, dst, rc) : 0;
			if (rc < 0)
				return rc;
			if ((rc = cb(r, rc2, what)) < 0)
				return rc;
		} else {
			if ((rc = xsr_image_fill(r->img, run, first + k, z, data, e)) < 0)
				return rc;
			data += (size_t)z * XSR_PAGE_SIZE;
			for (uint32_t q = 0; q < z; q++)
				r->pfns[m++] = pfn_of(mr, first + k + q, &e[q]);
		}
		k += z;
	}
	return give(r, m, r->buf);
}

/* A chunk read and checked (@buf, @ent): its data pages packed in order and given to the consumer. */
static int chunk_give(struct rp *r, uint32_t run, uint64_t first, uint32_t n, uint8_t *buf,
		      const struct xsr_index_entry *ent)
{
	const struct xsr_memrun *mr = &xsr_image_runs(r->img)[run];
	size_t packed = 0;
	for (uint32_t k = 0; k < n; k++) {
		r->pfns[k] = pfn_of(mr, first + k, &ent[k]);
		if (!(ent[k].flags & XSR_IDX_DATA))
			continue;
		if (packed != k)
			memmove(buf + packed * XSR_PAGE_SIZE, buf + (size_t)k * XSR_PAGE_SIZE, XSR_PAGE_SIZE);
		packed++;
	}
	return give(r, n, buf);
}

/* A chunk read whole with one pread (each page checked), its data pages then packed in order. */
static int chunk_read(struct rp *r, uint32_t run, uint64_t first, uint32_t n)
{
	int rc = xsr_image_read_pages(r->img, run, first, n, r->buf, r->ent);
	return rc < 0 ? rc : chunk_give(r, run, first, n, r->buf, r->ent);
}

/*
 * Read-ahead (conversion only): a second thread reads and checks the next
 * chunks (pread, then XXH3 of every page against the index) while this
 * thread gives the current one to the consumer, which for a conversion
 * hashes and writes it again.  The two halves cost about the same, so on
 * two cores a conversion takes about the time of one (issue 19: converting
 * was 0.77-0.84x cp).  Only the pages are read ahead, in the order the
 * plain loop reads them, so every read is the same call as without the
 * thread (XSR_FAULT counts them alike); only fd sources, whose pread has
 * no state, and only with more than one CPU to run on.  The thread touches
 * the image alone while the consumer runs; its error is read after it is
 * joined.
 */
struct abuf {
	uint8_t *buf;
	struct xsr_index_entry ent[CHUNK];
	uint32_t run, n;
	uint64_t first;
	int rc;
	bool full;
};

struct ahead {
	struct xsr_worker w;
	struct xsr_image *img;
	struct abuf b[2];
};

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;
	const struct xsr_memrun *runs = xsr_image_runs(a->img);
	uint64_t seq = 0;
	for (uint32_t run = 0; run < xsr_image_nruns(a->img); run++) {
		for (uint64_t i = 0; i < runs[run].count; i += CHUNK, seq++) {
			struct abuf *b = &a->b[seq % 2];
			pthread_mutex_lock(&a->w.lock);
			while (b->full && !a->w.stop)
				pthread_cond_wait(&a->w.cond, &a->w.lock);
			bool stop = a->w.stop;
			pthread_mutex_unlock(&a->w.lock);
			if (stop)
				return NULL;
			b->run = run;
			b->first = i;
			b->n = (uint32_t)(runs[run].count - i < CHUNK ? runs[run].count - i : CHUNK);
			b->rc = xsr_image_read_pages(a->img, run, i, b->n, b->buf, b->ent);
			pthread_mutex_lock(&a->w.lock);
			b->full = true;
			pthread_cond_broadcast(&a->w.cond);
			pthread_mutex_unlock(&a->w.lock);
			if (b->rc < 0)
				return NULL;
		}
	}
	return NULL;
}

static void ahead_stop(struct rp *r)
{
	struct ahead *a = r->ahead;
	if (!a)
		return;
	xsr_worker_stop(&a->w);
	free(a->b[0].buf);
	free(a->b[1].buf);
	free(a);
	r->ahead = NULL;
}

/* Start the thread if it can help: false (no thread, read in line) otherwise. */
static bool ahead_start(struct rp *r)
{
	if (!(r->ops->flags & XSR_REPLAY_AHEAD_) || (r->ops->flags & XSR_REPLAY_INDEX_ONLY) || r->ops->place ||
	    !xsr_image_reads_fd(r->img) || xsr_usable_cpus() < 2)
		return false;
	struct ahead *a = calloc(1, sizeof(*a));
	if (!a)
		return false;
	a->img = r->img;
	a->b[0].buf = malloc((size_t)CHUNK * XSR_PAGE_SIZE);
	a->b[1].buf = malloc((size_t)CHUNK * XSR_PAGE_SIZE);
	if (!a->b[0].buf || !a->b[1].buf || xsr_worker_start(&a->w, ahead_main, a) < 0) {
		free(a->b[0].buf);
		free(a->b[1].buf);
		free(a);
		return false;
	}
	r->ahead = a;
	return true;
}

/* The chunks as the thread reads them, in order, to the consumer. */
static int pages_ahead(struct rp *r)
{
	struct ahead *a = r->ahead;
	const struct xsr_memrun *runs = xsr_image_runs(r->img);
	uint64_t seq = 0;
	for (uint32_t run = 0; run < xsr_image_nruns(r->img); run++) {
		for (uint64_t i = 0; i < runs[run].count; i += CHUNK, seq++) {
			struct abuf *b = &a->b[seq % 2];
			pthread_mutex_lock(&a->w.lock);
			while (!b->full)
				pthread_cond_wait(&a->w.cond, &a->w.lock);
			pthread_mutex_unlock(&a->w.lock);
			if (b->rc < 0) {
				int rc = b->rc;
				ahead_stop(r); /* its message is in the image: read after the join */
				return rc;
			}
			int rc = chunk_give(r, b->run, b->first, b->n, b->buf, b->ent);
			if (rc < 0)
				return rc;
			pthread_mutex_lock(&a->w.lock);
			b->full = false;
			pthread_cond_broadcast(&a->w.cond);
			pthread_mutex_unlock(&a->w.lock);
		}
	}
	return 0;
}

static int pages(struct rp *r)
{
	const struct xsr_memrun *runs = xsr_image_runs(r->img);
	const bool index_only = r->ops->flags & XSR_REPLAY_INDEX_ONLY;
	int rc;
	if (ahead_start(r)) {
		rc = pages_ahead(r);
		ahead_stop(r);
		return rc;
	}
	for (uint32_t run = 0; run < xsr_image_nruns(r->img); run++) {
		for (uint64_t i = 0; i < runs[run].count; i += CHUNK) {
			uint32_t n = (uint32_t)(runs[run].count - i < CHUNK ? runs[run].count - i : CHUNK);
			if (index_only) {
				if ((rc = xsr_image_run_index(r->img, run, i, n, r->ent)) < 0)
					return rc;
				for (uint32_t k = 0; k < n; k++)
					r->pfns[k] = pfn_of(&runs[run], i + k, &r->ent[k]);
				rc = give(r, n, NULL);
			} else if (r->ops->place) {
				if ((rc = xsr_image_run_index(r->img, run, i, n, r->ent)) < 0)
					return rc;
				rc = chunk_placed(r, run, i, n);
			} else {
				rc = chunk_read(r, run, i, n);
			}
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int replay_image(struct xsr_image *img, const struct xsr_replay_ops *ops, void *ctx, bool *consumer)
{
	struct xsr_replay_ops o = {0};
	struct rp *r;
	int rc;
	*consumer = false;
	if (!img)
		return XSR_E_INVAL;
	/* A caller built against a shorter struct gets the members it knows; a longer one is refused. */
	if (!ops || ops->size < offsetof(struct xsr_replay_ops, place) || ops->size > sizeof(o))
		return xsr_image_refused(img, XSR_E_INVAL, "xsr_image_replay: struct xsr_replay_ops of unknown size");
	memcpy(&o, ops, ops->size);
	if (!(r = calloc(1, sizeof(*r))))
		return XSR_E_NOMEM;
	r->img = img;
	r->ops = &o;
	r->ctx = ctx;
	if (!(o.flags & XSR_REPLAY_INDEX_ONLY) && !(r->buf = malloc((size_t)CHUNK * XSR_PAGE_SIZE))) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	if (o.stream.header && (rc = cb(r, o.stream.header(ctx, xsr_image_header(img)), "the file header")) < 0)
		goto out;
	/* Checked once (16 octets a page; open did unless told not to): its zero flags are trusted from here on. */
	if ((!xsr_image_index_checked(img) && (rc = xsr_image_check_index(img)) < 0) || (rc = sections(r)) < 0 ||
	    (rc = pages(r)) < 0)
		goto out;
	struct xsr_section_info si;
	int ni = xsr_image_find(img, XSR_SEC_NOTES, UINT32_MAX, &si);
	if (ni > 0 && (rc = one_section(r, (uint32_t)ni)) < 0)
		goto out;
	rc = o.stream.end ? cb(r, o.stream.end(ctx, NULL), "the end") : 0;
out:
	*consumer = r->consumer;
	free(r->buf);
	free(r);
	return rc;
}

int xsr_image_replay(struct xsr_image *img, const struct xsr_replay_ops *ops, void *ctx)
{
	bool consumer;
	return replay_image(img, ops, ctx, &consumer);
}

/* ---- a stream, with runs of data pages placed where the consumer says ---- */

struct sp {
	const struct xsr_replay_ops *ops;
	void *ctx;
};

static int sp_header(void *ctx, const struct xsr_file_header *h)
{
	struct sp *p = ctx;
	return p->ops->stream.header ? p->ops->stream.header(p->ctx, h) : 0;
}

static int sp_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct sp *p = ctx;
	return p->ops->stream.section ? p->ops->stream.section(p->ctx, rh, body) : 0;
}

static int sp_end(void *ctx, const struct xsr_end *e)
{
	struct sp *p = ctx;
	return p->ops->stream.end ? p->ops->stream.end(p->ctx, e) : 0;
}

/* Runs of consecutive data pfns are offered to place; the rest go to pages, in order around them. */
static int sp_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct sp *p = ctx;
	const uint8_t *rest = data; /* data of the entries from @from on */
	uint32_t from = 0;
	int rc;
	for (uint32_t k = 0; k < n;) {
		if (pfns[k] & XSR_PFN_ZERO) {
			k++;
			continue;
		}
		uint32_t z = 1;
		while (k + z < n && !(pfns[k + z] & XSR_PFN_ZERO) &&
		       (pfns[k + z] & XSR_PFN_MASK) == (pfns[k] & XSR_PFN_MASK) + z)
			z++;
		/* The data of entry k: past the data of the data entries in [from, k). */
		const uint8_t *d = rest;
		for (uint32_t q = from; q < k; q++)
			if (!(pfns[q] & XSR_PFN_ZERO))
				d += XSR_PAGE_SIZE;
		void *dst = NULL;
		if ((rc = p->ops->place(p->ctx, pfns[k] & XSR_PFN_MASK, z, &dst)) < 0)
			return rc;
		if (!dst) {
			k += z;
			continue;
		}
		if (k > from && p->ops->stream.pages && (rc = p->ops->stream.pages(p->ctx, pfns + from, k - from, rest)) < 0) {
			if (p->ops->placed)
				p->ops->placed(p->ctx, pfns[k] & XSR_PFN_MASK, z, dst, rc);
			return rc;
		}
		memcpy(dst, d, (size_t)z * XSR_PAGE_SIZE);
		if (p->ops->placed && (rc = p->ops->placed(p->ctx, pfns[k] & XSR_PFN_MASK, z, dst, 0)) < 0)
			return rc;
		k += z;
		from = k;
		rest = d + (size_t)z * XSR_PAGE_SIZE;
	}
	if (n > from && p->ops->stream.pages)
		return p->ops->stream.pages(p->ctx, pfns + from, n - from, rest);
	return 0;
}

static int replay_stream(int fd, const void *prefix, size_t plen, const struct xsr_replay_ops *ops, void *ctx,
			 char *err, size_t errlen)
{
	if (!ops->place || (ops->flags & XSR_REPLAY_INDEX_ONLY))
		return (ops->flags & XSR_REPLAY_AHEAD_ ? xsr_stream_read_all_ahead : xsr_stream_read_all)(
			fd, prefix, plen, &ops->stream, ctx, err, errlen);
	struct sp p = {.ops = ops, .ctx = ctx};
	const struct xsr_stream_ops sops = {.header = sp_header, .section = sp_section, .pages = sp_pages,
					    .end = sp_end};
	return xsr_stream_read_all(fd, prefix, plen, &sops, &p, err, errlen);
}

int xsr_replay_fd(int fd, const struct xsr_replay_ops *ops, void *ctx, char *err, size_t errlen)
{
	struct xsr_replay_ops o = {0};
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	if (!ops || ops->size < offsetof(struct xsr_replay_ops, place) || ops->size > sizeof(o)) {
		xsr_fmt(err, errlen, "xsr_replay_fd: struct xsr_replay_ops of unknown size");
		return XSR_E_INVAL;
	}
	memcpy(&o, ops, ops->size);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		if (xsr_io_pread(fd, hdr, sizeof(hdr), 0) < 0) {
			xsr_fmt(err, errlen, "input shorter than the 128-octet header");
			return XSR_E_TRUNCATED;
		}
		if (xsr_sniff_layout(hdr, sizeof(hdr)) == XSR_LAYOUT_SEEKABLE) {
			struct xsr_image *img;
			bool consumer;
			int rc = xsr_image_open(&img, fd, err, errlen);
			if (rc < 0)
				return rc;
			if (err && errlen)
				err[0] = 0;
			rc = replay_image(img, &o, ctx, &consumer);
			/* The library's message names the offset or pfn; a consumer's names the cause. */
			if (rc < 0 && (!consumer || !err || !err[0]))
				xsr_fmt(err, errlen, "%s", xsr_image_error(img));
			xsr_image_close(img);
			return rc;
		}
		if (lseek(fd, sizeof(hdr), SEEK_SET) < 0) {
			xsr_fmt(err, errlen, "seeking the input: %s", strerror(errno));
			return XSR_E_IO;
		}
		return replay_stream(fd, hdr, sizeof(hdr), &o, ctx, err, errlen);
	}
	ssize_t r = xsr_io_read(fd, hdr, sizeof(hdr));
	if (r < 0) {
		xsr_fmt(err, errlen, "reading the input: %s", strerror((int)-r));
		return XSR_E_IO;
	}
	if (xsr_sniff_layout(hdr, (size_t)r) == XSR_LAYOUT_SEEKABLE) {
		xsr_fmt(err, errlen, "a seekable image on a pipe: give it as a file (random access is needed)");
		return XSR_E_STATE;
	}
	return replay_stream(fd, hdr, (size_t)r, &o, ctx, err, errlen);
}
