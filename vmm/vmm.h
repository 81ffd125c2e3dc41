/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The minimal VMM: a daemon that owns one KVM VM (backends/kvm.h) and answers
 * on a UNIX control socket; the test-guest loader; the client side of the
 * control protocol used by `xsr vm`, `xsr save`, `xsr core`, `xsr restore`.
 *
 * Control protocol (one request per connection):
 *   client -> VMM   one line of text, "VERB [key=value ...]\n", sent with
 *                   one sendmsg(); file descriptors ride along as
 *                   SCM_RIGHTS on that message.
 *   VMM -> client   one line of JSON, {"ok":true,...} or
 *                   {"ok":false,"error":"message"}, then the VMM closes.
 * Requests:
 *   status                      {"ok","state","pid","vcpus","mem","entered",
 *                                "failed","counters":[...],"errors",["lazy":{}]}
 *   pause | resume              user pause; resume also releases a save hold
 *   stop                        stop the VM; the reply comes after the socket
 *                               is unlinked, then the daemon exits
 *   save kind=save|core hold=0|1 progress=0|1 compress=none|zstd|lz4 live=0|1
 *        fds: [0] output (any fd: file, pipe, socket) [1] optional stderr
 *        for progress.  hold=1 leaves the VM paused after a successful save
 *        until "stop" or "resume" (save --stop commits the file first).
 *        Reply: {"ok","bytes","pages","zero_pages","pause_ms","elapsed_ms"}
 *   migrate compress=none|zstd|lz4 postcopy=0|1 postcopy_rounds=N
 *           max_downtime=MS min_rounds=N max_rounds=N progress=0|1 [cut=POINT]
 *        fds: [0] a TCP socket connected to `xsr receive` [1] optional
 *        terminal for progress.  Runs the sender (migrate/migrate.h).  After
 *        the receiver's COMMIT the VM is shut down and, after the reply, the
 *        daemon exits.  On failure before COMMIT the guest runs on unharmed.
 *        If post-copy breaks after the guest resumed remotely, the guest is
 *        held paused here ("split":true) until `resume` or `stop`.
 *        Reply: {"ok","rounds","round":[{...}],"total_bytes",...} (see
 *        docs/migration-protocol.md "Reporting").
 */
#ifndef XSR_VMM_H
#define XSR_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../backends/backend.h"
#include "../restore/restore.h"

/* The guest's fixed shape (guest/guest.ld). */
#define XSR_GUEST_KERNEL_VMA UINT64_C(0xffffffff80000000)
#define XSR_GUEST_MIN_MEM (UINT64_C(4) << 20)
/* Guest RAM above this moves to 4 GiB: the LAPIC/IOAPIC window stays free. */
#define XSR_GUEST_LOW_MEM_END (UINT64_C(3) << 30)

/* ---------------- guest loader (vmm/loader.c) ---------------- */

struct xsr_guest_info {
	uint64_t entry;	       /* virtual */
	uint64_t counters_gpa; /* guest_counters[] */
	uint64_t errors_gpa;   /* guest_errors */
	uint32_t nr_counters;
};

/* Memory runs for @mem octets of RAM (1 or 2 runs); 0 or <0 with message. */
int vmm_guest_runs(uint64_t mem, struct xsr_memrun runs[2], uint32_t *nr, char *err, size_t errlen);

/*
 * Load the test guest ELF at @path into the created VM behind @be (a KVM
 * backend after ops->create), build its GDT and page tables and set every
 * vCPU to enter it in long mode.  Symbol addresses go to @gi.
 */
int vmm_guest_load(struct xsr_backend *be, const char *path, uint32_t nr_vcpus,
		   struct xsr_guest_info *gi, char *err, size_t errlen);

/* "<dir of /proc/self/exe>/xsr-guest.elf" into @buf. */
int vmm_guest_default_path(char *buf, size_t len);

/* ---------------- the daemon (vmm/daemon.c) ---------------- */

struct xsr_vmm {
	struct xsr_backend *be;
	struct xsr_lazy *lazy;
	FILE *log;
	const char *sock_path;
	uint64_t mem_bytes;
	uint64_t counters_gpa, errors_gpa;
	uint32_t nr_counters;
	bool user_paused;
	bool held; /* a save with hold=1 left the VM paused */
	/* the data mode (xsr vm start --fill): pages [fill_from, +fill_pages) hold data */
	uint64_t fill_from, fill_pages;
	/* the dirtier (vmm/dirtier.c: --dirty-mbps, or XSR_TEST_DIRTY_MBPS) */
	double dirty_mbps;
	pthread_t dirtier_tid;
	bool have_dirtier;
	atomic_int dirtier_stop;
};

/*
 * The dirtier: a VMM thread that rewrites guest pages at @mbps MB/s while
 * the guest runs and marks them in the backend's dirty log, as a guest
 * that writes its memory would.  It rewrites the data-mode pages
 * (v->fill_pages, with data like theirs) or, without them, every page above
 * 4 MiB with random data.  Started for `xsr vm start --dirty-mbps N`, and in
 * XSR_TESTHOOKS builds for XSR_TEST_DIRTY_MBPS=N in the VMM's environment.
 */
int vmm_dirtier_start(struct xsr_vmm *v, double mbps);
/*
 * The data mode's page @n of @mem (the guest memory mapping): half of it a
 * window of the guest image at 1 MiB (code and data: compressible), half a
 * pseudo-random stream from *@x; never a zero page.
 */
void vmm_data_page(const struct xsr_vmm *v, uint8_t *mem, uint64_t n, uint64_t *x);
void vmm_dirtier_stop(struct xsr_vmm *v);

/*
 * Build the VM in the daemon (after fork, socket bound): set v->be (and
 * v->lazy), start the guest.  On success @msg may hold a JSON object handed
 * to the parent; on failure @msg holds the reason.
 */
typedef int (*xsr_vmm_build_fn)(struct xsr_vmm *v, void *ctx, char *msg, size_t msglen);

/*
 * Fork the VMM daemon for control socket @sock (log in "SOCK.log").  Returns
 * in the parent once the build function has finished: 0 with the daemon's pid
 * and the build message, or <0 with the reason in @msg.  @keep_stderr leaves
 * the daemon's stderr alone while building (restore progress on a tty).
 */
int vmm_spawn(const char *sock, xsr_vmm_build_fn build, void *ctx, int keep_stderr, pid_t *pid,
	      char *msg, size_t msglen);

/* Read "counters_gpa" etc. from the config text the VMM saves. */
int vmm_parse_config(struct xsr_vmm *v, const char *config);
/* @s as a JSON string on @f (the VMM quotes its replies and config itself). */
void vmm_json_str(FILE *f, const char *s);

/* ---------------- building the VM (vmm/build.c) ---------------- */

/*
 * The one way a KVM VM is built in the daemon (xsr vm start, xsr restore,
 * xsr receive; call it from the xsr_vmm_build_fn given to vmm_spawn):
 * open KVM into v->be, log to v->log, hold the VM paused from before its
 * vCPUs exist if @paused, let @load create, fill and start it, then take
 * v->mem_bytes from its runs and the guest's counters from the config it
 * carries (unless @load set them).  0, or <0 with the reason in @msg.
 */
struct xsr_vmm_load {
	const char *what; /* "start", "restore", "receive": names the log lines */
	int paused;
	xsr_vmm_build_fn load; /* gets v->be opened and empty */
	void *ctx;
};
int vmm_build_kvm(struct xsr_vmm *v, const struct xsr_vmm_load *l, char *msg, size_t msglen);

/*
 * A load: the test guest ELF at @path (xsr vm start); ctx is a struct
 * xsr_vmm_guest.  @fill > 0 is the data mode: that fraction of guest memory
 * above 4 MiB holds data (vmm_data_page) before the guest starts; the
 * dirtier rewrites it at @dirty_mbps (0: never) once the guest runs.  The
 * VMM writes it, not the guest: where the guest runs under KVM's
 * instruction emulator (~1 M instructions/s) a guest-side fill of 1 GiB
 * would take many minutes.
 */
struct xsr_vmm_guest {
	uint64_t mem;
	uint32_t vcpus;
	const char *path;
	double fill;       /* 0..1 */
	double dirty_mbps; /* MB/s (10^6 octets) of guest time; needs @fill */
};
int vmm_load_guest(struct xsr_vmm *v, void *ctx, char *msg, size_t msglen);

/*
 * A load: the image on @fd, whole (restore_guest: every page verified
 * before the guest runs) or lazily (lazy_restore); ctx is a struct
 * xsr_vmm_image.  @fd is consumed either way (-1 after: closed, or owned by
 * the lazy handle) unless a lazy restore failed.
 */
struct xsr_vmm_image {
	int fd;
	int lazy;
	void (*progress)(void *ctx, uint64_t done, uint64_t total); /* whole restore only */
	void *progress_ctx;
	struct xsr_restore_stats st; /* out */
};
int vmm_load_image(struct xsr_vmm *v, void *ctx, char *msg, size_t msglen);

/* ---------------- the client (vmm/control.c) ---------------- */

/*
 * Send @req (one line, no newline needed) with @nfds (at most 4) descriptors
 * to the VMM at @sock; *reply gets the malloc'd JSON reply line (also when
 * the VMM refused; the caller frees it).  Returns 0 if the VMM answered
 * "ok":true; else -1 with the reason in @err (the VMM's own message when it
 * refused).  Prints nothing: the verbs of cli/ say it (cli_ctl_call).
 */
int vmm_ctl_request(const char *sock, const char *req, const int *fds, int nfds, char **reply,
		    char *err, size_t errlen);

/* Minimal readers for the flat JSON the VMM sends. 0 or -1 if absent. */
int vmm_json_u64(const char *js, const char *key, uint64_t *out);
int vmm_json_bool(const char *js, const char *key, int *out);
/* malloc'd, unescaped string value, or NULL */
char *vmm_json_str_dup(const char *js, const char *key);
/* Up to @max numbers of an array value; returns the count or -1. */
int vmm_json_u64_array(const char *js, const char *key, uint64_t *out, int max);

#endif
