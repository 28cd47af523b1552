-- Team administration called the way callers do (results are compared).
-- Every name and operator of the workload itself is qualified: only the
-- extension's own code is under test.
SET ipai.user_id = 'c8000000-0000-4000-8000-000000000001';
SELECT ipai.create_organization('Hostile Admin', 'c8000000-0000-4000-8000-000000000001') AS h_org \gset
UPDATE ipai.organizations SET plan_id = 'pro' WHERE id OPERATOR(pg_catalog.=) :'h_org';
SELECT ipai.invite_member(:'h_org', 'Guest@Hostile.example', 'editor') AS h_inv \gset
SELECT ipai.invite_member(:'h_org', 'guest@hostile.example', 'admin') OPERATOR(pg_catalog.=) :'h_inv'::uuid AS reused;
SELECT email, role, expires_at OPERATOR(pg_catalog.-) last_sent_at AS lifetime, sent_count, pg_catalog.length(token_hash)
  FROM ipai.org_invitations WHERE org_id OPERATOR(pg_catalog.=) :'h_org';
SELECT topic, payload OPERATOR(pg_catalog.->>) 'email', payload OPERATOR(pg_catalog.->>) 'role',
	   pg_catalog.length(payload OPERATOR(pg_catalog.->>) 'token'), pg_catalog.textlike(dedupe_key, 'invitation:%:2')
  FROM ipai.outbox WHERE org_id OPERATOR(pg_catalog.=) :'h_org';
SELECT payload OPERATOR(pg_catalog.->>) 'token' AS h_tok FROM ipai.outbox
 WHERE org_id OPERATOR(pg_catalog.=) :'h_org' \gset
SET request.jwt.claims = '{"sub": "c8000000-0000-4000-8000-000000000002", "email": "GUEST@hostile.example"}';
SELECT ipai.accept_invitation(:'h_tok') OPERATOR(pg_catalog.=) :'h_org'::uuid AS accepted;
RESET request.jwt.claims;
SELECT ipai.set_member_role(:'h_org', 'c8000000-0000-4000-8000-000000000002', 'editor');
SELECT ipai.update_organization_settings(:'h_org', name => ' Hostile Admin 2 ',
	billing_email => 'Pay@Hostile.example', timezone => 'asia/manila');
SELECT name, billing_email, timezone FROM ipai.organizations WHERE id OPERATOR(pg_catalog.=) :'h_org';
SELECT ipai.transfer_ownership(:'h_org', 'c8000000-0000-4000-8000-000000000002');
SELECT user_id, role FROM ipai.org_members WHERE org_id OPERATOR(pg_catalog.=) :'h_org' ORDER BY user_id;
SELECT ipai.invite_member(:'h_org', 'later@hostile.example', 'viewer') AS h_inv2 \gset
SELECT ipai.revoke_invitation(:'h_inv2');
SELECT ipai.remove_member(:'h_org', 'c8000000-0000-4000-8000-000000000001');
SELECT action, old_values, new_values FROM ipai.audit_log WHERE org_id OPERATOR(pg_catalog.=) :'h_org' ORDER BY id;
SELECT org_name, member_count, pending_invitation_count, seats_used, seats_max
  FROM ipai.org_dashboard WHERE org_id OPERATOR(pg_catalog.=) :'h_org';
SELECT org_name, plan_id, seats_used, seats_max, seats_percent, usage, next_invoice_total
  FROM ipai.billing_dashboard WHERE org_id OPERATOR(pg_catalog.=) :'h_org';
SELECT pg_catalog.count(*) FROM ipai.invoice_history;
SELECT pg_catalog.count(*) FROM ipai.cms_approval_queue;
SELECT pg_catalog.md5(ipai.typescript_types());
RESET ipai.user_id;
