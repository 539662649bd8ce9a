/*
 * udpbench: the raw-UDP ceiling that make bench compares sluice against,
 * and the model-like data generator it feeds sluice with.
 *
 *   udpbench send --dest ADDR:PORT --size N --bytes N [--rate R]
 *   udpbench recv --listen ADDR:PORT --bytes N [--idle SECONDS]
 *   udpbench genfloat FILE BYTES SEED
 *
 * send uses the sender's socket techniques (sendmmsg on a connected
 * socket, runs of up to 64 equal-size datagrams per message with
 * UDP_SEGMENT, a token bucket counting IPv4 + UDP headers) and recv the
 * receiver's (io_uring multishot recvmsg into a provided buffer ring,
 * UDP_GRO), with nothing else: no framing, no hashing, no loss handling.
 * What they reach is a ceiling, not a competitor.
 *
 * Both print one line of key=value results on stdout: bytes and
 * datagrams moved, seconds (recv: first datagram to last), CPU seconds
 * and peak RSS of the process.
 *
 * genfloat writes BYTES of float32 drawn from N(0, 0.02), like the weights
 * of a trained layer: high-entropy mantissas, so zlib gains only a little
 * (on the exponent bytes), as with real model shards.
 */
#include "common/util.h"
#include "sender/pace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define GSO_MAX_SEGS 64  /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_MAX_BYTES 65507
#define SEND_BATCH 16    /* messages per sendmmsg */
#define UDP_IP_OVERHEAD 28
#define RING_ENTRIES 64
#define CQ_ENTRIES 4096
#define BUF_GROUP 1
#define BUF_COUNT 512    /* power of two */
#define BUF_SIZE (65536 + 256)
#define SOCKBUF (32 << 20)

static void
usage(void)
{
	fprintf(stderr,
	    "usage: udpbench send --dest ADDR:PORT --size N --bytes N "
	    "[--rate R]\n"
	    "       udpbench recv --listen ADDR:PORT --bytes N "
	    "[--idle SECONDS]\n"
	    "       udpbench genfloat FILE BYTES SEED\n");
	exit(2);
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "udpbench: %s: %s\n", what, strerror(err));
	exit(1);
}

static long
maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static uint64_t
parse_u64(const char *s, const char *what)
{
	uint64_t v;

	if (util_parse_si(s, &v) != 0) {
		fprintf(stderr, "udpbench: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

/* ---- send ------------------------------------------------------------ */

static int
cmd_send(int argc, char **argv)
{
	const char *dest = NULL;
	uint64_t size = 1472, bytes = 0, rate = 4000000000ull, left, dgrams = 0;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct mmsghdr mm[SEND_BATCH];
	struct iovec iov[SEND_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} cmsg[SEND_BATCH];
	struct pace pace;
	uint8_t *payload;
	unsigned segs;
	bool gso = true;
	double depth, t0, secs, cpu0;
	int fd, v, i;

	for (i = 0; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--dest") == 0)
			dest = argv[++i];
		else if (strcmp(argv[i], "--size") == 0)
			size = parse_u64(argv[++i], "size");
		else if (strcmp(argv[i], "--bytes") == 0)
			bytes = parse_u64(argv[++i], "bytes");
		else if (strcmp(argv[i], "--rate") == 0)
			rate = parse_u64(argv[++i], "rate");
		else
			usage();
	}
	if (dest == NULL || size < 1 || size > GSO_MAX_BYTES || rate == 0 ||
	    util_parse_addr(dest, &ss, &sslen) != 0)
		usage();
	segs = (unsigned)UTIL_MIN(GSO_MAX_SEGS, GSO_MAX_BYTES / size);
	payload = malloc(segs * size);
	if (payload == NULL)
		die("malloc", ENOMEM);
	/* Random-looking bytes, the same for every datagram: the kernel does
	 * not look at them, and there is nothing to verify at the other end. */
	for (i = 0; i < (int)(segs * size); i++)
		payload[i] = (uint8_t)(i * 2654435761u >> 24);
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", errno);
	v = SOCKBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0)
		die("connect", errno);
	/* Bucket depth as the sender's: 2 ms at the rate, at least two
	 * batches. */
	depth = (double)rate * 0.002;
	if (depth < 2.0 * SEND_BATCH * segs * (size + UDP_IP_OVERHEAD) * 8)
		depth = 2.0 * SEND_BATCH * segs * (size + UDP_IP_OVERHEAD) * 8;
	pace_init(&pace, rate, depth);

	t0 = (double)util_now_ns();
	cpu0 = util_cpu_seconds();
	left = bytes;
	while (left > 0) {
		unsigned n = 0, done = 0;
		uint64_t bits = 0;

		memset(mm, 0, sizeof(mm));
		while (n < SEND_BATCH && left > 0) {
			/* A run of full datagrams per message; a short tail
			 * goes alone. */
			unsigned k = gso ? segs : 1;
			uint64_t len;

			if (left < size)
				k = 1;
			else if (left / size < k)
				k = (unsigned)(left / size);
			len = UTIL_MIN(left, (uint64_t)k * size);
			iov[n].iov_base = payload;
			iov[n].iov_len = len;
			mm[n].msg_hdr.msg_iov = &iov[n];
			mm[n].msg_hdr.msg_iovlen = 1;
			if (k > 1) {
				struct cmsghdr *cm;
				uint16_t gso_size = (uint16_t)size;

				mm[n].msg_hdr.msg_control = cmsg[n].buf;
				mm[n].msg_hdr.msg_controllen =
				    sizeof(cmsg[n].buf);
				cm = CMSG_FIRSTHDR(&mm[n].msg_hdr);
				cm->cmsg_level = SOL_UDP;
				cm->cmsg_type = UDP_SEGMENT;
				cm->cmsg_len = CMSG_LEN(sizeof(gso_size));
				memcpy(CMSG_DATA(cm), &gso_size,
				    sizeof(gso_size));
			}
			bits += (len + (uint64_t)k * UDP_IP_OVERHEAD) * 8;
			dgrams += k;
			left -= len;
			n++;
		}
		pace_take(&pace, bits);
		while (done < n) {
			int sent = sendmmsg(fd, mm + done, n - done, 0);

			if (sent < 0) {
				if (errno == EINTR || errno == ECONNREFUSED)
					continue;
				if (errno == EAGAIN || errno == ENOBUFS) {
					struct pollfd p = { fd, POLLOUT, 0 };

					(void)poll(&p, 1, 1);
					continue;
				}
				if (gso && (errno == EIO || errno == EINVAL ||
				    errno == ENOPROTOOPT)) {
					/* No GSO: one datagram per message
					 * from here on; this batch is lost. */
					fprintf(stderr, "udpbench: no UDP "
					    "GSO (%s)\n", strerror(errno));
					gso = false;
					break;
				}
				die("sendmmsg", errno);
			}
			done += (unsigned)sent;
		}
	}
	secs = ((double)util_now_ns() - t0) / 1e9;
	printf("bytes=%" PRIu64 " datagrams=%" PRIu64 " seconds=%.6f "
	    "cpu=%.3f maxrss_kb=%ld gso=%d\n", bytes, dgrams, secs,
	    util_cpu_seconds() - cpu0, maxrss_kb(), gso);
	close(fd);
	free(payload);
	return 0;
}

/* ---- recv ------------------------------------------------------------ */

struct rx {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	struct msghdr msg;
	int fd;
	bool armed;
};

static void
rx_arm(struct rx *x)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&x->ring);

	if (sqe == NULL) {
		io_uring_submit(&x->ring);
		sqe = io_uring_get_sqe(&x->ring);
		if (sqe == NULL)
			die("io_uring_get_sqe", EBUSY);
	}
	io_uring_prep_recvmsg_multishot(sqe, x->fd, &x->msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, 1);
	x->armed = true;
}

static void
rx_recycle(struct rx *x, unsigned bid)
{
	io_uring_buf_ring_add(x->br, x->bufs + (size_t)bid * BUF_SIZE,
	    BUF_SIZE, (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT),
	    0);
	io_uring_buf_ring_advance(x->br, 1);
}

static void
rx_setup(struct rx *x, const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct io_uring_params p;
	struct io_uring_buf_reg reg;
	size_t br_len = BUF_COUNT * sizeof(struct io_uring_buf);
	unsigned i;
	int v, rc, tries;

	if (util_parse_addr(listen, &ss, &sslen) != 0)
		usage();
	x->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (x->fd < 0)
		die("socket", errno);
	v = SOCKBUF;
	if (setsockopt(x->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(x->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	/* The previous run's receiver may hold the port a little longer
	 * while the kernel tears its io_uring down: wait up to 10 s. */
	for (tries = 0; bind(x->fd, (struct sockaddr *)&ss, sslen) < 0;
	    tries++) {
		if (errno != EADDRINUSE || tries == 100)
			die("bind", errno);
		usleep(100000);
	}
	v = 1;
	if (setsockopt(x->fd, SOL_UDP, UDP_GRO, &v, sizeof(v)) < 0)
		fprintf(stderr, "udpbench: no UDP_GRO (%s)\n",
		    strerror(errno));

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
	p.cq_entries = CQ_ENTRIES;
	rc = io_uring_queue_init_params(RING_ENTRIES, &x->ring, &p);
	if (rc < 0)
		die("io_uring_queue_init", -rc);
	/* liburing 2.3 has no io_uring_setup_buf_ring(): map and register
	 * the provided buffer ring by hand. */
	x->br = mmap(NULL, br_len, PROT_READ | PROT_WRITE,
	    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (x->br == MAP_FAILED)
		die("mmap", errno);
	x->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
	if (x->bufs == NULL)
		die("malloc", ENOMEM);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)x->br;
	reg.ring_entries = BUF_COUNT;
	reg.bgid = BUF_GROUP;
	rc = io_uring_register_buf_ring(&x->ring, &reg, 0);
	if (rc != 0)
		die("io_uring_register_buf_ring", -rc);
	io_uring_buf_ring_init(x->br);
	for (i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(x->br, x->bufs + (size_t)i * BUF_SIZE,
		    BUF_SIZE, (unsigned short)i,
		    io_uring_buf_ring_mask(BUF_COUNT), (int)i);
	io_uring_buf_ring_advance(x->br, BUF_COUNT);
	memset(&x->msg, 0, sizeof(x->msg));
	x->msg.msg_controllen = CMSG_SPACE(sizeof(int));
	rx_arm(x);
	io_uring_submit(&x->ring);
}

static int
cmd_recv(int argc, char **argv)
{
	const char *listen = NULL;
	uint64_t want = 0, got = 0, dgrams = 0, first = 0, last = 0;
	uint64_t idle_ns = 2000000000ull, start_ns = 60000000000ull;
	struct rx x;
	double cpu0;
	int i;

	for (i = 0; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--listen") == 0)
			listen = argv[++i];
		else if (strcmp(argv[i], "--bytes") == 0)
			want = parse_u64(argv[++i], "bytes");
		else if (strcmp(argv[i], "--idle") == 0)
			idle_ns = (uint64_t)(atof(argv[++i]) * 1e9);
		else
			usage();
	}
	if (listen == NULL || want == 0)
		usage();
	rx_setup(&x, listen);
	fprintf(stderr, "udpbench: listening on %s\n", listen);
	cpu0 = util_cpu_seconds();
	start_ns = util_now_ns() + start_ns;
	while (got < want) {
		struct __kernel_timespec ts = { 0, 50000000 };
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		uint64_t now;
		int rc;

		rc = io_uring_submit_and_wait_timeout(&x.ring, &cqe, 32, &ts,
		    NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR)
			die("io_uring_submit_and_wait_timeout", -rc);
		io_uring_for_each_cqe(&x.ring, head, cqe) {
			struct io_uring_recvmsg_out *o;
			unsigned bid;
			uint8_t *buf;

			n++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				x.armed = false;
			if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
				continue;
			bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			buf = x.bufs + (size_t)bid * BUF_SIZE;
			o = io_uring_recvmsg_validate(buf, cqe->res, &x.msg);
			if (o != NULL) {
				size_t len = io_uring_recvmsg_payload_length(o,
				    cqe->res, &x.msg), seg = len;
				struct cmsghdr *cm;

				for (cm = io_uring_recvmsg_cmsg_firsthdr(o,
				    &x.msg); cm != NULL;
				    cm = io_uring_recvmsg_cmsg_nexthdr(o,
				    &x.msg, cm)) {
					int g;

					if (cm->cmsg_level != SOL_UDP ||
					    cm->cmsg_type != UDP_GRO ||
					    cm->cmsg_len < CMSG_LEN(sizeof(g)))
						continue;
					memcpy(&g, CMSG_DATA(cm), sizeof(g));
					if (g > 0)
						seg = (size_t)g;
				}
				got += len;
				dgrams += seg ? (len + seg - 1) / seg : 1;
				last = util_now_ns();
				if (first == 0)
					first = last;
			}
			rx_recycle(&x, bid);
		}
		io_uring_cq_advance(&x.ring, n);
		if (!x.armed)
			rx_arm(&x);
		now = util_now_ns();
		if (first != 0 && now - last > idle_ns)
			break;
		if (first == 0 && now > start_ns)
			break;
	}
	printf("bytes=%" PRIu64 " datagrams=%" PRIu64 " seconds=%.6f "
	    "cpu=%.3f maxrss_kb=%ld\n", got, dgrams,
	    first ? (double)(last - first) / 1e9 : 0.0, util_cpu_seconds() - cpu0,
	    maxrss_kb());
	io_uring_queue_exit(&x.ring);
	close(x.fd);
	free(x.bufs);
	return got >= want ? 0 : 1;
}

/* ---- genfloat -------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A uniform double in (0, 1]. */
static double
uniform(uint64_t *s)
{
	return ((double)(splitmix64(s) >> 11) + 1.0) * 0x1.0p-53;
}

static int
cmd_genfloat(int argc, char **argv)
{
	enum { N = 1 << 18 };
	static float buf[N];
	uint64_t bytes, seed, left;
	int fd;

	if (argc != 3)
		usage();
	bytes = parse_u64(argv[1], "bytes");
	seed = strtoull(argv[2], NULL, 0);
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(argv[0], errno);
	for (left = bytes; left > 0;) {
		size_t n = (size_t)UTIL_MIN(left, sizeof(buf)), i;
		int rc;

		/* Box-Muller, two normals per pair of uniforms. */
		for (i = 0; i < N; i += 2) {
			double r = sqrt(-2.0 * log(uniform(&seed)));
			double t = 2.0 * M_PI * uniform(&seed);

			buf[i] = (float)(0.02 * r * cos(t));
			buf[i + 1] = (float)(0.02 * r * sin(t));
		}
		rc = util_write_all(fd, buf, n);
		if (rc != 0)
			die(argv[0], -rc);
		left -= n;
	}
	if (close(fd) != 0)
		die(argv[0], errno);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 2, argv + 2);
	if (strcmp(argv[1], "recv") == 0)
		return cmd_recv(argc - 2, argv + 2);
	if (strcmp(argv[1], "genfloat") == 0)
		return cmd_genfloat(argc - 2, argv + 2);
	usage();
	return 2;
}
