/*
 * A transfer's data: object sizes, chunk bitmaps, written prefixes.  No
 * state changes, no I/O, no logging: lifecycle.c, assemble.c, progress.c
 * and verify.c all use these, and this file calls none of them.
 */
#include "receiver/recv.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
bit(const uint8_t *map, uint32_t i)
{
	return (map[i / 8] & (1u << (i % 8))) != 0;
}

bool
transfer_chunk_is_done(const struct transfer *t, uint32_t object,
    uint32_t chunk)
{
	const struct object *o;

	if (object >= t->object_count)
		return false;
	o = &t->objects[object];
	return o->done != NULL && chunk < o->n_chunks && bit(o->done, chunk);
}

bool
transfer_object_size(struct transfer *t, uint32_t object, uint64_t size)
{
	struct object *o;

	if (object >= t->object_count)
		return false;
	o = &t->objects[object];
	if (o->size != UINT64_MAX)
		return o->size == size;
	if (size > t->transfer_bytes)
		return false;
	o->n_chunks = proto_chunk_count(size, t->chunk_size);
	if (o->n_chunks > 0) {
		o->done = calloc((o->n_chunks + 7) / 8, 1);
		if (o->done == NULL) {
			o->n_chunks = 0;
			return false;
		}
	} else {
		t->objects_done++;
	}
	o->size = size;
	return true;
}

bool
transfer_mark_chunk(struct transfer *t, uint32_t object, uint32_t chunk,
    uint32_t plain_len)
{
	struct object *o = &t->objects[object];

	if (bit(o->done, chunk))
		return false;
	o->done[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
	o->n_done++;
	if (chunk == o->prefix)
		transfer_advance_prefix(t, o);
	o->dirty = true;
	t->unsaved = true;
	t->bytes_done += plain_len;
	if (o->n_done == o->n_chunks)
		t->objects_done++;
	return true;
}

void
transfer_reset_object(struct transfer *t, uint32_t object)
{
	struct object *o;
	uint32_t c;

	if (object >= t->object_count)
		return;
	o = &t->objects[object];
	if (o->done == NULL)
		return;
	if (o->n_done == o->n_chunks)
		t->objects_done--;
	for (c = 0; c < o->n_chunks; c++)
		if (bit(o->done, c))
			t->bytes_done -= proto_chunk_plain_len(o->size,
			    t->chunk_size, c);
	t->prefix_bytes -= UTIL_MIN((uint64_t)o->prefix * t->chunk_size,
	    o->size);
	t->prefix_queued = 0;
	memset(o->done, 0, (o->n_chunks + 7) / 8);
	o->n_done = 0;
	o->prefix = 0;
	o->dirty = true;
	o->restored = false;
	t->unsaved = true;
}

void
transfer_advance_prefix(struct transfer *t, struct object *o)
{
	uint64_t before = UTIL_MIN((uint64_t)o->prefix * t->chunk_size,
	    o->size);

	while (o->prefix < o->n_chunks && bit(o->done, o->prefix))
		o->prefix++;
	t->prefix_bytes += UTIL_MIN((uint64_t)o->prefix * t->chunk_size,
	    o->size) - before;
}

bool
transfer_all_done(const struct transfer *t)
{
	return t->manifest != NULL && t->objects_done == t->object_count;
}

bool
transfer_next_missing(const struct object *o, uint32_t *c, uint32_t *start)
{
	while (*c < o->n_chunks && bit(o->done, *c))
		(*c)++;
	if (*c >= o->n_chunks)
		return false;
	*start = *c;
	while (*c < o->n_chunks && !bit(o->done, *c))
		(*c)++;
	return true;
}

void
transfer_wait_jobs(struct transfer *t)
{
	/* Rare (a transfer ending while a chunk of it is with a worker) and
	 * short (one chunk's decode and write). */
	while (atomic_load(&t->jobs_inflight) > 0)
		usleep(100);
}

void
transfer_free_objects(struct transfer *t)
{
	uint32_t i;

	for (i = 0; t->objects != NULL && i < t->object_count; i++)
		free(t->objects[i].done);
	free(t->objects);
	t->objects = NULL;
}
