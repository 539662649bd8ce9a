/*
 * linkbench: what the link envelope costs (make bench).  Per datagram of
 * 1472 and 8972 bytes: opening a forged one (the receiver's cost to drop
 * junk as link_auth), sealing and opening a genuine one with and without
 * encryption; and the same as CPU seconds per GB of datagrams.  One core,
 * no I/O: the kernel's cost of receiving a datagram comes on top (the
 * raw-UDP baseline of bench.sh measures that).
 */
#include "common/util.h"
#include "proto/link.h"
#include "proto/wire.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static double
per_op_ns(uint64_t t0, unsigned n)
{
	return (double)(util_now_ns() - t0) / n;
}

int
main(void)
{
	static uint8_t buf[65536], copy[65536];
	static const size_t sizes[] = { 1472, 8972 };
	uint8_t key[PROTO_LINK_KEY_LEN];
	unsigned i, s, n = 200000;

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	printf("%-6s %-14s %-12s %-12s %-12s %-12s\n", "bytes",
	    "forged ns", "seal ns", "open ns", "seal+enc ns", "open+enc ns");
	for (s = 0; s < 2; s++) {
		size_t len = sizes[s], inner, inlen = len - PROTO_LINK_TAG_LEN;
		double forged, seal[2], open[2];
		uint64_t t0;
		int enc;

		randombytes_buf(buf, len);
		/* Forged: right magic and version, random tag. */
		buf[0] = 0x53, buf[1] = 0x4c, buf[2] = 0x55, buf[3] = 0x43;
		buf[4] = PROTO_LINK_VERSION;
		buf[6] = 0;
		t0 = util_now_ns();
		for (i = 0; i < n; i++)
			if (proto_link_open(key, buf, len, &inner) == PROTO_OK)
				return 1;
		forged = per_op_ns(t0, n);
		for (enc = 0; enc <= 1; enc++) {
			memset(copy, 0, inlen);
			copy[0] = 0x53, copy[1] = 0x4c, copy[2] = 0x55;
			copy[3] = 0x43, copy[4] = PROTO_VERSION, copy[5] = 1;
			t0 = util_now_ns();
			for (i = 0; i < n; i++) {
				copy[4] = PROTO_VERSION;
				copy[6] = 0;
				(void)proto_link_seal(key, copy, inlen,
				    sizeof(copy), enc);
			}
			seal[enc] = per_op_ns(t0, n);
			memcpy(buf, copy, len);
			t0 = util_now_ns();
			for (i = 0; i < n; i++) {
				memcpy(copy, buf, PROTO_HDR_LEN);
				if (proto_link_open(key, copy, len, &inner) !=
				    PROTO_OK && !enc)
					return 1;
			}
			open[enc] = per_op_ns(t0, n);
		}
		printf("%-6zu %-14.0f %-12.0f %-12.0f %-12.0f %-12.0f\n", len,
		    forged, seal[0], open[0], seal[1], open[1]);
		printf("%-6s CPU s/GB: seal %.2f, open %.2f; encrypted: seal "
		    "%.2f, open %.2f\n", "", seal[0] / len, open[0] / len,
		    seal[1] / len, open[1] / len);
	}
	return 0;
}
