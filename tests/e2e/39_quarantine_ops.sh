# A way forward for every held bundle: approvals added after the fact
# (sluice bundle sign --detached, sluice quarantine approve), a release
# once they suffice, an operator's override for a rollback, a held entry
# closed when its version is released by another transfer, and INCOMPLETE
# staging listed and purged, after a restart too.  Every decision is an
# audit record naming who made it, and a quarantine-log line.
. "$(dirname "$0")/lib.sh"

keys sender; keys alice; keys bob; keys receiver
chmod 600 "$T/receiver.key"
receiver_conf 'approvers = [ "alice.pub", "bob.pub" ]' 'approval_threshold = 2' \
    'audit_log = "audit.log"' 'receiver_key = "receiver.key"'
sender_conf "passes = 1"
start_recv

bundle() {
	local d=$T/$1-$2
	rm -rf "$d"
	rand_file "$d/weights.bin" 200000
	text_file "$d/config.json" 3000
	"$SLUICE" bundle create "$d" --name "$1" --version "$2" >/dev/null || die "create $1 $2"
	echo "$d"
}
sign() { "$SLUICE" bundle sign "$1" --key "$T/$2.key" >/dev/null || die "sign $2"; }
last_id() { grep "bundle=$1 version=$2 " "$T/quarantine.log" | tail -n 1 | grep -oE 'transfer=[0-9a-f]{16}' | cut -d= -f2; }
Q() { "$SLUICE" quarantine "$@" -c "$T/receiver.conf"; }

note "held for approvals: release refused, approve, release"
b1=$(bundle model 1.0); sign "$b1" alice
send "$b1"
wait_state QUARANTINED 20
id=$(last_id model 1.0)
out=$(Q release "$id") && die "released with 1 of 2 approvals"
echo "$out" | grep -q "refused $id: QUARANTINED: 1 of 2 required approvals" || die "release: $out"
"$SLUICE" bundle sign "$b1" --key "$T/bob.key" --detached -o "$T/bob.sig" >/dev/null || die "detached sign"
grep -q "^approval [0-9a-f]\{16\} [0-9a-f]\{128\}$" "$T/bob.sig" || die "signature file: $(cat "$T/bob.sig")"
# The bundle itself is not changed by a detached signature.
[ "$(grep -c '^approval' "$b1/.sluice/approvals")" = 1 ] || die "detached sign changed the bundle"
# A signature by a key that is no approver is refused.
keys mallory
"$SLUICE" bundle sign "$b1" --key "$T/mallory.key" --detached -o "$T/mallory.sig" >/dev/null
Q approve "$id" --signature "$T/mallory.sig" >/dev/null && die "a stranger's approval accepted"
out=$(Q approve "$id" --signature "$T/bob.sig") || die "approve: $out"
echo "$out"
grep -q "transfer=$id .*state=QUARANTINED reason=approval_added" "$T/quarantine.log" || die "no approval_added line"
out=$(Q release "$id") || die "release: $out"
echo "$out"
wait_until 10 grep -q "transfer=$id .*state=RELEASED reason=operator" "$T/quarantine.log" || die "no RELEASED line"
assert_same_tree "$b1" "$(released model 1.0)"
[ ! -e "$T/staging/quarantine/$id" ] || die "still held"
grep -q "decision=RELEASED transfer=$id .*reason=operator.*released from quarantine by" "$T/audit.log" ||
	die "audit record of the release"

note "rollback: refused without --override, released with it"
b2=$(bundle model 2.0); sign "$b2" alice; sign "$b2" bob
send "$b2"
wait_until 20 grep -q "bundle=model version=2.0 state=RELEASED" "$T/quarantine.log" || die "2.0"
b15=$(bundle model 1.5); sign "$b15" alice; sign "$b15" bob
send "$b15"
wait_until 20 grep -q "bundle=model version=1.5 state=QUARANTINED reason=rollback" "$T/quarantine.log" || die "1.5 not held"
id=$(last_id model 1.5)
Q release "$id" >/dev/null && die "rollback released without --override"
Q release "$id" --override >/dev/null 2>&1 && die "--override without --reason accepted"
out=$(Q release "$id" --override --reason "revert CHG-99") || die "override release: $out"
wait_until 10 [ -d "$(released model 1.5)" ] || die "1.5 not in the store"
grep -q "decision=RELEASED transfer=$id .*override: revert CHG-99" "$T/audit.log" || die "override not audited"
[ "$(cat "$T/staging/.state/released/model")" = 2.0 ] || die "rollback floor lowered"

note "a held entry closed when its version is released by another transfer"
b3=$(bundle model 3.0); sign "$b3" alice
send "$b3"
wait_until 20 grep -q "bundle=model version=3.0 state=QUARANTINED" "$T/quarantine.log" || die "3.0 not held"
held=$(last_id model 3.0)
sign "$b3" bob
send "$b3"
wait_until 20 grep -q "bundle=model version=3.0 state=RELEASED" "$T/quarantine.log" || die "3.0 not released"
wait_until 5 grep -q "transfer=$held .*state=PURGED reason=superseded" "$T/quarantine.log" || die "held 3.0 not closed"
[ ! -e "$T/staging/quarantine/$held" ] || die "superseded entry still held"
grep -q "decision=PURGED transfer=$held .*reason=superseded" "$T/audit.log" || die "no audit record of the close"
stop_recv

note "incomplete: listed (after a restart too) and purged"
TRANSFER_TIMEOUT=1 receiver_conf 'approvers = [ "alice.pub", "bob.pub" ]' 'approval_threshold = 2' \
    'audit_log = "audit.log"' 'receiver_key = "receiver.key"'
start_recv
start_link --loss 0.6 --seed 5
LINK_ARGS=1 sender_conf "passes = 1"
b4=$(bundle lossy 1.0)
send "$b4"
wait_state INCOMPLETE 20
stop_link
stop_recv
start_recv
id=$("$SLUICE" incomplete list -c "$T/receiver.conf" | grep -oE '^[0-9a-f]{16}' | head -n 1)
[ -n "$id" ] || die "incomplete list: $("$SLUICE" incomplete list -c "$T/receiver.conf")"
"$SLUICE" incomplete list -c "$T/receiver.conf"
out=$("$SLUICE" incomplete purge "$id" -c "$T/receiver.conf") || die "purge: $out"
echo "$out"
[ ! -e "$T/staging/$id" ] || die "staging left after the purge"
grep -q "transfer=$id .*state=PURGED reason=operator" "$T/quarantine.log" || die "no PURGED line"
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" || die "audit verify"
echo "quarantine operations ok"
