/*
 * Capture files as a stream of datagrams; see capfile.h.
 */
#include "common/capfile.h"
#include "common/log.h"
#include "proto/wire.h"

#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct capfile {
	pcap_t *p;
	char *path;
	int lt;
	unsigned port;
	/* The frame being split into datagrams. */
	const uint8_t *pl;
	size_t left, seg;
	unsigned dport;
	uint64_t ts_ns;
	struct capfile_stats st;
};

static struct capfile *
capfile_new(const char *name, unsigned port, char *err, size_t errlen)
{
	struct capfile *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->path = strdup(name)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(c);
		return NULL;
	}
	c->port = port;
	return c;
}

static struct capfile *
capfile_opened(struct capfile *c, pcap_t *p, const char *errbuf, char *err,
    size_t errlen)
{
	if (p == NULL) {
		snprintf(err, errlen, "%s", errbuf);
		free(c->path);
		free(c);
		return NULL;
	}
	c->p = p;
	c->lt = pcap_datalink(p);
	return c;
}

/* Nanosecond stamps where the file has them, microseconds scaled where
 * it has not. */
struct capfile *
capfile_open(const char *path, unsigned port, char *err, size_t errlen)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct capfile *c = capfile_new(path, port, err, errlen);

	if (c == NULL)
		return NULL;
	return capfile_opened(c, pcap_open_offline_with_tstamp_precision(path,
	    PCAP_TSTAMP_PRECISION_NANO, errbuf), errbuf, err, errlen);
}

struct capfile *
capfile_fopen(FILE *f, const char *name, unsigned port, char *err,
    size_t errlen)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct capfile *c = capfile_new(name, port, err, errlen);
	pcap_t *p;

	if (c == NULL) {
		fclose(f);
		return NULL;
	}
	p = pcap_fopen_offline_with_tstamp_precision(f,
	    PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (p == NULL)
		fclose(f);
	return capfile_opened(c, p, errbuf, err, errlen);
}

void
capfile_close(struct capfile *c)
{
	if (c == NULL)
		return;
	pcap_close(c->p);
	free(c->path);
	free(c);
}

const char *
capfile_linktype(const struct capfile *c)
{
	const char *n = pcap_datalink_val_to_name(c->lt);

	return n != NULL ? n : "unknown";
}

const struct capfile_stats *
capfile_stats(const struct capfile *c)
{
	return &c->st;
}

int
capfile_next(struct capfile *c, const uint8_t **dgram, size_t *len,
    uint64_t *ts_ns, unsigned *dport, char *err, size_t errlen)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(1, 10);
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t suppressed;
	int rc;

again:
	while (c->left == 0) {
		enum proto_frame_verdict v;

		if ((rc = pcap_next_ex(c->p, &h, &data)) != 1) {
			if (rc == PCAP_ERROR_BREAK)
				return 0;
			/* A file cut short (a journal whose writer died):
			 * what was read counts, the rest is said. */
			snprintf(err, errlen, "%s", pcap_geterr(c->p));
			return -1;
		}
		c->st.frames++;
		v = proto_frame_udp(c->lt, data, h->caplen, h->len, c->port,
		    &c->pl, &c->left, &c->dport);
		c->st.frame[v]++;
		if (v != PROTO_FRAME_OK) {
			c->left = 0;
			if (v != PROTO_FRAME_OTHER &&
			    log_ratelimit(&rl, &suppressed))
				log_warnx("%s: frame %" PRIu64 " skipped: %s%s",
				    c->path, c->st.frames,
				    proto_frame_verdict_name(v),
				    suppressed > 0 ?
				    " (more lines suppressed)" : "");
			continue;
		}
		c->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000ull +
		    (uint64_t)h->ts.tv_usec;
		/* A GSO run captured as one frame is its datagrams. */
		c->seg = proto_frame_segment(c->pl, c->left);
		if (c->seg == 0)
			c->seg = c->left;
	}
	*len = c->left < c->seg ? c->left : c->seg;
	if (*len > PROTO_MAX_DATAGRAM) {
		/* Not a datagram the link can carry: the rest of the frame
		 * goes with it. */
		c->st.oversize++;
		c->left = 0;
		goto again;
	}
	*dgram = c->pl;
	*ts_ns = c->ts_ns;
	*dport = c->dport;
	c->pl += *len;
	c->left -= *len;
	c->st.datagrams++;
	c->st.bytes += *len;
	return 1;
}
