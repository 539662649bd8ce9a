# A small bundle over a clean link: released bit-exact, staging cleaned,
# the quarantine log tells the whole story, one line per state.
. "$(dirname "$0")/lib.sh"

keys sender
receiver_conf 'metrics_file = "metrics.prom"' 'metrics_interval = 0.5'
sender_conf "passes = 1" "heartbeat_interval = 0.2"
cs=$(chunk_size)
[ -n "$cs" ] || die "no chunk_size from sluice-send -p"
B=$T/bundle
rand_file "$B/empty" 0
rand_file "$B/one" 1
rand_file "$B/chunk-minus-1" $((cs - 1))
rand_file "$B/chunk" "$cs"
rand_file "$B/chunk-plus-1" $((cs + 1))
text_file "$B/docs/README.md" 300000
rand_file "$B/weights/shard-00001.bin" 3000000
mkdir -p "$B/bin"
printf '#!/bin/sh\necho hi\n' >"$B/bin/run.sh"
chmod +x "$B/bin/run.sh"

start_recv
send --version 1.0 "$B"
wait_state RELEASED 60
R=$(released bundle 1.0)
assert_same_tree "$B" "$R"
[ -x "$R/bin/run.sh" ] || die "executable bit lost"
[ -x "$R/docs/README.md" ] && die "executable bit invented"
# The states in order, and nothing else for this transfer.
states=$(grep -v 'transfer=- ' "$T/quarantine.log" |
    sed -n 's/.* state=\([A-Z]*\) .*/\1/p' | tr '\n' ' ')
[ "$states" = "RECEIVING COMPLETE VERIFYING RELEASED " ] ||
	die "unexpected states: $states"
grep -q 'bundle=bundle version=1.0 state=RELEASED' "$T/quarantine.log" ||
	die "RELEASED line lacks bundle and version"
sleep 0.3
[ -z "$(staging_leftovers)" ] || die "staging not cleaned: $(staging_leftovers)"
# A second run of the same transfer is a carousel repeat: no second release.
send --version 1.0 "$B"
sleep 1
[ "$(grep -c 'state=RELEASED' "$T/quarantine.log")" = 1 ] || die "released twice"
# Link status from heartbeats: up while the sender talks, down after three
# missed intervals.
grep -q 'transfer=- bundle=- version=- state=LINK_UP reason=heartbeat' \
    "$T/quarantine.log" || die "no LINK_UP"
sleep 1.5
grep -q 'state=LINK_DOWN reason=missed_heartbeats' "$T/quarantine.log" ||
	die "no LINK_DOWN"
grep -q '^sluice_transfers_total{state="released"} 1$' "$T/metrics.prom" ||
	die "metrics: $(grep released "$T/metrics.prom")"
grep -q '^sluice_link_up 0$' "$T/metrics.prom" || die "metrics: link still up"
d=$(sed -n 's/^sluice_datagrams_total //p' "$T/metrics.prom")
[ "${d:-0}" -gt 1000 ] || die "metrics: datagrams $d"
grep -q '^sluice_drops_total{reason="symbol_hash"} 0$' "$T/metrics.prom" ||
	die "metrics: drops"
stop_recv
r=$(counter redundant)
[ "${r:-0}" -gt 0 ] || die "repeat not counted as redundant"
echo "ok: released $(du -sb "$R" | cut -f1) bytes"
