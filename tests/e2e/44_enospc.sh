# Running out of space is retryable, never a rejection: ENOSPC hit while
# staging and ENOSPC hit while verifying leave the bundle INCOMPLETE with
# reason=retry; once space is freed and the bundle sent again, it is
# released bit-exact.  Needs root for a small tmpfs; skips without it.
#
# Staging and store share one tmpfs (the release is a rename, so they must
# be on one file system).
#
# Staging: a 3 MiB tmpfs and a 6 MB bundle of random bytes, uncompressed;
# the chunk writes fail with ENOSPC (or the receiver sees up front that
# the bundle cannot fit: either way it must say it will try again).
#
# Verification: ENOSPC must come from building the release tree, not from
# staging.  Verification turns staging/<id>/ into staging/<id>/tree/: one
# directory per directory of the bundle, the staged files linked (or
# renamed) in, which costs no inode, and .sluice/ with two small files.
# So a tmpfs with room for the bytes but a small nr_inodes limit lets
# every staged file in and makes the tree's mkdir fail.  The bundle is
# 60 small files each in its own directory.  Measured on the current
# receiver (df -i on the tmpfs): 9 inodes after start-up (root, store,
# staging, .done, quarantine, .state with status, missing, released);
# while receiving, one for the transfer directory, one per staged file
# and one for the progress file, about 71 in all; the tree then needs 1 +
# 60 directories + 3 for .sluice more (137).  nr_inodes=100 leaves ~29
# spare for staging (temporary files, a marker or two of a reworked
# receiver) and fails the tree around its 28th directory.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root to mount a small tmpfs"; exit 77; }
FS=$T/fs
mkdir -p "$FS"
mount -t tmpfs -o size=3m tmpfs "$FS" || { echo "cannot mount tmpfs"; exit 77; }
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; umount "$FS"; cleanup' EXIT
export STAGING_DIR=fs/staging STORE_DIR=fs/store
keys sender
receiver_conf
RATE=200M sender_conf "passes = 1" 'compress = "off"'

# retry_then_release DIR WHAT REMOUNT-OPTIONS [STATE]: after the first send, no
# REJECTED and a retry line (after a STATE line); after the remount and a resend, RELEASED.
retry_then_release() {
	local d=$1 name
	name=$(basename "$d")
	send --version 1 "$d"
	wait_until 20 grep -qE "bundle=$name .*state=(INCOMPLETE reason=retry|REJECTED|RELEASED) " \
	    "$T/quarantine.log"
	! grep "bundle=$name " "$T/quarantine.log" | grep -q 'state=REJECTED' ||
		die "$2: REJECTED: $(grep state=REJECTED "$T/quarantine.log")"
	grep "bundle=$name " "$T/quarantine.log" |
	    grep -q 'state=INCOMPLETE reason=retry' || die "$2: no retry line"
	grep "bundle=$name .*reason=retry" "$T/quarantine.log" | head -n 1
	[ ! -e "$(released "$name" 1)" ] || die "$2: released without space"
	[ -z "${4:-}" ] || grep "bundle=$name " "$T/quarantine.log" |
	    grep -q "state=$4 " || die "$2: the retry came before $4"
	echo "$2: $(df -k "$FS" | tail -n 1 | awk '{ print $3 " KiB, " }')$(df -i "$FS" | tail -n 1 | awk '{ print $3 " inodes used" }')"
	mount -o "remount,$3" "$FS" || die "remount $3"
	send --version 1 "$d"
	wait_until 30 grep -q "bundle=$name version=1 state=RELEASED " \
	    "$T/quarantine.log" || die "$2: not released after the remount and a resend"
	[ "$(grep -c "bundle=$name version=1 state=RELEASED " "$T/quarantine.log")" = 1 ] ||
		die "$2: released twice"
	assert_same_tree "$d" "$(released "$name" 1)"
	! grep -q 'state=REJECTED' "$T/quarantine.log" || die "$2: REJECTED later"
	echo "$2: released after $3 and a resend"
}

note "ENOSPC while staging"
start_recv
rand_file "$T/big/a.bin" 2000000
rand_file "$T/big/b.bin" 2000000
rand_file "$T/big/c.bin" 2000000
retry_then_release "$T/big" staging size=64m
stop_recv

note "ENOSPC while verifying"
umount "$FS" || die "umount"
mount -t tmpfs -o size=64m,nr_inodes=100 tmpfs "$FS" || die "mount"
start_recv
for j in $(seq -w 1 60); do
	rand_file "$T/many/d$j/f$j.bin" 2000
done
text_file "$T/many/README" 2000
retry_then_release "$T/many" verification nr_inodes=10000 VERIFYING
stop_recv
echo "ENOSPC while staging and while verifying: retried, then released"
