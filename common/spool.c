/*
 * The sender's spool; see spool.h.  Only the file system holds the queue:
 * a crash at any point leaves each bundle either still queued (sent again
 * from the start) or in sent_dir, never lost and never half-moved.
 */
#include "common/spool.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
dir_dev(const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*dev = st.st_dev;
	return 0;
}

int
spool_open(struct spool *sp, const char *dir, const char *sent,
    const char *failed, char *err, size_t errlen)
{
	const char *paths[3] = { dir, sent, failed };
	char inc[PATH_MAX];
	dev_t dev[3];
	int i, rc;

	memset(sp, 0, sizeof(*sp));
	for (i = 0; i < 3; i++) {
		if ((rc = dir_dev(paths[i], &dev[i])) != 0) {
			util_seterr(err, errlen,
			    "%s: %s", paths[i], strerror(-rc));
			return rc;
		}
		if (dev[i] != dev[0]) {
			util_seterr(err, errlen,
			    "%s and %s are on different file "
			    "systems: a bundle must move by one rename",
			    paths[0], paths[i]);
			return -EXDEV;
		}
	}
	if (util_path_join(inc, sizeof(inc), dir, SPOOL_INCOMING) != 0)
		return -ENAMETOOLONG;
	if (mkdir(inc, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		util_seterr(err, errlen, "%s: %s", inc, strerror(errno));
		return rc;
	}
	sp->dir = strdup(dir);
	sp->sent = strdup(sent);
	sp->failed = strdup(failed);
	if (sp->dir == NULL || sp->sent == NULL || sp->failed == NULL) {
		spool_close(sp);
		util_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void
spool_close(struct spool *sp)
{
	free(sp->dir);
	free(sp->sent);
	free(sp->failed);
	free(sp->e);
	memset(sp, 0, sizeof(*sp));
}

static struct spool_entry *
find(struct spool *sp, const char *name, const struct stat *st)
{
	size_t i;

	for (i = 0; i < sp->n; i++)
		if (strcmp(sp->e[i].name, name) == 0 &&
		    sp->e[i].ino == st->st_ino && sp->e[i].dev == st->st_dev)
			return &sp->e[i];
	return NULL;
}

static int
add_entry(struct spool *sp, const char *name, const struct stat *st)
{
	struct spool_entry *e;
	struct manifest *m;
	char p[PATH_MAX], err[256];

	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 64;

		e = realloc(sp->e, cap * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		sp->e = e;
		sp->cap = cap;
	}
	e = &sp->e[sp->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 +
	    st->st_ctim.tv_nsec;
	e->seen = true;
	if (!S_ISDIR(st->st_mode)) {
		e->ignored = true;
		if (!sp->quiet)
			log_warnx("spool: ignoring %s: not a directory", name);
		return 0;
	}
	/* Only the priority is needed now; the files are checked when the
	 * bundle's turn comes.  An unreadable manifest sorts as 0 and fails
	 * then, with its reason. */
	if (util_path_join(p, sizeof(p), sp->dir, name) == 0 &&
	    manifest_peek_bundle(p, &m, err, sizeof(err)) == 0) {
		e->priority = m->priority > 0 ? m->priority : 0;
		manifest_free(m);
	}
	if (!sp->quiet)
		log_info("spool: queued %s (priority %d)", name, e->priority);
	return 0;
}

int
spool_scan(struct spool *sp)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	size_t i, j;
	int rc = 0;

	d = opendir(sp->dir);
	if (d == NULL)
		return -errno;
	for (i = 0; i < sp->n; i++)
		sp->e[i].seen = false;
	while ((de = readdir(d)) != NULL) {
		struct spool_entry *e;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone since readdir */
		e = find(sp, de->d_name, &st);
		if (e != NULL)
			e->seen = true;
		else if ((rc = add_entry(sp, de->d_name, &st)) != 0)
			break;
	}
	closedir(d);
	for (i = j = 0; i < sp->n; i++)
		if (sp->e[i].seen)
			sp->e[j++] = sp->e[i];
	sp->n = j;
	return rc;
}

/* Negative when a goes first. */
static int
order(const struct spool_entry *a, const struct spool_entry *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	if (a->ctime_ns != b->ctime_ns)
		return a->ctime_ns < b->ctime_ns ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int
order_ptr(const void *a, const void *b)
{
	return order(*(struct spool_entry *const *)a,
	    *(struct spool_entry *const *)b);
}

struct spool_entry *
spool_next(struct spool *sp)
{
	struct spool_entry *best = NULL;
	size_t i;

	for (i = 0; i < sp->n; i++)
		if (!sp->e[i].ignored &&
		    (best == NULL || order(&sp->e[i], best) < 0))
			best = &sp->e[i];
	return best;
}

size_t
spool_order(struct spool *sp, struct spool_entry **out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < sp->n && n < max; i++)
		if (!sp->e[i].ignored)
			out[n++] = &sp->e[i];
	qsort(out, n, sizeof(*out), order_ptr);
	return n;
}

static void
forget(struct spool *sp, struct spool_entry *e)
{
	size_t i = (size_t)(e - sp->e);

	memmove(&sp->e[i], &sp->e[i + 1], (sp->n - i - 1) * sizeof(*e));
	sp->n--;
}

/*
 * Writes dest/NAME.suffix with text and renames the entry to dest/NAME,
 * where NAME is the entry's name or the first free NAME.N.
 */
static int
move_out(struct spool *sp, struct spool_entry *e, const char *dest,
    const char *suffix, const char *text)
{
	char name[NAME_MAX + 1], from[PATH_MAX], to[PATH_MAX], note[PATH_MAX];
	struct stat st;
	unsigned n;
	int rc;

	for (n = 0; n < 10000; n++) {
		if (n == 0)
			snprintf(name, sizeof(name), "%s", e->name);
		else
			snprintf(name, sizeof(name), "%.240s.%u", e->name, n);
		if (util_path_join(to, sizeof(to), dest, name) != 0 ||
		    snprintf(note, sizeof(note), "%s%s", to, suffix) >=
		    (int)sizeof(note))
			return -ENAMETOOLONG;
		if (lstat(to, &st) < 0 && errno == ENOENT &&
		    lstat(note, &st) < 0 && errno == ENOENT)
			break;
	}
	if (n == 10000)
		return -EEXIST;
	if (util_path_join(from, sizeof(from), sp->dir, e->name) != 0)
		return -ENAMETOOLONG;
	/* The note first: a crash between the two leaves the bundle queued
	 * (it is sent again) and a note that the next move replaces. */
	rc = util_write_file_atomic(note, text, strlen(text), 0644);
	if (rc != 0)
		return rc;
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0)
		return -errno;
	if ((rc = util_fsync_dir(dest)) != 0 ||
	    (rc = util_fsync_dir(sp->dir)) != 0)
		return rc;
	forget(sp, e);
	return 0;
}

int
spool_sent(struct spool *sp, struct spool_entry *e, const char *record)
{
	return move_out(sp, e, sp->sent, ".record", record);
}

int
spool_failed(struct spool *sp, struct spool_entry *e, const char *reason)
{
	return move_out(sp, e, sp->failed, ".reason", reason);
}

int
spool_expire_sent(struct spool *sp, double max_age, void (*note)(const char *,
    void *), void *arg)
{
	char path[PATH_MAX], rec[PATH_MAX];
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);
	int n = 0;
	DIR *d;

	d = opendir(sp->sent);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    util_path_join(path, sizeof(path), sp->sent,
		    de->d_name) != 0 ||
		    snprintf(rec, sizeof(rec), "%s.record", path) >=
		    (int)sizeof(rec))
			continue;
		/* A bundle tree with its record beside it, the record older
		 * than max_age: the tree goes, the record stays. */
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    stat(rec, &st) < 0 || difftime(now, st.st_mtime) < max_age)
			continue;
		if (util_rmtree(path) == 0) {
			n++;
			if (note != NULL)
				note(de->d_name, arg);
		}
	}
	closedir(d);
	return n;
}

/* ---- sluice spool add --------------------------------------------------- */

/* NAME-VERSION with anything but [A-Za-z0-9._+-] as '_'; no leading '.'. */
static void
entry_name(char *out, size_t len, const struct manifest *m)
{
	size_t i;

	snprintf(out, len, "%s-%s", m->name, m->version);
	for (i = 0; out[i] != '\0'; i++) {
		unsigned char c = (unsigned char)out[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '+' || c == '-'))
			out[i] = '_';
	}
	if (out[0] == '.')
		out[0] = '_';
}

static int
copy_file(const char *from, const char *to, unsigned mode)
{
	int in, out, rc = 0;
	struct stat st;
	loff_t left;

	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return -EINVAL;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	for (left = st.st_size; left > 0 && rc == 0;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL,
		    left > (1 << 30) ? (1 << 30) : (size_t)left, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			rc = -EIO; /* shrank while being copied */
		else
			left -= n;
	}
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	if (close(out) < 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

static int
mkparents(const char *root, const char *rel)
{
	char p[PATH_MAX];
	char *slash;

	if (util_path_join(p, sizeof(p), root, rel) != 0)
		return -ENAMETOOLONG;
	slash = strrchr(p, '/');
	if (slash == NULL || slash - p <= (ptrdiff_t)strlen(root))
		return 0;
	*slash = '\0';
	return util_mkdirs(p, 0755);
}

static int
copy_bundle(const struct manifest *m, const char *bundle, const char *tmp,
    char *err, size_t errlen)
{
	static const char *meta[2] = { MANIFEST_BUNDLE_FILE,
		MANIFEST_APPROVALS_FILE };
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	size_t i;
	int rc, dfd;

	for (i = 0; i < m->n_files + 2; i++) {
		const char *rel = i < 2 ? meta[i] : m->files[i - 2].path;
		unsigned mode = i >= 2 && m->files[i - 2].exec ? 0755 : 0644;

		if (util_path_join(from, sizeof(from), bundle, rel) != 0 ||
		    util_path_join(to, sizeof(to), tmp, rel) != 0) {
			util_seterr(err, errlen, "%s: path too long", rel);
			return -ENAMETOOLONG;
		}
		if (i == 1 && lstat(from, &st) < 0 && errno == ENOENT)
			continue; /* no approvals */
		if ((rc = mkparents(tmp, rel)) != 0 ||
		    (rc = copy_file(from, to, mode)) != 0) {
			util_seterr(err, errlen, "%s: cannot copy: %s", from,
			    rc == -EIO ? "it changed while being copied" :
			    strerror(-rc));
			return rc;
		}
	}
	dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = dfd < 0 ? -errno : util_fsync_tree(dfd);
	if (dfd >= 0)
		close(dfd);
	if (rc != 0)
		util_seterr(err, errlen, "%s: fsync: %s", tmp, strerror(-rc));
	return rc;
}

int
spool_add(const char *dir, const char *bundle, bool move, char *entry,
    size_t entrylen, char *err, size_t errlen)
{
	struct manifest *m = NULL;
	char name[NAME_MAX + 1], to[PATH_MAX], to2[PATH_MAX], tmp[PATH_MAX];
	char msg[512];
	struct stat st;
	int rc;

	/* The whole tree is checked here, so a bundle that would fail in
	 * the spool is refused at the door instead. */
	rc = manifest_load_bundle(bundle, &m, msg, sizeof(msg));
	if (rc != 0) {
		util_seterr(err, errlen, "%s", msg);
		return rc;
	}
	entry_name(name, sizeof(name), m);
	snprintf(entry, entrylen, "%s", name);
	if (util_path_join(to, sizeof(to), dir, name) != 0) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (lstat(to, &st) == 0) {
		util_seterr(err, errlen, "%s is already queued", to);
		rc = -EEXIST;
		goto out;
	}
	if (move) {
		if (renameat2(AT_FDCWD, bundle, AT_FDCWD, to,
		    RENAME_NOREPLACE) == 0) {
			rc = util_fsync_dir(dir);
			goto out;
		}
		if (errno != EXDEV) {
			rc = -errno;
			util_seterr(err, errlen,
			    "rename %s to %s: %s", bundle, to,
			    strerror(errno));
			goto out;
		}
	}
	if (snprintf(tmp, sizeof(tmp), "%s/%s/%s.XXXXXX", dir,
	    SPOOL_INCOMING, name) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (util_path_join(to2, sizeof(to2), dir, SPOOL_INCOMING) != 0 ||
	    (mkdir(to2, 0700) < 0 && errno != EEXIST) || mkdtemp(tmp) == NULL) {
		rc = -errno;
		util_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	(void)chmod(tmp, 0755);
	rc = copy_bundle(m, bundle, tmp, err, errlen);
	if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, to,
	    RENAME_NOREPLACE) < 0) {
		rc = -errno;
		util_seterr(err, errlen,
		    "rename into %s: %s", to, strerror(errno));
	}
	if (rc != 0) {
		(void)util_rmtree(tmp);
		goto out;
	}
	if ((rc = util_fsync_dir(dir)) != 0)
		goto out;
	if (move && (rc = util_rmtree(bundle)) != 0)
		util_seterr(err, errlen,
		    "queued as %s, but cannot remove %s: %s",
		    name, bundle, strerror(-rc));
out:
	if (rc != 0 && err[0] == '\0')
		util_seterr(err, errlen, "%s", strerror(-rc));
	manifest_free(m);
	return rc;
}
