#!/usr/bin/env node
// acceptance_cms.t: SPEC 4: the status machine (functions and plain UPDATEs),
// roles and the four-eyes rule, edits of an approved page, version snapshots
// without gaps under concurrency, diff_words against npm diff, cms_diff_html
// escaping, scheduling arguments, run_due_publications exactly once under
// concurrency, notifications at commit.
'use strict';
const path = require('path');
const L = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '..', '..'), 'test', 'acceptance', 'lib.js'));
const { ok, is, code, err, diag } = L;
const Diff = L.req('diff');

const ORG = L.uuid('c0', 1), ORG2 = L.uuid('c0', 2);
const OWNER = L.uuid('c1', 1), ADMIN = L.uuid('c1', 2), EDITOR = L.uuid('c1', 3), EDITOR2 = L.uuid('c1', 4), VIEWER = L.uuid('c1', 5), STRANGER = L.uuid('c1', 6);
const ST = ['draft', 'pending', 'approved', 'published', 'archived'];
const ALLOWED = new Set(['draft>pending', 'pending>approved', 'pending>draft', 'approved>published', 'published>draft', 'published>archived']);

(async () => {
  const db = L.newDb('cms');
  const sql = L.connect(db, { max: 12 });
  await sql`INSERT INTO ipai.organizations (id, name, plan_id) VALUES (${ORG}, 'CMS Co', 'pro'), (${ORG2}, 'Other Co', 'pro')`;
  for (const [u, r] of [[OWNER, 'owner'], [ADMIN, 'admin'], [EDITOR, 'editor'], [EDITOR2, 'editor'], [VIEWER, 'viewer']])
    await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${ORG}, ${u}, ${r})`;
  await sql`INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (${ORG2}, ${STRANGER}, 'owner')`;
  const as = (u, f) => L.as(sql, 'authenticated', u, f);
  const status = async (p) => (await sql`SELECT status FROM ipai.cms_pages WHERE id = ${p}`)[0].status;
  const versions = (p) => sql`SELECT version, status, title, body, metadata, created_by, created_at FROM ipai.cms_page_versions WHERE page_id = ${p} ORDER BY version`;
  let k = 0;
  const mk = async (u = EDITOR, title = 'Page ' + (++k), body = '<p>Hello world</p>') =>
    (await as(u, (tx) => tx`SELECT ipai.cms_create_page(${ORG}, ${title}, ${body}) AS id`))[0].id;
  const drive = async (p, to) => {
    if (to === 'draft') return;
    await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${p})`);
    if (to === 'pending') return;
    await as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${p}, 'fine')`);
    if (to === 'approved') return;
    await as(OWNER, (tx) => tx`SELECT ipai.cms_publish(${p})`);
    if (to === 'published') return;
    await sql`UPDATE ipai.cms_pages SET status = 'archived' WHERE id = ${p}`;
  };

  // creation and roles
  const p1 = await mk(EDITOR, 'Hello World');
  ok(/^[0-9a-f-]{36}$/.test(p1), 'an editor creates a page');
  const [row] = await sql`SELECT status, slug, org_id FROM ipai.cms_pages WHERE id = ${p1}`;
  ok(row.status === 'draft' && row.slug && /hello/.test(row.slug) && /world/.test(row.slug), 'a new draft, slug derived from the title', row);
  const p1b = await mk(EDITOR, 'Hello World');
  const [row2] = await sql`SELECT slug FROM ipai.cms_pages WHERE id = ${p1b}`;
  ok(row2.slug && row2.slug !== row.slug, 'the same title again: a different slug (unique per org)', [row.slug, row2.slug]);
  const dupSlug = await err(() => as(EDITOR, (tx) => tx`SELECT ipai.cms_create_page(${ORG}, 'X', 'y', ${row.slug})`));
  ok(dupSlug, 'an explicit slug already used in the org: an error (' + (dupSlug && dupSlug.code) + ')');
  is(await code(() => as(STRANGER, (tx) => tx`SELECT ipai.cms_create_page(${ORG2}, 'X', 'y', ${row.slug})`)), 'OK', 'the same slug in another org: fine');
  is(await code(() => as(VIEWER, (tx) => tx`SELECT ipai.cms_create_page(${ORG}, 'V', 'v')`)), '42501', 'a viewer cannot create pages');
  is(await code(() => as(STRANGER, (tx) => tx`SELECT ipai.cms_create_page(${ORG}, 'S', 's')`)), '42501', 'a non-member cannot create pages');
  is(await code(() => sql`SELECT ipai.cms_create_page(${L.uuid('dead', 1)}, 'S', 's')`), '22023', 'unknown org: 22023');
  is(await code(() => sql`SELECT ipai.cms_create_page(NULL::uuid, 'S', 's')`), '22023', 'NULL org: 22023');
  is(await code(() => sql`SELECT ipai.cms_create_page(${ORG}, 'S', 's', NULL, 'no_such_type')`), '22023', 'unknown content_type: 22023');

  // approval workflow through the functions
  const [{ a: appr }] = await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${p1}, 'please') AS a`);
  ok(/^[0-9a-f-]{36}$/.test(appr), 'cms_request_approval returns an approval id');
  is(await status(p1), 'pending', 'pending');
  is(await code(() => as(EDITOR2, (tx) => tx`SELECT ipai.cms_approve(${p1})`)), '42501', 'an editor cannot approve');
  is(await code(() => as(VIEWER, (tx) => tx`SELECT ipai.cms_reject(${p1}, 'no')`)), '42501', 'a viewer cannot reject');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${p1}, NULL)`)), '22023', 'reject without a comment: 22023');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${p1}, '   ')`)), '22023', 'reject with a blank comment: 22023');
  is(await status(p1), 'pending', 'still pending');
  const q = await as(ADMIN, (tx) => tx`SELECT * FROM ipai.cms_approval_queue`);
  ok(q.some((r) => JSON.stringify(r).includes(p1)), 'the page is in ipai.cms_approval_queue for an admin');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_publish(${p1})`)), 'IP004', 'publish a pending page: IP004');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${p1}, 'needs work')`)), 'OK', 'an admin rejects with a comment');
  is(await status(p1), 'draft', 'rejected: back to draft');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${p1})`)), 'IP004', 'approve a draft: IP004');
  await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${p1})`);
  is(await code(() => as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${p1})`)), 'IP004', 'request approval of a pending page: IP004');
  is(await code(() => as(OWNER, (tx) => tx`SELECT ipai.cms_approve(${p1}, 'ok')`)), 'OK', 'the owner approves');
  is(await code(() => as(EDITOR, (tx) => tx`SELECT ipai.cms_publish(${p1})`)), '42501', 'an editor cannot publish');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_publish(${p1})`)), 'OK', 'an admin publishes');
  is(await status(p1), 'published', 'published');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_publish(${p1})`)), 'IP004', 'publish a published page: IP004');
  // four eyes
  const p2 = await mk(ADMIN);
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_request_approval(${p2})`);
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${p2})`)), '42501', 'an admin cannot approve their own request');
  is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${p2}, 'hmm')`)), '42501', '... nor reject it');
  is(await code(() => as(ADMIN, (tx) => tx`UPDATE ipai.cms_pages SET status = 'approved' WHERE id = ${p2}`)), '42501', '... nor approve it by a plain UPDATE');
  is(await status(p2), 'pending', 'still pending');
  is(await code(() => as(OWNER, (tx) => tx`SELECT ipai.cms_approve(${p2})`)), 'OK', 'another owner approves it');
  is(await code(() => as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET status = 'published' WHERE id = ${p2}`)), '42501', 'an editor cannot publish by a plain UPDATE');
  is(await status(p2), 'approved', 'still approved');
  // unknown/NULL pages
  for (const [f, call] of [['cms_request_approval', (p) => sql`SELECT ipai.cms_request_approval(${p})`], ['cms_approve', (p) => sql`SELECT ipai.cms_approve(${p})`],
    ['cms_reject', (p) => sql`SELECT ipai.cms_reject(${p}, 'x')`], ['cms_publish', (p) => sql`SELECT ipai.cms_publish(${p})`]]) {
    is(await code(() => call(L.uuid('dead', 3))), '22023', `${f}(unknown page): 22023`);
    is(await code(() => call(null)), '22023', `${f}(NULL): 22023`);
  }
  { const c = await code(() => as(STRANGER, (tx) => tx`SELECT ipai.cms_approve(${p2})`)); ok(c === '42501' || c === '22023', `a non-member approving another org's page: 42501 (or 22023, not revealing it): ${c}`); }

  // every transition by plain UPDATE (superuser): allowed ones succeed, others IP004
  const bad = [];
  for (const from of ST) for (const to of ST) {
    if (from === to) continue;
    const p = await mk();
    await drive(p, from);
    if (await status(p) !== from) { bad.push(`setup ${from}`); continue; }
    const nv = (await versions(p)).length;
    const c = await code(() => sql`UPDATE ipai.cms_pages SET status = ${to} WHERE id = ${p}`);
    let want = ALLOWED.has(`${from}>${to}`) ? 'OK' : 'IP004';
    if (from === 'pending' && to === 'draft' && c === '22023') { want = '22023'; L.diag('pending -> draft by plain UPDATE: 22023 (a rejection needs a comment)'); }
    if (c !== want) bad.push(`${from}->${to}: ${c}, expected ${want}`);
    const after = await status(p);
    if (after !== (want === 'OK' ? to : from)) bad.push(`${from}->${to}: status ${after}`);
    if (want === '22023') want = 'IP004';
    const nv2 = (await versions(p)).length;
    if (nv2 !== nv + (want === 'OK' ? 1 : 0)) bad.push(`${from}->${to}: versions ${nv}->${nv2}`);
  }
  ok(!bad.length, 'all 20 status transitions by plain UPDATE: the 6 allowed apply with one snapshot, 14 raise IP004 and change nothing', bad);
  is(await code(() => sql`UPDATE ipai.cms_pages SET status = 'bogus' WHERE id = ${p1}`) !== 'OK', true, 'an unknown status value is refused');
  is(await code(() => sql`INSERT INTO ipai.cms_pages (org_id, slug, title, body, status) VALUES (${ORG}, 'born-published', 'x', 'y', 'published')`), 'IP004', 'INSERT straight into published: IP004');

  // editing an approved page sends it back to draft
  for (const [label, upd] of [['title', (p) => sql`UPDATE ipai.cms_pages SET title = 'Changed' WHERE id = ${p}`],
    ['body', (p) => as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET body = 'Changed body' WHERE id = ${p}`)],
    ['metadata', (p) => as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET metadata = '{"seo": "new"}' WHERE id = ${p}`)]]) {
    const p = await mk();
    await drive(p, 'approved');
    const nv = (await versions(p)).length;
    await upd(p);
    is(await status(p), 'draft', `editing the ${label} of an approved page: back to draft`);
    const vs = await versions(p);
    ok(vs.length === nv + 1 && vs[vs.length - 1].status === 'draft', `... with a snapshot of the change to draft`, vs.map((v) => [v.version, v.status]));
    is(await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_publish(${p})`)), 'IP004', '... so it cannot be published unapproved');
  }
  {
    const pp = await mk(EDITOR, 'Reviewed', 'reviewed text');
    await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${pp})`);
    await as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET body = 'unreviewed text' WHERE id = ${pp}`).catch(() => {});
    const c = await code(() => as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${pp})`));
    const [x] = await sql`SELECT status, body FROM ipai.cms_pages WHERE id = ${pp}`;
    ok(!(x.status === 'approved' && x.body === 'unreviewed text'), `an edit while pending is never approved unseen (${c}; ${x.status})`);
  }
  const pNo = await mk();
  await drive(pNo, 'approved');
  await sql`UPDATE ipai.cms_pages SET title = title WHERE id = ${pNo}`;
  is(await status(pNo), 'approved', 'an UPDATE that changes nothing keeps it approved');
  { const c = await code(() => as(VIEWER, (tx) => tx`UPDATE ipai.cms_pages SET title = 'viewer edit' WHERE id = ${p1}`)); ok(c === 'OK' || c === '42501', 'a viewer UPDATE: no rows or 42501 (' + c + ')'); }
  ok((await sql`SELECT title FROM ipai.cms_pages WHERE id = ${p1}`)[0].title !== 'viewer edit', '... but changes nothing (viewer)');
  await as(STRANGER, (tx) => tx`UPDATE ipai.cms_pages SET title = 'pwned' WHERE id = ${p1}`).catch(() => {});
  ok((await sql`SELECT title FROM ipai.cms_pages WHERE id = ${p1}`)[0].title !== 'pwned', 'a non-member cannot edit');

  // snapshots: full content, author, 1..n
  const p3 = (await as(EDITOR, (tx) => tx`SELECT ipai.cms_create_page(${ORG}, 'Snap', 'v1 body', NULL, NULL, '{"seo": {"title": "S"}, "tags": ["a"]}') AS id`))[0].id;
  await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${p3})`);
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${p3})`);
  const vs3 = await versions(p3);
  is(vs3.map((v) => v.version), vs3.map((_, i) => i + 1), 'versions numbered 1..n');
  const last = vs3[vs3.length - 1];
  ok(last.status === 'approved' && last.title === 'Snap' && last.body === 'v1 body' && last.created_by === ADMIN && last.created_at
    && JSON.stringify(last.metadata) === JSON.stringify({ seo: { title: 'S' }, tags: ['a'] }),
    'the approval snapshot: status, title, body, metadata, author (the approver), time', last);
  ok(vs3.some((v) => v.status === 'pending' && v.created_by === EDITOR), 'the request snapshot: author the editor');

  // concurrent status changes: no gaps, no duplicates
  const [{ t: stype }] = await sql`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'ipai.cms_pages'::regclass AND attname = 'status'`;
  const pc = await mk();
  const conns = Array.from({ length: 8 }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));
  const errs = [];
  await Promise.all(conns.map(async (c) => {
    for (let i = 0; i < 6; i++) {
      await c.unsafe(`UPDATE ipai.cms_pages SET status = (CASE status::text WHEN 'draft' THEN 'pending' WHEN 'pending' THEN 'approved' WHEN 'approved' THEN 'published' ELSE 'draft' END)::${stype} WHERE id = $1`, [pc])
        .catch((e) => errs.push(e.code + ' ' + e.message));
    }
  }));
  // and many pages at once
  const many = [];
  for (let i = 0; i < 8; i++) many.push(await mk());
  await Promise.all(conns.map((c, i) => c.begin(async (tx) => {
    for (const p of many) await tx.unsafe(`UPDATE ipai.cms_pages SET status = (CASE status::text WHEN 'draft' THEN 'pending' WHEN 'pending' THEN 'approved' WHEN 'approved' THEN 'published' ELSE 'draft' END)::${stype} WHERE id = $1`, [many[(many.indexOf(p) + i) % many.length]]);
  }).catch((e) => errs.push(e.code + ' ' + e.message))));
  await Promise.all(conns.map((c) => c.end()));
  ok(!errs.filter((e) => !e.startsWith('40P01')).length, 'concurrent status changes: no errors but deadlocks', errs.slice(0, 3));
  const vc = await versions(pc);
  ok(vc.length >= 49 && vc.every((v, i) => v.version === i + 1), `48 concurrent changes of one page: versions 1..${vc.length} without gaps`, vc.map((v) => v.version).join(','));
  let gaps = [];
  for (const p of many) { const v = await versions(p); if (!v.every((x, i) => x.version === i + 1)) gaps.push(v.map((x) => x.version)); }
  ok(!gaps.length, 'concurrent changes of 8 pages: every page numbered without gaps', gaps);

  // diff_words: reconstruction and minimality against npm diff
  const dw = async (a, b) => sql`SELECT op, chunk FROM ipai.diff_words(${a}, ${b})`;
  let seed = 4242;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const vocabPlain = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'a', 'b', 'cms', 'page', 'x1', 'naïve', 'Zürich'];
  const vocabRich = [...vocabPlain, '東京', '日本語', '🚀', '👩‍👩‍👧', '<p>', '</p>', '<a href="x">', '&amp;', '"q"', 'it\'s', 'end.', '中', '文'];
  const seps = [' ', ' ', ' ', '  ', '\n', '\t', ' \n '];
  const gen = (vocab, n) => { const w = []; for (let i = 0; i < n; i++) w.push(vocab[rnd(vocab.length)]); return w.map((x, i) => x + (i < n - 1 ? seps[rnd(seps.length)] : '')).join(''); };
  const mutate = (vocab, s) => {
    const t = s.split(/(\s+)/);
    for (let j = 0; j < 1 + rnd(4); j++) {
      const i = 2 * rnd(Math.ceil(t.length / 2));
      const m = rnd(3);
      if (m === 0) t[i] = vocab[rnd(vocab.length)];
      else if (m === 1) t.splice(i, 0, vocab[rnd(vocab.length)], ' ');
      else if (t.length > 2) t.splice(i, 2);
    }
    return t.join('');
  };
  const wsWords = (s) => s.split(/\s+/).filter(Boolean);
  const lcsEdits = (a, b) => {
    const A = wsWords(a), B = wsWords(b);
    const dp = Array.from({ length: A.length + 1 }, () => new Array(B.length + 1).fill(0));
    for (let i = A.length - 1; i >= 0; i--) for (let j = B.length - 1; j >= 0; j--)
      dp[i][j] = A[i] === B[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    return A.length + B.length - 2 * dp[0][0];
  };
  const pieces = (parts) => parts.reduce((n, p) => n + wsWords(p).length, 0);
  let recon = [], nonmin = [], vsRef = [];
  for (let i = 0; i < 120; i++) {
    const rich = i % 2 === 1;
    const vocab = rich ? vocabRich : vocabPlain;
    const a = i % 17 === 0 ? '' : gen(vocab, 1 + rnd(25));
    const b = i % 19 === 0 ? '' : mutate(vocab, a || gen(vocab, 3));
    const rows = await dw(a, b);
    const oldJ = rows.filter((r) => r.op !== '+').map((r) => r.chunk).join('');
    const newJ = rows.filter((r) => r.op !== '-').map((r) => r.chunk).join('');
    if (oldJ !== a || newJ !== b || rows.some((r) => !['=', '-', '+'].includes(r.op))) { recon.push({ a, b, rows }); continue; }
    const ours = pieces(rows.filter((r) => r.op !== '=').map((r) => r.chunk));
    const best = lcsEdits(a, b);
    if (!rich) {
      if (ours > best) nonmin.push({ a, b, ours, best, rows });
      const ref = Diff.diffWordsWithSpace(a, b);
      const refN = pieces(ref.filter((p) => p.added || p.removed).map((p) => p.value));
      if (ours > refN) vsRef.push({ a, b, ours, refN });
    }
  }
  ok(!recon.length, '120 random pairs (CJK, emoji, HTML, newlines): = and - give old, = and + give new', recon.slice(0, 2));
  ok(!nonmin.length, 'plain-word pairs: the edit is minimal in whitespace-separated words', nonmin.slice(0, 2));
  ok(!vsRef.length, 'plain-word pairs: no more changed words than npm diff diffWordsWithSpace', vsRef.slice(0, 2));
  // longer texts with many scattered edits and repetitive words (where heuristics go wrong)
  const longBad = [];
  for (let i = 0; i < 6; i++) {
    const voc = i % 2 ? ['a', 'b', 'c'] : vocabPlain;
    const a = gen(voc, 300 + rnd(200));
    let b = a;
    for (let j = 0; j < 10 + rnd(20); j++) b = mutate(voc, b);
    const rows = await dw(a, b);
    const okRecon = rows.filter((r) => r.op !== '+').map((r) => r.chunk).join('') === a && rows.filter((r) => r.op !== '-').map((r) => r.chunk).join('') === b;
    const ours = pieces(rows.filter((r) => r.op !== '=').map((r) => r.chunk));
    const best = lcsEdits(a, b);
    if (!okRecon || ours > best) longBad.push({ i, okRecon, ours, best });
  }
  ok(!longBad.length, '6 long texts (300-500 words, 10-30 edits, some over a 3-word vocabulary): reconstruct and minimal', longBad);
  const d1 = await dw('the quick brown fox', 'the slow brown fox');
  ok(d1.filter((r) => r.op === '-').map((r) => r.chunk.trim()).join('') === 'quick' && d1.filter((r) => r.op === '+').map((r) => r.chunk.trim()).join('') === 'slow',
    'diff_words: one word replaced: - quick, + slow', d1);
  is((await dw('', '')).length, 0, 'diff_words of two empty strings: no rows');
  const d2 = await dw('same text', 'same text');
  ok(d2.every((r) => r.op === '='), 'identical texts: only = rows');
  const big = gen(vocabPlain, 3000);
  const t0 = Date.now();
  const d3 = await dw(big, mutate(vocabPlain, big));
  ok(d3.filter((r) => r.op !== '+').map((r) => r.chunk).join('') === big, `3000-word texts diffed (${Date.now() - t0} ms)`);

  // cms_diff_html: escaping, del/ins
  const ph = await mk(EDITOR, 'T <i>1</i>', '<script>alert("x")</script> keep & old');
  await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${ph})`);
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${ph}, 'redo')`);
  await as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET body = '<script>alert("x")</script> keep & new <b>bold</b>' WHERE id = ${ph}`);
  await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${ph})`);
  const vh = await versions(ph);
  const vOld = vh.find((v) => v.body.includes('old')).version, vNew = vh.find((v) => v.body.includes('new')).version;
  const [{ h: html }] = await as(VIEWER, (tx) => tx`SELECT ipai.cms_diff_html(${ph}, ${vOld}, ${vNew}) AS h`);
  ok(/<table/i.test(html), 'cms_diff_html: an HTML table');
  ok(!/<script/i.test(html) && !/<b>/.test(html) && !/<i>/.test(html) && /&lt;script&gt;/.test(html) && /&amp;/.test(html), 'page content HTML-escaped (script, b, i, &)', html.slice(0, 600));
  ok(/<del>[^<]*old[^<]*<\/del>/.test(html) && /<ins>[^<]*new[^<]*<\/ins>/.test(html), 'removed words in <del>, added in <ins>', html.slice(0, 600));
  is(await code(() => sql`SELECT ipai.cms_diff_html(${ph}, 1, 999)`), '22023', 'cms_diff_html with an unknown version: 22023');
  is(await code(() => sql`SELECT ipai.cms_diff_html(${L.uuid('dead', 4)}, 1, 2)`), '22023', 'cms_diff_html with an unknown page: 22023');
  { const c = await code(() => as(STRANGER, (tx) => tx`SELECT ipai.cms_diff_html(${ph}, ${vOld}, ${vNew})`)); ok(c === '42501' || c === '22023', 'cms_diff_html for a non-member: 42501 or 22023 (' + c + ')'); }

  // scheduling arguments
  const ps = await mk();
  await drive(ps, 'approved');
  const sch = (p, at, action) => as(ADMIN, (tx) => action === undefined
    ? tx`SELECT ipai.cms_schedule_publish(${p}, ${at}::timestamptz) AS id` : tx`SELECT ipai.cms_schedule_publish(${p}, ${at}::timestamptz, ${action}) AS id`);
  is(await code(() => sch(ps, new Date(Date.now() - 3600e3).toISOString())), '22023', 'schedule an hour in the past: 22023');
  is(await code(() => sch(ps, new Date(Date.now() - 600e3).toISOString())), '22023', 'schedule 10 minutes in the past: 22023');
  is(await code(() => sch(ps, new Date(Date.now() + 3600e3).toISOString(), 'delete')), '22023', 'unknown action: 22023');
  is(await code(() => sch(ps, new Date(Date.now() + 3600e3).toISOString(), null)), '22023', 'NULL action: 22023');
  is(await code(() => sch(ps, null)), '22023', 'NULL run_at: 22023');
  is(await code(() => sch(L.uuid('dead', 5), new Date(Date.now() + 3600e3).toISOString())), '22023', 'unknown page: 22023');
  is(await code(() => as(EDITOR, (tx) => tx`SELECT ipai.cms_schedule_publish(${ps}, now() + interval '1 hour')`)), '42501', 'an editor cannot schedule publishing');
  const [{ id: sid }] = await sch(ps, new Date(Date.now() - 1000).toISOString());
  ok(Number(sid) > 0, 'run_at 1 s ago (grace): accepted, bigint id');
  const [srow] = await sql`SELECT action, status, org_id, page_id FROM ipai.cms_schedule WHERE id = ${sid}`;
  ok(srow.action === 'publish' && srow.status === 'pending' && srow.org_id === ORG && srow.page_id === ps, 'the schedule row: publish, pending', srow);
  await sql`DELETE FROM ipai.cms_schedule WHERE id = ${sid}`;

  // notifications at commit only
  const lis = L.postgres(L.url(db), { max: 1, onnotice: () => {} });
  const got = [];
  await lis.listen('cms_approvals', (x) => got.push(['cms_approvals', x]));
  await lis.listen('cms_schedule', (x) => got.push(['cms_schedule', x]));
  const pn = await mk();
  let during = -1;
  await as(EDITOR, async (tx) => { await tx`SELECT ipai.cms_request_approval(${pn})`; await L.sleep(400); during = got.length; });
  await L.sleep(400);
  is(during, 0, 'no notification before commit');
  const n1 = got.filter(([ch]) => ch === 'cms_approvals').map(([, x]) => { try { return JSON.parse(x); } catch (e) { return x; } });
  ok(n1.length >= 1 && n1.some((x) => x.org_id === ORG && x.page_id === pn && x.status === 'pending'), 'cms_approvals at commit: {org_id, page_id, status: pending}', n1);
  got.length = 0;
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_reject(${pn}, 'not yet')`);
  await L.sleep(400);
  const nr = got.filter(([ch]) => ch === 'cms_approvals').map(([, x]) => { try { return JSON.parse(x); } catch (e) { return x; } });
  ok(nr.some((x) => x.page_id === pn && x.org_id === ORG && x.status), 'cms_approvals on rejection too', nr);
  await as(EDITOR, (tx) => tx`SELECT ipai.cms_request_approval(${pn})`);
  await L.sleep(200);
  got.length = 0;
  await as(ADMIN, async (tx) => { await tx`SELECT ipai.cms_approve(${pn})`; throw new Error('rollback'); }).catch(() => {});
  await L.sleep(400);
  is(got.length, 0, 'a rolled-back approval notifies nothing');
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_approve(${pn})`);
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_schedule_publish(${pn}, clock_timestamp())`);
  await sql`SELECT ipai.run_due_publications()`;
  await L.sleep(400);
  const jp = (x) => { try { return JSON.parse(x); } catch (e) { return { raw: x }; } };
  const nAp = got.filter(([ch]) => ch === 'cms_approvals').map(([, x]) => jp(x));
  const nSc = got.filter(([ch]) => ch === 'cms_schedule').map(([, x]) => jp(x));
  ok(nAp.some((x) => x.page_id === pn && x.status === 'approved' && x.org_id === ORG), 'cms_approvals for the approval', nAp);
  ok(nSc.some((x) => x.page_id === pn && x.org_id === ORG && x.status), 'cms_schedule for the executed schedule: {org_id, page_id, status}', nSc);
  await lis.end();

  // run_due_publications: 20 due schedules, 8 concurrent callers -> each executed once
  const due = [];
  for (let i = 0; i < 20; i++) { const p = await mk(); await drive(p, 'approved'); due.push(p); }
  const pd = await mk(); // a draft cannot be scheduled; an approved page edited back to draft fails at run time
  const sd = await err(() => sch(pd, new Date(Date.now() + 3600e3).toISOString()));
  diag('scheduling a draft page: ' + (sd ? sd.code + ' ' + sd.message : 'accepted'));
  ok(!sd || sd.code === 'IP004' || sd.code === '22023', 'scheduling a draft page: accepted, or refused with IP004/22023 (' + (sd && sd.code) + ')');
  if (sd) await sql`DELETE FROM ipai.cms_schedule WHERE page_id = ${pd}`; else await sql`DELETE FROM ipai.cms_schedule WHERE page_id = ${pd}`;
  await drive(pd, 'approved');
  for (const p of due) await sch(p, new Date(Date.now() - 500).toISOString());
  await sch(pd, new Date(Date.now() - 500).toISOString());
  await as(EDITOR, (tx) => tx`UPDATE ipai.cms_pages SET body = 'edited after approval' WHERE id = ${pd}`);
  const cc = Array.from({ length: 8 }, () => L.postgres(L.url(db), { max: 1, onnotice: () => {} }));
  const ns = await Promise.all(cc.map((c) => c`SELECT ipai.run_due_publications() AS n`.then((r) => Number(r[0].n), (e) => 'error ' + e.code)));
  await Promise.all(cc.map((c) => c.end()));
  const sum = ns.reduce((a, b) => a + (typeof b === 'number' ? b : 1000), 0);
  ok(sum === 20 || sum === 21, `8 concurrent run_due_publications: executed ${sum} in total (20 publishes + maybe the failure)`, ns);
  const srows = await sql`SELECT page_id, status, executed_at, error FROM ipai.cms_schedule WHERE page_id = ANY(${[...due, pd]})`;
  ok(srows.filter((r) => due.includes(r.page_id)).every((r) => r.status === 'done' && r.executed_at), 'every due schedule done with executed_at');
  const fr = srows.find((r) => r.page_id === pd);
  ok(fr && fr.status === 'failed' && fr.error && fr.error.length > 0, 'a schedule for a draft page: failed, with the reason', fr);
  const pubs = await sql`SELECT page_id, count(*)::int AS n FROM ipai.cms_page_versions WHERE page_id = ANY(${due}) AND status = 'published' GROUP BY 1`;
  ok(pubs.length === 20 && pubs.every((r) => r.n === 1), 'each page published exactly once (one published snapshot each)', pubs.length);
  is((await sql`SELECT count(*)::int AS n FROM ipai.cms_pages WHERE id = ANY(${due}) AND status = 'published'`)[0].n, 20, '20 pages published');
  is(Number((await sql`SELECT ipai.run_due_publications() AS n`)[0].n), 0, 'nothing left: 0');
  // unpublish
  await as(ADMIN, (tx) => tx`SELECT ipai.cms_schedule_publish(${due[0]}, clock_timestamp(), 'unpublish')`);
  await sql`SELECT ipai.run_due_publications()`;
  ok(await status(due[0]) !== 'published', 'a due unpublish takes the page offline (' + (await status(due[0])) + ')');
  await sql.end();
  L.done();
})().catch((e) => { console.log('not ok - exception ' + (e.stack || e)); console.log('1..0'); process.exit(1); });
