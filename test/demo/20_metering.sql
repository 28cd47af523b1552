-- Part 2: metering.  Acme (free) uses AI runs until its plan's hard limit
-- blocks it, exactly and inside the caller's transaction; seats are
-- enforced where members are added.  The billing part that follows
-- upgrades Acme to pro, which lifts the block.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT id AS acme FROM ipai.organizations WHERE name = 'Acme' \gset
\echo
\echo '=== Metering: exact entitlements, in the caller''s transaction ========='
\echo
\echo '--- Plans are data: what each plan allows (NULL: unlimited).'
\set ECHO queries
SELECT plan_id, feature, max_quantity, enforcement, metered, unit_price
  FROM ipai.plan_entitlements ORDER BY plan_id, feature;
\set ECHO none
\echo
\echo '--- Carol (editor at Acme) runs a batch of 99 AI jobs.  Her retry of the same request'
\echo '--- (same idempotency key) is not counted twice.'
SET ROLE authenticated;
\set ECHO queries
SET ipai.user_id = 'ca201000-0000-4000-8000-000000000001';
SELECT * FROM ipai.check_entitlement(:'acme', 'ai_runs');
SELECT * FROM ipai.consume_entitlement(:'acme', 'ai_runs', 99, 'batch-2026-11-25');
SELECT * FROM ipai.consume_entitlement(:'acme', 'ai_runs', 99, 'batch-2026-11-25');
SELECT * FROM ipai.consume_entitlement(:'acme', 'ai_runs');
\set ECHO none
\echo
\echo '--- The 101st run is refused: IP001, with current usage and maximum in the DETAIL.'
\echo '--- Concurrent callers can never push usage past a hard limit.'
\set ON_ERROR_STOP off
\set ECHO queries
SELECT * FROM ipai.consume_entitlement(:'acme', 'ai_runs');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- Seats are members plus pending invitations: Acme uses all 3 of free''s.  Adding a'
\echo '--- fourth member is refused wherever it is tried (function or plain INSERT): IP005.'
\set ECHO queries
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT allowed, current, max FROM ipai.check_entitlement(:'acme', 'seats');
\set ECHO none
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.add_member(:'acme', 'e0000000-0000-4000-8000-000000000002', 'viewer');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- Live usage per organization, feature and period (the calendar month, in Acme''s time zone).'
\set ECHO queries
SELECT feature, used, is_current FROM ipai.org_usage_current WHERE org_id = :'acme';
\set ECHO none
RESET ipai.user_id;
RESET ROLE;
\echo
\echo 'Acme is blocked until it upgrades: the billing part takes it to pro through Stripe,'
\echo 'where AI runs are unlimited and metered at $0.10 (reported to Stripe as meter events).'
