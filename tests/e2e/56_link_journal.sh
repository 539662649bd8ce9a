# The link journal: a receiver with link_journal_dir writes every datagram
# it receives into rotating pcap files; the journal of one run, replayed
# with --pcap into a fresh receiver, releases the same bundle bit-exact;
# rotation keeps at most link_journal_keep files of at most
# link_journal_file_size bytes; a journal on a full file system (a 1 MiB
# tmpfs) stops with one log line while the bundle is still released.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf 'link_journal_dir = "journal"' \
    'link_journal_file_size = "1M"' 'link_journal_keep = 3'
RATE=200M sender_conf "passes = 1"

rand_file "$T/a/model.bin" 300000
start_recv
grep -q "link journal in $T/journal" "$T/recv.err" || die "no journal"
send --version 1 "$T/a"
wait_line ' bundle=a .*state=RELEASED' 30
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null
ls "$T/journal"/link-*.pcap >/dev/null 2>&1 || die "no journal files"

note "the journal, replayed into a fresh receiver, releases the bundle"
mkdir -p "$T/fresh"
cp "$T/receiver.conf" "$T/sender.pub" "$T/fresh/"
sed -i '/^link_journal/d' "$T/fresh/receiver.conf"
"$RECV" -c "$T/fresh/receiver.conf" --pcap "$T/journal"/link-*.pcap \
    >"$T/pcap.out" 2>"$T/fresh.err" ||
	die "--pcap of the journal failed: $(tail -n 5 "$T/fresh.err")"
cat "$T/pcap.out"
assert_same_tree "$T/a" "$T/fresh/store/a/1"

note "rotation keeps link_journal_keep files"
rand_file "$T/b/model.bin" 5000000
start_recv
send --version 1 "$T/b"
wait_line ' bundle=b .*state=RELEASED' 60
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null
n=$(ls "$T/journal"/link-*.pcap | wc -l)
[ "$n" -le 3 ] || die "$n journal files kept, link_journal_keep = 3"
[ "$n" -ge 2 ] || die "no rotation ($n files)"
for f in "$T/journal"/link-*.pcap; do
	[ "$(stat -c %s "$f")" -le 1000000 ] || die "$f over 1M"
done
last=$(ls "$T/journal"/link-*.pcap | tail -n 1)
case $last in
*link-0000000[5-9].pcap|*link-000000[1-9][0-9].pcap) ;;
*) die "numbering did not continue across restarts ($last)" ;;
esac

note "a full disk stops the journal, not the receiver"
[ "$(id -u)" = 0 ] || { echo "needs root to mount a small tmpfs"; exit 77; }
FS=$T/fullfs
mkdir -p "$FS"
mount -t tmpfs -o size=1m tmpfs "$FS" || { echo "cannot mount tmpfs"; exit 77; }
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; umount "$FS"; cleanup' EXIT
receiver_conf "link_journal_dir = \"$FS/journal\""
rand_file "$T/c/model.bin" 3000000
start_recv
send --version 1 "$T/c"
wait_line ' bundle=c .*state=RELEASED' 60
assert_same_tree "$T/c" "$(released c 1)"
grep -q "link journal stopped: .*No space left on device" "$T/recv.err" ||
	die "no log line for the full journal: $(grep journal "$T/recv.err")"
[ "$(grep -c "link journal stopped" "$T/recv.err")" = 1 ] ||
	die "more than one line for a stopped journal"
kill -0 "$RECV_PID" || die "the receiver died"
echo "link journal ok"
