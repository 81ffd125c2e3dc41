/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The receiver's records: framing, checking, and the test-only cut points.
 * Receiver records are small (<= 1.6 KiB), so they are assembled in one
 * buffer and hashed with the library's public xsr_hash().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xsrelf/xsrelf.h>

#include "../util/clock.h"
#include "proto.h"

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

static const char *const names[] = {
    [XSR_MIG_R_HELLO - XSR_MIG_R__FIRST] = "hello",
    [XSR_MIG_R_ACK - XSR_MIG_R__FIRST] = "ack",
    [XSR_MIG_R_FAULT - XSR_MIG_R__FIRST] = "fault",
    [XSR_MIG_R_RESUMED - XSR_MIG_R__FIRST] = "resumed",
    [XSR_MIG_R_COMPLETE - XSR_MIG_R__FIRST] = "complete",
    [XSR_MIG_R_COMMIT - XSR_MIG_R__FIRST] = "commit",
    [XSR_MIG_R_ERROR - XSR_MIG_R__FIRST] = "error",
    [XSR_MIG_R_RELEASED - XSR_MIG_R__FIRST] = "released",
};

/* Smallest and largest body of each receiver record. */
static const struct {
	uint32_t min, max;
} lens[] = {
    [XSR_MIG_R_HELLO - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_hello) + 1,
					    sizeof(struct xsr_mig_hello) + XSR_MIG_MAX_TEXT},
    [XSR_MIG_R_ACK - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_ack), sizeof(struct xsr_mig_ack)},
    [XSR_MIG_R_FAULT - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_pfns) + 8, XSR_MIG_MAX_RREC},
    [XSR_MIG_R_RESUMED - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_ack), sizeof(struct xsr_mig_ack)},
    [XSR_MIG_R_COMPLETE - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_ack), sizeof(struct xsr_mig_ack)},
    [XSR_MIG_R_COMMIT - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_ack), sizeof(struct xsr_mig_ack)},
    [XSR_MIG_R_ERROR - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_error) + 1,
					    sizeof(struct xsr_mig_error) + XSR_MIG_MAX_TEXT},
    [XSR_MIG_R_RELEASED - XSR_MIG_R__FIRST] = {sizeof(struct xsr_mig_ack), sizeof(struct xsr_mig_ack)},
};

const char *mig_rec_name(uint32_t code)
{
	if (code < XSR_MIG_R__FIRST || code >= XSR_MIG_R__END)
		return "?";
	return names[code - XSR_MIG_R__FIRST];
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_send(int fd, uint32_t code, const void *body, size_t len)
{
	uint8_t buf[sizeof(struct xsr_record_header) + XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT + 16];
	struct xsr_record_header rh = {
	    .sh_type = XSR_SHT(code, 0),
	    .sh_offset = XSR_OFF_STREAMED,
	    .sh_size = len,
	    .sh_addralign = 8,
	};
	size_t span = sizeof(rh) + ALIGN8(len);
	uint64_t h;

	if (span + 8 > sizeof(buf))
		return XSR_E_LIMIT;
	memset(buf, 0, span);
	memcpy(buf, &rh, sizeof(rh));
	memcpy(buf + sizeof(rh), body, len);
	h = xsr_hash(buf, span);
	memcpy(buf + span, &h, 8);
	return write_all(fd, buf, span + 8) < 0 ? XSR_E_IO : 0;
}

/* Read exactly @len octets, waiting at most until @deadline_ms passes. */
static int read_full(int fd, void *buf, size_t len, int timeout_ms, char *err, size_t errlen,
		     const char *what)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			snprintf(err, errlen, "the peer sent nothing for %d ms (waiting for %s)",
				 timeout_ms, what);
			return XSR_E_PEER;
		}
		ssize_t n = recv(fd, p + got, len - got, 0);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			snprintf(err, errlen, "the connection failed while reading %s: %s",
				 what, strerror(errno));
			return XSR_E_IO;
		}
		if (n == 0) {
			snprintf(err, errlen, "the peer closed the connection (%s%s)", what,
				 got ? ", record cut short" : "");
			return XSR_E_TRUNCATED;
		}
		got += (size_t)n;
	}
	return 0;
}

int mig_recv(int fd, int timeout_ms, void *body, size_t *len, char *err, size_t errlen)
{
	uint8_t buf[sizeof(struct xsr_record_header) + XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT + 16];
	struct xsr_record_header rh;
	uint64_t h;
	uint32_t code;
	int r;

	r = read_full(fd, &rh, sizeof(rh), timeout_ms, err, errlen, "a record header");
	if (r < 0)
		return r;
	code = rh.sh_type & XSR_SHT_CODE_MASK;
	if ((rh.sh_type & ~XSR_SHT_CODE_MASK) != XSR_SHT_BASE || code < XSR_MIG_R__FIRST ||
	    code >= XSR_MIG_R__END) {
		snprintf(err, errlen, "the peer sent a record of unknown type 0x%x (code %u)",
			 rh.sh_type, code);
		return XSR_E_PEER;
	}
	const char *name = mig_rec_name(code);
	if (rh.sh_name || rh.sh_flags || rh.sh_addr || rh.sh_offset != XSR_OFF_STREAMED ||
	    rh.sh_link || rh.sh_info || rh.sh_addralign != 8 || rh.sh_entsize) {
		snprintf(err, errlen, "record %s: a field that must be zero is set", name);
		return XSR_E_PEER;
	}
	if (rh.sh_size < lens[code - XSR_MIG_R__FIRST].min ||
	    rh.sh_size > lens[code - XSR_MIG_R__FIRST].max) {
		snprintf(err, errlen, "record %s: %llu octets, must be %u..%u", name,
			 (unsigned long long)rh.sh_size, lens[code - XSR_MIG_R__FIRST].min,
			 lens[code - XSR_MIG_R__FIRST].max);
		return XSR_E_PEER;
	}
	size_t span = ALIGN8(rh.sh_size);
	memcpy(buf, &rh, sizeof(rh));
	r = read_full(fd, buf + sizeof(rh), span + 8, timeout_ms, err, errlen, name);
	if (r < 0)
		return r;
	memcpy(&h, buf + sizeof(rh) + span, 8);
	for (size_t i = rh.sh_size; i < span; i++)
		if (buf[sizeof(rh) + i]) {
			snprintf(err, errlen, "record %s: padding is not zero", name);
			return XSR_E_PEER;
		}
	if (xsr_hash(buf, sizeof(rh) + span) != h) {
		snprintf(err, errlen, "record %s: checksum mismatch", name);
		return XSR_E_CHECKSUM;
	}
	memcpy(body, buf + sizeof(rh), rh.sh_size);
	*len = rh.sh_size;
	return (int)code;
}

static char cut_point[32];

void mig_set_cut(const char *spec)
{
#if XSR_TESTHOOKS
	snprintf(cut_point, sizeof(cut_point), "%s", spec ? spec : "");
#else
	(void)spec;
#endif
}

int mig_cut_here(const char *point)
{
	if (!cut_point[0] || strcmp(cut_point, point))
		return 0;
	cut_point[0] = 0;
	return 1;
}

void mig_linger_close(int fd)
{
	/*
	 * Closing a socket with unread data makes the kernel send a reset, which
	 * can destroy the answer just sent (a refusal, an ERROR) before the peer
	 * reads it.  Half-close, let the peer read and close, then close.
	 */
	char buf[4096];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t deadline = util_now_ns() + 2000000000ull;

	shutdown(fd, SHUT_WR);
	while (util_now_ns() < deadline && poll(&p, 1, 100) >= 0) {
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	close(fd);
}

void mig_refuse(int fd, int code, const char *reason)
{
	uint8_t buf[sizeof(struct xsr_mig_hello) + XSR_MIG_MAX_TEXT];
	struct xsr_mig_hello h = {.status = (uint32_t)-code};
	size_t n = strnlen(reason, XSR_MIG_MAX_TEXT - 1);

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), reason, n);
	buf[sizeof(h) + n] = 0;
	mig_send(fd, XSR_MIG_R_HELLO, buf, sizeof(h) + n + 1);
	mig_linger_close(fd);
}

int mig_expect(int fd, uint32_t want, int timeout_ms, void *body, size_t *len, char *err, size_t errlen)
{
	return mig_expect_skip(fd, want, UINT32_MAX, 0, timeout_ms, body, len, err, errlen);
}

int mig_expect_skip(int fd, uint32_t want, uint32_t skip, unsigned max_skip, int timeout_ms, void *body,
		    size_t *len, char *err, size_t errlen)
{
	char e[512];
	int code = mig_recv(fd, timeout_ms, body, len, e, sizeof(e));

	for (unsigned n = 0; code >= 0 && (uint32_t)code == skip && (uint32_t)code != want; n++) {
		if (n == max_skip) {
			snprintf(err, errlen, "the receiver sent more than %u %s records where %s was due", max_skip,
				 mig_rec_name(skip), mig_rec_name(want));
			return XSR_E_PEER;
		}
		code = mig_recv(fd, timeout_ms, body, len, e, sizeof(e));
	}
	if (code < 0) {
		snprintf(err, errlen, "waiting for the receiver's %s: %s", mig_rec_name(want), e);
		return code;
	}
	if (code == XSR_MIG_R_ERROR) {
		((char *)body)[*len - 1] = 0;
		snprintf(err, errlen, "the receiver failed: %s", (char *)body + sizeof(struct xsr_mig_error));
		return XSR_E_PEER;
	}
	if ((uint32_t)code != want) {
		snprintf(err, errlen, "the receiver sent %s where %s was due", mig_rec_name((uint32_t)code),
			 mig_rec_name(want));
		return XSR_E_PEER;
	}
	return 0;
}

void mig_peer_reason(int fd, char *err, size_t errlen)
{
	uint8_t body[XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT];
	size_t len;
	char e[256];

	for (int i = 0; i < 4; i++) {
		int code = mig_recv(fd, 200, body, &len, e, sizeof(e));

		if (code < 0)
			return;
		if (code == XSR_MIG_R_ERROR) {
			body[len - 1] = 0;
			snprintf(err, errlen, "the receiver failed: %s", (char *)body + sizeof(struct xsr_mig_error));
			return;
		}
		if (code == XSR_MIG_R_HELLO && len > sizeof(struct xsr_mig_hello)) {
			struct xsr_mig_hello h;
			memcpy(&h, body, sizeof(h));
			body[len - 1] = 0;
			if (h.status != XSR_MIG_HELLO_ACCEPT) {
				snprintf(err, errlen, "the receiver refused the guest: %s", (char *)body + sizeof(h));
				return;
			}
		}
	}
}
