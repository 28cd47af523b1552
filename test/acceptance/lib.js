// Shared helpers for the acceptance probes (test/t/acceptance_*.t).
// Black-box: only SQL functions/tables named in /work/shared/SPEC.md.
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const root = process.env.IPAI_SRC || path.resolve(__dirname, '..', '..');
const req = (m) => require(path.join(root, 'test', 'node_modules', m));
const postgres = req('postgres');

let n = 0, failed = 0;
const failures = [];
function ok(cond, name, extra) {
  n++;
  if (!cond) { failed++; failures.push(name); }
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && extra !== undefined) diag(typeof extra === 'string' ? extra : JSON.stringify(extra, (k, v) => typeof v === 'bigint' ? v.toString() : v));
  return !!cond;
}
function is(got, want, name) {
  const g = typeof got === 'bigint' ? got.toString() : got;
  const w = typeof want === 'bigint' ? want.toString() : want;
  return ok(JSON.stringify(g) === JSON.stringify(w), name, `got ${JSON.stringify(g)}, expected ${JSON.stringify(w)}`);
}
function diag(msg) { console.log(String(msg).split('\n').map((l) => '# ' + l).join('\n')); }
function done() { console.log(`1..${n}`); process.exit(failed ? 1 : 0); }

// a fresh database copied from ipai_template; dropped at exit
function psqlAdmin(cmd) {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c', cmd],
    { env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' } }).toString().trim();
}
function newDb(tag) {
  const db = `acc_${tag}_${process.pid}`;
  psqlAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  psqlAdmin(`CREATE DATABASE ${db} TEMPLATE ipai_template`);
  process.on('exit', () => { try { psqlAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); } catch (e) {} });
  return db;
}
function url(db) { return `postgres://postgres@127.0.0.1:${process.env.PGPORT}/${db}`; }
function connect(db, opts = {}) {
  return postgres(url(db), { max: 4, onnotice: () => {}, idle_timeout: 5, ...opts });
}

// run fn(tx) inside a transaction as role `role` (authenticated/anon/service_role) with ipai.user_id = uid
async function as(sql, role, uid, fn) {
  return sql.begin(async (tx) => {
    if (uid) await tx`SELECT set_config('ipai.user_id', ${uid}, true)`;
    if (role) await tx.unsafe(`SET LOCAL ROLE ${role}`);
    return fn(tx);
  });
}
// error SQLSTATE (or 'OK') of an async thunk
async function code(thunk) {
  try { await thunk(); return 'OK'; } catch (e) { return e.code || ('JS:' + e.message); }
}
async function err(thunk) {
  try { await thunk(); return null; } catch (e) { return e; }
}
function uuid(prefix, i) {
  const h = (prefix + i.toString(16)).padStart(12, '0').slice(-12);
  return `acce0000-0000-4000-8000-${h}`;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { root, req, postgres, ok, is, diag, done, newDb, url, connect, as, code, err, uuid, sleep, psqlAdmin,
  stats: () => ({ n, failed, failures }) };
