#!/usr/bin/env node
// acceptance_races.t: concurrency and edge cases across areas: seat limit
// under concurrent invitations, duplicate invitations, one token accepted
// by two users at once, slugs under concurrent creation, editing a
// published page, time zone validation, realistic subscription shapes
// (several items, an unmapped price, payment-mode checkout), concurrent
// out-of-order webhook deliveries, header field order.
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;
const Stripe = L.req('stripe');
const stripe = new Stripe('sk_test_offline');
const secret = 'whsec_accRaces' + process.pid;
const PRICE = 'price_1AccRacesPro';
const now = Math.floor(Date.now() / 1000);
const conns = (db, k) => Array.from({ length: k }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));

(async () => {
  const db = L.newDb('races');
  const sql = L.connect(db, { max: 6 });
  await sql`SELECT ipai.set_stripe_webhook_secret(${secret})`;
  await sql`UPDATE ipai.plans SET stripe_price_id = ${PRICE} WHERE id = 'pro'`;
  const O = [1, 2, 3, 4, 5, 6, 7].map((i) => L.uuid('9a', i));
  const OWN = L.uuid('9b', 1);
  for (const o of O) {
    await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${o}, ${'Org ' + o.slice(-2)}, 'UTC')`;
    await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${o}, ${OWN}, 'owner')`;
  }
  const asU = (c, u, f) => c.begin(async (tx) => { await tx`SELECT set_config('ipai.user_id', ${u}, true)`; await tx`SET LOCAL ROLE authenticated`; return f(tx); });

  // seats: 8 concurrent invitations into a free org with 1 member -> exactly 2
  let cs = conns(db, 8);
  await Promise.all(cs.map((c) => c`SELECT 1`));
  const res = await Promise.all(cs.map((c, i) => asU(c, OWN, (tx) => tx`SELECT ipai.invite_member(${O[0]}, ${'p' + i + '@example.com'})`).then(() => 'OK', (e) => e.code)));
  await Promise.all(cs.map((c) => c.end()));
  const cnt = res.reduce((m, x) => ((m[x] = (m[x] || 0) + 1), m), {});
  ok(cnt.OK === 2 && cnt.IP005 === 6, '8 concurrent invitations on free (1 member): 2 succeed, 6 get IP005', cnt);
  is(Number((await sql`SELECT current FROM ipai.check_entitlement(${O[0]}, 'seats')`)[0].current), 3, 'seats used: 3, never more');
  // concurrent plain INSERTs of members
  cs = conns(db, 6);
  const res2 = await Promise.all(cs.map((c, i) => c`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${O[1]}, ${L.uuid('9c', i)}, 'viewer')`.then(() => 'OK', (e) => e.code)));
  await Promise.all(cs.map((c) => c.end()));
  is((await sql`SELECT count(*)::int AS n FROM ipai.org_members WHERE org_id = ${O[1]}`)[0].n, 3, '6 concurrent member INSERTs on free: 3 members in the end (' + res2.join(',') + ')');

  // cms_items at the limit: 8 concurrent page creations with 48 pages -> exactly 2
  const CI = L.uuid('9a', 20);
  await sql`INSERT INTO ipai.organizations (id, name) VALUES (${CI}, 'Pages')`;
  await sql`SELECT ipai.cms_create_page(${CI}, 'P ' || g, 'b', 'p-' || g) FROM generate_series(1, 48) g`;
  cs = conns(db, 8);
  const pr8 = await Promise.all(cs.map((c, i) => c`SELECT ipai.cms_create_page(${CI}, ${'Race ' + i}, 'b')`.then(() => 'OK', (e) => e.code)));
  await Promise.all(cs.map((c) => c.end()));
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages WHERE org_id = ${CI}`)[0].n, 50, '8 concurrent page creations at 48/50: 50 pages in the end (' + pr8.join(',') + ')');
  // holds at the limit: 16 sessions reserve 10 each with 40 used -> 6 fit
  const HO = L.uuid('9a', 21);
  await sql`INSERT INTO ipai.organizations (id, name) VALUES (${HO}, 'Holds')`;
  await sql`SELECT ipai.record_usage(${HO}, 'ai_runs', 40)`;
  cs = conns(db, 16);
  const hr = await Promise.all(cs.map((c) => c`SELECT ipai.reserve_entitlement(${HO}, 'ai_runs', 10, '10 minutes')`.then(() => 'OK', (e) => e.code)));
  await Promise.all(cs.map((c) => c.end()));
  const hc = hr.reduce((m, x) => ((m[x] = (m[x] || 0) + 1), m), {});
  ok(hc.OK === 6 && hc.IP001 === 10, '16 concurrent holds of 10 with 40 used: 6 granted, 10 IP001', hc);
  is(Number((await sql`SELECT remaining FROM ipai.check_entitlement(${HO}, 'ai_runs')`)[0].remaining), 0, 'remaining 0, never negative');

  // consumes racing with refresh_org_usage: no lost or doubled counts, limit holds
  const RF = L.uuid('9a', 22);
  await sql`INSERT INTO ipai.organizations (id, name) VALUES (${RF}, 'Refresh race')`;
  cs = conns(db, 10);
  let stop = false, refreshes = 0, granted = 0;
  const refresher = (async () => { while (!stop) { await cs[0]`SELECT ipai.refresh_org_usage()`.catch(() => {}); refreshes++; } })();
  await Promise.all(cs.slice(1).map(async (c) => {
    for (let k = 0; k < 15; k++) {
      await c`SELECT * FROM ipai.consume_entitlement(${RF}, 'ai_runs', 1)`.then(() => granted++, (e) => { if (e.code !== 'IP001') granted -= 1000; });
    }
  }));
  stop = true; await refresher;
  await Promise.all(cs.map((c) => c.end()));
  const [{ q: rfEvents }] = await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${RF}`;
  const rfUsed = Number((await sql`SELECT current FROM ipai.check_entitlement(${RF}, 'ai_runs')`)[0].current);
  ok(rfEvents === granted && rfUsed === rfEvents && rfUsed <= 100, `135 consumes racing ${refreshes} refresh_org_usage calls: granted ${granted}, events ${rfEvents}, current ${rfUsed} (<= 100, all equal)`);

  // duplicate invitations do not take two seats
  await asU(sql, OWN, (tx) => tx`SELECT ipai.invite_member(${O[2]}, 'dup@example.com')`);
  const d2 = await err(() => asU(sql, OWN, (tx) => tx`SELECT ipai.invite_member(${O[2]}, 'DUP@example.com')`));
  const pend = (await sql`SELECT count(*)::int AS n FROM ipai.org_invitations WHERE org_id = ${O[2]} AND lower(email) = 'dup@example.com'`)[0].n;
  diag('inviting the same address again: ' + (d2 ? d2.code + ' ' + d2.message : 'accepted'));
  ok(Number((await sql`SELECT current FROM ipai.check_entitlement(${O[2]}, 'seats')`)[0].current) === 2 || (d2 && pend === 1),
    'the same address invited twice (other case) does not take a second seat', { pend, current: (await sql`SELECT current FROM ipai.check_entitlement(${O[2]}, 'seats')`)[0].current });

  // one token, two users at once
  await asU(sql, OWN, (tx) => tx`SELECT ipai.invite_member(${O[3]}, 'race@example.com')`);
  const [{ t: tok }] = await sql`SELECT payload->>'token' AS t FROM ipai.outbox WHERE org_id = ${O[3]} AND topic = 'auth.invite'`;
  cs = conns(db, 2);
  const acc = await Promise.all(cs.map((c, i) => asU(c, L.uuid('9d', i), (tx) => tx`SELECT ipai.accept_invitation(${tok})`).then(() => 'OK', (e) => e.code)));
  await Promise.all(cs.map((c) => c.end()));
  is((await sql`SELECT count(*)::int AS n FROM ipai.org_members WHERE org_id = ${O[3]}`)[0].n, 2, 'one token accepted by two users at once: one joins (' + acc.join(',') + ')');

  // slugs under concurrent creation of pages with the same title
  await sql`UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = ${O[4]}`;
  cs = conns(db, 8);
  const sl = await Promise.all(cs.map((c) => asU(c, OWN, (tx) => tx`SELECT ipai.cms_create_page(${O[4]}, 'Launch Notes', 'b') AS id`).then(() => 'OK', (e) => e.code + ' ' + e.message)));
  await Promise.all(cs.map((c) => c.end()));
  const slugs = await sql`SELECT slug FROM ipai.cms_pages WHERE org_id = ${O[4]}`;
  ok(sl.every((x) => x === 'OK') && new Set(slugs.map((s) => s.slug)).size === 8, '8 concurrent pages with the same title: all created, 8 distinct slugs', { sl, slugs: slugs.map((s) => s.slug) });
  for (const t of ['東京 オフィス', '!!!', 'Über uns', '   ']) {
    const r = await code(() => asU(sql, OWN, (tx) => tx`SELECT ipai.cms_create_page(${O[4]}, ${t}, 'b')`));
    const r2 = await code(() => asU(sql, OWN, (tx) => tx`SELECT ipai.cms_create_page(${O[4]}, ${t}, 'b')`));
    if (t.trim()) ok(r === 'OK' && r2 === 'OK', `title ${JSON.stringify(t)} twice: both created (${r}, ${r2})`);
    else ok(r === '22023' || r === 'OK', `a blank title: 22023 or created (${r})`);
  }
  const bad = await sql`SELECT slug FROM ipai.cms_pages WHERE org_id = ${O[4]} AND (slug IS NULL OR slug = '' OR slug ~ '\\s')`;
  is(bad.length, 0, 'no empty or blank slugs');

  // editing a published page: what is published is what was approved
  const ED = L.uuid('9e', 1), AD = L.uuid('9e', 2);
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${O[4]}, ${ED}, 'editor'), (${O[4]}, ${AD}, 'admin')`;
  const [{ id: pp }] = await asU(sql, ED, (tx) => tx`SELECT ipai.cms_create_page(${O[4]}, 'Live', 'approved words') AS id`);
  await asU(sql, ED, (tx) => tx`SELECT ipai.cms_request_approval(${pp})`);
  await asU(sql, AD, (tx) => tx`SELECT ipai.cms_approve(${pp})`);
  await asU(sql, AD, (tx) => tx`SELECT ipai.cms_publish(${pp})`);
  const pe = await code(() => asU(sql, ED, (tx) => tx`UPDATE ipai.cms_pages SET body = 'unapproved words' WHERE id = ${pp}`));
  const [pr] = await sql`SELECT status, body FROM ipai.cms_pages WHERE id = ${pp}`;
  ok(!(pr.status === 'published' && pr.body === 'unapproved words'), `an editor's edit of a published page never goes live unapproved (${pe}; now ${pr.status} / ${pr.body})`);

  // time zones are validated
  is(await code(() => sql`UPDATE ipai.organizations SET timezone = 'Mars/Olympus_Mons' WHERE id = ${O[5]}`) !== 'OK', true, 'an unknown time zone is refused');
  is(await code(() => sql`SELECT * FROM ipai.check_entitlement(${O[5]}, 'ai_runs')`), 'OK', 'the org still works');

  // webhooks: realistic shapes
  const deliver = async (ev, c = sql) => {
    const payload = JSON.stringify(ev);
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
    return (await c`SELECT * FROM ipai.stripe_webhook(${payload}::text, ${header}::text)`)[0];
  };
  let seq = 0;
  const ev = (type, object, created) => ({ id: `evt_1AccR${++seq}x${Math.random().toString(36).slice(2, 8)}`, object: 'event', api_version: '2025-03-31.basil', created, type, data: { object }, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null } });
  const item = (id, price, ps, pe, metered) => ({ id, object: 'subscription_item', current_period_start: ps, current_period_end: pe, quantity: metered ? undefined : 1,
    price: { id: price, object: 'price', currency: 'usd', recurring: { interval: 'month', usage_type: metered ? 'metered' : 'licensed', meter: metered ? 'mtr_1' : null }, unit_amount: metered ? null : 9900, unit_amount_decimal: metered ? '10' : '9900' } });
  const sub = (id, customer, status, items, org) => ({ id, object: 'subscription', customer, status, cancel_at_period_end: false, created: now - 100, currency: 'usd',
    items: { object: 'list', data: items, has_more: false, total_count: items.length }, metadata: org ? { org_id: org } : {}, start_date: now - 100 });
  const chk = (org, customer, subId, mode = 'subscription') => ({ id: 'cs_' + customer, object: 'checkout.session', mode, customer, subscription: subId, client_reference_id: org, metadata: { org_id: org }, status: 'complete', payment_status: 'paid' });
  const plan = async (o) => (await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${o}`)[0].plan_id;
  const ps = now - 86400, pe2 = ps + 30 * 86400;
  // metered item first, pro price second
  await deliver(ev('checkout.session.completed', chk(O[5], 'cus_R5', 'sub_R5'), now - 50));
  let r = await deliver(ev('customer.subscription.created', sub('sub_R5', 'cus_R5', 'active', [item('si_m', 'price_metered_runs', ps, pe2, true), item('si_b', PRICE, ps, pe2)]), now - 49));
  is(await plan(O[5]), 'pro', 'a subscription with a metered item before the pro item: pro (' + r.status + ')');
  // an unmapped price
  await deliver(ev('checkout.session.completed', chk(O[6], 'cus_R6', 'sub_R6'), now - 50));
  await deliver(ev('customer.subscription.created', sub('sub_R6', 'cus_R6', 'active', [item('si_x', 'price_someOtherProduct', ps, pe2)]), now - 49));
  is(await plan(O[6]), 'free', 'active on a price that maps to no plan: not pro');
  // payment-mode checkout does not create a subscription
  r = await deliver(ev('checkout.session.completed', chk(O[2], 'cus_R2', null, 'payment'), now - 40));
  ok(r.status !== undefined && (await plan(O[2])) === 'free', 'a payment-mode checkout: accepted, plan unchanged (' + r.status + ')');
  // concurrent out-of-order deliveries of 12 updates: the newest wins
  await deliver(ev('checkout.session.completed', chk(O[1], 'cus_R1', 'sub_R1'), now - 300));
  const statuses = ['active', 'past_due', 'active', 'unpaid', 'active', 'past_due', 'active', 'trialing', 'active', 'past_due', 'active', 'canceled'];
  const evs = statuses.map((s, i) => ev('customer.subscription.updated', sub('sub_R1', 'cus_R1', s, [item('si_1', PRICE, ps, pe2)]), now - 200 + i));
  const shuffled = [...evs].sort(() => Math.random() - 0.5);
  cs = conns(db, 12);
  const rr = await Promise.all(shuffled.map((e, i) => deliver(e, cs[i]).then((x) => x.status, (e2) => 'error ' + e2.code)));
  await Promise.all(cs.map((c) => c.end()));
  ok(rr.every((x) => !x.startsWith('error')), '12 concurrent updates of one subscription, shuffled: no errors', rr);
  is((await sql`SELECT status FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_R1'`)[0]?.status, 'canceled', 'the newest event (canceled) wins');
  is(await plan(O[1]), 'free', 'and the plan follows it: free');

  // Stripe-Signature fields in another order, and t given twice
  const p = JSON.stringify({ id: 'evt_order', object: 'event' });
  const h = stripe.webhooks.generateTestHeaderString({ payload: p, secret, timestamp: now });
  const [tpart, vpart] = h.split(',');
  const v = async (hdr) => (await sql`SELECT ipai.stripe_verify_signature(${p}::text, ${hdr}, ${secret}, 300, ${new Date(now * 1000)}::timestamptz) AS v`)[0].v;
  let sdkOk = true; try { stripe.webhooks.constructEvent(p, `${vpart},${tpart}`, secret, 300, undefined, now * 1000); } catch (e) { sdkOk = false; }
  is(await v(`${vpart},${tpart}`), sdkOk, `v1 before t: same answer as the SDK (${sdkOk})`);
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
