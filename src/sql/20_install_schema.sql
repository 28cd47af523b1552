-- ipai.install_schema(): creates and migrates the extension's tables.
--
-- The tables are ordinary tables, not extension members, so pg_dump keeps
-- them and what users add to them, ALTER EXTENSION stays code-only, and
-- DROP EXTENSION without CASCADE cannot destroy tenant data (the tables
-- depend on the extension's types and functions).
--
-- Migration steps are grouped by area, one function each
-- (ipai._schema_<area>(from_version)); every step is guarded by
-- "IF from_version < N" so a database at any recorded version is brought
-- to ipai._schema_target_version() exactly once.  Areas run in dependency
-- order: core, billing, cms, scheduling, admin, then metering (which
-- attaches its limit triggers to pages, members and invitations), then
-- views that read across areas (dashboards).

-- The schema version this code creates.  Bump it with a new step in every
-- area function that changes.
--   1  extension 1.0: every table of the SPEC
--   2  extension 1.1: indexes for ipai.health()
--   3  extension 1.2: usage counters count the events inside their window
--      (usage_counters.carried, usage_events_window, period triggers); the
--      billing_customers link triggers that release deferred webhooks
--   4  extension 1.3: the outbox keeps delivery failures (attempts,
--      next_attempt_at, last_error, dead_at, in_doubt, batch) and wakes
--      senders (trigger outbox_notify)
CREATE FUNCTION ipai._schema_target_version() RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 4 $$;

CREATE FUNCTION ipai.install_schema(distributed boolean DEFAULT false) RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	from_version integer := 0;
	target integer := ipai._schema_target_version();
	ext_version text;
	roles_note text;
BEGIN
	IF distributed IS NULL THEN
		RAISE EXCEPTION 'argument "distributed" must not be null'
			USING ERRCODE = '22023';
	END IF;
	IF distributed AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
								   WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION 'citus is not installed in this database'
			USING ERRCODE = '0A000',
				  DETAIL = 'install_schema(distributed => true) distributes the tables with Citus.',
				  HINT = 'Run CREATE EXTENSION citus first, or call ipai.install_schema() for a single node.';
	END IF;

	-- one installer at a time; a second caller waits and then finds it done
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('ipai.install_schema'));

	SELECT extversion INTO ext_version FROM pg_catalog.pg_extension
	 WHERE extname OPERATOR(pg_catalog.=) 'ipai_saas';

	IF pg_catalog.to_regclass('ipai.schema_version') IS NULL THEN
		CREATE TABLE ipai.schema_version (
			version integer PRIMARY KEY,
			extension_version text NOT NULL,
			installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
		);
		COMMENT ON TABLE ipai.schema_version IS
			'Schema versions applied by ipai.install_schema(), newest last';
		ALTER TABLE ipai.schema_version ENABLE ROW LEVEL SECURITY;
	ELSE
		SELECT coalesce(max(version), 0) INTO from_version FROM ipai.schema_version;
	END IF;

	IF from_version OPERATOR(pg_catalog.>) target THEN
		RAISE EXCEPTION 'ipai schema version % is newer than this extension supports (%)',
			from_version, target
			USING ERRCODE = '55000',
				  HINT = 'Run ALTER EXTENSION ipai_saas UPDATE first.';
	END IF;

	roles_note := ipai.create_supabase_roles();
	IF distributed AND roles_note OPERATOR(pg_catalog.~) '^created' THEN
		-- Citus propagates them, but its own connections (to the
		-- coordinator's placements too) cannot see roles this transaction
		-- has not committed
		RAISE EXCEPTION 'the Supabase roles must exist before the tables are distributed'
			USING ERRCODE = '55000',
				  HINT = 'Run SELECT ipai.create_supabase_roles(); first, then install_schema(distributed => true).';
	END IF;

	IF from_version OPERATOR(pg_catalog.<) target THEN
		PERFORM ipai._schema_core(from_version);
		PERFORM ipai._schema_billing(from_version);
		PERFORM ipai._schema_cms(from_version);
		PERFORM ipai._schema_scheduling(from_version);
		PERFORM ipai._schema_admin(from_version);
		PERFORM ipai._schema_metering(from_version);
		PERFORM ipai._schema_views(from_version);
		INSERT INTO ipai.schema_version (version, extension_version)
			VALUES (target, ext_version);
	END IF;

	-- EXECUTE grants of every area, each in its ipai._grants_<area>(); run
	-- every time, so functions added by ALTER EXTENSION UPDATE get theirs
	PERFORM ipai._run_grants();

	IF distributed THEN
		PERFORM ipai._schema_distribute();
	END IF;

	-- Supabase Realtime, where its publication exists (every call: the
	-- publication may appear after the first install)
	PERFORM ipai._realtime_publish();

	IF from_version OPERATOR(pg_catalog.=) 0 THEN
		RETURN pg_catalog.format('ipai schema installed at version %s', target);
	ELSIF from_version OPERATOR(pg_catalog.<) target THEN
		RETURN pg_catalog.format('ipai schema migrated from version %s to %s',
								 from_version, target);
	END IF;
	RETURN pg_catalog.format('ipai schema is up to date at version %s', target);
END
$$;
REVOKE ALL ON FUNCTION ipai.install_schema(boolean) FROM PUBLIC;
COMMENT ON FUNCTION ipai.install_schema(boolean) IS
	'Creates or migrates the ipai tables (idempotent); distributed => true uses Citus';

-- Runs every ipai._grants_<area>() (the EXECUTE grants of each area), in
-- name order.
CREATE FUNCTION ipai._run_grants() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	grants_fn regprocedure;
BEGIN
	FOR grants_fn IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND p.proname OPERATOR(pg_catalog.~) '^_grants_[a-z_]+$'
		   AND p.pronargs OPERATOR(pg_catalog.=) 0
		 ORDER BY p.proname
	LOOP
		EXECUTE pg_catalog.format('SELECT %s', grants_fn);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._run_grants() FROM PUBLIC;
