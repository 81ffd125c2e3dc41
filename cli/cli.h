/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The xsr command front end: one function per verb, shared helpers. */
#ifndef XSR_CLI_H
#define XSR_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "../util/clock.h"
#include "../util/progress.h"

/*
 * Exit codes shared by all verbs (xsr(1), EXIT STATUS).  A verb interrupted
 * while writing an output file exits 128 + the signal (129, 130, 143);
 * migrate adds 4 (a post-copy split).
 */
enum {
	XSR_EXIT_OK = 0,
	XSR_EXIT_DAMAGE = 1, /* verify, synth --check: damage found; diff: the images differ */
	XSR_EXIT_USAGE = 2,  /* bad command line: unknown option, missing or extra operand, bad value */
	XSR_EXIT_FAIL = 3,   /* operation failed */
};

/*
 * --quiet (-q) and --verbose (-v), which every verb takes.  Each verb puts
 * XSR_COMMON_OPTS in its getopt_long table and XSR_COMMON_SHORT in its short
 * options, and hands a code its switch does not know to cli_common_opt()
 * before calling it a usage error.  The last of them wins; -vv is more.
 *   --quiet:   no progress and no informational lines on stderr (errors and
 *              warnings stay; what the verb was asked to print stays);
 *   --verbose: a line or two of detail on stderr (what was opened, the
 *              layout, sizes, time taken).
 */
#define XSR_COMMON_OPTS {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'}
#define XSR_COMMON_SHORT "qv"
#define XSR_COMMON_HELP "\n-q, --quiet: no progress or notes on stderr; -v, --verbose: details on stderr.\n"
extern int cli_verbosity; /* -1 quiet, 0 default, 1 and up verbose */
/* 1 if @c (a getopt_long return) was --quiet or --verbose, now applied; else 0. */
int cli_common_opt(int c);
/* "xsr VERB: message" on stderr unless --quiet (progress notes, summaries sent to stderr). */
void cli_note(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "xsr VERB: message" on stderr with --verbose only. */
void cli_detail(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Progress on a terminal, one helper for every verb (util/progress.h draws
 * it): shown only when stderr is a terminal, without --quiet and without
 * --json (@json); cli_progress_init() decides once.  The library and the
 * engines print nothing: they call util_progress_cb() with @p as context.
 */
void cli_progress_init(struct xsr_progress *p, const char *label, const char *unit, int json);
/*
 * The layout a verb writes: "seekable" or "stream" (--layout, and the older
 * spellings --to and --stream) -> enum xsr_layout; -1 with a message printed.
 */
int cli_parse_layout(const char *verb, const char *opt, const char *s);

/*
 * A verb's TARGET, read once (cli/target.c): "vm:SOCK", a VMM's control
 * socket, "DOMID" / "xen:DOMID", a Xen domain, or "qemu:SOCK", a QEMU's QMP
 * socket.  @accept is the XSR_TARGET_* kinds the verb takes; 0, or -1 with
 * a message.
 */
enum { XSR_TARGET_VM = 1, XSR_TARGET_XEN = 2, XSR_TARGET_QEMU = 4 };
struct xsr_target {
	unsigned kind;	  /* one XSR_TARGET_* */
	const char *sock; /* XSR_TARGET_VM: the control socket; XSR_TARGET_QEMU: the QMP socket (into @s) */
	uint32_t domid;	  /* XSR_TARGET_XEN */
};
int cli_target_resolve(const char *verb, const char *s, unsigned accept, struct xsr_target *t);
/* "vm:SOCK" -> SOCK, or NULL with a message printed. */
const char *cli_ctl_target(const char *verb, const char *target);
/*
 * A request to the VMM at @sock (vmm.h: vmm_ctl_request); *reply gets the
 * malloc'd JSON reply line.  0 if the VMM answered "ok":true; else prints
 * "xsr VERB: ..." and returns -1.
 */
int cli_ctl_call(const char *verb, const char *sock, const char *req, const int *fds, int nfds,
		 char **reply);

/* xsr save and xsr core (cli/cmd_save.c): @kind XSR_KIND_SAVE or XSR_KIND_CORE. */
int cli_capture_main(const char *verb, int kind, void (*usage)(FILE *f), int argc, char **argv);

typedef int (*xsr_cmd_fn)(int argc, char **argv);

int cmd_synth(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_cat_page(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_vm(int argc, char **argv);      /* vmm/ */
int cmd_save(int argc, char **argv);    /* save/ */
int cmd_restore(int argc, char **argv); /* restore/ */
int cmd_core(int argc, char **argv);    /* core/ */
int cmd_migrate(int argc, char **argv); /* migrate/ */
int cmd_receive(int argc, char **argv); /* migrate/ */
int cmd_import(int argc, char **argv);  /* cmd_import.c: xsrelf/xen.h */
int cmd_export(int argc, char **argv);  /* cmd_export.c: xsrelf/xen.h */

/* "64M", "1G", "4096" -> octets; -1 on error. */
int64_t cli_parse_size(const char *s);
/* "none" | "zstd" | "lz4" -> enum xsr_compress; -1 (message printed) otherwise. */
int cli_parse_compress(const char *verb, const char *s);
/* A vCPU number for option @opt; 0, or -1 with a message printed. */
int cli_parse_vcpu(const char *verb, const char *opt, const char *s, uint32_t *out);
/* Read all of a small file (at most @max octets); 0 or -1 with a message printed. */
int cli_read_file(const char *verb, const char *path, size_t max, char **buf, size_t *len);
/*
 * --qemu-path auto|transcode|shared into *@path (XSR_MEMPATH_* of
 * backends/backend.h): 0, or -1 after saying what is allowed.
 */
int cli_qemu_path(const char *verb, const char *arg, int *path);
/*
 * The guest memory of the seekable image on @fd (its runs' pages, in
 * octets), for the shared memory a restore gives QEMU: 0, or -1 after
 * saying why.  The offset of @fd is left alone.
 */
int cli_image_ram(const char *verb, int fd, uint64_t *bytes);
/* The memory path a QEMU job took, for messages and --json: "shared-memory" or "transcode". */
/* getopt_long's value of --qemu-path (no short option: -q is --quiet) */
#define CLI_OPT_QEMU_PATH 0x200
#define CLI_QEMU_PATH_NAME(shared) ((shared) ? "shared-memory" : "transcode")
/* Print "xsr VERB: message" to stderr. */
void cli_err(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * --json errors (xsr(1), JSON OUTPUT).  main() calls cli_json_errors() when
 * the command line holds --json; from then on a failing verb's exit status
 * goes through cli_json_error_exit(), which prints
 * {"error":{"verb":V,"message":M,"exit":N}} on stdout (M: the first message
 * given to cli_err()) unless the verb printed its own JSON answer
 * (cli_json_answered(), e.g. verify's findings) or stdout carries an image
 * (cli_stdout_is_data(): then on stderr).  The stderr message stays.
 */
void cli_json_errors(const char *verb);
void cli_json_answered(void);
void cli_stdout_is_data(void);
int cli_json_error_exit(int rc);
/* Open FILE for reading ("-" = stdin); -1 with message printed on error. */
int cli_open_in(const char *verb, const char *path);
/*
 * A JSON string to @f, of @s up to NUL or @max octets.  Controls, DEL, C1
 * controls and octets that are not UTF-8 become \u00XX (an octet that is not
 * UTF-8 reads as its Latin-1 character): the output is always valid JSON and
 * never carries a terminal escape.
 */
void cli_json_strn(FILE *f, const char *s, size_t max);
void cli_json_str(FILE *f, const char *s);
/*
 * 64-bit values for JSON, as xsr(1) JSON OUTPUT says: a JSON number is a
 * double to most readers (jq, JavaScript) and rounds above 2^53, so every
 * 64-bit value is a string: cli_jhex() "\"0x1f\"" for addresses, pfns,
 * offsets, registers, MSRs and hashes, cli_jdec() "\"4096\"" for sizes and
 * counts.  Values of 32 bits or less stay numbers.  Both return one of 64
 * static buffers, for printf arguments.
 */
const char *cli_jhex(uint64_t v);
const char *cli_jdec(uint64_t v);
/*
 * Text from an image made safe for a terminal: printable ASCII and valid
 * UTF-8 (U+00A0 up) as is, a backslash doubled, every other octet as \xHH;
 * @keep_nl keeps newlines and tabs.  At most @max octets of @s are read (a
 * fixed-size field need not end in NUL).  cli_esc_to() writes @out (always
 * NUL-terminated, cut short when full) and returns its length; cli_esc()
 * returns one of 8 static buffers of 1 KiB, for use in printf arguments.
 */
size_t cli_esc_to(char *out, size_t outlen, const char *s, size_t max, int keep_nl);
const char *cli_esc(const char *s, size_t max);
/*
 * What a paging view kept and left out (struct xsr_paging_stats): lines of
 * text, or one JSON object without a newline when @json.
 */
struct xsr_paging_stats;
void cli_paging_report(FILE *f, const struct xsr_paging_stats *st, uint32_t vcpu, int json);

/*
 * Output FILE.  A regular file (or a new one) is written atomically: a hidden
 * temporary file beside it (beside the target of a symbolic link), which
 * commit fsyncs and renames over it and abort unlinks; SIGINT, SIGTERM and
 * SIGHUP unlink it too and exit 128 + the signal.  A new file gets mode 0600
 * less the umask (it holds guest memory); a replaced file keeps its mode.  A
 * FIFO or character device is opened and written in place (@in_place), any
 * other kind of file refused.  "-" means stdout.  Only a temporary file can
 * hold a seekable image: cli_out_streamed() says when it must be a stream.
 */
struct xsr_outfile {
	int fd;
	int is_stdout;
	int in_place;
	char *path;   /* as the user gave it, for messages */
	char *target; /* the resolved symbolic link, or NULL */
	char *tmp;
};
/*
 * 1 when cli_out_open(@path) would make or replace a regular file (one that
 * can hold a seekable image), 0 for stdout, a FIFO, a device or anything
 * else: ask before opening, since opening a FIFO waits for its reader.
 */
int cli_out_regular(const char *path);
static inline int cli_out_streamed(const struct xsr_outfile *o) { return o->is_stdout || o->in_place; }
/*
 * Write all of @iov (@n vectors, any number: sent IOV_MAX at a time) to @fd,
 * retrying on EINTR and short writes; @iov is consumed.  Returns the octets
 * written, or -errno (-EIO for a write of 0).
 */
struct iovec;
int64_t cli_writev_all(int fd, struct iovec *iov, int n);

int cli_out_open(struct xsr_outfile *o, const char *verb, const char *path);
int cli_out_commit(struct xsr_outfile *o, const char *verb);
void cli_out_abort(struct xsr_outfile *o);

#endif
