-- Billing: what ipai.stripe_webhook does with each kind of event, the plan
-- that follows the subscription, deferral, dedupe, secrets and privileges.
BEGIN;
SELECT plan(99);
\ir ../fixtures/stripe/billing_events.sql
SET LOCAL client_min_messages = warning;

SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_pro_monthly' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name) VALUES
	('a1000000-0000-4000-8000-000000000000', 'Webhook A'),
	('b1000000-0000-4000-8000-000000000000', 'Webhook B'),
	('c1000000-0000-4000-8000-000000000000', 'Webhook C');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('a1000000-0000-4000-8000-000000000000', 'a1000000-0000-4000-8000-00000000000f', 'owner');

CREATE FUNCTION pg_temp.plan_of(org uuid) RETURNS text
	LANGUAGE sql AS $$ SELECT plan_id FROM ipai.organizations WHERE id = org $$;
CREATE FUNCTION pg_temp.sub(id text) RETURNS ipai.subscriptions
	LANGUAGE sql AS $$ SELECT * FROM ipai.subscriptions WHERE stripe_subscription_id = id $$;
CREATE FUNCTION pg_temp.inbox(evt text) RETURNS ipai.webhook_events
	LANGUAGE sql AS $$ SELECT * FROM ipai.webhook_events WHERE event_id = evt $$;
-- deliver a subscription event for org A's subscription sub_A
CREATE FUNCTION pg_temp.sub_a(evt text, type text, created bigint, status text,
							  price text DEFAULT 'price_pro_monthly',
							  period_end bigint DEFAULT 1738368000) RETURNS text
	LANGUAGE sql AS $$
	SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
		evt, type, created, 'sub_A', 'cus_A', status, price => price,
		period_end => period_end, org => 'a1000000-0000-4000-8000-000000000000')) d
$$;

-- ---- processed: a subscription created by our checkout (metadata.org_id)
SELECT results_eq(
	$$SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
		'evt_a1', 'customer.subscription.created', 1735689606, 'sub_A', 'cus_A', 'active',
		price => 'price_pro_monthly', org => 'a1000000-0000-4000-8000-000000000000'))$$,
	$$VALUES ('processed', 'evt_a1', 'customer.subscription.created')$$,
	'a subscription event naming its organization is processed');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'pro',
		  'active on the pro price: the organization is on pro');
SELECT is((SELECT (s.org_id, s.status, s.plan_id, s.stripe_price_id, s.stripe_customer_id, s.quantity)::text
			 FROM pg_temp.sub('sub_A') s),
		  '(a1000000-0000-4000-8000-000000000000,active,pro,price_pro_monthly,cus_A,1)',
		  'the subscription row carries status, plan, price, customer and quantity');
SELECT is((SELECT (s.current_period_start, s.current_period_end)::text FROM pg_temp.sub('sub_A') s),
		  '("2025-01-01 00:00:00+00","2025-02-01 00:00:00+00")',
		  'API 2025-03-31: the period comes from the subscription item');
SELECT is((SELECT stripe_customer_id FROM ipai.billing_customers
			WHERE org_id = 'a1000000-0000-4000-8000-000000000000'), 'cus_A',
		  'the subscription''s customer is linked to the organization');
SELECT is((SELECT array_agg(action ORDER BY id) FROM ipai.audit_log
			WHERE org_id = 'a1000000-0000-4000-8000-000000000000' AND action <> 'member.add'),
		  ARRAY['subscription.create', 'billing_customer.link', 'organization.plan'],
		  'every applied change is audited');
SELECT is((SELECT new_values->>'event_id' FROM ipai.audit_log WHERE action = 'subscription.create'
			 AND object_id = 'sub_A'), 'evt_a1', 'the audit row names the event');
SELECT is((SELECT (e.status, e.org_id, e.attempts, e.deliveries, e.stripe_object_id)::text
			 FROM pg_temp.inbox('evt_a1') e),
		  '(processed,a1000000-0000-4000-8000-000000000000,1,1,sub_A)',
		  'the inbox keeps the event with its status and organization');
SELECT is((SELECT e.payload->>'id' FROM pg_temp.inbox('evt_a1') e), 'evt_a1',
		  'the inbox keeps the payload as jsonb');

-- ---- duplicate
CREATE TEMP TABLE before AS SELECT stripe_fixture.state() AS s,
	(SELECT count(*) FROM ipai.audit_log) AS audits;
SELECT results_eq(
	$$SELECT * FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
		'evt_a1', 'customer.subscription.created', 1735689606, 'sub_A', 'cus_A', 'active',
		price => 'price_pro_monthly', org => 'a1000000-0000-4000-8000-000000000000'))$$,
	$$VALUES ('duplicate', 'evt_a1', 'customer.subscription.created')$$,
	'the same event again is a duplicate');
SELECT is((SELECT deliveries FROM pg_temp.inbox('evt_a1')), 2, 'the re-delivery is counted');
SELECT is((SELECT count(*) FROM ipai.audit_log), (SELECT audits FROM before),
		  'a duplicate writes no audit row');
UPDATE ipai.webhook_events SET deliveries = 1, last_delivery_at = received_at WHERE event_id = 'evt_a1';
SELECT is(stripe_fixture.state(), (SELECT s FROM before),
		  'apart from the delivery count, a duplicate changes nothing');
SELECT is((SELECT d.status FROM ipai.stripe_webhook(
			 stripe_fixture.subscription_event('evt_a1', 'customer.subscription.created', 1735689606,
				 'sub_A', 'cus_A', 'canceled', org => 'a1000000-0000-4000-8000-000000000000'),
			 ipai.stripe_sign(stripe_fixture.subscription_event('evt_a1', 'customer.subscription.created',
				 1735689606, 'sub_A', 'cus_A', 'canceled', org => 'a1000000-0000-4000-8000-000000000000'),
				 stripe_fixture.secret(), now() - interval '1 minute')) d),
		  'duplicate', 'a re-delivery with another signature and body is still a duplicate by event id');
SELECT is((pg_temp.sub('sub_A')).status, 'active', 'and changes nothing');

-- ---- ignored
SELECT results_eq(
	$$SELECT * FROM stripe_fixture.deliver(stripe_fixture.other_event('evt_o1', 'customer.created', 1735689600))$$,
	$$VALUES ('ignored', 'evt_o1', 'customer.created')$$,
	'an event type not handled is ignored');
SELECT is((SELECT (e.status, e.error, e.attempts)::text FROM pg_temp.inbox('evt_o1') e),
		  '(ignored,"event type not handled",0)', 'and stored with the reason');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(
			 stripe_fixture.other_event('evt_o1', 'customer.created', 1735689600)) d),
		  'duplicate', 'an ignored event delivered again is a duplicate');

-- ---- the plan follows the subscription
SELECT is(pg_temp.sub_a('evt_a2', 'customer.subscription.updated', 1735700000, 'past_due'), 'processed',
		  'past_due is processed');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'pro',
		  'past_due keeps the plan while Stripe retries');
SELECT is(pg_temp.sub_a('evt_a3', 'customer.subscription.updated', 1735700100, 'unpaid'), 'processed',
		  'unpaid is processed');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'free', 'unpaid: back to free');
SELECT is(pg_temp.sub_a('evt_a4', 'customer.subscription.updated', 1735700200, 'active'), 'processed',
		  'paid again: active');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'pro', 'active: pro again');
SELECT is(pg_temp.sub_a('evt_a5', 'customer.subscription.paused', 1735700300, 'paused'), 'processed',
		  'customer.subscription.paused is processed');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'free', 'paused: free');
SELECT is(pg_temp.sub_a('evt_a6', 'customer.subscription.resumed', 1735700400, 'trialing'), 'processed',
		  'customer.subscription.resumed is processed');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'pro', 'trialing: pro');
SELECT is(pg_temp.sub_a('evt_a7', 'customer.subscription.updated', 1735700500, 'active', 'price_other'),
		  'processed', 'a price no plan maps is processed');
SELECT is((SELECT (s.plan_id IS NULL, s.stripe_price_id)::text FROM pg_temp.sub('sub_A') s),
		  '(t,price_other)', 'the subscription records the unknown price without a plan');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'free',
		  'an unknown price gives no plan: back to free');
SELECT is(pg_temp.sub_a('evt_a8', 'customer.subscription.updated', 1735700600, 'active'), 'processed',
		  'back on the pro price');

-- ---- ordering
SELECT is(pg_temp.sub_a('evt_a0', 'customer.subscription.updated', 1735690000, 'trialing'), 'processed',
		  'an older event is answered processed');
SELECT is((pg_temp.sub('sub_A')).last_event_id, 'evt_a8', 'but changes nothing');
SELECT matches((pg_temp.inbox('evt_a0')).error, '^not applied: sub_A already reflects event evt_a8',
			'the inbox says why');
SELECT is(pg_temp.sub_a('evt_a9a', 'customer.subscription.updated', 1735700600, 'active',
						period_end => 1740787200), 'processed', 'a same-second event');
SELECT is((pg_temp.sub('sub_A')).current_period_end, '2025-03-01 00:00:00+00'::timestamptz,
		  'same second: the later current_period_end wins');
SELECT is(pg_temp.sub_a('evt_a9b', 'customer.subscription.updated', 1735700600, 'active'), 'processed',
		  'the same second again, with the earlier period');
SELECT is((pg_temp.sub('sub_A')).last_event_id, 'evt_a9a', 'the earlier period loses the tie');
SELECT is(pg_temp.sub_a('evt_a10', 'customer.subscription.deleted', 1735800000, 'canceled'), 'processed',
		  'deleted');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'free', 'deleted: back to free');
SELECT is(pg_temp.sub_a('evt_a11', 'customer.subscription.updated', 1735900000, 'active'), 'processed',
		  'a newer "active" after the deletion');
SELECT is((pg_temp.sub('sub_A')).status, 'canceled', 'a canceled subscription never becomes active again');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'free', 'and the plan stays free');

-- a new subscription of the same organization
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
			 'evt_a12', 'customer.subscription.created', 1736000000, 'sub_A2', 'cus_A', 'active',
			 price => 'price_pro_monthly', legacy => true, period_start => 1736000000,
			 period_end => 1738678400, org => 'a1000000-0000-4000-8000-000000000000')) d),
		  'processed', 'a second subscription (older API layout)');
SELECT is((SELECT (s.current_period_start, s.current_period_end)::text FROM pg_temp.sub('sub_A2') s),
		  '("2025-01-04 14:13:20+00","2025-02-04 14:13:20+00")',
		  'older API: the period comes from the subscription itself');
SELECT is(pg_temp.plan_of('a1000000-0000-4000-8000-000000000000'), 'pro',
		  'the organization follows its live subscription');

-- ---- invoices
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_i1', 'invoice.payment_failed', 1736000100, 'in_A1', 'cus_A', 'sub_A2', 'open')) d),
		  'processed', 'invoice.payment_failed is processed (attributed by its subscription)');
SELECT is((SELECT (i.org_id, i.status, i.amount_due, i.amount_paid, i.amount_remaining, i.currency,
				   i.stripe_subscription_id)::text
			 FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_A1'),
		  '(a1000000-0000-4000-8000-000000000000,open,9900,0,9900,usd,sub_A2)',
		  'the invoice row: status and amounts in cents');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_i2', 'invoice.paid', 1736000200, 'in_A1', 'cus_A', 'sub_A2', 'paid')) d),
		  'processed', 'invoice.paid');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_i3', 'invoice.payment_succeeded', 1736000200, 'in_A1', 'cus_A', 'sub_A2', 'paid')) d),
		  'processed', 'invoice.payment_succeeded of the same second');
SELECT is((SELECT (i.status, i.amount_paid, i.amount_remaining, i.paid_at, i.last_event_id)::text
			 FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_A1'),
		  '(paid,9900,0,"2025-01-04 14:16:40+00",evt_i2)',
		  'paid, with the paid time; invoice.paid wins the same-second tie');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_i4', 'invoice.payment_failed', 1736000300, 'in_A1', 'cus_A', 'sub_A2', 'open')) d),
		  'processed', 'a late payment_failed');
SELECT is((SELECT i.status FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_A1'), 'paid',
		  'a paid invoice never becomes open again');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_i5', 'invoice.paid', 1736000400, 'in_A2', 'cus_A', NULL, 'paid', amount => 12345678901)) d),
		  'processed', 'an invoice without subscription is attributed by its customer');
SELECT is((SELECT i.amount_paid FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_A2'), 12345678901::bigint,
		  'amounts beyond 32 bits are kept (bigint)');
SELECT is((SELECT count(*) FROM ipai.audit_log WHERE object_type = 'invoice'), 3::bigint,
		  'each applied invoice change is audited, stale ones are not');

-- ---- deferred: events before the checkout that links them
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
			 'evt_b1', 'customer.subscription.created', 1736100000, 'sub_B', 'cus_B', 'active',
			 price => 'price_pro_monthly')) d),
		  'deferred', 'a subscription of an unknown customer, without metadata, is deferred');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_b2', 'invoice.paid', 1736100010, 'in_B1', 'cus_B', 'sub_B', 'paid')) d),
		  'deferred', 'its invoice too');
SELECT is((SELECT (e.status, e.org_id, e.error)::text FROM pg_temp.inbox('evt_b1') e),
		  '(deferred,,"no organization yet for customer cus_B, subscription sub_B")',
		  'the inbox says what it waits for');
SELECT is((SELECT count(*) FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_B'), 0::bigint,
		  'nothing is applied yet');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
			 'evt_b1', 'customer.subscription.created', 1736100000, 'sub_B', 'cus_B', 'active',
			 price => 'price_pro_monthly')) d),
		  'duplicate', 'a deferred event delivered again is a duplicate');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.checkout_event(
			 'evt_b3', 1736100020, 'cs_B', 'cus_B', 'sub_B', org => 'b1000000-0000-4000-8000-000000000000')) d),
		  'processed', 'checkout.session.completed links customer and subscription');
SELECT is((SELECT array_agg(e.status || '/' || (e.org_id = 'b1000000-0000-4000-8000-000000000000') ORDER BY e.event_id)
			 FROM ipai.webhook_events e WHERE e.event_id IN ('evt_b1', 'evt_b2')),
		  ARRAY['processed/true', 'processed/true'],
		  'the deferred events were applied in the same transaction');
SELECT is(pg_temp.plan_of('b1000000-0000-4000-8000-000000000000'), 'pro', 'organization B is on pro');
SELECT is((SELECT (c.stripe_customer_id, c.email)::text FROM ipai.billing_customers c
			WHERE c.org_id = 'b1000000-0000-4000-8000-000000000000'),
		  '(cus_B,owner@acme.example)', 'the customer and its e-mail are linked');
SELECT is((SELECT i.status FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_B1'), 'paid',
		  'the deferred invoice is applied');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
			 'evt_b4', 'customer.subscription.updated', 1736100030, 'sub_B', 'cus_B', 'past_due')) d),
		  'processed', 'later events of the linked subscription are processed at once');

-- an invoice waits for its subscription, which names its organization
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_c1', 'invoice.paid', 1736200010, 'in_C1', 'cus_C', 'sub_C', 'paid', legacy => true)) d),
		  'deferred', 'an invoice of an unknown subscription is deferred');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
			 'evt_c2', 'customer.subscription.created', 1736200000, 'sub_C', 'cus_C', 'trialing',
			 price => 'price_pro_monthly', org => 'c1000000-0000-4000-8000-000000000000')) d),
		  'processed', 'its subscription arrives, naming organization C');
SELECT is((SELECT (e.status, e.org_id)::text FROM pg_temp.inbox('evt_c1') e),
		  '(processed,c1000000-0000-4000-8000-000000000000)', 'the invoice is released with it');

-- checkout sessions that name no organization of ours
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.checkout_event(
			 'evt_x1', 1736300000, 'cs_X', 'cus_X', 'sub_X')) d),
		  'ignored', 'a checkout session without an organization is ignored');
SELECT is((pg_temp.inbox('evt_x1')).error, 'no existing organization in metadata.org_id or client_reference_id',
		  'with the reason');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.checkout_event(
			 'evt_x2', 1736300000, 'cs_X2', 'cus_X2', NULL, org => 'dead0000-0000-4000-8000-000000000000')) d),
		  'ignored', 'a checkout session naming an unknown organization is ignored');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.checkout_event(
			 'evt_x3', 1736300000, 'cs_X3', 'cus_X3', NULL,
			 client_reference_id => 'c1000000-0000-4000-8000-000000000000')) d),
		  'processed', 'client_reference_id alone attributes a checkout session');
SELECT is((SELECT stripe_customer_id FROM ipai.billing_customers
			WHERE org_id = 'c1000000-0000-4000-8000-000000000000'), 'cus_X3',
		  'a completed checkout replaces the organization''s customer');

-- an expanded customer object
SELECT is((SELECT d.status FROM stripe_fixture.deliver(
			 replace(stripe_fixture.subscription_event('evt_e1', 'customer.subscription.updated', 1736300100,
				 'sub_C', 'cus_X3', 'active', price => 'price_pro_monthly'),
				 '"customer": "cus_X3"', '"customer": {"id": "cus_X3", "object": "customer"}')) d),
		  'processed', 'an expanded customer object is read by its id');
SELECT is((pg_temp.sub('sub_C')).stripe_customer_id, 'cus_X3', 'and recorded');

-- ---- in the same transaction: the plan change is visible at once
SELECT is((SELECT pg_temp.plan_of('c1000000-0000-4000-8000-000000000000')
			 FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
				 'evt_c3', 'customer.subscription.deleted', 1736300200, 'sub_C', 'cus_X3', 'canceled',
				 price => 'price_pro_monthly')) d
			WHERE d.status = 'processed'), 'free',
		  'the downgrade is visible in the same statement''s transaction');

-- ---- secrets: rotation, retirement, expiry
SELECT is(ipai.set_stripe_webhook_secret('whsec_rotated_2'), 2, 'a second secret: two active');
SELECT is((SELECT d.status FROM ipai.stripe_webhook(
			 stripe_fixture.other_event('evt_r1', 'customer.updated', 1736400000),
			 ipai.stripe_sign(stripe_fixture.other_event('evt_r1', 'customer.updated', 1736400000),
							  'whsec_rotated_2')) d),
		  'ignored', 'a delivery signed with the new secret verifies');
SELECT is((SELECT d.status FROM ipai.stripe_webhook(
			 stripe_fixture.other_event('evt_r2', 'customer.updated', 1736400000),
			 (SELECT split_part(ipai.stripe_sign(stripe_fixture.other_event('evt_r2', 'customer.updated', 1736400000), 'whsec_other'), ',', 1)
				 || ',v1=' || split_part(ipai.stripe_sign(stripe_fixture.other_event('evt_r2', 'customer.updated', 1736400000), 'whsec_other'), 'v1=', 2)
				 || ',v1=' || split_part(ipai.stripe_sign(stripe_fixture.other_event('evt_r2', 'customer.updated', 1736400000), 'whsec_rotated_2'), 'v1=', 2))) d),
		  'ignored', 'any of several v1 signatures may match');
SELECT is(ipai.retire_stripe_webhook_secret(stripe_fixture.secret()), 1, 'retiring the old secret leaves one');
SELECT throws_ok($$SELECT * FROM stripe_fixture.deliver(stripe_fixture.other_event('evt_r3', 'customer.updated', 1736400000))$$,
				 'IP002', NULL, 'a retired secret no longer verifies');
SELECT throws_ok($$SELECT ipai.retire_stripe_webhook_secret('whsec_never_set')$$, '22023', NULL,
				 'retiring an unknown secret is 22023');
SELECT is(ipai.set_stripe_webhook_secret(stripe_fixture.secret(), now() + interval '1 hour'), 2,
		  'a secret set again with an expiry is active until then');
SELECT is((SELECT count(*) FROM ipai.stripe_webhook_secrets() WHERE active AND fingerprint ~ '^sha256:[0-9a-f]{12}$'),
		  2::bigint, 'secrets are listed by fingerprint');
UPDATE ipai.webhook_secrets SET expires_at = now() - interval '1 second' WHERE secret = stripe_fixture.secret();
SELECT throws_ok($$SELECT * FROM stripe_fixture.deliver(stripe_fixture.other_event('evt_r4', 'customer.updated', 1736400000))$$,
				 'IP002', NULL, 'an expired secret no longer verifies');

-- ---- privileges
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', 'a1000000-0000-4000-8000-00000000000f', true);
SELECT throws_ok($$SELECT * FROM ipai.stripe_webhook('{}'::text, 't=1,v1=00')$$, '42501', NULL,
				 'authenticated cannot call stripe_webhook');
SELECT throws_ok($$SELECT secret FROM ipai.webhook_secrets$$, '42501', NULL,
				 'authenticated cannot read the secrets');
SELECT throws_ok($$SELECT ipai.set_stripe_webhook_secret('whsec_mine')$$, '42501', NULL,
				 'authenticated cannot set a secret');
SELECT is((SELECT count(*) FROM ipai.subscriptions), 2::bigint,
		  'an owner sees the subscriptions of its organization only');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT * FROM ipai.stripe_webhook('{}'::bytea, 't=1,v1=00')$$, '42501', NULL,
				 'anon cannot call stripe_webhook');
SELECT throws_ok($$SELECT secret FROM ipai.webhook_secrets$$, '42501', NULL, 'anon cannot read the secrets');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT throws_ok($$SELECT secret FROM ipai.webhook_secrets$$, '42501', NULL,
				 'service_role cannot read the secrets either (functions only)');
SELECT is(ipai.set_stripe_webhook_secret('whsec_service'), 2, 'service_role sets a secret');
SELECT is((SELECT d.status FROM ipai.stripe_webhook(
			 stripe_fixture.other_event('evt_s1', 'customer.updated', 1736400000),
			 ipai.stripe_sign(stripe_fixture.other_event('evt_s1', 'customer.updated', 1736400000),
							  'whsec_service')) d),
		  'ignored', 'service_role delivers webhooks');
SELECT throws_ok($$UPDATE ipai.audit_log SET action = 'x'$$, '42501', NULL,
				 'the audit log refuses UPDATE');
SELECT throws_ok($$DELETE FROM ipai.audit_log$$, '42501', NULL, 'the audit log refuses DELETE');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
