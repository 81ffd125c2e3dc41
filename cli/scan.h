/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading any image (seekable or stream) into one summary, for info/verify/cat-page. */
#ifndef XSR_SCAN_H
#define XSR_SCAN_H

#include <elf.h>
#include <stdbool.h>
#include <xsrelf/reader.h>

struct scan_sec {
	char name[32];
	uint32_t sh_type, code, info;
	uint64_t offset, size, entsize;
};

struct scan {
	int layout;
	struct xsr_file_header fh;
	struct xsr_producer producer;
	bool have_producer;
	struct xsr_memrun *runs;
	uint32_t nruns;
	struct scan_sec *secs;
	uint32_t nsecs;
	uint64_t page_records, page_record_bytes;
	uint64_t data_pages, zero_pages;
	Elf64_Phdr *ph;
	uint32_t phnum;
	/* requests */
	int want_vcpu;                  /* -1: none */
	struct xsr_vcpu_state *vcpu;    /* filled if want_vcpu >= 0 and found */
	bool have_vcpu;
	int64_t want_pfn;               /* -1: none */
	uint8_t page[4096];
	bool have_page;
	char *config;                   /* config section text, if any */
	/* the domain's xenstore subtree (the XENSTORE body that begins with XSR_XS_MAGIC; validated by the reader), if any */
	void *xenstore;
	uint64_t xenstore_len;
	/* Xen items kept in PASSTHRU sections (struct xsr_passthru_hdr, xsrelf/format.h), in order */
	struct { uint32_t type; uint16_t origin, flags; } *xen;
	uint32_t nxen;
	uint32_t xen_libxc_version;
	uint64_t xen_types[16];         /* pages by Xen pfn type (index bits 31..28) */
	uint64_t stream_end;            /* stream: offset after END */
	bool trailing;                  /* stream: data after END */
	/* stream: where the reader's error lies (no message: it is in err) */
	struct xsr_finding err_at;
};

/* Fill @s from @fd.  Returns 0 or <0 with @err set. */
int cli_scan(int fd, struct scan *s, char *err, size_t errlen);
void cli_scan_free(struct scan *s);
const char *cli_kind_name(unsigned kind);

#endif
