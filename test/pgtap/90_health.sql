-- ipai.health(): every check, and each turning from ok to warning or
-- critical when what it watches goes wrong.
BEGIN;
SELECT plan(25);
SET LOCAL client_min_messages = warning;

CREATE TEMP VIEW h AS SELECT * FROM ipai.health();

SELECT results_eq($$SELECT name FROM ipai.health()$$,
	ARRAY['schema', 'pg_cron jobs', 'scheduler worker', 'overdue schedules', 'stuck schedules',
		  'failed schedules', 'deferred webhooks', 'failed webhooks', 'outbox backlog', 'outbox dead',
		  'usage counters', 'realtime'],
	'one row per check, in a fixed order');
SELECT ok((SELECT bool_and(status IN ('ok', 'warning', 'critical')) FROM ipai.health()), 'statuses are ok, warning or critical');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'schema'), 'ok', 'the schema is current');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'usage counters'), 'ok', 'counters equal events');

INSERT INTO ipai.organizations (id, name) VALUES ('4e000000-0000-4000-8000-000000000000', 'Health Org');
INSERT INTO ipai.cms_pages (org_id, id, slug, title) VALUES
	('4e000000-0000-4000-8000-000000000000', '4e000000-0000-4000-8000-0000000000a1', 'health', 'Health');

-- a schedule nobody ran
INSERT INTO ipai.cms_schedule (org_id, page_id, run_at)
VALUES ('4e000000-0000-4000-8000-000000000000', '4e000000-0000-4000-8000-0000000000a1', now() - interval '3 minutes');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'overdue schedules'), 'critical', 'an overdue schedule is critical');
SELECT matches((SELECT detail FROM ipai.health() WHERE name = 'overdue schedules'), '^1 pending schedules', 'and counted');
DELETE FROM ipai.cms_schedule WHERE org_id = '4e000000-0000-4000-8000-000000000000';

-- a run held by a backend that is gone, and a failed one
INSERT INTO ipai.cms_schedule (org_id, page_id, run_at, status, claimed_by_pid, claimed_backend_start, attempts)
VALUES ('4e000000-0000-4000-8000-000000000000', '4e000000-0000-4000-8000-0000000000a1', now() + interval '1 hour',
		'running', 999999, now() - interval '1 day', 1);
SELECT is((SELECT status FROM ipai.health() WHERE name = 'stuck schedules'), 'warning', 'a run held by a dead backend is a warning');
INSERT INTO ipai.cms_schedule (org_id, page_id, action, run_at, status, executed_at, error)
VALUES ('4e000000-0000-4000-8000-000000000000', '4e000000-0000-4000-8000-0000000000a1', 'unpublish',
		now() - interval '1 hour', 'failed', now() - interval '1 hour', 'the page is draft');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'failed schedules'), 'warning', 'a failed run is a warning');

-- the inbox
INSERT INTO ipai.webhook_events (event_id, event_type, payload, status, received_at)
VALUES ('evt_health_deferred', 'customer.subscription.updated', '{}', 'deferred', now() - interval '2 hours'),
	   ('evt_health_failed', 'invoice.paid', '{}', 'failed', now());
SELECT is((SELECT status FROM ipai.health() WHERE name = 'deferred webhooks'), 'warning', 'a deferred event older than an hour is a warning');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'failed webhooks'), 'warning', 'a failed event is a warning');

-- the outbox
INSERT INTO ipai.outbox (org_id, topic, payload, created_at, next_attempt_at)
VALUES ('4e000000-0000-4000-8000-000000000000', 'health.test', '{}', now() - interval '20 minutes', now() - interval '20 minutes');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox backlog'), 'warning', 'a row due for more than 15 minutes is a warning');
UPDATE ipai.outbox SET dead_at = now(), last_error = 'HTTP 400' WHERE topic = 'health.test';
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox dead'), 'warning', 'a dead row is a warning (critical for meter events)');

-- counters that drifted from their events, and the repair
SELECT ipai.record_usage('4e000000-0000-4000-8000-000000000000', 'ai_runs', 7);
UPDATE ipai.usage_counters SET used = used + 5 WHERE org_id = '4e000000-0000-4000-8000-000000000000' AND feature = 'ai_runs';
SELECT is((SELECT status FROM ipai.health() WHERE name = 'usage counters'), 'warning', 'a drifted counter is a warning');
SELECT ok(ipai.refresh_org_usage() >= 1, 'refresh_org_usage repairs it');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'usage counters'), 'ok', 'and health sees it repaired');

-- Supabase Realtime: information where its publication does not exist
SELECT is((SELECT status || ': ' || detail FROM ipai.health() WHERE name = 'realtime'),
	'ok: no supabase_realtime publication in this database (Supabase Realtime not in use): nothing to publish',
	'no supabase_realtime publication: ok, said as information');
CREATE PUBLICATION supabase_realtime;
SELECT is((SELECT status || ': ' || detail FROM ipai.health() WHERE name = 'realtime'),
	'warning: supabase_realtime lacks ipai.cms_approvals, ipai.cms_schedule, ipai.cms_pages, ipai.subscriptions: run SELECT ipai.install_schema()',
	'a publication created after the install: a warning naming what it lacks');
SELECT is(ipai.install_schema(), 'ipai schema is up to date at version ' || ipai._schema_target_version(),
	'install_schema() again');
SELECT set_eq($$SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'$$,
	ARRAY['ipai.cms_approvals', 'ipai.cms_schedule', 'ipai.cms_pages', 'ipai.subscriptions'],
	'adds the dashboard tables to it');
SELECT is((SELECT status || ': ' || detail FROM ipai.health() WHERE name = 'realtime'),
	'ok: published to supabase_realtime: ipai.cms_approvals, ipai.cms_schedule, ipai.cms_pages, ipai.subscriptions',
	'health says what is published');
SELECT lives_ok($$SELECT ipai.install_schema()$$, 'a third call changes nothing (idempotent)');
SELECT is((SELECT count(*)::int FROM pg_publication_tables WHERE pubname = 'supabase_realtime'), 4,
	'each table once');
ALTER PUBLICATION supabase_realtime DROP TABLE ipai.cms_pages;
SELECT is((SELECT status || ': ' || detail FROM ipai.health() WHERE name = 'realtime'),
	'warning: supabase_realtime lacks ipai.cms_pages: run SELECT ipai.install_schema()',
	'a table removed by hand: a warning naming it');
DROP PUBLICATION supabase_realtime;
CREATE PUBLICATION supabase_realtime FOR ALL TABLES;
SELECT is((SELECT status FROM ipai.health() WHERE name = 'realtime'), 'ok',
	'a publication FOR ALL TABLES carries them all');

SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT * FROM ipai.health()$$, '42501', NULL, 'tenants cannot read health');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
