# lib.sh — helpers for tests on the Citus cluster of test/citus/cluster.sh
# (source it; PGHOST/PGPORT point at the coordinator).
#
#   citus_db NAME        makes NAME a Citus database: created on the three
#                        nodes when missing, citus installed on each, the
#                        coordinator and the two workers registered
#   citus_ipai_db NAME   citus_db, then ipai_saas and its schema,
#                        distributed (install_schema(distributed => true)),
#                        and pgTAP
#   citus_drop_db NAME   drops it on every node
#   on_worker N SQL      one statement on worker N (1 or 2) of the current
#                        PGDATABASE, unaligned

citus_node_psql() { # port database psql-args...
	local port=$1 db=$2
	shift 2
	psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

citus_db() {
	local db=$1 p
	for p in $CITUS_COORDINATOR_PORT $CITUS_WORKER_PORTS; do
		if [ "$(citus_node_psql "$p" postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
			citus_node_psql "$p" postgres -c "CREATE DATABASE \"$db\"" || return 1
		fi
		citus_node_psql "$p" "$db" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS citus" || return 1
	done
	citus_node_psql "$CITUS_COORDINATOR_PORT" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_COORDINATOR_PORT)" >/dev/null || return 1
	for p in $CITUS_WORKER_PORTS; do
		if [ "$(citus_node_psql "$CITUS_COORDINATOR_PORT" "$db" -c "SELECT count(*) FROM pg_dist_node WHERE nodeport = $p")" = 0 ]; then
			citus_node_psql "$CITUS_COORDINATOR_PORT" "$db" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null || return 1
		fi
	done
}

citus_ipai_db() {
	local db=$1
	citus_db "$db" || return 1
	citus_node_psql "$CITUS_COORDINATOR_PORT" "$db" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ipai_saas CASCADE;
SELECT ipai.create_supabase_roles();
SELECT ipai.install_schema(distributed => true);
CREATE EXTENSION IF NOT EXISTS pgtap;
SQL
}

citus_drop_db() {
	local db=$1 p
	for p in $CITUS_COORDINATOR_PORT $CITUS_WORKER_PORTS; do
		citus_node_psql "$p" postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
	done
}

on_worker() {
	local n=$1 port
	port=$(echo "$CITUS_WORKER_PORTS" | cut -d' ' -f"$n")
	citus_node_psql "$port" "${PGDATABASE:-postgres}" -c "$2"
}
