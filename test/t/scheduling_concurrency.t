#!/usr/bin/env bash
# Exactly once under concurrency (TAP): 1,000 publications falling due over
# two seconds, executed by 4 sessions calling ipai.run_due_publications() in
# a loop; then 1,000 unpublications executed by 4 sessions that claim and
# execute in two transactions, as the background worker does.  Every
# schedule runs once, every page gets one snapshot per change, and a
# listening connection receives one notification per schedule.
set -euo pipefail
db=ipai_sched_conc_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7c000000-0000-4000-8000-000000000000', 'Concurrency', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7c000000-0000-4000-8000-000000000000', '7c000000-0000-4000-8000-0000000000ad', 'admin'),
	('7c000000-0000-4000-8000-000000000000', '7c000000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7c000000-0000-4000-8000-0000000000ed';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('7c000000-0000-4000-8000-000000000000',
		'Page ' || g, '<p>' || g || '</p>'))) FROM generate_series(1, 1000) g;
SET ipai.user_id = '7c000000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages;
-- due one after the other over two seconds from now
SELECT count(ipai.cms_schedule_publish(id, clock_timestamp() + n * interval '2 ms'))
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ipai.cms_pages) p;
SQL

NODE_PATH="$IPAI_SRC/test/node_modules" DB="$db" node - <<'JS'
const postgres = require('postgres');
const url = `postgres://postgres@127.0.0.1:${process.env.PGPORT}/${process.env.DB}`;
let n = 0;
const ok = (cond, msg) => { n++; console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${msg}`); };
const opts = { max: 1, onnotice: () => {} };

async function main() {
  const admin = postgres(url, opts);
  const listener = postgres(url, opts);
  const notes = [];
  await listener.listen('cms_schedule', (p) => notes.push(JSON.parse(p)));
  const sessions = [0, 1, 2, 3].map(() => postgres(url, opts));
  const deadline = async () => (await admin`
    SELECT max(run_at) + interval '1 second' < clock_timestamp() AS past FROM ipai.cms_schedule`)[0].past;

  // round 1: run_due_publications in a loop, claim and execution in one transaction
  let done = false;
  const perSession = [0, 0, 0, 0];
  await Promise.all(sessions.map(async (s, i) => {
    while (!done) {
      const [{ n: k }] = await s`SELECT ipai.run_due_publications() AS n`;
      perSession[i] += k;
      if (k === 0 && await deadline()) done = true;
    }
  }));
  const total1 = perSession.reduce((a, b) => a + b, 0);
  ok(total1 === 1000, `4 sessions executed 1000 publications in all (${perSession.join(' + ')})`);
  ok(perSession.filter((k) => k > 0).length >= 2, 'more than one session took part');
  let [r] = await admin`
    SELECT count(*) FILTER (WHERE status = 'done' AND attempts = 1)::int AS once,
           count(*)::int AS total FROM ipai.cms_schedule WHERE action = 'publish'`;
  ok(r.once === 1000 && r.total === 1000, `every publication is done after one attempt (${r.once} of ${r.total})`);
  [r] = await admin`
    SELECT count(*)::int AS pages, count(*) FILTER (WHERE n = 1)::int AS once FROM (
      SELECT p.id, (SELECT count(*) FROM ipai.cms_page_versions v
                     WHERE v.page_id = p.id AND v.status = 'published') AS n
        FROM ipai.cms_pages p WHERE p.status = 'published') x`;
  ok(r.pages === 1000 && r.once === 1000, `1000 pages published, each with exactly one published snapshot (${r.once})`);

  // round 2: the worker's way, claim committed first, then execution
  await admin`SET ipai.user_id = '7c000000-0000-4000-8000-0000000000ad'`;
  await admin`SELECT count(ipai.cms_schedule_publish(id, clock_timestamp() + n * interval '2 ms', 'unpublish'))
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ipai.cms_pages) p`;
  done = false;
  const perSession2 = [0, 0, 0, 0];
  await Promise.all(sessions.map(async (s, i) => {
    while (!done) {
      const ids = (await s`SELECT c.claimed_id FROM ipai._claim_due_schedules(64) c`).map((x) => x.claimed_id);
      if (ids.length > 0) {
        const rows = await s`SELECT o_outcome FROM ipai._execute_claimed_schedules(${ids}::bigint[])`;
        perSession2[i] += rows.filter((x) => x.o_outcome === 'done').length;
      } else if (await deadline()) {
        done = true;
      }
    }
  }));
  const total2 = perSession2.reduce((a, b) => a + b, 0);
  ok(total2 === 1000, `4 sessions claiming and executing in two transactions unpublished 1000 pages (${perSession2.join(' + ')})`);
  [r] = await admin`
    SELECT count(*) FILTER (WHERE status = 'done' AND attempts = 1)::int AS once,
           count(*) FILTER (WHERE status = 'running')::int AS running
      FROM ipai.cms_schedule WHERE action = 'unpublish'`;
  ok(r.once === 1000 && r.running === 0, `every unpublication is done after one attempt, none left running (${r.once})`);
  [r] = await admin`
    SELECT count(*) FILTER (WHERE n = 1)::int AS once FROM (
      SELECT p.id, (SELECT count(*) FROM ipai.cms_page_versions v
                     WHERE v.page_id = p.id AND v.status = 'draft' AND v.version > 1) AS n
        FROM ipai.cms_pages p WHERE p.status = 'draft') x`;
  ok(r.once === 1000, `1000 pages back to draft, each with exactly one unpublished snapshot (${r.once})`);

  // notifications: one per executed schedule, delivered at commit
  for (let i = 0; i < 50 && notes.length < 2000; i++) await new Promise((res) => setTimeout(res, 100));
  const ids = new Set(notes.map((x) => x.schedule_id));
  ok(notes.length === 2000 && ids.size === 2000, `2000 notifications, one per schedule (${notes.length}, ${ids.size} distinct)`);
  ok(notes.every((x) => x.status === 'done' && x.org_id && x.page_id && typeof x.lateness_ms === 'number'),
     'each carries org_id, page_id, status done and lateness_ms');
  r = (await admin`SELECT ipai.run_due_publications() AS n`)[0];
  ok(r.n === 0, 'a further run finds nothing to do');

  await Promise.all([admin, listener, ...sessions].map((c) => c.end()));
  console.log(`1..${n}`);
}
main().catch((e) => { console.log(`not ok - ${e.message}`); console.log('1..' + (n + 1)); process.exit(1); });
JS
