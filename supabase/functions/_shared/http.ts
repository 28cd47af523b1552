// The HTTP plumbing every handler shares: JSON answers, SQLSTATE -> HTTP
// status mapping, and the server itself.  Pure except serve(); the unit
// tests in ../_tests exercise the pure parts.
//
// As on Supabase, a handler run directly with `deno run` serves on PORT
// (default 8000); HOST (default 127.0.0.1) picks the interface.

/** JSON response with the given status. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The SQLSTATE of a database error (postgres.js puts it in `code`). */
export function sqlstate(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)
      ? code
      : undefined;
  }
  return undefined;
}

/**
 * The HTTP status for an error: looked up by SQLSTATE in `bySqlstate`,
 * 500 for anything else (so that a caller such as Stripe retries).
 */
export function statusFor(
  err: unknown,
  bySqlstate: Record<string, number>,
): number {
  const code = sqlstate(err);
  return (code !== undefined && Object.hasOwn(bySqlstate, code))
    ? bySqlstate[code]
    : 500;
}

/**
 * A thrown error as a JSON response: status by statusFor(); the body
 * carries the message, detail and SQLSTATE of a database error, never a
 * stack.  Unexpected errors (500) are logged.
 */
export function errorResponse(
  err: unknown,
  bySqlstate: Record<string, number>,
): Response {
  const status = statusFor(err, bySqlstate);
  if (status === 500) console.error(err);
  const e = err as { message?: string; detail?: string } | null;
  return json(
    {
      error: e?.message ?? String(err),
      detail: e?.detail,
      sqlstate: sqlstate(err),
    },
    status,
  );
}

/**
 * The request body as a JSON object, or a 400 response to return as is.
 */
export async function jsonObject(
  req: Request,
): Promise<Record<string, unknown> | Response> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    return json({ error: "the request body must be JSON" }, 400);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    return json({ error: "the request body must be a JSON object" }, 400);
  }
  return body as Record<string, unknown>;
}

/**
 * Serves `handler` for one path and method on PORT (default 8000).
 * Supabase routes /functions/v1/<name> to a function: both forms match.
 */
export function serve(
  path: string,
  method: string,
  handler: (req: Request) => Promise<Response>,
): Deno.HttpServer {
  const port = Number(Deno.env.get("PORT") ?? "8000");
  const hostname = Deno.env.get("HOST") ?? "127.0.0.1";
  return Deno.serve({
    port,
    hostname,
    onListen: () =>
      console.log(`listening on http://${hostname}:${port}${path}`),
  }, async (req) => {
    const { pathname } = new URL(req.url);
    if (pathname !== path && !pathname.endsWith(path)) {
      return json({ error: "not found" }, 404);
    }
    if (req.method !== method) {
      return json({ error: "method not allowed" }, 405);
    }
    try {
      return await handler(req);
    } catch (err) {
      return errorResponse(err, {});
    }
  });
}
