/*
 * The transmit path; see tx.h.
 */
#include "sender/tx.h"
#include "sender/pace.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/wire.h"

#include <errno.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GSO_MAX_SEGS 64 /* the kernel's UDP_MAX_SEGMENTS */

struct msg {
	uint8_t *buf;
	struct iovec iov[2];
};

struct tx {
	int fd;
	size_t slot_size;
	bool paced;
	struct pace pace;
	volatile sig_atomic_t *stop;

	struct mmsghdr mm[TX_BATCH];
	struct msg msgs[TX_BATCH];
	unsigned n_batch;
	uint64_t batch_bits;

	/* UDP GSO: a run of datagrams of one length leaves as one message
	 * that the kernel cuts into segments of that length. */
	bool gso;
	struct mmsghdr out[TX_BATCH];
	struct iovec out_iov[2 * TX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} cmsg[TX_BATCH];

	uint64_t datagrams, bytes;
};

int
tx_connect(const char *dest, char *err, size_t errlen)
{
	struct sockaddr_storage ss, ss2;
	socklen_t sl, sl2;
	int fd, e, v = 8 << 20;

	/* A host name is resolved once, here, and the address logged. */
	if (util_resolve_addr(dest, &ss, &sl, err, errlen) != 0)
		return -EINVAL;
	if (util_parse_addr(dest, &ss2, &sl2) != 0) {
		char a[80];

		util_format_addr(a, sizeof(a), (struct sockaddr *)&ss);
		log_info("destination %s is %s", dest, a);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	/* connect() only fixes the destination: nothing is ever read. */
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		e = errno;
		snprintf(err, errlen, "connect %s: %s", dest, strerror(e));
		close(fd);
		return -e;
	}
	(void)shutdown(fd, SHUT_RD);
	return fd;
}

struct tx *
tx_new(int fd, size_t slot_size, uint64_t rate_bps, size_t burst_len)
{
	struct tx *t = calloc(1, sizeof(*t));
	double depth, batch;
	unsigned i;

	if (t == NULL)
		return NULL;
	t->fd = fd;
	t->slot_size = slot_size;
	for (i = 0; i < TX_BATCH; i++) {
		if ((t->msgs[i].buf = malloc(slot_size)) == NULL) {
			tx_free(t);
			return NULL;
		}
	}
	t->gso = true;
	t->paced = rate_bps > 0;
	/* Bucket depth: 2 ms at the rate, and at least two batches. */
	depth = (double)rate_bps * 0.002;
	batch = (double)TX_BATCH * (double)(burst_len + TX_UDP_IP_OVERHEAD) *
	    8;
	if (depth < 2.0 * batch)
		depth = 2.0 * batch;
	if (t->paced)
		pace_init(&t->pace, rate_bps, depth);
	return t;
}

void
tx_free(struct tx *t)
{
	unsigned i;

	if (t == NULL)
		return;
	for (i = 0; i < TX_BATCH; i++)
		free(t->msgs[i].buf);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

void
tx_set_stop(struct tx *t, volatile sig_atomic_t *stop)
{
	t->stop = stop;
}

uint8_t *
tx_slot(struct tx *t)
{
	return t->msgs[t->n_batch].buf;
}

uint64_t
tx_datagrams(const struct tx *t)
{
	return t->datagrams;
}

uint64_t
tx_bytes(const struct tx *t)
{
	return t->bytes;
}

static size_t
msg_len(const struct tx *t, unsigned i)
{
	return t->msgs[i].iov[0].iov_len + (t->mm[i].msg_hdr.msg_iovlen > 1 ?
	    t->msgs[i].iov[1].iov_len : 0);
}

/*
 * Builds the messages to send: with GSO, each run of datagrams of one
 * length (at most 64, and at most a UDP datagram's worth of bytes)
 * becomes one message with a UDP_SEGMENT control message; the rest go
 * one datagram per message.  Returns the number of messages.
 */
static unsigned
build_out(struct tx *t)
{
	unsigned i = 0, n = 0, iov = 0;

	while (i < t->n_batch) {
		struct mmsghdr *o = &t->out[n];
		size_t len = msg_len(t, i);
		unsigned j = i, segs = 0, first = iov, max;

		memset(o, 0, sizeof(*o));
		max = len == 0 ? 1 :
		    (unsigned)UTIL_MIN(GSO_MAX_SEGS, PROTO_MAX_DATAGRAM / len);
		if (!t->gso || max < 2) {
			o->msg_hdr = t->mm[i].msg_hdr;
			i++;
			n++;
			continue;
		}
		while (j < t->n_batch && segs < max && msg_len(t, j) == len) {
			unsigned k;

			for (k = 0; k < t->mm[j].msg_hdr.msg_iovlen; k++)
				t->out_iov[iov++] = t->msgs[j].iov[k];
			segs++;
			j++;
		}
		o->msg_hdr.msg_iov = &t->out_iov[first];
		o->msg_hdr.msg_iovlen = iov - first;
		if (segs > 1) {
			struct cmsghdr *cm;
			uint16_t gso_size = (uint16_t)len;

			o->msg_hdr.msg_control = t->cmsg[n].buf;
			o->msg_hdr.msg_controllen = sizeof(t->cmsg[n].buf);
			cm = CMSG_FIRSTHDR(&o->msg_hdr);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gso_size));
			memcpy(CMSG_DATA(cm), &gso_size, sizeof(gso_size));
		}
		i = j;
		n++;
	}
	return n;
}

int
tx_flush(struct tx *t)
{
	unsigned done = 0, n;

	if (t->n_batch == 0)
		return 0;
	if (t->paced)
		pace_take(&t->pace, t->batch_bits);
	n = build_out(t);
	while (done < n) {
		int sent = sendmmsg(t->fd, t->out + done, n - done, 0);

		if (sent < 0) {
			if (errno == EINTR || errno == ECONNREFUSED) {
				/* ECONNREFUSED: an ICMP port unreachable for
				 * an earlier datagram (nothing listening yet,
				 * as on a diode); keep sending. */
				continue;
			}
			if (errno == EAGAIN || errno == ENOBUFS) {
				struct pollfd pfd = { t->fd, POLLOUT, 0 };

				if (t->stop != NULL && *t->stop)
					return -EINTR;
				(void)poll(&pfd, 1, 1);
				continue;
			}
			if (t->gso && (errno == EIO || errno == EINVAL ||
			    errno == ENOPROTOOPT)) {
				/* No UDP GSO here (old kernel, or a device
				 * without checksum offload): go without. */
				log_info("UDP GSO unavailable (%s); sending "
				    "one datagram per message", strerror(errno));
				t->gso = false;
				n = build_out(t);
				done = 0;
				continue;
			}
			return -errno;
		}
		done += (unsigned)sent;
	}
	t->datagrams += t->n_batch;
	t->n_batch = 0;
	t->batch_bits = 0;
	return 0;
}

int
tx_queue(struct tx *t, size_t hdr_len, const uint8_t *payload,
    size_t payload_len)
{
	struct msg *mg = &t->msgs[t->n_batch];
	struct mmsghdr *mm = &t->mm[t->n_batch];

	mg->iov[0].iov_base = mg->buf;
	mg->iov[0].iov_len = hdr_len;
	mg->iov[1].iov_base = (void *)(uintptr_t)payload;
	mg->iov[1].iov_len = payload_len;
	memset(mm, 0, sizeof(*mm));
	mm->msg_hdr.msg_iov = mg->iov;
	mm->msg_hdr.msg_iovlen = payload_len > 0 ? 2 : 1;
	t->n_batch++;
	t->bytes += hdr_len + payload_len;
	t->batch_bits += (hdr_len + payload_len + TX_UDP_IP_OVERHEAD) * 8;
	return t->n_batch == TX_BATCH ? tx_flush(t) : 0;
}
