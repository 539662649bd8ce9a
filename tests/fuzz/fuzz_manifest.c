/*
 * libFuzzer harness for the manifest parser: the pull parser alone, then
 * the full parse into memory (common/manifest.c) with small limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/manifest.h"
#include "proto/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct manifest_limits lim = { 64, 256, 1ull << 30 };
	struct pman_cursor c;
	struct pman_line l;
	struct manifest *m = NULL;
	const char *reason;
	char err[256];
	int n = 0;

	pman_init(&c, data, size);
	while (pman_next(&c, &l) == PMAN_OK && n++ < 100000) {
		if (l.kind == PMAN_FILE &&
		    (l.path < (const char *)data ||
		    l.path + l.path_len > (const char *)data + size))
			abort();
	}
	if (manifest_parse(data, size, &lim, &m, &reason, err,
	    sizeof(err)) == 0) {
		if (m->text_len > size || m->n_files > lim.max_files)
			abort();
		manifest_free(m);
	}
	return 0;
}
