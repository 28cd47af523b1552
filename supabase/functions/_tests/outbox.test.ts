// Unit tests of the outbox sender's pure parts: what each answer of Stripe
// or Supabase Auth means for the row, the invitation payload, and the
// existing-user path of an invitation (with a scripted auth client; the
// end-to-end tests use the real SDKs against local stand-ins).
import { deepStrictEqual as assertEquals } from "node:assert";
import {
  authOutcome,
  retryAfterSeconds,
  stripeOutcome,
} from "../outbox-sender/outcome.ts";
import {
  type AuthClient,
  deliverInvite,
  inviteRedirect,
  parseInvite,
} from "../outbox-sender/deliver.ts";

const stripeError = (
  statusCode: number | undefined,
  message: string,
  extra: Record<string, unknown> = {},
) => Object.assign(new Error(message), { statusCode, ...extra });

Deno.test("Retry-After: seconds or an HTTP date", () => {
  assertEquals(retryAfterSeconds("7"), 7);
  assertEquals(retryAfterSeconds(" 0 "), 0);
  assertEquals(retryAfterSeconds("999999"), 86400);
  const now = Date.parse("2026-12-06T12:00:00Z");
  assertEquals(retryAfterSeconds("Sun, 06 Dec 2026 12:00:30 GMT", now), 30);
  assertEquals(retryAfterSeconds("Sun, 06 Dec 2026 11:00:00 GMT", now), 0);
  assertEquals(retryAfterSeconds("soon"), undefined);
  assertEquals(retryAfterSeconds(null), undefined);
  assertEquals(retryAfterSeconds(""), undefined);
});

Deno.test("Stripe's answers", () => {
  assertEquals(
    stripeOutcome(
      stripeError(400, "An event already exists with identifier ipai_1."),
    ).kind,
    "sent",
  );
  assertEquals(
    stripeOutcome(stripeError(400, "Timestamp is too far in the past.")),
    { kind: "dead", error: "Stripe 400: Timestamp is too far in the past." },
  );
  assertEquals(
    stripeOutcome(stripeError(404, "No such customer")).kind,
    "dead",
  );
  assertEquals(
    stripeOutcome(
      stripeError(429, "Too many requests", {
        headers: { "Retry-After": "3" },
      }),
    ),
    {
      kind: "retry",
      error: "Stripe 429: Too many requests",
      retryAfterSeconds: 3,
      maybeDelivered: false,
    },
  );
  assertEquals(
    stripeOutcome(stripeError(500, "boom")),
    {
      kind: "retry",
      error: "Stripe 500: boom",
      retryAfterSeconds: undefined,
      maybeDelivered: true,
    },
  );
  assertEquals(stripeOutcome(stripeError(409, "conflict")).kind, "retry");
  // our key, not the row: never dead
  assertEquals(
    stripeOutcome(stripeError(401, "Invalid API Key provided")).kind,
    "retry",
  );
  assertEquals(stripeOutcome(stripeError(403, "forbidden")).kind, "retry");
  assertEquals(
    stripeOutcome(
      stripeError(400, "Keys for idempotent requests", {
        type: "StripeIdempotencyError",
      }),
    )
      .kind,
    "retry",
  );
  // no answer at all
  assertEquals(
    stripeOutcome(
      stripeError(
        undefined,
        "An error occurred with our connection to Stripe.",
        {
          detail: new TypeError(
            "tcp connect error: Connection refused (os error 111)",
          ),
        },
      ),
    ),
    {
      kind: "retry",
      error: "Stripe: An error occurred with our connection to Stripe.",
      maybeDelivered: false,
    },
  );
  assertEquals(
    stripeOutcome(
      stripeError(undefined, "Request aborted due to timeout being reached"),
    ),
    {
      kind: "retry",
      error: "Stripe: Request aborted due to timeout being reached",
      maybeDelivered: true,
    },
  );
});

Deno.test("Supabase Auth's answers", () => {
  assertEquals(
    authOutcome({ status: 400, code: "validation_failed", message: "bad" }),
    {
      kind: "dead",
      error: "Supabase Auth 400 (validation_failed): bad",
    },
  );
  assertEquals(
    authOutcome({ status: 422, code: "otp_disabled", message: "x" }).kind,
    "dead",
  );
  assertEquals(
    authOutcome({
      status: 429,
      code: "over_email_send_rate_limit",
      message:
        "For security purposes, you can only request this after 42 seconds.",
    }),
    {
      kind: "retry",
      error:
        "Supabase Auth 429 (over_email_send_rate_limit): For security purposes, you can only request this after 42 seconds.",
      retryAfterSeconds: 42,
      maybeDelivered: false,
    },
  );
  assertEquals(authOutcome({ status: 503, message: "down" }).kind, "retry");
  assertEquals(authOutcome({ status: 0, message: "fetch failed" }), {
    kind: "retry",
    error: "Supabase Auth unreachable: fetch failed",
    maybeDelivered: true,
  });
  assertEquals(
    authOutcome({ status: 403, code: "not_admin", message: "x" }).kind,
    "retry",
  );
});

const INVITE = {
  email: "erin@example.com",
  role: "editor",
  org_id: "9a000000-0000-4000-8000-00000000000a",
  token: "tok_abc+/=",
  organization: "Acme",
  invitation_id: "9a000000-0000-4000-8000-0000000000e1",
};

Deno.test("an invitation payload", () => {
  assertEquals(parseInvite(INVITE), { ...INVITE, expires_at: undefined });
  assertEquals(parseInvite("x"), { error: "the payload is not a JSON object" });
  assertEquals(parseInvite({ ...INVITE, email: 3 }), {
    error: '"email" must be a non-empty string',
  });
  assertEquals("error" in parseInvite({ ...INVITE, token: undefined }), true);
  const url = new URL(
    inviteRedirect("https://app.example.com/accept?x=1", INVITE),
  );
  assertEquals(url.origin + url.pathname, "https://app.example.com/accept");
  assertEquals(url.searchParams.get("token"), INVITE.token);
  assertEquals(url.searchParams.get("org_id"), INVITE.org_id);
  assertEquals(url.searchParams.get("x"), "1");
});

/** An auth client answering from a script, recording its calls. */
function scripted(invite: object | null, otp: object | null = null) {
  const calls: string[] = [];
  const client: AuthClient = {
    admin: {
      inviteUserByEmail: (email) => {
        calls.push(`invite ${email}`);
        return Promise.resolve({ error: invite });
      },
    },
    signInWithOtp: (c) => {
      calls.push(`otp ${c.email} ${c.options.shouldCreateUser}`);
      return Promise.resolve({ error: otp });
    },
  };
  return { client, calls };
}

Deno.test("an invitation: new address, known address, in doubt, refused", async () => {
  let s = scripted(null);
  assertEquals(
    await deliverInvite(s.client, INVITE, "https://a.example/x", false),
    { kind: "sent" },
  );
  assertEquals(s.calls, ["invite erin@example.com"]);

  const exists = {
    status: 422,
    code: "email_exists",
    message: "already registered",
  };
  s = scripted(exists);
  assertEquals(
    await deliverInvite(s.client, INVITE, "https://a.example/x", false),
    { kind: "sent" },
  );
  assertEquals(s.calls, [
    "invite erin@example.com",
    "otp erin@example.com false",
  ]);

  s = scripted(exists);
  assertEquals(
    (await deliverInvite(s.client, INVITE, "https://a.example/x", true)).kind,
    "sent",
  );
  assertEquals(
    s.calls,
    ["invite erin@example.com"],
    "in doubt: no second e-mail",
  );

  s = scripted(exists, {
    status: 429,
    message: "only request this after 9 seconds",
  });
  assertEquals(
    await deliverInvite(s.client, INVITE, "https://a.example/x", false),
    {
      kind: "retry",
      error: "Supabase Auth 429: only request this after 9 seconds",
      retryAfterSeconds: 9,
      maybeDelivered: false,
    },
  );

  s = scripted({
    status: 400,
    code: "email_address_invalid",
    message: "undeliverable",
  });
  assertEquals(
    (await deliverInvite(s.client, INVITE, "https://a.example/x", false)).kind,
    "dead",
  );

  s = scripted(null);
  assertEquals(
    await deliverInvite(
      s.client,
      { email: "x@y.z" },
      "https://a.example/x",
      false,
    ),
    {
      kind: "dead",
      error: 'malformed payload: "role" must be a non-empty string',
    },
  );
  assertEquals(s.calls, [], "a malformed row reaches nobody");
});
