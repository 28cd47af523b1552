// Shared by the Edge handlers: one connection pool to the database and the
// small HTTP plumbing every handler needs.  Handlers stay thin: they pass
// the raw request to one SQL function and map SQLSTATEs to HTTP statuses.
//
// As on Supabase, the database URL comes from SUPABASE_DB_URL; run directly
// with `deno run`, a handler serves on PORT (default 8000).
import postgres from "npm:postgres@3.4.9";

const url = Deno.env.get("SUPABASE_DB_URL");
if (!url) {
  throw new Error("SUPABASE_DB_URL is not set");
}

// Small pool; prepared statements on, no notices on stderr.
export const sql = postgres(url, {
  max: Number(Deno.env.get("IPAI_DB_POOL") ?? "4"),
  onnotice: () => {},
  connection: { application_name: "ipai-edge" },
});

/** JSON response with the given status. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The SQLSTATE of a database error, or undefined. */
export function sqlstate(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * Maps a thrown error to a JSON error response: the status is looked up by
 * SQLSTATE in `statusBySqlstate`, anything else is 500 (so a caller such as
 * Stripe retries).  The body carries the SQLSTATE and message, never a stack.
 */
export function errorResponse(
  err: unknown,
  statusBySqlstate: Record<string, number>,
): Response {
  const code = sqlstate(err);
  const status = (code && statusBySqlstate[code]) || 500;
  const e = err as { message?: string; detail?: string };
  if (status === 500) console.error(err);
  return json(
    { error: e?.message ?? String(err), detail: e?.detail, sqlstate: code },
    status,
  );
}

/** Serves `handler` on PORT (default 8000); only the given path and method. */
export function serve(
  path: string,
  method: string,
  handler: (req: Request) => Promise<Response>,
): Deno.HttpServer {
  const port = Number(Deno.env.get("PORT") ?? "8000");
  return Deno.serve({ port, hostname: Deno.env.get("HOST") ?? "127.0.0.1", onListen: () => {
    console.log(`listening on http://127.0.0.1:${port}${path}`);
  } }, async (req) => {
    const { pathname } = new URL(req.url);
    // Supabase routes /functions/v1/<name> to the function; accept both
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
