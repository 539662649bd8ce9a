/*
 * Release: the verifier thread's decision about a complete transfer, and
 * everything that follows from it.
 *
 *   VERIFYING   fsync and re-hash every file from disk against the signed
 *               manifest (the part of each file the progress thread
 *               already read back after it was written is not read
 *               again: see progress.c), then assemble the bundle tree under the
 *               manifest's validated names (REJECTED on any difference)
 *   policy      approvals quorum, expiry, rollback (QUARANTINED)
 *   SCANNING    the scan hook on the staged tree (QUARANTINED on failure)
 *   RELEASED    one rename into <store_dir>/<name>/<version>, never over
 *               an existing version; the directory fsynced; the highest
 *               released version recorded; release hooks run
 *
 * A QUARANTINED bundle is moved whole to <staging_dir>/quarantine/<id>/
 * (tree/, and an info file), where it stays inspectable until purged.
 * Every terminal decision is one audit record.
 *
 * The verifier owns a transfer while it is T_VERIFYING; the I/O thread
 * picks up verdicts in release_poll().
 */
#include "receiver/recv.h"
#include "common/audit.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/qlog.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUARANTINE_DIR "quarantine"
#define HOOK_MAX_ARGS 64

static void *verifier_main(void *arg);

static void decide(struct verdict *v, const char *state, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
decide(struct verdict *v, const char *state, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	v->state = state;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

int
release_init(struct recv *r, char *err, size_t errlen)
{
	const struct recv_conf *c = r->conf;
	char pattern[1024], path[PATH_MAX];
	unsigned i;
	int rc;

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
	rc = util_mkdirs(c->state_dir, 0700);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/released",
	    c->state_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0700);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/missing",
	    c->state_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0755);
	if (rc == 0 && snprintf(path, sizeof(path), "%s/" QUARANTINE_DIR,
	    c->staging_dir) < (int)sizeof(path))
		rc = util_mkdirs(path, 0700);
	if (rc != 0) {
		snprintf(err, errlen, "state %s: %s", c->state_dir,
		    strerror(-rc));
		return rc;
	}
	if (c->audit_log != NULL) {
		r->rkey = sign_seckey_load(c->receiver_key, &rc, err, errlen);
		if (r->rkey == NULL) {
			char tmp[256];

			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "%s: %s", c->receiver_key, tmp);
			return rc;
		}
		r->audit = audit_open(c->audit_log, r->rkey,
		    c->audit_checkpoint, &rc);
		if (r->audit == NULL) {
			snprintf(err, errlen, "audit log %s: %s", c->audit_log,
			    rc == -EBADMSG ? "its last record is damaged; "
			    "refusing to extend it (run sluice audit verify)" :
			    strerror(-rc));
			return rc;
		}
	}
	r->vq_todo = calloc(c->max_transfers_in_flight, sizeof(*r->vq_todo));
	r->vq_done = calloc(c->max_transfers_in_flight, sizeof(*r->vq_done));
	r->vq_taken = calloc(c->max_transfers_in_flight,
	    sizeof(*r->vq_taken));
	if (r->vq_todo == NULL || r->vq_done == NULL || r->vq_taken == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&r->vq_lock, NULL);
	pthread_cond_init(&r->vq_cond, NULL);
	rc = pthread_create(&r->verifier, NULL, verifier_main, r);
	return rc == 0 ? 0 : -rc;
}

void
release_fini(struct recv *r)
{
	pthread_mutex_lock(&r->vq_lock);
	r->vq_stop = true;
	pthread_cond_signal(&r->vq_cond);
	pthread_mutex_unlock(&r->vq_lock);
	pthread_join(r->verifier, NULL);
	free(r->vq_todo);
	free(r->vq_done);
	free(r->vq_taken);
	regfree(&r->name_re);
	audit_close(r->audit);
	sign_seckey_free(r->rkey);
}

void
release_audit(struct recv *r, const struct transfer *t, const char *decision,
    const char *reason, const char *approvers, const char *detail)
{
	const struct manifest *m = t->manifest;
	struct audit_record rec = {
		.decision = decision,
		.transfer = t->id,
		.bundle = m != NULL ? m->name : NULL,
		.version = m != NULL ? m->version : NULL,
		.reason = reason,
		.manifest_sha256 = m != NULL ? m->digest : NULL,
		.approvers = approvers,
		.detail = detail,
	};
	int rc;

	if (r->audit == NULL)
		return;
	rc = audit_append(r->audit, &rec);
	if (rc != 0)
		log_warnx("audit log %s: append failed: %s",
		    r->conf->audit_log, strerror(-rc));
}

bool
release_latest(const struct recv *r, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	uint8_t *data;
	size_t n;

	if (snprintf(path, sizeof(path), "%s/released/%s", r->conf->state_dir,
	    name) >= (int)sizeof(path) ||
	    util_read_file(path, PMAN_MAX_VALUE, &data, &n) != 0)
		return false;
	while (n > 0 && data[n - 1] == '\n')
		n--;
	snprintf(buf, len, "%.*s", (int)n, (char *)data);
	free(data);
	return n > 0;
}

static int
record_latest(const struct recv *r, const char *name, const char *version)
{
	char path[PATH_MAX], line[PMAN_MAX_VALUE + 2];
	int n;

	if (snprintf(path, sizeof(path), "%s/released/%s", r->conf->state_dir,
	    name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	n = snprintf(line, sizeof(line), "%s\n", version);
	return util_write_file_atomic(path, line, (size_t)n, 0600);
}

/* "YYYY-MM-DDTHH:MM:SSZ" to seconds since the epoch; -1 if malformed. */
static int64_t
parse_utc(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}

/* ---- hooks -------------------------------------------------------------- */

/*
 * Runs a hook and waits at most hook_timeout seconds (then kills its whole
 * process group).  Without hook_shell the command is split on spaces and
 * executed directly, never through a shell; extra is appended as the last
 * argument when not NULL.  Returns the exit status, or -1 (could not run,
 * killed, timed out) with a reason in why.
 */
static int
run_hook(const struct recv *r, const char *cmd, const char *extra,
    char *const *envp, char *why, size_t whylen)
{
	char *copy = NULL, *argv[HOOK_MAX_ARGS + 2], *save, *tok;
	uint64_t deadline;
	int argc = 0, status;
	pid_t pid, w;

	if (r->conf->hook_shell) {
		static char sh[] = "/bin/sh", dash_c[] = "-c";

		argv[argc++] = sh;
		argv[argc++] = dash_c;
		argv[argc++] = (char *)cmd;
		if (extra != NULL) {
			static char name[] = "sluice-hook";

			argv[argc++] = name;
			argv[argc++] = (char *)extra;
		}
	} else {
		copy = strdup(cmd);
		if (copy == NULL)
			return -1;
		for (tok = strtok_r(copy, " \t", &save);
		    tok != NULL && argc < HOOK_MAX_ARGS;
		    tok = strtok_r(NULL, " \t", &save))
			argv[argc++] = tok;
		if (extra != NULL)
			argv[argc++] = (char *)extra;
	}
	argv[argc] = NULL;
	if (argc == 0) {
		free(copy);
		snprintf(why, whylen, "empty command");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		free(copy);
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		execvpe(argv[0], argv, envp); /* PATH from envp */
		_exit(127);
	}
	free(copy);
	deadline = util_now_ns() + (uint64_t)(r->conf->hook_timeout * 1e9);
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (util_now_ns() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			snprintf(why, whylen, "timed out after %.0f s",
			    r->conf->hook_timeout);
			return -1;
		}
		usleep(20000);
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whylen, "killed by signal %d", WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) == 127)
		snprintf(why, whylen, "exit status 127 (command not found?)");
	else
		snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/* Environment for hooks: a fixed PATH and the bundle's facts. */
static void
hook_env(char env[6][PATH_MAX + 32], char *envp[7], const struct manifest *m,
    const char *path)
{
	snprintf(env[0], sizeof(env[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(env[1], sizeof(env[1]), "SLUICE_BUNDLE=%s", m->name);
	snprintf(env[2], sizeof(env[2]), "SLUICE_VERSION=%s", m->version);
	snprintf(env[3], sizeof(env[3]), "SLUICE_PATH=%s", path);
	snprintf(env[4], sizeof(env[4]), "SLUICE_MANIFEST=%s/%s", path,
	    MANIFEST_BUNDLE_FILE);
	snprintf(env[5], sizeof(env[5]), "LANG=C");
	envp[0] = env[0];
	envp[1] = env[1];
	envp[2] = env[2];
	envp[3] = env[3];
	envp[4] = env[4];
	envp[5] = env[5];
	envp[6] = NULL;
}

/* ---- the decision ------------------------------------------------------ */

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

/* Writes a file under dirfd (new, 0644 unless mode says), fsynced. */
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

/* Steps 1 and 2: verify every file from disk and build tree/. */
static bool
verify_and_assemble(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	const struct recv_conf *c = r->conf;
	char name[32];
	int treefd = -1, sfd;
	uint8_t *obj = NULL;
	size_t i, objlen;
	bool ok = false;
	/* What the progress thread already read back and hashed while the
	 * transfer arrived; each file's hash is finished from there. */
	struct prehash *ph = progress_take_prehash(r, t->id);

	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		uint8_t digest[HASH_LEN];
		uint64_t size;
		int fd, rc;

		snprintf(name, sizeof(name), "o%zu", i + 1);
		fd = openat(t->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd < 0) {
			decide(v, "REJECTED", "staging_io", "cannot open %s",
			    f->path);
			prehash_free(ph);
			return false;
		}
		rc = fdatasync(fd) < 0 ? -errno : 0;
		if (rc == 0 && !prehash_finish(ph, (uint32_t)i + 1, fd, digest,
		    &size, &rc))
			rc = hash_fd(fd, digest, &size);
		if (rc == 0 && fchmod(fd, f->exec ? (c->file_mode | 0111) &
		    0755 : c->file_mode) < 0)
			rc = -errno;
		close(fd);
		if (rc != 0) {
			decide(v, "REJECTED", "staging_io", "cannot read back "
			    "%s", f->path);
			prehash_free(ph);
			return false;
		}
		if (size != f->size || !sign_equal(digest, f->sha256,
		    HASH_LEN)) {
			decide(v, "REJECTED", "hash_mismatch", "%s differs "
			    "from the manifest", f->path);
			prehash_free(ph);
			return false;
		}
	}
	prehash_free(ph);
	if (mkdirat(t->dirfd, "tree", 0700) < 0 ||
	    (treefd = openat(t->dirfd, "tree", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		decide(v, "REJECTED", "staging_io", "cannot create the tree");
		goto out;
	}
	for (i = 0; i < m->n_files; i++) {
		snprintf(name, sizeof(name), "o%zu", i + 1);
		if (make_parents(treefd, m->files[i].path, c->dir_mode) != 0 ||
		    renameat(t->dirfd, name, treefd, m->files[i].path) < 0) {
			decide(v, "REJECTED", "staging_io", "cannot place %s",
			    m->files[i].path);
			goto out;
		}
	}
	/* The manifest and approvals travel with the bundle, so the release
	 * answers what, why, who approved and what to roll back to, and
	 * `sluice bundle verify` works on it. */
	if (mkdirat(treefd, PMAN_RESERVED_DIR, c->dir_mode) < 0 ||
	    (sfd = openat(treefd, PMAN_RESERVED_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		decide(v, "REJECTED", "staging_io", "cannot create .sluice");
		goto out;
	}
	if (manifest_render_object(m, &obj, &objlen) != 0 ||
	    write_at(sfd, "manifest", m->text, m->text_len,
	    c->file_mode) != 0 ||
	    write_at(sfd, "approvals", obj + m->text_len,
	    objlen - m->text_len, c->file_mode) != 0 ||
	    fchmod(sfd, c->dir_mode) < 0) {
		close(sfd);
		decide(v, "REJECTED", "staging_io", "cannot write .sluice");
		goto out;
	}
	close(sfd);
	if (fchmod(treefd, c->dir_mode) < 0 || util_fsync_tree(treefd) != 0) {
		decide(v, "REJECTED", "staging_io", "cannot sync the tree");
		goto out;
	}
	ok = true;
out:
	free(obj);
	if (treefd >= 0)
		close(treefd);
	return ok;
}

/* Step 3: approvals, expiry, rollback. */
static bool
check_policy(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	const struct recv_conf *c = r->conf;
	char latest[PMAN_MAX_VALUE + 1];
	unsigned got;

	got = manifest_count_approvals(m, r->approvers, r->n_approvers,
	    v->approvers, sizeof(v->approvers));
	if (got < c->approval_threshold) {
		decide(v, "QUARANTINED", "approvals", "%u of %u required "
		    "approvals (%zu signatures present)", got,
		    c->approval_threshold, m->n_approvals);
		return false;
	}
	if (m->expires != NULL) {
		int64_t exp = parse_utc(m->expires);

		if (exp < 0 || exp <= (int64_t)(util_realtime_ns() / 1000000000)) {
			decide(v, "QUARANTINED", "expired", "manifest expired "
			    "at %s", m->expires);
			return false;
		}
	}
	if (release_latest(r, m->name, latest, sizeof(latest))) {
		int cmp = manifest_version_cmp(m->version, latest);

		if (cmp == 0) {
			decide(v, "DUPLICATE", "already_released", "version "
			    "%s is already released", latest);
			return false;
		}
		if (cmp < 0) {
			decide(v, "QUARANTINED", "rollback", "version %s is "
			    "lower than %s, already released", m->version,
			    latest);
			return false;
		}
	}
	return true;
}

/* Step 4: the scan hook on the staged tree. */
static bool
scan(struct recv *r, struct transfer *t, struct verdict *v)
{
	char path[PATH_MAX], env[6][PATH_MAX + 32], *envp[7], why[128];
	int rc;

	if (r->conf->scan_hook == NULL)
		return true;
	qlog_event(r->qlog, t->id, t->manifest->name, t->manifest->version,
	    "SCANNING", "scan_hook", NULL);
	snprintf(path, sizeof(path), "%s/%s/tree", r->conf->staging_dir,
	    t->name);
	hook_env(env, envp, t->manifest, path);
	rc = run_hook(r, r->conf->scan_hook, path, envp, why, sizeof(why));
	if (rc != 0) {
		decide(v, "QUARANTINED", "scan", "scan hook: %s", why);
		return false;
	}
	return true;
}

/* Step 5: one rename into the store, never over an existing version. */
static bool
release(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	char dir[PATH_MAX];
	int storefd;

	if (snprintf(dir, sizeof(dir), "%s/%s", r->conf->store_dir, m->name) >=
	    (int)sizeof(dir) || util_mkdirs(dir, r->conf->dir_mode) != 0 ||
	    (storefd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		decide(v, "REJECTED", "store_io", "cannot create %s", dir);
		return false;
	}
	if (renameat2(t->dirfd, "tree", storefd, m->version,
	    RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			decide(v, "DUPLICATE", "already_in_store", "%s/%s "
			    "exists", dir, m->version);
		else
			decide(v, "REJECTED", "store_io", "cannot rename into "
			    "%s: %s", dir, strerror(errno));
		close(storefd);
		return false;
	}
	if (fsync(storefd) < 0)
		log_warn("fsync %s", dir);
	close(storefd);
	if (record_latest(r, m->name, m->version) != 0)
		log_warn("recording %s %s as released", m->name, m->version);
	decide(v, "RELEASED", "verified", "files=%zu bytes=%" PRIu64
	    " path=%s/%s", m->n_files, m->total_bytes, dir, m->version);
	return true;
}

static void
release_hooks(struct recv *r, struct transfer *t)
{
	char path[PATH_MAX], env[6][PATH_MAX + 32], *envp[7], why[128];
	unsigned i;

	snprintf(path, sizeof(path), "%s/%s/%s", r->conf->store_dir,
	    t->manifest->name, t->manifest->version);
	hook_env(env, envp, t->manifest, path);
	for (i = 0; i < r->conf->n_release_hooks; i++) {
		int rc = run_hook(r, r->conf->release_hooks[i], NULL, envp, why,
		    sizeof(why));

		if (rc != 0)
			log_warnx("transfer %s: release hook \"%s\" failed "
			    "(%s); the release stands", t->name,
			    r->conf->release_hooks[i], why);
	}
}

/* Moves a held bundle aside, whole, with an info file. */
static void
quarantine(struct recv *r, struct transfer *t, const struct verdict *v)
{
	char from[PATH_MAX], to[PATH_MAX], info[2048], ts[32], b[300],
	    ver[300], d[600];
	size_t n;

	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	logfmt_escape(b, sizeof(b), t->manifest->name);
	logfmt_escape(ver, sizeof(ver), t->manifest->version);
	logfmt_escape(d, sizeof(d), v->detail);
	n = (size_t)snprintf(info, sizeof(info), "transfer=%s\nbundle=%s\n"
	    "version=%s\nreason=%s\ndetail=%s\nquarantined=%s\n", t->name,
	    b, ver, v->reason, d, ts);
	(void)write_at(t->dirfd, "info", info, UTIL_MIN(n, sizeof(info) - 1),
	    0600);
	snprintf(from, sizeof(from), "%s/%s", r->conf->staging_dir, t->name);
	snprintf(to, sizeof(to), "%s/" QUARANTINE_DIR "/%s",
	    r->conf->staging_dir, t->name);
	(void)util_rmtree(to);
	if (rename(from, to) < 0)
		log_warn("moving %s to quarantine", from);
	(void)util_fsync_dir(to);
}

static void
decide_transfer(struct recv *r, struct transfer *t, struct verdict *v)
{
	qlog_event(r->qlog, t->id, t->manifest->name, t->manifest->version,
	    "VERIFYING", "rehash", NULL);
	if (!verify_and_assemble(r, t, v) || !check_policy(r, t, v) ||
	    !scan(r, t, v)) {
		if (strcmp(v->state, "QUARANTINED") == 0)
			quarantine(r, t, v);
		return;
	}
	if (release(r, t, v))
		release_hooks(r, t);
}

static void *
verifier_main(void *arg)
{
	struct recv *r = arg;

	util_background_thread();
	pthread_mutex_lock(&r->vq_lock);
	for (;;) {
		struct transfer *t;
		struct verdict v;
		unsigned i;

		while (r->vq_n_todo == 0 && !r->vq_stop)
			pthread_cond_wait(&r->vq_cond, &r->vq_lock);
		if (r->vq_stop)
			break;
		t = r->vq_todo[0];
		for (i = 1; i < r->vq_n_todo; i++)
			r->vq_todo[i - 1] = r->vq_todo[i];
		r->vq_n_todo--;
		pthread_mutex_unlock(&r->vq_lock);

		memset(&v, 0, sizeof(v));
		v.t = t;
		decide_transfer(r, t, &v);
		/* The audit record is written here, in decision order. */
		release_audit(r, t, v.state, v.reason, v.approvers, v.detail);

		pthread_mutex_lock(&r->vq_lock);
		r->vq_done[r->vq_n_done++] = v;
	}
	pthread_mutex_unlock(&r->vq_lock);
	return NULL;
}

void
release_enqueue(struct recv *r, struct transfer *t)
{
	pthread_mutex_lock(&r->vq_lock);
	if (r->vq_n_todo + r->vq_n_done >= r->conf->max_transfers_in_flight)
		abort(); /* cannot happen: one entry per transfer slot */
	r->vq_todo[r->vq_n_todo++] = t;
	pthread_cond_signal(&r->vq_cond);
	pthread_mutex_unlock(&r->vq_lock);
}

void
release_poll(struct recv *r)
{
	struct verdict *done = r->vq_taken;
	unsigned i, n;

	pthread_mutex_lock(&r->vq_lock);
	n = r->vq_n_done;
	if (n > 0)
		memcpy(done, r->vq_done, n * sizeof(done[0]));
	r->vq_n_done = 0;
	pthread_mutex_unlock(&r->vq_lock);
	for (i = 0; i < n; i++)
		transfer_finish(r, done[i].t, done[i].state, done[i].reason,
		    done[i].detail[0] != '\0' ? done[i].detail : NULL);
}
