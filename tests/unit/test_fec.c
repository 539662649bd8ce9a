/*
 * Reed-Solomon: every erasure pattern up to m for small codes, random
 * patterns for the code sizes the sender uses, and the failure cases.
 * Randomised parts print their seed; SLUICE_TEST_SEED replays one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fec.h"

static uint64_t seed;

static uint64_t
rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

struct code {
	unsigned k, m;
	size_t len;
	uint8_t *orig[FEC_MAX_SYMBOLS];
	uint8_t *work[FEC_MAX_SYMBOLS];
	uint8_t present[FEC_MAX_SYMBOLS];
};

static void
code_init(struct fec *f, struct code *c, unsigned k, unsigned m, size_t len)
{
	unsigned i;
	size_t j;

	memset(c, 0, sizeof(*c));
	c->k = k;
	c->m = m;
	c->len = len;
	for (i = 0; i < k + m; i++) {
		c->orig[i] = malloc(len);
		c->work[i] = malloc(len);
	}
	for (i = 0; i < k; i++)
		for (j = 0; j < len; j++)
			c->orig[i][j] = (uint8_t)rnd();
	assert_int_equal(fec_encode(f, k, m, len, c->orig, c->orig + k), 0);
}

static void
code_free(struct code *c)
{
	unsigned i;

	for (i = 0; i < c->k + c->m; i++) {
		free(c->orig[i]);
		free(c->work[i]);
	}
}

/* Erases the symbols in mask (bit i = symbol i), decodes, compares. */
static void
check_pattern(struct fec *f, struct code *c, const uint8_t *erased)
{
	unsigned i;

	for (i = 0; i < c->k + c->m; i++) {
		c->present[i] = !erased[i];
		if (erased[i])
			memset(c->work[i], 0xee, c->len);
		else
			memcpy(c->work[i], c->orig[i], c->len);
	}
	assert_int_equal(fec_decode(f, c->k, c->m, c->len, c->work,
	    c->present), 0);
	for (i = 0; i < c->k; i++)
		if (memcmp(c->work[i], c->orig[i], c->len) != 0)
			fail_msg("k=%u m=%u: source %u wrong", c->k, c->m, i);
}

/* Every subset of at most m of the k + m symbols. */
static void
all_patterns(unsigned k, unsigned m)
{
	struct fec *f = fec_new();
	struct code c;
	unsigned n = k + m, mask, i, count;
	uint8_t erased[FEC_MAX_SYMBOLS];
	unsigned tried = 0;

	code_init(f, &c, k, m, 37);
	for (mask = 0; mask < (1u << n); mask++) {
		count = (unsigned)__builtin_popcount(mask);
		if (count > m)
			continue;
		for (i = 0; i < n; i++)
			erased[i] = (mask >> i) & 1;
		check_pattern(f, &c, erased);
		tried++;
	}
	assert_true(tried > 0);
	code_free(&c);
	fec_free(f);
}

static void
test_all_patterns_small(void **state)
{
	all_patterns(1, 1);
	all_patterns(1, 3);
	all_patterns(4, 2);
	all_patterns(6, 3);
	all_patterns(8, 4);
	all_patterns(10, 5);
}

static void
random_patterns(unsigned k, unsigned m, size_t len, unsigned rounds)
{
	struct fec *f = fec_new();
	struct code c;
	uint8_t erased[FEC_MAX_SYMBOLS];
	unsigned r, e, i;

	code_init(f, &c, k, m, len);
	for (r = 0; r < rounds; r++) {
		memset(erased, 0, sizeof(erased));
		e = r == 0 ? m : (unsigned)(rnd() % (m + 1));
		for (i = 0; i < e;) {
			unsigned x = (unsigned)(rnd() % (k + m));

			if (!erased[x]) {
				erased[x] = 1;
				i++;
			}
		}
		check_pattern(f, &c, erased);
	}
	code_free(&c);
	fec_free(f);
}

static void
test_random_patterns(void **state)
{
	random_patterns(127, 34, 1428, 40);  /* 1472-byte datagrams */
	random_patterns(128, 34, 8928, 5);   /* jumbo */
	random_patterns(200, 55, 7, 20);
	random_patterns(3, 3, 1, 20);
}

/* All m repair symbols lost together with sources: still decodes when at
 * least k remain, whichever they are. */
static void
test_only_repairs_left(void **state)
{
	struct fec *f = fec_new();
	struct code c;
	uint8_t erased[FEC_MAX_SYMBOLS] = { 0 };
	unsigned i;

	code_init(f, &c, 5, 5, 64);
	for (i = 0; i < 5; i++)
		erased[i] = 1; /* every source gone */
	check_pattern(f, &c, erased);
	code_free(&c);
	fec_free(f);
}

static void
test_too_many_erasures(void **state)
{
	struct fec *f = fec_new();
	struct code c;
	unsigned i;

	code_init(f, &c, 8, 4, 16);
	for (i = 0; i < 12; i++) {
		memcpy(c.work[i], c.orig[i], 16);
		c.present[i] = i >= 5; /* 5 lost, m = 4 */
	}
	assert_int_equal(fec_decode(f, 8, 4, 16, c.work, c.present), -ENOSPC);
	code_free(&c);
	fec_free(f);
}

static void
test_bad_params(void **state)
{
	struct fec *f = fec_new();
	uint8_t buf[16], *p[FEC_MAX_SYMBOLS], present[FEC_MAX_SYMBOLS];
	unsigned i;

	for (i = 0; i < FEC_MAX_SYMBOLS; i++) {
		p[i] = buf;
		present[i] = 1;
	}
	assert_int_equal(fec_encode(f, 0, 1, 16, p, p), -EINVAL);
	assert_int_equal(fec_encode(f, 200, 56, 16, p, p), -EINVAL);
	assert_int_equal(fec_encode(f, 4, 2, 0, p, p), -EINVAL);
	assert_int_equal(fec_decode(f, 0, 1, 16, p, present), -EINVAL);
	assert_int_equal(fec_decode(f, 255, 1, 16, p, present), -EINVAL);
	/* No repair at all: nothing to do when all sources are present. */
	assert_int_equal(fec_encode(f, 4, 0, 16, p, p), 0);
	assert_int_equal(fec_decode(f, 4, 0, 16, p, present), 0);
	fec_free(f);
	fec_free(NULL);
}

/* Many (k, m) in turn: the table cache must never hand out stale tables. */
static void
test_cache_churn(void **state)
{
	unsigned k;

	for (k = 1; k <= 20; k++)
		random_patterns(k, 2 + k / 4, 33, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_patterns_small),
		cmocka_unit_test(test_random_patterns),
		cmocka_unit_test(test_only_repairs_left),
		cmocka_unit_test(test_too_many_erasures),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_cache_churn),
	};
	const char *env = getenv("SLUICE_TEST_SEED");

	seed = env != NULL ? strtoull(env, NULL, 0) : 0x5eed5eedull;
	if (seed == 0)
		seed = 1;
	printf("test_fec: seed %llu\n", (unsigned long long)seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
