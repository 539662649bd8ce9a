# sluice-send --daemon: bundles put into the spool with `sluice spool add`
# go out in queue order (priority, then age), land in sent/ with a record,
# and are released; one dropped in later is picked up by inotify; junk in
# the spool goes to failed/ with a reason; heartbeats keep the link up
# while the queue is empty; a daemon stopped mid-bundle sends it again
# from the start after a restart.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf "metrics_file = \"metrics.prom\"" "metrics_interval = 0.5" \
    "link_down_after = 3"
mkdir -p "$T/spool/outgoing" "$T/spool/sent" "$T/spool/failed"
RATE=400M sender_conf "passes = 1" "heartbeat_interval = 0.2" \
    "spool_dir = \"spool/outgoing\""
"$SEND" -c "$T/sender.conf" -p | grep -q "sent_dir = \"$T/spool/sent\"" ||
	die "sent_dir does not default to a sibling of spool_dir"

mk() { # mk NAME VERSION PRIORITY BYTES
	rand_file "$T/src/$1-$2/data.bin" "$4"
	text_file "$T/src/$1-$2/README.md" 3000
	"$SLUICE" bundle create "$T/src/$1-$2" --name "$1" --version "$2" \
	    --priority "$3" >/dev/null || die "bundle create $1"
	cp -a "$T/src/$1-$2" "$T/orig-$1-$2"
}
wait_release() { # wait_release NAME SECONDS
	local i
	for i in $(seq 1 $(($2 * 10))); do
		grep -q "bundle=$1 version=1 state=RELEASED " \
		    "$T/quarantine.log" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$1 not released after $2 s"
}
mk low 1 1 3000000
mk high 1 9 2000000
mk mid 1 5 1000000
mk late 1 0 500000
mk big 1 0 60000000
for b in low-1 high-1 mid-1; do
	"$SLUICE" spool add -c "$T/sender.conf" "$T/src/$b" >/dev/null ||
		die "spool add $b"
done
[ -d "$T/src/low-1" ] || die "spool add without --move removed the source"
# Refused at the door: the same version again, and a tampered bundle.
"$SLUICE" spool add -c "$T/sender.conf" "$T/src/low-1" 2>"$T/add.err" &&
	die "the same bundle was queued twice"
grep -q "already queued" "$T/add.err" || die "no reason for the refusal"
cp -a "$T/src/late-1" "$T/tampered"
echo x >>"$T/tampered/README.md"
"$SLUICE" spool add -s "$T/spool/outgoing" "$T/tampered" 2>"$T/add.err" &&
	die "a tampered bundle was queued"
grep -q "differs from the manifest" "$T/add.err" || die "tamper reason"
"$SLUICE" spool list -c "$T/sender.conf" >"$T/list.out"
awk 'NR > 1 { print $4 }' "$T/list.out" | tr '\n' ' ' |
	grep -qx "high-1 mid-1 low-1 " || { cat "$T/list.out"; die "list order"; }

start_recv
"$SEND" -c "$T/sender.conf" --daemon >>"$T/send.err" 2>&1 &
SEND_PID=$!
PIDS+=("$SEND_PID")
for i in $(seq 1 300); do
	[ "$(grep -c 'state=RELEASED ' "$T/quarantine.log" 2>/dev/null)" = 3 ] &&
		break
	sleep 0.1
done
order=$(grep 'state=RELEASED ' "$T/quarantine.log" | grep -o 'bundle=[a-z]*' |
	cut -d= -f2 | tr '\n' ' ')
[ "$order" = "high mid low " ] || die "release order was '$order'"
for b in low high mid; do
	assert_same_tree "$T/orig-$b-1" "$(released $b 1)"
	[ -d "$T/spool/sent/$b-1" ] || die "$b-1 not in sent/"
	grep -qE "^time=[0-9TZ:-]+ entry=$b-1 transfer=[0-9a-f]{16} passes=1 " \
	    "$T/spool/sent/$b-1.record" || die "no record for $b-1"
done
[ -z "$(ls "$T/spool/outgoing")" ] || die "spool not empty"

# Idle: heartbeats keep the link up.
hb0=$(awk '$1 == "sluice_heartbeats_total" { print $2 }' "$T/metrics.prom")
sleep 2
hb1=$(awk '$1 == "sluice_heartbeats_total" { print $2 }' "$T/metrics.prom")
[ "$hb1" -ge $((hb0 + 4)) ] || die "heartbeats while idle: $hb0 -> $hb1"
grep -q "LINK_DOWN" "$T/quarantine.log" && die "link went down while idle"

# Picked up while running: a rename (--move), a non-bundle, a stray file.
"$SLUICE" spool add --move -c "$T/sender.conf" "$T/src/late-1" >/dev/null ||
	die "spool add --move"
[ -e "$T/src/late-1" ] && die "--move left the source"
mkdir -p "$T/notabundle" && echo hi >"$T/notabundle/x"
mv "$T/notabundle" "$T/spool/outgoing/notabundle"
echo junk >"$T/spool/outgoing/stray-file"
wait_release late 20
assert_same_tree "$T/orig-late-1" "$(released late 1)"
for i in $(seq 1 50); do
	[ -f "$T/spool/failed/notabundle.reason" ] && break
	sleep 0.1
done
grep -q "reason=\"not a prepared bundle" "$T/spool/failed/notabundle.reason" ||
	die "junk not moved to failed/ with a reason"
grep -q "ignoring stray-file: not a directory" "$T/send.err" ||
	die "stray file not reported"

# Stopped mid-bundle: still queued, sent from the start after a restart.
"$SLUICE" spool add -c "$T/sender.conf" "$T/src/big-1" >/dev/null
for i in $(seq 1 50); do
	grep -q "sending big-1" "$T/send.err" && break
	sleep 0.05
done
sleep 0.3
kill "$SEND_PID"
wait "$SEND_PID" || die "daemon did not stop cleanly"
grep -q "interrupted while sending big-1" "$T/send.err" ||
	die "no interruption logged"
[ -d "$T/spool/outgoing/big-1" ] || die "interrupted bundle left the spool"
"$SEND" -c "$T/sender.conf" --daemon >>"$T/send.err" 2>&1 &
SEND_PID=$!
PIDS+=("$SEND_PID")
wait_release big 60
assert_same_tree "$T/orig-big-1" "$(released big 1)"
[ "$(grep -c 'state=RELEASED ' "$T/quarantine.log")" = 5 ] ||
	die "expected exactly 5 releases"
echo "5 bundles released in queue order; junk to failed/; restart resent"
