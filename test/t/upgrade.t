#!/usr/bin/env bash
# Upgrade path (TAP): for every released version older than the current
# one, install it, run install_schema(), fill every table (the RLS fixtures
# of every area), ALTER EXTENSION ipai_saas UPDATE, install_schema() again,
# and compare the catalog with a fresh install of the current version:
# extension members, function definitions and privileges, table columns,
# constraints, indexes, policies, triggers, table privileges, enum labels.
# The data must survive the upgrade unchanged.
set -uo pipefail
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | head -40 | sed 's/^/# /'; }
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$@"; }

sharedir=$("$IPAI_PGBIN/pg_config" --sharedir 2>/dev/null || pg_config --sharedir)
current=$(q postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'ipai_saas'")
versions=$(q postgres -c "SELECT version FROM pg_available_extension_versions WHERE name = 'ipai_saas' AND version <> '$current' ORDER BY string_to_array(version, '.')::int[]")
dbs=()
trap 'for d in "${dbs[@]}"; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1; done' EXIT

. "$IPAI_SRC/test/lib/catalog.sh"

# columns renamed by a schema version, "table.old table.new" per line:
# their data must survive under the new name
RENAMED='outbox.claim_count outbox.attempts'
renamed() {
	local from to list=$1
	while read -r from to; do
		list=$(printf '%s\n' "$list" | sed "s/^$from\$/$to/")
	done <<<"$RENAMED"
	printf '%s\n' "$list"
}

fresh=ipai_upg_fresh_$$
dbs+=("$fresh")
psql -X -q -d postgres -c "CREATE DATABASE $fresh TEMPLATE template0" >/dev/null
q "$fresh" -c "CREATE EXTENSION ipai_saas CASCADE" -c "SELECT ipai.install_schema()" >/dev/null
fill "$fresh" || nok "fixtures load into a fresh install"
want=$(catalog "$fresh")

if [ -z "$versions" ]; then
	ok "no older released version to upgrade from (current $current)"
fi
for v in $versions; do
	db=ipai_upg_${v//./_}_$$
	dbs+=("$db")
	psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE template0" >/dev/null
	if ! out=$(q "$db" -c "CREATE EXTENSION ipai_saas VERSION '$v' CASCADE" -c "SELECT ipai.install_schema()" 2>&1); then
		nok "install version $v" "$out"; continue
	fi
	ok "install version $v and its schema"
	if fill "$db"; then ok "fill version $v with data"; else nok "fill version $v with data"; fi
	cols=$(columns "$db")
	before=$(fingerprint "$db" "$cols")
	if out=$(q "$db" -c "ALTER EXTENSION ipai_saas UPDATE" -c "SELECT ipai.install_schema()" 2>&1); then
		ok "ALTER EXTENSION ipai_saas UPDATE from $v, then install_schema(): $(echo "$out" | tail -1)"
	else
		nok "ALTER EXTENSION ipai_saas UPDATE from $v" "$out"; continue
	fi
	got=$(q "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'ipai_saas'")
	[ "$got" = "$current" ] && ok "now at version $current" || nok "now at version $current" "at $got"
	if d=$(diff <(echo "$want") <(catalog "$db")); then
		ok "the catalog after upgrading from $v equals a fresh install of $current"
	else
		nok "the catalog after upgrading from $v equals a fresh install of $current" "$d"
	fi
	if d=$(diff <(echo "$before") <(fingerprint "$db" "$(renamed "$cols")")); then
		ok "the data survived the upgrade from $v"
	else
		nok "the data survived the upgrade from $v" "$d"
	fi
	again=$(q "$db" -c "SELECT ipai.install_schema()")
	case "$again" in *"up to date"*) ok "install_schema() is idempotent after the upgrade" ;; *) nok "install_schema() is idempotent after the upgrade" "$again" ;; esac
done
echo "1..$n"
