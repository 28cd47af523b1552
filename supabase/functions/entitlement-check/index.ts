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
// 401 without a valid token (when SUPABASE_JWT_SECRET is set); 500
// otherwise.
//
// Who is asking: see ../_shared/auth.ts.  With SUPABASE_JWT_SECRET set, a
// verified user token (members check and consume for their organization)
// or the service key (any organization); without it, the caller is
// trusted and acts with the connection's privileges.
import { errorResponse, json, serve, sql } from "../_shared/db.ts";
import { actAs, callerOf } from "../_shared/auth.ts";

serve("/entitlement-check", "POST", async (req) => {
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
      await actAs(tx, caller);
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
