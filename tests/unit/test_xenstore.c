/*
 * The XENSTORE body of a domain's own subtree (issue 20; xsrelf/xenstore.h,
 * docs/xsrelf-format.md "XENSTORE: the domain's subtree"): the builder and
 * the iterator agree, the body goes through both layouts and every
 * conversion between them byte for byte beside libxl's opaque kind, and
 * every limit holds at its value and refuses one past it, in the library
 * and in the readers.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>
#include <xsrelf/xenstore.h>

static const struct xsr_xs_perm owner5[] = {{5, 0}};
static const struct xsr_xs_perm acl[] = {{0, 0}, {5, XSR_XS_PERM_READ}, {7, XSR_XS_PERM_READ | XSR_XS_PERM_WRITE}};

static void add(struct xsr_xs_builder *b, const char *path, const char *val, size_t vlen,
		const struct xsr_xs_perm *p, size_t np)
{
	char err[256];
	cr_assert_eq(xsr_xs_builder_add(b, path, strlen(path), val, vlen, p, np, err, sizeof(err)), 0, "%s: %s",
		     path, err);
}

/* A subtree as a guest and dom0 leave it, added out of order. */
static void sample(void **body, uint64_t *len)
{
	struct xsr_xs_builder *b;
	char err[256];
	cr_assert_eq(xsr_xs_builder_new(&b, 5), 0);
	add(b, "data/xsrelf/nested/leaf", "deep", 4, acl, 3);
	add(b, "data/xsrelf-marker", "0123456789abcdef", 16, owner5, 1);
	add(b, "control/feature-balloon", "1", 1, owner5, 1);
	add(b, "data/xsrelf", "", 0, owner5, 1);
	add(b, "data/xsrelf/nested", "", 0, owner5, 1);
	add(b, "data/bin", "a\0b\xff", 4, owner5, 1); /* values are octets, NUL included */
	add(b, "attr/@x_y-z", "v", 1, owner5, 1);
	cr_assert_eq(xsr_xs_builder_finish(b, body, len, err, sizeof(err)), 0, "%s", err);
	xsr_xs_builder_free(b);
}

Test(xenstore, builder_sorts_and_iterator_reads_back)
{
	void *body;
	uint64_t len;
	char err[256];
	sample(&body, &len);
	cr_assert_eq(len % 8, 0);
	struct xsr_xs_iter it;
	struct xsr_xs_entry e;
	cr_assert_eq(xsr_xs_iter_init(&it, body, len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(it.domid, 5u);
	static const char *const want[] = {"attr/@x_y-z", "control/feature-balloon", "data/bin", "data/xsrelf",
					   "data/xsrelf-marker", "data/xsrelf/nested", "data/xsrelf/nested/leaf"};
	/* Re-encode what was read: serialize(parse(bytes)) == bytes. */
	struct xsr_xs_builder *b;
	cr_assert_eq(xsr_xs_builder_new(&b, it.domid), 0);
	uint32_t n = 0;
	int r;
	while ((r = xsr_xs_iter_next(&it, &e, err, sizeof(err))) == 1) {
		cr_assert_lt(n, 7u);
		cr_assert_eq(e.path_len, strlen(want[n]));
		cr_assert_arr_eq(e.path, want[n], e.path_len);
		struct xsr_xs_perm p[3];
		for (uint32_t i = 0; i < e.nr_perms && i < 3; i++)
			xsr_xs_perm_get(&e, i, &p[i]);
		if (!strcmp(want[n], "data/xsrelf/nested/leaf")) {
			cr_assert_eq(e.nr_perms, 3u);
			cr_assert_arr_eq(p, acl, sizeof(acl));
			cr_assert_eq(e.value_len, 4u);
		}
		if (!strcmp(want[n], "data/bin"))
			cr_assert_arr_eq(e.value, "a\0b\xff", 4);
		cr_assert_eq(xsr_xs_builder_add(b, e.path, e.path_len, e.value, e.value_len, p, e.nr_perms, err,
						sizeof(err)),
			     0, "%s", err);
		n++;
	}
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(n, 7u);
	void *again;
	uint64_t alen;
	cr_assert_eq(xsr_xs_builder_finish(b, &again, &alen, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(alen, len);
	cr_assert_arr_eq(again, body, len);
	uint32_t nodes;
	uint64_t octets;
	cr_assert_eq(xsr_xs_check(body, len, &nodes, &octets, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(nodes, 7u);
	cr_assert_eq(octets, 4u + 16 + 1 + 0 + 0 + 4 + 1);
	xsr_xs_builder_free(b);
	free(again);
	free(body);
}

Test(xenstore, empty_subtree_and_duplicates)
{
	struct xsr_xs_builder *b;
	void *body;
	uint64_t len;
	char err[256];
	cr_assert_eq(xsr_xs_builder_new(&b, 9), 0);
	cr_assert_eq(xsr_xs_builder_finish(b, &body, &len, err, sizeof(err)), 0);
	cr_assert_eq(len, sizeof(struct xsr_xs_head));
	cr_assert_eq(xsr_xs_check(body, len, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	free(body);
	add(b, "data/a", "1", 1, owner5, 1);
	add(b, "data/a", "2", 1, owner5, 1);
	cr_assert_eq(xsr_xs_builder_finish(b, &body, &len, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert(strstr(err, "added twice"), "%s", err);
	xsr_xs_builder_free(b);
	xsr_xs_builder_free(NULL);
}

Test(xenstore, toolstack_keys)
{
	static const char *const yes[] = {"device", "device/vbd/51712/state", "backend/vif/1", "console/ring-ref",
					  "store/port", "name", "domid", "vm", "cpu/0/availability", "memory/target",
					  "image/entry", "device-model/state", "control/shutdown", "control/sysrq"};
	static const char *const no[] = {"data", "data/xsrelf-marker", "control", "control/feature-balloon",
					 "devices", "consoles/x", "control/shutdownx", "attr/os", "namex"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert_eq(xsr_xs_toolstack_key(yes[i], strlen(yes[i])), 1, "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert_eq(xsr_xs_toolstack_key(no[i], strlen(no[i])), 0, "%s", no[i]);
}

/* ---- both layouts, every conversion, byte for byte ---- */

static const char libxl_body[] = "\2\0\0\0\0\0\0\0/x\0y\0"; /* libxl's: emulator 2, index 0, then pairs; opaque */

static void write_image(int fd, int layout, const void *xs, uint64_t xslen)
{
	static const struct xsr_memrun run = {.pfn = 0, .count = 2};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = 1, .nr_runs = 1, .runs = &run, .hypervisor = "xen"};
	struct xsr_writer *w;
	char err[256];
	static uint8_t page[4096];
	struct xsr_vcpu_state *v = calloc(1, sizeof(*v));
	memset(page, 0xab, sizeof(page));
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_XENSTORE, 0, libxl_body, sizeof(libxl_body)), 0, "%s",
		     xsr_writer_error(w));
	cr_assert_eq(xsr_writer_set_vcpu(w, v), 0, "%s", xsr_writer_error(w));
	const uint64_t pfn = 1;
	const void *pages[1] = {page};
	cr_assert_eq(xsr_writer_put_pages(w, &pfn, 1, pages), 0, "%s", xsr_writer_error(w));
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_XENSTORE, 0, xs, xslen), 0, "%s", xsr_writer_error(w));
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	free(v);
}

struct seen {
	const void *xs;
	uint64_t xslen;
	int domain, libxl;
};

static int on_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct seen *s = ctx;
	if ((rh->sh_type & XSR_SHT_CODE_MASK) != XSR_SEC_XENSTORE)
		return 0;
	cr_assert_eq(rh->sh_info, 0u);
	if (xsr_xs_is_subtree(body, rh->sh_size)) {
		cr_assert_eq(rh->sh_size, s->xslen);
		cr_assert_arr_eq(body, s->xs, s->xslen);
		s->domain++;
	} else {
		cr_assert_eq(rh->sh_size, sizeof(libxl_body));
		cr_assert_arr_eq(body, libxl_body, sizeof(libxl_body));
		s->libxl++;
	}
	return 0;
}

/* Both kinds come back exactly once and unchanged, through whichever reader @fd's layout takes. */
static void check_image(int fd, const void *xs, uint64_t xslen, const char *what)
{
	struct seen s = {.xs = xs, .xslen = xslen};
	struct xsr_replay_ops ops = {.size = sizeof(ops), .stream = {.section = on_section}};
	char err[256];
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(xsr_replay_fd(fd, &ops, &s, err, sizeof(err)), 0, "%s: %s", what, err);
	cr_assert_eq(s.domain, 1, "%s", what);
	cr_assert_eq(s.libxl, 1, "%s", what);
	struct xsr_image *img;
	if (xsr_image_open(&img, fd, err, sizeof(err)) == 0) {
		void *b;
		uint64_t l;
		cr_assert_eq(xsr_image_xenstore(img, &b, &l), 1, "%s: %s", what, xsr_image_error(img));
		cr_assert_eq(l, xslen);
		cr_assert_arr_eq(b, xs, xslen, "%s", what);
		free(b);
		xsr_image_close(img);
	}
}

Test(xenstore, both_layouts_and_conversions_byte_for_byte)
{
	void *xs;
	uint64_t xslen;
	char err[256];
	sample(&xs, &xslen);
	int a = memfd_create("xs-a", MFD_CLOEXEC), b = memfd_create("xs-b", MFD_CLOEXEC),
	    c = memfd_create("xs-c", MFD_CLOEXEC);
	cr_assert(a >= 0 && b >= 0 && c >= 0);
	for (int first = 0; first < 2; first++) {
		int l1 = first ? XSR_LAYOUT_STREAM : XSR_LAYOUT_SEEKABLE;
		int l2 = first ? XSR_LAYOUT_SEEKABLE : XSR_LAYOUT_STREAM;
		write_image(a, l1, xs, xslen);
		check_image(a, xs, xslen, first ? "written as a stream" : "written seekable");
		/* a -> the other layout -> back */
		struct xsr_convert_opts o = {.layout = (uint8_t)l2};
		cr_assert_eq(ftruncate(b, 0), 0);
		cr_assert_eq(lseek(a, 0, SEEK_SET), 0);
		cr_assert_eq(xsr_convert(a, b, &o, err, sizeof(err)), 0, "%s", err);
		check_image(b, xs, xslen, "converted once");
		o.layout = (uint8_t)l1;
		cr_assert_eq(ftruncate(c, 0), 0);
		cr_assert_eq(lseek(b, 0, SEEK_SET), 0);
		cr_assert_eq(lseek(c, 0, SEEK_SET), 0);
		cr_assert_eq(xsr_convert(b, c, &o, err, sizeof(err)), 0, "%s", err);
		check_image(c, xs, xslen, "converted there and back");
	}
	close(a);
	close(b);
	close(c);
	free(xs);
}

/* ---- limits and rules: at the limit accepted, one past refused, in the library and the readers ---- */

/* A one-node body built by hand, so that it can break every rule. */
static size_t one_node(uint8_t *buf, size_t cap, uint32_t path_len, uint32_t value_len, uint32_t nr_perms,
		       uint32_t perm)
{
	struct xsr_xs_head h = {.magic = XSR_XS_MAGIC, .version = XSR_XS_VERSION, .nr_nodes = 1, .domid = 3};
	struct xsr_xs_node n = {.path_len = (uint16_t)path_len, .nr_perms = (uint16_t)nr_perms, .value_len = value_len};
	size_t off = 0, raw = sizeof(n) + nr_perms * 8ull + path_len + value_len;
	size_t need = sizeof(h) + raw + ((8 - raw % 8) % 8);
	cr_assert_leq(need, cap);
	memset(buf, 0, need);
	memcpy(buf, &h, sizeof(h));
	off = sizeof(h);
	memcpy(buf + off, &n, sizeof(n));
	off += sizeof(n);
	for (uint32_t i = 0; i < nr_perms; i++) {
		struct xsr_xs_perm p = {.domid = i, .perm = perm};
		memcpy(buf + off, &p, sizeof(p));
		off += sizeof(p);
	}
	memset(buf + off, 'p', path_len);
	off += path_len;
	memset(buf + off, 'v', value_len);
	return need;
}

static uint8_t big[1 << 16];

Test(xenstore, limits_at_and_past)
{
	char err[256];
	size_t n;
	n = one_node(big, sizeof(big), XSR_XS_MAX_PATH, XSR_XS_MAX_VALUE, XSR_XS_MAX_PERMS, 3);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	/* one past: the path (a u16 field can say 3073), the value, the permissions */
	n = one_node(big, sizeof(big), XSR_XS_MAX_PATH + 1, 0, 1, 0);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert(strstr(err, "path of 3073 octets") && strstr(err, "offset 0x10"), "%s", err);
	n = one_node(big, sizeof(big), 1, XSR_XS_MAX_VALUE + 1, 1, 0);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert(strstr(err, "value of 4097 octets"), "%s", err);
	n = one_node(big, sizeof(big), 1, 0, XSR_XS_MAX_PERMS + 1, 0);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert(strstr(err, "1025 permissions"), "%s", err);
	n = one_node(big, sizeof(big), 1, 0, 0, 0);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	n = one_node(big, sizeof(big), 0, 0, 1, 0);
	cr_assert_eq(xsr_xs_check(big, n, NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	/* the node count: at the limit the head is taken (the nodes are then missing), one past refused at once */
	struct xsr_xs_head h = {.magic = XSR_XS_MAGIC, .version = XSR_XS_VERSION, .nr_nodes = XSR_XS_MAX_NODES};
	cr_assert_eq(xsr_xs_check(&h, sizeof(h), NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert(strstr(err, "the body ends"), "%s", err);
	h.nr_nodes = XSR_XS_MAX_NODES + 1;
	cr_assert_eq(xsr_xs_check(&h, sizeof(h), NULL, NULL, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert(strstr(err, "65537 nodes"), "%s", err);
	/* the builder holds the same limits */
	struct xsr_xs_builder *b;
	static char path[XSR_XS_MAX_PATH + 1], val[XSR_XS_MAX_VALUE + 1];
	memset(path, 'a', sizeof(path));
	cr_assert_eq(xsr_xs_builder_new(&b, 1), 0);
	cr_assert_eq(xsr_xs_builder_add(b, path, XSR_XS_MAX_PATH, val, XSR_XS_MAX_VALUE, owner5, 1, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(xsr_xs_builder_add(b, path, XSR_XS_MAX_PATH + 1, val, 0, owner5, 1, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert_eq(xsr_xs_builder_add(b, "x", 1, val, XSR_XS_MAX_VALUE + 1, owner5, 1, err, sizeof(err)), XSR_E_LIMIT);
	cr_assert_eq(xsr_xs_builder_add(b, "x", 1, val, 0, owner5, 0, err, sizeof(err)), XSR_E_LIMIT);
	xsr_xs_builder_free(b);
}

Test(xenstore, rules_refused_with_their_reason)
{
	char err[256];
	uint8_t buf[256];
	size_t n;
	static const struct {
		const char *path, *why;
	} bad[] = {{"/abs", "absolute"},     {"end/", "ending in /"},	       {"a//b", "empty path component"},
		   {"sp ace", "character"},  {"dot.dot", "character"},       {"nl\n", "character"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t pl = strlen(bad[i].path);
		n = one_node(buf, sizeof(buf), (uint32_t)pl, 0, 1, 0);
		memcpy(buf + 16 + 8 + 8, bad[i].path, pl);
		cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT, "%s", bad[i].path);
		cr_assert(strstr(err, bad[i].why), "%s: %s", bad[i].path, err);
		struct xsr_xs_builder *b;
		cr_assert_eq(xsr_xs_builder_new(&b, 1), 0);
		cr_assert_eq(xsr_xs_builder_add(b, bad[i].path, pl, "", 0, owner5, 1, err, sizeof(err)), XSR_E_FORMAT);
		xsr_xs_builder_free(b);
	}
	/* a permission bit beyond read and write */
	n = one_node(buf, sizeof(buf), 1, 0, 1, 4);
	cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert(strstr(err, "beyond read and write"), "%s", err);
	/* padding, reserved word, version, trailing octets, a short body */
	n = one_node(buf, sizeof(buf), 1, 0, 1, 0);
	buf[n - 1] = 1;
	cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert(strstr(err, "padding"), "%s", err);
	n = one_node(buf, sizeof(buf), 1, 0, 1, 0);
	buf[6] = 1; /* reserved */
	cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	buf[6] = 0;
	buf[4] = 2; /* version */
	cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_UNSUPPORTED);
	buf[4] = 1;
	buf[0] ^= 1; /* the magic: then it is not a subtree at all */
	cr_assert_eq(xsr_xs_is_subtree(buf, n), 0);
	cr_assert_eq(xsr_xs_check(buf, n, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	buf[0] ^= 1;
	cr_assert_eq(xsr_xs_is_subtree(buf, n), 1);
	memset(buf + n, 0, 8);
	cr_assert_eq(xsr_xs_check(buf, n + 8, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert(strstr(err, "after its 1 nodes"), "%s", err);
	cr_assert_eq(xsr_xs_check(buf, n - 8, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	cr_assert_eq(xsr_xs_check(buf, 15, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
	/* order: two nodes, the second not after the first (and a duplicate) */
	struct xsr_xs_head h = {.magic = XSR_XS_MAGIC, .version = 1, .nr_nodes = 2};
	struct xsr_xs_node nd = {.path_len = 1, .nr_perms = 1};
	struct xsr_xs_perm p = {0, 0};
	for (int dup = 0; dup < 2; dup++) {
		memset(buf, 0, sizeof(buf));
		memcpy(buf, &h, 16);
		memcpy(buf + 16, &nd, 8);
		memcpy(buf + 24, &p, 8);
		buf[32] = 'b';
		memcpy(buf + 40, &nd, 8);
		memcpy(buf + 48, &p, 8);
		buf[56] = dup ? 'b' : 'a';
		cr_assert_eq(xsr_xs_check(buf, 64, NULL, NULL, err, sizeof(err)), XSR_E_FORMAT);
		cr_assert(strstr(err, "not after the one before") && strstr(err, "node 1 at offset 0x28"), "%s", err);
	}
}

/*
 * The readers call the same walk: a subtree body that breaks a rule is
 * refused in both layouts, naming the section; libxl's kind, any octets, is not.
 */
Test(xenstore, readers_refuse_a_bad_body)
{
	char err[256];
	uint8_t buf[64];
	size_t n = one_node(buf, sizeof(buf), 1, 0, 1, 0);
	buf[n - 1] = 7; /* padding */
	int fd = memfd_create("xs-bad", MFD_CLOEXEC);
	for (int layout = XSR_LAYOUT_SEEKABLE; layout <= XSR_LAYOUT_STREAM; layout++) {
		for (int kind = 0; kind < 2; kind++) {
			static const struct xsr_memrun run = {.pfn = 0, .count = 1};
			struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE,
						      .layout = (uint8_t)layout, .nr_vcpus = 1, .nr_runs = 1,
						      .runs = &run, .hypervisor = "xen"};
			struct xsr_writer *w;
			struct xsr_vcpu_state *v = calloc(1, sizeof(*v));
			cr_assert_eq(ftruncate(fd, 0), 0);
			cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
			cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
			cr_assert_eq(xsr_writer_set_vcpu(w, v), 0);
			/* kind 1: the same octets but the first, which make it libxl's opaque kind */
			if (kind)
				buf[0] = 2;
			cr_assert_eq(xsr_writer_add(w, XSR_SEC_XENSTORE, 0, buf, n), 0);
			buf[0] = (uint8_t)(XSR_XS_MAGIC & 0xff);
			cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
			free(v);
			struct xsr_replay_ops ops = {.size = sizeof(ops)};
			cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
			int rc = xsr_replay_fd(fd, &ops, NULL, err, sizeof(err));
			if (kind) {
				cr_assert_eq(rc, 0, "layout %d: libxl's kind refused: %s", layout, err);
				continue;
			}
			cr_assert_eq(rc, XSR_E_FORMAT, "layout %d: %d %s", layout, rc, err);
			cr_assert(strstr(err, "padding") && strstr(err, "xenstore"), "layout %d: %s", layout, err);
		}
	}
	close(fd);
}
