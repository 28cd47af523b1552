#!/usr/bin/env node
// acceptance_admin.t: SPEC 5 and 6: invitations (e-mail classes, seats,
// outbox, token hashing, acceptance), last-owner protection, outbox claim /
// mark_sent and who may use them, dashboard views RLS-safe, typescript_types.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const { execFileSync } = require('child_process');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;

const A = L.uuid('ad', 1), B = L.uuid('ad', 2), P = L.uuid('ad', 3), S = L.uuid('ad', 4);
const OA = L.uuid('a1', 1), OA2 = L.uuid('a1', 2), EA = L.uuid('a1', 3), VA = L.uuid('a1', 4), OB = L.uuid('a1', 5), NEW = L.uuid('a1', 6), NEW2 = L.uuid('a1', 7), OP = L.uuid('a1', 8);

(async () => {
  const db = L.newDb('admin');
  const sql = L.connect(db, { max: 6 });
  await sql`INSERT INTO ipai.organizations (id, name, plan_id) VALUES (${A}, 'Alpha', 'free'), (${B}, 'Beta', 'free'), (${P}, 'Pro Co', 'pro'), (${S}, 'Solo', 'free')`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${A}, ${OA}, 'owner'), (${B}, ${OB}, 'owner'), (${P}, ${OP}, 'owner'), (${S}, ${OA}, 'owner')`;
  const as = (u, f, role = 'authenticated') => L.as(sql, role, u, f);
  const invite = (u, org, email, role) => as(u, (tx) => role === undefined
    ? tx`SELECT ipai.invite_member(${org}, ${email}) AS id` : tx`SELECT ipai.invite_member(${org}, ${email}, ${role}) AS id`);

  // e-mail classes on the pro org (room for many)
  const valid = ['a@example.com', 'first.last+tag@sub.example.co.uk', "o'brien@example.ie", 'UPPER@EXAMPLE.COM', 'x_y-z@example-host.io', 'user@xn--bcher-kva.example'];
  const invalid = ['', ' ', 'plainaddress', '@example.com', 'a@', 'a@b@example.com', 'a b@example.com', 'a@.example.com', 'a@example..com',
    '.a@example.com', 'a.@example.com', 'a..b@example.com', 'a@example.com\n', ' a@example.com', 'Name <a@example.com>', '<a@example.com>',
    'a@-example.com', 'a@example.com,b@example.com', 'a;b@example.com', 'x'.repeat(65) + '@example.com', 'a@' + 'b'.repeat(250) + '.com', 'a@exa mple.com'];
  const vbad = [];
  for (const e of valid) { const c = await code(() => invite(OP, P, e)); if (c !== 'OK') vbad.push(`${e}: ${c}`); }
  ok(!vbad.length, `${valid.length} valid addresses invited`, vbad);
  const ibad = [];
  for (const e of invalid) { const c = await code(() => invite(OP, P, e)).catch((x) => 'JS ' + x.message); if (c !== '22023') ibad.push(`${JSON.stringify(e).slice(0, 40)}: ${c}`); }
  ok(!ibad.length, `${invalid.length} invalid addresses: 22023`, ibad);
  is(await code(() => sql`SELECT ipai.invite_member(${P}, NULL::text)`), '22023', 'NULL e-mail: 22023');
  is(await code(() => invite(OP, P, 'role@example.com', 'superuser')), '22023', 'an unknown role: 22023');
  is(await code(() => invite(OP, P, 'role2@example.com', null)), '22023', 'a NULL role: 22023');
  is(await code(() => sql`SELECT ipai.invite_member(${L.uuid('dead', 1)}, 'z@example.com')`), '22023', 'an unknown org: 22023');
  is(await code(() => sql`SELECT ipai.invite_member(NULL::uuid, 'z@example.com')`), '22023', 'a NULL org: 22023');
  is(await code(() => invite(OB, A, 'intruder@example.com')), '42501', 'a non-member cannot invite');
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${P}, ${VA}, 'viewer'), (${P}, ${EA}, 'editor')`;
  is(await code(() => invite(VA, P, 'v@example.com')), '42501', 'a viewer cannot invite');
  is(await code(() => invite(EA, P, 'e@example.com')), '42501', 'an editor cannot invite');
  is(await code(() => L.as(sql, 'anon', null, (tx) => tx`SELECT ipai.invite_member(${P}, 'anon@example.com')`)), '42501', 'anon cannot invite');

  // the invitation: role default editor, outbox row, token stored only as a hash
  const [{ id: inv1 }] = await invite(OA, A, 'Bob@Example.com');
  ok(/^[0-9a-f-]{36}$/.test(inv1), 'invite_member returns a uuid');
  const [irow] = await sql`SELECT i::text AS t, email, role FROM ipai.org_invitations i WHERE org_id = ${A}`;
  is(irow.role, 'editor', 'the default role is editor');
  const ob = await sql`SELECT id, payload FROM ipai.outbox WHERE org_id = ${A} AND topic = 'auth.invite'`;
  is(ob.length, 1, 'one auth.invite outbox row');
  const pl = ob[0] && ob[0].payload;
  ok(pl && /bob@example\.com/i.test(pl.email) && pl.role === 'editor' && pl.org_id === A && typeof pl.token === 'string' && pl.token.length >= 20,
    'payload email, role, org_id, token (>= 20 chars)', pl);
  const token = pl && pl.token;
  ok(token && !irow.t.includes(token), 'the token is not stored in org_invitations (only a hash)');
  const audit = await sql`SELECT count(*)::int AS n FROM ipai.audit_log a WHERE a::text LIKE ${'%' + token + '%'}`;
  is(audit[0].n, 0, 'nor in the audit log');

  // seats: members plus pending invitations; free = 3
  await invite(OA, A, 'carol@example.com', 'viewer');
  const e3 = await err(() => invite(OA, A, 'dave@example.com'));
  is(e3 && e3.code, 'IP005', '1 member + 2 invitations = 3 seats: the next invitation raises IP005');
  ok(e3 && /3/.test(e3.detail || ''), 'the DETAIL gives current and maximum (3)', e3 && e3.detail);
  is((await sql`SELECT count(*)::int AS n FROM ipai.org_invitations WHERE org_id = ${A} AND email ILIKE 'dave%'`)[0].n, 0, 'no invitation written');
  is((await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE org_id = ${A} AND topic = 'auth.invite'`)[0].n, 2, 'no outbox row written');
  is(await code(() => sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${A}, ${L.uuid('a9', 9)}, 'viewer')`), 'IP005', 'a plain INSERT of a 4th member: IP005');
  const ce = (await sql`SELECT * FROM ipai.check_entitlement(${A}, 'seats')`)[0];
  ok(Number(ce.current) === 3 && Number(ce.max) === 3 && ce.allowed === false, 'check_entitlement seats: 3 of 3', ce);

  // accepting
  const acc = (u, t) => as(u, (tx) => tx`SELECT ipai.accept_invitation(${t}) AS org`);
  is(await code(() => acc(NEW, 'not-a-real-token-0000000000000000')), '22023', 'an unknown token: 22023');
  is(await code(() => L.as(sql, 'anon', null, (tx) => tx`SELECT ipai.accept_invitation(${token})`)), '42501', 'anon cannot accept');
  const [{ org }] = await acc(NEW, token);
  is(org, A, 'accept_invitation returns the org id');
  const [m] = await sql`SELECT role FROM ipai.org_members WHERE org_id = ${A} AND user_id = ${NEW}`;
  is(m && m.role, 'editor', 'the user is a member with the invited role');
  is(Number((await sql`SELECT current FROM ipai.check_entitlement(${A}, 'seats')`)[0].current), 3, 'seats still 3 (the invitation became a member)');
  const again = await err(() => acc(NEW2, token));
  ok(again && again.code !== 'XX000', 'a used token cannot be accepted again (' + (again && again.code) + ')');
  is((await sql`SELECT count(*)::int AS n FROM ipai.org_members WHERE org_id = ${A} AND user_id = ${NEW2}`)[0].n, 0, '... nobody joined with it');

  // last owner
  is(await code(() => sql`DELETE FROM ipai.org_members WHERE org_id = ${S} AND user_id = ${OA}`) !== 'OK', true, 'deleting the only owner is refused');
  is(await code(() => sql`UPDATE ipai.org_members SET role = 'admin' WHERE org_id = ${S} AND user_id = ${OA}`) !== 'OK', true, 'demoting the only owner is refused');
  is((await sql`SELECT role FROM ipai.org_members WHERE org_id = ${S} AND user_id = ${OA}`)[0]?.role, 'owner', 'still the owner');
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${S}, ${OA2}, 'owner')`;
  is(await code(() => sql`UPDATE ipai.org_members SET role = 'admin' WHERE org_id = ${S} AND user_id = ${OA}`), 'OK', 'with two owners one may be demoted');
  is(await code(() => sql`DELETE FROM ipai.org_members WHERE org_id = ${S} AND user_id = ${OA2}`) !== 'OK', true, 'then the remaining owner cannot be removed');
  is(await code(() => sql`DELETE FROM ipai.org_members WHERE org_id = ${S}`) !== 'OK', true, 'nor by deleting all members at once');
  // two sessions demoting the two owners concurrently: one must fail
  await sql`UPDATE ipai.org_members SET role = 'owner' WHERE org_id = ${S} AND user_id = ${OA}`;
  const c1 = L.postgres(L.url(db), { max: 1, onnotice: () => {} }), c2 = L.postgres(L.url(db), { max: 1, onnotice: () => {} });
  const r = await Promise.all([
    c1.begin(async (tx) => { await tx`UPDATE ipai.org_members SET role = 'admin' WHERE org_id = ${S} AND user_id = ${OA}`; await L.sleep(300); }).then(() => 'OK', (e) => e.code),
    c2.begin(async (tx) => { await L.sleep(50); await tx`UPDATE ipai.org_members SET role = 'admin' WHERE org_id = ${S} AND user_id = ${OA2}`; await L.sleep(300); }).then(() => 'OK', (e) => e.code),
  ]);
  await c1.end(); await c2.end();
  const owners = (await sql`SELECT count(*)::int AS n FROM ipai.org_members WHERE org_id = ${S} AND role = 'owner'`)[0].n;
  ok(owners >= 1, `two concurrent demotions of two owners: an owner remains (${owners}; results ${r})`);

  // no escalation by admins: owners are made and unmade by owners only
  const ADM = L.uuid('a1', 20);
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${P}, ${ADM}, 'admin')`;
  is(await code(() => invite(ADM, P, 'boss@example.com', 'owner')), '42501', 'an admin cannot invite an owner');
  is(await code(() => as(ADM, (tx) => tx`UPDATE ipai.org_members SET role = 'owner' WHERE org_id = ${P} AND user_id = ${ADM}`)), '42501', 'an admin cannot make itself owner');
  is(await code(() => as(ADM, (tx) => tx`UPDATE ipai.org_members SET role = 'owner' WHERE org_id = ${P} AND user_id = ${EA}`)), '42501', 'an admin cannot make an editor owner');
  is(await code(() => as(ADM, (tx) => tx`DELETE FROM ipai.org_members WHERE org_id = ${P} AND user_id = ${OP}`)), '42501', 'an admin cannot remove an owner');
  await as(EA, (tx) => tx`UPDATE ipai.org_members SET role = 'admin' WHERE org_id = ${P} AND user_id = ${EA}`).catch(() => {});
  is((await sql`SELECT role FROM ipai.org_members WHERE org_id = ${P} AND user_id = ${EA}`)[0].role, 'editor', 'an editor cannot promote itself');
  is(await code(() => invite(OP, P, 'newowner@example.com', 'owner')), 'OK', 'an owner can invite an owner');

  // outbox: service_role only; claim, SKIP LOCKED, mark_sent erases the token
  for (const role of ['anon', 'authenticated']) {
    is(await code(() => L.as(sql, role, OA, (tx) => tx`SELECT * FROM ipai.outbox_claim('auth.invite')`)), '42501', `${role} cannot claim`);
    is(await code(() => L.as(sql, role, OA, (tx) => tx`SELECT ipai.outbox_mark_sent(1)`)), '42501', `${role} cannot mark sent`);
    const seen = await L.as(sql, role, OA, (tx) => tx`SELECT count(*)::int AS n FROM ipai.outbox`).then((x) => x[0].n, (e) => e.code);
    ok(seen === '42501' || seen === 0, `${role} cannot read the outbox (${seen})`);
  }
  await sql`INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key) VALUES (${P}, 'acc.other', '{"x": 1}', 'other-1')`;
  const claimed = await L.as(sql, 'service_role', null, (tx) => tx`SELECT * FROM ipai.outbox_claim('auth.invite', 2)`);
  is(claimed.length, 2, 'service_role claims with max_rows 2: 2 rows');
  ok(claimed.length && Object.keys(claimed[0]).join(',') === 'id,org_id,topic,payload,created_at', 'claim columns id, org_id, topic, payload, created_at', claimed[0]);
  const claimed2 = await L.as(sql, 'service_role', null, (tx) => tx`SELECT * FROM ipai.outbox_claim('auth.invite', 100)`);
  ok(!claimed2.some((x) => claimed.some((y) => String(y.id) === String(x.id))), 'a second claim does not return the rows already claimed');
  const all = await sql`SELECT count(*)::int AS n FROM ipai.outbox WHERE topic = 'auth.invite' AND sent_at IS NULL`;
  is(claimed.length + claimed2.length, all[0].n, 'the two claims together cover every unsent row once');
  ok([...claimed, ...claimed2].every((x) => x.topic === 'auth.invite'), 'claims return only the topic asked for');
  const target = [...claimed, ...claimed2].find((x) => x.payload.token);
  await L.as(sql, 'service_role', null, (tx) => tx`SELECT ipai.outbox_mark_sent(${target.id})`);
  const [after] = await sql`SELECT payload, sent_at FROM ipai.outbox WHERE id = ${target.id}`;
  ok(after.sent_at && !after.payload.token, 'mark_sent: sent_at set, the token erased', after);
  ok(after.payload.email && after.payload.org_id, '... the rest of the payload kept', after.payload);
  is(await code(() => sql`SELECT ipai.outbox_mark_sent(NULL::bigint)`), '22023', 'mark_sent(NULL): 22023');
  const ex = await err(() => sql`SELECT ipai.outbox_mark_sent(999999999)`);
  ok(!ex || ex.code === '22023', 'mark_sent of an unknown id: 22023 or no-op (' + (ex && ex.code) + ')');
  is(await code(() => sql`SELECT * FROM ipai.outbox_claim('auth.invite', 0)`), '22023', 'max_rows 0: 22023');
  is(await code(() => sql`SELECT * FROM ipai.outbox_claim(NULL, 10)`), '22023', 'NULL topic: 22023');
  // concurrent claims from two sessions never share a row
  for (let i = 0; i < 30; i++) await sql`INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key) VALUES (${P}, 'acc.test', '{}', ${'k' + i})`;
  const cs = Array.from({ length: 4 }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));
  const res = await Promise.all(cs.map((c) => c.begin(async (tx) => { const x = await tx`SELECT id FROM ipai.outbox_claim('acc.test', 10)`; await L.sleep(200); return x.map((y) => String(y.id)); })));
  await Promise.all(cs.map((c) => c.end()));
  const flat = res.flat();
  ok(flat.length === 30 && new Set(flat).size === 30, `4 concurrent claimers of 30 rows: ${flat.length} rows, ${new Set(flat).size} distinct`);

  // views: RLS-safe
  await sql`INSERT INTO ipai.invoices (org_id, stripe_invoice_id, status, amount_paid) VALUES (${A}, 'in_accA', 'paid', 9900), (${B}, 'in_accB', 'paid', 9900)`.catch((e) => diag('invoice insert: ' + e.message));
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${B}, ${L.uuid('b9', 1)}, 'editor')`;
  for (const [org, owner, ed] of [[A, OA, NEW], [B, OB, L.uuid('b9', 1)]]) {
    const p = (await as(ed, (tx) => tx`SELECT ipai.cms_create_page(${org}, 'Queue page', 'x') AS id`))[0].id;
    await as(ed, (tx) => tx`SELECT ipai.cms_request_approval(${p})`);
  }
  for (const v of ['billing_dashboard', 'invoice_history', 'org_dashboard', 'cms_approval_queue']) {
    const total = await sql.unsafe(`SELECT v::text AS t FROM ipai.${v} v`);
    ok(total.some((x) => x.t.includes(B) || x.t.includes('in_accB') || x.t.includes('Beta')), `ipai.${v}: the superuser sees org B data`);
    const asA = await as(OA, (tx) => tx.unsafe(`SELECT v::text AS t FROM ipai.${v} v`)).catch((e) => e.code);
    ok(Array.isArray(asA) && asA.length > 0 && !asA.some((x) => x.t.includes(B) || x.t.includes('in_accB') || x.t.includes('Beta')), `ipai.${v}: the owner of A sees A and nothing of B`, Array.isArray(asA) ? asA.slice(0, 3) : asA);
    const asAnon = await L.as(sql, 'anon', null, (tx) => tx.unsafe(`SELECT count(*)::int AS n FROM ipai.${v}`)).then((x) => x[0].n, (e) => e.code);
    ok(asAnon === 0 || asAnon === '42501', `ipai.${v}: anon sees nothing (${asAnon})`);
    const relopt = await sql`SELECT coalesce(array_to_string(reloptions, ','), '') AS o FROM pg_class WHERE oid = ${'ipai.' + v}::regclass`;
    diag(`${v} reloptions: ${relopt[0].o}`);
  }

  // typescript_types
  const [{ ts }] = await sql`SELECT ipai.typescript_types() AS ts`;
  ok(ts && ts.length > 200, 'typescript_types(): non-empty');
  const rels = await sql`SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind IN ('r', 'v', 'p') AND c.relname IN
    ('organizations', 'org_members', 'plans', 'subscriptions', 'invoices', 'usage_events', 'cms_pages', 'cms_page_versions', 'cms_schedule', 'org_invitations', 'billing_dashboard', 'org_dashboard', 'cms_approval_queue', 'invoice_history')`;
  const missing = rels.map((r) => r.relname).filter((n) => !ts.includes(n) && !ts.toLowerCase().includes(n.replace(/_([a-z])/g, (_, c) => c).toLowerCase()));
  ok(!missing.length, 'it mentions the public tables and views', missing);
  ok(/'draft'/.test(ts) || /"draft"/.test(ts), 'it includes the enum-like values (page status draft)');
  ok(/check_entitlement|CheckEntitlement/i.test(ts), 'it includes function results (check_entitlement)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acc-ts-'));
  fs.writeFileSync(path.join(dir, 'types.ts'), ts + '\nexport {};\n');
  let tsc = 'ok';
  try { execFileSync(path.join(L.root, 'test', 'node_modules', '.bin', 'deno'), ['check', '--quiet', path.join(dir, 'types.ts')], { stdio: 'pipe', timeout: 60000, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } }); }
  catch (e) { tsc = (e.stderr || '').toString().slice(0, 800) || e.message; }
  fs.rmSync(dir, { recursive: true, force: true });
  ok(tsc === 'ok', 'the declarations type-check with deno check', tsc);

  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
