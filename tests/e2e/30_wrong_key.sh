# A receiver that trusts a different sender key releases nothing, counts
# every signed datagram it refused with its reason, and keeps running.
. "$(dirname "$0")/lib.sh"

keys sender
keys other
RECV_TRUST=other.pub receiver_conf
sender_conf "passes = 2"
rand_file "$T/bundle/a.bin" 2000000
text_file "$T/bundle/b.txt" 100000
start_recv
send --version 1 "$T/bundle"
sleep 1
kill -0 "$RECV_PID" || die "receiver died"
[ -z "$(ls -A "$T/store")" ] || die "something was released: $(ls -R "$T/store")"
grep -q RELEASED "$T/quarantine.log" 2>/dev/null && die "RELEASED logged"
stop_recv
uk=$(counter drop_unknown_key)
ut=$(counter drop_unknown_transfer)
hb=$(counter drop_heartbeat)
echo "unknown_key=$uk unknown_transfer=$ut heartbeat=$hb"
[ "${uk:-0}" -gt 0 ] || die "descriptors not counted as unknown_key"
[ "${ut:-0}" -gt 0 ] || die "symbols not counted as unknown_transfer"
[ "${hb:-0}" -gt 0 ] || die "heartbeats not counted"
grep -q "dropped datagram: unknown_key" "$T/recv.err" || die "no log line"
# The line names the key the descriptors were signed with: the one to add
# to sender_keys, if it should be trusted.
kid=$("$SLUICE" key show "$T/sender.pub" | sed -n 's/^id //p')
grep -q "dropped datagram: unknown_key (key id $kid; transfer" "$T/recv.err" ||
	die "the unknown_key line does not name key id $kid: $(grep unknown_key "$T/recv.err" | head -1)"
echo "unknown_key line names key id $kid"
