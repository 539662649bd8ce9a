# One million finished transfer ids: the receiver's set of finished ids
# (<state_dir>/finished) must load in well under a second and cost little
# memory, and a finished transfer sent again must be recognised from its
# first datagram: no RECEIVING, no staging directory, one DUPLICATE line.
# The ids are written by tests/bin/finished-fill; skip until it exists.
. "$(dirname "$0")/lib.sh"

FILL=$ROOT/tests/bin/finished-fill
[ -x "$FILL" ] || { echo "skip: no $FILL"; exit 77; }
MILLION=${MILLION:-1000000}

keys sender
receiver_conf 'state_dir = "state"'
sender_conf "passes = 2"

# The baseline: start-up time and idle RSS with an empty set.
start_recv
base_ms=$RECV_START_MS
sleep 1
base_rss=$(rss_kib "$RECV_PID")
[ -n "$base_rss" ] || die "no VmRSS for $RECV_PID"
echo "baseline: ready in $base_ms ms, idle RSS $base_rss KiB"

rand_file "$T/first/data.bin" 4000000
send --version 1 "$T/first"
wait_line ' bundle=first .*state=RELEASED' 30
id=$(transfer_of first)
[ -n "$id" ] || die "no transfer id for first"
stop_recv

[ -d "$T/state" ] || die "no state directory $T/state"
"$FILL" "$T/state" "$MILLION" 35 || die "finished-fill"
"$FILL" --measure "$T/state" || die "finished-fill --measure"

start_recv
full_ms=$RECV_START_MS
sleep 1
full_rss=$(rss_kib "$RECV_PID")
echo "with $MILLION more finished ids: ready in $full_ms ms, idle RSS" \
    "$full_rss KiB (+$((full_rss - base_rss)) KiB)"
[ "$full_ms" -lt $((base_ms + 1000)) ] ||
	die "start-up took $full_ms ms (baseline $base_ms ms)"
[ "$full_rss" -le $((base_rss + 16384)) ] ||
	die "idle RSS $full_rss KiB, more than $base_rss + 16 MiB"

# The same transfer again: known as finished from its first datagram.
receiving=$(count_lines "transfer=$id .*state=RECEIVING")
"$SEND" -c "$T/sender.conf" --version 1 "$T/first" >>"$T/send.err" 2>&1 &
send_pid=$!
PIDS+=("$send_pid")
staged=
while kill -0 "$send_pid" 2>/dev/null; do
	ls "$T/staging" | grep -qx "$id" && staged=1
	sleep 0.01
done
wait "$send_pid" || die "sluice-send failed"
wait_line "transfer=$id .*state=DUPLICATE reason=already_released" 10
sleep 1
ls "$T/staging" | grep -qx "$id" && staged=1
[ -z "$staged" ] || die "a staging directory was made for finished $id"
[ "$(count_lines "transfer=$id .*state=RECEIVING")" = "$receiving" ] ||
	die "finished transfer $id was received again"
n=$(count_lines "transfer=$id .*state=DUPLICATE reason=already_released")
[ "$n" = 1 ] || die "$n DUPLICATE lines for $id, wanted 1"
echo "finished million ok"
