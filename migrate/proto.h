/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Live migration: the receiver's records and the shared plumbing of both
 * sides.  docs/migration-protocol.md is the specification; this header is
 * its code half for everything that is not an image record.
 *
 * Sender -> receiver: the streamed xsrelf image (kind XSR_KIND_MIGRATION)
 * written by the one writer, with the control records XSR_SEC_MIG_* and
 * XSR_SEC_POSTCOPY_* of format.h interleaved.
 *
 * Receiver -> sender: records with the same framing as image records (a
 * 64-octet Elf64_Shdr-shaped header, body, zero padding to 8, XXH3-64 of
 * header + body + padding), sh_type = XSR_SHT(code, 0) with a code below.
 * They are never part of an image, so they live outside xsr_sec_table in
 * their own number range.
 */
#ifndef XSR_MIGRATE_PROTO_H
#define XSR_MIGRATE_PROTO_H

#include <stdint.h>

#include <xsrelf/format.h>

enum xsr_mig_rec {
	XSR_MIG_R_HELLO = 0x0100,    /* xsr_mig_hello + reason text */
	XSR_MIG_R_ACK = 0x0101,      /* xsr_mig_ack: a round is applied */
	XSR_MIG_R_FAULT = 0x0102,    /* xsr_mig_pfns: post-copy pages wanted now */
	XSR_MIG_R_RESUMED = 0x0103,  /* xsr_mig_ack: the guest runs here (post-copy) */
	XSR_MIG_R_COMPLETE = 0x0104, /* xsr_mig_ack: every post-copy page is in */
	XSR_MIG_R_COMMIT = 0x0105,   /* xsr_mig_ack: loaded and running; source may go */
	XSR_MIG_R_ERROR = 0x0106,    /* xsr_mig_error + message: receiver gives up */
	XSR_MIG_R_RELEASED = 0x0107, /* xsr_mig_ack, SENDER -> receiver after COMMIT:
					the source copy is gone; keep the guest */
	XSR_MIG_R__END
};
#define XSR_MIG_R__FIRST XSR_MIG_R_HELLO

/* HELLO */
#define XSR_MIG_HELLO_ACCEPT 0u
struct xsr_mig_hello {
	uint32_t status;    /* XSR_MIG_HELLO_ACCEPT, or -enum xsr_err of the refusal */
	uint32_t flags;     /* XSR_MIG_POSTCOPY if the receiver can do post-copy */
	uint64_t mem_limit; /* octets of guest memory the receiver accepts */
	uint32_t max_vcpus; /* vCPUs the receiver accepts */
	uint32_t reserved0; /* 0 */
	uint64_t reserved1; /* 0 */
	/* then a NUL-terminated reason (empty when accepted) */
};
_Static_assert(sizeof(struct xsr_mig_hello) == 32, "xsr_mig_hello");

/* ACK, RESUMED, COMPLETE, COMMIT */
struct xsr_mig_ack {
	uint64_t round;    /* ACK: the round applied; else 0 */
	uint64_t pages;    /* page entries applied so far (COMPLETE: post-copy pages) */
	uint64_t faults;   /* post-copy FAULT requests sent */
	uint64_t load_ns;  /* COMMIT/RESUMED: END/TRANSITION received -> guest resumed */
};
_Static_assert(sizeof(struct xsr_mig_ack) == 32, "xsr_mig_ack");

/* ERROR */
struct xsr_mig_error {
	int32_t code;      /* enum xsr_err */
	uint32_t reserved; /* 0 */
	/* then a NUL-terminated message */
};
_Static_assert(sizeof(struct xsr_mig_error) == 8, "xsr_mig_error");

#define XSR_MIG_MAX_FAULT 64u       /* pfns per FAULT record */
#define XSR_MIG_MAX_TEXT 1024u      /* reason / message octets */
#define XSR_MIG_MAX_RREC (sizeof(struct xsr_mig_pfns) + XSR_MIG_MAX_FAULT * 8)

/* ---------------- plumbing (migrate/wire.c) ---------------- */

#include <stddef.h>

/* Name of a receiver record code, "?" if unknown. */
const char *mig_rec_name(uint32_t code);

/* Frame and send one receiver record (blocking, whole or error). 0 or <0. */
int mig_send(int fd, uint32_t code, const void *body, size_t len);

/*
 * Read one receiver record within @timeout_ms (-1: no limit).  Checks type
 * range, zero fields, length limits, padding and checksum.  @body (capacity
 * XSR_MIG_MAX_RREC + XSR_MIG_MAX_TEXT) gets the body, *len its length.
 * Returns the code, or <0 with @err set (XSR_E_TRUNCATED: peer closed).
 */
int mig_recv(int fd, int timeout_ms, void *body, size_t *len, char *err, size_t errlen);

/*
 * Sender side: read one receiver record and require it to be @want.  An
 * ERROR record, another record or an I/O error gives < 0 and @err says which
 * (the receiver's own message for ERROR).
 */
int mig_expect(int fd, uint32_t want, int timeout_ms, void *body, size_t *len, char *err, size_t errlen);
/* The same, reading past (and dropping) at most @max_skip records of type @skip first. */
int mig_expect_skip(int fd, uint32_t want, uint32_t skip, unsigned max_skip, int timeout_ms, void *body,
		    size_t *len, char *err, size_t errlen);
/* After a failed write: if the receiver said why (ERROR, refusing HELLO), put that in @err. */
void mig_peer_reason(int fd, char *err, size_t errlen);

/* Test-only failure points (XSR_TESTHOOKS): "hello", "round0", "round1",
 * "final", "end", "postcopy".  mig_cut_here() is true once at @point. */
void mig_set_cut(const char *spec);
int mig_cut_here(const char *point);

#endif
