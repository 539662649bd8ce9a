/*
 * Signature checks under a budget: see sigcheck.h for the policy.  The
 * cache is set-associative (SIGCHECK_CACHE_ENTRIES / SIGCHECK_WAYS sets,
 * round-robin replacement within a set), indexed by the signature's first
 * bytes.  A look-up costs a compare of 64-byte signatures; the SHA-256
 * that confirms a hit is computed only when a signature matches, so junk
 * with fresh signatures pays no hash.  An attacker replaying a genuine
 * signature over other bytes pays one SHA-256 (~1 us for a 1.4 KB
 * datagram) and then meets the budget like any other forgery.
 */
#include "receiver/sigcheck.h"
#include "common/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SIGCHECK_WAYS 4
#define SIGCHECK_SETS (SIGCHECK_CACHE_ENTRIES / SIGCHECK_WAYS)
_Static_assert((SIGCHECK_SETS & (SIGCHECK_SETS - 1)) == 0,
    "the set count is a power of two");

struct entry {
	bool used;
	uint8_t sig[SIGN_SIG_LEN];
	uint8_t digest[HASH_LEN]; /* SHA-256(key id || message) */
};

struct set {
	struct entry way[SIGCHECK_WAYS];
	unsigned next;            /* the way to replace next */
};

struct bucket {
	double rate;              /* tokens per second */
	double cap;               /* the bucket holds one second's worth */
	double tokens;
	uint64_t last_ns;
	bool started;
};

struct sigcheck {
	struct bucket other;      /* everything: max_signature_checks */
	struct bucket known;      /* transfers in a slot, first: see below */
	double reserve;           /* of other, left to SIGCHECK_KNOWN */
	struct set *sets;
	struct hash_ctx *hash;
	struct sigcheck_stats stats;
	/* The transfers being received (sigcheck_set_live), for workers. */
	uint64_t *live;
	unsigned n_live, live_cap;
	/* Everything above, for the workers share the cache and the
	 * budget with the main thread; never held during a verify. */
	pthread_mutex_t lock;
};

struct sigcheck *
sigcheck_new(unsigned checks_per_second, unsigned known_per_second)
{
	struct sigcheck *sc;

	if (checks_per_second == 0)
		return NULL;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return NULL;
	sc->sets = calloc(SIGCHECK_SETS, sizeof(*sc->sets));
	sc->hash = hash_new();
	if (sc->sets == NULL || sc->hash == NULL) {
		sigcheck_free(sc);
		return NULL;
	}
	sc->other.rate = sc->other.cap = sc->other.tokens = checks_per_second;
	sc->reserve = sc->other.cap / 2;
	sc->known.rate = sc->known.cap = sc->known.tokens = known_per_second;
	pthread_mutex_init(&sc->lock, NULL);
	return sc;
}

void
sigcheck_free(struct sigcheck *sc)
{
	if (sc == NULL)
		return;
	hash_free(sc->hash);
	free(sc->sets);
	free(sc->live);
	pthread_mutex_destroy(&sc->lock);
	free(sc);
}

static struct set *
set_of(struct sigcheck *sc, const uint8_t sig[SIGN_SIG_LEN])
{
	uint64_t h;

	memcpy(&h, sig, sizeof(h));
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return &sc->sets[h & (SIGCHECK_SETS - 1)];
}

static void
digest_of(struct sigcheck *sc, uint8_t out[HASH_LEN],
    const struct sign_pubkey *key, const uint8_t *msg, size_t msg_len)
{
	struct hash_ctx *ctx = sc->hash;

	hash_init(ctx);
	hash_update(ctx, key->id, sizeof(key->id));
	hash_update(ctx, msg, msg_len);
	hash_final(ctx, out);
}

static bool
cache_hit(struct sigcheck *sc, const struct sign_pubkey *key,
    const uint8_t *msg, size_t msg_len, const uint8_t sig[SIGN_SIG_LEN])
{
	struct set *set = set_of(sc, sig);
	uint8_t digest[HASH_LEN];
	bool hashed = false;
	unsigned i;

	for (i = 0; i < SIGCHECK_WAYS; i++) {
		struct entry *e = &set->way[i];

		if (!e->used || memcmp(e->sig, sig, SIGN_SIG_LEN) != 0)
			continue;
		if (!hashed) {
			digest_of(sc, digest, key, msg, msg_len);
			hashed = true;
		}
		if (sign_equal(e->digest, digest, HASH_LEN))
			return true;
	}
	return false;
}

static void
cache_add(struct sigcheck *sc, const struct sign_pubkey *key,
    const uint8_t *msg, size_t msg_len, const uint8_t sig[SIGN_SIG_LEN])
{
	struct set *set = set_of(sc, sig);
	struct entry *e = &set->way[set->next];

	set->next = (set->next + 1) % SIGCHECK_WAYS;
	e->used = true;
	memcpy(e->sig, sig, SIGN_SIG_LEN);
	digest_of(sc, e->digest, key, msg, msg_len);
}

static void
refill(struct bucket *b, uint64_t now_ns)
{
	if (!b->started) {
		b->started = true;
		b->last_ns = now_ns;
	}
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * b->rate / 1e9;
		if (b->tokens > b->cap)
			b->tokens = b->cap;
		b->last_ns = now_ns;
	}
}

/*
 * Takes a token if cls may have one now.  A transfer being received has
 * a bucket of its own (max_transfer_signature_checks: a genuine sender
 * needs one check per chunk, thousands a second at 5 Gbit/s), and then
 * the shared one down to its last token; anything else only the shared
 * one, down to its reserve.
 */
static bool
take_token(struct sigcheck *sc, enum sigcheck_class cls, uint64_t now_ns)
{
	double floor = cls == SIGCHECK_KNOWN ? 0 : sc->reserve;

	refill(&sc->other, now_ns);
	if (cls == SIGCHECK_KNOWN && sc->known.rate > 0) {
		refill(&sc->known, now_ns);
		if (sc->known.tokens >= 1) {
			sc->known.tokens -= 1;
			return true;
		}
	}
	if (sc->other.tokens < floor + 1)
		return false;
	sc->other.tokens -= 1;
	return true;
}

static bool
is_live(const struct sigcheck *sc, uint64_t id)
{
	unsigned i;

	for (i = 0; i < sc->n_live; i++)
		if (sc->live[i] == id)
			return true;
	return false;
}

/* The cache and the budget under the lock; the verify outside it. */
static enum sigcheck_result
check(struct sigcheck *sc, const struct sign_pubkey *key, const uint8_t *msg,
    size_t msg_len, const uint8_t sig[SIGN_SIG_LEN], enum sigcheck_class cls,
    bool cache, uint64_t now_ns, const uint64_t *live_id)
{
	bool good;

	pthread_mutex_lock(&sc->lock);
	if (live_id != NULL && !is_live(sc, *live_id)) {
		pthread_mutex_unlock(&sc->lock);
		return SIGCHECK_SKIPPED;
	}
	if (cache && cache_hit(sc, key, msg, msg_len, sig)) {
		sc->stats.cache_hits++;
		pthread_mutex_unlock(&sc->lock);
		return SIGCHECK_GOOD;
	}
	if (!take_token(sc, cls, now_ns)) {
		sc->stats.over_budget++;
		pthread_mutex_unlock(&sc->lock);
		return SIGCHECK_BUDGET;
	}
	sc->stats.verifies++;
	if (live_id != NULL)
		sc->stats.verifies_early++;
	pthread_mutex_unlock(&sc->lock);
	good = sign_verify(key, sig, msg, msg_len);
	if (good && cache) {
		pthread_mutex_lock(&sc->lock);
		cache_add(sc, key, msg, msg_len, sig);
		pthread_mutex_unlock(&sc->lock);
	}
	return good ? SIGCHECK_GOOD : SIGCHECK_BAD;
}

enum sigcheck_result
sigcheck_verify(struct sigcheck *sc, const struct sign_pubkey *key,
    const uint8_t *msg, size_t msg_len, const uint8_t sig[SIGN_SIG_LEN],
    enum sigcheck_class cls, bool cache, uint64_t now_ns)
{
	return check(sc, key, msg, msg_len, sig, cls, cache, now_ns, NULL);
}

enum sigcheck_result
sigcheck_verify_live(struct sigcheck *sc, uint64_t transfer,
    const struct sign_pubkey *key, const uint8_t *msg, size_t msg_len,
    const uint8_t sig[SIGN_SIG_LEN], uint64_t now_ns)
{
	return check(sc, key, msg, msg_len, sig, SIGCHECK_KNOWN, true, now_ns,
	    &transfer);
}

int
sigcheck_set_live(struct sigcheck *sc, const uint64_t *ids, unsigned n)
{
	int rc = 0;

	pthread_mutex_lock(&sc->lock);
	if (n > sc->live_cap) {
		uint64_t *p = realloc(sc->live, n * sizeof(*p));

		if (p == NULL) {
			n = 0;
			rc = -1;
		} else {
			sc->live = p;
			sc->live_cap = n;
		}
	}
	if (n > 0)
		memcpy(sc->live, ids, n * sizeof(*ids));
	sc->n_live = n;
	pthread_mutex_unlock(&sc->lock);
	return rc;
}

void
sigcheck_get_stats(struct sigcheck *sc, struct sigcheck_stats *st)
{
	pthread_mutex_lock(&sc->lock);
	*st = sc->stats;
	pthread_mutex_unlock(&sc->lock);
}
