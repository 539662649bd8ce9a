#!/bin/bash
# make bench: one 1 GiB random file from sluice-send to sluice-recv on
# 127.0.0.1, no loss, every check on, for each datagram size.  Prints
# goodput (file bytes from the start of the send to RELEASED, per second)
# and CPU seconds per GB on each side.  A first version: issue 4 adds the
# raw-UDP and udpcast baselines, loss, the model-like bundle and medians.
#   SLUICE_BENCH_BYTES=268435456 tests/bench/bench.sh   (a smaller file)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(mktemp -d /tmp/sluice-bench.XXXXXX)
trap 'kill $R 2>/dev/null; rm -rf "$B"' EXIT
BYTES=${SLUICE_BENCH_BYTES:-1073741824}
R=
cd "$B" || exit 1
"$ROOT/tools/sluice" keygen -o sender >/dev/null
mkdir -p bundle
head -c "$BYTES" /dev/urandom >bundle/random.bin
tck=$(getconf CLK_TCK)
printf '%-9s %12s %14s %14s\n' datagram "goodput MB/s" "send CPU s/GB" "recv CPU s/GB"
for dg in 1472 8972; do
	rm -rf staging store q.log
	cat >receiver.conf <<CONF
listen = "127.0.0.1:27799";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "q.log";
CONF
	cat >sender.conf <<CONF
destination = "127.0.0.1:27799";
key = "sender.key";
rate = "4G";
datagram_size = $dg;
passes = 1;
CONF
	"$ROOT/receiver/sluice-recv" -c receiver.conf 2>recv.err &
	R=$!
	for i in $(seq 1 50); do grep -q listening recv.err && break; sleep 0.1; done
	t0=$(date +%s.%N)
	"$ROOT/sender/sluice-send" -c sender.conf --version v$dg bundle 2>send.err
	for i in $(seq 1 1200); do
		grep -q "state=RELEASED" q.log 2>/dev/null && break
		sleep 0.05
	done
	t1=$(date +%s.%N)
	read -r ut st <<<"$(awk '{print $14, $15}' /proc/$R/stat)"
	kill $R; wait $R 2>/dev/null; R=
	scpu=$(sed -n 's/.*, \([0-9.]*\) CPU s).*/\1/p' send.err)
	gb=$(echo "$BYTES / 1000000000" | bc -l)
	printf '%-9s %12.1f %14.2f %14.2f\n' "$dg" \
	    "$(echo "$BYTES / 1000000 / ($t1 - $t0)" | bc -l)" \
	    "$(echo "$scpu / $gb" | bc -l)" \
	    "$(echo "($ut + $st) / $tck / $gb" | bc -l)"
	grep -q "state=RELEASED" q.log || { echo "not released"; cat recv.err; exit 1; }
done
