#!/usr/bin/env node
// acceptance_catalog.t: every function named in SPEC sections 2-7 exists with
// exactly the SPEC's argument names, types, order and defaults and the SPEC's
// result type / result column names, types and order; public tables and
// views have the columns the SPEC names.  Read-only (catalog only).
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, diag } = L;

const TS = 'timestamp with time zone';
const D = {
  one: /^1(::bigint|::integer)?$/, null: /^NULL(::[a-z ]+)?$/i, now: /^(now\(\)|CURRENT_TIMESTAMP|transaction_timestamp\(\))$/i,
  t300: /^300$/, t100: /^100$/, false: /^false$/, cuid: /^ipai\.current_user_id\(\)$/,
  publish: /^'publish'(::text)?$/, editor: /^'editor'(::text)?$/, empty: /^'\{\}'(::jsonb)?$/,
};
const cols = (s) => s.split(',').map((c) => c.trim().split(/ (.+)/).slice(0, 2));
// [name, inputs [[name,type,defaultRegex?]...], result: string type | [[col,type]...] | undefined, setof?]
const F = [
  ['current_user_id', [], 'uuid'],
  ['create_organization', [['name', 'text'], ['owner', 'uuid', D.cuid]], 'uuid'],
  ['install_schema', [['distributed', 'boolean', D.false]], 'text'],
  ['record_usage', [['org_id', 'uuid'], ['feature', 'text'], ['quantity', 'bigint', D.one], ['idempotency_key', 'text', D.null], ['occurred_at', TS, D.now]], 'boolean'],
  ['check_entitlement', [['org_id', 'uuid'], ['feature', 'text'], ['quantity', 'bigint', D.one]],
    cols('allowed boolean, feature text, plan_id text, current bigint, max bigint, remaining bigint, reason text')],
  ['consume_entitlement', [['org_id', 'uuid'], ['feature', 'text'], ['quantity', 'bigint', D.one], ['idempotency_key', 'text', D.null]]],
  ['reserve_entitlement', [['org_id', 'uuid'], ['feature', 'text'], ['quantity', 'bigint'], ['ttl', 'interval']], 'uuid'],
  ['finalize_hold', [['hold_id', 'uuid'], ['actual_quantity', 'bigint']]],
  ['release_hold', [['hold_id', 'uuid']]],
  ['refresh_org_usage', []],
  ['preview_invoice', [['org_id', 'uuid']],
    cols(`plan_id text, currency text, period_start ${TS}, period_end ${TS}, base_amount numeric, metered_quantity bigint, metered_amount numeric, total numeric`)],
  ['stripe_verify_signature', [['payload', 'bytea'], ['signature_header', 'text'], ['secret', 'text'], ['tolerance_seconds', 'integer', D.t300], ['now', TS, D.now]], 'boolean'],
  ['stripe_verify_signature', [['payload', 'text'], ['signature_header', 'text'], ['secret', 'text'], ['tolerance_seconds', 'integer', D.t300], ['now', TS, D.now]], 'boolean'],
  ['standard_webhook_verify', [['payload', 'bytea'], ['msg_id', 'text'], ['msg_timestamp', 'text'], ['signature_header', 'text'], ['secret', 'text'], ['tolerance_seconds', 'integer', D.t300], ['now', TS, D.now]], 'boolean'],
  ['stripe_sign', [['payload', 'text'], ['secret', 'text'], ['t', TS, D.now]], 'text'],
  ['stripe_webhook', [['payload', 'bytea'], ['signature_header', 'text']], cols('status text, event_id text, event_type text')],
  ['stripe_webhook', [['payload', 'text'], ['signature_header', 'text']], cols('status text, event_id text, event_type text')],
  ['set_stripe_webhook_secret', [['secret', 'text']]],
  ['checkout_session_params', [['org_id', 'uuid'], ['plan_id', 'text'], ['success_url', 'text'], ['cancel_url', 'text']], 'jsonb'],
  ['cms_create_page', [['org_id', 'uuid'], ['title', 'text'], ['body', 'text'], ['slug', 'text', D.null], ['content_type', 'text', D.null], ['metadata', 'jsonb', D.empty]], 'uuid'],
  ['cms_request_approval', [['page_id', 'uuid'], ['comment', 'text', D.null]], 'uuid'],
  ['cms_approve', [['page_id', 'uuid'], ['comment', 'text', D.null]]],
  ['cms_reject', [['page_id', 'uuid'], ['comment', 'text']]],
  ['cms_publish', [['page_id', 'uuid']]],
  ['diff_words', [['old', 'text'], ['new', 'text']], cols('op text, chunk text'), true],
  ['cms_diff_html', [['page_id', 'uuid'], ['from_version', 'integer'], ['to_version', 'integer']], 'text'],
  ['cms_schedule_publish', [['page_id', 'uuid'], ['run_at', TS], ['action', 'text', D.publish]], 'bigint'],
  ['run_due_publications', [], 'integer'],
  ['recover_stuck_runs', []],
  ['invite_member', [['org_id', 'uuid'], ['email', 'text'], ['role', 'text', D.editor]], 'uuid'],
  ['accept_invitation', [['token', 'text']], 'uuid'],
  ['typescript_types', [], 'text'],
  ['outbox_claim', [['topic', 'text'], ['max_rows', 'integer', D.t100]],
    cols(`id bigint, org_id uuid, topic text, payload jsonb, created_at ${TS}`), true],
  ['outbox_mark_sent', [['id', 'bigint']]],
  ['schedule_jobs', []],
  ['health', [], cols('name text, status text, detail text'), true],
];

function splitTop(s) {
  const out = []; let depth = 0, q = false, cur = '';
  for (const ch of s) {
    if (ch === "'") q = !q;
    if (!q && ch === '(') depth++;
    if (!q && ch === ')') depth--;
    if (!q && depth === 0 && ch === ',') { out.push(cur.trim()); cur = ''; continue; }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

(async () => {
  const sql = L.postgres(L.url(process.env.PGDATABASE), { max: 1, onnotice: () => {} });
  const procs = await sql`
    SELECT p.proname, p.proretset, p.proargnames, p.proargmodes::text[] AS modes,
           coalesce((SELECT array_agg(t::regtype::text ORDER BY o) FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY u(t, o)), '{}') AS alltypes,
           p.pronargs, p.pronargdefaults, pg_get_expr(p.proargdefaults, 0) AS defaults,
           p.prorettype::regtype::text AS rettype,
           (SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
              FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
             WHERE t.oid = p.prorettype AND t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped) AS retattrs
      FROM pg_proc p WHERE p.pronamespace = 'ipai'::regnamespace`;
  for (const [name, args, result, setof] of F) {
    const cands = procs.filter((p) => p.proname === name);
    const sig = args.map((a) => a[1]).join(', ');
    const insOf = (p) => { const modes = p.modes || p.alltypes.map(() => 'i'); return p.alltypes.filter((_, i) => ['i', 'b', 'v'].includes(modes[i])); };
    let found = cands.find((p) => insOf(p).join(', ') === sig);
    if (!found) {
      // extra trailing arguments are compatible when they all have defaults
      found = cands.find((p) => { const ins = insOf(p); return ins.slice(0, args.length).join(', ') === sig && ins.length - args.length <= p.pronargdefaults; });
      if (found) L.diag(`ipai.${name}: extra optional arguments beyond the SPEC: ${insOf(found).slice(args.length).join(', ')}`);
    }
    if (!ok(found, `ipai.${name}(${sig}) exists`, `candidates: ${JSON.stringify(cands.map((c) => c.alltypes))}`)) continue;
    const p = found;
    const modes = p.modes || p.alltypes.map(() => 'i');
    const names = p.proargnames || [];
    const inNames = p.alltypes.map((_, i) => i).filter((i) => ['i', 'b', 'v'].includes(modes[i])).map((i) => names[i] || '');
    is(inNames.slice(0, args.length), args.map((a) => a[0]), `ipai.${name}(${sig}): argument names`);
    const wantDefaults = args.filter((a) => a[2]);
    const extra = inNames.length - args.length;
    const defs = (p.defaults ? splitTop(p.defaults) : []).slice(0, Math.max(0, (p.defaults ? splitTop(p.defaults).length : 0) - extra));
    const firstDef = args.findIndex((a) => a[2]);
    ok(defs.length === wantDefaults.length && wantDefaults.every((a, i) => a[2].test(defs[i])),
      `ipai.${name}(${sig}): defaults ${wantDefaults.map((a) => a[0]).join(', ') || 'none'}`,
      `got defaults [${defs.join(' | ')}] (pronargdefaults ${p.pronargdefaults}, first default expected at ${firstDef})`);
    if (result === undefined) continue;
    if (typeof result === 'string') {
      is(p.rettype, result, `ipai.${name}: returns ${result}`);
      continue;
    }
    let outs = p.alltypes.map((t, i) => [names[i], t]).filter((_, i) => ['o', 'b', 't'].includes(modes[i]));
    if (!outs.length && p.retattrs) outs = p.retattrs.map((s) => s.split(/ (.+)/).slice(0, 2));
    is(outs.map((o) => o.join(' ')), result.map((o) => o.join(' ')), `ipai.${name}: result columns (name type, in order)`);
    if (setof !== undefined) is(p.proretset, setof, `ipai.${name}: ${setof ? 'set-returning' : 'one row'}`);
  }

  // tables and views: the columns the SPEC names (others are free)
  const T = {
    organizations: 'id uuid, name, billing_email, timezone, plan_id',
    org_members: 'org_id, user_id, role',
    plans: 'id, name, stripe_price_id',
    plan_entitlements: '',
    billing_customers: 'org_id, stripe_customer_id',
    subscriptions: `org_id, stripe_subscription_id, status, plan_id, current_period_start ${TS}, current_period_end ${TS}`,
    invoices: 'org_id, stripe_invoice_id, status, amount_paid',
    usage_events: 'org_id, feature, quantity, idempotency_key, occurred_at',
    webhook_events: '', audit_log: '',
    org_usage_current: 'org_id, feature, period_start, used',
    content_types: '',
    cms_pages: 'id, org_id, slug, title, body, metadata, status',
    cms_page_versions: 'page_id, org_id, version, status, title, body, metadata, created_by, created_at',
    cms_approvals: '',
    cms_schedule: 'id, org_id, page_id, action, run_at, status, executed_at, error',
    org_invitations: 'org_id, email, role',
    outbox: `id bigint, org_id uuid, topic text, payload jsonb, created_at, claimed_at, sent_at`,
    billing_dashboard: '', invoice_history: '', org_dashboard: '', cms_approval_queue: '',
  };
  const rels = await sql`
    SELECT c.relname, c.relkind, array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS cols
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = 'ipai'::regnamespace GROUP BY 1, 2`;
  for (const [t, spec] of Object.entries(T)) {
    const r = rels.find((x) => x.relname === t);
    if (!ok(r, `ipai.${t} exists`)) continue;
    const have = Object.fromEntries(r.cols.map((c) => c.split(/ (.+)/)));
    const missing = spec ? spec.split(',').map((s) => s.trim().split(/ (.+)/)).filter(([c, ty]) => !(c in have) || (ty && have[c] !== ty)) : [];
    ok(!missing.length, `ipai.${t}: columns ${spec || '(any)'}`, `missing/mistyped: ${JSON.stringify(missing)}; have ${JSON.stringify(have)}`);
  }
  const views = ['billing_dashboard', 'invoice_history', 'org_dashboard', 'cms_approval_queue'];
  for (const v of views) {
    const r = rels.find((x) => x.relname === v);
    ok(r && r.relkind === 'v', `ipai.${v} is a view`);
  }
  // seeded plans and entitlements
  const plans = await sql`SELECT id FROM ipai.plans ORDER BY id`;
  ok(plans.some((p) => p.id === 'free') && plans.some((p) => p.id === 'pro'), 'seeded plans free and pro');
  const ct = await sql`SELECT column_default FROM information_schema.columns WHERE table_schema = 'ipai' AND table_name = 'organizations' AND column_name = 'plan_id'`;
  diag('organizations.plan_id default: ' + (ct[0] && ct[0].column_default));
  // extension packaging
  const [ext] = await sql`SELECT e.extrelocatable, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'ipai_saas'`;
  ok(ext && ext.nspname === 'ipai' && ext.extrelocatable === false, 'extension in schema ipai, not relocatable');
  const [own] = await sql`SELECT count(*)::int AS n FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ipai_saas') AND c.relkind IN ('r', 'p')`;
  is(own.n, 0, 'the extension owns no tables (they are created by install_schema)');
  const snap = () => sql`SELECT
      (SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || c.relrowsecurity::text, ',' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace) AS rels,
      (SELECT string_agg(polname || '@' || polrelid::regclass::text, ',' ORDER BY 1) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = 'ipai'::regnamespace) AS pols,
      (SELECT string_agg(tgname || '@' || tgrelid::regclass::text, ',' ORDER BY 1) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'ipai'::regnamespace AND NOT t.tgisinternal) AS trgs,
      (SELECT string_agg(conname, ',' ORDER BY 1) FROM pg_constraint WHERE connamespace = 'ipai'::regnamespace) AS cons,
      (SELECT string_agg(c.relname || '=' || coalesce(array_to_string(c.relacl, ' '), ''), ',' ORDER BY 1) FROM pg_class c WHERE c.relnamespace = 'ipai'::regnamespace) AS acl`;
  const [before] = await snap();
  const [again] = await sql`SELECT ipai.install_schema() IS NOT NULL AS x`.catch((e) => [{ x: e.message }]);
  const [after] = await snap();
  ok(JSON.stringify(before) === JSON.stringify(after), 'install_schema() again leaves relations, policies, triggers, constraints and grants as they were');
  is(again.x, true, 'install_schema() again: idempotent, returns text');
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
