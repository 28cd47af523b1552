// POST /billing-checkout with {org_id, plan_id, success_url, cancel_url}:
// the upgrade button.  Returns 200 {url, id} of a new Stripe Checkout
// Session.
//
// Who is asking: the caller sends its Supabase access token (a JWT) as
// "Authorization: Bearer <jwt>".  This handler verifies it (HS256 with
// SUPABASE_JWT_SECRET, WebCrypto; expiry and not-before checked) and then,
// in one transaction on its privileged connection, does what PostgREST
// does: set_config('request.jwt.claims', <verified claims>, true) and SET
// LOCAL ROLE authenticated, before calling
// ipai.checkout_session_params(...).  So the database decides, with the
// caller's identity and under RLS, whether the user may upgrade this
// organization (owner or admin) and builds the request.  The handler then
// posts that request form-encoded (Stripe's bracket notation) to
// ${STRIPE_API_BASE}/v1/checkout/sessions with the secret key
// STRIPE_SECRET_KEY.
//
// Status codes: 401 without a valid token, 400 for a malformed body or a
// bad argument (22023, 22P02), 403 when the user may not (42501), 502 when
// Stripe refuses, 500 otherwise.  An Idempotency-Key request header is
// passed on to Stripe.
import { errorResponse, json, serve, sql } from "../_shared/db.ts";

const STRIPE_API_BASE = (Deno.env.get("STRIPE_API_BASE") ?? "https://api.stripe.com")
  .replace(/\/+$/, "");
const STRIPE_SECRET_KEY = Deno.env.get("STRIPE_SECRET_KEY");
const JWT_SECRET = Deno.env.get("SUPABASE_JWT_SECRET");

const encoder = new TextEncoder();

function base64urlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

let jwtKey: Promise<CryptoKey> | null = null;

/**
 * The verified claims of an HS256 JWT, or null: wrong algorithm, bad
 * signature (compared by WebCrypto), expired, not yet valid, or no subject.
 */
async function verifyJwt(token: string): Promise<Record<string, unknown> | null> {
  if (!JWT_SECRET) throw new Error("SUPABASE_JWT_SECRET is not set");
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(base64urlDecode(parts[0])));
    if (header?.alg !== "HS256") return null;
    jwtKey ??= crypto.subtle.importKey(
      "raw", encoder.encode(JWT_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"],
    );
    const valid = await crypto.subtle.verify(
      "HMAC", await jwtKey, base64urlDecode(parts[2]), encoder.encode(parts[0] + "." + parts[1]),
    );
    if (!valid) return null;
    const claims = JSON.parse(new TextDecoder().decode(base64urlDecode(parts[1])));
    if (!claims || typeof claims !== "object" || Array.isArray(claims)) return null;
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now) return null;
    if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > now)) return null;
    if (typeof claims.sub !== "string" || claims.sub === "") return null;
    return claims;
  } catch {
    return null;
  }
}

/** Stripe's form encoding: nested objects and arrays in bracket notation. */
export function stripeForm(params: unknown): string {
  const pairs: [string, string][] = [];
  const walk = (key: string, value: unknown) => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(`${key}[${i}]`, v));
    } else if (typeof value === "object") {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        walk(key ? `${key}[${k}]` : k, v);
      }
    } else {
      pairs.push([key, String(value)]);
    }
  };
  walk("", params);
  // as Stripe's own libraries send it: brackets left readable
  return new URLSearchParams(pairs).toString().replace(/%5B/g, "[").replace(/%5D/g, "]");
}

serve("/billing-checkout", "POST", async (req) => {
  const auth = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(auth);
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
  const fields = ["org_id", "plan_id", "success_url", "cancel_url"];
  for (const f of fields) {
    if (typeof body[f] !== "string") {
      return json({ error: `"${f}" must be a string` }, 400);
    }
  }
  if (!STRIPE_SECRET_KEY) {
    return json({ error: "STRIPE_SECRET_KEY is not set" }, 500);
  }

  let params: unknown;
  try {
    params = await sql.begin(async (tx) => {
      await tx`SELECT set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      await tx`SET LOCAL ROLE authenticated`;
      const [row] = await tx`
        SELECT ipai.checkout_session_params(${body.org_id as string}::uuid, ${body.plan_id as string},
                                            ${body.success_url as string}, ${body.cancel_url as string}) AS params`;
      return row.params;
    });
  } catch (err) {
    return errorResponse(err, { "22023": 400, "22P02": 400, "42501": 403 });
  }

  const headers: Record<string, string> = {
    authorization: `Bearer ${STRIPE_SECRET_KEY}`,
    "content-type": "application/x-www-form-urlencoded",
  };
  const idem = req.headers.get("idempotency-key");
  if (idem) headers["idempotency-key"] = idem;

  let res: Response;
  try {
    res = await fetch(`${STRIPE_API_BASE}/v1/checkout/sessions`, {
      method: "POST",
      headers,
      body: stripeForm(params),
    });
  } catch (err) {
    console.error(err);
    return json({ error: "could not reach Stripe" }, 502);
  }
  let session: Record<string, unknown> | null = null;
  try {
    session = await res.json();
  } catch {
    session = null;
  }
  if (!res.ok || !session || typeof session.url !== "string") {
    const message = (session?.error as { message?: string } | undefined)?.message;
    return json({ error: "Stripe refused the checkout session", detail: message ?? null,
                  stripe_status: res.status }, 502);
  }
  return json({ url: session.url, id: session.id ?? null });
});
