/*
 * The set of finished transfer ids: what is added is found again, after a
 * restart too; the file takes one record per id; a torn tail, a corrupt
 * record and a file full of repeats are survived; the table grows past its
 * presized capacity without false positives.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "proto/bytes.h"
#include "receiver/finished.h"

#define NAME "finished"

struct fixture {
	char dir[64];
	int dirfd;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice-test-finished.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->dirfd < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->dirfd);
	util_rmtree(fx->dir);
	free(fx);
	return 0;
}

static struct finished *
reopen(struct fixture *fx)
{
	struct finished *f;
	int rc = 1;

	f = finished_open(fx->dirfd, NAME, &rc);
	assert_non_null(f);
	assert_int_equal(rc, 0);
	return f;
}

static off_t
file_size(struct fixture *fx)
{
	struct stat st;

	assert_int_equal(fstatat(fx->dirfd, NAME, &st, 0), 0);
	return st.st_size;
}

/* A record as finished.h describes it, built independently of the module. */
static void
put_record(uint8_t *p, uint64_t id, uint8_t verdict, uint8_t reason)
{
	struct pwr w;

	pwr_init(&w, p, FINISHED_RECORD_SIZE);
	pwr_u64(&w, id);
	pwr_u8(&w, verdict);
	pwr_u8(&w, reason);
	pwr_u16(&w, 0);
	pwr_u32(&w, (uint32_t)crc32(0, p, 12));
}

static void
write_file(struct fixture *fx, const uint8_t *buf, size_t len)
{
	int fd;

	fd = openat(fx->dirfd, NAME, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, buf, len), 0);
	close(fd);
}

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
test_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint8_t v = 0, r = 0;
	struct stat st;

	assert_int_equal(fstatat(fx->dirfd, NAME, &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(finished_count(f), 0);
	assert_false(finished_get(f, 42, &v, &r));
	assert_int_equal(finished_add(f, 42, FINISHED_RELEASED, 7), 0);
	assert_true(finished_get(f, 42, &v, &r));
	assert_int_equal(v, FINISHED_RELEASED);
	assert_int_equal(r, 7);
	assert_true(finished_get(f, 42, NULL, NULL));
	assert_false(finished_get(f, 43, NULL, NULL));
	assert_false(finished_get(f, 0, NULL, NULL));
	assert_int_equal(finished_add(f, 0, FINISHED_RELEASED, 0), -EINVAL);
	assert_int_equal(finished_add(f, 1, 0, 0), -EINVAL);
	assert_int_equal(finished_add(f, 1, 4, 0), -EINVAL);
	assert_int_equal(finished_count(f), 1);
	finished_close(f);
	finished_close(NULL);
}

static void
test_persistence(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint8_t v, r;
	uint64_t id;

	for (id = 1; id <= 300; id++)
		assert_int_equal(finished_add(f, id * 0x10001,
		    (uint8_t)(id % 3 + 1), (uint8_t)id), 0);
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), 300);
	for (id = 1; id <= 300; id++) {
		v = r = 0;
		assert_true(finished_get(f, id * 0x10001, &v, &r));
		assert_int_equal(v, id % 3 + 1);
		assert_int_equal(r, (uint8_t)id);
	}
	assert_int_equal(file_size(fx), 300 * FINISHED_RECORD_SIZE);
	finished_close(f);
}

static void
test_verdict_kept(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint8_t v, r;

	assert_int_equal(finished_add(f, 1, FINISHED_RELEASED, 0), 0);
	assert_int_equal(finished_add(f, 2, FINISHED_REJECTED, 255), 0);
	assert_int_equal(finished_add(f, UINT64_MAX, FINISHED_DUPLICATE, 9),
	    0);
	finished_close(f);
	f = reopen(fx);
	assert_true(finished_get(f, 1, &v, &r));
	assert_int_equal(v, FINISHED_RELEASED);
	assert_int_equal(r, 0);
	assert_true(finished_get(f, 2, &v, NULL));
	assert_int_equal(v, FINISHED_REJECTED);
	assert_true(finished_get(f, 2, NULL, &r));
	assert_int_equal(r, 255);
	assert_true(finished_get(f, UINT64_MAX, &v, &r));
	assert_int_equal(v, FINISHED_DUPLICATE);
	assert_int_equal(r, 9);
	finished_close(f);
}

static void
test_present_not_appended(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint64_t ids[] = { 5, 6, 5, 7, 6 };
	uint8_t v, r;

	assert_int_equal(finished_add(f, 5, FINISHED_REJECTED, 3), 0);
	assert_int_equal(file_size(fx), FINISHED_RECORD_SIZE);
	/* The first verdict stays. */
	assert_int_equal(finished_add(f, 5, FINISHED_RELEASED, 4), 0);
	assert_int_equal(file_size(fx), FINISHED_RECORD_SIZE);
	assert_true(finished_get(f, 5, &v, &r));
	assert_int_equal(v, FINISHED_REJECTED);
	assert_int_equal(r, 3);
	/* Repeats within a batch and against the set are written once. */
	assert_int_equal(finished_add_many(f, ids, UTIL_ARRAY_LEN(ids),
	    FINISHED_RELEASED, 1), 0);
	assert_int_equal(finished_count(f), 3);
	assert_int_equal(file_size(fx), 3 * FINISHED_RECORD_SIZE);
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), 3);
	assert_int_equal(file_size(fx), 3 * FINISHED_RECORD_SIZE);
	finished_close(f);
}

static void
cut_file(struct fixture *fx, off_t by)
{
	int fd;

	fd = openat(fx->dirfd, NAME, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, file_size(fx) - by), 0);
	close(fd);
}

static void
test_torn_tail(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint64_t id;

	for (id = 1; id <= 10; id++)
		assert_int_equal(finished_add(f, id, FINISHED_RELEASED, 0), 0);
	finished_close(f);
	cut_file(fx, 5);
	f = reopen(fx);
	assert_int_equal(finished_count(f), 9);
	for (id = 1; id <= 9; id++)
		assert_true(finished_get(f, id, NULL, NULL));
	assert_false(finished_get(f, 10, NULL, NULL));
	assert_int_equal(file_size(fx), 9 * FINISHED_RECORD_SIZE);
	/* Appends start on a record boundary again. */
	assert_int_equal(finished_add(f, 10, FINISHED_RELEASED, 0), 0);
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), 10);
	assert_int_equal(file_size(fx), 10 * FINISHED_RECORD_SIZE);
	finished_close(f);
}

/* A whole last record with a bad check value is a torn write too. */
static void
test_bad_last_record(void **state)
{
	struct fixture *fx = *state;
	uint8_t buf[4 * FINISHED_RECORD_SIZE];
	struct finished *f;
	uint64_t id;

	for (id = 1; id <= 4; id++)
		put_record(buf + (id - 1) * FINISHED_RECORD_SIZE, id,
		    FINISHED_RELEASED, 0);
	buf[sizeof(buf) - 1] ^= 1;
	write_file(fx, buf, sizeof(buf));
	f = reopen(fx);
	assert_int_equal(finished_count(f), 3);
	assert_false(finished_get(f, 4, NULL, NULL));
	assert_int_equal(file_size(fx), 3 * FINISHED_RECORD_SIZE);
	finished_close(f);
}

static void
test_flipped_bit(void **state)
{
	struct fixture *fx = *state;
	uint8_t buf[10 * FINISHED_RECORD_SIZE];
	struct finished *f;
	uint64_t id;

	for (id = 1; id <= 10; id++)
		put_record(buf + (id - 1) * FINISHED_RECORD_SIZE, id,
		    FINISHED_RELEASED, 0);
	buf[4 * FINISHED_RECORD_SIZE + 7] ^= 0x10;	/* id 5 */
	write_file(fx, buf, sizeof(buf));
	f = reopen(fx);
	assert_int_equal(finished_count(f), 9);
	for (id = 1; id <= 10; id++)
		assert_int_equal(finished_get(f, id, NULL, NULL), id != 5);
	assert_false(finished_get(f, 5 ^ 0x10, NULL, NULL));
	/* Skipped, not cut: the file is left as it was. */
	assert_int_equal(file_size(fx), sizeof(buf));
	finished_close(f);
}

static void
test_compaction(void **state)
{
	struct fixture *fx = *state;
	uint8_t buf[100 * FINISHED_RECORD_SIZE];
	struct finished *f;
	uint8_t v, r;
	uint64_t id;
	size_t i, n = 0;
	struct stat st;

	/* 40 distinct ids, then 60 more records of id 1000. */
	for (id = 1000; id < 1040; id++)
		put_record(buf + n++ * FINISHED_RECORD_SIZE, id,
		    FINISHED_REJECTED, (uint8_t)id);
	for (i = 0; i < 60; i++)
		put_record(buf + n++ * FINISHED_RECORD_SIZE, 1000,
		    FINISHED_RELEASED, 1);
	write_file(fx, buf, sizeof(buf));
	f = reopen(fx);
	assert_int_equal(finished_count(f), 40);
	assert_int_equal(file_size(fx), 40 * FINISHED_RECORD_SIZE);
	assert_int_equal(faccessat(fx->dirfd, NAME ".tmp", F_OK, 0), -1);
	assert_int_equal(fstatat(fx->dirfd, NAME, &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* The first record of an id wins. */
	assert_true(finished_get(f, 1000, &v, &r));
	assert_int_equal(v, FINISHED_REJECTED);
	assert_int_equal(r, (uint8_t)1000);
	/* The set appends to the new file. */
	assert_int_equal(finished_add(f, 2000, FINISHED_RELEASED, 0), 0);
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), 41);
	for (id = 1000; id < 1040; id++)
		assert_true(finished_get(f, id, NULL, NULL));
	assert_true(finished_get(f, 2000, NULL, NULL));
	assert_int_equal(file_size(fx), 41 * FINISHED_RECORD_SIZE);
	finished_close(f);
}

/* A quarter exactly is not "more than 25%": no rewrite. */
static void
test_no_compaction_at_quarter(void **state)
{
	struct fixture *fx = *state;
	uint8_t buf[8 * FINISHED_RECORD_SIZE];
	struct finished *f;
	uint64_t id;

	for (id = 1; id <= 6; id++)
		put_record(buf + (id - 1) * FINISHED_RECORD_SIZE, id,
		    FINISHED_RELEASED, 0);
	put_record(buf + 6 * FINISHED_RECORD_SIZE, 1, FINISHED_RELEASED, 0);
	put_record(buf + 7 * FINISHED_RECORD_SIZE, 2, FINISHED_RELEASED, 0);
	write_file(fx, buf, sizeof(buf));
	f = reopen(fx);
	assert_int_equal(finished_count(f), 6);
	assert_int_equal(file_size(fx), sizeof(buf));
	finished_close(f);
}

static void
test_growth(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	uint64_t *ids, s = 0x5eed, x;
	size_t i, n = 100000, fp = 0;

	ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (i = 0; i < n; i++)
		while ((ids[i] = splitmix(&s)) == 0)
			;
	assert_int_equal(finished_add_many(f, ids, n, FINISHED_RELEASED, 2),
	    0);
	assert_int_equal(finished_count(f), n);
	for (i = 0; i < n; i++)
		assert_true(finished_get(f, ids[i], NULL, NULL));
	/* Ids from another stream: 64-bit collisions would be a bug here. */
	s = 0xfeed;
	for (i = 0; i < n; i++) {
		x = splitmix(&s);
		fp += finished_get(f, x, NULL, NULL);
	}
	assert_int_equal(fp, 0);
	/* And one at a time, past the presized capacity after a reopen. */
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), n);
	for (i = 0; i < 1000; i++)
		assert_int_equal(finished_add(f, (uint64_t)i + 1,
		    FINISHED_DUPLICATE, 0), 0);
	assert_int_equal(finished_count(f), n + 1000);
	for (i = 0; i < n; i++)
		assert_true(finished_get(f, ids[i], NULL, NULL));
	finished_close(f);
	free(ids);
}

/*
 * Random adds, repeats and reopens checked against a plain array.  The
 * seed comes from SLUICE_TEST_SEED or the clock, and is printed.
 */
static void
test_random(void **state)
{
	struct fixture *fx = *state;
	struct finished *f = reopen(fx);
	const char *env = getenv("SLUICE_TEST_SEED");
	uint64_t seed, s, *ids, id;
	uint8_t *verdicts, *reasons, v, r;
	size_t i, k, n = 0, max = 3000;

	seed = env != NULL ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	printf("test_finished: SLUICE_TEST_SEED=%" PRIu64 "\n", seed);
	s = seed;
	ids = calloc(max, sizeof(*ids));
	verdicts = calloc(max, 1);
	reasons = calloc(max, 1);
	assert_true(ids != NULL && verdicts != NULL && reasons != NULL);
	for (i = 0; i < 3 * max; i++) {
		uint64_t op = splitmix(&s) % 100;

		if (op < 2) {
			finished_close(f);
			f = reopen(fx);
			assert_int_equal(finished_count(f), n);
		} else if (op < 30 && n > 0) {
			/* A repeat, with another verdict: the first stays. */
			k = (size_t)(splitmix(&s) % n);
			assert_int_equal(finished_add(f, ids[k],
			    FINISHED_DUPLICATE, 0), 0);
		} else if (n < max) {
			/* Small ids now and then, to crowd the probes. */
			id = splitmix(&s);
			if (op < 50)
				id %= 4 * max;
			if (id == 0 || finished_get(f, id, NULL, NULL))
				continue;
			ids[n] = id;
			verdicts[n] = (uint8_t)(splitmix(&s) % 3 + 1);
			reasons[n] = (uint8_t)splitmix(&s);
			assert_int_equal(finished_add(f, id, verdicts[n],
			    reasons[n]), 0);
			n++;
		}
	}
	finished_close(f);
	f = reopen(fx);
	assert_int_equal(finished_count(f), n);
	assert_int_equal(file_size(fx), (off_t)n * FINISHED_RECORD_SIZE);
	for (k = 0; k < n; k++) {
		assert_true(finished_get(f, ids[k], &v, &r));
		assert_int_equal(v, verdicts[k]);
		assert_int_equal(r, reasons[k]);
	}
	finished_close(f);
	free(ids);
	free(verdicts);
	free(reasons);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_verdict_kept, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_present_not_appended,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_last_record, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_flipped_bit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_compaction_at_quarter,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
