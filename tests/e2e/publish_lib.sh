# Real servers for the publisher's tests (63, 64, 65), sourced after
# lib.sh: s3rver (npm, tools/npm-deps.sh) and Debian's docker-registry,
# each started as an unprivileged process on 127.0.0.1 with its storage
# under $T, and OCI image layouts built offline with tar, gzip -n and
# sha256sum.  A test calls need_s3rver or need_registry first: each exits
# 77 with the reason when its server cannot be had.

# TCP, above Linux's ephemeral range (32768-60999): PORT_BASE + 2 can be
# taken for a moment by any outgoing connection on the machine.
REG_PORT=$((61000 + $$ % 4000))
REG=127.0.0.1:$REG_PORT
S3_DATA=$T/s3data

# need_s3rver: sets S3RVER, or skips the test
need_s3rver() {
	local dir
	dir=$("$ROOT/tools/npm-deps.sh" 2>"$T/npm.err") || {
		echo "SKIP: s3rver not installed ($(tail -n 1 "$T/npm.err"))"
		exit 77
	}
	S3RVER=$dir/node_modules/.bin/s3rver
}

# need_registry: skopeo and docker-registry, or skips the test
need_registry() {
	local c
	for c in skopeo docker-registry; do
		command -v "$c" >/dev/null ||
			{ echo "SKIP: $c not installed (make deps)"; exit 77; }
	done
}

# start_s3 [PORT]: s3rver on 127.0.0.1 (a free port, or PORT again after
# a stop), bucket "models", objects under $S3_DATA kept across restarts;
# sets S3_PORT and S3_PID.  Its log, $T/s3.log, tells each stored part
# and object.
start_s3() {
	local before i
	mkdir -p "$S3_DATA"
	before=$(grep -c "listening on" "$T/s3.log" 2>/dev/null)
	"$S3RVER" -d "$S3_DATA" -a 127.0.0.1 -p "${1:-0}" \
	    --configure-bucket models >>"$T/s3.log" 2>&1 &
	S3_PID=$!
	PIDS+=("$S3_PID")
	for i in $(seq 1 200); do
		if [ "$(grep -c "listening on" "$T/s3.log")" -gt "${before:-0}" ]
		then
			S3_PORT=$(grep "listening on" "$T/s3.log" | tail -n 1 |
			    sed 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/')
			return 0
		fi
		kill -0 "$S3_PID" 2>/dev/null || die "s3rver exited: $(tail -n 5 "$T/s3.log")"
		sleep 0.05
	done
	die "s3rver did not start"
}

stop_s3() {
	kill "$S3_PID" 2>/dev/null
	wait "$S3_PID" 2>/dev/null
}

# start_registry [auth]: the registry on REG_PORT, storage under
# $T/registry kept across restarts; with "auth", htpasswd basic auth
# from $T/htpasswd.  Sets REG_PID.
start_registry() {
	cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: $REG
EOF
	if [ "${1:-}" = auth ]; then
		cat >>"$T/registry.yml" <<EOF
auth:
  htpasswd:
    realm: sluice-test
    path: $T/htpasswd
EOF
	fi
	docker-registry serve "$T/registry.yml" >>"$T/registry.err" 2>&1 &
	REG_PID=$!
	PIDS+=("$REG_PID")
	wait_until 10 curl -s -o /dev/null "http://$REG/v2/" ||
		{ tail "$T/registry.err"; die "docker-registry did not start"; }
}

stop_registry() {
	kill "$REG_PID" 2>/dev/null
	wait "$REG_PID" 2>/dev/null
}

# blob LAYOUT FILE: moves FILE into the layout under its digest; prints it
blob() {
	local h
	h=$(sha256sum "$2" | cut -d' ' -f1)
	mkdir -p "$1/blobs/sha256"
	mv "$2" "$1/blobs/sha256/$h"
	echo "$h"
}

# image LAYOUT TEXT: a one-layer image (deterministic: tar with fixed
# owners and times, gzip -n) into LAYOUT's blobs; prints its manifest's
# "digest size"
image() {
	local l=$1 w=$T/work.$$ diff layer lsize cfg csize
	rm -rf "$w"
	mkdir -p "$w/root/etc"
	echo "$2" >"$w/root/etc/hello"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
	    -C "$w/root" -cf "$w/layer.tar" . || die "tar layer"
	diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
	gzip -n -c "$w/layer.tar" >"$w/layer.tgz"
	lsize=$(stat -c %s "$w/layer.tgz")
	layer=$(blob "$l" "$w/layer.tgz")
	printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	    "$diff" >"$w/config"
	csize=$(stat -c %s "$w/config")
	cfg=$(blob "$l" "$w/config")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
	    "$cfg" "$csize" "$layer" "$lsize" >"$w/manifest"
	echo "$(sha256sum "$w/manifest" | cut -d' ' -f1) $(stat -c %s "$w/manifest")"
	blob "$l" "$w/manifest" >/dev/null
	rm -rf "$w"
}

# layout DIR [DIGEST SIZE TAG]...: oci-layout and index.json (TAG "-":
# no ref.name annotation)
layout() {
	local l=$1 sep="" d s t
	shift
	echo '{"imageLayoutVersion":"1.0.0"}' >"$l/oci-layout"
	{
		printf '{"schemaVersion":2,"manifests":['
		while [ $# -ge 3 ]; do
			d=$1 s=$2 t=$3
			shift 3
			printf '%s{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s' \
			    "$sep" "$d" "$s"
			[ "$t" != - ] && printf ',"annotations":{"org.opencontainers.image.ref.name":"%s"}' "$t"
			printf '}'
			sep=,
		done
		printf ']}\n'
	} >"$l/index.json"
}

# skew_blob LAYOUT DIGEST: changes a blob other than the manifest DIGEST,
# so that its file name is no longer its hash; prints the file's name
skew_blob() {
	local f
	f=$(ls "$1/blobs/sha256" | grep -v "$2" | head -n 1)
	echo "changed" >>"$1/blobs/sha256/$f"
	echo "$f"
}
