/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The synthetic backend: a deterministic domain with no hypervisor behind it.
 *
 * Page content (docs/xsrelf-format.md, "Synthetic domains"): for pfn p,
 * h = splitmix64(seed ^ (p * 0x9e3779b97f4a7c15)).  The page is all zero if
 * (h >> 11) / 2^53 < zero_fraction; otherwise word 0 is p and word i (1..511)
 * is splitmix64(h + i), little-endian.
 *
 * As a restore target it holds no memory: unmap() of a writable mapping
 * checks what was written against the function, so restoring an image into
 * it proves that the pages came back intact.  Its memory reads as zero
 * until written; a mapping handed out for writing is pre-filled with a
 * pattern instead, so a page mapped but not written shows up as wrong.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/*
 * Read-only mappings come from two buffers.  With a second CPU to run on, a
 * thread generates the batch the engine will most likely map next (the one
 * after the last, in pfn order) while the engine writes the current one, as
 * the Xen backend maps ahead of its writer: generating the pages is the
 * synthetic domain's stand-in for guest memory that a real backend maps
 * in place, and it was a sixth of a synthetic save's CPU time (issue 19).
 * Any other request is generated in line, so what map() returns never
 * depends on the guess.
 */
enum { BUF_FREE, BUF_FILLING, BUF_READY, BUF_MAPPED };
struct ahead {
	pthread_t thread;
	bool have_thread, quit;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *buf[2];
	uint64_t cap[2]; /* pages */
	uint64_t pfn[2], count[2];
	int state[2];
	int want; /* buffer to fill next, or -1 */
	uint64_t longest; /* pages of the longest batch mapped */
};

struct synth {
	struct xsr_backend be;
	struct xsr_synth_params p;
	struct xsr_memrun runs[2];
	uint32_t nr_runs;
	int paused;
	int checking; /* restore target: compare what is written */
	uint64_t mismatches;
	uint64_t checked;
	uint8_t *written; /* checking: a bit per pfn written by the restore */
	uint64_t max_pfn; /* one past the last pfn */
	struct ahead *ahead; /* read-only mappings: buffers, and the thread that fills the next one */
	char err[256];
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int synth_page(uint64_t seed, double zero_fraction, uint64_t pfn, uint8_t page[4096])
{
	uint64_t h = splitmix64(seed ^ (pfn * 0x9e3779b97f4a7c15ull));
	if ((double)(h >> 11) / 9007199254740992.0 < zero_fraction) {
		memset(page, 0, 4096);
		return 1;
	}
	uint64_t w = pfn;
	memcpy(page, &w, 8);
	for (int i = 1; i < 512; i++) {
		w = splitmix64(h + (uint64_t)i);
		memcpy(page + 8 * i, &w, 8);
	}
	return 0;
}

static struct synth *S(struct xsr_backend *be)
{
	return (struct synth *)be;
}

static int sy_describe(struct xsr_backend *be, struct xsr_domain_info *out)
{
	struct synth *s = S(be);
	memset(out, 0, sizeof(*out));
	out->nr_vcpus = s->p.nr_vcpus;
	out->nr_runs = s->nr_runs;
	out->runs = s->runs;
	snprintf(out->hypervisor, sizeof(out->hypervisor), "synthetic");
	snprintf(out->hypervisor_version, sizeof(out->hypervisor_version), "seed=%llu zero=%.3f",
		 (unsigned long long)s->p.seed, s->p.zero_fraction);
	return 0;
}

static int sy_pause(struct xsr_backend *be)
{
	S(be)->paused = 1;
	return 0;
}

static int sy_resume(struct xsr_backend *be)
{
	S(be)->paused = 0;
	return 0;
}

static void fill(const struct synth *s, uint8_t *buf, uint64_t pfn, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++)
		synth_page(s->p.seed, s->p.zero_fraction, pfn + i, buf + i * 4096);
}

static void *ahead_main(void *arg)
{
	struct synth *s = arg;
	struct ahead *a = s->ahead;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->want < 0 && !a->quit)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->quit)
			break;
		int b = a->want;
		a->want = -1;
		pthread_mutex_unlock(&a->lock);
		fill(s, a->buf[b], a->pfn[b], a->count[b]);
		pthread_mutex_lock(&a->lock);
		a->state[b] = BUF_READY;
		pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static bool two_cpus(void)
{
	cpu_set_t set;
	if (getenv("XSR_NO_HASH_THREAD"))
		return false;
	return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
}

static struct ahead *ahead_get(struct synth *s)
{
	if (s->ahead)
		return s->ahead;
	struct ahead *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->want = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	s->ahead = a;
	if (two_cpus() && pthread_create(&a->thread, NULL, ahead_main, s) == 0)
		a->have_thread = true;
	return a;
}

static void ahead_free(struct synth *s)
{
	struct ahead *a = s->ahead;
	if (!a)
		return;
	if (a->have_thread) {
		pthread_mutex_lock(&a->lock);
		a->quit = true;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a->buf[0]);
	free(a->buf[1]);
	free(a);
	s->ahead = NULL;
}

/*
 * The batch after [pfn, pfn + count) within the domain's runs, or 0 pages.
 * As long as the longest batch mapped so far (at most 1024 pages): a short
 * run's batch (the 160 pages below 640 KiB) must not make every guess after
 * it too short to match.
 */
static uint64_t next_batch(const struct synth *s, uint64_t pfn, uint64_t count, uint64_t *next)
{
	uint64_t len = s->ahead->longest < 1024 ? s->ahead->longest : 1024;
	uint64_t at = pfn + count;
	for (uint32_t r = 0; r < s->nr_runs; r++) {
		uint64_t end = s->runs[r].pfn + s->runs[r].count;
		if (at < s->runs[r].pfn)
			at = s->runs[r].pfn;
		if (at < end) {
			*next = at;
			return end - at < len ? end - at : len;
		}
	}
	return 0;
}

/* A read-only mapping: the buffer filled ahead if it holds the batch, else one filled now. */
static int map_ro(struct synth *s, uint64_t pfn, uint64_t count, void **addr)
{
	struct ahead *a = ahead_get(s);
	if (!a)
		return XSR_E_NOMEM;
	int b = -1;
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < 2 && b < 0; i++)
		if ((a->state[i] == BUF_FILLING || a->state[i] == BUF_READY) && a->pfn[i] == pfn && a->count[i] >= count)
			b = i;
	if (b >= 0) {
		while (a->state[b] != BUF_READY)
			pthread_cond_wait(&a->cond, &a->lock);
	} else {
		/* Take a buffer not mapped, after any fill of it ends; a guess that missed is dropped. */
		for (int i = 0; i < 2 && b < 0; i++)
			if (a->state[i] != BUF_MAPPED)
				b = i;
		while (b >= 0 && a->state[b] == BUF_FILLING)
			pthread_cond_wait(&a->cond, &a->lock);
	}
	if (b >= 0)
		a->state[b] = BUF_MAPPED;
	pthread_mutex_unlock(&a->lock);
	if (b < 0) {
		/* Both mapped: a caller holding two mappings gets a third of its own. */
		if (!(*addr = malloc(count * 4096)))
			return XSR_E_NOMEM;
		fill(s, *addr, pfn, count);
		return 0;
	}
	if (a->pfn[b] != pfn || a->count[b] < count || !a->buf[b] || a->cap[b] < count) {
		/* Not the guess: fill it here (the buffer is ours alone while mapped). */
		if (a->cap[b] < count) {
			uint8_t *n = malloc((count > 1024 ? count : 1024) * 4096);
			if (!n) {
				pthread_mutex_lock(&a->lock);
				a->state[b] = BUF_FREE;
				pthread_mutex_unlock(&a->lock);
				return XSR_E_NOMEM;
			}
			free(a->buf[b]);
			a->buf[b] = n;
			a->cap[b] = count > 1024 ? count : 1024;
		}
		if (a->pfn[b] != pfn || a->count[b] < count)
			fill(s, a->buf[b], pfn, count);
		a->pfn[b] = pfn;
		a->count[b] = count;
	}
	*addr = a->buf[b];
	/* Guess the next batch into the other buffer, if it is free. */
	if (count > a->longest)
		a->longest = count;
	uint64_t npfn, n = a->have_thread ? next_batch(s, pfn, count, &npfn) : 0;
	int o = 1 - b;
	pthread_mutex_lock(&a->lock);
	/* A guess filled but never mapped (READY) missed: its buffer takes this one. */
	if (n && (a->state[o] == BUF_FREE || a->state[o] == BUF_READY)) {
		if (a->cap[o] < n) {
			uint8_t *nb = malloc(1024 * 4096);
			if (nb) {
				free(a->buf[o]);
				a->buf[o] = nb;
				a->cap[o] = 1024;
			}
		}
		if (a->cap[o] >= n) {
			a->pfn[o] = npfn;
			a->count[o] = n;
			a->state[o] = BUF_FILLING;
			a->want = o;
			pthread_cond_broadcast(&a->cond);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int sy_map(struct xsr_backend *be, uint64_t pfn, uint64_t count, int writable, void **addr)
{
	struct synth *s = S(be);
	if (!writable)
		return map_ro(s, pfn, count, addr);
	uint8_t *buf = malloc(count * 4096);
	if (!buf)
		return XSR_E_NOMEM;
	memset(buf, 0xa5, count * 4096); /* anything not written shows up as a mismatch */
	*addr = buf;
	return 0;
}

static void sy_unmap(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count)
{
	struct synth *s = S(be);
	struct ahead *a = s->ahead;
	bool ours = false;
	if (a) {
		pthread_mutex_lock(&a->lock);
		for (int i = 0; i < 2 && !ours; i++)
			if (a->state[i] == BUF_MAPPED && addr == a->buf[i]) {
				a->state[i] = BUF_FREE;
				ours = true;
			}
		pthread_mutex_unlock(&a->lock);
	}
	if (!ours)
		free(addr);
}

/* The generator decides zero pages from the hash alone: no page is built. */
static int sy_zero_hint(struct xsr_backend *be, uint64_t pfn, uint64_t count, uint8_t *zero)
{
	struct synth *s = S(be);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t h = splitmix64(s->p.seed ^ ((pfn + i) * 0x9e3779b97f4a7c15ull));
		if ((double)(h >> 11) / 9007199254740992.0 < s->p.zero_fraction)
			zero[i] = 1;
	}
	return 0;
}

/* Writable unmap: compare against the generator. */
static void sy_unmap_check(struct synth *s, void *addr, uint64_t pfn, uint64_t count)
{
	uint8_t want[4096];
	for (uint64_t i = 0; i < count; i++) {
		synth_page(s->p.seed, s->p.zero_fraction, pfn + i, want);
		if (s->written && pfn + i < s->max_pfn)
			s->written[(pfn + i) >> 3] |= (uint8_t)(1u << ((pfn + i) & 7));
		if (memcmp(want, (uint8_t *)addr + i * 4096, 4096)) {
			if (!s->mismatches)
				snprintf(s->err, sizeof(s->err), "restored pfn 0x%llx differs from the synthetic content",
					 (unsigned long long)(pfn + i));
			s->mismatches++;
		}
	}
}

void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);
void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st)
{
	struct xsr_x86_vcpu *r = &st->r;
	memset(&st->r, 0, sizeof(st->r));
	r->vcpu_id = id;
	r->valid = XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_FPU | XSR_VCPU_HAVE_MSRS | XSR_VCPU_HAVE_DEBUG;
	for (int i = 0; i < 16; i++)
		r->gpr[i] = 0x1000000000ull * (id + 1) + (uint64_t)i;
	r->gpr[XSR_RSP] = 0xffffc90000004000ull - id * 0x4000ull;
	r->rip = 0xffffffff81000000ull + id * 0x100ull;
	r->rflags = 0x202;
	/* attr packing of format.h: type:4 s:1 dpl:2 p:1 avl:1 l:1 db:1 g:1 */
	struct xsr_x86_segment code = {0, 0xffffffff, 0x10, 0xa9b}, data = {0, 0xffffffff, 0x18, 0xc93};
	r->cs = code;
	r->ds = r->es = r->ss = r->fs = r->gs = data;
	r->gs.base = 0xffff888000000000ull + id * 0x10000ull;
	r->tr = (struct xsr_x86_segment){0xfffffe0000003000ull, 0x67, 0x40, 0x8b};
	r->gdt = (struct xsr_x86_dtable){0xfffffe0000001000ull, 0x7f, 0};
	r->idt = (struct xsr_x86_dtable){0xfffffe0000000000ull, 0xfff, 0};
	r->cr0 = 0x80050033;
	r->cr3 = 0x1000;
	r->cr4 = 0x3606f0;
	r->efer = 0xd01;
	r->apic_base = 0xfee00900;
	r->xcr0 = 0x7;
	r->dr[6] = 0xffff0ff0;
	r->dr[7] = 0x400;
	r->fxsave[0] = 0x7f; /* FCW 0x037f */
	r->fxsave[1] = 0x03;
	r->fxsave[24] = 0x80; /* MXCSR 0x1f80 */
	r->fxsave[25] = 0x1f;
	static const uint32_t msr[] = {0x10, 0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000084, 0xc0000102};
	r->nr_msrs = sizeof(msr) / sizeof(msr[0]);
	for (uint32_t i = 0; i < r->nr_msrs; i++)
		st->msrs[i] = (struct xsr_msr){msr[i], 0, 0x1111111111ull * (i + 1) + id};
}

static int sy_get_vcpu(struct xsr_backend *be, uint32_t vcpu, struct xsr_vcpu_state *out)
{
	if (vcpu >= S(be)->p.nr_vcpus)
		return XSR_E_RANGE;
	synth_vcpu(vcpu, out);
	return 0;
}

static int sy_save_extra(struct xsr_backend *be, struct xsr_writer *w)
{
	struct synth *s = S(be);
	char cfg[256];
	int n = snprintf(cfg, sizeof(cfg),
			 "{\"backend\": \"synthetic\", \"mem\": %llu, \"vcpus\": %u, \"seed\": %llu, \"zero_fraction\": %.6f}\n",
			 (unsigned long long)s->p.mem_bytes, s->p.nr_vcpus, (unsigned long long)s->p.seed, s->p.zero_fraction);
	return xsr_writer_add(w, XSR_SEC_CONFIG, 0, cfg, (uint64_t)n);
}

static int sy_dirty_start(struct xsr_backend *be)
{
	return 0;
}

static int sy_dirty_fetch(struct xsr_backend *be, uint64_t *bitmap, uint64_t nslots)
{
	/* Nothing runs, so nothing is ever dirtied. */
	return 0;
}

static int sy_dirty_stop(struct xsr_backend *be)
{
	return 0;
}

static int sy_create(struct xsr_backend *be, const struct xsr_domain_info *info)
{
	struct synth *s = S(be);
	if (info->nr_vcpus != s->p.nr_vcpus || info->nr_runs != s->nr_runs ||
	    memcmp(info->runs, s->runs, s->nr_runs * sizeof(s->runs[0]))) {
		snprintf(s->err, sizeof(s->err), "image shape (%u vCPUs, %u runs) is not this synthetic domain's",
			 info->nr_vcpus, info->nr_runs);
		return XSR_E_BACKEND;
	}
	return 0;
}

static int sy_set_vcpu(struct xsr_backend *be, const struct xsr_vcpu_state *st)
{
	struct synth *s = S(be);
	struct xsr_vcpu_state *want = malloc(sizeof(*want));
	if (!want)
		return XSR_E_NOMEM;
	synth_vcpu(st->r.vcpu_id, want);
	int same = !memcmp(&want->r, &st->r, sizeof(st->r)) &&
		   !memcmp(want->msrs, st->msrs, st->r.nr_msrs * sizeof(st->msrs[0]));
	free(want);
	if (!same) {
		snprintf(s->err, sizeof(s->err), "vCPU %u state differs from the synthetic state", st->r.vcpu_id);
		return XSR_E_BACKEND;
	}
	return 0;
}

static int sy_load_extra(struct xsr_backend *be, uint32_t code, uint32_t info, const void *body, uint64_t len)
{
	return 0;
}

static int sy_start(struct xsr_backend *be)
{
	struct synth *s = S(be);
	if (s->mismatches) {
		snprintf(s->err + strlen(s->err), sizeof(s->err) - strlen(s->err), " (%llu pages differ)",
			 (unsigned long long)s->mismatches);
		return XSR_E_BACKEND;
	}
	return 0;
}

static const char *sy_error(struct xsr_backend *be)
{
	return S(be)->err;
}

static void sy_close(struct xsr_backend *be)
{
	free(S(be)->written);
	ahead_free(S(be));
	free(be);
}

/* Writable maps are checked on unmap; the ops table routes through here. */
static void sy_unmap_any(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count);

static const struct xsr_backend_ops synth_ops = {
	.name = "synthetic",
	.describe = sy_describe,
	.pause = sy_pause,
	.resume = sy_resume,
	.map = sy_map,
	.unmap = sy_unmap_any,
	.zero_hint = sy_zero_hint,
	.get_vcpu = sy_get_vcpu,
	.save_extra = sy_save_extra,
	.dirty_start = sy_dirty_start,
	.dirty_fetch = sy_dirty_fetch,
	.dirty_stop = sy_dirty_stop,
	.create = sy_create,
	.set_vcpu = sy_set_vcpu,
	.load_extra = sy_load_extra,
	.start = sy_start,
	.error = sy_error,
	.close = sy_close,
};

static void sy_unmap_any(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count)
{
	if (S(be)->checking)
		sy_unmap_check(S(be), addr, pfn, count);
	sy_unmap(be, addr, pfn, count);
}

int synth_open(struct xsr_backend **out, const struct xsr_synth_params *p)
{
	struct synth *s = calloc(1, sizeof(*s));
	if (!s)
		return XSR_E_NOMEM;
	s->be.ops = &synth_ops;
	s->p = *p;
	uint64_t pages = p->mem_bytes / 4096;
	/* Above 2 MiB, leave the legacy VGA/ROM hole at 640 KiB..1 MiB, as PCs do. */
	if (pages > 512) {
		s->runs[0] = (struct xsr_memrun){0, 0xa0};
		s->runs[1] = (struct xsr_memrun){0x100, pages - 0xa0};
		s->nr_runs = 2;
	} else {
		s->runs[0] = (struct xsr_memrun){0, pages};
		s->nr_runs = pages ? 1 : 0;
	}
	*out = &s->be;
	return 0;
}

/* Turn @be into a checking restore target (see the comment at the top). */
void synth_expect(struct xsr_backend *be, uint64_t *checked, uint64_t *mismatches);
void synth_expect(struct xsr_backend *be, uint64_t *checked, uint64_t *mismatches)
{
	struct synth *s = S(be);
	if (!checked) {
		s->checking = 1;
		s->max_pfn = s->runs[s->nr_runs - 1].pfn + s->runs[s->nr_runs - 1].count;
		free(s->written);
		s->written = calloc((size_t)((s->max_pfn + 7) >> 3), 1);
		return;
	}
	/*
	 * Every pfn of the domain counts, whichever layout the image had: a pfn
	 * the restore did not write reads as zero, which is right only where the
	 * generator makes a zero page.  (A seekable image's zero pages are holes
	 * that restore skips; a stream sends them.)
	 */
	s->checked = 0;
	for (uint32_t r = 0; r < s->nr_runs; r++)
		for (uint64_t pfn = s->runs[r].pfn; pfn < s->runs[r].pfn + s->runs[r].count; pfn++) {
			uint8_t z = 0;
			s->checked++;
			if (!s->written)
				continue; /* out of memory for the map: written pages were still compared */
			if (s->written[pfn >> 3] & (1u << (pfn & 7)))
				continue;
			sy_zero_hint(be, pfn, 1, &z);
			if (!z) {
				if (!s->mismatches)
					snprintf(s->err, sizeof(s->err), "pfn 0x%llx was not restored",
						 (unsigned long long)pfn);
				s->mismatches++;
			}
		}
	*checked = s->checked;
	*mismatches = s->mismatches;
}
