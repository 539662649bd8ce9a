/*
 * The transmit path: datagrams queued into batches, sent with sendmmsg on
 * a connected socket, runs of equal-length datagrams handed to the kernel
 * as one UDP GSO message, the whole paced by a token bucket.  Shared by
 * sluice-send (sender/send.c) and `sluice replay`, so a capacity test
 * drives a receiver exactly as the sender would.
 *
 * Payload bytes passed by pointer are sent from where they are, never
 * copied: the caller keeps them alive until the next tx_flush (or the
 * tx_queue that fills the batch) returns.
 */
#ifndef SLUICE_TX_H
#define SLUICE_TX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Datagrams per batch: one sendmmsg call and one pacing step. */
#define TX_BATCH 256
/* Bytes of IPv4 + UDP header per datagram, for the rate. */
#define TX_UDP_IP_OVERHEAD 28

struct tx;

/*
 * A UDP socket connected to dest ("host:port", "[v6]:port"), its send
 * buffer raised; shut for reading (nothing is ever read).  The fd, or
 * -errno with a reason in err.
 */
int tx_connect(const char *dest, char *err, size_t errlen);

/*
 * Takes fd.  slot_size is the largest datagram (each queued datagram's
 * first part is built in a slot of that size); rate_bps 0 sends as fast
 * as the socket takes it.  The pacing bucket holds 2 ms at the rate, and
 * at least two batches of burst_len-byte datagrams.  NULL when out of
 * memory.
 */
struct tx *tx_new(int fd, size_t slot_size, uint64_t rate_bps,
    size_t burst_len);
void tx_free(struct tx *t);

/* While *stop is set, a full socket returns -EINTR instead of waiting. */
void tx_set_stop(struct tx *t, volatile sig_atomic_t *stop);

/* The slot the next tx_queue sends from (slot_size bytes). */
uint8_t *tx_slot(struct tx *t);

/*
 * Queues one datagram: hdr_len bytes of tx_slot(), then payload_len bytes
 * at payload (may be NULL).  Flushes when the batch is full.  0 or
 * -errno from the flush.
 */
int tx_queue(struct tx *t, size_t hdr_len, const uint8_t *payload,
    size_t payload_len);

/* Sends what is queued (pacing first).  0, -EINTR or -errno. */
int tx_flush(struct tx *t);

/* Datagrams sent and UDP payload bytes queued so far. */
uint64_t tx_datagrams(const struct tx *t);
uint64_t tx_bytes(const struct tx *t);

#endif
