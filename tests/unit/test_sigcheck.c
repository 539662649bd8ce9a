/*
 * The signature budget and cache (receiver/sigcheck.c): a good signature
 * is verified once and then found in the cache; a bad one never enters
 * it, nor does the same signature over other bytes; the bucket refills at
 * its rate and holds a second's worth; unknown transfers and heartbeats
 * stop at the reserve, which descriptors of known transfers may spend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sign.h"
#include "receiver/sigcheck.h"

#define SEC 1000000000ull

struct fixture {
	char dir[64];
	struct sign_seckey *sk;
	struct sign_pubkey pub;
	uint8_t msg[200];
	uint8_t sig[SIGN_SIG_LEN];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char prefix[96], path[112];
	int rc;

	assert_non_null(f);
	assert_int_equal(sign_init(), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_sigcheck.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(prefix, sizeof(prefix), "%s/k", f->dir);
	assert_int_equal(sign_keygen(prefix, &f->pub), 0);
	snprintf(path, sizeof(path), "%s.key", prefix);
	f->sk = sign_seckey_load(path, &rc, NULL, 0);
	assert_non_null(f->sk);
	memset(f->msg, 'm', sizeof(f->msg));
	sign_detached(f->sk, f->sig, f->msg, sizeof(f->msg));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[112];

	sign_seckey_free(f->sk);
	snprintf(path, sizeof(path), "%s/k.key", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/k.pub", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_cache(void **state)
{
	struct fixture *f = *state;
	struct sigcheck *sc = sigcheck_new(100, 0);
	struct sigcheck_stats st;
	uint8_t other[sizeof(f->msg)], bad[SIGN_SIG_LEN];
	int i;

	assert_non_null(sc);
	/* Miss, verified, kept; then every copy is a hit. */
	for (i = 0; i < 10; i++)
		assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg,
		    sizeof(f->msg), f->sig, SIGCHECK_OTHER, true, 0),
		    SIGCHECK_GOOD);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.verifies, 1);
	assert_int_equal(st.cache_hits, 9);
	/* The same signature over other bytes is not a hit. */
	memcpy(other, f->msg, sizeof(other));
	other[7] ^= 1;
	assert_int_equal(sigcheck_verify(sc, &f->pub, other, sizeof(other),
	    f->sig, SIGCHECK_OTHER, true, 0), SIGCHECK_BAD);
	/* A bad signature is not cached: checked each time. */
	memcpy(bad, f->sig, sizeof(bad));
	bad[0] ^= 1;
	assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg),
	    bad, SIGCHECK_OTHER, true, 0), SIGCHECK_BAD);
	assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg),
	    bad, SIGCHECK_OTHER, true, 0), SIGCHECK_BAD);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.verifies, 4);
	/* Not cached when asked not to (heartbeats). */
	sigcheck_free(sc);
	sc = sigcheck_new(100, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg,
		    sizeof(f->msg), f->sig, SIGCHECK_OTHER, false, 0),
		    SIGCHECK_GOOD);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.verifies, 3);
	assert_int_equal(st.cache_hits, 0);
	sigcheck_free(sc);
	sigcheck_free(NULL);
}

/* Bad signatures of class cls at time now until the budget refuses. */
static unsigned
spend(struct fixture *f, struct sigcheck *sc, enum sigcheck_class cls,
    uint64_t now)
{
	uint8_t bad[SIGN_SIG_LEN];
	unsigned n = 0;

	memcpy(bad, f->sig, sizeof(bad));
	bad[1] ^= 1;
	while (sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg), bad, cls,
	    true, now) == SIGCHECK_BAD)
		n++;
	return n;
}

static void
test_budget(void **state)
{
	struct fixture *f = *state;
	struct sigcheck *sc = sigcheck_new(100, 0);
	struct sigcheck_stats st;
	uint64_t t = 5 * SEC;

	assert_non_null(sc);
	/* Full bucket: 100; the other class stops at the reserve (50). */
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, t), 50);
	/* Known transfers have the reserve. */
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, t), 50);
	/* A cached good signature needs no token. */
	sigcheck_free(sc);
	sc = sigcheck_new(100, 0);
	assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg),
	    f->sig, SIGCHECK_KNOWN, true, t), SIGCHECK_GOOD);
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, t), 99);
	assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg),
	    f->sig, SIGCHECK_OTHER, true, t), SIGCHECK_GOOD);
	/* Refill: 100 a second.  The reserve refills first. */
	t += SEC / 2; /* 50 tokens: the reserve, nothing for the others */
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, t), 0);
	t += SEC / 10; /* 60 */
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, t), 10);
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, t), 50);
	/* The bucket holds one second's worth, however long it waits. */
	t += 3600 * SEC;
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, t), 100);
	/* A clock that goes back refills nothing. */
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, t - SEC), 0);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.over_budget, 6); /* one refusal per spend() */
	sigcheck_free(sc);
}

/* Transfers being received have a bucket of their own on top. */
static void
test_known_bucket(void **state)
{
	struct fixture *f = *state;
	struct sigcheck *sc = sigcheck_new(100, 1000);
	uint64_t now = 1000000000ull;

	assert_non_null(sc);
	/* Its own 1000, then the shared 100 down to the last token... */
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, now), 1100);
	/* ... leaving nothing for the rest. */
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, now), 0);
	sigcheck_free(sc);
	/* The rest cannot touch the transfers' own bucket. */
	sc = sigcheck_new(100, 1000);
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, now), 50);
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, now), 1050);
	sigcheck_free(sc);
}

/*
 * The workers' early checks (sigcheck_verify_live): only for transfers
 * the main thread said are live; the same cache both ways; the same
 * budget, so that forgeries spent early leave no more for the main
 * thread than they would have.
 */
static void
test_live(void **state)
{
	struct fixture *f = *state;
	struct sigcheck *sc = sigcheck_new(100, 1000);
	struct sigcheck_stats st;
	uint64_t now = SEC, live[2] = { 7, 9 };
	uint8_t bad[SIGN_SIG_LEN];
	unsigned n = 0;

	assert_non_null(sc);
	/* Nothing is live yet: not checked, and nothing spent. */
	assert_int_equal(sigcheck_verify_live(sc, 7, &f->pub, f->msg,
	    sizeof(f->msg), f->sig, now), SIGCHECK_SKIPPED);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.verifies, 0);
	assert_int_equal(sigcheck_set_live(sc, live, 2), 0);
	assert_int_equal(sigcheck_verify_live(sc, 8, &f->pub, f->msg,
	    sizeof(f->msg), f->sig, now), SIGCHECK_SKIPPED);
	/* Live: verified early, then a cache hit for the main thread. */
	assert_int_equal(sigcheck_verify_live(sc, 9, &f->pub, f->msg,
	    sizeof(f->msg), f->sig, now), SIGCHECK_GOOD);
	assert_int_equal(sigcheck_verify(sc, &f->pub, f->msg, sizeof(f->msg),
	    f->sig, SIGCHECK_KNOWN, true, now), SIGCHECK_GOOD);
	sigcheck_get_stats(sc, &st);
	assert_int_equal(st.verifies, 1);
	assert_int_equal(st.verifies_early, 1);
	assert_int_equal(st.cache_hits, 1);
	/* A forgery is bad early too, and never cached. */
	memcpy(bad, f->sig, sizeof(bad));
	bad[3] ^= 0x10;
	assert_int_equal(sigcheck_verify_live(sc, 7, &f->pub, f->msg,
	    sizeof(f->msg), bad, now), SIGCHECK_BAD);
	n = 1;
	/* Early forgeries spend the known bucket and then the shared one
	 * down to its last token, exactly as the main thread's would... */
	while (sigcheck_verify_live(sc, 7, &f->pub, f->msg, sizeof(f->msg),
	    bad, now) == SIGCHECK_BAD)
		n++;
	assert_int_equal(n, 1100 - 1);
	/* ... and leave the main thread nothing more. */
	assert_int_equal(spend(f, sc, SIGCHECK_KNOWN, now), 0);
	assert_int_equal(spend(f, sc, SIGCHECK_OTHER, now), 0);
	/* A transfer no longer live is no longer checked early. */
	assert_int_equal(sigcheck_set_live(sc, NULL, 0), 0);
	assert_int_equal(sigcheck_verify_live(sc, 9, &f->pub, f->msg,
	    sizeof(f->msg), f->sig, now + SEC), SIGCHECK_SKIPPED);
	sigcheck_free(sc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_bucket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_live, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
