/*
 * type = "directory": the model directory.  A bundle becomes
 * path/NAME/VERSION/ (its files, without .sluice/) and path/NAME/latest
 * a symbolic link to the newest VERSION, the layout a Hugging Face
 * local_dir reader or a serving tool loads by name.
 *
 * Invariants a reader can rely on:
 * - path/NAME/VERSION appears whole or not at all: it is built as
 *   path/NAME/.VERSION.partial (hard links when the store is on the same
 *   file system, copies otherwise), made durable, verified against the
 *   manifest's SHA-256, and only then renamed into place.  A partial
 *   directory left by a crash is removed by the next attempt.
 * - latest points only at a verified version and never moves backwards
 *   (manifest_version_cmp); it is replaced by rename of a new link, so a
 *   reader resolves the old target or the new one.
 * Publishing again is a verification, not a copy.
 */
#include "receiver/publish/publish.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies src to a new file dst (O_EXCL), durable. */
static int
copy_file(const char *src, const char *dst, bool exec)
{
	int in = -1, out = -1, rc = 0;
	char buf[1 << 16];
	ssize_t n;

	if ((in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, exec ? 0755 : 0644)) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			break;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP) {
			rc = -errno;
			goto out;
		}
		/* No copy_file_range here: plain reads and writes. */
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if ((rc = util_write_all(out, buf, (size_t)n)) != 0)
				goto out;
		if (n < 0)
			rc = -errno;
		break;
	}
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* SHA-256 and size of every listed file under dir against the manifest. */
static int
verify_tree(const char *dir, const struct manifest *m, struct pub_result *res)
{
	char path[PATH_MAX];
	uint8_t h[HASH_LEN];
	uint64_t size;
	size_t i;
	int fd, rc;

	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];

		if (util_path_join(path, sizeof(path), dir, f->path) != 0)
			return pub_fail(res, true, "path_too_long", "%s",
			    f->path);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return pub_fail(res, false, "verify_failed", "%s: %s",
			    path, strerror(errno));
		rc = hash_fd(fd, h, &size);
		close(fd);
		if (rc != 0)
			return pub_fail(res, false, "verify_failed", "%s: %s",
			    path, strerror(-rc));
		if (size != f->size || memcmp(h, f->sha256, HASH_LEN) != 0)
			return pub_fail(res, false, "verify_failed", "%s: "
			    "differs from the manifest", path);
	}
	return 0;
}

static int
build(const char *tmp, const struct pub_bundle *b, struct pub_result *res)
{
	char src[PATH_MAX], dst[PATH_MAX];
	size_t i;
	int rc, dfd;

	if ((rc = util_mkdirs(tmp, 0755)) != 0)
		return pub_fail(res, false, "write_failed", "%s: %s", tmp,
		    strerror(-rc));
	for (i = 0; i < b->m->n_files; i++) {
		const struct manifest_file *f = &b->m->files[i];
		char *slash;

		if (util_path_join(src, sizeof(src), b->dir, f->path) != 0 ||
		    util_path_join(dst, sizeof(dst), tmp, f->path) != 0)
			return pub_fail(res, true, "path_too_long", "%s",
			    f->path);
		slash = strrchr(dst, '/');
		*slash = '\0';
		rc = util_mkdirs(dst, 0755);
		*slash = '/';
		if (rc != 0)
			return pub_fail(res, false, "write_failed", "%s: %s",
			    dst, strerror(-rc));
		/* A hard link shares the released, verified inode: no copy
		 * and no second copy of a 100 GB model.  Across file systems
		 * (or where links are refused) the bytes are copied. */
		if (link(src, dst) == 0)
			continue;
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return pub_fail(res, false, "write_failed", "link %s: "
			    "%s", dst, strerror(errno));
		if ((rc = copy_file(src, dst, f->exec)) != 0)
			return pub_fail(res, false, "write_failed", "copy %s: "
			    "%s", dst, strerror(-rc));
	}
	if ((dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return pub_fail(res, false, "write_failed", "%s: %s", tmp,
		    strerror(errno));
	rc = util_fsync_tree(dfd);
	close(dfd);
	if (rc != 0)
		return pub_fail(res, false, "write_failed", "fsync %s: %s", tmp,
		    strerror(-rc));
	return 0;
}

/* latest -> version, if version is newer than its target (or none). */
static int
move_latest(const char *ndir, const char *version, struct pub_result *res)
{
	char latest[PATH_MAX], tmp[PATH_MAX], cur[NAME_MAX + 1];
	ssize_t n;

	snprintf(latest, sizeof(latest), "%s/latest", ndir);
	snprintf(tmp, sizeof(tmp), "%s/.latest.tmp", ndir);
	n = readlink(latest, cur, sizeof(cur) - 1);
	if (n >= 0) {
		cur[n] = '\0';
		if (manifest_version_cmp(version, cur) <= 0)
			return 0;
	} else if (errno != ENOENT)
		return pub_fail(res, false, "write_failed", "%s: %s", latest,
		    strerror(errno));
	(void)unlink(tmp);
	if (symlink(version, tmp) != 0 || rename(tmp, latest) != 0)
		return pub_fail(res, false, "write_failed", "%s: %s", latest,
		    strerror(errno));
	if (util_fsync_dir(ndir) != 0)
		return pub_fail(res, false, "write_failed", "fsync %s", ndir);
	return 0;
}

int
store_dir_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	char ndir[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int rc;

	if (s->path == NULL)
		return pub_fail(res, true, "config", "no path");
	/* path/NAME/latest is ours: a version called so would be hidden
	 * behind the link, or the link behind it. */
	if (strcmp(b->version, "latest") == 0)
		return pub_fail(res, true, "version_reserved", "version "
		    "\"latest\" is the name of the link in a model directory");
	if (snprintf(ndir, sizeof(ndir), "%s/%s", s->path, b->name) >=
	    (int)sizeof(ndir) || snprintf(final, sizeof(final), "%s/%s", ndir,
	    b->version) >= (int)sizeof(final) || snprintf(tmp, sizeof(tmp),
	    "%s/.%s.partial", ndir, b->version) >= (int)sizeof(tmp))
		return pub_fail(res, true, "path_too_long", "%s", ndir);
	if ((rc = util_mkdirs(ndir, 0755)) != 0)
		return pub_fail(res, false, "write_failed", "%s: %s", ndir,
		    strerror(-rc));
	if (lstat(final, &st) != 0) {
		if (errno != ENOENT)
			return pub_fail(res, false, "write_failed", "%s: %s",
			    final, strerror(errno));
		if ((rc = util_rmtree(tmp)) != 0 && rc != -ENOENT)
			return pub_fail(res, false, "write_failed", "removing "
			    "%s: %s", tmp, strerror(-rc));
		if (build(tmp, b, res) != 0 || verify_tree(tmp, b->m, res) != 0)
			return -1;
		pub_failpoint("dir_built");
		if (rename(tmp, final) != 0)
			return pub_fail(res, false, "write_failed", "rename to "
			    "%s: %s", final, strerror(errno));
		if ((rc = util_fsync_dir(ndir)) != 0)
			return pub_fail(res, false, "write_failed", "fsync %s: "
			    "%s", ndir, strerror(-rc));
	} else if (!S_ISDIR(st.st_mode))
		return pub_fail(res, false, "write_failed", "%s: exists and "
		    "is not a directory", final);
	else if (verify_tree(final, b->m, res) != 0)
		return -1;
	return move_latest(ndir, b->version, res);
}
