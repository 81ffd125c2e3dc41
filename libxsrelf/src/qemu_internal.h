/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the QEMU module (qemu_*.c).  The public API is xsrelf/qemu.h;
 * the mapping is docs/qemu-compat.md.
 */
#ifndef XSRELF_QEMU_INTERNAL_H
#define XSRELF_QEMU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Limits of the import (docs/limits.md, "QEMU import"). */
#define QEMU_MAX_VMDESC (8u << 20)     /* octets of VMDESCRIPTION JSON */
#define QEMU_MAX_JSON_NODES (1u << 20) /* values in it */
#define QEMU_MAX_JSON_DEPTH 64u        /* nesting of arrays and objects */
#define QEMU_MAX_BLOCKS 1024u          /* RAM blocks in the MEM_SIZE list */
#define QEMU_MAX_DEV_BODY (128u << 20) /* octets of one device section's state */
#define QEMU_MAX_CPU_BODY (1u << 20)   /* octets of a cpu section decoded */
#define QEMU_MAX_VMCI_BODY 64u         /* octets of the vmcoreinfo device's state decoded (QEMU 7.2: 17) */
#define QEMU_VMCI_BODY_V1 17u         /* has_vmcoreinfo, host_format, guest_format, size, paddr (no VMDESCRIPTION) */
#define QEMU_MAX_VMCI_NOTE (1u << 20)  /* octets of the guest's VMCOREINFO note copied (QEMU's dump.c: the same) */
#define QEMU_MAX_FOOTERS (1u << 17)    /* without a VMDESCRIPTION: footer candidates kept (16 octets each) */

/*
 * The built-in layout of the `cpu` section (qemu_cputab.c): QEMU 7.2's
 * vmstate_x86_cpu at version_id QEMU_CPU_TABLE_VERSION, its fields before
 * the subsections in stream order, QEMU_CPU_TABLE_OCTETS in all; @sub
 * lists a struct's members (one element of @size octets).
 */
#define QEMU_CPU_TABLE_VERSION 12u
#define QEMU_CPU_TABLE_OCTETS 1817u
struct qemu_tfield {
	const char *name;
	uint16_t size, n; /* octets of one element, elements */
	const struct qemu_tfield *sub;
	uint8_t nsub;
};
extern const struct qemu_tfield qemu_cpu_v12[];
extern const unsigned qemu_cpu_v12_count;
/* Field @name of the table: its offset and index; 0, or -1 if it has none. */
int qemu_cpu_v12_field(const char *name, uint64_t *off, unsigned *idx);

/*
 * A small bounded JSON reader for the VMDESCRIPTION (qemu_json.c): the text
 * is parsed in place (strings are unescaped into it and NUL-terminated), into
 * an array of nodes linked by index.  QJ_NONE is "no such node".
 */
#define QJ_NONE UINT32_MAX
enum qj_type { QJ_NULL, QJ_BOOL, QJ_NUM, QJ_STR, QJ_ARR, QJ_OBJ };
struct qj_node {
	uint8_t type;     /* enum qj_type */
	int64_t num;      /* QJ_NUM (integers only; a fraction or exponent is refused), QJ_BOOL */
	const char *key;  /* member name inside an object, else NULL */
	const char *str;  /* QJ_STR */
	uint32_t child;   /* first element or member, QJ_NONE */
	uint32_t next;    /* next sibling, QJ_NONE */
};
struct qj_doc {
	struct qj_node *n; /* n[0] is the root */
	uint32_t count, cap;
};
/* Parse @len octets at @text (modified); 0, or -1 with a static reason and the octet offset. */
int qj_parse(char *text, size_t len, struct qj_doc *d, const char **why, size_t *where);
void qj_free(struct qj_doc *d);
/* Member @key of object @obj, or QJ_NONE. */
uint32_t qj_get(const struct qj_doc *d, uint32_t obj, const char *key);
/* Member @key as a non-negative integer: 0, or -1 if absent or not one. */
int qj_uint(const struct qj_doc *d, uint32_t obj, const char *key, uint64_t *v);
/* Member @key as a string, or NULL. */
const char *qj_str(const struct qj_doc *d, uint32_t obj, const char *key);

/*
 * A file format that wraps a QEMU stream (libvirt's save header,
 * libvirt_save.c): its own item goes first among the PASSTHRU items (seq
 * 0, @origin, type 0, @item_len octets at @item), and @config, a JSON
 * member ("\"libvirt\": {...}"), goes before "qemu" in the CONFIG section.
 */
struct xsr_source;
struct xsr_qemu_import_opts;
struct xsr_qemu_import_stats;
struct qemu_wrap {
	uint16_t origin;
	const void *item;
	size_t item_len;
	const char *config; /* or NULL; at most 4 KiB */
};
/*
 * xsr_qemu_import_fd() of the @size octets at @base of @in (which the
 * caller keeps open), with @wrap (NULL: none).  Messages name offsets of
 * the stream, counted from @base.
 */
int qemu_import_source(const struct xsr_source *in, uint64_t base, uint64_t size, int out_fd,
		       const struct xsr_qemu_import_opts *o, const struct qemu_wrap *wrap,
		       struct xsr_qemu_import_stats *st, char *err, size_t errlen);

#endif
