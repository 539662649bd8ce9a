/*
 * sluice-publish: publishes bundles the receiver has released into the
 * internal stores they are used from (a model directory, an OCI registry,
 * an S3-compatible object store).  A separate program with its own unit
 * and user: it reads the receiver's store directory and never the link;
 * the receiver never waits on it.
 *
 * Files:
 *   main.c      options, signals, the loop (inotify + rescan), --once
 *   conf.c      publish.conf (libconfig), relative paths from the config
 *   state.c     per bundle per store state under state_dir, publish_log
 *               lines, audit records, metrics
 *   dir.c       type = "directory": models_dir/NAME/VERSION + latest
 *   oci.c       type = "oci": skopeo copy, digest check
 *   s3.c        type = "s3": libcurl with CURLOPT_AWS_SIGV4, multipart
 *
 * A store module's publish function does the whole upload for one bundle
 * and checks the result against the signed manifest's hashes.  It is
 * idempotent: called again after a crash or a failure it converges, and
 * calling it for a bundle already published costs a check, not a copy.
 */
#ifndef SLUICE_PUBLISH_H
#define SLUICE_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct manifest;

enum store_type {
	STORE_DIRECTORY,
	STORE_OCI,
	STORE_S3,
};

struct pub_store {
	char *name;             /* the store's name in rules and logs */
	enum store_type type;
	/* directory */
	char *path;             /* models_dir: absolute */
	/* oci */
	char *registry;         /* host:port */
	bool tls_verify;        /* default true */
	char *oci_credentials;  /* optional "user:password" file, 0600; NULL */
	/* s3 */
	char *endpoint;         /* http(s)://host:port */
	char *bucket;
	char *prefix;           /* "" or "a/b/" (a trailing '/' added) */
	char *region;           /* default "us-east-1" */
	char *credentials;      /* absolute path of the credentials file */
	uint64_t part_size;     /* multipart above this; default 64 MiB */
};

/* One released bundle, read from the receiver's store. */
struct pub_bundle {
	const char *name;
	const char *version;
	const char *dir;        /* store_dir/NAME/VERSION, absolute */
	const struct manifest *m; /* loaded and checked against the files by
	                           * manifest_load_bundle before any publish */
};

/*
 * What a failed publish reports.  reason is a stable code for logs
 * (snake_case, e.g. "upload_failed", "digest_mismatch",
 * "docker_archive_refused", "credentials"); detail is one human line
 * without secrets.  permanent: retrying cannot help (a refused format,
 * a malformed layout); otherwise the caller retries with backoff.
 */
struct pub_result {
	char reason[48];
	char detail[512];
	bool permanent;
};

/* Sets r's fields; returns -1 for "return pub_fail(...)". */
int pub_fail(struct pub_result *r, bool permanent, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Test-only: SIGKILL ourselves at point name if SLUICE_FAILPOINT=name. */
void pub_failpoint(const char *name);

/*
 * Each returns 0 when the bundle is in the store and verified there, or
 * -1 with res filled in.  They log nothing themselves but debug lines;
 * the caller writes the state lines.  They must not write secrets into
 * res, and must not keep state between calls beyond caches.
 */
int store_dir_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res);
int store_oci_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res);
int store_s3_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res);

/* Process-wide set-up of a module (curl_global_init for s3); 0 or -1. */
int store_s3_init(void);
void store_s3_cleanup(void);

/* ---- the publisher's own files (conf.c, state.c) ----------------------- */

#include <regex.h>
#include <stdio.h>

/* A rule: bundles whose whole name matches re go to stores[]. */
struct pub_rule {
	char *pattern;
	regex_t re;
	size_t *stores;         /* indices into pub_conf.stores */
	size_t n_stores;
};

/*
 * publish.conf, loaded once (conf.c) and then treated as const.  Paths
 * are absolute (relative ones were taken from the file's directory).
 */
struct pub_conf {
	char *path;
	char *store_dir;        /* the receiver's store, read only here */
	char *state_dir;
	char *publish_log;
	char *audit_log;        /* default state_dir/publish-audit.log */
	char *audit_key;        /* Ed25519 secret key file; NULL: no audit */
	char *metrics_file;     /* NULL: none */
	unsigned retries;       /* failed attempts before final, default 20 */
	double retry_backoff;   /* first delay, seconds, default 5 */
	double retry_backoff_max; /* cap, seconds, default 600 */
	double rescan_interval; /* seconds, default 60 */
	struct pub_store *stores;
	size_t n_stores;
	struct pub_rule *rules;
	size_t n_rules;
};

/* Loads and validates; NULL with "file:line: setting: why" in err. */
struct pub_conf *pub_conf_load(const char *path, char *err, size_t errlen);
void pub_conf_free(struct pub_conf *c);
/* The effective configuration, defaults filled in, as publish.conf
 * text that loads back to the same (-p). */
void pub_conf_print(const struct pub_conf *c, FILE *fp);
/* Credentials files: regular, owned by us, no group/other access.  At
 * start and for -n; 0 or -1 with the file and setting named in err. */
int pub_conf_check_secrets(const struct pub_conf *c, char *err,
    size_t errlen);
/* Does store index si take bundle name?  (Any rule naming it matches.) */
bool pub_conf_wants(const struct pub_conf *c, size_t si, const char *name);
/* The store called name, or NULL. */
const struct pub_store *pub_conf_store(const struct pub_conf *c,
    const char *name);

/*
 * state.c: the one owner of publication states.  A bundle's states live
 * in state_dir/bundles/NAME/VERSION, one logfmt line per store, rewritten
 * whole (temp, fsync, rename, fsync dir) on every change; only
 * pub_state_move changes a state, and it alone writes publish_log lines,
 * audit records and metrics for it.
 *
 *   PENDING ──► PUBLISHING ──► PUBLISHED
 *                   │  ▲
 *                   ▼  │ (backoff, while retries are left)
 *              PUBLISH_FAILED ──(final: retries spent, or permanent)
 *
 * PUBLISHED is never left; a final PUBLISH_FAILED is left only by a
 * retry request (`sluice publish retry`, a file in state_dir/retry/).
 */
enum pub_state {
	PUB_PENDING,
	PUB_PUBLISHING,
	PUB_PUBLISHED,
	PUB_FAILED,
	PUB_STATE_COUNT
};

#define PUB_RETRY_DIR "retry"
#define PUB_BUNDLES_DIR "bundles"

struct pub_entry {
	char store[65];
	enum pub_state state;
	char reason[48];
	char detail[512];
	unsigned failures;      /* failed attempts since the last retry */
	bool final;             /* PUBLISH_FAILED for good */
	bool announced;         /* its log line and audit record are out */
	int64_t next;           /* realtime seconds of the next attempt */
};

struct pub_record {
	char name[256];
	char version[256];
	char manifest[65];      /* hex SHA-256 of its manifest, or "" */
	struct pub_entry e[64];
	size_t n;
};

const char *pub_state_name(enum pub_state s);
/* Reads a record (empty if none yet).  0 or -errno (-EBADMSG: damaged). */
int pub_record_load(const char *state_dir, const char *name,
    const char *version, struct pub_record *r);
/* The entry for store, added as PENDING if absent; NULL if full. */
struct pub_entry *pub_record_entry(struct pub_record *r, const char *store);
/* Calls fn for every record under state_dir (for status). */
int pub_record_each(const char *state_dir,
    void (*fn)(const struct pub_record *, void *), void *arg);
/* Asks the daemon to retry (writes a request into state_dir/retry/);
 * store NULL: every store.  0 or -errno. */
int pub_retry_request(const char *state_dir, const char *name,
    const char *version, const char *store);

struct pub_state_ctx;
/* Opens publish_log, the audit log (with audit_key) and state dirs. */
struct pub_state_ctx *pub_state_open(const struct pub_conf *c, char *err,
    size_t errlen);
void pub_state_close(struct pub_state_ctx *x);
int pub_state_reopen(struct pub_state_ctx *x);
/*
 * Moves e (of r) to state s and makes it durable, then tells the log,
 * the audit log and the metrics.  res: the failure (NULL otherwise);
 * digest: the manifest's SHA-256 (may be NULL).  For a failure, decides
 * final and next from the retries left and res->permanent.  0 or -errno
 * (the state file could not be written).
 */
int pub_state_move(struct pub_state_ctx *x, struct pub_record *r,
    struct pub_entry *e, enum pub_state s, const struct pub_result *res,
    const uint8_t *digest);
/* Finishes announcing states a crash interrupted (log line or audit
 * record maybe missing); called when a record is loaded. */
int pub_state_recover(struct pub_state_ctx *x, struct pub_record *r);
/* Applies and removes pending retry requests.  Number applied. */
int pub_state_take_retries(struct pub_state_ctx *x);
void pub_state_metrics(struct pub_state_ctx *x);

#endif
