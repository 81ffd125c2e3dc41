/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tool's one error helper: a message into the caller's buffer, and the
 * code to return with it.  The engines, the backends and the VMM print
 * nothing; they hand the reason up in (@err, @errlen) and cli/ says it.
 */
#ifndef XSR_UTIL_ERR_H
#define XSR_UTIL_ERR_H

#include <stddef.h>

/* Format the message into @err (NULL or @errlen 0: none) and return @rc. */
int util_fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
