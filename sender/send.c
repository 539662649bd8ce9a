/*
 * The sending engine; see send.h.
 *
 * A transfer is a flat list of chunks (object 0's, then object 1's, ...)
 * cut into windows of `interleave` chunks.  For each window every chunk is
 * encoded first: read, compressed when it pays, split into k source
 * symbols (the last zero padded), m repair symbols added, every symbol
 * hashed, and one descriptor signed.  Then the window is emitted: each
 * descriptor, then the symbols round-robin across the window's chunks (so
 * a burst of loss costs each chunk only a few symbols), with the
 * descriptors repeated at even intervals so losing one copy never loses a
 * chunk.  Every pass repeats the whole list.
 *
 * Datagrams go out through sender/tx.c (batches, sendmmsg, UDP GSO,
 * pacing; shared with `sluice replay`); the symbol bytes are sent
 * straight from the window's buffers (a two-element iovec: header,
 * symbol), never copied.
 */
#include "sender/send.h"
#include "sender/tx.h"
#include "common/compress.h"
#include "common/fec.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/bytes.h"
#include "proto/manifest.h"
#include "proto/link.h"
#include "proto/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WIN_MAX_CHUNKS 256
#define HASH_LEN_WIRE 8
#define K_LIMIT 128

#define ENC_MAX 16

/*
 * Signed descriptors kept from pass 1 for the passes after it, at most
 * this many bytes (one datagram_size per chunk): 128 MiB covers a bundle
 * of about 16 GB at either 1472 or 8972 bytes.  Chunks past the cap are
 * hashed and signed again in each pass, as all were before.
 */
#define DCACHE_MAX_BYTES (128u << 20)

struct wchunk {
	uint32_t object, chunk;
	uint32_t ordinal;    /* among the chunks this pass sends */
	unsigned k, m;
	uint8_t *sym;        /* (k + m) * S, in the window's arena */
	uint8_t *desc;       /* encoded, signed descriptor: desc_own, or
	                      * the chunk's slot in the descriptor cache */
	uint8_t *desc_own;   /* datagram_size bytes in the window */
	size_t desc_len;
	int fd;              /* borrowed: the object's file */
	uint32_t plain_len;
	bool deflated;
};

/*
 * A window: `interleave` full chunks' worth of symbols.  There are two:
 * the encoders fill one while the sending thread paces the other out.
 */
struct window {
	struct wchunk w[WIN_MAX_CHUNKS];
	unsigned n;
	uint8_t *arena;
	uint8_t *descs;      /* WIN_MAX_CHUNKS * datagram_size */
	int old_fds[WIN_MAX_CHUNKS + 1]; /* to close once encoded */
	unsigned n_old;
};

/*
 * An encoder: a thread, and what encoding a chunk needs of its own.
 * Encoder i encodes chunks j with j % n_enc == i of the window being
 * encoded.
 */
struct encoder {
	struct sender *s;
	unsigned index;
	struct fec *fec;
	struct compress *zc;
	uint8_t *zbuf;       /* chunk_size: deflate output */
	int rc;
	char err[256];
	pthread_t th;
	bool started;
};

static void *encoder_main(void *arg);

struct sender {
	const struct sender_conf *conf;
	const struct sign_seckey *key;
	struct sign_linkkey *link;  /* the link envelope's key, or NULL */
	void (*progress_cb)(const struct sender_progress *, void *);
	void *progress_arg;
	struct sender_progress prog;
	uint64_t prog_t0, prog_last;
	struct sender_geometry g;
	struct tx *tx;       /* batches, GSO, pacing: sender/tx.c */
	uint64_t session;
	uint64_t seq;
	uint64_t next_hb_ns;

	/* The transfer being sent. */
	uint64_t transfer;
	uint32_t object_count;
	uint64_t transfer_bytes;
	const uint8_t *obj0;
	size_t obj0_len;
	const struct manifest *m;

	/*
	 * A window holds `interleave` full chunks' worth of symbols: small
	 * chunks (small files, last chunks) fill it by number, so their
	 * symbols spread over as many datagrams as big chunks' do.
	 */
	struct window wins[2];
	size_t arena_len;
	struct window *enc_win; /* the window being encoded */

	struct encoder enc[ENC_MAX];
	unsigned n_enc;
	pthread_mutex_t enc_mu;
	pthread_cond_t enc_go, enc_done;
	uint64_t enc_gen;    /* bumped for each window */
	unsigned enc_pending;
	bool enc_stop;

	/*
	 * Pass 1 checks every file against the manifest as its chunks are
	 * read (check_files): the chunks of a window are read by several
	 * encoders at once but fed to file_hash strictly in window order,
	 * chunk hash_turn next (under enc_mu, hash_cv).  hash_abort: an
	 * encoder failed, so the chunks after its own never get their turn.
	 */
	bool check_files;
	struct hash_ctx *file_hash;
	unsigned hash_turn;
	bool hash_abort;
	pthread_cond_t hash_cv;

	/* The descriptor cache: slot i holds the signed descriptor of the
	 * i-th chunk a pass sends (dc_len[i] bytes, 0: not yet). */
	uint8_t *dc_buf;
	uint16_t *dc_len;
	uint32_t dc_slots;

	struct sender_stats stats;
	volatile sig_atomic_t *stop;
};

unsigned
sender_repair_count(unsigned k, unsigned overhead)
{
	if (overhead == 0)
		return 0;
	return (k * overhead + 99) / 100 + 2;
}

int
sender_geometry(const struct sender_conf *c, struct sender_geometry *g)
{
	/* The link envelope's tag takes its room from every datagram. */
	unsigned k, room = c->datagram_size - (c->link_key != NULL ?
	    PROTO_LINK_TAG_LEN : 0);

	memset(g, 0, sizeof(*g));
	if (c->datagram_size <= PROTO_SYM_OFF + PROTO_MIN_SYMBOL +
	    PROTO_LINK_TAG_LEN || c->datagram_size > PROTO_MAX_DATAGRAM)
		return -EINVAL;
	g->symbol_size = room - PROTO_SYM_OFF;
	g->hash_len = HASH_LEN_WIRE;
	for (k = K_LIMIT; k >= 1; k--) {
		unsigned m = sender_repair_count(k, c->fec_overhead);

		if (k + m <= PROTO_MAX_SYMBOLS &&
		    proto_descriptor_len(k + m, g->hash_len) <= room)
			break;
	}
	if (k == 0)
		return -EINVAL;
	g->k_max = k;
	g->m_max = sender_repair_count(k, c->fec_overhead);
	g->chunk_size = k * g->symbol_size;
	return 0;
}

struct sender *
sender_new(const struct sender_conf *c, const struct sign_seckey *key,
    char *err, size_t errlen)
{
	struct sender *s = calloc(1, sizeof(*s));
	size_t symbytes;
	unsigned i;
	int fd;

	if (s == NULL)
		return NULL;
	s->conf = c;
	s->key = key;
	if (c->link_key != NULL) {
		int rc;

		s->link = sign_linkkey_load(c->link_key, &rc, err, errlen);
		if (s->link == NULL) {
			char tmp[256];

			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "%s: link_key %s: %s", c->path,
			    c->link_key, tmp);
			goto fail;
		}
	}
	if (sender_geometry(c, &s->g) != 0) {
		snprintf(err, errlen, "datagram_size %u leaves no room for a "
		    "chunk", c->datagram_size);
		goto fail;
	}
	if (getrandom(&s->session, sizeof(s->session), 0) !=
	    sizeof(s->session)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto fail;
	}
	s->n_enc = UTIL_MIN(c->encode_threads, ENC_MAX);
	for (i = 0; i < s->n_enc; i++) {
		struct encoder *e = &s->enc[i];

		e->s = s;
		e->index = i;
		e->fec = fec_new();
		e->zc = compress_new();
		e->zbuf = malloc(s->g.chunk_size);
		if (e->fec == NULL || e->zc == NULL || e->zbuf == NULL)
			goto nomem;
	}
	symbytes = (size_t)(s->g.k_max + s->g.m_max) * s->g.symbol_size;
	s->arena_len = symbytes * c->interleave;
	for (i = 0; i < 2; i++) {
		struct window *win = &s->wins[i];
		unsigned j;

		win->arena = malloc(s->arena_len);
		win->descs = malloc((size_t)WIN_MAX_CHUNKS *
		    c->datagram_size);
		if (win->arena == NULL || win->descs == NULL)
			goto nomem;
		for (j = 0; j < WIN_MAX_CHUNKS; j++)
			win->w[j].desc_own = win->descs + (size_t)j *
			    c->datagram_size;
	}
	if ((fd = tx_connect(c->destination, err, errlen)) < 0)
		goto fail;
	if ((s->tx = tx_new(fd, c->datagram_size, c->rate_bps,
	    c->datagram_size)) == NULL) {
		close(fd);
		goto nomem;
	}
	if ((s->file_hash = hash_new()) == NULL)
		goto nomem;
	pthread_mutex_init(&s->enc_mu, NULL);
	pthread_cond_init(&s->hash_cv, NULL);
	pthread_cond_init(&s->enc_go, NULL);
	pthread_cond_init(&s->enc_done, NULL);
	for (i = 0; i < s->n_enc; i++) {
		if (pthread_create(&s->enc[i].th, NULL, encoder_main,
		    &s->enc[i]) != 0) {
			snprintf(err, errlen, "cannot start an encoder thread");
			goto fail;
		}
		s->enc[i].started = true;
	}
	return s;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	sender_free(s);
	return NULL;
}

void
sender_free(struct sender *s)
{
	unsigned i;

	if (s == NULL)
		return;
	sign_linkkey_free(s->link);
	if (s->n_enc > 0 && s->enc[0].started) {
		pthread_mutex_lock(&s->enc_mu);
		s->enc_stop = true;
		pthread_cond_broadcast(&s->enc_go);
		pthread_mutex_unlock(&s->enc_mu);
	}
	for (i = 0; i < s->n_enc; i++) {
		struct encoder *e = &s->enc[i];

		if (e->started)
			pthread_join(e->th, NULL);
		fec_free(e->fec);
		compress_free(e->zc);
		free(e->zbuf);
	}
	for (i = 0; i < 2; i++) {
		free(s->wins[i].arena);
		free(s->wins[i].descs);
	}
	tx_free(s->tx);
	hash_free(s->file_hash);
	free(s);
}

uint64_t
sender_transfer_id(const struct sender *s)
{
	return s->transfer;
}

const struct sender_stats *
sender_stats(const struct sender *s)
{
	return &s->stats;
}

/* ---- batches -------------------------------------------------------- */

/* Sends what is queued; see sender/tx.c. */
static int
flush(struct sender *s)
{
	int rc;

	tx_set_stop(s->tx, s->stop);
	rc = tx_flush(s->tx);
	s->stats.datagrams = tx_datagrams(s->tx);
	return rc;
}

/* Queues one datagram: header bytes in tx_slot(), optional payload. */
static int
queue(struct sender *s, size_t hdr_len, const uint8_t *payload,
    size_t payload_len)
{
	uint8_t *buf = tx_slot(s->tx);

	if (s->link != NULL) {
		/* Sealed whole: the payload joins the header in one buffer
		 * (datagram_size bytes; the geometry left the tag room). */
		if (payload_len > 0)
			memcpy(buf + hdr_len, payload, payload_len);
		hdr_len = proto_link_seal(sign_linkkey_bytes(s->link),
		    buf, hdr_len + payload_len, s->conf->datagram_size,
		    s->conf->link_encrypt);
		if (hdr_len == 0)
			return -EINVAL;
		payload = NULL;
		payload_len = 0;
	}
	s->seq++;
	s->stats.wire_bytes += hdr_len + payload_len;
	int rc;

	tx_set_stop(s->tx, s->stop);
	rc = tx_queue(s->tx, hdr_len, payload, payload_len);
	s->stats.datagrams = tx_datagrams(s->tx);
	return rc;
}

static int
queue_heartbeat(struct sender *s)
{
	struct proto_heartbeat h;
	uint8_t *buf = tx_slot(s->tx);
	uint8_t msg[PROTO_SIG_CONTEXT_LEN + PROTO_HB_LEN], sig[SIGN_SIG_LEN];
	const uint8_t *body;
	size_t len, body_len, mlen;

	memset(&h, 0, sizeof(h));
	h.hdr.session = s->session;
	h.hdr.seq = s->seq;
	h.sent_ns = util_realtime_ns();
	h.transfer = s->transfer;
	h.interval_ms = (uint32_t)(s->conf->heartbeat_interval * 1000);
	len = proto_heartbeat_encode(buf, s->conf->datagram_size, &h);
	if (len == 0)
		return -EINVAL;
	proto_signed_body(buf, len, &body, &body_len);
	mlen = proto_sig_message(msg, sizeof(msg), PROTO_HB_SIG_CONTEXT, body,
	    body_len);
	sign_detached(s->key, sig, msg, mlen);
	proto_heartbeat_set_sig(buf, sign_seckey_id(s->key), sig);
	s->stats.heartbeats++;
	s->next_hb_ns = util_now_ns() +
	    (uint64_t)(s->conf->heartbeat_interval * 1e9);
	return queue(s, len, NULL, 0);
}

static int
maybe_heartbeat(struct sender *s)
{
	if (util_now_ns() < s->next_hb_ns)
		return 0;
	return queue_heartbeat(s);
}

static int
queue_descriptor(struct sender *s, const struct wchunk *w)
{
	uint8_t *buf = tx_slot(s->tx);

	memcpy(buf, w->desc, w->desc_len);
	proto_hdr_set_seq(buf, s->seq);
	return queue(s, w->desc_len, NULL, 0);
}

static int
queue_symbol(struct sender *s, const struct wchunk *w, unsigned index)
{
	struct proto_symbol sy;
	uint8_t *buf = tx_slot(s->tx);

	memset(&sy, 0, sizeof(sy));
	sy.hdr.session = s->session;
	sy.hdr.seq = s->seq;
	sy.id.transfer = s->transfer;
	sy.id.object = w->object;
	sy.id.chunk = w->chunk;
	sy.index = (uint8_t)index;
	sy.k = (uint8_t)w->k;
	sy.m = (uint8_t)w->m;
	sy.len = s->g.symbol_size;
	if (proto_symbol_encode_hdr(buf, s->conf->datagram_size, &sy) == 0)
		return -EINVAL;
	return queue(s, PROTO_SYM_OFF,
	    w->sym + (size_t)index * s->g.symbol_size, s->g.symbol_size);
}

/* ---- encoding ------------------------------------------------------- */

static uint64_t
object_size(const struct sender *s, uint32_t object)
{
	return object == 0 ? s->obj0_len : s->m->files[object - 1].size;
}

/* Reads plain_len bytes of an object at off into dst. */
static int
read_object(struct sender *s, uint32_t object, uint64_t off, uint8_t *dst,
    size_t len, int *fdp, char *err, size_t errlen)
{
	size_t done = 0;

	if (object == 0) {
		memcpy(dst, s->obj0 + off, len);
		return 0;
	}
	while (done < len) {
		ssize_t n = pread(*fdp, dst + done, len - done,
		    (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s",
			    s->m->files[object - 1].src,
			    n < 0 ? strerror(errno) : "file shrank while "
			    "being sent");
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Feeds a chunk's plaintext to the running SHA-256 of its file, in file
 * order whichever encoder read it, and at the file's last chunk compares
 * the digest with the manifest's.  0, -ESTALE (the file differs from
 * its manifest), or -ECANCELED (another encoder failed first).
 */
static int
check_file_bytes(struct sender *s, const struct wchunk *w, unsigned turn,
    const uint8_t *plain, uint32_t plain_len, char *err, size_t errlen)
{
	const struct manifest_file *f;
	uint8_t digest[HASH_LEN];
	int rc = 0;

	pthread_mutex_lock(&s->enc_mu);
	while (s->hash_turn != turn && !s->hash_abort)
		pthread_cond_wait(&s->hash_cv, &s->enc_mu);
	if (s->hash_abort) {
		pthread_mutex_unlock(&s->enc_mu);
		snprintf(err, errlen, "stopped: another chunk failed");
		return -ECANCELED;
	}
	pthread_mutex_unlock(&s->enc_mu);
	/* Our turn: nobody else touches file_hash until we pass it on. */
	if (w->object != 0) {
		f = &s->m->files[w->object - 1];
		if (w->chunk == 0)
			hash_init(s->file_hash);
		hash_update(s->file_hash, plain, plain_len);
		if (w->chunk + 1 == proto_chunk_count(f->size,
		    s->g.chunk_size)) {
			hash_final(s->file_hash, digest);
			if (!sign_equal(digest, f->sha256, HASH_LEN)) {
				/*
				 * Datagrams of this transfer (this file's
				 * earlier chunks among them) have already
				 * left.  Harmless: the receiver re-hashes
				 * every file against the signed manifest
				 * before release and cannot release this
				 * one; it stays INCOMPLETE there.
				 */
				snprintf(err, errlen, "%s: \"%s\" differs from "
				    "the manifest (SHA-256), found while "
				    "sending it: stopped; the datagrams "
				    "already sent cannot be released (the "
				    "receiver checks every file against the "
				    "signed manifest)", f->src, f->path);
				rc = -ESTALE;
			}
		}
	}
	pthread_mutex_lock(&s->enc_mu);
	if (rc != 0)
		s->hash_abort = true;
	else
		s->hash_turn = turn + 1;
	pthread_cond_broadcast(&s->hash_cv);
	pthread_mutex_unlock(&s->enc_mu);
	return rc;
}

static uint32_t
be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * Encodes chunk w (window position turn).  Symbols are made anew in every
 * pass (they are not kept); a chunk whose descriptor is in the cache
 * keeps it: its symbols are neither hashed nor signed again, each symbol
 * is hashed once per transfer.
 */
static int
encode_chunk(struct sender *s, struct encoder *e, struct wchunk *w,
    unsigned turn, char *err, size_t errlen)
{
	int fd = w->fd;
	const struct sender_geometry *g = &s->g;
	struct proto_descriptor d;
	uint64_t osize = object_size(s, w->object);
	uint32_t plain_len = proto_chunk_plain_len(osize, g->chunk_size,
	    w->chunk);
	uint8_t hashes[PROTO_MAX_SYMBOLS * HASH_LEN_WIRE];
	uint8_t *ptr[PROTO_MAX_SYMBOLS];
	uint8_t msg[PROTO_SIG_CONTEXT_LEN + PROTO_MAX_DATAGRAM];
	uint8_t sig[SIGN_SIG_LEN];
	const uint8_t *body;
	size_t enc_len = plain_len, zlen = 0, body_len, mlen, i;
	enum compress_codec codec = CODEC_STORED;
	bool in_cache = w->ordinal < s->dc_slots;
	bool cached = in_cache && s->dc_len[w->ordinal] != 0;
	int rc;

	/* Read straight into the source symbols; compress from there. */
	rc = read_object(s, w->object, (uint64_t)w->chunk * g->chunk_size,
	    w->sym, plain_len, &fd, err, errlen);
	if (rc != 0)
		return rc;
	if (s->check_files &&
	    (rc = check_file_bytes(s, w, turn, w->sym, plain_len, err,
	    errlen)) != 0)
		return rc;
	if (s->conf->compress != COMPRESS_OFF) {
		codec = compress_chunk(e->zc, s->conf->compress, w->sym,
		    plain_len, e->zbuf, g->chunk_size, &zlen);
		if (codec == CODEC_DEFLATE) {
			memcpy(w->sym, e->zbuf, zlen);
			enc_len = zlen;
		}
	}
	w->k = (unsigned)((enc_len + g->symbol_size - 1) / g->symbol_size);
	w->m = sender_repair_count(w->k, s->conf->fec_overhead);
	if (cached) {
		const uint8_t *c = s->dc_buf + (size_t)w->ordinal *
		    s->conf->datagram_size;

		/* Compressing the same bytes gives the same enc_len and
		 * codec; anything else means the file changed under us. */
		if (be32_at(c + 68) != enc_len || c[76] != (uint8_t)codec) {
			snprintf(err, errlen, "%s: changed since the first "
			    "pass; stopped (the receiver cannot release it)",
			    s->m->files[w->object - 1].src);
			return -ESTALE;
		}
	}
	memset(w->sym + enc_len, 0, (size_t)w->k * g->symbol_size - enc_len);
	for (i = 0; i < w->k + w->m; i++)
		ptr[i] = w->sym + i * g->symbol_size;
	rc = fec_encode(e->fec, w->k, w->m, g->symbol_size, ptr, ptr + w->k);
	if (rc != 0) {
		snprintf(err, errlen, "FEC encode failed");
		return rc;
	}
	w->plain_len = plain_len;
	w->deflated = codec == CODEC_DEFLATE;
	w->desc = in_cache ? s->dc_buf + (size_t)w->ordinal *
	    s->conf->datagram_size : w->desc_own;
	if (cached) {
		w->desc_len = s->dc_len[w->ordinal];
		return 0;
	}
	for (i = 0; i < w->k + w->m; i++) {
		uint8_t h[HASH_LEN];

		hash_sha256(h, ptr[i], g->symbol_size);
		memcpy(hashes + i * HASH_LEN_WIRE, h, HASH_LEN_WIRE);
	}

	memset(&d, 0, sizeof(d));
	d.hdr.session = s->session;
	d.id.transfer = s->transfer;
	d.id.object = w->object;
	d.id.chunk = w->chunk;
	d.object_count = s->object_count;
	d.transfer_bytes = s->transfer_bytes;
	d.object_size = osize;
	d.chunk_size = g->chunk_size;
	d.plain_len = plain_len;
	d.enc_len = (uint32_t)enc_len;
	d.symbol_size = (uint16_t)g->symbol_size;
	d.k = (uint8_t)w->k;
	d.m = (uint8_t)w->m;
	d.codec = (uint8_t)codec;
	d.hash_len = HASH_LEN_WIRE;
	/* The chunk hash costs nothing: the plaintext is never hashed
	 * per chunk (PROTOCOL.md section 4). */
	hash_sha256(d.list_sha256, hashes, (w->k + w->m) * HASH_LEN_WIRE);
	w->desc_len = proto_descriptor_encode(w->desc, s->conf->datagram_size,
	    &d, hashes);
	if (w->desc_len == 0) {
		snprintf(err, errlen, "descriptor does not fit (bug)");
		return -EINVAL;
	}
	proto_signed_body(w->desc, w->desc_len, &body, &body_len);
	mlen = proto_sig_message(msg, sizeof(msg), PROTO_DESC_SIG_CONTEXT,
	    body, body_len);
	sign_detached(s->key, sig, msg, mlen);
	proto_descriptor_set_sig(w->desc, w->desc_len, sign_seckey_id(s->key),
	    sig);
	if (in_cache)
		s->dc_len[w->ordinal] = (uint16_t)w->desc_len;
	return 0;
}

/* Encoder e's share of the window. */
static void
encode_share(struct sender *s, struct encoder *e)
{
	unsigned i;

	e->rc = 0;
	for (i = e->index; i < s->enc_win->n && e->rc == 0; i += s->n_enc)
		e->rc = encode_chunk(s, e, &s->enc_win->w[i], i, e->err,
		    sizeof(e->err));
	if (e->rc != 0) {
		/* The chunks after ours wait for their turn: free them. */
		pthread_mutex_lock(&s->enc_mu);
		s->hash_abort = true;
		pthread_cond_broadcast(&s->hash_cv);
		pthread_mutex_unlock(&s->enc_mu);
	}
}

static void *
encoder_main(void *arg)
{
	struct encoder *e = arg;
	struct sender *s = e->s;
	uint64_t gen = 0;

	pthread_mutex_lock(&s->enc_mu);
	for (;;) {
		while (s->enc_gen == gen && !s->enc_stop)
			pthread_cond_wait(&s->enc_go, &s->enc_mu);
		if (s->enc_stop)
			break;
		gen = s->enc_gen;
		pthread_mutex_unlock(&s->enc_mu);
		encode_share(s, e);
		pthread_mutex_lock(&s->enc_mu);
		if (--s->enc_pending == 0)
			pthread_cond_signal(&s->enc_done);
	}
	pthread_mutex_unlock(&s->enc_mu);
	return NULL;
}

/*
 * Starts the encoders on a window; the sending thread goes on (pacing out
 * the previous window) until encode_wait().  Each chunk's bytes, and so
 * its descriptor, depend on nothing but the chunk: which thread encodes
 * it makes no difference on the wire.
 */
static void
encode_start(struct sender *s, struct window *win)
{
	pthread_mutex_lock(&s->enc_mu);
	s->enc_win = win;
	s->hash_turn = 0;
	s->hash_abort = false;
	s->enc_gen++;
	s->enc_pending = s->n_enc;
	pthread_cond_broadcast(&s->enc_go);
	pthread_mutex_unlock(&s->enc_mu);
}

static int
encode_wait(struct sender *s, struct window *win, char *err, size_t errlen)
{
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&s->enc_mu);
	while (s->enc_pending > 0)
		pthread_cond_wait(&s->enc_done, &s->enc_mu);
	pthread_mutex_unlock(&s->enc_mu);
	for (i = 0; i < win->n_old; i++)
		close(win->old_fds[i]);
	win->n_old = 0;
	/* The first failure, not the encoders it stopped (-ECANCELED). */
	for (i = 0; i < s->n_enc; i++) {
		if (s->enc[i].rc != 0 && (rc == 0 || (rc == -ECANCELED &&
		    s->enc[i].rc != -ECANCELED))) {
			snprintf(err, errlen, "%s", s->enc[i].err);
			rc = s->enc[i].rc;
		}
	}
	for (i = 0; i < win->n && rc == 0; i++) {
		/* Chunks are the transfer's, as the receiver counts them:
		 * the first pass's. */
		if (s->prog.pass <= 1)
			s->stats.chunks++;
		s->stats.file_bytes += win->w[i].plain_len;
		s->prog.pass_bytes += win->w[i].plain_len;
		if (win->w[i].deflated && s->prog.pass <= 1)
			s->stats.chunks_deflated++;
	}
	return rc;
}

static void
report(struct sender *s, bool pass_done)
{
	uint64_t now = util_now_ns();

	if (s->progress_cb == NULL ||
	    (!pass_done && now - s->prog_last < 200000000ull))
		return;
	s->prog_last = now;
	s->prog.elapsed_ns = now - s->prog_t0;
	s->prog.pass_done = pass_done;
	s->progress_cb(&s->prog, s->progress_arg);
}

void
sender_set_progress(struct sender *s,
    void (*cb)(const struct sender_progress *, void *), void *arg)
{
	s->progress_cb = cb;
	s->progress_arg = arg;
}

/*
 * Emits an encoded window in rounds: round r carries symbol r of every
 * chunk that has one, preceded by the descriptor copies due in that
 * round.  A chunk of n symbols gets its copies at rounds j * n / copies,
 * so they spread over the chunk's whole span however small it is.
 */
static int
emit_window(struct sender *s, struct window *win)
{
	unsigned copies = s->conf->descriptor_copies, rounds = 0, r, i, j;
	unsigned n = win->n;
	int rc;

	for (i = 0; i < n; i++)
		rounds = UTIL_MAX(rounds, win->w[i].k + win->w[i].m);
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < n; i++) {
			unsigned nsym = win->w[i].k + win->w[i].m;

			if (r >= nsym)
				continue;
			for (j = 0; j < copies; j++)
				if (j * nsym / copies == r &&
				    (rc = queue_descriptor(s, &win->w[i])) != 0)
					return rc;
		}
		for (i = 0; i < n; i++) {
			if (r >= win->w[i].k + win->w[i].m)
				continue;
			if ((rc = queue_symbol(s, &win->w[i], r)) != 0)
				return rc;
		}
		if ((rc = maybe_heartbeat(s)) != 0)
			return rc;
		if (*s->stop)
			return -EINTR;
	}
	/* The batch points into the window's buffers: send it before they
	 * are encoded over. */
	return flush(s);
}

/* transfer id: see PROTOCOL.md, "Transfer id". */
static uint64_t
transfer_id(const struct sender *s)
{
	static const char ctx[] = "sluice transfer v1";
	struct hash_ctx *h = hash_new();
	uint8_t tail[9], digest[HASH_LEN];
	struct pwr w;
	struct pcur c;

	pwr_init(&w, tail, sizeof(tail));
	pwr_u32(&w, s->g.chunk_size);
	pwr_u16(&w, (uint16_t)s->g.symbol_size);
	pwr_u16(&w, (uint16_t)s->conf->fec_overhead);
	pwr_u8(&w, (uint8_t)s->conf->compress);
	hash_update(h, ctx, sizeof(ctx) - 1);
	hash_update(h, s->obj0, s->obj0_len);
	hash_update(h, tail, sizeof(tail));
	hash_final(h, digest);
	hash_free(h);
	pcur_init(&c, digest, 8);
	return pcur_u64(&c);
}

struct cursor {
	uint32_t object, chunk;
};

/* ---- resend filter ---------------------------------------------------- */

struct range {
	uint32_t object, first, last; /* last = UINT32_MAX: whole object */
};

struct sender_filter {
	struct range *r;
	size_t n;
};

static bool
filter_wants(const struct sender_filter *f, uint32_t object, uint32_t chunk)
{
	size_t i;

	if (f == NULL)
		return true;
	for (i = 0; i < f->n; i++)
		if (f->r[i].object == object && chunk >= f->r[i].first &&
		    chunk <= f->r[i].last)
			return true;
	return false;
}

void
sender_filter_free(struct sender_filter *f)
{
	if (f == NULL)
		return;
	free(f->r);
	free(f);
}

/* Parses a missing list (PROTOCOL.md, "Missing list"). */
struct sender_filter *
sender_filter_load(const char *path, uint64_t *transfer, char **name,
    char **version, char *err, size_t errlen)
{
	struct sender_filter *f = calloc(1, sizeof(*f));
	uint8_t *buf = NULL;
	size_t len;
	char *line, *save;
	unsigned lineno = 0;
	bool header = false, end = false, have_id = false;

	*name = *version = NULL;
	if (f == NULL || util_read_file(path, 64u << 20, &buf, &len) != 0) {
		snprintf(err, errlen, "%s: cannot read", path);
		goto fail;
	}
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		unsigned long o, a, b;
		char hex[17], *e;
		uint8_t raw[8];

		lineno++;
		if (end)
			goto bad;
		if (!header) {
			if (strcmp(line, "sluice-missing 1") != 0)
				goto bad;
			header = true;
		} else if (strncmp(line, "transfer ", 9) == 0 &&
		    strlen(line) == 25) {
			unsigned i;

			memcpy(hex, line + 9, 16);
			hex[16] = '\0';
			if (util_unhex(raw, 8, hex) != 0)
				goto bad;
			*transfer = 0;
			for (i = 0; i < 8; i++)
				*transfer = *transfer << 8 | raw[i];
			have_id = true;
		} else if (strncmp(line, "bundle ", 7) == 0 ||
		    strncmp(line, "version ", 8) == 0) {
			bool is_b = line[0] == 'b';
			const char *v = line + (is_b ? 7 : 8);
			char out[PMAN_MAX_VALUE + 1];
			size_t olen;

			if (pman_unescape(v, strlen(v), out, sizeof(out),
			    &olen) != PMAN_OK)
				goto bad;
			free(is_b ? *name : *version);
			*(is_b ? name : version) = strdup(out);
		} else if (strncmp(line, "object ", 7) == 0 ||
		    strncmp(line, "chunks ", 7) == 0) {
			struct range *nr;
			bool whole = line[0] == 'o';

			o = strtoul(line + 7, &e, 10);
			if (e == line + 7 || o >= PROTO_MAX_OBJECTS)
				goto bad;
			a = 0;
			b = UINT32_MAX;
			if (whole) {
				if (*e != '\0')
					goto bad;
			} else {
				if (*e != ' ')
					goto bad;
				a = strtoul(e + 1, &e, 10);
				if (*e != '-')
					goto bad;
				b = strtoul(e + 1, &e, 10);
				if (*e != '\0' || b < a || b >= UINT32_MAX)
					goto bad;
			}
			nr = realloc(f->r, (f->n + 1) * sizeof(*nr));
			if (nr == NULL)
				goto bad;
			f->r = nr;
			f->r[f->n].object = (uint32_t)o;
			f->r[f->n].first = (uint32_t)a;
			f->r[f->n].last = (uint32_t)b;
			f->n++;
		} else if (strcmp(line, "end") == 0) {
			end = true;
		} else {
			goto bad;
		}
	}
	if (!end || !have_id) {
		snprintf(err, errlen, "%s: incomplete missing list (no end or "
		    "transfer line)", path);
		goto fail;
	}
	free(buf);
	return f;
bad:
	snprintf(err, errlen, "%s:%u: not a missing list line", path, lineno);
fail:
	free(buf);
	free(*name);
	free(*version);
	*name = *version = NULL;
	sender_filter_free(f);
	return NULL;
}

/* Next chunk in the flat list, skipping empty objects; false at the end. */
static bool
next_chunk(const struct sender *s, struct cursor *c)
{
	while (c->object < s->object_count) {
		uint32_t n = proto_chunk_count(object_size(s, c->object),
		    s->g.chunk_size);

		if (c->chunk < n)
			return true;
		c->object++;
		c->chunk = 0;
	}
	return false;
}

/* Where send_pass is in the transfer, and the file it is reading. */
struct pass {
	struct cursor cur;
	int fd;
	int fd_object;
	uint32_t ordinal;    /* chunks taken so far */
};

/*
 * Fills a window with the next chunks (as many as its arena holds),
 * opening files as it goes; the encoders do the rest.  Returns the number
 * of chunks (0 at the end of the pass) or -errno.
 */
static int
fill_window(struct sender *s, struct window *win, struct pass *p,
    const struct sender_filter *filter, char *err, size_t errlen)
{
	size_t used = 0;

	win->n = 0;
	while (win->n < WIN_MAX_CHUNKS && next_chunk(s, &p->cur)) {
		struct wchunk *w = &win->w[win->n];
		uint32_t plain_len;
		unsigned k;
		size_t need;

		if (!filter_wants(filter, p->cur.object, p->cur.chunk)) {
			p->cur.chunk++;
			continue;
		}
		plain_len = proto_chunk_plain_len(object_size(s,
		    p->cur.object), s->g.chunk_size, p->cur.chunk);
		k = (plain_len + s->g.symbol_size - 1) / s->g.symbol_size;
		need = (size_t)(k + sender_repair_count(k,
		    s->conf->fec_overhead)) * s->g.symbol_size;
		if (used + need > s->arena_len)
			break;
		w->sym = win->arena + used;
		used += need;

		if (p->cur.object != 0 && (uint32_t)p->fd_object !=
		    p->cur.object) {
			const struct manifest_file *f =
			    &s->m->files[p->cur.object - 1];
			struct stat st;

			/* Chunks of the last file may be in this window:
			 * close its fd once the window is encoded. */
			if (p->fd >= 0)
				win->old_fds[win->n_old++] = p->fd;
			p->fd = open(f->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (p->fd < 0 || fstat(p->fd, &st) < 0 ||
			    (uint64_t)st.st_size != f->size) {
				int rc = p->fd < 0 ? -errno : -ESTALE;

				snprintf(err, errlen, "%s: %s", f->src,
				    p->fd < 0 ? strerror(errno) :
				    "changed size since the manifest was made");
				return rc;
			}
			p->fd_object = (int)p->cur.object;
		}
		w->object = p->cur.object;
		w->chunk = p->cur.chunk;
		w->ordinal = p->ordinal++;
		w->fd = p->fd;
		p->cur.chunk++;
		win->n++;
	}
	return (int)win->n;
}

/*
 * One carousel pass, pipelined: while the sending thread paces window i
 * out, the encoders encode window i + 1, so at a paced rate the link
 * waits neither for the encoding nor the encoding for the link.
 */
static int
send_pass(struct sender *s, const struct sender_filter *filter, char *err,
    size_t errlen)
{
	struct pass p = { { 0, 0 }, -1, -1, 0 };
	struct window *cur = &s->wins[0], *next = &s->wins[1], *tmp;
	bool encoding = false;
	int rc, n;

	n = fill_window(s, cur, &p, filter, err, errlen);
	if (n > 0) {
		encode_start(s, cur);
		encoding = true;
	}
	rc = n < 0 ? n : 0;
	while (rc == 0 && n > 0) {
		encoding = false;
		rc = encode_wait(s, cur, err, errlen);
		if (rc != 0)
			break;
		n = fill_window(s, next, &p, filter, err, errlen);
		if (n < 0) {
			rc = n;
			break;
		}
		if (n > 0) {
			encode_start(s, next);
			encoding = true;
		}
		rc = emit_window(s, cur);
		report(s, false);
		tmp = cur;
		cur = next;
		next = tmp;
	}
	if (encoding) {
		/* Stopped or failed with a window still being encoded: it
		 * uses the window's buffers and files until done. */
		char ignore[256];

		(void)encode_wait(s, cur, ignore, sizeof(ignore));
	}
	for (n = 0; n < 2; n++) {
		unsigned i;

		for (i = 0; i < s->wins[n].n_old; i++)
			close(s->wins[n].old_fds[i]);
		s->wins[n].n_old = 0;
	}
	if (p.fd >= 0)
		close(p.fd);
	return rc;
}

uint64_t
sender_preview_id(struct sender *s, const struct manifest *m)
{
	uint8_t *obj0;
	size_t len;
	uint64_t id = 0;

	if (manifest_render_object(m, &obj0, &len) != 0)
		return 0;
	s->obj0 = obj0;
	s->obj0_len = len;
	id = transfer_id(s);
	s->obj0 = NULL;
	free(obj0);
	return id;
}

int
sender_idle(struct sender *s, int fd, double seconds,
    volatile sig_atomic_t *stop)
{
	uint64_t end = util_now_ns() + (uint64_t)(seconds * 1e9);
	int rc = 0;

	s->stop = stop;
	s->transfer = 0;
	while (!*stop) {
		uint64_t now = util_now_ns(), wake;
		struct pollfd pfd = { fd, POLLIN, 0 };
		int n;

		if (now >= s->next_hb_ns) {
			if ((rc = queue_heartbeat(s)) != 0 ||
			    (rc = flush(s)) != 0)
				break;
			continue;
		}
		if (now >= end)
			break;
		wake = s->next_hb_ns < end ? s->next_hb_ns : end;
		n = poll(&pfd, fd >= 0 ? 1 : 0,
		    (int)((wake - now + 999999) / 1000000));
		if (n > 0) {
			rc = 1;
			break;
		}
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	if (rc == 0 && *stop)
		rc = -EINTR;
	s->stop = NULL;
	return rc;
}

struct sender_hb_thread {
	struct sender *s;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void *
hb_main(void *arg)
{
	struct sender_hb_thread *h = arg;

	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		uint64_t now = util_now_ns();

		if (now >= h->s->next_hb_ns) {
			pthread_mutex_unlock(&h->mu);
			if (queue_heartbeat(h->s) == 0)
				(void)flush(h->s);
			pthread_mutex_lock(&h->mu);
			continue;
		} else {
			struct timespec ts;
			uint64_t wake;

			clock_gettime(CLOCK_REALTIME, &ts);
			wake = (uint64_t)ts.tv_sec * 1000000000ull +
			    (uint64_t)ts.tv_nsec + (h->s->next_hb_ns - now);
			ts.tv_sec = (time_t)(wake / 1000000000ull);
			ts.tv_nsec = (long)(wake % 1000000000ull);
			(void)pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct sender_hb_thread *
sender_heartbeats_start(struct sender *s)
{
	struct sender_hb_thread *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->s = s;
	s->transfer = 0;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->th, NULL, hb_main, h) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

void
sender_heartbeats_stop(struct sender_hb_thread *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* Room for the descriptors of the first chunks of a transfer; NULL
 * buffers (no cache) are fine: every chunk is then signed in every pass. */
static void
dcache_new(struct sender *s, uint64_t chunks)
{
	uint64_t slots = UTIL_MIN(chunks, DCACHE_MAX_BYTES /
	    s->conf->datagram_size);

	s->dc_slots = 0;
	if (s->conf->passes < 2 || slots == 0)
		return;
	s->dc_buf = malloc((size_t)slots * s->conf->datagram_size);
	s->dc_len = calloc((size_t)slots, sizeof(*s->dc_len));
	if (s->dc_buf == NULL || s->dc_len == NULL) {
		log_warnx("no memory for the descriptor cache: descriptors "
		    "are signed again in every pass");
		free(s->dc_buf);
		free(s->dc_len);
		s->dc_buf = NULL;
		s->dc_len = NULL;
		return;
	}
	s->dc_slots = (uint32_t)slots;
}

static void
dcache_free(struct sender *s)
{
	free(s->dc_buf);
	free(s->dc_len);
	s->dc_buf = NULL;
	s->dc_len = NULL;
	s->dc_slots = 0;
}

int
sender_send_transfer(struct sender *s, const struct manifest *m,
    const struct sender_filter *filter, bool check_files,
    volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	uint8_t *obj0;
	size_t obj0_len;
	unsigned pass;
	uint64_t wanted = 0;
	uint32_t o;
	int rc;

	rc = manifest_render_object(m, &obj0, &obj0_len);
	if (rc != 0) {
		snprintf(err, errlen, "cannot render the manifest");
		return rc;
	}
	if (m->n_files + 1 > PROTO_MAX_OBJECTS) {
		snprintf(err, errlen, "too many files (%zu)", m->n_files);
		free(obj0);
		return -E2BIG;
	}
	s->m = m;
	s->stop = stop;
	s->obj0 = obj0;
	s->obj0_len = obj0_len;
	s->object_count = (uint32_t)m->n_files + 1;
	s->transfer_bytes = obj0_len + m->total_bytes;
	s->transfer = transfer_id(s);
	memset(&s->prog, 0, sizeof(s->prog));
	s->prog.passes = s->conf->passes;
	s->prog_t0 = s->prog_last = util_now_ns();
	s->stats.chunks_total = 0;
	for (o = 0; o < s->object_count; o++) {
		uint64_t size = o == 0 ? obj0_len : m->files[o - 1].size;
		uint32_t c, n = proto_chunk_count(size, s->g.chunk_size);

		s->stats.chunks_total += n;
		for (c = 0; c < n; c++) {
			if (!filter_wants(filter, o, c))
				continue;
			wanted++;
			s->prog.pass_total += proto_chunk_plain_len(size,
			    s->g.chunk_size, c);
		}
	}
	dcache_new(s, wanted);
	rc = queue_heartbeat(s);
	for (pass = 0; pass < s->conf->passes && rc == 0; pass++) {
		log_debug("transfer %016llx: pass %u of %u",
		    (unsigned long long)s->transfer, pass + 1,
		    s->conf->passes);
		s->prog.pass = pass + 1;
		s->prog.pass_bytes = 0;
		/* Pass 1 reads every byte anyway: the files are checked
		 * against the manifest then, and only then. */
		s->check_files = check_files && filter == NULL && pass == 0;
		rc = send_pass(s, filter, err, errlen);
		if (rc == 0)
			report(s, true);
	}
	if (rc == 0)
		rc = queue_heartbeat(s);
	if (rc == 0)
		rc = flush(s);
	else if (rc != -EINTR && err[0] == '\0')
		snprintf(err, errlen, "send: %s", strerror(-rc));
	free(obj0);
	dcache_free(s);
	s->check_files = false;
	s->obj0 = NULL;
	s->m = NULL;
	s->stop = NULL;
	return rc;
}
