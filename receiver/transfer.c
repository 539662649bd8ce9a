/*
 * Transfers: from the first verified descriptor to RELEASED, REJECTED or
 * INCOMPLETE.
 *
 * Staging layout, under staging_dir (mode 0700, owned by the receiver):
 *
 *   <hex id>/o<N>      object N's bytes, written at chunk offsets
 *   <hex id>/tree/     the bundle being assembled for release
 *   .done/<hex id>     marker: this transfer was released or rejected,
 *                      so carousel repeats are ignored across restarts
 *
 * Nothing partial is ever released: when every chunk of every object is
 * on disk, the verifier thread fsyncs and re-hashes every file from disk,
 * compares with the signed manifest, moves the files into tree/ under
 * their validated names, and renames tree/ into
 * <store_dir>/<name>/<version> (RENAME_NOREPLACE), then fsyncs the
 * directory.  A crash leaves either no release or a complete one.
 *
 * The verifier owns a transfer while it is T_VERIFYING; the I/O thread
 * then only reads its state and drops its datagrams as repeats.
 */
#include "receiver/recv.h"
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DONE_DIR ".done"
#define MISSING_DETAIL_MAX 1000

static void *verifier_main(void *arg);

static void
remember_finished(struct recv *r, uint64_t id)
{
	r->finished[r->finished_next] = id;
	r->finished_next = (r->finished_next + 1) % RECV_FINISHED_MAX;
	if (r->n_finished < RECV_FINISHED_MAX)
		r->n_finished++;
}

bool
transfer_is_finished(const struct recv *r, uint64_t id)
{
	unsigned i;

	/* Newest first: a carousel repeat is usually of the last one. */
	for (i = 0; i < r->n_finished; i++) {
		unsigned j = (r->finished_next + RECV_FINISHED_MAX - 1 - i) %
		    RECV_FINISHED_MAX;

		if (r->finished[j] == id)
			return true;
	}
	return false;
}

static void
mark_finished(struct recv *r, uint64_t id, const char *state)
{
	char name[32];
	int fd;

	remember_finished(r, id);
	snprintf(name, sizeof(name), DONE_DIR "/%016" PRIx64, id);
	fd = openat(r->staging_fd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("cannot record finished transfer %016" PRIx64, id);
		return;
	}
	(void)util_write_all(fd, state, strlen(state));
	(void)fsync(fd);
	close(fd);
}

static void
load_finished(struct recv *r)
{
	DIR *d;
	struct dirent *de;
	int fd;

	fd = openat(r->staging_fd, DONE_DIR, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		uint8_t raw[8];
		uint64_t id = 0;
		unsigned i;

		if (strlen(de->d_name) != 16 ||
		    util_unhex(raw, 8, de->d_name) != 0)
			continue;
		for (i = 0; i < 8; i++)
			id = id << 8 | raw[i];
		remember_finished(r, id);
	}
	closedir(d);
}

int
transfer_init(struct recv *r)
{
	int rc;

	rc = util_mkdirs(r->conf->staging_dir, 0700);
	if (rc != 0)
		return rc;
	r->staging_fd = open(r->conf->staging_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (r->staging_fd < 0)
		return -errno;
	if (mkdirat(r->staging_fd, DONE_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	load_finished(r);
	rc = util_mkdirs(r->conf->store_dir, r->conf->dir_mode);
	if (rc != 0)
		return rc;
	r->n_transfers = r->conf->max_transfers_in_flight;
	r->transfers = calloc(r->n_transfers, sizeof(*r->transfers));
	if (r->transfers == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->vq_lock, NULL);
	pthread_cond_init(&r->vq_cond, NULL);
	rc = pthread_create(&r->verifier, NULL, verifier_main, r);
	if (rc != 0)
		return -rc;
	return 0;
}

static void
transfer_free(struct recv *r, struct transfer *t)
{
	uint32_t i;

	assemble_drop_transfer(r, t);
	for (i = 0; t->objects != NULL && i < t->object_count; i++)
		free(t->objects[i].done);
	free(t->objects);
	manifest_free(t->manifest);
	if (t->dirfd >= 0)
		close(t->dirfd);
	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
}

void
transfer_fini(struct recv *r)
{
	unsigned i;

	if (r->transfers != NULL) {
		pthread_mutex_lock(&r->vq_lock);
		r->vq_stop = true;
		pthread_cond_signal(&r->vq_cond);
		pthread_mutex_unlock(&r->vq_lock);
		pthread_join(r->verifier, NULL);
		for (i = 0; i < r->n_transfers; i++)
			if (r->transfers[i].used)
				transfer_free(r, &r->transfers[i]);
		free(r->transfers);
	}
	if (r->staging_fd >= 0)
		close(r->staging_fd);
}

struct transfer *
transfer_find(struct recv *r, uint64_t id)
{
	unsigned i;

	for (i = 0; i < r->n_transfers; i++)
		if (r->transfers[i].used && r->transfers[i].id == id)
			return &r->transfers[i];
	return NULL;
}

static void
qlog_transfer(struct recv *r, const struct transfer *t, const char *state,
    const char *reason, const char *detail)
{
	const struct manifest *m = t->manifest;

	qlog_event(r->qlog, t->id, m != NULL ? m->name : NULL,
	    m != NULL ? m->version : NULL, state, reason, detail);
}

/* Rejects a transfer we never kept (over a limit at first sight). */
static void
refuse(struct recv *r, uint64_t id, const char *reason, const char *detail)
{
	qlog_event(r->qlog, id, NULL, NULL, "REJECTED", reason, detail);
	r->stats.transfers_rejected++;
	mark_finished(r, id, reason);
}

struct transfer *
transfer_create(struct recv *r, const struct proto_descriptor *d,
    const struct sign_pubkey *key)
{
	struct transfer *t = NULL, *idle = NULL;
	char detail[128], path[PATH_MAX];
	unsigned i;

	if (d->transfer_bytes > r->conf->max_transfer_bytes) {
		snprintf(detail, sizeof(detail), "transfer of %" PRIu64
		    " bytes, limit %" PRIu64, d->transfer_bytes,
		    r->conf->max_transfer_bytes);
		r->stats.drop[DROP_TRANSFER_LIMIT]++;
		refuse(r, d->id.transfer, "too_large", detail);
		return NULL;
	}
	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *c = &r->transfers[i];

		if (!c->used) {
			t = c;
			break;
		}
		if (c->state == T_INCOMPLETE && c->writes_in_flight == 0 &&
		    (idle == NULL || c->progress_ns < idle->progress_ns))
			idle = c;
	}
	if (t == NULL && idle != NULL) {
		/* Its staging stays on disk; it restarts if it comes back. */
		log_info("transfer %016" PRIx64 ": set aside (incomplete) to "
		    "make room for %016" PRIx64, idle->id, d->id.transfer);
		transfer_free(r, idle);
		t = idle;
	}
	if (t == NULL) {
		r->stats.drop[DROP_TRANSFER_LIMIT]++;
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	t->objects = calloc(d->object_count, sizeof(*t->objects));
	if (t->objects == NULL) {
		log_warnx("out of memory for a transfer of %u objects",
		    d->object_count);
		return NULL;
	}
	for (i = 0; i < d->object_count; i++)
		t->objects[i].size = UINT64_MAX;
	t->used = true;
	t->id = d->id.transfer;
	t->key = key;
	t->object_count = d->object_count;
	t->transfer_bytes = d->transfer_bytes;
	t->chunk_size = d->chunk_size;
	t->symbol_size = d->symbol_size;
	t->state = T_RECEIVING;
	t->created_ns = t->progress_ns = util_now_ns();
	snprintf(t->name, sizeof(t->name), "%016" PRIx64, t->id);
	/* Whatever an earlier run left here is started afresh. */
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    t->name) == 0)
		(void)util_rmtree(path);
	if (mkdirat(r->staging_fd, t->name, 0700) < 0 ||
	    (t->dirfd = openat(r->staging_fd, t->name, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		log_warn("staging %s/%s", r->conf->staging_dir, t->name);
		transfer_free(r, t);
		return NULL;
	}
	snprintf(detail, sizeof(detail), "objects=%u bytes=%" PRIu64,
	    t->object_count, t->transfer_bytes);
	qlog_transfer(r, t, "RECEIVING", "first_datagram", detail);
	return t;
}

bool
transfer_chunk_is_done(const struct transfer *t, uint32_t object,
    uint32_t chunk)
{
	const struct object *o;

	if (object >= t->object_count)
		return false;
	o = &t->objects[object];
	return o->done != NULL && chunk < o->n_chunks &&
	    (o->done[chunk / 8] & (1u << (chunk % 8))) != 0;
}

static void check_complete(struct recv *r, struct transfer *t);

bool
transfer_object_size(struct recv *r, struct transfer *t, uint32_t object,
    uint64_t size)
{
	struct object *o;

	if (object >= t->object_count)
		return false;
	o = &t->objects[object];
	if (o->size != UINT64_MAX)
		return o->size == size;
	if (size > t->transfer_bytes)
		return false;
	o->size = size;
	o->n_chunks = proto_chunk_count(size, t->chunk_size);
	if (o->n_chunks > 0) {
		o->done = calloc((o->n_chunks + 7) / 8, 1);
		if (o->done == NULL) {
			o->size = UINT64_MAX;
			o->n_chunks = 0;
			return false;
		}
	} else {
		t->objects_done++;
	}
	return true;
}

int
transfer_object_fd(struct recv *r, struct transfer *t, uint32_t object)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "o%u", object);
	fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

void
transfer_reject(struct recv *r, struct transfer *t, const char *reason,
    const char *detail)
{
	char path[PATH_MAX];

	qlog_transfer(r, t, "REJECTED", reason, detail);
	log_warnx("transfer %s rejected: %s%s%s", t->name, reason,
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	r->stats.transfers_rejected++;
	mark_finished(r, t->id, reason);
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    t->name) == 0)
		(void)util_rmtree(path);
	transfer_free(r, t);
}

/* A bundle name or version becomes one directory name in the store. */
static bool
safe_component(const char *s)
{
	size_t len = strlen(s);

	return strchr(s, '/') == NULL &&
	    pman_path_check(s, len, PMAN_MAX_COMPONENT) == PMAN_OK &&
	    s[0] != '.';
}

/* Object 0 is on disk: parse the manifest and learn every file's size. */
static void
manifest_ready(struct recv *r, struct transfer *t)
{
	struct manifest_limits lim = {
		.max_files = t->object_count - 1,
		.max_path_len = PMAN_MAX_VALUE,
		.max_bytes = r->conf->max_transfer_bytes,
	};
	char err[256];
	const char *reason;
	uint8_t *buf = NULL;
	struct stat st;
	size_t i;
	int fd;
	ssize_t n;

	fd = openat(t->dirfd, "o0", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (uint64_t)st.st_size != t->objects[0].size ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL ||
	    (n = pread(fd, buf, (size_t)st.st_size, 0)) != st.st_size) {
		log_warn("transfer %s: reading its manifest", t->name);
		if (fd >= 0)
			close(fd);
		free(buf);
		transfer_reject(r, t, "staging_io", "cannot read manifest");
		return;
	}
	close(fd);
	if (manifest_parse(buf, (size_t)st.st_size, &lim, &t->manifest,
	    &reason, err, sizeof(err)) != 0) {
		free(buf);
		transfer_reject(r, t, reason, err);
		return;
	}
	free(buf);
	if (!safe_component(t->manifest->name) ||
	    !safe_component(t->manifest->version)) {
		transfer_reject(r, t, "unsafe_name",
		    "bundle name or version is not a safe directory name");
		return;
	}
	if (t->manifest->n_files + 1 != t->object_count ||
	    t->objects[0].size + t->manifest->total_bytes !=
	    t->transfer_bytes) {
		transfer_reject(r, t, "manifest_mismatch",
		    "file count or sizes differ from the descriptors");
		return;
	}
	for (i = 0; i < t->manifest->n_files; i++) {
		if (!transfer_object_size(r, t, (uint32_t)i + 1,
		    t->manifest->files[i].size)) {
			snprintf(err, sizeof(err), "size of %s differs from "
			    "its descriptors", t->manifest->files[i].path);
			transfer_reject(r, t, "manifest_mismatch", err);
			return;
		}
	}
	log_info("transfer %s: bundle %s version %s, %zu files, %" PRIu64
	    " bytes", t->name, t->manifest->name, t->manifest->version,
	    t->manifest->n_files, t->manifest->total_bytes);
}

static void
check_complete(struct recv *r, struct transfer *t)
{
	if (t->manifest == NULL || t->objects_done != t->object_count ||
	    t->writes_in_flight != 0 || t->state == T_VERIFYING)
		return;
	qlog_transfer(r, t, "COMPLETE", "all_chunks", NULL);
	t->state = T_VERIFYING;
	assemble_drop_transfer(r, t);
	pthread_mutex_lock(&r->vq_lock);
	r->vq_todo[r->vq_n_todo++] = t;
	pthread_cond_signal(&r->vq_cond);
	pthread_mutex_unlock(&r->vq_lock);
}

void
transfer_chunk_done(struct recv *r, struct transfer *t, uint32_t object,
    uint32_t chunk, uint32_t plain_len)
{
	struct object *o = &t->objects[object];

	if (o->done[chunk / 8] & (1u << (chunk % 8)))
		return;
	o->done[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
	o->n_done++;
	t->bytes_done += plain_len;
	t->progress_ns = util_now_ns();
	r->stats.chunks_done++;
	if (t->state == T_INCOMPLETE) {
		t->state = T_RECEIVING;
		qlog_transfer(r, t, "RECEIVING", "resumed", NULL);
	}
	if (o->n_done < o->n_chunks)
		return;
	t->objects_done++;
	if (object == 0) {
		manifest_ready(r, t);
		/* t may be gone: rejected and freed. */
		if (!t->used || t->id == 0)
			return;
	}
	check_complete(r, t);
}

/* Lists missing chunks as object/chunk ranges; "9/all" for an object
 * whose size is not known yet. */
static void
missing_detail(const struct transfer *t, char *buf, size_t cap)
{
	uint64_t total = 0, missing = 0;
	size_t off;
	uint32_t i;
	char list[MISSING_DETAIL_MAX];

	list[0] = '\0';
	off = 0;
	for (i = 0; i < t->object_count; i++) {
		const struct object *o = &t->objects[i];
		uint32_t c = 0;

		if (o->size == UINT64_MAX) {
			if (off < sizeof(list))
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, " %u/all", i);
			continue;
		}
		total += o->n_chunks;
		while (c < o->n_chunks) {
			uint32_t start;

			if (o->done[c / 8] & (1u << (c % 8))) {
				c++;
				continue;
			}
			start = c;
			while (c < o->n_chunks &&
			    !(o->done[c / 8] & (1u << (c % 8))))
				c++;
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

void
transfer_tick(struct recv *r, uint64_t now)
{
	uint64_t timeout = (uint64_t)(r->conf->transfer_timeout * 1e9);
	unsigned i;

	for (i = 0; i < r->n_transfers; i++) {
		struct transfer *t = &r->transfers[i];
		char detail[MISSING_DETAIL_MAX + 128];

		if (!t->used || t->state != T_RECEIVING ||
		    now - t->progress_ns < timeout)
			continue;
		t->state = T_INCOMPLETE;
		r->stats.transfers_incomplete++;
		missing_detail(t, detail, sizeof(detail));
		qlog_transfer(r, t, "INCOMPLETE", "timeout", detail);
		log_warnx("transfer %s incomplete: %s", t->name, detail);
	}
}

/* ---- verifier thread ------------------------------------------------ */

struct verdict {
	int rc;
	char reason[64];
	char detail[512];
};

static void fail(struct verdict *v, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct verdict *v, const char *reason, const char *fmt, ...)
{
	va_list ap;

	v->rc = -1;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
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

/* fsync every directory of the tree (parents before release). */
static int
fsync_tree(int dirfd)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if (fsync(dirfd) < 0)
		return -errno;
	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		int sub;

		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = -errno;
			break;
		}
		rc = fsync_tree(sub);
		close(sub);
	}
	closedir(d);
	return rc;
}

static void
verify_and_release(struct recv *r, struct transfer *t, struct verdict *v)
{
	const struct manifest *m = t->manifest;
	const struct recv_conf *c = r->conf;
	char name[32], dir[PATH_MAX];
	int treefd = -1, storefd = -1;
	size_t i;

	qlog_transfer(r, t, "VERIFYING", "rehash", NULL);
	v->rc = 0;
	/* 1. Every file, from disk, against the signed manifest. */
	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		uint8_t digest[HASH_LEN];
		uint64_t size;
		int fd, rc;

		snprintf(name, sizeof(name), "o%zu", i + 1);
		fd = openat(t->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd < 0) {
			fail(v, "staging_io", "cannot open %s", f->path);
			return;
		}
		rc = fdatasync(fd);
		if (rc == 0)
			rc = hash_fd(fd, digest, &size);
		if (rc == 0 && fchmod(fd, f->exec ? (c->file_mode | 0111) &
		    0755 : c->file_mode) < 0)
			rc = -errno;
		close(fd);
		if (rc != 0) {
			fail(v, "staging_io", "cannot read back %s", f->path);
			return;
		}
		if (size != f->size || !sign_equal(digest, f->sha256,
		    HASH_LEN)) {
			fail(v, "hash_mismatch", "%s differs from the manifest",
			    f->path);
			return;
		}
	}
	/* 2. Assemble the tree under the validated names. */
	if (mkdirat(t->dirfd, "tree", 0700) < 0 ||
	    (treefd = openat(t->dirfd, "tree", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		fail(v, "staging_io", "cannot create %s", "tree");
		goto out;
	}
	for (i = 0; i < m->n_files; i++) {
		snprintf(name, sizeof(name), "o%zu", i + 1);
		if (make_parents(treefd, m->files[i].path, c->dir_mode) != 0 ||
		    renameat(t->dirfd, name, treefd, m->files[i].path) < 0) {
			fail(v, "staging_io", "cannot place %s",
			    m->files[i].path);
			goto out;
		}
	}
	if (fchmod(treefd, c->dir_mode) < 0 || fsync_tree(treefd) != 0) {
		fail(v, "staging_io", "cannot sync %s", "tree");
		goto out;
	}
	/* 3. Release: one rename, never over an existing version. */
	if (snprintf(dir, sizeof(dir), "%s/%s", c->store_dir, m->name) >=
	    (int)sizeof(dir) || util_mkdirs(dir, c->dir_mode) != 0 ||
	    (storefd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fail(v, "store_io", "cannot create %s", dir);
		goto out;
	}
	if (renameat2(t->dirfd, "tree", storefd, m->version,
	    RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			fail(v, "version_exists", "%s is already in the store",
			    m->version);
		else
			fail(v, "store_io", "cannot rename into %s", dir);
		goto out;
	}
	if (fsync(storefd) < 0)
		log_warn("fsync %s", dir);
	snprintf(v->detail, sizeof(v->detail), "files=%zu bytes=%" PRIu64
	    " path=%s/%s", m->n_files, m->total_bytes, dir, m->version);
out:
	if (treefd >= 0)
		close(treefd);
	if (storefd >= 0)
		close(storefd);
}

static void *
verifier_main(void *arg)
{
	struct recv *r = arg;

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
		verify_and_release(r, t, &v);

		pthread_mutex_lock(&r->vq_lock);
		r->vq_done[r->vq_n_done].t = t;
		r->vq_done[r->vq_n_done].rc = v.rc;
		memcpy(r->vq_done[r->vq_n_done].reason, v.reason,
		    sizeof(v.reason));
		memcpy(r->vq_done[r->vq_n_done].detail, v.detail,
		    sizeof(v.detail));
		r->vq_n_done++;
	}
	pthread_mutex_unlock(&r->vq_lock);
	return NULL;
}

void
transfer_poll_verifier(struct recv *r)
{
	unsigned i, n;
	char path[PATH_MAX];

	pthread_mutex_lock(&r->vq_lock);
	n = r->vq_n_done;
	pthread_mutex_unlock(&r->vq_lock);
	for (i = 0; i < n; i++) {
		struct transfer *t;
		int rc;
		char reason[64], detail[512];

		pthread_mutex_lock(&r->vq_lock);
		t = r->vq_done[i].t;
		rc = r->vq_done[i].rc;
		memcpy(reason, r->vq_done[i].reason, sizeof(reason));
		memcpy(detail, r->vq_done[i].detail, sizeof(detail));
		pthread_mutex_unlock(&r->vq_lock);
		if (rc != 0) {
			transfer_reject(r, t, reason, detail);
			continue;
		}
		qlog_transfer(r, t, "RELEASED", "verified", detail);
		log_info("transfer %s released: %s", t->name, detail);
		r->stats.transfers_released++;
		mark_finished(r, t->id, "RELEASED");
		if (util_path_join(path, sizeof(path), r->conf->staging_dir,
		    t->name) == 0)
			(void)util_rmtree(path);
		transfer_free(r, t);
	}
	pthread_mutex_lock(&r->vq_lock);
	memmove(r->vq_done, r->vq_done + n,
	    (r->vq_n_done - n) * sizeof(r->vq_done[0]));
	r->vq_n_done -= n;
	pthread_mutex_unlock(&r->vq_lock);
}
