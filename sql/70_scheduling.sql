-- Scheduled publishing: scheduling errors, replacement, cancellation, the
-- run-time checks of run_due_publications, recovery of dead claims, the
-- pg_cron registration without pg_cron, and the worker functions.
-- Time never appears in the output: schedules are made due by moving
-- run_at into the past as the superuser, as the clock would.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- Acme: Alice owner, Bob admin, Carol editor, Dave viewer; Globex: Eve owner
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('70000000-0000-4000-8000-00000000000a', 'Sched Acme', 'pro'),
	('70000000-0000-4000-8000-00000000000b', 'Sched Globex', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('70000000-0000-4000-8000-00000000000a', '70000000-0000-4000-8000-0000000a11ce', 'owner'),
	('70000000-0000-4000-8000-00000000000a', '70000000-0000-4000-8000-000000000b0b', 'admin'),
	('70000000-0000-4000-8000-00000000000a', '70000000-0000-4000-8000-0000000ca201', 'editor'),
	('70000000-0000-4000-8000-00000000000a', '70000000-0000-4000-8000-00000000da7e', 'viewer'),
	('70000000-0000-4000-8000-00000000000b', '70000000-0000-4000-8000-000000000e7e', 'owner');
-- pages p1..p6 of Acme and g1 of Globex, drafts; then through the workflow
INSERT INTO ipai.cms_pages (org_id, id, title, body)
SELECT '70000000-0000-4000-8000-00000000000a', ('70000000-0000-4000-8000-0000000000' || lpad(g::text, 2, '0'))::uuid,
	   'Acme page ' || g, '<p>' || g || '</p>'
  FROM generate_series(1, 6) g;
INSERT INTO ipai.cms_pages (org_id, id, title, body) VALUES
	('70000000-0000-4000-8000-00000000000b', '70000000-0000-4000-8000-0000000000f1', 'Globex page', '<p>g</p>');
SET ipai.user_id = '70000000-0000-4000-8000-0000000ca201';
SELECT count(ipai.cms_request_approval(id)) FROM ipai.cms_pages
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND id <> '70000000-0000-4000-8000-000000000006';
SET ipai.user_id = '70000000-0000-4000-8000-0000000a11ce';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND status = 'pending';
-- p5 is published; p6 stays a draft
SELECT ipai.cms_publish('70000000-0000-4000-8000-000000000005') > 0 AS published;
SELECT right(id::text, 2) AS page, status FROM ipai.cms_pages
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;

-- bad arguments (22023)
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', NULL);
\set VERBOSITY terse
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() - interval '1 minute');
\set VERBOSITY default
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', 'infinity');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour', 'delete');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour', NULL);
SELECT ipai.cms_schedule_publish(NULL, now() + interval '1 hour');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-0000000000ff', now() + interval '1 hour');
-- a few seconds in the past are within the grace
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() - interval '2 seconds') > 0 AS within_grace;
SELECT ipai.cms_cancel_schedule(id) FROM ipai.cms_schedule WHERE page_id = '70000000-0000-4000-8000-000000000001';

-- actions that do not apply (IP004)
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000006', now() + interval '1 hour');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000006', now() + interval '1 hour', 'unpublish');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000005', now() + interval '1 hour');
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour', 'unpublish');

-- who may schedule: admins and owners of the page's organization (42501)
SET ROLE authenticated;
SET ipai.user_id = '70000000-0000-4000-8000-0000000ca201';
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour');
SET ipai.user_id = '70000000-0000-4000-8000-00000000da7e';
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour');
-- Eve learns nothing about Acme's page
SET ipai.user_id = '70000000-0000-4000-8000-000000000e7e';
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour');
-- her own page she may schedule (once approved: it is a draft)
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-0000000000f1', now() + interval '1 hour');
RESET ipai.user_id;
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour');
RESET ROLE;
-- anon may not call it at all
SET ROLE anon;
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour');
RESET ROLE;

-- Bob schedules p1..p4; p3 also to be unpublished an hour after its publication
SET ipai.user_id = '70000000-0000-4000-8000-000000000b0b';
SET ROLE authenticated;
SELECT count(ipai.cms_schedule_publish(('70000000-0000-4000-8000-00000000000' || g)::uuid, now() + interval '1 hour')) AS scheduled
  FROM generate_series(1, 4) g;
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000003', now() + interval '2 hours', 'unpublish') > 0 AS unpublish_scheduled;
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000005', now() + interval '1 hour', 'unpublish') AS unp5 \gset
-- a new schedule of the same page and action replaces the pending one
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '3 hours') AS replaced \gset
SELECT :replaced = (SELECT min(id) FROM ipai.cms_schedule WHERE page_id = '70000000-0000-4000-8000-000000000001') AS same_id,
	   (SELECT count(*) FROM ipai.cms_schedule WHERE page_id = '70000000-0000-4000-8000-000000000001') AS rows_for_p1,
	   (SELECT run_at - now() > interval '2 hours 59 minutes' FROM ipai.cms_schedule WHERE id = :replaced) AS moved;
-- members see their organization's schedules only
SELECT right(page_id::text, 2) AS page, action, status, attempts, created_by = ipai.current_user_id() AS by_bob
  FROM ipai.cms_schedule ORDER BY page_id, action;
RESET ROLE;
SELECT action, old_values ? 'run_at' AS has_old FROM ipai.audit_log
 WHERE object_type = 'cms_schedule' AND org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;

-- cancel: admins of the organization; the schedule is deleted (audited),
-- so cancelling again finds nothing
SET ROLE authenticated;
SET ipai.user_id = '70000000-0000-4000-8000-0000000ca201';
-- (the messages name the schedule id: SQLSTATE only)
\set VERBOSITY sqlstate
SELECT ipai.cms_cancel_schedule(:unp5);
SET ipai.user_id = '70000000-0000-4000-8000-000000000e7e';
SELECT ipai.cms_cancel_schedule(:unp5);
SET ipai.user_id = '70000000-0000-4000-8000-000000000b0b';
SELECT ipai.cms_cancel_schedule(:unp5);
SELECT ipai.cms_cancel_schedule(:unp5);
\set VERBOSITY default
SELECT ipai.cms_cancel_schedule(-1);
SELECT ipai.cms_cancel_schedule(NULL);
RESET ROLE;

-- readers: nothing is live before run_at
SET ROLE authenticated;
SELECT right(id::text, 2) AS page, status, status_live, is_live, live_since IS NOT NULL AS has_live_since,
	   next_publish_at IS NOT NULL AS next_pub, next_unpublish_at IS NOT NULL AS next_unp
  FROM ipai.cms_live_pages WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;
RESET ROLE;

-- Alice reschedules p1 (the same row, now hers).  Then time passes: the
-- publications were due a minute ago, p3's unpublish 30 seconds ago; before
-- that, p2 went back to draft (edited) and p4 was deleted.
SET ipai.user_id = '70000000-0000-4000-8000-0000000a11ce';
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000001', now() + interval '1 hour') = :replaced AS replaced_again;
UPDATE ipai.cms_schedule SET run_at = now() - interval '1 minute'
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND action = 'publish';
UPDATE ipai.cms_schedule SET run_at = now() - interval '30 seconds'
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND action = 'unpublish';
SET ipai.user_id = '70000000-0000-4000-8000-0000000ca201';
UPDATE ipai.cms_pages SET body = '<p>changed</p>' WHERE id = '70000000-0000-4000-8000-000000000002';
RESET ipai.user_id;
DELETE FROM ipai.cms_pages WHERE id = '70000000-0000-4000-8000-000000000004';

-- readers see the due schedules as executed already (p3: published, then
-- unpublished); p2 and p4 will fail, so they are not live
SET ipai.user_id = '70000000-0000-4000-8000-00000000da7e';
SET ROLE authenticated;
SELECT right(id::text, 2) AS page, status, status_live, is_live,
	   live_since = (SELECT run_at FROM ipai.cms_schedule s WHERE s.page_id = l.id AND s.action = 'publish') AS live_since_is_run_at
  FROM ipai.cms_live_pages l WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;
RESET ROLE;

-- only service_role and superusers run the schedule
SET ROLE authenticated;
SELECT ipai.run_due_publications();
RESET ROLE;
SET ipai.user_id = '70000000-0000-4000-8000-00000000da7e';
SELECT ipai.run_due_publications() AS executed;
-- the caller's identity is untouched
SELECT ipai.current_user_id();
SELECT right(page_id::text, 2) AS page, action, status, attempts, lateness > interval '0' AS late,
	   executed_via, error
  FROM ipai.cms_schedule WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY run_at, id;
SELECT right(id::text, 2) AS page, status FROM ipai.cms_pages
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;
-- the snapshots name the user who scheduled, not the caller
SELECT right(page_id::text, 2) AS page, version, status, right(created_by::text, 4) AS by
  FROM ipai.cms_page_versions
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND status IN ('published', 'draft') AND version > 1
 ORDER BY page_id, version;
-- after the run, the view agrees with the pages; live_since keeps run_at
SELECT right(id::text, 2) AS page, status, status_live,
	   live_since = (SELECT run_at FROM ipai.cms_schedule s WHERE s.page_id = l.id AND s.action = 'publish') AS live_since_is_run_at
  FROM ipai.cms_live_pages l WHERE org_id = '70000000-0000-4000-8000-00000000000a' ORDER BY id;
-- nothing is executed twice
SELECT ipai.run_due_publications() AS executed_again;

-- a scheduler who lost the admin role: the run fails, the page is untouched
RESET ipai.user_id;
SET ipai.user_id = '70000000-0000-4000-8000-000000000b0b';
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000005', now() + interval '1 hour', 'unpublish') AS unp5 \gset
RESET ipai.user_id;
UPDATE ipai.org_members SET role = 'editor'
 WHERE org_id = '70000000-0000-4000-8000-00000000000a' AND user_id = '70000000-0000-4000-8000-000000000b0b';
UPDATE ipai.cms_schedule SET run_at = now() - interval '1 second' WHERE id = :unp5;
SELECT status_live FROM ipai.cms_live_pages WHERE id = '70000000-0000-4000-8000-000000000005';
SELECT ipai.run_due_publications() AS executed;
SELECT status, error FROM ipai.cms_schedule WHERE id = :unp5;
SELECT status FROM ipai.cms_pages WHERE id = '70000000-0000-4000-8000-000000000005';

-- recovery: a running claim whose backend is gone goes back to pending
-- (this backend's pid with another start time stands for a reused pid);
-- a claim of a live backend is left alone
SELECT ipai.cms_schedule_publish('70000000-0000-4000-8000-000000000005', now() + interval '1 hour', 'unpublish') AS unp5 \gset
UPDATE ipai.cms_schedule
   SET status = 'running', attempts = 1, run_at = now() - interval '1 second',
	   claimed_by_pid = pg_backend_pid(), claimed_backend_start = ipai._backend_start(), claimed_at = now()
 WHERE id = :unp5;
SELECT ipai.recover_stuck_runs() AS recovered_alive;
UPDATE ipai.cms_schedule SET claimed_backend_start = ipai._backend_start() - interval '1 day' WHERE id = :unp5;
SELECT ipai.recover_stuck_runs() AS recovered_dead;
SELECT status, attempts, claimed_by_pid IS NULL AS unclaimed, error ~ '^backend \d+ \(started .*\) that claimed the run at .* is gone; retried$' AS reason
  FROM ipai.cms_schedule WHERE id = :unp5;
SELECT ipai.run_due_publications() AS executed;
SELECT status, attempts, error FROM ipai.cms_schedule WHERE id = :unp5;
-- a claim that died five times is given up (the same row, claimed again)
UPDATE ipai.cms_schedule
   SET status = 'running', attempts = 5, run_at = now() - interval '1 second', claimed_by_pid = 0, claimed_at = now()
 WHERE id = :unp5;
SELECT ipai.recover_stuck_runs() AS recovered;
SELECT status, attempts, error ~ 'gave up after 5 attempts$' AS gave_up FROM ipai.cms_schedule WHERE id = :unp5;
SET ROLE authenticated;
SELECT ipai.recover_stuck_runs();
RESET ROLE;

-- pg_cron is not installed in this database
SELECT * FROM ipai.schedule_jobs();
SELECT ipai.unschedule_jobs();

-- the worker serves another database here (ipai.scheduler_database)
SELECT preloaded, serves_this_database FROM ipai.scheduler_status();
SELECT ipai.scheduler_wakeup();
SET ROLE authenticated;
SELECT * FROM ipai.scheduler_status();
RESET ROLE;
RESET ipai.user_id;
