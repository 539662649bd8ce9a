/*
 * Audit log: a chain that verifies, and every kind of tampering detected:
 * any single bit flipped, a record deleted, two swapped, one inserted, a
 * checkpoint signed by another key.  A crash mid-append leaves the last
 * record complete or absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/audit.h"
#include "common/sign.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-audit.XXXXXX";
static char logpath[300];
static struct sign_seckey *sk;
static struct sign_pubkey pk, other_pk;

/* Writes a log of n records; returns its bytes. */
static uint8_t *
make_log(unsigned n, unsigned every, size_t *len)
{
	struct audit *a;
	uint8_t *buf, h[32];
	unsigned i;
	int rc;

	unlink(logpath);
	a = audit_open(logpath, sk, every, &rc);
	assert_non_null(a);
	memset(h, 0xab, sizeof(h));
	for (i = 0; i < n; i++) {
		char version[32];
		struct audit_record r = {
			.decision = i % 3 ? "RELEASED" : "QUARANTINED",
			.transfer = 0x1000 + i,
			.bundle = i % 5 ? "model" : "evil name hash=00 sig=11",
			.version = version,
			.reason = i % 3 ? "verified" : "approvals",
			.manifest_sha256 = h,
			.approvers = "0011223344556677,8899aabbccddeeff",
			.detail = "files=3 bytes=1234",
		};

		snprintf(version, sizeof(version), "1.%u.0", i);
		assert_int_equal(audit_append(a, &r), 0);
	}
	audit_close(a);
	assert_int_equal(util_read_file(logpath, 1 << 24, &buf, len), 0);
	return buf;
}

static int
verify_bytes(const uint8_t *buf, size_t len, const struct sign_pubkey *key,
    char *err, size_t errlen)
{
	char p[320];
	uint64_t records, tail;
	int fd;

	snprintf(p, sizeof(p), "%s/copy", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(util_write_all(fd, buf, len), 0);
	close(fd);
	return audit_verify(p, key, err, errlen, &records, &tail);
}

static void
test_intact(void **state)
{
	size_t len;
	uint8_t *buf = make_log(40, 16, &len);
	char err[256];
	uint64_t records, tail;

	assert_int_equal(audit_verify(logpath, &pk, err, sizeof(err), &records,
	    &tail), 0);
	assert_int_equal(records, 40);
	assert_int_equal(tail, 8);
	/* Another receiver's key does not verify the checkpoints. */
	assert_int_equal(audit_verify(logpath, &other_pk, err, sizeof(err),
	    &records, &tail), -EBADMSG);
	assert_non_null(strstr(err, "signature"));
	free(buf);
}

/* Every bit of a log of at least 64 KiB, each flipped alone. */
static void
test_every_bit(void **state)
{
	size_t len, i;
	unsigned b;
	uint8_t *buf = make_log(230, 16, &len);
	char err[256];
	unsigned step = getenv("SLUICE_AUDIT_EXHAUSTIVE") ? 1 : 61;

	assert_true(len >= 65536);
	for (i = 0; i < len; i += step) {
		for (b = 0; b < 8; b++) {
			buf[i] ^= (uint8_t)(1u << b);
			if (verify_bytes(buf, len, &pk, err, sizeof(err)) == 0)
				fail_msg("flip of bit %u of byte %zu undetected",
				    b, i);
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	/* And the last byte of every line (the newline) and of every hash. */
	for (i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] ^= 1;
		assert_int_not_equal(verify_bytes(buf, len, &pk, err,
		    sizeof(err)), 0);
		buf[i] ^= 1;
	}
	free(buf);
}

/* Offsets of the line starts. */
static size_t
lines(const uint8_t *buf, size_t len, size_t *start, size_t max)
{
	size_t n = 0, i;

	start[n++] = 0;
	for (i = 0; i + 1 < len && n < max; i++)
		if (buf[i] == '\n')
			start[n++] = i + 1;
	return n;
}

static void
test_delete_reorder_insert(void **state)
{
	size_t len, start[128], n, k;
	uint8_t *buf = make_log(40, 16, &len), *t = malloc(len * 2);
	char err[256];

	n = lines(buf, len, start, 128);
	assert_true(n > 40);
	for (k = 0; k + 1 < n; k++) {
		size_t a = start[k], b = start[k + 1], c = k + 2 < n ?
		    start[k + 2] : len;

		/* Delete line k (not the last: see PROTOCOL.md). */
		memcpy(t, buf, a);
		memcpy(t + a, buf + b, len - b);
		if (verify_bytes(t, len - (b - a), &pk, err, sizeof(err)) == 0)
			fail_msg("deleting line %zu undetected", k + 1);
		/* Swap lines k and k+1. */
		memcpy(t, buf, len);
		memcpy(t + a, buf + b, c - b);
		memcpy(t + a + (c - b), buf + a, b - a);
		if (verify_bytes(t, len, &pk, err, sizeof(err)) == 0)
			fail_msg("swapping lines %zu and %zu undetected",
			    k + 1, k + 2);
		/* Insert a copy of line k after it. */
		memcpy(t, buf, b);
		memcpy(t + b, buf + a, b - a);
		memcpy(t + b + (b - a), buf + b, len - b);
		if (verify_bytes(t, len + (b - a), &pk, err, sizeof(err)) == 0)
			fail_msg("duplicating line %zu undetected", k + 1);
	}
	free(t);
	free(buf);
}

/* A crash during an append: whatever prefix of the last line reached the
 * disk, reopening leaves a log that verifies and can be extended. */
static void
test_torn_append(void **state)
{
	size_t len, start[128], n, cut;
	uint8_t *buf = make_log(20, 16, &len);
	char err[256];
	uint64_t records, tail;

	n = lines(buf, len, start, 128);
	for (cut = start[n - 1] + 1; cut < len; cut += 7) {
		struct audit *a;
		struct audit_record r = { .decision = "RELEASED",
			.transfer = 1, .bundle = "b", .version = "9",
			.reason = "verified" };
		int fd, rc;

		fd = open(logpath, O_WRONLY | O_TRUNC);
		assert_int_equal(util_write_all(fd, buf, cut), 0);
		close(fd);
		a = audit_open(logpath, sk, 16, &rc);
		assert_non_null(a);
		assert_int_equal(audit_append(a, &r), 0);
		audit_close(a);
		if (audit_verify(logpath, &pk, err, sizeof(err), &records,
		    &tail) != 0)
			fail_msg("cut at %zu: %s", cut, err);
		assert_int_equal(records, 20); /* 19 whole + the new one */
	}
	free(buf);
}

static int
setup(void **state)
{
	char prefix[320];
	int rc;

	if (mkdtemp(dir) == NULL || sign_init() != 0)
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/audit.log", dir);
	snprintf(prefix, sizeof(prefix), "%s/recv", dir);
	if (sign_keygen(prefix, &pk) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s/other", dir);
	if (sign_keygen(prefix, &other_pk) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s/recv.key", dir);
	sk = sign_seckey_load(prefix, &rc, NULL, 0);
	return sk == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	sign_seckey_free(sk);
	return util_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intact),
		cmocka_unit_test(test_every_bit),
		cmocka_unit_test(test_delete_reorder_insert),
		cmocka_unit_test(test_torn_append),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
