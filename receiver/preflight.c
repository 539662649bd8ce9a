/*
 * Preflight: every check that would otherwise only fail later, at the
 * first bundle or worse, made before anything is opened for good.  The
 * same function runs for `sluice-recv -n` (the unit's ExecStartPre) and
 * at every start, so the two cannot disagree.  Each problem is one line
 * on stderr naming the file, the line and the setting; nothing is
 * created, bound or written here.
 *
 *   keys        sender_keys and approvers load as public keys, and each
 *               approver key is listed once; receiver_key (with an
 *               audit_log) and link_key load as secret keys (0600)
 *   directories staging_dir, store_dir and state_dir exist or can be
 *               made; so can the directories of quarantine_log,
 *               audit_log and metrics_file; staging and store are on one
 *               file system (a release is one rename)
 *   hooks       the scan and release hooks' programs exist and are
 *               executable (their first word, looked up in the hooks'
 *               PATH unless hook_shell)
 */
#include "receiver/recv.h"
#include "common/util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HOOK_PATH "/usr/local/bin:/usr/bin:/bin"

struct pf {
	const struct recv_conf *c;
	unsigned problems;
};

static void problem(struct pf *pf, const char *setting, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct pf *pf, const char *setting, const char *fmt, ...)
{
	char where[PATH_MAX + 64], msg[PATH_MAX + 256];
	va_list ap;

	recv_conf_where(pf->c, setting, where, sizeof(where));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", where, msg);
	pf->problems++;
}

/*
 * The nearest existing ancestor of path (path itself if it exists) into
 * buf, with its stat; false if none can be found.
 */
static bool
existing(const char *path, char *buf, size_t len, struct stat *st)
{
	snprintf(buf, len, "%s", path);
	for (;;) {
		char *slash;

		if (stat(buf, st) == 0)
			return true;
		if (errno != ENOENT)
			return false;
		slash = strrchr(buf, '/');
		if (slash == NULL)
			return false;
		if (slash == buf) {
			buf[1] = '\0';
			return stat(buf, st) == 0;
		}
		*slash = '\0';
	}
}

/* A directory that exists, or could be made by this user. */
static bool
dir_ok(struct pf *pf, const char *setting, const char *path, struct stat *st)
{
	char at[PATH_MAX];

	if (!existing(path, at, sizeof(at), st)) {
		problem(pf, setting, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st->st_mode)) {
		problem(pf, setting, "%s: %s is not a directory", path, at);
		return false;
	}
	if (strcmp(at, path) != 0 && access(at, W_OK | X_OK) != 0) {
		problem(pf, setting, "%s does not exist, and %s cannot be "
		    "written to make it: %s", path, at, strerror(errno));
		return false;
	}
	if (strcmp(at, path) == 0 && access(at, W_OK | X_OK) != 0) {
		problem(pf, setting, "%s: not writable: %s", path,
		    strerror(errno));
		return false;
	}
	return true;
}

/* The directory a file setting lives in. */
static void
parent_ok(struct pf *pf, const char *setting, const char *file)
{
	char copy[PATH_MAX];
	struct stat st;

	if (file == NULL)
		return;
	snprintf(copy, sizeof(copy), "%s", file);
	(void)dir_ok(pf, setting, dirname(copy), &st);
}

static void
pubkeys_ok(struct pf *pf, const char *setting, char *const *paths,
    unsigned n)
{
	struct sign_pubkey keys[CONF_MAX_KEYS];
	char err[256];
	unsigned i, j;

	for (i = 0; i < n; i++) {
		err[0] = '\0';
		if (sign_pubkey_load(paths[i], &keys[i], err,
		    sizeof(err)) != 0) {
			problem(pf, setting, "%s: %s", paths[i], err);
			memset(&keys[i], 0, sizeof(keys[i]));
			continue;
		}
		for (j = 0; j < i; j++)
			if (memcmp(keys[j].pk, keys[i].pk, SIGN_PK_LEN) == 0)
				problem(pf, setting, "%s and %s are the same "
				    "key: each key counts once", paths[j],
				    paths[i]);
	}
}

/* The program a hook command runs: its first word, resolved in PATH. */
static void
hook_ok(struct pf *pf, const char *setting, const char *cmd)
{
	char prog[PATH_MAX], path[] = HOOK_PATH, *dir, *save, full[PATH_MAX];
	size_t n;

	if (cmd == NULL)
		return;
	if (pf->c->hook_shell) {
		if (access("/bin/sh", X_OK) != 0)
			problem(pf, setting, "/bin/sh: %s", strerror(errno));
		return;
	}
	n = strcspn(cmd, " \t");
	if (n == 0 || n >= sizeof(prog)) {
		problem(pf, setting, "\"%s\": no program to run", cmd);
		return;
	}
	memcpy(prog, cmd, n);
	prog[n] = '\0';
	if (strchr(prog, '/') != NULL) {
		if (access(prog, X_OK) != 0)
			problem(pf, setting, "%s: %s", prog, strerror(errno));
		return;
	}
	for (dir = strtok_r(path, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/%s", dir, prog);
		if (access(full, X_OK) == 0)
			return;
	}
	problem(pf, setting, "%s: not found in the hooks' PATH (%s)", prog,
	    HOOK_PATH);
}

/* Does something accept connections on the Unix socket at path?  (A
 * socket-activated sluice-hookd: systemd does, and starts one per
 * connection; the probe's connection just ends.) */
static bool
listening(const char *path)
{
	struct sockaddr_un sun;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return false;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return rc == 0;
}

unsigned
preflight(const struct recv_conf *c)
{
	struct pf pf = { c, 0 };
	struct stat staging, store, st;
	bool have_staging, have_store;
	char err[256];
	unsigned i;
	int rc;

	pubkeys_ok(&pf, "sender_keys", c->sender_keys, c->n_sender_keys);
	pubkeys_ok(&pf, "approvers", c->approvers, c->n_approvers);
	if (c->audit_log != NULL) {
		struct sign_seckey *sk;

		if (c->receiver_key == NULL) {
			problem(&pf, "receiver_key", "required with audit_log "
			    "(it signs the audit log)");
		} else {
			err[0] = '\0';
			sk = sign_seckey_load(c->receiver_key, &rc, err,
			    sizeof(err));
			if (sk == NULL)
				problem(&pf, "receiver_key", "%s: %s",
				    c->receiver_key, err);
			sign_seckey_free(sk);
		}
	}
	if (c->link_key != NULL) {
		struct sign_linkkey *lk;

		err[0] = '\0';
		lk = sign_linkkey_load(c->link_key, &rc, err, sizeof(err));
		if (lk == NULL)
			problem(&pf, "link_key", "%s: %s", c->link_key, err);
		sign_linkkey_free(lk);
	}
	have_staging = dir_ok(&pf, "staging_dir", c->staging_dir, &staging);
	have_store = dir_ok(&pf, "store_dir", c->store_dir, &store);
	(void)dir_ok(&pf, "state_dir", c->state_dir, &st);
	if (have_staging && have_store && staging.st_dev != store.st_dev)
		problem(&pf, "store_dir", "%s is on another file system than "
		    "staging_dir %s: a release is one rename from one to the "
		    "other, so they must share one", c->store_dir,
		    c->staging_dir);
	parent_ok(&pf, "quarantine_log", c->quarantine_log);
	parent_ok(&pf, "audit_log", c->audit_log);
	parent_ok(&pf, "metrics_file", c->metrics_file);
	parent_ok(&pf, "link_journal_dir", c->link_journal_dir);
	if (c->capture_interface != NULL &&
	    if_nametoindex(c->capture_interface) == 0)
		problem(&pf, "capture_interface", "%s: no such interface",
		    c->capture_interface);
	if (c->hook_socket != NULL && stat(c->hook_socket, &st) < 0)
		problem(&pf, "hook_socket", "%s: no sluice-hookd listening "
		    "there: %s", c->hook_socket, strerror(errno));
	else if (c->hook_socket != NULL && !S_ISSOCK(st.st_mode))
		problem(&pf, "hook_socket", "%s: not a socket",
		    c->hook_socket);
	else if (c->hook_socket != NULL && !listening(c->hook_socket))
		problem(&pf, "hook_socket", "%s: no sluice-hookd listening "
		    "there: %s", c->hook_socket, strerror(errno));
	hook_ok(&pf, "scan_hook", c->scan_hook);
	for (i = 0; i < c->n_release_hooks; i++)
		hook_ok(&pf, "release_hooks", c->release_hooks[i]);
	return pf.problems;
}
