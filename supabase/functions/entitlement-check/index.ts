// POST /entitlement-check with {org_id, feature, quantity, consume,
// idempotency_key}: may this organization use `quantity` more of
// `feature`?  With consume: true the usage is also recorded, atomically
// (ipai.consume_entitlement); otherwise it is only checked
// (ipai.check_entitlement).  quantity defaults to 1, consume to false,
// idempotency_key (consume only) to none.
//
// 200 with the check's columns as JSON: {allowed, feature, plan_id,
// current, max, remaining, reason} (max and remaining null when
// unlimited).  403 when consuming beyond a hard limit (IP001; IP005 for
// seats), with the database's message and detail ("Current usage is 100 of
// 100; 1 more was requested.") and when the caller may not act for the
// organization (42501); 400 for a malformed body or a bad argument
// (22023, 22P02: unknown organization or feature, quantity not positive);
// 401 without a valid token; 500 otherwise.
//
// Who is asking: the caller sends a Supabase JWT as "Authorization:
// Bearer <jwt>": a user's access token (role authenticated, sub = user id)
// or the service key (role service_role).  This handler verifies it (HS256
// with SUPABASE_JWT_SECRET, WebCrypto; expiry and not-before checked) and,
// in one transaction on its privileged connection, does what PostgREST
// does: set_config('request.jwt.claims', <verified claims>, true) and SET
// LOCAL ROLE authenticated (or service_role).  The database then decides
// with the caller's identity: members check and consume for their
// organization, service_role for any.
import { errorResponse, json, serve, sql } from "../_shared/db.ts";

const JWT_SECRET = Deno.env.get("SUPABASE_JWT_SECRET");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function base64urlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

let jwtKey: Promise<CryptoKey> | null = null;

/**
 * The verified claims of an HS256 JWT, or null: another algorithm, a bad
 * signature (checked by WebCrypto), expired or not yet valid, a role other
 * than authenticated or service_role, or a user token without subject.
 */
async function verifyJwt(token: string): Promise<Record<string, unknown> | null> {
  if (!JWT_SECRET) throw new Error("SUPABASE_JWT_SECRET is not set");
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(decoder.decode(base64urlDecode(parts[0])));
    if (header?.alg !== "HS256") return null;
    jwtKey ??= crypto.subtle.importKey(
      "raw", encoder.encode(JWT_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"],
    );
    const valid = await crypto.subtle.verify(
      "HMAC", await jwtKey, base64urlDecode(parts[2]), encoder.encode(parts[0] + "." + parts[1]),
    );
    if (!valid) return null;
    const claims = JSON.parse(decoder.decode(base64urlDecode(parts[1])));
    if (!claims || typeof claims !== "object" || Array.isArray(claims)) return null;
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now) return null;
    if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > now)) return null;
    if (claims.role === "service_role") return claims;
    if (claims.role !== "authenticated") return null;
    if (typeof claims.sub !== "string" || claims.sub === "") return null;
    return claims;
  } catch {
    return null;
  }
}

serve("/entitlement-check", "POST", async (req) => {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
  const claims = match ? await verifyJwt(match[1]) : null;
  if (!claims) {
    return json({ error: "a valid Supabase access token is required" }, 401);
  }

  let body: Record<string, unknown>;
  try {
    body = await req.json();
  } catch {
    return json({ error: "the request body must be JSON" }, 400);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    return json({ error: "the request body must be a JSON object" }, 400);
  }
  const { org_id, feature } = body;
  const quantity = body.quantity ?? 1;
  const consume = body.consume ?? false;
  const key = body.idempotency_key ?? null;
  if (typeof org_id !== "string") return json({ error: '"org_id" must be a string' }, 400);
  if (typeof feature !== "string") return json({ error: '"feature" must be a string' }, 400);
  if (typeof quantity !== "number" || !Number.isSafeInteger(quantity)) {
    return json({ error: '"quantity" must be an integer' }, 400);
  }
  if (typeof consume !== "boolean") return json({ error: '"consume" must be true or false' }, 400);
  if (key !== null && typeof key !== "string") {
    return json({ error: '"idempotency_key" must be a string' }, 400);
  }

  try {
    const answer = await sql.begin(async (tx) => {
      await tx`SELECT pg_catalog.set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      if (claims.role === "service_role") {
        await tx`SET LOCAL ROLE service_role`;
      } else {
        await tx`SET LOCAL ROLE authenticated`;
      }
      // to_jsonb: bigint columns arrive as JSON numbers
      const [row] = consume
        ? await tx`
            SELECT pg_catalog.to_jsonb(c) AS answer
              FROM ipai.consume_entitlement(${org_id}::uuid, ${feature}, ${quantity}::bigint, ${key}::text) c`
        : await tx`
            SELECT pg_catalog.to_jsonb(c) AS answer
              FROM ipai.check_entitlement(${org_id}::uuid, ${feature}, ${quantity}::bigint) c`;
      return row.answer;
    });
    return json(answer);
  } catch (err) {
    return errorResponse(err, { IP001: 403, IP005: 403, "42501": 403, "22023": 400, "22P02": 400 });
  }
});
