-- Scheduled publishing, called as psql, pg_cron and the Edge layer do.
CREATE TEMP TABLE hostile_schedules (k text, id bigint);
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000002';
INSERT INTO hostile_ids SELECT 'spage', ipai.cms_create_page((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'),
	'Scheduled hostile page', '<p>Later.</p>');
SELECT ipai.cms_request_approval((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage')) IS NOT NULL;
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000001';
SELECT ipai.cms_approve((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage')) IS NOT NULL;
INSERT INTO hostile_schedules SELECT 'publish', ipai.cms_schedule_publish((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage'),
	pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 hour');
SELECT ipai.cms_schedule_publish((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage'),
	pg_catalog.now() OPERATOR(pg_catalog.+) interval '2 hours') OPERATOR(pg_catalog.=) (SELECT id FROM hostile_schedules WHERE k OPERATOR(pg_catalog.=) 'publish');
INSERT INTO hostile_schedules SELECT 'unpublish', ipai.cms_schedule_publish((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage'),
	pg_catalog.now() OPERATOR(pg_catalog.+) interval '3 hours', 'unpublish');
SELECT status, status_live, is_live, next_publish_at IS NOT NULL, next_unpublish_at IS NOT NULL
  FROM ipai.cms_live_pages WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage');
UPDATE ipai.cms_schedule SET run_at = pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 second'
 WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_schedules WHERE k OPERATOR(pg_catalog.=) 'publish');
SELECT status_live, live_since OPERATOR(pg_catalog.=) (SELECT s.run_at FROM ipai.cms_schedule s
		WHERE s.id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_schedules WHERE k OPERATOR(pg_catalog.=) 'publish'))
  FROM ipai.cms_live_pages WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage');
SELECT ipai.run_due_publications();
SELECT ipai.current_user_id();
SELECT action, status, attempts, error, executed_via IS NOT NULL, lateness OPERATOR(pg_catalog.>=) interval '0'
  FROM ipai.cms_schedule WHERE page_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage') ORDER BY id;
SELECT version, status, created_by FROM ipai.cms_page_versions
 WHERE page_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'spage') ORDER BY version;
SELECT ipai.cms_cancel_schedule((SELECT id FROM hostile_schedules WHERE k OPERATOR(pg_catalog.=) 'unpublish'));
SELECT ipai.recover_stuck_runs();
SELECT preloaded, serves_this_database FROM ipai.scheduler_status();
SELECT ipai.scheduler_wakeup();
SELECT action FROM ipai.audit_log WHERE object_type OPERATOR(pg_catalog.=) 'cms_schedule' ORDER BY id;
