#!/usr/bin/env bash
# Concurrency storms on ipai.stripe_webhook with 16 sessions (Node and the
# postgres driver), released at the same instant by an advisory-lock
# barrier:
#  1. 16 identical deliveries of one event, 20 rounds: exactly one is
#     processed and applied, 15 answer "duplicate";
#  2. 16 sessions each deliver the whole 5-event history of the same
#     subscriptions (and a checkout that links them), shuffled: every
#     event is applied at most once and every subscription ends in the
#     state of its latest event.
set -euo pipefail

db=ipai_billing_conc_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SELECT ipai.set_stripe_webhook_secret('whsec_concurrency_test');
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';
SQL

cd "$IPAI_SRC"
DB_URL="postgres://postgres@127.0.0.1:$PGPORT/$db" node - <<'JS'
const Stripe = require("stripe");
const postgres = require("postgres");
const crypto = require("crypto");
const fx = require("./test/fixtures/stripe/billing_events.cjs");

const SESSIONS = 16;
const secret = "whsec_concurrency_test";
const stripe = new Stripe("sk_test_unused");
const admin = postgres(process.env.DB_URL, { max: 1, onnotice: () => {} });
const pool = Array.from({ length: SESSIONS }, () =>
  postgres(process.env.DB_URL, { max: 1, onnotice: () => {} }));

let n = 0;
let failed = 0;
function ok(cond, name, extra) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra));
}

const BARRIER = 4242;

// every session starts its work at the same instant: each waits on a
// shared advisory lock that this one holds exclusively until all wait;
// the work itself runs in autocommit (one transaction per delivery, as
// the Edge handler does)
async function storm(work) {
  const lock = postgres(process.env.DB_URL, { max: 1, onnotice: () => {} });
  await lock`SELECT pg_advisory_lock(${BARRIER})`;
  const runs = pool.map(async (sql, i) => {
    await sql`SELECT pg_advisory_lock_shared(${BARRIER})`;
    await sql`SELECT pg_advisory_unlock_shared(${BARRIER})`;
    return work(sql, i);
  });
  for (let tries = 0; tries < 500; tries++) {
    const [{ waiting }] = await admin`
      SELECT count(*)::int AS waiting FROM pg_locks
       WHERE locktype = 'advisory' AND NOT granted AND objid = ${BARRIER}`;
    if (waiting === SESSIONS) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await lock`SELECT pg_advisory_unlock(${BARRIER})`;
  const out = await Promise.all(runs);
  await lock.end();
  return out;
}

async function webhook(t, payload) {
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
  const [row] = await t`SELECT status, event_id FROM ipai.stripe_webhook(${Buffer.from(payload)}::bytea, ${header})`;
  return row.status;
}

function shuffle(a) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

(async () => {
  await Promise.all(pool.map((sql) => sql`SELECT 1`));
  const now = Math.floor(Date.now() / 1000);

  // 1. identical deliveries
  const ROUNDS = 20;
  const org1 = crypto.randomUUID();
  await admin`INSERT INTO ipai.organizations (id, name) VALUES (${org1}, 'Storm 1')`;
  let wrong = [];
  for (let round = 0; round < ROUNDS; round++) {
    const payload = fx.subscriptionEvent({
      id: `evt_storm_${round}`, type: round ? "customer.subscription.updated" : "customer.subscription.created",
      created: now - 1000 + round, sub: "sub_storm", customer: "cus_storm",
      status: round % 2 ? "active" : "past_due", org: org1,
    });
    const statuses = await storm((t) => webhook(t, payload));
    const processed = statuses.filter((s) => s === "processed").length;
    const duplicates = statuses.filter((s) => s === "duplicate").length;
    if (processed !== 1 || duplicates !== SESSIONS - 1) wrong.push({ round, statuses });
  }
  ok(wrong.length === 0, `${ROUNDS} rounds of ${SESSIONS} identical deliveries: one processed, ${SESSIONS - 1} duplicates each`, wrong);
  const [agg] = await admin`
    SELECT count(*)::int AS events, min(deliveries)::int AS min_d, max(deliveries)::int AS max_d,
           bool_and(status = 'processed') AS all_processed
      FROM ipai.webhook_events WHERE event_id LIKE 'evt_storm_%'`;
  ok(agg.events === ROUNDS && agg.min_d === SESSIONS && agg.max_d === SESSIONS && agg.all_processed,
     "each event stored once, with every delivery counted", agg);
  const [audit] = await admin`
    SELECT count(*)::int AS n, count(DISTINCT new_values->>'event_id')::int AS distinct_events
      FROM ipai.audit_log WHERE object_id = 'sub_storm' AND action LIKE 'subscription.%'`;
  ok(audit.n === ROUNDS && audit.distinct_events === ROUNDS, "each event applied (audited) exactly once", audit);
  const [s1] = await admin`SELECT status, last_event_id FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_storm'`;
  ok(s1.last_event_id === `evt_storm_${ROUNDS - 1}` && s1.status === "active", "the latest event's state", s1);

  // 2. whole histories, shuffled per session, with duplicates and a checkout
  const SUBS = 6;
  const events = [];
  const orgs = [];
  for (let k = 0; k < SUBS; k++) {
    const org = crypto.randomUUID();
    orgs.push(org);
    await admin`INSERT INTO ipai.organizations (id, name) VALUES (${org}, ${"Storm 2." + k})`;
    const sub = `sub_h${k}`, customer = `cus_h${k}`;
    const s1 = 1735689600, s2 = s1 + 14 * 86400, e2 = s1 + 45 * 86400;
    // half the subscriptions carry no metadata: they wait for the checkout
    const meta = k % 2 ? org : null;
    events.push(
      fx.checkoutEvent({ id: `evt_h${k}_cs`, created: s1 + 4, session: `cs_h${k}`, customer, sub, org }),
      fx.subscriptionEvent({ id: `evt_h${k}_1`, type: "customer.subscription.created", created: s1 + 5, sub, customer, status: "incomplete", periodStart: s1, periodEnd: s2, org: meta }),
      fx.subscriptionEvent({ id: `evt_h${k}_2`, type: "customer.subscription.updated", created: s1 + 6, sub, customer, status: "trialing", periodStart: s1, periodEnd: s2, org: meta }),
      fx.subscriptionEvent({ id: `evt_h${k}_3`, type: "customer.subscription.updated", created: s2 + 1, sub, customer, status: "active", periodStart: s2, periodEnd: e2, org: meta }),
      fx.invoiceEvent({ id: `evt_h${k}_4`, type: "invoice.paid", created: s2 + 2, invoice: `in_h${k}`, customer, sub, org: meta, periodStart: s2, periodEnd: e2 }),
      fx.subscriptionEvent({ id: `evt_h${k}_5`, type: "customer.subscription.deleted", created: s1 + 20 * 86400, sub, customer, status: "canceled", periodStart: s2, periodEnd: e2, org: meta }),
    );
  }
  const errors = [];
  await storm(async (t, i) => {
    for (const payload of shuffle(events.slice())) {
      try {
        await webhook(t, payload);
      } catch (err) {
        errors.push(String(err.message));
      }
    }
  });
  ok(errors.length === 0, "no delivery failed (no deadlock, no error)", errors.slice(0, 5));
  const finals = await admin`
    SELECT o.plan_id, s.status, s.last_event_id, s.current_period_end, i.status AS invoice,
           (SELECT count(*)::int FROM ipai.webhook_events e
             WHERE e.event_id LIKE 'evt_h' || substr(s.stripe_subscription_id, 6) || '_%'
               AND e.status = 'processed' AND e.deliveries = ${SESSIONS}) AS processed
      FROM ipai.organizations o
      JOIN ipai.subscriptions s ON s.org_id = o.id
      JOIN ipai.invoices i ON i.org_id = o.id
     WHERE o.name LIKE 'Storm 2.%' ORDER BY o.name`;
  const good = finals.filter((f) => f.plan_id === "free" && f.status === "canceled"
    && /_5$/.test(f.last_event_id) && f.invoice === "paid" && f.processed === 6
    && f.current_period_end.getTime() === (1735689600 + 45 * 86400) * 1000);
  ok(finals.length === SUBS && good.length === SUBS,
     `${SUBS} histories x ${SESSIONS} sessions, shuffled: every subscription ends canceled on its latest period, every event processed once`, finals);
  const [dups] = await admin`
    SELECT count(*)::int AS n FROM (
      SELECT new_values->>'event_id' AS e, object_id, action, count(*)
        FROM ipai.audit_log WHERE object_id LIKE 'sub_h%' OR object_id LIKE 'in_h%'
       GROUP BY 1, 2, 3 HAVING count(*) > 1) x`;
  ok(dups.n === 0, "no event was applied twice", dups);

  console.log(`1..${n}`);
  await Promise.all(pool.map((sql) => sql.end()));
  await admin.end();
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.log("not ok - unexpected error: " + (err && err.stack || err));
  console.log(`1..${n + 1}`);
  process.exit(1);
});
JS
