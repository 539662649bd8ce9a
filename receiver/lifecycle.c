/*
 * Lifecycle: the one module that moves a transfer from state to state.
 * Every transition is made by set_state() or one of the finish_*()
 * functions below, and each writes exactly one quarantine-log line; each
 * terminal decision also writes one audit record.  Nothing else in the
 * receiver writes either log for a transfer.  Runs on the main thread.
 *
 *   (first descriptor) ─► RECEIVING ─► COMPLETE ─► VERIFYING ─► SCANNING
 *        ▲    │   ▲           │                        │            │
 *        │    │   └─ resumed ─┤                        ▼            ▼
 *        │    └─► INCOMPLETE ◄┴──── retry (this machine's fault) ───┤
 *        │         (timeout, preempted, no space)                   │
 *        │                        RELEASED · DUPLICATE · REJECTED ◄─┤
 *        └──── purged ◄─────────────────────────── QUARANTINED ◄────┘
 *
 * Final verdicts (RELEASED, DUPLICATE, REJECTED) go into the finished set
 * (finished.c), durable, for good: a resend of one is answered with one
 * quarantine-log line per run and per 10 minutes, never received again.
 * QUARANTINED is held, not finished: staging/quarantine/<id> exists until
 * an operator purges it (or staging_retention does), and then the same
 * transfer can be received again.
 *
 * A release is made durable in this order, right after the verifier's
 * rename into the store and before any release hook: quarantine-log line,
 * audit record, rollback record (state_dir/released/<name>), finished
 * marker.  The "releasing" marker in staging/<id> (written by the verifier
 * before its rename) lets lifecycle_recover() finish a release cut short
 * at any of those steps, writing each record only if it is missing, so a
 * release is logged and audited exactly once.
 *
 * Slots: at most max_transfers_in_flight transfers are held.  Progress is
 * chunks written, never descriptors accepted (a replayed descriptor is
 * no progress).  When every slot is busy, a new transfer with a verified
 * descriptor pre-empts the slot whose written progress is oldest; the
 * transfer set aside keeps its staging and may come back only into a free
 * slot, so replays of old transfers cannot take slots from a new one.
 */
#include "receiver/recv.h"
#include "receiver/finished.h"
#include "common/audit.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/logfmt.h"
#include "common/qlog.h"
#include "common/request.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define QUARANTINE_DIR "quarantine"
#define FINISHED_FILE "finished"
#define OLD_DONE_DIR ".done"
#define MISSING_DETAIL_MAX 1000
#define ANSWER_SLOTS 4096            /* direct-mapped: resends answered */
#define ANSWER_INTERVAL_NS (600ull * 1000000000ull)
#define ASIDE_SLOTS 256              /* transfers pre-empted recently */
#define ASIDE_NS (600ull * 1000000000ull)
#define RETRY_MIN_NS (5ull * 1000000000ull)
#define RETRY_MAX_NS (600ull * 1000000000ull)
#define RETENTION_EVERY_NS (60ull * 1000000000ull)

static const char *const state_names[TS_COUNT] = {
	[TS_FREE] = "FREE",
	[TS_RECEIVING] = "RECEIVING",
	[TS_INCOMPLETE] = "INCOMPLETE",
	[TS_COMPLETE] = "COMPLETE",
	[TS_VERIFYING] = "VERIFYING",
	[TS_SCANNING] = "SCANNING",
	[TS_RELEASED] = "RELEASED",
	[TS_DUPLICATE] = "DUPLICATE",
	[TS_QUARANTINED] = "QUARANTINED",
	[TS_REJECTED] = "REJECTED",
	[TS_PURGED] = "PURGED",
};

const char *
tstate_name(enum tstate s)
{
	return (unsigned)s < TS_COUNT && state_names[s] != NULL ?
	    state_names[s] : "UNKNOWN";
}

bool
tstate_is_terminal(enum tstate s)
{
	return s == TS_RELEASED || s == TS_DUPLICATE || s == TS_QUARANTINED ||
	    s == TS_REJECTED || s == TS_PURGED;
}

/*
 * Reason codes of final verdicts, kept in the finished set as one byte so
 * a resend can name the earlier verdict.  Append only: the index is on
 * disk.
 */
static const char *const reason_codes[] = {
	"other", "verified", "already_released", "already_in_store",
	"hash_mismatch", "unsafe_name", "name_pattern", "too_large",
	"manifest_mismatch", "manifest_syntax", "too_many_files",
	"unsafe_path", "too_many_approvals", "case_collision", "store_io",
	"version_pattern",
};

static uint8_t
reason_code(const char *reason)
{
	uint8_t i;

	for (i = 0; i < sizeof(reason_codes) / sizeof(reason_codes[0]); i++)
		if (strcmp(reason_codes[i], reason) == 0)
			return i;
	return 0;
}

static const char *
reason_name(uint8_t code)
{
	return code < sizeof(reason_codes) / sizeof(reason_codes[0]) ?
	    reason_codes[code] : "other";
}

struct answered {
	uint64_t id;
	uint64_t session;        /* the sending it ended in, or answered */
	uint64_t at_ns;          /* answered then (0: not yet) */
};

struct aside {
	uint64_t id;
	uint64_t at_ns;
};

struct lifecycle {
	struct answered answered[ANSWER_SLOTS];
	struct aside aside[ASIDE_SLOTS];
	unsigned aside_next;
	uint64_t *held;          /* sorted ids under staging/quarantine */
	size_t n_held, cap_held;
	uint64_t held_checked_ns;
	uint64_t retention_ns;   /* last retention pass */
	uint64_t kept_bytes_incomplete, kept_bytes_held;
	unsigned kept_incomplete, kept_held;
};


static void manifest_ready(struct recv *r, struct transfer *t);
static void check_complete(struct recv *r, struct transfer *t);
static void ended_in(struct recv *r, uint64_t id, uint64_t session);

/* ---- held (quarantined) ids ----------------------------------------------- */

static ssize_t
held_index(const struct lifecycle *lc, uint64_t id, bool *found)
{
	size_t lo = 0, hi = lc->n_held;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lc->held[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < lc->n_held && lc->held[lo] == id;
	return (ssize_t)lo;
}

static void
held_add(struct lifecycle *lc, uint64_t id)
{
	bool found;
	size_t i = (size_t)held_index(lc, id, &found);

	if (found)
		return;
	if (lc->n_held == lc->cap_held) {
		size_t cap = lc->cap_held ? lc->cap_held * 2 : 64;
		uint64_t *p = realloc(lc->held, cap * sizeof(*p));

		if (p == NULL)
			return;
		lc->held = p;
		lc->cap_held = cap;
	}
	memmove(lc->held + i + 1, lc->held + i,
	    (lc->n_held - i) * sizeof(*lc->held));
	lc->held[i] = id;
	lc->n_held++;
}

static void
held_remove(struct lifecycle *lc, uint64_t id)
{
	bool found;
	size_t i = (size_t)held_index(lc, id, &found);

	if (!found)
		return;
	memmove(lc->held + i, lc->held + i + 1,
	    (lc->n_held - i - 1) * sizeof(*lc->held));
	lc->n_held--;
}

static bool
parse_id(const char *name, uint64_t *id)
{
	uint8_t raw[8];
	unsigned i;

	if (strlen(name) != 16 || util_unhex(raw, 8, name) != 0)
		return false;
	*id = 0;
	for (i = 0; i < 8; i++)
		*id = *id << 8 | raw[i];
	return *id != 0;
}

static void
load_held(struct recv *r)
{
	struct dirent *de;
	DIR *d;

	d = util_opendirat(r->staging_fd, QUARANTINE_DIR);
	if (d == NULL)
		return;

	while ((de = readdir(d)) != NULL) {
		uint64_t id;

		if (parse_id(de->d_name, &id))
			held_add(r->lc, id);
	}
	closedir(d);
}

/* ---- the logs -------------------------------------------------------------- */

static void
qlog_id(struct recv *r, uint64_t id, const struct manifest *m,
    enum tstate state, const char *reason, const char *detail)
{
	qlog_event(r->qlog, id, m != NULL ? m->name : NULL,
	    m != NULL ? m->version : NULL, tstate_name(state), reason, detail);
}

static void
audit_id(struct recv *r, uint64_t id, const struct manifest *m,
    enum tstate state, const char *reason, const char *approvers,
    const char *detail)
{
	struct audit_record rec = {
		.decision = tstate_name(state),
		.transfer = id,
		.bundle = m != NULL ? m->name : NULL,
		.version = m != NULL ? m->version : NULL,
		.reason = reason,
		.manifest_sha256 = m != NULL ? m->digest : NULL,
		.approvers = approvers,
		.detail = detail,
	};
	struct audit_head head = { 0, "" };
	char hd[100];
	int rc;

	if (r->audit == NULL)
		return;
	rc = audit_append(r->audit, &rec, &head);
	if (rc != 0)
		log_warnx("audit log %s: append failed: %s",
		    r->conf->audit_log, strerror(-rc));
	/* The head, shipped with the quarantine log, shows a log cut back. */
	if (head.seq != 0) {
		snprintf(hd, sizeof(hd), "seq=%" PRIu64 " hash=%s", head.seq,
		    head.hash);
		qlog_event(r->qlog, 0, NULL, NULL, "AUDIT_HEAD", "append",
		    hd);
	}
}

static void
count(struct recv *r, enum tstate state)
{
	switch (state) {
	case TS_RELEASED: r->stats.transfers_released++; break;
	case TS_REJECTED: r->stats.transfers_rejected++; break;
	case TS_QUARANTINED: r->stats.transfers_quarantined++; break;
	case TS_DUPLICATE: r->stats.transfers_duplicate++; break;
	case TS_INCOMPLETE: r->stats.transfers_incomplete++; break;
	default: break;
	}
}

/* A non-terminal transition of a transfer in a slot. */
static void
set_state(struct recv *r, struct transfer *t, enum tstate state,
    const char *reason, const char *detail)
{
	t->state = state;
	qlog_id(r, t->id, t->manifest, state, reason, detail);
	if (state == TS_INCOMPLETE) {
		count(r, state);
		log_warnx("transfer %s incomplete: %s%s%s", t->name, reason,
		    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	}
}

/* ---- missing lists -------------------------------------------------------- */

/* Missing chunks as object/chunk ranges; "9/all" for an object whose size
 * is not known yet. */
static void
missing_detail(const struct transfer *t, char *buf, size_t cap)
{
	uint64_t total = 0, missing = 0;
	char list[MISSING_DETAIL_MAX];
	size_t off = 0;
	uint32_t i;

	list[0] = '\0';
	for (i = 0; i < t->object_count; i++) {
		const struct object *o = &t->objects[i];
		uint32_t c = 0, start;

		if (o->size == UINT64_MAX) {
			if (off < sizeof(list))
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, " %u/all", i);
			continue;
		}
		total += o->n_chunks;
		while (transfer_next_missing(o, &c, &start)) {
			missing += c - start;
			if (off >= sizeof(list))
				continue;
			if (c - start == 1)
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, " %u/%u", i, start);
			else
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, " %u/%u-%u", i, start,
				    c - 1);
		}
	}
	if (off >= sizeof(list))
		strcpy(list + sizeof(list) - 5, " ...");
	snprintf(buf, cap, "missing %" PRIu64 " of %" PRIu64 "%s chunks "
	    "(object/chunk):%s", missing, total,
	    t->manifest == NULL ? "+" : "", list);
}

/*
 * What an operator carries back to the connected side for an INCOMPLETE
 * transfer (sluice missing ID; sluice-send --resend FILE).  The format is
 * in PROTOCOL.md, "Missing list".
 */
static void
write_missing(struct recv *r, const struct transfer *t)
{
	char path[PATH_MAX], *buf;
	size_t cap = 4096, off = 0;
	uint32_t i;

	buf = malloc(cap);
	if (buf == NULL)
		return;
#define EMIT(...) do { \
	int n_ = snprintf(buf + off, cap - off, __VA_ARGS__); \
	if (n_ > 0 && (size_t)n_ >= cap - off) { \
		char *nb_ = realloc(buf, cap * 2 + (size_t)n_); \
		if (nb_ == NULL) { free(buf); return; } \
		buf = nb_; cap = cap * 2 + (size_t)n_; \
		n_ = snprintf(buf + off, cap - off, __VA_ARGS__); \
	} \
	if (n_ > 0) off += (size_t)n_; \
} while (0)
	EMIT("sluice-missing 1\ntransfer %s\n", t->name);
	if (t->manifest != NULL) {
		char esc[3 * PMAN_MAX_VALUE + 1];

		pman_escape(t->manifest->name, strlen(t->manifest->name), esc,
		    sizeof(esc));
		EMIT("bundle %s\n", esc);
		pman_escape(t->manifest->version,
		    strlen(t->manifest->version), esc, sizeof(esc));
		EMIT("version %s\n", esc);
	}
	for (i = 0; i < t->object_count; i++) {
		const struct object *o = &t->objects[i];
		uint32_t c = 0, start;

		if (o->size == UINT64_MAX) {
			EMIT("object %u\n", i);
			continue;
		}
		while (transfer_next_missing(o, &c, &start))
			EMIT("chunks %u %u-%u\n", i, start, c - 1);
	}
	EMIT("end\n");
#undef EMIT
	if (snprintf(path, sizeof(path), "%s/missing/%s", r->conf->state_dir,
	    t->name) < (int)sizeof(path) &&
	    util_write_file_atomic(path, buf, off, 0644) != 0)
		log_warn("writing %s", path);
	free(buf);
}

static void
remove_missing(struct recv *r, uint64_t id)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/missing/%016" PRIx64,
	    r->conf->state_dir, id) < (int)sizeof(path))
		(void)unlink(path);
}

/* ---- slots ---------------------------------------------------------------- */

static void
remove_staging(struct recv *r, const char *name)
{
	char path[PATH_MAX];

	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    name) == 0)
		(void)util_rmtree(path);
}

/* Frees t's slot; its staging directory is left as it is. */
static void
slot_free(struct recv *r, struct transfer *t)
{
	uint64_t gen = t->gen;

	transfer_wait_jobs(t);
	progress_quiesce(r, t);
	progress_forget(r, t->id);
	transfer_free_objects(t);
	manifest_free(t->manifest);
	if (t->dirfd >= 0)
		close(t->dirfd);
	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	t->gen = gen + 1;
	t->state = TS_FREE;
}

struct transfer *
lifecycle_find(struct recv *r, uint64_t id)
{
	unsigned i;

	for (i = 0; i < r->n_transfers; i++)
		if (r->transfers[i].state != TS_FREE &&
		    r->transfers[i].id == id)
			return &r->transfers[i];
	return NULL;
}

static bool
aside_has(struct recv *r, uint64_t id, uint64_t now)
{
	unsigned i;

	for (i = 0; i < ASIDE_SLOTS; i++)
		if (r->lc->aside[i].id == id &&
		    now - r->lc->aside[i].at_ns < ASIDE_NS)
			return true;
	return false;
}

static void
aside_add(struct recv *r, uint64_t id, uint64_t now)
{
	struct lifecycle *lc = r->lc;

	lc->aside[lc->aside_next].id = id;
	lc->aside[lc->aside_next].at_ns = now;
	lc->aside_next = (lc->aside_next + 1) % ASIDE_SLOTS;
}

/* ---- final and held verdicts ----------------------------------------------- */

static void
record_finished(struct recv *r, uint64_t id, enum tstate state,
    const char *reason)
{
	uint8_t v = state == TS_RELEASED ? FINISHED_RELEASED :
	    state == TS_DUPLICATE ? FINISHED_DUPLICATE : FINISHED_REJECTED;
	int rc = finished_add(r->finished, id, v, reason_code(reason));

	if (rc != 0)
		log_warnx("transfer %016" PRIx64 ": cannot record it as "
		    "finished: %s", id, strerror(-rc));
}

/* DUPLICATE or REJECTED of a transfer in a slot: its staging goes. */
static void
finish_final(struct recv *r, struct transfer *t, enum tstate state,
    const char *reason, const char *detail)
{
	audit_id(r, t->id, t->manifest, state, reason, NULL, detail);
	record_finished(r, t->id, state, reason);
	ended_in(r, t->id, t->session);
	t->state = state;
	qlog_id(r, t->id, t->manifest, state, reason, detail);
	count(r, state);
	log_warnx("transfer %s %s: %s%s%s", t->name, tstate_name(state),
	    reason, detail != NULL ? ": " : "", detail != NULL ? detail : "");
	remove_missing(r, t->id);
	remove_staging(r, t->name);
	slot_free(r, t);
}

/* REJECTED of a transfer never held in a slot (over a limit at sight). */
static void
refuse(struct recv *r, uint64_t id, const char *reason, const char *detail)
{
	audit_id(r, id, NULL, TS_REJECTED, reason, NULL, detail);
	record_finished(r, id, TS_REJECTED, reason);
	qlog_id(r, id, NULL, TS_REJECTED, reason, detail);
	count(r, TS_REJECTED);
}

/* Moves a held bundle aside, whole, with an info file. */
static void
finish_held(struct recv *r, struct transfer *t, const struct verdict *v)
{
	char from[PATH_MAX], to[PATH_MAX], info[2048], ts[32], b[300],
	    ver[300], d[600], rs[160];
	size_t n;
	int fd;

	audit_id(r, t->id, t->manifest, TS_QUARANTINED, v->reason,
	    v->approvers, v->detail);
	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	logfmt_escape(b, sizeof(b), t->manifest->name);
	logfmt_escape(ver, sizeof(ver), t->manifest->version);
	logfmt_escape(d, sizeof(d), v->detail);
	logfmt_escape(rs, sizeof(rs), v->reason);
	n = (size_t)snprintf(info, sizeof(info), "transfer=%s\nbundle=%s\n"
	    "version=%s\nreason=%s\ndetail=%s\nquarantined=%s\n", t->name,
	    b, ver, rs, d, ts);
	fd = openat(t->dirfd, "info", O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		(void)util_write_all(fd, info, UTIL_MIN(n, sizeof(info) - 1));
		(void)fsync(fd);
		close(fd);
	}
	snprintf(from, sizeof(from), "%s/%s", r->conf->staging_dir, t->name);
	snprintf(to, sizeof(to), "%s/" QUARANTINE_DIR "/%s",
	    r->conf->staging_dir, t->name);
	(void)util_rmtree(to);
	if (rename(from, to) < 0)
		log_warn("moving %s to quarantine", from);
	(void)util_fsync_dir(to);
	held_add(r->lc, t->id);
	r->lc->retention_ns = 0; /* recount what staging keeps */
	ended_in(r, t->id, t->session);
	t->state = TS_QUARANTINED;
	qlog_id(r, t->id, t->manifest, TS_QUARANTINED, v->reason, v->detail);
	count(r, TS_QUARANTINED);
	log_warnx("transfer %s QUARANTINED: %s: %s", t->name, v->reason,
	    v->detail);
	remove_missing(r, t->id);
	slot_free(r, t);
}

/*
 * RELEASED: each record made durable, in order, before any release hook;
 * the failpoints let tests/e2e/34_crash.sh cut the sequence anywhere.
 */
static void close_superseded(struct recv *r, uint64_t id,
    const struct manifest *m);

static void
finish_released(struct recv *r, uint64_t id, const struct manifest *m,
    const char *reason, const char *detail, const char *approvers,
    bool qlog_done, bool audit_done, const char *dir)
{
	int rc;

	if (!qlog_done)
		qlog_id(r, id, m, TS_RELEASED, reason, detail);
	recv_failpoint("after_qlog");
	if (!audit_done)
		audit_id(r, id, m, TS_RELEASED, reason, approvers, detail);
	recv_failpoint("after_audit");
	if ((rc = policy_record_latest(r, m->name, m->version)) != 0)
		log_warnx("recording %s %s as released: %s", m->name,
		    m->version, strerror(-rc));
	record_finished(r, id, TS_RELEASED, "verified");
	recv_failpoint("after_finished");
	count(r, TS_RELEASED);
	snprintf(r->last_release, sizeof(r->last_release), "%s %s", m->name,
	    m->version);
	r->last_release_ns = util_realtime_ns();
	log_info("transfer %016" PRIx64 " released: %s", id,
	    detail != NULL ? detail : "");
	remove_missing(r, id);
	close_superseded(r, id, m);
	/* The hook thread runs the release hooks, then removes dir. */
	hooks_enqueue(r, id, m->name, m->version, dir);
}

/*
 * What a held bundle's info file says (written by finish_held, one
 * logfmt pair a line): bundle, version and the reason it is held.
 */
static bool
held_info(struct recv *r, uint64_t id, char *bundle, char *version,
    char *reason, size_t len)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t n;
	char *line, *save;

	bundle[0] = version[0] = reason[0] = '\0';
	if (snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR "/%016" PRIx64
	    "/info", r->conf->staging_dir, id) >= (int)sizeof(path) ||
	    util_read_file(path, 16384, &buf, &n) != 0)
		return false;
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		struct logfmt_record rec;
		const char *v;

		if (logfmt_parse(&rec, line, strlen(line)) != 0)
			continue;
		if ((v = logfmt_get(&rec, "bundle")) != NULL)
			snprintf(bundle, len, "%s", v);
		if ((v = logfmt_get(&rec, "version")) != NULL)
			snprintf(version, len, "%s", v);
		if ((v = logfmt_get(&rec, "reason")) != NULL)
			snprintf(reason, len, "%s", v);
	}
	free(buf);
	return bundle[0] != '\0' && version[0] != '\0';
}

/* Removes a held bundle (purge, retention, superseded): audit, log. */
static void
unhold(struct recv *r, uint64_t id, const char *reason, const char *detail,
    const char *actor)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR "/%016" PRIx64,
	    r->conf->staging_dir, id) >= (int)sizeof(path) ||
	    util_rmtree(path) != 0) {
		log_warn("removing %s", path);
		return;
	}
	(void)actor;
	audit_id(r, id, NULL, TS_PURGED, reason, NULL, detail);
	qlog_id(r, id, NULL, TS_PURGED, reason, detail);
	held_remove(r->lc, id);
	r->lc->retention_ns = 0;
}

/*
 * A held bundle whose version has now been released (by another
 * transfer, or by an operator) is closed: nothing is left to decide.
 */
static void
close_superseded(struct recv *r, uint64_t id, const struct manifest *m)
{
	char b[PMAN_MAX_VALUE + 1], v[PMAN_MAX_VALUE + 1], why[64],
	    detail[300];
	size_t i;

	for (i = 0; i < r->lc->n_held;) {
		uint64_t h = r->lc->held[i];

		if (h == id || !held_info(r, h, b, v, why, sizeof(b)) ||
		    strcmp(b, m->name) != 0 ||
		    manifest_version_cmp(v, m->version) != 0) {
			i++;
			continue;
		}
		snprintf(detail, sizeof(detail), "held (%s); version %s was "
		    "released by transfer %016" PRIx64, why, m->version, id);
		unhold(r, h, "superseded", detail, NULL); /* shifts held[] */
	}
}

/* ---- operator requests (common/request.h) ------------------------------ */

static void
answer_request(struct recv *r, const char *name, bool ok, const char *state,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
answer_request(struct recv *r, const char *name, bool ok, const char *state,
    const char *fmt, ...)
{
	struct request_result res;
	char dir[PATH_MAX], path[PATH_MAX];
	va_list ap;

	memset(&res, 0, sizeof(res));
	res.ok = ok;
	snprintf(res.state, sizeof(res.state), "%s", state);
	va_start(ap, fmt);
	vsnprintf(res.detail, sizeof(res.detail), fmt, ap);
	va_end(ap);
	snprintf(dir, sizeof(dir), "%s/" REQUEST_DIR, r->conf->state_dir);
	if (request_answer(dir, name, &res) != 0)
		log_warn("answering request %s", name);
	if (snprintf(path, sizeof(path), "%s/%s.req", dir, name) <
	    (int)sizeof(path))
		(void)unlink(path);
	if (snprintf(path, sizeof(path), "%s/%s.taken", dir, name) <
	    (int)sizeof(path))
		(void)unlink(path);
}

static bool
is_held(struct recv *r, uint64_t id)
{
	char path[64];
	struct stat st;
	bool found;

	held_index(r->lc, id, &found);
	snprintf(path, sizeof(path), QUARANTINE_DIR "/%016" PRIx64, id);
	return found && fstatat(r->staging_fd, path, &st,
	    AT_SYMLINK_NOFOLLOW) == 0;
}

/* The held bundle's manifest with its approvals, as in its tree. */
static struct manifest *
held_manifest(struct recv *r, uint64_t id, const char *extra, char *err,
    size_t errlen)
{
	struct manifest_limits lim = { SIZE_MAX, 65536, UINT64_MAX };
	char path[PATH_MAX];
	struct manifest *m = NULL;
	uint8_t *text = NULL, *appr = NULL, *all;
	size_t tlen, alen = 0, xlen = extra != NULL ? strlen(extra) : 0;
	const char *reason;

	snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR "/%016" PRIx64
	    "/tree/" MANIFEST_BUNDLE_FILE, r->conf->staging_dir, id);
	if (util_read_file(path, 64u << 20, &text, &tlen) != 0) {
		util_seterr(err, errlen, "cannot read the held manifest");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR "/%016" PRIx64
	    "/tree/" MANIFEST_APPROVALS_FILE, r->conf->staging_dir, id);
	(void)util_read_file(path, 1u << 20, &appr, &alen);
	all = malloc(tlen + alen + xlen + 1);
	if (all != NULL) {
		memcpy(all, text, tlen);
		if (alen > 0)
			memcpy(all + tlen, appr, alen);
		if (xlen > 0)
			memcpy(all + tlen + alen, extra, xlen);
		if (manifest_parse(all, tlen + alen + xlen, &lim, &m, &reason,
		    err, errlen) != 0)
			m = NULL;
	}
	free(all);
	free(text);
	free(appr);
	return m;
}

static void
request_approve(struct recv *r, const char *name, const struct request *rq)
{
	char err[256] = "", line[REQUEST_SIG_MAX + 2], ids[CONF_MAX_KEYS * 17
	    + 1], path[PATH_MAX], detail[600];
	struct manifest *m;
	uint8_t *obj = NULL;
	size_t objlen, i;
	unsigned got = 0, mine = 0;

	snprintf(line, sizeof(line), "%s\n", rq->signature);
	m = held_manifest(r, rq->transfer, line, err, sizeof(err));
	if (m == NULL) {
		answer_request(r, name, false, "QUARANTINED", "not a valid "
		    "approval for the held manifest: %s", err);
		return;
	}
	/* The new line must be a valid approval by a configured approver. */
	for (i = 0; i < r->n_approvers; i++) {
		if (memcmp(m->approvals[m->n_approvals - 1].key_id,
		    r->approvers[i].id, PROTO_KEYID_LEN) == 0)
			mine = manifest_count_approvals(m, &r->approvers[i], 1,
			    NULL, 0);
	}
	if (mine == 0) {
		manifest_free(m);
		answer_request(r, name, false, "QUARANTINED", "the signature "
		    "is not a valid approval of this manifest by a configured "
		    "approver");
		return;
	}
	got = manifest_count_approvals(m, r->approvers, r->n_approvers, ids,
	    sizeof(ids));
	snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR "/%016" PRIx64
	    "/tree/" MANIFEST_APPROVALS_FILE, r->conf->staging_dir,
	    rq->transfer);
	if (manifest_render_object(m, &obj, &objlen) != 0 ||
	    util_write_file_atomic(path, obj + m->text_len, objlen -
	    m->text_len, r->conf->file_mode) != 0) {
		free(obj);
		manifest_free(m);
		answer_request(r, name, false, "QUARANTINED", "cannot write "
		    "the approvals");
		return;
	}
	free(obj);
	snprintf(detail, sizeof(detail), "approval added by %s (uid %u); %u "
	    "of %u required approvals (%s)", rq->user, rq->uid, got,
	    r->conf->approval_threshold, ids);
	audit_id(r, rq->transfer, m, TS_QUARANTINED, "approval_added", ids,
	    detail);
	qlog_id(r, rq->transfer, m, TS_QUARANTINED, "approval_added", detail);
	answer_request(r, name, true, "QUARANTINED", "%s", detail);
	manifest_free(m);
}

static void
request_release(struct recv *r, const char *name, const struct request *rq)
{
	char b[PMAN_MAX_VALUE + 1], v[PMAN_MAX_VALUE + 1], why[64], err[256],
	    detail[600];
	struct manifest *m;
	unsigned got;

	if (!held_info(r, rq->transfer, b, v, why, sizeof(b))) {
		answer_request(r, name, false, "-", "cannot read the held "
		    "bundle's info");
		return;
	}
	if (strcmp(why, "approvals") == 0) {
		/* Only the approvals can lift this one, never an override. */
		m = held_manifest(r, rq->transfer, NULL, err, sizeof(err));
		got = m != NULL ? manifest_count_approvals(m, r->approvers,
		    r->n_approvers, NULL, 0) : 0;
		manifest_free(m);
		if (got < r->conf->approval_threshold) {
			answer_request(r, name, false, "QUARANTINED", "%u of %u "
			    "required approvals: add them with sluice "
			    "quarantine approve", got,
			    r->conf->approval_threshold);
			return;
		}
		snprintf(detail, sizeof(detail), "released from quarantine "
		    "by %s (uid %u): %u of %u approvals now present", rq->user,
		    rq->uid, got, r->conf->approval_threshold);
	} else {
		/* rollback, expired, destination, scan: a person decides. */
		if (!rq->override || rq->reason[0] == '\0') {
			answer_request(r, name, false, "QUARANTINED", "held for "
			    "%s: releasing it needs --override and --reason",
			    why);
			return;
		}
		snprintf(detail, sizeof(detail), "released from quarantine "
		    "(%s) by %s (uid %u), override: %s", why, rq->user,
		    rq->uid, rq->reason);
	}
	verify_enqueue_held(r, rq->transfer, name, detail);
}

/* INCOMPLETE staging an operator gives up on. */
static void
request_purge(struct recv *r, const char *name, const struct request *rq)
{
	struct transfer *t = lifecycle_find(r, rq->transfer);
	char hex[17], path[PATH_MAX], detail[300];
	struct stat st;

	if (t != NULL && (t->state == TS_VERIFYING ||
	    t->state == TS_SCANNING || t->state == TS_RECEIVING)) {
		answer_request(r, name, false, tstate_name(t->state), "the "
		    "transfer is %s; only an INCOMPLETE one can be purged",
		    tstate_name(t->state));
		return;
	}
	snprintf(hex, sizeof(hex), "%016" PRIx64, rq->transfer);
	if (t == NULL && fstatat(r->staging_fd, hex, &st,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		answer_request(r, name, false, "-", "no incomplete transfer "
		    "%s in staging", hex);
		return;
	}
	if (t != NULL)
		slot_free(r, t);
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    hex) == 0)
		(void)util_rmtree(path);
	remove_missing(r, rq->transfer);
	snprintf(detail, sizeof(detail), "incomplete staging purged by %s "
	    "(uid %u)", rq->user, rq->uid);
	audit_id(r, rq->transfer, NULL, TS_PURGED, "operator", NULL, detail);
	qlog_id(r, rq->transfer, NULL, TS_PURGED, "operator", detail);
	answer_request(r, name, true, "PURGED", "%s", detail);
}

/* Takes the requests queued in <state_dir>/requests (every second). */
static void
requests_poll(struct recv *r)
{
	char dir[PATH_MAX], err[256];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" REQUEST_DIR, r->conf->state_dir);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char name[NAME_MAX + 1], res[NAME_MAX + 8];
		size_t n = strlen(de->d_name);
		struct request rq;
		struct stat st;
		uint8_t *buf;
		size_t len;

		if (n < 5 || n > NAME_MAX || strcmp(de->d_name + n - 4,
		    ".req") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 4), de->d_name);
		snprintf(res, sizeof(res), "%s.taken", name);
		/* Taken already (a release the verifier is working on)? */
		if (fstatat(dirfd(d), res, &st, 0) == 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
		    0 || !S_ISREG(st.st_mode))
			continue;
		if (st.st_uid != 0 && st.st_uid != geteuid()) {
			answer_request(r, name, false, "-", "refused: the "
			    "request file is owned by uid %u",
			    (unsigned)st.st_uid);
			continue;
		}
		snprintf(res, sizeof(res), "%s/%s", dir, de->d_name);
		if (util_read_file(res, 4096, &buf, &len) != 0)
			continue;
		if (request_parse((char *)buf, len, &rq, err,
		    sizeof(err)) != 0) {
			free(buf);
			answer_request(r, name, false, "-", "%s", err);
			continue;
		}
		free(buf);
		/* Marked taken before the work begins. */
		snprintf(res, sizeof(res), "%s/%s.taken", dir, name);
		if (util_write_file_atomic(res, "", 0, 0600) != 0)
			continue;
		log_info("request %s: %s %016" PRIx64 " by %s (uid %u)", name,
		    request_action_name(rq.action), rq.transfer, rq.user,
		    rq.uid);
		if (rq.action == REQUEST_PURGE)
			request_purge(r, name, &rq);
		else if (!is_held(r, rq.transfer))
			answer_request(r, name, false, "-", "%016" PRIx64 " is "
			    "not held in quarantine", rq.transfer);
		else if (rq.action == REQUEST_APPROVE)
			request_approve(r, name, &rq);
		else
			request_release(r, name, &rq);
	}
	closedir(d);
}

/* This machine's fault: back to waiting, and verified again later. */
static void
retry(struct recv *r, struct transfer *t, const struct verdict *v)
{
	uint64_t now = util_now_ns(), backoff;
	char path[PATH_MAX];

	(void)unlinkat(t->dirfd, VERIFY_RELEASING_FILE, 0);
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    t->name) == 0 && strlen(path) + 6 < sizeof(path)) {
		strcat(path, "/tree");
		(void)util_rmtree(path);
	}
	if (v->reset_object >= 0)
		transfer_reset_object(t, (uint32_t)v->reset_object);
	t->retries++;
	backoff = RETRY_MIN_NS << UTIL_MIN(t->retries - 1, 7u);
	t->retry_ns = now + UTIL_MIN(backoff, RETRY_MAX_NS);
	r->stats.transfers_retried++;
	set_state(r, t, TS_INCOMPLETE, "retry", v->detail);
}

/* ---- admission -------------------------------------------------------------- */

static struct answered *
answered_slot(struct recv *r, uint64_t id)
{
	return &r->lc->answered[(id * 0x9e3779b97f4a7c15ull) >> 52 &
	    (ANSWER_SLOTS - 1)];
}

/* The carousel passes of the sending a transfer ended in are no resend. */
static void
ended_in(struct recv *r, uint64_t id, uint64_t session)
{
	struct answered *a = answered_slot(r, id);

	a->id = id;
	a->session = session;
	a->at_ns = 0;
}

/*
 * Answers a resend of a transfer that has ended: a datagram from another
 * sender session than the one it ended in, once per run and per 10
 * minutes at most per transfer (a direct-mapped table: a collision costs
 * at most one extra line).
 */
static void
answer(struct recv *r, uint64_t id, uint64_t session, enum tstate state,
    const char *reason, const char *detail)
{
	struct answered *a = answered_slot(r, id);
	uint64_t now = util_now_ns();

	if (a->id == id && (a->session == session || (a->at_ns != 0 &&
	    now - a->at_ns < ANSWER_INTERVAL_NS)))
		return;
	a->id = id;
	a->session = session;
	a->at_ns = now;
	qlog_id(r, id, NULL, state, reason, detail);
}

bool
lifecycle_ended(struct recv *r, uint64_t id, uint64_t session)
{
	struct lifecycle *lc = r->lc;
	uint8_t verdict, reason;
	char detail[128], path[64];
	struct stat st;
	bool held;
	uint64_t now;

	if (finished_get(r->finished, id, &verdict, &reason)) {
		if (verdict == FINISHED_REJECTED) {
			snprintf(detail, sizeof(detail), "rejected earlier "
			    "(%s); not received again", reason_name(reason));
			answer(r, id, session, TS_REJECTED, "already_rejected",
			    detail);
		} else {
			answer(r, id, session, TS_DUPLICATE, "already_released",
			    "this transfer was released earlier; not received "
			    "again");
		}
		return true;
	}
	held_index(lc, id, &held);
	if (!held)
		return false;
	/* Purged by an operator meanwhile?  Then it is received afresh.
	 * (Looked at once a second, not for every datagram.) */
	now = util_now_ns();
	if (now - lc->held_checked_ns >= 1000000000ull) {
		lc->held_checked_ns = now;
		snprintf(path, sizeof(path), QUARANTINE_DIR "/%016" PRIx64,
		    id);
		if (fstatat(r->staging_fd, path, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
			held_remove(lc, id);
			return false;
		}
	}
	answer(r, id, session, TS_QUARANTINED, "already_held", "held in "
	    "quarantine; "
	    "purge it to receive it again");
	return true;
}

/* A free slot, or one taken over from the transfer with the oldest
 * written progress (not while the verifier has it). */
static struct transfer *
take_slot(struct recv *r, uint64_t id, uint64_t now)
{
	struct transfer *victim = NULL;
	char detail[128];
	unsigned i;

	for (i = 0; i < r->n_transfers; i++)
		if (r->transfers[i].state == TS_FREE)
			return &r->transfers[i];
	/* A transfer set aside lately may only come back into a free slot:
	 * replayed descriptors of old transfers cannot take turns evicting
	 * the one that is making progress. */
	if (aside_has(r, id, now))
		return NULL;
	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *c = &r->transfers[i];

		if (c->state != TS_RECEIVING && c->state != TS_INCOMPLETE)
			continue;
		if (victim == NULL || c->written_ns < victim->written_ns)
			victim = c;
	}
	if (victim == NULL)
		return NULL;
	snprintf(detail, sizeof(detail), "set aside for %016" PRIx64 "; its "
	    "staging is kept", id);
	write_missing(r, victim);
	set_state(r, victim, TS_INCOMPLETE, "preempted", detail);
	r->stats.transfers_preempted++;
	aside_add(r, victim->id, now);
	slot_free(r, victim);
	return victim;
}

/* Fills a slot for transfer id and opens (or resumes) its staging. */
static bool
slot_open(struct recv *r, struct transfer *t, uint64_t id,
    uint32_t object_count, uint64_t bytes, uint32_t chunk_size,
    uint16_t symbol_size, const struct sign_pubkey *key, int *restored)
{
	uint32_t i;
	int n = -1;

	t->objects = calloc(object_count, sizeof(*t->objects));
	if (t->objects == NULL) {
		log_warnx("out of memory for a transfer of %u objects",
		    object_count);
		return false;
	}
	for (i = 0; i < object_count; i++)
		t->objects[i].size = UINT64_MAX;
	t->state = TS_RECEIVING;
	t->id = id;
	t->key = key;
	t->object_count = object_count;
	t->transfer_bytes = bytes;
	t->chunk_size = chunk_size;
	t->symbol_size = symbol_size;
	t->created_ns = t->seen_ns = util_now_ns();
	t->written_ns = 0;
	snprintf(t->name, sizeof(t->name), "%016" PRIx64, id);
	/* Staging an earlier run left is resumed when its progress file
	 * says what is on disk; otherwise started afresh. */
	t->dirfd = openat(r->staging_fd, t->name, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW);
	if (t->dirfd >= 0) {
		n = progress_load(r, t);
		if (n < 0) {
			close(t->dirfd);
			t->dirfd = -1;
			for (i = 0; i < object_count; i++) {
				free(t->objects[i].done);
				memset(&t->objects[i], 0,
				    sizeof(t->objects[i]));
				t->objects[i].size = UINT64_MAX;
			}
			t->objects_done = 0;
			t->bytes_done = t->prefix_bytes = 0;
			remove_staging(r, t->name);
		}
	}
	/* With hooks in sluice-hookd, its user must reach tree/ by path
	 * (0711: through, never a listing). */
	if (t->dirfd < 0 && (mkdirat(r->staging_fd, t->name,
	    r->conf->hook_socket != NULL ? 0711 : 0700) < 0 ||
	    (t->dirfd = openat(r->staging_fd, t->name, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)) {
		log_warn("staging %s/%s", r->conf->staging_dir, t->name);
		return false;
	}
	*restored = n;
	return true;
}

/* What a slot holds once it is filled: logged, and carried forward. */
static void
opened(struct recv *r, struct transfer *t, int restored)
{
	char detail[128];

	if (restored >= 0) {
		snprintf(detail, sizeof(detail), "%d chunks already on disk",
		    restored);
		qlog_id(r, t->id, NULL, TS_RECEIVING, "resumed", detail);
		log_info("transfer %s: resumed with %d chunks from staging",
		    t->name, restored);
		if (t->objects[0].n_chunks > 0 &&
		    t->objects[0].n_done == t->objects[0].n_chunks) {
			manifest_ready(r, t);
			if (t->state != TS_FREE)
				check_complete(r, t);
		}
		return;
	}
	snprintf(detail, sizeof(detail), "objects=%u bytes=%" PRIu64,
	    t->object_count, t->transfer_bytes);
	qlog_id(r, t->id, NULL, TS_RECEIVING, "first_datagram", detail);
}

struct transfer *
lifecycle_admit(struct recv *r, const struct proto_descriptor *d,
    const struct sign_pubkey *key)
{
	struct policy_verdict pv;
	struct transfer *t;
	int restored;
	uint64_t now = util_now_ns();

	policy_admit_transfer(r, d, &pv);
	if (pv.state != TS_FREE) {
		r->stats.drop[DROP_TRANSFER_LIMIT]++;
		refuse(r, d->id.transfer, pv.reason, pv.detail);
		ended_in(r, d->id.transfer, d->hdr.session);
		return NULL;
	}
	t = take_slot(r, d->id.transfer, now);
	if (t == NULL) {
		r->stats.drop[DROP_TRANSFER_LIMIT]++;
		return NULL;
	}
	if (!slot_open(r, t, d->id.transfer, d->object_count,
	    d->transfer_bytes, d->chunk_size, d->symbol_size, key,
	    &restored)) {
		slot_free(r, t);
		return NULL;
	}
	t->session = d->hdr.session;
	opened(r, t, restored);
	return t->state == TS_FREE ? NULL : t;
}

/* Is there room in staging for what is still to come? */
static bool
space_ok(struct recv *r, struct transfer *t, char *detail, size_t len)
{
	struct statvfs sv;
	uint64_t avail, need;

	if (fstatvfs(t->dirfd, &sv) != 0)
		return true;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	need = t->manifest->total_bytes > t->bytes_done ?
	    t->manifest->total_bytes - t->bytes_done : 0;
	if (avail >= need)
		return true;
	snprintf(detail, len, "bundle of %" PRIu64 " bytes needs %" PRIu64
	    " more, %" PRIu64 " free in staging; waiting for space (a later "
	    "pass or a resend completes it)", t->manifest->total_bytes, need,
	    avail);
	return false;
}

void
lifecycle_seen(struct recv *r, struct transfer *t, uint64_t session)
{
	uint64_t now = util_now_ns();
	char detail[256];

	/* A resend or a later pass: a transfer waiting for a retry is
	 * tried again soon (not sooner than RETRY_MIN_NS after the last). */
	if (t->retry_ns != 0 && t->retry_ns > now + RETRY_MIN_NS)
		t->retry_ns = now + RETRY_MIN_NS;
	/* One statvfs per datagram while it waits (about a microsecond):
	 * a resend right after space is freed must not be lost. */
	if (t->waiting_space) {
		t->space_checked_ns = now;
		if (space_ok(r, t, detail, sizeof(detail))) {
			t->waiting_space = false;
			set_state(r, t, TS_RECEIVING, "resumed",
			    "space in staging again");
		}
	}
	t->seen_ns = now;
	t->session = session;
}

/* ---- receiving ------------------------------------------------------------- */

/* Object 0 is on disk: parse the manifest and learn every file's size. */
static void
manifest_ready(struct recv *r, struct transfer *t)
{
	struct manifest_limits lim = {
		.max_files = UTIL_MIN(t->object_count - 1, r->conf->max_files),
		.max_path_len = r->conf->max_path_len,
		.max_bytes = r->conf->max_bundle_bytes,
	};
	struct policy_verdict pv;
	char err[256], detail[256];
	const char *reason;
	uint8_t *buf = NULL;
	struct stat st;
	size_t i;
	int fd;

	fd = openat(t->dirfd, "o0", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (uint64_t)st.st_size != t->objects[0].size ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL ||
	    pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		struct verdict v = { .reset_object = 0 };

		log_warn("transfer %s: reading its manifest", t->name);
		if (fd >= 0)
			close(fd);
		free(buf);
		snprintf(v.detail, sizeof(v.detail), "cannot read the staged "
		    "manifest; receiving it again");
		retry(r, t, &v);
		t->retry_ns = 0;
		return;
	}
	close(fd);
	if (manifest_parse(buf, (size_t)st.st_size, &lim, &t->manifest,
	    &reason, err, sizeof(err)) != 0) {
		free(buf);
		finish_final(r, t, TS_REJECTED, reason, err);
		return;
	}
	free(buf);
	policy_admit_manifest(r, t->manifest, &pv);
	if (pv.state != TS_FREE) {
		finish_final(r, t, pv.state, pv.reason, pv.detail);
		return;
	}
	if (t->manifest->n_files + 1 != t->object_count ||
	    t->objects[0].size + t->manifest->total_bytes !=
	    t->transfer_bytes) {
		finish_final(r, t, TS_REJECTED, "manifest_mismatch",
		    "file count or sizes differ from the descriptors");
		return;
	}
	for (i = 0; i < t->manifest->n_files; i++) {
		if (!transfer_object_size(t, (uint32_t)i + 1,
		    t->manifest->files[i].size)) {
			snprintf(err, sizeof(err), "size of %s differs from "
			    "its descriptors", t->manifest->files[i].path);
			finish_final(r, t, TS_REJECTED, "manifest_mismatch",
			    err);
			return;
		}
	}
	log_info("transfer %s: bundle %s version %s, %zu files, %" PRIu64
	    " bytes", t->name, t->manifest->name, t->manifest->version,
	    t->manifest->n_files, t->manifest->total_bytes);
	/* Not enough room: this machine's problem, not the bundle's.  Wait
	 * (nothing more is written) and look again as datagrams come. */
	if (!space_ok(r, t, detail, sizeof(detail))) {
		t->waiting_space = true;
		r->stats.transfers_retried++;
		set_state(r, t, TS_INCOMPLETE, "retry", detail);
	}
}

/* Every chunk on disk: the verifier takes the transfer over. */
static void
check_complete(struct recv *r, struct transfer *t)
{
	if (!transfer_all_done(t) || t->waiting_space ||
	    (t->state != TS_RECEIVING && t->state != TS_INCOMPLETE) ||
	    (t->retry_ns != 0 && util_now_ns() < t->retry_ns))
		return;
	t->retry_ns = 0;
	set_state(r, t, TS_COMPLETE, t->retries > 0 ? "retry" :
	    "all_chunks", NULL);
	/* Every chunk durable and recorded first, so that a restart from
	 * here on finds the transfer complete; then the verifier owns the
	 * staging directory. */
	progress_quiesce(r, t);
	progress_save(r, t, true);
	progress_quiesce(r, t);
	set_state(r, t, TS_VERIFYING, "rehash", NULL);
	verify_enqueue(r, t);
}

void
lifecycle_chunk_done(struct recv *r, struct transfer *t, uint32_t object,
    uint32_t chunk, uint32_t plain_len)
{
	struct object *o = &t->objects[object];

	if (!transfer_mark_chunk(t, object, chunk, plain_len))
		return;
	t->written_ns = util_now_ns();
	r->stats.chunks_done++;
	r->stats.bytes_written += plain_len;
	if (t->state == TS_INCOMPLETE && !t->waiting_space)
		set_state(r, t, TS_RECEIVING, "resumed", NULL);
	if (o->n_done < o->n_chunks)
		return;
	if (object == 0 && t->manifest == NULL) {
		manifest_ready(r, t);
		if (t->state == TS_FREE)
			return; /* ended */
	}
	check_complete(r, t);
}

/* ---- verdicts ---------------------------------------------------------------- */

/* The verifier's answer to an operator's release of a held bundle. */
static void
held_verdict(struct recv *r, struct verdict *v)
{
	char sub[64];

	if (v->state != TS_RELEASED || v->m == NULL) {
		answer_request(r, v->req, false, "QUARANTINED", "not released: "
		    "%s: %s", v->reason, v->detail);
		manifest_free(v->m);
		return;
	}
	snprintf(sub, sizeof(sub), QUARANTINE_DIR "/%016" PRIx64, v->held_id);
	held_remove(r->lc, v->held_id);
	r->lc->retention_ns = 0;
	ended_in(r, v->held_id, 0);
	finish_released(r, v->held_id, v->m, "operator", v->detail,
	    v->approvers, false, false, sub);
	answer_request(r, v->req, true, "RELEASED", "%s", v->detail);
	manifest_free(v->m);
}

void
lifecycle_poll(struct recv *r)
{
	struct verdict v[16];
	unsigned i, n;

	progress_poll(r);
	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *t = &r->transfers[i];

		if (t->sync_failed == 0 || (t->state != TS_RECEIVING &&
		    t->state != TS_INCOMPLETE))
			continue;
		t->sync_failed = 0;
		r->stats.transfers_retried++;
		set_state(r, t, TS_INCOMPLETE, "retry", "a staged file could "
		    "not be synced to disk (fdatasync failed): its bytes are "
		    "not trusted and are received again");
	}
	while ((n = verify_poll(r, v, 16)) > 0) {
		for (i = 0; i < n; i++) {
			struct transfer *t = v[i].t;

			if (t == NULL) {
				held_verdict(r, &v[i]);
				continue;
			}
			if (!v[i].final) {
				set_state(r, t, v[i].state, v[i].reason, NULL);
				continue;
			}
			switch (v[i].state) {
			case TS_RELEASED:
				t->state = TS_RELEASED;
				ended_in(r, t->id, t->session);
				finish_released(r, t->id, t->manifest,
				    "verified", v[i].detail, v[i].approvers,
				    false, false, t->name);
				slot_free(r, t);
				break;
			case TS_QUARANTINED:
				finish_held(r, t, &v[i]);
				break;
			case TS_DUPLICATE:
			case TS_REJECTED:
				finish_final(r, t, v[i].state, v[i].reason,
				    v[i].detail);
				break;
			default:
				retry(r, t, &v[i]);
				break;
			}
		}
	}
}

/* ---- every second ------------------------------------------------------------ */

static uint64_t
tree_bytes(int at, const char *name)
{
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;
	DIR *d;

	d = util_opendirat(at, name);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sum += tree_bytes(dirfd(d), de->d_name);
		else	/* tree/ holds hard links to the staged files */
			sum += (uint64_t)st.st_blocks * 512 /
			    (st.st_nlink > 0 ? st.st_nlink : 1);
	}
	closedir(d);
	return sum;
}

/* Removes one kept tree past staging_retention, with its log lines. */
static void
expire(struct recv *r, const char *sub, const char *name,
    uint64_t id, bool held)
{
	char path[PATH_MAX], detail[160];

	snprintf(detail, sizeof(detail), "%s older than staging_retention "
	    "(%.0f s) removed", held ? "held bundle" : "incomplete staging",
	    r->conf->staging_retention);
	if (snprintf(path, sizeof(path), "%s%s%s/%s", r->conf->staging_dir,
	    sub[0] ? "/" : "", sub, name) >= (int)sizeof(path) ||
	    util_rmtree(path) != 0) {
		log_warn("removing %s", path);
		return;
	}
	audit_id(r, id, NULL, TS_PURGED, "retention", NULL, detail);
	qlog_id(r, id, NULL, TS_PURGED, "retention", detail);
	remove_missing(r, id);
	if (held)
		held_remove(r->lc, id);
}

/*
 * staging_retention: INCOMPLETE staging no slot holds, and held bundles,
 * older than that are removed.  The newest mtime in a transfer's
 * directory (its progress file, written as chunks arrive) dates it.
 */
static void
retention(struct recv *r, bool held)
{
	struct lifecycle *lc = r->lc;
	const char *sub = held ? QUARANTINE_DIR : "";
	uint64_t now_s = util_realtime_ns() / 1000000000ull, limit;
	uint64_t bytes = 0;
	unsigned kept = 0;
	struct dirent *de;
	DIR *d;

	limit = (uint64_t)r->conf->staging_retention;
	d = util_opendirat(r->staging_fd, held ? sub : ".");
	if (d == NULL)
		return;

	while ((de = readdir(d)) != NULL) {
		struct stat st, pst;
		uint64_t id;
		char p[64];
		time_t mt;

		if (!parse_id(de->d_name, &id) ||
		    fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (!held && lifecycle_find(r, id) != NULL)
			continue;
		mt = st.st_mtime;
		snprintf(p, sizeof(p), "%s/%s", de->d_name, held ? "info" :
		    "progress");
		if (fstatat(dirfd(d), p, &pst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    pst.st_mtime > mt)
			mt = pst.st_mtime;
		snprintf(p, sizeof(p), "%s/" VERIFY_RELEASING_FILE,
		    de->d_name);
		if (!held && faccessat(dirfd(d), p, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0)
			continue; /* release hooks still to run */
		if (mt >= 0 && now_s > (uint64_t)mt + limit) {
			expire(r, sub, de->d_name, id, held);
			continue;
		}
		kept++;
		bytes += tree_bytes(dirfd(d), de->d_name);
	}
	closedir(d);
	if (held) {
		lc->kept_held = kept;
		lc->kept_bytes_held = bytes;
	} else {
		lc->kept_incomplete = kept;
		lc->kept_bytes_incomplete = bytes;
	}
}

void
lifecycle_tick(struct recv *r, uint64_t now)
{
	uint64_t timeout = (uint64_t)(r->conf->transfer_timeout * 1e9);
	char detail[MISSING_DETAIL_MAX + 128];
	unsigned i;

	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *t = &r->transfers[i];
		uint64_t last = t->written_ns > t->created_ns ?
		    t->written_ns : t->created_ns;

		if ((t->state == TS_INCOMPLETE || t->state == TS_RECEIVING) &&
		    t->retry_ns != 0 && now >= t->retry_ns) {
			check_complete(r, t);
			continue;
		}
		if (t->state != TS_RECEIVING || now - last < timeout)
			continue;
		missing_detail(t, detail, sizeof(detail));
		write_missing(r, t);
		set_state(r, t, TS_INCOMPLETE, "timeout", detail);
	}
	requests_poll(r);
	if (now - r->lc->retention_ns >= RETENTION_EVERY_NS ||
	    r->lc->retention_ns == 0) {
		r->lc->retention_ns = now;
		retention(r, false);
		retention(r, true);
	}
}

/*
 * The input has ended (sluice-recv --pcap read its files): every transfer
 * still receiving has had all it will get, and goes to INCOMPLETE with
 * its missing list now rather than after transfer_timeout.
 */
void
lifecycle_end_of_input(struct recv *r)
{
	char detail[MISSING_DETAIL_MAX + 128];
	unsigned i;

	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *t = &r->transfers[i];

		if (t->state != TS_RECEIVING)
			continue;
		missing_detail(t, detail, sizeof(detail));
		write_missing(r, t);
		set_state(r, t, TS_INCOMPLETE, "end_of_input", detail);
	}
}

/* ---- status and progress ------------------------------------------------------ */

/*
 * <state_dir>/status: the transfers in flight, one logfmt line each, and
 * what staging keeps, rewritten atomically for `sluice status`.  The
 * header names the process and the time: `sluice status` reads a file
 * whose process is gone or whose time is old as "not running".  The
 * last write, at a clean stop, says state=stopped.
 */
void
lifecycle_write_status(struct recv *r)
{
	struct lifecycle *lc = r->lc;
	char path[PATH_MAX], buf[16384], ts[32], b[256], v[256], hb[32],
	    rel[32];
	size_t off = 0;
	uint64_t now = util_now_ns(), wall = util_realtime_ns();
	unsigned i;

	util_rfc3339(ts, sizeof(ts), wall);
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	    "# sluice-recv %ld status at %s%s\n", (long)getpid(), ts,
	    r->stopping ? " state=stopped" : "");
	/* The heartbeat's monotonic time, as wall-clock time now. */
	if (r->last_heartbeat_ns != 0 && now >= r->last_heartbeat_ns)
		util_rfc3339(hb, sizeof(hb), wall - (now -
		    r->last_heartbeat_ns));
	else
		snprintf(hb, sizeof(hb), "-");
	if (r->last_release_ns != 0)
		util_rfc3339(rel, sizeof(rel), r->last_release_ns);
	else
		snprintf(rel, sizeof(rel), "-");
	logfmt_escape(b, sizeof(b), r->last_release_ns != 0 ?
	    r->last_release : "-");
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	    "link=%s last_heartbeat=%s last_release=%s last_release_at=%s\n",
	    r->link_up ? "up" : "down", hb, b, rel);
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	    "kept=incomplete count=%u bytes=%" PRIu64 "\n"
	    "kept=quarantine count=%u bytes=%" PRIu64 "\n",
	    lc->kept_incomplete, lc->kept_bytes_incomplete, lc->kept_held,
	    lc->kept_bytes_held);
	for (i = 0; i < r->n_transfers && off < sizeof(buf) - 600; i++) {
		const struct transfer *t = &r->transfers[i];
		uint64_t done = 0, total = 0;
		uint32_t j;
		bool known = true;

		if (t->state == TS_FREE)
			continue;
		if (t->state == TS_VERIFYING || t->state == TS_SCANNING) {
			/* The verifier's now: only what does not change. */
			off += (size_t)snprintf(buf + off, sizeof(buf) - off,
			    "transfer=%s state=%s bundle=- version=- "
			    "chunks_done=0 chunks_total=0 bytes_done=0 "
			    "bytes_total=%" PRIu64 " age=%" PRIu64 " idle=0\n",
			    t->name, tstate_name(t->state), t->transfer_bytes,
			    (now - t->created_ns) / 1000000000);
			continue;
		}
		for (j = 0; j < t->object_count; j++) {
			if (t->objects[j].size == UINT64_MAX)
				known = false;
			done += t->objects[j].n_done;
			total += t->objects[j].n_chunks;
		}
		logfmt_escape(b, sizeof(b), t->manifest != NULL ?
		    t->manifest->name : "-");
		logfmt_escape(v, sizeof(v), t->manifest != NULL ?
		    t->manifest->version : "-");
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
		    "transfer=%s state=%s bundle=%s version=%s chunks_done=%"
		    PRIu64 " chunks_total=%" PRIu64 "%s bytes_done=%" PRIu64
		    " bytes_total=%" PRIu64 " age=%" PRIu64 " idle=%" PRIu64
		    "\n", t->name, tstate_name(t->state), b, v, done, total,
		    known ? "" : "+", t->bytes_done, t->transfer_bytes,
		    (now - t->created_ns) / 1000000000,
		    (now - (t->written_ns ? t->written_ns : t->created_ns)) /
		    1000000000);
	}
	if (snprintf(path, sizeof(path), "%s/status", r->conf->state_dir) <
	    (int)sizeof(path))
		(void)util_write_file_atomic(path, buf, off, 0644);
}

void
lifecycle_save_progress(struct recv *r, bool sync)
{
	unsigned i;

	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *t = &r->transfers[i];

		if (t->state == TS_RECEIVING || t->state == TS_INCOMPLETE)
			progress_save(r, t, sync);
	}
}

/* ---- start and recovery --------------------------------------------------------- */

/* The transfer ids of the old .done/ directory, taken into the set. */
static void
migrate_done(struct recv *r)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	d = util_opendirat(r->staging_fd, OLD_DONE_DIR);
	if (d == NULL)
		return;

	while ((de = readdir(d)) != NULL) {
		char state[32] = "";
		uint64_t id;
		int f;
		ssize_t k;

		if (!parse_id(de->d_name, &id))
			continue;
		f = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (f >= 0) {
			k = read(f, state, sizeof(state) - 1);
			state[k > 0 ? k : 0] = '\0';
			close(f);
		}
		if (strcmp(state, "QUARANTINED") == 0)
			continue; /* held, not finished */
		if (finished_add(r->finished, id, strcmp(state, "RELEASED") ==
		    0 ? FINISHED_RELEASED : strcmp(state, "DUPLICATE") == 0 ?
		    FINISHED_DUPLICATE : FINISHED_REJECTED, 0) == 0)
			n++;
	}
	closedir(d);
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    OLD_DONE_DIR) == 0)
		(void)util_rmtree(path);
	log_info("took %u finished transfers from %s/%s into %s/%s", n,
	    r->conf->staging_dir, OLD_DONE_DIR, r->conf->state_dir,
	    FINISHED_FILE);
}

#define STATE_LOCK_FILE "lock"

static int
lock_state(struct recv *r, const struct recv_conf *c, char *err,
    size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int rc;

	r->lock_fd = openat(r->state_fd, STATE_LOCK_FILE, O_RDWR | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->lock_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "state_dir %s: %s: %s", c->state_dir,
		    STATE_LOCK_FILE, strerror(-rc));
		return rc;
	}
	if (fcntl(r->lock_fd, F_SETLK, &fl) < 0) {
		rc = -errno;
		snprintf(err, errlen, "state_dir %s: %s", c->state_dir,
		    rc == -EAGAIN || rc == -EACCES ?
		    "in use by another sluice-recv" : strerror(-rc));
		return rc;
	}
	return 0;
}

int
lifecycle_init(struct recv *r, char *err, size_t errlen)
{
	const struct recv_conf *c = r->conf;
	char pattern[1024], path[PATH_MAX];
	unsigned i;
	int rc;

	r->lc = calloc(1, sizeof(*r->lc));
	if (r->lc == NULL)
		return -ENOMEM;
	for (i = 0; i < c->n_approvers; i++) {
		if (sign_pubkey_load(c->approvers[i], &r->approvers[i], err,
		    errlen) != 0) {
			char tmp[256];

			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "%s: %s", c->approvers[i], tmp);
			return -EINVAL;
		}
	}
	r->n_approvers = c->n_approvers;
	snprintf(pattern, sizeof(pattern), "^(%s)$", c->name_pattern);
	if (regcomp(&r->name_re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		snprintf(err, errlen, "%s: name_pattern: not a valid extended "
		    "regular expression", c->path);
		return -EINVAL;
	}
	snprintf(pattern, sizeof(pattern), "^(%s)$", c->version_pattern);
	if (regcomp(&r->version_re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		regfree(&r->name_re);
		snprintf(err, errlen, "%s: version_pattern: not a valid "
		    "extended regular expression", c->path);
		return -EINVAL;
	}
	r->staging_fd = open(c->staging_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	r->store_fd = open(c->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->staging_fd < 0 || r->store_fd < 0) {
		snprintf(err, errlen, "%s: %s", r->staging_fd < 0 ?
		    c->staging_dir : c->store_dir, strerror(errno));
		return -errno;
	}
	rc = util_mkdirs(c->state_dir, 0700);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/released",
	    c->state_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0700);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/missing",
	    c->state_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0755);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/" REQUEST_DIR,
	    c->state_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0700);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR,
	    c->staging_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0700);
	if (rc != 0) {
		snprintf(err, errlen, "state_dir %s: %s", c->state_dir,
		    strerror(-rc));
		return rc;
	}
	r->state_fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->state_fd < 0) {
		snprintf(err, errlen, "state_dir %s: %s", c->state_dir,
		    strerror(errno));
		return -errno;
	}
	/*
	 * One receiver a state directory: a second one (a --pcap run with
	 * the daemon still up) would decide the same transfers twice.  A
	 * POSIX record lock, not flock(2): a hook child between fork and
	 * exec (or a killed receiver's, whose exec a loaded machine
	 * delays) would hold an inherited flock and keep the next receiver
	 * out; record locks belong to the process and are not inherited.
	 */
	if ((rc = lock_state(r, c, err, errlen)) != 0)
		return rc;
	r->finished = finished_open(r->state_fd, FINISHED_FILE, &rc);
	if (r->finished == NULL) {
		snprintf(err, errlen, "%s/%s: %s", c->state_dir, FINISHED_FILE,
		    strerror(-rc));
		return rc;
	}
	migrate_done(r);
	load_held(r);
	if (c->audit_log != NULL) {
		char head[PATH_MAX];

		r->rkey = sign_seckey_load(c->receiver_key, &rc, err, errlen);
		if (r->rkey == NULL) {
			char tmp[256];

			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "%s: %s", c->receiver_key, tmp);
			return rc;
		}
		rc = util_path_join(head, sizeof(head), c->state_dir,
		    AUDIT_HEAD_FILE);
		r->audit = rc == 0 ? audit_open(c->audit_log, r->rkey, head,
		    &rc) : NULL;
		if (r->audit == NULL) {
			snprintf(err, errlen, "audit log %s: %s", c->audit_log,
			    rc == -EBADMSG ? "its last record is damaged or "
			    "unsigned, or it ends before " AUDIT_HEAD_FILE
			    " says; refusing to extend it (run sluice audit "
			    "verify --head)" :
			    strerror(-rc));
			return rc;
		}
	}
	r->n_transfers = c->max_transfers_in_flight;
	r->transfers = calloc(r->n_transfers, sizeof(*r->transfers));
	if (r->transfers == NULL)
		return -ENOMEM;
	for (i = 0; i < r->n_transfers; i++)
		r->transfers[i].dirfd = -1;
	log_info("%zu finished transfers remembered, %zu held in quarantine",
	    finished_count(r->finished), r->lc->n_held);
	return 0;
}

void
lifecycle_fini(struct recv *r)
{
	unsigned i;

	if (r->transfers != NULL) {
		for (i = 0; i < r->n_transfers; i++)
			if (r->transfers[i].state != TS_FREE)
				slot_free(r, &r->transfers[i]);
		free(r->transfers);
	}
	finished_close(r->finished);
	audit_close(r->audit);
	sign_seckey_free(r->rkey);
	regfree(&r->name_re);
	regfree(&r->version_re);
	if (r->staging_fd >= 0)
		close(r->staging_fd);
	if (r->store_fd >= 0)
		close(r->store_fd);
	if (r->state_fd >= 0)
		close(r->state_fd);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	if (r->lc != NULL)
		free(r->lc->held);
	free(r->lc);
}

/*
 * A release cut short by a crash: staging/<id>/releasing names the bundle
 * and its manifest's digest.  If that version is in the store with that
 * manifest, the release happened: write whatever record is missing, then
 * the release hooks.  If not, the rename never happened: the marker goes,
 * and the transfer is verified again like any other.
 */
static bool
recover_release(struct recv *r, uint64_t id, int dirfd, const char *sub)
{
	char buf[3 * PMAN_MAX_VALUE + 128], *name, *version, *hex, *save;
	char path[PATH_MAX], detail[PATH_MAX + 64];
	struct manifest m;
	uint8_t digest[32], *text = NULL;
	size_t len;
	ssize_t n;
	int fd, qf, af;
	bool ok;

	fd = openat(dirfd, VERIFY_RELEASING_FILE, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	name = strtok_r(buf, "\n", &save);
	version = name != NULL ? strtok_r(NULL, "\n", &save) : NULL;
	hex = version != NULL ? strtok_r(NULL, "\n", &save) : NULL;
	ok = hex != NULL && strlen(hex) == 64 &&
	    util_unhex(digest, 32, hex) == 0 && strchr(name, '/') == NULL &&
	    strchr(version, '/') == NULL &&
	    snprintf(path, sizeof(path), "%s/%s/%s/.sluice/manifest",
	    r->conf->store_dir, name, version) < (int)sizeof(path) &&
	    util_read_file(path, 64u << 20, &text, &len) == 0;
	if (ok) {
		uint8_t got[32];

		hash_sha256(got, text, len);
		ok = sign_equal(got, digest, 32);
		free(text);
	}
	if (!ok) {
		(void)unlinkat(dirfd, VERIFY_RELEASING_FILE, 0);
		return false;
	}
	memset(&m, 0, sizeof(m));
	m.name = name;
	m.version = version;
	memcpy(m.digest, digest, 32);
	snprintf(detail, sizeof(detail), "recovered after a restart; path=%s/"
	    "%s/%s", r->conf->store_dir, name, version);
	held_remove(r->lc, id);
	if (finished_get(r->finished, id, NULL, NULL)) {
		hooks_enqueue(r, id, name, version, sub);
		return true;
	}
	af = r->audit != NULL ? audit_find(r->conf->audit_log, id,
	    "RELEASED") : 1;
	qf = af == 1 ? 1 : qlog_find(r->conf->quarantine_log, id, "RELEASED");
	log_info("transfer %016" PRIx64 ": finishing the release of %s %s cut "
	    "short by a restart", id, name, version);
	finish_released(r, id, &m, "verified", detail, NULL, qf == 1, af == 1,
	    sub);
	return true;
}

/* A transfer whose staging holds every chunk: verified without waiting
 * for a resend. */
static void
recover_complete(struct recv *r, uint64_t id, int dirfd)
{
	uint8_t key_id[PROTO_KEYID_LEN];
	const struct sign_pubkey *key = NULL;
	struct transfer *t = NULL;
	uint32_t objects, chunk;
	uint64_t bytes;
	uint16_t symbol;
	bool have_key;
	unsigned i;
	int restored;

	if (progress_peek(dirfd, &objects, &bytes, &chunk, &symbol, key_id,
	    &have_key) != 0)
		return;
	for (i = 0; have_key && i < r->n_keys; i++)
		if (memcmp(r->keys[i].id, key_id, PROTO_KEYID_LEN) == 0)
			key = &r->keys[i];
	if (key == NULL)
		return; /* not a key we trust now: wait for its sender */
	for (i = 0; i < r->n_transfers && t == NULL; i++)
		if (r->transfers[i].state == TS_FREE)
			t = &r->transfers[i];
	if (t == NULL)
		return;
	if (!slot_open(r, t, id, objects, bytes, chunk, symbol, key,
	    &restored) || restored < 0) {
		slot_free(r, t);
		return;
	}
	if (t->objects_done != t->object_count) {
		/* Not complete: it waits for its sender like any other. */
		slot_free(r, t);
		return;
	}
	opened(r, t, restored);
}

void
lifecycle_recover(struct recv *r)
{
	struct dirent *de;
	DIR *d;

	d = util_opendirat(r->staging_fd, ".");
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		int tfd;

		if (!parse_id(de->d_name, &id))
			continue;
		tfd = openat(r->staging_fd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC | O_NOFOLLOW);
		if (tfd < 0)
			continue;
		if (recover_release(r, id, tfd, de->d_name)) {
			close(tfd);
			continue;
		}
		if (finished_get(r->finished, id, NULL, NULL)) {
			close(tfd);
			remove_staging(r, de->d_name);
			continue;
		}
		recover_complete(r, id, tfd);
		close(tfd);
	}
	closedir(d);
	/* Operator releases of held bundles cut short, likewise. */
	d = util_opendirat(r->staging_fd, QUARANTINE_DIR);
	if (d == NULL)
		return;

	while ((de = readdir(d)) != NULL) {
		char sub[64];
		uint64_t id;
		int tfd;

		if (!parse_id(de->d_name, &id))
			continue;
		tfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC | O_NOFOLLOW);
		if (tfd < 0)
			continue;
		snprintf(sub, sizeof(sub), QUARANTINE_DIR "/%s", de->d_name);
		(void)recover_release(r, id, tfd, sub);
		close(tfd);
	}
	closedir(d);
}
