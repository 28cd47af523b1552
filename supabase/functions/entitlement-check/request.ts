// The entitlement-check request: {org_id, feature, quantity?, consume?,
// idempotency_key?}.  Pure; checked before anything reaches the database.

export type CheckRequest = {
  org_id: string;
  feature: string;
  quantity: number;
  consume: boolean;
  idempotency_key: string | null;
};

/** The request, or the message of a 400 answer. */
export function parseCheckRequest(
  body: Record<string, unknown>,
): CheckRequest | { error: string } {
  const { org_id, feature } = body;
  const quantity = body.quantity ?? 1;
  const consume = body.consume ?? false;
  const key = body.idempotency_key ?? null;
  if (typeof org_id !== "string") return { error: '"org_id" must be a string' };
  if (typeof feature !== "string") {
    return { error: '"feature" must be a string' };
  }
  if (typeof quantity !== "number" || !Number.isSafeInteger(quantity)) {
    return { error: '"quantity" must be an integer' };
  }
  if (typeof consume !== "boolean") {
    return { error: '"consume" must be true or false' };
  }
  if (key !== null && typeof key !== "string") {
    return { error: '"idempotency_key" must be a string' };
  }
  return { org_id, feature, quantity, consume, idempotency_key: key };
}

/** HTTP statuses of the database's answers (SPEC section 8). */
export const CHECK_STATUS: Record<string, number> = {
  IP001: 403,
  IP005: 403,
  "42501": 403,
  "22023": 400,
  "22P02": 400,
};
