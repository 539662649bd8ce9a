/*
 * The link envelope (proto/link.c): seal and open round trips, with and
 * without encryption; every byte of a sealed datagram matters (a flip
 * anywhere is PROTO_ERR_LINK); another key, a v1 datagram, a truncated
 * one and a foreign one are refused; and the test vector of PROTOCOL.md
 * section 3.6 is pinned here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "proto/link.h"
#include "proto/wire.h"

static uint8_t key[PROTO_LINK_KEY_LEN], other[PROTO_LINK_KEY_LEN];

/* A v1 symbol datagram of 24 + 20 + 64 bytes with a fixed payload. */
static size_t
symbol(uint8_t *buf, size_t cap)
{
	struct proto_symbol sy;
	size_t i;

	memset(&sy, 0, sizeof(sy));
	sy.hdr.session = 0x0102030405060708ull;
	sy.hdr.seq = 9;
	sy.id.transfer = 0x1112131415161718ull;
	sy.id.object = 1;
	sy.id.chunk = 2;
	sy.index = 3;
	sy.k = 4;
	sy.m = 2;
	sy.len = 64;
	assert_int_not_equal(proto_symbol_encode_hdr(buf, cap, &sy), 0);
	for (i = 0; i < 64; i++)
		buf[PROTO_SYM_OFF + i] = (uint8_t)i;
	return PROTO_SYM_OFF + 64;
}

static void
test_roundtrip(void **state)
{
	uint8_t buf[256], orig[256];
	size_t len = symbol(buf, sizeof(buf)), sealed, inner;
	int enc;

	(void)state;
	memcpy(orig, buf, len);
	for (enc = 0; enc <= 1; enc++) {
		memcpy(buf, orig, len);
		sealed = proto_link_seal(key, buf, len, sizeof(buf), enc);
		assert_int_equal(sealed, len + PROTO_LINK_TAG_LEN);
		assert_int_equal(buf[4], PROTO_LINK_VERSION);
		assert_int_equal(buf[6], enc ? PROTO_LINK_F_ENCRYPTED : 0);
		if (enc)
			assert_memory_not_equal(buf + PROTO_HDR_LEN,
			    orig + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
		assert_int_equal(proto_link_open(key, buf, sealed, &inner),
		    PROTO_OK);
		assert_int_equal(inner, len);
		assert_memory_equal(buf, orig, len);
	}
}

/* For reports: the header back without the key; the body only when not
 * encrypted; a v1 or foreign datagram is not unwrapped. */
static void
test_unwrap(void **state)
{
	uint8_t buf[256], orig[256];
	size_t len = symbol(buf, sizeof(buf)), sealed, inner;
	struct proto_hdr h;
	bool encrypted;
	int enc;

	(void)state;
	memcpy(orig, buf, len);
	assert_int_equal(proto_link_unwrap(buf, len, &inner, &encrypted),
	    PROTO_ERR_LINK);
	for (enc = 0; enc <= 1; enc++) {
		memcpy(buf, orig, len);
		sealed = proto_link_seal(key, buf, len, sizeof(buf), enc);
		assert_int_equal(proto_link_unwrap(buf, sealed, &inner,
		    &encrypted), PROTO_OK);
		assert_int_equal(inner, len);
		assert_int_equal(encrypted, enc);
		assert_int_equal(proto_hdr_decode(buf, inner, &h), PROTO_OK);
		assert_true(h.session == 0x0102030405060708ull && h.seq == 9);
		if (!enc)
			assert_memory_equal(buf, orig, len);
	}
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(proto_link_unwrap(buf, 100, &inner, &encrypted),
	    PROTO_ERR_LINK);
	assert_int_equal(proto_link_unwrap(buf, 10, &inner, &encrypted),
	    PROTO_ERR_LINK);
}

/* Any single bit flipped anywhere: refused. */
static void
test_every_bit(void **state)
{
	uint8_t buf[256], sealed_copy[256];
	size_t len = symbol(buf, sizeof(buf)), sealed, inner, bitpos;
	int enc;

	(void)state;
	for (enc = 0; enc <= 1; enc++) {
		len = symbol(buf, sizeof(buf));
		sealed = proto_link_seal(key, buf, len, sizeof(buf), enc);
		memcpy(sealed_copy, buf, sealed);
		for (bitpos = 0; bitpos < sealed * 8; bitpos++) {
			memcpy(buf, sealed_copy, sealed);
			buf[bitpos / 8] ^= (uint8_t)(1u << (bitpos % 8));
			assert_int_equal(proto_link_open(key, buf, sealed,
			    &inner), PROTO_ERR_LINK);
		}
	}
}

static void
test_refusals(void **state)
{
	uint8_t buf[256], copy[256];
	size_t len = symbol(buf, sizeof(buf)), sealed, inner;

	(void)state;
	/* A plain v1 datagram is not sealed. */
	assert_int_equal(proto_link_open(key, buf, len, &inner),
	    PROTO_ERR_LINK);
	sealed = proto_link_seal(key, buf, len, sizeof(buf), false);
	memcpy(copy, buf, sealed);
	/* Another key. */
	assert_int_equal(proto_link_open(other, buf, sealed, &inner),
	    PROTO_ERR_LINK);
	/* Truncated, extended, too short for a tag. */
	memcpy(buf, copy, sealed);
	assert_int_equal(proto_link_open(key, buf, sealed - 1, &inner),
	    PROTO_ERR_LINK);
	buf[sealed] = 0;
	assert_int_equal(proto_link_open(key, buf, sealed + 1, &inner),
	    PROTO_ERR_LINK);
	assert_int_equal(proto_link_open(key, buf, PROTO_HDR_LEN + 15,
	    &inner), PROTO_ERR_LINK);
	/* Unknown flag bits. */
	memcpy(buf, copy, sealed);
	buf[6] |= 0x80;
	assert_int_equal(proto_link_open(key, buf, sealed, &inner),
	    PROTO_ERR_LINK);
	/* No room to seal; not v1; already sealed. */
	len = symbol(buf, sizeof(buf));
	assert_int_equal(proto_link_seal(key, buf, len, len + 15, false), 0);
	memcpy(buf, copy, sealed);
	assert_int_equal(proto_link_seal(key, buf, sealed, sizeof(buf),
	    false), 0);
}

/* PROTOCOL.md 3.6: key 00 01 .. 1f, the symbol above, not encrypted. */
static void
test_vector(void **state)
{
	static const char want[] = "f09581333eb2a92a2ff80a6fdf510591";
	uint8_t buf[256], k[PROTO_LINK_KEY_LEN];
	char hex[2 * PROTO_LINK_TAG_LEN + 1];
	size_t len = symbol(buf, sizeof(buf)), sealed, i;

	(void)state;
	for (i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)i;
	sealed = proto_link_seal(k, buf, len, sizeof(buf), false);
	util_hex(hex, buf + sealed - PROTO_LINK_TAG_LEN, PROTO_LINK_TAG_LEN);
	printf("tag %s\n", hex);
	assert_string_equal(hex, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_every_bit),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_unwrap),
		cmocka_unit_test(test_vector),
	};

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
