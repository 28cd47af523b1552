-- ipai_saas 1.1 -> 1.2: code only (frozen once released).
--   * usage periods move (a time zone change, a subscription that starts,
--     is canceled or changes its billing anchor): a usage counter now counts
--     the events inside its window, whichever period recorded them
--     (ipai._usage_window_sums, ipai._usage_counters_rebase,
--     ipai._usage_periods_changed; refresh_org_usage, preview_invoice and
--     health() count by window);
--   * a subscription that grants a metered plan bills the usage inside its
--     period recorded before it arrived (ipai._usage_meter_backfill);
--   * schema version 3, applied by SELECT ipai.install_schema() after this
--     update: usage_counters.carried, the usage_events_window index and the
--     triggers that rebase counters when an organization's periods change;
--   * a Stripe customer linked outside the webhook (an operator's INSERT or
--     UPDATE of ipai.billing_customers) releases its deferred webhook
--     events: ipai._billing_customer_linked() (C) and, in schema version 3,
--     the triggers billing_customers_link_lock/_release.
\echo Use "ALTER EXTENSION ipai_saas UPDATE TO '1.2'" to load this file. \quit

-- changed: ipai._schema_target_version
CREATE OR REPLACE FUNCTION ipai._schema_target_version() RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 3 $$;

-- changed: ipai._schema_billing
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
	IF from_version < 3 THEN
		-- a customer linked by anyone (an operator's INSERT or UPDATE)
		-- releases its deferred events: lock before the row is written,
		-- apply after (src/webhook.c, ipai._billing_customer_linked)
		CREATE TRIGGER billing_customers_link_lock
			BEFORE INSERT OR UPDATE OF stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._billing_customer_linked();
		CREATE TRIGGER billing_customers_link_release
			AFTER INSERT OR UPDATE OF stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._billing_customer_linked();
	END IF;
END
$$;

-- changed: ipai._schema_metering
CREATE OR REPLACE FUNCTION ipai._schema_metering(from_version integer) RETURNS void
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
END
$$;

-- new: ipai._billing_customer_linked
CREATE FUNCTION ipai._billing_customer_linked() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_billing_customer_linked'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION ipai._billing_customer_linked() FROM PUBLIC;
COMMENT ON FUNCTION ipai._billing_customer_linked() IS
	'Trigger: a Stripe customer linked to an organization outside the webhook releases its deferred webhook events';

-- new: ipai._usage_window_sums
CREATE FUNCTION ipai._usage_window_sums(org_id uuid, feature text, period_start timestamptz,
										period_end timestamptz,
										OUT own bigint, OUT carried bigint)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	SELECT COALESCE(pg_catalog.sum(ev.quantity)
						FILTER (WHERE ev.period_start OPERATOR(pg_catalog.=) $3), 0)::bigint,
		   COALESCE(pg_catalog.sum(ev.quantity)
						FILTER (WHERE ev.period_start OPERATOR(pg_catalog.<>) $3), 0)::bigint
	  INTO own, carried
	  FROM ipai.usage_events ev
	 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
	   AND ev.feature OPERATOR(pg_catalog.=) $2
	   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
	   AND ev.occurred_at OPERATOR(pg_catalog.<) COALESCE($4, 'infinity'::timestamptz);
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_window_sums(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- changed: ipai._usage_counter_lock
CREATE OR REPLACE FUNCTION ipai._usage_counter_lock(org_id uuid, feature text, period_start timestamptz,
										 period_end timestamptz, at timestamptz)
	RETURNS TABLE (used bigint, held bigint)
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	c record;
	carry bigint := 0;
BEGIN
	SELECT u.used, u.held, u.hold_expires_at INTO c
	  FROM ipai.usage_counters u
	 WHERE u.org_id OPERATOR(pg_catalog.=) $1
	   AND u.feature OPERATOR(pg_catalog.=) $2
	   AND u.period_start OPERATOR(pg_catalog.=) $3
	   FOR UPDATE;
	IF NOT FOUND THEN
		IF $3 OPERATOR(pg_catalog.<>) '-infinity'::timestamptz THEN
			SELECT w.carried INTO carry FROM ipai._usage_window_sums($1, $2, $3, $4) w;
		END IF;
		INSERT INTO ipai.usage_counters AS u
			   (org_id, feature, period_start, period_end, used, carried, updated_at)
		VALUES ($1, $2, $3, $4, carry, carry, $5)
		ON CONFLICT ON CONSTRAINT usage_counters_pkey DO NOTHING;
		SELECT u.used, u.held, u.hold_expires_at INTO c
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) $1
		   AND u.feature OPERATOR(pg_catalog.=) $2
		   AND u.period_start OPERATOR(pg_catalog.=) $3
		   FOR UPDATE;
	END IF;
	IF c.hold_expires_at IS NOT NULL AND c.hold_expires_at OPERATOR(pg_catalog.<=) $5 THEN
		PERFORM ipai._usage_holds_recount($1, $2, $3, $5);
		SELECT u.used, u.held INTO c
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) $1
		   AND u.feature OPERATOR(pg_catalog.=) $2
		   AND u.period_start OPERATOR(pg_catalog.=) $3;
	END IF;
	used := c.used;
	held := c.held;
	RETURN NEXT;
END
$$;

-- new: ipai._usage_counters_rebase
CREATE FUNCTION ipai._usage_counters_rebase(org_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	n integer := 0;
BEGIN
	PERFORM 1 FROM ipai.usage_counters c
	  WHERE c.org_id OPERATOR(pg_catalog.=) $1
		AND c.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		AND (c.period_end IS NULL OR c.period_end OPERATOR(pg_catalog.>) pg_catalog.now())
	  ORDER BY c.feature, c.period_start
		FOR UPDATE;
	FOR r IN
		SELECT c.feature, c.period_start, c.period_end, c.carried, w.carried AS carry
		  FROM ipai.usage_counters c,
			   LATERAL ipai._usage_window_sums(c.org_id, c.feature, c.period_start,
											   c.period_end) w
		 WHERE c.org_id OPERATOR(pg_catalog.=) $1
		   AND c.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		   AND (c.period_end IS NULL OR c.period_end OPERATOR(pg_catalog.>) pg_catalog.now())
		   AND EXISTS (SELECT 1 FROM ipai.plan_entitlements e
						WHERE e.feature OPERATOR(pg_catalog.=) c.feature
						  AND e.counted_by OPERATOR(pg_catalog.=) 'usage_events')
		 ORDER BY c.feature, c.period_start
	LOOP
		CONTINUE WHEN r.carried OPERATOR(pg_catalog.=) r.carry;
		UPDATE ipai.usage_counters c
		   SET used = (c.used OPERATOR(pg_catalog.-) c.carried) OPERATOR(pg_catalog.+) r.carry,
			   carried = r.carry,
			   updated_at = pg_catalog.now()
		 WHERE c.org_id OPERATOR(pg_catalog.=) $1
		   AND c.feature OPERATOR(pg_catalog.=) r.feature
		   AND c.period_start OPERATOR(pg_catalog.=) r.period_start;
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_counters_rebase(uuid) FROM PUBLIC;

-- new: ipai._usage_meter_backfill
CREATE FUNCTION ipai._usage_meter_backfill(for_org uuid, for_plan text,
										   from_at timestamptz, until_at timestamptz)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
	SELECT ev.org_id, 'stripe.meter_event',
		   ipai._meter_event_payload(ev.org_id, ev.id, e.stripe_meter_event_name,
									 b.stripe_customer_id, ev.quantity, ev.occurred_at),
		   ipai._meter_identifier(ev.org_id, ev.id)
	  FROM ipai.plan_entitlements e
	  JOIN ipai.usage_events ev
		ON ev.org_id OPERATOR(pg_catalog.=) $1
	   AND ev.feature OPERATOR(pg_catalog.=) e.feature
	   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
	   AND ev.occurred_at OPERATOR(pg_catalog.<) $4
	   AND NOT ev.metered
	  LEFT JOIN ipai.billing_customers b ON b.org_id OPERATOR(pg_catalog.=) $1
	 WHERE e.plan_id OPERATOR(pg_catalog.=) $2
	   AND e.metered
	 ORDER BY ev.id
	ON CONFLICT (org_id, topic, dedupe_key) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_meter_backfill(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- new: ipai._usage_periods_changed
CREATE FUNCTION ipai._usage_periods_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'organizations' THEN
		PERFORM ipai._usage_counters_rebase(NEW.id);
		RETURN NULL;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' AND NEW.org_id IS NOT NULL THEN
		PERFORM ipai._usage_counters_rebase(NEW.org_id);
		IF ipai.subscription_grants_plan(NEW.status)
		   AND NEW.plan_id IS NOT NULL
		   AND NEW.current_period_start IS NOT NULL
		   AND NEW.current_period_end OPERATOR(pg_catalog.>) NEW.current_period_start THEN
			PERFORM ipai._usage_meter_backfill(NEW.org_id, NEW.plan_id,
											   NEW.current_period_start, NEW.current_period_end);
		END IF;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' AND OLD.org_id IS NOT NULL
	   AND (TG_OP OPERATOR(pg_catalog.=) 'DELETE' OR OLD.org_id IS DISTINCT FROM NEW.org_id) THEN
		PERFORM ipai._usage_counters_rebase(OLD.org_id);
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_periods_changed() FROM PUBLIC;

-- changed: ipai.preview_invoice
CREATE OR REPLACE FUNCTION ipai.preview_invoice(org_id uuid,
									 OUT plan_id text, OUT currency text,
									 OUT period_start timestamptz, OUT period_end timestamptz,
									 OUT base_amount numeric, OUT metered_quantity bigint,
									 OUT metered_amount numeric, OUT total numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	the_plan text;
	the_currency text;
	base numeric;
	p record;
	f record;
	q bigint;
	mq bigint := 0;
	ma numeric := 0;
BEGIN
	PERFORM ipai.require_org_role($1, 'admin');
	SELECT o.plan_id, pl.currency, pl.base_amount INTO the_plan, the_currency, base
	  FROM ipai.organizations o JOIN ipai.plans pl ON pl.id OPERATOR(pg_catalog.=) o.plan_id
	 WHERE o.id OPERATOR(pg_catalog.=) $1;
	SELECT * INTO p FROM ipai.usage_period($1, pg_catalog.now());
	FOR f IN SELECT e.feature, e.unit_price FROM ipai.plan_entitlements e
			  WHERE e.plan_id OPERATOR(pg_catalog.=) the_plan AND e.metered
			  ORDER BY e.feature LOOP
		SELECT COALESCE(pg_catalog.sum(ev.quantity), 0)::bigint INTO q
		  FROM ipai.usage_events ev
		 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
		   AND ev.feature OPERATOR(pg_catalog.=) f.feature
		   AND ev.occurred_at OPERATOR(pg_catalog.>=) p.period_start
		   AND ev.occurred_at OPERATOR(pg_catalog.<) p.period_end
		   AND (ev.metered
				OR EXISTS (SELECT 1 FROM ipai.outbox o
							WHERE o.org_id OPERATOR(pg_catalog.=) ev.org_id
							  AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
							  AND o.dedupe_key OPERATOR(pg_catalog.=)
								  ipai._meter_identifier(ev.org_id, ev.id)));
		mq := mq OPERATOR(pg_catalog.+) q;
		ma := ma OPERATOR(pg_catalog.+) (q::numeric OPERATOR(pg_catalog.*) f.unit_price);
	END LOOP;
	plan_id := the_plan;
	currency := the_currency;
	period_start := p.period_start;
	period_end := p.period_end;
	base_amount := pg_catalog.round(base, 2);
	metered_quantity := mq;
	metered_amount := pg_catalog.round(ma, 2);
	total := base_amount OPERATOR(pg_catalog.+) metered_amount;
END
$$;

-- new: ipai._usage_counters_to_repair
CREATE FUNCTION ipai._usage_counters_to_repair()
	RETURNS TABLE (org_id uuid, feature text, period_start timestamptz, drifted boolean)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN QUERY
	WITH kinds AS (
		SELECT DISTINCT e.feature, e.counted_by FROM ipai.plan_entitlements e
		 WHERE e.counted_by OPERATOR(pg_catalog.<>) 'seats'
	), counters AS (
		SELECT c.org_id, c.feature, c.period_start, c.used, c.carried,
			   (SELECT k.counted_by FROM kinds k
				 WHERE k.feature OPERATOR(pg_catalog.=) c.feature
				 ORDER BY k.counted_by LIMIT 1) AS counted_by, c.period_end
		  FROM ipai.usage_counters c
	)
	-- counters that differ from what they count
	SELECT t.org_id, t.feature, t.period_start, t.used OPERATOR(pg_catalog.<>) t.total
	  FROM (SELECT c.org_id, c.feature, c.period_start, c.used, c.carried,
				   CASE WHEN c.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
						THEN (SELECT pg_catalog.count(*) FROM ipai.cms_pages pg
							   WHERE pg.org_id OPERATOR(pg_catalog.=) c.org_id)
						ELSE w.own OPERATOR(pg_catalog.+) x.carry END AS total,
				   x.carry
			  FROM counters c
			  LEFT JOIN LATERAL ipai._usage_window_sums(c.org_id, c.feature, c.period_start,
														c.period_end) w
				ON c.counted_by IS DISTINCT FROM 'cms_pages'
			 CROSS JOIN LATERAL (
				   SELECT CASE WHEN c.counted_by IS DISTINCT FROM 'cms_pages'
								AND ipai._usage_period_is_current(c.org_id, c.period_start)
							   THEN w.carried ELSE c.carried END AS carry) x) t
	 WHERE t.used OPERATOR(pg_catalog.<>) t.total OR t.carried OPERATOR(pg_catalog.<>) t.carry
	UNION
	-- periods with events but no counter
	SELECT DISTINCT ev.org_id, ev.feature, ev.period_start, true
	  FROM ipai.usage_events ev
	 WHERE NOT EXISTS (SELECT 1 FROM ipai.usage_counters c
						WHERE c.org_id OPERATOR(pg_catalog.=) ev.org_id
						  AND c.feature OPERATOR(pg_catalog.=) ev.feature
						  AND c.period_start OPERATOR(pg_catalog.=) ev.period_start)
	UNION
	-- organizations with pages but no cms_items counter
	SELECT DISTINCT pg.org_id, k.feature, '-infinity'::timestamptz, true
	  FROM ipai.cms_pages pg
	  JOIN kinds k ON k.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
	 WHERE NOT EXISTS (SELECT 1 FROM ipai.usage_counters c
						WHERE c.org_id OPERATOR(pg_catalog.=) pg.org_id
						  AND c.feature OPERATOR(pg_catalog.=) k.feature
						  AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz);
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_counters_to_repair() FROM PUBLIC;

-- changed: ipai.refresh_org_usage
CREATE OR REPLACE FUNCTION ipai.refresh_org_usage() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	cur record;
	sums record;
	pend timestamptz;
	repaired integer := 0;
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied for function refresh_org_usage'
			USING ERRCODE = '42501', HINT = 'Run it as service_role or a superuser.';
	END IF;

	FOR r IN SELECT d.org_id, d.feature, d.period_start FROM ipai._usage_counters_to_repair() d
			  ORDER BY 1, 2, 3
	LOOP
		-- period_end of a counter to create, when the period is known
		pend := NULL;
		IF r.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		   AND EXISTS (SELECT 1 FROM ipai.plan_entitlements e
						WHERE e.feature OPERATOR(pg_catalog.=) r.feature) THEN
			SELECT CASE WHEN u.period_start OPERATOR(pg_catalog.=) r.period_start
						THEN u.period_end END INTO pend
			  FROM ipai._usage_period(r.org_id, r.feature, r.period_start) u;
		END IF;
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, pend,
												 pg_catalog.now());
		SELECT u.used, u.carried, u.period_end INTO cur
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) r.org_id
		   AND u.feature OPERATOR(pg_catalog.=) r.feature
		   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
		IF EXISTS (SELECT 1 FROM ipai.plan_entitlements e
					WHERE e.feature OPERATOR(pg_catalog.=) r.feature
					  AND e.counted_by OPERATOR(pg_catalog.=) 'cms_pages') THEN
			SELECT pg_catalog.count(*)::bigint AS own, 0::bigint AS carried INTO sums
			  FROM ipai.cms_pages pg WHERE pg.org_id OPERATOR(pg_catalog.=) r.org_id;
		ELSE
			SELECT * INTO sums
			  FROM ipai._usage_window_sums(r.org_id, r.feature, r.period_start, cur.period_end);
			-- a window that is over (or not begun) keeps what it carried when
			-- it was current: windows of periods that moved overlap, and the
			-- events of the period that replaced it are not its usage
			IF NOT ipai._usage_period_is_current(r.org_id, r.period_start) THEN
				sums.carried := cur.carried;
			END IF;
		END IF;
		IF cur.used OPERATOR(pg_catalog.<>) (sums.own OPERATOR(pg_catalog.+) sums.carried)
		   OR cur.carried OPERATOR(pg_catalog.<>) sums.carried THEN
			UPDATE ipai.usage_counters u
			   SET used = sums.own OPERATOR(pg_catalog.+) sums.carried, carried = sums.carried,
				   updated_at = pg_catalog.now()
			 WHERE u.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND u.feature OPERATOR(pg_catalog.=) r.feature
			   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
			IF cur.used OPERATOR(pg_catalog.<>) (sums.own OPERATOR(pg_catalog.+) sums.carried) THEN
				repaired := repaired OPERATOR(pg_catalog.+) 1;
			END IF;
		END IF;
	END LOOP;

	-- holds that expired: recompute what the counters hold back
	FOR r IN SELECT c.org_id, c.feature, c.period_start FROM ipai.usage_counters c
			  WHERE c.hold_expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
			  ORDER BY 1, 2, 3 LOOP
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, NULL,
												 pg_catalog.now());
	END LOOP;

	PERFORM ipai._usage_meter_fill_customers(NULL);
	RETURN repaired;
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
END
$$;

