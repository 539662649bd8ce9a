/*
 * Hooks: the scan hook (run by the verifier on the staged tree, before a
 * release) and the release hooks (run here, on a thread of their own,
 * after the release is recorded).  Hooks run in their own process group,
 * without a shell unless hook_shell is set, with stdin from /dev/null and
 * a fixed environment: PATH, LANG, SLUICE_BUNDLE, SLUICE_VERSION,
 * SLUICE_PATH, SLUICE_MANIFEST and, for the scan hook, SLUICE_TREE.  The
 * tree to scan is also the last argument, in both modes: with hook_shell
 * it is "$1" of the command.
 *
 * Shutdown ends a running hook: SIGTERM to its process group, SIGKILL
 * HOOKS_STOP_SECONDS later (the unit's TimeoutStopSec is above that).  A
 * hook ended so is a retryable outcome, never a verdict on the bundle.
 *
 * After a release, staging/<id> keeps its "releasing" marker until the
 * release hooks have run; only then is it removed.  A receiver killed
 * while a release hook runs finds the marker at the next start and runs
 * the release hooks again (at least once, never lost).
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/logfmt.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOOK_MAX_ARGS 64

struct hook_job {
	struct hook_job *next;
	uint64_t id;
	char dir[64];            /* under staging_dir: removed after */
	char name[PMAN_MAX_VALUE + 1];
	char version[PMAN_MAX_VALUE + 1];
};

struct hooks {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hook_job *todo, **tail;
	bool quit;                /* under lock: the thread should exit */
	_Atomic bool stop;        /* running hooks are to be ended */
};

static void *hooks_main(void *arg);

int
hooks_init(struct recv *r)
{
	struct hooks *h = calloc(1, sizeof(*h));
	int rc;

	if (h == NULL)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->tail = &h->todo;
	r->hooks = h;
	rc = pthread_create(&h->thread, NULL, hooks_main, r);
	if (rc != 0)
		return -rc;
	(void)pthread_setname_np(h->thread, "recv-hooks");
	h->started = true;
	return 0;
}

void
hooks_stop(struct recv *r)
{
	struct hooks *h = r->hooks;

	if (h == NULL)
		return;
	atomic_store(&h->stop, true);
	pthread_mutex_lock(&h->lock);
	h->quit = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void
hooks_fini(struct recv *r)
{
	struct hooks *h = r->hooks;
	struct hook_job *j;

	if (h == NULL)
		return;
	hooks_stop(r);
	if (h->started)
		pthread_join(h->thread, NULL);
	while ((j = h->todo) != NULL) {
		h->todo = j->next;
		free(j);
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
	r->hooks = NULL;
}

/* Environment for hooks: a fixed PATH and the bundle's facts. */
static void
hook_env(char env[7][PATH_MAX + 32], char *envp[8], const struct manifest *m,
    const char *path, const char *tree)
{
	unsigned n = 0;

	snprintf(env[n++], sizeof(env[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(env[n++], sizeof(env[0]), "LANG=C");
	snprintf(env[n++], sizeof(env[0]), "SLUICE_BUNDLE=%s", m->name);
	snprintf(env[n++], sizeof(env[0]), "SLUICE_VERSION=%s", m->version);
	snprintf(env[n++], sizeof(env[0]), "SLUICE_PATH=%s", path);
	snprintf(env[n++], sizeof(env[0]), "SLUICE_MANIFEST=%s/%s", path,
	    MANIFEST_BUNDLE_FILE);
	if (tree != NULL)
		snprintf(env[n++], sizeof(env[0]), "SLUICE_TREE=%s", tree);
	for (unsigned i = 0; i < n; i++)
		envp[i] = env[i];
	envp[n] = NULL;
}

/*
 * hook_socket: the hook runs in sluice-hookd, as its own user, not here
 * (see tools/sluice-hookd.c for the one-line protocol).  Closing the
 * connection tells it to end the hook (shutdown).
 */
static int
run_remote(struct recv *r, const char *cmd, const struct manifest *m,
    const char *path, const char *tree, bool *stopped, char *why,
    size_t whylen)
{
	static struct logfmt_record rec;
	char line[LOGFMT_MAX_TEXT], e[5][PATH_MAX * 3], reply[600];
	struct sockaddr_un sun;
	const char *st, *v;
	uint64_t deadline;
	size_t len = 0;
	int fd, n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    r->conf->hook_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun,
	    sizeof(sun)) < 0) {
		snprintf(why, whylen, "cannot reach sluice-hookd at %s: %s",
		    r->conf->hook_socket, strerror(errno));
		if (fd >= 0)
			close(fd);
		*stopped = true; /* this machine's fault: retryable */
		return -1;
	}
	logfmt_escape(e[0], sizeof(e[0]), cmd);
	logfmt_escape(e[1], sizeof(e[1]), path);
	logfmt_escape(e[2], sizeof(e[2]), m->name);
	logfmt_escape(e[3], sizeof(e[3]), m->version);
	n = snprintf(line, sizeof(line), "cmd=%s shell=%d path=%s bundle=%s "
	    "version=%s timeout=%.0f", e[0], r->conf->hook_shell ? 1 : 0,
	    e[1], e[2], e[3], r->conf->hook_timeout);
	snprintf(e[4], sizeof(e[4]), "%s/%s", path, MANIFEST_BUNDLE_FILE);
	logfmt_escape(e[1], sizeof(e[1]), e[4]);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " manifest=%s",
	    e[1]);
	if (tree != NULL) {
		logfmt_escape(e[1], sizeof(e[1]), tree);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " tree=%s",
		    e[1]);
	}
	if (n >= (int)sizeof(line) - 1 || (line[n++] = '\n',
	    util_write_all(fd, line, (size_t)n) != 0)) {
		close(fd);
		snprintf(why, whylen, "cannot send the request to sluice-hookd");
		*stopped = true;
		return -1;
	}
	deadline = util_now_ns() + (uint64_t)((r->conf->hook_timeout + 10) *
	    1e9);
	while (len < sizeof(reply) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t k;

		if (atomic_load(&r->hooks->stop) ||
		    util_now_ns() > deadline) {
			/* Closing the connection ends the hook there. */
			close(fd);
			*stopped = atomic_load(&r->hooks->stop);
			snprintf(why, whylen, *stopped ? "ended by shutdown" :
			    "sluice-hookd did not answer in time");
			return -1;
		}
		if (poll(&p, 1, 50) <= 0)
			continue;
		k = read(fd, reply + len, 1);
		if (k <= 0)
			break;
		if (reply[len] == '\n')
			break;
		len++;
	}
	close(fd);
	reply[len] = '\0';
	if (logfmt_parse(&rec, reply, len) != 0 ||
	    (st = logfmt_get(&rec, "status")) == NULL) {
		snprintf(why, whylen, "sluice-hookd gave no answer");
		*stopped = true;
		return -1;
	}
	if (strcmp(st, "exit") == 0 && (v = logfmt_get(&rec, "code")) != NULL) {
		n = atoi(v);
		snprintf(why, whylen, "exit status %d (as the hook user)", n);
		return n;
	}
	if (strcmp(st, "signal") == 0 &&
	    (v = logfmt_get(&rec, "signo")) != NULL)
		snprintf(why, whylen, "killed by signal %s", v);
	else if (strcmp(st, "timeout") == 0)
		snprintf(why, whylen, "timed out after %.0f s",
		    r->conf->hook_timeout);
	else
		snprintf(why, whylen, "sluice-hookd: %s",
		    (v = logfmt_get(&rec, "detail")) != NULL ? v : st);
	return -1;
}

int
hooks_run(struct recv *r, const char *cmd, const struct manifest *m,
    const char *path, const char *tree, bool *stopped, char *why,
    size_t whylen)
{
	char *copy = NULL, *argv[HOOK_MAX_ARGS + 2], *save, *tok;
	char env[7][PATH_MAX + 32], *envp[8];
	uint64_t deadline, term_at = 0;
	int argc = 0, status;
	pid_t pid, w;

	*stopped = false;
	if (r->conf->hook_socket != NULL)
		return run_remote(r, cmd, m, path, tree, stopped, why,
		    whylen);
	hook_env(env, envp, m, path, tree);
	if (r->conf->hook_shell) {
		static char sh[] = "/bin/sh", dash_c[] = "-c",
		    name[] = "sluice-hook";

		argv[argc++] = sh;
		argv[argc++] = dash_c;
		argv[argc++] = (char *)cmd;
		argv[argc++] = name;
		if (tree != NULL)
			argv[argc++] = (char *)tree;
	} else {
		copy = strdup(cmd);
		if (copy == NULL)
			return -1;
		for (tok = strtok_r(copy, " \t", &save);
		    tok != NULL && argc < HOOK_MAX_ARGS;
		    tok = strtok_r(NULL, " \t", &save))
			argv[argc++] = tok;
		if (tree != NULL && argc > 0)
			argv[argc++] = (char *)tree;
	}
	argv[argc] = NULL;
	if (argc == 0) {
		free(copy);
		snprintf(why, whylen, "empty command");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		free(copy);
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		util_exec_hook(argv, envp);
	(void)setpgid(pid, pid); /* no race with the kill below */
	free(copy);
	deadline = util_now_ns() + (uint64_t)(r->conf->hook_timeout * 1e9);
	for (;;) {
		uint64_t now;

		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			return -1;
		}
		now = util_now_ns();
		if (atomic_load(&r->hooks->stop) && term_at == 0) {
			/* Shutdown: its process group, not just the hook. */
			kill(-pid, SIGTERM);
			term_at = now;
			*stopped = true;
		}
		if ((term_at != 0 && now - term_at > HOOKS_STOP_SECONDS *
		    1000000000ull) || (term_at == 0 && now > deadline)) {
			kill(-pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			if (*stopped)
				snprintf(why, whylen, "ended by shutdown");
			else
				snprintf(why, whylen, "timed out after %.0f s",
				    r->conf->hook_timeout);
			return -1;
		}
		usleep(20000);
	}
	if (*stopped) {
		snprintf(why, whylen, "ended by shutdown");
		return -1;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whylen, "killed by signal %d", WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) == 127)
		snprintf(why, whylen, "exit status 127 (command not found?)");
	else
		snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

void
hooks_enqueue(struct recv *r, uint64_t id, const char *name,
    const char *version, const char *dir)
{
	struct hooks *h = r->hooks;
	struct hook_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		log_warnx("out of memory: release hooks of %016" PRIx64 " run "
		    "at the next start", id);
		return;
	}
	j->id = id;
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->version, sizeof(j->version), "%s", version);
	pthread_mutex_lock(&h->lock);
	*h->tail = j;
	h->tail = &j->next;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* The release hooks of one release, then its staging directory. */
static void
run_job(struct recv *r, const struct hook_job *j)
{
	struct manifest m;
	char path[PATH_MAX], why[128];
	unsigned i;
	bool stopped = false;

	memset(&m, 0, sizeof(m));
	m.name = (char *)j->name;
	m.version = (char *)j->version;
	snprintf(path, sizeof(path), "%s/%s/%s", r->conf->store_dir, j->name,
	    j->version);
	for (i = 0; i < r->conf->n_release_hooks && !stopped; i++) {
		int rc = hooks_run(r, r->conf->release_hooks[i], &m, path,
		    NULL, &stopped, why, sizeof(why));

		if (stopped)
			log_warnx("transfer %016" PRIx64 ": release hook \"%s\" "
			    "ended by shutdown; the release hooks run again "
			    "at the next start", j->id,
			    r->conf->release_hooks[i]);
		else if (rc != 0)
			log_warnx("transfer %016" PRIx64 ": release hook \"%s\" "
			    "failed (%s); the release stands", j->id,
			    r->conf->release_hooks[i], why);
	}
	if (stopped)
		return;
	if (util_path_join(path, sizeof(path), r->conf->staging_dir,
	    j->dir) == 0)
		(void)util_rmtree(path);
}

static void *
hooks_main(void *arg)
{
	struct recv *r = arg;
	struct hooks *h = r->hooks;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct hook_job *j;

		while (h->todo == NULL && !h->quit)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->quit)
			break;
		j = h->todo;
		h->todo = j->next;
		if (h->todo == NULL)
			h->tail = &h->todo;
		pthread_mutex_unlock(&h->lock);
		run_job(r, j);
		free(j);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}
