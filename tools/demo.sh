#!/bin/bash
# make demo: one transfer end to end on 127.0.0.1, through the link
# emulator at 5% random loss plus bursts, then published into a model
# directory by sluice-publish.  Everything lives in a temporary
# directory and everything started here is stopped on exit.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/sluice-demo.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
cd "$D" || exit 1

echo "== keys"
"$ROOT/tools/sluice" keygen -o sender || exit 1

echo "== a sample bundle"
mkdir -p bundle/weights bundle/tokenizer
head -c 8000000 /dev/urandom >bundle/weights/model-00001-of-00002.safetensors
head -c 4000000 /dev/urandom >bundle/weights/model-00002-of-00002.safetensors
for i in $(seq 1 3000); do echo "{\"token\": \"t$i\", \"id\": $i}"; done \
    >bundle/tokenizer/tokenizer.json
printf '{"model_type": "demo", "hidden_size": 512}\n' >bundle/config.json
printf '# Demo model\n\nA model card for the demo bundle.\n' >bundle/README.md
(cd bundle && find . -type f | sort | xargs ls -l | awk '{print "  " $5 "\t" $9}')

cat >receiver.conf <<CONF
listen = "127.0.0.1:17700";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "quarantine.log";
transfer_timeout = 20;
CONF
cat >sender.conf <<CONF
destination = "127.0.0.1:17701";
key = "sender.key";
rate = "400M";
passes = 2;
CONF

echo "== sluice-recv, sluice-link (5% loss + 1% in bursts of 50), sluice-send"
"$ROOT/receiver/sluice-recv" -c receiver.conf 2>recv.err &
PIDS+=($!)
"$ROOT/tools/sluice-link" --listen 127.0.0.1:17701 \
    --forward 127.0.0.1:17700 --loss 0.05 --burst-rate 0.01 \
    --burst-len 50 --seed 42 2>link.err &
LINK=$!
PIDS+=($LINK)
sleep 0.5
"$ROOT/sender/sluice-send" -c sender.conf --name demo-model \
    --version 1.0.0 bundle || { cat recv.err link.err; exit 1; }

for i in $(seq 1 300); do
	grep -q "state=RELEASED" quarantine.log 2>/dev/null && break
	grep -Eq "state=(REJECTED|INCOMPLETE)" quarantine.log 2>/dev/null && break
	sleep 0.1
done
kill "$LINK" 2>/dev/null; wait "$LINK" 2>/dev/null
echo "== link emulator"
tail -n 1 link.err
echo "== quarantine log"
cat quarantine.log
echo "== released tree: store/demo-model/1.0.0"
if [ -d store/demo-model/1.0.0 ]; then
	(cd store/demo-model/1.0.0 && find . -type f | sort | xargs sha256sum)
	# The release also carries the manifest it was verified against.
	diff -r -x .sluice bundle store/demo-model/1.0.0 &&
		echo "== identical to the source bundle, plus .sluice/manifest"
else
	echo "not released"; cat recv.err; exit 1
fi
echo "== sluice-publish --once: into a model directory"
cat >publish.conf <<'CONF'
store_dir = "store";
state_dir = "publish-state";
publish_log = "publish.log";
stores = ( { name = "models"; type = "directory"; path = "models"; } );
rules = ( { bundles = ".*"; stores = [ "models" ]; } );
CONF
"$ROOT/receiver/publish/sluice-publish" --once -c publish.conf || exit 1
cat publish.log
"$ROOT/tools/sluice" publish status -c publish.conf
ls -l models/demo-model
diff -r bundle models/demo-model/latest &&
	echo "== models/demo-model/latest is the bundle, without .sluice/"
