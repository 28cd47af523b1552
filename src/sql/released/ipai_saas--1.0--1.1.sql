-- ipai_saas 1.0 -> 1.1: code only (frozen once released).
--   * ipai.health(): one row per operational check;
--   * schema version 2, applied by SELECT ipai.install_schema() after this
--     update: indexes of the inbox backlog and of failed schedules that
--     health() reads.
\echo Use "ALTER EXTENSION ipai_saas UPDATE TO '1.1'" to load this file. \quit

CREATE OR REPLACE FUNCTION ipai._schema_target_version() RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 2 $$;

CREATE OR REPLACE FUNCTION ipai._schema_billing(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.billing_customers (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_customer_id text NOT NULL CHECK (stripe_customer_id <> ''),
			email text,
			last_event_id text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id)
		);
		COMMENT ON TABLE ipai.billing_customers IS
			'The Stripe customer of each organization, linked by checkout.session.completed';
		CREATE INDEX billing_customers_stripe_id ON ipai.billing_customers (stripe_customer_id);

		CREATE TABLE ipai.subscriptions (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_subscription_id text NOT NULL CHECK (stripe_subscription_id <> ''),
			stripe_customer_id text,
			status text NOT NULL,
			plan_id text REFERENCES ipai.plans (id),
			stripe_price_id text,
			quantity bigint,
			current_period_start timestamptz,
			current_period_end timestamptz,
			cancel_at_period_end boolean NOT NULL DEFAULT false,
			canceled_at timestamptz,
			ended_at timestamptz,
			trial_end timestamptz,
			last_event_id text,
			last_event_type text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, stripe_subscription_id)
		) WITH (fillfactor = 70);
		-- every event of a subscription rewrites its row: room on the page
		-- keeps those updates HOT (no index entries, pruned in place)
		CREATE INDEX subscriptions_stripe_id ON ipai.subscriptions (stripe_subscription_id);
		COMMENT ON TABLE ipai.subscriptions IS
			'Stripe subscriptions as of the newest applied event; the organization''s plan follows them';

		CREATE TABLE ipai.invoices (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_invoice_id text NOT NULL CHECK (stripe_invoice_id <> ''),
			stripe_subscription_id text,
			stripe_customer_id text,
			status text NOT NULL,
			currency text,
			amount_due bigint,
			amount_paid bigint,
			amount_remaining bigint,
			period_start timestamptz,
			period_end timestamptz,
			hosted_invoice_url text,
			invoice_pdf text,
			paid_at timestamptz,
			attempt_count integer,
			last_event_id text,
			last_event_type text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, stripe_invoice_id)
		);
		CREATE INDEX invoices_stripe_id ON ipai.invoices (stripe_invoice_id);
		COMMENT ON TABLE ipai.invoices IS
			'Stripe invoices as of the newest applied event; amounts in minor units (cents)';

		-- the inbox: every delivered event once, with what became of it
		CREATE TABLE ipai.webhook_events (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			provider text NOT NULL DEFAULT 'stripe',
			event_id text NOT NULL,
			event_type text NOT NULL,
			event_created timestamptz,
			livemode boolean,
			api_version text,
			org_id uuid,
			stripe_object_id text,
			stripe_customer_id text,
			stripe_subscription_id text,
			payload jsonb NOT NULL,
			status text NOT NULL DEFAULT 'received'
				CHECK (status IN ('received', 'processed', 'ignored', 'deferred', 'failed')),
			error text,
			attempts integer NOT NULL DEFAULT 0,
			deliveries integer NOT NULL DEFAULT 1,
			received_at timestamptz NOT NULL DEFAULT now(),
			last_delivery_at timestamptz NOT NULL DEFAULT now(),
			processed_at timestamptz,
			UNIQUE (provider, event_id)
		);
		-- deferred events are found again by the customer or subscription
		-- whose link to an organization releases them
		CREATE INDEX webhook_events_deferred_customer
			ON ipai.webhook_events (stripe_customer_id) WHERE status = 'deferred';
		CREATE INDEX webhook_events_deferred_subscription
			ON ipai.webhook_events (stripe_subscription_id) WHERE status = 'deferred';
		-- a completed checkout attributes its subscription's later events
		CREATE INDEX webhook_events_checkout_subscription
			ON ipai.webhook_events (stripe_subscription_id)
			WHERE event_type = 'checkout.session.completed';
		CREATE INDEX webhook_events_org ON ipai.webhook_events (org_id, received_at);
		-- lz4 compresses a 3 KB event ~10x faster than pglz, where available
		BEGIN
			ALTER TABLE ipai.webhook_events ALTER COLUMN payload SET COMPRESSION lz4;
		EXCEPTION WHEN feature_not_supported THEN
			NULL;
		END;
		COMMENT ON TABLE ipai.webhook_events IS
			'Webhook inbox: every event once (deliveries counts re-deliveries), with its status and why';
		COMMENT ON COLUMN ipai.webhook_events.error IS
			'Why the event was deferred, ignored, or found older than the state already applied';

		-- signing secrets; several may be active during a rotation
		CREATE TABLE ipai.webhook_secrets (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			provider text NOT NULL DEFAULT 'stripe',
			secret text NOT NULL CHECK (secret <> ''),
			created_at timestamptz NOT NULL DEFAULT now(),
			expires_at timestamptz,
			UNIQUE (provider, secret)
		);
		COMMENT ON TABLE ipai.webhook_secrets IS
			'Webhook signing secrets; active while expires_at is NULL or in the future (no policy: functions only)';

		ALTER TABLE ipai.billing_customers ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.subscriptions ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.invoices ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.webhook_events ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.webhook_secrets ENABLE ROW LEVEL SECURITY;

		-- members read their organization's billing; Stripe writes it
		CREATE POLICY billing_customers_member_read ON ipai.billing_customers FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY subscriptions_member_read ON ipai.subscriptions FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY invoices_admin_read ON ipai.invoices FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		CREATE POLICY webhook_events_admin_read ON ipai.webhook_events FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		-- webhook_secrets: no policy at all, so nobody but service_role and
		-- superusers (who bypass RLS) sees a row, and only through functions

		GRANT SELECT ON ipai.billing_customers, ipai.subscriptions, ipai.invoices,
			ipai.webhook_events TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.billing_customers, ipai.subscriptions,
			ipai.invoices, ipai.webhook_events TO service_role;
	END IF;
	IF from_version < 2 THEN
		-- ipai.health() watches the inbox's backlog: deferred and failed events
		CREATE INDEX webhook_events_backlog ON ipai.webhook_events (status, received_at)
			WHERE status IN ('deferred', 'failed');
	END IF;
END
$$;


CREATE OR REPLACE FUNCTION ipai._schema_scheduling(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.cms_schedule (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id bigint GENERATED ALWAYS AS IDENTITY,
			page_id uuid NOT NULL,
			action ipai.schedule_action NOT NULL DEFAULT 'publish',
			run_at timestamptz NOT NULL CHECK (isfinite(run_at)),
			status ipai.schedule_status NOT NULL DEFAULT 'pending',
			attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
			-- a page locked by another transaction defers a run to retry_at
			retry_at timestamptz,
			claimed_by_pid integer,
			claimed_backend_start timestamptz,
			claimed_at timestamptz,
			executed_at timestamptz,
			lateness interval,
			executed_via text,
			error text,
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX cms_schedule_id ON ipai.cms_schedule (id);
		-- the claim scans this in run_at order; the worker reads its minimum
		CREATE INDEX cms_schedule_due ON ipai.cms_schedule (run_at, id) WHERE status = 'pending';
		CREATE INDEX cms_schedule_running ON ipai.cms_schedule (claimed_by_pid)
			WHERE status = 'running';
		-- one pending schedule per page and action: a new one replaces it
		CREATE UNIQUE INDEX cms_schedule_one_pending ON ipai.cms_schedule (org_id, page_id, action)
			WHERE status = 'pending';
		-- the reader view and the claim look up a page's open schedules
		CREATE INDEX cms_schedule_open ON ipai.cms_schedule (org_id, page_id, run_at, id)
			WHERE status IN ('pending', 'running');
		CREATE INDEX cms_schedule_page ON ipai.cms_schedule (org_id, page_id, executed_at)
			WHERE status = 'done';
		COMMENT ON TABLE ipai.cms_schedule IS
			'Scheduled publish/unpublish of pages: pending, running (claimed), done or failed';

		-- wakes the background worker once the inserting transaction commits
		CREATE TRIGGER cms_schedule_wake_worker
			AFTER INSERT OR UPDATE ON ipai.cms_schedule
			FOR EACH ROW WHEN (NEW.status = 'pending')
			EXECUTE FUNCTION ipai._cms_schedule_wake_worker();

		ALTER TABLE ipai.cms_schedule ENABLE ROW LEVEL SECURITY;
		CREATE POLICY cms_schedule_member_read ON ipai.cms_schedule FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		-- writes go through ipai.cms_schedule_publish / cms_cancel_schedule
		GRANT SELECT ON ipai.cms_schedule TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.cms_schedule TO service_role;

		-- Pages as readers should see them now, by the transaction clock:
		-- a due schedule counts as executed even before a job ran.  The
		-- effect of the open schedules is simulated in (run_at, id) order
		-- with the executor's own run-time rules (publish needs an approved
		-- page, unpublish a published one, the scheduler must still be an
		-- admin or owner).  See docs/scheduling.md for every column.
		CREATE VIEW ipai.cms_live_pages WITH (security_invoker = true) AS
		SELECT p.org_id, p.id, p.slug, p.title, p.body, p.metadata, p.content_type_id,
			   p.version, p.status,
			   live.status_live,
			   live.status_live OPERATOR(pg_catalog.=) 'published' AS is_live,
			   CASE WHEN live.status_live OPERATOR(pg_catalog.=) 'published' THEN
					CASE WHEN p.status OPERATOR(pg_catalog.=) 'published'
						 THEN coalesce(done.run_at, p.published_at)
						 ELSE o.pub_at END
			   END AS live_since,
			   o.next_publish_at,
			   o.next_unpublish_at,
			   p.published_at, p.updated_at
		  FROM ipai.cms_pages p
		  -- the page's open schedules in one index scan: the earliest due
		  -- publish and unpublish whose scheduler may still act, and the
		  -- next ones ahead (there is one pending schedule per page and
		  -- action, and a running one only while it executes, so the
		  -- smallest id goes with the earliest run_at)
		  CROSS JOIN LATERAL (
			SELECT pg_catalog.min(s.run_at) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'publish') AS pub_at,
				   pg_catalog.min(s.id) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'publish') AS pub_id,
				   pg_catalog.min(s.run_at) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS unp_at,
				   pg_catalog.min(s.id) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS unp_id,
				   pg_catalog.min(s.run_at) FILTER (WHERE NOT s.due AND s.action OPERATOR(pg_catalog.=) 'publish') AS next_publish_at,
				   pg_catalog.min(s.run_at) FILTER (WHERE NOT s.due AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS next_unpublish_at
			  FROM (SELECT s.id, s.action, s.run_at,
						   s.run_at OPERATOR(pg_catalog.<=) pg_catalog.now() AS due,
						   s.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()
						   AND (s.created_by IS NULL OR EXISTS (
								SELECT 1 FROM ipai.org_members m
								 WHERE m.org_id OPERATOR(pg_catalog.=) s.org_id
								   AND m.user_id OPERATOR(pg_catalog.=) s.created_by
								   AND m.role OPERATOR(pg_catalog.>=) 'admin')) AS due_ok
					  FROM ipai.cms_schedule s
					 WHERE s.org_id OPERATOR(pg_catalog.=) p.org_id
					   AND s.page_id OPERATOR(pg_catalog.=) p.id
					   AND s.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::ipai.schedule_status[])) s
		  ) o
		  -- the executed schedule that published the page, for live_since
		  LEFT JOIN LATERAL (
			SELECT s.run_at FROM ipai.cms_schedule s
			 WHERE p.status OPERATOR(pg_catalog.=) 'published'
			   AND s.org_id OPERATOR(pg_catalog.=) p.org_id
			   AND s.page_id OPERATOR(pg_catalog.=) p.id
			   AND s.action OPERATOR(pg_catalog.=) 'publish'
			   AND s.status OPERATOR(pg_catalog.=) 'done'
			   AND s.executed_at OPERATOR(pg_catalog.>=) p.published_at
			 ORDER BY s.executed_at LIMIT 1) done ON true
		  CROSS JOIN LATERAL (
			SELECT CASE
				-- approved + due publish: published, unless a later due unpublish follows
				WHEN p.status OPERATOR(pg_catalog.=) 'approved' AND o.pub_at IS NOT NULL THEN
					CASE WHEN o.unp_at IS NOT NULL
							  AND (o.unp_at, o.unp_id) OPERATOR(pg_catalog.>) (o.pub_at, o.pub_id)
						 THEN 'draft'::ipai.page_status
						 ELSE 'published'::ipai.page_status END
				-- published + due unpublish: draft (a publish cannot follow: draft is not approved)
				WHEN p.status OPERATOR(pg_catalog.=) 'published' AND o.unp_at IS NOT NULL THEN
					'draft'::ipai.page_status
				ELSE p.status
			END AS status_live) live;
		COMMENT ON VIEW ipai.cms_live_pages IS
			'Pages with status_live: the status readers see now, counting due schedules as executed';

		GRANT SELECT ON ipai.cms_live_pages TO authenticated, service_role;
	END IF;
	IF from_version < 2 THEN
		-- ipai.health() counts the runs that failed in the last day
		CREATE INDEX cms_schedule_failed ON ipai.cms_schedule (executed_at)
			WHERE status = 'failed';
	END IF;
END
$$;


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
	WITH kinds AS (
		SELECT DISTINCT e.feature, e.counted_by FROM ipai.plan_entitlements e
		 WHERE e.counted_by OPERATOR(pg_catalog.<>) 'seats'
	), truth AS (
		SELECT ev.org_id, ev.feature, ev.period_start, pg_catalog.sum(ev.quantity)::bigint AS total
		  FROM ipai.usage_events ev
		 GROUP BY ev.org_id, ev.feature, ev.period_start
		UNION ALL
		SELECT pg.org_id, k.feature, '-infinity'::timestamptz, pg_catalog.count(*)
		  FROM ipai.cms_pages pg
		  JOIN kinds k ON k.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
		 GROUP BY pg.org_id, k.feature
	)
	SELECT pg_catalog.count(*) INTO n
	  FROM truth t
	  FULL JOIN ipai.usage_counters c
		ON c.org_id OPERATOR(pg_catalog.=) t.org_id
	   AND c.feature OPERATOR(pg_catalog.=) t.feature
	   AND c.period_start OPERATOR(pg_catalog.=) t.period_start
	 WHERE coalesce(c.used, 0) OPERATOR(pg_catalog.<>) coalesce(t.total, 0);
	name := 'usage counters';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s counters differ from their events: run SELECT ipai.refresh_org_usage() (pg_cron does every 5 minutes)', n);
	ELSE
		status := 'ok';
		detail := 'every counter equals its events';
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
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_health() FROM PUBLIC;
