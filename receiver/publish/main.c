/*
 * sluice-publish: finds bundles the receiver has released and publishes
 * each into every store whose rule matches its name.
 *
 * A release is store_dir/NAME/VERSION/ holding .sluice/manifest: the
 * receiver renames the whole directory in, so its existence means it is
 * complete.  We learn of releases by inotify (on store_dir, each NAME
 * directory, and state_dir/retry/ for retry requests) and by a rescan
 * every rescan_interval seconds, so anything released while we were down
 * or missed by inotify (its queue overflowed) is found at the next scan.
 *
 * Before any store sees a bundle, manifest_load_bundle checks every file
 * against the signed manifest: a released file changed since release is
 * PUBLISH_FAILED reason=bundle_mismatch, permanently.  A failed publish is
 * retried after retry_backoff seconds, doubling up to retry_backoff_max,
 * until `retries` retries are spent; then it is final.  Defaults: 5 s,
 * 600 s, 20 retries (about 2.5 hours of trying).
 *
 * --once: one pass over everything not yet PUBLISHED or finally failed,
 * ignoring backoff times; exit 0 if every attempt succeeded, else 1.
 */
#include "receiver/publish/publish.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/sign.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct pub {
	const struct pub_conf *c;
	struct pub_state_ctx *st;
	int ino;                /* inotify, -1 in --once */
	bool once;
	unsigned failed;        /* attempts failed in this run */
	int64_t next_due;       /* earliest backoff expiry seen, 0: none */
};

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sluice-publish -c publish.conf [--once] [-n] [-p] [-v]\n"
	    "  -c FILE    configuration file (see sluice-publish(8))\n"
	    "  --once     publish everything pending, then exit: 0 if every\n"
	    "             publish succeeded, 1 otherwise\n"
	    "  -n         check the configuration, as at start, and exit\n"
	    "  -p         print the effective configuration and exit\n"
	    "  -v         more diagnostics (repeat for debug)\n"
	    "  --help     this text\n"
	    "  --version  the release\n");
	exit(status);
}

static int64_t
now_s(void)
{
	return (int64_t)(util_realtime_ns() / 1000000000);
}

/* SIGTERM waits in the signalfd while a scan runs: a scan of a long
 * backlog stops between two store steps rather than at its end. */
static bool
stop_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

static int
publish_to(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	switch (s->type) {
	case STORE_DIRECTORY:
		return store_dir_publish(s, b, res);
	case STORE_OCI:
		return store_oci_publish(s, b, res);
	case STORE_S3:
		return store_s3_publish(s, b, res);
	}
	return pub_fail(res, true, "config", "unknown store type");
}

/* The entries of r that need an attempt now; their store indices. */
static size_t
due(struct pub *p, struct pub_record *r, size_t *idx)
{
	const struct pub_conf *c = p->c;
	size_t si, n = 0;
	int64_t now = now_s();

	for (si = 0; si < c->n_stores; si++) {
		struct pub_entry *e;

		if (!pub_conf_wants(c, si, r->name))
			continue;
		if ((e = pub_record_entry(r, c->stores[si].name)) == NULL)
			continue;
		if (e->state == PUB_PUBLISHED || (e->state == PUB_FAILED &&
		    e->final))
			continue;
		if (!p->once && e->state == PUB_FAILED && e->next > now) {
			if (p->next_due == 0 || e->next < p->next_due)
				p->next_due = e->next;
			continue;
		}
		idx[n++] = si;
	}
	return n;
}

static void
publish_bundle(struct pub *p, const char *name, const char *version,
    const char *dir)
{
	const struct pub_conf *c = p->c;
	struct pub_record *r = malloc(sizeof(*r));
	struct manifest *m = NULL;
	struct pub_result res;
	struct pub_bundle b;
	size_t idx[64], n, i;
	char err[512] = "";
	int rc;

	if (r == NULL)
		return;
	if ((rc = pub_record_load(c->state_dir, name, version, r)) != 0) {
		log_warnx("state of %s %s: %s", name, version, strerror(-rc));
		goto out;
	}
	pub_state_recover(p->st, r);
	if ((n = due(p, r, idx)) == 0)
		goto out;
	rc = manifest_load_bundle(dir, &m, err, sizeof(err));
	if (rc == 0 && (strcmp(m->name, name) != 0 ||
	    strcmp(m->version, version) != 0)) {
		snprintf(err, sizeof(err), "manifest says %s %s", m->name,
		    m->version);
		rc = -EINVAL;
	}
	if (rc != 0) {
		uint8_t *digest = NULL;

		/* The digest of what the manifest says, for the audit
		 * record, when at least the manifest parses. */
		manifest_free(m);
		m = NULL;
		if (manifest_peek_bundle(dir, &m, NULL, 0) == 0)
			digest = m->digest;
		pub_fail(&res, true, "bundle_mismatch", "%s", err);
		log_warnx("%s %s: not published: %s", name, version, err);
		for (i = 0; i < n; i++) {
			pub_state_move(p->st, r, pub_record_entry(r,
			    c->stores[idx[i]].name), PUB_FAILED, &res, digest);
			p->failed++;
		}
		goto out;
	}
	b.name = m->name;
	b.version = m->version;
	b.dir = dir;
	b.m = m;
	for (i = 0; i < n && !stop_pending(); i++) {
		const struct pub_store *s = &c->stores[idx[i]];
		struct pub_entry *e = pub_record_entry(r, s->name);

		if (pub_state_move(p->st, r, e, PUB_PUBLISHING, NULL,
		    m->digest) != 0) {
			p->failed++;
			continue;
		}
		pub_failpoint("publish_started");
		memset(&res, 0, sizeof(res));
		if (publish_to(s, &b, &res) == 0) {
			log_info("%s %s: published to %s", name, version,
			    s->name);
			pub_state_move(p->st, r, e, PUB_PUBLISHED, NULL,
			    m->digest);
		} else {
			log_warnx("%s %s: store %s: %s: %s", name, version,
			    s->name, res.reason, res.detail);
			pub_state_move(p->st, r, e, PUB_FAILED, &res,
			    m->digest);
			p->failed++;
			if (!p->once && !e->final &&
			    (p->next_due == 0 || e->next < p->next_due))
				p->next_due = e->next;
		}
	}
out:
	manifest_free(m);
	free(r);
}

static bool
skip_name(const char *s)
{
	return s[0] == '.' || strlen(s) >= 256;
}

/* One pass over store_dir; adds a watch on each NAME directory. */
static void
scan(struct pub *p)
{
	const struct pub_conf *c = p->c;
	char ndir[PATH_MAX], vdir[PATH_MAX];
	struct dirent *de, *ve;
	DIR *d, *vd;

	pub_state_take_retries(p->st);
	p->next_due = 0;
	if ((d = opendir(c->store_dir)) == NULL) {
		log_warn("store_dir %s", c->store_dir);
		return;
	}
	while ((de = readdir(d)) != NULL && !stop_pending()) {
		if (skip_name(de->d_name) ||
		    util_path_join(ndir, sizeof(ndir), c->store_dir,
		    de->d_name) != 0)
			continue;
		if (p->ino >= 0)
			(void)inotify_add_watch(p->ino, ndir, IN_MOVED_TO |
			    IN_CREATE | IN_ONLYDIR);
		if ((vd = opendir(ndir)) == NULL)
			continue;
		while ((ve = readdir(vd)) != NULL && !stop_pending()) {
			if (skip_name(ve->d_name) ||
			    util_path_join(vdir, sizeof(vdir), ndir,
			    ve->d_name) != 0 || !manifest_bundle_exists(vdir))
				continue;
			publish_bundle(p, de->d_name, ve->d_name, vdir);
		}
		closedir(vd);
	}
	closedir(d);
	pub_state_metrics(p->st);
}

static int
check_dirs(const struct pub_conf *c, char *err, size_t errlen)
{
	struct stat st;

	if (stat(c->store_dir, &st) != 0) {
		util_seterr(err, errlen, "%s: store_dir %s: %s", c->path,
		    c->store_dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		util_seterr(err, errlen, "%s: store_dir %s: not a directory",
		    c->path, c->store_dir);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct pub p = { .ino = -1 };
	struct pub_conf *conf;
	const char *conf_path = NULL;
	char err[1024] = "", path[PATH_MAX];
	bool check_only = false, print = false, s3 = false;
	int verbosity = 0, ch, sfd, status = 0, lockfd;
	uint64_t last_scan;
	sigset_t mask;
	size_t i;

	log_init("sluice-publish", 0);
	while ((ch = getopt_long(argc, argv, "c:npvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = true; break;
		case 'p': print = true; break;
		case 'o': p.once = true; break;
		case 'v': verbosity++; break;
		case 'h': usage(0); break;
		case 'V':
			printf("sluice-publish %s\n", SLUICE_VERSION_STRING);
			return 0;
		default: usage(2);
		}
	}
	if (conf_path == NULL || optind != argc)
		usage(2);
	log_set_verbosity(verbosity);
	if ((conf = pub_conf_load(conf_path, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (print) {
		pub_conf_print(conf, stdout);
		pub_conf_free(conf);
		return 0;
	}
	if (pub_conf_check_secrets(conf, err, sizeof(err)) != 0)
		fatalx("%s: %s", conf_path, err);
	if (check_dirs(conf, err, sizeof(err)) != 0)
		fatalx("%s", err);
	if (conf->audit_key != NULL) {
		struct sign_seckey *k;
		int rc;

		if (sign_init() != 0)
			fatalx("libsodium failed to initialise");
		k = sign_seckey_load(conf->audit_key, &rc, err, sizeof(err));
		if (k == NULL)
			fatalx("%s: audit_key %s: %s", conf_path,
			    conf->audit_key, err);
		sign_seckey_free(k);
	}
	if (check_only) {
		printf("%s: ok (%zu store%s, %zu rule%s)\n", conf_path,
		    conf->n_stores, conf->n_stores == 1 ? "" : "s",
		    conf->n_rules, conf->n_rules == 1 ? "" : "s");
		pub_conf_free(conf);
		return 0;
	}
	p.c = conf;
	/* One publisher per state_dir: two would publish the same bundle
	 * at once and interleave their state files. */
	if (util_mkdirs(conf->state_dir, 0750) != 0)
		fatal("state_dir %s", conf->state_dir);
	snprintf(path, sizeof(path), "%s/lock", conf->state_dir);
	if ((lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0)
		fatal("%s", path);
	if (flock(lockfd, LOCK_EX | LOCK_NB) != 0)
		fatalx("%s: another sluice-publish holds it", path);
	if ((p.st = pub_state_open(conf, err, sizeof(err))) == NULL)
		fatalx("%s: %s", conf_path, err);
	for (i = 0; i < conf->n_stores; i++)
		s3 |= conf->stores[i].type == STORE_S3;
	if (s3 && store_s3_init() != 0)
		fatalx("s3: cannot initialise libcurl");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("signalfd");
	if (!p.once) {
		p.ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		snprintf(path, sizeof(path), "%s/%s", conf->state_dir,
		    PUB_RETRY_DIR);
		if (p.ino < 0 || util_mkdirs(path, 0770) != 0 ||
		    inotify_add_watch(p.ino, conf->store_dir, IN_MOVED_TO |
		    IN_CREATE | IN_ONLYDIR) < 0 || inotify_add_watch(p.ino,
		    path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
			fatal("inotify on %s and %s", conf->store_dir, path);
	}
	log_info("publishing from %s to %zu store%s%s", conf->store_dir,
	    conf->n_stores, conf->n_stores == 1 ? "" : "s",
	    p.once ? " (once)" : "");
	scan(&p);
	if (p.once) {
		/* Stopped by a signal, it did not publish everything. */
		status = p.failed == 0 && !stop_pending() ? 0 : 1;
		goto done;
	}
	(void)util_notify("READY=1");
	last_scan = util_now_ns();
	for (;;) {
		struct pollfd pfd[2] = { { sfd, POLLIN, 0 },
		    { p.ino, POLLIN, 0 } };
		struct signalfd_siginfo si;
		char buf[8192];
		double wait = conf->rescan_interval -
		    (double)(util_now_ns() - last_scan) / 1e9;
		bool go = false;

		if (p.next_due != 0 && p.next_due - now_s() < wait)
			wait = (double)(p.next_due - now_s());
		if (wait < 0)
			wait = 0;
		if (poll(pfd, 2, (int)(wait * 1000 + 1)) < 0 && errno != EINTR)
			fatal("poll");
		if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				if (pub_state_reopen(p.st) != 0)
					log_warn("reopening %s",
					    conf->publish_log);
			} else
				break;
		}
		/* Any event is a reason to scan: a scan is cheap for
		 * bundles already done (a state file read, no hashing). */
		while (read(p.ino, buf, sizeof(buf)) > 0)
			go = true;
		if (go || (util_now_ns() - last_scan) / 1e9 >=
		    conf->rescan_interval || (p.next_due != 0 &&
		    p.next_due <= now_s())) {
			scan(&p);
			last_scan = util_now_ns();
		}
	}
	log_info("stopping");
	(void)util_notify("STOPPING=1");
done:
	if (s3)
		store_s3_cleanup();
	if (p.ino >= 0)
		close(p.ino);
	close(sfd);
	pub_state_close(p.st);
	pub_conf_free(conf);
	close(lockfd);
	return status;
}
