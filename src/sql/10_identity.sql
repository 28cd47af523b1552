-- Identity and roles: who is acting, and whether the caller is privileged.

-- Values are ordered so that "role >= 'editor'" means editor, admin or owner.
CREATE TYPE ipai.org_role AS ENUM ('viewer', 'editor', 'admin', 'owner');

CREATE FUNCTION ipai.current_user_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ipai_current_user_id'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.current_user_id() IS
	'The acting user: request.jwt.claims sub, else the ipai.user_id setting, else NULL';

-- True when the role that called in (outside any SECURITY DEFINER function)
-- is a superuser, has BYPASSRLS, or belongs to service_role.
CREATE FUNCTION ipai.caller_is_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_caller_is_privileged'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Creates the Supabase roles on plain PostgreSQL; a no-op where they exist.
-- Needs a superuser (service_role has BYPASSRLS).
CREATE FUNCTION ipai.create_supabase_roles() RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	created text[] := '{}';
BEGIN
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'anon')) THEN
		CREATE ROLE anon NOLOGIN NOINHERIT;
		created := created || 'anon'::text;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'authenticated')) THEN
		CREATE ROLE authenticated NOLOGIN NOINHERIT;
		created := created || 'authenticated'::text;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role')) THEN
		CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
		created := created || 'service_role'::text;
	END IF;
	IF pg_catalog.cardinality(created) OPERATOR(pg_catalog.=) 0 THEN
		RETURN 'roles anon, authenticated, service_role already exist';
	END IF;
	RETURN 'created roles: ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(created, ', ');
END
$$;
REVOKE ALL ON FUNCTION ipai.create_supabase_roles() FROM PUBLIC;
