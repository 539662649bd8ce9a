/*
 * Configuration: defaults, ranges, unknown settings, syntax errors, and
 * that every error names file, line and setting.
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

#include "common/conf.h"
#include "common/limits.h"
#include "common/sign.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-conf.XXXXXX";
static char path[300];
static char last_err[512]; /* expect_error's */

static void
write_conf(const char *text)
{
	FILE *fp = fopen(path, "w");

	fputs(text, fp);
	fclose(fp);
}

#define RECV_BASE "listen = \"127.0.0.1:7700\";\nsender_keys = [\"s.pub\"];\n" \
    "staging_dir = \"st\";\nstore_dir = \"/srv/store\";\nquarantine_log = \"q.log\";\n"
#define SEND_BASE "destination = \"127.0.0.1:7700\";\nkey = \"s.key\";\n"

static void
test_recv_defaults(void **state)
{
	struct recv_conf *c;
	char err[256], expect[400];

	write_conf(RECV_BASE);
	c = recv_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->listen, "127.0.0.1:7700");
	assert_int_equal(c->n_sender_keys, 1);
	snprintf(expect, sizeof(expect), "%s/s.pub", dir);
	assert_string_equal(c->sender_keys[0], expect);
	snprintf(expect, sizeof(expect), "%s/st", dir);
	assert_string_equal(c->staging_dir, expect);
	assert_string_equal(c->store_dir, "/srv/store");
	assert_true(c->transfer_timeout == 60);
	assert_int_equal(c->max_transfer_bytes, 64000000000ull);
	assert_int_equal(c->max_transfers_in_flight, 4);
	assert_int_equal(c->file_mode, 0644);
	assert_int_equal(c->dir_mode, 0755);
	assert_int_equal(c->max_bundle_age, 0);
	assert_null(c->receiver_name);
	assert_int_equal(c->max_files, LIMITS_MAX_FILES);
	assert_int_equal(c->max_path_len, LIMITS_MAX_PATH_LEN);
	assert_int_equal(c->max_bundle_bytes, 64000000000ull);
	recv_conf_free(c);
	write_conf(RECV_BASE "max_bundle_age = 86400;\n"
	    "receiver_name = \"lab-b\";\n");
	c = recv_conf_load(path, expect, sizeof(expect));
	assert_non_null(c);
	assert_int_equal(c->max_bundle_age, 86400);
	assert_string_equal(c->receiver_name, "lab-b");
	recv_conf_free(c);
	recv_conf_free(NULL);
}

static void
test_sender_values(void **state)
{
	struct sender_conf *c;
	char err[256];

	write_conf(SEND_BASE "rate = \"1.5G\";\ndatagram_size = 8972;\n"
	    "fec_overhead = 50;\ncompress = \"off\";\nheartbeat_interval = 2;\n");
	c = sender_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->rate_bps, 1500000000ull);
	assert_int_equal(c->datagram_size, 8972);
	assert_int_equal(c->fec_overhead, 50);
	assert_int_equal(c->compress, COMPRESS_OFF);
	assert_true(c->heartbeat_interval == 2.0);
	assert_int_equal(c->passes, 2);
	assert_int_equal(c->interleave, 8);
	sender_conf_free(c);
	write_conf(SEND_BASE "rate = 800000000;\n");
	c = sender_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->rate_bps, 800000000ull);
	sender_conf_free(c);
}

/* Each bad line is line 3 of its file. */
static void
expect_error(const char *base, const char *line, const char *needle,
    bool sender)
{
	char text[1024], err[512], where[400];
	void *c;

	snprintf(text, sizeof(text), "%s%s\n", base, line);
	/* Put the bad setting on line 3 by prefixing it. */
	snprintf(text, sizeof(text), "# comment\n\n%s\n%s", line, base);
	write_conf(text);
	c = sender ? (void *)sender_conf_load(path, err, sizeof(err)) :
	    (void *)recv_conf_load(path, err, sizeof(err));
	if (c != NULL)
		fail_msg("accepted: %s", line);
	snprintf(where, sizeof(where), "%s:3: %s", path, needle);
	if (strstr(err, where) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, where);
	snprintf(last_err, sizeof(last_err), "%s", err);
}

static void
test_errors(void **state)
{
	expect_error(SEND_BASE, "rate = \"fast\";", "rate:", true);
	expect_error(SEND_BASE, "rate = \"10K\";", "rate: must be between", true);
	expect_error(SEND_BASE, "datagram_size = 255;", "datagram_size:", true);
	expect_error(SEND_BASE, "datagram_size = 65508;", "datagram_size:", true);
	expect_error(SEND_BASE, "fec_overhead = 401;", "fec_overhead:", true);
	expect_error(SEND_BASE, "interleave = 0;", "interleave:", true);
	expect_error(SEND_BASE, "passes = 101;", "passes:", true);
	expect_error(SEND_BASE, "passes = 1.5;", "passes:", true);
	/* Floats far outside an integer's range: refused before converting
	 * (converting 1e300 to long long is undefined behaviour). */
	expect_error(SEND_BASE, "datagram_size = 1e300;",
	    "datagram_size: must be between", true);
	expect_error(SEND_BASE, "datagram_size = -1e300;",
	    "datagram_size: must be between", true);
	expect_error(SEND_BASE, "datagram_size = 1e400;",
	    "datagram_size: must be between", true);
	expect_error(SEND_BASE, "heartbeat_interval = 1e400;",
	    "heartbeat_interval: must be between", true);
	expect_error(SEND_BASE, "rate = 1e300;", "rate: must be a whole", true);
	expect_error(SEND_BASE, "compress = \"maybe\";", "compress:", true);
	expect_error(SEND_BASE, "heartbeat_interval = 0.01;",
	    "heartbeat_interval:", true);
	expect_error(SEND_BASE, "colour = \"blue\";",
	    "unknown setting \"colour\"", true);
	expect_error(RECV_BASE, "transfer_timeout = 0;", "transfer_timeout:",
	    false);
	expect_error(RECV_BASE, "max_transfers_in_flight = 1025;",
	    "max_transfers_in_flight:", false);
	expect_error(RECV_BASE, "file_mode = \"0999\";", "file_mode:", false);
	expect_error(RECV_BASE, "file_mode = \"01777\";", "file_mode:", false);
	/* libconfig has no octal literals: 0440 would be read as 440. */
	expect_error(RECV_BASE, "file_mode = 0440;",
	    "file_mode: must be a quoted octal string: write \"0440\"", false);
	expect_error(RECV_BASE, "dir_mode = 493;", "dir_mode: must be a "
	    "quoted octal string", false);
	expect_error(RECV_BASE, "dir_mode = 0x1ed;", "dir_mode: must be a "
	    "quoted octal string", false);
	expect_error(RECV_BASE, "file_mode = \"\";", "file_mode:", false);
	expect_error(RECV_BASE, "file_mode = \"-1\";", "file_mode:", false);
	expect_error(RECV_BASE, "file_mode = \" 644\";", "file_mode:", false);
	expect_error(RECV_BASE, "file_mode = \"99999999999999999999999\";",
	    "file_mode:", false);
	expect_error(RECV_BASE, "max_transfer_bytes = \"lots\";",
	    "max_transfer_bytes:", false);
	expect_error(RECV_BASE, "stagingdir = \"x\";",
	    "unknown setting \"stagingdir\"; did you mean \"staging_dir\"?",
	    false);
	/* A typo names the setting it is nearest to. */
	expect_error(RECV_BASE, "trasnfer_timeout = 5;", "unknown setting "
	    "\"trasnfer_timeout\"; did you mean \"transfer_timeout\"?",
	    false);
	expect_error(SEND_BASE, "ratee = \"10M\";",
	    "unknown setting \"ratee\"; did you mean \"rate\"?", true);
	expect_error(RECV_BASE, "max_bundle_age = -1;", "max_bundle_age:",
	    false);
	expect_error(RECV_BASE, "receiver_name = \"\";", "receiver_name:",
	    false);
}

/*
 * libconfig 1.5 reads an integer without an L suffix as 32 bits and wraps
 * it silently: 100000000000 would become 1215752192.  Such literals are
 * refused; the L form and the string form give the real number.
 */
static void
test_wide_integers(void **state)
{
	struct recv_conf *c;
	char err[256];

	expect_error(RECV_BASE, "max_transfer_bytes = 100000000000;",
	    "max_transfer_bytes: 100000000000 is beyond libconfig's 32-bit "
	    "integers and would silently read as another number; write it "
	    "as a string such as \"100G\"", false);
	expect_error(RECV_BASE, "max_bundle_bytes = 4294967297;",
	    "max_bundle_bytes: 4294967297 is beyond", false);
	expect_error(RECV_BASE, "rcvbuf_bytes = 4294967296;",
	    "rcvbuf_bytes: 4294967296 is beyond", false);
	expect_error(RECV_BASE, "rcvbuf_bytes = 0x100000000;",
	    "rcvbuf_bytes: 0x100000000 is beyond", false);
	expect_error(RECV_BASE, "rcvbuf_bytes = 0x80000000;",
	    "rcvbuf_bytes: 0x80000000 is beyond", false);
	expect_error(SEND_BASE, "rate = 99999999999999999999;",
	    "rate: 99999999999999999999 is beyond", true);
	expect_error(SEND_BASE, "rate = 99999999999999999999L;",
	    "rate: 99999999999999999999L is beyond libconfig's 64-bit", true);
	expect_error(SEND_BASE, "passes = -2147483649;",
	    "passes: -2147483649 is beyond", true);
	expect_error(SEND_BASE, "heartbeat_interval = 4294967297;",
	    "heartbeat_interval: 4294967297 is beyond", true);
	expect_error(RECV_BASE, "approvers = ( \"a\", 8589934592 );",
	    "approvers: 8589934592 is beyond", false);

	/* What libconfig can represent is read exactly. */
	write_conf(RECV_BASE "max_transfer_bytes = 100000000000L;\n"
	    "max_bundle_bytes = \"100G\";\nrcvbuf_bytes = 2147483647;\n"
	    "# max_files = 100000000000;\n/* 99999999999 */ // 99999999999\n"
	    "scan_hook = \"x 99999999999 \\\" 99999999999\";\n"
	    "transfer_timeout = 1e10;\nhook_timeout = 8.64e4;\n"
	    "max_files = 0x7fffffff;\n");
	c = recv_conf_load(path, err, sizeof(err));
	assert_null(c); /* max_files out of range, but not for wrapping */
	assert_null(strstr(err, "beyond"));
	assert_non_null(strstr(err, "transfer_timeout: must be between"));
	write_conf(RECV_BASE "max_transfer_bytes = 100000000000L;\n"
	    "max_bundle_bytes = \"100G\";\nrcvbuf_bytes = 2147483647;\n"
	    "# max_files = 100000000000;\n/* 99999999999 */ // 99999999999\n"
	    "scan_hook = \"x 99999999999 \\\" 99999999999\";\n"
	    "hook_timeout = 8.64e4;\nmax_partial_chunks = 0x400;\n");
	c = recv_conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->max_transfer_bytes, 100000000000ull);
	assert_int_equal(c->max_bundle_bytes, 100000000000ull);
	assert_int_equal(c->rcvbuf_bytes, 2147483647ull);
	assert_int_equal(c->max_partial_chunks, 1024);
	recv_conf_free(c);
}

static void
test_missing_and_syntax(void **state)
{
	char err[256], expect[400];

	write_conf("listen = \"127.0.0.1:7700\";\n");
	assert_null(recv_conf_load(path, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s: sender_keys: required", path);
	assert_non_null(strstr(err, expect));
	write_conf(RECV_BASE "listen = \"nowhere\";\n");
	assert_null(recv_conf_load(path, err, sizeof(err)));
	write_conf("listen = \"127.0.0.1:7700\"\nstaging_dir = ;\n");
	assert_null(recv_conf_load(path, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:2: syntax error (is a `;` "
	    "missing at the end of the line before?)", path);
	assert_non_null(strstr(err, expect));
	assert_null(recv_conf_load("/nonexistent/receiver.conf", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "cannot read"));
}

/* What -p prints for a, loaded again. */
static struct recv_conf *
print_and_reload(const struct recv_conf *a)
{
	struct recv_conf *b;
	char err[256], path2[320];
	FILE *fp;

	snprintf(path2, sizeof(path2), "%s/printed.conf", dir);
	fp = fopen(path2, "w");
	assert_non_null(fp);
	recv_conf_print(a, fp);
	fclose(fp);
	b = recv_conf_load(path2, err, sizeof(err));
	if (b == NULL)
		fail_msg("%s", err);
	return b;
}

static void
test_print_reload(void **state)
{
	struct recv_conf *a, *b;
	char err[256];

	write_conf(RECV_BASE "transfer_timeout = 12.5;\nfile_mode = \"0640\";\n");
	a = recv_conf_load(path, err, sizeof(err));
	assert_non_null(a);
	b = print_and_reload(a);
	assert_string_equal(a->staging_dir, b->staging_dir);
	assert_true(a->transfer_timeout == b->transfer_timeout);
	assert_int_equal(a->file_mode, b->file_mode);
	assert_int_equal(a->max_transfer_bytes, b->max_transfer_bytes);
	recv_conf_free(a);
	recv_conf_free(b);
}

/*
 * Strings that need escaping, in scalar and list settings alike, survive
 * print and reload unchanged.
 */
static void
test_print_reload_escapes(void **state)
{
	struct recv_conf *a, *b;
	char err[256];
	unsigned i;

	write_conf("listen = \"127.0.0.1:7700\";\n"
	    "sender_keys = [\"/k/q\\\"uote.pub\", \"/k/back\\\\slash.pub\", "
	    "\"/k/tab\\tnl\\nctl\\x01del\\x7f.pub\", \"/k/\\\\\\\"\"];\n"
	    "staging_dir = \"/st\\\\\\\"x\";\nstore_dir = \"/srv/store\";\n"
	    "quarantine_log = \"/q.log\";\n"
	    "release_hooks = [\"echo \\\"$1\\\" \\\\n\", \"plain\"];\n"
	    "scan_hook = \"a\\\"b\\\\c\\td\";\n");
	a = recv_conf_load(path, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	assert_string_equal(a->sender_keys[0], "/k/q\"uote.pub");
	assert_string_equal(a->sender_keys[1], "/k/back\\slash.pub");
	assert_string_equal(a->sender_keys[2], "/k/tab\tnl\nctl\x01" "del\x7f" ".pub");
	assert_string_equal(a->sender_keys[3], "/k/\\\"");
	assert_string_equal(a->release_hooks[0], "echo \"$1\" \\n");
	b = print_and_reload(a);
	assert_int_equal(a->n_sender_keys, b->n_sender_keys);
	for (i = 0; i < a->n_sender_keys; i++)
		assert_string_equal(a->sender_keys[i], b->sender_keys[i]);
	assert_int_equal(a->n_release_hooks, b->n_release_hooks);
	for (i = 0; i < a->n_release_hooks; i++)
		assert_string_equal(a->release_hooks[i], b->release_hooks[i]);
	assert_string_equal(a->staging_dir, b->staging_dir);
	assert_string_equal(a->state_dir, b->state_dir);
	assert_string_equal(a->scan_hook, b->scan_hook);
	recv_conf_free(a);
	recv_conf_free(b);
}

/* Copies dir/from to dir/to: the same key under another file name. */
static void
copy_key(const char *from, const char *to)
{
	char a[400], b[400];
	uint8_t *data;
	size_t len;

	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(b, sizeof(b), "%s/%s", dir, to);
	assert_int_equal(util_read_file(a, 4096, &data, &len), 0);
	assert_int_equal(util_write_file_atomic(b, data, len, 0644), 0);
	free(data);
}

/*
 * The approval quorum counts people, so the configuration must name each
 * key once and must say how many are needed: the same key under two file
 * names, approvers without approval_threshold (fail open: 0), a threshold
 * of 0 or above the number of keys are all errors naming file, line and
 * setting.
 */
static void
test_approvers(void **state)
{
	struct sign_pubkey pub;
	struct recv_conf *c;
	char prefix[400], err[512], want[400];

	snprintf(prefix, sizeof(prefix), "%s/a", dir);
	assert_int_equal(sign_keygen(prefix, &pub), 0);
	snprintf(prefix, sizeof(prefix), "%s/b", dir);
	assert_int_equal(sign_keygen(prefix, &pub), 0);
	copy_key("a.pub", "a2.pub");

	expect_error(RECV_BASE, "approvers = [\"a.pub\", \"b.pub\", "
	    "\"a2.pub\"]; approval_threshold = 2;", "approvers: ", false);
	snprintf(want, sizeof(want), "%s/a.pub and %s/a2.pub", dir, dir);
	if (strstr(last_err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", last_err, want);
	expect_error(RECV_BASE, "approvers = [\"a.pub\", \"b.pub\"];",
	    "approval_threshold: required", false);
	expect_error(RECV_BASE, "approvers = [\"a.pub\"]; "
	    "approval_threshold = 0;", "approval_threshold: ", false);
	expect_error(RECV_BASE, "approvers = [\"a.pub\", \"b.pub\"]; "
	    "approval_threshold = 3;", "approval_threshold: ", false);
	expect_error(RECV_BASE, "approval_threshold = 1;",
	    "approval_threshold: ", false);
	expect_error(RECV_BASE, "approvers = [\"a.pub\", \"nokey.pub\"]; "
	    "approval_threshold = 1;", "approvers: ", false);

	write_conf(RECV_BASE "approvers = [\"a.pub\", \"b.pub\"];\n"
	    "approval_threshold = 2;\n");
	c = recv_conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->n_approvers, 2);
	assert_int_equal(c->approval_threshold, 2);
	recv_conf_free(c);
	write_conf(RECV_BASE);
	c = recv_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->approval_threshold, 0);
	recv_conf_free(c);
}

static int
setup(void **state)
{
	if (sign_init() != 0 || mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/test.conf", dir);
	return 0;
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
		cmocka_unit_test(test_recv_defaults),
		cmocka_unit_test(test_sender_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_wide_integers),
		cmocka_unit_test(test_missing_and_syntax),
		cmocka_unit_test(test_print_reload),
		cmocka_unit_test(test_print_reload_escapes),
		cmocka_unit_test(test_approvers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
