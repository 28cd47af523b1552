#!/usr/bin/env bash
# acceptance_edge.t: SPEC 8 over real HTTP: the four Edge handlers served by
# Deno against a copy of the test database; status codes per SQLSTATE,
# response bodies; billing-checkout against a fake Stripe API that records
# the form it receives (SPEC 3 checkout_session_params).
set -uo pipefail
. "$IPAI_SRC/test/lib/edge.sh"
db=acc_edge_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
fake_pid=
cleanup() {
	edge_stop
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
	[ -n "${fake_log:-}" ] && rm -f "$fake_log"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

secret=whsec_accEdge$$
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
SELECT ipai.set_stripe_webhook_secret('$secret');
UPDATE ipai.plans SET stripe_price_id = 'price_1AccEdgePro' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('acce0000-0000-4000-8000-0000000ed001', 'Edge Free', 'free'),
	('acce0000-0000-4000-8000-0000000ed002', 'Edge Pro', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('acce0000-0000-4000-8000-0000000ed001', 'acce0000-0000-4000-8000-0000000ee001', 'owner'),
	('acce0000-0000-4000-8000-0000000ed001', 'acce0000-0000-4000-8000-0000000ee002', 'editor'),
	('acce0000-0000-4000-8000-0000000ed002', 'acce0000-0000-4000-8000-0000000ee003', 'owner'),
	('acce0000-0000-4000-8000-0000000ed002', 'acce0000-0000-4000-8000-0000000ee004', 'admin');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('acce0000-0000-4000-8000-0000000ed002', 'cus_AccEdge');
SELECT ipai.record_usage('acce0000-0000-4000-8000-0000000ed001', 'ai_runs', 98);
SQL

# a fake Stripe API: records the checkout request, answers like Stripe
fake_log=$(mktemp /tmp/acc-fake-stripe.XXXXXX)
fake_port=$(edge_free_port)
node -e '
const http = require("http"); const fs = require("fs");
http.createServer((req, res) => { let b = ""; req.on("data", (c) => b += c); req.on("end", () => {
  fs.appendFileSync(process.argv[1], JSON.stringify({ method: req.method, url: req.url, auth: req.headers.authorization, ctype: req.headers["content-type"], body: b }) + "\n");
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ id: "cs_test_acc", object: "checkout.session", url: "https://checkout.stripe.com/c/pay/cs_test_acc" }));
}); }).listen(+process.argv[2], "127.0.0.1", () => console.log("fake listening"));
' "$fake_log" "$fake_port" &
fake_pid=$!

ok=1
EDGE_DB=$db edge_start stripe-webhook || ok=0; URL_WH=$EDGE_URL
IPAI_EDGE_TRUSTED=1 EDGE_DB=$db edge_start entitlement-check || ok=0; URL_EC=$EDGE_URL
EDGE_DB=$db edge_start cms-publisher || ok=0; URL_PUB=$EDGE_URL
EDGE_DB=acc_no_such_database edge_start stripe-webhook || ok=0; URL_WH_DOWN=$EDGE_URL
export SUPABASE_JWT_SECRET=acceptance-jwt-secret-with-at-least-32-characters
export STRIPE_API_BASE="http://127.0.0.1:$fake_port" STRIPE_SECRET_KEY=sk_test_accEdge
EDGE_DB=$db edge_start billing-checkout || ok=0; URL_BC=$EDGE_URL
unset SUPABASE_JWT_SECRET

cd "$IPAI_SRC"
URL_WH=$URL_WH URL_WH_DOWN=$URL_WH_DOWN URL_EC=$URL_EC URL_PUB=$URL_PUB URL_BC=$URL_BC SECRET=$secret DB=$db FAKE_LOG=$fake_log STARTED=$ok \
JWT_SECRET=acceptance-jwt-secret-with-at-least-32-characters node - <<'JS'
const path = require("path");
const crypto = require("crypto");
const fs = require("fs");
const L = require(path.join(process.env.IPAI_SRC, "test", "acceptance", "lib.js"));
const { ok, is } = L;
const Stripe = L.req("stripe");
const stripe = new Stripe("sk_test_offline");
const FREE = "acce0000-0000-4000-8000-0000000ed001", PRO = "acce0000-0000-4000-8000-0000000ed002";
const post = async (url, body, headers = {}) => {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null; try { json = JSON.parse(text); } catch {}
  return { status: res.status, json, text };
};
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims) => { const h = b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims); return h + "." + crypto.createHmac("sha256", process.env.JWT_SECRET).update(h).digest("base64url"); };
const now = Math.floor(Date.now() / 1000);
(async () => {
  ok(process.env.STARTED === "1", "the four handlers start with deno run");
  const sql = L.connect(process.env.DB, { max: 2 });
  // stripe-webhook
  const wh = process.env.URL_WH + "/stripe-webhook";
  const ev = { id: "evt_1AccEdge1", object: "event", api_version: "2025-03-31.basil", created: now, type: "customer.created",
    data: { object: { id: "cus_new", object: "customer", name: "Zoë 東京" } }, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null } };
  const payload = JSON.stringify(ev, null, 2);
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret: process.env.SECRET });
  let r = await post(wh, payload, { "stripe-signature": header });
  ok(r.status === 200 && r.json && r.json.status === "ignored" && r.json.event_id === ev.id && r.json.event_type === "customer.created",
    "stripe-webhook: 200 {status, event_id, event_type}", r);
  ok(r.json && Object.keys(r.json).sort().join() === "event_id,event_type,status", "stripe-webhook: exactly the three fields", r.json);
  r = await post(wh, payload, { "stripe-signature": header });
  ok(r.status === 200 && r.json && r.json.status === "duplicate", "stripe-webhook: the same delivery again: 200 duplicate", r);
  r = await post(wh, payload, { "stripe-signature": header.replace(/v1=(.)/, (m, c) => "v1=" + (c === "0" ? "1" : "0")) });
  is(r.status, 400, "stripe-webhook: a bad signature: 400");
  r = await post(wh, payload, {});
  is(r.status, 400, "stripe-webhook: no Stripe-Signature header: 400");
  r = await post(wh, payload.replace("Zoë", "Zoe"), { "stripe-signature": header });
  is(r.status, 400, "stripe-webhook: a changed body under a valid header: 400");
  // raw bytes: a body in Latin-1 bytes is verified as sent
  const ev2 = { ...ev, id: "evt_1AccEdge2" };
  const p2 = JSON.stringify(ev2);
  const h2 = stripe.webhooks.generateTestHeaderString({ payload: p2, secret: process.env.SECRET });
  r = await post(wh, p2, { "stripe-signature": h2, "content-type": "text/plain; charset=iso-8859-1" });
  ok(r.status === 200 && r.json && r.json.event_id === ev2.id, "stripe-webhook: verified over the raw body whatever the content-type", r);
  const junk = "not json at all";
  r = await post(wh, junk, { "stripe-signature": stripe.webhooks.generateTestHeaderString({ payload: junk, secret: process.env.SECRET }) });
  ok(r.status === 500 || r.status === 400, "stripe-webhook: a signed body that is not JSON: an error status, not 200 (" + r.status + ")");
  r = await post(process.env.URL_WH_DOWN + "/stripe-webhook", payload, { "stripe-signature": header });
  is(r.status, 500, "stripe-webhook: the database unreachable: 500 (Stripe retries)");
  const g = await fetch(wh, { method: "GET" });
  ok(g.status >= 400 && g.status < 500, "stripe-webhook: GET is refused with a 4xx (" + g.status + ")");

  // entitlement-check (no JWT secret configured: trusted, as a raw pass-through)
  const ec = process.env.URL_EC + "/entitlement-check";
  r = await post(ec, { org_id: FREE, feature: "ai_runs", quantity: 2, consume: false });
  ok(r.status === 200 && r.json && JSON.stringify(Object.keys(r.json).sort()) === JSON.stringify(["allowed", "current", "feature", "max", "plan_id", "reason", "remaining"]),
    "entitlement-check: 200 with the check's seven columns", r);
  if (r.json) console.log("# key order in the body: " + Object.keys(r.json).join(","));
  ok(r.json && r.json.allowed === true && r.json.current === 98 && r.json.max === 100 && r.json.remaining === 2 && r.json.plan_id === "free",
    "entitlement-check: values as JSON numbers and booleans", r.json);
  r = await post(ec, { org_id: FREE, feature: "ai_runs", quantity: 2, consume: true });
  ok(r.status === 200 && r.json && r.json.current === 100, "consume: 200, usage 100", r);
  r = await post(ec, { org_id: FREE, feature: "ai_runs", quantity: 1, consume: true });
  is(r.status, 403, "consume beyond the limit: 403 (IP001)");
  r = await post(ec, { org_id: FREE, feature: "ai_runs", quantity: 1, consume: false });
  ok(r.status === 200 && r.json && r.json.allowed === false, "a check beyond the limit is not an error: 200, allowed false", r);
  r = await post(ec, { org_id: FREE, feature: "warp_drive", quantity: 1 });
  is(r.status, 400, "unknown feature: 400 (22023)");
  r = await post(ec, { org_id: "acce0000-0000-4000-8000-0000000edfff", feature: "ai_runs" });
  is(r.status, 400, "unknown org: 400 (22023)");
  r = await post(ec, { org_id: PRO, feature: "ai_runs", quantity: 5000, consume: true });
  ok(r.status === 200 && r.json && r.json.max === null && r.json.remaining === null, "pro: unlimited, max/remaining null", r);
  r = await post(ec, { org_id: PRO, feature: "seats" });
  ok(r.status === 200 && r.json && r.json.max === 25, "quantity defaults to 1, consume to false", r);
  is(Number((await sql`SELECT current FROM ipai.check_entitlement(${PRO}, 'seats')`)[0].current), 2, "the default check consumed nothing");

  // cms-publisher
  const pub = process.env.URL_PUB + "/cms-publisher";
  await sql`SELECT set_config('ipai.user_id', 'acce0000-0000-4000-8000-0000000ee003', false)`;
  r = await post(pub, "");
  ok(r.status === 200 && r.json && r.json.executed === 0, "cms-publisher with nothing due: 200 {executed: 0}", r);
  await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', 'acce0000-0000-4000-8000-0000000ee004', true)`;
    for (let i = 0; i < 3; i++) {
      const [{ id }] = await tx`SELECT ipai.cms_create_page(${PRO}, ${"Edge page " + i}, 'b') AS id`;
      await tx`SELECT ipai.cms_request_approval(${id})`;
      await tx`SELECT set_config('ipai.user_id', 'acce0000-0000-4000-8000-0000000ee003', true)`;
      await tx`SELECT ipai.cms_approve(${id})`;
      await tx`SELECT ipai.cms_schedule_publish(${id}, clock_timestamp())`;
      await tx`SELECT set_config('ipai.user_id', 'acce0000-0000-4000-8000-0000000ee004', true)`;
    }
  });
  r = await post(pub, "");
  ok(r.status === 200 && r.json && r.json.executed === 3, "cms-publisher: 200 {executed: 3}", r);
  is(Number((await sql`SELECT count(*) AS n FROM ipai.cms_pages WHERE org_id = ${PRO} AND status = 'published'`)[0].n), 3, "the three pages are published");

  // billing-checkout
  const bc = process.env.URL_BC + "/billing-checkout";
  const owner = jwt({ sub: "acce0000-0000-4000-8000-0000000ee003", role: "authenticated", aud: "authenticated", exp: now + 600 });
  const editor = jwt({ sub: "acce0000-0000-4000-8000-0000000ee002", role: "authenticated", aud: "authenticated", exp: now + 600 });
  const body = { org_id: PRO, plan_id: "pro", success_url: "https://app.example.com/ok?s={CHECKOUT_SESSION_ID}", cancel_url: "https://app.example.com/cancel" };
  r = await post(bc, body, { authorization: "Bearer " + owner });
  ok(r.status === 200 && r.json && r.json.url === "https://checkout.stripe.com/c/pay/cs_test_acc", "billing-checkout: 200 {url} from Stripe", r);
  const reqs = fs.readFileSync(process.env.FAKE_LOG, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const last = reqs[reqs.length - 1] || {};
  const form = new URLSearchParams(last.body || "");
  ok(last.method === "POST" && last.url === "/v1/checkout/sessions" && /x-www-form-urlencoded/.test(last.ctype || ""), "POST /v1/checkout/sessions, form-encoded", last);
  ok(last.auth === "Bearer sk_test_accEdge" || (last.auth || "").startsWith("Basic "), "authenticated with STRIPE_SECRET_KEY", last.auth);
  ok(form.get("mode") === "subscription" && form.get("line_items[0][price]") === "price_1AccEdgePro" && form.get("line_items[0][quantity]") === "1",
    "mode subscription, the plan's price, quantity 1", Object.fromEntries(form));
  ok(form.get("client_reference_id") === PRO && form.get("metadata[org_id]") === PRO, "client_reference_id and metadata[org_id]", Object.fromEntries(form));
  ok(form.get("customer") === "cus_AccEdge", "the org's Stripe customer", Object.fromEntries(form));
  ok(form.get("success_url") === body.success_url && form.get("cancel_url") === body.cancel_url, "success_url and cancel_url unchanged (incl. {CHECKOUT_SESSION_ID})", Object.fromEntries(form));
  r = await post(bc, { ...body, org_id: FREE }, { authorization: "Bearer " + editor });
  ok(r.status === 403, "billing-checkout by an editor: 403 (42501) (" + r.status + ")", r);
  r = await post(bc, { ...body, plan_id: "platinum" }, { authorization: "Bearer " + owner });
  is(r.status, 400, "billing-checkout for an unknown plan: 400 (22023)");

  // the SQL function itself
  const [{ p }] = await sql`SELECT ipai.checkout_session_params(${FREE}, 'pro', 'https://a/ok', 'https://a/no') AS p`;
  ok(p && p.mode === "subscription" && p.client_reference_id === FREE && p.metadata && p.metadata.org_id === FREE && !p.customer,
    "checkout_session_params for an org without customer: no customer field", p);
  const cc = async (q) => { try { await q; return "OK"; } catch (e) { return e.code; } };
  is(await cc(sql`SELECT ipai.checkout_session_params(${FREE}, 'platinum', 'https://a/ok', 'https://a/no')`), "22023", "checkout_session_params: unknown plan: 22023");
  is(await cc(sql`SELECT ipai.checkout_session_params(${"acce0000-0000-4000-8000-0000000edfff"}, 'pro', 'https://a/ok', 'https://a/no')`), "22023", "checkout_session_params: unknown org: 22023");
  is(await cc(sql.begin(async (tx) => { await tx`SELECT set_config('ipai.user_id', 'acce0000-0000-4000-8000-0000000ee002', true)`; await tx`SET LOCAL ROLE authenticated`;
    await tx`SELECT ipai.checkout_session_params(${FREE}, 'pro', 'https://a/ok', 'https://a/no')`; })), "42501", "checkout_session_params as an editor: 42501");
  await sql.end();
  L.done();
})().catch((e) => { console.log("not ok - exception " + (e.stack || e)); console.log("1..0"); process.exit(1); });
JS
