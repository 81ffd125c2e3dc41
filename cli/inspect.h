/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the inspection verbs (ls, diff, dump) share: any image opened for
 * random access, and numbers in and out.
 */
#ifndef XSR_INSPECT_H
#define XSR_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include <xsrelf/reader.h>

/*
 * Any image, seekable or streamed, from a file or standard input ("-"),
 * held as a seekable image.  Standard input, or a pipe or device given by
 * name, is first copied to an unnamed
 * temporary file, and a stream is converted (xsr_convert(), every record
 * checked) into another one, both in $TMPDIR (/tmp): memory stays bounded
 * whatever the image claims, at the cost of disk space for its data pages
 * (zero pages are holes).  Unnamed files (O_TMPFILE, or unlinked at once)
 * vanish with the process, whatever ends it.  A stream that claims more
 * pages than XSR_INSPECT_FREE_PAGES and more than one per 8 octets of its
 * size (a pfn entry) is refused: its copy's index would follow the claim.
 */
#define XSR_INSPECT_FREE_PAGES (UINT64_C(1) << 20)
struct xsr_anyimg {
	struct xsr_image *img; /* the seekable image (the input or its conversion) */
	int fd;		       /* the input as a regular file (the copy of stdin) */
	int img_fd;	       /* what img reads: fd, or the conversion */
	int layout;	       /* the input's enum xsr_layout */
	int stdin_copy;	       /* fd is a copy of standard input, a pipe or a device */
};

/*
 * Open @path for @verb.  Returns 0, or an exit status (XSR_EXIT_FAIL) with
 * the reason printed.  @verbose says on stderr what was copied or converted.
 */
int cli_anyimg_open(struct xsr_anyimg *a, const char *verb, const char *path, int verbose);
/* Release everything; a zeroed or failed @a is fine. */
void cli_anyimg_close(struct xsr_anyimg *a);

/*
 * 64-bit values in --json are strings, so that JavaScript and jq do not
 * round them: addresses, pfns, offsets and register values in hex ("0x1f"),
 * counts and sizes in decimal ("31").
 */
void cli_json_hex(FILE *f, uint64_t v);
void cli_json_dec(FILE *f, uint64_t v);

/*
 * An unsigned number for option @opt: decimal, or hex with 0x.  0, or -1
 * with a message printed.
 */
int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out);

#endif
