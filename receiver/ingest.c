/*
 * Ingest: the receive-only UDP socket, the io_uring ring, the provided
 * buffer ring the kernel fills with datagrams, and the rx thread that
 * moves them into a bounded in-memory queue (ingest_buffer bytes) for the
 * main thread.
 *
 * One multishot recvmsg stays armed on the socket; each completion names a
 * buffer of the ring, whose bytes are copied into the queue (or counted as
 * queue_full) and which is given back to the ring before the next
 * completion is looked at, on every path.
 * liburing 2.3 has no io_uring_setup_buf_ring(), so the ring is mmap'd and
 * registered by hand (as liburing's examples/io_uring-udp.c does).
 *
 * Between the rx thread and the main thread, `workers` threads prepare
 * each queued run: open the link envelope and hash every symbol
 * (SHA-256), the work that costs the most per byte and needs no state.
 * They take whole entries in turn (entry i to worker i % workers) and
 * mark each ready; the main thread takes entries in order, as before,
 * once ready, so nothing about order, transfers or slots changes, and no
 * lock sits on the per-datagram path.  What a worker found travels in
 * the entry, after the bytes (struct ingest_prep per datagram).
 *
 * The same workers decode, inflate and write whole chunks: the main thread
 * hands a chunk it has all it needs of to the worker that owns it (by its
 * id, so each chunk always goes to one worker) as an ingest_job, and takes
 * the job back once done.  A worker runs its jobs before walking on, and
 * the jobs of a worker are a list under the one lock: a lock per chunk,
 * never per datagram.
 *
 * The socket is bound and read, never written: nothing in the receiver
 * sends a datagram.
 */
#include "receiver/recv.h"
#include "receiver/sigcheck.h"
#include "proto/frame.h"
#include "proto/link.h"
#include "proto/wire.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <liburing.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sched.h>
#include <linux/futex.h>
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
#define MAX_WORKERS RECV_MAX_WORKERS
/*
 * Workers are woken only when this much is queued: below it the main
 * thread keeps up and prepares each run itself when it takes it, and a
 * wake-up per batch (two futex calls a worker) would cost more than the
 * hashing it saves (81_junk_worst: 100,000 small datagrams a second).
 */
#define WORKER_WAKE_BYTES (512u * 1024)
#define CURSOR_IDLE UINT64_MAX
/* Power of two: chunks the main thread has said need no more symbols. */
#define HINT_SLOTS 65536

/* Chunk jobs in order, under in->lock; n may be read without it. */
struct job_list {
	struct ingest_job *head, **tail;
	_Atomic unsigned n;
};

struct worker {
	struct ingest *in;
	unsigned index;
	pthread_t thread;
	/* Where this worker has walked to: the rx thread never writes over
	 * what a worker may still read (see push).  CURSOR_IDLE while it
	 * sleeps, so that a worker the scheduler has not run for a while
	 * never holds the queue back. */
	_Atomic uint64_t cursor;
	/* Chunk jobs given it; it sleeps on cond. */
	struct job_list jobs;
	bool sleeping;
	pthread_cond_t cond;
};

struct ingest {
	const struct recv_conf *conf;
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

	pthread_t thread;
	bool started;
	_Atomic bool stop;

	/* The queue: a single-producer (rx), single-consumer (main) ring of
	 * entries, each an 8-byte header (length, segment size) and the
	 * bytes, padded to 8.  head and tail count bytes since the start and
	 * are only ever increased, each by its own side. */
	uint8_t *q;
	size_t qcap;
	_Atomic uint64_t head;      /* consumer */
	_Atomic uint64_t tail;      /* producer */
	uint64_t peeked;            /* consumer: end of the entry it holds */
	_Atomic int waiting;        /* consumer sleeps on cond */
	pthread_mutex_t lock;
	pthread_cond_t cond;

	/* Counters, written by the rx thread only. */
	_Atomic uint64_t n_datagrams, n_bytes, n_full, n_trunc, n_empty;
	_Atomic uint64_t n_kdrops;  /* SO_RXQ_OVFL: the kernel's drops */
	_Atomic uint64_t hwm;

	struct journal *journal;    /* link_journal_dir, or NULL */

	/* The workers (none: the main thread does it all, as pcapin). */
	struct worker workers[MAX_WORKERS];
	unsigned n_workers;
	const uint8_t *link_key;    /* opened by the workers, or NULL */
	/*
	 * Chunks written or being written (ingest_hint_chunk): their symbols
	 * are not hashed, for the main thread will count them redundant
	 * without looking at them.  A hint only: a collision or a stale one
	 * leaves a symbol unhashed, which the main thread then hashes
	 * itself if it needs it.
	 */
	_Atomic uint64_t hint[HINT_SLOTS];
	_Atomic uint64_t n_hash_skipped;
	/* Descriptors of live transfers are checked by the workers too. */
	struct sigcheck *sc;
	const struct sign_pubkey *keys;
	unsigned n_keys;
	/* The entry the main thread sleeps on (futex on its state) while a
	 * worker finishes it, or NULL. */
	_Atomic(struct qhdr *) main_wait;
	_Atomic int wwaiting;       /* workers asleep on their cond */
	/* Jobs done, for the main thread to take back. */
	struct job_list done;
	void *job_arg;

	pcap_t *cap;                /* capture_interface, instead of fd */
	int cap_linktype;
	unsigned cap_port;
};

/* An entry: length, segment size, datagrams, ready flag; the bytes
 * (padded to 8); with workers, one struct ingest_prep per datagram. */
#define Q_HDR 16
#define Q_WRAP 0xffffffffu

struct qhdr {
	uint32_t len;
	uint32_t seg;
	uint32_t n;                 /* datagrams, when there are workers */
	_Atomic uint32_t state;     /* Q_QUEUED, Q_CLAIMED, Q_READY */
};

/* Whoever claims a queued entry prepares it: its worker, or the main
 * thread when it gets there first (so the main thread never waits on a
 * worker that is behind, it does the work itself). */
static void wake(struct ingest *in);

#define Q_QUEUED 0u
#define Q_CLAIMED 1u
#define Q_READY 2u

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
	v = (int)UTIL_MIN(in->conf->rcvbuf_bytes, (uint64_t)INT32_MAX);
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
	/* What this socket dropped for want of room, with each datagram:
	 * the receiver's own count, not the host's (RcvbufErrors). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &v, sizeof(v));
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
 * buffer), and nothing more may be registered.  A bug elsewhere
 * in the receiver can then not turn the ring into a way to send, open or
 * connect anything.
 */
static int
restrict_ring(struct ingest *in)
{
	struct io_uring_restriction res[2];

	memset(res, 0, sizeof(res));
	res[0].opcode = IORING_RESTRICTION_SQE_OP;
	res[0].sqe_op = IORING_OP_RECVMSG;
	res[1].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[1].sqe_flags = IOSQE_BUFFER_SELECT;
	/* Debian 12's liburing 2.3 declares io_uring_register_restrictions()
	 * and io_uring_enable_rings() but its library does not export them:
	 * make the two io_uring_register(2) calls they would make. */
	if (syscall(__NR_io_uring_register, in->ring.ring_fd,
	    IORING_REGISTER_RESTRICTIONS, res, 2) < 0)
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

/*
 * capture_interface: the link read with libpcap (a memory-mapped ring
 * of capture_buffer bytes, immediate mode, inbound only, a BPF filter on
 * the destination port) from an interface that needs no address.  The
 * frames are parsed in proto/frame.c, as for --pcap.
 */
static int
open_capture(struct ingest *in, char *err, size_t errlen)
{
	const struct recv_conf *c = in->conf;
	char ebuf[PCAP_ERRBUF_SIZE] = "", filter[64];
	struct sockaddr_storage ss;
	struct bpf_program prog;
	socklen_t sslen;
	int rc;

	if (util_parse_addr(c->listen, &ss, &sslen) != 0) {
		snprintf(err, errlen, "bad listen address %s", c->listen);
		return -EINVAL;
	}
	in->cap_port = util_addr_port(&ss);
	in->cap = pcap_create(c->capture_interface, ebuf);
	if (in->cap == NULL) {
		snprintf(err, errlen, "capture_interface %s: %s",
		    c->capture_interface, ebuf);
		return -EINVAL;
	}
	(void)pcap_set_snaplen(in->cap, 262144);
	(void)pcap_set_promisc(in->cap, 1);
	(void)pcap_set_immediate_mode(in->cap, 1);
	(void)pcap_set_buffer_size(in->cap, (int)c->capture_buffer);
	rc = pcap_activate(in->cap);
	if (rc < 0) {
		snprintf(err, errlen, "capture_interface %s: %s",
		    c->capture_interface, pcap_geterr(in->cap));
		return -EIO;
	}
	snprintf(filter, sizeof(filter), "udp dst port %u", in->cap_port);
	if (pcap_compile(in->cap, &prog, filter, 1,
	    PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(in->cap, &prog) != 0) {
		snprintf(err, errlen, "capture_interface %s: filter %s: %s",
		    c->capture_interface, filter, pcap_geterr(in->cap));
		return -EIO;
	}
	pcap_freecode(&prog);
	(void)pcap_setdirection(in->cap, PCAP_D_IN);
	in->cap_linktype = pcap_datalink(in->cap);
	if (pcap_setnonblock(in->cap, 1, ebuf) != 0) {
		snprintf(err, errlen, "capture_interface %s: %s",
		    c->capture_interface, ebuf);
		return -EIO;
	}
	in->rcvbuf = (unsigned)c->capture_buffer;
	return 0;
}

static void take(struct ingest *in, const uint8_t *p, size_t len,
    size_t seg);

static void
on_frame(u_char *arg, const struct pcap_pkthdr *h, const u_char *f)
{
	struct ingest *in = (struct ingest *)arg;
	const uint8_t *pl;
	size_t len;
	unsigned dport;

	switch (proto_frame_udp(in->cap_linktype, f, h->caplen, h->len,
	    in->cap_port, &pl, &len, &dport)) {
	case PROTO_FRAME_OK:
		break;
	case PROTO_FRAME_TRUNCATED:
		atomic_fetch_add_explicit(&in->n_datagrams, 1,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&in->n_trunc, 1,
		    memory_order_relaxed);
		return;
	default:
		return; /* not ours: the filter let it by (a fragment) */
	}
	/* A GRO or GSO run seen whole is its datagrams. */
	take(in, pl, len, proto_frame_segment(pl, len));
}

static void *
capture_main(void *arg)
{
	struct ingest *in = arg;
	struct pollfd pfd = { .fd = pcap_get_selectable_fd(in->cap),
	    .events = POLLIN };
	struct pcap_stat ps;
	int n;

	while (!atomic_load_explicit(&in->stop, memory_order_relaxed)) {
		if (poll(&pfd, 1, 20) < 0 && errno != EINTR)
			fatal("poll on the capture");
		n = pcap_dispatch(in->cap, -1, on_frame, (u_char *)in);
		if (n < 0)
			fatalx("capture_interface %s: %s",
			    in->conf->capture_interface, pcap_geterr(in->cap));
		if (n > 0)
			wake(in);
		/* The kernel's drops, as SO_RXQ_OVFL gives them for the
		 * socket. */
		if (pcap_stats(in->cap, &ps) == 0)
			atomic_store_explicit(&in->n_kdrops, ps.ps_drop,
			    memory_order_relaxed);
	}
	return NULL;
}

struct ingest *
ingest_new(const struct recv_conf *conf, char *err, size_t errlen)
{
	struct io_uring_params p;
	struct ingest *in = calloc(1, sizeof(*in));
	int rc;

	if (in == NULL)
		return NULL;
	in->conf = conf;
	in->fd = -1;
	pthread_mutex_init(&in->lock, NULL);
	pthread_cond_init(&in->cond, NULL);
	for (unsigned i = 0; i < MAX_WORKERS; i++) {
		pthread_cond_init(&in->workers[i].cond, NULL);
		in->workers[i].jobs.tail = &in->workers[i].jobs.head;
	}
	in->done.tail = &in->done.head;
	in->n_workers = UTIL_MIN(conf->workers, (unsigned)MAX_WORKERS);
	if (in->n_workers == 0) {
		cpu_set_t cs;

		/* The cores the service may use (CPUAffinity=, cpusets). */
		in->n_workers = sched_getaffinity(0, sizeof(cs), &cs) == 0 ?
		    (unsigned)CPU_COUNT(&cs) : 1;
		in->n_workers = UTIL_MAX(1u, UTIL_MIN(in->n_workers,
		    (unsigned)MAX_WORKERS));
	}
	/* Faulted in at start, like the receive buffers, so that what the
	 * receiver holds does not grow with what arrives. */
	in->qcap = (size_t)conf->ingest_buffer;
	in->q = mmap(NULL, in->qcap, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (in->q == MAP_FAILED) {
		in->q = NULL;
		snprintf(err, errlen, "ingest_buffer of %zu bytes: %s",
		    in->qcap, strerror(errno));
		rc = -ENOMEM;
		goto fail;
	}
	if (conf->capture_interface != NULL) {
		rc = open_capture(in, err, errlen);
		if (rc != 0)
			goto fail;
		goto journal;
	}
	rc = open_socket(in, conf->listen, err, errlen);
	if (rc != 0)
		goto fail;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED;
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
	in->msg.msg_controllen = CMSG_SPACE(sizeof(int)) +
	    CMSG_SPACE(sizeof(uint32_t));
journal:
	if (conf->link_journal_dir != NULL &&
	    (in->journal = journal_new(conf, err, errlen)) == NULL) {
		rc = -EIO;
		goto fail;
	}
	return in;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "%s", strerror(-rc));
	ingest_free(in);
	return NULL;
}

/* Ends the rx thread and the workers (who run every job given first). */
void
ingest_stop(struct ingest *in)
{
	if (in != NULL && in->started) {
		unsigned i;

		in->started = false;
		atomic_store(&in->stop, true);
		pthread_join(in->thread, NULL);
		pthread_mutex_lock(&in->lock);
		for (i = 0; i < in->n_workers; i++)
			pthread_cond_signal(&in->workers[i].cond);
		pthread_mutex_unlock(&in->lock);
		for (i = 0; i < in->n_workers; i++)
			pthread_join(in->workers[i].thread, NULL);
	}
}

void
ingest_free(struct ingest *in)
{
	if (in == NULL)
		return;
	ingest_stop(in);
	/* After the rx thread: what it queued is written first. */
	journal_free(in->journal);
	if (in->ring_ok)
		io_uring_queue_exit(&in->ring);
	if (in->br != NULL)
		munmap(in->br, in->br_len);
	if (in->bufs != NULL)
		munmap(in->bufs, (size_t)BUF_COUNT * BUF_SIZE);
	if (in->q != NULL)
		munmap(in->q, in->qcap);
	if (in->fd >= 0)
		close(in->fd);
	if (in->cap != NULL)
		pcap_close(in->cap);
	pthread_mutex_destroy(&in->lock);
	pthread_cond_destroy(&in->cond);
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		pthread_cond_destroy(&in->workers[i].cond);
	free(in);
}

/* ts: ms from now, for pthread_cond_timedwait. */
static void
deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000;
	ts->tv_nsec %= 1000000000;
}

/*
 * Main thread: sleeps up to ms on cond, unless a chunk job is done or,
 * with head, the queue holds more than head.  The rx thread and the
 * workers signal cond when they see waiting set.
 */
static void
main_sleep(struct ingest *in, const uint64_t *head, unsigned ms)
{
	struct timespec ts;

	pthread_mutex_lock(&in->lock);
	atomic_store(&in->waiting, 1);
	if (atomic_load(&in->done.n) == 0 &&
	    (head == NULL || atomic_load(&in->tail) == *head)) {
		deadline(&ts, ms);
		pthread_cond_timedwait(&in->cond, &in->lock, &ts);
	}
	atomic_store(&in->waiting, 0);
	pthread_mutex_unlock(&in->lock);
}

static size_t
padded(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

/* Datagrams in a run of len bytes cut at seg. */
static uint32_t
run_count(size_t len, size_t seg)
{
	return len == 0 ? 0 : seg == 0 ? 1 : (uint32_t)((len + seg - 1) / seg);
}

/* The oldest byte anyone may still read: the consumer's, or a worker's
 * that has not walked past it. */
static uint64_t
oldest(struct ingest *in)
{
	uint64_t o = atomic_load(&in->head);
	unsigned i;

	for (i = 0; i < in->n_workers; i++) {
		uint64_t c = atomic_load(&in->workers[i].cursor);

		if (c < o)
			o = c;
	}
	return o;
}

/* rx thread, after a batch: the main thread if it sleeps, the workers
 * if they sleep and there is enough queued to be worth them. */
static void
wake(struct ingest *in)
{
	bool main_sleeps = atomic_load(&in->waiting);
	bool workers = atomic_load(&in->wwaiting) &&
	    atomic_load_explicit(&in->tail, memory_order_relaxed) -
	    atomic_load_explicit(&in->head, memory_order_relaxed) >=
	    WORKER_WAKE_BYTES;

	if (!main_sleeps && !workers)
		return;
	pthread_mutex_lock(&in->lock);
	if (main_sleeps)
		pthread_cond_signal(&in->cond);
	for (unsigned i = 0; workers && i < in->n_workers; i++)
		if (in->workers[i].sleeping)
			pthread_cond_signal(&in->workers[i].cond);
	pthread_mutex_unlock(&in->lock);
}

/* rx thread: one datagram run into the queue, or counted as dropped. */
static void
push(struct ingest *in, const uint8_t *p, size_t len, size_t seg)
{
	uint64_t tail = atomic_load_explicit(&in->tail, memory_order_relaxed);
	uint64_t head = oldest(in);
	uint32_t n = run_count(len, seg);
	size_t off = (size_t)(tail % in->qcap), need = Q_HDR + padded(len) +
	    (in->n_workers > 0 ? (size_t)n * sizeof(struct ingest_prep) : 0);
	size_t room = in->qcap - off, used = (size_t)(tail - head);
	struct qhdr *h;

	/* An entry never wraps: the rest of the ring is skipped instead. */
	if (room < need) {
		if (in->qcap - used < room + need)
			goto full;
		if (room >= Q_HDR) {
			h = (struct qhdr *)(in->q + off);
			h->len = Q_WRAP;
			h->seg = 0;
		}
		tail += room;
		used += room;
		off = 0;
	} else if (in->qcap - used < need) {
		goto full;
	}
	h = (struct qhdr *)(in->q + off);
	h->len = (uint32_t)len;
	h->seg = (uint32_t)seg;
	h->n = n;
	atomic_store_explicit(&h->state, in->n_workers == 0 ? Q_READY :
	    Q_QUEUED, memory_order_relaxed);
	memcpy(in->q + off + Q_HDR, p, len);
	used += need;
	atomic_store_explicit(&in->tail, tail + need, memory_order_release);
	if (used > atomic_load_explicit(&in->hwm, memory_order_relaxed))
		atomic_store_explicit(&in->hwm, used, memory_order_relaxed);
	return;
full:
	atomic_fetch_add_explicit(&in->n_full, n > 0 ? n : 1,
	    memory_order_relaxed);
}

/* rx thread: a whole datagram (or run of seg-byte datagrams) received:
 * counted, journalled, queued. */
static void
take(struct ingest *in, const uint8_t *p, size_t len, size_t seg)
{
	atomic_fetch_add_explicit(&in->n_bytes, len, memory_order_relaxed);
	journal_put(in->journal, p, len, seg);
	if (len == 0) {
		atomic_fetch_add_explicit(&in->n_datagrams, 1,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&in->n_empty, 1,
		    memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&in->n_datagrams, (len + seg - 1) / seg,
	    memory_order_relaxed);
	push(in, p, len, seg);
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

			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SO_RXQ_OVFL &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
				uint32_t ovfl;

				/* The socket's own drop count since it was
				 * opened (it wraps at 2^32). */
				memcpy(&ovfl, CMSG_DATA(cm), sizeof(ovfl));
				atomic_store_explicit(&in->n_kdrops, ovfl,
				    memory_order_relaxed);
				continue;
			}
			if (cm->cmsg_level != SOL_UDP ||
			    cm->cmsg_type != UDP_GRO ||
			    cm->cmsg_len < CMSG_LEN(sizeof(gso)))
				continue;
			memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
			if (gso > 0)
				seg = (size_t)gso;
		}
		if (o->flags & MSG_TRUNC) {
			atomic_fetch_add_explicit(&in->n_bytes, len,
			    memory_order_relaxed);
			atomic_fetch_add_explicit(&in->n_datagrams, 1,
			    memory_order_relaxed);
			atomic_fetch_add_explicit(&in->n_trunc, 1,
			    memory_order_relaxed);
		} else {
			/* An empty one also ends the multishot recv (see
			 * rx_main). */
			take(in, p, len, seg);
		}
	}
	recycle(in, bid);
}

/*
 * The rx thread reads the socket and does nothing else: every datagram is
 * copied into the queue and its buffer given back at once.  Whatever the
 * other threads are doing (a disk stalled in writeback, a slow
 * verification), it shows as a growing queue, never as kernel drops.
 */
static void *
rx_main(void *arg)
{
	struct ingest *in = arg;
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 2000000 };
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int rc;

	while (!atomic_load_explicit(&in->stop, memory_order_relaxed)) {
		/*
		 * Wait for a batch, not for one completion: waking per
		 * datagram costs more than handling it.  But not right after
		 * the recv ended and was armed again: the kernel ends a
		 * multishot recvmsg on every empty datagram, and waiting for
		 * a batch then would let anyone stall reception for the whole
		 * timeout with one empty datagram each.
		 */
		rc = io_uring_submit_and_wait_timeout(&in->ring, &cqe,
		    in->rearmed ? 1 : WAIT_BATCH, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR)
			fatalx("io_uring: %s", strerror(-rc));
		n = 0;
		io_uring_for_each_cqe(&in->ring, head, cqe) {
			n++;
			if (io_uring_cqe_get_data64(cqe) == UD_RECV)
				handle_recv(in, cqe);
		}
		io_uring_cq_advance(&in->ring, n);
		if (n > 0)
			wake(in);
		in->rearmed = !in->armed;
		if (!in->armed && (rc = arm(in)) != 0)
			fatalx("io_uring: cannot arm the receive: %s",
			    strerror(-rc));
	}
	return NULL;
}

/* ---- workers ------------------------------------------------------------ */

static uint64_t
hint_key(const struct proto_chunk_id *id)
{
	uint64_t h = id->transfer ^ ((uint64_t)id->object << 32 | id->chunk);

	h ^= h >> 31;
	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return h | 1; /* 0: an empty slot */
}

static bool
hinted(const struct ingest *in, const struct proto_chunk_id *id)
{
	uint64_t k = hint_key(id);

	return atomic_load_explicit(&in->hint[k & (HINT_SLOTS - 1)],
	    memory_order_relaxed) == k;
}

void
ingest_hint_chunk(struct ingest *in, const struct proto_chunk_id *id,
    bool done)
{
	uint64_t k = hint_key(id);
	_Atomic uint64_t *slot = &in->hint[k & (HINT_SLOTS - 1)];

	if (done)
		atomic_store_explicit(slot, k, memory_order_relaxed);
	else if (atomic_load_explicit(slot, memory_order_relaxed) == k)
		atomic_store_explicit(slot, 0, memory_order_relaxed);
}

/* A descriptor's signature, if it names a trusted key and a transfer
 * being received, under the shared cache and budget (sigcheck.h). */
static void
prepare_descriptor(const struct ingest *in, const uint8_t *d, size_t len,
    struct ingest_prep *pp)
{
	uint8_t msg[PROTO_SIG_CONTEXT_LEN + PROTO_MAX_DATAGRAM];
	struct proto_descriptor desc;
	const struct sign_pubkey *key;
	size_t n;

	if (proto_descriptor_decode(d, len, &desc) != PROTO_OK ||
	    (key = recv_find_key(in->keys, in->n_keys, desc.key_id)) == NULL)
		return;
	n = proto_sig_message(msg, sizeof(msg), PROTO_DESC_SIG_CONTEXT,
	    desc.signed_body, desc.signed_len);
	if (n == 0)
		return;
	switch (sigcheck_verify_live(in->sc, desc.id.transfer, key, msg, n,
	    desc.sig, util_now_ns())) {
	case SIGCHECK_GOOD:
		pp->sig = INGEST_SIG_GOOD;
		break;
	case SIGCHECK_BAD:
		pp->sig = INGEST_SIG_BAD;
		break;
	case SIGCHECK_BUDGET:
		pp->sig = INGEST_SIG_BUDGET;
		break;
	default:
		return;
	}
	pp->key = (uint8_t)(key - in->keys);
	pp->flags |= INGEST_PREP_SIGNED;
}

/* What a worker does for one datagram: the envelope, then a symbol's
 * hash or a descriptor's signature.  The bytes, the link key, and
 * sigcheck (under its lock). */
static void
prepare(struct ingest *in, uint8_t *d, size_t len,
    struct ingest_prep *pp)
{
	struct proto_hdr h;
	struct proto_symbol sy;
	size_t inner = len;

	memset(pp, 0, sizeof(*pp));
	if (in->link_key != NULL) {
		pp->flags |= INGEST_PREP_OPENED;
		pp->verdict = (uint8_t)proto_link_open(in->link_key, d, len,
		    &inner);
		if (pp->verdict != PROTO_OK)
			return;
	}
	pp->len = (uint32_t)inner;
	if (proto_hdr_decode(d, inner, &h) != PROTO_OK)
		return;
	if (h.type == PROTO_T_DESCRIPTOR && in->sc != NULL) {
		prepare_descriptor(in, d, inner, pp);
		return;
	}
	if (h.type != PROTO_T_SYMBOL ||
	    proto_symbol_decode(d, inner, &sy) != PROTO_OK)
		return;
	if (hinted(in, &sy.id)) {
		atomic_fetch_add_explicit(&in->n_hash_skipped, 1,
		    memory_order_relaxed);
		return;
	}
	hash_sha256(pp->digest, sy.data, sy.len);
	pp->flags |= INGEST_PREP_HASHED;
}

static void
prepare_entry(struct ingest *in, struct qhdr *h)
{
	uint8_t *d = (uint8_t *)h + Q_HDR;
	struct ingest_prep *pp = (struct ingest_prep *)(d + padded(h->len));
	size_t left = h->len, seg = h->seg > 0 ? h->seg : h->len;
	uint32_t i;

	for (i = 0; i < h->n && left > 0; i++) {
		size_t k = left < seg ? left : seg;

		prepare(in, d, k, &pp[i]);
		d += k;
		left -= k;
	}
	atomic_store(&h->state, Q_READY);
	/* After the store: either the main thread sees Q_READY before it
	 * sleeps, or this sees it waiting (both sequentially consistent). */
	if (atomic_load(&in->main_wait) == h)
		(void)syscall(SYS_futex, &h->state, FUTEX_WAKE_PRIVATE, 1,
		    NULL, NULL, 0);
}

/* Prepares h if nobody has claimed it yet. */
static void
claim(struct ingest *in, struct qhdr *h)
{
	uint32_t want = Q_QUEUED;

	if (atomic_compare_exchange_strong_explicit(&h->state, &want,
	    Q_CLAIMED, memory_order_acquire, memory_order_relaxed))
		prepare_entry(in, h);
}

/* l under in->lock. */
static void
jobs_put(struct job_list *l, struct ingest_job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
	atomic_fetch_add(&l->n, 1);
}

/* The whole of l, in order, or NULL if it is empty. */
static struct ingest_job *
jobs_take(struct ingest *in, struct job_list *l)
{
	struct ingest_job *j;

	if (atomic_load(&l->n) == 0)
		return NULL;
	pthread_mutex_lock(&in->lock);
	j = l->head;
	l->head = NULL;
	l->tail = &l->head;
	atomic_store(&l->n, 0);
	pthread_mutex_unlock(&in->lock);
	return j;
}

/* Runs this worker's chunk jobs and hands each back to the main thread;
 * false if it had none. */
static bool
run_jobs(struct worker *w)
{
	struct ingest *in = w->in;
	struct ingest_job *j = jobs_take(in, &w->jobs), *next;

	if (j == NULL)
		return false;
	for (; j != NULL; j = next) {
		next = j->next;
		j->run(j, w->index, in->job_arg);
		pthread_mutex_lock(&in->lock);
		jobs_put(&in->done, j);
		if (atomic_load(&in->waiting))
			pthread_cond_signal(&in->cond);
		pthread_mutex_unlock(&in->lock);
	}
	return true;
}

/*
 * Publishes a cursor, then returns the head read after it, to start
 * from: what is at or past that head was not released when read, and
 * from the cursor on the rx thread keeps it (sequentially consistent on
 * both sides).
 */
static uint64_t
publish_cursor(struct worker *w)
{
	atomic_store(&w->cursor, atomic_load(&w->in->head));
	return atomic_load(&w->in->head);
}

/*
 * Runs its chunk jobs first; walks every entry in order, preparing its
 * own (every n_workers-th) and stepping over the others'; sleeps when it
 * has caught up with the rx thread and has no job.
 */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct ingest *in = w->in;
	uint64_t cur;

	cur = publish_cursor(w);
	while (!atomic_load_explicit(&in->stop, memory_order_relaxed)) {
		uint64_t tail = atomic_load_explicit(&in->tail,
		    memory_order_acquire);
		uint64_t head = atomic_load(&in->head);
		size_t off;
		struct qhdr *h;

		/*
		 * Chunk jobs first (each frees a slot).  While it runs them
		 * it reads nothing in the queue, so its cursor must not hold
		 * the rx thread back (a write stalled in writeback would
		 * make the queue look full); then it publishes a cursor
		 * again as at the start, and goes on from where it was
		 * unless the main thread is past that.
		 */
		if (atomic_load(&w->jobs.n) != 0) {
			uint64_t again;

			atomic_store(&w->cursor, CURSOR_IDLE);
			run_jobs(w);
			again = publish_cursor(w);
			if (cur < again)
				cur = again;
			atomic_store(&w->cursor, cur);
			continue;
		}
		/* What the main thread has taken needs nobody. */
		if (cur < head) {
			cur = head;
			atomic_store(&w->cursor, cur);
		}
		if (cur == tail) {
			atomic_store(&w->cursor, CURSOR_IDLE);
			pthread_mutex_lock(&in->lock);
			atomic_fetch_add(&in->wwaiting, 1);
			w->sleeping = true;
			if (atomic_load(&in->tail) == cur &&
			    !atomic_load(&in->stop) && w->jobs.head == NULL) {
				struct timespec ts;

				deadline(&ts, 10);
				pthread_cond_timedwait(&w->cond, &in->lock,
				    &ts);
			}
			w->sleeping = false;
			atomic_fetch_sub(&in->wwaiting, 1);
			pthread_mutex_unlock(&in->lock);
			cur = publish_cursor(w);
			continue;
		}
		while (cur != tail) {
			/* A chunk job frees a slot: before more datagrams. */
			if (atomic_load_explicit(&w->jobs.n,
			    memory_order_relaxed) != 0)
				break;
			off = (size_t)(cur % in->qcap);
			if (in->qcap - off < Q_HDR) {
				cur += in->qcap - off;
				continue;
			}
			h = (struct qhdr *)(in->q + off);
			if (h->len == Q_WRAP) {
				cur += in->qcap - off;
				continue;
			}
			/* Entries are shared out by where they start (a hash,
			 * so that entries of one size do not all land on one
			 * worker); an entry nobody claims, the main thread
			 * prepares itself. */
			if ((unsigned)((cur * 0x9e3779b97f4a7c15ull) >> 40) %
			    in->n_workers == w->index)
				claim(in, h);
			cur += Q_HDR + padded(h->len) + (size_t)h->n *
			    sizeof(struct ingest_prep);
			atomic_store(&w->cursor, cur);
		}
	}
	atomic_store(&w->cursor, CURSOR_IDLE);
	/* The main thread submits nothing once stop is set (it sets it):
	 * every job it gave is run, so none is left holding its file. */
	run_jobs(w);
	return NULL;
}

void
ingest_set_sigcheck(struct ingest *in, struct sigcheck *sc,
    const struct sign_pubkey *keys, unsigned n_keys)
{
	in->sc = sc;
	in->keys = keys;
	in->n_keys = UTIL_MIN(n_keys, 255u);
}

void
ingest_set_jobs(struct ingest *in, void *arg)
{
	in->job_arg = arg;
}

void
ingest_submit(struct ingest *in, unsigned key, struct ingest_job *j)
{
	struct worker *w = &in->workers[key % in->n_workers];

	pthread_mutex_lock(&in->lock);
	jobs_put(&w->jobs, j);
	if (w->sleeping)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&in->lock);
}

void
ingest_wait_done(struct ingest *in, unsigned timeout_ms)
{
	main_sleep(in, NULL, timeout_ms);
}

struct ingest_job *
ingest_reap(struct ingest *in)
{
	return in == NULL ? NULL : jobs_take(in, &in->done);
}

void
ingest_set_link(struct ingest *in, const uint8_t *key)
{
	in->link_key = key;
}

unsigned
ingest_workers(const struct ingest *in)
{
	return in->n_workers;
}

int
ingest_start(struct ingest *in)
{
	unsigned i;
	int rc;

	if (in->cap == NULL && (rc = arm(in)) != 0)
		return rc;
	if ((rc = journal_start(in->journal)) != 0)
		return rc;
	for (i = 0; i < in->n_workers; i++) {
		struct worker *w = &in->workers[i];

		w->in = in;
		w->index = i;
		atomic_store(&w->cursor, CURSOR_IDLE);
		if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) ==
		    0) {
			char name[16];

			/* top -H and /proc/PID/task name each thread. */
			snprintf(name, sizeof(name), "recv-work%u", i);
			(void)pthread_setname_np(w->thread, name);
		} else {
			/* Those started stop with the rx thread: none is. */
			in->n_workers = i;
			atomic_store(&in->stop, true);
			while (i-- > 0)
				pthread_join(in->workers[i].thread, NULL);
			return -rc;
		}
	}
	rc = pthread_create(&in->thread, NULL, in->cap != NULL ?
	    capture_main : rx_main, in);
	if (rc != 0)
		return -rc;
	(void)pthread_setname_np(in->thread, "recv-rx");
	in->started = true;
	return 0;
}

bool
ingest_pop(struct ingest *in, uint8_t **buf, size_t *len, size_t *seg,
    const struct ingest_prep **prep, unsigned timeout_ms)
{
	uint64_t head = atomic_load_explicit(&in->head, memory_order_relaxed);
	uint64_t tail;
	struct qhdr *h;
	size_t off;
	unsigned spins = 0;

	for (;;) {
		tail = atomic_load_explicit(&in->tail, memory_order_acquire);
		if (tail != head)
			break;
		if (timeout_ms == 0)
			return false;
		main_sleep(in, &head, timeout_ms);
		timeout_ms = 0;
	}
	off = (size_t)(head % in->qcap);
	if (in->qcap - off < Q_HDR) {
		head += in->qcap - off;
		off = 0;
	} else if (((struct qhdr *)(in->q + off))->len == Q_WRAP) {
		head += in->qcap - off;
		off = 0;
	}
	h = (struct qhdr *)(in->q + off);
	/* Not prepared yet: do it here rather than wait; being prepared:
	 * that takes microseconds. */
	claim(in, h);
	while (atomic_load_explicit(&h->state, memory_order_acquire) !=
	    Q_READY) {
		struct timespec ts = { 0, 1000000 };

		if (++spins < 64)
			continue;
		/* Its worker was preempted mid-entry: sleep until it is
		 * done (1 ms at most, in case the wake is missed) rather
		 * than spin against it for the core. */
		atomic_store(&in->main_wait, h);
		if (atomic_load(&h->state) == Q_CLAIMED)
			(void)syscall(SYS_futex, &h->state,
			    FUTEX_WAIT_PRIVATE, Q_CLAIMED, &ts, NULL, 0);
		atomic_store(&in->main_wait, NULL);
	}
	*buf = in->q + off + Q_HDR;
	*len = h->len;
	*seg = h->seg;
	*prep = in->n_workers > 0 ? (const struct ingest_prep *)(*buf +
	    padded(h->len)) : NULL;
	in->peeked = head + Q_HDR + padded(h->len) + (in->n_workers > 0 ?
	    (size_t)h->n * sizeof(struct ingest_prep) : 0);
	return true;
}

void
ingest_release(struct ingest *in)
{
	atomic_store_explicit(&in->head, in->peeked, memory_order_release);
}

void
ingest_get_stats(const struct ingest *in, struct ingest_stats *st)
{
	st->datagrams = atomic_load(&in->n_datagrams);
	st->bytes = atomic_load(&in->n_bytes);
	st->queue_full = atomic_load(&in->n_full);
	st->truncated = atomic_load(&in->n_trunc);
	st->empty = atomic_load(&in->n_empty);
	st->kernel_drops = atomic_load(&in->n_kdrops);
	st->hash_skipped = atomic_load(&in->n_hash_skipped);
	st->queued_bytes = atomic_load(&in->tail) - atomic_load(&in->head);
	st->queue_hwm = atomic_load(&in->hwm);
	st->queue_cap = in->qcap;
	journal_counts(in->journal, &st->journal_written,
	    &st->journal_dropped);
}
