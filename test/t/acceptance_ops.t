#!/usr/bin/env bash
# acceptance_ops.t: SPEC 7 on a cluster of its own (pg_cron lives in the
# database named by cron.database_name = postgres): ipai.schedule_jobs()
# registers the three jobs idempotently; ipai.health() shape; without
# pg_cron schedule_jobs fails with a clear message.
set -uo pipefail
if [ "${1:-}" != inner ]; then
	export IPAI_CONF="ipai.scheduler_enabled = off"
	exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" inner
fi
n=0; fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -d "${DBN:-postgres}" -c "$1" 2>&1; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
CREATE DATABASE other;
SQL
out=$(q "SELECT ipai.schedule_jobs()")
if [[ "$out" == *ERROR* ]] && [[ "$out" == *pg_cron* ]]; then ok "without pg_cron: an error that names pg_cron"; else nok "without pg_cron: an error that names pg_cron" "$out"; fi

q "CREATE EXTENSION pg_cron" >/dev/null
q "SELECT ipai.schedule_jobs()" >/dev/null
q "SELECT ipai.schedule_jobs()" >/dev/null
got=$(q "SELECT jobname || '|' || schedule || '|' || command FROM cron.job WHERE jobname LIKE 'ipai-%' ORDER BY jobname")
want="ipai-recover-stuck-runs|*/2 * * * *|SELECT ipai.recover_stuck_runs()
ipai-refresh-org-usage|*/5 * * * *|SELECT ipai.refresh_org_usage()
ipai-run-due-publications|* * * * *|SELECT ipai.run_due_publications()"
if [ "$(echo "$got" | cut -d'|' -f1,2)" = "$(echo "$want" | cut -d'|' -f1,2)" ]; then ok "schedule_jobs twice: exactly the three jobs and schedules"; else nok "schedule_jobs twice: exactly the three jobs and schedules" "$got"; fi
if echo "$got" | grep -q "recover_stuck_runs" && echo "$got" | grep -q "refresh_org_usage" && echo "$got" | grep -q "run_due_publications"; then ok "the jobs run the SPEC's functions"; else nok "the jobs run the SPEC's functions" "$got"; fi
is "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'ipai-%'")" 3 "no duplicates after two calls"
is "$(q "SELECT count(DISTINCT database) FROM cron.job WHERE jobname LIKE 'ipai-%'")" 1 "all in one database"
# a changed schedule is put back
q "SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'ipai-refresh-org-usage'), schedule => '0 0 * * *')" >/dev/null
q "SELECT ipai.schedule_jobs()" >/dev/null
is "$(q "SELECT schedule FROM cron.job WHERE jobname = 'ipai-refresh-org-usage'")" "*/5 * * * *" "schedule_jobs repairs a changed schedule"
for f in "ipai.recover_stuck_runs()" "ipai.refresh_org_usage()" "ipai.run_due_publications()"; do
	out=$(q "SELECT $f")
	if [[ "$out" == *ERROR* ]]; then nok "$f runs" "$out"; else ok "$f runs"; fi
done
out=$(psql -X -q -At -v VERBOSITY=verbose -d postgres -c "SET ROLE authenticated" -c "SELECT ipai.schedule_jobs()" 2>&1)
if [[ "$out" == *42501* ]]; then ok "authenticated cannot schedule jobs: 42501"; else nok "authenticated cannot schedule jobs: 42501" "$out"; fi

# health
hc=$(q "SELECT count(*) FROM ipai.health()")
if [ "$hc" -ge 3 ] 2>/dev/null; then ok "health(): several checks ($hc)"; else nok "health(): several checks" "$hc"; fi
is "$(q "SELECT count(*) FROM ipai.health() WHERE name IS NULL OR status IS NULL OR name = ''")" 0 "health(): every row has a name and a status"
is "$(q "SELECT count(DISTINCT name) = count(*) FROM ipai.health()")" t "health(): one row per check (distinct names)"
st=$(q "SELECT string_agg(DISTINCT status, ',') FROM ipai.health()")
echo "# health statuses: $st"
q "SELECT name || ' | ' || status || ' | ' || coalesce(detail, '') FROM ipai.health()" | sed 's/^/# /'
# in a database without pg_cron, health reports it instead of failing
psql -X -q -v ON_ERROR_STOP=1 -d other >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
SQL
out=$(DBN=other q "SELECT name || '|' || status FROM ipai.health()")
if [[ "$out" == *ERROR* ]] || [ -z "$out" ]; then nok "health() works in a database without pg_cron" "$out"; else ok "health() works in a database without pg_cron"; fi
bad=$(DBN=other q "SELECT count(*) FROM ipai.health() WHERE status IN ('ok') AND name ILIKE '%cron%'")
is "$bad" 0 "... and does not report the missing pg_cron jobs as ok"
echo "1..$n"
[ "$fails" -eq 0 ]
