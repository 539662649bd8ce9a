/*
 * Release rules; see rules.h.  The order of the checks is the order of
 * the verdicts an operator sees: a bundle lacking approvals says so
 * before it says it has expired.
 */
#include "common/rules.h"
#include "common/conf.h"
#include "common/manifest.h"
#include "common/sign.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void say(struct rules_result *out, enum rules_outcome o,
    const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
say(struct rules_result *out, enum rules_outcome o, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	out->outcome = o;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
}

static void
pass(struct rules_result *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = RULES_PASS;
}

void
rules_from_conf(struct rules *r, const struct recv_conf *c)
{
	memset(r, 0, sizeof(*r));
	r->threshold = c->approval_threshold;
	r->max_files = c->max_files;
	r->max_path_len = c->max_path_len;
	r->max_bytes = c->max_bundle_bytes;
	r->max_age = c->max_bundle_age;
	r->receiver_name = c->receiver_name;
	r->now = (int64_t)(util_realtime_ns() / 1000000000);
}

int
rules_compile_name(regex_t *re, const char *pattern)
{
	char anchored[1024];

	if (snprintf(anchored, sizeof(anchored), "^(%s)$", pattern) >=
	    (int)sizeof(anchored) ||
	    regcomp(re, anchored, REG_EXTENDED | REG_NOSUB) != 0)
		return -EINVAL;
	return 0;
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
rules_check_names(const struct rules *r, const struct manifest *m,
    struct rules_result *out)
{
	size_t i;

	pass(out);
	if (!safe_component(m->name) || !safe_component(m->version)) {
		say(out, RULES_REJECT, "unsafe_name", "bundle name or version "
		    "is not a safe directory name");
		return;
	}
	if (r->name_re != NULL && regexec(r->name_re, m->name, 0, NULL, 0) !=
	    0) {
		say(out, RULES_REJECT, "name_pattern", "bundle name does not "
		    "match name_pattern");
		return;
	}
	if (r->version_re != NULL && regexec(r->version_re, m->version, 0,
	    NULL, 0) != 0) {
		say(out, RULES_REJECT, "version_pattern", "bundle version does "
		    "not match version_pattern");
		return;
	}
	if (m->n_files > r->max_files) {
		say(out, RULES_REJECT, "too_many_files", "%zu files, limit %zu",
		    m->n_files, r->max_files);
		return;
	}
	for (i = 0; i < m->n_files; i++) {
		const char *p = m->files[i].path;

		if (pman_path_check(p, strlen(p), r->max_path_len) !=
		    PMAN_OK) {
			say(out, RULES_REJECT, "unsafe_path", "path %zu is "
			    "unsafe or longer than %zu bytes", i + 1,
			    r->max_path_len);
			return;
		}
	}
	if (m->total_bytes > r->max_bytes)
		say(out, RULES_REJECT, "too_large", "%" PRIu64 " bytes of "
		    "files, limit %" PRIu64, m->total_bytes, r->max_bytes);
}

void
rules_check_release(const struct rules *r, const struct manifest *m,
    struct rules_result *out, char *ids, size_t idslen)
{
	unsigned got;

	pass(out);
	got = manifest_count_approvals(m, r->approvers, r->n_approvers, ids,
	    idslen);
	out->approvals = got;
	if (got < r->threshold) {
		say(out, RULES_HOLD, "approvals", "%u of %u required "
		    "approvals (%zu signatures present)", got, r->threshold,
		    m->n_approvals);
		return;
	}
	if (m->expires != NULL) {
		int64_t exp = util_parse_rfc3339(m->expires);

		if (exp < 0 || exp <= r->now) {
			say(out, RULES_HOLD, "expired", "manifest expired at "
			    "%s", m->expires);
			return;
		}
	}
	/* Old approvals do not stay good for ever: a bundle approved long
	 * ago (a vulnerable version, say) must be approved again. */
	if (r->max_age > 0) {
		int64_t created = m->created != NULL ? util_parse_rfc3339(m->created) :
		    -1;

		if (m->created == NULL) {
			say(out, RULES_HOLD, "expired", "manifest has no "
			    "created time and max_bundle_age is %" PRIu64 " s",
			    r->max_age);
			return;
		}
		if (created < 0 || (r->now > created &&
		    (uint64_t)(r->now - created) > r->max_age)) {
			say(out, RULES_HOLD, "expired", "created at %s, older "
			    "than max_bundle_age (%" PRIu64 " s)", m->created,
			    r->max_age);
			return;
		}
	}
	if (m->destination != NULL && (r->receiver_name == NULL ||
	    strcmp(m->destination, r->receiver_name) != 0))
		say(out, RULES_HOLD, "destination", "manifest is for \"%s\", "
		    "this receiver is %s%s%s", m->destination,
		    r->receiver_name != NULL ? "\"" : "",
		    r->receiver_name != NULL ? r->receiver_name :
		    "unnamed (no receiver_name)",
		    r->receiver_name != NULL ? "\"" : "");
}
