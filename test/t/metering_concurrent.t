#!/usr/bin/env bash
# Counters equal the events after a mixed concurrent workload (TAP).
#
# Eight sessions (Node, the postgres driver) hammer three organizations for
# a few seconds: consume and record usage with fresh and reused idempotency
# keys, reserve holds that are finalized (below, at or above what they
# reserved), released or left to expire, insert and delete pages, check,
# and roll back some transactions halfway.  Afterwards every live counter
# must equal the sum of its events (cms_items: the pages), what holds keep
# back must equal the active unexpired holds, hard limits must never have
# been passed, every metered event must have exactly one meter event in the
# outbox, and ipai.refresh_org_usage() must find nothing to repair.
set -euo pipefail
db=ipai_conc_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO ipai.plans (id, name, base_amount) VALUES ('conc_team', 'Team', 29);
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('conc_team', 'ai_runs', 400, 'hard', 'usage_events', 'billing_period'),
	   ('conc_team', 'cms_items', 40, 'hard', 'cms_pages', 'never'),
	   ('conc_team', 'seats', 10, 'hard', 'seats', 'never');
INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('c0000000-0000-4000-8000-00000000000a', 'Conc Free', 'free', 'Asia/Manila'),
	('c0000000-0000-4000-8000-00000000000b', 'Conc Pro', 'pro', 'UTC'),
	('c0000000-0000-4000-8000-00000000000c', 'Conc Team', 'conc_team', 'America/New_York');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('c0000000-0000-4000-8000-00000000000a', 'c0000000-0000-4000-8000-0000000000f1', 'owner'),
	('c0000000-0000-4000-8000-00000000000c', 'c0000000-0000-4000-8000-0000000000f3', 'owner');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('c0000000-0000-4000-8000-00000000000b', 'cus_Conc');
SQL

cd "$IPAI_SRC"
DB=$db node - <<'JS'
const postgres = require("postgres");
const sql = postgres({ host: process.env.PGHOST, port: process.env.PGPORT, user: "postgres",
                       database: process.env.DB, max: 8, onnotice: () => {} });
const FREE = "c0000000-0000-4000-8000-00000000000a";
const PRO = "c0000000-0000-4000-8000-00000000000b";
const TEAM = "c0000000-0000-4000-8000-00000000000c";
const ORGS = [FREE, PRO, TEAM];
const MEMBER = { [FREE]: "c0000000-0000-4000-8000-0000000000f1", [TEAM]: "c0000000-0000-4000-8000-0000000000f3" };
const EXPECTED = new Set(["IP001", "IP005", "22023", "40001", "40P01"]);
const stats = {};
const count = (k) => { stats[k] = (stats[k] || 0) + 1; };
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const rnd = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
let n = 0, failed = 0;
const ok = (cond, name, extra) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra).slice(0, 2000));
};
const unexpected = [];

async function step(worker, i) {
  const org = pick(ORGS);
  const kind = pick(["consume", "consume", "consume_key", "record", "hold", "hold", "check", "page", "tx"]);
  try {
    switch (kind) {
      case "consume":
        await sql`SELECT ipai.consume_entitlement(${org}, 'ai_runs', ${rnd(1, 3)})`;
        break;
      case "consume_key": {
        // a small pool of keys: retries of the same usage, concurrently too
        const k = "k" + rnd(1, 40);
        const q = Number(k.slice(1)) % 3 + 1;
        const [r] = await sql`SELECT reason FROM ipai.consume_entitlement(${org}, 'ai_runs', ${q}, ${k})`;
        count(r.reason === "duplicate" ? "duplicate" : "consumed_key");
        break;
      }
      case "record":
        // reporting usage that happened: only for the unlimited organization
        await sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', ${rnd(1, 5)}, ${"r" + rnd(1, 200)})`;
        break;
      case "hold": {
        const [{ id }] = await sql`SELECT ipai.reserve_entitlement(${org}, 'ai_runs', ${rnd(1, 6)},
                                   ${rnd(20, 400) + " milliseconds"}::interval) AS id`;
        await new Promise((r) => setTimeout(r, rnd(0, 300)));
        const end = pick(["finalize", "finalize", "release", "expire"]);
        if (end === "finalize") await sql`SELECT ipai.finalize_hold(${id}, ${rnd(0, 8)})`;
        if (end === "release") await sql`SELECT ipai.release_hold(${id})`;
        count("hold_" + end);
        break;
      }
      case "check":
        await sql`SELECT * FROM ipai.check_entitlement(${org}, ${pick(["ai_runs", "cms_items", "seats"])}, 1)`;
        break;
      case "page":
        if (Math.random() < 0.6) {
          await sql`INSERT INTO ipai.cms_pages (org_id, slug, title)
                    VALUES (${TEAM}, ${"w" + worker + "-" + i}, 'Concurrent page')`;
        } else {
          await sql`DELETE FROM ipai.cms_pages WHERE id = (SELECT id FROM ipai.cms_pages
                    WHERE org_id = ${TEAM} ORDER BY random() LIMIT 1)`;
        }
        break;
      case "tx":
        // several usages in one transaction, as a member, sometimes undone
        await sql.begin(async (tx) => {
          const o = pick([FREE, TEAM]);
          await tx`SELECT pg_catalog.set_config('ipai.user_id', ${MEMBER[o]}, true)`;
          await tx`SET LOCAL ROLE authenticated`;
          await tx`SELECT ipai.consume_entitlement(${o}, 'ai_runs', ${rnd(1, 4)})`;
          const [{ id }] = await tx`SELECT ipai.reserve_entitlement(${o}, 'ai_runs', 2, '1 minute') AS id`;
          await tx`SELECT ipai.finalize_hold(${id}, ${rnd(1, 2)})`;
          if (Math.random() < 0.3) throw new Error("rollback on purpose");
        });
        break;
    }
    count(kind);
  } catch (e) {
    if (e.message === "rollback on purpose") count("rolled_back");
    else if (EXPECTED.has(e.code)) count("refused_" + e.code);
    else unexpected.push(kind + ": " + (e.code || "") + " " + e.message);
  }
}

(async () => {
  const deadline = Date.now() + Number(process.env.IPAI_CONC_MS || 5000);
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; Date.now() < deadline; i++) await step(w, i);
  }));
  await new Promise((r) => setTimeout(r, 450));      // let the short holds expire
  console.log("# workload: " + JSON.stringify(stats));
  ok(unexpected.length === 0, "no unexpected errors", unexpected.slice(0, 10));
  ok((stats.refused_IP001 || 0) > 0 && (stats.hold_finalize || 0) > 0 && (stats.duplicate || 0) > 0
     && (stats.rolled_back || 0) > 0, "the workload hit limits, holds, duplicate keys and rollbacks", stats);

  const drift = await sql`
    SELECT c.org_id, c.feature, c.period_start, c.used,
           CASE WHEN c.feature = 'cms_items'
                THEN (SELECT count(*) FROM ipai.cms_pages p WHERE p.org_id = c.org_id)
                ELSE (SELECT coalesce(sum(e.quantity), 0) FROM ipai.usage_events e
                       WHERE e.org_id = c.org_id AND e.feature = c.feature
                         AND e.period_start = c.period_start) END AS truth
      FROM ipai.usage_counters c`;
  const bad = drift.filter((r) => String(r.used) !== String(r.truth));
  ok(drift.length >= 4 && bad.length === 0, `every counter equals the sum of its events (${drift.length} counters)`, bad);

  const missing = await sql`
    SELECT e.org_id, e.feature, e.period_start FROM ipai.usage_events e
     WHERE NOT EXISTS (SELECT 1 FROM ipai.usage_counters c WHERE c.org_id = e.org_id
                        AND c.feature = e.feature AND c.period_start = e.period_start)`;
  ok(missing.length === 0, "every event has its counter", missing);

  const held = await sql`
    SELECT o AS org_id, (ipai.check_entitlement(o, 'ai_runs')).current AS current,
           (SELECT c.used FROM ipai.usage_counters c, ipai.usage_period(o) p
             WHERE c.org_id = o AND c.feature = 'ai_runs' AND c.period_start = p.period_start) AS used,
           (SELECT coalesce(sum(h.quantity), 0) FROM ipai.usage_holds h, ipai.usage_period(o) p
             WHERE h.org_id = o AND h.status = 'active' AND h.expires_at > now()
               AND h.period_start = p.period_start) AS active_holds
      FROM unnest(${sql.array(ORGS)}::uuid[]) o`;
  ok(held.every((r) => Number(r.current) === Number(r.used) + Number(r.active_holds)),
     "current usage is what was used plus the active, unexpired holds", held);

  const limits = await sql`
    SELECT c.org_id, c.used, e.max_quantity FROM ipai.usage_counters c
      JOIN ipai.organizations o ON o.id = c.org_id
      JOIN ipai.plan_entitlements e ON e.plan_id = o.plan_id AND e.feature = c.feature
     WHERE e.enforcement = 'hard' AND e.max_quantity IS NOT NULL AND c.used > e.max_quantity`;
  ok(limits.length === 0, "no hard limit was ever passed", limits);

  const [meter] = await sql`
    SELECT (SELECT count(*) FROM ipai.usage_events WHERE org_id = ${PRO} AND metered) AS events,
           (SELECT coalesce(sum(quantity), 0) FROM ipai.usage_events WHERE org_id = ${PRO} AND metered) AS quantity,
           (SELECT count(*) FROM ipai.outbox WHERE org_id = ${PRO} AND topic = 'stripe.meter_event') AS meter_events,
           (SELECT count(DISTINCT dedupe_key) FROM ipai.outbox WHERE org_id = ${PRO} AND topic = 'stripe.meter_event') AS identifiers,
           (SELECT coalesce(sum((payload->>'value')::bigint), 0) FROM ipai.outbox WHERE org_id = ${PRO}) AS value`;
  ok(Number(meter.events) > 0 && meter.events === meter.meter_events && meter.meter_events === meter.identifiers
     && String(meter.quantity) === String(meter.value), "one meter event per metered event, with a unique identifier", meter);

  const [keys] = await sql`SELECT count(*) AS n FROM (SELECT org_id, idempotency_key FROM ipai.usage_events
                             WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`;
  ok(Number(keys.n) === 0, "no idempotency key was recorded twice");

  const [{ repaired }] = await sql`SELECT ipai.refresh_org_usage() AS repaired`;
  ok(repaired === 0, "refresh_org_usage() finds nothing to repair", repaired);

  await sql.end();
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch(async (e) => { console.log("not ok - " + e.stack); console.log("1..0"); process.exit(1); });
JS
