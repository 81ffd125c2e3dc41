/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the libFuzzer targets: the input as an fd, nothing on disk. */
#ifndef XSR_FUZZ_COMMON_H
#define XSR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memfd holding @data: a regular file, as the seekable reader requires. */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("xsr-fuzz", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	size_t done = 0;
	while (done < size) {
		ssize_t r = write(fd, data + done, size - done);
		if (r <= 0)
			abort();
		done += (size_t)r;
	}
	if (lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

/* Touch every octet so that ASan sees any out-of-bounds callback buffer. */
static inline uint64_t fuzz_touch(const void *p, size_t len)
{
	const uint8_t *c = p;
	uint64_t acc = 0;
	for (size_t i = 0; i < len; i++)
		acc = acc * 31 + c[i];
	return acc;
}

#endif
