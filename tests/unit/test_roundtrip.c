/*
 * Property tests (issue 15): parse(serialize(x)) == x for records, over many
 * random values from a seeded PRNG, and serialize(parse(bytes)) == bytes
 * where an encoder exists.  Values go in through the public writer API
 * (vCPU state, notes, config and other sections, pages in both layouts,
 * compressed and not) and must come back out of the readers exactly.
 * XSR_PROP_SEED=N reruns with another seed; a failure names the seed and
 * the iteration.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

/* ---- a small seeded PRNG (xorshift64*) ---- */

static uint64_t rng_state;

static uint64_t seed(void)
{
	const char *s = getenv("XSR_PROP_SEED");
	return s ? strtoull(s, NULL, 0) : 0x5eed15u;
}

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform in [lo, hi]. */
static uint64_t between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

static void fill_random(void *p, size_t n)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

/* ---- vCPU state ---- */

/* A random state that is canonical: reserved fields zero, blobs within their limits. */
static void random_vcpu(struct xsr_vcpu_state *st, uint32_t id)
{
	memset(&st->r, 0, sizeof(st->r));
	fill_random(&st->r, sizeof(st->r));
	st->r.vcpu_id = id;
	st->r.valid = (uint32_t)rnd() & XSR_VCPU_KNOWN;
	memset(st->r.reserved, 0, sizeof(st->r.reserved));
	st->r.gdt.reserved = st->r.idt.reserved = 0;
	/* Mostly small blobs (fast), sometimes at their limits. */
	switch (rnd() % 4) {
	case 0: st->r.xsave_len = 0; break;
	case 1: st->r.xsave_len = (uint32_t)between(1, 64); break;
	case 2: st->r.xsave_len = (uint32_t)between(512, 4096); break;
	default: st->r.xsave_len = rnd() % 8 ? (uint32_t)between(1, XSR_MAX_XSAVE) : XSR_MAX_XSAVE; break;
	}
	st->r.nr_msrs = rnd() % 8 ? (uint32_t)between(0, 40) : (rnd() % 2 ? XSR_MAX_MSRS : 0);
	st->r.lapic_len = rnd() % 2 ? 1024 : 0;
	fill_random(st->xsave, st->r.xsave_len);
	for (uint32_t i = 0; i < st->r.nr_msrs; i++) {
		st->msrs[i].index = (uint32_t)rnd();
		st->msrs[i].reserved = 0;
		st->msrs[i].value = rnd();
	}
	fill_random(st->lapic, st->r.lapic_len);
}

/* The values two states hold (only the valid parts of the blobs). */
static void assert_same_vcpu(const struct xsr_vcpu_state *a, const struct xsr_vcpu_state *b, const char *what)
{
	cr_assert_arr_eq(&a->r, &b->r, sizeof(a->r), "%s: fixed vCPU context differs", what);
	cr_assert_arr_eq(a->xsave, b->xsave, a->r.xsave_len, "%s: xsave differs", what);
	cr_assert_arr_eq(a->msrs, b->msrs, a->r.nr_msrs * sizeof(a->msrs[0]), "%s: MSRs differ", what);
	cr_assert_arr_eq(a->lapic, b->lapic, a->r.lapic_len, "%s: LAPIC differs", what);
}

#define VCPU_ITERS 4000

Test(roundtrip, vcpu_encode_decode)
{
	struct xsr_vcpu_state *st = malloc(sizeof(*st)), *back = malloc(sizeof(*back));
	size_t cap = sizeof(struct xsr_x86_vcpu) + XSR_MAX_XSAVE + XSR_MAX_MSRS * 16 + 1024;
	uint8_t *buf = malloc(cap), *again = malloc(cap);
	char what[96];
	cr_assert(st && back && buf && again);
	rng_state = seed();
	for (int it = 0; it < VCPU_ITERS; it++) {
		snprintf(what, sizeof(what), "seed 0x%llx, iteration %d", (unsigned long long)seed(), it);
		random_vcpu(st, (uint32_t)between(0, XSR_MAX_VCPUS - 1));
		int64_t n = xsr_vcpu_encode(st, buf, cap);
		cr_assert_eq((uint64_t)n, xsr_vcpu_encoded_size(st), "%s: encode gave %lld", what, (long long)n);
		const char *why = NULL;
		memset(back, 0xa5, sizeof(*back));
		cr_assert_eq(xsr_vcpu_decode(buf, (uint64_t)n, back, &why), 0, "%s: %s", what, why);
		assert_same_vcpu(st, back, what);
		/* serialize(parse(bytes)) == bytes */
		cr_assert_eq(xsr_vcpu_encode(back, again, cap), n, "%s", what);
		cr_assert_arr_eq(again, buf, (size_t)n, "%s: re-encoding differs", what);
		/* One octet more or less is never the same state. */
		cr_assert_lt(xsr_vcpu_decode(buf, (uint64_t)n - 1, back, &why), 0, "%s", what);
	}
	free(st);
	free(back);
	free(buf);
	free(again);
}

/* ---- whole images: sections, notes, pages, vCPUs ---- */

#define MAX_RUNS 4
#define MAX_PAGES (MAX_RUNS * 24)
#define MAX_VCPUS 4
#define MAX_SECS 6

struct model {
	uint32_t nr_vcpus, nr_runs, nr_pages, nsecs;
	struct xsr_memrun runs[MAX_RUNS];
	uint64_t pfn[MAX_PAGES];
	uint8_t page[MAX_PAGES][XSR_PAGE_SIZE]; /* what each pfn must read back as */
	struct xsr_vcpu_state *vcpu[MAX_VCPUS];
	struct {
		uint32_t code;
		int optional;
		uint64_t len;
		uint8_t body[600];
	} sec[MAX_SECS];
	char vmci[200];
	uint32_t vmci_len;
};

static bool is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < XSR_PAGE_SIZE; i++)
		if (p[i])
			return false;
	return true;
}

static int slot_of(const struct model *m, uint64_t pfn)
{
	for (uint32_t i = 0; i < m->nr_pages; i++)
		if (m->pfn[i] == pfn)
			return (int)i;
	return -1;
}

static void random_model(struct model *m)
{
	static const uint32_t codes[] = {XSR_SEC_CONFIG, XSR_SEC_XENSTORE, XSR_SEC_EMULATOR, XSR_SEC_PASSTHRU};
	m->nr_vcpus = (uint32_t)between(1, MAX_VCPUS);
	m->nr_runs = (uint32_t)between(1, MAX_RUNS);
	uint64_t pfn = between(0, 64);
	m->nr_pages = 0;
	for (uint32_t r = 0; r < m->nr_runs; r++) {
		m->runs[r].pfn = pfn;
		m->runs[r].count = between(1, 24);
		for (uint64_t i = 0; i < m->runs[r].count; i++)
			m->pfn[m->nr_pages++] = pfn + i;
		pfn += m->runs[r].count + between(1, rnd() % 4 ? 100 : 1u << 30);
	}
	for (uint32_t v = 0; v < m->nr_vcpus; v++)
		random_vcpu(m->vcpu[v], v);
	m->nsecs = (uint32_t)between(0, MAX_SECS);
	for (uint32_t i = 0; i < m->nsecs; i++) {
		m->sec[i].code = codes[rnd() % 4];
		m->sec[i].optional = (int)(rnd() % 2);
		m->sec[i].len = between(m->sec[i].code == XSR_SEC_PASSTHRU ? 8 : 0, sizeof(m->sec[i].body));
		fill_random(m->sec[i].body, m->sec[i].len);
	}
	m->vmci_len = 0;
	if (rnd() % 2)
		m->vmci_len = (uint32_t)snprintf(m->vmci, sizeof(m->vmci), "OSRELEASE=6.%u.%u\nPAGESIZE=4096\nKERNELOFFSET=%llx\n",
						 (unsigned)between(0, 19), (unsigned)between(0, 99), (unsigned long long)rnd());
}

/* Put every page, in shuffled batches, some twice (the later put wins), some zero or NULL. */
static void put_pages(struct xsr_writer *w, struct model *m)
{
	static uint8_t data[2 * MAX_PAGES][XSR_PAGE_SIZE];
	uint64_t pfns[2 * MAX_PAGES];
	const void *ptr[2 * MAX_PAGES];
	uint32_t n = 0;
	/* A third of the images mostly zero: long runs of holes in a seekable file. */
	bool sparse = rnd() % 3 == 0;
	for (uint32_t i = 0; i < m->nr_pages; i++) {
		uint32_t puts = rnd() % 5 ? 1 : 2;
		for (uint32_t k = 0; k < puts; k++, n++) {
			pfns[n] = m->pfn[i];
			switch (sparse && rnd() % 10 ? rnd() % 2 : rnd() % 4) {
			case 0: /* NULL: known zero */
				ptr[n] = NULL;
				break;
			case 1: /* zero octets: the writer must find them zero */
				memset(data[n], 0, XSR_PAGE_SIZE);
				ptr[n] = data[n];
				break;
			default: /* data, compressible or not */
				if (rnd() % 2)
					fill_random(data[n], XSR_PAGE_SIZE);
				else
					memset(data[n], (int)between(1, 255), XSR_PAGE_SIZE);
				memcpy(data[n], &m->pfn[i], 8);
				ptr[n] = data[n];
			}
			if (ptr[n])
				memcpy(m->page[i], ptr[n], XSR_PAGE_SIZE);
			else
				memset(m->page[i], 0, XSR_PAGE_SIZE);
		}
	}
	/* Shuffle, keeping the order of two puts of one pfn (the later one wins). */
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)between(0, i);
		if (pfns[i] == pfns[j])
			continue;
		bool later = false; /* would the swap move a pfn's last put before an earlier one? */
		for (uint32_t k = j + 1; k < i; k++)
			later |= pfns[k] == pfns[i] || pfns[k] == pfns[j];
		if (later)
			continue;
		uint64_t tp = pfns[i];
		const void *tq = ptr[i];
		pfns[i] = pfns[j], ptr[i] = ptr[j];
		pfns[j] = tp, ptr[j] = tq;
	}
	for (uint32_t done = 0; done < n;) {
		uint32_t b = (uint32_t)between(1, n - done);
		cr_assert_eq(xsr_writer_put_pages(w, pfns + done, b, ptr + done), 0, "%s", xsr_writer_error(w));
		done += b;
	}
}

static void write_model(int fd, struct model *m, int layout, int compress)
{
	char err[256];
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = m->nr_vcpus, .nr_runs = m->nr_runs, .runs = m->runs,
				      .hypervisor = "prop", .compress = (uint8_t)compress,
				      .vmcoreinfo = m->vmci_len ? m->vmci : NULL, .vmcoreinfo_len = m->vmci_len};
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	/* Sections, pages and vCPUs in a random order. */
	uint32_t order = (uint32_t)rnd() % 3;
	for (uint32_t step = 0; step < 3; step++) {
		uint32_t what = (order + step) % 3;
		if (what == 0)
			put_pages(w, m);
		for (uint32_t v = 0; what == 1 && v < m->nr_vcpus; v++)
			cr_assert_eq(xsr_writer_set_vcpu(w, m->vcpu[v]), 0, "%s", xsr_writer_error(w));
		for (uint32_t i = 0; what == 2 && i < m->nsecs; i++) {
			struct iovec iov = {m->sec[i].body, m->sec[i].len};
			cr_assert_eq(xsr_writer_add_section(w, m->sec[i].code, m->sec[i].optional, 0, 0, &iov, 1), 0, "%s",
				     xsr_writer_error(w));
		}
	}
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
}

/* The NOTES body: an NT_PRSTATUS per vCPU from its registers, then VMCOREINFO if given. */
static void check_notes(const struct model *m, const uint8_t *b, uint64_t len, const char *what)
{
	uint64_t off = 0;
	uint32_t nprs = 0, nvmci = 0;
	while (len - off >= 12) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, b + off, 4);
		memcpy(&descsz, b + off + 4, 4);
		memcpy(&type, b + off + 8, 4);
		uint64_t name = off + 12, desc = name + ((namesz + 3) & ~3u);
		cr_assert_leq(desc + descsz, len, "%s: note past the section", what);
		if (namesz == 5 && !memcmp(b + name, "CORE", 5) && type == XSR_NT_PRSTATUS) {
			uint8_t want[XSR_PRSTATUS_SIZE];
			cr_assert_lt(nprs, m->nr_vcpus, "%s: more NT_PRSTATUS notes than vCPUs", what);
			cr_assert_eq(descsz, XSR_PRSTATUS_SIZE, "%s", what);
			xsr_vcpu_prstatus(&m->vcpu[nprs]->r, want);
			cr_assert_arr_eq(b + desc, want, XSR_PRSTATUS_SIZE, "%s: NT_PRSTATUS of vCPU %u differs", what, nprs);
			nprs++;
		} else if (namesz == 11 && !memcmp(b + name, "VMCOREINFO", 11)) {
			cr_assert_eq(descsz, m->vmci_len, "%s: VMCOREINFO note length", what);
			cr_assert_arr_eq(b + desc, m->vmci, m->vmci_len, "%s: VMCOREINFO note differs", what);
			nvmci++;
		}
		off = desc + ((descsz + 3) & ~3u);
	}
	cr_assert_eq(nprs, m->nr_vcpus, "%s: %u NT_PRSTATUS notes for %u vCPUs", what, nprs, m->nr_vcpus);
	cr_assert_eq(nvmci, m->vmci_len ? 1u : 0u, "%s: VMCOREINFO notes", what);
}

/* The sections a caller added come back in the order added (the writer's order for each type). */
static void check_section(const struct model *m, uint32_t *seen, uint32_t code, int optional, const void *body,
			  uint64_t len, const char *what)
{
	for (uint32_t i = 0; i < m->nsecs; i++) {
		if (seen[i] || m->sec[i].code != code)
			continue;
		cr_assert_eq(m->sec[i].optional, optional, "%s: section %u's optional flag", what, i);
		cr_assert_eq(len, m->sec[i].len, "%s: section %u of %llu octets, %llu written", what, i,
			     (unsigned long long)len, (unsigned long long)m->sec[i].len);
		cr_assert_arr_eq(body, m->sec[i].body, len, "%s: section %u differs", what, i);
		seen[i] = 1;
		return;
	}
	cr_assert_fail("%s: a section of type %u that was not written", what, code);
}

static void check_seekable(const struct model *m, const uint8_t *file, size_t size, const char *what)
{
	char err[256];
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open_mem(&img, file, size, 0, err, sizeof(err)), 0, "%s: %s", what, err);
	const struct xsr_file_header *fh = xsr_image_header(img);
	cr_assert_eq(fh->nr_vcpus, m->nr_vcpus, "%s", what);
	cr_assert_eq(fh->nr_pages, m->nr_pages, "%s", what);
	cr_assert_eq(xsr_image_nruns(img), m->nr_runs, "%s", what);
	cr_assert_arr_eq(xsr_image_runs(img), m->runs, m->nr_runs * sizeof(m->runs[0]), "%s: memory map", what);
	static uint8_t page[XSR_PAGE_SIZE];
	for (uint32_t i = 0; i < m->nr_pages; i++) {
		uint32_t flags;
		cr_assert_eq(xsr_image_read_page(img, m->pfn[i], page, &flags), 0, "%s: %s", what, xsr_image_error(img));
		cr_assert_arr_eq(page, m->page[i], XSR_PAGE_SIZE, "%s: pfn 0x%llx differs", what, (unsigned long long)m->pfn[i]);
		cr_assert_eq(!!(flags & XSR_IDX_DATA), !is_zero(m->page[i]), "%s: pfn 0x%llx flags 0x%x", what,
			     (unsigned long long)m->pfn[i], flags);
	}
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	size_t cap = sizeof(struct xsr_x86_vcpu) + XSR_MAX_XSAVE + XSR_MAX_MSRS * 16 + 1024;
	uint8_t *enc = malloc(cap);
	for (uint32_t v = 0; v < m->nr_vcpus; v++) {
		cr_assert_eq(xsr_image_vcpu(img, v, st), 0, "%s: %s", what, xsr_image_error(img));
		assert_same_vcpu(m->vcpu[v], st, what);
	}
	uint32_t seen[MAX_SECS] = {0};
	for (uint32_t i = 1; i < xsr_image_nsections(img); i++) {
		struct xsr_section_info si;
		void *body;
		uint64_t len;
		cr_assert_eq(xsr_image_section(img, i, &si), 0);
		if (si.code == XSR_SEC_PAGES)
			continue;
		cr_assert_eq(xsr_image_read_section(img, i, &body, &len), 0, "%s: %s", what, xsr_image_error(img));
		switch (si.code) {
		case XSR_SEC_NOTES:
			check_notes(m, body, len, what);
			break;
		case XSR_SEC_VMCOREINFO:
			cr_assert_eq(len, m->vmci_len, "%s", what);
			cr_assert_arr_eq(body, m->vmci, len, "%s: VMCOREINFO section differs", what);
			break;
		case XSR_SEC_VCPU: {
			/* serialize(parse(bytes)) == bytes for the section's own octets */
			const char *why;
			cr_assert_eq(xsr_vcpu_decode(body, len, st, &why), 0, "%s: %s", what, why);
			cr_assert_eq(xsr_vcpu_encode(st, enc, cap), (int64_t)len, "%s", what);
			cr_assert_arr_eq(enc, body, len, "%s: vCPU section does not re-encode to itself", what);
			break;
		}
		case XSR_SEC_CONFIG:
		case XSR_SEC_XENSTORE:
		case XSR_SEC_EMULATOR:
		case XSR_SEC_PASSTHRU:
			check_section(m, seen, si.code, !!(si.sh_type & XSR_SHT_OPTIONAL), body, len, what);
			break;
		}
		free(body);
	}
	for (uint32_t i = 0; i < m->nsecs; i++)
		cr_assert(seen[i], "%s: section %u (type %u) not read back", what, i, m->sec[i].code);
	cr_assert_eq(xsr_image_verify(img, NULL, NULL), 0, "%s: %s", what, xsr_image_error(img));
	free(st);
	free(enc);
	xsr_image_close(img);
}

/*
 * The same image from its fd, a sparse file whose zero pages are holes: the
 * readers skip reading those (verify_pages, xsr_image_read_pages) and must
 * still give the same pages and find the image intact.
 */
static void check_sparse(const struct model *m, int fd, const char *what)
{
	char err[256];
	struct xsr_image *img;
	static uint8_t buf[24][XSR_PAGE_SIZE];
	struct xsr_index_entry ent[24];
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s (fd): %s", what, err);
	cr_assert_eq(xsr_image_verify(img, NULL, NULL), 0, "%s (fd): %s", what, xsr_image_error(img));
	for (uint32_t r = 0, i = 0; r < m->nr_runs; i += (uint32_t)m->runs[r].count, r++) {
		cr_assert_eq(xsr_image_read_pages(img, r, 0, m->runs[r].count, buf, ent), 0, "%s (fd): %s", what,
			     xsr_image_error(img));
		for (uint64_t k = 0; k < m->runs[r].count; k++)
			cr_assert_arr_eq(buf[k], m->page[i + k], XSR_PAGE_SIZE, "%s (fd): pfn 0x%llx differs", what,
					 (unsigned long long)m->pfn[i + k]);
	}
	xsr_image_close(img);
}

struct sctx {
	const struct model *m;
	const char *what;
	uint8_t got[MAX_PAGES][XSR_PAGE_SIZE];
	uint8_t have[MAX_PAGES];
	uint32_t vcpus, seen[MAX_SECS], notes;
	struct xsr_vcpu_state *st;
};

static int s_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct sctx *c = ctx;
	uint32_t code = rh->sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh->sh_type & XSR_SHT_CODE_MASK;
	const char *why;
	switch (code) {
	case XSR_SEC_NOTES:
		check_notes(c->m, body, rh->sh_size, c->what);
		c->notes++;
		break;
	case XSR_SEC_VMCOREINFO:
		cr_assert_eq(rh->sh_size, c->m->vmci_len, "%s", c->what);
		cr_assert_arr_eq(body, c->m->vmci, rh->sh_size, "%s: VMCOREINFO record differs", c->what);
		break;
	case XSR_SEC_VCPU:
		cr_assert_lt(rh->sh_info, c->m->nr_vcpus, "%s", c->what);
		cr_assert_eq(xsr_vcpu_decode(body, rh->sh_size, c->st, &why), 0, "%s: %s", c->what, why);
		assert_same_vcpu(c->m->vcpu[rh->sh_info], c->st, c->what);
		c->vcpus++;
		break;
	case XSR_SEC_CONFIG:
	case XSR_SEC_XENSTORE:
	case XSR_SEC_EMULATOR:
	case XSR_SEC_PASSTHRU:
		check_section(c->m, c->seen, code, !!(rh->sh_type & XSR_SHT_OPTIONAL), body, rh->sh_size, c->what);
		break;
	}
	return 0;
}

static int s_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct sctx *c = ctx;
	for (uint32_t i = 0; i < n; i++) {
		int s = slot_of(c->m, pfns[i] & XSR_PFN_MASK);
		cr_assert_geq(s, 0, "%s: pfn 0x%llx was not written", c->what, (unsigned long long)pfns[i]);
		if (pfns[i] & XSR_PFN_ZERO) {
			memset(c->got[s], 0, XSR_PAGE_SIZE);
		} else {
			memcpy(c->got[s], data, XSR_PAGE_SIZE);
			data += XSR_PAGE_SIZE;
		}
		c->have[s] = 1;
	}
	return 0;
}

static void check_stream(const struct model *m, const uint8_t *file, size_t size, const char *what)
{
	static struct sctx c;
	static const struct xsr_stream_ops ops = {.section = s_section, .pages = s_pages};
	char err[256];
	struct xsr_stream *s;
	memset(&c, 0, sizeof(c));
	c.m = m;
	c.what = what;
	c.st = malloc(sizeof(*c.st));
	cr_assert_eq(xsr_stream_open_mem(&s, file, size, err, sizeof(err)), 0, "%s: %s", what, err);
	cr_assert_eq(xsr_stream_run(s, &ops, &c), 0, "%s: %s", what, xsr_stream_error(s));
	const struct xsr_file_header *fh = xsr_stream_header(s);
	cr_assert_eq(fh->nr_vcpus, m->nr_vcpus, "%s", what);
	cr_assert_eq(fh->nr_pages, m->nr_pages, "%s", what);
	cr_assert_eq(c.vcpus, m->nr_vcpus, "%s", what);
	cr_assert_eq(c.notes, 1u, "%s", what);
	for (uint32_t i = 0; i < m->nsecs; i++)
		cr_assert(c.seen[i], "%s: section %u (type %u) not read back", what, i, m->sec[i].code);
	for (uint32_t i = 0; i < m->nr_pages; i++) {
		cr_assert(c.have[i], "%s: pfn 0x%llx never sent", what, (unsigned long long)m->pfn[i]);
		cr_assert_arr_eq(c.got[i], m->page[i], XSR_PAGE_SIZE, "%s: pfn 0x%llx differs", what,
				 (unsigned long long)m->pfn[i]);
	}
	xsr_stream_close(s);
	free(c.st);
}

static size_t file_of(int fd, uint8_t **buf)
{
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_gt(size, 0);
	*buf = realloc(*buf, (size_t)size);
	cr_assert_eq(pread(fd, *buf, (size_t)size, 0), size);
	return (size_t)size;
}

#define IMAGE_ITERS 300

Test(roundtrip, images_both_layouts, .timeout = 60)
{
	static struct model m;
	char what[128];
	uint8_t *a = NULL, *b = NULL;
	int fd = memfd_create("xsr-prop", MFD_CLOEXEC), fd2 = memfd_create("xsr-prop-2", MFD_CLOEXEC);
	cr_assert(fd >= 0 && fd2 >= 0);
	for (uint32_t v = 0; v < MAX_VCPUS; v++)
		cr_assert(m.vcpu[v] = malloc(sizeof(*m.vcpu[v])));
	unsigned count[2][3] = {{0}}, pages = 0, secs = 0;
	rng_state = seed() ^ 0x1a6e5;
	for (int it = 0; it < IMAGE_ITERS; it++) {
		random_model(&m);
		int layout = rnd() % 2 ? XSR_LAYOUT_SEEKABLE : XSR_LAYOUT_STREAM;
		int compress = layout == XSR_LAYOUT_STREAM ? (int)(rnd() % 3) : XSR_COMPRESS_NONE;
		snprintf(what, sizeof(what), "seed 0x%llx, iteration %d (%s, compression %d)", (unsigned long long)seed(),
			 it, layout == XSR_LAYOUT_SEEKABLE ? "seekable" : "stream", compress);
		write_model(fd, &m, layout, compress);
		count[layout == XSR_LAYOUT_STREAM][compress]++;
		pages += m.nr_pages;
		secs += m.nsecs;
		size_t n = file_of(fd, &a);
		if (layout == XSR_LAYOUT_SEEKABLE) {
			check_seekable(&m, a, n, what);
			check_sparse(&m, fd, what);
		} else
			check_stream(&m, a, n, what);
		/*
		 * serialize(parse(bytes)) == bytes: converting to the same layout
		 * and compression writes the same octets (the producer is kept).
		 */
		char err[256];
		struct xsr_convert_opts o = {.layout = (uint8_t)layout, .compress = (uint8_t)compress};
		cr_assert_eq(ftruncate(fd2, 0), 0);
		cr_assert_eq(lseek(fd2, 0, SEEK_SET), 0);
		cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
		cr_assert_eq(xsr_convert(fd, fd2, &o, err, sizeof(err)), 0, "%s: convert: %s", what, err);
		size_t n2 = file_of(fd2, &b);
		cr_assert_eq(n2, n, "%s: converted to itself, %zu octets instead of %zu", what, n2, n);
		cr_assert_arr_eq(b, a, n, "%s: converted to itself, the octets differ", what);
	}
	cr_log_info("%d images (seekable %u; stream %u plain, %u zstd, %u lz4), %u pages, %u added sections",
		    IMAGE_ITERS, count[0][0], count[1][0], count[1][1], count[1][2], pages, secs);
	for (uint32_t v = 0; v < MAX_VCPUS; v++)
		free(m.vcpu[v]);
	free(a);
	free(b);
	close(fd);
	close(fd2);
}
