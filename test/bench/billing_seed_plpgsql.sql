-- billing_seed_plpgsql.sql: the baseline of billing_bench.sh's webhook
-- ingest -- the Stripe webhook contract of SPEC section 3 for
-- customer.subscription.* events in plain PL/pgSQL, over the seed's
-- design (docs/seed-plan: billing_customers, subscriptions, an inbox, an
-- audit log; usage in a materialized view refreshed by a job, so a webhook
-- does no usage work at all).  Same steps as ipai.stripe_webhook: verify
-- the Stripe-Signature header (pgcrypto's HMAC) against every active
-- secret within the tolerance, parse, dedupe in the inbox, serialize per
-- Stripe customer, attribute, apply unless older than what is stored,
-- audit, make the organization's plan follow its subscriptions, mark the
-- event processed.  Not part of the extension; a benchmark's reference.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA seed;

CREATE TABLE seed.plans (
	id text PRIMARY KEY,
	stripe_price_id text UNIQUE,
	base_amount numeric NOT NULL DEFAULT 0
);
CREATE TABLE seed.organizations (
	id uuid PRIMARY KEY,
	name text NOT NULL,
	plan_id text NOT NULL DEFAULT 'free' REFERENCES seed.plans (id),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE seed.subscriptions (
	org_id uuid NOT NULL REFERENCES seed.organizations (id),
	stripe_subscription_id text PRIMARY KEY,
	stripe_customer_id text,
	status text NOT NULL,
	plan_id text REFERENCES seed.plans (id),
	stripe_price_id text,
	quantity bigint,
	current_period_start timestamptz,
	current_period_end timestamptz,
	cancel_at_period_end boolean NOT NULL DEFAULT false,
	canceled_at timestamptz,
	ended_at timestamptz,
	trial_end timestamptz,
	last_event_id text,
	last_event_created timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON seed.subscriptions (org_id);
CREATE TABLE seed.webhook_events (
	provider text NOT NULL,
	event_id text NOT NULL,
	event_type text NOT NULL,
	payload jsonb NOT NULL,
	org_id uuid,
	status text NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	processed_at timestamptz,
	PRIMARY KEY (provider, event_id)
);
CREATE TABLE seed.audit_log (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id uuid,
	action text NOT NULL,
	object_type text NOT NULL,
	object_id text,
	old_values jsonb,
	new_values jsonb,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON seed.audit_log (org_id, created_at);
CREATE TABLE seed.webhook_secrets (secret text PRIMARY KEY, active boolean NOT NULL DEFAULT true);

CREATE FUNCTION seed.stripe_webhook(payload text, signature_header text,
									OUT status text, OUT event_id text, OUT event_type text)
	LANGUAGE plpgsql
	AS $$
DECLARE
	parts text[];
	t text;
	v1 text[];
	verified boolean := false;
	sec record;
	ev jsonb;
	obj jsonb;
	item jsonb;
	created timestamptz;
	sub seed.subscriptions;
	org uuid;
	plan text;
	want text;
	new_status text;
BEGIN
	-- the signature: t=<unix time>, any of several v1=<hex HMAC-SHA256>
	parts := string_to_array(signature_header, ',');
	SELECT substr(p, 3) INTO t FROM unnest(parts) p WHERE p LIKE 't=%' LIMIT 1;
	v1 := ARRAY(SELECT substr(p, 4) FROM unnest(parts) p WHERE p LIKE 'v1=%');
	IF t IS NULL OR t !~ '^[0-9]{1,12}$' OR abs(extract(epoch FROM now()) - t::bigint) > 300 THEN
		RAISE EXCEPTION 'webhook signature invalid' USING ERRCODE = 'IP002';
	END IF;
	FOR sec IN SELECT s.secret FROM seed.webhook_secrets s WHERE s.active LOOP
		IF encode(hmac(convert_to(t || '.' || payload, 'UTF8'), convert_to(sec.secret, 'UTF8'), 'sha256'), 'hex') = ANY (v1) THEN
			verified := true;
			EXIT;
		END IF;
	END LOOP;
	IF NOT verified THEN
		RAISE EXCEPTION 'webhook signature invalid' USING ERRCODE = 'IP002';
	END IF;

	ev := payload::jsonb;
	event_id := ev->>'id';
	event_type := ev->>'type';
	obj := ev->'data'->'object';
	IF event_id IS NULL OR event_type IS NULL OR obj IS NULL THEN
		RAISE EXCEPTION 'not a Stripe event' USING ERRCODE = '22023';
	END IF;

	-- events of one customer one after the other
	PERFORM pg_advisory_xact_lock(hashtext('stripe:' || coalesce(obj->>'customer', '')));

	-- the inbox: a delivery seen before is a duplicate
	INSERT INTO seed.webhook_events (provider, event_id, event_type, payload, status)
	VALUES ('stripe', event_id, event_type, ev, 'received')
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		status := 'duplicate';
		RETURN;
	END IF;
	IF event_type NOT IN ('customer.subscription.created', 'customer.subscription.updated',
						  'customer.subscription.deleted') THEN
		UPDATE seed.webhook_events w SET status = 'ignored', processed_at = now()
		 WHERE w.provider = 'stripe' AND w.event_id = stripe_webhook.event_id;
		status := 'ignored';
		RETURN;
	END IF;

	-- attribute: the subscription's organization, else its metadata
	SELECT * INTO sub FROM seed.subscriptions s WHERE s.stripe_subscription_id = obj->>'id' FOR UPDATE;
	org := coalesce(sub.org_id, (obj->'metadata'->>'org_id')::uuid);
	IF org IS NULL OR NOT EXISTS (SELECT 1 FROM seed.organizations o WHERE o.id = org) THEN
		UPDATE seed.webhook_events w SET status = 'deferred'
		 WHERE w.provider = 'stripe' AND w.event_id = stripe_webhook.event_id;
		status := 'deferred';
		RETURN;
	END IF;

	-- an older event never overwrites a newer one
	created := to_timestamp((ev->>'created')::bigint);
	new_status := CASE WHEN event_type = 'customer.subscription.deleted' THEN 'canceled' ELSE obj->>'status' END;
	IF sub.stripe_subscription_id IS NOT NULL AND sub.last_event_created > created THEN
		UPDATE seed.webhook_events w SET status = 'processed', org_id = org, processed_at = now()
		 WHERE w.provider = 'stripe' AND w.event_id = stripe_webhook.event_id;
		status := 'processed';
		RETURN;
	END IF;

	item := obj->'items'->'data'->0;
	SELECT p.id INTO plan FROM seed.plans p WHERE p.stripe_price_id = item->'price'->>'id';
	IF sub.stripe_subscription_id IS NULL THEN
		INSERT INTO seed.subscriptions (org_id, stripe_subscription_id, stripe_customer_id, status)
		VALUES (org, obj->>'id', obj->>'customer', new_status);
	END IF;
	UPDATE seed.subscriptions s
	   SET stripe_customer_id = obj->>'customer', status = new_status, plan_id = plan,
		   stripe_price_id = item->'price'->>'id', quantity = (item->>'quantity')::bigint,
		   current_period_start = to_timestamp((item->>'current_period_start')::bigint),
		   current_period_end = to_timestamp((item->>'current_period_end')::bigint),
		   cancel_at_period_end = coalesce((obj->>'cancel_at_period_end')::boolean, false),
		   canceled_at = to_timestamp((obj->>'canceled_at')::bigint),
		   ended_at = to_timestamp((obj->>'ended_at')::bigint),
		   trial_end = to_timestamp((obj->>'trial_end')::bigint),
		   last_event_id = stripe_webhook.event_id, last_event_created = created, updated_at = now()
	 WHERE s.stripe_subscription_id = obj->>'id';
	INSERT INTO seed.audit_log (org_id, action, object_type, object_id, old_values, new_values)
	VALUES (org, CASE WHEN sub.stripe_subscription_id IS NULL THEN 'subscription.create' ELSE 'subscription.update' END,
			'subscription', obj->>'id', to_jsonb(sub),
			jsonb_build_object('status', new_status, 'plan_id', plan, 'event_id', stripe_webhook.event_id));

	-- the organization's plan follows its subscriptions
	SELECT s.plan_id INTO want FROM seed.subscriptions s JOIN seed.plans p ON p.id = s.plan_id
	 WHERE s.org_id = org AND s.status IN ('active', 'trialing', 'past_due')
	 ORDER BY p.base_amount DESC, s.current_period_end DESC NULLS LAST LIMIT 1;
	UPDATE seed.organizations o SET plan_id = coalesce(want, 'free'), updated_at = now()
	 WHERE o.id = org AND o.plan_id <> coalesce(want, 'free');
	IF FOUND THEN
		INSERT INTO seed.audit_log (org_id, action, object_type, object_id, new_values)
		VALUES (org, 'organization.plan', 'organization', org::text, jsonb_build_object('plan_id', coalesce(want, 'free')));
	END IF;

	UPDATE seed.webhook_events w SET status = 'processed', org_id = org, processed_at = now()
	 WHERE w.provider = 'stripe' AND w.event_id = stripe_webhook.event_id;
	status := 'processed';
END
$$;
