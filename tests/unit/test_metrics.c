/*
 * Receiver link status (receiver/metrics.c): a heartbeat keeps the link up
 * only if its seq is above the last accepted one of its session, so a
 * recorded, validly signed heartbeat replayed later does not.
 *
 * metrics.c is part of sluice-recv, not of libsluice, so it is compiled
 * into this test directly; ingest_get_stats (ingest.c) is stubbed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "receiver/metrics.c"

void
ingest_get_stats(const struct ingest *in, struct ingest_stats *st)
{
	(void)in;
	memset(st, 0, sizeof(*st));
}

static char dir[] = "/tmp/sluice-test-metrics.XXXXXX";

/* A struct recv with just what metrics.c touches. */
struct fixture {
	struct recv_conf conf;
	struct recv r;
	char qlog_path[300];
	char metrics_path[300];
};

static struct fixture *
fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int rc;

	assert_non_null(f);
	snprintf(f->qlog_path, sizeof(f->qlog_path), "%s/q.log", dir);
	snprintf(f->metrics_path, sizeof(f->metrics_path), "%s/metrics.prom",
	    dir);
	f->conf.link_down_after = 3;
	f->conf.metrics_file = f->metrics_path;
	f->r.conf = &f->conf;
	f->r.qlog = qlog_open(f->qlog_path, &rc);
	assert_non_null(f->r.qlog);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	qlog_close(f->r.qlog);
	free(f);
}

/* Ticks as if the link had been silent for ten heartbeat intervals. */
static void
silence(struct fixture *f)
{
	metrics_tick(&f->r, f->r.last_heartbeat_ns + 10ull * 1000000000ull);
}

/* As assemble.c does with a verified heartbeat. */
static void
heartbeat(struct fixture *f, uint64_t session, uint64_t seq)
{
	if (!metrics_heartbeat(&f->r, 1000, session, seq))
		f->r.stats.drop[DROP_HEARTBEAT_REPLAY]++;
}

static void
test_heartbeat_replay(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t *text;
	size_t len;

	heartbeat(f, 0x1111, 10);
	assert_true(f->r.link_up);
	heartbeat(f, 0x1111, 20);
	assert_true(f->r.link_up);
	silence(f);
	assert_false(f->r.link_up);

	/* The same heartbeat again, and an older one: not liveness. */
	heartbeat(f, 0x1111, 20);
	assert_false(f->r.link_up);
	heartbeat(f, 0x1111, 10);
	assert_false(f->r.link_up);

	/* A newer one of the same session is. */
	heartbeat(f, 0x1111, 21);
	assert_true(f->r.link_up);
	silence(f);
	assert_false(f->r.link_up);

	/* A new session id starts afresh, even with a lower seq ... */
	heartbeat(f, 0x2222, 0);
	assert_true(f->r.link_up);
	silence(f);
	/* ... and then holds its own order. */
	heartbeat(f, 0x2222, 0);
	assert_false(f->r.link_up);
	heartbeat(f, 0x2222, 1);
	assert_true(f->r.link_up);

	/* The replays are counted as drops with their own reason. */
	metrics_write(&f->r);
	assert_int_equal(util_read_file(f->metrics_path, 1 << 16, &text,
	    &len), 0);
	if (strstr((char *)text,
	    "sluice_drops_total{reason=\"heartbeat_replay\"} 3\n") == NULL)
		fail_msg("metrics lack 3 heartbeat_replay drops:\n%s", text);
	free(text);
	fixture_free(f);
}

static int
setup(void **state)
{
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	return util_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heartbeat_replay),
	};

	log_init("test_metrics", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
