/*
 * The sender's spool (common/spool.c): queue order (priority, then age,
 * then name), what `sluice spool add` refuses, and the moves to sent/ and
 * failed/ with their notes, NAME.1 when NAME is taken.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/manifest.h"
#include "common/spool.h"
#include "common/util.h"

static char root[] = "/tmp/sluice-test-spool.XXXXXX";
static char spool[PATH_MAX], sent[PATH_MAX], failed[PATH_MAX];

static void
put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

/* dir/name holds exactly want. */
static void
assert_note(const char *dir, const char *name, const char *want)
{
	char p[PATH_MAX];
	uint8_t *buf;
	size_t len;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(util_read_file(p, 1 << 20, &buf, &len), 0);
	assert_string_equal((char *)buf, want); /* NUL-terminated */
	free(buf);
}

static bool
exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

/* A prepared bundle at root/src/NAME with one file; priority < 0: none. */
static void
make_bundle(const char *name, const char *version, int priority,
    char *dir, size_t dirlen)
{
	char p[PATH_MAX], err[256], prio[16];
	struct manifest *m;

	snprintf(dir, dirlen, "%s/src/%s-%s", root, name, version);
	assert_int_equal(util_mkdirs(dir, 0755), 0);
	snprintf(p, sizeof(p), "%s/weights.bin", dir);
	put(p, name);
	m = manifest_new(name, version);
	assert_non_null(m);
	if (priority >= 0) {
		snprintf(prio, sizeof(prio), "%d", priority);
		assert_int_equal(manifest_set(m, "priority", prio), 0);
	}
	assert_int_equal(manifest_add_dir(m, dir, err, sizeof(err)), 0);
	assert_int_equal(manifest_finish(m, err, sizeof(err)), 0);
	assert_int_equal(manifest_write_bundle(m, dir), 0);
	manifest_free(m);
}

static void
add(const char *bundle, bool move, const char *want_entry)
{
	char entry[NAME_MAX + 1], err[512] = "";

	if (spool_add(spool, bundle, move, entry, sizeof(entry), err,
	    sizeof(err)) != 0)
		fail_msg("spool_add %s: %s", bundle, err);
	assert_string_equal(entry, want_entry);
}

static void
pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_order_and_refusals(void **state)
{
	struct spool sp;
	struct spool_entry *order[16];
	char dir[PATH_MAX], err[512], entry[NAME_MAX + 1], p[PATH_MAX];
	size_t n;

	make_bundle("low", "1", 1, dir, sizeof(dir));
	add(dir, false, "low-1");
	assert_true(exists(dir, "weights.bin")); /* a copy: source stays */
	pause_ms(20);
	make_bundle("high", "2.0", 9, dir, sizeof(dir));
	add(dir, false, "high-2.0");
	pause_ms(20);
	make_bundle("none", "1", -1, dir, sizeof(dir));
	add(dir, true, "none-1");
	assert_false(exists(dir, "weights.bin")); /* --move: gone */
	pause_ms(20);
	make_bundle("older", "1", 5, dir, sizeof(dir));
	add(dir, false, "older-1");
	pause_ms(20);
	make_bundle("newer", "1", 5, dir, sizeof(dir));
	add(dir, false, "newer-1");

	/* The same bundle again: refused, the spool unchanged. */
	assert_int_equal(spool_add(spool, dir, false, entry, sizeof(entry),
	    err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already queued"));
	/* A tampered bundle: refused at the door. */
	make_bundle("bad", "1", 7, dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/weights.bin", dir);
	put(p, "not what the manifest says");
	err[0] = '\0';
	assert_int_not_equal(spool_add(spool, dir, false, entry,
	    sizeof(entry), err, sizeof(err)), 0);
	assert_non_null(strstr(err, "differs from the manifest"));
	assert_false(exists(spool, "bad-1"));
	/* Not bundles: a stray file and a dot entry are never queued. */
	snprintf(p, sizeof(p), "%s/stray", spool);
	put(p, "x");
	snprintf(p, sizeof(p), "%s/.hidden", spool);
	assert_int_equal(util_mkdirs(p, 0755), 0);

	assert_int_equal(spool_open(&sp, spool, sent, failed, err,
	    sizeof(err)), 0);
	sp.quiet = true;
	assert_int_equal(spool_scan(&sp), 0);
	n = spool_order(&sp, order, 16);
	assert_int_equal(n, 5);
	/* Priority first (none counts as 0), then age. */
	assert_string_equal(order[0]->name, "high-2.0");
	assert_string_equal(order[1]->name, "older-1");
	assert_string_equal(order[2]->name, "newer-1");
	assert_string_equal(order[3]->name, "low-1");
	assert_string_equal(order[4]->name, "none-1");
	assert_string_equal(spool_next(&sp)->name, "high-2.0");
	/* Nothing was left behind in .incoming. */
	snprintf(p, sizeof(p), "%s/" SPOOL_INCOMING, spool);
	assert_int_equal(rmdir(p), 0);
	spool_close(&sp);
}

static void
test_sent_and_failed(void **state)
{
	struct spool sp;
	char dir[PATH_MAX], err[512];

	assert_int_equal(spool_open(&sp, spool, sent, failed, err,
	    sizeof(err)), 0);
	sp.quiet = true;
	assert_int_equal(spool_scan(&sp), 0);
	assert_string_equal(spool_next(&sp)->name, "high-2.0");
	assert_int_equal(spool_sent(&sp, spool_next(&sp), "record one\n"), 0);
	assert_true(exists(sent, "high-2.0"));
	assert_true(exists(sent, "high-2.0/weights.bin"));
	assert_false(exists(spool, "high-2.0"));
	assert_note(sent, "high-2.0.record", "record one\n");

	/* Queued and sent again: the second lands beside the first. */
	snprintf(dir, sizeof(dir), "%s/high-2.0", sent);
	add(dir, false, "high-2.0");
	assert_int_equal(spool_scan(&sp), 0);
	assert_string_equal(spool_next(&sp)->name, "high-2.0");
	assert_int_equal(spool_sent(&sp, spool_next(&sp), "record two\n"), 0);
	assert_true(exists(sent, "high-2.0.1"));
	assert_note(sent, "high-2.0.1.record", "record two\n");

	/* Failed: moved whole, with the reason beside it. */
	assert_string_equal(spool_next(&sp)->name, "older-1");
	assert_int_equal(spool_failed(&sp, spool_next(&sp), "reason=x\n"), 0);
	assert_true(exists(failed, "older-1/weights.bin"));
	assert_true(exists(failed, "older-1.reason"));
	assert_string_equal(spool_next(&sp)->name, "newer-1");
	spool_close(&sp);

	/* The three directories must share a file system. */
	assert_int_equal(spool_open(&sp, spool, "/proc", failed, err,
	    sizeof(err)), -EXDEV);
	assert_non_null(strstr(err, "different file systems"));
}

/* sent_retention: old trees go, their records and new trees stay. */
static void
test_sent_retention(void **state)
{
	struct timespec old[2] = { { 0, 0 }, { 0, 0 } };
	struct spool sp;
	char path[PATH_MAX], err[512];
	const char *names[] = { "old-1", "new-1", "norecord-1" };
	unsigned i;

	assert_int_equal(spool_open(&sp, spool, sent, failed, err,
	    sizeof(err)), 0);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s/sub", sent, names[i]);
		assert_int_equal(util_mkdirs(path, 0755), 0);
		if (i == 2)
			continue;
		snprintf(path, sizeof(path), "%s/%s.record", sent, names[i]);
		assert_int_equal(util_write_file_atomic(path, "r\n", 2,
		    0644), 0);
	}
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 40 * 86400;
	snprintf(path, sizeof(path), "%s/old-1.record", sent);
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(spool_expire_sent(&sp, 30 * 86400.0, NULL, NULL), 1);
	assert_false(exists(sent, "old-1"));
	assert_true(exists(sent, "old-1.record"));
	assert_true(exists(sent, "new-1/sub"));
	assert_true(exists(sent, "norecord-1/sub"));
	/* Nothing more to do a second time. */
	assert_int_equal(spool_expire_sent(&sp, 30 * 86400.0, NULL, NULL), 0);
	spool_close(&sp);
}

static int
setup(void **state)
{
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(spool, sizeof(spool), "%s/spool", root);
	snprintf(sent, sizeof(sent), "%s/sent", root);
	snprintf(failed, sizeof(failed), "%s/failed", root);
	return util_mkdirs(spool, 0755) || util_mkdirs(sent, 0755) ||
	    util_mkdirs(failed, 0755) ? -1 : 0;
}

static int
teardown(void **state)
{
	return util_rmtree(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_refusals),
		cmocka_unit_test(test_sent_and_failed),
		cmocka_unit_test(test_sent_retention),
	};

	log_init("test_spool", 0);
	log_set_verbosity(-1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
