/*
 * The one table of manifest limits: the receiver's configuration defaults
 * are its values, and limits_check_manifest (the sender's check) refuses
 * exactly past them.
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

#include "common/conf.h"
#include "common/limits.h"
#include "common/manifest.h"

static const uint8_t zero[32];

static void
test_receiver_defaults_are_the_table(void **state)
{
	char dir[] = "/tmp/sluice-test-limits.XXXXXX", path[300], err[256];
	struct recv_conf *c;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.conf", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("listen = \"127.0.0.1:7700\";\nsender_keys = [\"s.pub\"];\n"
	    "staging_dir = \"st\";\nstore_dir = \"/srv/store\";\n"
	    "quarantine_log = \"q.log\";\n", fp);
	fclose(fp);
	c = recv_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->max_files, LIMITS_MAX_FILES);
	assert_int_equal(c->max_path_len, LIMITS_MAX_PATH_LEN);
	assert_true(c->max_bundle_bytes == (uint64_t)LIMITS_MAX_BUNDLE_BYTES);
	assert_string_equal(c->name_pattern, LIMITS_NAME_PATTERN);
	assert_string_equal(c->version_pattern, LIMITS_VERSION_PATTERN);
	recv_conf_free(c);
	unlink(path);
	rmdir(dir);
}

static int
check(const char *name, const char *version, size_t n_files,
    size_t path_len, uint64_t size)
{
	struct manifest *m = manifest_new(name, version);
	char path[LIMITS_MAX_PATH_LEN + 64], err[256];
	size_t i;
	int rc;

	assert_non_null(m);
	for (i = 0; i < n_files; i++) {
		int n = snprintf(path, sizeof(path), "f%zu", i);

		if (i == 0 && path_len > (size_t)n) {
			memset(path + n, 'x', path_len - (size_t)n);
			path[path_len] = '\0';
		}
		assert_int_equal(manifest_add_file(m, path, i == 0 ? size : 0,
		    false, zero, NULL), 0);
	}
	rc = limits_check_manifest(m, err, sizeof(err));
	if (rc != 0)
		printf("refused: %s\n", err);
	manifest_free(m);
	return rc;
}

static void
test_check_edges(void **state)
{
	assert_int_equal(check("llama-3.1_8B", "1.2.3+rc1", 1, 10, 1), 0);
	assert_int_equal(check("bad name", "1", 1, 10, 1), -EINVAL);
	assert_int_equal(check(".hidden", "1", 1, 10, 1), -EINVAL);
	assert_int_equal(check("m", "2.0 $(touch${IFS}pwned) *", 1, 10, 1),
	    -EINVAL);
	assert_int_equal(check("m", "2.0 reason=ok", 1, 10, 1), -EINVAL);
	assert_int_equal(check("m", "1_2", 1, 10, 1), -EINVAL);
	assert_int_equal(check("m", "1", 1, LIMITS_MAX_PATH_LEN, 1), 0);
	assert_int_equal(check("m", "1", 1, LIMITS_MAX_PATH_LEN + 1, 1),
	    -EINVAL);
	assert_int_equal(check("m", "1", 1, 10, LIMITS_MAX_BUNDLE_BYTES), 0);
	assert_int_equal(check("m", "1", 1, 10,
	    (uint64_t)LIMITS_MAX_BUNDLE_BYTES + 1), -EINVAL);
	assert_int_equal(check("m", "1", LIMITS_MAX_FILES, 0, 0), 0);
	assert_int_equal(check("m", "1", LIMITS_MAX_FILES + 1, 0, 0),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receiver_defaults_are_the_table),
		cmocka_unit_test(test_check_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
