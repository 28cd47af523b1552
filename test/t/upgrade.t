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

# catalog of schema ipai, one sorted line per object
catalog() {
	q "$1" <<'SQL'
SELECT line FROM (
  SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid) AS line
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE e.extname = 'ipai_saas' AND d.deptype = 'e'
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, 'default')
    FROM pg_proc p WHERE p.pronamespace = 'ipai'::regnamespace AND p.prokind IN ('f', 'p')
  UNION ALL
  SELECT 'aggregate ' || p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'ipai'::regnamespace AND p.prokind = 'a'
  UNION ALL
  SELECT format('column %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                a.attnotnull, coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE c.relnamespace = 'ipai'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
     AND c.relkind IN ('r', 'v', 'p', 'c')
  UNION ALL
  SELECT format('relation %s %s rls=%s force=%s acl=%s options=%s', c.relname, c.relkind, c.relrowsecurity,
                c.relforcerowsecurity, coalesce(c.relacl::text, 'default'), coalesce(c.reloptions::text, ''))
    FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'S', 'i')
  UNION ALL
  SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'ipai'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'ipai'::regnamespace
  UNION ALL
  SELECT format('policy %s.%s %s %s %s %s', tablename, policyname, cmd, roles, qual, with_check)
    FROM pg_policies WHERE schemaname = 'ipai'
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'ipai'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'v'
  UNION ALL
  SELECT format('enum %s %s', enumtypid::regtype, string_agg(enumlabel, ',' ORDER BY enumsortorder))
    FROM pg_enum WHERE enumtypid IN (SELECT oid FROM pg_type WHERE typnamespace = 'ipai'::regnamespace)
   GROUP BY enumtypid
  UNION ALL
  SELECT 'schema_version ' || max(version) FROM ipai.schema_version
) s ORDER BY line;
SQL
}

# rows of every table of schema ipai, as a fingerprint per table, over the
# columns listed in $2 ("table.column" per line; all columns when empty):
# columns an upgrade adds are not part of the data that must survive
fingerprint() {
	q "$1" -v cols="${2:-}" <<'SQL'
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('%s %s', c.relname,
         (xpath('/row/h/text()', query_to_xml(format(
             'SELECT count(*) || %L || md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS h FROM (SELECT %s FROM ipai.%I) t',
             ' ', '|', '', cl.list, c.relname), false, true, '')))[1]::text) AS line
    FROM pg_class c
    CROSS JOIN LATERAL (
      SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS list
        FROM pg_attribute a
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         AND (:'cols' = '' OR c.relname || '.' || a.attname = ANY (string_to_array(:'cols', E'\n')))) cl
   WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'r' AND c.relname <> 'schema_version') s;
SQL
}

# "table.column" of every column of the tables of schema ipai
columns() {
	q "$1" -c "SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'r' ORDER BY 1"
}

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

fill() {
	local f
	for f in "$IPAI_SRC"/test/fixtures/rls/*.sql; do
		q "$1" -f "$f" >/dev/null || return 1
	done
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
