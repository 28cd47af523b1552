-- The dashboard views: what each role sees, and that the figures are the
-- ones the limits enforce.
BEGIN;
SELECT plan(22);
SET LOCAL client_min_messages = warning;

-- org V (free): owner, editor, viewer, one pending invitation; org W: its owner
INSERT INTO ipai.organizations (id, name, timezone) VALUES
	('83000000-0000-4000-8000-00000000000a', 'Org V', 'Asia/Manila'),
	('83000000-0000-4000-8000-00000000000b', 'Org W', 'UTC');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('83000000-0000-4000-8000-00000000000a', '8300000a-0000-4000-8000-000000000001', 'owner'),
	('83000000-0000-4000-8000-00000000000a', '8300000a-0000-4000-8000-000000000002', 'editor'),
	('83000000-0000-4000-8000-00000000000b', '8300000b-0000-4000-8000-000000000001', 'owner');
SELECT set_config('ipai.user_id', '8300000a-0000-4000-8000-000000000001', true);
SELECT ipai.invite_member('83000000-0000-4000-8000-00000000000a', 'pending@example.com', 'viewer');
SELECT ipai.record_usage('83000000-0000-4000-8000-00000000000a', 'ai_runs', 25);
SELECT ipai.cms_create_page('83000000-0000-4000-8000-00000000000a', 'Page V', 'v1') AS page_v \gset
SELECT set_config('ipai.user_id', '8300000a-0000-4000-8000-000000000002', true);
SELECT ipai.cms_request_approval(:'page_v', 'please') AS approval_v \gset
SELECT set_config('ipai.user_id', '8300000b-0000-4000-8000-000000000001', true);
SELECT ipai.cms_create_page('83000000-0000-4000-8000-00000000000b', 'Page W', 'w1');
INSERT INTO ipai.invoices (org_id, stripe_invoice_id, status, currency, amount_due, amount_paid)
VALUES ('83000000-0000-4000-8000-00000000000b', 'in_w_1', 'paid', 'usd', 9900, 9900);

SET LOCAL ROLE authenticated;
-- the owner of V
SELECT set_config('ipai.user_id', '8300000a-0000-4000-8000-000000000001', true);
SELECT results_eq($$SELECT org_name, my_role::text, member_count, pending_invitation_count, seats_used, seats_max, seats_remaining
					 FROM ipai.org_dashboard$$,
				  $$VALUES ('Org V'::text, 'owner'::text, 2::bigint, 1::bigint, 3::bigint, 3::bigint, 0::bigint)$$,
				  'org_dashboard: the owner sees their organization, members, the pending invitation and 3 of 3 seats');
SELECT is((SELECT pending_invitations->0->>'email' FROM ipai.org_dashboard), 'pending@example.com',
		  'org_dashboard: pending invitations with their address');
SELECT is((SELECT jsonb_agg(m->>'role') FROM ipai.org_dashboard, jsonb_array_elements(members) m),
		  '["owner", "editor"]'::jsonb, 'org_dashboard: members with roles, owners first');
SELECT is((SELECT seats_used FROM ipai.org_dashboard),
		  (SELECT current FROM ipai.check_entitlement('83000000-0000-4000-8000-00000000000a', 'seats')),
		  'org_dashboard: seats as the limit counts them');
SELECT results_eq($$SELECT plan_id, ai_runs_used, ai_runs_max, ai_runs_percent, cms_items_used, seats_used, seats_percent
					 FROM ipai.billing_dashboard$$,
				  $$VALUES ('free'::text, 25::bigint, 100::bigint, 25.0::numeric, 1::bigint, 3::bigint, 100.0::numeric)$$,
				  'billing_dashboard: usage against limits with percentages');
SELECT is((SELECT jsonb_array_length(usage) FROM ipai.billing_dashboard), 3,
		  'billing_dashboard: one usage entry per feature of the plan');
SELECT results_eq($$SELECT period_start, period_end FROM ipai.billing_dashboard$$,
				  $$SELECT * FROM ipai.usage_period('83000000-0000-4000-8000-00000000000a')$$,
				  'billing_dashboard: the usage period (calendar month in Asia/Manila)');
SELECT ok((SELECT period_start = date_trunc('month', now() AT TIME ZONE 'Asia/Manila') AT TIME ZONE 'Asia/Manila'
			 FROM ipai.billing_dashboard),
		  'billing_dashboard: the period starts at local midnight of the 1st in the organization''s time zone');
SELECT results_eq($$SELECT next_invoice_currency, next_invoice_total FROM ipai.billing_dashboard$$,
				  $$VALUES ('usd'::text, 0.00::numeric)$$,
				  'billing_dashboard: the owner sees the next invoice preview');
SELECT results_eq($$SELECT page_title, requested_by::text, request_comment, diff_from_version, diff_to_version, can_review
					 FROM ipai.cms_approval_queue$$,
				  $$VALUES ('Page V'::text, '8300000a-0000-4000-8000-000000000002'::text, 'please'::text, 1, 2, true)$$,
				  'cms_approval_queue: the pending request with page, requester, diff inputs; the owner may review');
SELECT ok((SELECT ipai.cms_diff_html(page_id, diff_from_version, diff_to_version) LIKE '%<table%'
			 FROM ipai.cms_approval_queue),
		  'cms_approval_queue: its inputs feed ipai.cms_diff_html');
SELECT ok((SELECT age >= interval '0' AND age < interval '1 hour' FROM ipai.cms_approval_queue),
		  'cms_approval_queue: age of the request');
SELECT is((SELECT count(*) FROM ipai.invoice_history), 0::bigint, 'invoice_history: no invoice of another organization');

-- the editor of V: no invitations, no money, same seats; may not review their own request
SELECT set_config('ipai.user_id', '8300000a-0000-4000-8000-000000000002', true);
SELECT results_eq($$SELECT my_role::text, pending_invitation_count, pending_invitations, seats_used
					 FROM ipai.org_dashboard$$,
				  $$VALUES ('editor'::text, 0::bigint, '[]'::jsonb, 3::bigint)$$,
				  'org_dashboard: an editor sees no invitation but the same seat count');
SELECT results_eq($$SELECT ai_runs_used, next_invoice_total FROM ipai.billing_dashboard$$,
				  $$VALUES (25::bigint, NULL::numeric)$$,
				  'billing_dashboard: an editor sees usage but no invoice preview');
SELECT is((SELECT can_review FROM ipai.cms_approval_queue), false,
		  'cms_approval_queue: nobody reviews their own request');

-- the owner of W sees W only
SELECT set_config('ipai.user_id', '8300000b-0000-4000-8000-000000000001', true);
SELECT results_eq($$SELECT org_name FROM ipai.org_dashboard UNION ALL SELECT org_name FROM ipai.billing_dashboard$$,
				  $$VALUES ('Org W'::text), ('Org W'::text)$$,
				  'dashboards: another owner sees only their organization');
SELECT is((SELECT count(*) FROM ipai.cms_approval_queue), 0::bigint,
		  'cms_approval_queue: no request of another organization');
SELECT is((SELECT stripe_invoice_id FROM ipai.invoice_history), 'in_w_1', 'invoice_history: their own invoice');
-- a stranger and anon
SELECT set_config('ipai.user_id', '8300000c-0000-4000-8000-000000000001', true);
SELECT is((SELECT count(*) FROM ipai.org_dashboard) + (SELECT count(*) FROM ipai.billing_dashboard)
		  + (SELECT count(*) FROM ipai.cms_approval_queue) + (SELECT count(*) FROM ipai.invoice_history),
		  0::bigint, 'dashboards: a user of no organization sees nothing');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT * FROM ipai.org_dashboard$$, '42501', NULL, 'anon may not read the dashboards');
RESET ROLE;
-- service_role sees every organization
SET LOCAL ROLE service_role;
SELECT set_config('ipai.user_id', '', true);
SELECT cmp_ok((SELECT count(*) FROM ipai.billing_dashboard
				WHERE org_id IN ('83000000-0000-4000-8000-00000000000a', '83000000-0000-4000-8000-00000000000b')),
			  '=', 2::bigint, 'service_role sees the dashboards of every organization');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
