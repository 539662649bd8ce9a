/*
 * Link status and metrics.
 *
 * The link is UP from the first verified heartbeat and DOWN after
 * link_down_after heartbeat intervals without one; each change is a
 * quarantine-log line (LINK_UP / LINK_DOWN, transfer=-).  Loss is read
 * from the sender's per-session sequence numbers: of the datagrams the
 * sender numbered since this receiver first heard the session, how many
 * never arrived.
 *
 * A heartbeat's signature binds its session and seq but nothing that
 * ages, so a recorded heartbeat verifies forever.  It counts for liveness
 * only if its seq is above the last accepted one of its session (a new
 * session id starts afresh); anything else is dropped as heartbeat_replay.
 *
 * metrics_file is Prometheus text exposition, rewritten atomically every
 * metrics_interval seconds, for node_exporter's textfile collector.
 */
#include "receiver/recv.h"
#include "common/log.h"
#include "common/qlog.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names of the drop counters: logs, metrics and PROTOCOL.md 8.3; the
 * decoders' verdicts are named by proto_verdict_name. */
static const char *const drop_names[DROP_COUNT] = {
	[DROP_TRUNCATED] = "truncated",
	[DROP_UNKNOWN_KEY] = "unknown_key",
	[DROP_BAD_SIGNATURE] = "bad_signature",
	[DROP_DESCRIPTOR_CONFLICT] = "descriptor_conflict",
	[DROP_SYMBOL_HASH] = "symbol_hash",
	[DROP_PARAM_MISMATCH] = "param_mismatch",
	[DROP_UNKNOWN_TRANSFER] = "unknown_transfer",
	[DROP_TRANSFER_LIMIT] = "transfer_limit",
	[DROP_CHUNK_LIMIT] = "chunk_limit",
	[DROP_DECODE_FAILED] = "decode_failed",
	[DROP_CHUNK_HASH] = "chunk_hash",
	[DROP_INFLATE] = "inflate",
	[DROP_HEARTBEAT] = "heartbeat",
	[DROP_HEARTBEAT_REPLAY] = "heartbeat_replay",
	[DROP_QUEUE_FULL] = "queue_full",
	[DROP_STAGING_WRITE] = "staging_write",
	[DROP_SIG_BUDGET] = "sig_budget",
	[DROP_PENDING_LIMIT] = "pending_limit",
};

const char *
recv_drop_name(unsigned reason)
{
	if (reason < PROTO_VERDICT_COUNT)
		return proto_verdict_name(reason);
	return reason < DROP_COUNT && drop_names[reason] != NULL ?
	    drop_names[reason] : "unknown";
}

/*
 * Sequence numbers are not authenticated: only the session a verified
 * heartbeat vouched for is reported, so junk with made-up sessions cannot
 * skew the loss figure.  Until then a few sessions are counted on the
 * side, so that a session whose first heartbeat was lost (a one-shot
 * send through a lossy link) is still counted from its first datagram
 * once a later heartbeat vouches for it.
 */
static struct seq_count *
candidate(struct recv *r, uint64_t session, bool make)
{
	struct seq_count *c, *oldest = NULL;
	unsigned i;

	for (i = 0; i < RECV_SEQ_CANDIDATES; i++) {
		c = &r->seq_cand[i];
		if (c->count > 0 && c->session == session)
			return c;
		if (oldest == NULL || c->touched < oldest->touched)
			oldest = c;
	}
	if (!make)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	oldest->session = session;
	return oldest;
}

static void
count_seq(struct seq_count *c, uint64_t seq, uint64_t tick)
{
	if (c->count == 0 || seq < c->first)
		c->first = seq;
	if (c->count == 0 || seq > c->max)
		c->max = seq;
	c->count++;
	c->touched = tick;
}

void
metrics_note_seq(struct recv *r, uint64_t session, uint64_t seq)
{
	struct seq_count *c;

	r->seq_tick++;
	if (session == r->session && r->seq_count != 0) {
		if (seq < r->seq_first)
			r->seq_first = seq;
		if (seq > r->seq_max)
			r->seq_max = seq;
		r->seq_count++;
		return;
	}
	c = candidate(r, session, true);
	count_seq(c, seq, r->seq_tick);
}

bool
metrics_heartbeat(struct recv *r, uint32_t interval_ms, uint64_t session,
    uint64_t seq)
{
	struct seq_count *c;

	if (r->hb_valid && session == r->hb_session && seq <= r->hb_seq)
		return false;
	r->hb_valid = true;
	r->hb_session = session;
	r->hb_seq = seq;
	if (session != r->session || r->seq_count == 0) {
		r->session = session;
		/* What was counted of it before it was vouched for counts. */
		c = candidate(r, session, false);
		if (c != NULL) {
			r->seq_first = c->first;
			r->seq_max = c->max;
			r->seq_count = c->count;
			memset(c, 0, sizeof(*c));
		} else {
			r->seq_first = r->seq_max = seq;
			r->seq_count = 1;
		}
	}
	r->last_heartbeat_ns = util_now_ns();
	r->heartbeat_interval_ms = interval_ms;
	if (!r->link_up) {
		r->link_up = true;
		qlog_event(r->qlog, 0, NULL, NULL, "LINK_UP", "heartbeat",
		    NULL);
	}
	return true;
}

void
metrics_tick(struct recv *r, uint64_t now)
{
	uint64_t limit = (uint64_t)r->heartbeat_interval_ms * 1000000ull *
	    r->conf->link_down_after;
	char detail[64];

	if (!r->link_up || now - r->last_heartbeat_ns <= limit)
		return;
	r->link_up = false;
	/* The loss ratio is of the link while it is up: start again. */
	r->seq_count = 0;
	snprintf(detail, sizeof(detail), "no heartbeat for %" PRIu64 " ms",
	    (now - r->last_heartbeat_ns) / 1000000);
	qlog_event(r->qlog, 0, NULL, NULL, "LINK_DOWN", "missed_heartbeats",
	    detail);
}

void
metrics_write(const struct recv *r)
{
	const struct recv_stats *st = &r->stats;
	char buf[8192];
	size_t off = 0;
	unsigned i, in_flight = 0;
	uint64_t expected = r->seq_count ? r->seq_max - r->seq_first + 1 : 0;

	if (r->conf->metrics_file == NULL)
		return;
	for (i = 0; i < r->n_transfers; i++)
		in_flight += r->transfers[i].state != TS_FREE;
#define M(...) off += (size_t)snprintf(buf + off, sizeof(buf) - off, __VA_ARGS__)
	/* sluice_up 0 is the last write, at a clean stop; the timestamp
	 * tells a stale file (a killed receiver) from a live one. */
	M("# HELP sluice_up 1 while sluice-recv runs; 0 once it stopped "
	    "cleanly\n# TYPE sluice_up gauge\nsluice_up %d\n", !r->stopping);
	M("# HELP sluice_metrics_timestamp_seconds wall-clock time of this "
	    "rewrite\n# TYPE sluice_metrics_timestamp_seconds gauge\n"
	    "sluice_metrics_timestamp_seconds %.3f\n",
	    (double)util_realtime_ns() / 1e9);
	M("# TYPE sluice_datagrams_total counter\n"
	    "sluice_datagrams_total %" PRIu64 "\n", st->datagrams);
	M("# TYPE sluice_bytes_total counter\n"
	    "sluice_bytes_total %" PRIu64 "\n", st->bytes);
	M("# TYPE sluice_heartbeats_total counter\n"
	    "sluice_heartbeats_total %" PRIu64 "\n", st->heartbeats);
	M("# TYPE sluice_drops_total counter\n");
	for (i = 1; i < DROP_COUNT; i++)
		M("sluice_drops_total{reason=\"%s\"} %" PRIu64 "\n",
		    recv_drop_name(i), st->drop[i]);
	M("# TYPE sluice_redundant_total counter\n"
	    "sluice_redundant_total %" PRIu64 "\n", st->redundant);
	M("# TYPE sluice_chunks_decoded_total counter\n"
	    "sluice_chunks_decoded_total %" PRIu64 "\n", st->chunks_done);
	M("# TYPE sluice_chunks_repaired_total counter\n"
	    "sluice_chunks_repaired_total %" PRIu64 "\n", st->chunks_repaired);
	M("# TYPE sluice_chunk_jobs_total counter\n"
	    "sluice_chunk_jobs_total %" PRIu64 "\n", st->chunk_jobs);
	M("# TYPE sluice_chunk_jobs gauge\n"
	    "sluice_chunk_jobs %u\n", r->chunk_jobs_now);
	M("# TYPE sluice_transfers_total counter\n"
	    "sluice_transfers_total{state=\"released\"} %" PRIu64 "\n"
	    "sluice_transfers_total{state=\"rejected\"} %" PRIu64 "\n"
	    "sluice_transfers_total{state=\"quarantined\"} %" PRIu64 "\n"
	    "sluice_transfers_total{state=\"duplicate\"} %" PRIu64 "\n"
	    "sluice_transfers_total{state=\"incomplete\"} %" PRIu64 "\n",
	    st->transfers_released, st->transfers_rejected,
	    st->transfers_quarantined, st->transfers_duplicate,
	    st->transfers_incomplete);
	M("# TYPE sluice_transfers_in_flight gauge\n"
	    "sluice_transfers_in_flight %u\n", in_flight);
	M("# TYPE sluice_link_up gauge\nsluice_link_up %d\n", r->link_up);
	M("# TYPE sluice_link_loss_ratio gauge\n"
	    "sluice_link_loss_ratio %.6f\n", expected ? 1.0 -
	    (double)UTIL_MIN(r->seq_count, expected) / (double)expected : 0.0);
	if (r->in != NULL) {
		struct ingest_stats is;

		ingest_get_stats(r->in, &is);
		M("# HELP sluice_socket_drops_total datagrams the kernel "
		    "dropped for want of room in this receiver's socket "
		    "(SO_RXQ_OVFL)\n# TYPE sluice_socket_drops_total counter\n"
		    "sluice_socket_drops_total %" PRIu64 "\n", is.kernel_drops);
		M("# TYPE sluice_ingest_queue_bytes gauge\n"
		    "sluice_ingest_queue_bytes %" PRIu64 "\n", is.queued_bytes);
		M("# TYPE sluice_ingest_queue_max_bytes gauge\n"
		    "sluice_ingest_queue_max_bytes %" PRIu64 "\n", is.queue_hwm);
		M("# TYPE sluice_ingest_queue_capacity_bytes gauge\n"
		    "sluice_ingest_queue_capacity_bytes %" PRIu64 "\n",
		    is.queue_cap);
	}
	M("# TYPE sluice_transfers_retried_total counter\n"
	    "sluice_transfers_retried_total %" PRIu64 "\n",
	    st->transfers_retried);
	M("# TYPE sluice_transfers_preempted_total counter\n"
	    "sluice_transfers_preempted_total %" PRIu64 "\n",
	    st->transfers_preempted);
#undef M
	if (off < sizeof(buf))
		(void)util_write_file_atomic(r->conf->metrics_file, buf, off,
		    0644);
}
