#!/usr/bin/env bash
# cluster.sh — a throwaway PostgreSQL cluster for scripts, tests and DBAs.
#
#   test/cluster.sh run [--] COMMAND [ARGS...]
#       create a cluster in a temp dir, start it, run COMMAND with PGHOST,
#       PGPORT, PGUSER, PGDATABASE pointing at it (and the server's bin
#       directory first on PATH), then stop and remove it,
#       whatever COMMAND's outcome (also on Ctrl-C).  Exits with COMMAND's
#       status.
#   test/cluster.sh shell
#       the same with an interactive psql.
#
# Environment:
#   IPAI_PGBIN      server binaries (default the system's PostgreSQL, see
#                   test/lib/common.sh; the test scripts point it at a
#                   staged build)
#   IPAI_PRELOAD    shared_preload_libraries (default 'pg_cron,ipai_saas')
#   IPAI_CONF       extra postgresql.conf lines
#   IPAI_KEEP=1     keep the data directory after stopping (for debugging)
#
# Runs as root: the cluster belongs to the postgres user (PostgreSQL refuses
# root), listens on 127.0.0.1 and a free port, with its socket in the temp
# dir.  Readiness is waited for with pg_isready, never with a fixed sleep.
set -euo pipefail

if [ -z "${IPAI_PGBIN:-}" ]; then
	. "$(dirname "$0")/lib/common.sh"
	IPAI_PGBIN=$("$SYS_PG_CONFIG" --bindir)
fi
PGBIN=$IPAI_PGBIN
PRELOAD=${IPAI_PRELOAD-pg_cron,ipai_saas}
PGOWNER=postgres

usage() {
	sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# as_owner CMD...: as the cluster's owner; from /, since the owner may not
# enter the caller's directory (a clone in root's home)
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u "$PGOWNER" -- "$@")
	else
		"$@"
	fi
}

port_is_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case "$cmd" in
	run) [ "${1:-}" = "--" ] && shift; [ $# -gt 0 ] || usage ;;
	shell) set -- psql ;;
	*) usage ;;
esac

PGROOT=$(mktemp -d /tmp/ipai.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown "$PGOWNER:$PGOWNER" "$PGROOT"
chmod 0755 "$PGROOT"
started=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$started" = 1 ]; then
		as_owner "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_owner "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "${IPAI_KEEP:-0}" = 1 ]; then
		echo "cluster.sh: kept $PGROOT" >&2
	else
		rm -rf "$PGROOT"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_owner "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust \
	--encoding=UTF8 --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 || {
	cat "$PGROOT/initdb.log" >&2
	exit 1
}

for attempt in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 40000))
	port_is_free "$PORT" || continue
	cat >"$PGROOT/data/postgresql.auto.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGROOT'
shared_preload_libraries = '$PRELOAD'
cron.database_name = 'postgres'
fsync = off
max_connections = 120
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
${IPAI_CONF:-}
CONF
	if as_owner "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 start >/dev/null 2>&1; then
		started=1
		break
	fi
	# the port may have been taken between the check and the start
	as_owner "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate stop >/dev/null 2>&1 || true
	tail -5 "$PGROOT/server.log" >&2 || true
done
if [ "$started" != 1 ]; then
	echo "cluster.sh: could not start a cluster" >&2
	exit 1
fi
"$PGBIN/pg_isready" -q -h "$PGROOT" -p "$PORT" -t 60

# the installation's own clients (psql, pg_dump, pgbench) first: a client
# of another major version may not understand this server
export PATH="$PGBIN:$PATH"
export PGHOST="$PGROOT" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
export IPAI_PGROOT="$PGROOT" IPAI_PGBIN="$PGBIN"
export IPAI_SERVER_LOG="$PGROOT/server.log"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"

set +e
"$@"
rc=$?
set -e
exit "$rc"
