/*
 * The link journal (link_journal_dir): every datagram the rx thread
 * receives, before any check, written into rotating pcap files by a
 * thread of its own, for `sluice-recv --pcap` later.
 *
 * The rx thread only copies into a bounded queue (journal_put) and never
 * waits: a full queue is counted as journal drops.  The journal thread
 * gives each datagram an IP and UDP header to the listen address (the
 * sender's address is not kept: the source is 0.0.0.0 or ::, port 0) and
 * writes it with libpcap's dump writer, link type raw IP.  A file that
 * reaches link_journal_file_size is closed and the next begun; beyond
 * link_journal_keep files the oldest is removed.  A write that fails (a
 * full disk) stops the journal with one log line; reception goes on.
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define J_QUEUE (32u << 20)
#define J_HDR 16                   /* length, segment, receipt time */
#define J_PREFIX "link-"
#define J_SUFFIX ".pcap"

struct journal {
	const struct recv_conf *conf;
	struct sockaddr_storage dst;
	pthread_t thread;
	bool started;
	_Atomic bool stop;

	uint8_t *q;                    /* SPSC byte ring, as in ingest.c */
	_Atomic uint64_t head, tail;
	_Atomic uint64_t n_written, n_dropped;

	pcap_t *dead;
	pcap_dumper_t *d;
	unsigned seq;                  /* number of the file being written */
	uint64_t size;
	bool failed;
};

static size_t
padded(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

/* rx thread: never waits. */
void
journal_put(struct journal *j, const uint8_t *p, size_t len, size_t seg)
{
	uint64_t tail, head, now;
	size_t off, need = J_HDR + padded(len);
	uint32_t hdr[2];
	struct timespec ts;

	if (j == NULL || atomic_load_explicit(&j->stop, memory_order_relaxed))
		return;
	tail = atomic_load_explicit(&j->tail, memory_order_relaxed);
	head = atomic_load_explicit(&j->head, memory_order_acquire);
	off = (size_t)(tail % J_QUEUE);
	/* An entry never wraps: the rest of the ring is skipped (a zero
	 * length header marks it, when there is room for one). */
	if (J_QUEUE - off < need) {
		if (J_QUEUE - (tail - head) < (J_QUEUE - off) + need)
			goto full;
		if (J_QUEUE - off >= J_HDR)
			memset(j->q + off, 0xff, J_HDR);
		tail += J_QUEUE - off;
		off = 0;
	} else if (J_QUEUE - (tail - head) < need) {
		goto full;
	}
	hdr[0] = (uint32_t)len;
	hdr[1] = (uint32_t)seg;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	memcpy(j->q + off, hdr, 8);
	memcpy(j->q + off + 8, &now, 8);
	memcpy(j->q + off + J_HDR, p, len);
	atomic_store_explicit(&j->tail, tail + need, memory_order_release);
	return;
full:
	atomic_fetch_add_explicit(&j->n_dropped, seg > 0 ?
	    (len + seg - 1) / seg : 1, memory_order_relaxed);
}

static int
name_seq(const char *name, unsigned *seq)
{
	char *end;
	unsigned long v;

	if (strncmp(name, J_PREFIX, strlen(J_PREFIX)) != 0)
		return -1;
	v = strtoul(name + strlen(J_PREFIX), &end, 10);
	if (end == name + strlen(J_PREFIX) || strcmp(end, J_SUFFIX) != 0 ||
	    v > UINT_MAX)
		return -1;
	*seq = (unsigned)v;
	return 0;
}

/* The highest file number in the directory (0 when there is none). */
static unsigned
last_seq(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned max = 0, s;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (name_seq(e->d_name, &s) == 0 && s > max)
			max = s;
	closedir(d);
	return max;
}

/* Keeps the newest link_journal_keep files, the one being written
 * included. */
static void
prune(struct journal *j)
{
	const char *dir = j->conf->link_journal_dir;
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned s;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (name_seq(e->d_name, &s) != 0 ||
		    s + j->conf->link_journal_keep > j->seq)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("link journal: removing %s", path);
	}
	closedir(d);
}

static int
next_file(struct journal *j)
{
	char path[PATH_MAX];

	if (j->d != NULL) {
		pcap_dump_close(j->d);
		j->d = NULL;
	}
	j->seq++;
	snprintf(path, sizeof(path), "%s/" J_PREFIX "%08u" J_SUFFIX,
	    j->conf->link_journal_dir, j->seq);
	j->d = pcap_dump_open(j->dead, path);
	if (j->d == NULL) {
		log_warnx("link journal stopped: %s: %s", path,
		    pcap_geterr(j->dead));
		return -1;
	}
	j->size = 24;
	prune(j);
	return 0;
}

/* One datagram as a raw IP packet to the listen address. */
static void
write_one(struct journal *j, const uint8_t *p, size_t len, uint64_t ts)
{
	static uint8_t pkt[40 + 8 + 65536];
	struct pcap_pkthdr h;
	size_t ip;

	if (j->dst.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&j->dst;

		ip = 40;
		memset(pkt, 0, ip);
		pkt[0] = 0x60;
		pkt[4] = (uint8_t)((len + 8) >> 8);
		pkt[5] = (uint8_t)(len + 8);
		pkt[6] = 17;
		pkt[7] = 64;
		memcpy(pkt + 24, &a->sin6_addr, 16);
		memcpy(pkt + ip + 2, &a->sin6_port, 2);
	} else {
		const struct sockaddr_in *a = (const void *)&j->dst;

		ip = 20;
		memset(pkt, 0, ip);
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)((ip + 8 + len) >> 8);
		pkt[3] = (uint8_t)(ip + 8 + len);
		pkt[8] = 64;
		pkt[9] = 17;
		memcpy(pkt + 16, &a->sin_addr, 4);
		memcpy(pkt + ip + 2, &a->sin_port, 2);
	}
	pkt[ip] = pkt[ip + 1] = 0;
	pkt[ip + 4] = (uint8_t)((len + 8) >> 8);
	pkt[ip + 5] = (uint8_t)(len + 8);
	pkt[ip + 6] = pkt[ip + 7] = 0;
	memcpy(pkt + ip + 8, p, len);
	h.ts.tv_sec = (time_t)(ts / 1000000000u);
	h.ts.tv_usec = (suseconds_t)(ts % 1000000000u / 1000);
	h.caplen = h.len = (bpf_u_int32)(ip + 8 + len);
	if (j->size + 16 + h.caplen > j->conf->link_journal_file_size &&
	    next_file(j) != 0) {
		j->failed = true;
		return;
	}
	pcap_dump((u_char *)j->d, &h, pkt);
	j->size += 16 + h.caplen;
	atomic_fetch_add_explicit(&j->n_written, 1, memory_order_relaxed);
}

/* Writes what is queued; returns whether there was anything. */
static bool
drain(struct journal *j)
{
	uint64_t head = atomic_load_explicit(&j->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&j->tail, memory_order_acquire);
	bool any = head != tail;

	while (head != tail) {
		size_t off = (size_t)(head % J_QUEUE);
		uint32_t hdr[2];
		uint64_t ts;
		size_t len, seg;
		const uint8_t *p;

		if (J_QUEUE - off < J_HDR) {
			head += J_QUEUE - off;
			continue;
		}
		memcpy(hdr, j->q + off, 8);
		if (hdr[0] == 0xffffffffu) {
			head += J_QUEUE - off;
			continue;
		}
		memcpy(&ts, j->q + off + 8, 8);
		p = j->q + off + J_HDR;
		len = hdr[0];
		seg = hdr[1] > 0 ? hdr[1] : len;
		if (len == 0 && !j->failed)
			write_one(j, p, 0, ts);
		while (len > 0 && !j->failed) {
			size_t k = len < seg ? len : seg;

			write_one(j, p, k, ts);
			p += k;
			len -= k;
		}
		head += J_HDR + padded(hdr[0]);
		atomic_store_explicit(&j->head, head, memory_order_release);
	}
	if (any && !j->failed && j->d != NULL &&
	    (pcap_dump_flush(j->d) != 0 || ferror(pcap_dump_file(j->d)))) {
		log_warnx("link journal stopped: writing %s/" J_PREFIX "%08u"
		    J_SUFFIX ": %s", j->conf->link_journal_dir, j->seq,
		    strerror(errno != 0 ? errno : EIO));
		j->failed = true;
	}
	if (j->failed)
		atomic_store(&j->stop, true);
	return any;
}

static void *
journal_main(void *arg)
{
	struct journal *j = arg;

	while (!atomic_load_explicit(&j->stop, memory_order_relaxed)) {
		if (!drain(j))
			usleep(2000);
	}
	if (!j->failed)
		drain(j);
	return NULL;
}

struct journal *
journal_new(const struct recv_conf *conf, char *err, size_t errlen)
{
	struct journal *j;
	socklen_t len;
	int rc;

	if (conf->link_journal_dir == NULL)
		return NULL;
	if ((rc = util_mkdirs(conf->link_journal_dir, 0700)) != 0) {
		snprintf(err, errlen, "link_journal_dir %s: %s",
		    conf->link_journal_dir, strerror(-rc));
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->q = malloc(J_QUEUE)) == NULL) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->conf = conf;
	if (util_parse_addr(conf->listen, &j->dst, &len) != 0)
		memset(&j->dst, 0, sizeof(j->dst));
	j->dead = pcap_open_dead(DLT_RAW, 65535 + 40);
	j->seq = last_seq(conf->link_journal_dir);
	if (j->dead == NULL || next_file(j) != 0) {
		snprintf(err, errlen, "link_journal_dir %s: cannot start a "
		    "journal file", conf->link_journal_dir);
		if (j->dead != NULL)
			pcap_close(j->dead);
		free(j->q);
		free(j);
		return NULL;
	}
	log_info("link journal in %s: files of %" PRIu64 " bytes, %u kept",
	    conf->link_journal_dir, conf->link_journal_file_size,
	    conf->link_journal_keep);
	return j;
}

int
journal_start(struct journal *j)
{
	int rc;

	if (j == NULL)
		return 0;
	rc = pthread_create(&j->thread, NULL, journal_main, j);
	if (rc != 0)
		return -rc;
	(void)pthread_setname_np(j->thread, "recv-journal");
	j->started = true;
	return 0;
}

void
journal_counts(const struct journal *j, uint64_t *written,
    uint64_t *dropped)
{
	*written = j != NULL ? atomic_load(&j->n_written) : 0;
	*dropped = j != NULL ? atomic_load(&j->n_dropped) : 0;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	atomic_store(&j->stop, true);
	if (j->started)
		pthread_join(j->thread, NULL);
	if (j->d != NULL)
		pcap_dump_close(j->d);
	pcap_close(j->dead);
	free(j->q);
	free(j);
}
