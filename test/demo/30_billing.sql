-- Part 3: Stripe billing.  Acme upgrades to pro through Stripe Checkout;
-- signed webhooks move it to pro and, when the subscription is deleted,
-- back to free.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\echo
\echo '=== Stripe billing ================================================'
\echo
\echo '--- The operator sets the endpoint''s signing secret and maps the pro price.'
\set ECHO queries
SELECT ipai.set_stripe_webhook_secret('whsec_demo_5Xq2Lm9ZaRtVb7pQ2xLm9ZaRtVb7pQ2x') AS active_secrets;
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';
\set ECHO none
SELECT id AS acme FROM ipai.organizations WHERE name = 'Acme' \gset
\echo
\echo '--- Alice (owner) presses "Upgrade": the Checkout Session request the Edge handler posts to Stripe.'
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
\set ECHO queries
SELECT jsonb_pretty(ipai.checkout_session_params(:'acme', 'pro',
		'https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}',
		'https://app.example.com/billing')) AS checkout_request;
\set ECHO none
RESET ipai.user_id;

-- what Stripe sends after the payment (compact JSON here; Stripe's is
-- pretty-printed), kept in a table so the calls below stay readable
CREATE TEMP TABLE stripe_sends (name text PRIMARY KEY, payload text NOT NULL);
INSERT INTO stripe_sends VALUES ('checkout.session.completed', jsonb_build_object(
	'id', 'evt_1QmZ8mLgUG5tbmjcK2dQ7sWf', 'object', 'event', 'type', 'checkout.session.completed',
	'created', 1735689612, 'livemode', false, 'api_version', '2025-03-31.basil',
	'data', jsonb_build_object('object', jsonb_build_object(
		'id', 'cs_test_a1Kq9ZrX0bN4mV7cL2pT8sYwE5uH3jGdF6nR1oQ', 'object', 'checkout.session',
		'mode', 'subscription', 'status', 'complete', 'payment_status', 'paid',
		'client_reference_id', :'acme', 'metadata', jsonb_build_object('org_id', :'acme', 'plan_id', 'pro'),
		'customer', 'cus_RtX4aPq2LmN8vB', 'subscription', 'sub_1QmZ8kLgUG5tbmjcH3xYp2Qa',
		'customer_details', jsonb_build_object('email', 'alice@acme.example', 'name', 'Alice'))))::text);
INSERT INTO stripe_sends VALUES ('customer.subscription.created', jsonb_build_object(
	'id', 'evt_1QmZ8nLgUG5tbmjcT4hUk8Pd', 'object', 'event', 'type', 'customer.subscription.created',
	'created', 1735689606, 'livemode', false, 'api_version', '2025-03-31.basil',
	'data', jsonb_build_object('object', jsonb_build_object(
		'id', 'sub_1QmZ8kLgUG5tbmjcH3xYp2Qa', 'object', 'subscription', 'status', 'active',
		'customer', 'cus_RtX4aPq2LmN8vB', 'cancel_at_period_end', false,
		'metadata', jsonb_build_object('org_id', :'acme', 'plan_id', 'pro'),
		'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
			'id', 'si_RtX4kQ2mZp8vNa', 'object', 'subscription_item', 'quantity', 1,
			'price', jsonb_build_object('id', 'price_1QmZ2aLgUG5tbmjcPr0Mnth', 'object', 'price',
										'unit_amount', 9900, 'currency', 'usd'),
			'current_period_start', extract(epoch FROM date_trunc('day', now()))::bigint,
			'current_period_end', extract(epoch FROM date_trunc('day', now()) + interval '1 month')::bigint))))))::text);
INSERT INTO stripe_sends
SELECT 'customer.subscription.deleted',
	   jsonb_set(jsonb_set(jsonb_set(jsonb_set(payload::jsonb,
		   '{id}', '"evt_1QoC4tLgUG5tbmjcZ1aXw8Ry"'), '{type}', '"customer.subscription.deleted"'),
		   '{created}', '1738368000'), '{data,object,status}', '"canceled"')::text
  FROM stripe_sends WHERE name = 'customer.subscription.created';
\set secret 'whsec_demo_5Xq2Lm9ZaRtVb7pQ2xLm9ZaRtVb7pQ2x'

\echo
\echo '--- Stripe delivers two signed events in the "wrong" order: the subscription first.  It names'
\echo '--- Acme in its metadata (our checkout put it there), so it applies at once; the checkout'
\echo '--- then links Stripe''s customer to Acme.'
\set ECHO queries
SELECT w.* FROM stripe_sends e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, :'secret')) w
 WHERE e.name = 'customer.subscription.created';
SELECT w.* FROM stripe_sends e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, :'secret')) w
 WHERE e.name = 'checkout.session.completed';
SELECT o.name, o.plan_id, s.status AS subscription, s.current_period_end::date AS renews,
	   c.stripe_customer_id
  FROM ipai.organizations o
  JOIN ipai.subscriptions s ON s.org_id = o.id
  JOIN ipai.billing_customers c ON c.org_id = o.id
 WHERE o.name = 'Acme';
\set ECHO none
SELECT to_regprocedure('ipai.check_entitlement(uuid,text,bigint)') IS NOT NULL AS has_entitlements \gset
\if :has_entitlements
\echo
\echo '--- On pro, AI runs are unlimited (metered): the limit that blocked Acme is gone.'
\set ECHO queries
SELECT allowed, plan_id, current, max FROM ipai.check_entitlement(:'acme', 'ai_runs');
\set ECHO none
\endif
\echo
\echo '--- Stripe retries the same event (at-least-once delivery): applied once, answered "duplicate".'
\set ECHO queries
SELECT w.* FROM stripe_sends e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, :'secret')) w
 WHERE e.name = 'customer.subscription.created';
SELECT event_id, event_type, status, deliveries FROM ipai.webhook_events ORDER BY id;
\set ECHO none
\echo
\echo '--- A forged delivery (signed with the wrong secret) is refused with IP002 and changes nothing.'
\set ON_ERROR_STOP off
\set ECHO queries
SELECT w.* FROM stripe_sends e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_attacker')) w
 WHERE e.name = 'customer.subscription.deleted';
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- The real customer.subscription.deleted: Acme is back on free.'
\set ECHO queries
SELECT w.* FROM stripe_sends e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, :'secret')) w
 WHERE e.name = 'customer.subscription.deleted';
SELECT o.name, o.plan_id, s.status AS subscription FROM ipai.organizations o
  JOIN ipai.subscriptions s ON s.org_id = o.id WHERE o.name = 'Acme';
SELECT action, old_values->>'plan_id' AS old_plan, new_values->>'plan_id' AS new_plan,
	   new_values->>'event_id' AS event_id
  FROM ipai.audit_log WHERE org_id = :'acme' AND action = 'organization.plan' ORDER BY id;
\set ECHO none
DROP TABLE stripe_sends;
