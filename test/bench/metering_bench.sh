#!/usr/bin/env bash
# metering_bench.sh — how close entitlement checks and consumes come to
# their floors, how bulk recording scales, and what data growth costs.
#
#   IPAI_PGBIN=<optimised stage bin> test/cluster.sh run -- test/bench/metering_bench.sh
#   (bin dir from: bash -c '. test/lib/common.sh; ipai_stage opt -O2')
#
# Seeds 1,000 organizations (700 on a "team" plan with a hard monthly
# ai_runs limit, 300 on pro: active Stripe subscription, metered ai_runs;
# four time zones), then usage events over the last 90 days in two steps:
# 100,000, then 900,000 more (1,000,000: tenfold), and after each runs
# pgbench (-n -M prepared -c 2 -j 2 -T $SECS) over the Unix socket, each run
# against random organizations, all in one cluster so the ratios compare
# like with like:
#
#   select1    SELECT 1 (the physical limit of a round trip)
#   check      SELECT * FROM ipai.check_entitlement(org, 'ai_runs', 1)
#   check_scalar  SELECT ipai.check_entitlement(org, 'ai_runs', 1) (the
#              composite as one column: no FunctionScan)
#   consume    SELECT * FROM ipai.consume_entitlement(org, 'ai_runs', 1)
#              (30 % of the organizations metered)
#   consume_pro  the same on pro organizations only: event + counter +
#              meter event in the outbox
#   baseline   the seed's design in plain PL/pgSQL: usage from a
#              materialized view (refreshed by a job) joined to the limits
#              table, which is also stale by up to the refresh interval
#   org_expr   SELECT of the uuid expression the scripts use to pick an
#              organization, to show what part of the gap is pgbench's
#   pkread     one prepared primary-key read of a counter: the floor of any
#              exact check
#   update     one single-row UPDATE of a counter and its commit: the floor
#              of any exact consume
#
# The scripts run in interleaved rounds (IPAI_BENCH_ROUNDS, default 3);
# prints the median TPS of each, the ratios, and with 1,000,000 events
# against 100,000 how each rate changed.  Then bulk recording on a pro
# organization: record_usage called N times in one transaction (N =
# 10,000 and 100,000) against N single-event transactions (one client),
# time per event, and the SPI path (ipai.usage_fast_path = off) in one
# transaction for 5,000 and 10,000 events, to show what the counter deltas
# remove.  Never asserts a speed.
set -euo pipefail

SECS=${IPAI_BENCH_SECS:-10}
DB=ipai_bench
PGBIN=${IPAI_PGBIN:-$(pg_config --bindir 2>/dev/null)}
work=$(mktemp -d /tmp/ipai-bench.XXXXXX)
chmod 0755 "$work"
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"

echo "seeding 1,000 organizations ..."
start=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();

-- organization n (1..1000) has a predictable id, so pgbench can pick one
CREATE SCHEMA bench;
CREATE FUNCTION bench.org(n bigint) RETURNS uuid LANGUAGE sql IMMUTABLE
	AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;

INSERT INTO ipai.plans (id, name, currency, base_amount) VALUES ('team', 'Team', 'usd', 29);
INSERT INTO ipai.plan_entitlements
	(plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('team', 'ai_runs', 100000000, 'hard', 'usage_events', 'billing_period'),
	   ('team', 'cms_items', 1000, 'hard', 'cms_pages', 'never'),
	   ('team', 'seats', 10, 'hard', 'seats', 'never');

-- (triggers off for this bulk insert only: the seed is data laid out by
-- hand, plans included, not a workload of the organization triggers)
SET session_replication_role = replica;
INSERT INTO ipai.organizations (id, name, plan_id, timezone)
SELECT bench.org(n), 'Org ' || n, CASE WHEN n % 10 < 3 THEN 'pro' ELSE 'team' END,
	   (ARRAY['UTC', 'Asia/Manila', 'America/New_York', 'Europe/Berlin'])[1 + n % 4]
  FROM generate_series(1, 1000) n;
RESET session_replication_role;
INSERT INTO ipai.org_members (org_id, user_id, role)
SELECT bench.org(n), gen_random_uuid(), 'owner' FROM generate_series(1, 1000) n;
-- pro organizations: a Stripe customer and a subscription anchored mid-month
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
SELECT bench.org(n), 'cus_bench' || n FROM generate_series(1, 1000) n WHERE n % 10 < 3;
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
SELECT bench.org(n), 'sub_bench' || n, 'active', 'pro',
	   now() - interval '12 days', now() - interval '12 days' + interval '1 month'
  FROM generate_series(1, 1000) n WHERE n % 10 < 3;

-- usage events over 90 days (history: already counted and reported), in
-- the usage period the extension assigns: the subscription's period when
-- it contains the moment, else the calendar month in the time zone;
-- counters are then built by refresh_org_usage() from the events.  Event
-- g (1 .. 1,000,000) happened g * 7.776 s ago; bench.add_events(tenth)
-- adds those of every tenth block of 1,000 (100,000: every organization,
-- spread over the 90 days) or the others (900,000).
CREATE FUNCTION bench.add_events(tenth boolean) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	INSERT INTO ipai.usage_events (org_id, feature, quantity, idempotency_key, occurred_at,
								   period_start, metered, counted_inline)
	SELECT o.id, 'ai_runs', 1 + g % 3, CASE WHEN g % 2 = 0 THEN 'seed-' || g END, e.at,
		   CASE WHEN s.current_period_start <= e.at THEN s.current_period_start
				ELSE date_trunc('month', e.at AT TIME ZONE o.timezone) AT TIME ZONE o.timezone END,
		   o.plan_id = 'pro', true
	  FROM generate_series(1, 1000000) g
	  JOIN ipai.organizations o ON o.id = bench.org(1 + g % 1000)
	  LEFT JOIN ipai.subscriptions s ON s.org_id = o.id
	 CROSS JOIN LATERAL (SELECT now() - g * interval '7.776 seconds' AS at) e
	 WHERE ((g / 1000) % 10 = 0) = tenth;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- The baseline: the seed's design (its migration
-- 20260212000000_billing_usage_tracking.sql) in plain PL/pgSQL: usage
-- counted per organization in a materialized view over the current month
-- (COUNT(*) FILTER per event type, unique index on org_id, REFRESH ...
-- CONCURRENTLY by pg_cron every 5 minutes, so up to 5 minutes stale), and
-- the check joins it to the limits table.
CREATE MATERIALIZED VIEW bench.org_usage_current AS
SELECT e.org_id,
	   count(*) FILTER (WHERE e.feature = 'ai_runs') AS ai_runs_count,
	   count(*) FILTER (WHERE e.feature = 'cms_items') AS cms_items_count,
	   max(e.occurred_at) AS last_event_at
  FROM ipai.usage_events e
 WHERE e.occurred_at >= date_trunc('month', now())
 GROUP BY e.org_id
  WITH NO DATA;
CREATE UNIQUE INDEX ON bench.org_usage_current (org_id);

CREATE FUNCTION bench.check_entitlement(p_org uuid, p_feature text, p_quantity bigint DEFAULT 1,
										OUT allowed boolean, OUT feature text, OUT plan_id text,
										OUT current bigint, OUT max bigint, OUT remaining bigint,
										OUT reason text)
	LANGUAGE plpgsql STABLE
	AS $$
DECLARE
	v_plan text;
	v_max bigint;
	v_found boolean;
	v_used bigint;
BEGIN
	SELECT o.plan_id INTO v_plan FROM ipai.organizations o WHERE o.id = p_org;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'organization "%" does not exist', p_org USING ERRCODE = '22023';
	END IF;
	SELECT e.max_quantity, true,
		   COALESCE(CASE p_feature WHEN 'ai_runs' THEN u.ai_runs_count
								   WHEN 'cms_items' THEN u.cms_items_count END, 0)
	  INTO v_max, v_found, v_used
	  FROM ipai.plan_entitlements e
	  LEFT JOIN bench.org_usage_current u ON u.org_id = p_org
	 WHERE e.plan_id = v_plan AND e.feature = p_feature;
	IF v_found IS NULL THEN
		RAISE EXCEPTION 'unknown feature "%"', p_feature USING ERRCODE = '22023';
	END IF;
	feature := p_feature;
	plan_id := v_plan;
	current := v_used;
	max := v_max;
	remaining := CASE WHEN v_max IS NOT NULL THEN greatest(v_max - v_used, 0) END;
	allowed := v_max IS NULL OR v_used + p_quantity <= v_max;
	reason := CASE WHEN v_max IS NULL THEN 'unlimited'
				   WHEN allowed THEN 'ok' ELSE 'limit_exceeded' END;
END
$$;
SQL
echo "seeded in $(( $(date +%s) - start ))s"

# adds events (tenth: the first 100,000, else the other 900,000), builds the
# counters and the baseline's view, and vacuums
add_events() {
	local t0=$(date +%s)
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SELECT bench.add_events($1);
SELECT ipai.refresh_org_usage();
REFRESH MATERIALIZED VIEW bench.org_usage_current;
VACUUM ANALYZE;
SQL
	psql -X -q -A -t -d "$DB" -c "SELECT format('%s organizations, %s usage events, %s counters (added in %ss)', (SELECT count(*) FROM ipai.organizations), (SELECT count(*) FROM ipai.usage_events), (SELECT count(*) FROM ipai.usage_counters), $(( $(date +%s) - t0 )))"
}

cat >"$work/select1.sql" <<'SQL'
SELECT 1;
SQL
cat >"$work/org_expr.sql" <<'SQL'
\set n random(1, 1000)
SELECT ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid;
SQL
# the floors of any implementation: read one counter row by primary key,
# update one counter row, and commit.  The row must exist: the
# organizations in UTC without a subscription (n = 20k + 4, 8 or 16: n % 4
# = 0, n % 10 not 0..2), whose counters share one period_start (the
# other organizations' periods start elsewhere, and a statement with their
# ids would read or update nothing)
ps=$(psql -X -q -A -t -d "$DB" -c "SELECT period_start FROM ipai.usage_period(bench.org(4))")
FLOOR_ORG="('00000000-0000-4000-8000-' || lpad((20 * :k + 4 * (:r + :r / 3))::text, 12, '0'))::uuid"
cat >"$work/pkread.sql" <<SQL
\\set k random(0, 49)
\\set r random(1, 3)
SELECT used, held FROM ipai.usage_counters WHERE org_id = $FLOOR_ORG AND feature = 'ai_runs' AND period_start = '$ps';
SQL
cat >"$work/update.sql" <<SQL
\\set k random(0, 49)
\\set r random(1, 3)
UPDATE ipai.usage_counters SET updated_at = now() WHERE org_id = $FLOOR_ORG AND feature = 'ai_runs' AND period_start = '$ps';
SQL
# the floor scripts must touch existing counters (checked once they exist)
check_floor() {
	floor_rows=$(psql -X -q -A -t -d "$DB" -c "SELECT count(*) FROM generate_series(0, 49) k, (VALUES (1), (2), (3)) r(r), ipai.usage_counters c WHERE c.org_id = bench.org(20 * k + 4 * (r + r / 3)) AND c.feature = 'ai_runs' AND c.period_start = '$ps'")
	if [ "$floor_rows" != 150 ]; then
		echo "metering_bench: the floor scripts would touch $floor_rows counters, not 150" >&2
		exit 1
	fi
}
cat >"$work/check.sql" <<'SQL'
\set n random(1, 1000)
SELECT * FROM ipai.check_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
# the same check called as a scalar (one composite column, no FunctionScan)
cat >"$work/check_scalar.sql" <<'SQL'
\set n random(1, 1000)
SELECT ipai.check_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
cat >"$work/consume_pro.sql" <<'SQL'
\set k random(0, 99)
\set j random(1, 2)
SELECT * FROM ipai.consume_entitlement(('00000000-0000-4000-8000-' || lpad((10 * :k + :j)::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
cat >"$work/consume.sql" <<'SQL'
\set n random(1, 1000)
SELECT * FROM ipai.consume_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL
cat >"$work/baseline.sql" <<'SQL'
\set n random(1, 1000)
SELECT * FROM bench.check_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL

# Interleaved rounds (ROUNDS x SECS/ROUNDS seconds per script), median tps
# per script: every script sees the same share of whatever else the shared
# machine is doing.
ROUNDS=${IPAI_BENCH_ROUNDS:-3}
per=$(( (SECS + ROUNDS - 1) / ROUNDS ))
runs="select1 org_expr pkread check check_scalar baseline update consume consume_pro"
# CPU seconds (user + system) of the postmaster's exited children: a
# pgbench run's backends are added when they exit at its end
children_cpu() {
	local pm
	pm=$(head -1 "${IPAI_PGROOT:-}/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($16 + $17) / hz }' "/proc/$pm/stat" 2>/dev/null || echo 0
}
declare -A tps cpu small small_cpu
measure() {
	local round run out c0 c1 client n us
	declare -A samples=() cpus=()
	for round in $(seq 1 "$ROUNDS"); do
		for run in $runs; do
			c0=$(children_cpu)
			out=$( { TIMEFORMAT='%U %S'; time "$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -T "$per" -f "$work/$run.sql" "$DB" 2>&1; } 2>&1) || {
				echo "$out"
				exit 1
			}
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ] && break
				sleep 0.1
			done
			c1=$(children_cpu)
			client=$(echo "$out" | tail -1 | awk '{ print $1 + $2 }')
			n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
			us=$(awk -v a="$c0" -v b="$c1" -v c="$client" -v n="$n" 'BEGIN { printf "%.1f", (b - a + c) * 1e6 / n }')
			samples[$run]+=" $(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)"
			cpus[$run]+=" $us"
		done
	done
	echo "pgbench -M prepared -c 2 -j 2, $ROUNDS interleaved rounds of ${per}s: median tps, lowest CPU us per"
	echo "transaction (backends and pgbench: what the other load on this shared machine changes least)"
	for run in $runs; do
		tps[$run]=$(echo ${samples[$run]} | tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
		cpu[$run]=$(echo ${cpus[$run]} | tr ' ' '\n' | sort -g | head -1)
		printf '%-12s %10.0f tps %8.1f us   (rounds:%s; cpu:%s)\n' "$run" "${tps[$run]}" "${cpu[$run]}" "${samples[$run]}" "${cpus[$run]}"
	done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "=== 100,000 usage events"
add_events true
check_floor
measure
for run in $runs; do small[$run]=${tps[$run]}; small_cpu[$run]=${cpu[$run]}; done

echo
echo "=== 1,000,000 usage events (tenfold)"
add_events false
measure

echo
echo "check       / SELECT 1  = $(ratio "${tps[check]}" "${tps[select1]}")x   (goal >= 0.8)"
echo "consume     / SELECT 1  = $(ratio "${tps[consume]}" "${tps[select1]}")x   (goal >= 0.5)"
echo "check       / baseline  = $(ratio "${tps[check]}" "${tps[baseline]}")x   (goal >= 5)"
echo "scalar      / SELECT 1  = $(ratio "${tps[check_scalar]}" "${tps[select1]}")x   (SELECT ipai.check_entitlement(...) instead of SELECT * FROM)"
echo "check       / org_expr  = $(ratio "${tps[check]}" "${tps[org_expr]}")x   (the same organization-picking expression, no function)"
echo "check       / pkread    = $(ratio "${tps[check]}" "${tps[pkread]}")x   (floor of any exact check: one prepared primary-key read)"
echo "consume     / update    = $(ratio "${tps[consume]}" "${tps[update]}")x   (floor of any exact consume: one single-row UPDATE and commit)"
echo "consume_pro / update    = $(ratio "${tps[consume_pro]}" "${tps[update]}")x   (goal >= 0.5: event + counter + meter event in the outbox)"
echo "the same ratios by CPU per transaction (lowest of the rounds):"
echo "  check / SELECT 1 $(ratio "${cpu[select1]}" "${cpu[check]}")x, check / pkread $(ratio "${cpu[pkread]}" "${cpu[check]}")x, consume / update $(ratio "${cpu[update]}" "${cpu[consume]}")x, consume_pro / update $(ratio "${cpu[update]}" "${cpu[consume_pro]}")x"
echo
echo "tenfold data (1,000,000 against 100,000 events): tps ratio, CPU per transaction ratio"
for run in $runs; do
	printf '  %-12s %sx tps   %sx CPU\n' "$run" "$(ratio "${tps[$run]}" "${small[$run]}")" "$(ratio "${cpu[$run]}" "${small_cpu[$run]}")"
done
psql -X -q -A -t -d "$DB" -c "SELECT format('after the runs: %s usage events, %s meter events in the outbox; counters drifted: %s', (SELECT count(*) FROM ipai.usage_events), (SELECT count(*) FROM ipai.outbox), ipai.refresh_org_usage())"

# Bulk recording on one pro organization (a meter event per event): N
# events in one transaction against N single-event transactions, one
# client each, wall-clock time per event
BULK_ORG="('00000000-0000-4000-8000-000000000011')::uuid"
cat >"$work/record_one.sql" <<SQL
SELECT ipai.record_usage($BULK_ORG, 'ai_runs', 1);
SQL
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
bulk() { # n [settings]
	local t0=$(date +%s%N)
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "${2:-SET ipai.usage_fast_path = on}" \
		-c "SELECT count(*) FROM (SELECT ipai.record_usage($BULK_ORG, 'ai_runs', 1) FROM generate_series(1, $1)) x" >/dev/null
	ms_since "$t0"
}
singles() { # n
	local t0=$(date +%s%N)
	"$PGBIN/pgbench" -n -M prepared -c 1 -t "$1" -f "$work/record_one.sql" "$DB" >/dev/null 2>&1
	ms_since "$t0"
}
echo
echo "bulk recording, one pro organization (usage event, counter, meter event), us per event:"
declare -A one many
for n in 10000 100000; do
	many[$n]=$(bulk $n)
	one[$n]=$(singles $n)
	printf '  %6d events: one transaction %7.1f us/event, single-event transactions %7.1f us/event: %sx (goal <= 2)\n' \
		$n "$(awk -v t="${many[$n]}" -v n=$n 'BEGIN { print t * 1000 / n }')" \
		"$(awk -v t="${one[$n]}" -v n=$n 'BEGIN { print t * 1000 / n }')" "$(ratio "${many[$n]}" "${one[$n]}")"
done
echo "  one transaction, 100,000 against 10,000 events: $(ratio "${many[100000]}" "${many[10000]}")x the time (10x: linear)"
spi5=$(bulk 5000 "SET ipai.usage_fast_path = off")
spi10=$(bulk 10000 "SET ipai.usage_fast_path = off")
echo "  SPI path in one transaction: 5,000 events $(awk -v t=$spi5 'BEGIN { print t * 1000 / 5000 }') us/event, 10,000 events $(awk -v t=$spi10 'BEGIN { print t * 1000 / 10000 }') us/event ($(ratio "$spi10" "$spi5")x the time for 2x the events)"
psql -X -q -A -t -d "$DB" -c "SELECT format('after bulk recording: counters drifted: %s', ipai.refresh_org_usage())"
