// Who is calling an Edge handler, and acting as them in the database.
//
// A caller sends "Authorization: Bearer <token>": a user's access token
// (role authenticated, aud authenticated, sub = user id) or a service-role
// token.  Tokens are verified with jose (https://github.com/panva/jose):
//
//   - ES256 / RS256: Supabase's asymmetric signing keys, from the project's
//     JWKS at ${SUPABASE_URL}/auth/v1/.well-known/jwks.json (keys cached,
//     fetched again for an unknown `kid`, at most once per
//     IPAI_JWKS_COOLDOWN_SECONDS, default 30);
//   - HS256: the legacy shared secret, only when SUPABASE_JWT_SECRET is set.
//
// The algorithm a token names must be one its key source allows: an HS256
// token is never checked against a JWKS key (algorithm confusion), `none`
// never passes.  `exp` is required, `nbf` honoured, `role` must be
// authenticated or service_role, and a user token needs aud
// "authenticated" and a subject (Supabase's service-role keys carry no
// audience).  The project's service key itself (SUPABASE_SERVICE_ROLE_KEY,
// a legacy JWT or an sb_secret_ key) is accepted as service_role.
//
// Inside the handler's transaction the database is told who is asking the
// way PostgREST does it: set_config('request.jwt.claims', …, true) and SET
// LOCAL ROLE; the database then decides (membership, roles, RLS).
//
// Trusted mode: with IPAI_EDGE_TRUSTED=1, a request WITHOUT a token acts
// with the privileges of the database connection (SUPABASE_DB_URL), for a
// local run or behind a gateway that admits only trusted callers; it is
// announced loudly at start.  A token that is sent is verified in every
// mode.  With no key source configured and trusted mode off, every request
// is refused (500: the function cannot verify anyone).
import * as jose from "jose";
import { json } from "./http.ts";

/** The verified caller, or null for a trusted caller without token. */
export type Caller = {
  claims: Record<string, unknown>;
  role: "authenticated" | "service_role";
} | null;

export type AuthConfig = {
  /** the project URL: JWKS at /auth/v1/.well-known/jwks.json */
  supabaseUrl?: string;
  /** the legacy HS256 secret */
  jwtSecret?: string;
  /** the project's service key, accepted as service_role */
  serviceRoleKey?: string;
  /** requests without a token act with the connection's privileges */
  trusted?: boolean;
  /** seconds between two JWKS fetches for unknown key ids */
  jwksCooldownSeconds?: number;
};

/** The configuration from the environment, as Supabase sets it. */
export function authConfigFromEnv(): AuthConfig {
  const env = (name: string) => Deno.env.get(name) || undefined;
  return {
    supabaseUrl: env("SUPABASE_URL"),
    jwtSecret: env("SUPABASE_JWT_SECRET"),
    serviceRoleKey: env("SUPABASE_SERVICE_ROLE_KEY"),
    trusted: /^(1|true|on|yes)$/i.test(env("IPAI_EDGE_TRUSTED") ?? ""),
    jwksCooldownSeconds: Number(env("IPAI_JWKS_COOLDOWN_SECONDS") ?? "30"),
  };
}

/** Why a request was refused: HTTP status and message. */
export class AuthError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const ASYMMETRIC = ["ES256", "RS256"];
const encoder = new TextEncoder();

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", encoder.encode(s)),
  );
}

/** Constant-time comparison of two strings (through their digests). */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function audiences(aud: unknown): string[] {
  if (typeof aud === "string") return [aud];
  if (Array.isArray(aud)) {
    return aud.filter((a): a is string => typeof a === "string");
  }
  return [];
}

/** A verifier for one configuration. */
export function makeAuth(config: AuthConfig) {
  const jwks = config.supabaseUrl
    ? jose.createRemoteJWKSet(
      new URL(
        config.supabaseUrl.replace(/\/+$/, "") +
          "/auth/v1/.well-known/jwks.json",
      ),
      {
        cooldownDuration: Math.max(0, config.jwksCooldownSeconds ?? 30) *
          1000,
        cacheMaxAge: 10 * 60 * 1000,
        timeoutDuration: 5000,
      },
    )
    : null;
  const secret = config.jwtSecret ? encoder.encode(config.jwtSecret) : null;

  const mode = [
    jwks ? "JWKS (ES256, RS256)" : null,
    secret ? "shared secret (HS256)" : null,
    config.serviceRoleKey ? "service key" : null,
  ].filter(Boolean).join(" + ");

  /**
   * The verified claims of a token; throws AuthError (401 for a token
   * that does not verify, 503 when the signing keys cannot be fetched).
   */
  async function verify(token: string): Promise<Caller> {
    if (
      config.serviceRoleKey &&
      await sameSecret(token, config.serviceRoleKey)
    ) {
      return { claims: { role: "service_role" }, role: "service_role" };
    }
    let alg: string | undefined;
    try {
      alg = jose.decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError(401, "the token is not a JWT");
    }
    let claims: jose.JWTPayload;
    try {
      const options = { requiredClaims: ["exp"] };
      if (alg === "HS256" && secret) {
        ({ payload: claims } = await jose.jwtVerify(token, secret, {
          ...options,
          algorithms: ["HS256"],
        }));
      } else if (alg !== undefined && ASYMMETRIC.includes(alg) && jwks) {
        ({ payload: claims } = await jose.jwtVerify(token, jwks, {
          ...options,
          algorithms: ASYMMETRIC,
        }));
      } else {
        throw new AuthError(
          401,
          `tokens signed with ${alg ?? "no algorithm"} are not accepted here`,
        );
      }
    } catch (err) {
      if (err instanceof AuthError) throw err;
      // the key set could not be had (timeout, not 200, not a key set,
      // a network error): not the caller's fault
      if (
        err instanceof jose.errors.JWKSTimeout ||
        err instanceof jose.errors.JWKSInvalid ||
        (err as { code?: string }).code === "ERR_JOSE_GENERIC" ||
        (err instanceof Error && !(err instanceof jose.errors.JOSEError))
      ) {
        console.error(`could not fetch the signing keys: ${err}`);
        throw new AuthError(503, "could not fetch the signing keys");
      }
      const code = (err as { code?: string }).code ?? "ERR_JWT_INVALID";
      throw new AuthError(401, `the token does not verify (${code})`);
    }
    if (claims.role === "service_role") {
      return { claims, role: "service_role" };
    }
    if (claims.role !== "authenticated") {
      throw new AuthError(401, "the token's role may not call this function");
    }
    if (!audiences(claims.aud).includes("authenticated")) {
      throw new AuthError(
        401,
        "the token is not meant for authenticated users",
      );
    }
    if (typeof claims.sub !== "string" || claims.sub === "") {
      throw new AuthError(401, "the token names no user");
    }
    return { claims, role: "authenticated" };
  }

  /**
   * The caller of req: a Caller, null for a trusted caller (trusted mode,
   * no token), or an error Response to return as is.
   */
  async function callerOf(req: Request): Promise<Caller | Response> {
    const auth = req.headers.get("authorization");
    if (auth === null && config.trusted) return null;
    if (!mode && !config.trusted) {
      return json({
        error: "this function cannot verify callers",
        detail:
          "Set SUPABASE_URL (JWKS) or SUPABASE_JWT_SECRET, or IPAI_EDGE_TRUSTED=1 for a trusted local run.",
      }, 500);
    }
    const match = /^Bearer\s+(\S+)$/i.exec(auth ?? "");
    if (!match || !mode) {
      // trusted mode with a token: nothing here can verify it
      return json({ error: "a valid Supabase access token is required" }, 401);
    }
    try {
      return await verify(match[1]);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return json(
        {
          error: "a valid Supabase access token is required",
          detail: err.message,
        },
        err.status,
      );
    }
  }

  return { callerOf, verify, mode };
}

/** Says at start how callers are verified; trusted mode loudly. */
export function announce(config: AuthConfig, mode: string): void {
  if (config.trusted) {
    console.warn(
      "*** IPAI_EDGE_TRUSTED is on: requests WITHOUT a token act with the " +
        "privileges of SUPABASE_DB_URL. Never expose this function to the " +
        "internet like this. ***",
    );
  }
  if (mode) {
    console.log(`callers are verified by ${mode}`);
  } else if (!config.trusted) {
    console.error(
      "no way to verify callers: set SUPABASE_URL (JWKS) or " +
        "SUPABASE_JWT_SECRET; every request will be refused",
    );
  }
}

/** Inside a transaction: act as the caller (nothing to do when trusted). */
export async function actAs(
  // deno-lint-ignore no-explicit-any
  tx: any,
  caller: Caller,
): Promise<void> {
  if (caller === null) return;
  await tx`SELECT pg_catalog.set_config('request.jwt.claims', ${
    JSON.stringify(caller.claims)
  }, true)`;
  if (caller.role === "service_role") {
    await tx`SET LOCAL ROLE service_role`;
  } else {
    await tx`SET LOCAL ROLE authenticated`;
  }
}

/** The verifier of this process, configured from the environment. */
export function authFromEnv() {
  const config = authConfigFromEnv();
  const auth = makeAuth(config);
  announce(config, auth.mode);
  return auth;
}
