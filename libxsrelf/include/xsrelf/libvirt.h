/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: libvirt's `virsh save` files (a foreign-format module,
 * xsrelf/foreign.h), around the QEMU stream of xsrelf/qemu.h.
 *
 * Import: a file as libvirt's QEMU driver writes it (src/qemu/
 * qemu_saveimage.c): a 92-octet header, the domain XML and the optional
 * save cookie XML padded with zeros to data_len octets, then QEMU's
 * migration stream, raw or compressed by the program the header names
 * (gzip, bzip2, xz or lzop; their own stream formats) -> one xsrelf image:
 *
 *  - the stream as xsr_qemu_import_fd() imports it (memory, vCPUs, every
 *    other item as PASSTHRU);
 *  - the libvirt header, XML, cookie and padding kept verbatim as the first
 *    PASSTHRU item, origin XSR_PT_ORIGIN_LIBVIRT_HEADER, type 0, so that an
 *    export can write the same file back;
 *  - the domain's name and uuid, was_running and the compression stated in
 *    the CONFIG section ({"libvirt": {...}, "qemu": {...}}).
 *
 * A compressed stream is inflated into an unlinked temporary file (the
 * QEMU import reads its input twice): its size is bounded by the disk and
 * max_stream, never by memory.  The conventions of xsrelf/foreign.h hold:
 * zero-initialised options that begin with struct xsr_foreign_cb (inside
 * the QEMU options), optional stats, 0 or a negative enum xsr_err with a
 * message naming the file offset, nothing printed.  The mapping is
 * docs/qemu-compat.md, "libvirt save files".
 */
#ifndef XSRELF_LIBVIRT_H
#define XSRELF_LIBVIRT_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/qemu.h>

#define XSR_LIBVIRT_NO_MAX_STREAM UINT64_MAX

struct xsr_libvirt_import_opts {
	/* for the QEMU stream inside; its cb (first member) serves the whole import */
	struct xsr_qemu_import_opts qemu;
	/* where a compressed stream is inflated (an unlinked file): NULL = $TMPDIR, else /tmp */
	const char *tmpdir;
	/*
	 * A stream that inflates to more octets is refused (XSR_E_LIMIT).  0:
	 * twice the RAM its ram section declares plus 256 MiB (64 GiB where its
	 * start declares none); XSR_LIBVIRT_NO_MAX_STREAM: no limit (the
	 * temporary file's disk bounds it).
	 */
	uint64_t max_stream;
};

struct xsr_libvirt_import_stats {
	struct xsr_qemu_import_stats qemu; /* of the stream inside */
	uint32_t version;     /* the header's: 1 or 2 */
	uint32_t compressed;  /* enum xsr_libvirt_compress */
	uint32_t was_running; /* 0 or 1 */
	uint32_t data_len;    /* octets of XML, cookie and padding after the header */
	uint32_t xml_len;     /* of them, the domain XML's (up to the cookie) */
	uint32_t cookie_len;  /* the cookie's (to data_len), 0 without one */
	int big_endian;       /* the header's numbers were big-endian (a big-endian host wrote it) */
	uint64_t stream_offset; /* where the stream begins in the file: 92 + data_len */
	uint64_t stream_size;   /* octets of the stream, inflated */
	char domain[256];       /* the XML's first <name>, as written (entities not expanded), "" if none */
	char uuid[64];          /* the XML's first <uuid>, "" if none */
};

/* the header's `compressed` (libvirt's virQEMUSaveFormat) */
enum xsr_libvirt_compress {
	XSR_LIBVIRT_RAW = 0,
	XSR_LIBVIRT_GZIP = 1,
	XSR_LIBVIRT_BZIP2 = 2,
	XSR_LIBVIRT_XZ = 3,
	XSR_LIBVIRT_LZOP = 4,
	XSR_LIBVIRT_ZSTD = 5, /* newer libvirt (save_image_format "zstd"): `zstd -c` */
};

/*
 * The save file on @in_fd (a regular file) as an xsrelf image onto @out_fd
 * (a seekable image needs a regular file; a stream goes anywhere).  Neither
 * fd is closed.  A file whose magic is "LibvirtQemudPart" (libvirt had not
 * finished writing it) is refused as incomplete.  0, or a negative enum
 * xsr_err with the reason in @err.  @o and @st may be NULL.
 */
XSR_API int xsr_libvirt_import_fd(int in_fd, int out_fd, const struct xsr_libvirt_import_opts *o,
				  struct xsr_libvirt_import_stats *st, char *err, size_t errlen);
/* The same from @len octets at @buf (kept valid and unchanged during the call). */
XSR_API int xsr_libvirt_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_libvirt_import_opts *o,
				   struct xsr_libvirt_import_stats *st, char *err, size_t errlen);

/* Name of a `compressed` value ("raw", "gzip", "bzip2", "xz", "lzop", "zstd", "unknown"); static. */
XSR_API const char *xsr_libvirt_compress_name(uint32_t c);

/* ------------------------------------------------------------------ */
/* Facts of the file (libvirt src/qemu/qemu_saveimage.[ch])            */
/* ------------------------------------------------------------------ */
#define XSR_LIBVIRT_SAVE_MAGIC "LibvirtQemudSave"   /* 16 octets, no NUL */
#define XSR_LIBVIRT_SAVE_PARTIAL "LibvirtQemudPart" /* while libvirt is still writing */
#define XSR_LIBVIRT_SAVE_HDR 92u /* magic, 5 x u32 (version, data_len, was_running, compressed, cookieOffset), 14 x u32 unused */

struct xsr_libvirt_export_stats {
	struct xsr_qemu_export_stats qemu; /* of the stream */
	uint32_t data_len;                 /* octets of XML, cookie and padding written after the header */
	uint64_t bytes;                    /* octets written in all */
};

/*
 * Export: an image imported from a virsh save file back to one, onto
 * @out_fd (a file or a pipe, written in order): the header, XML, cookie and
 * padding from its PASSTHRU origin XSR_PT_ORIGIN_LIBVIRT_HEADER item, with
 * `compressed` set to 0 (raw, which `virsh restore` reads as it is), then
 * the QEMU stream xsr_qemu_export() writes (@o is its options).  An image
 * without that item (imported from a bare QEMU stream, made by xsr save) is
 * refused with XSR_E_UNSUPPORTED: libvirt needs the domain XML.  0, or a
 * negative enum xsr_err with the reason in @err.  @o and @st may be NULL.
 * (XSRELF_1.5)
 */
struct xsr_image;
XSR_API int xsr_libvirt_export(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
			       struct xsr_libvirt_export_stats *st, char *err, size_t errlen);

#endif
