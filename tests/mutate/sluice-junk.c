/*
 * sluice-junk: a test-only flood of hostile datagrams for the soak test.
 * Every datagram has a well-formed header and body, so it gets past the
 * cheap checks; none carries a valid signature.  Kinds, chosen at random:
 *
 *   symbols of random sessions, transfers and chunks
 *   descriptors under a random key id
 *   descriptors under the trusted sender's key id, bad signature
 *   heartbeats under the trusted key id, bad signature
 *   heartbeats under a random key id
 *   empty datagrams (each one used to end the receiver's multishot recv)
 *
 * The trusted key id is public (it is in every real datagram), so an
 * attacker on the link can make the receiver spend a signature check on
 * every such datagram; the test checks that this costs CPU, not memory.
 *
 *   sluice-junk --dest 127.0.0.1:PORT --count N [--pps N] [--key-id HEX]
 *               [--size BYTES] [--seed N]
 */
#include "common/util.h"
#include "proto/wire.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* splitmix64: reproducible from --seed. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* The given key id (or a random one) and a random signature. */
static void
bad_signature(uint8_t kid[PROTO_KEYID_LEN], uint8_t sig[PROTO_SIG_LEN],
    const uint8_t *key_id)
{
	if (key_id != NULL)
		memcpy(kid, key_id, PROTO_KEYID_LEN);
	else
		fill(kid, PROTO_KEYID_LEN);
	fill(sig, PROTO_SIG_LEN);
}

static size_t
make_symbol(uint8_t *buf, size_t size)
{
	struct proto_symbol s;
	size_t len = size - PROTO_SYM_OFF;

	memset(&s, 0, sizeof(s));
	s.hdr.session = rnd();
	s.hdr.seq = rnd();
	s.id.transfer = rnd();
	s.id.object = (uint32_t)(rnd() % 1000);
	s.id.chunk = (uint32_t)(rnd() % 1000);
	s.k = (uint8_t)(1 + rnd() % 200);
	s.m = (uint8_t)(rnd() % 50);
	s.index = (uint8_t)(rnd() % (s.k + s.m));
	s.len = len;
	fill(buf + PROTO_SYM_OFF, len);
	return proto_symbol_encode_hdr(buf, size, &s);
}

static size_t
make_descriptor(uint8_t *buf, size_t size, const uint8_t *key_id)
{
	struct proto_descriptor d;
	uint8_t hashes[255 * 8], kid[PROTO_KEYID_LEN], sig[PROTO_SIG_LEN];
	size_t len;

	memset(&d, 0, sizeof(d));
	d.hdr.session = rnd();
	d.hdr.seq = rnd();
	d.id.transfer = rnd();
	d.id.object = (uint32_t)(rnd() % 100);
	d.id.chunk = 0;
	d.object_count = 100;
	d.object_size = 1 + rnd() % (64u << 20);
	d.transfer_bytes = d.object_size * 100;
	d.chunk_size = 128 * 1024;
	d.symbol_size = 1024;
	d.m = 32;
	d.plain_len = proto_chunk_plain_len(d.object_size, d.chunk_size, 0);
	d.enc_len = d.plain_len;
	d.k = (uint8_t)((d.enc_len + d.symbol_size - 1) / d.symbol_size);
	d.codec = 0;
	d.hash_len = 8;
	fill(d.chunk_sha256, sizeof(d.chunk_sha256));
	fill(hashes, sizeof(hashes));
	len = proto_descriptor_encode(buf, size, &d, hashes);
	if (len == 0)
		return 0;
	bad_signature(kid, sig, key_id);
	proto_descriptor_set_sig(buf, len, kid, sig);
	return len;
}

static size_t
make_heartbeat(uint8_t *buf, size_t size, const uint8_t *key_id)
{
	struct proto_heartbeat h;
	uint8_t kid[PROTO_KEYID_LEN], sig[PROTO_SIG_LEN];
	size_t len;

	memset(&h, 0, sizeof(h));
	h.hdr.session = rnd();
	h.hdr.seq = rnd();
	h.sent_ns = util_realtime_ns();
	h.transfer = rnd();
	h.interval_ms = 1000;
	len = proto_heartbeat_encode(buf, size, &h);
	if (len == 0)
		return 0;
	bad_signature(kid, sig, key_id);
	proto_heartbeat_set_sig(buf, kid, sig);
	return len;
}

static void
usage(void)
{
	fprintf(stderr, "usage: sluice-junk --dest HOST:PORT --count N "
	    "[--pps N] [--key-id HEX] [--size BYTES] [--seed N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dest", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "pps", required_argument, NULL, 'p' },
		{ "key-id", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	static uint8_t bufs[BATCH][PROTO_MAX_DATAGRAM];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint8_t key_id[PROTO_KEYID_LEN];
	bool have_key = false;
	const char *dest = NULL;
	uint64_t count = 0, pps = 100000, sent = 0, kinds[6] = { 0 };
	size_t size = 1472;
	uint64_t t0;
	int ch, fd, i;

	rng_state = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': dest = optarg; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'p': pps = strtoull(optarg, NULL, 10); break;
		case 'k':
			if (util_unhex(key_id, sizeof(key_id), optarg) != 0)
				usage();
			have_key = true;
			break;
		case 's': size = strtoul(optarg, NULL, 10); break;
		case 'S': rng_state = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (dest == NULL || count == 0 || pps == 0 || size < 256 ||
	    size > PROTO_MAX_DATAGRAM ||
	    util_parse_addr(dest, &ss, &sslen) != 0)
		usage();
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		perror("socket");
		return 1;
	}
	t0 = util_now_ns();
	while (sent < count) {
		unsigned n = count - sent < BATCH ? (unsigned)(count - sent) :
		    BATCH;
		uint64_t due;
		int r;

		for (i = 0; i < (int)n; i++) {
			unsigned kind = (unsigned)(rnd() % 6);
			size_t len;

			if (!have_key && (kind == 2 || kind == 3))
				kind = kind == 2 ? 1 : 4;
			switch (kind) {
			case 0: len = make_symbol(bufs[i], size); break;
			case 1: len = make_descriptor(bufs[i], size, NULL); break;
			case 2: len = make_descriptor(bufs[i], size, key_id); break;
			case 3: len = make_heartbeat(bufs[i], size, key_id); break;
			case 4: len = make_heartbeat(bufs[i], size, NULL); break;
			default: len = 0; break;
			}
			if (len == 0 && kind != 5) {
				fprintf(stderr, "cannot encode kind %u\n",
				    kind);
				return 1;
			}
			kinds[kind]++;
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = len;
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(fd, mm, n, 0);
		if (r < 0 && (errno == ECONNREFUSED || errno == ENOBUFS ||
		    errno == EAGAIN || errno == EINTR))
			r = (int)n; /* counted as sent; the test wants load */
		if (r < 0) {
			perror("sendmmsg");
			return 1;
		}
		sent += (unsigned)r;
		due = t0 + sent * 1000000000ull / pps;
		while (util_now_ns() < due) {
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}
	}
	printf("sent %" PRIu64 " junk datagrams in %.2f s: %" PRIu64
	    " symbols, %" PRIu64 " descriptors (random key), %" PRIu64
	    " descriptors (trusted key id), %" PRIu64 " heartbeats (trusted "
	    "key id), %" PRIu64 " heartbeats (random key), %" PRIu64
	    " empty\n", sent, (util_now_ns() - t0) / 1e9, kinds[0], kinds[1],
	    kinds[2], kinds[3], kinds[4], kinds[5]);
	close(fd);
	return 0;
}
