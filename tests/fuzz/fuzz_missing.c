/*
 * libFuzzer harness for missing lists (PROTOCOL.md appendix A): the
 * sender reads a file an operator carried over from the receiver
 * (sender_filter_load).  Any bytes: load, never crash.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "sender/send.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[] = "/tmp/sluice-fuzz-missing.XXXXXX";
static int fd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sender_filter *f;
	char *name, *version, err[256];
	uint64_t id;

	if (fd < 0 && (fd = mkstemp(path)) < 0)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) !=
	    (ssize_t)size)
		abort();
	f = sender_filter_load(path, &id, &name, &version, err, sizeof(err));
	if (f != NULL) {
		free(name);
		free(version);
		sender_filter_free(f);
	}
	return 0;
}
