#!/bin/bash
# Runs the test suites and ends with one line: "N passed, N failed, N skipped".
#   tests/run.sh          unit tests, then end-to-end tests
#   tests/run.sh unit     unit tests only
#   tests/run.sh e2e      end-to-end tests only (tests/e2e/*.sh; exit 77 = skip)
# SLUICE_TEST_FILTER=pattern runs only the matching tests.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
passed=0 failed=0 skipped=0
failures=()
log_dir=${SLUICE_TEST_LOGS:-$(mktemp -d /tmp/sluice-test-logs.XXXXXX)}
mkdir -p "$log_dir"

run_unit() {
	local bin=$1 name out p f
	name=$(basename "$bin")
	out="$log_dir/$name.log"
	"$bin" >"$out" 2>&1
	local rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed before cmocka could count
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures+=("$name")
		echo "FAIL $name ($p passed, $f failed; log: $out)"
		grep -E '^\[  (FAILED|ERROR) \]|FAIL|error' "$out" | head -20
	else
		echo "ok   $name ($p passed)"
	fi
}

run_e2e() {
	local script=$1 name out rc start
	name=$(basename "$script" .sh)
	out="$log_dir/$name.log"
	start=$(date +%s)
	timeout --kill-after=10 "${SLUICE_E2E_TIMEOUT:-900}" bash "$script" >"$out" 2>&1
	rc=$?
	case $rc in
	0) passed=$((passed + 1)); echo "ok   $name ($(( $(date +%s) - start )) s)" ;;
	77) skipped=$((skipped + 1)); echo "skip $name: $(tail -n 1 "$out")" ;;
	*) failed=$((failed + 1)); failures+=("$name")
	   echo "FAIL $name (exit $rc; log: $out)"; tail -n 25 "$out" | sed 's/^/     /' ;;
	esac
}

filter=${SLUICE_TEST_FILTER:-}
if [ "$what" = all ] || [ "$what" = unit ]; then
	for bin in tests/bin/test_*; do
		[ -x "$bin" ] || continue
		[ -n "$filter" ] && [[ "$bin" != *$filter* ]] && continue
		run_unit "$bin"
	done
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
	for script in tests/e2e/[0-9]*.sh; do
		[ -f "$script" ] || continue
		[ -n "$filter" ] && [[ "$script" != *$filter* ]] && continue
		run_e2e "$script"
	done
fi
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
