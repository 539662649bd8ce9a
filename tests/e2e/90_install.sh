# make install DESTDIR=...: exactly the tree README documents; the units
# pass systemd-analyze verify (with ExecStart pointing into DESTDIR, as
# the binaries are not in /usr/bin here); the receiver's unit scores at
# most 2.0 in systemd-analyze security; the publisher's unit hides the
# receiver's keys and directories; make uninstall removes it all.
. "$(dirname "$0")/lib.sh"

D=$T/dest
make -s -C "$ROOT" install PREFIX=/usr DESTDIR="$D" >"$T/install.out" 2>&1 ||
	die "make install failed: $(tail -5 "$T/install.out")"
(cd "$D" && find . -type f | sed 's|^\./|/|' | sort) >"$T/got"
sed -n '/^<!-- install-tree -->/,/^<!-- \/install-tree -->/p' "$ROOT/README.md" |
	grep '^/' | sort >"$T/want"
[ -s "$T/want" ] || die "README has no install tree"
diff "$T/want" "$T/got" || die "installed tree differs from README"
if command -v man >/dev/null; then
	for f in "$D"/usr/share/man/man*/*; do
		man -l "$f" >/dev/null 2>"$T/man.err" || die "man page $f"
	done
fi

if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T/units"
	for u in "$D"/usr/lib/systemd/system/*; do
		sed "s|/usr/bin/|$D/usr/bin/|g" "$u" >"$T/units/$(basename "$u")"
	done
	mkdir -p "$T/units/sluice-train@nightly.timer.d"
	cp "$D/usr/share/doc/sluice/train-schedule.conf" \
	    "$T/units/sluice-train@nightly.timer.d/"
	ln -s sluice-train@.service "$T/units/sluice-train@nightly.service"
	ln -s sluice-train@.timer "$T/units/sluice-train@nightly.timer"
	(cd "$T/units" && SYSTEMD_UNIT_PATH="$T/units:" systemd-analyze verify \
	    --man=no sluice-send.service sluice-recv.service \
	    sluice-publish.service sluice-train@nightly.service sluice-train@nightly.timer) \
	    >"$T/verify.out" 2>&1
	rc=$?
	cat "$T/verify.out"
	[ $rc = 0 ] && ! grep -v "^$" "$T/verify.out" | grep -q . ||
		die "systemd-analyze verify complained"
	score=$(systemd-analyze security --offline=yes \
	    "$D/usr/lib/systemd/system/sluice-recv.service" 2>/dev/null |
	    sed -n 's/.*exposure level for .*: \([0-9.]*\).*/\1/p')
	echo "sluice-recv.service exposure $score"
	[ -n "$score" ] && [ "$(echo "$score <= 2.0" | bc)" = 1 ] ||
		die "sluice-recv.service exposure '$score' above 2.0"
	score=$(systemd-analyze security --offline=yes \
	    "$D/usr/lib/systemd/system/sluice-publish.service" 2>/dev/null |
	    sed -n 's/.*exposure level for .*: \([0-9.]*\).*/\1/p')
	echo "sluice-publish.service exposure $score"
	[ -n "$score" ] && [ "$(echo "$score <= 2.0" | bc)" = 1 ] ||
		die "sluice-publish.service exposure '$score' above 2.0"
else
	echo "no systemd-analyze: units not verified"
fi

# The publisher reaches nothing of the receiver's: each secret key and
# directory of receiver.conf.example (and link.key, the README's) lies
# under an InaccessiblePaths entry of its unit.
hidden=$(sed -n 's/^InaccessiblePaths=//p' "$ROOT/systemd/sluice-publish.service" |
    tr ' ' '\n' | sed 's/^-//')
for p in $(sed -n 's/^\(receiver_key\|link_key\|staging_dir\|state_dir\) *= *"\([^"]*\)".*/\2/p' \
    "$ROOT/systemd/receiver.conf.example") /etc/sluice/link.key; do
	ok=0
	for h in $hidden; do
		case $p/ in "$h"/*) ok=1 ;; esac
	done
	[ $ok = 1 ] || die "sluice-publish.service can reach the receiver's $p"
done

make -s -C "$ROOT" uninstall PREFIX=/usr DESTDIR="$D" >/dev/null 2>&1 ||
	die "make uninstall failed"
left=$(cd "$D" && find . -type f)
[ -z "$left" ] || die "make uninstall left: $left"
echo "install tree as documented; units verified; uninstall clean"
