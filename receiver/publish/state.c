/*
 * Publication states: the one module that moves them, persists them and
 * tells operators (publish_log, the audit log, metrics).  See publish.h
 * for the state machine.
 *
 * Crash safety.  A record file is replaced whole by rename, so a reader
 * (or the daemon after kill -9) sees the old record or the new one.  The
 * order of a move is: the new state is made durable first, then its log
 * line and audit record are written, then the record is saved again with
 * announced=1.  A crash between the two saves leaves announced=0, and
 * pub_state_recover then writes the line and the record only if the log
 * does not already hold them: each PUBLISHED is told exactly once.  A
 * crash during PUBLISHING leaves PUBLISHING on disk, which the daemon
 * takes as "try again": the store modules are idempotent.
 *
 * Audit records carry in their transfer field the first 8 bytes of
 * SHA-256(manifest digest || store name): a publication has no transfer,
 * and this id lets audit_find tell whether a record is already out.
 */
#include "receiver/publish/publish.h"
#include "common/audit.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/logfmt.h"
#include "common/qlog.h"
#include "common/sign.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX (256 * 1024)
#define LINE_MAX_ 4096

static const char *const state_names[PUB_STATE_COUNT] = {
	[PUB_PENDING] = "PENDING",
	[PUB_PUBLISHING] = "PUBLISHING",
	[PUB_PUBLISHED] = "PUBLISHED",
	[PUB_FAILED] = "PUBLISH_FAILED",
};

struct pub_state_ctx {
	const struct pub_conf *c;
	struct qlog *log;
	struct sign_seckey *key;
	struct audit *audit;
	/* Moves since start, per store and state: sluice_publish_total. */
	uint64_t (*moves)[PUB_STATE_COUNT];
};

const char *
pub_state_name(enum pub_state s)
{
	return s < PUB_STATE_COUNT ? state_names[s] : "UNKNOWN";
}

static int
state_of(const char *name, enum pub_state *s)
{
	int i;

	for (i = 0; i < PUB_STATE_COUNT; i++)
		if (strcmp(state_names[i], name) == 0) {
			*s = (enum pub_state)i;
			return 0;
		}
	return -1;
}

/* Names come from directory names in the store, but are checked again
 * here: a record path must stay under state_dir. */
static bool
safe_component(const char *s)
{
	return *s != '\0' && *s != '.' && strchr(s, '/') == NULL &&
	    strlen(s) < 256;
}

static int
record_path(char *buf, size_t len, const char *state_dir, const char *name,
    const char *version)
{
	int n;

	if (!safe_component(name) || !safe_component(version))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s/%s/%s", state_dir, PUB_BUNDLES_DIR,
	    name, version);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct pub_entry *
pub_record_entry(struct pub_record *r, const char *store)
{
	struct pub_entry *e;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->e[i].store, store) == 0)
			return &r->e[i];
	if (r->n == UTIL_ARRAY_LEN(r->e) || strlen(store) >= sizeof(e->store))
		return NULL;
	e = &r->e[r->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->store, sizeof(e->store), "%s", store);
	e->state = PUB_PENDING;
	e->announced = true;
	snprintf(e->reason, sizeof(e->reason), "new");
	return e;
}

static int
parse_line(struct pub_record *r, const char *line, size_t len)
{
	struct logfmt_record *rec = malloc(sizeof(*rec));
	const char *store, *st, *v;
	struct pub_entry *e;
	enum pub_state s;
	int rc = -EBADMSG;

	if (rec == NULL)
		return -ENOMEM;
	if (logfmt_parse(rec, line, len) != 0 ||
	    (store = logfmt_get(rec, "store")) == NULL ||
	    (st = logfmt_get(rec, "state")) == NULL || state_of(st, &s) != 0 ||
	    (e = pub_record_entry(r, store)) == NULL)
		goto out;
	e->state = s;
	if ((v = logfmt_get(rec, "reason")) != NULL)
		snprintf(e->reason, sizeof(e->reason), "%s", v);
	if ((v = logfmt_get(rec, "detail")) != NULL)
		snprintf(e->detail, sizeof(e->detail), "%s", v);
	if ((v = logfmt_get(rec, "failures")) != NULL)
		e->failures = (unsigned)strtoul(v, NULL, 10);
	if ((v = logfmt_get(rec, "next")) != NULL)
		e->next = strtoll(v, NULL, 10);
	e->final = (v = logfmt_get(rec, "final")) != NULL && *v == '1';
	e->announced = (v = logfmt_get(rec, "announced")) == NULL || *v == '1';
	if ((v = logfmt_get(rec, "manifest")) != NULL && strlen(v) == 64)
		memcpy(r->manifest, v, 65);
	rc = 0;
out:
	free(rec);
	return rc;
}

int
pub_record_load(const char *state_dir, const char *name, const char *version,
    struct pub_record *r)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len, off = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->version, sizeof(r->version), "%s", version);
	if ((rc = record_path(path, sizeof(path), state_dir, name,
	    version)) != 0)
		return rc;
	rc = util_read_file(path, RECORD_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	while (rc == 0 && off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l = nl != NULL ? (size_t)(nl - (char *)buf) - off :
		    len - off;

		if (l > 0)
			rc = parse_line(r, (char *)buf + off, l);
		off += l + 1;
	}
	free(buf);
	return rc;
}

static int
record_save(const char *state_dir, const struct pub_record *r)
{
	char path[PATH_MAX], *text, rs[128], d[2048];
	size_t i, cap = r->n * LINE_MAX_ + 1, n = 0;
	int rc;

	if ((rc = record_path(path, sizeof(path), state_dir, r->name,
	    r->version)) != 0)
		return rc;
	if ((text = malloc(cap)) == NULL)
		return -ENOMEM;
	for (i = 0; i < r->n; i++) {
		const struct pub_entry *e = &r->e[i];

		logfmt_escape(rs, sizeof(rs), *e->reason ? e->reason : "-");
		logfmt_escape(d, sizeof(d), e->detail);
		n += (size_t)snprintf(text + n, cap - n, "store=%s state=%s "
		    "reason=%s failures=%u final=%d announced=%d next=%" PRId64
		    " manifest=%s%s%s\n", e->store, pub_state_name(e->state),
		    rs, e->failures, e->final, e->announced, e->next,
		    *r->manifest ? r->manifest : "-",
		    *e->detail ? " detail=" : "", *e->detail ? d : "");
	}
	/* The parent is made on first save; the record itself atomically. */
	{
		char *slash = strrchr(path, '/');

		*slash = '\0';
		rc = util_mkdirs(path, 0750);
		*slash = '/';
	}
	if (rc == 0)
		rc = util_write_file_atomic(path, text, n, 0640);
	free(text);
	return rc;
}

int
pub_record_each(const char *state_dir,
    void (*fn)(const struct pub_record *, void *), void *arg)
{
	struct pub_record *r = malloc(sizeof(*r));
	char top[PATH_MAX], sub[PATH_MAX];
	struct dirent *de, *ve;
	DIR *d, *vd;

	if (r == NULL)
		return -ENOMEM;
	snprintf(top, sizeof(top), "%s/%s", state_dir, PUB_BUNDLES_DIR);
	if ((d = opendir(top)) == NULL) {
		free(r);
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (!safe_component(de->d_name))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
		if ((vd = opendir(sub)) == NULL)
			continue;
		while ((ve = readdir(vd)) != NULL)
			if (safe_component(ve->d_name) &&
			    pub_record_load(state_dir, de->d_name, ve->d_name,
			    r) == 0)
				fn(r, arg);
		closedir(vd);
	}
	closedir(d);
	free(r);
	return 0;
}

int
pub_retry_request(const char *state_dir, const char *name,
    const char *version, const char *store)
{
	char dir[PATH_MAX], path[PATH_MAX], line[1024], b[600], v[600];
	int n, rc;

	snprintf(dir, sizeof(dir), "%s/%s", state_dir, PUB_RETRY_DIR);
	if ((rc = util_mkdirs(dir, 0770)) != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%ld-%" PRIu64, dir, (long)getpid(),
	    util_realtime_ns());
	logfmt_escape(b, sizeof(b), name);
	logfmt_escape(v, sizeof(v), version);
	n = snprintf(line, sizeof(line), "bundle=%s version=%s%s%s\n", b, v,
	    store != NULL ? " store=" : "", store != NULL ? store : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	return util_write_file_atomic(path, line, (size_t)n, 0640);
}

struct pub_state_ctx *
pub_state_open(const struct pub_conf *c, char *err, size_t errlen)
{
	struct pub_state_ctx *x = calloc(1, sizeof(*x));
	char path[PATH_MAX];
	int rc;

	if (x == NULL || (x->moves = calloc(c->n_stores,
	    sizeof(*x->moves))) == NULL) {
		free(x);
		util_seterr(err, errlen, "out of memory");
		return NULL;
	}
	x->c = c;
	snprintf(path, sizeof(path), "%s/%s", c->state_dir, PUB_BUNDLES_DIR);
	if ((rc = util_mkdirs(path, 0750)) != 0) {
		util_seterr(err, errlen, "state_dir %s: %s", path,
		    strerror(-rc));
		goto fail;
	}
	if ((x->log = qlog_open(c->publish_log, &rc)) == NULL) {
		util_seterr(err, errlen, "publish_log %s: %s", c->publish_log,
		    strerror(-rc));
		goto fail;
	}
	if (c->audit_key != NULL) {
		char why[256] = "";

		x->key = sign_seckey_load(c->audit_key, &rc, why, sizeof(why));
		if (x->key == NULL) {
			util_seterr(err, errlen, "audit_key %s: %s",
			    c->audit_key, why);
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/publish-%s", c->state_dir,
		    AUDIT_HEAD_FILE);
		x->audit = audit_open(c->audit_log, x->key, path, &rc);
		if (x->audit == NULL) {
			util_seterr(err, errlen, "audit_log %s: %s",
			    c->audit_log, rc == -EBADMSG ? "its last record "
			    "is damaged or unsigned, or it ends before its "
			    "head file says; refusing to extend it" :
			    strerror(-rc));
			goto fail;
		}
	}
	return x;
fail:
	pub_state_close(x);
	return NULL;
}

void
pub_state_close(struct pub_state_ctx *x)
{
	if (x == NULL)
		return;
	qlog_close(x->log);
	audit_close(x->audit);
	sign_seckey_free(x->key);
	free(x->moves);
	free(x);
}

int
pub_state_reopen(struct pub_state_ctx *x)
{
	return qlog_reopen(x->log);
}

/* One line, one write(2) to an O_APPEND descriptor: never split. */
static void
log_line(struct pub_state_ctx *x, const struct pub_record *r,
    const struct pub_entry *e, const char *detail)
{
	char line[LINE_MAX_], ts[32], b[600], v[600], rs[128], d[2048];
	int n;

	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	logfmt_escape(b, sizeof(b), r->name);
	logfmt_escape(v, sizeof(v), r->version);
	logfmt_escape(rs, sizeof(rs), *e->reason ? e->reason : "-");
	n = snprintf(line, sizeof(line), "ts=%s bundle=%s version=%s store=%s "
	    "state=%s reason=%s", ts, b, v, e->store, pub_state_name(e->state),
	    rs);
	if (detail != NULL && *detail != '\0' && n > 0 &&
	    (size_t)n < sizeof(line)) {
		logfmt_escape(d, sizeof(d), detail);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " detail=%s",
		    d);
	}
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (qlog_write(x->log, line, (size_t)n) != 0)
		log_warn("publish_log %s", x->c->publish_log);
}

static uint64_t
audit_id(const struct pub_record *r, const char *store)
{
	uint8_t buf[32 + 65], h[HASH_LEN];
	uint64_t id = 0;
	size_t n = strlen(store);
	int i;

	if (util_unhex(buf, 32, r->manifest) != 0)
		memset(buf, 0, 32);
	memcpy(buf + 32, store, n);
	hash_sha256(h, buf, 32 + n);
	for (i = 0; i < 8; i++)
		id = id << 8 | h[i];
	return id;
}

static int
audit_out(struct pub_state_ctx *x, const struct pub_record *r,
    const struct pub_entry *e)
{
	struct audit_record ar = { 0 };
	uint8_t digest[32];
	char detail[700];

	if (x->audit == NULL)
		return 0;
	snprintf(detail, sizeof(detail), "store=%s%s%s", e->store,
	    *e->detail ? " " : "", e->detail);
	ar.decision = pub_state_name(e->state);
	ar.transfer = audit_id(r, e->store);
	ar.bundle = r->name;
	ar.version = r->version;
	ar.reason = *e->reason ? e->reason : "-";
	ar.manifest_sha256 = util_unhex(digest, 32, r->manifest) == 0 ?
	    digest : NULL;
	ar.detail = detail;
	return audit_append(x->audit, &ar, NULL);
}

static bool
told(const struct pub_entry *e)
{
	return e->state == PUB_PUBLISHED || (e->state == PUB_FAILED &&
	    e->final);
}

int
pub_state_move(struct pub_state_ctx *x, struct pub_record *r,
    struct pub_entry *e, enum pub_state s, const struct pub_result *res,
    const uint8_t *digest)
{
	const struct pub_conf *c = x->c;
	enum pub_state was = e->state;
	char detail[700];
	size_t si;
	int rc;

	if (digest != NULL)
		util_hex(r->manifest, digest, 32);
	e->state = s;
	*e->detail = '\0';
	*detail = '\0';
	switch (s) {
	case PUB_PENDING:
		snprintf(e->reason, sizeof(e->reason), "retry_requested");
		e->failures = 0;
		e->final = false;
		e->next = 0;
		break;
	case PUB_PUBLISHING:
		/* Why this attempt: a crash cut the last one short
		 * (resumed), an operator asked, a backoff ran out, or it is
		 * the first. */
		if (was == PUB_PUBLISHING)
			snprintf(e->reason, sizeof(e->reason), "resumed");
		else if (was != PUB_PENDING ||
		    strcmp(e->reason, "retry_requested") != 0)
			snprintf(e->reason, sizeof(e->reason), "%s",
			    e->failures > 0 ? "retry" : "new");
		snprintf(detail, sizeof(detail), "attempt %u of %u",
		    e->failures + 1, c->retries + 1);
		break;
	case PUB_PUBLISHED:
		snprintf(e->reason, sizeof(e->reason), "ok");
		e->final = false;
		break;
	case PUB_FAILED: {
		double delay = c->retry_backoff;
		int64_t wait;
		unsigned i;

		e->failures++;
		snprintf(e->reason, sizeof(e->reason), "%s", res->reason);
		snprintf(e->detail, sizeof(e->detail), "%s", res->detail);
		e->final = res->permanent || e->failures > c->retries;
		for (i = 1; i < e->failures && delay < c->retry_backoff_max;
		    i++)
			delay *= 2;
		if (delay > c->retry_backoff_max)
			delay = c->retry_backoff_max;
		/* Attempts are timed in whole seconds; the line says the
		 * wait as it will be, not the setting (0.2 s is 1 s). */
		wait = (int64_t)(delay + 0.999);
		e->next = (int64_t)(util_realtime_ns() / 1000000000) + wait;
		if (e->final)
			snprintf(detail, sizeof(detail), "%s%s", res->detail,
			    res->permanent ? "" : " (no retries left)");
		else
			snprintf(detail, sizeof(detail), "%s; retry in %"
			    PRId64 "s, %u left", res->detail, wait,
			    c->retries + 1 - e->failures);
		break;
	}
	default:
		return -EINVAL;
	}
	e->announced = !told(e);
	if ((rc = record_save(c->state_dir, r)) != 0) {
		log_warnx("state of %s %s: %s", r->name, r->version,
		    strerror(-rc));
		return rc;
	}
	for (si = 0; si < c->n_stores; si++)
		if (strcmp(c->stores[si].name, e->store) == 0)
			x->moves[si][s]++;
	if (s == PUB_PENDING)
		return 0;
	if (told(e))
		pub_failpoint("publish_unannounced");
	log_line(x, r, e, *detail ? detail : e->detail);
	if (told(e)) {
		if ((rc = audit_out(x, r, e)) != 0)
			log_warnx("audit_log %s: %s", c->audit_log,
			    strerror(-rc));
		e->announced = true;
		rc = record_save(c->state_dir, r);
	}
	return rc;
}

/* Is the line for e already in publish_log?  1, 0 or -errno. */
static int
logged(struct pub_state_ctx *x, const struct pub_record *r,
    const struct pub_entry *e)
{
	struct logfmt_record *rec;
	const char *st = pub_state_name(e->state);
	uint8_t *buf;
	size_t len, off = 0;
	int rc, found = 0;

	rc = util_read_file(x->c->publish_log, (size_t)1 << 30, &buf, &len);
	if (rc != 0)
		return rc == -ENOENT ? 0 : rc;
	if ((rec = malloc(sizeof(*rec))) == NULL) {
		free(buf);
		return -ENOMEM;
	}
	while (!found && off < len) {
		const char *nl = memchr(buf + off, '\n', len - off), *v;
		size_t l = nl != NULL ? (size_t)(nl - (char *)buf) - off :
		    len - off;

		if (logfmt_parse(rec, (char *)buf + off, l) == 0 &&
		    (v = logfmt_get(rec, "bundle")) && !strcmp(v, r->name) &&
		    (v = logfmt_get(rec, "version")) && !strcmp(v, r->version) &&
		    (v = logfmt_get(rec, "store")) && !strcmp(v, e->store) &&
		    (v = logfmt_get(rec, "state")) && !strcmp(v, st))
			found = 1;
		off += l + 1;
	}
	free(rec);
	free(buf);
	return found;
}

int
pub_state_recover(struct pub_state_ctx *x, struct pub_record *r)
{
	bool changed = false;
	size_t i;
	int rc;

	for (i = 0; i < r->n; i++) {
		struct pub_entry *e = &r->e[i];

		if (e->announced || !told(e))
			continue;
		if (logged(x, r, e) == 0)
			log_line(x, r, e, e->detail);
		if (x->audit != NULL) {
			rc = audit_find(x->c->audit_log, audit_id(r, e->store),
			    pub_state_name(e->state));
			if (rc == 0 && (rc = audit_out(x, r, e)) != 0)
				log_warnx("audit_log %s: %s", x->c->audit_log,
				    strerror(-rc));
		}
		e->announced = true;
		changed = true;
	}
	return changed ? record_save(x->c->state_dir, r) : 0;
}

static int
take_one(struct pub_state_ctx *x, const char *path)
{
	struct logfmt_record *rec = malloc(sizeof(*rec));
	struct pub_record *r = malloc(sizeof(*r));
	const char *b, *v, *s;
	uint8_t *buf = NULL;
	size_t len, i;
	int rc, n = 0;

	if (rec == NULL || r == NULL)
		goto out;
	if (util_read_file(path, LOGFMT_MAX_TEXT, &buf, &len) != 0)
		goto out;
	while (len > 0 && buf[len - 1] == '\n')
		len--;
	if (logfmt_parse(rec, (char *)buf, len) != 0 ||
	    (b = logfmt_get(rec, "bundle")) == NULL ||
	    (v = logfmt_get(rec, "version")) == NULL) {
		log_warnx("retry request %s: malformed, removed", path);
		goto out;
	}
	s = logfmt_get(rec, "store");
	if ((rc = pub_record_load(x->c->state_dir, b, v, r)) != 0) {
		log_warnx("retry request for %s %s: %s", b, v, strerror(-rc));
		goto out;
	}
	for (i = 0; i < r->n; i++) {
		struct pub_entry *e = &r->e[i];

		if ((s != NULL && strcmp(s, e->store) != 0) ||
		    e->state == PUB_PUBLISHED)
			continue;
		if (pub_state_move(x, r, e, PUB_PENDING, NULL, NULL) == 0)
			n++;
	}
	log_info("retry requested for %s %s%s%s: %d store%s reset", b, v,
	    s != NULL ? " store " : "", s != NULL ? s : "", n,
	    n == 1 ? "" : "s");
out:
	free(buf);
	free(rec);
	free(r);
	unlink(path);
	return n;
}

int
pub_state_take_retries(struct pub_state_ctx *x)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/%s", x->c->state_dir, PUB_RETRY_DIR);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		/* util_write_file_atomic's temp files start with '.'. */
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n += take_one(x, path);
	}
	closedir(d);
	return n;
}

void
pub_state_metrics(struct pub_state_ctx *x)
{
	const struct pub_conf *c = x->c;
	char *text = NULL;
	size_t len = 0, i;
	FILE *fp;
	int s;

	if (c->metrics_file == NULL || (fp = open_memstream(&text, &len)) ==
	    NULL)
		return;
	fprintf(fp, "# HELP sluice_publish_up 1 while sluice-publish runs\n"
	    "# TYPE sluice_publish_up gauge\nsluice_publish_up 1\n");
	fprintf(fp, "# HELP sluice_publish_total state changes since start, "
	    "per store\n# TYPE sluice_publish_total counter\n");
	for (i = 0; i < c->n_stores; i++)
		for (s = PUB_PUBLISHING; s < PUB_STATE_COUNT; s++)
			fprintf(fp, "sluice_publish_total{store=\"%s\","
			    "state=\"%s\"} %" PRIu64 "\n", c->stores[i].name,
			    pub_state_name((enum pub_state)s), x->moves[i][s]);
	fprintf(fp, "# HELP sluice_publish_metrics_timestamp_seconds "
	    "wall-clock time of this rewrite\n# TYPE "
	    "sluice_publish_metrics_timestamp_seconds gauge\n"
	    "sluice_publish_metrics_timestamp_seconds %" PRIu64 "\n",
	    util_realtime_ns() / 1000000000);
	if (fclose(fp) == 0 && util_write_file_atomic(c->metrics_file, text,
	    len, 0644) != 0)
		log_warn("metrics_file %s", c->metrics_file);
	free(text);
}
