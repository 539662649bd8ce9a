/*
 * Progress that survives a restart.  Once a second, for each transfer
 * with chunks written since the last save, the object files written to are
 * fdatasync'ed and only then is <staging>/<id>/progress replaced
 * (atomically, fsynced): a chunk is recorded as done only after its bytes
 * are durable.  When a transfer is seen again after a restart, its
 * progress file restores the object sizes and chunk bitmaps, so chunks
 * already written are not needed again.  The file is our own, but it is
 * read as carefully as anything else: any doubt, and the transfer starts
 * afresh.
 *
 *   sluice-progress 1
 *   <id> <object_count> <transfer_bytes> <chunk_size> <symbol_size>
 *   o <object> <size> <bitmap as hex>        (objects whose size is known)
 *   end
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_FILE "progress"

void
progress_save(struct recv *r, struct transfer *t)
{
	char name[32], *buf;
	size_t cap = 256, off = 0;
	uint32_t i;
	int fd;

	if (!t->unsaved || t->state == T_VERIFYING)
		return;
	for (i = 0; i < t->object_count; i++) {
		struct object *o = &t->objects[i];

		if (!o->dirty)
			continue;
		snprintf(name, sizeof(name), "o%u", i);
		fd = openat(t->dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fdatasync(fd) < 0) {
			log_warn("transfer %s: syncing %s", t->name, name);
			if (fd >= 0)
				close(fd);
			return; /* keep the old record; try again later */
		}
		close(fd);
		o->dirty = false;
	}
	for (i = 0; i < t->object_count; i++)
		if (t->objects[i].size != UINT64_MAX)
			cap += 64 + (size_t)(t->objects[i].n_chunks + 7) / 8 * 2;
	buf = malloc(cap);
	if (buf == NULL)
		return;
	off += (size_t)snprintf(buf + off, cap - off, "sluice-progress 1\n%s %u "
	    "%" PRIu64 " %u %u\n", t->name, t->object_count,
	    t->transfer_bytes, t->chunk_size, t->symbol_size);
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
	fd = openat(t->dirfd, PROGRESS_FILE ".tmp", O_WRONLY | O_CREAT |
	    O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && util_write_all(fd, buf, off) == 0 && fsync(fd) == 0 &&
	    renameat(t->dirfd, PROGRESS_FILE ".tmp", t->dirfd,
	    PROGRESS_FILE) == 0 && fsync(t->dirfd) == 0)
		t->unsaved = false;
	else
		log_warn("transfer %s: saving progress", t->name);
	if (fd >= 0)
		close(fd);
	free(buf);
}

int
progress_load(struct recv *r, struct transfer *t)
{
	uint8_t *buf = NULL;
	size_t len;
	char *line, *save, id[32];
	unsigned count, chunk, symbol, lineno = 0;
	uint64_t bytes, restored = 0;
	bool end = false;
	int fd, rc = -1;

	fd = openat(t->dirfd, PROGRESS_FILE, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd < 0)
		return -1;
	close(fd);
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s/" PROGRESS_FILE,
		    r->conf->staging_dir, t->name);
		if (util_read_file(path, 256u << 20, &buf, &len) != 0)
			return -1;
	}
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
			    &bytes, &chunk, &symbol) != 5 ||
			    strcmp(id, t->name) != 0 ||
			    count != t->object_count ||
			    bytes != t->transfer_bytes ||
			    chunk != t->chunk_size || symbol != t->symbol_size)
				goto out;
		} else if (strcmp(line, "end") == 0) {
			end = true;
		} else {
			if (strlen(line) >= sizeof(bits) ||
			    sscanf(line, "o %u %" SCNu64 " %s", &obj, &size,
			    bits) != 3 || obj >= t->object_count ||
			    !transfer_object_size(r, t, obj, size))
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
	if (!end)
		goto out;
	rc = 0;
out:
	free(buf);
	if (rc != 0)
		return -1;
	/* Count what was restored; complete objects count as done. */
	for (count = 0; count < t->object_count; count++) {
		struct object *o = &t->objects[count];
		uint32_t c;

		if (o->done == NULL)
			continue;
		for (c = 0; c < o->n_chunks; c++)
			if (o->done[c / 8] & (1u << (c % 8))) {
				o->n_done++;
				t->bytes_done += proto_chunk_plain_len(o->size,
				    t->chunk_size, c);
			}
		if (o->n_done == o->n_chunks)
			t->objects_done++;
		restored += o->n_done;
	}
	return (int)UTIL_MIN(restored, (uint64_t)INT32_MAX);
}
