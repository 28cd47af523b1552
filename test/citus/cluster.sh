#!/usr/bin/env bash
# cluster.sh — a throwaway Citus cluster: a coordinator and two workers on
# 127.0.0.1, each a test/cluster.sh cluster of the staged server with
# Citus (test/lib/citus.sh), shared_preload_libraries = 'citus,pg_cron,
# ipai_saas', wal_level = logical (shard moves) and
# citus.enable_unsafe_triggers = on (our triggers on distributed tables).
# The scheduling worker and pg_cron's jobs run on the coordinator only
# (ipai.scheduler_enabled = off on the workers).
#
#   test/citus/cluster.sh run [--] COMMAND [ARGS...]
#
# COMMAND runs with PGHOST/PGPORT at the coordinator and
# CITUS_WORKER_PORTS="p1 p2", CITUS_WORKER_HOSTS (socket dirs), then the
# three clusters are stopped and removed whatever happens.  Databases are
# made Citus databases with citus_db (test/citus/lib.sh).
#
# Environment: IPAI_PGBIN (the staged bin dir with Citus, required),
# IPAI_CONF (more postgresql.conf lines for every node).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
[ -n "${IPAI_PGBIN:-}" ] || { echo "citus/cluster.sh: IPAI_PGBIN must name a staged server with Citus" >&2; exit 2; }

stage=${IPAI_CITUS_STAGE:-}
case "$stage" in
"")
	[ "${1:-}" = run ] && shift
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
	export IPAI_CITUS_COMMAND_FILE
	IPAI_CITUS_COMMAND_FILE=$(mktemp /tmp/ipai-citus-cmd.XXXXXX)
	printf '%q ' "$@" >"$IPAI_CITUS_COMMAND_FILE"
	trap 'rm -f "$IPAI_CITUS_COMMAND_FILE"' EXIT
	export IPAI_PRELOAD='citus,pg_cron,ipai_saas'
	base_conf="wal_level = logical
citus.enable_unsafe_triggers = on
citus.allow_nested_distributed_execution = on
max_connections = 200
max_worker_processes = 32
max_prepared_transactions = 100
citus.shard_count = 8
${IPAI_CONF:-}"
	export IPAI_CITUS_BASE_CONF=$base_conf
	IPAI_CONF="$base_conf
ipai.scheduler_enabled = off" IPAI_CITUS_STAGE=worker1 "$SRC/test/cluster.sh" run -- "$0"
	exit $?
	;;
worker1)
	export CITUS_W1_PORT=$PGPORT CITUS_W1_HOST=$PGHOST
	IPAI_CONF="$IPAI_CITUS_BASE_CONF
ipai.scheduler_enabled = off" IPAI_CITUS_STAGE=worker2 exec "$SRC/test/cluster.sh" run -- "$0"
	;;
worker2)
	export CITUS_W2_PORT=$PGPORT CITUS_W2_HOST=$PGHOST
	IPAI_CONF="$IPAI_CITUS_BASE_CONF" IPAI_CITUS_STAGE=coordinator exec "$SRC/test/cluster.sh" run -- "$0"
	;;
coordinator)
	export CITUS_WORKER_PORTS="$CITUS_W1_PORT $CITUS_W2_PORT"
	export CITUS_WORKER_HOSTS="$CITUS_W1_HOST $CITUS_W2_HOST"
	export CITUS_COORDINATOR_PORT=$PGPORT
	unset IPAI_CITUS_STAGE IPAI_CONF IPAI_PRELOAD
	. "$HERE/lib.sh"
	citus_db postgres >/dev/null || { echo "citus/cluster.sh: could not make database postgres a Citus database" >&2; exit 1; }
	set +e
	eval "$(cat "$IPAI_CITUS_COMMAND_FILE")"
	;;
esac
