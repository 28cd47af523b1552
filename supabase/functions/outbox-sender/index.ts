// outbox-sender: delivers what the database queues in ipai.outbox (SPEC
// section 6): stripe.meter_event to Stripe's Billing Meter Events API
// through Stripe's SDK, auth.invite through Supabase Auth's admin invite.
// Every outcome is recorded in the database (ipai.outbox_mark_sent_many,
// ipai.outbox_mark_failed_many); see ./sender.ts.
//
// Two ways to run the same module:
//   - POST /outbox-sender (Supabase: pg_cron + pg_net every minute, or any
//     scheduler): drains what is due within IPAI_OUTBOX_BUDGET_SECONDS (50)
//     and answers 200 {sent, retried, dead, remaining}.  Callers must be
//     service_role (../_shared/auth.ts); 403 otherwise.
//   - IPAI_OUTBOX_LOOP=1 (or `--loop`): a long-lived sender for systemd or
//     any process manager.  It LISTENs on ipai_outbox (a NOTIFY when a
//     commit writes outbox rows, at most every 100 ms per backend), drains,
//     looks again within 200 ms while rows keep coming, and otherwise
//     sleeps until the next row is due, at most IPAI_OUTBOX_POLL_SECONDS
//     (10).  SIGTERM
//     or SIGINT: it finishes the requests in flight, records them, and
//     exits.
//
// Settings: SUPABASE_DB_URL; STRIPE_SECRET_KEY and STRIPE_API_BASE
// (default https://api.stripe.com) for meter events; SUPABASE_URL,
// SUPABASE_SERVICE_ROLE_KEY and IPAI_INVITE_REDIRECT_URL (the app's page
// that calls ipai.accept_invitation with the link's token) for
// invitations; a topic whose settings are missing is left in the outbox,
// said at start.  IPAI_OUTBOX_CONCURRENCY (16) requests at once,
// IPAI_OUTBOX_LEASE_SECONDS (120), IPAI_METER_AGGREGATE_MIN (20) and
// IPAI_METER_AGGREGATE_MAX (1000) rows of one customer per meter event.
import { sql } from "../_shared/db.ts";
import { errorResponse, json, serve } from "../_shared/http.ts";
import { authFromEnv } from "../_shared/auth.ts";
import { stripeFromEnv } from "../_shared/stripe.ts";
import { supabaseFromEnv } from "../_shared/supabase.ts";
import { drain, remaining, type SenderConfig, topicsOf } from "./sender.ts";

const num = (name: string, fallback: number) => {
  const v = Number(Deno.env.get(name) ?? fallback);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const timeoutMs = num("IPAI_OUTBOX_HTTP_TIMEOUT_SECONDS", 20) * 1000;
const cfg: SenderConfig = {
  stripe: stripeFromEnv({ retries: 1, timeoutMs }),
  auth: supabaseFromEnv()?.auth ?? null,
  inviteRedirect: Deno.env.get("IPAI_INVITE_REDIRECT_URL") || null,
  concurrency: num("IPAI_OUTBOX_CONCURRENCY", 16),
  leaseSeconds: num("IPAI_OUTBOX_LEASE_SECONDS", 120),
  maxEvents: 200,
  aggregateMin: num("IPAI_METER_AGGREGATE_MIN", 20),
  aggregateMax: num("IPAI_METER_AGGREGATE_MAX", 1000),
  maxInvites: 50,
  // a request (with the SDK's one retry) must end inside its lease
  safetySeconds: (2 * timeoutMs) / 1000 + 5,
};
if (cfg.leaseSeconds <= cfg.safetySeconds) {
  throw new Error(
    `IPAI_OUTBOX_LEASE_SECONDS must exceed ${cfg.safetySeconds} (twice the HTTP timeout plus 5 s)`,
  );
}
if (cfg.inviteRedirect) new URL(cfg.inviteRedirect); // fails early when not a URL

console.log(
  `outbox-sender delivers ${topicsOf(cfg).join(", ") || "nothing"}` +
    (cfg.stripe ? "" : " (no STRIPE_SECRET_KEY: meter events stay queued)") +
    (cfg.auth && cfg.inviteRedirect
      ? ""
      : " (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY or IPAI_INVITE_REDIRECT_URL missing: invitations stay queued)"),
);

async function loop(): Promise<void> {
  const poll = num("IPAI_OUTBOX_POLL_SECONDS", 10) * 1000;
  let stopping = false;
  let wake: () => void = () => {};
  const stop = () => {
    stopping = true;
    wake();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  let notified = false;
  await sql.listen("ipai_outbox", () => {
    notified = true;
    wake();
  });
  console.log("listening on channel ipai_outbox");
  while (!stopping) {
    notified = false;
    let found = false;
    try {
      const t = await drain(sql, cfg, Number.POSITIVE_INFINITY);
      found = t.sent + t.retried + t.dead > 0;
      if (found) {
        console.log(`sent ${t.sent}, retried ${t.retried}, dead ${t.dead}`);
      }
    } catch (err) {
      console.error("drain failed:", err);
    }
    if (stopping || notified) continue;
    // rows keep coming while a drain finds some: look again soon (the
    // database notifies at most every 100 ms per backend)
    let sleep = found ? Math.min(poll, 200) : poll;
    try {
      const [r] = await sql`
        SELECT extract(epoch FROM ipai.outbox_next_due(${`${cfg.leaseSeconds} seconds`}::interval)
                                  - clock_timestamp()) * 1000 AS ms`;
      if (r.ms !== null) {
        sleep = Math.max(0, Math.min(sleep, Number(r.ms) + 50));
      }
    } catch (err) {
      console.error("could not read when the next row is due:", err);
    }
    if (sleep > 0 && !notified) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, sleep);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = () => {};
    }
  }
  await sql.end({ timeout: 5 });
  console.log("outbox-sender stopped");
}

if (Deno.env.get("IPAI_OUTBOX_LOOP") === "1" || Deno.args.includes("--loop")) {
  await loop();
} else {
  const auth = authFromEnv();
  const budget = num("IPAI_OUTBOX_BUDGET_SECONDS", 50) * 1000;
  serve("/outbox-sender", "POST", async (req) => {
    const caller = await auth.callerOf(req);
    if (caller instanceof Response) return caller;
    if (caller !== null && caller.role !== "service_role") {
      return json({ error: "only the service role may run the sender" }, 403);
    }
    try {
      const totals = await drain(sql, cfg, Date.now() + budget);
      return json({ ...totals, remaining: await remaining(sql, cfg) });
    } catch (err) {
      return errorResponse(err, {});
    }
  });
}
