/*
 * sluice-send: the connected side.  Sends one bundle (a directory, or
 * files) as one transfer across the one-way link and exits after the last
 * carousel pass; or, with --daemon, sends whatever is queued in spool_dir
 * for as long as it runs.  It never reads from the network.
 */
#include "sender/daemon.h"
#include "sender/preflight.h"
#include "sender/send.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* --help: exit 0, on stdout; a usage error: exit 2, on stderr. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sluice-send -c sender.conf [--name NAME] "
	    "[--version VERSION] [--resend MISSING] PATH...\n"
	    "       sluice-send -c sender.conf --daemon\n"
	    "       sluice-send -c sender.conf -n | -p\n"
	    "  PATH     one directory (the bundle), or regular files\n"
	    "  --resend send only the chunks a receiver's missing list names\n"
	    "  --daemon send the bundles queued in spool_dir, until stopped\n"
	    "  -n       check the configuration and exit\n"
	    "  -p       print the effective configuration and geometry\n"
	    "  -v       more diagnostics\n"
	    "  --help   this text;  sluice-send --version: the release\n");
	exit(status);
}

/*
 * Progress: on a terminal, one line redrawn in place (pass, percent,
 * MB/s, ETA); otherwise, for logs, one line at the end of each pass.
 */
static void
show_progress(const struct sender_progress *p, void *arg)
{
	bool tty = *(bool *)arg;
	double secs = p->elapsed_ns / 1e9, done, all, rate, eta;

	done = (double)(p->pass - 1) * p->pass_total + p->pass_bytes;
	all = (double)p->passes * p->pass_total;
	rate = secs > 0 ? done / secs / 1e6 : 0;
	eta = rate > 0 ? (all - done) / 1e6 / rate : 0;
	if (tty) {
		fprintf(stderr, "\r\033[Kpass %u of %u  %5.1f%%  %7.1f MB/s  "
		    "ETA %.0f s", p->pass, p->passes, all > 0 ? 100 * done /
		    all : 100.0, rate, eta);
		if (p->pass_done && p->pass == p->passes)
			fputc('\n', stderr);
		fflush(stderr);
	} else if (p->pass_done) {
		log_info("pass %u of %u done at %.2f s (%.1f MB a pass, %.1f "
		    "MB/s)", p->pass, p->passes, secs, p->pass_total / 1e6,
		    rate);
	}
}

/* "(ids a,b,c)" of a manifest's approvals, or "" without any. */
static void
approvals_list(const struct manifest *m, char *buf, size_t len)
{
	size_t i, off;

	buf[0] = '\0';
	if (m->n_approvals == 0 || len < 8)
		return;
	off = (size_t)snprintf(buf, len, "(ids ");
	for (i = 0; i < m->n_approvals && off + 20 < len; i++) {
		util_hex(buf + off, m->approvals[i].key_id, 8);
		off += 16;
		buf[off++] = i + 1 < m->n_approvals ? ',' : ')';
		buf[off] = '\0';
	}
}

static char *
base_name(const char *path)
{
	char *copy = strdup(path), *b, *out;
	size_t len;

	if (copy == NULL)
		return NULL;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	b = basename(copy);
	out = strdup(b);
	free(copy);
	return out;
}

static int
run_daemon(struct sender_conf *conf)
{
	struct sign_seckey *key;
	struct sender *s;
	struct sigaction sa;
	char err[512] = "";
	int rc;

	/* The directories the daemon owns, made if need be (preflight
	 * found they can be). */
	{
		const char *const names[] = { "spool_dir", "sent_dir",
			"failed_dir" };
		const char *const dirs[] = { conf->spool_dir, conf->sent_dir,
			conf->failed_dir };
		char where[600];
		unsigned i;

		for (i = 0; i < 3; i++) {
			if ((rc = util_mkdirs(dirs[i], 0750)) == 0)
				continue;
			sender_conf_where(conf, names[i], where,
			    sizeof(where));
			fatalx("%s: %s: %s", where, dirs[i], strerror(-rc));
		}
	}
	key = sign_seckey_load(conf->key, &rc, err, sizeof(err));
	if (key == NULL)
		fatalx("%s: %s", conf->key, err);
	s = sender_new(conf, key, err, sizeof(err));
	if (s == NULL)
		fatalx("%s", err);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	log_info("daemon: sending to %s at %.0f Mbit/s, %u passes per bundle",
	    conf->destination, conf->rate_bps / 1e6, conf->passes);
	rc = sender_daemon(conf, s, &stop);
	log_info("daemon: stopped");
	sender_free(s);
	sign_seckey_free(key);
	sender_conf_free(conf);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'N' },
		{ "version", required_argument, NULL, 'V' },
		{ "resend", required_argument, NULL, 'R' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender_conf *conf;
	struct sender_geometry g;
	struct sign_seckey *key;
	struct sender *s;
	struct manifest *m = NULL;
	struct sigaction sa;
	struct stat st;
	const char *conf_path = NULL, *version = NULL, *resend = NULL;
	struct sender_filter *filter = NULL;
	char *fname = NULL, *fversion = NULL;
	uint64_t want_id = 0;
	char *name = NULL, err[512] = "", ver[32];
	bool check_only = false, print = false, daemon = false, tty;
	bool check_files = false;
	char approvals[CONF_MAX_KEYS * 17 + 3];
	int ch, rc, verbosity = 0, i;
	uint64_t t0;
	double cpu0, secs;
	const struct sender_stats *ss;

	log_init("sluice-send", 0);
	/* --version alone is the program's; with -c it names a bundle's. */
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("sluice-send %s\n", SLUICE_VERSION_STRING);
		return 0;
	}
	while ((ch = getopt_long(argc, argv, "c:npvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = true; break;
		case 'p': print = true; break;
		case 'v': verbosity++; break;
		case 'N': name = strdup(optarg); break;
		case 'V': version = optarg; break;
		case 'R': resend = optarg; break;
		case 'D': daemon = true; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (conf_path == NULL)
		usage(2);
	log_set_verbosity(verbosity);
	conf = sender_conf_load(conf_path, err, sizeof(err));
	if (conf == NULL)
		fatalx("%s", err);
	if (sender_geometry(conf, &g) != 0)
		fatalx("%s: datagram_size %u leaves no room for a chunk",
		    conf_path, conf->datagram_size);
	if (print) {
		sender_conf_print(conf, stdout);
		printf("# derived\nsymbol_size = %u\nhash_len = %u\n"
		    "k_max = %u\nm_max = %u\nchunk_size = %u\n", g.symbol_size,
		    g.hash_len, g.k_max, g.m_max, g.chunk_size);
	}
	if (daemon && conf->spool_dir == NULL)
		fatalx("%s: --daemon needs spool_dir", conf_path);
	if (print) {
		sender_conf_free(conf);
		return 0;
	}
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");
	/* The same checks for -n (the unit's ExecStartPre) and at start. */
	if ((i = (int)sender_preflight(conf)) != 0) {
		fprintf(stderr, "%s: %d problem%s; %s\n", conf_path, i,
		    i == 1 ? "" : "s", check_only ? "configuration NOT OK" :
		    "not starting");
		sender_conf_free(conf);
		return 1;
	}
	if (check_only) {
		fprintf(stderr, "%s: configuration OK\n", conf_path);
		sender_conf_free(conf);
		return 0;
	}
	if (daemon) {
		if (optind != argc || resend != NULL || name != NULL ||
		    version != NULL)
			usage(2);
		return run_daemon(conf);
	}
	if (optind >= argc)
		usage(2);
	if (resend != NULL) {
		filter = sender_filter_load(resend, &want_id, &fname,
		    &fversion, err, sizeof(err));
		if (filter == NULL)
			fatalx("%s", err);
		if (name == NULL && fname != NULL)
			name = strdup(fname);
		if (version == NULL)
			version = fversion;
	}
	key = sign_seckey_load(conf->key, &rc, err, sizeof(err));
	if (key == NULL)
		fatalx("%s: %s", conf->key, err);

	if (argc - optind == 1 && manifest_bundle_exists(argv[optind])) {
		/*
		 * A prepared bundle: its manifest and approvals travel
		 * unchanged.  The file list, sizes and modes are checked
		 * here; the contents as the first pass reads them (a file
		 * that differs stops the transfer, whose datagrams the
		 * receiver then cannot release), so no byte is read twice.
		 * A resend reads only some chunks: it checks every file
		 * first, as before.
		 */
		rc = filter != NULL ? manifest_load_bundle(argv[optind], &m,
		    err, sizeof(err)) : manifest_open_bundle(argv[optind], &m,
		    err, sizeof(err));
		if (rc != 0)
			fatalx("%s", err);
		check_files = filter == NULL;
		if ((name != NULL && strcmp(name, m->name) != 0) ||
		    (version != NULL && strcmp(version, m->version) != 0))
			fatalx("--name/--version differ from %s/%s (%s %s)",
			    argv[optind], MANIFEST_BUNDLE_FILE, m->name,
			    m->version);
	} else {
		if (name == NULL)
			name = base_name(argv[optind]);
		if (version == NULL) {
			util_compact_utc(ver, sizeof(ver), util_realtime_ns());
			version = ver;
		}
		/* No creation time: the same tree gives the same manifest and
		 * so the same transfer, which a --resend relies on. */
		m = manifest_new(name, version);
		if (m == NULL)
			fatalx("out of memory");
		if (lstat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (argc - optind != 1)
				fatalx("give one directory, or only files");
			rc = manifest_add_dir(m, argv[optind], err,
			    sizeof(err));
		} else {
			rc = 0;
			for (i = optind; i < argc && rc == 0; i++)
				rc = manifest_add_path(m, argv[i], err,
				    sizeof(err));
		}
		if (rc != 0)
			fatalx("%s", err);
		if (manifest_finish(m, err, sizeof(err)) != 0)
			fatalx("%s", err);
	}

	/* Not sent only to be REJECTED: the receiver's default limits. */
	if (limits_check_manifest(m, err, sizeof(err)) != 0)
		fatalx("refusing to send %s: %s (the sender checks the "
		    "receiver's default limits; it cannot know configured ones)",
		    argv[optind], err);

	s = sender_new(conf, key, err, sizeof(err));
	if (s == NULL)
		fatalx("%s", err);
	if (filter != NULL && sender_preview_id(s, m) != want_id)
		fatalx("%s is for transfer %016" PRIx64 ", but this bundle with "
		    "this configuration is transfer %016" PRIx64 ": resend the "
		    "same bundle with the same datagram_size, fec_overhead and "
		    "compress", resend, want_id, sender_preview_id(s, m));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	approvals_list(m, approvals, sizeof(approvals));
	t0 = util_now_ns();
	cpu0 = util_cpu_seconds();
	log_info("sending %s version %s: %zu file%s, %" PRIu64 " bytes, to %s "
	    "at %.0f Mbit/s, %u pass%s; %zu approval%s%s%s", m->name,
	    m->version, m->n_files, m->n_files == 1 ? "" : "s",
	    m->total_bytes, conf->destination, conf->rate_bps / 1e6,
	    conf->passes, conf->passes == 1 ? "" : "es", m->n_approvals,
	    m->n_approvals == 1 ? "" : "s", approvals[0] ? " " : "",
	    approvals);
	if (m->n_approvals == 0)
		log_warnx("%s %s carries no approvals: a receiver that needs "
		    "them will hold it in quarantine", m->name, m->version);
	tty = isatty(STDERR_FILENO) == 1;
	sender_set_progress(s, show_progress, &tty);
	rc = sender_send_transfer(s, m, filter, check_files, &stop, err,
	    sizeof(err));
	secs = (util_now_ns() - t0) / 1e9;
	ss = sender_stats(s);
	if (rc == 0 && filter != NULL)
		log_info("resent %" PRIu64 " of %" PRIu64 " chunks of transfer "
		    "%016" PRIx64, ss->chunks, ss->chunks_total,
		    sender_transfer_id(s));
	if (rc == 0)
		log_info("sent transfer %016" PRIx64 ": %zu file%s, %" PRIu64
		    " bytes, %" PRIu64 " chunk%s, %" PRIu64 " datagrams, %u "
		    "pass%s in %.2f s (%.1f MB/s of files per pass, %.2f CPU "
		    "s)", sender_transfer_id(s), m->n_files,
		    m->n_files == 1 ? "" : "s", m->total_bytes, ss->chunks,
		    ss->chunks == 1 ? "" : "s", ss->datagrams, conf->passes,
		    conf->passes == 1 ? "" : "es", secs,
		    secs > 0 ? m->total_bytes * (double)conf->passes / secs /
		    1e6 : 0, util_cpu_seconds() - cpu0);
	else if (rc == -EINTR)
		log_warnx("interrupted");
	else
		log_warnx("%s", err);
	sender_free(s);
	sender_filter_free(filter);
	free(fname);
	free(fversion);
	manifest_free(m);
	sign_seckey_free(key);
	sender_conf_free(conf);
	free(name);
	return rc == 0 ? 0 : 1;
}
