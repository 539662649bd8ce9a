/*
 * sluice-send --daemon: sends the bundles that appear in spool_dir, one
 * at a time in queue order (see common/spool.h), through one struct
 * sender, so one rate limit covers every bundle and every heartbeat.
 * Heartbeats go out while the queue is empty too, so the receiving side
 * can tell an idle link from a broken one.
 *
 * inotify only says "look again"; the directory is the truth, and it is
 * also re-read every minute in case an event was lost (IN_Q_OVERFLOW).
 * A bundle leaves the spool only after its last pass, so a bundle that
 * was being sent when the daemon stopped is sent again, from the start,
 * when it comes back; the receiver refuses a version it has already
 * released (DUPLICATE), so nothing is released twice.
 */
#include "sender/daemon.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/qlog.h"
#include "common/spool.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define RESCAN_SECONDS 60.0
#define MAX_FAILURES 3      /* send errors before a bundle goes to failed */
#define RETRY_SECONDS 5.0

static void
drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct
	    inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void
fail(struct spool *sp, struct spool_entry *e, const char *why)
{
	char name[sizeof(e->name)], text[1024], t[32], esc[768];
	int rc;

	snprintf(name, sizeof(name), "%s", e->name);
	util_rfc3339(t, sizeof(t), util_realtime_ns());
	logfmt_escape(esc, sizeof(esc), why);
	snprintf(text, sizeof(text), "time=%s entry=%s reason=%s\n", t, name,
	    esc);
	rc = spool_failed(sp, e, text);
	if (rc != 0)
		log_warnx("spool: cannot move %s to %s: %s", name, sp->failed,
		    strerror(-rc));
	else
		log_warnx("spool: %s moved to %s: %s", name, sp->failed, why);
}

/* Sends one bundle; 0, -EINTR, or -errno when sending failed. */
static int
send_one(const struct sender_conf *c, struct sender *s, struct spool *sp,
    struct spool_entry *e, volatile sig_atomic_t *stop)
{
	char dir[PATH_MAX], err[512] = "", record[1024], t[32];
	char ename[sizeof(e->name)];
	struct manifest *m = NULL;
	struct sender_hb_thread *hb;
	const struct sender_stats *ss;
	uint64_t t0, dg0, id;
	double cpu0, secs;
	int rc;

	snprintf(ename, sizeof(ename), "%s", e->name);
	if (util_path_join(dir, sizeof(dir), sp->dir, ename) != 0) {
		fail(sp, e, "path too long");
		return 0;
	}
	if (!manifest_bundle_exists(dir)) {
		fail(sp, e, "not a prepared bundle: no " MANIFEST_BUNDLE_FILE
		    " (use sluice bundle create, then sluice spool add)");
		return 0;
	}
	/* The list, sizes and modes now (the contents as the first pass
	 * reads them: sender_send_transfer); listing a big tree still takes
	 * a while, so the heartbeats go on meanwhile and the receiving side
	 * does not see the link go down. */
	hb = sender_heartbeats_start(s);
	rc = manifest_open_bundle(dir, &m, err, sizeof(err));
	sender_heartbeats_stop(hb);
	if (rc == 0 && (rc = limits_check_manifest(m, err, sizeof(err))) != 0)
		manifest_free(m);
	if (rc != 0) {
		fail(sp, e, err);
		return 0;
	}
	ss = sender_stats(s);
	dg0 = ss->datagrams;
	t0 = util_now_ns();
	cpu0 = util_cpu_seconds();
	log_info("sending %s: %s version %s, %zu files, %" PRIu64 " bytes, "
	    "priority %d", ename, m->name, m->version, m->n_files,
	    m->total_bytes, e->priority);
	util_notify("STATUS=sending");
	rc = sender_send_transfer(s, m, NULL, true, stop, err, sizeof(err));
	secs = (util_now_ns() - t0) / 1e9;
	id = sender_transfer_id(s);
	if (rc == -EINTR) {
		log_info("interrupted while sending %s; it stays queued and "
		    "is sent again from the start", ename);
		manifest_free(m);
		return rc;
	}
	if (rc == -ESTALE) {
		/* A file differs from the signed manifest: no retry makes
		 * it match.  What was sent cannot be released. */
		log_warnx("sending %s stopped: %s", ename, err);
		fail(sp, e, err);
		manifest_free(m);
		return 0;
	}
	if (rc != 0) {
		e->failures++;
		log_warnx("sending %s failed (%u of %u): %s", ename,
		    e->failures, MAX_FAILURES, err);
		if (e->failures >= MAX_FAILURES)
			fail(sp, e, err);
		manifest_free(m);
		return rc;
	}
	util_rfc3339(t, sizeof(t), util_realtime_ns());
	snprintf(record, sizeof(record), "time=%s entry=%s transfer=%016"
	    PRIx64 " passes=%u files=%zu bytes=%" PRIu64 " datagrams=%"
	    PRIu64 " seconds=%.2f\n", t, ename, id, c->passes, m->n_files,
	    m->total_bytes, ss->datagrams - dg0, secs);
	log_info("sent %s as transfer %016" PRIx64 ": %" PRIu64 " datagrams, "
	    "%u passes in %.2f s (%.2f CPU s)", ename, id,
	    ss->datagrams - dg0, c->passes, secs, util_cpu_seconds() - cpu0);
	rc = spool_sent(sp, e, record);
	if (rc != 0) {
		/* Still queued: it will be sent again, which the receiver
		 * answers with DUPLICATE.  Keep going. */
		log_warnx("spool: cannot move %s to %s: %s", ename, sp->sent,
		    strerror(-rc));
	}
	manifest_free(m);
	return 0;
}

static void
expired(const char *name, void *arg)
{
	(void)arg;
	log_info("sent/%s: removed after sent_retention; its record stays",
	    name);
}

int
sender_daemon(const struct sender_conf *c, struct sender *s,
    volatile sig_atomic_t *stop)
{
	struct spool sp;
	char err[512];
	int ifd, rc;
	uint64_t next_scan = 0;

	if (c->spool_dir == NULL) {
		log_warnx("%s: --daemon needs spool_dir", c->path);
		return -EINVAL;
	}
	rc = spool_open(&sp, c->spool_dir, c->sent_dir, c->failed_dir, err,
	    sizeof(err));
	if (rc != 0) {
		log_warnx("%s", err);
		return rc;
	}
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0 || inotify_add_watch(ifd, c->spool_dir, IN_MOVED_TO |
	    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0) {
		rc = -errno;
		log_warnx("%s: inotify: %s", c->spool_dir, strerror(errno));
		if (ifd >= 0)
			close(ifd);
		spool_close(&sp);
		return rc;
	}
	log_info("watching %s; sent bundles go to %s, failed ones to %s",
	    c->spool_dir, c->sent_dir, c->failed_dir);
	util_notify("READY=1\nSTATUS=idle");
	rc = 0;
	while (!*stop) {
		struct spool_entry *e;

		if (util_now_ns() >= next_scan) {
			drain(ifd);
			if ((rc = spool_scan(&sp)) != 0) {
				log_warnx("%s: %s", c->spool_dir,
				    strerror(-rc));
				rc = 0;
			}
			next_scan = util_now_ns() +
			    (uint64_t)(RESCAN_SECONDS * 1e9);
			if (spool_expire_sent(&sp, c->sent_retention,
			    expired, NULL) < 0)
				log_warn("%s: sent_retention", c->sent_dir);
		}
		e = spool_next(&sp);
		if (e == NULL) {
			util_notify("STATUS=idle");
			rc = sender_idle(s, ifd, RESCAN_SECONDS, stop);
			if (rc == 1 || rc == 0)
				next_scan = 0;
			else if (rc != -EINTR)
				log_warnx("heartbeat: %s", strerror(-rc));
			rc = 0;
			continue;
		}
		rc = send_one(c, s, &sp, e, stop);
		if (rc == -EINTR)
			break;
		next_scan = 0; /* priorities may have changed meanwhile */
		if (rc != 0) {
			/* Most likely the socket (no route, a firewall):
			 * wait, with heartbeats, before the next try. */
			rc = sender_idle(s, -1, RETRY_SECONDS, stop);
			if (rc == -EINTR)
				break;
		}
		rc = 0;
	}
	util_notify("STOPPING=1");
	close(ifd);
	spool_close(&sp);
	return rc == -EINTR ? 0 : rc;
}
