#!/usr/bin/env bash
# run.sh — every benchmark of ipai_saas (`make bench`), each on its own
# throwaway cluster with an optimised (-O2) staged build.  Benchmarks print
# figures (ratios within one run); they assert nothing about speed.
#
#   test/bench/run.sh [NAME...]     e.g. test/bench/run.sh metering diff
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/test/lib/common.sh"
pgbin=$(ipai_stage opt "-O2") || exit 1
names=${*:-$(ls "$SRC/test/bench" | sed -n 's/_bench\.sh$//p')}
rc=0
for name in $names; do
	echo "=== benchmark: $name"
	IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- "$SRC/test/bench/${name}_bench.sh" || rc=1
	echo
done
exit $rc
