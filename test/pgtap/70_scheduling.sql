-- Scheduled publishing: who may schedule, bad input, the live view's
-- semantics (including publish/unpublish ordering), execution as the
-- scheduler under any caller identity, and service_role's operations.
BEGIN;
SELECT plan(44);
SET LOCAL client_min_messages = warning;

-- Acme: owner o, admin a, editor e, viewer v; Globex: owner g
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('7a000000-0000-4000-8000-00000000000a', 'Tap Acme', 'pro'),
	('7a000000-0000-4000-8000-00000000000b', 'Tap Globex', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7a000000-0000-4000-8000-00000000000a', '7a000000-0000-4000-8000-00000000000f', 'owner'),
	('7a000000-0000-4000-8000-00000000000a', '7a000000-0000-4000-8000-0000000000ad', 'admin'),
	('7a000000-0000-4000-8000-00000000000a', '7a000000-0000-4000-8000-0000000000ed', 'editor'),
	('7a000000-0000-4000-8000-00000000000a', '7a000000-0000-4000-8000-0000000000ee', 'viewer'),
	('7a000000-0000-4000-8000-00000000000b', '7a000000-0000-4000-8000-0000000000b0', 'owner');
INSERT INTO ipai.cms_pages (org_id, id, title, body)
SELECT '7a000000-0000-4000-8000-00000000000a', ('7a000000-0000-4000-8000-0000000001' || lpad(g::text, 2, '0'))::uuid,
	   'Tap page ' || g, '<p>' || g || '</p>'
  FROM generate_series(1, 8) g;
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ed', true);
SELECT count(ipai.cms_request_approval(id)) FROM ipai.cms_pages WHERE org_id = '7a000000-0000-4000-8000-00000000000a';
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-00000000000f', true);
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages WHERE org_id = '7a000000-0000-4000-8000-00000000000a';
-- p08 is published
SELECT ipai.cms_publish('7a000000-0000-4000-8000-000000000108');

SELECT has_table('ipai', 'cms_schedule', 'ipai.cms_schedule exists');
SELECT has_view('ipai', 'cms_live_pages', 'ipai.cms_live_pages exists');
SELECT ok((SELECT 'security_invoker=true' = ANY (reloptions) FROM pg_class WHERE oid = 'ipai.cms_live_pages'::regclass),
		  'the view runs with the reader''s rights (security_invoker)');
SELECT has_function('ipai', 'cms_schedule_publish', ARRAY['uuid', 'timestamp with time zone', 'text'],
					'cms_schedule_publish(page_id, run_at, action)');
SELECT function_returns('ipai', 'run_due_publications', ARRAY[]::text[], 'integer', 'run_due_publications() returns integer');

-- who may schedule
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-00000000000f', true);
SELECT lives_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000101', now() + interval '1 hour')$$,
				'the owner schedules');
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ad', true);
SELECT lives_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000102', now() + interval '1 hour')$$,
				'an admin schedules');
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ed', true);
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', now() + interval '1 hour')$$,
				 '42501', NULL, 'an editor may not');
SELECT throws_ok($$SELECT ipai.cms_cancel_schedule((SELECT min(id) FROM ipai.cms_schedule))$$,
				 '42501', NULL, 'nor cancel');
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ee', true);
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', now() + interval '1 hour')$$,
				 '42501', NULL, 'a viewer may not');
SELECT is((SELECT count(*) FROM ipai.cms_schedule), 2::bigint, 'a viewer reads the organization''s schedules');
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000b0', true);
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', now() + interval '1 hour')$$,
				 '42501', 'permission denied for page "7a000000-0000-4000-8000-000000000103"',
				 'another organization''s owner may not, and learns nothing');
SELECT is((SELECT count(*) FROM ipai.cms_schedule), 0::bigint, 'nor sees its schedules');
SELECT is((SELECT count(*) FROM ipai.cms_live_pages), 0::bigint, 'nor its pages in the live view');
SELECT throws_ok($$INSERT INTO ipai.cms_schedule (org_id, page_id, run_at) VALUES
					('7a000000-0000-4000-8000-00000000000b', '7a000000-0000-4000-8000-000000000103', now())$$,
				 '42501', NULL, 'tenants cannot write the table directly');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', now() + interval '1 hour')$$,
				 '42501', NULL, 'anon may not call it');
RESET ROLE;

-- bad input
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ad', true);
SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', NULL)$$,
				 '22023', 'run_at must not be null', 'NULL run_at is 22023');
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', clock_timestamp() - interval '6 seconds')$$,
				 '22023', 'run_at is in the past', 'a run_at 6 seconds ago is 22023');
SELECT lives_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', clock_timestamp() - interval '3 seconds')$$,
				'3 seconds ago is within the grace');
SELECT ok(ipai.cms_cancel_schedule((SELECT id FROM ipai.cms_schedule WHERE page_id = '7a000000-0000-4000-8000-000000000103')),
		  'and an admin cancels it');
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000103', now() + interval '1 hour', 'Publish')$$,
				 '22023', 'unknown schedule action "Publish"', 'an unknown action is 22023');
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-0000000001ff', now() + interval '1 hour')$$,
				 '22023', NULL, 'an unknown page is 22023');
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000104', now() + interval '1 hour', 'unpublish')$$,
				 'IP004', NULL, 'unpublishing an approved page with no publication before is IP004');
SELECT throws_ok($$SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000108', now() + interval '1 hour')$$,
				 'IP004', NULL, 'publishing a published page is IP004');
SELECT throws_ok($$SELECT ipai.cms_cancel_schedule(-5)$$, '22023', NULL, 'cancelling an unknown schedule is 22023');
RESET ROLE;

-- the live view, with the clock moved by moving run_at (as superuser)
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ad', true);
-- p04: publish due; p05: publish due, unpublish due after it; p06: unpublish
-- due before publish; p07: publish in an hour; p08: published, unpublish due
SELECT ipai.cms_schedule_publish(('7a000000-0000-4000-8000-00000000010' || g)::uuid, now() + interval '1 hour')
  FROM generate_series(4, 7) g;
SELECT ipai.cms_schedule_publish(('7a000000-0000-4000-8000-00000000010' || g)::uuid, now() + interval '2 hours', 'unpublish')
  FROM generate_series(5, 6) g;
SELECT ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000108', now() + interval '1 hour', 'unpublish');
UPDATE ipai.cms_schedule SET run_at = now() - interval '10 seconds'
 WHERE page_id IN ('7a000000-0000-4000-8000-000000000104', '7a000000-0000-4000-8000-000000000105',
				   '7a000000-0000-4000-8000-000000000106') AND action = 'publish';
UPDATE ipai.cms_schedule SET run_at = now() - interval '5 seconds'
 WHERE page_id = '7a000000-0000-4000-8000-000000000105' AND action = 'unpublish';
UPDATE ipai.cms_schedule SET run_at = now() - interval '20 seconds'
 WHERE page_id IN ('7a000000-0000-4000-8000-000000000106', '7a000000-0000-4000-8000-000000000108') AND action = 'unpublish';
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '7a000000-0000-4000-8000-0000000000ee', true);
SELECT results_eq(
	$$SELECT right(id::text, 2), status::text, status_live::text, is_live,
			 live_since = (SELECT s.run_at FROM ipai.cms_schedule s WHERE s.page_id = l.id AND s.action = 'publish')
		FROM ipai.cms_live_pages l WHERE id::text ~ '10[4-8]$' ORDER BY id$$,
	$$VALUES ('04', 'approved', 'published', true, true),
			 ('05', 'approved', 'draft', false, NULL::boolean),
			 ('06', 'approved', 'published', true, true),
			 ('07', 'approved', 'approved', false, NULL),
			 ('08', 'published', 'draft', false, NULL)$$,
	'a viewer sees due schedules as executed, in run_at order, before any job ran');
SELECT is((SELECT next_publish_at - now() FROM ipai.cms_live_pages WHERE id = '7a000000-0000-4000-8000-000000000107'),
		  interval '1 hour', 'next_publish_at shows the publication to come');
RESET ROLE;

-- execution: service_role runs it while carrying a JWT of another user;
-- the pages change as the scheduler, the caller's identity is kept
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"sub": "7a000000-0000-4000-8000-0000000000ee", "role": "service_role"}', true);
SELECT is(ipai.run_due_publications(), 5, 'service_role runs the due schedules: 5 executed');
SELECT is(ipai.current_user_id(), '7a000000-0000-4000-8000-0000000000ee'::uuid, 'the caller''s JWT identity is intact');
SELECT is(current_setting('ipai.user_id'), '7a000000-0000-4000-8000-0000000000ee', 'and so is its ipai.user_id');
RESET ROLE;
SELECT results_eq(
	$$SELECT right(page_id::text, 2), action::text, status::text, coalesce(error, '')
		FROM ipai.cms_schedule WHERE page_id::text ~ '10[4-8]$' AND run_at < now() ORDER BY run_at, id$$,
	$$VALUES ('06', 'unpublish', 'failed', 'the page is approved, not published'),
			 ('08', 'unpublish', 'done', ''),
			 ('04', 'publish', 'done', ''),
			 ('05', 'publish', 'done', ''),
			 ('06', 'publish', 'done', ''),
			 ('05', 'unpublish', 'done', '')$$,
	'executed in run_at order with the same outcomes the view predicted');
SELECT results_eq(
	$$SELECT right(id::text, 2), status::text, status_live::text FROM ipai.cms_live_pages
	   WHERE id::text ~ '10[4-8]$' ORDER BY id$$,
	$$VALUES ('04', 'published', 'published'), ('05', 'draft', 'draft'), ('06', 'published', 'published'),
			 ('07', 'approved', 'approved'), ('08', 'draft', 'draft')$$,
	'afterwards pages and view agree');
SELECT is((SELECT count(*) FROM ipai.cms_page_versions
			WHERE page_id::text ~ '10[4-8]$' AND created_at = now() AND version > 3
			  AND created_by = '7a000000-0000-4000-8000-0000000000ad'), 5::bigint,
		  'the 5 snapshots name the admin who scheduled them');
SELECT is((SELECT count(*) FROM ipai.cms_schedule WHERE executed_via IS NOT NULL AND executed_at IS NOT NULL
			AND lateness >= interval '0' AND page_id::text ~ '10[4-8]$' AND run_at < now()), 6::bigint,
		  'every executed row has executed_at, lateness and executed_via');

-- service_role schedules without a user: executed by nobody in particular
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '', true);
SELECT set_config('ipai.user_id', '', true);
SELECT ok(ipai.cms_schedule_publish('7a000000-0000-4000-8000-000000000107', clock_timestamp()) > 0,
		  'service_role schedules without an acting user');
SELECT is(ipai.run_due_publications(), 1, 'and runs it');
RESET ROLE;
SELECT is((SELECT created_by FROM ipai.cms_schedule WHERE page_id = '7a000000-0000-4000-8000-000000000107'
			AND status = 'done'), NULL::uuid, 'the schedule has no creator');
SELECT is((SELECT status::text || coalesce(created_by::text, '-') FROM ipai.cms_page_versions
			WHERE page_id = '7a000000-0000-4000-8000-000000000107' ORDER BY version DESC LIMIT 1),
		  'published-', 'nor has its snapshot');

-- service_role operations
SET LOCAL ROLE service_role;
SELECT is(ipai.recover_stuck_runs(), 0, 'service_role recovers stuck runs (none)');
SELECT is((SELECT preloaded FROM ipai.scheduler_status()), true, 'service_role reads the worker''s status');
SELECT is(ipai.run_due_publications(), 0, 'nothing is due any more');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT ipai.recover_stuck_runs()$$, '42501', NULL, 'authenticated may not recover runs');
SELECT throws_ok($$SELECT ipai.scheduler_wakeup()$$, '42501', NULL, 'nor wake the worker');
RESET ROLE;

-- a pending schedule follows the page's organization when it is deleted
DELETE FROM ipai.organizations WHERE id = '7a000000-0000-4000-8000-00000000000a';
SELECT is((SELECT count(*) FROM ipai.cms_schedule WHERE org_id = '7a000000-0000-4000-8000-00000000000a'), 0::bigint,
		  'deleting the organization deletes its schedules');

SELECT * FROM finish();
ROLLBACK;
