/*
 * Policy: what the receiver admits and what it releases.  Every decision
 * about a bundle's fate that does not depend on the bytes being intact is
 * here, in one place (the checks that need no receiver state are in
 * common/rules.c, shared with `sluice bundle verify`), as functions that look and never act: lifecycle.c
 * asks at the first descriptor and when the manifest is known, verify.c
 * asks again just before release (another transfer may have released the
 * same bundle meanwhile).  Each answer is a state (TS_FREE: go on) with a
 * reason code for the logs.
 *
 * The highest released version of each bundle lives in
 * <state_dir>/released/<name>, written by the main thread after a release
 * (atomically), read by both the main and the verifier thread.
 */
#include "receiver/recv.h"
#include "common/rules.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void say(struct policy_verdict *v, enum tstate state,
    const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
say(struct policy_verdict *v, enum tstate state, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	v->state = state;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

static void
go_on(struct policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->state = TS_FREE;
}

void
policy_admit_transfer(const struct recv *r, const struct proto_descriptor *d,
    struct policy_verdict *v)
{
	go_on(v);
	if (d->transfer_bytes > r->conf->max_transfer_bytes)
		say(v, TS_REJECTED, "too_large", "transfer of %" PRIu64
		    " bytes, limit %" PRIu64, d->transfer_bytes,
		    r->conf->max_transfer_bytes);
}

/* The receiver's side of the rules shared with `sluice bundle verify`. */
static void
rules_of(const struct recv *r, struct rules *out)
{
	rules_from_conf(out, r->conf);
	out->name_re = &r->name_re;
	out->version_re = &r->version_re;
	out->approvers = r->approvers;
	out->n_approvers = r->n_approvers;
}

/* RULES_REJECT is for what the bundle is, RULES_HOLD for policy. */
static bool
ruled(const struct rules_result *res, struct policy_verdict *v)
{
	if (res->outcome == RULES_PASS)
		return false;
	say(v, res->outcome == RULES_REJECT ? TS_REJECTED : TS_QUARANTINED,
	    res->reason, "%s", res->detail);
	return true;
}

void
policy_admit_manifest(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v)
{
	char latest[PMAN_MAX_VALUE + 1];
	struct rules rules;
	struct rules_result res;

	go_on(v);
	rules_of(r, &rules);
	rules_check_names(&rules, m, &res);
	if (ruled(&res, v))
		return;
	/* The same version again: say so once, and stop receiving it. */
	if (policy_latest(r, m->name, latest, sizeof(latest)) &&
	    manifest_version_cmp(m->version, latest) == 0)
		say(v, TS_DUPLICATE, "already_released", "version %s is "
		    "already released", latest);
}

void
policy_release(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v, char *approvers, size_t approvers_len)
{
	char latest[PMAN_MAX_VALUE + 1];
	struct rules rules;
	struct rules_result res;

	go_on(v);
	rules_of(r, &rules);
	rules_check_release(&rules, m, &res, approvers, approvers_len);
	if (ruled(&res, v))
		return;
	if (policy_latest(r, m->name, latest, sizeof(latest))) {
		int cmp = manifest_version_cmp(m->version, latest);

		if (cmp == 0)
			say(v, TS_DUPLICATE, "already_released", "version %s "
			    "is already released", latest);
		else if (cmp < 0)
			say(v, TS_QUARANTINED, "rollback", "version %s is "
			    "lower than %s, already released", m->version,
			    latest);
	}
}

bool
policy_latest(const struct recv *r, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	uint8_t *data;
	size_t n;

	if (snprintf(path, sizeof(path), "%s/released/%s", r->conf->state_dir,
	    name) >= (int)sizeof(path) ||
	    util_read_file(path, PMAN_MAX_VALUE, &data, &n) != 0)
		return false;
	while (n > 0 && data[n - 1] == '\n')
		n--;
	snprintf(buf, len, "%.*s", (int)n, (char *)data);
	free(data);
	return n > 0;
}

int
policy_record_latest(const struct recv *r, const char *name,
    const char *version)
{
	char path[PATH_MAX], line[PMAN_MAX_VALUE + 2], now[PMAN_MAX_VALUE + 1];
	int n;

	/* Never backwards: a recovered release of an older version (after
	 * a crash) must not lower the rollback floor. */
	if (policy_latest(r, name, now, sizeof(now)) &&
	    manifest_version_cmp(version, now) <= 0)
		return 0;
	if (snprintf(path, sizeof(path), "%s/released/%s", r->conf->state_dir,
	    name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	n = snprintf(line, sizeof(line), "%s\n", version);
	return util_write_file_atomic(path, line, (size_t)n, 0600);
}
