// POST /billing-checkout with {org_id, plan_id, success_url, cancel_url}:
// the upgrade button.  Returns 200 {url, id} of a new Stripe Checkout
// Session.
//
// Who is asking: see ../_shared/auth.ts.  With SUPABASE_JWT_SECRET set,
// the caller's verified JWT decides, in the database and under RLS, whether
// the user may upgrade this organization (owner or admin) before
// ipai.checkout_session_params(...) builds the request; without it the
// caller is trusted and acts with the connection's privileges.  The handler then
// posts that request form-encoded (Stripe's bracket notation) to
// ${STRIPE_API_BASE}/v1/checkout/sessions with the secret key
// STRIPE_SECRET_KEY.
//
// Status codes: 401 without a valid token (when SUPABASE_JWT_SECRET is
// set), 400 for a malformed body or a
// bad argument (22023, 22P02), 403 when the user may not (42501), 502 when
// Stripe refuses, 500 otherwise.  An Idempotency-Key request header is
// passed on to Stripe.
import { errorResponse, json, serve, sql } from "../_shared/db.ts";
import { actAs, callerOf } from "../_shared/auth.ts";

const STRIPE_API_BASE = (Deno.env.get("STRIPE_API_BASE") ?? "https://api.stripe.com")
  .replace(/\/+$/, "");
const STRIPE_SECRET_KEY = Deno.env.get("STRIPE_SECRET_KEY");
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
  const caller = await callerOf(req);
  if (caller instanceof Response) return caller;

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
      await actAs(tx, caller);
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
