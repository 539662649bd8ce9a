/*
 * Ed25519 keys and signatures with libsodium; see sign.h for the key file
 * format.  Secret key bytes only ever live in sodium_malloc'd memory or in
 * stack buffers wiped before return.
 */
#include "common/sign.h"
#include "common/hash.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_HEADER "sluice-secret-key v1"
#define PUBLIC_HEADER "sluice-public-key v1"
#define LINK_HEADER "sluice-link-key v1"
#define KEY_FILE_MAX 512
#define KEYID_CONTEXT "sluice-key-id-v1"

struct sign_seckey {
	uint8_t id[SIGN_KEYID_LEN];
	uint8_t sk[SIGN_SK_LEN];
};

int
sign_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void
sign_keyid(uint8_t id[SIGN_KEYID_LEN], const uint8_t pk[SIGN_PK_LEN])
{
	uint8_t buf[sizeof(KEYID_CONTEXT) - 1 + SIGN_PK_LEN], digest[HASH_LEN];

	memcpy(buf, KEYID_CONTEXT, sizeof(KEYID_CONTEXT) - 1);
	memcpy(buf + sizeof(KEYID_CONTEXT) - 1, pk, SIGN_PK_LEN);
	hash_sha256(digest, buf, sizeof(buf));
	memcpy(id, digest, SIGN_KEYID_LEN);
}

void
sign_keyid_hex(char out[2 * SIGN_KEYID_LEN + 1],
    const uint8_t id[SIGN_KEYID_LEN])
{
	util_hex(out, id, SIGN_KEYID_LEN);
}

_Static_assert(SIGN_PK_B64_LEN == sodium_base64_ENCODED_LEN(SIGN_PK_LEN,
    sodium_base64_VARIANT_ORIGINAL), "SIGN_PK_B64_LEN");

void
sign_pubkey_base64(char out[SIGN_PK_B64_LEN], const struct sign_pubkey *pub)
{
	sodium_bin2base64(out, SIGN_PK_B64_LEN, pub->pk, SIGN_PK_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
}

bool
sign_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

/*
 * Renders "HEADER\nid HEX\nkey BASE64\n" into out.  Returns the length.
 */
static size_t
render(char *out, size_t cap, const char *header, const uint8_t id[8],
    const uint8_t *key, size_t keylen)
{
	char hex[2 * SIGN_KEYID_LEN + 1];
	char b64[sodium_base64_ENCODED_LEN(SIGN_SK_LEN,
	    sodium_base64_VARIANT_ORIGINAL)];
	int n;

	util_hex(hex, id, SIGN_KEYID_LEN);
	sodium_bin2base64(b64, sizeof(b64), key, keylen,
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(out, cap, "%s\nid %s\nkey %s\n", header, hex, b64);
	sodium_memzero(b64, sizeof(b64));
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int
write_new(const char *path, const char *buf, size_t len, mode_t mode)
{
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0)
		return -errno;
	rc = util_write_all(fd, buf, len);
	if (rc == 0 && fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		unlink(path);
	return rc;
}

int
sign_keygen(const char *prefix, struct sign_pubkey *pub)
{
	char keypath[4096], pubpath[4096];
	char *text = NULL;
	uint8_t *sk = NULL;
	uint8_t id[SIGN_KEYID_LEN], pk[SIGN_PK_LEN];
	size_t len;
	int rc = 0;

	if (snprintf(keypath, sizeof(keypath), "%s.key", prefix) >=
	    (int)sizeof(keypath) ||
	    snprintf(pubpath, sizeof(pubpath), "%s.pub", prefix) >=
	    (int)sizeof(pubpath))
		return -ENAMETOOLONG;
	if (access(keypath, F_OK) == 0 || access(pubpath, F_OK) == 0)
		return -EEXIST;
	sk = sodium_malloc(SIGN_SK_LEN);
	text = sodium_malloc(KEY_FILE_MAX);
	if (sk == NULL || text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_sign_keypair(pk, sk);
	sign_keyid(id, pk);
	len = render(text, KEY_FILE_MAX, SECRET_HEADER, id, sk, SIGN_SK_LEN);
	rc = len == 0 ? -EINVAL : write_new(keypath, text, len, 0600);
	if (rc != 0)
		goto out;
	len = render(text, KEY_FILE_MAX, PUBLIC_HEADER, id, pk, SIGN_PK_LEN);
	rc = len == 0 ? -EINVAL : write_new(pubpath, text, len, 0644);
	if (rc != 0) {
		unlink(keypath);
		goto out;
	}
	if (pub != NULL) {
		memcpy(pub->id, id, SIGN_KEYID_LEN);
		memcpy(pub->pk, pk, SIGN_PK_LEN);
	}
out:
	if (sk != NULL)
		sodium_free(sk);
	if (text != NULL)
		sodium_free(text);
	return rc;
}

/*
 * True if s[0..len) is the canonical base64 (standard alphabet, padded)
 * of exactly n bytes.  libsodium 1.0.18's decoder accepts bytes >= 0x80
 * as if they were alphabet letters, so the alphabet is checked here
 * first: one key must have exactly one spelling.
 */
static bool
canonical_base64(const char *s, size_t len, size_t n)
{
	size_t pad = (3 - n % 3) % 3, i;

	if (len != sodium_base64_ENCODED_LEN(n,
	    sodium_base64_VARIANT_ORIGINAL) - 1)
		return false;
	for (i = 0; i < len - pad; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	for (; i < len; i++)
		if (s[i] != '=')
			return false;
	return true;
}

/*
 * Parses a key file's text strictly: the header line, "id <16 hex>",
 * "key <base64 of exactly keylen bytes>", each ending in a newline, and
 * nothing else.
 */
static int
parse(const char *text, size_t len, const char *header, uint8_t id[8],
    uint8_t *key, size_t keylen, char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *nl;
	size_t hlen = strlen(header), b64len, binlen;
	char hex[2 * SIGN_KEYID_LEN + 1];

	if (memchr(text, '\0', len) != NULL) {
		util_seterr(err, errlen, "not a key file (NUL byte)");
		return -EINVAL;
	}
	if ((size_t)(end - p) < hlen + 1 || memcmp(p, header, hlen) != 0 ||
	    p[hlen] != '\n') {
		static const struct {
			const char *header, *what;
		} kinds[] = {
			{ SECRET_HEADER, "a secret key" },
			{ PUBLIC_HEADER, "a public key" },
			{ LINK_HEADER, "a link key" },
		};
		const char *want = "a key", *got = NULL;
		size_t i;

		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			size_t n = strlen(kinds[i].header);

			if (strcmp(kinds[i].header, header) == 0)
				want = kinds[i].what;
			else if ((size_t)(end - p) > n &&
			    memcmp(p, kinds[i].header, n) == 0 && p[n] == '\n')
				got = kinds[i].what;
		}
		if (got != NULL)
			util_seterr(err, errlen, "is %s; %s is needed", got,
			    want);
		else
			util_seterr(err, errlen, "not a %s file", header);
		return -EINVAL;
	}
	p += hlen + 1;
	if (end - p < 3 + 16 + 1 || memcmp(p, "id ", 3) != 0 ||
	    p[3 + 16] != '\n') {
		util_seterr(err, errlen, "malformed id line");
		return -EINVAL;
	}
	memcpy(hex, p + 3, 16);
	hex[16] = '\0';
	/* Lower case only: the id is written and compared in that form. */
	if (strspn(hex, "0123456789abcdef") != 16 ||
	    util_unhex(id, SIGN_KEYID_LEN, hex) != 0) {
		util_seterr(err, errlen, "malformed key id");
		return -EINVAL;
	}
	p += 3 + 16 + 1;
	if (end - p < 5 || memcmp(p, "key ", 4) != 0 ||
	    (nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
	    nl + 1 != end) {
		util_seterr(err, errlen, "malformed key line");
		return -EINVAL;
	}
	p += 4;
	b64len = (size_t)(nl - p);
	if (!canonical_base64(p, b64len, keylen) ||
	    sodium_base642bin(key, keylen, p, b64len, NULL, &binlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || binlen != keylen ||
	    b64len != sodium_base64_ENCODED_LEN(keylen,
	    sodium_base64_VARIANT_ORIGINAL) - 1) {
		util_seterr(err, errlen, "malformed key");
		return -EINVAL;
	}
	return 0;
}

int
sign_pubkey_load(const char *path, struct sign_pubkey *pub, char *err,
    size_t errlen)
{
	uint8_t *buf;
	uint8_t id[SIGN_KEYID_LEN];
	size_t len;
	int rc;

	rc = util_read_file(path, KEY_FILE_MAX, &buf, &len);
	if (rc != 0) {
		util_seterr(err, errlen, "%s", rc == -EFBIG ? "not a key file "
		    "(too large)" : strerror(-rc));
		return rc == -EFBIG ? -EINVAL : rc;
	}
	rc = parse((const char *)buf, len, PUBLIC_HEADER, pub->id, pub->pk,
	    SIGN_PK_LEN, err, errlen);
	free(buf);
	if (rc != 0)
		return rc;
	sign_keyid(id, pub->pk);
	if (memcmp(id, pub->id, SIGN_KEYID_LEN) != 0) {
		util_seterr(err, errlen, "key id does not match the key");
		return -EINVAL;
	}
	return 0;
}

/*
 * Opens a secret key file: a regular file, 0600 or stricter, small.
 * Returns the descriptor, or -errno with a reason in err.
 */
static int
open_secret(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	/* O_NONBLOCK: a FIFO in the key's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		util_seterr(err, errlen, "%s", strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		util_seterr(err, errlen, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		util_seterr(err, errlen, "not a regular file");
		rc = -EINVAL;
	} else if ((st.st_mode & 077) != 0) {
		char head[sizeof(PUBLIC_HEADER)];

		/* A public key named where a secret one belongs is the likelier
		 * mistake than a secret key left readable: say so. */
		if (read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		    memcmp(head, PUBLIC_HEADER "\n", sizeof(head)) == 0)
			util_seterr(err, errlen, "is a public key; a secret key "
			    "is needed");
		else
			util_seterr(err, errlen, "key file %s has mode %04o; "
			    "must be 0600 or stricter", path,
			    (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
	} else if (st.st_size >= KEY_FILE_MAX) {
		util_seterr(err, errlen, "not a key file (too large)");
		rc = -EINVAL;
	} else {
		return fd;
	}
	close(fd);
	return rc;
}

/* Reads and parses a secret key file (open_secret's rules) into id and
 * key; 0 or -errno with a reason in err. */
static int
read_secret(const char *path, const char *header, uint8_t id[8],
    uint8_t *key, size_t keylen, char *err, size_t errlen)
{
	char *text;
	ssize_t n;
	int fd, rc;

	fd = open_secret(path, err, errlen);
	if (fd < 0)
		return fd;
	text = sodium_malloc(KEY_FILE_MAX);
	if (text == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, text, KEY_FILE_MAX - 1);
	rc = n < 0 ? -errno : parse(text, (size_t)n, header, id, key, keylen,
	    err, errlen);
	sodium_free(text);
	close(fd);
	return rc;
}

struct sign_seckey *
sign_seckey_load(const char *path, int *rcp, char *err, size_t errlen)
{
	struct sign_seckey *sk = sodium_malloc(sizeof(*sk));
	uint8_t pk[SIGN_PK_LEN], id[SIGN_KEYID_LEN];
	int rc;

	if (sk == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_secret(path, SECRET_HEADER, sk->id, sk->sk, SIGN_SK_LEN,
	    err, errlen);
	if (rc != 0)
		goto out;
	/*
	 * The file holds seed and public half; signing uses both, so a
	 * public half that does not belong to the seed would give bad
	 * signatures and could leak the key.  Derive it and compare.
	 */
	{
		uint8_t seed[crypto_sign_SEEDBYTES];
		uint8_t *derived = sodium_malloc(SIGN_SK_LEN);

		if (derived == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		crypto_sign_ed25519_sk_to_seed(seed, sk->sk);
		crypto_sign_seed_keypair(pk, derived, seed);
		sodium_memzero(seed, sizeof(seed));
		if (sodium_memcmp(derived, sk->sk, SIGN_SK_LEN) != 0) {
			util_seterr(err, errlen, "public half does not belong "
			    "to the secret key");
			rc = -EINVAL;
		}
		sodium_free(derived);
		if (rc != 0)
			goto out;
	}
	sign_keyid(id, pk);
	if (memcmp(id, sk->id, SIGN_KEYID_LEN) != 0) {
		util_seterr(err, errlen, "key id does not match the key");
		rc = -EINVAL;
	}
out:
	if (rc != 0 && sk != NULL) {
		sodium_free(sk);
		sk = NULL;
	}
	*rcp = rc;
	return sk;
}

void
sign_seckey_free(struct sign_seckey *sk)
{
	if (sk != NULL)
		sodium_free(sk); /* zeroes before freeing */
}

const uint8_t *
sign_seckey_id(const struct sign_seckey *sk)
{
	return sk->id;
}

void
sign_seckey_pubkey(const struct sign_seckey *sk, struct sign_pubkey *pub)
{
	crypto_sign_ed25519_sk_to_pk(pub->pk, sk->sk);
	memcpy(pub->id, sk->id, SIGN_KEYID_LEN);
}

void
sign_detached(const struct sign_seckey *sk, uint8_t sig[SIGN_SIG_LEN],
    const void *msg, size_t len)
{
	crypto_sign_detached(sig, NULL, msg, len, sk->sk);
}

bool
sign_verify(const struct sign_pubkey *pk, const uint8_t sig[SIGN_SIG_LEN],
    const void *msg, size_t len)
{
	return crypto_sign_verify_detached(sig, msg, len, pk->pk) == 0;
}

/* ---- link keys ---------------------------------------------------------- */

struct sign_linkkey {
	uint8_t id[SIGN_KEYID_LEN];
	uint8_t key[SIGN_LINK_KEY_LEN];
};

int
sign_linkkey_generate(const char *path, uint8_t id[SIGN_KEYID_LEN])
{
	uint8_t *key = sodium_malloc(SIGN_LINK_KEY_LEN);
	char *text = sodium_malloc(KEY_FILE_MAX);
	size_t len;
	int rc;

	if (key == NULL || text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (access(path, F_OK) == 0) {
		rc = -EEXIST;
		goto out;
	}
	randombytes_buf(key, SIGN_LINK_KEY_LEN);
	/* The id names the key without revealing it: both ends can compare
	 * ids in their logs. */
	sign_keyid(id, key);
	len = render(text, KEY_FILE_MAX, LINK_HEADER, id, key,
	    SIGN_LINK_KEY_LEN);
	rc = len == 0 ? -EINVAL : write_new(path, text, len, 0600);
out:
	if (key != NULL)
		sodium_free(key);
	if (text != NULL)
		sodium_free(text);
	return rc;
}

struct sign_linkkey *
sign_linkkey_load(const char *path, int *rcp, char *err, size_t errlen)
{
	struct sign_linkkey *lk = sodium_malloc(sizeof(*lk));
	uint8_t id[SIGN_KEYID_LEN];
	int rc;

	if (lk == NULL) {
		*rcp = -ENOMEM;
		return NULL;
	}
	rc = read_secret(path, LINK_HEADER, lk->id, lk->key,
	    SIGN_LINK_KEY_LEN, err, errlen);
	if (rc == 0) {
		sign_keyid(id, lk->key);
		if (memcmp(id, lk->id, SIGN_KEYID_LEN) != 0) {
			util_seterr(err, errlen, "key id does not match the "
			    "key");
			rc = -EINVAL;
		}
	}
	if (rc != 0) {
		sodium_free(lk);
		lk = NULL;
	}
	*rcp = rc;
	return lk;
}

const uint8_t *
sign_linkkey_bytes(const struct sign_linkkey *lk)
{
	return lk->key;
}

const uint8_t *
sign_linkkey_id(const struct sign_linkkey *lk)
{
	return lk->id;
}

void
sign_linkkey_free(struct sign_linkkey *lk)
{
	if (lk != NULL)
		sodium_free(lk);
}
