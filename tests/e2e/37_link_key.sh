# The link envelope: with a link key on both ends bundles are released,
# sealed or sealed and encrypted; a sender without the key, or with
# another one, gets nothing through (every datagram dropped as link_auth,
# before any other check); a flood of junk is dropped the same way; a
# receiver without a link key refuses sealed datagrams; a link key file
# readable by others is refused at start.
. "$(dirname "$0")/lib.sh"

JUNK=$ROOT/tests/bin/sluice-junk
keys sender
"$SLUICE" keygen --link -o "$T/link.key" >"$T/keygen.out" || die "keygen --link"
grep -q '^link key id [0-9a-f]\{16\}$' "$T/keygen.out" || die "keygen output: $(cat "$T/keygen.out")"
[ "$(stat -c %a "$T/link.key")" = 600 ] || die "link key mode $(stat -c %a "$T/link.key")"
"$SLUICE" keygen --link -o "$T/other.key" >/dev/null || die "keygen --link other"
receiver_conf 'link_key = "link.key"' 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
start_recv
grep -q "link key [0-9a-f]\{16\} (.*link.key)" "$T/recv.err" || die "link key not logged"

drops() {
	sed -n "s/^sluice_drops_total{reason=\"$1\"} //p" "$T/metrics.prom"
}

note "sealed"
sender_conf "passes = 1" 'link_key = "link.key"'
rand_file "$T/a/w.bin" 3000000
text_file "$T/a/README.md" 20000
send --version 1 "$T/a"
wait_state RELEASED 30
assert_same_tree "$T/a" "$(released a 1)"

note "sealed and encrypted"
sender_conf "passes = 1" 'link_key = "link.key"' 'link_encrypt = true'
text_file "$T/b/config.json" 500000
send --version 1 "$T/b"
wait_until 30 grep -q "bundle=b version=1 state=RELEASED" "$T/quarantine.log" || die "b not released"
assert_same_tree "$T/b" "$(released b 1)"

note "no link key, and another link key"
sleep 1
before=$(drops link_auth)
started=$(grep -c "state=RECEIVING" "$T/quarantine.log")
sender_conf "passes = 1"
rand_file "$T/c/w.bin" 500000
send --version 1 "$T/c"
sender_conf "passes = 1" 'link_key = "other.key"'
send --version 2 "$T/c"
sleep 1.5
! grep -q "bundle=c " "$T/quarantine.log" || die "c got through"
[ "$(grep -c "state=RECEIVING" "$T/quarantine.log")" = "$started" ] ||
	die "a transfer started from datagrams without the link key"
after=$(drops link_auth)
sent=$(grep -o '[0-9]* datagrams' "$T/send.err" | tail -n 2 | awk '{ s += $1 } END { print s }')
[ $((after - before)) -ge "$sent" ] || die "link_auth drops $((after - before)), sent $sent"
echo "refused $((after - before)) datagrams without the link key ($sent sent)"

note "junk"
before=$(drops link_auth)
"$JUNK" --dest "127.0.0.1:$RECV_PORT" --count 20000 --pps 100000 --seed 7 >"$T/junk.out" 2>&1 ||
	die "sluice-junk: $(cat "$T/junk.out")"
sleep 1.5
after=$(drops link_auth)
# Empty datagrams count as short; everything else is link_auth.
short=$(grep -o '[0-9]* empty' "$T/junk.out" | cut -d' ' -f1)
[ $((after - before + ${short:-0})) -ge 19000 ] ||
	die "junk: link_auth drops $((after - before)) of 20000 ($(cat "$T/junk.out"))"
for r in unknown_key bad_signature unknown_transfer heartbeat; do
	[ "$(drops $r)" = 0 ] || die "junk reached the $r check"
done
echo "junk: $((after - before)) dropped as link_auth"
stop_recv

note "a receiver without a link key"
receiver_conf 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
start_recv
sender_conf "passes = 1" 'link_key = "link.key"'
rand_file "$T/d/w.bin" 300000
send --version 1 "$T/d"
sleep 1.5
! grep -q "bundle=d " "$T/quarantine.log" || die "d got through without a key"
[ "$(drops link_auth)" -gt 0 ] || die "sealed datagrams not counted as link_auth"
stop_recv

note "a loose link key file"
chmod 644 "$T/link.key"
receiver_conf 'link_key = "link.key"'
"$RECV" -c "$T/receiver.conf" >"$T/loose.err" 2>&1 && die "started with a 0644 link key"
grep -q "link_key: .*mode 0644; must be 0600" "$T/loose.err" || die "loose key: $(cat "$T/loose.err")"
echo "link envelope ok"
