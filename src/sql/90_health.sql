-- ipai.health(): one row per check for operators (SPEC section 7): a name,
-- a status (ok, warning or critical) and a detail saying what was seen and
-- what to do.  It only reads.  service_role and superusers: it looks
-- across organizations, and as its definer it also sees pg_cron's jobs and
-- every backend (for runs held by backends that are gone).

CREATE FUNCTION ipai.health()
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
	ob record;
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

	-- the outbox: rows due that nobody sends, rows given up
	SELECT pg_catalog.count(*) FILTER (WHERE d.due) AS due,
		   pg_catalog.min(d.due_since) FILTER (WHERE d.due) AS oldest_due,
		   pg_catalog.count(*) FILTER (WHERE d.leased) AS leased,
		   pg_catalog.count(*) FILTER (WHERE NOT d.due AND NOT d.leased AND NOT d.parked) AS waiting,
		   pg_catalog.count(*) FILTER (WHERE d.parked) AS parked
	  INTO ob
	  FROM (SELECT o.next_attempt_at OPERATOR(pg_catalog.=) 'infinity' AS parked,
				   coalesce(o.claimed_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '5 minutes'),
							false) AS leased,
				   o.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()
				   AND (o.claimed_at IS NULL
						OR o.claimed_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '5 minutes')) AS due,
				   greatest(o.next_attempt_at, o.claimed_at OPERATOR(pg_catalog.+) interval '5 minutes') AS due_since
			  FROM ipai.outbox o WHERE o.sent_at IS NULL AND o.dead_at IS NULL) d;
	name := 'outbox backlog';
	detail := pg_catalog.format('%s rows due%s, %s leased to a sender, %s waiting to retry, %s parked until their organization has a Stripe customer',
		ob.due,
		CASE WHEN ob.due OPERATOR(pg_catalog.>) 0
			 THEN pg_catalog.format(' (the oldest due since %s)', ob.oldest_due) ELSE '' END,
		ob.leased, ob.waiting, ob.parked);
	IF ob.due OPERATOR(pg_catalog.>) 0
	   AND ob.oldest_due OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '15 minutes') THEN
		status := 'warning';
		detail := detail OPERATOR(pg_catalog.||) ': is the sender (outbox-sender) running?';
	ELSE
		status := 'ok';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) AS dead,
		   pg_catalog.count(*) FILTER (WHERE o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event') AS dead_meter,
		   pg_catalog.max(o.dead_at) AS newest
	  INTO ob
	  FROM ipai.outbox o WHERE o.dead_at IS NOT NULL;
	name := 'outbox dead';
	IF ob.dead OPERATOR(pg_catalog.=) 0 THEN
		status := 'ok';
		detail := 'no row was given up';
	ELSE
		status := CASE WHEN ob.dead_meter OPERATOR(pg_catalog.>) 0 THEN 'critical' ELSE 'warning' END;
		detail := pg_catalog.format('%s rows given up (%s of them Stripe meter events: usage not billed), the newest at %s: read ipai.outbox.last_error, fix the cause, then SELECT ipai.outbox_retry(id) (or DELETE the row to give it up for good)',
									ob.dead, ob.dead_meter, ob.newest);
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
REVOKE ALL ON FUNCTION ipai.health() FROM PUBLIC;

CREATE FUNCTION ipai._grants_health() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.health() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.realtime_tables() TO service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_health() FROM PUBLIC;
