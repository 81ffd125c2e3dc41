/*
 * Where the writer puts an image (issue 15, finding 11): the seekable layout
 * reads its page index back, so the fd decides it only when it is a regular
 * file open read-write, not in append mode, at offset 0.  Stdout redirected to
 * a file (write-only) gets a stream instead of failing after writing it all.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);

static const struct xsr_memrun ORUNS[] = {{0, 32}};

/* An image of 32 pages (every fourth zero) and one vCPU on @fd; returns xsr_writer_open()'s code. */
static int put_image(int fd, int layout, struct xsr_writer_stats *st)
{
	char err[256];
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = 1, .nr_runs = 1, .runs = ORUNS, .hypervisor = "test"};
	int rc = xsr_writer_open(&w, fd, &p, err, sizeof(err));
	if (rc < 0)
		return rc;
	static uint8_t pages[32][4096];
	uint64_t pfns[32];
	const void *ptr[32];
	for (int i = 0; i < 32; i++) {
		pfns[i] = (uint64_t)i;
		memset(pages[i], i + 1, 4096);
		ptr[i] = i % 4 ? pages[i] : NULL;
	}
	cr_assert_eq(xsr_writer_put_pages(w, pfns, 32, ptr), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	cr_assert_eq(xsr_writer_close_stats(w, st, err, sizeof(err)), 0, "%s", err);
	return 0;
}

static int layout_of(const char *path)
{
	uint8_t hdr[XSR_HEADER_END];
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);
	return xsr_sniff_layout(hdr, sizeof(hdr));
}

static void check_size(const char *path, const struct xsr_writer_stats *st)
{
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(st->bytes, (uint64_t)sb.st_size, "stats say %llu octets, the file has %llu",
		     (unsigned long long)st->bytes, (unsigned long long)sb.st_size);
}

Test(output, write_only_regular_file_gets_a_stream)
{
	char path[] = "/tmp/xsr-unit-out-XXXXXX";
	struct xsr_writer_stats st;
	close(mkstemp(path));
	int fd = open(path, O_WRONLY | O_TRUNC); /* what `xsr save vm:S - > FILE` hands the writer */
	cr_assert(fd >= 0);
	cr_assert_eq(put_image(fd, 0, &st), 0);
	close(fd);
	cr_assert_eq(layout_of(path), XSR_LAYOUT_STREAM);
	check_size(path, &st);
	unlink(path);
}

Test(output, append_mode_gets_a_stream)
{
	char path[] = "/tmp/xsr-unit-out-XXXXXX";
	struct xsr_writer_stats st;
	close(mkstemp(path));
	int fd = open(path, O_RDWR | O_APPEND);
	cr_assert(fd >= 0);
	cr_assert_eq(put_image(fd, 0, &st), 0);
	close(fd);
	cr_assert_eq(layout_of(path), XSR_LAYOUT_STREAM);
	unlink(path);
}

Test(output, seekable_asked_of_a_write_only_fd_is_refused_up_front)
{
	char path[] = "/tmp/xsr-unit-out-XXXXXX";
	close(mkstemp(path));
	int fd = open(path, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(put_image(fd, XSR_LAYOUT_SEEKABLE, NULL), XSR_E_INVAL);
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(sb.st_size, 0, "nothing is written before the refusal");
	close(fd);
	unlink(path);
}

Test(output, read_write_file_is_seekable_and_stats_give_its_size)
{
	char path[] = "/tmp/xsr-unit-out-XXXXXX";
	struct xsr_writer_stats st;
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(put_image(fd, 0, &st), 0);
	close(fd);
	cr_assert_eq(layout_of(path), XSR_LAYOUT_SEEKABLE);
	check_size(path, &st); /* zero pages are holes, but part of the size */
	fd = open(path, O_RDWR | O_TRUNC);
	cr_assert_eq(put_image(fd, XSR_LAYOUT_STREAM, &st), 0);
	close(fd);
	check_size(path, &st); /* the NOTES and END records that close writes are counted */
	unlink(path);
}
