/*
 * libFuzzer harness for capture files (sluice-recv --pcap): whole files
 * through libpcap's reader and every frame through proto_frame_udp and
 * proto_frame_segment, as receiver/pcapin.c does.  Any bytes: read,
 * never crash, never a segment outside the frame.
 */
#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/frame.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *frame;
	FILE *f;
	pcap_t *p;
	int lt;
	volatile uint8_t sink = 0;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "rb");
	if (f == NULL)
		abort();
	p = pcap_fopen_offline(f, errbuf);
	if (p == NULL) {
		fclose(f);
		return 0;
	}
	lt = pcap_datalink(p);
	while (pcap_next_ex(p, &h, &frame) == 1) {
		const uint8_t *pl;
		size_t len, seg;
		unsigned dport;

		if (proto_frame_udp(lt, frame, h->caplen, h->len, 0, &pl, &len,
		    &dport) != PROTO_FRAME_OK || len == 0)
			continue;
		if (pl < frame || pl + len > frame + h->caplen)
			abort();
		seg = proto_frame_segment(pl, len);
		if (seg == 0 || seg > len)
			abort();
		/* Touch each segment's ends, as assemble would read them. */
		for (; len > 0; pl += seg < len ? seg : len,
		    len -= seg < len ? seg : len)
			sink ^= pl[0] ^ pl[(seg < len ? seg : len) - 1];
	}
	pcap_close(p);
	(void)sink;
	return 0;
}
