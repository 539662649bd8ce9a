/*
 * The publisher's states (receiver/publish/state.c): the record file
 * round-trips, a damaged one is refused whole, transitions decide final
 * and backoff as documented, each state is told once in publish_log even
 * across a crash between the two saves, and retry requests reset only
 * what was not published.
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
#include <unistd.h>

#include "common/util.h"
#include "receiver/publish/publish.h"

static char dir[] = "/tmp/sluice-test-pubstate.XXXXXX";
static struct pub_conf *conf;
static struct pub_record rec;

static int
count(const char *needle)
{
	char path[400];
	uint8_t *buf;
	size_t len;
	const char *p;
	int n = 0;

	snprintf(path, sizeof(path), "%s/publish.log", dir);
	if (util_read_file(path, 1 << 20, &buf, &len) != 0)
		return 0;
	for (p = (char *)buf; (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(buf);
	return n;
}

static void
test_transitions(void **state)
{
	struct pub_state_ctx *x;
	struct pub_result res = { 0 };
	struct pub_entry *e;
	uint8_t digest[32] = { 1, 2, 3 };
	char err[256];
	int64_t now;

	x = pub_state_open(conf, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(pub_record_load(conf->state_dir, "llama", "1.0",
	    &rec), 0);
	assert_int_equal(rec.n, 0);
	e = pub_record_entry(&rec, "models");
	assert_int_equal(e->state, PUB_PENDING);
	assert_int_equal(pub_state_move(x, &rec, e, PUB_PUBLISHING, NULL,
	    digest), 0);
	pub_fail(&res, false, "upload_failed", "connection \"refused\"\nx");
	now = (int64_t)(util_realtime_ns() / 1000000000);
	assert_int_equal(pub_state_move(x, &rec, e, PUB_FAILED, &res, NULL),
	    0);
	assert_false(e->final);
	assert_int_equal(e->failures, 1);
	/* First backoff: retry_backoff (2 s here). */
	assert_true(e->next >= now + 2 && e->next <= now + 3);
	assert_int_equal(pub_state_move(x, &rec, e, PUB_FAILED, &res, NULL),
	    0);
	assert_true(e->next >= now + 4 && e->next <= now + 5);
	assert_false(e->final);
	/* retries = 2: the third failure is final. */
	assert_int_equal(pub_state_move(x, &rec, e, PUB_FAILED, &res, NULL),
	    0);
	assert_true(e->final);
	assert_true(e->announced);
	/* The escaped detail never splits a line. */
	assert_int_equal(count("detail=\"connection \\\"refused\\\"\\nx"), 3);
	assert_int_equal(count("state=PUBLISH_FAILED reason=upload_failed"),
	    3);

	/* Round trip through the file. */
	assert_int_equal(pub_record_load(conf->state_dir, "llama", "1.0",
	    &rec), 0);
	assert_int_equal(rec.n, 1);
	e = &rec.e[0];
	assert_string_equal(e->store, "models");
	assert_int_equal(e->state, PUB_FAILED);
	assert_true(e->final);
	assert_int_equal(e->failures, 3);
	assert_string_equal(e->reason, "upload_failed");
	assert_string_equal(e->detail, "connection \"refused\"\nx");
	assert_int_equal(strncmp(rec.manifest, "010203", 6), 0);

	/* A retry request resets it; a PUBLISHED entry it never touches. */
	e = pub_record_entry(&rec, "objects");
	assert_int_equal(pub_state_move(x, &rec, e, PUB_PUBLISHED, NULL,
	    NULL), 0);
	assert_int_equal(pub_retry_request(conf->state_dir, "llama", "1.0",
	    NULL), 0);
	assert_int_equal(pub_state_take_retries(x), 1);
	assert_int_equal(pub_state_take_retries(x), 0);
	assert_int_equal(pub_record_load(conf->state_dir, "llama", "1.0",
	    &rec), 0);
	assert_int_equal(rec.e[0].state, PUB_PENDING);
	assert_int_equal(rec.e[0].failures, 0);
	assert_false(rec.e[0].final);
	assert_int_equal(rec.e[1].state, PUB_PUBLISHED);

	/* A permanent failure is final at once. */
	pub_fail(&res, true, "docker_archive_refused", "images/x.tar");
	assert_int_equal(pub_state_move(x, &rec, &rec.e[0], PUB_FAILED, &res,
	    NULL), 0);
	assert_true(rec.e[0].final);
	assert_int_equal(rec.e[0].failures, 1);
	pub_state_close(x);
}

/* A crash between "PUBLISHED saved" and "told": recovery tells it once. */
static void
test_recover(void **state)
{
	struct pub_state_ctx *x;
	struct pub_entry *e;
	char err[256];

	x = pub_state_open(conf, err, sizeof(err));
	assert_non_null(x);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(pub_record_load(conf->state_dir, "mistral", "2.0",
	    &rec), 0);
	e = pub_record_entry(&rec, "models");
	e->state = PUB_PUBLISHED;
	snprintf(e->reason, sizeof(e->reason), "ok");
	e->announced = false;
	assert_int_equal(pub_state_recover(x, &rec), 0);
	assert_int_equal(count("bundle=mistral version=2.0 store=models "
	    "state=PUBLISHED"), 1);
	assert_true(e->announced);
	/* Saved as announced: a second load recovers nothing. */
	assert_int_equal(pub_record_load(conf->state_dir, "mistral", "2.0",
	    &rec), 0);
	assert_true(rec.e[0].announced);
	assert_int_equal(pub_state_recover(x, &rec), 0);
	/* Unannounced again, but the line is in the log: not written twice. */
	rec.e[0].announced = false;
	assert_int_equal(pub_state_recover(x, &rec), 0);
	assert_int_equal(count("bundle=mistral version=2.0 store=models "
	    "state=PUBLISHED"), 1);
	pub_state_close(x);
}

static void
write_record(const char *text)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/state/bundles/bad", dir);
	assert_int_equal(util_mkdirs(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/state/bundles/bad/1.0", dir);
	assert_int_equal(util_write_file_atomic(path, text, strlen(text),
	    0600), 0);
}

static void
test_hostile(void **state)
{
	static const char *const bad[] = {
		"store=models state=PUBLISHED reason=ok state=PENDING\n",
		"store=models state=DONE reason=ok\n",
		"state=PUBLISHED reason=ok\n",
		"store=models state=PUBLISHED reason=\"ok\n",
		"store=models  state=PUBLISHED\n",
		"store=models state=PUBLISHED detail=\"a\\x00b\"\n",
	};
	size_t i;

	for (i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
		write_record(bad[i]);
		assert_int_equal(pub_record_load(conf->state_dir, "bad", "1.0",
		    &rec), -EBADMSG);
	}
	/* Names that would leave state_dir are refused before any I/O. */
	assert_int_equal(pub_record_load(conf->state_dir, "..", "1.0", &rec),
	    -EINVAL);
	assert_int_equal(pub_record_load(conf->state_dir, "a/b", "1.0", &rec),
	    -EINVAL);
	assert_int_equal(pub_record_load(conf->state_dir, "a", ".hidden",
	    &rec), -EINVAL);
}

static int
setup(void **state)
{
	char path[400], err[256];
	FILE *fp;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/publish.conf", dir);
	fp = fopen(path, "w");
	fprintf(fp, "store_dir = \".\";\nstate_dir = \"state\";\n"
	    "publish_log = \"publish.log\";\nretries = 2;\n"
	    "retry_backoff = 2.0;\nretry_backoff_max = 60.0;\n"
	    "stores = ( { name = \"models\"; type = \"directory\"; "
	    "path = \"m\"; },\n{ name = \"objects\"; type = \"directory\"; "
	    "path = \"o\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"models\" ]; } );\n");
	fclose(fp);
	conf = pub_conf_load(path, err, sizeof(err));
	return conf != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	pub_conf_free(conf);
	return util_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_recover),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
