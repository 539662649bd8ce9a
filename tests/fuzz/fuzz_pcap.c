/*
 * libFuzzer harness for capture files (sluice-recv --pcap, link-report,
 * replay): whole files through common/capfile.c, as they read them:
 * libpcap's reader, proto_frame_udp and proto_frame_segment.  Any bytes: read,
 * never crash, never a segment outside the frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/capfile.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct capfile_stats *st;
	struct capfile *c;
	const uint8_t *d;
	char err[256];
	uint64_t ts, n = 0;
	unsigned dport;
	size_t len;
	FILE *f;
	volatile uint8_t sink = 0;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "rb");
	if (f == NULL)
		abort();
	if ((c = capfile_fopen(f, "fuzz", 0, err, sizeof(err))) == NULL)
		return 0;
	while (capfile_next(c, &d, &len, &ts, &dport, err, sizeof(err)) == 1) {
		/* Every datagram lies inside the input and fits a datagram. */
		if (len == 0 || len > PROTO_MAX_DATAGRAM)
			abort();
		sink ^= d[0] ^ d[len - 1];
		n++;
	}
	st = capfile_stats(c);
	if (st->datagrams != n)
		abort();
	capfile_close(c);
	(void)sink;
	return 0;
}
