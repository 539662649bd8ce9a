# make_big_bundle DIR CHUNK_SIZE: the acceptance bundle.  200 files with
# sizes 0, 1, chunk size +- 1, up to 64 MiB, 300 MiB in all (or 1/8 with
# SLUICE_E2E_SCALE=small): random shards, text and JSON.
make_big_bundle() {
	local d=$1 cs=$2 div=1 i
	[ "${SLUICE_E2E_SCALE:-full}" = small ] && div=8
	mkdir -p "$d/shards" "$d/text" "$d/misc"
	rand_file "$d/misc/empty" 0
	rand_file "$d/misc/one" 1
	rand_file "$d/misc/chunk-minus-1" $((cs - 1))
	rand_file "$d/misc/chunk" "$cs"
	rand_file "$d/misc/chunk-plus-1" $((cs + 1))
	rand_file "$d/shards/big-64M.bin" $((64 * 1048576 / div))
	for i in $(seq 1 4); do
		rand_file "$d/shards/shard-$i.bin" $((40 * 1048576 / div))
	done
	for i in $(seq 1 20); do
		rand_file "$d/shards/small-$i.bin" $((3 * 1048576 / div + i))
	done
	for i in $(seq 1 60); do
		text_file "$d/text/doc-$i.txt" $((50000 + i * 977))
	done
	for i in $(seq 1 110); do
		rand_file "$d/misc/f$i/blob" $((i * 4099 % 200000))
	done
}
