# sluice-recv --pcap on captures a bad link or tap would give: a capture
# with 5% of its frames deleted and 1% corrupted (tests/bin/pcap-mangle)
# is released bit-exact or, one pass being more loss than the FEC
# repairs, ends INCOMPLETE with its missing list, never a corrupted
# release, and the whole capture then completes it; a capture of nothing
# but junk (random frames, frames with our headers and random bodies,
# frames cut short) releases nothing, crashes nothing, and counts what
# it skipped.
. "$(dirname "$0")/lib.sh"

MANGLE=$ROOT/tests/bin/pcap-mangle
[ -x "$MANGLE" ] || die "no $MANGLE (make tests/bin/pcap-mangle)"
command -v tcpdump >/dev/null || die "no tcpdump (make deps)"
keys sender
receiver_conf
RATE=200M sender_conf "passes = 1"

rand_file "$T/b/weights.bin" 4000000
tcpdump -i lo -n -U --immediate-mode -B 65536 -w "$T/full.pcap" \
    "udp and dst port $RECV_PORT" >"$T/tcpdump.err" 2>&1 &
TCPDUMP_PID=$!
PIDS+=("$TCPDUMP_PID")
wait_until 5 grep -q "listening on" "$T/tcpdump.err" || die "no tcpdump"
send --version 1 "$T/b"
sleep 0.5
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" 2>/dev/null
grep -q "^0 packets dropped by kernel" "$T/tcpdump.err" ||
	die "tcpdump lost packets: $(cat "$T/tcpdump.err")"

note "5% of frames deleted, 1% corrupted"
"$MANGLE" "$T/full.pcap" "$T/bad.pcap" --drop 0.05 --corrupt 0.01 \
    --seed 7 >"$T/mangle.out" || die "pcap-mangle failed"
cat "$T/mangle.out"
grep -q ' dropped=[1-9][0-9]* corrupted=[1-9]' "$T/mangle.out" ||
	die "the capture was not impaired"
"$RECV" -c "$T/receiver.conf" --pcap "$T/bad.pcap" >"$T/pcap.out" \
    2>"$T/recv.err" || die "--pcap failed: $(tail -n 5 "$T/recv.err")"
cat "$T/pcap.out"
if grep -q ' released=1 ' "$T/pcap.out"; then
	assert_same_tree "$T/b" "$(released b 1)"
else
	grep -q ' incomplete=1' "$T/pcap.out" ||
		die "neither released nor INCOMPLETE"
	[ ! -e "$(released b 1)" ] || die "released while INCOMPLETE"
	line=$(grep 'state=INCOMPLETE reason=end_of_input' \
	    "$T/quarantine.log") || die "no INCOMPLETE reason=end_of_input"
	id=$(echo "$line" | sed -n 's/.*transfer=\([0-9a-f]*\).*/\1/p')
	"$SLUICE" missing "$id" -c "$T/receiver.conf" >"$T/missing.txt" ||
		die "no missing list for $id"
	grep -q '^chunks ' "$T/missing.txt" || die "an empty missing list"
	note "the whole capture completes it"
	"$RECV" -c "$T/receiver.conf" --pcap "$T/full.pcap" \
	    >"$T/pcap2.out" 2>>"$T/recv.err" || die "second --pcap failed"
	assert_same_tree "$T/b" "$(released b 1)"
fi

note "a capture of junk"
"$MANGLE" "$T/full.pcap" "$T/junk.pcap" --drop 1 --junk 3000 --seed 3 ||
	die "pcap-mangle failed"
rm -rf "$T/store"
"$RECV" -c "$T/receiver.conf" --pcap "$T/junk.pcap" >"$T/pcap3.out" \
    2>"$T/recv3.err" || die "--pcap of junk failed: $(tail -n 5 "$T/recv3.err")"
cat "$T/pcap3.out"
grep -q ' released=0 quarantined=0 rejected=0 ' "$T/pcap3.out" ||
	die "junk led to a verdict"
n=$(sed -n 's/.* truncated=\([0-9]*\).*/\1/p' "$T/pcap3.out")
[ "${n:-0}" -gt 100 ] || die "truncated junk frames not counted ($n)"
n=$(sed -n 's/.* datagrams=\([0-9]*\).*/\1/p' "$T/pcap3.out")
[ "${n:-0}" -gt 100 ] || die "junk datagrams did not reach the checks ($n)"
[ -z "$(ls -A "$T/store" 2>/dev/null)" ] || die "junk reached the store"
echo "pcap impaired ok"
