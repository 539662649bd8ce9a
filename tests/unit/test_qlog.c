/*
 * Quarantine log: every value escaped, one event per line whatever a
 * hostile bundle or file name contains.
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

#include "common/qlog.h"
#include "common/util.h"

static void
test_escape(void **state)
{
	char out[64];

	logfmt_escape(out, sizeof(out), "llama-3.1_8B");
	assert_string_equal(out, "llama-3.1_8B");
	logfmt_escape(out, sizeof(out), "two words");
	assert_string_equal(out, "\"two words\"");
	logfmt_escape(out, sizeof(out), "a\nstate=RELEASED");
	assert_string_equal(out, "\"a\\nstate=RELEASED\"");
	logfmt_escape(out, sizeof(out), "q\"b\\");
	assert_string_equal(out, "\"q\\\"b\\\\\"");
	logfmt_escape(out, sizeof(out), "\x1b[31m\xff");
	assert_string_equal(out, "\"\\x1b[31m\\xff\"");
	logfmt_escape(out, sizeof(out), "");
	assert_string_equal(out, "\"\"");
}

static void
test_truncate(void **state)
{
	char out[16], in[100];

	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	logfmt_escape(out, sizeof(out), in);
	assert_true(strlen(out) < sizeof(out));
	assert_non_null(strstr(out, "..."));
	memset(in, '\n', sizeof(in) - 1);
	logfmt_escape(out, sizeof(out), in);
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(out[strlen(out) - 1], '"');
}

/* A fresh log at path (a mkstemp template, filled in). */
static struct qlog *
open_temp(char *path)
{
	struct qlog *q;
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	close(fd);
	q = qlog_open(path, &rc);
	assert_non_null(q);
	return q;
}

static void
test_one_line_per_event(void **state)
{
	char path[] = "/tmp/sluice-test-qlog.XXXXXX";
	struct qlog *q = open_temp(path);
	uint8_t *buf;
	size_t len, i, lines = 0;

	qlog_event(q, 0x0123456789abcdefull, "evil\nts=x state=RELEASED",
	    "1\r\n", "REJECTED", "unsafe_path", "file \"a\nb\"");
	qlog_event(q, 0, NULL, NULL, "LINK_UP", "heartbeat", NULL);
	qlog_close(q);
	assert_int_equal(util_read_file(path, 1 << 20, &buf, &len), 0);
	for (i = 0; i < len; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, 2);
	assert_non_null(strstr((char *)buf, "transfer=0123456789abcdef "
	    "bundle=\"evil\\nts=x state=RELEASED\" version=\"1\\r\\n\" "
	    "state=REJECTED reason=unsafe_path detail=\"file \\\"a\\nb\\\"\"\n"));
	assert_non_null(strstr((char *)buf, "transfer=- bundle=- version=- "
	    "state=LINK_UP reason=heartbeat\n"));
	free(buf);
	unlink(path);
}

/* qlog_find reads with the one logfmt parser: a bundle name holding
 * " state=RELEASED" (logged when it was REJECTED) is no RELEASED line. */
static void
test_find_not_fooled(void **state)
{
	char path[] = "/tmp/sluice-test-qlog.XXXXXX";
	struct qlog *q = open_temp(path);

	qlog_event(q, 0xabcdull, "x state=RELEASED", "1", "REJECTED",
	    "name_pattern", NULL);
	qlog_event(q, 0xabceull, "m", "1", "RELEASED", "verified", NULL);
	qlog_close(q);
	assert_int_equal(qlog_find(path, 0xabcdull, "RELEASED"), 0);
	assert_int_equal(qlog_find(path, 0xabcdull, "REJECTED"), 1);
	assert_int_equal(qlog_find(path, 0xabceull, "RELEASED"), 1);
	assert_int_equal(qlog_find(path, 0xabcfull, "RELEASED"), 0);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_one_line_per_event),
		cmocka_unit_test(test_find_not_fooled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
