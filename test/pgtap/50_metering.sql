-- Metering: SQLSTATEs of bad input, who may do what by role, limits
-- wherever usage is created, periods, meter events; nothing half-applied.
BEGIN;
SELECT plan(65);
SET LOCAL client_min_messages = warning;

-- A (free) with a member of every role, B (pro, Stripe customer), M (free, Manila)
INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('5a000000-0000-4000-8000-000000000000', 'A', 'free', 'UTC'),
	('5b000000-0000-4000-8000-000000000000', 'B', 'pro', 'UTC'),
	('5d000000-0000-4000-8000-000000000000', 'M', 'free', 'Asia/Manila');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('5a000000-0000-4000-8000-000000000000', '5a000000-0000-4000-8000-00000000000f', 'owner'),
	('5a000000-0000-4000-8000-000000000000', '5a000000-0000-4000-8000-00000000000e', 'editor'),
	('5a000000-0000-4000-8000-000000000000', '5a000000-0000-4000-8000-00000000000c', 'viewer'),
	('5b000000-0000-4000-8000-000000000000', '5b000000-0000-4000-8000-00000000000f', 'owner'),
	('5b000000-0000-4000-8000-000000000000', '5b000000-0000-4000-8000-00000000000a', 'admin');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('5b000000-0000-4000-8000-000000000000', 'cus_TapB');

-- bad input is 22023, and records nothing
SELECT throws_ok($$SELECT ipai.check_entitlement(NULL, 'ai_runs')$$, '22023', 'organization id must not be null', 'NULL organization');
SELECT throws_ok($$SELECT ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', NULL)$$, '22023', 'feature must not be null', 'NULL feature');
SELECT throws_ok($$SELECT ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', NULL)$$, '22023', NULL, 'NULL quantity');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', 0)$$, '22023', 'quantity must be positive', 'zero quantity');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', -1)$$, '22023', 'quantity must be positive', 'negative quantity');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', -1)$$, '22023', NULL, 'negative recorded quantity');
SELECT throws_ok($$SELECT ipai.consume_entitlement(gen_random_uuid(), 'ai_runs')$$, '22023', NULL, 'unknown organization');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'teleports')$$, '22023', 'unknown feature "teleports"', 'unknown feature');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 1, '')$$, '22023', NULL, 'empty idempotency key');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 1, NULL, NULL)$$, '22023', NULL, 'NULL occurred_at');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'seats')$$, '22023', NULL, 'seats cannot be recorded');
SELECT throws_ok($$SELECT ipai.reserve_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', 1, NULL)$$, '22023', NULL, 'NULL ttl');
SELECT throws_ok($$SELECT ipai.finalize_hold(gen_random_uuid(), 1)$$, '22023', NULL, 'unknown hold');
SELECT throws_ok($$SELECT ipai.finalize_hold(NULL, 1)$$, '22023', NULL, 'NULL hold');
SELECT throws_ok($$SELECT ipai.usage_period(NULL)$$, '22023', NULL, 'NULL organization for the period');
SELECT is((SELECT count(*) FROM ipai.usage_events WHERE org_id::text LIKE '5_000000-%'), 0::bigint,
		  'bad input recorded nothing');

-- idempotency
SELECT ok(ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 3, 'k-1'), 'a new key records');
SELECT ok(NOT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 3, 'k-1'), 'the same key and quantity: false');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 4, 'k-1')$$,
				 '22023', 'idempotency key "k-1" was already used for different usage', 'the same key, another quantity');
SELECT is((SELECT reason FROM ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', 3, 'k-1')),
		  'duplicate', 'consume with a recorded key is a duplicate');
SELECT is((SELECT current FROM ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')), 3::bigint,
		  'the key counted once');

-- hard limits: IP001 for usage, IP005 for seats, wherever it is created
SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 97);
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$,
				 'IP001', 'usage limit reached for feature "ai_runs"', 'consume over the hard limit');
SELECT throws_ok($$SELECT ipai.reserve_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs', 1, '1 minute')$$,
				 'IP001', NULL, 'reserve over the hard limit');
SELECT ok(ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs', 2),
		  'service_role/superuser reports usage that happened even over the limit');
SELECT is((SELECT (allowed, current, remaining) FROM ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')),
		  (false, 102::bigint, 0::bigint), 'remaining never goes below zero');
SELECT throws_ok($$INSERT INTO ipai.org_members (org_id, user_id) VALUES ('5a000000-0000-4000-8000-000000000000', gen_random_uuid())$$,
				 'IP005', 'seat limit reached', 'a fourth member of a free organization');
SELECT throws_ok($$INSERT INTO ipai.org_invitations (org_id, email, token_hash) VALUES ('5a000000-0000-4000-8000-000000000000', 'x@example.com', sha256('x'))$$,
				 'IP005', 'seat limit reached', 'an invitation beyond the seats');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'seats')$$,
				 'IP005', NULL, 'consume of a seat beyond the limit');
INSERT INTO ipai.cms_pages (org_id, slug, title)
SELECT '5a000000-0000-4000-8000-000000000000', 'p' || g, 'P' || g FROM generate_series(1, 50) g;
SELECT throws_ok($$INSERT INTO ipai.cms_pages (org_id, slug, title) VALUES ('5a000000-0000-4000-8000-000000000000', 'p51', 'P51')$$,
				 'IP001', 'usage limit reached for feature "cms_items"', 'a 51st page on free');
SELECT is((SELECT count(*) FROM ipai.cms_pages WHERE org_id = '5a000000-0000-4000-8000-000000000000'), 50::bigint,
		  'the refused page is not there');
SELECT lives_ok($$INSERT INTO ipai.cms_pages (org_id, slug, title) VALUES ('5b000000-0000-4000-8000-000000000000', 'p1', 'P1')$$,
				'pro has room for pages');

-- soft and unlimited: allowed, max and remaining NULL when unlimited
SELECT is((SELECT (allowed, max, remaining, reason) FROM ipai.consume_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs', 1000)),
		  (true, NULL::bigint, NULL::bigint, 'unlimited'::text), 'pro ai_runs are unlimited');
UPDATE ipai.plan_entitlements SET max_quantity = 500 WHERE plan_id = 'pro' AND feature = 'ai_runs';
SELECT is((SELECT (allowed, max, remaining, reason) FROM ipai.consume_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs', 10)),
		  (true, 500::bigint, 0::bigint, 'soft_limit_exceeded'::text), 'a soft limit allows and says so');
UPDATE ipai.plan_entitlements SET max_quantity = NULL WHERE plan_id = 'pro' AND feature = 'ai_runs';

-- metered usage writes a Stripe meter event in the same transaction
SELECT is((SELECT count(*) FROM ipai.outbox WHERE org_id = '5b000000-0000-4000-8000-000000000000'
			AND topic = 'stripe.meter_event'), 2::bigint, 'one meter event per metered usage event');
SELECT is((SELECT sum((payload->>'value')::bigint) FROM ipai.outbox WHERE org_id = '5b000000-0000-4000-8000-000000000000'),
		  1010::numeric, 'meter event values add up');
SELECT ok((SELECT bool_and(payload ?& ARRAY['event_name', 'stripe_customer_id', 'value', 'identifier', 'timestamp'])
			 FROM ipai.outbox WHERE org_id = '5b000000-0000-4000-8000-000000000000'),
		  'meter events carry the fields of Stripe''s API');
SELECT is((SELECT count(*) FROM ipai.outbox WHERE org_id = '5a000000-0000-4000-8000-000000000000'), 0::bigint,
		  'free usage is not metered');
SELECT is((SELECT (metered_quantity, total) FROM ipai.preview_invoice('5b000000-0000-4000-8000-000000000000')),
		  (1010::bigint, 200.00::numeric), 'the invoice preview: 99.00 + 1010 x 0.10');

-- periods: usage at 2026-03-31 20:00 UTC belongs to April in Manila
SELECT ok(ipai.record_usage('5d000000-0000-4000-8000-000000000000', 'ai_runs', 1, 'm', '2026-03-31 20:00+00'), 'late March in UTC');
SELECT is((SELECT period_start FROM ipai.org_usage_current WHERE org_id = '5d000000-0000-4000-8000-000000000000'),
		  '2026-04-01 00:00+08'::timestamptz, 'counts in April in Manila');
SELECT is((SELECT period_start FROM ipai.usage_period('5a000000-0000-4000-8000-000000000000', '2026-03-31 20:00+00')),
		  '2026-03-01 00:00+00'::timestamptz, 'and in March in UTC');
SELECT throws_ok($$UPDATE ipai.organizations SET timezone = 'Atlantis/Capital' WHERE id = '5d000000-0000-4000-8000-000000000000'$$,
				 '22023', NULL, 'an invalid time zone is rejected when it is set');

-- roles: any member checks, consumes and holds; editors record; admins preview
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '5a000000-0000-4000-8000-00000000000c', true);
SELECT lives_ok($$SELECT ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'cms_items')$$, 'a viewer checks');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$, 'IP001', NULL,
				 'a viewer consumes (here: refused by the limit)');
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'a viewer may not record usage directly');
SELECT throws_ok($$SELECT ipai.preview_invoice('5a000000-0000-4000-8000-000000000000')$$, '42501', NULL,
				 'a viewer may not preview the invoice');
SELECT is((SELECT count(DISTINCT org_id) FROM ipai.org_usage_current), 1::bigint, 'a viewer sees its organization''s usage only');
SELECT throws_ok($$SELECT ipai.refresh_org_usage()$$, '42501', NULL, 'tenants do not run the repair');
SELECT set_config('ipai.user_id', '5a000000-0000-4000-8000-00000000000e', true);
SELECT throws_ok($$SELECT ipai.record_usage('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$, 'IP001', NULL,
				 'an editor records, within the hard limit');
SELECT set_config('ipai.user_id', '5a000000-0000-4000-8000-00000000000f', true);
SELECT lives_ok($$SELECT ipai.preview_invoice('5a000000-0000-4000-8000-000000000000')$$, 'an owner previews');
SELECT throws_ok($$SELECT ipai.check_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'a member of another organization may not check');
SELECT throws_ok($$SELECT ipai.check_entitlement('5b000000-0000-4000-8000-000000000000', 'nonsense')$$, '42501', NULL,
				 'nor learn which features exist');
SELECT throws_ok($$SELECT ipai.consume_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'nor consume');
SELECT throws_ok($$SELECT ipai.record_usage('5b000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'nor record');
SELECT throws_ok($$SELECT ipai.reserve_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs', 1, '1 minute')$$, '42501', NULL,
				 'nor reserve');
SELECT set_config('ipai.user_id', '5b000000-0000-4000-8000-00000000000a', true);
SELECT lives_ok($$SELECT ipai.preview_invoice('5b000000-0000-4000-8000-000000000000')$$, 'an admin previews');
SELECT ok((SELECT ipai.finalize_hold(ipai.reserve_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs', 5, '1 minute'), 4)),
		  'a member reserves and finalizes');
SELECT set_config('ipai.user_id', '', true);
SELECT throws_ok($$SELECT ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'nobody acting: not allowed');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT ipai.check_entitlement('5a000000-0000-4000-8000-000000000000', 'ai_runs')$$, '42501', NULL,
				 'anon may not call it');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT lives_ok($$SELECT ipai.consume_entitlement('5b000000-0000-4000-8000-000000000000', 'ai_runs')$$, 'service_role acts for any organization');
SELECT lives_ok($$SELECT ipai.refresh_org_usage()$$, 'service_role runs the repair');
SELECT lives_ok($$INSERT INTO ipai.usage_events (org_id, feature, quantity) VALUES ('5b000000-0000-4000-8000-000000000000', 'ai_runs', 2)$$,
				'service_role may insert events directly');
SELECT throws_ok($$UPDATE ipai.usage_counters SET used = 0$$, '42501', NULL, 'but not write counters');
RESET ROLE;

-- the counters are the sum of the events
SELECT is((SELECT count(*) FROM ipai.usage_counters c
			WHERE c.org_id::text LIKE '5_000000-%' AND c.feature = 'ai_runs'
			  AND c.used <> (SELECT coalesce(sum(quantity), 0) FROM ipai.usage_events e
							  WHERE e.org_id = c.org_id AND e.feature = c.feature
								AND e.period_start = c.period_start)), 0::bigint,
		  'every counter equals its events');
SELECT is(ipai.refresh_org_usage(), 0, 'nothing to repair');

SELECT * FROM finish();
ROLLBACK;
