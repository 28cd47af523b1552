#!/usr/bin/env node
'use strict';
// stripe_standin.js — a local stand-in for Stripe's API (v1) on 127.0.0.1
// for tests that drive real code (npm stripe with host/port/protocol, or
// plain HTTP) over real HTTP.
//
//   node test/lib/stripe_standin.js --port-file F [--admin-port-file G]
//        [--secret-key sk_test_...] [--customers cus_a,cus_b]
//        [--meters name[:customer_key[:value_key]],...]
//        [--prices price_x:recurring,price_y:one_time[:amount[:currency]]]
//        [--dedupe-window-seconds 86400]
//
// Serves POST /v1/checkout/sessions and POST /v1/billing/meter_events,
// decodes Stripe's form encoding (bracket notation) and checks every
// request against test/fixtures/stripe/api/api_facts.json: unknown, missing,
// mistyped and over-long parameters are refused the way Stripe refuses
// them.  Honours Idempotency-Key, deduplicates meter events by identifier,
// injects faults and lets tests look at everything under /__standin/.
// See test/lib/STANDINS.md.

const crypto = require('crypto');
const common = require('./standin_common.js');

const FACTS = common.loadJson('../fixtures/stripe/api/api_facts.json');
const CHECKOUT = FACTS.endpoints['POST /v1/checkout/sessions'];
const METER = FACTS.endpoints['POST /v1/billing/meter_events'];
const META = FACTS.metadata_limits;

const OPTIONS = Object.assign(common.COMMON_OPTIONS('STRIPE_STANDIN'), {
	secret_key: { env: 'STRIPE_STANDIN_SECRET_KEY', default: 'sk_test_standin' },
	customers: { env: 'STRIPE_STANDIN_CUSTOMERS' },
	meters: { env: 'STRIPE_STANDIN_METERS' },
	prices: { env: 'STRIPE_STANDIN_PRICES' },
	dedupe_window_seconds: { env: 'STRIPE_STANDIN_DEDUPE_WINDOW_SECONDS', default: '86400' },
	livemode: { flag: true, default: false },
});

class StripeRefusal extends Error {
	constructor(status, error, headers) {
		super(error.message);
		this.status = status;
		this.error = error;
		this.headers = headers || {};
	}
}

function refuse(fields, status = 400, headers) {
	const error = { type: fields.type || 'invalid_request_error' };
	if (fields.code) error.code = fields.code;
	if (fields.code) error.doc_url = `https://stripe.com/docs/error-codes/${fields.code.replace(/_/g, '-')}`;
	error.message = fields.message;
	if (fields.param) error.param = fields.param;
	return new StripeRefusal(status, error, headers);
}

// ---- form decoding -------------------------------------------------------

function decodeComponent(s) {
	try {
		return decodeURIComponent(s.replace(/\+/g, ' '));
	} catch (e) {
		throw refuse({ message: `Invalid request: the body is not valid form encoding (${JSON.stringify(s.slice(0, 40))}).` });
	}
}

// a[b][0][c]=v  ->  {a: {b: [{c: 'v'}]}}; values stay strings
function decodeForm(raw) {
	const root = {};
	const pairs = [];
	for (const part of raw.split('&')) {
		if (part === '') continue;
		const eq = part.indexOf('=');
		const key = decodeComponent(eq < 0 ? part : part.slice(0, eq));
		const value = eq < 0 ? '' : decodeComponent(part.slice(eq + 1));
		pairs.push([key, value]);
		const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
		if (!m) throw refuse({ code: 'parameter_unknown', param: key, message: `Received unknown parameter: ${key}` });
		const segs = [m[1]];
		const re = /\[([^[\]]*)\]/g;
		let s;
		while ((s = re.exec(m[2]))) segs.push(s[1]);
		let node = root;
		for (let i = 0; i < segs.length; i++) {
			let seg = segs[i];
			const last = i === segs.length - 1;
			if (seg === '') {
				// a[]=x appends
				const arr = node.__push || 0;
				node.__push = arr + 1;
				seg = String(Object.keys(node).filter((k) => /^\d+$/.test(k)).length);
			}
			if (last) {
				if (node[seg] !== undefined && typeof node[seg] === 'object') {
					throw refuse({ param: segs.slice(0, i + 1).join('['), message: `Invalid request: ${key} is given both as a value and as a hash.` });
				}
				node[seg] = value;
			} else {
				if (node[seg] === undefined) node[seg] = {};
				if (typeof node[seg] !== 'object') {
					throw refuse({ param: segs[0], message: `Invalid request: ${key} is given both as a value and as a hash.` });
				}
				node = node[seg];
			}
		}
	}
	return { tree: arrayify(root), pairs };
}

function arrayify(node) {
	if (typeof node !== 'object' || node === null) return node;
	delete node.__push;
	const keys = Object.keys(node);
	for (const k of keys) node[k] = arrayify(node[k]);
	if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
		const arr = [];
		for (const k of keys.sort((a, b) => Number(a) - Number(b))) arr.push(node[k]);
		Object.defineProperty(arr, '__indices', { value: keys.map(Number).sort((a, b) => a - b) });
		return arr;
	}
	return node;
}

// ---- validation against the facts -----------------------------------------

function preview(v) {
	const s = typeof v === 'string' ? v : JSON.stringify(v);
	return s.length > 20 ? `${s.slice(0, 20)}...` : s;
}

function oneOf(values) {
	if (values.length <= 1) return values.join('');
	return `${values.slice(0, -1).join(', ')}, or ${values[values.length - 1]}`;
}

function isHash(v) {
	return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkValue(spec, value, name) {
	if (!spec || spec.type === 'any') return;
	const type = spec.type;
	if (value === '' && !['metadata', 'hash', 'array', 'array_of_strings', 'map_of_strings'].includes(type)) return; // unset
	switch (type) {
	case 'string':
	case 'url':
	case 'email':
		if (typeof value !== 'string') throw refuse({ param: name, message: `Invalid string: ${preview(value)}` });
		if (spec.max_length && [...value].length > spec.max_length) {
			if (type === 'url') throw refuse({ param: name, message: `Invalid URL: URL must be ${spec.max_length} characters or less.` });
			throw refuse({ param: name, message: `Invalid string: ${preview(value)}; must be at most ${spec.max_length} characters` });
		}
		if (type === 'url') {
			let ok = false;
			try {
				const u = new URL(value);
				ok = (u.protocol === 'https:' || u.protocol === 'http:') && !!u.hostname;
			} catch (e) { ok = false; }
			if (!ok) throw refuse({ param: name, message: 'Not a valid URL' });
		}
		if (type === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) {
			throw refuse({ param: name, code: 'email_invalid', message: `Invalid email address: ${value}` });
		}
		return;
	case 'integer':
	case 'timestamp':
		if (typeof value !== 'string' || !/^-?\d+$/.test(value)) {
			throw refuse({ param: name, code: 'parameter_invalid_integer', message: `Invalid integer: ${preview(value)}` });
		}
		if (spec.min !== undefined && Number(value) < spec.min) {
			throw refuse({ param: name, message: `This value must be greater than or equal to ${spec.min}.` });
		}
		return;
	case 'boolean':
		if (value !== 'true' && value !== 'false') throw refuse({ param: name, message: `Invalid boolean: ${preview(value)}` });
		return;
	case 'enum':
		if (typeof value !== 'string' || !spec.values.includes(value)) {
			throw refuse({ param: name, message: `Invalid ${name}: must be one of ${oneOf(spec.values)}` });
		}
		return;
	case 'metadata':
		return checkMetadata(value, name);
	case 'map_of_strings':
		if (!isHash(value)) throw refuse({ param: name, message: `Invalid ${name}: must be a hash of strings` });
		for (const [k, v] of Object.entries(value)) {
			if (typeof v !== 'string') throw refuse({ param: `${name}[${k}]`, message: `Invalid ${name}[${k}]: must be a string` });
		}
		return;
	case 'array_of_strings':
		if (!Array.isArray(value)) throw refuse({ param: name, message: `Invalid array` });
		value.forEach((v, i) => {
			if (typeof v !== 'string') throw refuse({ param: `${name}[${i}]`, message: `Invalid string: ${preview(v)}` });
		});
		return;
	case 'hash':
		if (!isHash(value)) throw refuse({ param: name, message: `Invalid object` });
		return checkHash(spec.properties, value, name);
	case 'array':
		if (!Array.isArray(value)) throw refuse({ param: name, message: `Invalid array` });
		value.forEach((item, i) => checkValue(spec.items, item, `${name}[${value.__indices ? value.__indices[i] : i}]`));
		return;
	default:
		return;
	}
}

function checkMetadata(value, name) {
	if (value === '') return; // unsets every key
	if (!isHash(value)) throw refuse({ param: name, message: `Invalid object` });
	const keys = Object.keys(value);
	if (keys.length > META.max_keys) {
		throw refuse({ param: name, message: `You can have up to ${META.max_keys} metadata keys, but you passed in ${keys.length}.` });
	}
	for (const k of keys) {
		if (k.includes('[') || k.includes(']')) throw refuse({ param: `${name}[${k}]`, message: 'Metadata keys can not contain square brackets ([ and ]).' });
		if ([...k].length > META.max_key_length) {
			throw refuse({ param: `${name}[${k}]`, message: `Metadata keys can have up to ${META.max_key_length} characters, but you passed in a key that is ${[...k].length} characters.` });
		}
		const v = value[k];
		if (typeof v !== 'string') throw refuse({ param: `${name}[${k}]`, message: `Invalid metadata value for ${k}: metadata values must be strings.` });
		if ([...v].length > META.max_value_length) {
			throw refuse({ param: `${name}[${k}]`, message: `Metadata values can have up to ${META.max_value_length} characters, but you passed in a value that is ${[...v].length} characters.` });
		}
	}
}

function checkHash(properties, obj, prefix) {
	const unknown = Object.keys(obj).filter((k) => !(k in properties));
	if (unknown.length) {
		const names = unknown.map((k) => (prefix ? `${prefix}[${k}]` : k));
		throw refuse({
			code: 'parameter_unknown',
			param: names[0],
			message: names.length === 1 ? `Received unknown parameter: ${names[0]}` : `Received unknown parameters: ${names.join(', ')}`,
		});
	}
	for (const [k, v] of Object.entries(obj)) checkValue(properties[k], v, prefix ? `${prefix}[${k}]` : k);
}

function requireParam(params, name) {
	if (params[name] === undefined) {
		throw refuse({ code: 'parameter_missing', param: name, message: `Missing required param: ${name}.` });
	}
	if (params[name] === '') {
		throw refuse({
			code: 'parameter_invalid_empty', param: name,
			message: `You passed an empty string for '${name}'. We assume empty values are an attempt to unset a parameter; however '${name}' cannot be unset. You should remove '${name}' from your request or supply a non-empty value.`,
		});
	}
}

// ---- the service ------------------------------------------------------------

function parseMeters(list) {
	const meters = new Map();
	for (const item of common.splitList(list)) {
		const [name, customerKey, valueKey] = item.split(':');
		meters.set(name, { event_name: name, customer_key: customerKey || 'stripe_customer_id', value_key: valueKey || 'value' });
	}
	return meters;
}

function parsePrices(list) {
	const prices = new Map();
	for (const item of common.splitList(list)) {
		const [id, kind, amount, currency] = item.split(':');
		prices.set(id, { id, recurring: kind !== 'one_time', unit_amount: amount ? Number(amount) : null, currency: currency || 'usd' });
	}
	return prices;
}

function makeService(opts, now) {
	const config = {
		secretKey: opts.secret_key,
		customers: opts.customers ? new Set(common.splitList(opts.customers)) : null,
		meters: opts.meters ? parseMeters(opts.meters) : null,
		prices: opts.prices ? parsePrices(opts.prices) : null,
		dedupeWindowSeconds: Number(opts.dedupe_window_seconds),
		livemode: !!opts.livemode,
	};
	let data;
	const clear = () => {
		data = {
			idempotency: new Map(),
			identifiers: new Map(),
			meterEvents: [],
			errorReports: [],
			duplicates: [],
			sessions: [],
			counters: { duplicates: 0, idempotent_replays: 0, idempotency_errors: 0, validation_errors: 0, auth_errors: 0 },
		};
	};
	clear();
	const nowSec = () => Math.floor(now() / 1000);
	const requestId = () => `req_${common.randomAlnum(14)}`;

	function baseHeaders(ctx, rid) {
		const h = { 'Request-Id': rid, 'Stripe-Version': ctx.headers['stripe-version'] || FACTS.api.api_version_sent_by_sdk };
		if (ctx.headers['idempotency-key']) h['Idempotency-Key'] = ctx.headers['idempotency-key'];
		return h;
	}

	function errorResult(ctx, err) {
		const rid = requestId();
		const logged = err.status === 401 ? {} : { request_log_url: `https://dashboard.stripe.com/${config.livemode ? '' : 'test/'}logs/${rid}` };
		return { status: err.status, headers: Object.assign(baseHeaders(ctx, rid), err.headers), body: { error: Object.assign({}, err.error, logged) } };
	}

	function authenticate(ctx) {
		const h = ctx.headers.authorization || '';
		let key = null;
		let m;
		if ((m = /^Bearer\s+(.+)$/i.exec(h))) key = m[1].trim();
		else if ((m = /^Basic\s+(.+)$/i.exec(h))) key = Buffer.from(m[1], 'base64').toString('utf8').split(':')[0];
		if (!key) {
			throw new StripeRefusal(401, { type: 'invalid_request_error', message: FACTS.authentication.no_key.body.error.message });
		}
		if (key !== config.secretKey) {
			const prefix = (/^(sk|rk|pk)_(test|live)_/.exec(key) || [''])[0];
			const shown = prefix + '*'.repeat(Math.max(0, key.length - prefix.length - 4)) + key.slice(-4);
			throw new StripeRefusal(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${shown}` });
		}
	}

	function fingerprint(method, path, pairs) {
		return crypto.createHash('sha256').update(JSON.stringify([method, path, pairs.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))])).digest('hex');
	}

	function pruneIdempotency() {
		const limit = now() - 24 * 3600 * 1000;
		for (const [k, v] of data.idempotency) if (v.saved_at < limit) data.idempotency.delete(k);
	}

	// ---- Checkout Session -------------------------------------------------
	function createCheckoutSession(params, ctx) {
		checkHash(CHECKOUT.params, params, '');
		requireParam(params, 'mode');
		const mode = params.mode;
		const uiMode = params.ui_mode || 'hosted_page';
		if (mode === 'payment' || mode === 'subscription') requireParam(params, 'line_items');
		if (uiMode === 'hosted_page') requireParam(params, 'success_url');
		else if ((uiMode === 'embedded_page' || uiMode === 'elements') && params.success_url !== undefined) {
			throw refuse({ param: 'success_url', message: `success_url is not allowed when ui_mode is ${uiMode}.` });
		}
		if (params.customer && params.customer_email) {
			throw refuse({ code: 'parameters_exclusive', message: 'You may only specify one of these parameters: customer, customer_email.' });
		}
		if (params.subscription_data !== undefined && params.subscription_data !== '' && mode !== 'subscription') {
			throw refuse({ param: 'subscription_data', message: 'You can only specify `subscription_data` in `subscription` mode.' });
		}
		if (params.customer && config.customers && !config.customers.has(params.customer)) {
			throw refuse({ code: 'resource_missing', param: 'customer', message: `No such customer: '${params.customer}'` });
		}
		const items = Array.isArray(params.line_items) ? params.line_items : [];
		if (mode === 'payment' && items.length > 100) throw refuse({ param: 'line_items', message: 'You can only have up to 100 line items in `payment` mode.' });
		let recurring = 0;
		let oneTime = 0;
		let subtotal = 0;
		let amountKnown = items.length > 0;
		let currency = null;
		items.forEach((item, i) => {
			const idx = params.line_items.__indices ? params.line_items.__indices[i] : i;
			if (!isHash(item) || (item.price === undefined && item.price_data === undefined)) {
				throw refuse({ code: 'parameter_missing', param: `line_items[${idx}][price]`, message: `Missing required param: line_items[${idx}][price].` });
			}
			let price = null;
			if (item.price !== undefined && config.prices) {
				price = config.prices.get(item.price);
				if (!price) throw refuse({ code: 'resource_missing', param: `line_items[${idx}][price]`, message: `No such price: '${item.price}'` });
			}
			const isRecurring = price ? price.recurring : item.price_data ? !!(item.price_data.recurring) : true;
			if (isRecurring) recurring++; else oneTime++;
			const qty = item.quantity !== undefined ? Number(item.quantity) : 1;
			if (price && price.unit_amount !== null) {
				subtotal += price.unit_amount * qty;
				currency = price.currency;
			} else {
				amountKnown = false;
			}
		});
		if (mode === 'subscription') {
			if (recurring === 0) throw refuse({ message: 'You must provide at least one recurring price in `subscription` mode when using prices.' });
			if (recurring > 20 || oneTime > 20) throw refuse({ param: 'line_items', message: 'You can only have up to 20 recurring and 20 one-time line items in `subscription` mode.' });
		}
		if (mode === 'payment' && recurring > 0 && config.prices) {
			throw refuse({ message: 'You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.' });
		}
		const created = nowSec();
		const id = `cs_${config.livemode ? 'live' : 'test'}_${common.randomAlnum(58)}`;
		const meta = (m) => (isHash(m) ? Object.fromEntries(Object.entries(m).filter(([, v]) => v !== '')) : {});
		const session = {
			id,
			object: 'checkout.session',
			adaptive_pricing: { enabled: false },
			after_expiration: null,
			allow_promotion_codes: params.allow_promotion_codes === undefined ? null : params.allow_promotion_codes === 'true',
			amount_subtotal: amountKnown ? subtotal : null,
			amount_total: amountKnown ? subtotal : null,
			automatic_tax: { enabled: false, liability: null, provider: null, status: null },
			billing_address_collection: params.billing_address_collection || null,
			cancel_url: params.cancel_url || null,
			client_reference_id: params.client_reference_id || null,
			client_secret: null,
			consent: null,
			consent_collection: null,
			created,
			currency,
			custom_fields: [],
			custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
			customer: params.customer || null,
			customer_creation: mode === 'payment' ? 'if_required' : null,
			customer_details: params.customer_email ? { address: null, email: params.customer_email, name: null, phone: null, tax_exempt: 'none', tax_ids: null } : null,
			customer_email: params.customer_email || null,
			expires_at: params.expires_at ? Number(params.expires_at) : created + 24 * 3600,
			invoice: null,
			invoice_creation: null,
			livemode: config.livemode,
			locale: params.locale || null,
			metadata: meta(params.metadata),
			mode,
			payment_intent: null,
			payment_link: null,
			payment_method_collection: mode === 'subscription' ? (params.payment_method_collection || 'always') : null,
			payment_method_options: {},
			payment_method_types: ['card'],
			payment_status: 'unpaid',
			phone_number_collection: { enabled: false },
			recovered_from: null,
			setup_intent: null,
			shipping_address_collection: null,
			shipping_cost: null,
			shipping_details: null,
			shipping_options: [],
			status: 'open',
			submit_type: params.submit_type || null,
			subscription: null,
			success_url: params.success_url || null,
			total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
			ui_mode: uiMode,
			url: uiMode === 'hosted_page' ? `https://checkout.stripe.com/c/pay/${id}#${common.randomAlnum(40)}` : null,
		};
		data.sessions.push({ session, params, request_seq: ctx.entry.seq, received_at: new Date(now()).toISOString() });
		return session;
	}

	// ---- meter events ---------------------------------------------------------
	function validateMeterEvent(params) {
		checkHash(METER.params, params, '');
		requireParam(params, 'event_name');
		requireParam(params, 'payload');
		const meter = config.meters ? config.meters.get(params.event_name) : { event_name: params.event_name, customer_key: 'stripe_customer_id', value_key: 'value' };
		if (!meter) {
			throw refuse({ param: 'event_name', message: `No active meter found for event_name '${params.event_name}'.` });
		}
		const t = nowSec();
		let ts = t;
		if (params.timestamp !== undefined && params.timestamp !== '') {
			ts = Number(params.timestamp);
			const w = METER.params.timestamp.window;
			if (ts < t - w.past_seconds) {
				throw refuse({ param: 'timestamp', message: `The event timestamp cannot be more than 35 days in past. Expected a timestamp greater than or equal to ${t - w.past_seconds}.` });
			}
			if (ts > t + w.future_seconds) {
				throw refuse({ param: 'timestamp', message: `The event timestamp cannot be more than 5 minutes in the future. Expected a timestamp less than or equal to ${t + w.future_seconds}.` });
			}
		}
		return { meter, ts };
	}

	function createMeterEvent(params, ctx, checked) {
		const { meter, ts } = checked;
		const identifier = params.identifier || `${common.randomAlnum(8)}-${common.randomAlnum(4)}-${common.randomAlnum(4)}-${common.randomAlnum(12)}`;
		const seen = data.identifiers.get(identifier);
		if (seen && now() - seen.at < config.dedupeWindowSeconds * 1000) {
			data.counters.duplicates++;
			data.duplicates.push({ identifier, event_name: params.event_name, payload: params.payload, request_seq: ctx.entry.seq, first_request_seq: seen.request_seq, received_at: new Date(now()).toISOString() });
			throw refuse({ message: `An event already exists with identifier ${identifier}.` }, 400, { 'Stripe-Should-Retry': 'false' });
		}
		const payload = params.payload;
		const customer = payload[meter.customer_key];
		const value = payload[meter.value_key];
		let asyncError = null;
		if (customer === undefined || customer === '') {
			asyncError = { code: 'meter_event_no_customer_defined', message: `Customer mapping key ${meter.customer_key} not found in payload.` };
		} else if (config.customers && !config.customers.has(customer)) {
			asyncError = { code: 'meter_event_customer_not_found', message: `No customer found with id ${customer}.` };
		} else if (value === undefined || value === '') {
			asyncError = { code: 'meter_event_value_not_found', message: `Value key ${meter.value_key} not found in payload.` };
		} else if (!/^-?\d+$/.test(value)) {
			asyncError = { code: 'meter_event_invalid_value', message: `Meter event value ${value} is not a valid whole number.` };
		}
		data.identifiers.set(identifier, { at: now(), request_seq: ctx.entry.seq });
		const event = {
			identifier,
			event_name: params.event_name,
			customer: customer === undefined ? null : customer,
			value: value === undefined ? null : value,
			timestamp: ts,
			payload,
			received_at: new Date(now()).toISOString(),
			request_seq: ctx.entry.seq,
			idempotency_key: ctx.headers['idempotency-key'] || null,
			async_error: asyncError ? asyncError.code : null,
		};
		data.meterEvents.push(event);
		if (asyncError) {
			data.errorReports.push(Object.assign({ type: 'v1.billing.meter.error_report_triggered', identifier, event_name: params.event_name }, asyncError));
		}
		return {
			object: 'billing.meter_event',
			created: nowSec(),
			event_name: params.event_name,
			identifier,
			livemode: config.livemode,
			payload,
			timestamp: ts,
		};
	}

	const ROUTES = {
		'POST /v1/checkout/sessions': { run: (p, ctx) => createCheckoutSession(p, ctx) },
		'POST /v1/billing/meter_events': { validate: (p) => validateMeterEvent(p), run: (p, ctx, checked) => createMeterEvent(p, ctx, checked) },
	};

	function handle(ctx) {
		const route = ROUTES[`${ctx.method} ${ctx.path}`];
		try {
			authenticate(ctx);
			if (!route) {
				throw refuse({ message: `Unrecognized request URL (${ctx.method}: ${ctx.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.` }, 404);
			}
			const ctype = (ctx.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
			if (ctx.rawBody.length > 0 && ctype !== 'application/x-www-form-urlencoded') {
				throw refuse({ message: `Invalid request: unsupported Content-Type ${ctype || '(none)'}. Stripe's v1 API expects application/x-www-form-urlencoded.` });
			}
			const { tree, pairs } = decodeForm(ctx.rawBody);
			const rawQuery = ctx.rawQuery ? decodeForm(ctx.rawQuery) : null;
			if (rawQuery && rawQuery.pairs.length) {
				throw refuse({ code: 'parameter_unknown', param: rawQuery.pairs[0][0], message: `Received unknown parameter: ${rawQuery.pairs[0][0]}` });
			}
			ctx.entry.params = tree;
			ctx.pairs = pairs;
			const key = ctx.headers['idempotency-key'];
			if (key !== undefined) {
				pruneIdempotency();
				if (key.length > 255) throw refuse({ param: 'Idempotency-Key', message: 'Idempotency keys can be at most 255 characters long.' });
				const fp = fingerprint(ctx.method, ctx.path, pairs);
				const saved = data.idempotency.get(key);
				if (saved) {
					if (saved.endpoint !== `${ctx.method} ${ctx.path}`) {
						data.counters.idempotency_errors++;
						throw refuse({ type: 'idempotency_error', message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${saved.endpoint}' vs '${ctx.method} ${ctx.path}'). Try using a key other than '${key}' if you meant to execute a different request.` });
					}
					if (saved.fingerprint !== fp) {
						data.counters.idempotency_errors++;
						throw refuse({ type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.` });
					}
					data.counters.idempotent_replays++;
					ctx.entry.outcome = 'replayed';
					ctx.entry.replay_of = saved.request_seq;
					return {
						status: saved.status,
						headers: Object.assign({}, saved.headers, { 'Request-Id': requestId(), 'Idempotent-Replayed': 'true', 'Original-Request': saved.headers['Request-Id'] }),
						body: saved.body,
					};
				}
				ctx.idempotency = { key, fingerprint: fp };
			}
			const checked = route.validate ? route.validate(tree) : null;
			const body = route.run(tree, ctx, checked);
			ctx.entry.processed = true;
			const rid = requestId();
			const result = { status: 200, headers: baseHeaders(ctx, rid), body };
			if (ctx.idempotency) {
				data.idempotency.set(ctx.idempotency.key, {
					endpoint: `${ctx.method} ${ctx.path}`, fingerprint: ctx.idempotency.fingerprint,
					status: 200, headers: result.headers, body, saved_at: now(), request_seq: ctx.entry.seq,
				});
			}
			return result;
		} catch (err) {
			if (!(err instanceof StripeRefusal)) throw err;
			if (err.status === 401) data.counters.auth_errors++;
			else if (err.error.type === 'invalid_request_error') data.counters.validation_errors++;
			ctx.entry.error = err.error;
			return errorResult(ctx, err);
		}
	}

	function faultResponse(kind, fault, ctx) {
		const rid = requestId();
		const headers = baseHeaders(ctx, rid);
		if (kind === '429') {
			if (fault.retry_after !== undefined) headers['Retry-After'] = String(fault.retry_after);
			if (fault.should_retry !== undefined) headers['Stripe-Should-Retry'] = String(fault.should_retry);
			if (fault.rate_limited_reason) headers['Stripe-Rate-Limited-Reason'] = String(fault.rate_limited_reason);
			return { status: 429, headers, body: { error: Object.assign({}, FACTS.rate_limits.body.error, fault.message ? { message: fault.message } : {}) } };
		}
		if (kind === '400') {
			const err = refuse({ message: fault.message || 'Invalid request (injected by the stand-in).', param: fault.param, code: fault.code, type: fault.type });
			return { status: fault.status || 400, headers, body: { error: err.error } };
		}
		// 500 before or after processing
		const shouldRetry = fault.should_retry !== undefined ? fault.should_retry : (kind === '500_after' ? false : undefined);
		if (shouldRetry !== undefined && shouldRetry !== null) headers['Stripe-Should-Retry'] = String(shouldRetry);
		const body = { error: { message: fault.message || FACTS.errors.api_error.body.error.message, type: 'api_error' } };
		return { status: fault.status || 500, headers, body };
	}

	// A 500 after processing: by default the idempotency layer keeps the
	// 500 for the key, as Stripe's docs say it saves results "including 500
	// errors" (replay: "error"); replay: "success" keeps the 200 instead.
	// Timeouts and resets after processing keep the 200 that was saved.
	function afterFault(ctx, result, fault) {
		if (fault.kind !== '500_after' || !ctx.idempotency) return;
		const saved = data.idempotency.get(ctx.idempotency.key);
		if (!saved || (fault.replay || 'error') !== 'error') return;
		const r = faultResponse('500_after', fault, ctx);
		saved.status = r.status;
		saved.body = r.body;
		saved.headers = r.headers;
	}

	function admin(req, body) {
		const { method: m, path: p } = req;
		if (p === 'meter_events' && m === 'GET') {
			let list = data.meterEvents;
			if (req.query.valid === 'true') list = list.filter((e) => !e.async_error);
			return { body: { meter_events: list } };
		}
		if (p === 'meter_error_reports' && m === 'GET') return { body: { error_reports: data.errorReports } };
		if (p === 'duplicates' && m === 'GET') return { body: { duplicates: data.duplicates } };
		if (p === 'checkout_sessions' && m === 'GET') return { body: { checkout_sessions: data.sessions } };
		if (p === 'idempotency' && m === 'GET') {
			return { body: { keys: [...data.idempotency.entries()].map(([k, v]) => ({ key: k, endpoint: v.endpoint, status: v.status, request_seq: v.request_seq })) } };
		}
		if (p === 'config' && m === 'GET') return { body: configView() };
		if (p === 'config' && m === 'POST') {
			if (body.secret_key !== undefined) config.secretKey = String(body.secret_key);
			if (body.customers !== undefined) config.customers = body.customers === null ? null : new Set(common.splitList(body.customers));
			if (body.meters !== undefined) config.meters = body.meters === null ? null : parseMeters(body.meters);
			if (body.prices !== undefined) config.prices = body.prices === null ? null : parsePrices(body.prices);
			if (body.dedupe_window_seconds !== undefined) config.dedupeWindowSeconds = Number(body.dedupe_window_seconds);
			return { body: configView() };
		}
		return null;
	}

	function configView() {
		return {
			secret_key: config.secretKey,
			customers: config.customers ? [...config.customers] : null,
			meters: config.meters ? [...config.meters.values()] : null,
			prices: config.prices ? [...config.prices.values()] : null,
			dedupe_window_seconds: config.dedupeWindowSeconds,
			livemode: config.livemode,
		};
	}

	function stats() {
		return Object.assign({}, data.counters, {
			meter_events_recorded: data.meterEvents.length,
			meter_events_valid: data.meterEvents.filter((e) => !e.async_error).length,
			meter_error_reports: data.errorReports.length,
			checkout_sessions: data.sessions.length,
			idempotency_keys: data.idempotency.size,
		});
	}

	return { name: 'stripe-standin', handle, faultResponse, afterFault, admin, reset: clear, stats };
}

module.exports = { makeService, decodeForm, OPTIONS };

if (require.main === module) {
	common.runMain(makeService, OPTIONS, process.argv.slice(2));
}
