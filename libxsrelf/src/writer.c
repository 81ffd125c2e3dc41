/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one writer: seekable ELF core or stream, chosen by the sink.
 *
 * Seekable layout (offsets fixed at open, so pages can be rewritten in place):
 *   0        Elf64_Ehdr, xsr_file_header        (written last, at close)
 *   128      Elf64_Phdr[1 + loads]              (written at close)
 *            record NOTES   (body = NT_PRSTATUS per vCPU, filled at close)
 *            record PRODUCER, record MEMMAP     (written at open)
 *            record INDEX   (entries written with the pages)
 *   page     page slots, run after run          (zero pages are holes)
 *   tail     appended records (config, vcpu, ...), STRTAB, INTEGRITY
 *            Elf64_Shdr table
 *
 * A Xen PV guest laid out for crash (XSR_FF_XEN_MACHINE_PADDR): NOTES gets
 * the room of its largest possible body (crash reads notes only before the
 * first page), because the VMCOREINFO text may be found among the pages put;
 * the unused end of that room is zero fill.  The p2m tree record opens the
 * tail (its pages page aligned); VMCOREINFO is appended at close.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"

struct wsec {
	struct xsr_record_header rh; /* as in the shdr table, sh_name filled at close */
	uint64_t trailer;
	bool is_record; /* false for .xsr.pages */
};

struct xsr_writer {
	struct xsr_sink *sink; /* the caller's, or own_sink (xsr_writer_open) */
	struct xsr_sink own_sink;
	int layout;
	int failed;
	uint16_t machine;
	uint8_t kind;
	uint8_t compress;
	uint32_t flags;
	uint32_t nr_vcpus;
	uint32_t nr_runs;
	struct xsr_memrun *runs;
	uint64_t *slot_base;
	uint64_t nr_pages;
	struct xsr_producer producer;
	uint8_t *notes;    /* nr_vcpus * XSR_NOTE_SIZE, then the VMCOREINFO note */
	uint64_t notes_len;
	uint8_t *vcpu_set; /* nr_vcpus flags */
	uint32_t nr_vcpu_set;
	struct xsr_writer_stats stats;
	uint64_t image_size; /* set by a successful close: the file's size, or the stream's length */
	uint64_t chain;    /* stream: chain over trailers written so far */
	/* seekable */
	struct xsr_vload *loads;
	uint32_t nr_loads;
	uint64_t notes_rec, index_rec; /* record header offsets */
	uint64_t pages_off, tail;
	struct xsr_bits databits; /* slots currently holding data */
	/* seekable, Xen PV guest laid out for crash */
	struct xsr_xen_layout *xen;
	bool kdump_align; /* PT_LOADs get p_align 0 (kaslr_vmcoreinfo) */
	uint64_t tree_body;  /* file offset of the tree section's body */
	uint8_t *qemu;       /* nr_vcpus QEMU notes */
	void *vmci;          /* VMCOREINFO: given, or found at close */
	uint32_t vmci_len;
	uint64_t vmci_pfn[8]; /* pages put that start with "OSRELEASE=" */
	uint32_t nr_vmci_pfn;
	struct wsec *secs;
	uint32_t nsecs, capsecs;
	/* scratch */
	uint8_t *cbuf, *rawbuf;
	size_t cbuf_len;
	struct xsr_index_entry *ibuf;
	/*
	 * Page checks: the zero test and XXH3 of each page, on this thread,
	 * in the pass just before the write, from the L2 cache of a 1 MiB batch.
	 * A hashing thread (until 2026-12-03) saved nothing: with the AVX2 hash
	 * a batch hashes in less time than a wake-up costs on a VM (perf: the
	 * futex wakes were 14 % of a seekable save's samples; medians of 7
	 * saves of 256 MiB to tmpfs 0.142 s inline against 0.165 s threaded).
	 */
	bool *zero;
	uint64_t *hash;
	int64_t *slots;
	char err[XSR_ERRLEN];
};

static int fail(struct xsr_writer *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct xsr_writer *w, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	if (rc == XSR_E_IO)
		w->failed = 1; /* the output is now in an unknown state */
	return rc;
}

static int add_record(struct xsr_writer *w, uint32_t code, int optional, uint32_t info, uint64_t entsize,
		      const struct iovec *iov, int iovcnt);

const char *xsr_writer_error(const struct xsr_writer *w)
{
	return w ? w->err : "no writer";
}

int xsr_writer_layout(const struct xsr_writer *w)
{
	return w->layout;
}

void xsr_writer_stats(const struct xsr_writer *w, struct xsr_writer_stats *st)
{
	*st = w->stats;
}

static uint64_t chain_next(uint64_t chain, uint64_t trailer)
{
	return XXH3_64bits_withSeed(&trailer, sizeof(trailer), chain);
}

static void make_rh(struct xsr_record_header *rh, uint32_t code, bool optional, uint32_t info,
		    uint64_t entsize, uint64_t size, uint64_t off)
{
	memset(rh, 0, sizeof(*rh));
	rh->sh_type = code == XSR_SEC_NOTES ? SHT_NOTE : code == XSR_SEC_STRTAB ? SHT_STRTAB : XSR_SHT(code, optional);
	rh->sh_offset = off;
	rh->sh_size = size;
	rh->sh_info = info;
	rh->sh_addralign = xsr_sec_rec_align(&xsr_sec_table[code]);
	rh->sh_entsize = entsize;
}

static struct wsec *add_wsec(struct xsr_writer *w)
{
	if (w->nsecs == w->capsecs) {
		/* Room for section 0 and the integrity section the table adds at close. */
		uint32_t cap = w->capsecs ? w->capsecs * 2 : 16;
		if (cap > XSR_MAX_SECTIONS - 2)
			cap = XSR_MAX_SECTIONS - 2;
		if (cap <= w->nsecs)
			return NULL;
		struct wsec *n = realloc(w->secs, cap * sizeof(*n));
		if (!n)
			return NULL;
		w->secs = n;
		w->capsecs = cap;
	}
	return &w->secs[w->nsecs++];
}

/*
 * Write one record: at @at (seekable) or appended to the stream.  @body_off
 * receives the body offset.
 */
static int emit_record(struct xsr_writer *w, uint32_t code, bool optional, uint32_t info,
		       uint64_t entsize, const struct iovec *body, int n, uint64_t at,
		       struct wsec **out)
{
	static uint8_t zeros[8];
	uint64_t len = 0;
	for (int i = 0; i < n; i++)
		len += body[i].iov_len;
	struct xsr_record_header rh;
	bool seek = w->layout == XSR_LAYOUT_SEEKABLE;
	make_rh(&rh, code, optional, info, entsize, len, seek ? at + sizeof(rh) : XSR_OFF_STREAMED);
	uint64_t trailer = xsr_record_hash(&rh, body, n, len);

	struct iovec stackv[8], *iov = stackv;
	if (n + 3 > (int)ARRAY_SIZE(stackv)) {
		iov = malloc((size_t)(n + 3) * sizeof(*iov));
		if (!iov)
			return fail(w, XSR_E_NOMEM, "out of memory for a %s record", xsr_section_name(rh.sh_type));
	}
	int c = 0;
	iov[c++] = (struct iovec){&rh, sizeof(rh)};
	for (int i = 0; i < n; i++)
		iov[c++] = body[i];
	iov[c++] = (struct iovec){zeros, ALIGN8(len) - len};
	iov[c++] = (struct iovec){&trailer, sizeof(trailer)};
	int rc = xsr_sink_writev(w->sink, iov, c, at, seek);
	if (iov != stackv)
		free(iov);
	if (rc < 0)
		return fail(w, XSR_E_IO, "writing %s record (%llu octets)%s: %s", xsr_section_name(rh.sh_type),
			    (unsigned long long)len, seek ? "" : " to the stream", strerror(-rc));
	w->stats.bytes += sizeof(rh) + ALIGN8(len) + sizeof(trailer);
	w->stats.records++;
	if (seek) {
		struct wsec *s = add_wsec(w);
		if (!s)
			return fail(w, XSR_E_LIMIT, "more than %u sections", XSR_MAX_SECTIONS);
		s->rh = rh;
		s->trailer = trailer;
		s->is_record = true;
		if (out)
			*out = s;
	} else {
		if (code != XSR_SEC_END)
			w->chain = chain_next(w->chain, trailer);
	}
	return 0;
}

static uint64_t record_span(uint64_t body_len)
{
	return sizeof(struct xsr_record_header) + ALIGN8(body_len) + sizeof(struct xsr_record_trailer);
}

static void fill_producer(struct xsr_writer *w, const struct xsr_writer_params *p)
{
	struct xsr_producer *pr = &w->producer;
	struct utsname u;
	if (p->producer) {
		*pr = *p->producer;
		return;
	}
	memset(pr, 0, sizeof(*pr));
	pr->format_major = XSR_VERSION_MAJOR;
	pr->format_minor = XSR_VERSION_MINOR;
	pr->producer_version = XSR_PRODUCER_VERSION;
	strncpy(pr->producer, "xsrelf", sizeof(pr->producer) - 1);
	strncpy(pr->producer_version_str, XSR_PRODUCER_VERSION_STR, sizeof(pr->producer_version_str) - 1);
	if (p->hypervisor)
		strncpy(pr->hypervisor, p->hypervisor, sizeof(pr->hypervisor) - 1);
	if (p->hypervisor_version)
		strncpy(pr->hypervisor_version, p->hypervisor_version, sizeof(pr->hypervisor_version) - 1);
	if (uname(&u) == 0)
		snprintf(pr->host, sizeof(pr->host), "%.63s", u.nodename);
}

static int write_header(struct xsr_writer *w, uint64_t phoff, uint16_t phnum, uint64_t shoff,
			uint16_t shnum, uint16_t shstrndx)
{
	uint8_t buf[XSR_HEADER_END];
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	xsr_make_ehdr(&eh, w->machine, w->layout);
	if (w->layout == XSR_LAYOUT_SEEKABLE) {
		eh.e_phoff = phoff;
		eh.e_phnum = phnum;
		eh.e_shoff = shoff;
		eh.e_shnum = shnum;
		eh.e_shstrndx = shstrndx;
	}
	memset(&fh, 0, sizeof(fh));
	memcpy(fh.magic, XSR_MAGIC, XSR_MAGIC_LEN);
	fh.version_major = XSR_VERSION_MAJOR;
	fh.version_minor = XSR_VERSION_MINOR;
	fh.layout = (uint8_t)w->layout;
	fh.kind = w->kind;
	fh.page_shift = XSR_PAGE_SHIFT;
	fh.flags = w->flags;
	fh.nr_vcpus = w->nr_vcpus;
	fh.sentinel = XSR_OFF_STREAMED;
	fh.nr_pages = w->nr_pages;
	fh.producer_version = w->producer.producer_version;
	fh.checksum = xsr_header_checksum(&eh, &fh);
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), &fh, sizeof(fh));
	struct iovec iov = {buf, sizeof(buf)};
	int rc = xsr_sink_writev(w->sink, &iov, 1, 0, w->layout == XSR_LAYOUT_SEEKABLE);
	if (rc < 0)
		return fail(w, XSR_E_IO, "writing the file header: %s", strerror(-rc));
	if (w->layout == XSR_LAYOUT_STREAM)
		w->stats.bytes += sizeof(buf);
	return 0;
}

static int check_params(const struct xsr_writer_params *p, char *err, size_t errlen)
{
	uint64_t total;
	if (p->machine != EM_X86_64) {
		xsr_fmt(err, errlen, "machine %u not supported (only EM_X86_64)", p->machine);
		return XSR_E_UNSUPPORTED;
	}
	if (p->kind < XSR_KIND_SAVE || p->kind > XSR_KIND_MIGRATION) {
		xsr_fmt(err, errlen, "bad image kind %u", p->kind);
		return XSR_E_INVAL;
	}
	if (p->nr_vcpus == 0 || p->nr_vcpus > XSR_MAX_VCPUS) {
		xsr_fmt(err, errlen, "%u vCPUs: must be 1..%u", p->nr_vcpus, XSR_MAX_VCPUS);
		return XSR_E_LIMIT;
	}
	if (p->compress > XSR_COMPRESS_LZ4) {
		xsr_fmt(err, errlen, "unknown compression %u", p->compress);
		return XSR_E_INVAL;
	}
	if (p->flags & ~XSR_FF_KNOWN) {
		xsr_fmt(err, errlen, "unknown flags 0x%x", p->flags);
		return XSR_E_INVAL;
	}
	if (p->nr_runs && !p->runs)
		return XSR_E_INVAL;
	if (p->vmcoreinfo && (p->vmcoreinfo_len == 0 || p->vmcoreinfo_len > XSR_MAX_VMCOREINFO)) {
		xsr_fmt(err, errlen, "VMCOREINFO of %u octets: must be 1..%u", p->vmcoreinfo_len, XSR_MAX_VMCOREINFO);
		return XSR_E_LIMIT;
	}
	return xsr_memmap_check(p->runs, p->nr_runs, &total, err, errlen);
}

/*
 * Xen PV: the largest NOTES body the image can get.  A VMCOREINFO found in
 * guest memory is shorter than a page; a given one counts with at least that
 * room too, so that a conversion, which passes the found text as given, lays
 * the file out the same way.
 */
static uint64_t xen_notes_room(const struct xsr_writer_params *p)
{
	uint64_t v = p->vmcoreinfo && p->vmcoreinfo_len > XSR_PAGE_SIZE - 1 ? p->vmcoreinfo_len : XSR_PAGE_SIZE - 1;
	return (uint64_t)p->nr_vcpus * (XSR_NOTE_SIZE + XSR_QEMU_NOTE_SIZE) + xsr_vmci_note_size(v) + XSR_XEN_NOTE_SIZE;
}

static int check_vloads(struct xsr_writer *w)
{
	if (w->nr_loads > XSR_MAX_RUNS)
		return fail(w, XSR_E_LIMIT, "%u paging-view loads, limit %u", w->nr_loads, XSR_MAX_RUNS);
	for (uint32_t i = 0; i < w->nr_loads; i++) {
		const struct xsr_vload *l = &w->loads[i];
		uint64_t pfn = l->paddr >> XSR_PAGE_SHIFT, n = l->len >> XSR_PAGE_SHIFT;
		int64_t s0 = xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, pfn);
		int64_t s1 = n ? xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, pfn + n - 1) : -1;
		if ((l->vaddr | l->paddr | l->len) & (XSR_PAGE_SIZE - 1) || !n || s0 < 0 || s1 != s0 + (int64_t)n - 1)
			return fail(w, XSR_E_RANGE, "paging-view load %u (vaddr 0x%llx paddr 0x%llx len 0x%llx) is not page aligned or not inside one run",
				    i, (unsigned long long)l->vaddr, (unsigned long long)l->paddr, (unsigned long long)l->len);
	}
	return 0;
}

/*
 * VMCOREINFO of a Linux kernel that may be relocated (x86-64 writes a
 * KERNELOFFSET line, 0 without KASLR): crash 8.0 takes that offset from
 * VMCOREINFO by itself only in a core it classes as kdump, which for an
 * ELF core means a first PT_LOAD with p_align 0; with 4096 it is a
 * "netdump" and needs --kaslr auto.  Such images get p_align 0 (every
 * reader ignores p_align; docs/xsrelf-format.md, Program headers).
 */
static bool kaslr_vmcoreinfo(const uint8_t *v, uint32_t len)
{
	static const char key[] = "KERNELOFFSET=";
	for (uint32_t i = 0; i + sizeof(key) - 1 <= len; i++)
		if ((i == 0 || v[i - 1] == '\n') && !memcmp(v + i, key, sizeof(key) - 1))
			return true;
	return false;
}

/* The writer's state from the parameters (checked): buffers, runs, notes.  NULL: out of memory. */
static struct xsr_writer *writer_new(struct xsr_sink *snk, int layout, const struct xsr_writer_params *p)
{
	struct xsr_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->sink = snk;
	w->layout = layout;
	w->machine = p->machine;
	w->kind = p->kind;
	w->flags = p->flags;
	w->compress = p->compress;
	w->nr_vcpus = p->nr_vcpus;
	w->nr_runs = p->nr_runs;
	fill_producer(w, p);
	w->runs = malloc((p->nr_runs + 1) * sizeof(*w->runs));
	w->slot_base = malloc((p->nr_runs + 1) * sizeof(*w->slot_base));
	w->notes_len = (uint64_t)p->nr_vcpus * XSR_NOTE_SIZE + (p->vmcoreinfo ? xsr_vmci_note_size(p->vmcoreinfo_len) : 0);
	w->notes = calloc(1, w->notes_len);
	w->vcpu_set = calloc(p->nr_vcpus, 1);
	w->ibuf = malloc(XSR_MAX_BATCH * sizeof(*w->ibuf));
	w->zero = malloc(XSR_MAX_BATCH * sizeof(*w->zero));
	w->hash = malloc(XSR_MAX_BATCH * sizeof(*w->hash));
	w->slots = malloc(XSR_MAX_BATCH * sizeof(*w->slots));
	if (!w->runs || !w->slot_base || !w->notes || !w->vcpu_set || !w->ibuf || !w->zero || !w->hash || !w->slots) {
		xsr_writer_abort(w);
		return NULL;
	}
	memcpy(w->runs, p->runs, p->nr_runs * sizeof(*w->runs));
	if (p->vmcoreinfo) {
		xsr_vmci_note(w->notes + (size_t)p->nr_vcpus * XSR_NOTE_SIZE, p->vmcoreinfo, p->vmcoreinfo_len);
		w->kdump_align = kaslr_vmcoreinfo(p->vmcoreinfo, p->vmcoreinfo_len);
	}
	for (uint32_t i = 0; i < p->nr_runs; i++) {
		w->slot_base[i] = w->nr_pages;
		w->nr_pages += p->runs[i].count;
	}
	return w;
}

/* The Xen PV layout, when it fits (the writer decides; a caller's flag bit is not a request). */
static int xen_setup(struct xsr_writer *w, const struct xsr_writer_params *p)
{
	const char *why;
	w->flags &= ~XSR_FF_XEN_MACHINE_PADDR;
	if (!p->xen_pv || p->vloads)
		return 0;
	if (!(w->xen = calloc(1, sizeof(*w->xen))))
		return XSR_E_NOMEM;
	int rc = xsr_xen_layout_make(p->runs, p->nr_runs, p->xen_pv, w->xen, &why);
	if (rc < 0)
		return rc;
	if (rc > 0) { /* does not fit: an ordinary physical view */
		free(w->xen);
		w->xen = NULL;
	}
	return 0;
}

/* Stream: the header, PRODUCER, MEMMAP, then VMCOREINFO and the Xen p2m tree when there are. */
static int open_stream(struct xsr_writer *w, const struct xsr_writer_params *p)
{
	int rc;
	if (w->compress) {
		w->rawbuf = malloc(XSR_MAX_BATCH * XSR_PAGE_SIZE);
		w->cbuf_len = xsr_compress_bound(w->compress, XSR_MAX_BATCH * XSR_PAGE_SIZE);
		w->cbuf = malloc(w->cbuf_len);
		if (!w->rawbuf || !w->cbuf)
			return XSR_E_NOMEM;
	}
	if ((rc = write_header(w, 0, 0, 0, 0, 0)) < 0)
		return rc;
	struct iovec pv = {&w->producer, sizeof(w->producer)};
	if ((rc = emit_record(w, XSR_SEC_PRODUCER, false, 0, 0, &pv, 1, 0, NULL)) < 0)
		return rc;
	struct iovec mv = {w->runs, w->nr_runs * sizeof(*w->runs)};
	if ((rc = emit_record(w, XSR_SEC_MEMMAP, false, 0, sizeof(struct xsr_memrun), &mv, 1, 0, NULL)) < 0)
		return rc;
	struct iovec vv = {(void *)p->vmcoreinfo, p->vmcoreinfo_len};
	if (p->vmcoreinfo && (rc = add_record(w, XSR_SEC_VMCOREINFO, 1, 0, 0, &vv, 1)) < 0)
		return rc;
	if (w->xen) {
		/* Carried so that a conversion to seekable makes the same layout; notes stay plain. */
		struct iovec tv[2] = {{&w->xen->hdr, sizeof(w->xen->hdr)}, {w->xen->tree, w->xen->npages * XSR_PAGE_SIZE}};
		if ((rc = add_record(w, XSR_SEC_XEN_P2M_TREE, 1, 0, 0, tv, 2)) < 0)
			return rc;
		xsr_xen_layout_free(w->xen);
		free(w->xen);
		w->xen = NULL;
	}
	return 0;
}

/* Seekable: the paging view's loads, the Xen notes' room, the slot bitmap. */
static int seekable_state(struct xsr_writer *w, const struct xsr_writer_params *p)
{
	int rc;
	if (p->vloads) {
		w->nr_loads = p->nr_vloads;
		w->loads = malloc((p->nr_vloads + 1) * sizeof(*w->loads));
		if (!w->loads)
			return XSR_E_NOMEM;
		memcpy(w->loads, p->vloads, p->nr_vloads * sizeof(*w->loads));
		w->flags |= XSR_FF_PAGING_VIEW;
		if ((rc = check_vloads(w)) < 0)
			return rc;
	} else {
		w->flags &= ~XSR_FF_PAGING_VIEW;
	}
	if (w->xen) {
		w->flags |= XSR_FF_XEN_MACHINE_PADDR;
		w->qemu = calloc(p->nr_vcpus, XSR_QEMU_NOTE_SIZE);
		if (p->vmcoreinfo) {
			w->vmci = malloc(p->vmcoreinfo_len);
			w->vmci_len = p->vmcoreinfo_len;
		}
		if (!w->qemu || (p->vmcoreinfo && !w->vmci))
			return XSR_E_NOMEM;
		if (w->vmci)
			memcpy(w->vmci, p->vmcoreinfo, p->vmcoreinfo_len);
	}
	xsr_bits_init(&w->databits, w->nr_pages);
	return 0;
}

/* Seekable: fix every offset now and write what open knows (file layout: top of this file). */
static int open_seekable(struct xsr_writer *w, const struct xsr_writer_params *p)
{
	int rc = seekable_state(w, p);
	if (rc < 0)
		return rc;
	if ((rc = w->sink->ops->truncate(w->sink, 0)) < 0)
		return fail(w, XSR_E_IO, "truncating the output: %s", strerror(-rc));
	uint32_t nloads = w->loads ? w->nr_loads : w->xen ? w->xen->nr_loads + 1 : w->nr_runs;
	uint64_t off = ALIGN8(XSR_HEADER_END + (uint64_t)(1 + nloads) * sizeof(Elf64_Phdr));
	w->notes_rec = off;
	off += record_span(w->xen ? xen_notes_room(p) : w->notes_len);
	struct wsec *s;
	struct iovec pv = {&w->producer, sizeof(w->producer)};
	if ((rc = emit_record(w, XSR_SEC_PRODUCER, false, 0, 0, &pv, 1, off, &s)) < 0)
		return rc;
	off += record_span(sizeof(w->producer));
	struct iovec mv = {w->runs, w->nr_runs * sizeof(*w->runs)};
	if ((rc = emit_record(w, XSR_SEC_MEMMAP, false, 0, sizeof(struct xsr_memrun), &mv, 1, off, &s)) < 0)
		return rc;
	off += record_span(w->nr_runs * sizeof(*w->runs));
	w->index_rec = off;
	off += record_span(w->nr_pages * sizeof(struct xsr_index_entry));
	w->pages_off = ALIGN_PAGE(off);
	w->tail = w->pages_off + w->nr_pages * XSR_PAGE_SIZE;
	/* Sized now so the index and unwritten slots read as zeros (holes). */
	if ((rc = w->sink->ops->truncate(w->sink, w->tail)) < 0)
		return fail(w, XSR_E_IO, "sizing the output to %llu octets: %s", (unsigned long long)w->tail, strerror(-rc));
	if (!w->xen) {
		struct iovec vv = {(void *)p->vmcoreinfo, p->vmcoreinfo_len};
		return p->vmcoreinfo ? add_record(w, XSR_SEC_VMCOREINFO, 1, 0, 0, &vv, 1) : 0;
	}
	/*
	 * The tree's pages are page aligned in the file like the page slots (the
	 * PT_LOAD over them): the record starts 128 octets (record header + tree
	 * header) before a page boundary, zero fill before it.
	 */
	uint64_t at = ALIGN_PAGE(w->tail + 2 * 64) - 2 * 64;
	struct iovec tv[2] = {{&w->xen->hdr, sizeof(w->xen->hdr)}, {w->xen->tree, w->xen->npages * XSR_PAGE_SIZE}};
	uint64_t len = sizeof(w->xen->hdr) + w->xen->npages * XSR_PAGE_SIZE;
	if ((rc = emit_record(w, XSR_SEC_XEN_P2M_TREE, true, 0, 0, tv, 2, at, NULL)) < 0)
		return rc;
	w->tree_body = at + sizeof(struct xsr_record_header);
	w->tail = at + record_span(len);
	/* The tree is on disk; the loads stay for the program headers. */
	free(w->xen->tree);
	w->xen->tree = NULL;
	return 0;
}

/* Open on @snk (the caller's, or the writer's own for an fd); parameters checked. */
static int writer_open(struct xsr_writer **out, struct xsr_sink *snk, bool own, const struct xsr_writer_params *p,
		       char *err, size_t errlen)
{
	if (p->layout == XSR_LAYOUT_SEEKABLE && !snk->seekable) {
		if (snk->fd >= 0)
			xsr_fmt(err, errlen, "a seekable image needs a regular file open for reading and writing%s",
				snk->not_seekable);
		else
			xsr_fmt(err, errlen, "a seekable image needs a sink that can be read back and truncated%s", snk->not_seekable);
		return XSR_E_INVAL;
	}
	int layout = p->layout ? p->layout : snk->seekable && snk->fresh ? XSR_LAYOUT_SEEKABLE : XSR_LAYOUT_STREAM;
	struct xsr_writer *w = writer_new(snk, layout, p);
	if (!w) {
		xsr_fmt(err, errlen, "out of memory opening the writer");
		return XSR_E_NOMEM;
	}
	if (own) {
		w->own_sink = *snk;
		w->sink = &w->own_sink;
	}
	int rc = 0;
	if (w->layout == XSR_LAYOUT_STREAM && (p->flags & XSR_FF_PAGING_VIEW || p->vloads))
		rc = fail(w, XSR_E_INVAL, "a paging view needs a seekable output");
	if (rc == 0)
		rc = xen_setup(w, p);
	if (rc == 0)
		rc = w->layout == XSR_LAYOUT_STREAM ? open_stream(w, p) : open_seekable(w, p);
	if (rc < 0) {
		xsr_fmt(err, errlen, "%s", rc == XSR_E_NOMEM ? "out of memory opening the writer" : w->err);
		xsr_writer_abort(w);
		return rc;
	}
	*out = w;
	return 0;
}

int xsr_writer_open_sink(struct xsr_writer **out, struct xsr_sink *snk, const struct xsr_writer_params *p,
			 char *err, size_t errlen)
{
	*out = NULL;
	if (!p || !snk) {
		xsr_fmt(err, errlen, "no parameters or no sink");
		return XSR_E_INVAL;
	}
	int rc = check_params(p, err, errlen);
	return rc < 0 ? rc : writer_open(out, snk, false, p, err, errlen);
}

int xsr_writer_open(struct xsr_writer **out, int fd, const struct xsr_writer_params *p, char *err,
		    size_t errlen)
{
	struct xsr_sink snk;
	*out = NULL;
	if (!p || fd < 0) {
		xsr_fmt(err, errlen, "no parameters or bad fd");
		return XSR_E_INVAL;
	}
	int rc = check_params(p, err, errlen);
	if (rc < 0)
		return rc;
	if ((rc = xsr_sink_fd(&snk, fd)) < 0) {
		xsr_fmt(err, errlen, "fstat of the output: %s", strerror(-rc));
		return XSR_E_IO;
	}
	return writer_open(out, &snk, true, p, err, errlen);
}

int xsr_writer_add_section(struct xsr_writer *w, uint32_t code, int optional, uint32_t info,
			   uint64_t entsize, const struct iovec *iov, int iovcnt)
{
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	if (w->failed)
		return XSR_E_STATE;
	/* VMCOREINFO comes through the parameters, so that the note carries it too. */
	if (!d || d->writer_made)
		return fail(w, XSR_E_INVAL, "section type %u is not for callers to add", code);
	return add_record(w, code, optional, info, entsize, iov, iovcnt);
}

static int add_record(struct xsr_writer *w, uint32_t code, int optional, uint32_t info, uint64_t entsize,
		      const struct iovec *iov, int iovcnt)
{
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	uint64_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len < d->min_len || len > d->max_len)
		return fail(w, XSR_E_LIMIT, "%s section of %llu octets: must be %llu..%llu", d->name,
			    (unsigned long long)len, (unsigned long long)d->min_len, (unsigned long long)d->max_len);
	if (d->per_vcpu && info >= w->nr_vcpus)
		return fail(w, XSR_E_RANGE, "%s section for vCPU %u of %u", d->name, info, w->nr_vcpus);
	/*
	 * Keep room in the table for what close and the vCPUs still to come add
	 * (section 0, NOTES, INDEX, PAGES, STRTAB, INTEGRITY, one VCPU each):
	 * refuse here rather than fail at close after accepting the section.
	 */
	if (w->layout == XSR_LAYOUT_SEEKABLE && w->nsecs + 6 + (w->nr_vcpus - w->nr_vcpu_set) >= XSR_MAX_SECTIONS)
		return fail(w, XSR_E_LIMIT, "more than %u sections", XSR_MAX_SECTIONS);
	int rc = emit_record(w, code, optional || d->optional, info, entsize, iov, iovcnt, w->tail, NULL);
	if (rc == 0 && w->layout == XSR_LAYOUT_SEEKABLE)
		w->tail += record_span(len);
	return rc;
}

int xsr_writer_add(struct xsr_writer *w, uint32_t code, uint32_t info, const void *body, uint64_t len)
{
	struct iovec iov = {(void *)body, len};
	return xsr_writer_add_section(w, code, 0, info, 0, &iov, 1);
}

int xsr_writer_set_vcpu(struct xsr_writer *w, const struct xsr_vcpu_state *st)
{
	uint32_t id = st->r.vcpu_id;
	if (id >= w->nr_vcpus)
		return fail(w, XSR_E_RANGE, "vCPU %u: the image has %u vCPUs", id, w->nr_vcpus);
	if (w->vcpu_set[id])
		return fail(w, XSR_E_STATE, "vCPU %u state set twice", id);
	uint64_t len = xsr_vcpu_encoded_size(st);
	void *buf = malloc(len);
	if (!buf)
		return fail(w, XSR_E_NOMEM, "out of memory encoding vCPU %u", id);
	int64_t n = xsr_vcpu_encode(st, buf, len);
	if (n < 0) {
		free(buf);
		return fail(w, (int)n, "vCPU %u: xsave, MSR or LAPIC blob over its limit", id);
	}
	struct iovec iov = {buf, (size_t)n};
	int rc = emit_record(w, XSR_SEC_VCPU, false, id, 0, &iov, 1, w->tail, NULL);
	free(buf);
	if (rc < 0)
		return rc;
	if (w->layout == XSR_LAYOUT_SEEKABLE)
		w->tail += record_span((uint64_t)n);
	xsr_note_prstatus(&st->r, w->notes + (size_t)id * XSR_NOTE_SIZE);
	if (w->qemu) {
		uint64_t kgs = 0;
		xsr_vcpu_msr(st, 0xc0000102, &kgs); /* KERNEL_GS_BASE, 0 when not saved */
		xsr_qemu_note(&st->r, kgs, w->qemu + (size_t)id * XSR_QEMU_NOTE_SIZE);
	}
	w->vcpu_set[id] = 1;
	w->nr_vcpu_set++;
	return 0;
}

/* ---- pages ---- */

static int check_pfn(struct xsr_writer *w, uint64_t e, int64_t *slot)
{
	if (e & (XSR_PFN_RESERVED | XSR_PFN_ZERO))
		return fail(w, XSR_E_INVAL, "pfn entry 0x%llx has reserved bits set", (unsigned long long)e);
	*slot = xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, e & XSR_PFN_MASK);
	if (*slot < 0)
		return fail(w, XSR_E_RANGE, "pfn 0x%llx is not in any memory run of the image",
			    (unsigned long long)(e & XSR_PFN_MASK));
	return 0;
}

static int punch(struct xsr_writer *w, uint64_t slot, uint64_t n)
{
	uint64_t off = w->pages_off + slot * XSR_PAGE_SIZE, len = n * XSR_PAGE_SIZE;
	if (w->sink->ops->punch(w->sink, off, len) == 0)
		return 0;
	/* No hole punching here: the slots must still read as zeros; one zero page, many iovecs. */
	static const uint8_t zero[XSR_PAGE_SIZE];
	struct iovec v[64];
	for (uint64_t i = 0; i < n;) {
		int c = 0;
		for (; c < (int)ARRAY_SIZE(v) && i + (uint64_t)c < n; c++)
			v[c] = (struct iovec){(void *)zero, sizeof(zero)};
		int rc = xsr_sink_writev(w->sink, v, c, off + i * XSR_PAGE_SIZE, true);
		if (rc < 0)
			return rc;
		i += (uint64_t)c;
	}
	return 0;
}

/* Seekable: data of @n pages with consecutive slots from @slot0 (holes for zero pages). */
static int group_data(struct xsr_writer *w, const uint64_t *pfns, const void *const *pages, uint32_t n,
		      uint64_t slot0, const bool *zero)
{
	struct iovec iov[XSR_MAX_BATCH];
	uint32_t i = 0;
	int rc;
	while (i < n) {
		uint32_t j = i;
		if (!zero[i]) {
			while (j < n && !zero[j]) {
				iov[j - i] = (struct iovec){(void *)pages[j], XSR_PAGE_SIZE};
				j++;
			}
			rc = xsr_sink_writev(w->sink, iov, (int)(j - i), w->pages_off + (slot0 + i) * XSR_PAGE_SIZE, true);
			if (rc < 0)
				return fail(w, XSR_E_IO, "writing pages at pfn 0x%llx: %s",
					    (unsigned long long)(pfns[i] & XSR_PFN_MASK), strerror(-rc));
		} else {
			bool had = false;
			while (j < n && zero[j]) {
				had |= xsr_bits_get(&w->databits, slot0 + j);
				j++;
			}
			if (had && (rc = punch(w, slot0 + i, j - i)) < 0)
				return fail(w, XSR_E_IO, "clearing pages at pfn 0x%llx: %s",
					    (unsigned long long)(pfns[i] & XSR_PFN_MASK), strerror(-rc));
		}
		i = j;
	}
	/* databits follow the disk, so a later group of the same batch sees this one. */
	for (i = 0; i < n; i++)
		if (xsr_bits_put(&w->databits, slot0 + i, !zero[i]) < 0)
			return fail(w, XSR_E_NOMEM, "out of memory");
	return 0;
}

/* Seekable: index entries of the same group, from w->zero[] / w->hash[] at @first. */
static int group_index(struct xsr_writer *w, const uint64_t *pfns, uint32_t first, uint32_t n, uint64_t slot0)
{
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = first + k;
		w->ibuf[k].hash = w->hash[i];
		w->ibuf[k].flags = (w->zero[i] ? 0 : XSR_IDX_DATA) |
				   (uint32_t)(pfns[i] >> XSR_PFN_XEN_TYPE_SHIFT) << XSR_IDX_XEN_TYPE_SHIFT;
		w->ibuf[k].reserved = 0;
	}
	struct iovec iv = {w->ibuf, n * sizeof(*w->ibuf)};
	int rc = xsr_sink_writev(w->sink, &iv, 1, w->index_rec + sizeof(struct xsr_record_header) + slot0 * sizeof(*w->ibuf), true);
	if (rc < 0)
		return fail(w, XSR_E_IO, "writing the page index: %s", strerror(-rc));
	w->stats.bytes += n * sizeof(*w->ibuf);
	return 0;
}

/*
 * make bench measures what checksumming costs by saving once without it
 * (XSR_BENCH_NOHASH=1; the image then fails verification, by design).
 * A test hook: the shipped library (XSR_TESTHOOKS=0) always hashes.
 */
static bool bench_nohash(void)
{
#if !XSR_TESTHOOKS
	return false;
#else
	/* Atomic: writers on several threads of one process ask too (a plain int is a data race). */
	static atomic_int v = -1;
	int x = atomic_load_explicit(&v, memory_order_relaxed);
	if (x < 0)
		atomic_store_explicit(&v, x = getenv("XSR_BENCH_NOHASH") != NULL, memory_order_relaxed);
	return x;
#endif
}

static void hash_pages(const void *const *pages, uint32_t n, const bool *zero, uint64_t *hash)
{
	bool off = bench_nohash();
	for (uint32_t i = 0; i < n; i++)
		hash[i] = zero[i] || off ? 0 : xsr_hash(pages[i], XSR_PAGE_SIZE);
}

/* Length of the run of consecutive slots starting at w->slots[start]. */
static uint32_t group_len(const struct xsr_writer *w, uint32_t start, uint32_t n)
{
	uint32_t len = 1;
	while (start + len < n && w->slots[start + len] == w->slots[start + len - 1] + 1)
		len++;
	return len;
}

/*
 * Linux keeps its VMCOREINFO text in a page of its own that starts with
 * "OSRELEASE=": remember such pages (a few) and read them back at close,
 * when the last write of each is known.
 */
static void note_vmci_page(struct xsr_writer *w, uint64_t pfn)
{
	for (uint32_t i = 0; i < w->nr_vmci_pfn; i++)
		if (w->vmci_pfn[i] == pfn)
			return;
	if (w->nr_vmci_pfn < ARRAY_SIZE(w->vmci_pfn))
		w->vmci_pfn[w->nr_vmci_pfn++] = pfn;
}

/* Seekable batch: the pages are checked and hashed, their data goes out, then their index entries. */
static int put_seekable(struct xsr_writer *w, const uint64_t *pfns, uint32_t n, const void *const *pages)
{
	int rc = 0;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = check_pfn(w, pfns[i], &w->slots[i])) < 0)
			return rc;
		w->zero[i] = !pages[i] || xsr_page_is_zero(pages[i]);
		if (w->xen && !w->vmci && !w->zero[i] && !memcmp(pages[i], "OSRELEASE=", 10))
			note_vmci_page(w, pfns[i] & XSR_PFN_MASK);
	}
	hash_pages(pages, n, w->zero, w->hash);
	for (uint32_t start = 0, len; start < n && rc == 0; start += len) {
		len = group_len(w, start, n);
		rc = group_data(w, pfns + start, pages + start, len, (uint64_t)w->slots[start], w->zero + start);
	}
	for (uint32_t start = 0, len; start < n && rc == 0; start += len) {
		len = group_len(w, start, n);
		rc = group_index(w, pfns, start, len, (uint64_t)w->slots[start]);
	}
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		if (w->zero[i]) {
			w->stats.zero_pages++;
		} else {
			w->stats.pages++;
			w->stats.bytes += XSR_PAGE_SIZE;
		}
	}
	return 0;
}

static int put_stream_batch(struct xsr_writer *w, const uint64_t *pfns, uint32_t n, const void *const *pages)
{
	static uint8_t zeros[8];
	uint64_t ents[XSR_MAX_BATCH];
	struct iovec iov[XSR_MAX_BATCH + 6];
	struct xsr_page_batch b = {.count = n};
	uint32_t ndata = 0;
	int64_t slot;
	int rc;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = check_pfn(w, pfns[i], &slot)) < 0)
			return rc;
		bool z = !pages[i] || xsr_page_is_zero(pages[i]);
		ents[i] = pfns[i] | (z ? XSR_PFN_ZERO : 0);
		if (!z)
			iov[3 + ndata++] = (struct iovec){(void *)pages[i], XSR_PAGE_SIZE};
		else
			w->stats.zero_pages++;
	}
	w->stats.pages += ndata;
	b.data_len = (uint64_t)ndata * XSR_PAGE_SIZE;
	int c = 3 + (int)ndata;
	if (w->compress && ndata) {
		for (uint32_t i = 0; i < ndata; i++)
			memcpy(w->rawbuf + (size_t)i * XSR_PAGE_SIZE, iov[3 + i].iov_base, XSR_PAGE_SIZE);
		size_t cl = xsr_compress(w->compress, w->rawbuf, b.data_len, w->cbuf, w->cbuf_len);
		if (cl && cl < b.data_len) {
			b.compress = w->compress;
			b.data_len = cl;
			iov[3] = (struct iovec){w->cbuf, cl};
			c = 4;
		}
	}
	uint64_t body = sizeof(b) + (uint64_t)n * 8 + b.data_len;
	struct xsr_record_header rh;
	make_rh(&rh, XSR_SEC_PAGES, false, 0, 0, body, XSR_OFF_STREAMED);
	iov[0] = (struct iovec){&rh, sizeof(rh)};
	iov[1] = (struct iovec){&b, sizeof(b)};
	iov[2] = (struct iovec){ents, (size_t)n * 8};
	uint64_t trailer = xsr_record_hash(&rh, iov + 1, c - 1, body);
	iov[c++] = (struct iovec){zeros, ALIGN8(body) - body};
	iov[c++] = (struct iovec){&trailer, sizeof(trailer)};
	rc = xsr_sink_writev(w->sink, iov, c, 0, false);
	if (rc < 0)
		return fail(w, XSR_E_IO, "writing a page batch (pfn 0x%llx..) to the stream: %s",
			    (unsigned long long)(pfns[0] & XSR_PFN_MASK), strerror(-rc));
	w->chain = chain_next(w->chain, trailer);
	w->stats.bytes += record_span(body);
	w->stats.records++;
	return 0;
}

int xsr_writer_put_pages(struct xsr_writer *w, const uint64_t *pfns, uint32_t n, const void *const *pages)
{
	int rc;
	if (w->failed)
		return XSR_E_STATE;
	for (uint32_t off = 0; off < n; off += XSR_MAX_BATCH) {
		uint32_t m = n - off > XSR_MAX_BATCH ? XSR_MAX_BATCH : n - off;
		rc = w->layout == XSR_LAYOUT_SEEKABLE ? put_seekable(w, pfns + off, m, pages + off)
						      : put_stream_batch(w, pfns + off, m, pages + off);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- close ---- */

static int check_vcpus(struct xsr_writer *w)
{
	for (uint32_t i = 0; i < w->nr_vcpus; i++)
		if (!w->vcpu_set[i])
			return fail(w, XSR_E_STATE, "vCPU %u state was never set", i);
	return 0;
}

static int close_stream(struct xsr_writer *w)
{
	int rc;
	struct iovec nv = {w->notes, (size_t)w->notes_len};
	if ((rc = emit_record(w, XSR_SEC_NOTES, false, 0, 0, &nv, 1, 0, NULL)) < 0)
		return rc;
	struct xsr_end e = {.nr_records = w->stats.records, .chain = w->chain};
	struct iovec ev = {&e, sizeof(e)};
	if ((rc = emit_record(w, XSR_SEC_END, false, 0, 0, &ev, 1, 0, NULL)) < 0)
		return rc;
	w->image_size = w->stats.bytes;
	return 0;
}

/* Hash the index record (header + entries read back + padding) and write header and trailer. */
static int finish_index(struct xsr_writer *w, struct wsec *s)
{
	uint64_t len = w->nr_pages * sizeof(struct xsr_index_entry);
	uint64_t body = w->index_rec + sizeof(struct xsr_record_header);
	make_rh(&s->rh, XSR_SEC_INDEX, false, 0, sizeof(struct xsr_index_entry), len, body);
	s->is_record = true;
	XXH3_state_t *st = XXH3_createState();
	/*
	 * Sized to the index: a fixed 1 MiB buffer for a small image is an
	 * mmap and munmap per close (under ASan, of its shadow too).
	 */
	size_t chunk = len < (1 << 20) ? (size_t)len + 8 : 1 << 20;
	uint8_t *buf = malloc(chunk);
	int rc = 0;
	if (!st || !buf) {
		rc = fail(w, XSR_E_NOMEM, "out of memory hashing the index");
		goto out;
	}
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, &s->rh, sizeof(s->rh));
	for (uint64_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? (size_t)(len - off) : chunk;
		if ((rc = w->sink->ops->pread(w->sink, buf, n, body + off)) < 0) {
			rc = fail(w, XSR_E_IO, "reading back the page index: %s", strerror(-rc));
			goto out;
		}
		XXH3_64bits_update(st, buf, n);
	}
	memset(buf, 0, 8);
	XXH3_64bits_update(st, buf, ALIGN8(len) - len);
	s->trailer = XXH3_64bits_digest(st);
	struct iovec h = {&s->rh, sizeof(s->rh)};
	struct iovec t = {&s->trailer, 8};
	if ((rc = xsr_sink_writev(w->sink, &h, 1, w->index_rec, true)) < 0 ||
	    (rc = xsr_sink_writev(w->sink, &t, 1, body + ALIGN8(len), true)) < 0)
		rc = fail(w, XSR_E_IO, "writing the page index record: %s", strerror(-rc));
	w->stats.bytes += sizeof(s->rh) + 8;
out:
	XXH3_freeState(st);
	free(buf);
	return rc;
}

static const char *elf_name(const struct wsec *s)
{
	if (s->rh.sh_type == SHT_NOTE)
		return ".note";
	if (s->rh.sh_type == SHT_STRTAB)
		return ".shstrtab";
	const struct xsr_sec_desc *d = xsr_sec_lookup(s->rh.sh_type & XSR_SHT_CODE_MASK);
	return d && d->elfname ? d->elfname : ".xsr.unknown";
}

/*
 * Xen PV for crash: VMCOREINFO (given, or the first valid page of those that
 * started with "OSRELEASE="), then the notes in the order crash needs:
 * NT_PRSTATUS, a QEMU note per vCPU and VMCOREINFO (crash refuses a Xen
 * kdump with QEMU notes but no VMCOREINFO), the Xen CRASH_INFO note.
 */
static int xen_notes(struct xsr_writer *w)
{
	int rc;
	uint8_t *page = NULL;
	for (uint32_t i = 0; i < w->nr_vmci_pfn && !w->vmci; i++) {
		int64_t slot = xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, w->vmci_pfn[i]);
		if (slot < 0 || !xsr_bits_get(&w->databits, (uint64_t)slot))
			continue;
		if (!page && !(page = malloc(XSR_PAGE_SIZE)))
			return fail(w, XSR_E_NOMEM, "out of memory");
		if ((rc = w->sink->ops->pread(w->sink, page, XSR_PAGE_SIZE, w->pages_off + (uint64_t)slot * XSR_PAGE_SIZE)) < 0) {
			free(page);
			return fail(w, XSR_E_IO, "reading back pfn 0x%llx: %s", (unsigned long long)w->vmci_pfn[i],
				    strerror(-rc));
		}
		uint32_t n = xsr_vmci_in_page(page);
		if (n) {
			w->vmci = page;
			w->vmci_len = n;
			page = NULL;
		}
	}
	free(page);
	if (w->vmci) {
		struct iovec vv = {w->vmci, w->vmci_len};
		if ((rc = add_record(w, XSR_SEC_VMCOREINFO, 1, 0, 0, &vv, 1)) < 0)
			return rc;
	}
	uint64_t pr = (uint64_t)w->nr_vcpus * XSR_NOTE_SIZE;
	uint64_t q = w->vmci ? (uint64_t)w->nr_vcpus * XSR_QEMU_NOTE_SIZE + xsr_vmci_note_size(w->vmci_len) : 0;
	uint8_t *n = realloc(w->notes, pr + q + XSR_XEN_NOTE_SIZE);
	if (!n)
		return fail(w, XSR_E_NOMEM, "out of memory for the notes");
	w->notes = n;
	if (w->vmci) {
		memcpy(n + pr, w->qemu, (size_t)w->nr_vcpus * XSR_QEMU_NOTE_SIZE);
		xsr_vmci_note(n + pr + (uint64_t)w->nr_vcpus * XSR_QEMU_NOTE_SIZE, w->vmci, w->vmci_len);
	}
	xsr_xen_note(w->xen->hdr.xen_major, w->xen->hdr.xen_minor, w->xen->hdr.fll_mfn, n + pr + q);
	w->notes_len = pr + q + XSR_XEN_NOTE_SIZE;
	return 0;
}

/*
 * The section table's order: notes, producer, memmap, index, pages, then the
 * rest as written; room for two more (string table, integrity).  NULL: out
 * of memory.
 */
static struct wsec *order_sections(struct xsr_writer *w, uint32_t *count)
{
	static const uint32_t first[] = {XSR_SEC_NOTES, XSR_SEC_PRODUCER, XSR_SEC_MEMMAP, XSR_SEC_INDEX, XSR_SEC_PAGES};
	struct wsec *ord = malloc((w->nsecs + 2) * sizeof(*ord));
	if (!ord)
		return NULL;
	uint32_t n = 0;
	for (size_t k = 0; k < ARRAY_SIZE(first); k++)
		for (uint32_t i = 0; i < w->nsecs; i++) {
			uint32_t t = w->secs[i].rh.sh_type;
			uint32_t code = t == SHT_NOTE ? XSR_SEC_NOTES : t & XSR_SHT_CODE_MASK;
			if (code == first[k] && (t == SHT_NOTE || (t & XSR_SHT_BASE)))
				ord[n++] = w->secs[i];
		}
	for (uint32_t i = 0; i < w->nsecs; i++) {
		uint32_t t = w->secs[i].rh.sh_type;
		uint32_t code = t & XSR_SHT_CODE_MASK;
		bool isfirst = t == SHT_NOTE;
		for (size_t k = 0; k < ARRAY_SIZE(first) && !isfirst; k++)
			isfirst = code == first[k];
		if (!isfirst)
			ord[n++] = w->secs[i];
	}
	*count = n;
	return ord;
}

/* Program headers: PT_NOTE, then the loads (Xen: by machine address, then the p2m tree; paging view; runs). */
static void make_phdrs(const struct xsr_writer *w, Elf64_Phdr *ph, uint32_t nloads)
{
	ph[0].p_type = PT_NOTE;
	ph[0].p_offset = w->notes_rec + sizeof(struct xsr_record_header);
	ph[0].p_filesz = w->notes_len;
	ph[0].p_align = 4;
	for (uint32_t i = 0; i < nloads; i++) {
		Elf64_Phdr *q = &ph[1 + i];
		q->p_type = PT_LOAD;
		q->p_align = w->kdump_align ? 0 : XSR_PAGE_SIZE;
		if (w->xen) {
			/* p_align 0: crash takes an ELF core as kdump (and reads its QEMU notes) only so. */
			q->p_flags = PF_R | PF_W | PF_X;
			q->p_align = 0;
			if (i < w->xen->nr_loads) {
				const struct xsr_xen_load *l = &w->xen->loads[i];
				int64_t slot = xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, l->pfn);
				q->p_offset = w->pages_off + (uint64_t)slot * XSR_PAGE_SIZE;
				q->p_vaddr = l->pfn << XSR_PAGE_SHIFT;
				q->p_paddr = l->mfn << XSR_PAGE_SHIFT;
				q->p_filesz = q->p_memsz = l->count << XSR_PAGE_SHIFT;
			} else {
				q->p_offset = w->tree_body + sizeof(struct xsr_xen_p2m_tree);
				q->p_vaddr = q->p_paddr = w->xen->hdr.fll_mfn << XSR_PAGE_SHIFT;
				q->p_filesz = q->p_memsz = w->xen->npages * XSR_PAGE_SIZE;
			}
		} else if (w->loads) {
			const struct xsr_vload *l = &w->loads[i];
			int64_t slot = xsr_memmap_slot(w->runs, w->slot_base, w->nr_runs, l->paddr >> XSR_PAGE_SHIFT);
			q->p_flags = l->flags ? l->flags : PF_R | PF_W | PF_X;
			q->p_offset = w->pages_off + (uint64_t)slot * XSR_PAGE_SIZE;
			q->p_vaddr = l->vaddr;
			q->p_paddr = l->paddr;
			q->p_filesz = q->p_memsz = l->len;
		} else {
			q->p_flags = PF_R | PF_W | PF_X;
			q->p_offset = w->pages_off + w->slot_base[i] * XSR_PAGE_SIZE;
			q->p_vaddr = q->p_paddr = w->runs[i].pfn << XSR_PAGE_SHIFT;
			q->p_filesz = q->p_memsz = w->runs[i].count << XSR_PAGE_SHIFT;
		}
	}
}

static int close_seekable(struct xsr_writer *w)
{
	int rc;
	struct wsec *s;
	if (w->xen && (rc = xen_notes(w)) < 0)
		return rc;
	/* NOTES, filled now that every vCPU is known. */
	struct iovec nv = {w->notes, (size_t)w->notes_len};
	if ((rc = emit_record(w, XSR_SEC_NOTES, false, 0, 0, &nv, 1, w->notes_rec, &s)) < 0)
		return rc;

	if (!(s = add_wsec(w)))
		return fail(w, XSR_E_LIMIT, "too many sections");
	if ((rc = finish_index(w, s)) < 0)
		return rc;
	/* .xsr.pages: not a record, just the section that covers the slots. */
	if (!(s = add_wsec(w)))
		return fail(w, XSR_E_LIMIT, "too many sections");
	memset(s, 0, sizeof(*s));
	s->rh.sh_type = XSR_SHT(XSR_SEC_PAGES, false);
	s->rh.sh_offset = w->pages_off;
	s->rh.sh_size = w->nr_pages * XSR_PAGE_SIZE;
	s->rh.sh_addralign = XSR_PAGE_SIZE;
	s->rh.sh_entsize = XSR_PAGE_SIZE;
	s->is_record = false;

	uint32_t n;
	struct wsec *ord = order_sections(w, &n);
	if (!ord)
		return fail(w, XSR_E_NOMEM, "out of memory");
	/* String table: names of all sections, then its own and the integrity's. */
	size_t slen = 1;
	for (uint32_t i = 0; i < n; i++)
		slen += strlen(elf_name(&ord[i])) + 1;
	slen += strlen(".shstrtab") + 1 + strlen(".xsr.integrity") + 1;
	char *str = calloc(1, slen);
	if (!str) {
		free(ord);
		return fail(w, XSR_E_NOMEM, "out of memory");
	}
	size_t p = 1;
	for (uint32_t i = 0; i < n; i++) {
		ord[i].rh.sh_name = (uint32_t)p;
		strcpy(str + p, elf_name(&ord[i]));
		p += strlen(elf_name(&ord[i])) + 1;
	}
	uint32_t strtab_name = (uint32_t)p;
	strcpy(str + p, ".shstrtab");
	p += strlen(".shstrtab") + 1;
	uint32_t integ_name = (uint32_t)p;
	strcpy(str + p, ".xsr.integrity");

	struct iovec sv = {str, slen};
	uint64_t str_at = w->tail;
	w->nsecs = 0; /* emit_record appends; we keep our ordered copy */
	rc = emit_record(w, XSR_SEC_STRTAB, false, 0, 0, &sv, 1, str_at, &s);
	free(str);
	if (rc < 0) {
		free(ord);
		return rc;
	}
	ord[n] = *s;
	ord[n].rh.sh_name = strtab_name;
	uint32_t strndx = n + 1;
	n++;
	w->tail += record_span(slen);

	/* Integrity record and the section header table after it. */
	uint64_t integ_at = w->tail;
	uint64_t shoff = integ_at + record_span(sizeof(struct xsr_integrity));
	uint32_t shnum = n + 2; /* NULL + sections + integrity */
	uint64_t file_size = shoff + (uint64_t)shnum * sizeof(Elf64_Shdr);
	Elf64_Shdr *sh = calloc(shnum, sizeof(*sh));
	uint32_t nloads = w->loads ? w->nr_loads : w->xen ? w->xen->nr_loads + 1 : w->nr_runs;
	Elf64_Phdr *ph = calloc(1 + nloads, sizeof(*ph));
	if (!sh || !ph) {
		free(sh);
		free(ph);
		free(ord);
		return fail(w, XSR_E_NOMEM, "out of memory");
	}
	struct xsr_integrity in = {.algorithm = XSR_HASH_XXH3_64, .file_size = file_size};
	uint64_t chain = 0;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(&sh[i + 1], &ord[i].rh, sizeof(Elf64_Shdr));
		if (ord[i].is_record) {
			chain = chain_next(chain, ord[i].trailer);
			in.nr_records++;
		}
	}
	in.chain = chain;
	struct xsr_record_header irh;
	make_rh(&irh, XSR_SEC_INTEGRITY, false, 0, 0, sizeof(in), integ_at + sizeof(irh));
	irh.sh_name = integ_name;
	memcpy(&sh[shnum - 1], &irh, sizeof(Elf64_Shdr));

	make_phdrs(w, ph, nloads);
	in.phdr_hash = XXH3_64bits(ph, (1 + (size_t)nloads) * sizeof(*ph));
	/* shdr_hash covers the table as written, including the integrity entry. */
	in.shdr_hash = XXH3_64bits(sh, (size_t)shnum * sizeof(*sh));
	struct iovec iv = {&in, sizeof(in)};
	rc = emit_record(w, XSR_SEC_INTEGRITY, false, 0, 0, &iv, 1, integ_at, NULL);
	if (rc == 0) {
		struct iovec v = {sh, (size_t)shnum * sizeof(*sh)};
		if ((rc = xsr_sink_writev(w->sink, &v, 1, shoff, true)) < 0)
			rc = fail(w, XSR_E_IO, "writing the section header table: %s", strerror(-rc));
	}
	if (rc == 0) {
		struct iovec v = {ph, (1 + (size_t)nloads) * sizeof(*ph)};
		if ((rc = xsr_sink_writev(w->sink, &v, 1, XSR_HEADER_END, true)) < 0)
			rc = fail(w, XSR_E_IO, "writing the program header table: %s", strerror(-rc));
	}
	if (rc == 0 && (rc = w->sink->ops->truncate(w->sink, file_size)) < 0)
		rc = fail(w, XSR_E_IO, "setting the file size: %s", strerror(-rc));
	if (rc == 0)
		rc = write_header(w, XSR_HEADER_END, (uint16_t)(1 + nloads), shoff, (uint16_t)shnum, (uint16_t)strndx);
	if (rc == 0) {
		w->stats.bytes += (uint64_t)shnum * sizeof(*sh) + (1 + nloads) * sizeof(*ph) + XSR_HEADER_END;
		w->image_size = file_size;
	}
	free(sh);
	free(ph);
	free(ord);
	return rc;
}

int xsr_writer_close_stats(struct xsr_writer *w, struct xsr_writer_stats *st, char *err, size_t errlen)
{
	int rc;
	if (!w)
		return XSR_E_INVAL;
	if (w->failed)
		rc = XSR_E_STATE;
	else if ((rc = check_vcpus(w)) == 0)
		rc = w->layout == XSR_LAYOUT_STREAM ? close_stream(w) : close_seekable(w);
	if (rc < 0)
		xsr_fmt(err, errlen, "%s", w->err[0] ? w->err : "an earlier write failed");
	else if (st) {
		*st = w->stats;
		st->bytes = w->image_size;
	}
	xsr_writer_abort(w);
	return rc;
}

int xsr_writer_close(struct xsr_writer *w, char *err, size_t errlen)
{
	return xsr_writer_close_stats(w, NULL, err, errlen);
}

void xsr_writer_abort(struct xsr_writer *w)
{
	if (!w)
		return;
	free(w->zero);
	free(w->hash);
	free(w->slots);
	free(w->runs);
	free(w->slot_base);
	free(w->notes);
	free(w->vcpu_set);
	free(w->loads);
	xsr_xen_layout_free(w->xen);
	free(w->xen);
	free(w->qemu);
	free(w->vmci);
	xsr_bits_free(&w->databits);
	free(w->secs);
	free(w->cbuf);
	free(w->rawbuf);
	free(w->ibuf);
	free(w);
}
