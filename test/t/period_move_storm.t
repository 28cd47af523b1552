#!/usr/bin/env bash
# Usage never passes a hard limit while the usage periods move (TAP): one
# round of test/soak/period_move/run.sh, mode "sub" (a subscription
# inserted and deleted every 10 ms while 12 clients consume at the limit),
# on the fast path and on the SPI path.  Before src/usage_period_lock.c
# most such rounds passed the limit.
set -uo pipefail
db=ipai_pmove_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null || exit 1
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT
PGDATABASE=$db IPAI_IN_CLUSTER=1 PMOVE_PAUSE=0.01 PMOVE_MOVES=600 PMOVE_MODES=sub \
	"$IPAI_SRC/test/soak/period_move/run.sh" 1
