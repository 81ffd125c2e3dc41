/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the libFuzzer targets: the input as an fd, nothing on disk. */
#ifndef XSR_FUZZ_COMMON_H
#define XSR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * A memfd holding @data: a regular file, as the seekable reader requires.
 * One per process, refilled for each input and never closed by the target:
 * a new memfd per execution costs its creation, a page allocation and
 * clearing for every 4 KiB written, and their release at close, which is
 * more than the parsing of a small input.  A seekable reader maps the file,
 * so its content is replaced only once that mapping is gone (the targets
 * close every handle before returning).
 */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0 && (fd = memfd_create("xsr-fuzz", MFD_CLOEXEC)) < 0)
		abort();
	size_t done = 0;
	while (done < size) {
		ssize_t r = pwrite(fd, data + done, size - done, (off_t)done);
		if (r <= 0)
			abort();
		done += (size_t)r;
	}
	if (ftruncate(fd, (off_t)size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

/* An empty memfd for output, one per @slot (0..3) and process, like fuzz_memfd's. */
static inline int fuzz_outfd(int slot)
{
	static int fds[4] = {-1, -1, -1, -1};
	if (fds[slot] < 0 && (fds[slot] = memfd_create("xsr-fuzz-out", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fds[slot], 0) < 0 || lseek(fds[slot], 0, SEEK_SET) < 0)
		abort();
	return fds[slot];
}

/*
 * No second thread (a conversion's read-ahead, in the targets that convert):
 * a thread per execution, and a process whose threads have run on both
 * CPUs pays a TLB shootdown (an IPI) on every munmap after.  The checks
 * are the same without it.  (The writer's hashing thread, which this was
 * first for, is gone.)
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("XSR_NO_HASH_THREAD", "1", 1);
	return 0;
}

/*
 * Touch every octet so that ASan sees any out-of-bounds callback buffer.
 * Eight octets a load (ASan checks the first and last octet of each), and
 * not instrumented for coverage: the loop's comparisons are not the code
 * under test, and a traced comparison per octet of every 4 KiB page a target
 * touches was a tenth of the image target's time (perf, 2026-12-02).
 */
__attribute__((noinline, no_sanitize("coverage"))) static uint64_t fuzz_touch(const void *p, size_t len)
{
	const uint8_t *c = p;
	uint64_t acc = 0, w;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, c + i, 8);
		acc = acc * 31 + w;
	}
	for (; i < len; i++)
		acc = acc * 31 + c[i];
	return acc;
}

#endif
