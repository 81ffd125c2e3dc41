/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: the convention every foreign-format module follows.
 *
 * A foreign format (Xen's save files and streams today, QEMU's migration
 * stream and libvirt's save header next) is a library module with a header
 * of its own, xsrelf/NAME.h, whose functions are named xsr_NAME_*:
 *
 *   xsr_NAME_import_fd / _mem   the foreign octets -> an xsrelf image,
 *                               written to an fd through the one writer;
 *   xsr_NAME_export             an opened image (xsrelf/reader.h) -> the
 *                               foreign format, written to an fd in order
 *                               (a pipe is fine);
 *   xsr_NAME_*_name             record names, for messages.
 *
 * Each takes a zero-initialised options struct whose first member is a
 * struct xsr_foreign_cb, an optional stats struct it fills, and a message
 * buffer.  It returns 0 or a negative enum xsr_err (xsrelf/xsrelf.h) with
 * the message in that buffer, naming the offset of the input or the section
 * of the image where it went wrong ("libxc X86_PV_INFO record at offset
 * 0x48: ...").  It prints nothing: progress and warnings go to the
 * callbacks below.  Every write goes through the library's I/O
 * (xsrelf/io.h), so XSR_FAULT reaches it in test builds.  Items of the
 * source that xsrelf has no section for are kept in PASSTHRU sections
 * (struct xsr_passthru_hdr, xsrelf/format.h), so an export gives them back.
 */
#ifndef XSRELF_FOREIGN_H
#define XSRELF_FOREIGN_H

#include <stdint.h>

#include <xsrelf/xsrelf.h>

/* @done of @total units (pages) so far; called often, from the caller's thread. */
typedef void (*xsr_foreign_progress_fn)(void *ctx, uint64_t done, uint64_t total);
/*
 * A warning the operation went on after (an item left out, a header
 * rewritten): one line of text without "xsr VERB:" and without a newline.
 * @msg is valid during the call only.
 */
typedef void (*xsr_foreign_note_fn)(void *ctx, const char *msg);

/* The callbacks every foreign-format options struct begins with; all optional (NULL). */
struct xsr_foreign_cb {
	xsr_foreign_progress_fn progress;
	void *progress_ctx;
	xsr_foreign_note_fn note;
	void *note_ctx;
};

#endif
