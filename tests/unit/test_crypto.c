/*
 * SHA-256 known answers, Ed25519 keys and signatures (file modes, strict
 * key-file parsing), and chunk compression (policy and exact inflate).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sys/types.h>

#include "common/compress.h"
#include "common/hash.h"
#include "common/sign.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-crypto.XXXXXX";

static void
hex_equal(const uint8_t *h, const char *hex)
{
	char out[65];

	util_hex(out, h, 32);
	assert_string_equal(out, hex);
}

static void
test_sha256(void **state)
{
	uint8_t h[32];
	struct hash_ctx *c;
	char *a = malloc(1000000), path[256];
	uint64_t size;
	int fd;

	hash_sha256(h, "", 0);
	hex_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hash_sha256(h, "abc", 3);
	hex_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	memset(a, 'a', 1000000);
	hash_sha256(h, a, 1000000);
	hex_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	c = hash_new();
	hash_update(c, a, 1);
	hash_update(c, a, 999999);
	hash_final(c, h);
	hex_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	hash_free(c);
	snprintf(path, sizeof(path), "%s/a", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(util_write_all(fd, a, 1000000), 0);
	assert_int_equal(hash_fd(fd, h, &size), 0);
	assert_int_equal(size, 1000000);
	hex_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	close(fd);
	free(a);
}

static void
write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, text, strlen(text)), 0);
	fchmod(fd, mode);
	close(fd);
}

static void
test_keys(void **state)
{
	char prefix[256], keyp[256], pubp[256], err[256];
	struct sign_pubkey pub, loaded, other;
	struct sign_seckey *sk;
	struct stat st;
	uint8_t sig[64], msg[100];
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/k", dir);
	snprintf(keyp, sizeof(keyp), "%s.key", prefix);
	snprintf(pubp, sizeof(pubp), "%s.pub", prefix);
	assert_int_equal(sign_keygen(prefix, &pub), 0);
	assert_int_equal(sign_keygen(prefix, NULL), -EEXIST);
	assert_int_equal(stat(keyp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(pubp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(sign_pubkey_load(pubp, &loaded, err, sizeof(err)), 0);
	assert_memory_equal(&loaded, &pub, sizeof(pub));
	/* sign_pubkey_base64 spells the key as the .pub file does. */
	{
		char b64[SIGN_PK_B64_LEN], line[80];
		uint8_t *text;
		size_t len;

		sign_pubkey_base64(b64, &pub);
		assert_int_equal(strlen(b64), 44);
		snprintf(line, sizeof(line), "\nkey %s\n", b64);
		assert_int_equal(util_read_file(pubp, 4096, &text, &len), 0);
		assert_non_null(strstr((char *)text, line));
		free(text);
	}
	sk = sign_seckey_load(keyp, &rc, err, sizeof(err));
	assert_non_null(sk);
	assert_memory_equal(sign_seckey_id(sk), pub.id, 8);

	memset(msg, 7, sizeof(msg));
	sign_detached(sk, sig, msg, sizeof(msg));
	assert_true(sign_verify(&pub, sig, msg, sizeof(msg)));
	msg[50] ^= 1;
	assert_false(sign_verify(&pub, sig, msg, sizeof(msg)));
	msg[50] ^= 1;
	sig[10] ^= 0x80;
	assert_false(sign_verify(&pub, sig, msg, sizeof(msg)));
	sig[10] ^= 0x80;
	snprintf(prefix, sizeof(prefix), "%s/other", dir);
	assert_int_equal(sign_keygen(prefix, &other), 0);
	assert_false(sign_verify(&other, sig, msg, sizeof(msg)));
	sign_seckey_free(sk);

	/* Looser than 0600: refused, and the message says why. */
	chmod(keyp, 0640);
	sk = sign_seckey_load(keyp, &rc, err, sizeof(err));
	assert_null(sk);
	assert_int_equal(rc, -EPERM);
	assert_non_null(strstr(err, "0640"));
	chmod(keyp, 0604);
	assert_null(sign_seckey_load(keyp, &rc, err, sizeof(err)));
	assert_int_equal(rc, -EPERM);
	chmod(keyp, 0400);
	sk = sign_seckey_load(keyp, &rc, err, sizeof(err));
	assert_non_null(sk);
	sign_seckey_free(sk);
	assert_true(sign_equal("abc", "abc", 3));
	assert_false(sign_equal("abc", "abd", 3));
}

static void
test_bad_key_files(void **state)
{
	static const char *const bad[] = {
		"",
		"sluice-public-key v1\n",
		"sluice-public-key v2\nid 0000000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"sluice-public-key v1\nid 000000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"sluice-public-key v1\nid 0000000000000000\nkey AAAA\n",
		"sluice-public-key v1\nid 0000000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextra\n",
		"sluice-public-key v1\nid 0000000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		/* well formed, but the id does not belong to the key */
		"sluice-public-key v1\nid 0000000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"sluice-public-key v1\nid zz00000000000000\nkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	};
	struct sign_pubkey pub;
	char path[256], err[256];
	size_t i;

	snprintf(path, sizeof(path), "%s/bad.pub", dir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(path, bad[i], 0644);
		if (sign_pubkey_load(path, &pub, err, sizeof(err)) != -EINVAL)
			fail_msg("bad key file %zu accepted", i);
	}
}

/*
 * Only the canonical spelling of a key file loads: a lower-case id, and
 * base64 from the standard alphabet at the exact length.  libsodium
 * 1.0.18's decoder maps bytes >= 0x80 to values of its own; such a file
 * must be refused even when it decodes to the right key.
 */
static void
test_noncanonical_key_files(void **state)
{
	uint8_t pk[32], sk[64], id[8], back[32];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char hex[17], text[300], path[300], err[256], odd[sizeof(b64)];
	struct sign_pubkey pub;
	size_t i, binlen;
	bool found = false;
	int c;

	/* A key whose id has at least one hex letter to put in upper case. */
	do {
		crypto_sign_keypair(pk, sk);
		sign_keyid(id, pk);
		util_hex(hex, id, 8);
	} while (strpbrk(hex, "abcdef") == NULL);
	sodium_bin2base64(b64, sizeof(b64), pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(path, sizeof(path), "%s/canon.pub", dir);

	snprintf(text, sizeof(text), "sluice-public-key v1\nid %s\nkey %s\n",
	    hex, b64);
	write_text(path, text, 0644);
	assert_int_equal(sign_pubkey_load(path, &pub, err, sizeof(err)), 0);

	for (i = 0; hex[i] != '\0'; i++)
		if (hex[i] >= 'a' && hex[i] <= 'f')
			hex[i] = (char)(hex[i] - 'a' + 'A');
	snprintf(text, sizeof(text), "sluice-public-key v1\nid %s\nkey %s\n",
	    hex, b64);
	write_text(path, text, 0644);
	assert_int_equal(sign_pubkey_load(path, &pub, err, sizeof(err)),
	    -EINVAL);
	util_hex(hex, id, 8);

	/* A byte >= 0x80 that libsodium decodes to the very same key. */
	for (i = 0; i < sizeof(b64) - 2 && !found; i++) {
		for (c = 0x80; c < 0x100 && !found; c++) {
			memcpy(odd, b64, sizeof(b64));
			odd[i] = (char)c;
			found = sodium_base642bin(back, sizeof(back), odd,
			    strlen(odd), NULL, &binlen, NULL,
			    sodium_base64_VARIANT_ORIGINAL) == 0 &&
			    binlen == 32 && memcmp(back, pk, 32) == 0;
		}
	}
	if (found) {
		snprintf(text, sizeof(text), "sluice-public-key v1\nid %s\n"
		    "key %s\n", hex, odd);
		write_text(path, text, 0644);
		assert_int_equal(sign_pubkey_load(path, &pub, err,
		    sizeof(err)), -EINVAL);
	}
	/* Other characters outside the alphabet, wherever they are. */
	for (i = 0; i < sizeof(b64) - 1; i++) {
		static const char junk[] = { '-', '_', ' ', '.', '\x80', '\xff' };
		size_t j;

		for (j = 0; j < sizeof(junk); j++) {
			memcpy(odd, b64, sizeof(b64));
			odd[i] = junk[j];
			snprintf(text, sizeof(text), "sluice-public-key v1\n"
			    "id %s\nkey %s\n", hex, odd);
			write_text(path, text, 0644);
			if (sign_pubkey_load(path, &pub, err, sizeof(err)) !=
			    -EINVAL)
				fail_msg("key with 0x%02x at %zu accepted",
				    (unsigned char)junk[j], i);
		}
	}
	/* The right key with its padding moved or missing. */
	snprintf(text, sizeof(text), "sluice-public-key v1\nid %s\nkey %.*s\n",
	    hex, (int)strlen(b64) - 1, b64);
	write_text(path, text, 0644);
	assert_int_equal(sign_pubkey_load(path, &pub, err, sizeof(err)),
	    -EINVAL);
}

/* A key file whose public half does not belong to its seed is refused
 * (signing with it could leak the key); a FIFO in place of a key file
 * does not hang the loader. */
static void
test_forged_and_odd_key_files(void **state)
{
	uint8_t pka[32], ska[64], pkb[32], skb[64], mixed[64], id[8];
	char b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
	char hex[17], text[300], path[300], err[256];
	struct sign_seckey *sk;
	int rc;

	crypto_sign_keypair(pka, ska);
	crypto_sign_keypair(pkb, skb);
	memcpy(mixed, ska, 32);       /* seed of A */
	memcpy(mixed + 32, pkb, 32);  /* public half of B */
	sign_keyid(id, pkb);          /* and an id that matches that half */
	util_hex(hex, id, 8);
	sodium_bin2base64(b64, sizeof(b64), mixed, 64,
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "sluice-secret-key v1\nid %s\nkey %s\n",
	    hex, b64);
	snprintf(path, sizeof(path), "%s/mixed.key", dir);
	write_text(path, text, 0600);
	sk = sign_seckey_load(path, &rc, err, sizeof(err));
	assert_null(sk);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "public half"));

	snprintf(path, sizeof(path), "%s/fifo.key", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(5);
	sk = sign_seckey_load(path, &rc, err, sizeof(err));
	alarm(0);
	assert_null(sk);
	assert_int_equal(rc, -EINVAL);
}

static void
test_compress(void **state)
{
	struct compress *c = compress_new();
	size_t n = 200000, zlen = 0, i;
	uint8_t *text = malloc(n), *rnd = malloc(n), *out = malloc(n),
	    *back = malloc(n + 64);
	FILE *ur = fopen("/dev/urandom", "r");

	for (i = 0; i < n; i++)
		text[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
	assert_int_equal(fread(rnd, 1, n, ur), n);
	fclose(ur);
	assert_int_equal(compress_chunk(c, COMPRESS_AUTO, text, n, out, n,
	    &zlen), CODEC_DEFLATE);
	assert_true(zlen < n / 10);
	memset(back, 0xcc, n + 64);
	assert_int_equal(compress_inflate(c, out, zlen, back, n), 0);
	assert_memory_equal(back, text, n);
	for (i = n; i < n + 64; i++)
		assert_int_equal(back[i], 0xcc);
	/* Wrong expected sizes, trailing bytes, corruption: refused. */
	memset(back, 0xcc, n + 64);
	assert_int_equal(compress_inflate(c, out, zlen, back, n - 1), -EBADMSG);
	for (i = n - 1; i < n + 64; i++)
		assert_int_equal(back[i], 0xcc); /* never past outlen */
	assert_int_equal(compress_inflate(c, out, zlen, back, n + 1), -EBADMSG);
	out[zlen] = 0;
	assert_int_equal(compress_inflate(c, out, zlen + 1, back, n), -EBADMSG);
	out[zlen / 2] ^= 0xff;
	assert_int_equal(compress_inflate(c, out, zlen, back, n), -EBADMSG);
	assert_int_equal(compress_inflate(c, out, 0, back, n), -EBADMSG);
	/* Random data is sent stored; "off" never compresses. */
	assert_int_equal(compress_chunk(c, COMPRESS_AUTO, rnd, n, out, n,
	    &zlen), CODEC_STORED);
	assert_int_equal(compress_chunk(c, COMPRESS_ON, rnd, n, out, n,
	    &zlen), CODEC_STORED);
	assert_int_equal(compress_chunk(c, COMPRESS_OFF, text, n, out, n,
	    &zlen), CODEC_STORED);
	assert_int_equal(compress_chunk(c, COMPRESS_ON, text, n, out, n,
	    &zlen), CODEC_DEFLATE);
	/* Repeats of a random 1 KiB block look random byte by byte, but not
	 * enough for the entropy gate: deflate still finds the repeats. */
	for (i = 1024; i < n; i++)
		rnd[i] = rnd[i % 1024];
	assert_int_equal(compress_chunk(c, COMPRESS_AUTO, rnd, n, out, n,
	    &zlen), CODEC_DEFLATE);
	assert_true(zlen < n / 4);
	compress_free(c);
	compress_free(NULL);
	free(text);
	free(rnd);
	free(out);
	free(back);
}

static int
setup(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	return sign_init();
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
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_bad_key_files),
		cmocka_unit_test(test_noncanonical_key_files),
		cmocka_unit_test(test_forged_and_odd_key_files),
		cmocka_unit_test(test_compress),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
