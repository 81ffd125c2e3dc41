/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU backend: a running QEMU, reached through its QMP socket
 * (`-qmp unix:SOCK,server=on,wait=off`), saved by transcoding QEMU's own
 * migration stream (issue 18, path (a)).
 *
 * It has the whole-domain ops only (backends/backend.h: save_domain,
 * live_probe, restore_domain, resume, finish): QEMU's guest memory is not
 * reachable from here page by page, so save_domain asks QEMU to migrate
 * into a pipe
 * (`getfd` + `migrate fd:`), copies the stream to an unlinked file in
 * $TMPDIR (/var/tmp by default: a guest's RAM, on disk rather than in a
 * tmpfs), and imports it with the library's QEMU module
 * (xsrelf/qemu.h) onto the output.  Without --live the guest is stopped
 * first; with it QEMU pre-copies while the guest runs.  finish() resumes a
 * guest that was running (QEMU leaves it paused after a migration) or, to
 * destroy it, quits QEMU.  restore_domain (on a QEMU qemu_spawn started
 * with -incoming defer) exports the image as QEMU's stream
 * (xsr_qemu_export) into a pipe QEMU reads through `getfd` +
 * `migrate-incoming fd:`.
 *
 * The shared-memory path (issue 18, path (b); docs/qemu-compat.md): when
 * pc.ram is a shared memory backend (query-memdev; its fd found through
 * /proc/PID/maps and /proc/PID/fd), save_domain sets x-ignore-shared so
 * that QEMU sends only its device state and other blocks, and the library
 * reads pc.ram from the memfd or file (xsr_qemu_import_shared_fd);
 * restore_domain fills the new QEMU's shared pc.ram from the image and
 * exports the stream without it (xsr_qemu_export_shared).  The opts'
 * memory_path chooses (XSR_MEMPATH_*), the stats say which was taken.
 */
#ifndef XSR_BACKEND_QEMU_H
#define XSR_BACKEND_QEMU_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"

/* "qemu:SOCK" -> SOCK, or NULL if @s is not a QEMU target. */
const char *qemu_target(const char *s);

/*
 * Connect to the QMP socket @sock and negotiate capabilities.  0 and *@be,
 * or -1 with the reason in @err (*@be NULL).
 */
int qemu_open(struct xsr_backend **be, const char *sock, char *err, size_t errlen);

/*
 * The restore half: start QEMU as @argv (@argc words, the program first:
 * "qemu-system-x86_64 -m 64 ..."; as the image's guest had it) with
 * "-incoming defer", a private QMP socket and, if @paused, "-S" (and, if
 * @shared_ram is not 0 and no word of @argv names a "memory-backend=", xsr's
 * shared memory for pc.ram: "-object memory-backend-memfd,id=pc.ram,
 * size=@shared_ram,share=on -machine memory-backend=pc.ram", which
 * restore_domain's shared-memory path then fills); wait for
 * its socket and connect.  QEMU runs in its own session with stdin on
 * /dev/null and xsr's stdout and stderr, and outlives xsr.  0 with *@pid
 * and *@be (restore_domain sends the image, resume() starts a paused
 * guest, finish(1) quits QEMU), or -1 with the reason in @err and no QEMU
 * left running.
 */
int qemu_spawn(struct xsr_backend **be, char *const *argv, int argc, int paused, uint64_t shared_ram, pid_t *pid,
	       char *err, size_t errlen);

#endif
