/*
 * logfmt values: the writer (logfmt_escape) and the strict parser; see
 * logfmt.h.  Both use the same plain_char(), so what the writer leaves
 * unquoted is exactly what the parser accepts unquoted.
 */
#include "common/logfmt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool
plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("._:/+@-,", c) != NULL);
}

static bool
key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

size_t
logfmt_escape(char *out, size_t cap, const char *val)
{
	const unsigned char *p = (const unsigned char *)val;
	bool plain = *p != '\0';
	size_t o = 0, i;

	if (cap < 8) {
		if (cap > 0)
			out[0] = '\0';
		return 0;
	}
	for (i = 0; p[i] != '\0'; i++)
		if (!plain_char(p[i]))
			plain = false;
	if (!plain)
		out[o++] = '"';
	for (i = 0; p[i] != '\0'; i++) {
		char esc[5];
		size_t n;

		if (plain || (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' &&
		    p[i] != '\\')) {
			esc[0] = (char)p[i];
			n = 1;
		} else if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			n = 2;
		} else if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
			esc[0] = '\\';
			esc[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
			n = 2;
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			n = 4;
		}
		/* Room for this, "...", the closing quote and NUL. */
		if (cap - o < n + 5) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, esc, n);
		o += n;
	}
	if (!plain)
		out[o++] = '"';
	out[o] = '\0';
	return o;
}


void
logfmt_iter_init(struct logfmt_iter *it, const char *text, size_t len)
{
	it->p = text;
	it->len = len;
	it->off = 0;
	it->err = 0;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Appends one byte of a value; false if val is full. */
static bool
put(char *val, size_t cap, size_t *o, char c)
{
	if (cap - *o < 2)
		return false;
	val[(*o)++] = c;
	return true;
}

int
logfmt_next(struct logfmt_iter *it, const char **key, size_t *klen,
    char *val, size_t cap, size_t *vlen)
{
	const unsigned char *p = (const unsigned char *)it->p;
	size_t len = it->len, off = it->off, o = 0;

	if (it->err != 0)
		return it->err;
	if (cap == 0)
		return it->err = -ENOSPC;
	val[0] = '\0';
	if (off == len)
		return 0;
	/* The key. */
	*key = it->p + off;
	while (off < len && key_char(p[off]))
		off++;
	*klen = (size_t)(it->p + off - *key);
	if (*klen == 0 || len - off < 2 || p[off] != '=')
		return it->err = -EBADMSG;
	off++;
	/* The value. */
	if (p[off] != '"') {
		while (off < len && plain_char(p[off])) {
			if (!put(val, cap, &o, (char)p[off]))
				return it->err = -ENOSPC;
			off++;
		}
		if (o == 0)
			return it->err = -EBADMSG;
	} else {
		for (off++;; off++) {
			unsigned char c;
			int hi, lo;

			if (off == len)
				return it->err = -EBADMSG;
			c = p[off];
			if (c == '"')
				break;
			if (c < 0x20 || c > 0x7e)
				return it->err = -EBADMSG;
			if (c == '\\') {
				if (len - off < 2)
					return it->err = -EBADMSG;
				switch (p[++off]) {
				case '"': c = '"'; break;
				case '\\': c = '\\'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'x':
					if (len - off < 3 ||
					    (hi = hexval(p[off + 1])) < 0 ||
					    (lo = hexval(p[off + 2])) < 0 ||
					    (hi | lo) == 0)
						return it->err = -EBADMSG;
					c = (unsigned char)(hi << 4 | lo);
					off += 2;
					break;
				default:
					return it->err = -EBADMSG;
				}
			}
			if (!put(val, cap, &o, (char)c))
				return it->err = -ENOSPC;
		}
		off++; /* the closing quote */
	}
	val[o] = '\0';
	*vlen = o;
	/* One separator, and never one at the very end but a newline. */
	if (off < len) {
		if (p[off] == '\n' && off + 1 == len)
			off++;
		else if ((p[off] == ' ' || p[off] == '\n') && off + 1 < len)
			off++;
		else
			return it->err = -EBADMSG;
	}
	it->off = off;
	return 1;
}

int
logfmt_parse(struct logfmt_record *r, const char *text, size_t len)
{
	struct logfmt_iter it;
	const char *key;
	size_t klen, vlen, used = 0, i;
	int rc = 0;

	r->n = 0;
	if (len > LOGFMT_MAX_TEXT)
		return -EBADMSG;
	logfmt_iter_init(&it, text, len);
	for (;;) {
		char *k;

		/* Key, NUL, value, NUL: never more than the escaped text
		 * plus one byte per pair, so buf cannot run out. */
		if (sizeof(r->buf) - used < 2) {
			rc = -EBADMSG;
			break;
		}
		k = r->buf + used;
		rc = logfmt_next(&it, &key, &klen, k, sizeof(r->buf) - used,
		    &vlen);
		if (rc <= 0)
			break;
		if (r->n == LOGFMT_MAX_FIELDS ||
		    sizeof(r->buf) - used - vlen - 1 < klen + 1) {
			rc = -EBADMSG;
			break;
		}
		/* The value moves up to make room for the key in front. */
		memmove(k + klen + 1, k, vlen + 1);
		memcpy(k, key, klen);
		k[klen] = '\0';
		for (i = 0; i < r->n; i++)
			if (strcmp(r->key[i], k) == 0)
				break;
		if (i < r->n) {
			rc = -EBADMSG;
			break;
		}
		r->key[r->n] = k;
		r->val[r->n] = k + klen + 1;
		r->n++;
		used += klen + 1 + vlen + 1;
	}
	if (rc != 0) {
		r->n = 0;
		return -EBADMSG;
	}
	return 0;
}

const char *
logfmt_get(const struct logfmt_record *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->val[i];
	return NULL;
}
