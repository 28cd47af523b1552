#!/usr/bin/env bash
# demo.sh — the end-to-end story of ipai_saas, narrated in psql output, on
# a throwaway cluster.  Builds and stages this tree (optimised), starts a
# cluster with pg_cron and ipai_saas preloaded, and runs test/demo/*.sql in
# name order (one part per feature area) against database "postgres".
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/test/lib/common.sh"

pgbin=$(ipai_stage opt "-O2")
IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- bash -c '
	set -euo pipefail
	for part in "$IPAI_SRC"/test/demo/*.sql; do
		psql -X -v ON_ERROR_STOP=1 -d postgres -f "$part"
	done
	echo
	echo "The demo ran on a throwaway cluster, now stopped and removed."
'
