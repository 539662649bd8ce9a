/*
 * The audit log; see audit.h.
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
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct audit {
	/* flock() serialises processes; threads of one process share the
	 * open file and so the lock: this serialises them. */
	pthread_mutex_t lock;
	int fd;
	const struct sign_seckey *key;
	unsigned every;
	uint64_t seq;          /* of the last record */
	uint64_t since_cp;     /* records since the last checkpoint */
	char head[65];         /* hash of the last record */
};

/*
 * Splits a record positionally: "seq=N ts=T prev=H decision=D ..." at the
 * start and "[ sig=S] hash=H" at the end.  Values in between may contain
 * anything escaped, so nothing is searched for there.
 */
struct parsed {
	uint64_t seq;
	const char *prev;      /* 64 hex */
	const char *decision;
	size_t decision_len;
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

static bool
parse_record(const char *line, size_t len, struct parsed *p)
{
	const char *q = line, *end = line + len;
	char *e;

	memset(p, 0, sizeof(*p));
	if (len < 4 + 1 + 4 + 20 + 6 + 64 + 10 + 6 + 64 ||
	    memchr(line, '\0', len) != NULL || memcmp(q, "seq=", 4) != 0)
		return false;
	p->seq = strtoull(q + 4, &e, 10);
	if (e == q + 4 || (size_t)(end - e) < 4 + 20 + 6 + 64 + 10 ||
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
	p->decision_len = strcspn(p->decision, " \n");
	if (p->decision + p->decision_len > end)
		return false;
	if (memcmp(end - 64 - 6, " hash=", 6) != 0 || !all_hex(end - 64, 64))
		return false;
	p->hash = end - 64;
	p->hashed_len = len - 64 - 6;
	if (p->hashed_len > 128 + 5 &&
	    memcmp(line + p->hashed_len - 128 - 5, " sig=", 5) == 0 &&
	    all_hex(line + p->hashed_len - 128, 128)) {
		p->sig = line + p->hashed_len - 128;
		p->signed_len = p->hashed_len - 128 - 5;
	}
	return true;
}

/* Reads the last complete record to learn seq and head; cuts off an
 * incomplete last line. */
#define TAIL_WINDOW (64u << 10)

static int
recover(struct audit *a)
{
	struct stat st;
	char *buf, *last;
	size_t len, end, from;
	struct parsed p;

	if (fstat(a->fd, &st) < 0)
		return -errno;
	strcpy(a->head, ZERO_HASH);
	a->seq = 0;
	a->since_cp = 0;
	if (st.st_size == 0)
		return 0;
	/* Only the tail matters: the last record, and the checkpoint
	 * before it (at most audit_checkpoint records back). */
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
		return from == 0 ? 0 : -EBADMSG;
	}
	buf[end - 1] = '\0';
	last = strrchr(buf, '\n');
	last = last == NULL ? buf : last + 1;
	if (!parse_record(last, strlen(last), &p)) {
		free(buf);
		return -EBADMSG; /* refuse to extend a damaged log */
	}
	a->seq = p.seq;
	memcpy(a->head, p.hash, 64);
	a->head[64] = '\0';
	/* Records since the last checkpoint. */
	for (;;) {
		if (parse_record(last, strlen(last), &p) &&
		    p.decision_len == 10 &&
		    memcmp(p.decision, "CHECKPOINT", 10) == 0)
			break;
		a->since_cp++;
		if (last == buf)
			break;
		last[-1] = '\0';
		{
			char *prev = strrchr(buf, '\n');

			last = prev == NULL ? buf : prev + 1;
		}
	}
	free(buf);
	return 0;
}

struct audit *
audit_open(const char *path, const struct sign_seckey *key,
    unsigned checkpoint_every, int *rc)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		*rc = -ENOMEM;
		return NULL;
	}
	a->key = key;
	a->every = checkpoint_every > 0 ? checkpoint_every : 16;
	pthread_mutex_init(&a->lock, NULL);
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640);
	if (a->fd < 0) {
		*rc = -errno;
		free(a);
		return NULL;
	}
	*rc = recover(a);
	if (*rc != 0) {
		audit_close(a);
		return NULL;
	}
	return a;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static int
emit(struct audit *a, char *line, size_t len, size_t cap)
{
	uint8_t digest[HASH_LEN];
	char hex[65];
	int n, rc;

	hash_sha256(digest, line, len);
	util_hex(hex, digest, HASH_LEN);
	n = snprintf(line + len, cap - len, " hash=%s\n", hex);
	if (n < 0 || (size_t)n >= cap - len)
		return -E2BIG;
	rc = util_write_all(a->fd, line, len + (size_t)n);
	if (rc == 0 && fdatasync(a->fd) < 0)
		rc = -errno;
	if (rc == 0)
		memcpy(a->head, hex, 65);
	return rc;
}

static int
checkpoint(struct audit *a)
{
	char line[AUDIT_LINE_MAX], ts[32], id[17], sighex[129];
	uint8_t msg[24 + AUDIT_LINE_MAX], sig[SIGN_SIG_LEN];
	size_t len;

	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	util_hex(id, sign_seckey_id(a->key), 8);
	len = (size_t)snprintf(line, sizeof(line), "seq=%" PRIu64 " ts=%s "
	    "prev=%s decision=CHECKPOINT key=%s", a->seq + 1, ts, a->head,
	    id);
	memset(msg, 0, 24);
	memcpy(msg, AUDIT_SIG_CONTEXT, sizeof(AUDIT_SIG_CONTEXT) - 1);
	memcpy(msg + 24, line, len);
	sign_detached(a->key, sig, msg, 24 + len);
	util_hex(sighex, sig, SIGN_SIG_LEN);
	len += (size_t)snprintf(line + len, sizeof(line) - len, " sig=%s",
	    sighex);
	a->seq++;
	a->since_cp = 0;
	return emit(a, line, len, sizeof(line));
}

static int
append_locked(struct audit *a, const struct audit_record *r)
{
	char line[AUDIT_LINE_MAX], ts[32], b[512], v[512], rs[128], ap[600],
	    d[1200], mh[65];
	size_t len;
	int rc;

	/*
	 * The daemon and `sluice quarantine purge` may both append: take
	 * the lock and re-read the tail, so the chain never forks.
	 */
	if (flock(a->fd, LOCK_EX) < 0)
		return -errno;
	rc = recover(a);
	if (rc != 0) {
		flock(a->fd, LOCK_UN);
		return rc;
	}
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
	if (r->detail != NULL) {
		logfmt_escape(d, sizeof(d), r->detail);
		len += (size_t)snprintf(line + len, sizeof(line) - len,
		    " detail=%s", d);
	}
	if (len >= sizeof(line) - 80) {
		flock(a->fd, LOCK_UN);
		return -E2BIG;
	}
	a->seq++;
	a->since_cp++;
	rc = emit(a, line, len, sizeof(line));
	if (rc == 0 && a->since_cp >= a->every)
		rc = checkpoint(a);
	flock(a->fd, LOCK_UN);
	return rc;
}

int
audit_append(struct audit *a, const struct audit_record *r)
{
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = append_locked(a, r);
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

static int verr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
verr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

int
audit_verify(const char *path, const struct sign_pubkey *key, char *err,
    size_t errlen, uint64_t *records, uint64_t *unsigned_tail)
{
	uint8_t *buf;
	size_t len, off = 0;
	char head[65] = ZERO_HASH;
	uint64_t expect = 1, lineno = 0, tail = 0;
	int rc;

	*records = *unsigned_tail = 0;
	rc = util_read_file(path, 1ull << 32, &buf, &len);
	if (rc != 0)
		return verr(err, errlen, "%s: %s", path, strerror(-rc));
	rc = 0;
	while (off < len && rc == 0) {
		char *line = (char *)buf + off, *nl;
		struct parsed p;
		size_t body;
		uint8_t digest[HASH_LEN];
		char hex[65];

		lineno++;
		nl = memchr(line, '\n', len - off);
		if (nl == NULL) {
			rc = verr(err, errlen, "line %" PRIu64 ": incomplete "
			    "last record", lineno);
			break;
		}
		body = (size_t)(nl - line);
		off += body + 1;
		if (!parse_record(line, body, &p)) {
			rc = verr(err, errlen, "line %" PRIu64 ": not an audit "
			    "record (edited?)", lineno);
			break;
		}
		hash_sha256(digest, line, p.hashed_len);
		util_hex(hex, digest, HASH_LEN);
		if (memcmp(hex, p.hash, 64) != 0) {
			rc = verr(err, errlen, "line %" PRIu64 " (seq %" PRIu64
			    "): record edited: its hash does not match",
			    lineno, p.seq);
			break;
		}
		if (p.seq != expect) {
			rc = verr(err, errlen, "line %" PRIu64 ": seq %" PRIu64
			    " where %" PRIu64 " was due: records %s", lineno,
			    p.seq, expect, p.seq > expect ? "deleted" :
			    "reordered or inserted");
			break;
		}
		if (memcmp(p.prev, head, 64) != 0) {
			rc = verr(err, errlen, "line %" PRIu64 " (seq %" PRIu64
			    "): does not follow the record before it "
			    "(inserted, reordered or replaced)", lineno, p.seq);
			break;
		}
		if (p.decision_len == 10 &&
		    memcmp(p.decision, "CHECKPOINT", 10) == 0) {
			uint8_t sig[SIGN_SIG_LEN], *msg;
			char sh[129];

			if (p.sig == NULL) {
				rc = verr(err, errlen, "line %" PRIu64
				    ": checkpoint without a signature", lineno);
				break;
			}
			memcpy(sh, p.sig, 128);
			sh[128] = '\0';
			msg = calloc(1, 24 + p.signed_len);
			if (msg == NULL || util_unhex(sig, SIGN_SIG_LEN,
			    sh) != 0) {
				free(msg);
				rc = -ENOMEM;
				break;
			}
			memcpy(msg, AUDIT_SIG_CONTEXT,
			    sizeof(AUDIT_SIG_CONTEXT) - 1);
			memcpy(msg + 24, line, p.signed_len);
			if (!sign_verify(key, sig, msg, 24 + p.signed_len)) {
				free(msg);
				rc = verr(err, errlen, "line %" PRIu64 " (seq %"
				    PRIu64 "): checkpoint signature does not "
				    "verify with this key", lineno, p.seq);
				break;
			}
			free(msg);
			tail = 0;
		} else {
			tail++;
			(*records)++;
		}
		memcpy(head, p.hash, 64);
		expect = p.seq + 1;
	}
	free(buf);
	*unsigned_tail = tail;
	return rc;
}
