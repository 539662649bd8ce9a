# Crash consistency: the receiver is SIGKILLed at random points of a
# bundle's way through it -- while receiving, verifying, scanning,
# releasing (SLUICE_FAILPOINT: before_rename, after_rename, after_qlog,
# after_audit, after_finished) and while a release hook runs -- then
# restarted, and the bundle sent again when the restart alone does not
# finish it.  Iteration i sends the same directory as version 1.$i, so
# each iteration must end in exactly one release.
#
# Asserts, per iteration: exactly one RELEASED line in the quarantine log
# and exactly one RELEASED audit record for the version; the store copy is
# bit-exact; the release hook completed (at least once) for it; no
# REJECTED anywhere (a crash is retryable).  At the end the audit chain
# verifies.  A release hook killed with the receiver is killed with its
# whole process group (as a power loss would), so hooks.done only gets
# its line if the receiver runs the hook again after the restart.
#
# CRASH_SEED reproduces the schedule (phases, failpoints, delays);
# CRASH_ITERATIONS (default 50, 10 per phase) and CRASH_MAX_FAILS (stop
# after that many failed checks, default 5) are for debugging.
. "$(dirname "$0")/lib.sh"

SEED=${CRASH_SEED:-$RANDOM}
RANDOM=$SEED
echo "crash seed $SEED (CRASH_SEED=$SEED reproduces the schedule)"
N=${CRASH_ITERATIONS:-50}
MAX_FAILS=${CRASH_MAX_FAILS:-5}
PHASES=(receiving verifying scanning releasing release-hook)
FAILPOINTS=(before_rename after_rename after_qlog after_audit after_finished)

keys sender
keys receiver
chmod 600 "$T/receiver.key"
mkdir -p "$T/hookrun"
# The scan takes 0.3-0.8 s, varying with the version.
cat >"$T/scan.sh" <<'HOOK'
#!/bin/sh
n=$(echo "$SLUICE_VERSION" | cksum | cut -d' ' -f1)
sleep "0.$((3 + n % 6))"
HOOK
# The release hook leaves its process id (its group's: hooks run in a
# group of their own) in the start file.
cat >"$T/release.sh" <<HOOK
#!/bin/sh
echo \$\$ >"$T/hookrun/\$SLUICE_VERSION.start"
sleep 1
echo "\$SLUICE_VERSION" >>"$T/hooks.done"
HOOK
chmod +x "$T/scan.sh" "$T/release.sh"
receiver_conf "scan_hook = \"$T/scan.sh\"" \
    "release_hooks = [ \"$T/release.sh\" ]" 'hook_timeout = 30' \
    'audit_log = "audit.log"' 'receiver_key = "receiver.key"'
RATE=80M sender_conf "passes = 3"
rand_file "$T/bundle/weights/a.bin" 2600000
rand_file "$T/bundle/b.bin" 300000
text_file "$T/bundle/notes.txt" 100000
touch "$T/quarantine.log" "$T/audit.log" "$T/hooks.done"

# The schedule: N/5 iterations of each phase, shuffled.
sched=()
for i in $(seq 0 $((N - 1))); do
	sched+=("${PHASES[i % 5]}")
done
for ((i = N - 1; i > 0; i--)); do
	j=$((RANDOM % (i + 1)))
	p=${sched[i]}; sched[i]=${sched[j]}; sched[j]=$p
done

# delay MS: a random delay of 0..MS milliseconds, as seconds
delay() { printf '0.%03d' $((RANDOM % ($1 + 1))); }
# wait_line OFFSET PATTERN SECONDS: a quarantine-log line after line
# OFFSET matching the extended regular expression
wait_line() {
	local i
	for i in $(seq 1 $(($3 * 100))); do
		tail -n +$(($1 + 1)) "$T/quarantine.log" | grep -qE "$2" &&
			return 0
		sleep 0.01
	done
	return 1
}
# wait_dead PID SECONDS: until the process (a child of ours) has exited
wait_dead() {
	local i
	for i in $(seq 1 $(($2 * 100))); do
		case $(ps -o stat= -p "$1" 2>/dev/null) in
		''|Z*) wait "$1" 2>/dev/null; return 0 ;;
		esac
		sleep 0.01
	done
	return 1
}
start_send() {
	"$SEND" -c "$T/sender.conf" --version "$v" "$T/bundle" \
	    >>"$T/send.err" 2>&1 &
	SEND_PID=$!
	PIDS+=("$SEND_PID")
}
# The sender may outlive a receiver kill: it is one-way, and its later
# passes feed the restarted receiver.
finish_send() { wait "$SEND_PID" 2>/dev/null; }
released_lines() { grep -c "version=$v state=RELEASED " "$T/quarantine.log"; }
is_released() { [ "$(released_lines)" -ge 1 ]; }
audit_released() {
	grep 'decision=RELEASED' "$T/audit.log" | grep -cE "version=$v( |\$)"
}
FAILS=()
fail() {
	FAILS+=("$v ($phase${fp:+ $fp}): $*")
	echo "FAIL $v ($phase${fp:+ $fp}): $*"
	[ "${#FAILS[@]}" -lt "$MAX_FAILS" ] || {
		printf '%s\n' "${FAILS[@]}"
		die "${#FAILS[@]} failed checks; stopping"
	}
}

declare -A kills resends fps
t0=$(date +%s)
start_recv
for i in $(seq 1 "$N"); do
	v=1.$i
	phase=${sched[i - 1]}
	fp=
	off=$(wc -l <"$T/quarantine.log")
	if [ "$phase" = releasing ]; then
		fp=${FAILPOINTS[RANDOM % 5]}
		fps[$fp]=$((${fps[$fp]:-0} + 1))
		stop_recv
		SLUICE_FAILPOINT=$fp restart_recv
	fi
	start_send
	case $phase in
	receiving)
		wait_line "$off" 'state=RECEIVING ' 20 || fail "no RECEIVING"
		sleep "$(delay 500)"
		kill_recv ;;
	verifying)
		wait_line "$off" "version=$v state=(COMPLETE|VERIFYING) " 30 ||
			fail "no COMPLETE"
		sleep "$(delay 30)"
		kill_recv ;;
	scanning)
		wait_line "$off" "version=$v state=SCANNING " 30 ||
			fail "no SCANNING"
		sleep "$(delay 300)"
		kill_recv ;;
	releasing)
		wait_dead "$RECV_PID" 20 || {
			fail "failpoint $fp did not stop the receiver"
			kill_recv
		} ;;
	release-hook)
		wait_until 30 test -s "$T/hookrun/$v.start" ||
			fail "release hook did not start"
		kill_recv
		pg=$(cat "$T/hookrun/$v.start" 2>/dev/null)
		[ -n "$pg" ] && kill -9 -- "-$pg" 2>/dev/null ;;
	esac
	kills[$phase]=$((${kills[$phase]:-0} + 1))
	restart_recv
	# A restart alone, or the sender's later passes, may finish it;
	# otherwise the operator sends the bundle again.
	if ! wait_until 10 is_released; then
		finish_send
		note "$v ($phase${fp:+ $fp}): not released after restart; sent again"
		resends[$phase]=$((${resends[$phase]:-0} + 1))
		start_send
		wait_until 60 is_released
	fi
	finish_send
	wait_until 10 grep -qx "$v" "$T/hooks.done"
	c=$(released_lines)
	[ "$c" = 1 ] || fail "$c RELEASED lines"
	c=$(audit_released)
	[ "$c" = 1 ] || fail "$c RELEASED audit records"
	(assert_same_tree "$T/bundle" "$(released bundle "$v")") >/dev/null ||
		fail "store copy missing or not bit-exact"
	grep -qx "$v" "$T/hooks.done" || fail "release hook did not complete"
	c=$(grep -c 'state=REJECTED' "$T/quarantine.log")
	[ "$c" = 0 ] || fail "REJECTED: $(grep 'state=REJECTED' "$T/quarantine.log" | tail -n 1)"
	echo "ok $v: $phase${fp:+ ($fp)}, $(grep -c "version=$v state=INCOMPLETE reason=retry" "$T/quarantine.log") retry lines"
done
stop_recv
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" ||
	fail "audit verify"
secs=$(($(date +%s) - t0))
note "summary: seed $SEED, $N iterations in $secs s"
for p in "${PHASES[@]}"; do
	echo "  $p: ${kills[$p]:-0} kills, ${resends[$p]:-0} resends"
done
for p in "${FAILPOINTS[@]}"; do
	echo "  releasing at $p: ${fps[$p]:-0}"
done
[ "${#FAILS[@]}" = 0 ] || {
	printf '%s\n' "${FAILS[@]}"
	die "${#FAILS[@]} failures"
}
echo "$N crashes survived: every version released once, bit-exact, hooks run"
