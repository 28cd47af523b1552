#!/usr/bin/env bash
# outbox_bench.sh — does the outbox sender keep up with metered usage?
#
#   test/bench/run.sh outbox          (inside `make bench`)
#   IPAI_PGBIN=<optimised stage bin> test/cluster.sh run -- test/bench/outbox_bench.sh
#
# For each scale (IPAI_BENCH_SCALES, default "100 1000" pro organizations
# with a Stripe customer, each with 1,000 usage events of history whose
# meter events were sent long ago: 100,000 and 1,000,000 outbox rows), in
# one cluster, against the local Stripe stand-in (no faults):
#
#   record    pgbench -M prepared -c 2 -j 2 -T $SECS of consume_entitlement
#             on random organizations, nothing sending: runs recorded/s
#   drain     the sender (Deno, Stripe's SDK, HTTP mode, one POST after
#             another) delivers that backlog: rows delivered/s, grouped
#             as it does by default (up to 1,000 rows of one customer per
#             meter event once 20 are waiting)
#   single    the same backlog size again, delivered one meter event per
#             row (aggregation off): what a sender without grouping does
#   steady    recording and the loop-mode sender at the same time for
#             $SECS s: rows recorded/s, rows delivered/s, backlog at the end
#   notify    consume with the outbox_notify trigger disabled: what waking
#             the senders costs the hot path
#
# Prints the figures and the ratios delivered/recorded; asserts nothing.
set -uo pipefail

SECS=${IPAI_BENCH_SECS:-10}
SCALES=${IPAI_BENCH_SCALES:-100 1000}
DB=ipai_bench_outbox
PGBIN=${IPAI_PGBIN:-/usr/lib/postgresql/15/bin}
SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/test/lib/standins.sh"
deno="$SRC/test/node_modules/.bin/deno"
work=$(mktemp -d /tmp/ipai-outbox-bench.XXXXXX)
chmod 0755 "$work"
sender=
cleanup() {
	[ -n "$sender" ] && { kill "$sender" 2>/dev/null; wait "$sender" 2>/dev/null; }
	standin_stop_all
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
q() { psql -X -q -At -d "$DB" -c "$1"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

standin_start stripe --secret-key sk_test_bench --meters ai_runs --log-limit 1000 >/dev/null
export SUPABASE_DB_URL="postgres://postgres@127.0.0.1:$PGPORT/$DB"
export STRIPE_API_BASE=$STRIPE_STANDIN_URL STRIPE_SECRET_KEY=sk_test_bench IPAI_EDGE_TRUSTED=1
export DENO_NO_UPDATE_CHECK=1
unset SUPABASE_URL SUPABASE_JWT_SECRET

# start the sender (HTTP mode, or loop mode with IPAI_OUTBOX_LOOP=1 in the
# environment); sets URL
start_sender() {
	local port=$((20000 + RANDOM % 40000)) i
	(cd "$SRC" && PORT=$port exec "$deno" run --allow-net --allow-env supabase/functions/outbox-sender/index.ts) \
		>"$work/sender.log" 2>&1 &
	sender=$!
	URL="http://127.0.0.1:$port/outbox-sender"
	for i in $(seq 1 600); do grep -q listening "$work/sender.log" && return 0; sleep 0.1; done
	cat "$work/sender.log" >&2
	return 1
}
stop_sender() { kill "$sender" 2>/dev/null; wait "$sender" 2>/dev/null; sender=; }
pending() { q "SELECT count(*) FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND sent_at IS NULL"; }
# drains the backlog with POSTs; prints "rows seconds meter_events"
drain() {
	local t0 t1 rows before_events after_events
	rows=$(pending)
	before_events=$(curl -s "$STRIPE_STANDIN_ADMIN/__standin/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).by_status?.["200"]??0))')
	t0=$(now)
	while [ "$(curl -s -X POST "$URL" | sed -n 's/.*"remaining":\([0-9]*\).*/\1/p')" != 0 ]; do :; done
	t1=$(now)
	after_events=$(curl -s "$STRIPE_STANDIN_ADMIN/__standin/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).by_status?.["200"]??0))')
	echo "$rows $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') $((after_events - before_events))"
}

cat >"$work/consume.sql" <<'SQL'
\set n random(1, :orgs)
SELECT * FROM ipai.consume_entitlement(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_runs', 1);
SQL

for orgs in $SCALES; do
	echo "=== $orgs pro organizations, $((orgs * 1000)) usage events and sent meter events of history"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
	start=$(date +%s)
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v orgs="$orgs" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
INSERT INTO ipai.organizations (id, name, plan_id)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'Org ' || n, 'pro'
  FROM generate_series(1, :orgs) n;
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
SELECT id, 'cus_' || substr(md5(id::text), 1, 14) FROM ipai.organizations;
-- 1,000 runs each over the last 90 days, their meter events sent
ALTER TABLE ipai.outbox DISABLE TRIGGER outbox_notify;
SELECT ipai.record_usage(o.id, 'ai_runs', 1 + (g % 3), NULL, now() - (g * interval '90 days' / 1000))
  FROM ipai.organizations o, generate_series(1, 1000) g;
ALTER TABLE ipai.outbox ENABLE TRIGGER outbox_notify;
UPDATE ipai.outbox SET sent_at = created_at, first_attempt_at = created_at, attempts = 1;
VACUUM ANALYZE;
SQL
	echo "seeded in $(( $(date +%s) - start )) s: $(q "SELECT count(*) FROM ipai.usage_events") usage events, $(q "SELECT count(*) FROM ipai.outbox") outbox rows"
	curl -s -X POST "$STRIPE_STANDIN_ADMIN/__standin/reset" -d '{}' >/dev/null

	# record: the backlog a burst of usage leaves
	rec=$("$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -T "$SECS" -D orgs="$orgs" -f "$work/consume.sql" "$DB" 2>&1 |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	start_sender
	read -r rows secs events < <(drain)
	grouped=$(rate "$rows" "$secs")
	echo "record   $(printf '%8.0f' "$rec") runs/s recorded (consume_entitlement, pgbench -c 2)"
	echo "drain    $(printf '%8.0f' "$grouped") rows/s delivered: $rows rows in $(printf '%.1f' "$secs") s as $events meter events (grouped)"
	stop_sender

	# single: the same number of rows, one meter event each
	"$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -t $((rows / 2)) -D orgs="$orgs" -f "$work/consume.sql" "$DB" >/dev/null 2>&1
	IPAI_METER_AGGREGATE_MIN=100000 IPAI_METER_AGGREGATE_MAX=100000 start_sender
	read -r rows1 secs1 events1 < <(drain)
	single=$(rate "$rows1" "$secs1")
	echo "single   $(printf '%8.0f' "$single") rows/s delivered: $rows1 rows in $(printf '%.1f' "$secs1") s as $events1 meter events (no grouping)"
	stop_sender

	# steady: both at once
	IPAI_OUTBOX_LOOP=1 IPAI_OUTBOX_POLL_SECONDS=1 start_sender
	sent0=$(q "SELECT count(*) FROM ipai.outbox WHERE sent_at IS NOT NULL")
	t0=$(now)
	steady=$("$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -T "$SECS" -D orgs="$orgs" -f "$work/consume.sql" "$DB" 2>&1 |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	t1=$(now)
	sent1=$(q "SELECT count(*) FROM ipai.outbox WHERE sent_at IS NOT NULL")
	backlog=$(pending)
	stop_sender
	delivered=$(rate "$((sent1 - sent0))" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	echo "steady   $(printf '%8.0f' "$steady") runs/s recorded while the loop sender delivered $delivered rows/s; backlog at the end: $backlog rows"

	# notify: the hot path without waking senders
	q "ALTER TABLE ipai.outbox DISABLE TRIGGER outbox_notify"
	quiet=$("$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -T "$SECS" -D orgs="$orgs" -f "$work/consume.sql" "$DB" 2>&1 |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	q "ALTER TABLE ipai.outbox ENABLE TRIGGER outbox_notify"
	echo "notify   $(printf '%8.0f' "$quiet") runs/s recorded with the outbox_notify trigger disabled"
	echo
	echo "drain  / record  = $(ratio "$grouped" "$rec")x   (goal >= 1: the sender keeps up)"
	echo "single / record  = $(ratio "$single" "$rec")x   (the same without grouping rows into meter events)"
	echo "drain  / single  = $(ratio "$grouped" "$single")x   (what grouping buys)"
	echo "steady delivered / recorded = $(ratio "$delivered" "$steady")x"
	echo "consume with NOTIFY / without = $(ratio "$rec" "$quiet")x"
	echo
done
