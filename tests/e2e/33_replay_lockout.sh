# Replayed descriptors cannot lock the receiver out: the genuinely signed
# descriptors of four transfers that never finish, recorded from a real
# sender and replayed at 10 000 datagrams a second, fill every slot
# (max_transfers_in_flight = 4, the default) over and over; a new bundle
# sent meanwhile must still be released, by taking over one of the slots
# the replay holds (logged as INCOMPLETE reason=preempted).
. "$(dirname "$0")/lib.sh"

[ -x "$REPLAY" ] || die "no $REPLAY (make tests/bin/dgram-replay)"
keys sender
receiver_conf "max_transfers_in_flight = 4"
sender_conf "passes = 1"

# Four transfers' descriptors, recorded with no receiver listening.
start_record "$T/descriptors" --only descriptor --idle 2
for i in 1 2 3 4; do
	rand_file "$T/a$i/data.bin" 200000
	send --version "$i" "$T/a$i"
done
stop_record
[ -s "$T/descriptors" ] || die "nothing recorded"

start_recv
start_replay "$T/descriptors" 10000 60
sleep 2
kill -0 "$REPLAY_PID" 2>/dev/null || die "replay exited: $(cat "$T/replay.out")"
rand_file "$T/fresh/data.bin" 3000000
sender_conf "passes = 2"
send --version 1 "$T/fresh"
wait_line ' bundle=fresh .*state=RELEASED' 30
assert_same_tree "$T/fresh" "$(released fresh 1)"
grep -q 'reason=preempted' "$T/quarantine.log" ||
	die "no slot was taken over (no reason=preempted)"
stop_replay
echo "replay lockout ok"
