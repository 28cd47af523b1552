#!/usr/bin/env bash
# End to end (TAP): the outbox-sender Edge handler (Deno, Stripe's SDK,
# supabase-js) over real HTTP against the local stand-ins for Stripe and
# Supabase Auth (test/lib/STANDINS.md), which check every request against
# the services' own descriptions.  Meter events arrive with the rows'
# identifiers and values; each kind of failure leaves the right trace in
# the outbox (retry with backoff or Retry-After, in doubt or not, dead
# with the receiver's message); a malformed row is dead and never stops
# the sender; invitations reach new and known addresses with a link that
# ipai.accept_invitation takes; callers must be service_role; the loop
# mode wakes on NOTIFY and stops on SIGTERM.
set -uo pipefail
. "$IPAI_SRC/test/lib/edge.sh"
. "$IPAI_SRC/test/lib/standins.sh"

db=ipai_e2e_outbox_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	edge_stop
	standin_stop_all
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('e0b00000-0000-4000-8000-00000000000a', 'Outbox Pro', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('e0b00000-0000-4000-8000-00000000000a', 'e0b00000-0000-4000-8000-0000000000f1', 'owner');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('e0b00000-0000-4000-8000-00000000000a', 'cus_OutboxPro');
SQL

standin_start stripe --secret-key sk_test_outbox_e2e --customers cus_OutboxPro --meters ai_runs || exit 1
standin_start auth --service-key svc_outbox_e2e --anon-key anon_outbox_e2e --users known@acme.example \
	--redirect-allow 'http://127.0.0.1:3000/**' --undeliverable-domains bounce.example || exit 1

export STRIPE_API_BASE=$STRIPE_STANDIN_URL STRIPE_SECRET_KEY=sk_test_outbox_e2e
export SUPABASE_URL=$AUTH_STANDIN_URL SUPABASE_SERVICE_ROLE_KEY=svc_outbox_e2e
export IPAI_INVITE_REDIRECT_URL=http://127.0.0.1:3000/accept-invitation
export IPAI_OUTBOX_HTTP_TIMEOUT_SECONDS=2 IPAI_OUTBOX_LEASE_SECONDS=30 IPAI_JWKS_COOLDOWN_SECONDS=0
unset SUPABASE_JWT_SECRET IPAI_EDGE_TRUSTED
EDGE_DB=$db edge_start outbox-sender || { echo "1..1"; echo "not ok 1 - outbox-sender starts"; exit 1; }
http_url=$EDGE_URL/outbox-sender
http_log=$EDGE_LOG

cd "$IPAI_SRC"
URL=$http_url DB=$db DBPORT=$PGPORT HTTP_LOG=$http_log node - <<'JS'
const path = require("path");
const { execFileSync, spawn } = require("child_process");
const postgres = require(path.join(process.env.IPAI_SRC, "test", "node_modules", "postgres"));
const sql = postgres({ host: "127.0.0.1", port: +process.env.DBPORT, database: process.env.DB,
                       username: "postgres", onnotice: () => {} });
const STRIPE = process.env.STRIPE_STANDIN_ADMIN, AUTH = process.env.AUTH_STANDIN_ADMIN;
const ORG = "e0b00000-0000-4000-8000-00000000000a", OWNER = "e0b00000-0000-4000-8000-0000000000f1";
let n = 0, failed = 0;
const ok = (cond, name, extra) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && extra !== undefined) console.log("# " + JSON.stringify(extra).slice(0, 2000));
};
const admin = async (base, p, body, method) => {
  const res = await fetch(`${base}/__standin/${p}`, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
};
const run = async (token = "svc_outbox_e2e") => {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(process.env.URL, { method: "POST", headers });
  return { status: res.status, json: await res.json().catch(() => null) };
};
const consume = (k) => sql`SELECT ipai.consume_entitlement(${ORG}, 'ai_runs', ${k})`;
const row = async (identifier) => (await sql`
  SELECT id, attempts, sent_at IS NOT NULL AS sent, dead_at IS NOT NULL AS dead, last_error, in_doubt,
         claimed_at IS NULL AS released,
         extract(epoch FROM next_attempt_at - clock_timestamp()) AS wait_s
    FROM ipai.outbox WHERE payload->>'identifier' = ${identifier}`)[0];
const due = (identifier) => sql`UPDATE ipai.outbox SET next_attempt_at = now() WHERE payload->>'identifier' = ${identifier}`;
const lastIdentifier = async () => (await sql`
  SELECT payload->>'identifier' AS i FROM ipai.outbox WHERE topic = 'stripe.meter_event' ORDER BY id DESC LIMIT 1`)[0].i;

(async () => {
  // who may run it
  let r = await run(null);
  ok(r.status === 401, "without a token: 401", r);
  const user = (await admin(AUTH, "sign", { claims: { sub: OWNER } })).token;
  r = await run(user);
  ok(r.status === 403, "a user's token (verified with the project's JWKS): 403, only the service role", r);
  r = await run();
  ok(r.status === 200 && JSON.stringify(r.json) === JSON.stringify({ sent: 0, retried: 0, dead: 0, remaining: 0 }),
     "the service key, nothing queued: 200 {sent, retried, dead, remaining} all 0", r);

  // five metered runs arrive with their identifiers
  for (let k = 1; k <= 5; k++) await consume(k);
  const rows = await sql`SELECT payload FROM ipai.outbox WHERE topic = 'stripe.meter_event' ORDER BY id`;
  r = await run();
  ok(r.status === 200 && r.json.sent === 5 && r.json.remaining === 0, "five meter events sent", r);
  let events = (await admin(STRIPE, "meter_events")).meter_events;
  const got = events.map((e) => `${e.identifier}:${e.customer}:${e.value}:${e.timestamp}:${e.event_name}`).sort();
  const want = rows.map(({ payload: p }) => `${p.identifier}:cus_OutboxPro:${p.value}:${p.timestamp}:ai_runs`).sort();
  ok(JSON.stringify(got) === JSON.stringify(want), "Stripe has each with the row's identifier, customer, value, timestamp and meter", { got, want });
  const reqs = ((await admin(STRIPE, "requests")).requests).filter((q) => q.path === "/v1/billing/meter_events");
  ok(reqs.every((q) => q.headers.authorization === "Bearer sk_test_outbox_e2e" &&
                       /x-www-form-urlencoded/.test(q.headers["content-type"]) && /^Stripe\/v1 NodeBindings/.test(q.headers["user-agent"] ?? "")),
     "sent by Stripe's SDK with the secret key, form-encoded", reqs.map((q) => q.headers));
  ok((await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE sent_at IS NULL`)[0].n === 0, "every row marked sent");

  // a 500 (twice: the SDK retries once by itself): retried with backoff; a
  // 5xx may have been processed, so the row is in doubt
  await admin(STRIPE, "faults/next", { kind: "500", times: 2, path: "/v1/billing/meter_events" });
  await consume(1);
  let id = await lastIdentifier();
  r = await run();
  let o = await row(id);
  ok(r.json.retried === 1 && o.attempts === 1 && !o.sent && !o.dead && o.released && o.wait_s > 4 && o.wait_s <= 10
     && /^Stripe 500/.test(o.last_error) && o.in_doubt,
     "a 500: retried after 5-10 s, the error kept, in doubt", { r, o });
  ok(r.json.remaining === 0, "(and not due meanwhile)", r);
  await due(id);
  r = await run();
  o = await row(id);
  ok(r.json.sent === 1 && o.sent && o.attempts === 2, "when due again it is sent", { r, o });

  // 429 with Retry-After
  await admin(STRIPE, "faults/next", { kind: "429", retry_after: 120, path: "/v1/billing/meter_events" });
  await consume(1);
  id = await lastIdentifier();
  r = await run();
  o = await row(id);
  ok(r.json.retried === 1 && o.wait_s > 118 && o.wait_s <= 121 && !o.in_doubt,
     "a 429 with Retry-After: 120: not before 120 s, and not in doubt", { r, o });
  await due(id);
  r = await run();
  ok(r.json.sent === 1, "then sent", r);

  // processed, then the answer lost: the resend is deduplicated by its
  // identifier (the SDK's own retry of a timeout or a reset meets the same
  // fault, hence times 2; it does not retry a 500 marked Stripe-Should-Retry: false)
  const lost = [];
  for (const kind of ["timeout_after", "reset_after", "500_after"]) {
    await admin(STRIPE, "faults/next", { kind, seconds: 3, times: kind === "500_after" ? 1 : 2, path: "/v1/billing/meter_events" });
    await consume(2);
    id = await lastIdentifier();
    lost.push(id);
    r = await run();
    o = await row(id);
    // the SDK's retry carries the same Idempotency-Key: Stripe may replay
    // the saved 200 (reset_after), else the row waits in doubt
    ok((r.json.retried === 1 && o.in_doubt && !o.sent) || (r.json.sent === 1 && o.sent),
       `${kind}: Stripe recorded it but the answer was lost: retried in doubt, or settled by the SDK's replay`, { r, o });
    await due(id);
    r = await run();
    o = await row(id);
    events = (await admin(STRIPE, "meter_events")).meter_events;
    ok(o.sent && events.filter((e) => e.identifier === id).length === 1,
       `${kind}: the resend is answered "already exists" and counts as sent; Stripe counts it once`, { r, o });
  }
  const dups = (await admin(STRIPE, "duplicates")).duplicates;
  ok(dups.length >= 2 && dups.every((d) => lost.includes(d.identifier)),
     "Stripe refused resends of those rows only, as duplicates", { lost, dups });

  // connection refused
  await admin(STRIPE, "down", { seconds: 3 });
  await consume(1);
  id = await lastIdentifier();
  r = await run();
  o = await row(id);
  ok(r.json.retried === 1 && !o.in_doubt && /Stripe/.test(o.last_error), "Stripe unreachable (connection refused): retried, not in doubt", { r, o });
  await new Promise((res) => setTimeout(res, 3500));
  await due(id);
  r = await run();
  ok(r.json.sent === 1, "sent once it is back", r);

  // a refusal: dead with Stripe's message
  await admin(STRIPE, "faults/next", { kind: "400", message: "Invalid integer: value", param: "payload[value]", path: "/v1/billing/meter_events" });
  await consume(1);
  id = await lastIdentifier();
  r = await run();
  o = await row(id);
  ok(r.json.dead === 1 && o.dead && o.last_error === "Stripe 400: Invalid integer: value", "a 400 from Stripe: dead with Stripe's message", { r, o });
  ok((await sql`SELECT status FROM ipai.health() WHERE name = 'outbox dead'`)[0].status === "critical", "health: critical (usage not billed)");
  ok((await sql`SELECT ipai.outbox_retry(${o.id}) AS r`)[0].r === true, "the operator retries it");
  r = await run();
  o = await row(id);
  ok(r.json.sent === 1 && o.sent, "sent this time", { r, o });

  // a malformed row written by hand, and a timestamp Stripe would refuse
  await sql`INSERT INTO ipai.outbox (org_id, topic, payload) VALUES
    (${ORG}, 'stripe.meter_event', '{"event_name": "ai_runs", "stripe_customer_id": "cus_OutboxPro", "value": -3, "identifier": "hand-1", "timestamp": 1}'),
    (${ORG}, 'stripe.meter_event', ${sql.json({ event_name: "ai_runs", stripe_customer_id: "cus_OutboxPro", value: 1,
       identifier: "hand-old", timestamp: Math.floor(Date.now() / 1000) - 40 * 86400 })})`;
  await consume(1);
  r = await run();
  ok(r.status === 200 && r.json.dead === 2 && r.json.sent === 1, "malformed and too old: dead, the good row still sent", r);
  ok(/^malformed payload: value/.test((await row("hand-1")).last_error) && /older than the 35 days/.test((await row("hand-old")).last_error),
     "each saying why", [await row("hand-1"), await row("hand-old")]);
  ok(((await admin(STRIPE, "requests")).requests).every((q) => !/hand-/.test(JSON.stringify(q.params ?? {}))), "neither reached Stripe");

  // invitations
  await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${OWNER}, true)`;
    await tx`SELECT ipai.invite_member(${ORG}, 'Newcomer@Acme.example', 'editor')`;
    await tx`SELECT ipai.invite_member(${ORG}, 'known@acme.example', 'viewer')`;
    await tx`SELECT ipai.invite_member(${ORG}, 'someone@bounce.example', 'viewer')`;
  });
  r = await run();
  ok(r.json.sent === 2 && r.json.dead === 1, "three invitations: two sent, one refused by Auth", r);
  const emails = (await admin(AUTH, "emails")).emails;
  const invite = emails.find((e) => e.to === "newcomer@acme.example");
  const magic = emails.find((e) => e.to === "known@acme.example");
  ok(invite && invite.type === "invite" && invite.data.org_id === ORG && invite.data.role === "editor",
     "a new address gets Supabase Auth's invitation e-mail, with the organization in the user's data", emails);
  ok(magic && magic.type === "magiclink", "an address Auth knows gets a magic link instead (one e-mail either way)", emails);
  const link = new URL(invite.redirect_to);
  ok(link.origin + link.pathname === "http://127.0.0.1:3000/accept-invitation" && link.searchParams.get("org_id") === ORG
     && new URL(magic.redirect_to).pathname === "/accept-invitation",
     "both links lead to the accept page with the organization", [invite.redirect_to, magic.redirect_to]);
  const tokens = await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE topic = 'auth.invite' AND sent_at IS NOT NULL AND payload ? 'token'`;
  ok(tokens[0].n === 0, "the tokens are erased from the sent rows");
  const newcomer = "e0b00000-0000-4000-8000-0000000000c1";
  const accepted = await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${newcomer}, true)`;
    return (await tx`SELECT ipai.accept_invitation(${link.searchParams.get("token")}) AS org`)[0].org;
  });
  ok(accepted === ORG, "the link's token is what ipai.accept_invitation takes", accepted);
  const bounced = (await sql`SELECT dead_at IS NOT NULL AS dead, last_error FROM ipai.outbox
                               WHERE topic = 'auth.invite' AND payload->>'email' = 'someone@bounce.example'`)[0];
  ok(bounced.dead && /^Supabase Auth 400 \(email_address_invalid\)/.test(bounced.last_error), "the refused address: dead with Auth's message", bounced);
  await sql`INSERT INTO ipai.outbox (org_id, topic, payload) VALUES (${ORG}, 'auth.invite', '{"email": "x@acme.example"}')`;
  r = await run();
  ok(r.status === 200 && r.json.dead === 1, "a malformed invitation row: dead, the sender goes on", r);
  ok(((await admin(AUTH, "emails")).emails).length === 2, "and no e-mail went out for it");

  // the long-lived loop: woken by NOTIFY, stopped by SIGTERM
  const env = { ...process.env, SUPABASE_DB_URL: `postgres://postgres@127.0.0.1:${process.env.DBPORT}/${process.env.DB}`,
                IPAI_OUTBOX_LOOP: "1", IPAI_OUTBOX_POLL_SECONDS: "600", DENO_NO_UPDATE_CHECK: "1" };
  const loop = spawn(path.join(process.env.IPAI_SRC, "test", "node_modules", ".bin", "deno"),
                     ["run", "--allow-net", "--allow-env", "supabase/functions/outbox-sender/index.ts"],
                     { env, cwd: process.env.IPAI_SRC });
  let out = "";
  loop.stdout.on("data", (d) => (out += d));
  loop.stderr.on("data", (d) => (out += d));
  for (let i = 0; i < 300 && !/listening on channel/.test(out); i++) await new Promise((res) => setTimeout(res, 100));
  ok(/listening on channel ipai_outbox/.test(out), "the loop listens on ipai_outbox", out);
  const before = ((await admin(STRIPE, "meter_events")).meter_events).length;
  await consume(1);
  let delivered = false;
  for (let i = 0; i < 100 && !delivered; i++) {
    await new Promise((res) => setTimeout(res, 100));
    delivered = ((await admin(STRIPE, "meter_events")).meter_events).length === before + 1;
  }
  ok(delivered, "a new row is delivered at once by the loop (woken by NOTIFY; its poll is 10 minutes)", out);
  const exited = new Promise((res) => loop.on("exit", (code, sig) => res({ code, sig })));
  loop.kill("SIGTERM");
  const ex = await Promise.race([exited, new Promise((res) => setTimeout(() => res("still running"), 10000))]);
  ok(ex && ex.code === 0 && /outbox-sender stopped/.test(out), "SIGTERM: it stops cleanly", { ex, out });
  if (ex === "still running") loop.kill("SIGKILL");

  ok((await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE sent_at IS NULL AND dead_at IS NULL`)[0].n === 0,
     "nothing left pending");
  await sql.end();
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log("not ok - " + (e.stack || e)); console.log(`1..${n + 1}`); process.exit(1); });
JS
