# catalog.sh — the schema and data of ipai_saas in one database, as text to
# compare (sourced by test/t/upgrade.t and test/pg_upgrade/pg_upgrade.t,
# which define q: psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$@").
#
#   catalog DB           one sorted line per object of schema ipai
#   fingerprint DB [COLS] count and md5 of the rows of every table
#   columns DB           "table.column" of every column of those tables
#   fill DB              the RLS fixtures of every area: rows in every table

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

fill() {
	local f
	for f in "$IPAI_SRC"/test/fixtures/rls/*.sql; do
		q "$1" -f "$f" >/dev/null || return 1
	done
}
