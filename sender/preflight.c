/*
 * Preflight for sluice-send: every start-up check that can be made
 * without sending anything, for -n (the unit's ExecStartPre) and at every
 * start alike.  One line per problem on stderr, naming the file, the line
 * and the setting.
 *
 *   destination a host name resolves
 *   key         loads as a secret key (0600; a public key named there is
 *               said to be one)
 *   link_key    loads, when set
 *   spool_dir, sent_dir, failed_dir
 *               exist or can be made, and are on one file system (a
 *               bundle moves between them by rename)
 */
#include "sender/preflight.h"
#include "common/sign.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct pf {
	const struct sender_conf *c;
	unsigned problems;
};

static void problem(struct pf *pf, const char *setting, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct pf *pf, const char *setting, const char *fmt, ...)
{
	char where[PATH_MAX + 64], msg[PATH_MAX + 256];
	va_list ap;

	sender_conf_where(pf->c, setting, where, sizeof(where));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", where, msg);
	pf->problems++;
}

/* The directory, or its nearest existing ancestor if it can be made
 * there; *dev receives that one's device. */
static bool
dir_ok(struct pf *pf, const char *setting, const char *path, dev_t *dev)
{
	char at[PATH_MAX];
	struct stat st;

	snprintf(at, sizeof(at), "%s", path);
	while (stat(at, &st) < 0) {
		char *slash = strrchr(at, '/');

		if (errno != ENOENT || slash == NULL || slash == at) {
			problem(pf, setting, "%s: %s", path, strerror(errno));
			return false;
		}
		*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode)) {
		problem(pf, setting, "%s: %s is not a directory", path, at);
		return false;
	}
	if (access(at, W_OK | X_OK) != 0) {
		problem(pf, setting, "%s: %s is not writable: %s", path, at,
		    strerror(errno));
		return false;
	}
	*dev = st.st_dev;
	return true;
}

unsigned
sender_preflight(const struct sender_conf *c)
{
	struct pf pf = { c, 0 };
	struct sign_seckey *sk;
	struct sign_linkkey *lk;
	char err[256] = "";
	dev_t spool, other;
	int rc;

	{
		struct sockaddr_storage ss;
		socklen_t sl;

		if (util_resolve_addr(c->destination, &ss, &sl, err,
		    sizeof(err)) != 0)
			problem(&pf, "destination", "%s", err);
		err[0] = '\0';
	}
	sk = sign_seckey_load(c->key, &rc, err, sizeof(err));
	if (sk == NULL)
		problem(&pf, "key", "%s: %s", c->key, err);
	sign_seckey_free(sk);
	if (c->link_key != NULL) {
		err[0] = '\0';
		lk = sign_linkkey_load(c->link_key, &rc, err, sizeof(err));
		if (lk == NULL)
			problem(&pf, "link_key", "%s: %s", c->link_key, err);
		sign_linkkey_free(lk);
	}
	if (c->spool_dir != NULL &&
	    dir_ok(&pf, "spool_dir", c->spool_dir, &spool)) {
		if (dir_ok(&pf, "sent_dir", c->sent_dir, &other) &&
		    other != spool)
			problem(&pf, "sent_dir", "%s is on another file system "
			    "than spool_dir %s", c->sent_dir, c->spool_dir);
		if (dir_ok(&pf, "failed_dir", c->failed_dir, &other) &&
		    other != spool)
			problem(&pf, "failed_dir", "%s is on another file "
			    "system than spool_dir %s", c->failed_dir,
			    c->spool_dir);
	}
	return pf.problems;
}
