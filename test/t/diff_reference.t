#!/usr/bin/env node
// diff_reference.t: ipai.diff_words against an outside reference, jsdiff's
// diffWordsWithSpace (npm "diff" 9.0.0), on thousands of random edit pairs.
//
// Both are Myers diffs, but over different tokens: jsdiff's words are runs
// of [a-zA-Z0-9_] and Latin accented letters, each newline (\n or \r\n) is
// a token, other whitespace forms runs, and everything else (CJK, Cyrillic,
// Arabic, each code point of an emoji sequence, each character of an HTML
// tag) is one code point per token; ours keep HTML tags whole, treat '_' as
// punctuation and every non-ASCII letter as a word character, merge
// newlines into whitespace runs and keep emoji sequences together.  So token counts are not directly
// comparable, and we compare both edits under OUR tokenization:
//
//   ours   = tokens in our '-' chunks + tokens in our '+' chunks.
//   jsdiff = jsdiff's alignment projected onto our tokens: an old token and a
//            new token count as kept only when jsdiff keeps every character
//            of the old token and those characters land, in order and
//            contiguously, exactly on one token of the new text (hence the
//            same bytes).  Every other token counts as deleted or inserted.
//            The kept pairs are in order, so this is a valid token-level
//            edit of cost (old tokens - kept) + (new tokens - kept).
//
// A minimal token diff can never cost more than any valid token edit, so
// within budget (these texts are small) ours <= jsdiff must hold for every
// pair; the test also prints how often ours is strictly smaller.  Both
// edits must rebuild both texts exactly.
//
// Our tokenization comes from diff_core.c itself (test/unit/diff_tokens.c,
// compiled here), never from a re-implementation.
//
// Environment: PGHOST, PGPORT, PGUSER, PGDATABASE (database with the
// extension), IPAI_SRC (repo root; packages in test/node_modules); DIFF_TEST_SEED to
// repeat a run, DIFF_REF_PAIRS for the number of pairs (default 3000).
'use strict';

const path = require('path');
const fs = require('fs');
const os = require('os');
const { execFileSync } = require('child_process');

const SRC = process.env.IPAI_SRC || path.resolve(__dirname, '../..');
const { diffWordsWithSpace } = require(path.join(SRC, 'test', 'node_modules', 'diff'));
const postgres = require(path.join(SRC, 'test', 'node_modules', 'postgres'));

let testNo = 0;
let failed = 0;
function ok(cond, name) {
	testNo++;
	if (!cond) failed++;
	console.log(`${cond ? 'ok' : 'not ok'} ${testNo} - ${name}`);
}
function diag(msg) {
	for (const line of String(msg).split('\n'))
		console.log(`# ${line}`);
}

// ---------------------------------------------------------------- random
const seed = Number(process.env.DIFF_TEST_SEED || Date.now() % 1000000);
let state = seed >>> 0 || 1;
function random() {
	state = (state + 0x6D2B79F5) >>> 0;
	let t = state;
	t = Math.imul(t ^ (t >>> 15), t | 1);
	t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
	return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const below = (n) => Math.floor(random() * n);

const VOCAB = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy',
	'dog', 'a', 'b', 'x', 'snake_case', 'Postgres', '2024', '42', 'naïve',
	'café', 'straße', 'e\u0301t\u00e9', 'Привет', 'مرحبا', ' ', ' ', ' ',
	' ', '  ', '\n', '\n\n', '\r\n', '\t', '\u00a0', ',', '.', '!', '?',
	"'", '"', '(', ')', '-', ';', ':', '&amp;', '<p>', '</p>',
	'<b class="x">', '</b>', '<br/>', '<!-- note -->', '<a href="/x?y=1">',
	'</a>', '<', '>', 'a<b', '日本', '語', '漢字', '한국어', 'カタカナ',
	'ひらがな', '、', '。', '「', '」', '\uff01', '\u{1F600}',
	'\u{1F44D}\u{1F3FD}', '\u{1F468}\u200d\u{1F469}\u200d\u{1F467}',
	'\u{1F1EB}\u{1F1F7}', '\u2014', '\u201c', '\u201d', '\u20ac'];

const RANGES = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff],
	[0x590, 0x6ff], [0x2000, 0x206f], [0x2190, 0x2bff], [0x3000, 0x30ff],
	[0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xfe00, 0xfe0f], [0xff00, 0xffef],
	[0x1f1e6, 0x1f1ff], [0x1f300, 0x1faff], [0x20000, 0x2a6df]];

function piece() {
	if (below(10) > 0)
		return VOCAB[below(VOCAB.length)];
	const [lo, hi] = RANGES[below(RANGES.length)];
	let s = '';
	for (let n = 1 + below(3); n > 0; n--)
		s += String.fromCodePoint(lo + below(hi - lo + 1));
	return s;
}

function randomPair() {
	const a = [];
	for (let n = below(80); n > 0; n--)
		a.push(piece());
	let b;
	if (below(10) === 0) {
		b = [];
		for (let n = below(80); n > 0; n--)
			b.push(piece());
	} else {
		b = a.slice();
		for (let e = below(8); e > 0; e--) {
			const at = below(b.length + 1);
			const kind = below(3);
			if (kind === 0)
				b.splice(at, 1 + below(3));
			else if (kind === 1)
				b.splice(at, 0, ...Array.from({ length: 1 + below(3) }, piece));
			else
				b.splice(at, 1 + below(2), ...Array.from({ length: 1 + below(2) }, piece));
		}
	}
	return below(2) ? [a.join(''), b.join('')] : [b.join(''), a.join('')];
}

// ---------------------------------------------------------------- tokens
// Token boundaries (UTF-16 offsets) of each text, from diff_core.c itself.
function tokenizeAll(texts) {
	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'diffref-'));
	try {
		const bin = path.join(tmp, 'diff_tokens');
		execFileSync(process.env.CC || 'cc', ['-O2', '-I', path.join(SRC, 'src'),
			'-o', bin, path.join(SRC, 'test/unit/diff_tokens.c'),
			path.join(SRC, 'src/diff_core.c')], { stdio: 'inherit' });
		const parts = [];
		for (const t of texts) {
			const buf = Buffer.from(t, 'utf8');
			parts.push(Buffer.from(`${buf.length}\n`), buf);
		}
		const out = execFileSync(bin, { input: Buffer.concat(parts),
			maxBuffer: 1 << 28 }).toString().split('\n');
		return texts.map((t, i) => {
			const buf = Buffer.from(t, 'utf8');
			const bounds = [0];
			let byte = 0, unit = 0;
			for (const len of out[i] ? out[i].split(' ').map(Number) : []) {
				unit += buf.subarray(byte, byte + len).toString('utf8').length;
				byte += len;
				bounds.push(unit);
			}
			if (byte !== buf.length)
				throw new Error(`tokens of text ${i} cover ${byte} of ${buf.length} bytes`);
			return bounds;
		});
	} finally {
		fs.rmSync(tmp, { recursive: true, force: true });
	}
}

// Number of tokens (bounds) inside [from, to), or -1 if not on boundaries.
function tokensIn(bounds, index, from, to) {
	const i = index.get(from), j = index.get(to);
	return i === undefined || j === undefined ? -1 : j - i;
}

// ---------------------------------------------------------------- costs
function ourCost(o, n, chunks, bo, bn, io, inn) {
	let po = 0, pn = 0, cost = 0, prev = null;
	for (const { op, chunk } of chunks) {
		if (chunk.length === 0 || op === prev || (prev === '+' && op === '-'))
			return { error: `bad chunk sequence at ${prev} ${op}` };
		prev = op;
		if (op !== '+') {
			const c = tokensIn(bo, io, po, po + chunk.length);
			if (c < 0) return { error: 'chunk not on old token boundaries' };
			if (op === '-') cost += c;
			po += chunk.length;
		}
		if (op !== '-') {
			const c = tokensIn(bn, inn, pn, pn + chunk.length);
			if (c < 0) return { error: 'chunk not on new token boundaries' };
			if (op === '+') cost += c;
			pn += chunk.length;
		}
	}
	return { cost };
}

function rebuilds(chunks, o, n, isAdded, isRemoved) {
	let ro = '', rn = '';
	for (const c of chunks) {
		if (!isAdded(c)) ro += c.value;
		if (!isRemoved(c)) rn += c.value;
	}
	return ro === o && rn === n;
}

function jsdiffProjectedCost(o, n, parts, bo, bn) {
	// map every kept old UTF-16 unit to its new position (-1: removed)
	const map = new Int32Array(o.length).fill(-1);
	let po = 0, pn = 0;
	for (const p of parts) {
		if (p.added) pn += p.value.length;
		else if (p.removed) po += p.value.length;
		else {
			for (let k = 0; k < p.value.length; k++)
				map[po + k] = pn + k;
			po += p.value.length;
			pn += p.value.length;
		}
	}
	const newStart = new Map();
	for (let j = 0; j + 1 < bn.length; j++)
		newStart.set(bn[j], bn[j + 1]);
	let kept = 0;
	for (let i = 0; i + 1 < bo.length; i++) {
		const s = bo[i], e = bo[i + 1];
		const t = map[s];
		if (t < 0 || newStart.get(t) !== t + (e - s))
			continue;
		let whole = true;
		for (let k = s; k < e; k++)
			if (map[k] !== t + (k - s)) { whole = false; break; }
		if (whole)
			kept++;
	}
	return (bo.length - 1 - kept) + (bn.length - 1 - kept);
}

// ---------------------------------------------------------------- main
async function main() {
	const npairs = Number(process.env.DIFF_REF_PAIRS || 3000);
	diag(`seed ${seed} (set DIFF_TEST_SEED to repeat), ${npairs} pairs`);
	console.log('1..6');

	const pairs = [
		['one two three', 'one three four'],
		['the quick brown fox', 'the slow brown dog'],
		['<p>Hello <b>world</b></p>', '<p>Hello <i>world</i></p>'],
		['snake_case\nline', 'snake_case\r\nline'],
		['日本語のテキスト', '日本語テキスト。'],
		['', 'x'], ['x', ''], ['', ''],
	];
	while (pairs.length < npairs)
		pairs.push(randomPair());

	const sql = postgres({ max: 1, onnotice: () => {} });
	const rows = new Map();
	try {
		const [{ ok: fnExists }] = await sql`
			SELECT to_regprocedure('ipai.diff_words(text,text)') IS NOT NULL AS ok`;
		ok(fnExists, 'ipai.diff_words(text, text) exists');
		for (let at = 0; at < pairs.length; at += 500) {
			const batch = pairs.slice(at, at + 500);
			const res = await sql`
				SELECT p.i::int AS i, d.op, d.chunk
				  FROM unnest(${sql.array(batch.map((p) => p[0]))}::text[],
				              ${sql.array(batch.map((p) => p[1]))}::text[])
				       WITH ORDINALITY AS p(o, n, i),
				       LATERAL ipai.diff_words(p.o, p.n) WITH ORDINALITY AS d(op, chunk, k)
				 ORDER BY p.i, d.k`;
			for (const r of res) {
				const key = at + r.i - 1;
				if (!rows.has(key)) rows.set(key, []);
				rows.get(key).push({ op: r.op, chunk: r.chunk });
			}
		}
	} finally {
		await sql.end({ timeout: 5 });
	}

	const bounds = tokenizeAll(pairs.flat());
	let rebuildOk = true, shapeOk = true, jsOk = true, notWorse = true;
	let less = 0, equal = 0, oursTotal = 0, jsTotal = 0;
	for (let p = 0; p < pairs.length; p++) {
		const [o, n] = pairs[p];
		const chunks = rows.get(p) || [];
		const bo = bounds[2 * p], bn = bounds[2 * p + 1];
		const io = new Map(bo.map((b, i) => [b, i]));
		const inn = new Map(bn.map((b, i) => [b, i]));
		const show = () => JSON.stringify([o, n]);

		if (!rebuilds(chunks.map((c) => ({ value: c.chunk, op: c.op })), o, n,
			(c) => c.op === '+', (c) => c.op === '-')) {
			if (rebuildOk) diag(`ours does not rebuild ${show()}`);
			rebuildOk = false;
			continue;
		}
		const ours = ourCost(o, n, chunks, bo, bn, io, inn);
		if (ours.error) {
			if (shapeOk) diag(`${ours.error}: ${show()}`);
			shapeOk = false;
			continue;
		}
		const parts = diffWordsWithSpace(o, n);
		if (!rebuilds(parts, o, n, (c) => c.added, (c) => c.removed)) {
			if (jsOk) diag(`jsdiff does not rebuild ${show()}`);
			jsOk = false;
			continue;
		}
		const js = jsdiffProjectedCost(o, n, parts, bo, bn);
		oursTotal += ours.cost;
		jsTotal += js;
		if (ours.cost < js) less++;
		else if (ours.cost === js) equal++;
		else {
			if (notWorse) diag(`ours ${ours.cost} > jsdiff ${js} tokens: ${show()}`);
			notWorse = false;
		}
	}
	ok(rebuildOk, `${pairs.length} pairs: '=' and '-' rebuild old, '=' and '+' rebuild new`);
	ok(shapeOk, 'chunks are non-empty, on token boundaries, no same op twice, - before +');
	ok(jsOk, 'jsdiff rebuilds both texts too (sanity of the reference)');
	ok(notWorse, 'changed tokens: ours <= jsdiff projected onto our tokens, every pair');
	diag(`changed tokens in total: ours ${oursTotal}, jsdiff ${jsTotal}; ` +
		`ours fewer in ${less} pairs, equal in ${equal}`);
	ok(rows.get(0) && rows.get(0).length > 0 && !rows.has(7),
		'hand-picked pairs answered; empty vs empty gives no rows');
	console.log(`# ${testNo - failed} passed, ${failed} failed`);
	process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
	console.log(`not ok ${testNo + 1} - exception: ${e.message}`);
	console.log(`# ${e.stack}`);
	process.exitCode = 1;
});
