#!/usr/bin/env bash
# End to end (TAP): callers' tokens signed with Supabase's asymmetric keys.
# The entitlement-check handler runs with SUPABASE_URL pointing at the
# Supabase Auth stand-in, which publishes its keys at
# /auth/v1/.well-known/jwks.json and signs tokens with Node's crypto
# (independently of the handler's jose).  No shared secret is set.
set -uo pipefail
. "$IPAI_SRC/test/lib/edge.sh"
. "$IPAI_SRC/test/lib/standins.sh"

db=ipai_e2e_jwks_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	edge_stop
	standin_stop_all
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('e1e00000-0000-4000-8000-00000000000a', 'JWKS Co', 'free');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('e1e00000-0000-4000-8000-00000000000a', 'e1e00000-0000-4000-8000-0000000000f1', 'owner');
SQL

standin_start auth --jwt-alg ES256 || exit 1
unset SUPABASE_JWT_SECRET IPAI_EDGE_TRUSTED SUPABASE_SERVICE_ROLE_KEY
export SUPABASE_URL=$AUTH_STANDIN_URL IPAI_JWKS_COOLDOWN_SECONDS=0
EDGE_DB=$db edge_start entitlement-check || { echo "1..1"; echo "not ok 1 - entitlement-check starts"; exit 1; }

cd "$IPAI_SRC"
URL=$EDGE_URL/entitlement-check LOG=$EDGE_LOG node - <<'JS'
const crypto = require("crypto");
const fs = require("fs");
const AUTH = process.env.AUTH_STANDIN_ADMIN;
const ORG = "e1e00000-0000-4000-8000-00000000000a", OWNER = "e1e00000-0000-4000-8000-0000000000f1";
let n = 0, failed = 0;
const ok = (c, name, extra) => { n++; if (!c) failed++; console.log(`${c ? "ok" : "not ok"} ${n} - ${name}`); if (!c && extra !== undefined) console.log("# " + JSON.stringify(extra).slice(0, 1500)); };
const admin = async (p, body) => (await fetch(`${AUTH}/__standin/${p}`, { method: body === undefined ? "GET" : "POST",
  headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })).json();
const sign = async (claims, extra = {}) => (await admin("sign", { claims, ...extra })).token;
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const user = (extra = {}) => ({ sub: OWNER, role: "authenticated", aud: "authenticated", exp: now() + 600, ...extra });
const post = async (token, body = { org_id: ORG, feature: "ai_runs", consume: true }) => {
  const res = await fetch(process.env.URL, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
                                             body: JSON.stringify(body) });
  return { status: res.status, json: await res.json().catch(() => null) };
};
(async () => {
  ok(/callers are verified by JWKS/.test(fs.readFileSync(process.env.LOG, "utf8")), "the handler says at start that it verifies with the project's JWKS");
  let r = await post(await sign(user()));
  ok(r.status === 200 && r.json.current === 1 && r.json.max === 100, "a user's ES256 token: 200, consumed as that user", r);
  r = await post(await sign(user({ sub: "e1e00000-0000-4000-8000-0000000000a9" })));
  ok(r.status === 403, "a valid token of a user who is not a member: 403 (the database decides, under RLS)", r);
  const rotated = await admin("jwks/rotate", { alg: "RS256", keep_previous: false });
  r = await post(await sign(user()));
  ok(r.status === 200 && r.json.current === 2, `after a key rotation (new ${rotated.kid}, RS256): the new key's token passes at once`, r);
  // a key pair the project never published, its token naming the current kid or its own
  const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const forge = (kid) => { const h = b64({ alg: "ES256", typ: "JWT", kid }) + "." + b64(user());
    return h + "." + crypto.sign("sha256", Buffer.from(h), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url"); };
  r = await post(forge("attacker-key"));
  ok(r.status === 401, "a token signed by an unknown key: 401", r);
  r = await post(forge(rotated.kid));
  ok(r.status === 401, "a forged signature under the project's kid: 401", r);
  const jwk = (await admin("jwks")).keys[0];
  const h = b64({ alg: "HS256", typ: "JWT", kid: jwk.kid }) + "." + b64(user());
  r = await post(h + "." + crypto.createHmac("sha256", JSON.stringify(jwk)).update(h).digest("base64url"));
  ok(r.status === 401, "an HS256 token keyed with the public key (algorithm confusion): 401", r);
  r = await post(b64({ alg: "none", typ: "JWT" }) + "." + b64(user()) + ".");
  ok(r.status === 401, "alg none: 401", r);
  r = await post(await sign(user({ exp: now() - 10 })));
  ok(r.status === 401, "expired: 401", r);
  r = await post(await sign(user({ nbf: now() + 600 })));
  ok(r.status === 401, "not yet valid: 401", r);
  r = await post(await sign(user({ aud: "anon" })));
  ok(r.status === 401, "wrong audience: 401", r);
  r = await post(await sign({ role: "service_role", iss: "supabase", exp: now() + 600 }),
                 { org_id: ORG, feature: "ai_runs", consume: false });
  ok(r.status === 200 && r.json.current === 2, "a service-role token (no audience): 200", r);
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log("not ok - " + (e.stack || e)); console.log(`1..${n + 1}`); process.exit(1); });
JS
