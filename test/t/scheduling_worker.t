#!/usr/bin/env bash
# The scheduled-publishing background worker (TAP), on a cluster of its own
# (test/cluster.sh, nested) with ipai_saas preloaded and serving database
# postgres: woken at commit, sleeping until the next run_at, SIGHUP
# switching it off and on, SIGTERM and a restart, kill -9 in the middle of
# a run (crash restart, recovery of its committed claim, executed once),
# downtime (overdue runs at start-up), lateness logging, a failing run,
# and a switch of ipai.scheduler_database.
#
# Timing is never asserted: waits are generous; what is checked is who ran
# what, how often, and what the worker says about itself.
set -uo pipefail

if [ "${1:-}" != inner ]; then
	# a nested throwaway cluster; it is stopped and removed whatever happens
	export IPAI_CONF="ipai.scheduler_max_lateness_log = -1"
	exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" inner
fi

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -d postgres -c "$1" 2>&1; }
# wait_for SQL [seconds]: until SQL returns t
wait_for() {
	local i limit=$(( ${2:-20} * 10 ))
	for i in $(seq 1 "$limit"); do
		[ "$(psql -X -q -At -d postgres -c "$1" 2>/dev/null)" = t ] && return 0
		sleep 0.1
	done
	return 1
}
check() { if wait_for "$1" "${3:-20}"; then ok "$2"; else nok "$2" "waited for: $1"; fi; }
pgctl() { (cd / && runuser -u postgres -- "$IPAI_PGBIN/pg_ctl" -D "$IPAI_PGROOT/data" "$@"); }
page() { q "SELECT id FROM ipai.cms_pages WHERE title = 'Page $1'"; }
worker_pid() { q "SELECT worker_pid FROM ipai.scheduler_status()"; }

# the extension, a pro organization with an admin and an editor, 20 approved pages
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7e000000-0000-4000-8000-000000000000', 'Worker', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7e000000-0000-4000-8000-000000000000', '7e000000-0000-4000-8000-0000000000ad', 'admin'),
	('7e000000-0000-4000-8000-000000000000', '7e000000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ed';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('7e000000-0000-4000-8000-000000000000',
		'Page ' || g, '<p>' || g || '</p>'))) FROM generate_series(1, 20) g;
SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages;
SQL
# schedule PAGE_NUMBER INTERVAL [ACTION]: as the admin; prints the schedule id
schedule() {
	q "SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ad'; SELECT ipai.cms_schedule_publish('$(page "$1")', clock_timestamp() + interval '$2', '${3:-publish}')" | tail -1
}

is "$(q "SELECT preloaded AND serves_this_database FROM ipai.scheduler_status()")" t \
	"the worker runs and serves database postgres"
w0=$(worker_pid)
is "$(q "SELECT backend_type FROM pg_stat_activity WHERE pid = $w0")" "ipai scheduler" \
	"it is the background worker \"ipai scheduler\""

# woken by a commit: it waits for the schema with a long sleep, the insert wakes it
s1=$(schedule 1 '1.5 seconds')
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s1" \
	"a schedule 1.5 s ahead is executed by the worker, woken by its commit"
is "$(q "SELECT executed_via || ',' || (claimed_by_pid = $w0) || ',' || (lateness >= interval '0') || ',' || attempts FROM ipai.cms_schedule WHERE id = $s1")" \
	"ipai scheduler,true,true,1" "executed via the worker, claimed by it, lateness recorded, one attempt"
is "$(q "SELECT status FROM ipai.cms_pages WHERE id = '$(page 1)'")" published "the page is published"
is "$(q "SELECT right(created_by::text, 2) FROM ipai.cms_page_versions WHERE page_id = '$(page 1)' AND status = 'published'")" \
	ad "its snapshot names the admin who scheduled it"

# it sleeps until the next run_at, not on an interval
s2=$(schedule 2 '4 seconds')
check "SELECT s.next_wakeup_at BETWEEN c.run_at AND c.run_at + interval '5 ms' FROM ipai.scheduler_status() s, ipai.cms_schedule c WHERE c.id = $s2" \
	"woken by the new schedule, it plans to wake at its run_at" 3
h1=$(q "SELECT heartbeat_at FROM ipai.scheduler_status()")
sleep 1.5
is "$(q "SELECT heartbeat_at FROM ipai.scheduler_status()")" "$h1" "and does not wake in between (no polling)"
is "$(q "SELECT state FROM ipai.scheduler_status()")" sleeping "its state is sleeping"
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s2" "then executes it"

# moved earlier: the replace wakes it
s3=$(schedule 3 '1 hour')
s3b=$(schedule 3 '1 second')
is "$s3b" "$s3" "rescheduling replaces the pending schedule"
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s3" \
	"a schedule moved from an hour ahead to a second ahead runs at once" 10

# SIGHUP: ipai.scheduler_enabled off and on
q "ALTER SYSTEM SET ipai.scheduler_enabled = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check "SELECT state = 'disabled' FROM ipai.scheduler_status()" "SIGHUP with ipai.scheduler_enabled = off disables the worker"
is "$(worker_pid)" "$w0" "the same process, idle"
s4=$(schedule 4 '0.5 seconds')
sleep 2
is "$(q "SELECT status FROM ipai.cms_schedule WHERE id = $s4")" pending "a due schedule waits while it is disabled"
is "$(q "SELECT status_live FROM ipai.cms_live_pages WHERE id = '$(page 4)'")" published \
	"readers see the page live by its run_at meanwhile"
q "ALTER SYSTEM RESET ipai.scheduler_enabled" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s4" "SIGHUP enabling it again executes what is overdue"
is "$(q "SELECT lateness >= interval '1.5 seconds' AND executed_via = 'ipai scheduler' FROM ipai.cms_schedule WHERE id = $s4")" t \
	"with its lateness recorded"

# SIGTERM: the worker exits and the postmaster starts it again
kill -TERM "$w0"
check "SELECT worker_pid IS NOT NULL AND worker_pid <> $w0 FROM ipai.scheduler_status()" \
	"after SIGTERM the worker is restarted (bgw_restart_time)"
if grep -q "terminating background worker \"ipai scheduler\" due to administrator command" "$IPAI_SERVER_LOG"; then
	ok "it exited through die() at SIGTERM"
else
	nok "it exited through die() at SIGTERM"
fi
is "$(q "SELECT worker_starts FROM ipai.scheduler_status()")" 2 "worker_starts counts the restart"
s5=$(schedule 5 '1 second')
check "SELECT status = 'done' AND executed_via = 'ipai scheduler' FROM ipai.cms_schedule WHERE id = $s5" \
	"the new worker executes schedules"

# kill -9 in the middle of a run: the worker has committed its claim and
# is executing (a test trigger makes this worker's publication of page 6
# slow; its successor has another pid)
w1=$(worker_pid)
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE FUNCTION public.slow_publish() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.status = 'published' AND NEW.id = '$(page 6)' AND pg_backend_pid() = $w1 THEN
		PERFORM pg_sleep(60);
	END IF;
	RETURN NEW;
END
\$\$;
CREATE TRIGGER slow_publish BEFORE UPDATE ON ipai.cms_pages FOR EACH ROW EXECUTE FUNCTION public.slow_publish();
SQL
s6=$(schedule 6 '0.5 seconds')
check "SELECT status = 'running' AND claimed_by_pid = $w1 FROM ipai.cms_schedule WHERE id = $s6" \
	"the worker commits its claim: the run is visibly running"
check "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $w1" "and is executing it"
kill -9 "$w1"
ok "kill -9 of the worker mid-run"
sleep 1
for i in $(seq 1 100); do "$IPAI_PGBIN/pg_isready" -q && break; sleep 0.2; done
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s6" \
	"after the crash restart the run is recovered and executed" 30
is "$(q "SELECT attempts || ',' || (claimed_by_pid <> $w1) FROM ipai.cms_schedule WHERE id = $s6")" "2,true" \
	"on a second attempt, by the new worker"
is "$(q "SELECT count(*) FROM ipai.cms_page_versions WHERE page_id = '$(page 6)' AND status = 'published'")" 1 \
	"exactly one published snapshot: executed once"
is "$(q "SELECT recovered FROM ipai.scheduler_status()")" 1 "the new worker counts one recovered run"
if grep -q "ipai scheduler recovered 1 scheduled runs whose backend died" "$IPAI_SERVER_LOG"; then
	ok "and logs it"
else
	nok "and logs it"
fi
q "DROP TRIGGER slow_publish ON ipai.cms_pages" >/dev/null

# downtime: due while the server is down, executed at start-up
s7=$(schedule 7 '1 second')
s8=$(schedule 8 '1.5 seconds')
pgctl -m fast -w stop >/dev/null
sleep 3
pgctl -l "$IPAI_SERVER_LOG" -w start >/dev/null
check "SELECT count(*) = 2 FROM ipai.cms_schedule WHERE id IN ($s7, $s8) AND status = 'done'" \
	"schedules due while the server was down run at start-up" 30
is "$(q "SELECT bool_and(lateness >= interval '1.5 seconds' AND executed_via = 'ipai scheduler' AND attempts = 1) FROM ipai.cms_schedule WHERE id IN ($s7, $s8)")" t \
	"by the worker, once each, with the downtime in their lateness"

# late runs are logged above ipai.scheduler_max_lateness_log
q "ALTER SYSTEM SET ipai.scheduler_max_lateness_log = 0" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
s9=$(schedule 9 '0.5 seconds')
check "SELECT status = 'done' FROM ipai.cms_schedule WHERE id = $s9" "with ipai.scheduler_max_lateness_log = 0 a run"
if wait_for "SELECT pg_read_file('$IPAI_SERVER_LOG') ~ 'scheduled publish of page $(page 9) ran [0-9.]+ ms after its run_at \\(schedule $s9\\)'" 5; then
	ok "is logged with its lateness"
else
	nok "is logged with its lateness"
fi

# a run that fails its run-time check: the page went back to draft
s10=$(schedule 10 '1 second')
q "SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ed'; UPDATE ipai.cms_pages SET body = '<p>edited</p>' WHERE title = 'Page 10'" >/dev/null
check "SELECT status = 'failed' FROM ipai.cms_schedule WHERE id = $s10" "a schedule whose page went back to draft fails"
is "$(q "SELECT error FROM ipai.cms_schedule WHERE id = $s10")" "the page is draft, not approved" "with the reason"
if grep -q "scheduled publish of page $(page 10) failed (schedule $s10)" "$IPAI_SERVER_LOG"; then
	ok "and the worker logs the failure"
else
	nok "and the worker logs the failure"
fi
is "$(q "SELECT executed || ',' || failed FROM ipai.scheduler_status()")" "3,1" \
	"its counters since the server started: 3 executed, 1 failed"

# a backlog: 640 publications due at the same instant; the worker starts
# a helper (ipai.scheduler_helpers = 1) and they share the work
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ed';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('7e000000-0000-4000-8000-000000000000',
		'Bulk ' || g, '<p>' || g || '</p>'))) FROM generate_series(1, 640) g;
SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages WHERE status = 'pending';
SELECT date_trunc('second', clock_timestamp()) + interval '3 seconds' AS t0 \gset
SELECT count(ipai.cms_schedule_publish(id, :'t0')) FROM ipai.cms_pages WHERE title LIKE 'Bulk %';
SQL
check "SELECT count(*) = 640 FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %' AND s.status = 'done'" \
	"640 publications due at the same instant are all executed" 60
is "$(q "SELECT count(*) FILTER (WHERE s.attempts = 1) || ',' || count(*) FILTER (WHERE (SELECT count(*) FROM ipai.cms_page_versions v WHERE v.page_id = p.id AND v.status = 'published') = 1) FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %'")" \
	"640,640" "each once, with one published snapshot"
is "$(q "SELECT count(DISTINCT claimed_by_pid) > 1 FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %'")" t \
	"by the worker and a helper it started for the backlog"
check "SELECT helpers = 0 FROM ipai.scheduler_status()" "the helper exits once nothing is due"

# a helper stopped mid-chunk (SIGTERM): its exit wakes the worker, which
# recovers the chunk it had claimed (the first helper to unpublish a page
# is made slow by a test trigger)
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
CREATE SEQUENCE public.helper_once;
CREATE FUNCTION public.slow_helper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'draft' AND OLD.status = 'published'
	   AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = pg_backend_pid() AND backend_type = 'ipai scheduler helper')
	   AND nextval('public.helper_once') = 1 THEN
		PERFORM pg_sleep(60);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER slow_helper BEFORE UPDATE ON ipai.cms_pages FOR EACH ROW EXECUTE FUNCTION public.slow_helper();
SET ipai.user_id = '7e000000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_schedule_publish(id, clock_timestamp(), 'unpublish')) FROM ipai.cms_pages WHERE title LIKE 'Bulk %';
SQL
check "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'ipai scheduler helper' AND wait_event = 'PgSleep'" \
	"a helper is executing a chunk it claimed"
helper=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'ipai scheduler helper'")
is "$(q "SELECT count(*) > 0 FROM ipai.cms_schedule WHERE status = 'running' AND claimed_by_pid = $helper")" t \
	"its claimed rows are running"
kill -TERM "$helper"
check "SELECT count(*) = 640 FROM ipai.cms_schedule s JOIN ipai.cms_pages p ON p.id = s.page_id WHERE p.title LIKE 'Bulk %' AND s.action = 'unpublish' AND s.status = 'done'" \
	"after SIGTERM to the helper, every unpublication is done" 30
is "$(q "SELECT count(*) FILTER (WHERE attempts = 2) > 0 AND count(*) FILTER (WHERE attempts > 2) = 0 FROM ipai.cms_schedule WHERE action = 'unpublish'")" \
	t "the helper's chunk was recovered and executed on a second attempt"
is "$(q "SELECT recovered > 0 FROM ipai.scheduler_status()")" t "the worker counts the recovered runs"
is "$(q "SELECT count(*) FROM ipai.cms_pages p WHERE p.title LIKE 'Bulk %' AND p.status = 'draft' AND (SELECT count(*) FROM ipai.cms_page_versions v WHERE v.page_id = p.id AND v.status = 'draft' AND v.version > 1) = 1")" \
	640 "each page unpublished once"
q "DROP TRIGGER slow_helper ON ipai.cms_pages" >/dev/null

# another database: the worker restarts connected to it
q "CREATE DATABASE other" >/dev/null
w2=$(worker_pid)
q "ALTER SYSTEM SET ipai.scheduler_database = 'other'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check "SELECT worker_pid IS NOT NULL AND worker_pid <> $w2 AND NOT serves_this_database AND database = 'other' FROM ipai.scheduler_status()" \
	"a new ipai.scheduler_database makes the worker restart there"
is "$(q "SELECT datname FROM pg_stat_activity WHERE backend_type = 'ipai scheduler'")" other "connected to database other"
check "SELECT state = 'waiting for schema' FROM ipai.scheduler_status()" "where it waits for the ipai schema"
is "$(q "SELECT ipai.scheduler_wakeup()")" f "waking it from database postgres does nothing"

echo "1..$n"
