/*
 * Configuration files (libconfig).  Each file is loaded once into a
 * validated struct that the rest of the program treats as const.  Every
 * number has a range; unknown settings are errors (a typo must not silently
 * fall back to a default); an error message names the file, the line and
 * the setting.  An integer literal that libconfig 1.5 would silently wrap
 * (no L suffix and beyond 32 bits) is refused; sizes and rates take the
 * "100G" string form.  Relative paths are resolved against the directory
 * of the configuration file.  This file and conf.c are the only ones that
 * call libconfig.
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/compress.h"

#define CONF_MAX_KEYS 16
#define CONF_MAX_SETTINGS 64

struct sender_conf {
	char *path;             /* the file this came from */
	unsigned lines[CONF_MAX_SETTINGS]; /* where each setting was set */
	char *destination;      /* "host:port" */
	char *key;              /* secret key file */
	uint64_t rate_bps;      /* bits per second; "800M" */
	unsigned datagram_size; /* 64..65507, default 1472 */
	unsigned fec_overhead;  /* percent, 0..400, default 25 */
	unsigned interleave;    /* chunks, 1..256, default 8 */
	unsigned passes;        /* 1..100, default 2 */
	enum compress_mode compress; /* "auto" (default), "off", "on" */
	double heartbeat_interval;   /* seconds, 0.05..3600, default 1.0 */
	unsigned descriptor_copies;  /* per chunk per pass, 1..16, default 4 */
	unsigned encode_threads;     /* threads encoding chunks, 1..16, 1 */

	/* --daemon: the queue, and where bundles go when done. */
	char *spool_dir;        /* bundles are renamed into it */
	char *sent_dir;         /* default <spool_dir>/../sent */
	char *failed_dir;       /* default <spool_dir>/../failed */
	double sent_retention;  /* seconds before a sent bundle's tree is
	                           removed (its record stays), default 30 d */

	/* The link envelope (proto/link.h): both ends share the key file. */
	char *link_key;         /* sluice keygen --link; NULL: none */
	bool link_encrypt;      /* also encrypt payloads, default false */
};

struct recv_conf {
	char *path;
	unsigned lines[CONF_MAX_SETTINGS]; /* where each setting was set */
	char *listen;                 /* "host:port" (required) */
	char *sender_keys[CONF_MAX_KEYS]; /* public key files (required) */
	unsigned n_sender_keys;
	char *staging_dir;            /* required */
	char *store_dir;              /* required */
	char *quarantine_log;         /* required */
	double transfer_timeout;      /* seconds, 1..604800, default 60 */
	uint64_t max_transfer_bytes;  /* default 64G; "64G" or a number */
	unsigned max_transfers_in_flight; /* 1..1024, default 4 */
	unsigned max_partial_chunks;  /* 8..65536, default 1024 */
	unsigned max_signature_checks; /* a second, default 1000 */
	unsigned max_transfer_signature_checks; /* more a second for the
	                                 transfers being received, 20000 */
	uint64_t max_pending_bytes;   /* unverified symbols, default 16M */
	uint64_t rcvbuf_bytes;        /* requested SO_RCVBUF, default 64M */
	unsigned file_mode;           /* mode of released files, default 0644 */
	unsigned dir_mode;            /* mode of released dirs, default 0755 */

	/* Release policy. */
	char *approvers[CONF_MAX_KEYS];   /* approver public key files */
	unsigned n_approvers;
	unsigned approval_threshold;  /* distinct approvers needed, default 0 */
	/* Defaults from common/limits.h, shared with the sender. */
	uint64_t max_bundle_bytes;    /* default 64G */
	unsigned max_files;           /* default 100000 */
	unsigned max_path_len;        /* default 1024 */
	char *name_pattern;           /* POSIX ERE, anchored */
	char *version_pattern;        /* POSIX ERE, anchored */
	unsigned max_bundle_age;      /* seconds since created, 0 (default):
	                                 no limit */
	char *receiver_name;          /* a manifest's destination must match */
	char *state_dir;              /* default <staging_dir>/.state */
	char *scan_hook;              /* command run on the staged bundle */
	char *release_hooks[CONF_MAX_KEYS]; /* commands run after release */
	unsigned n_release_hooks;
	double hook_timeout;          /* seconds, default 600 */
	bool hook_shell;              /* run hooks with /bin/sh -c */
	char *hook_socket;            /* run hooks in sluice-hookd, as its
	                                 user; NULL: run them here */
	char *audit_log;              /* append-only, hash-chained */
	char *receiver_key;           /* signs every audit record */
	unsigned audit_checkpoint;    /* ignored: every record is signed */

	/* Observability. */
	char *metrics_file;           /* Prometheus text, rewritten atomically */
	double metrics_interval;      /* seconds, default 5 */
	unsigned link_down_after;     /* missed heartbeats, default 3 */
	double progress_interval;     /* seconds between progress saves, 1 */
	uint64_t ingest_buffer;       /* the rx thread's queue, default 256M */
	unsigned workers;             /* threads preparing it; 0: the cores */
	char *link_key;               /* link envelope key; NULL: none, and
	                                 sealed datagrams are refused */
	double staging_retention;     /* seconds INCOMPLETE staging and held
	                                 bundles are kept, default 7 days */
	char *link_journal_dir;       /* every datagram, into rotating pcap
	                                 files; NULL: no journal */
	uint64_t link_journal_file_size; /* bytes a file, default 1G */
	unsigned link_journal_keep;   /* files kept, default 8 */
	char *capture_interface;      /* read the link with libpcap from this
	                                 interface instead of a socket */
	uint64_t capture_buffer;      /* its kernel ring, default 64M */
};



/*
 * Load and validate.  On error returns NULL and writes one line such as
 * "receiver.conf:7: transfer_timeout: must be between 1 and 604800" to
 * err.  The returned struct is owned: free with the matching _free.
 */
struct sender_conf *sender_conf_load(const char *path, char *err,
    size_t errlen);
void sender_conf_free(struct sender_conf *c);
void sender_conf_print(const struct sender_conf *c, FILE *fp);

struct recv_conf *recv_conf_load(const char *path, char *err, size_t errlen);
void recv_conf_free(struct recv_conf *c);
void recv_conf_print(const struct recv_conf *c, FILE *fp);

/* "file:line: setting" (or "file: setting" for a default) into buf, for
 * messages about a setting found wrong after loading (-n). */
void recv_conf_where(const struct recv_conf *c, const char *name, char *buf,
    size_t len);
void sender_conf_where(const struct sender_conf *c, const char *name,
    char *buf, size_t len);

#endif
