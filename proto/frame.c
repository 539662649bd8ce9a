/*
 * Captured frames to UDP datagrams (frame.h).  Reads only what it has
 * checked it has: every header is bounds checked against the captured
 * length, and a frame captured short of its length on the wire is
 * truncated, whatever part of it is missing.
 */
#include "proto/frame.h"
#include "proto/wire.h"

#include <string.h>

#define ETH_HLEN 14
#define ET_IPV4 0x0800
#define ET_IPV6 0x86dd
#define ET_VLAN 0x8100
#define ET_QINQ 0x88a8
#define ET_VLAN9100 0x9100
#define MAX_VLANS 4
#define MAX_V6_EXT 8
#define IPPROTO_UDP_ 17
#define UDP_HLEN 8

static const char *const verdict_names[] = {
	"ok", "other", "truncated", "fragment", "malformed", "linktype",
};

const char *
proto_frame_verdict_name(enum proto_frame_verdict v)
{
	if ((unsigned)v >= PROTO_FRAME_VERDICT_COUNT)
		return "unknown";
	return verdict_names[v];
}

static unsigned
be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* The UDP header at p (n bytes to the end of the IP payload). */
static enum proto_frame_verdict
udp(const uint8_t *p, size_t n, unsigned port, const uint8_t **payload,
    size_t *len, unsigned *dport)
{
	unsigned ulen;

	if (n < UDP_HLEN)
		return PROTO_FRAME_MALFORMED;
	*dport = be16(p + 2);
	if (port != 0 && *dport != port)
		return PROTO_FRAME_OTHER;
	ulen = be16(p + 4);
	if (ulen < UDP_HLEN || ulen > n)
		return PROTO_FRAME_MALFORMED;
	*payload = p + UDP_HLEN;
	*len = ulen - UDP_HLEN;
	return PROTO_FRAME_OK;
}

static enum proto_frame_verdict
ipv4(const uint8_t *p, size_t n, unsigned port, const uint8_t **payload,
    size_t *len, unsigned *dport)
{
	size_t ihl, tot;

	if (n < 20 || p[0] >> 4 != 4)
		return PROTO_FRAME_MALFORMED;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = be16(p + 2);
	if (ihl < 20 || tot < ihl || tot > n)
		return PROTO_FRAME_MALFORMED;
	if (p[9] != IPPROTO_UDP_)
		return PROTO_FRAME_OTHER;
	/* More fragments, or an offset: a piece of a datagram. */
	if (be16(p + 6) & 0x3fff)
		return PROTO_FRAME_FRAGMENT;
	return udp(p + ihl, tot - ihl, port, payload, len, dport);
}

static enum proto_frame_verdict
ipv6(const uint8_t *p, size_t n, unsigned port, const uint8_t **payload,
    size_t *len, unsigned *dport)
{
	size_t plen, off = 40;
	unsigned nh, i;

	if (n < 40 || p[0] >> 4 != 6)
		return PROTO_FRAME_MALFORMED;
	plen = be16(p + 4);
	if (plen == 0 || plen > n - 40)
		return PROTO_FRAME_MALFORMED; /* a jumbogram is not ours */
	n = 40 + plen;
	nh = p[6];
	for (i = 0; i < MAX_V6_EXT; i++) {
		switch (nh) {
		case IPPROTO_UDP_:
			return udp(p + off, n - off, port, payload, len,
			    dport);
		case 44:
			return PROTO_FRAME_FRAGMENT;
		case 0:   /* hop-by-hop */
		case 43:  /* routing */
		case 60:  /* destination options */
			if (n - off < 8)
				return PROTO_FRAME_MALFORMED;
			nh = p[off];
			if ((size_t)(p[off + 1] + 1) * 8 > n - off)
				return PROTO_FRAME_MALFORMED;
			off += (size_t)(p[off + 1] + 1) * 8;
			break;
		default:
			return PROTO_FRAME_OTHER;
		}
	}
	return PROTO_FRAME_OTHER;
}

/* An IP packet of the given ethertype (or family). */
static enum proto_frame_verdict
ip(unsigned type, const uint8_t *p, size_t n, unsigned port,
    const uint8_t **payload, size_t *len, unsigned *dport)
{
	if (type == ET_IPV4)
		return ipv4(p, n, port, payload, len, dport);
	if (type == ET_IPV6)
		return ipv6(p, n, port, payload, len, dport);
	return PROTO_FRAME_OTHER;
}

enum proto_frame_verdict
proto_frame_udp(int lt, const uint8_t *f, size_t caplen, size_t wirelen,
    unsigned port, const uint8_t **payload, size_t *len, unsigned *dport)
{
	size_t off;
	unsigned type, i;
	uint32_t fam;

	*payload = NULL;
	*len = 0;
	*dport = 0;
	if (caplen < wirelen)
		return PROTO_FRAME_TRUNCATED;
	switch (lt) {
	case PROTO_LT_ETHERNET:
		if (caplen < ETH_HLEN)
			return PROTO_FRAME_MALFORMED;
		type = be16(f + 12);
		off = ETH_HLEN;
		for (i = 0; (type == ET_VLAN || type == ET_QINQ ||
		    type == ET_VLAN9100) && i < MAX_VLANS; i++) {
			if (caplen - off < 4)
				return PROTO_FRAME_MALFORMED;
			type = be16(f + off + 2);
			off += 4;
		}
		break;
	case PROTO_LT_LINUX_SLL:
		if (caplen < 16)
			return PROTO_FRAME_MALFORMED;
		type = be16(f + 14);
		off = 16;
		break;
	case PROTO_LT_LINUX_SLL2:
		if (caplen < 20)
			return PROTO_FRAME_MALFORMED;
		type = be16(f);
		off = 20;
		break;
	case PROTO_LT_NULL:
	case PROTO_LT_LOOP:
		if (caplen < 4)
			return PROTO_FRAME_MALFORMED;
		/* NULL is in the capturing host's order: take either. */
		fam = be32(f);
		if (lt == PROTO_LT_NULL && fam > 0xffff)
			fam = (uint32_t)f[0] | (uint32_t)f[1] << 8 |
			    (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
		type = fam == 2 ? ET_IPV4 : (fam == 10 || fam == 24 ||
		    fam == 28 || fam == 30) ? ET_IPV6 : 0;
		off = 4;
		break;
	case PROTO_LT_RAW:
	case PROTO_LT_DLT_RAW:
	case PROTO_LT_IPV4:
	case PROTO_LT_IPV6:
		if (caplen < 1)
			return PROTO_FRAME_MALFORMED;
		type = f[0] >> 4 == 4 ? ET_IPV4 : f[0] >> 4 == 6 ? ET_IPV6 :
		    0;
		off = 0;
		break;
	default:
		return PROTO_FRAME_LINKTYPE;
	}
	return ip(type, f + off, caplen - off, port, payload, len, dport);
}

/* A Sluice header (either wire version) of session, sequence seq. */
static int
header_at(const uint8_t *p, size_t n, uint64_t *session, uint64_t *seq)
{
	if (n < PROTO_HDR_LEN || be32(p) != PROTO_MAGIC ||
	    (p[4] != PROTO_VERSION && p[4] != 2))
		return -1;
	*session = be64(p + 8);
	*seq = be64(p + 16);
	return 0;
}

/*
 * Does q follow prev in one sender's run?  Consecutive from the sender
 * itself; with gaps where a relay on the way (a link emulator, a tap
 * aggregating GSO) lost datagrams and sent the rest on as one run.
 */
static bool
seq_follows(uint64_t prev, uint64_t q)
{
	return q > prev && q - prev <= PROTO_FRAME_SEQ_GAP;
}

size_t
proto_frame_segment(const uint8_t *p, size_t len)
{
	uint64_t session, seq, s2, q2, prev;
	size_t s, off;

	if (header_at(p, len, &session, &seq) != 0)
		return len;
	for (s = PROTO_HDR_LEN; s < len && s <= PROTO_MAX_DATAGRAM; s++) {
		if (p[s] != (PROTO_MAGIC >> 24) || header_at(p + s, len - s,
		    &s2, &q2) != 0 || s2 != session || !seq_follows(seq, q2))
			continue;
		for (off = 2 * s, prev = q2; off < len; off += s, prev = q2)
			if (header_at(p + off, len - off, &s2, &q2) != 0 ||
			    s2 != session || !seq_follows(prev, q2))
				break;
		if (off >= len)
			return s;
	}
	return len;
}
