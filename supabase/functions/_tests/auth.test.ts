// Unit tests of ../_shared/auth.ts: who is calling.  Key pairs are made
// here, the JWKS is served by a local HTTP server on a free port (as
// ${SUPABASE_URL}/auth/v1/.well-known/jwks.json), and tokens are signed
// with jose's signer or, for the hostile ones, by hand.
import { deepStrictEqual as assertEquals } from "node:assert";
import * as jose from "jose";
import { type AuthConfig, makeAuth } from "../_shared/auth.ts";

const now = () => Math.floor(Date.now() / 1000);
const USER = "b1b10000-0000-4000-8000-0000000000u1";
const HS_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

type Key = { kid: string; alg: string; priv: CryptoKey; jwk: jose.JWK };
async function newKey(alg: "ES256" | "RS256", kid: string): Promise<Key> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, {
    extractable: true,
  });
  const jwk = await jose.exportJWK(publicKey);
  return {
    kid,
    alg,
    priv: privateKey as CryptoKey,
    jwk: { ...jwk, kid, alg, use: "sig" },
  };
}

function sign(
  key: Key,
  claims: jose.JWTPayload,
  header: Partial<jose.JWTHeaderParameters> = {},
): Promise<string> {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .sign(key.priv);
}

const b64url = (s: string | Uint8Array) =>
  jose.base64url.encode(typeof s === "string" ? s : s);

const userClaims = (extra: jose.JWTPayload = {}) => ({
  sub: USER,
  role: "authenticated",
  aud: "authenticated",
  iat: now(),
  exp: now() + 600,
  ...extra,
});

/** A JWKS server whose key set the test replaces; counts its fetches. */
function jwksServer(initial: jose.JWK[]) {
  let keys = initial;
  let fetches = 0;
  let down = false;
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen: () => {} },
    (req) => {
      if (new URL(req.url).pathname !== "/auth/v1/.well-known/jwks.json") {
        return new Response("not found", { status: 404 });
      }
      fetches++;
      if (down) return new Response("unavailable", { status: 503 });
      return Response.json({ keys });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    set: (k: jose.JWK[]) => (keys = k),
    setDown: (d: boolean) => (down = d),
    fetches: () => fetches,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

async function status(
  auth: ReturnType<typeof makeAuth>,
  token: string | null,
): Promise<number | string> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const r = await auth.callerOf(new Request("http://x/", { headers }));
  if (r instanceof Response) return r.status;
  return r === null ? "trusted" : r.role;
}

Deno.test("JWKS: ES256 and RS256 user tokens, rotation, hostile tokens", async (t) => {
  const a = await newKey("ES256", "key-a");
  const b = await newKey("ES256", "key-b");
  const r = await newKey("RS256", "key-r");
  const attacker = await newKey("ES256", "key-a"); // claims A's kid
  const stranger = await newKey("ES256", "key-z");
  const jwks = jwksServer([a.jwk, r.jwk]);
  const config: AuthConfig = { supabaseUrl: jwks.url, jwksCooldownSeconds: 0 };
  const auth = makeAuth(config);
  try {
    await t.step("a valid ES256 user token", async () => {
      const caller = await auth.verify(await sign(a, userClaims()));
      assertEquals(caller?.role, "authenticated");
      assertEquals(caller?.claims.sub, USER);
    });
    await t.step("a valid RS256 user token", async () => {
      assertEquals(
        await status(auth, await sign(r, userClaims())),
        "authenticated",
      );
    });
    await t.step(
      "aud may be an array that includes authenticated",
      async () => {
        const tok = await sign(a, userClaims({ aud: ["x", "authenticated"] }));
        assertEquals(await status(auth, tok), "authenticated");
      },
    );
    await t.step("a service-role token (no audience)", async () => {
      const tok = await sign(a, {
        role: "service_role",
        iss: "supabase",
        exp: now() + 600,
      });
      assertEquals(await status(auth, tok), "service_role");
    });
    await t.step("signed by an unknown key: 401", async () => {
      assertEquals(await status(auth, await sign(stranger, userClaims())), 401);
    });
    await t.step("a known kid but another key's signature: 401", async () => {
      assertEquals(await status(auth, await sign(attacker, userClaims())), 401);
    });
    await t.step("alg none: 401", async () => {
      const tok = b64url(JSON.stringify({ alg: "none", typ: "JWT" })) + "." +
        b64url(JSON.stringify(userClaims())) + ".";
      assertEquals(await status(auth, tok), 401);
    });
    await t.step(
      "HS256 keyed with the public key (algorithm confusion): 401",
      async () => {
        const head = b64url(
          JSON.stringify({ alg: "HS256", typ: "JWT", kid: "key-a" }),
        );
        const body = b64url(JSON.stringify(userClaims()));
        for (const secret of [JSON.stringify(a.jwk), a.jwk.x!]) {
          const k = await crypto.subtle.importKey(
            "raw",
            new TextEncoder().encode(secret),
            { name: "HMAC", hash: "SHA-256" },
            false,
            ["sign"],
          );
          const sig = new Uint8Array(
            await crypto.subtle.sign(
              "HMAC",
              k,
              new TextEncoder().encode(head + "." + body),
            ),
          );
          assertEquals(
            await status(auth, `${head}.${body}.${b64url(sig)}`),
            401,
          );
        }
      },
    );
    await t.step("expired: 401", async () => {
      const tok = await sign(a, userClaims({ exp: now() - 5 }));
      assertEquals(await status(auth, tok), 401);
    });
    await t.step("not yet valid: 401", async () => {
      const tok = await sign(a, userClaims({ nbf: now() + 300 }));
      assertEquals(await status(auth, tok), 401);
    });
    await t.step("no exp: 401", async () => {
      const claims = userClaims();
      delete (claims as jose.JWTPayload).exp;
      assertEquals(await status(auth, await sign(a, claims)), 401);
    });
    await t.step("wrong audience: 401", async () => {
      for (const aud of ["anon", "service", ["x"]]) {
        assertEquals(
          await status(auth, await sign(a, userClaims({ aud }))),
          401,
        );
      }
      const claims = userClaims();
      delete (claims as jose.JWTPayload).aud;
      assertEquals(await status(auth, await sign(a, claims)), 401);
    });
    await t.step("role anon, no role, no subject: 401", async () => {
      assertEquals(
        await status(auth, await sign(a, userClaims({ role: "anon" }))),
        401,
      );
      assertEquals(
        await status(auth, await sign(a, userClaims({ role: undefined }))),
        401,
      );
      assertEquals(
        await status(auth, await sign(a, userClaims({ sub: "" }))),
        401,
      );
      assertEquals(
        await status(auth, await sign(a, userClaims({ sub: undefined }))),
        401,
      );
    });
    await t.step("malformed headers and tokens: 401", async () => {
      assertEquals(await status(auth, null), 401);
      assertEquals(await status(auth, "not-a-jwt"), 401);
      assertEquals(await status(auth, "a.b.c"), 401);
      const res = await auth.callerOf(
        new Request("http://x/", {
          headers: { authorization: "Basic dXNlcjpwdw==" },
        }),
      );
      assertEquals((res as Response).status, 401);
    });
    await t.step(
      "a rotated key: fetched again for its unknown kid",
      async () => {
        const before = jwks.fetches();
        jwks.set([b.jwk]);
        assertEquals(
          await status(auth, await sign(b, userClaims())),
          "authenticated",
        );
        assertEquals(jwks.fetches() > before, true);
        // the retired key is gone with the new key set
        assertEquals(await status(auth, await sign(a, userClaims())), 401);
      },
    );
    await t.step(
      "HS256 tokens are refused when no shared secret is set",
      async () => {
        const tok = await new jose.SignJWT(userClaims())
          .setProtectedHeader({ alg: "HS256" })
          .sign(new TextEncoder().encode(HS_SECRET));
        assertEquals(await status(auth, tok), 401);
      },
    );
    await t.step(
      "the key server down: 503, not a verdict on the token",
      async () => {
        const down = makeAuth({
          supabaseUrl: jwks.url,
          jwksCooldownSeconds: 0,
        });
        jwks.setDown(true);
        assertEquals(await status(down, await sign(b, userClaims())), 503);
        jwks.setDown(false);
        assertEquals(
          await status(down, await sign(b, userClaims())),
          "authenticated",
        );
      },
    );
  } finally {
    await jwks.close();
  }
});

Deno.test("the cooldown bounds JWKS fetches for unknown kids", async () => {
  const a = await newKey("ES256", "key-a");
  const stranger = await newKey("ES256", "key-z");
  const jwks = jwksServer([a.jwk]);
  try {
    const auth = makeAuth({ supabaseUrl: jwks.url, jwksCooldownSeconds: 30 });
    assertEquals(
      await status(auth, await sign(a, userClaims())),
      "authenticated",
    );
    const after = jwks.fetches();
    for (let i = 0; i < 5; i++) {
      assertEquals(await status(auth, await sign(stranger, userClaims())), 401);
    }
    assertEquals(jwks.fetches(), after);
  } finally {
    await jwks.close();
  }
});

Deno.test("legacy shared secret (HS256)", async () => {
  const auth = makeAuth({ jwtSecret: HS_SECRET });
  const hs = (claims: jose.JWTPayload, secret = HS_SECRET) =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(secret));
  assertEquals(await status(auth, await hs(userClaims())), "authenticated");
  assertEquals(
    await status(auth, await hs({ role: "service_role", exp: now() + 60 })),
    "service_role",
  );
  assertEquals(
    await status(auth, await hs(userClaims(), HS_SECRET + "x")),
    401,
  );
  assertEquals(
    await status(auth, await hs(userClaims({ exp: now() - 1 }))),
    401,
  );
  // an ES256 token with no JWKS configured
  const a = await newKey("ES256", "key-a");
  assertEquals(await status(auth, await sign(a, userClaims())), 401);
});

Deno.test("the project's service key itself is service_role", async () => {
  const auth = makeAuth({ serviceRoleKey: "sb_secret_abc123" });
  assertEquals(await status(auth, "sb_secret_abc123"), "service_role");
  assertEquals(await status(auth, "sb_secret_abc124"), 401);
});

Deno.test("trusted mode is explicit", async () => {
  const trusted = makeAuth({ trusted: true });
  assertEquals(await status(trusted, null), "trusted");
  // a token that is sent is verified, and nothing here can
  assertEquals(await status(trusted, "abc.def.ghi"), 401);
  const nothing = makeAuth({});
  assertEquals(await status(nothing, null), 500);
  assertEquals(await status(nothing, "abc.def.ghi"), 500);
  // with a key source, a missing token is 401, not trusted
  assertEquals(await status(makeAuth({ jwtSecret: HS_SECRET }), null), 401);
});
