/*
 * sluice-junk: a test-only flood of hostile datagrams for the soak test.
 * Every datagram has a well-formed header and body, so it gets past the
 * cheap checks; none carries a valid signature.  Kinds (--kinds picks
 * some, or "worst"; by default the first six), chosen at random:
 *
 *   symbol         symbols of random sessions, transfers and chunks
 *   desc_random    descriptors under a random key id
 *   desc_trusted   descriptors under the trusted key id, random signature
 *   hb_trusted     heartbeats under the trusted key id, random signature
 *   hb_random      heartbeats under a random key id
 *   empty          empty datagrams (each one used to end the receiver's
 *                  multishot recv)
 *   desc_canonical descriptors under the trusted key id whose signature is
 *                  well formed (S < 2^252, so canonical; R random): the
 *                  verifier cannot reject it early and runs the whole
 *                  Ed25519 check (~53 us here) before it fails
 *   hb_canonical   the same for heartbeats
 *   symbol_live    symbols under a live transfer id (--live-transfer, up
 *                  to 8 times: one of them at random), at the transfer's
 *                  symbol size: before their chunk's descriptor they pass
 *                  every check, since the hash needs it
 *
 * A random signature is rejected by libsodium in ~2 us (its S is not
 * canonical 15 times in 16), so only the canonical kinds show what a
 * signature check costs.  The trusted key id is public (it is in every
 * real datagram), and so is a live transfer id.  "worst" is
 * desc_canonical,hb_canonical,symbol_live.
 *
 *   sluice-junk --dest 127.0.0.1:PORT --count N [--pps N] [--key-id HEX]
 *               [--size BYTES] [--seed N] [--kinds K,K,...|worst]
 *               [--live-transfer HEX]...
 */
#include "common/hash.h"
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

enum kind {
	K_SYMBOL, K_DESC_RANDOM, K_DESC_TRUSTED, K_HB_TRUSTED, K_HB_RANDOM,
	K_EMPTY, K_DESC_CANONICAL, K_HB_CANONICAL, K_SYMBOL_LIVE, K_COUNT
};

static const char *const kind_names[K_COUNT] = {
	"symbol", "desc_random", "desc_trusted", "hb_trusted", "hb_random",
	"empty", "desc_canonical", "hb_canonical", "symbol_live",
};

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

/*
 * The given key id (or a random one) and a random signature; canonical:
 * S (the second half, little-endian) below 2^252 < L, so that the
 * verifier does the whole check.  R random is of small order with
 * negligible probability.
 */
static void
bad_signature(uint8_t kid[PROTO_KEYID_LEN], uint8_t sig[PROTO_SIG_LEN],
    const uint8_t *key_id, bool canonical)
{
	if (key_id != NULL)
		memcpy(kid, key_id, PROTO_KEYID_LEN);
	else
		fill(kid, PROTO_KEYID_LEN);
	fill(sig, PROTO_SIG_LEN);
	if (canonical)
		sig[PROTO_SIG_LEN - 1] &= 0x0f;
}

/* live: 0 for a random transfer, else that transfer's id (its first
 * objects, chunks that exist in a transfer of a few GB).  k and m are
 * random: only a descriptor says what they are. */
static size_t
make_symbol(uint8_t *buf, size_t size, uint64_t live)
{
	struct proto_symbol s;
	size_t len = size - PROTO_SYM_OFF;

	memset(&s, 0, sizeof(s));
	s.hdr.session = rnd();
	s.hdr.seq = rnd();
	s.id.transfer = live != 0 ? live : rnd();
	s.id.object = (uint32_t)(rnd() % (live != 0 ? 4 : 1000));
	s.id.chunk = (uint32_t)(rnd() % (live != 0 ? 2048 : 1000));
	s.k = (uint8_t)(1 + rnd() % 200);
	s.m = (uint8_t)(rnd() % 50);
	s.index = (uint8_t)(rnd() % (s.k + s.m));
	s.len = len;
	fill(buf + PROTO_SYM_OFF, len);
	return proto_symbol_encode_hdr(buf, size, &s);
}

static size_t
make_descriptor(uint8_t *buf, size_t size, const uint8_t *key_id,
    bool canonical)
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
	fill(hashes, sizeof(hashes));
	/* Consistent, as a forger can make it: only the signature is
	 * wrong, so every one costs the receiver a check. */
	hash_sha256(d.list_sha256, hashes, (size_t)(d.k + d.m) * d.hash_len);
	len = proto_descriptor_encode(buf, size, &d, hashes);
	if (len == 0)
		return 0;
	bad_signature(kid, sig, key_id, canonical);
	proto_descriptor_set_sig(buf, len, kid, sig);
	return len;
}

static size_t
make_heartbeat(uint8_t *buf, size_t size, const uint8_t *key_id,
    bool canonical)
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
	bad_signature(kid, sig, key_id, canonical);
	proto_heartbeat_set_sig(buf, kid, sig);
	return len;
}

static void
usage(void)
{
	fprintf(stderr, "usage: sluice-junk --dest HOST:PORT --count N "
	    "[--pps N] [--key-id HEX] [--size BYTES] [--seed N]\n"
	    "       [--kinds K,K,...|worst] [--live-transfer HEX]\n");
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
		{ "kinds", required_argument, NULL, 'K' },
		{ "live-transfer", required_argument, NULL, 'L' },
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
	uint64_t count = 0, pps = 100000, sent = 0, kinds[K_COUNT] = { 0 };
	uint64_t live[8];
	unsigned n_live = 0;
	unsigned pick[K_COUNT], n_pick = 0;
	const char *kind_list = NULL;
	size_t size = 1472;
	uint64_t t0;
	int ch, fd, i;
	unsigned j;

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
		case 'K': kind_list = optarg; break;
		case 'L':
			if (n_live == 8)
				usage();
			live[n_live++] = strtoull(optarg, NULL, 16);
			break;
		default: usage();
		}
	}
	if (kind_list == NULL) {
		for (j = 0; j <= K_EMPTY; j++)
			pick[n_pick++] = j;
	} else {
		char *list = strdup(strcmp(kind_list, "worst") == 0 ?
		    "desc_canonical,hb_canonical,symbol_live" : kind_list);
		char *tok, *save = NULL;

		for (tok = strtok_r(list, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			for (j = 0; j < K_COUNT; j++)
				if (strcmp(tok, kind_names[j]) == 0)
					break;
			if (j == K_COUNT || n_pick == K_COUNT) {
				fprintf(stderr, "unknown kind %s\n", tok);
				usage();
			}
			pick[n_pick++] = j;
		}
		free(list);
	}
	for (j = 0; j < n_pick; j++) {
		if (!have_key && (pick[j] == K_DESC_CANONICAL ||
		    pick[j] == K_HB_CANONICAL)) {
			fprintf(stderr, "%s needs --key-id\n",
			    kind_names[pick[j]]);
			usage();
		}
		if (n_live == 0 && pick[j] == K_SYMBOL_LIVE) {
			fprintf(stderr, "symbol_live needs --live-transfer\n");
			usage();
		}
	}
	if (n_pick == 0)
		usage();
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
			unsigned kind = pick[rnd() % n_pick];
			size_t len;

			if (!have_key && (kind == K_DESC_TRUSTED ||
			    kind == K_HB_TRUSTED))
				kind = kind == K_DESC_TRUSTED ? K_DESC_RANDOM :
				    K_HB_RANDOM;
			switch (kind) {
			case K_SYMBOL: len = make_symbol(bufs[i], size, 0); break;
			case K_DESC_RANDOM:
				len = make_descriptor(bufs[i], size, NULL, false);
				break;
			case K_DESC_TRUSTED:
				len = make_descriptor(bufs[i], size, key_id, false);
				break;
			case K_HB_TRUSTED:
				len = make_heartbeat(bufs[i], size, key_id, false);
				break;
			case K_HB_RANDOM:
				len = make_heartbeat(bufs[i], size, NULL, false);
				break;
			case K_DESC_CANONICAL:
				len = make_descriptor(bufs[i], size, key_id, true);
				break;
			case K_HB_CANONICAL:
				len = make_heartbeat(bufs[i], size, key_id, true);
				break;
			case K_SYMBOL_LIVE:
				len = make_symbol(bufs[i], size,
				    live[rnd() % n_live]);
				break;
			default: len = 0; break;
			}
			if (len == 0 && kind != K_EMPTY) {
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
	printf("sent %" PRIu64 " junk datagrams in %.2f s:", sent,
	    (util_now_ns() - t0) / 1e9);
	for (j = 0; j < K_COUNT; j++)
		if (kinds[j] > 0)
			printf(" %s=%" PRIu64, kind_names[j], kinds[j]);
	printf("\n");
	close(fd);
	return 0;
}
