-- Privilege lints over every function of schema ipai, present and future.
BEGIN;
SELECT no_plan();

CREATE TEMP VIEW ipai_functions AS
SELECT p.oid, p.oid::regprocedure::text AS sig, p.prosecdef, p.provolatile, p.proconfig, p.proacl,
	   p.prokind
  FROM pg_proc p
 WHERE p.pronamespace = 'ipai'::regnamespace;

-- SECURITY DEFINER functions pin search_path to pg_catalog, pg_temp
SELECT ok(coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false),
		  format('%s (SECURITY DEFINER) sets search_path = pg_catalog, pg_temp', sig))
  FROM ipai_functions WHERE prosecdef ORDER BY sig;

-- ... and are not executable by PUBLIC
SELECT ok(proacl IS NOT NULL
		  AND NOT EXISTS (SELECT 1 FROM aclexplode(proacl) a
						   WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
		  format('%s (SECURITY DEFINER) is not executable by PUBLIC', sig))
  FROM ipai_functions WHERE prosecdef ORDER BY sig;

-- functions that write (volatile) are not open to anon, unless meant to be
SELECT ok(NOT has_function_privilege('anon', oid, 'EXECUTE'),
		  format('%s (volatile) is not executable by anon', sig))
  FROM ipai_functions
 WHERE provolatile = 'v' AND prokind = 'f'
   AND sig NOT IN (
	   -- trigger functions cannot be called directly
	   SELECT p.oid::regprocedure::text FROM pg_proc p
		WHERE p.pronamespace = 'ipai'::regnamespace AND p.prorettype = 'trigger'::regtype)
 ORDER BY sig;

-- internal functions (_name) are never executable by anon or authenticated,
-- except the few that RLS policies or triggers need
SELECT ok(NOT has_function_privilege(r, oid, 'EXECUTE'),
		  format('internal %s is not executable by %s', sig, r))
  FROM ipai_functions, unnest(ARRAY['anon', 'authenticated']) r
 WHERE sig ~ '^ipai\._' AND provolatile = 'v'
   AND sig NOT IN (SELECT p.oid::regprocedure::text FROM pg_proc p
					WHERE p.pronamespace = 'ipai'::regnamespace AND p.prorettype = 'trigger'::regtype)
 ORDER BY sig, r;

SELECT * FROM finish();
ROLLBACK;
