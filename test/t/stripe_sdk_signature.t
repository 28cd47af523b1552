#!/usr/bin/env node
// stripe_sdk_signature.t: our Stripe signature functions against Stripe's
// own SDK (npm stripe, from $IPAI_SRC/test/node_modules), in both directions:
//   - headers made by stripe.webhooks.generateTestHeaderString verify with
//     ipai.stripe_verify_signature (bytea and text payloads);
//   - headers made by ipai.stripe_sign pass stripe.webhooks.constructEvent
//     and are byte-identical to the SDK's;
//   - tampered payloads, re-rendered JSON, wrong secrets, stale timestamps
//     and v0-only headers fail on both sides;
//   - headers mixing junk, empty, duplicate and unknown items with real
//     signatures (named cases and 600 random mixtures): our verdict equals
//     whether constructEvent accepts (one documented difference: the SDK
//     reads t with parseInt, we take canonical digits only).
// Payloads: test/fixtures/stripe/*.json (2-3 KB events) plus generated ones.
// Env: PGHOST PGPORT PGUSER PGDATABASE (a database with the extension),
// IPAI_SRC (repository root; packages in test/node_modules).
'use strict';

const path = require('path');
const fs = require('fs');

const root = process.env.IPAI_SRC || path.resolve(__dirname, '..', '..');
let Stripe;
let postgres;
try {
	Stripe = require(path.join(root, 'test', 'node_modules', 'stripe'));
	postgres = require(path.join(root, 'test', 'node_modules', 'postgres'));
} catch (e) {
	console.log('1..0 # SKIP npm stripe/postgres not installed in ' + root);
	process.exit(0);
}
const stripe = new Stripe('sk_test_not_used_offline');

let n = 0;
let failed = 0;
function ok(cond, name) {
	n++;
	if (!cond) failed++;
	console.log(`${cond ? '' : 'not '}ok ${n} - ${name}`);
}
function diag(msg) {
	console.log(String(msg).split('\n').map((l) => '# ' + l).join('\n'));
}

// SDK verification as a boolean; receivedAt pins the SDK's clock
function sdkAccepts(payload, header, secret, now) {
	try {
		stripe.webhooks.constructEvent(payload, header, secret, 300, undefined, now * 1000);
		return true;
	} catch (e) {
		if (e.type !== 'StripeSignatureVerificationError') throw e;
		return false;
	}
}

// deterministic pseudo-random generator for the generated payloads
let seed = 20240601;
function rnd(k) {
	seed = (seed * 1103515245 + 12345) & 0x7fffffff;
	return seed % k;
}
function randomEvent(i) {
	const words = ['pro', 'free', 'Zürich', 'naïve', '東京', '🚀', 'a"b', 'back\\slash', 'tab\tsep', 'line\nbreak'];
	const obj = {
		id: 'evt_gen_' + i,
		object: 'event',
		api_version: '2025-03-31.basil',
		created: 1735689600 + i,
		data: { object: { id: 'sub_gen_' + i, object: 'subscription', metadata: {} } },
		type: 'customer.subscription.updated',
	};
	for (let k = 0; k < 20 + rnd(40); k++)
		obj.data.object.metadata['k' + k] = words[rnd(words.length)] + ' ' + rnd(1e6);
	return rnd(2) ? JSON.stringify(obj, null, 2) : JSON.stringify(obj);
}

async function main() {
	const sql = postgres({ max: 1, onnotice: () => {} });
	const fixdir = path.join(root, 'test', 'fixtures', 'stripe');
	const fixtures = fs.readdirSync(fixdir).filter((f) => f.endsWith('.json')).sort();
	const secret = 'whsec_3kQ9vXo2Lm7pZr4Tb8Nw1Ys6Ud0Fe5Ha';
	const oldSecret = 'whsec_old0Rotated1Secret2Still3Active4';
	const T = 1735689612;
	const now = T + 7;

	async function ours(payloadBuf, header, sec, at) {
		const [r] = await sql`
			SELECT ipai.stripe_verify_signature(${payloadBuf}::bytea, ${header}, ${sec}, 300,
												to_timestamp(${at})) AS b,
				   ipai.stripe_verify_signature(convert_from(${payloadBuf}::bytea, 'UTF8'), ${header},
												${sec}, 300, to_timestamp(${at})) AS t`;
		if (r.b !== r.t) diag(`bytea (${r.b}) and text (${r.t}) disagree`);
		return r.b && r.t;
	}
	async function ourSign(payloadBuf, sec, t) {
		const [r] = await sql`SELECT ipai.stripe_sign(${payloadBuf}::bytea, ${sec}, to_timestamp(${t})) AS h`;
		return r.h;
	}

	ok(fixtures.length >= 3, `fixtures found: ${fixtures.join(', ')}`);

	for (const f of fixtures) {
		const buf = fs.readFileSync(path.join(fixdir, f));
		const raw = buf.toString('utf8');
		const event = JSON.parse(raw);
		ok(buf.length >= 2000 && buf.length <= 3100, `${f}: ${buf.length} bytes`);

		// SDK signs, we verify
		const sdkHeader = stripe.webhooks.generateTestHeaderString({ payload: raw, secret, timestamp: T });
		ok(await ours(buf, sdkHeader, secret, now), `${f}: SDK header verifies in SQL`);

		// we sign, SDK verifies
		const ourHeader = await ourSign(buf, secret, T);
		ok(ourHeader === sdkHeader, `${f}: ipai.stripe_sign header equals the SDK's`);
		let ev = null;
		try {
			ev = stripe.webhooks.constructEvent(raw, ourHeader, secret, 300, undefined, now * 1000);
		} catch (e) {
			diag(e.message);
		}
		ok(ev && ev.id === event.id && ev.type === event.type,
			`${f}: SDK constructEvent accepts ipai.stripe_sign (${event.type})`);
		ok(sdkAccepts(buf, ourHeader, secret, now), `${f}: SDK accepts it with a Buffer payload too`);

		// tampering: one byte of the amount/created, the re-rendered JSON
		const tampered = Buffer.from(raw.replace(/"created": (\d)/, '"created": 9'), 'utf8');
		ok(!tampered.equals(buf), `${f}: tampered copy differs`);
		ok(!(await ours(tampered, sdkHeader, secret, now)) && !sdkAccepts(tampered, sdkHeader, secret, now),
			`${f}: tampered payload fails on both sides`);
		const rerendered = Buffer.from(JSON.stringify(JSON.parse(raw)), 'utf8');
		ok(!(await ours(rerendered, sdkHeader, secret, now)) && !sdkAccepts(rerendered, sdkHeader, secret, now),
			`${f}: re-rendered JSON fails on both sides`);
		const [jr] = await sql`SELECT ipai.stripe_verify_signature(convert_from(${buf}::bytea, 'UTF8')::jsonb::text,
									${sdkHeader}, ${secret}, 300, to_timestamp(${now})) AS v`;
		ok(jr.v === false, `${f}: payload::jsonb::text fails in SQL`);

		// wrong secret, both directions
		ok(!(await ours(buf, sdkHeader, oldSecret, now)) && !sdkAccepts(raw, sdkHeader, oldSecret, now),
			`${f}: wrong secret fails on both sides`);
		ok(!(await ours(buf, ourHeader, secret.slice(6), now)) && !sdkAccepts(raw, ourHeader, secret.slice(6), now),
			`${f}: secret without whsec_ prefix fails on both sides`);

		// rotation: Stripe sends one v1 per active secret
		const oldSig = stripe.webhooks.generateTestHeaderString({ payload: raw, secret: oldSecret, timestamp: T })
			.split('v1=')[1];
		const rotated = `${sdkHeader},v1=${oldSig}`;
		ok(await ours(buf, rotated, secret, now) && await ours(buf, rotated, oldSecret, now)
			&& sdkAccepts(raw, rotated, secret, now) && sdkAccepts(raw, rotated, oldSecret, now),
			`${f}: header with two v1 verifies under either secret on both sides`);

		// time: stale is rejected by both; within tolerance accepted by both
		ok(!(await ours(buf, sdkHeader, secret, T + 301)) && !sdkAccepts(raw, sdkHeader, secret, T + 301),
			`${f}: 301 s old fails on both sides`);
		ok(await ours(buf, sdkHeader, secret, T + 300) && sdkAccepts(raw, sdkHeader, secret, T + 300),
			`${f}: 300 s old passes on both sides`);
		ok(!(await ours(buf, sdkHeader, secret, T - 301)),
			`${f}: 301 s in the future fails in SQL (the SDK checks only the past)`);

		// only a v0 signature: both refuse
		const v0 = stripe.webhooks.generateTestHeaderString({ payload: raw, secret, timestamp: T, scheme: 'v0' });
		ok(!(await ours(buf, v0, secret, now)) && !sdkAccepts(raw, v0, secret, now),
			`${f}: v0-only header fails on both sides (${v0.slice(0, 18)}...)`);
	}

	// generated payloads with non-ASCII, escapes, compact and pretty JSON
	let agree = 0;
	const total = 60;
	for (let i = 0; i < total; i++) {
		const raw = randomEvent(i);
		const buf = Buffer.from(raw, 'utf8');
		const t = T + i;
		const sdkHeader = stripe.webhooks.generateTestHeaderString({ payload: raw, secret, timestamp: t });
		const ourHeader = await ourSign(buf, secret, t);
		const good = ourHeader === sdkHeader && await ours(buf, sdkHeader, secret, t + 1)
			&& sdkAccepts(raw, ourHeader, secret, t + 1);
		const flip = Buffer.from(buf);
		flip[rnd(flip.length)] ^= 0x01;
		const bad = !(await ours(flip, sdkHeader, secret, t + 1)) && !sdkAccepts(flip, sdkHeader, secret, t + 1);
		if (good && bad) agree++;
		else diag(`disagreement on generated payload ${i}: good=${good} bad=${bad}`);
	}
	ok(agree === total, `${agree}/${total} generated payloads: SDK and SQL agree (signed, verified, bit flip rejected)`);

	// mixed headers: junk, empty, duplicate and unknown items around real
	// signatures; our verdict must equal whether constructEvent accepts
	{
		const raw = fs.readFileSync(path.join(fixdir, fixtures[0]), 'utf8');
		const buf = Buffer.from(raw, 'utf8');
		const sigAt = (t, sec) => stripe.webhooks
			.generateTestHeaderString({ payload: raw, secret: sec || secret, timestamp: t }).split('v1=')[1];
		const good = sigAt(T);
		const older = sigAt(T - 100);	// signed at another (still fresh) t
		const otherKey = sigAt(T, oldSecret);
		const pool = [
			`t=${T}`, `t=${T}`, `t=${T}`, `t=${T - 100}`, 't=abc', 't=', 't', `t=${T}=5`,
			`v1=${good}`, `v1=${good}`, `v1=${older}`, `v1=${otherKey}`,
			'v1=abc', 'v1=0', `v1=${good.slice(1)}`, `v1=${good.slice(2)}`, `v1=${good}00`,
			`v1=${good.toUpperCase()}`, `v1=${good.slice(0, 63)}g`, `v1=${'z'.repeat(64)}`,
			'v1=', 'v1', 'v1==', `v1=${good}=junk`, `v1==${good}`,
			`v0=${good}`, ` v1=${good}`, `v1 =${good}`, `V1=${good}`, 'x=1', '', 'junk', '=', '=x',
		];
		// the SDK's verdict; any exception (its secureCompare throws on an
		// empty v1) means "not accepted"
		function sdkVerdict(header) {
			try {
				stripe.webhooks.constructEvent(raw, header, secret, 300, undefined, now * 1000);
				return true;
			} catch (e) {
				return false;
			}
		}
		const named = [
			[`t=${T},v1=abc,v1=${good}`, true, 'non-hex v1 before the good one'],
			[`t=${T},v1=${good},v1=abc`, true, 'non-hex v1 after the good one'],
			[`t=${T},v1=${good.slice(1)},v1=${good}`, true, 'odd-length v1 before the good one'],
			[`t=${T},v1=${good}00,v1=${good}`, true, 'too long v1 before the good one'],
			[`t=${T},v1=${good.toUpperCase()}`, false, 'upper-case hex alone'],
			[`t=${T},v1=${good.toUpperCase()},v1=${good}`, true, 'upper-case hex, then lower-case'],
			[`t=${T},v1=,v1=${good}`, false, 'empty v1 before the good one (SDK throws)'],
			[`t=${T},v1=${good},v1`, false, 'bare v1 item after the good one (SDK throws)'],
			[`t=${T},v1=${good},`, true, 'trailing comma'],
			[`t=${T},,v1=${good},junk`, true, 'empty item and item without ='],
			[`t=${T},t=${T},v1=${good}`, true, 'duplicate equal t'],
			[`t=${T - 100},t=${T},v1=${good}`, true, 'duplicate t, the last is the signed one'],
			[`t=${T},t=${T - 100},v1=${good}`, false, 'duplicate t, the first is the signed one'],
			[`t=abc,t=${T},v1=${good}`, true, 'bad t overridden by a later t'],
			[`t=${T},v1=${good},t`, false, 'bare t last'],
			[`t=${T},v1=${good}=junk`, true, 'v1 value ends at the second ='],
			[`t=${T}=5,v1=${good}`, true, 't value ends at the second ='],
			[`t=${T},v1=abc`, false, 'only a junk v1'],
			[`t=${T},v0=${good}`, false, 'only v0'],
		];
		let namedOk = 0;
		for (const [header, want, label] of named) {
			const sdk = sdkVerdict(header);
			const we = await ours(buf, header, secret, now);
			if (sdk === want && we === want) namedOk++;
			else diag(`${label}: SDK ${sdk}, SQL ${we}, expected ${want}: ${header.slice(0, 120)}`);
		}
		ok(namedOk === named.length, `${namedOk}/${named.length} named mixed headers: SQL equals the SDK`);

		// random mixtures: usually the real t and v1, plus 0-4 pool items,
		// shuffled
		const headers = [];
		for (let i = 0; i < 600; i++) {
			const items = [];
			if (rnd(100) < 85) items.push(`t=${T}`);
			if (rnd(100) < 75) items.push(`v1=${good}`);
			for (let j = rnd(5); j > 0; j--) items.push(pool[rnd(pool.length)]);
			for (let j = items.length - 1; j > 0; j--) {
				const r = rnd(j + 1);
				[items[j], items[r]] = [items[r], items[j]];
			}
			headers.push(items.join(','));
		}
		const rows = await sql`
			SELECT h.ord, ipai.stripe_verify_signature(${buf}::bytea, h.header, ${secret}, 300,
													   to_timestamp(${now})) AS v
			FROM unnest(${headers}::text[]) WITH ORDINALITY AS h(header, ord) ORDER BY h.ord`;
		let same = 0;
		let accepted = 0;
		for (let i = 0; i < headers.length; i++) {
			const sdk = sdkVerdict(headers[i]);
			if (sdk) accepted++;
			if (rows[i].v === sdk) same++;
			else if (i + 1 - same <= 10) diag(`SDK ${sdk}, SQL ${rows[i].v}: ${headers[i]}`);
		}
		ok(same === headers.length && accepted >= 100 && accepted <= headers.length - 100,
			`${same}/${headers.length} random mixed headers: SQL equals the SDK (${accepted} accepted)`);

		// the documented difference: the SDK reads t with parseInt and signs
		// the number it read; we take only canonical digits
		const lax = [`t=0${T},v1=${good}`, `t=${T}abc,v1=${good}`, `t= ${T},v1=${good}`, `t=+${T},v1=${good}`];
		let stricter = 0;
		for (const header of lax)
			if (sdkVerdict(header) && !(await ours(buf, header, secret, now))) stricter++;
		ok(stricter === lax.length,
			`non-canonical t (leading zero, trailing junk, space, plus): SDK accepts, SQL refuses (${stricter}/${lax.length})`);
	}

	await sql.end();
	console.log(`1..${n}`);
	process.exit(failed ? 1 : 0);
}

main().catch((e) => {
	console.log('not ok ' + (n + 1) + ' - unexpected error');
	diag(e.stack || e);
	console.log(`1..${n + 1}`);
	process.exit(1);
});
