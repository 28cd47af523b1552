#!/usr/bin/env bash
# End to end: the entitlement-check Edge handler (Deno) over real HTTP
# against the throwaway cluster.  Tokens are HS256 JWTs signed here with
# the handler's SUPABASE_JWT_SECRET (Node's crypto, independent of the
# handler's WebCrypto check); what the handler answers is compared with
# what the database then holds.
set -euo pipefail
. "$IPAI_SRC/test/lib/edge.sh"

db=ipai_e2e_entitlement_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	set +e
	edge_stop
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('e0e00000-0000-4000-8000-00000000000a', 'Edge Acme', 'free'),
	('e0e00000-0000-4000-8000-00000000000b', 'Edge Globex', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('e0e00000-0000-4000-8000-00000000000a', 'e0e00000-0000-4000-8000-0000000000f1', 'owner'),
	('e0e00000-0000-4000-8000-00000000000a', 'e0e00000-0000-4000-8000-0000000000c1', 'viewer'),
	('e0e00000-0000-4000-8000-00000000000b', 'e0e00000-0000-4000-8000-0000000000f2', 'owner');
SELECT ipai.record_usage('e0e00000-0000-4000-8000-00000000000a', 'ai_runs', 97);
SQL

export SUPABASE_JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long
EDGE_DB=$db edge_start entitlement-check

cd "$IPAI_SRC"
EDGE_URL=$EDGE_URL DB=$db node - <<'JS'
const crypto = require("crypto");
const { execFileSync } = require("child_process");
const secret = process.env.SUPABASE_JWT_SECRET;
const url = process.env.EDGE_URL + "/entitlement-check";
const ACME = "e0e00000-0000-4000-8000-00000000000a";
const GLOBEX = "e0e00000-0000-4000-8000-00000000000b";
let n = 0, failed = 0;
const ok = (cond, name, extra) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra));
};
const b64 = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
const jwt = (claims, key = secret, alg = "HS256") => {
  const head = b64({ alg, typ: "JWT" }) + "." + b64(claims);
  return head + "." + crypto.createHmac("sha256", key).update(head).digest("base64url");
};
const now = Math.floor(Date.now() / 1000);
const user = (sub, extra = {}) => jwt({ sub, role: "authenticated", aud: "authenticated", exp: now + 600, ...extra });
const owner = user("e0e00000-0000-4000-8000-0000000000f1");
const viewer = user("e0e00000-0000-4000-8000-0000000000c1");
const outsider = user("e0e00000-0000-4000-8000-0000000000f2");
const service = jwt({ role: "service_role", iss: "supabase", exp: now + 600 });
const sql = (q) => execFileSync("psql", ["-X", "-A", "-t", "-d", process.env.DB, "-c", q]).toString().trim();

const post = async (body, token, method = "POST") => {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const res = await fetch(url, { method, headers, body: method === "POST" ? (typeof body === "string" ? body : JSON.stringify(body)) : undefined });
  let json = null;
  try { json = await res.json(); } catch {}
  return { status: res.status, json };
};

(async () => {
  // who is asking
  let r = await post({ org_id: ACME, feature: "ai_runs" });
  ok(r.status === 401, "no token: 401", r);
  r = await post({ org_id: ACME, feature: "ai_runs" }, jwt({ sub: "e0e00000-0000-4000-8000-0000000000f1", role: "authenticated", exp: now + 600 }, "wrong-secret"));
  ok(r.status === 401, "a token signed with another secret: 401", r);
  r = await post({ org_id: ACME, feature: "ai_runs" }, user("e0e00000-0000-4000-8000-0000000000f1", { exp: now - 10 }));
  ok(r.status === 401, "an expired token: 401", r);
  r = await post({ org_id: ACME, feature: "ai_runs" }, jwt({ role: "anon", exp: now + 600 }));
  ok(r.status === 401, "the anon key: 401", r);

  // check: the SPEC's columns, numbers as numbers
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 3 }, owner);
  ok(r.status === 200, "check: 200", r);
  const want = { allowed: true, feature: "ai_runs", plan_id: "free", current: 97, max: 100, remaining: 3, reason: "ok" };
  ok(r.json && Object.keys(r.json).length === 7 && Object.entries(want).every(([k, v]) => r.json[k] === v),
     "check: the columns of ipai.check_entitlement", r.json);
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 4 }, viewer);
  ok(r.status === 200 && r.json.allowed === false && r.json.reason === "limit_exceeded", "a viewer checks: not allowed beyond the limit", r);
  ok(sql(`SELECT sum(used) FROM ipai.usage_counters WHERE org_id = '${ACME}'`) === "97", "a check records nothing");

  // consume, with an idempotency key
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 2, consume: true, idempotency_key: "req-1" }, owner);
  ok(r.status === 200 && r.json.current === 99 && r.json.remaining === 1 && r.json.allowed === true, "consume: 200, usage after the call", r);
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 2, consume: true, idempotency_key: "req-1" }, owner);
  ok(r.status === 200 && r.json.reason === "duplicate" && r.json.current === 99, "the same key again: recorded once", r);
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 5, consume: true, idempotency_key: "req-1" }, owner);
  ok(r.status === 400 && r.json.sqlstate === "22023", "the key with another quantity: 400", r);
  r = await post({ org_id: ACME, feature: "ai_runs", consume: true }, viewer);
  ok(r.status === 200 && r.json.current === 100 && r.json.remaining === 0, "a viewer consumes the last one", r);
  r = await post({ org_id: ACME, feature: "ai_runs", consume: true }, owner);
  ok(r.status === 403 && r.json.sqlstate === "IP001", "beyond the hard limit: 403 IP001", r);
  ok(r.json && /usage limit reached/.test(r.json.error) && r.json.detail === "Current usage is 100 of 100; 1 more was requested.",
     "the error names current and maximum", r.json);
  ok(sql(`SELECT sum(quantity) FROM ipai.usage_events WHERE org_id = '${ACME}'`) === "100", "the database holds what was answered");

  // seats and pages are checked the same way
  r = await post({ org_id: ACME, feature: "seats" }, owner);
  ok(r.status === 200 && r.json.current === 2 && r.json.max === 3, "seats: members plus pending invitations", r);
  r = await post({ org_id: ACME, feature: "seats", quantity: 2, consume: true }, owner);
  ok(r.status === 403 && r.json.sqlstate === "IP005", "seats beyond the limit: 403 IP005", r);

  // bad arguments: 400
  r = await post({ org_id: ACME, feature: "teleports" }, owner);
  ok(r.status === 400 && r.json.sqlstate === "22023", "unknown feature: 400", r);
  r = await post({ org_id: "e0e00000-0000-4000-8000-000000000009", feature: "ai_runs" }, service);
  ok(r.status === 400 && r.json.sqlstate === "22023", "unknown organization: 400", r);
  r = await post({ org_id: "not-a-uuid", feature: "ai_runs" }, owner);
  ok(r.status === 400, "an organization id that is not a uuid: 400", r);
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 0 }, owner);
  ok(r.status === 400 && r.json.sqlstate === "22023", "quantity 0: 400", r);
  r = await post({ org_id: ACME, feature: "ai_runs", quantity: 1.5 }, owner);
  ok(r.status === 400, "a fractional quantity: 400", r);
  r = await post({ org_id: ACME, feature: "ai_runs", consume: "yes" }, owner);
  ok(r.status === 400, "consume that is not a boolean: 400", r);
  r = await post("{not json", owner);
  ok(r.status === 400, "a body that is not JSON: 400", r);
  r = await post({ feature: "ai_runs" }, owner);
  ok(r.status === 400, "no org_id: 400", r);
  r = await post(null, owner, "GET");
  ok(r.status === 405, "GET: 405", r);

  // nothing revealed to others; service_role acts for anyone
  r = await post({ org_id: ACME, feature: "ai_runs" }, outsider);
  ok(r.status === 403 && r.json.sqlstate === "42501", "a member of another organization: 403", r);
  r = await post({ org_id: ACME, feature: "no_such_feature" }, outsider);
  ok(r.status === 403 && r.json.sqlstate === "42501", "... who cannot even probe features", r);
  r = await post({ org_id: GLOBEX, feature: "ai_runs", quantity: 250, consume: true }, service);
  ok(r.status === 200 && r.json.max === null && r.json.remaining === null && r.json.reason === "unlimited",
     "service_role consumes for any organization; unlimited: max and remaining null", r);
  ok(sql(`SELECT count(*) FROM ipai.outbox WHERE org_id = '${GLOBEX}' AND topic = 'stripe.meter_event'`) === "1",
     "metered usage wrote its Stripe meter event");

  // concurrent consumers never pass a hard limit
  const burst = await Promise.all(Array.from({ length: 12 }, () =>
    post({ org_id: ACME, feature: "ai_runs", consume: true }, owner)));
  ok(burst.every((x) => x.status === 403), "12 concurrent consumers at the limit: all refused", burst.map((x) => x.status));

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log("not ok - " + e); console.log("1..0"); process.exit(1); });
JS
