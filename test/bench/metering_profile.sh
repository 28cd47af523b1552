#!/usr/bin/env bash
# metering_profile.sh — where the time of one check and one consume goes:
# perf (Debian's linux-perf) samples the whole machine while one pgbench
# client calls check_entitlement, then consume_entitlement on a pro
# organization (event + counter + meter event), then the two floors (a
# prepared primary-key read of a counter, a single-row UPDATE + commit),
# each for IPAI_PROFILE_SECS seconds (default 10), and prints, per script,
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

echo "metering_profile: one pgbench client (-M prepared) per script, ${SECS}s each, perf -e cpu-clock at 2999 Hz"
for run in check consume_pro pkread update; do
	perf record -q -e cpu-clock -F 2999 -g -a -o "$work/$run.data" -- \
		"$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T "$SECS" -f "$work/$run.sql" "$DB" >"$work/$run.out" 2>&1
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/$run.out" | head -1)
	echo
	echo "=== $run: $(printf '%.0f' "$tps") tps"
	# the backend's samples (process name postgres, not the postmaster's
	# other children: they are idle), by function, self time
	perf report -q -i "$work/$run.data" --comm postgres --no-children --sort symbol \
		--percent-limit 1.5 -g none 2>/dev/null | sed 's/^ *//' | head -25
	# by area: the shares of the same samples grouped by shared object
	echo "--- by object"
	perf report -q -i "$work/$run.data" --comm postgres --no-children --sort dso \
		--percent-limit 1 -g none 2>/dev/null | sed 's/^ *//' | head -8
done
