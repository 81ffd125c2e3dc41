/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: Xen's formats (the first foreign-format module, xsrelf/foreign.h).
 *
 * Import: an xl save file, a libxl v2 stream, a libxc v2/v3 (and the v4
 * proposal's) migration stream or an `xl dump-core` (xc_core) file -> one
 * xsrelf image, through the one writer.  Every item of the source except
 * page data is kept verbatim, in source order, in one PASSTHRU section each
 * (struct xsr_passthru_hdr, xsrelf/format.h); page data goes to the page
 * slots with the Xen pfn type in the index; typed sections (CONFIG, VCPU,
 * DOMCTX, P2M, XENSTORE, EMULATOR) are written beside them so that gdb and
 * any reader understand the image.
 *
 * Export: such an image back to an xl save file or a bare libxc stream (the
 * PASSTHRU items replayed, the image's pages written as PAGE_DATA records
 * where the placeholder stands: import -> export -> import gives the same
 * image), or any image of a 64-bit Xen guest as an xc_core file, the way
 * `xl dump-core` writes it.  The mapping is docs/xen-compat.md.
 *
 * The conventions of xsrelf/foreign.h hold: zero-initialised options that
 * begin with struct xsr_foreign_cb, optional stats, 0 or a negative enum
 * xsr_err with a message naming the offset or section, nothing printed.
 */
#ifndef XSRELF_XEN_H
#define XSRELF_XEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <xsrelf/foreign.h>
#include <xsrelf/vcpu.h>
#include <xsrelf/xsrelf.h>

struct xsr_image;
struct xsr_writer;

/* ------------------------------------------------------------------ */
/* Import                                                              */
/* ------------------------------------------------------------------ */

struct xsr_xen_import_opts {
	struct xsr_foreign_cb cb; /* progress: pages written (done, total) */
	/*
	 * XSR_LAYOUT_SEEKABLE (@out_fd: a regular file open read-write, else
	 * refused), XSR_LAYOUT_STREAM, or 0: as the writer decides (seekable on
	 * such a file at offset 0, else a stream; xsrelf/writer.h).
	 */
	int layout;
	uint32_t kind;            /* 0: XSR_KIND_SAVE, or XSR_KIND_CORE for an xc_core input; else this kind */
	uint8_t compress;         /* enum xsr_compress of a stream's page batches */
	/*
	 * The members below are for xsr's own Xen backend and migration; a
	 * program converting files leaves them zero.
	 *
	 * @begin: called once the writer has written the header, PRODUCER and
	 * MEMMAP and before any other record (migration: send MIG_BEGIN and wait
	 * for the receiver); its < 0 ends the import with @err as it left it.
	 */
	int (*begin)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *begin_ctx;
	/*
	 * Non-NULL (fd import only): the input is still being written (libxl's
	 * save into a memfd) and is complete once *follow_done is set.  It is
	 * read as it grows; a 64-bit PV libxc stream's pages go to the writer as
	 * they arrive (planned with @vcpus_hint vCPUs and the run
	 * X86_PV_P2M_FRAMES announces), so the transcode overlaps the save.  A
	 * stream that turns out otherwise is written the usual way at the end.
	 */
	const atomic_int *follow_done;
	uint32_t vcpus_hint;
	/*
	 * Native save: the PAGE_DATA records of the input carry no data (their
	 * data areas are holes).  @pages fills @ptrs with the @count pages of
	 * one record (@pfns with their type bits; NULL for a type without data)
	 * and is called again with @ptrs NULL once the writer has them.  The
	 * pages go to the writer as records come, as in follow mode; a stream
	 * off that plan is an error.
	 */
	int (*pages)(void *ctx, const uint64_t *pfns, uint32_t count, const void **ptrs, char *err, size_t errlen);
	void *pages_ctx;
	/*
	 * @end: called once the input is complete and every section of it is
	 * written, before the writer closes (a save: the domain is suspended by
	 * now), e.g. to add the domain's xenstore subtree; its < 0 ends the
	 * import with @err as it left it.
	 */
	int (*end)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *end_ctx;
};

struct xsr_xen_import_stats {
	const char *format; /* "xl save file", "libxl v2 stream", "libxc stream", "xc_core dump" (static) */
	uint64_t in_size;   /* octets of input read */
	uint32_t nr_vcpus;
	uint64_t nr_pages;  /* pfns in the image */
	int overlapped;     /* follow mode: the pages went to the writer as they arrived */
};

/*
 * The Xen save, stream or dump on @in_fd (a regular file: seekable; a pipe
 * is the caller's to spool first) as an xsrelf image onto @out_fd: a
 * seekable image needs a regular file, a stream goes anywhere.  Neither fd
 * is closed.  0, or a negative enum xsr_err with the reason in @err.  @o
 * and @st may be NULL.
 */
XSR_API int xsr_xen_import_fd(int in_fd, int out_fd, const struct xsr_xen_import_opts *o,
			      struct xsr_xen_import_stats *st, char *err, size_t errlen);
/* The same from @len octets at @buf (kept valid and unchanged during the call); follow_done is refused. */
XSR_API int xsr_xen_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_xen_import_opts *o,
			       struct xsr_xen_import_stats *st, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Export                                                              */
/* ------------------------------------------------------------------ */

enum xsr_xen_format {
	XSR_XEN_FORMAT_XL = 0,      /* an xl save file, what `xl restore` reads */
	XSR_XEN_FORMAT_LIBXC = 1,   /* a bare libxc migration stream */
	XSR_XEN_FORMAT_XC_CORE = 2, /* an `xl dump-core` file, what crash reads */
};

/* Records Xen 4.17 cannot read (never-merged proposals, back-channel and unknown records, a v4 header). */
enum xsr_xen_foreign {
	XSR_XEN_FOREIGN_REFUSE = 0, /* fail, with one note per such record */
	XSR_XEN_FOREIGN_DROP = 1,   /* leave them out (a v4 header is written as v3), one note each */
	XSR_XEN_FOREIGN_KEEP = 2,   /* write them verbatim */
};

struct xsr_xen_export_opts {
	struct xsr_foreign_cb cb; /* progress: pages written (done, total); notes: see enum xsr_xen_foreign */
	int format;               /* enum xsr_xen_format */
	int foreign;              /* enum xsr_xen_foreign (xl and libxc only) */
	const char *name;         /* the image, as notes name it; NULL: "image" */
};

struct xsr_xen_export_stats {
	uint64_t bytes;    /* octets written to the output */
	uint32_t dropped;  /* records left out (XSR_XEN_FOREIGN_DROP) */
	int epipe;         /* the failure was that the output's reader went away (EPIPE) */
};

/*
 * The seekable image @img (an opened handle, xsrelf/reader.h) onto @out_fd
 * in @o->format, written in order (a pipe is fine).  @img_fd: the fd @img
 * reads, or -1; given, and @out_fd a pipe, page data is spliced from the
 * image's page cache instead of copied (the octets are the same).  xl and
 * libxc need an image imported from an xl save or a libxc stream; xc-core
 * takes any image of a 64-bit Xen guest.  0, or a negative enum xsr_err
 * with the reason in @err.  Neither fd is closed; @img stays open.
 */
XSR_API int xsr_xen_export(struct xsr_image *img, int img_fd, int out_fd, const struct xsr_xen_export_opts *o,
			   struct xsr_xen_export_stats *st, char *err, size_t errlen);
/*
 * The same for the seekable image on @img_fd, opened and closed here
 * without checking a Xen crash layout's PT_LOADs (pages are read by the
 * index): a restore into Xen waits on this open.
 */
XSR_API int xsr_xen_export_fd(int img_fd, int out_fd, const struct xsr_xen_export_opts *o,
			      struct xsr_xen_export_stats *st, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Record names, for messages                                          */
/* ------------------------------------------------------------------ */

/* Name of a libxc record type in a stream of @version ("X86_PV_VCPU_BASIC", "unknown"); static. */
XSR_API const char *xsr_xen_libxc_rec_name(uint32_t version, uint32_t type);
/* Name of a libxl record type ("EMULATOR_CONTEXT", "unknown"); static. */
XSR_API const char *xsr_xen_libxl_rec_name(uint32_t type);
/*
 * 1 if Xen 4.17's restore and verify-stream-v2 accept a libxc record of
 * @type in a stream of @version; 0 for a foreign one (a proposal that never
 * reached upstream, a back-channel record, an unknown type).
 */
XSR_API int xsr_xen_libxc_rec_upstream(uint32_t version, uint32_t type);

/* ------------------------------------------------------------------ */
/* vCPU contexts -> struct xsr_vcpu_state (registers for VCPU, NT_PRSTATUS) */
/* ------------------------------------------------------------------ */

/* A machine frame to a pfn: 0, or -1 when @mfn is not the guest's. */
typedef int (*xsr_xen_m2p_fn)(void *ctx, uint64_t mfn, uint64_t *pfn);
/* vCPU @v from an HVM_CONTEXT blob's CPU (and LAPIC_REGS) records; NULL, or a static reason. */
XSR_API const char *xsr_xen_hvm_vcpu(const uint8_t *blob, uint64_t len, uint32_t v, struct xsr_vcpu_state *st);
/*
 * A PV vcpu_guest_context of @width (4 or 8) octets per word.  With @m2p,
 * cr3 is a machine frame (a live domain, xc_core of a PV guest) and is
 * translated.  NULL, or a static reason.
 */
XSR_API const char *xsr_xen_pv_basic(const uint8_t *ctx, uint64_t len, unsigned width, struct xsr_vcpu_state *st,
				     xsr_xen_m2p_fn m2p, void *m2p_ctx);

/* ------------------------------------------------------------------ */
/* Facts of Xen's formats (Xen 4.17's docs/specs and xl), for tools     */
/* that write or read them beside the library (xsr's Xen backend).     */
/* ------------------------------------------------------------------ */
#define XEN_REC_LENGTH_MAX (128u << 20)
#define XEN_XL_MAGIC "Xen saved domain, xl format\n \0 \r"
#define XEN_XL_BYTEORDER 0x01020304u
#define XEN_XL_FLAG_JSON 0x1u
#define XEN_XL_FLAG_STREAMV2 0x2u
#define XEN_LIBXL_IDENT UINT64_C(0x4c6962786c466d74) /* "LibxlFmt", big-endian */
#define XEN_LIBXC_MARKER UINT64_C(0xffffffffffffffff)
#define XEN_LIBXC_ID 0x58454e46u /* "XENF", big-endian */
#define XEN_DHDR_X86_PV 1u
#define XEN_DHDR_X86_HVM 2u

enum xen_libxc_rec {
	XEN_RT_END = 0x00, XEN_RT_PAGE_DATA = 0x01, XEN_RT_X86_PV_INFO = 0x02,
	XEN_RT_X86_PV_P2M_FRAMES = 0x03, XEN_RT_X86_PV_VCPU_BASIC = 0x04,
	XEN_RT_X86_PV_VCPU_EXTENDED = 0x05, XEN_RT_X86_PV_VCPU_XSAVE = 0x06,
	XEN_RT_SHARED_INFO = 0x07, XEN_RT_X86_TSC_INFO = 0x08, XEN_RT_HVM_CONTEXT = 0x09,
	XEN_RT_HVM_PARAMS = 0x0a, XEN_RT_TOOLSTACK = 0x0b, XEN_RT_X86_PV_VCPU_MSRS = 0x0c,
	XEN_RT_VERIFY = 0x0d, XEN_RT_CHECKPOINT = 0x0e, XEN_RT_CHECKPOINT_DIRTY_PFN_LIST = 0x0f,
	XEN_RT_STATIC_DATA_END = 0x10, XEN_RT_X86_CPUID_POLICY = 0x11, XEN_RT_X86_MSR_POLICY = 0x12,
	XEN_RT_DOMAIN_CONTEXT = 0x13, /* v4 proposal (seed 001), never upstream */
	/* v2 post-copy proposal (seed 002), never upstream: same numbers as v3's 0x10.. */
	XEN_RT_POSTCOPY_BEGIN = 0x10, XEN_RT_POSTCOPY_PFNS_BEGIN = 0x11, XEN_RT_POSTCOPY_PFNS = 0x12,
	XEN_RT_POSTCOPY_TRANSITION = 0x13, XEN_RT_POSTCOPY_PAGE_DATA = 0x14,
	XEN_RT_POSTCOPY_FAULT = 0x15, XEN_RT_POSTCOPY_COMPLETE = 0x16,
};
#define XEN_RT_OPTIONAL 0x80000000u

enum xen_libxl_rec {
	XEN_LT_END = 0, XEN_LT_LIBXC_CONTEXT = 1, XEN_LT_EMULATOR_XENSTORE_DATA = 2,
	XEN_LT_EMULATOR_CONTEXT = 3, XEN_LT_CHECKPOINT_END = 4, XEN_LT_CHECKPOINT_STATE = 5,
};

/* PAGE_DATA pfn entries: pfn in bits 51..0, type in bits 63..60. */
#define XEN_PFN_MASK UINT64_C(0x000fffffffffffff)
#define XEN_PFN_RESERVED UINT64_C(0x0ff0000000000000)
#define XEN_PFN_TYPE_SHIFT 60
#define XEN_PT_BROKEN 0xdu
#define XEN_PT_XALLOC 0xeu
#define XEN_PT_XTAB 0xfu

/* Does a pfn of Xen type @t (bits 63..60) carry 4096 octets of data? */
static inline int xsr_xen_type_has_data(unsigned t)
{
	return (t & 7u) <= 4u && t != 8u && t < XEN_PT_BROKEN;
}
/* Is @t a type a Xen 4.17 stream may carry (verify-stream-v2 refuses 5..8)? */
static inline int xsr_xen_type_valid(unsigned t)
{
	return t <= 4u || (t >= 9u && t <= 0xfu);
}

#endif
