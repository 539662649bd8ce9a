/*
 * sluice-recv internals, shared by the receiver's files:
 *
 *   ingest.c    socket, io_uring ring, provided buffers: bytes in, and
 *               staging writes out
 *   assemble.c  per-datagram checks, chunk slots, FEC decode, chunk
 *               verification, inflate, write submission
 *   transfer.c  transfers: staging directories, progress, timeouts, the
 *               verifier thread, release, the quarantine log
 *   main.c      configuration, start-up, signals, the event loop
 *
 * Only the I/O thread touches struct recv, except the verifier queue
 * which is guarded by its mutex.
 */
#ifndef SLUICE_RECV_H
#define SLUICE_RECV_H

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/manifest.h"
#include "common/sign.h"
#include "proto/wire.h"

struct fec;
struct compress;
struct qlog;
struct ingest;

/* Why a datagram was dropped.  The proto verdicts come first. */
enum recv_drop {
	DROP_TRUNCATED = PROTO_VERDICT_COUNT, /* larger than a buffer */
	DROP_UNKNOWN_KEY,        /* signed by a key we do not trust */
	DROP_BAD_SIGNATURE,
	DROP_DESCRIPTOR_CONFLICT,/* signed, but disagrees with what we hold */
	DROP_SYMBOL_HASH,        /* symbol does not match its descriptor */
	DROP_PARAM_MISMATCH,     /* k, m or symbol size differ */
	DROP_UNKNOWN_TRANSFER,   /* symbol of a transfer with no descriptor */
	DROP_TRANSFER_LIMIT,     /* over max_transfer_bytes / in flight */
	DROP_CHUNK_LIMIT,        /* partial chunk evicted for lack of room */
	DROP_DECODE_FAILED,
	DROP_CHUNK_HASH,         /* decoded chunk differs from its hash */
	DROP_INFLATE,
	DROP_HEARTBEAT,          /* heartbeat with an unknown key or bad sig */
	DROP_HEARTBEAT_REPLAY,   /* verified, but not newer than the last */
	DROP_COUNT
};

const char *recv_drop_name(unsigned reason);

struct recv_stats {
	uint64_t datagrams;
	uint64_t bytes;
	uint64_t drop[DROP_COUNT];
	uint64_t redundant;       /* duplicates and carousel repeats */
	uint64_t symbols;         /* verified symbols kept */
	uint64_t descriptors;     /* descriptors verified */
	uint64_t heartbeats;
	uint64_t chunks_done;
	uint64_t chunks_repaired; /* needed FEC repair */
	uint64_t chunks_evicted;  /* partial chunks dropped for room */
	uint64_t bytes_written;
	uint64_t transfers_released;
	uint64_t transfers_rejected;
	uint64_t transfers_incomplete;
	uint64_t transfers_quarantined;
	uint64_t transfers_duplicate;
};

enum slot_state {
	SLOT_FREE,
	SLOT_FILLING,
	SLOT_WRITING,
};

enum sym_state {
	SYM_ABSENT = 0,
	SYM_VERIFIED,
	SYM_PENDING, /* stored before its descriptor: not yet checked */
};

struct transfer;

/* A chunk being assembled. */
struct slot {
	enum slot_state state;
	struct transfer *t;
	struct proto_chunk_id id;
	int32_t next;            /* hash chain */
	uint64_t touched_ns;
	bool have_desc;
	uint8_t k, m, codec;
	uint16_t symbol_size;
	uint32_t plain_len, enc_len;
	uint8_t chunk_sha256[PROTO_SHA256_LEN];
	uint8_t hash_len;
	uint8_t hashes[PROTO_MAX_SYMBOLS * PROTO_MAX_HASH_LEN];
	uint8_t desc_body[PROTO_MAX_SYMBOLS * PROTO_MAX_HASH_LEN + 128];
	size_t desc_body_len;
	uint8_t sym[PROTO_MAX_SYMBOLS];  /* enum sym_state */
	unsigned n_verified;
	unsigned n_pending;
	uint8_t *buf;            /* (k + m) * symbol_size */
	size_t buf_cap;
	uint8_t *plain;          /* inflate output */
	size_t plain_cap;
	const uint8_t *write_src;
	int write_fd;
};

struct object {
	uint64_t size;      /* UINT64_MAX until a descriptor or the manifest says */
	uint32_t n_chunks;
	uint32_t n_done;
	uint8_t *done;      /* bitmap of written chunks */
	bool dirty;         /* written since the last progress save */
	uint32_t prefix;    /* chunks 0..prefix-1 are all written */
};

struct progress_job;
struct prehash;

enum transfer_state {
	T_RECEIVING,
	T_INCOMPLETE,
	T_VERIFYING, /* owned by the verifier thread */
};

struct transfer {
	bool used;
	uint64_t id;
	enum transfer_state state;
	const struct sign_pubkey *key;
	uint32_t object_count;
	uint64_t transfer_bytes;
	uint32_t chunk_size;
	uint16_t symbol_size;
	struct object *objects;
	uint32_t objects_done;
	uint64_t bytes_done;
	struct manifest *manifest;
	char name[64];       /* staging directory name: hex id */
	int dirfd;           /* staging/<hex> */
	unsigned writes_in_flight;
	bool unsaved;        /* progress not yet saved */
	bool progress_busy;  /* a save is with the progress thread */
	uint64_t prefix_bytes;   /* sum of the objects' written prefixes */
	uint64_t prefix_queued;  /* ... as of the last job queued */
	uint64_t created_ns;
	uint64_t progress_ns;
};

/* What the verifier decided about a complete transfer. */
struct verdict {
	struct transfer *t;
	const char *state;     /* RELEASED, QUARANTINED, REJECTED, DUPLICATE */
	char reason[64];
	char detail[512];
	char approvers[CONF_MAX_KEYS * 17 + 1];
};

/* A finished transfer id is remembered so the carousel does not restart it. */
#define RECV_FINISHED_MAX 4096

struct recv {
	const struct recv_conf *conf;
	struct sign_pubkey keys[CONF_MAX_KEYS];
	unsigned n_keys;
	struct qlog *qlog;
	struct ingest *in;
	struct fec *fec;
	struct compress *zc;
	int staging_fd;

	struct transfer *transfers;
	unsigned n_transfers;

	struct slot *slots;
	unsigned n_slots;
	int32_t *buckets;
	unsigned n_buckets;
	size_t slot_bytes;       /* memory held by slot buffers */
	size_t slot_bytes_max;

	uint64_t finished[RECV_FINISHED_MAX];
	unsigned n_finished, finished_next;

	struct recv_stats stats;

	/* Link status, from signed heartbeats and sequence numbers. */
	uint64_t last_heartbeat_ns;
	uint32_t heartbeat_interval_ms;
	bool link_up;
	uint64_t session;        /* sender session seen last */
	uint64_t seq_first, seq_max, seq_count;
	bool hb_valid;           /* hb_session/hb_seq hold an accepted one */
	uint64_t hb_session, hb_seq; /* the last accepted heartbeat */

	/* Release policy. */
	struct sign_pubkey approvers[CONF_MAX_KEYS];
	unsigned n_approvers;
	regex_t name_re;
	struct audit *audit;
	struct sign_seckey *rkey;

	/* Verifier thread (release.c). */
	pthread_t verifier;
	pthread_mutex_t vq_lock;
	pthread_cond_t vq_cond;
	/* Each sized for every transfer slot: a transfer is queued once and
	 * holds its slot until its verdict is taken, so they cannot fill. */
	struct transfer **vq_todo;
	unsigned vq_n_todo;
	struct verdict *vq_done;
	unsigned vq_n_done;
	struct verdict *vq_taken;  /* release_poll's copy */
	bool vq_stop;

	/* Progress thread (progress.c): fdatasync and progress files, off
	 * the I/O thread. */
	pthread_t pq_thread;
	pthread_mutex_t pq_lock;
	pthread_cond_t pq_cond;      /* a job queued, or stop */
	pthread_cond_t pq_done_cond; /* a job finished */
	struct progress_job *pq_todo, **pq_todo_tail;
	struct progress_job *pq_current;
	struct progress_job *pq_done;
	bool pq_stop;
	bool pq_started;
	struct prehash *prehash; /* per transfer: files hashed so far */
};

/* assemble.c */
int assemble_init(struct recv *r);
void assemble_fini(struct recv *r);
void assemble_datagram(struct recv *r, const uint8_t *buf, size_t len);
void assemble_write_done(struct recv *r, struct slot *s, int res);
void assemble_drop_transfer(struct recv *r, struct transfer *t);

/* transfer.c */
int transfer_init(struct recv *r);
void transfer_fini(struct recv *r);
bool transfer_is_finished(const struct recv *r, uint64_t id);
struct transfer *transfer_find(struct recv *r, uint64_t id);
/* Creates a transfer from a verified descriptor, or NULL (counted drop). */
struct transfer *transfer_create(struct recv *r,
    const struct proto_descriptor *d, const struct sign_pubkey *key);
/* Records a descriptor's object size; false on a conflict. */
bool transfer_object_size(struct recv *r, struct transfer *t,
    uint32_t object, uint64_t size);
/* A chunk reached the disk. */
void transfer_chunk_done(struct recv *r, struct transfer *t, uint32_t object,
    uint32_t chunk, uint32_t plain_len);
void transfer_tick(struct recv *r, uint64_t now);
/* Makes each transfer's written chunks durable and records them. */
void transfer_save_progress(struct recv *r, bool sync);
/* Moves o->prefix past the chunks written from it on, and counts the
 * bytes it gained in t->prefix_bytes. */
void transfer_advance_prefix(struct transfer *t, struct object *o);
void transfer_write_status(struct recv *r);

/* progress.c */
int progress_init(struct recv *r);
void progress_fini(struct recv *r);
/*
 * Hands a snapshot of t's progress to the progress thread, which makes
 * the chunks it lists durable and then records them (sync), and in any
 * case hashes each file forward over its written prefix, so that little
 * is left to hash when the transfer completes.
 */
void progress_save(struct recv *r, struct transfer *t, bool sync);
/* The verifier takes what was hashed of transfer id (NULL: nothing). */
struct prehash *progress_take_prehash(struct recv *r, uint64_t id);
/* Finishes file i's hash from the offset reached; false if none. */
bool prehash_finish(struct prehash *ph, uint32_t object, int fd,
    uint8_t digest[32], uint64_t *size, int *rc);
void prehash_free(struct prehash *ph);
/* Drops what was hashed of transfer id (its staging is going away). */
void progress_forget(struct recv *r, uint64_t id);
/* Takes finished saves back (I/O thread, every loop). */
void progress_poll(struct recv *r);
/* Waits until no save of t is queued or running. */
void progress_quiesce(struct recv *r, struct transfer *t);
/* Restores saved progress: chunks restored, or -1 (start afresh). */
int progress_load(struct recv *r, struct transfer *t);

/* metrics.c */
void metrics_note_seq(struct recv *r, uint64_t session, uint64_t seq);
/* A verified heartbeat: false if it is a replay (not newer). */
bool metrics_heartbeat(struct recv *r, uint32_t interval_ms,
    uint64_t session, uint64_t seq);
void metrics_tick(struct recv *r, uint64_t now);
void metrics_write(const struct recv *r);
bool transfer_chunk_is_done(const struct transfer *t, uint32_t object,
    uint32_t chunk);
void transfer_reject(struct recv *r, struct transfer *t, const char *reason,
    const char *detail);
int transfer_object_fd(struct recv *r, struct transfer *t, uint32_t object);

/* transfer.c: finishing a transfer once the verifier has decided */
void transfer_finish(struct recv *r, struct transfer *t, const char *state,
    const char *reason, const char *detail);

/* release.c */
int release_init(struct recv *r, char *err, size_t errlen);
void release_fini(struct recv *r);
void release_poll(struct recv *r);
void release_enqueue(struct recv *r, struct transfer *t);
/* The highest released version of a bundle into buf; false if none. */
bool release_latest(const struct recv *r, const char *name, char *buf,
    size_t len);
void release_audit(struct recv *r, const struct transfer *t,
    const char *decision, const char *reason, const char *approvers,
    const char *detail);

/* ingest.c */
struct ingest *ingest_new(struct recv *r, char *err, size_t errlen);
void ingest_free(struct ingest *in);
/* Runs one round: waits up to timeout_ms, dispatches what arrived. */
int ingest_run_once(struct ingest *in, unsigned timeout_ms);
/* Queues a write of len bytes at off; completion calls
 * assemble_write_done(s). */
int ingest_submit_write(struct ingest *in, struct slot *s, int fd,
    const void *buf, size_t len, uint64_t off);
unsigned ingest_rcvbuf(const struct ingest *in);

#endif
