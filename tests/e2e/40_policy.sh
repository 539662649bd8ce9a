# Release policy end to end: approvals quorum 2 of 3 (one key, the same key
# twice, an unknown key plus one valid key, two valid keys), duplicate,
# rollback and expiry; quarantine list/show/purge; the audit log verifies,
# records every decision, signs every record, names who purged, and keeps
# its head outside the log so cutting it back is found.
. "$(dirname "$0")/lib.sh"

keys sender
keys a1; keys a2; keys a3; keys stranger; keys receiver
cp "$T/a1.pub" "$T/a1copy.pub"

# The quorum counts keys, not files: one key listed under two names is
# refused at load, naming the setting and both files...
receiver_conf 'approvers = [ "a1.pub", "a1copy.pub", "a2.pub" ]' \
    'approval_threshold = 2'
out=$("$RECV" -n -c "$T/receiver.conf" 2>&1) && die "one key twice accepted"
echo "$out" | grep -q "receiver.conf:[0-9]*: approvers: .*/a1.pub and .*/a1copy.pub hold the same public key" ||
	die "one key twice: $out"
# ... and approvers without a threshold (which meant 0: release all) too.
receiver_conf 'approvers = [ "a1.pub", "a2.pub" ]'
out=$("$RECV" -n -c "$T/receiver.conf" 2>&1) && die "no threshold accepted"
echo "$out" | grep -q "approval_threshold: required" || die "no threshold: $out"
receiver_conf 'approvers = [ "a1.pub", "a2.pub" ]' 'approval_threshold = 3'
"$RECV" -n -c "$T/receiver.conf" 2>/dev/null && die "threshold 3 of 2 accepted"

receiver_conf 'approvers = [ "a1.pub", "a2.pub", "a3.pub" ]' \
    'approval_threshold = 2' 'audit_log = "audit.log"' \
    'receiver_key = "receiver.key"' \
    'max_bundle_age = 86400' 'receiver_name = "lab-b"'
chmod 600 "$T/receiver.key"
sender_conf "passes = 1"
start_recv
grep -q "policy: 2 of 3 approvers (ids [0-9a-f]\{16\},[0-9a-f]\{16\},[0-9a-f]\{16\})" \
    "$T/recv.err" || die "effective policy not logged"

# bundle NAME VERSION [create options]: a small bundle directory
bundle() {
	local d=$T/b-$2
	rm -rf "$d"
	rand_file "$d/weights.bin" 300000
	text_file "$d/config.json" 5000
	"$SLUICE" bundle create "$d" --name "$1" --version "$2" \
	    --changes "test $2" --reason "e2e" "${@:3}" >/dev/null ||
		die "bundle create $2"
	echo "$d"
}
sign() { "$SLUICE" bundle sign "$1" --key "$T/$2.key" >/dev/null || die "sign $2"; }
# expect VERSION STATE [REASON]: the last quarantine-log line for VERSION
expect() {
	local i line
	for i in $(seq 1 100); do
		line=$(grep "version=$1 state=$2" "$T/quarantine.log" | tail -n 1)
		[ -n "$line" ] && break
		sleep 0.1
	done
	[ -n "$line" ] || die "version $1: no state $2"
	[ -z "${3:-}" ] || echo "$line" | grep -q "reason=$3 " ||
		die "version $1: $line (wanted reason $3)"
	echo "ok: $1 $2 ${3:-}"
}

d=$(bundle model 1.0.0); sign "$d" a1
out=$("$SLUICE" bundle verify "$d" --approvers "$T/a1.pub" "$T/a1copy.pub" \
    --threshold 2 2>&1) && die "bundle verify: one key twice met a quorum of 2"
echo "$out" | grep -q "hold the same public key" || die "verify: $out"
send "$d"; expect 1.0.0 QUARANTINED approvals

d=$(bundle model 1.0.1); sign "$d" a1
line=$(cat "$d/.sluice/approvals"); echo "$line" >>"$d/.sluice/approvals"
[ "$(grep -c . "$d/.sluice/approvals")" = 2 ] || die "setup: two lines"
send "$d"; expect 1.0.1 QUARANTINED approvals

d=$(bundle model 1.0.2); sign "$d" stranger; sign "$d" a1
send "$d"; expect 1.0.2 QUARANTINED approvals

d=$(bundle model 1.1.0); sign "$d" a1; sign "$d" a3
"$SLUICE" bundle verify "$d" --approvers "$T/a1.pub" "$T/a2.pub" \
    "$T/a3.pub" --threshold 2 || die "bundle verify"
send "$d"; expect 1.1.0 RELEASED verified
assert_same_tree "$d" "$(released model 1.1.0)"
"$SLUICE" bundle verify "$(released model 1.1.0)" --approvers "$T/a1.pub" \
    "$T/a2.pub" "$T/a3.pub" --threshold 2 || die "verify the release"

d=$(bundle model 1.1.0); sign "$d" a1; sign "$d" a2
send "$d"; expect 1.1.0 DUPLICATE already_released
[ "$(grep -c 'version=1.1.0 state=RELEASED' "$T/quarantine.log")" = 1 ] ||
	die "released twice"

d=$(bundle model 1.0.5); sign "$d" a1; sign "$d" a2
send "$d"; expect 1.0.5 QUARANTINED rollback

d=$(bundle model 2.0.0 --expires 2020-01-01T00:00:00Z --force); sign "$d" a1; sign "$d" a2
send "$d"; expect 2.0.0 QUARANTINED expired

d=$(bundle model 2.0.1 --expires 2099-01-01T00:00:00Z); sign "$d" a2; sign "$d" a3
send "$d"; expect 2.0.1 RELEASED verified

# Held bundles are inspectable until purged.
list=$("$SLUICE" quarantine list -c "$T/receiver.conf")
echo "$list"
[ "$(echo "$list" | head -n 1 | tr -s ' ')" = "TRANSFER BUNDLE VERSION SIZE SINCE REASON" ] ||
	die "quarantine list: no header row"
[ "$(echo "$list" | tail -n +2 | grep -c .)" = 5 ] || die "expected 5 held bundles"
id=$(echo "$list" | grep rollback | cut -d' ' -f1)
"$SLUICE" quarantine show "$id" -c "$T/receiver.conf" | grep -q "reason=rollback" ||
	die "quarantine show"
[ -f "$T/staging/quarantine/$id/tree/weights.bin" ] || die "held tree missing"
"$SLUICE" status -c "$T/receiver.conf" | grep -q "QUARANTINED" || die "status"
"$SLUICE" quarantine purge "$id" -c "$T/receiver.conf" || die "purge"
[ ! -e "$T/staging/quarantine/$id" ] || die "not purged"
[ "$("$SLUICE" quarantine list -c "$T/receiver.conf" | tail -n +2 | grep -c .)" = 4 ] ||
	die "purge did not remove it from the list"

# Old approvals do not stay good: max_bundle_age holds a manifest created
# too long ago, or without a created time.  The approvers sign the edited
# text, so only the age is wrong.
verify_c() { "$SLUICE" bundle verify "$1" -c "$T/${2:-receiver}.conf"; }
d=$(bundle model 3.0.0)
sed -i 's/^created .*/created 2020-01-01T00:00:00Z/' "$d/.sluice/manifest"
sign "$d" a1; sign "$d" a2
out=$(verify_c "$d") && die "verify: old bundle passed"
echo "$out" | grep -q "FAIL model version 3.0.0: expired: created at 2020-01-01T00:00:00Z, older than max_bundle_age" ||
	die "verify old: $out"
send "$d"; expect 3.0.0 QUARANTINED expired
grep "version=3.0.0 state=QUARANTINED" "$T/quarantine.log" |
	grep -q "older than max_bundle_age" || die "no age in the detail"
d=$(bundle model 3.0.1)
sed -i '/^created /d' "$d/.sluice/manifest"
sign "$d" a1; sign "$d" a2
verify_c "$d" >/dev/null && die "verify: bundle without created passed"
send "$d"; expect 3.0.1 QUARANTINED expired

# destination is signed and must be this receiver's receiver_name.
d=$(bundle model 3.0.2 --destination lab-c); sign "$d" a1; sign "$d" a3
grep -q "^destination lab-c$" "$d/.sluice/manifest" || die "no destination"
out=$(verify_c "$d") && die "verify: other destination passed"
echo "$out" | grep -q ": destination: " || die "verify destination: $out"
"$SLUICE" bundle verify "$d" --approvers "$T/a1.pub" "$T/a3.pub" \
    --threshold 2 --receiver-name lab-c >/dev/null || die "verify for lab-c"
send "$d"; expect 3.0.2 QUARANTINED destination
d=$(bundle model 3.0.3 --destination lab-b); sign "$d" a1; sign "$d" a3
verify_c "$d" || die "verify for lab-b"
send "$d"; expect 3.0.3 RELEASED verified

# bundle verify applies the receiver's names and limits too.
cp "$T/receiver.conf" "$T/strict.conf"
echo 'max_files = 1;' >>"$T/strict.conf"
out=$(verify_c "$d" strict) && die "verify: max_files ignored"
echo "$out" | grep -q ": too_many_files: " || die "verify limits: $out"
sed 's/^max_files = 1;$/name_pattern = "other";/' "$T/strict.conf" >"$T/named.conf"
out=$(verify_c "$d" named) && die "verify: name_pattern ignored"
echo "$out" | grep -q ": name_pattern: " || die "verify name: $out"

stop_recv
cat "$T/audit.log" | cut -c1-160
HEAD=$T/staging/.state/audit.head
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" || die "audit verify"
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" --head "$HEAD" ||
	die "audit verify --head"
for dec in RELEASED DUPLICATE QUARANTINED PURGED; do
	grep -q "decision=$dec " "$T/audit.log" || die "no $dec record"
done
[ "$(grep -vc ' key=[0-9a-f]\{16\} sig=[0-9a-f]\{128\} hash=' "$T/audit.log")" = 0 ] ||
	die "a record without a signature"
grep "decision=RELEASED" "$T/audit.log" | grep -q "approvers=" || die "no approvers"
grep "decision=PURGED" "$T/audit.log" | grep -q "actor=\"$(id -un) (uid $(id -u))" ||
	die "the purge record does not name who purged"
# The head is in the quarantine log too, after every append.
n=$(grep -c . "$T/audit.log")
# (the purge above was the CLI's; every other record is the daemon's)
last=$(grep -v ' decision=PURGED ' "$T/audit.log" | tail -n 1 | sed 's/^seq=\([0-9]*\) .*/\1/')
grep "state=AUDIT_HEAD reason=append" "$T/quarantine.log" | tail -n 1 |
	grep -q "seq=$last hash=" || die "no AUDIT_HEAD line for the last daemon append (seq $last)"
cp "$T/audit.log" "$T/audit.orig"
# Cut back by two records: only --head sees it.
head -n $((n - 2)) "$T/audit.orig" >"$T/audit.log"
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" || die "prefix"
out=$("$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" --head "$HEAD") &&
	die "cut back undetected"
echo "$out"
echo "$out" | grep -q "log cut back: head says seq $n, log ends at seq $((n - 2))" ||
	die "cut back: wrong message"
# An edited record is found; so is one whose chain was then recomputed.
cp "$T/audit.orig" "$T/audit.log"
sed -i '2s/decision=QUARANTINED/decision=RELEASED/' "$T/audit.log"
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" && die "edit undetected"
python3 - "$T/audit.log" <<'PY'
import hashlib, re, sys
prev = "0" * 64
out = []
for line in open(sys.argv[1]).read().splitlines():
    line = re.sub(r" prev=[0-9a-f]{64}", " prev=" + prev, line, count=1)
    body = line[:line.rindex(" hash=")]
    prev = hashlib.sha256(body.encode()).hexdigest()
    out.append(body + " hash=" + prev)
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
out=$("$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub") &&
	die "rechained edit undetected"
echo "$out"
echo "$out" | grep -q "line 2 (seq 2): signature does not verify" ||
	die "rechained edit: wrong message"
echo "policy ok"
