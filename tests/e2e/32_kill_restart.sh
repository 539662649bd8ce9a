# A receiver SIGKILLed mid-transfer and restarted: nothing partial appears
# in the store at any time; it resumes from the chunks it had saved, the
# bundle is released from a later pass, and staging is cleaned after release.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf
RATE=80M sender_conf "passes = 3"
rand_file "$T/bundle/a.bin" 25000000
rand_file "$T/bundle/b.bin" 5000000
text_file "$T/bundle/c.txt" 1000000
"$SEND" -c "$T/sender.conf" --version 9 "$T/bundle" >"$T/send.err" 2>&1 &
SEND_PID=$!
PIDS+=("$SEND_PID")
start_recv
sleep 1.5
kill -9 "$RECV_PID"
wait "$RECV_PID" 2>/dev/null
[ -z "$(ls -A "$T/store" 2>/dev/null)" ] || die "store not empty after kill"
[ -n "$(staging_leftovers)" ] || die "expected leftover staging"
start_recv
wait "$SEND_PID" || die "sender failed"
wait_state RELEASED 30
assert_same_tree "$T/bundle" "$(released bundle 9)"
# Chunks written before the kill were not needed again.
grep -qE 'state=RECEIVING reason=resumed detail="[1-9][0-9]* chunks already on disk"' \
    "$T/quarantine.log" || die "did not resume from staging"
grep 'reason=resumed' "$T/quarantine.log"
sleep 0.3
[ -z "$(staging_leftovers)" ] || die "staging not cleaned"
stop_recv
echo "released after SIGKILL and restart"
