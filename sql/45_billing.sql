-- Billing: the Stripe webhook inbox and checkout parameters, with the
-- texts of their errors.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set ECHO none
\getenv src IPAI_SRC
\i :src/test/fixtures/stripe/billing_events.sql
\set ON_ERROR_STOP 0
\set ECHO all
SET client_min_messages = warning;

-- setup: a signing secret, the pro price, an organization with an owner
SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
SELECT fingerprint, expires_at, active FROM ipai.stripe_webhook_secrets();
UPDATE ipai.plans SET stripe_price_id = 'price_regress_pro' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name, billing_email)
VALUES ('a4000000-0000-4000-8000-000000000000', 'Regress Billing', 'billing@regress.example');
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('a4000000-0000-4000-8000-000000000000', 'a4000000-0000-4000-8000-00000000000f', 'owner');

-- secrets: bad arguments
SELECT ipai.set_stripe_webhook_secret('');
SELECT ipai.set_stripe_webhook_secret(E'whsec_abc\n');
SELECT ipai.set_stripe_webhook_secret('whsec_abc', now() - interval '1 day');
SELECT ipai.retire_stripe_webhook_secret('whsec_unknown');
SET ROLE authenticated;
SELECT ipai.set_stripe_webhook_secret('whsec_abc');
RESET ROLE;

-- the upgrade button
SELECT jsonb_pretty(ipai.checkout_session_params('a4000000-0000-4000-8000-000000000000', 'pro',
	'https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}', 'https://app.example.com/billing'));
SELECT ipai.checkout_session_params('a4000000-0000-4000-8000-000000000000', 'free',
	'https://app.example.com/ok', 'https://app.example.com/cancel');
SELECT ipai.checkout_session_params('a4000000-0000-4000-8000-000000000000', 'gold',
	'https://app.example.com/ok', 'https://app.example.com/cancel');
SELECT ipai.checkout_session_params('a4000000-0000-4000-8000-000000000000', 'pro',
	'javascript:alert(1)', 'https://app.example.com/cancel');
SET ROLE authenticated;
SET ipai.user_id = 'a4000000-0000-4000-8000-0000000000ee';
\set VERBOSITY terse
SELECT ipai.checkout_session_params('a4000000-0000-4000-8000-000000000000', 'pro',
	'https://app.example.com/ok', 'https://app.example.com/cancel');
\set VERBOSITY default
RESET ipai.user_id;
RESET ROLE;

-- a signed subscription event that names the organization
SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_rg1', 'customer.subscription.created', 1735689606, 'sub_RG', 'cus_RG', 'active',
	price => 'price_regress_pro', org => 'a4000000-0000-4000-8000-000000000000'));
SELECT plan_id FROM ipai.organizations WHERE id = 'a4000000-0000-4000-8000-000000000000';
SELECT stripe_subscription_id, status, plan_id, current_period_start, current_period_end, last_event_id
  FROM ipai.subscriptions WHERE org_id = 'a4000000-0000-4000-8000-000000000000';
SELECT action, object_type, object_id, old_values, new_values - 'quantity' AS new_values
  FROM ipai.audit_log WHERE org_id = 'a4000000-0000-4000-8000-000000000000' ORDER BY id;
-- again: a duplicate
SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_rg1', 'customer.subscription.created', 1735689606, 'sub_RG', 'cus_RG', 'active',
	price => 'price_regress_pro', org => 'a4000000-0000-4000-8000-000000000000'));
-- an older event: processed, not applied
SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_rg0', 'customer.subscription.updated', 1735689000, 'sub_RG', 'cus_RG', 'incomplete',
	price => 'price_regress_pro', org => 'a4000000-0000-4000-8000-000000000000'));
-- a type we do not handle
SELECT * FROM stripe_fixture.deliver(stripe_fixture.other_event('evt_rg2', 'customer.updated', 1735689700));
-- a subscription nobody claims yet
SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_rg3', 'customer.subscription.created', 1735689800, 'sub_RG_other', 'cus_RG_other', 'active'));
SELECT event_id, event_type, status, error, attempts, deliveries
  FROM ipai.webhook_events WHERE event_id LIKE 'evt_rg%' ORDER BY event_id;
-- the deletion: back to free
SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_rg4', 'customer.subscription.deleted', 1738368000, 'sub_RG', 'cus_RG', 'canceled',
	price => 'price_regress_pro', org => 'a4000000-0000-4000-8000-000000000000'));
SELECT plan_id FROM ipai.organizations WHERE id = 'a4000000-0000-4000-8000-000000000000';

-- bad deliveries: the errors
SELECT * FROM ipai.stripe_webhook('{"id": "evt_rg9"}'::text, NULL);
SELECT * FROM ipai.stripe_webhook('{"id": "evt_rg9"}'::text, 't=1,v1=zz');
SELECT * FROM ipai.stripe_webhook('{"id": "evt_rg9"}'::text, 't=1735689600,v0=00');
SELECT * FROM ipai.stripe_webhook('{"id": "evt_rg9"}'::text,
	ipai.stripe_sign('{"id": "evt_rg9"}'::text, 'whsec_someone_else'));
SELECT * FROM ipai.stripe_webhook('{"id": "evt_rg9"}'::text,
	ipai.stripe_sign('{"id": "evt_rg9"}'::text, stripe_fixture.secret(), now() - interval '1 hour'));
SELECT * FROM stripe_fixture.deliver('{"id": "evt_rg9"');
SELECT * FROM stripe_fixture.deliver('["evt_rg9"]');
SELECT * FROM stripe_fixture.deliver('{"type": "invoice.paid", "created": 1735689600}');
SELECT * FROM stripe_fixture.deliver('{"id": "evt_rg9", "created": 1735689600}');
SELECT * FROM stripe_fixture.deliver('{"id": "evt_rg9", "type": "invoice.paid", "created": "yesterday"}');
SELECT * FROM stripe_fixture.deliver('{"id": "evt_rg9", "type": "invoice.paid", "created": 1735689600}');
SELECT * FROM stripe_fixture.deliver('{"id": "evt_rg9", "type": "invoice.paid", "created": 1735689600, "data": {"object": {"id": "in_1"}}}');
SELECT * FROM ipai.stripe_webhook(NULL::bytea, 't=1,v1=00');
SELECT count(*) FROM ipai.webhook_events WHERE event_id = 'evt_rg9';

-- clean up (the audit log is append-only and keeps its rows)
DELETE FROM ipai.webhook_events WHERE event_id LIKE 'evt_rg%';
DELETE FROM ipai.organizations WHERE id = 'a4000000-0000-4000-8000-000000000000';
SELECT ipai.retire_stripe_webhook_secret(stripe_fixture.secret());
DELETE FROM ipai.webhook_secrets;
UPDATE ipai.plans SET stripe_price_id = NULL WHERE id = 'pro';
DROP SCHEMA stripe_fixture CASCADE;
