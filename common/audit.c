/*
 * The audit log; see audit.h.  This file is the one writer and the one
 * parser of both the log and the head file.
 *
 * Verification runs in two passes: the chain (hashes, seq, prev, the
 * head) over the whole log first, then every signature.  The chain pass
 * costs a SHA-256 of the file and catches every edit that was not
 * followed by recomputing the chain; only a log whose chain holds pays
 * for the signatures (~45 us each), which catch the edits that were.
 */
#include "common/audit.h"
#include "common/hash.h"
#include "common/qlog.h"
#include "common/sign.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_LINE_MAX 8192
#define CTX_LEN 24
#define KEYID_HEX (2 * SIGN_KEYID_LEN)
#define SIG_HEX (2 * SIGN_SIG_LEN)
#define HEAD_MAX 512
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

_Static_assert(sizeof(AUDIT_SIG_CONTEXT) <= CTX_LEN, "context fits");
_Static_assert(sizeof(AUDIT_HEAD_CONTEXT) <= CTX_LEN, "context fits");

struct audit {
	/* flock() serialises processes; threads of one process share the
	 * open file and so the lock: this serialises them. */
	pthread_mutex_t lock;
	int fd;
	const struct sign_seckey *key;
	struct sign_pubkey pub;
	char *head_path;       /* NULL: no head file */
	uint64_t seq;          /* of the last record */
	char head[65];         /* hash of the last record */
};

/*
 * Splits a record positionally: "seq=N ts=T prev=H decision=D ..." at the
 * start and "[ key=K sig=S] hash=H" at the end.  Values in between may
 * contain anything escaped, so nothing is searched for there.
 */
struct parsed {
	uint64_t seq;
	const char *prev;      /* 64 hex */
	const char *decision;
	size_t decision_len;
	const char *key;       /* 16 hex or NULL */
	const char *sig;       /* 128 hex or NULL */
	const char *hash;      /* 64 hex */
	size_t hashed_len;     /* bytes the hash covers */
	size_t signed_len;     /* bytes the signature covers */
};

static bool
all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A decimal without sign, leading zero or overflow; the end in *e. */
static bool
parse_u64(const char *s, const char *end, uint64_t *v, const char **e)
{
	uint64_t n = 0;
	const char *q = s;

	while (q < end && *q >= '0' && *q <= '9') {
		if (n > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*q - '0');
		q++;
	}
	if (q == s || (*s == '0' && q - s > 1))
		return false;
	*v = n;
	*e = q;
	return true;
}

static bool
parse_record(const char *line, size_t len, struct parsed *p)
{
	const char *q = line, *end = line + len, *e;
	size_t tail;

	memset(p, 0, sizeof(*p));
	if (len < 4 + 1 + 4 + 20 + 6 + 64 + 10 + 6 + 64 ||
	    len > AUDIT_LINE_MAX || memchr(line, '\0', len) != NULL ||
	    memchr(line, '\n', len) != NULL || memcmp(q, "seq=", 4) != 0)
		return false;
	if (!parse_u64(q + 4, end, &p->seq, &e) ||
	    (size_t)(end - e) < 4 + 20 + 6 + 64 + 10 + 6 + 64 ||
	    memcmp(e, " ts=", 4) != 0)
		return false;
	q = e + 4 + 20;
	if (memcmp(q, " prev=", 6) != 0 || !all_hex(q + 6, 64))
		return false;
	p->prev = q + 6;
	q += 6 + 64;
	if (memcmp(q, " decision=", 10) != 0)
		return false;
	p->decision = q + 10;
	if ((size_t)(end - p->decision) < 6 + 64)
		return false;
	/* Bounded: a line from a buffer is not NUL terminated. */
	while (p->decision + p->decision_len < end - 6 - 64 &&
	    p->decision[p->decision_len] != ' ')
		p->decision_len++;
	if (memcmp(end - 64 - 6, " hash=", 6) != 0 || !all_hex(end - 64, 64))
		return false;
	p->hash = end - 64;
	p->hashed_len = len - 64 - 6;
	/* The signature and key id, if there, must lie after decision. */
	tail = 5 + KEYID_HEX + 5 + SIG_HEX;
	if ((size_t)(line + p->hashed_len - p->decision) >= tail &&
	    memcmp(line + p->hashed_len - SIG_HEX - 5, " sig=", 5) == 0 &&
	    all_hex(line + p->hashed_len - SIG_HEX, SIG_HEX) &&
	    memcmp(line + p->hashed_len - tail, " key=", 5) == 0 &&
	    all_hex(line + p->hashed_len - SIG_HEX - 5 - KEYID_HEX,
	    KEYID_HEX)) {
		p->sig = line + p->hashed_len - SIG_HEX;
		p->key = p->sig - 5 - KEYID_HEX;
		p->signed_len = p->hashed_len - SIG_HEX - 5;
	}
	return true;
}

/* Context (NUL padded to CTX_LEN) + the line up to " sig=". */
static bool
record_sig_ok(const struct sign_pubkey *key, const char *line,
    const struct parsed *p)
{
	uint8_t msg[CTX_LEN + AUDIT_LINE_MAX], sig[SIGN_SIG_LEN];
	char sh[SIG_HEX + 1];

	if (p->sig == NULL || p->signed_len > AUDIT_LINE_MAX)
		return false;
	memcpy(sh, p->sig, SIG_HEX);
	sh[SIG_HEX] = '\0';
	if (util_unhex(sig, SIGN_SIG_LEN, sh) != 0)
		return false;
	memset(msg, 0, CTX_LEN);
	memcpy(msg, AUDIT_SIG_CONTEXT, sizeof(AUDIT_SIG_CONTEXT) - 1);
	memcpy(msg + CTX_LEN, line, p->signed_len);
	return sign_verify(key, sig, msg, CTX_LEN + p->signed_len);
}

/* Context + seq (big endian) + the raw hash: what a head file signs. */
static int
head_message(uint8_t msg[CTX_LEN + 8 + HASH_LEN], const struct audit_head *h)
{
	int i;

	memset(msg, 0, CTX_LEN);
	memcpy(msg, AUDIT_HEAD_CONTEXT, sizeof(AUDIT_HEAD_CONTEXT) - 1);
	for (i = 0; i < 8; i++)
		msg[CTX_LEN + i] = (uint8_t)(h->seq >> (56 - 8 * i));
	return util_unhex(msg + CTX_LEN + 8, HASH_LEN, h->hash);
}

static int verr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
verr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

int
audit_head_parse(const uint8_t *buf, size_t len,
    const struct sign_pubkey *key, struct audit_head *h, char *err,
    size_t errlen)
{
	const char *s = (const char *)buf, *end = s + len, *e;
	uint8_t msg[CTX_LEN + 8 + HASH_LEN], sig[SIGN_SIG_LEN];
	char sh[SIG_HEX + 1];

	memset(h, 0, sizeof(*h));
	/* "seq=N hash=<64 hex> sig=<128 hex>\n", nothing else. */
	if (len < 4 || len > HEAD_MAX || memcmp(s, "seq=", 4) != 0 ||
	    !parse_u64(s + 4, end, &h->seq, &e) ||
	    (size_t)(end - e) != 6 + 64 + 5 + SIG_HEX + 1 ||
	    memcmp(e, " hash=", 6) != 0 || !all_hex(e + 6, 64) ||
	    memcmp(e + 6 + 64, " sig=", 5) != 0 ||
	    !all_hex(e + 6 + 64 + 5, SIG_HEX) || end[-1] != '\n')
		return verr(err, errlen, "not a head file (seq=N hash=HEX "
		    "sig=HEX)");
	memcpy(h->hash, e + 6, 64);
	h->hash[64] = '\0';
	memcpy(sh, e + 6 + 64 + 5, SIG_HEX);
	sh[SIG_HEX] = '\0';
	if (util_unhex(sig, SIGN_SIG_LEN, sh) != 0 ||
	    head_message(msg, h) != 0 ||
	    !sign_verify(key, sig, msg, sizeof(msg)))
		return verr(err, errlen, "head (seq %" PRIu64 ") signature "
		    "does not verify: forged or signed by another key",
		    h->seq);
	return 0;
}

int
audit_head_load(const char *path, const struct sign_pubkey *key,
    struct audit_head *h, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc;

	rc = util_read_file(path, HEAD_MAX, &buf, &len);
	if (rc != 0) {
		if (errlen > 0)
			snprintf(err, errlen, "%s", strerror(-rc));
		return rc;
	}
	rc = audit_head_parse(buf, len, key, h, err, errlen);
	free(buf);
	return rc;
}

static int
head_write(struct audit *a)
{
	struct audit_head h;
	uint8_t msg[CTX_LEN + 8 + HASH_LEN], sig[SIGN_SIG_LEN];
	char text[HEAD_MAX], sh[SIG_HEX + 1];
	int n;

	h.seq = a->seq;
	memcpy(h.hash, a->head, 65);
	if (head_message(msg, &h) != 0)
		return -EINVAL;
	sign_detached(a->key, sig, msg, sizeof(msg));
	util_hex(sh, sig, SIGN_SIG_LEN);
	n = snprintf(text, sizeof(text), "seq=%" PRIu64 " hash=%s sig=%s\n",
	    h.seq, h.hash, sh);
	return util_write_file_atomic(a->head_path, text, (size_t)n, 0640);
}

/* Reads the last complete record to learn seq and head; cuts off an
 * incomplete last line; refuses a last record not signed by our key and
 * a log shorter than, or different from, its head file. */
#define TAIL_WINDOW (2 * AUDIT_LINE_MAX)

static int
recover(struct audit *a)
{
	struct stat st;
	struct audit_head h;
	char *buf, *last;
	size_t len, end, from;
	struct parsed p;
	int rc;

	if (fstat(a->fd, &st) < 0)
		return -errno;
	strcpy(a->head, ZERO_HASH);
	a->seq = 0;
	if (st.st_size > 0) {
		from = (size_t)st.st_size > TAIL_WINDOW ?
		    (size_t)st.st_size - TAIL_WINDOW : 0;
		len = (size_t)st.st_size - from;
		buf = malloc(len + 1);
		if (buf == NULL)
			return -ENOMEM;
		if (pread(a->fd, buf, len, (off_t)from) != (ssize_t)len) {
			free(buf);
			return -EIO;
		}
		buf[len] = '\0';
		end = len;
		while (end > 0 && buf[end - 1] != '\n')
			end--;
		if (end != len && ftruncate(a->fd, (off_t)(from + end)) < 0) {
			free(buf);
			return -errno;
		}
		if (end == 0) {
			free(buf);
			if (from != 0)
				return -EBADMSG;
			goto head;
		}
		buf[end - 1] = '\0';
		last = strrchr(buf, '\n');
		last = last == NULL ? buf : last + 1;
		/* Refuse to extend a damaged or forged log. */
		if (!parse_record(last, strlen(last), &p) ||
		    !record_sig_ok(&a->pub, last, &p)) {
			free(buf);
			return -EBADMSG;
		}
		a->seq = p.seq;
		memcpy(a->head, p.hash, 64);
		a->head[64] = '\0';
		free(buf);
	}
head:
	if (a->head_path == NULL)
		return 0;
	rc = audit_head_load(a->head_path, &a->pub, &h, NULL, 0);
	if (rc == -ENOENT)
		return 0;       /* a new log, or a head never written */
	if (rc != 0)
		return rc;
	/* The head is written after the record, so it may lag by one
	 * (a crash in between), never lead. */
	if (h.seq > a->seq || (h.seq == a->seq &&
	    memcmp(h.hash, a->head, 64) != 0))
		return -EBADMSG;
	return 0;
}

struct audit *
audit_open(const char *path, const struct sign_seckey *key,
    const char *head_path, int *rc)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		*rc = -ENOMEM;
		return NULL;
	}
	a->fd = -1;
	a->key = key;
	sign_seckey_pubkey(key, &a->pub);
	pthread_mutex_init(&a->lock, NULL);
	if (head_path != NULL && (a->head_path = strdup(head_path)) == NULL) {
		*rc = -ENOMEM;
		goto fail;
	}
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640);
	if (a->fd < 0) {
		*rc = -errno;
		goto fail;
	}
	*rc = recover(a);
	if (*rc != 0)
		goto fail;
	return a;
fail:
	audit_close(a);
	return NULL;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->head_path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Signs line[0..len), appends " key= sig= hash=", writes and syncs. */
static int
emit(struct audit *a, char *line, size_t len, size_t cap)
{
	uint8_t msg[CTX_LEN + AUDIT_LINE_MAX], sig[SIGN_SIG_LEN];
	uint8_t digest[HASH_LEN];
	char hex[65], id[KEYID_HEX + 1], sh[SIG_HEX + 1];
	int n, rc;

	util_hex(id, sign_seckey_id(a->key), SIGN_KEYID_LEN);
	n = snprintf(line + len, cap - len, " key=%s", id);
	if (n < 0 || (size_t)n >= cap - len)
		return -E2BIG;
	len += (size_t)n;
	memset(msg, 0, CTX_LEN);
	memcpy(msg, AUDIT_SIG_CONTEXT, sizeof(AUDIT_SIG_CONTEXT) - 1);
	memcpy(msg + CTX_LEN, line, len);
	sign_detached(a->key, sig, msg, CTX_LEN + len);
	util_hex(sh, sig, SIGN_SIG_LEN);
	n = snprintf(line + len, cap - len, " sig=%s", sh);
	if (n < 0 || (size_t)n >= cap - len)
		return -E2BIG;
	len += (size_t)n;
	hash_sha256(digest, line, len);
	util_hex(hex, digest, HASH_LEN);
	n = snprintf(line + len, cap - len, " hash=%s\n", hex);
	if (n < 0 || (size_t)n >= cap - len)
		return -E2BIG;
	rc = util_write_all(a->fd, line, len + (size_t)n);
	if (rc == 0 && fdatasync(a->fd) < 0)
		rc = -errno;
	if (rc == 0) {
		a->seq++;
		memcpy(a->head, hex, 65);
	}
	return rc;
}

static int
append_locked(struct audit *a, const struct audit_record *r,
    struct audit_head *out)
{
	char line[AUDIT_LINE_MAX + 1], ts[32], b[512], v[512], rs[128],
	    ap[600], ac[300], d[1200], mh[65];
	size_t len;
	int rc;

	/*
	 * The daemon and `sluice quarantine purge` may both append: take
	 * the lock and re-read the tail, so the chain never forks.
	 */
	if (flock(a->fd, LOCK_EX) < 0)
		return -errno;
	rc = recover(a);
	if (rc != 0)
		goto out;
	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	logfmt_escape(b, sizeof(b), r->bundle != NULL ? r->bundle : "-");
	logfmt_escape(v, sizeof(v), r->version != NULL ? r->version : "-");
	logfmt_escape(rs, sizeof(rs), r->reason != NULL ? r->reason : "-");
	logfmt_escape(ap, sizeof(ap), r->approvers != NULL &&
	    r->approvers[0] != '\0' ? r->approvers : "-");
	if (r->manifest_sha256 != NULL)
		util_hex(mh, r->manifest_sha256, 32);
	else
		strcpy(mh, "-");
	len = (size_t)snprintf(line, sizeof(line), "seq=%" PRIu64 " ts=%s "
	    "prev=%s decision=%s transfer=%016" PRIx64 " bundle=%s version=%s "
	    "reason=%s manifest=%s approvers=%s", a->seq + 1, ts, a->head,
	    r->decision, r->transfer, b, v, rs, mh, ap);
	if (r->actor != NULL) {
		logfmt_escape(ac, sizeof(ac), r->actor);
		len += (size_t)snprintf(line + len, sizeof(line) - len,
		    " actor=%s", ac);
	}
	if (r->detail != NULL) {
		logfmt_escape(d, sizeof(d), r->detail);
		len += (size_t)snprintf(line + len, sizeof(line) - len,
		    " detail=%s", d);
	}
	/* Room for key (21), sig (133), hash (70) and the newline. */
	if (len >= AUDIT_LINE_MAX - 256) {
		rc = -E2BIG;
		goto out;
	}
	rc = emit(a, line, len, sizeof(line));
	if (rc != 0)
		goto out;
	if (out != NULL) {
		out->seq = a->seq;
		memcpy(out->hash, a->head, 65);
	}
	if (a->head_path != NULL)
		rc = head_write(a);
out:
	flock(a->fd, LOCK_UN);
	return rc;
}

int
audit_append(struct audit *a, const struct audit_record *r,
    struct audit_head *head)
{
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = append_locked(a, r, head);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int
audit_find(const char *path, uint64_t transfer, const char *decision)
{
	char want[128];
	uint8_t *buf;
	size_t len, off = 0, wlen;
	int rc, found = 0;

	wlen = (size_t)snprintf(want, sizeof(want), "%s transfer=%016" PRIx64
	    " ", decision, transfer);
	rc = util_read_file(path, (size_t)1 << 30, &buf, &len);
	if (rc != 0)
		return rc;
	while (off < len && !found) {
		const char *line = (const char *)buf + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - off;
		struct parsed p;

		/* Positionally: text that merely contains the words, inside
		 * an escaped value, is never taken for a record. */
		if (parse_record(line, n, &p) &&
		    (size_t)(line + n - p.decision) > wlen &&
		    memcmp(p.decision, want, wlen) == 0)
			found = 1;
		off += n + 1;
	}
	free(buf);
	return found;
}

/* Pass 1: the chain, and the head.  The last seq in *last. */
static int
verify_chain(const char *buf, size_t len, const struct audit_head *head,
    char *err, size_t errlen, uint64_t *records)
{
	char prev[65] = ZERO_HASH;
	uint64_t expect = 1, lineno = 0;
	size_t off = 0;

	while (off < len) {
		const char *line = buf + off, *nl;
		struct parsed p;
		size_t body;
		uint8_t digest[HASH_LEN];
		char hex[65];

		lineno++;
		nl = memchr(line, '\n', len - off);
		if (nl == NULL)
			return verr(err, errlen, "line %" PRIu64 ": incomplete "
			    "last record", lineno);
		body = (size_t)(nl - line);
		off += body + 1;
		if (!parse_record(line, body, &p))
			return verr(err, errlen, "line %" PRIu64 ": not an "
			    "audit record (edited?)", lineno);
		hash_sha256(digest, line, p.hashed_len);
		util_hex(hex, digest, HASH_LEN);
		if (!sign_equal(hex, p.hash, 64))
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): record edited: its hash does not match",
			    lineno, p.seq);
		if (p.seq != expect)
			return verr(err, errlen, "line %" PRIu64 ": seq %"
			    PRIu64 " where %" PRIu64 " was due: records %s",
			    lineno, p.seq, expect, p.seq > expect ?
			    "deleted" : "reordered or inserted");
		if (!sign_equal(p.prev, prev, 64))
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): does not follow the record before it "
			    "(inserted, reordered or replaced)", lineno, p.seq);
		if (head != NULL && p.seq == head->seq &&
		    !sign_equal(p.hash, head->hash, 64))
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): not the record the head names (head "
			    "hash %.16s..., record hash %.16s...): log "
			    "rewritten", lineno, p.seq, head->hash, p.hash);
		memcpy(prev, p.hash, 64);
		expect = p.seq + 1;
		(*records)++;
	}
	if (head != NULL && expect - 1 < head->seq)
		return verr(err, errlen, "log cut back: head says seq %" PRIu64
		    ", log ends at seq %" PRIu64, head->seq, expect - 1);
	return 0;
}

/* Pass 2: every record's signature, on a log whose chain holds. */
static int
verify_sigs(const char *buf, size_t len, const struct sign_pubkey *key,
    char *err, size_t errlen)
{
	char want[KEYID_HEX + 1];
	uint64_t lineno = 0;
	size_t off = 0;

	util_hex(want, key->id, SIGN_KEYID_LEN);
	while (off < len) {
		const char *line = buf + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t body = (size_t)(nl - line);
		struct parsed p;

		lineno++;
		off += body + 1;
		parse_record(line, body, &p); /* pass 1 checked it */
		if (p.sig == NULL)
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): no signature: every record must be "
			    "signed by the receiver key (signature removed, "
			    "or written without the key)", lineno, p.seq);
		if (memcmp(p.key, want, KEYID_HEX) != 0)
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): signed by key %.16s, not by the "
			    "receiver key %s", lineno, p.seq, p.key, want);
		if (!record_sig_ok(key, line, &p))
			return verr(err, errlen, "line %" PRIu64 " (seq %"
			    PRIu64 "): signature does not verify: edited or "
			    "forged without the receiver key", lineno, p.seq);
	}
	return 0;
}

int
audit_verify_buf(const uint8_t *buf, size_t len,
    const struct sign_pubkey *key, const struct audit_head *head, char *err,
    size_t errlen, uint64_t *records)
{
	int rc;

	*records = 0;
	rc = verify_chain((const char *)buf, len, head, err, errlen, records);
	if (rc == 0)
		rc = verify_sigs((const char *)buf, len, key, err, errlen);
	return rc;
}

int
audit_verify(const char *path, const struct sign_pubkey *key,
    const char *head_path, char *err, size_t errlen, uint64_t *records)
{
	struct audit_head h;
	uint8_t *buf;
	size_t len;
	int rc;

	*records = 0;
	if (head_path != NULL) {
		char why[256];

		rc = audit_head_load(head_path, key, &h, why, sizeof(why));
		if (rc != 0)
			return verr(err, errlen, "head %s: %s", head_path,
			    why);
	}
	rc = util_read_file(path, 1ull << 32, &buf, &len);
	if (rc != 0)
		return verr(err, errlen, "%s: %s", path, strerror(-rc));
	rc = audit_verify_buf(buf, len, key, head_path != NULL ? &h : NULL,
	    err, errlen, records);
	free(buf);
	return rc;
}
