/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sending side of a live migration (runs in the source VMM).
 *
 * Pre-copy: round 0 sends every page while the guest runs, each later round
 * the pages the backend's dirty log reports; every round ends with a
 * MIG_ROUND record and waits for the receiver's ACK, which both bounds what
 * is in flight and gives a bandwidth measurement that includes the
 * receiver's work.  The stop policy is in should_stop().  Then the guest is
 * paused, the last dirty pages, vCPUs and domain context go out, END, and the
 * source waits for COMMIT; only then may the caller discard the guest.
 *
 * Post-copy: after the pre-copy rounds the guest is paused, the vCPUs and
 * context go out with the list of still-dirty pfns, TRANSITION, and the
 * receiver resumes the guest.  The sender then pushes the pending pages in
 * small batches, serving FAULT requests before the next push batch.
 *
 * Every failure before COMMIT (or, in post-copy, before RESUMED) leaves the
 * source guest running as if nothing had happened.
 */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xsrelf/writer.h>

#include "../util/clock.h"
#include "migrate.h"

/*
 * Pre-copy batches of up to 1024 entries (a record's limit).  Tried and
 * measured (perf, issue 19): batches of 64 data pages, whose 256 KiB bounce
 * buffer stays in L2 for the checksum and the send, cost the receiver
 * 20-40 % more CPU per GiB on loopback: sixteen times as many records, each
 * a few more small socket reads, each of which processes the TCP backlog.
 */
#define CHUNK XSR_MAX_BATCH
#define PUSH_CHUNK 64u  /* pages per batch, post-copy push: keeps fault latency low */
#define XEN_FEW_PAGES 50u

struct snd {
	struct xsr_backend *be;
	struct xsr_writer *w;
	struct xsr_domain_info info;
	const struct xsr_mig_send_opts *o;
	struct xsr_mig_send_stats *st;
	int fd;
	uint64_t nslots, words;
	uint64_t *slot0; /* first slot of each run */
	uint32_t round;
	uint64_t round_pages, round_zero;
	uint8_t *bounce; /* CHUNK pages: see send_pfns() */
	uint64_t *holes; /* round 0: slots the backend knew to be zero at its start (hole_map) */
	char *err;
	size_t errlen;
	char peer_msg[XSR_MIG_MAX_TEXT + 64];
};

static uint64_t popcount(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* Slot of @pfn, or -1 when the guest has no such frame. */
static int64_t slot_of(const struct snd *c, uint64_t pfn)
{
	for (uint32_t r = 0; r < c->info.nr_runs; r++) {
		const struct xsr_memrun *m = &c->info.runs[r];

		if (pfn >= m->pfn && pfn - m->pfn < m->count)
			return (int64_t)(c->slot0[r] + pfn - m->pfn);
	}
	return -1;
}

static uint64_t pfn_of(const struct snd *c, uint64_t slot)
{
	uint32_t r = 0;

	while (r + 1 < c->info.nr_runs && slot >= c->slot0[r + 1])
		r++;
	return c->info.runs[r].pfn + slot - c->slot0[r];
}

static void cut(struct snd *c, const char *point)
{
	if (mig_cut_here(point)) {
		/* Test hook: as if the network went away here. */
		shutdown(c->fd, SHUT_RDWR);
	}
}

static int werr(struct snd *c, int rc)
{
	snprintf(c->err, c->errlen, "%s", xsr_writer_error(c->w));
	return rc;
}

/* After a failed write the receiver may have said why: fetch its ERROR. */
static void peer_reason(struct snd *c) { mig_peer_reason(c->fd, c->err, c->errlen); }

/* The run holding all of @pfns[0..n) as one contiguous range, or -1. */
static int one_range(const struct snd *c, const uint64_t *pfns, uint32_t n)
{
	if (pfns[n - 1] < pfns[0] || pfns[n - 1] - pfns[0] != n - 1)
		return -1;
	for (uint32_t r = 0; r < c->info.nr_runs; r++) {
		const struct xsr_memrun *m = &c->info.runs[r];

		if (pfns[0] >= m->pfn && pfns[0] - m->pfn < m->count)
			return pfns[n - 1] - m->pfn < m->count ? (int)r : -1;
	}
	return -1;
}

/*
 * Write pages (pfns need not be contiguous).  Each page is copied out of the
 * guest first: the writer checksums a record's body and then writes it, and
 * a running guest may change a page in between, which the receiver would
 * (rightly) refuse as a corrupt record.  A copy torn by a concurrent write is
 * harmless: the page is dirty again and goes out in a later round.
 *
 * One touch per page: a page the backend knows to be zero without reading
 * it (a hole of its memory file: memory the guest never wrote) is not read
 * at all, which also keeps an idle source guest from allocating memory it
 * never used; a page whose first read finds it zero is not copied; the rest
 * is copied into the bounce buffer, data pages packed at its start.
 */
static int send_pfns(struct snd *c, const uint64_t *pfns, uint32_t n)
{
	const void *ptrs[CHUNK];
	uint8_t zero[CHUNK];
	struct xsr_writer_stats ws0, ws1;
	uint8_t *base = NULL;
	int rc;

	xsr_writer_stats(c->w, &ws0);
	memset(zero, 0, n);
	if (c->round == 0 && c->holes) {
		for (uint32_t i = 0; i < n; i++) {
			int64_t sl = slot_of(c, pfns[i]);
			zero[i] = sl >= 0 && (c->holes[sl / 64] >> (sl % 64) & 1);
		}
	}
	if (one_range(c, pfns, n) >= 0) {
		void *addr;

		if ((rc = c->be->ops->map(c->be, pfns[0], n, 0, &addr)) < 0) {
			snprintf(c->err, c->errlen, "mapping guest pfn 0x%" PRIx64 "+%u: %s", pfns[0], n,
				 c->be->ops->error(c->be));
			return rc;
		}
		base = addr;
	}
	for (uint32_t i = 0, nb = 0; i < n; i++) {
		uint8_t *dst = c->bounce + (size_t)nb * XSR_PAGE_SIZE;
		void *addr;

		ptrs[i] = NULL;
		if (zero[i])
			continue;
		if (base) {
			addr = base + (size_t)i * XSR_PAGE_SIZE;
		} else if ((rc = c->be->ops->map(c->be, pfns[i], 1, 0, &addr)) < 0) {
			snprintf(c->err, c->errlen, "mapping guest pfn 0x%" PRIx64 ": %s", pfns[i],
				 c->be->ops->error(c->be));
			return rc;
		}
		if (!xsr_page_is_zero(addr)) {
			memcpy(dst, addr, XSR_PAGE_SIZE);
			ptrs[i] = dst;
			nb++;
		}
		if (!base)
			c->be->ops->unmap(c->be, addr, pfns[i], 1);
	}
	if (base)
		c->be->ops->unmap(c->be, base, pfns[0], n);
	rc = xsr_writer_put_pages(c->w, pfns, n, ptrs);
	if (rc < 0)
		return werr(c, rc);
	xsr_writer_stats(c->w, &ws1);
	c->round_pages += n;
	c->round_zero += ws1.zero_pages - ws0.zero_pages;
	/* What this batch would have cost uncompressed: header, batch, pfns, data, trailer. */
	c->st->page_raw_bytes += 64 + sizeof(struct xsr_page_batch) + 8 * (uint64_t)n +
				 XSR_PAGE_SIZE * (n - (ws1.zero_pages - ws0.zero_pages)) + 8;
	c->st->page_wire_bytes += ws1.bytes - ws0.bytes;
	return 0;
}

/*
 * Round 0: the slots the backend knows to be zero without reading them
 * (zero_hint: holes of its memory file, memory the guest never wrote), asked
 * once for large spans, since a backend may find them by scanning (SEEK_HOLE
 * looks as far as the data reaches) and asking per batch would cost the
 * square of the guest's size.  A snapshot taken after dirty logging began:
 * a hole the guest writes later is dirty and goes out in a later round.
 * Without memory for the map, every page is simply read.
 */
static int hole_map(struct snd *c)
{
	uint64_t span = c->nslots / 16 > (UINT64_C(1) << 18) ? c->nslots / 16 : UINT64_C(1) << 18;
	uint8_t *z = malloc(span);
	int rc = 0;

	c->holes = calloc(c->words, 8);
	if (!z || !c->holes) {
		free(z);
		free(c->holes);
		c->holes = NULL;
		return 0;
	}
	for (uint32_t r = 0; r < c->info.nr_runs && rc == 0; r++) {
		const struct xsr_memrun *m = &c->info.runs[r];

		for (uint64_t off = 0; off < m->count && rc == 0; off += span) {
			uint64_t k = m->count - off < span ? m->count - off : span;

			memset(z, 0, k);
			if ((rc = c->be->ops->zero_hint(c->be, m->pfn + off, k, z)) < 0) {
				snprintf(c->err, c->errlen, "finding the guest's unused memory: %s", c->be->ops->error(c->be));
				break;
			}
			for (uint64_t i = 0; i < k; i++)
				if (z[i])
					c->holes[(c->slot0[r] + off + i) / 64] |= UINT64_C(1) << ((c->slot0[r] + off + i) % 64);
		}
	}
	free(z);
	return rc;
}

/* Send every slot set in @bm (all slots when @bm is NULL). */
static int send_slots(struct snd *c, const uint64_t *bm, const char *cut_point)
{
	uint64_t pfns[CHUNK];
	uint32_t n = 0;
	uint64_t total = bm ? popcount(bm, c->words) : c->nslots, done = 0;
	int rc;

	for (uint64_t s = 0; s < c->nslots; s++) {
		if (bm && !(bm[s / 64] >> (s % 64) & 1))
			continue;
		pfns[n++] = pfn_of(c, s);
		if (n == CHUNK) {
			if ((rc = send_pfns(c, pfns, n)) < 0)
				return rc;
			done += n;
			n = 0;
			if (cut_point && done >= total / 2)
				cut(c, cut_point);
			if (c->o->progress_fd >= 0)
				dprintf(c->o->progress_fd, "\rmigrate: round %u: %" PRIu64 "/%" PRIu64 " pages   ",
					c->round, done, total);
		}
	}
	if (n && (rc = send_pfns(c, pfns, n)) < 0)
		return rc;
	if (cut_point)
		cut(c, cut_point);
	return 0;
}

static int expect(struct snd *c, uint32_t want, int timeout_ms, void *body, size_t *len)
{
	return mig_expect(c->fd, want, timeout_ms, body, len, c->err, c->errlen);
}

static int hello(struct snd *c)
{
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	struct xsr_mig_hello h;
	size_t len;
	int rc;

	if (c->o->config && (rc = xsr_writer_add(c->w, XSR_SEC_CONFIG, 0, c->o->config, strlen(c->o->config))) < 0)
		return werr(c, rc);
	struct xsr_mig_begin b = {.flags = c->o->postcopy ? XSR_MIG_POSTCOPY : 0};
	cut(c, "hello");
	if ((rc = xsr_writer_add(c->w, XSR_SEC_MIG_BEGIN, 0, &b, sizeof(b))) < 0) {
		werr(c, rc);
		peer_reason(c);
		return rc;
	}
	if ((rc = expect(c, XSR_MIG_R_HELLO, c->o->hello_timeout_ms, body, &len)) < 0)
		return rc;
	if (len <= sizeof(h)) {
		snprintf(c->err, c->errlen, "the receiver sent a malformed HELLO (%zu octets)", len);
		return XSR_E_PEER;
	}
	memcpy(&h, body, sizeof(h));
	body[len - 1] = 0;
	if (h.status != XSR_MIG_HELLO_ACCEPT) {
		snprintf(c->err, c->errlen, "the receiver refused the guest: %s", (char *)body + sizeof(h));
		return XSR_E_PEER;
	}
	if (c->o->postcopy && !(h.flags & XSR_MIG_POSTCOPY)) {
		snprintf(c->err, c->errlen, "the receiver cannot do post-copy (it writes a file?)");
		return XSR_E_PEER;
	}
	return 0;
}

/* End round @c->round: MIG_ROUND, then the receiver's ACK. */
static int end_round(struct snd *c, uint64_t t0, uint64_t bytes0)
{
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	struct xsr_mig_round r = {.round = c->round, .pages = c->round_pages};
	struct xsr_writer_stats ws;
	struct xsr_mig_ack a;
	size_t len;
	int rc;

	if ((rc = xsr_writer_add(c->w, XSR_SEC_MIG_ROUND, 0, &r, sizeof(r))) < 0) {
		werr(c, rc);
		peer_reason(c);
		return rc;
	}
	if ((rc = expect(c, XSR_MIG_R_ACK, c->o->ack_timeout_ms, body, &len)) < 0)
		return rc;
	memcpy(&a, body, sizeof(a));
	if (a.round != c->round) {
		snprintf(c->err, c->errlen, "the receiver acknowledged round %" PRIu64 " at the end of round %u",
			 a.round, c->round);
		return XSR_E_PEER;
	}
	xsr_writer_stats(c->w, &ws);
	struct xsr_mig_round_stat *rs = &c->st->round[c->round < XSR_MIG_MAX_ROUNDS_STAT ? c->round : XSR_MIG_MAX_ROUNDS_STAT - 1];
	rs->pages = c->round_pages;
	rs->zero_pages = c->round_zero;
	rs->bytes = ws.bytes - bytes0;
	rs->ns = util_now_ns() - t0;
	if (rs->ns && rs->bytes > (1u << 20))
		c->st->bandwidth = (double)rs->bytes * 1e9 / (double)rs->ns;
	return 0;
}

/*
 * The stop policy, after a round that left @dirty pages to send:
 *  - never before min_rounds rounds;
 *  - post-copy: after postcopy_rounds rounds;
 *  - --max-downtime MS: when @dirty pages at the measured bandwidth (and the
 *    compression seen so far) fit in MS;
 *  - otherwise Xen's rule: fewer than 50 pages;
 *  - always after max_rounds rounds.
 */
static int should_stop(struct snd *c, uint64_t dirty, uint32_t rounds_done)
{
	const struct xsr_mig_send_opts *o = c->o;

	if (rounds_done < o->min_rounds)
		return 0;
	if (o->postcopy && rounds_done >= o->postcopy_rounds)
		return 1;
	if (rounds_done >= o->max_rounds)
		return 1;
	if (o->max_downtime_ms) {
		double per_page = XSR_PAGE_SIZE;
		const struct xsr_mig_round_stat *r0 = &c->st->round[0];

		if (r0->pages)
			per_page = (double)r0->bytes / (double)r0->pages; /* compression, zero pages */
		if (c->st->bandwidth <= 0)
			return dirty < XEN_FEW_PAGES;
		return (double)dirty * per_page / c->st->bandwidth * 1e3 <= (double)o->max_downtime_ms;
	}
	return dirty < XEN_FEW_PAGES;
}

static int put_vcpus_and_context(struct snd *c)
{
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	int rc = 0;

	if (!vs) {
		snprintf(c->err, c->errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	for (uint32_t v = 0; v < c->info.nr_vcpus && rc == 0; v++) {
		memset(&vs->r, 0, sizeof(vs->r));
		if ((rc = c->be->ops->get_vcpu(c->be, v, vs)) < 0) {
			snprintf(c->err, c->errlen, "reading vCPU %u: %s", v, c->be->ops->error(c->be));
			break;
		}
		vs->r.vcpu_id = v;
		if ((rc = xsr_writer_set_vcpu(c->w, vs)) < 0)
			werr(c, rc);
	}
	free(vs);
	if (rc == 0 && (rc = c->be->ops->save_extra(c->be, c->w)) < 0)
		snprintf(c->err, c->errlen, "sending the domain context: %s",
			 xsr_writer_error(c->w)[0] ? xsr_writer_error(c->w) : c->be->ops->error(c->be));
	return rc;
}

/* Read FAULT requests that are already waiting; mark them in @want. */
static int take_faults(struct snd *c, const uint64_t *pending, uint64_t *want, uint64_t *nwant, int timeout_ms)
{
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	char e[512];
	size_t len;

	while (poll(&pf, 1, timeout_ms) > 0) {
		int code = mig_recv(c->fd, 5000, body, &len, e, sizeof(e));
		struct xsr_mig_pfns h;

		timeout_ms = 0;
		if (code < 0) {
			snprintf(c->err, c->errlen, "post-copy: %s", e);
			return code;
		}
		if (code == XSR_MIG_R_ERROR) {
			body[len - 1] = 0;
			snprintf(c->err, c->errlen, "the receiver failed: %s", (char *)body + sizeof(struct xsr_mig_error));
			return XSR_E_PEER;
		}
		if (code != XSR_MIG_R_FAULT) {
			snprintf(c->err, c->errlen, "the receiver sent %s during post-copy", mig_rec_name((uint32_t)code));
			return XSR_E_PEER;
		}
		memcpy(&h, body, sizeof(h));
		if (h.reserved || h.count == 0 || h.count > XSR_MIG_MAX_FAULT || len != sizeof(h) + (size_t)h.count * 8) {
			snprintf(c->err, c->errlen, "the receiver sent a malformed FAULT record (count %u, %zu octets)",
				 h.count, len);
			return XSR_E_PEER;
		}
		for (uint32_t i = 0; i < h.count; i++) {
			uint64_t pfn;
			int64_t s;

			memcpy(&pfn, body + sizeof(h) + 8 * i, 8);
			s = pfn > XSR_MAX_PFN ? -1 : slot_of(c, pfn);
			if (s < 0) {
				snprintf(c->err, c->errlen,
					 "the receiver asked (FAULT) for pfn 0x%" PRIx64 ", which is outside the guest's memory: refused",
					 pfn);
				return XSR_E_PEER;
			}
			c->st->faults++;
			/* Already pushed: it is in flight, nothing to do. */
			if ((pending[s / 64] >> (s % 64) & 1) && !(want[s / 64] >> (s % 64) & 1)) {
				want[s / 64] |= UINT64_C(1) << (s % 64);
				(*nwant)++;
			}
		}
	}
	return 0;
}

/* Send up to @max slots of @from (clearing them there and in @pending). */
static int push_from(struct snd *c, uint64_t *from, uint64_t *pending, uint64_t *cursor, uint32_t max,
		     uint64_t *sent)
{
	uint64_t pfns[PUSH_CHUNK];
	uint32_t n = 0;
	uint64_t s = cursor ? *cursor : 0;

	for (; s < c->nslots && n < max; s++) {
		if (!(from[s / 64] >> (s % 64) & 1))
			continue;
		from[s / 64] &= ~(UINT64_C(1) << (s % 64));
		pending[s / 64] &= ~(UINT64_C(1) << (s % 64));
		pfns[n++] = pfn_of(c, s);
	}
	if (cursor)
		*cursor = s;
	*sent = n;
	return n ? send_pfns(c, pfns, n) : 0;
}

static int postcopy(struct snd *c, uint64_t *pending, int *resumed, uint64_t tp)
{
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	uint64_t npending = popcount(pending, c->words), cursor = 0;
	uint64_t *want = calloc(c->words, 8), nwant = 0;
	struct xsr_mig_round r = {.round = c->round, .pages = npending, .flags = XSR_MIG_ROUND_PAUSED};
	size_t len;
	int rc;

	if (!want) {
		snprintf(c->err, c->errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	c->st->postcopy = 1;
	if ((rc = xsr_writer_add(c->w, XSR_SEC_POSTCOPY_BEGIN, 0, &r, sizeof(r))) < 0) {
		werr(c, rc);
		goto out;
	}
	if ((rc = put_vcpus_and_context(c)) < 0)
		goto out;
	/* The pending list, in records of at most XSR_MAX_BATCH pfns. */
	uint8_t *rec = malloc(sizeof(struct xsr_mig_pfns) + XSR_MAX_BATCH * 8);
	if (!rec) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	struct xsr_mig_pfns ph = {0};
	for (uint64_t s = 0; s <= c->nslots && rc == 0; s++) {
		if (s < c->nslots && !(pending[s / 64] >> (s % 64) & 1))
			continue;
		if (s < c->nslots) {
			uint64_t pfn = pfn_of(c, s);
			memcpy(rec + sizeof(ph) + 8 * (size_t)ph.count++, &pfn, 8);
		}
		if (ph.count && (ph.count == XSR_MAX_BATCH || s == c->nslots)) {
			memcpy(rec, &ph, sizeof(ph));
			if ((rc = xsr_writer_add(c->w, XSR_SEC_POSTCOPY_PFNS, 0, rec, sizeof(ph) + 8 * (size_t)ph.count)) < 0)
				werr(c, rc);
			ph.count = 0;
		}
	}
	free(rec);
	if (rc < 0)
		goto out;
	if ((rc = xsr_writer_add(c->w, XSR_SEC_POSTCOPY_TRANSITION, 0, NULL, 0)) < 0) {
		werr(c, rc);
		peer_reason(c);
		goto out;
	}
	/* Until RESUMED the guest has not run there: a failure still rolls back. */
	for (;;) {
		rc = mig_recv(c->fd, c->o->ack_timeout_ms, body, &len, c->err, c->errlen);
		if (rc == XSR_MIG_R_FAULT) {
			/* Early faults (KVM touching memory at start) are taken below. */
			struct xsr_mig_pfns h;
			memcpy(&h, body, sizeof(h));
			/* As in post-copy: the count must be what the record holds, not only under the cap. */
			if (h.reserved || h.count == 0 || h.count > XSR_MIG_MAX_FAULT || len != sizeof(h) + (size_t)h.count * 8) {
				snprintf(c->err, c->errlen, "the receiver sent a malformed FAULT record (count %u, %zu octets)",
					 h.count, len);
				rc = XSR_E_PEER;
				goto out;
			}
			for (uint32_t i = 0; i < h.count; i++) {
				uint64_t pfn;
				memcpy(&pfn, body + sizeof(h) + 8 * i, 8);
				int64_t s = pfn > XSR_MAX_PFN ? -1 : slot_of(c, pfn);
				if (s < 0) {
					snprintf(c->err, c->errlen,
						 "the receiver asked (FAULT) for pfn 0x%" PRIx64 ", which is outside the guest's memory: refused",
						 pfn);
					rc = XSR_E_PEER;
					goto out;
				}
				c->st->faults++;
				if ((pending[s / 64] >> (s % 64) & 1) && !(want[s / 64] >> (s % 64) & 1)) {
					want[s / 64] |= UINT64_C(1) << (s % 64);
					nwant++;
				}
			}
			continue;
		}
		if (rc == XSR_MIG_R_RESUMED)
			break;
		if (rc == XSR_MIG_R_ERROR) {
			body[len - 1] = 0;
			snprintf(c->err, c->errlen, "the receiver failed: %s", (char *)body + sizeof(struct xsr_mig_error));
			rc = XSR_E_PEER;
		} else if (rc >= 0) {
			snprintf(c->err, c->errlen, "the receiver sent %s where resumed was due", mig_rec_name((uint32_t)rc));
			rc = XSR_E_PEER;
		} else {
			char e[512];
			snprintf(e, sizeof(e), "%s", c->err);
			snprintf(c->err, c->errlen, "waiting for the receiver to resume the guest: %s", e);
		}
		goto out;
	}
	*resumed = 1;
	c->st->downtime_ns = util_now_ns() - tp;
	{
		struct xsr_mig_ack a;
		memcpy(&a, body, sizeof(a));
		c->st->receiver_load_ns = a.load_ns;
	}
	uint64_t pushed = 0;
	/*
	 * Test hook: XSR_MIG_TEST_PUSH_DELAY_MS holds the background push back
	 * for that long, serving faults only, so that a test can rely on the
	 * guest's first touches arriving as FAULT requests.
	 */
	uint64_t hold_until = 0;
	if (getenv("XSR_MIG_TEST_PUSH_DELAY_MS"))
		hold_until = util_now_ns() + strtoull(getenv("XSR_MIG_TEST_PUSH_DELAY_MS"), NULL, 10) * 1000000ull;
	while (npending) {
		uint64_t sent;
		int hold = hold_until && util_now_ns() < hold_until;

		if ((rc = take_faults(c, pending, want, &nwant, hold ? 20 : 0)) < 0)
			goto out;
		while (nwant) {
			if ((rc = push_from(c, want, pending, NULL, PUSH_CHUNK, &sent)) < 0)
				goto out;
			nwant -= sent;
			npending -= sent;
			c->st->faults_served += sent;
			c->st->postcopy_pages += sent;
		}
		if (hold)
			continue;
		if ((rc = push_from(c, pending, pending, &cursor, PUSH_CHUNK, &sent)) < 0)
			goto out;
		/* A slot taken through @want is gone from @pending, so no double count. */
		npending -= sent;
		pushed += sent;
		c->st->postcopy_pages += sent;
		if (pushed >= c->st->round[0].pages / 4 || npending < PUSH_CHUNK)
			cut(c, "postcopy");
		if (c->o->progress_fd >= 0 && sent)
			dprintf(c->o->progress_fd, "\rmigrate: post-copy: %" PRIu64 " pages left, %" PRIu64 " faults   ",
				npending, c->st->faults);
	}
	rc = 0;
out:
	free(want);
	return rc;
}

/* Describe the domain, number its page slots, open the stream writer and await HELLO.  0 or < 0. */
static int send_open(struct snd *c)
{
	const struct xsr_backend_ops *ops = c->be->ops;
	const struct xsr_mig_send_opts *o = c->o;
	char *err = c->err;
	size_t errlen = c->errlen;
	const char *lacks = backend_lacks(ops, XSR_NEED_CORE | XSR_NEED_SAVE | XSR_NEED_DIRTY);
	int rc;

	if (lacks) {
		snprintf(err, errlen, "live migration: %s not supported by this backend", lacks);
		return XSR_E_BACKEND;
	}
	if ((rc = ops->describe(c->be, &c->info)) < 0) {
		snprintf(err, errlen, "describing the domain: %s", ops->error(c->be));
		return rc;
	}
	c->slot0 = calloc(c->info.nr_runs + 1, sizeof(uint64_t));
	c->bounce = aligned_alloc(XSR_PAGE_SIZE, (size_t)CHUNK * XSR_PAGE_SIZE);
	if (!c->slot0 || !c->bounce) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	for (uint32_t r = 0; r < c->info.nr_runs; r++) {
		c->slot0[r] = c->nslots;
		c->nslots += c->info.runs[r].count;
	}
	c->words = (c->nslots + 63) / 64 + 1;
	struct xsr_writer_params p = {
	    .machine = EM_X86_64, .kind = XSR_KIND_MIGRATION, .layout = XSR_LAYOUT_STREAM,
	    .nr_vcpus = c->info.nr_vcpus, .nr_runs = c->info.nr_runs, .runs = c->info.runs,
	    .hypervisor = c->info.hypervisor, .hypervisor_version = c->info.hypervisor_version,
	    .compress = o->compress,
	};
	if ((rc = xsr_writer_open(&c->w, c->fd, &p, err, errlen)) < 0) {
		/* A receiver that hung up early may have said why. */
		peer_reason(c);
		return rc;
	}
	return hello(c);
}

/* The pre-copy rounds, the guest running: @bm ends with what the last round left dirty.  0 or < 0. */
static int send_precopy(struct snd *c, uint64_t *bm)
{
	const struct xsr_backend_ops *ops = c->be->ops;
	const struct xsr_mig_send_opts *o = c->o;
	struct xsr_mig_send_stats *st = c->st;
	struct xsr_writer_stats ws;
	int rc;

	/* Pure post-copy (postcopy_rounds 0): no pre-copy, every page is pending. */
	for (uint64_t sl = 0; o->postcopy && !o->postcopy_rounds && sl < c->nslots; sl++)
		bm[sl / 64] |= UINT64_C(1) << (sl % 64);
	for (; !(o->postcopy && !o->postcopy_rounds);) {
		uint64_t rt0 = util_now_ns();

		xsr_writer_stats(c->w, &ws);
		c->round_pages = c->round_zero = 0;
		if (c->round == 0 && (rc = hole_map(c)) < 0)
			return rc;
		rc = send_slots(c, c->round ? bm : NULL, c->round == 0 ? "round0" : c->round == 1 ? "round1" : NULL);
		free(c->holes);
		c->holes = NULL;
		if (rc == 0)
			rc = end_round(c, rt0, ws.bytes);
		if (rc < 0) {
			if (rc != XSR_E_PEER) /* not already the receiver's own word */
				peer_reason(c);
			return rc;
		}
		memset(bm, 0, c->words * 8);
		if ((rc = ops->dirty_fetch(c->be, bm, c->nslots)) < 0) {
			snprintf(c->err, c->errlen, "reading the dirty log: %s", ops->error(c->be));
			return rc;
		}
		uint64_t n = popcount(bm, c->words);
		st->round[c->round < XSR_MIG_MAX_ROUNDS_STAT ? c->round : XSR_MIG_MAX_ROUNDS_STAT - 1].dirty = n;
		if (o->progress_fd >= 0)
			dprintf(o->progress_fd, "\rmigrate: round %u: %" PRIu64 " pages sent, %" PRIu64 " dirtied, %.1f MB/s\n",
				c->round, c->round_pages, n, st->bandwidth / 1e6);
		c->round++;
		if (should_stop(c, n, c->round) || c->round + 1 >= XSR_MIG_MAX_ROUNDS_STAT)
			break;
	}
	return 0;
}

/*
 * The guest paused at @tp: the last dirty pages (or post-copy), the vCPUs
 * and context, the stream closed.  *@resumed_remote: the guest runs on the
 * receiver (post-copy).  0 or < 0.
 */
static int send_final(struct snd *c, uint64_t *bm, int *resumed_remote, uint64_t tp)
{
	const struct xsr_backend_ops *ops = c->be->ops;
	struct xsr_mig_send_stats *st = c->st;
	struct xsr_writer_stats ws, ws2;
	int rc;

	/* dirty_fetch ORs in: bm keeps what the last round left. */
	if ((rc = ops->dirty_fetch(c->be, bm, c->nslots)) < 0) {
		snprintf(c->err, c->errlen, "reading the dirty log: %s", ops->error(c->be));
		return rc;
	}
	xsr_writer_stats(c->w, &ws);
	c->round_pages = c->round_zero = 0;
	if (c->o->postcopy) {
		rc = postcopy(c, bm, resumed_remote, tp);
	} else {
		rc = send_slots(c, bm, "final");
		if (rc == 0)
			rc = put_vcpus_and_context(c);
	}
	if (rc < 0) {
		if (rc != XSR_E_PEER) /* not already the receiver's own word */
			peer_reason(c);
		return rc;
	}
	xsr_writer_stats(c->w, &ws2);
	struct xsr_mig_round_stat *rs = &st->round[c->round];
	rs->pages = c->round_pages;
	rs->zero_pages = c->round_zero;
	rs->bytes = ws2.bytes - ws.bytes;
	rs->paused = 1;
	st->rounds = c->round + 1;
	xsr_writer_stats(c->w, &ws);
	rc = xsr_writer_close(c->w, c->err, c->errlen);
	c->w = NULL;
	/* close() added NOTES and END: header + body + padding + trailer each. */
	st->total_bytes = ws.bytes + 64 + (((uint64_t)c->info.nr_vcpus * XSR_NOTE_SIZE + 7) & ~UINT64_C(7)) + 8 +
			  64 + sizeof(struct xsr_end) + 8;
	st->data_pages = ws.pages;
	st->zero_pages = ws.zero_pages;
	if (rc < 0)
		peer_reason(c);
	return rc;
}

/* The receiver's COMPLETE (post-copy) and COMMIT, then RELEASED.  0 or < 0. */
static int send_commit(struct snd *c, uint64_t tp)
{
	const struct xsr_mig_send_opts *o = c->o;
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	size_t len;
	int rc;

	cut(c, "end");
	if (o->postcopy) {
		/*
		 * FAULTs the receiver sent before the last pushed pages reached it
		 * may still come: harmless (every page went out), read and dropped,
		 * as many as there could be (one per FAULT record's worth of pages).
		 */
		unsigned late = (unsigned)(c->nslots < 1u << 20 ? c->nslots : 1u << 20) + 1;
		if ((rc = mig_expect_skip(c->fd, XSR_MIG_R_COMPLETE, XSR_MIG_R_FAULT, late, o->ack_timeout_ms, body,
					  &len, c->err, c->errlen)) < 0)
			return rc;
	}
	if ((rc = expect(c, XSR_MIG_R_COMMIT, o->ack_timeout_ms, body, &len)) < 0)
		return rc;
	/* Tell the receiver this copy is gone; without it, it discards its own. */
	struct xsr_mig_ack rel = {.round = c->round};
	if (mig_send(c->fd, XSR_MIG_R_RELEASED, &rel, sizeof(rel)) < 0) {
		snprintf(c->err, c->errlen, "sending RELEASED after the receiver's COMMIT: %s", strerror(errno));
		return XSR_E_IO;
	}
	if (!o->postcopy) {
		struct xsr_mig_ack a;
		memcpy(&a, body, sizeof(a));
		c->st->downtime_ns = util_now_ns() - tp;
		c->st->receiver_load_ns = a.load_ns;
	}
	return 0;
}

int migrate_send(struct xsr_backend *be, int fd, const struct xsr_mig_send_opts *o,
		 struct xsr_mig_send_stats *st, char *err, size_t errlen)
{
	const struct xsr_backend_ops *ops = be->ops;
	struct snd c = {.be = be, .o = o, .st = st, .fd = fd, .err = err, .errlen = errlen};
	uint64_t *bm = NULL, t0 = util_now_ns(), tp = 0;
	int rc, dirty = 0, paused = 0, resumed_remote = 0;

	memset(st, 0, sizeof(*st));
	err[0] = 0;
	if ((rc = send_open(&c)) < 0)
		goto out;
	bm = calloc(c.words, 8);
	if (!bm) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	if ((rc = ops->dirty_start(be)) < 0) {
		snprintf(err, errlen, "starting dirty tracking: %s", ops->error(be));
		goto out;
	}
	dirty = 1;
	if ((rc = send_precopy(&c, bm)) < 0)
		goto out;
	if ((rc = ops->pause(be)) < 0) {
		snprintf(err, errlen, "pausing the domain: %s", ops->error(be));
		goto out;
	}
	paused = 1;
	tp = util_now_ns();
	if ((rc = send_final(&c, bm, &resumed_remote, tp)) < 0 || (rc = send_commit(&c, tp)) < 0)
		goto out;
	rc = 0;
out:
	if (o->progress_fd >= 0)
		dprintf(o->progress_fd, "\n");
	xsr_writer_abort(c.w);
	if (dirty)
		ops->dirty_stop(be);
	if (rc < 0 && resumed_remote) {
		/* The guest ran on the receiver: this copy is stale.  Keep it paused. */
		char e[1024];
		snprintf(e, sizeof(e), "%s", err);
		snprintf(err, errlen,
			 "post-copy interrupted after the guest resumed on the receiver: %s; the guest's state is split "
			 "(source holds it paused as of the switch-over)",
			 e);
		rc = XSR_MIG_SPLIT;
	} else if (rc < 0 && paused) {
		ops->resume(be);
	}
	free(bm);
	free(c.slot0);
	free(c.bounce);
	free(c.holes);
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}
