# A receiver started two seconds after the sender (two passes) still
# releases the bundle: no datagram is special.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf
RATE=40M sender_conf "passes = 2"
rand_file "$T/bundle/w.bin" 20000000
text_file "$T/bundle/cfg.json" 20000
"$SEND" -c "$T/sender.conf" --version 7 "$T/bundle" >"$T/send.err" 2>&1 &
SEND_PID=$!
PIDS+=("$SEND_PID")
sleep 2
start_recv
wait "$SEND_PID" || die "sender failed"
wait_state RELEASED 30
assert_same_tree "$T/bundle" "$(released bundle 7)"
stop_recv
echo "released after a late start"
