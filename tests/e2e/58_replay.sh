# sluice replay: a transfer captured with tcpdump -w while no receiver
# runs is re-sent from the file through the sender's transmit path and
# released bit-exact by a live receiver; the summary counts every
# datagram (times --loop); the capture's own timing is kept when no rate
# is given; --rate paces; bad arguments and a missing capture fail.
. "$(dirname "$0")/lib.sh"

command -v tcpdump >/dev/null || die "no tcpdump (make deps)"
keys sender
receiver_conf
RATE=100M sender_conf "passes = 1"

rand_file "$T/b/weights.bin" 8000000
rand_file "$T/b/vocab.txt" 7777
capture "$T/t.pcap"
send --version 1 "$T/b"
stop_capture
sent=$(sed -n 's/.*chunks, \([0-9]*\) datagrams.*/\1/p' "$T/send.err")

note "replayed at a rate, into a live receiver: released"
start_recv
"$SLUICE" replay "$T/t.pcap" --to "127.0.0.1:$RECV_PORT" --rate 300M \
    >"$T/replay.out" 2>"$T/replay.err" || die "replay failed: $(cat "$T/replay.err")"
cat "$T/replay.out"
wait_state RELEASED 30
assert_same_tree "$T/b" "$(released b 1)"
n=$(sed -n 's/.* datagrams=\([0-9]*\).*/\1/p' "$T/replay.out")
[ "$n" = "$sent" ] || die "replayed $n datagrams, the sender sent $sent"
mbit=$(sed -n 's/.* mbit_s=\([0-9.]*\).*/\1/p' "$T/replay.out")
awk -v m="$mbit" 'BEGIN { exit !(m > 240 && m < 345) }' ||
	die "--rate 300M replayed at $mbit Mbit/s"

note "--max --loop 3: three times the datagrams, nothing released again"
"$SLUICE" replay "$T/t.pcap" --to "127.0.0.1:$RECV_PORT" --max --loop 3 \
    >"$T/replay2.out" 2>>"$T/replay.err" || die "replay --max failed"
n=$(sed -n 's/.* datagrams=\([0-9]*\).*/\1/p' "$T/replay2.out")
[ "$n" = $((sent * 3)) ] || die "--loop 3 replayed $n datagrams, not $((sent * 3))"
sleep 1
[ "$(grep -c 'state=RELEASED' "$T/quarantine.log")" = 1 ] ||
	die "released twice"

note "no rate: the capture's own timing"
cap_s=$("$SLUICE" link-report "$T/t.pcap" --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["sessions"][0]["duration_s"])')
"$SLUICE" replay "$T/t.pcap" --to "127.0.0.1:$RECV_PORT" \
    >"$T/replay3.out" 2>>"$T/replay.err" || die "timed replay failed"
secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$T/replay3.out")
awk -v a="$secs" -v b="$cap_s" 'BEGIN { exit !(a >= b * 0.9 && a < b * 1.5 + 0.2) }' ||
	die "captured over $cap_s s, replayed in $secs s"
stop_recv

note "usage and failures"
"$SLUICE" replay "$T/t.pcap" >/dev/null 2>&1; [ $? = 2 ] || die "no --to accepted"
"$SLUICE" replay "$T/t.pcap" --to "127.0.0.1:$RECV_PORT" --max --rate 1G \
    >/dev/null 2>&1; [ $? = 2 ] || die "--max with --rate accepted"
"$SLUICE" replay "$T/none.pcap" --to "127.0.0.1:$RECV_PORT" --max \
    >/dev/null 2>&1 && die "a missing capture replayed"
true
