/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generic restore.  A seekable image is read run by run with large preads
 * straight into the backend's writable mapping, each page verified against
 * the index; a stream is fed through the streaming reader.  Either way the
 * backend sees create, load_extra*, pages, set_vcpu*, start.
 */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>

#include "../util/clock.h"
#include "restore.h"

#define CHUNK 256u

static bool writer_made(uint32_t code)
{
	return code == XSR_SEC_NOTES || code == XSR_SEC_PRODUCER || code == XSR_SEC_MEMMAP ||
	       code == XSR_SEC_INDEX || code == XSR_SEC_PAGES || code == XSR_SEC_STRTAB ||
	       code == XSR_SEC_INTEGRITY || code == XSR_SEC_END || code == XSR_SEC_VCPU;
}

static void set_hv(struct xsr_domain_info *info, const struct xsr_producer *pr)
{
	snprintf(info->hypervisor, sizeof(info->hypervisor), "%.31s", pr->hypervisor);
	snprintf(info->hypervisor_version, sizeof(info->hypervisor_version), "%.63s", pr->hypervisor_version);
}

/*
 * The @len octets at @off (slots indexed as zero, from pfn @pfn) read as
 * zero: holes cost one lseek(SEEK_DATA), data is read and compared.
 */
static int zero_slots(int fd, off_t off, off_t len, uint64_t pfn, char *err, size_t errlen)
{
	const off_t start = off, end = off + len;
	uint8_t *buf = NULL;
	int rc = 0;
	while (off < end) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* a hole to the end of the file */
		if (d < 0)
			d = off; /* no SEEK_DATA on this file system: read it */
		if (d >= end)
			break;
		if (!buf && !(buf = malloc(64 * 1024))) {
			rc = XSR_E_NOMEM;
			break;
		}
		size_t n = end - d < 64 * 1024 ? (size_t)(end - d) : 64 * 1024;
		int e = xsr_read_at(fd, buf, n, (uint64_t)d);
		if (e < 0) {
			snprintf(err, errlen, "reading the zero page slots at pfn 0x%llx: %s", (unsigned long long)pfn,
				 strerror(-e));
			rc = XSR_E_IO;
			break;
		}
		ssize_t got = (ssize_t)n;
		/* memcmp against zeros (word-wide), then find the octet only on a mismatch */
		static const uint8_t zeros[64 * 1024];
		for (ssize_t q = memcmp(buf, zeros, (size_t)got) ? 0 : got; q < got && !rc; q++)
			if (buf[q]) {
				snprintf(err, errlen, "page data of pfn 0x%llx: indexed as zero but holds data (octet at 0x%llx)",
					 (unsigned long long)(pfn + (uint64_t)(d + q - start) / XSR_PAGE_SIZE),
					 (unsigned long long)(d + q));
				rc = XSR_E_CHECKSUM;
			}
		off = d + got;
	}
	free(buf);
	return rc;
}

static int from_image(struct xsr_backend *be, int fd, const struct xsr_restore_opts *o,
		      struct xsr_restore_stats *st, char *err, size_t errlen)
{
	const struct xsr_backend_ops *ops = be->ops;
	struct xsr_image *img;
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	struct xsr_domain_info info;
	struct xsr_section_info si;
	struct xsr_index_entry ent[CHUNK];
	int rc;
	if (!vs)
		return XSR_E_NOMEM;
	if ((rc = xsr_image_open(&img, fd, err, errlen)) < 0) {
		free(vs);
		return rc;
	}
	const struct xsr_file_header *fh = xsr_image_header(img);
	memset(&info, 0, sizeof(info));
	info.nr_vcpus = fh->nr_vcpus;
	info.nr_runs = xsr_image_nruns(img);
	info.runs = xsr_image_runs(img);
	if (fh->flags & XSR_FF_PAGING_VIEW) {
		snprintf(err, errlen, "a paging-view core cannot be restored");
		rc = XSR_E_UNSUPPORTED;
		goto out;
	}
	int pi = xsr_image_find(img, XSR_SEC_PRODUCER, UINT32_MAX, &si);
	void *body;
	uint64_t len;
	if ((rc = xsr_image_read_section(img, (uint32_t)pi, &body, &len)) < 0)
		goto img_err;
	set_hv(&info, body);
	free(body);
	if ((rc = ops->create(be, &info)) < 0) {
		snprintf(err, errlen, "creating the domain: %s", ops->error(be));
		goto out;
	}
	for (uint32_t i = 1; i < xsr_image_nsections(img); i++) {
		xsr_image_section(img, i, &si);
		if (si.code == UINT32_MAX || writer_made(si.code))
			continue;
		if ((rc = xsr_image_read_section(img, i, &body, &len)) < 0)
			goto img_err;
		rc = ops->load_extra(be, si.code, si.info, body, len);
		free(body);
		if (rc < 0) {
			snprintf(err, errlen, "loading section %s: %s", si.name, ops->error(be));
			goto out;
		}
	}
	/*
	 * The index is checked once (16 octets a page), so its zero flags can be
	 * trusted: zero pages are neither read nor written (a created domain's
	 * memory is zero), and each run of data pages is one pread straight into
	 * guest memory, verified page by page.
	 */
	if ((rc = xsr_image_check_index(img)) < 0)
		goto img_err;
	uint64_t total = 0, done = 0;
	for (uint32_t r = 0; r < info.nr_runs; r++)
		total += info.runs[r].count;
	for (uint32_t r = 0; r < info.nr_runs; r++) {
		for (uint64_t i = 0; i < info.runs[r].count; i += CHUNK) {
			uint32_t n = (uint32_t)(info.runs[r].count - i < CHUNK ? info.runs[r].count - i : CHUNK);
			if ((rc = xsr_image_run_index(img, r, i, n, ent)) < 0)
				goto img_err;
			for (uint32_t k = 0; k < n;) {
				if (!(ent[k].flags & XSR_IDX_DATA)) {
					/* Slots indexed as zero are not read into the guest, but
					 * they must be zero (verify reports them otherwise).  The
					 * writer leaves holes there, which SEEK_DATA skips at no
					 * cost; anything else is read and looked at. */
					uint32_t z = 1;
					while (k + z < n && !(ent[k + z].flags & XSR_IDX_DATA))
						z++;
					uint64_t pfn = info.runs[r].pfn + i + k;
					off_t a = (off_t)(xsr_image_run_offset(img, r) + (i + k) * XSR_PAGE_SIZE);
					if ((rc = zero_slots(fd, a, (off_t)z * XSR_PAGE_SIZE, pfn, err, errlen)) < 0)
						goto out;
					st->zero_pages += z;
					k += z;
					continue;
				}
				uint32_t m = 1;
				while (k + m < n && (ent[k + m].flags & XSR_IDX_DATA))
					m++;
				uint64_t pfn = info.runs[r].pfn + i + k;
				void *addr;
				if ((rc = ops->map(be, pfn, m, 1, &addr)) < 0) {
					snprintf(err, errlen, "mapping guest pfn 0x%llx+%u: %s", (unsigned long long)pfn, m,
						 ops->error(be));
					goto out;
				}
				size_t len = (size_t)m * XSR_PAGE_SIZE;
				/* the library's read: a fault-injection point (XSR_FAULT) */
				int e = xsr_read_at(fd, addr, len, xsr_image_run_offset(img, r) + (i + k) * XSR_PAGE_SIZE);
				if (e < 0) {
					snprintf(err, errlen, "reading pages at pfn 0x%llx: %s", (unsigned long long)pfn, strerror(-e));
					ops->unmap(be, addr, pfn, m);
					rc = XSR_E_IO;
					goto out;
				}
				for (uint32_t q = 0; q < m && rc == 0; q++)
					if (xsr_hash((const uint8_t *)addr + (size_t)q * XSR_PAGE_SIZE, XSR_PAGE_SIZE) != ent[k + q].hash) {
						snprintf(err, errlen, "page data of pfn 0x%llx: checksum mismatch",
							 (unsigned long long)(pfn + q));
						rc = XSR_E_CHECKSUM;
					}
				ops->unmap(be, addr, pfn, m);
				if (rc < 0)
					goto out;
				st->pages += m;
				st->bytes += len;
				k += m;
			}
			done += n;
			if (o->progress)
				o->progress(o->progress_ctx, done, total);
		}
	}
	for (uint32_t v = 0; v < info.nr_vcpus; v++) {
		if ((rc = xsr_image_vcpu(img, v, vs)) < 0)
			goto img_err;
		if ((rc = ops->set_vcpu(be, vs)) < 0) {
			snprintf(err, errlen, "setting vCPU %u: %s", v, ops->error(be));
			goto out;
		}
	}
	if (!o->no_start && (rc = ops->start(be)) < 0) {
		snprintf(err, errlen, "starting the domain: %s", ops->error(be));
		goto out;
	}
	goto out;
img_err:
	snprintf(err, errlen, "%s", xsr_image_error(img));
out:
	xsr_image_close(img);
	free(vs);
	return rc;
}

struct rs {
	struct xsr_backend *be;
	const struct xsr_file_header *fh;
	struct xsr_domain_info info;
	struct xsr_producer pr;
	struct xsr_memrun *runs;
	struct xsr_vcpu_state *vs;
	struct xsr_restore_stats *st;
	const struct xsr_restore_opts *o;
	bool created;
	char *err;
	size_t errlen;
};

static int rs_header(void *ctx, const struct xsr_file_header *h)
{
	((struct rs *)ctx)->fh = h;
	return 0;
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
		c->runs = malloc(rh->sh_size + 1);
		if (!c->runs)
			return XSR_E_NOMEM;
		memcpy(c->runs, body, rh->sh_size);
		c->info.nr_vcpus = c->fh->nr_vcpus;
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
		const char *why;
		if ((rc = xsr_vcpu_decode(body, rh->sh_size, c->vs, &why)) < 0 || c->vs->r.vcpu_id != rh->sh_info) {
			snprintf(c->err, c->errlen, "vCPU %u record: %s", rh->sh_info, rc < 0 ? why : "wrong vCPU id");
			return rc < 0 ? rc : XSR_E_FORMAT;
		}
		if ((rc = ops->set_vcpu(c->be, c->vs)) < 0)
			snprintf(c->err, c->errlen, "setting vCPU %u: %s", rh->sh_info, ops->error(c->be));
		return rc;
	}
	if (writer_made(code))
		return 0;
	if ((rc = ops->load_extra(c->be, code, rh->sh_info, body, rh->sh_size)) < 0)
		snprintf(c->err, c->errlen, "loading a %s record: %s", xsr_section_name(rh->sh_type), ops->error(c->be));
	return rc;
}

static int rs_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct rs *c = ctx;
	const struct xsr_backend_ops *ops = c->be->ops;
	uint32_t i = 0;
	while (i < n) {
		/* Group consecutive pfns into one mapping. */
		uint32_t j = i + 1;
		while (j < n && (pfns[j] & XSR_PFN_MASK) == (pfns[j - 1] & XSR_PFN_MASK) + 1)
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
	/* The header's page count is the total; a later copy of a page may count twice (clamped). */
	if (c->o->progress && c->fh)
		c->o->progress(c->o->progress_ctx, c->st->pages + c->st->zero_pages, c->fh->nr_pages);
	return 0;
}

static int from_stream(struct xsr_backend *be, int fd, const void *pre, size_t plen,
		       const struct xsr_restore_opts *o, struct xsr_restore_stats *st, char *err, size_t errlen)
{
	struct rs c = {.be = be, .st = st, .o = o, .err = err, .errlen = errlen};
	const struct xsr_stream_ops sops = {.header = rs_header, .section = rs_section, .pages = rs_pages};
	int rc;
	if (!(c.vs = malloc(sizeof(*c.vs)))) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	if ((rc = xsr_stream_read_all(fd, pre, plen, &sops, &c, err, errlen)) < 0)
		goto out;
	if (!o->no_start && (rc = be->ops->start(be)) < 0)
		snprintf(err, errlen, "starting the domain: %s", be->ops->error(be));
out:
	free(c.vs);
	free(c.runs);
	return rc;
}

int restore_guest(struct xsr_backend *be, int fd, const struct xsr_restore_opts *o,
		  struct xsr_restore_stats *st, char *err, size_t errlen)
{
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	uint64_t t0 = util_now_ns();
	int rc;
	memset(st, 0, sizeof(*st));
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= XSR_HEADER_END &&
	    pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr) && hdr[XSR_EHDR_SIZE + 12] == XSR_LAYOUT_SEEKABLE) {
		rc = from_image(be, fd, o, st, err, errlen);
	} else {
		ssize_t r = 0, n;
		while (r < (ssize_t)sizeof(hdr) && (n = read(fd, hdr + r, sizeof(hdr) - (size_t)r)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				snprintf(err, errlen, "reading the image: %s", strerror(errno));
				return XSR_E_IO;
			}
			r += n;
		}
		rc = from_stream(be, fd, hdr, (size_t)r, o, st, err, errlen);
	}
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}
