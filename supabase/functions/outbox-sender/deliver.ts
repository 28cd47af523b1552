// Delivering one outbox item: a Stripe meter event (one row, or a group of
// rows sent as one) through Stripe's SDK, an invitation through Supabase
// Auth's admin invite.  Each returns an Outcome (./outcome.ts) and never
// throws for what a receiver answers.
import type { Stripe } from "../_shared/stripe.ts";
import { authOutcome, type Outcome, stripeOutcome } from "./outcome.ts";

/** A meter event leased by ipai.outbox_lease_meter_events. */
export type MeterGroup = {
  identifier: string;
  ids: (string | number)[];
  org_id: string;
  event_name: string;
  stripe_customer_id: string;
  value: string | number;
  timestamp: string | number;
  attempts: number;
  in_doubt: boolean;
};

/**
 * Sends a meter event with its stable identifier: a resend of the same
 * identifier is deduplicated by Stripe (answered "already exists", which
 * counts as sent).  No Idempotency-Key of our own: Stripe would replay a
 * saved 500 under it for a day, where the identifier settles a resend.
 */
export async function deliverMeterEvent(
  stripe: Stripe,
  g: MeterGroup,
): Promise<Outcome> {
  try {
    await stripe.billing.meterEvents.create({
      event_name: g.event_name,
      identifier: g.identifier,
      timestamp: Number(g.timestamp),
      payload: {
        stripe_customer_id: g.stripe_customer_id,
        value: String(g.value),
      },
    });
    return { kind: "sent" };
  } catch (err) {
    return stripeOutcome(err);
  }
}

/** An auth.invite payload, as ipai.invite_member writes it. */
export type Invite = {
  email: string;
  role: string;
  org_id: string;
  token: string;
  organization?: string;
  invitation_id?: string;
  expires_at?: string;
};

/** The invitation in a payload, or what is wrong with it. */
export function parseInvite(payload: unknown): Invite | { error: string } {
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
    return { error: "the payload is not a JSON object" };
  }
  const p = payload as Record<string, unknown>;
  for (const f of ["email", "role", "org_id", "token"]) {
    if (typeof p[f] !== "string" || p[f] === "") {
      return {
        error: f === "token"
          ? "no token: the invitation was sent before, or the row was written by hand"
          : `"${f}" must be a non-empty string`,
      };
    }
  }
  const opt = (f: string) =>
    typeof p[f] === "string" ? p[f] as string : undefined;
  return {
    email: p.email as string,
    role: p.role as string,
    org_id: p.org_id as string,
    token: p.token as string,
    organization: opt("organization"),
    invitation_id: opt("invitation_id"),
    expires_at: opt("expires_at"),
  };
}

/**
 * Where the e-mail's link leads after Supabase Auth has signed the person
 * in: the application's accept page with what ipai.accept_invitation
 * needs (the token) and the organization.
 */
export function inviteRedirect(base: string, inv: Invite): string {
  const u = new URL(base);
  u.searchParams.set("token", inv.token);
  u.searchParams.set("org_id", inv.org_id);
  return u.toString();
}

/** The part of supabase-js's auth client the sender uses. */
export type AuthClient = {
  admin: {
    inviteUserByEmail(
      email: string,
      options: { data?: object; redirectTo?: string },
    ): Promise<{ error: AuthErrorLike | null }>;
  };
  signInWithOtp(credentials: {
    email: string;
    options: { shouldCreateUser: boolean; emailRedirectTo: string };
  }): Promise<{ error: AuthErrorLike | null }>;
};
type AuthErrorLike = { status?: number; code?: string; message?: string };

/**
 * Invites a new address (Supabase Auth creates the user and sends its
 * invitation e-mail); an address Auth already knows is sent a magic link
 * (its "Magic Link" e-mail) that signs the person in and leads to the
 * same accept page: either way one e-mail, one link, the invitation.
 * When an earlier attempt of this row may have arrived (inDoubt) and the
 * address is now registered, that attempt invited it: nothing is sent
 * again.
 */
export async function deliverInvite(
  auth: AuthClient,
  payload: unknown,
  redirectBase: string,
  inDoubt: boolean,
): Promise<Outcome> {
  const inv = parseInvite(payload);
  if ("error" in inv) {
    return { kind: "dead", error: `malformed payload: ${inv.error}` };
  }
  const redirectTo = inviteRedirect(redirectBase, inv);
  let answer: { error: AuthErrorLike | null };
  try {
    answer = await auth.admin.inviteUserByEmail(inv.email, {
      redirectTo,
      data: {
        ipai_invitation: inv.invitation_id ?? null,
        org_id: inv.org_id,
        organization: inv.organization ?? null,
        role: inv.role,
      },
    });
  } catch (err) {
    return authOutcome({ status: 0, message: String(err) });
  }
  if (!answer.error) return { kind: "sent" };
  if (answer.error.status !== 422 || answer.error.code !== "email_exists") {
    return authOutcome(answer.error);
  }
  if (inDoubt) {
    return {
      kind: "sent",
      note:
        "the address is registered: an earlier attempt of this row invited it",
    };
  }
  try {
    answer = await auth.signInWithOtp({
      email: inv.email,
      options: { shouldCreateUser: false, emailRedirectTo: redirectTo },
    });
  } catch (err) {
    return authOutcome({ status: 0, message: String(err) });
  }
  return answer.error ? authOutcome(answer.error) : { kind: "sent" };
}
