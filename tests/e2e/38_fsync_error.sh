# An fdatasync that fails makes the bytes of that staged file untrusted:
# the error is consumed by the call that reported it, and a later fsync
# that succeeds proves nothing.  The file is received again (a later pass
# brings it) and the bundle is released bit-exact; never trusted as it
# was.  The fault is simulated once (SLUICE_FAILPOINT=fdatasync_eio).
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf 'progress_interval = 0.05'
SLUICE_FAILPOINT=fdatasync_eio start_recv
RATE=100M sender_conf "passes = 3"
rand_file "$T/b/w.bin" 6000000
text_file "$T/b/c.txt" 100000
send --version 1 "$T/b"
wait_state RELEASED 60
grep -q "failpoint fdatasync_eio: simulating the fault once" "$T/recv.err" ||
	die "the fault was not simulated"
grep -q 'state=INCOMPLETE reason=retry detail="a staged file could not be synced' "$T/quarantine.log" ||
	die "no retry line for the failed fdatasync"
assert_same_tree "$T/b" "$(released b 1)"
! grep -q "state=REJECTED" "$T/quarantine.log" || die "REJECTED"
echo "fdatasync failure: received again and released"
