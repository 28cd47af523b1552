-- Metering: usage periods that move.  A counter counts the usage events
-- inside its window, whichever period recorded them: a time zone change,
-- a subscription that starts late, is canceled or moves its billing anchor
-- neither loses usage (no limit bypass) nor counts it twice.
BEGIN;
SELECT plan(18);
SET LOCAL client_min_messages = warning;

INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('5e000000-0000-4000-8000-00000000000a', 'Zone hopper', 'free', 'UTC'),
	('5e000000-0000-4000-8000-00000000000b', 'Canceller', 'pro', 'UTC'),
	('5e000000-0000-4000-8000-00000000000c', 'Anchor', 'pro', 'UTC'),
	('5e000000-0000-4000-8000-00000000000d', 'Upgrader', 'free', 'UTC');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('5e000000-0000-4000-8000-00000000000a', '5e000000-0000-4000-8000-0000000000f1', 'owner');

CREATE FUNCTION pg_temp.used(org uuid) RETURNS bigint LANGUAGE sql
	AS $$ SELECT current FROM ipai.check_entitlement(org, 'ai_runs') $$;
-- the usage events inside the calendar month of now() in time zone tz
CREATE FUNCTION pg_temp.month_events(org uuid, tz text) RETURNS bigint LANGUAGE sql
	AS $$ SELECT coalesce(sum(quantity), 0)::bigint FROM ipai.usage_events
		   WHERE org_id = org AND feature = 'ai_runs'
			 AND occurred_at >= date_trunc('month', now() AT TIME ZONE tz) AT TIME ZONE tz
			 AND occurred_at < (date_trunc('month', now() AT TIME ZONE tz) + interval '1 month') AT TIME ZONE tz $$;

-- (a) a free organization at its limit changes its time zone (an owner may)
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '5e000000-0000-4000-8000-0000000000f1', true);
SELECT lives_ok($$SELECT ipai.consume_entitlement('5e000000-0000-4000-8000-00000000000a', 'ai_runs', 100)$$,
				'free: 100 of 100 AI runs');
UPDATE ipai.organizations SET timezone = 'Pacific/Kiritimati' WHERE id = '5e000000-0000-4000-8000-00000000000a';
RESET ROLE;
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000a'),
		  pg_temp.month_events('5e000000-0000-4000-8000-00000000000a', 'Pacific/Kiritimati'),
		  'after a time zone change, the usage of the new calendar month counts every event inside it');
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000a'), 100::bigint, '... all 100 runs');
SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT ipai.consume_entitlement('5e000000-0000-4000-8000-00000000000a', 'ai_runs', 1)$$,
				 'IP001', NULL, 'changing the time zone grants no new runs');
UPDATE ipai.organizations SET timezone = 'America/Los_Angeles' WHERE id = '5e000000-0000-4000-8000-00000000000a';
SELECT throws_ok($$SELECT ipai.consume_entitlement('5e000000-0000-4000-8000-00000000000a', 'ai_runs', 1)$$,
				 'IP001', NULL, '... nor does changing it again');
UPDATE ipai.organizations SET timezone = 'UTC' WHERE id = '5e000000-0000-4000-8000-00000000000a';
RESET ROLE;
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000a'), 100::bigint,
		  'back in UTC: the original month, 100 runs, not counted twice');

-- (b) a subscription is canceled mid-month: the calendar month again, with
-- the usage recorded during the subscription period
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
VALUES ('5e000000-0000-4000-8000-00000000000b', 'sub_TapCx', 'active', 'pro',
		now() - interval '1 hour', now() - interval '1 hour' + interval '1 month');
SELECT ipai.record_usage('5e000000-0000-4000-8000-00000000000b', 'ai_runs', 5, 'cx-before', now() - interval '2 hours');
SELECT ipai.record_usage('5e000000-0000-4000-8000-00000000000b', 'ai_runs', 7, 'cx-in', now() - interval '30 minutes');
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000b'), 7::bigint,
		  'an active subscription: the usage of its period');
UPDATE ipai.subscriptions SET status = 'canceled' WHERE stripe_subscription_id = 'sub_TapCx';
UPDATE ipai.organizations SET plan_id = 'free' WHERE id = '5e000000-0000-4000-8000-00000000000b';
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000b'),
		  pg_temp.month_events('5e000000-0000-4000-8000-00000000000b', 'UTC'),
		  'canceled: every event of the calendar month counts');
SELECT cmp_ok(pg_temp.used('5e000000-0000-4000-8000-00000000000b'), '>=', 7::bigint,
			  '... including those of the subscription period');

-- (c) the billing anchor moves: usage already inside the new period counts
-- and is billed
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('5e000000-0000-4000-8000-00000000000c', 'cus_TapAnchor');
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
VALUES ('5e000000-0000-4000-8000-00000000000c', 'sub_TapAn', 'active', 'pro',
		now() - interval '20 days', now() + interval '10 days');
SELECT ipai.record_usage('5e000000-0000-4000-8000-00000000000c', 'ai_runs', 3, 'an-1', now() - interval '1 minute');
UPDATE ipai.subscriptions SET current_period_start = now() - interval '5 minutes',
							  current_period_end = now() - interval '5 minutes' + interval '1 month'
 WHERE stripe_subscription_id = 'sub_TapAn';
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000c'), 3::bigint,
		  'the period now starts 5 minutes ago: the run of a minute ago counts');
SELECT is((SELECT metered_quantity FROM ipai.preview_invoice('5e000000-0000-4000-8000-00000000000c')),
		  3::bigint, '... and preview_invoice bills it');
SELECT lives_ok($$SELECT ipai.consume_entitlement('5e000000-0000-4000-8000-00000000000c', 'ai_runs', 2)$$,
				'a consume in the moved period');
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000c'), 5::bigint, '... adds to the usage carried into it');

-- (d) the subscription reaches the database after usage inside its period
SELECT ipai.record_usage('5e000000-0000-4000-8000-00000000000d', 'ai_runs', 4, 'up-1', now() - interval '10 minutes');
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
VALUES ('5e000000-0000-4000-8000-00000000000d', 'sub_TapUp', 'active', 'pro',
		now() - interval '15 minutes', now() - interval '15 minutes' + interval '1 month');
UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = '5e000000-0000-4000-8000-00000000000d';
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000d'), 4::bigint,
		  'a late subscription: usage already inside its period counts');

-- the counters agree with the events; refresh and health() say so
SELECT is(ipai.refresh_org_usage(), 0, 'refresh_org_usage finds nothing to repair');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'usage counters'), 'ok',
		  'health(): every counter equals its events');
UPDATE ipai.usage_counters SET used = used + 9, carried = 0
 WHERE org_id = '5e000000-0000-4000-8000-00000000000b' AND feature = 'ai_runs';
SELECT cmp_ok(ipai.refresh_org_usage(), '>=', 1, 'a counter that drifted is repaired');
SELECT is(pg_temp.used('5e000000-0000-4000-8000-00000000000b'),
		  pg_temp.month_events('5e000000-0000-4000-8000-00000000000b', 'UTC'),
		  '... to the events inside its window');

SELECT * FROM finish();
ROLLBACK;
