/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import (xsrelf/qemu_dump.h): QEMU's dump-guest-memory output, an ELF core
 * or a kdump-compressed file (flattened or not) -> one xsrelf image of kind
 * CORE through the one writer.  docs/qemu-compat.md, "dump-guest-memory
 * files", is the mapping; the layouts are QEMU's dump/dump.c and
 * target/i386/arch_dump.c and makedumpfile's diskdump_mod.h.
 *
 * Two passes.  The first reads the headers and notes and plans the memory
 * (the PT_LOADs, or the second bitmap, as runs of present pages); the
 * second writes.  Nothing is allocated from a length the input gives
 * before that length is checked against the input's real size and a
 * limit of docs/limits.md; page data moves a batch at a time, and a
 * compressed page inflates into one page, never more.
 *
 * A flattened kdump is read in place: its chunks (be64 offset, be64 length,
 * data) are indexed by the offset they stand for, and reads of the file
 * they stand for go to them; a range no chunk wrote reads as zeros, as it
 * would in the file `makedumpfile -R` rebuilds.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include <xsrelf/qemu_dump.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

#include "internal.h"

#define PAGE 4096u
#define WIN (1u << 20) /* octets read at once through a window */
#define BATCH 256u     /* pages handed to the writer at once */

/* Limits (docs/limits.md, "QEMU dump import"). */
#define DUMP_MAX_PHDRS (1u << 20)         /* program headers of an ELF core */
#define DUMP_MAX_NOTES_LEN (16u << 20)    /* octets of notes */
#define DUMP_MAX_NOTES (XSR_MAX_SECTIONS - 64u - XSR_MAX_VCPUS) /* notes kept (one PASSTHRU each) */
#define DUMP_MAX_CHUNKS (1u << 23)        /* chunks of a flattened kdump */
#define PRSTATUS_I386_SIZE 144u /* i386 elf_prstatus: 17 four-octet registers at 72 */
#define DUMP_FLAT_SLACK (UINT64_C(1) << 20) /* a flattened kdump's file may be this much longer than it */

struct chunk {
	uint64_t loff, len; /* where it goes in the file it stands for */
	uint64_t foff;      /* where its data lies in the flattened file */
	uint32_t seq;
};

struct piece { /* ELF: pages of one PT_LOAD */
	uint64_t pfn, n, off;
	uint32_t tail; /* octets of the last page the file holds (PAGE unless p_filesz ends mid-page) */
	uint32_t idx;  /* the PT_LOAD's index */
};

struct note {
	uint64_t off, len; /* the whole note within the notes, padding included */
};

struct win {
	uint8_t *b;
	uint64_t off;
	size_t len;
};

struct ds {
	struct xsr_source in;
	uint64_t size;  /* of the input */
	uint64_t lsize; /* of the file it stands for (flattened: the end of its last chunk) */
	char err[512];
	int code;
	int kind; /* enum xsr_qemu_dump_kind */
	struct chunk *ch;
	size_t nch;
	struct win wa, wb; /* windows: kdump descs and data, flattened chunk headers */
	/* the header item */
	uint8_t *hdr;
	size_t hdr_len;
	/* notes */
	uint8_t *notes;
	uint64_t notes_len, notes_off;
	struct note *nt;
	uint32_t nnt;
	const uint8_t **prs, **qs; /* NT_PRSTATUS and QEMU descs, in order */
	uint32_t nprs, nqs;
	const uint8_t *vmci;
	uint8_t *vmci_buf; /* the kdump sub header's */
	uint32_t vmci_len;
	/* memory */
	struct piece *pc;
	size_t npc;
	struct xsr_memrun *runs;
	uint32_t nruns;
	uint64_t npages;
	/* ELF */
	uint32_t nloads;
	int paging;
	int i386; /* the NT_PRSTATUS notes are i386's (QEMU: a guest not in long mode; its ELF says EM_386) */
	/* kdump */
	uint32_t hver, status, dump_level;
	uint64_t max_mapnr, phys_base, bm_off, bm_len, desc_off, excluded;
	char machine[66], release[66];
	uint64_t nraw, nzlib, nlzo, nsnappy, nzstd;
	uint64_t zero_pages;
};

static int fail(struct ds *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ds *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (!s->code)
		s->code = code;
	return -1;
}

static int nomem(struct ds *s) { return fail(s, XSR_E_NOMEM, "out of memory"); }

static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static const char *what_file(const struct ds *s) { return s->nch ? "flattened kdump's file" : "file"; }

/* Exactly @len octets at @off of the input itself. */
static int raw_rd(struct ds *s, uint64_t off, void *buf, uint64_t len, const char *what)
{
	if (!xsr_in_bounds(off, len, s->size))
		return fail(s, XSR_E_TRUNCATED, "%s at offset 0x%llx: needs %llu octets but the input ends at 0x%llx (truncated)",
			    what, (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
	uint8_t *p = buf;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		int e = s->in.ops->pread(&s->in, p, n, off);
		if (e < 0)
			return fail(s, XSR_E_IO, "%s at offset 0x%llx: read failed: %s", what, (unsigned long long)off, strerror(-e));
		p += n, off += n, len -= n;
	}
	return 0;
}

/* The first chunk that ends after @off (chunks are sorted and disjoint). */
static size_t chunk_at(const struct ds *s, uint64_t off)
{
	size_t lo = 0, hi = s->nch;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (s->ch[m].loff + s->ch[m].len <= off)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

/* Exactly @len octets at @off of the file the input is (or stands for, when flattened). */
static int lrd(struct ds *s, uint64_t off, void *buf, uint64_t len, const char *what)
{
	if (!xsr_in_bounds(off, len, s->lsize))
		return fail(s, XSR_E_TRUNCATED, "%s at offset 0x%llx: needs %llu octets but the %s ends at 0x%llx (truncated)",
			    what, (unsigned long long)off, (unsigned long long)len, what_file(s), (unsigned long long)s->lsize);
	if (!s->nch)
		return raw_rd(s, off, buf, len, what);
	uint8_t *p = buf;
	for (size_t k = chunk_at(s, off); len;) {
		uint64_t n;
		if (k < s->nch && s->ch[k].loff <= off) {
			uint64_t in = off - s->ch[k].loff;
			n = s->ch[k].len - in < len ? s->ch[k].len - in : len;
			if (raw_rd(s, s->ch[k].foff + in, p, n, what) < 0)
				return -1;
			k++;
		} else { /* no chunk wrote it: zeros, as in the rebuilt file */
			n = k < s->nch && s->ch[k].loff - off < len ? s->ch[k].loff - off : len;
			memset(p, 0, n);
		}
		p += n, off += n, len -= n;
	}
	return 0;
}

/* @n (<= WIN) octets at @off through window @w (@logical: of the file it stands for); valid until its next use. */
static const uint8_t *view(struct ds *s, struct win *w, int logical, uint64_t off, size_t n, const char *what)
{
	uint64_t end = logical ? s->lsize : s->size;
	if (w->b && off >= w->off && off - w->off <= w->len && w->len - (off - w->off) >= n)
		return w->b + (off - w->off);
	if (!xsr_in_bounds(off, n, end)) {
		fail(s, XSR_E_TRUNCATED, "%s at offset 0x%llx: needs %zu octets but the %s ends at 0x%llx (truncated)", what,
		     (unsigned long long)off, n, logical ? what_file(s) : "input", (unsigned long long)end);
		return NULL;
	}
	if (!w->b && !(w->b = malloc(WIN))) {
		nomem(s);
		return NULL;
	}
	size_t len = end - off < WIN ? (size_t)(end - off) : WIN;
	w->len = 0;
	if ((logical ? lrd(s, off, w->b, len, what) : raw_rd(s, off, w->b, len, what)) < 0)
		return NULL;
	w->off = off;
	w->len = len;
	return w->b;
}

/* ---------------- notes ---------------- */

static int note_name(const uint8_t *n, uint32_t namesz, const char *want)
{
	return namesz == strlen(want) + 1 && !memcmp(n + 12, want, namesz);
}

/* Check a QEMUCPUState (QEMU target/i386/arch_dump.c): version 1, a size that holds cr[4]. */
static int check_qemu_state(struct ds *s, const uint8_t *d, uint32_t descsz, uint64_t at)
{
	uint32_t ver = descsz >= 8 ? le32(d) : 0, size = descsz >= 8 ? le32(d + 4) : 0;
	if (descsz < XSR_QEMU_CPUSTATE_V1_MIN || ver != 1 || size < XSR_QEMU_CPUSTATE_V1_MIN || size > descsz)
		return fail(s, XSR_E_FORMAT,
			    "QEMU note at offset 0x%llx: QEMUCPUState version %u, size %u in a %u-octet description "
			    "(need version 1 and %u..%u octets)",
			    (unsigned long long)at, ver, size, descsz, XSR_QEMU_CPUSTATE_V1_MIN, descsz);
	return 0;
}

/* Split the notes (read to s->notes, from file offset s->notes_off) and sort out the ones this import reads. */
static int parse_notes(struct ds *s)
{
	const uint8_t *b = s->notes;
	uint64_t len = s->notes_len;
	size_t cap = 0;
	for (uint64_t p = 0; p < len;) {
		uint64_t at = s->notes_off + p;
		if (len - p < 12 || (le32(b + p) == 0 && le32(b + p + 4) == 0 && le32(b + p + 8) == 0)) {
			if (xsr_is_zero(b + p, (size_t)(len - p)))
				break; /* padding */
			return fail(s, XSR_E_FORMAT, "note at offset 0x%llx: %s", (unsigned long long)at,
				    len - p < 12 ? "fewer than 12 octets left for a note header" : "an empty note before more notes");
		}
		uint32_t namesz = le32(b + p), descsz = le32(b + p + 4), type = le32(b + p + 8);
		uint64_t nl = ((uint64_t)namesz + 3) & ~UINT64_C(3), dl = ((uint64_t)descsz + 3) & ~UINT64_C(3);
		if (nl > len - p - 12 || dl > len - p - 12 - nl)
			return fail(s, XSR_E_FORMAT,
				    "note at offset 0x%llx: a name of %u and a description of %u octets run past the end of the "
				    "notes at 0x%llx",
				    (unsigned long long)at, namesz, descsz, (unsigned long long)(s->notes_off + len));
		if (s->nnt == DUMP_MAX_NOTES)
			return fail(s, XSR_E_LIMIT, "note at offset 0x%llx: more than %u notes", (unsigned long long)at, DUMP_MAX_NOTES);
		if (s->nnt == cap) {
			cap = cap ? cap * 2 : 64;
			struct note *n = realloc(s->nt, cap * sizeof(*n));
			const uint8_t **a = realloc(s->prs, cap * sizeof(*a));
			if (a)
				s->prs = a;
			const uint8_t **q = a ? realloc(s->qs, cap * sizeof(*q)) : NULL;
			if (q)
				s->qs = q;
			if (n)
				s->nt = n;
			if (!n || !a || !q)
				return nomem(s);
		}
		s->nt[s->nnt++] = (struct note){p, 12 + nl + dl};
		const uint8_t *desc = b + p + 12 + nl;
		if (note_name(b + p, namesz, "CORE") && type == NT_PRSTATUS) {
			int i386 = descsz == PRSTATUS_I386_SIZE;
			if ((descsz != XSR_PRSTATUS_SIZE && !i386) || (s->nprs && i386 != s->i386))
				return fail(s, XSR_E_UNSUPPORTED,
					    "NT_PRSTATUS note at offset 0x%llx: %u octets, neither x86-64's elf_prstatus (%u) nor "
					    "i386's (%u), or not the size of the first",
					    (unsigned long long)at, descsz, XSR_PRSTATUS_SIZE, PRSTATUS_I386_SIZE);
			s->i386 = i386;
			s->prs[s->nprs++] = desc;
		} else if (note_name(b + p, namesz, XSR_QEMU_NOTE_NAME) && type == 0) {
			if (check_qemu_state(s, desc, descsz, at) < 0)
				return -1;
			s->qs[s->nqs++] = desc;
		} else if (note_name(b + p, namesz, XSR_VMCI_NOTE_NAME) && !s->vmci) {
			s->vmci = desc;
			s->vmci_len = descsz;
		}
		p += 12 + nl + dl;
	}
	if (s->nprs && s->nqs && s->nprs != s->nqs)
		return fail(s, XSR_E_FORMAT, "notes at offset 0x%llx: %u NT_PRSTATUS notes but %u QEMU notes (QEMU writes one of each per vCPU)",
			    (unsigned long long)s->notes_off, s->nprs, s->nqs);
	uint32_t nv = s->nprs ? s->nprs : s->nqs;
	if (!nv)
		return fail(s, XSR_E_FORMAT, "notes at offset 0x%llx: neither an NT_PRSTATUS nor a QEMU note: no vCPU",
			    (unsigned long long)s->notes_off);
	if (nv > XSR_MAX_VCPUS)
		return fail(s, XSR_E_LIMIT, "notes at offset 0x%llx: %u vCPUs, more than %u", (unsigned long long)s->notes_off, nv,
			    XSR_MAX_VCPUS);
	return 0;
}

static int read_notes(struct ds *s, uint64_t off, uint64_t len)
{
	if (len > DUMP_MAX_NOTES_LEN)
		return fail(s, XSR_E_LIMIT, "notes at offset 0x%llx: %llu octets, more than %u", (unsigned long long)off,
			    (unsigned long long)len, DUMP_MAX_NOTES_LEN);
	if (!xsr_in_bounds(off, len, s->lsize))
		return fail(s, XSR_E_TRUNCATED, "notes at offset 0x%llx: %llu octets run past the end of the %s at 0x%llx",
			    (unsigned long long)off, (unsigned long long)len, what_file(s), (unsigned long long)s->lsize);
	if (!(s->notes = malloc(len ? len : 1)))
		return nomem(s);
	s->notes_off = off;
	s->notes_len = len;
	return lrd(s, off, s->notes, len, "notes") < 0 ? -1 : parse_notes(s);
}

/* QEMU's segment flags are descriptor bits 8..23 (as target/i386 keeps them); xsrelf's attr packs 8..15 and 20..23. */
static void qemu_seg(struct xsr_x86_segment *sg, const uint8_t *p)
{
	uint32_t flags = le32(p + 8);
	sg->selector = (uint16_t)le32(p);
	sg->limit = le32(p + 4);
	sg->base = le64(p + 16);
	sg->attr = (uint16_t)(((flags >> 8) & 0xff) | ((flags >> 12) & 0xf00) | (flags & 0x8000 ? 0 : 0x1000));
}

/* vCPU @v from its NT_PRSTATUS (Linux x86-64 elf_prstatus) and QEMU note, either may be absent. */
static void vcpu_of(const struct ds *s, uint32_t v, struct xsr_vcpu_state *st)
{
	struct xsr_x86_vcpu *r = &st->r;
	memset(r, 0, sizeof(*r));
	r->vcpu_id = v;
	if (v < s->nprs && s->i386) {
		/* i386 user_regs_struct: ebx ecx edx esi edi ebp eax ds es fs gs orig_eax eip cs eflags esp ss */
		const uint8_t *g = s->prs[v] + 72;
		static const int8_t gpr[8] = {[XSR_RAX] = 6, [XSR_RBX] = 0, [XSR_RCX] = 1, [XSR_RDX] = 2,
					      [XSR_RSI] = 3, [XSR_RDI] = 4, [XSR_RSP] = 15, [XSR_RBP] = 5};
		for (int i = 0; i < 8; i++)
			r->gpr[i] = le32(g + 4 * gpr[i]);
		r->rip = le32(g + 4 * 12);
		r->rflags = le32(g + 4 * 14);
		r->ds.selector = (uint16_t)le32(g + 4 * 7);
		r->es.selector = (uint16_t)le32(g + 4 * 8);
		r->fs.selector = (uint16_t)le32(g + 4 * 9);
		r->gs.selector = (uint16_t)le32(g + 4 * 10);
		r->cs.selector = (uint16_t)le32(g + 4 * 13);
		r->ss.selector = (uint16_t)le32(g + 4 * 16);
	} else if (v < s->nprs) {
		/* user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs */
		const uint8_t *g = s->prs[v] + XSR_PRSTATUS_REG_OFF;
		static const int8_t gpr[16] = {[XSR_RAX] = 10, [XSR_RBX] = 5, [XSR_RCX] = 11, [XSR_RDX] = 12, [XSR_RSI] = 13,
					       [XSR_RDI] = 14, [XSR_RSP] = 19, [XSR_RBP] = 4, [XSR_R8] = 9, [XSR_R9] = 8,
					       [XSR_R10] = 7, [XSR_R11] = 6, [XSR_R12] = 3, [XSR_R13] = 2, [XSR_R14] = 1,
					       [XSR_R15] = 0};
		for (int i = 0; i < 16; i++)
			r->gpr[i] = le64(g + 8 * gpr[i]);
		r->rip = le64(g + 8 * 16);
		r->rflags = le64(g + 8 * 18);
		r->cs.selector = (uint16_t)le64(g + 8 * 17);
		r->ss.selector = (uint16_t)le64(g + 8 * 20);
		r->fs.base = le64(g + 8 * 21);
		r->gs.base = le64(g + 8 * 22);
		r->ds.selector = (uint16_t)le64(g + 8 * 23);
		r->es.selector = (uint16_t)le64(g + 8 * 24);
		r->fs.selector = (uint16_t)le64(g + 8 * 25);
		r->gs.selector = (uint16_t)le64(g + 8 * 26);
	}
	if (v >= s->nqs)
		return;
	/* QEMUCPUState: version, size, rax rbx rcx rdx rsi rdi rsp rbp r8..r15 (xsrelf's order), rip, rflags, segments, cr[5] */
	const uint8_t *d = s->qs[v], *p = d + 8;
	for (int i = 0; i < 16; i++, p += 8)
		r->gpr[i] = le64(p);
	r->rip = le64(p);
	r->rflags = le64(p + 8);
	p += 16;
	struct xsr_x86_segment *seg[] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss, &r->ldt, &r->tr};
	for (size_t i = 0; i < ARRAY_SIZE(seg); i++, p += 24)
		qemu_seg(seg[i], p);
	r->gdt.base = le64(p + 16);
	r->gdt.limit = le32(p + 4);
	r->idt.base = le64(p + 24 + 16);
	r->idt.limit = le32(p + 24 + 4);
	p += 48;
	r->cr0 = le64(p);
	r->cr2 = le64(p + 16);
	r->cr3 = le64(p + 24);
	r->cr4 = le64(p + 32);
	r->valid |= XSR_VCPU_HAVE_SREGS;
	/*
	 * A dump carries no EFER.  Paging with PAE and a 64-bit code segment
	 * (CS.L) is long mode, so LME and LMA are set then (QEMU writes an
	 * x86-64 dump only when its first vCPU is in long mode); SCE and NXE
	 * are not known and stay 0.  Without it no page walk of the image
	 * would start.
	 */
	if (r->cr0 & 0x80000000u && r->cr4 & 0x20u && r->cs.attr & 0x200u)
		r->efer = 0x500;
	if (le32(d + 4) >= XSR_QEMU_CPUSTATE_SIZE) { /* kernel_gs_base, QEMU 2.8 and later */
		st->msrs[0] = (struct xsr_msr){.index = 0xc0000102, .value = le64(d + XSR_QEMU_CPUSTATE_V1_MIN)};
		r->nr_msrs = 1;
		r->valid |= XSR_VCPU_HAVE_MSRS;
	}
}

/* ---------------- ELF ---------------- */

static int cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;
	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort the pieces, read each page once (the first piece that maps it), and make the runs. */
static int plan_pieces(struct ds *s)
{
	qsort(s->pc, s->npc, sizeof(*s->pc), cmp_piece);
	uint64_t end = 0;
	size_t o = 0;
	for (size_t i = 0; i < s->npc; i++) {
		struct piece p = s->pc[i];
		if (o && p.pfn + p.n <= end)
			continue;
		if (o && p.pfn < end) {
			uint64_t k = end - p.pfn;
			p.off += k * PAGE;
			p.n -= k;
			p.pfn = end;
		}
		s->pc[o++] = p;
		end = p.pfn + p.n;
	}
	s->npc = o;
	size_t cap = 0;
	for (size_t i = 0; i < s->npc; i++) {
		const struct piece *p = &s->pc[i];
		s->npages += p->n;
		if (s->nruns && s->runs[s->nruns - 1].pfn + s->runs[s->nruns - 1].count == p->pfn) {
			s->runs[s->nruns - 1].count += p->n;
			continue;
		}
		if (s->nruns == XSR_MAX_RUNS)
			return fail(s, XSR_E_LIMIT, "PT_LOAD %u: the PT_LOADs make more than %u runs of guest-physical pages",
				    p->idx, XSR_MAX_RUNS);
		if (s->nruns == cap) {
			cap = cap ? cap * 2 : 16;
			struct xsr_memrun *r = realloc(s->runs, cap * sizeof(*r));
			if (!r)
				return nomem(s);
			s->runs = r;
		}
		s->runs[s->nruns++] = (struct xsr_memrun){p->pfn, p->n};
	}
	if (s->npages > XSR_MAX_PAGES)
		return fail(s, XSR_E_LIMIT, "the PT_LOADs hold %llu pages, more than %llu", (unsigned long long)s->npages,
			    (unsigned long long)XSR_MAX_PAGES);
	if (!s->npages)
		return fail(s, XSR_E_FORMAT, "no PT_LOAD holds a page of memory");
	return 0;
}

static int parse_elf(struct ds *s)
{
	uint8_t eh[sizeof(Elf64_Ehdr)];
	if (raw_rd(s, 0, eh, sizeof(eh), "ELF header") < 0)
		return -1;
	Elf64_Ehdr e;
	memcpy(&e, eh, sizeof(e));
	if (e.e_ident[EI_CLASS] != ELFCLASS64 || e.e_ident[EI_DATA] != ELFDATA2LSB)
		return fail(s, XSR_E_UNSUPPORTED, "ELF header at offset 0x0: not a little-endian ELF64 file (a 32-bit guest's dump?)");
	/* QEMU writes EM_386 in an ELF64 core for a guest not in long mode (its i386 notes say the same) */
	if (e.e_type != ET_CORE || (e.e_machine != EM_X86_64 && e.e_machine != EM_386))
		return fail(s, XSR_E_UNSUPPORTED, "ELF header at offset 0x0: type %u, machine %u: not an x86 core", e.e_type,
			    e.e_machine);
	if (e.e_phentsize != sizeof(Elf64_Phdr))
		return fail(s, XSR_E_FORMAT, "ELF header at offset 0x0: e_phentsize %u, not %zu", e.e_phentsize,
			    sizeof(Elf64_Phdr));
	uint64_t phnum = e.e_phnum;
	size_t extra = 0;
	uint8_t sh0[sizeof(Elf64_Shdr)];
	if (phnum == PN_XNUM) { /* the count is section 0's sh_info (QEMU write_elf_section) */
		if (e.e_shnum < 1 || e.e_shentsize != sizeof(Elf64_Shdr))
			return fail(s, XSR_E_FORMAT, "ELF header at offset 0x0: e_phnum PN_XNUM without a section header");
		if (raw_rd(s, e.e_shoff, sh0, sizeof(sh0), "section header 0") < 0)
			return -1;
		Elf64_Shdr h;
		memcpy(&h, sh0, sizeof(h));
		phnum = h.sh_info;
		extra = sizeof(sh0);
	}
	if (phnum > DUMP_MAX_PHDRS)
		return fail(s, XSR_E_LIMIT, "ELF header at offset 0x0: %llu program headers, more than %u", (unsigned long long)phnum,
			    DUMP_MAX_PHDRS);
	uint64_t phlen = phnum * sizeof(Elf64_Phdr);
	if (!xsr_in_bounds(e.e_phoff, phlen, s->size))
		return fail(s, XSR_E_TRUNCATED, "program headers at offset 0x%llx: %llu of them run past the end of the file at 0x%llx",
			    (unsigned long long)e.e_phoff, (unsigned long long)phnum, (unsigned long long)s->size);
	s->hdr_len = sizeof(eh) + phlen + extra;
	if (!(s->hdr = malloc(s->hdr_len)) || !(s->pc = malloc((phnum ? phnum : 1) * sizeof(*s->pc))))
		return nomem(s);
	memcpy(s->hdr, eh, sizeof(eh));
	if (extra)
		memcpy(s->hdr + sizeof(eh) + phlen, sh0, extra);
	uint8_t *ph = s->hdr + sizeof(eh);
	if (raw_rd(s, e.e_phoff, ph, phlen, "program headers") < 0)
		return -1;
	int have_note = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		Elf64_Phdr p;
		uint64_t at = e.e_phoff + i * sizeof(p);
		memcpy(&p, ph + i * sizeof(p), sizeof(p));
		if (p.p_type == PT_NOTE) {
			if (have_note++)
				return fail(s, XSR_E_UNSUPPORTED, "program header %llu at offset 0x%llx: a second PT_NOTE",
					    (unsigned long long)i, (unsigned long long)at);
			if (read_notes(s, p.p_offset, p.p_filesz) < 0)
				return -1;
			continue;
		}
		if (p.p_type != PT_LOAD)
			continue;
		s->nloads++;
		if (p.p_vaddr != p.p_paddr)
			s->paging = 1;
		if (p.p_filesz > p.p_memsz)
			return fail(s, XSR_E_FORMAT, "PT_LOAD %llu at offset 0x%llx: p_filesz 0x%llx > p_memsz 0x%llx",
				    (unsigned long long)i, (unsigned long long)at, (unsigned long long)p.p_filesz,
				    (unsigned long long)p.p_memsz);
		if (!p.p_filesz) /* QEMU: a mapping of no RAM (p_offset -1) */
			continue;
		if (!xsr_in_bounds(p.p_offset, p.p_filesz, s->size))
			return fail(s, XSR_E_TRUNCATED,
				    "PT_LOAD %llu at offset 0x%llx: its data at 0x%llx, 0x%llx octets, runs past the end of the file "
				    "at 0x%llx",
				    (unsigned long long)i, (unsigned long long)at, (unsigned long long)p.p_offset,
				    (unsigned long long)p.p_filesz, (unsigned long long)s->size);
		if (p.p_paddr % PAGE || p.p_paddr / PAGE > XSR_MAX_PFN - (p.p_filesz + PAGE - 1) / PAGE)
			return fail(s, XSR_E_FORMAT, "PT_LOAD %llu at offset 0x%llx: p_paddr 0x%llx is not page aligned or the "
				    "segment ends past the largest pfn", (unsigned long long)i, (unsigned long long)at,
				    (unsigned long long)p.p_paddr);
		uint64_t n = (p.p_filesz + PAGE - 1) / PAGE;
		s->pc[s->npc++] = (struct piece){p.p_paddr / PAGE, n, p.p_offset,
						 (uint32_t)(p.p_filesz % PAGE ? p.p_filesz % PAGE : PAGE), (uint32_t)i};
	}
	if (!have_note)
		return fail(s, XSR_E_FORMAT, "program headers at offset 0x%llx: no PT_NOTE, so no vCPU", (unsigned long long)e.e_phoff);
	return plan_pieces(s);
}

/* ---------------- kdump ---------------- */

static int cmp_chunk(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;
	if (x->loff != y->loff)
		return x->loff < y->loff ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* makedumpfile's flattened form: a 4096-octet header, then be64 offset, be64 length, data; ends with -1, -1. */
static int parse_flat(struct ds *s)
{
	const uint8_t *h = view(s, &s->wb, 0, 0, XSR_KDUMP_FLAT_HEADER, "flattened header");
	if (!h)
		return -1;
	if (be64(h + 16) != 1)
		return fail(s, XSR_E_UNSUPPORTED, "flattened header at offset 0x10: type %llu, not 1 (TYPE_FLAT_HEADER)",
			    (unsigned long long)be64(h + 16));
	size_t cap = 0;
	uint64_t off = XSR_KDUMP_FLAT_HEADER;
	for (;;) {
		const uint8_t *d = view(s, &s->wb, 0, off, 16, "flattened chunk header");
		if (!d)
			return -1;
		uint64_t lo = be64(d), len = be64(d + 8);
		if (lo == UINT64_MAX && len == UINT64_MAX)
			break;
		if (lo >> 63 || !len || len >> 63)
			return fail(s, XSR_E_FORMAT, "flattened chunk header at offset 0x%llx: offset 0x%llx, length 0x%llx",
				    (unsigned long long)off, (unsigned long long)lo, (unsigned long long)len);
		if (len > s->size - off - 16)
			return fail(s, XSR_E_TRUNCATED,
				    "flattened chunk header at offset 0x%llx: %llu octets of data run past the end of the input at "
				    "0x%llx (truncated)",
				    (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
		if (s->nch == DUMP_MAX_CHUNKS)
			return fail(s, XSR_E_LIMIT, "flattened chunk header at offset 0x%llx: more than %u chunks",
				    (unsigned long long)off, DUMP_MAX_CHUNKS);
		if (s->nch == cap) {
			cap = cap ? cap * 2 : 1024;
			struct chunk *c = realloc(s->ch, cap * sizeof(*c));
			if (!c)
				return nomem(s);
			s->ch = c;
		}
		s->ch[s->nch] = (struct chunk){lo, len, off + 16, (uint32_t)s->nch};
		s->nch++;
		off += 16 + len;
	}
	if (!s->nch)
		return fail(s, XSR_E_FORMAT, "flattened kdump: the end marker at offset 0x%llx comes before any data", (unsigned long long)off);
	qsort(s->ch, s->nch, sizeof(*s->ch), cmp_chunk);
	size_t o = 0;
	for (size_t i = 0; i < s->nch; i++) {
		const struct chunk *c = &s->ch[i];
		if (o && c->loff < s->ch[o - 1].loff + s->ch[o - 1].len) {
			const struct chunk *p = &s->ch[o - 1];
			if (c->loff != p->loff || c->len != p->len)
				return fail(s, XSR_E_FORMAT,
					    "flattened chunk at offset 0x%llx (0x%llx octets for offset 0x%llx) overlaps the chunk at "
					    "offset 0x%llx (0x%llx octets for 0x%llx)",
					    (unsigned long long)(c->foff - 16), (unsigned long long)c->len, (unsigned long long)c->loff,
					    (unsigned long long)(p->foff - 16), (unsigned long long)p->len, (unsigned long long)p->loff);
			s->ch[o - 1] = *c; /* the same range written again: the later one, as makedumpfile -R keeps it */
			continue;
		}
		s->ch[o++] = *c;
	}
	s->nch = o;
	s->lsize = s->ch[o - 1].loff + s->ch[o - 1].len;
	if (s->lsize > s->size + DUMP_FLAT_SLACK)
		return fail(s, XSR_E_FORMAT,
			    "flattened chunk at offset 0x%llx: it stands for a file of 0x%llx octets, more than the input's 0x%llx and "
			    "%llu more (its chunks leave too much unwritten)",
			    (unsigned long long)(s->ch[o - 1].foff - 16), (unsigned long long)s->lsize, (unsigned long long)s->size,
			    (unsigned long long)DUMP_FLAT_SLACK);
	free(s->wb.b);
	s->wb = (struct win){0};
	return 0;
}

static void cstr(char *out, const uint8_t *in, size_t n)
{
	size_t k = 0;
	for (; k < n && in[k]; k++)
		out[k] = in[k] >= 0x20 && in[k] < 0x7f && in[k] != '"' && in[k] != '\\' ? (char)in[k] : '?';
	out[k] = 0;
}

/* disk_dump_header and kdump_sub_header (makedumpfile diskdump_mod.h, 64-bit). */
static int kdump_headers(struct ds *s)
{
	uint8_t h[XSR_KDUMP_HEADER_SIZE + XSR_KDUMP_SUB_HEADER_SIZE];
	if (lrd(s, 0, h, XSR_KDUMP_HEADER_SIZE, "kdump header") < 0)
		return -1;
	if (memcmp(h, XSR_KDUMP_SIGNATURE, 8))
		return fail(s, XSR_E_UNSUPPORTED, "kdump header at offset 0x0: signature \"%.8s\", not \"KDUMP   \"", (const char *)h);
	s->hver = le32(h + 8);
	cstr(s->release, h + 12 + 2 * 65, 65);
	cstr(s->machine, h + 12 + 4 * 65, 65);
	s->status = le32(h + 424);
	uint32_t bs = le32(h + 428), sub = le32(h + 432), bmb = le32(h + 436);
	if (bs != PAGE) {
		if (le32(h + 416) == PAGE) /* DiskDumpHeader32: a 10-octet timestamp moves the fields 12 octets down */
			return fail(s, XSR_E_UNSUPPORTED, "kdump header at offset 0x0: the 32-bit layout (a guest not in long mode): "
				    "only x86-64 dumps are read");
		return fail(s, XSR_E_UNSUPPORTED, "kdump header at offset 0x1ac: block_size %u, only 4096 is read", bs);
	}
	if (s->hver < 1 || !sub || bmb < 2 || bmb % 2)
		return fail(s, XSR_E_FORMAT, "kdump header at offset 0x0: header_version %u, sub_hdr_size %u, bitmap_blocks %u "
			    "(need a version, a sub header and two bitmaps of equal blocks)", s->hver, sub, bmb);
	if (s->status & XSR_KDUMP_INCOMPLETE)
		return fail(s, XSR_E_UNSUPPORTED, "kdump header at offset 0x1a8: status 0x%x marks the dump incomplete "
			    "(makedumpfile ran out of space)", s->status);
	if (lrd(s, PAGE, h + XSR_KDUMP_HEADER_SIZE, XSR_KDUMP_SUB_HEADER_SIZE, "kdump sub header") < 0)
		return -1;
	const uint8_t *k = h + XSR_KDUMP_HEADER_SIZE;
	s->phys_base = le64(k);
	s->dump_level = le32(k + 8);
	s->max_mapnr = s->hver >= 6 ? le64(k + 96) : le32(h + 440);
	s->bm_off = (UINT64_C(1) + sub) * PAGE;
	s->bm_len = (uint64_t)(bmb / 2) * PAGE;
	s->desc_off = s->bm_off + 2 * s->bm_len;
	if (!xsr_in_bounds(s->bm_off, 2 * s->bm_len, s->lsize))
		return fail(s, XSR_E_TRUNCATED, "kdump bitmaps at offset 0x%llx: %u blocks run past the end of the %s at 0x%llx",
			    (unsigned long long)s->bm_off, bmb, what_file(s), (unsigned long long)s->lsize);
	if (s->max_mapnr > s->bm_len * 8 || s->max_mapnr > XSR_MAX_PFN + 1)
		return fail(s, XSR_E_FORMAT, "kdump sub header at offset 0x1000: max_mapnr 0x%llx, more pfns than a bitmap of "
			    "0x%llx octets holds", (unsigned long long)s->max_mapnr, (unsigned long long)s->bm_len);
	s->hdr_len = sizeof(h);
	if (!(s->hdr = malloc(sizeof(h))))
		return nomem(s);
	memcpy(s->hdr, h, sizeof(h));
	if (s->hver < 4)
		return fail(s, XSR_E_UNSUPPORTED, "kdump header at offset 0x8: header_version %u has no notes (4 and later do): "
			    "no vCPU", s->hver);
	if (read_notes(s, le64(k + 48), le64(k + 56)) < 0)
		return -1;
	uint64_t vo = le64(k + 32), vl = le64(k + 40);
	if (vl) { /* the sub header's VMCOREINFO (makedumpfile's, QEMU's point into the notes) wins over a note */
		if (vl > XSR_MAX_VMCOREINFO || !xsr_in_bounds(vo, vl, s->lsize))
			return fail(s, XSR_E_FORMAT, "kdump sub header at offset 0x1020: VMCOREINFO at 0x%llx, %llu octets: past "
				    "the end of the %s or more than %u", (unsigned long long)vo, (unsigned long long)vl,
				    what_file(s), XSR_MAX_VMCOREINFO);
		if (!(s->vmci_buf = malloc(vl)))
			return nomem(s);
		if (lrd(s, vo, s->vmci_buf, vl, "VMCOREINFO") < 0)
			return -1;
		s->vmci = s->vmci_buf;
		s->vmci_len = (uint32_t)vl;
	}
	return 0;
}

/* Runs of the second bitmap's pages below max_mapnr; pages of the first it leaves out are counted. */
static int kdump_runs(struct ds *s)
{
	size_t cap = 0;
	uint64_t nbytes = (s->max_mapnr + 7) / 8;
	for (uint64_t b = 0; b < nbytes;) {
		size_t n = nbytes - b < WIN / 2 ? (size_t)(nbytes - b) : WIN / 2;
		const uint8_t *two = view(s, &s->wb, 1, s->bm_off + s->bm_len + b, n, "kdump second bitmap");
		if (!two)
			return -1;
		const uint8_t *one = view(s, &s->wa, 1, s->bm_off + b, n, "kdump first bitmap");
		if (!one)
			return -1;
		for (size_t i = 0; i < n; i++) {
			uint8_t x = two[i], y = one[i] & (uint8_t)~x;
			if (y)
				s->excluded += (uint64_t)__builtin_popcount(y);
			for (unsigned bit = 0; x && bit < 8; bit++) {
				if (!(x >> bit & 1))
					continue;
				uint64_t pfn = (b + i) * 8 + bit;
				if (pfn >= s->max_mapnr)
					break;
				s->npages++;
				if (s->nruns && s->runs[s->nruns - 1].pfn + s->runs[s->nruns - 1].count == pfn) {
					s->runs[s->nruns - 1].count++;
					continue;
				}
				if (s->nruns == XSR_MAX_RUNS)
					return fail(s, XSR_E_LIMIT, "kdump second bitmap at offset 0x%llx: pfn 0x%llx starts a run of "
						    "present pages past the %u an image holds", (unsigned long long)(s->bm_off + s->bm_len + b + i),
						    (unsigned long long)pfn, XSR_MAX_RUNS);
				if (s->nruns == cap) {
					cap = cap ? cap * 2 : 16;
					struct xsr_memrun *r = realloc(s->runs, cap * sizeof(*r));
					if (!r)
						return nomem(s);
					s->runs = r;
				}
				s->runs[s->nruns++] = (struct xsr_memrun){pfn, 1};
			}
		}
		b += n;
	}
	if (!s->npages)
		return fail(s, XSR_E_FORMAT, "kdump second bitmap at offset 0x%llx: no page is present",
			    (unsigned long long)(s->bm_off + s->bm_len));
	if (s->desc_off > s->lsize || s->npages > (s->lsize - s->desc_off) / XSR_KDUMP_PAGE_DESC_SIZE)
		return fail(s, XSR_E_TRUNCATED, "kdump page_desc array at offset 0x%llx: %llu descriptors run past the end of the "
			    "%s at 0x%llx", (unsigned long long)s->desc_off, (unsigned long long)s->npages, what_file(s),
			    (unsigned long long)s->lsize);
	return 0;
}

static int parse_kdump(struct ds *s)
{
	if (s->kind == XSR_QEMU_DUMP_KDUMP_FLAT && parse_flat(s) < 0)
		return -1;
	return kdump_headers(s) < 0 ? -1 : kdump_runs(s);
}

/* Raw snappy (no framing) into exactly @olen octets: NULL, or why not. */
static const char *unsnappy(const uint8_t *in, size_t n, uint8_t *out, size_t olen)
{
	size_t i = 0, o = 0;
	uint64_t ulen = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (i == n || shift > 28)
			return "a bad length preamble";
		uint8_t b = in[i++];
		ulen |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	if (ulen != olen)
		return "its length preamble is not one page";
	while (i < n) {
		uint8_t t = in[i++];
		size_t len, off = 0;
		if ((t & 3) == 0) { /* literal */
			len = (size_t)(t >> 2) + 1;
			if (len > 60) {
				size_t k = len - 60;
				if (n - i < k)
					return "a literal's length runs past the data";
				len = 0;
				for (size_t j = 0; j < k; j++)
					len |= (size_t)in[i + j] << (8 * j);
				len += 1;
				i += k;
			}
			if (len > n - i || len > olen - o)
				return "a literal runs past the data or the page";
			memcpy(out + o, in + i, len);
			i += len, o += len;
			continue;
		}
		if ((t & 3) == 1) {
			if (i == n)
				return "a copy runs past the data";
			len = ((t >> 2) & 7u) + 4;
			off = (size_t)(t >> 5) << 8 | in[i++];
		} else if ((t & 3) == 2) {
			if (n - i < 2)
				return "a copy runs past the data";
			len = (size_t)(t >> 2) + 1;
			off = (size_t)in[i] | (size_t)in[i + 1] << 8;
			i += 2;
		} else {
			if (n - i < 4)
				return "a copy runs past the data";
			len = (size_t)(t >> 2) + 1;
			off = le32(in + i);
			i += 4;
		}
		if (!off || off > o || len > olen - o)
			return "a copy reaches before the page or past it";
		for (size_t k = 0; k < len; k++, o++)
			out[o] = out[o - off];
	}
	return o == olen ? NULL : "it holds less than a page";
}

/* One page from its page_desc: stored raw or inflated into exactly @out's 4096 octets. */
static int kdump_page(struct ds *s, uint64_t i, uint64_t pfn, uint8_t *out)
{
	uint64_t at = s->desc_off + i * XSR_KDUMP_PAGE_DESC_SIZE;
	const uint8_t *d = view(s, &s->wa, 1, at, XSR_KDUMP_PAGE_DESC_SIZE, "kdump page_desc");
	if (!d)
		return -1;
	uint64_t off = le64(d);
	uint32_t size = le32(d + 8), flags = le32(d + 12);
	uint32_t c = flags & (XSR_KDUMP_ZLIB | XSR_KDUMP_LZO | XSR_KDUMP_SNAPPY | XSR_KDUMP_ZSTD);
	if (flags != c || (c & (c - 1)) || !size || size > PAGE || (!c && size != PAGE))
		return fail(s, XSR_E_FORMAT, "kdump page_desc of pfn 0x%llx at offset 0x%llx: flags 0x%x, size %u (need one "
			    "compression or none, and 1..4096 octets, 4096 when raw)", (unsigned long long)pfn,
			    (unsigned long long)at, flags, size);
	if (!xsr_in_bounds(off, size, s->lsize))
		return fail(s, XSR_E_FORMAT, "kdump page_desc of pfn 0x%llx at offset 0x%llx: its data at 0x%llx, %u octets, "
			    "runs past the end of the %s at 0x%llx", (unsigned long long)pfn, (unsigned long long)at,
			    (unsigned long long)off, size, what_file(s), (unsigned long long)s->lsize);
	const uint8_t *p = view(s, &s->wb, 1, off, size, "kdump page data");
	if (!p)
		return -1;
	const char *why = NULL;
	if (!c) {
		memcpy(out, p, PAGE);
		s->nraw++;
	} else if (c == XSR_KDUMP_ZLIB) {
		uLongf dl = PAGE;
		int r = uncompress(out, &dl, p, size);
		why = r != Z_OK ? (r == Z_BUF_ERROR ? "zlib data inflates to more than a page or is cut" : "zlib refused it")
				: dl != PAGE ? "zlib data inflates to less than a page" : NULL;
		s->nzlib++;
	} else if (c == XSR_KDUMP_LZO) {
		lzo_uint dl = PAGE;
		int r = lzo1x_decompress_safe(p, size, out, &dl, NULL);
		why = r != LZO_E_OK ? "LZO refused it (corrupt, or more than a page)" : dl != PAGE ? "LZO data is less than a page" : NULL;
		s->nlzo++;
	} else if (c == XSR_KDUMP_SNAPPY) {
		why = unsnappy(p, size, out, PAGE);
		s->nsnappy++;
	} else {
		size_t r = ZSTD_decompress(out, PAGE, p, size);
		why = ZSTD_isError(r) ? "zstd refused it (corrupt, or more than a page)" : r != PAGE ? "zstd data is less than a page" : NULL;
		s->nzstd++;
	}
	if (why)
		return fail(s, XSR_E_FORMAT, "kdump page data of pfn 0x%llx at offset 0x%llx (page_desc at 0x%llx, %u octets): %s",
			    (unsigned long long)pfn, (unsigned long long)off, (unsigned long long)at, size, why);
	return 0;
}

/* ---------------- the image ---------------- */

static int wfail(struct ds *s, struct xsr_writer *w, int rc, const char *what)
{
	return fail(s, rc < 0 ? rc : XSR_E_FORMAT, "%s: %s", what, xsr_writer_error(w));
}

static int put_item(struct ds *s, struct xsr_writer *w, uint32_t *seq, uint32_t type, const uint8_t *body, uint64_t len)
{
	if (len > XSR_MAX_RECORD - sizeof(struct xsr_passthru_hdr))
		return fail(s, XSR_E_LIMIT, "the dump's %s: %llu octets, more than a PASSTHRU section holds",
			    type ? "note" : "header", (unsigned long long)len);
	struct xsr_passthru_hdr h = {.type = type, .length = (uint32_t)len, .origin = XSR_PT_ORIGIN_QEMU_DUMP, .seq = (*seq)++};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)body, (size_t)len}};
	int r = xsr_writer_add_section(w, XSR_SEC_PASSTHRU, 0, 0, 0, iov, 2);
	return r < 0 ? wfail(s, w, r, "PASSTHRU section") : 0;
}

static const char *compress_name(uint32_t status)
{
	return status & XSR_KDUMP_ZLIB ? "kdump-zlib" : status & XSR_KDUMP_LZO ? "kdump-lzo" : status & XSR_KDUMP_SNAPPY ? "kdump-snappy"
	       : status & XSR_KDUMP_ZSTD ? "kdump-zstd" : "kdump (uncompressed)";
}

static int write_config(struct ds *s, struct xsr_writer *w)
{
	char c[2048];
	int n;
	/* where VMCOREINFO came from, for xsr info (docs/qemu-compat.md) */
	const char *from = !s->vmci ? NULL
			   : s->vmci == s->vmci_buf ? "the kdump sub header (offset_vmcoreinfo, size_vmcoreinfo)"
						    : "the dump's VMCOREINFO note (QEMU copies it from the guest's vmcoreinfo device)";
	if (s->kind == XSR_QEMU_DUMP_ELF)
		n = snprintf(c, sizeof(c),
			     "{\"qemu_dump\": {\"source\": \"dump-guest-memory\", \"format\": \"elf\", \"paging\": %s, "
			     "\"pt_loads\": %u, \"pages\": %llu, \"runs\": %u, \"vcpus\": %u, \"vcpu_notes\": \"%s%s\", "
			     "\"vmcoreinfo\": %s%s%s%s, \"absent_pages\": \"not in any run\"}}\n",
			     s->paging ? "true" : "false", s->nloads, (unsigned long long)s->npages, s->nruns,
			     s->nprs ? s->nprs : s->nqs, s->nprs && s->nqs ? "NT_PRSTATUS and QEMU" : s->nprs ? "NT_PRSTATUS" : "QEMU",
			     s->i386 ? " (i386: not in long mode)" : "",
			     s->vmci ? "true" : "false", from ? ", \"vmcoreinfo_from\": \"" : "", from ? from : "", from ? "\"" : "");
	else
		n = snprintf(c, sizeof(c),
			     "{\"qemu_dump\": {\"source\": \"dump-guest-memory\", \"format\": \"%s\", \"flattened\": %s, "
			     "\"header_version\": %u, \"status\": %u, \"dump_level\": %u, \"phys_base\": %llu, \"max_mapnr\": %llu, "
			     "\"release\": \"%s\", \"machine\": \"%s\", \"pages\": %llu, \"excluded_pages\": %llu, \"runs\": %u, "
			     "\"vcpus\": %u, \"vcpu_notes\": \"%s%s\", \"vmcoreinfo\": %s%s%s%s, \"absent_pages\": \"not in any run\"}}\n",
			     compress_name(s->status), s->kind == XSR_QEMU_DUMP_KDUMP_FLAT ? "true" : "false", s->hver, s->status,
			     s->dump_level, (unsigned long long)s->phys_base, (unsigned long long)s->max_mapnr, s->release,
			     s->machine, (unsigned long long)s->npages, (unsigned long long)s->excluded, s->nruns,
			     s->nprs ? s->nprs : s->nqs, s->nprs && s->nqs ? "NT_PRSTATUS and QEMU" : s->nprs ? "NT_PRSTATUS" : "QEMU",
			     s->i386 ? " (i386: not in long mode)" : "",
			     s->vmci ? "true" : "false", from ? ", \"vmcoreinfo_from\": \"" : "", from ? from : "", from ? "\"" : "");
	int r = xsr_writer_add(w, XSR_SEC_CONFIG, 0, c, (uint64_t)n);
	return r < 0 ? wfail(s, w, r, "CONFIG section") : 0;
}

static int write_vcpus(struct ds *s, struct xsr_writer *w)
{
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	if (!st)
		return nomem(s);
	uint32_t nv = s->nprs ? s->nprs : s->nqs;
	for (uint32_t v = 0; v < nv; v++) {
		vcpu_of(s, v, st);
		int r = xsr_writer_set_vcpu(w, st);
		if (r < 0) {
			free(st);
			return wfail(s, w, r, "vCPU");
		}
	}
	free(st);
	return 0;
}

struct batch {
	uint64_t pfn[BATCH];
	const void *ptr[BATCH];
	uint8_t *buf;
	uint32_t n;
	uint64_t done;
};

static int flush(struct ds *s, struct xsr_writer *w, struct batch *b, const struct xsr_qemu_dump_import_opts *o)
{
	if (!b->n)
		return 0;
	int r = xsr_writer_put_pages(w, b->pfn, b->n, b->ptr);
	if (r < 0)
		return wfail(s, w, r, "pages");
	b->done += b->n;
	b->n = 0;
	if (o->cb.progress)
		o->cb.progress(o->cb.progress_ctx, b->done, s->npages);
	return 0;
}

static int write_pages(struct ds *s, struct xsr_writer *w, const struct xsr_qemu_dump_import_opts *o)
{
	struct batch b = {.buf = malloc((size_t)BATCH * PAGE)};
	if (!b.buf)
		return nomem(s);
	int rc = 0;
	if (s->kind == XSR_QEMU_DUMP_ELF) {
		for (size_t i = 0; i < s->npc && !rc; i++) {
			const struct piece *p = &s->pc[i];
			for (uint64_t k = 0; k < p->n && !rc;) {
				uint32_t m = p->n - k < BATCH ? (uint32_t)(p->n - k) : BATCH;
				uint64_t len = (uint64_t)m * PAGE;
				if (k + m == p->n && p->tail < PAGE) { /* p_filesz ends inside the last page: the rest is zeros */
					len -= PAGE - p->tail;
					memset(b.buf + len, 0, PAGE - p->tail);
				}
				if ((rc = raw_rd(s, p->off + k * PAGE, b.buf, len, "PT_LOAD data")) < 0)
					break;
				for (uint32_t j = 0; j < m; j++) {
					b.pfn[j] = p->pfn + k + j;
					b.ptr[j] = b.buf + (size_t)j * PAGE;
				}
				b.n = m;
				rc = flush(s, w, &b, o);
				k += m;
			}
		}
	} else {
		uint64_t i = 0;
		for (uint32_t r = 0; r < s->nruns && !rc; r++)
			for (uint64_t k = 0; k < s->runs[r].count && !rc; k++, i++) {
				uint64_t pfn = s->runs[r].pfn + k;
				if ((rc = kdump_page(s, i, pfn, b.buf + (size_t)b.n * PAGE)) < 0)
					break;
				b.pfn[b.n] = pfn;
				b.ptr[b.n] = b.buf + (size_t)b.n * PAGE;
				if (++b.n == BATCH)
					rc = flush(s, w, &b, o);
			}
		if (!rc)
			rc = flush(s, w, &b, o);
	}
	free(b.buf);
	return rc;
}

static int write_image(struct ds *s, int out, const struct xsr_qemu_dump_import_opts *o)
{
	char ver[64];
	if (s->kind == XSR_QEMU_DUMP_ELF)
		snprintf(ver, sizeof(ver), "dump-guest-memory, ELF core%s", s->paging ? " (paging)" : "");
	else
		snprintf(ver, sizeof(ver), "dump-guest-memory, %s%s", compress_name(s->status),
			 s->kind == XSR_QEMU_DUMP_KDUMP_FLAT ? " (flattened)" : "");
	if (s->vmci && (!s->vmci_len || s->vmci_len > XSR_MAX_VMCOREINFO)) {
		if (o->cb.note)
			o->cb.note(o->cb.note_ctx, "the VMCOREINFO note is empty or too long: left out of the image");
		s->vmci = NULL;
	}
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = XSR_KIND_CORE, .layout = (uint8_t)o->layout,
		.nr_vcpus = s->nprs ? s->nprs : s->nqs, .nr_runs = s->nruns, .runs = s->runs, .hypervisor = "qemu",
		.hypervisor_version = ver, .compress = o->compress, .vmcoreinfo = s->vmci, .vmcoreinfo_len = s->vmci_len,
	};
	struct xsr_writer *w = NULL;
	int rc = xsr_writer_open(&w, out, &p, s->err, sizeof(s->err));
	if (rc < 0) {
		s->code = rc;
		return -1;
	}
	uint32_t seq = 0;
	int bad = put_item(s, w, &seq, 0, s->hdr, s->hdr_len) < 0;
	for (uint32_t i = 0; i < s->nnt && !bad; i++)
		bad = put_item(s, w, &seq, 1, s->notes + s->nt[i].off, s->nt[i].len) < 0;
	if (bad || write_config(s, w) < 0 || write_vcpus(s, w) < 0 || write_pages(s, w, o) < 0) {
		xsr_writer_abort(w);
		return -1;
	}
	struct xsr_writer_stats ws;
	rc = xsr_writer_close_stats(w, &ws, s->err, sizeof(s->err));
	if (rc < 0) {
		s->code = rc;
		return -1;
	}
	s->zero_pages = ws.zero_pages;
	return 0;
}

/* ---------------- the API ---------------- */

static int sniff(struct ds *s)
{
	uint8_t m[16] = {0};
	if (raw_rd(s, 0, m, s->size < sizeof(m) ? s->size : sizeof(m), "file start") < 0)
		return -1;
	if (s->size >= 16 && !memcmp(m, XSR_KDUMP_FLAT_SIGNATURE "\0\0\0", 16))
		return XSR_QEMU_DUMP_KDUMP_FLAT;
	if (s->size >= 8 && !memcmp(m, XSR_KDUMP_SIGNATURE, 8))
		return XSR_QEMU_DUMP_KDUMP;
	if (s->size >= 4 && !memcmp(m, ELFMAG, SELFMAG))
		return XSR_QEMU_DUMP_ELF;
	return fail(s, XSR_E_UNSUPPORTED, "not a dump-guest-memory file: no ELF magic, \"KDUMP   \" or \"makedumpfile\" at offset 0");
}

static int import_src(struct ds *s, int out_fd, const struct xsr_qemu_dump_import_opts *o,
		      struct xsr_qemu_dump_import_stats *st, char *err, size_t errlen)
{
	static const struct xsr_qemu_dump_import_opts none;
	if (!o)
		o = &none;
	s->lsize = s->size;
	int rc = 0;
	if (o->layout != 0 && o->layout != XSR_LAYOUT_SEEKABLE && o->layout != XSR_LAYOUT_STREAM) {
		rc = fail(s, XSR_E_INVAL, "layout %d: need 0, XSR_LAYOUT_SEEKABLE or XSR_LAYOUT_STREAM", o->layout);
	} else if (lzo_init() != LZO_E_OK) {
		rc = fail(s, XSR_E_UNSUPPORTED, "the LZO library does not initialise");
	} else if ((s->kind = sniff(s)) < 0) {
		rc = -1;
	} else {
		rc = s->kind == XSR_QEMU_DUMP_ELF ? parse_elf(s) : parse_kdump(s);
		if (rc == 0)
			rc = write_image(s, out_fd, o);
	}
	if (rc < 0) {
		xsr_fmt(err, errlen, "%s", s->err);
		rc = s->code < 0 ? s->code : XSR_E_FORMAT;
	}
	if (st) {
		static const char *const fmt[] = {"?", "ELF core", "kdump-compressed", "kdump-compressed (flattened)"};
		*st = (struct xsr_qemu_dump_import_stats){
			.format = fmt[s->kind > 0 && s->kind <= 3 ? s->kind : 0], .kind = (uint32_t)(s->kind > 0 ? s->kind : 0),
			.paging = s->paging, .in_size = s->size, .nr_vcpus = s->nprs ? s->nprs : s->nqs, .nr_notes = s->nnt,
			.nr_loads = s->nloads, .nr_chunks = (uint32_t)s->nch, .nr_runs = s->nruns, .nr_pages = s->npages,
			.excluded = s->excluded, .zero_pages = s->zero_pages, .raw = s->nraw, .zlib = s->nzlib, .lzo = s->nlzo,
			.snappy = s->nsnappy, .zstd = s->nzstd, .vmcoreinfo_len = s->vmci ? s->vmci_len : 0,
			.header_version = s->hver, .dump_level = s->dump_level};
		memcpy(st->machine, s->machine, sizeof(st->machine));
	}
	free(s->ch);
	free(s->wa.b);
	free(s->wb.b);
	free(s->hdr);
	free(s->notes);
	free(s->vmci_buf);
	free(s->nt);
	free(s->prs);
	free(s->qs);
	free(s->pc);
	free(s->runs);
	return rc;
}

int xsr_qemu_dump_import_fd(int in_fd, int out_fd, const struct xsr_qemu_dump_import_opts *o,
			    struct xsr_qemu_dump_import_stats *st, char *err, size_t errlen)
{
	struct stat sb;
	if (st)
		memset(st, 0, sizeof(*st));
	if (fstat(in_fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		xsr_fmt(err, errlen, "the input must be a regular file (seekable)");
		return XSR_E_INVAL;
	}
	struct ds s = {0};
	xsr_source_fd(&s.in, in_fd);
	s.size = (uint64_t)sb.st_size;
	return import_src(&s, out_fd, o, st, err, errlen);
}

int xsr_qemu_dump_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_qemu_dump_import_opts *o,
			     struct xsr_qemu_dump_import_stats *st, char *err, size_t errlen)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!buf && len) {
		xsr_fmt(err, errlen, "xsr_qemu_dump_import_mem: no buffer");
		return XSR_E_INVAL;
	}
	struct ds s = {0};
	xsr_source_mem(&s.in, buf, len);
	s.size = len;
	return import_src(&s, out_fd, o, st, err, errlen);
}

int xsr_qemu_dump_detect_fd(int fd)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return XSR_QEMU_DUMP_NONE;
	struct ds s = {0};
	xsr_source_fd(&s.in, fd);
	s.size = s.lsize = (uint64_t)sb.st_size;
	int kind = sniff(&s);
	if (kind != XSR_QEMU_DUMP_ELF) /* a read that failed is an answer too: the caller must not go on as if */
		return kind < 0 ? (s.code == XSR_E_IO ? XSR_E_IO : XSR_QEMU_DUMP_NONE) : kind;
	/*
	 * An ELF core with program headers: xc_core has none, and an xsrelf
	 * image (which may carry QEMU notes) says so after its ELF header.
	 * Broken notes or loads are the import's to name, so they are not
	 * looked at here.
	 */
	uint8_t h[256];
	size_t n = s.size < sizeof(h) ? (size_t)s.size : sizeof(h);
	if (n < sizeof(Elf64_Ehdr))
		return XSR_QEMU_DUMP_NONE;
	if (raw_rd(&s, 0, h, n, "ELF header") < 0)
		return s.code == XSR_E_IO ? XSR_E_IO : XSR_QEMU_DUMP_NONE;
	if (xsr_sniff_layout(h, n))
		return XSR_QEMU_DUMP_NONE;
	/* e_type and e_phnum, little-endian; an ELF32 header has e_phnum at 44: a 32-bit dump is the import's to refuse */
	uint16_t type = (uint16_t)(h[16] | h[17] << 8);
	size_t at = h[EI_CLASS] == ELFCLASS32 ? offsetof(Elf32_Ehdr, e_phnum) : offsetof(Elf64_Ehdr, e_phnum);
	uint16_t phnum = (uint16_t)(h[at] | h[at + 1] << 8);
	return type == ET_CORE && phnum ? XSR_QEMU_DUMP_ELF : XSR_QEMU_DUMP_NONE;
}
