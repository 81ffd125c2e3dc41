/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generic save: whatever the backend, memory goes from backend->map() to the
 * writer in batches of up to 1024 pages (256 for a seekable image) (pwritev/writev from the guest's own
 * mapping, no copy), and the domain is resumed on every path unless the
 * caller asked to leave it paused.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "save.h"

#define CHUNK 1024u
/*
 * A seekable image's batches are 1 MiB: the zero test, the hash and the
 * write's copy then read each page from the L2 cache the backend's mapping
 * (or the synthetic domain's generator) just left it in.  On one core the
 * hash of a 4 MiB batch came from L3 and cost 6 % of a save to tmpfs, of
 * 1 MiB 2 % (perf stat task-clock, issue 19).  A stream keeps 1024 pages a
 * record: its batches are what it writes, and fewer records cost fewer
 * headers.
 */
#define CHUNK_SEEKABLE 256u

struct savectx {
	struct xsr_backend *be;
	struct xsr_writer *w;
	const struct xsr_domain_info *info;
	uint64_t total_slots, done;
	const struct xsr_save_opts *o;
	uint8_t *bounce;  /* stream + running: pages are copied before checksumming */
	uint32_t chunk;   /* pages per batch: CHUNK, or CHUNK_SEEKABLE */
	char *err;
	size_t errlen;
};

static void progress(struct savectx *c)
{
	if (c->o->progress && c->total_slots)
		c->o->progress(c->o->progress_ctx, c->done, c->total_slots);
}

/* Send pages [pfn, pfn+n) of one run. */
static int send_range(struct savectx *c, uint64_t pfn, uint64_t n)
{
	uint64_t pfns[CHUNK];
	const void *ptrs[CHUNK];
	uint8_t zero[CHUNK];
	const uint64_t chunk = c->chunk;
	for (uint64_t off = 0; off < n; off += chunk) {
		uint32_t m = (uint32_t)(n - off < chunk ? n - off : chunk);
		void *addr;
		memset(zero, 0, m);
		int rc = c->be->ops->zero_hint(c->be, pfn + off, m, zero);
		if (rc == 0)
			rc = c->be->ops->map(c->be, pfn + off, m, 0, &addr);
		if (rc < 0) {
			snprintf(c->err, c->errlen, "mapping guest pfn 0x%llx+%u: %s", (unsigned long long)(pfn + off), m,
				 c->be->ops->error(c->be));
			return rc;
		}
		for (uint32_t i = 0; i < m; i++) {
			const uint8_t *pg = (const uint8_t *)addr + (size_t)i * XSR_PAGE_SIZE;
			pfns[i] = pfn + off + i;
			/* Known-zero pages are never touched: a sparse guest stays sparse. */
			if (zero[i]) {
				ptrs[i] = NULL;
			} else if (c->bounce) {
				/*
				 * A running guest may change a page between its checksum and
				 * its write; a stream record would then fail its checksum, so
				 * the record is made from a copy (the dirty log resends it).
				 */
				memcpy(c->bounce + (size_t)i * XSR_PAGE_SIZE, pg, XSR_PAGE_SIZE);
				ptrs[i] = c->bounce + (size_t)i * XSR_PAGE_SIZE;
			} else {
				ptrs[i] = pg;
			}
		}
		rc = xsr_writer_put_pages(c->w, pfns, m, ptrs);
		c->be->ops->unmap(c->be, addr, pfn + off, m);
		if (rc < 0) {
			snprintf(c->err, c->errlen, "%s", xsr_writer_error(c->w));
			return rc;
		}
		c->done += m;
		progress(c);
	}
	return 0;
}

static int send_all(struct savectx *c)
{
	for (uint32_t r = 0; r < c->info->nr_runs; r++) {
		int rc = send_range(c, c->info->runs[r].pfn, c->info->runs[r].count);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Send the slots set in @bm (slot numbering in run order). */
static int send_dirty(struct savectx *c, const uint64_t *bm, uint64_t *sent)
{
	uint64_t slot = 0;
	*sent = 0;
	for (uint32_t r = 0; r < c->info->nr_runs; r++) {
		const struct xsr_memrun *run = &c->info->runs[r];
		uint64_t i = 0;
		while (i < run->count) {
			uint64_t s = slot + i;
			if (!(bm[s / 64] >> (s % 64) & 1)) {
				i++;
				continue;
			}
			uint64_t j = i;
			while (j < run->count && (bm[(slot + j) / 64] >> ((slot + j) % 64) & 1))
				j++;
			int rc = send_range(c, run->pfn + i, j - i);
			if (rc < 0)
				return rc;
			*sent += j - i;
			i = j;
		}
		slot += run->count;
	}
	return 0;
}

static uint64_t popcount(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

int save_guest(struct xsr_backend *be, int fd, const struct xsr_save_opts *o,
	       struct xsr_save_stats *st, char *err, size_t errlen)
{
	const struct xsr_backend_ops *ops = be->ops;
	struct xsr_domain_info info;
	struct xsr_vcpu_state *vs = NULL;
	uint64_t *bm = NULL;
	int paused = 0, dirty = 0, rc;
	uint64_t t0 = util_now_ns(), tp = 0;
	struct savectx c = {.be = be, .info = &info, .o = o, .err = err, .errlen = errlen};
	memset(st, 0, sizeof(*st));
	if ((rc = ops->describe(be, &info)) < 0) {
		snprintf(err, errlen, "describing the domain: %s", ops->error(be));
		return rc;
	}
	for (uint32_t r = 0; r < info.nr_runs; r++)
		c.total_slots += info.runs[r].count;
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = o->kind ? o->kind : XSR_KIND_SAVE, .layout = o->layout,
		.nr_vcpus = info.nr_vcpus, .nr_runs = info.nr_runs, .runs = info.runs,
		.hypervisor = info.hypervisor, .hypervisor_version = info.hypervisor_version,
		.compress = o->compress, .xen_pv = o->kind == XSR_KIND_MIGRATION ? NULL : info.xen_pv,
	};
	if ((rc = xsr_writer_open(&c.w, fd, &p, err, errlen)) < 0)
		return rc;
	c.chunk = xsr_writer_layout(c.w) == XSR_LAYOUT_SEEKABLE ? CHUNK_SEEKABLE : CHUNK;
	vs = malloc(sizeof(*vs));
	if (!vs) {
		rc = XSR_E_NOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (o->live && xsr_writer_layout(c.w) == XSR_LAYOUT_STREAM) {
		/* Seekable slots are rewritten by the final round; a stream record is not. */
		c.bounce = malloc((size_t)CHUNK * XSR_PAGE_SIZE);
		if (!c.bounce) {
			rc = XSR_E_NOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (o->live) {
		/* Pre-copy: send everything while the guest runs, then what it dirtied. */
		uint64_t words = (c.total_slots + 63) / 64 + 1;
		bm = calloc(words, 8);
		if (!bm) {
			rc = XSR_E_NOMEM;
			goto out;
		}
		if ((rc = ops->dirty_start(be)) < 0) {
			snprintf(err, errlen, "starting dirty tracking: %s", ops->error(be));
			goto out;
		}
		dirty = 1;
		if ((rc = send_all(&c)) < 0)
			goto out;
		st->rounds = 1;
		for (;;) {
			memset(bm, 0, words * 8);
			if ((rc = ops->dirty_fetch(be, bm, c.total_slots)) < 0) {
				snprintf(err, errlen, "reading the dirty log: %s", ops->error(be));
				goto out;
			}
			uint64_t n = popcount(bm, words), sent;
			/* Xen's policy: stop when few pages remain or after 5 rounds. */
			if (n < 50 || st->rounds >= 5)
				break;
			if ((rc = send_dirty(&c, bm, &sent)) < 0)
				goto out;
			st->rounds++;
		}
	}
	if ((rc = ops->pause(be)) < 0) {
		snprintf(err, errlen, "pausing the domain: %s", ops->error(be));
		goto out;
	}
	paused = 1;
	tp = util_now_ns();
	free(c.bounce); /* paused: pages hold still */
	c.bounce = NULL;
	if (o->live) {
		uint64_t sent;
		/* dirty_fetch ORs in: bm keeps the pages left from the last round. */
		if ((rc = ops->dirty_fetch(be, bm, c.total_slots)) < 0) {
			snprintf(err, errlen, "reading the dirty log: %s", ops->error(be));
			goto out;
		}
		if ((rc = send_dirty(&c, bm, &sent)) < 0)
			goto out;
		st->rounds++;
	} else {
		if ((rc = send_all(&c)) < 0)
			goto out;
	}
	for (uint32_t v = 0; v < info.nr_vcpus; v++) {
		memset(&vs->r, 0, sizeof(vs->r));
		if ((rc = ops->get_vcpu(be, v, vs)) < 0) {
			snprintf(err, errlen, "reading vCPU %u: %s", v, ops->error(be));
			goto out;
		}
		vs->r.vcpu_id = v;
		if ((rc = xsr_writer_set_vcpu(c.w, vs)) < 0) {
			snprintf(err, errlen, "%s", xsr_writer_error(c.w));
			goto out;
		}
	}
	if ((rc = ops->save_extra(be, c.w)) < 0) {
		snprintf(err, errlen, "saving domain context: %s", xsr_writer_error(c.w)[0] ? xsr_writer_error(c.w) : ops->error(be));
		goto out;
	}
	if ((rc = save_xenstore_end(be, c.w, err, errlen)) < 0)
		goto out;
	if (!o->leave_paused) {
		if ((rc = ops->resume(be)) < 0) {
			snprintf(err, errlen, "resuming the domain: %s", ops->error(be));
			goto out;
		}
		paused = 0;
	}
	st->pause_ns = util_now_ns() - tp;
	struct xsr_writer_stats ws = {0};
	rc = xsr_writer_close_stats(c.w, &ws, err, errlen);
	c.w = NULL;
	st->bytes = ws.bytes; /* the image's size: what --json reports as "bytes" */
	st->pages = ws.pages;
	st->zero_pages = ws.zero_pages;
out:
	if (dirty)
		ops->dirty_stop(be);
	if (paused && (rc < 0 || !o->leave_paused)) {
		/* A failed save must leave the guest running. */
		ops->resume(be);
	}
	if (rc < 0 && paused && !st->pause_ns)
		st->pause_ns = util_now_ns() - tp;
	xsr_writer_abort(c.w);
	free(c.bounce);
	free(vs);
	free(bm);
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}
