# The mutation suite: 1,100 deliberately wrong bundles (manifest fields,
# file hashes and sizes, approval signatures and key ids, chunk bytes and
# over 100 hostile file names), each signed by the trusted sender so it
# reaches the receiver's verification and policy.  Every one must end
# REJECTED or QUARANTINED with a specific reason; none is released; nothing
# is written outside staging; the logs still hold one event per line.
. "$(dirname "$0")/lib.sh"

MUTATE=$ROOT/tests/bin/sluice-mutate
N=${SLUICE_MUTATIONS:-1100}
keys sender; keys a1; keys a2; keys receiver
receiver_conf 'approvers = [ "a1.pub", "a2.pub" ]' 'approval_threshold = 2' \
    'audit_log = "audit.log"' 'receiver_key = "receiver.key"' \
    'max_transfers_in_flight = 512' 'max_path_len = 1024' \
    'max_signature_checks = 100000'
# (1,100 transfers in a few seconds, one pass each, nothing sent again: a
# dropped descriptor is never repaired, so no signature budget here.)
RATE=2G sender_conf "passes = 1"
mkdir -p "$T/work"
touch "$T/marker"
start_recv
"$MUTATE" -c "$T/sender.conf" -w "$T/work" -a "$T/a1.key" -a "$T/a2.key" \
    0 "$N" >"$T/sent.txt" 2>"$T/mutate.err" || die "sluice-mutate: $(tail -n 3 "$T/mutate.err")"
[ "$(wc -l <"$T/sent.txt")" = "$N" ] || die "not all sent"
# Wait for a terminal state for every transfer.
for i in $(seq 1 300); do
	n=$(grep -cE 'state=(RELEASED|REJECTED|QUARANTINED|DUPLICATE) ' "$T/quarantine.log")
	[ "$n" -ge "$N" ] && break
	sleep 0.2
done
stop_recv
fail=0
released=0
declare -A outcome
while read -r line; do
	id=$(echo "$line" | grep -o 'transfer=[0-9a-f]*' | cut -d= -f2)
	st=$(echo "$line" | sed -n 's/.* state=\([A-Z]*\) reason=\([^ ]*\).*/\1 \2/p')
	outcome[$id]=$st
done < <(grep -E 'state=(RELEASED|REJECTED|QUARANTINED|DUPLICATE) ' "$T/quarantine.log")
declare -A by_class
while read -r id i cls detail; do
	st=${outcome[$id]:-NONE}
	by_class["$cls ${st}"]=$(( ${by_class["$cls ${st}"]:-0} + 1 ))
	case "$cls:$st" in
	control:"RELEASED verified") released=$((released + 1)) ;;
	control:*) echo "control $id: $st"; fail=$((fail + 1)) ;;
	*:"REJECTED "?*|*:"QUARANTINED "?*) ;;
	*) echo "mutation $i ($cls $detail) $id: $st"; fail=$((fail + 1)) ;;
	esac
done <"$T/sent.txt"
for k in "${!by_class[@]}"; do echo "$k ${by_class[$k]}"; done | sort
hostile=$(grep -c ' hostile_name ' "$T/sent.txt")
echo "mutations=$((N - 1)) hostile_names=$hostile failures=$fail control_released=$released"
[ "$fail" = 0 ] || die "$fail mutations not rejected or quarantined"
[ "$released" = 1 ] || die "the control bundle was not released"
[ "$hostile" -ge 100 ] || die "fewer than 100 hostile names"
[ "$(ls "$T/store")" = mut ] && [ "$(ls "$T/store/mut")" = 1.0 ] ||
	die "store holds more than the control: $(ls -R "$T/store" | head)"
# Nothing written outside staging, the store's one release, and the logs.
outside=$(find "$T" -newer "$T/marker" -type f ! -path "$T/staging/*" \
    ! -path "$T/store/mut/1.0/*" ! -path "$T/work/*" ! -name quarantine.log \
    ! -name audit.log ! -name recv.err ! -name sent.txt ! -name mutate.err)
[ -z "$outside" ] || die "written outside staging: $outside"
# One event per line: every line parses as ts= ... state= reason=.
bad=$(grep -cvE '^ts=[0-9TZ:-]+ transfer=([0-9a-f]{16}|-) bundle=[^ ]+ version=[^ ]+ state=[A-Z_]+ reason=' "$T/quarantine.log")
[ "$bad" = 0 ] || die "$bad quarantine log lines do not parse"
"$SLUICE" audit verify "$T/audit.log" --key "$T/receiver.pub" || die "audit"
[ "$(grep -c 'decision=QUARANTINED\|decision=REJECTED' "$T/audit.log")" -ge $((N - 1)) ] ||
	die "audit log lacks decisions"
