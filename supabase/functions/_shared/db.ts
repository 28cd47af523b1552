// The database connection pool shared by the handlers.
//
// As on Supabase, the URL comes from SUPABASE_DB_URL.  Handlers stay thin:
// they pass the request to one SQL function and map its SQLSTATE.
import postgres from "postgres";

const url = Deno.env.get("SUPABASE_DB_URL");
if (!url) {
  throw new Error("SUPABASE_DB_URL is not set");
}

export type Sql = ReturnType<typeof postgres>;

// a small pool; prepared statements on, server notices not printed
export const sql: Sql = postgres(url, {
  max: Number(Deno.env.get("IPAI_DB_POOL") ?? "4"),
  onnotice: () => {},
  connection: { application_name: "ipai-edge" },
});
