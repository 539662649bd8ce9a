/*
 * Reed-Solomon: encoding checked against a self-contained reference of the
 * Cauchy code (the matrix is wire format, so ISA-L must not drift from
 * it), every erasure pattern up to m for small codes, random patterns for
 * the code sizes the sender uses, odd symbol lengths, and the failure
 * cases.  Decoding must leave received symbols and every repair buffer
 * untouched, and touch nothing at all when it fails.
 *
 * Randomised parts use one xorshift stream; the seed is printed and
 * SLUICE_TEST_SEED=<n> replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fec.h"

#define ERASED_BYTE 0xee
#define REF_PREFIX 256 /* bytes of each repair symbol checked by ref */

static uint64_t seed;
static uint8_t gf_exp[510], gf_log[256];

static uint64_t
rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* GF(2^8) with polynomial 0x11d, generator 2: ISA-L's field. */
static void
gf_setup(void)
{
	unsigned i, x = 1;

	for (i = 0; i < 255; i++) {
		gf_exp[i] = gf_exp[i + 255] = (uint8_t)x;
		gf_log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
	}
}

static uint8_t
ref_mul(uint8_t a, uint8_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return gf_exp[gf_log[a] + gf_log[b]];
}

static uint8_t
ref_inv(uint8_t a)
{
	return gf_exp[255 - gf_log[a]];
}

struct code {
	unsigned k, m;
	size_t len;
	uint8_t *orig[FEC_MAX_SYMBOLS];
	uint8_t *work[FEC_MAX_SYMBOLS];
	uint8_t present[FEC_MAX_SYMBOLS];
};

/* Repair symbol i, byte x: sum over j of data_j[x] / ((k + i) ^ j). */
static void
check_reference(const struct code *c)
{
	size_t x, n = c->len < REF_PREFIX ? c->len : REF_PREFIX;
	unsigned i, j;
	uint8_t acc;

	for (i = 0; i < c->m; i++)
		for (x = 0; x < n; x++) {
			acc = 0;
			for (j = 0; j < c->k; j++)
				acc ^= ref_mul(ref_inv((uint8_t)((c->k + i) ^
				    j)), c->orig[j][x]);
			if (acc != c->orig[c->k + i][x])
				fail_msg("k=%u m=%u: repair %u byte %zu is "
				    "%#x, reference %#x", c->k, c->m, i, x,
				    c->orig[c->k + i][x], acc);
		}
}

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
		assert_non_null(c->orig[i]);
		assert_non_null(c->work[i]);
	}
	for (i = 0; i < k; i++)
		for (j = 0; j < len; j++)
			c->orig[i][j] = (uint8_t)rnd();
	assert_int_equal(fec_encode(f, k, m, len, c->orig, c->orig + k), 0);
	check_reference(c);
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

static void
erase(struct code *c, const uint8_t *erased)
{
	unsigned i;

	for (i = 0; i < c->k + c->m; i++) {
		c->present[i] = !erased[i];
		if (erased[i])
			memset(c->work[i], ERASED_BYTE, c->len);
		else
			memcpy(c->work[i], c->orig[i], c->len);
	}
}

static bool
all_erased(const struct code *c, unsigned i)
{
	size_t x;

	for (x = 0; x < c->len; x++)
		if (c->work[i][x] != ERASED_BYTE)
			return false;
	return true;
}

/* Sources all back, received symbols as they were, lost repairs unread. */
static void
check_recovered(const struct code *c)
{
	unsigned i;

	for (i = 0; i < c->k + c->m; i++)
		if (i < c->k || c->present[i]) {
			if (memcmp(c->work[i], c->orig[i], c->len) != 0)
				fail_msg("k=%u m=%u len=%zu: symbol %u wrong",
				    c->k, c->m, c->len, i);
		} else if (!all_erased(c, i)) {
			fail_msg("k=%u m=%u: lost repair %u written", c->k,
			    c->m, i);
		}
}

/* After a failed decode: every buffer exactly as erase() left it. */
static void
check_untouched(const struct code *c)
{
	unsigned i;

	for (i = 0; i < c->k + c->m; i++)
		if (c->present[i] ? memcmp(c->work[i], c->orig[i],
		    c->len) != 0 : !all_erased(c, i))
			fail_msg("k=%u m=%u: symbol %u written by a failed "
			    "decode", c->k, c->m, i);
}

static void
check_pattern(struct fec *f, struct code *c, const uint8_t *erased)
{
	erase(c, erased);
	assert_int_equal(fec_decode(f, c->k, c->m, c->len, c->work,
	    c->present), 0);
	check_recovered(c);
}

/* Marks e distinct symbols of 0..n-1 erased, the rest present. */
static void
random_erasure(uint8_t *erased, unsigned n, unsigned e)
{
	unsigned i, x;

	memset(erased, 0, FEC_MAX_SYMBOLS);
	for (i = 0; i < e;) {
		x = (unsigned)(rnd() % n);
		if (!erased[x]) {
			erased[x] = 1;
			i++;
		}
	}
}

/*
 * Per code and length: matches the reference, decodes with nothing lost,
 * with the first min(k, m) sources lost, and with m random symbols lost.
 */
static void
test_round_trip(void **state)
{
	static const unsigned codes[][2] = {
		{ 1, 1 }, { 1, 3 }, { 4, 2 }, { 10, 4 }, { 128, 32 },
		{ 200, 55 }, { 254, 1 }, { 1, 254 }, { 127, 128 },
	};
	static const size_t lens[] = { 1, 7, 1428, 8928 };
	uint8_t erased[FEC_MAX_SYMBOLS];
	struct fec *f = fec_new();
	struct code c;
	unsigned i, l, s;

	(void)state;
	assert_non_null(f);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			code_init(f, &c, codes[i][0], codes[i][1], lens[l]);
			memset(erased, 0, sizeof(erased));
			check_pattern(f, &c, erased);
			for (s = 0; s < c.k && s < c.m; s++)
				erased[s] = 1;
			check_pattern(f, &c, erased);
			random_erasure(erased, c.k + c.m, c.m);
			check_pattern(f, &c, erased);
			code_free(&c);
		}
	fec_free(f);
}

/* Every subset of at most m of the k + m symbols. */
static void
all_patterns(unsigned k, unsigned m, size_t len, unsigned expect)
{
	uint8_t erased[FEC_MAX_SYMBOLS] = { 0 };
	unsigned n = k + m, mask, i, tried = 0;
	struct fec *f = fec_new();
	struct code c;

	assert_true(n < 32);
	code_init(f, &c, k, m, len);
	for (mask = 0; mask < (1u << n); mask++) {
		if ((unsigned)__builtin_popcount(mask) > m)
			continue;
		for (i = 0; i < n; i++)
			erased[i] = (mask >> i) & 1;
		check_pattern(f, &c, erased);
		tried++;
	}
	assert_int_equal(tried, expect);
	code_free(&c);
	fec_free(f);
}

/* expect: the sum over e <= m of C(k + m, e) */
static void
test_all_patterns_small(void **state)
{
	(void)state;
	all_patterns(1, 1, 5, 1 + 2);
	all_patterns(1, 3, 1, 1 + 4 + 6 + 4);
	all_patterns(4, 2, 7, 1 + 6 + 15);
	all_patterns(6, 3, 37, 1 + 9 + 36 + 84);
	all_patterns(8, 4, 37, 1 + 12 + 66 + 220 + 495);
	all_patterns(10, 5, 16, 1 + 15 + 105 + 455 + 1365 + 3003);
}

/* rounds patterns of exactly e = m lost, then rounds of 0..m lost. */
static void
random_patterns(unsigned k, unsigned m, size_t len, unsigned rounds)
{
	uint8_t erased[FEC_MAX_SYMBOLS];
	struct fec *f = fec_new();
	struct code c;
	unsigned r;

	code_init(f, &c, k, m, len);
	for (r = 0; r < 2 * rounds; r++) {
		random_erasure(erased, k + m,
		    r < rounds ? m : (unsigned)(rnd() % (m + 1)));
		check_pattern(f, &c, erased);
	}
	code_free(&c);
	fec_free(f);
}

static void
test_random_patterns(void **state)
{
	(void)state;
	random_patterns(128, 32, 1428, 200);
	random_patterns(128, 32, 8928, 10);
	random_patterns(127, 34, 1428, 20);
	random_patterns(200, 55, 7, 50);
	random_patterns(3, 3, 1, 50);
}

/* Only repairs left, or sources and repairs mixed down to exactly k. */
static void
test_only_repairs_left(void **state)
{
	uint8_t erased[FEC_MAX_SYMBOLS] = { 0 };
	struct fec *f = fec_new();
	struct code c;
	unsigned i;

	(void)state;
	code_init(f, &c, 5, 5, 64);
	for (i = 0; i < 5; i++)
		erased[i] = 1;
	check_pattern(f, &c, erased);
	code_free(&c);

	code_init(f, &c, 32, 40, 100);
	memset(erased, 0, sizeof(erased));
	for (i = 0; i < 32; i++)
		erased[i] = 1;
	for (i = 32 + 8; i < 32 + 16; i++)
		erased[i] = 1; /* 32 of 40 repairs left: exactly k */
	check_pattern(f, &c, erased);
	code_free(&c);
	fec_free(f);
}

/* m + 1 lost anywhere: -ENOSPC, and no buffer touched. */
static void
too_many(struct fec *f, unsigned k, unsigned m, size_t len, unsigned rounds)
{
	uint8_t erased[FEC_MAX_SYMBOLS];
	struct code c;
	unsigned r, i;

	code_init(f, &c, k, m, len);
	for (r = 0; r < rounds; r++) {
		random_erasure(erased, k + m, m + 1);
		if (r == 0) {
			/* every repair and one source */
			memset(erased, 0, sizeof(erased));
			for (i = k - 1; i < k + m; i++)
				erased[i] = 1;
		}
		erase(&c, erased);
		assert_int_equal(fec_decode(f, k, m, len, c.work, c.present),
		    -ENOSPC);
		check_untouched(&c);
	}
	code_free(&c);
}

static void
test_too_many_erasures(void **state)
{
	uint8_t *p[FEC_MAX_SYMBOLS], buf[8], present[FEC_MAX_SYMBOLS];
	struct fec *f = fec_new();
	unsigned i;

	(void)state;
	too_many(f, 8, 4, 16, 50);
	too_many(f, 128, 32, 1428, 20);
	too_many(f, 1, 1, 3, 5);
	too_many(f, 200, 55, 7, 20);

	/* m = 0 and a source missing */
	for (i = 0; i < FEC_MAX_SYMBOLS; i++) {
		p[i] = buf;
		present[i] = 1;
	}
	present[2] = 0;
	assert_int_equal(fec_decode(f, 4, 0, sizeof(buf), p, present),
	    -ENOSPC);
	fec_free(f);
}

static void
test_bad_params(void **state)
{
	static const unsigned bad[][2] = {
		{ 0, 0 }, { 0, 1 }, { 200, 56 }, { 255, 0 }, { 255, 1 },
		{ 1, 255 }, { 256, 0 }, { 4, UINT_MAX }, { UINT_MAX, 2 },
		{ UINT_MAX, UINT_MAX },
	};
	uint8_t buf[16], *p[FEC_MAX_SYMBOLS], present[FEC_MAX_SYMBOLS];
	struct fec *f = fec_new();
	unsigned i;

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	for (i = 0; i < FEC_MAX_SYMBOLS; i++) {
		p[i] = buf;
		present[i] = 0; /* would be -ENOSPC if the parameters passed */
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fec_encode(f, bad[i][0], bad[i][1], 16, p,
		    p), -EINVAL);
		assert_int_equal(fec_decode(f, bad[i][0], bad[i][1], 16, p,
		    present), -EINVAL);
	}
	assert_int_equal(fec_encode(f, 4, 2, 0, p, p), -EINVAL);
	assert_int_equal(fec_decode(f, 4, 2, 0, p, present), -EINVAL);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x5a);

	/* No repair at all: nothing to do when all sources are present. */
	memset(present, 1, sizeof(present));
	assert_int_equal(fec_encode(f, 4, 0, 16, p, p), 0);
	assert_int_equal(fec_decode(f, 4, 0, 16, p, present), 0);
	assert_int_equal(fec_encode(f, 254, 0, 16, p, p), 0);
	fec_free(f);
	fec_free(NULL);
}

/*
 * More (k, m) than the cache holds, interleaved in random order through
 * one struct fec: evicted or reused slots must never hand out stale
 * tables, for encode or decode.
 */
static void
test_cache_churn(void **state)
{
	uint8_t erased[FEC_MAX_SYMBOLS];
	struct fec *f = fec_new();
	struct code c;
	unsigned r, k, m;

	(void)state;
	for (r = 0; r < 300; r++) {
		k = 1 + (unsigned)(rnd() % 20);
		m = (unsigned)(rnd() % 6);
		code_init(f, &c, k, m, 1 + (size_t)(rnd() % 70));
		random_erasure(erased, k + m, (unsigned)(rnd() % (m + 1)));
		check_pattern(f, &c, erased);
		code_free(&c);
	}
	fec_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_all_patterns_small),
		cmocka_unit_test(test_random_patterns),
		cmocka_unit_test(test_only_repairs_left),
		cmocka_unit_test(test_too_many_erasures),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_cache_churn),
	};
	const char *env = getenv("SLUICE_TEST_SEED");
	struct timespec ts;

	if (env != NULL) {
		seed = strtoull(env, NULL, 0);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007u ^
		    (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
	}
	if (seed == 0)
		seed = 1; /* xorshift's fixed point */
	printf("test_fec: seed %llu (SLUICE_TEST_SEED replays)\n",
	    (unsigned long long)seed);
	gf_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
