#!/usr/bin/env bash
# scheduling_bench.sh — lateness of scheduled publishing, in one run:
#
#   1. worker mode: 200 publications spread at random over 60 seconds,
#      executed by the background worker (goal: p99 lateness <= 250 ms);
#   2. worker mode: 10,000 publications due in the same second (goal: all
#      done within 5 s of that second);
#   3. pg_cron-only mode: the worker switched off (ipai.scheduler_enabled =
#      off, SIGHUP), ipai.schedule_jobs() registered, 20 publications spread
#      over one minute, executed by the ipai-run-due-publications job, which
#      pg_cron 1.4 runs once a minute (so this part takes about 2 minutes);
#   4. the cost of reading through ipai.cms_live_pages instead of
#      ipai.cms_pages (pgbench, one page by id).
#
# Lateness = executed_at - run_at, as recorded in ipai.cms_schedule.  Run on
# an optimised build, as cluster.sh's database postgres is the worker's
# (ipai.scheduler_database) and pg_cron's (cron.database_name):
#   IPAI_PGBIN=$(bash -c '. test/lib/common.sh; ipai_stage opt -O2') \
#     test/cluster.sh run -- test/bench/scheduling_bench.sh
# Shorter: BENCH_SPREAD=20 BENCH_BURST=2000 BENCH_CRON=0 (skips pg_cron).
set -euo pipefail
SPREAD=${BENCH_SPREAD:-60}
SPREAD_N=${BENCH_SPREAD_N:-200}
BURST=${BENCH_BURST:-10000}
CRON=${BENCH_CRON:-1}
CRON_N=${BENCH_CRON_N:-20}
DB=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

echo "scheduling_bench: setting up $((SPREAD_N + BURST + CRON_N + 10)) approved pages in database $DB" >&2
orgs=$(( (SPREAD_N + BURST + CRON_N + 10) / 2500 + 1 ))
per_org=$(( (SPREAD_N + BURST + CRON_N + 10) / orgs + 1 ))
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
CREATE EXTENSION pg_cron;
-- several pro organizations (at most 10,000 pages each), an admin and an editor
INSERT INTO ipai.organizations (id, name, plan_id)
SELECT ('b0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'Bench ' || g, 'pro'
  FROM generate_series(1, $orgs) g;
INSERT INTO ipai.org_members (org_id, user_id, role)
SELECT id, 'b0000000-0000-4000-8000-0000000000ad'::uuid, 'admin'::ipai.org_role FROM ipai.organizations
UNION ALL
SELECT id, 'b0000000-0000-4000-8000-0000000000ed'::uuid, 'editor'::ipai.org_role FROM ipai.organizations;
-- the workflow in three statements: drafts, requests, approvals (the
-- triggers enforce it row by row, as for the functions)
INSERT INTO ipai.cms_pages (org_id, title, body)
SELECT o.id, 'Page ' || o.name || ' ' || g, '<p>' || g || '</p>'
  FROM ipai.organizations o, generate_series(1, $per_org) g;
SET ipai.user_id = 'b0000000-0000-4000-8000-0000000000ed';
UPDATE ipai.cms_pages SET status = 'pending';
SET ipai.user_id = 'b0000000-0000-4000-8000-0000000000ad';
UPDATE ipai.cms_pages SET status = 'approved';
-- pages by number, to hand out to the parts
CREATE TABLE bench_pages AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM ipai.cms_pages;
VACUUM ANALYZE;
SQL

# prints "n p50 p95 p99 max" (milliseconds) of the schedules selected by WHERE
percentiles() {
	q "SELECT count(*) || ' ' || concat_ws(' ',
			round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness))::numeric, 1),
			round(1000 * extract(epoch FROM percentile_cont(0.95) WITHIN GROUP (ORDER BY lateness))::numeric, 1),
			round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness))::numeric, 1),
			round(1000 * extract(epoch FROM max(lateness))::numeric, 1))
	     FROM ipai.cms_schedule WHERE $1"
}
# schedule FROM_N COUNT RUN_AT_EXPRESSION TAG: publications of pages FROM_N.. at run_at
schedule() {
	q "SET ipai.user_id = 'b0000000-0000-4000-8000-0000000000ad';
	   SELECT count(ipai.cms_schedule_publish(p.id, $3)) FROM bench_pages p WHERE p.n > $1 AND p.n <= $1 + $2" >/dev/null
}
# wait_done WHERE SECONDS: until every selected schedule is done or failed
wait_done() {
	local i
	for i in $(seq 1 $(( $2 * 10 ))); do
		[ "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE ($1) AND status IN ('pending', 'running')")" = 0 ] && return 0
		sleep 0.1
	done
	echo "scheduling_bench: timed out waiting for: $1" >&2
	return 1
}
results=()

# 1. worker, spread
echo "scheduling_bench: worker mode, $SPREAD_N publications over $SPREAD s" >&2
schedule 0 "$SPREAD_N" "clock_timestamp() + interval '3 seconds' + random() * interval '$SPREAD seconds'"
wait_done "true" $((SPREAD + 30))
read -r n p50 p95 p99 max < <(percentiles "true")
via=$(q "SELECT string_agg(DISTINCT executed_via, ',') FROM ipai.cms_schedule")
results+=("worker: $n over ${SPREAD}s|$n|$p50|$p95|$p99|$max")
worker_p50=$p50

# 2. worker, burst: all due in the same second
echo "scheduling_bench: worker mode, $BURST publications due in the same second" >&2
first=$(q "SELECT coalesce(max(id), 0) + 1 FROM ipai.cms_schedule")
# scheduled far ahead first, then all moved into one second in one statement
# (its commit wakes the worker), so that the time it takes to create them
# does not count
schedule "$SPREAD_N" "$BURST" "clock_timestamp() + interval '1 day'"
t0=$(q "WITH t AS (SELECT date_trunc('second', clock_timestamp()) + interval '2 seconds' AS t0),
	u AS (UPDATE ipai.cms_schedule SET run_at = t.t0 + random() * interval '0.999 seconds' FROM t
		   WHERE id >= $first RETURNING 1)
	SELECT t0 FROM t, (SELECT count(*) FROM u) c")
wait_done "id >= $first" 120
read -r n b50 b95 b99 bmax < <(percentiles "id >= $first")
all_done=$(q "SELECT round(extract(epoch FROM max(executed_at) - '$t0'::timestamptz)::numeric, 2) FROM ipai.cms_schedule WHERE id >= $first")
rate=$(q "SELECT round($BURST / extract(epoch FROM max(executed_at) - min(executed_at))::numeric) FROM ipai.cms_schedule WHERE id >= $first")
results+=("worker: $n due in 1 s|$n|$b50|$b95|$b99|$bmax")
status=$(q "SELECT executed || ' executed, ' || failed || ' failed, max lateness ' || max_lateness FROM ipai.scheduler_status()")

# 3. pg_cron only
cron_line=""
if [ "$CRON" = 1 ]; then
	echo "scheduling_bench: pg_cron-only mode, $CRON_N publications over 60 s (about 2 minutes)" >&2
	q "ALTER SYSTEM SET ipai.scheduler_enabled = off" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	for i in $(seq 1 50); do [ "$(q "SELECT state FROM ipai.scheduler_status()")" = disabled ] && break; sleep 0.1; done
	q "SELECT count(*) FROM ipai.schedule_jobs()" >/dev/null 2>&1
	first=$(q "SELECT coalesce(max(id), 0) + 1 FROM ipai.cms_schedule")
	schedule $((SPREAD_N + BURST)) "$CRON_N" "clock_timestamp() + interval '2 seconds' + random() * interval '60 seconds'"
	wait_done "id >= $first" 150
	read -r n c50 c95 c99 cmax < <(percentiles "id >= $first")
	cvia=$(q "SELECT string_agg(DISTINCT executed_via, ',') FROM ipai.cms_schedule WHERE id >= $first")
	results+=("pg_cron only: $n over 60s|$n|$c50|$c95|$c99|$cmax")
	q "ALTER SYSTEM RESET ipai.scheduler_enabled" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	cron_line="pg_cron-only p50 / worker p50: $(q "SELECT round($c50 / greatest($worker_p50, 0.001), 0)")x (executed via: $cvia)"
fi

# 4. reading through the live view
id=$(q "SELECT id FROM bench_pages WHERE n = 1")
cat >/tmp/sched_bench_pages.$$.sql <<SQL
SELECT title, status FROM ipai.cms_pages WHERE id = '$id';
SQL
cat >/tmp/sched_bench_live.$$.sql <<SQL
SELECT title, status_live FROM ipai.cms_live_pages WHERE id = '$id';
SQL
# alternating, best of two each: the machine is shared
tps() { pgbench -n -M prepared -c 2 -j 2 -T 5 -f "$1" "$DB" 2>/dev/null | sed -n 's/^tps = \([0-9]*\).*/\1/p'; }
tps_pages=0
tps_live=0
for i in 1 2; do
	t=$(tps /tmp/sched_bench_pages.$$.sql); [ "${t:-0}" -gt "$tps_pages" ] && tps_pages=$t
	t=$(tps /tmp/sched_bench_live.$$.sql); [ "${t:-0}" -gt "$tps_live" ] && tps_live=$t
done
rm -f /tmp/sched_bench_pages.$$.sql /tmp/sched_bench_live.$$.sql

echo
echo "Scheduled publishing: lateness (executed_at - run_at), milliseconds"
printf '%-28s %7s %9s %9s %9s %9s\n' mode n p50 p95 p99 max
for r in "${results[@]}"; do
	IFS='|' read -r m n a b c d <<<"$r"
	printf '%-28s %7s %9s %9s %9s %9s\n' "$m" "$n" "$a" "$b" "$c" "$d"
done
echo
echo "worker, spread: executed via $via (goal p99 <= 250 ms)"
echo "worker, burst: all $BURST done ${all_done} s after their second began (goal <= 5 s), ${rate} publications/s; worker status: $status"
[ -n "$cron_line" ] && echo "$cron_line"
echo "reading one page: ipai.cms_pages ${tps_pages} tps, ipai.cms_live_pages ${tps_live} tps (ratio $(q "SELECT round(${tps_pages:-0}::numeric / greatest(${tps_live:-1}, 1), 2)")x)"
