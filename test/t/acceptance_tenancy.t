#!/usr/bin/env node
// acceptance_tenancy.t: SPEC 2: current_user_id sources, create_organization,
// RLS on every organization-owned table the SPEC names (read and write,
// member of A vs B, anon), service_role sees all, shared tables read-only.
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;
const UA = L.uuid('7a', 1), UB = L.uuid('7a', 2), VA = L.uuid('7a', 3);

(async () => {
  const db = L.newDb('tenancy');
  const sql = L.connect(db, { max: 4 });
  // current_user_id
  is((await sql`SELECT ipai.current_user_id() AS u`)[0].u, null, 'current_user_id(): NULL without settings');
  is((await sql.begin(async (tx) => { await tx`SELECT set_config('ipai.user_id', ${UA}, true)`; return tx`SELECT ipai.current_user_id() AS u`; }))[0].u, UA, 'from ipai.user_id');
  is((await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${UA}, true)`;
    await tx`SELECT set_config('request.jwt.claims', ${JSON.stringify({ sub: UB, role: 'authenticated' })}, true)`;
    return tx`SELECT ipai.current_user_id() AS u`;
  }))[0].u, UB, 'request.jwt.claims sub wins over ipai.user_id');
  is((await sql.begin(async (tx) => {
    await tx`SELECT set_config('ipai.user_id', ${UA}, true)`;
    await tx`SELECT set_config('request.jwt.claims', ${JSON.stringify({ role: 'service_role' })}, true)`;
    return tx`SELECT ipai.current_user_id() AS u`;
  }))[0].u, UA, 'claims without sub: falls back to ipai.user_id');
  const bad = await err(() => sql.begin(async (tx) => { await tx`SELECT set_config('ipai.user_id', 'not-a-uuid', true)`; return tx`SELECT ipai.current_user_id() AS u`; }));
  ok(!bad || bad.code !== 'XX000', 'a malformed ipai.user_id: NULL or a clean error (' + (bad ? bad.code : 'no error') + ')');

  // create_organization
  const [{ a }] = await L.as(sql, 'authenticated', UA, (tx) => tx`SELECT ipai.create_organization('Alpha Inc') AS a`);
  const [{ b }] = await L.as(sql, 'authenticated', UB, (tx) => tx`SELECT ipai.create_organization('Beta Inc') AS b`);
  ok(a && b && a !== b, 'authenticated users create organizations; owner defaults to the current user');
  is((await sql`SELECT role FROM ipai.org_members WHERE org_id = ${a} AND user_id = ${UA}`)[0]?.role, 'owner', 'the creator is the owner');
  is((await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${a}`)[0].plan_id, 'free', 'on plan free');
  is(await code(() => sql`SELECT ipai.create_organization('Nobody')`), '22023', 'no owner and no current user: 22023');
  is(await code(() => sql`SELECT ipai.create_organization(NULL, ${UA}::uuid)`), '22023', 'NULL name: 22023');
  is(await code(() => L.as(sql, 'anon', null, (tx) => tx`SELECT ipai.create_organization('Anon Org', ${UA}::uuid)`)), '42501', 'anon cannot create organizations');
  const imp = await code(() => L.as(sql, 'authenticated', UA, (tx) => tx`SELECT ipai.create_organization('Planted', ${UB}::uuid)`));
  is(imp, '42501', 'an authenticated user cannot create an org owned by someone else');
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${a}, ${VA}, 'viewer')`;

  // data in both orgs
  for (const [org, u] of [[a, UA], [b, UB]]) {
    await L.as(sql, 'authenticated', u, async (tx) => {
      await tx`SELECT ipai.cms_create_page(${org}, ${'Secret of ' + org}, 'confidential')`;
      await tx`SELECT ipai.record_usage(${org}, 'ai_runs', 3, ${'k-' + org})`;
      await tx`SELECT ipai.invite_member(${org}, ${'inv-' + org.slice(-4) + '@example.com'})`;
    });
  }
  const tables = ['organizations', 'org_members', 'cms_pages', 'cms_page_versions', 'usage_events', 'org_invitations', 'subscriptions', 'invoices', 'billing_customers',
    'org_usage_current', 'cms_schedule', 'cms_approvals', 'audit_log', 'outbox', 'webhook_events'];
  const leaks = [], blind = [];
  for (const t of tables) {
    const rows = await L.as(sql, 'authenticated', UA, (tx) => tx.unsafe(`SELECT r::text AS x FROM ipai.${t} r`)).catch((e) => e.code);
    if (Array.isArray(rows) && rows.some((r) => r.x.includes(b))) leaks.push(t);
    const anon = await L.as(sql, 'anon', null, (tx) => tx.unsafe(`SELECT count(*)::int AS n FROM ipai.${t}`)).then((r) => r[0].n, (e) => e.code);
    if (!(anon === 0 || anon === '42501')) leaks.push('anon:' + t + '=' + anon);
    if (['organizations', 'org_members', 'cms_pages', 'usage_events'].includes(t) && !(Array.isArray(rows) && rows.some((r) => r.x.includes(a)))) blind.push(t);
  }
  ok(!leaks.length, 'a member of A sees nothing of B in any org-owned table; anon sees nothing', leaks);
  ok(!blind.length, 'a member of A sees its own organization, members, pages, usage', blind);
  const svc = await L.as(sql, 'service_role', null, (tx) => tx`SELECT count(DISTINCT org_id)::int AS n FROM ipai.cms_pages`);
  is(svc[0].n, 2, 'service_role sees every organization');
  // writes across tenants
  is(await code(() => L.as(sql, 'authenticated', UA, (tx) => tx`INSERT INTO ipai.cms_pages (org_id, slug, title, body) VALUES (${b}, 'plant', 'x', 'y')`)), '42501', 'A cannot insert a page into B');
  is(await code(() => L.as(sql, 'authenticated', UA, (tx) => tx`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${b}, ${UA}, 'owner')`)), '42501', 'A cannot join B by INSERT');
  const mv = await code(() => L.as(sql, 'authenticated', UA, (tx) => tx`UPDATE ipai.cms_pages SET org_id = ${b} WHERE org_id = ${a}`));
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages WHERE org_id = ${b}`)[0].n, 1, 'A cannot move its page into B (' + mv + ')');
  await L.as(sql, 'authenticated', UA, (tx) => tx`DELETE FROM ipai.cms_pages WHERE org_id = ${b}`).catch(() => {});
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages WHERE org_id = ${b}`)[0].n, 1, 'A cannot delete B\'s pages');
  // role limits
  is(await code(() => L.as(sql, 'authenticated', VA, (tx) => tx`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${a}, ${L.uuid('7a', 9)}, 'viewer')`)), '42501', 'a viewer cannot add members (org at its seat limit: still 42501, not IP005)');
  await sql`UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = ${b}`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${b}, ${L.uuid('7a', 8)}, 'viewer')`;
  is(await code(() => L.as(sql, 'authenticated', L.uuid('7a', 8), (tx) => tx`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${b}, ${L.uuid('7a', 9)}, 'viewer')`)), '42501', 'a viewer cannot add members (org with room)');
  await L.as(sql, 'authenticated', VA, (tx) => tx`UPDATE ipai.org_members SET role = 'owner' WHERE org_id = ${a} AND user_id = ${VA}`).catch(() => {});
  is((await sql`SELECT role FROM ipai.org_members WHERE org_id = ${a} AND user_id = ${VA}`)[0].role, 'viewer', 'a viewer cannot promote itself');
  await L.as(sql, 'authenticated', VA, (tx) => tx`UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = ${a}`).catch(() => {});
  is((await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${a}`)[0].plan_id, 'free', 'a viewer cannot change the plan');
  await L.as(sql, 'authenticated', UA, (tx) => tx`UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = ${a}`).catch(() => {});
  is((await sql`SELECT plan_id FROM ipai.organizations WHERE id = ${a}`)[0].plan_id, 'free', 'even the owner cannot give itself pro by UPDATE (the plan follows Stripe)');
  await L.as(sql, 'authenticated', UA, (tx) => tx`INSERT INTO ipai.usage_events (org_id, feature, quantity) VALUES (${a}, 'ai_runs', -1000)`).catch(() => {});
  is(Number((await sql`SELECT current FROM ipai.check_entitlement(${a}, 'ai_runs')`)[0].current), 3, 'a member cannot write negative usage by a plain INSERT');
  // history, audit and billing state cannot be forged by an owner
  await L.as(sql, 'authenticated', UA, async (tx) => {
    const [{ id }] = await tx`SELECT id FROM ipai.cms_pages WHERE org_id = ${a}`;
    await tx`SELECT ipai.cms_request_approval(${id})`;
  });
  const forge = [];
  for (const [label, q] of [
    ['UPDATE cms_page_versions', (tx) => tx`UPDATE ipai.cms_page_versions SET body = 'forged' WHERE org_id = ${a}`],
    ['DELETE cms_page_versions', (tx) => tx`DELETE FROM ipai.cms_page_versions WHERE org_id = ${a}`],
    ['INSERT cms_page_versions', (tx) => tx`INSERT INTO ipai.cms_page_versions (page_id, org_id, version, status, title, body) SELECT id, org_id, 99, status, 'f', 'f' FROM ipai.cms_pages WHERE org_id = ${a}`],
    ['DELETE audit_log', (tx) => tx`DELETE FROM ipai.audit_log`],
    ['UPDATE audit_log', (tx) => tx`UPDATE ipai.audit_log SET action = 'nothing'`],
    ['INSERT billing_customers', (tx) => tx`INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES (${a}, 'cus_SomeoneElse')`],
    ['INSERT subscriptions', (tx) => tx`INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id, current_period_start, current_period_end) VALUES (${a}, 'sub_forged', 'active', 'pro', now(), now() + interval '1 month')`],
    ['INSERT invoices', (tx) => tx`INSERT INTO ipai.invoices (org_id, stripe_invoice_id, status, amount_paid) VALUES (${a}, 'in_forged', 'paid', 1)`],
    ['UPDATE webhook_events', (tx) => tx`UPDATE ipai.webhook_events SET org_id = org_id`],
    ['INSERT outbox', (tx) => tx`INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key) VALUES (${a}, 'auth.invite', '{"email": "x@example.com"}', 'forged')`],
  ]) {
    const c = await code(() => L.as(sql, 'authenticated', UA, q));
    if (c === 'OK') {
      // allowed only if it changed nothing (RLS filtered every row)
      forge.push(label + ': no error');
    }
  }
  const vcount = (await sql`SELECT count(*)::int AS n FROM ipai.cms_page_versions WHERE org_id = ${a} AND body = 'forged'`)[0].n;
  const subs = (await sql`SELECT count(*)::int AS n FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_forged'`)[0].n;
  const bc = (await sql`SELECT count(*)::int AS n FROM ipai.billing_customers WHERE stripe_customer_id = 'cus_SomeoneElse'`)[0].n;
  const inv = (await sql`SELECT count(*)::int AS n FROM ipai.invoices WHERE stripe_invoice_id = 'in_forged'`)[0].n;
  const vers = (await sql`SELECT count(*)::int AS n FROM ipai.cms_page_versions WHERE org_id = ${a}`)[0].n;
  const aud = (await sql`SELECT count(*)::int AS n FROM ipai.audit_log`)[0].n;
  ok(vcount === 0 && subs === 0 && bc === 0 && inv === 0 && vers > 0 && aud > 0, 'an owner cannot forge versions, audit, customers, subscriptions or invoices', { forge, vcount, subs, bc, inv, vers, aud });
  diag('statements that ran without error (and changed nothing): ' + forge.join('; '));

  // shared tables: not writable by anon/authenticated
  for (const [role, u] of [['anon', null], ['authenticated', UA]]) {
    const c1 = await code(() => L.as(sql, role, u, (tx) => tx`UPDATE ipai.plans SET stripe_price_id = 'price_evil' WHERE id = 'pro'`));
    const c2 = await code(() => L.as(sql, role, u, (tx) => tx`UPDATE ipai.plan_entitlements SET plan_id = plan_id`));
    ok(c1 === '42501' && c2 === '42501', `${role} cannot write plans / plan_entitlements (${c1}, ${c2})`);
  }
  is((await sql`SELECT stripe_price_id FROM ipai.plans WHERE id = 'pro'`)[0].stripe_price_id === 'price_evil', false, 'plans unchanged');
  // DROP EXTENSION without CASCADE cannot destroy tenant data
  const de = await err(() => sql`DROP EXTENSION ipai_saas`);
  ok(de, 'DROP EXTENSION ipai_saas without CASCADE is refused (' + (de && de.code) + ')');
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages`)[0].n, 2, 'tenant data intact');
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
