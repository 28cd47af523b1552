-- Tenancy functions, called the way callers do (results are compared).
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000001';
SELECT ipai.current_user_id();
CREATE TEMP TABLE hostile_ids (k text, id uuid);
INSERT INTO hostile_ids SELECT 'org', ipai.create_organization('Hostile Co', 'c0000000-0000-4000-8000-000000000001', 'Ops@Hostile.example', 'Europe/Paris');
SELECT ipai.add_member((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'c0000000-0000-4000-8000-000000000002', 'editor');
SELECT ipai.is_org_member((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'admin');
SELECT ipai.org_role_of((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'));
SELECT cardinality(ipai.user_org_ids('viewer'));
SELECT ipai.require_org_role((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'), 'owner');
SELECT ipai.normalize_email('Someone@Example.COM'), ipai.email_is_valid('a b@c.de');
SELECT name, billing_email, timezone, plan_id FROM ipai.organizations WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org');
SELECT role FROM ipai.org_members WHERE org_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org') ORDER BY role;
SELECT action FROM ipai.audit_log WHERE org_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org') ORDER BY id;
SELECT ipai.install_schema();
SELECT name, status FROM ipai.health();
