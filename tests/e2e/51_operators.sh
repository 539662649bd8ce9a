# What an operator reads (issue "Operators"): `sluice status` is never
# stale (a killed, hung or cleanly stopped receiver is said to be so, exit
# 3); an idle one shows the link and the last release; the metrics say
# sluice_up; ids by unique prefix; quarantine list has a header and sizes,
# show lists the approvals; failures read "error:"; config typos get a
# hint; bundle create refuses a past --expires and wiping approvals.
. "$(dirname "$0")/lib.sh"

keys sender; keys a1; keys a2
receiver_conf 'approvers = [ "a1.pub", "a2.pub" ]' 'approval_threshold = 2' \
    'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
sender_conf "passes = 1" "heartbeat_interval = 0.2"
C=(-c "$T/receiver.conf")
metric() { sed -n "s/^$1 //p" "$T/metrics.prom"; }

# ---- failures are errors, with hints ---------------------------------
out=$("$SLUICE" key show "$T/nonexistent.pub" 2>&1) && die "key show of nothing"
echo "$out" | grep -q "^sluice: error: " || die "failure not an error: $out"
printf 'listen = "127.0.0.1:1";\nstaging_dir = ;\n' >"$T/syntax.conf"
out=$("$SLUICE" status -c "$T/syntax.conf" 2>&1) && die "bad syntax accepted"
echo "$out" | grep -qF 'syntax.conf:2: syntax error (is a `;` missing at the end of the line before?)' ||
	die "no hint for a syntax error: $out"
cp "$T/receiver.conf" "$T/typo.conf"; echo 'trasnfer_timeout = 5;' >>"$T/typo.conf"
out=$("$SLUICE" status -c "$T/typo.conf" 2>&1) && die "unknown setting accepted"
echo "$out" | grep -qF 'unknown setting "trasnfer_timeout"; did you mean "transfer_timeout"?' ||
	die "no suggestion for a typo: $out"
# Without -c: the default file, named when it is missing.
if [ ! -e /etc/sluice/receiver.conf ]; then
	out=$("$SLUICE" status 2>&1) && die "status without a config"
	echo "$out" | grep -q "error: /etc/sluice/receiver.conf: cannot read" ||
		die "default config not named: $out"
	"$SLUICE" --help | grep -q "/etc/sluice/receiver.conf" ||
		die "usage does not name the default"
fi

# ---- bundle create ---------------------------------------------------
rand_file "$T/b/w.bin" 300000
out=$("$SLUICE" bundle create "$T/b" --name m --version 1 \
    --expires 2020-01-01T00:00:00Z 2>&1) && die "past --expires accepted"
echo "$out" | grep -q "error: --expires 2020-01-01T00:00:00Z is in the past" ||
	die "past --expires: $out"
out=$("$SLUICE" bundle create "$T/b" --name m --version 1) || die "create"
echo "$out" | grep -q "bundle m version 1, 1 file, 300000 bytes; no approvals yet$" ||
	die "plural: $out"
out=$("$SLUICE" bundle sign "$T/b" --key "$T/a1.key") || die "sign"
echo "$out" | grep -q "(1 approval)$" || die "plural: $out"
out=$("$SLUICE" bundle create "$T/b" --name m --version 1 2>&1) &&
	die "create wiped an approval"
echo "$out" | grep -q "already holds 1 approval of its manifest" ||
	die "wiping approvals: $out"
"$SLUICE" bundle create "$T/b" --name m --version 1 --force >/dev/null ||
	die "create --force"
"$SLUICE" bundle sign "$T/b" --key "$T/a1.key" >/dev/null || die "sign a1"
out=$("$SLUICE" bundle sign "$T/b" --key "$T/a2.key") || die "sign a2"
echo "$out" | grep -q "(2 approvals)$" || die "plural: $out"

# ---- status of a live receiver, idle -----------------------------------
start_recv
sleep 1.5
out=$("$SLUICE" status "${C[@]}") || die "status of a running receiver: $?"
echo "$out"
echo "$out" | grep -q "^sluice-recv is running (pid $RECV_PID, status at " ||
	die "not said to run"
echo "$out" | grep -q "^link down, no heartbeat yet; no release since it started$" ||
	die "idle status: $out"
[ "$(metric sluice_up)" = 1 ] || die "sluice_up not 1"
ts=$(metric sluice_metrics_timestamp_seconds)
[ -n "$ts" ] && [ $(( $(date +%s) - ${ts%.*} )) -le 2 ] ||
	die "metrics timestamp $ts"
send --version 1 "$T/b"
wait_state RELEASED 30
sleep 1.5
out=$("$SLUICE" status "${C[@]}") || die "status: $?"
echo "$out"
echo "$out" | grep -Eq "^link (up|down), last heartbeat at 20[0-9-]*T[0-9:]*Z; last release \"m 1\" at 20[0-9-]*T[0-9:]*Z$" ||
	die "link and release not shown: $out"

# ---- quarantine: ids by prefix, header, size, approvals ----------------
rand_file "$T/q/w.bin" 2000000
"$SLUICE" bundle create "$T/q" --name m --version 2 >/dev/null || die "create q"
"$SLUICE" bundle sign "$T/q" --key "$T/a1.key" >/dev/null || die "sign q"
send --version 2 "$T/q"
wait_state QUARANTINED 30
list=$("$SLUICE" quarantine list "${C[@]}") || die "quarantine list"
echo "$list"
echo "$list" | head -n 1 | grep -q "^TRANSFER  *BUNDLE  *VERSION  *SIZE  *SINCE  *REASON$" ||
	die "no header row"
id=$(echo "$list" | sed -n 2p | cut -d' ' -f1)
echo "$list" | sed -n 2p | grep -q " 1\.9M " || die "size of 2000000 bytes not 1.9M"
a1=$("$SLUICE" key show "$T/a1.pub" | sed -n 's/^id //p')
out=$("$SLUICE" quarantine show "${id:0:6}" "${C[@]}") || die "show by prefix"
echo "$out"
echo "$out" | grep -q "^transfer=$id$" || die "prefix resolved wrongly"
echo "$out" | grep -q "^approval=$a1 configured_approver=yes$" || die "approvals not listed"
echo "$out" | grep -q "^# 1 approval, 1 from configured approvers (2 required)$" ||
	die "approval summary"
mkdir -p "$T/staging/quarantine/fedc000000000001" "$T/staging/quarantine/fedc000000000002"
out=$("$SLUICE" quarantine show fedc "${C[@]}" 2>&1) && die "ambiguous prefix accepted"
echo "$out" | grep -q "error: fedc: ambiguous: 2 transfers begin with it: fedc00000000000[12] fedc00000000000[12]" ||
	die "ambiguous: $out"
out=$("$SLUICE" quarantine show 0123 "${C[@]}" 2>&1) && die "unknown id accepted"
echo "$out" | grep -q "error: 0123: no such transfer" || die "none: $out"
out=$("$SLUICE" missing "${id:0:4}" "${C[@]}" 2>&1) && die "missing of a held one"
echo "$out" | grep -q "error: ${id:0:4}: no such transfer" || die "missing: $out"
rmdir "$T/staging/quarantine/fedc000000000001" "$T/staging/quarantine/fedc000000000002"

# ---- not running: killed, hung, stopped cleanly ------------------------
kill -STOP "$RECV_PID"
sleep 4.5
out=$("$SLUICE" status "${C[@]}"); rc=$?
echo "$out"
[ "$rc" = 3 ] || die "status of a hung receiver exited $rc"
echo "$out" | grep -q "^sluice-recv is not running (last status at .*, pid $RECV_PID)$" ||
	die "hung receiver: $out"
kill -CONT "$RECV_PID"
kill_recv
out=$("$SLUICE" status "${C[@]}"); rc=$?
echo "$out"
[ "$rc" = 3 ] || die "status of a killed receiver exited $rc"
echo "$out" | grep -q "^sluice-recv is not running (last status at 20[0-9-]*T[0-9:]*Z, pid $RECV_PID)$" ||
	die "killed receiver: $out"
echo "$out" | grep -q "QUARANTINED" || die "held bundles not shown"
restart_recv
sleep 1.2
"$SLUICE" status "${C[@]}" >/dev/null || die "restarted receiver not running"
stop_recv
out=$("$SLUICE" status "${C[@]}"); rc=$?
echo "$out"
[ "$rc" = 3 ] || die "status of a stopped receiver exited $rc"
echo "$out" | grep -q "^sluice-recv stopped cleanly at 20[0-9-]*T[0-9:]*Z (pid $RECV_PID)$" ||
	die "clean stop: $out"
[ "$(metric sluice_up)" = 0 ] || die "sluice_up not 0 after a clean stop"
[ "$(metric sluice_link_up)" = 0 ] || die "link up after a clean stop"
echo "ok: operators"
