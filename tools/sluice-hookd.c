/*
 * sluice-hookd: runs the receiver's hooks as a user of their own.
 *
 * A scanner reads bundle content that came over the link; if that content
 * exploits it, it must not hold the receiver's authority (write the store,
 * edit the rollback records, read receiver.key).  So with hook_socket set,
 * sluice-recv does not run hooks itself: it asks sluice-hookd over a Unix
 * socket, and sluice-hookd runs them as its own user (sluice-hook), in a
 * unit that sees the staged tree and the store read-only and cannot read
 * the receiver's keys (systemd/sluice-hook@.service, socket-activated by
 * systemd/sluice-hook.socket, one instance per request).
 *
 * One request per connection, one logfmt line each way (common/logfmt.h):
 *
 *   -> cmd="..." shell=0|1 [tree="..."] path="..." bundle=... version=...
 *      manifest="..." timeout=<seconds>
 *   <- status=exit code=N | status=signal signo=N | status=timeout |
 *      status=error detail="..."
 *
 * The hook runs in its own process group, stdin /dev/null, with PATH,
 * LANG and the SLUICE_* variables only; the tree is its last argument (or
 * "$1" with a shell) and SLUICE_TREE.  If the connection closes before the
 * hook ends (the receiver is stopping), the group gets SIGTERM, and
 * SIGKILL 5 s later.
 *
 *   sluice-hookd                 the connection is stdin (Accept=yes)
 *   sluice-hookd --listen PATH   accept connections itself (tests, or
 *                                supervisors other than systemd)
 */
#include "common/log.h"
#include "common/logfmt.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define STOP_SECONDS 5

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sluice-hookd [--listen SOCKET]\n"
	    "       sluice-hookd --help | --version\n"
	    "Runs sluice-recv's hooks (hook_socket) as this program's user.\n");
	exit(status);
}

static void
reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reply(int fd, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)util_write_all(fd, line, (size_t)n);
}

/* The peer hung up (the receiver is stopping)? */
static bool
peer_gone(int fd)
{
	struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };
	char c;

	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLRDHUP | POLLERR))
		return true;
	return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

/* One request on connection fd (read and write). */
static int
serve(int in, int out)
{
	static struct logfmt_record rec;
	char line[LOGFMT_MAX_TEXT + 1], env[8][PATH_MAX + 32], *envp[9];
	char *argv[MAX_ARGS + 4], *copy = NULL, *save, *tok;
	const char *cmd, *shell, *tree, *path, *bundle, *version, *manifest,
	    *timeout;
	size_t len = 0;
	uint64_t deadline, term_at = 0;
	int argc = 0, status, n = 0;
	pid_t pid;

	while (len < sizeof(line) - 1) {
		ssize_t k = read(in, line + len, 1);

		if (k <= 0)
			return 1;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	if (logfmt_parse(&rec, line, len) != 0 ||
	    (cmd = logfmt_get(&rec, "cmd")) == NULL || cmd[0] == '\0' ||
	    (path = logfmt_get(&rec, "path")) == NULL) {
		reply(out, "status=error detail=\"malformed request\"");
		return 1;
	}
	shell = logfmt_get(&rec, "shell");
	tree = logfmt_get(&rec, "tree");
	bundle = logfmt_get(&rec, "bundle");
	version = logfmt_get(&rec, "version");
	manifest = logfmt_get(&rec, "manifest");
	timeout = logfmt_get(&rec, "timeout");
	snprintf(env[n++], sizeof(env[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(env[n++], sizeof(env[0]), "LANG=C");
	snprintf(env[n++], sizeof(env[0]), "SLUICE_BUNDLE=%s",
	    bundle != NULL ? bundle : "");
	snprintf(env[n++], sizeof(env[0]), "SLUICE_VERSION=%s",
	    version != NULL ? version : "");
	snprintf(env[n++], sizeof(env[0]), "SLUICE_PATH=%s", path);
	snprintf(env[n++], sizeof(env[0]), "SLUICE_MANIFEST=%s",
	    manifest != NULL ? manifest : "");
	if (tree != NULL)
		snprintf(env[n++], sizeof(env[0]), "SLUICE_TREE=%s", tree);
	for (int i = 0; i < n; i++)
		envp[i] = env[i];
	envp[n] = NULL;
	if (shell != NULL && strcmp(shell, "1") == 0) {
		argv[argc++] = (char *)"/bin/sh";
		argv[argc++] = (char *)"-c";
		argv[argc++] = (char *)cmd;
		argv[argc++] = (char *)"sluice-hook";
		if (tree != NULL)
			argv[argc++] = (char *)tree;
	} else {
		copy = strdup(cmd);
		if (copy == NULL) {
			reply(out, "status=error detail=\"out of memory\"");
			return 1;
		}
		for (tok = strtok_r(copy, " \t", &save);
		    tok != NULL && argc < MAX_ARGS;
		    tok = strtok_r(NULL, " \t", &save))
			argv[argc++] = tok;
		if (tree != NULL)
			argv[argc++] = (char *)tree;
	}
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0) {
		reply(out, "status=error detail=\"fork failed\"");
		free(copy);
		return 1;
	}
	if (pid == 0) {
		if (in != STDIN_FILENO)
			close(in);
		if (out != STDOUT_FILENO && out != in)
			close(out);
		/* Not the connection: the hook's output goes to our stderr
		 * (the journal), never back to the receiver. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		util_exec_hook(argv, envp);
	}
	(void)setpgid(pid, pid);
	free(copy);
	deadline = util_now_ns() + (uint64_t)(strtod(timeout != NULL ?
	    timeout : "600", NULL) * 1e9);
	for (;;) {
		uint64_t now;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		now = util_now_ns();
		if (term_at == 0 && (quit || peer_gone(in))) {
			kill(-pid, SIGTERM);
			term_at = now;
		}
		if ((term_at != 0 && now - term_at > STOP_SECONDS *
		    1000000000ull) || (term_at == 0 && now > deadline)) {
			kill(-pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			if (term_at != 0)
				return 1; /* nobody to tell */
			reply(out, "status=timeout");
			return 0;
		}
		usleep(20000);
	}
	if (WIFSIGNALED(status))
		reply(out, "status=signal signo=%d", WTERMSIG(status));
	else
		reply(out, "status=exit code=%d", WEXITSTATUS(status));
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_un sun;
	struct sigaction sa;
	const char *listen_path = NULL;
	int ch, lfd;

	log_init("sluice-hookd", 0);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_path = optarg; break;
		case 'h': usage(0); break;
		case 'V':
			printf("sluice-hookd %s\n", SLUICE_VERSION_STRING);
			return 0;
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (listen_path == NULL)
		return serve(STDIN_FILENO, STDOUT_FILENO);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(listen_path) >= sizeof(sun.sun_path))
		fatalx("%s: path too long", listen_path);
	strcpy(sun.sun_path, listen_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	(void)unlink(listen_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, 16) < 0)
		fatal("listening on %s", listen_path);
	log_info("listening on %s as uid %u", listen_path,
	    (unsigned)getuid());
	signal(SIGCHLD, SIG_DFL);
	while (!quit) {
		int fd = accept(lfd, NULL, NULL);
		pid_t pid;

		if (fd < 0)
			continue;
		pid = fork();
		if (pid == 0) {
			close(lfd);
			_exit(serve(fd, fd));
		}
		close(fd);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	(void)unlink(listen_path);
	return 0;
}
