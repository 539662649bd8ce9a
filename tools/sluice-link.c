/*
 * sluice-link: a one-way UDP relay with seeded, reproducible impairments,
 * standing in for a lossy diode link in tests and acceptance runs.
 *
 * Every decision (lose, start a burst, duplicate, corrupt, truncate, hold
 * back) is drawn from one xoshiro256** stream seeded by --seed, in the
 * order datagrams arrive: the same seed and the same input give the same
 * output.  The listening socket only receives and the forwarding socket
 * only sends, so the relay itself has no return path either.
 *
 * It must not be the bottleneck of what it emulates: it receives with
 * UDP_GRO (a run of datagrams per read, cut apart here, each impaired on
 * its own) and sends runs of equal-sized datagrams as one UDP GSO
 * message, as sluice-send and sluice-recv do.
 */
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DGRAM 65536
#define GSO_MAX_SEGS 64      /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_MAX_BYTES 65000  /* payload of one GSO message */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define IDLE_FLUSH_MS 50

struct rng {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(struct rng *r)
{
	uint64_t result = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;

	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double
rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static uint64_t
rng_below(struct rng *r, uint64_t n)
{
	return n == 0 ? 0 : rng_next(r) % n;
}

struct held {
	uint64_t release_at;
	size_t len;
	uint8_t *buf;
};

struct link {
	double loss, burst_rate, reorder, duplicate, corrupt, truncate;
	unsigned burst_len, reorder_depth;
	uint64_t drop_first;   /* --drop-first: the first N are lost */
	uint64_t rate;
	struct rng rng;
	int rx, tx;
	uint64_t counter;      /* datagrams forwarded or dropped so far */
	unsigned burst_left;
	FILE *lost_log;      /* --lost-log: the index of each datagram lost */
	struct held *held;
	unsigned n_held, max_held;
	/* output batch: each message one datagram, or with GSO a run of
	 * equal-sized ones (the last may be shorter) */
	struct mmsghdr out[BATCH];
	struct iovec out_iov[BATCH];
	uint8_t *out_buf[BATCH];
	size_t out_seg[BATCH];    /* segment size */
	unsigned out_nseg[BATCH];
	bool out_closed[BATCH];   /* ends with a short segment */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} out_cmsg[BATCH];
	unsigned n_out;
	bool gso;
	/* pacing */
	double tokens;
	uint64_t last_ns;
	const char *stats_file;
	struct {
		uint64_t received, forwarded, lost_random, lost_burst, bursts,
		    reordered, duplicated, corrupted, truncated;
	} st;
};

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
format_stats(const struct link *l, char *buf, size_t len)
{
	snprintf(buf, len, "received=%" PRIu64 " forwarded=%" PRIu64
	    " lost_random=%" PRIu64 " lost_burst=%" PRIu64 " bursts=%" PRIu64
	    " reordered=%" PRIu64 " duplicated=%" PRIu64 " corrupted=%" PRIu64
	    " truncated=%" PRIu64 "\n", l->st.received, l->st.forwarded,
	    l->st.lost_random, l->st.lost_burst, l->st.bursts,
	    l->st.reordered, l->st.duplicated, l->st.corrupted,
	    l->st.truncated);
}

static void
write_stats(const struct link *l)
{
	char line[512];

	if (l->lost_log != NULL)
		fflush(l->lost_log);
	if (l->stats_file == NULL)
		return;
	format_stats(l, line, sizeof(line));
	if (util_write_file_atomic(l->stats_file, line, strlen(line), 0644) !=
	    0)
		log_warn("writing %s", l->stats_file);
}

static void
pace(struct link *l, size_t len)
{
	uint64_t now;

	if (l->rate == 0)
		return;
	for (;;) {
		now = util_now_ns();
		l->tokens += (double)(now - l->last_ns) * 1e-9 * (double)l->rate;
		l->last_ns = now;
		if (l->tokens > (double)l->rate * 0.002 + 8.0 * MAX_DGRAM)
			l->tokens = (double)l->rate * 0.002 + 8.0 * MAX_DGRAM;
		if (l->tokens >= 0)
			break;
		{
			struct timespec ts = { 0, (long)(-l->tokens /
			    (double)l->rate * 1e9) };

			nanosleep(&ts, NULL);
		}
	}
	l->tokens -= (double)(len + 28) * 8;
}

/* Sends message i's segments one by one (no GSO here). */
static void
send_split(struct link *l, unsigned i)
{
	size_t off, len = l->out_iov[i].iov_len;

	for (off = 0; off < len; off += l->out_seg[i]) {
		size_t n = len - off < l->out_seg[i] ? len - off :
		    l->out_seg[i];

		while (send(l->tx, l->out_buf[i] + off, n, 0) < 0 &&
		    (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)) {
			struct pollfd p = { l->tx, POLLOUT, 0 };

			poll(&p, 1, 1);
		}
	}
}

static void
flush_out(struct link *l)
{
	unsigned done = 0, i;

	for (i = 0; i < l->n_out; i++) {
		struct msghdr *mh = &l->out[i].msg_hdr;

		memset(&l->out[i], 0, sizeof(l->out[i]));
		mh->msg_iov = &l->out_iov[i];
		mh->msg_iovlen = 1;
		if (l->out_nseg[i] > 1) {
			struct cmsghdr *cm;
			uint16_t seg = (uint16_t)l->out_seg[i];

			mh->msg_control = l->out_cmsg[i].buf;
			mh->msg_controllen = sizeof(l->out_cmsg[i].buf);
			cm = CMSG_FIRSTHDR(mh);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
	}
	while (done < l->n_out) {
		int n = sendmmsg(l->tx, l->out + done, l->n_out - done, 0);

		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				struct pollfd p = { l->tx, POLLOUT, 0 };

				poll(&p, 1, 1);
				continue;
			}
			if (l->gso && (errno == EIO || errno == EINVAL ||
			    errno == ENOPROTOOPT)) {
				/* No GSO on this path: send what is left one
				 * datagram at a time, and from now on. */
				log_info("UDP GSO unavailable (%s)",
				    strerror(errno));
				l->gso = false;
				for (; done < l->n_out; done++)
					send_split(l, done);
				break;
			}
			log_warn("send");
			break;
		}
		done += (unsigned)n;
	}
	l->n_out = 0;
}

static void
forward(struct link *l, const uint8_t *buf, size_t len)
{
	unsigned i;

	pace(l, len);
	l->st.forwarded++;
	if (l->gso && l->n_out > 0 && len > 0) {
		/* Join the last message's run if it can take this one. */
		i = l->n_out - 1;
		if (!l->out_closed[i] && len <= l->out_seg[i] &&
		    l->out_nseg[i] < GSO_MAX_SEGS &&
		    l->out_iov[i].iov_len + len <= GSO_MAX_BYTES) {
			memcpy(l->out_buf[i] + l->out_iov[i].iov_len, buf, len);
			l->out_iov[i].iov_len += len;
			l->out_nseg[i]++;
			l->out_closed[i] = len < l->out_seg[i];
			return;
		}
	}
	if (l->n_out == BATCH)
		flush_out(l);
	i = l->n_out++;
	memcpy(l->out_buf[i], buf, len);
	l->out_iov[i].iov_base = l->out_buf[i];
	l->out_iov[i].iov_len = len;
	l->out_seg[i] = len;
	l->out_nseg[i] = 1;
	/* An empty datagram cannot be a GSO segment: it goes alone. */
	l->out_closed[i] = len == 0;
}

/* Releases held datagrams whose time has come (all of them if force). */
static void
release_held(struct link *l, bool force)
{
	unsigned i = 0;

	while (i < l->n_held) {
		struct held *h = &l->held[i];

		if (!force && h->release_at > l->counter) {
			i++;
			continue;
		}
		forward(l, h->buf, h->len);
		free(h->buf);
		l->held[i] = l->held[--l->n_held];
	}
}

static void
hold(struct link *l, const uint8_t *buf, size_t len)
{
	struct held *h;

	if (l->n_held == l->max_held)
		release_held(l, true);
	h = &l->held[l->n_held];
	h->buf = malloc(len > 0 ? len : 1);
	if (h->buf == NULL) {
		forward(l, buf, len);
		return;
	}
	memcpy(h->buf, buf, len);
	h->len = len;
	h->release_at = l->counter + 1 + rng_below(&l->rng, l->reorder_depth);
	l->n_held++;
	l->st.reordered++;
}

static void
one_copy(struct link *l, uint8_t *buf, size_t len)
{
	if (l->corrupt > 0 && rng_unit(&l->rng) < l->corrupt && len > 0) {
		uint64_t bit = rng_below(&l->rng, (uint64_t)len * 8);

		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		l->st.corrupted++;
	}
	if (l->truncate > 0 && rng_unit(&l->rng) < l->truncate && len > 0) {
		len = (size_t)rng_below(&l->rng, len);
		l->st.truncated++;
	}
	if (l->reorder > 0 && rng_unit(&l->rng) < l->reorder)
		hold(l, buf, len);
	else
		forward(l, buf, len);
}

static void
impair(struct link *l, uint8_t *buf, size_t len)
{
	uint8_t copy[MAX_DGRAM];
	bool dup;

	l->st.received++;
	l->counter++;
	if (l->counter <= l->drop_first) {
		l->st.lost_random++;
		goto lost;
	}
	if (l->burst_left > 0) {
		l->burst_left--;
		l->st.lost_burst++;
		goto lost;
	}
	if (l->burst_rate > 0 &&
	    rng_unit(&l->rng) < l->burst_rate / l->burst_len) {
		l->st.bursts++;
		l->st.lost_burst++;
		l->burst_left = l->burst_len - 1;
		goto lost;
	}
	if (l->loss > 0 && rng_unit(&l->rng) < l->loss) {
		l->st.lost_random++;
		goto lost;
	}
	dup = l->duplicate > 0 && rng_unit(&l->rng) < l->duplicate;
	if (dup) {
		memcpy(copy, buf, len);
		l->st.duplicated++;
	}
	one_copy(l, buf, len);
	if (dup)
		one_copy(l, copy, len);
	release_held(l, false);
	return;
lost:
	/* The truth a link report is checked against (tests). */
	if (l->lost_log != NULL)
		fprintf(l->lost_log, "%" PRIu64 "\n", l->counter);
	release_held(l, false);
}

/* A read: one datagram, or with UDP_GRO a run of them, cut apart by the
 * segment size the kernel reports. */
static void
impair_run(struct link *l, uint8_t *buf, size_t len, struct msghdr *mh)
{
	struct cmsghdr *cm;
	size_t seg = len, off;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		int gso;

		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(gso))) {
			memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
			if (gso > 0)
				seg = (size_t)gso;
		}
	}
	if (len == 0 || seg == 0) {
		impair(l, buf, 0);
		return;
	}
	for (off = 0; off < len; off += seg)
		impair(l, buf + off, len - off < seg ? len - off : seg);
}

static double
parse_prob(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end != s && *end == '%' && end[1] == '\0')
		v /= 100;
	else if (end == s || *end != '\0')
		v = -1;
	if (v < 0 || v > 1)
		fatalx("--%s: %s is not a probability (0..1 or N%%)", opt, s);
	return v;
}

/* --help: exit 0, on stdout; a usage error: exit 2, on stderr. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sluice-link --listen ADDR:PORT --forward "
	    "ADDR:PORT [--loss P]\n"
	    "           [--burst-rate P --burst-len N] [--reorder P "
	    "--reorder-depth N]\n"
	    "           [--duplicate P] [--corrupt P] [--truncate P] "
	    "[--rate R] [--seed S]\n"
	    "           [--drop-first N] [--stats-file FILE] [--lost-log FILE] "
	    "[--quiet]\n"
	    "       sluice-link --help | --version\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "forward", required_argument, NULL, 'f' },
		{ "loss", required_argument, NULL, 'L' },
		{ "burst-rate", required_argument, NULL, 'b' },
		{ "burst-len", required_argument, NULL, 'B' },
		{ "reorder", required_argument, NULL, 'r' },
		{ "reorder-depth", required_argument, NULL, 'R' },
		{ "duplicate", required_argument, NULL, 'd' },
		{ "corrupt", required_argument, NULL, 'c' },
		{ "truncate", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'x' },
		{ "seed", required_argument, NULL, 's' },
		{ "stats-file", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "drop-first", required_argument, NULL, 'F' },
		{ "lost-log", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct link l;
	struct sockaddr_storage la, fa;
	socklen_t lal, fal;
	const char *listen_s = NULL, *forward_s = NULL;
	uint64_t seed = 1, last_stats = 0;
	struct mmsghdr in[BATCH];
	struct iovec in_iov[BATCH];
	uint8_t *in_buf[BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} in_cmsg[BATCH];
	struct sigaction sa;
	bool quiet = false;
	char line[512], a[64], b[64];
	int ch, v, i;

	log_init("sluice-link", 0);
	memset(&l, 0, sizeof(l));
	l.burst_len = 50;
	l.reorder_depth = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(0); break;
		case 'V':
			printf("sluice-link %s\n", SLUICE_VERSION_STRING);
			return 0;
		case 'F': l.drop_first = strtoull(optarg, NULL, 10); break;
		case 'O':
			if ((l.lost_log = fopen(optarg, "w")) == NULL)
				fatal("%s", optarg);
			break;
		case 'l': listen_s = optarg; break;
		case 'f': forward_s = optarg; break;
		case 'L': l.loss = parse_prob("loss", optarg); break;
		case 'b': l.burst_rate = parse_prob("burst-rate", optarg);
			break;
		case 'B': l.burst_len = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r': l.reorder = parse_prob("reorder", optarg); break;
		case 'R': l.reorder_depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd': l.duplicate = parse_prob("duplicate", optarg); break;
		case 'c': l.corrupt = parse_prob("corrupt", optarg); break;
		case 't': l.truncate = parse_prob("truncate", optarg); break;
		case 'x':
			if (util_parse_si(optarg, &l.rate) != 0)
				fatalx("--rate: %s is not a rate", optarg);
			break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'S': l.stats_file = optarg; break;
		case 'q': quiet = true; break;
		default: usage(2);
		}
	}
	if (listen_s == NULL || forward_s == NULL || optind != argc ||
	    l.burst_len == 0 || l.burst_len > 1000000 ||
	    l.reorder_depth == 0 || l.reorder_depth > 100000)
		usage(2);
	if (util_parse_addr(listen_s, &la, &lal) != 0 ||
	    util_parse_addr(forward_s, &fa, &fal) != 0)
		fatalx("bad address");
	for (i = 0; i < 4; i++)
		l.rng.s[i] = splitmix64(&seed);
	l.max_held = l.reorder_depth + BATCH;
	l.held = calloc(l.max_held, sizeof(*l.held));
	for (i = 0; i < BATCH; i++) {
		in_buf[i] = malloc(MAX_DGRAM);
		l.out_buf[i] = malloc(MAX_DGRAM);
		if (in_buf[i] == NULL || l.out_buf[i] == NULL)
			fatalx("out of memory");
	}
	if (l.held == NULL)
		fatalx("out of memory");

	l.rx = socket(la.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	l.tx = socket(fa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (l.rx < 0 || l.tx < 0)
		fatal("socket");
	v = 32 << 20;
	if (setsockopt(l.rx, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(l.rx, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(l.tx, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(l.tx, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	v = 1;
	if (setsockopt(l.rx, SOL_UDP, UDP_GRO, &v, sizeof(v)) < 0)
		log_info("no UDP_GRO: one datagram per read");
	l.gso = true;
	if (bind(l.rx, (struct sockaddr *)&la, lal) < 0)
		fatal("bind %s", listen_s);
	if (connect(l.tx, (struct sockaddr *)&fa, fal) < 0)
		fatal("connect %s", forward_s);
	shutdown(l.tx, SHUT_RD);
	l.last_ns = util_now_ns();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!quiet) {
		util_format_addr(a, sizeof(a), (struct sockaddr *)&la);
		util_format_addr(b, sizeof(b), (struct sockaddr *)&fa);
		log_info("listening on %s, forwarding to %s", a, b);
	}
	write_stats(&l);
	while (!quit) {
		struct pollfd p = { l.rx, POLLIN, 0 };
		int n;
		uint64_t now;

		if (poll(&p, 1, IDLE_FLUSH_MS) == 0) {
			release_held(&l, true);
			flush_out(&l);
		} else if (p.revents & POLLIN) {
			for (i = 0; i < BATCH; i++) {
				in_iov[i].iov_base = in_buf[i];
				in_iov[i].iov_len = MAX_DGRAM;
				memset(&in[i], 0, sizeof(in[i]));
				in[i].msg_hdr.msg_iov = &in_iov[i];
				in[i].msg_hdr.msg_iovlen = 1;
				in[i].msg_hdr.msg_control = in_cmsg[i].buf;
				in[i].msg_hdr.msg_controllen =
				    sizeof(in_cmsg[i].buf);
			}
			n = recvmmsg(l.rx, in, BATCH, MSG_DONTWAIT, NULL);
			for (i = 0; i < n; i++)
				impair_run(&l, in_buf[i], in[i].msg_len,
				    &in[i].msg_hdr);
			flush_out(&l);
		}
		now = util_now_ns();
		if (now - last_stats > 1000000000ull) {
			write_stats(&l);
			last_stats = now;
		}
	}
	release_held(&l, true);
	flush_out(&l);
	write_stats(&l);
	format_stats(&l, line, sizeof(line));
	fputs(line, stderr);
	return 0;
}
