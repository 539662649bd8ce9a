/*
 * The audit log: append-only, one record per terminal decision, each
 * carrying the SHA-256 of the record before it and an Ed25519 signature by
 * the receiver's own key.  An auditor who holds only the receiver's public
 * key can prove that no record was edited, removed, reordered, inserted or
 * forged (see `sluice audit verify` and PROTOCOL.md "Appendix B").
 *
 * A record is one line, logfmt, every value escaped:
 *
 *   seq=7 ts=... prev=<hex> decision=RELEASED transfer=<hex> bundle=...
 *   version=... reason=... manifest=<hex> approvers=<ids> [actor=...]
 *   [detail=...] key=<key id> sig=<128 hex> hash=<64 hex>
 *
 * sig signs AUDIT_SIG_CONTEXT (NUL padded to 24 bytes) + the line up to
 * " sig=" (so seq, prev and the key id are signed); hash is the SHA-256 of
 * the line up to " hash=" (so it covers sig).
 *
 * Why a signature on every record rather than MACs sealed by periodic
 * signed checkpoints: the v1 log had checkpoints every N records and the
 * records between them were covered by the hash chain alone, so anyone
 * could delete the checkpoints and recompute the chain.  Whatever seals
 * the tail must be a signature on the last record, i.e. one signature per
 * append anyway; signing every record then costs nothing more in kind
 * (~15 us to sign, ~45 us to verify, per bundle), lets an auditor with
 * only the public key check every record, and lets verify name the exact
 * record that was forged.  MACs would need the secret key to check.
 *
 * The file alone cannot show that records were cut from its end.  So the
 * latest head (seq, hash) is also kept outside the log: in a head file
 * (optional, `<state_dir>/audit.head`: "seq=N hash=HEX sig=HEX", the
 * signature over AUDIT_HEAD_CONTEXT + seq (8 bytes, big endian) + the raw
 * hash) written atomically after every append, and returned to the caller
 * so the receiver can ship it in the quarantine log.
 *
 * Appends are one write(2) of a whole line followed by fdatasync; on open
 * an incomplete last line (a crash mid-append) is cut off, so the last
 * record is always complete or absent.  A log whose last record is not
 * signed by this key, or that ends before the head file says it should,
 * is never extended.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sign_seckey;
struct sign_pubkey;

#define AUDIT_SIG_CONTEXT "sluice audit v2"
#define AUDIT_HEAD_CONTEXT "sluice audit head v1"
/* The head file's name under the receiver's state_dir. */
#define AUDIT_HEAD_FILE "audit.head"

struct audit_record {
	const char *decision;   /* RELEASED, DUPLICATE, QUARANTINED, ... */
	uint64_t transfer;
	const char *bundle;
	const char *version;
	const char *reason;
	const uint8_t *manifest_sha256; /* may be NULL */
	const char *approvers;  /* comma-separated key ids, may be NULL */
	const char *actor;      /* who acted (purges), may be NULL */
	const char *detail;     /* may be NULL */
};

/* The last record of a log: its seq and hash (64 hex + NUL). */
struct audit_head {
	uint64_t seq;
	char hash[65];
};

struct audit;

/*
 * Opens (creating) the log; key is borrowed.  head_path, if not NULL, is
 * the head file kept beside it (borrowed; copied).  NULL with *rc set:
 * -EBADMSG when the last record is damaged or not signed by key, or the
 * head file says the log was longer.
 */
struct audit *audit_open(const char *path, const struct sign_seckey *key,
    const char *head_path, int *rc);
void audit_close(struct audit *a);
/*
 * Appends a signed record, then rewrites the head file.  0 or -errno.
 * head, if not NULL, receives the new head when the record was written
 * (even if the head file could not be: then -errno is returned).
 */
int audit_append(struct audit *a, const struct audit_record *r,
    struct audit_head *head);

/* 1 if the log holds a record of that decision for that transfer, 0 if
 * not, or -errno.  Reads the whole log: for recovery at start only. */
int audit_find(const char *path, uint64_t transfer, const char *decision);

/*
 * Parses a head file's text and checks its signature with key.  0, or
 * -EBADMSG with a one-line reason in err.
 */
int audit_head_parse(const uint8_t *buf, size_t len,
    const struct sign_pubkey *key, struct audit_head *h, char *err,
    size_t errlen);
/* The same for a file; -errno when it cannot be read. */
int audit_head_load(const char *path, const struct sign_pubkey *key,
    struct audit_head *h, char *err, size_t errlen);

/*
 * Verifies a whole log held in memory: the chain first (every hash, seq
 * and prev), then, against head if not NULL, then every record's
 * signature.  Returns 0 when intact; otherwise -EBADMSG with a one-line
 * account of the first problem (line number, seq and what was found) in
 * err.  *records receives the record count.
 */
int audit_verify_buf(const uint8_t *buf, size_t len,
    const struct sign_pubkey *key, const struct audit_head *head, char *err,
    size_t errlen, uint64_t *records);
/* The same for a file, with the head read from head_path if not NULL. */
int audit_verify(const char *path, const struct sign_pubkey *key,
    const char *head_path, char *err, size_t errlen, uint64_t *records);

#endif
