#!/usr/bin/env bash
# Recovery of runs whose backend died (TAP), with pg_terminate_backend on
# the shared test cluster (kill -9 and the worker: scheduling_worker.t).
#  1. A session runs ipai.run_due_publications() and sleeps inside the same
#     transaction.  Others never see its rows as running (they stay pending
#     and locked, skipped by other runs); killed, it rolls back, and the
#     next run executes each row once.
#  2. A session commits a claim (as the worker does before executing) and
#     dies.  Its rows are visibly running; ipai.recover_stuck_runs() leaves
#     them alone while the claimer lives, and retries them once it is gone
#     (pid and backend start checked against pg_stat_activity).
set -euo pipefail
db=ipai_sched_rec_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
bg=()
cleanup() {
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
# waits until a session with this application_name runs pg_sleep
wait_sleeping() {
	local i
	for i in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND query LIKE '%pg_sleep%' AND state = 'active'")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
wait_gone() {
	local i
	for i in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'")" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7d000000-0000-4000-8000-000000000000', 'Recovery', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7d000000-0000-4000-8000-000000000000', '7d000000-0000-4000-8000-0000000000ad', 'admin'),
	('7d000000-0000-4000-8000-000000000000', '7d000000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7d000000-0000-4000-8000-0000000000ed';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('7d000000-0000-4000-8000-000000000000',
		'Page ' || g, '<p>' || g || '</p>'))) FROM generate_series(1, 5) g;
SET ipai.user_id = '7d000000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages;
SELECT count(ipai.cms_schedule_publish(id, clock_timestamp())) FROM ipai.cms_pages;
SQL

# 1. claim and execution in one transaction, killed while it sleeps
PGAPPNAME=sched_victim1 psql -X -q -d "$db" >/dev/null 2>&1 <<'SQL' &
BEGIN;
SELECT ipai.run_due_publications();
SELECT pg_sleep(60);
COMMIT;
SQL
bg+=($!)
if wait_sleeping sched_victim1; then ok "a session ran the schedule and sleeps in its transaction"; else nok "a session ran the schedule and sleeps in its transaction"; fi
is "$(q "SELECT string_agg(DISTINCT status::text, ',') FROM ipai.cms_schedule")" "pending" \
	"others see its rows as pending, never running"
is "$(q "SELECT count(*) FROM ipai.cms_pages WHERE status = 'published'")" "0" "no page is published yet"
is "$(q "SELECT count(*) FROM ipai.cms_live_pages WHERE status_live = 'published'")" "5" \
	"readers see the 5 pages live by their run_at all the same"
is "$(q "SELECT ipai.run_due_publications()")" "0" "a concurrent run skips the rows it holds"
is "$(q "SELECT ipai.recover_stuck_runs()")" "0" "nothing to recover: nothing is visibly running"
victim=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'sched_victim1'")
is "$(q "SELECT pg_terminate_backend($victim)")" "t" "the session is terminated mid-run"
wait_gone sched_victim1 || true
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'pending' AND attempts = 0")" "5" \
	"its claim rolled back with it: 5 pending rows, no attempt counted"
is "$(q "SELECT ipai.run_due_publications()")" "5" "the next run executes the 5 schedules"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'done' AND attempts = 1")" "5" "each once"
is "$(q "SELECT count(*) FROM ipai.cms_page_versions WHERE status = 'published'")" "5" \
	"one published snapshot per page"

# 2. a committed claim, then the claimer dies
q "SET ipai.user_id = '7d000000-0000-4000-8000-0000000000ad'; SELECT count(ipai.cms_schedule_publish(id, clock_timestamp(), 'unpublish')) FROM ipai.cms_pages" >/dev/null
PGAPPNAME=sched_victim2 psql -X -q -d "$db" >/dev/null 2>&1 <<'SQL' &
SELECT count(*) FROM ipai._claim_due_schedules(NULL);
SELECT pg_sleep(60);
SQL
bg+=($!)
if wait_sleeping sched_victim2; then ok "a session committed a claim and sleeps"; else nok "a session committed a claim and sleeps"; fi
victim=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'sched_victim2'")
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE action = 'unpublish' AND status = 'running' AND claimed_by_pid = $victim")" "5" \
	"its 5 rows are visibly running, claimed by its pid"
is "$(q "SELECT ipai.run_due_publications()")" "0" "a run does not take rows claimed by someone else"
is "$(q "SELECT ipai.recover_stuck_runs()")" "0" "recover_stuck_runs leaves a live claimer alone"
is "$(q "SELECT pg_terminate_backend($victim)")" "t" "the claimer is terminated"
wait_gone sched_victim2 || true
is "$(q "SELECT ipai.recover_stuck_runs()")" "5" "recover_stuck_runs finds the 5 runs of the dead backend"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE action = 'unpublish' AND status = 'pending' AND attempts = 1 AND error LIKE 'backend $victim (started %) that claimed the run at % is gone; retried'")" "5" \
	"they are pending again, with the first attempt and the reason recorded"
is "$(q "SELECT ipai.recover_stuck_runs()")" "0" "recovering again finds nothing"
is "$(q "SELECT ipai.run_due_publications()")" "5" "the retry executes them"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE action = 'unpublish' AND status = 'done' AND attempts = 2 AND error IS NULL")" "5" \
	"each done on its second attempt"
is "$(q "SELECT count(*) FROM ipai.cms_page_versions WHERE status = 'draft' AND version > 1")" "5" \
	"one unpublished snapshot per page: executed exactly once"
is "$(q "SELECT count(*) FROM ipai.cms_pages WHERE status = 'draft'")" "5" "the pages are drafts"
echo "1..$n"
