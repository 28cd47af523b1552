-- Billing: a deferred webhook event is applied once its customer is linked
-- to an organization, whoever writes the link: an operator's INSERT or
-- UPDATE of ipai.billing_customers (the trigger ipai._billing_customer_linked),
-- or, when the link was written without the trigger, the next delivery of
-- that customer.  Each event is applied once; an older one never
-- overwrites a newer state.
BEGIN;
SELECT plan(55);
\ir ../fixtures/stripe/billing_events.sql
SET LOCAL client_min_messages = warning;

SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_pro_monthly' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name) VALUES
	('11100000-0000-4000-8000-000000000001', 'Link 1'),
	('11100000-0000-4000-8000-000000000002', 'Link 2'),
	('11100000-0000-4000-8000-000000000003', 'Link 3'),
	('11100000-0000-4000-8000-000000000004', 'Link 4'),
	('11100000-0000-4000-8000-000000000005', 'Link 5'),
	('11100000-0000-4000-8000-000000000006', 'Link 6'),
	('11100000-0000-4000-8000-000000000007', 'Link 7');

CREATE FUNCTION pg_temp.plan_of(org uuid) RETURNS text
	LANGUAGE sql AS $$ SELECT plan_id FROM ipai.organizations WHERE id = org $$;
CREATE FUNCTION pg_temp.inbox(evt text) RETURNS ipai.webhook_events
	LANGUAGE sql AS $$ SELECT * FROM ipai.webhook_events WHERE event_id = evt $$;
-- a subscription event of customer cus, subscription sub, without metadata
CREATE FUNCTION pg_temp.sub_event(evt text, type text, created bigint, sub text, cus text,
								  status text, period_end bigint DEFAULT 1738368000) RETURNS text
	LANGUAGE sql AS $$
	SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.subscription_event(
		evt, type, created, sub, cus, status, price => 'price_pro_monthly',
		period_end => period_end)) d
$$;
CREATE FUNCTION pg_temp.deferred_detail() RETURNS text
	LANGUAGE sql AS $$ SELECT detail FROM ipai.health() WHERE name = 'deferred webhooks' $$;
-- the audit actions of an organization's billing, in order
CREATE FUNCTION pg_temp.actions(org uuid) RETURNS text[]
	LANGUAGE sql AS $$
	SELECT array_agg(action || ':' || coalesce(new_values->>'event_id', '') ORDER BY id)
	  FROM ipai.audit_log WHERE org_id = org AND action LIKE ANY ('{subscription.%,invoice.%,organization.plan}')
$$;

-- ---- the probe: deferred, then an operator links the customer by INSERT
SELECT is(pg_temp.deferred_detail(), '0 events wait for their organization', 'no backlog at first');
SELECT is(pg_temp.sub_event('evt_l1', 'customer.subscription.created', 1737000000, 'sub_L1', 'cus_L1', 'active'),
		  'deferred', 'a subscription of an unknown customer without metadata is deferred');
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.invoice_event(
			 'evt_l1i', 'invoice.paid', 1737000005, 'in_L1', 'cus_L1', 'sub_L1', 'paid')) d),
		  'deferred', 'its invoice too');
SELECT matches(pg_temp.deferred_detail(), '^2 events wait for their organization',
			   'health() reports the backlog');
SELECT lives_ok(
	$$INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
	  VALUES ('11100000-0000-4000-8000-000000000001', 'cus_L1')$$,
	'an operator links the customer with a plain INSERT');
SELECT is((SELECT (s.org_id, s.status, s.plan_id, s.last_event_id)::text FROM ipai.subscriptions s
			WHERE s.stripe_subscription_id = 'sub_L1'),
		  '(11100000-0000-4000-8000-000000000001,active,pro,evt_l1)',
		  'the deferred subscription is applied in the same statement');
SELECT is(pg_temp.plan_of('11100000-0000-4000-8000-000000000001'), 'pro', 'the organization is on pro');
SELECT is((SELECT (i.org_id, i.status)::text FROM ipai.invoices i WHERE i.stripe_invoice_id = 'in_L1'),
		  '(11100000-0000-4000-8000-000000000001,paid)', 'the deferred invoice is applied');
SELECT is((SELECT array_agg((e.status, e.org_id, e.attempts, e.error)::text ORDER BY e.event_id)
			 FROM ipai.webhook_events e WHERE e.event_id IN ('evt_l1', 'evt_l1i')),
		  ARRAY['(processed,11100000-0000-4000-8000-000000000001,2,)',
				'(processed,11100000-0000-4000-8000-000000000001,2,)'],
		  'both inbox rows are processed, attributed to the organization (two attempts: deferred, applied)');
SELECT is(pg_temp.actions('11100000-0000-4000-8000-000000000001'),
		  ARRAY['subscription.create:evt_l1', 'organization.plan:evt_l1', 'invoice.create:evt_l1i'],
		  'each event is applied and audited once, oldest first');
SELECT is(pg_temp.deferred_detail(), '0 events wait for their organization', 'health() shows no backlog afterwards');
SELECT is(pg_temp.sub_event('evt_l1', 'customer.subscription.created', 1737000000, 'sub_L1', 'cus_L1', 'active'),
		  'duplicate', 'a re-delivery of a released event is a duplicate');
SELECT is(pg_temp.sub_event('evt_l1u', 'customer.subscription.updated', 1737000010, 'sub_L1', 'cus_L1', 'past_due'),
		  'processed', 'later events of the linked customer are processed at once');
SELECT is((SELECT count(*) FROM ipai.audit_log WHERE action = 'subscription.create' AND object_id = 'sub_L1'),
		  1::bigint, 'nothing was applied twice');

-- ---- several deferred events, newest delivered first: applied oldest first
SELECT is(pg_temp.sub_event('evt_l2u', 'customer.subscription.updated', 1737100010, 'sub_L2', 'cus_L2', 'active'),
		  'deferred', 'the update arrives first and waits');
SELECT is(pg_temp.sub_event('evt_l2c', 'customer.subscription.created', 1737100000, 'sub_L2', 'cus_L2', 'incomplete'),
		  'deferred', 'then the creation');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('11100000-0000-4000-8000-000000000002', 'cus_L2');
SELECT is((SELECT (s.status, s.last_event_id)::text FROM ipai.subscriptions s WHERE s.stripe_subscription_id = 'sub_L2'),
		  '(active,evt_l2u)', 'the newer state wins');
SELECT is(pg_temp.actions('11100000-0000-4000-8000-000000000002'),
		  ARRAY['subscription.create:evt_l2c', 'subscription.update:evt_l2u', 'organization.plan:evt_l2u'],
		  'created, then updated: released oldest first');
SELECT is((SELECT array_agg(e.status ORDER BY e.event_id) FROM ipai.webhook_events e
			WHERE e.event_id IN ('evt_l2c', 'evt_l2u')), ARRAY['processed', 'processed'], 'both processed');

-- ---- a link written without the trigger: the next delivery of the customer releases
SELECT is(pg_temp.sub_event('evt_l3c', 'customer.subscription.created', 1737200000, 'sub_L3', 'cus_L3', 'incomplete'),
		  'deferred', 'deferred before the link');
SET LOCAL session_replication_role = replica;
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('11100000-0000-4000-8000-000000000003', 'cus_L3');
SET LOCAL session_replication_role = origin;
SELECT is((pg_temp.inbox('evt_l3c')).status, 'deferred',
		  'a link written with triggers off releases nothing by itself');
SELECT is(pg_temp.sub_event('evt_l3u', 'customer.subscription.updated', 1737200010, 'sub_L3', 'cus_L3', 'active'),
		  'processed', 'a newer event of the customer is attributed by the link');
SELECT is((SELECT (s.status, s.last_event_id)::text FROM ipai.subscriptions s WHERE s.stripe_subscription_id = 'sub_L3'),
		  '(active,evt_l3u)', 'the newer event''s state is kept');
SELECT is(pg_temp.actions('11100000-0000-4000-8000-000000000003'),
		  ARRAY['subscription.create:evt_l3c', 'subscription.update:evt_l3u', 'organization.plan:evt_l3u'],
		  'the older deferred event was applied first, then the newer one');
SELECT is((SELECT array_agg((e.status, e.org_id, e.attempts)::text ORDER BY e.event_id) FROM ipai.webhook_events e
			WHERE e.event_id IN ('evt_l3c', 'evt_l3u')),
		  ARRAY['(processed,11100000-0000-4000-8000-000000000003,2)',
				'(processed,11100000-0000-4000-8000-000000000003,1)'],
		  'both processed (the deferred one on its second attempt)');

-- the same, with the deferred event newer than the delivery that releases it
SELECT is(pg_temp.sub_event('evt_l4u', 'customer.subscription.updated', 1737300010, 'sub_L4', 'cus_L4', 'active'),
		  'deferred', 'a newer update deferred');
SET LOCAL session_replication_role = replica;
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('11100000-0000-4000-8000-000000000004', 'cus_L4');
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.sub_event('evt_l4c', 'customer.subscription.created', 1737300000, 'sub_L4', 'cus_L4', 'incomplete'),
		  'processed', 'the older creation arrives after the link');
SELECT is((SELECT (s.status, s.last_event_id)::text FROM ipai.subscriptions s WHERE s.stripe_subscription_id = 'sub_L4'),
		  '(active,evt_l4u)', 'the released newer state is not overwritten by the older event');
SELECT is((SELECT (e.status, e.error)::text FROM pg_temp.inbox('evt_l4c') e),
		  '(processed,"not applied: sub_L4 already reflects event evt_l4u, which is newer")',
		  'the older event is recorded as superseded, as any out-of-order event');
SELECT is((pg_temp.inbox('evt_l4u')).status, 'processed', 'the deferred update is processed');
SELECT is(pg_temp.plan_of('11100000-0000-4000-8000-000000000004'), 'pro', 'on pro');

-- ---- UPDATE of stripe_customer_id
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('11100000-0000-4000-8000-000000000005', 'cus_L5old');
SELECT is(pg_temp.sub_event('evt_l5', 'customer.subscription.created', 1737400000, 'sub_L5', 'cus_L5new', 'trialing'),
		  'deferred', 'an event of another customer waits');
UPDATE ipai.billing_customers SET stripe_customer_id = stripe_customer_id
 WHERE org_id = '11100000-0000-4000-8000-000000000005';
SELECT is((pg_temp.inbox('evt_l5')).status, 'deferred', 'an UPDATE keeping the customer releases nothing');
UPDATE ipai.billing_customers SET stripe_customer_id = 'cus_L5new'
 WHERE org_id = '11100000-0000-4000-8000-000000000005';
SELECT is((SELECT (s.org_id, s.status)::text FROM ipai.subscriptions s WHERE s.stripe_subscription_id = 'sub_L5'),
		  '(11100000-0000-4000-8000-000000000005,trialing)', 'an UPDATE to the new customer releases its events');
SELECT is(pg_temp.plan_of('11100000-0000-4000-8000-000000000005'), 'pro', 'trialing on pro: pro');

-- ---- as service_role, several rows in one statement, an upsert
SELECT is(pg_temp.sub_event('evt_l6', 'customer.subscription.created', 1737500000, 'sub_L6', 'cus_L6', 'active'),
		  'deferred', 'customer 6 waits');
SELECT is(pg_temp.sub_event('evt_l7', 'customer.subscription.created', 1737500000, 'sub_L7', 'cus_L7', 'active'),
		  'deferred', 'customer 7 waits');
SELECT is(pg_temp.sub_event('evt_l8', 'customer.subscription.created', 1737500000, 'sub_L8', 'cus_L8', 'active'),
		  'deferred', 'customer 8 waits and is never linked');
SET LOCAL ROLE service_role;
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES
	('11100000-0000-4000-8000-000000000006', 'cus_L6'),
	('11100000-0000-4000-8000-000000000007', 'cus_nothing')
ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id;
INSERT INTO ipai.billing_customers AS c (org_id, stripe_customer_id)
VALUES ('11100000-0000-4000-8000-000000000007', 'cus_L7')
ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id;
RESET ROLE;
SELECT is((SELECT array_agg((s.stripe_subscription_id, s.org_id)::text ORDER BY s.stripe_subscription_id)
			 FROM ipai.subscriptions s WHERE s.stripe_subscription_id IN ('sub_L6', 'sub_L7', 'sub_L8')),
		  ARRAY['(sub_L6,11100000-0000-4000-8000-000000000006)', '(sub_L7,11100000-0000-4000-8000-000000000007)'],
		  'service_role''s multi-row INSERT and upsert release each customer''s events');
SELECT is((SELECT (e.status, e.attempts, e.error)::text FROM pg_temp.inbox('evt_l8') e),
		  '(deferred,1,"no organization yet for customer cus_L8, subscription sub_L8")',
		  'an event nobody links stays deferred, unchanged');
SELECT matches(pg_temp.deferred_detail(), '^1 events wait for their organization',
			   'health() counts only that one');

-- ---- bad links release nothing (the error rolls the statement back)
SELECT throws_ok(
	$$INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
	  VALUES ('11100000-0000-4000-8000-0000000000ff', 'cus_L8')$$,
	'23503', NULL, 'a link to an unknown organization is a foreign-key error');
SELECT throws_ok(
	$$INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
	  VALUES ('11100000-0000-4000-8000-000000000001', 'cus_L8')$$,
	'23505', NULL, 'a second customer for an organization is a duplicate key');
SELECT throws_ok(
	$$UPDATE ipai.billing_customers SET stripe_customer_id = ''
	   WHERE org_id = '11100000-0000-4000-8000-000000000001'$$,
	'23514', NULL, 'an empty customer id violates the check');
SELECT is((SELECT (e.status, e.org_id)::text FROM pg_temp.inbox('evt_l8') e), '(deferred,)',
		  'after those errors the event is still deferred');
SELECT is((SELECT count(*) FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_L8'), 0::bigint,
		  'and nothing of it is applied');

-- ---- the webhook's own link (checkout) still releases once
SELECT is((SELECT d.status FROM stripe_fixture.deliver(stripe_fixture.checkout_event(
			 'evt_l8co', 1737500100, 'cs_L8', 'cus_L8', 'sub_L8',
			 org => '11100000-0000-4000-8000-000000000001')) d),
		  'processed', 'a checkout replacing organization 1''s customer links cus_L8');
SELECT is((SELECT (e.status, e.org_id, e.attempts)::text FROM pg_temp.inbox('evt_l8') e),
		  '(processed,11100000-0000-4000-8000-000000000001,2)',
		  'the event is released by the checkout, applied once');
SELECT is((SELECT count(*) FROM ipai.audit_log WHERE action = 'subscription.create' AND object_id = 'sub_L8'),
		  1::bigint, 'audited once');
SELECT is(pg_temp.deferred_detail(), '0 events wait for their organization', 'no backlog left');

-- ---- the trigger function is not callable by anyone else
SELECT is(has_function_privilege('authenticated', 'ipai._billing_customer_linked()', 'EXECUTE'), false,
		  'authenticated cannot execute the trigger function');
SELECT is(has_function_privilege('anon', 'ipai._billing_customer_linked()', 'EXECUTE'), false,
		  'anon neither');
SELECT is((SELECT prosecdef AND proconfig @> '{"search_path=pg_catalog, pg_temp"}'
			 FROM pg_proc WHERE oid = 'ipai._billing_customer_linked()'::regprocedure), true,
		  'SECURITY DEFINER with a safe search_path');
SELECT throws_ok($$SELECT ipai._billing_customer_linked()$$, '0A000', NULL,
				 'it cannot be called outside a trigger');
SELECT is((SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger
			WHERE tgrelid = 'ipai.billing_customers'::regclass AND NOT tgisinternal
			  AND tgfoid = 'ipai._billing_customer_linked()'::regprocedure),
		  ARRAY['billing_customers_link_lock', 'billing_customers_link_release'],
		  'the lock and release triggers are installed');

SELECT * FROM finish();
ROLLBACK;
