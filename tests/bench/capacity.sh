#!/bin/bash
# make bench, part 3 (issue 12): what rate a receiver keeps up with when
# it runs alone, as an operator measures their own.  A 1 GiB transfer is
# sent once at a moderate rate and captured with tcpdump -w (nothing
# listening); then `sluice replay --rate R` re-sends the capture at
# increasing rates, each time into a fresh receiver with nothing else
# running.  A rate passes when the bundle is released and the kernel
# dropped nothing (Udp RcvbufErrors) and the receiver's queue nothing
# (queue_full).  For 1472- and 8972-byte datagrams, and 1 and 2
# `workers`, it prints every rate tried, then the highest that passed
# with the receiver's CPU per GB of files there (from when it listens:
# starting is not per GB), each of its threads' share, and the
# replayer's own CPU per GB.
#
#   SLUICE_CAP_BYTES=1073741824 SLUICE_CAP_RATES="1G 2G 3G ..." \
#   SLUICE_CAP_SIZES="1472 8972" SLUICE_CAP_WORKERS="1 2" tests/bench/capacity.sh
# Port 27797 on 127.0.0.1 only.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEND=$ROOT/sender/sluice-send
RECV=$ROOT/receiver/sluice-recv
SLUICE=$ROOT/tools/sluice
BYTES=${SLUICE_CAP_BYTES:-1073741824}
RATES=${SLUICE_CAP_RATES:-"1G 1.5G 2G 2.5G 3G 3.5G 4G 5G 6G 8G"}
SIZES=${SLUICE_CAP_SIZES:-"1472 8972"}
WORKERS=${SLUICE_CAP_WORKERS:-"1 2"}
PORT=27797
B=$(mktemp -d /tmp/sluice-capacity.XXXXXX)
R= TD=
cleanup() {
	[ -n "$R" ] && kill "$R" 2>/dev/null && wait "$R" 2>/dev/null
	[ -n "$TD" ] && kill "$TD" 2>/dev/null && wait "$TD" 2>/dev/null
	rm -rf "$B"
}
trap cleanup EXIT
cd "$B" || exit 1
command -v tcpdump >/dev/null || { echo "capacity: no tcpdump (make deps)"; exit 1; }
"$SLUICE" keygen -o sender >/dev/null
mkdir data
head -c "$BYTES" /dev/urandom >data/weights.bin
sync

. "$ROOT/tests/bench/lib.sh"
# cpu_s PID: user + system CPU seconds of every thread so far
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' \
	    "/proc/$1/stat"
}
# thread_cpu PID: "name seconds" for each of its threads (sluice-recv is
# the main thread; recv-work0.. are summed as workers)
thread_cpu() {
	local t
	for t in /proc/"$1"/task/*; do
		cat "$t/stat"
	done 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{
		# comm is field 2 in parentheses, without spaces in ours
		name = $2; gsub(/[()]/, "", name)
		if (name ~ /^recv-work/) name = "workers"
		cpu[name] += ($14 + $15) / hz
	} END { for (n in cpu) print n, cpu[n] }'
}
# threads_s BEFORE AFTER GB: each thread's CPU seconds per GB between two
# thread_cpu snapshots, as name=value,...
threads_s() {
	awk -v gb="$3" 'NR == FNR { c0[$1] = $2; next } { c1[$1] = $2 } END {
		out = ""
		for (n in c1)
			if ((c1[n] - c0[n]) / gb >= 0.005)
				out = out sprintf("%s%s=%.2f", out == "" ? "" : ",",
				    n, (c1[n] - c0[n]) / gb)
		print out
	}' <(echo "$1") <(echo "$2")
}
cat >receiver.conf <<CONF
listen = "127.0.0.1:$PORT";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "q.log";
metrics_file = "metrics.prom";
metrics_interval = 0.5;
CONF
cp receiver.conf receiver.base

# capture SIZE: the transfer at 1 Gbit/s into SIZE.pcap, nothing dropped
capture() {
	local size=$1
	cat >sender.conf <<CONF
destination = "127.0.0.1:$PORT";
key = "sender.key";
rate = "1G";
passes = 1;
fec_overhead = 25;
datagram_size = $size;
CONF
	tcpdump -i lo -n -U -B 262144 -w "$size.pcap" "udp and dst port $PORT" \
	    2>tcpdump.err &
	TD=$!
	for _ in $(seq 1 100); do
		grep -q "listening on" tcpdump.err && break
		sleep 0.05
	done
	"$SEND" -c sender.conf --version "c$size" data 2>send.err
	sleep 1
	kill -INT "$TD"
	wait "$TD" 2>/dev/null
	TD=
	grep -q "^0 packets dropped by kernel" tcpdump.err || {
		echo "capacity: tcpdump dropped packets capturing $size:"
		cat tcpdump.err
		return 1
	}
}

# try SIZE RATE: prints "released rcvbuf queue_full recv_cpu replay_cpu
# mbit_s threads"
try() {
	local size=$1 rate=$2 e0 e1 rel qf cpu cpu0 t0 out threads
	rm -rf staging store q.log metrics.prom
	"$RECV" -c receiver.conf 2>recv.err &
	R=$!
	for _ in $(seq 1 200); do
		grep -q listening recv.err && break
		sleep 0.05
	done
	# What it spends starting (faulting in its queue and buffers) is
	# not per GB: counted from here.
	cpu0=$(cpu_s "$R")
	t0=$(thread_cpu "$R")
	e0=$(rcvbuf_errors)
	out=$("$SLUICE" replay "$size.pcap" --to "127.0.0.1:$PORT" \
	    --rate "$rate" 2>>replay.err)
	rel=no
	for _ in $(seq 1 600); do
		grep -q "state=RELEASED" q.log 2>/dev/null && { rel=yes; break; }
		grep -q "state=\(REJECTED\|QUARANTINED\)" q.log 2>/dev/null && break
		# A drop fails the rate whether or not FEC repairs it.
		[ "$(rcvbuf_errors)" != "$e0" ] && break
		grep -q '^sluice_drops_total{reason="queue_full"} [1-9]' \
		    metrics.prom 2>/dev/null && break
		sleep 0.1
	done
	e1=$(rcvbuf_errors)
	cpu=$(echo "$(cpu_s "$R") - $cpu0" | bc -l)
	threads=$(threads_s "$t0" "$(thread_cpu "$R")" "$gb")
	sleep 1.2 # one more metrics rewrite
	qf=$(sed -n 's/^sluice_drops_total{reason="queue_full"} //p' metrics.prom)
	kill "$R"
	wait "$R" 2>/dev/null
	R=
	echo "$rel $((e1 - e0)) ${qf:-0} $cpu $(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$out") $(sed -n 's/.* mbit_s=\([0-9.]*\).*/\1/p' <<<"$out") ${threads:--}"
}

gb=$(echo "$BYTES / 1000000000" | bc -l)
summary=()
for size in $SIZES; do
	capture "$size" || exit 1
	for workers in $WORKERS; do
	{ cat receiver.base; echo "workers = $workers;"; } >receiver.conf
	tag="$size w$workers"
	printf 'capacity %s: %-6s %-10s %-9s %-7s %-10s %-13s %-13s\n' "$tag" \
	    rate "sent Mb/s" released rcvbuf queue_full "recv CPU s/GB" \
	    "replay CPU s/GB"
	best= best_cpu= best_rcpu= best_threads= fails=0
	for rate in $RATES; do
		read -r rel drops qf cpu rcpu mbps threads <<<"$(try "$size" "$rate")"
		printf 'capacity %s: %-6s %-10.0f %-9s %-7s %-10s %-13.2f %-13.2f\n' \
		    "$tag" "$rate" "${mbps:-0}" "$rel" "$drops" "$qf" \
		    "$(echo "$cpu / $gb" | bc -l)" \
		    "$(echo "${rcpu:-0} / $gb" | bc -l)"
		if [ "$rel" = yes ] && [ "$drops" = 0 ] && [ "$qf" = 0 ]; then
			best="$rate (sent at ${mbps%.*} Mbit/s)"
			best_cpu=$(echo "$cpu / $gb" | bc -l)
			best_rcpu=$(echo "${rcpu:-0} / $gb" | bc -l)
			best_threads=$threads
			fails=0
		else
			# Two failures in a row: the rates above will not pass.
			fails=$((fails + 1))
			[ "$fails" -ge 2 ] && break
		fi
	done
	if [ -n "$best" ]; then
		summary+=("$(printf 'receiver capacity %s, %s workers: %s with zero drops and a release; receiver %.2f CPU s/GB there (%s), replayer %.2f CPU s/GB' \
		    "$size" "$workers" "$best" "$best_cpu" "$best_threads" "$best_rcpu")")
	else
		summary+=("receiver capacity $size, $workers workers: no rate tried passed")
	fi
	done
	rm -f "$size.pcap"
done
printf '%s\n' "${summary[@]}"
