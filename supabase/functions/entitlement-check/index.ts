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
// Who is asking: see ../_shared/auth.ts (a user's token: members check and
// consume for their organization; the service key: any organization).
import { sql } from "../_shared/db.ts";
import { errorResponse, json, jsonObject, serve } from "../_shared/http.ts";
import { actAs, authFromEnv } from "../_shared/auth.ts";
import { CHECK_STATUS, parseCheckRequest } from "./request.ts";

const auth = authFromEnv();

serve("/entitlement-check", "POST", async (req) => {
  const caller = await auth.callerOf(req);
  if (caller instanceof Response) return caller;
  const body = await jsonObject(req);
  if (body instanceof Response) return body;
  const r = parseCheckRequest(body);
  if ("error" in r) return json({ error: r.error }, 400);

  try {
    const answer = await sql.begin(async (tx) => {
      await actAs(tx, caller);
      // to_jsonb: bigint columns arrive as JSON numbers
      const [row] = r.consume
        ? await tx`
            SELECT pg_catalog.to_jsonb(c) AS answer
              FROM ipai.consume_entitlement(${r.org_id}::uuid, ${r.feature},
                   ${r.quantity}::bigint, ${r.idempotency_key}::text) c`
        : await tx`
            SELECT pg_catalog.to_jsonb(c) AS answer
              FROM ipai.check_entitlement(${r.org_id}::uuid, ${r.feature},
                   ${r.quantity}::bigint) c`;
      return row.answer;
    });
    return json(answer);
  } catch (err) {
    return errorResponse(err, CHECK_STATUS);
  }
});
