/*
 * Sluice wire format v1: encode and decode of datagrams.  Pure: no I/O, no
 * allocation, no logging, no crypto.  Decoders take (buf, len) of untrusted
 * bytes and return a verdict; on PROTO_OK the output struct points into buf
 * (borrowed: valid while buf is).  Every field is range checked here; what
 * needs state (does this descriptor agree with the one seen before?) or
 * keys (is the signature good?) is the receiver's job.
 *
 * The byte layout is documented in proto/PROTOCOL.md; keep the two in step.
 */
#ifndef SLUICE_PROTO_WIRE_H
#define SLUICE_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x534c5543u /* "SLUC" */
#define PROTO_VERSION 1

enum proto_type {
	PROTO_T_SYMBOL = 1,
	PROTO_T_DESCRIPTOR = 2,
	PROTO_T_HEARTBEAT = 3,
};

#define PROTO_HDR_LEN 24
#define PROTO_SYM_HDR_LEN 20 /* after the datagram header */
#define PROTO_SYM_OFF (PROTO_HDR_LEN + PROTO_SYM_HDR_LEN)
#define PROTO_DESC_FIXED_LEN 80 /* header + fixed descriptor fields */
#define PROTO_DESC_HASH_OFF (PROTO_DESC_FIXED_LEN + 32)
#define PROTO_HB_LEN 128

#define PROTO_KEYID_LEN 8
#define PROTO_SIG_LEN 64
#define PROTO_SHA256_LEN 32

/* Hard caps on what the wire may claim. */
#define PROTO_MAX_DATAGRAM 65507
#define PROTO_MIN_SYMBOL 16
#define PROTO_MAX_SYMBOL (PROTO_MAX_DATAGRAM - PROTO_SYM_OFF)
#define PROTO_MAX_SYMBOLS 255 /* k + m */
#define PROTO_MAX_OBJECTS (1u << 20)
#define PROTO_MAX_CHUNK (16u << 20) /* plaintext bytes per chunk */
#define PROTO_MIN_HASH_LEN 8
#define PROTO_MAX_HASH_LEN 32

/* Domain-separation prefixes of what the sender's key signs. */
/*
 * "v2": the descriptor's 32 bytes at offset 80 became list_sha256 (SHA-256
 * of its symbol-hash list) in place of the chunk plaintext's SHA-256; the
 * new context keeps a descriptor of either meaning from verifying under
 * the other (PROTOCOL.md section 9).
 */
#define PROTO_DESC_SIG_CONTEXT "sluice descriptor v2"
#define PROTO_HB_SIG_CONTEXT "sluice heartbeat v1"
#define PROTO_SIG_CONTEXT_LEN 24 /* context, NUL padded */

enum proto_verdict {
	PROTO_OK = 0,
	PROTO_ERR_SHORT,     /* shorter than its type's minimum */
	PROTO_ERR_MAGIC,     /* not a Sluice datagram */
	PROTO_ERR_VERSION,   /* another protocol version */
	PROTO_ERR_TYPE,      /* unknown datagram type */
	PROTO_ERR_FLAGS,     /* a flag this version does not define */
	PROTO_ERR_RESERVED,  /* a reserved field is not zero */
	PROTO_ERR_LENGTH,    /* length disagrees with the fields */
	PROTO_ERR_PARAM,     /* k, m, symbol size, hash length out of range */
	PROTO_ERR_GEOMETRY,  /* object/chunk/size fields inconsistent */
	PROTO_ERR_LINK,      /* link envelope missing, forged or corrupt */
	PROTO_VERDICT_COUNT
};

/* Stable lower-case names for counters and logs ("short", "magic", ...). */
const char *proto_verdict_name(enum proto_verdict v);

struct proto_hdr {
	uint8_t type;
	uint8_t flags;
	uint64_t session;
	uint64_t seq;
};

/* Identifies a chunk: object 0 is the transfer manifest. */
struct proto_chunk_id {
	uint64_t transfer;
	uint32_t object;
	uint32_t chunk;
};

struct proto_symbol {
	struct proto_hdr hdr;
	struct proto_chunk_id id;
	uint8_t index; /* 0..k-1 source, k..k+m-1 repair */
	uint8_t k;
	uint8_t m;
	const uint8_t *data; /* borrowed */
	size_t len;          /* symbol size S */
};

struct proto_descriptor {
	struct proto_hdr hdr;
	struct proto_chunk_id id;
	uint32_t object_count;   /* objects in the transfer, manifest included */
	uint64_t transfer_bytes; /* sum of every object's size */
	uint64_t object_size;
	uint32_t chunk_size;     /* nominal plaintext bytes per chunk */
	uint32_t plain_len;      /* this chunk's plaintext bytes */
	uint32_t enc_len;        /* bytes carried by the k source symbols */
	uint16_t symbol_size;
	uint8_t k;
	uint8_t m;
	uint8_t codec;
	uint8_t hash_len;
	/* SHA-256 of the (k + m) * hash_len bytes of hashes */
	uint8_t list_sha256[PROTO_SHA256_LEN];
	const uint8_t *hashes;   /* (k + m) * hash_len bytes, borrowed */
	uint8_t key_id[PROTO_KEYID_LEN];
	uint8_t sig[PROTO_SIG_LEN];
	const uint8_t *signed_body; /* body bytes the signature covers */
	size_t signed_len;
};

struct proto_heartbeat {
	struct proto_hdr hdr;
	uint64_t sent_ns;      /* sender's CLOCK_REALTIME */
	uint64_t transfer;     /* transfer being sent, 0 when idle */
	uint32_t interval_ms;
	uint8_t key_id[PROTO_KEYID_LEN];
	uint8_t sig[PROTO_SIG_LEN];
	const uint8_t *signed_body;
	size_t signed_len;
};

/* Reads the common header; checks magic, version, type, flags, reserved. */
enum proto_verdict proto_hdr_decode(const uint8_t *buf, size_t len,
    struct proto_hdr *hdr);

enum proto_verdict proto_symbol_decode(const uint8_t *buf, size_t len,
    struct proto_symbol *s);
enum proto_verdict proto_descriptor_decode(const uint8_t *buf, size_t len,
    struct proto_descriptor *d);
enum proto_verdict proto_heartbeat_decode(const uint8_t *buf, size_t len,
    struct proto_heartbeat *h);

/* Bytes a descriptor with n = k + m hashes of hash_len bytes occupies. */
size_t proto_descriptor_len(unsigned n, unsigned hash_len);

/* Plaintext bytes of chunk `chunk` of an object; 0 if out of range. */
uint32_t proto_chunk_plain_len(uint64_t object_size, uint32_t chunk_size,
    uint32_t chunk);
/* Number of chunks of an object (0 for an empty object). */
uint32_t proto_chunk_count(uint64_t object_size, uint32_t chunk_size);

/*
 * The message a signature covers: the NUL-padded context followed by the
 * signed body.  Writes it to out (cap bytes); returns its length, 0 if it
 * does not fit.
 */
size_t proto_sig_message(uint8_t *out, size_t cap, const char *context,
    const uint8_t *body, size_t body_len);

/*
 * Encoders write a whole datagram into buf (cap bytes) and return its
 * length, or 0 if it does not fit or a field is out of range.
 */
void proto_hdr_encode(uint8_t buf[PROTO_HDR_LEN], uint8_t type,
    uint64_t session, uint64_t seq);

/* Writes header and symbol header; the caller puts len data bytes at
 * buf + PROTO_SYM_OFF.  Returns PROTO_SYM_OFF + len, or 0. */
size_t proto_symbol_encode_hdr(uint8_t *buf, size_t cap,
    const struct proto_symbol *s);

/*
 * Writes a descriptor (key_id and sig as given, usually zero) and returns
 * its length; the caller signs the bytes proto_signed_body() names and
 * stores key id and signature with proto_descriptor_set_sig().
 */
size_t proto_descriptor_encode(uint8_t *buf, size_t cap,
    const struct proto_descriptor *d, const uint8_t *hashes);
void proto_descriptor_set_sig(uint8_t *buf, size_t len,
    const uint8_t key_id[PROTO_KEYID_LEN], const uint8_t sig[PROTO_SIG_LEN]);
/* The signed body of an encoded descriptor or heartbeat. */
void proto_signed_body(const uint8_t *buf, size_t len,
    const uint8_t **body, size_t *body_len);

size_t proto_heartbeat_encode(uint8_t *buf, size_t cap,
    const struct proto_heartbeat *h);
void proto_heartbeat_set_sig(uint8_t *buf, const uint8_t key_id[PROTO_KEYID_LEN],
    const uint8_t sig[PROTO_SIG_LEN]);

/* Rewrites the sequence number of an encoded datagram (copies of a
 * descriptor are sent more than once, each with its own seq). */
void proto_hdr_set_seq(uint8_t *buf, uint64_t seq);

#endif
