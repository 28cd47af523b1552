#!/usr/bin/env bash
# standins.t: the local stand-ins for Stripe (test/lib/stripe_standin.js)
# and Supabase Auth (test/lib/auth_standin.js), proved against the real
# SDKs over real HTTP: npm stripe 23.1.0 (its node http client and
# Stripe.createFetchHttpClient(), with host/port/protocol) and
# @supabase/supabase-js 2.119.2.  Checkout Sessions and meter events are
# accepted as Stripe accepts them and refused as Stripe refuses them
# (unknown, missing, mistyped, over-long parameters, the timestamp window,
# identifier dedupe, idempotency replays and mismatches); every fault kind
# is observed by the SDK as the error it raises, with its own retries; the
# Auth invite, magic link and JWKS (with rotation) behave as supabase/auth
# does; hand-made wrong requests are refused, so the checks can fail.
# Needs no database.  Every server started here is stopped on exit.
set -uo pipefail
IPAI_SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$IPAI_SRC/test/lib/standins.sh"

work=$(mktemp -d /tmp/standins-t.XXXXXX)
cleanup() {
	local rc=$?
	standin_stop_all
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

if ! [ -d "$IPAI_SRC/test/node_modules/stripe" ] || ! [ -d "$IPAI_SRC/test/node_modules/@supabase/supabase-js" ]; then
	echo "1..0 # SKIP npm stripe / @supabase/supabase-js not installed (run test/bootstrap.sh)"
	exit 0
fi

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}

standin_start stripe --secret-key sk_test_standin_51Mz \
	--customers cus_Known1,cus_Known2 \
	--meters api_calls,tokens:customer_id:qty \
	--prices price_pro_monthly:recurring:2900:usd,price_setup:one_time:5000:usd
ok $? "the Stripe stand-in starts and writes its port files"
standin_start auth --service-key standin-service-key --anon-key standin-anon-key \
	--users existing@acme.example,pending@acme.example:unconfirmed \
	--site-url https://app.example.com --redirect-allow 'https://app.example.com/**' \
	--undeliverable-domains bounce.example
ok $? "the Auth stand-in starts and writes its port files"
grep -q "^stripe-standin listening on http://127.0.0.1:$STRIPE_STANDIN_PORT (admin port" "$STRIPE_STANDIN_LOG" &&
	[ "$(wc -l <"$STRIPE_STANDIN_LOG")" = 1 ]
ok $? "the Stripe stand-in prints one 'listening' line and nothing else"
grep -q "^auth-standin listening on http://127.0.0.1:$AUTH_STANDIN_PORT" "$AUTH_STANDIN_LOG"
ok $? "the Auth stand-in prints its 'listening' line"

node "$IPAI_SRC/test/lib/stripe_standin.js" --no-such-option 2>"$work/err" >/dev/null
[ $? = 2 ] && grep -q "unknown option --no-such-option" "$work/err"
ok $? "an unknown option stops the stand-in with status 2 and says why"

# Node 20 has no global WebSocket, which supabase-js 2.119.2 needs to construct a client
nodeflags=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then nodeflags=(--experimental-websocket); fi

cd "$IPAI_SRC" || exit 1
START=$n COUNT_FILE="$work/count" node "${nodeflags[@]}" - <<'JS' 2> >(grep -v -e 'Node.js 20 and below are deprecated' -e '^$' >&2)
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const root = process.cwd();
const Stripe = require(path.join(root, 'test', 'node_modules', 'stripe'));
const { createClient } = require(path.join(root, 'test', 'node_modules', '@supabase', 'supabase-js'));

const KEY = 'sk_test_standin_51Mz';
const S = process.env.STRIPE_STANDIN_URL;
const SA = process.env.STRIPE_STANDIN_ADMIN;
const A = process.env.AUTH_STANDIN_URL;
const AA = process.env.AUTH_STANDIN_ADMIN;
const port = Number(process.env.STRIPE_STANDIN_PORT);

let n = Number(process.env.START);
let failed = 0;
function ok(cond, name, extra) {
	n++;
	if (!cond) failed++;
	console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
	if (!cond && extra !== undefined) console.log('# ' + JSON.stringify(extra, null, 0).slice(0, 1500));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function adm(base, p, body, method) {
	const res = await fetch(base + '/__standin/' + p, {
		method: method || (body === undefined ? 'GET' : 'POST'),
		headers: { 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return res.json();
}
const sAdm = (p, body, method) => adm(SA, p, body, method);
const aAdm = (p, body, method) => adm(AA, p, body, method);
const stripeClient = (extra = {}) => new Stripe(KEY, Object.assign({ host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0, timeout: 3000 }, extra));
async function attempt(promise) {
	try {
		return { value: await promise };
	} catch (e) {
		return { err: e };
	}
}
const nowSec = () => Math.floor(Date.now() / 1000);
let idSeq = 0;
const uid = (p) => `${p}-${process.pid}-${++idSeq}`;
async function meterCount() {
	return (await sAdm('meter_events')).meter_events.length;
}
async function requestsSince(seq, p) {
	return (await sAdm(`requests?since=${seq}${p ? `&path=${encodeURIComponent(p)}` : ''}`)).requests;
}
async function lastSeq() {
	const r = (await sAdm('requests')).requests;
	return r.length ? r[r.length - 1].seq : 0;
}

const checkoutParams = {
	mode: 'subscription',
	line_items: [{ price: 'price_pro_monthly', quantity: 1 }],
	success_url: 'https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}',
	cancel_url: 'https://app.example.com/billing?canceled=1',
	client_reference_id: 'c0c00000-0000-4000-8000-00000000000a',
	customer_email: 'billing@acme.example',
	metadata: { org_id: 'c0c00000-0000-4000-8000-00000000000a', plan_id: 'pro' },
	subscription_data: { metadata: { org_id: 'c0c00000-0000-4000-8000-00000000000a', plan_id: 'pro' } },
};

async function stripeCheckout() {
	const stripe = stripeClient();
	let r = await attempt(stripe.checkout.sessions.create(checkoutParams));
	const cs = r.value;
	ok(cs && /^cs_test_/.test(cs.id) && cs.object === 'checkout.session' && cs.mode === 'subscription' && cs.status === 'open'
		&& /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/.test(cs.url) && cs.amount_total === 2900 && cs.currency === 'usd'
		&& cs.metadata.plan_id === 'pro' && cs.client_reference_id === checkoutParams.client_reference_id,
	'SDK (node http client): a subscription Checkout Session is created, with a realistic checkout.session', r.err || cs);
	ok(cs && /^req_[A-Za-z0-9]{14}$/.test(cs.lastResponse.requestId), 'the answer carries a Request-Id header the SDK exposes', cs && cs.lastResponse.headers);
	const reqs = (await sAdm('requests?path=/v1/checkout/sessions')).requests;
	const q = reqs[reqs.length - 1];
	ok(q && q.method === 'POST' && q.headers['content-type'] === 'application/x-www-form-urlencoded'
		&& q.headers.authorization === `Bearer ${KEY}` && /^stripe-node-retry-[0-9a-f-]{36}$/.test(q.headers['idempotency-key'])
		&& q.headers['stripe-version'] === '2026-10-28.endive' && q.body.includes('line_items[0][price]=price_pro_monthly')
		&& q.body.includes('subscription_data[metadata][plan_id]=pro'),
	'the request log shows form encoding in bracket notation, Bearer key, an SDK idempotency key and Stripe-Version', q);
	ok(q && q.params.line_items[0].quantity === '1' && q.params.metadata.org_id === checkoutParams.metadata.org_id && q.status === 200,
		'the request log has the decoded parameters and the status answered', q && q.params);

	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { customer_email: undefined, customer: 'cus_Known1' })));
	ok(r.value && r.value.customer === 'cus_Known1', 'a known customer is accepted', r.err);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { customer_email: undefined, customer: 'cus_Nobody' })));
	ok(r.err && r.err.type === 'StripeInvalidRequestError' && r.err.code === 'resource_missing' && r.err.param === 'customer'
		&& r.err.message === "No such customer: 'cus_Nobody'", 'an unknown customer: 400 resource_missing', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { customer: 'cus_Known1' })));
	ok(r.err && r.err.statusCode === 400 && r.err.code === 'parameters_exclusive', 'customer with customer_email: 400 parameters_exclusive', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { foo: 'bar' })));
	ok(r.err && r.err.type === 'StripeInvalidRequestError' && r.err.statusCode === 400 && r.err.code === 'parameter_unknown'
		&& r.err.param === 'foo' && r.err.message === 'Received unknown parameter: foo'
		&& r.err.raw.doc_url === 'https://stripe.com/docs/error-codes/parameter-unknown',
	'an unknown parameter: 400 "Received unknown parameter: foo" with param and doc_url', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { line_items: [{ price: 'price_pro_monthly', quantity: 1, colour: 'red' }] })));
	ok(r.err && r.err.param === 'line_items[0][colour]', 'a nested unknown parameter is named in bracket notation', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { client_reference_id: 'x'.repeat(200) })));
	ok(r.value && r.value.client_reference_id.length === 200, 'client_reference_id of 200 characters is accepted', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { client_reference_id: 'x'.repeat(201) })));
	ok(r.err && r.err.statusCode === 400 && r.err.param === 'client_reference_id' && /at most 200 characters/.test(r.err.message),
		'client_reference_id of 201 characters: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { mode: 'weekly' })));
	ok(r.err && r.err.param === 'mode' && /must be one of payment, setup, or subscription/.test(r.err.message), 'an unknown mode: 400 naming the enum', r.err && r.err.raw);
	const noMode = Object.assign({}, checkoutParams);
	delete noMode.mode;
	r = await attempt(stripe.checkout.sessions.create(noMode));
	ok(r.err && r.err.code === 'parameter_missing' && r.err.param === 'mode' && r.err.message === 'Missing required param: mode.', 'no mode: 400 parameter_missing', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { success_url: undefined })));
	ok(r.err && r.err.param === 'success_url' && r.err.code === 'parameter_missing', 'no success_url with the hosted page: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { success_url: 'javascript:alert(1)' })));
	ok(r.err && r.err.param === 'success_url' && r.err.message === 'Not a valid URL', 'a success_url that is not a URL: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { line_items: [{ price: 'price_pro_monthly', quantity: 'two' }] })));
	ok(r.err && r.err.code === 'parameter_invalid_integer' && r.err.param === 'line_items[0][quantity]', 'a quantity that is not an integer: 400 parameter_invalid_integer', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { line_items: [{ price: 'price_setup', quantity: 1 }] })));
	ok(r.err && /at least one recurring price/.test(r.err.message), 'subscription mode with only a one-time price: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { mode: 'payment', subscription_data: undefined })));
	ok(r.err && /recurring price/.test(r.err.message), 'payment mode with a recurring price: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { mode: 'payment', line_items: [{ price: 'price_setup', quantity: 2 }] })));
	ok(r.err && r.err.param === 'subscription_data', 'subscription_data in payment mode: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { line_items: [{ price: 'price_nope', quantity: 1 }] })));
	ok(r.err && r.err.code === 'resource_missing' && r.err.param === 'line_items[0][price]', 'an unknown price: 400 resource_missing', r.err && r.err.raw);
	const many = {};
	for (let i = 0; i < 51; i++) many[`k${i}`] = 'v';
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { metadata: many })));
	ok(r.err && r.err.statusCode === 400 && /up to 50 metadata keys/.test(r.err.message), 'metadata with 51 keys: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { metadata: { ['k'.repeat(41)]: 'v' } })));
	ok(r.err && /keys can have up to 40 characters/.test(r.err.message), 'a metadata key of 41 characters: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { subscription_data: { metadata: { note: 'v'.repeat(501) } } })));
	ok(r.err && r.err.param === 'subscription_data[metadata][note]' && /up to 500 characters/.test(r.err.message), 'a subscription_data metadata value of 501 characters: 400', r.err && r.err.raw);
	r = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { metadata: Object.fromEntries(Object.entries(many).slice(0, 50)) })));
	ok(r.value && Object.keys(r.value.metadata).length === 50, 'metadata with 50 keys is accepted', r.err && r.err.raw);

	// idempotency
	const key = uid('checkout');
	const a = await attempt(stripe.checkout.sessions.create(checkoutParams, { idempotencyKey: key }));
	const before = (await sAdm('checkout_sessions')).checkout_sessions.length;
	const b = await attempt(stripe.checkout.sessions.create(checkoutParams, { idempotencyKey: key }));
	const after = (await sAdm('checkout_sessions')).checkout_sessions.length;
	ok(a.value && b.value && a.value.id === b.value.id && b.value.lastResponse.headers['idempotent-replayed'] === 'true' && before === after,
		'the same Idempotency-Key with the same parameters replays the same session (Idempotent-Replayed: true), nothing new is created',
		{ a: a.value && a.value.id, b: b.value && b.value.id, h: b.value && b.value.lastResponse.headers, before, after });
	const c = await attempt(stripe.checkout.sessions.create(Object.assign({}, checkoutParams, { client_reference_id: 'other' }), { idempotencyKey: key }));
	ok(c.err && c.err.type === 'StripeIdempotencyError' && c.err.statusCode === 400 && c.err.rawType === 'idempotency_error',
		'the same key with other parameters: 400 idempotency_error (StripeIdempotencyError)', c.err && c.err.raw);

	const wrong = new Stripe('sk_test_notTheRightKey1234', { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
	r = await attempt(wrong.checkout.sessions.create(checkoutParams));
	ok(r.err && r.err.type === 'StripeAuthenticationError' && r.err.statusCode === 401 && r.err.message === `Invalid API Key provided: sk_test_${'*'.repeat(14)}1234`,
		'another secret key: 401 StripeAuthenticationError, key masked as Stripe does', r.err && r.err.raw);

	const viaFetch = stripeClient({ httpClient: Stripe.createFetchHttpClient() });
	r = await attempt(viaFetch.checkout.sessions.create(checkoutParams));
	ok(r.value && /^cs_test_/.test(r.value.id), 'SDK with Stripe.createFetchHttpClient(): a Checkout Session is created', r.err);
	r = await attempt(viaFetch.checkout.sessions.create(Object.assign({}, checkoutParams, { nope: 1 })));
	ok(r.err && r.err.type === 'StripeInvalidRequestError' && r.err.param === 'nope', 'SDK with the fetch client: refusals arrive as the same error classes', r.err);
}

async function stripeMeterEvents() {
	const stripe = stripeClient();
	const id1 = uid('ev');
	const ts = nowSec() - 60;
	let r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '5' }, identifier: id1, timestamp: ts }));
	ok(r.value && r.value.object === 'billing.meter_event' && r.value.identifier === id1 && r.value.timestamp === ts && r.value.payload.value === '5'
		&& r.value.event_name === 'api_calls' && r.value.livemode === false && Number.isInteger(r.value.created),
	'a meter event is accepted and answered as billing.meter_event', r.err || r.value);
	let events = (await sAdm('meter_events')).meter_events;
	const e1 = events.find((e) => e.identifier === id1);
	ok(e1 && e1.customer === 'cus_Known1' && e1.value === '5' && e1.timestamp === ts && e1.event_name === 'api_calls' && e1.received_at && !e1.async_error,
		'the stand-in records identifier, customer, value, timestamp, event name and received time', e1);
	const count1 = await meterCount();
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '5' }, identifier: id1, timestamp: ts }));
	ok(r.err && r.err.type === 'StripeInvalidRequestError' && r.err.statusCode === 400 && r.err.message === `An event already exists with identifier ${id1}.`
		&& r.err.headers['stripe-should-retry'] === 'false',
	'the same identifier again (new SDK key): 400 "An event already exists with identifier ...", Stripe-Should-Retry: false', r.err && r.err.raw);
	ok((await meterCount()) === count1 && (await sAdm('stats')).duplicates >= 1, 'the duplicate is not recorded twice and is counted as a duplicate');
	const key = uid('mk');
	const p2 = { event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known2', value: '7' }, identifier: uid('ev'), timestamp: ts };
	const a = await attempt(stripe.billing.meterEvents.create(p2, { idempotencyKey: key }));
	const b = await attempt(stripe.billing.meterEvents.create(p2, { idempotencyKey: key }));
	ok(a.value && b.value && b.value.lastResponse.headers['idempotent-replayed'] === 'true' && b.value.identifier === a.value.identifier,
		'the same identifier under the same Idempotency-Key and parameters: the first 200 is replayed', b.err && b.err.raw);
	ok((await meterCount()) === count1 + 1, 'and the event is recorded once');

	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: uid('ev'), timestamp: nowSec() - 36 * 86400 }));
	ok(r.err && r.err.statusCode === 400 && r.err.param === 'timestamp' && /more than 35 days in past/.test(r.err.message), 'a timestamp 36 days old: 400', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: uid('ev'), timestamp: nowSec() + 600 }));
	ok(r.err && r.err.statusCode === 400 && r.err.param === 'timestamp' && /5 minutes in the future/.test(r.err.message), 'a timestamp 10 minutes ahead: 400', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: uid('ev'), timestamp: nowSec() - 34 * 86400 }));
	const r2 = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: uid('ev'), timestamp: nowSec() + 240 }));
	ok(r.value && r2.value, 'timestamps 34 days old and 4 minutes ahead are accepted', [r.err && r.err.raw, r2.err && r2.err.raw]);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' } }));
	ok(r.value && r.value.identifier && r.value.timestamp >= nowSec() - 5, 'without identifier and timestamp, both are generated', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'no_such_meter', payload: { stripe_customer_id: 'cus_Known1', value: '1' } }));
	ok(r.err && r.err.statusCode === 400 && r.err.param === 'event_name' && /No active meter found/.test(r.err.message), 'an event name without an active meter: 400', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: 'i'.repeat(101) }));
	ok(r.err && r.err.param === 'identifier' && /at most 100 characters/.test(r.err.message), 'an identifier of 101 characters: 400', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'e'.repeat(101), payload: { stripe_customer_id: 'cus_Known1', value: '1' } }));
	ok(r.err && r.err.param === 'event_name' && /at most 100 characters/.test(r.err.message), 'an event name of 101 characters: 400', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls' }));
	ok(r.err && r.err.code === 'parameter_missing' && r.err.param === 'payload', 'no payload: 400 parameter_missing', r.err && r.err.raw);
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, value: 3 }));
	ok(r.err && r.err.code === 'parameter_unknown' && r.err.param === 'value', 'a top-level value (instead of payload[value]): 400 unknown parameter', r.err && r.err.raw);

	// asynchronous errors: accepted now, reported later
	const idU = uid('ev');
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Unknown', value: '2' }, identifier: idU }));
	const idV = uid('ev');
	const rv = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: 'lots' }, identifier: idV }));
	const reports = (await sAdm('meter_error_reports')).error_reports;
	ok(r.value && rv.value && reports.some((x) => x.identifier === idU && x.code === 'meter_event_customer_not_found')
		&& reports.some((x) => x.identifier === idV && x.code === 'meter_event_invalid_value'),
	'an unknown customer and a non-numeric value are accepted (200) and reported asynchronously', reports);
	const valid = (await sAdm('meter_events?valid=true')).meter_events;
	ok(!valid.some((e) => e.identifier === idU || e.identifier === idV), 'events with asynchronous errors are not among the valid events');
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'tokens', payload: { customer_id: 'cus_Known2', qty: '40' } }));
	events = (await sAdm('meter_events')).meter_events;
	ok(r.value && events.some((e) => e.event_name === 'tokens' && e.customer === 'cus_Known2' && e.value === '40' && !e.async_error),
		'a meter with its own payload keys (customer_id, qty) maps customer and value', r.err && r.err.raw);

	// the dedupe window is rolling: after it, the identifier is new again
	await sAdm('clock', { advance_seconds: 86401 });
	r = await attempt(stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '5' }, identifier: id1 }));
	await sAdm('clock', { offset_seconds: 0 });
	ok(r.value && r.value.identifier === id1, 'after the 24 h window (stand-in clock moved) the same identifier is accepted again', r.err && r.err.raw);

	const viaFetch = stripeClient({ httpClient: Stripe.createFetchHttpClient() });
	r = await attempt(viaFetch.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '9' }, identifier: uid('ev') }));
	ok(r.value && r.value.payload.value === '9', 'SDK with the fetch client: a meter event is accepted', r.err);
}

async function stripeFaults() {
	const ev = (id) => ({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' }, identifier: id });
	const P = '/v1/billing/meter_events';
	let c0;
	let s0;
	let r;
	let reqs;
	let id;

	// 500 before processing
	await sAdm('faults/next', { kind: '500', path: P });
	c0 = await meterCount();
	r = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	ok(r.err && r.err.type === 'StripeAPIError' && r.err.statusCode === 500 && r.err.raw.type === 'api_error' && (await meterCount()) === c0,
		'fault 500 before processing: StripeAPIError 500, nothing recorded', r.err && r.err.raw);
	await sAdm('faults/next', { kind: '500_before', path: P });
	s0 = await lastSeq();
	id = uid('f');
	r = await attempt(stripeClient({ maxNetworkRetries: 1 }).billing.meterEvents.create(ev(id)));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2 && reqs[0].status === 500 && reqs[1].status === 200 && reqs[0].headers['idempotency-key'] === reqs[1].headers['idempotency-key']
		&& (await sAdm('meter_events')).meter_events.filter((e) => e.identifier === id).length === 1,
	'500 before processing with maxNetworkRetries 1: the SDK retries with the same Idempotency-Key and succeeds, one event', reqs.map((x) => [x.status, x.headers['idempotency-key']]));

	// 500 after processing: the event is recorded, the client gets 500
	await sAdm('faults/next', { kind: '500_after', path: P });
	s0 = await lastSeq();
	id = uid('f');
	const key = uid('k500');
	r = await attempt(stripeClient({ maxNetworkRetries: 2 }).billing.meterEvents.create(ev(id), { idempotencyKey: key }));
	reqs = await requestsSince(s0, P);
	ok(r.err && r.err.type === 'StripeAPIError' && r.err.statusCode === 500 && r.err.headers['stripe-should-retry'] === 'false' && reqs.length === 1,
		'fault 500 after processing: StripeAPIError, Stripe-Should-Retry: false, so the SDK does not retry even with maxNetworkRetries 2', reqs.map((x) => x.status));
	ok((await sAdm('meter_events')).meter_events.filter((e) => e.identifier === id).length === 1, 'and the event was recorded although the client got 500');
	r = await attempt(stripeClient().billing.meterEvents.create(ev(id), { idempotencyKey: key }));
	ok(r.err && r.err.statusCode === 500 && r.err.headers['idempotent-replayed'] === 'true', 'retrying with the same key replays the saved 500 (Stripe saves results "including 500 errors")', r.err && r.err.headers);
	r = await attempt(stripeClient().billing.meterEvents.create(ev(id)));
	ok(r.err && r.err.statusCode === 400 && /already exists with identifier/.test(r.err.message) && (await sAdm('meter_events')).meter_events.filter((e) => e.identifier === id).length === 1,
		'retrying with a new key: the duplicate refusal, never a second event', r.err && r.err.raw);
	await sAdm('faults/next', { kind: '500_after', path: P, replay: 'success', should_retry: true });
	id = uid('f');
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 1 }).billing.meterEvents.create(ev(id)));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2 && reqs[1].outcome === 'replayed', '500 after processing with replay "success" and Stripe-Should-Retry: true: the SDK retry gets the replayed 200', reqs.map((x) => [x.status, x.outcome]));

	// 429
	await sAdm('faults/next', { kind: '429', path: P, retry_after: 3 });
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 2 }).billing.meterEvents.create(ev(uid('f'))));
	reqs = await requestsSince(s0, P);
	ok(r.err && r.err.type === 'StripeRateLimitError' && r.err.statusCode === 429 && r.err.code === 'rate_limit' && r.err.headers['retry-after'] === '3' && reqs.length === 1,
		'fault 429 (Retry-After: 3 when asked for): StripeRateLimitError, not retried by the SDK even with maxNetworkRetries 2', r.err && [r.err.raw, reqs.length]);
	await sAdm('faults/next', { kind: '429', path: P, should_retry: true });
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 1 }).billing.meterEvents.create(ev(uid('f'))));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2, '429 with Stripe-Should-Retry: true is retried by the SDK', reqs.map((x) => x.status));

	// timeouts
	await sAdm('faults/next', { kind: 'timeout', path: P, seconds: 2 });
	c0 = await meterCount();
	r = await attempt(stripeClient({ timeout: 400 }).billing.meterEvents.create(ev(uid('f'))));
	ok(r.err && r.err.type === 'StripeConnectionError' && /timeout being reached \(400ms\)/.test(r.err.message) && (await meterCount()) === c0,
		'fault timeout before processing: StripeConnectionError "Request aborted due to timeout being reached", nothing recorded', r.err && r.err.message);
	await sAdm('faults/next', { kind: 'timeout_after', path: P, seconds: 2 });
	id = uid('f');
	s0 = await lastSeq();
	r = await attempt(stripeClient({ timeout: 400, maxNetworkRetries: 1 }).billing.meterEvents.create(ev(id)));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2 && reqs[0].outcome === 'timeout' && reqs[1].outcome === 'replayed'
		&& (await sAdm('meter_events')).meter_events.filter((e) => e.identifier === id).length === 1,
	'fault timeout after processing, maxNetworkRetries 1: the SDK retry (same key) gets the replayed 200, one event', reqs.map((x) => [x.outcome, x.status]));

	// connection resets
	await sAdm('faults/next', { kind: 'reset', path: P });
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 0 }).billing.meterEvents.create(ev(uid('f'))));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2 && reqs[0].outcome === 'reset',
		'fault reset before processing, node client, maxNetworkRetries 0: the SDK still retries once (ECONNRESET rule) and succeeds', reqs.map((x) => x.outcome));
	await sAdm('faults/next', { kind: 'reset', path: P });
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 0, httpClient: Stripe.createFetchHttpClient() }).billing.meterEvents.create(ev(uid('f'))));
	reqs = await requestsSince(s0, P);
	ok(r.err && r.err.type === 'StripeConnectionError' && reqs.length === 1,
		'the same reset with the fetch client and maxNetworkRetries 0: StripeConnectionError, no retry', r.err && [r.err.message, reqs.length]);
	await sAdm('faults/next', { kind: 'reset_after', path: P });
	id = uid('f');
	s0 = await lastSeq();
	r = await attempt(stripeClient({ maxNetworkRetries: 0 }).billing.meterEvents.create(ev(id)));
	reqs = await requestsSince(s0, P);
	ok(r.value && reqs.length === 2 && reqs[0].outcome === 'reset' && reqs[0].processed && reqs[1].outcome === 'replayed'
		&& (await sAdm('meter_events')).meter_events.filter((e) => e.identifier === id).length === 1,
	'fault reset after processing: recorded, the SDK retry with the same key gets the replayed 200, one event', reqs.map((x) => [x.outcome, x.processed]));

	// a scripted 400
	await sAdm('faults/next', { kind: '400', path: P, message: 'Injected refusal', param: 'identifier', code: 'parameter_invalid_empty' });
	r = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	ok(r.err && r.err.type === 'StripeInvalidRequestError' && r.err.message === 'Injected refusal' && r.err.param === 'identifier' && r.err.code === 'parameter_invalid_empty',
		'fault 400 with a given message, param and code: StripeInvalidRequestError', r.err && r.err.raw);

	// times, and a queue entry for another path does not fire here
	await sAdm('faults/next', [{ kind: '500', path: P, times: 2 }, { kind: '429', path: '/v1/checkout/sessions' }]);
	const x1 = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	const x2 = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	const x3 = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	const x4 = await attempt(stripeClient().checkout.sessions.create(checkoutParams));
	ok(x1.err && x2.err && x3.value && x4.err && x4.err.statusCode === 429, 'scripted faults: "times" repeats one, and each fires only on its path',
		[x1.err && x1.err.statusCode, x2.err && x2.err.statusCode, !!x3.value, x4.err && x4.err.statusCode]);

	// random faults, reproducible with a seed
	await sAdm('faults', { rate: 0.5, kinds: ['500', '429'], seed: 7, paths: [P] });
	const st0 = await sAdm('stats');
	c0 = await meterCount();
	let good = 0;
	let bad = 0;
	for (let i = 0; i < 20; i++) {
		const y = await attempt(stripeClient().billing.meterEvents.create(ev(uid('rnd'))));
		if (y.value) good++; else bad++;
	}
	await sAdm('faults', undefined, 'DELETE');
	const st1 = await sAdm('stats');
	const injected = ((st1.by_fault['500_before'] || 0) - (st0.by_fault['500_before'] || 0)) + ((st1.by_fault['429'] || 0) - (st0.by_fault['429'] || 0));
	ok(good > 0 && bad > 0 && injected === bad && (await meterCount()) === c0 + good,
		'random faults at rate 0.5 (seeded): failures are exactly the injected ones, and only the successes are recorded', { good, bad, injected });
	r = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	ok(!!r.value, 'DELETE /__standin/faults clears them', r.err && r.err.raw);

	// connection refused: down for one second
	await sAdm('down', { seconds: 1 });
	r = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	ok(r.err && r.err.type === 'StripeConnectionError' && r.err.detail && r.err.detail.code === 'ECONNREFUSED', 'down: StripeConnectionError (ECONNREFUSED)', r.err && [r.err.type, r.err.detail && r.err.detail.code]);
	const h = await (await fetch(SA + '/__standin/health')).json();
	ok(h.down === true, 'while down, the admin port still answers', h);
	await sleep(1300);
	r = await attempt(stripeClient().billing.meterEvents.create(ev(uid('f'))));
	ok(!!r.value, 'after the given seconds the stand-in listens again on the same port', r.err && r.err.message);
	await sAdm('down', {});
	const refused = await attempt(fetch(S + '/__standin/health'));
	await sAdm('up', {});
	const back = await attempt(fetch(S + '/__standin/health'));
	ok(refused.err && back.value && back.value.status === 200, 'down without seconds until POST /__standin/up on the admin port', [String(refused.err), back.value && back.value.status]);
}

async function stripeRaw() {
	const form = 'event_name=api_calls&payload[stripe_customer_id]=cus_Known1&payload[value]=1';
	let res = await fetch(S + '/v1/billing/meter_events', { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_Known1', value: '1' } }) });
	let j = await res.json();
	ok(res.status === 400 && j.error.type === 'invalid_request_error' && /Content-Type application\/json/.test(j.error.message), 'by hand: a JSON body to a v1 endpoint is refused (400)', j);
	res = await fetch(S + '/v1/billing/meter_events', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
	j = await res.json();
	ok(res.status === 401 && /You did not provide an API key/.test(j.error.message), 'by hand: no key is refused (401)', j);
	res = await fetch(S + '/v1/billing/meter_events', { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from(KEY + ':').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' }, body: form + '&identifier=' + uid('raw') });
	j = await res.json();
	ok(res.status === 200 && j.object === 'billing.meter_event' && /^req_/.test(res.headers.get('request-id')), 'by hand: HTTP Basic with the key as user works, as with curl -u', j);
	res = await fetch(S + '/v1/billing/meter_events', { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'event_name=api_calls&payload[stripe_customer_id=cus_Known1' });
	j = await res.json();
	ok(res.status === 400 && j.error.code === 'parameter_unknown', 'by hand: broken bracket notation is an unknown parameter', j);
	res = await fetch(S + '/v1/billing/meter_events?event_name=api_calls', { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
	j = await res.json();
	ok(res.status === 400 && j.error.param === 'event_name', 'by hand: parameters in the query string of a POST are refused', j);
	res = await fetch(S + '/v1/checkout/sessions', { headers: { authorization: `Bearer ${KEY}` } });
	j = await res.json();
	ok(res.status === 404 && /Unrecognized request URL \(GET: \/v1\/checkout\/sessions\)/.test(j.error.message), 'by hand: an endpoint the stand-in does not serve is 404 Unrecognized request URL', j);
	res = await fetch(S + '/v1/billing/meter_events', { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'event_name=api_calls&payload=5' });
	j = await res.json();
	ok(res.status === 400 && j.error.param === 'payload', 'by hand: payload given as a plain value instead of a hash is refused', j);

	const st = await sAdm('stats');
	ok(st.by_status['200'] > 0 && st.by_status['400'] > 0 && st.by_status['401'] > 0 && st.duplicates >= 2 && st.idempotent_replays >= 3 && st.idempotency_errors >= 1,
		'GET /__standin/stats counts answers per status, duplicates, replays and idempotency errors', st);
	const before = (await sAdm('requests')).requests.length;
	await sAdm('reset', {});
	const after = await sAdm('stats');
	ok(before > 0 && after.requests === 0 && (await meterCount()) === 0 && after.idempotency_keys === 0, 'POST /__standin/reset forgets requests, events and idempotency keys', after);
}

async function authTests() {
	const opts = { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } };
	const admin = createClient(A, 'standin-service-key', opts);
	const anon = createClient(A, 'standin-anon-key', opts);
	const emails = async () => (await aAdm('emails')).emails;
	const areqs = async () => (await aAdm('requests')).requests;

	let r = await admin.auth.admin.inviteUserByEmail('New.Person@Acme.example', { data: { org_id: 'org-1', invitation_id: 'inv-1' }, redirectTo: 'https://app.example.com/invite/accept?token=T1' });
	ok(!r.error && r.data.user && r.data.user.email === 'new.person@acme.example' && r.data.user.invited_at && r.data.user.confirmation_sent_at
		&& r.data.user.role === 'authenticated' && r.data.user.user_metadata.org_id === 'org-1' && r.data.user.app_metadata.provider === 'email' && r.data.user.identities.length === 1,
	'supabase-js admin.inviteUserByEmail: 200 and a user object (email lower-cased, invited_at, user_metadata from data)', r);
	let reqs = await areqs();
	let q = reqs[reqs.length - 1];
	ok(q.method === 'POST' && q.path === '/auth/v1/invite' && q.query.redirect_to === 'https://app.example.com/invite/accept?token=T1'
		&& q.headers.apikey === 'standin-service-key' && q.headers.authorization === 'Bearer standin-service-key'
		&& q.headers['x-supabase-api-version'] === '2024-01-01' && q.params.email === 'New.Person@Acme.example' && q.params.data.invitation_id === 'inv-1'
		&& !q.ignored_fields,
	'the invite request: POST /auth/v1/invite?redirect_to=..., apikey and Bearer service key, X-Supabase-Api-Version, JSON {email, data}', q);
	let mail = (await emails()).slice(-1)[0];
	ok(mail && mail.type === 'invite' && mail.to === 'new.person@acme.example' && mail.redirect_to === 'https://app.example.com/invite/accept?token=T1' && mail.data.invitation_id === 'inv-1' && /^\d{6}$/.test(mail.otp),
		'the invite email is recorded (to, type, redirect_to, data)', mail);

	const n0 = (await emails()).length;
	r = await admin.auth.admin.inviteUserByEmail('existing@acme.example');
	ok(r.error && r.error.name === 'AuthApiError' && r.error.status === 422 && r.error.code === 'email_exists'
		&& r.error.message === 'A user with this email address has already been registered' && (await emails()).length === n0,
	'inviting a registered (confirmed) address: 422 email_exists, no email', r.error);
	r = await admin.auth.admin.inviteUserByEmail('pending@acme.example');
	ok(!r.error && (await emails()).length === n0 + 1, 'inviting an invited but unconfirmed address sends the invitation again (200)', r.error);
	r = await admin.auth.admin.inviteUserByEmail('not an email');
	ok(r.error && r.error.status === 400 && r.error.code === 'validation_failed' && r.error.message === 'Unable to validate email address: invalid format', 'an invalid address: 400 validation_failed', r.error);
	r = await admin.auth.admin.inviteUserByEmail('someone@bounce.example');
	ok(r.error && r.error.status === 400 && r.error.code === 'email_address_invalid', 'an address the mailer refuses: 400 email_address_invalid', r.error);
	r = await anon.auth.admin.inviteUserByEmail('x@acme.example');
	ok(r.error && r.error.status === 403 && r.error.code === 'not_admin', 'invite with the anon key: 403 not_admin', r.error);

	let res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { apikey: 'standin-service-key', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'y@acme.example' }) });
	let j = await res.json();
	ok(res.status === 401 && j.code === 401 && j.error_code === 'no_authorization' && j.msg === 'This endpoint requires a valid Bearer token' && res.headers.get('x-sb-error-code') === 'no_authorization',
		'by hand without Authorization and without X-Supabase-Api-Version: 401 in the initial error shape {code, error_code, msg}', j);
	res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { apikey: 'standin-service-key', authorization: 'Bearer not.a.jwt', 'x-supabase-api-version': '2024-01-01', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'y@acme.example' }) });
	j = await res.json();
	ok(res.status === 403 && j.code === 'bad_jwt' && /^invalid JWT/.test(j.message) && res.headers.get('x-supabase-api-version') === '2024-01-01', 'by hand with a bad token: 403 bad_jwt in the 2024-01-01 shape {code, message}', j);
	res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { authorization: 'Bearer standin-service-key', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'y@acme.example' }) });
	j = await res.json();
	ok(res.status === 401 && j.message === 'No API key found in request', 'by hand without apikey: 401 from the gateway', j);
	res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { apikey: 'standin-service-key', authorization: 'Bearer standin-service-key', 'content-type': 'application/json' }, body: '{"email": ' });
	j = await res.json();
	ok(res.status === 400 && j.error_code === 'bad_json', 'by hand with a broken JSON body: 400 bad_json', j);
	res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { apikey: 'standin-service-key', authorization: 'Bearer standin-service-key', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'redir@acme.example', redirect_to: 'https://app.example.com/x' }) });
	mail = (await emails()).slice(-1)[0];
	q = (await areqs()).slice(-1)[0];
	ok(res.status === 200 && mail.to === 'redir@acme.example' && mail.redirect_to === 'https://app.example.com' && q.ignored_fields && q.ignored_fields[0] === 'redirect_to',
		'by hand: redirect_to inside the JSON body is ignored as by the real server (the email goes to the site URL; logged as ignored_fields)', [mail, q.ignored_fields]);
	await aAdm('config', { strict: true });
	res = await fetch(A + '/auth/v1/invite', { method: 'POST', headers: { apikey: 'standin-service-key', authorization: 'Bearer standin-service-key', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'redir2@acme.example', redirect_to: 'https://app.example.com/x' }) });
	await aAdm('config', { strict: false });
	ok(res.status === 400, 'with strict mode on, the stand-in refuses fields the real server would silently ignore');
	r = await admin.auth.admin.inviteUserByEmail('evil@acme.example', { redirectTo: 'https://evil.example/steal' });
	mail = (await emails()).slice(-1)[0];
	ok(!r.error && mail.redirect_to === 'https://app.example.com' && mail.redirect_to_requested === 'https://evil.example/steal', 'a redirect_to outside the allow list falls back to the site URL, silently', mail);

	// 429: the real email limiter, then an injected one
	const sent = (await emails()).length;
	await aAdm('config', { email_rate_limit: sent });
	r = await admin.auth.admin.inviteUserByEmail('limited@acme.example');
	await aAdm('config', { email_rate_limit: 0 });
	ok(r.error && r.error.status === 429 && r.error.code === 'over_email_send_rate_limit' && r.error.message === 'email rate limit exceeded', 'the email-sent limiter: 429 over_email_send_rate_limit', r.error);
	await aAdm('faults/next', { kind: '429', path: '/auth/v1/invite' });
	r = await admin.auth.admin.inviteUserByEmail('limited@acme.example');
	ok(r.error && r.error.status === 429 && r.error.code === 'over_email_send_rate_limit', 'fault 429: AuthApiError 429 over_email_send_rate_limit', r.error);
	await aAdm('faults/next', { kind: '500', path: '/auth/v1/invite' });
	r = await admin.auth.admin.inviteUserByEmail('five@acme.example');
	ok(r.error && r.error.name === 'AuthRetryableFetchError' && r.error.status === 500 && !(await aAdm('users')).users.some((u) => u.email === 'five@acme.example'),
		'fault 500 before processing: AuthRetryableFetchError 500, no user created', r.error);
	await aAdm('faults/next', { kind: '500_after', path: '/auth/v1/invite' });
	r = await admin.auth.admin.inviteUserByEmail('after@acme.example');
	const afterMail = (await emails()).filter((e) => e.to === 'after@acme.example');
	ok(r.error && r.error.status === 500 && afterMail.length === 1, 'fault 500 after processing: the invitation was sent although the client got 500', [r.error, afterMail.length]);
	await aAdm('faults/next', { kind: 'reset', path: '/auth/v1/invite' });
	r = await admin.auth.admin.inviteUserByEmail('reset@acme.example');
	ok(r.error && r.error.name === 'AuthRetryableFetchError' && r.error.status === 0, 'fault reset: AuthRetryableFetchError with status 0 (supabase-js does not retry)', r.error);

	// magic link for an existing user
	r = await anon.auth.signInWithOtp({ email: 'existing@acme.example', options: { emailRedirectTo: 'https://app.example.com/invite/accept?token=T2', shouldCreateUser: false } });
	ok(!r.error && r.data.user === null && r.data.session === null, 'signInWithOtp for an existing user with shouldCreateUser false: no error, no session', r);
	q = (await areqs()).slice(-1)[0];
	ok(q.path === '/auth/v1/otp' && q.query.redirect_to === 'https://app.example.com/invite/accept?token=T2' && q.params.create_user === false
		&& q.params.email === 'existing@acme.example' && q.headers.apikey === 'standin-anon-key' && q.status === 200 && JSON.stringify(q.response) === '{}',
	'the OTP request: POST /auth/v1/otp?redirect_to=..., {email, create_user: false, data, gotrue_meta_security}, answered {}', q);
	mail = (await emails()).slice(-1)[0];
	ok(mail.type === 'magiclink' && mail.to === 'existing@acme.example' && mail.redirect_to === 'https://app.example.com/invite/accept?token=T2', 'the magic link email carries the redirect with the invitation token', mail);
	r = await anon.auth.signInWithOtp({ email: 'existing@acme.example', options: { emailRedirectTo: 'https://app.example.com/invite/accept?token=T3', shouldCreateUser: false } });
	ok(r.error && r.error.status === 429 && r.error.code === 'over_email_send_rate_limit' && /^For security purposes, you can only request this after \d+ seconds\.$/.test(r.error.message),
		'a second magic link within 60 s: 429 over_email_send_rate_limit', r.error);
	await aAdm('clock', { advance_seconds: 61 });
	r = await anon.auth.signInWithOtp({ email: 'existing@acme.example', options: { emailRedirectTo: 'https://app.example.com/invite/accept?token=T3', shouldCreateUser: false } });
	await aAdm('clock', { offset_seconds: 0 });
	ok(!r.error, 'after 60 s (stand-in clock moved) the next magic link goes out', r.error);
	const before = (await aAdm('users')).users.length;
	r = await anon.auth.signInWithOtp({ email: 'stranger@acme.example', options: { shouldCreateUser: false } });
	ok(r.error && r.error.status === 422 && r.error.code === 'otp_disabled' && r.error.message === 'Signups not allowed for otp' && (await aAdm('users')).users.length === before,
		'an unknown address with shouldCreateUser false: 422 otp_disabled, no user created', r.error);
	r = await anon.auth.signInWithOtp({ email: 'bad@@acme', options: { shouldCreateUser: false } });
	ok(r.error && r.error.status === 400 && r.error.code === 'validation_failed', 'an invalid address: 400 validation_failed', r.error);
	r = await anon.auth.signInWithOtp({ email: 'pending@acme.example', options: { shouldCreateUser: false, emailRedirectTo: 'https://app.example.com/invite/accept?token=T4' } });
	mail = (await emails()).slice(-1)[0];
	ok(!r.error && mail.type === 'confirmation' && mail.to === 'pending@acme.example', 'an unconfirmed user gets a signup confirmation, not a magic link', mail);
	await aAdm('faults/next', { kind: '429', path: '/auth/v1/otp', code: 'over_request_rate_limit', message: 'Request rate limit reached' });
	r = await anon.auth.signInWithOtp({ email: 'existing@acme.example', options: { shouldCreateUser: false } });
	ok(r.error && r.error.status === 429 && r.error.code === 'over_request_rate_limit', 'fault 429 with a given code on /otp', r.error);
	res = await fetch(A + '/auth/v1/otp', { method: 'POST', headers: { apikey: 'standin-anon-key', 'content-type': 'application/json' }, body: JSON.stringify({ email: 'existing@acme.example', create_user: 'no' }) });
	j = await res.json();
	ok(res.status === 400 && j.error_code === 'bad_json', 'by hand: create_user as a string is refused as the Go server refuses it (bad_json)', j);

	// JWKS
	res = await fetch(A + '/auth/v1/.well-known/jwks.json');
	j = await res.json();
	const k0 = j.keys && j.keys[0];
	ok(res.status === 200 && j.keys.length === 1 && k0.kty === 'EC' && k0.crv === 'P-256' && k0.alg === 'ES256' && k0.use === 'sig' && k0.key_ops[0] === 'verify' && k0.kid && !k0.d
		&& res.headers.get('cache-control') === 'public, max-age=600',
	'GET /auth/v1/.well-known/jwks.json (no apikey needed): one public ES256 key with kid, use sig, Cache-Control max-age=600', j);
	const signed = await aAdm('sign', { claims: { sub: '11111111-1111-4111-8111-111111111111', email: 'existing@acme.example' } });
	const [h64, p64, s64] = signed.token.split('.');
	const verified = crypto.verify('sha256', Buffer.from(`${h64}.${p64}`), { key: crypto.createPublicKey({ key: k0, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s64, 'base64url'));
	ok(verified && JSON.parse(Buffer.from(h64, 'base64url')).kid === k0.kid, 'a token from POST /__standin/sign verifies with the served key chosen by kid');
	const claims = await anon.auth.getClaims(signed.token);
	ok(!claims.error && claims.data && claims.data.claims.sub === '11111111-1111-4111-8111-111111111111', 'supabase-js auth.getClaims verifies it through the JWKS endpoint', claims.error);
	const rot = await aAdm('jwks/rotate', { alg: 'RS256' });
	res = await fetch(A + '/auth/v1/.well-known/jwks.json');
	j = await res.json();
	ok(j.keys.length === 2 && j.keys[0].kid === rot.kid && j.keys[0].kty === 'RSA' && j.keys[0].alg === 'RS256' && j.keys[1].kid === k0.kid, 'POST /__standin/jwks/rotate adds an RS256 key in front and keeps the old one', j);
	const signed2 = await aAdm('sign', { claims: { sub: '22222222-2222-4222-8222-222222222222' } });
	const claims2 = await anon.auth.getClaims(signed2.token);
	ok(signed2.kid === rot.kid && !claims2.error && claims2.data.claims.sub === '22222222-2222-4222-8222-222222222222', 'a token with the new kid verifies in supabase-js (an unknown kid refetches the JWKS)', claims2.error);
	await aAdm('jwks', { keys: [] });
	j = await (await fetch(A + '/auth/v1/.well-known/jwks.json')).json();
	ok(Array.isArray(j.keys) && j.keys.length === 0, 'POST /__standin/jwks replaces the served key set (here: empty, as for a legacy HS256-only project)', j);
	await aAdm('jwks', rot.jwks);

	const st = await aAdm('stats');
	ok(st.emails_by_type.invite >= 3 && st.emails_by_type.magiclink >= 2 && st.emails_by_type.confirmation >= 1 && st.by_status['422'] >= 2, 'the Auth stand-in stats count emails per type and answers per status', st);
}

(async () => {
	await stripeCheckout();
	await stripeMeterEvents();
	await stripeFaults();
	await stripeRaw();
	await authTests();
})().catch((err) => {
	ok(false, 'unexpected error: ' + (err && err.stack || err));
}).finally(() => {
	fs.writeFileSync(process.env.COUNT_FILE, `${n} ${failed}\n`);
	process.exit(0);
});
JS
read -r n nfailed <"$work/count" 2>/dev/null || { n=$((n + 1)); echo "not ok $n - the node part did not finish"; failed=$((failed + 1)); nfailed=0; }
failed=$((failed + nfailed))

spid=$STRIPE_STANDIN_PID
apid=$AUTH_STANDIN_PID
kill -0 "$spid" 2>/dev/null && kill -0 "$apid" 2>/dev/null
ok $? "both stand-ins are still running at the end"
standin_stop_all
! kill -0 "$spid" 2>/dev/null && ! kill -0 "$apid" 2>/dev/null
ok $? "standin_stop_all stops them"

# a stand-in whose starting shell goes away stops by itself
bash -c 'node "$1/test/lib/stripe_standin.js" --port-file "$2/orphan-port" >/dev/null 2>&1 & echo $! >"$2/orphan-pid"
	for i in $(seq 1 100); do [ -s "$2/orphan-port" ] && break; sleep 0.05; done' _ "$IPAI_SRC" "$work"
opid=$(cat "$work/orphan-pid")
for i in $(seq 1 30); do kill -0 "$opid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$opid" 2>/dev/null
ok $? "a stand-in exits by itself when the shell that started it is gone"
kill "$opid" 2>/dev/null

echo "1..$n"
[ "$failed" -eq 0 ]
