/*
 * The verifier: a thread that takes a complete transfer from the main
 * thread, decides what it is, and hands it back with a verdict.  It does
 * not log transitions, write audit records or move a transfer's state:
 * lifecycle.c does all that with the verdict.  The one act it performs is
 * the release itself (the rename into the store), because nothing may
 * come between the last check and that rename.
 *
 *   1. fdatasync and re-hash every staged file from disk against the
 *      signed manifest (finishing the hashes the progress thread kept)
 *   2. build staging/<id>/tree/ from hard links to the staged files, under
 *      the manifest's validated names, plus .sluice/manifest and approvals
 *   3. policy: approvals, expiry, rollback, duplicates (policy.c)
 *   4. the scan hook on the tree (SCANNING is reported back)
 *   5. write the "releasing" marker, then rename tree/ into
 *      <store_dir>/<name>/<version> (never over an existing version) and
 *      fsync the store directory
 *
 * Verdicts are final (RELEASED, DUPLICATE, REJECTED for what the bytes
 * are), held (QUARANTINED) or retryable (INCOMPLETE, reason retry: this
 * machine's fault, such as ENOSPC, EIO or shutdown).  A file that differs
 * from the manifest is the sender's fault only if every chunk of it was
 * received, written and synced in this run; if some of it came from an
 * earlier run (a crash may have lost writes the progress file vouched
 * for), it is received again instead.
 *
 * The staged files are never moved: tree/ holds links to them, so a crash
 * at any step leaves staging/<id>/o<N> intact and the next run simply
 * builds tree/ again.
 */
#include "receiver/recv.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vq_item {
	struct vq_item *next;
	struct verdict v;
};

struct held_job {
	struct held_job *next;
	uint64_t id;
	char req[64];
	char why[512];
};

struct verifier {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct transfer **todo;   /* one entry per transfer slot at most */
	unsigned n_todo;
	struct held_job *held;    /* operator releases of held bundles */
	struct vq_item *done, **done_tail;
	bool stop;
};

static void *verifier_main(void *arg);
static void release_held(struct recv *r, struct verdict *v);

static void decide(struct verdict *v, enum tstate state, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
decide(struct verdict *v, enum tstate state, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	v->state = state;
	v->final = true;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

/* This machine's fault: the transfer goes back to wait for a retry. */
#define retry(v, ...) decide(v, TS_INCOMPLETE, "retry", __VA_ARGS__)

int
verify_init(struct recv *r)
{
	struct verifier *q = calloc(1, sizeof(*q));
	int rc;

	if (q == NULL)
		return -ENOMEM;
	q->todo = calloc(r->n_transfers, sizeof(*q->todo));
	if (q->todo == NULL) {
		free(q);
		return -ENOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->done_tail = &q->done;
	r->verifier = q;
	rc = pthread_create(&q->thread, NULL, verifier_main, r);
	if (rc != 0)
		return -rc;
	(void)pthread_setname_np(q->thread, "recv-verify");
	q->started = true;
	return 0;
}

/* Finishes the transfer in hand (hooks end on shutdown), then stops;
 * what was still queued goes back as retryable. */
void
verify_fini(struct recv *r)
{
	struct verifier *q = r->verifier;
	unsigned i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	if (q->started)
		pthread_join(q->thread, NULL);
	q->started = false;
	for (i = 0; i < q->n_todo; i++) {
		struct vq_item *it = calloc(1, sizeof(*it));

		if (it == NULL)
			continue;
		it->v.t = q->todo[i];
		it->v.reset_object = -1;
		retry(&it->v, "not verified before shutdown; verified at the "
		    "next start");
		*q->done_tail = it;
		q->done_tail = &it->next;
	}
	q->n_todo = 0;
	while (q->held != NULL) {
		struct held_job *j = q->held;
		struct vq_item *it = calloc(1, sizeof(*it));

		q->held = j->next;
		if (it != NULL) {
			it->v.held_id = j->id;
			it->v.reset_object = -1;
			snprintf(it->v.req, sizeof(it->v.req), "%s", j->req);
			decide(&it->v, TS_QUARANTINED, "shutdown", "the "
			    "receiver stopped first; ask again");
			*q->done_tail = it;
			q->done_tail = &it->next;
		}
		free(j);
	}
}

static void
post(struct recv *r, const struct verdict *v)
{
	struct verifier *q = r->verifier;
	struct vq_item *it = malloc(sizeof(*it));

	if (it == NULL)
		fatalx("out of memory for a verdict");
	it->v = *v;
	it->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->done_tail = it;
	q->done_tail = &it->next;
	pthread_mutex_unlock(&q->lock);
}

void
verify_enqueue(struct recv *r, struct transfer *t)
{
	struct verifier *q = r->verifier;

	pthread_mutex_lock(&q->lock);
	if (q->n_todo >= r->n_transfers)
		abort(); /* cannot happen: one entry per transfer slot */
	q->todo[q->n_todo++] = t;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void
verify_enqueue_held(struct recv *r, uint64_t id, const char *req,
    const char *why)
{
	struct verifier *q = r->verifier;
	struct held_job *j = calloc(1, sizeof(*j)), **pp;

	if (j == NULL)
		fatalx("out of memory for a release request");
	j->id = id;
	snprintf(j->req, sizeof(j->req), "%s", req);
	snprintf(j->why, sizeof(j->why), "%s", why);
	pthread_mutex_lock(&q->lock);
	for (pp = &q->held; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = j;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

unsigned
verify_poll(struct recv *r, struct verdict *out, unsigned max)
{
	struct verifier *q = r->verifier;
	unsigned n = 0;

	if (q == NULL)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (n < max && q->done != NULL) {
		struct vq_item *it = q->done;

		q->done = it->next;
		if (q->done == NULL)
			q->done_tail = &q->done;
		out[n++] = it->v;
		free(it);
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* mkdir -p of path's parent directories under dirfd. */
static int
make_parents(int dirfd, const char *path, unsigned mode)
{
	char buf[PMAN_MAX_VALUE + 1];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	for (slash = strchr(buf, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*slash = '/';
	}
	return 0;
}

/* Writes a new file under dirfd, fsynced. */
static int
write_at(int dirfd, const char *name, const void *buf, size_t len,
    unsigned mode)
{
	int fd, rc;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	rc = util_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* A whole file's SHA-256 as the device has it. */
static int
hash_disk(int fd, uint8_t digest[HASH_LEN], uint64_t *size)
{
	struct hash_ctx *h = hash_new();
	uint64_t off = 0;
	int rc;

	if (h == NULL)
		return -ENOMEM;
	rc = hash_fd_range_disk(fd, h, &off, UINT64_MAX);
	if (rc == 0) {
		hash_final(h, digest);
		*size = off;
	}
	hash_free(h);
	return rc;
}

/* Step 1: every staged file, from disk, against the signed manifest. */
static bool
verify_files(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	const struct recv_conf *c = r->conf;
	struct prehash *ph = progress_take_prehash(r, t->id);
	char name[32];
	size_t i;
	bool ok = false;

	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		uint8_t digest[HASH_LEN];
		uint64_t size = 0;
		int fd, rc;

		snprintf(name, sizeof(name), "o%zu", i + 1);
		fd = openat(t->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT && f->size == 0)
			fd = openat(t->dirfd, name, O_RDWR | O_CREAT |
			    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			v->reset_object = (int)i + 1;
			retry(v, "cannot open the staged %s: %s; receiving it "
			    "again", f->path, strerror(errno));
			goto out;
		}
		/* Synced, then hashed as the disk holds it, not as the
		 * pages were written (hash_fd_range_disk; the progress
		 * thread read what it hashed the same way). */
		rc = fdatasync(fd) < 0 ? -errno : 0;
		if (rc == 0 && !prehash_finish(ph, (uint32_t)i + 1, fd, digest,
		    &size, &rc))
			rc = hash_disk(fd, digest, &size);
		if (rc == 0 && fchmod(fd, f->exec ? (c->file_mode | 0111) &
		    0755 : c->file_mode) < 0)
			rc = -errno;
		close(fd);
		if (rc != 0) {
			v->reset_object = (int)i + 1;
			retry(v, "cannot sync or read back %s: %s; receiving it "
			    "again", f->path, strerror(-rc));
			goto out;
		}
		if (size == f->size && sign_equal(digest, f->sha256, HASH_LEN))
			continue;
		if (t->objects[i + 1].restored) {
			v->reset_object = (int)i + 1;
			retry(v, "%s differs from the manifest, and some of it "
			    "was written before a restart; receiving it again",
			    f->path);
		} else {
			decide(v, TS_REJECTED, "hash_mismatch", "%s differs "
			    "from the manifest", f->path);
		}
		goto out;
	}
	ok = true;
out:
	prehash_free(ph);
	return ok;
}

/* Step 2: tree/ of hard links, and .sluice/ with the manifest. */
static bool
build_tree(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	const struct recv_conf *c = r->conf;
	char name[32], path[PATH_MAX];
	int treefd = -1, sfd = -1, e;
	uint8_t *obj = NULL;
	size_t i, objlen;
	bool ok = false;

	/* Whatever an interrupted run left of it goes first. */
	if (util_path_join(path, sizeof(path), c->staging_dir, t->name) != 0 ||
	    strlen(path) + 6 >= sizeof(path)) {
		retry(v, "staging path too long");
		return false;
	}
	strcat(path, "/tree");
	(void)util_rmtree(path);
	if (mkdirat(t->dirfd, "tree", 0700) < 0 ||
	    (treefd = openat(t->dirfd, "tree", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		retry(v, "cannot create the release tree: %s",
		    strerror(errno));
		goto out;
	}
	for (i = 0; i < m->n_files; i++) {
		snprintf(name, sizeof(name), "o%zu", i + 1);
		if ((e = make_parents(treefd, m->files[i].path,
		    c->dir_mode)) != 0 || (linkat(t->dirfd, name, treefd,
		    m->files[i].path, 0) < 0 && (e = -errno) != 0)) {
			retry(v, "cannot place %s: %s", m->files[i].path,
			    strerror(-e));
			goto out;
		}
	}
	/* The manifest and approvals travel with the bundle, so the release
	 * answers what, why, who approved and what to roll back to, and
	 * `sluice bundle verify` works on it. */
	if (mkdirat(treefd, PMAN_RESERVED_DIR, c->dir_mode) < 0 ||
	    (sfd = openat(treefd, PMAN_RESERVED_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		retry(v, "cannot create .sluice: %s", strerror(errno));
		goto out;
	}
	if (manifest_render_object(m, &obj, &objlen) != 0) {
		retry(v, "out of memory");
		goto out;
	}
	if ((e = write_at(sfd, "manifest", m->text, m->text_len,
	    c->file_mode)) != 0 || (e = write_at(sfd, "approvals",
	    obj + m->text_len, objlen - m->text_len, c->file_mode)) != 0 ||
	    (fchmod(sfd, c->dir_mode) < 0 && (e = -errno) != 0)) {
		retry(v, "cannot write .sluice: %s", strerror(-e));
		goto out;
	}
	if (fchmod(treefd, c->dir_mode) < 0 ||
	    (e = util_fsync_tree(treefd)) != 0) {
		retry(v, "cannot sync the tree");
		goto out;
	}
	ok = true;
out:
	free(obj);
	if (sfd >= 0)
		close(sfd);
	if (treefd >= 0)
		close(treefd);
	return ok;
}

/* Step 4: the scan hook on the staged tree. */
static bool
scan(struct recv *r, struct transfer *t, struct verdict *v)
{
	char path[PATH_MAX], why[128];
	struct verdict progress;
	bool stopped;
	int rc;

	if (r->conf->scan_hook == NULL)
		return true;
	memset(&progress, 0, sizeof(progress));
	progress.t = t;
	progress.state = TS_SCANNING;
	progress.reset_object = -1;
	snprintf(progress.reason, sizeof(progress.reason), "scan_hook");
	post(r, &progress);
	snprintf(path, sizeof(path), "%s/%s/tree", r->conf->staging_dir,
	    t->name);
	rc = hooks_run(r, r->conf->scan_hook, t->manifest, path, path,
	    &stopped, why, sizeof(why));
	if (stopped) {
		retry(v, "scan hook ended by shutdown; scanned again at the "
		    "next start");
		return false;
	}
	if (rc != 0) {
		decide(v, TS_QUARANTINED, "scan", "scan hook: %s", why);
		return false;
	}
	return true;
}

/* Step 5: the marker, then one rename into the store. */
static bool
release(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	char marker[3 * PMAN_MAX_VALUE + 128], hex[65];
	int storefd = -1, e;
	size_t n;

	util_hex(hex, m->digest, 32);
	n = (size_t)snprintf(marker, sizeof(marker), "%s\n%s\n%s\n", m->name,
	    m->version, hex);
	if ((e = write_at(t->dirfd, VERIFY_RELEASING_FILE, marker, n,
	    0600)) != 0 || (fsync(t->dirfd) < 0 && (e = -errno) != 0)) {
		retry(v, "cannot write the release marker: %s", strerror(-e));
		return false;
	}
	if (mkdirat(r->store_fd, m->name, r->conf->dir_mode) < 0 &&
	    errno != EEXIST)
		e = -errno;
	else if ((storefd = openat(r->store_fd, m->name, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		e = -errno;
	if (storefd < 0) {
		(void)unlinkat(t->dirfd, VERIFY_RELEASING_FILE, 0);
		/* Not the bundle's fault: this machine's store holds
		 * something other than a directory at <name> (a symlink out
		 * of the store, say).  Never followed; retried. */
		if (e == -ELOOP || e == -ENOTDIR)
			retry(v, "%s/%s is not a directory (a link?): refusing "
			    "to release through it", r->conf->store_dir,
			    m->name);
		else
			retry(v, "cannot create %s/%s: %s",
			    r->conf->store_dir, m->name, strerror(-e));
		return false;
	}
	recv_failpoint("before_rename");
	if (renameat2(t->dirfd, "tree", storefd, m->version,
	    RENAME_NOREPLACE) < 0) {
		e = errno;
		(void)unlinkat(t->dirfd, VERIFY_RELEASING_FILE, 0);
		if (e == EEXIST)
			decide(v, TS_DUPLICATE, "already_in_store", "%s/%s/%s "
			    "exists", r->conf->store_dir, m->name,
			    m->version);
		else
			retry(v, "cannot rename into %s/%s: %s",
			    r->conf->store_dir, m->name, strerror(e));
		close(storefd);
		return false;
	}
	if (fsync(storefd) < 0)
		log_warn("fsync %s/%s", r->conf->store_dir, m->name);
	close(storefd);
	recv_failpoint("after_rename");
	decide(v, TS_RELEASED, "verified", "files=%zu bytes=%" PRIu64
	    " path=%s/%s/%s", m->n_files, m->total_bytes, r->conf->store_dir,
	    m->name, m->version);
	return true;
}

/*
 * An operator's release of a held bundle: its tree (verified before it
 * was held) is checked against its manifest again, whole, since it sat
 * in quarantine; then the same marker and rename as any release.  A
 * verdict other than RELEASED leaves it held as it was.
 */
static void
release_held(struct recv *r, struct verdict *v)
{
	char dir[64], tree[PATH_MAX], err[512] = "", latest[PMAN_MAX_VALUE + 1];
	char marker[3 * PMAN_MAX_VALUE + 128], hex[65];
	struct manifest *m = NULL;
	int dfd = -1, storefd = -1, e;
	size_t n;

	snprintf(dir, sizeof(dir), "quarantine/%016" PRIx64, v->held_id);
	if (snprintf(tree, sizeof(tree), "%s/%s/tree", r->conf->staging_dir,
	    dir) >= (int)sizeof(tree) ||
	    (dfd = openat(r->staging_fd, dir, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		decide(v, TS_QUARANTINED, "not_held", "not held in quarantine");
		goto out;
	}
	if (manifest_load_bundle(tree, &m, err, sizeof(err)) != 0) {
		decide(v, TS_QUARANTINED, "changed", "the held tree no longer "
		    "matches its manifest: %s", err);
		goto out;
	}
	if (policy_latest(r, m->name, latest, sizeof(latest)) &&
	    manifest_version_cmp(m->version, latest) == 0) {
		decide(v, TS_QUARANTINED, "already_released", "version %s is "
		    "already released", latest);
		goto out;
	}
	/* The audit record names the approvals it was released with. */
	(void)manifest_count_approvals(m, r->approvers, r->n_approvers,
	    v->approvers, sizeof(v->approvers));
	util_hex(hex, m->digest, 32);
	n = (size_t)snprintf(marker, sizeof(marker), "%s\n%s\n%s\n", m->name,
	    m->version, hex);
	if ((e = write_at(dfd, VERIFY_RELEASING_FILE, marker, n, 0600)) != 0 ||
	    (fsync(dfd) < 0 && (e = -errno) != 0)) {
		decide(v, TS_QUARANTINED, "staging_io", "cannot write the "
		    "release marker: %s", strerror(-e));
		goto out;
	}
	if ((mkdirat(r->store_fd, m->name, r->conf->dir_mode) < 0 &&
	    errno != EEXIST) || (storefd = openat(r->store_fd, m->name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		e = errno;
		(void)unlinkat(dfd, VERIFY_RELEASING_FILE, 0);
		decide(v, TS_QUARANTINED, "store_io", "%s/%s: %s",
		    r->conf->store_dir, m->name, strerror(e));
		goto out;
	}
	recv_failpoint("before_rename");
	if (renameat2(dfd, "tree", storefd, m->version,
	    RENAME_NOREPLACE) < 0) {
		e = errno;
		(void)unlinkat(dfd, VERIFY_RELEASING_FILE, 0);
		decide(v, TS_QUARANTINED, e == EEXIST ? "already_in_store" :
		    "store_io", "cannot rename into %s/%s: %s",
		    r->conf->store_dir, m->name, strerror(e));
		goto out;
	}
	if (fsync(storefd) < 0)
		log_warn("fsync %s/%s", r->conf->store_dir, m->name);
	recv_failpoint("after_rename");
	decide(v, TS_RELEASED, "operator", "%s; files=%zu bytes=%" PRIu64
	    " path=%s/%s/%s", v->why, m->n_files, m->total_bytes,
	    r->conf->store_dir, m->name, m->version);
	v->m = m;
	m = NULL;
out:
	manifest_free(m);
	if (storefd >= 0)
		close(storefd);
	if (dfd >= 0)
		close(dfd);
}

static void
decide_transfer(struct recv *r, struct transfer *t, struct verdict *v)
{
	struct policy_verdict pv;

	if (!verify_files(r, t, v) || !build_tree(r, t, v))
		return;
	policy_release(r, t->manifest, &pv, v->approvers,
	    sizeof(v->approvers));
	if (pv.state != TS_FREE) {
		decide(v, pv.state, pv.reason, "%s", pv.detail);
		return;
	}
	if (!scan(r, t, v))
		return;
	(void)release(r, t, v);
}

static void *
verifier_main(void *arg)
{
	struct recv *r = arg;
	struct verifier *q = r->verifier;

	util_background_thread();
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct transfer *t;
		struct verdict v;
		unsigned i;

		while (q->n_todo == 0 && q->held == NULL && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		if (q->held != NULL) {
			struct held_job *j = q->held;

			q->held = j->next;
			pthread_mutex_unlock(&q->lock);
			memset(&v, 0, sizeof(v));
			v.reset_object = -1;
			v.held_id = j->id;
			snprintf(v.req, sizeof(v.req), "%s", j->req);
			snprintf(v.why, sizeof(v.why), "%s", j->why);
			release_held(r, &v);
			free(j);
			post(r, &v);
			pthread_mutex_lock(&q->lock);
			continue;
		}
		t = q->todo[0];
		for (i = 1; i < q->n_todo; i++)
			q->todo[i - 1] = q->todo[i];
		q->n_todo--;
		pthread_mutex_unlock(&q->lock);

		memset(&v, 0, sizeof(v));
		v.t = t;
		v.reset_object = -1;
		decide_transfer(r, t, &v);
		post(r, &v);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}
