# Shared helpers for the end-to-end tests: real binaries, loopback only,
# impairments from tools/sluice-link.  Source it; it sets up $T (a fresh
# temporary directory, removed on exit) and stops everything it started.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SEND=$ROOT/sender/sluice-send
RECV=$ROOT/receiver/sluice-recv
SLUICE=$ROOT/tools/sluice
LINK=$ROOT/tools/sluice-link
T=$(mktemp -d /tmp/sluice-e2e.XXXXXX)
PIDS=()
# Ports: one block of three per test process, on 127.0.0.1 only.
PORT_BASE=$(( 20000 + ($$ % 10000) * 3 ))
RECV_PORT=$PORT_BASE
LINK_PORT=$((PORT_BASE + 1))

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
		kill -CONT "$p" 2>/dev/null # a test may have stopped it
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

die() {
	echo "FAIL: $*"
	for f in "$T"/quarantine.log "$T"/recv.err "$T"/link.err "$T"/send.err; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
	done
	exit 1
}

note() { echo "--- $*"; }

# keys NAME: a key pair at $T/NAME.key / $T/NAME.pub
keys() {
	"$SLUICE" keygen -o "$T/$1" >/dev/null || die "keygen $1"
}

# receiver_conf [extra settings...]
receiver_conf() {
	cat >"$T/receiver.conf" <<CONF
listen = "127.0.0.1:$RECV_PORT";
sender_keys = [ "${RECV_TRUST:-sender.pub}" ];
staging_dir = "${STAGING_DIR:-staging}";
store_dir = "${STORE_DIR:-store}";
quarantine_log = "quarantine.log";
transfer_timeout = ${TRANSFER_TIMEOUT:-30};
CONF
	local s
	for s in "$@"; do
		echo "$s;" >>"$T/receiver.conf"
	done
}

# sender_conf [extra settings...]; sends through the link when LINK_ARGS set
sender_conf() {
	local dest=$RECV_PORT
	[ -n "${LINK_ARGS+x}" ] && dest=$LINK_PORT
	cat >"$T/sender.conf" <<CONF
destination = "127.0.0.1:$dest";
key = "sender.key";
rate = "${RATE:-800M}";
CONF
	local s
	for s in "$@"; do
		echo "$s;" >>"$T/sender.conf"
	done
}

# start_recv [ARGS...]: sets RECV_PID, and RECV_START_MS, the time from
# exec to "listening on" (to within 10 ms)
start_recv() {
	local t0 before i
	before=$(grep -c "listening on" "$T/recv.err" 2>/dev/null)
	t0=$(date +%s%N)
	"$RECV" -c "$T/receiver.conf" "$@" >>"$T/recv.err" 2>&1 &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	# Ready when it says it is listening (again, after a restart).
	for i in $(seq 1 500); do
		if [ "$(grep -c "listening on" "$T/recv.err" 2>/dev/null)" \
		    -gt "${before:-0}" ]; then
			RECV_START_MS=$((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		kill -0 "$RECV_PID" 2>/dev/null || die "sluice-recv exited"
		sleep 0.01
	done
	die "sluice-recv did not start"
}

# rss_kib PID: resident set size in KiB
rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

stop_recv() {
	kill "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
}

# kill_recv: SIGKILL the receiver and reap it
kill_recv() {
	kill -9 "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
}

# restart_recv ARGS...: start_recv again; the earlier "listening on" lines
# are renamed so that it waits for the new process's.
restart_recv() {
	sed -i 's/listening on/listened on/' "$T/recv.err"
	start_recv "$@"
}

# start_link ARGS...: the emulator between sender and receiver
start_link() {
	"$LINK" --listen "127.0.0.1:$LINK_PORT" \
	    --forward "127.0.0.1:$RECV_PORT" --stats-file "$T/link.stats" \
	    "$@" >>"$T/link.err" 2>&1 &
	LINK_PID=$!
	PIDS+=("$LINK_PID")
	local i
	for i in $(seq 1 100); do
		grep -q "listening on" "$T/link.err" 2>/dev/null && return 0
		sleep 0.05
	done
	die "sluice-link did not start"
}

stop_link() {
	kill "$LINK_PID" 2>/dev/null
	wait "$LINK_PID" 2>/dev/null
}

# send ARGS...: runs sluice-send to completion
send() {
	"$SEND" -c "$T/sender.conf" "$@" >>"$T/send.err" 2>&1 ||
		die "sluice-send failed"
}

# wait_state STATE [seconds]: until the quarantine log has that state
wait_state() {
	local state=$1 limit=${2:-120} i
	for i in $(seq 1 $((limit * 10))); do
		grep -q "state=$state " "$T/quarantine.log" 2>/dev/null && return 0
		sleep 0.1
	done
	die "no $state in the quarantine log after $limit s"
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it
# succeeds (status 0) or SECONDS pass (status 1)
wait_until() {
	local limit=$1 i
	shift
	for i in $(seq 1 $((limit * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# counter NAME: a value from the receiver's last stats line
counter() {
	grep -o " $1=[0-9]*" "$T/recv.err" | tail -n 1 | cut -d= -f2
}

chunk_size() {
	"$SEND" -c "$T/sender.conf" -p | sed -n 's/^chunk_size *= *\([0-9]*\).*/\1/p'
}

# capture OUT [tcpdump args]: tcpdump -w on lo for datagrams to
# CAPTURE_PORT (default RECV_PORT) until stop_capture
capture() {
	local out=$1 i
	shift
	tcpdump -i lo -n -U --immediate-mode -B 65536 -w "$out" "$@" \
	    "udp and dst port ${CAPTURE_PORT:-$RECV_PORT}" \
	    >"$T/tcpdump.err" 2>&1 &
	TCPDUMP_PID=$!
	PIDS+=("$TCPDUMP_PID")
	for i in $(seq 1 100); do
		grep -q "listening on" "$T/tcpdump.err" && return 0
		sleep 0.05
	done
	die "tcpdump did not start: $(cat "$T/tcpdump.err")"
}
# stop_capture: ends it, and fails the test if tcpdump lost a packet
stop_capture() {
	sleep 0.5
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" 2>/dev/null
	grep -q "^0 packets dropped by kernel" "$T/tcpdump.err" ||
		die "tcpdump lost packets: $(cat "$T/tcpdump.err")"
}

# rand_file PATH BYTES
rand_file() {
	mkdir -p "$(dirname "$1")"
	head -c "$2" /dev/urandom >"$1"
}

# text_file PATH BYTES: compressible text
text_file() {
	mkdir -p "$(dirname "$1")"
	local i=0
	while :; do
		echo "line $i: the quick brown fox jumps over the lazy dog {\"k\": $i}"
		i=$((i + 1))
	done | head -c "$2" >"$1"
}

# released NAME VERSION: path of a release
released() {
	echo "$T/${STORE_DIR:-store}/$1/$2"
}

# assert_same_tree SOURCE RELEASE: same files and bytes; the release also
# carries the bundle's .sluice/manifest and approvals.
assert_same_tree() {
	diff -r -x .sluice "$1" "$2" >/dev/null ||
		die "released tree differs from $1"
	[ -f "$2/.sluice/manifest" ] || die "release lacks .sluice/manifest"
	local a b
	a=$(cd "$1" && find . -type f ! -path './.sluice/*' | sort | md5sum)
	b=$(cd "$2" && find . -type f ! -path './.sluice/*' | sort | md5sum)
	[ "$a" = "$b" ] || die "file lists differ"
}

# staging_leftovers: transfer directories left in staging (16 hex digits)
staging_leftovers() {
	ls "$T/staging" | grep -E '^[0-9a-f]{16}$'
}

# tests/bin/dgram-replay: records datagrams on a loopback port and sends
# them again (never to anything but 127.0.0.0/8).
REPLAY=$ROOT/tests/bin/dgram-replay

# start_record OUT [--only TYPE] [--idle S]: records what reaches RECV_PORT
# (the receiver must not be running); stop_record waits for it to go idle.
start_record() {
	"$REPLAY" record --listen "127.0.0.1:$RECV_PORT" --out "$@" \
	    >>"$T/record.out" 2>&1 &
	RECORD_PID=$!
	PIDS+=("$RECORD_PID")
	local i
	for i in $(seq 1 100); do
		grep -q "listening on" "$T/record.out" 2>/dev/null && return 0
		kill -0 "$RECORD_PID" 2>/dev/null || die "dgram-replay record exited"
		sleep 0.05
	done
	die "dgram-replay record did not start"
}

stop_record() {
	wait "$RECORD_PID" || die "dgram-replay record failed"
	tail -n 1 "$T/record.out"
}

# start_replay IN PPS SECONDS: sends the recording to RECV_PORT in the
# background; stop_replay ends it and shows how many it sent.
start_replay() {
	"$REPLAY" replay --in "$1" --to "127.0.0.1:$RECV_PORT" --pps "$2" \
	    --seconds "$3" >>"$T/replay.out" 2>&1 &
	REPLAY_PID=$!
	PIDS+=("$REPLAY_PID")
}

stop_replay() {
	kill "$REPLAY_PID" 2>/dev/null
	wait "$REPLAY_PID" 2>/dev/null
	tail -n 1 "$T/replay.out"
}

# wait_line PATTERN [seconds]: until a quarantine-log line matches the
# extended regular expression
wait_line() {
	local pattern=$1 limit=${2:-120} i
	for i in $(seq 1 $((limit * 10))); do
		grep -Eq "$pattern" "$T/quarantine.log" 2>/dev/null && return 0
		sleep 0.1
	done
	die "no line matching '$pattern' in the quarantine log after $limit s"
}

# count_lines PATTERN: quarantine-log lines matching the extended regex
count_lines() {
	grep -Ec "$1" "$T/quarantine.log" 2>/dev/null
}

# transfer_of BUNDLE: the transfer id of the first line for that bundle
transfer_of() {
	grep -E " bundle=$1 " "$T/quarantine.log" | head -n 1 |
	    grep -oE 'transfer=[0-9a-f]{16}' | cut -d= -f2
}
