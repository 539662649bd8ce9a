# sluice-send checks a prepared bundle's files against its manifest while
# the first pass reads them, not in a pass of its own: a file whose size
# or mode changed is refused before anything is sent; a file whose bytes
# changed (same size) stops the transfer when its last chunk has been
# read, with the manifest's wording, and the receiver, which re-hashes
# every file against the signed manifest, never releases what was sent.
# The daemon moves such a bundle to failed/ at once.  An unchanged bundle
# sent in two passes (descriptors of pass 1 reused in pass 2) is released.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf
sender_conf "passes = 2"
start_recv

mkb() { # mkb DIR VERSION
	rand_file "$T/$1/a.bin" 3000000
	rand_file "$T/$1/z.bin" 1000000
	text_file "$T/$1/README.md" 3000
	"$SLUICE" bundle create "$T/$1" --name chk --version "$2" \
	    >/dev/null || die "bundle create $1"
}

# Bytes changed, size kept: found while sending, after datagrams left.
mkb bytes 1
printf 'X' | dd of="$T/bytes/a.bin" bs=1 seek=2000000 conv=notrunc \
    status=none
if "$SEND" -c "$T/sender.conf" "$T/bytes" >"$T/bytes.err" 2>&1; then
	die "a bundle whose file changed was sent (exit 0)"
fi
grep -q '"a.bin" differs from the manifest (SHA-256)' "$T/bytes.err" ||
	die "no SHA-256 refusal: $(cat "$T/bytes.err")"
grep -q "cannot be released" "$T/bytes.err" ||
	die "the refusal does not say what was sent: $(cat "$T/bytes.err")"
grep -q "pass 2 of 2" "$T/bytes.err" && die "a second pass was sent"
echo "ok: changed bytes stop the send"

# Size changed: refused before anything is sent, as before.
mkb size 2
echo x >>"$T/size/z.bin"
if "$SEND" -c "$T/sender.conf" "$T/size" >"$T/size.err" 2>&1; then
	die "a bundle whose file grew was sent"
fi
grep -q '"z.bin" differs from the manifest (size)' "$T/size.err" ||
	die "no size refusal: $(cat "$T/size.err")"
echo "ok: changed size refused up front"

# An unchanged bundle, two passes: released.
mkb good 3
send "$T/good"
wait_state RELEASED
grep -q "version=1 state=RELEASED" "$T/quarantine.log" &&
	die "the changed bundle was released"
grep -q "version=3 state=RELEASED" "$T/quarantine.log" ||
	die "the good bundle was not the one released"
echo "ok: unchanged bundle released; the changed one never"

# The daemon: a spooled bundle changed after it was queued goes to failed/.
mkdir -p "$T/spool/outgoing" "$T/spool/sent" "$T/spool/failed"
sender_conf "passes = 1" "spool_dir = \"spool/outgoing\""
mkb spooled 4
"$SLUICE" spool add -c "$T/sender.conf" "$T/spooled" >/dev/null ||
	die "spool add"
q=$(ls "$T/spool/outgoing")
printf 'Y' | dd of="$T/spool/outgoing/$q/z.bin" bs=1 seek=10 conv=notrunc \
    status=none
"$SEND" -c "$T/sender.conf" --daemon >"$T/daemon.err" 2>&1 &
DPID=$!
PIDS+=("$DPID")
failed_one() { [ -n "$(ls "$T/spool/failed")" ]; }
wait_until 30 failed_one ||
	die "the changed bundle did not go to failed/: $(cat "$T/daemon.err")"
grep -q '"z.bin" differs from the manifest (SHA-256)' "$T/daemon.err" ||
	die "daemon: no reason: $(cat "$T/daemon.err")"
grep -q "failures\|(1 of 3)" "$T/daemon.err" &&
	die "daemon: retried a bundle that cannot match"
echo "ok: the daemon fails a changed bundle at once"
