/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr import: a Xen save file, stream or dump, a QEMU migration stream,
 * a `virsh save` file or a QEMU dump-guest-memory file (ELF or kdump) -> an
 * xsrelf image.  The conversions are the library's (xsrelf/xen.h,
 * xsrelf/qemu.h, xsrelf/libvirt.h, xsrelf/qemu_dump.h), told apart by the
 * input's content; this is the verb around it:
 * options, the input (a pipe is spooled to a temporary file: the import
 * reads its input twice), the output file, messages and progress.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/libvirt.h>
#include <xsrelf/qemu.h>
#include <xsrelf/qemu_dump.h>
#include <xsrelf/xen.h>

#include "../save/save.h"
#include "cli.h"

/* Copy a pipe or other unseekable input to an unlinked temporary file. */
static int spool(int in)
{
	char tmpl[] = "/tmp/xsr-import-XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return -1;
	unlink(tmpl);
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			return fd;
		for (ssize_t o = 0; o < n;) {
			ssize_t m = write(fd, buf + o, (size_t)(n - o));
			if (m <= 0) {
				close(fd);
				return -1;
			}
			o += m;
		}
	}
}

/* The library's notes (the test hooks' "follow test: ..."), as notes of the verb. */
static void import_note(void *ctx, const char *msg)
{
	cli_note("import", "%s", msg);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr import [--layout seekable|stream] [--ram-below-4g SIZE] [--max-stream SIZE|none] IN OUT\n\n"
		   "Read an xl save file, a libxl v2 or libxc v2/v3 migration stream, an\n"
		   "xl dump-core (xc_core) file, or a QEMU migration stream (version 3, as\n"
		   "migrate \"exec:cat > FILE\" writes it), or a virsh save file (raw, gzip,\n"
		   "bzip2, xz, lzop or zstd), or a QEMU dump-guest-memory file (an ELF core,\n"
		   "paging or not, or kdump-zlib/-lzo/-snappy, flattened or not; also what\n"
		   "virsh dump --memory-only writes) ('-' = stdin) and write it as an\n"
		   "xsrelf image: seekable unless --layout stream (or --stream) or OUT is\n"
		   "'-', a FIFO or a device.  Every record is kept: export gives the Xen\n"
		   "records back.  QEMU's pc.ram becomes guest-physical memory where the\n"
		   "machine type puts it (xsr info shows it); --ram-below-4g SIZE says where\n"
		   "pc.ram stops below 4 GiB instead (QEMU's max-ram-below-4g).  A dump\n"
		   "becomes a crash core: its pages by physical address (pages it left out\n"
		   "are absent), its vCPUs' registers and its VMCOREINFO.  A compressed\n"
		   "virsh save is inflated into a temporary file in $TMPDIR, at most twice\n"
		   "the RAM its stream declares plus 256 MiB (64 GiB if it declares none):\n"
		   "--max-stream SIZE sets that bound, none lifts it.  On a\n"
		   "terminal, progress is shown on stderr.  See docs/xen-compat.md and\n"
		   "docs/qemu-compat.md.\n"
		   XSR_COMMON_HELP);
}

/* IN as a regular file: itself, or a spooled copy of a pipe; -1 with the message printed. */
static int open_input(const char *in, struct stat *sb)
{
	int fd = cli_open_in("import", in);
	if (fd < 0)
		return -1;
	if (fstat(fd, sb) == 0 && S_ISREG(sb->st_mode))
		return fd;
	int t = spool(fd);
	if (fd != STDIN_FILENO)
		close(fd);
	if (t < 0 || fstat(t, sb) < 0) {
		cli_err("import", "%s: cannot copy the input to a temporary file", in);
		if (t >= 0)
			close(t);
		return -1;
	}
	return t;
}

/*
 * A QEMU migration stream starts with "QEVM", a virsh save file with
 * "LibvirtQemudSave" (or "LibvirtQemudPart", which the library refuses as
 * incomplete), a dump-guest-memory file with "KDUMP   ", "makedumpfile" or
 * is an ELF core with QEMU's notes (xsr_qemu_dump_detect_fd); everything
 * else goes to the Xen module, which names its kinds.
 */
enum { IN_XEN, IN_QEMU, IN_LIBVIRT, IN_DUMP };
static int input_kind(int fd)
{
	char m[16];
	ssize_t n = pread(fd, m, sizeof(m), 0);
	if (n >= 4 && !memcmp(m, "QEVM", 4))
		return IN_QEMU;
	if (n == (ssize_t)sizeof(m) && (!memcmp(m, XSR_LIBVIRT_SAVE_MAGIC, 16) || !memcmp(m, XSR_LIBVIRT_SAVE_PARTIAL, 16)))
		return IN_LIBVIRT;
	int k = xsr_qemu_dump_detect_fd(fd);
	return k < 0 ? k : k != XSR_QEMU_DUMP_NONE ? IN_DUMP : IN_XEN;
}

static void qemu_detail(const struct xsr_qemu_import_stats *qs)
{
	cli_detail("import", "QEMU stream, machine %s: %u vCPU(s), %llu pc.ram pages (%llu page entries, "
			     "%llu resent), %u device sections, %u RAM blocks",
		   cli_esc(qs->machine, sizeof(qs->machine)), qs->nr_vcpus, (unsigned long long)qs->nr_pages,
		   (unsigned long long)qs->page_entries, (unsigned long long)qs->resent, qs->nr_sections, qs->nr_blocks);
}

static void dump_detail(const struct xsr_qemu_dump_import_stats *ds)
{
	cli_detail("import", "QEMU dump-guest-memory %s%s: %u vCPU(s), %llu pages present in %u run(s) (%llu zero), %u notes%s",
		   ds->format, ds->paging ? " (paging)" : "", ds->nr_vcpus, (unsigned long long)ds->nr_pages, ds->nr_runs,
		   (unsigned long long)ds->zero_pages, ds->nr_notes, ds->vmcoreinfo_len ? ", VMCOREINFO" : "");
	if (ds->kind != XSR_QEMU_DUMP_ELF)
		cli_detail("import", "kdump header version %u, dump level %u, %llu page(s) excluded; pages raw %llu, zlib %llu, "
				     "lzo %llu, snappy %llu, zstd %llu; %u flattened chunk(s)",
			   ds->header_version, ds->dump_level, (unsigned long long)ds->excluded, (unsigned long long)ds->raw,
			   (unsigned long long)ds->zlib, (unsigned long long)ds->lzo, (unsigned long long)ds->snappy,
			   (unsigned long long)ds->zstd, ds->nr_chunks);
}

int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {{"layout", required_argument, 0, 'L'}, {"stream", no_argument, 0, 'S'},
					     {"ram-below-4g", required_argument, 0, 'B'}, {"max-stream", required_argument, 0, 'M'}, {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int layout = 0, c;
	int64_t below = 0;
	uint64_t max_stream = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'S': layout = XSR_LAYOUT_STREAM; break;
		case 'B':
			if ((below = cli_parse_size(optarg)) <= 0 || below % 4096 || below > (INT64_C(1) << 32)) {
				cli_err("import", "--ram-below-4g %s: need a multiple of 4 KiB, at most 4G", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		case 'M':
			if (!strcmp(optarg, "none"))
				max_stream = XSR_LIBVIRT_NO_MAX_STREAM;
			else {
				int64_t m = cli_parse_size(optarg);
				if (m <= 0) {
					cli_err("import", "--max-stream %s: need a size (4G, 512M, ...) or none", optarg);
					return XSR_EXIT_USAGE;
				}
				max_stream = (uint64_t)m;
			}
			break;
		case 'L':
			if ((layout = cli_parse_layout("import", "--layout", optarg)) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	const char *in = argv[optind], *outp = argv[optind + 1];
	if (layout == XSR_LAYOUT_SEEKABLE && !cli_out_regular(outp)) {
		cli_err("import", "%s: a seekable image needs a regular file", outp);
		return XSR_EXIT_USAGE;
	}
	struct stat sb;
	int fd = open_input(in, &sb);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	int ret = XSR_EXIT_FAIL;
	struct xsr_outfile out = {.fd = -1};
	char err[1024] = "";
	if (cli_out_open(&out, "import", outp) < 0)
		goto done;
	int stream = layout == XSR_LAYOUT_STREAM || cli_out_streamed(&out);
	struct xsr_progress pg;
	cli_progress_init(&pg, "import", "pages", 0);
	cli_detail("import", "%s (%lld octets) -> %s, %s layout", in, (long long)sb.st_size, outp,
		   stream ? "streamed" : "seekable");
	uint64_t t0 = util_now_ns();
	struct xsr_foreign_cb cb = {.progress = util_progress_cb, .progress_ctx = &pg, .note = import_note};
	int irc, kind = input_kind(fd);
	struct xsr_qemu_import_opts q = {.cb = cb, .layout = stream ? XSR_LAYOUT_STREAM : 0, .ram_below_4g = (uint64_t)below};
	if (kind < 0) {
		snprintf(err, sizeof(err), "reading the start of the input, to tell its format: %s", xsr_strerror(kind));
		irc = kind;
	} else if (kind == IN_QEMU) {
		struct xsr_qemu_import_stats qs;
		irc = xsr_qemu_import_fd(fd, out.fd, &q, &qs, err, sizeof(err));
		if (irc == 0)
			qemu_detail(&qs);
	} else if (kind == IN_LIBVIRT) {
		struct xsr_libvirt_import_opts lo = {.qemu = q, .max_stream = max_stream};
		struct xsr_libvirt_import_stats ls;
		irc = xsr_libvirt_import_fd(fd, out.fd, &lo, &ls, err, sizeof(err));
		if (irc == 0) {
			cli_detail("import", "virsh save file version %u, %s, domain '%s' (uuid %s), %s; QEMU stream of %llu "
					     "octets at offset 0x%llx",
				   ls.version, xsr_libvirt_compress_name(ls.compressed), cli_esc(ls.domain, sizeof(ls.domain)),
				   cli_esc(ls.uuid, sizeof(ls.uuid)), ls.was_running ? "was running" : "was paused",
				   (unsigned long long)ls.stream_size, (unsigned long long)ls.stream_offset);
			qemu_detail(&ls.qemu);
		}
	} else if (kind == IN_DUMP && !below) {
		struct xsr_qemu_dump_import_opts d = {.cb = cb, .layout = stream ? XSR_LAYOUT_STREAM : 0};
		struct xsr_qemu_dump_import_stats ds;
		irc = xsr_qemu_dump_import_fd(fd, out.fd, &d, &ds, err, sizeof(err));
		if (irc == 0)
			dump_detail(&ds);
	} else if (below) {
		cli_err("import", "%s: --ram-below-4g is for QEMU streams only", in);
		cli_out_abort(&out);
		goto done;
	} else {
		struct xsr_xen_import_opts o = {
			.cb = cb, .layout = stream ? XSR_LAYOUT_STREAM : 0, /* 0: seekable in out's temporary file */
		};
		irc = xsr_xen_import_fd(fd, out.fd, &o, NULL, err, sizeof(err));
	}
	util_progress_end(&pg);
	if (irc < 0) {
		cli_err("import", "%s -> %s: %s", in, outp, err);
		cli_out_abort(&out);
		goto done;
	}
	off_t size = cli_out_streamed(&out) ? -1 : lseek(out.fd, 0, SEEK_END);
	if (cli_out_commit(&out, "import") < 0)
		goto done;
	cli_detail("import", "%s: %lld octets in %.1f ms", outp, (long long)size, (util_now_ns() - t0) / 1e6);
	ret = XSR_EXIT_OK;
done:
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}
