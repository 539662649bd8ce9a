/*
 * libFuzzer harness for the receiver's progress files
 * (receiver/progress.c): its own file, but read after a crash as
 * carefully as anything from the wire.  Any bytes as staging/<id>/progress:
 * the header is peeked, and, for a transfer of the geometry it names (up
 * to 64 objects), the whole file is loaded; never a crash, and every
 * chunk it restores lies inside its object.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "receiver/recv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/sluice-fuzz-progress.XXXXXX";
static int dfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transfer t;
	struct recv r;
	uint8_t key_id[PROTO_KEYID_LEN];
	uint32_t count, chunk, i;
	uint64_t bytes;
	uint16_t symbol;
	bool have_key;
	int fd;

	if (dfd < 0) {
		if (mkdtemp(dir) == NULL)
			abort();
		dfd = open(dir, O_RDONLY | O_DIRECTORY);
	}
	fd = openat(dfd, "progress", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || util_write_all(fd, data, size) != 0)
		abort();
	close(fd);
	if (progress_peek(dfd, &count, &bytes, &chunk, &symbol, key_id,
	    &have_key) != 0 || count > 64)
		return 0;
	memset(&r, 0, sizeof(r));
	memset(&t, 0, sizeof(t));
	t.objects = calloc(count, sizeof(*t.objects));
	for (i = 0; i < count; i++)
		t.objects[i].size = UINT64_MAX;
	t.object_count = count;
	t.transfer_bytes = bytes;
	t.chunk_size = chunk;
	t.symbol_size = symbol;
	t.dirfd = dfd;
	t.state = TS_RECEIVING;
	/* The file names the transfer it belongs to; take it at its word. */
	{
		const char *nl = memchr(data, '\n', size);

		if (nl != NULL && (size_t)(data + size - (const uint8_t *)nl) >
		    17) {
			memcpy(t.name, nl + 1, 16);
			t.name[16] = '\0';
		}
	}
	if (progress_load(&r, &t) >= 0)
		for (i = 0; i < count; i++)
			if (t.objects[i].n_done > t.objects[i].n_chunks)
				abort();
	transfer_free_objects(&t);
	return 0;
}
