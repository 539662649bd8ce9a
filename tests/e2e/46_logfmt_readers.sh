# sluice reads the receiver's files with the one logfmt parser: a version
# that holds " reason=..." or " age=..." (escaped, as lifecycle.c writes
# it) is shown as one quoted value and fakes no other field; a malformed
# info or status line is refused whole, not half read.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf
mkdir -p "$T/staging/quarantine/00000000000000aa" \
    "$T/staging/quarantine/00000000000000bb" "$T/staging/.state" \
    "$T/store"
cat >"$T/staging/quarantine/00000000000000aa/info" <<'INFO'
transfer=00000000000000aa
bundle=model
version="2.0 reason=ok quarantined=1970-01-01T00:00:00Z"
reason=approvals
detail="0 of 2 required approvals"
quarantined=2026-11-28T10:00:00Z
INFO
printf 'transfer=00000000000000bb\nbundle=x y reason=ok\n' \
    >"$T/staging/quarantine/00000000000000bb/info"
# A live receiver, stopped (SIGSTOP) so that it does not rewrite the
# status file below: `sluice status` shows transfers of a live one only.
start_recv
kill -STOP "$RECV_PID"
cat >"$T/staging/.state/status" <<STATUS
# sluice-recv $RECV_PID status at $(date -u +%Y-%m-%dT%H:%M:%SZ)
kept=incomplete count=0 bytes=0
kept=quarantine count=1 bytes=10
STATUS
# Quoted, so that the shell leaves the escapes alone.
cat >>"$T/staging/.state/status" <<'STATUS'
transfer=00000000000000cc state=RECEIVING bundle=m version="1 age=999999" chunks_done=1 chunks_total=2 bytes_done=1 bytes_total=2 age=7 idle=0
transfer=00000000000000dd state=RECEIVING bundle=m version=1 x age=888888
STATUS

out=$("$SLUICE" quarantine list -c "$T/receiver.conf" 2>&1) ||
	die "quarantine list: $out"
echo "$out"
line=$(echo "$out" | grep '^00000000000000aa')
echo "$line" | grep -q ' 2026-11-28T10:00:00Z  approvals$' ||
	die "quarantine list: faked reason or time: $line"
echo "$line" | grep -qF '"2.0 reason=ok quarantined=1970-01-01T00:00:00Z"' ||
	die "quarantine list: version not shown quoted: $line"
echo "$out" | grep '^00000000000000bb' | grep -q ' ok ' &&
	die "quarantine list: half-read a malformed info file"
echo "$out" | grep -q 'malformed' || die "no warning for the malformed info"

out=$("$SLUICE" status -c "$T/receiver.conf" 2>&1) || die "status: $out"
echo "$out"
echo "$out" | grep -q '999999s' && die "status: a version faked the age"
echo "$out" | grep '^00000000000000cc' | grep -q ' 7s ' ||
	die "status: age of cc not 7s"
echo "$out" | grep -q '888888\|00000000000000dd' &&
	die "status: half-read a malformed line"
kill -CONT "$RECV_PID"
echo "ok: logfmt readers"
