// cms-publisher: executes the scheduled publications that are due
// (SPEC section 8).  POST /cms-publisher -> 200 {executed: n}, n being what
// ipai.run_due_publications() executed.
//
// For deployments where neither the ipai_saas background worker
// (shared_preload_libraries) nor pg_cron runs the schedule: point any
// external scheduler (Supabase cron, an uptime pinger) at it.  Safe to call
// concurrently and as often as wanted: each due schedule runs exactly once,
// whoever calls.  The database role of SUPABASE_DB_URL must be service_role
// or a superuser (403 otherwise).
import { sql } from "../_shared/db.ts";
import { errorResponse, json, serve } from "../_shared/http.ts";

serve("/cms-publisher", "POST", async (_req: Request) => {
  try {
    const [row] = await sql`SELECT ipai.run_due_publications() AS executed`;
    return json({ executed: row.executed });
  } catch (err) {
    return errorResponse(err, { "42501": 403 });
  }
});
