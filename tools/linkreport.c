/*
 * sluice link-report FILE... [--port N] [--json]
 *
 * What a capture (tcpdump -w on the protected side, a tap, the
 * receiver's link journal) says about the link: per sender session the
 * datagrams, duration, rate over time, loss from sequence numbers, the
 * lengths of loss bursts, reordering, duplicates, corrupted datagrams
 * and gaps between heartbeats.  Then the smallest fec_overhead, with
 * interleave and passes, that would have delivered every chunk of the
 * capture's transfers, found by sending the real chunk geometry (from
 * the descriptors) through the observed loss pattern in simulation.
 *
 * Every datagram is parsed by proto/ (wire.c, frame.c through
 * common/capfile.c); nothing here trusts a length or a count from the
 * capture beyond the caps below.  A report needs no key: descriptors are
 * not authenticated, and a symbol is "corrupted" when its SHA-256 does
 * not match the hash the first copy of its descriptor lists.
 */
#include "tools/cmds.h"
#include "common/capfile.h"
#include "common/conf.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/link.h"
#include "proto/wire.h"
#include "sender/send.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 64          /* more are counted, not reported */
#define STRAY_DATAGRAMS 16       /* a "session" this small is noise */
#define MAX_SEQ_SPAN (1u << 27)  /* bits per session bitmap (16 MiB) */
#define MAX_BITMAP_BYTES (256ull << 20) /* all sessions' bitmaps */
#define SEQ_BACK 65536           /* room below the first seq seen */
#define MAX_CHUNKS (1u << 22)    /* descriptors remembered */
#define MAX_HASH_BYTES (256ull << 20) /* descriptors' hash lists kept */
#define MAX_OBJECTS 16384        /* objects per transfer remembered */
#define MAX_TRANSFERS 256
#define RATE_BUCKETS 86400       /* one per second, a day at most */
#define SIM_CHUNKS 4096          /* chunks per transfer simulated */
#define SIM_CHUNKS_ALL 65536     /* ... and in all */
#define SIM_PHASES 16            /* starting points in the loss pattern */
#define SIM_EXTRA_LOSS 0.25      /* margin: a quarter more loss at random */
#define SIM_MAX_OVERHEAD 200
#define SIM_MAX_PASSES 3
#define SIM_MAX_WINDOW (256ull << 20) /* bytes of symbols in a window */

static const unsigned interleaves[] = { 4, 8, 16, 32, 64, 128 };

/* Burst-length histogram buckets: 1, 2, 3, 4, 5-8, ... 257+. */
static const unsigned burst_edges[] = { 1, 2, 3, 4, 8, 16, 32, 64, 128,
    256 };
#define N_BURST_BUCKETS (UTIL_ARRAY_LEN(burst_edges) + 1)

struct session {
	uint64_t id;
	uint64_t datagrams, bytes, duplicates, corrupted, heartbeats;
	uint64_t reordered, reorder_depth, out_of_range;
	uint64_t first_ns, last_ns, last_hb_ns;
	uint64_t hb_gaps, hb_max_gap_ns;
	uint32_t hb_interval_ms;
	/* Sequence numbers seen, and those that arrived corrupted, as
	 * bitmaps from base; grown as needed up to MAX_SEQ_SPAN bits. */
	uint64_t base, min_seq, max_seq;
	bool any_seq;
	uint64_t *seen, *bad;
	size_t words;
	uint64_t *rate;          /* bytes per second since first_ns */
	size_t n_rate;
	size_t datagram_size;    /* largest symbol datagram */
	unsigned symbol_size;
	bool sealed, encrypted;
	/* Derived by finish_session. */
	uint64_t expected, lost, bursts, burst_sum, burst_max;
	uint64_t burst_hist[N_BURST_BUCKETS];
};

struct chunk {
	uint64_t transfer;
	uint32_t object, chunk;
	uint8_t k, m, hash_len;
	uint8_t *hashes;         /* (k + m) * hash_len, NULL: empty slot */
};

struct object {
	uint64_t size;
	bool known;
};

struct transfer {
	uint64_t id;
	uint32_t object_count;
	uint32_t chunk_size;
	struct object *objects;  /* object_count, capped at MAX_OBJECTS */
	uint64_t chunks_seen;
};

struct report {
	unsigned port;
	bool json;
	uint64_t files, unreadable, frames, datagrams, foreign, stray;
	uint64_t dropped_sessions, unchecked;
	uint64_t frame[PROTO_FRAME_VERDICT_COUNT];
	struct session sess[MAX_SESSIONS];
	unsigned n_sess;
	struct chunk *chunks;    /* open addressing, cap slots */
	size_t cap, n_chunks;
	struct transfer xfer[MAX_TRANSFERS];
	unsigned n_xfer;
	uint64_t hash_bytes;
	size_t datagram_size;    /* of the symbols, for the geometry */
	unsigned symbol_size;
	bool sealed;
};

/* ---- sessions -------------------------------------------------------- */

static struct session *
session_get(struct report *r, uint64_t id)
{
	unsigned i;

	for (i = 0; i < r->n_sess; i++)
		if (r->sess[i].id == id)
			return &r->sess[i];
	if (r->n_sess == MAX_SESSIONS) {
		r->dropped_sessions++;
		return NULL;
	}
	memset(&r->sess[r->n_sess], 0, sizeof(r->sess[0]));
	r->sess[r->n_sess].id = id;
	return &r->sess[r->n_sess++];
}

static bool
bit_get(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void
bit_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}

/* Bytes of every session's bitmaps: a hostile capture's sessions and
 * sequence numbers cost at most MAX_BITMAP_BYTES between them. */
static uint64_t bitmap_bytes;

/* Makes room for bit i of s's bitmaps; false if it cannot. */
static bool
seq_room(struct session *s, uint64_t i)
{
	size_t words = s->words, need = (size_t)(i / 64) + 1;
	uint64_t *a, *b;

	if (i >= MAX_SEQ_SPAN)
		return false;
	if (need <= words)
		return true;
	while (words < need)
		words = words == 0 ? 1024 : words * 2;
	if (bitmap_bytes + (words - s->words) * 16 > MAX_BITMAP_BYTES)
		return false;
	bitmap_bytes += (words - s->words) * 16;
	if ((a = realloc(s->seen, words * 8)) == NULL)
		return false;
	s->seen = a;
	if ((b = realloc(s->bad, words * 8)) == NULL)
		return false;
	s->bad = b;
	memset(a + s->words, 0, (words - s->words) * 8);
	memset(b + s->words, 0, (words - s->words) * 8);
	s->words = words;
	return true;
}

static void
note_rate(struct session *s, uint64_t ts, size_t len)
{
	uint64_t sec;

	if (ts < s->first_ns)
		return;
	sec = (ts - s->first_ns) / 1000000000ull;
	if (sec >= RATE_BUCKETS)
		return;
	if (sec >= s->n_rate) {
		size_t n = UTIL_MAX((size_t)sec + 1, s->n_rate * 2);
		uint64_t *p;

		n = UTIL_MIN(n, (size_t)RATE_BUCKETS);
		if ((p = realloc(s->rate, n * 8)) == NULL)
			return;
		memset(p + s->n_rate, 0, (n - s->n_rate) * 8);
		s->rate = p;
		s->n_rate = n;
	}
	s->rate[sec] += len;
}

/* Records one datagram's sequence number; bad: it arrived corrupted. */
static void
note_seq(struct session *s, uint64_t seq, bool bad)
{
	uint64_t i;

	if (!s->any_seq) {
		s->base = seq > SEQ_BACK ? seq - SEQ_BACK : 0;
		s->min_seq = s->max_seq = seq;
		s->any_seq = true;
	} else if (seq < s->max_seq) {
		/* Earlier than one already seen: reordered, unless it is a
		 * copy (counted below). */
		if (seq >= s->base && seq - s->base < MAX_SEQ_SPAN &&
		    (seq - s->base) / 64 < s->words &&
		    !bit_get(s->seen, seq - s->base)) {
			s->reordered++;
			s->reorder_depth = UTIL_MAX(s->reorder_depth,
			    s->max_seq - seq);
		}
	}
	if (seq < s->base || !seq_room(s, (i = seq - s->base))) {
		s->out_of_range++;
		return;
	}
	if (bit_get(s->seen, i)) {
		s->duplicates++;
		return;
	}
	bit_set(s->seen, i);
	if (bad)
		bit_set(s->bad, i);
	s->min_seq = UTIL_MIN(s->min_seq, seq);
	s->max_seq = UTIL_MAX(s->max_seq, seq);
}

/* Loss, and the runs of consecutive lost sequence numbers. */
static void
finish_session(struct session *s)
{
	uint64_t q, run = 0;
	size_t b;

	if (!s->any_seq)
		return;
	s->expected = s->max_seq - s->min_seq + 1;
	for (q = s->min_seq; q <= s->max_seq + 1; q++) {
		bool lost = q <= s->max_seq && !bit_get(s->seen, q - s->base);

		if (lost) {
			s->lost++;
			run++;
			continue;
		}
		if (run == 0)
			continue;
		s->bursts++;
		s->burst_sum += run;
		s->burst_max = UTIL_MAX(s->burst_max, run);
		for (b = 0; b < UTIL_ARRAY_LEN(burst_edges) &&
		    run > burst_edges[b]; b++)
			;
		s->burst_hist[b]++;
		run = 0;
	}
}

/* ---- descriptors ----------------------------------------------------- */

static uint64_t
chunk_hash(uint64_t transfer, uint32_t object, uint32_t chunk)
{
	uint64_t h = transfer ^ ((uint64_t)object << 32 | chunk);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static struct chunk *
chunk_find(struct report *r, uint64_t transfer, uint32_t object,
    uint32_t chunk, bool *found)
{
	size_t i = chunk_hash(transfer, object, chunk) & (r->cap - 1);

	for (;; i = (i + 1) & (r->cap - 1)) {
		struct chunk *c = &r->chunks[i];

		if (c->hashes == NULL) {
			*found = false;
			return c;
		}
		if (c->transfer == transfer && c->object == object &&
		    c->chunk == chunk) {
			*found = true;
			return c;
		}
	}
}

static bool
chunks_grow(struct report *r)
{
	struct chunk *old = r->chunks;
	size_t i, oldcap = r->cap;

	r->cap = oldcap == 0 ? 1024 : oldcap * 2;
	if ((r->chunks = calloc(r->cap, sizeof(*r->chunks))) == NULL) {
		r->chunks = old;
		r->cap = oldcap;
		return false;
	}
	for (i = 0; i < oldcap; i++) {
		bool found;

		if (old[i].hashes != NULL)
			*chunk_find(r, old[i].transfer, old[i].object,
			    old[i].chunk, &found) = old[i];
	}
	free(old);
	return true;
}

static struct transfer *
transfer_get(struct report *r, const struct proto_descriptor *d)
{
	struct transfer *t;
	unsigned i;

	for (i = 0; i < r->n_xfer; i++)
		if (r->xfer[i].id == d->id.transfer)
			return &r->xfer[i];
	if (r->n_xfer == MAX_TRANSFERS)
		return NULL;
	t = &r->xfer[r->n_xfer];
	memset(t, 0, sizeof(*t));
	t->id = d->id.transfer;
	t->object_count = UTIL_MIN(d->object_count, (uint32_t)MAX_OBJECTS);
	t->chunk_size = d->chunk_size;
	if ((t->objects = calloc(t->object_count, sizeof(*t->objects))) ==
	    NULL)
		return NULL;
	r->n_xfer++;
	return t;
}

static void
note_descriptor(struct report *r, const struct proto_descriptor *d)
{
	struct transfer *t;
	struct chunk *c;
	size_t n = (size_t)(d->k + d->m) * d->hash_len;
	bool found;

	if ((t = transfer_get(r, d)) != NULL && d->id.object <
	    t->object_count && d->chunk_size == t->chunk_size &&
	    !t->objects[d->id.object].known) {
		t->objects[d->id.object].known = true;
		t->objects[d->id.object].size = d->object_size;
	}
	if (r->n_chunks >= MAX_CHUNKS || ((r->n_chunks + 1) * 2 > r->cap &&
	    !chunks_grow(r)))
		return;
	c = chunk_find(r, d->id.transfer, d->id.object, d->id.chunk, &found);
	if (found || r->hash_bytes + n > MAX_HASH_BYTES ||
	    (c->hashes = malloc(n)) == NULL)
		return;
	r->hash_bytes += n;
	memcpy(c->hashes, d->hashes, n);
	c->transfer = d->id.transfer;
	c->object = d->id.object;
	c->chunk = d->id.chunk;
	c->k = d->k;
	c->m = d->m;
	c->hash_len = d->hash_len;
	r->n_chunks++;
	if (t != NULL)
		t->chunks_seen++;
}

/* Does the symbol match its descriptor?  -1: no descriptor seen yet. */
static int
symbol_ok(struct report *r, const struct proto_symbol *sy)
{
	uint8_t digest[HASH_LEN];
	struct chunk *c;
	bool found;

	if (r->cap == 0)
		return -1;
	c = chunk_find(r, sy->id.transfer, sy->id.object, sy->id.chunk,
	    &found);
	if (!found)
		return -1;
	if (sy->k != c->k || sy->m != c->m || sy->index >= c->k + c->m)
		return 0;
	hash_sha256(digest, sy->data, sy->len);
	return memcmp(digest, c->hashes + (size_t)sy->index * c->hash_len,
	    c->hash_len) == 0;
}

/* ---- reading --------------------------------------------------------- */

static void
note_datagram(struct report *r, const uint8_t *d, size_t len, uint64_t ts)
{
	static uint8_t buf[PROTO_MAX_DATAGRAM] __attribute__((aligned(64)));
	struct proto_hdr h;
	struct session *s;
	bool sealed = false, encrypted = false, bad = false;
	size_t inner = len;

	memcpy(buf, d, len);
	if (len > 4 && buf[4] == PROTO_LINK_VERSION &&
	    proto_link_unwrap(buf, len, &inner, &encrypted) == PROTO_OK)
		sealed = true;
	if (proto_hdr_decode(buf, inner, &h) != PROTO_OK) {
		r->foreign++;
		return;
	}
	if ((s = session_get(r, h.session)) == NULL)
		return;
	if (s->datagrams == 0)
		s->first_ns = ts;
	s->datagrams++;
	s->bytes += len;
	s->last_ns = UTIL_MAX(s->last_ns, ts);
	s->sealed |= sealed;
	s->encrypted |= encrypted;
	note_rate(s, ts, len);
	if (!encrypted) {
		struct proto_symbol sy;
		struct proto_descriptor de;
		struct proto_heartbeat hb;
		int ok;

		switch (h.type) {
		case PROTO_T_SYMBOL:
			if (proto_symbol_decode(buf, inner, &sy) != PROTO_OK) {
				bad = true;
				break;
			}
			if ((ok = symbol_ok(r, &sy)) == 0)
				bad = true;
			else if (ok < 0)
				r->unchecked++;
			if (!bad && len > s->datagram_size) {
				s->datagram_size = len;
				s->symbol_size = (unsigned)sy.len;
			}
			break;
		case PROTO_T_DESCRIPTOR:
			if (proto_descriptor_decode(buf, inner, &de) !=
			    PROTO_OK) {
				bad = true;
				break;
			}
			note_descriptor(r, &de);
			break;
		case PROTO_T_HEARTBEAT:
			if (proto_heartbeat_decode(buf, inner, &hb) !=
			    PROTO_OK) {
				bad = true;
				break;
			}
			s->heartbeats++;
			s->hb_interval_ms = hb.interval_ms;
			if (s->last_hb_ns != 0 && ts > s->last_hb_ns) {
				uint64_t gap = ts - s->last_hb_ns;

				s->hb_max_gap_ns = UTIL_MAX(s->hb_max_gap_ns,
				    gap);
				if (hb.interval_ms > 0 && gap >
				    (uint64_t)hb.interval_ms * 1500000ull)
					s->hb_gaps++;
			}
			s->last_hb_ns = ts;
			break;
		}
	}
	if (bad)
		s->corrupted++;
	note_seq(s, h.seq, bad);
}

static void
read_capture(struct report *r, const char *path)
{
	const struct capfile_stats *st;
	struct capfile *c;
	const uint8_t *d;
	char err[256];
	uint64_t ts;
	unsigned dport, i;
	size_t len;
	int rc;

	if ((c = capfile_open(path, r->port, err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", path, err);
		r->unreadable++;
		return;
	}
	r->files++;
	while ((rc = capfile_next(c, &d, &len, &ts, &dport, err,
	    sizeof(err))) == 1)
		note_datagram(r, d, len, ts);
	if (rc == -1) {
		log_warnx("%s: %s", path, err);
		r->unreadable++;
	}
	st = capfile_stats(c);
	r->frames += st->frames;
	r->datagrams += st->datagrams;
	for (i = 0; i < PROTO_FRAME_VERDICT_COUNT; i++)
		r->frame[i] += st->frame[i];
	capfile_close(c);
}

/* ---- simulation ------------------------------------------------------ */

/*
 * The observed loss pattern of every reported session, one after the
 * other: true where a datagram was lost or arrived corrupted.
 */
struct pattern {
	uint8_t *lost;
	size_t len;
	double rate;
};

static bool
pattern_build(struct report *r, struct pattern *p)
{
	uint64_t n = 0, q, lost = 0;
	unsigned i;

	for (i = 0; i < r->n_sess; i++)
		if (r->sess[i].datagrams >= STRAY_DATAGRAMS)
			n += r->sess[i].expected;
	if (n == 0 || (p->lost = malloc(n)) == NULL)
		return false;
	p->len = 0;
	for (i = 0; i < r->n_sess; i++) {
		struct session *s = &r->sess[i];

		if (s->datagrams < STRAY_DATAGRAMS || !s->any_seq)
			continue;
		for (q = s->min_seq; q <= s->max_seq; q++) {
			uint64_t b = q - s->base;
			bool l = !bit_get(s->seen, b) || bit_get(s->bad, b);

			p->lost[p->len++] = l;
			lost += l;
		}
	}
	p->rate = (double)lost / (double)p->len;
	return true;
}

/* A chunk in simulation: its symbols received so far, over passes. */
struct simchunk {
	unsigned k, n;           /* source symbols, all symbols */
	uint64_t got[4];         /* 256 bits: indices received */
	bool desc;
};

struct sim {
	const struct pattern *pat;
	size_t pos;              /* where in the pattern the next one falls */
	uint64_t rng;            /* the margin's extra loss */
	double extra;
};

static uint64_t
sim_rand(struct sim *s)
{
	/* splitmix64: deterministic, so a report is reproducible. */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool
sim_arrives(struct sim *s)
{
	bool lost = s->pat->lost[s->pos];

	if (++s->pos == s->pat->len)
		s->pos = 0;
	if (!lost && s->extra > 0 &&
	    (double)(sim_rand(s) >> 11) / 9007199254740992.0 < s->extra)
		lost = true;
	return !lost;
}

/*
 * Sends the chunks as the sender would (sender/send.c fill_window and
 * emit_window: windows of `interleave` full chunks' worth of symbols,
 * rounds of one symbol per chunk, descriptor copies spread over each
 * chunk's span), `passes` times, and says whether every chunk got its
 * descriptor and k + 1 distinct symbols.
 */
static bool
sim_send(struct simchunk *c, size_t n, unsigned full_syms,
    unsigned interleave, unsigned passes, unsigned copies, struct sim *s)
{
	size_t first, i, end, arena = (size_t)full_syms * interleave;
	unsigned p, r, j, rounds;

	for (i = 0; i < n; i++) {
		memset(c[i].got, 0, sizeof(c[i].got));
		c[i].desc = false;
	}
	for (p = 0; p < passes; p++) {
		for (first = 0; first < n; first = end) {
			size_t used = 0;

			rounds = 0;
			for (end = first; end < n && end - first < 256 &&
			    used + c[end].n <= arena; end++) {
				used += c[end].n;
				rounds = UTIL_MAX(rounds, c[end].n);
			}
			if (end == first)
				end = first + 1;
			for (r = 0; r < rounds; r++) {
				for (i = first; i < end; i++)
					for (j = 0; j < copies; j++)
						if (r < c[i].n && j * c[i].n /
						    copies == r && sim_arrives(s))
							c[i].desc = true;
				for (i = first; i < end; i++)
					if (r < c[i].n && sim_arrives(s))
						c[i].got[r / 64] |=
						    1ull << (r % 64);
			}
		}
	}
	for (i = 0; i < n; i++) {
		unsigned got = 0;

		for (j = 0; j < 4; j++)
			got += (unsigned)__builtin_popcountll(c[i].got[j]);
		if (!c[i].desc || got < c[i].k + 1)
			return false;
	}
	return true;
}

/* The chunks of every transfer seen, cut as the sender would cut them
 * at this overhead.  Returns how many, or 0. */
static size_t
sim_chunks(struct report *r, unsigned overhead, struct simchunk **out,
    unsigned *full_syms)
{
	struct sender_conf conf;
	struct sender_geometry g;
	struct simchunk *c = NULL;
	size_t n = 0, cap = 0;
	unsigned t;
	uint32_t o, ch;

	memset(&conf, 0, sizeof(conf));
	conf.datagram_size = (unsigned)r->datagram_size;
	conf.fec_overhead = overhead;
	conf.link_key = r->sealed ? "sealed" : NULL;
	if (sender_geometry(&conf, &g) != 0 ||
	    g.symbol_size != r->symbol_size)
		return 0;
	*full_syms = g.k_max + g.m_max;
	for (t = 0; t < r->n_xfer; t++) {
		const struct transfer *x = &r->xfer[t];
		size_t mine = 0;

		for (o = 0; o < x->object_count && mine < SIM_CHUNKS &&
		    n < SIM_CHUNKS_ALL; o++) {
			uint64_t size = x->objects[o].size;
			uint32_t nc;

			if (!x->objects[o].known)
				continue;
			nc = proto_chunk_count(size, g.chunk_size);
			for (ch = 0; ch < nc && mine < SIM_CHUNKS &&
			    n < SIM_CHUNKS_ALL; ch++) {
				uint32_t plain = proto_chunk_plain_len(size,
				    g.chunk_size, ch);
				unsigned k = (plain + g.symbol_size - 1) /
				    g.symbol_size;

				if (n == cap) {
					struct simchunk *nc2;

					cap = cap == 0 ? 256 : cap * 2;
					nc2 = realloc(c, cap * sizeof(*c));
					if (nc2 == NULL) {
						free(c);
						return 0;
					}
					c = nc2;
				}
				if (k == 0)
					k = 1;
				c[n].k = k;
				c[n].n = k + sender_repair_count(k, overhead);
				n++;
				mine++;
			}
		}
	}
	*out = c;
	return n;
}

struct recommendation {
	bool found;
	unsigned overhead, interleave, passes;
	double wire_ratio;       /* wire symbols per source symbol x passes */
	uint64_t window_bytes;
	size_t chunks;
	double loss;             /* of the pattern simulated */
};

/* Delivered in every phase, with the margin's extra loss? */
static bool
sim_all_phases(struct report *r, const struct pattern *pat,
    unsigned overhead, unsigned interleave, unsigned passes,
    struct recommendation *rec)
{
	struct simchunk *c = NULL;
	unsigned full, ph;
	size_t n = sim_chunks(r, overhead, &c, &full);
	bool ok = n > 0;

	if (n == 0)
		return false;
	if ((uint64_t)full * r->symbol_size * interleave > SIM_MAX_WINDOW) {
		free(c);
		return false;
	}
	for (ph = 0; ph < SIM_PHASES && ok; ph++) {
		struct sim s = { .pat = pat, .pos = pat->len * ph / SIM_PHASES,
		    .rng = 0x5eed0000u + ph, .extra = pat->rate *
		    SIM_EXTRA_LOSS };

		ok = sim_send(c, n, full, interleave, passes, 4, &s);
	}
	if (ok && rec != NULL) {
		uint64_t src = 0, all = 0;
		size_t i;

		for (i = 0; i < n; i++) {
			src += c[i].k;
			all += c[i].n;
		}
		rec->found = true;
		rec->overhead = overhead;
		rec->interleave = interleave;
		rec->passes = passes;
		rec->wire_ratio = (double)all * passes / (double)src;
		rec->window_bytes = (uint64_t)full * r->symbol_size *
		    interleave;
		rec->chunks = n;
		rec->loss = pat->rate;
	}
	free(c);
	return ok;
}

/*
 * The fewest passes first (the diode's time is what costs), then the
 * smallest overhead, then the smallest interleave (the least memory and
 * latency); for each interleave a binary search over the overhead,
 * whose success only grows with it.
 */
static void
recommend(struct report *r, const struct pattern *pat,
    struct recommendation *best)
{
	unsigned passes, i;

	memset(best, 0, sizeof(*best));
	for (passes = 1; passes <= SIM_MAX_PASSES && !best->found;
	    passes++) {
		for (i = 0; i < UTIL_ARRAY_LEN(interleaves); i++) {
			unsigned lo = 0, hi = SIM_MAX_OVERHEAD, iv =
			    interleaves[i];

			if (best->found && best->overhead == 0)
				break;
			if (!sim_all_phases(r, pat, hi, iv, passes, NULL))
				continue;
			while (lo < hi) {
				unsigned mid = (lo + hi) / 2;

				if (sim_all_phases(r, pat, mid, iv, passes,
				    NULL))
					hi = mid;
				else
					lo = mid + 1;
			}
			if (!best->found || lo < best->overhead)
				(void)sim_all_phases(r, pat, lo, iv, passes,
				    best);
		}
	}
}

/* ---- output ---------------------------------------------------------- */

static double
mbit(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes * 8 / secs / 1e6 : 0.0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Per-second rates over the session's whole seconds: min, median, max. */
static void
rate_stats(const struct session *s, double out[3])
{
	uint64_t *v;
	size_t n = s->n_rate > 1 ? s->n_rate - 1 : s->n_rate;

	out[0] = out[1] = out[2] = 0;
	if (n == 0 || (v = malloc(n * 8)) == NULL)
		return;
	memcpy(v, s->rate, n * 8);
	qsort(v, n, 8, cmp_u64);
	out[0] = mbit(v[0], 1);
	out[1] = mbit(v[n / 2], 1);
	out[2] = mbit(v[n - 1], 1);
	free(v);
}

static const char *
burst_label(size_t b, char *buf, size_t len)
{
	unsigned lo = b == 0 ? 1 : burst_edges[b - 1] + 1;

	if (b == UTIL_ARRAY_LEN(burst_edges))
		snprintf(buf, len, "%u+", lo);
	else if (lo == burst_edges[b])
		snprintf(buf, len, "%u", lo);
	else
		snprintf(buf, len, "%u-%u", lo, burst_edges[b]);
	return buf;
}

static void
print_text(struct report *r, const struct recommendation *rec,
    bool have_pattern)
{
	unsigned i, f;
	size_t b;
	char lbl[16];

	printf("link report: %" PRIu64 " file%s, %" PRIu64 " frames, %"
	    PRIu64 " datagrams", r->files, r->files == 1 ? "" : "s",
	    r->frames, r->datagrams);
	if (r->port != 0)
		printf(" to port %u", r->port);
	printf("; skipped:");
	for (f = 1; f < PROTO_FRAME_VERDICT_COUNT; f++)
		printf(" %s=%" PRIu64, proto_frame_verdict_name(f),
		    r->frame[f]);
	printf(" foreign=%" PRIu64 "\n", r->foreign);
	for (i = 0; i < r->n_sess; i++) {
		struct session *s = &r->sess[i];
		double secs = (double)(s->last_ns - s->first_ns) / 1e9, rs[3];

		if (s->datagrams < STRAY_DATAGRAMS)
			continue;
		rate_stats(s, rs);
		printf("session %016" PRIx64 "%s\n", s->id, s->encrypted ?
		    " (link envelope, encrypted)" : s->sealed ?
		    " (link envelope)" : "");
		printf("  datagrams %" PRIu64 ", %" PRIu64 " bytes; duplicates %"
		    PRIu64 ", corrupted %" PRIu64 "\n", s->datagrams, s->bytes,
		    s->duplicates, s->corrupted);
		printf("  duration %.3f s, mean %.1f Mbit/s", secs,
		    mbit(s->bytes, secs));
		if (s->n_rate >= 2)
			printf("; per second: min %.1f, median %.1f, max %.1f "
			    "Mbit/s\n", rs[0], rs[1], rs[2]);
		else
			printf("; per second: n/a (under two seconds)\n");
		printf("  loss %.2f%% (%" PRIu64 " of %" PRIu64 " sequence "
		    "numbers)\n", s->expected > 0 ? 100.0 * (double)s->lost /
		    (double)s->expected : 0.0, s->lost, s->expected);
		printf("  loss bursts %" PRIu64 ", mean length %.2f, longest %"
		    PRIu64 "\n  burst lengths:", s->bursts, s->bursts > 0 ?
		    (double)s->burst_sum / (double)s->bursts : 0.0,
		    s->burst_max);
		for (b = 0; b < N_BURST_BUCKETS; b++)
			printf(" %s:%" PRIu64, burst_label(b, lbl, sizeof(lbl)),
			    s->burst_hist[b]);
		printf("\n  reordered %" PRIu64 ", depth %" PRIu64 "\n",
		    s->reordered, s->reorder_depth);
		printf("  heartbeats %" PRIu64 ", interval %" PRIu32 " ms, gaps %"
		    PRIu64 ", longest %.3f s\n", s->heartbeats,
		    s->hb_interval_ms, s->hb_gaps, (double)s->hb_max_gap_ns /
		    1e9);
	}
	if (r->stray > 0 || r->dropped_sessions > 0)
		printf("stray datagrams (sessions of fewer than %d, or beyond "
		    "%d sessions): %" PRIu64 "\n", STRAY_DATAGRAMS,
		    MAX_SESSIONS, r->stray + r->dropped_sessions);
	for (i = 0; i < r->n_xfer; i++)
		printf("transfer %016" PRIx64 ": %" PRIu32 " objects, %" PRIu64
		    " chunks described\n", r->xfer[i].id,
		    r->xfer[i].object_count, r->xfer[i].chunks_seen);
	if (!have_pattern || r->n_xfer == 0) {
		printf("recommendation: none (no chunk descriptors in the "
		    "capture%s)\n", r->sealed ? ", or the link envelope is "
		    "encrypted" : "");
		return;
	}
	if (!rec->found) {
		printf("recommendation: none: no fec_overhead up to %d with "
		    "interleave up to %u and up to %d passes delivers every "
		    "chunk through this loss\n", SIM_MAX_OVERHEAD,
		    interleaves[UTIL_ARRAY_LEN(interleaves) - 1],
		    SIM_MAX_PASSES);
		return;
	}
	printf("recommendation: fec_overhead = %u; interleave = %u; passes = "
	    "%u;\n", rec->overhead, rec->interleave, rec->passes);
	printf("  %.2f wire symbols per data symbol; window %.1f MiB of "
	    "memory on the sender\n", rec->wire_ratio,
	    (double)rec->window_bytes / 1048576.0);
	printf("  margin: every chunk of %zu keeps its descriptor and one "
	    "symbol beyond k, from each of %d starting points in the "
	    "observed loss (%.2f%%) with a further %.0f%% of it added at "
	    "random\n", rec->chunks, SIM_PHASES, 100.0 * rec->loss,
	    SIM_EXTRA_LOSS * 100);
}

static void
print_json(struct report *r, const struct recommendation *rec,
    bool have_pattern)
{
	unsigned i, f, n = 0;
	size_t b, k;
	char lbl[16];

	printf("{\"files\":%" PRIu64 ",\"unreadable\":%" PRIu64 ",\"frames\":%"
	    PRIu64 ",\"datagrams\":%" PRIu64 ",\"port\":%u,\"skipped\":{",
	    r->files, r->unreadable, r->frames, r->datagrams, r->port);
	for (f = 1; f < PROTO_FRAME_VERDICT_COUNT; f++)
		printf("%s\"%s\":%" PRIu64, f > 1 ? "," : "",
		    proto_frame_verdict_name(f), r->frame[f]);
	printf(",\"foreign\":%" PRIu64 "},\"stray\":%" PRIu64
	    ",\"sessions\":[", r->foreign, r->stray + r->dropped_sessions);
	for (i = 0; i < r->n_sess; i++) {
		struct session *s = &r->sess[i];
		double secs = (double)(s->last_ns - s->first_ns) / 1e9, rs[3];

		if (s->datagrams < STRAY_DATAGRAMS)
			continue;
		rate_stats(s, rs);
		printf("%s{\"session\":\"%016" PRIx64 "\",\"sealed\":%s,"
		    "\"encrypted\":%s,\"datagrams\":%" PRIu64 ",\"bytes\":%"
		    PRIu64 ",\"duplicates\":%" PRIu64 ",\"corrupted\":%" PRIu64
		    ",\"duration_s\":%.6f,\"mbit_s\":%.3f,"
		    "\"mbit_s_per_second\":{\"min\":%.3f,\"median\":%.3f,"
		    "\"max\":%.3f,\"series\":[", n++ ? "," : "", s->id,
		    s->sealed ? "true" : "false",
		    s->encrypted ? "true" : "false", s->datagrams, s->bytes,
		    s->duplicates, s->corrupted, secs, mbit(s->bytes, secs),
		    rs[0], rs[1], rs[2]);
		for (k = 0; k < s->n_rate; k++)
			printf("%s%.3f", k ? "," : "", mbit(s->rate[k], 1));
		printf("]},\"expected\":%" PRIu64 ",\"lost\":%" PRIu64
		    ",\"loss_pct\":%.4f,\"bursts\":%" PRIu64
		    ",\"burst_mean\":%.4f,\"burst_max\":%" PRIu64
		    ",\"burst_lengths\":{", s->expected, s->lost,
		    s->expected > 0 ? 100.0 * (double)s->lost /
		    (double)s->expected : 0.0, s->bursts, s->bursts > 0 ?
		    (double)s->burst_sum / (double)s->bursts : 0.0,
		    s->burst_max);
		for (b = 0; b < N_BURST_BUCKETS; b++)
			printf("%s\"%s\":%" PRIu64, b ? "," : "",
			    burst_label(b, lbl, sizeof(lbl)), s->burst_hist[b]);
		printf("},\"reordered\":%" PRIu64 ",\"reorder_depth\":%" PRIu64
		    ",\"heartbeats\":%" PRIu64 ",\"heartbeat_interval_ms\":%"
		    PRIu32 ",\"heartbeat_gaps\":%" PRIu64
		    ",\"heartbeat_max_gap_s\":%.6f}", s->reordered,
		    s->reorder_depth, s->heartbeats, s->hb_interval_ms,
		    s->hb_gaps, (double)s->hb_max_gap_ns / 1e9);
	}
	printf("],\"transfers\":[");
	for (i = 0; i < r->n_xfer; i++)
		printf("%s{\"transfer\":\"%016" PRIx64 "\",\"objects\":%" PRIu32
		    ",\"chunks_described\":%" PRIu64 "}", i ? "," : "",
		    r->xfer[i].id, r->xfer[i].object_count,
		    r->xfer[i].chunks_seen);
	printf("],\"recommendation\":");
	if (!have_pattern || !rec->found)
		printf("null");
	else
		printf("{\"fec_overhead\":%u,\"interleave\":%u,\"passes\":%u,"
		    "\"wire_ratio\":%.4f,\"window_bytes\":%" PRIu64
		    ",\"chunks_simulated\":%zu,\"phases\":%d,"
		    "\"extra_loss_fraction\":%.2f}", rec->overhead,
		    rec->interleave, rec->passes, rec->wire_ratio,
		    rec->window_bytes, rec->chunks, SIM_PHASES,
		    SIM_EXTRA_LOSS);
	printf("}\n");
}

static int
report_usage(void)
{
	fprintf(stderr, "usage: sluice link-report FILE... [--port N] "
	    "[--json]\n");
	return 2;
}

int
cmd_link_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct recommendation rec;
	struct pattern pat = { 0 };
	struct report *r;
	bool have_pattern = false;
	unsigned i;
	uint64_t v;
	int ch, f, rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (util_parse_si(optarg, &v) != 0 || v == 0 ||
			    v > 65535) {
				fprintf(stderr, "sluice link-report: --port "
				    "%s: a port number\n", optarg);
				free(r);
				return 2;
			}
			r->port = (unsigned)v;
			break;
		case 'j':
			r->json = true;
			break;
		default:
			free(r);
			return report_usage();
		}
	}
	if (optind >= argc) {
		free(r);
		return report_usage();
	}
	for (f = optind; f < argc; f++)
		read_capture(r, argv[f]);
	for (i = 0; i < r->n_sess; i++) {
		struct session *s = &r->sess[i];

		finish_session(s);
		if (s->datagrams < STRAY_DATAGRAMS) {
			r->stray += s->datagrams;
			continue;
		}
		/* The geometry comes from the session with the largest
		 * symbol datagrams (one sender configuration is assumed). */
		if (s->datagram_size > r->datagram_size) {
			r->datagram_size = s->datagram_size;
			r->symbol_size = s->symbol_size;
			r->sealed = s->sealed;
		}
	}
	if (r->datagram_size > 0 && r->n_xfer > 0 &&
	    (have_pattern = pattern_build(r, &pat)))
		recommend(r, &pat, &rec);
	else
		memset(&rec, 0, sizeof(rec));
	if (r->json)
		print_json(r, &rec, have_pattern);
	else
		print_text(r, &rec, have_pattern);
	free(pat.lost);
	for (i = 0; i < r->n_sess; i++) {
		free(r->sess[i].seen);
		free(r->sess[i].bad);
		free(r->sess[i].rate);
	}
	for (i = 0; i < r->cap; i++)
		free(r->chunks[i].hashes);
	free(r->chunks);
	for (i = 0; i < r->n_xfer; i++)
		free(r->xfer[i].objects);
	rc = r->unreadable > 0 ? 1 : 0;
	free(r);
	return rc;
}
