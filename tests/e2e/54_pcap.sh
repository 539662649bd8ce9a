# sluice-recv --pcap: a transfer captured with tcpdump -w on loopback
# while no receiver runs (so the capture holds UDP GSO super-packets, not
# one datagram per frame) is released from the file bit-exact; the same
# capture cut at a snap length of 200 bytes releases nothing, counts every
# frame truncated and exits cleanly; half a transfer ends INCOMPLETE with
# its missing list when the files run out; a second receiver on a state
# directory in use is refused; a file that is not a capture is said and
# fails the run.
. "$(dirname "$0")/lib.sh"

command -v tcpdump >/dev/null || die "no tcpdump (make deps)"
keys sender
receiver_conf
RATE=200M sender_conf "passes = 1"

rand_file "$T/b/weights.bin" 3000000
rand_file "$T/b/sub/tokenizer.json" 12345
capture "$T/full.pcap"
send --version 1 "$T/b"
stop_capture
capture "$T/short.pcap" -s 200
send --version 2 "$T/b"
stop_capture

note "a whole capture releases"
"$RECV" -c "$T/receiver.conf" --pcap "$T/full.pcap" >"$T/pcap.out" \
    2>"$T/recv.err" || die "--pcap failed: $(tail -n 5 "$T/recv.err")"
cat "$T/pcap.out"
assert_same_tree "$T/b" "$(released b 1)"
grep -q ' released=1 ' "$T/pcap.out" || die "summary lacks released=1"
# GSO runs on loopback: more datagrams than frames.
frames=$(sed -n 's/.* frames=\([0-9]*\).*/\1/p' "$T/pcap.out")
dgrams=$(sed -n 's/.* datagrams=\([0-9]*\).*/\1/p' "$T/pcap.out")
[ "$dgrams" -gt "$frames" ] ||
	die "no GSO super-packet was split ($frames frames, $dgrams datagrams)"

note "the same file again: a duplicate, nothing new"
"$RECV" -c "$T/receiver.conf" --pcap "$T/full.pcap" >"$T/pcap2.out" \
    2>>"$T/recv.err" || die "second --pcap failed"
grep -q ' released=0 ' "$T/pcap2.out" || die "released again: $(cat "$T/pcap2.out")"

note "a capture cut at 200 bytes releases nothing"
"$RECV" -c "$T/receiver.conf" --pcap "$T/short.pcap" >"$T/pcap3.out" \
    2>>"$T/recv.err" || die "--pcap of a truncated capture failed"
cat "$T/pcap3.out"
grep -q ' released=0 ' "$T/pcap3.out" || die "released from a truncated capture"
n=$(sed -n 's/.* truncated=\([0-9]*\).*/\1/p' "$T/pcap3.out")
[ "${n:-0}" -gt 0 ] || die "no truncated frames counted"
[ ! -e "$(released b 2)" ] || die "released from truncated frames"

note "half a transfer: INCOMPLETE with its missing list at end of input"
# The first half of the frames of version 1, as version 1 is already
# released, is a duplicate; resend as version 3 and keep half of it.
capture "$T/v3.pcap"
send --version 3 "$T/b"
stop_capture
total=$(tcpdump -r "$T/v3.pcap" 2>/dev/null | wc -l)
tcpdump -r "$T/v3.pcap" -w "$T/half.pcap" -c $((total / 2)) 2>/dev/null
"$RECV" -c "$T/receiver.conf" --pcap "$T/half.pcap" >"$T/pcap4.out" \
    2>>"$T/recv.err" || die "--pcap of half a transfer failed"
cat "$T/pcap4.out"
grep -q ' incomplete=1' "$T/pcap4.out" || die "not INCOMPLETE"
grep -q 'state=INCOMPLETE reason=end_of_input' "$T/quarantine.log" ||
	die "no INCOMPLETE reason=end_of_input in the quarantine log"
[ ! -e "$(released b 3)" ] || die "released half a transfer"

note "the rest of it, later, completes it"
tcpdump -r "$T/v3.pcap" -w "$T/all3.pcap" 2>/dev/null
"$RECV" -c "$T/receiver.conf" --pcap "$T/all3.pcap" >"$T/pcap5.out" \
    2>>"$T/recv.err" || die "--pcap of the rest failed"
assert_same_tree "$T/b" "$(released b 3)"

note "not while another receiver holds the state directory"
start_recv
if "$RECV" -c "$T/receiver.conf" --pcap "$T/full.pcap" >/dev/null \
    2>"$T/second.err"; then
	die "--pcap ran beside a live receiver"
fi
grep -q "in use by another sluice-recv" "$T/second.err" ||
	die "no clear refusal: $(cat "$T/second.err")"
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null

note "not a capture"
echo "not a pcap" >"$T/junk.pcap"
if "$RECV" -c "$T/receiver.conf" --pcap "$T/junk.pcap" >/dev/null \
    2>>"$T/recv.err"; then
	die "--pcap of a non-capture exited 0"
fi
echo "pcap ok"
