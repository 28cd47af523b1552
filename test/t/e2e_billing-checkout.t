#!/usr/bin/env bash
# End to end: the billing-checkout Edge handler (Deno) against the
# throwaway cluster and a local stand-in for Stripe's API (Node, on
# 127.0.0.1) that records every request and checks every field: the
# method, path, secret key, content type, and the form-encoded Checkout
# Session (bracket notation) built by ipai.checkout_session_params for the
# user of a verified JWT.
set -euo pipefail
. "$IPAI_SRC/test/lib/edge.sh"

db=ipai_e2e_checkout_$$
work=$(mktemp -d /tmp/e2e-checkout.XXXXXX)
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	set +e
	edge_stop
	standin_stop_all
	rm -rf "$work"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name, billing_email) VALUES
	('c0c00000-0000-4000-8000-00000000000a', 'Checkout Acme', 'billing@acme.example'),
	('c0c00000-0000-4000-8000-00000000000b', 'Checkout Globex', NULL);
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('c0c00000-0000-4000-8000-00000000000a', 'c0c00000-0000-4000-8000-0000000000f1', 'owner'),
	('c0c00000-0000-4000-8000-00000000000a', 'c0c00000-0000-4000-8000-0000000000e1', 'editor'),
	('c0c00000-0000-4000-8000-00000000000b', 'c0c00000-0000-4000-8000-0000000000f2', 'owner'),
	('c0c00000-0000-4000-8000-00000000000b', 'c0c00000-0000-4000-8000-0000000000a2', 'admin');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('c0c00000-0000-4000-8000-00000000000b', 'cus_Globex42');
SQL

# the stand-in for Stripe (test/lib/STANDINS.md): checks every request
# against Stripe's description of POST /v1/checkout/sessions
# (test/fixtures/stripe/api/api_facts.json) and records it
. "$IPAI_SRC/test/lib/standins.sh"
standin_start stripe --secret-key sk_test_standin_51Mz --customers cus_Globex42 \
	--prices price_1QmZ2aLgUG5tbmjcPr0Mnth:recurring:9900:usd || exit 1
cd "$IPAI_SRC"

export STRIPE_API_BASE=$STRIPE_STANDIN_URL
export STRIPE_SECRET_KEY=sk_test_standin_51Mz
export SUPABASE_JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long
EDGE_DB=$db edge_start billing-checkout

EDGE_URL=$EDGE_URL node - <<'JS'
const crypto = require("crypto");
const url = process.env.EDGE_URL + "/billing-checkout";
const stub = process.env.STRIPE_API_BASE;
const jwtSecret = process.env.SUPABASE_JWT_SECRET;
const ORG_A = "c0c00000-0000-4000-8000-00000000000a";
const ORG_B = "c0c00000-0000-4000-8000-00000000000b";
const OWNER_A = "c0c00000-0000-4000-8000-0000000000f1";
const EDITOR_A = "c0c00000-0000-4000-8000-0000000000e1";
const ADMIN_B = "c0c00000-0000-4000-8000-0000000000a2";

let n = 0;
let failed = 0;
function ok(cond, name, extra) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra));
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");
function jwt(claims, { secret = jwtSecret, alg = "HS256" } = {}) {
  const head = b64url(JSON.stringify({ alg, typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = alg === "none" ? "" : b64url(crypto.createHmac("sha256", secret).update(head + "." + body).digest());
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);
const userToken = (sub, extra = {}) =>
  jwt({ sub, role: "authenticated", aud: "authenticated", iat: now(), exp: now() + 3600, ...extra });

const good = {
  org_id: ORG_A, plan_id: "pro",
  success_url: "https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}",
  cancel_url: "https://app.example.com/billing?canceled=1",
};

async function call(body, token, headers = {}) {
  const h = { "content-type": "application/json", ...headers };
  if (token) h.authorization = "Bearer " + token;
  const res = await fetch(url, { method: "POST", headers: h, body: typeof body === "string" ? body : JSON.stringify(body) });
  let json = null;
  try { json = await res.json(); } catch { /* empty */ }
  return { status: res.status, json };
}
async function recorded() {
  const res = await fetch(process.env.STRIPE_STANDIN_ADMIN + "/__standin/requests?path=/v1/checkout/sessions");
  return (await res.json()).requests;
}

(async () => {
  // the owner upgrades organization A
  let r = await call(good, userToken(OWNER_A), { "idempotency-key": "upgrade-a-1" });
  ok(r.status === 200 && /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/.test(r.json.url),
     "the owner gets 200 with the session url", r);
  let reqs = await recorded();
  ok(reqs.length === 1, "one request reached Stripe", reqs.length);
  const q = reqs[0];
  ok(q.method === "POST" && q.path === "/v1/checkout/sessions" && q.status === 200, "POST /v1/checkout/sessions, valid by Stripe's description of it", q);
  ok(q.headers.authorization === "Bearer sk_test_standin_51Mz", "with the secret key as bearer token", q.headers);
  ok(q.headers["content-type"] === "application/x-www-form-urlencoded", "form-encoded", q.headers);
  ok(q.headers["idempotency-key"] === "upgrade-a-1", "the Idempotency-Key is passed on", q.headers);
  const form = [...new URLSearchParams(q.body)].sort();
  const want = [
    ["cancel_url", good.cancel_url],
    ["client_reference_id", ORG_A],
    ["customer_email", "billing@acme.example"],
    ["line_items[0][price]", "price_1QmZ2aLgUG5tbmjcPr0Mnth"],
    ["line_items[0][quantity]", "1"],
    ["metadata[org_id]", ORG_A],
    ["metadata[plan_id]", "pro"],
    ["mode", "subscription"],
    ["subscription_data[metadata][org_id]", ORG_A],
    ["subscription_data[metadata][plan_id]", "pro"],
    ["success_url", good.success_url],
  ].sort();
  ok(JSON.stringify(form) === JSON.stringify(want), "every field, in Stripe's bracket notation, and nothing else", form);
  ok(q.body.includes("line_items[0][price]=") && !q.body.includes("%5B"),
     "brackets are sent readable, as Stripe's libraries do", q.body);

  // an admin of B: the existing customer is used
  r = await call({ ...good, org_id: ORG_B }, userToken(ADMIN_B));
  reqs = await recorded();
  const formB = new URLSearchParams(reqs[1].body);
  ok(r.status === 200 && formB.get("customer") === "cus_Globex42" && !formB.has("customer_email")
     && formB.get("metadata[org_id]") === ORG_B,
     "an admin of B: 200, and the organization's Stripe customer is passed", { r, body: reqs[1].body });

  // who may not: nothing reaches Stripe
  const before = (await recorded()).length;
  r = await call(good, userToken(EDITOR_A));
  ok(r.status === 403 && r.json.sqlstate === "42501", "an editor: 403", r);
  r = await call(good, userToken(ADMIN_B));
  ok(r.status === 403, "an admin of another organization: 403", r);
  r = await call(good, null);
  ok(r.status === 401, "no token: 401", r);
  r = await call(good, userToken(OWNER_A).slice(0, -2) + "xx");
  ok(r.status === 401, "a token with a bad signature: 401", r);
  r = await call(good, jwt({ sub: OWNER_A, role: "authenticated", exp: now() + 3600 }, { secret: "another-secret-another-secret-another" }));
  ok(r.status === 401, "a token signed with another secret: 401", r);
  r = await call(good, userToken(OWNER_A, { exp: now() - 10 }));
  ok(r.status === 401, "an expired token: 401", r);
  r = await call(good, jwt({ sub: OWNER_A, role: "authenticated", exp: now() + 3600 }, { alg: "none" }));
  ok(r.status === 401, "alg none: 401", r);
  r = await call(good, userToken(OWNER_A, { nbf: now() + 600 }));
  ok(r.status === 401, "a token not yet valid: 401", r);
  r = await call(good, jwt({ role: "authenticated", exp: now() + 3600 }));
  ok(r.status === 401, "a token without subject: 401", r);

  // bad arguments
  r = await call({ ...good, plan_id: "platinum" }, userToken(OWNER_A));
  ok(r.status === 400 && r.json.sqlstate === "22023", "an unknown plan: 400", r);
  r = await call({ ...good, plan_id: "free" }, userToken(OWNER_A));
  ok(r.status === 400 && r.json.sqlstate === "22023", "a plan without a Stripe price: 400", r);
  r = await call({ ...good, success_url: "javascript:alert(1)" }, userToken(OWNER_A));
  ok(r.status === 400 && r.json.sqlstate === "22023", "a success_url that is not http(s): 400", r);
  r = await call({ ...good, org_id: "not-a-uuid" }, userToken(OWNER_A));
  ok(r.status === 400, "an org_id that is not a uuid: 400", r);
  r = await call({ ...good, org_id: "dead0000-0000-4000-8000-000000000000" }, userToken(OWNER_A));
  ok(r.status === 400 && r.json.sqlstate === "22023", "an unknown organization: 400", r);
  r = await call({ org_id: ORG_A, plan_id: "pro" }, userToken(OWNER_A));
  ok(r.status === 400, "missing URLs: 400", r);
  r = await call("{not json", userToken(OWNER_A));
  ok(r.status === 400, "a body that is not JSON: 400", r);
  ok((await recorded()).length === before, "none of these reached Stripe");

  // Stripe refuses
  await fetch(process.env.STRIPE_STANDIN_ADMIN + "/__standin/faults/next", { method: "POST",
    body: JSON.stringify({ kind: "400", message: "Not a valid URL", param: "success_url", path: "/v1/checkout/sessions" }) });
  r = await call({ ...good, success_url: "https://stripe-says-no.example/" }, userToken(OWNER_A));
  ok(r.status === 502 && r.json.detail === "Not a valid URL" && r.json.stripe_status === 400, "Stripe's error: 502 with its message", r);

  // the same click twice: one session (Stripe's idempotency, through the SDK)
  const first = await call(good, userToken(OWNER_A), { "idempotency-key": "upgrade-a-twice" });
  const again = await call(good, userToken(OWNER_A), { "idempotency-key": "upgrade-a-twice" });
  ok(first.status === 200 && again.status === 200 && first.json.id === again.json.id,
     "the same Idempotency-Key twice: the same Checkout Session", [first, again]);
  const all = await recorded();
  ok(all.filter((q) => q.status === 200).length === all.filter((q) => q.fault === undefined || q.fault === null).length,
     "every request the SDK sent met Stripe's description of the endpoint (the stand-in answered 200)",
     all.map((q) => [q.status, q.error]));

  const res = await fetch(url, { method: "GET" });
  ok(res.status === 405, "GET: 405");
  await res.body?.cancel();

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.log("not ok - unexpected error: " + (err && err.stack || err));
  console.log(`1..${n + 1}`);
  process.exit(1);
});
JS
