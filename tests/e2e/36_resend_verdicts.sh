# A resend is always answered, once.  The sender's transfer id is
# deterministic (same bundle, same configuration), so sending a directory
# again is a resend of the same transfer; the receiver must say what became
# of it -- once per receiver run (and per 10 minutes), not once per datagram:
#   released  -> DUPLICATE already_released, no second release;
#   rejected  -> REJECTED already_rejected, naming the first reason;
#   purged    -> received afresh (RECEIVING first_datagram) and judged again;
#   restarted -> a new run answers once more.
# Names must match name_pattern ok[a-z]*, so the bundles are okr (signed,
# released), bad (rejected for its name) and okq (unsigned: quarantined).
. "$(dirname "$0")/lib.sh"

keys sender
keys alice
receiver_conf 'name_pattern = "ok[a-z]*"' 'approvers = [ "alice.pub" ]' \
    'approval_threshold = 1'
sender_conf "passes = 2"
start_recv

# id_lines ID PATTERN: lines of transfer ID whose rest matches PATTERN
id_lines() {
	count_lines "transfer=$1 .*$2"
}
# settle: long enough for the receiver to act on a send that returned
settle() { sleep 1.5; }

# 1. Released, then sent twice more.
R=$T/okr
rand_file "$R/weights.bin" 300000
"$SLUICE" bundle create "$R" --name okr --version 1.0 --changes "e2e" \
    --reason "e2e" >/dev/null || die "bundle create"
"$SLUICE" bundle sign "$R" --key "$T/alice.key" >/dev/null || die "sign"
send "$R"
wait_line ' bundle=okr .*state=RELEASED' 30
assert_same_tree "$R" "$(released okr 1.0)"
rid=$(transfer_of okr)
[ -n "$rid" ] || die "no transfer id for okr"
send "$R"
send "$R"
wait_line "transfer=$rid .*state=DUPLICATE reason=already_released" 10
settle
n=$(id_lines "$rid" 'state=DUPLICATE reason=already_released')
[ "$n" = 1 ] || die "released: $n DUPLICATE lines for $rid, wanted 1"
n=$(id_lines "$rid" 'state=RELEASED')
[ "$n" = 1 ] || die "released: $n RELEASED lines for $rid, wanted 1"
echo "ok: released transfer $rid answered once"

# 2. Rejected for what its bytes say (a name outside name_pattern).
rand_file "$T/bad/data.bin" 100000
send --name bad --version 1.0 "$T/bad"
wait_line ' bundle=bad .*state=REJECTED reason=name_pattern' 30
bid=$(transfer_of bad)
[ -n "$bid" ] || die "no transfer id for bad"
send --name bad --version 1.0 "$T/bad"
wait_line "transfer=$bid .*state=REJECTED reason=already_rejected" 10
settle
n=$(id_lines "$bid" 'state=REJECTED reason=already_rejected')
[ "$n" = 1 ] || die "rejected: $n already_rejected lines for $bid, wanted 1"
grep -E "transfer=$bid .*reason=already_rejected" "$T/quarantine.log" |
    grep -q 'detail="[^"]*name_pattern' ||
	die "already_rejected does not name the first reason (name_pattern)"
echo "ok: rejected transfer $bid answered once"

# 3. Quarantined (no approval), purged, sent again: received afresh.
rand_file "$T/okq/data.bin" 100000
send --name okq --version 1.0 "$T/okq"
wait_line ' bundle=okq .*state=QUARANTINED reason=approvals' 30
qid=$(transfer_of okq)
[ -n "$qid" ] || die "no transfer id for okq"
"$SLUICE" quarantine purge "$qid" -c "$T/receiver.conf" || die "purge $qid"
before=$(id_lines "$qid" 'state=RECEIVING reason=first_datagram')
send --name okq --version 1.0 "$T/okq"
for i in $(seq 1 100); do
	[ "$(id_lines "$qid" 'state=QUARANTINED')" -ge 2 ] && break
	sleep 0.1
done
n=$(id_lines "$qid" 'state=RECEIVING reason=first_datagram')
[ "$n" = $((before + 1)) ] ||
	die "purged: $n first_datagram lines for $qid, wanted $((before + 1))"
n=$(id_lines "$qid" 'state=QUARANTINED reason=approvals')
[ "$n" = 2 ] || die "purged: $n QUARANTINED lines for $qid, wanted 2"
echo "ok: purged transfer $qid received and judged again"

# 4. A new receiver run answers the released transfer once more.
stop_recv
start_recv
send "$R"
send "$R"
wait_line "transfer=$rid .*state=DUPLICATE reason=already_released" 10
for i in $(seq 1 100); do
	[ "$(id_lines "$rid" 'state=DUPLICATE reason=already_released')" -ge 2 ] &&
		break
	sleep 0.1
done
settle
n=$(id_lines "$rid" 'state=DUPLICATE reason=already_released')
[ "$n" = 2 ] || die "restart: $n DUPLICATE lines for $rid, wanted 2"
n=$(id_lines "$rid" 'state=RELEASED')
[ "$n" = 1 ] || die "restart: released again ($n RELEASED lines)"
echo "resend verdicts ok"
