#!/usr/bin/env bash
# run.sh — every benchmark of ipai_saas (`make bench`), each on its own
# throwaway cluster with an optimised (-O2) staged build.  Benchmarks print
# figures (ratios within one run); they assert nothing about speed.
#
#   test/bench/run.sh [NAME...]     e.g. test/bench/run.sh metering diff
#   test/bench/run.sh metering_profile   perf profile of a check and a consume
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/test/lib/common.sh"
pgbin=$(ipai_stage opt "-O2") || exit 1
names=${*:-$(ls "$SRC/test/bench" | sed -n 's/_bench\.sh$//p')}
rc=0
for name in $names; do
	echo "=== benchmark: $name"
	if [ "$name" = citus ]; then
		# a coordinator and two workers, with Citus built from ../shared/third_party
		. "$SRC/test/lib/citus.sh"
		if citus_pgbin=$(ipai_citus_stage opt "-O2" 2>"$IPAI_WORK/citus-bench.err"); then
			IPAI_SRC="$SRC" IPAI_PGBIN="$citus_pgbin" "$SRC/test/citus/cluster.sh" run -- \
				"$SRC/test/bench/citus_bench.sh" || rc=1
		else
			echo "skipped: $(cat "$IPAI_WORK/citus-bench.err")"
		fi
	else
		script=$SRC/test/bench/${name}_bench.sh
		# scripts that make bench does not run by itself (metering_profile)
		[ -f "$script" ] || script=$SRC/test/bench/$name.sh
		IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- "$script" || rc=1
	fi
	echo
done
exit $rc
