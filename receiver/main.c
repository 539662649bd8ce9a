/*
 * sluice-recv: the protected side.  Receives one-way UDP from sluice-send,
 * rebuilds and verifies transfers, and releases only complete, verified
 * bundles into the store.  It never transmits.
 *
 * Start-up order: configuration, keys, quarantine log, staging, socket and
 * ring; then the event loop until SIGINT or SIGTERM.
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/qlog.h"
#include "common/util.h"

#include <errno.h>
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

static void
usage(void)
{
	fprintf(stderr, "usage: sluice-recv -c receiver.conf [-n] [-p] [-v]\n"
	    "  -c FILE  configuration file\n"
	    "  -n       check the configuration and exit\n"
	    "  -p       print the effective configuration and exit\n"
	    "  -v       more diagnostics (repeat for debug)\n");
	exit(2);
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
	    " duplicate=%" PRIu64, what, r->stats.datagrams,
	    r->stats.bytes, r->stats.symbols, r->stats.descriptors,
	    r->stats.heartbeats, r->stats.redundant, r->stats.chunks_done,
	    r->stats.chunks_repaired, r->stats.chunks_evicted,
	    r->stats.transfers_released, r->stats.transfers_rejected,
	    r->stats.transfers_incomplete, r->stats.transfers_quarantined,
	    r->stats.transfers_duplicate);
	for (i = 1; i < DROP_COUNT && off < sizeof(line); i++)
		if (r->stats.drop[i] != 0)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			    " drop_%s=%" PRIu64, recv_drop_name(i),
			    r->stats.drop[i]);
	log_info("%s", line);
}

int
main(int argc, char **argv)
{
	struct recv r;
	struct recv_conf *conf;
	const char *conf_path = NULL;
	char err[512] = "";
	bool check_only = false, print = false;
	int verbosity = 0, ch, rc;
	unsigned i;
	uint64_t last_tick = 0, last_stats = 0, last_metrics = 0;
	uint64_t last_progress = 0, last_prehash = 0;
	struct recv_stats shown;
	struct sigaction sa;

	log_init("sluice-recv", 0);
	while ((ch = getopt(argc, argv, "c:npvh")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = true; break;
		case 'p': print = true; break;
		case 'v': verbosity++; break;
		default: usage();
		}
	}
	if (conf_path == NULL || optind != argc)
		usage();
	log_set_verbosity(verbosity);
	conf = recv_conf_load(conf_path, err, sizeof(err));
	if (conf == NULL)
		fatalx("%s", err);
	if (print)
		recv_conf_print(conf, stdout);
	if (check_only || print) {
		if (check_only)
			fprintf(stderr, "%s: configuration OK\n", conf_path);
		recv_conf_free(conf);
		return 0;
	}
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");

	memset(&r, 0, sizeof(r));
	r.conf = conf;
	r.staging_fd = -1;
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
	r.qlog = qlog_open(conf->quarantine_log, &rc);
	if (r.qlog == NULL)
		fatalx("quarantine log %s: %s", conf->quarantine_log,
		    strerror(-rc));
	rc = transfer_init(&r);
	if (rc != 0)
		fatalx("staging %s / store %s: %s", conf->staging_dir,
		    conf->store_dir, strerror(-rc));
	if (release_init(&r, err, sizeof(err)) != 0)
		fatalx("%s", err);
	if (progress_init(&r) != 0)
		fatalx("cannot start the progress thread");
	if (assemble_init(&r) != 0)
		fatalx("out of memory");
	r.in = ingest_new(&r, err, sizeof(err));
	if (r.in == NULL)
		fatalx("%s", err);
	log_info("listening on %s (receive buffer %u bytes%s), staging %s, "
	    "store %s", conf->listen, ingest_rcvbuf(r.in),
	    ingest_rcvbuf(r.in) < conf->rcvbuf_bytes ? ", less than asked: "
	    "raise net.core.rmem_max or grant CAP_NET_ADMIN" : "",
	    conf->staging_dir, conf->store_dir);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (util_notify("READY=1") != 0)
		log_warn("telling the service manager we are ready");
	memset(&shown, 0, sizeof(shown));
	while (!quit) {
		uint64_t now;

		rc = ingest_run_once(r.in, 2);
		if (rc != 0 && rc != -EINTR)
			fatalx("io_uring: %s", strerror(-rc));
		release_poll(&r);
		progress_poll(&r);
		now = util_now_ns();
		if (now - last_progress >= (uint64_t)(conf->progress_interval *
		    1e9)) {
			transfer_save_progress(&r, true);
			last_progress = now;
		} else if (now - last_prehash >= 100000000ull) {
			transfer_save_progress(&r, false);
			last_prehash = now;
		}
		if (now - last_tick >= 1000000000ull) {
			transfer_tick(&r, now);
			metrics_tick(&r, now);
			transfer_write_status(&r);
			last_tick = now;
		}
		if (now - last_metrics >= (uint64_t)(conf->metrics_interval *
		    1e9)) {
			metrics_write(&r);
			last_metrics = now;
		}
		if (now - last_stats >= 10000000000ull) {
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
	log_stats(&r, "exiting");
	metrics_write(&r);
	ingest_free(r.in);
	release_fini(&r);
	transfer_save_progress(&r, true); /* written: not needed again */
	progress_fini(&r);
	transfer_fini(&r);
	assemble_fini(&r);
	qlog_close(r.qlog);
	recv_conf_free(conf);
	return 0;
}
