# make demo's script (the README's first command) runs to the end and
# releases its bundle byte for byte.
. "$(dirname "$0")/lib.sh"

bash "$ROOT/tools/demo.sh" >"$T/demo.out" 2>&1 || {
	tail -n 20 "$T/demo.out"
	die "tools/demo.sh failed"
}
grep -q "state=RELEASED" "$T/demo.out" || die "demo: nothing released"
grep -q "== identical to the source bundle" "$T/demo.out" ||
	die "demo: released tree differs"
grep -q "== models/demo-model/latest is the bundle" "$T/demo.out" ||
	die "demo: not published to the model directory"
echo "make demo releases its bundle and publishes it"
