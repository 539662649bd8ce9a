# The worst junk (tests/mutate/sluice-junk.c, "--kinds worst"): descriptors
# and heartbeats under the trusted key id whose signatures are canonical,
# so each forces a whole Ed25519 check unless the receiver refuses to
# spend one, and symbols forged under a live transfer id, which pass every
# check up to the hash.  Both ids are public: they are in every datagram.
#
# 1. Each kind alone, 3 s at 100,000/s, against an idle receiver (the live
#    transfer is one whose sender was stopped): receiver CPU seconds
#    (utime + stime from /proc/PID/stat) per junk datagram it received.
#    Asserts: at most JUNK_MAX_US (5) microseconds each.
# 2. All three mixed, 100,000/s for 10 s, while a real bundle is sent
#    (forged symbols under its id and under the idle transfer's):
#    asserts that the bundle is released bit-exact and that the receiver's
#    peak RSS grew by at most 24 MiB.
#
# Meant for a 2-core machine where sender, receiver and junk share the
# cores; about 40 s.
. "$(dirname "$0")/lib.sh"

JUNK=$ROOT/tests/bin/sluice-junk
[ -x "$JUNK" ] || die "build tests/bin/sluice-junk first (make check does)"
MAX_US=${JUNK_MAX_US:-5}
PPS=100000

keys sender
receiver_conf 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
kid=$("$SLUICE" key show "$T/sender.pub" | awk '$1 == "id" { print $2 }')
[ -n "$kid" ] || die "no key id"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$RECV_PID/stat"; }
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics.prom"
}
# Datagrams the receiver has taken in, as of its next metrics write.
datagrams() { sleep 0.6; metric sluice_datagrams_total; }
transfer_ids() {
	sed -n 's/.*transfer=\([0-9a-f]\{16\}\) .*state=RECEIVING .*/\1/p' \
	    "$T/quarantine.log" 2>/dev/null | sort -u
}

start_recv
hz=$(getconf CLK_TCK)

# A live transfer with nobody sending it: a slow sender, stopped once the
# receiver has admitted the transfer, before it has described the second
# object (so that the size of that object is unknown, and any chunk of it
# may be a chunk: forged symbols there are held as pending).
sender_conf "passes = 1" "heartbeat_interval = 0.2"
sed 's/^rate = .*/rate = "100k";/' "$T/sender.conf" >"$T/slow.conf"
mkdir -p "$T/idle" && truncate -s 256M "$T/idle/blob" # 1400 chunks, sparse
"$SEND" -c "$T/slow.conf" --version 1 "$T/idle" >>"$T/send.err" 2>&1 &
slow_pid=$!
PIDS+=("$slow_pid")
have_transfers() { [ "$(transfer_ids | grep -c .)" -ge "$1" ]; }
for i in $(seq 1 1000); do have_transfers 1 && break; sleep 0.01; done
have_transfers 1 || die "slow transfer not admitted"
kill "$slow_pid"; wait "$slow_pid" 2>/dev/null
idle=$(transfer_ids)
note "idle live transfer $idle"
sleep 0.5

fail=0
# symbol (random transfer ids) is the floor: what any datagram costs.
for kind in symbol desc_canonical hb_canonical symbol_live; do
	d0=$(datagrams); c0=$(cpu_ticks)
	"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count $((3 * PPS)) --pps $PPS \
	    --key-id "$kid" --live-transfer "$idle" --kinds "$kind" \
	    --seed 81 >/dev/null || die "sluice-junk $kind failed"
	d1=$(datagrams); c1=$(cpu_ticks)
	n=$((d1 - d0))
	[ "$n" -gt 0 ] || die "$kind: nothing received"
	us=$(echo "($c1 - $c0) * 1000000 / $hz / $n" | bc -l)
	printf -- '--- %-15s %7d received, receiver CPU %5.2f s: %6.2f us each\n' \
	    "$kind" "$n" "$(echo "($c1 - $c0) / $hz" | bc -l)" "$us"
	if [ "$kind" != symbol ] && [ "$(echo "$us > $MAX_US" | bc -l)" = 1 ]; then
		echo "FAIL: $kind costs $us us of receiver CPU (limit $MAX_US)"
		fail=1
	fi
done
grep 'sluice_drops_total' "$T/metrics.prom" | grep -v ' 0$'

# The real bundle: about 12 s at 4 Mbit/s over two passes, so that the
# flood below falls on a transfer being received.
sender_conf "passes = 2" "heartbeat_interval = 0.2"
sed -i 's/^rate = .*/rate = "4M";/' "$T/sender.conf"
B=$T/bundle
rand_file "$B/weights.bin" 2000000
text_file "$B/notes.txt" 200000
before=$(transfer_ids)
"$SEND" -c "$T/sender.conf" --version 1 "$B" >>"$T/send.err" 2>&1 &
send_pid=$!
PIDS+=("$send_pid")
wait_until 10 have_transfers 2 || die "bundle not admitted"
live=$(comm -13 <(echo "$before") <(transfer_ids))
note "live transfer $live: worst junk at $PPS/s for 10 s"
rss0=$(rss_kib "$RECV_PID")
hwm0=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$RECV_PID/status")
"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count $((10 * PPS)) --pps $PPS \
    --key-id "$kid" --live-transfer "$live" --live-transfer "$idle" \
    --kinds worst --seed 82 ||
	die "sluice-junk worst failed"
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$RECV_PID/status")
note "receiver RSS $rss0 KiB before (peak $hwm0), peak $hwm KiB after: +$(( (hwm - rss0) / 1024 )) MiB"
wait "$send_pid" || die "sluice-send failed"
wait_until 20 grep -q 'bundle=bundle version=1 state=RELEASED ' \
    "$T/quarantine.log" || die "bundle not released under the flood"
assert_same_tree "$B" "$(released bundle 1)"
sleep 0.6
grep 'sluice_drops_total' "$T/metrics.prom" | grep -v ' 0$'
[ $((hwm - rss0)) -le 24576 ] || die "RSS grew by $((hwm - rss0)) KiB"
[ "$fail" = 0 ] || die "junk costs too much receiver CPU"
echo "ok: released under $((10 * PPS)) worst-case junk datagrams"
