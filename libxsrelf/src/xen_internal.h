/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Xen compatibility: `xsr import` of xl save files, libxl v2 / libxc v2-v4
 * streams and xc_core dumps, `xsr export` back to xl / libxc.
 *
 * The mapping is specified in docs/xen-compat.md.  In short: every record of
 * the source except page data is kept verbatim, in source order, in one
 * PASSTHRU section each (body: struct xen_pt_hdr, then the record's own
 * octets); page data goes to the page slots with the Xen pfn type in the
 * index; typed sections (CONFIG, VCPU, DOMCTX, P2M, XENSTORE, EMULATOR) are
 * written in addition so that gdb and `xsr info` understand the image.
 * Export replays the PASSTHRU sequence and writes the final pages where the
 * placeholder stands, so import -> export -> import gives identical images.
 */
#ifndef XSR_XENCOMPAT_H
#define XSR_XENCOMPAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* PASSTHRU body header of an imported Xen item.  Little-endian. */
struct xen_pt_hdr {
	uint32_t type;   /* the foreign record type (libxc/libxl rhdr.type), see origin */
	uint32_t length; /* octets of the foreign record body that follow */
	uint16_t origin; /* enum xen_pt_origin */
	uint16_t flags;  /* XEN_PT_* */
	uint32_t seq;    /* 0, 1, 2, ...: position among the image's PASSTHRU items */
};
_Static_assert(sizeof(struct xen_pt_hdr) == 16, "xen_pt_hdr");

enum xen_pt_origin {
	XEN_PT_XL_HEADER = 1,    /* type 0: the xl save-file header and its optional data */
	XEN_PT_LIBXL_HEADER = 2, /* type 0: the 16-octet libxl stream header */
	XEN_PT_LIBXL_RECORD = 3, /* type = libxl record type, body = record body */
	XEN_PT_LIBXC_HEADER = 4, /* type 0: image header (24) + domain header (16) */
	XEN_PT_LIBXC_RECORD = 5, /* type = libxc record type, body = record body */
	XEN_PT_XC_CORE = 6,      /* type = section index (0: the Elf64_Ehdr); body = Shdr + contents */
};

/*
 * flags: PAGES marks the placeholder where export writes every page of the
 * image as PAGE_DATA records (libxc) or the .xen_pages contents (xc_core);
 * the body is empty (libxc) or the section header (xc_core).
 */
#define XEN_PT_PAGES 0x1u
#define XEN_PT_KNOWN_FLAGS XEN_PT_PAGES

/* Facts from the Xen 4.17 specs (docs/specs/libxc-migration-stream.pandoc and friends). */
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

/* PAGE_DATA pfn entries. */
#define XEN_PFN_MASK UINT64_C(0x000fffffffffffff)
#define XEN_PFN_RESERVED UINT64_C(0x0ff0000000000000)
#define XEN_PFN_TYPE_SHIFT 60
#define XEN_PT_BROKEN 0xdu
#define XEN_PT_XALLOC 0xeu
#define XEN_PT_XTAB 0xfu

/* Does a pfn of Xen type @t (bits 63..60) carry 4096 octets of data? */
static inline int xen_type_has_data(unsigned t)
{
	return (t & 7u) <= 4u && t != 8u && t < XEN_PT_BROKEN;
}
/* Is @t a type a Xen 4.17 stream may carry (verify-stream-v2 refuses 5..8)? */
static inline int xen_type_valid(unsigned t)
{
	return t <= 4u || (t >= 9u && t <= 0xfu);
}

/* Name of a libxc record type for stream version @version ("x86 PV vcpu basic"). */
const char *xen_libxc_rec_name(uint32_t version, uint32_t type);
const char *xen_libxl_rec_name(uint32_t type);
/*
 * 1 if Xen 4.17's restore and verify-stream-v2 accept a libxc record of
 * @type in a stream of @version (anything else is "foreign": a proposal that
 * never reached upstream, a back-channel record, or an unknown type).
 */
int xen_libxc_rec_upstream(uint32_t version, uint32_t type);

/* One imported Xen item: its PASSTHRU header and the image section holding it. */
struct xen_pt_item {
	struct xen_pt_hdr h;
	uint32_t sec; /* ELF section index in the image */
};

/*
 * The PASSTHRU items of @img in order, each checked (known origin and
 * flags, length, seq 0, 1, 2, ...).  *items is malloc'd (caller frees; NULL
 * on failure), *n may be 0 (an image not made by `xsr import`), *xc_version
 * is the libxc stream version or 0.  Returns 0, or -1 with a message naming
 * the section in @err.
 */
struct xsr_image;
int xen_pt_collect(struct xsr_image *img, struct xen_pt_item **items, uint32_t *n, uint32_t *xc_version, char *err,
		   size_t errlen);

/*
 * The engines behind `xsr import` and `xsr export`, for the Xen backend's
 * save and restore.  import: @in_fd a seekable xl file / libxl / libxc
 * stream / xc_core, written to @out_fd (a stream if @stream).  export: the
 * seekable xsrelf image @img_fd as an xl save file onto @out_fd (a pipe is
 * fine); records Xen 4.17 cannot read are refused.  Both return 0 or -1
 * with a message in @err; neither closes its descriptors.
 */
/*
 * `xsr export --format xc-core`: @img (seekable) of a Xen guest written to
 * @out_fd as `xl dump-core` writes it (docs/xen-compat.md); the fd may be a
 * pipe, it is written in order.  Returns 0, or -1 with the reason printed
 * ("xsr export: @name: ...").
 */
struct xsr_progress;
/* @pg: progress of the pages written (cli.h), or NULL. */
int xen_export_xccore(struct xsr_image *img, const char *name, int out_fd, struct xsr_progress *pg);
int xen_import_fd(int in_fd, int out_fd, int stream, char *err, size_t errlen);

/*
 * xen_import_fd with more say over the image: @kind (0: save or core, as the
 * input is; XSR_KIND_MIGRATION for `xsr migrate` of a Xen domain), @compress
 * (stream page batches) and @begin, called once the writer has written the
 * header, PRODUCER and MEMMAP and before any other record (migration: send
 * MIG_BEGIN and wait for the receiver's HELLO); its < 0 ends the import with
 * @err as it left it.
 */
struct xsr_writer;
struct xen_import_opts {
	int stream;
	uint32_t kind;
	uint8_t compress;
	int (*begin)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *ctx;
	/*
	 * Non-NULL: @in_fd is still being written (libxl's save into a memfd)
	 * and is complete once *follow_done is set.  The import reads it as it
	 * grows; a 64-bit PV libxc stream's pages go to the writer as they
	 * arrive (planned with @vcpus_hint vCPUs and the run X86_PV_P2M_FRAMES
	 * announces), so the transcode overlaps the save.  A stream that turns
	 * out otherwise is written the usual way at the end.
	 */
	const atomic_int *follow_done;
	uint32_t vcpus_hint;
	int *overlapped; /* if not NULL: set to 1 when the pages went to the writer as they arrived */
	/*
	 * Native save (backends/xen_save.c): the PAGE_DATA records of @in_fd
	 * carry no data (their data areas are holes).  @pages fills @ptrs with
	 * the @count pages of one record (@pfns with their type bits; NULL for a
	 * type without data) and is called again with @ptrs NULL once the writer
	 * has them.  The pages go to the writer as records come, as in follow
	 * mode; a stream off that plan is an error.
	 */
	int (*pages)(void *pctx, const uint64_t *pfns, uint32_t count, const void **ptrs, char *err, size_t errlen);
	void *pctx;
	/* Called as pages go to the writer (done, total); NULL: none.  The import prints nothing. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};
int xen_import_fd_opts(int in_fd, int out_fd, const struct xen_import_opts *o, char *err, size_t errlen);
/*
 * The image on @img_fd as an xl save file into @out_fd (xsr export's default
 * format); 0, or <0 with @err set: -EPIPE when the failure was that @out_fd's
 * reader went away, -1 for any other.  @progress (NULL: none) is told the
 * pages written (done, total) as they go.
 */
int xen_export_fd(int img_fd, int out_fd, const char *name, void (*progress)(void *ctx, uint64_t done, uint64_t total),
		  void *pctx, char *err, size_t errlen);

#endif
