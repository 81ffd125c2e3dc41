/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: QEMU's migration stream (a foreign-format module, xsrelf/foreign.h).
 *
 * Import: a QEMU x86 migration stream, version 3, as `migrate "exec:..."`,
 * `fd:` or `file:` writes it (QEMU 7.2 and later, precopy, no multifd, no
 * XBZRLE or compression) -> one xsrelf image, through the one writer:
 *
 *  - pc.ram as guest-physical memory runs, mapped as the machine type
 *    places it (the layout is not in the stream: it is inferred from the
 *    CONFIGURATION section's machine name and the RAM size, or given by
 *    the caller) and stated in the CONFIG section and the producer;
 *  - one vCPU per `cpu` device section, decoded through the stream's
 *    VMDESCRIPTION (field names, sizes and offsets); a stream without one
 *    (suppress-vmdesc=on) has its device sections delimited by their
 *    footers and its cpu sections (version 12 only) decoded with a built-in
 *    table of QEMU 7.2's layout, and is refused where that is ambiguous;
 *    CONFIG says which way ("vcpus_from");
 *  - every other item kept losslessly as PASSTHRU (origins
 *    XSR_PT_ORIGIN_QEMU_*): the header and CONFIGURATION, the `ram`
 *    section's setup, each other RAM block's final pages, each device
 *    section verbatim, the EOF and VMDESCRIPTION.
 *
 * The mapping is docs/qemu-compat.md.  The conventions of xsrelf/foreign.h
 * hold: zero-initialised options that begin with struct xsr_foreign_cb,
 * optional stats, 0 or a negative enum xsr_err with a message naming the
 * stream offset ("QEMU ram section at offset 0x1234: ..."), nothing printed.
 */
#ifndef XSRELF_QEMU_H
#define XSRELF_QEMU_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/foreign.h>
#include <xsrelf/xsrelf.h>

struct xsr_writer;

struct xsr_qemu_import_opts {
	struct xsr_foreign_cb cb; /* progress: pc.ram pages written (done, total) */
	/* 0: as the writer decides; XSR_LAYOUT_SEEKABLE or XSR_LAYOUT_STREAM (xsrelf/writer.h) */
	int layout;
	uint8_t compress; /* enum xsr_compress of a stream's page batches */
	/*
	 * 0: infer where pc.ram ends below 4 GiB from the machine type and RAM
	 * size; else that many octets (QEMU's max-ram-below-4g made it so), a
	 * multiple of 4096; the rest of pc.ram starts at 4 GiB.
	 */
	uint64_t ram_below_4g;
	/* 0: no limit; else a stream whose RAM blocks add up to more octets is refused (XSR_E_LIMIT) */
	uint64_t max_ram;
	/*
	 * For xsr's own QEMU backend and migration; a program converting files
	 * leaves them zero.  @kind: 0 (XSR_KIND_SAVE) or the image's kind
	 * (XSR_KIND_MIGRATION).  @begin: called once the writer has written the
	 * header, PRODUCER and MEMMAP, before any other record (migration: send
	 * MIG_BEGIN and wait for the receiver); its < 0 ends the import with
	 * @err as it left it.
	 */
	uint32_t kind;
	int (*begin)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *begin_ctx;
};

struct xsr_qemu_import_stats {
	const char *format;     /* "QEMU migration stream v3" (static) */
	uint64_t in_size;       /* octets of input */
	uint32_t nr_vcpus;
	uint32_t nr_sections;   /* device sections kept */
	uint32_t nr_blocks;     /* RAM blocks of the stream, pc.ram included */
	uint64_t nr_pages;      /* pc.ram pages in the image */
	uint64_t page_entries;  /* PAGE and ZERO entries of the stream, every block */
	uint64_t resent;        /* of them, entries that replaced an earlier copy */
	uint64_t below_4g;      /* pc.ram octets mapped from 0; the rest from 4 GiB */
	char machine[64];       /* the CONFIGURATION section's machine name, "" if none */
};

/*
 * The stream on @in_fd (a regular file: read twice; a pipe is the caller's
 * to spool first) as an xsrelf image onto @out_fd (a seekable image needs a
 * regular file; a stream goes anywhere).  Neither fd is closed.  0, or a
 * negative enum xsr_err with the reason in @err.  @o and @st may be NULL.
 */
XSR_API int xsr_qemu_import_fd(int in_fd, int out_fd, const struct xsr_qemu_import_opts *o,
			       struct xsr_qemu_import_stats *st, char *err, size_t errlen);
/* The same from @len octets at @buf (kept valid and unchanged during the call). */
XSR_API int xsr_qemu_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_qemu_import_opts *o,
				struct xsr_qemu_import_stats *st, char *err, size_t errlen);

/*
 * The shared-memory path (docs/qemu-compat.md, "Shared-memory path"): the
 * stream on @in_fd (a regular file) was written by a QEMU whose pc.ram is
 * a shared memory backend (memory-backend-file or -memfd, share=on) with
 * the x-ignore-shared capability, so it holds no page of pc.ram; @ram_fd
 * (a memfd or file, e.g. reopened through /proc/PID/fd) holds that memory,
 * @ram_len octets from offset 0 (pc.ram's used length, which the stream's
 * block list must name), unchanged during the call (the guest stopped).
 * It is mapped read-only; its holes (SEEK_HOLE) are zero pages never
 * touched, so that reading it allocates nothing in a memfd or file that
 * the guest never wrote.  The image is the one xsr_qemu_import_fd
 * makes of the same guest's full stream: the capability and the block
 * addresses x-ignore-shared adds are left out of the kept header and ram
 * setup, pc.ram's pages come from @ram_fd (zero pages as holes), and CONFIG's
 * "ram_from" says "shared memory (x-ignore-shared)" instead of "stream".
 * A stream without the capability, with another capability, or with a page
 * of pc.ram is refused.  Otherwise as xsr_qemu_import_fd.
 */
XSR_API int xsr_qemu_import_shared_fd(int in_fd, int ram_fd, uint64_t ram_len, int out_fd,
				      const struct xsr_qemu_import_opts *o, struct xsr_qemu_import_stats *st, char *err,
				      size_t errlen);

/*
 * Where pc.ram of @ram_size octets ends below 4 GiB on machine @machine
 * ("pc-i440fx-7.2", "pc-q35-7.2", ...), as QEMU's hw/i386/pc_piix.c and
 * pc_q35.c place it without max-ram-below-4g: 0 and *@below_4g set, or
 * XSR_E_UNSUPPORTED for a machine this version does not know.
 */
XSR_API int xsr_qemu_layout(const char *machine, uint64_t ram_size, uint64_t *below_4g);

/* Name of a QEMU_VM_* section type ("SECTION_FULL", "unknown"); static. */
XSR_API const char *xsr_qemu_section_name(uint32_t type);

/* ------------------------------------------------------------------ */
/* Export (qemu_export.c)                                              */
/* ------------------------------------------------------------------ */

struct xsr_image; /* xsrelf/reader.h */

struct xsr_qemu_export_opts {
	struct xsr_foreign_cb cb; /* progress: pc.ram pages written (done, total); no notes */
};

struct xsr_qemu_export_stats {
	uint64_t bytes;       /* octets written to the output */
	uint64_t nr_pages;    /* pc.ram pages written (every page of it) */
	uint64_t page_entries; /* PAGE entries, every block */
	uint64_t zero_entries; /* ZERO entries, every block */
	uint32_t nr_blocks;   /* RAM blocks, pc.ram included */
	uint32_t nr_sections; /* device sections written */
	int epipe;            /* the failure was that the output's reader went away (EPIPE) */
};

/*
 * The seekable image @img (an opened handle, xsrelf/reader.h), imported
 * from a QEMU migration stream, back as a QEMU migration stream v3 onto
 * @out_fd, written in order (a pipe is fine): the canonical form of
 * docs/qemu-compat.md ("Export"), which `qemu-system-x86_64 -incoming`
 * restores with the same machine and -m.  pc.ram is the image's memory
 * (changed since the import or not), mapped back through the layout the
 * import recorded in CONFIG; everything else comes from the image's
 * PASSTHRU items.  An image without them (not imported from QEMU), or
 * whose memory does not match the stream's pc.ram, is refused
 * (XSR_E_UNSUPPORTED, XSR_E_FORMAT).  0, or a negative enum xsr_err with
 * the reason in @err.  @out_fd is not closed; @img stays open.  @o and @st
 * may be NULL.
 */
XSR_API int xsr_qemu_export(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
			    struct xsr_qemu_export_stats *st, char *err, size_t errlen);

/*
 * The same stream for a destination QEMU whose pc.ram is shared memory the
 * caller has filled from the image (the shared-memory path) and that has
 * the x-ignore-shared capability set before migrate-incoming: the
 * CONFIGURATION names the capability, the block list gives each block's
 * address after its length (0: QEMU checks it for the ignored blocks only,
 * and pc.ram's memory region lies at 0 on the pc machines), and pc.ram has
 * no page entries; the other blocks and the device state are as above.
 * st->nr_pages is 0.
 */
XSR_API int xsr_qemu_export_shared(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
				   struct xsr_qemu_export_stats *st, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Facts of the stream (QEMU migration/savevm.c, migration/ram.c)      */
/* ------------------------------------------------------------------ */
#define QEMU_VM_FILE_MAGIC 0x5145564du /* "QEVM", big-endian */
#define QEMU_VM_FILE_VERSION 3u
enum qemu_vm_section {
	QEMU_VM_EOF = 0x00, QEMU_VM_SECTION_START = 0x01, QEMU_VM_SECTION_PART = 0x02,
	QEMU_VM_SECTION_END = 0x03, QEMU_VM_SECTION_FULL = 0x04, QEMU_VM_SUBSECTION = 0x05,
	QEMU_VM_VMDESCRIPTION = 0x06, QEMU_VM_CONFIGURATION = 0x07, QEMU_VM_COMMAND = 0x08,
	QEMU_VM_SECTION_FOOTER = 0x7e,
};
/* the `ram` section's be64 entries: offset | flags (flags in the low 12 bits) */
#define QEMU_RAM_FLAG_ZERO 0x02u
#define QEMU_RAM_FLAG_MEM_SIZE 0x04u
#define QEMU_RAM_FLAG_PAGE 0x08u
#define QEMU_RAM_FLAG_EOS 0x10u
#define QEMU_RAM_FLAG_CONTINUE 0x20u
#define QEMU_RAM_FLAG_XBZRLE 0x40u
#define QEMU_RAM_FLAG_HOOK 0x80u
#define QEMU_RAM_FLAG_COMPRESS_PAGE 0x100u
#define QEMU_RAM_FLAG_MULTIFD_FLUSH 0x200u

#endif
