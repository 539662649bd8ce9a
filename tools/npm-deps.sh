#!/bin/sh
# Installs the npm packages the tests need into a cache outside the tree
# (make deps, and the tests that use them, call this): s3rver, a real S3
# server for tests/e2e/63_publish_s3.sh.  Installed once, at a pinned
# version; when it is there already this costs a grep.  Prints the cache
# directory (node_modules/.bin under it); exits 1 when npm is missing or
# the registry cannot be reached, and the tests that need it skip.
#   SLUICE_NPM_DIR   the cache (default ~/.cache/sluice-npm)
dir=${SLUICE_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-npm}
pkg=s3rver
version=3.7.1

installed() {
	grep -q "\"version\": \"$version\"" \
	    "$dir/node_modules/$pkg/package.json" 2>/dev/null &&
		[ -x "$dir/node_modules/.bin/$pkg" ]
}

if ! installed; then
	command -v npm >/dev/null 2>&1 || {
		echo "npm-deps: no npm (Debian: nodejs npm)" >&2
		exit 1
	}
	mkdir -p "$dir" || exit 1
	# Two tests installing at once into one directory would tear it:
	# one at a time, and the second finds it done.
	(
		flock 9
		installed && exit 0
		echo "npm-deps: installing $pkg@$version into $dir" >&2
		cd "$dir" || exit 1
		[ -f package.json ] || echo '{ "private": true }' >package.json
		npm install --no-audit --no-fund --no-save --silent \
		    "$pkg@$version" >&2
	) 9>"$dir/.lock" || exit 1
	installed || exit 1
fi
echo "$dir"
