# 1% of datagrams with a flipped bit, 10% duplicated, reordering up to depth
# 500, on top of 5% loss: released bit-exact; corrupted datagrams are
# counted drops before the decoder, never decode or chunk-hash failures.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bundle.sh"

keys sender
receiver_conf
LINK_ARGS=1
sender_conf "passes = 1" "fec_overhead = 25" "interleave = 8"
make_big_bundle "$T/bundle" "$(chunk_size)"
start_recv
start_link --loss 0.05 --corrupt 0.01 --duplicate 0.10 --reorder 0.2 \
    --reorder-depth 500 --seed 13
send --version 4.0 "$T/bundle"
wait_state RELEASED 300
assert_same_tree "$T/bundle" "$(released bundle 4.0)"
stop_link
stop_recv
cat "$T/link.stats"
corrupted=$(grep -o 'corrupted=[0-9]*' "$T/link.stats" | cut -d= -f2)
[ "$corrupted" -gt 0 ] || die "the link corrupted nothing"
hash=$(counter drop_symbol_hash); hash=${hash:-0}
other=0
for c in drop_bad_signature drop_geometry drop_param drop_reserved \
    drop_unknown_transfer drop_param_mismatch drop_magic drop_version \
    drop_type drop_flags drop_length drop_short drop_unknown_key \
    drop_descriptor_conflict drop_heartbeat; do
	v=$(counter $c); other=$((other + ${v:-0}))
done
echo "corrupted=$corrupted symbol_hash=$hash other_drops=$other"
[ $((hash + other)) -gt 0 ] || die "no corrupted datagram was counted"
[ -z "$(counter drop_decode_failed)" ] || die "decode failures"
[ -z "$(counter drop_chunk_hash)" ] || die "chunk hash failures"
