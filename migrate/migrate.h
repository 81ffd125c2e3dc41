/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Live migration, both ends (docs/migration-protocol.md).
 *
 * The sender runs inside the source VMM (only it can read its vCPUs): the
 * `xsr migrate` client connects to the receiver and hands the connected
 * socket to the VMM, which calls migrate_send().  The receiver runs
 * inside the destination VMM's build step (migrate_receive() with a
 * backend) or inside `xsr receive --to-file` (with a seekable output fd).
 */
#ifndef XSR_MIGRATE_H
#define XSR_MIGRATE_H

#include <stdint.h>

#include "../backends/backend.h"
#include "proto.h"

#define XSR_MIG_MAX_ROUNDS_STAT 64

struct xsr_mig_send_opts {
	uint8_t compress;          /* enum xsr_compress */
	int postcopy;              /* switch to post-copy after postcopy_rounds */
	uint32_t postcopy_rounds;  /* pre-copy rounds before post-copy (>= 1) */
	uint64_t max_downtime_ms;  /* 0: Xen's policy (< 50 pages or max_rounds) */
	uint32_t min_rounds;       /* at least this many pre-copy rounds */
	uint32_t max_rounds;       /* at most this many pre-copy rounds (>= 1) */
	int progress_fd;           /* -1: none */
	const char *config;        /* sent early so the receiver can judge; may be NULL */
	int hello_timeout_ms, ack_timeout_ms;
	/*
	 * migrate_send_xen: XSR_MEMPATH_* (backends/backend.h) for save_domain;
	 * SHARED is xsr's own stop-and-copy, without the hypervisor's pre-copy.
	 */
	int memory_path;
};

struct xsr_mig_round_stat {
	uint64_t pages;      /* page entries sent */
	uint64_t zero_pages; /* of which zero (no data) */
	uint64_t bytes;      /* octets on the wire */
	uint64_t dirty;      /* pages dirtied while the round ran */
	uint64_t ns;         /* round start -> receiver's ACK */
	int paused;
};

struct xsr_mig_send_stats {
	uint32_t rounds; /* rounds, the paused final one included */
	struct xsr_mig_round_stat round[XSR_MIG_MAX_ROUNDS_STAT];
	uint64_t total_bytes;
	uint64_t data_pages, zero_pages;
	uint64_t page_raw_bytes;  /* page records as they would be uncompressed */
	uint64_t page_wire_bytes; /* page records as sent */
	uint64_t downtime_ns;     /* source paused -> receiver resumed (its answer seen) */
	uint64_t receiver_load_ns; /* the receiver's own END -> resume time */
	double bandwidth;         /* last measured, octets/s */
	int postcopy;             /* post-copy phase entered */
	uint64_t postcopy_pages;  /* pages sent after the guest resumed remotely */
	uint64_t faults;          /* FAULT requests received */
	uint64_t faults_served;   /* pages sent ahead of the push because of a FAULT */
	uint64_t elapsed_ns;
};

/* migrate_send() results besides 0 (committed) and <0 (source unharmed). */
#define XSR_MIG_SPLIT 1 /* post-copy broke: the state is split, source left paused */

int migrate_send(struct xsr_backend *be, int fd, const struct xsr_mig_send_opts *o,
		 struct xsr_mig_send_stats *st, char *err, size_t errlen);

/*
 * A domain its backend saves whole (migrate/send_xen.c; a Xen domain): the
 * backend's save_domain writes it as an xsrelf migration stream (live when
 * its live_probe finds dirty logging), the receiver (xsr receive --xen)
 * restores it.  Returns 0 once the receiver committed and the source domain
 * is given up (finish); < 0 with the domain resumed here.  @be may be NULL
 * only with the test source XSR_MIG_TEST_XEN_SOURCE; @domid is for the
 * messages.  Options used: compress, hello and ack timeouts, progress_fd.
 */
struct xsr_mig_xen_stats {
	int live;              /* libxl pre-copy with log-dirty */
	int native;            /* stop-and-copy by the native save (no libxl stream) */
	int shared_memory;     /* the guest's RAM went through shared memory (save_domain's stats) */
	char mode[48];         /* "stop-and-copy" or "live (...)" */
	char why[160];         /* what the log-dirty probe said */
	uint64_t suspend_ns;   /* libxl: suspend (and pre-copy) into memory */
	uint64_t transfer_ns;  /* transcode + send, END written */
	uint64_t receiver_load_ns;
	uint64_t downtime_ns;  /* suspend started -> RELEASED sent */
	uint64_t bytes;        /* TCP octets acknowledged */
	uint64_t pages;
	uint64_t elapsed_ns;
};
int migrate_send_xen(struct xsr_backend *be, uint32_t domid, int fd, const struct xsr_mig_send_opts *o, struct xsr_mig_xen_stats *st,
		     char *err, size_t errlen);

struct xsr_mig_recv_opts {
	uint64_t mem_limit;  /* refuse bigger guests (octets) */
	uint32_t max_vcpus;  /* refuse more vCPUs */
	int out_fd;          /* >= 0: write a seekable image here instead of a VM */
	/* file sink: called after fsync, before COMMIT (e.g. the atomic rename); < 0 with @err set fails */
	int (*before_commit)(void *ctx, char *err, size_t errlen);
	void *commit_ctx;
	/*
	 * File sink: called after COMMIT with @released = 1 when the sender's
	 * RELEASED came, 0 when it did not (within 10 s); < 0 fails the receive.
	 */
	int (*after_release)(void *ctx, int released);
	/* 1: only Xen guests (xsr receive --xen); 0: refuse Xen guests when @be is set */
	int xen;
	FILE *log;
};

struct xsr_mig_recv_stats {
	uint64_t bytes, pages, zero_pages;
	uint64_t rounds;
	uint64_t postcopy_pages, faults;
	uint64_t load_ns;
	int postcopy;
};

/*
 * Receive one migration from @fd into @be (created and started by this
 * call; left running on success) or, when o->out_fd >= 0 and @be is NULL,
 * into a seekable image on o->out_fd.  Returns 0 after COMMIT was sent.  On
 * failure the peer was told why (ERROR record) when possible and the caller
 * discards whatever @be holds.
 */
/* Half-close @fd, drain what the peer still sends (2 s at most), close. */
void mig_linger_close(int fd);
/* Refuse a sender before anything was read: HELLO with status -@code, then linger-close. */
void mig_refuse(int fd, int code, const char *reason);

int migrate_receive(struct xsr_backend *be, int fd, const struct xsr_mig_recv_opts *o,
		    struct xsr_mig_recv_stats *st, char *err, size_t errlen);

#endif
