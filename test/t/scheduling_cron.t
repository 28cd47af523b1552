#!/usr/bin/env bash
# ipai.schedule_jobs() and pg_cron (TAP), on a cluster of its own: pg_cron's
# extension can only live in the database named by cron.database_name
# (postgres here), and the worker is switched off so that what the jobs run
# is seen doing the work.  pg_cron 1.4 has minute granularity: the test
# checks the cron.job rows and runs each job's command directly.
set -uo pipefail

if [ "${1:-}" != inner ]; then
	export IPAI_CONF="ipai.scheduler_enabled = off"
	exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" inner
fi

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
like() { if [[ "$1" =~ $2 ]]; then ok "$3"; else nok "$3" "got '$1'"; fi; }
q() { psql -X -q -At -d postgres -c "$1" 2>&1; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
SQL

out=$(psql -X -q -At -v VERBOSITY=verbose -d postgres -c "SELECT * FROM ipai.schedule_jobs()" 2>&1)
like "$out" "ERROR:  55000: pg_cron is not installed in database \"postgres\"" \
	"without the pg_cron extension: SQLSTATE 55000 and a clear message"
like "$out" "HINT:  Add pg_cron to shared_preload_libraries, set cron.database_name to this database" \
	"with a hint on how to get it"

q "CREATE EXTENSION pg_cron" >/dev/null
has_usage=$(q "SELECT count(*) > 0 FROM pg_proc WHERE pronamespace = 'ipai'::regnamespace AND proname = 'refresh_org_usage'")
if [ "$has_usage" = t ]; then
	jobs="ipai-recover-stuck-runs|*/2 * * * *|SELECT ipai.recover_stuck_runs()
ipai-refresh-org-usage|*/5 * * * *|SELECT ipai.refresh_org_usage()
ipai-run-due-publications|* * * * *|SELECT ipai.run_due_publications()"
	njobs=3
else
	jobs="ipai-recover-stuck-runs|*/2 * * * *|SELECT ipai.recover_stuck_runs()
ipai-run-due-publications|* * * * *|SELECT ipai.run_due_publications()"
	njobs=2
fi

out=$(psql -X -q -At -d postgres -c "SELECT jobname, schedule, command FROM ipai.schedule_jobs() ORDER BY jobname" 2>&1)
if [ "$has_usage" = t ]; then
	is "$out" "$jobs" "schedule_jobs() registers the three jobs of the SPEC and returns them"
else
	is "$out" "NOTICE:  job \"ipai-refresh-org-usage\" not scheduled: ipai.refresh_org_usage() does not exist
HINT:  Call ipai.schedule_jobs() again once the metering functions are installed.
$jobs" "schedule_jobs() registers the jobs and says why ipai-refresh-org-usage is skipped (no metering here)"
fi
is "$(q "SELECT jobname || '|' || schedule || '|' || command FROM cron.job WHERE jobname LIKE 'ipai-%' ORDER BY jobname")" \
	"$jobs" "cron.job holds them with their schedules and commands"
is "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'ipai-%' AND database = 'postgres' AND username = 'postgres' AND active")" \
	"$njobs" "active, in this database, run as the caller"
ids1=$(q "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'ipai-%'")

# idempotent: a second call changes nothing, and repairs an edited job
q "UPDATE cron.job SET schedule = '*/10 * * * *' WHERE jobname = 'ipai-run-due-publications'" >/dev/null
is "$(q "SELECT count(*) FROM ipai.schedule_jobs()" | tail -1)" "$njobs" "a second call returns the same jobs"
is "$(q "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'ipai-%'")" \
	"$ids1" "with the same job ids, no duplicates"
is "$(q "SELECT schedule FROM cron.job WHERE jobname = 'ipai-run-due-publications'")" "* * * * *" \
	"and puts an edited schedule back"

# what the jobs run: a due schedule, executed by the run-due job's command
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7f000000-0000-4000-8000-000000000000', 'Cron', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7f000000-0000-4000-8000-000000000000', '7f000000-0000-4000-8000-0000000000ad', 'admin'),
	('7f000000-0000-4000-8000-000000000000', '7f000000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7f000000-0000-4000-8000-0000000000ed';
SELECT ipai.cms_request_approval(ipai.cms_create_page('7f000000-0000-4000-8000-000000000000', 'Cron page', '<p>c</p>'));
SET ipai.user_id = '7f000000-0000-4000-8000-0000000000ad';
SELECT ipai.cms_approve(id) FROM ipai.cms_pages;
SELECT ipai.cms_schedule_publish(id, clock_timestamp()) FROM ipai.cms_pages;
SQL
is "$(q "$(q "SELECT command FROM cron.job WHERE jobname = 'ipai-run-due-publications'")")" 1 \
	"the run-due job's command executes the due schedule"
is "$(q "SELECT status || ',' || executed_via FROM ipai.cms_schedule")" "done,psql" "which is done"
is "$(q "$(q "SELECT command FROM cron.job WHERE jobname = 'ipai-recover-stuck-runs'")")" 0 \
	"the recover job's command runs (nothing to recover)"
if [ "$has_usage" = t ]; then
	out=$(q "$(q "SELECT command FROM cron.job WHERE jobname = 'ipai-refresh-org-usage'")")
	if [[ "$out" != *ERROR* ]]; then ok "the refresh job's command runs"; else nok "the refresh job's command runs" "$out"; fi
fi

is "$(q "SELECT ipai.unschedule_jobs()")" "$njobs" "unschedule_jobs() removes them"
is "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'ipai-%'")" 0 "cron.job has none left"
is "$(q "SELECT ipai.unschedule_jobs()")" 0 "removing again removes nothing"
echo "1..$n"
