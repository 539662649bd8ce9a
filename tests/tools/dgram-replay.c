/*
 * dgram-replay: a test-only recorder and replayer of datagrams, for tests
 * that need genuinely signed datagrams from a real sluice-send sent again
 * later (replay floods, descriptors of transfers that never finish).
 *
 *   dgram-replay record --listen 127.0.0.1:PORT --out FILE
 *                       [--only descriptor|symbol|heartbeat] [--idle SECONDS]
 *   dgram-replay replay --in FILE --to 127.0.0.1:PORT --pps N --seconds S
 *
 * The recording is a sequence of [u32 big-endian length][bytes], one per
 * datagram, in arrival order.  The recorder binds a plain UDP socket
 * without UDP_GRO, so the sender's GSO super-datagrams arrive split into
 * the individual datagrams they carry.  It stops after --idle seconds
 * (default 2) without traffic and prints how many datagrams it kept.
 *
 * The replayer sends the recording round-robin, paced to --pps, for
 * --seconds, and prints how many it sent.  It refuses any destination
 * outside 127.0.0.0/8 (and ::1): tests never send anywhere but loopback.
 */
#include "common/util.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define RCVBUF (64 << 20)
/* A recording larger than this is a test gone wrong. */
#define MAX_DATAGRAMS (1u << 20)

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	stop = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: dgram-replay record --listen 127.0.0.1:PORT --out FILE\n"
	    "           [--only descriptor|symbol|heartbeat] [--idle SECONDS]\n"
	    "       dgram-replay replay --in FILE --to 127.0.0.1:PORT "
	    "--pps N --seconds S\n");
	exit(2);
}

static bool
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

/* Parses a loopback address or exits. */
static void
loopback_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	if (s == NULL || util_parse_addr(s, ss, sslen) != 0)
		usage();
	if (!is_loopback(ss)) {
		fprintf(stderr, "dgram-replay: %s is not a loopback address; "
		    "refusing\n", s);
		exit(2);
	}
}

static int
type_by_name(const char *s)
{
	if (strcmp(s, "descriptor") == 0)
		return PROTO_T_DESCRIPTOR;
	if (strcmp(s, "symbol") == 0)
		return PROTO_T_SYMBOL;
	if (strcmp(s, "heartbeat") == 0)
		return PROTO_T_HEARTBEAT;
	usage();
	return 0;
}

static int
record(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "only", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	static uint8_t bufs[BATCH][PROTO_MAX_DATAGRAM];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage ss;
	struct timeval tick = { 0, 50000 };
	socklen_t sslen;
	const char *listen_at = NULL, *out = NULL;
	double idle = 2.0;
	int only = 0, ch, fd = -1, rcvbuf = RCVBUF, i, n, rc = 1;
	uint64_t seen = 0, kept = 0, last;
	FILE *f = NULL;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_at = optarg; break;
		case 'o': out = optarg; break;
		case 't': only = type_by_name(optarg); break;
		case 'i': idle = strtod(optarg, NULL); break;
		default: usage();
		}
	}
	if (out == NULL || !(idle > 0) || optind != argc)
		usage();
	loopback_addr(listen_at, &ss, &sslen);
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		goto out;
	}
	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped by
	 * net.core.rmem_max.  Either is better than the default. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	    sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) < 0) {
		perror("SO_RCVTIMEO");
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		perror("bind");
		goto out;
	}
	f = fopen(out, "wb");
	if (f == NULL) {
		perror(out);
		goto out;
	}
	printf("dgram-replay: listening on %s\n", listen_at);
	fflush(stdout);
	last = util_now_ns();
	for (;;) {
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		/* Returns once at least one arrived, or after SO_RCVTIMEO
		 * so the idle clock is checked (recvmmsg's own timeout is
		 * only looked at after a datagram arrives). */
		n = recvmmsg(fd, mm, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			n = 0;
		if (n < 0) {
			perror("recvmmsg");
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct proto_hdr h;
			size_t len = mm[i].msg_len;
			uint8_t be[4];

			seen++;
			if (only != 0 && (proto_hdr_decode(bufs[i], len, &h) !=
			    PROTO_OK || h.type != only))
				continue;
			if (kept >= MAX_DATAGRAMS) {
				fprintf(stderr, "dgram-replay: more than %u "
				    "datagrams\n", MAX_DATAGRAMS);
				goto out;
			}
			be[0] = (uint8_t)(len >> 24);
			be[1] = (uint8_t)(len >> 16);
			be[2] = (uint8_t)(len >> 8);
			be[3] = (uint8_t)len;
			if (fwrite(be, 1, 4, f) != 4 ||
			    fwrite(bufs[i], 1, len, f) != len) {
				perror(out);
				goto out;
			}
			kept++;
		}
		if (n > 0)
			last = util_now_ns();
		else if (util_now_ns() - last >= (uint64_t)(idle * 1e9))
			break;
	}
	if (fclose(f) != 0) {
		f = NULL;
		perror(out);
		goto out;
	}
	f = NULL;
	printf("kept %" PRIu64 " of %" PRIu64 " datagrams\n", kept, seen);
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Loads a recording: *dgrams points at n entries into one buffer. */
static int
load(const char *path, uint8_t **buf, struct iovec **dgrams, size_t *n)
{
	size_t len, off = 0, count = 0;
	int r;

	r = util_read_file(path, (size_t)MAX_DATAGRAMS * 1500, buf, &len);
	if (r != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return 1;
	}
	*dgrams = NULL;
	while (len - off >= 4) {
		const uint8_t *p = *buf + off;
		size_t dl = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
		    (size_t)p[2] << 8 | p[3];
		struct iovec *grown;

		if (len - off - 4 < dl || dl > PROTO_MAX_DATAGRAM)
			break;
		grown = realloc(*dgrams, (count + 1) * sizeof(**dgrams));
		if (grown == NULL) {
			perror("realloc");
			return 1;
		}
		*dgrams = grown;
		(*dgrams)[count].iov_base = *buf + off + 4;
		(*dgrams)[count].iov_len = dl;
		count++;
		off += 4 + dl;
	}
	if (off != len) {
		fprintf(stderr, "%s: truncated or corrupt at byte %zu\n", path,
		    off);
		return 1;
	}
	if (count == 0) {
		fprintf(stderr, "%s: no datagrams\n", path);
		return 1;
	}
	*n = count;
	return 0;
}

static int
replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "to", required_argument, NULL, 'd' },
		{ "pps", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct mmsghdr mm[BATCH];
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct iovec *dgrams = NULL;
	uint8_t *buf = NULL;
	const char *in = NULL, *to = NULL;
	uint64_t pps = 0, sent = 0, t0, end;
	double seconds = 0;
	size_t n = 0, next = 0;
	int ch, fd = -1, i, rc = 1;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': in = optarg; break;
		case 'd': to = optarg; break;
		case 'p': pps = strtoull(optarg, NULL, 10); break;
		case 's': seconds = strtod(optarg, NULL); break;
		default: usage();
		}
	}
	if (in == NULL || pps == 0 || !(seconds > 0) || optind != argc)
		usage();
	loopback_addr(to, &ss, &sslen);
	/* Stopped early by the test: still say how many were sent. */
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (load(in, &buf, &dgrams, &n) != 0)
		goto out;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		perror("socket");
		goto out;
	}
	t0 = util_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	while (!stop && util_now_ns() < end) {
		uint64_t want;
		unsigned batch;
		int r;

		/* Send what is due by now, at most one batch. */
		want = (util_now_ns() - t0) * pps / 1000000000ull + 1;
		if (want <= sent) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
			continue;
		}
		batch = want - sent < BATCH ? (unsigned)(want - sent) : BATCH;
		for (i = 0; i < (int)batch; i++) {
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &dgrams[(next + i) % n];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(fd, mm, batch, 0);
		/* Nobody listening yet, or a full queue: the test wants the
		 * load, not delivery; count them as sent. */
		if (r < 0 && (errno == ECONNREFUSED || errno == ENOBUFS ||
		    errno == EAGAIN || errno == EINTR))
			r = (int)batch;
		if (r < 0) {
			perror("sendmmsg");
			goto out;
		}
		sent += (unsigned)r;
		next = (next + (unsigned)r) % n;
	}
	printf("sent %" PRIu64 " datagrams (%zu recorded) in %.2f s\n", sent,
	    n, (util_now_ns() - t0) / 1e9);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dgrams);
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	/* Options start after the subcommand. */
	if (strcmp(argv[1], "record") == 0)
		return record(argc - 1, argv + 1);
	if (strcmp(argv[1], "replay") == 0)
		return replay(argc - 1, argv + 1);
	usage();
	return 2;
}
