#!/usr/bin/env node
'use strict';
// auth_standin.js — a local stand-in for Supabase Auth (GoTrue) at base
// path /auth/v1 on 127.0.0.1, for tests that drive real code
// (@supabase/supabase-js createClient(url, key).auth...) over real HTTP.
//
//   node test/lib/auth_standin.js --port-file F [--admin-port-file G]
//        [--service-key K] [--anon-key K] [--users a@x.com,b@y.com:unconfirmed]
//        [--site-url http://localhost:3000] [--redirect-allow 'https://app.example.com/**']
//        [--undeliverable-domains example.invalid] [--email-frequency-seconds 60]
//        [--email-rate-limit 0] [--strict]
//
// Serves POST /auth/v1/invite (admin invite), POST /auth/v1/otp (email
// magic link / OTP) and GET /auth/v1/.well-known/jwks.json, checked against
// test/fixtures/supabase/auth_facts.json; records every email it would
// send.  Same fault injection and /__standin/ endpoints as the Stripe
// stand-in.  See test/lib/STANDINS.md.

const crypto = require('crypto');
const common = require('./standin_common.js');

const FACTS = common.loadJson('../fixtures/supabase/auth_facts.json');
const BASE = '/auth/v1';
const ADMIN_ROLES = ['service_role', 'supabase_admin'];
// badoux/checkmail ValidateFormat, as used by supabase/auth validateEmail
const EMAIL_FORMAT = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

const OPTIONS = Object.assign(common.COMMON_OPTIONS('AUTH_STANDIN'), {
	service_key: { env: 'AUTH_STANDIN_SERVICE_KEY', default: 'standin-service-role-key' },
	anon_key: { env: 'AUTH_STANDIN_ANON_KEY', default: 'standin-anon-key' },
	users: { env: 'AUTH_STANDIN_USERS' },
	site_url: { env: 'AUTH_STANDIN_SITE_URL', default: 'http://localhost:3000' },
	redirect_allow: { env: 'AUTH_STANDIN_REDIRECT_ALLOW' },
	undeliverable_domains: { env: 'AUTH_STANDIN_UNDELIVERABLE_DOMAINS' },
	email_frequency_seconds: { env: 'AUTH_STANDIN_EMAIL_FREQUENCY_SECONDS', default: '60' },
	email_rate_limit: { env: 'AUTH_STANDIN_EMAIL_RATE_LIMIT', default: '0' },
	strict: { flag: true, default: false },
	jwt_alg: { env: 'AUTH_STANDIN_JWT_ALG', default: 'ES256' },
});

class AuthRefusal extends Error {
	constructor(status, code, message, raw) {
		super(message);
		this.status = status;
		this.code = code;
		this.raw = raw || null; // a body that is not an Auth error (the gateway's)
	}
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function newSigningKey(alg) {
	let pair;
	if (alg === 'ES256') pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	else if (alg === 'RS256') pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
	else throw new Error(`unsupported signing algorithm ${alg} (ES256 or RS256)`);
	const kid = crypto.randomUUID();
	const pub = Object.assign(pair.publicKey.export({ format: 'jwk' }), { kid, alg, use: 'sig', key_ops: ['verify'] });
	const priv = Object.assign(pair.privateKey.export({ format: 'jwk' }), { kid, alg });
	return { kid, alg, privateKey: pair.privateKey, publicJwk: pub, privateJwk: priv };
}

function signJwt(key, claims) {
	const header = { alg: key.alg, kid: key.kid, typ: 'JWT' };
	const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
	const sig = key.alg === 'ES256'
		? crypto.sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
		: crypto.sign('sha256', Buffer.from(input), key.privateKey);
	return `${input}.${b64url(sig)}`;
}

function verifyJwt(token, keys) {
	const parts = token.split('.');
	if (parts.length !== 3) return { error: 'token is malformed: token contains an invalid number of segments' };
	let header;
	let claims;
	try {
		header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
		claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
	} catch (e) {
		return { error: 'token is malformed: could not JSON decode header or claims' };
	}
	const key = keys.find((k) => k.kid === header.kid);
	if (!key) return { error: `unrecognized JWT kid ${header.kid} for algorithm ${header.alg}` };
	const input = Buffer.from(`${parts[0]}.${parts[1]}`);
	const sig = Buffer.from(parts[2], 'base64url');
	const pub = crypto.createPublicKey({ key: key.publicJwk, format: 'jwk' });
	const ok = key.alg === 'ES256'
		? crypto.verify('sha256', input, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)
		: crypto.verify('sha256', input, pub, sig);
	if (!ok) return { error: 'token signature is invalid: signature is invalid' };
	if (claims.exp !== undefined && claims.exp * 1000 < Date.now()) return { error: 'token has invalid claims: token is expired' };
	return { claims };
}

// supabase/auth URI allow list: a glob where * matches within a path
// segment or host label and ** matches anything
function globToRegExp(glob) {
	let re = '';
	for (let i = 0; i < glob.length; i++) {
		const c = glob[i];
		if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; } else if (c === '*') re += '[^./]*';
		else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
	}
	return new RegExp(`^${re}$`);
}

function makeService(opts, now) {
	const config = {
		serviceKey: opts.service_key,
		anonKey: opts.anon_key,
		siteUrl: opts.site_url,
		redirectAllow: common.splitList(opts.redirect_allow),
		undeliverable: new Set(common.splitList(opts.undeliverable_domains).map((d) => d.toLowerCase())),
		emailFrequencySeconds: Number(opts.email_frequency_seconds),
		emailRateLimit: Number(opts.email_rate_limit),
		strict: !!opts.strict,
		jwtAlg: opts.jwt_alg,
	};
	const initialUsers = common.splitList(opts.users);
	let data;
	let keys; // signing keys; keys[0] signs
	let jwks; // the served key set (replaceable as a whole)
	const clear = () => {
		data = { users: new Map(), emails: [], counters: { emails_sent: 0, refusals: 0 } };
		for (const u of initialUsers) {
			const [email, flag] = u.split(':');
			addUser(email, flag !== 'unconfirmed');
		}
	};
	const iso = () => new Date(now()).toISOString();

	function addUser(email, confirmed, metadata) {
		email = email.toLowerCase();
		const t = iso();
		const id = crypto.randomUUID();
		const user = {
			id, aud: 'authenticated', role: 'authenticated', email,
			email_confirmed_at: confirmed ? t : null, phone: '', confirmed_at: confirmed ? t : null,
			confirmation_sent_at: null, recovery_sent_at: null, invited_at: null, last_sign_in_at: null,
			app_metadata: { provider: 'email', providers: ['email'] },
			user_metadata: metadata || {},
			identities: [{
				identity_id: crypto.randomUUID(), id, user_id: id,
				identity_data: { email, email_verified: false, phone_verified: false, sub: id },
				provider: 'email', last_sign_in_at: t, created_at: t, updated_at: t, email,
			}],
			created_at: t, updated_at: t, is_anonymous: false,
		};
		data.users.set(email, user);
		return user;
	}

	const signer = newSigningKey(config.jwtAlg);
	keys = [signer];
	jwks = { keys: [signer.publicJwk] };
	clear();

	function apiVersion(ctx) {
		const v = ctx.headers['x-supabase-api-version'];
		return v && /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= '2024-01-01' ? v : null;
	}

	function errorResult(ctx, err) {
		data.counters.refusals++;
		if (err.raw) return { status: err.status, body: err.raw };
		const headers = {};
		if (err.code) headers['x-sb-error-code'] = err.code;
		const v = apiVersion(ctx);
		if (v) {
			headers['X-Supabase-Api-Version'] = v;
			return { status: err.status, headers, body: { code: err.code || (err.status >= 500 ? 'unexpected_failure' : 'unknown'), message: err.message } };
		}
		const body = { code: err.status, error_code: err.code || (err.status >= 500 ? 'unexpected_failure' : 'unknown'), msg: err.message };
		if (err.status >= 500) body.error_id = crypto.randomUUID();
		return { status: err.status, headers, body };
	}

	function gateway(ctx) {
		const key = ctx.headers.apikey || ctx.query.apikey;
		if (!key) throw new AuthRefusal(401, null, 'No API key found in request', { message: 'No API key found in request' });
		if (key !== config.serviceKey && key !== config.anonKey) throw new AuthRefusal(401, null, 'Invalid API key', { message: 'Invalid API key' });
	}

	function requireAdmin(ctx) {
		const m = /^Bearer\s+(\S+)\s*$/i.exec(ctx.headers.authorization || '');
		if (!m) throw new AuthRefusal(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
		const token = m[1];
		if (token === config.serviceKey) return { role: 'service_role' };
		if (token === config.anonKey) throw new AuthRefusal(403, 'not_admin', 'User not allowed');
		const v = verifyJwt(token, keys);
		if (v.error) throw new AuthRefusal(403, 'bad_jwt', `invalid JWT: unable to parse or verify signature, ${v.error}`);
		if (!ADMIN_ROLES.includes(v.claims.role)) throw new AuthRefusal(403, 'not_admin', 'User not allowed');
		return v.claims;
	}

	function readJson(ctx, fields) {
		let body;
		try {
			body = ctx.rawBody === '' ? {} : JSON.parse(ctx.rawBody);
		} catch (e) {
			throw new AuthRefusal(400, 'bad_json', `Could not parse request body as JSON: ${e.message}`);
		}
		if (typeof body !== 'object' || body === null || Array.isArray(body)) {
			throw new AuthRefusal(400, 'bad_json', `Could not parse request body as JSON: json: cannot unmarshal ${Array.isArray(body) ? 'array' : typeof body} into Go value of type object`);
		}
		for (const [name, type] of Object.entries(fields)) {
			const v = body[name];
			if (v === undefined || v === null) continue;
			const actual = Array.isArray(v) ? 'array' : typeof v;
			if (actual !== type) {
				throw new AuthRefusal(400, 'bad_json', `Could not parse request body as JSON: json: cannot unmarshal ${actual === 'object' ? 'object' : actual} into Go struct field .${name} of type ${type === 'object' ? 'map[string]interface {}' : type === 'boolean' ? 'bool' : type}`);
			}
		}
		const ignored = Object.keys(body).filter((k) => !(k in fields));
		ctx.entry.params = body;
		if (ignored.length) ctx.entry.ignored_fields = ignored;
		if (ignored.length && config.strict) {
			throw new AuthRefusal(400, 'validation_failed', `stand-in strict mode: the Auth server would silently ignore ${ignored.join(', ')}`);
		}
		return body;
	}

	function validateEmail(email) {
		if (!email) throw new AuthRefusal(400, 'validation_failed', 'An email address is required');
		if (email.length > 255) throw new AuthRefusal(400, 'validation_failed', 'An email address is too long');
		if (!EMAIL_FORMAT.test(email)) throw new AuthRefusal(400, 'validation_failed', 'Unable to validate email address: invalid format');
		return email.toLowerCase();
	}

	function redirectFor(ctx) {
		const requested = ctx.headers.redirect_to || ctx.query.redirect_to || null;
		const valid = (u) => {
			if (!u) return false;
			let base;
			let ref;
			try {
				base = new URL(config.siteUrl);
				ref = new URL(u);
			} catch (e) {
				return false;
			}
			const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(ref.hostname);
			if (base.hostname === ref.hostname && base.protocol === ref.protocol && (base.port === ref.port || loopback)) return true;
			if (/^[0-9]+$/.test(ref.hostname)) return false;
			if (loopback && ref.hostname !== 'localhost') return true;
			const noFragment = u.split('#')[0];
			return config.redirectAllow.some((g) => globToRegExp(g).test(noFragment));
		};
		if (valid(requested)) return { requested, used: requested };
		const referer = ctx.headers.referer;
		if (valid(referer)) return { requested, used: referer };
		return { requested, used: config.siteUrl };
	}

	function checkDeliverable(email) {
		const domain = email.split('@')[1];
		if (config.undeliverable.has(domain)) throw new AuthRefusal(400, 'email_address_invalid', `Email address "${email}" is invalid`);
	}

	function checkEmailRateLimit() {
		if (!(config.emailRateLimit > 0)) return;
		const hourAgo = now() - 3600 * 1000;
		const sent = data.emails.filter((e) => Date.parse(e.sent_at) > hourAgo).length;
		if (sent >= config.emailRateLimit) throw new AuthRefusal(429, 'over_email_send_rate_limit', 'email rate limit exceeded');
	}

	function sendEmail(ctx, type, user, data_, redirect) {
		checkDeliverable(user.email);
		checkEmailRateLimit();
		const otp = String(crypto.randomInt(0, 1000000)).padStart(6, '0');
		const tokenHash = crypto.createHash('sha224').update(user.email + otp).digest('hex');
		const email = {
			seq: data.emails.length + 1,
			type,
			to: user.email,
			user_id: user.id,
			redirect_to: redirect.used,
			redirect_to_requested: redirect.requested,
			data: data_ === undefined ? null : data_,
			otp,
			token_hash: tokenHash,
			sent_at: iso(),
			request_seq: ctx.entry.seq,
		};
		data.emails.push(email);
		data.counters.emails_sent++;
		return email;
	}

	function invite(ctx) {
		gateway(ctx);
		requireAdmin(ctx);
		const body = readJson(ctx, { email: 'string', data: 'object' });
		const email = validateEmail(body.email);
		const redirect = redirectFor(ctx);
		let user = data.users.get(email);
		if (user && user.email_confirmed_at) {
			throw new AuthRefusal(422, 'email_exists', 'A user with this email address has already been registered');
		}
		const created = !user;
		if (created) {
			checkDeliverable(email);
			checkEmailRateLimit();
			user = addUser(email, false, body.data || {});
		}
		try {
			sendEmail(ctx, 'invite', user, body.data, redirect);
		} catch (e) {
			if (created) data.users.delete(email); // the transaction is rolled back
			throw e;
		}
		const t = iso();
		user.invited_at = t;
		user.confirmation_sent_at = t;
		user.updated_at = t;
		ctx.entry.processed = true;
		return { status: 200, body: user };
	}

	function otp(ctx) {
		gateway(ctx);
		const body = readJson(ctx, {
			email: 'string', phone: 'string', create_user: 'boolean', data: 'object', channel: 'string',
			code_challenge_method: 'string', code_challenge: 'string', gotrue_meta_security: 'object',
		});
		if (body.email && body.phone) throw new AuthRefusal(400, 'validation_failed', 'Only an email address or phone number should be provided');
		if (body.email && body.channel) throw new AuthRefusal(400, 'validation_failed', 'Channel should only be specified with Phone OTP');
		const createUser = body.create_user === undefined || body.create_user === null ? true : body.create_user;
		let email = body.email;
		if (!createUser && email) {
			email = validateEmail(email);
			if (!data.users.has(email)) throw new AuthRefusal(422, 'otp_disabled', 'Signups not allowed for otp');
		}
		if (!body.email && body.phone) throw new AuthRefusal(400, 'phone_provider_disabled', 'Unsupported phone provider');
		if (!body.email) throw new AuthRefusal(400, 'validation_failed', 'One of email or phone must be set');
		email = validateEmail(body.email);
		const redirect = redirectFor(ctx);
		let user = data.users.get(email);
		if (!user || !user.email_confirmed_at) {
			// unknown or unconfirmed: the signup path sends a confirmation mail
			const created = !user;
			if (created) user = addUser(email, false, body.data || {});
			try {
				sendEmail(ctx, 'confirmation', user, body.data, redirect);
			} catch (e) {
				if (created) data.users.delete(email);
				throw e;
			}
			user.confirmation_sent_at = iso();
			ctx.entry.processed = true;
			return { status: 200, body: {} };
		}
		if (user.recovery_sent_at && Date.parse(user.recovery_sent_at) + config.emailFrequencySeconds * 1000 > now()) {
			const left = Math.floor((Date.parse(user.recovery_sent_at) + config.emailFrequencySeconds * 1000 - now()) / 1000);
			throw new AuthRefusal(429, 'over_email_send_rate_limit', `For security purposes, you can only request this after ${left} seconds.`);
		}
		sendEmail(ctx, 'magiclink', user, body.data, redirect);
		user.recovery_sent_at = iso();
		ctx.entry.processed = true;
		return { status: 200, body: {} };
	}

	function handle(ctx) {
		try {
			if (ctx.method === 'GET' && ctx.path === `${BASE}/.well-known/jwks.json`) {
				ctx.entry.processed = true;
				return { status: 200, headers: { 'Cache-Control': 'public, max-age=600' }, body: jwks };
			}
			if (ctx.method === 'POST' && ctx.path === `${BASE}/invite`) return invite(ctx);
			if (ctx.method === 'POST' && ctx.path === `${BASE}/otp`) return otp(ctx);
			gateway(ctx);
			throw new AuthRefusal(404, 'not_found', `The stand-in does not serve ${ctx.method} ${ctx.path}`);
		} catch (err) {
			if (!(err instanceof AuthRefusal)) throw err;
			ctx.entry.error = { status: err.status, code: err.code, message: err.message };
			return errorResult(ctx, err);
		}
	}

	function faultResponse(kind, fault, ctx) {
		let r;
		if (kind === '429') r = errorResult(ctx, new AuthRefusal(429, fault.code || 'over_email_send_rate_limit', fault.message || 'email rate limit exceeded'));
		else if (kind === '400') r = errorResult(ctx, new AuthRefusal(fault.status || 400, fault.code || 'validation_failed', fault.message || 'Invalid request (injected by the stand-in)'));
		else r = errorResult(ctx, new AuthRefusal(fault.status || 500, fault.code || 'unexpected_failure', fault.message || 'Internal Server Error'));
		data.counters.refusals--; // injected, not a refusal by the rules
		if (kind === '429' && fault.retry_after !== undefined) r.headers = Object.assign({}, r.headers, { 'Retry-After': String(fault.retry_after) });
		return r;
	}

	function admin(req, body) {
		const { method: m, path: p } = req;
		if (p === 'emails' && m === 'GET') {
			let list = data.emails;
			if (req.query.to) list = list.filter((e) => e.to === req.query.to.toLowerCase());
			return { body: { emails: list } };
		}
		if (p === 'users' && m === 'GET') return { body: { users: [...data.users.values()] } };
		if (p === 'users' && m === 'POST') {
			const list = Array.isArray(body) ? body : [body];
			const out = list.map((u) => addUser(validateEmailAdmin(u.email), u.confirmed !== false, u.user_metadata));
			return { body: { users: out } };
		}
		if (p === 'jwks' && m === 'GET') return { body: jwks };
		if (p === 'jwks' && m === 'POST') {
			if (!body || !Array.isArray(body.keys)) throw new Error('a JWKS body is {"keys": [...]}');
			jwks = body;
			return { body: jwks };
		}
		if (p === 'jwks/rotate' && m === 'POST') {
			const k = newSigningKey(body.alg || config.jwtAlg);
			keys.unshift(k);
			const keep = body.keep_previous !== false;
			if (!keep) keys = [k];
			jwks = { keys: keys.map((x) => x.publicJwk) };
			return { body: { kid: k.kid, alg: k.alg, private_jwk: k.privateJwk, jwks } };
		}
		if (p === 'sign' && m === 'POST') {
			const k = body.kid ? keys.find((x) => x.kid === body.kid) : keys[0];
			if (!k) throw new Error(`no signing key ${body.kid}`);
			const t = Math.floor(now() / 1000);
			const claims = Object.assign({ iss: `http://127.0.0.1${BASE}`, aud: 'authenticated', role: 'authenticated', iat: t, exp: t + 3600 }, body.claims || {});
			return { body: { token: signJwt(k, claims), kid: k.kid, alg: k.alg, claims } };
		}
		if (p === 'config' && m === 'GET') return { body: configView() };
		if (p === 'config' && m === 'POST') {
			if (body.service_key !== undefined) config.serviceKey = String(body.service_key);
			if (body.anon_key !== undefined) config.anonKey = String(body.anon_key);
			if (body.site_url !== undefined) config.siteUrl = String(body.site_url);
			if (body.redirect_allow !== undefined) config.redirectAllow = common.splitList(body.redirect_allow);
			if (body.undeliverable_domains !== undefined) config.undeliverable = new Set(common.splitList(body.undeliverable_domains).map((d) => d.toLowerCase()));
			if (body.email_frequency_seconds !== undefined) config.emailFrequencySeconds = Number(body.email_frequency_seconds);
			if (body.email_rate_limit !== undefined) config.emailRateLimit = Number(body.email_rate_limit);
			if (body.strict !== undefined) config.strict = !!body.strict;
			return { body: configView() };
		}
		return null;
	}

	function validateEmailAdmin(e) {
		if (typeof e !== 'string' || !EMAIL_FORMAT.test(e)) throw new Error(`not an email address: ${JSON.stringify(e)}`);
		return e;
	}

	function configView() {
		return {
			service_key: config.serviceKey, anon_key: config.anonKey, site_url: config.siteUrl,
			redirect_allow: config.redirectAllow, undeliverable_domains: [...config.undeliverable],
			email_frequency_seconds: config.emailFrequencySeconds, email_rate_limit: config.emailRateLimit,
			strict: config.strict, signing_kid: keys[0].kid, signing_alg: keys[0].alg,
		};
	}

	function stats() {
		const byType = {};
		for (const e of data.emails) byType[e.type] = (byType[e.type] || 0) + 1;
		return Object.assign({}, data.counters, { emails_by_type: byType, users: data.users.size });
	}

	return { name: 'auth-standin', handle, faultResponse, admin, reset: clear, stats };
}

module.exports = { makeService, OPTIONS, verifyJwt };

if (require.main === module) {
	common.runMain(makeService, OPTIONS, process.argv.slice(2));
}
