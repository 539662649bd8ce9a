/*
 * Policy: what the receiver admits and what it releases.  Every decision
 * about a bundle's fate that does not depend on the bytes being intact is
 * here, in one place, as functions that look and never act: lifecycle.c
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

/* A bundle name or version becomes one directory name in the store. */
static bool
safe_component(const char *s)
{
	size_t len = strlen(s);

	return strchr(s, '/') == NULL &&
	    pman_path_check(s, len, PMAN_MAX_COMPONENT) == PMAN_OK &&
	    s[0] != '.';
}

void
policy_admit_manifest(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v)
{
	char latest[PMAN_MAX_VALUE + 1];

	go_on(v);
	if (!safe_component(m->name) || !safe_component(m->version)) {
		say(v, TS_REJECTED, "unsafe_name", "bundle name or version is "
		    "not a safe directory name");
		return;
	}
	if (regexec(&r->name_re, m->name, 0, NULL, 0) != 0) {
		say(v, TS_REJECTED, "name_pattern", "bundle name does not "
		    "match name_pattern");
		return;
	}
	if (regexec(&r->version_re, m->version, 0, NULL, 0) != 0) {
		say(v, TS_REJECTED, "version_pattern", "bundle version does "
		    "not match version_pattern");
		return;
	}
	/* The same version again: say so once, and stop receiving it. */
	if (policy_latest(r, m->name, latest, sizeof(latest)) &&
	    manifest_version_cmp(m->version, latest) == 0)
		say(v, TS_DUPLICATE, "already_released", "version %s is "
		    "already released", latest);
}

/* "YYYY-MM-DDTHH:MM:SSZ" to seconds since the epoch; -1 if malformed. */
static int64_t
parse_utc(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}

void
policy_release(const struct recv *r, const struct manifest *m,
    struct policy_verdict *v, char *approvers, size_t approvers_len)
{
	const struct recv_conf *c = r->conf;
	char latest[PMAN_MAX_VALUE + 1];
	unsigned got;

	go_on(v);
	got = manifest_count_approvals(m, r->approvers, r->n_approvers,
	    approvers, approvers_len);
	if (got < c->approval_threshold) {
		say(v, TS_QUARANTINED, "approvals", "%u of %u required "
		    "approvals (%zu signatures present)", got,
		    c->approval_threshold, m->n_approvals);
		return;
	}
	if (m->expires != NULL) {
		int64_t exp = parse_utc(m->expires);

		if (exp < 0 || exp <= (int64_t)(util_realtime_ns() /
		    1000000000)) {
			say(v, TS_QUARANTINED, "expired", "manifest expired "
			    "at %s", m->expires);
			return;
		}
	}
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
