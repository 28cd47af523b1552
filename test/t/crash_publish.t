#!/usr/bin/env bash
# kill -9 in the middle of scheduled publishing (TAP), on a cluster of its
# own with the scheduling worker (test/crash/lib.sh).
#  1. The worker is disabled; a session runs ipai.run_due_publications()
#     over 30 due schedules and sleeps inside the same transaction.  It is
#     killed with SIGKILL: after the crash restart the 30 rows are pending
#     with no attempt counted, no page changed; the worker, enabled again,
#     executes each once.
#  2. 150 publications due at once, worker and helper running; a test
#     trigger makes the 100th publication sleep, inside a chunk whose claim
#     is committed (rows visibly running).  That executor is killed with
#     SIGKILL: after the crash restart the new worker recovers the dead
#     claims and executes them.
# After each: every due schedule executed exactly once (status done, one
# published version snapshot per page, one audit row per publication), no
# schedule left running or due, lateness recorded.
set -uo pipefail
. "$IPAI_SRC/test/crash/lib.sh"
crash_cluster "$0" "$@"
bg=()
trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done' EXIT

crash_install
ORG=c7000000-0000-4000-8000-0000000000c0
ADMIN=c7000000-0000-4000-8000-0000000000ad
EDITOR=c7000000-0000-4000-8000-0000000000ed
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('$ORG', 'Crash Publish', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES ('$ORG', '$ADMIN', 'admin'), ('$ORG', '$EDITOR', 'editor');
SQL
# pages PREFIX COUNT: approved pages titled "PREFIX n"
pages() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
SET ipai.user_id = '$EDITOR';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('$ORG', '$1 ' || g, '<p>$1 ' || g || '</p>')))
  FROM generate_series(1, $2) g;
SET ipai.user_id = '$ADMIN';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages WHERE status = 'pending' AND title LIKE '$1 %';
SQL
}
# exactly_once PREFIX COUNT WHAT
exactly_once() {
	is "$(q "SELECT count(*) FILTER (WHERE s.status = 'done') || ',' || count(*) FILTER (WHERE s.status IN ('pending', 'running')) || ',' || count(*) FILTER (WHERE s.executed_at IS NOT NULL AND s.lateness >= interval '0')
	           FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE '$1 %'")" \
		"$2,0,$2" "$3: $2 schedules done, none left pending or running, lateness recorded"
	is "$(q "SELECT count(*) FROM ipai.cms_pages p WHERE p.title LIKE '$1 %' AND p.status = 'published'
	           AND (SELECT count(*) FROM ipai.cms_page_versions v WHERE v.page_id = p.id AND v.status = 'published') = 1
	           AND (SELECT count(*) FROM ipai.audit_log a WHERE a.object_id = p.id::text AND a.action = 'cms.page.status' AND a.new_values->>'status' = 'published') = 1")" \
		"$2" "$3: each page published with exactly one published snapshot and one audit row"
}

# 1. a session killed inside run_due_publications' transaction
q "ALTER SYSTEM SET ipai.scheduler_enabled = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check "SELECT state = 'disabled' FROM ipai.scheduler_status()" "the worker is disabled"
pages Manual 30
q "SET ipai.user_id = '$ADMIN'; SELECT count(ipai.cms_schedule_publish(id, clock_timestamp())) FROM ipai.cms_pages WHERE title LIKE 'Manual %'" >/dev/null
PGAPPNAME=crash_runner psql -X -q -d postgres >/dev/null 2>&1 <<'SQL' &
BEGIN;
SELECT ipai.run_due_publications();
SELECT pg_sleep(120);
COMMIT;
SQL
bg+=($!)
if wait_blocked crash_runner sleep; then ok "a session executed the 30 due schedules and sleeps before its commit"; else nok "a session executed the 30 due schedules and sleeps before its commit"; fi
if kill9 "$(backend_pid crash_runner)"; then ok "kill -9 of it; the server restarted and is ready"; else nok "kill -9 of it; the server restarted and is ready"; fi
is "$(q "SELECT count(*) FILTER (WHERE status = 'pending' AND attempts = 0) || ',' || count(*) FROM ipai.cms_schedule")" "30,30" \
	"its work rolled back: 30 pending rows, no attempt counted"
is "$(q "SELECT count(*) FROM ipai.cms_pages WHERE status = 'published'")|$(q "SELECT count(*) FROM ipai.cms_page_versions WHERE status = 'published'")" \
	"0|0" "no page published, no published snapshot"
q "ALTER SYSTEM RESET ipai.scheduler_enabled" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check "SELECT count(*) = 30 FROM ipai.cms_schedule WHERE status = 'done'" "the worker, enabled again, executes them" 30
exactly_once Manual 30 "after the killed session"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE attempts = 1 AND executed_via = 'ipai scheduler'")" 30 "each on its first counted attempt, by the worker"

# 2. the worker or its helper killed in the middle of a chunk
pages Bulk 150
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
-- A sequence's advance is WAL-logged ahead but flushed only with a commit:
-- after the crash restart the sequence may hand out 100 again.  So the
-- trigger also requires a backend started before the kill (crash_armed).
CREATE SEQUENCE public.crash_nth;
CREATE TABLE public.crash_armed (until timestamptz NOT NULL);
INSERT INTO public.crash_armed VALUES ('infinity');
CREATE FUNCTION public.crash_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'published' AND OLD.status = 'approved' AND NEW.title LIKE 'Bulk %'
	   AND (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) < (SELECT until FROM public.crash_armed)
	   AND nextval('public.crash_nth') = 100 THEN
		PERFORM pg_sleep(120);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER crash_slow BEFORE UPDATE ON ipai.cms_pages FOR EACH ROW EXECUTE FUNCTION public.crash_slow();
SQL
q "SET ipai.user_id = '$ADMIN'; SELECT count(ipai.cms_schedule_publish(id, clock_timestamp() + interval '1 second')) FROM ipai.cms_pages WHERE title LIKE 'Bulk %'" >/dev/null
check "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type IN ('ipai scheduler', 'ipai scheduler helper') AND wait_event = 'PgSleep'" \
	"an executor sleeps at the 100th publication" 30
sleeper=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type IN ('ipai scheduler', 'ipai scheduler helper') AND wait_event = 'PgSleep'")
is "$(q "SELECT count(*) > 0 FROM ipai.cms_schedule WHERE status = 'running' AND claimed_by_pid = $sleeper")" t \
	"its chunk is claimed (committed): the rows are visibly running"
q "UPDATE public.crash_armed SET until = clock_timestamp()" >/dev/null
before=$(q "SELECT count(*) FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %' AND s.status = 'done'")
if kill9 "$sleeper"; then ok "kill -9 of that executor ($before done before); the server restarted"; else nok "kill -9 of that executor; the server restarted"; fi
if wait_for "SELECT count(*) = 150 FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %' AND s.status = 'done'" 60; then
	ok "after the crash restart every publication is done"
else
	nok "after the crash restart every publication is done" "$(q "SELECT status || ' attempts=' || attempts || ' pid=' || coalesce(claimed_by_pid::text, '-') || ' retry_at=' || coalesce(retry_at::text, '-') || ' error=' || coalesce(error, '-') || ': ' || count(*) FROM ipai.cms_schedule GROUP BY status, attempts, claimed_by_pid, retry_at, error")
$(q "SELECT * FROM ipai.scheduler_status()" )
$(q "SELECT pid, backend_type, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity")
$(tail -30 "$IPAI_SERVER_LOG")"
fi
exactly_once Bulk 150 "after the killed executor"
is "$(q "SELECT count(*) FILTER (WHERE attempts = 2) > 0 AND count(*) FILTER (WHERE attempts > 2) = 0 FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %'")" t \
	"the killed chunk was recovered and executed on a second attempt"
is "$(q "SELECT recovered > 0 AND worker_pid <> $sleeper FROM ipai.scheduler_status()")" t \
	"by a new worker (shared state is reinitialized by the crash restart) that counts the recovered runs"
if grep -qE 'ipai scheduler recovered [0-9]+ scheduled runs whose backend died' "$IPAI_SERVER_LOG"; then
	ok "and logs them"
else
	nok "and logs them"
fi
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status <> 'done' OR run_at > clock_timestamp()")" 0 "nothing is left running, due or failed"
crash_done
