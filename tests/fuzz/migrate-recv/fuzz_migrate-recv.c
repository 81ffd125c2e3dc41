/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration receiver: the peer's records, as xsr receive --to-file reads
 * them (migrate_receive into a seekable image, no VM).  The input is the
 * whole byte stream the sender would send; the receiver's replies go back
 * into the socket and are dropped.  Oracle: an image the receiver commits
 * must verify intact.
 */
#include <stdio.h>
#include <sys/socket.h>

#include <xsrelf/reader.h>

#include "../../../migrate/migrate.h"
#include "../common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	char err[512];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int big = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	for (size_t done = 0; done < size;) {
		ssize_t r = write(sv[0], data + done, size - done);
		if (r <= 0)
			abort(); /* -max_len keeps inputs inside the socket buffer */
		done += (size_t)r;
	}
	shutdown(sv[0], SHUT_WR);
	int out = fuzz_outfd(0);
	/* 16 MiB: a bigger guest is a sparse file the size of its memory. */
	struct xsr_mig_recv_opts o = {.mem_limit = 16 << 20, .max_vcpus = 64, .out_fd = out};
	struct xsr_mig_recv_stats st;
	memset(&st, 0, sizeof(st));
	if (migrate_receive(NULL, sv[1], &o, &st, err, sizeof(err)) == 0) {
		struct xsr_image *img;
		if (xsr_image_open(&img, out, err, sizeof(err)) < 0) {
			fprintf(stderr, "received image does not open: %s\n", err);
			abort();
		}
		if (xsr_image_verify(img, NULL, NULL) < 0) {
			fprintf(stderr, "received image does not verify: %s\n", xsr_image_error(img));
			abort();
		}
		xsr_image_close(img);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
