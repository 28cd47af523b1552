-- Citus (SPEC section 9): ipai.install_schema(distributed => true) on the
-- coordinator makes the tables Citus tables and delegates the
-- organization-scoped functions to the worker holding the organization.
--
-- What each table becomes:
--   reference (a copy on every node): the shared catalogues plans and
--     plan_entitlements, webhook_secrets, schema_version,
--     _usage_cache_signal, and the webhook inbox webhook_events, whose
--     rows may not be attributable to an organization yet (org_id NULL
--     while deferred) and which triggers on workers read;
--   distributed by organization, colocated: organizations (by id) and
--     every other table (by org_id), so that everything one organization
--     owns lives on one worker and every trigger works on one shard group;
--     audit_log too: its rows of no organization (secret rotation) carry
--     the nil uuid there (ipai._audit).
-- Foreign keys between our tables are dropped while the tables change
-- kind and recreated after (Citus converts local tables referencing a new
-- reference table otherwise, and refuses their policies).  Data already in
-- the tables moves to the workers.  Tables already distributed are left
-- alone, so calling it again changes nothing; a table added by a later
-- schema version is distributed by the next call.

-- Whether the ipai tables are Citus tables here.
CREATE FUNCTION ipai.is_distributed() RETURNS boolean
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL
	   OR pg_catalog.to_regclass('ipai.organizations') IS NULL THEN
		RETURN false;
	END IF;
	RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
					WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'ipai.organizations'::regclass);
END
$$;
-- (callable by everyone: the functions that run as their caller, the
-- outbox leases among them, ask it)
COMMENT ON FUNCTION ipai.is_distributed() IS
	'Whether ipai.install_schema(distributed => true) made the tables Citus tables in this database';

-- The Citus kind of one of our tables: reference or distributed.
CREATE FUNCTION ipai._citus_kind(rel regclass) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN $1::text IN ('ipai.plans', 'ipai.plan_entitlements', 'ipai.webhook_secrets',
										 'ipai.schema_version', 'ipai._usage_cache_signal',
										 'ipai.webhook_events')
					  THEN 'reference' ELSE 'distributed' END $$;
REVOKE ALL ON FUNCTION ipai._citus_kind(regclass) FROM PUBLIC;

-- The organization-scoped functions Citus runs on the worker holding the
-- organization (their first argument), and what they are delegated by.
CREATE FUNCTION ipai._citus_delegated()
	RETURNS TABLE (fn regprocedure, arg text)
	LANGUAGE sql STABLE
	AS $$ SELECT p.oid::regprocedure, '$1'
			FROM pg_catalog.pg_proc p
		   WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			 AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY[
				 'check_entitlement', 'consume_entitlement', 'record_usage', 'reserve_entitlement',
				 'preview_invoice'])
			 AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'uuid'::regtype $$;
REVOKE ALL ON FUNCTION ipai._citus_delegated() FROM PUBLIC;

-- Rewrites the policies of our tables for Citus, which evaluates them on
-- the shards and refuses subqueries in them: a membership test
-- "org_id = ANY ((SELECT ipai.user_org_ids(role)))", which reads every
-- organization's members, becomes ipai.is_org_member(org_id, role), which
-- reads the members of the row's organization only (on the same worker);
-- any other "(SELECT ipai.f(args))" becomes "ipai.f(args)".
CREATE FUNCTION ipai._citus_policies() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p record;
	member text := '(\w+) = ANY \(\( SELECT ipai\.user_org_ids\(([^()]*)\) AS user_org_ids\)::uuid\[\]\)';
	scalar text := '\(\s*SELECT (ipai\.[a-z_]+\([^()]*\)) AS [a-z_]+\)';
BEGIN
	FOR p IN
		SELECT pol.tablename, pol.policyname,
			   pg_catalog.regexp_replace(pg_catalog.regexp_replace(pol.qual, member,
					'ipai.is_org_member(\1, \2)', 'g'), scalar, '\1', 'g') AS qual,
			   pg_catalog.regexp_replace(pg_catalog.regexp_replace(pol.with_check, member,
					'ipai.is_org_member(\1, \2)', 'g'), scalar, '\1', 'g') AS with_check
		  FROM pg_catalog.pg_policies pol
		 WHERE pol.schemaname OPERATOR(pg_catalog.=) 'ipai'
		   AND (pol.qual OPERATOR(pg_catalog.~) scalar OR pol.with_check OPERATOR(pg_catalog.~) scalar)
	LOOP
		IF p.qual IS NOT NULL THEN
			EXECUTE pg_catalog.format('ALTER POLICY %I ON ipai.%I USING (%s)', p.policyname, p.tablename, p.qual);
		END IF;
		IF p.with_check IS NOT NULL THEN
			EXECUTE pg_catalog.format('ALTER POLICY %I ON ipai.%I WITH CHECK (%s)', p.policyname, p.tablename,
									  p.with_check);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._citus_policies() FROM PUBLIC;

CREATE FUNCTION ipai._schema_distribute() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	fk record;
	t record;
	f record;
	readd text[] := '{}';
	stmt text;
	todo integer;
	failed text;
BEGIN
	SELECT pg_catalog.count(*) INTO todo
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
	   AND c.relkind OPERATOR(pg_catalog.=) 'r'
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
						WHERE d.logicalrelid OPERATOR(pg_catalog.=) c.oid);
	IF todo OPERATOR(pg_catalog.>) 0 THEN
		-- Citus connects to the workers as the current role: a caller acting
		-- as authenticated or service_role (SET ROLE) needs it to log in
		-- there (pg_hba decides from where: the nodes only)
		ALTER ROLE anon LOGIN;
		ALTER ROLE authenticated LOGIN;
		ALTER ROLE service_role LOGIN;

		-- foreign keys to reference tables, added in the same transaction
		-- as the shards, need Citus's sequential mode
		PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
		-- rows of no organization get the nil uuid (see ipai._audit), and
		-- the key includes the organization, as Citus requires
		IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
						 WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'ipai.audit_log'::regclass)) THEN
			UPDATE ipai.audit_log SET org_id = '00000000-0000-0000-0000-000000000000' WHERE org_id IS NULL;
			ALTER TABLE ipai.audit_log ALTER COLUMN org_id SET NOT NULL,
				DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (org_id, id);
		END IF;

		FOR fk IN
			SELECT c.conrelid::regclass AS rel, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
			  FROM pg_catalog.pg_constraint c
			 WHERE c.contype OPERATOR(pg_catalog.=) 'f'
			   AND c.connamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			 ORDER BY c.conrelid, c.conname
		LOOP
			readd := readd OPERATOR(pg_catalog.||)
					 pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.rel, fk.conname, fk.def);
			EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
		END LOOP;

		-- policies: Citus refuses subqueries in them; ours wrap their
		-- function calls in a scalar subquery only so that PostgreSQL
		-- evaluates them once per statement
		PERFORM ipai._citus_policies();

		-- our triggers stay off while the rows move: they read and write
		-- other tables of the organization, which may not be on the
		-- workers yet
		FOR t IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c
				  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
					AND c.relkind OPERATOR(pg_catalog.=) 'r'
		LOOP
			EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER USER', t.rel);
		END LOOP;

		-- reference tables first, then organizations, then the rest
		FOR t IN
			SELECT c.oid::regclass AS rel, ipai._citus_kind(c.oid::regclass) AS kind
			  FROM pg_catalog.pg_class c
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			   AND c.relkind OPERATOR(pg_catalog.=) 'r'
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
								WHERE d.logicalrelid OPERATOR(pg_catalog.=) c.oid)
			 ORDER BY ipai._citus_kind(c.oid::regclass) OPERATOR(pg_catalog.<>) 'reference',
					  c.oid::regclass OPERATOR(pg_catalog.<>) 'ipai.organizations'::regclass,
					  c.relname
		LOOP
			IF t.kind OPERATOR(pg_catalog.=) 'reference' THEN
				EXECUTE 'SELECT create_reference_table($1)' USING t.rel;
			ELSIF t.rel OPERATOR(pg_catalog.=) 'ipai.organizations'::regclass THEN
				EXECUTE 'SELECT create_distributed_table($1, $2)' USING t.rel, 'id';
			ELSE
				EXECUTE 'SELECT create_distributed_table($1, $2, colocate_with => $3)'
					USING t.rel, 'org_id', 'ipai.organizations';
			END IF;
		END LOOP;

		FOREACH stmt IN ARRAY readd LOOP
			EXECUTE stmt;
		END LOOP;
		FOR t IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c
				  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
					AND c.relkind OPERATOR(pg_catalog.=) 'r'
		LOOP
			EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER USER', t.rel);
		END LOOP;
		-- but not the outbox's NOTIFY: on a worker a notification reaches
		-- no listener on the coordinator, and Citus cannot commit (PREPARE)
		-- a transaction across nodes that has notified.  Outbox senders
		-- poll instead.  (The approvals' trigger writes to the relay below.)
		ALTER TABLE ipai.outbox DISABLE TRIGGER outbox_notify;
	END IF;

	-- the dashboards' per-organization functions, in the FROM of views
	-- that read every shard: Citus runs only immutable ones there (on the
	-- worker of each row); see src/sql/82_dashboards.sql
	ALTER FUNCTION ipai._dashboard_period(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_seats(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_usage(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_preview(uuid) IMMUTABLE;

	-- The notification relay: on Citus the approvals' trigger, on a worker,
	-- writes its notification here, and the coordinator sends and deletes
	-- it when the transaction commits (ipai._relay_notifications(),
	-- src/citus_relay.c).
	IF pg_catalog.to_regclass('ipai._notify_relay') IS NULL THEN
		CREATE TABLE ipai._notify_relay (
			org_id uuid NOT NULL,
			id bigint GENERATED ALWAYS AS IDENTITY,
			channel text NOT NULL,
			payload text NOT NULL,
			PRIMARY KEY (org_id, id)
		);
		ALTER TABLE ipai._notify_relay ENABLE ROW LEVEL SECURITY;
		REVOKE ALL ON ipai._notify_relay FROM PUBLIC;
		COMMENT ON TABLE ipai._notify_relay IS
			'On Citus: notifications written on the workers, sent by the coordinator at commit';
		EXECUTE 'SELECT create_distributed_table($1, $2, colocate_with => $3)'
			USING 'ipai._notify_relay', 'org_id', 'ipai.organizations';
	END IF;
	ALTER TABLE ipai.cms_approvals ENABLE TRIGGER cms_approvals_notify;

	-- the EXECUTE grants of our functions on the workers too: Citus
	-- propagates the extension, not what install_schema granted since
	-- (except on the delegated functions, whose grants it propagates and
	-- which the workers refuse to change)
	SELECT pg_catalog.string_agg(pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I;',
												   p.oid::regprocedure, r.rolname), ' ')
	  INTO stmt
	  FROM pg_catalog.pg_proc p
	 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
	   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object d
						WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
						  AND d.objid OPERATOR(pg_catalog.=) p.oid);
	IF stmt IS NOT NULL THEN
		EXECUTE 'SELECT pg_catalog.string_agg(r.nodename || '':'' || r.nodeport || '' '' || r.result, ''; '')
				   FROM run_command_on_workers($1) r WHERE NOT r.success'
			INTO failed USING 'DO $g$ BEGIN ' OPERATOR(pg_catalog.||) stmt OPERATOR(pg_catalog.||) ' END $g$';
		IF failed IS NOT NULL THEN
			RAISE EXCEPTION 'could not grant the ipai functions on the workers: %', failed
				USING ERRCODE = '55000',
					  HINT = 'Create the extension in a transaction of its own first (CREATE EXTENSION ipai_saas CASCADE), then install_schema(distributed => true).';
		END IF;
	END IF;

	-- delegation (again on every call: a function added by ALTER EXTENSION
	-- UPDATE gets it too)
	FOR f IN SELECT * FROM ipai._citus_delegated() LOOP
		EXECUTE 'SELECT create_distributed_function($1, $2, colocate_with => $3)'
			USING f.fn, f.arg, 'ipai.organizations';
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_distribute() FROM PUBLIC;

-- Sends, on the coordinator, the notifications the workers wrote to the
-- relay in this transaction, oldest first, and deletes them; called by
-- the coordinator just before a commit that may have written some
-- (src/citus_relay.c, as the function's owner).  Rows of transactions still running are invisible
-- to it; a relay row left by a transaction that committed elsewhere (a
-- session on a worker) goes with the next one.  Elsewhere than on a Citus
-- coordinator it does nothing.
CREATE FUNCTION ipai._relay_notifications() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	n integer := 0;
BEGIN
	IF pg_catalog.to_regclass('ipai._notify_relay') IS NULL
	   OR pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
		RETURN 0;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_dist_local_group g
					 WHERE g.groupid OPERATOR(pg_catalog.=) 0)) THEN
		RETURN 0;
	END IF;
	FOR r IN
		WITH d AS (DELETE FROM ipai._notify_relay x RETURNING x.org_id, x.id, x.channel, x.payload)
		SELECT d.channel, d.payload FROM d ORDER BY d.id, d.org_id
	LOOP
		PERFORM pg_catalog.pg_notify(r.channel, r.payload);
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai._relay_notifications() FROM PUBLIC;
