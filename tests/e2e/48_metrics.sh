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
