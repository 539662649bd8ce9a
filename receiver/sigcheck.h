/*
 * Signature checks under a budget (main thread and ingest workers; called
 * by assemble.c and ingest.c, calls nothing of the receiver's).  An Ed25519 verify costs ~53 us here, and a
 * forged descriptor or heartbeat that names the trusted key id (public: it
 * is in every datagram) with a canonical signature cannot be refused any
 * cheaper, so the receiver caps how many it runs (max_signature_checks,
 * default 1000 a second: ~5% of one core; PROTOCOL.md section 8.0):
 *
 *   - a cache of signed messages already verified good (a SHA-256 of key
 *     id and message, found by signature): an identical descriptor is
 *     never verified twice.  Only good verdicts are kept, so forgeries
 *     cannot evict anything from it.
 *   - a token bucket of checks_per_second, holding at most one second's
 *     worth.  SIGCHECK_OTHER (descriptors of transfers in no slot,
 *     heartbeats) may only take a token while more than half the bucket
 *     is left; SIGCHECK_KNOWN (descriptors of transfers being received)
 *     may take the last one.  A flood of the first kind therefore leaves
 *     at least half a second's worth, refilled first, to the second.
 *   - SIGCHECK_KNOWN also has a bucket of its own,
 *     max_transfer_signature_checks a second (default 20000): a genuine
 *     transfer needs one check per chunk, about 3500 a second at 5 Gbit/s
 *     with 1472-byte datagrams.  Forged descriptors that name a live
 *     transfer id and a chunk without a verified descriptor yet can spend
 *     it; the link key (PROTOCOL.md 3.6) stops those for nanoseconds.
 *
 * The ingest workers check descriptors of transfers being received before
 * the main thread takes them (sigcheck_verify_live), with the same cache
 * and the same budget: one lock guards both, taken per descriptor (never
 * per symbol) and never held during a verify.
 *
 * Ownership: sigcheck_new returns an owned context; sigcheck_free(NULL) is
 * a no-op.  Arguments are borrowed for the call.
 */
#ifndef SLUICE_RECEIVER_SIGCHECK_H
#define SLUICE_RECEIVER_SIGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sign.h"

/* ~6.6 MiB: every chunk of a transfer of ~10 GB at 1472 bytes, so that a
 * later pass's descriptors are hits, not verifies. */
#define SIGCHECK_CACHE_ENTRIES 65536

enum sigcheck_class {
	SIGCHECK_KNOWN,   /* descriptor of a transfer being received */
	SIGCHECK_OTHER,   /* descriptor of an unknown transfer, heartbeat */
};

enum sigcheck_result {
	SIGCHECK_GOOD,
	SIGCHECK_BAD,
	SIGCHECK_BUDGET,  /* not checked: the budget is spent */
	SIGCHECK_SKIPPED, /* sigcheck_verify_live: not a live transfer */
};

struct sigcheck_stats {
	uint64_t cache_hits;
	uint64_t verifies;      /* Ed25519 checks run */
	uint64_t over_budget;
	uint64_t verifies_early;  /* of verifies, by sigcheck_verify_live */
};

struct sigcheck;

/* checks_per_second for everything (the shared bucket); known_per_second
 * more for descriptors of transfers being received (0: none). */
struct sigcheck *sigcheck_new(unsigned checks_per_second,
    unsigned known_per_second);
void sigcheck_free(struct sigcheck *sc);

/*
 * Is sig a good signature by key of msg (msg_len bytes: context and
 * body)?  cache: remember a good verdict (not worth it for heartbeats,
 * which are never repeated).  now_ns: a monotonic clock.
 */
enum sigcheck_result sigcheck_verify(struct sigcheck *sc,
    const struct sign_pubkey *key, const uint8_t *msg, size_t msg_len,
    const uint8_t sig[SIGN_SIG_LEN], enum sigcheck_class cls, bool cache,
    uint64_t now_ns);

/*
 * For the ingest workers, before the main thread takes the datagram: as
 * sigcheck_verify(SIGCHECK_KNOWN, cache) but only for a descriptor of a
 * transfer the main thread has said is live (else SIGCHECK_SKIPPED, and
 * the main thread checks it itself, as any other).
 */
enum sigcheck_result sigcheck_verify_live(struct sigcheck *sc,
    uint64_t transfer, const struct sign_pubkey *key, const uint8_t *msg,
    size_t msg_len, const uint8_t sig[SIGN_SIG_LEN], uint64_t now_ns);
/* Main thread: the transfers being received now (copied); 0 or -1. */
int sigcheck_set_live(struct sigcheck *sc, const uint64_t *ids, unsigned n);

void sigcheck_get_stats(struct sigcheck *sc, struct sigcheck_stats *st);

#endif
