/*
 * libFuzzer harness for the wire decoders: every decoder on every input;
 * on success, whatever the decoder points at must lie inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
	if (p < data || p > data + size || n > (size_t)(data + size - p))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_hdr h;
	struct proto_symbol s;
	struct proto_descriptor d;
	struct proto_heartbeat hb;

	(void)proto_hdr_decode(data, size, &h);
	if (proto_symbol_decode(data, size, &s) == PROTO_OK) {
		inside(data, size, s.data, s.len);
		if (s.index >= (unsigned)s.k + s.m)
			abort();
	}
	if (proto_descriptor_decode(data, size, &d) == PROTO_OK) {
		inside(data, size, d.hashes, ((size_t)d.k + d.m) * d.hash_len);
		inside(data, size, d.signed_body, d.signed_len);
		if (d.plain_len > d.chunk_size || d.enc_len >
		    (uint64_t)d.k * d.symbol_size)
			abort();
	}
	if (proto_heartbeat_decode(data, size, &hb) == PROTO_OK)
		inside(data, size, hb.signed_body, hb.signed_len);
	return 0;
}
