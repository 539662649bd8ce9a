# Metrics say what they measure: kernel drops are this receiver's own
# (SO_RXQ_OVFL on its socket), not the host's; the ingest queue shows.
. "$(dirname "$0")/lib.sh"

JUNK=$ROOT/tests/bin/sluice-junk
keys sender
receiver_conf 'rcvbuf_bytes = 65536' 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
start_recv
metric() { sed -n "s/^$1 //p" "$T/metrics.prom"; }
sleep 1
[ "$(metric sluice_socket_drops_total)" = 0 ] || die "drops before any traffic"
[ -n "$(metric sluice_ingest_queue_capacity_bytes)" ] || die "no queue metric"
# Stop the receiver, overflow its 64 KiB socket, let it go on: the next
# datagram it reads carries the socket's drop count.
kill -STOP "$RECV_PID"
"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count 5000 --pps 50000 --seed 3 >/dev/null
kill -CONT "$RECV_PID"
sleep 0.3
"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count 10 --pps 1000 --seed 4 >/dev/null
sleep 1.5
d=$(metric sluice_socket_drops_total)
[ "${d:-0}" -gt 1000 ] || die "socket drops $d after overflowing a 64 KiB socket"
echo "socket drops counted: $d"

# The loss ratio of a one-shot send through a lossy link is computed, as
# it is for the daemon's: from the sender's sequence numbers, counted
# from its first datagram even when its first heartbeat was lost.
stop_recv
receiver_conf 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
start_recv
# The first datagrams (the first heartbeat with them) are lost, always.
start_link --loss 0.1 --seed 11 --drop-first 5
LINK_ARGS=1 sender_conf "passes = 1"
rand_file "$T/l/w.bin" 3000000
send --version 1 "$T/l"
sleep 1.5
ratio=$(metric sluice_link_loss_ratio)
awk -v r="$ratio" 'BEGIN { exit !(r > 0.05 && r < 0.16) }' ||
	die "one-shot send through 10% loss: loss ratio $ratio"
echo "one-shot loss ratio: $ratio"
