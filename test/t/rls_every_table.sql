-- Generated row-level security checks: every table of schema ipai, present
-- and future.  For each table with org_id, a user who owns organization A
-- must not select, update, delete or insert rows of organization B, and
-- anon must see nothing.  Every table must have RLS enabled, and tables
-- without org_id (shared catalogues) must not be writable by anon or
-- authenticated.  Fixture rows come from test/fixtures/rls/.
\set QUIET 1
\pset format unaligned
\pset tuples_only true
SET client_min_messages = warning;
BEGIN;
SELECT no_plan();

-- Runs q (a statement that yields one count) as role r acting as user uid,
-- rolls everything back, and reports 'rows:N' or 'error:SQLSTATE'.
CREATE FUNCTION pg_temp.probe(r text, uid text, q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	BEGIN
		PERFORM set_config('ipai.user_id', coalesce(uid, ''), true);
		EXECUTE format('SET LOCAL ROLE %I', r);
		EXECUTE q INTO n;
		RAISE EXCEPTION USING ERRCODE = 'P0999', MESSAGE = n::text;
	EXCEPTION
		WHEN SQLSTATE 'P0999' THEN
			RETURN 'rows:' || SQLERRM;
		WHEN OTHERS THEN
			RETURN 'error:' || SQLSTATE;
	END;
END
$$;

-- the tenant key is org_id, and id for ipai.organizations itself
CREATE TEMP TABLE rls_tables AS
SELECT c.oid::regclass AS rel, c.relname::text AS name,
	   CASE WHEN c.oid = 'ipai.organizations'::regclass THEN 'id' ELSE 'org_id' END AS key,
	   c.oid = 'ipai.organizations'::regclass
	   OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
				   AND a.attname = 'org_id' AND NOT a.attisdropped) AS has_org
  FROM pg_class c
 WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
GRANT SELECT ON rls_tables TO PUBLIC;

-- a row of B per table, copied while privileged, for the INSERT probes
DO $$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM rls_tables WHERE has_org LOOP
		EXECUTE format('CREATE TEMP TABLE %I AS SELECT * FROM %s WHERE %I = %L LIMIT 1',
					   'src_' || t.name, t.rel, t.key, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
		EXECUTE format('GRANT SELECT ON %I TO PUBLIC', 'src_' || t.name);
	END LOOP;
END
$$;

-- every table has RLS enabled
SELECT ok(c.relrowsecurity, format('%s has row-level security enabled', c.relname))
  FROM pg_class c JOIN rls_tables t ON t.rel = c.oid
 ORDER BY c.relname;

-- shared tables: no writes for anon or authenticated
SELECT ok(NOT has_table_privilege(r, t.rel, 'INSERT, UPDATE, DELETE, TRUNCATE'),
		  format('%s is not writable by %s', t.name, r))
  FROM rls_tables t, unnest(ARRAY['anon', 'authenticated']) r
 WHERE NOT t.has_org
 ORDER BY t.name, r;

-- organization-owned tables need fixture rows of both organizations
SELECT ok((SELECT count(*) FROM (SELECT 1) x
			WHERE (xpath('/row/n/text()',
						 query_to_xml(format('SELECT count(*) AS n FROM %s WHERE %I = %L',
											 t.rel, t.key, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
									  false, true, '')))[1]::text::int > 0
			  AND (xpath('/row/n/text()',
						 query_to_xml(format('SELECT count(*) AS n FROM %s WHERE %I = %L',
											 t.rel, t.key, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
									  false, true, '')))[1]::text::int > 0) = 1,
		  format('%s has fixture rows of organizations A and B (test/fixtures/rls)', t.name))
  FROM rls_tables t WHERE t.has_org ORDER BY t.name;

-- the probes, as the owner of A (the strongest role a tenant can hold)
\set ua '''aaaaaaaa-0000-4000-8000-000000000001'''
\set orgA '''aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'''
\set orgB '''bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'''

CREATE TEMP TABLE rls_probe AS
SELECT t.name, t.rel,
	   pg_temp.probe('authenticated', :ua,
		   format('SELECT count(*) FROM %s WHERE %I = %L', t.rel, t.key, :orgB)) AS sel_b,
	   CASE WHEN has_table_privilege('authenticated', t.rel, 'SELECT') THEN
		   pg_temp.probe('authenticated', :ua,
			   format('SELECT count(*) FROM %s WHERE %I = %L', t.rel, t.key, :orgA)) END AS sel_a,
	   pg_temp.probe('anon', NULL, format('SELECT count(*) FROM %s', t.rel)) AS sel_anon,
	   (SELECT pg_temp.probe('authenticated', :ua,
			format('WITH x AS (UPDATE %s SET %I = %I WHERE %I = %L RETURNING 1) SELECT count(*) FROM x',
				   t.rel, a.attname, a.attname, t.key, :orgB))
		  FROM pg_attribute a
		 WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped
		   AND has_column_privilege('authenticated', t.rel, a.attname, 'UPDATE')
		 ORDER BY a.attnum LIMIT 1) AS upd_b,
	   pg_temp.probe('authenticated', :ua,
		   format('WITH x AS (DELETE FROM %s WHERE %I = %L RETURNING 1) SELECT count(*) FROM x',
				  t.rel, t.key, :orgB)) AS del_b,
	   (SELECT pg_temp.probe('authenticated', :ua,
			format('WITH x AS (INSERT INTO %1$s (%2$s) SELECT %2$s FROM pg_temp.%3$I RETURNING 1) SELECT count(*) FROM x',
				   t.rel, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), 'src_' || t.name))
		  FROM pg_attribute a
		 WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped
		   AND a.attidentity <> 'a' AND a.attgenerated = '') AS ins_b
  FROM rls_tables t
 WHERE t.has_org;

SELECT ok(sel_b IN ('rows:0', 'error:42501'),
		  format('%s: the owner of A selects no row of B (%s)', name, sel_b))
  FROM rls_probe ORDER BY name;
SELECT ok(sel_a ~ '^rows:[1-9]', format('%s: the owner of A sees the rows of A (%s)', name, sel_a))
  FROM rls_probe WHERE sel_a IS NOT NULL ORDER BY name;
SELECT ok(sel_anon IN ('rows:0', 'error:42501'), format('%s: anon sees nothing (%s)', name, sel_anon))
  FROM rls_probe ORDER BY name;
SELECT ok(upd_b IS NULL OR upd_b IN ('rows:0', 'error:42501'),
		  format('%s: the owner of A updates no row of B (%s)', name, coalesce(upd_b, 'no UPDATE privilege')))
  FROM rls_probe ORDER BY name;
SELECT ok(del_b IN ('rows:0', 'error:42501'),
		  format('%s: the owner of A deletes no row of B (%s)', name, del_b))
  FROM rls_probe ORDER BY name;
SELECT ok(ins_b = 'error:42501',
		  format('%s: the owner of A cannot insert a row of B (%s)', name, ins_b))
  FROM rls_probe ORDER BY name;

-- the probe itself must notice a leak: without RLS, B's members show up
ALTER TABLE ipai.org_members DISABLE ROW LEVEL SECURITY;
SELECT ok(pg_temp.probe('authenticated', :ua,
		   format('SELECT count(*) FROM ipai.org_members WHERE org_id = %L', :orgB)) ~ '^rows:[1-9]',
		  'with RLS disabled the probe sees rows of B (the check can fail)');
ALTER TABLE ipai.org_members ENABLE ROW LEVEL SECURITY;

SELECT * FROM finish();
ROLLBACK;
