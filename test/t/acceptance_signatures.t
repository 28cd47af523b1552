#!/usr/bin/env node
// acceptance_signatures.t: Stripe and Standard Webhooks signature functions
// against outside references: Stripe's Node SDK (generateTestHeaderString,
// constructEvent), Node's crypto, and the Standard Webhooks published test
// vector.  SPEC 3 "Stripe webhooks".
'use strict';
const path = require('path');
const crypto = require('crypto');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code } = L;
const Stripe = L.req('stripe');
const stripe = new Stripe('sk_test_offline');

const secret = 'whsec_acceptanceSecretValue0123456789abcdef';
const T = 1767225600; // 2026-01-01T00:00:00Z
const ts = (s) => new Date(s * 1000).toISOString();
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest('hex');

(async () => {
  const sql = L.postgres(L.url(process.env.PGDATABASE), { max: 1, onnotice: () => {} });
  const vText = async (payload, header, opts = {}) => (await sql`
    SELECT ipai.stripe_verify_signature(${payload}::text, ${header}::text, ${opts.secret || secret}::text,
      ${opts.tol ?? 300}::integer, ${ts(opts.now ?? T)}::timestamptz) AS v`)[0].v;
  const vBytes = async (payload, header, opts = {}) => (await sql`
    SELECT ipai.stripe_verify_signature(${Buffer.from(payload)}::bytea, ${header}::text, ${opts.secret || secret}::text,
      ${opts.tol ?? 300}::integer, ${ts(opts.now ?? T)}::timestamptz) AS v`)[0].v;

  const payload = JSON.stringify({ id: 'evt_1QAcc', object: 'event', type: 'invoice.paid', created: T,
    data: { object: { id: 'in_1', object: 'invoice', customer: 'cus_X', description: 'Zürich 東京 🚀 "q" \\ \n' } } }, null, 2);
  const sdkHeader = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: T });
  is(await vText(payload, sdkHeader), true, 'SDK header, text payload: true');
  is(await vBytes(payload, sdkHeader), true, 'SDK header, bytea payload: true');
  is(await vText(JSON.stringify(JSON.parse(payload)), sdkHeader), false, 're-rendered JSON (same object, other bytes): false');
  is(await vText(payload + ' ', sdkHeader), false, 'one trailing byte more: false');
  is(await vText(payload, sdkHeader, { secret: secret + 'x' }), false, 'wrong secret: false');
  // the key is the whole whsec_ string, not its decoded tail
  const tail = secret.slice(6);
  const wrongKey = `t=${T},v1=${hmac(tail, `${T}.${payload}`)}`;
  is(await vText(payload, wrongKey, {}), false, 'HMAC keyed with the secret minus "whsec_": false');

  // non-UTF-8 raw bytes: verified over the bytes as received
  const raw = Buffer.concat([Buffer.from('{"id":"evt_bin","x":"'), Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.from('"}')]);
  const rawSig = crypto.createHmac('sha256', secret).update(Buffer.concat([Buffer.from(`${T}.`), raw])).digest('hex');
  is((await sql`SELECT ipai.stripe_verify_signature(${raw}::bytea, ${`t=${T},v1=${rawSig}`}, ${secret}, 300, ${ts(T)}::timestamptz) AS v`)[0].v,
    true, 'bytea payload with non-UTF-8 bytes and a NUL: verified over the raw bytes');

  // several v1: any may match; v0 and other schemes ignored
  const sdk = (h, now = T) => { try { stripe.webhooks.constructEvent(payload, h, secret, 300, undefined, now * 1000); return true; } catch (e) { return false; } };
  const good = sdkHeader.split(',').find((x) => x.startsWith('v1=')).slice(3);
  const bad = '0'.repeat(64);
  is(await vText(payload, `t=${T},v1=${bad},v1=${good}`), true, 'several v1, the second matches: true');
  is(await vText(payload, `t=${T},v1=${good},v1=${bad}`), true, 'several v1, the first matches: true');
  is(await vText(payload, `t=${T},v0=${good}`), false, 'the right HMAC only under v0: false');
  is(await vText(payload, `t=${T},v1=not-hex-at-all,v1=${good}`), true, 'a malformed (non-hex) v1 before the matching one: true (as the SDK)');
  is(await vText(payload, `t=${T},v1=abc,v1=${good}`), true, 'a short v1 before the matching one: true (as the SDK)');
  is(await vText(payload, `t=${T},v1=${good},v1=abc`), true, 'the matching v1 first, a short v1 after: true');
  is(await vText(payload, `t=${T},v0=zz,v1=${good}`), true, 'a malformed v0 beside the matching v1: true');
  ok(sdk(`t=${T},v1=not-hex-at-all,v1=${good}`) && sdk(`t=${T},v1=abc,v1=${good}`), '(reference) the SDK accepts both');
  is(await vText(payload, `t=${T},v0=${bad},v1=${good},x9=zzz`), true, 'v0 and unknown schemes beside a good v1 are ignored');
  is(await vText(payload, `t=${T},v1=${good.slice(0, 63)}`), false, 'a truncated v1 (63 hex digits): false');
  is(await vText(payload, `t=${T},v1=`), false, 'an empty v1: false');
  is(await vText(payload, `t=${T + 1},v1=${good}`), false, 'the signature for another t: false');
  // the SDK agrees with all of the above
  ok(sdk(`t=${T},v1=${bad},v1=${good}`) && !sdk(`t=${T},v0=${good}`), '(reference) the SDK agrees on several v1 and v0');

  // tolerance boundaries: |now - t| <= tolerance
  is(await vText(payload, sdkHeader, { now: T + 300 }), true, 'now = t + 300 s, tolerance 300: true');
  is(await vText(payload, sdkHeader, { now: T + 301 }), false, 'now = t + 301 s: false');
  is(await vText(payload, sdkHeader, { now: T - 300 }), true, 'now = t - 300 s: true');
  is(await vText(payload, sdkHeader, { now: T - 301 }), false, 'now = t - 301 s (from the future): false');
  is((await sql`SELECT ipai.stripe_verify_signature(${payload}::text, ${sdkHeader}, ${secret}, 300, ${new Date(T * 1000 + 300500).toISOString()}::timestamptz) AS v`)[0].v,
    false, 'now = t + 300.5 s: false');
  is(await vText(payload, sdkHeader, { now: T + 1000, tol: 1000 }), true, 'tolerance 1000 at 1000 s: true');
  is(await vText(payload, sdkHeader, { now: T + 1, tol: 1 }), true, 'tolerance 1 at 1 s: true');
  for (const tol of [0, -1, -300]) {
    is(await code(() => sql`SELECT ipai.stripe_verify_signature(${payload}::text, ${sdkHeader}, ${secret}, ${tol}::integer, ${ts(T)}::timestamptz)`),
      '22023', `tolerance ${tol} (text): 22023`);
    is(await code(() => sql`SELECT ipai.stripe_verify_signature(${Buffer.from(payload)}::bytea, ${sdkHeader}, ${secret}, ${tol}::integer, ${ts(T)}::timestamptz)`),
      '22023', `tolerance ${tol} (bytea): 22023`);
  }
  // default now() and default tolerance: a header signed now verifies, one 10 minutes old does not
  const nowS = Math.floor(Date.now() / 1000);
  const hNow = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: nowS });
  is((await sql`SELECT ipai.stripe_verify_signature(${payload}::text, ${hNow}, ${secret}) AS v`)[0].v, true, 'defaults: signed now verifies');
  const hOld = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: nowS - 600 });
  is((await sql`SELECT ipai.stripe_verify_signature(${payload}::text, ${hOld}, ${secret}) AS v`)[0].v, false, 'defaults: signed 600 s ago fails (tolerance 300)');

  // malformed headers: false, never a crash or an error
  const malformed = ['', ' ', ',', '=', 't=', 'v1=', `t=${T}`, `v1=${good}`, `t=abc,v1=${good}`, `t=${T}abc,v1=${good}`,
    `t=,v1=${good}`, `t=-1,v1=${good}`, `t=99999999999999999999999,v1=${good}`, `t=${T},v1=zz${good.slice(2)}`,
    `t=${T},,,v1`, 'x'.repeat(10000), `t=${T},v1=${good}`.replace(/,/g, ';'), `t=1.5e9,v1=${good}`, `t=${T},v1=${'a'.repeat(100000)}`];
  let allFalse = true, bad1 = null;
  for (const h of malformed) {
    try {
      const v = await vText(payload, h);
      if (v !== false) { allFalse = false; bad1 = [h.slice(0, 60), v]; }
    } catch (e) { allFalse = false; bad1 = [h.slice(0, 60), e.code, e.message]; }
  }
  ok(allFalse, `${malformed.length} malformed headers: false, no error`, bad1);
  const [alive] = await sql`SELECT 1 AS one`;
  is(alive.one, 1, 'the backend is still alive');
  // NULL arguments: no crash; not true
  for (const [label, q] of [
    ['NULL payload', sql`SELECT ipai.stripe_verify_signature(NULL::text, ${sdkHeader}, ${secret}, 300, ${ts(T)}::timestamptz) AS v`],
    ['NULL header', sql`SELECT ipai.stripe_verify_signature(${payload}::text, NULL, ${secret}, 300, ${ts(T)}::timestamptz) AS v`],
    ['NULL secret', sql`SELECT ipai.stripe_verify_signature(${payload}::text, ${sdkHeader}, NULL, 300, ${ts(T)}::timestamptz) AS v`],
  ]) {
    let r;
    try { r = (await q)[0].v; } catch (e) { r = 'error ' + e.code; }
    ok(r !== true, `${label}: not verified (got ${r})`);
  }

  // ipai.stripe_sign -> SDK
  const [{ h: ours }] = await sql`SELECT ipai.stripe_sign(${payload}, ${secret}, ${ts(T)}::timestamptz) AS h`;
  is(ours, sdkHeader, 'stripe_sign output equals the SDK header for the same t');
  ok(sdk(ours), 'stripe_sign output accepted by the SDK constructEvent');
  const [{ h: oursNow }] = await sql`SELECT ipai.stripe_sign(${payload}, ${secret}) AS h`;
  let sdkNowOk = false;
  try { stripe.webhooks.constructEvent(payload, oursNow, secret); sdkNowOk = true; } catch (e) {}
  ok(sdkNowOk, 'stripe_sign with the default t (now) accepted by the SDK with its default tolerance');
  const [{ h: oursFrac }] = await sql`SELECT ipai.stripe_sign(${payload}, ${secret}, '2026-01-01 00:00:00.999+00'::timestamptz) AS h`;
  ok(/^t=1767225600,v1=[0-9a-f]{64}$/.test(oursFrac), 'stripe_sign with fractional seconds: t is the whole second', oursFrac);
  ok(sdk(oursFrac), '... and that header is valid for the SDK');

  // Standard Webhooks: the published test vector
  const SW = { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', t: 1614265330, payload: '{"test": 2432232314}',
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', sig: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
  const ref = 'v1,' + crypto.createHmac('sha256', Buffer.from(SW.secret.slice(6), 'base64')).update(`${SW.id}.${SW.t}.${SW.payload}`).digest('base64');
  is(ref, SW.sig, '(reference) Node crypto reproduces the published vector');
  const sw = async (opts = {}) => {
    const o = { ...SW, now: SW.t, tol: 300, ...opts };
    return (await sql`SELECT ipai.standard_webhook_verify(${Buffer.from(o.payload)}::bytea, ${o.id}, ${String(o.ts ?? o.t)},
      ${o.sig}, ${o.secret}, ${o.tol}::integer, ${ts(o.now)}::timestamptz) AS v`)[0].v;
  };
  is(await sw(), true, 'Standard Webhooks published vector: true');
  is(await sw({ sig: 'v1,bad v1,bad2 ' + SW.sig }), true, 'space-separated list, malformed base64 entries before the matching one: true');
  is(await sw({ sig: 'v1,!!! ' + SW.sig }), true, 'one non-base64 entry before the matching one: true');
  is(await sw({ sig: 'v1,' + Buffer.alloc(32, 7).toString('base64') + ' ' + SW.sig }), true, 'space-separated list, a well-formed wrong signature first: true');
  is(await sw({ sig: SW.sig + ' v1a,whatever' }), true, 'the first matches, an unknown scheme after: true');
  is(await sw({ sig: 'v1,' }), false, 'the "v1," empty-signature attack: false');
  is(await sw({ sig: 'v1, v1,' }), false, '"v1, v1,": false');
  is(await sw({ sig: 'v1,' + SW.sig.slice(3, 10) }), false, 'a prefix of the right signature: false');
  is(await sw({ sig: 'v2,' + SW.sig.slice(3) }), false, 'the right HMAC under v2: false');
  is(await sw({ sig: SW.sig.slice(3) }), false, 'a bare base64 signature without "v1,": false');
  is(await sw({ id: SW.id + 'x' }), false, 'another msg_id: false');
  is(await sw({ payload: '{"test": 2432232315}' }), false, 'another payload: false');
  is(await sw({ secret: 'whsec_' + Buffer.from('other-secret-bytes').toString('base64') }), false, 'another secret: false');
  is(await sw({ now: SW.t + 300 }), true, 'Standard Webhooks now = ts + 300: true');
  is(await sw({ now: SW.t + 301 }), false, 'now = ts + 301: false');
  is(await sw({ now: SW.t - 300 }), true, 'now = ts - 300: true');
  is(await sw({ now: SW.t - 301 }), false, 'now = ts - 301 (future message): false');
  is(await sw({ ts: 'abc' }), false, 'non-numeric msg_timestamp: false');
  is(await code(() => sw({ tol: 0 })), '22023', 'Standard Webhooks tolerance 0: 22023');
  const badSw = [];
  for (const s of ['', ' ', 'v1', ',', 'v1,!!!!', 'v1,====', 'v1,' + 'A'.repeat(5000)]) {
    try { const v = await sw({ sig: s }); if (v !== false) badSw.push([s.slice(0, 20), v]); } catch (e) { badSw.push([s.slice(0, 20), e.code]); }
  }
  ok(!badSw.length, 'malformed Standard Webhooks headers: false, no error', badSw);
  let swNoPrefix;
  try { swNoPrefix = await sw({ secret: 'whsec_' }); } catch (e) { swNoPrefix = e.code; }
  ok(swNoPrefix !== true, `an empty secret "whsec_": never true (${swNoPrefix})`);

  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
