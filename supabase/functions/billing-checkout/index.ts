// POST /billing-checkout with {org_id, plan_id, success_url, cancel_url}:
// the upgrade button.  Returns 200 {url, id} of a new Stripe Checkout
// Session.
//
// Who is asking: see ../_shared/auth.ts.  The caller's identity decides,
// in the database and under RLS, whether they may upgrade this
// organization (owner or admin) before ipai.checkout_session_params(...)
// builds the request, which Stripe's SDK (../_shared/stripe.ts) then sends
// to Stripe's API (STRIPE_API_BASE, STRIPE_SECRET_KEY).  An
// Idempotency-Key request header is passed on to Stripe, so a retried
// click creates one session.
//
// Status codes: 401 without a valid token, 400 for a malformed body or a
// bad argument (22023, 22P02), 403 when the user may not (42501), 502 when
// Stripe refuses or cannot be reached, 500 otherwise.
import { Stripe, stripeFromEnv } from "../_shared/stripe.ts";
import { sql } from "../_shared/db.ts";
import { errorResponse, json, jsonObject, serve } from "../_shared/http.ts";
import { actAs, authFromEnv } from "../_shared/auth.ts";
import { CHECKOUT_STATUS, parseCheckoutRequest } from "./request.ts";

const auth = authFromEnv();
const stripe = stripeFromEnv();

serve("/billing-checkout", "POST", async (req) => {
  const caller = await auth.callerOf(req);
  if (caller instanceof Response) return caller;
  const body = await jsonObject(req);
  if (body instanceof Response) return body;
  const r = parseCheckoutRequest(body);
  if ("error" in r) return json({ error: r.error }, 400);
  if (!stripe) return json({ error: "STRIPE_SECRET_KEY is not set" }, 500);

  let params: Stripe.Checkout.SessionCreateParams;
  try {
    params = await sql.begin(async (tx) => {
      await actAs(tx, caller);
      const [row] = await tx`
        SELECT ipai.checkout_session_params(${r.org_id}::uuid, ${r.plan_id},
               ${r.success_url}, ${r.cancel_url}) AS params`;
      return row.params;
    });
  } catch (err) {
    return errorResponse(err, CHECKOUT_STATUS);
  }

  const idempotencyKey = req.headers.get("idempotency-key") ?? undefined;
  try {
    const session = await stripe.checkout.sessions.create(
      params,
      idempotencyKey ? { idempotencyKey } : undefined,
    );
    return json({ url: session.url, id: session.id });
  } catch (err) {
    if (err instanceof Stripe.errors.StripeError && err.statusCode) {
      return json({
        error: "Stripe refused the checkout session",
        detail: err.message,
        stripe_status: err.statusCode,
      }, 502);
    }
    console.error(err);
    return json({ error: "could not reach Stripe" }, 502);
  }
});
