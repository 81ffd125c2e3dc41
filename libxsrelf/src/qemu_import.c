/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import (xsrelf/qemu.h): a QEMU migration stream v3 -> one xsrelf image
 * through the one writer.  docs/qemu-compat.md is the mapping.
 *
 * The stream's device sections carry no length: only the VMDESCRIPTION
 * JSON that QEMU appends after EOF says how many octets each field took.
 * So it is found first, from the end of the input (its 0x06 marker is the
 * last 0x06 of the file: JSON text holds no raw control octet, and its
 * be32 length must reach the end exactly), and the stream is then read
 * from the start.  Two passes, as the Xen import: the first checks every
 * section, entry, length and name and notes where each item and page
 * lies (16 octets per page entry, never page data); the second writes.
 * Reads go through a window of the input (no octet-sized reads).
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/qemu.h>
#include <xsrelf/writer.h>

#include "internal.h"
#include "qemu_internal.h"

#define WIN (1u << 20) /* octets of input read at once */
#define PAGE 4096u
#define ZERO_BIT UINT64_C(1) /* occ.pos: the entry was a ZERO (pos is the entry), else data */

struct block {
	char name[256];
	uint64_t used; /* used_length, octets */
};

struct occ {
	uint64_t key; /* block index << 40 | page index */
	uint64_t pos; /* data offset << 1, or entry offset << 1 | ZERO_BIT */
};

struct item {
	uint16_t origin, flags;
	uint32_t type;
	uint64_t off, len;
	int32_t blk; /* XSR_PT_ORIGIN_QEMU_RAM type 1: the block */
	uint8_t *data; /* the item's octets when they are not the input's [off, off+len) (owned), else NULL */
};

struct cpu {
	uint32_t instance, version;
	uint64_t body, len; /* the section's state, after its header */
	uint32_t desc;      /* its device object in the VMDESCRIPTION (QJ_NONE: none) */
};

/* Without a VMDESCRIPTION: a footer (0x7e, be32 id) followed by a plausible section header. */
struct fcand {
	uint32_t id;
	uint64_t pos; /* its 0x7e */
};

struct src {
	struct xsr_source in;
	uint64_t size;
	char err[512];
	int code;
	uint8_t *win;
	uint64_t woff;
	size_t wlen;
	/* the VMDESCRIPTION */
	uint64_t vd_off; /* offset of its 0x06 */
	char *json;
	struct qj_doc doc;
	uint32_t devs; /* the "devices" array */
	uint32_t next_dev;
	char tabcheck[160]; /* the built-in cpu table against the VMDESCRIPTION (table_check) */
	/* without one: the footer candidates of the device sections, by id then offset */
	struct fcand *fc;
	size_t nfc, capfc;
	int fc_done;
	/* the stream */
	char machine[256];
	int have_machine, footers; /* footers: -1 unknown */
	uint32_t ram_id;
	int ram_started, ram_ended;
	struct block *blocks;
	uint32_t nblocks, capblocks;
	int32_t cur, pcram;
	struct occ *occ;
	size_t nocc, capocc;
	struct item *items;
	size_t nitems, capitems;
	struct cpu *cpus;
	uint32_t ncpus, capcpus;
	uint32_t nsections;
	uint64_t resent;
	uint64_t below;
	int below_given;
	uint64_t max_ram; /* xsr_qemu_import_opts.max_ram */
	/* the vmcoreinfo device's section (first instance), and what it gave */
	int have_vmci_dev;
	uint64_t vmci_body, vmci_blen;
	uint32_t vmci_desc;
	char *vmci;
	uint32_t vmci_len;
	char vmci_from[256]; /* where VMCOREINFO came from, or why there is none (CONFIG "vmcoreinfo") */
	/* a wrapping format's (qemu_import_source) */
	uint64_t base; /* where the stream begins in the source */
	const struct qemu_wrap *wrap;
	/*
	 * The shared-memory path (xsr_qemu_import_shared_fd): pc.ram is this
	 * memory, not the stream's; ignore_shared once the stream's
	 * CONFIGURATION names x-ignore-shared, whose capability subsection lies
	 * at [caps_at, caps_end) and is left out of the header item.
	 */
	const uint8_t *shram;
	uint64_t shram_len;
	int shram_fd;
	int ignore_shared;
	uint64_t caps_at, caps_end;
};

static int fail(struct src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct src *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (!s->code)
		s->code = XSR_E_FORMAT;
	return -1;
}

static int nomem(struct src *s)
{
	s->code = XSR_E_NOMEM;
	return fail(s, "out of memory");
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Exactly @len octets at @off into @buf. */
static int rd(struct src *s, uint64_t off, void *buf, uint64_t len, const char *what)
{
	if (!xsr_in_bounds(off, len, s->size)) {
		s->code = XSR_E_TRUNCATED;
		return fail(s, "QEMU %s at offset 0x%llx: needs %llu octets but the stream ends at 0x%llx (truncated)", what,
			    (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
	}
	uint8_t *p = buf;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		int e = s->in.ops->pread(&s->in, p, n, s->base + off);
		if (e < 0) {
			s->code = XSR_E_IO;
			return fail(s, "QEMU %s at offset 0x%llx: read failed: %s", what, (unsigned long long)off,
				    strerror(-e));
		}
		p += n, off += n, len -= n;
	}
	return 0;
}

/*
 * @n (<= WIN) octets at @off: a pointer valid until the next call, or NULL.
 * An input in memory is read where it lies (no copy, and a read past the
 * caller's buffer is the caller's allocation's end, which ASan sees); any
 * other through a window of at most WIN octets, allocated at first use and
 * no larger than the input (a per-call 1 MiB buffer was most of the cost
 * of importing a small stream: fuzz/README.md).
 */
static const uint8_t *need(struct src *s, uint64_t off, size_t n, const char *what)
{
	if (s->win && off >= s->woff && off - s->woff <= s->wlen && s->wlen - (off - s->woff) >= n)
		return s->win + (off - s->woff);
	if (!xsr_in_bounds(off, n, s->size)) {
		s->code = XSR_E_TRUNCATED;
		fail(s, "QEMU %s at offset 0x%llx: needs %zu octets but the stream ends at 0x%llx (truncated)", what,
		     (unsigned long long)off, n, (unsigned long long)s->size);
		return NULL;
	}
	const uint8_t *v = s->in.ops->view(&s->in, s->base + off, n);
	if (v)
		return v;
	if (!s->win) {
		if (!(s->win = malloc(s->size < WIN ? (size_t)s->size : WIN))) {
			nomem(s);
			return NULL;
		}
	}
	size_t len = s->size - off < WIN ? (size_t)(s->size - off) : WIN;
	if (rd(s, off, s->win, len, what) < 0)
		return NULL;
	s->woff = off;
	s->wlen = len;
	return s->win;
}

static int add_item(struct src *s, uint16_t origin, uint16_t flags, uint32_t type, uint64_t off, uint64_t len, int32_t blk)
{
	if (s->nitems >= XSR_MAX_SECTIONS - 64u - XSR_MAX_VCPUS) {
		s->code = XSR_E_LIMIT;
		return fail(s, "QEMU section at offset 0x%llx: more than %u items besides page data: an image cannot hold them",
			    (unsigned long long)off, XSR_MAX_SECTIONS - 64u - XSR_MAX_VCPUS);
	}
	if (s->nitems == s->capitems) {
		size_t cap = s->capitems ? s->capitems * 2 : 64;
		struct item *n = realloc(s->items, cap * sizeof(*n));
		if (!n)
			return nomem(s);
		s->items = n;
		s->capitems = cap;
	}
	s->items[s->nitems++] = (struct item){origin, flags, type, off, len, blk, NULL};
	return 0;
}

static void final_pages(struct src *s);

static int add_occ(struct src *s, uint32_t blk, uint64_t page, uint64_t pos)
{
	/*
	 * A page sent again replaces its copy: when the table is full, drop the
	 * copies replaced so far before growing it.  The table then holds about
	 * twice the pages the stream sends, not every entry: a stream of one
	 * page resent a billion times (9 octets an entry, and a compressor
	 * packs them into next to nothing: libvirt save files) costs no more
	 * than one page sent once.  A stream that resends nothing pays a check
	 * that the table is still in order (QEMU's one pass keeps it so) each
	 * time it fills, and a sort when it is not.
	 */
	if (s->nocc == s->capocc && s->nocc >= 4096) {
		final_pages(s);
		if (s->nocc <= s->capocc / 4 * 3)
			goto room;
	}
	if (s->nocc == s->capocc) {
		size_t cap = s->capocc ? s->capocc * 2 : 4096;
		struct occ *n = realloc(s->occ, cap * sizeof(*n));
		if (!n)
			return nomem(s);
		s->occ = n;
		s->capocc = cap;
	}
room:
	s->occ[s->nocc++] = (struct occ){(uint64_t)blk << 40 | page, pos};
	return 0;
}

/* ---------------- names and the layout ---------------- */

const char *xsr_qemu_section_name(uint32_t type)
{
	static const char *const names[] = {
		[QEMU_VM_EOF] = "EOF", [QEMU_VM_SECTION_START] = "SECTION_START",
		[QEMU_VM_SECTION_PART] = "SECTION_PART", [QEMU_VM_SECTION_END] = "SECTION_END",
		[QEMU_VM_SECTION_FULL] = "SECTION_FULL", [QEMU_VM_SUBSECTION] = "SUBSECTION",
		[QEMU_VM_VMDESCRIPTION] = "VMDESCRIPTION", [QEMU_VM_CONFIGURATION] = "CONFIGURATION",
		[QEMU_VM_COMMAND] = "COMMAND",
	};
	if (type == QEMU_VM_SECTION_FOOTER)
		return "SECTION_FOOTER";
	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "unknown";
}

/* "pc-i440fx-2.0" -> 2, 0; 0 if the name has no major.minor after @prefix. */
static int machine_version(const char *name, const char *prefix, unsigned *maj, unsigned *min)
{
	size_t l = strlen(prefix);
	return strncmp(name, prefix, l) == 0 && sscanf(name + l, "%u.%u", maj, min) == 2;
}

int xsr_qemu_layout(const char *machine, uint64_t ram, uint64_t *below)
{
	unsigned maj, min;
	uint64_t low;
	if (!machine || !below)
		return XSR_E_INVAL;
	if (machine_version(machine, "pc-i440fx-", &maj, &min) || machine_version(machine, "pc-", &maj, &min) ||
	    !strcmp(machine, "pc")) {
		/* hw/i386/pc_piix.c: 3.5 GiB below 4 GiB; gigabyte-aligned to 3 GiB when RAM must split (2.1 and later) */
		int giga = !strcmp(machine, "pc") || maj > 2 || (maj == 2 && min >= 1);
		low = 0xe0000000;
		if (ram >= low && giga)
			low = 0xc0000000;
	} else if (machine_version(machine, "pc-q35-", &maj, &min) || !strcmp(machine, "q35")) {
		/* hw/i386/pc_q35.c: 2.75 GiB, or 2 GiB when RAM reaches 2.75 GiB */
		low = ram >= 0xb0000000 ? 0x80000000 : 0xb0000000;
	} else {
		return XSR_E_UNSUPPORTED;
	}
	*below = ram < low ? ram : low;
	return 0;
}

/* ---------------- the VMDESCRIPTION ---------------- */

/* Find and parse the VMDESCRIPTION at the end of the input; none is not an error here (s->json stays NULL). */
static int find_vmdesc(struct src *s)
{
	uint64_t tail = s->size < QEMU_MAX_VMDESC + 6u ? s->size : QEMU_MAX_VMDESC + 6u;
	/* an input in memory is searched where it lies; else the tail is read into a copy */
	const uint8_t *t = tail ? s->in.ops->view(&s->in, s->base + s->size - tail, (size_t)tail) : NULL;
	uint8_t *copy = NULL;
	if (!t) {
		if (!(t = copy = malloc(tail ? tail : 1)))
			return nomem(s);
		if (rd(s, s->size - tail, copy, tail, "stream end") < 0) {
			free(copy);
			return -1;
		}
	}
	/*
	 * The marker is at q: 0x06, be32 length reaching the end, '{', and EOF
	 * (0x00) before it.  The JSON holds no 0x06, so the last 0x06 of the
	 * input is the marker or one of its four length octets: look no
	 * further back than four octets before it.
	 */
	uint64_t q = tail, last = 0, p = 0;
	int seen = 0;
	while (q-- > 0) {
		if (t[q] != QEMU_VM_VMDESCRIPTION)
			continue;
		if (!seen) {
			seen = 1;
			last = q;
		} else if (last - q > 4) {
			break;
		}
		if (q >= 1 && tail - q >= 6 && be32(t + q + 1) == tail - q - 5 && t[q + 5] == '{' && t[q - 1] == QEMU_VM_EOF) {
			p = q + 1;
			break;
		}
	}
	if (!p) {
		free(copy); /* none: the ram sections are read all the same, and the first device section says so */
		return 0;
	}
	s->vd_off = s->size - tail + p - 1;
	size_t jlen = (size_t)(tail - p - 4);
	s->json = malloc(jlen + 1);
	if (!s->json) {
		free(copy);
		return nomem(s);
	}
	memcpy(s->json, t + p + 4, jlen);
	s->json[jlen] = 0;
	free(copy);
	const char *why;
	size_t where;
	if (qj_parse(s->json, jlen, &s->doc, &why, &where) < 0) {
		if (!strcmp(why, "out of memory"))
			return nomem(s);
		return fail(s, "QEMU VMDESCRIPTION at offset 0x%llx: JSON octet %zu: %s", (unsigned long long)s->vd_off,
			    where, why);
	}
	uint64_t ps;
	s->devs = qj_get(&s->doc, 0, "devices");
	if (s->devs == QJ_NONE || s->doc.n[s->devs].type != QJ_ARR)
		return fail(s, "QEMU VMDESCRIPTION at offset 0x%llx: no \"devices\" array", (unsigned long long)s->vd_off);
	if (qj_uint(&s->doc, 0, "page_size", &ps) < 0 || ps != PAGE) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU VMDESCRIPTION at offset 0x%llx: page_size is not 4096 (only x86 streams are read)",
			    (unsigned long long)s->vd_off);
	}
	s->next_dev = s->doc.n[s->devs].child;
	return 0;
}

/* The octets the described state @obj (an object with "fields" and maybe "subsections") takes. */
static int desc_len(struct src *s, uint32_t obj, unsigned depth, uint64_t *len)
{
	const struct qj_doc *d = &s->doc;
	uint32_t f = qj_get(d, obj, "fields"), subs = qj_get(d, obj, "subsections");
	uint64_t total = 0;
	if (depth > 16 || f == QJ_NONE || d->n[f].type != QJ_ARR)
		return -1;
	for (uint32_t c = d->n[f].child; c != QJ_NONE; c = d->n[c].next) {
		uint64_t size, n = 1;
		if (qj_uint(d, c, "size", &size) < 0 || (qj_get(d, c, "array_len") != QJ_NONE && qj_uint(d, c, "array_len", &n) < 0))
			return -1;
		if (size > QEMU_MAX_DEV_BODY || n > QEMU_MAX_DEV_BODY || size * n > QEMU_MAX_DEV_BODY - total)
			return -1;
		total += size * n;
	}
	if (subs != QJ_NONE) {
		if (s->doc.n[subs].type != QJ_ARR)
			return -1;
		for (uint32_t c = d->n[subs].child; c != QJ_NONE; c = d->n[c].next) {
			const char *name = qj_str(d, c, "vmsd_name");
			uint64_t l;
			if (!name || !*name || strlen(name) > 255 || desc_len(s, c, depth + 1, &l) < 0 ||
			    l + 6 + strlen(name) > QEMU_MAX_DEV_BODY - total)
				return -1;
			total += 6 + strlen(name) + l;
		}
	}
	*len = total;
	return 0;
}

/* The subsection headers of the state @obj at @off are where the description puts them. */
static int check_subs(struct src *s, uint32_t obj, uint64_t off, unsigned depth, const char *dev, uint64_t sec)
{
	const struct qj_doc *d = &s->doc;
	uint32_t f = qj_get(d, obj, "fields"), subs = qj_get(d, obj, "subsections");
	for (uint32_t c = d->n[f].child; c != QJ_NONE; c = d->n[c].next) {
		uint64_t size, n = 1;
		qj_uint(d, c, "size", &size);
		qj_uint(d, c, "array_len", &n);
		off += size * n;
	}
	if (subs == QJ_NONE)
		return 0;
	for (uint32_t c = d->n[subs].child; c != QJ_NONE; c = d->n[c].next) {
		const char *name = qj_str(d, c, "vmsd_name");
		size_t nl = strlen(name);
		uint64_t ver = 0, l;
		qj_uint(d, c, "version", &ver);
		const uint8_t *h = need(s, off, 6 + nl, "subsection");
		if (!h)
			return -1;
		if (h[0] != QEMU_VM_SUBSECTION || h[1] != nl || memcmp(h + 2, name, nl) || be32(h + 2 + nl) != ver)
			return fail(s, "QEMU device section '%s' at offset 0x%llx: subsection %s (version %llu) is not at "
				       "offset 0x%llx where the VMDESCRIPTION puts it",
				    dev, (unsigned long long)sec, name, (unsigned long long)ver, (unsigned long long)off);
		desc_len(s, c, depth + 1, &l);
		if (check_subs(s, c, off + 6 + nl, depth + 1, dev, sec) < 0)
			return -1;
		off += 6 + nl + l;
	}
	return 0;
}

/* ---------------- the first pass ---------------- */

/* The footer of section @id at *@off, if the stream has footers (the first section decides). */
static int footer(struct src *s, uint64_t *off, uint32_t id, const char *what)
{
	const uint8_t *p = need(s, *off, 1, "section footer");
	if (!p)
		return -1;
	if (s->footers < 0)
		s->footers = p[0] == QEMU_VM_SECTION_FOOTER;
	if (!s->footers)
		return 0;
	if (!(p = need(s, *off, 5, "section footer")))
		return -1;
	if (p[0] != QEMU_VM_SECTION_FOOTER || be32(p + 1) != id)
		return fail(s, "QEMU %s (id %u): footer at offset 0x%llx is 0x%02x id %u, not 0x7e id %u", what, id,
			    (unsigned long long)*off, p[0], p[0] == QEMU_VM_SECTION_FOOTER ? be32(p + 1) : 0, id);
	*off += 5;
	return 0;
}

/* A u8-length name at *@off into @out (256 octets), 1..255 octets. */
static int name_at(struct src *s, uint64_t *off, char *out, const char *what)
{
	const uint8_t *p = need(s, *off, 1, what);
	if (!p)
		return -1;
	unsigned n = p[0];
	if (!n)
		return fail(s, "QEMU %s at offset 0x%llx: empty name", what, (unsigned long long)*off);
	if (!(p = need(s, *off + 1, n, what)))
		return -1;
	memcpy(out, p, n);
	out[n] = 0;
	if (strlen(out) != n)
		return fail(s, "QEMU %s at offset 0x%llx: name holds a NUL octet", what, (unsigned long long)*off);
	*off += 1 + n;
	return 0;
}

/* magic, version, CONFIGURATION and its subsections (QEMU migration/savevm.c vmstate_configuration) */
static int header(struct src *s, uint64_t *next)
{
	const uint8_t *p = need(s, 0, 8, "stream header");
	if (!p)
		return -1;
	if (be32(p) != QEMU_VM_FILE_MAGIC) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "not a QEMU migration stream (no \"QEVM\" at offset 0)");
	}
	if (be32(p + 4) != QEMU_VM_FILE_VERSION) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU stream header at offset 0x4: version %u, only version 3 is read", be32(p + 4));
	}
	uint64_t off = 8;
	if (!(p = need(s, off, 1, "section")))
		return -1;
	if (p[0] == QEMU_VM_CONFIGURATION) {
		if (!(p = need(s, off, 5, "CONFIGURATION section")))
			return -1;
		uint32_t n = be32(p + 1);
		if (n == 0 || n > 255)
			return fail(s, "QEMU CONFIGURATION section at offset 0x%llx: machine name of %u octets (1..255)",
				    (unsigned long long)off, n);
		if (!(p = need(s, off + 5, n, "CONFIGURATION section")))
			return -1;
		memcpy(s->machine, p, n);
		s->machine[n] = 0;
		if (strlen(s->machine) != n)
			return fail(s, "QEMU CONFIGURATION section at offset 0x%llx: machine name holds a NUL octet",
				    (unsigned long long)off);
		s->have_machine = 1;
		off += 5 + n;
		for (;;) {
			if (!(p = need(s, off, 1, "CONFIGURATION section")))
				return -1;
			if (p[0] != QEMU_VM_SUBSECTION)
				break;
			char name[256];
			uint64_t at = off++;
			if (name_at(s, &off, name, "CONFIGURATION subsection") < 0 || !(p = need(s, off, 4, "CONFIGURATION subsection")))
				return -1;
			off += 4;
			if (!strcmp(name, "configuration/target-page-bits")) {
				if (!(p = need(s, off, 4, "CONFIGURATION subsection")))
					return -1;
				if (be32(p) != 12) {
					s->code = XSR_E_UNSUPPORTED;
					return fail(s, "QEMU CONFIGURATION at offset 0x%llx: target page bits %u, not 12", (unsigned long long)at, be32(p));
				}
				off += 4;
			} else if (!strcmp(name, "configuration/uuid")) {
				if (!need(s, off, 16, "CONFIGURATION subsection"))
					return -1;
				off += 16;
			} else if (!strcmp(name, "configuration/capabilities")) {
				if (!(p = need(s, off, 4, "CONFIGURATION subsection")))
					return -1;
				uint32_t caps = be32(p);
				off += 4;
				if (caps > 64)
					return fail(s, "QEMU CONFIGURATION at offset 0x%llx: %u capabilities (at most 64)", (unsigned long long)at, caps);
				for (uint32_t i = 0; i < caps; i++) {
					char cap[256];
					if (name_at(s, &off, cap, "capability") < 0)
						return -1;
					/*
					 * x-ignore-shared: shared RAM is not in the stream, and the image would
					 * show it as zeros, unless the caller has that memory (the shared path)
					 */
					if (s->shram && !strcmp(cap, "x-ignore-shared") && caps == 1) {
						s->ignore_shared = 1;
						s->caps_at = at;
						s->caps_end = off;
						continue;
					}
					s->code = XSR_E_UNSUPPORTED;
					return fail(s, "QEMU CONFIGURATION at offset 0x%llx: capability %s is not supported%s",
						    (unsigned long long)at, cap,
						    strcmp(cap, "x-ignore-shared") ? "" : " (shared guest RAM is not in the stream)");
				}
			} else {
				s->code = XSR_E_UNSUPPORTED;
				return fail(s, "QEMU CONFIGURATION subsection %s at offset 0x%llx is not known", name, (unsigned long long)at);
			}
		}
	}
	*next = off;
	if (s->shram && !s->ignore_shared) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU CONFIGURATION: the stream was not written with the x-ignore-shared capability, so pc.ram "
			       "is in it: the shared-memory path does not apply");
	}
	if (add_item(s, XSR_PT_ORIGIN_QEMU_HEADER, 0, 0, 0, off, -1) < 0)
		return -1;
	if (!s->ignore_shared)
		return 0;
	/* the header as a QEMU without x-ignore-shared writes it: the capabilities subsection left out */
	uint64_t n = off - (s->caps_end - s->caps_at);
	uint8_t *d = malloc(n);
	if (!d)
		return nomem(s);
	if (rd(s, 0, d, s->caps_at, "stream header") < 0 ||
	    rd(s, s->caps_end, d + s->caps_at, off - s->caps_end, "stream header") < 0) {
		free(d);
		return -1;
	}
	s->items[s->nitems - 1].data = d;
	s->items[s->nitems - 1].len = n;
	return 0;
}

/* The MEM_SIZE list of RAM blocks at *@off: @total octets in all. */
static int ram_blocks(struct src *s, uint64_t *off, uint64_t total, uint64_t sec)
{
	uint64_t sum = 0;
	if (s->nblocks)
		return fail(s, "QEMU ram section at offset 0x%llx: a second MEM_SIZE entry at 0x%llx", (unsigned long long)sec,
			    (unsigned long long)*off - 8);
	while (sum < total) {
		if (s->nblocks >= QEMU_MAX_BLOCKS) {
			s->code = XSR_E_LIMIT;
			return fail(s, "QEMU ram section at offset 0x%llx: more than %u RAM blocks", (unsigned long long)sec, QEMU_MAX_BLOCKS);
		}
		if (s->nblocks == s->capblocks) { /* grown as the list goes: a stream has a handful (264 octets each) */
			uint32_t cap = s->capblocks ? s->capblocks * 2 : 8;
			struct block *n = realloc(s->blocks, cap * sizeof(*n));
			if (!n)
				return nomem(s);
			s->blocks = n;
			s->capblocks = cap;
		}
		struct block *b = &s->blocks[s->nblocks];
		uint64_t at = *off;
		if (name_at(s, off, b->name, "ram section block name") < 0)
			return -1;
		const uint8_t *p = need(s, *off, 8, "ram section block length");
		if (!p)
			return -1;
		b->used = be64(p);
		*off += 8;
		/* under x-ignore-shared each block's memory region address follows (ram_save_setup); checked by the destination only */
		if (s->ignore_shared) {
			if (!need(s, *off, 8, "ram section block address"))
				return -1;
			*off += 8;
		}
		if (b->used == 0 || b->used % PAGE || b->used / PAGE > XSR_MAX_PAGES || b->used > total - sum)
			return fail(s, "QEMU ram section at offset 0x%llx: block %s at 0x%llx: used length 0x%llx (a page multiple, "
				       "at most 2^36 pages, within the 0x%llx octets announced)",
				    (unsigned long long)sec, b->name, (unsigned long long)at, (unsigned long long)b->used,
				    (unsigned long long)total);
		for (uint32_t i = 0; i < s->nblocks; i++)
			if (!strcmp(s->blocks[i].name, b->name))
				return fail(s, "QEMU ram section at offset 0x%llx: block %s named twice", (unsigned long long)sec, b->name);
		if (!strcmp(b->name, "pc.ram"))
			s->pcram = (int32_t)s->nblocks;
		sum += b->used;
		s->nblocks++;
	}
	if (s->max_ram && total > s->max_ram) {
		s->code = XSR_E_LIMIT;
		return fail(s, "QEMU ram section at offset 0x%llx: RAM blocks of 0x%llx octets, more than the 0x%llx allowed",
			    (unsigned long long)sec, (unsigned long long)total, (unsigned long long)s->max_ram);
	}
	/*
	 * Every page of pc.ram is a slot of the image: a claim the input cannot
	 * back is refused (QEMU sends each page at least once, 9 octets or more;
	 * one octet per page leaves room for pages a balloon's hints skipped).
	 */
	if (s->pcram >= 0 && s->shram && s->blocks[s->pcram].used != s->shram_len) {
		s->code = XSR_E_FORMAT;
		return fail(s, "QEMU ram section at offset 0x%llx: pc.ram of 0x%llx octets, but the shared memory given for it "
			       "holds 0x%llx", (unsigned long long)sec, (unsigned long long)s->blocks[s->pcram].used,
			    (unsigned long long)s->shram_len);
	}
	if (s->pcram >= 0 && !s->shram && s->blocks[s->pcram].used / PAGE > s->size) {
		s->code = XSR_E_LIMIT;
		return fail(s, "QEMU ram section at offset 0x%llx: pc.ram of 0x%llx octets in a stream of %llu octets",
			    (unsigned long long)sec, (unsigned long long)s->blocks[s->pcram].used, (unsigned long long)s->size);
	}
	return 0;
}

/*
 * The ram setup item (the last added) as a QEMU without x-ignore-shared
 * writes it: the section header and MEM_SIZE entry [@sec, @list), then each
 * block's name and used length without the address that follows them.
 */
static int setup_without_addrs(struct src *s, uint64_t sec, uint64_t list)
{
	uint64_t n = list - sec;
	for (uint32_t i = 0; i < s->nblocks; i++)
		n += 1 + strlen(s->blocks[i].name) + 8;
	uint8_t *d = malloc(n), *p;
	if (!d)
		return nomem(s);
	if (rd(s, sec, d, list - sec, "ram section") < 0) {
		free(d);
		return -1;
	}
	p = d + (list - sec);
	for (uint32_t i = 0; i < s->nblocks; i++) {
		size_t nl = strlen(s->blocks[i].name);
		*p++ = (uint8_t)nl;
		memcpy(p, s->blocks[i].name, nl);
		p += nl;
		for (int k = 0; k < 8; k++)
			*p++ = (uint8_t)(s->blocks[i].used >> (56 - 8 * k));
	}
	s->items[s->nitems - 1].data = d;
	s->items[s->nitems - 1].len = n;
	return 0;
}

/* Entries of one ram section from *@off to its EOS (QEMU migration/ram.c ram_load_precopy). */
static int ram_entries(struct src *s, uint64_t *off, uint64_t sec, int start)
{
	for (int first = start;; first = 0) {
		uint64_t at = *off;
		const uint8_t *p = need(s, at, 8, "ram section entry");
		if (!p)
			return -1;
		uint64_t v = be64(p), addr = v & ~(uint64_t)(PAGE - 1);
		unsigned flags = (unsigned)(v & (PAGE - 1));
		*off += 8;
		if (flags & QEMU_RAM_FLAG_MEM_SIZE) {
			if (flags != QEMU_RAM_FLAG_MEM_SIZE || !first)
				return fail(s, "QEMU ram section at offset 0x%llx: MEM_SIZE entry at 0x%llx %s",
					    (unsigned long long)sec, (unsigned long long)at,
					    first ? "with other flags" : "not first in the START section");
			uint64_t list = *off;
			if (ram_blocks(s, off, addr, sec) < 0)
				return -1;
			/* the setup, verbatim: section header to the end of the block list */
			if (add_item(s, XSR_PT_ORIGIN_QEMU_RAM, 0, 0, sec, *off - sec, -1) < 0)
				return -1;
			if (s->ignore_shared && setup_without_addrs(s, sec, list) < 0)
				return -1;
			continue;
		}
		if (start && first)
			return fail(s, "QEMU ram section at offset 0x%llx: its first entry (0x%llx) is not MEM_SIZE",
				    (unsigned long long)sec, (unsigned long long)at);
		if (flags & QEMU_RAM_FLAG_EOS) {
			if (flags != QEMU_RAM_FLAG_EOS)
				return fail(s, "QEMU ram section at offset 0x%llx: EOS entry at 0x%llx with flags 0x%x",
					    (unsigned long long)sec, (unsigned long long)at, flags);
			return 0;
		}
		const char *refuse = flags & QEMU_RAM_FLAG_XBZRLE ? "XBZRLE (the xbzrle capability)"
				   : flags & QEMU_RAM_FLAG_COMPRESS_PAGE ? "COMPRESS_PAGE (the compress capability)"
				   : flags & QEMU_RAM_FLAG_MULTIFD_FLUSH ? "MULTIFD_FLUSH (the multifd capability)"
				   : flags & QEMU_RAM_FLAG_HOOK ? "HOOK (RDMA)" : NULL;
		if (refuse) {
			s->code = XSR_E_UNSUPPORTED;
			return fail(s, "QEMU ram section at offset 0x%llx: entry at 0x%llx is %s, not supported yet: migrate "
				       "without it", (unsigned long long)sec, (unsigned long long)at, refuse);
		}
		unsigned kind = flags & ~QEMU_RAM_FLAG_CONTINUE;
		if (kind != QEMU_RAM_FLAG_ZERO && kind != QEMU_RAM_FLAG_PAGE)
			return fail(s, "QEMU ram section at offset 0x%llx: entry at 0x%llx has flags 0x%x (unknown)",
				    (unsigned long long)sec, (unsigned long long)at, flags);
		if (!(flags & QEMU_RAM_FLAG_CONTINUE)) {
			char name[256];
			if (name_at(s, off, name, "ram section entry") < 0)
				return -1;
			s->cur = -1;
			for (uint32_t i = 0; i < s->nblocks; i++)
				if (!strcmp(s->blocks[i].name, name))
					s->cur = (int32_t)i;
			if (s->cur < 0)
				return fail(s, "QEMU ram section at offset 0x%llx: entry at 0x%llx names block %s, not in the MEM_SIZE list",
					    (unsigned long long)sec, (unsigned long long)at, name);
		} else if (s->cur < 0) {
			return fail(s, "QEMU ram section at offset 0x%llx: CONTINUE entry at 0x%llx without a block before it",
				    (unsigned long long)sec, (unsigned long long)at);
		}
		const struct block *b = &s->blocks[s->cur];
		if (s->ignore_shared && s->cur == s->pcram)
			return fail(s, "QEMU ram section at offset 0x%llx: entry at 0x%llx sends a page of pc.ram although the "
				       "stream has x-ignore-shared: QEMU does not hold pc.ram as shared memory",
				    (unsigned long long)sec, (unsigned long long)at);
		if (addr >= b->used)
			return fail(s, "QEMU ram section at offset 0x%llx: entry at 0x%llx: offset 0x%llx past block %s (0x%llx octets)",
				    (unsigned long long)sec, (unsigned long long)at, (unsigned long long)addr, b->name,
				    (unsigned long long)b->used);
		uint64_t pos;
		if (kind == QEMU_RAM_FLAG_ZERO) {
			if (!(p = need(s, *off, 1, "ram section ZERO entry")))
				return -1;
			if (p[0]) {
				s->code = XSR_E_UNSUPPORTED;
				return fail(s, "QEMU ram section at offset 0x%llx: ZERO entry at 0x%llx fills with 0x%02x, not 0",
					    (unsigned long long)sec, (unsigned long long)at, p[0]);
			}
			pos = at << 1 | ZERO_BIT;
			*off += 1;
		} else {
			if (!xsr_in_bounds(*off, PAGE, s->size)) {
				s->code = XSR_E_TRUNCATED;
				return fail(s, "QEMU ram section at offset 0x%llx: PAGE entry at 0x%llx: its 4096 octets run past "
					       "the end of the stream at 0x%llx (truncated)",
					    (unsigned long long)sec, (unsigned long long)at, (unsigned long long)s->size);
			}
			pos = *off << 1;
			*off += PAGE;
		}
		if (add_occ(s, (uint32_t)s->cur, addr / PAGE, pos) < 0)
			return -1;
	}
}

/* A SECTION_START, _PART or _END at @off (type @t). */
static int ram_section(struct src *s, uint64_t *off, uint8_t t)
{
	uint64_t sec = *off;
	const uint8_t *p = need(s, sec, 5, "section header");
	if (!p)
		return -1;
	uint32_t id = be32(p + 1);
	*off += 5;
	if (t == QEMU_VM_SECTION_START) {
		char name[256];
		if (name_at(s, off, name, "section header") < 0 || !(p = need(s, *off, 8, "section header")))
			return -1;
		uint32_t inst = be32(p), ver = be32(p + 4);
		*off += 8;
		if (strcmp(name, "ram")) {
			s->code = XSR_E_UNSUPPORTED;
			return fail(s, "QEMU SECTION_START at offset 0x%llx: iterable section '%s' (block migration, dirty "
				       "bitmaps, ...) is not supported, only 'ram'", (unsigned long long)sec, name);
		}
		if (s->ram_started || inst != 0 || ver != 4)
			return fail(s, "QEMU ram section at offset 0x%llx: %s", (unsigned long long)sec,
				    s->ram_started ? "a second SECTION_START" : "instance not 0 or version not 4");
		s->ram_started = 1;
		s->ram_id = id;
	} else if (!s->ram_started || id != s->ram_id || s->ram_ended) {
		return fail(s, "QEMU %s at offset 0x%llx: section id %u is not the open ram section's", xsr_qemu_section_name(t),
			    (unsigned long long)sec, id);
	}
	if (ram_entries(s, off, sec, t == QEMU_VM_SECTION_START) < 0)
		return -1;
	if (t == QEMU_VM_SECTION_END)
		s->ram_ended = 1;
	return footer(s, off, id, "ram section");
}

/* ---------------- device sections without a VMDESCRIPTION ---------------- */

/* QEMU's section names (idstr): printable ASCII, no '~' (0x7e, the footer's octet) */
static int idstr_ok(const uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7e)
			return 0;
	return 1;
}

/*
 * Is the 0x7e at @p a footer followed by a section header?  Either a
 * SECTION_FULL of another id with a name of 1..255 printable octets and
 * room for its instance and version, or the EOF that is the stream's last
 * octet (suppress-vmdesc=on writes nothing after it: migration/savevm.c,
 * should_send_vmdesc).  @avail octets are readable at @p; @end: they reach
 * the end of the stream.  At most 274 octets are looked at.
 */
static int footer_cand(const uint8_t *p, size_t avail, int end)
{
	if (avail < 6)
		return 0;
	if (p[5] == QEMU_VM_EOF)
		return end && avail == 6;
	if (p[5] != QEMU_VM_SECTION_FULL || avail < 11)
		return 0;
	unsigned nl = p[10];
	return nl && avail >= 11u + nl + 8u && be32(p + 6) != be32(p + 1) && idstr_ok(p + 11, nl);
}

static int cmp_fcand(const void *a, const void *b)
{
	const struct fcand *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Every footer candidate from @from (the first device section) to the end,
 * in one pass over the input a window at a time: at most 274 octets are
 * looked at for each 0x7e, whatever the input holds, and at most
 * QEMU_MAX_FOOTERS candidates are kept (16 octets each).  Sorted by id,
 * then offset, for full_section's lookups.
 */
static int scan_footers(struct src *s, uint64_t from)
{
	const size_t step = WIN - 512; /* a window's last 512 octets are looked at from the next one */
	for (uint64_t pos = from; pos < s->size; pos += step) {
		size_t len = s->size - pos < WIN ? (size_t)(s->size - pos) : WIN, lim = len < step ? len : step;
		int end = s->size - pos == len;
		const uint8_t *b = need(s, pos, len, "device sections");
		if (!b)
			return -1;
		for (const uint8_t *q = b; (q = memchr(q, QEMU_VM_SECTION_FOOTER, lim - (size_t)(q - b))); q++) {
			if (!footer_cand(q, len - (size_t)(q - b), end))
				continue;
			if (s->nfc == QEMU_MAX_FOOTERS) {
				s->code = XSR_E_LIMIT;
				return fail(s, "QEMU device sections from offset 0x%llx: more than %u octet sequences that look like "
					       "a footer and a section header (at 0x%llx); without a VMDESCRIPTION they cannot be delimited",
					    (unsigned long long)from, QEMU_MAX_FOOTERS, (unsigned long long)(pos + (uint64_t)(q - b)));
			}
			if (s->nfc == s->capfc) {
				size_t cap = s->capfc ? s->capfc * 2 : 256;
				struct fcand *n = realloc(s->fc, cap * sizeof(*n));
				if (!n)
					return nomem(s);
				s->fc = n;
				s->capfc = cap;
			}
			s->fc[s->nfc++] = (struct fcand){be32(q + 1), pos + (uint64_t)(q - b)};
		}
	}
	if (s->nfc > 1)
		qsort(s->fc, s->nfc, sizeof(*s->fc), cmp_fcand);
	s->fc_done = 1;
	return 0;
}

/*
 * The length of the state of device section @id ('@name', header at @sec,
 * state from @body) in a stream without a VMDESCRIPTION: up to its footer,
 * the only candidate of its id from @body on.  Section ids are unique in a
 * stream, so a second candidate of the same id means octets inside some
 * state that look like a footer and a header: refused as ambiguous rather
 * than guessed.
 */
static int nodesc_len(struct src *s, uint64_t sec, uint32_t id, const char *name, uint64_t body, uint64_t *len)
{
	if (s->footers == 0) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU device section '%s' at offset 0x%llx: the stream has neither a VMDESCRIPTION nor section "
			       "footers (a machine type before 2.4): its device sections cannot be delimited", name,
			    (unsigned long long)sec);
	}
	s->footers = 1; /* without a VMDESCRIPTION they are what delimits */
	if (!s->fc_done && scan_footers(s, sec) < 0)
		return -1;
	size_t lo = 0, hi = s->nfc;
	while (lo < hi) { /* the first candidate not below (id, body) */
		size_t m = lo + (hi - lo) / 2;
		if (s->fc[m].id < id || (s->fc[m].id == id && s->fc[m].pos < body))
			lo = m + 1;
		else
			hi = m;
	}
	if (lo == s->nfc || s->fc[lo].id != id)
		return fail(s, "QEMU device section '%s' (id %u) at offset 0x%llx: no footer (0x7e, id %u) followed by a section "
			       "header or by the stream's final EOF: the stream is cut short or damaged, and without a "
			       "VMDESCRIPTION its device sections are delimited by their footers only",
			    name, id, (unsigned long long)sec, id);
	if (lo + 1 < s->nfc && s->fc[lo + 1].id == id)
		return fail(s, "QEMU device section '%s' (id %u) at offset 0x%llx: ends at one of two footers, at 0x%llx and "
			       "0x%llx, each followed by what parses as a section header: ambiguous without a VMDESCRIPTION "
			       "(migrate without suppress-vmdesc=on)",
			    name, id, (unsigned long long)sec, (unsigned long long)s->fc[lo].pos,
			    (unsigned long long)s->fc[lo + 1].pos);
	*len = s->fc[lo].pos - body;
	if (*len > QEMU_MAX_DEV_BODY) {
		s->code = XSR_E_LIMIT;
		return fail(s, "QEMU device section '%s' at offset 0x%llx: %llu octets of state (at most %u)", name,
			    (unsigned long long)sec, (unsigned long long)*len, QEMU_MAX_DEV_BODY);
	}
	return 0;
}

/* A `cpu` section without a VMDESCRIPTION: the built-in table must know its version and fit its state. */
static int nodesc_cpu(struct src *s, uint64_t sec, uint32_t inst, uint32_t ver, uint64_t body, uint64_t len)
{
	if (ver != QEMU_CPU_TABLE_VERSION) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU device section 'cpu' instance %u at offset 0x%llx: version %u, and without a VMDESCRIPTION "
			       "only version %u (QEMU 7.2's vmstate_x86_cpu, the built-in table) is decoded; migrate without "
			       "suppress-vmdesc=on", inst, (unsigned long long)sec, ver, QEMU_CPU_TABLE_VERSION);
	}
	if (len < QEMU_CPU_TABLE_OCTETS)
		return fail(s, "QEMU device section 'cpu' instance %u at offset 0x%llx: %llu octets of state, fewer than the %u "
			       "of QEMU 7.2's version %u fields", inst, (unsigned long long)sec, (unsigned long long)len,
			    QEMU_CPU_TABLE_OCTETS, ver);
	if (len > QEMU_CPU_TABLE_OCTETS) { /* the rest is subsections, each starting 0x05 */
		const uint8_t *p = need(s, body + QEMU_CPU_TABLE_OCTETS, 1, "cpu subsection");
		if (!p)
			return -1;
		if (p[0] != QEMU_VM_SUBSECTION)
			return fail(s, "QEMU device section 'cpu' instance %u at offset 0x%llx: octet 0x%llx after the %u octets of "
				       "the built-in table is 0x%02x, not a subsection (0x05): not QEMU 7.2's layout",
				    inst, (unsigned long long)sec, (unsigned long long)(body + QEMU_CPU_TABLE_OCTETS),
				    QEMU_CPU_TABLE_OCTETS, p[0]);
	}
	return 0;
}

/* A SECTION_FULL at @off: delimited by the next device of the VMDESCRIPTION, or without one by its footer. */
static int full_section(struct src *s, uint64_t *off)
{
	uint64_t sec = *off;
	const uint8_t *p = need(s, sec, 5, "SECTION_FULL header");
	char name[256];
	if (!p)
		return -1;
	uint32_t id = be32(p + 1);
	*off += 5;
	if (name_at(s, off, name, "SECTION_FULL header") < 0 || !(p = need(s, *off, 8, "SECTION_FULL header")))
		return -1;
	uint32_t inst = be32(p), ver = be32(p + 4);
	*off += 8;
	uint32_t dev = QJ_NONE;
	uint64_t len;
	if (s->json) {
		dev = s->next_dev;
		uint64_t dinst;
		const char *dname = dev == QJ_NONE ? NULL : qj_str(&s->doc, dev, "name");
		if (!dname || strcmp(dname, name) || qj_uint(&s->doc, dev, "instance_id", &dinst) < 0 || dinst != inst)
			return fail(s, "QEMU device section '%s' instance %u at offset 0x%llx: the VMDESCRIPTION's next device is %s",
				    name, inst, (unsigned long long)sec, dname ? dname : "missing");
		if (desc_len(s, dev, 0, &len) < 0)
			return fail(s, "QEMU VMDESCRIPTION at offset 0x%llx: device '%s' instance %u: fields without a size, or more "
				       "than %u octets", (unsigned long long)s->vd_off, name, inst, QEMU_MAX_DEV_BODY);
		if (!xsr_in_bounds(*off, len, s->size)) {
			s->code = XSR_E_TRUNCATED;
			return fail(s, "QEMU device section '%s' at offset 0x%llx: its %llu octets of state run past the end at 0x%llx",
				    name, (unsigned long long)sec, (unsigned long long)len, (unsigned long long)s->size);
		}
		if (check_subs(s, dev, *off, 0, name, sec) < 0)
			return -1;
	} else if (nodesc_len(s, sec, id, name, *off, &len) < 0 ||
		   (!strcmp(name, "cpu") && nodesc_cpu(s, sec, inst, ver, *off, len) < 0)) {
		return -1;
	}
	if (!strcmp(name, "cpu")) {
		if (inst >= XSR_MAX_VCPUS || s->ncpus >= XSR_MAX_VCPUS) {
			s->code = XSR_E_LIMIT;
			return fail(s, "QEMU device section 'cpu' at offset 0x%llx: instance %u (vCPUs: at most %u)",
				    (unsigned long long)sec, inst, XSR_MAX_VCPUS);
		}
		for (uint32_t i = 0; i < s->ncpus; i++)
			if (s->cpus[i].instance == inst)
				return fail(s, "QEMU device section 'cpu' at offset 0x%llx: instance %u twice", (unsigned long long)sec, inst);
		if (s->ncpus == s->capcpus) {
			uint32_t cap = s->capcpus ? s->capcpus * 2 : 8;
			struct cpu *n = realloc(s->cpus, cap * sizeof(*n));
			if (!n)
				return nomem(s);
			s->cpus = n;
			s->capcpus = cap;
		}
		s->cpus[s->ncpus++] = (struct cpu){inst, ver, *off, len, dev};
	} else if (!strcmp(name, "vmcoreinfo") && !s->have_vmci_dev) {
		s->have_vmci_dev = 1;
		s->vmci_body = *off;
		s->vmci_blen = len;
		s->vmci_desc = dev;
	}
	*off += len;
	if (footer(s, off, id, "device section") < 0)
		return -1;
	if (s->json)
		s->next_dev = s->doc.n[dev].next;
	s->nsections++;
	return add_item(s, XSR_PT_ORIGIN_QEMU_SECTION, 0, QEMU_VM_SECTION_FULL, sec, *off - sec, -1);
}

static int parse(struct src *s)
{
	uint64_t off;
	s->footers = -1;
	s->cur = s->pcram = -1;
	if (header(s, &off) < 0 || find_vmdesc(s) < 0)
		return -1;
	for (;;) {
		const uint8_t *p = need(s, off, 1, "section");
		if (!p)
			return -1;
		uint8_t t = p[0];
		int rc;
		switch (t) {
		case QEMU_VM_SECTION_START:
		case QEMU_VM_SECTION_PART:
		case QEMU_VM_SECTION_END:
			rc = ram_section(s, &off, t);
			break;
		case QEMU_VM_SECTION_FULL:
			rc = full_section(s, &off);
			break;
		case QEMU_VM_EOF:
			if (s->json && off + 1 != s->vd_off)
				return fail(s, "QEMU EOF at offset 0x%llx: the VMDESCRIPTION found at 0x%llx does not follow it",
					    (unsigned long long)off, (unsigned long long)s->vd_off);
			if (!s->json && off + 1 != s->size)
				return fail(s, "QEMU EOF at offset 0x%llx: %llu octets follow it, and they are not a VMDESCRIPTION",
					    (unsigned long long)off, (unsigned long long)(s->size - off - 1));
			if (!s->ram_ended || s->pcram < 0)
				return fail(s, "QEMU EOF at offset 0x%llx: %s", (unsigned long long)off,
					    !s->ram_ended ? "the ram section never ended (SECTION_END)" : "no pc.ram block");
			if (s->json && s->next_dev != QJ_NONE)
				return fail(s, "QEMU EOF at offset 0x%llx: the VMDESCRIPTION describes devices the stream lacks (%s)",
					    (unsigned long long)off, qj_str(&s->doc, s->next_dev, "name") ? qj_str(&s->doc, s->next_dev, "name") : "?");
			if (!s->ncpus)
				return fail(s, "QEMU stream: no 'cpu' device section");
			/* the image numbers its vCPUs 0..n-1: instances are unique (full_section), so none may reach n */
			for (uint32_t i = 0; i < s->ncpus; i++)
				if (s->cpus[i].instance >= s->ncpus)
					return fail(s, "QEMU device section 'cpu' with state at offset 0x%llx: instance %u, but the stream "
						       "has %u cpu sections (instances 0..%u)",
						    (unsigned long long)s->cpus[i].body, s->cpus[i].instance, s->ncpus, s->ncpus - 1);
			return add_item(s, XSR_PT_ORIGIN_QEMU_SECTION, 0, QEMU_VM_EOF, off, s->size - off, -1);
		case QEMU_VM_COMMAND:
			s->code = XSR_E_UNSUPPORTED;
			return fail(s, "QEMU COMMAND at offset 0x%llx: postcopy, COLO and return-path commands are not supported",
				    (unsigned long long)off);
		default:
			return fail(s, "QEMU section at offset 0x%llx: type 0x%02x (%s) is not expected here", (unsigned long long)off,
				    t, xsr_qemu_section_name(t));
		}
		if (rc < 0)
			return -1;
	}
}

/* ---------------- vCPUs ---------------- */

struct floc {
	uint64_t off, size, n;
	uint32_t node;
};

/*
 * The fields of one described state by name, sorted (name, then order):
 * decode_cpu asks for some 150 fields and struct members, and a linear
 * walk of the JSON for each (three member lookups a field) was a third of
 * an import of a small stream, and grows with the fields a hostile
 * description lists.  A field whose offset the sizes before it would carry
 * past 2^64 is left out (as absent): the description's sizes are checked
 * only for a device's own fields (desc_len), not inside a "struct".
 */
struct fent {
	const char *name;
	uint32_t ord;
	struct floc l;
};
struct findex {
	uint32_t obj;
	uint32_t n;
	struct fent *e;
};
#define FINDEX_MAX 16 /* states indexed per vCPU: the cpu's own and the structs decode_cpu reads */

struct cpubody {
	const struct qj_doc *d; /* the VMDESCRIPTION, or NULL: the built-in table (qemu_cputab.c) */
	uint32_t dev;
	const uint8_t *b;
	uint64_t len;
	int missing;
	struct findex idx[FINDEX_MAX];
	unsigned nidx;
	int nomem;
};

static int fent_cmp(const void *a, const void *b)
{
	const struct fent *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* The index of state @obj, built at its first use; NULL if FINDEX_MAX are built or out of memory. */
static const struct findex *findex(struct cpubody *c, uint32_t obj)
{
	const struct qj_doc *d = c->d;
	for (unsigned i = 0; i < c->nidx; i++)
		if (c->idx[i].obj == obj)
			return &c->idx[i];
	if (c->nidx == FINDEX_MAX)
		return NULL;
	struct findex *x = &c->idx[c->nidx];
	*x = (struct findex){obj, 0, NULL};
	uint32_t f = qj_get(d, obj, "fields"), cnt = 0;
	if (f != QJ_NONE && d->n[f].type == QJ_ARR)
		for (uint32_t k = d->n[f].child; k != QJ_NONE; k = d->n[k].next)
			cnt++;
	if (cnt && !(x->e = malloc((size_t)cnt * sizeof(*x->e)))) {
		c->nomem = 1;
		return NULL;
	}
	uint64_t off = 0;
	int wrapped = 0;
	for (uint32_t k = cnt ? d->n[f].child : QJ_NONE, ord = 0; k != QJ_NONE; k = d->n[k].next, ord++) {
		uint64_t size = 0, n = 1, span;
		qj_uint(d, k, "size", &size);
		qj_uint(d, k, "array_len", &n);
		const char *fn = qj_str(d, k, "name");
		if (fn && !wrapped)
			x->e[x->n++] = (struct fent){fn, ord, {off, size, n, k}};
		if (__builtin_mul_overflow(size, n, &span) || __builtin_add_overflow(off, span, &off))
			wrapped = 1; /* this field still has its place; those after it have none */
	}
	if (x->n > 1)
		qsort(x->e, x->n, sizeof(*x->e), fent_cmp);
	c->nidx++;
	return x;
}

/* Field @name (its first occurrence) of the described state @obj: its place within the state. */
static int field(struct cpubody *c, uint32_t obj, const char *name, struct floc *l)
{
	const struct findex *x = findex(c, obj);
	if (!x)
		return -1; /* (more states than FINDEX_MAX: decode_cpu reads fewer; or c->nomem) */
	size_t lo = 0, hi = x->n;
	while (lo < hi) { /* the first entry not below @name */
		size_t m = lo + (hi - lo) / 2;
		if (strcmp(x->e[m].name, name) < 0)
			lo = m + 1;
		else
			hi = m;
	}
	if (lo == x->n || strcmp(x->e[lo].name, name))
		return -1;
	*l = x->e[lo].l;
	return 0;
}

/* Field @name of the cpu state, from the VMDESCRIPTION or the built-in table (node: the table's index). */
static int top(struct cpubody *c, const char *name, struct floc *l)
{
	if (c->d)
		return field(c, c->dev, name, l);
	unsigned i;
	uint64_t off;
	if (qemu_cpu_v12_field(name, &off, &i) < 0)
		return -1;
	*l = (struct floc){off, qemu_cpu_v12[i].size, qemu_cpu_v12[i].n, i};
	return 0;
}

/* Member @sub of the struct field @l: its place within one element. */
static int member(struct cpubody *c, const struct floc *l, const char *sub, struct floc *m)
{
	if (c->d) {
		uint32_t st = qj_get(c->d, l->node, "struct");
		return st == QJ_NONE ? -1 : field(c, st, sub, m);
	}
	const struct qemu_tfield *t = &qemu_cpu_v12[l->node];
	uint64_t off = 0;
	for (unsigned k = 0; k < t->nsub; k++) {
		if (!strcmp(t->sub[k].name, sub)) {
			*m = (struct floc){off, t->sub[k].size, t->sub[k].n, QJ_NONE};
			return 0;
		}
		off += (uint64_t)t->sub[k].size * t->sub[k].n;
	}
	return -1;
}

/*
 * Where field @name[@i] (+ @sub of a struct) of @want octets lies in the
 * state: its offset, or UINT64_MAX and missing++ if absent or of another size.
 */
static uint64_t fat(struct cpubody *c, const char *name, uint64_t i, const char *sub, unsigned want)
{
	struct floc l, m;
	uint64_t off, size;
	/* the device's own fields: desc_len bounded their sum by QEMU_MAX_DEV_BODY; the rest is checked here */
	if (top(c, name, &l) < 0 || i >= l.n || __builtin_mul_overflow(i, l.size, &off) ||
	    __builtin_add_overflow(off, l.off, &off)) {
		c->missing++;
		return UINT64_MAX;
	}
	size = l.size;
	if (sub) {
		if (member(c, &l, sub, &m) < 0 || m.off > l.size || m.size > l.size - m.off) {
			c->missing++;
			return UINT64_MAX;
		}
		if (__builtin_add_overflow(off, m.off, &off)) {
			c->missing++;
			return UINT64_MAX;
		}
		size = m.size;
	}
	if (size != want || off > c->len || size > c->len - off) {
		c->missing++;
		return UINT64_MAX;
	}
	return off;
}

/* Big-endian integer of @want octets at field @name[@i] (+ @sub of a struct); 0 and missing++ if absent. */
static uint64_t fv(struct cpubody *c, const char *name, uint64_t i, const char *sub, unsigned want)
{
	uint64_t off = fat(c, name, i, sub, want);
	if (off == UINT64_MAX)
		return 0;
	uint64_t v = 0;
	for (unsigned k = 0; k < want; k++)
		v = v << 8 | c->b[off + k];
	return v;
}

static void seg(struct cpubody *c, struct xsr_x86_segment *sg, const char *name, uint64_t i)
{
	uint32_t flags = (uint32_t)fv(c, name, i, "flags", 4);
	sg->selector = (uint16_t)fv(c, name, i, "selector", 4);
	sg->base = fv(c, name, i, "base", 8);
	sg->limit = (uint32_t)fv(c, name, i, "limit", 4);
	/* QEMU keeps the descriptor's high word (type at bit 8, G at 23): to type:4 s:1 dpl:2 p:1 avl:1 l:1 db:1 g:1 */
	sg->attr = (uint16_t)(((flags >> 8) & 0xff) | ((flags >> 12) & 0xf00) | (flags & 0x8000 ? 0 : 0x1000));
}

static void msr(struct xsr_vcpu_state *st, uint32_t idx, uint64_t val)
{
	if (st->r.nr_msrs < XSR_MAX_MSRS)
		st->msrs[st->r.nr_msrs++] = (struct xsr_msr){.index = idx, .value = val};
}

/* vCPU state from a `cpu` section's octets (QEMU target/i386/machine.c vmstate_x86_cpu, as described). */
static int decode_regs(struct src *s, const struct cpu *cp, struct cpubody *cb, struct xsr_vcpu_state *st)
{
	struct xsr_x86_vcpu *r = &st->r;
	memset(r, 0, sizeof(*r));
	r->vcpu_id = cp->instance;
	/* QEMU's order: eax ecx edx ebx esp ebp esi edi r8..r15; ours: rax rbx rcx rdx rsi rdi rsp rbp r8.. */
	static const uint8_t from[16] = {0, 3, 1, 2, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15};
	for (int i = 0; i < 16; i++)
		r->gpr[i] = fv(cb, "env.regs", from[i], NULL, 8);
	r->rip = fv(cb, "env.eip", 0, NULL, 8);
	r->rflags = fv(cb, "env.eflags", 0, NULL, 8);
	if (cb->nomem)
		return nomem(s);
	if (cb->missing) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU device section 'cpu' instance %u at offset 0x%llx: its VMDESCRIPTION lacks env.regs, "
			       "env.eip or env.eflags as 64-bit fields (a 32-bit target?)",
			    cp->instance, (unsigned long long)cp->body);
	}
	/* R_ES, R_CS, R_SS, R_DS, R_FS, R_GS */
	struct xsr_x86_segment *segs[6] = {&r->es, &r->cs, &r->ss, &r->ds, &r->fs, &r->gs};
	for (int i = 0; i < 6; i++)
		seg(cb, segs[i], "env.segs", (uint64_t)i);
	seg(cb, &r->ldt, "env.ldt", 0);
	seg(cb, &r->tr, "env.tr", 0);
	r->gdt.base = fv(cb, "env.gdt", 0, "base", 8);
	r->gdt.limit = (uint32_t)fv(cb, "env.gdt", 0, "limit", 4);
	r->idt.base = fv(cb, "env.idt", 0, "base", 8);
	r->idt.limit = (uint32_t)fv(cb, "env.idt", 0, "limit", 4);
	r->cr0 = fv(cb, "env.cr[0]", 0, NULL, 8);
	r->cr2 = fv(cb, "env.cr[2]", 0, NULL, 8);
	r->cr3 = fv(cb, "env.cr[3]", 0, NULL, 8);
	r->cr4 = fv(cb, "env.cr[4]", 0, NULL, 8);
	r->efer = fv(cb, "env.efer", 0, NULL, 8);
	for (int i = 0; i < 8; i++)
		r->dr[i] = i == 4 || i == 5 ? 0 : fv(cb, "env.dr", (uint64_t)i, NULL, 8);
	r->valid |= XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_DEBUG;
	cb->missing = 0; /* fields an older QEMU lacks read as 0; the general registers are required above */
	r->xcr0 = fv(cb, "env.xcr0", 0, NULL, 8);
	r->mp_state = (uint32_t)fv(cb, "env.mp_state", 0, NULL, 4);
	static const struct { uint32_t idx; const char *name; unsigned size; } msrs[] = {
		{0x174, "env.sysenter_cs", 4}, {0x175, "env.sysenter_esp", 8}, {0x176, "env.sysenter_eip", 8},
		{0x277, "env.pat", 8}, {0xc0000080, "env.efer", 8}, {0xc0000081, "env.star", 8},
		{0xc0000082, "env.lstar", 8}, {0xc0000083, "env.cstar", 8}, {0xc0000084, "env.fmask", 8},
		{0xc0000102, "env.kernelgsbase", 8}, {0xc0000103, "env.tsc_aux", 8},
	};
	for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		int before = cb->missing;
		uint64_t v = fv(cb, msrs[i].name, 0, NULL, msrs[i].size);
		if (cb->missing == before)
			msr(st, msrs[i].idx, v);
	}
	if (r->nr_msrs)
		r->valid |= XSR_VCPU_HAVE_MSRS;
	/* the legacy FXSAVE image: control, status, abridged tag, MXCSR, x87 and XMM registers */
	cb->missing = 0;
	uint8_t *fx = r->fxsave;
	uint16_t fcw = (uint16_t)fv(cb, "env.fpuc", 0, NULL, 2), fsw = (uint16_t)fv(cb, "env.fpus_vmstate", 0, NULL, 2);
	uint8_t ftw = (uint8_t)fv(cb, "env.fptag_vmstate", 0, NULL, 2);
	uint32_t mxcsr = (uint32_t)fv(cb, "env.mxcsr", 0, NULL, 4);
	memcpy(fx, &fcw, 2);
	memcpy(fx + 2, &fsw, 2);
	fx[4] = ftw;
	memcpy(fx + 24, &mxcsr, 4);
	for (int i = 0; i < 16; i++) {
		uint64_t lo = fv(cb, "env.xmm_regs[0]", (uint64_t)i, "_q_ZMMReg[0]", 8);
		uint64_t hi = fv(cb, "env.xmm_regs[0]", (uint64_t)i, "_q_ZMMReg[1]", 8);
		memcpy(fx + 160 + 16 * i, &lo, 8);
		memcpy(fx + 168 + 16 * i, &hi, 8);
	}
	/*
	 * The x87 registers: QEMU sends env.fpregs[8] by physical register
	 * (vmstate_fpreg: be64 mantissa, be16 sign and exponent), and its
	 * format word 0 says 80-bit; FXSAVE holds ST(i) = the register
	 * (TOP + i) mod 8, TOP being the status word's bits 11-13, as
	 * little-endian mantissa then exponent in 16-octet slots.
	 */
	if (fv(cb, "env.fpregs_format_vmstate", 0, NULL, 2) == 0) {
		unsigned topst = (fsw >> 11) & 7;
		for (unsigned i = 0; i < 8; i++) {
			uint64_t o = fat(cb, "env.fpregs", (topst + i) & 7, "tmp", 10);
			if (o == UINT64_MAX)
				break;
			uint64_t mant = 0;
			for (unsigned k = 0; k < 8; k++)
				mant = mant << 8 | cb->b[o + k];
			uint16_t exp = (uint16_t)(cb->b[o + 8] << 8 | cb->b[o + 9]);
			memcpy(fx + 32 + 16 * i, &mant, 8);
			memcpy(fx + 40 + 16 * i, &exp, 2);
		}
	} else {
		cb->missing++; /* another format (QEMU 7.2 writes 0 only): the x87 registers are not known */
	}
	if (!cb->missing)
		r->valid |= XSR_VCPU_HAVE_FPU;
	return 0;
}

/*
 * Does the VMDESCRIPTION lay out this version 12 cpu section as the built-in
 * table does (every field, its offset, size, count and struct members, and
 * no other field)?  The verdict goes to s->tabcheck and the CONFIG section:
 * each import of a stream with a VMDESCRIPTION tests the table.
 */
static void table_check(struct src *s, struct cpubody *c)
{
	uint64_t off = 0;
	const char *bad = NULL;
	for (unsigned i = 0; i < qemu_cpu_v12_count && !bad; i++) {
		const struct qemu_tfield *t = &qemu_cpu_v12[i];
		struct floc l, m;
		if (field(c, c->dev, t->name, &l) < 0 || l.off != off || l.size != t->size || l.n != t->n)
			bad = t->name;
		for (unsigned k = 0, so = 0; k < t->nsub && !bad; so += t->sub[k].size * t->sub[k].n, k++)
			if (member(c, &l, t->sub[k].name, &m) < 0 || m.off != so || m.size != t->sub[k].size || m.n != t->sub[k].n)
				bad = t->name;
		off += (uint64_t)t->size * t->n;
	}
	const struct findex *x = findex(c, c->dev);
	if (!bad && (!x || x->n != qemu_cpu_v12_count))
		bad = "(the number of fields)";
	if (bad)
		snprintf(s->tabcheck, sizeof(s->tabcheck), "differs from the VMDESCRIPTION at %.100s", bad);
	else
		snprintf(s->tabcheck, sizeof(s->tabcheck), "agrees with the VMDESCRIPTION");
}

static int decode_cpu(struct src *s, const struct cpu *cp, const uint8_t *b, struct xsr_vcpu_state *st)
{
	struct cpubody c = {.d = s->json ? &s->doc : NULL, .dev = cp->desc, .b = b, .len = cp->len};
	int rc = decode_regs(s, cp, &c, st);
	if (rc == 0 && c.nomem)
		rc = nomem(s);
	for (unsigned i = 0; i < c.nidx; i++)
		free(c.idx[i].e);
	return rc;
}

/*
 * The apic sections' bases (QEMU hw/intc/apic_common.c "apicbase") of the
 * vCPUs with instance below @n into @base (UINT64_MAX: none), the first
 * section of each instance winning; one pass over the items, not one a
 * vCPU (4096 vCPUs and 60 000 items would be 2^28 reads).
 */
static int apic_bases(struct src *s, uint64_t *base, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++)
		base[k] = UINT64_MAX;
	for (size_t i = 0; i < s->nitems; i++) {
		const struct item *it = &s->items[i];
		if (it->origin != XSR_PT_ORIGIN_QEMU_SECTION || it->type != QEMU_VM_SECTION_FULL || it->len < 18 + 4)
			continue;
		uint8_t h[22];
		if (rd(s, it->off, h, sizeof(h), "apic section") < 0)
			return -1;
		uint32_t inst = be32(h + 10);
		if (h[5] != 4 || memcmp(h + 6, "apic", 4) || inst >= n || base[inst] != UINT64_MAX)
			continue;
		base[inst] = be32(h + 18); /* the first field, uint32 apicbase, after the 18-octet header */
	}
	return 0;
}

/* ---------------- the second pass ---------------- */

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->pos >> 1) < (y->pos >> 1) ? -1 : (x->pos >> 1) > (y->pos >> 1);
}

/* Sort by block and page, keep the last copy of each (s->resent counts the others). */
static void final_pages(struct src *s)
{
	int sorted = 1;
	for (size_t i = 1; i < s->nocc && sorted; i++)
		sorted = cmp_occ(&s->occ[i - 1], &s->occ[i]) < 0;
	if (!sorted)
		qsort(s->occ, s->nocc, sizeof(*s->occ), cmp_occ);
	size_t o = 0;
	for (size_t i = 0; i < s->nocc; i++) {
		if (i + 1 < s->nocc && s->occ[i + 1].key == s->occ[i].key) {
			s->resent++;
			continue;
		}
		s->occ[o++] = s->occ[i];
	}
	s->nocc = o;
}

/* The range of s->occ of block @b. */
static void block_range(const struct src *s, uint32_t b, size_t *lo, size_t *hi)
{
	size_t l = 0, h = s->nocc;
	while (l < h) {
		size_t m = l + (h - l) / 2;
		if (s->occ[m].key >> 40 < b)
			l = m + 1;
		else
			h = m;
	}
	*lo = l;
	for (h = l; h < s->nocc && s->occ[h].key >> 40 == b; h++)
		;
	*hi = h;
}

static int wfail(struct src *s, struct xsr_writer *w, int rc, const char *what)
{
	s->code = rc < 0 ? rc : XSR_E_FORMAT;
	return fail(s, "%s: %s", what, xsr_writer_error(w));
}

static int put_item(struct src *s, struct xsr_writer *w, uint32_t *seq, uint16_t origin, uint16_t flags, uint32_t type,
		    uint8_t *b, uint64_t len)
{
	struct xsr_passthru_hdr h = {.type = type, .length = (uint32_t)(len - sizeof(h)), .origin = origin,
				     .flags = flags, .seq = (*seq)++};
	memcpy(b, &h, sizeof(h));
	int r = xsr_writer_add(w, XSR_SEC_PASSTHRU, 0, b, len);
	return r < 0 ? wfail(s, w, r, "PASSTHRU section") : 0;
}

/*
 * One RAM block other than pc.ram: u8 name length, name, be64 used length,
 * then (be64 offset, 4096 octets) for each final page with data, in
 * ascending offset; split into several items of at most XSR_MAX_RECORD.
 */
static int block_items(struct src *s, struct xsr_writer *w, uint32_t *seq, uint32_t bi)
{
	const struct block *bl = &s->blocks[bi];
	size_t nl = strlen(bl->name), hdr = sizeof(struct xsr_passthru_hdr) + 1 + nl + 8, lo, hi;
	uint64_t cap = XSR_MAX_RECORD - (XSR_MAX_RECORD - hdr) % (8 + PAGE);
	block_range(s, bi, &lo, &hi);
	uint64_t ndata = 0;
	for (size_t i = lo; i < hi; i++)
		ndata += !(s->occ[i].pos & ZERO_BIT);
	if (ndata < (cap - hdr) / (8 + PAGE))
		cap = hdr + ndata * (8 + PAGE); /* what this block needs, not the most an item may hold */
	uint8_t *b = malloc(cap);
	if (!b)
		return nomem(s);
	int rc = 0;
	size_t i = lo;
	do {
		uint64_t len = hdr;
		b[sizeof(struct xsr_passthru_hdr)] = (uint8_t)nl;
		memcpy(b + sizeof(struct xsr_passthru_hdr) + 1, bl->name, nl);
		for (int k = 0; k < 8; k++)
			b[hdr - 8 + k] = (uint8_t)(bl->used >> (56 - 8 * k));
		for (; i < hi; i++) {
			if (s->occ[i].pos & ZERO_BIT)
				continue;
			if (len + 8 + PAGE > cap)
				break; /* the next item of this block */
			uint64_t off = (s->occ[i].key & ((UINT64_C(1) << 40) - 1)) * PAGE;
			if ((rc = rd(s, s->occ[i].pos >> 1, b + len + 8, PAGE, "page data")) < 0)
				break;
			if (xsr_page_is_zero(b + len + 8))
				continue;
			for (int k = 0; k < 8; k++)
				b[len + k] = (uint8_t)(off >> (56 - 8 * k));
			len += 8 + PAGE;
		}
		if (rc < 0 || (rc = put_item(s, w, seq, XSR_PT_ORIGIN_QEMU_RAM, 0, 1, b, len)) < 0)
			break;
	} while (i < hi);
	free(b);
	return rc;
}

/* One item read from the input into a PASSTHRU section. */
static int copy_item(struct src *s, struct xsr_writer *w, uint32_t *seq, const struct item *it)
{
	uint64_t len = sizeof(struct xsr_passthru_hdr) + it->len;
	if (it->len > XSR_MAX_RECORD - sizeof(struct xsr_passthru_hdr)) {
		s->code = XSR_E_LIMIT;
		return fail(s, "QEMU %s at offset 0x%llx: %llu octets, more than a PASSTHRU section holds",
			    xsr_qemu_section_name(it->type), (unsigned long long)it->off, (unsigned long long)it->len);
	}
	uint8_t *b = malloc(len);
	if (!b)
		return nomem(s);
	int rc = 0;
	if (it->data)
		memcpy(b + sizeof(struct xsr_passthru_hdr), it->data, it->len);
	else
		rc = rd(s, it->off, b + sizeof(struct xsr_passthru_hdr), it->len, "section");
	if (rc == 0)
		rc = put_item(s, w, seq, it->origin, it->flags, it->type, b, len);
	free(b);
	return rc;
}

/* Every item in source order; the RAM blocks after the ram setup, pc.ram as the PAGES placeholder. */
static int write_passthru(struct src *s, struct xsr_writer *w)
{
	uint32_t seq = 0;
	if (s->wrap) { /* the wrapper's item first, as its octets come first in the file */
		uint64_t len = sizeof(struct xsr_passthru_hdr) + s->wrap->item_len;
		uint8_t *b = malloc(len);
		if (!b)
			return nomem(s);
		memcpy(b + sizeof(struct xsr_passthru_hdr), s->wrap->item, s->wrap->item_len);
		int r = put_item(s, w, &seq, s->wrap->origin, 0, 0, b, len);
		free(b);
		if (r < 0)
			return -1;
	}
	for (size_t i = 0; i < s->nitems; i++) {
		const struct item *it = &s->items[i];
		if (copy_item(s, w, &seq, it) < 0)
			return -1;
		if (it->origin != XSR_PT_ORIGIN_QEMU_RAM)
			continue;
		for (uint32_t b = 0; b < s->nblocks; b++) {
			if ((int32_t)b != s->pcram) {
				if (block_items(s, w, &seq, b) < 0)
					return -1;
				continue;
			}
			uint8_t ph[sizeof(struct xsr_passthru_hdr) + 1 + 6 + 8];
			ph[sizeof(struct xsr_passthru_hdr)] = 6;
			memcpy(ph + sizeof(struct xsr_passthru_hdr) + 1, "pc.ram", 6);
			for (int k = 0; k < 8; k++)
				ph[sizeof(ph) - 8 + k] = (uint8_t)(s->blocks[b].used >> (56 - 8 * k));
			if (put_item(s, w, &seq, XSR_PT_ORIGIN_QEMU_RAM, XSR_PT_PAGES, 1, ph, sizeof(ph)) < 0)
				return -1;
		}
	}
	return 0;
}

/* The first vCPU's VMDESCRIPTION entry against the built-in table, into s->tabcheck (a stream with one). */
static int check_table(struct src *s)
{
	const struct cpu *cp = &s->cpus[0];
	if (cp->version != QEMU_CPU_TABLE_VERSION) {
		snprintf(s->tabcheck, sizeof(s->tabcheck), "not compared: cpu section version %u", cp->version);
		return 0;
	}
	struct cpubody c = {.d = &s->doc, .dev = cp->desc};
	table_check(s, &c);
	for (unsigned i = 0; i < c.nidx; i++)
		free(c.idx[i].e);
	return c.nomem ? nomem(s) : 0;
}

static int write_config(struct src *s, struct xsr_writer *w)
{
	uint64_t ram = s->blocks[s->pcram].used, above = ram - s->below;
	if (s->json && check_table(s) < 0)
		return -1;
	char layout[160], *c = malloc(64u * 1024);
	size_t cap = 64u * 1024, n = 0;
	if (!c)
		return nomem(s);
	int l = snprintf(layout, sizeof(layout), "pc.ram 0x0-0x%llx at 0x0", (unsigned long long)s->below);
	if (above)
		snprintf(layout + l, sizeof(layout) - (size_t)l, ", 0x%llx-0x%llx at 0x100000000",
			 (unsigned long long)s->below, (unsigned long long)ram);
	if (s->wrap && s->wrap->config)
		n += (size_t)snprintf(c, cap, "{%.4096s, ", s->wrap->config);
	else
		c[n++] = '{';
	n += (size_t)snprintf(c + n, cap - n,
			      "\"qemu\": {\"vcpus_from\": \"%s\", \"layout\": \"%s (%s)\", \"machine\": \"%s\", \"ram_size\": %llu, "
			      "\"below_4g\": %llu, \"above_4g\": %llu, \"above_4g_start\": 4294967296, "
			      "\"layout_source\": \"%s\", \"stream_version\": 3, \"vcpus\": %u, \"blocks\": [",
			      s->json ? "vmdesc" : "table", layout, s->below_given ? "given by the caller" : "inferred from the machine type and RAM size",
			      s->machine, (unsigned long long)ram, (unsigned long long)s->below, (unsigned long long)above,
			      s->below_given ? "caller" : "inferred", s->ncpus);
	/* block names are what the stream holds: only printable ASCII without quotes goes in verbatim */
	for (uint32_t b = 0; b < s->nblocks && n < cap - 600; b++) {
		char nm[256];
		size_t k = 0;
		for (const char *q = s->blocks[b].name; *q; q++)
			nm[k++] = *q >= 0x20 && *q < 0x7f && *q != '"' && *q != '\\' ? *q : '?';
		nm[k] = 0;
		n += (size_t)snprintf(c + n, cap - n, "%s{\"name\": \"%s\", \"used_length\": %llu}", b ? ", " : "", nm,
				      (unsigned long long)s->blocks[b].used);
	}
	n += (size_t)snprintf(c + n, cap - n, "], \"ram_from\": \"%s\", \"vmdesc\": %s, \"cpu_table\": \"%s\", \"vmcoreinfo\": \"%s\"}}\n",
			      s->shram ? "shared memory (x-ignore-shared)" : "stream", s->json ? "true" : "false",
			      s->json ? s->tabcheck : "QEMU 7.2 vmstate_x86_cpu version 12, decoded with it", s->vmci_from);
	int r = xsr_writer_add(w, XSR_SEC_CONFIG, 0, c, n);
	free(c);
	return r < 0 ? wfail(s, w, r, "CONFIG section") : 0;
}

static int write_vcpus(struct src *s, struct xsr_writer *w)
{
	uint32_t ninst = 0;
	for (uint32_t i = 0; i < s->ncpus; i++)
		if (s->cpus[i].instance >= ninst)
			ninst = s->cpus[i].instance + 1; /* below XSR_MAX_VCPUS (full_section) */
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	uint64_t *apic = malloc((ninst ? ninst : 1) * sizeof(*apic));
	uint8_t *b = NULL;
	int rc = -1;
	if (!st || !apic) {
		free(st);
		free(apic);
		return nomem(s);
	}
	if (apic_bases(s, apic, ninst) < 0)
		goto out;
	for (uint32_t i = 0; i < s->ncpus; i++) {
		const struct cpu *cp = &s->cpus[i];
		if (cp->len > QEMU_MAX_CPU_BODY) {
			s->code = XSR_E_LIMIT;
			fail(s, "QEMU device section 'cpu' at offset 0x%llx: %llu octets of state (at most %u decoded)",
			     (unsigned long long)cp->body, (unsigned long long)cp->len, QEMU_MAX_CPU_BODY);
			goto out;
		}
		free(b);
		if (!(b = malloc(cp->len ? cp->len : 1))) {
			nomem(s);
			goto out;
		}
		if (rd(s, cp->body, b, cp->len, "cpu section") < 0 || decode_cpu(s, cp, b, st) < 0)
			goto out;
		st->r.apic_base = apic[cp->instance] == UINT64_MAX ? 0 : apic[cp->instance];
		int r = xsr_writer_set_vcpu(w, st);
		if (r < 0) {
			wfail(s, w, r, "vCPU");
			goto out;
		}
	}
	rc = 0;
out:
	free(b);
	free(apic);
	free(st);
	return rc;
}

/*
 * The shared-memory path: pc.ram, every page of it, straight from the
 * caller's mapping in batches of XSR_MAX_BATCH (the writer finds the zero
 * pages and keeps them as holes).
 */
static int shared_pages(struct src *s, struct xsr_writer *w, const struct xsr_qemu_import_opts *o)
{
	enum { B = XSR_MAX_BATCH };
	uint64_t npages = s->blocks[s->pcram].used / PAGE, below = s->below / PAGE;
	uint64_t *pfns = malloc(B * sizeof(*pfns));
	const void **ptrs = malloc(B * sizeof(*ptrs));
	if (!pfns || !ptrs) {
		free(pfns);
		free(ptrs);
		return nomem(s);
	}
	int rc = 0;
	/* [dlo, dhi): the data extent (SEEK_DATA .. SEEK_HOLE) at or after the page; a hole before it is zeros */
	uint64_t dlo = 0, dhi = 0, len = s->shram_len;
	for (uint64_t pg = 0; pg < npages && rc == 0;) {
		uint32_t n = 0;
		for (; pg < npages && n < B; pg++, n++) {
			uint64_t off = pg * PAGE;
			if (off >= dhi && dhi != len) {
				off_t d = lseek(s->shram_fd, (off_t)off, SEEK_DATA);
				off_t h = d < 0 ? -1 : lseek(s->shram_fd, d, SEEK_HOLE);
				if (d < 0 && errno == ENXIO) { /* no data from here on */
					dlo = dhi = len;
				} else if (d < 0 || h < 0) { /* no SEEK_DATA here: every page is read */
					dlo = off;
					dhi = len;
				} else {
					dlo = (uint64_t)d / PAGE * PAGE;
					dhi = (uint64_t)h < len ? ((uint64_t)h + PAGE - 1) / PAGE * PAGE : len;
				}
#ifdef MADV_POPULATE_READ
				/* the extent's page tables at once, instead of a fault per page (no-op before Linux 5.14) */
				if (dhi > dlo)
					madvise((void *)(s->shram + dlo), (size_t)(dhi - dlo), MADV_POPULATE_READ);
#endif
			}
			pfns[n] = pg < below ? pg : (UINT64_C(1) << 20) + (pg - below);
			ptrs[n] = off >= dlo && off < dhi ? s->shram + off : NULL;
		}
		int r = xsr_writer_put_pages(w, pfns, n, ptrs);
		if (r < 0)
			rc = wfail(s, w, r, "pages");
		else if (o->cb.progress)
			o->cb.progress(o->cb.progress_ctx, pg, npages);
	}
	free(pfns);
	free(ptrs);
	return rc;
}

/* pc.ram, every page of it (never sent: zero), by pfn; data read a window at a time. */
static int write_pages(struct src *s, struct xsr_writer *w, const struct xsr_qemu_import_opts *o)
{
	enum { B = 256 };
	const uint64_t wlen = (uint64_t)B * (PAGE + 8) + PAGE, mask = (UINT64_C(1) << 40) - 1;
	uint64_t pfns[B], npages = s->blocks[s->pcram].used / PAGE, below = s->below / PAGE;
	const void *ptrs[B];
	size_t i, hi;
	block_range(s, (uint32_t)s->pcram, &i, &hi);
	/*
	 * An input in memory is passed to the writer where it lies; any other is
	 * read a window at a time, the window no larger than the input.
	 */
	const uint8_t *all = s->in.ops->view(&s->in, s->base, (size_t)s->size);
	uint8_t *buf = NULL;
	if (s->shram)
		return shared_pages(s, w, o);
	if (!all && !(buf = malloc(s->size < wlen ? (size_t)s->size : wlen)))
		return nomem(s);
	for (uint64_t pg = 0; pg < npages;) {
		uint32_t n = 0;
		uint64_t base = 0, len = 0;
		while (pg < npages && n < B) {
			const void *ptr = NULL;
			int sent = i < hi && (s->occ[i].key & mask) == pg;
			if (sent && !(s->occ[i].pos & ZERO_BIT)) {
				uint64_t at = s->occ[i].pos >> 1;
				if (all) {
					ptr = all + at; /* parse() checked that its 4096 octets are in the input */
				} else if (!len) {
					base = at;
					len = s->size - base < wlen ? s->size - base : wlen;
					if (rd(s, base, buf, len, "page data") < 0) {
						free(buf);
						return -1;
					}
				} else if (at < base || at - base > len - PAGE) {
					break; /* outside this window: the next batch starts with it */
				}
				if (!all)
					ptr = buf + (at - base);
			}
			i += (size_t)sent;
			pfns[n] = pg < below ? pg : (UINT64_C(1) << 20) + (pg - below);
			ptrs[n++] = ptr;
			pg++;
		}
		int r = xsr_writer_put_pages(w, pfns, n, ptrs);
		if (r < 0) {
			free(buf);
			return wfail(s, w, r, "pages");
		}
		if (o->cb.progress)
			o->cb.progress(o->cb.progress_ctx, pg, npages);
	}
	free(buf);
	return 0;
}

/* ---------------- VMCOREINFO from the vmcoreinfo device ---------------- */

/*
 * @len octets of guest-physical memory at @gpa into @out: pc.ram's final
 * pages (a page never sent, or sent as ZERO, reads as zeros).  The range
 * must lie in one of pc.ram's two runs (below s->below, or from 4 GiB);
 * returns 1 when it does not, -1 on a read error.
 */
static int guest_read(struct src *s, uint64_t gpa, uint8_t *out, uint64_t len)
{
	const uint64_t G4 = UINT64_C(1) << 32, ram = s->blocks[s->pcram].used;
	uint64_t off;
	if (gpa < s->below && len <= s->below - gpa)
		off = gpa;
	else if (gpa >= G4 && gpa - G4 < ram - s->below && len <= ram - s->below - (gpa - G4))
		off = s->below + (gpa - G4);
	else
		return 1;
	if (s->shram) {
		memcpy(out, s->shram + off, len);
		return 0;
	}
	size_t lo, hi;
	block_range(s, (uint32_t)s->pcram, &lo, &hi);
	for (uint64_t done = 0; done < len;) {
		uint64_t pg = (off + done) / PAGE, in = (off + done) % PAGE, n = PAGE - in < len - done ? PAGE - in : len - done;
		uint64_t key = (uint64_t)s->pcram << 40 | pg;
		size_t l = lo, h = hi;
		while (l < h) {
			size_t m = l + (h - l) / 2;
			if (s->occ[m].key < key)
				l = m + 1;
			else
				h = m;
		}
		if (l < hi && s->occ[l].key == key && !(s->occ[l].pos & ZERO_BIT)) {
			if (rd(s, (s->occ[l].pos >> 1) + in, out + done, n, "page data") < 0)
				return -1;
		} else {
			memset(out + done, 0, n);
		}
		done += n;
	}
	return 0;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* "left out: ..." in s->vmci_from, and to the caller's note callback; the import goes on without VMCOREINFO. */
static void vmci_leave_out(struct src *s, const struct xsr_qemu_import_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void vmci_leave_out(struct src *s, const struct xsr_qemu_import_opts *o, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(s->vmci_from, sizeof(s->vmci_from), "left out: ");
	va_start(ap, fmt);
	vsnprintf(s->vmci_from + n, sizeof(s->vmci_from) - (size_t)n, fmt, ap);
	va_end(ap);
	if (o->cb.note) {
		char m[320];
		snprintf(m, sizeof(m), "VMCOREINFO %s", s->vmci_from);
		o->cb.note(o->cb.note_ctx, m);
	}
}

/*
 * QEMU's vmcoreinfo device (hw/misc/vmcoreinfo.c, -device vmcoreinfo):
 * the guest's fw_cfg driver (Linux: qemu_fw_cfg) writes the guest-physical
 * address and size of its kernel's VMCOREINFO ELF note to the fw_cfg file
 * etc/vmcoreinfo, and the device's state (has_vmcoreinfo, host_format,
 * guest_format, size, paddr) travels in the stream.  QEMU's own
 * dump-guest-memory copies the note from there; so does this, after the
 * first pass, when every page's final copy is known.  What the guest wrote
 * is the guest's to get wrong: a note that is not there, not an ELF note
 * named VMCOREINFO, or not text leaves VMCOREINFO out (with the reason in
 * CONFIG and to the note callback), and the import goes on.  Only a read
 * error or no memory fails it.
 */
static int vmci_from_device(struct src *s, const struct xsr_qemu_import_opts *o)
{
	if (!s->have_vmci_dev) {
		snprintf(s->vmci_from, sizeof(s->vmci_from), "none: the stream has no vmcoreinfo device (QEMU ran without -device vmcoreinfo)");
		return 0;
	}
	if (s->vmci_blen > QEMU_MAX_VMCI_BODY) {
		vmci_leave_out(s, o, "the vmcoreinfo device's state at offset 0x%llx is %llu octets (at most %u decoded)",
			       (unsigned long long)s->vmci_body, (unsigned long long)s->vmci_blen, QEMU_MAX_VMCI_BODY);
		return 0;
	}
	uint8_t body[QEMU_MAX_VMCI_BODY];
	if (rd(s, s->vmci_body, body, s->vmci_blen, "vmcoreinfo section") < 0)
		return -1;
	/* big-endian as VMSTATE writes the fields, each the value a little-endian host held */
	uint64_t has, fmt, size, paddr;
	int missing = 0;
	if (s->json) {
		struct cpubody c = {.d = &s->doc, .dev = s->vmci_desc, .b = body, .len = s->vmci_blen};
		has = fv(&c, "has_vmcoreinfo", 0, NULL, 1);
		fmt = fv(&c, "vmcoreinfo.guest_format", 0, NULL, 2);
		size = fv(&c, "vmcoreinfo.size", 0, NULL, 4);
		paddr = fv(&c, "vmcoreinfo.paddr", 0, NULL, 8);
		for (unsigned i = 0; i < c.nidx; i++)
			free(c.idx[i].e);
		if (c.nomem)
			return nomem(s);
		missing = c.missing;
	} else if (s->vmci_blen == QEMU_VMCI_BODY_V1) {
		/* no VMDESCRIPTION: QEMU 7.2's vmstate_vmcoreinfo version 1, the one layout there is */
		has = body[0];
		fmt = (uint64_t)body[3] << 8 | body[4];
		size = be32(body + 5);
		paddr = (uint64_t)be32(body + 9) << 32 | be32(body + 13);
	} else {
		vmci_leave_out(s, o, "the vmcoreinfo device's state at offset 0x%llx is %llu octets, not the %u of QEMU's "
				     "version 1, and the stream has no VMDESCRIPTION to decode it",
			       (unsigned long long)s->vmci_body, (unsigned long long)s->vmci_blen, QEMU_VMCI_BODY_V1);
		return 0;
	}
	if (missing) {
		vmci_leave_out(s, o, "the vmcoreinfo device's state at offset 0x%llx lacks has_vmcoreinfo, vmcoreinfo.guest_format, "
				     "vmcoreinfo.size or vmcoreinfo.paddr of the sizes QEMU gives them",
			       (unsigned long long)s->vmci_body);
		return 0;
	}
	if (!has || !fmt) {
		snprintf(s->vmci_from, sizeof(s->vmci_from),
			 "none: the guest did not fill the vmcoreinfo device (no fw_cfg driver in it, e.g. Linux's qemu_fw_cfg)");
		return 0;
	}
	if (fmt != 1) {
		vmci_leave_out(s, o, "the vmcoreinfo device says guest format %llu (only 1, an ELF note, is known)", (unsigned long long)fmt);
		return 0;
	}
	if (size <= XSR_VMCI_NOTE_HDR || size > QEMU_MAX_VMCI_NOTE) {
		vmci_leave_out(s, o, "the vmcoreinfo device says a note of %llu octets at 0x%llx (%u..%u)", (unsigned long long)size,
			       (unsigned long long)paddr, XSR_VMCI_NOTE_HDR + 1, QEMU_MAX_VMCI_NOTE);
		return 0;
	}
	uint8_t *note = malloc(size);
	if (!note)
		return nomem(s);
	int r = guest_read(s, paddr, note, size);
	if (r != 0) {
		free(note);
		if (r < 0)
			return -1;
		vmci_leave_out(s, o, "the vmcoreinfo device's note 0x%llx..+0x%llx is not in guest RAM", (unsigned long long)paddr,
			       (unsigned long long)size);
		return 0;
	}
	uint32_t namesz = le32(note), descsz = le32(note + 4), type = le32(note + 8);
	const char *bad = NULL;
	if (namesz != sizeof(XSR_VMCI_NOTE_NAME) || memcmp(note + 12, XSR_VMCI_NOTE_NAME, sizeof(XSR_VMCI_NOTE_NAME)) || type != 0)
		bad = "is not an ELF note named VMCOREINFO of type 0";
	else if (descsz == 0 || descsz > size - XSR_VMCI_NOTE_HDR)
		bad = "has a text length of 0 or past the size the device gives";
	else if (descsz < 10 || memcmp(note + XSR_VMCI_NOTE_HDR, "OSRELEASE=", 10))
		bad = "does not start with OSRELEASE=";
	for (uint32_t i = 0; !bad && i < descsz; i++) {
		uint8_t ch = note[XSR_VMCI_NOTE_HDR + i];
		if ((ch < 0x20 || ch > 0x7e) && ch != '\n')
			bad = "holds octets that are not text";
	}
	if (bad) {
		free(note);
		vmci_leave_out(s, o, "the note at 0x%llx (%llu octets, as the vmcoreinfo device says) %s", (unsigned long long)paddr,
			       (unsigned long long)size, bad);
		return 0;
	}
	memmove(note, note + XSR_VMCI_NOTE_HDR, descsz);
	s->vmci = (char *)note;
	s->vmci_len = descsz;
	snprintf(s->vmci_from, sizeof(s->vmci_from),
		 "the vmcoreinfo device: the guest's note at 0x%llx (%llu octets), %u octets of text",
		 (unsigned long long)paddr, (unsigned long long)size, descsz);
	return 0;
}

static int write_image(struct src *s, int out, const struct xsr_qemu_import_opts *o)
{
	uint64_t ram = s->blocks[s->pcram].used;
	if (o->ram_below_4g) {
		if (o->ram_below_4g % PAGE || o->ram_below_4g > UINT64_C(0x100000000)) {
			s->code = XSR_E_INVAL;
			return fail(s, "ram_below_4g 0x%llx: must be a multiple of 4096, at most 4 GiB",
				    (unsigned long long)o->ram_below_4g);
		}
		s->below = o->ram_below_4g < ram ? o->ram_below_4g : ram;
		s->below_given = 1;
	} else if (xsr_qemu_layout(s->have_machine ? s->machine : "", ram, &s->below) < 0) {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "QEMU machine '%s': where pc.ram lies in guest-physical memory is not known for it; give the "
			       "octets of pc.ram below 4 GiB (--ram-below-4g)", s->have_machine ? s->machine : "(no CONFIGURATION)");
	}
	final_pages(s);
	if (vmci_from_device(s, o) < 0)
		return -1;
	struct xsr_memrun runs[2] = {{0, s->below / PAGE}, {UINT64_C(1) << 20, (ram - s->below) / PAGE}};
	uint32_t nruns = ram > s->below ? 2 : 1;
	char ver[64];
	snprintf(ver, sizeof(ver), "%.40s, pc.ram below 4G 0x%llx", s->have_machine ? s->machine : "?",
		 (unsigned long long)s->below);
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = o->kind ? o->kind : XSR_KIND_SAVE, .layout = (uint8_t)o->layout, .nr_vcpus = s->ncpus,
		.nr_runs = nruns, .runs = runs, .hypervisor = "qemu", .hypervisor_version = ver, .compress = o->compress,
		.vmcoreinfo = s->vmci, .vmcoreinfo_len = s->vmci_len,
	};
	struct xsr_writer *w = NULL;
	int rc = xsr_writer_open(&w, out, &p, s->err, sizeof(s->err));
	if (rc < 0) {
		s->code = rc;
		return -1;
	}
	if (o->begin && (rc = o->begin(o->begin_ctx, w, s->err, sizeof(s->err))) < 0) {
		s->code = rc < -1 ? rc : XSR_E_IO;
		xsr_writer_abort(w);
		return -1;
	}
	if (write_passthru(s, w) < 0 || write_config(s, w) < 0 || write_vcpus(s, w) < 0 || write_pages(s, w, o) < 0) {
		xsr_writer_abort(w);
		return -1;
	}
	rc = xsr_writer_close(w, s->err, sizeof(s->err));
	if (rc < 0)
		s->code = rc;
	return rc < 0 ? -1 : 0;
}

/* ---------------- the API ---------------- */

static int import_src(struct src *s, int out_fd, const struct xsr_qemu_import_opts *o, struct xsr_qemu_import_stats *st,
		      char *err, size_t errlen)
{
	static const struct xsr_qemu_import_opts none;
	if (!o)
		o = &none;
	int rc;
	s->max_ram = o->max_ram;
	if (o->layout != 0 && o->layout != XSR_LAYOUT_SEEKABLE && o->layout != XSR_LAYOUT_STREAM) {
		xsr_fmt(err, errlen, "layout %d: need 0, XSR_LAYOUT_SEEKABLE or XSR_LAYOUT_STREAM", o->layout);
		rc = XSR_E_INVAL;
	} else if (parse(s) < 0 || write_image(s, out_fd, o) < 0) {
		xsr_fmt(err, errlen, "%s", s->err);
		rc = s->code < 0 ? s->code : XSR_E_FORMAT;
	} else {
		rc = 0;
	}
	if (st) {
		uint64_t entries = s->nocc + s->resent;
		*st = (struct xsr_qemu_import_stats){
			.format = "QEMU migration stream v3", .in_size = s->size, .nr_vcpus = s->ncpus,
			.nr_sections = s->nsections, .nr_blocks = s->nblocks,
			.nr_pages = s->pcram >= 0 ? s->blocks[s->pcram].used / PAGE : 0, .page_entries = entries,
			.resent = s->resent, .below_4g = s->below};
		snprintf(st->machine, sizeof(st->machine), "%.63s", s->machine);
	}
	free(s->win);
	free(s->json);
	qj_free(&s->doc);
	free(s->blocks);
	free(s->occ);
	for (size_t i = 0; i < s->nitems; i++)
		free(s->items[i].data);
	free(s->items);
	free(s->cpus);
	free(s->fc);
	free(s->vmci);
	return rc;
}

int xsr_qemu_import_fd(int in_fd, int out_fd, const struct xsr_qemu_import_opts *o, struct xsr_qemu_import_stats *st,
		       char *err, size_t errlen)
{
	struct stat sb;
	if (st)
		memset(st, 0, sizeof(*st));
	if (fstat(in_fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		xsr_fmt(err, errlen, "the input must be a regular file (seekable)");
		return XSR_E_INVAL;
	}
	struct src s = {0};
	xsr_source_fd(&s.in, in_fd);
	s.size = (uint64_t)sb.st_size;
	return import_src(&s, out_fd, o, st, err, errlen);
}

int xsr_qemu_import_shared_fd(int in_fd, int ram_fd, uint64_t ram_len, int out_fd,
			      const struct xsr_qemu_import_opts *o, struct xsr_qemu_import_stats *st, char *err, size_t errlen)
{
	struct stat sb, rb;
	if (st)
		memset(st, 0, sizeof(*st));
	if (!ram_len || ram_len % PAGE || ram_len / PAGE > XSR_MAX_PAGES || ram_len > SIZE_MAX) {
		xsr_fmt(err, errlen, "xsr_qemu_import_shared_fd: shared memory of %llu octets (a page multiple, at most 2^36 pages)",
			(unsigned long long)ram_len);
		return XSR_E_INVAL;
	}
	if (fstat(in_fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		xsr_fmt(err, errlen, "the input must be a regular file (seekable)");
		return XSR_E_INVAL;
	}
	/* a mapping past the end of a file faults (SIGBUS): the memory must hold every octet claimed */
	if (fstat(ram_fd, &rb) < 0 || !S_ISREG(rb.st_mode) || (uint64_t)rb.st_size < ram_len) {
		xsr_fmt(err, errlen, "the shared memory fd is not a regular file of at least %llu octets (it has %lld)",
			(unsigned long long)ram_len, (long long)rb.st_size);
		return XSR_E_INVAL;
	}
	void *m = mmap(NULL, (size_t)ram_len, PROT_READ, MAP_SHARED, ram_fd, 0);
	if (m == MAP_FAILED) {
		xsr_fmt(err, errlen, "mapping the shared memory: %s", strerror(errno));
		return XSR_E_IO;
	}
	struct src s = {.shram = m, .shram_len = ram_len, .shram_fd = ram_fd};
	xsr_source_fd(&s.in, in_fd);
	s.size = (uint64_t)sb.st_size;
	int rc = import_src(&s, out_fd, o, st, err, errlen);
	munmap(m, (size_t)ram_len);
	return rc;
}

int qemu_import_source(const struct xsr_source *in, uint64_t base, uint64_t size, int out_fd,
		       const struct xsr_qemu_import_opts *o, const struct qemu_wrap *wrap,
		       struct xsr_qemu_import_stats *st, char *err, size_t errlen)
{
	if (st)
		memset(st, 0, sizeof(*st));
	struct src s = {.in = *in, .size = size, .base = base, .wrap = wrap};
	return import_src(&s, out_fd, o, st, err, errlen);
}

int xsr_qemu_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_qemu_import_opts *o,
			struct xsr_qemu_import_stats *st, char *err, size_t errlen)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!buf && len) {
		xsr_fmt(err, errlen, "xsr_qemu_import_mem: no buffer");
		return XSR_E_INVAL;
	}
	struct src s = {0};
	xsr_source_mem(&s.in, buf, len);
	s.size = len;
	return import_src(&s, out_fd, o, st, err, errlen);
}
