/*
 * Assembly: every datagram that reaches the receiver passes through here,
 * and the checks run cheapest first:
 *
 *   1. header sanity and the type's layout (proto/, no state touched)
 *   2. is it for a transfer that has ended (lifecycle_ended: an O(1)
 *      look-up), or a chunk we already wrote?  then it is a repeat:
 *      counted, nothing else
 *   3. descriptor: an identical copy of one we verified is a repeat; one
 *      that would conflict even if signed is dropped unchecked; otherwise
 *      the Ed25519 signature is checked against the trusted sender keys,
 *      through sigcheck.c: a cache of verified ones, and a budget of
 *      checks a second with a share kept for transfers being received
 *      (with workers, a worker has usually done it, with the same cache
 *      and budget, and its verdict is taken);
 *      then its list_sha256 must be the SHA-256 of its symbol-hash list
 *   4. symbol: SHA-256 compared with the hash its descriptor lists,
 *      before it is stored where the decoder will read it.  A symbol that
 *      arrives before its descriptor is held as "pending" and checked when
 *      the descriptor comes; it never reaches the decoder unchecked
 *   5. k verified symbols: FEC decode (only if a source symbol is
 *      missing), inflate under the exact output size, then a write at the
 *      chunk's offset in the object's staging file.  With workers, on the
 *      worker that owns the chunk (its slot is busy meanwhile: never
 *      evicted or reused, its datagrams redundant), then back here to be
 *      marked done; a slow disk shows as busy slots, and once a quarter
 *      of them are busy the main thread waits (assemble_backlogged), so
 *      that the backlog shows as a growing ingest queue, not as lost
 *      chunks.
 *      The plaintext is not hashed per chunk: the decoder and inflate ran
 *      on symbols each checked against the signed descriptor, and every
 *      file is re-hashed from disk against the signed manifest before
 *      release (verify.c), which catches anything they could get wrong.
 *
 * Memory: at most max_partial_chunks slots, and at most RECV_SLOT_MEMORY
 * bytes of symbol buffers; when either is exhausted the least recently
 * touched partial chunk is evicted (it will be rebuilt from later passes),
 * slots that only hold pending symbols first.  Anybody can send symbols
 * under a live transfer id, so what is not verified has a budget of its
 * own: a slot that a symbol takes (no descriptor yet) never evicts
 * another, at most a quarter of the slots are such, and their bytes, sized
 * by the transfer's symbol size and the highest index held, stay within
 * max_pending_bytes (else pending_limit).  When such a slot goes, so does
 * its buffer, so the memory junk made comes back.  Free slots are on a
 * list: taking one is O(1), for junk too.
 * A slot names its transfer by pointer and generation: once lifecycle.c
 * frees the transfer, the slot is stale and is taken back lazily, so
 * nothing here is ever called back.
 */
#include "receiver/recv.h"
#include "receiver/sigcheck.h"
#include "common/compress.h"
#include "common/fec.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECV_SLOT_MEMORY (512ull << 20)

static struct log_ratelimit drop_rl = LOG_RATELIMIT_INIT(2.0, 10.0);
static struct log_ratelimit write_rl = LOG_RATELIMIT_INIT(1.0, 5.0);

/*
 * Counts a drop and logs it, at most a few lines a second; key_id (may be
 * NULL) is the key a descriptor named, so that an operator can tell which
 * sender's key is missing from sender_keys.
 */
static void
drop_key(struct recv *r, unsigned reason, uint64_t transfer,
    const uint8_t *key_id)
{
	uint64_t suppressed = 0;
	char key[2 * PROTO_KEYID_LEN + 16] = "";

	r->stats.drop[reason]++;
	if (!log_ratelimit(&drop_rl, &suppressed))
		return;
	if (key_id != NULL) {
		memcpy(key, "key id ", 7);
		util_hex(key + 7, key_id, PROTO_KEYID_LEN);
		strcat(key, "; ");
	}
	if (transfer != 0)
		log_warnx("dropped datagram: %s (%stransfer %016llx; %llu "
		    "more drops not logged)", recv_drop_name(reason), key,
		    (unsigned long long)transfer,
		    (unsigned long long)suppressed);
	else
		log_warnx("dropped datagram: %s (%s%llu more drops not "
		    "logged)", recv_drop_name(reason), key,
		    (unsigned long long)suppressed);
}

static void
drop(struct recv *r, unsigned reason, uint64_t transfer)
{
	drop_key(r, reason, transfer, NULL);
}

static unsigned
bucket_of(const struct recv *r, const struct proto_chunk_id *id)
{
	uint64_t h = id->transfer ^ ((uint64_t)id->object << 32 | id->chunk);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (unsigned)(h & (r->n_buckets - 1));
}

static bool
same_id(const struct proto_chunk_id *a, const struct proto_chunk_id *b)
{
	return a->transfer == b->transfer && a->object == b->object &&
	    a->chunk == b->chunk;
}

/* Does the slot still belong to a transfer that is receiving? */
static bool
slot_live(const struct slot *s)
{
	return s->used && s->t->gen == s->t_gen &&
	    (s->t->state == TS_RECEIVING || s->t->state == TS_INCOMPLETE);
}

static void slot_release(struct recv *r, struct slot *s);

static struct slot *
slot_lookup(struct recv *r, const struct proto_chunk_id *id)
{
	int32_t i = r->buckets[bucket_of(r, id)];

	while (i >= 0) {
		struct slot *s = &r->slots[i];

		if (same_id(&s->id, id)) {
			if (slot_live(s))
				return s;
			/* Not if a worker still has it (slot_release): it is
			 * given back when done, and a new one for this id goes
			 * before it in the chain. */
			slot_release(r, s);
			return NULL;
		}
		i = s->next;
	}
	return NULL;
}

static void
slot_unlink(struct recv *r, struct slot *s)
{
	int32_t *pp = &r->buckets[bucket_of(r, &s->id)];
	int32_t idx = (int32_t)(s - r->slots);

	while (*pp >= 0) {
		if (*pp == idx) {
			*pp = s->next;
			break;
		}
		pp = &r->slots[*pp].next;
	}
	s->next = -1;
}

static void
slot_free_buffers(struct recv *r, struct slot *s)
{
	r->slot_bytes -= s->buf_cap + s->plain_cap;
	free(s->buf);
	free(s->plain);
	s->buf = s->plain = NULL;
	s->buf_cap = s->plain_cap = 0;
}

/* Its pending symbols are no longer charged: a descriptor came, or the
 * slot goes. */
static void
slot_unpend(struct recv *r, struct slot *s)
{
	if (!s->pending_slot)
		return;
	r->pending_bytes -= s->pending_charge;
	r->pending_slots--;
	s->pending_charge = 0;
	s->pending_slot = false;
}

/*
 * Returns a slot to the pool; its buffers are kept for reuse, unless only
 * unverified symbols filled them.  Not while a worker has it (busy):
 * assemble_reap gives it back.
 */
static void
slot_release(struct recv *r, struct slot *s)
{
	if (!s->used || s->busy)
		return;
	if (s->pending_slot) {
		slot_unpend(r, s);
		slot_free_buffers(r, s);
	}
	slot_unlink(r, s);
	s->used = false;
	s->t = NULL;
	s->next_free = r->free_slot;
	r->free_slot = (int32_t)(s - r->slots);
}

/* The partial chunk to evict, other than keep: a stale one, else the
 * least recently touched of those with only pending symbols, else the
 * least recently touched. */
static struct slot *
slot_oldest(struct recv *r, const struct slot *keep)
{
	struct slot *best = NULL;
	unsigned i;

	for (i = 0; i < r->n_slots; i++) {
		struct slot *s = &r->slots[i];

		if (s == keep || !s->used || s->busy)
			continue;
		if (!slot_live(s))
			return s; /* stale: the cheapest to take */
		if (best == NULL || (s->pending_slot && !best->pending_slot) ||
		    (s->pending_slot == best->pending_slot &&
		    s->touched_ns < best->touched_ns))
			best = s;
	}
	return best;
}

static void
slot_evict(struct recv *r, struct slot *s)
{
	if (slot_live(s))
		r->stats.chunks_evicted++;
	slot_release(r, s);
}

/* Grows *buf to need bytes within the memory budget, evicting others. */
static bool
slot_reserve(struct recv *r, struct slot *s, uint8_t **buf, size_t *cap,
    size_t need)
{
	uint8_t *p;

	if (*cap >= need)
		return true;
	while (r->slot_bytes - *cap + need > r->slot_bytes_max) {
		struct slot *victim = NULL;
		unsigned i;

		/* Prefer idle buffers, then the oldest partial chunk. */
		for (i = 0; i < r->n_slots; i++)
			if (!r->slots[i].used &&
			    r->slots[i].buf_cap + r->slots[i].plain_cap > 0) {
				victim = &r->slots[i];
				break;
			}
		if (victim == NULL) {
			victim = slot_oldest(r, s);
			if (victim == NULL)
				return false;
			slot_evict(r, victim);
		}
		slot_free_buffers(r, victim);
	}
	p = realloc(*buf, need);
	if (p == NULL)
		return false;
	r->slot_bytes += need - *cap;
	*buf = p;
	*cap = need;
	return true;
}

/*
 * A slot for a chunk, with room for n symbols.  Its k and m are set only
 * from a verified descriptor: an unverified symbol may not decide them.
 * pending: taken for a symbol, so it may only have a free slot.
 */
static struct slot *
slot_alloc(struct recv *r, struct transfer *t, const struct proto_chunk_id *id,
    unsigned n, unsigned symbol_size, bool pending)
{
	struct slot *s = NULL;
	unsigned b;

	if (r->free_slot >= 0) {
		s = &r->slots[r->free_slot];
		r->free_slot = s->next_free;
	} else if (pending) {
		return NULL;
	} else {
		s = slot_oldest(r, NULL);
		if (s == NULL)
			return NULL;
		slot_evict(r, s);
		/* slot_evict put it on the free list: take it off again. */
		r->free_slot = s->next_free;
	}
	s->used = true;
	s->t = t;
	s->t_gen = t->gen;
	s->id = *id;
	s->have_desc = false;
	s->k = s->m = 0;
	s->symbol_size = (uint16_t)symbol_size;
	memset(s->sym, SYM_ABSENT, sizeof(s->sym));
	s->n_verified = s->n_pending = 0;
	s->pending_slot = pending;
	s->pending_charge = 0;
	if (pending)
		r->pending_slots++;
	s->touched_ns = util_now_ns();
	b = bucket_of(r, id);
	s->next = r->buckets[b];
	r->buckets[b] = (int32_t)(s - r->slots);
	if (!slot_reserve(r, s, &s->buf, &s->buf_cap,
	    (size_t)n * symbol_size)) {
		slot_release(r, s);
		return NULL;
	}
	return s;
}

int
assemble_init(struct recv *r)
{
	unsigned i;

	r->n_slots = r->conf->max_partial_chunks;
	r->slots = calloc(r->n_slots, sizeof(*r->slots));
	for (r->n_buckets = 1; r->n_buckets < 2 * r->n_slots;)
		r->n_buckets <<= 1;
	r->buckets = malloc(r->n_buckets * sizeof(*r->buckets));
	r->fec = fec_new();
	r->zc = compress_new();
	r->sigcheck = sigcheck_new(r->conf->max_signature_checks,
	    r->conf->max_transfer_signature_checks);
	if (r->slots == NULL || r->buckets == NULL || r->fec == NULL ||
	    r->zc == NULL || r->sigcheck == NULL)
		return -ENOMEM;
	for (i = 0; i < r->n_buckets; i++)
		r->buckets[i] = -1;
	for (i = 0; i < r->n_slots; i++) {
		r->slots[i].next = -1;
		r->slots[i].next_free = i + 1 < r->n_slots ? (int32_t)i + 1 :
		    -1;
	}
	r->free_slot = 0;
	r->slot_bytes_max = RECV_SLOT_MEMORY;
	return 0;
}

void
assemble_fini(struct recv *r)
{
	unsigned i;

	for (i = 0; r->slots != NULL && i < r->n_slots; i++)
		slot_free_buffers(r, &r->slots[i]);
	free(r->slots);
	free(r->buckets);
	fec_free(r->fec);
	compress_free(r->zc);
	for (i = 0; i < RECV_MAX_WORKERS; i++) {
		fec_free(r->wfec[i]);
		compress_free(r->wzc[i]);
	}
	sigcheck_free(r->sigcheck);
}

/* Is t taking chunks?  Not with the verifier, not without space. */
static bool
accepting(const struct transfer *t)
{
	return (t->state == TS_RECEIVING || t->state == TS_INCOMPLETE) &&
	    !t->waiting_space;
}

/* digest: the data's SHA-256 if a worker has it, or NULL. */
static bool
symbol_matches(const struct slot *s, unsigned index, const uint8_t *data,
    const uint8_t *digest)
{
	uint8_t d[HASH_LEN];

	if (digest == NULL) {
		hash_sha256(d, data, s->symbol_size);
		digest = d;
	}
	return sign_equal(digest, s->hashes + (size_t)index * s->hash_len,
	    s->hash_len);
}

/* Is list_sha256 the SHA-256 of the descriptor's symbol-hash list? */
static bool
list_hash_matches(const struct proto_descriptor *d)
{
	uint8_t digest[HASH_LEN];

	hash_sha256(digest, d->hashes, ((size_t)d->k + d->m) * d->hash_len);
	return sign_equal(digest, d->list_sha256, HASH_LEN);
}

/*
 * A chunk's own work, on a worker or (without workers) here: decode if a
 * source symbol is missing, check what the decoder rebuilt, inflate, write
 * at the chunk's offset, close fd.  Touches only the slot (which nobody
 * else changes meanwhile), the fec and zlib contexts given and fd.
 * Returns 0, a drop reason, or -errno of a failed write.
 */
static int
chunk_work(struct slot *s, struct fec *fec, struct compress *zc, int fd,
    uint64_t off, bool *repaired)
{
	uint8_t *sym[PROTO_MAX_SYMBOLS], present[PROTO_MAX_SYMBOLS];
	const uint8_t *plain = s->buf;
	unsigned i, n = (unsigned)s->k + s->m;
	int rc = 0;

	*repaired = false;
	for (i = 0; i < n; i++) {
		sym[i] = s->buf + (size_t)i * s->symbol_size;
		present[i] = s->sym[i] == SYM_VERIFIED;
		if (i < s->k && !present[i])
			*repaired = true;
	}
	if (*repaired) {
		if (fec == NULL || fec_decode(fec, s->k, s->m, s->symbol_size,
		    sym, present) != 0) {
			rc = DROP_DECODE_FAILED;
			goto out;
		}
		/* What the decoder rebuilt must match the signed hashes too:
		 * a check that costs only the lost symbols, and keeps a fault
		 * in decoding (or in this slot's memory) a dropped chunk that
		 * a later pass brings again, not a file that fails its hash
		 * at release. */
		for (i = 0; i < s->k; i++) {
			if (present[i] || symbol_matches(s, i, sym[i], NULL))
				continue;
			rc = DROP_CHUNK_HASH;
			goto out;
		}
	}
	if (s->codec == CODEC_DEFLATE) {
		if (zc == NULL || compress_inflate(zc, s->buf, s->enc_len,
		    s->plain, s->plain_len) != 0) {
			rc = DROP_INFLATE;
			goto out;
		}
		plain = s->plain;
	}
	/*
	 * No hash of the plaintext here: every symbol the decoder used
	 * matched its entry in the signed descriptor, and every symbol it
	 * rebuilt was checked against its entry above, so inflate ran on
	 * authenticated bytes (PROTOCOL.md section 4); what it produces is
	 * checked, whole file by whole file, against the signed manifest's
	 * SHA-256 before anything is released (verify.c).
	 */
	rc = util_pwrite_all(fd, plain, s->plain_len, off);
out:
	close(fd);
	return rc;
}

/* The main thread's end of a chunk: counted, the slot given back, and if
 * it was written and its transfer is still this one, marked done. */
static void
chunk_finish(struct recv *r, struct slot *s, int rc, bool repaired)
{
	struct transfer *t = s->t;
	struct proto_chunk_id id = s->id;
	bool live = slot_live(s);
	uint32_t len = s->plain_len;

	if (rc < 0) {
		/* This machine's fault: the chunk stays missing and a later
		 * pass or a resend brings it again. */
		uint64_t suppressed;

		r->stats.drop[DROP_STAGING_WRITE]++;
		if (log_ratelimit(&write_rl, &suppressed))
			log_warnx("transfer %016llx: staging write failed: %s "
			    "(%llu more not logged)",
			    (unsigned long long)id.transfer, strerror(-rc),
			    (unsigned long long)suppressed);
	} else if (rc > 0) {
		drop(r, (unsigned)rc, id.transfer);
	} else if (repaired) {
		r->stats.chunks_repaired++;
	}
	slot_release(r, s);
	if (rc != 0 && r->in != NULL)
		ingest_hint_chunk(r->in, &id, false); /* it will come again */
	if (rc == 0 && live)
		lifecycle_chunk_done(r, t, id.object, id.chunk, len);
}

static struct slot *
slot_of_job(struct ingest_job *j)
{
	return (struct slot *)((char *)j - offsetof(struct slot, job));
}

/* On a worker: the chunk's work with that worker's own contexts. */
static void
chunk_job(struct ingest_job *j, unsigned worker, void *arg)
{
	struct recv *r = arg;
	struct slot *s = slot_of_job(j);
	struct transfer *t = s->t;

	/* A test's stand-in for a disk that stalls: jobs pile up. */
	if (recv_failpoint_on("slow_chunk"))
		usleep(20000);
	if (r->wfec[worker] == NULL)
		r->wfec[worker] = fec_new();
	if (r->wzc[worker] == NULL && s->codec == CODEC_DEFLATE)
		r->wzc[worker] = compress_new();
	s->job_rc = chunk_work(s, r->wfec[worker], r->wzc[worker], s->job_fd,
	    (uint64_t)s->id.chunk * t->chunk_size, &s->job_repaired);
	/* The last this thread touches of the transfer. */
	atomic_fetch_sub(&t->jobs_inflight, 1);
}

/*
 * A chunk with k verified symbols: its file opened and its inflate buffer
 * reserved here (the main thread owns both), then decoded and written by
 * the worker that owns it, or here without workers.
 */
static void
complete(struct recv *r, struct slot *s)
{
	struct transfer *t = s->t;
	char name[32];
	bool repaired;
	int fd, rc;

	if (s->codec == CODEC_DEFLATE && !slot_reserve(r, s, &s->plain,
	    &s->plain_cap, s->plain_len)) {
		drop(r, DROP_INFLATE, t->id);
		slot_release(r, s);
		return;
	}
	snprintf(name, sizeof(name), "o%u", s->id.object);
	fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd < 0) {
		chunk_finish(r, s, -errno, false);
		return;
	}
	if (r->in != NULL && ingest_workers(r->in) > 0) {
		s->busy = true;
		s->job_fd = fd;
		/* Its symbols need no hashing any more (a hint). */
		ingest_hint_chunk(r->in, &s->id, true);
		s->job.run = chunk_job;
		atomic_fetch_add(&t->jobs_inflight, 1);
		r->stats.chunk_jobs++;
		r->chunk_job_bytes += s->buf_cap + s->plain_cap;
		if (++r->chunk_jobs_now > r->stats.chunk_jobs_max)
			r->stats.chunk_jobs_max = r->chunk_jobs_now;
		ingest_submit(r->in, bucket_of(r, &s->id), &s->job);
		return;
	}
	rc = chunk_work(s, r->fec, r->zc, fd, (uint64_t)s->id.chunk *
	    t->chunk_size, &repaired);
	chunk_finish(r, s, rc, repaired);
}

/*
 * Tells sigcheck which transfers are being received, for the workers to
 * check their descriptors early (main thread, every loop: a transfer that
 * has just started or ended is at most one loop late, and meanwhile its
 * descriptors are checked here, or under the same budget there).
 */
void
assemble_publish_live(struct recv *r)
{
	uint64_t ids[RECV_MAX_LIVE];
	unsigned i, n = 0;

	for (i = 0; i < r->n_transfers && n < RECV_MAX_LIVE; i++)
		if (accepting(&r->transfers[i]))
			ids[n++] = r->transfers[i].id;
	if (n != r->n_live || memcmp(ids, r->live, n * sizeof(*ids)) != 0) {
		memcpy(r->live, ids, n * sizeof(*ids));
		r->n_live = n;
		(void)sigcheck_set_live(r->sigcheck, ids, n);
	}
}

/*
 * A quarter of the slots, or of their memory, with the workers: they are
 * behind (a disk stalled in writeback), and the main thread stops taking
 * datagrams until they catch up, so that the backlog waits in the ingest
 * queue, which is sized for it, and not in slots, whose running out
 * would drop whole chunks (chunk_limit) on a clean link.
 */
bool
assemble_backlogged(const struct recv *r)
{
	return r->chunk_jobs_now >= UTIL_MAX(2u, r->n_slots / 4) ||
	    r->chunk_job_bytes >= r->slot_bytes_max / 4;
}

/* The chunks the workers have finished, taken back (main thread). */
void
assemble_reap(struct recv *r)
{
	struct ingest_job *j = ingest_reap(r->in), *next;

	for (; j != NULL; j = next) {
		struct slot *s = slot_of_job(j);

		next = j->next;
		s->busy = false;
		r->chunk_jobs_now--;
		r->chunk_job_bytes -= s->buf_cap + s->plain_cap;
		chunk_finish(r, s, s->job_rc, s->job_repaired);
	}
}

static void
maybe_complete(struct recv *r, struct slot *s)
{
	if (s->have_desc && s->n_verified >= s->k)
		complete(r, s);
}

static const struct sign_pubkey *
find_key(const struct recv *r, const uint8_t id[PROTO_KEYID_LEN])
{
	return recv_find_key(r->keys, r->n_keys, id);
}

/*
 * Checks a signature within the budget (sigcheck.h): 0 if good, else the
 * drop reason (bad, or sig_budget).  known: a descriptor of a transfer
 * being received, served from the reserved share.
 */
static unsigned
verify_sig(struct recv *r, const struct sign_pubkey *key, const char *context,
    const uint8_t *body, size_t body_len, const uint8_t *sig, bool known,
    bool cache, unsigned bad)
{
	uint8_t msg[PROTO_SIG_CONTEXT_LEN + PROTO_MAX_DATAGRAM];
	size_t len;

	len = proto_sig_message(msg, sizeof(msg), context, body, body_len);
	if (len == 0)
		return bad;
	switch (sigcheck_verify(r->sigcheck, key, msg, len, sig,
	    known ? SIGCHECK_KNOWN : SIGCHECK_OTHER, cache, util_now_ns())) {
	case SIGCHECK_GOOD:
		return 0;
	case SIGCHECK_BUDGET:
		return DROP_SIG_BUDGET;
	default:
		return bad;
	}
}

/* signed: what a worker found of its signature, or NULL. */
static void
handle_descriptor(struct recv *r, const uint8_t *buf, size_t len,
    const struct ingest_prep *signed_)
{
	struct proto_descriptor d;
	enum proto_verdict v;
	const struct sign_pubkey *key;
	struct transfer *t;
	struct slot *s = NULL;
	unsigned i, n, why;

	v = proto_descriptor_decode(buf, len, &d);
	if (v != PROTO_OK) {
		drop(r, v, 0);
		return;
	}
	t = lifecycle_find(r, d.id.transfer);
	if (t == NULL && lifecycle_ended(r, d.id.transfer, d.hdr.session)) {
		r->stats.finished_repeats++;
		return;
	}
	if (t != NULL) {
		lifecycle_seen(r, t, d.hdr.session);
		if (!accepting(t) ||
		    transfer_chunk_is_done(t, d.id.object, d.id.chunk)) {
			r->stats.redundant++;
			return;
		}
		s = slot_lookup(r, &d.id);
		if (s != NULL && s->busy) {
			r->stats.redundant++;
			return;
		}
		if (s != NULL && s->have_desc &&
		    s->desc_body_len == d.signed_len &&
		    memcmp(s->desc_body, d.signed_body, d.signed_len) == 0) {
			r->stats.redundant++;
			return;
		}
	}
	key = find_key(r, d.key_id);
	if (key == NULL) {
		drop_key(r, DROP_UNKNOWN_KEY, d.id.transfer, d.key_id);
		return;
	}
	/* What would be a conflict even if signed is refused before the
	 * signature check: a forgery naming a live transfer must match it
	 * to cost one. */
	if ((s != NULL && s->have_desc) || (t != NULL && (t->key != key ||
	    t->object_count != d.object_count ||
	    t->transfer_bytes != d.transfer_bytes ||
	    t->chunk_size != d.chunk_size ||
	    t->symbol_size != d.symbol_size))) {
		drop(r, DROP_DESCRIPTOR_CONFLICT, d.id.transfer);
		return;
	}
	/* A worker checked these very bytes with the same key, cache and
	 * budget: its verdict stands (sigcheck.h). */
	if (signed_ != NULL && &r->keys[signed_->key] == key)
		why = signed_->sig == INGEST_SIG_GOOD ? 0 :
		    signed_->sig == INGEST_SIG_BUDGET ? DROP_SIG_BUDGET :
		    DROP_BAD_SIGNATURE;
	else
		why = verify_sig(r, key, PROTO_DESC_SIG_CONTEXT,
		    d.signed_body, d.signed_len, d.sig, t != NULL, true,
		    DROP_BAD_SIGNATURE);
	if (why != 0) {
		drop(r, why, d.id.transfer);
		return;
	}
	/* After the signature, so that damage on the link counts as
	 * bad_signature: what is left is a signed descriptor whose list
	 * hash is wrong, a broken sender. */
	if (!list_hash_matches(&d)) {
		drop(r, DROP_CHUNK_HASH, d.id.transfer);
		return;
	}
	if (t == NULL) {
		t = lifecycle_admit(r, &d, key);
		if (t == NULL || !accepting(t))
			return;
	}
	if (!transfer_object_size(t, d.id.object, d.object_size)) {
		drop(r, DROP_DESCRIPTOR_CONFLICT, d.id.transfer);
		return;
	}
	if (transfer_chunk_is_done(t, d.id.object, d.id.chunk)) {
		r->stats.redundant++;
		return;
	}
	n = (unsigned)d.k + d.m;
	if (s == NULL) {
		s = slot_alloc(r, t, &d.id, n, d.symbol_size, false);
		if (s == NULL) {
			drop(r, DROP_CHUNK_LIMIT, d.id.transfer);
			return;
		}
	} else if (!slot_reserve(r, s, &s->buf, &s->buf_cap,
	    (size_t)n * d.symbol_size)) {
		drop(r, DROP_CHUNK_LIMIT, d.id.transfer);
		slot_release(r, s);
		return;
	}
	/* Its pending symbols are checked below: they are not charged to
	 * the pending budget from now on. */
	slot_unpend(r, s);
	/* Pending symbols beyond this chunk's k + m were forged. */
	for (i = n; i < PROTO_MAX_SYMBOLS && s->n_pending > 0; i++) {
		if (s->sym[i] == SYM_PENDING) {
			s->sym[i] = SYM_ABSENT;
			s->n_pending--;
			r->stats.drop[DROP_PARAM_MISMATCH]++;
		}
	}
	s->k = d.k;
	s->m = d.m;
	r->stats.descriptors++;
	s->have_desc = true;
	s->codec = d.codec;
	s->plain_len = d.plain_len;
	s->enc_len = d.enc_len;
	s->hash_len = d.hash_len;
	memcpy(s->hashes, d.hashes, (size_t)n * d.hash_len);
	memcpy(s->desc_body, d.signed_body, d.signed_len);
	s->desc_body_len = d.signed_len;
	s->touched_ns = util_now_ns();
	for (i = 0; i < n && s->n_pending > 0; i++) {
		if (s->sym[i] != SYM_PENDING)
			continue;
		s->n_pending--;
		if (symbol_matches(s, i, s->buf + (size_t)i * s->symbol_size,
		    NULL)) {
			s->sym[i] = SYM_VERIFIED;
			s->n_verified++;
			r->stats.symbols++;
		} else {
			s->sym[i] = SYM_ABSENT;
			drop(r, DROP_SYMBOL_HASH, t->id);
		}
	}
	maybe_complete(r, s);
}

/*
 * Is there room for grow more pending bytes (and a slot, if new_slot)?
 * Slots of transfers that have ended are taken back lazily, so when the
 * budget looks spent they are looked for, at most once a second.
 */
static bool
pending_room(struct recv *r, bool new_slot, size_t grow)
{
	uint64_t now;
	unsigned i;

	if (r->pending_bytes + grow <= r->conf->max_pending_bytes &&
	    (!new_slot || r->pending_slots < r->n_slots / 4))
		return true;
	now = util_now_ns();
	if (now - r->stale_sweep_ns < 1000000000ull)
		return false;
	r->stale_sweep_ns = now;
	for (i = 0; i < r->n_slots; i++)
		if (r->slots[i].used && !slot_live(&r->slots[i]))
			slot_release(r, &r->slots[i]);
	return r->pending_bytes + grow <= r->conf->max_pending_bytes &&
	    (!new_slot || r->pending_slots < r->n_slots / 4);
}

/*
 * A symbol before its chunk's descriptor: held, unchecked, where its index
 * says, at the transfer's symbol size (sy->len equals it), within the
 * pending budget; the slot s (NULL: none yet) has no descriptor.
 */
static void
hold_pending(struct recv *r, struct transfer *t, struct slot *s,
    const struct proto_symbol *sy)
{
	size_t span = ((size_t)sy->index + 1) * t->symbol_size;
	size_t grow = s == NULL ? span : span > s->pending_charge ?
	    span - s->pending_charge : 0;

	if (s != NULL && s->sym[sy->index] != SYM_ABSENT) {
		r->stats.redundant++;
		return;
	}
	if (!pending_room(r, s == NULL, grow)) {
		drop(r, DROP_PENDING_LIMIT, t->id);
		return;
	}
	if (s == NULL) {
		s = slot_alloc(r, t, &sy->id, 0, t->symbol_size, true);
		if (s == NULL) {
			drop(r, DROP_PENDING_LIMIT, t->id);
			return;
		}
	}
	if (!slot_reserve(r, s, &s->buf, &s->buf_cap, span)) {
		drop(r, DROP_CHUNK_LIMIT, t->id);
		if (s->n_pending == 0)
			slot_release(r, s);
		return;
	}
	r->pending_bytes += grow;
	s->pending_charge += grow;
	s->touched_ns = util_now_ns();
	memcpy(s->buf + (size_t)sy->index * s->symbol_size, sy->data,
	    sy->len);
	s->sym[sy->index] = SYM_PENDING;
	s->n_pending++;
}

static void
handle_symbol(struct recv *r, const uint8_t *buf, size_t len,
    const uint8_t *digest)
{
	struct proto_symbol sy;
	enum proto_verdict v;
	struct transfer *t;
	struct object *o;
	struct slot *s;

	v = proto_symbol_decode(buf, len, &sy);
	if (v != PROTO_OK) {
		drop(r, v, 0);
		return;
	}
	t = lifecycle_find(r, sy.id.transfer);
	if (t == NULL) {
		if (lifecycle_ended(r, sy.id.transfer, sy.hdr.session))
			r->stats.finished_repeats++;
		else
			drop(r, DROP_UNKNOWN_TRANSFER, 0);
		return;
	}
	lifecycle_seen(r, t, sy.hdr.session);
	if (!accepting(t)) {
		r->stats.redundant++;
		return;
	}
	if (sy.len != t->symbol_size) {
		drop(r, DROP_PARAM_MISMATCH, t->id);
		return;
	}
	if (sy.id.object >= t->object_count) {
		drop(r, PROTO_ERR_GEOMETRY, t->id);
		return;
	}
	o = &t->objects[sy.id.object];
	if (o->done != NULL) {
		if (sy.id.chunk >= o->n_chunks) {
			drop(r, PROTO_ERR_GEOMETRY, t->id);
			return;
		}
		if (o->done[sy.id.chunk / 8] & (1u << (sy.id.chunk % 8))) {
			r->stats.redundant++;
			return;
		}
	}
	s = slot_lookup(r, &sy.id);
	if (s != NULL && s->busy) {
		r->stats.redundant++; /* being written */
		return;
	}
	if (s != NULL && s->have_desc) {
		if (s->k != sy.k || s->m != sy.m) {
			drop(r, DROP_PARAM_MISMATCH, t->id);
			return;
		}
		if (s->sym[sy.index] == SYM_VERIFIED) {
			r->stats.redundant++;
			return;
		}
		if (!symbol_matches(s, sy.index, sy.data, digest)) {
			drop(r, DROP_SYMBOL_HASH, t->id);
			return;
		}
		/* Verified: it takes the place of a pending one, if any
		 * (cannot happen now, as the descriptor checks them all). */
		if (s->sym[sy.index] == SYM_PENDING)
			s->n_pending--;
		s->touched_ns = util_now_ns();
		memcpy(s->buf + (size_t)sy.index * s->symbol_size, sy.data,
		    sy.len);
		s->sym[sy.index] = SYM_VERIFIED;
		s->n_verified++;
		r->stats.symbols++;
		maybe_complete(r, s);
		return;
	}
	hold_pending(r, t, s, &sy);
}

static void
handle_heartbeat(struct recv *r, const uint8_t *buf, size_t len)
{
	struct proto_heartbeat h;
	enum proto_verdict v;
	const struct sign_pubkey *key;
	unsigned why;

	v = proto_heartbeat_decode(buf, len, &h);
	if (v != PROTO_OK) {
		drop(r, v, 0);
		return;
	}
	key = find_key(r, h.key_id);
	if (key == NULL) {
		drop(r, DROP_HEARTBEAT, 0);
		return;
	}
	/* Only liveness: budgeted like an unknown transfer, never cached
	 * (each one is new). */
	why = verify_sig(r, key, PROTO_HB_SIG_CONTEXT, h.signed_body,
	    h.signed_len, h.sig, false, false, DROP_HEARTBEAT);
	if (why != 0) {
		drop(r, why, 0);
		return;
	}
	if (!metrics_heartbeat(r, h.interval_ms, h.hdr.session, h.hdr.seq)) {
		drop(r, DROP_HEARTBEAT_REPLAY, 0);
		return;
	}
	r->stats.heartbeats++;
}

void
assemble_datagram(struct recv *r, uint8_t *buf, size_t len,
    const struct ingest_prep *prep)
{
	struct proto_hdr h;
	enum proto_verdict v;

	/* The link envelope before anything else: a forged datagram costs
	 * one Poly1305 and touches no state.  Without a link key, a sealed
	 * datagram is refused under the same name.  A worker may have
	 * opened it already. */
	if (r->link != NULL && prep != NULL &&
	    (prep->flags & INGEST_PREP_OPENED)) {
		if (prep->verdict != PROTO_OK) {
			drop(r, prep->verdict, 0);
			return;
		}
		len = prep->len;
	} else if (r->link != NULL) {
		v = proto_link_open(sign_linkkey_bytes(r->link), buf, len,
		    &len);
		if (v != PROTO_OK) {
			drop(r, v, 0);
			return;
		}
	} else if (len > 4 && buf[4] == PROTO_LINK_VERSION) {
		drop(r, PROTO_ERR_LINK, 0);
		return;
	}

	v = proto_hdr_decode(buf, len, &h);
	if (v != PROTO_OK) {
		drop(r, v, 0);
		return;
	}
	metrics_note_seq(r, h.session, h.seq);
	switch (h.type) {
	case PROTO_T_SYMBOL:
		handle_symbol(r, buf, len, prep != NULL &&
		    (prep->flags & INGEST_PREP_HASHED) ? prep->digest : NULL);
		break;
	case PROTO_T_DESCRIPTOR:
		handle_descriptor(r, buf, len, prep != NULL &&
		    (prep->flags & INGEST_PREP_SIGNED) ? prep : NULL);
		break;
	case PROTO_T_HEARTBEAT:
		handle_heartbeat(r, buf, len);
		break;
	}
}
