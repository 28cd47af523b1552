// test/soak/listener.js — a real listening connection for the soak test.
//   node listener.js READY_FILE
// LISTENs on cms_schedule, cms_approvals and soak_sentinel (PGHOST, PGPORT,
// database postgres), writes READY_FILE once listening, and keeps every
// notification.  On the sentinel (sent by run.sh after the workload and
// the worker have finished: NOTIFY delivers in commit order, so everything
// committed before it has arrived) it stores what it received in
// soak.notified and exits.
"use strict";
const fs = require("fs");
const postgres = require(require.resolve("postgres", { paths: [process.env.IPAI_SRC] }));
const sql = postgres({ host: process.env.PGHOST, port: process.env.PGPORT, user: "postgres",
                       database: "postgres", max: 2, onnotice: () => {} });
const got = [];
let done;
const finished = new Promise((r) => { done = r; });
(async () => {
  await sql.listen("cms_schedule", (p) => got.push({ channel: "cms_schedule", payload: p }));
  await sql.listen("cms_approvals", (p) => got.push({ channel: "cms_approvals", payload: p }));
  await sql.listen("soak_sentinel", () => done());
  fs.writeFileSync(process.argv[2], "listening\n");
  await finished;
  await sql`CREATE TABLE soak.notified (channel text NOT NULL, payload jsonb NOT NULL)`;
  for (let i = 0; i < got.length; i += 2000) {
    const part = got.slice(i, i + 2000);
    await sql`INSERT INTO soak.notified (channel, payload)
              SELECT x.channel, x.payload::jsonb FROM json_to_recordset(${JSON.stringify(part)}::text::json) AS x(channel text, payload text)`;
  }
  console.log(`# listener: ${got.length} notifications`);
  await sql.end();
  process.exit(0);
})().catch((e) => { console.error("listener: " + (e.stack || e)); process.exit(1); });
