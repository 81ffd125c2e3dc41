/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: readers.
 *
 * xsr_image_*: random access to a seekable image (parsed with elfutils
 * libelf, every offset and length checked against the file size).
 * xsr_stream_*: record-by-record reading of a streamed image from any fd,
 * with bounded memory and callbacks.
 *
 * Both read from an fd or from a buffer in memory (*_open_mem).  A buffer is
 * borrowed: it must stay valid and unchanged until close, and its length is
 * the file's size.  The reader reads it in place: no file is mapped, and
 * page data is copied only where the caller asks for a copy (read_page,
 * read_pages, map_run).
 */
#ifndef XSRELF_READER_H
#define XSRELF_READER_H

#include <xsrelf/vcpu.h>
#include <xsrelf/xsrelf.h>

/* ---------------- random access ---------------- */

struct xsr_image;
struct xsr_source; /* xsrelf/io.h */

struct xsr_section_info {
	uint32_t index;    /* ELF section index */
	uint32_t sh_type;
	uint32_t code;     /* sh_type & XSR_SHT_CODE_MASK, or ~0 for non-xsr */
	uint32_t info;     /* sh_info (vCPU id) */
	uint64_t offset;   /* body offset in the file */
	uint64_t size;     /* body octets */
	uint64_t entsize;
	const char *name;  /* borrowed until close */
};

/*
 * The layout an image's first @len octets claim: XSR_LAYOUT_SEEKABLE or
 * XSR_LAYOUT_STREAM from the file header's layout field, or 0 when @len does
 * not reach that field or it holds neither.  Only a sniff, to pick a reader:
 * the reader checks the headers in full.  (XSRELF_1.5)
 */
XSR_API int xsr_sniff_layout(const void *hdr, size_t len);

/*
 * Open a seekable image.  Checks the ELF and file headers, the section and
 * program header tables against the file size, and the whole structure as
 * xsr_image_verify does (every record, the integrity section, the vCPU
 * sections, padding), so that every reader refuses what verify reports;
 * page data is verified per page on read.  @fd stays
 * owned by the caller and must stay open until close.
 */
XSR_API int xsr_image_open(struct xsr_image **out, int fd, char *err, size_t errlen);

/*
 * As xsr_image_open, with @flags:
 *  XSR_OPEN_NO_XEN_LAYOUT  a Xen machine-address image's PT_LOADs are not
 *      compared with the ones its memory map and p2m tree make (the dearest
 *      check of an open, ~15 ms for a 128 MiB guest in a TCG dom0).  The
 *      library reads pages through the memory map and the index, never the
 *      program headers, so this only matters to callers that hand the file
 *      to ELF tools; xsr restore's export does not.
 */
#define XSR_OPEN_NO_XEN_LAYOUT 0x1u
/*
 *  XSR_OPEN_NO_CHECK  skip the whole-structure check every open makes
 *      otherwise: every record's trailer, header copy and padding, the
 *      integrity section, the vCPU sections, and zero padding between
 *      regions (everything xsr_image_verify checks but page data).  Only
 *      for a caller that runs xsr_image_verify next and wants every problem
 *      reported, not the first: any other reader refuses what verify
 *      reports.
 */
#define XSR_OPEN_NO_CHECK 0x2u
XSR_API int xsr_image_open_flags(struct xsr_image **out, int fd, unsigned flags, char *err, size_t errlen);
/*
 * As xsr_image_open_flags, from the @len octets at @buf (a whole seekable
 * image; fewer octets than its tables name are refused as truncated, as a
 * short file is).  @buf is borrowed until close.  Pages are read from it by
 * copying; xsr_image_map_run copies the run into anonymous memory.
 */
XSR_API int xsr_image_open_mem(struct xsr_image **out, const void *buf, size_t len, unsigned flags, char *err,
			       size_t errlen);
/*
 * Open a seekable image from a source (xsrelf/io.h): an fd, memory, or the
 * caller's callbacks (a remote store).  Checks as xsr_image_open_flags.  A
 * source that cannot map has the image's metadata read into memory (not its
 * page slots, which are read when asked for); an I/O failure of a callback
 * source names the offset it failed at.  @src stays the caller's and must
 * stay open until close.  (XSRELF_1.5)
 */
XSR_API int xsr_image_open_source(struct xsr_image **out, struct xsr_source *src, unsigned flags, char *err,
				  size_t errlen);
XSR_API void xsr_image_close(struct xsr_image *img);
XSR_API const char *xsr_image_error(const struct xsr_image *img);

XSR_API const struct xsr_file_header *xsr_image_header(const struct xsr_image *img);
XSR_API uint32_t xsr_image_nsections(const struct xsr_image *img);
XSR_API int xsr_image_section(const struct xsr_image *img, uint32_t i, struct xsr_section_info *out);
/* First section of @code with sh_info == @info (or any info if @info == ~0u); <0 if none. */
XSR_API int xsr_image_find(const struct xsr_image *img, uint32_t code, uint32_t info,
			   struct xsr_section_info *out);
/* Read a whole section body (checksum verified); *body malloc'd, caller frees. */
XSR_API int xsr_image_read_section(struct xsr_image *img, uint32_t i, void **body, uint64_t *len);

XSR_API uint32_t xsr_image_nruns(const struct xsr_image *img);
XSR_API const struct xsr_memrun *xsr_image_runs(const struct xsr_image *img);
/* File offset of the run's first page slot. */
XSR_API uint64_t xsr_image_run_offset(const struct xsr_image *img, uint32_t run);

/*
 * Read the page @pfn into @buf (4096 octets) with one pread, verified against
 * the index.  *flags gets the index flags (XSR_IDX_*).  O(log runs).
 * XSR_E_RANGE if @pfn is not populated.
 */
XSR_API int xsr_image_read_page(struct xsr_image *img, uint64_t pfn, void *buf, uint32_t *flags);
/* Index entry of @pfn without reading data. */
XSR_API int xsr_image_page_entry(struct xsr_image *img, uint64_t pfn, struct xsr_index_entry *e);
/* Read @count index entries of run @run starting at slot @first. */
XSR_API int xsr_image_run_index(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count,
				struct xsr_index_entry *out);

/*
 * Verify the page index record's checksum (16 octets per page are read).
 * After this the index's zero flags can be trusted without reading the
 * zero pages' slots, as a full restore does.
 */
XSR_API int xsr_image_check_index(struct xsr_image *img);

/*
 * Read @count pages of run @run from slot @first into @buf with one pread,
 * each verified against its index entry (returned in @ent, @count entries).
 * Memory use does not depend on the image: the bulk path of conversion and
 * verification.
 */
XSR_API int xsr_image_read_pages(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count,
				 void *buf, struct xsr_index_entry *ent);

/*
 * Map run @run read/write and private (copy on write: writes never reach the
 * image): zero-copy restore.  Release with munmap(*addr, *len); the mapping
 * may outlive the handle.  From memory (xsr_image_open_mem) the run is copied
 * into anonymous memory, released the same way.
 */
XSR_API int xsr_image_map_run(struct xsr_image *img, uint32_t run, void **addr, uint64_t *len);

/* vCPU state of vCPU @vcpu (decoded and validated). */
XSR_API int xsr_image_vcpu(struct xsr_image *img, uint32_t vcpu, struct xsr_vcpu_state *st);

/*
 * Check everything: every record, every page against the index, the integrity
 * section, zero padding, and that the regions tile the file.  Each problem is
 * reported through @report (may be NULL); returns 0 intact, XSR_E_CHECKSUM or
 * XSR_E_FORMAT if damage was found, other <0 on I/O errors.
 */
typedef void (*xsr_report_fn)(void *ctx, const char *msg);
XSR_API int xsr_image_verify(struct xsr_image *img, xsr_report_fn report, void *ctx);

/*
 * Where a problem lies, for programs (xsr verify --json).  @section is the
 * name the seekable layout gives the section it lies in (".xsr.pages",
 * ".note", ".shstrtab"); a stream's records are named the same way, by
 * type (xsr_section_elf_name()), so that both layouts give one name.  It is
 * "" where the damage lies in no section (the file header, the header
 * tables, padding between regions) or is not known.  @offset is the file
 * offset (for a stream: the stream offset) of the damaged octets, or of the
 * record or page that holds them, XSR_NO_OFFSET when not known; @pfn the
 * page concerned or XSR_NO_PFN.  @code is an enum xsr_err and @message the
 * text the report callback or *_error() gives, borrowed for the call.
 */
#define XSR_NO_OFFSET UINT64_MAX
#define XSR_NO_PFN UINT64_MAX
struct xsr_finding {
	char section[64];
	uint64_t offset;
	uint64_t pfn;
	int code;
	const char *message;
};
typedef void (*xsr_finding_fn)(void *ctx, const struct xsr_finding *f);
/*
 * xsr_image_verify with each problem as a struct xsr_finding: the first 50
 * are given to @fn, and *@total (if not NULL) gets how many there were.
 */
XSR_API int xsr_image_verify_findings(struct xsr_image *img, xsr_finding_fn fn, void *ctx, uint64_t *total);
/* Where the last error of @img lies (@out->message: xsr_image_error()). */
XSR_API void xsr_image_error_at(const struct xsr_image *img, struct xsr_finding *out);
/*
 * xsr_image_open_flags that, when it fails, also says where (@where may be
 * NULL; its message is @err).  The image is never returned on failure, so
 * this is the only way to learn where an open found damage.
 */
XSR_API int xsr_image_open_where(struct xsr_image **out, int fd, unsigned flags, char *err, size_t errlen,
				 struct xsr_finding *where);

/* ---------------- streaming ---------------- */

struct xsr_stream;

/*
 * Callbacks; any may be NULL.  Returning <0 stops the stream with that code.
 * Bodies are borrowed for the duration of the call.
 */
struct xsr_stream_ops {
	int (*header)(void *ctx, const struct xsr_file_header *h);
	/* every record except PAGES and END, checksum verified */
	int (*section)(void *ctx, const struct xsr_record_header *rh, const void *body);
	/*
	 * A page batch: pfns[i] with type bits; data holds 4096 octets for each
	 * entry without XSR_PFN_ZERO, in order (decompressed); NULL when the
	 * batch was placed (xsr_stream_set_placement).
	 */
	int (*pages)(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data);
	int (*end)(void *ctx, const struct xsr_end *e);
};

XSR_API int xsr_stream_open(struct xsr_stream **out, int fd, char *err, size_t errlen);
/*
 * A stream from the @len octets at @buf, borrowed until close; the end of
 * the buffer is the end of the stream (XSR_E_TRUNCATED without END).  Record
 * bodies handed to callbacks point into @buf when it is 8-aligned.
 */
XSR_API int xsr_stream_open_mem(struct xsr_stream **out, const void *buf, size_t len, char *err, size_t errlen);
/* A stream from a source (xsrelf/io.h), read in order; @src must stay open until close.  (XSRELF_1.5) */
XSR_API int xsr_stream_open_source(struct xsr_stream **out, struct xsr_source *src, char *err, size_t errlen);
XSR_API void xsr_stream_close(struct xsr_stream *s);
XSR_API const char *xsr_stream_error(const struct xsr_stream *s);
/* Feed a prefix already read from the fd (e.g. while sniffing). */
XSR_API int xsr_stream_prefix(struct xsr_stream *s, const void *buf, size_t len);
/*
 * Page data straight to where it belongs (XSRELF_1.6): for each page with
 * data in an uncompressed PAGES record, @dest(@ctx, pfn) (pfn with its type
 * bits, inside the memory map) names 4096 octets where the reader puts the
 * page as it reads it from the source, without a copy through a buffer;
 * NULL for any page of a batch, or a batch whose destinations are scattered,
 * makes the reader read that batch the ordinary way.  A placed batch is
 * handed to ops->pages with @data NULL.  The batch header and pfns are
 * checked before any page is placed, but the checksum covers the whole
 * record and is verified after: when a step fails, placed pages may hold
 * what arrived, and the consumer must not trust its destinations (a
 * migration receiver discards the guest).  Streams from memory are read in
 * place and never placed.  @dest NULL turns placement off.
 */
typedef void *(*xsr_place_fn)(void *ctx, uint64_t pfn);
XSR_API void xsr_stream_set_placement(struct xsr_stream *s, xsr_place_fn dest, void *ctx);
/* Read until END (returns 0) or error (<0; XSR_E_TRUNCATED without END). */
XSR_API int xsr_stream_run(struct xsr_stream *s, const struct xsr_stream_ops *ops, void *ctx);
/* Read one record and dispatch it; returns 1 after END, 0 after another record. */
XSR_API int xsr_stream_step(struct xsr_stream *s, const struct xsr_stream_ops *ops, void *ctx);
/*
 * Open a stream on @fd whose first @plen octets were already read into
 * @prefix, run it to END with @ops and close it.  Callbacks that fail may
 * put their own reason in @err first (the same buffer); otherwise, and for
 * damage the reader found, @err names the stream offset.
 */
XSR_API int xsr_stream_read_all(int fd, const void *prefix, size_t plen, const struct xsr_stream_ops *ops,
				void *ctx, char *err, size_t errlen);
/*
 * After END: 0 if the source holds nothing more, XSR_E_FORMAT ("data after
 * the END record") if it does, as xsr verify reports.  For readers of a
 * whole file or pipe; a socket that carries more after END must not call it.
 * xsr_stream_read_all calls it.
 */
XSR_API int xsr_stream_expect_eof(struct xsr_stream *s);
/* Where the last error of @s lies (struct xsr_finding; @out->message: xsr_stream_error()). */
XSR_API void xsr_stream_error_at(const struct xsr_stream *s, struct xsr_finding *out);
/* Stream offset of the next octet to read. */
XSR_API uint64_t xsr_stream_offset(const struct xsr_stream *s);
XSR_API const struct xsr_file_header *xsr_stream_header(const struct xsr_stream *s);

/* ---------------- replay: one consumer for both layouts ---------------- */

/*
 * A consumer of an image, written once for either layout: the stream
 * callbacks, driven from a stream by the stream reader and from a seekable
 * image by xsr_image_replay, plus an optional way to take runs of page data
 * straight into the consumer's memory.  (XSRELF_1.5)
 *
 * What a replay of a seekable image gives, in a stream's order and meaning:
 *  - header: the image's file header (its layout field says SEEKABLE);
 *  - section: PRODUCER, MEMMAP, VMCOREINFO and XEN_P2M_TREE when present
 *    (where a stream writer puts them), then every other section of the
 *    table but the writer's own (index, page data, string table,
 *    integrity) in table order, vCPU sections included; bodies checksum
 *    verified, @rh the section's header as the file has it;
 *  - pages: every populated pfn exactly once, in memory-map order, in
 *    batches of at most 256 (<= XSR_MAX_BATCH) with the Xen type bits and
 *    XSR_PFN_ZERO; each data page verified against its index entry, and
 *    each slot the index marks zero checked to read as zero (the index is
 *    checked once first);
 *  - section: the notes (SHT_NOTE), last, as a stream carries them;
 *  - end: called with NULL: a seekable image has no END record (its
 *    integrity section was checked when it was opened).
 *
 * @place (may be NULL): offered each run of @n consecutive data pages
 * from @pfn (type bits not given).  Set *@dst to @n * 4096 writable octets
 * and the pages are put there (from a seekable image with one read, then
 * verified) and not given to @pages; leave *@dst NULL and they come
 * through @pages as usual.  @placed is then called once with the same
 * @pfn, @n, @dst and the outcome (0, or the error that stopped the
 * replay) so that the consumer can release @dst; its own <0 stops the
 * replay.  From a stream the library copies from its buffer; a batch's
 * other entries come through @pages in order around the placed runs.
 *
 * XSR_REPLAY_INDEX_ONLY: a seekable image's page data is not read (nor
 * hashed): @pages gets each batch with @data NULL, for a consumer of the
 * index alone (xsr info); @place is not called.  A stream's pages come as
 * they are.
 */
#define XSR_REPLAY_INDEX_ONLY 0x1u
struct xsr_replay_ops {
	uint32_t size;  /* sizeof(struct xsr_replay_ops) as the caller knows it */
	uint32_t flags; /* XSR_REPLAY_* */
	struct xsr_stream_ops stream;
	int (*place)(void *ctx, uint64_t pfn, uint32_t n, void **dst);
	int (*placed)(void *ctx, uint64_t pfn, uint32_t n, void *dst, int rc);
};

/*
 * Replay @img into @ops.  0 after end, or <0: the library's reason (naming
 * the offset or pfn) in xsr_image_error(), or a callback's own code, when
 * xsr_image_error() says the consumer refused.  (XSRELF_1.5)
 */
XSR_API int xsr_image_replay(struct xsr_image *img, const struct xsr_replay_ops *ops, void *ctx);
/*
 * Replay whatever @fd holds: a seekable image (a regular file, read with
 * pread from offset 0, opened as xsr_image_open does) or a stream (read on
 * to its END, and nothing may follow it), told apart by xsr_sniff_layout.
 * A seekable image on a pipe is refused (random access is needed).
 * Callbacks that fail may put their own reason in @err first; otherwise,
 * and for damage the reader found, @err names the offset or pfn.
 * (XSRELF_1.5)
 */
XSR_API int xsr_replay_fd(int fd, const struct xsr_replay_ops *ops, void *ctx, char *err, size_t errlen);

/* ---------------- conversion ---------------- */

struct xsr_paging_stats; /* <xsrelf/paging.h> */

/* Copy any image (@in: seekable or stream, detected) to @out via the writer. */
struct xsr_convert_opts {
	uint8_t layout;   /* enum xsr_layout; 0 = decide from @out */
	uint8_t compress; /* stream page batches */
	uint8_t paging;   /* write a paging view (seekable in and out) */
	uint8_t reserved;
	uint32_t paging_vcpu; /* whose page tables */
	/* The guest's VMCOREINFO to carry (section + note); NULL keeps the input's. */
	const void *vmcoreinfo;
	uint32_t vmcoreinfo_len;
	/*
	 * Paging view: what the walk kept and left out (xsr_paging_walk_opts()),
	 * filled when not NULL.  Xen PV images (those with a P2M) are walked
	 * without Xen's slots, and a PV core's entries through the P2M.
	 */
	struct xsr_paging_stats *paging_stats;
	/*
	 * Since XSRELF_1.4: called as pages are copied, with the pages done and
	 * the input's page count (a stream's header count; a later copy of a page
	 * counts again, so @done may pass @total).  NULL: not called.  The
	 * library prints nothing; a tool draws the progress.  Programs built
	 * before 1.4 call the old xsr_convert, which reads the struct without
	 * these members.
	 */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};
XSR_API int xsr_convert(int in, int out, const struct xsr_convert_opts *o, char *err, size_t errlen);

#endif
