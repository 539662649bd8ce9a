/*
 * publish.conf (receiver/publish/conf.c): defaults, relative paths, the
 * per-type store keys, rules anchored to the whole name, and hostile
 * configurations, each refused with the setting (and line) named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "receiver/publish/publish.h"

static char dir[] = "/tmp/sluice-test-pubconf.XXXXXX";
static char path[300];

static void
write_conf(const char *text)
{
	FILE *fp = fopen(path, "w");

	fputs(text, fp);
	fclose(fp);
}

#define HEAD "store_dir = \"store\";\nstate_dir = \"/var/lib/p\";\n" \
    "publish_log = \"p.log\";\n"
#define DIRSTORE "stores = ( { name = \"models\"; type = \"directory\"; " \
    "path = \"models\"; } );\n"
#define RULE "rules = ( { bundles = \"llama-.*\"; stores = [ \"models\" ]; } );\n"

static void
test_defaults(void **state)
{
	struct pub_conf *c;
	char err[512], want[400];

	write_conf(HEAD DIRSTORE RULE);
	c = pub_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	snprintf(want, sizeof(want), "%s/store", dir);
	assert_string_equal(c->store_dir, want);
	snprintf(want, sizeof(want), "%s/models", dir);
	assert_string_equal(c->stores[0].path, want);
	assert_string_equal(c->state_dir, "/var/lib/p");
	assert_string_equal(c->audit_log, "/var/lib/p/publish-audit.log");
	assert_null(c->audit_key);
	assert_null(c->metrics_file);
	assert_int_equal(c->retries, 20);
	assert_true(c->retry_backoff == 5 && c->retry_backoff_max == 600);
	assert_true(c->rescan_interval == 60);
	assert_int_equal(c->n_stores, 1);
	assert_int_equal(c->stores[0].type, STORE_DIRECTORY);
	/* Anchored: a prefix or a suffix match is no match. */
	assert_true(pub_conf_wants(c, 0, "llama-7b"));
	assert_false(pub_conf_wants(c, 0, "xllama-7b"));
	assert_false(pub_conf_wants(c, 0, "llama"));
	assert_non_null(pub_conf_store(c, "models"));
	assert_null(pub_conf_store(c, "nope"));
	pub_conf_free(c);
}

static void
test_store_types(void **state)
{
	struct pub_conf *c;
	char err[512];

	write_conf(HEAD "stores = (\n"
	    "{ name = \"r\"; type = \"oci\"; registry = \"reg.lan:5000\"; },\n"
	    "{ name = \"s\"; type = \"s3\"; endpoint = \"http://127.0.0.1:9000\";"
	    " bucket = \"b\"; prefix = \"a/b\"; credentials = \"/etc/c\";"
	    " part_size = \"16M\"; }\n);\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"r\", \"s\" ]; } );\n");
	c = pub_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->stores[0].type, STORE_OCI);
	assert_true(c->stores[0].tls_verify);
	assert_null(c->stores[0].oci_credentials);
	assert_int_equal(c->stores[1].type, STORE_S3);
	assert_string_equal(c->stores[1].region, "us-east-1");
	assert_string_equal(c->stores[1].prefix, "a/b/");
	assert_int_equal(c->stores[1].part_size, 16ull << 20);
	assert_string_equal(c->stores[1].credentials, "/etc/c");
	pub_conf_free(c);
}

/* Each refused, the message holding want. */
static void
expect_error(const char *text, const char *want)
{
	struct pub_conf *c;
	char err[512] = "";

	write_conf(text);
	c = pub_conf_load(path, err, sizeof(err));
	if (c != NULL || strstr(err, want) == NULL)
		fail_msg("config:\n%s\nerror \"%s\", wanted \"%s\"", text, err,
		    want);
}

static void
test_hostile(void **state)
{
	expect_error(HEAD DIRSTORE RULE "colour = 1;\n",
	    ":6: colour: unknown setting");
	expect_error(DIRSTORE RULE "state_dir = \"s\"; publish_log = \"l\";\n",
	    "store_dir: is required");
	expect_error(HEAD RULE, "stores: is required");
	expect_error(HEAD DIRSTORE, "rules: is required");
	expect_error(HEAD "stores = ( );\n" RULE, "stores: must be a non-empty");
	expect_error(HEAD "stores = ( { name = \"m\"; type = \"ftp\"; } );\n"
	    RULE, "stores.m: type \"ftp\"");
	expect_error(HEAD "stores = ( { type = \"directory\"; path = \"x\"; } "
	    ");\n" RULE, "stores: a store has no name");
	expect_error(HEAD "stores = ( { name = \"../x\"; type = \"directory\"; "
	    "path = \"x\"; } );\n" RULE, "stores.name: \"../x\"");
	expect_error(HEAD "stores = ( { name = \"models\"; type = "
	    "\"directory\"; } );\n" RULE, "stores.models: path is required");
	expect_error(HEAD "stores = ( { name = \"models\"; type = "
	    "\"directory\"; path = \"x\"; bucket = \"b\"; } );\n" RULE,
	    "stores.models.bucket: unknown setting for a store of type "
	    "directory");
	expect_error(HEAD "stores = ( { name = \"models\"; type = "
	    "\"directory\"; path = \"x\"; },\n{ name = \"models\"; type = "
	    "\"directory\"; path = \"y\"; } );\n" RULE,
	    "\"models\" is used twice");
	expect_error(HEAD DIRSTORE "rules = ( { bundles = \".*\"; stores = "
	    "[ \"nosuch\" ]; } );\n", "no store is called \"nosuch\"");
	expect_error(HEAD DIRSTORE "rules = ( { bundles = \"(\"; stores = "
	    "[ \"models\" ]; } );\n", "rules.bundles: bad regular expression");
	expect_error(HEAD DIRSTORE "rules = ( { bundles = \".*\"; stores = "
	    "[ ]; } );\n", "rules.stores: must be a non-empty array");
	expect_error(HEAD DIRSTORE "rules = ( { bundles = \".*\"; stores = "
	    "[ \"models\" ]; when = 1; } );\n", "rules: unknown setting when");
	expect_error(HEAD DIRSTORE RULE "retries = -1;\n",
	    "retries: must be between 0 and 1000");
	expect_error(HEAD DIRSTORE RULE "retry_backoff = \"5\";\n",
	    "retry_backoff: must be a number");
	expect_error(HEAD "stores = ( { name = \"s\"; type = \"s3\"; endpoint "
	    "= \"ftp://x\"; bucket = \"b\"; credentials = \"c\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"s\" ]; } );\n",
	    "stores.s.endpoint: \"ftp://x\": not an http");
	expect_error(HEAD "stores = ( { name = \"s\"; type = \"s3\"; endpoint "
	    "= \"http://x\"; bucket = \"b\"; credentials = \"c\"; part_size "
	    "= \"1K\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"s\" ]; } );\n",
	    "stores.s.part_size: must be between");
	expect_error(HEAD "stores = ( { name = \"s\"; type = \"s3\"; endpoint "
	    "= \"http://x\"; bucket = \"b\"; credentials = \"c\"; part_size "
	    "= \"99999999999999999999T\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"s\" ]; } );\n",
	    "stores.s.part_size: not a size");
	expect_error(HEAD "stores = ( { name = \"s\"; type = \"s3\"; endpoint "
	    "= \"http://x\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"s\" ]; } );\n",
	    "stores.s: endpoint, bucket and credentials are required");
	expect_error(HEAD "stores = ( { name = \"r\"; type = \"oci\"; "
	    "registry = \"no port\"; } );\n"
	    "rules = ( { bundles = \".*\"; stores = [ \"r\" ]; } );\n",
	    "stores.r.registry: \"no port\": not host:port");
	expect_error(HEAD DIRSTORE RULE "store_dir = \"again\";\n",
	    "duplicate setting");
	expect_error("store_dir = ", "syntax error");
}

/* -p prints what loads back to the same configuration. */
static void
test_print_reload(void **state)
{
	struct pub_conf *a, *b;
	char err[512], *text = NULL;
	size_t len = 0, i;
	FILE *fp;

	write_conf(HEAD "audit_key = \"k\\\"ey\";\nretries = 7;\n"
	    "stores = (\n{ name = \"m\"; type = \"directory\"; path = "
	    "\"/srv/m\"; },\n{ name = \"r\"; type = \"oci\"; registry = "
	    "\"r:5000\"; tls_verify = false; },\n{ name = \"s\"; type = "
	    "\"s3\"; endpoint = \"http://x:1\"; bucket = \"b\"; credentials "
	    "= \"/c\"; part_size = 6291456; }\n);\n"
	    "rules = ( { bundles = \"a\\\\.b|c\"; stores = [ \"s\", "
	    "\"m\" ]; },\n{ bundles = \".*\"; stores = [ \"r\" ]; } );\n");
	a = pub_conf_load(path, err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(a->rules[0].pattern, "a\\.b|c");
	fp = open_memstream(&text, &len);
	pub_conf_print(a, fp);
	fclose(fp);
	write_conf(text);
	b = pub_conf_load(path, err, sizeof(err));
	if (b == NULL)
		fail_msg("%s\n%s", err, text);
	assert_string_equal(a->audit_key, b->audit_key);
	assert_string_equal(a->audit_log, b->audit_log);
	assert_int_equal(b->retries, 7);
	assert_int_equal(a->n_stores, b->n_stores);
	for (i = 0; i < a->n_stores; i++) {
		assert_string_equal(a->stores[i].name, b->stores[i].name);
		assert_int_equal(a->stores[i].type, b->stores[i].type);
		assert_int_equal(a->stores[i].tls_verify,
		    b->stores[i].tls_verify);
		assert_int_equal(a->stores[i].part_size,
		    b->stores[i].part_size);
	}
	assert_int_equal(b->n_rules, 2);
	assert_string_equal(b->rules[0].pattern, "a\\.b|c");
	assert_int_equal(b->rules[0].stores[0], 2);
	assert_int_equal(b->rules[0].stores[1], 0);
	assert_true(pub_conf_wants(b, 2, "a.b"));
	assert_false(pub_conf_wants(b, 2, "axb"));
	free(text);
	pub_conf_free(a);
	pub_conf_free(b);
}

static void
test_secrets(void **state)
{
	struct pub_conf *c;
	char err[512] = "", cred[400];
	FILE *fp;

	snprintf(cred, sizeof(cred), "%s/s3.credentials", dir);
	fp = fopen(cred, "w");
	fputs("AKIAEXAMPLE:sEcReT\n", fp);
	fclose(fp);
	write_conf(HEAD "stores = ( { name = \"s\"; type = \"s3\"; endpoint "
	    "= \"http://x\"; bucket = \"b\"; credentials = \"s3.credentials\";"
	    " } );\nrules = ( { bundles = \".*\"; stores = [ \"s\" ]; } );\n");
	c = pub_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	chmod(cred, 0644);
	assert_int_equal(pub_conf_check_secrets(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "stores.s.credentials"));
	assert_null(strstr(err, "sEcReT"));
	chmod(cred, 0600);
	assert_int_equal(pub_conf_check_secrets(c, err, sizeof(err)), 0);
	unlink(cred);
	assert_int_equal(pub_conf_check_secrets(c, err, sizeof(err)), -1);
	pub_conf_free(c);
}

static int
setup(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/publish.conf", dir);
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
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_store_types),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_print_reload),
		cmocka_unit_test(test_secrets),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
