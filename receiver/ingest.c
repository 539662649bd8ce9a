/*
 * Ingest: the receive-only UDP socket, the io_uring ring, and the provided
 * buffer ring the kernel fills with datagrams.
 *
 * One multishot recvmsg stays armed on the socket; each completion names a
 * buffer of the ring, which is handed to assemble_datagram() and given back
 * to the ring before the next completion is looked at, on every path.
 * liburing 2.3 has no io_uring_setup_buf_ring(), so the ring is mmap'd and
 * registered by hand (as liburing's examples/io_uring-udp.c does).
 *
 * Staging writes go through the same ring; their completions come back
 * here with the slot as user data.
 *
 * The socket is bound and read, never written: nothing in the receiver
 * sends a datagram.
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RING_ENTRIES 256
#define CQ_ENTRIES 16384
#define BUF_GROUP 7
/*
 * Power of two.  64 MiB in all, faulted in at start, so that what the
 * receiver holds does not grow with what arrives (a flood of junk
 * included).  256 buffers cost throughput: the multishot recv ran out
 * more often, and one run in four overflowed the socket at 5 Gbit/s.
 */
#define BUF_COUNT 1024
/* A GRO-coalesced run of datagrams (up to 64 KiB), or one datagram of any
 * size, plus the recvmsg header and the UDP_GRO control message. */
#define BUF_SIZE (65536 + 256)
#define UD_RECV 1ull               /* user_data of the recvmsg */
#define WAIT_BATCH 64

struct ingest {
	struct recv *r;
	struct io_uring ring;
	bool ring_ok;
	int fd;
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint8_t *bufs;
	struct msghdr msg;
	bool armed;
	bool rearmed;        /* the recv ended and was armed again */
	bool gro;
	unsigned rcvbuf;
};

unsigned
ingest_rcvbuf(const struct ingest *in)
{
	return in->rcvbuf;
}

static int
open_socket(struct ingest *in, const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen, optlen;
	int fd, v, tries;

	if (util_parse_addr(listen, &ss, &sslen) != 0) {
		snprintf(err, errlen, "bad listen address %s", listen);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0)
		return -errno;
	v = (int)UTIL_MIN(in->r->conf->rcvbuf_bytes, (uint64_t)INT32_MAX);
	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to the sysctl cap. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	optlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &optlen) == 0)
		in->rcvbuf = (unsigned)v;
	/*
	 * A previous instance's socket can outlive it briefly while the
	 * kernel tears down its io_uring ring: wait for it (a restart after
	 * SIGKILL, or systemd's Restart=), up to 10 s.
	 */
	for (tries = 0;; tries++) {
		int e;

		if (bind(fd, (struct sockaddr *)&ss, sslen) == 0)
			break;
		e = errno;
		if (e != EADDRINUSE || tries == 100) {
			snprintf(err, errlen, "bind %s: %s", listen,
			    strerror(e));
			close(fd);
			return -e;
		}
		if (tries == 0)
			log_info("%s is still in use; waiting", listen);
		usleep(100000);
	}
	/* Coalesced delivery of runs of equal-size datagrams: one completion
	 * for up to 64 KiB instead of one per datagram. */
	v = 1;
	in->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof(v)) == 0;
	in->fd = fd;
	return 0;
}

static int
setup_buffers(struct ingest *in)
{
	struct io_uring_buf_reg reg;
	unsigned i;
	int rc;

	in->br_len = BUF_COUNT * sizeof(struct io_uring_buf);
	in->br = mmap(NULL, in->br_len, PROT_READ | PROT_WRITE,
	    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (in->br == MAP_FAILED) {
		in->br = NULL;
		return -errno;
	}
	in->bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (in->bufs == MAP_FAILED) {
		in->bufs = NULL;
		return -ENOMEM;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)in->br;
	reg.ring_entries = BUF_COUNT;
	reg.bgid = BUF_GROUP;
	rc = io_uring_register_buf_ring(&in->ring, &reg, 0);
	if (rc != 0)
		return rc;
	io_uring_buf_ring_init(in->br);
	for (i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(in->br, in->bufs + (size_t)i * BUF_SIZE,
		    BUF_SIZE, (unsigned short)i,
		    io_uring_buf_ring_mask(BUF_COUNT), (int)i);
	io_uring_buf_ring_advance(in->br, BUF_COUNT);
	return 0;
}

/*
 * seccomp cannot see what an io_uring does, so the ring itself is
 * restricted before it is enabled: it may only receive (with a provided
 * buffer) and write, and nothing more may be registered.  A bug elsewhere
 * in the receiver can then not turn the ring into a way to send, open or
 * connect anything.
 */
static int
restrict_ring(struct ingest *in)
{
	struct io_uring_restriction res[3];

	memset(res, 0, sizeof(res));
	res[0].opcode = IORING_RESTRICTION_SQE_OP;
	res[0].sqe_op = IORING_OP_RECVMSG;
	res[1].opcode = IORING_RESTRICTION_SQE_OP;
	res[1].sqe_op = IORING_OP_WRITE;
	res[2].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[2].sqe_flags = IOSQE_BUFFER_SELECT;
	/* Debian 12's liburing 2.3 declares io_uring_register_restrictions()
	 * and io_uring_enable_rings() but its library does not export them:
	 * make the two io_uring_register(2) calls they would make. */
	if (syscall(__NR_io_uring_register, in->ring.ring_fd,
	    IORING_REGISTER_RESTRICTIONS, res, 3) < 0)
		return -errno;
	if (syscall(__NR_io_uring_register, in->ring.ring_fd,
	    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

static void
recycle(struct ingest *in, unsigned bid)
{
	io_uring_buf_ring_add(in->br, in->bufs + (size_t)bid * BUF_SIZE,
	    BUF_SIZE, (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT),
	    0);
	io_uring_buf_ring_advance(in->br, 1);
}

static int
arm(struct ingest *in)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&in->ring);

	if (sqe == NULL) {
		io_uring_submit(&in->ring);
		sqe = io_uring_get_sqe(&in->ring);
		if (sqe == NULL)
			return -EBUSY;
	}
	io_uring_prep_recvmsg_multishot(sqe, in->fd, &in->msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, UD_RECV);
	in->armed = true;
	return 0;
}

struct ingest *
ingest_new(struct recv *r, char *err, size_t errlen)
{
	struct io_uring_params p;
	struct ingest *in = calloc(1, sizeof(*in));
	int rc;

	if (in == NULL)
		return NULL;
	in->r = r;
	in->fd = -1;
	rc = open_socket(in, r->conf->listen, err, errlen);
	if (rc != 0)
		goto fail;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
	    IORING_SETUP_R_DISABLED;
	p.cq_entries = CQ_ENTRIES;
	rc = io_uring_queue_init_params(RING_ENTRIES, &in->ring, &p);
	if (rc < 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
		goto fail;
	}
	in->ring_ok = true;
	rc = setup_buffers(in);
	if (rc != 0) {
		snprintf(err, errlen, "provided buffer ring: %s",
		    strerror(-rc));
		goto fail;
	}
	rc = restrict_ring(in);
	if (rc != 0) {
		snprintf(err, errlen, "io_uring restrictions: %s",
		    strerror(-rc));
		goto fail;
	}
	memset(&in->msg, 0, sizeof(in->msg));
	in->msg.msg_controllen = CMSG_SPACE(sizeof(int));
	rc = arm(in);
	if (rc != 0)
		goto fail;
	io_uring_submit(&in->ring);
	return in;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "%s", strerror(-rc));
	ingest_free(in);
	return NULL;
}

void
ingest_free(struct ingest *in)
{
	if (in == NULL)
		return;
	if (in->ring_ok)
		io_uring_queue_exit(&in->ring);
	if (in->br != NULL)
		munmap(in->br, in->br_len);
	if (in->bufs != NULL)
		munmap(in->bufs, (size_t)BUF_COUNT * BUF_SIZE);
	if (in->fd >= 0)
		close(in->fd);
	free(in);
}

int
ingest_submit_write(struct ingest *in, struct slot *s, int fd,
    const void *buf, size_t len, uint64_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&in->ring);

	if (sqe == NULL) {
		io_uring_submit(&in->ring);
		sqe = io_uring_get_sqe(&in->ring);
		if (sqe == NULL)
			return -EBUSY;
	}
	io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
	io_uring_sqe_set_data(sqe, s);
	return 0;
}

static void
handle_recv(struct ingest *in, struct io_uring_cqe *cqe)
{
	struct io_uring_recvmsg_out *o;
	unsigned bid;
	uint8_t *buf;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		in->armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ENOBUFS)
			log_warnx("recvmsg: %s", strerror(-cqe->res));
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return;
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	buf = in->bufs + (size_t)bid * BUF_SIZE;
	o = io_uring_recvmsg_validate(buf, cqe->res, &in->msg);
	if (o != NULL) {
		const uint8_t *p = io_uring_recvmsg_payload(o, &in->msg);
		size_t len = io_uring_recvmsg_payload_length(o, cqe->res,
		    &in->msg), seg = len;
		struct cmsghdr *cm;

		for (cm = io_uring_recvmsg_cmsg_firsthdr(o, &in->msg);
		    cm != NULL; cm = io_uring_recvmsg_cmsg_nexthdr(o, &in->msg,
		    cm)) {
			int gso;

			if (cm->cmsg_level != SOL_UDP ||
			    cm->cmsg_type != UDP_GRO ||
			    cm->cmsg_len < CMSG_LEN(sizeof(gso)))
				continue;
			memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
			if (gso > 0)
				seg = (size_t)gso;
		}
		in->r->stats.bytes += len;
		if (len == 0) {
			/* An empty datagram: counted like any short one.  It
			 * also ends the multishot recv (see ingest_run_once). */
			in->r->stats.datagrams++;
			in->r->stats.drop[PROTO_ERR_SHORT]++;
		} else if (o->flags & MSG_TRUNC) {
			in->r->stats.datagrams++;
			in->r->stats.drop[DROP_TRUNCATED]++;
		} else {
			/* Each segment is a datagram of its own. */
			while (len > 0) {
				size_t n = len < seg ? len : seg;

				in->r->stats.datagrams++;
				assemble_datagram(in->r, p, n);
				p += n;
				len -= n;
			}
		}
	}
	recycle(in, bid);
}

int
ingest_run_once(struct ingest *in, unsigned timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int rc;

	/*
	 * Wait for a batch, not for one completion: waking per datagram costs
	 * more than handling it.  The short timeout bounds the latency when
	 * traffic is light.  But not right after the recv ended and was armed
	 * again: the kernel ends a multishot recvmsg on every empty datagram,
	 * and waiting for a batch then would let anyone stall the receiver
	 * for the whole timeout with one empty datagram each.
	 */
	rc = io_uring_submit_and_wait_timeout(&in->ring, &cqe,
	    in->rearmed ? 1 : WAIT_BATCH, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		return rc;
	io_uring_for_each_cqe(&in->ring, head, cqe) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);

		n++;
		if (ud == UD_RECV)
			handle_recv(in, cqe);
		else if (ud != 0)
			assemble_write_done(in->r, (struct slot *)(uintptr_t)ud,
			    cqe->res);
	}
	io_uring_cq_advance(&in->ring, n);
	in->rearmed = !in->armed;
	if (!in->armed) {
		rc = arm(in);
		if (rc != 0)
			return rc;
	}
	return 0;
}
