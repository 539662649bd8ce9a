# sluice-recv -n and sluice-send -n fail, exit 1, on every configuration
# that cannot run, with one line per problem naming the file, the line
# and the setting; a configuration that can run is OK.  The daemons run
# the same checks at start.
. "$(dirname "$0")/lib.sh"

keys sender
keys receiver
keys alice
RECV_OK=(
	'audit_log = "logs/audit.log"' 'receiver_key = "receiver.key"'
	'metrics_file = "metrics/sluice.prom"'
	'scan_hook = "/bin/true --quiet"'
	'approvers = [ "alice.pub" ]' 'approval_threshold = 1'
)

# expect_recv_fail PATTERN SETTING...: -n exits 1 and prints PATTERN
expect_recv_fail() {
	local pattern=$1
	shift
	receiver_conf "$@"
	expect_this_fails "$pattern"
}

# expect_this_fails PATTERN: the same for receiver.conf as it stands
expect_this_fails() {
	local pattern=$1
	"$RECV" -n -c "$T/receiver.conf" >"$T/n.out" 2>&1 && die "-n said OK: $pattern"
	grep -q -- "$pattern" "$T/n.out" || die "-n output lacks '$pattern': $(cat "$T/n.out")"
	grep -q "configuration NOT OK\|fatal: .*receiver.conf:[0-9]*: " "$T/n.out" || die "no verdict line: $(cat "$T/n.out")"
	echo "refused: $(grep -- "$pattern" "$T/n.out" | head -n 1)"
	# The daemon itself refuses to start the same way.
	"$RECV" -c "$T/receiver.conf" >"$T/start.out" 2>&1 && die "started: $pattern"
	grep -q -- "$pattern" "$T/start.out" || die "start output lacks '$pattern'"
}

receiver_conf "${RECV_OK[@]}"
"$RECV" -n -c "$T/receiver.conf" 2>"$T/n.out" || die "good config refused: $(cat "$T/n.out")"
grep -q "configuration OK" "$T/n.out" || die "no OK"
[ ! -e "$T/logs" ] || die "-n created a directory"

expect_recv_fail "receiver.conf:[0-9]*: receiver_key: .*missing.key: No such file" \
    'audit_log = "audit.log"' 'receiver_key = "missing.key"'
chmod 644 "$T/receiver.key"
expect_recv_fail "receiver.conf:[0-9]*: receiver_key: .*mode 0644; must be 0600" \
    'audit_log = "audit.log"' 'receiver_key = "receiver.key"'
chmod 600 "$T/receiver.key"
expect_recv_fail "receiver.conf:[0-9]*: receiver_key: .*receiver.pub: is a public key; a secret key is needed" \
    'audit_log = "audit.log"' 'receiver_key = "receiver.pub"'
expect_recv_fail "receiver.conf:[0-9]*: approvers: .*bob.pub" \
    'approvers = [ "alice.pub", "bob.pub" ]' 'approval_threshold = 1'
expect_recv_fail "receiver.conf:[0-9]*: scan_hook: nosuchscanner: not found" \
    'scan_hook = "nosuchscanner -r"'
expect_recv_fail "receiver.conf:[0-9]*: release_hooks: .*/no/such/hook: No such file" \
    'release_hooks = [ "/no/such/hook" ]'
: >"$T/afile"
expect_recv_fail "receiver.conf:[0-9]*: audit_log: .*afile is not a directory" \
    'audit_log = "afile/audit.log"' 'receiver_key = "receiver.key"'
expect_recv_fail "receiver.conf:[0-9]*: metrics_file: .*afile is not a directory" \
    'metrics_file = "afile/m.prom"'
receiver_conf
sed -i 's#^quarantine_log = .*#quarantine_log = "afile/q.log";#' "$T/receiver.conf"
expect_this_fails "receiver.conf:[0-9]*: quarantine_log: .*afile is not a directory"
expect_recv_fail "receiver.conf:[0-9]*: link_key: .*nolink.key" 'link_key = "nolink.key"'
if [ "$(id -u)" = 0 ] && mkdir -p "$T/other" && mount -t tmpfs -o size=1m tmpfs "$T/other"; then
	trap 'umount "$T/other" 2>/dev/null; cleanup' EXIT
	receiver_conf
	sed -i 's#^store_dir = .*#store_dir = "other/store";#' "$T/receiver.conf"
	expect_this_fails "store_dir: .* is on another file system than staging_dir"
	umount "$T/other"
else
	echo "skipped the two-file-systems case (needs root for a tmpfs)"
fi
# Several problems: one line each.
receiver_conf 'scan_hook = "nosuch1"' 'release_hooks = [ "/no/such/2" ]' \
    'audit_log = "a.log"' 'receiver_key = "receiver.pub"'
"$RECV" -n -c "$T/receiver.conf" >"$T/n.out" 2>&1 && die "-n said OK"
[ "$(grep -c '^.*receiver.conf:[0-9]*: ' "$T/n.out")" -ge 3 ] || die "not one line per problem: $(cat "$T/n.out")"
grep -q "3 problems; configuration NOT OK" "$T/n.out" || die "count: $(cat "$T/n.out")"

# The receiver makes the directories of its logs and metrics at start.
receiver_conf "${RECV_OK[@]}"
start_recv
[ -d "$T/logs" ] && [ -d "$T/metrics" ] || die "directories not made at start"
stop_recv

# Sender.
expect_send_fail() {
	local pattern=$1
	shift
	sender_conf "$@"
	"$SEND" -n -c "$T/sender.conf" >"$T/n.out" 2>&1 && die "send -n said OK: $*"
	grep -q -- "$pattern" "$T/n.out" || die "send -n output lacks '$pattern': $(cat "$T/n.out")"
	echo "refused: $(grep -- "$pattern" "$T/n.out" | head -n 1)"
}
sender_conf 'spool_dir = "spool/outgoing"'
"$SEND" -n -c "$T/sender.conf" 2>"$T/n.out" || die "good sender config refused: $(cat "$T/n.out")"
sed -i 's/^key = "sender.key";/key = "nokey.key";/' "$T/sender.conf"
"$SEND" -n -c "$T/sender.conf" >"$T/n.out" 2>&1 && die "missing sender key accepted"
grep -q "sender.conf:[0-9]*: key: .*nokey.key: No such file" "$T/n.out" || die "sender key: $(cat "$T/n.out")"
chmod 644 "$T/sender.key"
expect_send_fail "sender.conf:[0-9]*: key: .*mode 0644" 
chmod 600 "$T/sender.key"
sender_conf
sed -i 's/^key = "sender.key";/key = "sender.pub";/' "$T/sender.conf"
"$SEND" -n -c "$T/sender.conf" >"$T/n.out" 2>&1 && die "public key as sender key accepted"
grep -q "key: .*sender.pub: is a public key; a secret key is needed" "$T/n.out" || die "sender pub: $(cat "$T/n.out")"
expect_send_fail "sender.conf:[0-9]*: spool_dir: .*afile.*[Nn]ot a directory" 'spool_dir = "afile/out"'
expect_send_fail "sender.conf:[0-9]*: link_key: .*nolink.key" 'link_key = "nolink.key"'
sender_conf
sed -i "s#^destination = .*#destination = \"no-such-host.invalid:7700\";#" "$T/sender.conf"
"$SEND" -n -c "$T/sender.conf" >"$T/n.out" 2>&1 && die "unresolvable destination accepted"
grep -q "sender.conf:[0-9]*: destination: cannot resolve no-such-host.invalid" "$T/n.out" ||
	die "destination: $(cat "$T/n.out")"
# A host name is resolved once and the address logged.
receiver_conf
start_recv
sender_conf "passes = 1"
sed -i "s#^destination = .*#destination = \"localhost:$RECV_PORT\";#" "$T/sender.conf"
rand_file "$T/h/a" 10000
send --version 1 "$T/h"
grep -q "destination localhost:$RECV_PORT is 127.0.0.1:$RECV_PORT" "$T/send.err" || die "resolution not logged"
wait_state RELEASED 20
stop_recv
echo "preflight ok"
