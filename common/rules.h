/*
 * Release rules: the checks of a bundle's manifest that depend only on the
 * manifest and the receiver's configuration, not on the receiver's state.
 * sluice-recv (receiver/policy.c) and `sluice bundle verify` both call
 * these, so the offline check and the receiver cannot drift apart.
 * Rollback and duplicates need the receiver's released versions and stay
 * in receiver/policy.c.
 *
 * Functions look and never act; each outcome carries a stable reason code
 * for the logs and a human detail.
 */
#ifndef SLUICE_RULES_H
#define SLUICE_RULES_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

struct manifest;
struct recv_conf;
struct sign_pubkey;

struct rules {
	const regex_t *name_re;       /* rules_compile_name's, or NULL: any */
	const regex_t *version_re;    /* the same for versions */
	const struct sign_pubkey *approvers; /* distinct keys */
	size_t n_approvers;
	unsigned threshold;           /* approvals needed, 0: none */
	size_t max_files;
	size_t max_path_len;
	uint64_t max_bytes;           /* sum of file sizes */
	uint64_t max_age;             /* seconds since created, 0: off */
	const char *receiver_name;    /* NULL: a manifest naming one is held */
	int64_t now;                  /* seconds since the epoch */
};

enum rules_outcome {
	RULES_PASS = 0,
	RULES_REJECT,  /* what the bundle is: unsafe name, over a limit */
	RULES_HOLD,    /* policy: approvals, expired, destination */
};

struct rules_result {
	enum rules_outcome outcome;
	unsigned approvals; /* distinct valid approvals rules_check_release
	                       counted */
	char reason[64];   /* "" on RULES_PASS */
	char detail[512];
};

/*
 * Fills r from a receiver's configuration: threshold, limits, max age
 * and receiver name, now.  The caller sets name_re and the approver keys
 * (it holds them).
 */
void rules_from_conf(struct rules *r, const struct recv_conf *c);

/* Compiles name_pattern anchored at both ends.  0 or -EINVAL. */
int rules_compile_name(regex_t *re, const char *pattern);

/*
 * Names and limits: name and version are each one safe directory name,
 * the name matches name_re, and files, path lengths and bytes are within
 * the limits.  Reasons: unsafe_name, name_pattern, too_many_files,
 * unsafe_path, too_large.
 */
void rules_check_names(const struct rules *r, const struct manifest *m,
    struct rules_result *out);

/*
 * Policy before release: approvals by distinct keys (ids, if not NULL,
 * receives the counted key ids, comma separated), expiry, max_age and
 * destination.  Reasons: approvals, expired, destination.
 */
void rules_check_release(const struct rules *r, const struct manifest *m,
    struct rules_result *out, char *ids, size_t idslen);

#endif
