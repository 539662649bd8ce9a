/*
 * libFuzzer harness for the logfmt parser (common/logfmt.c): parse any
 * bytes; what parses must survive escape -> parse unchanged, and the
 * iterator with a small value buffer must never overrun it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct logfmt_record rec, again;
static char line[LOGFMT_MAX_TEXT * 5];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logfmt_iter it;
	const char *key;
	size_t klen, vlen, i, off = 0;
	char small[8];

	logfmt_iter_init(&it, (const char *)data, size);
	while (logfmt_next(&it, &key, &klen, small, sizeof(small), &vlen) ==
	    1) {
		if (vlen >= sizeof(small) || strlen(small) != vlen ||
		    key < (const char *)data ||
		    key + klen > (const char *)data + size)
			abort();
	}
	if (logfmt_parse(&rec, (const char *)data, size) != 0) {
		if (rec.n != 0)
			abort();
		return 0;
	}
	for (i = 0; i < rec.n; i++) {
		char esc[LOGFMT_MAX_TEXT * 4 + 8];

		logfmt_escape(esc, sizeof(esc), rec.val[i]);
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    "%s%s=%s", i ? " " : "", rec.key[i], esc);
	}
	if (off >= sizeof(line) || logfmt_parse(&again, line, off) != 0 ||
	    again.n != rec.n)
		abort();
	for (i = 0; i < rec.n; i++)
		if (strcmp(rec.key[i], again.key[i]) != 0 ||
		    strcmp(rec.val[i], again.val[i]) != 0)
			abort();
	return 0;
}
