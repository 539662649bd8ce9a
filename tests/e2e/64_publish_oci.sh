# The OCI store of sluice-publish against a real registry (Debian's
# docker-registry, distribution 2.8, on 127.0.0.1 with its storage under
# $T): a bundle with an OCI layout (two tags) and an oci-archive is pushed
# with skopeo; the registry's manifest digests equal the bundle's and a
# copy back out is byte-identical; a second run copies nothing; a
# docker-archive, a blob not named by its hash, a layout without tags or
# index and a registry answering with another manifest are refused for
# good; a FIFO as the credentials file is refused, not waited on; the
# registry down is a retryable push_failed that converges once
# it is back; credentials reach skopeo in a private auth.json, never on
# its command line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/publish_lib.sh"

PUBSTORE=$ROOT/tests/bin/pubstore
need_registry
[ -x "$PUBSTORE" ] || { echo "SKIP: $PUBSTORE not built"; exit 77; }

# A skopeo that records its arguments, so the test sees which copies ran
# and that no secret is on a command line; while $T/fake-manifest exists,
# inspect answers with it, as a registry that rewrote manifests would.
REAL_SKOPEO=$(command -v skopeo)
mkdir -p "$T/bin" "$T/tmp"
cat >"$T/bin/skopeo" <<EOF
#!/bin/sh
echo "\$*" >>"$T/skopeo.args"
[ "\$1" = inspect ] && [ -f "$T/fake-manifest" ] && exec cat "$T/fake-manifest"
exec "$REAL_SKOPEO" "\$@"
EOF
chmod 755 "$T/bin/skopeo"
export PATH="$T/bin:$PATH" TMPDIR="$T/tmp"

keys approver
# bundle DIR NAME: a signed bundle of what DIR holds
bundle() {
	"$SLUICE" bundle create "$1" --name "$2" --version 1.0 \
	    --changes "e2e" --reason "e2e" >/dev/null || die "bundle create $2"
	"$SLUICE" bundle sign "$1" --key "$T/approver.key" >/dev/null ||
		die "bundle sign $2"
}

# refused BUNDLE PATTERN: pubstore fails for good, its line matching
refused() {
	local out
	out=$(publish "$1") && die "$1 accepted: $out"
	echo "$out" | grep -q "^fail $2.*(permanent)\$" || die "$1: $out"
}

# publish BUNDLE [key=value...]: pubstore's one line
publish() {
	"$PUBSTORE" oci "$1" "registry=$REG" tls_verify=false "${@:2}"
}

# remote_digest REPO:TAG: the registry's manifest digest (hex)
remote_digest() {
	"$REAL_SKOPEO" inspect --raw --tls-verify=false "docker://$REG/$1" |
	    sha256sum | cut -d' ' -f1
}

copies() { grep -c '^--insecure-policy copy ' "$T/skopeo.args" 2>/dev/null; }

# ---- the bundle: images/team/app/ (two tags) and images/other.tar
B=$T/b-images
mkdir -p "$B/images/team/app" "$T/other" "$B/docs"
echo "an image bundle" >"$B/docs/README"
read -r d1 s1 <<<"$(image "$B/images/team/app" "version one")"
read -r d2 s2 <<<"$(image "$B/images/team/app" "version two")"
layout "$B/images/team/app" "$d1" "$s1" 1.0 "$d2" "$s2" 2.0
read -r d3 s3 <<<"$(image "$T/other" "the other image")"
layout "$T/other" "$d3" "$s3" 3.1
# "./index.json", as tar -C DIR . writes it
tar --sort=name -C "$T/other" -cf "$B/images/other.tar" . ||
	die "tar oci-archive"
bundle "$B" images

start_registry
note "publish: a layout with two tags and an oci-archive"
out=$(publish "$B") || die "publish: $out"
[ "$out" = ok ] || die "publish: $out"
[ "$(copies)" = 3 ] || die "expected 3 copies, saw $(copies)"
[ "$(remote_digest team/app:1.0)" = "$d1" ] || die "team/app:1.0 digest"
[ "$(remote_digest team/app:2.0)" = "$d2" ] || die "team/app:2.0 digest"
[ "$(remote_digest other:3.1)" = "$d3" ] || die "other:3.1 digest"
tags=$("$REAL_SKOPEO" list-tags --tls-verify=false "docker://$REG/team/app" |
    tr -d ' \n')
for t in 1.0 2.0; do
	echo "$tags" | grep -q "\"Tags\":\[.*\"$t\"" || die "tag $t: $tags"
done

note "copy back out: byte-identical blobs"
"$REAL_SKOPEO" --insecure-policy copy -q --preserve-digests --src-tls-verify=false \
    "docker://$REG/team/app:2.0" "oci:$T/out:2.0" || die "copy back"
n=0
for f in "$T"/out/blobs/sha256/*; do
	cmp -s "$f" "$B/images/team/app/blobs/sha256/${f##*/}" ||
		die "blob ${f##*/} differs after the round trip"
	n=$((n + 1))
done
[ "$n" = 3 ] || die "round trip: $n blobs, expected 3"

note "second run: checks, no copy"
out=$(publish "$B") || die "second publish: $out"
[ "$out" = ok ] || die "second publish: $out"
[ "$(copies)" = 3 ] || die "second run copied ($(copies) copies)"

note "refusals: docker-archive, a blob not named by its hash, no tag, no index"
D=$T/b-docker
mkdir -p "$D/images" "$T/dock"
echo '{}' >"$T/dock/cfg.json"
tar -C "$T" -cf "$T/dock/layer.tar" tmp
echo '[{"Config":"cfg.json","RepoTags":["legacy:1"],"Layers":["layer.tar"]}]' \
    >"$T/dock/manifest.json"
tar -C "$T/dock" -cf "$D/images/legacy.tar" manifest.json cfg.json layer.tar
bundle "$D" docker
refused "$D" "docker_archive_refused images/legacy.tar: "

M=$T/b-mismatch
mkdir -p "$M/images/bad"
read -r d4 s4 <<<"$(image "$M/images/bad" "tampered")"
layout "$M/images/bad" "$d4" "$s4" 1
f=$(skew_blob "$M/images/bad" "$d4")
bundle "$M" mismatch
refused "$M" "blob_digest_mismatch images/bad/blobs/sha256/$f: "

N=$T/b-notag
mkdir -p "$N/images/untagged"
read -r d5 s5 <<<"$(image "$N/images/untagged" "no tag")"
layout "$N/images/untagged" "$d5" "$s5" -
bundle "$N" notag
refused "$N" "no_tag images/untagged/index.json: "

L=$T/b-noindex
mkdir -p "$L/images/broken"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/images/broken/oci-layout"
bundle "$L" noindex
refused "$L" "bad_layout images/broken/oci-layout: "
[ "$(copies)" = 3 ] || die "a refused bundle ran a copy"

note "the registry's manifest differs from the bundle's"
echo '{"schemaVersion":2}' >"$T/fake-manifest"
refused "$B" "digest_mismatch .*team/app:1.0: registry has sha256:.*, the bundle sha256:$d1 "
rm -f "$T/fake-manifest"

note "skopeo missing"
out=$(PATH=/nonexistent "$PUBSTORE" oci "$B" "registry=$REG" \
    tls_verify=false) && die "ran without skopeo: $out"
echo "$out" | grep -q '^fail skopeo_missing ' || die "no skopeo: $out"
echo "$out" | grep -q permanent && die "skopeo missing is permanent: $out"

note "a FIFO in the credentials file's place: refused, not waited on"
mkfifo -m 600 "$T/fifo.cred"
out=$(timeout 20 "$PUBSTORE" oci "$B" "registry=$REG" tls_verify=false \
    "oci_credentials=$T/fifo.cred")
[ $? = 124 ] && die "the publish hung opening a FIFO for its credentials"
echo "$out" | grep -q '^fail credentials .*fifo.cred: must be a regular file' ||
	die "FIFO credentials: $out"

note "registry down: retryable, then converges"
stop_registry
B2=$T/b-images2
cp -a "$B" "$B2"
rm -rf "$B2/.sluice" "$B2/images/other.tar"
layout "$B2/images/team/app" "$d1" "$s1" 1.0 "$d2" "$s2" 2.0 "$d1" "$s1" stable
bundle "$B2" images2
out=$(publish "$B2") && die "published with the registry down: $out"
echo "$out" | grep -q '^fail push_failed .*connection refused' ||
	die "registry down: $out"
echo "$out" | grep -q permanent && die "registry down is permanent: $out"
start_registry
out=$(publish "$B2") || die "after the registry came back: $out"
[ "$(remote_digest team/app:stable)" = "$d1" ] || die "team/app:stable digest"

note "credentials: an auth.json, not argv"
hash=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("s3cret-pw", crypt.mksalt(crypt.METHOD_BLOWFISH)))' 2>/dev/null)
case "$hash" in
'$2'*)
	echo "pusher:$hash" >"$T/htpasswd"
	stop_registry
	start_registry auth
	layout "$B2/images/team/app" "$d2" "$s2" 2.1
	rm -rf "$B2/.sluice"
	bundle "$B2" images2
	out=$(publish "$B2") && die "pushed without credentials: $out"
	echo "$out" | grep -q '^fail push_failed ' || die "no credentials: $out"
	echo "pusher:s3cret-pw" >"$T/oci.cred"
	chmod 644 "$T/oci.cred"
	out=$(publish "$B2" "oci_credentials=$T/oci.cred") &&
		die "credentials 0644 accepted: $out"
	echo "$out" | grep -q '^fail credentials ' || die "0644: $out"
	chmod 600 "$T/oci.cred"
	out=$(publish "$B2" "oci_credentials=$T/oci.cred") ||
		die "with credentials: $out"
	[ "$out" = ok ] || die "with credentials: $out"
	grep -q 's3cret' "$T/skopeo.args" && die "a secret on skopeo's argv"
	grep -q -- '--dest-authfile=' "$T/skopeo.args" ||
		die "no --dest-authfile"
	[ -z "$(ls -A "$T/tmp")" ] || die "auth.json left behind: $(ls "$T/tmp")"
	[ "$("$REAL_SKOPEO" inspect --raw --tls-verify=false --creds pusher:s3cret-pw \
	    "docker://$REG/team/app:2.1" | sha256sum | cut -d' ' -f1)" = "$d2" ] ||
		die "team/app:2.1 digest"
	;;
*)
	note "no bcrypt for htpasswd here: credentials not tested"
	;;
esac
echo "ok"
