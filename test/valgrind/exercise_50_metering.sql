INSERT INTO ipai.organizations (id, name, timezone) VALUES ('5e000000-0000-4000-8000-000000000001', 'Valgrind Metering', 'Asia/Manila');

INSERT INTO ipai.org_members (org_id, user_id, role) VALUES ('5e000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'owner');

SELECT * FROM ipai.check_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs');

SELECT * FROM ipai.consume_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 40, 'vg-1');

SELECT * FROM ipai.consume_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 40, 'vg-1');

SELECT ipai.record_usage('5e000000-0000-4000-8000-000000000001', 'ai_runs', 50, 'vg-2', '2026-03-31 20:00+00');

SELECT * FROM ipai.usage_period('5e000000-0000-4000-8000-000000000001', '2026-03-31 20:00+00');

SELECT ipai.finalize_hold(ipai.reserve_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 30, '1 hour'), 20);

SELECT ipai.release_hold(ipai.reserve_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 10, '1 hour'));

SELECT * FROM ipai.check_entitlement('5e000000-0000-4000-8000-000000000001', 'seats');

SELECT * FROM ipai.check_entitlement('5e000000-0000-4000-8000-000000000001', 'cms_items');

INSERT INTO ipai.cms_pages (org_id, slug, title) VALUES ('5e000000-0000-4000-8000-000000000001', 'vg-one', 'One'), ('5e000000-0000-4000-8000-000000000001', 'vg-two', 'Two');

INSERT INTO ipai.org_members (org_id, user_id, role) VALUES ('5e000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111112', 'viewer');

UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = '5e000000-0000-4000-8000-000000000001';

INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('5e000000-0000-4000-8000-000000000001', 'cus_Valgrind');

SELECT * FROM ipai.consume_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 250);

SELECT * FROM ipai.preview_invoice('5e000000-0000-4000-8000-000000000001');

INSERT INTO ipai.usage_events (org_id, feature, quantity) VALUES ('5e000000-0000-4000-8000-000000000001', 'ai_runs', 3);

SELECT ipai.refresh_org_usage();

SELECT feature, used, is_current FROM ipai.org_usage_current WHERE org_id = '5e000000-0000-4000-8000-000000000001';

SET ipai.user_id = '11111111-1111-4111-8111-111111111112';

SET ROLE authenticated;

SELECT * FROM ipai.check_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs');

SELECT * FROM ipai.consume_entitlement('5e000000-0000-4000-8000-000000000001', 'ai_runs', 1, 'vg-3');

RESET ROLE;

SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
