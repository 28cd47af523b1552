#!/usr/bin/env node
// Notifications on channel cms_approvals, seen by a real listening
// connection (the postgres driver's sql.listen): one per approval request
// and decision, sent at commit only, nothing for a rolled-back or failed
// change, a small JSON payload with org_id, page_id, status, approval_id.
'use strict';
const path = require('path');
const postgres = require(path.join(process.env.IPAI_SRC || path.resolve(__dirname, '../..'), 'test', 'node_modules', 'postgres'));

const db = `cms_notify_${process.pid}`;
const ORG = 'c7000000-0000-4000-8000-000000000000';
const OWNER = 'c7000000-0000-4000-8000-0000000000f1';
const ADMIN = 'c7000000-0000-4000-8000-0000000000a1';
const EDITOR = 'c7000000-0000-4000-8000-0000000000e1';
const conn = (database) => ({
  host: '127.0.0.1', port: Number(process.env.PGPORT), user: 'postgres', database,
  max: 1, onnotice: () => {},
});

let n = 0;
let failed = 0;
function ok(cond, name, diag) {
  n += 1;
  if (!cond) failed += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && diag !== undefined) console.log(`# ${JSON.stringify(diag)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const admin = postgres(conn('postgres'));
  await admin.unsafe(`CREATE DATABASE ${db} TEMPLATE ipai_template`);
  let listener;
  let writer;
  try {
    writer = postgres(conn(db));
    listener = postgres(conn(db));
    const got = [];
    await listener.listen('cms_approvals', (payload) => got.push(payload));
    const waitFor = async (count, ms = 5000) => {
      for (const t0 = Date.now(); got.length < count && Date.now() - t0 < ms;) await sleep(20);
      return got.length;
    };
    // time for stray notifications to arrive when none is expected
    const quiet = () => sleep(500);

    await writer.unsafe(`
      INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('${ORG}', 'Notify', 'pro');
      INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
        ('${ORG}', '${OWNER}', 'owner'), ('${ORG}', '${ADMIN}', 'admin'), ('${ORG}', '${EDITOR}', 'editor');`);
    // acts as user inside a transaction, as authenticated under RLS
    const as = (tx, user) => tx`SELECT set_config('ipai.user_id', ${user}, true), set_config('role', 'authenticated', true)`;
    const [{ page }] = await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      return tx`SELECT ipai.cms_create_page(${ORG}, 'Notify me', '<p>Hi</p>') AS page`;
    });
    await quiet();
    ok(got.length === 0, 'creating a draft notifies nobody', got);

    // a request: nothing before commit, one notification after
    let approvalId;
    const longComment = 'x'.repeat(20000);
    await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      [{ id: approvalId }] = await tx`SELECT ipai.cms_request_approval(${page}, ${longComment}) AS id`;
      await quiet();
      ok(got.length === 0, 'nothing is delivered before the transaction commits', got);
    });
    ok(await waitFor(1) === 1, 'the committed request is delivered once');
    const p1 = JSON.parse(got[0]);
    ok(p1.org_id === ORG && p1.page_id === page && p1.status === 'pending' && p1.approval_id === approvalId,
       'the payload has org_id, page_id, status and approval_id', p1);
    ok(p1.page_status === 'pending' && p1.actor_id === EDITOR && p1.requested_by === EDITOR && p1.page_version === 2,
       'and the page status, version, requester and actor', p1);
    ok(Buffer.byteLength(got[0]) < 1000, `the payload is small even with a 20 kB comment (${Buffer.byteLength(got[0])} bytes)`);

    // a rolled-back rejection notifies nobody
    await writer.begin(async (tx) => {
      await as(tx, ADMIN);
      await tx`SELECT ipai.cms_reject(${page}, 'Not like this')`;
      await tx`SELECT 1/0`;
    }).catch(() => {});
    await quiet();
    ok(got.length === 1, 'a rolled-back rejection notifies nobody', got.slice(1));
    ok((await writer`SELECT status FROM ipai.cms_pages WHERE id = ${page}`)[0].status === 'pending',
       '... and changed nothing');

    // a failed decision (four eyes) notifies nobody
    await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      await tx`UPDATE ipai.cms_pages SET status = 'approved' WHERE id = ${page}`;
    }).catch(() => {});
    await quiet();
    ok(got.length === 1, 'a refused approval notifies nobody', got.slice(1));

    // the real rejection
    await writer.begin(async (tx) => {
      await as(tx, ADMIN);
      await tx`SELECT ipai.cms_reject(${page}, 'Not like this')`;
    });
    ok(await waitFor(2) === 2, 'the committed rejection is delivered');
    const p2 = JSON.parse(got[1]);
    ok(p2.status === 'rejected' && p2.page_status === 'draft' && p2.approval_id === approvalId && p2.actor_id === ADMIN,
       'its payload says rejected, for the same approval, by the admin', p2);

    // request and approval in one transaction: two notifications, in order
    let approval2;
    await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      [{ id: approval2 }] = await tx`SELECT ipai.cms_request_approval(${page}) AS id`;
      await as(tx, OWNER);
      await tx`SELECT ipai.cms_approve(${page}, 'fine')`;
    });
    await waitFor(4);
    await quiet();
    const statuses = got.slice(2).map((s) => JSON.parse(s));
    ok(statuses.length === 2 && statuses[0].status === 'pending' && statuses[1].status === 'approved'
       && statuses.every((s) => s.approval_id === approval2),
       'one transaction with a request and an approval sends exactly two, in order', statuses);

    // publishing is no approval state change; an edit that voids the approval is
    await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      await tx`UPDATE ipai.cms_pages SET body = '<p>Changed after approval</p>' WHERE id = ${page}`;
    });
    await waitFor(5);
    await quiet();
    ok(got.length === 5 && JSON.parse(got[4]).status === 'voided' && JSON.parse(got[4]).page_status === 'draft',
       'an edit of an approved page notifies that its approval is voided', got.slice(4));
    await writer.begin(async (tx) => {
      await as(tx, EDITOR);
      await tx`SELECT ipai.cms_request_approval(${page})`;
      await as(tx, ADMIN);
      await tx`SELECT ipai.cms_approve(${page})`;
      await tx`SELECT ipai.cms_publish(${page})`;
    });
    await waitFor(7);
    await quiet();
    ok(got.length === 7, 'publishing sends no cms_approvals notification (request and approval do)', got.slice(5));
    ok(got.every((s) => Buffer.byteLength(s) < 8000), 'every payload is well under 8000 bytes');
  } finally {
    if (listener) await listener.end({ timeout: 5 });
    if (writer) await writer.end({ timeout: 5 });
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
