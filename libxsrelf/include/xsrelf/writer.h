/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: the one writer.
 *
 * The caller makes the same calls whatever the target.  The writer looks at
 * the fd: a regular file open read-write at offset 0, without O_APPEND,
 * gets the ELF core layout with fixed page slots (the writer reads its page
 * index back); anything else (a pipe, a socket, stdout redirected to a file,
 * which is write-only) gets the streamed layout (records, offsets set to
 * XSR_OFF_STREAMED).  Asking for XSR_LAYOUT_SEEKABLE on any other fd fails
 * with XSR_E_INVAL before anything is written.  Memory use does not depend on guest size: page data is
 * written with pwritev/writev straight from the caller's buffers, and the
 * seekable page index lives in the file.
 *
 * Call order:
 *   xsr_writer_open()
 *   any number of, in any order:
 *     xsr_writer_add_section()    config, p2m, domctx, xenstore, ...
 *     xsr_writer_put_pages()      pages; a later put of a pfn supersedes
 *     xsr_writer_set_vcpu()       once per vCPU (required for each vCPU)
 *   xsr_writer_close()            finish; or xsr_writer_abort() to give up
 */
#ifndef XSRELF_WRITER_H
#define XSRELF_WRITER_H

#include <sys/uio.h>

#include <xsrelf/vcpu.h>
#include <xsrelf/xsrelf.h>

struct xsr_writer;
struct xsr_sink; /* xsrelf/io.h */

struct xsr_vload {
	uint64_t vaddr; /* page aligned */
	uint64_t paddr; /* page aligned, [paddr, paddr+len) inside one run */
	uint64_t len;   /* octets, page multiple */
	uint32_t flags; /* PF_R | PF_W | PF_X */
	uint32_t reserved;
};

/*
 * A 64-bit Xen PV guest: which machine frame each pfn's page tables name, so
 * that a seekable image is laid out for crash (docs/xsrelf-format.md, "Xen PV
 * guests and crash").
 */
struct xsr_xen_pv {
	uint32_t xen_major;   /* hypervisor version, 0.0 when unknown */
	uint32_t xen_minor;
	uint64_t nr_pfns;     /* entries of mfn[] */
	/*
	 * mfn[pfn] = the machine frame of pfn, XSR_XEN_NO_MFN for none (such a
	 * populated pfn gets no PT_LOAD).  NULL: the image's page tables hold
	 * pfns (an xl save: Xen normalises them), machine frame = pfn.
	 */
	const uint64_t *mfn;
};

struct xsr_writer_params {
	uint16_t machine;      /* EM_X86_64 (only value supported now) */
	uint8_t kind;          /* enum xsr_kind */
	uint8_t layout;        /* 0: decide from the fd; else enum xsr_layout */
	uint32_t flags;        /* XSR_FF_* */
	uint32_t nr_vcpus;     /* 1 ..= XSR_MAX_VCPUS */
	uint32_t nr_runs;      /* 0 ..= XSR_MAX_RUNS */
	const struct xsr_memrun *runs; /* sorted, disjoint; copied */
	const char *hypervisor;         /* "kvm", "xen", "synthetic" */
	const char *hypervisor_version; /* may be NULL */
	uint8_t compress;      /* enum xsr_compress, stream page batches only */
	/*
	 * The guest's VMCOREINFO text, when known: written as the VMCOREINFO
	 * section and as a "VMCOREINFO" note after the NT_PRSTATUS notes in
	 * PT_NOTE, where crash looks for it.  NULL: none.
	 */
	const void *vmcoreinfo;
	uint32_t vmcoreinfo_len; /* 1 ..= XSR_MAX_VMCOREINFO */
	/* Copy this producer section verbatim instead of making one (conversion). */
	const struct xsr_producer *producer;
	/*
	 * Seekable only, paging view: PT_LOADs are these guest-virtual mappings
	 * (each inside one run) instead of one per run.  NULL: physical view.
	 */
	const struct xsr_vload *vloads;
	uint32_t nr_vloads;
	/*
	 * A Xen PV guest (copied at open; NULL: not).  Seekable, physical view:
	 * the writer sets XSR_FF_XEN_MACHINE_PADDR, writes PT_LOADs by machine
	 * address, the XEN_P2M_TREE section, the QEMU and Xen notes, and, when
	 * @vmcoreinfo is NULL, looks for the VMCOREINFO text in the pages put
	 * (a page that starts with "OSRELEASE=").  Stream: the writer emits the
	 * XEN_P2M_TREE record after MEMMAP, so that a conversion to seekable
	 * makes the same layout.  When the layout does not fit (more than 65532
	 * PT_LOADs, more than 512 frame lists, a machine frame named twice) the
	 * image is written as if @xen_pv were NULL.  Ignored with @vloads.
	 */
	const struct xsr_xen_pv *xen_pv;
};


/*
 * Start an image on @fd (not closed by the writer).  A seekable target is
 * truncated to zero first.  On failure *out is NULL and, if @err is not NULL,
 * a message is copied there.
 */
XSR_API int xsr_writer_open(struct xsr_writer **out, int fd,
			    const struct xsr_writer_params *p, char *err, size_t errlen);

/*
 * Start an image on @snk (xsrelf/io.h), which stays the caller's: close it
 * after the writer.  Seekable or streamed is the sink's property, decided
 * as for an fd: a seekable sink (a fresh one, unless @p->layout says)
 * gets the seekable layout, any other the stream.  Every write goes through
 * the library's write fault-injection point.  (XSRELF_1.5)
 */
XSR_API int xsr_writer_open_sink(struct xsr_writer **out, struct xsr_sink *snk, const struct xsr_writer_params *p,
				 char *err, size_t errlen);

/* The layout chosen (enum xsr_layout). */
XSR_API int xsr_writer_layout(const struct xsr_writer *w);

/*
 * Add one section/record.  @code is enum xsr_sec, not one the writer makes
 * itself (xsr_section_writer_made(): END, NOTES, MEMMAP, PRODUCER, PAGES,
 * INDEX, STRTAB, INTEGRITY, VMCOREINFO, XEN_P2M_TREE), @optional sets
 * XSR_SHT_OPTIONAL, @info is sh_info (vCPU id), @entsize sh_entsize.  The
 * ELF section name follows from the code (".xsr.config"), so a conversion
 * to a stream and back loses nothing.
 */
XSR_API int xsr_writer_add_section(struct xsr_writer *w, uint32_t code, int optional,
				   uint32_t info, uint64_t entsize, const struct iovec *iov,
				   int iovcnt);

/* Convenience: one buffer. */
XSR_API int xsr_writer_add(struct xsr_writer *w, uint32_t code, uint32_t info,
			   const void *body, uint64_t len);

/*
 * Write @n pages.  pfns[i] is a pfn (bits 51..0) optionally with a Xen type
 * in bits 63..60; pages[i] points to 4096 octets, or is NULL for a page the
 * caller knows is zero.  Pages are tested for all-zero and written as holes
 * (seekable) or data-less entries (stream).  Every pfn must lie in a run.
 */
XSR_API int xsr_writer_put_pages(struct xsr_writer *w, const uint64_t *pfns, uint32_t n,
				 const void *const *pages);

/* Record vCPU @st->r.vcpu_id: its XSR_SEC_VCPU section and NT_PRSTATUS. */
XSR_API int xsr_writer_set_vcpu(struct xsr_writer *w, const struct xsr_vcpu_state *st);

/* Statistics so far. */
struct xsr_writer_stats {
	uint64_t bytes;        /* octets written to the fd */
	uint64_t pages;        /* page puts with data */
	uint64_t zero_pages;   /* page puts that were zero */
	uint64_t records;
};
XSR_API void xsr_writer_stats(const struct xsr_writer *w, struct xsr_writer_stats *st);

/*
 * xsr_writer_close(), and on success *@st holds the final statistics, with
 * bytes the length of the image: the file's size for the seekable layout
 * (zero pages are holes, counted), every octet for a stream.  The records
 * that close writes are counted, which xsr_writer_stats() before close
 * cannot show.
 */
XSR_API int xsr_writer_close_stats(struct xsr_writer *w, struct xsr_writer_stats *st, char *err,
				   size_t errlen);

/* Finish the image and free @w.  Returns 0 or <0 (message copied to @err). */
XSR_API int xsr_writer_close(struct xsr_writer *w, char *err, size_t errlen);

/* Free @w without finishing (the output is then incomplete).  NULL is fine. */
XSR_API void xsr_writer_abort(struct xsr_writer *w);

/* Message for the last failure on @w. */
XSR_API const char *xsr_writer_error(const struct xsr_writer *w);

#endif
