# Hooks as a user of their own (hook_socket, tools/sluice-hookd): the scan
# and release hooks run as that user, can read the staged tree but not
# write it, and cannot read the receiver's audit key; the receiver never
# runs them itself.  Here sluice-hookd listens itself, as nobody (the
# units do the same with socket activation).  Needs root for setpriv.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root to run sluice-hookd as nobody"; exit 77; }
command -v setpriv >/dev/null || { echo "no setpriv"; exit 77; }
HOOKD=$ROOT/tools/sluice-hookd
keys sender; keys receiver
chmod 600 "$T/receiver.key"
chmod 0711 "$T"
mkdir -m 0777 "$T/run" "$T/out"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$HOOKD" --listen "$T/run/hook.sock" \
    >>"$T/hookd.err" 2>&1 &
HOOKD_PID=$!
PIDS+=("$HOOKD_PID")
wait_until 5 [ -S "$T/run/hook.sock" ] || die "sluice-hookd did not start: $(cat "$T/hookd.err")"
cat >"$T/scan.sh" <<HOOK
#!/bin/sh
# What the hook can and cannot do, written down for the test.
o=$T/out/scan.\$SLUICE_VERSION
id -u >"\$o"
[ "\$1" = "\$SLUICE_TREE" ] && cat "\$1/w.bin" >/dev/null && echo read >>"\$o"
touch "\$1/evil" 2>/dev/null && echo wrote >>"\$o"
cat "$T/receiver.key" >/dev/null 2>&1 && echo key >>"\$o"
exit 0
HOOK
cat >"$T/rel.sh" <<HOOK
#!/bin/sh
id -u >"$T/out/rel.\$SLUICE_VERSION"
HOOK
chmod 0755 "$T/scan.sh" "$T/rel.sh"
receiver_conf 'hook_socket = "run/hook.sock"' "scan_hook = \"$T/scan.sh\"" \
    "release_hooks = [ \"$T/rel.sh\" ]" 'audit_log = "audit.log"' 'receiver_key = "receiver.key"'
start_recv
sender_conf "passes = 1"
rand_file "$T/b/w.bin" 200000
send --version 1 "$T/b"
wait_state RELEASED 30
nobody=$(id -u nobody)
[ "$(head -n 1 "$T/out/scan.1")" = "$nobody" ] || die "scan hook ran as uid $(head -n 1 "$T/out/scan.1")"
grep -qx read "$T/out/scan.1" || die "the scan hook could not read the tree: $(cat "$T/out/scan.1")"
! grep -qx wrote "$T/out/scan.1" || die "the scan hook could write into the tree"
! grep -qx key "$T/out/scan.1" || die "the scan hook could read receiver.key"
[ ! -e "$T/store/b/1/evil" ] || die "the hook's file reached the store"
wait_until 10 [ -s "$T/out/rel.1" ] || die "release hook did not run"
[ "$(cat "$T/out/rel.1")" = "$nobody" ] || die "release hook ran as uid $(cat "$T/out/rel.1")"
assert_same_tree "$T/b" "$(released b 1)"
# The receiver checks at start that sluice-hookd is there.
stop_recv
kill "$HOOKD_PID"; wait "$HOOKD_PID" 2>/dev/null
"$RECV" -n -c "$T/receiver.conf" >"$T/n.out" 2>&1 && die "-n OK without sluice-hookd"
grep -q "hook_socket: .*no sluice-hookd listening" "$T/n.out" || die "-n: $(cat "$T/n.out")"
echo "hooks ran as uid $nobody: tree read-only, receiver.key out of reach"
