/*
 * sluice replay FILE... --to ADDR:PORT [--rate R | --max] [--loop N]
 *     [--port N]
 *
 * Re-sends the UDP datagrams of capture files (tcpdump -w, a tap, the
 * receiver's link journal) through the sender's own transmit path
 * (sender/tx.c: batches, UDP GSO, pacing), so a receiver is driven as
 * the sender drives it.  The tool for acceptance runs and for measuring
 * what rate a receiver keeps up with.
 *
 * Timing: --rate R paces to R bits per second (with the IP and UDP
 * headers, as the sender's rate), --max sends as fast as the socket
 * takes it, and with neither the capture's own timing is kept.  The
 * datagrams are sent as captured, byte for byte: replay signs nothing
 * and needs no key.
 */
#include "tools/cmds.h"
#include "common/capfile.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/wire.h"
#include "sender/tx.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct replay {
	struct tx *tx;
	bool as_captured;
	unsigned port;
	uint64_t cap0_ns, wall0_ns; /* the capture's and our clock's start */
	bool started;
	uint64_t files, unreadable, frames, skipped;
};

/* Waits until the capture's offset of ts has passed on our clock. */
static int
keep_time(struct replay *rp, uint64_t ts)
{
	uint64_t due, now;
	int rc;

	if (!rp->started) {
		rp->cap0_ns = ts;
		rp->wall0_ns = util_now_ns();
		rp->started = true;
		return 0;
	}
	if (ts <= rp->cap0_ns)
		return 0;
	due = rp->wall0_ns + (ts - rp->cap0_ns);
	now = util_now_ns();
	/* Within a millisecond: let the batch fill. */
	if (due <= now + 1000000)
		return 0;
	if ((rc = tx_flush(rp->tx)) != 0)
		return rc;
	while (!stop && (now = util_now_ns()) < due) {
		struct timespec t = { .tv_sec = (time_t)((due - now) /
		    1000000000ull), .tv_nsec = (long)((due - now) %
		    1000000000ull) };

		(void)nanosleep(&t, NULL);
	}
	return stop ? -EINTR : 0;
}

static int
replay_file(struct replay *rp, const char *path)
{
	struct capfile *c;
	const struct capfile_stats *st;
	const uint8_t *d;
	char err[256];
	uint64_t ts;
	unsigned dport;
	size_t len;
	int rc;

	if ((c = capfile_open(path, rp->port, err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", path, err);
		rp->unreadable++;
		return 0;
	}
	rp->files++;
	while (!stop && (rc = capfile_next(c, &d, &len, &ts, &dport, err,
	    sizeof(err))) == 1) {
		if (rp->as_captured && (rc = keep_time(rp, ts)) != 0)
			break;
		memcpy(tx_slot(rp->tx), d, len);
		if ((rc = tx_queue(rp->tx, len, NULL, 0)) != 0)
			break;
	}
	st = capfile_stats(c);
	rp->frames += st->frames;
	rp->skipped += st->frames - st->frame[PROTO_FRAME_OK];
	if (rc == -1) {
		log_warnx("%s: %s", path, err);
		rp->unreadable++;
		rc = 0;
	}
	capfile_close(c);
	return rc < 0 ? rc : 0;
}

static int
replay_usage(void)
{
	fprintf(stderr, "usage: sluice replay FILE... --to ADDR:PORT "
	    "[--rate R | --max] [--loop N] [--port N]\n");
	return 2;
}

int
cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'r' },
		{ "max", no_argument, NULL, 'm' },
		{ "loop", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct replay rp = { 0 };
	struct sigaction sa;
	const char *to = NULL;
	uint64_t rate = 0, loops = 1, i, t0, ns;
	double cpu0, cpu, secs;
	bool max = false;
	char err[256];
	int ch, fd, f, rc = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			to = optarg;
			break;
		case 'r':
			if (util_parse_si(optarg, &rate) != 0 || rate < 100000) {
				fprintf(stderr, "sluice replay: --rate %s: a "
				    "rate in bits per second such as 800M, at "
				    "least 100K\n", optarg);
				return 2;
			}
			break;
		case 'm':
			max = true;
			break;
		case 'l':
			if (util_parse_si(optarg, &loops) != 0 || loops == 0) {
				fprintf(stderr, "sluice replay: --loop %s: a "
				    "count of at least 1\n", optarg);
				return 2;
			}
			break;
		case 'p':
			if (util_parse_si(optarg, &i) != 0 || i == 0 ||
			    i > 65535) {
				fprintf(stderr, "sluice replay: --port %s: a "
				    "port number\n", optarg);
				return 2;
			}
			rp.port = (unsigned)i;
			break;
		default:
			return replay_usage();
		}
	}
	if (to == NULL || optind >= argc || (max && rate > 0))
		return replay_usage();
	if ((fd = tx_connect(to, err, sizeof(err))) < 0) {
		fprintf(stderr, "sluice replay: %s\n", err);
		return 1;
	}
	/* Slots for any datagram a capture holds; bursts of a batch of
	 * Ethernet-sized ones at most, whatever the capture's size. */
	if ((rp.tx = tx_new(fd, PROTO_MAX_DATAGRAM, rate, 1472)) == NULL) {
		fprintf(stderr, "sluice replay: out of memory\n");
		return 1;
	}
	rp.as_captured = !max && rate == 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tx_set_stop(rp.tx, &stop);
	cpu0 = util_cpu_seconds();
	t0 = util_now_ns();
	for (i = 0; i < loops && !stop && rc == 0; i++) {
		/* Each loop keeps the capture's timing from its own start. */
		rp.started = false;
		for (f = optind; f < argc && !stop && rc == 0; f++)
			rc = replay_file(&rp, argv[f]);
	}
	if (rc == 0)
		rc = tx_flush(rp.tx);
	ns = util_now_ns() - t0;
	cpu = util_cpu_seconds() - cpu0;
	secs = ns / 1e9;
	/* One line for people and scripts alike, as sluice-recv --pcap. */
	printf("replay: files=%" PRIu64 " unreadable=%" PRIu64 " frames=%"
	    PRIu64 " skipped=%" PRIu64 " datagrams=%" PRIu64 " bytes=%"
	    PRIu64 " seconds=%.3f mbit_s=%.1f cpu_s=%.3f cpu_s_per_gb=%.3f\n",
	    rp.files, rp.unreadable, rp.frames, rp.skipped,
	    tx_datagrams(rp.tx), tx_bytes(rp.tx), secs,
	    secs > 0 ? (double)(tx_bytes(rp.tx) + tx_datagrams(rp.tx) *
	    TX_UDP_IP_OVERHEAD) * 8 / secs / 1e6 : 0.0, cpu,
	    tx_bytes(rp.tx) > 0 ? cpu / ((double)tx_bytes(rp.tx) / 1e9) :
	    0.0);
	tx_free(rp.tx);
	if (rc != 0 && rc != -EINTR) {
		fprintf(stderr, "sluice replay: send: %s\n", strerror(-rc));
		return 1;
	}
	return rc == 0 && rp.unreadable == 0 ? 0 : 1;
}
