# sluice-send shows progress: one updating line on a terminal (pass,
# percent, MB/s, ETA), one line per pass in logs; its counts agree with
# the receiver's (chunks are chunks, not chunks x passes); it names the
# bundle's approvals on its first line and warns when there are none.
. "$(dirname "$0")/lib.sh"

keys sender
keys alice
receiver_conf
start_recv
RATE=200M sender_conf "passes = 2"
rand_file "$T/b/w.bin" 4000000
text_file "$T/b/README.md" 30000
"$SLUICE" bundle create "$T/b" --name prog --version 1 >/dev/null || die "create"
"$SLUICE" bundle sign "$T/b" --key "$T/alice.key" >/dev/null || die "sign"
send "$T/b"
wait_state RELEASED 30
grep -q "sending prog version 1: 2 files, .*2 passes; 1 approval (ids [0-9a-f]\{16\})" "$T/send.err" ||
	die "first line: $(head -n 1 "$T/send.err")"
grep -q "pass 1 of 2 done at" "$T/send.err" && grep -q "pass 2 of 2 done at" "$T/send.err" ||
	die "no per-pass lines: $(cat "$T/send.err")"
chunks=$(sed -n 's/.* bytes, \([0-9]*\) chunks, .*/\1/p' "$T/send.err")
stop_recv
got=$(counter chunks_done)
[ "$chunks" = "$got" ] || die "sender says $chunks chunks, the receiver wrote $got"
echo "chunks: sender $chunks, receiver $got"

# On a terminal: one line redrawn in place.
rm -rf "$T/c"; mkdir -p "$T/c"; rand_file "$T/c/x" 2000000
script -qec "$SEND -c $T/sender.conf --version 1 $T/c" /dev/null >"$T/tty.out" 2>&1 ||
	die "sluice-send under script failed: $(cat "$T/tty.out")"
[ "$(tr -cd '\r' <"$T/tty.out" | wc -c)" -ge 2 ] || die "no redrawn progress line"
grep -a -q "pass 2 of 2  100.0%" "$T/tty.out" || die "progress line: $(tr '\r' '\n' <"$T/tty.out" | tail -n 3)"
grep -q "carries no approvals" "$T/tty.out" || die "no warning for an unapproved bundle"
echo "progress ok"
