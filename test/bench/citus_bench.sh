#!/usr/bin/env bash
# citus_bench.sh — entitlement checks through a Citus coordinator, against
# what a round trip and a plain query cost on the same cluster.
#
#   test/bench/run.sh citus     (a coordinator and two workers,
#                                test/citus/cluster.sh; skipped when
#                                Citus's source is not at hand)
#
# Seeds ORGS organizations (a hard monthly ai_runs limit) with EVENTS usage
# events each over the last 90 days, distributed (install_schema(
# distributed => true)), then runs pgbench (-n -M prepared -c 2 -j 2 -T
# $SECS) against the coordinator, random organizations:
#
#   select1    SELECT 1 through the coordinator (a round trip)
#   router     one primary-key read of a counter, routed to its worker:
#              the floor of any exact check on the cluster
#   check      SELECT * FROM ipai.check_entitlement(org, 'ai_runs', 1)
#              (delegated to the organization's worker)
#   consume    SELECT * FROM ipai.consume_entitlement(org, 'ai_runs', 1)
#   plain      the same check as a plain query: the month's usage summed
#              from the events and compared with the limit (routed too)
#
# Then the same with ten times the organizations (and so the events), to
# show how each cost grows.  Prints TPS and ratios; asserts nothing.
set -euo pipefail
. "$IPAI_SRC/test/citus/lib.sh"

SECS=${IPAI_BENCH_SECS:-8}
EVENTS=${IPAI_BENCH_EVENTS:-300}
db=ipai_bench_citus
work=$(mktemp -d /tmp/ipai-bench.XXXXXX)
chmod 0755 "$work"
trap 'citus_drop_db "$db"; rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

citus_ipai_db "$db" >/dev/null
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE SCHEMA bench;
CREATE FUNCTION bench.org(n bigint) RETURNS uuid LANGUAGE sql IMMUTABLE
	AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;
INSERT INTO ipai.plans (id, name, currency, base_amount) VALUES ('team', 'Team', 'usd', 29);
INSERT INTO ipai.plan_entitlements
	(plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('team', 'ai_runs', 100000000, 'hard', 'usage_events', 'billing_period'),
	   ('team', 'seats', 10, 'hard', 'seats', 'never');
SQL

seed() { # from to
	q >/dev/null <<SQL
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id)
SELECT bench.org(n), 'Org ' || n, 'team' FROM generate_series($1, $2) n;
INSERT INTO ipai.usage_events (org_id, feature, quantity, occurred_at, period_start)
SELECT bench.org(n), 'ai_runs', 1 + (e % 3),
	   now() - (e % 90) * interval '1 day' - (e % 1440) * interval '1 minute',
	   date_trunc('month', now() - (e % 90) * interval '1 day' - (e % 1440) * interval '1 minute')
  FROM generate_series($1, $2) n, generate_series(1, $EVENTS) e;
SQL
	q -c "SELECT ipai.refresh_org_usage()" >/dev/null
}

run() { # name orgs sql
	local name=$1 orgs=$2 sql=$3
	printf '\\set n random(1, %s)\n%s\n' "$orgs" "$sql" >"$work/$name.sql"
	pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f "$work/$name.sql" -d "$db" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}

measure() { # orgs
	local orgs=$1 s1 rt ck cs pl
	s1=$(run select1 "$orgs" "SELECT 1;")
	rt=$(run router "$orgs" "SELECT c.used FROM ipai.usage_counters c WHERE c.org_id = bench.org(:n) AND c.feature = 'ai_runs' AND c.period_start = date_trunc('month', now());")
	ck=$(run check "$orgs" "SELECT * FROM ipai.check_entitlement(bench.org(:n), 'ai_runs', 1);")
	cs=$(run consume "$orgs" "SELECT * FROM ipai.consume_entitlement(bench.org(:n), 'ai_runs', 1);")
	pl=$(run plain "$orgs" "SELECT coalesce(sum(e.quantity), 0) + 1 <= 100000000 FROM ipai.usage_events e WHERE e.org_id = bench.org(:n) AND e.feature = 'ai_runs' AND e.occurred_at >= date_trunc('month', now());")
	printf '  %-9s %9s tps\n' select1 "$s1" router "$rt" check "$ck" consume "$cs" plain "$pl"
	awk -v s1="$s1" -v rt="$rt" -v ck="$ck" -v cs="$cs" -v pl="$pl" 'BEGIN {
		printf "  check   = %.2f x SELECT 1, %.2f x the router read, %.1f x the plain query\n", ck / s1, ck / rt, ck / pl
		printf "  consume = %.2f x SELECT 1, %.2f x the router read\n", cs / s1, cs / rt
	}'
	echo "$ck $cs $pl" >"$work/last"
}

small=${IPAI_BENCH_ORGS:-100}
echo "Citus: a coordinator and two workers, 8 shards; $small organizations x $EVENTS usage events over 90 days"
t0=$(date +%s)
seed 1 "$small"
echo "  (seeded in $(( $(date +%s) - t0 )) s)"
measure "$small"
read -r ck1 cs1 pl1 <"$work/last"

big=$((small * 10))
echo "ten times the data: $big organizations, $((big * EVENTS)) events"
t0=$(date +%s)
seed $((small + 1)) "$big"
echo "  (seeded in $(( $(date +%s) - t0 )) s)"
measure "$big"
read -r ck2 cs2 pl2 <"$work/last"
awk -v a="$ck1" -v b="$ck2" -v c="$cs1" -v d="$cs2" -v e="$pl1" -v f="$pl2" 'BEGIN {
	printf "growth with ten times the data (TPS after / before): check %.2f, consume %.2f, plain %.2f\n", b / a, d / c, f / e
}'
