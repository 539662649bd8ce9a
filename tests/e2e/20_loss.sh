# 200 files, sizes 0 B to 64 MiB (300 MiB in all; SLUICE_E2E_SCALE=small
# makes it 1/8 of that) through 5% random loss plus 1% of datagrams lost in
# bursts of 50, fec_overhead 25, interleave 8, one pass: released bit-exact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bundle.sh"

keys sender
receiver_conf
LINK_ARGS=1
sender_conf "passes = 1" "fec_overhead = 25" "interleave = 8"
make_big_bundle "$T/bundle" "$(chunk_size)"
start_recv
start_link --loss 0.05 --burst-rate 0.01 --burst-len 50 --seed 11
send --version 2.0 "$T/bundle"
wait_state RELEASED 300
assert_same_tree "$T/bundle" "$(released bundle 2.0)"
stop_link
stop_recv
cat "$T/link.stats"
echo "repaired=$(counter chunks_repaired) chunks=$(counter chunks_done)"
[ "$(counter chunks_repaired)" -gt 0 ] || die "no chunk needed repair: was there loss?"
