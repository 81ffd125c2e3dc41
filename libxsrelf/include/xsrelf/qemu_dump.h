/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: QEMU's `dump-guest-memory` output (a foreign-format module,
 * xsrelf/foreign.h).  `virsh dump --memory-only` writes the same files.
 *
 * Import: one of
 *  - an ELF core (format "elf", paging false or true): ELF64, ET_CORE,
 *    EM_X86_64 (or EM_386 with i386 NT_PRSTATUS notes: a guest not in long
 *    mode), a PT_NOTE and PT_LOADs (PN_XNUM: the count in section 0's
 *    sh_info);
 *  - a kdump-compressed file (formats "kdump-zlib", "kdump-lzo",
 *    "kdump-snappy"): makedumpfile's "KDUMP   " diskdump layout, either as
 *    it lies on disk or in makedumpfile's flattened form (a "makedumpfile"
 *    header, then offset/length chunks), which is what QEMU writes; pages
 *    raw or compressed with zlib, LZO, snappy or zstd
 * -> one xsrelf image of kind XSR_KIND_CORE, through the one writer:
 *
 *  - guest-physical memory: the PT_LOADs by p_paddr (p_filesz of them; a
 *    page two PT_LOADs map, as paging true writes it, is read once), or the
 *    pages the kdump's second bitmap marks.  Pages the input leaves out are
 *    absent from the image (no run holds them), not zero;
 *  - one vCPU per NT_PRSTATUS note, in note order (vCPU id = that order),
 *    with the "QEMU" note of the same place (QEMUCPUState: segments,
 *    descriptor tables, control registers, kernel_gs_base);
 *  - the VMCOREINFO text (the kdump sub header's, or the "VMCOREINFO"
 *    note) as the image's VMCOREINFO section and note;
 *  - the input's header (ELF header and program headers; the kdump
 *    disk_dump_header and kdump_sub_header) and every note verbatim, as
 *    PASSTHRU items of origin XSR_PT_ORIGIN_QEMU_DUMP;
 *  - the format stated in the CONFIG section and the producer.
 *
 * The mapping is docs/qemu-compat.md, "dump-guest-memory files".  The
 * conventions of xsrelf/foreign.h hold: zero-initialised options that begin
 * with struct xsr_foreign_cb, optional stats, 0 or a negative enum xsr_err
 * with a message naming the input's offset ("kdump page_desc of pfn 0x12 at
 * offset 0x5000: ..."; a flattened file's offsets are those of the file it
 * stands for), nothing printed.
 */
#ifndef XSRELF_QEMU_DUMP_H
#define XSRELF_QEMU_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/foreign.h>
#include <xsrelf/xsrelf.h>

/* What a file is, as xsr_qemu_dump_detect_fd() tells it. */
enum xsr_qemu_dump_kind {
	XSR_QEMU_DUMP_NONE = 0,
	XSR_QEMU_DUMP_ELF = 1,        /* an ELF core with program headers, not an xsrelf image */
	XSR_QEMU_DUMP_KDUMP = 2,      /* "KDUMP   " at offset 0 */
	XSR_QEMU_DUMP_KDUMP_FLAT = 3, /* makedumpfile's flattened form of one */
};

struct xsr_qemu_dump_import_opts {
	struct xsr_foreign_cb cb; /* progress: pages written (done, total); notes: what was left out */
	/* 0: as the writer decides; XSR_LAYOUT_SEEKABLE or XSR_LAYOUT_STREAM (xsrelf/writer.h) */
	int layout;
	uint8_t compress; /* enum xsr_compress of a stream's page batches */
};

struct xsr_qemu_dump_import_stats {
	const char *format;     /* "ELF core", "kdump-compressed", "kdump-compressed (flattened)" (static) */
	uint32_t kind;          /* enum xsr_qemu_dump_kind */
	int paging;             /* ELF: a PT_LOAD's p_vaddr differs from its p_paddr (paging true) */
	uint64_t in_size;       /* octets of input */
	uint32_t nr_vcpus;
	uint32_t nr_notes;      /* notes kept */
	uint32_t nr_loads;      /* ELF: PT_LOADs; kdump: 0 */
	uint32_t nr_chunks;     /* flattened: data chunks; else 0 */
	uint32_t nr_runs;       /* runs of present pages in the image */
	uint64_t nr_pages;      /* pages present in the image */
	uint64_t excluded;      /* kdump: pages of the first bitmap the second leaves out */
	uint64_t zero_pages;    /* of the present pages, those that are zero */
	/* kdump: pages stored raw, with zlib, LZO, snappy, zstd */
	uint64_t raw, zlib, lzo, snappy, zstd;
	uint32_t vmcoreinfo_len; /* 0: none */
	uint32_t header_version; /* kdump */
	uint32_t dump_level;     /* kdump */
	char machine[66];        /* kdump: utsname.machine */
};

/*
 * The dump on @in_fd (a regular file) as an xsrelf image onto @out_fd (a
 * seekable image needs a regular file; a stream goes anywhere).  Neither fd
 * is closed.  0, or a negative enum xsr_err with the reason in @err.  @o
 * and @st may be NULL.
 */
XSR_API int xsr_qemu_dump_import_fd(int in_fd, int out_fd, const struct xsr_qemu_dump_import_opts *o,
				    struct xsr_qemu_dump_import_stats *st, char *err, size_t errlen);
/* The same from @len octets at @buf (kept valid and unchanged during the call). */
XSR_API int xsr_qemu_dump_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_qemu_dump_import_opts *o,
				     struct xsr_qemu_dump_import_stats *st, char *err, size_t errlen);

/*
 * What the file on @fd is: a kdump by its signature, an ELF core by
 * ET_CORE with program headers (Xen's xc_core has none; an xsrelf image,
 * which may carry QEMU notes too, is not one), else XSR_QEMU_DUMP_NONE
 * (also for a file too short to tell, or not a regular file); XSR_E_IO
 * when a read fails.  Only a sniff, to pick an import: the import checks
 * everything, QEMU's notes included.
 */
XSR_API int xsr_qemu_dump_detect_fd(int fd);

/* ------------------------------------------------------------------ */
/* Facts of the formats (QEMU include/sysemu/dump.h, makedumpfile      */
/* diskdump_mod.h, target/i386/arch_dump.c)                            */
/* ------------------------------------------------------------------ */
#define XSR_KDUMP_SIGNATURE "KDUMP   "        /* 8 octets */
#define XSR_KDUMP_FLAT_SIGNATURE "makedumpfile" /* then NULs to 16 octets */
#define XSR_KDUMP_FLAT_HEADER 4096u          /* the flattened form's header block */
#define XSR_KDUMP_HEADER_SIZE 464u           /* struct disk_dump_header, 64-bit */
#define XSR_KDUMP_SUB_HEADER_SIZE 104u       /* struct kdump_sub_header, 64-bit, version 6 */
#define XSR_KDUMP_PAGE_DESC_SIZE 24u         /* struct page_desc */
/* disk_dump_header.status and page_desc.flags */
#define XSR_KDUMP_ZLIB 0x1u
#define XSR_KDUMP_LZO 0x2u
#define XSR_KDUMP_SNAPPY 0x4u
#define XSR_KDUMP_INCOMPLETE 0x8u
#define XSR_KDUMP_EXCLUDED_VMEMMAP 0x10u
#define XSR_KDUMP_ZSTD 0x20u
#define XSR_QEMU_CPUSTATE_V1_MIN 432u /* QEMUCPUState up to cr[4]; 440 with kernel_gs_base */

#endif
