/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libxsrelf internals shared by the writer, the readers and conversion. */
#ifndef XSRELF_INTERNAL_H
#define XSRELF_INTERNAL_H

#include <elf.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>
#include <xsrelf/xsrelf.h>

#define XSR_ERRLEN 512

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)
#define ALIGN4(x) (((x) + 3) & ~(uint64_t)3)
#define ALIGN_PAGE(x) (((x) + XSR_PAGE_SIZE - 1) & ~(XSR_PAGE_SIZE - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the one table of section / record types ---- */
struct xsr_vcpu_state;
/*
 * What a validator may need besides the body.  Readers of both layouts fill
 * it the same way, so that a body is judged alike wherever it lies.
 */
struct xsr_sec_check_ctx {
	int layout;                        /* enum xsr_layout of the file */
	uint32_t info;                     /* sh_info: the vCPU id of a per-vCPU type */
	const struct xsr_file_header *fh;  /* nr_vcpus, nr_pages, flags (Xen notes) */
	const struct xsr_memrun *runs;     /* the memory map, once read (else NULL, 0) */
	const uint64_t *base;              /* first slot of each run */
	uint32_t nruns;
	/* Results for the reader, each optional (NULL: not wanted). */
	uint64_t *xen_fll;                 /* notes: the Xen CRASH_INFO note's p2m frame */
	uint64_t *pfn;                     /* pages: the pfn at fault */
	uint32_t *ndata;                   /* pages: entries with data */
	struct xsr_vcpu_state *vcpu;       /* vcpu: the decoded state (NULL: decoded into scratch) */
};
/*
 * A validator: 0, or a negative enum xsr_err with @why saying what is wrong
 * with the body (no location: the reader puts "record X at stream offset
 * 0x..." or "section .xsr.X at 0x..." before it).  @body is 8-aligned.
 */
typedef int (*xsr_sec_check_fn)(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why,
				size_t whylen);

struct xsr_sec_desc {
	const char *name;     /* "config" */
	const char *elfname;  /* ".xsr.config" */
	uint64_t min_len;     /* smallest valid body */
	uint64_t max_len;     /* largest valid body (limit) */
	bool optional;        /* written with XSR_SHT_OPTIONAL */
	bool stream_only;     /* END */
	bool seekable_only;   /* INDEX, INTEGRITY, STRTAB */
	bool per_vcpu;        /* sh_info is a vCPU id */
	bool derived;         /* made from the rest of the image or by its layout (xsr_section_derived) */
	bool writer_made;     /* the writer makes it; xsr_writer_add_section refuses it (xsr_section_writer_made) */
	uint16_t align;       /* sh_addralign in a seekable image; a stream record's is this, at most 8 */
	int64_t entsize;      /* the sh_entsize the format fixes, or XSR_ENTSIZE_ANY: the caller's */
	xsr_sec_check_fn check; /* the body's rule (check.c), or NULL: any body of a valid length */
};
#define XSR_ENTSIZE_ANY (-1)
extern const struct xsr_sec_desc xsr_sec_table[XSR_SEC__COUNT];
/* NULL when @code is not known to this version. */
const struct xsr_sec_desc *xsr_sec_lookup(uint32_t code);
/* sh_type for @code as written by this version. */
uint32_t xsr_sec_type(uint32_t code);
/* The validator of @code on @body, or 0 for a type without one (or unknown). */
int xsr_sec_check(uint32_t code, const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why,
		  size_t whylen);
/* The validators (check.c): the table's check column. */
int xsr_check_notes(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_memmap(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_vcpu(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_pages(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_end(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_integrity(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_xen_tree(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);
int xsr_check_xenstore(const void *, uint64_t, const struct xsr_sec_check_ctx *, char *, size_t);

/* ---- checks ---- */
/* sh_addralign of a record of @d written to a stream or as a section header by the writer. */
static inline uint64_t xsr_sec_rec_align(const struct xsr_sec_desc *d)
{
	return d->align < 8 ? d->align : 8;
}
/*
 * The header fields the format fixes for a known type (the table's columns):
 * sh_info is 0 unless the type is per-vCPU, sh_addralign and sh_entsize are
 * the table's.  Returns NULL or what is wrong.
 */
static inline const char *xsr_rh_fixed(uint32_t code, const struct xsr_sec_desc *d, uint32_t info,
				       uint64_t entsize, uint64_t align)
{
	if (!d)
		return NULL;
	if (!d->per_vcpu && info)
		return "sh_info must be 0 for this type";
	if (align != d->align)
		return "sh_addralign is not the one the format fixes";
	if (d->entsize != XSR_ENTSIZE_ANY && entsize != (uint64_t)d->entsize)
		return "sh_entsize is not the one the format fixes";
	return NULL;
}
/* true if [off, off+len) lies within [0, size) (cannot overflow). */
static inline bool xsr_in_bounds(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}
bool xsr_is_zero(const void *p, size_t len);
/* XXH3-64 built for AVX2 (hash_avx2.c); call only through xsr_hash() and xsr_record_hash(), which check the CPU. */
uint64_t xsr_xxh3_avx2(const void *p, size_t len);
/* XXH3-64 of @head, then @v (@n entries), then @pad zero octets (at most 8). */
uint64_t xsr_xxh3_iov_avx2(const void *head, size_t hlen, const struct iovec *v, int n, size_t pad);
bool xsr_page_is_zero(const void *page);

/* ---- header helpers ---- */
void xsr_make_ehdr(Elf64_Ehdr *eh, uint16_t machine, int layout);
/* Validate Ehdr + file header (128 octets at @buf); fills @why. */
int xsr_check_headers(const void *buf, int want_layout, char *why, size_t whylen);
uint64_t xsr_header_checksum(const Elf64_Ehdr *eh, const struct xsr_file_header *fh);
uint64_t xsr_record_hash(const struct xsr_record_header *rh, const struct iovec *body, int n,
			 uint64_t body_len);

/* ---- I/O with fault injection (test builds) ---- */
ssize_t xsr_io_read(int fd, void *buf, size_t len);                 /* full unless EOF */
int xsr_io_pread(int fd, void *buf, size_t len, uint64_t off);       /* full or -errno/-EIO */
int xsr_io_write(int fd, const void *buf, size_t len);               /* full or -errno */
int xsr_io_writev(int fd, struct iovec *iov, int n);                 /* full or -errno */
int xsr_io_pwritev(int fd, struct iovec *iov, int n, uint64_t off);  /* full or -errno */

/* ---- sources: where the readers' octets come from (source.c) ---- */
/*
 * A reader holds one source by value and never asks which kind it is.  Every
 * member of the ops table exists; a source that cannot do something says so
 * with a return value.  Offsets and lengths come from the input: each member
 * checks them against what the source holds, with checks that cannot
 * overflow.  The source does not own what it reads from (the caller's fd or
 * buffer outlives the handle); a source that owns state (an HTTP or S3 range
 * reader) would add it here and a member to release it.
 */
struct xsr_source;
struct xsr_source_ops {
	/* Exactly @len octets at @off into @buf: 0, or -errno (-EIO when the source ends first). */
	int (*pread)(struct xsr_source *src, void *buf, size_t len, uint64_t off);
	/*
	 * Sequential reading (streams): up to @len octets, fewer only at the end
	 * of the source; the number read or -errno.  @off is where the previous
	 * read ended (0 at first); a pipe or socket reads on from where it is.
	 */
	ssize_t (*read)(struct xsr_source *src, void *buf, size_t len, uint64_t off);
	/* Octets in the source: 0, -ESPIPE when it has no size (a pipe, a socket, a device), or -errno. */
	int (*size)(struct xsr_source *src, uint64_t *size);
	/*
	 * [off, off + len) where it already lies in memory: no mapping is made
	 * and nothing is released; valid as long as the source.  NULL when the
	 * source does not hold its octets in memory or the range is not all
	 * there: the caller then preads.
	 */
	const void *(*view)(struct xsr_source *src, uint64_t off, size_t len);
	/*
	 * Direct mapping of [off, off + len).  Read-only (@writable false): the
	 * source's octets, not a copy; released with unmap(src, *addr, off, len).
	 * @writable true: private copy-on-write memory the caller may change and
	 * releases with munmap(*addr, len); @off must be page-aligned.  0, or
	 * -errno (-EIO: the range is not all in the source; -ENOTSUP: this
	 * source cannot map).
	 */
	int (*map)(struct xsr_source *src, uint64_t off, size_t len, bool writable, void **addr);
	void (*unmap)(struct xsr_source *src, void *addr, uint64_t off, size_t len);
	/* See xsr_source_hole(). */
	bool (*hole)(const struct xsr_source *src, uint64_t off, uint64_t len);
};
struct xsr_source {
	const struct xsr_source_ops *ops;
	int fd;             /* fd sources: the caller's */
	const uint8_t *mem; /* memory sources: the caller's buffer of @len octets */
	uint64_t len;
	struct xsr_source_callbacks cb; /* callback sources (xsrelf/io.h) */
	void *ctx;
	uint64_t failed_at; /* callback sources: where the last failed read began, or XSR_NO_OFFSET */
};
/* An fd: a file, pipe or socket.  Reads go through xsr_io_* (XSR_FAULT reaches them). */
void xsr_source_fd(struct xsr_source *src, int fd);
/* A buffer the caller keeps valid and unchanged while the source is in use. */
void xsr_source_mem(struct xsr_source *src, const void *buf, size_t len);
/*
 * True if [off, off + len) of an fd source is a hole of a sparse file (reads
 * as zeros without being read); false if it holds data, if that is not
 * known, and for memory sources.  The caller has checked the range lies
 * inside the source.
 */
bool xsr_source_hole(const struct xsr_source *src, uint64_t off, uint64_t len);
/* True if @src is a callback source: it cannot map, and its failures are placed by failed_at. */
bool xsr_source_is_callbacks(const struct xsr_source *src);

/* CPUs this process may run on (sched_getaffinity: taskset, cpusets), at least 1; XSR_NO_HASH_THREAD=1 says 1. */
int xsr_usable_cpus(void);

/*
 * A reader's read-ahead thread (replay.c, stream.c): the thread, the lock and
 * condition both sides wait on, and the flag that tells it to stop.
 * xsr_worker_start: 0, or -1 with nothing to undo.  xsr_worker_stop: sets
 * stop, wakes the thread, joins it and destroys the lock and condition.
 */
struct xsr_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};
int xsr_worker_start(struct xsr_worker *w, void *(*fn)(void *), void *arg);
void xsr_worker_stop(struct xsr_worker *w);

/* ---- image internals for the replay (image.c, replay.c) ---- */
/*
 * Internal replay flag (convert.c): pages are read ahead on a second thread
 * (replay.c).  Not in reader.h: a caller's callbacks may use the image.
 */
#define XSR_REPLAY_AHEAD_ 0x80000000u
/*
 * xsr_stream_read_all with the records read and hashed ahead on a second
 * thread (stream.c), for a consumer whose callbacks do not read @fd.
 */
int xsr_stream_read_all_ahead(int fd, const void *prefix, size_t plen, const struct xsr_stream_ops *ops, void *ctx,
			      char *err, size_t errlen);
/* True when @img reads an fd (stateless pread: another thread may read it too). */
bool xsr_image_reads_fd(const struct xsr_image *img);
/* True if @src is an fd source. */
bool xsr_source_is_fd(const struct xsr_source *src);
struct xsr_image;
struct xsr_index_entry;
/* Section @i's header as the file has it (NULL past the table). */
const struct xsr_record_header *xsr_image_rh(const struct xsr_image *img, uint32_t i);
/* True when open checked every record, the index among them (no XSR_OPEN_NO_CHECK). */
bool xsr_image_index_checked(const struct xsr_image *img);
/* "@what: refused by the consumer" as the image's error; returns @rc. */
int xsr_image_refused(struct xsr_image *img, int rc, const char *what);
/* @count data slots of run @run from @first into @buf, one pread, each page checked against @ent. */
int xsr_image_fill(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count, void *buf,
		   const struct xsr_index_entry *ent);
/* @count slots indexed as zero (@ent) read as zero; holes are not read. */
int xsr_image_zero_slots(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count,
			 const struct xsr_index_entry *ent);

/* ---- sinks: where the writer's octets go (sink.c) ---- */
/*
 * The writer holds a pointer to one sink and never asks which kind it is.
 * Every write goes through xsr_sink_writev(), which retries short writes
 * and EINTR and is the write fault-injection point (io.c).
 */
struct xsr_sink;
struct xsr_sink_ops {
	/* One vectored write at @off (seekable) or appended (streamed): octets taken (> 0), or -errno. */
	ssize_t (*writev)(struct xsr_sink *snk, const struct iovec *iov, int n, uint64_t off, bool positional);
	/* Exactly @len octets at @off: 0 or -errno (-EIO at the end).  Seekable sinks only. */
	int (*pread)(struct xsr_sink *snk, void *buf, size_t len, uint64_t off);
	/* Set the length: 0 or -errno.  Seekable sinks only. */
	int (*truncate)(struct xsr_sink *snk, uint64_t size);
	/* Make [off, off + len) read as zeros cheaply: 0, or -errno (-EOPNOTSUPP: write zeros instead). */
	int (*punch)(struct xsr_sink *snk, uint64_t off, uint64_t len);
	void (*close)(struct xsr_sink *snk);
};
struct xsr_sink {
	const struct xsr_sink_ops *ops;
	bool seekable;  /* can take the seekable layout */
	bool fresh;     /* nothing written before: the writer picks seekable by itself */
	const char *not_seekable; /* why not, for the message: "" or " (this one is write-only)" */
	int fd;         /* fd sinks: the caller's */
	uint8_t *buf;   /* memory sinks: owned */
	uint64_t len, cap, max;
	uint64_t pos;   /* streamed callback sinks without writev: where the next write goes */
	struct xsr_sink_callbacks cb;
	void *ctx;
};
/* An fd sink in place (the writer's own, for xsr_writer_open): 0 or -errno from fstat. */
int xsr_sink_fd(struct xsr_sink *snk, int fd);
/* Write all of @iov (@n entries, consumed) at @off or appended: 0 or -errno. */
int xsr_sink_writev(struct xsr_sink *snk, struct iovec *iov, int n, uint64_t off, bool positional);
/* ---- messages ---- */
void xsr_fmt(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* struct xsr_finding: no location; a location (@section may be NULL). */
void xsr_finding_clear(struct xsr_finding *f);
void xsr_finding_set(struct xsr_finding *f, const char *section, uint64_t offset, uint64_t pfn);
/* The offset a message names by the "offset 0x40: ..." convention, or XSR_NO_OFFSET. */
uint64_t xsr_msg_offset(const char *msg);

/* ---- notes ---- */
/* Octets of the VMCOREINFO note for @len octets of text (0 when none). */
uint64_t xsr_vmci_note_size(uint64_t len);
void xsr_vmci_note(uint8_t *out, const void *text, uint32_t len);
/*
 * NOTES body: one NT_PRSTATUS per vCPU, then at most one VMCOREINFO note;
 * with @xen (XSR_FF_XEN_MACHINE_PADDR): NT_PRSTATUS per vCPU, then either
 * nothing or one QEMU note per vCPU and the VMCOREINFO note, then the Xen
 * CRASH_INFO note, whose p2m frame-list-list mfn goes to *@xen_fll.
 */
int xsr_notes_check(const uint8_t *body, uint64_t len, uint32_t nr_vcpus, bool xen, uint64_t *xen_fll,
		    const char **why);

/* ---- vCPU ---- */
void xsr_note_prstatus(const struct xsr_x86_vcpu *r, uint8_t note[XSR_NOTE_SIZE]);

/* ---- Xen PV guests laid out for crash (xenpv.c) ---- */
struct xsr_xen_load {
	uint64_t pfn, mfn, count; /* one PT_LOAD: p_vaddr = pfn << 12, p_paddr = mfn << 12 */
};
struct xsr_xen_layout {
	struct xsr_xen_p2m_tree hdr;
	uint64_t *tree;              /* npages pages: fll, frame lists, leaves */
	uint64_t npages;
	struct xsr_xen_load *loads;  /* in pfn order, each inside one memory run */
	uint32_t nr_loads;
};
/*
 * The layout for these runs and map: 0, 1 when it does not fit (too many
 * loads or frame lists, a machine frame used twice; *why says which; the
 * image is then written without it), or XSR_E_NOMEM.
 */
int xsr_xen_layout_make(const struct xsr_memrun *runs, uint32_t nruns, const struct xsr_xen_pv *pv,
			struct xsr_xen_layout *out, const char **why);
/* Re-make the layout from a tree section body and check the body is exactly it. */
int xsr_xen_layout_from_tree(const struct xsr_memrun *runs, uint32_t nruns, const void *body, uint64_t len,
			     struct xsr_xen_layout *out, const char **why);
/* Writer parameters from a tree section body (pointing into @body, which must be 8-aligned). */
int xsr_xen_tree_params(const void *body, uint64_t len, struct xsr_xen_pv *pv, const char **why);
void xsr_xen_layout_free(struct xsr_xen_layout *l);
void xsr_qemu_note(const struct xsr_x86_vcpu *r, uint64_t kernel_gs_base, uint8_t out[XSR_QEMU_NOTE_SIZE]);
void xsr_xen_note(uint32_t major, uint32_t minor, uint64_t fll_mfn, uint8_t out[XSR_XEN_NOTE_SIZE]);
/* Length of the VMCOREINFO text a page starts with ("OSRELEASE=", printable, PAGESIZE=), or 0. */
uint32_t xsr_vmci_in_page(const uint8_t *page);

/* ---- memmap ---- */
/* Validate a memmap body: sorted, disjoint, non-empty runs, pfn limits. */
int xsr_memmap_check(const struct xsr_memrun *runs, uint64_t n, uint64_t *total, char *why,
		     size_t whylen);
/* Slot of @pfn, or -1.  @base[i] = first slot of run i. */
int64_t xsr_memmap_slot(const struct xsr_memrun *runs, const uint64_t *base, uint32_t n,
			uint64_t pfn);

/* ---- compression of page batches ---- */
/* Returns compressed length (> 0) or 0 if incompressible / failure. */
/* ---- sparse bit set (bits.c): memory follows the bits set, not the range ---- */
struct xsr_bits {
	void *root;
	unsigned levels;   /* node levels above the leaves */
	uint64_t *last;    /* the leaf of the last access, and its key */
	uint64_t last_key;
};
void xsr_bits_init(struct xsr_bits *b, uint64_t n); /* indices 0 .. n-1 */
bool xsr_bits_get(struct xsr_bits *b, uint64_t i);
int xsr_bits_put(struct xsr_bits *b, uint64_t i, bool v); /* 0 or -ENOMEM */
void xsr_bits_free(struct xsr_bits *b);

size_t xsr_compress(int algo, const void *src, size_t len, void *dst, size_t cap);
size_t xsr_compress_bound(int algo, size_t len);
/* 0 if exactly @dlen octets came out. */
int xsr_decompress(int algo, const void *src, size_t len, void *dst, size_t dlen);

#endif
