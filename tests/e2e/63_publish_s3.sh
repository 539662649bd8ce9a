# sluice-publish's S3 store (receiver/publish/s3.c, driven by
# tests/bin/pubstore) against a real S3 server: s3rver, installed by make
# deps (tools/npm-deps.sh; the test skips when it cannot be).  A signed
# bundle released by a real receiver is published; every object is in the
# store with the release's bytes and x-amz-meta-sha256, the 12 MiB file
# went up in three 5 MiB-part multipart pieces, the manifest object was
# stored last; a second publish uploads nothing; a damaged version is
# repaired (manifest withdrawn first); an object with bad bytes is caught
# on read-back and replaced by the retry; wrong keys, a loose credentials
# file and a server that is down fail with their reasons.  When botocore
# is importable, every request also passes tests/tools/s3-sigv4-proxy.py,
# which checks its SigV4 signature the way S3 does (s3rver does not).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/publish_lib.sh"

PUBSTORE=$ROOT/tests/bin/pubstore
[ -x "$PUBSTORE" ] || die "no $PUBSTORE (make tests/bin/pubstore)"
need_s3rver

# A signed bundle through a real receiver: a 12 MiB file (multipart at
# 5 MiB parts), small files, an empty one, a name that needs escaping.
keys sender
keys alice
receiver_conf 'approvers = [ "alice.pub" ]' 'approval_threshold = 1'
sender_conf "passes = 1"
B=$T/tiny-llama
rand_file "$B/model.safetensors" $((12 * 1024 * 1024))
text_file "$B/config.json" 2000
rand_file "$B/tokenizer/vocab a+b.txt" 70000
rand_file "$B/empty" 0
"$SLUICE" bundle create "$B" --name tiny-llama --version 1.0 >/dev/null ||
	die "bundle create"
"$SLUICE" bundle sign "$B" --key "$T/alice.key" >/dev/null || die "sign"
start_recv
send "$B"
wait_state RELEASED 60
R=$(released tiny-llama 1.0)
assert_same_tree "$B" "$R"
[ -s "$R/.sluice/approvals" ] || die "the release has no approvals"

start_s3
ENDPOINT=http://127.0.0.1:$S3_PORT
if python3 -c 'import botocore' 2>/dev/null; then
	python3 "$ROOT/tests/tools/s3-sigv4-proxy.py" "$S3_PORT" S3RVER S3RVER \
	    >"$T/proxy.log" 2>&1 &
	PIDS+=("$!")
	wait_until 5 grep -q "listening on" "$T/proxy.log" ||
		die "s3-sigv4-proxy did not start: $(cat "$T/proxy.log")"
	ENDPOINT=http://127.0.0.1:$(sed -n 's/listening on 127.0.0.1://p' "$T/proxy.log")
	note "signatures checked by botocore (s3-sigv4-proxy)"
else
	note "no botocore: signatures not checked (s3rver does not)"
fi
printf '# test keys: s3rver'"'"'s built-in account\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\n' \
    >"$T/s3.credentials"
chmod 600 "$T/s3.credentials"
PREFIX=site/a
PUB=(s3 "$R" "bucket=models" "prefix=$PREFIX" "region=us-east-1"
    "part_size=5242880")

# pub ENDPOINT CREDENTIALS: pubstore's one line of output
pub() {
	"$PUBSTORE" "${PUB[@]}" "endpoint=$1" "credentials=$2" 2>&1
}
stored() { grep -ac 'Stored object' "$T/s3.log"; }
obj() { echo "$S3_DATA/models/$PREFIX/tiny-llama/1.0/$1._S3rver_object"; }
meta() { echo "$S3_DATA/models/$PREFIX/tiny-llama/1.0/$1._S3rver_metadata.json"; }

note "publish"
out=$(pub "$ENDPOINT" "$T/s3.credentials")
[ "$out" = ok ] || die "publish: $out"
files=$(cd "$R" && find . -type f | sed 's|^\./||' | sort)
[ "$(echo "$files" | wc -l)" = 6 ] || die "release files: $files"
while IFS= read -r f; do
	cmp -s "$R/$f" "$(obj "$f")" || die "object $f differs from the release"
	sum=$(sha256sum <"$R/$f" | cut -c1-64)
	grep -q "\"x-amz-meta-sha256\": \"$sum\"" "$(meta "$f")" ||
		die "object $f: x-amz-meta-sha256 is not $sum: $(cat "$(meta "$f")")"
done <<<"$files"
# A real S3 request signed by curl: the listing has the six keys, a GET
# the manifest's bytes and its x-amz-meta-sha256.
s3curl() {
	curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER \
	    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
list=$(s3curl "http://127.0.0.1:$S3_PORT/models?prefix=$PREFIX/tiny-llama/1.0/") ||
	die "listing failed"
n=$(echo "$list" | grep -o '<Key>[^<]*</Key>' | wc -l)
[ "$n" = 6 ] || die "listing has $n keys: $list"
echo "$list" | grep -q "<Key>$PREFIX/tiny-llama/1.0/tokenizer/vocab a+b.txt</Key>" ||
	die "escaped name missing from the listing: $list"
s3curl -D "$T/man.hdr" -o "$T/man.got" \
    "http://127.0.0.1:$S3_PORT/models/$PREFIX/tiny-llama/1.0/.sluice/manifest" ||
	die "GET manifest failed"
cmp -s "$T/man.got" "$R/.sluice/manifest" || die "manifest object differs"
grep -qi "^x-amz-meta-sha256: $(sha256sum <"$R/.sluice/manifest" | cut -c1-64)" \
    "$T/man.hdr" || die "GET manifest: no x-amz-meta-sha256: $(cat "$T/man.hdr")"
# Multipart for the 12 MiB file: three parts, and only for it.
[ "$(grep -c 'Stored part [0-9]* of' "$T/s3.log")" = 3 ] ||
	die "parts stored: $(grep 'Stored part' "$T/s3.log")"
grep -q 'Stored part 3 of' "$T/s3.log" || die "no part 3"
grep -q 'model.safetensors?uploads=' "$T/s3.log" || die "no CreateMultipartUpload"
# The manifest object last.
grep 'Stored object' "$T/s3.log" | tail -n 1 |
    grep -q "$PREFIX/tiny-llama/1.0/.sluice/manifest\"" ||
	die "the manifest was not stored last: $(grep 'Stored object' "$T/s3.log")"
[ "$(stored)" = 6 ] || die "$(stored) objects stored, wanted 6"

note "publish again: a check, not a copy"
out=$(pub "$ENDPOINT" "$T/s3.credentials")
[ "$out" = ok ] || die "second publish: $out"
[ "$(stored)" = 6 ] || die "second publish stored again: $(stored) objects"
[ "$(grep -c 'Stored part' "$T/s3.log")" = 3 ] || die "second publish sent parts"

note "a lost object: manifest withdrawn, the object alone uploaded again"
rm -f "$(obj config.json)"*
out=$(pub "$ENDPOINT" "$T/s3.credentials")
[ "$out" = ok ] || die "repair: $out"
# (s3rver answers 204 to a DELETE only)
grep -aq "tiny-llama/1.0/.sluice/manifest 204 " "$T/s3.log" ||
	die "the manifest was not withdrawn before the repair"
[ "$(stored)" = 8 ] || die "repair stored $(stored) objects, wanted 6 + 2"
cmp -s "$R/config.json" "$(obj config.json)" || die "config.json not repaired"

note "bytes damaged in the store behind right metadata: caught on read-back"
# With the manifest gone the next publish verifies again; the damaged
# object (same size) passes HEAD and fails the read-back, is deleted, and
# the retry uploads it.
rm -f "$(obj .sluice/manifest)"*
printf 'X' | dd of="$(obj "tokenizer/vocab a+b.txt")" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$(pub "$ENDPOINT" "$T/s3.credentials")
case $out in
"fail digest_mismatch "*"tokenizer/vocab a+b.txt"*) ;;
*) die "damaged object: $out" ;;
esac
[[ $out == *"(permanent)" ]] && die "a digest mismatch in the store made permanent"
[ -e "$(obj .sluice/manifest)" ] && die "manifest written over a damaged object"
out=$(pub "$ENDPOINT" "$T/s3.credentials")
[ "$out" = ok ] || die "retry after the damage: $out"
cmp -s "$R/tokenizer/vocab a+b.txt" "$(obj "tokenizer/vocab a+b.txt")" ||
	die "damaged object not replaced"

note "wrong keys: reason credentials, retryable"
printf 'access_key_id = NOSUCHKEY\nsecret_access_key = S3RVER\n' >"$T/wrong.credentials"
chmod 600 "$T/wrong.credentials"
out=$(pub "$ENDPOINT" "$T/wrong.credentials")
case $out in
"fail credentials "*"403"*) ;;
*) die "unknown access key: $out" ;;
esac
[[ $out == *"(permanent)" ]] && die "a 403 made permanent: $out"
if [ -s "$T/proxy.log" ]; then
	printf 'access_key_id = S3RVER\nsecret_access_key = not-the-secret\n' \
	    >"$T/wrong.credentials"
	out=$(pub "$ENDPOINT" "$T/wrong.credentials")
	[[ $out == "fail credentials "*"403"* ]] || die "wrong secret: $out"
	grep -q "REFUSED.*SignatureDoesNotMatch" "$T/proxy.log" ||
		die "the proxy saw no bad signature"
	# Everything else was signed as S3 wants it.
	[ "$(grep -c SignatureDoesNotMatch "$T/proxy.log")" = 1 ] &&
	    ! grep REFUSED "$T/proxy.log" | grep -qv \
	    'InvalidAccessKeyId\|SignatureDoesNotMatch' ||
		die "requests refused by SigV4: $(grep REFUSED "$T/proxy.log")"
fi
grep -q 'not-the-secret\|S3RVER:' <<<"$out" && die "a secret in the detail: $out"

note "a credentials file others can read: refused, permanent"
chmod 640 "$T/s3.credentials"
out=$(pub "$ENDPOINT" "$T/s3.credentials")
[[ $out == "fail credentials "*"mode 0640"*"(permanent)" ]] ||
	die "loose credentials file: $out"
chmod 600 "$T/s3.credentials"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	cp -p "$T/s3.credentials" "$T/other.credentials"
	chown nobody "$T/other.credentials"
	out=$(pub "$ENDPOINT" "$T/other.credentials")
	[[ $out == "fail credentials "*"owned by uid"*"(permanent)" ]] ||
		die "credentials file of another user: $out"
fi
ln -s "$T/s3.credentials" "$T/link.credentials"
out=$(pub "$ENDPOINT" "$T/link.credentials")
[[ $out == "fail credentials "* ]] || die "credentials through a symlink: $out"

note "server down: retryable, then published once it is back"
stop_s3
n=$(stored)
start=$(date +%s)
out=$(pub "http://127.0.0.1:$S3_PORT" "$T/s3.credentials")
[[ $out == "fail upload_failed "* ]] || die "server down: $out"
[[ $out == *"(permanent)" ]] && die "server down made permanent: $out"
[ $(($(date +%s) - start)) -lt 20 ] || die "server down took too long to say"
start_s3 "$S3_PORT"
out=$(pub "http://127.0.0.1:$S3_PORT" "$T/s3.credentials")
[ "$out" = ok ] || die "after the restart: $out"
[ "$(stored)" = "$n" ] || die "uploaded again after the restart"

note "another bundle under the same name and version: refused"
C=$T/other
rand_file "$C/model.safetensors" 1000
"$SLUICE" bundle create "$C" --name tiny-llama --version 1.0 >/dev/null ||
	die "bundle create other"
out=$("$PUBSTORE" s3 "$C" bucket=models "prefix=$PREFIX" part_size=5242880 \
    "endpoint=http://127.0.0.1:$S3_PORT" "credentials=$T/s3.credentials" 2>&1)
[[ $out == "fail version_conflict "*"(permanent)" ]] || die "conflict: $out"
cmp -s "$R/model.safetensors" "$(obj model.safetensors)" ||
	die "the conflicting bundle overwrote an object"
echo "ok"
