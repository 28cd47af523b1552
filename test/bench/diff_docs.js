// diff_docs.js: deterministic CMS-like documents for the diff benchmark.
//
// makeDoc(bytes, seed) gives HTML paragraphs of sentences drawn from a
// Zipf-distributed vocabulary of pseudo-words (with some accented words,
// numbers, links, bold text and an occasional CJK sentence), so word
// frequencies look like real prose.  editWords(doc, fraction, seed) edits
// that fraction of the words (a third replaced, a third deleted, a third
// with a word inserted after them).
//
// Usage as a script: node diff_docs.js BYTES SEED [EDIT_FRACTION] writes the
// document (or, with a fraction, its edited copy) to stdout.
'use strict';

function rng(seed) {
	let s = seed >>> 0;
	return () => {
		s = (s + 0x6D2B79F5) >>> 0;
		let t = s;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const SYLLABLES = ['ka', 'to', 'ri', 'men', 'sa', 'lo', 'ver', 'di', 'an',
	'pro', 'tel', 'mi', 'nu', 'qua', 'ex', 'bra', 'go', 'fi', 'ul', 'zen',
	'cor', 'é', 'ß', 'ö', 'ion', 'ment', 'ly', 'ed', 'ing', 'st'];

function vocabulary(random, size) {
	const words = new Set(['the', 'of', 'and', 'to', 'a', 'in', 'is', 'that',
		'for', 'it', 'as', 'with', 'on', 'be', 'by', 'this', 'are', 'or']);
	while (words.size < size) {
		let w = '';
		const n = 1 + Math.floor(random() * 3);
		for (let i = 0; i < n; i++)
			w += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
		words.add(w);
	}
	return [...words];
}

// Zipf(1) sampler over n ranks via the inverse of the harmonic CDF.
function zipf(random, n) {
	const cdf = new Float64Array(n);
	let sum = 0;
	for (let i = 0; i < n; i++) {
		sum += 1 / (i + 1);
		cdf[i] = sum;
	}
	return () => {
		const u = random() * sum;
		let lo = 0, hi = n - 1;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (cdf[mid] < u) lo = mid + 1; else hi = mid;
		}
		return lo;
	};
}

const CJK = ['数据库', '内容', '管理', 'システム', 'の', '更新', '版本', '한국어', '문서'];

function makeDoc(bytes, seed) {
	const random = rng(seed);
	const vocab = vocabulary(rng(12345), 4000);	// same words for every seed
	const pick = zipf(random, vocab.length);
	const parts = [];
	let size = 0;
	while (size < bytes) {
		let para = '<p>';
		const sentences = 2 + Math.floor(random() * 5);
		for (let s = 0; s < sentences; s++) {
			if (random() < 0.03) {
				let c = '';
				for (let i = 0; i < 6; i++) c += CJK[Math.floor(random() * CJK.length)];
				para += c + '。';
				continue;
			}
			const n = 5 + Math.floor(random() * 16);
			const words = [];
			for (let i = 0; i < n; i++) {
				let w = vocab[pick()];
				const r = random();
				if (r < 0.02) w = String(Math.floor(random() * 10000));
				else if (r < 0.03) w = '<b>' + w + '</b>';
				else if (r < 0.035) w = '<a href="/p/' + w + '">' + w + '</a>';
				if (i === 0) w = w.charAt(0).toUpperCase() + w.slice(1);
				if (i < n - 1 && random() < 0.08) w += ',';
				words.push(w);
			}
			para += (s ? ' ' : '') + words.join(' ') + (random() < 0.1 ? '?' : '.');
		}
		para += '</p>\n';
		parts.push(para);
		size += Buffer.byteLength(para);
	}
	return parts.join('');
}

// Edit a fraction of the space-separated words of doc.
function editWords(doc, fraction, seed) {
	const random = rng(seed);
	const vocab = vocabulary(rng(12345), 4000);
	const pieces = doc.split(/( +)/);		// words at even indexes
	for (let i = 0; i < pieces.length; i += 2) {
		if (random() >= fraction)
			continue;
		const r = random();
		const w = vocab[Math.floor(random() * vocab.length)];
		if (r < 1 / 3)
			pieces[i] = w;
		else if (r < 2 / 3)
			pieces[i] = '';
		else
			pieces[i] = pieces[i] + ' ' + w;
	}
	return pieces.join('');
}

module.exports = { makeDoc, editWords, rng };

if (require.main === module) {
	const [bytes, seed, fraction] = process.argv.slice(2);
	let doc = makeDoc(Number(bytes), Number(seed));
	if (fraction !== undefined)
		doc = editWords(doc, Number(fraction), Number(seed) + 1);
	process.stdout.write(doc);
}
