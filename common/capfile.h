/*
 * Capture files as a stream of datagrams: pcap and pcapng read with
 * libpcap, each frame parsed by proto/frame.c (the only parser of its
 * bytes), a UDP GSO super-packet split into its datagrams.  What is not
 * a whole UDP datagram to the port is counted by verdict and skipped,
 * with a rate-limited line.  Used by sluice-recv --pcap, sluice
 * link-report and sluice replay, so the three read a capture alike.
 */
#ifndef SLUICE_CAPFILE_H
#define SLUICE_CAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/frame.h"

struct capfile_stats {
	uint64_t frames;
	uint64_t datagrams;
	uint64_t bytes;       /* UDP payload bytes of those datagrams */
	uint64_t oversize;    /* segments longer than a datagram can be */
	uint64_t frame[PROTO_FRAME_VERDICT_COUNT]; /* by verdict */
};

struct capfile;

/*
 * Opens a capture; port 0 takes UDP datagrams to any port.  NULL with
 * a reason in err.
 */
struct capfile *capfile_open(const char *path, unsigned port, char *err,
    size_t errlen);
/* The same for an open stream (taken: closed by capfile_close). */
struct capfile *capfile_fopen(FILE *f, const char *name, unsigned port,
    char *err, size_t errlen);
void capfile_close(struct capfile *c);
/* The link type's name, for a log line. */
const char *capfile_linktype(const struct capfile *c);

/*
 * The next datagram: 1 with *dgram (valid until the next call), *len,
 * the frame's capture time *ts_ns (nanoseconds since the epoch) and its
 * destination port; 0 at the end of the file; -1 when the file is cut
 * short or unreadable (the reason in err; what came before counts).
 */
int capfile_next(struct capfile *c, const uint8_t **dgram, size_t *len,
    uint64_t *ts_ns, unsigned *dport, char *err, size_t errlen);

const struct capfile_stats *capfile_stats(const struct capfile *c);

#endif
