/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Native save of a 64-bit PV domain (xsr save DOMID).
 *
 * libxl suspends the guest cooperatively (libxl_domain_suspend_only: the
 * xenstore/event-channel handshake, ~40 ms in the rig); then this file writes
 * into an anonymous memory file the libxl v2 / libxc v3 stream that
 * libxenguest's xc_domain_save would write for the suspended domain -- every
 * record, but with the page data areas left as holes -- and the importer
 * (xen/import.c, xen_import_opts.pages) turns that into the image, taking
 * each PAGE_DATA record's pages straight from the guest: mapped 1024 frames
 * at a time with xenforeignmemory_map, page tables normalised to pfns as
 * libxenguest does.  Guest memory is copied once, into the image, where the
 * libxl path copies it three times (into libxl's stream, out of it, into the
 * image) -- the difference between being slower and faster than `xl save`
 * (docs/xen-rig.md).  The image is the one `xsr import` makes of the xl
 * save file of the same state, record for record, so restore, export and
 * crash treat both alike.
 *
 * What xc_domain_save does that this follows (Xen 4.17,
 * tools/libs/guest/xg_sr_save*.c): the p2m is found from shared_info
 * (linear list under p2m_cr3/p2m_vaddr, or the 3-level frame list tree),
 * X86_PV_P2M_FRAMES lists the pfns of its frames; pfn types come from
 * XEN_DOMCTL_getpageframeinfo3 per batch of 1024; page tables have their
 * present entries' frames translated through the M2P (and Xen's L4 slots
 * cleared); vCPU records translate cr3, cr1, the GDT frames and vCPU 0's
 * start_info frame (edx); TSC, shared info, CPUID and MSR policies are taken
 * as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"

#if defined(XSR_HAVE_XEN) && __has_include(<xenctrl.h>) && __has_include(<libxl.h>)

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>

#include <xsrelf/xen.h>
#include "xen_priv.h"
#include "../util/err.h"

#define PTE_FRAME UINT64_C(0x000ffffffffff000)
#define PTE_PRESENT 0x1u
#define PTE_PSE 0x80u
#define BATCH 1024u
#define NSLOT 48 /* batches mapped at most at once: 192 MiB of mappings */

struct slot;

struct nsave {
	uint32_t domid;
	xc_interface *xch;
	xenforeignmemory_handle *fmem;
	xc_dominfo_t info;
	/* the M2P (mfn -> pfn), Xen's read-only table */
	xen_pfn_t *m2p;
	size_t m2p_len;
	unsigned long max_mfn;
	/* the guest's p2m (pfn -> mfn), its frames mapped */
	uint64_t *p2m;
	uint64_t *p2m_mfns; /* frames of the p2m list */
	uint32_t p2m_frames, p2m_hint;
	int borrowed; /* the importer holds a page of the p2m mapping */
	uint64_t max_pfn;
	/* the synthetic stream */
	int mfd;
	uint64_t off;
	/* the batches handed to the importer (mapper thread) */
	uint8_t *types; /* per pfn, as in the PAGE_DATA records */
	struct slot *slots, *sync, *cur;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t mapper_tid;
	int mapper, quit;
	uint64_t t_map; /* XSR_XEN_TIMING: waiting for batches */
	char err[512];
};

/*
 * SIGINT, SIGTERM, SIGHUP during a save (xsr_domain_save_opts.catch_signals): the
 * save stops at the next batch and the domain is resumed, rather than the
 * process dying with the domain suspended.
 */
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig) { stop_sig = sig; }

static void catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a reader that goes away is a write error: the save fails, the domain resumes */
}

/* The reason into the save's message, and -1 back. */
#define nfail(n, ...) util_fail((n)->err, sizeof((n)->err), -1, __VA_ARGS__)

static int mfn_ok(const struct nsave *n, uint64_t mfn)
{
	/* max_mfn is Xen's max_page, one past the last frame; the M2P mapping ends at entry m2p_len / 8 */
	return mfn < n->max_mfn && mfn < n->m2p_len / sizeof(xen_pfn_t) && n->m2p[mfn] <= n->max_pfn &&
	       n->p2m[n->m2p[mfn]] == mfn;
}

/* ---------------- the stream ---------------- */

static int put(struct nsave *n, const void *b, size_t len)
{
	const uint8_t *p = b;
	while (len) {
		ssize_t w = pwrite(n->mfd, p, len, (off_t)n->off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return nfail(n, "writing the stream: %s", w < 0 ? strerror(errno) : "short write");
		p += w;
		len -= (size_t)w;
		n->off += (uint64_t)w;
	}
	return 0;
}

/* One record: type, length, body (@b1 then @b2), zero padding to 8. */
static int rec2(struct nsave *n, uint32_t type, const void *b1, uint32_t l1, const void *b2, uint32_t l2)
{
	static const uint8_t zero[8];
	uint32_t h[2] = {type, l1 + l2};
	uint32_t pad = ((l1 + l2 + 7u) & ~7u) - (l1 + l2);
	if (put(n, h, 8) < 0 || (l1 && put(n, b1, l1) < 0) || (l2 && put(n, b2, l2) < 0) || (pad && put(n, zero, pad) < 0))
		return -1;
	return 0;
}

static int rec(struct nsave *n, uint32_t type, const void *b, uint32_t len) { return rec2(n, type, b, len, NULL, 0); }

static uint32_t be32(uint32_t v) { return __builtin_bswap32(v); }

static int stream_headers(struct nsave *n)
{
	uint8_t lh[16], ih[24] = {0}, dh[16] = {0};
	uint64_t ident = __builtin_bswap64(XEN_LIBXL_IDENT);
	uint32_t ver = be32(2), opt = 0;
	memcpy(lh, &ident, 8);
	memcpy(lh + 8, &ver, 4);
	memcpy(lh + 12, &opt, 4);
	uint32_t lxc[2] = {XEN_LT_LIBXC_CONTEXT, 0};
	memset(ih, 0xff, 8);
	uint32_t id = be32(XEN_LIBXC_ID), v3 = be32(3);
	memcpy(ih + 8, &id, 4);
	memcpy(ih + 12, &v3, 4);
	int xv = xc_version(n->xch, XENVER_version, NULL);
	uint32_t dtype = XEN_DHDR_X86_PV, xmaj = (uint32_t)xv >> 16, xmin = (uint32_t)xv & 0xffff;
	uint16_t shift = 12;
	memcpy(dh, &dtype, 4);
	memcpy(dh + 4, &shift, 2);
	memcpy(dh + 8, &xmaj, 4);
	memcpy(dh + 12, &xmin, 4);
	if (xv < 0)
		return nfail(n, "xc_version: %s", strerror(errno));
	return put(n, lh, 16) < 0 || put(n, lxc, 8) < 0 || put(n, ih, 24) < 0 || put(n, dh, 16) < 0 ? -1 : 0;
}

static int cpu_policy(struct nsave *n)
{
	uint32_t nl = 0, nm = 0;
	int rc = -1;
	xc_cpu_policy_t *pol = NULL;
	xen_cpuid_leaf_t *leaves = NULL;
	xen_msr_entry_t *msrs = NULL;
	if (xc_cpu_policy_get_size(n->xch, &nl, &nm) < 0)
		return nfail(n, "xc_cpu_policy_get_size: %s", strerror(errno));
	leaves = calloc(nl ? nl : 1, sizeof(*leaves));
	msrs = calloc(nm ? nm : 1, sizeof(*msrs));
	pol = xc_cpu_policy_init();
	if (!leaves || !msrs || !pol) {
		nfail(n, "out of memory");
		goto out;
	}
	if (xc_cpu_policy_get_domain(n->xch, n->domid, pol) < 0 ||
	    xc_cpu_policy_serialise(n->xch, pol, leaves, &nl, msrs, &nm) < 0) {
		nfail(n, "reading domain %u's CPU policy: %s", n->domid, strerror(errno));
		goto out;
	}
	if ((nl && rec(n, XEN_RT_X86_CPUID_POLICY, leaves, nl * (uint32_t)sizeof(*leaves)) < 0) ||
	    (nm && rec(n, XEN_RT_X86_MSR_POLICY, msrs, nm * (uint32_t)sizeof(*msrs)) < 0))
		goto out;
	rc = 0;
out:
	xc_cpu_policy_destroy(pol);
	free(leaves);
	free(msrs);
	return rc;
}

/* ---------------- the guest's p2m ---------------- */

static void *map_ro(struct nsave *n, const xen_pfn_t *mfns, uint32_t count)
{
	int *errs = calloc(count, sizeof(*errs));
	if (!errs)
		return NULL;
	void *p = xenforeignmemory_map(n->fmem, n->domid, PROT_READ, count, mfns, errs);
	for (uint32_t i = 0; p && i < count; i++)
		if (errs[i]) {
			xenforeignmemory_unmap(n->fmem, p, count);
			p = NULL;
			errno = -errs[i];
		}
	free(errs);
	return p;
}

/* The leaf frames of the linear p2m list at shared_info's p2m_vaddr, walked from p2m_cr3. */
static int p2m_list(struct nsave *n, uint64_t p2m_cr3, uint64_t vaddr)
{
	const uint64_t mask = UINT64_C(0x0000ffffffffffff);
	uint64_t end = vaddr + (uint64_t)n->p2m_frames * 4096 - 1, off = 0;
	if (((int64_t)vaddr >> 47) != ((int64_t)vaddr >> 63) || ((int64_t)end >> 47) != ((int64_t)end >> 63) ||
	    end < vaddr || (vaddr <= UINT64_C(0xffff880000000000) && end > UINT64_C(0xffff800000000000)))
		return nfail(n, "shared_info: bad p2m list range 0x%llx-0x%llx", (unsigned long long)vaddr,
			     (unsigned long long)end);
	xen_pfn_t *mfns = malloc(sizeof(*mfns));
	uint32_t nm = 1;
	if (!mfns)
		return nfail(n, "out of memory");
	mfns[0] = xen_cr3_to_pfn_x86_64(p2m_cr3);
	for (int level = 4; level > 0; level--) {
		for (uint32_t i = 0; i < nm; i++)
			if (mfns[i] == 0 || mfns[i] >= n->max_mfn) {
				unsigned long long bad = (unsigned long long)mfns[i];
				free(mfns);
				return nfail(n, "p2m list: bad frame 0x%llx in the level-%d walk", bad, level + 1);
			}
		uint64_t *ptes = map_ro(n, mfns, nm);
		if (!ptes) {
			free(mfns);
			return nfail(n, "p2m list: mapping %u page-table frames: %s", nm, strerror(errno));
		}
		unsigned shift = (unsigned)level * 9 + 3;
		uint64_t a = ((vaddr - off) & mask) >> shift, b = ((end - off) & mask) >> shift;
		uint32_t cnt = (uint32_t)(b - a + 1);
		xen_pfn_t *next = malloc(cnt * sizeof(*next));
		if (!next || b >= (uint64_t)nm * 512) {
			xenforeignmemory_unmap(n->fmem, ptes, nm);
			free(mfns);
			free(next);
			return nfail(n, next ? "p2m list: walk left its tables" : "out of memory");
		}
		for (uint64_t k = a; k <= b; k++)
			next[k - a] = (ptes[k] & PTE_FRAME) >> 12;
		xenforeignmemory_unmap(n->fmem, ptes, nm);
		if (level == 2) {
			/*
			 * As libxenguest: trailing L2 entries that all name one frame map
			 * p2m pages of invalid entries only; max_pfn ends before them.
			 */
			uint64_t saved = 0, smfn = 0;
			for (uint64_t k = a; k <= b; k++)
				if (next[k - a] != smfn) {
					smfn = next[k - a];
					saved = k - a;
				}
			if (saved == b)
				saved++;
			uint64_t mp = (saved << 9) * 512 - 1;
			if (mp < n->max_pfn) {
				n->max_pfn = mp;
				n->p2m_frames = (uint32_t)(mp / 512 + 1);
				end = vaddr + (uint64_t)n->p2m_frames * 4096 - 1;
				cnt = (uint32_t)saved + 1;
			}
		}
		free(mfns);
		mfns = next;
		nm = cnt;
		off = vaddr & ((mask >> shift) << shift);
	}
	if (nm < n->p2m_frames) {
		free(mfns);
		return nfail(n, "p2m list: %u frames found, %u needed", nm, n->p2m_frames);
	}
	n->p2m_mfns = calloc(n->p2m_frames, sizeof(*n->p2m_mfns));
	if (!n->p2m_mfns) {
		free(mfns);
		return nfail(n, "out of memory");
	}
	for (uint32_t i = 0; i < n->p2m_frames; i++)
		n->p2m_mfns[i] = mfns[i];
	free(mfns);
	return 0;
}

/* The leaf frames of the 3-level p2m tree (frame list list -> frame lists -> leaves). */
static int p2m_tree(struct nsave *n, uint64_t fll)
{
	uint32_t fl_entries = n->p2m_frames, fll_entries = (fl_entries + 511) / 512;
	if (fll == 0 || fll >= n->max_mfn || fll_entries > 512)
		return nfail(n, "shared_info: bad p2m frame list list 0x%llx", (unsigned long long)fll);
	xen_pfn_t top = fll;
	uint64_t *l1 = map_ro(n, &top, 1);
	if (!l1)
		return nfail(n, "p2m tree: mapping the frame list list: %s", strerror(errno));
	xen_pfn_t mids[512];
	uint32_t saved_x = 0;
	for (uint32_t i = 0; i < fll_entries; i++) {
		mids[i] = l1[i];
		if (i && mids[i] != mids[i - 1])
			saved_x = i;
	}
	xenforeignmemory_unmap(n->fmem, l1, 1);
	/* as libxenguest: trailing entries all alike map nothing; max_pfn ends before them */
	uint64_t mp = (uint64_t)(saved_x + 1) * 512 * 512 - 1;
	if (mp < n->max_pfn) {
		n->max_pfn = mp;
		n->p2m_frames = fl_entries = (uint32_t)(mp / 512 + 1);
		fll_entries = saved_x + 1;
	}
	for (uint32_t i = 0; i < fll_entries; i++)
		if (mids[i] == 0 || mids[i] >= n->max_mfn)
			return nfail(n, "p2m tree: bad frame 0x%llx in the frame list list", (unsigned long long)mids[i]);
	uint64_t *fl = map_ro(n, mids, fll_entries);
	if (!fl)
		return nfail(n, "p2m tree: mapping the frame lists: %s", strerror(errno));
	n->p2m_mfns = calloc(fl_entries, sizeof(*n->p2m_mfns));
	if (!n->p2m_mfns) {
		xenforeignmemory_unmap(n->fmem, fl, fll_entries);
		return nfail(n, "out of memory");
	}
	for (uint32_t i = 0; i < fl_entries; i++)
		n->p2m_mfns[i] = fl[i];
	xenforeignmemory_unmap(n->fmem, fl, fll_entries);
	for (uint32_t i = 0; i < fl_entries; i++)
		if (n->p2m_mfns[i] == 0 || n->p2m_mfns[i] >= n->max_mfn)
			return nfail(n, "p2m tree: bad leaf frame 0x%llx", (unsigned long long)n->p2m_mfns[i]);
	return 0;
}

static int map_p2m(struct nsave *n)
{
	xen_pfn_t f = n->info.shared_info_frame;
	shared_info_t *sh = map_ro(n, &f, 1);
	if (!sh)
		return nfail(n, "mapping shared_info (mfn 0x%llx): %s", (unsigned long long)f, strerror(errno));
	uint64_t max = sh->arch.max_pfn, cr3 = sh->arch.p2m_cr3, vaddr = sh->arch.p2m_vaddr,
		 fll = sh->arch.pfn_to_mfn_frame_list_list;
	xenforeignmemory_unmap(n->fmem, sh, 1);
	if (max == 0 || max > (UINT64_C(1) << 40))
		return nfail(n, "shared_info: max_pfn %llu", (unsigned long long)max);
	n->max_pfn = max - 1;
	n->p2m_frames = (uint32_t)(n->max_pfn / 512 + 1);
	if ((cr3 ? p2m_list(n, cr3, vaddr) : p2m_tree(n, fll)) < 0)
		return -1;
	xen_pfn_t *m = malloc(n->p2m_frames * sizeof(*m));
	if (!m)
		return nfail(n, "out of memory");
	for (uint32_t i = 0; i < n->p2m_frames; i++)
		m[i] = n->p2m_mfns[i];
	n->p2m = map_ro(n, m, n->p2m_frames);
	free(m);
	if (!n->p2m)
		return nfail(n, "mapping the %u p2m frames: %s", n->p2m_frames, strerror(errno));
	for (uint32_t i = 0; i < n->p2m_frames; i++)
		if (!mfn_ok(n, n->p2m_mfns[i]))
			return nfail(n, "p2m frame %u (mfn 0x%llx) is not the guest's", i, (unsigned long long)n->p2m_mfns[i]);
	return 0;
}

/* ---------------- vCPUs ---------------- */

static int to_pfn(struct nsave *n, uint64_t mfn, uint64_t *pfn, const char *what, uint32_t v)
{
	if (!mfn_ok(n, mfn))
		return nfail(n, "vCPU %u: %s holds mfn 0x%llx, not one of the guest's", v, what, (unsigned long long)mfn);
	*pfn = n->m2p[mfn];
	return 0;
}

static int vcpu_basic(struct nsave *n, uint32_t v)
{
	vcpu_guest_context_any_t c;
	uint64_t pfn;
	if (xc_vcpu_getcontext(n->xch, n->domid, v, &c) < 0)
		return nfail(n, "xc_vcpu_getcontext(%u, %u): %s", n->domid, v, strerror(errno));
	struct vcpu_guest_context_x86_64 *x = &c.x64;
	if (v == 0) { /* the start_info frame, in edx after a suspend */
		if (to_pfn(n, x->user_regs.rdx, &pfn, "edx (start_info)", v) < 0)
			return -1;
		x->user_regs.rdx = pfn;
	}
	if (x->gdt_ents > FIRST_RESERVED_GDT_ENTRY)
		return nfail(n, "vCPU %u: %u GDT entries (at most %u)", v, (unsigned)x->gdt_ents, FIRST_RESERVED_GDT_ENTRY);
	for (unsigned i = 0; i < (x->gdt_ents + 511) / 512; i++) {
		if (to_pfn(n, x->gdt_frames[i], &pfn, "a GDT frame", v) < 0)
			return -1;
		x->gdt_frames[i] = pfn;
	}
	if (to_pfn(n, xen_cr3_to_pfn_x86_64(x->ctrlreg[3]), &pfn, "cr3", v) < 0)
		return -1;
	x->ctrlreg[3] = xen_pfn_to_cr3_x86_64(pfn);
	if (x->ctrlreg[1]) {
		if (to_pfn(n, x->ctrlreg[1] >> 12, &pfn, "cr1 (user page tables)", v) < 0)
			return -1;
		x->ctrlreg[1] = 1 | pfn << 12;
	}
	uint32_t h[2] = {v, 0};
	return rec2(n, XEN_RT_X86_PV_VCPU_BASIC, h, 8, x, sizeof(*x));
}

static int vcpu_extended(struct nsave *n, uint32_t v)
{
	struct xen_domctl d = {.cmd = XEN_DOMCTL_get_ext_vcpucontext, .domain = (domid_t)n->domid};
	d.u.ext_vcpucontext.vcpu = v;
	if (xc_domctl(n->xch, &d) < 0)
		return nfail(n, "vCPU %u: extended context: %s", v, strerror(errno));
	uint32_t h[2] = {v, 0}, sz = d.u.ext_vcpucontext.size;
	if (sz > sizeof(d.u.ext_vcpucontext))
		return nfail(n, "vCPU %u: extended context of %u octets", v, sz);
	return sz ? rec2(n, XEN_RT_X86_PV_VCPU_EXTENDED, h, 8, &d.u.ext_vcpucontext, sz) : 0;
}

/* XSAVE state and MSRs: asked for their size first, fetched into a hypercall buffer, left out when empty. */
static int vcpu_xsave(struct nsave *n, uint32_t v)
{
	struct xen_domctl d = {.cmd = XEN_DOMCTL_getvcpuextstate, .domain = (domid_t)n->domid};
	DECLARE_HYPERCALL_BUFFER(void, buf);
	int rc = -1;
	d.u.vcpuextstate.vcpu = v;
	if (xc_domctl(n->xch, &d) < 0)
		return nfail(n, "vCPU %u: XSAVE state size: %s", v, strerror(errno));
	if (!d.u.vcpuextstate.xfeature_mask)
		return 0;
	uint64_t size = d.u.vcpuextstate.size;
	if (size > (1u << 20) || !(buf = xc_hypercall_buffer_alloc(n->xch, buf, size)))
		return nfail(n, "vCPU %u: XSAVE state of %llu octets", v, (unsigned long long)size);
	set_xen_guest_handle(d.u.vcpuextstate.buffer, buf);
	if (xc_domctl(n->xch, &d) < 0)
		nfail(n, "vCPU %u: XSAVE state: %s", v, strerror(errno));
	else if (d.u.vcpuextstate.size > size)
		nfail(n, "vCPU %u: XSAVE state grew", v);
	else {
		uint32_t h[2] = {v, 0};
		rc = d.u.vcpuextstate.size ? rec2(n, XEN_RT_X86_PV_VCPU_XSAVE, h, 8, buf, (uint32_t)d.u.vcpuextstate.size) : 0;
	}
	xc_hypercall_buffer_free(n->xch, buf);
	return rc;
}

static int vcpu_msrs(struct nsave *n, uint32_t v)
{
	struct xen_domctl d = {.cmd = XEN_DOMCTL_get_vcpu_msrs, .domain = (domid_t)n->domid};
	DECLARE_HYPERCALL_BUFFER(void, buf);
	int rc = -1;
	d.u.vcpu_msrs.vcpu = v;
	if (xc_domctl(n->xch, &d) < 0)
		return nfail(n, "vCPU %u: MSR count: %s", v, strerror(errno));
	uint32_t cnt = d.u.vcpu_msrs.msr_count;
	if (!cnt)
		return 0;
	size_t size = (size_t)cnt * sizeof(xen_domctl_vcpu_msr_t);
	if (cnt > 4096 || !(buf = xc_hypercall_buffer_alloc(n->xch, buf, size)))
		return nfail(n, "vCPU %u: %u MSRs", v, cnt);
	set_xen_guest_handle(d.u.vcpu_msrs.msrs, buf);
	if (xc_domctl(n->xch, &d) < 0)
		nfail(n, "vCPU %u: MSRs: %s", v, strerror(errno));
	else if (d.u.vcpu_msrs.msr_count > cnt)
		nfail(n, "vCPU %u: MSR count grew", v);
	else {
		uint32_t h[2] = {v, 0};
		uint32_t len = d.u.vcpu_msrs.msr_count * (uint32_t)sizeof(xen_domctl_vcpu_msr_t);
		rc = len ? rec2(n, XEN_RT_X86_PV_VCPU_MSRS, h, 8, buf, len) : 0;
	}
	xc_hypercall_buffer_free(n->xch, buf);
	return rc;
}

/* ---------------- pages ---------------- */

/* XEN_DOMCTL_getpageframeinfo3: each frame of @arr replaced by its type (XEN_DOMCTL_PFINFO_*). */
static int pfn_types(struct nsave *n, uint32_t cnt, xen_pfn_t *arr)
{
	DECLARE_HYPERCALL_BUFFER(xen_pfn_t, buf);
	struct xen_domctl d = {.cmd = XEN_DOMCTL_getpageframeinfo3, .domain = (domid_t)n->domid};
	int rc;
	if (!(buf = xc_hypercall_buffer_alloc(n->xch, buf, cnt * sizeof(*arr)))) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(buf, arr, cnt * sizeof(*arr));
	d.u.getpageframeinfo3.num = cnt;
	set_xen_guest_handle(d.u.getpageframeinfo3.array, buf);
	rc = xc_domctl(n->xch, &d);
	if (rc >= 0)
		memcpy(arr, buf, cnt * sizeof(*arr));
	xc_hypercall_buffer_free(n->xch, buf);
	return rc;
}

/* PAGE_DATA records for every pfn, 1024 at a time; the data areas stay holes. */
static int page_records(struct nsave *n)
{
	uint64_t *pfns = malloc(BATCH * sizeof(*pfns));
	xen_pfn_t *types = malloc(BATCH * sizeof(*types));
	n->types = malloc(n->max_pfn + 1);
	if (!pfns || !types || !n->types) {
		free(pfns);
		free(types);
		return nfail(n, "out of memory");
	}
	int rc = -1;
	for (uint64_t first = 0; first <= n->max_pfn; first += BATCH) {
		uint32_t cnt = (uint32_t)(n->max_pfn + 1 - first < BATCH ? n->max_pfn + 1 - first : BATCH), nd = 0;
		for (uint32_t i = 0; i < cnt; i++)
			types[i] = n->p2m[first + i];
		if (pfn_types(n, cnt, types) < 0) {
			nfail(n, "page types of pfn 0x%llx+%u: %s", (unsigned long long)first, cnt, strerror(errno));
			goto out;
		}
		for (uint32_t i = 0; i < cnt; i++) {
			unsigned t = (unsigned)(types[i] >> XEN_DOMCTL_PFINFO_LTAB_SHIFT);
			if (types[i] & ~(xen_pfn_t)XEN_DOMCTL_PFINFO_LTAB_MASK || !xsr_xen_type_valid(t)) {
				nfail(n, "pfn 0x%llx: unknown page type 0x%llx", (unsigned long long)(first + i),
				      (unsigned long long)types[i]);
				goto out;
			}
			pfns[i] = (first + i) | (uint64_t)t << XEN_PFN_TYPE_SHIFT;
			n->types[first + i] = (uint8_t)t;
			nd += xsr_xen_type_has_data(t);
		}
		uint32_t h[4] = {XEN_RT_PAGE_DATA, 8 + 8 * cnt + 4096 * nd, cnt, 0};
		if (put(n, h, 16) < 0 || put(n, pfns, (size_t)cnt * 8) < 0)
			goto out;
		n->off += (uint64_t)nd * 4096; /* the hole the importer's callback fills */
	}
	rc = 0;
out:
	free(pfns);
	free(types);
	return rc;
}

/* Normalise one page table: present entries' frames to pfns, Xen's L4 slots cleared. */
static int normalise(const struct nsave *n, const uint64_t *src, uint64_t *dst, unsigned t, uint64_t pfn, char *err,
		     size_t errlen)
{
	unsigned level = t & 7u; /* L1TAB = 1 .. L4TAB = 4 */
	for (unsigned i = 0; i < 512; i++) {
		uint64_t pte = src[i];
		if (level == 4 && i >= 256 && i <= 272) /* HYPERVISOR_VIRT_START..END: Xen's, rebuilt on restore */
			pte = 0;
		if (pte & PTE_PRESENT) {
			uint64_t mfn = (pte & PTE_FRAME) >> 12;
			if (level > 1 && (pte & PTE_PSE)) {
				snprintf(err, errlen, "pfn 0x%llx: L%u[%u] = 0x%016llx is a superpage (PV guests cannot migrate them)",
					 (unsigned long long)pfn, level, i, (unsigned long long)pte);
				return -1;
			}
			if (!mfn_ok(n, mfn)) {
				snprintf(err, errlen, "pfn 0x%llx: L%u[%u] = 0x%016llx names mfn 0x%llx, not one of the guest's",
					 (unsigned long long)pfn, level, i, (unsigned long long)pte, (unsigned long long)mfn);
				return -1;
			}
			pte = (pte & ~PTE_FRAME) | (uint64_t)n->m2p[mfn] << 12;
		}
		dst[i] = pte;
	}
	return 0;
}

/*
 * One batch of up to 1024 pfns mapped for the importer: the foreign mapping
 * of its data frames, its page tables normalised into @scratch, and @ptrs
 * for the writer.  Mapping (~40 ms for 128 MiB in the rig) and above all
 * unmapping (~120 ms: every PTE cleared through Xen) run on the mapper
 * thread, ahead of and behind the batch the writer is on.
 */
enum { SL_FREE, SL_WANTED, SL_READY, SL_INUSE, SL_DONE };
struct slot {
	int state;
	uint64_t first;
	uint32_t count, nd;
	int rc;
	void *map;
	uint8_t *scratch;
	const void *ptrs[BATCH];
	xen_pfn_t mfns[BATCH];
	int errs[BATCH];
	char err[256];
};

static int map_batch(const struct nsave *n, struct slot *sl, const uint64_t *pfns, uint32_t count)
{
	uint32_t nd = 0;
	sl->map = NULL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t pfn = pfns[i] & XEN_PFN_MASK;
		if (pfn > n->max_pfn) {
			snprintf(sl->err, sizeof(sl->err), "pfn 0x%llx past the p2m", (unsigned long long)pfn);
			return -1;
		}
		if (xsr_xen_type_has_data((unsigned)(pfns[i] >> XEN_PFN_TYPE_SHIFT)))
			sl->mfns[nd++] = n->p2m[pfn];
	}
	sl->nd = nd;
	if (nd && !(sl->map = xenforeignmemory_map(n->fmem, n->domid, PROT_READ, nd, sl->mfns, sl->errs))) {
		snprintf(sl->err, sizeof(sl->err), "mapping %u frames from pfn 0x%llx: %s", nd,
			 (unsigned long long)(pfns[0] & XEN_PFN_MASK), strerror(errno));
		return -1;
	}
	for (uint32_t i = 0, d = 0; i < count; i++) {
		unsigned t = (unsigned)(pfns[i] >> XEN_PFN_TYPE_SHIFT);
		sl->ptrs[i] = NULL;
		if (!xsr_xen_type_has_data(t))
			continue;
		uint64_t pfn = pfns[i] & XEN_PFN_MASK;
		const uint8_t *pg = (const uint8_t *)sl->map + (size_t)d * 4096;
		if (sl->errs[d]) {
			snprintf(sl->err, sizeof(sl->err), "pfn 0x%llx (mfn 0x%llx) failed to map: %s", (unsigned long long)pfn,
				 (unsigned long long)sl->mfns[d], strerror(-sl->errs[d]));
			return -1;
		}
		if ((t & 7u) >= 1 && (t & 7u) <= 4) {
			if (!sl->scratch && !(sl->scratch = malloc((size_t)BATCH * 4096))) {
				snprintf(sl->err, sizeof(sl->err), "out of memory");
				return -1;
			}
			uint8_t *dst = sl->scratch + (size_t)i * 4096;
			if (normalise(n, (const uint64_t *)pg, (uint64_t *)dst, t, pfn, sl->err, sizeof(sl->err)) < 0)
				return -1;
			pg = dst;
		}
		sl->ptrs[i] = pg;
		d++;
	}
	return 0;
}

static void unmap_batch(const struct nsave *n, struct slot *sl)
{
	if (sl->map)
		xenforeignmemory_unmap(n->fmem, sl->map, sl->nd);
	sl->map = NULL;
}

/* The pfns (with types) of PAGE_DATA record @first..: as page_records() wrote them. */
static uint32_t batch_pfns(const struct nsave *n, uint64_t first, uint64_t *pfns)
{
	uint32_t cnt = (uint32_t)(n->max_pfn + 1 - first < BATCH ? n->max_pfn + 1 - first : BATCH);
	for (uint32_t i = 0; i < cnt; i++)
		pfns[i] = (first + i) | (uint64_t)n->types[first + i] << XEN_PFN_TYPE_SHIFT;
	return cnt;
}

static void release_maps(struct nsave *n);

static void *mapper_main(void *arg)
{
	struct nsave *n = arg;
	uint64_t pfns[BATCH];
	pthread_mutex_lock(&n->mu);
	for (;;) {
		/*
		 * Mapping comes first (the writer waits for it); unmapping (three
		 * times dearer here) only when slots run short, or after quit --
		 * while the caller commits the image and destroys the domain.
		 */
		struct slot *work = NULL;
		int nfree = 0;
		for (int i = 0; i < NSLOT; i++)
			nfree += n->slots[i].state == SL_FREE;
		for (int i = 0; i < NSLOT && !work; i++)
			if (n->slots[i].state == SL_WANTED) {
				if (n->quit)
					n->slots[i].state = SL_FREE;
				else
					work = &n->slots[i];
			}
		for (int i = 0; i < NSLOT && !work && (n->quit || nfree < 3); i++)
			if (n->slots[i].state == SL_DONE)
				work = &n->slots[i];
		if (!work) {
			if (n->quit)
				break;
			pthread_cond_wait(&n->cv, &n->mu);
			continue;
		}
		int st = work->state;
		pthread_mutex_unlock(&n->mu);
		if (st == SL_DONE) {
			unmap_batch(n, work);
		} else {
			uint32_t cnt = batch_pfns(n, work->first, pfns);
			work->count = cnt;
			work->rc = map_batch(n, work, pfns, cnt);
		}
		pthread_mutex_lock(&n->mu);
		work->state = st == SL_DONE ? SL_FREE : SL_READY;
		pthread_cond_broadcast(&n->cv);
	}
	pthread_mutex_unlock(&n->mu);
	release_maps(n);
	return NULL;
}

/* Ask the mapper for the batch at @first (if there is one and a free slot). Called locked. */
static void prefetch(struct nsave *n, uint64_t first)
{
	if (!n->mapper || first > n->max_pfn)
		return;
	for (int i = 0; i < NSLOT; i++)
		if (n->slots[i].state != SL_FREE && n->slots[i].state != SL_DONE && n->slots[i].first == first)
			return;
	for (int i = 0; i < NSLOT; i++)
		if (n->slots[i].state == SL_FREE) {
			n->slots[i].state = SL_WANTED;
			n->slots[i].first = first;
			pthread_cond_broadcast(&n->cv);
			return;
		}
}

/*
 * xen_import_opts.pages: the pages of one PAGE_DATA record (@ptrs NULL:
 * the writer is done with them).  The records page_records() wrote come
 * from the mapper, the next one asked for at once; anything else (the
 * importer's single p2m frames) is mapped here.
 */
static int give_pages(void *ctx, const uint64_t *pfns, uint32_t count, const void **ptrs, char *err, size_t errlen)
{
	struct nsave *n = ctx;
	if (ptrs && stop_sig) {
		snprintf(err, errlen, "interrupted by signal %d (%s)", (int)stop_sig, strsignal(stop_sig));
		return -1;
	}
	if (!ptrs) {
		if (n->cur) {
			pthread_mutex_lock(&n->mu);
			n->cur->state = SL_DONE;
			pthread_cond_broadcast(&n->cv);
			pthread_mutex_unlock(&n->mu);
			n->cur = NULL;
		} else if (n->borrowed) {
			n->borrowed = 0; /* a page of the p2m mapping: stays mapped */
		} else {
			unmap_batch(n, n->sync);
		}
		return 0;
	}
	uint64_t tm = util_now_ns();
	uint64_t first = pfns[0] & XEN_PFN_MASK;
	int planned = n->mapper && count > 1 && first % BATCH == 0 && first <= n->max_pfn &&
		      count == (n->max_pfn + 1 - first < BATCH ? n->max_pfn + 1 - first : BATCH);
	for (uint32_t i = 0; planned && i < count; i++)
		planned = pfns[i] == ((first + i) | (uint64_t)n->types[first + i] << XEN_PFN_TYPE_SHIFT);
	if (!planned && count == 1 && xsr_xen_type_has_data((unsigned)(pfns[0] >> XEN_PFN_TYPE_SHIFT))) {
		/* the importer reads the p2m's own frames (pv_p2m), one at a time, in order: mapped already */
		for (uint32_t k = 0; k < n->p2m_frames; k++) {
			uint32_t i = (n->p2m_hint + k) % n->p2m_frames;
			if (n->m2p[n->p2m_mfns[i]] == first) {
				ptrs[0] = (const uint8_t *)n->p2m + (size_t)i * 4096;
				n->p2m_hint = i + 1;
				n->borrowed = 1;
				return 0;
			}
		}
	}
	if (!planned) {
		if (map_batch(n, n->sync, pfns, count) < 0) {
			snprintf(err, errlen, "%s", n->sync->err);
			unmap_batch(n, n->sync);
			return -1;
		}
		memcpy(ptrs, n->sync->ptrs, count * sizeof(*ptrs));
		n->t_map += util_now_ns() - tm;
		return 0;
	}
	struct slot *sl = NULL;
	pthread_mutex_lock(&n->mu);
	for (;;) {
		prefetch(n, first); /* again after each wake-up: a slot may have come free */
		for (int i = 0; i < NSLOT; i++)
			if (n->slots[i].state == SL_READY && n->slots[i].first == first)
				sl = &n->slots[i];
		if (sl)
			break;
		pthread_cond_wait(&n->cv, &n->mu);
	}
	sl->state = SL_INUSE;
	n->cur = sl;
	prefetch(n, first + BATCH);
	pthread_mutex_unlock(&n->mu);
	n->t_map += util_now_ns() - tm; /* the wait for the mapper */
#if XSR_TESTHOOKS
	/* Test hook: a slower save, so that a test can interrupt it while the pages go out. */
	if (getenv("XSR_XEN_SAVE_TEST_BATCH_MS"))
		nanosleep(&(struct timespec){0, atol(getenv("XSR_XEN_SAVE_TEST_BATCH_MS")) % 1000 * 1000000L}, NULL);
#endif
	if (sl->rc < 0) {
		snprintf(err, errlen, "%s", sl->err);
		give_pages(ctx, NULL, 0, NULL, NULL, 0);
		return -1;
	}
	memcpy(ptrs, sl->ptrs, count * sizeof(*ptrs));
	return 0;
}

/* ---------------- the save ---------------- */

/* Every foreign mapping: the batches', the p2m's, the M2P.  On the mapper thread once it has quit. */
static void release_maps(struct nsave *n)
{
	for (int i = 0; n->slots && i < NSLOT; i++)
		unmap_batch(n, &n->slots[i]);
	if (n->sync)
		unmap_batch(n, n->sync);
	if (n->p2m)
		xenforeignmemory_unmap(n->fmem, n->p2m, n->p2m_frames);
	n->p2m = NULL;
	if (n->m2p)
		munmap(n->m2p, n->m2p_len);
	n->m2p = NULL;
}

static void nsave_free(struct nsave *n)
{
	if (n->fmem)
		xenforeignmemory_close(n->fmem);
	if (n->xch)
		xc_interface_close(n->xch);
	if (n->mfd >= 0)
		close(n->mfd);
	for (int i = 0; n->slots && i < NSLOT; i++)
		free(n->slots[i].scratch);
	free(n->slots);
	if (n->sync)
		free(n->sync->scratch);
	free(n->sync);
	free(n->p2m_mfns);
	free(n->types);
	free(n);
}

/* A save whose mapper thread is still unmapping (save_reap() joins it). */
static struct nsave *pending;

static void save_reap(void)
{
	if (!pending)
		return;
	pthread_join(pending->mapper_tid, NULL);
	nsave_free(pending);
	pending = NULL;
}

/*
 * The mapper, told to quit, unmaps what is still mapped while the caller
 * goes on (commit, destroy: ~100 ms of unmapping off the critical path);
 * xen_save_finish() and exit join it.
 */
static void nsave_close(struct nsave *n)
{
	if (n->mfd >= 0)
		close(n->mfd);
	n->mfd = -1;
	if (!n->mapper) {
		release_maps(n);
		nsave_free(n);
		return;
	}
	pthread_mutex_lock(&n->mu);
	n->quit = 1;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	save_reap(); /* at most one at a time */
	pending = n;
	static int registered;
	if (!registered++)
		atexit(save_reap);
}

/*
 * The native save's first step, before the domain is touched: 1 if @n's
 * domain is not one it handles (HVM, 32-bit PV, PCI passthrough: libxl's
 * engine knows those), 0 with the interfaces open, the xl header in the
 * memfd and the M2P mapped, -1 with @err.
 */
static int native_open(struct nsave *n, libxl_ctx **ctxp, char *err, size_t errlen)
{
	uint32_t domid = n->domid;
	unsigned width = 0;
	if (!(n->xch = xc_interface_open(NULL, NULL, 0)) || !(n->fmem = xenforeignmemory_open(NULL, 0))) {
		snprintf(err, errlen, "opening the hypervisor interfaces: %s (is this dom0?)", strerror(errno));
		return -1;
	}
	if (xc_domain_getinfo(n->xch, domid, 1, &n->info) != 1 || n->info.domid != domid) {
		snprintf(err, errlen, "no domain %u", domid);
		return -1;
	}
	if (n->info.hvm || xc_domain_get_guest_width(n->xch, domid, &width) < 0 || width != 8)
		return 1; /* not a 64-bit PV guest: libxl's engine */
	libxl_ctx *ctx = *ctxp = xen_lx_ctx(err, errlen);
	if (!ctx)
		return -1;
	/* PCI passthrough: whatever libxl's engine makes of it (it knows the device state), not this one */
	int npci = 0;
	libxl_device_pci *pcis = libxl_device_pci_list(ctx, domid, &npci);
	libxl_device_pci_list_free(pcis, npci);
	if (npci > 0)
		return 1;
	n->mfd = memfd_create("xsr-xen-native-save", MFD_CLOEXEC);
	if (n->mfd < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (xen_lx_xl_header(ctx, domid, n->mfd, err, errlen) < 0)
		return -1;
	n->off = (uint64_t)lseek(n->mfd, 0, SEEK_CUR);
	if (xc_maximum_ram_page(n->xch, &n->max_mfn) < 0 ||
	    !(n->m2p = xc_map_m2p(n->xch, n->max_mfn, PROT_READ, NULL))) {
		snprintf(err, errlen, "mapping Xen's M2P: %s", strerror(errno));
		return -1;
	}
	/* xc_map_m2p maps M2P_SIZE(max_mfn): max_mfn entries rounded up to whole 2 MiB chunks */
	n->m2p_len = (((uint64_t)n->max_mfn * sizeof(xen_pfn_t) + (1u << 21) - 1) >> 21) << 21;
	return 0;
}

/*
 * Suspend the domain (libxl's cooperative handshake) and check that it is.
 * *@suspended is set as soon as it may be; 0 or -1 with @err.
 */
static int native_suspend(struct nsave *n, libxl_ctx *ctx, struct xsr_domain_stats *st, uint64_t t0, int *suspended,
			  char *err, size_t errlen)
{
	uint32_t domid = n->domid;
	uint64_t ts = util_now_ns();
	*suspended = 1; /* libxl may get as far as suspending even when it fails */
	if (libxl_domain_suspend_only(ctx, domid, NULL) != 0) {
		snprintf(err, errlen, "libxl_domain_suspend_only(%u) failed (see the libxl messages above)", domid);
		return -1;
	}
	st->suspend_ns = util_now_ns() - ts;
	if (getenv("XSR_XEN_TIMING"))
		fprintf(stderr, "xsr timing: native: suspended %.1f ms after start (suspend %.1f ms)\n",
			(util_now_ns() - t0) / 1e6, st->suspend_ns / 1e6);
	if (stop_sig) {
		snprintf(err, errlen, "interrupted by signal %d (%s)", (int)stop_sig, strsignal(stop_sig));
		return -1;
	}
	if (xc_domain_getinfo(n->xch, domid, 1, &n->info) != 1 || n->info.domid != domid || !n->info.shutdown ||
	    n->info.shutdown_reason != SHUTDOWN_suspend) {
		snprintf(err, errlen, "domain %u did not suspend", domid);
		return -1;
	}
	return 0;
}

/* The suspended domain's libxc stream into the memfd, but for the page data; *@vcpus: online vCPUs. 0 or -1 (n->err). */
static int native_stream(struct nsave *n, uint32_t *vcpus)
{
	uint32_t domid = n->domid;
	if (map_p2m(n) < 0)
		return -1;
	if (8 + (uint64_t)n->p2m_frames * 8 > XEN_REC_LENGTH_MAX)
		return nfail(n, "the guest's p2m spans %u frames (max_pfn 0x%llx): its X86_PV_P2M_FRAMES record would pass "
				"the %u-octet limit that Xen's restore enforces", n->p2m_frames,
			     (unsigned long long)n->max_pfn, XEN_REC_LENGTH_MAX);
	uint8_t pvinfo[8] = {8, 4};
	if (stream_headers(n) < 0 || rec(n, XEN_RT_X86_PV_INFO, pvinfo, 8) < 0 || cpu_policy(n) < 0 ||
	    rec(n, XEN_RT_STATIC_DATA_END, NULL, 0) < 0)
		return -1;
	/* X86_PV_P2M_FRAMES: the pfn range, then the pfns of the p2m's frames */
	uint32_t pf[2] = {0, (uint32_t)n->max_pfn};
	uint64_t *fpfns = malloc(n->p2m_frames * sizeof(*fpfns));
	if (!fpfns)
		return nfail(n, "out of memory");
	for (uint32_t i = 0; i < n->p2m_frames; i++)
		fpfns[i] = n->m2p[n->p2m_mfns[i]];
	int fr = rec2(n, XEN_RT_X86_PV_P2M_FRAMES, pf, 8, fpfns, (uint32_t)((uint64_t)n->p2m_frames * 8));
	free(fpfns);
	if (fr < 0 || page_records(n) < 0)
		return -1;
	uint32_t tsc[6] = {0};
	uint64_t nsec = 0;
	if (xc_domain_get_tsc_info(n->xch, domid, &tsc[0], &nsec, &tsc[1], &tsc[4]) < 0)
		return nfail(n, "xc_domain_get_tsc_info: %s", strerror(errno));
	memcpy(&tsc[2], &nsec, 8);
	if (rec(n, XEN_RT_X86_TSC_INFO, tsc, 24) < 0)
		return -1;
	xen_pfn_t sf = n->info.shared_info_frame;
	void *sh = map_ro(n, &sf, 1);
	if (!sh)
		return nfail(n, "mapping shared_info: %s", strerror(errno));
	int r = rec(n, XEN_RT_SHARED_INFO, sh, 4096);
	xenforeignmemory_unmap(n->fmem, sh, 1);
	if (r < 0)
		return -1;
	*vcpus = 0;
	for (uint32_t v = 0; v <= n->info.max_vcpu_id; v++) {
		xc_vcpuinfo_t vi;
		if (xc_vcpu_getinfo(n->xch, domid, v, &vi) < 0)
			return nfail(n, "xc_vcpu_getinfo(%u): %s", v, strerror(errno));
		if (!vi.online)
			continue;
		if (vcpu_basic(n, v) < 0 || vcpu_extended(n, v) < 0 || vcpu_xsave(n, v) < 0 || vcpu_msrs(n, v) < 0)
			return -1;
		*vcpus = v + 1;
	}
	uint32_t lend[2] = {XEN_LT_END, 0};
	if (rec(n, XEN_RT_END, NULL, 0) < 0 || put(n, lend, 8) < 0)
		return -1;
	return 0;
}

/* The mapper thread (batches mapped ahead of the writer, unmapped behind it), if it can run. 0 or -1 (n->err). */
static int native_mapper(struct nsave *n)
{
	n->slots = calloc(NSLOT, sizeof(*n->slots));
	n->sync = calloc(1, sizeof(*n->sync));
	if (!n->slots || !n->sync)
		return nfail(n, "out of memory");
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	if (!getenv("XSR_XEN_SAVE_NO_MAPPER") && pthread_create(&n->mapper_tid, NULL, mapper_main, n) == 0) {
		n->mapper = 1;
		pthread_mutex_lock(&n->mu);
		prefetch(n, 0);
		pthread_mutex_unlock(&n->mu);
	}
	return 0;
}

/*
 * The native save of a 64-bit PV domain, written with the importer's options
 * @io (stream, kind, compression, begin hook; its page callback and vCPU
 * count are the native save's).  1 = not a domain it handles, nothing done
 * (libxl's engine then); 0 = written, the domain left suspended; -1 =
 * failed, the domain resumed.
 */
static int native_save(uint32_t domid, int out_fd, const struct xsr_xen_import_opts *io, struct xsr_domain_stats *st,
		       char *err, size_t errlen)
{
	uint64_t t0 = util_now_ns();
	int timing = getenv("XSR_XEN_TIMING") != NULL, suspended = 0, rc = -1;
	uint32_t vcpus = 0;
	libxl_ctx *ctx = NULL;
	struct nsave *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n->domid = domid;
	n->mfd = -1;
	if ((rc = native_open(n, &ctx, err, errlen)) != 0 ||
	    (rc = native_suspend(n, ctx, st, t0, &suspended, err, errlen)) < 0)
		goto out;
	rc = -1;
	if (native_stream(n, &vcpus) < 0 || native_mapper(n) < 0) {
		snprintf(err, errlen, "%s", n->err);
		goto out;
	}
	if (timing)
		fprintf(stderr, "xsr timing: native: stream written %.1f ms\n", (util_now_ns() - t0) / 1e6);
	/* the image: the importer reads the stream, the pages come from give_pages */
	struct xsr_xen_import_opts o = *io;
	o.vcpus_hint = vcpus;
	o.pages = give_pages;
	o.pages_ctx = n;
	uint64_t ti = util_now_ns();
	if (xsr_xen_import_fd(n->mfd, out_fd, &o, NULL, err, errlen) < 0)
		goto out;
	st->transcode_ns = util_now_ns() - ti;
	if (timing)
		fprintf(stderr, "xsr timing: native: image written %.1f ms (%.1f ms waiting for mapped batches)\n",
			(util_now_ns() - t0) / 1e6, n->t_map / 1e6);
	struct stat sb;
	if (fstat(out_fd, &sb) == 0)
		st->bytes = (uint64_t)sb.st_size;
	st->native = 1;
	rc = 0;
out:
	nsave_close(n);
	if (rc < 0 && suspended) {
		char e2[256];
		size_t l = strlen(err);
		if (xen_save_finish(domid, 0, e2, sizeof(e2)) < 0) {
			st->stays_suspended = 1;
			if (l < errlen)
				snprintf(err + l, errlen - l, "; and resuming it failed: %s (it stays suspended)", e2);
		}
	}
	st->elapsed_ns = util_now_ns() - t0;
	return rc;
}

/*
 * libxl's engine: the transcode runs on a thread that follows libxl's memfd
 * as it grows (xen_import_opts.follow_done), so that it overlaps the suspend.
 */
struct follower {
	struct xsr_xen_import_opts io;
	pthread_t tid;
	int started, out, mfd, rc, overlapped;
	uint32_t vcpus;
	atomic_int done;
	char err[1024];
};

/* The importer's XSR_XEN_TIMING notes ("timing: ..."), printed as before the library had them. */
static void timing_note(void *ctx, const char *msg)
{
	fprintf(stderr, "xsr %s\n", msg);
}

static void *follow_main(void *arg)
{
	struct follower *f = arg;
	struct xsr_xen_import_opts o = f->io;
	o.follow_done = &f->done;
	o.vcpus_hint = f->vcpus;
	o.cb.note = timing_note;
	struct xsr_xen_import_stats st;
	f->rc = xsr_xen_import_fd(f->mfd, f->out, &o, &st, f->err, sizeof(f->err));
	f->overlapped = st.overlapped;
	return NULL;
}

static int follow_start(void *ctx, int mfd, uint32_t vcpus)
{
	struct follower *f = ctx;
	f->mfd = mfd;
	f->vcpus = vcpus;
	if (pthread_create(&f->tid, NULL, follow_main, f) != 0)
		return -1;
	f->started = 1;
	return 0;
}

/* libxl suspends into a memfd, the importer follows it (a seekable save) or transcodes it after. 0, or -1 resumed. */
static int libxl_save(uint32_t domid, int out_fd, int live, const struct xsr_xen_import_opts *io,
		      struct xsr_domain_stats *st, char *err, size_t errlen)
{
	uint64_t t0 = util_now_ns();
	int rc, mfd;
	/* A stream cannot be started again if the stream turns out off the plan: transcode at the end. */
	if (io->layout != XSR_LAYOUT_STREAM && !live && !getenv("XSR_XEN_SAVE_NO_OVERLAP")) {
		struct follower f = {.io = *io, .out = out_fd};
		mfd = xen_lx_suspend(domid, 0, follow_start, &f, st, err, errlen);
		if (getenv("XSR_XEN_TIMING"))
			fprintf(stderr, "xsr timing: libxl suspend returned %.1f ms\n", util_now_ns() / 1e6);
		atomic_store(&f.done, 1);
		if (f.started)
			pthread_join(f.tid, NULL);
		if (mfd < 0)
			return -1; /* the domain was resumed */
		close(mfd);
		rc = f.started ? f.rc : -1;
		if (rc < 0)
			snprintf(err, errlen, "%s", f.started ? f.err : "the transcoding thread did not start");
		st->overlapped = f.overlapped;
		st->transcode_ns = util_now_ns() - t0 - st->suspend_ns; /* what was left after libxl's part */
	} else {
		mfd = xen_lx_suspend(domid, live, NULL, NULL, st, err, errlen);
		if (mfd < 0)
			return -1;
		uint64_t t1 = util_now_ns();
		rc = xsr_xen_import_fd(mfd, out_fd, io, NULL, err, errlen);
		close(mfd);
		st->transcode_ns = util_now_ns() - t1;
	}
	if (rc < 0) {
		char e2[256];
		size_t l = strlen(err);
		if (xen_lx_finish(domid, 0, e2, sizeof(e2)) < 0) {
			st->stays_suspended = 1;
			if (l < errlen)
				snprintf(err + l, errlen - l, "; and resuming it failed: %s (it stays suspended)", e2);
		}
	} else {
		struct stat sb;
		if (fstat(out_fd, &sb) == 0)
			st->bytes = (uint64_t)sb.st_size;
	}
	st->elapsed_ns = util_now_ns() - t0;
	return rc < 0 ? -1 : 0;
}

int xen_save_domain(uint32_t domid, int out_fd, const struct xsr_domain_save_opts *o, struct xsr_domain_stats *st,
		    char *err, size_t errlen)
{
	struct xsr_xen_import_opts io = {.layout = o->stream ? XSR_LAYOUT_STREAM : 0, .kind = o->kind,
					 .compress = o->compress, .begin = o->begin, .begin_ctx = o->ctx,
					 .end = o->end, .end_ctx = o->end_ctx};
	const char *via = getenv("XSR_XEN_SAVE_VIA");
	int rc = 1;
	memset(st, 0, sizeof(*st));
	if (o->catch_signals)
		catch_signals();
	/* 64-bit PV, stop-and-copy: the native save; "libxl" keeps libxl's engine, for comparison */
	if (!o->live && (!via || strcmp(via, "libxl")))
		rc = native_save(domid, out_fd, &io, st, err, errlen);
	if (rc == 1)
		rc = libxl_save(domid, out_fd, o->live, &io, st, err, errlen);
	if (rc < 0)
		st->stop_signal = stop_sig;
	return rc;
}

int xen_save_finish(uint32_t domid, int destroy, char *err, size_t errlen)
{
	int rc = xen_lx_finish(domid, destroy, err, errlen);
	save_reap(); /* the native save's unmapping ran alongside */
	return rc;
}

#endif
