// The billing-checkout request: {org_id, plan_id, success_url,
// cancel_url}, all strings.  Pure.

export type CheckoutRequest = {
  org_id: string;
  plan_id: string;
  success_url: string;
  cancel_url: string;
};

const FIELDS = ["org_id", "plan_id", "success_url", "cancel_url"] as const;

/** The request, or the message of a 400 answer. */
export function parseCheckoutRequest(
  body: Record<string, unknown>,
): CheckoutRequest | { error: string } {
  for (const f of FIELDS) {
    if (typeof body[f] !== "string") {
      return { error: `"${f}" must be a string` };
    }
  }
  return {
    org_id: body.org_id as string,
    plan_id: body.plan_id as string,
    success_url: body.success_url as string,
    cancel_url: body.cancel_url as string,
  };
}

/** HTTP statuses of the database's answers. */
export const CHECKOUT_STATUS: Record<string, number> = {
  "22023": 400,
  "22P02": 400,
  "42501": 403,
};
