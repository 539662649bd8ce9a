/*
 * sluice-recv: the protected side.  Receives one-way UDP from sluice-send,
 * rebuilds and verifies transfers, and releases only complete, verified
 * bundles into the store.  It never transmits.
 *
 * Start-up order: configuration, keys, quarantine log, directories (and
 * the checks that could otherwise only fail at the first bundle), the
 * verifier, progress and hook threads, what an earlier run left
 * unfinished, then the socket and ring and the rx thread; then the main
 * loop until SIGINT or SIGTERM.  The main thread takes datagrams from the
 * rx thread's queue and owns every transfer (recv.h).
 */
#include "receiver/recv.h"
#include "receiver/sigcheck.h"
#include "common/log.h"
#include "common/qlog.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t quit;
static volatile sig_atomic_t reopen;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reopen = 1;
	else
		quit = 1;
}

/* --help: exit 0, on stdout; a usage error: exit 2, on stderr. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sluice-recv -c receiver.conf [-n] [-p] [-v] "
	    "[--pcap FILE...]\n"
	    "  -c FILE    configuration file (see sluice.conf(5))\n"
	    "  -n         check the configuration, as at start, and exit\n"
	    "  -p         print the effective configuration and exit\n"
	    "  -v         more diagnostics (repeat for debug)\n"
	    "  --pcap     receive from these capture files (pcap, pcapng)\n"
	    "             instead of the link, then exit\n"
	    "  --help     this text\n"
	    "  --version  the release\n");
	exit(status);
}

/* One logfmt line of every counter, for the diagnostic log. */
static void
log_stats(const struct recv *r, const char *what)
{
	char line[2048];
	size_t off = 0;
	unsigned i;

	off += (size_t)snprintf(line + off, sizeof(line) - off,
	    "%s: datagrams=%" PRIu64 " bytes=%" PRIu64 " symbols=%" PRIu64
	    " descriptors=%" PRIu64 " heartbeats=%" PRIu64 " redundant=%"
	    PRIu64 " chunks_done=%" PRIu64 " chunks_repaired=%" PRIu64
	    " chunks_evicted=%" PRIu64 " released=%" PRIu64 " rejected=%"
	    PRIu64 " incomplete=%" PRIu64 " quarantined=%" PRIu64
	    " duplicate=%" PRIu64 " retried=%" PRIu64 " preempted=%" PRIu64
	    " finished_repeats=%" PRIu64 " chunk_jobs=%" PRIu64
	    " chunk_jobs_max=%" PRIu64 " hash_skipped=%" PRIu64, what,
	    r->stats.datagrams,
	    r->stats.bytes, r->stats.symbols, r->stats.descriptors,
	    r->stats.heartbeats, r->stats.redundant, r->stats.chunks_done,
	    r->stats.chunks_repaired, r->stats.chunks_evicted,
	    r->stats.transfers_released, r->stats.transfers_rejected,
	    r->stats.transfers_incomplete, r->stats.transfers_quarantined,
	    r->stats.transfers_duplicate, r->stats.transfers_retried,
	    r->stats.transfers_preempted, r->stats.finished_repeats,
	    r->stats.chunk_jobs, r->stats.chunk_jobs_max,
	    r->stats.hash_skipped);
	if (r->sigcheck != NULL && off < sizeof(line)) {
		struct sigcheck_stats sg;

		/* Ed25519 checks run (sig_checks_early by the workers),
		 * found in the cache, refused for the budget. */
		sigcheck_get_stats(r->sigcheck, &sg);
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    " sig_checks=%" PRIu64 " sig_checks_early=%" PRIu64
		    " sig_cache_hits=%" PRIu64 " sig_over_budget=%" PRIu64,
		    sg.verifies, sg.verifies_early, sg.cache_hits,
		    sg.over_budget);
	}
	for (i = 1; i < DROP_COUNT && off < sizeof(line); i++)
		if (r->stats.drop[i] != 0)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			    " drop_%s=%" PRIu64, recv_drop_name(i),
			    r->stats.drop[i]);
	log_info("%s", line);
}

/* Makes the directory a file setting lives in, or exits naming it. */
static void
make_parent(const struct recv_conf *c, const char *setting, const char *file)
{
	char copy[PATH_MAX], where[PATH_MAX + 64];
	int rc;

	if (file == NULL)
		return;
	snprintf(copy, sizeof(copy), "%s", file);
	if ((rc = util_mkdirs(dirname(copy), 0750)) != 0) {
		recv_conf_where(c, setting, where, sizeof(where));
		fatalx("%s: %s: %s", where, copy, strerror(-rc));
	}
}

/* Folds the rx thread's counters into the main thread's stats. */
static void
take_ingest_stats(struct recv *r)
{
	struct ingest_stats st;

	ingest_get_stats(r->in, &st);
	r->stats.drop[DROP_QUEUE_FULL] = st.queue_full;
	r->stats.drop[DROP_TRUNCATED] = st.truncated;
	r->stats.drop[PROTO_ERR_SHORT] += st.empty - r->empty_taken;
	r->empty_taken = st.empty;
	r->stats.datagrams = st.datagrams;
	r->stats.bytes = st.bytes;
	r->stats.hash_skipped = st.hash_skipped;
}

/*
 * Staging and store must be one file system: a release is one rename(2)
 * from one to the other.  Found here, not after a bundle was received.
 */
static void
check_same_fs(const struct recv_conf *c)
{
	struct stat a, b;

	if (stat(c->staging_dir, &a) < 0)
		fatal("staging_dir %s", c->staging_dir);
	if (stat(c->store_dir, &b) < 0)
		fatal("store_dir %s", c->store_dir);
	if (a.st_dev != b.st_dev)
		fatalx("%s: staging_dir (%s) and store_dir (%s) are on "
		    "different file systems; a release is one rename from "
		    "one to the other, so they must share one", c->path,
		    c->staging_dir, c->store_dir);
}

/* Datagrams from the queue for at most budget_ns, or until it is empty. */
static void
drain(struct recv *r, unsigned wait_ms, uint64_t budget_ns)
{
	uint64_t start = util_now_ns();
	const struct ingest_prep *prep;
	uint8_t *p;
	size_t len, seg;
	unsigned n = 0;

	for (;;) {
		/* The workers are behind with chunks: the queue holds the
		 * backlog meanwhile (assemble_backlogged). */
		if (assemble_backlogged(r)) {
			ingest_wait_done(r->in, wait_ms);
			assemble_reap(r);
			if (assemble_backlogged(r))
				break;
		}
		if (!ingest_pop(r->in, &p, &len, &seg, &prep, n == 0 ?
		    wait_ms : 0))
			break;
		/* Each segment of a coalesced run is a datagram of its own. */
		while (len > 0) {
			size_t k = len < seg ? len : seg;

			assemble_datagram(r, p, k, prep);
			if (prep != NULL)
				prep++;
			p += k;
			len -= k;
		}
		ingest_release(r->in);
		if (++n % 64 == 0) {
			assemble_reap(r);
			if (util_now_ns() - start > budget_ns)
				break;
		}
	}
	/* Chunks the workers wrote: this is also where a wait for
	 * datagrams ends early when one is done. */
	assemble_reap(r);
}

/* The effective release policy, once at start (approver keys are loaded
 * by lifecycle_init, after the sender keys above). */
static void
log_policy(const struct recv *r)
{
	char ids[CONF_MAX_KEYS * 17 + 1] = "";
	size_t off = 0;
	unsigned i;

	if (r->conf->approval_threshold == 0) {
		log_info("policy: no approvals required");
		return;
	}
	for (i = 0; i < r->n_approvers; i++) {
		if (i > 0)
			ids[off++] = ',';
		sign_keyid_hex(ids + off, r->approvers[i].id);
		off += 2 * SIGN_KEYID_LEN;
	}
	log_info("policy: %u of %u approvers (ids %s)",
	    r->conf->approval_threshold, r->n_approvers, ids);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "pcap", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct recv r;
	struct recv_conf *conf;
	const char *conf_path = NULL;
	char err[512] = "";
	bool check_only = false, print = false, pcap = false;
	int verbosity = 0, ch, rc;
	unsigned i;
	uint64_t last_tick = 0, last_stats = 0, last_metrics = 0;
	uint64_t last_progress = 0, last_prehash = 0;
	struct recv_stats shown;
	struct sigaction sa;

	log_init("sluice-recv", 0);
	while ((ch = getopt_long(argc, argv, "c:npvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = true; break;
		case 'p': print = true; break;
		case 'v': verbosity++; break;
		case 'h': usage(0); break;
		case 'P': pcap = true; break;
		case 'V':
			printf("sluice-recv %s\n", SLUICE_VERSION_STRING);
			return 0;
		default: usage(2);
		}
	}
	if (conf_path == NULL || (optind != argc) != pcap)
		usage(2);
	log_set_verbosity(verbosity);
	conf = recv_conf_load(conf_path, err, sizeof(err));
	if (conf == NULL)
		fatalx("%s", err);
	if (print) {
		recv_conf_print(conf, stdout);
		recv_conf_free(conf);
		return 0;
	}
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");
	/* The same checks for -n (the unit's ExecStartPre) and at start. */
	if ((i = preflight(conf)) != 0) {
		fprintf(stderr, "%s: %u problem%s; %s\n", conf_path, i,
		    i == 1 ? "" : "s", check_only ? "configuration NOT OK" :
		    "not starting");
		recv_conf_free(conf);
		return 1;
	}
	if (check_only) {
		fprintf(stderr, "%s: configuration OK\n", conf_path);
		recv_conf_free(conf);
		return 0;
	}

	memset(&r, 0, sizeof(r));
	r.conf = conf;
	r.staging_fd = r.store_fd = r.state_fd = r.lock_fd = -1;
	for (i = 0; i < conf->n_sender_keys; i++) {
		char hex[2 * SIGN_KEYID_LEN + 1];

		if (sign_pubkey_load(conf->sender_keys[i], &r.keys[i], err,
		    sizeof(err)) != 0)
			fatalx("%s: %s", conf->sender_keys[i], err);
		sign_keyid_hex(hex, r.keys[i].id);
		log_info("trusting sender key %s (%s)", hex,
		    conf->sender_keys[i]);
	}
	r.n_keys = conf->n_sender_keys;
	if (conf->link_key != NULL) {
		char hex[2 * SIGN_KEYID_LEN + 1];

		r.link = sign_linkkey_load(conf->link_key, &rc, err,
		    sizeof(err));
		if (r.link == NULL)
			fatalx("%s: link_key %s: %s", conf->path,
			    conf->link_key, err);
		sign_keyid_hex(hex, sign_linkkey_id(r.link));
		log_info("link key %s (%s): datagrams without its tag are "
		    "dropped before any other check", hex, conf->link_key);
	}
	/* The directories it owns: made here (they may not exist yet on a
	 * fresh machine), with the modes they need. */
	make_parent(conf, "quarantine_log", conf->quarantine_log);
	make_parent(conf, "audit_log", conf->audit_log);
	make_parent(conf, "metrics_file", conf->metrics_file);
	r.qlog = qlog_open(conf->quarantine_log, &rc);
	if (r.qlog == NULL)
		fatalx("quarantine log %s: %s", conf->quarantine_log,
		    strerror(-rc));
	if ((rc = util_mkdirs(conf->staging_dir, 0700)) != 0)
		fatalx("staging_dir %s: %s", conf->staging_dir, strerror(-rc));
	/* Hooks in sluice-hookd run as another user, who must reach a staged
	 * tree by its path, and only that. */
	if (chmod(conf->staging_dir, conf->hook_socket != NULL ? 0711 :
	    0700) < 0)
		fatal("staging_dir %s", conf->staging_dir);
	if ((rc = util_mkdirs(conf->store_dir, conf->dir_mode)) != 0)
		fatalx("store_dir %s: %s", conf->store_dir, strerror(-rc));
	check_same_fs(conf);
	if (lifecycle_init(&r, err, sizeof(err)) != 0)
		fatalx("%s", err);
	log_policy(&r);
	if (verify_init(&r) != 0 || hooks_init(&r) != 0)
		fatalx("cannot start the verifier and hook threads");
	if (progress_init(&r) != 0)
		fatalx("cannot start the progress thread");
	if (assemble_init(&r) != 0)
		fatalx("out of memory");
	lifecycle_recover(&r);
	if (pcap) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		rc = pcapin_run(&r, argv + optind, argc - optind, &quit);
		goto stop;
	}
	r.in = ingest_new(conf, err, sizeof(err));
	if (r.in == NULL)
		fatalx("%s", err);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ingest_set_link(r.in, r.link != NULL ? sign_linkkey_bytes(r.link) :
	    NULL);
	ingest_set_jobs(r.in, &r);
	ingest_set_sigcheck(r.in, r.sigcheck, r.keys, r.n_keys);
	if ((rc = ingest_start(r.in)) != 0)
		fatalx("starting the rx thread: %s", strerror(-rc));
	if (conf->capture_interface != NULL) {
		log_info("listening on %s with libpcap (%s, ring %u bytes, "
		    "queue %" PRIu64 " bytes), staging %s, store %s",
		    conf->capture_interface, conf->listen, ingest_rcvbuf(r.in),
		    conf->ingest_buffer, conf->staging_dir, conf->store_dir);
	} else {
		log_info("listening on %s (receive buffer %u bytes%s, queue %"
		    PRIu64 " bytes), staging %s, store %s", conf->listen,
		    ingest_rcvbuf(r.in), ingest_rcvbuf(r.in) <
		    conf->rcvbuf_bytes ? ", less than asked: raise "
		    "net.core.rmem_max or grant CAP_NET_ADMIN" : "",
		    conf->ingest_buffer, conf->staging_dir, conf->store_dir);
	}

	if (util_notify("READY=1") != 0)
		log_warn("telling the service manager we are ready");
	memset(&shown, 0, sizeof(shown));
	while (!quit) {
		uint64_t now;

		drain(&r, 20, 20000000ull);
		lifecycle_poll(&r);
		assemble_publish_live(&r);
		now = util_now_ns();
		if (now - last_progress >= (uint64_t)(conf->progress_interval *
		    1e9)) {
			lifecycle_save_progress(&r, true);
			last_progress = now;
		} else if (now - last_prehash >= 100000000ull) {
			lifecycle_save_progress(&r, false);
			last_prehash = now;
		}
		if (now - last_tick >= 1000000000ull) {
			take_ingest_stats(&r);
			lifecycle_tick(&r, now);
			metrics_tick(&r, now);
			lifecycle_write_status(&r);
			last_tick = now;
		}
		if (now - last_metrics >= (uint64_t)(conf->metrics_interval *
		    1e9)) {
			take_ingest_stats(&r);
			metrics_write(&r);
			last_metrics = now;
		}
		if (now - last_stats >= 10000000000ull) {
			take_ingest_stats(&r);
			if (memcmp(&shown, &r.stats, sizeof(shown)) != 0)
				log_stats(&r, "stats");
			shown = r.stats;
			last_stats = now;
		}
		if (reopen) {
			reopen = 0;
			if (qlog_reopen(r.qlog) != 0)
				log_warn("reopening %s", conf->quarantine_log);
		}
	}
	(void)util_notify("STOPPING=1");
	rc = 0;
stop:
	r.stopping = 1;
	/* No more datagrams; hooks end (retryable), the verifier hands back
	 * what it holds, and every verdict is recorded before we exit. */
	if (r.in != NULL) {
		take_ingest_stats(&r);
		if (conf->link_journal_dir != NULL) {
			struct ingest_stats st;

			ingest_get_stats(r.in, &st);
			log_info("link journal: %" PRIu64 " datagrams written, %"
			    PRIu64 " not (its queue was full)",
			    st.journal_written, st.journal_dropped);
		}
		/* Every job given is run before the workers end: their
		 * chunks count, as they would have a moment later. */
		ingest_stop(r.in);
		assemble_reap(&r);
		ingest_free(r.in);
		r.in = NULL;
	}
	hooks_stop(&r);
	verify_fini(&r);
	lifecycle_poll(&r);
	log_stats(&r, "exiting");
	/* Stopped cleanly: the status file and the metrics say so (a link
	 * is not up to a receiver that no longer listens). */
	r.link_up = false;
	metrics_write(&r);
	lifecycle_save_progress(&r, true);
	lifecycle_write_status(&r);
	progress_fini(&r);
	lifecycle_fini(&r);
	hooks_fini(&r);
	assemble_fini(&r);
	qlog_close(r.qlog);
	sign_linkkey_free(r.link);
	recv_conf_free(conf);
	return rc;
}
