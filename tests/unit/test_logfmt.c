/*
 * logfmt: what logfmt_escape writes, logfmt_parse reads back exactly, and
 * a value can never fake another key or a second line; malformed text is
 * refused whole.  The random round trip prints its seed
 * (SLUICE_TEST_SEED=N to repeat one).
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
#include <time.h>

#include "common/logfmt.h"

static struct logfmt_record rec;

static void
test_round_trip_random(void **state)
{
	const char *env = getenv("SLUICE_TEST_SEED");
	unsigned seed = env != NULL ? (unsigned)strtoul(env, NULL, 10) :
	    (unsigned)time(NULL);
	char in[300], esc[4 * sizeof(in) + 8], line[sizeof(esc) + 64];
	int i;

	printf("test_logfmt: seed %u\n", seed);
	srand(seed);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)rand() % (sizeof(in) - 1), j;
		int alphabet = rand() % 3;

		for (j = 0; j < n; j++) {
			/* Plain-only, printable, or any byte but NUL. */
			if (alphabet == 0)
				in[j] = "az09._:/+@-,"[rand() % 12];
			else if (alphabet == 1)
				in[j] = (char)(0x20 + rand() % 95);
			else
				in[j] = (char)(1 + rand() % 255);
		}
		in[n] = '\0';
		logfmt_escape(esc, sizeof(esc), in);
		snprintf(line, sizeof(line), "a=1 v=%s z=2", esc);
		assert_int_equal(logfmt_parse(&rec, line, strlen(line)), 0);
		assert_int_equal(rec.n, 3);
		assert_string_equal(logfmt_get(&rec, "v"), in);
		assert_string_equal(logfmt_get(&rec, "a"), "1");
		assert_string_equal(logfmt_get(&rec, "z"), "2");
	}
}

/* The review's case: a version that says reason= and quarantined=. */
static void
test_value_cannot_fake_a_key(void **state)
{
	static const char *const evil[] = {
		"2.0 reason=ok quarantined=1970-01-01T00:00:00Z",
		"2.0\nreason=ok",
		"2.0\" reason=\"ok",
		"2.0\\\" reason=ok",
		"2.0 $(touch${IFS}pwned) *",
	};
	char esc[256], text[1024];
	size_t i;

	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		logfmt_escape(esc, sizeof(esc), evil[i]);
		/* The quarantine info file: one pair a line. */
		snprintf(text, sizeof(text), "transfer=00ff\nversion=%s\n"
		    "reason=approvals\nquarantined=2026-11-28T10:00:00Z\n",
		    esc);
		assert_int_equal(logfmt_parse(&rec, text, strlen(text)), 0);
		assert_int_equal(rec.n, 4);
		assert_string_equal(logfmt_get(&rec, "version"), evil[i]);
		assert_string_equal(logfmt_get(&rec, "reason"), "approvals");
		assert_string_equal(logfmt_get(&rec, "quarantined"),
		    "2026-11-28T10:00:00Z");
		/* The status file: pairs on one line. */
		snprintf(text, sizeof(text), "transfer=00ff state=RECEIVING "
		    "bundle=m version=%s age=3", esc);
		assert_int_equal(logfmt_parse(&rec, text, strlen(text)), 0);
		assert_int_equal(rec.n, 5);
		assert_string_equal(logfmt_get(&rec, "version"), evil[i]);
		assert_string_equal(logfmt_get(&rec, "age"), "3");
		assert_null(logfmt_get(&rec, "reason"));
	}
}

static void
test_malformed_is_refused_whole(void **state)
{
	static const char *const bad[] = {
		"", "=x", "a", "a=", "a= b=1", "a=1  b=2", "a=1 ", "a=1\n\n",
		"a=1\nb", "a=\"x", "a=\"x\\\"", "a=\"\\q\"", "a=\"\\x4\"",
		"a=\"\\x00\"", "a=\"\\xZZ\"", "a=\"\\x4A\"", "a=x y", "a=x\"",
		"a=\"x\"y", "a=\"\x01\"", "a=\"\xff\"", "a=x$", "a=1 a=2",
		"a=1\na=2", "k y=1", "a=\"x\" b", "a=1\tb=2", "a=1\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rec.n = 99;
		if (strcmp(bad[i], "") == 0)
			continue; /* empty: no pair, not an error */
		assert_int_equal(logfmt_parse(&rec, bad[i], strlen(bad[i])),
		    -EBADMSG);
		assert_int_equal(rec.n, 0);
	}
	assert_int_equal(logfmt_parse(&rec, "", 0), 0);
	assert_int_equal(rec.n, 0);
}

static void
test_well_formed(void **state)
{
	const char *t = "ts=2026-11-23T05:25:47Z transfer=0123 bundle=llama "
	    "chunks_total=5+ detail=\"a \\\"b\\\" \\\\ \\n\\t\\x1b\"\n";

	assert_int_equal(logfmt_parse(&rec, t, strlen(t)), 0);
	assert_int_equal(rec.n, 5);
	assert_string_equal(logfmt_get(&rec, "chunks_total"), "5+");
	assert_string_equal(logfmt_get(&rec, "detail"),
	    "a \"b\" \\ \n\t\x1b");
	assert_string_equal(logfmt_get(&rec, "bundle"), "llama");
	assert_null(logfmt_get(&rec, "missing"));
}

static void
test_too_many_fields(void **state)
{
	char text[LOGFMT_MAX_FIELDS * 8 + 16];
	size_t off = 0;
	int i;

	for (i = 0; i <= LOGFMT_MAX_FIELDS; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%sk%d=1", i ? " " : "", i);
	assert_int_equal(logfmt_parse(&rec, text, off), -EBADMSG);
	assert_int_equal(rec.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_value_cannot_fake_a_key),
		cmocka_unit_test(test_malformed_is_refused_whole),
		cmocka_unit_test(test_well_formed),
		cmocka_unit_test(test_too_many_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
