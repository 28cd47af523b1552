// What a delivery attempt's answer means for the outbox row (pure; unit
// tests in ../_tests/outbox.test.ts).  The database keeps the result:
// ipai.outbox_mark_sent_many or ipai.outbox_mark_failed_many.
//
//   sent    the receiver has it (also: Stripe says it already has this
//           meter event's identifier, i.e. an earlier attempt arrived)
//   retry   try again after the backoff (or Retry-After): rate limits,
//           5xx, timeouts, refused connections, 409, and 401/403, which
//           are about our key, not the row: no row dies of a rotated key
//   dead    the receiver refuses this row for good (other 4xx); the
//           receiver's message is kept in last_error
//
// maybeDelivered: whether the receiver may have seen the request, so a
// later attempt may be a duplicate (a timeout, a reset connection, 5xx).

export type Outcome =
  | { kind: "sent"; note?: string }
  | {
    kind: "retry";
    error: string;
    retryAfterSeconds?: number;
    maybeDelivered: boolean;
  }
  | { kind: "dead"; error: string };

/** Seconds of a Retry-After header (delta-seconds or an HTTP date). */
export function retryAfterSeconds(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (value === null || value === undefined || value.trim() === "") {
    return undefined;
  }
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 86400);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.min(Math.ceil((at - now) / 1000), 86400));
}

type StripeLikeError = {
  type?: string;
  statusCode?: number;
  code?: string;
  message?: string;
  headers?: Record<string, string | undefined>;
  detail?: unknown;
};

const DUPLICATE_IDENTIFIER = /already exists with identifier/i;

/** The outcome of an error thrown by Stripe's SDK (or anything else). */
export function stripeOutcome(err: unknown): Outcome {
  const e = (err ?? {}) as StripeLikeError;
  const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
  const message = e.message ?? String(err);
  const what = status ? `Stripe ${status}: ${message}` : `Stripe: ${message}`;
  if (status === undefined) {
    // no answer: the connection was refused, reset, or timed out
    const cause = (e.detail as { cause?: { message?: string } } | undefined)
      ?.cause?.message;
    const detail = `${String(e.detail ?? "")} ${cause ?? ""} ${message}`;
    const refused = /refused|ECONNREFUSED|os error 111/i.test(detail);
    return { kind: "retry", error: what, maybeDelivered: !refused };
  }
  if (status === 400 && DUPLICATE_IDENTIFIER.test(message)) {
    return {
      kind: "sent",
      note: "Stripe already had this identifier (an earlier attempt arrived)",
    };
  }
  if (status === 429 || status === 409) {
    return {
      kind: "retry",
      error: what,
      retryAfterSeconds: retryAfterSeconds(headerOf(e.headers, "retry-after")),
      maybeDelivered: false,
    };
  }
  if (status === 401 || status === 403) {
    return { kind: "retry", error: what, maybeDelivered: false };
  }
  if (status >= 500) {
    return {
      kind: "retry",
      error: what,
      retryAfterSeconds: retryAfterSeconds(headerOf(e.headers, "retry-after")),
      maybeDelivered: true,
    };
  }
  if (e.type === "StripeIdempotencyError") {
    return { kind: "retry", error: what, maybeDelivered: true };
  }
  return { kind: "dead", error: what };
}

function headerOf(
  headers: Record<string, string | undefined> | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return v;
  }
  return undefined;
}

type AuthLikeError = {
  name?: string;
  status?: number;
  code?: string;
  message?: string;
};

/**
 * The outcome of a Supabase Auth error (supabase-js returns them as
 * `error`; AuthRetryableFetchError has status 0 when nothing answered).
 */
export function authOutcome(err: AuthLikeError): Outcome {
  const status = typeof err.status === "number" ? err.status : 0;
  const code = err.code ? ` (${err.code})` : "";
  const what = `Supabase Auth ${status || "unreachable"}${code}: ${
    err.message ?? "failed"
  }`;
  if (status === 0) {
    return {
      kind: "retry",
      error: what,
      maybeDelivered: !/refused|os error 111/i.test(err.message ?? ""),
    };
  }
  if (status === 429) {
    const m = /after (\d+) seconds?/i.exec(err.message ?? "");
    return {
      kind: "retry",
      error: what,
      retryAfterSeconds: m ? Number(m[1]) : undefined,
      maybeDelivered: false,
    };
  }
  if (status === 409 || status === 401 || status === 403) {
    return { kind: "retry", error: what, maybeDelivered: false };
  }
  if (status >= 500) {
    return { kind: "retry", error: what, maybeDelivered: true };
  }
  return { kind: "dead", error: what };
}
