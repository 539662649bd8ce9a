/*
 * Audit log: a chain that verifies, and every kind of tampering detected:
 * any single bit flipped, a record deleted, two swapped, one inserted; and
 * the forgeries of someone who can rewrite the file but lacks the receiver
 * key (signatures stripped and the chain recomputed, a record edited and
 * the chain recomputed, records signed by another key, the log cut back
 * behind its head file).  A crash mid-append leaves the last record
 * complete or absent.
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
#include "common/hash.h"
#include "common/sign.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-audit.XXXXXX";
static char logpath[300], headpath[300];
static struct sign_seckey *sk, *other_sk;
static struct sign_pubkey pk, other_pk;

/* Writes a log of n records (and its head file); returns its bytes. */
static uint8_t *
make_log(unsigned n, size_t *len)
{
	struct audit *a;
	uint8_t *buf, h[32];
	unsigned i;
	int rc;

	unlink(logpath);
	unlink(headpath);
	a = audit_open(logpath, sk, headpath, &rc);
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
			.actor = i % 7 ? NULL : "alice (uid 1000)\n hash=00",
			.detail = "files=3 bytes=1234",
		};

		snprintf(version, sizeof(version), "1.%u.0", i);
		assert_int_equal(audit_append(a, &r, NULL), 0);
	}
	audit_close(a);
	assert_int_equal(util_read_file(logpath, 1 << 24, &buf, len), 0);
	return buf;
}

/* Verifies bytes in memory: audit_verify() is this plus reading a file,
 * and the exhaustive bit-flip test cannot afford a file per flip. */
static int
verify_bytes(const uint8_t *buf, size_t len, const struct sign_pubkey *key,
    char *err, size_t errlen)
{
	uint64_t records;

	return audit_verify_buf(buf, len, key, NULL, err, errlen, &records);
}

static void
test_intact(void **state)
{
	size_t len;
	uint8_t *buf = make_log(40, &len);
	char err[256];
	uint64_t records;

	assert_int_equal(audit_verify(logpath, &pk, headpath, err,
	    sizeof(err), &records), 0);
	assert_int_equal(records, 40);
	assert_int_equal(audit_verify_buf(buf, len, &pk, NULL, err,
	    sizeof(err), &records), 0);
	assert_int_equal(records, 40);
	/* The actor is one escaped value: it forged no field. */
	assert_non_null(strstr((char *)buf,
	    " actor=\"alice (uid 1000)\\n hash=00\" "));
	/* Another receiver's key verifies neither the records nor the
	 * head. */
	assert_int_equal(audit_verify(logpath, &other_pk, NULL, err,
	    sizeof(err), &records), -EBADMSG);
	assert_non_null(strstr(err, "line 1 (seq 1): signed by key"));
	assert_int_equal(audit_verify(logpath, &other_pk, headpath, err,
	    sizeof(err), &records), -EBADMSG);
	assert_non_null(strstr(err, "signature does not verify"));
	free(buf);
}

/* Every bit of a log of at least 64 KiB, each flipped alone. */
static void
test_every_bit(void **state)
{
	size_t len, i;
	unsigned b;
	uint8_t *buf = make_log(120, &len);
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
	uint8_t *buf = make_log(40, &len), *t = malloc(len * 2);
	char err[256];

	n = lines(buf, len, start, 128);
	assert_int_equal(n, 40);
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
	uint8_t *buf = make_log(20, &len);
	char err[256];
	uint64_t records;

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
		a = audit_open(logpath, sk, NULL, &rc);
		assert_non_null(a);
		assert_int_equal(audit_append(a, &r, NULL), 0);
		audit_close(a);
		if (audit_verify(logpath, &pk, NULL, err, sizeof(err),
		    &records) != 0)
			fail_msg("cut at %zu: %s", cut, err);
		assert_int_equal(records, 20); /* 19 whole + the new one */
	}
	free(buf);
}

/* ---- forgeries by someone who can rewrite the file, not sign ---------- */

enum forge { KEEP, STRIP, RESIGN, SPOOF };

/*
 * Rewrites a log as such an attacker would: every line renumbered and
 * chained to the one before, its hash recomputed; lines from..to (1-based)
 * also have their signature stripped, or re-signed by other_sk (with its
 * own key id, or spoofing the receiver's).  Returns the new bytes.
 */
static uint8_t *
forge(const uint8_t *buf, size_t len, size_t *outlen, enum forge how,
    unsigned from, unsigned to)
{
	uint8_t *out = malloc(len + 4096), digest[HASH_LEN], sig[SIGN_SIG_LEN];
	char prev[65], line[9000], hex[65], sh[129], id[17];
	size_t off = 0, o = 0;
	unsigned lineno = 0;

	memset(prev, '0', 64);
	prev[64] = '\0';
	while (off < len) {
		const char *l = (const char *)buf + off;
		const char *nl = memchr(l, '\n', len - off);
		size_t n = (size_t)(nl - l), core = n - 70;
		const char *ts = strstr(l, " ts="), *rest = l + (ts - l) +
		    4 + 20 + 6 + 64;
		size_t m;
		enum forge h = lineno + 1 >= from && lineno + 1 <= to ?
		    how : KEEP;

		lineno++;
		off += n + 1;
		if (h != KEEP)
			core -= 5 + 16 + 5 + 128; /* drop " key=… sig=…" */
		m = (size_t)snprintf(line, sizeof(line), "seq=%u ts=%.20s "
		    "prev=%s%.*s", lineno, ts + 4, prev,
		    (int)(l + core - rest), rest);
		if (h == RESIGN || h == SPOOF) {
			uint8_t msg[24 + 9000];

			util_hex(id, sign_seckey_id(h == RESIGN ? other_sk :
			    sk), 8);
			m += (size_t)snprintf(line + m, sizeof(line) - m,
			    " key=%s", id);
			memset(msg, 0, 24);
			memcpy(msg, AUDIT_SIG_CONTEXT,
			    sizeof(AUDIT_SIG_CONTEXT) - 1);
			memcpy(msg + 24, line, m);
			sign_detached(other_sk, sig, msg, 24 + m);
			util_hex(sh, sig, SIGN_SIG_LEN);
			m += (size_t)snprintf(line + m, sizeof(line) - m,
			    " sig=%s", sh);
		}
		hash_sha256(digest, line, m);
		util_hex(hex, digest, HASH_LEN);
		m += (size_t)snprintf(line + m, sizeof(line) - m,
		    " hash=%s\n", hex);
		memcpy(prev, hex, 65);
		memcpy(out + o, line, m);
		o += m;
	}
	*outlen = o;
	return out;
}

/* The review's attack: signatures (v1: checkpoints) removed, the chain
 * recomputed.  Every record must carry a valid signature. */
static void
test_strip_and_rechain(void **state)
{
	size_t len, flen;
	uint8_t *buf = make_log(20, &len), *f;
	char err[256];

	/* Recomputing an untouched chain changes nothing. */
	f = forge(buf, len, &flen, KEEP, 0, 0);
	assert_int_equal(flen, len);
	assert_memory_equal(f, buf, len);
	free(f);
	/* All stripped. */
	f = forge(buf, len, &flen, STRIP, 1, 20);
	assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "line 1 (seq 1): no signature"));
	free(f);
	/* Only the last one: a log without a signed head. */
	f = forge(buf, len, &flen, STRIP, 20, 20);
	assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "line 20 (seq 20): no signature"));
	free(f);
	/* A record deleted in the middle, the rest renumbered and
	 * rechained: the record after it no longer verifies. */
	{
		size_t start[64], n = lines(buf, len, start, 64);
		uint8_t *t = malloc(len);

		assert_int_equal(n, 20);
		memcpy(t, buf, start[6]);
		memcpy(t + start[6], buf + start[7], len - start[7]);
		f = forge(t, len - (start[7] - start[6]), &flen, KEEP, 0, 0);
		assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
		    -EBADMSG);
		assert_non_null(strstr(err, "line 7 (seq 7): signature does "
		    "not verify"));
		free(f);
		free(t);
	}
	free(buf);
}

/* A record edited, its chain recomputed: its signature names it. */
static void
test_edit_and_rechain(void **state)
{
	size_t len, flen, start[64];
	uint8_t *buf = make_log(20, &len), *f;
	char err[256], *q;

	lines(buf, len, start, 64);
	/* Line 7 (i = 6) was QUARANTINED; make it RELEASED. */
	q = strstr((char *)buf + start[6], "decision=QUARANTINED");
	assert_non_null(q);
	assert_true((uint8_t *)q < buf + start[7]);
	memcpy(q, "decision=RELEASED   ", 20);
	assert_int_equal(verify_bytes(buf, len, &pk, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "line 7 (seq 7): record edited"));
	f = forge(buf, len, &flen, KEEP, 0, 0);
	assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
	    -EBADMSG);
	if (strstr(err, "line 7 (seq 7): signature does not verify: edited "
	    "or forged without the receiver key") == NULL)
		fail_msg("%s", err);
	free(f);
	free(buf);
}

/* Records signed by another key, with its id or with the receiver's. */
static void
test_other_key(void **state)
{
	size_t len, flen;
	uint8_t *buf = make_log(20, &len), *f;
	char err[256];

	f = forge(buf, len, &flen, RESIGN, 5, 5);
	assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "line 5 (seq 5): signed by key"));
	free(f);
	f = forge(buf, len, &flen, SPOOF, 20, 20);
	assert_int_equal(verify_bytes(f, flen, &pk, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "line 20 (seq 20): signature does not "
	    "verify"));
	free(f);
	/* The receiver never extends a log whose last record it did not
	 * sign. */
	{
		struct audit *a;
		int fd, rc;

		f = forge(buf, len, &flen, SPOOF, 20, 20);
		fd = open(logpath, O_WRONLY | O_TRUNC);
		assert_int_equal(util_write_all(fd, f, flen), 0);
		close(fd);
		a = audit_open(logpath, sk, NULL, &rc);
		assert_null(a);
		assert_int_equal(rc, -EBADMSG);
		free(f);
	}
	free(buf);
}

/* Cut back to an earlier record: the file alone verifies, the head
 * does not, and the receiver will not extend it. */
static void
test_cut_back(void **state)
{
	size_t len, start[64];
	uint8_t *buf = make_log(12, &len);
	char err[256];
	uint64_t records;
	struct audit *a;
	int fd, rc;

	assert_int_equal(lines(buf, len, start, 64), 12);
	fd = open(logpath, O_WRONLY | O_TRUNC);
	assert_int_equal(util_write_all(fd, buf, start[9]), 0);
	close(fd);
	assert_int_equal(audit_verify(logpath, &pk, NULL, err, sizeof(err),
	    &records), 0);
	assert_int_equal(audit_verify(logpath, &pk, headpath, err,
	    sizeof(err), &records), -EBADMSG);
	if (strcmp(err, "log cut back: head says seq 12, log ends at seq 9")
	    != 0)
		fail_msg("%s", err);
	a = audit_open(logpath, sk, headpath, &rc);
	assert_null(a);
	assert_int_equal(rc, -EBADMSG);
	/* Emptied. */
	fd = open(logpath, O_WRONLY | O_TRUNC);
	close(fd);
	assert_int_equal(audit_verify(logpath, &pk, headpath, err,
	    sizeof(err), &records), -EBADMSG);
	assert_non_null(strstr(err, "head says seq 12, log ends at seq 0"));
	free(buf);
}

/* The head file: what it holds, and a forged or stale one refused. */
static void
test_head_file(void **state)
{
	size_t len, hlen, start[64];
	uint8_t *buf = make_log(5, &len), *h;
	struct audit_head head, ret;
	char err[256];
	uint64_t records;
	struct audit *a;
	struct audit_record r = { .decision = "PURGED", .transfer = 9,
		.reason = "retention" };
	int rc;

	assert_int_equal(lines(buf, len, start, 64), 5);
	assert_int_equal(audit_head_load(headpath, &pk, &head, err,
	    sizeof(err)), 0);
	assert_int_equal(head.seq, 5);
	assert_memory_equal(head.hash, buf + len - 65, 64);
	assert_int_equal(audit_head_load(headpath, &other_pk, &head, err,
	    sizeof(err)), -EBADMSG);
	/* An append returns the new head and writes it. */
	a = audit_open(logpath, sk, headpath, &rc);
	assert_non_null(a);
	assert_int_equal(audit_append(a, &r, &ret), 0);
	audit_close(a);
	assert_int_equal(ret.seq, 6);
	assert_int_equal(audit_head_load(headpath, &pk, &head, err,
	    sizeof(err)), 0);
	assert_int_equal(head.seq, 6);
	assert_string_equal(head.hash, ret.hash);
	assert_int_equal(audit_verify(logpath, &pk, headpath, err,
	    sizeof(err), &records), 0);
	/* A head edited to name seq 3 fails its signature. */
	assert_int_equal(util_read_file(headpath, 4096, &h, &hlen), 0);
	h[4] = '3';
	assert_int_equal(audit_head_parse(h, hlen, &pk, &head, err,
	    sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "signature does not verify"));
	free(h);
	/* A head for a record the log holds with another hash. */
	head.seq = 3;
	memset(head.hash, 'a', 64);
	free(buf);
	assert_int_equal(util_read_file(logpath, 1 << 20, &buf, &len), 0);
	assert_int_equal(audit_verify_buf(buf, len, &pk, &head, err,
	    sizeof(err), &records), -EBADMSG);
	assert_non_null(strstr(err, "line 3 (seq 3): not the record the "
	    "head names"));
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
	snprintf(headpath, sizeof(headpath), "%s/" AUDIT_HEAD_FILE, dir);
	snprintf(prefix, sizeof(prefix), "%s/recv", dir);
	if (sign_keygen(prefix, &pk) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s/other", dir);
	if (sign_keygen(prefix, &other_pk) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s/other.key", dir);
	other_sk = sign_seckey_load(prefix, &rc, NULL, 0);
	snprintf(prefix, sizeof(prefix), "%s/recv.key", dir);
	sk = sign_seckey_load(prefix, &rc, NULL, 0);
	return sk == NULL || other_sk == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	sign_seckey_free(sk);
	sign_seckey_free(other_sk);
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
		cmocka_unit_test(test_strip_and_rechain),
		cmocka_unit_test(test_edit_and_rechain),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_cut_back),
		cmocka_unit_test(test_head_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
