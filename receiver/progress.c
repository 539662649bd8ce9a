/*
 * Progress that survives a restart.  Every progress_interval, for each
 * transfer with chunks written since the last save, the I/O thread takes
 * a snapshot of its chunk bitmaps and hands it to the progress thread,
 * which fdatasyncs the object files written to and only then replaces
 * <staging>/<id>/progress (atomically, fsynced): a chunk is recorded as
 * done only after its bytes are durable.  The fdatasyncs used to run on
 * the I/O thread and stopped reception for up to 150 ms a second at
 * 400 MB/s.  One save per transfer is in flight at a time; the verifier
 * takes a transfer over, and its staging directory is removed, only after
 * its save has finished (progress_quiesce).
 *
 * The same thread reads each file back as it is written: every 100 ms (and
 * after each save) it hashes every file forward over its prefix of
 * written chunks, and the verifier finishes those hashes instead of
 * reading whole files again after the last chunk: for 1 GiB, RELEASED
 * now comes 0.2-0.35 s after the sender's last datagram instead of
 * 0.85-0.95 s.  The bytes hashed are the same page cache the verifier would
 * read; the verifier still fdatasyncs every file before release.  When a transfer is seen again after a restart, its
 * progress file restores the object sizes and chunk bitmaps, so chunks
 * already written are not needed again.  The file is our own, but it is
 * read as carefully as anything else: any doubt, and the transfer starts
 * afresh.
 *
 *   sluice-progress 1
 *   <id> <object_count> <transfer_bytes> <chunk_size> <symbol_size>
 *   k <sender key id as hex>                  (since 0.9; optional)
 *   o <object> <size> <bitmap as hex>        (objects whose size is known)
 *   end
 */
#include "receiver/recv.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_FILE "progress"

struct progress_job {
	struct progress_job *next;
	const struct transfer *t; /* identity only: never dereferenced */
	uint64_t id;
	int dirfd;                /* a dup of the staging directory's */
	char name[32];            /* for messages */
	uint32_t *objs;           /* objects written since the last save */
	uint32_t n_objs;
	char *text;               /* the progress file, as of the snapshot */
	size_t len;
	bool sync;                /* also record (the progress file) */
	uint32_t object_count;
	uint64_t *prefix;         /* per object: bytes written from 0 */
	uint32_t *bad;            /* objects whose fdatasync failed */
	uint32_t n_bad;
	bool ok;
};

/*
 * What the progress thread has hashed of a transfer's files: for each
 * object, a SHA-256 context fed with bytes [0, off) of its staging file,
 * read back after they were written.  Only the progress thread touches an
 * entry, until the verifier takes it (after progress_quiesce, so never at
 * the same time); the list itself is under the progress lock.
 */
struct prehash {
	struct prehash *next;
	uint64_t id;
	uint32_t n;
	struct {
		struct hash_ctx *ctx;
		uint64_t off;
	} *o;
};

struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a job queued, or stop */
	pthread_cond_t done_cond; /* a job finished */
	struct progress_job *todo, **todo_tail;
	struct progress_job *current;
	struct progress_job *done;
	bool stop;
	bool started;
	struct prehash *prehash;  /* per transfer: files hashed so far */
};

static void
job_free(struct progress_job *j)
{
	if (j == NULL)
		return;
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->objs);
	free(j->text);
	free(j->prefix);
	free(j->bad);
	free(j);
}

void
prehash_free(struct prehash *ph)
{
	uint32_t i;

	if (ph == NULL)
		return;
	for (i = 0; i < ph->n; i++)
		hash_free(ph->o[i].ctx);
	free(ph->o);
	free(ph);
}

/* Unlinks transfer id's entry from the list (progress lock held). */
static struct prehash *
prehash_unlink(struct recv *r, uint64_t id)
{
	struct prehash **pp, *ph;

	for (pp = &r->progress->prehash; (ph = *pp) != NULL; pp = &ph->next) {
		if (ph->id == id) {
			*pp = ph->next;
			ph->next = NULL;
			return ph;
		}
	}
	return NULL;
}

struct prehash *
progress_take_prehash(struct recv *r, uint64_t id)
{
	struct prehash *ph;

	pthread_mutex_lock(&r->progress->lock);
	ph = prehash_unlink(r, id);
	pthread_mutex_unlock(&r->progress->lock);
	return ph;
}

void
progress_forget(struct recv *r, uint64_t id)
{
	prehash_free(progress_take_prehash(r, id));
}

bool
prehash_finish(struct prehash *ph, uint32_t object, int fd,
    uint8_t digest[32], uint64_t *size, int *rc)
{
	if (ph == NULL || object >= ph->n || ph->o[object].ctx == NULL)
		return false;
	*rc = hash_fd_range_disk(fd, ph->o[object].ctx, &ph->o[object].off,
	    UINT64_MAX);
	if (*rc == 0) {
		hash_final(ph->o[object].ctx, digest);
		*size = ph->o[object].off;
	}
	return true;
}

/* The progress thread's entry for the job's transfer, made if need be. */
static struct prehash *
prehash_get(struct recv *r, const struct progress_job *j)
{
	struct prehash *ph;

	pthread_mutex_lock(&r->progress->lock);
	for (ph = r->progress->prehash; ph != NULL; ph = ph->next)
		if (ph->id == j->id)
			break;
	if (ph == NULL && (ph = calloc(1, sizeof(*ph))) != NULL) {
		ph->id = j->id;
		ph->n = j->object_count;
		ph->o = calloc(ph->n, sizeof(*ph->o));
		if (ph->o == NULL) {
			free(ph);
			ph = NULL;
		} else {
			ph->next = r->progress->prehash;
			r->progress->prehash = ph;
		}
	}
	pthread_mutex_unlock(&r->progress->lock);
	return ph;
}

/*
 * Hashes each file forward over what has been written of it from its
 * start.  On any error the entry is dropped, and the verifier hashes the
 * files whole, as it would have anyway.
 */
static void
job_prehash(struct recv *r, struct progress_job *j)
{
	struct prehash *ph = prehash_get(r, j);
	char obj[32];
	uint32_t i;

	if (ph == NULL || ph->n != j->object_count)
		return;
	for (i = 1; i < j->object_count; i++) {
		int fd, rc;

		if (j->prefix[i] <= ph->o[i].off)
			continue;
		if (ph->o[i].ctx == NULL &&
		    (ph->o[i].ctx = hash_new()) == NULL)
			goto fail;
		snprintf(obj, sizeof(obj), "o%u", i);
		fd = openat(j->dirfd, obj, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			goto fail;
		/* These bytes are durable (synced by this job or an earlier
		 * one): hashed as the disk has them, not as they were
		 * written (O_DIRECT, or the cached pages dropped). */
		rc = hash_fd_range_disk(fd, ph->o[i].ctx, &ph->o[i].off,
		    j->prefix[i]);
		close(fd);
		if (rc != 0)
			goto fail;
	}
	return;
fail:
	progress_forget(r, j->id);
}

/*
 * The progress thread's part: make the listed objects durable, and only
 * then (for a recording job) replace the progress file, and hash forward
 * what is durable.  Every chunk the snapshot lists was written before
 * the snapshot was taken, so after these fdatasyncs its bytes are on
 * disk.  A failed fdatasync makes an object's bytes untrusted: the error
 * was consumed by this call, and a later fsync that succeeds proves
 * nothing.  The object is then received again (progress_poll), and no
 * progress file is written that could vouch for it.
 */
static void
job_run(struct recv *r, struct progress_job *j)
{
	struct prehash *ph;
	char obj[32];
	uint32_t i;
	int fd;

	for (i = 0; i < j->n_objs; i++) {
		snprintf(obj, sizeof(obj), "o%u", j->objs[i]);
		fd = openat(j->dirfd, obj, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fdatasync(fd) < 0 ||
		    recv_failpoint_hit("fdatasync_eio")) {
			log_warn("transfer %s: syncing %s; its bytes are not "
			    "trusted and are received again", j->name, obj);
			j->bad[j->n_bad++] = j->objs[i];
		}
		if (fd >= 0)
			close(fd);
	}
	if (j->n_bad > 0) {
		/* Nothing hashed of a bad object counts either. */
		pthread_mutex_lock(&r->progress->lock);
		for (ph = r->progress->prehash; ph != NULL; ph = ph->next)
			if (ph->id == j->id)
				break;
		for (i = 0; ph != NULL && i < j->n_bad; i++)
			if (j->bad[i] < ph->n && ph->o[j->bad[i]].ctx != NULL) {
				hash_free(ph->o[j->bad[i]].ctx);
				ph->o[j->bad[i]].ctx = NULL;
				ph->o[j->bad[i]].off = 0;
			}
		pthread_mutex_unlock(&r->progress->lock);
		return;
	}
	if (j->sync) {
		fd = openat(j->dirfd, PROGRESS_FILE ".tmp", O_WRONLY |
		    O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 && util_write_all(fd, j->text, j->len) == 0 &&
		    fsync(fd) == 0 && renameat(j->dirfd, PROGRESS_FILE ".tmp",
		    j->dirfd, PROGRESS_FILE) == 0 && fsync(j->dirfd) == 0)
			j->ok = true;
		else
			log_warn("transfer %s: saving progress", j->name);
		if (fd >= 0)
			close(fd);
	} else {
		j->ok = true;
	}
	if (j->ok)
		job_prehash(r, j);
}

static void *
progress_main(void *arg)
{
	struct recv *r = arg;

	util_background_thread();
	pthread_mutex_lock(&r->progress->lock);
	for (;;) {
		struct progress_job *j;

		while (r->progress->todo == NULL && !r->progress->stop)
			pthread_cond_wait(&r->progress->cond, &r->progress->lock);
		if (r->progress->todo == NULL)
			break; /* stopping, and nothing left to save */
		j = r->progress->todo;
		r->progress->todo = j->next;
		if (r->progress->todo == NULL)
			r->progress->todo_tail = &r->progress->todo;
		r->progress->current = j;
		pthread_mutex_unlock(&r->progress->lock);

		job_run(r, j);

		pthread_mutex_lock(&r->progress->lock);
		r->progress->current = NULL;
		j->next = r->progress->done;
		r->progress->done = j;
		pthread_cond_broadcast(&r->progress->done_cond);
	}
	pthread_mutex_unlock(&r->progress->lock);
	return NULL;
}

int
progress_init(struct recv *r)
{
	int rc;

	r->progress = calloc(1, sizeof(*r->progress));
	if (r->progress == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->progress->lock, NULL);
	pthread_cond_init(&r->progress->cond, NULL);
	pthread_cond_init(&r->progress->done_cond, NULL);
	r->progress->todo = NULL;
	r->progress->todo_tail = &r->progress->todo;
	rc = pthread_create(&r->progress->thread, NULL, progress_main, r);
	if (rc != 0)
		return -rc;
	(void)pthread_setname_np(r->progress->thread, "recv-progress");
	r->progress->started = true;
	return 0;
}

/* Finishes what is queued, then stops. */
void
progress_fini(struct recv *r)
{
	if (r->progress == NULL || !r->progress->started)
		return;
	pthread_mutex_lock(&r->progress->lock);
	r->progress->stop = true;
	pthread_cond_signal(&r->progress->cond);
	pthread_mutex_unlock(&r->progress->lock);
	pthread_join(r->progress->thread, NULL);
	r->progress->started = false;
	progress_poll(r);
	while (r->progress->prehash != NULL) {
		struct prehash *ph = r->progress->prehash;

		r->progress->prehash = ph->next;
		prehash_free(ph);
	}
}

void
progress_poll(struct recv *r)
{
	struct progress_job *done, *next;

	if (r->progress == NULL || !r->progress->started)
		return;
	pthread_mutex_lock(&r->progress->lock);
	done = r->progress->done;
	r->progress->done = NULL;
	pthread_mutex_unlock(&r->progress->lock);
	for (; done != NULL; done = next) {
		struct transfer *t = (struct transfer *)(uintptr_t)done->t;

		next = done->next;
		if (t->state != TS_FREE && t->id == done->id) {
			uint32_t i;

			t->progress_busy = false;
			/* Untrusted bytes: those objects are received again;
			 * lifecycle.c logs it (sync_failed). */
			for (i = 0; i < done->n_bad; i++) {
				transfer_reset_object(t, done->bad[i]);
				t->sync_failed++;
			}
			if (!done->ok && done->n_bad == 0) {
				/* Not recorded: sync everything next time. */
				for (i = 0; i < t->object_count; i++)
					if (t->objects[i].n_done > 0)
						t->objects[i].dirty = true;
				t->unsaved = true;
			}
		}
		job_free(done);
	}
}

static bool
pending(const struct recv *r, const struct transfer *t)
{
	const struct progress_job *j;

	if (r->progress->current != NULL && r->progress->current->t == t)
		return true;
	for (j = r->progress->todo; j != NULL; j = j->next)
		if (j->t == t)
			return true;
	return false;
}

void
progress_quiesce(struct recv *r, struct transfer *t)
{
	if (r->progress == NULL || !r->progress->started ||
	    !t->progress_busy)
		return;
	pthread_mutex_lock(&r->progress->lock);
	while (pending(r, t))
		pthread_cond_wait(&r->progress->done_cond, &r->progress->lock);
	pthread_mutex_unlock(&r->progress->lock);
	progress_poll(r);
}

/* The progress file's text for t as it is now. */
static char *
snapshot(const struct transfer *t, size_t *lenp)
{
	size_t cap = 256 + 2 * PROTO_KEYID_LEN, off = 0;
	uint32_t i;
	char *buf;

	for (i = 0; i < t->object_count; i++)
		if (t->objects[i].size != UINT64_MAX)
			cap += 64 + (size_t)(t->objects[i].n_chunks + 7) / 8 * 2;
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	off += (size_t)snprintf(buf + off, cap - off, "sluice-progress 1\n%s %u "
	    "%" PRIu64 " %u %u\n", t->name, t->object_count,
	    t->transfer_bytes, t->chunk_size, t->symbol_size);
	if (t->key != NULL) {
		memcpy(buf + off, "k ", 2);
		util_hex(buf + off + 2, t->key->id, PROTO_KEYID_LEN);
		off += 2 + 2 * PROTO_KEYID_LEN;
		buf[off++] = '\n';
	}
	for (i = 0; i < t->object_count; i++) {
		const struct object *o = &t->objects[i];
		size_t nb = ((size_t)o->n_chunks + 7) / 8;

		if (o->size == UINT64_MAX)
			continue;
		off += (size_t)snprintf(buf + off, cap - off, "o %u %" PRIu64
		    " ", i, o->size);
		if (nb > 0)
			util_hex(buf + off, o->done, nb);
		else
			strcpy(buf + off, "-");
		off += nb > 0 ? 2 * nb : 1;
		buf[off++] = '\n';
	}
	off += (size_t)snprintf(buf + off, cap - off, "end\n");
	*lenp = off;
	return buf;
}

void
progress_save(struct recv *r, struct transfer *t, bool sync)
{
	struct progress_job *j;
	uint32_t i, n = 0;

	if (t->progress_busy || !r->progress->started)
		return;
	for (i = 0; i < t->object_count; i++)
		if (t->objects[i].dirty)
			n++;
	if (sync ? !t->unsaved : n == 0 && t->prefix_bytes == t->prefix_queued)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->objs = calloc(n + 1, sizeof(*j->objs));
	j->bad = calloc(n + 1, sizeof(*j->bad));
	j->prefix = calloc(t->object_count, sizeof(*j->prefix));
	j->text = sync ? snapshot(t, &j->len) : NULL;
	j->dirfd = fcntl(t->dirfd, F_DUPFD_CLOEXEC, 0);
	if (j->objs == NULL || j->bad == NULL || j->prefix == NULL ||
	    (sync && j->text == NULL) || j->dirfd < 0) {
		job_free(j);
		return;
	}
	j->sync = sync;
	j->object_count = t->object_count;
	for (i = 0; i < t->object_count; i++) {
		const struct object *o = &t->objects[i];

		if (o->size != UINT64_MAX)
			j->prefix[i] = UTIL_MIN((uint64_t)o->prefix *
			    t->chunk_size, o->size);
		if (!o->dirty)
			continue;
		j->objs[j->n_objs++] = i;
		t->objects[i].dirty = false;
	}
	j->t = t;
	j->id = t->id;
	snprintf(j->name, sizeof(j->name), "%s", t->name);
	if (sync)
		t->unsaved = false;
	t->prefix_queued = t->prefix_bytes;
	t->progress_busy = true;
	pthread_mutex_lock(&r->progress->lock);
	*r->progress->todo_tail = j;
	r->progress->todo_tail = &j->next;
	pthread_cond_signal(&r->progress->cond);
	pthread_mutex_unlock(&r->progress->lock);
}

/*
 * Parses a progress file.  With t == NULL only the header and key lines
 * are read (into the out parameters); otherwise every line is applied to
 * t, whose geometry must match the header.
 */
static int
parse(struct recv *r, int dirfd, struct transfer *t, uint32_t *count_out,
    uint64_t *bytes_out, uint32_t *chunk_out, uint16_t *symbol_out,
    uint8_t key_id[PROTO_KEYID_LEN], bool *have_key)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 256u << 20;
	char *line, *save, id[32];
	unsigned count, chunk, symbol, lineno = 0;
	uint64_t bytes;
	bool end = false;
	int fd, rc = -1;
	ssize_t n;

	fd = openat(dirfd, PROGRESS_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	for (;;) {
		uint8_t *nb;

		if (len == cap)
			goto out;
		nb = realloc(buf, len + 65536 + 1);
		if (nb == NULL)
			goto out;
		buf = nb;
		n = read(fd, buf + len, 65536);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL)
		goto out;
	buf[len] = '\0';
	if (have_key != NULL)
		*have_key = false;
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		unsigned obj;
		uint64_t size;
		char bits[4096 * 64];
		struct object *o;
		size_t nb;

		lineno++;
		if (end)
			goto out;
		if (lineno == 1) {
			if (strcmp(line, "sluice-progress 1") != 0)
				goto out;
		} else if (lineno == 2) {
			if (sscanf(line, "%31s %u %" SCNu64 " %u %u", id, &count,
			    &bytes, &chunk, &symbol) != 5 || count == 0 ||
			    count > PROTO_MAX_OBJECTS || chunk == 0 ||
			    symbol == 0 || symbol > UINT16_MAX)
				goto out;
			if (t == NULL) {
				*count_out = count;
				*bytes_out = bytes;
				*chunk_out = chunk;
				*symbol_out = (uint16_t)symbol;
			} else if (strcmp(id, t->name) != 0 ||
			    count != t->object_count ||
			    bytes != t->transfer_bytes ||
			    chunk != t->chunk_size ||
			    symbol != t->symbol_size) {
				goto out;
			}
		} else if (line[0] == 'k' && line[1] == ' ') {
			if (strlen(line + 2) != 2 * PROTO_KEYID_LEN)
				goto out;
			if (t == NULL && (util_unhex(key_id, PROTO_KEYID_LEN,
			    line + 2) != 0))
				goto out;
			if (t == NULL) {
				*have_key = true;
				rc = 0;
				goto out;
			}
		} else if (strcmp(line, "end") == 0) {
			end = true;
		} else if (t == NULL) {
			rc = 0; /* header read; no key line */
			goto out;
		} else {
			if (strlen(line) >= sizeof(bits) ||
			    sscanf(line, "o %u %" SCNu64 " %s", &obj, &size,
			    bits) != 3 || obj >= t->object_count ||
			    !transfer_object_size(t, obj, size))
				goto out;
			o = &t->objects[obj];
			nb = ((size_t)o->n_chunks + 7) / 8;
			if (nb == 0)
				continue;
			if (strlen(bits) != 2 * nb ||
			    util_unhex(o->done, nb, bits) != 0)
				goto out;
			/* No bits beyond the last chunk. */
			if (o->n_chunks % 8 != 0 &&
			    (o->done[nb - 1] >> (o->n_chunks % 8)) != 0)
				goto out;
		}
	}
	if (end)
		rc = 0;
out:
	(void)r;
	close(fd);
	free(buf);
	return rc;
}

int
progress_peek(int dirfd, uint32_t *object_count, uint64_t *bytes,
    uint32_t *chunk_size, uint16_t *symbol_size,
    uint8_t key_id[PROTO_KEYID_LEN], bool *have_key)
{
	return parse(NULL, dirfd, NULL, object_count, bytes, chunk_size,
	    symbol_size, key_id, have_key);
}

int
progress_load(struct recv *r, struct transfer *t)
{
	uint64_t restored = 0;
	uint32_t i;

	if (parse(r, t->dirfd, t, NULL, NULL, NULL, NULL, NULL, NULL) != 0)
		return -1;
	/* Count what was restored.  Those chunks were written by an earlier
	 * run: if a file disagrees with the manifest later, it may be this
	 * machine's fault (a crash lost a write), not the sender's. */
	t->objects_done = 0;
	t->bytes_done = 0;
	for (i = 0; i < t->object_count; i++) {
		struct object *o = &t->objects[i];
		uint32_t c;

		if (o->size == UINT64_MAX)
			continue;
		o->n_done = 0;
		for (c = 0; c < o->n_chunks; c++)
			if (o->done[c / 8] & (1u << (c % 8))) {
				o->n_done++;
				t->bytes_done += proto_chunk_plain_len(o->size,
				    t->chunk_size, c);
			}
		if (o->n_done == o->n_chunks)
			t->objects_done++;
		o->restored = o->n_done > 0;
		restored += o->n_done;
		transfer_advance_prefix(t, o);
	}
	return (int)UTIL_MIN(restored, (uint64_t)INT32_MAX);
}
