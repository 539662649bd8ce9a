# An accelerated release-train soak.  50 prepared bundles queued in the
# sender daemon's spool; the link loses 5% (tools/sluice-link); the sender
# daemon is restarted twice (once SIGTERM, once SIGKILL) and the receiver
# SIGKILLed twice, at random times (SOAK_SEED reproduces a run); during the
# run 1,000,000 junk datagrams (random sessions, well-formed, bad or no
# signatures, empty) go straight to the receiver's port.
#
# Asserts: all 50 released bit-exact, each exactly once; a transfer
# resumed after a receiver kill did not need the chunks it had written
# (the "resumed" line); the junk was dropped by reason, and the receiver's
# RSS grew by at most 16 MiB while it arrived.
#
# A one-way link cannot tell the sender that the receiver was down: a
# bundle sent entirely while the receiver was dead is never seen.  The
# operator's remedy is to queue it again (here: from sent/), and that is
# what the test does for any bundle not released once the spool is empty.
. "$(dirname "$0")/lib.sh"

JUNK=$ROOT/tests/bin/sluice-junk
[ -x "$JUNK" ] || die "build tests/bin/sluice-junk first (make check does)"
N=${SOAK_BUNDLES:-50}
JUNK_COUNT=${SOAK_JUNK:-1000000}
SEED=${SOAK_SEED:-$RANDOM}
RANDOM=$SEED
echo "soak seed $SEED (SOAK_SEED=$SEED reproduces the schedule)"

keys sender
TRANSFER_TIMEOUT=600 receiver_conf "metrics_file = \"metrics.prom\"" \
    "metrics_interval = 0.5" "max_transfers_in_flight = 64" \
    "progress_interval = 0.1"
mkdir -p "$T/spool/out" "$T/spool/sent" "$T/spool/failed"
LINK_ARGS=1 RATE=24M sender_conf "passes = 2" "heartbeat_interval = 0.2" \
    "spool_dir = \"spool/out\""
start_link --loss 0.05 --seed "$SEED"

note "making $N bundles"
for i in $(seq 1 "$N"); do
	d=$T/src/soak-$i
	rand_file "$d/weights/shard.bin" $(( 200000 + (RANDOM * 37) % 900000 ))
	text_file "$d/tokenizer.json" $(( 2000 + RANDOM % 20000 ))
	printf '{"bundle": %d, "seed": %d}\n' "$i" "$SEED" >"$d/config.json"
	"$SLUICE" bundle create "$d" --name "soak-$i" --version 1 \
	    --priority $((RANDOM % 10)) >/dev/null || die "bundle create $i"
	"$SLUICE" spool add -c "$T/sender.conf" "$d" >/dev/null ||
		die "spool add $i"
done

start_daemon() {
	"$SEND" -c "$T/sender.conf" --daemon >>"$T/send.err" 2>&1 &
	SEND_PID=$!
	PIDS+=("$SEND_PID")
}
rss() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# A transfer with saved progress that is still receiving: one that had
# reached COMPLETE could be released before the kill lands, and then
# nothing would be left to resume.
receiving_with_progress() {
	local f id
	for f in "$T"/staging/*/progress; do
		[ -f "$f" ] || continue
		id=$(basename "$(dirname "$f")")
		grep -q "transfer=$id .*state=COMPLETE" "$T/quarantine.log" ||
			return 0
	done
	return 1
}
released_count() { grep -c 'state=RELEASED ' "$T/quarantine.log" 2>/dev/null; }

start_recv
start_daemon
t0=$(date +%s.%N)
# The schedule: four disruptions at distinct random times in 1..10 s.  A
# receiver kill waits, from its time, for a transfer still receiving with
# saved progress, so that each kill interrupts one (otherwise it could
# fall between two bundles, or after a release, and show nothing).
declare -A at
for ev in send_term send_kill recv_kill1 recv_kill2; do
	while :; do
		s=$((10 + RANDOM % 90))
		[ -z "${at[$s]:-}" ] && break
	done
	at[$s]=$ev
done
for s in $(printf '%s\n' "${!at[@]}" | sort -n); do
	sleep "$(echo "$t0 + $s / 10 - $(date +%s.%N)" | bc -l | sed 's/^-.*/0/')"
	case ${at[$s]} in
	send_term)
		note "t=$((s / 10)).$((s % 10)) s: sender SIGTERM, restart"
		kill "$SEND_PID"; wait "$SEND_PID"; start_daemon ;;
	send_kill)
		note "t=$((s / 10)).$((s % 10)) s: sender SIGKILL, restart"
		kill -9 "$SEND_PID"; wait "$SEND_PID" 2>/dev/null; start_daemon ;;
	recv_kill*)
		for i in $(seq 1 500); do
			receiving_with_progress && break
			sleep 0.01
		done
		sleep "0.00$((RANDOM % 10))"
		note "t=$(echo "$(date +%s.%N) - $t0" | bc -l | cut -c1-4) s: receiver SIGKILL, restart"
		kill_recv; restart_recv ;;
	esac
done

# The flood, against the receiver that is now running, while bundles flow:
# its receive buffers are all in use after 2 s, so what grows after that
# is what the junk costs.
sleep 2
[ -n "$(ls "$T/spool/out")" ] || die "spool already empty before the flood"
rss0=$(rss "$RECV_PID" VmRSS)
kid=$("$SLUICE" key show "$T/sender.pub" | awk '$1 == "id" { print $2 }')
note "flood: $JUNK_COUNT junk datagrams; receiver RSS $rss0 KiB"
"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count "$JUNK_COUNT" --pps 100000 \
    --key-id "$kid" --seed "$SEED" || die "sluice-junk failed"
[ -n "$(ls "$T/spool/out")" ] || note "the spool emptied during the flood"
sleep 1
hwm=$(rss "$RECV_PID" VmHWM)
note "receiver peak RSS $hwm KiB: +$(( (hwm - rss0) / 1024 )) MiB"
[ $((hwm - rss0)) -le 16384 ] || die "RSS grew by $((hwm - rss0)) KiB"
drops() {
	awk -v r="$1" '$1 == "sluice_drops_total{reason=\"" r "\"}" { print $2 }' \
	    "$T/metrics.prom"
}
for r in unknown_key bad_signature unknown_transfer heartbeat short; do
	[ "$(drops $r)" -gt 0 ] || die "no junk counted as $r"
done
grep 'sluice_drops_total' "$T/metrics.prom" | grep -v ' 0$'

# Drain; re-queue what never arrived (the operator's part), up to 3 times.
for round in 1 2 3 4; do
	for i in $(seq 1 1200); do
		[ -z "$(ls "$T/spool/out")" ] && break
		sleep 0.1
	done
	[ -z "$(ls "$T/spool/out")" ] || die "spool not drained"
	for i in $(seq 1 100); do
		[ "$(released_count)" -ge "$N" ] && break
		sleep 0.1
	done
	[ "$(released_count)" -ge "$N" ] && break
	[ "$round" = 4 ] && break
	missing=()
	for i in $(seq 1 "$N"); do
		grep -q "bundle=soak-$i version=1 state=RELEASED " \
		    "$T/quarantine.log" || missing+=("$i")
	done
	note "round $round: ${#missing[@]} not released (${missing[*]}): queued again"
	for i in "${missing[@]}"; do
		"$SLUICE" spool add --move -c "$T/sender.conf" \
		    "$T/spool/sent/soak-$i-1" >/dev/null || die "requeue $i"
		rm -f "$T/spool/sent/soak-$i-1.record"
	done
done

note "checking $N releases"
for i in $(seq 1 "$N"); do
	c=$(grep -c "bundle=soak-$i version=1 state=RELEASED " "$T/quarantine.log")
	[ "$c" = 1 ] || die "soak-$i released $c times"
	assert_same_tree "$T/src/soak-$i" "$(released "soak-$i" 1)"
done
[ "$(ls "$T/store" | wc -l)" = "$N" ] || die "unexpected entries in the store"
grep -E 'reason=resumed detail="[1-9][0-9]* chunks already on disk"' \
    "$T/quarantine.log" || die "no transfer resumed from chunks on disk"
note "duplicates refused: $(grep -c 'state=DUPLICATE ' "$T/quarantine.log")"
note "link: $(cat "$T/link.stats" 2>/dev/null | tr '\n' ' ')"
echo "$N bundles released once each through 4 restarts, 5% loss and $JUNK_COUNT junk datagrams"
