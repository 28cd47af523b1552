'use strict';
// standin_common.js — what the local HTTP stand-ins for outside services
// (stripe_standin.js, auth_standin.js) share: the server on 127.0.0.1 with
// its port file, an optional second admin port, the request log, counters,
// fault injection (random rate and a queue of scripted next answers), a
// "down" switch that really stops listening (connection refused), a clock
// that tests can move, and the /__standin/ admin endpoints common to both.
// Node built-ins only.  See test/lib/STANDINS.md.

const http = require('http');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const ADMIN_PREFIX = '/__standin/';
const MAX_BODY = 1 << 20;
const MAX_LOGGED_BODY = 64 * 1024;

// Command line: --name value or --name=value; each option may also come
// from an environment variable.  Unknown options are refused.
function parseOptions(argv, spec) {
	const out = {};
	for (const [name, def] of Object.entries(spec)) {
		const env = def.env && process.env[def.env];
		out[name] = env !== undefined && env !== '' ? env : def.default;
	}
	for (let i = 0; i < argv.length; i++) {
		let arg = argv[i];
		if (!arg.startsWith('--')) throw new Error(`unexpected argument: ${arg}`);
		arg = arg.slice(2);
		let value;
		const eq = arg.indexOf('=');
		if (eq >= 0) {
			value = arg.slice(eq + 1);
			arg = arg.slice(0, eq);
		}
		const key = arg.replace(/-/g, '_');
		if (key.startsWith('no_') && spec[key.slice(3)] && spec[key.slice(3)].flag) {
			out[key.slice(3)] = false;
			continue;
		}
		if (!(key in spec)) throw new Error(`unknown option --${arg}`);
		if (spec[key].flag) {
			out[key] = value === undefined ? true : !/^(0|false|no)$/i.test(value);
			continue;
		}
		if (value === undefined) {
			if (i + 1 >= argv.length) throw new Error(`option --${arg} needs a value`);
			value = argv[++i];
		}
		out[key] = value;
	}
	for (const [name, def] of Object.entries(spec)) {
		if (def.flag && typeof out[name] === 'string') out[name] = !/^(0|false|no|)$/i.test(out[name]);
	}
	return out;
}

function splitList(s) {
	if (Array.isArray(s)) return s;
	if (s === undefined || s === null || s === '') return [];
	return String(s).split(',').map((x) => x.trim()).filter(Boolean);
}

// small deterministic generator for the random fault rate (mulberry32)
function makeRng(seed) {
	let a = (seed >>> 0) || 1;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function randomAlnum(n) {
	const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
	const bytes = crypto.randomBytes(n);
	let s = '';
	for (let i = 0; i < n; i++) s += chars[bytes[i] % chars.length];
	return s;
}

function writeFileAtomic(file, text) {
	const tmp = `${file}.${process.pid}.tmp`;
	fs.writeFileSync(tmp, text);
	fs.renameSync(tmp, file);
}

// Fault kinds.  "before": nothing is processed or recorded; "after": the
// request is processed (and recorded) first, then the client does not get
// the success answer.
const KIND_ALIASES = {
	'500': '500_before', '500_before': '500_before', '500_after': '500_after',
	'429': '429', '400': '400',
	timeout: 'timeout_before', timeout_before: 'timeout_before', timeout_after: 'timeout_after',
	reset: 'reset_before', reset_before: 'reset_before', reset_after: 'reset_after',
};
const FAULT_KINDS = Object.keys(KIND_ALIASES);

function normalizeFault(f) {
	if (typeof f === 'string') f = { kind: f };
	if (!f || typeof f !== 'object') throw new Error('a fault is an object with a kind');
	const kind = KIND_ALIASES[String(f.kind)];
	if (!kind) throw new Error(`unknown fault kind ${JSON.stringify(f.kind)}; kinds: ${FAULT_KINDS.join(', ')}`);
	const out = Object.assign({}, f, { kind });
	if (out.times !== undefined) {
		out.times = Number(out.times);
		if (!Number.isInteger(out.times) || out.times < 1) throw new Error('times must be a positive integer');
	}
	if (out.seconds !== undefined && !(Number(out.seconds) >= 0)) throw new Error('seconds must be a number >= 0');
	return out;
}

function pathMatches(pattern, p) {
	if (!pattern) return true;
	const list = Array.isArray(pattern) ? pattern : [pattern];
	return list.some((x) => (x.endsWith('*') ? p.startsWith(x.slice(0, -1)) : p === x));
}

function sendJson(res, status, body, headers = {}) {
	if (res.writableEnded || res.destroyed) return;
	const text = JSON.stringify(body, null, 2) + '\n';
	res.writeHead(status, Object.assign({
		'Content-Type': 'application/json',
		'Content-Length': Buffer.byteLength(text),
	}, headers));
	res.end(text);
}

function parseJsonBody(text) {
	if (!text) return {};
	return JSON.parse(text);
}

// The service object passed to createStandin provides:
//   name                       e.g. "stripe-standin"
//   handle(ctx)                -> {status, headers, body} (may be async);
//                                 ctx = {req, method, path, query, headers,
//                                 rawBody, entry, now(), fault}
//   faultResponse(kind, fault, ctx) -> {status, headers, body} for 500/429/400
//   afterFault(ctx, result, fault)   called when an *_after fault swallows a
//                                 processed answer (e.g. to adjust what the
//                                 idempotency layer saved)
//   admin(ctx, body)           -> {status, body} or null for unknown paths
//   reset()                    forget recorded data
//   stats()                    service counters merged into /__standin/stats
function createStandin(service, opts) {
	const state = {
		seq: 0,
		requests: [],
		counts: { requests: 0, by_status: {}, by_fault: {}, admin_requests: 0 },
		random: null,
		queue: [],
		clockOffsetMs: 0,
		down: null,
	};
	const now = () => Date.now() + state.clockOffsetMs;
	let rng = Math.random;
	const sockets = new Set();
	const held = new Set();
	let mainServer = null;
	let adminServer = null;
	let port = Number(opts.port || 0);
	let adminPort = null;
	const logLimit = Number(opts.logLimit || 10000);

	function resetAll() {
		state.requests = [];
		state.counts = { requests: 0, by_status: {}, by_fault: {}, admin_requests: 0 };
		state.random = null;
		state.queue = [];
		state.clockOffsetMs = 0;
		for (const s of held) s.destroy();
		held.clear();
		if (service.reset) service.reset();
	}

	function pickFault(p) {
		for (let i = 0; i < state.queue.length; i++) {
			const f = state.queue[i];
			if (!pathMatches(f.path, p)) continue;
			if (f.times && f.times > 1) {
				f.times -= 1;
			} else {
				state.queue.splice(i, 1);
			}
			return Object.assign({}, f, { source: 'queue' });
		}
		const r = state.random;
		if (r && r.rate > 0 && pathMatches(r.paths, p) && rng() < r.rate) {
			const kind = r.kinds[Math.floor(rng() * r.kinds.length)];
			return Object.assign({}, r.options || {}, { kind, source: 'random' });
		}
		return null;
	}

	function logEntry(ctx) {
		const entry = {
			seq: ++state.seq,
			time: new Date(now()).toISOString(),
			method: ctx.method,
			path: ctx.path,
			query: ctx.query,
			headers: ctx.headers,
			body: ctx.rawBody.length > MAX_LOGGED_BODY ? ctx.rawBody.slice(0, MAX_LOGGED_BODY) : ctx.rawBody,
			params: null,
			status: null,
			outcome: null,
			fault: null,
			processed: false,
		};
		state.requests.push(entry);
		if (state.requests.length > logLimit) state.requests.shift();
		return entry;
	}

	function count(entry) {
		state.counts.requests++;
		const key = entry.status === null ? entry.outcome : String(entry.status);
		state.counts.by_status[key] = (state.counts.by_status[key] || 0) + 1;
		if (entry.fault) state.counts.by_fault[entry.fault] = (state.counts.by_fault[entry.fault] || 0) + 1;
	}

	function answer(res, entry, result) {
		entry.status = result.status;
		entry.outcome = entry.outcome || 'answered';
		entry.response = result.body;
		entry.response_headers = result.headers || {};
		count(entry);
		sendJson(res, result.status, result.body, result.headers || {});
	}

	function hold(req, res, entry, seconds) {
		entry.outcome = 'timeout';
		count(entry);
		const sock = req.socket;
		held.add(sock);
		const t = setTimeout(() => {
			held.delete(sock);
			sock.destroy();
		}, Math.round(Number(seconds) * 1000));
		sock.once('close', () => {
			clearTimeout(t);
			held.delete(sock);
		});
	}

	function reset(req, entry) {
		entry.outcome = 'reset';
		count(entry);
		req.socket.destroy();
	}

	async function handleService(req, res, ctx) {
		const entry = logEntry(ctx);
		ctx.entry = entry;
		const fault = pickFault(ctx.path);
		if (fault) entry.fault = fault.kind;
		ctx.fault = fault;
		if (fault) {
			switch (fault.kind) {
			case '500_before':
			case '429':
			case '400':
				return answer(res, entry, service.faultResponse(fault.kind, fault, ctx));
			case 'timeout_before':
				return hold(req, res, entry, fault.seconds !== undefined ? fault.seconds : 30);
			case 'reset_before':
				return reset(req, entry);
			default:
				break;
			}
		}
		let result;
		try {
			result = await service.handle(ctx);
		} catch (err) {
			process.stderr.write(`${service.name}: ${err && err.stack || err}\n`);
			result = service.faultResponse('500_before', { kind: '500_before', message: 'stand-in internal error' }, ctx);
		}
		if (fault && fault.kind.endsWith('_after')) {
			if (service.afterFault) service.afterFault(ctx, result, fault);
			entry.swallowed_response = { status: result.status, body: result.body };
			if (fault.kind === '500_after') return answer(res, entry, service.faultResponse('500_after', fault, ctx));
			if (fault.kind === 'timeout_after') return hold(req, res, entry, fault.seconds !== undefined ? fault.seconds : 30);
			return reset(req, entry);
		}
		return answer(res, entry, result);
	}

	function setDown(seconds) {
		if (!mainServer) return;
		state.down = { since: new Date(now()).toISOString(), until: seconds ? new Date(now() + seconds * 1000).toISOString() : null };
		mainServer.close();
		for (const s of sockets) if (s.localPort === port) s.destroy();
		if (seconds) {
			state.down.timer = setTimeout(() => setUp(), seconds * 1000);
		}
	}

	function setUp() {
		return new Promise((resolve) => {
			if (!state.down) return resolve();
			if (state.down.timer) clearTimeout(state.down.timer);
			state.down = null;
			mainServer = makeServer(false);
			mainServer.listen(port, '127.0.0.1', () => resolve());
		});
	}

	async function handleAdmin(req, res, ctx, viaAdminPort) {
		state.counts.admin_requests++;
		let body = {};
		if (ctx.method === 'POST' || ctx.method === 'PUT' || ctx.method === 'DELETE') {
			try {
				body = parseJsonBody(ctx.rawBody);
			} catch (e) {
				return sendJson(res, 400, { error: `admin body is not JSON: ${e.message}` });
			}
		}
		const p = ctx.path.slice(ADMIN_PREFIX.length).replace(/\/+$/, '');
		const m = ctx.method;
		try {
			if (p === 'health' && m === 'GET') {
				return sendJson(res, 200, { ok: true, name: service.name, port, admin_port: adminPort, down: !!state.down });
			}
			if (p === 'requests' && m === 'GET') {
				let list = state.requests;
				if (ctx.query.path) list = list.filter((r) => r.path === ctx.query.path);
				if (ctx.query.since) list = list.filter((r) => r.seq > Number(ctx.query.since));
				return sendJson(res, 200, { requests: list });
			}
			if (p === 'stats' && m === 'GET') {
				return sendJson(res, 200, Object.assign({}, state.counts, {
					faults_queued: state.queue.length,
					random_faults: state.random,
					down: !!state.down,
					clock_offset_seconds: state.clockOffsetMs / 1000,
				}, service.stats ? service.stats() : {}));
			}
			if (p === 'reset' && m === 'POST') {
				resetAll();
				return sendJson(res, 200, { ok: true });
			}
			if (p === 'faults' && m === 'GET') {
				return sendJson(res, 200, { random: state.random, queue: state.queue, kinds: FAULT_KINDS });
			}
			if (p === 'faults' && m === 'DELETE') {
				state.random = null;
				state.queue = [];
				return sendJson(res, 200, { ok: true });
			}
			if (p === 'faults' && (m === 'POST' || m === 'PUT')) {
				const rate = Number(body.rate || 0);
				if (!(rate >= 0 && rate <= 1)) return sendJson(res, 400, { error: 'rate must be between 0 and 1' });
				const kinds = (body.kinds || ['500']).map((k) => normalizeFault(k).kind);
				if (kinds.length === 0) return sendJson(res, 400, { error: 'kinds must not be empty' });
				const options = Object.assign({}, body);
				delete options.rate; delete options.kinds; delete options.seed; delete options.paths;
				state.random = rate > 0 ? { rate, kinds, paths: body.paths || null, seed: body.seed === undefined ? null : Number(body.seed), options } : null;
				rng = body.seed === undefined ? Math.random : makeRng(Number(body.seed));
				return sendJson(res, 200, { random: state.random });
			}
			if (p === 'faults/next' && m === 'POST') {
				const list = (Array.isArray(body) ? body : [body]).map(normalizeFault);
				state.queue.push(...list);
				return sendJson(res, 200, { queue: state.queue });
			}
			if (p === 'down' && m === 'POST') {
				const seconds = body.seconds === undefined ? null : Number(body.seconds);
				if (!seconds && !adminServer) return sendJson(res, 400, { error: 'without --admin-port-file the stand-in can only go down for a number of seconds' });
				if (state.down) return sendJson(res, 409, { error: 'already down' });
				sendJson(res, 200, { ok: true, down_for_seconds: seconds }, { Connection: 'close' });
				res.on('finish', () => setImmediate(() => setDown(seconds)));
				return undefined;
			}
			if (p === 'up' && m === 'POST') {
				await setUp();
				return sendJson(res, 200, { ok: true });
			}
			if (p === 'clock' && m === 'GET') {
				return sendJson(res, 200, { now: Math.floor(now() / 1000), offset_seconds: state.clockOffsetMs / 1000 });
			}
			if (p === 'clock' && m === 'POST') {
				if (body.offset_seconds !== undefined) state.clockOffsetMs = Number(body.offset_seconds) * 1000;
				if (body.advance_seconds !== undefined) state.clockOffsetMs += Number(body.advance_seconds) * 1000;
				return sendJson(res, 200, { now: Math.floor(now() / 1000), offset_seconds: state.clockOffsetMs / 1000 });
			}
			const r = service.admin ? await service.admin({ method: m, path: p, query: ctx.query, headers: ctx.headers }, body) : null;
			if (r) return sendJson(res, r.status || 200, r.body);
			return sendJson(res, 404, { error: `no admin endpoint ${m} ${ADMIN_PREFIX}${p}` });
		} catch (e) {
			return sendJson(res, 400, { error: e.message });
		}
	}

	function makeServer(isAdmin) {
		const server = http.createServer((req, res) => {
			const chunks = [];
			let size = 0;
			req.on('data', (c) => {
				size += c.length;
				if (size <= MAX_BODY) chunks.push(c);
			});
			req.on('end', () => {
				const url = new URL(req.url, 'http://127.0.0.1');
				const query = {};
				for (const [k, v] of url.searchParams) query[k] = v;
				const ctx = {
					req,
					method: req.method,
					path: url.pathname,
					query,
					rawQuery: url.search.slice(1),
					headers: Object.assign({}, req.headers),
					rawBody: Buffer.concat(chunks).toString('utf8'),
					now,
				};
				if (size > MAX_BODY) return sendJson(res, 413, { error: 'request body too large for the stand-in' });
				if (ctx.path.startsWith(ADMIN_PREFIX)) {
					handleAdmin(req, res, ctx, isAdmin).catch((e) => sendJson(res, 500, { error: String(e) }));
				} else if (isAdmin) {
					sendJson(res, 404, { error: 'the admin port serves /__standin/ only' });
				} else {
					handleService(req, res, ctx).catch((e) => {
						process.stderr.write(`${service.name}: ${e && e.stack || e}\n`);
						if (!res.headersSent) sendJson(res, 500, { error: String(e) });
					});
				}
			});
		});
		server.keepAliveTimeout = 5000;
		server.on('connection', (s) => {
			sockets.add(s);
			s.on('close', () => sockets.delete(s));
		});
		server.on('clientError', (err, s) => s.destroy());
		return server;
	}

	function listen(server, p) {
		return new Promise((resolve, reject) => {
			server.once('error', reject);
			server.listen(p, '127.0.0.1', () => {
				server.removeListener('error', reject);
				resolve(server.address().port);
			});
		});
	}

	async function start() {
		mainServer = makeServer(false);
		port = await listen(mainServer, port);
		if (opts.adminPortFile || opts.adminPort) {
			adminServer = makeServer(true);
			adminPort = await listen(adminServer, Number(opts.adminPort || 0));
			if (opts.adminPortFile) writeFileAtomic(opts.adminPortFile, String(adminPort));
		}
		if (opts.portFile) writeFileAtomic(opts.portFile, String(port));
		process.stdout.write(`${service.name} listening on http://127.0.0.1:${port}${adminPort ? ` (admin port ${adminPort})` : ''}\n`);
		return { port, adminPort };
	}

	function stop() {
		for (const s of held) s.destroy();
		for (const s of sockets) s.destroy();
		if (mainServer) mainServer.close();
		if (adminServer) adminServer.close();
	}

	return { start, stop, now, state, resetAll };
}

// Run a stand-in as a program: signals stop it, and it stops by itself
// when the process that started it goes away (unless --no-exit-with-parent).
function runMain(makeService, spec, argv) {
	let options;
	try {
		options = parseOptions(argv, spec);
	} catch (e) {
		process.stderr.write(`${e.message}\n`);
		process.exit(2);
	}
	let standin;
	let clock = () => Date.now();
	try {
		const service = makeService(options, () => clock());
		standin = createStandin(service, {
			port: options.port,
			portFile: options.port_file,
			adminPortFile: options.admin_port_file,
			adminPort: options.admin_port,
			logLimit: options.log_limit,
		});
		clock = standin.now;
	} catch (e) {
		process.stderr.write(`${e.message}\n`);
		process.exit(2);
	}
	const exit = () => {
		standin.stop();
		process.exit(0);
	};
	process.on('SIGTERM', exit);
	process.on('SIGINT', exit);
	process.on('SIGHUP', exit);
	if (options.exit_with_parent !== false) {
		const parent = process.ppid;
		setInterval(() => {
			if (process.ppid !== parent) exit();
		}, 500).unref();
	}
	standin.start().catch((e) => {
		process.stderr.write(`${e.message}\n`);
		process.exit(1);
	});
	return standin;
}

const COMMON_OPTIONS = (prefix) => ({
	port: { env: `${prefix}_PORT`, default: '0' },
	port_file: { env: `${prefix}_PORT_FILE` },
	admin_port: { env: `${prefix}_ADMIN_PORT` },
	admin_port_file: { env: `${prefix}_ADMIN_PORT_FILE` },
	log_limit: { env: `${prefix}_LOG_LIMIT`, default: '10000' },
	exit_with_parent: { flag: true, default: true },
});

function loadJson(file) {
	return JSON.parse(fs.readFileSync(path.resolve(__dirname, file), 'utf8'));
}

module.exports = {
	ADMIN_PREFIX, FAULT_KINDS, COMMON_OPTIONS,
	parseOptions, splitList, makeRng, randomAlnum, normalizeFault,
	createStandin, runMain, sendJson, loadJson,
};
