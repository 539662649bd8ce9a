/*
 * sluice-recv --pcap FILE...: reception from capture files.  Each UDP
 * datagram to the listen port, in pcap or pcapng files read with
 * libpcap, goes through assemble_datagram exactly as one from the
 * socket: the same checks, states, logs and release.  The frames are
 * parsed in proto/frame.c; what is not a whole UDP datagram to our port
 * is counted and skipped.  When the files are read, every transfer they
 * started is taken to a verdict, or to INCOMPLETE with its missing list.
 */
#include "receiver/recv.h"
#include "common/capfile.h"
#include "common/log.h"
#include "common/util.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct pcapin {
	uint64_t files, frames, datagrams, bytes;
	uint64_t frame[PROTO_FRAME_VERDICT_COUNT];
	unsigned failed;
};

/* What the main loop does between datagrams, at most every 100 ms. */
static void
housekeeping(struct recv *r, uint64_t *last)
{
	uint64_t now = util_now_ns();

	lifecycle_poll(r);
	if (now - *last < 100000000ull)
		return;
	*last = now;
	lifecycle_save_progress(r, false);
	lifecycle_tick(r, now);
	lifecycle_write_status(r);
}

static void
read_file(struct recv *r, struct pcapin *pi, const char *path,
    unsigned port, volatile sig_atomic_t *quit)
{
	static uint8_t buf[PROTO_MAX_DATAGRAM + 64] __attribute__((aligned(64)));
	const struct capfile_stats *st;
	struct capfile *c;
	const uint8_t *d;
	char err[256];
	uint64_t last = 0, ts;
	unsigned dport, i;
	size_t len;
	int rc = 0;

	if ((c = capfile_open(path, port, err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", path, err);
		pi->failed++;
		return;
	}
	pi->files++;
	log_info("reading %s (link type %s)", path, capfile_linktype(c));
	st = capfile_stats(c);
	while (!*quit && (rc = capfile_next(c, &d, &len, &ts, &dport, err,
	    sizeof(err))) == 1) {
		memcpy(buf, d, len);
		r->stats.datagrams++;
		r->stats.bytes += len;
		assemble_datagram(r, buf, len, NULL);
		if (st->datagrams % 256 == 0)
			housekeeping(r, &last);
	}
	if (!*quit && rc == -1) {
		log_warnx("%s: %s", path, err);
		pi->failed++;
	}
	pi->frames += st->frames;
	pi->datagrams += st->datagrams;
	pi->bytes += st->bytes;
	for (i = 0; i < PROTO_FRAME_VERDICT_COUNT; i++)
		pi->frame[i] += st->frame[i];
	r->stats.drop[DROP_TRUNCATED] += st->frame[PROTO_FRAME_TRUNCATED] +
	    st->oversize;
	capfile_close(c);
}

/* Work still under way: a transfer the verifier or hooks hold. */
static bool
busy(const struct recv *r)
{
	unsigned i;

	for (i = 0; i < r->n_transfers; i++) {
		enum tstate s = r->transfers[i].state;

		if (s == TS_COMPLETE || s == TS_VERIFYING || s == TS_SCANNING)
			return true;
	}
	return false;
}

int
pcapin_run(struct recv *r, char *const files[], int n,
    volatile sig_atomic_t *quit)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct pcapin pi;
	unsigned port = util_parse_addr(r->conf->listen, &ss, &sslen) == 0 ?
	    util_addr_port(&ss) : 0;
	uint64_t last = 0;
	bool ended = false;
	int i;

	memset(&pi, 0, sizeof(pi));
	for (i = 0; i < n && !*quit; i++)
		read_file(r, &pi, files[i], port, quit);
	/* The files are read: wait out the verifier, then what is still
	 * receiving has had all the capture has to give. */
	while (!*quit) {
		housekeeping(r, &last);
		if (busy(r)) {
			usleep(10000);
			continue;
		}
		if (ended)
			break;
		lifecycle_end_of_input(r);
		ended = true;
	}
	lifecycle_poll(r);
	printf("pcap: files=%" PRIu64 " unreadable=%u frames=%" PRIu64
	    " datagrams=%" PRIu64 " bytes=%" PRIu64, pi.files, pi.failed,
	    pi.frames, pi.datagrams, pi.bytes);
	for (i = 1; i < PROTO_FRAME_VERDICT_COUNT; i++)
		printf(" %s=%" PRIu64, proto_frame_verdict_name(i),
		    pi.frame[i]);
	printf(" released=%" PRIu64 " quarantined=%" PRIu64 " rejected=%"
	    PRIu64 " duplicate=%" PRIu64 " incomplete=%" PRIu64 "\n",
	    r->stats.transfers_released, r->stats.transfers_quarantined,
	    r->stats.transfers_rejected, r->stats.transfers_duplicate,
	    r->stats.transfers_incomplete);
	fflush(stdout);
	return pi.failed == 0 && !*quit ? 0 : 1;
}
