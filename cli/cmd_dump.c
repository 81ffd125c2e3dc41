/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr dump: guest memory from an image to stdout, by guest-physical address,
 * or by guest-virtual address through a vCPU's page tables (the library's
 * walker, xsr_paging_translate()).  Output goes a page at a time: memory does
 * not depend on --len.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/paging.h>

#include "cli.h"
#include "inspect.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr dump --paddr ADDR --len N [options] FILE\n"
		   "       xsr dump --vaddr ADDR --len N [--vcpu N | --cr3 X] [options] FILE\n"
		   "options: --hex | --force | --json, --fill, --quiet | --verbose\n\n"
		   "Write N octets of guest memory from an image (either layout; '-' reads\n"
		   "standard input) to stdout, from guest-physical ADDR, or from guest-virtual\n"
		   "ADDR translated page by page through vCPU N's page tables (default vCPU 0;\n"
		   "--cr3 X walks the tables at X instead, with that vCPU's paging mode).\n"
		   "Every page read is checked against its checksum.  A page the image does not\n"
		   "hold, or an address the tables do not map, is an error before anything is\n"
		   "written, unless --fill, which reads it as zeros.  N may be any size (K, M, G\n"
		   "suffixes): the output is streamed.  Binary output to a terminal is refused:\n"
		   "--hex prints a hexdump (address, 16 octets, ASCII), --force writes anyway,\n"
		   "--json prints {\"address\", \"len\", \"data\": hex}.  --verbose shows each\n"
		   "page's translation on stderr.  Exit 0, 2 usage, 3 unreadable or not held.\n");
}

struct dump {
	struct xsr_image *img;
	const char *file;
	bool virt, fill, hex, json;
	uint64_t addr, len;
	struct xsr_x86_vcpu r; /* whose tables (virt) */
	/* table pages recently read: a walk reads 4 or 5 of them, mostly the same ones */
	struct {
		uint64_t pfn; /* + 1; 0 = empty */
		uint8_t data[4096];
	} cache[8];
	/* hexdump: the line being filled */
	uint8_t line[16];
	unsigned fill_n;
	uint64_t line_addr;
	char err[512];
};

/* The page-table reader for xsr_paging_translate(): verified pages, through the cache. */
static int read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct dump *d = ctx;
	uint8_t *out = buf;
	while (len) {
		uint64_t pfn = paddr >> XSR_PAGE_SHIFT, off = paddr & (XSR_PAGE_SIZE - 1);
		size_t n = XSR_PAGE_SIZE - off < len ? (size_t)(XSR_PAGE_SIZE - off) : len;
		unsigned slot = (unsigned)(pfn % 8);
		if (d->cache[slot].pfn != pfn + 1) {
			d->cache[slot].pfn = 0;
			if (xsr_image_read_page(d->img, pfn, d->cache[slot].data, NULL) < 0)
				return XSR_E_RANGE;
			d->cache[slot].pfn = pfn + 1;
		}
		memcpy(out, d->cache[slot].data + off, n);
		out += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

/*
 * Where the page of @addr lies: *paddr, and *held = whether the image holds
 * it.  0; or 1, with the reason in d->err, for an address that is not
 * mapped or not held; or <0 for a failure --fill does not excuse.
 */
static int locate(struct dump *d, uint64_t addr, uint64_t *paddr, bool *held)
{
	*held = false;
	*paddr = addr;
	if (d->virt) {
		uint64_t ent[5];
		int levels, rc = xsr_paging_translate(&d->r, addr, read_phys, d, paddr, ent,
						      &levels, d->err, sizeof(d->err));
		if (rc == XSR_E_RANGE)
			return 1;
		if (rc < 0)
			return rc;
	}
	struct xsr_index_entry e;
	int rc = xsr_image_page_entry(d->img, *paddr >> XSR_PAGE_SHIFT, &e);
	if (rc == XSR_E_RANGE) {
		snprintf(d->err, sizeof(d->err),
			 "%sguest-physical 0x%llx (pfn 0x%llx) is not in the image",
			 d->virt ? "mapped to " : "", (unsigned long long)*paddr,
			 (unsigned long long)(*paddr >> XSR_PAGE_SHIFT));
		return 1;
	}
	if (rc < 0) {
		snprintf(d->err, sizeof(d->err), "%s", xsr_image_error(d->img));
		return rc;
	}
	*held = true;
	return 0;
}

static void hex_line(struct dump *d)
{
	printf("%016llx ", (unsigned long long)d->line_addr);
	for (unsigned i = 0; i < 16; i++) {
		if (i < d->fill_n)
			printf("%s %02x", i == 8 ? " " : "", d->line[i]);
		else
			printf("%s   ", i == 8 ? " " : "");
	}
	printf("  |");
	for (unsigned i = 0; i < d->fill_n; i++)
		putchar(isprint(d->line[i]) && d->line[i] < 0x7f ? d->line[i] : '.');
	printf("|\n");
	d->line_addr += d->fill_n;
	d->fill_n = 0;
}

static void out_bytes(struct dump *d, const uint8_t *p, size_t n)
{
	if (d->json) {
		for (size_t i = 0; i < n; i++)
			printf("%02x", p[i]);
	} else if (d->hex) {
		for (size_t i = 0; i < n; i++) {
			d->line[d->fill_n++] = p[i];
			if (d->fill_n == 16)
				hex_line(d);
		}
	} else {
		fwrite(p, 1, n, stdout);
	}
}

/*
 * One pass over the range, a page at a time.  @write 0: only check that every
 * page is mapped and held (so that nothing is written before an error);
 * @write 1: write.  0 or an exit status, the reason printed.
 */
static int pass(struct dump *d, bool write)
{
	static uint8_t page[4096];
	uint64_t addr = d->addr, left = d->len;
	d->line_addr = d->addr;
	while (left) {
		uint64_t off = addr & (XSR_PAGE_SIZE - 1), paddr;
		size_t n =
		    XSR_PAGE_SIZE - off < left ? (size_t)(XSR_PAGE_SIZE - off) : (size_t)left;
		bool held;
		int rc = locate(d, addr, &paddr, &held);
		if (rc < 0 || (rc > 0 && !d->fill)) {
			cli_err("dump", "%s: %s%s", d->file, d->err,
				rc > 0 ? " (--fill reads what is not there as zeros)" : "");
			return XSR_EXIT_FAIL;
		}
		if (write) {
			if (cli_verbosity > 0 && d->virt && (off == 0 || addr == d->addr))
				fprintf(stderr, "xsr dump: virtual 0x%llx -> %s 0x%llx\n",
					(unsigned long long)addr, rc ? "(zeros)" : "physical",
					(unsigned long long)(rc ? 0 : paddr));
			if (!held)
				memset(page, 0, sizeof(page));
			else if (xsr_image_read_page(d->img, paddr >> XSR_PAGE_SHIFT, page, NULL) <
				 0) {
				cli_err("dump", "%s: %s", d->file, xsr_image_error(d->img));
				return XSR_EXIT_FAIL;
			}
			out_bytes(d, page + (held ? (paddr & (XSR_PAGE_SIZE - 1)) : 0), n);
			if (ferror(stdout))
				return XSR_EXIT_FAIL; /* main() says why */
		}
		addr += n;
		left -= n;
	}
	if (write && d->hex && d->fill_n)
		hex_line(d);
	return 0;
}

/* The range to stdout, in a JSON object with --json.  0 or an exit status. */
static int write_range(struct dump *d, uint32_t vcpu)
{
	if (d->json) {
		printf("{\"file\": ");
		cli_json_str(stdout, d->file);
		printf(", \"space\": \"%s\", \"address\": ", d->virt ? "virtual" : "physical");
		cli_json_hex(stdout, d->addr);
		if (d->virt)
			printf(", \"vcpu\": %u, \"cr3\": \"0x%llx\"", vcpu,
			       (unsigned long long)d->r.cr3);
		printf(", \"len\": ");
		cli_json_dec(stdout, d->len);
		printf(", \"data\": \"");
	}
	int rc = pass(d, true);
	if (d->json && !rc)
		printf("\"}\n");
	return rc;
}

/* The vCPU whose tables --vaddr walks, with --cr3 when given.  0 or an exit status. */
static int setup_virt(struct dump *d, uint32_t vcpu, bool have_cr3, uint64_t cr3)
{
	struct xsr_section_info si;
	const struct xsr_file_header *h = xsr_image_header(d->img);
	if (h->kind == XSR_KIND_CORE && xsr_image_find(d->img, XSR_SEC_P2M, ~0u, &si) >= 0) {
		cli_err("dump",
			"%s: a Xen PV core's page tables hold machine frames: --vaddr cannot walk "
			"them; "
			"translate with gdb or crash, then use --paddr",
			d->file);
		return XSR_EXIT_FAIL;
	}
	if (vcpu >= h->nr_vcpus) {
		cli_err("dump", "%s: no vCPU %u (the image has %u)", d->file, vcpu, h->nr_vcpus);
		return XSR_EXIT_FAIL;
	}
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	if (!st || xsr_image_vcpu(d->img, vcpu, st) < 0) {
		cli_err("dump", "%s: %s", d->file, st ? xsr_image_error(d->img) : "out of memory");
		free(st);
		return XSR_EXIT_FAIL;
	}
	d->r = st->r;
	free(st);
	if (have_cr3)
		d->r.cr3 = cr3;
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"paddr", required_argument, 0, 'p'},
	    {"vaddr", required_argument, 0, 'V'},
	    {"len", required_argument, 0, 'l'},
	    {"vcpu", required_argument, 0, 'c'},
	    {"cr3", required_argument, 0, '3'},
	    {"hex", no_argument, 0, 'x'},
	    {"force", no_argument, 0, 'f'},
	    {"fill", no_argument, 0, 'z'},
	    {"json", no_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},
	    XSR_COMMON_OPTS,
	    {0, 0, 0, 0},
	};
	struct dump *d = calloc(1, sizeof(*d));
	bool have_p = false, have_v = false, have_len = false, have_vcpu = false, have_cr3 = false,
	     force = false;
	uint32_t vcpu = 0;
	uint64_t cr3 = 0;
	int c, rc = XSR_EXIT_USAGE;
	if (!d) {
		cli_err("dump", "out of memory");
		return XSR_EXIT_FAIL;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'V':
			if (cli_parse_u64("dump", c == 'p' ? "--paddr" : "--vaddr", optarg,
					  &d->addr) < 0)
				goto out;
			*(c == 'p' ? &have_p : &have_v) = true;
			break;
		case 'l': {
			int64_t n = cli_parse_size(optarg);
			if (n <= 0) {
				cli_err("dump",
					"--len %s: need a length from 1 (K, M, G suffixes allowed)",
					optarg);
				goto out;
			}
			d->len = (uint64_t)n;
			have_len = true;
			break;
		}
		case 'c':
			if (cli_parse_vcpu("dump", "--vcpu", optarg, &vcpu) < 0)
				goto out;
			have_vcpu = true;
			break;
		case '3':
			if (cli_parse_u64("dump", "--cr3", optarg, &cr3) < 0)
				goto out;
			have_cr3 = true;
			break;
		case 'x':
			d->hex = true;
			break;
		case 'f':
			force = true;
			break;
		case 'z':
			d->fill = true;
			break;
		case 'j':
			d->json = true;
			break;
		case 'h':
			usage(stdout);
			rc = XSR_EXIT_OK;
			goto out;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc - 1 || have_p == have_v || !have_len) {
		cli_err("dump", "need FILE, one of --paddr and --vaddr, and --len");
		usage(stderr);
		goto out;
	}
	if ((have_vcpu || have_cr3) && !have_v) {
		cli_err("dump", "--vcpu and --cr3 choose page tables: they go with --vaddr");
		goto out;
	}
	if (d->hex + d->json + force > 1) {
		cli_err("dump", "--hex, --json and --force: choose one");
		goto out;
	}
	if (d->addr + d->len < d->addr && d->addr + d->len != 0) {
		cli_err("dump",
			"0x%llx + --len %llu: the range passes the end of the 64-bit address space",
			(unsigned long long)d->addr, (unsigned long long)d->len);
		goto out;
	}
	if (!d->hex && !d->json && !force && isatty(STDOUT_FILENO)) {
		cli_err("dump", "refusing to write binary memory to a terminal: redirect stdout, "
				"or --hex, or --force");
		goto out;
	}
	d->virt = have_v;
	d->file = argv[optind];
	struct xsr_anyimg a;
	if (cli_anyimg_open(&a, "dump", d->file, cli_verbosity > 0)) {
		rc = XSR_EXIT_FAIL;
		goto out;
	}
	d->img = a.img;
	rc = d->virt ? setup_virt(d, vcpu, have_cr3, cr3) : 0;
	if (!rc && !d->fill)
		rc = pass(d, false);
	if (!rc)
		rc = write_range(d, vcpu);
	cli_anyimg_close(&a);
out:
	free(d);
	return rc;
}
