/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: common definitions (errors, version).
 *
 * Conventions for the whole library:
 *  - Handles are opaque, created by *_open() and released by *_close(),
 *    which accepts NULL.
 *  - Functions return 0 or a negative enum xsr_err.  The handle then holds a
 *    message with context (section, file offset, pfn) until the next call;
 *    *_error() returns it, borrowed until the next call or close.
 *  - Pointers returned by a handle are borrowed until that handle's close.
 */
#ifndef XSRELF_XSRELF_H
#define XSRELF_XSRELF_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/format.h>

#if defined(__GNUC__)
#define XSR_API __attribute__((visibility("default")))
#else
#define XSR_API
#endif

/* Pinned error codes: values never change. */
enum xsr_err {
	XSR_OK = 0,
	XSR_E_INVAL = -1,       /* bad argument from the caller */
	XSR_E_IO = -2,          /* read/write failed (errno kept in message) */
	XSR_E_NOMEM = -3,
	XSR_E_FORMAT = -4,      /* malformed structure */
	XSR_E_CHECKSUM = -5,    /* checksum mismatch */
	XSR_E_TRUNCATED = -6,   /* data ends early, stream without END */
	XSR_E_UNSUPPORTED = -7, /* unknown mandatory record, version, arch */
	XSR_E_RANGE = -8,       /* pfn / vCPU / offset out of range */
	XSR_E_LIMIT = -9,       /* documented limit exceeded */
	XSR_E_BACKEND = -10,    /* hypervisor backend failed */
	XSR_E_PEER = -11,       /* migration peer refused or misbehaved */
	XSR_E_STATE = -12,      /* call not valid in this state */
};

/* A static string naming an error code ("checksum mismatch"). */
XSR_API const char *xsr_strerror(int err);

/* "1.0.0": the library's own version. */
XSR_API const char *xsr_version(void);
#define XSR_PRODUCER_VERSION ((UINT64_C(0) << 32) | (UINT64_C(1) << 16) | 0)
#define XSR_PRODUCER_VERSION_STR "0.1.0"

/* The name of a section/record type code ("vcpu"), or NULL if unknown. */
XSR_API const char *xsr_section_name(uint32_t sh_type);
/*
 * 1 when a section or record of type @sh_type is made from the rest of the
 * image or by its layout: the notes (from the vCPUs), the page data, index,
 * string table and integrity section, the Xen p2m tree (from the P2M), END
 * and the migration control records.  Two images with the same content may
 * differ there (xsr diff does not compare them).  0 for content (config,
 * vCPUs, memory map, p2m, producer, ...) and for types this version does
 * not know.
 */
XSR_API int xsr_section_derived(uint32_t sh_type);

/*
 * 1 when the writer makes sections of type @code (enum xsr_sec) itself, from
 * its parameters, pages and vCPUs: END, NOTES, MEMMAP, PRODUCER, PAGES,
 * INDEX, STRTAB, INTEGRITY, VMCOREINFO, XEN_P2M_TREE.  xsr_writer_add_section
 * refuses them, and a program copying an image section by section skips
 * them.  0 for the others and for codes this version does not know.
 * (XSRELF_1.5)
 */
XSR_API int xsr_section_writer_made(uint32_t code);

/*
 * The section name of records of type @sh_type in the seekable layout
 * (".xsr.vcpu", ".note", ".shstrtab"); a type only streams carry (END, the
 * migration records) is named the same way (".xsr.end"), so that every
 * type has one name in both layouts.  NULL if the type is unknown.
 */
XSR_API const char *xsr_section_elf_name(uint32_t sh_type);

/* XXH3-64, the checksum of the format. */
XSR_API uint64_t xsr_hash(const void *data, size_t len);

/*
 * Whether the XSR_PAGE_SIZE octets at @page are all zero (need not be
 * aligned).  Stops at the first non-zero 64-octet line, so a page of data
 * costs one cache line: the test an engine makes before copying a page.
 */
XSR_API _Bool xsr_page_is_zero(const void *page);

#endif
