// Stripe's Node SDK (npm:stripe) as the handlers use it: the fetch HTTP
// client (Deno has no Node http agent to offer), the API base from
// STRIPE_API_BASE (default https://api.stripe.com; a local stand-in in
// tests) and the secret key from STRIPE_SECRET_KEY.
import Stripe from "stripe";

export { Stripe };

/** host, port and protocol of an API base URL, as the SDK takes them. */
export function apiBase(base: string): {
  host: string;
  port: number;
  protocol: "http" | "https";
} {
  const u = new URL(base);
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new Error(`STRIPE_API_BASE must be an http(s) URL, not ${base}`);
  }
  if (u.pathname !== "/" && u.pathname !== "") {
    throw new Error(`STRIPE_API_BASE must have no path, not ${base}`);
  }
  const protocol = u.protocol === "http:" ? "http" : "https";
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port ? Number(u.port) : (protocol === "http" ? 80 : 443),
    protocol,
  };
}

/**
 * A Stripe client from the environment, or null when STRIPE_SECRET_KEY is
 * not set.  `retries` is the SDK's own maxNetworkRetries (it retries
 * connection errors, 409, 429 and 5xx with the same idempotency key).
 */
export function stripeFromEnv(
  options: { retries?: number; timeoutMs?: number } = {},
): Stripe | null {
  const key = Deno.env.get("STRIPE_SECRET_KEY");
  if (!key) return null;
  return new Stripe(key, {
    ...apiBase(Deno.env.get("STRIPE_API_BASE") ?? "https://api.stripe.com"),
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: options.retries ?? 2,
    timeout: options.timeoutMs ?? 20_000,
    appInfo: { name: "ipai_saas" },
  });
}
