#!/usr/bin/env bash
# End to end: the stripe-webhook Edge handler (Deno) against the throwaway
# cluster, over real HTTP, with payloads signed by Stripe's own Node SDK
# (stripe.webhooks.generateTestHeaderString).  Statuses 200/400/500, the
# raw body (never re-serialized), deferral released by a checkout, and
# concurrent identical deliveries.
set -euo pipefail
. "$IPAI_SRC/test/lib/edge.sh"

db=ipai_e2e_webhook_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	set +e
	edge_stop
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT

secret=whsec_e2e_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SELECT ipai.set_stripe_webhook_secret('$secret');
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name) VALUES
	('e2e00000-0000-4000-8000-00000000000a', 'E2E Acme'),
	('e2e00000-0000-4000-8000-00000000000b', 'E2E Globex');
SQL

EDGE_DB=$db edge_start stripe-webhook

cd "$IPAI_SRC"
EDGE_URL=$EDGE_URL SECRET=$secret DB_URL="postgres://postgres@127.0.0.1:$PGPORT/$db" node - <<'JS'
const Stripe = require("stripe");
const postgres = require("postgres");
const fx = require("./test/fixtures/stripe/billing_events.cjs");

const stripe = new Stripe("sk_test_unused");
const url = process.env.EDGE_URL + "/stripe-webhook";
const secret = process.env.SECRET;
const sql = postgres(process.env.DB_URL, { max: 2, onnotice: () => {} });
const ORG_A = "e2e00000-0000-4000-8000-00000000000a";
const ORG_B = "e2e00000-0000-4000-8000-00000000000b";

let n = 0;
let failed = 0;
function ok(cond, name, extra) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra));
}

function sign(payload, opts = {}) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, ...opts });
}

async function post(body, header) {
  const headers = { "content-type": "application/json" };
  if (header !== undefined) headers["stripe-signature"] = header;
  const res = await fetch(url, { method: "POST", headers, body });
  let json = null;
  try { json = await res.json(); } catch { /* not JSON */ }
  return { status: res.status, json };
}

async function deliver(payload) {
  return post(payload, sign(payload));
}

(async () => {
  const now = Math.floor(Date.now() / 1000);

  // processed
  const created = fx.subscriptionEvent({
    id: "evt_e2e_sub_created", type: "customer.subscription.created", created: now - 60,
    sub: "sub_e2eA", customer: "cus_e2eA", status: "active", org: ORG_A,
  });
  let r = await deliver(created);
  ok(r.status === 200, "a signed subscription event: 200", r);
  ok(r.json && r.json.status === "processed" && r.json.event_id === "evt_e2e_sub_created"
     && r.json.event_type === "customer.subscription.created",
     "{status: processed, event_id, event_type}", r.json);
  let [org] = await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${ORG_A}`;
  ok(org.plan_id === "pro", "the organization is on pro", org);
  const [sub] = await sql`SELECT status, current_period_end FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_e2eA'`;
  ok(sub && sub.status === "active" && sub.current_period_end.getTime() === 1738368000 * 1000,
     "the subscription and its item period are stored", sub);

  // duplicate, even with a new signature
  r = await deliver(created);
  ok(r.status === 200 && r.json.status === "duplicate", "the same event again: 200 duplicate", r);

  // ignored
  r = await deliver(fx.otherEvent({ id: "evt_e2e_other", type: "customer.updated", created: now }));
  ok(r.status === 200 && r.json.status === "ignored" && r.json.event_type === "customer.updated",
     "a type not handled: 200 ignored", r);

  // deferred, then released by the checkout that links it
  r = await deliver(fx.subscriptionEvent({
    id: "evt_e2e_b_created", type: "customer.subscription.created", created: now - 30,
    sub: "sub_e2eB", customer: "cus_e2eB", status: "trialing",
  }));
  ok(r.status === 200 && r.json.status === "deferred", "an unattributable subscription: 200 deferred", r);
  r = await deliver(fx.invoiceEvent({
    id: "evt_e2e_b_invoice", type: "invoice.paid", created: now - 29,
    invoice: "in_e2eB", customer: "cus_e2eB", sub: "sub_e2eB", amount: 0,
  }));
  ok(r.status === 200 && r.json.status === "deferred", "its invoice: 200 deferred", r);
  r = await deliver(fx.checkoutEvent({
    id: "evt_e2e_b_checkout", created: now - 31, session: "cs_test_e2eB",
    customer: "cus_e2eB", sub: "sub_e2eB", org: ORG_B,
  }));
  ok(r.status === 200 && r.json.status === "processed", "the checkout: 200 processed", r);
  const rows = await sql`SELECT event_id, status FROM ipai.webhook_events
                          WHERE event_id LIKE 'evt_e2e_b_%' ORDER BY event_id`;
  ok(rows.every((x) => x.status === "processed") && rows.length === 3,
     "the deferred events were applied with the checkout", rows);
  [org] = await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${ORG_B}`;
  ok(org.plan_id === "pro", "organization B is on pro (trialing)", org);

  // the raw bytes are what is signed
  const body = fx.otherEvent({ id: "evt_e2e_raw", created: now });
  const reserialized = JSON.stringify(JSON.parse(body));
  r = await post(body, sign(reserialized));
  ok(r.status === 400 && r.json.sqlstate === "IP002",
     "a signature of the re-serialized JSON does not verify the raw body: 400", r);
  r = await post(reserialized, sign(reserialized));
  ok(r.status === 200 && r.json.status === "ignored", "the compact body signed as sent: 200", r);
  const umlaut = body.replace("Jenny Rosen", "Jürgen Groß 😀").replace("evt_e2e_raw", "evt_e2e_utf8");
  r = await deliver(umlaut);
  ok(r.status === 200 && r.json.event_id === "evt_e2e_utf8", "non-ASCII bytes verify as received", r);

  // bad signatures: 400, nothing changed
  const [{ before }] = await sql`SELECT count(*)::int AS before FROM ipai.webhook_events`;
  const victim = fx.subscriptionEvent({
    id: "evt_e2e_evil", type: "customer.subscription.deleted", created: now,
    sub: "sub_e2eA", customer: "cus_e2eA", status: "canceled", org: ORG_A,
  });
  r = await post(victim, undefined);
  ok(r.status === 400 && r.json.sqlstate === "IP002", "no Stripe-Signature header: 400", r);
  r = await post(victim, stripe.webhooks.generateTestHeaderString({ payload: victim, secret: "whsec_wrong" }));
  ok(r.status === 400 && r.json.sqlstate === "IP002", "signed with another secret: 400", r);
  r = await post(victim.replace('"canceled"', '"cancelee"'), sign(victim));
  ok(r.status === 400, "a tampered body: 400", r);
  r = await post(victim, sign(victim, { timestamp: now - 600 }));
  ok(r.status === 400 && /300 seconds/.test(r.json.detail || ""), "signed 10 minutes ago: 400 (tolerance)", r);
  r = await post(victim, "t=" + now + ",v1=" + "0".repeat(64));
  ok(r.status === 400, "a forged v1: 400", r);
  r = await post(victim, "garbage");
  ok(r.status === 400, "a malformed header: 400", r);
  const [{ after }] = await sql`SELECT count(*)::int AS after FROM ipai.webhook_events`;
  [org] = await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${ORG_A}`;
  ok(after === before && org.plan_id === "pro", "rejected deliveries changed nothing", { before, after, org });

  // verified but not a Stripe event: 500 (Stripe would retry; it never sends these)
  r = await deliver("not json at all");
  ok(r.status === 500 && r.json.sqlstate === "22023", "a signed body that is not JSON: 500 with 22023", r);
  r = await deliver(JSON.stringify({ id: "evt_e2e_noc", type: "invoice.paid" }));
  ok(r.status === 500 && r.json.sqlstate === "22023", "an event without created: 500 with 22023", r);

  // method and path
  let res = await fetch(url, { method: "GET" });
  ok(res.status === 405, "GET: 405");
  await res.body?.cancel();

  // 16 identical deliveries at once over HTTP
  const storm = fx.subscriptionEvent({
    id: "evt_e2e_storm", type: "customer.subscription.updated", created: now - 10,
    sub: "sub_e2eA", customer: "cus_e2eA", status: "past_due", org: ORG_A,
  });
  const header = sign(storm);
  const results = await Promise.all(Array.from({ length: 16 }, () => post(storm, header)));
  const statuses = results.map((x) => x.status + ":" + (x.json && x.json.status)).sort();
  ok(statuses.filter((s) => s === "200:processed").length === 1
     && statuses.filter((s) => s === "200:duplicate").length === 15,
     "16 identical deliveries at once: one processed, 15 duplicates", statuses);
  const [{ audits }] = await sql`SELECT count(*)::int AS audits FROM ipai.audit_log
                                  WHERE new_values->>'event_id' = 'evt_e2e_storm'
                                    AND action = 'subscription.update'`;
  ok(audits === 1, "and applied once", { audits });
  const [{ deliveries }] = await sql`SELECT deliveries FROM ipai.webhook_events WHERE event_id = 'evt_e2e_storm'`;
  ok(deliveries === 16, "every delivery counted", { deliveries });

  // the downgrade
  r = await deliver(fx.subscriptionEvent({
    id: "evt_e2e_deleted", type: "customer.subscription.deleted", created: now,
    sub: "sub_e2eA", customer: "cus_e2eA", status: "canceled", org: ORG_A,
  }));
  [org] = await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${ORG_A}`;
  ok(r.status === 200 && r.json.status === "processed" && org.plan_id === "free",
     "customer.subscription.deleted: back to free", { r, org });

  console.log(`1..${n}`);
  await sql.end();
  process.exit(failed ? 1 : 0);
})().catch(async (err) => {
  console.log("not ok - unexpected error: " + (err && err.stack || err));
  console.log(`1..${n + 1}`);
  process.exit(1);
});
JS
