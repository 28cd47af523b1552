-- Schema area "billing": Stripe customers, subscriptions, invoices, the
-- webhook inbox and the signing secrets.
--
-- Rows of customers, subscriptions and invoices are written by
-- ipai.stripe_webhook() (src/webhook.c, src/stripe_apply.c; an operator may
-- also link a customer by hand, which releases its deferred events), which keeps on
-- every row the event that last wrote it (last_event_created,
-- last_event_type, last_event_id): the ordering rule compares an incoming
-- event with these columns (see docs/billing.md, "Ordering").

CREATE FUNCTION ipai._schema_billing(from_version integer) RETURNS void
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
REVOKE ALL ON FUNCTION ipai._schema_billing(integer) FROM PUBLIC;
