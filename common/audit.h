/*
 * The audit log: append-only, one record per terminal decision, each
 * carrying the SHA-256 of the record before it, and every N records a
 * checkpoint signed with the receiver's own key.  An auditor who holds the
 * receiver's public key can prove that no record was edited, removed,
 * reordered or inserted (see `sluice audit verify` and PROTOCOL.md
 * "Audit log").
 *
 * A record is one line, logfmt, every value escaped:
 *
 *   seq=7 ts=... prev=<hex> decision=RELEASED transfer=<hex> bundle=...
 *   version=... reason=... manifest=<hex> approvers=<ids> hash=<hex>
 *
 * hash is the SHA-256 of the line up to " hash=".  A checkpoint record
 * has decision=CHECKPOINT and key=/sig= fields; sig signs
 * "sluice audit v1" (NUL padded to 24 bytes) + the line up to " sig=".
 *
 * Appends are one write(2) of a whole line followed by fdatasync; on open
 * an incomplete last line (a crash mid-append) is cut off, so the last
 * record is always complete or absent.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sign_seckey;
struct sign_pubkey;

#define AUDIT_SIG_CONTEXT "sluice audit v1"

struct audit_record {
	const char *decision;   /* RELEASED, DUPLICATE, QUARANTINED, ... */
	uint64_t transfer;
	const char *bundle;
	const char *version;
	const char *reason;
	const uint8_t *manifest_sha256; /* may be NULL */
	const char *approvers;  /* comma-separated key ids, may be NULL */
	const char *detail;     /* may be NULL */
};

struct audit;

/* Opens (creating) the log; key is borrowed.  NULL with *rc set. */
struct audit *audit_open(const char *path, const struct sign_seckey *key,
    unsigned checkpoint_every, int *rc);
void audit_close(struct audit *a);
/* Appends a record (and a checkpoint when due).  0 or -errno. */
int audit_append(struct audit *a, const struct audit_record *r);

/* 1 if the log holds a record of that decision for that transfer, 0 if
 * not, or -errno.  Reads the whole log: for recovery at start only. */
int audit_find(const char *path, uint64_t transfer, const char *decision);

/*
 * Verifies a whole log.  Returns 0 when intact; otherwise -EBADMSG with
 * a one-line account of the first problem (line number and what was
 * found) in err.  *records / *unsigned_tail receive the record count and
 * how many records follow the last checkpoint.
 */
int audit_verify(const char *path, const struct sign_pubkey *key,
    char *err, size_t errlen, uint64_t *records, uint64_t *unsigned_tail);

#endif
