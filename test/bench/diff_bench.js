// diff_bench.js: ipai.diff_words versus jsdiff's diffWordsWithSpace, and
// the budget on unrelated documents.  Run by diff_bench.sh (PGHOST etc. set,
// the extension created in PGDATABASE).  Prints figures, asserts nothing
// except that the unrelated pair stays within its time goal (exit 1 if not).
'use strict';

const path = require('path');
const SRC = process.env.IPAI_SRC || path.resolve(__dirname, '../..');
const { diffWordsWithSpace } = require(path.join(SRC, 'test', 'node_modules', 'diff'));
const postgres = require(path.join(SRC, 'test', 'node_modules', 'postgres'));
const { makeDoc, editWords } = require('./diff_docs.js');

const REPS = Number(process.env.DIFF_BENCH_REPS || 30);

function ms(t0) {
	return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function timed(fn, reps) {
	const times = [];
	let last;
	for (let i = 0; i < reps; i++) {
		const t0 = process.hrtime.bigint();
		last = await fn();
		times.push(ms(t0));
	}
	times.sort((a, b) => a - b);
	return { median: times[Math.floor(times.length / 2)], min: times[0], last };
}

const fmt = (x) => x.toFixed(1).padStart(8) + ' ms';

async function main() {
	const sql = postgres({ max: 1, onnotice: () => {} });
	try {
		// 1. a 100 KB page with 1% of its words edited
		const a = makeDoc(100000, 1);
		const b = editWords(a, 0.01, 2);
		console.log(`100 KB document, 1% of words edited: ${Buffer.byteLength(a)} / ` +
			`${Buffer.byteLength(b)} bytes, median of ${REPS} interleaved runs after 2 warm-ups`);

		// interleaved, so both see the same load on a shared machine
		const ours = () => sql`SELECT op, chunk FROM ipai.diff_words(${a}, ${b})`;
		const countOnly = () => sql`SELECT count(*) FROM ipai.diff_words(${a}, ${b})`;
		await timed(() => diffWordsWithSpace(a, b), 2);
		await timed(ours, 2);
		await timed(countOnly, 2);
		const runs = { js: [], pg: [], pgCount: [] };
		let jsLast, pgLast;
		for (let r = 0; r < REPS; r++) {
			let t0 = process.hrtime.bigint();
			jsLast = diffWordsWithSpace(a, b);
			runs.js.push(ms(t0));
			t0 = process.hrtime.bigint();
			pgLast = await ours();
			runs.pg.push(ms(t0));
			t0 = process.hrtime.bigint();
			await countOnly();
			runs.pgCount.push(ms(t0));
		}
		const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
		const js = { median: median(runs.js), last: jsLast };
		const pg = { median: median(runs.pg), last: pgLast };
		const pgCount = { median: median(runs.pgCount) };

		const changed = (parts) => parts.filter((p) => p.added || p.removed).length;
		console.log(`  jsdiff diffWordsWithSpace (in Node)        ${fmt(js.median)}` +
			`   ${js.last.length} chunks, ${changed(js.last)} changed`);
		console.log(`  ipai.diff_words, all rows to the client    ${fmt(pg.median)}` +
			`   ${pg.last.length} chunks, ${pg.last.filter((r) => r.op !== '=').length} changed`);
		console.log(`  ipai.diff_words, count(*) in the server    ${fmt(pgCount.median)}`);
		console.log(`  ratio jsdiff / ipai.diff_words (client)    ${(js.median / pg.median).toFixed(1)}x` +
			`   (goal >= 3x)`);

		// 2. the same at 1 MB, still exact (sparse edits)
		const a1 = makeDoc(1000000, 3);
		const b1 = editWords(a1, 0.01, 4);
		const big = await timed(() => sql`SELECT op, chunk FROM ipai.diff_words(${a1}, ${b1})`, 3);
		const bigJs = await timed(() => diffWordsWithSpace(a1, b1), 1);
		console.log(`1 MB document, 1% of words edited:`);
		console.log(`  jsdiff diffWordsWithSpace (in Node)        ${fmt(bigJs.median)}`);
		console.log(`  ipai.diff_words, all rows to the client    ${fmt(big.median)}` +
			`   (ratio ${(bigJs.median / big.median).toFixed(1)}x)`);

		// 3. two unrelated 1 MB documents: the budget must keep this short
		const u1 = makeDoc(1000000, 5);
		const u2 = makeDoc(1000000, 6);
		const un = await timed(() => sql`SELECT op, chunk FROM ipai.diff_words(${u1}, ${u2})`, 3);
		const unCount = await timed(() => sql`SELECT count(*) FROM ipai.diff_words(${u1}, ${u2})`, 3);
		const within = un.median < 2000;
		console.log(`two unrelated 1 MB documents (${Buffer.byteLength(u1)} / ${Buffer.byteLength(u2)} bytes), median of 3:`);
		console.log(`  ipai.diff_words, all rows to the client    ${fmt(un.median)}` +
			`   ${un.last.length} chunks   (goal < 2000 ms: ${within ? 'met' : 'MISSED'})`);
		console.log(`  ipai.diff_words, count(*) in the server    ${fmt(unCount.median)}`);
		console.log('  (jsdiff is not run here: without maxEditLength it needs minutes)');
		process.exitCode = within ? 0 : 1;
	} finally {
		await sql.end({ timeout: 5 });
	}
}

main().catch((e) => {
	console.error(e);
	process.exitCode = 1;
});
