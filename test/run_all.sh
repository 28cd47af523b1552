#!/usr/bin/env bash
# run_all.sh — every test suite of ipai_saas on a throwaway cluster.
#
# Builds this tree with coverage instrumentation (-O0 --coverage, warnings
# as errors) into a staged copy of PostgreSQL, starts a throwaway cluster
# with pg_cron and ipai_saas preloaded, runs the suites, prints line
# coverage of src/*.c and ends with one line "N passed, M failed".
#
#   IPAI_ONLY=regex   run only test files whose name matches (e.g. diff)
#   IPAI_SUITES="regress isolation pgtap tap"   choose suites
#   IPAI_COVERAGE=0   build without coverage
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/test/lib/common.sh"

if [ "${IPAI_COVERAGE:-1}" = 1 ]; then
	kind=cov
	copt="-O0 -g --coverage -Werror"
else
	kind=opt
	copt="-O2 -Werror"
fi

# stale coverage counts would add up across runs
find "$IPAI_WORK/build/$kind/src" -name '*.gcda' -delete 2>/dev/null || true

if ! pgbin=$(ipai_stage "$kind" "$copt"); then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

results="$IPAI_WORK/results"
rm -rf "$results"
mkdir -p "$results"
chmod 0777 "$results"
export IPAI_RESULTS="$results"

IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- "$SRC/test/lib/run_suites.sh"
suite_rc=$?

passed=0
failed=0
if [ -f "$results/counts" ]; then
	while read -r suite p f; do
		passed=$((passed + p))
		failed=$((failed + f))
	done <"$results/counts"
fi
if [ "$suite_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "the suite runner itself failed (status $suite_rc)"
	failed=1
fi

if [ "$kind" = cov ] && command -v lcov >/dev/null 2>&1; then
	if lcov --quiet --capture --directory "$IPAI_WORK/build/cov/src" \
		--base-directory "$SRC" --output-file "$results/cov.info" >/dev/null 2>&1; then
		lcov --quiet --extract "$results/cov.info" "$SRC/src/*" \
			--output-file "$results/cov-src.info" >/dev/null 2>&1
		lines=$(lcov --summary "$results/cov-src.info" 2>&1 | grep -E '^ *lines' | sed 's/^ *//')
		echo "coverage of src/*.c: ${lines:-unknown}"
		lcov --list "$results/cov-src.info" 2>/dev/null | grep -E '\.c *\|' |
			sed 's/^/  /' | sed "s|$SRC/||"
	else
		echo "coverage of src/*.c: no data"
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
