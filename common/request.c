/*
 * Operator requests: see request.h.  Both files are one logfmt line,
 * written through logfmt_escape and read through the strict parser, so a
 * reason or a signature cannot fake another field.
 */
#include "common/request.h"
#include "common/logfmt.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const action_names[] = {
	[REQUEST_RELEASE] = "release",
	[REQUEST_APPROVE] = "approve",
	[REQUEST_PURGE] = "purge",
};

const char *
request_action_name(enum request_action a)
{
	return a >= REQUEST_RELEASE && a <= REQUEST_PURGE ?
	    action_names[a] : "?";
}

int
request_write(const char *dir, const struct request *rq, char *name,
    size_t cap)
{
	char line[2048], path[PATH_MAX], u[200], r[3 * REQUEST_REASON_MAX],
	    s[3 * REQUEST_SIG_MAX];
	size_t n;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, cap, "%lld.%09ld-%ld", (long long)ts.tv_sec,
	    ts.tv_nsec, (long)getpid());
	logfmt_escape(u, sizeof(u), rq->user);
	n = (size_t)snprintf(line, sizeof(line), "action=%s transfer=%016"
	    PRIx64 " user=%s uid=%u", request_action_name(rq->action),
	    rq->transfer, u, rq->uid);
	if (rq->override)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    " override=yes");
	if (rq->reason[0] != '\0') {
		logfmt_escape(r, sizeof(r), rq->reason);
		n += (size_t)snprintf(line + n, sizeof(line) - n, " reason=%s",
		    r);
	}
	if (rq->signature[0] != '\0') {
		logfmt_escape(s, sizeof(s), rq->signature);
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    " signature=%s", s);
	}
	if (n >= sizeof(line) - 1)
		return -E2BIG;
	line[n++] = '\n';
	if (snprintf(path, sizeof(path), "%s/%s.req", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	return util_write_file_atomic(path, line, n, 0600);
}

int
request_parse(const char *text, size_t len, struct request *rq, char *err,
    size_t errlen)
{
	struct logfmt_record rec;
	const char *a, *t, *u, *id, *o, *r, *s;
	uint8_t raw[8];
	unsigned i;

	memset(rq, 0, sizeof(*rq));
	if (logfmt_parse(&rec, text, len) != 0) {
		util_seterr(err, errlen, "not a request line");
		return -EBADMSG;
	}
	a = logfmt_get(&rec, "action");
	t = logfmt_get(&rec, "transfer");
	u = logfmt_get(&rec, "user");
	id = logfmt_get(&rec, "uid");
	o = logfmt_get(&rec, "override");
	r = logfmt_get(&rec, "reason");
	s = logfmt_get(&rec, "signature");
	if (a == NULL || t == NULL || strlen(t) != 16 ||
	    strspn(t, "0123456789abcdef") != 16 ||
	    util_unhex(raw, 8, t) != 0) {
		util_seterr(err, errlen, "no action or transfer");
		return -EBADMSG;
	}
	for (i = REQUEST_RELEASE; i <= REQUEST_PURGE; i++)
		if (strcmp(a, action_names[i]) == 0)
			rq->action = (enum request_action)i;
	if (rq->action == 0) {
		util_seterr(err, errlen, "unknown action %.32s", a);
		return -EBADMSG;
	}
	for (i = 0; i < 8; i++)
		rq->transfer = rq->transfer << 8 | raw[i];
	snprintf(rq->user, sizeof(rq->user), "%s", u != NULL ? u : "?");
	rq->uid = id != NULL ? (unsigned)strtoul(id, NULL, 10) : 0;
	rq->override = o != NULL && strcmp(o, "yes") == 0;
	if ((r != NULL && strlen(r) > REQUEST_REASON_MAX) ||
	    (s != NULL && strlen(s) > REQUEST_SIG_MAX)) {
		util_seterr(err, errlen, "reason or signature too long");
		return -EBADMSG;
	}
	snprintf(rq->reason, sizeof(rq->reason), "%s", r != NULL ? r : "");
	snprintf(rq->signature, sizeof(rq->signature), "%s",
	    s != NULL ? s : "");
	return 0;
}

int
request_answer(const char *dir, const char *name,
    const struct request_result *res)
{
	char line[1600], path[PATH_MAX], st[64], d[1400];
	int n;

	logfmt_escape(st, sizeof(st), res->state[0] ? res->state : "-");
	logfmt_escape(d, sizeof(d), res->detail[0] ? res->detail : "-");
	n = snprintf(line, sizeof(line), "ok=%s state=%s detail=%s\n",
	    res->ok ? "yes" : "no", st, d);
	if (snprintf(path, sizeof(path), "%s/%s.res", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	return util_write_file_atomic(path, line, (size_t)n, 0600);
}

int
request_read_answer(const char *dir, const char *name,
    struct request_result *res)
{
	struct logfmt_record rec;
	char path[PATH_MAX];
	const char *ok, *st, *d;
	uint8_t *buf;
	size_t len;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s.res", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	rc = util_read_file(path, 4096, &buf, &len);
	if (rc != 0)
		return rc;
	rc = logfmt_parse(&rec, (const char *)buf, len);
	free(buf);
	if (rc != 0)
		return -EBADMSG;
	ok = logfmt_get(&rec, "ok");
	st = logfmt_get(&rec, "state");
	d = logfmt_get(&rec, "detail");
	memset(res, 0, sizeof(*res));
	res->ok = ok != NULL && strcmp(ok, "yes") == 0;
	snprintf(res->state, sizeof(res->state), "%s", st != NULL ? st : "-");
	snprintf(res->detail, sizeof(res->detail), "%s", d != NULL ? d : "-");
	return 0;
}
