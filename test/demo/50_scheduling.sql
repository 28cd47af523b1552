-- Part 5: scheduled publishing, to the second.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT id AS acme FROM ipai.organizations WHERE name = 'Acme' \gset
\echo
\echo '=== Scheduled publishing: live at run_at, executed by a background worker ==='
\echo
\echo '--- Carol writes a pricing note and asks for approval; Alice approves it.'
SET ROLE authenticated;
\set ECHO queries
SET ipai.user_id = 'ca201000-0000-4000-8000-000000000001';
SELECT ipai.cms_create_page(:'acme', 'New prices', '<p>New prices apply from 1 June.</p>') AS page \gset
SELECT ipai.cms_request_approval(:'page') IS NOT NULL AS requested;
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT ipai.cms_approve(:'page') IS NOT NULL AS approved;
\set ECHO none
\echo
\echo '--- Alice schedules the publication for a whole second 3 to 4 seconds from now.  Readers do not see it yet.'
\set ECHO queries
SELECT ipai.cms_schedule_publish(:'page', date_trunc('second', clock_timestamp()) + interval '4 seconds') AS schedule \gset
SELECT title, status, status_live, is_live, next_publish_at FROM ipai.cms_live_pages WHERE id = :'page';
\set ECHO none
\echo
\echo '--- The worker was woken by the commit and sleeps until exactly that instant (no polling).'
RESET ROLE;
\set ECHO queries
SELECT s.state, s.next_wakeup_at, c.run_at FROM ipai.scheduler_status() s, ipai.cms_schedule c WHERE c.id = :schedule;
SELECT pg_sleep_until(run_at + interval '0.5 seconds') FROM ipai.cms_schedule WHERE id = :schedule;
\set ECHO none
\echo
\echo '--- Half a second after run_at: published by the worker, with its measured lateness,'
\echo '--- a version snapshot by Alice (who scheduled it), live since run_at exactly.'
\set ECHO queries
SELECT status, executed_via, run_at, executed_at, lateness FROM ipai.cms_schedule WHERE id = :schedule;
SELECT status, status_live, live_since FROM ipai.cms_live_pages WHERE id = :'page';
SELECT version, status, created_by FROM ipai.cms_page_versions WHERE page_id = :'page' ORDER BY version;
\set ECHO none
\echo
\echo '--- Exact even before any job runs: the worker is paused (SIGHUP), an unpublication falls due,'
\echo '--- and readers of ipai.cms_live_pages see the page as a draft from its run_at on.'
\set ECHO queries
ALTER SYSTEM SET ipai.scheduler_enabled = off;
SELECT pg_reload_conf();
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT ipai.cms_schedule_publish(:'page', clock_timestamp() + interval '1 second', 'unpublish') AS unschedule \gset
SELECT pg_sleep(2);
SELECT p.status AS stored_status, l.status_live, l.is_live
  FROM ipai.cms_pages p JOIN ipai.cms_live_pages l USING (org_id, id) WHERE p.id = :'page';
\set ECHO none
\echo
\echo '--- The worker back on: the overdue run executes at once, the delay recorded as lateness.'
\set ECHO queries
ALTER SYSTEM RESET ipai.scheduler_enabled;
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SELECT action, status, executed_via, lateness FROM ipai.cms_schedule WHERE page_id = :'page' ORDER BY id;
SELECT state, executed, last_lateness, max_lateness FROM ipai.scheduler_status();
\set ECHO none
\echo
\echo '--- A time in the past (beyond 5 seconds of grace) is refused with SQLSTATE 22023.'
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.cms_schedule_publish(:'page', now() - interval '1 hour');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
RESET ipai.user_id;
