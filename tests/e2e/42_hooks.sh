# Hooks: a real scanner (ClamAV's clamscan, with a signature database made
# here: there is no network for freshclam) quarantines a bundle with a
# planted test file and passes a clean one; a scan hook that hangs is
# killed at hook_timeout; release hooks see SLUICE_* and a failing one
# does not undo the release.
. "$(dirname "$0")/lib.sh"

command -v clamscan >/dev/null || { echo "clamscan not installed"; exit 77; }
keys sender
mkdir -p "$T/db"
printf 'SLUICE-PLANTED-TEST-FILE-%s\n' "do not release" >"$T/planted"
echo "$(md5sum <"$T/planted" | cut -d' ' -f1):$(stat -c %s "$T/planted"):Sluice.Test.Planted" \
    >"$T/db/sluice.hdb"
cat >"$T/hook.sh" <<HOOK
#!/bin/sh
env | grep '^SLUICE_' | sort >"$T/hook.env"
HOOK
chmod +x "$T/hook.sh"
receiver_conf "scan_hook = \"clamscan --no-summary --infected -d $T/db -r\"" \
    "release_hooks = [ \"$T/hook.sh\", \"/bin/false\" ]" 'hook_timeout = 60'
sender_conf "passes = 1"
start_recv

rand_file "$T/clean/w.bin" 200000
text_file "$T/clean/README.md" 3000
send --version 1 "$T/clean"
wait_state RELEASED 60
assert_same_tree "$T/clean" "$(released clean 1)"
grep -q "state=SCANNING reason=scan_hook" "$T/quarantine.log" || die "no SCANNING"
# Release hooks run after the release is recorded, on a thread of their own.
wait_until 20 grep -q 'release hook "/bin/false" failed' "$T/recv.err" ||
	die "failing hook not logged"
grep -q "SLUICE_BUNDLE=clean" "$T/hook.env" || die "release hook env: $(cat "$T/hook.env")"
grep -q "SLUICE_PATH=$T/store/clean/1" "$T/hook.env" || die "SLUICE_PATH"
grep -q "SLUICE_MANIFEST=$T/store/clean/1/.sluice/manifest" "$T/hook.env" || die "SLUICE_MANIFEST"
grep -q 'release hook "/bin/false" failed' "$T/recv.err" || die "failing hook not logged"

mkdir -p "$T/infected/docs"
cp "$T/planted" "$T/infected/docs/notes.txt"
rand_file "$T/infected/w.bin" 100000
send --version 1 "$T/infected"
wait_state QUARANTINED 60
grep 'bundle=infected' "$T/quarantine.log" | grep -q 'state=QUARANTINED reason=scan ' ||
	die "infected bundle not quarantined for scan"
[ ! -e "$T/store/infected" ] || die "infected bundle released"
stop_recv

# A scan hook that hangs is killed, and the bundle held.
rm -f "$T/quarantine.log"
printf '#!/bin/sh\nsleep 30\n' >"$T/hang.sh"
chmod +x "$T/hang.sh"
receiver_conf "scan_hook = \"$T/hang.sh\"" 'hook_timeout = 1'
start_recv
rand_file "$T/slow/a" 1000
send --version 1 "$T/slow"
wait_state QUARANTINED 20
grep -q 'reason=scan detail="scan hook: timed out' "$T/quarantine.log" ||
	die "timeout not reported: $(tail -n 1 "$T/quarantine.log")"
echo "hooks ok"
