#!/usr/bin/env node
// ipai.cms_diff_html rendered by a real browser: headless Chromium (Debian's
// `chromium`, installed by test/bootstrap.sh) loads the diff of two page
// versions from a file, and a check script appended after the diff reports
// what the browser built: two columns side by side, <del> highlights on the
// left and <ins> on the right with the stylesheet's colours, and the
// <script> and onerror handler a version contains shown as text, not run.
// IPAI_KEEP_RENDER=dir keeps the HTML and the screenshot for a look.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const postgres = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '../..'), 'test', 'node_modules', 'postgres'));

const db = `cms_render_${process.pid}`;
const ORG = 'c8000000-0000-4000-8000-000000000000';
const EDITOR = 'c8000000-0000-4000-8000-0000000000e1';
const ADMIN = 'c8000000-0000-4000-8000-0000000000a1';
const PAGE = 'c8000000-0000-4000-8000-0000000000b1';
const conn = (database) => ({
  host: '127.0.0.1', port: Number(process.env.PGPORT), user: 'postgres', database, max: 1, onnotice: () => {},
});

let n = 0;
let failed = 0;
function ok(cond, name, diag) {
  n += 1;
  if (!cond) failed += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && diag !== undefined) console.log(`# ${String(JSON.stringify(diag)).slice(0, 2000)}`);
}

// what the browser reports about the page it built
const CHECK = `
<script>
(function () {
  var r = {};
  var q = function (s) { return document.querySelectorAll(s); };
  r.tables = q('table.ipai-diff').length;
  r.headers = q('table.ipai-diff thead th').length;
  var oldCells = q('td.ipai-diff-old'), newCells = q('td.ipai-diff-new');
  r.oldCells = oldCells.length;
  r.newCells = newCells.length;
  r.sideBySide = true;
  for (var i = 0; i < oldCells.length; i++) {
    var a = oldCells[i].getBoundingClientRect(), b = newCells[i].getBoundingClientRect();
    if (!(a.right <= b.left + 1 && Math.abs(a.top - b.top) < 1 && a.width > 100 && b.width > 100))
      r.sideBySide = false;
  }
  r.delLeft = q('td.ipai-diff-old del').length;
  r.insRight = q('td.ipai-diff-new ins').length;
  r.delRight = q('td.ipai-diff-new del').length;
  r.insLeft = q('td.ipai-diff-old ins').length;
  r.delText = Array.prototype.map.call(q('td.ipai-diff-old del'), function (e) { return e.textContent; });
  r.insText = Array.prototype.map.call(q('td.ipai-diff-new ins'), function (e) { return e.textContent; });
  var del = q('del')[0], ins = q('ins')[0];
  r.delBg = del ? getComputedStyle(del).backgroundColor : null;
  r.insBg = ins ? getComputedStyle(ins).backgroundColor : null;
  r.delLine = del ? getComputedStyle(del).textDecorationLine : null;
  r.contentElements = q('table.ipai-diff script, table.ipai-diff img, table.ipai-diff p, table.ipai-diff h1').length;
  r.pwned = document.body.getAttribute('data-pwned');
  r.rightText = Array.prototype.map.call(newCells, function (e) { return e.textContent; }).join('\\n');
  r.caption = (q('table.ipai-diff caption')[0] || {}).textContent;
  var out = document.createElement('pre');
  out.id = 'ipai-check';
  out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
})();
</script>
`;

function chromium(args) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ipai-chromium-'));
  try {
    return spawnSync('chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      `--user-data-dir=${profile}`, ...args,
    ], { encoding: 'utf8', timeout: 90000, maxBuffer: 64 * 1024 * 1024 });
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function main() {
  const admin = postgres(conn('postgres'));
  await admin.unsafe(`CREATE DATABASE ${db} TEMPLATE ipai_template`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipai-render-'));
  let sql;
  try {
    sql = postgres(conn(db));
    await sql.unsafe(`
      INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('${ORG}', 'Render', 'pro');
      INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
        ('${ORG}', '${EDITOR}', 'editor'), ('${ORG}', '${ADMIN}', 'admin');`);
    const as = (tx, user) => tx`SELECT set_config('ipai.user_id', ${user}, true), set_config('role', 'authenticated', true)`;
    await sql.begin(async (tx) => {
      await as(tx, EDITOR);
      await tx`INSERT INTO ipai.cms_pages (org_id, id, slug, title, body) VALUES
        (${ORG}, ${PAGE}, 'launch', 'Launch plan', ${'<h1>Launch</h1>\n<p>We ship on Monday.</p>\n<p>Owner: Ann</p>'})`;
      await tx`SELECT ipai.cms_request_approval(${PAGE})`;
      await as(tx, ADMIN);
      await tx`SELECT ipai.cms_reject(${PAGE}, 'Date?')`;
      await as(tx, EDITOR);
      await tx`UPDATE ipai.cms_pages SET title = 'Launch plan, final',
        body = ${'<h1>Launch</h1>\n<p>We ship on Tuesday, 東京 first.</p>\n'
                 + '<script>document.body.setAttribute("data-pwned", "script")</script>\n'
                 + '<img src="x" onerror="document.body.setAttribute(\'data-pwned\', \'img\')">\n<p>Owner: Ann</p>'}
        WHERE id = ${PAGE}`;
      await tx`SELECT ipai.cms_request_approval(${PAGE})`;
    });
    const [{ html }] = await sql`SELECT ipai.cms_diff_html(${PAGE}, 1, 4) AS html`;
    ok(html.includes('&lt;script&gt;') && !html.includes('<script'), 'the HTML escapes the <script> of the version');

    const file = path.join(dir, 'diff.html');
    fs.writeFileSync(file, html + CHECK);
    const run = chromium(['--dump-dom', `file://${file}`]);
    const m = /<pre id="ipai-check">([^<]*)<\/pre>/.exec(run.stdout || '');
    ok(run.status === 0 && m, 'headless Chromium renders the diff',
       { status: run.status, error: run.error && String(run.error), stderr: (run.stderr || '').slice(-1500) });
    if (!m) return;
    const r = JSON.parse(m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
    ok(r.tables === 1 && r.headers === 2, 'one table with two column headers', r);
    ok(r.oldCells === r.newCells && r.oldCells >= 4, `every row has an old and a new cell (${r.oldCells} rows)`, r);
    ok(r.sideBySide, 'old on the left and new on the right, side by side in every row', r);
    ok(r.delLeft >= 1 && r.delRight === 0, 'removed words are <del> in the left column only', r);
    ok(r.insRight >= 3 && r.insLeft === 0, 'added words are <ins> in the right column only', r);
    ok(r.delText.includes('Monday') && r.insText.some((t) => t.includes('Tuesday')) && r.insText.some((t) => t.includes('final')),
       'the highlights are the changed words', { del: r.delText, ins: r.insText });
    ok(r.delBg === 'rgb(255, 215, 213)' && r.insBg === 'rgb(204, 255, 216)' && r.delLine === 'line-through',
       'the embedded stylesheet colours the highlights', r);
    ok(r.contentElements === 0, 'page content makes no elements (no script, img, p or h1 inside the table)', r);
    ok(r.pwned === null, 'the <script> and onerror of the version did not run', r);
    ok(r.rightText.includes('<script>document.body') && r.rightText.includes('onerror=') && r.rightText.includes('東京'),
       'they show as text, and non-ASCII text survives', r.rightText);
    ok(/Version 1 compared with version 4/.test(r.caption), 'the caption names the versions', r.caption);

    const png = path.join(dir, 'diff.png');
    const shot = chromium(['--window-size=1200,900', `--screenshot=${png}`, `file://${path.join(dir, 'diff.html')}`]);
    const bytes = fs.existsSync(png) ? fs.readFileSync(png) : Buffer.alloc(0);
    ok(shot.status === 0 && bytes.length > 5000 && bytes.slice(1, 4).toString() === 'PNG',
       `a screenshot renders too (${bytes.length} bytes)`, { status: shot.status, stderr: (shot.stderr || '').slice(-500) });
  } finally {
    if (sql) await sql.end({ timeout: 5 });
    if (process.env.IPAI_KEEP_RENDER) fs.cpSync(dir, process.env.IPAI_KEEP_RENDER, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end({ timeout: 5 });
  }
}

main().then(() => {
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}).catch((err) => {
  console.log(`not ok ${n + 1} - the test ran to the end`);
  console.log(`# ${err && err.stack}`);
  console.log(`1..${n + 1}`);
  process.exit(1);
});
