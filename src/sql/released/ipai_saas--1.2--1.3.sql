-- ipai_saas 1.2 -> 1.3: code only (frozen once released).
--   * Supabase Realtime: where the supabase_realtime publication exists,
--     install_schema() adds the tables dashboards watch
--     (ipai.realtime_tables(), ipai._realtime_publish()) and health()
--     reports them (ipai._realtime_status(), check "realtime").
\echo Use "ALTER EXTENSION ipai_saas UPDATE TO '1.3'" to load this file. \quit

-- new: ipai.realtime_tables
CREATE FUNCTION ipai.realtime_tables() RETURNS regclass[]
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN ARRAY(SELECT r FROM pg_catalog.unnest(ARRAY[
					pg_catalog.to_regclass('ipai.cms_approvals'),
					pg_catalog.to_regclass('ipai.cms_schedule'),
					pg_catalog.to_regclass('ipai.cms_pages'),
					pg_catalog.to_regclass('ipai.subscriptions')]) WITH ORDINALITY AS u(r, n)
				  WHERE r IS NOT NULL ORDER BY n);
END
$$;
REVOKE ALL ON FUNCTION ipai.realtime_tables() FROM PUBLIC;
COMMENT ON FUNCTION ipai.realtime_tables() IS
	'The tables ipai.install_schema() adds to the supabase_realtime publication when it exists';

-- new: ipai._realtime_publish
CREATE FUNCTION ipai._realtime_publish() RETURNS regclass[]
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	pub record;
	t regclass;
	added regclass[] := '{}';
BEGIN
	SELECT p.oid, p.puballtables INTO pub FROM pg_catalog.pg_publication p
	 WHERE p.pubname OPERATOR(pg_catalog.=) 'supabase_realtime';
	IF NOT FOUND OR pub.puballtables THEN
		RETURN added;
	END IF;
	FOR t IN
		SELECT u.t FROM pg_catalog.unnest(ipai.realtime_tables()) WITH ORDINALITY AS u(t, n)
		 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
							WHERE r.prpubid OPERATOR(pg_catalog.=) pub.oid
							  AND r.prrelid OPERATOR(pg_catalog.=) u.t)
		 ORDER BY u.n
	LOOP
		EXECUTE pg_catalog.format('ALTER PUBLICATION supabase_realtime ADD TABLE %s', t);
		added := added OPERATOR(pg_catalog.||) t;
	END LOOP;
	RETURN added;
END
$$;
REVOKE ALL ON FUNCTION ipai._realtime_publish() FROM PUBLIC;

-- new: ipai._realtime_status
CREATE FUNCTION ipai._realtime_status(OUT published regclass[], OUT missing regclass[])
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	pub record;
BEGIN
	SELECT p.oid, p.puballtables INTO pub FROM pg_catalog.pg_publication p
	 WHERE p.pubname OPERATOR(pg_catalog.=) 'supabase_realtime';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT coalesce(pg_catalog.array_agg(t.t ORDER BY t.n) FILTER (WHERE t.in_pub), '{}'),
		   coalesce(pg_catalog.array_agg(t.t ORDER BY t.n) FILTER (WHERE NOT t.in_pub), '{}')
	  INTO published, missing
	  FROM (SELECT u.t, u.n,
				   pub.puballtables OR EXISTS (
					   SELECT 1 FROM pg_catalog.pg_publication_rel r
						WHERE r.prpubid OPERATOR(pg_catalog.=) pub.oid
						  AND r.prrelid OPERATOR(pg_catalog.=) u.t) AS in_pub
			  FROM pg_catalog.unnest(ipai.realtime_tables()) WITH ORDINALITY AS u(t, n)) t;
END
$$;
REVOKE ALL ON FUNCTION ipai._realtime_status() FROM PUBLIC;

-- changed: ipai.install_schema
CREATE OR REPLACE FUNCTION ipai.install_schema(distributed boolean DEFAULT false) RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	from_version integer := 0;
	target integer := ipai._schema_target_version();
	ext_version text;
	roles_note text;
	grants_fn regprocedure;
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
	FOR grants_fn IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND p.proname OPERATOR(pg_catalog.~) '^_grants_[a-z_]+$'
		   AND p.pronargs OPERATOR(pg_catalog.=) 0
		 ORDER BY p.proname
	LOOP
		EXECUTE pg_catalog.format('SELECT %s', grants_fn);
	END LOOP;

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

-- changed: ipai.health
CREATE OR REPLACE FUNCTION ipai.health()
	RETURNS TABLE (name text, status text, detail text)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n bigint;
	m bigint;
	oldest timestamptz;
	jobs text[];
	want text[] := ARRAY['ipai-recover-stuck-runs', 'ipai-refresh-org-usage',
						 'ipai-run-due-publications'];
	sched record;
	rt record;
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied for function health'
			USING ERRCODE = '42501', HINT = 'Run it as service_role or a superuser.';
	END IF;

	-- the schema matches the code
	SELECT pg_catalog.max(v.version) INTO n FROM ipai.schema_version v;
	name := 'schema';
	IF n IS NULL OR n OPERATOR(pg_catalog.<) ipai._schema_target_version() THEN
		status := 'critical';
		detail := pg_catalog.format('schema version %s, the installed code needs %s: run SELECT ipai.install_schema()',
									coalesce(n::text, 'none'), ipai._schema_target_version());
	ELSE
		status := 'ok';
		detail := pg_catalog.format('schema version %s, extension %s', n,
			(SELECT e.extversion FROM pg_catalog.pg_extension e
			  WHERE e.extname OPERATOR(pg_catalog.=) 'ipai_saas'));
	END IF;
	RETURN NEXT;

	-- pg_cron jobs (pg_cron lives in one database: cron.database_name)
	name := 'pg_cron jobs';
	IF pg_catalog.to_regclass('cron.job') IS NULL THEN
		status := 'warning';
		detail := 'pg_cron is not installed in this database: no periodic usage repair, and scheduled publishing depends on the worker alone';
	ELSE
		EXECUTE 'SELECT pg_catalog.array_agg(j.jobname ORDER BY j.jobname) FROM cron.job j
				  WHERE j.jobname OPERATOR(pg_catalog.=) ANY ($1) AND j.active'
			INTO jobs USING want;
		IF jobs IS NOT DISTINCT FROM want THEN
			status := 'ok';
			detail := 'ipai-refresh-org-usage, ipai-run-due-publications and ipai-recover-stuck-runs are scheduled';
		ELSE
			status := 'warning';
			detail := pg_catalog.format('missing or inactive: %s; run SELECT ipai.schedule_jobs()',
				pg_catalog.array_to_string(ARRAY(SELECT j FROM pg_catalog.unnest(want) j
												  WHERE NOT (j OPERATOR(pg_catalog.=) ANY (coalesce(jobs, '{}')))), ', '));
		END IF;
	END IF;
	RETURN NEXT;

	-- the scheduling worker
	SELECT * INTO sched FROM ipai.scheduler_status();
	name := 'scheduler worker';
	IF NOT sched.preloaded THEN
		status := 'warning';
		detail := 'ipai_saas is not in shared_preload_libraries: no worker, scheduled publishing runs only when pg_cron or a caller runs ipai.run_due_publications()';
	ELSIF NOT sched.enabled THEN
		status := 'warning';
		detail := 'ipai.scheduler_enabled is off';
	ELSIF NOT sched.serves_this_database THEN
		status := 'ok';
		detail := pg_catalog.format('the worker serves database %s, not this one', sched.database);
	ELSIF sched.worker_pid IS NULL
		  OR sched.heartbeat_at IS NULL
		  OR sched.heartbeat_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '3 minutes') THEN
		status := 'critical';
		detail := pg_catalog.format('the worker is not running (state %s, last heartbeat %s); see the server log',
									coalesce(sched.state, 'unknown'), coalesce(sched.heartbeat_at::text, 'never'));
	ELSE
		status := 'ok';
		detail := pg_catalog.format('alive (pid %s, state %s); %s executed, %s failed; last lateness %s ms, largest %s ms',
			sched.worker_pid, sched.state, sched.executed, sched.failed,
			coalesce(pg_catalog.round(extract(epoch FROM sched.last_lateness) OPERATOR(pg_catalog.*) 1000, 1)::text, '-'),
			coalesce(pg_catalog.round(extract(epoch FROM sched.max_lateness) OPERATOR(pg_catalog.*) 1000, 1)::text, '-'));
	END IF;
	RETURN NEXT;

	-- schedules: overdue, stuck, failed
	SELECT pg_catalog.count(*), pg_catalog.min(s.run_at) INTO n, oldest FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'pending'
	   AND s.run_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '2 minutes');
	name := 'overdue schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'critical';
		detail := pg_catalog.format('%s pending schedules are more than 2 minutes late (oldest due %s): nothing is executing them; check the worker and pg_cron, or call ipai.run_due_publications()',
									n, oldest);
	ELSE
		status := 'ok';
		detail := 'no schedule is more than 2 minutes late';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'running'
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
						WHERE a.pid OPERATOR(pg_catalog.=) s.claimed_by_pid
						  AND a.backend_start OPERATOR(pg_catalog.=) s.claimed_backend_start);
	name := 'stuck schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s runs were claimed by backends that are gone: run SELECT ipai.recover_stuck_runs() (pg_cron does every 2 minutes)', n);
	ELSE
		status := 'ok';
		detail := 'no run is held by a backend that is gone';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'failed'
	   AND s.executed_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day');
	name := 'failed schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s schedules failed in the last day: see ipai.cms_schedule.error (a page no longer approved, deleted, or its scheduler no longer an admin)', n);
	ELSE
		status := 'ok';
		detail := 'no schedule failed in the last day';
	END IF;
	RETURN NEXT;

	-- the webhook inbox
	SELECT pg_catalog.count(*), pg_catalog.min(w.received_at) INTO n, oldest FROM ipai.webhook_events w
	 WHERE w.status OPERATOR(pg_catalog.=) 'deferred';
	name := 'deferred webhooks';
	IF n OPERATOR(pg_catalog.>) 0
	   AND oldest OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour') THEN
		status := 'warning';
		detail := pg_catalog.format('%s events wait for their organization, the oldest since %s: a checkout without metadata.org_id or client_reference_id? see ipai.webhook_events', n, oldest);
	ELSE
		status := 'ok';
		detail := pg_catalog.format('%s events wait for their organization%s', n,
			CASE WHEN n OPERATOR(pg_catalog.>) 0 THEN pg_catalog.format(', the oldest since %s', oldest) ELSE '' END);
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.webhook_events w
	 WHERE w.status OPERATOR(pg_catalog.=) 'failed';
	name := 'failed webhooks';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s events failed to apply: see ipai.webhook_events.error', n);
	ELSE
		status := 'ok';
		detail := 'no event failed to apply';
	END IF;
	RETURN NEXT;

	-- the outbox
	SELECT pg_catalog.count(*), pg_catalog.min(o.created_at),
		   pg_catalog.count(*) FILTER (WHERE o.claim_count OPERATOR(pg_catalog.>=) 5)
	  INTO n, oldest, m
	  FROM ipai.outbox o WHERE o.sent_at IS NULL;
	name := 'outbox backlog';
	IF m OPERATOR(pg_catalog.>) 0 THEN
		status := 'critical';
		detail := pg_catalog.format('%s rows were claimed 5 times or more without being marked sent: the sender fails on them', m);
	ELSIF n OPERATOR(pg_catalog.>) 0
		  AND oldest OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '15 minutes') THEN
		status := 'warning';
		detail := pg_catalog.format('%s rows unsent, the oldest since %s: is the sender (Edge function) running?', n, oldest);
	ELSE
		status := 'ok';
		detail := pg_catalog.format('%s rows unsent', n);
	END IF;
	RETURN NEXT;

	-- usage counters against the events they count
	SELECT pg_catalog.count(*) INTO n FROM ipai._usage_counters_to_repair() d WHERE d.drifted;
	name := 'usage counters';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s counters differ from their events: run SELECT ipai.refresh_org_usage() (pg_cron does every 5 minutes)', n);
	ELSE
		status := 'ok';
		detail := 'every counter equals its events';
	END IF;
	RETURN NEXT;

	-- Supabase Realtime: what the supabase_realtime publication carries
	SELECT r.published, r.missing INTO rt FROM ipai._realtime_status() r;
	name := 'realtime';
	IF rt.published IS NULL THEN
		status := 'ok';
		detail := 'no supabase_realtime publication in this database (Supabase Realtime not in use): nothing to publish';
	ELSIF pg_catalog.cardinality(rt.missing) OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('supabase_realtime lacks %s: run SELECT ipai.install_schema()',
									pg_catalog.array_to_string(rt.missing, ', '));
	ELSE
		status := 'ok';
		detail := pg_catalog.format('published to supabase_realtime: %s',
									pg_catalog.array_to_string(rt.published, ', '));
	END IF;
	RETURN NEXT;
END
$$;

-- changed: ipai._grants_health
CREATE OR REPLACE FUNCTION ipai._grants_health() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.health() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.realtime_tables() TO service_role;
END
$$;
