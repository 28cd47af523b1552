-- Metering, called as the Edge layer, workers and psql do (results are
-- compared): checks, consumption to the limit, idempotency, holds, periods,
-- seats, pages, meter events, invoice preview, repair.
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000001';
SELECT * FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs');
SELECT allowed, current, remaining, reason FROM ipai.consume_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 60, 'hostile-1');
SELECT allowed, current, reason FROM ipai.consume_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 60, 'hostile-1');
SELECT ipai.record_usage((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 30, 'hostile-2');
SELECT ipai.record_usage((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 1, 'hostile-3', '2026-03-31 22:30:00+00');
INSERT INTO hostile_ids SELECT 'hold', ipai.reserve_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 8, '1 hour');
SELECT allowed, current, remaining FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 3);
SELECT ipai.finalize_hold((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'hold'), 5);
SELECT allowed, current, remaining FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 5);
SELECT allowed, reason FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 6);
INSERT INTO hostile_ids SELECT 'hold2', ipai.reserve_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 2, '1 hour');
SELECT ipai.release_hold((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'hold2'));
SELECT * FROM ipai.usage_period((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), '2026-03-31 22:30:00+00');
SELECT feature, used, reserved, is_current FROM ipai.org_usage_current WHERE org_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org') ORDER BY feature, period_start;
SELECT * FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'cms_items');
SELECT * FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'seats');
INSERT INTO ipai.org_members (org_id, user_id, role) SELECT id, 'c0000000-0000-4000-8000-000000000003', 'viewer' FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org';
SELECT allowed, current, max FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'seats', 1);
UPDATE ipai.organizations SET plan_id = 'pro' WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) SELECT id, 'cus_Hostile' FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org';
SELECT allowed, current, max, reason FROM ipai.consume_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 150);
SELECT payload OPERATOR(pg_catalog.-) 'identifier'::text OPERATOR(pg_catalog.-) 'timestamp'::text FROM ipai.outbox WHERE topic OPERATOR(pg_catalog.=) 'stripe.meter_event' AND org_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org');
SELECT plan_id, currency, base_amount, metered_quantity, metered_amount, total FROM ipai.preview_invoice((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'));
INSERT INTO ipai.usage_events (org_id, feature, quantity) SELECT id, 'ai_runs', 2 FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org';
UPDATE ipai.usage_counters SET used = 1 WHERE org_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org') AND feature OPERATOR(pg_catalog.=) 'ai_runs';
SELECT ipai.refresh_org_usage();
SELECT current FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs');
GRANT SELECT ON hostile_ids TO authenticated;
SET ROLE authenticated;
SELECT allowed, current, reason FROM ipai.check_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs');
SELECT allowed, reason FROM ipai.consume_entitlement((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'ai_runs', 1, 'hostile-4');
RESET ROLE;
