/*
 * sluice-recv internals.  The receiver is a pipeline of threads, each of
 * which owns its data; another thread reaches that data only through the
 * owner's queue, never through a shared field.
 *
 *   thread      owns                                  reached through
 *   ---------   -----------------------------------   ------------------
 *   rx          the socket, the io_uring ring, the    ingest_pop() (the
 *               provided buffers, struct ingest's     datagram queue,
 *               counters                              lock-free SPSC)
 *   main        struct recv below: transfers, chunk   -
 *               slots, the finished set, stats, the
 *               quarantine and audit logs (lifecycle)
 *   verifier    a transfer while it is VERIFYING or   verify_enqueue() /
 *               SCANNING (handed over whole, handed   verify_poll()
 *               back with its verdict)
 *   progress    progress files, fdatasyncs, the       progress_save() /
 *               running hashes of staged files        progress_poll()
 *   hooks       release hooks and staging cleanup     hooks_enqueue()
 *               after a release
 *
 * Calls go one way, never back up:
 *
 *   main ─► ingest            (datagrams out of the queue)
 *   main ─► assemble ─► lifecycle ─► verify ─► policy, hooks (scan)
 *                          │    └──► policy, hooks, progress, finished
 *   assemble, lifecycle, progress, verify ─► transfer (data only)
 *   assemble ─► metrics (counters, link state)
 *   assemble ─► sigcheck      (signature budget and cache; calls nothing)
 */
#ifndef SLUICE_RECV_H
#define SLUICE_RECV_H

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "common/conf.h"
#include "common/manifest.h"
#include "common/sign.h"
#include "proto/wire.h"

struct fec;
struct compress;
struct qlog;
struct ingest;
struct audit;
struct finished;
struct verifier;
struct progress;
struct hooks;
struct sigcheck;

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
	DROP_CHUNK_HASH,         /* list_sha256 is not its hash list's, or a
	                          * symbol the decoder rebuilt is not its hash */
	DROP_INFLATE,
	DROP_HEARTBEAT,          /* heartbeat with an unknown key or bad sig */
	DROP_HEARTBEAT_REPLAY,   /* verified, but not newer than the last */
	DROP_QUEUE_FULL,         /* the ingest queue was full (rx thread) */
	DROP_STAGING_WRITE,      /* a verified chunk could not be written */
	DROP_SIG_BUDGET,         /* signature not checked: budget spent */
	DROP_PENDING_LIMIT,      /* unverified symbol over max_pending_bytes */
	DROP_COUNT
};

const char *recv_drop_name(unsigned reason);

struct recv_stats {
	uint64_t datagrams;
	uint64_t bytes;
	uint64_t drop[DROP_COUNT];
	uint64_t redundant;       /* duplicates and carousel repeats */
	uint64_t finished_repeats;/* datagrams of transfers already finished */
	uint64_t symbols;         /* verified symbols kept */
	uint64_t descriptors;     /* descriptors verified */
	uint64_t heartbeats;
	uint64_t chunks_done;
	uint64_t chunks_repaired; /* needed FEC repair */
	uint64_t chunks_evicted;  /* partial chunks dropped for room */
	uint64_t chunk_jobs;      /* chunks given to a worker to write */
	uint64_t chunk_jobs_max;  /* the most with the workers at once */
	uint64_t hash_skipped;    /* symbols of written chunks, not hashed */
	uint64_t bytes_written;
	uint64_t transfers_released;
	uint64_t transfers_rejected;
	uint64_t transfers_incomplete;
	uint64_t transfers_quarantined;
	uint64_t transfers_duplicate;
	uint64_t transfers_retried;
	uint64_t transfers_preempted;
};

/*
 * A transfer's states.  Only lifecycle.c changes a transfer's state, and
 * every change is one quarantine-log line; terminal states are also one
 * audit record.  RELEASED, DUPLICATE and REJECTED are final (remembered in
 * the finished set for good); QUARANTINED is held until purged; INCOMPLETE
 * is waiting for more data or for a retry.
 */
enum tstate {
	TS_FREE = 0,        /* the slot is unused */
	TS_RECEIVING,
	TS_INCOMPLETE,
	TS_COMPLETE,
	TS_VERIFYING,       /* with the verifier thread */
	TS_SCANNING,        /* with the verifier thread */
	TS_RELEASED,
	TS_DUPLICATE,
	TS_QUARANTINED,
	TS_REJECTED,
	TS_PURGED,          /* held or incomplete staging removed */
	TS_COUNT
};

const char *tstate_name(enum tstate s);
bool tstate_is_terminal(enum tstate s);

enum sym_state {
	SYM_ABSENT = 0,
	SYM_VERIFIED,
	SYM_PENDING, /* stored before its descriptor: not yet checked */
};

struct transfer;

/* A chunk being assembled (main thread). */
/* Work for a worker thread: see ingest_submit(). */
struct ingest_job {
	struct ingest_job *next;
	void (*run)(struct ingest_job *j, unsigned worker, void *arg);
};

#define RECV_MAX_WORKERS 64

/* The key of keys[0..n) with this id, or NULL. */
static inline const struct sign_pubkey *
recv_find_key(const struct sign_pubkey *keys, unsigned n,
    const uint8_t id[PROTO_KEYID_LEN])
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (memcmp(keys[i].id, id, PROTO_KEYID_LEN) == 0)
			return &keys[i];
	return NULL;
}

struct slot {
	bool used;
	/* With a worker, which decodes and writes it (job): the main thread
	 * neither changes nor reuses it until the worker gives it back. */
	bool busy;
	struct ingest_job job;
	int job_fd;              /* its object's file, opened for the worker */
	int job_rc;              /* 0, a drop reason, or -errno of the write */
	bool job_repaired;
	struct transfer *t;
	uint64_t t_gen;          /* t->gen when the slot was taken */
	struct proto_chunk_id id;
	int32_t next;            /* hash chain */
	uint64_t touched_ns;
	bool have_desc;
	uint8_t k, m, codec;
	uint16_t symbol_size;
	uint32_t plain_len, enc_len;
	uint8_t hash_len;
	uint8_t hashes[PROTO_MAX_SYMBOLS * PROTO_MAX_HASH_LEN];
	uint8_t desc_body[PROTO_MAX_SYMBOLS * PROTO_MAX_HASH_LEN + 128];
	size_t desc_body_len;
	uint8_t sym[PROTO_MAX_SYMBOLS];  /* enum sym_state */
	unsigned n_verified;
	unsigned n_pending;
	bool pending_slot;       /* taken by a symbol, no descriptor yet */
	size_t pending_charge;   /* bytes of r->pending_bytes it holds */
	int32_t next_free;       /* free list, while !used */
	uint8_t *buf;            /* (k + m) * symbol_size */
	size_t buf_cap;
	uint8_t *plain;          /* inflate output */
	size_t plain_cap;
};

struct object {
	uint64_t size;      /* UINT64_MAX until a descriptor or the manifest says */
	uint32_t n_chunks;
	uint32_t n_done;
	uint8_t *done;      /* bitmap of written chunks */
	bool dirty;         /* written since the last progress save */
	bool restored;      /* some chunks came from an earlier run */
	uint32_t prefix;    /* chunks 0..prefix-1 are all written */
};

/*
 * A transfer in a slot.  Owned by the main thread, except while it is
 * VERIFYING or SCANNING: the verifier thread then owns it whole and the
 * main thread reads only id, gen and state.
 */
struct transfer {
	enum tstate state;
	uint64_t gen;        /* bumped when the slot is freed */
	uint64_t id;
	const struct sign_pubkey *key;
	uint32_t object_count;
	uint64_t transfer_bytes;
	uint32_t chunk_size;
	uint16_t symbol_size;
	struct object *objects;
	uint32_t objects_done;
	uint64_t bytes_done;
	struct manifest *manifest;
	char name[32];       /* staging directory name: hex id */
	int dirfd;           /* staging/<hex> */
	bool unsaved;        /* progress not yet saved */
	bool progress_busy;  /* a save is with the progress thread */
	uint64_t prefix_bytes;   /* sum of the objects' written prefixes */
	uint64_t prefix_queued;  /* ... as of the last job queued */
	uint64_t created_ns;
	uint64_t written_ns;     /* last chunk written (0: none this run) */
	uint64_t seen_ns;        /* last datagram of it */
	uint64_t session;        /* the sender session of that datagram */
	unsigned retries;        /* verifications that ended in retry */
	uint64_t retry_ns;       /* verify again from then on (0: no) */
	unsigned sync_failed;    /* objects reset after a failed fdatasync,
	                            not yet logged (lifecycle_poll) */
	bool waiting_space;      /* staging lacks room: nothing written */
	uint64_t space_checked_ns;
	/* Chunks of it a worker is writing (it decrements, on its own
	 * thread): the slot is not freed until none is. */
	_Atomic unsigned jobs_inflight;
};

/* The verifier's answer about a complete transfer. */
struct verdict {
	struct transfer *t;
	enum tstate state;     /* RELEASED, DUPLICATE, QUARANTINED, REJECTED;
	                          SCANNING while working; INCOMPLETE: retry */
	bool final;            /* false: a progress report (SCANNING) */
	int reset_object;      /* retry: object to receive again, or -1 */
	char reason[64];
	char detail[512];
	char approvers[CONF_MAX_KEYS * 17 + 1];
	uint64_t held_id;      /* a held release: the transfer (t is NULL) */
	struct manifest *m;    /* ... its manifest, owned by the taker */
	char req[64];          /* ... the operator request it answers */
	char why[512];         /* ... the operator's detail */
};

#define RECV_SEQ_CANDIDATES 4

struct recv {
	const struct recv_conf *conf;
	struct sign_pubkey keys[CONF_MAX_KEYS];
	unsigned n_keys;
	struct sign_pubkey approvers[CONF_MAX_KEYS];
	unsigned n_approvers;
	regex_t name_re;
	regex_t version_re;
	struct qlog *qlog;
	struct audit *audit;
	struct sign_seckey *rkey;
	struct sign_linkkey *link;  /* the link envelope's key, or NULL */
	struct ingest *in;
	struct fec *fec;
	struct compress *zc;
	/* Each worker's own, made by it on its first chunk job. */
	struct fec *wfec[RECV_MAX_WORKERS];
	struct compress *wzc[RECV_MAX_WORKERS];
	struct sigcheck *sigcheck; /* signature budget and cache */
	int staging_fd;
	int store_fd;
	int state_fd;
	int lock_fd;         /* state_dir/lock, a record lock held */

	struct transfer *transfers;
	unsigned n_transfers;
	struct finished *finished;
	struct lifecycle *lc;
	struct verifier *verifier;
	struct progress *progress;
	struct hooks *hooks;

	struct slot *slots;
	unsigned n_slots;
	int32_t *buckets;
	unsigned n_buckets;
	unsigned chunk_jobs_now; /* chunks with the workers now */
	size_t chunk_job_bytes;  /* their slots' buffers */
	/* Transfers being received, as last told to sigcheck. */
#define RECV_MAX_LIVE 1024
	uint64_t live[RECV_MAX_LIVE];
	unsigned n_live;
	size_t slot_bytes;       /* memory held by slot buffers */
	size_t slot_bytes_max;
	int32_t free_slot;       /* head of the free list, or -1 */
	size_t pending_bytes;    /* held for symbols not yet verified */
	unsigned pending_slots;  /* slots with no descriptor yet */
	uint64_t stale_sweep_ns; /* stale slots last taken back */

	struct recv_stats stats;
	uint64_t empty_taken;    /* empty datagrams already in stats */

	/* Link status, from signed heartbeats and sequence numbers. */
	uint64_t last_heartbeat_ns;
	uint32_t heartbeat_interval_ms;
	bool link_up;
	uint64_t session;        /* sender session seen last */
	uint64_t seq_first, seq_max, seq_count;
	struct seq_count {         /* sessions not vouched for yet */
		uint64_t session, first, max, count, touched;
	} seq_cand[RECV_SEQ_CANDIDATES];
	uint64_t seq_tick;
	bool hb_valid;           /* hb_session/hb_seq hold an accepted one */
	uint64_t hb_session, hb_seq; /* the last accepted heartbeat */

	/* The last release of this run, for the status file (lifecycle.c);
	 * last_release_ns is wall-clock time, 0 before the first. */
	char last_release[256];  /* "name version", truncated if long */
	uint64_t last_release_ns;

	volatile int stopping;   /* set once shutdown has begun */
};

/* preflight.c: every start-up check that can be made before anything is
 * opened for good; one line per problem on stderr.  Returns how many. */
unsigned preflight(const struct recv_conf *c);

/* Test-only crash points: SLUICE_FAILPOINT=name SIGKILLs the receiver
 * when it reaches that point (tests/e2e/34_crash.sh). */
void recv_failpoint(const char *name);
/* The same test switch without the kill: true once, at the named point,
 * when SLUICE_FAILPOINT names it (a simulated fault). */
bool recv_failpoint_hit(const char *name);
/* True every time the point is reached while SLUICE_FAILPOINT names it
 * (a fault that lasts, e.g. a slow disk); any thread. */
bool recv_failpoint_on(const char *name);

/* ---- assemble.c (main thread) ------------------------------------------ */
struct ingest_prep;
int assemble_init(struct recv *r);
void assemble_fini(struct recv *r);
/* Takes back the chunks the workers have written (main thread, often). */
void assemble_reap(struct recv *r);
/* The transfers being received, for the workers' signature checks. */
void assemble_publish_live(struct recv *r);
/* Are the workers so far behind with chunks that the main thread should
 * take no more datagrams until they catch up? */
bool assemble_backlogged(const struct recv *r);
/* One datagram; buf is the caller's to scribble on (the link envelope is
 * opened in place).  prep, if not NULL, is what a worker already did for
 * it (the envelope opened, a symbol hashed). */
void assemble_datagram(struct recv *r, uint8_t *buf, size_t len,
    const struct ingest_prep *prep);

/* ---- lifecycle.c (main thread): the only module that moves a state ---- */
int lifecycle_init(struct recv *r, char *err, size_t errlen);
/* Finishes what an earlier run left: releases cut short, complete
 * transfers not yet verified. */
void lifecycle_recover(struct recv *r);
void lifecycle_fini(struct recv *r);
/* The transfer id is being received (RECEIVING, INCOMPLETE), or with the
 * verifier; NULL if not in a slot. */
struct transfer *lifecycle_find(struct recv *r, uint64_t id);
/* A datagram of a transfer in no slot: true if that transfer has ended
 * (finished or held), after answering a resend (a sender session other
 * than the one it ended in) at most once per run and per 10 minutes. */
bool lifecycle_ended(struct recv *r, uint64_t id, uint64_t session);
/* A new transfer from a verified descriptor, or NULL (counted drop). */
struct transfer *lifecycle_admit(struct recv *r,
    const struct proto_descriptor *d, const struct sign_pubkey *key);
/* A datagram of t arrived (retries are sped up by a resend). */
void lifecycle_seen(struct recv *r, struct transfer *t, uint64_t session);
/* A chunk reached the staging file. */
void lifecycle_chunk_done(struct recv *r, struct transfer *t,
    uint32_t object, uint32_t chunk, uint32_t plain_len);
/* Every second: timeouts, retries, retention, the status file. */
void lifecycle_tick(struct recv *r, uint64_t now);
/* Verdicts from the verifier; progress saves taken back. */
void lifecycle_poll(struct recv *r);
/* The input ended: what is still receiving becomes INCOMPLETE. */
void lifecycle_end_of_input(struct recv *r);

/* journal.c: the link journal, fed by the rx thread (ingest.c). */
struct journal;
struct journal *journal_new(const struct recv_conf *conf, char *err,
    size_t errlen);
int journal_start(struct journal *j);
void journal_put(struct journal *j, const uint8_t *p, size_t len,
    size_t seg);
void journal_counts(const struct journal *j, uint64_t *written,
    uint64_t *dropped);
void journal_free(struct journal *j);

/* pcapin.c: sluice-recv --pcap; 0 when every file was read whole. */
int pcapin_run(struct recv *r, char *const files[], int n,
    volatile sig_atomic_t *quit);
/* Makes each transfer's written chunks durable and records them. */
void lifecycle_save_progress(struct recv *r, bool sync);
void lifecycle_write_status(struct recv *r);

/* ---- policy.c: decisions, no state of its own ---------------------------- */
struct policy_verdict {
	enum tstate state;     /* TS_FREE: admitted */
	char reason[64];
	char detail[512];
};
/* At the first descriptor: limits. */
void policy_admit_transfer(const struct recv *r,
    const struct proto_descriptor *d, struct policy_verdict *v);
/* When the manifest is known: names, duplicates. */
void policy_admit_manifest(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v);
/* Before release: approvals, expiry, rollback, duplicates. */
void policy_release(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v, char *approvers, size_t approvers_len);
/* The highest released version of a bundle into buf; false if none. */
bool policy_latest(const struct recv *r, const char *name, char *buf,
    size_t len);
int policy_record_latest(const struct recv *r, const char *name,
    const char *version);

/* ---- verify.c (verifier thread) ----------------------------------------- */
int verify_init(struct recv *r);
void verify_fini(struct recv *r);
/* Hands t over; its verdict comes back through verify_poll(). */
void verify_enqueue(struct recv *r, struct transfer *t);
/* An operator's release of held transfer id (staging/quarantine/<id>):
 * its tree is checked against its manifest again and renamed into the
 * store; the verdict comes back with t NULL and held_id, m and req set. */
void verify_enqueue_held(struct recv *r, uint64_t id, const char *req,
    const char *detail);
/* Takes up to max verdicts; returns how many. */
unsigned verify_poll(struct recv *r, struct verdict *out, unsigned max);
/* The marker a release leaves in staging/<id>/ just before its rename. */
#define VERIFY_RELEASING_FILE "releasing"

/* ---- hooks.c ----------------------------------------------------------- */
int hooks_init(struct recv *r);
/* Ends running hooks (their process groups) within HOOKS_STOP_SECONDS. */
void hooks_stop(struct recv *r);
void hooks_fini(struct recv *r);
#define HOOKS_STOP_SECONDS 5
/*
 * Runs a hook and waits at most hook_timeout seconds.  tree (may be NULL)
 * reaches the hook as its last argument and as SLUICE_TREE.  Returns the
 * exit status, or -1 with a reason in why; *stopped is set when it was
 * ended by shutdown (a retryable outcome).
 */
int hooks_run(struct recv *r, const char *cmd, const struct manifest *m,
    const char *path, const char *tree, bool *stopped, char *why,
    size_t whylen);
/* After a release: the release hooks, then dir (under staging_dir, its
 * "releasing" marker inside) is removed. */
void hooks_enqueue(struct recv *r, uint64_t id, const char *name,
    const char *version, const char *dir);

/* ---- transfer.c: a transfer's data, no state changes, no I/O ------------ */
bool transfer_chunk_is_done(const struct transfer *t, uint32_t object,
    uint32_t chunk);
/* Records an object's size; false on a conflict or out of memory. */
bool transfer_object_size(struct transfer *t, uint32_t object,
    uint64_t size);
/* Marks a chunk written; false if it already was. */
bool transfer_mark_chunk(struct transfer *t, uint32_t object, uint32_t chunk,
    uint32_t plain_len);
/* Forgets every chunk of an object (its bytes are not trusted). */
void transfer_reset_object(struct transfer *t, uint32_t object);
void transfer_advance_prefix(struct transfer *t, struct object *o);
bool transfer_all_done(const struct transfer *t);
/* The next run of missing chunks of o at or after *c: true with
 * [*start, *c) set. */
bool transfer_next_missing(const struct object *o, uint32_t *c,
    uint32_t *start);
void transfer_free_objects(struct transfer *t);
/* Waits until no worker is writing a chunk of t (jobs_inflight): before
 * its slot is freed, for the workers' writes use its file and geometry. */
void transfer_wait_jobs(struct transfer *t);

/* ---- progress.c (progress thread) ---------------------------------------- */
int progress_init(struct recv *r);
void progress_fini(struct recv *r);
void progress_save(struct recv *r, struct transfer *t, bool sync);
struct prehash;
struct prehash *progress_take_prehash(struct recv *r, uint64_t id);
bool prehash_finish(struct prehash *ph, uint32_t object, int fd,
    uint8_t digest[32], uint64_t *size, int *rc);
void prehash_free(struct prehash *ph);
void progress_forget(struct recv *r, uint64_t id);
void progress_poll(struct recv *r);
void progress_quiesce(struct recv *r, struct transfer *t);
/* Restores saved progress into t (dirfd open): chunks restored, or -1. */
int progress_load(struct recv *r, struct transfer *t);
/* Reads just the header of staging/<name>/progress: the transfer's
 * geometry and sender key id; 0 or -1. */
int progress_peek(int dirfd, uint32_t *object_count, uint64_t *bytes,
    uint32_t *chunk_size, uint16_t *symbol_size,
    uint8_t key_id[PROTO_KEYID_LEN], bool *have_key);

/* ---- metrics.c (main thread) --------------------------------------------- */
void metrics_note_seq(struct recv *r, uint64_t session, uint64_t seq);
bool metrics_heartbeat(struct recv *r, uint32_t interval_ms,
    uint64_t session, uint64_t seq);
void metrics_tick(struct recv *r, uint64_t now);
void metrics_write(const struct recv *r);

/* ---- ingest.c (rx thread) ------------------------------------------------ */
struct ingest *ingest_new(const struct recv_conf *conf, char *err,
    size_t errlen);
/* The link key the workers open envelopes with (borrowed), before
 * ingest_start; NULL: none. */
void ingest_set_link(struct ingest *in, const uint8_t *key);
/* Starts the workers and the rx thread. */
int ingest_start(struct ingest *in);
unsigned ingest_workers(const struct ingest *in);
void ingest_stop(struct ingest *in);
void ingest_free(struct ingest *in);
/*
 * What a worker prepared for one datagram of a run: its envelope opened
 * in place (the verdict, and its length after), and a symbol's SHA-256.
 */
#define INGEST_PREP_OPENED 0x1  /* verdict and len say how it went */
#define INGEST_PREP_HASHED 0x2  /* digest is the symbol data's */
#define INGEST_PREP_SIGNED 0x4  /* a descriptor: sig says how its
                                   signature checked, by keys[key] */
enum { INGEST_SIG_GOOD = 1, INGEST_SIG_BAD, INGEST_SIG_BUDGET };
struct ingest_prep {
	uint32_t flags;
	uint32_t len;
	uint8_t verdict;             /* enum proto_verdict */
	uint8_t sig;                 /* INGEST_SIG_* */
	uint8_t key;                 /* index in the keys given */
	uint8_t pad[5];
	uint8_t digest[32];
};
/*
 * The next queued datagram run (one or more datagrams of seg bytes each,
 * the last possibly shorter), waiting up to timeout_ms; false if none.
 * *prep is one ingest_prep per datagram, or NULL without workers.  The
 * bytes stay valid, and the caller's to change, until ingest_release().
 */
bool ingest_pop(struct ingest *in, uint8_t **buf, size_t *len,
    size_t *seg, const struct ingest_prep **prep, unsigned timeout_ms);
void ingest_release(struct ingest *in);
/*
 * Work the main thread hands to a worker (a chunk to decode and write):
 * run(j, worker, arg) on the worker chosen by key (the same key, the same
 * worker), then handed back by ingest_reap().  arg: ingest_set_jobs()'s.
 * Jobs given are all run, ingest_free() included.  ingest_pop() returns
 * early (false) when a job is done.  Main thread only, with workers.
 */
void ingest_set_jobs(struct ingest *in, void *arg);
/* The workers check descriptors of live transfers (sigcheck_set_live)
 * signed by one of keys (borrowed, like sc), before ingest_start. */
struct sigcheck;
void ingest_set_sigcheck(struct ingest *in, struct sigcheck *sc,
    const struct sign_pubkey *keys, unsigned n_keys);
void ingest_submit(struct ingest *in, unsigned key, struct ingest_job *j);
/* The jobs done since the last call, in a list, or NULL. */
struct ingest_job *ingest_reap(struct ingest *in);
/* Main thread: id's chunk is written or being written (done), or not
 * after all (!done); its symbols are not hashed meanwhile.  A hint. */
void ingest_hint_chunk(struct ingest *in, const struct proto_chunk_id *id,
    bool done);
/* Waits up to timeout_ms for a job to be done (it may return early). */
void ingest_wait_done(struct ingest *in, unsigned timeout_ms);
unsigned ingest_rcvbuf(const struct ingest *in);
struct ingest_stats {
	uint64_t datagrams;      /* received, empty and truncated included */
	uint64_t bytes;
	uint64_t queue_full;     /* datagrams dropped: the queue was full */
	uint64_t truncated;
	uint64_t empty;
	uint64_t kernel_drops;   /* this socket's, SO_RXQ_OVFL */
	uint64_t hash_skipped;   /* symbols of chunks written, not hashed */
	uint64_t queued_bytes;   /* in the queue now */
	uint64_t queue_hwm;      /* the most it held */
	uint64_t queue_cap;
	uint64_t journal_written; /* datagrams in the link journal */
	uint64_t journal_dropped; /* not journalled: its queue was full */
};
void ingest_get_stats(const struct ingest *in, struct ingest_stats *st);

#endif
