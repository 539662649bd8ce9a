/*
 * Ed25519 keys and signatures (libsodium).  This file and sign.c are the
 * only ones that call libsodium's signing API.
 *
 * Key files are small text files:
 *
 *   sluice-secret-key v1           sluice-public-key v1
 *   id <16 hex digits>             id <16 hex digits>
 *   key <base64 of 64 bytes>       key <base64 of 32 bytes>
 *
 * The key id is the first 8 bytes of SHA-256("sluice-key-id-v1" || pk),
 * in lower-case hex; the key is standard padded base64.  Only that
 * canonical spelling loads (no upper-case hex, no byte outside the base64
 * alphabet), so one key has exactly one file text.
 * A link key file (sluice keygen --link) has the same form with the header
 * "sluice-link-key v1" and 32 random bytes; its id is derived from the key
 * like a public key's, so two hosts can compare ids, never keys.
 * A secret key file that is not a regular file, or is readable or writable
 * by group or others, is refused.  Secret keys live in sodium_malloc'd
 * memory, are wiped on free and never logged.
 */
#ifndef SLUICE_SIGN_H
#define SLUICE_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGN_PK_LEN 32
#define SIGN_SK_LEN 64
#define SIGN_SIG_LEN 64
#define SIGN_KEYID_LEN 8

struct sign_pubkey {
	uint8_t id[SIGN_KEYID_LEN];
	uint8_t pk[SIGN_PK_LEN];
};

struct sign_seckey; /* opaque: sodium_malloc'd */

/* sodium_init(); call once at start-up.  0 or -1. */
int sign_init(void);

/* Key id of a public key. */
void sign_keyid(uint8_t id[SIGN_KEYID_LEN], const uint8_t pk[SIGN_PK_LEN]);

/*
 * Writes PREFIX.key (0600, O_EXCL) and PREFIX.pub (0644) for a new key
 * pair; fills *pub.  0 or -errno (-EEXIST if either file exists).
 */
int sign_keygen(const char *prefix, struct sign_pubkey *pub);

/*
 * Loads a public key file.  0 or -errno / -EINVAL for a malformed file
 * (err, if non-NULL, receives a one-line reason).
 */
int sign_pubkey_load(const char *path, struct sign_pubkey *pub, char *err,
    size_t errlen);

/*
 * Loads a secret key file; refuses (-EPERM) one whose mode allows group or
 * other access.  Returns owned memory or NULL with *rc set.
 */
struct sign_seckey *sign_seckey_load(const char *path, int *rc, char *err,
    size_t errlen);
void sign_seckey_free(struct sign_seckey *sk);
const uint8_t *sign_seckey_id(const struct sign_seckey *sk);
void sign_seckey_pubkey(const struct sign_seckey *sk, struct sign_pubkey *pub);

/* Detached Ed25519 signature over msg. */
void sign_detached(const struct sign_seckey *sk, uint8_t sig[SIGN_SIG_LEN],
    const void *msg, size_t len);
bool sign_verify(const struct sign_pubkey *pk,
    const uint8_t sig[SIGN_SIG_LEN], const void *msg, size_t len);

/* Constant-time equality of two byte strings (sodium_memcmp). */
bool sign_equal(const void *a, const void *b, size_t n);

/* The public key as its .pub file's "key" line spells it: 44 characters
 * of standard padded base64 + NUL. */
#define SIGN_PK_B64_LEN 45
void sign_pubkey_base64(char out[SIGN_PK_B64_LEN],
    const struct sign_pubkey *pub);

/* 16 hex digits + NUL. */
void sign_keyid_hex(char out[2 * SIGN_KEYID_LEN + 1],
    const uint8_t id[SIGN_KEYID_LEN]);

/* Symmetric link keys (the link envelope, proto/link.h). */
#define SIGN_LINK_KEY_LEN 32
struct sign_linkkey; /* opaque: sodium_malloc'd */

/* Writes a new link key file (mode 0600); -EEXIST if path exists. */
int sign_linkkey_generate(const char *path, uint8_t id[SIGN_KEYID_LEN]);
/* Loads one (refused unless 0600 or stricter); NULL with *rc and err. */
struct sign_linkkey *sign_linkkey_load(const char *path, int *rc, char *err,
    size_t errlen);
const uint8_t *sign_linkkey_bytes(const struct sign_linkkey *lk);
const uint8_t *sign_linkkey_id(const struct sign_linkkey *lk);
void sign_linkkey_free(struct sign_linkkey *lk);

#endif
