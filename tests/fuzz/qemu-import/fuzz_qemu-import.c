/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU import and export: migration streams v3 through the library's entry
 * point (xsrelf/qemu.h) on the input's octets in memory, and every image
 * imported back out through xsr_qemu_export (the only target that reaches
 * qemu_export.c).  Oracles: an image the import writes must verify intact;
 * it must export (it came from a QEMU stream, so it has every item the
 * export needs); and the exported stream must import again with the same
 * pc.ram pages, vCPUs and device sections.  The shared-memory path's pair
 * too: every imported image must export as the stream of a destination
 * with x-ignore-shared (xsr_qemu_export_shared), and that stream must
 * import through xsr_qemu_import_shared_fd, pc.ram from a memfd of its
 * size (zeros), as the same guest.
 */
#include <stdio.h>

#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>

#include "../common.h"

/* a claimed pc.ram costs its page slots in the output: keep what the fuzzer may claim small */
static const struct xsr_qemu_import_opts opts = {.max_ram = 256u * 4096};

static void export_back(struct xsr_image *img, const struct xsr_qemu_import_stats *st)
{
	char err[512];
	struct xsr_qemu_export_stats es;
	int out = fuzz_outfd(1);
	if (xsr_qemu_export(img, out, NULL, &es, err, sizeof(err)) < 0) {
		fprintf(stderr, "an imported image does not export: %s\n", err);
		abort();
	}
	/* the exported stream, read back from its memfd, imports as the same guest */
	struct xsr_qemu_import_stats st2;
	int again = fuzz_outfd(2);
	if (xsr_qemu_import_fd(out, again, &opts, &st2, err, sizeof(err)) < 0) {
		fprintf(stderr, "the exported stream does not import: %s\n", err);
		abort();
	}
	if (st2.nr_pages != st->nr_pages || st2.nr_vcpus != st->nr_vcpus || st2.nr_sections != st->nr_sections ||
	    st2.nr_blocks != st->nr_blocks) {
		fprintf(stderr, "the exported stream imports as another guest: pages %llu/%llu vcpus %u/%u sections %u/%u\n",
			(unsigned long long)st2.nr_pages, (unsigned long long)st->nr_pages, st2.nr_vcpus, st->nr_vcpus,
			st2.nr_sections, st->nr_sections);
		abort();
	}
}

static void export_shared_back(struct xsr_image *img, const struct xsr_qemu_import_stats *st)
{
	char err[512];
	int out = fuzz_outfd(1);
	if (xsr_qemu_export_shared(img, out, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "an imported image does not export for x-ignore-shared: %s\n", err);
		abort();
	}
	int ram = fuzz_outfd(3);
	if (ftruncate(ram, (off_t)(st->nr_pages * 4096)) < 0)
		abort();
	struct xsr_qemu_import_stats st2;
	if (xsr_qemu_import_shared_fd(out, ram, st->nr_pages * 4096, fuzz_outfd(2), &opts, &st2, err, sizeof(err)) < 0) {
		fprintf(stderr, "the x-ignore-shared stream does not import with its shared memory: %s\n", err);
		abort();
	}
	if (st2.nr_pages != st->nr_pages || st2.nr_vcpus != st->nr_vcpus || st2.nr_sections != st->nr_sections ||
	    st2.nr_blocks != st->nr_blocks) {
		fprintf(stderr, "the x-ignore-shared stream imports as another guest\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	int out = fuzz_outfd(0);
	struct xsr_qemu_import_stats st;
	if (xsr_qemu_import_mem(data, size, out, &opts, &st, err, sizeof(err)) == 0) {
		struct xsr_image *img;
		if (xsr_image_open(&img, out, err, sizeof(err)) < 0) {
			fprintf(stderr, "imported image does not open: %s\n", err);
			abort();
		}
		if (xsr_image_verify(img, NULL, NULL) < 0) {
			fprintf(stderr, "imported image does not verify: %s\n", xsr_image_error(img));
			abort();
		}
		export_back(img, &st);
		export_shared_back(img, &st);
		xsr_image_close(img);
	}
	return 0;
}
