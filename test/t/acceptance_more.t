#!/usr/bin/env node
// acceptance_more.t: idempotency under concurrency (record_usage and
// consume_entitlement with one key from 16 sessions), future usage, holds on
// unlimited plans, preview rounding, outbox claim expiry and repeated
// mark_sent, install_schema(distributed => true) without Citus, schedules in
// the future, cms_diff_html columns.
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;
const conns = (db, k) => Array.from({ length: k }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));

(async () => {
  const db = L.newDb('more');
  const sql = L.connect(db, { max: 6 });
  const F = L.uuid('5a', 1), P = L.uuid('5a', 2), P2 = L.uuid('5a', 3);
  const OWN = L.uuid('5b', 1), ED = L.uuid('5b', 2);
  await sql`INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES (${F}, 'F', 'free', 'UTC'), (${P}, 'P', 'pro', 'UTC'), (${P2}, 'P2', 'pro', 'UTC')`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${F}, ${OWN}, 'owner'), (${P}, ${OWN}, 'owner'), (${P2}, ${OWN}, 'owner'), (${P}, ${ED}, 'editor')`;
  const cur = async (o) => Number((await sql`SELECT current FROM ipai.check_entitlement(${o}, 'ai_runs')`)[0].current);

  // record_usage: one key from 16 sessions at once
  let cs = conns(db, 16);
  await Promise.all(cs.map((c) => c`SELECT 1`));
  let rs = await Promise.all(cs.map((c) => c`SELECT ipai.record_usage(${F}, 'ai_runs', 3, 'same-key') AS r`.then((x) => String(x[0].r), (e) => 'error ' + e.code)));
  let cnt = rs.reduce((m, x) => ((m[x] = (m[x] || 0) + 1), m), {});
  ok(cnt.true === 1 && cnt.false === 15, 'record_usage, one key, 16 sessions at once: one true, 15 false', cnt);
  is(await cur(F), 3, 'recorded once');
  rs = await Promise.all(cs.map((c, i) => c`SELECT ipai.record_usage(${F}, 'ai_runs', ${1 + (i % 2)}::bigint, 'key-2') AS r`.then((x) => String(x[0].r), (e) => 'error')));
  cnt = rs.reduce((m, x) => ((m[x] = (m[x] || 0) + 1), m), {});
  ok(cnt.true === 1 && (cnt.error || 0) >= 7 && (cnt.error || 0) <= 8, 'one key with two quantities at once: one recorded, the other quantity an error', cnt);
  const k2 = Number((await sql`SELECT sum(quantity) AS q FROM ipai.usage_events WHERE org_id = ${F} AND idempotency_key = 'key-2'`)[0].q);
  ok(k2 === 1 || k2 === 2, 'key-2 recorded once (' + k2 + ')');
  // consume_entitlement with one key from 16 sessions at once
  const before = await cur(F);
  rs = await Promise.all(cs.map((c) => c`SELECT * FROM ipai.consume_entitlement(${F}, 'ai_runs', 5, 'consume-key')`.then(() => 'OK', (e) => 'error ' + e.code)));
  is(await cur(F), before + 5, 'consume_entitlement, one key, 16 sessions: counted once (' + [...new Set(rs)].join(',') + ')');
  await Promise.all(cs.map((c) => c.end()));

  // usage in the future does not count now
  const fut = await code(() => sql`SELECT ipai.record_usage(${F}, 'ai_runs', 50, NULL, now() + interval '45 days')`);
  is(await cur(F), before + 5, 'usage dated 45 days ahead is not in the current period (' + fut + ')');
  const past = await code(() => sql`SELECT ipai.record_usage(${F}, 'ai_runs', 50, NULL, now() - interval '45 days')`);
  is(await cur(F), before + 5, 'usage dated 45 days back is not in the current period (' + past + ')');

  // holds on an unlimited plan
  const h = await err(() => sql`SELECT ipai.reserve_entitlement(${P}, 'ai_runs', 1000, '5 minutes')`);
  ok(!h, 'reserve_entitlement on pro (unlimited): fine', h && h.message);

  // preview rounding
  await sql`SELECT ipai.record_usage(${P2}, 'ai_runs', 3)`;
  let pv = (await sql`SELECT * FROM ipai.preview_invoice(${P2})`)[0];
  ok(Number(pv.metered_amount) === 0.3 && Number(pv.total) === 99.3, 'pro with 3 runs: 0.30 metered, 99.30 total', pv);
  pv = (await sql`SELECT * FROM ipai.preview_invoice(${P})`)[0];
  ok(Number(pv.metered_quantity) === 0 && Number(pv.metered_amount) === 0 && Number(pv.total) === 99, 'pro with no runs: 99.00', pv);

  // outbox: an expired claim is claimed again; mark_sent twice is harmless
  await sql`INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key) VALUES (${F}, 'acc.expiry', '{"n": 1}', 'e1')`;
  const c1 = await sql`SELECT id FROM ipai.outbox_claim('acc.expiry')`;
  is(c1.length, 1, 'claimed');
  is((await sql`SELECT id FROM ipai.outbox_claim('acc.expiry')`).length, 0, 'not claimable again at once');
  await sql`UPDATE ipai.outbox SET claimed_at = now() - interval '2 hours' WHERE id = ${c1[0].id}`;
  is((await sql`SELECT id FROM ipai.outbox_claim('acc.expiry')`).length, 1, 'a claim two hours old has expired: claimable again');
  await sql`SELECT ipai.outbox_mark_sent(${c1[0].id})`;
  is(await code(() => sql`SELECT ipai.outbox_mark_sent(${c1[0].id})`), 'OK', 'mark_sent twice: no error');
  await sql`UPDATE ipai.outbox SET claimed_at = now() - interval '2 hours' WHERE id = ${c1[0].id}`;
  is((await sql`SELECT id FROM ipai.outbox_claim('acc.expiry')`).length, 0, 'a sent row is never claimed again');

  // schedules in the future are not executed
  const [{ id: pg }] = await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${ED}, true)`;
    const r = await tx`SELECT ipai.cms_create_page(${P}, 'Later', 'one two three') AS id`;
    await tx`SELECT ipai.cms_request_approval(${r[0].id})`;
    await tx`SELECT set_config('ipai.user_id', ${OWN}, true)`;
    await tx`SELECT ipai.cms_approve(${r[0].id})`;
    await tx`SELECT ipai.cms_schedule_publish(${r[0].id}, now() + interval '1 hour')`;
    return r;
  });
  is(Number((await sql`SELECT ipai.run_due_publications() AS n`)[0].n), 0, 'a schedule an hour ahead: not executed');
  await sql.begin(async (tx) => { await tx`SELECT set_config('ipai.user_id', ${OWN}, true)`; await tx`SELECT ipai.cms_schedule_publish(${pg}, now() + interval '2 hours')`; });
  const sched = await sql`SELECT run_at FROM ipai.cms_schedule WHERE page_id = ${pg} AND status = 'pending'`;
  ok(sched.length >= 1 && sched.length <= 2, 'scheduling the same page again: accepted (' + sched.length + ' pending)');
  is((await sql`SELECT status FROM ipai.cms_pages WHERE id = ${pg}`)[0].status, 'approved', 'the page is still approved');

  // cms_diff_html: old on the left with <del>, new on the right with <ins>
  await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${ED}, true)`;
    await tx`UPDATE ipai.cms_pages SET body = 'one 2 three </td></tr></table><script>x</script>' WHERE id = ${pg}`;
    await tx`SELECT ipai.cms_request_approval(${pg})`;
  });
  const vs = await sql`SELECT version, body FROM ipai.cms_page_versions WHERE page_id = ${pg} ORDER BY version`;
  const a = vs.find((v) => v.body === 'one two three').version, b = vs[vs.length - 1].version;
  const [{ h: html }] = await sql`SELECT ipai.cms_diff_html(${pg}, ${a}, ${b}) AS h`;
  const cells = html.match(/<td[^>]*>[\s\S]*?<\/td>/g) || [];
  const left = cells.filter((c) => /<del>/.test(c)), right = cells.filter((c) => /<ins>/.test(c));
  ok(left.length && right.length && !left.some((c) => /<ins>/.test(c)) && !right.some((c) => /<del>/.test(c)), 'side by side: <del> only in old cells, <ins> only in new cells', html.slice(0, 800));
  ok((html.match(/<table/g) || []).length === 1 && (html.match(/<\/table>/g) || []).length === 1, 'content cannot close the table (one <table>, one </table>)');
  is(await code(() => sql`SELECT ipai.cms_diff_html(${pg}, NULL, ${b})`), '22023', 'cms_diff_html with a NULL version: 22023');

  // an organization can be deleted as a whole (its last owner goes with it)
  const G = L.uuid('5a', 9);
  await sql`INSERT INTO ipai.organizations (id, name) VALUES (${G}, 'Gone')`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${G}, ${OWN}, 'owner')`;
  await sql`SELECT ipai.record_usage(${G}, 'ai_runs', 2)`;
  const del = await err(() => sql`DELETE FROM ipai.organizations WHERE id = ${G}`);
  ok(!del, 'DELETE of a whole organization by a superuser succeeds (' + (del ? del.code + ' ' + del.message : 'ok') + ')');

  // install_schema(distributed => true) without Citus: a clear error, nothing changed
  const e = await err(() => sql`SELECT ipai.install_schema(distributed => true)`);
  ok(e && /citus/i.test(e.message + ' ' + (e.detail || '') + ' ' + (e.hint || '')), 'install_schema(distributed => true) without Citus: an error that names Citus', e ? e.code + ' ' + e.message : 'no error');
  is(await code(() => sql`SELECT ipai.install_schema()`), 'OK', 'install_schema() still fine afterwards');
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
