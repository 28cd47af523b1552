#!/usr/bin/env node
// acceptance_metering.t: SPEC 3 metering: periods in the org's time zone,
// seeded limits, record_usage idempotency, check/consume, a 32-connection
// consume storm at the hard limit, holds, preview_invoice arithmetic, the
// stripe.meter_event outbox payload, cms_items limit on plain INSERT, errors.
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;

const MNL = L.uuid('e1', 1), UTC = L.uuid('e1', 2), LAX = L.uuid('e1', 3), PRO = L.uuid('e1', 4), STORM = L.uuid('e1', 5),
  HOLD = L.uuid('e1', 6), PAGES = L.uuid('e1', 7), FREE = L.uuid('e1', 8);
const OWNER = L.uuid('f1', 1), EDITOR = L.uuid('f1', 2), VIEWER = L.uuid('f1', 3), ADMIN = L.uuid('f1', 4), STRANGER = L.uuid('f1', 9);
const num = (x) => (x === null || x === undefined ? x : Number(x));

(async () => {
  const db = L.newDb('metering');
  const sql = L.connect(db, { max: 33 });
  for (const [id, tz, plan] of [[MNL, 'Asia/Manila', 'free'], [UTC, 'UTC', 'free'], [LAX, 'America/Los_Angeles', 'free'], [PRO, 'UTC', 'pro'],
    [STORM, 'UTC', 'free'], [HOLD, 'UTC', 'free'], [PAGES, 'UTC', 'free'], [FREE, 'UTC', 'free']]) {
    await sql`INSERT INTO ipai.organizations (id, name, timezone, plan_id) VALUES (${id}, ${'Org ' + id.slice(-4)}, ${tz}, ${plan})`;
    await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${id}, ${OWNER}, 'owner')`;
  }
  for (const [u, role] of [[EDITOR, 'editor'], [VIEWER, 'viewer'], [ADMIN, 'admin']])
    await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${PRO}, ${u}, ${role})`;
  const check = async (org, feature, q = 1) => (await sql`SELECT * FROM ipai.check_entitlement(${org}, ${feature}, ${q}::bigint)`)[0];
  const used = async (org) => num((await check(org, 'ai_runs')).current);

  // a new organization through the function is on free
  const [{ id: newOrg }] = await sql`SELECT ipai.create_organization('Fresh Co', ${OWNER}::uuid) AS id`;
  is((await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${newOrg}`)[0].plan_id, 'free', 'create_organization: a new org is on free');
  is((await sql`SELECT role FROM ipai.org_members WHERE org_id = ${newOrg} AND user_id = ${OWNER}`)[0]?.role, 'owner', 'create_organization: the owner is a member with role owner');

  // seeded limits
  const c0 = await check(FREE, 'ai_runs');
  is(Object.keys(c0), ['allowed', 'feature', 'plan_id', 'current', 'max', 'remaining', 'reason'], 'check_entitlement columns in order');
  ok(c0.allowed === true && c0.feature === 'ai_runs' && c0.plan_id === 'free' && num(c0.current) === 0 && num(c0.max) === 100 && num(c0.remaining) === 100,
    'free ai_runs: 0 of 100, remaining 100', c0);
  is(num((await check(FREE, 'cms_items')).max), 50, 'free cms_items: 50');
  is(num((await check(FREE, 'seats')).max), 3, 'free seats: 3');
  const cp = await check(PRO, 'ai_runs', 1000000);
  ok(cp.allowed === true && cp.plan_id === 'pro' && cp.max === null && cp.remaining === null, 'pro ai_runs: unlimited (max, remaining NULL), a million allowed', cp);
  is(num((await check(PRO, 'cms_items')).max), 10000, 'pro cms_items: 10,000');
  is(num((await check(PRO, 'seats')).max), 25, 'pro seats: 25');

  // periods: the calendar month in the organization's time zone
  const [b] = await sql`SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Manila') AT TIME ZONE 'Asia/Manila' AS mnl,
      date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS utc,
      date_trunc('month', now() AT TIME ZONE 'America/Los_Angeles') AT TIME ZONE 'America/Los_Angeles' AS lax`;
  const h = (d, hours) => new Date(+d + hours * 3600e3);
  await sql`SELECT ipai.record_usage(${MNL}, 'ai_runs', 7, NULL, ${h(b.mnl, 1)})`;  // this month in Manila (previous in UTC)
  await sql`SELECT ipai.record_usage(${MNL}, 'ai_runs', 11, NULL, ${h(b.mnl, -1)})`; // last month in Manila
  is(await used(MNL), 7, 'Asia/Manila org: usage 1 h after the Manila month start counts, 1 h before does not');
  await sql`SELECT ipai.record_usage(${UTC}, 'ai_runs', 7, NULL, ${h(b.mnl, 1)})`;
  is(await used(UTC), +h(b.mnl, 1) >= +b.utc ? 7 : 0, 'UTC org: the same instant belongs to its own UTC month');
  await sql`SELECT ipai.record_usage(${LAX}, 'ai_runs', 5, NULL, ${h(b.lax, 1)})`;
  await sql`SELECT ipai.record_usage(${LAX}, 'ai_runs', 13, NULL, ${h(b.lax, -1)})`;
  is(await used(LAX), 5, 'America/Los_Angeles org: month boundary at local midnight');
  // the SPEC's example: 2026-03-31 20:00 UTC belongs to April for Asia/Manila
  await sql`SELECT ipai.record_usage(${MNL}, 'ai_runs', 3, 'spec-example', '2026-03-31 20:00:00+00')`;
  await sql`SELECT ipai.refresh_org_usage()`;
  const hist = await sql`SELECT period_start, used FROM ipai.org_usage_current WHERE org_id = ${MNL} AND feature = 'ai_runs'`;
  diag('org_usage_current rows for the Manila org: ' + JSON.stringify(hist));
  ok(!hist.some((x) => +x.period_start === Date.parse('2026-03-01T00:00:00+08:00')), 'SPEC example: nothing of 2026-03-31 20:00 UTC in March (Manila)');
  const cur = hist.find((x) => +x.period_start === +b.mnl);
  is(cur && num(cur.used), 7, 'org_usage_current: the current Manila period, used 7');

  // record_usage idempotency
  is((await sql`SELECT ipai.record_usage(${FREE}, 'ai_runs', 5, 'job-1') AS r`)[0].r, true, 'record_usage with a new key: true');
  is((await sql`SELECT ipai.record_usage(${FREE}, 'ai_runs', 5, 'job-1') AS r`)[0].r, false, 'the same key, same quantity: false');
  const e1 = await err(() => sql`SELECT ipai.record_usage(${FREE}, 'ai_runs', 6, 'job-1')`);
  ok(e1 && e1.code !== 'XX000', 'the same key with another quantity: an error (' + (e1 && e1.code) + ')');
  is(await used(FREE), 5, 'counted once');
  is((await sql`SELECT ipai.record_usage(${FREE}, 'ai_runs') AS r`)[0].r, true, 'defaults: quantity 1, no key: true');
  is((await sql`SELECT ipai.record_usage(${FREE}, 'ai_runs') AS r`)[0].r, true, 'without a key every call records');
  is(await used(FREE), 7, 'used 7');
  is((await sql`SELECT ipai.record_usage(${UTC}, 'ai_runs', 5, 'job-1') AS r`)[0].r, true, 'the same key in another org is another key');

  // check_entitlement reads, never writes (works in a read-only transaction); reflects usage at once
  const rw = await err(() => sql.begin('READ ONLY', (tx) => tx`SELECT * FROM ipai.check_entitlement(${FREE}, 'ai_runs', 1)`));
  ok(!rw, 'check_entitlement runs in a READ ONLY transaction', rw && rw.message);
  let c = await check(FREE, 'ai_runs', 93);
  ok(c.allowed === true && num(c.current) === 7 && num(c.remaining) === 93, 'quantity exactly to the limit: allowed', c);
  c = await check(FREE, 'ai_runs', 94);
  ok(c.allowed === false && num(c.current) === 7 && num(c.max) === 100 && c.reason && c.reason !== 'ok', 'one more than fits: not allowed, with a reason', c);
  is(await used(FREE), 7, 'checks recorded nothing');

  // consume
  const cons = (org, q = 1, key = null) => sql`SELECT * FROM ipai.consume_entitlement(${org}, 'ai_runs', ${q}::bigint, ${key})`;
  is(await code(() => cons(FREE, 90, 'c-1')), 'OK', 'consume 90 of the remaining 93');
  is(await code(() => cons(FREE, 90, 'c-1')), 'OK', 'the same idempotency key again: no error');
  is(await used(FREE), 97, 'consumed once');
  const e2 = await err(() => cons(FREE, 4));
  is(e2 && e2.code, 'IP001', 'over the hard limit: IP001');
  ok(e2 && /97/.test(e2.detail || '') && /100/.test(e2.detail || ''), 'the DETAIL has current (97) and maximum (100)', e2 && e2.detail);
  is(await used(FREE), 97, 'nothing recorded by the refused call');
  is(await code(() => cons(FREE, 3)), 'OK', 'exactly up to the limit: ok');
  is(await code(() => cons(FREE, 1)), 'IP001', 'at 100 of 100: IP001');
  is(await code(() => cons(PRO, 250, 'pro-250')), 'OK', 'pro: consume 250 (unlimited)');

  // bad arguments: 22023
  const bad = [
    ['unknown org (check)', () => sql`SELECT * FROM ipai.check_entitlement(${L.uuid('dead', 1)}, 'ai_runs')`],
    ['unknown feature (check)', () => sql`SELECT * FROM ipai.check_entitlement(${FREE}, 'teleports')`],
    ['NULL org (check)', () => sql`SELECT * FROM ipai.check_entitlement(NULL::uuid, 'ai_runs')`],
    ['NULL feature (check)', () => sql`SELECT * FROM ipai.check_entitlement(${FREE}, NULL::text)`],
    ['quantity 0 (check)', () => sql`SELECT * FROM ipai.check_entitlement(${FREE}, 'ai_runs', 0::bigint)`],
    ['unknown org (consume)', () => sql`SELECT * FROM ipai.consume_entitlement(${L.uuid('dead', 1)}, 'ai_runs')`],
    ['unknown feature (consume)', () => sql`SELECT * FROM ipai.consume_entitlement(${FREE}, 'teleports')`],
    ['negative quantity (consume)', () => sql`SELECT * FROM ipai.consume_entitlement(${PRO}, 'ai_runs', -5::bigint)`],
    ['NULL quantity (consume)', () => sql`SELECT * FROM ipai.consume_entitlement(${PRO}, 'ai_runs', NULL::bigint)`],
    ['unknown org (record)', () => sql`SELECT ipai.record_usage(${L.uuid('dead', 1)}, 'ai_runs')`],
    ['unknown feature (record)', () => sql`SELECT ipai.record_usage(${PRO}, 'teleports')`],
    ['NULL org (record)', () => sql`SELECT ipai.record_usage(NULL::uuid, 'ai_runs')`],
    ['quantity 0 (record)', () => sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 0::bigint)`],
    ['negative quantity (record)', () => sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', -1::bigint)`],
    ['NULL occurred_at (record)', () => sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 1::bigint, NULL, NULL::timestamptz)`],
    ['unknown org (reserve)', () => sql`SELECT ipai.reserve_entitlement(${L.uuid('dead', 1)}, 'ai_runs', 1, '1 minute')`],
    ['unknown feature (reserve)', () => sql`SELECT ipai.reserve_entitlement(${HOLD}, 'teleports', 1, '1 minute')`],
    ['quantity 0 (reserve)', () => sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 0, '1 minute')`],
    ['negative ttl (reserve)', () => sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 1, '-1 minute')`],
    ['NULL ttl (reserve)', () => sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 1, NULL)`],
    ['unknown hold (finalize)', () => sql`SELECT ipai.finalize_hold(${L.uuid('dead', 2)}, 1)`],
    ['unknown hold (release)', () => sql`SELECT ipai.release_hold(${L.uuid('dead', 2)})`],
    ['unknown org (preview)', () => sql`SELECT * FROM ipai.preview_invoice(${L.uuid('dead', 1)})`],
    ['NULL org (preview)', () => sql`SELECT * FROM ipai.preview_invoice(NULL::uuid)`],
  ];
  for (const [label, f] of bad) is(await code(f), '22023', `${label}: 22023`);

  // roles: members check, non-members get 42501; preview_invoice is owner/admin
  is(await code(() => L.as(sql, 'authenticated', VIEWER, (tx) => tx`SELECT * FROM ipai.check_entitlement(${PRO}, 'ai_runs')`)), 'OK', 'a viewer may check');
  is(await code(() => L.as(sql, 'authenticated', STRANGER, (tx) => tx`SELECT * FROM ipai.check_entitlement(${PRO}, 'ai_runs')`)), '42501', 'a non-member: 42501');
  is(await code(() => L.as(sql, 'authenticated', STRANGER, (tx) => tx`SELECT ipai.record_usage(${PRO}, 'ai_runs')`)), '42501', 'a non-member cannot record usage');
  is(await code(() => L.as(sql, 'anon', null, (tx) => tx`SELECT * FROM ipai.consume_entitlement(${PRO}, 'ai_runs')`)), '42501', 'anon cannot consume');
  for (const [u, want] of [[OWNER, 'OK'], [ADMIN, 'OK'], [EDITOR, '42501'], [VIEWER, '42501'], [STRANGER, '42501']])
    is(await code(() => L.as(sql, 'authenticated', u, (tx) => tx`SELECT * FROM ipai.preview_invoice(${PRO})`)), want, `preview_invoice as ${u === OWNER ? 'owner' : u === ADMIN ? 'admin' : u === EDITOR ? 'editor' : u === VIEWER ? 'viewer' : 'non-member'}: ${want}`);

  // preview_invoice: pro with 250 runs -> 99.00 + 25.00 = 124.00
  const pv = (await sql`SELECT * FROM ipai.preview_invoice(${PRO})`)[0];
  ok(pv && pv.plan_id === 'pro' && String(pv.currency).toLowerCase() === 'usd', 'preview: plan pro, currency usd', pv);
  ok(pv && Number(pv.base_amount) === 99 && num(pv.metered_quantity) === 250 && Number(pv.metered_amount) === 25 && Number(pv.total) === 124,
    'preview: 99.00 + 250 x 0.10 = 124.00', pv);
  ok(pv && /^99\.00$/.test(pv.base_amount) && /^25\.00$/.test(pv.metered_amount) && /^124\.00$/.test(pv.total), 'preview amounts with two decimals (99.00, 25.00, 124.00)', pv);
  ok(pv && +pv.period_start < Date.now() && +pv.period_end > Date.now(), 'preview period contains now', pv);
  const pf = (await sql`SELECT * FROM ipai.preview_invoice(${FREE})`)[0];
  ok(pf && pf.plan_id === 'free' && Number(pf.total) === 0 && Number(pf.base_amount) === 0, 'preview for free: total 0', pf);
  // 1 more run: 124.10
  await sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 1)`;
  is(Number((await sql`SELECT total FROM ipai.preview_invoice(${PRO})`)[0].total), 124.1, 'preview with 251 runs: 124.10');

  // stripe.meter_event outbox payload for metered pro usage
  await sql`INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES (${PRO}, 'cus_AccMeter')`;
  const at = '2026-11-02 10:00:00+00';
  const nowish = await sql`SELECT now() AS n`;
  const [{ m: maxId }] = await sql`SELECT coalesce(max(id), 0)::bigint AS m FROM ipai.outbox`;
  await sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 7, 'meter-1', now())`;
  const ob = await sql`SELECT payload, topic, org_id FROM ipai.outbox WHERE org_id = ${PRO} AND topic = 'stripe.meter_event' AND id > ${maxId}`;
  const older = await sql`SELECT payload FROM ipai.outbox WHERE org_id = ${PRO} AND topic = 'stripe.meter_event' AND id <= ${maxId}`;
  diag('meter events written before the customer was linked: ' + JSON.stringify(older.map((o) => o.payload)));
  is(ob.length, 1, 'one stripe.meter_event outbox row for the recorded usage');
  const p = ob[0] && ob[0].payload;
  ok(p && typeof p.event_name === 'string' && p.event_name.length > 0, 'payload.event_name', p);
  is(p && p.stripe_customer_id, 'cus_AccMeter', 'payload.stripe_customer_id');
  ok(p && String(p.value) === '7', 'payload.value = 7', p);
  ok(p && typeof p.identifier === 'string' && p.identifier.length > 0 && p.identifier.length <= 100, 'payload.identifier (1-100 chars, Stripe limit)', p);
  ok(p && Number.isInteger(Number(p.timestamp)) && Math.abs(Number(p.timestamp) - Math.floor(+nowish[0].n / 1000)) < 5, 'payload.timestamp: unix seconds of occurred_at', p);
  await sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 7, 'meter-1', now())`;
  is((await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND id > ${maxId}`)[0].n, 1, 'a duplicate record_usage writes no second meter event');
  await sql`SELECT ipai.record_usage(${PRO}, 'ai_runs', 2, 'meter-2')`;
  const ids = await sql`SELECT payload->>'identifier' AS i FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND id > ${maxId}`;
  ok(ids.length === 2 && ids[0].i !== ids[1].i, 'two usages: two meter events with distinct identifiers', ids);
  is((await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND org_id = ${FREE}`)[0].n, 0, 'free-plan usage writes no meter event');

  // holds
  await sql`SELECT ipai.record_usage(${HOLD}, 'ai_runs', 60)`;
  const [{ h: h1 }] = await sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 30, '10 minutes') AS h`;
  ok(/^[0-9a-f-]{36}$/.test(h1), 'reserve_entitlement returns a uuid');
  c = await check(HOLD, 'ai_runs', 10);
  ok(c.allowed === true && num(c.remaining) === 10, 'a hold counts at once: 10 remaining', c);
  is(await code(() => sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 11, '10 minutes')`), 'IP001', 'a hold that does not fit: IP001');
  is(await code(() => sql`SELECT * FROM ipai.consume_entitlement(${HOLD}, 'ai_runs', 11)`), 'IP001', 'consume beyond what the hold leaves: IP001');
  await sql`SELECT ipai.finalize_hold(${h1}, 25)`;
  c = await check(HOLD, 'ai_runs');
  is(num(c.current), 85, 'finalize_hold(25): usage 85, the hold no longer counts');
  const fin2 = await err(() => sql`SELECT ipai.finalize_hold(${h1}, 25)`);
  is(num((await check(HOLD, 'ai_runs')).current), 85, 'finalizing the same hold again records nothing more (' + (fin2 ? fin2.code : 'no error') + ')');
  const [{ h: h2 }] = await sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 15, '10 minutes') AS h`;
  is(num((await check(HOLD, 'ai_runs')).remaining), 0, 'a hold of 15: remaining 0');
  await sql`SELECT ipai.release_hold(${h2})`;
  c = await check(HOLD, 'ai_runs');
  ok(num(c.current) === 85 && num(c.remaining) === 15, 'release_hold: nothing recorded, room back', c);
  const fin3 = await err(() => sql`SELECT ipai.finalize_hold(${h2}, 5)`);
  is(num((await check(HOLD, 'ai_runs')).current), 85, 'a released hold cannot be finalized into usage (' + (fin3 ? fin3.code : 'no error') + ')');
  const [{ h: h3 }] = await sql`SELECT ipai.reserve_entitlement(${HOLD}, 'ai_runs', 15, '1 second') AS h`;
  is(num((await check(HOLD, 'ai_runs')).remaining), 0, 'a 1-second hold counts');
  await L.sleep(1600);
  is(num((await check(HOLD, 'ai_runs')).remaining), 15, 'an expired hold stops counting by itself');
  is(await code(() => sql`SELECT * FROM ipai.consume_entitlement(${HOLD}, 'ai_runs', 15)`), 'OK', 'room of an expired hold can be consumed');
  const late = await err(() => sql`SELECT ipai.finalize_hold(${h3}, 15)`);
  is(num((await check(HOLD, 'ai_runs')).current), 100, 'finalizing an expired hold never pushes usage past the limit (' + (late ? late.code : 'no error') + ')');

  // 32 connections x 8 consume calls at the limit
  await sql`SELECT ipai.record_usage(${STORM}, 'ai_runs', 40)`;
  const conns = Array.from({ length: 32 }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));
  await Promise.all(conns.map((x) => x`SELECT 1`));
  let granted = 0, refused = 0, other = [];
  await Promise.all(conns.map(async (x, i) => {
    for (let k = 0; k < 8; k++) {
      const q = 1 + ((i + k) % 3);
      try { await x`SELECT * FROM ipai.consume_entitlement(${STORM}, 'ai_runs', ${q}::bigint)`; granted += q; }
      catch (e) { if (e.code === 'IP001') refused++; else other.push(e.code + ' ' + e.message); }
    }
  }));
  await Promise.all(conns.map((x) => x.end()));
  const final = await used(STORM);
  ok(final <= 100, `storm: usage ${final} never past 100`);
  is(final, 40 + granted, 'storm: usage = 40 + everything granted');
  ok(refused > 0 && other.length === 0, `storm: ${refused} refused with IP001, no other errors`, other.slice(0, 3));
  ok(final >= 98, `storm: the limit is filled (${final} >= 98)`);
  await sql`SELECT ipai.refresh_org_usage()`;
  const [ouc] = await sql`SELECT used FROM ipai.org_usage_current WHERE org_id = ${STORM} AND feature = 'ai_runs'`;
  is(ouc && num(ouc.used), final, 'org_usage_current after refresh_org_usage agrees');

  // usage events written by plain SQL (Odoo, DBAs) count at once; refresh_org_usage repairs drift
  await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${L.uuid('e1', 20)}, 'Drift', 'UTC')`;
  const DR = L.uuid('e1', 20);
  await sql`SELECT ipai.record_usage(${DR}, 'ai_runs', 10)`;
  const ins = await code(() => sql`INSERT INTO ipai.usage_events (org_id, feature, quantity, occurred_at) VALUES (${DR}, 'ai_runs', 4, now())`);
  if (ins === 'OK') is(await used(DR), 14, 'a usage event inserted by plain SQL is reflected by check_entitlement at once');
  else diag('plain INSERT into usage_events refused: ' + ins);
  const upd = await code(() => sql`UPDATE ipai.org_usage_current SET used = used + 999 WHERE org_id = ${DR}`);
  await sql`SELECT ipai.refresh_org_usage()`;
  const [ru] = await sql`SELECT sum(used)::int AS u FROM ipai.org_usage_current WHERE org_id = ${DR} AND feature = 'ai_runs'`;
  const [ev] = await sql`SELECT sum(quantity)::int AS q FROM ipai.usage_events WHERE org_id = ${DR} AND feature = 'ai_runs'`;
  is(ru.u, ev.q, 'after refresh_org_usage, org_usage_current equals the sum of usage_events (tampering: ' + upd + ')');
  is(await used(DR), ev.q, '... and so does check_entitlement');
  await sql`DELETE FROM ipai.usage_events WHERE org_id = ${DR} AND quantity = 10`.catch((e) => diag('delete usage: ' + e.code));
  await sql`SELECT ipai.refresh_org_usage()`;
  const [ev2] = await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${DR} AND feature = 'ai_runs'`;
  is(await used(DR), ev2.q, 'after a usage event is deleted by SQL and refresh_org_usage runs, check_entitlement agrees with usage_events');

  // the current period's usage whatever changed how periods are cut:
  // (a) an owner changes the organization's time zone
  const TZ = L.uuid('e1', 21);
  await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${TZ}, 'Zone hopper', 'UTC')`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${TZ}, ${OWNER}, 'owner')`;
  await L.as(sql, 'authenticated', OWNER, (tx) => tx`SELECT * FROM ipai.consume_entitlement(${TZ}, 'ai_runs', 100)`);
  const tzc = await code(() => L.as(sql, 'authenticated', OWNER, (tx) => tx`UPDATE ipai.organizations SET timezone = 'Pacific/Kiritimati' WHERE id = ${TZ}`));
  const [{ tz: tzNow }] = await sql`SELECT timezone AS tz FROM ipai.organizations WHERE id = ${TZ}`;
  const [{ q: inMonth }] = await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${TZ} AND feature = 'ai_runs'
      AND occurred_at >= date_trunc('month', now() AT TIME ZONE ${tzNow}) AT TIME ZONE ${tzNow} AND occurred_at < (date_trunc('month', now() AT TIME ZONE ${tzNow}) + interval '1 month') AT TIME ZONE ${tzNow}`;
  is(await used(TZ), inMonth, `after the owner changes the time zone (${tzc}, now ${tzNow}): current = usage events of the new month (${inMonth})`);
  is(await code(() => L.as(sql, 'authenticated', OWNER, (tx) => tx`SELECT * FROM ipai.consume_entitlement(${TZ}, 'ai_runs', 100)`)), 'IP001',
    'a free org at 100/100 cannot get another 100 runs this month by changing its time zone');
  await sql`SELECT ipai.refresh_org_usage()`;
  is(await used(TZ), Number((await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${TZ} AND feature = 'ai_runs'
      AND occurred_at >= date_trunc('month', now() AT TIME ZONE ${tzNow}) AT TIME ZONE ${tzNow}`)[0].q), 'refresh_org_usage repairs it');
  // (b) a subscription ends mid-month: the calendar month again, with every event of the month
  const CX = L.uuid('e1', 22);
  await sql`INSERT INTO ipai.organizations (id, name, timezone, plan_id) VALUES (${CX}, 'Canceller', 'UTC', 'pro')`;
  await sql`INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id, current_period_start, current_period_end)
      VALUES (${CX}, 'sub_AccCx', 'active', 'pro', now() - interval '1 hour', now() + interval '1 month')`;
  await sql`SELECT ipai.record_usage(${CX}, 'ai_runs', 5, 'cx-before', now() - interval '2 hours')`;
  await sql`SELECT ipai.record_usage(${CX}, 'ai_runs', 7, 'cx-in', now() - interval '30 minutes')`;
  is(await used(CX), 7, 'pro with an active subscription: usage of the subscription period (7)');
  await sql`UPDATE ipai.subscriptions SET status = 'canceled' WHERE stripe_subscription_id = 'sub_AccCx'`;
  await sql`UPDATE ipai.organizations SET plan_id = 'free' WHERE id = ${CX}`;
  const [{ q: cxMonth }] = await sql`SELECT coalesce(sum(quantity), 0)::int AS q FROM ipai.usage_events WHERE org_id = ${CX}
      AND occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
  is(await used(CX), cxMonth, `subscription canceled: current = every usage event of the calendar month (${cxMonth})`);
  // (c) the subscription period moves (billing cycle anchor reset): usage already recorded in the new period counts
  const AN = L.uuid('e1', 23);
  await sql`INSERT INTO ipai.organizations (id, name, timezone, plan_id) VALUES (${AN}, 'Anchor', 'UTC', 'pro')`;
  await sql`INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id, current_period_start, current_period_end)
      VALUES (${AN}, 'sub_AccAn', 'active', 'pro', now() - interval '20 days', now() + interval '10 days')`;
  await sql`SELECT ipai.record_usage(${AN}, 'ai_runs', 3, 'an-1', now() - interval '1 minute')`;
  await sql`UPDATE ipai.subscriptions SET current_period_start = now() - interval '5 minutes', current_period_end = now() - interval '5 minutes' + interval '1 month' WHERE stripe_subscription_id = 'sub_AccAn'`;
  is(await used(AN), 3, 'the period start moves to 5 minutes ago: the run 1 minute ago still counts');
  is(Number((await sql`SELECT metered_quantity FROM ipai.preview_invoice(${AN})`)[0].metered_quantity), 3, '... and is billed by preview_invoice');

  // (d) upgrade: usage recorded after the subscription period started but before the subscription reached the database
  const UP = L.uuid('e1', 24);
  await sql`INSERT INTO ipai.organizations (id, name, timezone) VALUES (${UP}, 'Upgrader', 'UTC')`;
  await sql`SELECT ipai.record_usage(${UP}, 'ai_runs', 4, 'up-1', now() - interval '10 minutes')`;
  await sql`INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id, current_period_start, current_period_end)
      VALUES (${UP}, 'sub_AccUp', 'active', 'pro', now() - interval '15 minutes', now() - interval '15 minutes' + interval '1 month')`;
  await sql`UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = ${UP}`;
  is(await used(UP), 4, 'subscription arriving late: usage already recorded inside its period counts');
  is(Number((await sql`SELECT metered_quantity FROM ipai.preview_invoice(${UP})`)[0].metered_quantity), 4, '... and is billed by preview_invoice');

  // cms_items: the limit holds for plain INSERTs too
  await sql`SELECT ipai.cms_create_page(${PAGES}, 'Page ' || g, 'body', 'page-' || g) FROM generate_series(1, 49) g`;
  c = await check(PAGES, 'cms_items');
  ok(num(c.current) === 49 && num(c.remaining) === 1, 'cms_items: 49 pages exist', c);
  is(await code(() => sql`SELECT ipai.cms_create_page(${PAGES}, 'Fifty', 'b')`), 'OK', 'the 50th page');
  is(await code(() => sql`SELECT ipai.cms_create_page(${PAGES}, 'Fifty-one', 'b')`), 'IP001', 'the 51st page via cms_create_page: IP001');
  is(await code(() => sql`INSERT INTO ipai.cms_pages (org_id, slug, title, body) VALUES (${PAGES}, 'direct', 'Direct', 'b')`), 'IP001', 'the 51st page via plain INSERT: IP001');
  const pe = await err(() => sql`INSERT INTO ipai.cms_pages (org_id, slug, title, body) VALUES (${PAGES}, 'direct', 'Direct', 'b')`);
  ok(pe && /50/.test(pe.detail || ''), 'its DETAIL gives current and maximum (50)', pe && pe.detail);
  is(await code(() => L.as(sql, 'authenticated', OWNER, (tx) => tx`INSERT INTO ipai.cms_pages (org_id, slug, title, body) VALUES (${PAGES}, 'direct2', 'Direct', 'b')`)), 'IP001', '... also as an authenticated owner');
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages WHERE org_id = ${PAGES}`)[0].n, 50, '50 pages, no more');
  await sql`DELETE FROM ipai.cms_pages WHERE org_id = ${PAGES} AND slug = 'page-1'`;
  is(await code(() => sql`SELECT ipai.cms_create_page(${PAGES}, 'After delete', 'b')`), 'OK', 'after a delete there is room again (pages that exist)');

  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
