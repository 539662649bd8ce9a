# sluice-send refuses, before sending anything, a bundle the receiver's
# default limits (common/limits.h) would refuse: a path longer than
# max_path_len, a name outside name_pattern, a version outside
# version_pattern.  The receiver, running, logs no transfer for them; a
# bundle within the limits still goes through.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf
sender_conf "passes = 1"
start_recv

# refused WHAT SETTING ARGS...: sluice-send must fail and name SETTING
refused() {
	local what=$1 setting=$2 out
	shift 2
	if out=$("$SEND" -c "$T/sender.conf" "$@" 2>&1); then
		die "$what: sent (exit 0), wanted a refusal naming $setting"
	fi
	echo "$out" | grep -q "refusing to send.*$setting" ||
		die "$what: $out"
	echo "ok: $what refused ($setting)"
}

long=$T/long
deep=$long/$(printf 'a%.0s' $(seq 1 200))/$(printf 'b%.0s' $(seq 1 200))
deep=$deep/$(printf 'c%.0s' $(seq 1 200))/$(printf 'd%.0s' $(seq 1 200))
deep=$deep/$(printf 'e%.0s' $(seq 1 200))
mkdir -p "$deep"
rand_file "$deep/$(printf 'f%.0s' $(seq 1 100))" 1000
refused "1105-byte path" max_path_len --name long --version 1 "$long"

mkdir -p "$T/ok"
rand_file "$T/ok/weights.bin" 10000
refused "name with a space" name_pattern --name "bad name" --version 1 \
    "$T/ok"
refused "version with shell text" version_pattern --name ok \
    --version '2.0 $(touch${IFS}pwned) *' "$T/ok"

"$SLUICE" bundle create "$T/ok" --name ok --version '1 2' >/dev/null 2>&1 &&
	die "sluice bundle create accepted version '1 2'"
[ -e "$T/ok/.sluice" ] && die "sluice bundle create wrote a refused bundle"
echo "ok: sluice bundle create refuses it too"

sleep 0.5
grep -q 'state=RECEIVING' "$T/quarantine.log" 2>/dev/null &&
	die "the receiver saw a transfer of a refused bundle"
send --name ok --version 1.0 "$T/ok"
wait_state RELEASED
echo "ok: sender limits"
