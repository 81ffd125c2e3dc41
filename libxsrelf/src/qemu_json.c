/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A bounded JSON reader for QEMU's VMDESCRIPTION: what QEMU's json-writer
 * emits (objects, arrays, strings, integers, true, false, null), with
 * limits on size, node count and depth (qemu_internal.h) so that a hostile
 * description costs what its text holds and never recursion without end.
 * Numbers with a fraction or an exponent are refused: the description has
 * none, and every number read from it is a size, count or version.
 */
#include <stdlib.h>
#include <string.h>

#include "qemu_internal.h"

struct qp {
	char *p, *end, *base;
	struct qj_doc *d;
	const char *why;
};

static void ws(struct qp *q)
{
	while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
		q->p++;
}

static uint32_t node(struct qp *q, uint8_t type)
{
	struct qj_doc *d = q->d;
	if (d->count >= QEMU_MAX_JSON_NODES) {
		q->why = "more values than the limit (2^20)";
		return QJ_NONE;
	}
	if (d->count == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 256;
		struct qj_node *n = realloc(d->n, (size_t)cap * sizeof(*n));
		if (!n) {
			q->why = "out of memory";
			return QJ_NONE;
		}
		d->n = n;
		d->cap = cap;
	}
	d->n[d->count] = (struct qj_node){.type = type, .child = QJ_NONE, .next = QJ_NONE};
	return d->count++;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string at q->p (the opening quote): unescaped in place, NUL-terminated; its start or NULL. */
static char *string(struct qp *q)
{
	char *out = ++q->p, *start = out;
	while (q->p < q->end && *q->p != '"') {
		unsigned char c = (unsigned char)*q->p++;
		if (c < 0x20) {
			q->why = "control character inside a string";
			return NULL;
		}
		if (c != '\\') {
			*out++ = (char)c;
			continue;
		}
		if (q->p >= q->end)
			break;
		char e = *q->p++;
		char r = e == '"' || e == '\\' || e == '/' ? e : e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n'
			 : e == 'r' ? '\r' : e == 't' ? '\t' : 0;
		if (r) {
			*out++ = r;
			continue;
		}
		if (e != 'u' || q->end - q->p < 4) {
			q->why = "bad escape in a string";
			return NULL;
		}
		unsigned v = 0;
		for (int i = 0; i < 4; i++) {
			int h = hexval(q->p[i]);
			if (h < 0) {
				q->why = "bad \\u escape in a string";
				return NULL;
			}
			v = v << 4 | (unsigned)h;
		}
		q->p += 4;
		/* names compared against are ASCII; anything else only has to stay shorter than its escape */
		if (v < 0x80) {
			*out++ = (char)v;
		} else if (v < 0x800) {
			*out++ = (char)(0xc0 | v >> 6);
			*out++ = (char)(0x80 | (v & 0x3f));
		} else {
			*out++ = (char)(0xe0 | v >> 12);
			*out++ = (char)(0x80 | ((v >> 6) & 0x3f));
			*out++ = (char)(0x80 | (v & 0x3f));
		}
	}
	if (q->p >= q->end) {
		q->why = "string without its closing quote";
		return NULL;
	}
	q->p++;
	*out = 0; /* out < q->p: the text only shrinks */
	return start;
}

static uint32_t value(struct qp *q, unsigned depth);

/* The members or elements of the container @n opened at q->p, up to @close. */
static int members(struct qp *q, uint32_t n, char close, unsigned depth)
{
	uint32_t last = QJ_NONE;
	q->p++;
	ws(q);
	if (q->p < q->end && *q->p == close) {
		q->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		ws(q);
		if (close == '}') {
			if (q->p >= q->end || *q->p != '"') {
				q->why = "object member without a name";
				return -1;
			}
			if (!(key = string(q)))
				return -1;
			ws(q);
			if (q->p >= q->end || *q->p != ':') {
				q->why = "':' missing after a member name";
				return -1;
			}
			q->p++;
		}
		uint32_t v = value(q, depth + 1);
		if (v == QJ_NONE)
			return -1;
		q->d->n[v].key = key;
		if (last == QJ_NONE)
			q->d->n[n].child = v;
		else
			q->d->n[last].next = v;
		last = v;
		ws(q);
		if (q->p < q->end && *q->p == ',') {
			q->p++;
			continue;
		}
		if (q->p < q->end && *q->p == close) {
			q->p++;
			return 0;
		}
		q->why = close == '}' ? "',' or '}' expected in an object" : "',' or ']' expected in an array";
		return -1;
	}
}

static uint32_t value(struct qp *q, unsigned depth)
{
	if (depth > QEMU_MAX_JSON_DEPTH) {
		q->why = "nested deeper than the limit (64)";
		return QJ_NONE;
	}
	ws(q);
	if (q->p >= q->end) {
		q->why = "value expected, text ended";
		return QJ_NONE;
	}
	char c = *q->p;
	uint32_t n;
	if (c == '{' || c == '[') {
		if ((n = node(q, c == '{' ? QJ_OBJ : QJ_ARR)) == QJ_NONE)
			return QJ_NONE;
		return members(q, n, c == '{' ? '}' : ']', depth) < 0 ? QJ_NONE : n;
	}
	if (c == '"') {
		if ((n = node(q, QJ_STR)) == QJ_NONE)
			return QJ_NONE;
		const char *s = string(q);
		q->d->n[n].str = s;
		return s ? n : QJ_NONE;
	}
	static const struct { const char *w; uint8_t t; int v; } words[] = {
		{"true", QJ_BOOL, 1}, {"false", QJ_BOOL, 0}, {"null", QJ_NULL, 0}};
	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(words[i].w);
		if ((size_t)(q->end - q->p) >= l && !memcmp(q->p, words[i].w, l)) {
			q->p += l;
			if ((n = node(q, words[i].t)) != QJ_NONE)
				q->d->n[n].num = words[i].v;
			return n;
		}
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		int neg = c == '-';
		if (neg)
			q->p++;
		uint64_t v = 0;
		int digits = 0;
		while (q->p < q->end && *q->p >= '0' && *q->p <= '9') {
			if (v > (UINT64_C(1) << 62) / 10) {
				q->why = "integer too large";
				return QJ_NONE;
			}
			v = v * 10 + (uint64_t)(*q->p++ - '0');
			digits++;
		}
		if (!digits || (q->p < q->end && (*q->p == '.' || *q->p == 'e' || *q->p == 'E'))) {
			q->why = "number that is not an integer";
			return QJ_NONE;
		}
		if ((n = node(q, QJ_NUM)) != QJ_NONE)
			q->d->n[n].num = neg ? -(int64_t)v : (int64_t)v;
		return n;
	}
	q->why = "unexpected character";
	return QJ_NONE;
}

int qj_parse(char *text, size_t len, struct qj_doc *d, const char **why, size_t *where)
{
	struct qp q = {.p = text, .end = text + len, .base = text, .d = d};
	memset(d, 0, sizeof(*d));
	uint32_t root = value(&q, 0);
	if (root != QJ_NONE) {
		ws(&q);
		if (q.p != q.end)
			q.why = "text after the value";
	}
	if (root == QJ_NONE || q.why) {
		*why = q.why ? q.why : "malformed";
		*where = (size_t)(q.p - text);
		return -1;
	}
	return 0;
}

void qj_free(struct qj_doc *d)
{
	free(d->n);
	memset(d, 0, sizeof(*d));
}

uint32_t qj_get(const struct qj_doc *d, uint32_t obj, const char *key)
{
	if (obj >= d->count || d->n[obj].type != QJ_OBJ)
		return QJ_NONE;
	for (uint32_t c = d->n[obj].child; c != QJ_NONE; c = d->n[c].next)
		if (d->n[c].key && !strcmp(d->n[c].key, key))
			return c;
	return QJ_NONE;
}

int qj_uint(const struct qj_doc *d, uint32_t obj, const char *key, uint64_t *v)
{
	uint32_t n = qj_get(d, obj, key);
	if (n == QJ_NONE || d->n[n].type != QJ_NUM || d->n[n].num < 0)
		return -1;
	*v = (uint64_t)d->n[n].num;
	return 0;
}

const char *qj_str(const struct qj_doc *d, uint32_t obj, const char *key)
{
	uint32_t n = qj_get(d, obj, key);
	return n != QJ_NONE && d->n[n].type == QJ_STR ? d->n[n].str : NULL;
}
