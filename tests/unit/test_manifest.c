/*
 * Manifest: canonical rendering, parse round trips, and every rejection
 * path of the parser (proto/manifest.c) and of common/manifest.c.
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
#include <sys/stat.h>
#include <unistd.h>

#include "common/manifest.h"
#include "common/sign.h"
#include "common/util.h"
#include "proto/manifest.h"

static const struct manifest_limits lim = { 1000, 4096, 1ull << 40 };

static const char *const good =
    "sluice-manifest 1\n"
    "name llama\n"
    "version 1.2.3\n"
    "created 2026-11-23T05:25:47Z\n"
    "meta a=1\n"
    "meta b=two%20words\n"
    "file e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 - empty\n"
    "file ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb 1 x run/a%20b\n"
    "end\n";

static struct manifest *
parse_ok(const char *text)
{
	struct manifest *m = NULL;
	const char *reason = NULL;
	char err[256];
	int rc;

	rc = manifest_parse(text, strlen(text), &lim, &m, &reason, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("parse failed: %s: %s", reason, err);
	return m;
}

static const char *
parse_reason(const char *text)
{
	struct manifest *m = NULL;
	const char *reason = NULL;
	char err[256];

	if (manifest_parse(text, strlen(text), &lim, &m, &reason, err,
	    sizeof(err)) == 0) {
		manifest_free(m);
		return "accepted";
	}
	assert_null(m);
	return reason;
}

static void
test_parse_good(void **state)
{
	struct manifest *m = parse_ok(good);

	assert_string_equal(m->name, "llama");
	assert_string_equal(m->version, "1.2.3");
	assert_string_equal(m->created, "2026-11-23T05:25:47Z");
	assert_int_equal(m->n_meta, 2);
	assert_string_equal(m->meta[1].value, "two words");
	assert_int_equal(m->n_files, 2);
	assert_string_equal(m->files[1].path, "run/a b");
	assert_true(m->files[1].exec);
	assert_false(m->files[0].exec);
	assert_int_equal(m->files[1].size, 1);
	assert_int_equal(m->text_len, strlen(good));
	assert_int_equal(manifest_find(m, "run/a b"), 1);
	assert_int_equal(manifest_find(m, "nope"), -1);
	manifest_free(m);
}

/* Building the same content renders exactly the canonical bytes. */
static void
test_render_canonical(void **state)
{
	struct manifest *m = manifest_new("llama", "1.2.3");
	uint8_t h0[32], h1[32];
	char err[256];

	util_unhex(h0, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	util_unhex(h1, 32, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
	assert_int_equal(manifest_set(m, "created", "2026-11-23T05:25:47Z"), 0);
	assert_int_equal(manifest_add_meta(m, "b", "two words"), 0);
	assert_int_equal(manifest_add_meta(m, "a", "1"), 0);
	assert_int_equal(manifest_add_file(m, "run/a b", 1, true, h1, NULL), 0);
	assert_int_equal(manifest_add_file(m, "empty", 0, false, h0, NULL), 0);
	assert_int_equal(manifest_finish(m, err, sizeof(err)), 0);
	assert_string_equal(m->text, good);
	manifest_free(m);
}

static void
test_approvals_roundtrip(void **state)
{
	struct manifest *m = parse_ok(good), *m2;
	uint8_t *obj;
	size_t len;
	const char *reason;
	char err[128];

	m->approvals = calloc(2, sizeof(*m->approvals));
	m->n_approvals = 2;
	memset(m->approvals[0].key_id, 0xab, 8);
	memset(m->approvals[1].sig, 0xcd, 64);
	assert_int_equal(manifest_render_object(m, &obj, &len), 0);
	assert_int_equal(manifest_parse(obj, len, &lim, &m2, &reason, err,
	    sizeof(err)), 0);
	assert_int_equal(m2->n_approvals, 2);
	assert_memory_equal(m2->approvals[0].key_id, m->approvals[0].key_id, 8);
	assert_memory_equal(m2->approvals[1].sig, m->approvals[1].sig, 64);
	assert_memory_equal(m2->digest, m->digest, 32);
	free(obj);
	manifest_free(m);
	manifest_free(m2);
}

#define H64 "0000000000000000000000000000000000000000000000000000000000000000"
#define HDR "sluice-manifest 1\nname n\nversion v\n"

static void
test_rejections(void **state)
{
	static const struct {
		const char *text;
		const char *reason;
	} cases[] = {
		{ "", "manifest_magic" },
		{ "sluice-manifest 2\nname n\nversion v\nend\n", "manifest_magic" },
		{ HDR, "manifest_truncated" },
		{ HDR "end", "manifest_truncated" },
		{ "sluice-manifest 1\nversion v\nname n\nend\n", "manifest_order" },
		{ "sluice-manifest 1\nname n\nend\n", "manifest_order" },
		{ "sluice-manifest 1\nname n\nname m\nversion v\nend\n", "manifest_order" },
		{ HDR "reason r\nchanges c\nend\n", "manifest_order" },
		{ HDR "colour blue\nend\n", "manifest_syntax" },
		{ HDR "created yesterday\nend\n", "manifest_syntax" },
		{ HDR "priority 1000\nend\n", "manifest_syntax" },
		{ HDR "priority 01\nend\n", "manifest_syntax" },
		{ HDR "meta b=1\nmeta a=1\nend\n", "manifest_sort" },
		{ HDR "meta =1\nend\n", "manifest_syntax" },
		{ HDR "meta k=\nend\n", "manifest_syntax" },
		{ HDR "changes a b\nend\n", "manifest_syntax" },
		{ HDR "changes a%41\nend\n", "manifest_escape" },
		{ HDR "changes a%2a\nend\n", "manifest_escape" },
		{ HDR "changes a%00\nend\n", "manifest_escape" },
		{ HDR "changes a%2\nend\n", "manifest_escape" },
		{ HDR "changes a\tb\nend\n", "manifest_escape" },
		{ HDR "changes a\r\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " 0 - /etc/passwd\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a/../../x\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - ..\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a//b\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a/\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - ./a\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a%0Ab\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a%1Bb\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - a%7Fb\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - .sluice/manifest\nend\n", "unsafe_path" },
		{ HDR "file " H64 " 0 - b\nfile " H64 " 0 - a\nend\n", "manifest_sort" },
		{ HDR "file " H64 " 0 - a\nfile " H64 " 0 - a\nend\n", "manifest_sort" },
		{ HDR "file " H64 " 0 - A\nfile " H64 " 0 - a\nend\n", "case_collision" },
		{ HDR "file " H64 " 0 - a\nfile " H64 " 0 - a/b\nend\n", "case_collision" },
		{ HDR "file " H64 " 0 - A\nfile " H64 " 0 - a-b\nfile " H64 " 0 - a/b\nend\n", "case_collision" },
		{ HDR "file " H64 " 0 - A/b\nfile " H64 " 0 - a\nend\n", "case_collision" },
		{ HDR "file " H64 " 0 - x/Y\nfile " H64 " 0 - x/y/z/w\nend\n", "case_collision" },
		{ HDR "file " H64 " 0 - d/A/b\nfile " H64 " 0 - d/a/B\nend\n", "case_collision" },
		{ HDR "file " H64 " 01 - a\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " -1 - a\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " 99999999999999999999 - a\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " 1 y a\nend\n", "manifest_syntax" },
		{ HDR "file " H64 "0 1 - a\nend\n", "manifest_syntax" },
		{ HDR "file 0000000000000000000000000000000000000000000000000000000000000ABC 1 - a\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " 1 - a b\nend\n", "manifest_syntax" },
		{ HDR "file " H64 " 1 - a\nname x\nend\n", "manifest_syntax" },
		{ HDR "end\napproval 00 00\n", "manifest_syntax" },
		{ HDR "end\nend\n", "manifest_syntax" },
		{ HDR "end\nfile " H64 " 0 - a\n", "manifest_syntax" },
		{ HDR "file " H64 " 1099511627777 - a\nend\n", "too_large" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = parse_reason(cases[i].text);

		if (strcmp(got, cases[i].reason) != 0)
			fail_msg("case %zu: expected %s, got %s\n%s", i,
			    cases[i].reason, got, cases[i].text);
	}
}

/* What the collision check must let through. */
static void
test_no_collision(void **state)
{
	static const char *const texts[] = {
		HDR "file " H64 " 0 - a/b\nfile " H64 " 0 - a/c\nend\n",
		HDR "file " H64 " 0 - a/b\nfile " H64 " 0 - ab\nend\n",
		HDR "file " H64 " 0 - a-b\nfile " H64 " 0 - a/b\nend\n",
		HDR "file " H64 " 0 - a/b/c\nfile " H64 " 0 - a/bc\nend\n",
		HDR "file " H64 " 0 - A/b\nfile " H64 " 0 - a/c\nend\n",
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		manifest_free(parse_ok(texts[i]));
}

/*
 * n files whose paths are `depth` directories deep, each path about
 * 1000 bytes: the same number of bytes whatever the depth.
 */
static struct manifest *
deep_manifest(size_t n, unsigned depth)
{
	static const uint8_t zero[32];
	struct manifest *m = manifest_new("deep", "1");
	char path[1200], err[256];
	size_t comp = 1000 / depth - 1, off, i, d;

	assert_non_null(m);
	for (i = 0; i < n; i++) {
		off = 0;
		for (d = 0; d < depth; d++) {
			memset(path + off, 'd', comp);
			off += comp;
			path[off++] = '/';
		}
		snprintf(path + off, sizeof(path) - off, "f%06zu", i);
		assert_int_equal(manifest_add_file(m, path, 0, false, zero,
		    NULL), 0);
	}
	assert_int_equal(manifest_finish(m, err, sizeof(err)), 0);
	return m;
}

/* Best of three: the seconds manifest_parse takes on m's text. */
static double
parse_seconds(const struct manifest *m)
{
	static const struct manifest_limits big = { 1000000, 4096,
		1ull << 40 };
	double best = 1e9;
	int i;

	for (i = 0; i < 3; i++) {
		struct manifest *p = NULL;
		const char *reason;
		char err[256];
		uint64_t t0 = util_now_ns();
		double s;

		assert_int_equal(manifest_parse(m->text, m->text_len, &big, &p,
		    &reason, err, sizeof(err)), 0);
		s = (double)(util_now_ns() - t0) / 1e9;
		best = s < best ? s : best;
		manifest_free(p);
	}
	return best;
}

/*
 * The review's stall: 20,000 files 500 directories deep took 1.9 s in
 * the collision check, which looked every prefix of every path up by
 * binary search (n * depth * log n string compares).  The check must be
 * linear in the bytes of the paths: parsing the deep manifest may take
 * no more than a few times as long as parsing one of the same size whose
 * paths are 4 directories deep.  A ratio, not a wall-clock bound, so a
 * slow or busy machine does not fail it.
 */
static void
test_collision_check_linear(void **state)
{
	struct manifest *deep = deep_manifest(20000, 500);
	struct manifest *flat = deep_manifest(20000, 4);
	double td, tf;

	assert_true(deep->text_len > 20000 * 1000);
	assert_true(flat->text_len > 20000 * 1000);
	td = parse_seconds(deep);
	tf = parse_seconds(flat);
	printf("test_manifest: parse %.3f s at depth 500, %.3f s at depth 4 "
	    "(%zu and %zu bytes)\n", td, tf, deep->text_len, flat->text_len);
	assert_true(td < 4 * tf + 0.02);
	manifest_free(deep);
	manifest_free(flat);
}

static void
test_limits(void **state)
{
	struct manifest_limits small = { 1, 8, 100 };
	struct manifest *m = NULL;
	const char *reason;
	char err[128];
	const char *two = HDR "file " H64 " 0 - a\nfile " H64 " 0 - b\nend\n";
	const char *longp = HDR "file " H64 " 0 - abcdefghi\nend\n";

	assert_int_equal(manifest_parse(two, strlen(two), &small, &m, &reason,
	    err, sizeof(err)), -EBADMSG);
	assert_string_equal(reason, "too_many_files");
	assert_int_equal(manifest_parse(longp, strlen(longp), &small, &m,
	    &reason, err, sizeof(err)), -EBADMSG);
	assert_string_equal(reason, "unsafe_path");
}

static void
test_long_line(void **state)
{
	size_t n = PMAN_MAX_LINE + 100;
	char *text = malloc(n + 64);

	strcpy(text, HDR "changes ");
	memset(text + strlen(text), 'x', n);
	strcpy(text + strlen(HDR "changes ") + n, "\nend\n");
	assert_string_equal(parse_reason(text), "manifest_limit");
	free(text);
}

static void
test_escape_roundtrip(void **state)
{
	char in[256], esc[1024], out[256];
	size_t i, n, on;

	for (i = 0; i < 255; i++)
		in[i] = (char)(i + 1);
	n = pman_escape(in, 255, esc, sizeof(esc));
	assert_true(n > 255);
	assert_int_equal(pman_unescape(esc, n, out, sizeof(out), &on), PMAN_OK);
	assert_int_equal(on, 255);
	assert_memory_equal(in, out, 255);
	assert_null(memchr(esc, ' ', n));
	assert_null(memchr(esc, '\n', n));
}

static void
test_build_dir(void **state)
{
	char dir[] = "/tmp/sluice-test-manifest.XXXXXX", p[512], err[256];
	struct manifest *m;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/sub/abc", dir);
	fp = fopen(p, "w");
	fputs("abc", fp);
	fclose(fp);
	snprintf(p, sizeof(p), "%s/.sluice", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/.sluice/ignored", dir);
	fclose(fopen(p, "w"));
	m = manifest_new("b", "1");
	assert_int_equal(manifest_add_dir(m, dir, err, sizeof(err)), 0);
	assert_int_equal(manifest_finish(m, err, sizeof(err)), 0);
	assert_int_equal(m->n_files, 1);
	assert_string_equal(m->files[0].path, "sub/abc");
	assert_non_null(strstr(m->text, "file ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 3 - sub/abc\n"));
	manifest_free(m);

	/* A symbolic link is refused, never followed. */
	snprintf(p, sizeof(p), "%s/link", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	m = manifest_new("b", "1");
	assert_int_equal(manifest_add_dir(m, dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "symbolic link"));
	manifest_free(m);
	assert_int_equal(util_rmtree(dir), 0);
}

/*
 * Version order (PROTOCOL.md 7.8): numbers by value, then the whole
 * strings bytewise, so different strings never compare equal and the
 * order stays total: antisymmetric and transitive over the list below,
 * which is sorted.
 */
static void
test_version_order(void **state)
{
	static const char *const sorted[] = {
		"0", "00", "1.0-rc1", "1.0", "1.0+a", "1.0+b", "1.00",
		"1.0.1", "01.1", "1.01", "1.1", "1.1.0", "1.2", "1.10",
		"1.a", "2", "20261123T052547Z",
	};
	size_t n = sizeof(sorted) / sizeof(sorted[0]), i, j;

	assert_true(manifest_version_cmp("1.01", "1.1") != 0);
	assert_true(manifest_version_cmp("1.0", "1.00") != 0);
	assert_true(manifest_version_cmp("0", "00") != 0);
	assert_int_equal(manifest_version_cmp("1.1", "1.1"), 0);
	assert_true(manifest_version_cmp("1.10", "1.9") > 0);
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			int c = manifest_version_cmp(sorted[i], sorted[j]);
			int want = i < j ? -1 : i > j;

			if (c != want)
				fail_msg("cmp(%s, %s) = %d, want %d",
				    sorted[i], sorted[j], c, want);
		}
}

/*
 * A quorum counts keys, not list entries: the same public key listed
 * twice (a copied .pub file) counts once.
 */
static void
test_count_distinct_keys(void **state)
{
	char tmpl[] = "/tmp/sluice-test-approve.XXXXXX", prefix[64];
	struct sign_pubkey keys[3];
	struct sign_seckey *sk;
	struct manifest *m = parse_ok(good);
	char ids[64];
	int rc;

	assert_int_equal(sign_init(), 0);
	assert_non_null(mkdtemp(tmpl));
	snprintf(prefix, sizeof(prefix), "%s/a", tmpl);
	assert_int_equal(sign_keygen(prefix, &keys[0]), 0);
	snprintf(prefix, sizeof(prefix), "%s/a.key", tmpl);
	sk = sign_seckey_load(prefix, &rc, NULL, 0);
	assert_non_null(sk);
	assert_int_equal(manifest_approve(m, sk), 0);
	keys[1] = keys[0];
	keys[2] = keys[0];
	assert_int_equal(manifest_count_approvals(m, keys, 1, ids,
	    sizeof(ids)), 1);
	assert_int_equal(manifest_count_approvals(m, keys, 3, ids,
	    sizeof(ids)), 1);
	assert_int_equal(strlen(ids), 16);
	sign_seckey_free(sk);
	manifest_free(m);
	assert_int_equal(util_rmtree(tmpl), 0);
}

/*
 * destination: optional, signed, in its place between reason and meta;
 * a manifest without it renders exactly as before.
 */
static void
test_destination(void **state)
{
	static const char *const with =
	    "sluice-manifest 1\nname n\nversion 1\nreason r\n"
	    "destination lab%20b\nmeta a=1\nend\n";
	struct manifest *m = parse_ok(with), *m2;
	char err[128];

	assert_string_equal(m->destination, "lab b");
	assert_string_equal(m->text, with);
	manifest_free(m);
	assert_string_equal(parse_reason("sluice-manifest 1\nname n\n"
	    "version 1\nmeta a=1\ndestination x\nend\n"), "manifest_order");
	assert_string_equal(parse_reason("sluice-manifest 1\nname n\n"
	    "version 1\ndestination x\nreason r\nend\n"), "manifest_order");
	assert_string_equal(parse_reason("sluice-manifest 1\nname n\n"
	    "version 1\ndestination x\ndestination x\nend\n"),
	    "manifest_order");
	m2 = manifest_new("n", "1");
	assert_int_equal(manifest_set(m2, "reason", "r"), 0);
	assert_int_equal(manifest_set(m2, "destination", "lab b"), 0);
	assert_int_equal(manifest_add_meta(m2, "a", "1"), 0);
	assert_int_equal(manifest_finish(m2, err, sizeof(err)), 0);
	assert_string_equal(m2->text, with);
	manifest_free(m2);
	m = parse_ok(good);
	assert_null(m->destination);
	manifest_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_render_canonical),
		cmocka_unit_test(test_approvals_roundtrip),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_escape_roundtrip),
		cmocka_unit_test(test_build_dir),
		cmocka_unit_test(test_version_order),
		cmocka_unit_test(test_count_distinct_keys),
		cmocka_unit_test(test_destination),
		cmocka_unit_test(test_no_collision),
		cmocka_unit_test(test_collision_check_linear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
