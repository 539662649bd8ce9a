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

#endif
