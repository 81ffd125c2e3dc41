/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsrelf on-disk and on-wire structures.
 *
 * This header is the code half of docs/xsrelf-format.md; gdb-scripts/xsrelf.py
 * carries the Python half of the constants.  tests/spec/check-spec.sh checks
 * that the three agree: change all three together.
 *
 * Every structure is little-endian (ELFDATA2LSB), naturally aligned, has
 * explicit reserved fields that writers set to zero and readers check, and a
 * _Static_assert on its size.  Nothing here depends on the host compiler's
 * padding.
 */
#ifndef XSRELF_FORMAT_H
#define XSRELF_FORMAT_H

#include <stdint.h>

/* ------------------------------------------------------------------ */
/* File header: follows the 64-octet Elf64_Ehdr at file offset 64.     */
/* ------------------------------------------------------------------ */

#define XSR_MAGIC "XSRELF\0\0" /* 8 octets, no terminator counted */
#define XSR_MAGIC_LEN 8
#define XSR_VERSION_MAJOR 1
#define XSR_VERSION_MINOR 0

/* The one sentinel: "streamed, offset unknown" (e_phoff, e_shoff, sh_offset). */
#define XSR_OFF_STREAMED UINT64_C(0xffffffffffffffff)

#define XSR_PAGE_SHIFT 12
#define XSR_PAGE_SIZE (UINT64_C(1) << XSR_PAGE_SHIFT)

enum xsr_layout {
	XSR_LAYOUT_SEEKABLE = 1, /* ELF core with real offsets */
	XSR_LAYOUT_STREAM = 2,   /* records follow, offsets are XSR_OFF_STREAMED */
};

enum xsr_kind {
	XSR_KIND_SAVE = 1,      /* complete state: restore needs nothing else */
	XSR_KIND_CORE = 2,      /* crash core: may omit restore-only sections */
	XSR_KIND_MIGRATION = 3, /* live migration stream */
};

/* xsr_file_header.flags */
#define XSR_FF_PAGING_VIEW 0x1u /* PT_LOADs are guest-virtual mappings */
/*
 * Xen PV guest laid out for crash (seekable only): each PT_LOAD's p_vaddr is
 * guest-physical and its p_paddr the machine address the guest's page tables
 * use; the last PT_LOAD is the synthetic p2m tree of XSR_SEC_XEN_P2M_TREE.
 */
#define XSR_FF_XEN_MACHINE_PADDR 0x2u
#define XSR_FF_KNOWN (XSR_FF_PAGING_VIEW | XSR_FF_XEN_MACHINE_PADDR)

struct xsr_file_header {
	uint8_t magic[8];        /* XSR_MAGIC */
	uint16_t version_major;  /* XSR_VERSION_MAJOR; readers refuse others */
	uint16_t version_minor;  /* readers accept any minor */
	uint8_t layout;          /* enum xsr_layout */
	uint8_t kind;            /* enum xsr_kind */
	uint8_t page_shift;      /* 12 */
	uint8_t reserved0;       /* 0 */
	uint32_t flags;          /* XSR_FF_* */
	uint32_t nr_vcpus;       /* number of vCPUs (<= XSR_MAX_VCPUS) */
	uint64_t sentinel;       /* XSR_OFF_STREAMED, always */
	uint64_t nr_pages;       /* populated guest frames (slots) */
	uint64_t producer_version; /* (major << 32) | (minor << 16) | patch */
	uint64_t reserved1;      /* 0 */
	uint64_t checksum;       /* XXH3-64 of Ehdr + this header, checksum = 0 */
};
_Static_assert(sizeof(struct xsr_file_header) == 64, "xsr_file_header");

#define XSR_EHDR_SIZE 64
#define XSR_HEADER_END 128 /* Ehdr + file header */

/* ------------------------------------------------------------------ */
/* Records.                                                            */
/*                                                                     */
/* A record is an Elf64_Shdr-shaped header (64 octets), a body of      */
/* sh_size octets, zero padding to 8 octets, and an 8-octet trailer:   */
/* XXH3-64 over header + body + padding.  In a seekable image every    */
/* section except the page data is stored as one record, sh_offset is  */
/* the body's file offset, and the section header table holds a copy   */
/* of each record header.  In a stream sh_offset is XSR_OFF_STREAMED.  */
/* ------------------------------------------------------------------ */

struct xsr_record_header {
	uint32_t sh_name;      /* offset in .shstrtab (0 in streams) */
	uint32_t sh_type;      /* XSR_SHT(code) or SHT_NOTE / SHT_STRTAB */
	uint64_t sh_flags;     /* 0 */
	uint64_t sh_addr;      /* type-specific (0 unless stated) */
	uint64_t sh_offset;    /* body offset, or XSR_OFF_STREAMED */
	uint64_t sh_size;      /* body length in octets */
	uint32_t sh_link;      /* 0 */
	uint32_t sh_info;      /* vCPU id for per-vCPU records, else 0 */
	uint64_t sh_addralign; /* 8 (4096 for page data) */
	uint64_t sh_entsize;   /* entry size for arrays, else 0 */
};
_Static_assert(sizeof(struct xsr_record_header) == 64, "xsr_record_header");

struct xsr_record_trailer {
	uint64_t checksum; /* XXH3-64(header || body || padding) */
};
_Static_assert(sizeof(struct xsr_record_trailer) == 8, "xsr_record_trailer");

/*
 * Record / section type codes.  sh_type = XSR_SHT_BASE | optional | code.
 * A reader that meets an unknown code skips the record when XSR_SHT_OPTIONAL
 * is set and refuses the image otherwise.
 */
#define XSR_SHT_BASE 0x80000000u     /* SHT_LOUSER */
#define XSR_SHT_OPTIONAL 0x40000000u /* unknown => skip */
#define XSR_SHT_CODE_MASK 0x0000ffffu
#define XSR_SHT(code, opt) (XSR_SHT_BASE | ((opt) ? XSR_SHT_OPTIONAL : 0u) | (code))

enum xsr_sec {
	XSR_SEC_END = 0x00,       /* stream only: closes the stream */
	XSR_SEC_NOTES = 0x01,     /* PT_NOTE contents (NT_PRSTATUS per vCPU) */
	XSR_SEC_MEMMAP = 0x02,    /* array of xsr_memrun */
	XSR_SEC_PRODUCER = 0x03,  /* xsr_producer */
	XSR_SEC_CONFIG = 0x04,    /* domain configuration, text or JSON */
	XSR_SEC_VCPU = 0x05,      /* one per vCPU: xsr_x86_vcpu + blobs */
	XSR_SEC_P2M = 0x06,       /* array of xsr_p2m_entry */
	XSR_SEC_PAGES = 0x07,     /* seekable: covers page data; stream: a batch */
	XSR_SEC_INDEX = 0x08,     /* seekable: xsr_index_entry per slot */
	XSR_SEC_DOMCTX = 0x09,    /* sequence of xsr_domctx_desc */
	XSR_SEC_XENSTORE = 0x0a,  /* xenstore data: libxl's record (opaque) or the domain's subtree (XSR_XS_MAGIC) */
	XSR_SEC_EMULATOR = 0x0b,  /* device-model context (opaque) */
	XSR_SEC_PASSTHRU = 0x0c,  /* foreign record kept verbatim */
	XSR_SEC_STRTAB = 0x0d,    /* .shstrtab (sh_type is SHT_STRTAB) */
	XSR_SEC_INTEGRITY = 0x0e, /* seekable: xsr_integrity */
	XSR_SEC_VMCOREINFO = 0x0f, /* guest VMCOREINFO text, when known */
	/*
	 * Live migration (stream only, kind XSR_KIND_MIGRATION): control
	 * records the sender interleaves with the image so that the receiver
	 * knows where the phases end.  The receiver's own records travel the
	 * other way on the same connection and are not image records; see
	 * docs/migration-protocol.md and migrate/proto.h.
	 */
	XSR_SEC_MIG_BEGIN = 0x10,      /* xsr_mig_begin: answer me (HELLO) now */
	XSR_SEC_MIG_ROUND = 0x11,      /* xsr_mig_round: a pre-copy round ended */
	XSR_SEC_POSTCOPY_BEGIN = 0x12, /* xsr_mig_round: paused; vCPUs follow */
	XSR_SEC_POSTCOPY_PFNS = 0x13,  /* xsr_mig_pfns: pages still to come */
	XSR_SEC_POSTCOPY_TRANSITION = 0x14, /* empty: resume now, pages follow */
	XSR_SEC_XEN_P2M_TREE = 0x15, /* xsr_xen_p2m_tree + pages: crash's view of a Xen PV p2m */
	XSR_SEC__COUNT
};

/* ------------------------------------------------------------------ */
/* Section bodies.                                                     */
/* ------------------------------------------------------------------ */

/* XSR_SEC_MEMMAP: populated guest frames, sorted, non-overlapping. */
struct xsr_memrun {
	uint64_t pfn;   /* first guest frame */
	uint64_t count; /* frames in the run, >= 1 */
};
_Static_assert(sizeof(struct xsr_memrun) == 16, "xsr_memrun");

/* XSR_SEC_PRODUCER: fixed part, then NUL-terminated strings. */
struct xsr_producer {
	uint16_t format_major;     /* repeats xsr_file_header.version_major */
	uint16_t format_minor;
	uint32_t reserved0;        /* 0 */
	uint64_t producer_version; /* repeats xsr_file_header.producer_version */
	char producer[32];         /* e.g. "xsrelf", NUL padded */
	char producer_version_str[32];
	char hypervisor[32];       /* "kvm", "xen", "synthetic" */
	char hypervisor_version[64];
	char host[64];             /* uname -n of the producer, may be empty */
};
_Static_assert(sizeof(struct xsr_producer) == 240, "xsr_producer");

/* XSR_SEC_P2M entries. */
struct xsr_p2m_entry {
	uint64_t pfn;
	uint64_t mfn;
};
_Static_assert(sizeof(struct xsr_p2m_entry) == 16, "xsr_p2m_entry");

/*
 * XSR_SEC_XEN_P2M_TREE: this header, then 1 + nr_frame_lists + nr_leaves
 * pages: the frame-list-list page, the frame-list pages and the leaf pages
 * of a 3-level p2m (as a 64-bit PV Linux guest keeps it), at machine frames
 * fll_mfn, fll_mfn + 1, ...  Leaf entry p is the machine frame of pfn p, or
 * XSR_XEN_NO_MFN.  In a seekable image the pages are page aligned in the
 * file and the last PT_LOAD maps them; a Xen CRASH_INFO note names fll_mfn.
 */
#define XSR_XEN_NO_MFN UINT64_C(0xffffffffffffffff)
#define XSR_XEN_P2M_PER_PAGE 512     /* 8-octet entries per page */
#define XSR_XEN_P2M_MAX_FL 512       /* frame lists crash reads at most */
struct xsr_xen_p2m_tree {
	uint32_t xen_major;      /* hypervisor version (for the CRASH_INFO note) */
	uint32_t xen_minor;
	uint64_t nr_pfns;        /* leaf entries that matter: pfns 0 .. nr_pfns - 1 */
	uint64_t fll_mfn;        /* machine frame of the first page, a multiple of 512 */
	uint32_t nr_frame_lists; /* ceil(nr_leaves / 512), 1 ..= XSR_XEN_P2M_MAX_FL */
	uint32_t nr_leaves;      /* ceil(nr_pfns / 512) */
	uint64_t reserved[4];    /* 0 */
};
_Static_assert(sizeof(struct xsr_xen_p2m_tree) == 64, "xsr_xen_p2m_tree");

/* XSR_SEC_INDEX: one entry per page slot, in slot (memmap) order. */
#define XSR_IDX_DATA 0x1u           /* slot holds non-zero data with hash */
#define XSR_IDX_XEN_TYPE_SHIFT 28   /* Xen pfn type (PAGE_DATA bits 63..60) */
#define XSR_IDX_XEN_TYPE_MASK 0xf0000000u
#define XSR_IDX_KNOWN_FLAGS (XSR_IDX_DATA | XSR_IDX_XEN_TYPE_MASK)
struct xsr_index_entry {
	uint64_t hash;  /* XXH3-64 of the 4096 octets, 0 when !DATA */
	uint32_t flags; /* XSR_IDX_* */
	uint32_t reserved; /* 0 */
};
_Static_assert(sizeof(struct xsr_index_entry) == 16, "xsr_index_entry");

/* XSR_SEC_PAGES in a stream: a batch. */
#define XSR_PFN_MASK UINT64_C(0x000fffffffffffff) /* bits 51..0 */
#define XSR_PFN_ZERO (UINT64_C(1) << 52)          /* no data follows */
#define XSR_PFN_RESERVED UINT64_C(0x0fe0000000000000)
#define XSR_PFN_XEN_TYPE_SHIFT 60
#define XSR_MAX_PFN XSR_PFN_MASK

enum xsr_compress {
	XSR_COMPRESS_NONE = 0,
	XSR_COMPRESS_ZSTD = 1,
	XSR_COMPRESS_LZ4 = 2,
};

struct xsr_page_batch {
	uint32_t count;    /* pfn entries, 1 ..= XSR_MAX_BATCH */
	uint8_t compress;  /* enum xsr_compress */
	uint8_t reserved0; /* 0 */
	uint16_t reserved1; /* 0 */
	uint64_t data_len; /* octets of (possibly compressed) data after the pfns */
	/* uint64_t pfn[count]; then data: 4096 octets per non-ZERO entry */
};
_Static_assert(sizeof(struct xsr_page_batch) == 16, "xsr_page_batch");

/* XSR_SEC_DOMCTX: descriptors in the style of Xen's domain save records. */
#define XSR_DOMCTX_IGNORE 0x1u /* reader may drop it if the type is unknown */
struct xsr_domctx_desc {
	uint16_t typecode; /* enum xsr_domctx */
	uint16_t flags;    /* XSR_DOMCTX_* */
	uint32_t vcpu_id;  /* 0xffffffff: whole domain */
	uint64_t length;   /* payload octets; payload padded to 8 with zeros */
};
_Static_assert(sizeof(struct xsr_domctx_desc) == 16, "xsr_domctx_desc");

enum xsr_domctx {
	XSR_DC_KVM_CLOCK = 1,     /* struct kvm_clock_data (48 octets) */
	XSR_DC_SHARED_INFO = 2,   /* Xen shared_info page */
	XSR_DC_TSC_INFO = 3,      /* Xen X86_TSC_INFO body */
	XSR_DC_HVM_CONTEXT = 4,   /* Xen HVM_CONTEXT body */
	XSR_DC_HVM_PARAMS = 5,    /* Xen HVM_PARAMS body */
	XSR_DC_CPUID_POLICY = 6,  /* Xen X86_CPUID_POLICY body */
	XSR_DC_MSR_POLICY = 7,    /* Xen X86_MSR_POLICY body */
	XSR_DC_PV_INFO = 8,       /* Xen X86_PV_INFO body */
	XSR_DC_IRQCHIP = 9,       /* KVM irqchip state */
	XSR_DC__COUNT
};
#define XSR_DOMCTX_ALL_VCPUS 0xffffffffu

/* XSR_SEC_INTEGRITY (seekable only) */
#define XSR_HASH_XXH3_64 1
struct xsr_integrity {
	uint32_t algorithm;   /* XSR_HASH_XXH3_64 */
	uint32_t reserved0;   /* 0 */
	uint64_t phdr_hash;   /* XXH3-64 of the program header table */
	uint64_t shdr_hash;   /* XXH3-64 of the section header table */
	uint64_t chain;       /* XXH3-64 of the trailers of every other record, in shdr order */
	uint64_t nr_records;  /* records chained */
	uint64_t file_size;   /* expected st_size */
	uint64_t reserved1[2]; /* 0 */
};
_Static_assert(sizeof(struct xsr_integrity) == 64, "xsr_integrity");

/* XSR_SEC_END (stream only) */
struct xsr_end {
	uint64_t nr_records; /* records before END */
	uint64_t chain;      /* XXH3-64 of the trailers of those records, in order */
	uint64_t reserved[2]; /* 0 */
};
_Static_assert(sizeof(struct xsr_end) == 32, "xsr_end");

/* XSR_SEC_MIG_BEGIN (migration streams only) */
#define XSR_MIG_POSTCOPY 0x1u /* the sender may switch to post-copy */
struct xsr_mig_begin {
	uint32_t flags;       /* XSR_MIG_* */
	uint32_t reserved0;   /* 0 */
	uint64_t reserved[3]; /* 0 */
};
_Static_assert(sizeof(struct xsr_mig_begin) == 32, "xsr_mig_begin");

/* XSR_SEC_MIG_ROUND and XSR_SEC_POSTCOPY_BEGIN */
#define XSR_MIG_ROUND_PAUSED 0x1u /* the source was paused for this round */
struct xsr_mig_round {
	uint64_t round;    /* 0 = the full copy */
	uint64_t pages;    /* page entries sent in the round (POSTCOPY_BEGIN: pending) */
	uint32_t flags;    /* XSR_MIG_ROUND_* */
	uint32_t reserved0; /* 0 */
	uint64_t reserved1; /* 0 */
};
_Static_assert(sizeof(struct xsr_mig_round) == 32, "xsr_mig_round");

/* XSR_SEC_POSTCOPY_PFNS (sender) and the receiver's FAULT record */
struct xsr_mig_pfns {
	uint32_t count;    /* 1 ..= XSR_MAX_BATCH */
	uint32_t reserved; /* 0 */
	/* uint64_t pfn[count]; bits 63..52 zero */
};
_Static_assert(sizeof(struct xsr_mig_pfns) == 8, "xsr_mig_pfns");

/* ------------------------------------------------------------------ */
/* XENSTORE (0x0a) body of the domain's own subtree.                   */
/* ------------------------------------------------------------------ */
/*
 * Two kinds of body, told apart by their first four octets.  One that
 * begins with XSR_XS_MAGIC is the domain's subtree /local/domain/N/ as
 * `xsr save|core|migrate DOMID` read it: struct xsr_xs_head, then nr_nodes
 * nodes, each a struct xsr_xs_node, nr_perms struct xsr_xs_perm, the path
 * (relative to the domain's root, no NUL), the value, and zeros to the next
 * multiple of 8.  Paths are in strictly ascending octet order, so a parent
 * comes before its children and no path twice.  Any other body is libxl's
 * EMULATOR_XENSTORE_DATA record as an import found it (it begins with the
 * emulator id, 1 or 2), opaque here; the import's PASSTHRU copy is what an
 * export replays.  sh_info is 0 for both, so a reader that knows only the
 * opaque kind reads either.  Little-endian.  xsrelf/xenstore.h encodes and
 * decodes the subtree.
 */
struct xsr_xs_head {
	uint32_t magic;    /* XSR_XS_MAGIC */
	uint16_t version;  /* XSR_XS_VERSION */
	uint16_t reserved; /* 0 */
	uint32_t nr_nodes; /* 0 ..= XSR_XS_MAX_NODES */
	uint32_t domid;    /* the saved domain: a permission naming it names the restored one */
};
_Static_assert(sizeof(struct xsr_xs_head) == 16, "xsr_xs_head");

struct xsr_xs_node {
	uint16_t path_len;  /* 1 ..= XSR_XS_MAX_PATH */
	uint16_t nr_perms;  /* 1 ..= XSR_XS_MAX_PERMS; the first is the owner's and everyone else's */
	uint32_t value_len; /* 0 ..= XSR_XS_MAX_VALUE */
};
_Static_assert(sizeof(struct xsr_xs_node) == 8, "xsr_xs_node");

struct xsr_xs_perm {
	uint32_t domid;
	uint32_t perm; /* XSR_XS_PERM_READ | XSR_XS_PERM_WRITE, or 0 (none); other bits 0 */
};
_Static_assert(sizeof(struct xsr_xs_perm) == 8, "xsr_xs_perm");

#define XSR_XS_MAGIC 0x53587378u /* the octets "xsXS" */
#define XSR_XS_VERSION 1
#define XSR_XS_PERM_READ 1
#define XSR_XS_PERM_WRITE 2
/* Xen's own limits (xen/include/public/io/xs_wire.h: XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX) */
#define XSR_XS_MAX_PATH 3072
#define XSR_XS_MAX_VALUE 4096
#define XSR_XS_MAX_PERMS 1024
#define XSR_XS_MAX_NODES 65536

/* ------------------------------------------------------------------ */
/* PASSTHRU (0x0c) body: a foreign format's item kept verbatim.        */
/* ------------------------------------------------------------------ */
/*
 * A foreign-format import (xsrelf/xen.h) writes each item of its source but
 * page data as one PASSTHRU section: this header, then the item's octets
 * verbatim.  The items are numbered 0, 1, 2, ... (seq) in source order, so
 * an export replays them as they came.  Little-endian.
 */
struct xsr_passthru_hdr {
	uint32_t type;   /* the foreign record type (libxc/libxl rhdr.type); see origin */
	uint32_t length; /* octets of the foreign item that follow this header */
	uint16_t origin; /* XSR_PT_ORIGIN_*: which format and layer the item is from */
	uint16_t flags;  /* XSR_PT_PAGES or 0 */
	uint32_t seq;    /* position among the image's PASSTHRU items */
};
_Static_assert(sizeof(struct xsr_passthru_hdr) == 16, "xsr_passthru_hdr");
/* origin, Xen (docs/xen-compat.md) 1..6, QEMU (docs/qemu-compat.md) 7..9 and 11, libvirt 10; 12 and up are free */
#define XSR_PT_ORIGIN_XL_HEADER 1    /* type 0: the xl save-file header and its optional data */
#define XSR_PT_ORIGIN_LIBXL_HEADER 2 /* type 0: the 16-octet libxl stream header */
#define XSR_PT_ORIGIN_LIBXL_RECORD 3 /* type = libxl record type, body = record body */
#define XSR_PT_ORIGIN_LIBXC_HEADER 4 /* type 0: image header (24) + domain header (16) */
#define XSR_PT_ORIGIN_LIBXC_RECORD 5 /* type = libxc record type, body = record body */
#define XSR_PT_ORIGIN_XC_CORE 6      /* type = section index (0: the Elf64_Ehdr); body = Shdr + contents */
#define XSR_PT_ORIGIN_QEMU_HEADER 7  /* type 0: magic, version and the CONFIGURATION section */
#define XSR_PT_ORIGIN_QEMU_SECTION 8 /* type = QEMU_VM_* (FULL: a device section to its footer; EOF: EOF + VMDESCRIPTION) */
#define XSR_PT_ORIGIN_QEMU_RAM 9     /* type 0: the ram section's START and block list; 1: one RAM block's pages */
#define XSR_PT_ORIGIN_LIBVIRT_HEADER 10 /* type 0: a virsh save file's 92-octet header, then its data_len octets (XML, cookie, padding) */
#define XSR_PT_ORIGIN_QEMU_DUMP 11  /* dump-guest-memory: type 0 the ELF or kdump headers, type 1 one note (Nhdr, name, desc, padding) */
/*
 * flags: PAGES marks the placeholder where an export writes every page of
 * the image (libxc: PAGE_DATA records, empty body; xc_core: the .xen_pages
 * contents, body = the section header).
 */
#define XSR_PT_PAGES 0x1u
#define XSR_PT_KNOWN_FLAGS 0x1u

/* ------------------------------------------------------------------ */
/* x86-64 vCPU context (XSR_SEC_VCPU body).                            */
/* ------------------------------------------------------------------ */

struct xsr_x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint16_t attr; /* type:4 s:1 dpl:2 p:1 avl:1 l:1 db:1 g:1 unusable:1 */
};
_Static_assert(sizeof(struct xsr_x86_segment) == 16, "xsr_x86_segment");

struct xsr_x86_dtable {
	uint64_t base;
	uint32_t limit;
	uint32_t reserved; /* 0 */
};
_Static_assert(sizeof(struct xsr_x86_dtable) == 16, "xsr_x86_dtable");

struct xsr_msr {
	uint32_t index;
	uint32_t reserved; /* 0 */
	uint64_t value;
};
_Static_assert(sizeof(struct xsr_msr) == 16, "xsr_msr");

/* xsr_x86_vcpu.valid */
#define XSR_VCPU_HAVE_SREGS 0x01u
#define XSR_VCPU_HAVE_FPU 0x02u
#define XSR_VCPU_HAVE_XSAVE 0x04u
#define XSR_VCPU_HAVE_MSRS 0x08u
#define XSR_VCPU_HAVE_LAPIC 0x10u
#define XSR_VCPU_HAVE_DEBUG 0x20u
#define XSR_VCPU_HAVE_EVENTS 0x40u
#define XSR_VCPU_KNOWN 0x7fu

/*
 * Fixed part, then three blobs in this order, each padded to 8 octets:
 * xsave[xsave_len], msrs[nr_msrs] (struct xsr_msr), lapic[lapic_len].
 */
struct xsr_x86_vcpu {
	uint32_t vcpu_id;
	uint32_t valid; /* XSR_VCPU_HAVE_* */
	/* rax rbx rcx rdx rsi rdi rsp rbp r8..r15 */
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;
	struct xsr_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct xsr_x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
	uint64_t xcr0;
	uint64_t dr[8]; /* dr0..dr3, (dr4, dr5 = 0), dr6, dr7 */
	uint32_t mp_state; /* KVM_MP_STATE_* */
	uint32_t xsave_len; /* octets of XSAVE area that follow (0 if none) */
	uint32_t nr_msrs;   /* entries of struct xsr_msr after xsave */
	uint32_t lapic_len; /* octets of LAPIC register page (0 or 1024) */
	uint8_t fxsave[512]; /* legacy FXSAVE image (FPU/SSE) */
	uint8_t events[64];  /* struct kvm_vcpu_events, verbatim */
	uint64_t reserved[4]; /* 0 */
};
_Static_assert(sizeof(struct xsr_x86_vcpu) == 1064, "xsr_x86_vcpu");

/* Linux x86-64 struct elf_prstatus as gdb and crash read it. */
#define XSR_NT_PRSTATUS 1
#define XSR_PRSTATUS_SIZE 336
#define XSR_PRSTATUS_REG_OFF 112 /* offset of pr_reg */
#define XSR_PRSTATUS_PID_OFF 32  /* offset of pr_pid */
#define XSR_NOTE_NAME "CORE"
#define XSR_NOTE_SIZE (12 + 8 + XSR_PRSTATUS_SIZE) /* Nhdr + "CORE\0"+pad + desc */
/*
 * A guest's VMCOREINFO, when known, follows the NT_PRSTATUS notes as one
 * more note (name "VMCOREINFO", type 0, as Linux's /proc/vmcore has it), so
 * that crash finds it in PT_NOTE; the same text is the VMCOREINFO section.
 */
#define XSR_VMCI_NOTE_NAME "VMCOREINFO"
#define XSR_VMCI_NOTE_HDR (12 + 12) /* Nhdr + "VMCOREINFO\0" padded to 4 */
#define XSR_MAX_VMCOREINFO (1u << 20)
/*
 * XSR_FF_XEN_MACHINE_PADDR images add, after the NT_PRSTATUS notes: one
 * "QEMU" note (type 0, QEMU's 440-octet QEMUCPUState version 1) per vCPU and
 * the VMCOREINFO note when VMCOREINFO is known, then one "Xen" note of type
 * XEN_ELFNOTE_CRASH_INFO whose last word is the p2m tree's fll_mfn.
 */
#define XSR_QEMU_NOTE_NAME "QEMU"
#define XSR_QEMU_CPUSTATE_SIZE 440
#define XSR_QEMU_NOTE_SIZE (12 + 8 + XSR_QEMU_CPUSTATE_SIZE)
#define XSR_XEN_NOTE_NAME "Xen"
#define XSR_NT_XEN_CRASH_INFO 0x1000001
#define XSR_XEN_CRASH_INFO_SIZE 80 /* 10 x u64 */
#define XSR_XEN_NOTE_SIZE (12 + 4 + XSR_XEN_CRASH_INFO_SIZE)

/* ------------------------------------------------------------------ */
/* Documented reader limits (docs/xsrelf-format.md "Limits").          */
/* ------------------------------------------------------------------ */
#define XSR_MAX_VCPUS 4096u
#define XSR_MAX_RUNS 65533u            /* 1 + runs must stay below PN_XNUM (0xffff) */
#define XSR_MAX_SECTIONS 65280u        /* e_shnum < SHN_LORESERVE */
#define XSR_MAX_RECORD (UINT64_C(128) << 20) /* body octets, non-page records */
#define XSR_MAX_BATCH 1024u            /* pfns per page batch */
#define XSR_MAX_CONFIG (UINT64_C(16) << 20)
#define XSR_MAX_PAGES (UINT64_C(1) << 36) /* 256 TiB of guest memory */
#define XSR_MAX_MSRS 1024u
#define XSR_MAX_XSAVE 16384u

#endif /* XSRELF_FORMAT_H */
