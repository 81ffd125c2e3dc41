/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The section table and what is read from it, in a file of its own: a
 * column that names functions of other files (the validators) must not put
 * common.c, whose helpers every file uses, into a circle with them.
 */
#include <elf.h>
#include <stddef.h>

#include "internal.h"

/*
 * The one table of record / section types.  Adding a type means: an enum
 * value in format.h, a row here, a section in docs/xsrelf-format.md and the
 * constant in gdb-scripts/xsrelf.py (tests/spec checks the last two).
 * The columns say what would otherwise be a switch on the type: which
 * types the writer makes itself (callers may not add them), and the
 * sh_addralign and sh_entsize the format fixes (ANY: the caller's entsize),
 * and the body's validator (check.c), which both layouts' readers and
 * verify call, so that they cannot disagree about a body.
 * Stream-only types have a section name too, never written to an image:
 * the one name by which verify --json names a record in either layout.
 */
#define MAXREC XSR_MAX_RECORD
#define ANY XSR_ENTSIZE_ANY
const struct xsr_sec_desc xsr_sec_table[XSR_SEC__COUNT] = {
	[XSR_SEC_END] = {"end", ".xsr.end", sizeof(struct xsr_end), sizeof(struct xsr_end), .stream_only = true, .derived = true, .writer_made = true, .align = 8, .entsize = 0, .check = xsr_check_end},
	[XSR_SEC_NOTES] = {"notes", ".note", XSR_NOTE_SIZE,
			   (uint64_t)(XSR_NOTE_SIZE + XSR_QEMU_NOTE_SIZE) * XSR_MAX_VCPUS + XSR_VMCI_NOTE_HDR +
				   XSR_MAX_VMCOREINFO + XSR_XEN_NOTE_SIZE, .derived = true, .writer_made = true, .align = 4, .entsize = 0, .check = xsr_check_notes},
	[XSR_SEC_MEMMAP] = {"memmap", ".xsr.memmap", 0, (uint64_t)XSR_MAX_RUNS * sizeof(struct xsr_memrun), .writer_made = true, .align = 8, .entsize = sizeof(struct xsr_memrun), .check = xsr_check_memmap},
	[XSR_SEC_PRODUCER] = {"producer", ".xsr.producer", sizeof(struct xsr_producer), sizeof(struct xsr_producer), .writer_made = true, .align = 8, .entsize = 0},
	[XSR_SEC_CONFIG] = {"config", ".xsr.config", 0, XSR_MAX_CONFIG, .align = 8, .entsize = ANY},
	[XSR_SEC_VCPU] = {"vcpu", ".xsr.vcpu", sizeof(struct xsr_x86_vcpu), MAXREC, .per_vcpu = true, .align = 8, .entsize = 0, .check = xsr_check_vcpu},
	[XSR_SEC_P2M] = {"p2m", ".xsr.p2m", 0, MAXREC, .align = 8, .entsize = ANY},
	[XSR_SEC_PAGES] = {"pages", ".xsr.pages", sizeof(struct xsr_page_batch) + 8,
			   sizeof(struct xsr_page_batch) + (uint64_t)XSR_MAX_BATCH * (8 + XSR_PAGE_SIZE), .derived = true, .writer_made = true, .align = XSR_PAGE_SIZE, .entsize = XSR_PAGE_SIZE, .check = xsr_check_pages},
	[XSR_SEC_INDEX] = {"index", ".xsr.index", 0, XSR_MAX_PAGES * sizeof(struct xsr_index_entry), .seekable_only = true, .derived = true, .writer_made = true, .align = 8, .entsize = sizeof(struct xsr_index_entry)},
	[XSR_SEC_DOMCTX] = {"domctx", ".xsr.domctx", 0, MAXREC, .align = 8, .entsize = ANY},
	[XSR_SEC_XENSTORE] = {"xenstore", ".xsr.xenstore", 0, MAXREC, .align = 8, .entsize = ANY, .check = xsr_check_xenstore},
	[XSR_SEC_EMULATOR] = {"emulator", ".xsr.emulator", 0, MAXREC, .align = 8, .entsize = ANY},
	[XSR_SEC_PASSTHRU] = {"passthru", ".xsr.passthru", 8, MAXREC, .align = 8, .entsize = ANY},
	[XSR_SEC_STRTAB] = {"strtab", ".shstrtab", 1, 1 << 20, .seekable_only = true, .derived = true, .writer_made = true, .align = 8, .entsize = 0},
	[XSR_SEC_INTEGRITY] = {"integrity", ".xsr.integrity", sizeof(struct xsr_integrity), sizeof(struct xsr_integrity), .seekable_only = true, .derived = true, .writer_made = true, .align = 8, .entsize = 0, .check = xsr_check_integrity},
	[XSR_SEC_VMCOREINFO] = {"vmcoreinfo", ".xsr.vmcoreinfo", 0, XSR_MAX_VMCOREINFO, .optional = true, .writer_made = true, .align = 8, .entsize = ANY},
	/* Live migration control records (docs/migration-protocol.md). */
	[XSR_SEC_MIG_BEGIN] = {"mig-begin", ".xsr.mig-begin", sizeof(struct xsr_mig_begin), sizeof(struct xsr_mig_begin), .stream_only = true, .derived = true, .align = 8, .entsize = ANY},
	[XSR_SEC_MIG_ROUND] = {"mig-round", ".xsr.mig-round", sizeof(struct xsr_mig_round), sizeof(struct xsr_mig_round), .stream_only = true, .derived = true, .align = 8, .entsize = ANY},
	[XSR_SEC_POSTCOPY_BEGIN] = {"postcopy-begin", ".xsr.postcopy-begin", sizeof(struct xsr_mig_round), sizeof(struct xsr_mig_round), .stream_only = true, .derived = true, .align = 8, .entsize = ANY},
	[XSR_SEC_POSTCOPY_PFNS] = {"postcopy-pfns", ".xsr.postcopy-pfns", sizeof(struct xsr_mig_pfns) + 8,
				   sizeof(struct xsr_mig_pfns) + (uint64_t)XSR_MAX_BATCH * 8, .stream_only = true, .derived = true, .align = 8, .entsize = ANY},
	[XSR_SEC_POSTCOPY_TRANSITION] = {"postcopy-transition", ".xsr.postcopy-transition", 0, 0, .stream_only = true, .derived = true, .align = 8, .entsize = ANY},
	/* Xen PV guests laid out for crash: header + at least fll, one frame list, one leaf. */
	[XSR_SEC_XEN_P2M_TREE] = {"xen-p2m-tree", ".xsr.xen-p2m-tree", sizeof(struct xsr_xen_p2m_tree) + 3 * XSR_PAGE_SIZE,
				  MAXREC, .optional = true, .derived = true, .writer_made = true, .align = 8, .entsize = ANY, .check = xsr_check_xen_tree},
};

const struct xsr_sec_desc *xsr_sec_lookup(uint32_t code)
{
	if (code >= XSR_SEC__COUNT || !xsr_sec_table[code].name)
		return NULL;
	return &xsr_sec_table[code];
}

uint32_t xsr_sec_type(uint32_t code)
{
	if (code == XSR_SEC_NOTES)
		return SHT_NOTE;
	if (code == XSR_SEC_STRTAB)
		return SHT_STRTAB;
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	return XSR_SHT(code, d && d->optional);
}

const char *xsr_section_name(uint32_t sh_type)
{
	if (sh_type == SHT_NOTE)
		return "notes";
	if (sh_type == SHT_STRTAB)
		return "strtab";
	if ((sh_type & XSR_SHT_BASE) == 0)
		return NULL;
	const struct xsr_sec_desc *d = xsr_sec_lookup(sh_type & XSR_SHT_CODE_MASK);
	return d ? d->name : NULL;
}

int xsr_section_derived(uint32_t sh_type)
{
	if (sh_type == SHT_NOTE || sh_type == SHT_STRTAB)
		return 1;
	if ((sh_type & XSR_SHT_BASE) == 0)
		return 0;
	const struct xsr_sec_desc *d = xsr_sec_lookup(sh_type & XSR_SHT_CODE_MASK);
	return d && d->derived;
}

int xsr_section_writer_made(uint32_t code)
{
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	return d && d->writer_made;
}

const char *xsr_section_elf_name(uint32_t sh_type)
{
	if (sh_type == SHT_NOTE)
		return ".note";
	if (sh_type == SHT_STRTAB)
		return ".shstrtab";
	if ((sh_type & XSR_SHT_BASE) == 0)
		return NULL;
	const struct xsr_sec_desc *d = xsr_sec_lookup(sh_type & XSR_SHT_CODE_MASK);
	return d ? d->elfname : NULL;
}

int xsr_sec_check(uint32_t code, const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why,
		  size_t whylen)
{
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	return d && d->check ? d->check(body, len, c, why, whylen) : 0;
}
