#!/usr/bin/env bash
# The metering fast path against the SPI path (TAP).
#
# Two databases with the same fixtures; a connection to the first runs with
# ipai.usage_fast_path on (the default: reads and writes without SPI), one
# to the second with it off (the SPI statements, the reference).  A random
# but seeded sequence of operations runs on both, one at a time:
# check_entitlement, consume_entitlement and record_usage (with and without
# idempotency keys, fresh, repeated and conflicting), in bulk
# (record_usage over generate_series, thousands of times on one counter in
# one transaction), holds reserved, finalized (below, at, above what they
# hold), released, and expired by hand, period moves (time zone changes,
# subscriptions that start, change status, renew, end), refresh, the
# invoice preview, reads of the counters and of ipai.org_usage_current in
# the middle of transactions, as superuser, service_role, members of every
# role, a stranger and anon; in transactions with savepoints rolled back
# and whole transactions rolled back.  Every answer (rows, or SQLSTATE,
# message and detail) must be the same on both, and so must the final
# tables: usage_events, usage_counters, usage_holds and the meter events
# in the outbox, ids included (both paths draw their ids alike); only
# times taken from the clock are masked.
#
#   IPAI_DIFF_SEED (default 16), IPAI_DIFF_OPS (default 1500)
set -euo pipefail
fast=ipai_diff_fast_$$
spi=ipai_diff_spi_$$
for d in $fast $spi; do
	psql -X -q -d postgres -c "CREATE DATABASE $d TEMPLATE ipai_template" >/dev/null
done
trap 'for d in $fast $spi; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1; done' EXIT

for d in $fast $spi; do
	psql -X -q -v ON_ERROR_STOP=1 -d "$d" >/dev/null <<'SQL'
INSERT INTO ipai.plans (id, name, base_amount) VALUES ('d_team', 'Team', 29), ('d_soft', 'Soft', 9);
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('d_team', 'ai_runs', 60, 'hard', 'usage_events', 'billing_period'),
	   ('d_team', 'cms_items', 40, 'hard', 'cms_pages', 'never'),
	   ('d_team', 'seats', 10, 'hard', 'seats', 'never'),
	   ('d_soft', 'ai_runs', 30, 'soft', 'usage_events', 'billing_period');
INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('d0000000-0000-4000-8000-000000000001', 'Free', 'free', 'UTC'),
	('d0000000-0000-4000-8000-000000000002', 'Team', 'd_team', 'Asia/Manila'),
	('d0000000-0000-4000-8000-000000000003', 'Pro', 'pro', 'America/New_York'),
	('d0000000-0000-4000-8000-000000000004', 'Pro without customer', 'pro', 'Europe/Berlin'),
	('d0000000-0000-4000-8000-000000000005', 'Soft', 'd_soft', 'UTC');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('d0000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001', 'owner'),
	('d0000000-0000-4000-8000-000000000002', 'd1000000-0000-4000-8000-000000000001', 'owner'),
	('d0000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000002', 'viewer'),
	('d0000000-0000-4000-8000-000000000002', 'd1000000-0000-4000-8000-000000000003', 'editor'),
	('d0000000-0000-4000-8000-000000000003', 'd1000000-0000-4000-8000-000000000003', 'owner'),
	('d0000000-0000-4000-8000-000000000004', 'd1000000-0000-4000-8000-000000000004', 'owner'),
	('d0000000-0000-4000-8000-000000000005', 'd1000000-0000-4000-8000-000000000004', 'admin');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('d0000000-0000-4000-8000-000000000003', 'cus_Diff');
INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
								current_period_start, current_period_end)
VALUES ('d0000000-0000-4000-8000-000000000003', 'sub_diff', 'active', 'pro',
		date_trunc('day', now()) - interval '9 days', date_trunc('day', now()) + interval '21 days');
SQL
done

cd "$IPAI_SRC"
FAST=$fast SPI=$spi node - <<'JS'
const postgres = require("postgres");
const opts = (db, on) => ({ host: process.env.PGHOST, port: process.env.PGPORT, user: "postgres", database: db,
                            max: 1, onnotice: () => {}, connection: { "ipai.usage_fast_path": on ? "on" : "off" } });
const A = postgres(opts(process.env.FAST, true));
const B = postgres(opts(process.env.SPI, false));
let n = 0, failed = 0;
const ok = (cond, name, extra) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra).slice(0, 3000));
};

// a seeded generator, so that a failure can be replayed (IPAI_DIFF_SEED)
let seed = Number(process.env.IPAI_DIFF_SEED || 16) >>> 0;
const rand = () => {
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rand() * a.length)];
const rnd = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const ORG = (i) => `d0000000-0000-4000-8000-00000000000${i}`;
const USER = (i) => `d1000000-0000-4000-8000-00000000000${i}`;
const ORGS = [1, 2, 3, 4, 5].map(ORG);
// callers: superuser, service_role, members (owner, viewer, editor, admin),
// a user of no organization, anon
const CALLERS = ["super", "super", "service", "u1", "u1", "u2", "u3", "u3", "u4", "u5", "anon"];
const RUN_START = new Date(Date.now() - 3600 * 1000).toISOString();   // fixed moments for both databases
const holds = { A: [], B: [] };   // hold handles: index -> uuid, per database

const q = (s) => "'" + String(s).replace(/'/g, "''") + "'";
const callerSql = (c) => {
  if (c === "super") return [];
  if (c === "service") return ["SET LOCAL ROLE service_role"];
  if (c === "anon") return ["SET LOCAL ROLE anon"];
  return [`SELECT set_config('ipai.user_id', ${q(USER(Number(c.slice(1))))}, true)`, "SET LOCAL ROLE authenticated"];
};

// one operation: { caller, sql } where sql may name a hold as {{hN}}
function operation(groupOrg) {
  // operations of a transaction mostly on one organization: later usage on
  // a counter the transaction wrote takes the delta path (usage_deltas.c)
  const org = rand() < 0.7 ? groupOrg : pick(ORGS);
  const caller = pick(CALLERS);
  const key = (p) => rand() < 0.45 ? q(p + rnd(1, 25)) : "NULL";
  switch (pick(["check", "consume", "consume", "consume", "record", "record", "bulk", "reserve", "reserve",
                "finalize", "release", "expire", "move", "read", "view", "refresh", "preview", "check"])) {
    case "check":
      return { caller, sql: `SELECT * FROM ipai.check_entitlement(${q(org)}, ${q(pick(["ai_runs", "ai_runs", "cms_items", "seats", "nope"]))}, ${rnd(1, 6)})` };
    case "consume":
      return { caller, sql: `SELECT * FROM ipai.consume_entitlement(${q(org)}, ${q(pick(["ai_runs", "ai_runs", "ai_runs", "seats"]))}, ${rnd(1, 9)}, ${key("k")})` };
    case "record": {
      const at = rand() < 0.3 ? `${q(RUN_START)}::timestamptz - interval '${rnd(0, 1000)} hours'` : "now()";
      return { caller, sql: `SELECT ipai.record_usage(${q(org)}, 'ai_runs', ${rnd(1, 9)}, ${key("r")}, ${at})` };
    }
    case "bulk":
      return { caller: pick(["super", "service", "u3"]),
               sql: `SELECT count(*) FILTER (WHERE r) AS recorded FROM (SELECT ipai.record_usage(${q(org)}, 'ai_runs', 1) AS r FROM generate_series(1, ${rnd(5, 400)})) x` };
    case "reserve":
      return { caller, sql: `SELECT ipai.reserve_entitlement(${q(org)}, 'ai_runs', ${rnd(1, 8)}, '1 hour') IS NOT NULL AS reserved`, hold: true };
    case "finalize":
      return { caller, sql: `SELECT ipai.finalize_hold({{h}}, ${rnd(0, 9)})` };
    case "release":
      return { caller, sql: `SELECT ipai.release_hold({{h}})` };
    case "expire":
      return { caller: "super", sql: `WITH h AS (UPDATE ipai.usage_holds SET expires_at = now() - interval '1 minute' WHERE id = {{h}} RETURNING org_id, feature, period_start)
                UPDATE ipai.usage_counters c SET hold_expires_at = now() - interval '1 minute' FROM h
                 WHERE c.org_id = h.org_id AND c.feature = h.feature AND c.period_start = h.period_start AND c.hold_expires_at IS NOT NULL` };
    case "move":
      return { caller: "super", sql: pick([
        `UPDATE ipai.organizations SET timezone = ${q(pick(["UTC", "Asia/Manila", "America/New_York", "Pacific/Kiritimati"]))} WHERE id = ${q(org)}`,
        `UPDATE ipai.subscriptions SET status = ${q(pick(["active", "past_due", "past_due", "unpaid", "canceled", "trialing"]))}`,
        `UPDATE ipai.subscriptions SET current_period_start = current_period_start + interval '${rnd(-3, 3)} days', current_period_end = current_period_end + interval '${rnd(-3, 3)} days'`,
        `INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id, current_period_start, current_period_end)
           VALUES (${q(pick([ORG(1), ORG(4), ORG(5)]))}, 'sub_' || ${rnd(1, 3)}, 'active', 'pro', date_trunc('day', ${q(RUN_START)}::timestamptz) - interval '${rnd(1, 20)} days',
                   date_trunc('day', ${q(RUN_START)}::timestamptz) + interval '${rnd(5, 25)} days') ON CONFLICT DO NOTHING`,
        `DELETE FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_' || ${rnd(1, 3)}`]) };
    case "read":
      return { caller: "super", sql: `SELECT feature, period_start, period_end, used, held, carried FROM ipai.usage_counters WHERE org_id = ${q(org)} ORDER BY feature, period_start` };
    case "view":
      return { caller, sql: `SELECT org_id, feature, period_start, used, reserved, is_current FROM ipai.org_usage_current ORDER BY 1, 2, 3` };
    case "refresh":
      return { caller: pick(["super", "service", "u1"]), sql: `SELECT ipai.refresh_org_usage()` };
    case "preview":
      return { caller, sql: `SELECT plan_id, metered_quantity, total FROM ipai.preview_invoice(${q(org)})` };
  }
}

// runs a group of operations in one transaction on one database, each
// inside a savepoint; returns their answers
async function runGroup(db, name, ops, commit) {
  const answers = [];
  const conn = await db.reserve();
  try {
    await conn.unsafe("BEGIN");
    for (const [i, op] of ops.entries()) {
      let text = op.sql;
      if (text.includes("{{h}}")) {
        const list = holds[name];
        text = text.replaceAll("{{h}}", list.length ? q(list[op.h % list.length]) + "::uuid" : "NULL::uuid");
      }
      await conn.unsafe(`SAVEPOINT s${i}`);
      try {
        for (const s of callerSql(op.caller)) await conn.unsafe(s);
        const rows = op.hold
          ? await conn.unsafe(text.replace("IS NOT NULL AS reserved", "AS hold"))
          : await conn.unsafe(text);
        if (op.hold) {
          holds[name].push(rows[0].hold);
          answers.push([{ reserved: rows[0].hold !== null }]);
        } else answers.push(JSON.parse(JSON.stringify(rows)));
        await conn.unsafe(`RESET ROLE`);
        await conn.unsafe(`SELECT set_config('ipai.user_id', '', true)`);
        await conn.unsafe(`RELEASE SAVEPOINT s${i}`);
      } catch (e) {
        // hold ids differ between the databases: messages name their handles
        const norm = (m) => m && holds[name].reduce((t, id, h) => t.replaceAll(id, "h" + h), m);
        answers.push({ error: e.code, message: norm(e.message), detail: norm(e.detail) || null });
        await conn.unsafe(`ROLLBACK TO SAVEPOINT s${i}`);
        await conn.unsafe(`RESET ROLE`);
      }
    }
    await conn.unsafe(commit ? "COMMIT" : "ROLLBACK");
  } finally {
    conn.release();
  }
  return answers;
}

(async () => {
  const [fa] = await A`SELECT ipai._usage_fast_path() AS why_not`;
  const [fb] = await B`SELECT ipai._usage_fast_path() AS why_not`;
  ok(fa.why_not === null, "the first database runs the fast path", fa);
  ok(fb.why_not === "ipai.usage_fast_path is off", "the second runs the SPI path", fb);

  const OPS = Number(process.env.IPAI_DIFF_OPS || 1500);
  let done = 0, groups = 0;
  const mismatches = [];
  const kinds = {};
  while (done < OPS) {
    const size = rand() < 0.6 ? 1 : rnd(2, 12);
    const groupOrg = pick(ORGS);
    const ops = Array.from({ length: size }, () => ({ ...operation(groupOrg), h: rnd(0, 1000) }));
    // holds reserved and then finalized/released within one group keep
    // their handles only when the group commits
    const commit = rand() < 0.85;
    const lenA = holds.A.length, lenB = holds.B.length;
    const ra = await runGroup(A, "A", ops, commit);
    const rb = await runGroup(B, "B", ops, commit);
    if (!commit) { holds.A.length = lenA; holds.B.length = lenB; }
    for (let i = 0; i < ops.length; i++) {
      const k = ops[i].sql.split(/[ (]/)[0] + (ops[i].sql.match(/ipai\.[a-z_]+/) || [""])[0];
      kinds[k] = (kinds[k] || 0) + 1;
      if (JSON.stringify(ra[i]) !== JSON.stringify(rb[i]) && mismatches.length < 10)
        mismatches.push({ group: groups, op: ops[i], fast: ra[i], spi: rb[i] });
    }
    done += size;
    groups++;
  }
  console.log(`# ${done} operations in ${groups} transactions: ${JSON.stringify(kinds)}`);
  ok(mismatches.length === 0, `every answer is the same on both paths (${done} operations)`, mismatches);

  // the final tables; holds by handle, clock-made times masked
  const dump = async (db, name) => {
    const handle = (id) => id === null ? null : holds[name].indexOf(id);
    const ev = await db`SELECT org_id, id, feature, quantity, idempotency_key,
                               CASE WHEN occurred_at = recorded_at THEN 'now' ELSE occurred_at::text END AS occurred,
                               period_start, metered, counted_inline, hold_id, recorded_by
                          FROM ipai.usage_events ORDER BY org_id, id`;
    const ct = await db`SELECT org_id, feature, period_start, period_end, used, held,
                               hold_expires_at IS NULL AS no_hold, carried
                          FROM ipai.usage_counters ORDER BY 1, 2, 3`;
    const ho = await db`SELECT id, org_id, feature, quantity, period_start, status, actual_quantity, created_by
                          FROM ipai.usage_holds ORDER BY org_id, feature, period_start, quantity, id`;
    const ob = await db`SELECT org_id, id, topic, payload - 'timestamp' AS payload, dedupe_key, attempts,
                               sent_at, claimed_at, dead_at, in_doubt, batch, next_attempt_at = created_at AS due_at_once
                          FROM ipai.outbox ORDER BY org_id, id`;
    return {
      events: JSON.parse(JSON.stringify(ev.map((r) => ({ ...r, hold_id: handle(r.hold_id) })))),
      counters: JSON.parse(JSON.stringify(ct)),
      holds: JSON.parse(JSON.stringify(ho.map((r) => ({ ...r, id: handle(r.id) })).sort((a, b) => a.id - b.id))),
      outbox: JSON.parse(JSON.stringify(ob)),
    };
  };
  const da = await dump(A, "A"), db_ = await dump(B, "B");
  for (const t of ["events", "counters", "holds", "outbox"]) {
    const a = da[t], b = db_[t];
    const first = a.findIndex((r, i) => JSON.stringify(r) !== JSON.stringify(b[i]));
    ok(a.length === b.length && first === -1,
       `${t}: the same rows on both paths (${a.length} rows)`, { rows: [a.length, b.length], at: first, fast: a[first], spi: b[first] });
  }
  ok(da.events.length > 1000 && da.outbox.length > 100 && da.holds.length > 20,
     "the operations recorded usage, meter events and holds", [da.events.length, da.outbox.length, da.holds.length]);

  for (const [db, name] of [[A, "fast"], [B, "SPI"]]) {
    const [{ repaired }] = await db`SELECT ipai.refresh_org_usage() AS repaired`;
    ok(repaired === 0, `${name} path: counters equal their events (refresh_org_usage repairs nothing)`, { repaired });
  }

  await A.end();
  await B.end();
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch(async (e) => { console.log("not ok - " + e.stack); console.log("1..0"); process.exit(1); });
JS
