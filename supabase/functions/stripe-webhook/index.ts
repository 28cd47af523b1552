// POST /stripe-webhook: Stripe's webhook endpoint (deployed with
// verify_jwt = false: Stripe sends no Supabase token, the signature is the
// authentication).
//
// Passes the raw request body (bytes, never re-serialized: the signature
// covers them exactly) and the Stripe-Signature header to
// ipai.stripe_webhook, which verifies, dedupes and applies the event in
// one transaction.  200 with {status, event_id, event_type} for processed,
// duplicate, ignored and deferred; 400 when the signature is invalid
// (IP002); 500 for anything else, so that Stripe retries.
import { sql } from "../_shared/db.ts";
import { errorResponse, json, serve } from "../_shared/http.ts";

serve("/stripe-webhook", "POST", async (req) => {
  const body = new Uint8Array(await req.arrayBuffer());
  const signature = req.headers.get("stripe-signature");
  try {
    const [row] = await sql`
      SELECT status, event_id, event_type
        FROM ipai.stripe_webhook(${body}::bytea, ${signature}::text)`;
    return json({
      status: row.status,
      event_id: row.event_id,
      event_type: row.event_type,
    });
  } catch (err) {
    return errorResponse(err, { IP002: 400 });
  }
});
