# The whole pipeline into real servers: sluice-send -> loopback ->
# sluice-recv releases -> the sluice-publish daemon, with a publish.conf
# in the shape of the interface (stores models, registry, objects; one
# rule ".*" to all three) -> a model directory, Debian's docker-registry
# and s3rver.  A bundle with an OCI image layout at images/team/app/, a
# 200 MiB file (multipart) and small files is released while the registry
# and the S3 server are down: PUBLISH_FAILED with retries left, then,
# once they are back, PUBLISHED exactly once per store; skopeo inspect
# shows the bundle's digest and a copy back out is byte-identical; s3cmd
# lists the version with its manifest object and downloads the manifest's
# hashes; the model directory holds the bytes and latest.  The publisher
# killed (SIGKILL) mid-way through the 200 MiB multipart upload: no
# manifest object (nor the big object) under the version while it is
# down, and after the restart the version is complete and published once.
# A layout blob not named by its hash: the registry store refuses the
# bundle for good (blob_digest_mismatch); the other two publish it.
# About 25 s on two cores, and up to 1 GiB under $T (the 200 MiB file as
# source, release and two S3 versions, and a download).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/publish_lib.sh"

PUB=${SLUICE_PUBLISH:-$ROOT/receiver/publish/sluice-publish}
need_registry
need_s3rver
command -v s3cmd >/dev/null ||
	{ echo "SKIP: s3cmd not installed (make deps)"; exit 77; }
LOG=$T/publish.log
BIG=$((200 * 1024 * 1024))

# lines STATE [NAME VERSION STORE]: publish-log lines of that state
lines() {
	grep -c "bundle=${2:-[^ ]*} version=${3:-[^ ]*} store=${4:-[^ ]*} \
state=$1 " "$LOG" 2>/dev/null
}
published() { [ "$(lines PUBLISHED "$@")" = 1 ]; }
failed_twice() { [ "$(lines PUBLISH_FAILED "$@")" -ge 2 ]; }

# once NAME VERSION: exactly one PUBLISHED line for each of the stores
once() {
	local s
	for s in models registry objects; do
		[ "$(lines PUBLISHED "$1" "$2" $s)" = 1 ] ||
			die "$1 $2: $(lines PUBLISHED "$1" "$2" $s) PUBLISHED lines for $s"
	done
}

# release NAME VERSION: sends $T/src/NAME as VERSION, waits for it
release() {
	send --version "$2" "$T/src/$1"
	wait_until 60 grep -q "bundle=$1 version=$2 state=RELEASED" \
	    "$T/quarantine.log" || die "$1 $2 not released"
}

start_pub() {
	"$PUB" -c "$T/publish.conf" 2>>"$T/pub.err" &
	PUB_PID=$!
	PIDS+=("$PUB_PID")
}

s3() { s3cmd -c "$T/s3cfg" "$@"; }

# s3_keys PREFIX: the keys s3cmd lists under s3://models/PREFIX, sorted
s3_keys() {
	s3 ls -r "s3://models/$1" | sed 's|.* s3://models/||' | sort
}

# check_s3 NAME VERSION: s3cmd lists the version's files and its two
# .sluice objects, and what it downloads has the manifest's hashes and
# the bundle's bytes
check_s3() {
	local d=$T/dl/$1/$2 r
	r=$(released "$1" "$2")
	[ "$(s3_keys "$1/$2/")" = "$( (awk -v p="$1/$2/" \
	    '$1 == "file" { print p $5 }' "$r/.sluice/manifest"
	    echo "$1/$2/.sluice/approvals"; echo "$1/$2/.sluice/manifest") |
	    sort)" ] || die "s3 listing of $1/$2: $(s3_keys "$1/$2/")"
	rm -rf "$d"
	mkdir -p "$d"
	s3 get -r --no-progress "s3://models/$1/$2/" "$d/" >/dev/null ||
		die "s3cmd get $1/$2"
	cmp -s "$d/.sluice/manifest" "$r/.sluice/manifest" ||
		die "$1/$2: the manifest object is not the release's"
	# The manifest's hashes, the source's and the download's.
	[ "$(awk '$1 == "file" { print $2 "  ./" $5 }' "$r/.sluice/manifest" |
	    sort -k 2)" = "$(sort -k 2 "$T/src-$1.sums")" ] ||
		die "$1/$2: the manifest's hashes are not the source's"
	(cd "$d" && sha256sum -c --quiet "$T/src-$1.sums") >"$T/sums.out" 2>&1 ||
		die "$1/$2: downloads differ: $(head -n 5 "$T/sums.out")"
	rm -rf "$d"
}

# ---- the sources -------------------------------------------------------
# llm: an OCI layout (one tagged image), the 200 MiB file, small files
S=$T/src/llm
mkdir -p "$S/images/team/app"
read -r dig size <<<"$(image "$S/images/team/app" "hello from the high side")"
layout "$S/images/team/app" "$dig" "$size" 1.0
rand_file "$S/model.safetensors" $BIG
text_file "$S/config.json" 3000
rand_file "$S/tokenizer/tokenizer.json" 200000
(cd "$S" && find . -type f | sort | xargs sha256sum) >"$T/src-llm.sums"
# badimg: a layout with a blob whose name is not its hash
S=$T/src/badimg
mkdir -p "$S/images/team/bad"
read -r bdig bsize <<<"$(image "$S/images/team/bad" "tampered")"
layout "$S/images/team/bad" "$bdig" "$bsize" 1.0
skewed=$(skew_blob "$S/images/team/bad" "$bdig")
text_file "$S/README" 500
(cd "$S" && find . -type f | sort | xargs sha256sum) >"$T/src-badimg.sums"

keys sender
keys audit
receiver_conf
sender_conf "passes = 1" "heartbeat_interval = 0.2"
start_recv

# ---- servers, configuration --------------------------------------------
# Both started once for their ports and the bucket, then stopped: the
# first release finds them down.
start_registry
start_s3
printf 'access_key_id = S3RVER\nsecret_access_key = S3RVER\n' \
    >"$T/s3.credentials"
chmod 600 "$T/s3.credentials"
cat >"$T/s3cfg" <<EOF
[default]
access_key = S3RVER
secret_key = S3RVER
host_base = 127.0.0.1:$S3_PORT
host_bucket = 127.0.0.1:$S3_PORT
use_https = False
signature_v2 = False
EOF
cat >"$T/publish.conf" <<CONF
store_dir = "store";
state_dir = "pubstate";
publish_log = "publish.log";
stores = (
  { name = "models";   type = "directory"; path = "models"; },
  { name = "registry"; type = "oci"; registry = "$REG"; tls_verify = false; },
  { name = "objects";  type = "s3"; endpoint = "http://127.0.0.1:$S3_PORT"; bucket = "models";
    prefix = ""; region = "us-east-1"; credentials = "s3.credentials";
    part_size = "20M"; }
);
rules = ( { bundles = ".*"; stores = [ "models", "registry", "objects" ]; } );
audit_key = "audit.key";
retries = 50;
retry_backoff = 0.2;
retry_backoff_max = 1;
CONF
"$PUB" -n -c "$T/publish.conf" >/dev/null || die "publish.conf refused"
stop_registry
stop_s3

# ---- (a) released while the registry and S3 are down --------------------
t0=$(date +%s)
start_pub
release llm 1.0
note "llm 1.0 released in $(($(date +%s) - t0)) s"
wait_until 30 published llm 1.0 models || die "llm 1.0 not in the models store"
wait_until 30 failed_twice llm 1.0 registry || die "registry: no retries"
wait_until 30 failed_twice llm 1.0 objects || die "objects: no retries"
# The first failure: retry_backoff 0.2 s, which whole seconds make 1 s;
# skopeo's own quoting is undone before the log quotes the detail once.
grep -q 'bundle=llm version=1.0 store=registry state=PUBLISH_FAILED reason=push_failed detail=".*Get \\"http://'"$REG"'/v2/\\": .*connection refused; retry in 1s, 50 left"$' \
    "$LOG" || die "registry down: $(grep store=registry "$LOG")"
grep -q 'bundle=llm version=1.0 store=objects state=PUBLISH_FAILED reason=upload_failed detail=".*retry in 1s, 50 left"$' \
    "$LOG" || die "S3 down: $(grep store=objects "$LOG")"
[ "$(lines PUBLISHED llm 1.0)" = 1 ] || die "published to a store that is down"
start_registry
start_s3 "$S3_PORT"
t1=$(date +%s)
wait_until 60 published llm 1.0 registry || die "registry: not published once back"
wait_until 60 published llm 1.0 objects || die "objects: not published once back"
note "llm 1.0 in both servers $(($(date +%s) - t1)) s after they came back"

# ---- what each store holds ----------------------------------------------
note "registry: the bundle's digest, and the same bytes back out"
got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
    "docker://$REG/team/app:1.0") || die "skopeo inspect"
[ "$got" = "sha256:$dig" ] || die "team/app:1.0 is $got, the bundle's sha256:$dig"
skopeo --insecure-policy copy -q --preserve-digests --src-tls-verify=false \
    "docker://$REG/team/app:1.0" "dir:$T/out" || die "skopeo copy back out"
L=$T/src/llm/images/team/app/blobs/sha256
cmp -s "$T/out/manifest.json" "$L/$dig" || die "the manifest came back changed"
n=0
for f in "$T"/out/*; do
	case ${f##*/} in manifest.json | version) continue ;; esac
	cmp -s "$f" "$L/${f##*/}" || die "blob ${f##*/} differs after the round trip"
	n=$((n + 1))
done
[ "$n" = 2 ] || die "copied back $n blobs, expected the config and the layer"

note "S3: s3cmd lists and downloads the manifest's files"
check_s3 llm 1.0
[ "$(grep -c 'model.safetensors?partNumber=[0-9]*&' "$T/s3.log")" = 10 ] ||
	die "the 200 MiB file was not sent in 10 parts: $(grep -c partNumber "$T/s3.log")"

note "model directory: the bytes, and latest"
diff -r "$T/src/llm" "$T/models/llm/1.0" >/dev/null || die "models/llm/1.0 differs"
[ -e "$T/models/llm/1.0/.sluice" ] && die ".sluice/ in the model directory"
[ "$(readlink "$T/models/llm/latest")" = 1.0 ] || die "latest is not 1.0"

note "the log, status and the audit chain"
once llm 1.0
"$SLUICE" publish status -c "$T/publish.conf" >"$T/status.out" ||
	die "publish status"
for s in models registry objects; do
	grep -Eq "^llm +1\.0 +$s +PUBLISHED +ok +-$" "$T/status.out" ||
		die "status: $(cat "$T/status.out")"
done
"$SLUICE" audit verify "$T/pubstate/publish-audit.log" --key "$T/audit.pub" \
    >/dev/null 2>&1 || die "the publisher's audit log does not verify"
[ "$(grep -c 'decision=PUBLISHED .*bundle=llm version=1.0 ' \
    "$T/pubstate/publish-audit.log")" = 3 ] || die "audit: not one record per store"

# ---- (b) killed mid-way through the multipart upload ------------------------
# s3rver is stopped as soon as it has a second part of llm 2.0's big file,
# so the publisher is surely inside that upload when it is killed.
note "kill -9 during the 200 MiB upload"
mid() { grep -q 'llm/2.0/model.safetensors?partNumber=2&' "$T/s3.log"; }
release llm 2.0
wait_until 60 mid || die "no multipart upload of llm 2.0 seen"
kill -STOP "$S3_PID"
kill -9 "$PUB_PID"
wait "$PUB_PID" 2>/dev/null
kill -CONT "$S3_PID"
[ "$(lines PUBLISHING llm 2.0 objects)" = 1 ] || die "not publishing to objects"
[ "$(lines PUBLISHED llm 2.0 objects)" = 0 ] || die "the kill came too late"
keys=$(s3_keys llm/2.0/)
echo "$keys" | grep -q '\.sluice/manifest' &&
	die "a manifest object under llm/2.0 while the publisher is down: $keys"
echo "$keys" | grep -q 'model.safetensors' &&
	die "a part of the upload is visible under llm/2.0: $keys"
start_pub
wait_until 60 published llm 2.0 objects || die "llm 2.0 not published after the restart"
grep -q 'bundle=llm version=2.0 store=objects state=PUBLISHING reason=resumed' \
    "$LOG" || die "the second attempt is not marked resumed"
once llm 2.0
check_s3 llm 2.0
diff -r "$T/src/llm" "$T/models/llm/2.0" >/dev/null || die "models/llm/2.0 differs"
[ "$(readlink "$T/models/llm/latest")" = 2.0 ] || die "latest is not 2.0"

# ---- (c) a layout blob not named by its hash --------------------------------
note "a blob whose name is not its digest"
release badimg 1.0
wait_until 30 published badimg 1.0 objects || die "badimg not in objects"
wait_until 30 published badimg 1.0 models || die "badimg not in models"
wait_until 10 grep -q "bundle=badimg version=1.0 store=registry state=PUBLISH_FAILED" \
    "$LOG" || die "badimg: no PUBLISH_FAILED for the registry"
grep -q "bundle=badimg version=1.0 store=registry state=PUBLISH_FAILED reason=blob_digest_mismatch detail=\"images/team/bad/blobs/sha256/$skewed: " \
    "$LOG" || die "badimg: $(grep 'bundle=badimg.*registry' "$LOG")"
sleep 2 # a permanent refusal is not retried
[ "$(lines PUBLISH_FAILED badimg 1.0 registry)" = 1 ] || die "badimg retried"
[ "$(lines PUBLISHING badimg 1.0 registry)" = 1 ] || die "badimg retried"
skopeo inspect --tls-verify=false "docker://$REG/team/bad:1.0" \
    >/dev/null 2>&1 && die "team/bad:1.0 is in the registry"
"$SLUICE" publish status -c "$T/publish.conf" >"$T/status.out" ||
	die "publish status"
grep -Eq '^badimg +1\.0 +registry +PUBLISH_FAILED +blob_digest_mismatch +0$' \
    "$T/status.out" || die "status: $(cat "$T/status.out")"
check_s3 badimg 1.0
diff -r "$T/src/badimg" "$T/models/badimg/1.0" >/dev/null ||
	die "models/badimg/1.0 differs"

kill "$PUB_PID"
wait "$PUB_PID" || die "sluice-publish did not exit 0 on SIGTERM"
"$SLUICE" audit verify "$T/pubstate/publish-audit.log" --key "$T/audit.pub" \
    >/dev/null 2>&1 || die "the publisher's audit log does not verify at the end"
[ "$(lines PUBLISHED)" = 8 ] || die "$(lines PUBLISHED) PUBLISHED lines, wanted 8"
stop_recv
echo "ok: $(lines PUBLISHED) publications in $(($(date +%s) - t0)) s"
