/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test-guest loader: copies the guest ELF's PT_LOADs to their physical
 * addresses, builds a GDT and 4-level page tables *in guest memory* (so a
 * tool that walks CR3 in an image finds real tables) and puts every vCPU
 * straight into 64-bit mode at the entry point: no firmware, no INIT/SIPI.
 *
 * Guest-physical layout:
 *   0x1000  GDT (null, code64, data, 64-bit TSS descriptor) and the TSS
 *   0x2000  PML4     0x3000  PDPT for the top 2 GiB
 *   0x4000  PD for 0xffffffff80000000 (first GiB)   0x5000  PD, second GiB
 *   0x6000  PT for the first 2 MiB (4 KiB pages; the guest lives there)
 *   0x100000  the guest image (guest/guest.ld)
 * Virtual = physical + XSR_GUEST_KERNEL_VMA for the first min(RAM, 2 GiB);
 * nothing is identity mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/kvm.h"
#include "../util/err.h"
#include "vmm.h"

#define GDT_PA 0x1000u
#define TSS_PA 0x1100u
#define PML4_PA 0x2000u
#define PDPT_PA 0x3000u
#define PD0_PA 0x4000u
#define PD1_PA 0x5000u
#define PT0_PA 0x6000u
#define TABLES_END 0x7000u
#define GUEST_LOW_LIMIT 0x100000u /* PT_LOADs must not overlap the tables */

#define PTE_P 0x1u
#define PTE_RW 0x2u
#define PTE_PS 0x80u

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS 0x18

int vmm_guest_runs(uint64_t mem, struct xsr_memrun runs[2], uint32_t *nr, char *err, size_t errlen)
{
	if (mem < XSR_GUEST_MIN_MEM || mem % XSR_PAGE_SIZE)
		return util_fail(err, errlen, XSR_E_INVAL,
				 "memory size %llu: need a multiple of 4 KiB, at least %llu MiB",
				 (unsigned long long)mem, (unsigned long long)(XSR_GUEST_MIN_MEM >> 20));
	if (mem > (UINT64_C(1) << 46))
		return util_fail(err, errlen, XSR_E_INVAL, "memory size %llu: more than 64 TiB",
				 (unsigned long long)mem);
	runs[0].pfn = 0;
	if (mem <= XSR_GUEST_LOW_MEM_END) {
		runs[0].count = mem >> XSR_PAGE_SHIFT;
		*nr = 1;
		return 0;
	}
	runs[0].count = XSR_GUEST_LOW_MEM_END >> XSR_PAGE_SHIFT;
	runs[1].pfn = (UINT64_C(4) << 30) >> XSR_PAGE_SHIFT;
	runs[1].count = (mem - XSR_GUEST_LOW_MEM_END) >> XSR_PAGE_SHIFT;
	*nr = 2;
	return 0;
}

int vmm_guest_default_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -1;
	exe[n] = 0;
	if ((size_t)snprintf(buf, len, "%s/xsr-guest.elf", dirname(exe)) >= len)
		return -1;
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static int build_tables(struct xsr_backend *be, uint64_t low_end, char *err, size_t errlen)
{
	uint8_t *gdt = kvm_gpa(be, GDT_PA, 0x100);
	uint8_t *pml4 = kvm_gpa(be, PML4_PA, XSR_PAGE_SIZE);
	uint8_t *pdpt = kvm_gpa(be, PDPT_PA, XSR_PAGE_SIZE);
	uint8_t *pd0 = kvm_gpa(be, PD0_PA, XSR_PAGE_SIZE);
	uint8_t *pd1 = kvm_gpa(be, PD1_PA, XSR_PAGE_SIZE);
	uint8_t *pt0 = kvm_gpa(be, PT0_PA, XSR_PAGE_SIZE);
	uint64_t tss = XSR_GUEST_KERNEL_VMA + TSS_PA;

	if (!gdt || !pml4 || !pdpt || !pd0 || !pd1 || !pt0)
		return util_fail(err, errlen, XSR_E_INVAL,
				 "guest memory does not cover the page tables at 0x%x..0x%x", GDT_PA,
				 TABLES_END);
	memset(gdt, 0, XSR_PAGE_SIZE);
	put64(gdt + SEL_CODE, UINT64_C(0x00af9a000000ffff)); /* 64-bit code, DPL 0 */
	put64(gdt + SEL_DATA, UINT64_C(0x00cf92000000ffff)); /* flat data */
	/* 64-bit TSS descriptor (16 octets), busy, limit 0x67 */
	put64(gdt + SEL_TSS, UINT64_C(0x67) | ((tss & 0xffffff) << 16) | (UINT64_C(0x8b) << 40) |
				 (((tss >> 24) & 0xff) << 56));
	put64(gdt + SEL_TSS + 8, tss >> 32);

	memset(pml4, 0, XSR_PAGE_SIZE);
	memset(pdpt, 0, XSR_PAGE_SIZE);
	memset(pd0, 0, XSR_PAGE_SIZE);
	memset(pd1, 0, XSR_PAGE_SIZE);
	memset(pt0, 0, XSR_PAGE_SIZE);
	put64(pml4 + 511 * 8, PDPT_PA | PTE_P | PTE_RW);
	put64(pdpt + 510 * 8, PD0_PA | PTE_P | PTE_RW);
	if (low_end > (UINT64_C(1) << 30))
		put64(pdpt + 511 * 8, PD1_PA | PTE_P | PTE_RW);
	/* First 2 MiB in 4 KiB pages: the walk there goes through all four levels. */
	put64(pd0, PT0_PA | PTE_P | PTE_RW);
	for (uint64_t i = 0; i < 512 && (i + 1) * XSR_PAGE_SIZE <= low_end; i++)
		put64(pt0 + i * 8, (i * XSR_PAGE_SIZE) | PTE_P | PTE_RW);
	/* The rest in 2 MiB pages, as far as RAM (up to 2 GiB) reaches. */
	for (uint64_t i = 1; i < 1024; i++) {
		uint64_t pa = i << 21;

		if (pa + (UINT64_C(1) << 21) > low_end)
			break;
		put64((i < 512 ? pd0 : pd1) + (i % 512) * 8, pa | PTE_P | PTE_RW | PTE_PS);
	}
	return 0;
}

static int load_elf(struct xsr_backend *be, Elf *e, const char *path, uint64_t low_end,
		    struct xsr_guest_info *gi, char *err, size_t errlen)
{
	GElf_Ehdr eh;
	size_t phnum, shstrndx;
	Elf_Scn *scn = NULL;
	int have_counters = 0, have_errors = 0;
	uint64_t counters_va = 0, errors_va = 0, counters_size = 0;

	if (!gelf_getehdr(e, &eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
		return util_fail(err, errlen, XSR_E_INVAL, "%s: not an x86-64 ELF executable", path);
	if (elf_getphdrnum(e, &phnum) < 0 || elf_getshdrstrndx(e, &shstrndx) < 0)
		return util_fail(err, errlen, XSR_E_INVAL, "%s: %s", path, elf_errmsg(-1));
	gi->entry = eh.e_entry;

	size_t fsize = 0;
	char *image = elf_rawfile(e, &fsize);
	if (!image)
		return util_fail(err, errlen, XSR_E_INVAL, "%s: %s", path, elf_errmsg(-1));
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e, (int)i, &ph))
			return util_fail(err, errlen, XSR_E_INVAL, "%s: program header %zu: %s", path, i,
					 elf_errmsg(-1));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_vaddr - ph.p_paddr != XSR_GUEST_KERNEL_VMA)
			return util_fail(err, errlen, XSR_E_INVAL,
					 "%s: PT_LOAD %zu: vaddr 0x%llx - paddr 0x%llx is not "
					 "0x%llx, the only offset the VMM maps",
					 path, i, (unsigned long long)ph.p_vaddr,
					 (unsigned long long)ph.p_paddr,
					 (unsigned long long)XSR_GUEST_KERNEL_VMA);
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > fsize ||
		    ph.p_filesz > fsize - ph.p_offset)
			return util_fail(err, errlen, XSR_E_INVAL, "%s: PT_LOAD %zu: file range out of bounds", path,
					 i);
		if (ph.p_paddr < GUEST_LOW_LIMIT || ph.p_paddr > low_end ||
		    ph.p_memsz > low_end - ph.p_paddr)
			return util_fail(err, errlen, XSR_E_INVAL,
					 "%s: PT_LOAD %zu at paddr 0x%llx+0x%llx does not fit "
					 "in guest RAM 0x%x..0x%llx",
					 path, i, (unsigned long long)ph.p_paddr,
					 (unsigned long long)ph.p_memsz, GUEST_LOW_LIMIT,
					 (unsigned long long)low_end);
		uint8_t *dst = kvm_gpa(be, ph.p_paddr, ph.p_memsz);
		if (!dst)
			return util_fail(err, errlen, XSR_E_INVAL, "%s: PT_LOAD %zu: not in guest memory", path, i);
		memcpy(dst, image + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}

	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(d, (int)i, &sym))
				break;
			name = elf_strptr(e, sh.sh_link, sym.st_name);
			if (!name)
				continue;
			if (!strcmp(name, "guest_counters")) {
				counters_va = sym.st_value;
				counters_size = sym.st_size;
				have_counters = 1;
			} else if (!strcmp(name, "guest_errors")) {
				errors_va = sym.st_value;
				have_errors = 1;
			}
		}
	}
	if (!have_counters || !have_errors)
		return util_fail(err, errlen, XSR_E_INVAL, "%s: no symbol %s in the symbol table", path,
				 have_counters ? "guest_errors" : "guest_counters");
	if (counters_size < 8 || counters_va < XSR_GUEST_KERNEL_VMA ||
	    errors_va < XSR_GUEST_KERNEL_VMA)
		return util_fail(err, errlen, XSR_E_INVAL,
				 "%s: guest_counters/guest_errors are not where the guest "
				 "is linked",
				 path);
	gi->counters_gpa = counters_va - XSR_GUEST_KERNEL_VMA;
	gi->errors_gpa = errors_va - XSR_GUEST_KERNEL_VMA;
	gi->nr_counters = (uint32_t)(counters_size / 8);
	return 0;
}

static void boot_vcpu(struct xsr_vcpu_state *st, uint32_t id, uint64_t entry)
{
	struct xsr_x86_vcpu *r = &st->r;
	const struct xsr_x86_segment code = {.selector = SEL_CODE,
					     .limit = 0xffffffff,
					     .attr = 0xb | 1 << 4 | 1 << 7 | 1 << 9 | 1 << 11};
	const struct xsr_x86_segment data = {.selector = SEL_DATA,
					     .limit = 0xffffffff,
					     .attr = 0x3 | 1 << 4 | 1 << 7 | 1 << 10 | 1 << 11};

	memset(r, 0, sizeof(*r));
	r->vcpu_id = id;
	r->valid = XSR_VCPU_HAVE_SREGS;
	r->rip = entry;
	r->rflags = 0x2; /* interrupts off: the guest has no IDT */
	r->gpr[XSR_RDI] = id;
	r->cs = code;
	r->ds = r->es = r->fs = r->gs = r->ss = data;
	r->tr = (struct xsr_x86_segment){.base = XSR_GUEST_KERNEL_VMA + TSS_PA,
					 .limit = 0x67,
					 .selector = SEL_TSS,
					 .attr = 0xb | 1 << 7};
	r->ldt = (struct xsr_x86_segment){.attr = 0x2 | 1 << 7 | 1 << 12}; /* unusable */
	r->gdt.base = XSR_GUEST_KERNEL_VMA + GDT_PA;
	r->gdt.limit = SEL_TSS + 16 - 1;
	r->cr0 = 0x80050033; /* PG WP NE ET MP PE */
	r->cr3 = PML4_PA;
	r->cr4 = 0x620;	 /* OSXMMEXCPT OSFXSR PAE */
	r->efer = 0x500; /* LMA LME */
	r->mp_state = 0; /* KVM_MP_STATE_RUNNABLE, APs included */
}

int vmm_guest_load(struct xsr_backend *be, const char *path, uint32_t nr_vcpus,
		   struct xsr_guest_info *gi, char *err, size_t errlen)
{
	struct xsr_domain_info info;
	struct xsr_vcpu_state *st;
	uint64_t low_end;
	Elf *e;
	int fd, r;

	r = be->ops->describe(be, &info);
	if (r < 0)
		return util_fail(err, errlen, XSR_E_INVAL, "%s", be->ops->error(be));
	if (info.nr_runs < 1 || info.runs[0].pfn != 0)
		return util_fail(err, errlen, XSR_E_INVAL, "guest memory must start at physical address 0");
	low_end = info.runs[0].count << XSR_PAGE_SHIFT;
	if (low_end > (UINT64_C(2) << 30))
		low_end = UINT64_C(2) << 30; /* what the two PDs map */

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return util_fail(err, errlen, XSR_E_INVAL, "cannot open guest %s: %s", path, strerror(errno));
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e) {
		close(fd);
		return util_fail(err, errlen, XSR_E_INVAL, "%s: %s", path, elf_errmsg(-1));
	}
	r = build_tables(be, low_end, err, errlen);
	if (r == 0)
		r = load_elf(be, e, path, low_end, gi, err, errlen);
	elf_end(e);
	close(fd);
	if (r < 0)
		return r;
	if (nr_vcpus > gi->nr_counters)
		return util_fail(err, errlen, XSR_E_INVAL, "%s supports %u vCPUs (guest_counters[%u]), asked for %u",
				 path, gi->nr_counters, gi->nr_counters, nr_vcpus);

	st = calloc(1, sizeof(*st));
	if (!st)
		return util_fail(err, errlen, XSR_E_INVAL, "out of memory");
	for (uint32_t i = 0; i < nr_vcpus && r == 0; i++) {
		boot_vcpu(st, i, gi->entry);
		r = be->ops->set_vcpu(be, st);
		if (r < 0)
			snprintf(err, errlen, "%s", be->ops->error(be));
	}
	free(st);
	return r;
}
