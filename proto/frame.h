/*
 * Captured frames: the UDP datagram a pcap frame carries, and the
 * datagrams a UDP GSO super-packet holds.  Pure like wire.c: no I/O, no
 * allocation, no libpcap (the caller reads the file and passes the link
 * type, the captured bytes and the frame's length on the wire).  Every
 * byte of a capture is as hostile as the link it came from.
 */
#ifndef SLUICE_PROTO_FRAME_H
#define SLUICE_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Link types (the values of pcap's LINKTYPE_ registry, stable on disk). */
#define PROTO_LT_NULL 0          /* BSD loopback, host-order family */
#define PROTO_LT_ETHERNET 1
#define PROTO_LT_RAW 101         /* raw IP (the file's value of DLT_RAW) */
#define PROTO_LT_DLT_RAW 12     /* libpcap's DLT_RAW for it on Linux */
#define PROTO_LT_LOOP 108        /* OpenBSD loopback, network-order family */
#define PROTO_LT_LINUX_SLL 113
#define PROTO_LT_IPV4 228
#define PROTO_LT_IPV6 229
#define PROTO_LT_LINUX_SLL2 276

enum proto_frame_verdict {
	PROTO_FRAME_OK = 0,
	PROTO_FRAME_OTHER,       /* not IP, not UDP, or another port */
	PROTO_FRAME_TRUNCATED,   /* the capture holds less than the frame */
	PROTO_FRAME_FRAGMENT,    /* an IP fragment: never reassembled */
	PROTO_FRAME_MALFORMED,   /* lengths that disagree */
	PROTO_FRAME_LINKTYPE,    /* a link type this reader does not know */
	PROTO_FRAME_VERDICT_COUNT
};

const char *proto_frame_verdict_name(enum proto_frame_verdict v);

/*
 * The UDP payload of a frame of link type lt: caplen bytes captured of
 * a frame of wirelen bytes.  On PROTO_FRAME_OK *payload points into
 * frame and *len is the UDP length's payload, addressed to port.  port 0
 * takes any port; *dport says which it was.
 */
enum proto_frame_verdict proto_frame_udp(int lt, const uint8_t *frame,
    size_t caplen, size_t wirelen, unsigned port, const uint8_t **payload,
    size_t *len, unsigned *dport);

/*
 * The segment size of a UDP payload that may be a GSO super-packet (a
 * capture on loopback or veth keeps the run a sender handed the kernel
 * as one frame, without its segment size).  A split is taken only where
 * every segment starts with a Sluice header of the first one's session
 * and a sequence number above the one before it by at most
 * PROTO_FRAME_SEQ_GAP (a relay that lost datagrams sends the rest on
 * as one run); anything else is one datagram.
 */
#define PROTO_FRAME_SEQ_GAP 65536
size_t proto_frame_segment(const uint8_t *p, size_t len);

#endif
