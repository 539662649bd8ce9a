#!/bin/bash
# make bench, part 2 (issue 9): the worst case for a receiver sharing its
# machine with its sender: one pass over a clean link, the file written
# just before it is sent (so the page cache is full of dirty pages and
# writeback competes with reception), at SLUICE_FRESH_RATE (default 4G).
# On a one-way link a datagram the kernel drops is a lost bundle, so the
# figure is how many of SLUICE_FRESH_RUNS (default 10) runs were released,
# with the kernel's drops (RcvbufErrors), the receiver's queue_full drops
# and the most its ingest queue held.
#
#   SLUICE_FRESH_BYTES=536870912 SLUICE_FRESH_RUNS=10 tests/bench/fresh.sh
# Port 27796 on 127.0.0.1 only.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEND=$ROOT/sender/sluice-send
RECV=$ROOT/receiver/sluice-recv
SLUICE=$ROOT/tools/sluice
BYTES=${SLUICE_FRESH_BYTES:-536870912}
RUNS=${SLUICE_FRESH_RUNS:-10}
RATE=${SLUICE_FRESH_RATE:-4G}
PORT=27796
B=$(mktemp -d /tmp/sluice-fresh.XXXXXX)
R=
cleanup() {
	[ -n "$R" ] && kill "$R" 2>/dev/null && wait "$R" 2>/dev/null
	rm -rf "$B"
}
trap cleanup EXIT
cd "$B" || exit 1
"$SLUICE" keygen -o sender >/dev/null
. "$ROOT/tests/bench/lib.sh"
cat >receiver.conf <<CONF
listen = "127.0.0.1:$PORT";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "q.log";
metrics_file = "metrics.prom";
metrics_interval = 0.5;
CONF
cat >sender.conf <<CONF
destination = "127.0.0.1:$PORT";
key = "sender.key";
rate = "$RATE";
passes = 1;
fec_overhead = 25;
CONF
ok=0
printf '%-4s %-9s %-8s %-8s %-10s %-12s\n' run released MB/s rcvbuf queue_full queue_max_MB
for run in $(seq 1 "$RUNS"); do
	rm -rf staging store q.log metrics.prom data
	mkdir data
	"$RECV" -c receiver.conf 2>recv.err &
	R=$!
	for _ in $(seq 1 200); do
		grep -q listening recv.err && break
		sleep 0.05
	done
	# Written just before sending: dirty pages, writeback to come.
	head -c "$BYTES" /dev/urandom >data/weights.bin
	e0=$(rcvbuf_errors)
	t0=$(date +%s.%N)
	"$SEND" -c sender.conf --version "f$run" data 2>send.err
	rel=no
	for _ in $(seq 1 300); do
		grep -q "state=RELEASED" q.log 2>/dev/null && { rel=yes; break; }
		grep -q "state=\(REJECTED\|QUARANTINED\)" q.log 2>/dev/null && break
		sleep 0.1
	done
	t1=$(date +%s.%N)
	sleep 1.2 # one more metrics rewrite
	e1=$(rcvbuf_errors)
	qf=$(sed -n 's/^sluice_drops_total{reason="queue_full"} //p' metrics.prom)
	qm=$(sed -n 's/^sluice_ingest_queue_max_bytes //p' metrics.prom)
	kill "$R"
	wait "$R" 2>/dev/null
	R=
	[ "$rel" = yes ] && ok=$((ok + 1))
	printf '%-4s %-9s %-8.1f %-8s %-10s %-12.1f\n' "$run" "$rel" \
	    "$(echo "$BYTES / 1000000 / ($t1 - $t0)" | bc -l)" \
	    "$((e1 - e0))" "${qf:-?}" "$(echo "${qm:-0} / 1048576" | bc -l)"
done
echo "fresh $((BYTES >> 20)) MiB at $RATE, 1 pass, clean link: released in $ok of $RUNS runs"
