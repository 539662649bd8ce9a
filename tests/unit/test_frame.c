/*
 * Captured frames (proto/frame.c): the corpus captures of every link type
 * the reader knows (Ethernet with a VLAN tag, Linux cooked v1 and v2,
 * BSD loopback with IPv6, raw IP, pcapng) give their UDP datagrams; a
 * fragment, a frame cut by the snap length and another port are refused,
 * and so is every malformed IPv6 and link header;
 * a loopback capture's GSO super-packets split into whole datagrams of
 * consecutive sequence numbers; and a payload with Sluice headers of
 * another session (or out of sequence) inside it is not split.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pcap/pcap.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/wire.h"

#define CORPUS "tests/fuzz/corpus/pcap/"

struct tally {
	unsigned v[PROTO_FRAME_VERDICT_COUNT];
	unsigned datagrams;
};

static void
read_capture(const char *name, unsigned port, struct tally *t)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *f;
	pcap_t *p;

	memset(t, 0, sizeof(*t));
	p = pcap_open_offline(name, errbuf);
	assert_non_null(p);
	while (pcap_next_ex(p, &h, &f) == 1) {
		const uint8_t *pl;
		size_t len, seg;
		unsigned dport;
		enum proto_frame_verdict v;

		v = proto_frame_udp(pcap_datalink(p), f, h->caplen, h->len,
		    port, &pl, &len, &dport);
		t->v[v]++;
		if (v != PROTO_FRAME_OK)
			continue;
		assert_int_equal(dport, 29999);
		seg = proto_frame_segment(pl, len);
		assert_true(seg > 0 && seg <= len);
		for (; len > 0; pl += seg, len -= seg) {
			struct proto_hdr hdr;

			assert_true(len >= seg);
			assert_int_equal(proto_hdr_decode(pl, seg, &hdr),
			    PROTO_OK);
			t->datagrams++;
		}
	}
	pcap_close(p);
}

static void
test_link_types(void **state)
{
	static const char *const names[] = {
		"vlan_ipv4.pcap", "sll_ipv4.pcap", "sll2_ipv6_hbh.pcap",
		"null_ipv6.pcap", "eth.pcapng",
	};
	struct tally t;
	char path[256];
	unsigned i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), CORPUS "%s", names[i]);
		read_capture(path, 29999, &t);
		assert_int_equal(t.v[PROTO_FRAME_OK], 6);
		/* The fourth frame is a GSO run of two. */
		assert_int_equal(t.datagrams, 7);
		read_capture(path, 29998, &t);
		assert_int_equal(t.v[PROTO_FRAME_OTHER], 6);
	}
}

static void
test_fragment_truncated(void **state)
{
	struct tally t;

	read_capture(CORPUS "raw_frag_trunc.pcap", 29999, &t);
	assert_int_equal(t.v[PROTO_FRAME_OK], 0);
	assert_int_equal(t.v[PROTO_FRAME_TRUNCATED], 2);
}

static void
test_gso_split(void **state)
{
	struct tally t;

	/* 15 frames: 2 heartbeats, 8 descriptors and 5 GSO runs of two
	 * 1472-byte symbols (tcpdump -r shows UDP lengths of 2944). */
	read_capture(CORPUS "lo_gso.pcap", 29999, &t);
	assert_int_equal(t.v[PROTO_FRAME_OK], 15);
	assert_int_equal(t.datagrams, 20);
}

/* An IPv4 fragment and a UDP datagram built here. */
static size_t
ipv4_udp(uint8_t *f, const uint8_t *pl, size_t len, unsigned frag)
{
	size_t tot = 20 + 8 + len;

	memset(f, 0, 28);
	f[0] = 0x45;
	f[2] = (uint8_t)(tot >> 8);
	f[3] = (uint8_t)tot;
	f[6] = (uint8_t)(frag >> 8);
	f[7] = (uint8_t)frag;
	f[8] = 64;
	f[9] = 17;
	f[22] = 29999 >> 8;
	f[23] = 29999 & 0xff;
	f[24] = (uint8_t)((8 + len) >> 8);
	f[25] = (uint8_t)(8 + len);
	memcpy(f + 28, pl, len);
	return tot;
}

static void
hdr(uint8_t *p, uint64_t session, uint64_t seq)
{
	proto_hdr_encode(p, PROTO_T_SYMBOL, session, seq);
}

static void
test_raw_frames(void **state)
{
	static uint8_t pl[3000], f[3100];
	const uint8_t *out;
	size_t len, n;
	unsigned dport;

	memset(pl, 0xab, sizeof(pl));
	hdr(pl, 7, 100);
	n = ipv4_udp(f, pl, 1000, 0);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_OK);
	assert_int_equal(len, 1000);
	assert_ptr_equal(out, f + 28);
	/* More fragments, then an offset. */
	n = ipv4_udp(f, pl, 1000, 0x2000);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_FRAGMENT);
	n = ipv4_udp(f, pl, 1000, 0x0010);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_FRAGMENT);
	/* A UDP length beyond the IP packet. */
	n = ipv4_udp(f, pl, 1000, 0);
	f[24] = 0xff;
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_MALFORMED);
	/* Captured short of the wire length. */
	n = ipv4_udp(f, pl, 1000, 0);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n - 1, n, 29999,
	    &out, &len, &dport), PROTO_FRAME_TRUNCATED);
	/* An unknown link type. */
	assert_int_equal(proto_frame_udp(9999, f, n, n, 29999, &out, &len,
	    &dport), PROTO_FRAME_LINKTYPE);
}

/* An IPv6 packet with one extension header ext (or none: ext < 0)
 * before a UDP datagram of len bytes. */
static size_t
ipv6_udp(uint8_t *f, int ext, const uint8_t *pl, size_t len)
{
	size_t off = 40, plen;

	memset(f, 0, 48 + 8);
	f[0] = 0x60;
	f[6] = ext < 0 ? 17 : (uint8_t)ext;
	f[7] = 64;
	if (ext >= 0) {
		f[40] = 17;     /* next header */
		f[41] = 0;      /* 8 bytes */
		off += 8;
	}
	f[off + 2] = 29999 >> 8;
	f[off + 3] = 29999 & 0xff;
	f[off + 4] = (uint8_t)((8 + len) >> 8);
	f[off + 5] = (uint8_t)(8 + len);
	memcpy(f + off + 8, pl, len);
	plen = off - 40 + 8 + len;
	f[4] = (uint8_t)(plen >> 8);
	f[5] = (uint8_t)plen;
	return 40 + plen;
}

static void
test_ipv6_frames(void **state)
{
	static uint8_t pl[200], f[400];
	const uint8_t *out;
	size_t len, n;
	unsigned dport;

	memset(pl, 0x11, sizeof(pl));
	n = ipv6_udp(f, -1, pl, 100);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_OK);
	assert_int_equal(len, 100);
	/* Hop-by-hop, routing and destination options are walked. */
	n = ipv6_udp(f, 0, pl, 100);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_OK);
	assert_ptr_equal(out, f + 56);
	n = ipv6_udp(f, 60, pl, 100);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_OK);
	/* A fragment header. */
	n = ipv6_udp(f, 44, pl, 100);
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_FRAGMENT);
	/* An extension header longer than the packet. */
	n = ipv6_udp(f, 43, pl, 100);
	f[41] = 200;
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_MALFORMED);
	/* TCP, a payload length of 0 (a jumbogram), one beyond the frame. */
	n = ipv6_udp(f, -1, pl, 100);
	f[6] = 6;
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_OTHER);
	n = ipv6_udp(f, -1, pl, 100);
	f[4] = f[5] = 0;
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_MALFORMED);
	n = ipv6_udp(f, -1, pl, 100);
	f[5]++;
	assert_int_equal(proto_frame_udp(PROTO_LT_RAW, f, n, n, 29999, &out,
	    &len, &dport), PROTO_FRAME_MALFORMED);
	/* Link headers shorter than themselves. */
	assert_int_equal(proto_frame_udp(PROTO_LT_ETHERNET, f, 10, 10, 29999,
	    &out, &len, &dport), PROTO_FRAME_MALFORMED);
	assert_int_equal(proto_frame_udp(PROTO_LT_LINUX_SLL2, f, 19, 19, 29999,
	    &out, &len, &dport), PROTO_FRAME_MALFORMED);
}

static void
test_segment(void **state)
{
	static uint8_t p[3 * 500];

	memset(p, 0x5a, sizeof(p));
	/* Three datagrams of one session in sequence: split at 500. */
	hdr(p, 9, 40);
	hdr(p + 500, 9, 41);
	hdr(p + 1000, 9, 42);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), 500);
	/* The last one shorter, as GSO allows. */
	assert_int_equal(proto_frame_segment(p, 1200), 500);
	/* Headers of another session inside a payload: one datagram. */
	hdr(p + 500, 8, 41);
	hdr(p + 1000, 8, 42);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), sizeof(p));
	/* Gaps, as a lossy relay forwards a run: still split. */
	hdr(p + 500, 9, 43);
	hdr(p + 1000, 9, 60);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), 500);
	/* Backwards, repeated, or too far ahead: one datagram. */
	hdr(p + 500, 9, 41);
	hdr(p + 1000, 9, 40);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), sizeof(p));
	hdr(p + 1000, 9, 39);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), sizeof(p));
	hdr(p + 1000, 9, 41 + PROTO_FRAME_SEQ_GAP + 1);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), sizeof(p));
	/* Not ours at all, and empty. */
	memset(p, 0, 64);
	assert_int_equal(proto_frame_segment(p, sizeof(p)), sizeof(p));
	assert_int_equal(proto_frame_segment(p, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_types),
		cmocka_unit_test(test_fragment_truncated),
		cmocka_unit_test(test_gso_split),
		cmocka_unit_test(test_raw_frames),
		cmocka_unit_test(test_ipv6_frames),
		cmocka_unit_test(test_segment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
