# Writes stay where they belong, and hooks see what they must:
#  - a symlink at <store_dir>/<name> is never followed: the release is
#    refused (retried, with a reason) and nothing is written through it;
#    once the link is gone, a resend releases into the store;
#  - with hook_shell the scan hook gets the tree as "$1" and SLUICE_TREE,
#    so a scanner cannot pass a bundle it was never shown;
#  - SIGHUP reopens the quarantine log (logrotate moved it away).
. "$(dirname "$0")/lib.sh"

keys sender
mkdir -p "$T/outside" "$T/store"
ln -s "$T/outside" "$T/store/evil"
receiver_conf
start_recv
sender_conf "passes = 1"
rand_file "$T/evil/w.bin" 100000
send --version 1 "$T/evil"
wait_until 20 grep -q 'bundle=evil .*state=INCOMPLETE reason=retry detail=".*evil is not a directory (a link?)' \
    "$T/quarantine.log" || die "the symlink was not refused with a reason"
[ -z "$(ls -A "$T/outside")" ] || die "written through the symlink: $(ls -R "$T/outside")"
! grep -q "bundle=evil .*state=REJECTED" "$T/quarantine.log" || die "REJECTED for this machine's fault"
rm "$T/store/evil"
send --version 1 "$T/evil"
wait_until 30 grep -q "bundle=evil version=1 state=RELEASED" "$T/quarantine.log" || die "not released once the link was gone"
[ -d "$T/store/evil/1" ] && [ ! -L "$T/store/evil" ] || die "not in the store"
echo "a symlink in the store is never followed"

note "SIGHUP reopens the quarantine log"
mv "$T/quarantine.log" "$T/quarantine.log.1"
kill -HUP "$RECV_PID"
sleep 0.5
rand_file "$T/after/w.bin" 1000
send --version 1 "$T/after"
wait_until 20 grep -q "bundle=after version=1 state=RELEASED" "$T/quarantine.log" || die "no new log after SIGHUP"
! grep -q "bundle=after" "$T/quarantine.log.1" || die "written to the old file after SIGHUP"
stop_recv

note "hook_shell: the tree is \$1 and SLUICE_TREE"
cat >"$T/scan.sh" <<'HOOK'
#!/bin/sh
# Refuses unless it was shown the tree, both ways; flags a planted file.
[ -n "$1" ] && [ "$1" = "$SLUICE_TREE" ] && [ -d "$1" ] || exit 2
! grep -rq PLANTED "$1"
HOOK
chmod +x "$T/scan.sh"
receiver_conf "scan_hook = \"$T/scan.sh \\\"\$1\\\"\"" 'hook_shell = true'
start_recv
rand_file "$T/clean/w.bin" 50000
send --version 1 "$T/clean"
wait_until 20 grep -q "bundle=clean version=1 state=\(RELEASED\|QUARANTINED\)" "$T/quarantine.log" || die "clean: no verdict"
grep -q "bundle=clean version=1 state=RELEASED" "$T/quarantine.log" ||
	die "a clean bundle held: the scanner was not shown the tree: $(grep 'bundle=clean' "$T/quarantine.log" | tail -n 1)"
mkdir -p "$T/dirty"; echo "PLANTED" >"$T/dirty/notes.txt"
send --version 1 "$T/dirty"
wait_until 20 grep -q "bundle=dirty version=1 state=QUARANTINED reason=scan" "$T/quarantine.log" ||
	die "the planted file was not caught"
[ ! -e "$T/store/dirty" ] || die "released"
echo "confinement ok"
