#!/bin/bash
# make bench, part 4 (issue 14): the sender alone, into a sink that only
# absorbs (tests/bin/udpbench recv), so its own cost is what is measured:
# a 1 GiB random file, one pass, rate 20G (as fast as it goes), for
# 1472- and 8972-byte datagrams and 1 and 2 encode threads, 3 runs each;
# medians of files MB/s (file bytes over the sending time) and of the
# whole process's CPU seconds per GB of files (the manifest check
# included), from sluice-send's own last line.
#
#   SLUICE_SINK_BYTES=1073741824 SLUICE_SINK_RUNS=3 tests/bench/sink.sh
# Port 27798 on 127.0.0.1 only.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEND=$ROOT/sender/sluice-send
SLUICE=$ROOT/tools/sluice
UDPBENCH=$ROOT/tests/bin/udpbench
BYTES=${SLUICE_SINK_BYTES:-1073741824}
RUNS=${SLUICE_SINK_RUNS:-3}
PORT=27798
B=$(mktemp -d /tmp/sluice-sink.XXXXXX)
S=
cleanup() {
	[ -n "$S" ] && kill "$S" 2>/dev/null && wait "$S" 2>/dev/null
	rm -rf "$B"
}
trap cleanup EXIT
cd "$B" || exit 1
"$SLUICE" keygen -o sender >/dev/null
mkdir data
head -c "$BYTES" /dev/urandom >data/weights.bin
sync
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
gb=$(echo "$BYTES / 1000000000" | bc -l)
printf 'sender alone %-6s %-8s %-8s %-12s\n' size threads "MB/s" "CPU s/GB"
for size in 1472 8972; do
	for threads in 1 2; do
		cat >sender.conf <<CONF
destination = "127.0.0.1:$PORT";
key = "sender.key";
rate = "20G";
passes = 1;
fec_overhead = 25;
datagram_size = $size;
encode_threads = $threads;
CONF
		: >mbs; : >cpu
		for run in $(seq 1 "$RUNS"); do
			"$UDPBENCH" recv --listen "127.0.0.1:$PORT" --bytes \
			    $((BYTES * 2)) --idle 3 >/dev/null 2>&1 &
			S=$!
			sleep 0.3
			"$SEND" -c sender.conf --version "s$size-$threads-$run" \
			    data 2>send.err
			kill "$S" 2>/dev/null
			wait "$S" 2>/dev/null
			S=
			line=$(grep "sent transfer" send.err | tail -n 1)
			secs=$(sed -n 's/.* pass in \([0-9.]*\) s.*/\1/p' <<<"$line")
			c=$(sed -n 's/.*, \([0-9.]*\) CPU s).*/\1/p' <<<"$line")
			echo "$BYTES / 1000000 / $secs" | bc -l >>mbs
			echo "$c / $gb" | bc -l >>cpu
		done
		printf 'sender alone %-6s %-8s %-8.1f %-12.2f\n' "$size" \
		    "$threads" "$(median <mbs)" "$(median <cpu)"
	done
done
