# sluice-publish with a model directory store, on bundles sent and
# released for real: NAME/VERSION holds the bundle's bytes (hard links on
# one file system, copies across two), latest moves only forward, the
# publish log tells each state once, --once says whether everything
# went, a release made while the publisher was down is caught up, a
# tampered release is refused (bundle_mismatch), a failing store is
# retried and then final, `sluice publish retry` and `status` work, a
# kill -9 at each crash point converges to one PUBLISHED line per store;
# a store down, then back, while the daemon runs: failures with retries,
# then each version published once; a reader of latest during 20
# publishes never sees a partial version.
. "$(dirname "$0")/lib.sh"

PUB=${SLUICE_PUBLISH:-$ROOT/receiver/publish/sluice-publish}
LOG=$T/publish.log

keys sender
keys audit
receiver_conf
sender_conf "passes = 1" "heartbeat_interval = 0.2"
start_recv

# release NAME VERSION: sends $T/src/NAME as VERSION, waits for it
release() {
	send --version "$2" "$T/src/$1"
	wait_until 60 grep -q "bundle=$1 version=$2 state=RELEASED" \
	    "$T/quarantine.log" || die "$1 $2 not released"
	[ -f "$(released "$1" "$2")/.sluice/manifest" ] ||
		die "$1 $2: no release"
}

# lines STATE [NAME VERSION STORE]: publish-log lines of that state
lines() {
	grep -c "bundle=${2:-[^ ]*} version=${3:-[^ ]*} store=${4:-[^ ]*} \
state=$1 " "$LOG" 2>/dev/null
}

# published NAME VERSION STORE: exactly one PUBLISHED line for it
published() {
	[ "$(lines PUBLISHED "$@")" = 1 ]
}

pubconf() {
	cat >"$T/publish.conf" <<CONF
store_dir = "store";
state_dir = "pubstate";
publish_log = "publish.log";
audit_key = "audit.key";
metrics_file = "publish.prom";
retries = 1;
retry_backoff = 0.2;
rescan_interval = 0.5;
stores = (
  { name = "models"; type = "directory"; path = "models"; },
  { name = "blocked"; type = "directory"; path = "blocker/sub"; }
);
rules = (
  { bundles = "model|tamper|late"; stores = [ "models" ]; },
  { bundles = "broken"; stores = [ "blocked", "models" ]; }
);
CONF
	local s
	for s in "$@"; do
		echo "$s;" >>"$T/publish.conf"
	done
}

mkdir -p "$T/src/model/weights"
rand_file "$T/src/model/weights/model-00001.safetensors" 3000000
text_file "$T/src/model/config.json" 2000
rand_file "$T/src/model/tokenizer.json" 100000
release model 1.0

# --- the configuration check -------------------------------------------
pubconf
"$PUB" -n -c "$T/publish.conf" >"$T/n.out" 2>&1 || die "-n: $(cat "$T/n.out")"
# badconf WHAT SETTING [settings...]: -n refuses it, naming the setting
badconf() {
	local what=$1 want=$2
	shift 2
	cp "$T/publish.conf" "$T/good.conf"
	printf '%s\n' "$@" >>"$T/publish.conf"
	"$PUB" -n -c "$T/publish.conf" >"$T/n.out" 2>&1 &&
		die "-n accepted $what"
	grep -q "$want" "$T/n.out" || die "$what: $(cat "$T/n.out")"
	mv "$T/good.conf" "$T/publish.conf"
}
badconf "an unknown key" "colour: unknown setting" 'colour = "red";'
badconf "a duplicate setting" "duplicate setting name" 'retries = 3;'
sed -i 's/"models" \]; }/"nosuch" ]; }/' "$T/publish.conf"
badconf "an unknown store in a rule" 'no store is called "nosuch"'
pubconf
sed -i 's/name = "blocked"/name = "models"/' "$T/publish.conf"
badconf "a store named twice" '"models" is used twice'
pubconf
sed -i 's/"model|tamper|late"/"model(|tamper"/' "$T/publish.conf"
badconf "a bad regex" "rules.bundles: bad regular expression"
pubconf
sed -i 's/path = "models"; }/path = "models"; colour = 1; }/' "$T/publish.conf"
badconf "an unknown store key" "stores.models.colour: unknown setting"
pubconf
chmod 0644 "$T/audit.key"
badconf "a loose audit key" "audit_key"
chmod 0600 "$T/audit.key"
pubconf
echo "AKIA:secret" >"$T/s3.credentials"
chmod 0644 "$T/s3.credentials"
cat >>"$T/publish.conf" <<CONF
CONF
sed -i 's|^stores = (|stores = (\n  { name = "objects"; type = "s3"; endpoint = "http://127.0.0.1:1"; bucket = "b"; credentials = "s3.credentials"; },|' \
    "$T/publish.conf"
badconf "credentials readable by others" \
    "stores.objects.credentials: .*s3.credentials: refused"
grep -q secret "$T/n.out" && die "-n printed the credentials"
pubconf
note "config checks ok"

# --- --once, the tree, latest ------------------------------------------
touch "$T/blocker" # the blocked store's path lies under a regular file
"$PUB" --once -c "$T/publish.conf" 2>"$T/pub.err" || die "--once failed: $(cat "$T/pub.err")"
M=$T/models/model
diff -r "$T/src/model" "$M/1.0" >/dev/null || die "published tree differs"
[ "$(cd "$M/1.0" && find . -type f | sort)" = \
  "$(cd "$T/src/model" && find . -type f | sort)" ] || die "file lists differ"
[ -e "$M/1.0/.sluice" ] && die ".sluice/ published"
# Same file system: hard links to the released inodes.
[ "$(stat -c %i "$M/1.0/tokenizer.json")" = \
  "$(stat -c %i "$(released model 1.0)/tokenizer.json")" ] ||
	die "not hard-linked"
[ "$(readlink "$M/latest")" = 1.0 ] || die "latest: $(readlink "$M/latest")"
[ "$(lines PUBLISHING model 1.0 models)" = 1 ] || die "PUBLISHING lines"
[ "$(lines PUBLISHED model 1.0 models)" = 1 ] || die "PUBLISHED lines"
grep -Eq '^ts=[0-9T:-]+Z bundle=model version=1.0 store=models state=PUBLISHED reason=ok$' \
    "$LOG" || die "PUBLISHED line: $(cat "$LOG")"
# Nothing pending: a second pass does nothing and succeeds.
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" || die "second --once"
[ "$(lines PUBLISHED)" = 1 ] || die "published again"
grep -q '^sluice_publish_total{store="models",state="PUBLISHED"} 0$' \
    "$T/publish.prom" || die "metrics: $(cat "$T/publish.prom")"
"$SLUICE" audit verify "$T/pubstate/publish-audit.log" --key "$T/audit.pub" \
    >/dev/null 2>&1 || die "audit log does not verify"
grep -q 'decision=PUBLISHED .*bundle=model version=1.0 .*detail="store=models"' \
    "$T/pubstate/publish-audit.log" || die "no audit record"
note "--once ok"

# --- across file systems: copies, made durable, verified -----------------
# (tests/bin/pubstore calls the directory module alone; /dev/shm is a
# tmpfs, not the file system of $T.)
PUBSTORE=$ROOT/tests/bin/pubstore
if [ -x "$PUBSTORE" ] && [ -d /dev/shm ] &&
    [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ]; then
	X=$(mktemp -d /dev/shm/sluice-pub.XXXXXX)
	"$PUBSTORE" directory "$(released model 1.0)" path="$X" \
	    >"$T/pubstore.out" 2>&1 || { rm -rf "$X"; die "pubstore: $(cat "$T/pubstore.out")"; }
	ok=1
	diff -r "$T/src/model" "$X/model/1.0" >/dev/null || ok=0
	[ "$(stat -c %h "$X/model/1.0/tokenizer.json")" = 1 ] || ok=0
	[ "$(readlink "$X/model/latest")" = 1.0 ] || ok=0
	# Again: a check, not a copy; a changed published file is found.
	"$PUBSTORE" directory "$(released model 1.0)" path="$X" >/dev/null ||
		ok=0
	echo x >>"$X/model/1.0/config.json"
	"$PUBSTORE" directory "$(released model 1.0)" path="$X" \
	    >"$T/pubstore.out" 2>&1 && ok=0
	grep -q "fail verify_failed" "$T/pubstore.out" || ok=0
	rm -rf "$X"
	[ $ok = 1 ] || die "copy across file systems: $(cat "$T/pubstore.out")"
	note "copies across file systems ok"
else
	note "no tests/bin/pubstore or no other file system: copies not tested"
fi

# --- the daemon: inotify, latest forward only, restart catch-up ---------
# The receiver refuses rollbacks, so an older version reaches the
# publisher after a newer one only when it was out of sight: 1.5 is
# released first and hidden (a dot name is skipped), then renamed back in
# as the receiver would.
release model 1.5
mv "$(released model 1.5)" "$T/store/model/.hold"
"$PUB" -c "$T/publish.conf" 2>>"$T/pub.err" &
PUB_PID=$!
PIDS+=("$PUB_PID")
sleep 0.3
release model 2.0
wait_until 20 published model 2.0 models ||
	die "2.0 not published by the daemon"
[ "$(readlink "$M/latest")" = 2.0 ] || die "latest not moved to 2.0"
# logrotate: the log moved away, SIGHUP, the next line in a new file.
mv "$LOG" "$LOG.1"
kill -HUP "$PUB_PID"
sleep 0.3
mv "$T/store/model/.hold" "$(released model 1.5)"
wait_until 20 published model 1.5 models ||
	die "1.5 not published"
[ "$(readlink "$M/latest")" = 2.0 ] || die "latest moved back to 1.5"
grep -q 'version=1.5 ' "$LOG.1" && die "SIGHUP did not reopen publish_log"
diff -r "$T/src/model" "$M/1.5" >/dev/null || die "1.5 differs"
kill "$PUB_PID"
wait "$PUB_PID" || die "sluice-publish did not exit 0 on SIGTERM"
release model 3.0
cp -r "$T/src/model" "$T/src/late"
release late 1.0
"$PUB" -c "$T/publish.conf" 2>>"$T/pub.err" &
PUB_PID=$!
PIDS+=("$PUB_PID")
wait_until 20 published model 3.0 models ||
	die "3.0 (released while down) not caught up"
wait_until 20 published late 1.0 models ||
	die "late 1.0 not caught up"
[ "$(readlink "$M/latest")" = 3.0 ] || die "latest not 3.0"
kill "$PUB_PID"
wait "$PUB_PID"
note "daemon ok"

# --- a tampered release -------------------------------------------------
cp -r "$T/src/model" "$T/src/tamper"
release tamper 1.0
echo "changed" >>"$(released tamper 1.0)/config.json"
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" &&
	die "--once succeeded on a tampered bundle"
grep -q 'bundle=tamper version=1.0 store=models state=PUBLISH_FAILED reason=bundle_mismatch' \
    "$LOG" || die "no bundle_mismatch"
[ -e "$T/models/tamper" ] && die "tampered bundle published"
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" ||
	die "bundle_mismatch is not final"
grep -q 'decision=PUBLISH_FAILED .*bundle=tamper .*reason=bundle_mismatch' \
    "$T/pubstate/publish-audit.log" || die "no audit record of the refusal"
note "tamper ok"

# --- a failing store: retried, final, retry on request -------------------
cp -r "$T/src/model" "$T/src/broken"
release broken 1.0
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" &&
	die "--once succeeded with a failing store"
grep -q 'bundle=broken version=1.0 store=blocked state=PUBLISH_FAILED reason=write_failed' \
    "$LOG" || die "no write_failed"
[ "$(lines PUBLISHED broken 1.0 models)" = 1 ] ||
	die "the other store of the bundle was not published"
"$SLUICE" publish status -c "$T/publish.conf" >"$T/status.out" ||
	die "publish status failed"
grep -Eq '^broken +1.0 +blocked +PUBLISH_FAILED +write_failed +1$' \
    "$T/status.out" || die "status: $(cat "$T/status.out")"
grep -Eq '^model +3.0 +models +PUBLISHED +ok +-$' "$T/status.out" ||
	die "status: $(cat "$T/status.out")"
# Rows by bundle, then version in release order, then store.
[ "$(awk '$1 == "model" { printf "%s ", $2 }' "$T/status.out")" = \
  "1.0 1.5 2.0 3.0 " ] || die "status order: $(cat "$T/status.out")"
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" && die "second try passed"
[ "$(lines PUBLISH_FAILED broken 1.0 blocked)" = 2 ] || die "not retried"
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" || die "not final"
[ "$(lines PUBLISH_FAILED broken 1.0 blocked)" = 2 ] || die "retried past final"
"$SLUICE" publish status -c "$T/publish.conf" | grep -Eq \
    '^broken +1.0 +blocked +PUBLISH_FAILED +write_failed +0$' ||
	die "status after final: $("$SLUICE" publish status -c "$T/publish.conf")"
"$SLUICE" publish retry broken 1.0 --store nosuch -c "$T/publish.conf" \
    2>/dev/null && die "retry to an unknown store accepted"
"$SLUICE" publish retry model 3.0 -c "$T/publish.conf" 2>/dev/null &&
	die "retry of a published bundle accepted"
rm "$T/blocker"
"$SLUICE" publish retry broken 1.0 --store blocked -c "$T/publish.conf" \
    >/dev/null || die "publish retry failed"
"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" || die "retry did not publish"
[ "$(lines PUBLISHED broken 1.0 blocked)" = 1 ] || die "broken not published"
grep -q 'bundle=broken version=1.0 store=blocked state=PUBLISHING reason=retry_requested' \
    "$LOG" || die "the retried attempt does not say why"
diff -r "$T/src/broken" "$T/blocker/sub/broken/1.0" >/dev/null ||
	die "broken differs"
[ "$(lines PUBLISHED broken 1.0 models)" = 1 ] || die "models published twice"
note "retry ok"

# --- kill -9 at each crash point, then a restart converges ----------------
v=10
for fp in publish_started dir_built publish_unannounced; do
	v=$((v + 1))
	release model $v.0
	SLUICE_FAILPOINT=$fp "$PUB" --once -c "$T/publish.conf" \
	    2>>"$T/pub.err"
	[ $? = 137 ] || die "failpoint $fp not reached"
	"$PUB" --once -c "$T/publish.conf" 2>>"$T/pub.err" ||
		die "restart after $fp failed"
	[ $fp != publish_started ] || grep -q \
	    "version=$v.0 store=models state=PUBLISHING reason=resumed" "$LOG" ||
		die "after $fp: the second attempt is not marked resumed"
	[ "$(lines PUBLISHED model $v.0 models)" = 1 ] ||
		die "after $fp: $(lines PUBLISHED model $v.0 models) PUBLISHED lines"
	diff -r "$T/src/model" "$M/$v.0" >/dev/null || die "after $fp: differs"
	[ "$(readlink "$M/latest")" = $v.0 ] || die "after $fp: latest"
	ls -a "$M" | grep -q partial && die "after $fp: partial dir left"
done
[ "$(grep -c 'decision=PUBLISHED .*bundle=model version=13.0' \
    "$T/pubstate/publish-audit.log")" = 1 ] || die "audit record not once"
"$SLUICE" audit verify "$T/pubstate/publish-audit.log" --key "$T/audit.pub" \
    >/dev/null 2>&1 || die "audit log does not verify at the end"
note "kill -9 ok"

# --- the daemon against a store that is down, then back ------------------
# Its own state and log: every model version goes to "flaky", whose path
# lies under a regular file until the test removes it.
cat >"$T/publish2.conf" <<CONF
store_dir = "store";
state_dir = "pubstate2";
publish_log = "publish2.log";
retries = 50;
retry_backoff = 0.2;
retry_backoff_max = 0.4;
stores = ( { name = "flaky"; type = "directory"; path = "down/sub"; } );
rules = ( { bundles = "model|tamper"; stores = [ "flaky" ]; } );
CONF
LOG=$T/publish2.log
touch "$T/down"
"$PUB" -c "$T/publish2.conf" 2>>"$T/pub2.err" &
PUB_PID=$!
PIDS+=("$PUB_PID")
failed_twice() { [ "$(lines PUBLISH_FAILED model 2.0 flaky)" -ge 2 ]; }
wait_until 20 failed_twice || die "no retries while the store is down"
[ "$(lines PUBLISHED)" = 0 ] || die "published to a store that is down"
rm "$T/down"
for v in 1.0 1.5 2.0 3.0 11.0 12.0 13.0; do
	wait_until 20 published model $v flaky ||
		die "model $v not published once the store came back"
done
diff -r "$T/src/model" "$T/down/sub/model/2.0" >/dev/null || die "flaky 2.0"
[ "$(readlink "$T/down/sub/model/latest")" = 13.0 ] || die "flaky latest"
# The tampered bundle is final at once; a retry request reaches the
# running daemon (inotify on state_dir/retry) and fails the same way.
[ "$(lines PUBLISH_FAILED tamper 1.0 flaky)" = 1 ] || die "tamper not final"
"$SLUICE" publish retry tamper 1.0 -c "$T/publish2.conf" >/dev/null ||
	die "publish retry"
two() { [ "$(lines PUBLISH_FAILED tamper 1.0 flaky)" = 2 ]; }
wait_until 10 two || die "the daemon did not take the retry request"
sleep 1
[ "$(lines PUBLISHED)" = 7 ] || die "published more than once: $(lines PUBLISHED)"
# A reader that loads latest over and over during 20 publishes never sees
# a partial version (every version holds the same files).
(
	while [ ! -e "$T/stop-reader" ]; do
		diff -r "$T/src/model" "$T/down/sub/model/latest" >/dev/null ||
			echo "partial $(readlink "$T/down/sub/model/latest")"
	done >"$T/reader.out" 2>&1
) &
READER=$!
PIDS+=("$READER")
for v in $(seq 100 119); do
	release model $v
done
wait_until 30 published model 119 flaky || die "model 119 not published"
touch "$T/stop-reader"
wait "$READER"
[ -s "$T/reader.out" ] && die "reader saw: $(head -n 3 "$T/reader.out")"
[ "$(readlink "$T/down/sub/model/latest")" = 119 ] || die "latest not 119"
[ "$(lines PUBLISHED)" = 27 ] || die "PUBLISHED lines: $(lines PUBLISHED)"
kill "$PUB_PID"
wait "$PUB_PID" || die "sluice-publish did not exit 0"
note "store down and back ok, reader never saw a partial version"
stop_recv
echo "ok: $(lines PUBLISHED) publications, $(wc -l <"$LOG") log lines"
