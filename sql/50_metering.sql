-- Metering: plans as data, exact checks, consumption up to a hard limit,
-- idempotency, usage periods (time zones, subscriptions), holds, limits
-- where usage is created (pages, seats), Stripe meter events, invoice
-- previews, drift repair, and who may do what.  Times are fixed or
-- compared, never printed, so the output does not depend on the day.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET timezone = 'UTC';

-- features are rows
SELECT plan_id, feature, max_quantity, enforcement, counted_by, reset_period, metered,
	   unit_price, stripe_meter_event_name
  FROM ipai.plan_entitlements ORDER BY plan_id, feature;

-- Acme (free), Manila (free, Asia/Manila), Pro Co (pro, Stripe customer)
INSERT INTO ipai.organizations (id, name, timezone, plan_id) VALUES
	('50000000-0000-4000-8000-00000000000a', 'Metering Acme', 'UTC', 'free'),
	('50000000-0000-4000-8000-00000000000b', 'Metering Manila', 'Asia/Manila', 'free'),
	('50000000-0000-4000-8000-00000000000c', 'Metering Pro', 'UTC', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000f1', 'owner'),
	('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000e1', 'editor'),
	('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c1', 'viewer'),
	('50000000-0000-4000-8000-00000000000c', '5c000000-0000-4000-8000-0000000000f1', 'owner'),
	('50000000-0000-4000-8000-00000000000c', '5c000000-0000-4000-8000-0000000000a1', 'admin');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('50000000-0000-4000-8000-00000000000c', 'cus_MeteringPro');

-- a fresh organization
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 101);
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'cms_items');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs', 1000000);

-- consuming up to the hard limit, then IP001 with current and maximum
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 60);
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 40, 'batch-1');
-- the same key again records nothing
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 40, 'batch-1');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 5, 'batch-2');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
SELECT count(*) AS events, sum(quantity) AS quantity
  FROM ipai.usage_events WHERE org_id = '50000000-0000-4000-8000-00000000000a';
-- the refused call left nothing behind
SELECT count(*) FROM ipai.usage_events WHERE idempotency_key = 'batch-2';

-- record_usage: true, then false for the same key and quantity; another
-- quantity (or feature) under the key is an error and records nothing
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 5, 'job-7');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 5, 'job-7');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 6, 'job-7');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs', 5, 'job-7');
SELECT count(*) FROM ipai.usage_events WHERE idempotency_key = 'job-7';

-- bad input: 22023 with a clear message, nothing recorded
SELECT * FROM ipai.check_entitlement(NULL, 'ai_runs');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', NULL);
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', NULL);
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', 0);
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs', -3);
SELECT * FROM ipai.check_entitlement('59999999-9999-4999-8999-999999999999', 'ai_runs');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'gpu_hours');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', repeat('x', 200));
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 1, '');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 1, repeat('k', 256));
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 1, NULL, NULL);
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'ai_runs', 1, NULL, 'infinity');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000c', 'cms_items', 1);
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs', 9223372036854775807);
SELECT count(*) AS events FROM ipai.usage_events WHERE org_id = '50000000-0000-4000-8000-00000000000c';

-- periods: the calendar month in the organization's time zone.  In
-- Manila, 2026-03-31 20:00 UTC is 04:00 on April 1st: April.
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000a', '2026-03-31 20:00+00');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000b', 'ai_runs', 2, 'late-march',
						 '2026-03-31 20:00+00');
SELECT feature, period_start, period_end, used, is_current
  FROM ipai.org_usage_current WHERE org_id = '50000000-0000-4000-8000-00000000000b';
-- daylight saving time: a New York month starts at local midnight
UPDATE ipai.organizations SET timezone = 'America/New_York'
 WHERE id = '50000000-0000-4000-8000-00000000000b';
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-15 12:00+00');
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-11-01 03:59+00');
-- bad moments; and the period is for members only
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', NULL);
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', 'infinity');
SELECT * FROM ipai.usage_period(NULL);
SELECT * FROM ipai._usage_period('50000000-0000-4000-8000-00000000000b', 'gpu_hours', now());
SELECT ipai._usage_period_is_current('59999999-9999-4999-8999-999999999999', now()) IS NULL AS unknown;
SET ROLE authenticated;
SET ipai.user_id = '5a000000-0000-4000-8000-0000000000f1';
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');
SELECT ipai._usage_period_is_current('50000000-0000-4000-8000-00000000000b', '-infinity') IS NULL AS not_mine;
RESET ipai.user_id;
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');
RESET ROLE;
-- an invalid time zone is rejected when it is set
UPDATE ipai.organizations SET timezone = 'Mars/Olympus'
 WHERE id = '50000000-0000-4000-8000-00000000000b';
UPDATE ipai.organizations SET timezone = 'Asia/Manila'
 WHERE id = '50000000-0000-4000-8000-00000000000b';

-- with an active subscription, its period; before it, the calendar month;
-- after its end (renewal not synced yet), the period Stripe starts next
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
VALUES ('50000000-0000-4000-8000-00000000000b', 'sub_Manila', 'trialing', 'pro',
		'2026-03-15 08:00+00', '2026-04-15 08:00+00');
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-10 00:00+00');
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-04-20 00:00+00');
-- past_due keeps the plan while Stripe retries, and the period with it
UPDATE ipai.subscriptions SET status = 'past_due' WHERE stripe_subscription_id = 'sub_Manila';
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');
-- canceled: back to calendar months
UPDATE ipai.subscriptions SET status = 'canceled' WHERE stripe_subscription_id = 'sub_Manila';
SELECT * FROM ipai.usage_period('50000000-0000-4000-8000-00000000000b', '2026-03-31 20:00+00');

-- metered usage (pro ai_runs): a Stripe meter event in the outbox, in the
-- same transaction, with a stable identifier (also the dedupe key)
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs', 245);
SELECT o.topic,
	   o.payload - 'identifier' - 'timestamp' AS payload,
	   o.payload->>'identifier' = 'ipai_' || e.org_id || '_' || e.id AS identifier_is_the_event,
	   o.dedupe_key = o.payload->>'identifier' AS deduped_by_identifier,
	   (o.payload->>'timestamp')::bigint = floor(extract(epoch FROM e.occurred_at)) AS timestamp_is_unix
  FROM ipai.outbox o
  JOIN ipai.usage_events e ON o.dedupe_key = 'ipai_' || e.org_id || '_' || e.id
 WHERE o.org_id = '50000000-0000-4000-8000-00000000000c'
 ORDER BY e.id;
-- the invoice so far: $99 + 250 runs at $0.10
SET ROLE authenticated;
SET ipai.user_id = '5c000000-0000-4000-8000-0000000000a1';
SELECT plan_id, currency, base_amount, metered_quantity, metered_amount, total,
	   (period_start, period_end) =
	   (SELECT p.period_start, p.period_end FROM ipai.usage_period('50000000-0000-4000-8000-00000000000c') p)
	   AS current_period
  FROM ipai.preview_invoice('50000000-0000-4000-8000-00000000000c');
SELECT plan_id, base_amount, metered_quantity, metered_amount, total
  FROM ipai.preview_invoice('50000000-0000-4000-8000-00000000000c');
RESET ipai.user_id;
RESET ROLE;
SELECT plan_id, base_amount, metered_quantity, total
  FROM ipai.preview_invoice('50000000-0000-4000-8000-00000000000a');

-- meter events written before the Stripe customer was known get it
INSERT INTO ipai.organizations (id, name, plan_id)
VALUES ('50000000-0000-4000-8000-00000000000d', 'Metering Comp', 'pro');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000d', 'ai_runs', 3, 'comp-1');
SELECT payload->'stripe_customer_id' AS customer, payload->'payload' AS api_payload
  FROM ipai.outbox WHERE org_id = '50000000-0000-4000-8000-00000000000d';
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('50000000-0000-4000-8000-00000000000d', 'cus_Comp');
SELECT payload->'stripe_customer_id' AS customer, payload->'payload' AS api_payload
  FROM ipai.outbox WHERE org_id = '50000000-0000-4000-8000-00000000000d';

-- holds count against the limit at once and stop counting when released,
-- finalized or expired
INSERT INTO ipai.organizations (id, name) VALUES ('50000000-0000-4000-8000-00000000000e', 'Metering Holds');
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000e', 'ai_runs', 80);
CREATE TEMP TABLE holds (name text PRIMARY KEY, id uuid);
INSERT INTO holds SELECT 'run-a', ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 15, '1 hour');
SELECT current, remaining, reason FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 5);
SELECT current, remaining, reason FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 6);
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 6);
SELECT ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 6, '1 hour');
-- the run used 12 of its 15
SELECT ipai.finalize_hold(id, 12) FROM holds WHERE name = 'run-a';
SELECT ipai.finalize_hold(id, 12) FROM holds WHERE name = 'run-a';
-- (messages name the hold's random id: SQLSTATEs only)
\set VERBOSITY sqlstate
SELECT ipai.finalize_hold(id, 13) FROM holds WHERE name = 'run-a';
SELECT ipai.release_hold(id) FROM holds WHERE name = 'run-a';
\set VERBOSITY default
SELECT current, remaining FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs');
SELECT status, quantity, actual_quantity FROM ipai.usage_holds
 WHERE org_id = '50000000-0000-4000-8000-00000000000e';
-- released: nothing used
INSERT INTO holds SELECT 'run-b', ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 8, '1 hour');
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs');
SELECT ipai.release_hold(id) FROM holds WHERE name = 'run-b';
SELECT ipai.release_hold(id) FROM holds WHERE name = 'run-b';
\set VERBOSITY sqlstate
SELECT ipai.finalize_hold(id, 1) FROM holds WHERE name = 'run-b';
\set VERBOSITY default
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs');
-- expired: stops counting without any job
INSERT INTO holds SELECT 'run-c', ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 8, '1 millisecond');
SELECT pg_sleep(0.05);
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs');
SELECT reserved FROM ipai.org_usage_current WHERE org_id = '50000000-0000-4000-8000-00000000000e';
-- an expired hold can still record its usage if it fits
SELECT ipai.finalize_hold(id, 9) FROM holds WHERE name = 'run-c';
SELECT ipai.finalize_hold(id, 8) FROM holds WHERE name = 'run-c';
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs');
-- bad holds
SELECT ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 1, '0 seconds');
SELECT ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'ai_runs', 0, '1 hour');
SELECT ipai.reserve_entitlement('50000000-0000-4000-8000-00000000000e', 'seats', 1, '1 hour');
SELECT ipai.finalize_hold('59999999-9999-4999-8999-999999999999', 1);
SELECT ipai.finalize_hold(NULL, 1);
SELECT ipai.release_hold(NULL);

-- cms_items: enforced where pages are created, whoever inserts
INSERT INTO ipai.cms_pages (org_id, slug, title)
SELECT '50000000-0000-4000-8000-00000000000a', 'page-' || g, 'Page ' || g FROM generate_series(1, 49) g;
SELECT current, max, remaining FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'cms_items');
INSERT INTO ipai.cms_pages (org_id, slug, title)
SELECT '50000000-0000-4000-8000-00000000000a', 'more-' || g, 'More ' || g FROM generate_series(1, 2) g;
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'cms_items', 2);
INSERT INTO ipai.cms_pages (org_id, slug, title)
VALUES ('50000000-0000-4000-8000-00000000000a', 'fifty', 'Fifty');
INSERT INTO ipai.cms_pages (org_id, slug, title)
VALUES ('50000000-0000-4000-8000-00000000000a', 'fifty-one', 'Fifty-one');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'cms_items');
DELETE FROM ipai.cms_pages WHERE org_id = '50000000-0000-4000-8000-00000000000a' AND slug = 'page-1';
SELECT current, remaining FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'cms_items');
SELECT count(*) AS pages FROM ipai.cms_pages WHERE org_id = '50000000-0000-4000-8000-00000000000a';

-- seats: members plus pending invitations (Acme has 3 members)
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c2', 'viewer');
SET ipai.user_id = '5a000000-0000-4000-8000-0000000000f1';
SELECT ipai.add_member('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c2');
RESET ipai.user_id;
DELETE FROM ipai.org_members WHERE user_id = '5a000000-0000-4000-8000-0000000000c1';
INSERT INTO ipai.org_invitations (org_id, email, role, token_hash)
VALUES ('50000000-0000-4000-8000-00000000000a', 'carol@example.com', 'viewer', sha256('carol'));
SELECT current, max, allowed FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
INSERT INTO ipai.org_invitations (org_id, email, role, token_hash)
VALUES ('50000000-0000-4000-8000-00000000000a', 'dave@example.com', 'viewer', sha256('dave'));
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
-- an expired invitation holds no seat, and reviving it takes one
UPDATE ipai.org_invitations SET expires_at = now() - interval '1 second' WHERE email = 'carol@example.com';
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c3', 'viewer');
UPDATE ipai.org_invitations SET expires_at = now() + interval '7 days' WHERE email = 'carol@example.com';
DELETE FROM ipai.org_members WHERE user_id = '5a000000-0000-4000-8000-0000000000c3';
UPDATE ipai.org_invitations SET expires_at = now() + interval '7 days' WHERE email = 'carol@example.com';
-- accepting converts the invitation's seat, even over the limit after a
-- downgrade (accept_invitation marks it accepted, then inserts the member)
UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = '50000000-0000-4000-8000-00000000000a';
INSERT INTO ipai.org_invitations (org_id, email, role, token_hash)
VALUES ('50000000-0000-4000-8000-00000000000a', 'erin@example.com', 'viewer', sha256('erin'));
UPDATE ipai.organizations SET plan_id = 'free' WHERE id = '50000000-0000-4000-8000-00000000000a';
SELECT current, max, allowed FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
BEGIN;
UPDATE ipai.org_invitations SET accepted_at = now(), accepted_by = '5a000000-0000-4000-8000-0000000000c4'
 WHERE email = 'erin@example.com';
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c4', 'viewer');
COMMIT;
SELECT current, max FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
-- the credit is for that user only, once
BEGIN;
UPDATE ipai.org_invitations SET accepted_at = now(), accepted_by = '5a000000-0000-4000-8000-0000000000c5'
 WHERE email = 'carol@example.com';
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c6', 'viewer');
ROLLBACK;
-- a credit dies with the subtransaction that accepted
BEGIN;
SAVEPOINT accept;
UPDATE ipai.org_invitations SET accepted_at = now(), accepted_by = '5a000000-0000-4000-8000-0000000000c5'
 WHERE email = 'carol@example.com';
ROLLBACK TO SAVEPOINT accept;
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('50000000-0000-4000-8000-00000000000a', '5a000000-0000-4000-8000-0000000000c5', 'viewer');
ROLLBACK;
-- the seat error of the PL/pgSQL paths has the same wording
SELECT ipai._raise_usage_limit('seats', 3, 0, 3, 1);

-- counters equal the events; refresh repairs drift and says how much
SELECT ipai.refresh_org_usage();
UPDATE ipai.usage_counters SET used = used + 7
 WHERE org_id = '50000000-0000-4000-8000-00000000000c' AND feature = 'ai_runs';
UPDATE ipai.usage_counters SET used = 3
 WHERE org_id = '50000000-0000-4000-8000-00000000000a' AND feature = 'cms_items';
SELECT ipai.refresh_org_usage();
SELECT ipai.refresh_org_usage();
SELECT c.org_id, c.feature, c.used,
	   coalesce((SELECT sum(quantity) FROM ipai.usage_events e
				  WHERE e.org_id = c.org_id AND e.feature = c.feature
					AND e.period_start = c.period_start), 0) AS events
  FROM ipai.usage_counters c
 WHERE c.org_id::text LIKE '50000000-%' AND c.feature = 'ai_runs'
 ORDER BY 1, 2, c.period_start;
-- events inserted directly are counted (and metered) too
INSERT INTO ipai.usage_events (org_id, feature, quantity)
VALUES ('50000000-0000-4000-8000-00000000000c', 'ai_runs', 4);
SELECT current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs');
SELECT count(*) AS meter_events FROM ipai.outbox
 WHERE org_id = '50000000-0000-4000-8000-00000000000c' AND topic = 'stripe.meter_event';
INSERT INTO ipai.usage_events (org_id, feature, quantity)
VALUES ('50000000-0000-4000-8000-00000000000c', 'ai_runs', 0);
INSERT INTO ipai.usage_events (org_id, feature, quantity)
VALUES ('50000000-0000-4000-8000-00000000000c', 'seats', 1);
-- the log is append-only
UPDATE ipai.usage_events SET quantity = 1;
DELETE FROM ipai.usage_events;

-- plans are data: a change reaches every session's cache at once
UPDATE ipai.plan_entitlements SET max_quantity = 200 WHERE plan_id = 'free' AND feature = 'ai_runs';
SELECT current, max, allowed FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
UPDATE ipai.plan_entitlements SET max_quantity = 100 WHERE plan_id = 'free' AND feature = 'ai_runs';
-- every plan counts a feature the same way
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, counted_by, reset_period)
VALUES ('pro', 'exports', 10, 'usage_events', 'never'),
	   ('free', 'exports', 1, 'usage_events', 'billing_period');
-- a feature in another plan only: not allowed in this one
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, counted_by, reset_period)
VALUES ('pro', 'exports', 10, 'usage_events', 'never');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'exports');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000a', 'exports');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000c', 'exports', 3);
SELECT feature, period_start, used FROM ipai.org_usage_current
 WHERE org_id = '50000000-0000-4000-8000-00000000000c' AND feature = 'exports';
DELETE FROM ipai.plan_entitlements WHERE feature = 'exports';

-- who may do what
SET ROLE authenticated;
SET ipai.user_id = '5a000000-0000-4000-8000-0000000000c4';
SELECT allowed, current FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'seats');
SELECT reason FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
-- a viewer may not record usage directly
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000a', 'ai_runs');
-- an editor may, within the hard limit like consume
SET ipai.user_id = '5a000000-0000-4000-8000-0000000000e1';
SELECT ipai.record_usage('50000000-0000-4000-8000-00000000000a', 'ai_runs');
-- a member of another organization learns nothing, whatever it asks
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs');
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000c', 'no_such_feature');
SELECT * FROM ipai.consume_entitlement('50000000-0000-4000-8000-00000000000c', 'ai_runs');
SELECT * FROM ipai.preview_invoice('50000000-0000-4000-8000-00000000000c');
SELECT ipai.refresh_org_usage();
-- an editor is not an admin
SELECT * FROM ipai.preview_invoice('50000000-0000-4000-8000-00000000000a');
-- members see their own usage, not others'
SELECT DISTINCT org_id FROM ipai.org_usage_current;
SELECT DISTINCT org_id FROM ipai.usage_events;
-- nobody acting
RESET ipai.user_id;
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
SET ROLE anon;
SELECT * FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000a', 'ai_runs');
RESET ROLE;
-- service_role acts for any organization
SET ROLE service_role;
SELECT current, max FROM ipai.check_entitlement('50000000-0000-4000-8000-00000000000c', 'seats');
RESET ROLE;

DELETE FROM ipai.organizations WHERE id::text LIKE '50000000-%';
SELECT count(*) FROM ipai.usage_events WHERE org_id::text LIKE '50000000-%';
