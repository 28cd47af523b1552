// Draining the outbox: lease what is due, deliver it, and record every
// outcome in the database (src/sql/35_outbox.sql says what each state
// means).  Nothing is kept in memory between leases: a sender that dies
// leaves its leases to expire and another sender (or itself, restarted)
// resends the same rows; Stripe deduplicates a meter event's identifier
// and an invitation in doubt is not e-mailed twice.
import type { Sql } from "../_shared/db.ts";
import type { Stripe } from "../_shared/stripe.ts";
import {
  type AuthClient,
  deliverInvite,
  deliverMeterEvent,
  type MeterGroup,
} from "./deliver.ts";
import type { Outcome } from "./outcome.ts";

export type SenderConfig = {
  stripe: Stripe | null;
  auth: AuthClient | null;
  inviteRedirect: string | null;
  /** requests in flight at once */
  concurrency: number;
  /** how long a lease lasts (the database frees it after that) */
  leaseSeconds: number;
  /** meter events per lease, and rows grouped into one meter event */
  maxEvents: number;
  aggregateMin: number;
  aggregateMax: number;
  /** invitations per lease */
  maxInvites: number;
  /** no request starts later than this before its lease ends */
  safetySeconds: number;
};

export type Totals = { sent: number; retried: number; dead: number };

/** The topics this configuration can deliver. */
export function topicsOf(cfg: SenderConfig): string[] {
  const t: string[] = [];
  if (cfg.stripe) t.push("stripe.meter_event");
  if (cfg.auth && cfg.inviteRedirect) t.push("auth.invite");
  return t;
}

/** Runs fn over items, at most `limit` at a time. */
async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  return out;
}

type Item = {
  ids: (string | number)[];
  label: string;
  send: () => Promise<Outcome>;
};

/**
 * Delivers leased items and records the outcomes: one UPDATE for
 * everything sent, one per failure.  Items whose lease is nearly over are
 * not started (their lease expires and they are resent later).
 */
async function deliverAll(
  sql: Sql,
  cfg: SenderConfig,
  items: Item[],
  leasedAt: number,
  totals: Totals,
): Promise<void> {
  const startBy = leasedAt + (cfg.leaseSeconds - cfg.safetySeconds) * 1000;
  const outcomes = await pool(items, cfg.concurrency, async (it) => {
    if (Date.now() > startBy) return null;
    return await it.send();
  });
  const sent: (string | number)[] = [];
  for (let i = 0; i < items.length; i++) {
    const o = outcomes[i];
    if (o === null) continue;
    if (o.kind === "sent") {
      sent.push(...items[i].ids);
      if (o.note) console.log(`${items[i].label}: ${o.note}`);
      continue;
    }
    const [verdict] = await sql`
      SELECT ipai.outbox_mark_failed_many(${items[i].ids}::bigint[], ${o.error},
               ${
      o.kind === "retry" && o.retryAfterSeconds !== undefined
        ? `${o.retryAfterSeconds} seconds`
        : null
    }::interval,
               ${o.kind === "dead"}, ${
      o.kind === "retry" ? o.maybeDelivered : false
    })
             AS state`;
    if (verdict.state === "dead") {
      totals.dead += items[i].ids.length;
      console.error(`${items[i].label}: given up: ${o.error}`);
    } else if (verdict.state === "retry") {
      totals.retried += items[i].ids.length;
    }
  }
  if (sent.length > 0) {
    const [r] =
      await sql`SELECT ipai.outbox_mark_sent_many(${sent}::bigint[]) AS n`;
    totals.sent += r.n;
  }
}

/** Rows a lease gave up (dead, with the reason): counted and logged. */
function givenUp(
  rows: { ids: (string | number)[]; given_up: string | null }[],
  what: string,
  totals: Totals,
): void {
  for (const r of rows) {
    if (r.given_up === null) continue;
    totals.dead += r.ids.length;
    console.error(`${what} ${r.ids.join(",")}: given up: ${r.given_up}`);
  }
}

/** One lease of meter events, delivered; how many rows came back. */
async function meterRound(
  sql: Sql,
  cfg: SenderConfig,
  totals: Totals,
): Promise<number> {
  const leasedAt = Date.now();
  const leased = await sql<(MeterGroup & { given_up: string | null })[]>`
    SELECT identifier, ids, org_id, event_name, stripe_customer_id,
           value::text AS value, "timestamp"::text AS "timestamp", attempts,
           in_doubt, given_up
      FROM ipai.outbox_lease_meter_events(${cfg.maxEvents},
             ${`${cfg.leaseSeconds} seconds`}::interval,
             ${cfg.aggregateMin}, ${cfg.aggregateMax})`;
  givenUp(leased, "meter event rows", totals);
  await deliverAll(
    sql,
    cfg,
    leased.filter((g) => g.given_up === null).map((g) => ({
      ids: g.ids,
      label: `meter event ${g.identifier}`,
      send: () => deliverMeterEvent(cfg.stripe!, g),
    })),
    leasedAt,
    totals,
  );
  return leased.length;
}

/** One lease of invitations, delivered; how many rows came back. */
async function inviteRound(
  sql: Sql,
  cfg: SenderConfig,
  totals: Totals,
): Promise<number> {
  const leasedAt = Date.now();
  const leased = await sql<
    {
      id: string;
      payload: unknown;
      in_doubt: boolean;
      given_up: string | null;
    }[]
  >`
    SELECT id, payload, in_doubt, given_up
      FROM ipai.outbox_lease('auth.invite', ${cfg.maxInvites},
                             ${`${cfg.leaseSeconds} seconds`}::interval)`;
  givenUp(
    leased.map((r) => ({ ids: [r.id], given_up: r.given_up })),
    "invitation",
    totals,
  );
  await deliverAll(
    sql,
    cfg,
    leased.filter((r) => r.given_up === null).map((r) => ({
      ids: [r.id],
      label: `invitation ${r.id}`,
      send: () =>
        deliverInvite(cfg.auth!, r.payload, cfg.inviteRedirect!, r.in_doubt),
    })),
    leasedAt,
    totals,
  );
  return leased.length;
}

/** Rows of the given topics due now that no sender holds. */
export async function remaining(sql: Sql, cfg: SenderConfig): Promise<number> {
  const topics = topicsOf(cfg);
  if (topics.length === 0) return 0;
  const [r] = await sql`
    SELECT count(*)::int AS n FROM ipai.outbox o
     WHERE o.topic = ANY (${topics}::text[]) AND o.sent_at IS NULL AND o.dead_at IS NULL
       AND o.next_attempt_at <= clock_timestamp()
       AND (o.claimed_at IS NULL
            OR o.claimed_at < clock_timestamp() - ${`${cfg.leaseSeconds} seconds`}::interval)`;
  return r.n;
}

/**
 * Leases and delivers until nothing is due or the deadline (ms since the
 * epoch) has passed; returns what happened.
 */
export async function drain(
  sql: Sql,
  cfg: SenderConfig,
  deadline: number,
): Promise<Totals> {
  const totals: Totals = { sent: 0, retried: 0, dead: 0 };
  let more = true;
  while (more && Date.now() < deadline) {
    more = false;
    if (cfg.stripe && (await meterRound(sql, cfg, totals)) > 0) more = true;
    if (
      cfg.auth && cfg.inviteRedirect && Date.now() < deadline &&
      (await inviteRound(sql, cfg, totals)) > 0
    ) more = true;
  }
  return totals;
}
