/*
 * libFuzzer harness for operator requests (common/request.c): the
 * receiver parses files the CLI wrote.  Any bytes: parse; what parses is
 * written back and must parse to the same request.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/request.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/sluice-fuzz-request.XXXXXX";
static bool made;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request rq, again;
	char err[256], name[64], path[300];
	uint8_t *buf;
	size_t len;

	if (request_parse((const char *)data, size, &rq, err,
	    sizeof(err)) != 0)
		return 0;
	if (!made && mkdtemp(dir) == NULL)
		abort();
	made = true;
	if (request_write(dir, &rq, name, sizeof(name)) != 0)
		return 0; /* too long to write back: fine */
	snprintf(path, sizeof(path), "%s/%s.req", dir, name);
	if (util_read_file(path, 8192, &buf, &len) != 0)
		abort();
	unlink(path);
	if (request_parse((const char *)buf, len, &again, err,
	    sizeof(err)) != 0 || again.action != rq.action ||
	    again.transfer != rq.transfer || again.override != rq.override ||
	    strcmp(again.reason, rq.reason) != 0 ||
	    strcmp(again.signature, rq.signature) != 0)
		abort();
	free(buf);
	return 0;
}
