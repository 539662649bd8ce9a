/*
 * libFuzzer harness for the finished set's file (receiver/finished.c):
 * any bytes as the file; opening must not crash, and every id it then
 * holds must be found again after an add and a reopen.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "receiver/finished.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/sluice-fuzz-finished.XXXXXX";
static int dfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct finished *f;
	uint8_t v;
	int fd, rc;

	if (dfd < 0) {
		if (mkdtemp(dir) == NULL)
			abort();
		dfd = open(dir, O_RDONLY | O_DIRECTORY);
	}
	(void)unlinkat(dfd, "finished", 0);
	fd = openat(dfd, "finished", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || util_write_all(fd, data, size) != 0)
		abort();
	close(fd);
	f = finished_open(dfd, "finished", &rc);
	if (f == NULL)
		return 0;
	if (finished_add(f, 0x0123456789abcdefull, FINISHED_RELEASED, 1) != 0)
		abort();
	finished_close(f);
	f = finished_open(dfd, "finished", &rc);
	if (f == NULL || !finished_get(f, 0x0123456789abcdefull, &v, NULL))
		abort();
	finished_close(f);
	return 0;
}
