/*
 * finished-fill: fills and measures a receiver's set of finished transfer
 * ids (receiver/finished.c), for tests and for checking its budget of at
 * most 16 MiB and well under a second for one million ids.
 *
 *   finished-fill DIR COUNT [SEED]   append COUNT random ids (RELEASED)
 *                                    to DIR/finished; the seed is printed
 *   finished-fill --measure DIR      load DIR/finished and print
 *                                    ids=N load_ms=X rss_kib=Y
 *
 * rss_kib is VmRSS after loading minus VmRSS before, so the tool's own
 * baseline is left out.  Exit 0 on success, 1 on error, 2 on bad usage.
 */
#include "common/log.h"
#include "common/util.h"
#include "receiver/finished.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILL_NAME	"finished"
#define FILL_BATCH	(1u << 16)

static void
usage(void)
{
	fprintf(stderr, "usage: finished-fill DIR COUNT [SEED]\n"
	    "       finished-fill --measure DIR\n");
	exit(2);
}

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* VmRSS of this process in KiB, or -1. */
static long
rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *fp;

	fp = fopen("/proc/self/status", "re");
	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

static struct finished *
open_set(const char *dir, int *dirfd)
{
	struct finished *f;
	int rc;

	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		fatal("%s", dir);
	f = finished_open(*dirfd, FILL_NAME, &rc);
	if (f == NULL) {
		errno = -rc;
		fatal("%s/%s", dir, FILL_NAME);
	}
	return f;
}

static int
measure(const char *dir)
{
	struct finished *f;
	uint64_t t0, t1;
	long before, after;
	int dirfd;

	before = rss_kib();
	t0 = util_now_ns();
	f = open_set(dir, &dirfd);
	t1 = util_now_ns();
	after = rss_kib();
	if (before < 0 || after < 0)
		fatalx("cannot read VmRSS from /proc/self/status");
	printf("ids=%zu load_ms=%.1f rss_kib=%ld\n", finished_count(f),
	    (double)(t1 - t0) / 1e6, after - before);
	finished_close(f);
	close(dirfd);
	return 0;
}

static int
fill(const char *dir, uint64_t count, uint64_t seed)
{
	struct finished *f;
	uint64_t *ids, s = seed, done;
	size_t i, n;
	int dirfd, rc;

	printf("finished-fill: seed=%" PRIu64 "\n", seed);
	f = open_set(dir, &dirfd);
	ids = malloc(FILL_BATCH * sizeof(*ids));
	if (ids == NULL)
		fatal("malloc");
	for (done = 0; done < count; done += n) {
		n = (size_t)UTIL_MIN(count - done, (uint64_t)FILL_BATCH);
		for (i = 0; i < n; i++)
			while ((ids[i] = splitmix(&s)) == 0)
				;
		rc = finished_add_many(f, ids, n, FINISHED_RELEASED, 0);
		if (rc < 0) {
			errno = -rc;
			fatal("%s/%s: append", dir, FILL_NAME);
		}
	}
	printf("finished-fill: ids=%zu\n", finished_count(f));
	free(ids);
	finished_close(f);
	close(dirfd);
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t count, seed;
	char *end;

	log_init("finished-fill", 0);
	if (argc == 3 && strcmp(argv[1], "--measure") == 0)
		return measure(argv[2]);
	if (argc != 3 && argc != 4)
		usage();
	errno = 0;
	count = strtoull(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[2] || argv[2][0] == '-')
		usage();
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	if (argc == 4) {
		seed = strtoull(argv[3], &end, 0);
		if (errno != 0 || *end != '\0' || end == argv[3])
			usage();
	}
	return fill(argv[1], count, seed);
}
