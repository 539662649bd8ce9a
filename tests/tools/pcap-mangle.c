/*
 * pcap-mangle: rewrites a capture the way a bad link or a bad tap would,
 * for the --pcap tests.
 *
 *   pcap-mangle IN OUT [--drop P] [--corrupt P] [--junk N] [--seed S]
 *
 * A fraction P of the frames, chosen at random, is deleted (--drop), and
 * a fraction P of the rest has one byte of its UDP payload flipped
 * (--corrupt): exactly round(P * frames), at least one when P > 0, so a
 * short capture is impaired too.  --junk adds N
 * frames of junk among them: random bytes, Ethernet/IPv4/UDP frames to
 * the same port with random payloads or genuine-looking Sluice headers,
 * and frames cut short of their length.  Seeded, so a failure repeats.
 * Prints what it did.
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double
uniform(void)
{
	return (double)(next() >> 11) / (double)(1ull << 53);
}

/* A junk frame in buf (Ethernet link type); returns its length on the
 * wire and sets *caplen. */
static size_t
junk(uint8_t *buf, size_t cap, const uint8_t *model, size_t model_len,
    size_t *caplen)
{
	size_t len = 60 + next() % 1500, i;

	if (len > cap)
		len = cap;
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)next();
	switch (next() % 3) {
	case 0:
		break; /* noise */
	case 1:
	case 2:
		/* The model frame's headers (Ethernet, IP, UDP to our port,
		 * the Sluice header), then noise. */
		if (model_len > 0) {
			size_t keep = model_len < 66 ? model_len : 66;

			memcpy(buf, model, keep);
			if (len < keep + 8)
				len = keep + 8;
			/* IP and UDP lengths that fit the new frame. */
			buf[16] = (uint8_t)((len - 14) >> 8);
			buf[17] = (uint8_t)(len - 14);
			buf[38] = (uint8_t)((len - 34) >> 8);
			buf[39] = (uint8_t)(len - 34);
		}
		break;
	}
	*caplen = next() % 4 == 0 ? len / 2 : len;
	return len;
}

/* round(p * n), at least 1 when p > 0 and there is a frame. */
static unsigned long
share(double p, unsigned long n)
{
	unsigned long k = (unsigned long)(p * (double)n + 0.5);

	if (k == 0 && p > 0 && n > 0)
		k = 1;
	return k < n ? k : n;
}

int
main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	double drop = 0, corrupt = 0;
	unsigned long junk_n = 0, i, in_n = 0, dropped = 0, corrupted = 0;
	unsigned long total = 0, drop_left, corrupt_left;
	uint8_t model[128], jb[2048];
	size_t model_len = 0;
	struct pcap_pkthdr *h, jh;
	const u_char *f;
	pcap_dumper_t *d;
	pcap_t *p;
	int a;

	if (argc < 3) {
		fprintf(stderr, "usage: pcap-mangle IN OUT [--drop P] "
		    "[--corrupt P] [--junk N] [--seed S]\n");
		return 2;
	}
	for (a = 3; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--drop") == 0)
			drop = atof(argv[a + 1]);
		else if (strcmp(argv[a], "--corrupt") == 0)
			corrupt = atof(argv[a + 1]);
		else if (strcmp(argv[a], "--junk") == 0)
			junk_n = strtoul(argv[a + 1], NULL, 10);
		else if (strcmp(argv[a], "--seed") == 0)
			rng = strtoull(argv[a + 1], NULL, 10) * 2654435761u + 1;
		else
			return 2;
	}
	/* Count the frames first, to choose exactly how many to impair. */
	p = pcap_open_offline(argv[1], errbuf);
	if (p == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], errbuf);
		return 1;
	}
	while (pcap_next_ex(p, &h, &f) == 1)
		total++;
	pcap_close(p);
	drop_left = share(drop, total);
	corrupt_left = share(corrupt, total - drop_left);
	p = pcap_open_offline(argv[1], errbuf);
	if (p == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], errbuf);
		return 1;
	}
	d = pcap_dump_open(p, argv[2]);
	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", argv[2], pcap_geterr(p));
		return 1;
	}
	while (pcap_next_ex(p, &h, &f) == 1) {
		static uint8_t copy[262144];
		struct pcap_pkthdr oh = *h;

		in_n++;
		if (model_len == 0 && pcap_datalink(p) == DLT_EN10MB) {
			model_len = h->caplen < sizeof(model) ? h->caplen :
			    sizeof(model);
			memcpy(model, f, model_len);
		}
		/* Junk spread among the frames. */
		while (junk_n > 0 && next() % 4 == 0) {
			size_t cl;

			jh = oh;
			jh.len = (bpf_u_int32)junk(jb, sizeof(jb), model,
			    model_len, &cl);
			jh.caplen = (bpf_u_int32)cl;
			pcap_dump((u_char *)d, &jh, jb);
			junk_n--;
		}
		/* Selection sampling: drop_left of the total - in_n + 1
		 * frames still to come. */
		if (drop_left > 0 && uniform() * (double)(total - in_n + 1) <
		    (double)drop_left) {
			drop_left--;
			dropped++;
			continue;
		}
		if (oh.caplen > sizeof(copy))
			continue;
		memcpy(copy, f, oh.caplen);
		if (oh.caplen > 80 && corrupt_left > 0 && uniform() *
		    (double)(total - in_n - drop_left + 1) <
		    (double)corrupt_left) {
			corrupt_left--;
			/* A byte past the Ethernet, IP and UDP headers. */
			copy[42 + next() % (oh.caplen - 42)] ^=
			    (uint8_t)(1 + next() % 255);
			corrupted++;
		}
		pcap_dump((u_char *)d, &oh, copy);
	}
	for (i = 0; i < junk_n; i++) {
		size_t cl;

		memset(&jh, 0, sizeof(jh));
		jh.len = (bpf_u_int32)junk(jb, sizeof(jb), model, model_len,
		    &cl);
		jh.caplen = (bpf_u_int32)cl;
		pcap_dump((u_char *)d, &jh, jb);
	}
	pcap_dump_close(d);
	pcap_close(p);
	printf("frames=%lu dropped=%lu corrupted=%lu\n", in_n, dropped,
	    corrupted);
	return 0;
}
