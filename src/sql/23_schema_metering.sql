-- Schema area "metering": usage events, live counters, holds, and the
-- triggers that keep limits wherever usage is created.
--
-- Runs after core, billing, cms, scheduling and admin: it attaches limit
-- triggers to ipai.cms_pages (cms_items), ipai.org_members and
-- ipai.org_invitations (seats), and cache invalidation triggers to the
-- tables the entitlement functions cache per backend (organizations,
-- subscriptions, billing_customers, plan_entitlements), which signal
-- through ipai._usage_cache_signal.  The functions
-- named here live in src/sql/50_metering.sql and src/usage*.c.

CREATE FUNCTION ipai._schema_metering(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- Append-only record of usage.  period_start is the usage period the
		-- event counts in (fixed when it is recorded; '-infinity' for
		-- features that never reset); metered marks events billed through
		-- Stripe meter events; counted_inline says the recording function
		-- already added the event to its counter in the same transaction
		-- (direct INSERTs leave it false and a trigger counts them).
		--
		-- No foreign key and no CHECK constraints, on purpose: this is the
		-- hot insert of consume_entitlement, and a foreign-key check costs a
		-- query and a row lock on the organization per event, and CHECK
		-- expressions are re-read for every statement.  The recording
		-- functions validate organization, quantity and key (as the trigger
		-- does for direct INSERTs), and deleting an organization deletes
		-- its events (trigger organizations_usage_events).
		CREATE TABLE ipai.usage_events (
			org_id uuid NOT NULL,
			id bigint GENERATED ALWAYS AS IDENTITY,
			feature text NOT NULL,
			quantity bigint NOT NULL,
			idempotency_key text,
			occurred_at timestamptz NOT NULL DEFAULT now(),
			period_start timestamptz NOT NULL,
			metered boolean NOT NULL DEFAULT false,
			counted_inline boolean NOT NULL DEFAULT false,
			hold_id uuid,
			recorded_by uuid,
			recorded_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id)
		);
		-- the idempotency key is unique per organization; events without a
		-- key stay out of the index
		CREATE UNIQUE INDEX usage_events_idempotency_key
			ON ipai.usage_events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
		-- invoice previews read metered events
		CREATE INDEX usage_events_metered
			ON ipai.usage_events (org_id, period_start, feature) WHERE metered;
		CREATE TRIGGER usage_events_direct
			BEFORE INSERT ON ipai.usage_events
			FOR EACH ROW WHEN (NOT NEW.counted_inline)
			EXECUTE FUNCTION ipai._usage_events_direct();
		CREATE TRIGGER usage_events_count
			AFTER INSERT ON ipai.usage_events
			FOR EACH ROW WHEN (NOT NEW.counted_inline)
			EXECUTE FUNCTION ipai._usage_events_count();
		CREATE TRIGGER usage_events_append_only
			BEFORE UPDATE OR DELETE ON ipai.usage_events
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_events_append_only();
		CREATE TRIGGER usage_events_no_truncate
			BEFORE TRUNCATE ON ipai.usage_events
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._append_only();
		CREATE TRIGGER organizations_usage_events
			AFTER DELETE ON ipai.organizations
			REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_events_org_deleted();
		CREATE TRIGGER organizations_usage_events_truncate
			AFTER TRUNCATE ON ipai.organizations
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_events_org_deleted();
		COMMENT ON TABLE ipai.usage_events IS
			'Append-only usage; the idempotency key is unique per organization';

		-- Live counters per (org, feature, period), kept in the transaction
		-- of the event (period_start '-infinity': features that never
		-- reset, such as cms_items).  held is the sum of the active holds
		-- of the period that had not expired when it was last computed;
		-- hold_expires_at is the earliest of their expiries, so held is
		-- exact while now() < hold_expires_at and is recomputed from
		-- ipai.usage_holds otherwise.
		CREATE TABLE ipai.usage_counters (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			feature text NOT NULL,
			period_start timestamptz NOT NULL,
			period_end timestamptz,
			used bigint NOT NULL DEFAULT 0,
			held bigint NOT NULL DEFAULT 0,
			hold_expires_at timestamptz,
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, feature, period_start)
		);
		COMMENT ON TABLE ipai.usage_counters IS
			'Live usage counters, maintained with the events; ipai.refresh_org_usage() repairs drift';

		-- reservations for long-running work; a hold counts while it is
		-- active and not expired
		CREATE TABLE ipai.usage_holds (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			feature text NOT NULL,
			quantity bigint NOT NULL CHECK (quantity > 0),
			period_start timestamptz NOT NULL,
			expires_at timestamptz NOT NULL,
			status text NOT NULL DEFAULT 'active'
				CHECK (status IN ('active', 'finalized', 'released')),
			actual_quantity bigint CHECK (actual_quantity >= 0),
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			closed_at timestamptz,
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX usage_holds_id ON ipai.usage_holds (id);
		CREATE INDEX usage_holds_active ON ipai.usage_holds (org_id, feature, period_start, expires_at)
			WHERE status = 'active';
		COMMENT ON TABLE ipai.usage_holds IS
			'Reservations against a limit; active holds count until they expire';

		ALTER TABLE ipai.usage_events ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_counters ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_holds ENABLE ROW LEVEL SECURITY;

		CREATE POLICY usage_events_member_read ON ipai.usage_events FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_counters_member_read ON ipai.usage_counters FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_holds_member_read ON ipai.usage_holds FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		-- usage per organization, feature and period, from the live
		-- counters (period_start is NULL for features that never reset);
		-- reserved is what active holds keep back right now
		CREATE VIEW ipai.org_usage_current WITH (security_invoker = true) AS
		SELECT c.org_id, c.feature,
			   CASE WHEN c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
					THEN NULL ELSE c.period_start END AS period_start,
			   c.used,
			   c.period_end,
			   ipai._usage_counter_held(c.org_id, c.feature, c.period_start, c.held,
										c.hold_expires_at) AS reserved,
			   ipai._usage_period_is_current(c.org_id, c.period_start) AS is_current,
			   c.updated_at
		  FROM ipai.usage_counters c;
		COMMENT ON VIEW ipai.org_usage_current IS
			'Usage per organization, feature and period (live counters; refresh_org_usage repairs drift)';

		-- Writes go through the functions (record_usage, consume_entitlement,
		-- holds); service_role may also INSERT events directly, which a
		-- trigger counts.
		GRANT SELECT ON ipai.usage_events, ipai.usage_counters, ipai.usage_holds,
			ipai.org_usage_current TO authenticated;
		GRANT SELECT, INSERT ON ipai.usage_events TO service_role;
		GRANT SELECT ON ipai.usage_counters, ipai.usage_holds, ipai.org_usage_current TO service_role;

		-- limits where usage is created: pages (cms_items) ...
		CREATE TRIGGER cms_pages_usage_insert
			AFTER INSERT ON ipai.cms_pages
			REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		CREATE TRIGGER cms_pages_usage_delete
			AFTER DELETE ON ipai.cms_pages
			REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		CREATE TRIGGER cms_pages_usage_truncate
			AFTER TRUNCATE ON ipai.cms_pages
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		-- ... and seats: members plus pending invitations
		CREATE TRIGGER org_members_seat_limit
			BEFORE INSERT ON ipai.org_members
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('member');
		CREATE TRIGGER org_invitations_seat_limit
			BEFORE INSERT OR UPDATE ON ipai.org_invitations
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('invitation');
		CREATE TRIGGER org_invitations_seat_accepted
			AFTER UPDATE OF accepted_at ON ipai.org_invitations
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('accepted');

		-- The entitlement functions cache plans, organizations and their
		-- subscription period per backend.  A change of what they cache
		-- registers a relcache invalidation of ipai._usage_cache_signal,
		-- which every backend receives at commit and which no statement
		-- reads: invalidating the changed table itself would re-plan every
		-- cached statement on it in every backend (the Stripe webhook's, on
		-- each subscription write).  Row triggers fire only when a column
		-- the caches read changed; ENABLE ALWAYS: also under
		-- session_replication_role = replica (logical replication).
		CREATE TABLE ipai._usage_cache_signal ();
		ALTER TABLE ipai._usage_cache_signal ENABLE ROW LEVEL SECURITY;
		REVOKE ALL ON ipai._usage_cache_signal FROM PUBLIC;
		COMMENT ON TABLE ipai._usage_cache_signal IS
			'No rows: its relcache invalidation tells every backend to drop its metering caches';

		CREATE TRIGGER plan_entitlements_consistent
			BEFORE INSERT OR UPDATE ON ipai.plan_entitlements
			FOR EACH ROW EXECUTE FUNCTION ipai._plan_entitlements_consistent();
		CREATE TRIGGER plan_entitlements_cache
			AFTER INSERT OR DELETE ON ipai.plan_entitlements
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER plan_entitlements_cache_update
			AFTER UPDATE ON ipai.plan_entitlements
			FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER plan_entitlements_cache_truncate
			AFTER TRUNCATE ON ipai.plan_entitlements
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		-- organizations: a new one is not cached yet (misses are not cached)
		CREATE TRIGGER organizations_usage_cache
			AFTER DELETE ON ipai.organizations
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER organizations_usage_cache_update
			AFTER UPDATE OF id, plan_id, timezone ON ipai.organizations
			FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.timezone IS DISTINCT FROM NEW.timezone)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER organizations_usage_cache_truncate
			AFTER TRUNCATE ON ipai.organizations
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache
			AFTER INSERT OR DELETE ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.status IS DISTINCT FROM NEW.status
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.current_period_start IS DISTINCT FROM NEW.current_period_start
							   OR OLD.current_period_end IS DISTINCT FROM NEW.current_period_end)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache_truncate
			AFTER TRUNCATE ON ipai.subscriptions
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache
			AFTER INSERT OR DELETE ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache_update
			AFTER UPDATE OF org_id, stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.stripe_customer_id IS DISTINCT FROM NEW.stripe_customer_id)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache_truncate
			AFTER TRUNCATE ON ipai.billing_customers
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		ALTER TABLE ipai.plan_entitlements
			ENABLE ALWAYS TRIGGER plan_entitlements_cache,
			ENABLE ALWAYS TRIGGER plan_entitlements_cache_update,
			ENABLE ALWAYS TRIGGER plan_entitlements_cache_truncate;
		ALTER TABLE ipai.organizations
			ENABLE ALWAYS TRIGGER organizations_usage_cache,
			ENABLE ALWAYS TRIGGER organizations_usage_cache_update,
			ENABLE ALWAYS TRIGGER organizations_usage_cache_truncate;
		ALTER TABLE ipai.subscriptions
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache,
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache_update,
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache_truncate;
		ALTER TABLE ipai.billing_customers
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache,
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache_update,
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache_truncate;
		-- meter events written before the Stripe customer was known get it
		CREATE TRIGGER billing_customers_meter_events
			AFTER INSERT OR UPDATE OF stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_meter_customer();
	END IF;
	IF from_version < 3 THEN
		-- A counter counts the events inside its window, whichever period
		-- recorded them (usage periods move when the time zone or the
		-- subscription changes): carried is the part recorded in other
		-- periods, found through usage_events_window.
		ALTER TABLE ipai.usage_counters ADD COLUMN carried bigint NOT NULL DEFAULT 0;
		CREATE INDEX usage_events_window ON ipai.usage_events (org_id, feature, occurred_at);
		CREATE TRIGGER organizations_usage_periods
			AFTER UPDATE OF timezone, plan_id ON ipai.organizations
			FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id)
			EXECUTE FUNCTION ipai._usage_periods_changed();
		CREATE TRIGGER subscriptions_usage_periods
			AFTER INSERT OR DELETE ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_periods_changed();
		CREATE TRIGGER subscriptions_usage_periods_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.status IS DISTINCT FROM NEW.status
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.current_period_start IS DISTINCT FROM NEW.current_period_start
							   OR OLD.current_period_end IS DISTINCT FROM NEW.current_period_end)
			EXECUTE FUNCTION ipai._usage_periods_changed();
	END IF;
	IF from_version < 4 THEN
		-- The events' indexes are what a consume pays for most: two instead
		-- of three.  usage_events_metered served no query.  Windows are read
		-- period by period, so that what other periods carry into a counter
		-- is found without reading the counter's own events (see
		-- ipai._usage_window_carried): usage_events_period replaces
		-- usage_events_window (org_id, feature, occurred_at).
		DROP INDEX ipai.usage_events_metered;
		CREATE INDEX usage_events_period ON ipai.usage_events (org_id, period_start, occurred_at);
		DROP INDEX ipai.usage_events_window;
		-- Usage periods depend on the time zone and on the subscriptions,
		-- not on the plan; and a subscription moves them only when what it
		-- grants changes, not when it goes between two statuses that grant
		-- the plan (active and past_due while Stripe retries a payment).
		-- The caches keep the same things, so the same rule invalidates
		-- them.  Decided in C (ipai._usage_subscription_changed): a WHEN
		-- clause is parsed and planned anew for every statement.
		DROP TRIGGER organizations_usage_periods ON ipai.organizations;
		CREATE TRIGGER organizations_usage_periods
			AFTER UPDATE OF timezone ON ipai.organizations
			FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
			EXECUTE FUNCTION ipai._usage_periods_changed();
		DROP TRIGGER subscriptions_usage_periods_update ON ipai.subscriptions;
		CREATE TRIGGER subscriptions_usage_periods_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_subscription_changed('periods');
		DROP TRIGGER subscriptions_usage_cache_update ON ipai.subscriptions;
		CREATE TRIGGER subscriptions_usage_cache_update
			AFTER UPDATE OF org_id, status, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_subscription_changed('cache');
		ALTER TABLE ipai.subscriptions ENABLE ALWAYS TRIGGER subscriptions_usage_cache_update;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_metering(integer) FROM PUBLIC;
