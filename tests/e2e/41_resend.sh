# A transfer that cannot finish (20% loss, one pass, 25% FEC) becomes INCOMPLETE
# with its missing chunks listed; `sluice missing` writes the list an
# operator carries back; `sluice-send --resend` sends only those chunks and
# the bundle is released.
. "$(dirname "$0")/lib.sh"

keys sender
TRANSFER_TIMEOUT=2 receiver_conf
LINK_ARGS=1
sender_conf "passes = 1"
rand_file "$T/bundle/a.bin" 4000000
text_file "$T/bundle/b.txt" 200000
start_recv
start_link --loss 0.2 --seed 5
send --version 5.0 "$T/bundle"
wait_state INCOMPLETE 20
id=$(grep -oE 'transfer=[0-9a-f]{16}' "$T/quarantine.log" | head -n 1 | cut -d= -f2)
"$SLUICE" missing "$id" -c "$T/receiver.conf" >"$T/missing.txt" || die "missing"
cat "$T/missing.txt" | head
head -n 1 "$T/missing.txt" | grep -q "sluice-missing 1" || die "format"
total=$(grep -o '[0-9]* datagrams' "$T/send.err" | head -1 | cut -d' ' -f1)
# Resend straight to the receiver, only what is missing; with three
# encoder threads, whose descriptors must equal the single thread's (a
# differing one would be a descriptor_conflict and nothing would finish).
stop_link
unset LINK_ARGS
sender_conf "passes = 1" "encode_threads = 3"
"$SEND" -c "$T/sender.conf" --resend "$T/missing.txt" --version 5.0 "$T/bundle" \
    >>"$T/send.err" 2>&1 || die "resend"
wait_state RELEASED 20
assert_same_tree "$T/bundle" "$(released bundle 5.0)"
grep -q "descriptor_conflict" "$T/recv.err" && die "descriptor conflicts"
again=$(grep -o '[0-9]* datagrams' "$T/send.err" | tail -1 | cut -d' ' -f1)
echo "first send $total datagrams, resend $again"
# It says how many of how many chunks it resent: the missing list's.
want=$(awk '$1 == "chunks" { split($3, r, "-"); n += r[2] - r[1] + 1 } END { print n }' "$T/missing.txt")
grep -q "resent $want of [0-9]* chunks of transfer $id" "$T/send.err" ||
	die "resend count: wanted $want: $(grep resent "$T/send.err")"
[ "$again" -lt "$total" ] || die "resend sent everything again"
# A list for another transfer is refused.
sed -i "2s/transfer .*/transfer 0000000000000001/" "$T/missing.txt"
"$SEND" -c "$T/sender.conf" --resend "$T/missing.txt" --version 5.0 "$T/bundle" 2>/dev/null &&
	die "resend of a foreign list accepted"
echo "resend ok"
