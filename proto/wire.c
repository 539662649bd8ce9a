/*
 * Sluice wire format v1.  See wire.h for the contract and PROTOCOL.md for
 * the layout.  Everything here runs on hostile bytes before any state is
 * touched, so it is cheap, allocation free and checks every field.
 */
#include "proto/wire.h"
#include "proto/bytes.h"

#include <string.h>

_Static_assert(PROTO_HDR_LEN == 24, "header layout");
_Static_assert(PROTO_SYM_OFF == 44, "symbol layout");
_Static_assert(PROTO_DESC_HASH_OFF == 112, "descriptor layout");
_Static_assert(PROTO_HB_LEN == 128, "heartbeat layout");
_Static_assert(sizeof(PROTO_DESC_SIG_CONTEXT) <= PROTO_SIG_CONTEXT_LEN,
    "descriptor context");
_Static_assert(sizeof(PROTO_HB_SIG_CONTEXT) <= PROTO_SIG_CONTEXT_LEN,
    "heartbeat context");
_Static_assert(PROTO_MAX_SYMBOL <= UINT16_MAX, "symbol size fits u16");

#define SIG_TRAILER_LEN (PROTO_KEYID_LEN + PROTO_SIG_LEN)
#define HB_SIGNED_OFF 8
#define HB_SIGNED_END 56

static const char *const verdict_names[PROTO_VERDICT_COUNT] = {
	[PROTO_OK] = "ok",
	[PROTO_ERR_SHORT] = "short",
	[PROTO_ERR_MAGIC] = "magic",
	[PROTO_ERR_VERSION] = "version",
	[PROTO_ERR_TYPE] = "type",
	[PROTO_ERR_FLAGS] = "flags",
	[PROTO_ERR_RESERVED] = "reserved",
	[PROTO_ERR_LENGTH] = "length",
	[PROTO_ERR_PARAM] = "param",
	[PROTO_ERR_GEOMETRY] = "geometry",
	[PROTO_ERR_LINK] = "link_auth",
};

const char *
proto_verdict_name(enum proto_verdict v)
{
	if ((unsigned)v >= PROTO_VERDICT_COUNT)
		return "unknown";
	return verdict_names[v];
}

enum proto_verdict
proto_hdr_decode(const uint8_t *buf, size_t len, struct proto_hdr *hdr)
{
	struct pcur c;
	uint32_t magic;
	uint8_t version, reserved;

	pcur_init(&c, buf, len);
	magic = pcur_u32(&c);
	version = pcur_u8(&c);
	hdr->type = pcur_u8(&c);
	hdr->flags = pcur_u8(&c);
	reserved = pcur_u8(&c);
	hdr->session = pcur_u64(&c);
	hdr->seq = pcur_u64(&c);
	if (c.err) {
		/* Say "magic" for a short foreign datagram too: it is not ours. */
		struct pcur m;

		pcur_init(&m, buf, len);
		return pcur_u32(&m) == PROTO_MAGIC ? PROTO_ERR_SHORT :
		    PROTO_ERR_MAGIC;
	}
	if (magic != PROTO_MAGIC)
		return PROTO_ERR_MAGIC;
	if (version != PROTO_VERSION)
		return PROTO_ERR_VERSION;
	if (hdr->type < PROTO_T_SYMBOL || hdr->type > PROTO_T_HEARTBEAT)
		return PROTO_ERR_TYPE;
	if (hdr->flags != 0)
		return PROTO_ERR_FLAGS;
	if (reserved != 0)
		return PROTO_ERR_RESERVED;
	return PROTO_OK;
}

static enum proto_verdict
hdr_expect(const uint8_t *buf, size_t len, struct proto_hdr *hdr,
    uint8_t type)
{
	enum proto_verdict v = proto_hdr_decode(buf, len, hdr);

	if (v != PROTO_OK)
		return v;
	return hdr->type == type ? PROTO_OK : PROTO_ERR_TYPE;
}

enum proto_verdict
proto_symbol_decode(const uint8_t *buf, size_t len, struct proto_symbol *s)
{
	struct pcur c;
	enum proto_verdict v;
	uint8_t reserved;

	v = hdr_expect(buf, len, &s->hdr, PROTO_T_SYMBOL);
	if (v != PROTO_OK)
		return v;
	if (len < PROTO_SYM_OFF + PROTO_MIN_SYMBOL)
		return PROTO_ERR_SHORT;
	if (len > PROTO_MAX_DATAGRAM)
		return PROTO_ERR_LENGTH;
	pcur_init(&c, buf + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	s->id.transfer = pcur_u64(&c);
	s->id.object = pcur_u32(&c);
	s->id.chunk = pcur_u32(&c);
	s->index = pcur_u8(&c);
	s->k = pcur_u8(&c);
	s->m = pcur_u8(&c);
	reserved = pcur_u8(&c);
	if (c.err)
		return PROTO_ERR_SHORT;
	if (reserved != 0)
		return PROTO_ERR_RESERVED;
	if (s->k == 0 || (unsigned)s->k + s->m > PROTO_MAX_SYMBOLS ||
	    s->index >= (unsigned)s->k + s->m)
		return PROTO_ERR_PARAM;
	if (s->id.object >= PROTO_MAX_OBJECTS)
		return PROTO_ERR_GEOMETRY;
	s->data = buf + PROTO_SYM_OFF;
	s->len = len - PROTO_SYM_OFF;
	return PROTO_OK;
}

size_t
proto_descriptor_len(unsigned n, unsigned hash_len)
{
	return PROTO_DESC_HASH_OFF + (size_t)n * hash_len + SIG_TRAILER_LEN;
}

uint32_t
proto_chunk_count(uint64_t object_size, uint32_t chunk_size)
{
	uint64_t n;

	if (chunk_size == 0)
		return 0;
	n = object_size / chunk_size + (object_size % chunk_size != 0);
	return n > UINT32_MAX ? 0 : (uint32_t)n;
}

uint32_t
proto_chunk_plain_len(uint64_t object_size, uint32_t chunk_size,
    uint32_t chunk)
{
	uint64_t off;

	if (chunk >= proto_chunk_count(object_size, chunk_size))
		return 0;
	off = (uint64_t)chunk * chunk_size;
	return object_size - off < chunk_size ? (uint32_t)(object_size - off) :
	    chunk_size;
}

/* The geometry rules of PROTOCOL.md section "Descriptor". */
static enum proto_verdict
descriptor_check(const struct proto_descriptor *d)
{
	unsigned n = (unsigned)d->k + d->m;
	uint64_t k_bytes = (uint64_t)d->k * d->symbol_size;

	if (d->k == 0 || n > PROTO_MAX_SYMBOLS ||
	    d->symbol_size < PROTO_MIN_SYMBOL ||
	    d->symbol_size > PROTO_MAX_SYMBOL ||
	    d->hash_len < PROTO_MIN_HASH_LEN ||
	    d->hash_len > PROTO_MAX_HASH_LEN || d->codec > 1)
		return PROTO_ERR_PARAM;
	if (d->object_count == 0 || d->object_count > PROTO_MAX_OBJECTS ||
	    d->id.object >= d->object_count)
		return PROTO_ERR_GEOMETRY;
	if (d->chunk_size == 0 || d->chunk_size > PROTO_MAX_CHUNK ||
	    d->object_size == 0 || d->object_size > d->transfer_bytes)
		return PROTO_ERR_GEOMETRY;
	if (d->plain_len == 0 || d->plain_len != proto_chunk_plain_len(
	    d->object_size, d->chunk_size, d->id.chunk))
		return PROTO_ERR_GEOMETRY;
	/* k is the least number of symbols that carries enc_len bytes. */
	if (d->enc_len == 0 || d->enc_len > k_bytes ||
	    d->enc_len <= k_bytes - d->symbol_size)
		return PROTO_ERR_GEOMETRY;
	if (d->codec == 0 && d->enc_len != d->plain_len)
		return PROTO_ERR_GEOMETRY;
	if (d->codec == 1 && d->enc_len >= d->plain_len)
		return PROTO_ERR_GEOMETRY;
	return PROTO_OK;
}

enum proto_verdict
proto_descriptor_decode(const uint8_t *buf, size_t len,
    struct proto_descriptor *d)
{
	struct pcur c;
	enum proto_verdict v;
	const uint8_t *p;
	uint16_t reserved;
	size_t n;

	v = hdr_expect(buf, len, &d->hdr, PROTO_T_DESCRIPTOR);
	if (v != PROTO_OK)
		return v;
	if (len > PROTO_MAX_DATAGRAM)
		return PROTO_ERR_LENGTH;
	pcur_init(&c, buf + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	d->id.transfer = pcur_u64(&c);
	d->id.object = pcur_u32(&c);
	d->id.chunk = pcur_u32(&c);
	d->object_count = pcur_u32(&c);
	d->transfer_bytes = pcur_u64(&c);
	d->object_size = pcur_u64(&c);
	d->chunk_size = pcur_u32(&c);
	d->plain_len = pcur_u32(&c);
	d->enc_len = pcur_u32(&c);
	d->symbol_size = pcur_u16(&c);
	d->k = pcur_u8(&c);
	d->m = pcur_u8(&c);
	d->codec = pcur_u8(&c);
	d->hash_len = pcur_u8(&c);
	reserved = pcur_u16(&c);
	p = pcur_bytes(&c, PROTO_SHA256_LEN);
	if (c.err)
		return PROTO_ERR_SHORT;
	memcpy(d->list_sha256, p, PROTO_SHA256_LEN);
	if (reserved != 0)
		return PROTO_ERR_RESERVED;
	v = descriptor_check(d);
	if (v != PROTO_OK)
		return v;
	n = (size_t)d->k + d->m;
	if (len < proto_descriptor_len(n, d->hash_len))
		return PROTO_ERR_SHORT;
	if (len != proto_descriptor_len(n, d->hash_len))
		return PROTO_ERR_LENGTH;
	d->hashes = pcur_bytes(&c, n * d->hash_len);
	p = pcur_bytes(&c, PROTO_KEYID_LEN);
	if (p != NULL)
		memcpy(d->key_id, p, PROTO_KEYID_LEN);
	p = pcur_bytes(&c, PROTO_SIG_LEN);
	if (p != NULL)
		memcpy(d->sig, p, PROTO_SIG_LEN);
	if (c.err || pcur_left(&c) != 0)
		return PROTO_ERR_LENGTH;
	d->signed_body = buf + PROTO_HDR_LEN;
	d->signed_len = len - PROTO_HDR_LEN - SIG_TRAILER_LEN;
	return PROTO_OK;
}

enum proto_verdict
proto_heartbeat_decode(const uint8_t *buf, size_t len,
    struct proto_heartbeat *h)
{
	struct pcur c;
	enum proto_verdict v;
	const uint8_t *p;
	uint32_t reserved32;
	uint64_t reserved64;

	v = hdr_expect(buf, len, &h->hdr, PROTO_T_HEARTBEAT);
	if (v != PROTO_OK)
		return v;
	if (len < PROTO_HB_LEN)
		return PROTO_ERR_SHORT;
	if (len != PROTO_HB_LEN)
		return PROTO_ERR_LENGTH;
	pcur_init(&c, buf + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	h->sent_ns = pcur_u64(&c);
	h->transfer = pcur_u64(&c);
	h->interval_ms = pcur_u32(&c);
	reserved32 = pcur_u32(&c);
	reserved64 = pcur_u64(&c);
	p = pcur_bytes(&c, PROTO_KEYID_LEN);
	if (p != NULL)
		memcpy(h->key_id, p, PROTO_KEYID_LEN);
	p = pcur_bytes(&c, PROTO_SIG_LEN);
	if (p != NULL)
		memcpy(h->sig, p, PROTO_SIG_LEN);
	if (c.err || pcur_left(&c) != 0)
		return PROTO_ERR_LENGTH;
	if (reserved32 != 0 || reserved64 != 0)
		return PROTO_ERR_RESERVED;
	if (h->interval_ms == 0 || h->interval_ms > 3600000)
		return PROTO_ERR_PARAM;
	h->signed_body = buf + HB_SIGNED_OFF;
	h->signed_len = HB_SIGNED_END - HB_SIGNED_OFF;
	return PROTO_OK;
}

size_t
proto_sig_message(uint8_t *out, size_t cap, const char *context,
    const uint8_t *body, size_t body_len)
{
	size_t clen = strlen(context);

	if (clen >= PROTO_SIG_CONTEXT_LEN || cap < PROTO_SIG_CONTEXT_LEN ||
	    cap - PROTO_SIG_CONTEXT_LEN < body_len)
		return 0;
	memset(out, 0, PROTO_SIG_CONTEXT_LEN);
	memcpy(out, context, clen);
	memcpy(out + PROTO_SIG_CONTEXT_LEN, body, body_len);
	return PROTO_SIG_CONTEXT_LEN + body_len;
}

void
proto_hdr_encode(uint8_t buf[PROTO_HDR_LEN], uint8_t type, uint64_t session,
    uint64_t seq)
{
	struct pwr w;

	pwr_init(&w, buf, PROTO_HDR_LEN);
	pwr_u32(&w, PROTO_MAGIC);
	pwr_u8(&w, PROTO_VERSION);
	pwr_u8(&w, type);
	pwr_u8(&w, 0);
	pwr_u8(&w, 0);
	pwr_u64(&w, session);
	pwr_u64(&w, seq);
}

void
proto_hdr_set_seq(uint8_t *buf, uint64_t seq)
{
	struct pwr w;

	pwr_init(&w, buf + 16, 8);
	pwr_u64(&w, seq);
}

size_t
proto_symbol_encode_hdr(uint8_t *buf, size_t cap, const struct proto_symbol *s)
{
	struct pwr w;

	if (s->k == 0 || (unsigned)s->k + s->m > PROTO_MAX_SYMBOLS ||
	    s->index >= (unsigned)s->k + s->m || s->len < PROTO_MIN_SYMBOL ||
	    s->len > PROTO_MAX_SYMBOL || s->id.object >= PROTO_MAX_OBJECTS ||
	    cap < PROTO_SYM_OFF + s->len)
		return 0;
	proto_hdr_encode(buf, PROTO_T_SYMBOL, s->hdr.session, s->hdr.seq);
	pwr_init(&w, buf + PROTO_HDR_LEN, PROTO_SYM_HDR_LEN);
	pwr_u64(&w, s->id.transfer);
	pwr_u32(&w, s->id.object);
	pwr_u32(&w, s->id.chunk);
	pwr_u8(&w, s->index);
	pwr_u8(&w, s->k);
	pwr_u8(&w, s->m);
	pwr_u8(&w, 0);
	return PROTO_SYM_OFF + s->len;
}

size_t
proto_descriptor_encode(uint8_t *buf, size_t cap,
    const struct proto_descriptor *d, const uint8_t *hashes)
{
	struct pwr w;
	size_t n = (size_t)d->k + d->m, len;

	if (descriptor_check(d) != PROTO_OK)
		return 0;
	len = proto_descriptor_len(n, d->hash_len);
	if (len > cap || len > PROTO_MAX_DATAGRAM)
		return 0;
	proto_hdr_encode(buf, PROTO_T_DESCRIPTOR, d->hdr.session, d->hdr.seq);
	pwr_init(&w, buf + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	pwr_u64(&w, d->id.transfer);
	pwr_u32(&w, d->id.object);
	pwr_u32(&w, d->id.chunk);
	pwr_u32(&w, d->object_count);
	pwr_u64(&w, d->transfer_bytes);
	pwr_u64(&w, d->object_size);
	pwr_u32(&w, d->chunk_size);
	pwr_u32(&w, d->plain_len);
	pwr_u32(&w, d->enc_len);
	pwr_u16(&w, d->symbol_size);
	pwr_u8(&w, d->k);
	pwr_u8(&w, d->m);
	pwr_u8(&w, d->codec);
	pwr_u8(&w, d->hash_len);
	pwr_u16(&w, 0);
	pwr_bytes(&w, d->list_sha256, PROTO_SHA256_LEN);
	pwr_bytes(&w, hashes, n * d->hash_len);
	pwr_bytes(&w, d->key_id, PROTO_KEYID_LEN);
	pwr_bytes(&w, d->sig, PROTO_SIG_LEN);
	return w.err ? 0 : len;
}

void
proto_descriptor_set_sig(uint8_t *buf, size_t len,
    const uint8_t key_id[PROTO_KEYID_LEN], const uint8_t sig[PROTO_SIG_LEN])
{
	memcpy(buf + len - SIG_TRAILER_LEN, key_id, PROTO_KEYID_LEN);
	memcpy(buf + len - PROTO_SIG_LEN, sig, PROTO_SIG_LEN);
}

void
proto_signed_body(const uint8_t *buf, size_t len, const uint8_t **body,
    size_t *body_len)
{
	if (len >= PROTO_HB_LEN && buf[5] == PROTO_T_HEARTBEAT) {
		*body = buf + HB_SIGNED_OFF;
		*body_len = HB_SIGNED_END - HB_SIGNED_OFF;
	} else if (len >= PROTO_HDR_LEN + SIG_TRAILER_LEN) {
		*body = buf + PROTO_HDR_LEN;
		*body_len = len - PROTO_HDR_LEN - SIG_TRAILER_LEN;
	} else {
		*body = buf;
		*body_len = 0; /* too short to carry a signature */
	}
}

size_t
proto_heartbeat_encode(uint8_t *buf, size_t cap,
    const struct proto_heartbeat *h)
{
	struct pwr w;

	if (cap < PROTO_HB_LEN || h->interval_ms == 0 ||
	    h->interval_ms > 3600000)
		return 0;
	proto_hdr_encode(buf, PROTO_T_HEARTBEAT, h->hdr.session, h->hdr.seq);
	pwr_init(&w, buf + PROTO_HDR_LEN, PROTO_HB_LEN - PROTO_HDR_LEN);
	pwr_u64(&w, h->sent_ns);
	pwr_u64(&w, h->transfer);
	pwr_u32(&w, h->interval_ms);
	pwr_u32(&w, 0);
	pwr_u64(&w, 0);
	pwr_bytes(&w, h->key_id, PROTO_KEYID_LEN);
	pwr_bytes(&w, h->sig, PROTO_SIG_LEN);
	return w.err ? 0 : PROTO_HB_LEN;
}

void
proto_heartbeat_set_sig(uint8_t *buf, const uint8_t key_id[PROTO_KEYID_LEN],
    const uint8_t sig[PROTO_SIG_LEN])
{
	memcpy(buf + HB_SIGNED_END, key_id, PROTO_KEYID_LEN);
	memcpy(buf + HB_SIGNED_END + PROTO_KEYID_LEN, sig, PROTO_SIG_LEN);
}
