#!/usr/bin/env node
// acceptance_webhooks.t: ipai.stripe_webhook with realistic Stripe events
// (API 2025-03-31.basil: periods on subscription items; and an older API
// version with periods on the subscription), signed by Stripe's SDK.
// SPEC 3 "Stripe webhooks": statuses, exactly-once under 16 concurrent
// deliveries, out-of-order delivery, deferral, plan following status, IP002.
'use strict';
const path = require('path');
const fs = require('fs');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, diag } = L;
const Stripe = L.req('stripe');
const stripe = new Stripe('sk_test_offline');
const secret = 'whsec_accWebhook' + Date.now();
const oldSecret = 'whsec_accWebhookOld' + Date.now();
const PRICE = 'price_1AccPro99Monthly';
const A = L.uuid('a', 1), B = L.uuid('b', 1), C = L.uuid('c', 1), D = L.uuid('d', 1);
const now = Math.floor(Date.now() / 1000);
let seq = 0;
const iso = (s) => new Date(s * 1000).toISOString();

function subscription({ id, customer, status = 'active', price = PRICE, ps, pe, metadata = {}, legacy = false, canceledAt = null }) {
  const item = { id: 'si_' + id.slice(4), object: 'subscription_item', created: ps, metadata: {},
    price: { id: price, object: 'price', active: true, billing_scheme: 'per_unit', currency: 'usd', product: 'prod_AccPro',
      recurring: { interval: 'month', interval_count: 1, usage_type: 'licensed' }, type: 'recurring', unit_amount: 9900 },
    quantity: 1, subscription: id };
  if (!legacy) { item.current_period_start = ps; item.current_period_end = pe; }
  const o = { id, object: 'subscription', application: null, billing_cycle_anchor: ps, cancel_at: null, cancel_at_period_end: false,
    canceled_at: canceledAt, collection_method: 'charge_automatically', created: ps, currency: 'usd', customer,
    items: { object: 'list', data: [item], has_more: false, total_count: 1, url: `/v1/subscription_items?subscription=${id}` },
    latest_invoice: 'in_' + id.slice(4), livemode: false, metadata, start_date: ps, status, trial_end: null, trial_start: null };
  if (legacy) { o.current_period_start = ps; o.current_period_end = pe; o.plan = item.price; }
  return o;
}
function event(type, object, created, extra = {}) {
  return { id: `evt_1Acc${(++seq).toString().padStart(4, '0')}${Math.random().toString(36).slice(2, 10)}`, object: 'event',
    api_version: extra.api_version || '2025-03-31.basil', created, data: { object, ...(extra.previous_attributes ? { previous_attributes: extra.previous_attributes } : {}) },
    livemode: false, pending_webhooks: 1, request: { id: 'req_' + seq, idempotency_key: null }, type };
}
function checkout({ org, customer, sub, useRef = false }) {
  return { id: 'cs_test_' + customer, object: 'checkout.session', client_reference_id: useRef ? org : null,
    customer, customer_details: { email: 'billing@example.com' }, metadata: useRef ? {} : { org_id: org }, mode: 'subscription',
    payment_status: 'paid', status: 'complete', subscription: sub, success_url: 'https://example.com/ok', amount_total: 9900, currency: 'usd' };
}
function invoice({ id, customer, sub, status, paid }) {
  return { id, object: 'invoice', amount_due: 9900, amount_paid: paid, amount_remaining: 9900 - paid, billing_reason: 'subscription_cycle',
    currency: 'usd', customer, status, subscription: sub,
    parent: { type: 'subscription_details', subscription_details: { subscription: sub, metadata: {} } },
    lines: { object: 'list', data: [{ id: 'il_1', object: 'line_item', amount: 9900, currency: 'usd',
      pricing: { price_details: { price: PRICE, product: 'prod_AccPro' } }, period: { start: now - 86400, end: now + 86400 * 29 } }], has_more: false },
    period_start: now - 86400, period_end: now + 86400 * 29, created: now, hosted_invoice_url: 'https://invoice.stripe.com/i/acct/test', number: 'ACC-0001' };
}

(async () => {
  const db = L.newDb('webhooks');
  const sql = L.connect(db, { max: 18 });
  {
    const p0 = JSON.stringify({ id: 'evt_1AccNoSecret', object: 'event', type: 'customer.created', created: now, data: { object: { id: 'cus_0', object: 'customer' } } });
    const h0 = stripe.webhooks.generateTestHeaderString({ payload: p0, secret });
    is(await code(() => sql`SELECT * FROM ipai.stripe_webhook(${p0}::text, ${h0}::text)`), 'IP002', 'no webhook secret configured yet: IP002');
  }
  await sql`SELECT ipai.set_stripe_webhook_secret(${oldSecret})`;
  await sql`SELECT ipai.set_stripe_webhook_secret(${secret})`;
  await sql`UPDATE ipai.plans SET stripe_price_id = ${PRICE} WHERE id = 'pro'`;
  for (const [id, name] of [[A, 'Acme'], [B, 'Bravo'], [C, 'Charlie'], [D, 'Delta']])
    await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${id}, ${name}, 'UTC')`;

  const deliver = async (ev, opts = {}) => {
    const payload = typeof ev === 'string' ? ev : JSON.stringify(ev, null, 2);
    const header = opts.header ?? stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret || secret, timestamp: opts.t || Math.floor(Date.now() / 1000) });
    const conn = opts.conn || sql;
    const rows = opts.text
      ? await conn`SELECT * FROM ipai.stripe_webhook(${payload}::text, ${header}::text)`
      : await conn`SELECT * FROM ipai.stripe_webhook(${Buffer.from(payload)}::bytea, ${header}::text)`;
    return rows[0];
  };
  const one = async (q) => (await q)[0] || null;
  const orgPlan = async (id) => (await one(sql`SELECT plan_id FROM ipai.organizations WHERE id = ${id}`)).plan_id;
  const subRow = (sid) => one(sql`SELECT org_id, status, plan_id, current_period_start, current_period_end FROM ipai.subscriptions WHERE stripe_subscription_id = ${sid}`);
  const inbox = async () => Number((await one(sql`SELECT count(*) AS n FROM ipai.webhook_events`)).n);

  // 1. checkout links customer + subscription to the org in metadata.org_id
  const ps = now - 3 * 86400, pe = ps + 30 * 86400;
  const subA = subscription({ id: 'sub_1AccA', customer: 'cus_AccA', ps, pe, status: 'incomplete' });
  let ev = event('checkout.session.completed', checkout({ org: A, customer: 'cus_AccA', sub: 'sub_1AccA' }), now - 100);
  let r = await deliver(ev);
  is(r && [r.status, r.event_id, r.event_type], ['processed', ev.id, 'checkout.session.completed'], 'checkout.session.completed: processed, with event id and type');
  is((await one(sql`SELECT stripe_customer_id FROM ipai.billing_customers WHERE org_id = ${A}`) || {}).stripe_customer_id, 'cus_AccA',
    'checkout links the Stripe customer to the org in metadata.org_id');
  r = await deliver(ev);
  is(r.status, 'duplicate', 'the same checkout event again: duplicate');
  r = await deliver(ev, { text: true });
  is(r.status, 'duplicate', 'the same event through the text overload: duplicate');
  r = await deliver({ ...ev, pending_webhooks: 3, request: { id: 'req_retry', idempotency_key: null } });
  is(r.status, 'duplicate', 'a redelivery of the same event id with other bytes (Stripe retries change pending_webhooks): duplicate');

  // 2. subscription.created active on the pro price -> org on pro, periods from the item
  subA.status = 'active';
  const evCreated = event('customer.subscription.created', subA, now - 90);
  r = await deliver(evCreated);
  is(r.status, 'processed', 'customer.subscription.created: processed');
  let s = await subRow('sub_1AccA');
  ok(s && s.org_id === A && s.status === 'active' && s.plan_id === 'pro', 'subscription row: org, status active, plan pro', s);
  ok(s && s.current_period_start && +s.current_period_start === ps * 1000 && +s.current_period_end === pe * 1000,
    'current_period_start/end taken from the subscription item (API 2025-03-31.basil)', s);
  is(await orgPlan(A), 'pro', 'the organization follows its subscription: pro');
  // the usage period is the subscription's period now
  const pv = await one(sql`SELECT * FROM ipai.preview_invoice(${A})`);
  ok(pv && +pv.period_start === ps * 1000 && +pv.period_end === pe * 1000, 'preview_invoice uses the subscription period', pv);
  await sql`SELECT ipai.record_usage(${A}, 'ai_runs', 5, 'before-period', ${new Date((ps - 3600) * 1000)})`;
  await sql`SELECT ipai.record_usage(${A}, 'ai_runs', 7, 'in-period', ${new Date((ps + 3600) * 1000)})`;
  const pv2 = await one(sql`SELECT metered_quantity, total FROM ipai.preview_invoice(${A})`);
  ok(pv2 && Number(pv2.metered_quantity) === 7 && Number(pv2.total) === 99.7, 'usage counts from the subscription period start (5 before it excluded, 7 inside): 99.70', pv2);
  const ce = await one(sql`SELECT current FROM ipai.check_entitlement(${A}, 'ai_runs')`);
  is(ce && Number(ce.current), 7, 'check_entitlement current = usage within the subscription period');

  // 3. 16 concurrent deliveries of one event from separate connections
  const newer = { ...subA, status: 'past_due' };
  const evStorm = event('customer.subscription.updated', newer, now - 60, { previous_attributes: { status: 'active' } });
  const payload = JSON.stringify(evStorm);
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Math.floor(Date.now() / 1000) });
  const conns = Array.from({ length: 16 }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));
  await Promise.all(conns.map((c) => c`SELECT 1`));
  const results = await Promise.all(conns.map((c) => deliver(payload, { header, conn: c }).then((x) => x.status, (e) => 'error ' + e.code + ' ' + e.message)));
  const counts = results.reduce((m, x) => ((m[x] = (m[x] || 0) + 1), m), {});
  ok(counts.processed === 1 && counts.duplicate === 15, '16 concurrent deliveries: 1 processed, 15 duplicate, no error', counts);
  await Promise.all(conns.map((c) => c.end()));
  const stored = await one(sql`SELECT count(*) AS n FROM ipai.webhook_events w WHERE w::text LIKE ${'%' + evStorm.id + '%'}`);
  is(Number(stored.n), 1, 'the event is stored once in the inbox');
  s = await subRow('sub_1AccA');
  is(s && s.status, 'past_due', 'its effect is applied');

  // 4. an older updated after a newer one never overwrites
  const older = event('customer.subscription.updated', { ...subA, status: 'active', metadata: { note: 'older' } }, now - 80);
  r = await deliver(older);
  ok(['processed', 'ignored', 'duplicate'].includes(r.status), 'an older event is accepted (200-type status): ' + r.status);
  s = await subRow('sub_1AccA');
  is(s.status, 'past_due', 'an older customer.subscription.updated does not overwrite the newer state');
  // two events in the same second: the later delivered, not older, applies
  const same1 = event('customer.subscription.updated', { ...subA, status: 'active' }, now - 50);
  const same2 = event('customer.subscription.updated', { ...subA, status: 'trialing' }, now - 50);
  await deliver(same1);
  await deliver(same2);
  s = await subRow('sub_1AccA');
  ok(s && ['active', 'trialing'].includes(s.status), 'two events in the same second: both accepted, state is one of them (' + (s && s.status) + ')');
  is(await orgPlan(A), 'pro', 'trialing/active on the pro price: pro');

  // 5. canceled via updated -> free; deleted -> free
  r = await deliver(event('customer.subscription.updated', { ...subA, status: 'canceled', canceled_at: now - 40 }, now - 40));
  is(r.status, 'processed', 'updated to canceled: processed');
  is(await orgPlan(A), 'free', 'canceled: back to free');
  r = await deliver(event('customer.subscription.updated', { ...subA, status: 'active' }, now - 45));
  is(await orgPlan(A), 'free', 'an older "active" after the cancellation does not resurrect pro');
  // a new subscription (resubscribe), then deleted
  const subA2 = subscription({ id: 'sub_1AccA2', customer: 'cus_AccA', ps, pe });
  r = await deliver(event('customer.subscription.created', subA2, now - 30));
  is(await orgPlan(A), 'pro', 'a new active subscription of the same customer: pro');
  r = await deliver(event('customer.subscription.deleted', { ...subA2, status: 'canceled', canceled_at: now - 20, ended_at: now - 20 }, now - 20));
  is(r.status, 'processed', 'customer.subscription.deleted: processed');
  is(await orgPlan(A), 'free', 'deleted: back to free');
  s = await subRow('sub_1AccA2');
  is(s && s.status, 'canceled', 'the subscription row says canceled');
  const [cal] = await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${A} AND feature = 'ai_runs'
      AND occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
  const ce2 = await one(sql`SELECT current, max FROM ipai.check_entitlement(${A}, 'ai_runs')`);
  ok(ce2 && Number(ce2.current) === cal.q && Number(ce2.max) === 100, `back on free: the period is the calendar month again (current ${ce2 && ce2.current}, expected ${cal.q}, max 100)`, ce2);

  // 6. invoices
  for (const [type, inv] of [
    ['invoice.payment_failed', invoice({ id: 'in_1AccFail', customer: 'cus_AccA', sub: 'sub_1AccA', status: 'open', paid: 0 })],
    ['invoice.paid', invoice({ id: 'in_1AccPaid', customer: 'cus_AccA', sub: 'sub_1AccA', status: 'paid', paid: 9900 })],
    ['invoice.payment_succeeded', invoice({ id: 'in_1AccSucc', customer: 'cus_AccA', sub: 'sub_1AccA', status: 'paid', paid: 9900 })],
  ]) {
    r = await deliver(event(type, inv, now - 10));
    is(r.status, 'processed', `${type}: processed`);
    const iv = await one(sql`SELECT org_id, status, amount_paid FROM ipai.invoices WHERE stripe_invoice_id = ${inv.id}`);
    ok(iv && iv.org_id === A && iv.status === inv.status && [String(inv.amount_paid), String(inv.amount_paid / 100), (inv.amount_paid / 100).toFixed(2)].includes(String(iv.amount_paid)),
      `${type}: invoice row with org, status ${inv.status}, amount_paid`, iv);
  }
  // a failed payment for an invoice already paid (older event) does not undo it
  r = await deliver(event('invoice.payment_failed', invoice({ id: 'in_1AccPaid', customer: 'cus_AccA', sub: 'sub_1AccA', status: 'open', paid: 0 }), now - 500));
  is((await one(sql`SELECT status FROM ipai.invoices WHERE stripe_invoice_id = 'in_1AccPaid'`)).status, 'paid', 'an older payment_failed does not undo a paid invoice');

  // 7. unknown types: ignored, stored anyway
  let before = await inbox();
  const evUnknown = event('customer.created', { id: 'cus_Zzz', object: 'customer', email: 'x@example.com' }, now);
  r = await deliver(evUnknown);
  is(r && [r.status, r.event_id, r.event_type], ['ignored', evUnknown.id, 'customer.created'], 'an unhandled type: ignored');
  is(await inbox(), before + 1, 'and stored anyway');
  r = await deliver(evUnknown);
  is(r.status, 'duplicate', 'the same unhandled event again: duplicate');

  // 8. out of order: subscription before checkout -> deferred, then applied
  const subB = subscription({ id: 'sub_1AccB', customer: 'cus_AccB', ps, pe, legacy: true });
  const evB = event('customer.subscription.created', subB, now - 70, { api_version: '2024-06-20' });
  r = await deliver(evB);
  is(r.status, 'deferred', 'subscription.created for an unknown customer: deferred');
  is(await orgPlan(B), 'free', '... nothing applied yet');
  r = await deliver(evB);
  ok(['duplicate', 'deferred'].includes(r.status), 'the deferred event again: duplicate/deferred, not applied twice: ' + r.status);
  r = await deliver(event('checkout.session.completed', checkout({ org: B, customer: 'cus_AccB', sub: 'sub_1AccB', useRef: true }), now - 65));
  is(r.status, 'processed', 'checkout via client_reference_id: processed');
  s = await subRow('sub_1AccB');
  ok(s && s.org_id === B && s.status === 'active' && s.plan_id === 'pro', 'the deferred subscription is applied once attributable', s);
  ok(s && s.current_period_start && +s.current_period_start === ps * 1000, 'older API version: periods from the subscription', s);
  is(await orgPlan(B), 'pro', 'org B: pro');

  // an invoice for a customer nobody knows yet: deferred
  r = await deliver(event('invoice.paid', invoice({ id: 'in_1AccUnknown', customer: 'cus_AccNobody', sub: 'sub_1AccNobody', status: 'paid', paid: 9900 }), now - 5));
  is(r.status, 'deferred', 'invoice.paid for an unknown customer: deferred');
  // deferred, then made attributable by an operator linking the customer with a plain INSERT (Odoo / psql)
  const subD = subscription({ id: 'sub_1AccD', customer: 'cus_AccD', ps, pe });
  r = await deliver(event('customer.subscription.created', subD, now - 60));
  is(r.status, 'deferred', 'subscription.created for cus_AccD (unknown yet): deferred');
  await sql`INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES (${D}, 'cus_AccD')`;
  s = await subRow('sub_1AccD');
  ok(s && s.org_id === D && (await orgPlan(D)) === 'pro', 'once an operator links the customer (INSERT INTO billing_customers), the deferred event is applied automatically', { sub: s, plan: await orgPlan(D) });
  if (!s) {
    await deliver(event('invoice.paid', invoice({ id: 'in_1AccD', customer: 'cus_AccD', sub: 'sub_1AccD', status: 'paid', paid: 9900 }), now - 1));
    diag('after a later event for cus_AccD the deferred subscription is ' + ((await subRow('sub_1AccD')) ? 'applied' : 'still not applied'));
  }

  // usage recorded in the first minutes of a new subscription, before its webhooks arrive, is billed
  const E = L.uuid('e', 1);
  await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${E}, 'Echo', 'UTC')`;
  await sql`SELECT ipai.record_usage(${E}, 'ai_runs', 4, 'echo-early', now() - interval '10 minutes')`;
  const psE = now - 15 * 60;
  await deliver(event('checkout.session.completed', checkout({ org: E, customer: 'cus_AccE', sub: 'sub_1AccE' }), psE + 2));
  await deliver(event('customer.subscription.created', subscription({ id: 'sub_1AccE', customer: 'cus_AccE', ps: psE, pe: psE + 30 * 86400 }), psE + 3));
  is(await orgPlan(E), 'pro', 'org E upgraded to pro by webhooks');
  const pvE = await one(sql`SELECT metered_quantity FROM ipai.preview_invoice(${E})`);
  is(pvE && Number(pvE.metered_quantity), 4, 'the 4 runs recorded 5 minutes after the period start (before the webhooks arrived) are billed');

  // 9. trialing -> pro; subscription on a price of no plan does not give pro
  const subC = subscription({ id: 'sub_1AccC', customer: 'cus_AccC', ps, pe, status: 'trialing', metadata: { org_id: C } });
  await deliver(event('checkout.session.completed', checkout({ org: C, customer: 'cus_AccC', sub: 'sub_1AccC' }), now - 200));
  r = await deliver(event('customer.subscription.created', subC, now - 199));
  is(await orgPlan(C), 'pro', 'trialing on the pro price: pro');

  // 10. bad signatures: IP002, nothing changes; logged with the event id
  before = await inbox();
  const evBad = event('customer.subscription.updated', { ...subC, status: 'canceled' }, now);
  const badPayload = JSON.stringify(evBad);
  is(await code(() => deliver(badPayload, { secret: 'whsec_wrong' })), 'IP002', 'wrong secret: IP002');
  is(await code(() => deliver(badPayload, { t: Math.floor(Date.now() / 1000) - 301 })), 'IP002', 'signed 301 s ago: IP002');
  is(await code(() => deliver(badPayload, { header: 'garbage' })), 'IP002', 'a malformed header: IP002');
  is(await code(() => deliver(badPayload, { header: '' })), 'IP002', 'an empty header: IP002');
  is(await code(() => sql`SELECT * FROM ipai.stripe_webhook(${Buffer.from(badPayload)}::bytea, NULL::text)`), 'IP002', 'a NULL header: IP002');
  const goodHdr = stripe.webhooks.generateTestHeaderString({ payload: badPayload, secret, timestamp: Math.floor(Date.now() / 1000) });
  is(await code(() => deliver(JSON.stringify(JSON.parse(badPayload), null, 1), { header: goodHdr })), 'IP002', 're-rendered JSON under the original signature: IP002');
  is(await inbox(), before, 'nothing stored after rejections');
  is(await orgPlan(C), 'pro', 'nothing applied after rejections');
  if (process.env.IPAI_SERVER_LOG && fs.existsSync(process.env.IPAI_SERVER_LOG)) {
    await L.sleep(300);
    ok(fs.readFileSync(process.env.IPAI_SERVER_LOG, 'utf8').includes(evBad.id), 'the rejection is in the server log with the event id');
  }
  // old secret still active during rotation
  r = await deliver(event('customer.updated', { id: 'cus_AccC', object: 'customer' }, now), { secret: oldSecret });
  is(r.status, 'ignored', 'signed with the previous secret (rotation, both active): accepted');
  // malformed JSON with a valid signature: not a crash; 22023-type error or ignored, never processed
  const junk = '{"id": "evt_junk", "type": ';
  const jr = await deliver(junk).then((x) => x.status, (e) => 'error ' + e.code);
  ok(jr !== 'processed' && !/XX000|error undefined/.test(jr), 'a signed body that is not JSON: a clean error (' + jr + ')');

  // 11. the secret: only superuser/service_role sets it; never readable by anon/authenticated
  for (const role of ['anon', 'authenticated']) {
    is(await code(() => L.as(sql, role, A, (tx) => tx`SELECT ipai.set_stripe_webhook_secret('whsec_hijack')`)), '42501', `${role} cannot set the webhook secret`);
  }
  is(await code(() => L.as(sql, 'service_role', null, (tx) => tx`SELECT ipai.set_stripe_webhook_secret(${'whsec_svc' + now})`)), 'OK', 'service_role sets the webhook secret');
  const rels = await sql`SELECT c.oid::regclass::text AS r FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')`;
  const leaks = [];
  for (const role of ['anon', 'authenticated']) {
    for (const { r: rel } of rels) {
      const got = await L.as(sql, role, A, (tx) => tx.unsafe(`SELECT t::text AS x FROM ${rel} t`)).catch(() => []);
      if (got.some((g) => g.x && (g.x.includes(secret) || g.x.includes(oldSecret)))) leaks.push(role + ':' + rel);
    }
  }
  ok(!leaks.length, 'no table or view shows the webhook secret to anon/authenticated', leaks);
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
