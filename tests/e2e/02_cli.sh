# All five programs take --help (usage on stdout, exit 0) and --version
# (one line, exit 0); a wrong option is a usage error (stderr, exit 2).
set -u
cd "$(dirname "$0")/../.."
fail=0
for p in receiver/sluice-recv sender/sluice-send tools/sluice tools/sluice-link \
    tools/sluice-hookd; do
	name=$(basename "$p")
	out=$("$p" --help 2>/dev/null); rc=$?
	if [ $rc -ne 0 ] || ! echo "$out" | grep -q "^usage:"; then
		echo "FAIL: $name --help: exit $rc, stdout '$out'"; fail=1
	fi
	out=$("$p" --version 2>/dev/null); rc=$?
	if [ $rc -ne 0 ] || ! echo "$out" | grep -qx "$name [0-9][0-9.]*"; then
		echo "FAIL: $name --version: exit $rc, '$out'"; fail=1
	fi
	"$p" --no-such-option >/dev/null 2>&1; rc=$?
	[ $rc -eq 2 ] || { echo "FAIL: $name --no-such-option: exit $rc"; fail=1; }
	echo "$name: $("$p" --version)"
done
exit $fail
