/*
 * Pull parser for the manifest text format; see manifest.h and
 * PROTOCOL.md.  Canonical form is enforced, not just accepted: a manifest
 * has exactly one byte representation, so the bytes approvers sign are the
 * bytes the receiver checks, and two different texts never describe the
 * same bundle.
 */
#include "proto/manifest.h"

#include <string.h>

enum stage {
	ST_MAGIC,
	ST_FIELDS,
	ST_FILES,
	ST_APPROVALS,
};

static const char *const verdict_names[PMAN_VERDICT_COUNT] = {
	[PMAN_OK] = "ok",
	[PMAN_DONE] = "done",
	[PMAN_ERR_MAGIC] = "manifest_magic",
	[PMAN_ERR_SYNTAX] = "manifest_syntax",
	[PMAN_ERR_ORDER] = "manifest_order",
	[PMAN_ERR_ESCAPE] = "manifest_escape",
	[PMAN_ERR_PATH] = "unsafe_path",
	[PMAN_ERR_SORT] = "manifest_sort",
	[PMAN_ERR_LIMIT] = "manifest_limit",
	[PMAN_ERR_TRUNCATED] = "manifest_truncated",
};

static const char *const field_names[PMAN_F_COUNT] = {
	[PMAN_F_NAME] = "name",
	[PMAN_F_VERSION] = "version",
	[PMAN_F_CREATED] = "created",
	[PMAN_F_EXPIRES] = "expires",
	[PMAN_F_PRIORITY] = "priority",
	[PMAN_F_ROLLBACK_TO] = "rollback-to",
	[PMAN_F_CHANGES] = "changes",
	[PMAN_F_REASON] = "reason",
	[PMAN_F_DESTINATION] = "destination",
	[PMAN_F_META] = "meta",
};

const char *
pman_verdict_name(enum pman_verdict v)
{
	return (unsigned)v < PMAN_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

const char *
pman_field_name(enum pman_field f)
{
	return (unsigned)f < PMAN_F_COUNT ? field_names[f] : "unknown";
}

void
pman_init(struct pman_cursor *c, const void *buf, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->buf = buf;
	c->len = len;
	c->stage = ST_MAGIC;
	c->last_field = -1;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Lower-case hex only: the canonical form. */
static bool
parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
	size_t i;

	if (len != 2 * n)
		return false;
	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* Decimal without sign or leading zeros, at most 2^63 - 1. */
static bool
parse_u63(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(s[i] - '0')) /
		    10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int
upper_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool
needs_escape(unsigned char ch)
{
	return ch < 0x21 || ch > 0x7e || ch == '%';
}

enum pman_verdict
pman_unescape(const char *in, size_t len, char *out, size_t cap,
    size_t *out_len)
{
	size_t i = 0, o = 0;

	if (cap == 0)
		return PMAN_ERR_LIMIT;
	while (i < len) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '%') {
			int hi, lo;

			if (len - i < 3)
				return PMAN_ERR_ESCAPE;
			hi = upper_hexval(in[i + 1]);
			lo = upper_hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return PMAN_ERR_ESCAPE;
			ch = (unsigned char)(hi << 4 | lo);
			if (ch == 0 || !needs_escape(ch))
				return PMAN_ERR_ESCAPE;
			i += 3;
		} else if (needs_escape(ch)) {
			return PMAN_ERR_ESCAPE;
		} else {
			i++;
		}
		if (cap - o < 2)
			return PMAN_ERR_LIMIT;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return PMAN_OK;
}

size_t
pman_escape(const char *in, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, o = 0;

	if (cap == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (needs_escape(ch)) {
			if (cap - o < 4)
				return 0;
			out[o++] = '%';
			out[o++] = digits[ch >> 4];
			out[o++] = digits[ch & 15];
		} else {
			if (cap - o < 2)
				return 0;
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

enum pman_verdict
pman_path_check(const char *path, size_t len, size_t max_len)
{
	size_t i, start = 0;

	if (len == 0 || len > max_len || len > PMAN_MAX_VALUE)
		return PMAN_ERR_PATH;
	for (i = 0; i <= len; i++) {
		size_t clen;

		if (i < len && path[i] != '/') {
			unsigned char ch = (unsigned char)path[i];

			if (ch < 0x20 || ch == 0x7f)
				return PMAN_ERR_PATH;
			continue;
		}
		clen = i - start;
		if (clen == 0 || clen > PMAN_MAX_COMPONENT)
			return PMAN_ERR_PATH; /* absolute, "//" or trailing / */
		if ((clen == 1 && path[start] == '.') ||
		    (clen == 2 && path[start] == '.' && path[start + 1] == '.'))
			return PMAN_ERR_PATH;
		if (start == 0 && clen == sizeof(PMAN_RESERVED_DIR) - 1 &&
		    memcmp(path, PMAN_RESERVED_DIR, clen) == 0)
			return PMAN_ERR_PATH;
		start = i + 1;
	}
	return PMAN_OK;
}

/* Validates an escaped value: canonical escaping and size cap. */
static enum pman_verdict
check_value(const char *v, size_t len)
{
	size_t i, n = 0;

	if (len == 0)
		return PMAN_ERR_SYNTAX;
	for (i = 0; i < len; n++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '%') {
			int hi, lo;

			if (len - i < 3)
				return PMAN_ERR_ESCAPE;
			hi = upper_hexval(v[i + 1]);
			lo = upper_hexval(v[i + 2]);
			if (hi < 0 || lo < 0)
				return PMAN_ERR_ESCAPE;
			ch = (unsigned char)(hi << 4 | lo);
			if (ch == 0 || !needs_escape(ch))
				return PMAN_ERR_ESCAPE;
			i += 3;
		} else if (needs_escape(ch)) {
			return PMAN_ERR_ESCAPE;
		} else {
			i++;
		}
	}
	return n > PMAN_MAX_VALUE ? PMAN_ERR_LIMIT : PMAN_OK;
}

/* "YYYY-MM-DDTHH:MM:SSZ", digits where digits go. */
static bool
is_timestamp(const char *v, size_t len)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	if (len != sizeof(shape) - 1)
		return false;
	for (i = 0; i < len; i++) {
		if (shape[i] == 'd' ? (v[i] < '0' || v[i] > '9') :
		    v[i] != shape[i])
			return false;
	}
	return true;
}

/* Compares two escaped paths by their unescaped bytes. */
static int
cmp_escaped(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;

	while (i < alen && j < blen) {
		unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[j];

		if (ca == '%') {
			ca = (unsigned char)(upper_hexval(a[i + 1]) << 4 |
			    upper_hexval(a[i + 2]));
			i += 3;
		} else {
			i++;
		}
		if (cb == '%') {
			cb = (unsigned char)(upper_hexval(b[j + 1]) << 4 |
			    upper_hexval(b[j + 2]));
			j += 3;
		} else {
			j++;
		}
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	if (i < alen)
		return 1;
	if (j < blen)
		return -1;
	return 0;
}

static bool
word_is(const char *w, size_t wlen, const char *lit)
{
	return strlen(lit) == wlen && memcmp(w, lit, wlen) == 0;
}

/* Splits a line into up to n space-separated words; exact count needed. */
static bool
split(const char *line, size_t len, const char **w, size_t *wl, size_t n)
{
	size_t i = 0, k;

	for (k = 0; k < n; k++) {
		size_t s = i;

		if (k == n - 1) {
			i = len;
		} else {
			while (i < len && line[i] != ' ')
				i++;
			if (i == len)
				return false;
		}
		w[k] = line + s;
		wl[k] = i - s;
		if (wl[k] == 0)
			return false;
		i++;
	}
	/* The last word may not contain spaces either. */
	return memchr(w[n - 1], ' ', wl[n - 1]) == NULL;
}

static enum pman_verdict
parse_field(struct pman_cursor *c, const char *line, size_t len,
    struct pman_line *out)
{
	const char *w[2];
	size_t wl[2];
	enum pman_verdict v;
	int f;

	if (!split(line, len, w, wl, 2))
		return PMAN_ERR_SYNTAX;
	for (f = 0; f < PMAN_F_COUNT; f++)
		if (word_is(w[0], wl[0], field_names[f]))
			break;
	if (f == PMAN_F_COUNT)
		return PMAN_ERR_SYNTAX;
	if (f < c->last_field || (f == c->last_field && f != PMAN_F_META))
		return PMAN_ERR_ORDER;
	if (f > PMAN_F_NAME && c->last_field < PMAN_F_NAME)
		return PMAN_ERR_ORDER;
	if (f > PMAN_F_VERSION && c->last_field < PMAN_F_VERSION)
		return PMAN_ERR_ORDER;
	v = check_value(w[1], wl[1]);
	if (v != PMAN_OK)
		return v;
	switch (f) {
	case PMAN_F_CREATED:
	case PMAN_F_EXPIRES:
		if (!is_timestamp(w[1], wl[1]))
			return PMAN_ERR_SYNTAX;
		break;
	case PMAN_F_PRIORITY: {
		uint64_t p;

		if (!parse_u63(w[1], wl[1], &p) || p > 999)
			return PMAN_ERR_SYNTAX;
		break;
	}
	case PMAN_F_META: {
		const char *eq = memchr(w[1], '=', wl[1]);
		size_t klen;

		/* Both key and value non-empty, as common/manifest.c holds. */
		if (eq == NULL || eq == w[1] || eq == w[1] + wl[1] - 1)
			return PMAN_ERR_SYNTAX;
		klen = (size_t)(eq - w[1]);
		if (c->last_key != NULL &&
		    cmp_escaped(c->last_key, c->last_key_len, w[1], klen) >= 0)
			return PMAN_ERR_SORT;
		c->last_key = w[1];
		c->last_key_len = klen;
		break;
	}
	default:
		break;
	}
	c->last_field = f;
	out->kind = PMAN_FIELD;
	out->field = (enum pman_field)f;
	out->val = w[1];
	out->val_len = wl[1];
	return PMAN_OK;
}

static enum pman_verdict
parse_file(struct pman_cursor *c, const char *line, size_t len,
    struct pman_line *out)
{
	const char *w[5];
	size_t wl[5];
	enum pman_verdict v;
	char path[PMAN_MAX_VALUE + 1];
	size_t plen;

	if (!split(line, len, w, wl, 5) || !word_is(w[0], wl[0], "file"))
		return PMAN_ERR_SYNTAX;
	if (!parse_hex(w[1], wl[1], out->sha256, sizeof(out->sha256)) ||
	    !parse_u63(w[2], wl[2], &out->size) || wl[3] != 1 ||
	    (w[3][0] != 'x' && w[3][0] != '-'))
		return PMAN_ERR_SYNTAX;
	out->exec = w[3][0] == 'x';
	v = pman_unescape(w[4], wl[4], path, sizeof(path), &plen);
	if (v != PMAN_OK)
		return v == PMAN_ERR_LIMIT ? PMAN_ERR_PATH : v;
	v = pman_path_check(path, plen, PMAN_MAX_VALUE);
	if (v != PMAN_OK)
		return v;
	if (c->last_path != NULL &&
	    cmp_escaped(c->last_path, c->last_path_len, w[4], wl[4]) >= 0)
		return PMAN_ERR_SORT;
	c->last_path = w[4];
	c->last_path_len = wl[4];
	out->kind = PMAN_FILE;
	out->path = w[4];
	out->path_len = wl[4];
	return PMAN_OK;
}

static enum pman_verdict
parse_approval(const char *line, size_t len, struct pman_line *out)
{
	const char *w[3];
	size_t wl[3];

	if (!split(line, len, w, wl, 3) || !word_is(w[0], wl[0], "approval"))
		return PMAN_ERR_SYNTAX;
	if (!parse_hex(w[1], wl[1], out->key_id, sizeof(out->key_id)) ||
	    !parse_hex(w[2], wl[2], out->sig, sizeof(out->sig)))
		return PMAN_ERR_SYNTAX;
	out->kind = PMAN_APPROVAL;
	return PMAN_OK;
}

enum pman_verdict
pman_next(struct pman_cursor *c, struct pman_line *out)
{
	const char *line, *nl;
	size_t len, left;

	memset(out, 0, sizeof(*out));
	left = c->len - c->off;
	if (left == 0) {
		if (c->stage == ST_APPROVALS)
			return PMAN_DONE;
		return c->stage == ST_MAGIC ? PMAN_ERR_MAGIC :
		    PMAN_ERR_TRUNCATED;
	}
	line = c->buf + c->off;
	nl = memchr(line, '\n', left < PMAN_MAX_LINE + 1 ? left :
	    PMAN_MAX_LINE + 1);
	if (nl == NULL)
		return left > PMAN_MAX_LINE ? PMAN_ERR_LIMIT :
		    PMAN_ERR_TRUNCATED;
	len = (size_t)(nl - line);
	c->off += len + 1;
	out->lineno = ++c->lineno;
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL)
		return PMAN_ERR_SYNTAX;

	switch (c->stage) {
	case ST_MAGIC:
		if (!word_is(line, len, PMAN_MAGIC_LINE))
			return PMAN_ERR_MAGIC;
		c->stage = ST_FIELDS;
		return pman_next(c, out);
	case ST_FIELDS:
		if (len >= 5 && memcmp(line, "file ", 5) == 0) {
			if (c->last_field < PMAN_F_VERSION)
				return PMAN_ERR_ORDER;
			c->stage = ST_FILES;
			return parse_file(c, line, len, out);
		}
		if (word_is(line, len, "end")) {
			if (c->last_field < PMAN_F_VERSION)
				return PMAN_ERR_ORDER;
			break;
		}
		return parse_field(c, line, len, out);
	case ST_FILES:
		if (!word_is(line, len, "end"))
			return parse_file(c, line, len, out);
		break;
	default:
		return parse_approval(line, len, out);
	}
	/* The "end" line. */
	c->stage = ST_APPROVALS;
	out->kind = PMAN_END;
	out->signed_len = c->off;
	return PMAN_OK;
}
