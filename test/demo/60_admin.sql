-- Part 6: team administration and the dashboards.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT id AS acme FROM ipai.organizations WHERE name = 'Acme' \gset
\echo
\echo '=== Team administration ==========================================='
\echo '--- Acme is on the free plan: 3 seats, taken by Alice, Carol and Dave.'
\set ECHO queries
SELECT o.plan_id, e.max_quantity AS seats,
	   (SELECT count(*) FROM ipai.org_members m WHERE m.org_id = o.id) AS members
  FROM ipai.organizations o
  JOIN ipai.plan_entitlements e ON e.plan_id = o.plan_id AND e.feature = 'seats'
 WHERE o.id = :'acme';
\set ECHO none
\echo
\echo '--- Dave moves on; Alice removes him and invites Erin as editor.'
SET ROLE authenticated;
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
\set ECHO queries
SELECT ipai.remove_member(:'acme', 'da7e0000-0000-4000-8000-000000000001');
SELECT ipai.invite_member(:'acme', 'Erin@Example.com', 'editor') AS erin_invitation \gset
\set ECHO none
RESET ROLE;
\echo
\echo '--- The invitation waits in the outbox; the Edge layer claims it, sends'
\echo '--- the Supabase Auth invite, and marks it sent (which erases the token).'
SET ROLE service_role;
\set ECHO queries
SELECT id AS outbox_id, payload->>'email' AS email, payload->>'role' AS role,
	   left(payload->>'token', 8) || '…' AS token
  FROM ipai.outbox_claim('auth.invite') WHERE payload->>'invitation_id' = :'erin_invitation' \gset
\set ECHO none
\echo 'claimed outbox row' :outbox_id 'for' :email 'as' :role ', token' :token
SELECT payload->>'token' AS erin_token FROM ipai.outbox WHERE id = :outbox_id \gset
\set ECHO queries
SELECT ipai.outbox_mark_sent(:outbox_id);
SELECT payload ? 'token' AS token_still_stored FROM ipai.outbox WHERE id = :outbox_id;
\set ECHO none
RESET ROLE;
\echo
\echo '--- Erin signs in (JWT with her e-mail) and accepts with the token from the e-mail.'
SET ROLE authenticated;
SET request.jwt.claims = '{"sub": "e0000000-0000-4000-8000-0000000000e1", "email": "erin@example.com", "role": "authenticated"}';
\echo 'SELECT ipai.accept_invitation(''<token from the e-mail>'') = :''acme'' AS joined_acme;'
SELECT ipai.accept_invitation(:'erin_token') = :'acme' AS joined_acme;
\echo '--- A token works once:'
\set ON_ERROR_STOP off
\echo 'SELECT ipai.accept_invitation(''<the same token>'');'
SELECT ipai.accept_invitation(:'erin_token');
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
RESET request.jwt.claims;
\echo
\echo '--- Alice, Carol and Erin fill the 3 free seats: a fourth invitation is refused.'
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.invite_member(:'acme', 'frank@example.com');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- Settings: time zone and billing e-mail, validated and audited.'
\set ECHO queries
SELECT ipai.update_organization_settings(:'acme', timezone => 'Asia/Manila',
										 billing_email => 'Billing@Acme.example');
\set ECHO none
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.update_organization_settings(:'acme', timezone => 'Asia/Atlantis');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\set ECHO queries
SELECT action, old_values, new_values FROM ipai.audit_log
 WHERE org_id = :'acme' AND action IN ('organization.settings', 'invitation.create',
									   'invitation.accept', 'member.remove')
 ORDER BY id;
\set ECHO none
\echo
\echo '=== Dashboards: plain views, row-level security decides who sees what'
\echo '--- ipai.org_dashboard, as Alice (owner):'
\x on
\set ECHO queries
SELECT org_name, plan_id, timezone, my_role, member_count, members,
	   pending_invitation_count, seats_used, seats_max
  FROM ipai.org_dashboard;
\set ECHO none
\echo '--- ipai.billing_dashboard (the invoice preview is for owners and admins):'
\set ECHO queries
SELECT org_name, plan_id, subscription_status, period_start, period_end,
	   ai_runs_used, ai_runs_max, ai_runs_percent, cms_items_used, cms_items_max,
	   seats_used, seats_max, seats_percent, next_invoice_total
  FROM ipai.billing_dashboard;
\set ECHO none
\x off
\echo '--- ipai.invoice_history:'
\set ECHO queries
SELECT stripe_invoice_id, status, currency, amount_paid_decimal, period_start::date
  FROM ipai.invoice_history ORDER BY created_at;
\set ECHO none
\echo
\echo '--- Carol (editor) writes a page and asks for approval; it shows in ipai.cms_approval_queue.'
SET ipai.user_id = 'ca201000-0000-4000-8000-000000000001';
\set ECHO queries
SELECT ipai.cms_create_page(:'acme', 'Team handbook', 'Welcome to Acme.') AS handbook \gset
UPDATE ipai.cms_pages SET body = 'Welcome to Acme, Erin.' WHERE id = :'handbook';
SELECT ipai.cms_request_approval(:'handbook', 'new hire') IS NOT NULL AS requested;
\set ECHO none
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
\x on
\set ECHO queries
SELECT page_title, page_status, requested_by, age < interval '1 minute' AS just_now,
	   request_comment, diff_from_version, diff_to_version, can_review
  FROM ipai.cms_approval_queue WHERE page_id = :'handbook';
\set ECHO none
\x off
\echo '--- ...and its inputs feed the diff straight away:'
\set ECHO queries
SELECT length(ipai.cms_diff_html(page_id, diff_from_version, diff_to_version)) > 0 AS diff_html
  FROM ipai.cms_approval_queue WHERE page_id = :'handbook';
\set ECHO none
\echo
\echo '--- Bob (Globex) sees none of it:'
SET ipai.user_id = 'b0b00000-0000-4000-8000-000000000001';
\set ECHO queries
SELECT (SELECT count(*) FROM ipai.org_dashboard WHERE org_name = 'Acme') AS acme_rows,
	   (SELECT count(*) FROM ipai.cms_approval_queue) AS queue_rows,
	   (SELECT string_agg(org_name, ', ') FROM ipai.billing_dashboard) AS his_billing;
\set ECHO none
RESET ROLE;
RESET ipai.user_id;
\echo
\echo '--- TypeScript types come from the catalog (ipai.typescript_types()), e.g. the org_dashboard row:'
\pset format unaligned
\pset tuples_only on
\set ECHO queries
SELECT substring(ipai.typescript_types() FROM '      org_dashboard: \{[^}]*\}');
\set ECHO none
\pset format aligned
\pset tuples_only off
