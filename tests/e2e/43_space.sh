# A bundle larger than the free space of the staging file system is
# refused (REJECTED no_space) as soon as its manifest arrives, before its
# files are staged.  Needs root for a small tmpfs; skips without it.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root to mount a small tmpfs"; exit 77; }
mkdir -p "$T/staging"
mount -t tmpfs -o size=3m tmpfs "$T/staging" || { echo "cannot mount tmpfs"; exit 77; }
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; umount "$T/staging"; rm -rf "$T"' EXIT
keys sender
receiver_conf
RATE=40M sender_conf "passes = 1" 'compress = "off"'
start_recv
rand_file "$T/big/a.bin" 2000000
rand_file "$T/big/b.bin" 2000000
rand_file "$T/big/c.bin" 2000000
send --version 1 "$T/big"
wait_state REJECTED 20
grep -q 'state=REJECTED reason=no_space detail="bundle of 6000000 bytes' "$T/quarantine.log" ||
	die "not refused for space: $(tail -n 1 "$T/quarantine.log")"
[ ! -e "$T/store/big" ] || die "released"
echo "refused before staging: $(df -k "$T/staging" | tail -n 1)"
