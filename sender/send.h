/*
 * The sending engine: geometry, chunk encoding (compress, Reed-Solomon,
 * per-symbol hashes, one signed descriptor per chunk), interleaving across
 * a window of chunks, carousel passes, heartbeats, pacing and batched
 * sends.  One struct sender owns the socket and the rate limit, so
 * everything sent through it shares one budget.
 */
#ifndef SLUICE_SEND_H
#define SLUICE_SEND_H

#include <signal.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/manifest.h"
#include "common/sign.h"

struct sender_geometry {
	unsigned symbol_size; /* S */
	unsigned hash_len;
	unsigned k_max;
	unsigned m_max;
	uint32_t chunk_size;  /* k_max * S */
};

struct sender_stats {
	uint64_t datagrams;
	uint64_t wire_bytes;   /* UDP payload bytes */
	uint64_t file_bytes;   /* plaintext bytes of every object, per pass */
	uint64_t chunks;       /* chunks of the transfer sent (not x passes) */
	uint64_t chunks_deflated;
	uint64_t chunks_total; /* chunks in the transfer (a resend: fewer) */
	uint64_t heartbeats;
};

/* Where a transfer is, for a progress display (sender_set_progress). */
struct sender_progress {
	unsigned pass, passes;     /* 1-based */
	uint64_t pass_bytes;       /* plaintext bytes of this pass so far */
	uint64_t pass_total;       /* ... of the whole pass */
	uint64_t elapsed_ns;       /* since the transfer started */
	bool pass_done;            /* the pass just ended */
};

/* Repair symbols for k source symbols at overhead percent. */
unsigned sender_repair_count(unsigned k, unsigned overhead);
/* 0, or -EINVAL if the datagram size leaves no room for a chunk. */
int sender_geometry(const struct sender_conf *c, struct sender_geometry *g);

struct sender;

/* key is borrowed for the sender's lifetime. */
struct sender *sender_new(const struct sender_conf *c,
    const struct sign_seckey *key, char *err, size_t errlen);
void sender_free(struct sender *s);

/* Chunks to send when resending: NULL means all of them. */
struct sender_filter;
struct sender_filter *sender_filter_load(const char *path, uint64_t *transfer,
    char **name, char **version, char *err, size_t errlen);
void sender_filter_free(struct sender_filter *f);
/* Computes the transfer id a manifest would be sent under. */
uint64_t sender_preview_id(struct sender *s, const struct manifest *m);

/*
 * Sends one transfer: object 0 is the manifest object (text plus approval
 * lines), object i the manifest's file i - 1, read from its src path.
 * Runs all passes; returns 0, -EINTR if *stop became set, or -errno with a
 * message in err.
 *
 * check_files: the first pass checks each file's SHA-256 against the
 * manifest as it reads the file's chunks (in file order), and stops with
 * -ESTALE at the first that differs; so does a file whose size differs
 * when it is opened, in any pass.  Datagrams of the transfer have left
 * by then; the receiver, which checks every file against the signed
 * manifest before release, cannot release them.  Needs every chunk:
 * with a filter the caller checks the files itself.
 */
int sender_send_transfer(struct sender *s, const struct manifest *m,
    const struct sender_filter *filter, bool check_files,
    volatile sig_atomic_t *stop, char *err, size_t errlen);

/*
 * Between transfers: sends heartbeats (transfer id 0) on schedule for up
 * to seconds, or until fd (if >= 0) is readable (1) or *stop is set
 * (-EINTR).  0 when the time ran out; -errno if sending failed.
 */
int sender_idle(struct sender *s, int fd, double seconds,
    volatile sig_atomic_t *stop);

/*
 * While the caller does something long that does not touch s (checking
 * a big bundle's files), a thread of s's own keeps the heartbeats going.
 * Between the two calls the caller must not use s.
 */
struct sender_hb_thread;
struct sender_hb_thread *sender_heartbeats_start(struct sender *s);
void sender_heartbeats_stop(struct sender_hb_thread *h);

/* cb is called from the sending thread, at most every 200 ms and at the
 * end of every pass; NULL stops it. */
void sender_set_progress(struct sender *s,
    void (*cb)(const struct sender_progress *, void *), void *arg);

uint64_t sender_transfer_id(const struct sender *s);
const struct sender_stats *sender_stats(const struct sender *s);

#endif
