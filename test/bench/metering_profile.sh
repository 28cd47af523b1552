#!/usr/bin/env bash
# metering_profile.sh — where the time of one check and one consume goes:
# perf (Debian's linux-perf) samples the whole machine while one pgbench
# client calls check_entitlement, then consume_entitlement on a pro
# organization (event + counter + meter event), then the two floors (a
# prepared primary-key read of a counter, a single-row UPDATE + commit),
# each for IPAI_PROFILE_SECS seconds (default 10) on its backend alone, and prints, per script,
# the share of the backend's samples by function and by area.  Not part of
# make bench (perf needs root and a kernel that allows it):
#
#   test/bench/run.sh metering_profile     (or)
#   IPAI_PGBIN=<opt stage bin> test/cluster.sh run -- test/bench/metering_profile.sh
set -euo pipefail

SECS=${IPAI_PROFILE_SECS:-10}
DB=ipai_profile
PGBIN=${IPAI_PGBIN:-$(pg_config --bindir 2>/dev/null)}
command -v perf >/dev/null || { echo "metering_profile: perf is not installed (apt-get install linux-perf)"; exit 0; }
work=$(mktemp -d /tmp/ipai-profile.XXXXXX)
chmod 0755 "$work"
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
-- 100 organizations (20 pro with a Stripe customer), 100,000 events of
-- history over 90 days
INSERT INTO ipai.organizations (id, name, plan_id)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'Org ' || n,
	   CASE WHEN n % 5 = 0 THEN 'pro' ELSE 'free' END
  FROM generate_series(1, 100) n;
UPDATE ipai.plan_entitlements SET max_quantity = 1000000000 WHERE plan_id = 'free' AND feature = 'ai_runs';
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
SELECT id, 'cus_prof_' || substr(id::text, 25) FROM ipai.organizations WHERE plan_id = 'pro';
INSERT INTO ipai.usage_events (org_id, feature, quantity, occurred_at)
SELECT ('00000000-0000-4000-8000-' || lpad((1 + g % 100)::text, 12, '0'))::uuid, 'ai_runs', 1,
	   now() - g * interval '77.76 seconds'
  FROM generate_series(1, 100000) g;
SELECT ipai.refresh_org_usage();
VACUUM ANALYZE;
SQL
ps=$(psql -X -q -A -t -d "$DB" -c "SELECT period_start FROM ipai.usage_period('00000000-0000-4000-8000-000000000001')")

cat >"$work/check.sql" <<'SQL'
\set n random(1, 100)
SELECT * FROM ipai.check_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
cat >"$work/consume_pro.sql" <<'SQL'
\set n random(1, 20)
SELECT * FROM ipai.consume_entitlement(('00000000-0000-4000-8000-' || lpad((5 * :n)::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
cat >"$work/pkread.sql" <<SQL
\\set n random(1, 100)
SELECT used, held FROM ipai.usage_counters WHERE org_id = ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid AND feature = 'ai_runs' AND period_start = '$ps';
SQL
cat >"$work/update.sql" <<SQL
\\set n random(1, 100)
UPDATE ipai.usage_counters SET updated_at = now() WHERE org_id = ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid AND feature = 'ai_runs' AND period_start = '$ps';
SQL

AREAS="PostgresMain pq_getbyte secure_read secure_write pq_flush exec_bind_message exec_execute_message PortalRun ExecutorStart ExecutorRun ExecutorEnd ipai_check_entitlement ipai_consume_entitlement usage_periods_share LockAcquireExtended AcceptInvalidationMessages usage_direct_counter_read usage_direct_counter_add index_getnext_slot heap_insert heap_update table_tuple_insert ExecInsertIndexTuples XLogInsert CommitTransactionCommand RecordTransactionCommit XLogFlush"
echo "metering_profile: one pgbench client (-M prepared) per script; perf -e cpu-clock at 2999 Hz on its backend for ${SECS}s"
for run in check consume_pro pkread update; do
	"$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T "$((SECS + 2))" -f "$work/$run.sql" "$DB" >"$work/$run.out" 2>&1 &
	bench=$!
	pid=""
	for _ in $(seq 1 50); do
		pid=$(psql -X -A -t -d postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND datname = '$DB' LIMIT 1")
		[ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || { echo "metering_profile: pgbench's backend did not appear"; cat "$work/$run.out"; exit 1; }
	perf record -q -e cpu-clock -F 2999 -g -p "$pid" -o "$work/$run.data" -- sleep "$SECS" 2>/dev/null
	wait "$bench"
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/$run.out" | head -1)
	echo
	echo "=== $run: $(printf '%.0f' "$tps") tps; share of the backend's samples (children: inclusive)"
	# inclusive shares (the function and what it calls) of the steps of a
	# call: the round trip (socket reads and writes, the kernel), parse/
	# bind/execute, our functions, the executor, the heap and index writes,
	# WAL and commit
	perf report -i "$work/$run.data" --stdio --children --sort symbol -g none \
		--percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^ *$' |
		awk -v want="$AREAS" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) k[w[i]] = i }
			{ sym = ""; for (i = 3; i < NF; i++) if ($i == "[.]" || $i == "[k]") { sym = $(i + 1); break }
			  if (sym in k) line[k[sym]] = sprintf("%8s inclusive %8s self  %s", $1, $2, sym) }
			END { for (i = 1; i <= n; i++) if (i in line) print "  " line[i] }'
	echo "  self time by object:"
	perf report -i "$work/$run.data" --stdio --no-children --sort dso -g none \
		--percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^ *$' | sed 's/^ */    /' | head -6
done
