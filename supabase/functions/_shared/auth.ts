// Who is calling an Edge handler, and acting as them in the database.
//
// With SUPABASE_JWT_SECRET set (production), every request must carry a
// Supabase JWT as "Authorization: Bearer <jwt>": a user's access token
// (role authenticated, sub = user id) or the service key (role
// service_role).  It is verified here (HS256, WebCrypto; expiry and
// not-before checked) and, inside the handler's transaction, the database
// is told who is asking the way PostgREST does it:
// set_config('request.jwt.claims', <claims>, true) and SET LOCAL ROLE.  The
// database then decides (membership, roles, RLS).
//
// Without SUPABASE_JWT_SECRET the handler trusts its caller: it acts with
// the privileges of its database connection (SUPABASE_DB_URL).  That is for
// local runs and tests, or behind a gateway that already admits only
// trusted callers; a bearer token that cannot be verified is refused
// rather than ignored.
import { json } from "./db.ts";

const JWT_SECRET = Deno.env.get("SUPABASE_JWT_SECRET") ?? "";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let jwtKey: Promise<CryptoKey> | null = null;

/** The verified caller: its claims and database role, or trusted (null). */
export type Caller = { claims: Record<string, unknown>; role: "authenticated" | "service_role" } | null;

function base64urlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * The verified claims of an HS256 JWT, or null: another algorithm, a bad
 * signature, expired or not yet valid, a role other than authenticated or
 * service_role, or a user token without subject.
 */
export async function verifyJwt(token: string): Promise<Record<string, unknown> | null> {
  if (!JWT_SECRET) return null;
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

/**
 * The caller of req: a Caller, null for a trusted caller (no secret
 * configured, no token sent), or a 401 Response to return as is.
 */
export async function callerOf(req: Request): Promise<Caller | Response> {
  const auth = req.headers.get("authorization");
  if (!JWT_SECRET && !auth) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(auth ?? "");
  const claims = match ? await verifyJwt(match[1]) : null;
  if (!claims) {
    return json({ error: "a valid Supabase access token is required" }, 401);
  }
  return { claims, role: claims.role === "service_role" ? "service_role" : "authenticated" };
}

/** Inside a transaction: act as the caller (nothing to do when trusted). */
// deno-lint-ignore no-explicit-any
export async function actAs(tx: any, caller: Caller): Promise<void> {
  if (caller === null) return;
  await tx`SELECT pg_catalog.set_config('request.jwt.claims', ${JSON.stringify(caller.claims)}, true)`;
  if (caller.role === "service_role") {
    await tx`SET LOCAL ROLE service_role`;
  } else {
    await tx`SET LOCAL ROLE authenticated`;
  }
}
