# sluice link-report: a transfer captured (tcpdump -w on loopback) behind
# sluice-link with seeded random loss and bursts is reported with the
# link's own truth (its --lost-log): loss within 0.5 points, mean loss
# burst within 10%; --json says the same; the recommended fec_overhead,
# interleave and passes, applied, deliver the next transfer through the
# same impairment (another seed) in 1 pass.  A capture of junk reports
# no transfer and no recommendation, and a missing file fails the run.
. "$(dirname "$0")/lib.sh"

command -v tcpdump >/dev/null || die "no tcpdump (make deps)"
IMPAIR="--loss 0.03 --burst-rate 0.03 --burst-len 6"
keys sender
receiver_conf
LINK_ARGS=1
RATE=200M sender_conf "passes = 1" "fec_overhead = 25" "interleave = 8"

rand_file "$T/a/weights.bin" 12000000
rand_file "$T/a/tokenizer.json" 54321
capture "$T/link.pcap"
start_link $IMPAIR --seed 7 --lost-log "$T/lost.txt"
send --version 1 "$T/a"
stop_capture
stop_link

note "the link's truth"
received=$(sed -n 's/.*received=\([0-9]*\).*/\1/p' "$T/link.stats" | tail -n 1)
read -r true_loss true_mean <<<"$(awk -v n="$received" '
	NR > 1 && $1 != prev + 1 { runs++ }
	{ prev = $1; lost++ }
	END { if (lost) runs++; printf "%.4f %.4f\n", 100 * lost / n, lost / runs }
' "$T/lost.txt")"
echo "link: received $received, loss $true_loss%, mean burst $true_mean"

note "the report"
"$SLUICE" link-report "$T/link.pcap" --port "$RECV_PORT" >"$T/report.txt" ||
	die "link-report failed"
cat "$T/report.txt"
[ "$(grep -c '^session ' "$T/report.txt")" = 1 ] || die "not one session"
loss=$(sed -n 's/^  loss \([0-9.]*\)%.*/\1/p' "$T/report.txt")
mean=$(sed -n 's/.*mean length \([0-9.]*\),.*/\1/p' "$T/report.txt")
awk -v a="$loss" -v b="$true_loss" 'BEGIN { d = a - b; exit !(d < 0.5 && d > -0.5) }' ||
	die "loss $loss% is not within 0.5 points of $true_loss%"
awk -v a="$mean" -v b="$true_mean" 'BEGIN { exit !(a > b * 0.9 && a < b * 1.1) }' ||
	die "mean burst $mean is not within 10% of $true_mean"
grep -q '^  heartbeats [1-9]' "$T/report.txt" || die "no heartbeats seen"
grep -q '^transfer [0-9a-f]*: 3 objects' "$T/report.txt" ||
	die "the transfer's geometry was not read"

note "--json says the same"
"$SLUICE" link-report "$T/link.pcap" --port "$RECV_PORT" --json >"$T/report.json"
python3 - "$T/report.json" "$loss" "$mean" <<'PY' || die "--json disagrees"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["sessions"][0]
assert abs(s["loss_pct"] - float(sys.argv[2])) < 0.01, s["loss_pct"]
assert abs(s["burst_mean"] - float(sys.argv[3])) < 0.01, s["burst_mean"]
assert sum(s["burst_lengths"].values()) == s["bursts"]
rec = r["recommendation"]
assert rec["passes"] >= 1 and rec["fec_overhead"] >= 0, rec
PY

note "the recommendation, applied, delivers the next transfer in 1 pass"
rec=$(sed -n 's/^recommendation: \(fec_overhead = .*\)/\1/p' "$T/report.txt")
[ -n "$rec" ] || die "no recommendation"
overhead=$(sed -n 's/.*fec_overhead = \([0-9]*\);.*/\1/p' <<<"$rec")
interleave=$(sed -n 's/.*interleave = \([0-9]*\);.*/\1/p' <<<"$rec")
passes=$(sed -n 's/.*passes = \([0-9]*\);.*/\1/p' <<<"$rec")
[ "$passes" = 1 ] || die "recommended $passes passes for this link"
RATE=200M sender_conf "passes = 1" "fec_overhead = $overhead" \
    "interleave = $interleave"
rand_file "$T/b/weights.bin" 12000000
rand_file "$T/b/config.json" 999
start_recv
start_link $IMPAIR --seed 8
send --version 2 "$T/b"
wait_state RELEASED 60
assert_same_tree "$T/b" "$(released b 2)"
stop_link
stop_recv

note "junk: no transfer, no recommendation; a missing file fails"
MANGLE=$ROOT/tests/bin/pcap-mangle
"$MANGLE" "$T/link.pcap" "$T/junk.pcap" --drop 1 --junk 3000 --seed 3 ||
	die "pcap-mangle failed"
"$SLUICE" link-report "$T/junk.pcap" >"$T/junk.txt" 2>"$T/junk.err" ||
	die "link-report on junk failed: $(cat "$T/junk.err")"
cat "$T/junk.txt"
grep -q '^transfer ' "$T/junk.txt" && die "junk made a transfer"
grep -q '^recommendation: none' "$T/junk.txt" || die "junk made a recommendation"
"$SLUICE" link-report "$T/nothing.pcap" >/dev/null 2>&1 &&
	die "a missing file did not fail the report"
true
