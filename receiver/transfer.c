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
#include <sys/statvfs.h>
#include <unistd.h>

#define DONE_DIR ".done"
#define MISSING_DETAIL_MAX 1000


static void manifest_ready(struct recv *r, struct transfer *t);
static void check_complete(struct recv *r, struct transfer *t);
static void remove_missing(struct recv *r, const struct transfer *t);

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
	return 0;
}

static void
transfer_free(struct recv *r, struct transfer *t)
{
	uint32_t i;

	progress_quiesce(r, t);
	if (t->used)
		progress_forget(r, t->id);
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
	struct transfer tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.id = id;
	release_audit(r, &tmp, "REJECTED", reason, NULL, detail);
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
	/* Staging an earlier run left for this transfer is resumed when its
	 * progress file says what is on disk; otherwise started afresh. */
	t->dirfd = openat(r->staging_fd, t->name, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW);
	if (t->dirfd >= 0) {
		int n = progress_load(r, t);

		if (n >= 0) {
			snprintf(detail, sizeof(detail), "%d chunks already "
			    "on disk", n);
			qlog_transfer(r, t, "RECEIVING", "resumed", detail);
			log_info("transfer %s: resumed with %d chunks from "
			    "staging", t->name, n);
			if (t->objects[0].n_chunks > 0 &&
			    t->objects[0].n_done == t->objects[0].n_chunks) {
				manifest_ready(r, t);
				if (!t->used)
					return NULL; /* rejected */
				check_complete(r, t);
			}
			return t;
		}
		close(t->dirfd);
		t->dirfd = -1;
		for (i = 0; i < t->object_count; i++) {
			free(t->objects[i].done);
			memset(&t->objects[i], 0, sizeof(t->objects[i]));
			t->objects[i].size = UINT64_MAX;
		}
		t->objects_done = 0;
		t->bytes_done = 0;
		if (util_path_join(path, sizeof(path), r->conf->staging_dir,
		    t->name) == 0)
			(void)util_rmtree(path);
	}
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

/*
 * The end of a transfer: logged, remembered across restarts so carousel
 * repeats are ignored, its staging removed (a QUARANTINED transfer's was
 * moved aside by the verifier), and its memory freed.
 */
void
transfer_finish(struct recv *r, struct transfer *t, const char *state,
    const char *reason, const char *detail)
{
	char path[PATH_MAX];

	qlog_transfer(r, t, state, reason, detail);
	if (strcmp(state, "RELEASED") == 0) {
		log_info("transfer %s released: %s", t->name,
		    detail != NULL ? detail : "");
		r->stats.transfers_released++;
	} else {
		log_warnx("transfer %s %s: %s%s%s", t->name, state, reason,
		    detail != NULL ? ": " : "", detail != NULL ? detail : "");
		if (strcmp(state, "REJECTED") == 0)
			r->stats.transfers_rejected++;
		else if (strcmp(state, "QUARANTINED") == 0)
			r->stats.transfers_quarantined++;
		else
			r->stats.transfers_duplicate++;
	}
	mark_finished(r, t->id, state);
	remove_missing(r, t);
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    t->name) == 0)
		(void)util_rmtree(path);
	transfer_free(r, t);
}

void
transfer_reject(struct recv *r, struct transfer *t, const char *reason,
    const char *detail)
{
	release_audit(r, t, "REJECTED", reason, NULL, detail);
	transfer_finish(r, t, "REJECTED", reason, detail);
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
		.max_files = UTIL_MIN(t->object_count - 1, r->conf->max_files),
		.max_path_len = r->conf->max_path_len,
		.max_bytes = r->conf->max_bundle_bytes,
	};
	struct statvfs sv;
	char latest[PMAN_MAX_VALUE + 1];
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
	if (regexec(&r->name_re, t->manifest->name, 0, NULL, 0) != 0) {
		transfer_reject(r, t, "name_pattern",
		    "bundle name does not match name_pattern");
		return;
	}
	/* The same version again: say so once, and stop receiving it. */
	if (release_latest(r, t->manifest->name, latest, sizeof(latest)) &&
	    manifest_version_cmp(t->manifest->version, latest) == 0) {
		snprintf(err, sizeof(err), "version %s is already released",
		    latest);
		release_audit(r, t, "DUPLICATE", "already_released", NULL, err);
		transfer_finish(r, t, "DUPLICATE", "already_released", err);
		return;
	}
	/* Refuse before staging what the staging file system cannot hold. */
	if (fstatvfs(t->dirfd, &sv) == 0 && (uint64_t)sv.f_bavail *
	    sv.f_frsize < t->manifest->total_bytes) {
		snprintf(err, sizeof(err), "bundle of %" PRIu64 " bytes, %"
		    PRIu64 " free in staging", t->manifest->total_bytes,
		    (uint64_t)sv.f_bavail * sv.f_frsize);
		transfer_reject(r, t, "no_space", err);
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
	/* The verifier owns the staging directory from here on. */
	progress_quiesce(r, t);
	t->state = T_VERIFYING;
	assemble_drop_transfer(r, t);
	release_enqueue(r, t);
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
	if (chunk == o->prefix)
		transfer_advance_prefix(t, o);
	o->dirty = true;
	t->unsaved = true;
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

void
transfer_advance_prefix(struct transfer *t, struct object *o)
{
	uint64_t before = UTIL_MIN((uint64_t)o->prefix * t->chunk_size,
	    o->size);

	while (o->prefix < o->n_chunks &&
	    (o->done[o->prefix / 8] & (1u << (o->prefix % 8))))
		o->prefix++;
	t->prefix_bytes += UTIL_MIN((uint64_t)o->prefix * t->chunk_size,
	    o->size) - before;
}

/*
 * The next run of missing chunks of an object at or after *c: true with
 * [*start, *c) set, false when there is none.
 */
static bool
next_missing_run(const struct object *o, uint32_t *c, uint32_t *start)
{
	while (*c < o->n_chunks && (o->done[*c / 8] & (1u << (*c % 8))))
		(*c)++;
	if (*c >= o->n_chunks)
		return false;
	*start = *c;
	while (*c < o->n_chunks && !(o->done[*c / 8] & (1u << (*c % 8))))
		(*c)++;
	return true;
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
		uint32_t c = 0, start;

		if (o->size == UINT64_MAX) {
			if (off < sizeof(list))
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, " %u/all", i);
			continue;
		}
		total += o->n_chunks;
		while (next_missing_run(o, &c, &start)) {
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
		while (next_missing_run(o, &c, &start))
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
remove_missing(struct recv *r, const struct transfer *t)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/missing/%s", r->conf->state_dir,
	    t->name) < (int)sizeof(path))
		(void)unlink(path);
}

/*
 * <state_dir>/status: the transfers in flight, one logfmt line each,
 * rewritten atomically for `sluice status`.
 */
void
transfer_write_status(struct recv *r)
{
	static const char *const names[] = { "RECEIVING", "INCOMPLETE",
		"VERIFYING" };
	char path[PATH_MAX], buf[16384], ts[32], b[256], v[256];
	size_t off = 0;
	uint64_t now = util_now_ns();
	unsigned i;

	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	off += (size_t)snprintf(buf + off, sizeof(buf) - off,
	    "# sluice-recv %ld status at %s\n", (long)getpid(), ts);
	for (i = 0; i < r->n_transfers && off < sizeof(buf) - 600; i++) {
		const struct transfer *t = &r->transfers[i];
		uint64_t done = 0, total = 0;
		uint32_t j;
		bool known = true;

		if (!t->used)
			continue;
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
		    "\n", t->name, names[t->state], b, v, done, total,
		    known ? "" : "+", t->bytes_done, t->transfer_bytes,
		    (now - t->created_ns) / 1000000000,
		    (now - t->progress_ns) / 1000000000);
	}
	if (snprintf(path, sizeof(path), "%s/status", r->conf->state_dir) <
	    (int)sizeof(path))
		(void)util_write_file_atomic(path, buf, off, 0644);
}

void
transfer_save_progress(struct recv *r, bool sync)
{
	unsigned i;

	for (i = 0; i < r->n_transfers; i++)
		if (r->transfers[i].used)
			progress_save(r, &r->transfers[i], sync);
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
		write_missing(r, t);
		qlog_transfer(r, t, "INCOMPLETE", "timeout", detail);
		log_warnx("transfer %s incomplete: %s", t->name, detail);
	}
}

