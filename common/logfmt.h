/*
 * logfmt: the one writer and the one parser of the key=value lines other
 * processes read (the quarantine log, the audit log, <state_dir>/status,
 * the quarantine info files).  A value is either plain
 * ([A-Za-z0-9._:/+@,-], at least one byte) or quoted, "...", with \" \\
 * \n \r \t and \xHH (lower-case hex) for every other byte outside
 * 0x20..0x7e.  Values come from the wire (bundle names, versions, file
 * names), so the parser is strict: a line that the writer could not have
 * produced is an error as a whole, never a partial read, and a key given
 * twice is an error, so a value can never fake another key.
 *
 * Owner of the format: qlog.c, audit.c and receiver/lifecycle.c write
 * through logfmt_escape(); tools/sluice.c reads through logfmt_parse().
 * Fuzzed by tests/fuzz/fuzz_logfmt.c.
 */
#ifndef SLUICE_LOGFMT_H
#define SLUICE_LOGFMT_H

#include <stddef.h>

/*
 * Escapes one logfmt value into out (cap bytes, NUL terminated, truncated
 * with "..." if it does not fit).  Plain values are written as they are;
 * anything else is quoted.  Returns the length written.
 */
size_t logfmt_escape(char *out, size_t cap, const char *val);

/* ---- parsing ------------------------------------------------------------ */

#define LOGFMT_MAX_FIELDS 32
#define LOGFMT_MAX_TEXT 16384

/* Iterates the pairs of text, one by one; pairs are separated by one
 * space or one newline, and text may end with one newline. */
struct logfmt_iter {
	const char *p;
	size_t len, off;
	int err;
};

void logfmt_iter_init(struct logfmt_iter *it, const char *text, size_t len);
/*
 * Next pair: 1 with *key and *klen pointing into the text and the unescaped
 * value in val (cap bytes, NUL terminated, *vlen its length); 0 at the
 * end; -EBADMSG if the text is malformed here (sticky), -ENOSPC if the
 * value does not fit in val.  A value holding a NUL byte is malformed.
 */
int logfmt_next(struct logfmt_iter *it, const char **key, size_t *klen,
    char *val, size_t cap, size_t *vlen);

/* A whole parsed text: keys and values point into buf. */
struct logfmt_record {
	size_t n;
	const char *key[LOGFMT_MAX_FIELDS];
	const char *val[LOGFMT_MAX_FIELDS];
	char buf[LOGFMT_MAX_TEXT + 2 * LOGFMT_MAX_FIELDS];
};

/*
 * Parses all of text (len bytes, at most LOGFMT_MAX_TEXT) into r.  0, or
 * -EBADMSG (malformed, a key twice, longer than LOGFMT_MAX_TEXT or more
 * than LOGFMT_MAX_FIELDS pairs): then r holds no pair at all.
 */
int logfmt_parse(struct logfmt_record *r, const char *text, size_t len);
/* The value of key in r, or NULL. */
const char *logfmt_get(const struct logfmt_record *r, const char *key);

#endif
