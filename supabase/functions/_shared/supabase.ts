// supabase-js as the handlers use it: the project at SUPABASE_URL with
// the service key SUPABASE_SERVICE_ROLE_KEY, no session kept (a server).
import { createClient } from "@supabase/supabase-js";

/** The admin-capable client, or null when either setting is missing. */
export function supabaseFromEnv() {
  const url = Deno.env.get("SUPABASE_URL");
  const key = Deno.env.get("SUPABASE_SERVICE_ROLE_KEY");
  if (!url || !key) return null;
  return createClient(url, key, {
    auth: {
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
  });
}
