#!/usr/bin/env bash
# Exactly once through failures (TAP): 10,000 metered AI runs recorded by
# four clients (pgbench, consume_entitlement on four pro organizations)
# while two outbox senders (loop mode, Deno, Stripe's SDK) deliver them to
# the Stripe stand-in, which fails 20% of the calls at random (500 before
# or after processing, 429, timeouts before or after processing, reset
# connections before or after processing) and the senders are killed with
# SIGKILL at random moments and restarted.  Afterwards the sum of values
# Stripe accepted equals the recorded usage, per customer; every row is
# covered by exactly one accepted meter event; nothing is left due or dead.
#
# Meter events group at most 25 rows here, so that the storm meets many
# requests; the recording is paced at 800 runs a second, so that it lasts
# long enough for several kills.
#
# Time is compressed: rows waiting for their backoff (10 s doubling) are
# made due every second, as if the clock ran faster; a killed sender's
# leases expire by themselves (IPAI_OUTBOX_LEASE_SECONDS=8).
set -uo pipefail
. "$IPAI_SRC/test/lib/standins.sh"

EVENTS=${IPAI_EXACTLY_ONCE_EVENTS:-10000}
CLIENTS=4
db=ipai_exactly_once_$$
work=$(mktemp -d /tmp/ipai-eo.XXXXXX)
senders=()
cleanup() {
	local rc=$? p
	for p in "${senders[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ -n "${advancer:-}" ] && { kill "$advancer" 2>/dev/null; wait "$advancer" 2>/dev/null; }
	standin_stop_all
	rm -rf "$work"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | tail -30 | sed 's/^/# /'
	return 0
}
q() { psql -X -q -At -d "$db" -c "$1" 2>&1; }

psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
q "INSERT INTO ipai.organizations (id, name, plan_id)
   SELECT ('e0e00000-0000-4000-8000-00000000000' || k)::uuid, 'Storm ' || k, 'pro' FROM generate_series(1, $CLIENTS) k;
   INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
   SELECT ('e0e00000-0000-4000-8000-00000000000' || k)::uuid, 'cus_Storm' || k FROM generate_series(1, $CLIENTS) k;" >/dev/null

standin_start stripe --secret-key sk_test_storm --meters ai_runs \
	--customers "$(seq -s, -f 'cus_Storm%g' 1 $CLIENTS)" || exit 1
curl -s -X POST "$STRIPE_STANDIN_ADMIN/__standin/faults" -H 'content-type: application/json' \
	-d '{"rate":0.2,"kinds":["500","500_after","429","timeout","timeout_after","reset","reset_after"],"seconds":1,"seed":11,"paths":["/v1/billing/meter_events"]}' >/dev/null

start_sender() {
	(
		cd "$IPAI_SRC" &&
		SUPABASE_DB_URL="postgres://postgres@127.0.0.1:$PGPORT/$db" STRIPE_API_BASE=$STRIPE_STANDIN_URL \
			STRIPE_SECRET_KEY=sk_test_storm IPAI_OUTBOX_LOOP=1 IPAI_OUTBOX_POLL_SECONDS=1 \
			IPAI_OUTBOX_HTTP_TIMEOUT_SECONDS=1 IPAI_OUTBOX_LEASE_SECONDS=8 IPAI_OUTBOX_CONCURRENCY=8 \
			IPAI_METER_AGGREGATE_MAX=25 \
			DENO_NO_UPDATE_CHECK=1 exec env -u SUPABASE_URL "$IPAI_SRC/test/node_modules/.bin/deno" run \
			--allow-net --allow-env supabase/functions/outbox-sender/index.ts
	) >>"$work/sender.log" 2>&1 &
	echo $!
}
senders=("$(start_sender)" "$(start_sender)")

# time runs faster for rows waiting on their backoff
(
	while sleep 1; do
		psql -X -q -d "$db" -c "UPDATE ipai.outbox SET next_attempt_at = now()
			WHERE topic = 'stripe.meter_event' AND sent_at IS NULL AND dead_at IS NULL
			  AND claimed_at IS NULL AND next_attempt_at > now() AND next_attempt_at < 'infinity'" >/dev/null 2>&1
	done
) &
advancer=$!

# the recording clients
cat >"$work/consume.sql" <<SQL
\set k random(1, $CLIENTS)
SELECT ipai.consume_entitlement(('e0e00000-0000-4000-8000-00000000000' || :k)::uuid, 'ai_runs', 1);
SQL
"$IPAI_PGBIN/pgbench" -n -M prepared -R 800 -c "$CLIENTS" -j 2 -t $((EVENTS / CLIENTS)) -f "$work/consume.sql" \
	-d "$db" >"$work/pgbench.log" 2>&1 &
recorder=$!

# SIGKILL a sender at random moments while recording, and a few times after
kills=0
killing() {
	local i victim
	i=$((RANDOM % 2))
	victim=${senders[$i]}
	sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
	wait "$victim" 2>/dev/null
	senders[i]=$(start_sender)
}
while kill -0 "$recorder" 2>/dev/null; do killing; sleep "$((RANDOM % 2)).$((RANDOM % 10))"; done
wait "$recorder"
recorded_rc=$?
for i in 1 2 3 4; do killing; sleep 1; done

if [ "$recorded_rc" -eq 0 ] && grep -q "number of transactions actually processed: $EVENTS" "$work/pgbench.log"; then
	ok "$EVENTS metered runs recorded by $CLIENTS clients ($(grep -oE 'tps = [0-9.]+' "$work/pgbench.log" | head -1))"
else
	nok "$EVENTS metered runs recorded by $CLIENTS clients" "$(cat "$work/pgbench.log")"
fi

# the storm ends; the senders drain what is left
curl -s -X DELETE "$STRIPE_STANDIN_ADMIN/__standin/faults" >/dev/null
pending="SELECT count(*) FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND sent_at IS NULL AND dead_at IS NULL"
for i in $(seq 1 120); do
	[ "$(q "$pending")" = 0 ] && break
	sleep 1
done
is_drained=$(q "$pending")
[ "$is_drained" = 0 ] && ok "the senders drained everything (after $kills kills)" ||
	nok "the senders drained everything" "$is_drained rows pending
$(tail -20 "$work/sender.log")"
dead=$(q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT last_error, '; '), '') FROM ipai.outbox WHERE dead_at IS NOT NULL")
[ "${dead%% *}" = 0 ] && ok "no row given up" || nok "no row given up" "$dead"

# what Stripe accepted against what was recorded
curl -s "$STRIPE_STANDIN_ADMIN/__standin/meter_events" >"$work/accepted.json"
curl -s "$STRIPE_STANDIN_ADMIN/__standin/stats" >"$work/stats.json"
curl -s "$STRIPE_STANDIN_ADMIN/__standin/duplicates" >"$work/dups.json"
q "SELECT coalesce(json_agg(json_build_object('batch', o.batch, 'value', (o.payload->>'value')::bigint,
                                              'customer', o.payload->>'stripe_customer_id')), '[]')
     FROM ipai.outbox o WHERE o.topic = 'stripe.meter_event'" >"$work/rows.json"
q "SELECT json_object_agg(b.stripe_customer_id, u.total)
     FROM (SELECT org_id, sum(quantity) AS total FROM ipai.usage_events WHERE metered GROUP BY org_id) u
     JOIN ipai.billing_customers b USING (org_id)" >"$work/usage.json"
WORK=$work EVENTS=$EVENTS KILLS=$kills N=$n node - <<'JS'
const fs = require("fs");
const rd = (f) => JSON.parse(fs.readFileSync(`${process.env.WORK}/${f}`, "utf8"));
const accepted = rd("accepted.json").meter_events, rows = rd("rows.json"), usage = rd("usage.json");
const stats = rd("stats.json"), dups = rd("dups.json").duplicates;
let n = +process.env.N, failed = 0;
const ok = (c, name, extra) => { n++; if (!c) failed++; console.log(`${c ? "ok" : "not ok"} ${n} - ${name}`); if (!c && extra !== undefined) console.log("# " + JSON.stringify(extra).slice(0, 1500)); };
const sum = (a) => a.reduce((s, x) => s + Number(x), 0);
const total = sum(accepted.map((e) => e.value));
ok(total === +process.env.EVENTS && sum(Object.values(usage)) === total,
   `the sum of values Stripe accepted (${total}) equals the recorded usage`, { total, usage });
const per = {};
for (const e of accepted) per[e.customer] = (per[e.customer] || 0) + Number(e.value);
ok(Object.keys(usage).every((c) => per[c] === Number(usage[c])) && Object.keys(per).length === Object.keys(usage).length,
   "and per customer", { per, usage });
const ids = new Set(accepted.map((e) => e.identifier));
ok(ids.size === accepted.length, `no identifier accepted twice (${accepted.length} meter events)`);
const byBatch = {};
for (const r of rows) byBatch[r.batch] = (byBatch[r.batch] || 0) + Number(r.value);
ok(rows.every((r) => ids.has(r.batch)) && Object.keys(byBatch).length === accepted.length &&
   accepted.every((e) => byBatch[e.identifier] === Number(e.value)),
   "every row is covered by exactly one accepted meter event, of the same value as its rows",
   { rows: rows.length, batches: Object.keys(byBatch).length, accepted: accepted.length });
const injected = Object.entries(stats.by_fault || {}).map(([k, v]) => `${k} ${v}`).join(", ");
console.log(`# ${rows.length} rows in ${accepted.length} meter events (aggregation ${(rows.length / accepted.length).toFixed(1)} rows each); ` +
            `${stats.requests} requests to Stripe; faults injected: ${injected}; ${dups.length} resends refused as duplicates; ` +
            `${process.env.KILLS} senders killed`);
ok(Object.values(stats.by_fault || {}).reduce((s, x) => s + x, 0) > 0 && dups.length > 0,
   "(the storm did happen: faults were injected and resends met Stripe's deduplication)", stats);
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
JS
