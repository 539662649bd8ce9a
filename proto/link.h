/*
 * The link envelope (PROTOCOL.md section 3.6): optional per-datagram
 * authentication, and optionally encryption, under a symmetric link key
 * both ends share.  It wraps a v1 datagram whole: the header's version
 * byte becomes 2, flags bit 0 says "encrypted", and a 16-byte tag follows
 * the datagram.  The tag is XChaCha20-Poly1305 (IETF) with the 24-byte
 * nonce session || seq || 0^8 taken from the header; authenticated data
 * is the whole datagram (or, encrypted, its 24-byte header, the rest
 * being ciphertext).  A receiver with a link key opens the envelope
 * before anything else, so a forged datagram costs one Poly1305 over its
 * bytes (well under a microsecond) and touches no state.
 *
 * Pure like wire.c: no I/O, no allocation; the only crypto is this
 * framing.  Replays are not stopped here (a replayed datagram is
 * genuine): the receiver's idempotence handles them.
 */
#ifndef SLUICE_PROTO_LINK_H
#define SLUICE_PROTO_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

#define PROTO_LINK_VERSION 2
#define PROTO_LINK_TAG_LEN 16
#define PROTO_LINK_KEY_LEN 32
#define PROTO_LINK_F_ENCRYPTED 0x01

/*
 * Seals the v1 datagram of len bytes in buf (cap bytes of room) in
 * place.  Returns the new length (len + PROTO_LINK_TAG_LEN), or 0 if buf
 * is not a v1 datagram or there is no room.
 */
size_t proto_link_seal(const uint8_t key[PROTO_LINK_KEY_LEN], uint8_t *buf,
    size_t len, size_t cap, bool encrypt);

/*
 * Opens a sealed datagram in place: checks the tag (and decrypts), and
 * turns the header back into v1's.  PROTO_OK with *inner_len set, or
 * PROTO_ERR_LINK for anything that is not a datagram sealed under key
 * (buf is then left as it was, except that a failed decryption leaves
 * nothing, as libsodium writes no plaintext on failure).
 */
enum proto_verdict proto_link_open(const uint8_t key[PROTO_LINK_KEY_LEN],
    uint8_t *buf, size_t len, size_t *inner_len);

/*
 * For reports only (sluice link-report), never for reception: turns a
 * sealed datagram's header back into v1's WITHOUT checking its tag.
 * *inner_len is the inner datagram's length; when *encrypted its body
 * is ciphertext and only the header means anything.  PROTO_ERR_LINK if
 * buf is not a sealed datagram.
 */
enum proto_verdict proto_link_unwrap(uint8_t *buf, size_t len,
    size_t *inner_len, bool *encrypted);

#endif
