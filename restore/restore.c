/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generic restore: one set of callbacks for both layouts, driven by the
 * library's replay (xsr_replay_fd).  Runs of data pages are placed straight
 * into the backend's writable mapping: from a seekable image with one read
 * each, verified page by page against the index; from a stream copied out
 * of the reader's buffer.  Either way the backend sees create,
 * load_extra*, pages, set_vcpu*, start.
 */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>

#include "../util/clock.h"
#include "restore.h"

static void set_hv(struct xsr_domain_info *info, const struct xsr_producer *pr)
{
	snprintf(info->hypervisor, sizeof(info->hypervisor), "%.31s", pr->hypervisor);
	snprintf(info->hypervisor_version, sizeof(info->hypervisor_version), "%.63s", pr->hypervisor_version);
}

struct rs {
	struct xsr_backend *be;
	struct xsr_file_header fh;
	bool have_fh;
	bool seekable; /* each pfn comes once, into memory create() made zero */
	struct xsr_domain_info info;
	struct xsr_producer pr;
	struct xsr_memrun *runs;
	struct xsr_vcpu_state **vs; /* nr_vcpus slots, each made when its record arrives; set after the pages */
	struct xsr_restore_stats *st;
	const struct xsr_restore_opts *o;
	uint64_t shown; /* pages done at the last progress report */
	bool created;
	char *err;
	size_t errlen;
};

static int rs_header(void *ctx, const struct xsr_file_header *h)
{
	struct rs *c = ctx;
	if (h->flags & XSR_FF_PAGING_VIEW) {
		snprintf(c->err, c->errlen, "a paging-view core cannot be restored");
		return XSR_E_UNSUPPORTED;
	}
	c->fh = *h;
	c->have_fh = true;
	c->seekable = h->layout == XSR_LAYOUT_SEEKABLE;
	return 0;
}

static void progress(struct rs *c, bool always)
{
	uint64_t done = c->st->pages + c->st->zero_pages;
	/* The header's page count is the total; a later copy of a page may count twice (clamped). */
	if (c->o->progress && c->have_fh && (always || done - c->shown >= 256)) {
		c->o->progress(c->o->progress_ctx, done, c->fh.nr_pages);
		c->shown = done;
	}
}

static int rs_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct rs *c = ctx;
	const struct xsr_backend_ops *ops = c->be->ops;
	uint32_t code = rh->sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh->sh_type & XSR_SHT_CODE_MASK;
	int rc;
	if (code == XSR_SEC_PRODUCER) {
		memcpy(&c->pr, body, sizeof(c->pr));
		set_hv(&c->info, &c->pr);
		return 0;
	}
	if (code == XSR_SEC_MEMMAP) {
		if (c->created)
			return 0;
		c->runs = malloc(rh->sh_size + 1);
		/* Pointers only: a header may claim 4096 vCPUs (34 KiB of state each) and send one. */
		c->vs = calloc((size_t)c->fh.nr_vcpus + 1, sizeof(*c->vs));
		if (!c->runs || !c->vs)
			return XSR_E_NOMEM;
		memcpy(c->runs, body, rh->sh_size);
		c->info.nr_vcpus = c->fh.nr_vcpus;
		c->info.nr_runs = (uint32_t)(rh->sh_size / sizeof(struct xsr_memrun));
		c->info.runs = c->runs;
		if ((rc = ops->create(c->be, &c->info)) < 0) {
			snprintf(c->err, c->errlen, "creating the domain: %s", ops->error(c->be));
			return rc;
		}
		c->created = true;
		return 0;
	}
	if (code == XSR_SEC_VCPU) {
		/* Kept, and set once the memory is in (end), as a seekable restore always did. */
		const char *why;
		uint32_t id = rh->sh_info;
		if (!c->created || id >= c->fh.nr_vcpus) {
			snprintf(c->err, c->errlen, "vCPU %u record: %s", id, c->created ? "no such vCPU" : "before the memory map");
			return XSR_E_FORMAT;
		}
		if (!c->vs[id] && !(c->vs[id] = malloc(sizeof(*c->vs[id]))))
			return XSR_E_NOMEM;
		if ((rc = xsr_vcpu_decode(body, rh->sh_size, c->vs[id], &why)) < 0 || c->vs[id]->r.vcpu_id != id) {
			snprintf(c->err, c->errlen, "vCPU %u record: %s", id, rc < 0 ? why : "wrong vCPU id");
			return rc < 0 ? rc : XSR_E_FORMAT;
		}
		return 0;
	}
	if (!backend_extra_section(code))
		return 0;
	if ((rc = ops->load_extra(c->be, code, rh->sh_info, body, rh->sh_size)) < 0) {
		const char *nm = xsr_section_elf_name(rh->sh_type);
		if (c->seekable)
			snprintf(c->err, c->errlen, "loading section %s: %s", nm ? nm : "?", ops->error(c->be));
		else
			snprintf(c->err, c->errlen, "loading a %s record: %s", xsr_section_name(rh->sh_type), ops->error(c->be));
	}
	return rc;
}

/* Runs of data pages: straight into guest memory. */
static int rs_place(void *ctx, uint64_t pfn, uint32_t n, void **dst)
{
	struct rs *c = ctx;
	const struct xsr_backend_ops *ops = c->be->ops;
	int rc = ops->map(c->be, pfn, n, 1, dst);
	if (rc < 0)
		snprintf(c->err, c->errlen, "mapping guest pfn 0x%llx+%u: %s", (unsigned long long)pfn, n, ops->error(c->be));
	return rc;
}

static int rs_placed(void *ctx, uint64_t pfn, uint32_t n, void *dst, int rc)
{
	struct rs *c = ctx;
	c->be->ops->unmap(c->be, dst, pfn, n);
	if (rc < 0)
		return rc;
	c->st->pages += n;
	c->st->bytes += (uint64_t)n * XSR_PAGE_SIZE;
	progress(c, false);
	return 0;
}

/*
 * Zero pages (and any data the replay did not place).  A seekable image's
 * zero pages are neither read nor written: each pfn comes once, and a
 * created domain's memory is zero.  A stream's may replace an earlier copy.
 */
static int rs_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct rs *c = ctx;
	const struct xsr_backend_ops *ops = c->be->ops;
	uint32_t i = 0;
	while (i < n) {
		if (c->seekable && (pfns[i] & XSR_PFN_ZERO)) {
			c->st->zero_pages++;
			i++;
			continue;
		}
		/* Group consecutive pfns into one mapping. */
		uint32_t j = i + 1;
		while (j < n && (pfns[j] & XSR_PFN_MASK) == (pfns[j - 1] & XSR_PFN_MASK) + 1 &&
		       !(c->seekable && (pfns[j] & XSR_PFN_ZERO)))
			j++;
		uint64_t pfn = pfns[i] & XSR_PFN_MASK;
		void *addr;
		int rc = ops->map(c->be, pfn, j - i, 1, &addr);
		if (rc < 0) {
			snprintf(c->err, c->errlen, "mapping guest pfn 0x%llx: %s", (unsigned long long)pfn, ops->error(c->be));
			return rc;
		}
		for (uint32_t k = i; k < j; k++) {
			uint8_t *dst = (uint8_t *)addr + (size_t)(k - i) * XSR_PAGE_SIZE;
			if (pfns[k] & XSR_PFN_ZERO) {
				memset(dst, 0, XSR_PAGE_SIZE);
				c->st->zero_pages++;
			} else {
				memcpy(dst, data, XSR_PAGE_SIZE);
				data += XSR_PAGE_SIZE;
				c->st->pages++;
			}
		}
		ops->unmap(c->be, addr, pfn, j - i);
		c->st->bytes += (uint64_t)(j - i) * XSR_PAGE_SIZE;
		i = j;
	}
	progress(c, true);
	return 0;
}

static int rs_end(void *ctx, const struct xsr_end *e)
{
	struct rs *c = ctx;
	const struct xsr_backend_ops *ops = c->be->ops;
	int rc;
	progress(c, true);
	for (uint32_t v = 0; v < c->info.nr_vcpus; v++) {
		if (!c->vs[v])
			continue;
		if ((rc = ops->set_vcpu(c->be, c->vs[v])) < 0) {
			snprintf(c->err, c->errlen, "setting vCPU %u: %s", v, ops->error(c->be));
			return rc;
		}
	}
	return 0;
}

int restore_guest(struct xsr_backend *be, int fd, const struct xsr_restore_opts *o,
		  struct xsr_restore_stats *st, char *err, size_t errlen)
{
	struct rs c = {.be = be, .st = st, .o = o, .err = err, .errlen = errlen};
	const struct xsr_replay_ops ops = {
		.size = sizeof(ops),
		.stream = {.header = rs_header, .section = rs_section, .pages = rs_pages, .end = rs_end},
		.place = rs_place,
		.placed = rs_placed,
	};
	uint64_t t0 = util_now_ns();
	int rc;
	memset(st, 0, sizeof(*st));
	if ((rc = xsr_replay_fd(fd, &ops, &c, err, errlen)) == 0 && !c.created) {
		snprintf(err, errlen, "the image has no memory map");
		rc = XSR_E_FORMAT;
	}
	if (rc == 0 && !o->no_start && (rc = be->ops->start(be)) < 0)
		snprintf(err, errlen, "starting the domain: %s", be->ops->error(be));
	free(c.runs);
	for (uint32_t v = 0; c.vs && v < c.fh.nr_vcpus; v++)
		free(c.vs[v]);
	free(c.vs);
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}
