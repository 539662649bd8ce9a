/*
 * Wire format v1: round trips, and every rejection path of every decoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/wire.h"

static uint8_t hashes[PROTO_MAX_SYMBOLS * PROTO_MAX_HASH_LEN];

static struct proto_descriptor
good_desc(void)
{
	struct proto_descriptor d;

	memset(&d, 0, sizeof(d));
	d.hdr.session = 0x1122334455667788ull;
	d.hdr.seq = 42;
	d.id.transfer = 0xabcdef0123456789ull;
	d.id.object = 3;
	d.id.chunk = 1;
	d.object_count = 5;
	d.transfer_bytes = 1000000;
	d.object_size = 300000;
	d.chunk_size = 181356;        /* 127 * 1428 */
	d.plain_len = 300000 - 181356; /* the last chunk */
	d.enc_len = d.plain_len;
	d.symbol_size = 1428;
	d.k = (uint8_t)((d.enc_len + 1427) / 1428);
	d.m = 24;
	d.codec = 0;
	d.hash_len = 8;
	memset(d.list_sha256, 0x5a, 32);
	memset(d.key_id, 0x11, 8);
	memset(d.sig, 0x22, 64);
	return d;
}

static size_t
encode_desc(uint8_t *buf, size_t cap, const struct proto_descriptor *d)
{
	return proto_descriptor_encode(buf, cap, d, hashes);
}

static void
test_header(void **state)
{
	uint8_t buf[PROTO_HDR_LEN];
	struct proto_hdr h;
	size_t i;

	proto_hdr_encode(buf, PROTO_T_SYMBOL, 7, 9);
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h), PROTO_OK);
	assert_int_equal(h.session, 7);
	assert_int_equal(h.seq, 9);
	proto_hdr_set_seq(buf, 10);
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h), PROTO_OK);
	assert_int_equal(h.seq, 10);
	for (i = 4; i < sizeof(buf); i++)
		assert_int_equal(proto_hdr_decode(buf, i, &h), PROTO_ERR_SHORT);
	assert_int_equal(proto_hdr_decode(buf, 0, &h), PROTO_ERR_MAGIC);
	buf[0] ^= 1;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_MAGIC);
	buf[0] ^= 1;
	buf[4] = 2;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_VERSION);
	buf[4] = 1;
	buf[5] = 0;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_TYPE);
	buf[5] = 4;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_TYPE);
	buf[5] = 1;
	buf[6] = 1;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_FLAGS);
	buf[6] = 0;
	buf[7] = 1;
	assert_int_equal(proto_hdr_decode(buf, sizeof(buf), &h),
	    PROTO_ERR_RESERVED);
	assert_string_equal(proto_verdict_name(PROTO_ERR_RESERVED), "reserved");
	assert_string_equal(proto_verdict_name(99), "unknown");
}

static void
test_symbol(void **state)
{
	uint8_t buf[PROTO_SYM_OFF + 100];
	struct proto_symbol s, out;
	size_t len, i;

	memset(&s, 0, sizeof(s));
	s.hdr.session = 1;
	s.hdr.seq = 2;
	s.id.transfer = 3;
	s.id.object = 4;
	s.id.chunk = 5;
	s.index = 9;
	s.k = 8;
	s.m = 2;
	s.len = 100;
	len = proto_symbol_encode_hdr(buf, sizeof(buf), &s);
	assert_int_equal(len, sizeof(buf));
	memset(buf + PROTO_SYM_OFF, 0x77, 100);
	assert_int_equal(proto_symbol_decode(buf, len, &out), PROTO_OK);
	assert_int_equal(out.id.transfer, 3);
	assert_int_equal(out.id.object, 4);
	assert_int_equal(out.id.chunk, 5);
	assert_int_equal(out.index, 9);
	assert_int_equal(out.len, 100);
	assert_ptr_equal(out.data, buf + PROTO_SYM_OFF);
	/* Every truncation below the minimum. */
	for (i = PROTO_HDR_LEN; i < PROTO_SYM_OFF + PROTO_MIN_SYMBOL; i++)
		assert_int_equal(proto_symbol_decode(buf, i, &out),
		    PROTO_ERR_SHORT);
	buf[43] = 1;
	assert_int_equal(proto_symbol_decode(buf, len, &out),
	    PROTO_ERR_RESERVED);
	buf[43] = 0;
	buf[41] = 0; /* k = 0 */
	assert_int_equal(proto_symbol_decode(buf, len, &out), PROTO_ERR_PARAM);
	buf[41] = 200;
	buf[42] = 56; /* k + m = 256 */
	assert_int_equal(proto_symbol_decode(buf, len, &out), PROTO_ERR_PARAM);
	buf[41] = 8;
	buf[42] = 1;  /* index 9 >= k + m */
	assert_int_equal(proto_symbol_decode(buf, len, &out), PROTO_ERR_PARAM);
	buf[42] = 2;
	buf[32] = 0xff; /* object >= PROTO_MAX_OBJECTS */
	assert_int_equal(proto_symbol_decode(buf, len, &out),
	    PROTO_ERR_GEOMETRY);
	buf[32] = 0;
	buf[5] = PROTO_T_DESCRIPTOR;
	assert_int_equal(proto_symbol_decode(buf, len, &out), PROTO_ERR_TYPE);
	/* Encoder refuses what the decoder would. */
	s.index = 10;
	assert_int_equal(proto_symbol_encode_hdr(buf, sizeof(buf), &s), 0);
	s.index = 0;
	s.len = 101;
	assert_int_equal(proto_symbol_encode_hdr(buf, sizeof(buf), &s), 0);
	s.len = 100;
	s.id.object = PROTO_MAX_OBJECTS;
	assert_int_equal(proto_symbol_encode_hdr(buf, sizeof(buf), &s), 0);
	s.id.object = PROTO_MAX_OBJECTS - 1;
	assert_int_equal(proto_symbol_encode_hdr(buf, sizeof(buf), &s),
	    sizeof(buf));
}

static void
test_descriptor_roundtrip(void **state)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct proto_descriptor d = good_desc(), out;
	size_t len, i;
	const uint8_t *body;
	size_t body_len;

	for (i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)i;
	len = encode_desc(buf, sizeof(buf), &d);
	assert_int_equal(len, proto_descriptor_len(d.k + d.m, 8));
	assert_int_equal(proto_descriptor_decode(buf, len, &out), PROTO_OK);
	assert_int_equal(out.id.transfer, d.id.transfer);
	assert_int_equal(out.plain_len, d.plain_len);
	assert_int_equal(out.k, d.k);
	assert_memory_equal(out.hashes, hashes, (d.k + d.m) * 8u);
	assert_memory_equal(out.key_id, d.key_id, 8);
	assert_memory_equal(out.sig, d.sig, 64);
	proto_signed_body(buf, len, &body, &body_len);
	assert_ptr_equal(body, out.signed_body);
	assert_int_equal(body_len, out.signed_len);
	assert_int_equal(body_len, len - PROTO_HDR_LEN - 72);
	/* The signature covers everything but header, key id and itself. */
	memset(d.sig, 0x33, 64);
	proto_descriptor_set_sig(buf, len, d.key_id, d.sig);
	assert_int_equal(proto_descriptor_decode(buf, len, &out), PROTO_OK);
	assert_memory_equal(out.sig, d.sig, 64);

	/* Compressed chunk, 32-byte hashes. */
	d = good_desc();
	d.codec = 1;
	d.enc_len = 5000;
	d.k = 4;
	d.hash_len = 32;
	len = encode_desc(buf, sizeof(buf), &d);
	assert_true(len > 0);
	assert_int_equal(proto_descriptor_decode(buf, len, &out), PROTO_OK);
	for (i = 0; i < len; i++)
		assert_int_not_equal(proto_descriptor_decode(buf, i, &out),
		    PROTO_OK);
	assert_int_equal(proto_descriptor_decode(buf, len - 1, &out),
	    PROTO_ERR_SHORT);
	buf[len] = 0;
	assert_int_equal(proto_descriptor_decode(buf, len + 1, &out),
	    PROTO_ERR_LENGTH);
}

/* Each geometry rule, broken one at a time, encoder and decoder alike. */
static void
test_descriptor_rejections(void **state)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct proto_descriptor d, out;
	size_t len;
	int i;

	static const struct {
		int which;
		enum proto_verdict v;
	} cases[] = {
		{ 0, PROTO_ERR_PARAM },    /* k = 0 */
		{ 1, PROTO_ERR_PARAM },    /* k + m > 255 */
		{ 2, PROTO_ERR_PARAM },    /* symbol size too small */
		{ 3, PROTO_ERR_PARAM },    /* hash_len 7 */
		{ 4, PROTO_ERR_PARAM },    /* hash_len 33 */
		{ 5, PROTO_ERR_PARAM },    /* codec 2 */
		{ 6, PROTO_ERR_GEOMETRY }, /* object_count 0 */
		{ 7, PROTO_ERR_GEOMETRY }, /* object >= object_count */
		{ 8, PROTO_ERR_GEOMETRY }, /* object_count > max */
		{ 9, PROTO_ERR_GEOMETRY }, /* chunk_size 0 */
		{ 10, PROTO_ERR_GEOMETRY }, /* chunk_size > max */
		{ 11, PROTO_ERR_GEOMETRY }, /* object_size 0 */
		{ 12, PROTO_ERR_GEOMETRY }, /* object_size > transfer_bytes */
		{ 13, PROTO_ERR_GEOMETRY }, /* plain_len not the chunk's */
		{ 14, PROTO_ERR_GEOMETRY }, /* chunk beyond the object */
		{ 15, PROTO_ERR_GEOMETRY }, /* k not minimal */
		{ 16, PROTO_ERR_GEOMETRY }, /* enc_len > k * S */
		{ 17, PROTO_ERR_GEOMETRY }, /* stored, enc_len != plain_len */
		{ 18, PROTO_ERR_GEOMETRY }, /* deflate, enc_len >= plain_len */
		{ 19, PROTO_ERR_GEOMETRY }, /* enc_len 0 */
	};

	for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
		struct proto_descriptor g = good_desc();

		d = g;
		switch (cases[i].which) {
		case 0: d.k = 0; break;
		case 1: d.m = (uint8_t)(256 - d.k); break;
		case 2: d.symbol_size = PROTO_MIN_SYMBOL - 1; break;
		case 3: d.hash_len = 7; break;
		case 4: d.hash_len = 33; break;
		case 5: d.codec = 2; break;
		case 6: d.object_count = 0; break;
		case 7: d.id.object = d.object_count; break;
		case 8: d.object_count = PROTO_MAX_OBJECTS + 1; break;
		case 9: d.chunk_size = 0; break;
		case 10: d.chunk_size = PROTO_MAX_CHUNK + 1; break;
		case 11: d.object_size = 0; break;
		case 12: d.transfer_bytes = d.object_size - 1; break;
		case 13: d.plain_len = d.chunk_size; break;
		case 14: d.id.chunk = 2; break;
		case 15: d.k++; break;
		case 16: d.k--; break;
		case 17: d.enc_len--; d.k = (uint8_t)((d.enc_len + 1427) / 1428);
			break;
		case 18: d.codec = 1; break;
		case 19: d.enc_len = 0; break;
		}
		/* The encoder refuses it... */
		assert_int_equal(encode_desc(buf, sizeof(buf), &d), 0);
		/* ...and so does the decoder, given the raw bytes. */
		len = encode_desc(buf, sizeof(buf), &g);
		assert_true(len > 0);
		{
			uint8_t *p = buf + PROTO_HDR_LEN;
			struct proto_descriptor *x = &d;

#define PUT32(off, v) do { p[off] = (uint8_t)((v) >> 24); \
    p[off + 1] = (uint8_t)((v) >> 16); p[off + 2] = (uint8_t)((v) >> 8); \
    p[off + 3] = (uint8_t)(v); } while (0)
#define PUT64(off, v) do { PUT32(off, (uint32_t)((uint64_t)(v) >> 32)); \
    PUT32((off) + 4, (uint32_t)(v)); } while (0)
			PUT32(8, x->id.object);
			PUT32(12, x->id.chunk);
			PUT32(16, x->object_count);
			PUT64(20, x->transfer_bytes);
			PUT64(28, x->object_size);
			PUT32(36, x->chunk_size);
			PUT32(40, x->plain_len);
			PUT32(44, x->enc_len);
			p[48] = (uint8_t)(x->symbol_size >> 8);
			p[49] = (uint8_t)x->symbol_size;
			p[50] = x->k;
			p[51] = x->m;
			p[52] = x->codec;
			p[53] = x->hash_len;
		}
		if (proto_descriptor_decode(buf, len, &out) != cases[i].v)
			fail_msg("case %d: got %s", cases[i].which,
			    proto_verdict_name(proto_descriptor_decode(buf,
			    len, &out)));
	}
	/* Reserved field. */
	d = good_desc();
	len = encode_desc(buf, sizeof(buf), &d);
	buf[PROTO_HDR_LEN + 55] = 1;
	assert_int_equal(proto_descriptor_decode(buf, len, &out),
	    PROTO_ERR_RESERVED);
}

static void
test_heartbeat(void **state)
{
	uint8_t buf[PROTO_HB_LEN + 1];
	struct proto_heartbeat h, out;
	const uint8_t *body;
	size_t len, body_len, i;

	memset(&h, 0, sizeof(h));
	h.hdr.session = 5;
	h.hdr.seq = 6;
	h.sent_ns = 123456789;
	h.transfer = 77;
	h.interval_ms = 1000;
	len = proto_heartbeat_encode(buf, sizeof(buf), &h);
	assert_int_equal(len, PROTO_HB_LEN);
	memset(h.key_id, 1, 8);
	memset(h.sig, 2, 64);
	proto_heartbeat_set_sig(buf, h.key_id, h.sig);
	assert_int_equal(proto_heartbeat_decode(buf, len, &out), PROTO_OK);
	assert_int_equal(out.sent_ns, 123456789);
	assert_int_equal(out.transfer, 77);
	assert_memory_equal(out.sig, h.sig, 64);
	/* The signature covers session and seq too. */
	proto_signed_body(buf, len, &body, &body_len);
	assert_ptr_equal(body, buf + 8);
	assert_int_equal(body_len, 48);
	for (i = PROTO_HDR_LEN; i < PROTO_HB_LEN; i++)
		assert_int_equal(proto_heartbeat_decode(buf, i, &out),
		    PROTO_ERR_SHORT);
	assert_int_equal(proto_heartbeat_decode(buf, len + 1, &out),
	    PROTO_ERR_LENGTH);
	buf[44] = 1;
	assert_int_equal(proto_heartbeat_decode(buf, len, &out),
	    PROTO_ERR_RESERVED);
	buf[44] = 0;
	buf[55] = 1;
	assert_int_equal(proto_heartbeat_decode(buf, len, &out),
	    PROTO_ERR_RESERVED);
	buf[55] = 0;
	memset(buf + 40, 0, 4);
	assert_int_equal(proto_heartbeat_decode(buf, len, &out),
	    PROTO_ERR_PARAM);
	h.interval_ms = 0;
	assert_int_equal(proto_heartbeat_encode(buf, sizeof(buf), &h), 0);
}

static void
test_chunk_math(void **state)
{
	assert_int_equal(proto_chunk_count(0, 100), 0);
	assert_int_equal(proto_chunk_count(1, 100), 1);
	assert_int_equal(proto_chunk_count(99, 100), 1);
	assert_int_equal(proto_chunk_count(100, 100), 1);
	assert_int_equal(proto_chunk_count(101, 100), 2);
	assert_int_equal(proto_chunk_count(5, 0), 0);
	assert_int_equal(proto_chunk_plain_len(101, 100, 0), 100);
	assert_int_equal(proto_chunk_plain_len(101, 100, 1), 1);
	assert_int_equal(proto_chunk_plain_len(101, 100, 2), 0);
	assert_int_equal(proto_chunk_plain_len(100, 100, 0), 100);
	assert_int_equal(proto_chunk_plain_len(0, 100, 0), 0);
}

static void
test_sig_message(void **state)
{
	uint8_t out[64], body[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t n;

	n = proto_sig_message(out, sizeof(out), PROTO_DESC_SIG_CONTEXT, body,
	    sizeof(body));
	assert_int_equal(n, PROTO_SIG_CONTEXT_LEN + 8);
	assert_memory_equal(out, PROTO_DESC_SIG_CONTEXT,
	    sizeof(PROTO_DESC_SIG_CONTEXT));
	assert_int_equal(out[PROTO_SIG_CONTEXT_LEN - 1], 0);
	assert_memory_equal(out + PROTO_SIG_CONTEXT_LEN, body, 8);
	assert_int_equal(proto_sig_message(out, 30, PROTO_DESC_SIG_CONTEXT,
	    body, sizeof(body)), 0);
	assert_int_equal(proto_sig_message(out, sizeof(out),
	    "a context far too long for the field", body, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_symbol),
		cmocka_unit_test(test_descriptor_roundtrip),
		cmocka_unit_test(test_descriptor_rejections),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_chunk_math),
		cmocka_unit_test(test_sig_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
