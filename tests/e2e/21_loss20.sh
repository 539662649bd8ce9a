# The acceptance bundle through 20% random loss with three passes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bundle.sh"

keys sender
receiver_conf
LINK_ARGS=1
sender_conf "passes = 3" "fec_overhead = 25" "interleave = 8" \
    "encode_threads = 2"
make_big_bundle "$T/bundle" "$(chunk_size)"
start_recv
start_link --loss 0.20 --seed 12
send --version 3.0 "$T/bundle"
wait_state RELEASED 300
assert_same_tree "$T/bundle" "$(released bundle 3.0)"
stop_link
stop_recv
cat "$T/link.stats"
