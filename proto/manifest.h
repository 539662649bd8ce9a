/*
 * The manifest text format (PROTOCOL.md, "Manifest"): a canonical,
 * line-oriented description of a bundle.  It travels as object 0 of every
 * transfer, followed by zero or more approval lines, and it is what
 * approvers sign.  This is the only parser of it: a pull parser over
 * (buf, len) that yields one validated line at a time, pointing into buf.
 * Pure: no allocation, no I/O.  It checks syntax, canonical escaping, field
 * order and the order and safety of file paths; policy (limits from the
 * receiver's configuration, case-folding collisions) is the caller's.
 *
 * Values are percent-escaped: every byte outside 0x21..0x7e, and '%'
 * itself, is written %XX with upper-case hex; nothing else may be escaped.
 */
#ifndef SLUICE_PROTO_MANIFEST_H
#define SLUICE_PROTO_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PMAN_MAGIC_LINE "sluice-manifest 1"
#define PMAN_MAX_LINE 16384
#define PMAN_MAX_VALUE 4096 /* unescaped bytes of a value or a path */
#define PMAN_MAX_COMPONENT 255
#define PMAN_RESERVED_DIR ".sluice"

enum pman_kind {
	PMAN_FIELD,    /* a header field */
	PMAN_FILE,     /* a file entry */
	PMAN_END,      /* the "end" line: the signed text stops after it */
	PMAN_APPROVAL, /* an approver's signature over the signed text */
};

/* Header fields, in the only order they may appear. */
enum pman_field {
	PMAN_F_NAME,
	PMAN_F_VERSION,
	PMAN_F_CREATED,
	PMAN_F_EXPIRES,
	PMAN_F_PRIORITY,
	PMAN_F_ROLLBACK_TO,
	PMAN_F_CHANGES,
	PMAN_F_REASON,
	PMAN_F_DESTINATION, /* the receiver_name it is for (policy, signed) */
	PMAN_F_META,  /* may repeat; value "key=value", keys strictly sorted */
	PMAN_F_COUNT
};

enum pman_verdict {
	PMAN_OK = 0,
	PMAN_DONE,          /* no more lines */
	PMAN_ERR_MAGIC,     /* first line is not "sluice-manifest 1" */
	PMAN_ERR_SYNTAX,    /* malformed line, unknown keyword, bad number */
	PMAN_ERR_ORDER,     /* field out of order, repeated, or missing */
	PMAN_ERR_ESCAPE,    /* bad or non-canonical escape, or NUL */
	PMAN_ERR_PATH,      /* unsafe or non-canonical path */
	PMAN_ERR_SORT,      /* file paths or meta keys not strictly increasing */
	PMAN_ERR_LIMIT,     /* a line or value over its cap */
	PMAN_ERR_TRUNCATED, /* no "end" line, or no final newline */
	PMAN_VERDICT_COUNT
};

const char *pman_verdict_name(enum pman_verdict v);
const char *pman_field_name(enum pman_field f);

struct pman_line {
	enum pman_kind kind;
	unsigned lineno;
	/* PMAN_FIELD */
	enum pman_field field;
	const char *val;     /* escaped value, borrowed */
	size_t val_len;
	/* PMAN_FILE */
	uint8_t sha256[32];
	uint64_t size;
	bool exec;
	const char *path;    /* escaped path, borrowed */
	size_t path_len;
	/* PMAN_END: bytes from the start through the end line's newline */
	size_t signed_len;
	/* PMAN_APPROVAL */
	uint8_t key_id[8];
	uint8_t sig[64];
};

struct pman_cursor {
	const char *buf;
	size_t len;
	size_t off;
	unsigned lineno;
	int stage;           /* private */
	int last_field;      /* private */
	const char *last_key; size_t last_key_len;   /* private: meta order */
	const char *last_path; size_t last_path_len; /* private: file order */
};

void pman_init(struct pman_cursor *c, const void *buf, size_t len);
/* Next line into *out: PMAN_OK, PMAN_DONE at the end, or an error. */
enum pman_verdict pman_next(struct pman_cursor *c, struct pman_line *out);

/*
 * Unescapes in[0..len) into out (cap bytes, NUL terminated).  PMAN_OK,
 * PMAN_ERR_ESCAPE (malformed, non-canonical, or NUL) or PMAN_ERR_LIMIT.
 */
enum pman_verdict pman_unescape(const char *in, size_t len, char *out,
    size_t cap, size_t *out_len);
/* Escapes len bytes into out (cap bytes, NUL terminated); returns the
 * escaped length or 0 if it does not fit (an empty input gives 0 too). */
size_t pman_escape(const char *in, size_t len, char *out, size_t cap);

/*
 * Is this unescaped relative path safe to create under a staging
 * directory?  Refuses empty paths, absolute paths, empty, "." and ".."
 * components, control characters (0x00-0x1f, 0x7f), components over 255
 * bytes, paths over max_len bytes, and a first component ".sluice" (the
 * bundle's own metadata directory; ".sluice" deeper down is an ordinary
 * name).
 */
enum pman_verdict pman_path_check(const char *path, size_t len,
    size_t max_len);

#endif
