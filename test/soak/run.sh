#!/usr/bin/env bash
# test/soak/run.sh [SECONDS] — the soak test: a mixed pgbench workload over
# the public functions, then invariants (TAP output, status 0 when all hold).
#
#   test/soak/run.sh          60 s (by hand; builds an optimised stage)
#   test/soak/run.sh 600      ten minutes
#   SOAK_CLIENTS=8 test/soak/run.sh 120
#
# It runs on a throwaway cluster of its own (test/cluster.sh) with the
# scheduling worker serving database postgres; with IPAI_PGBIN set (as
# inside `make test`, where test/t/soak.t runs it for 25 s) it uses those
# binaries, else it builds an optimised stage first.
#
# Workload (pgbench -n -M prepared, SOAK_CLIENTS clients (6), 2 threads,
# scripts in test/soak/pgbench/ with weights): signed Stripe webhooks with
# distinct and repeated event ids (ipai.stripe_sign + ipai.stripe_webhook),
# consume/check/record with idempotency keys, holds reserved then
# finalized, released or left to expire, CMS pages created, submitted,
# approved, published, edited, rejected, scheduled to publish or unpublish
# within 2 s, run_due_publications beside the worker, invitations and
# their acceptance, and the outbox claimed and marked sent.  The callers in
# test/soak/setup.sql act as members (role authenticated) or service_role.
#
# Invariants afterwards: each webhook event processed once (one inbox row,
# deliveries = committed deliveries, one application in the audit log,
# every subscription in the state of its newest event); counters equal the
# events and refresh_org_usage() repairs nothing; held = active holds; no
# hard limit exceeded (ai_runs, pages, seats); one meter event per metered
# usage event; no schedule left running or due once the worker has drained,
# executed once each; version numbers gapless per page; a listening
# connection received exactly one notification per committed approval
# state change and per executed schedule; no outbox row marked sent twice.
# Figures printed: transactions and tps per script, totals, outcomes.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export IPAI_SRC=$SRC
SECS=${1:-60}
CLIENTS=${SOAK_CLIENTS:-6}

if [ "${IPAI_SOAK_INNER:-}" != 1 ]; then
	if [ -z "${IPAI_PGBIN:-}" ]; then
		. "$SRC/test/lib/common.sh"
		IPAI_PGBIN=$(ipai_stage opt "-O2") || exit 1
	fi
	[ -d "$SRC/test/node_modules/postgres" ] || (cd "$SRC/test" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	export IPAI_SOAK_INNER=1 IPAI_PGBIN
	export IPAI_CONF="ipai.scheduler_max_lateness_log = -1"
	exec "$SRC/test/cluster.sh" run -- "$SRC/test/soak/run.sh" "$SECS"
fi

. "$SRC/test/crash/lib.sh"
work=$(mktemp -d /tmp/soak.XXXXXX)
listener=
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# the world
psql -X -q -v ON_ERROR_STOP=1 -d postgres >"$work/setup.log" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
\i $SRC/test/fixtures/stripe/billing_events.sql
\i $SRC/test/soak/setup.sql
SQL
if [ $? -ne 0 ]; then cat "$work/setup.log"; nok "setup"; crash_done; exit 1; fi

# the listener
(cd "$SRC" && exec node test/soak/listener.js "$work/ready") >"$work/listener.log" 2>&1 &
listener=$!
for i in $(seq 1 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
if [ -f "$work/ready" ]; then ok "a connection listens on cms_schedule and cms_approvals"; else nok "the listener started" "$(cat "$work/listener.log")"; fi

# the workload
echo "# pgbench: $CLIENTS clients, 2 threads, $SECS s"
scripts=(webhook@3 metering@4 holds@2 cms@2 cms_edit@2 invite@1 outbox@2)
args=()
for s in "${scripts[@]}"; do args+=(-f "$SRC/test/soak/pgbench/${s%@*}.sql@${s#*@}"); done
"$IPAI_PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" "${args[@]}" postgres >"$work/pgbench.log" 2>&1
rc=$?
end_at=$(q "SELECT clock_timestamp()")
if [ "$rc" -eq 0 ] && ! grep -q 'aborted' "$work/pgbench.log"; then
	ok "pgbench ran $SECS s with no client aborted (no unexpected error)"
else
	nok "pgbench ran $SECS s with no client aborted (no unexpected error)" "$(grep -E 'aborted|ERROR|error' "$work/pgbench.log" | head -20)"
fi

# figures
echo "# per script (transactions, tps):"
awk '/^SQL script [0-9]+:/ { split($4, p, "/"); name = p[length(p)] }
	/^ - [0-9]+ transactions/ { sub(/^ - /, ""); printf "#   %-13s %s\n", name, $0 }' "$work/pgbench.log"
grep -E '^(number of transactions actually processed|number of failed transactions|latency average|tps =)' "$work/pgbench.log" | sed 's/^/#   /'
echo "# outcomes (committed calls):"
q "SELECT kind || ' ' || string_agg(result || '=' || n, ' ' ORDER BY result) FROM (SELECT kind, result, count(*) n FROM soak.outcomes GROUP BY 1, 2) x GROUP BY kind ORDER BY kind" | sed 's/^/#   /'
q "SELECT 'webhook deliveries=' || count(*) || ' events=' || count(DISTINCT event_id) || ' ' || string_agg(DISTINCT status, ',') FROM soak.webhook_calls" | sed 's/^/#   /'

# drain: the worker executes what is still scheduled (run_at up to 2 s after the end)
check "SELECT NOT EXISTS (SELECT 1 FROM ipai.cms_schedule WHERE status IN ('pending', 'running'))" \
	"the worker drains every schedule (none pending or running)" 60

# the listener gets everything committed before the sentinel
q "NOTIFY soak_sentinel" >/dev/null
for i in $(seq 1 300); do kill -0 "$listener" 2>/dev/null || break; sleep 0.1; done
if wait "$listener"; then ok "the listener received the sentinel and stored what it got"; else nok "the listener received the sentinel" "$(cat "$work/listener.log")"; fi
listener=
sed -n 's/^# /# /p' "$work/listener.log"

# webhooks
is "$(q "SELECT count(*) FROM (SELECT event_id FROM soak.webhook_calls GROUP BY 1 HAVING count(*) FILTER (WHERE status = 'processed') <> 1 OR count(*) FILTER (WHERE status NOT IN ('processed', 'duplicate')) > 0) x")" 0 \
	"webhooks: every event answered processed exactly once, duplicate otherwise"
is "$(q "SELECT count(*) FROM ipai.webhook_events e FULL JOIN (SELECT event_id, count(*) n FROM soak.webhook_calls GROUP BY 1) c USING (event_id) WHERE e.event_id IS NULL OR c.event_id IS NULL OR e.deliveries <> c.n OR e.status <> 'processed' OR e.processed_at IS NULL")" 0 \
	"webhooks: one inbox row per event, processed, counting exactly the committed deliveries"
is "$(q "SELECT count(*) FROM (SELECT new_values->>'event_id' FROM ipai.audit_log WHERE action LIKE 'subscription.%' GROUP BY 1 HAVING count(*) > 1) x")" 0 \
	"webhooks: no event applied twice (audit log)"
is "$(q "SELECT count(*) || ',' || count(*) FILTER (WHERE s.last_event_id = (SELECT 'evt_soak_' || max(c.r) FROM soak.webhook_calls c WHERE c.sub = s.stripe_subscription_id)) FROM ipai.subscriptions s WHERE s.stripe_subscription_id LIKE 'sub_soak_%'")" \
	"8,8" "webhooks: 8 subscriptions, each in the state of its newest event"
is "$(q "SELECT count(*) FROM ipai.organizations o JOIN soak.orgs s ON s.id = o.id WHERE s.i > 10 AND o.plan_id = 'pro'")" 4 \
	"webhooks: the 4 billing organizations are on pro"

# metering
is "$(q "SELECT count(*) FROM ipai.usage_counters c WHERE c.used <> CASE WHEN c.feature = 'cms_items' THEN (SELECT count(*) FROM ipai.cms_pages p WHERE p.org_id = c.org_id) ELSE (SELECT coalesce(sum(e.quantity), 0) FROM ipai.usage_events e WHERE e.org_id = c.org_id AND e.feature = c.feature AND e.period_start = c.period_start) END")" 0 \
	"metering: every counter equals its events (pages for cms_items)"
# (the counter's held column is recomputed lazily once its earliest hold
# has expired: what counts is what the check says)
is "$(q "SELECT string_agg(o.i || ':' || c.current || '<>' || u.used || '+' || h.held, ' ') FROM soak.orgs o, ipai.check_entitlement(o.id, 'ai_runs') c, ipai.usage_period(o.id) p,
		LATERAL (SELECT coalesce(sum(x.used), 0) AS used FROM ipai.usage_counters x WHERE x.org_id = o.id AND x.feature = 'ai_runs' AND x.period_start = p.period_start) u,
		LATERAL (SELECT coalesce(sum(y.quantity), 0) AS held FROM ipai.usage_holds y WHERE y.org_id = o.id AND y.feature = 'ai_runs' AND y.period_start = p.period_start AND y.status = 'active' AND y.expires_at > now()) h
	  WHERE o.i <= 3 AND c.current <> u.used + h.held")" "" \
	"metering: current usage is what was used plus the active, unexpired holds"
is "$(q "SELECT ipai.refresh_org_usage()")" 0 "metering: refresh_org_usage() repairs nothing"
is "$(q "SELECT string_agg(o.i || ':' || f || ':' || c.current || '>' || c.max, ' ') FROM soak.orgs o, unnest('{ai_runs,cms_items,seats}'::text[]) f, ipai.check_entitlement(o.id, f) c WHERE o.i <= 3 AND c.max IS NOT NULL AND c.current > c.max")" "" \
	"metering: no hard limit exceeded (ai_runs, pages, seats: members plus pending invitations)"
is "$(q "SELECT count(*) FROM ipai.usage_counters c JOIN ipai.organizations o ON o.id = c.org_id JOIN ipai.plan_entitlements e ON e.plan_id = o.plan_id AND e.feature = c.feature WHERE e.enforcement = 'hard' AND c.used > e.max_quantity")" 0 \
	"metering: no counter of any period above its hard limit"
is "$(q "SELECT (SELECT count(*) FROM ipai.usage_events WHERE metered) = (SELECT count(DISTINCT dedupe_key) FROM ipai.outbox WHERE topic = 'stripe.meter_event') AND (SELECT count(*) FROM ipai.outbox WHERE topic = 'stripe.meter_event') = (SELECT count(*) FROM ipai.usage_events WHERE metered) AND (SELECT coalesce(sum(quantity), 0) FROM ipai.usage_events WHERE metered) = (SELECT coalesce(sum((payload->>'value')::bigint), 0) FROM ipai.outbox WHERE topic = 'stripe.meter_event')")" t \
	"metering: one meter event per metered usage event, same quantities"
is "$(q "SELECT count(*) FROM (SELECT org_id, idempotency_key FROM ipai.usage_events WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d")" 0 \
	"metering: no idempotency key recorded twice"
is "$(q "SELECT count(*) FILTER (WHERE result = 'IP001') > 0 AND count(*) FILTER (WHERE result = 'duplicate') > 0 AND count(*) FILTER (WHERE result = 'ok') > 0 FROM soak.outcomes WHERE kind = 'consume'")" t \
	"metering: the workload hit a limit, duplicate keys and successes"

# scheduling and versions
is "$(q "SELECT count(*) FILTER (WHERE status IN ('pending', 'running')) || ',' || count(*) FILTER (WHERE status IN ('done', 'failed') AND (executed_at IS NULL OR lateness IS NULL)) || ',' || count(*) FILTER (WHERE status = 'failed' AND error IS NULL) || ',' || coalesce(max(attempts), 1) FROM ipai.cms_schedule")" \
	"0,0,0,1" "scheduling: nothing left running or due; every run has its lateness, every failure its reason, one attempt each"
is "$(q "SELECT count(*) > 0 FROM ipai.cms_schedule WHERE status = 'done' AND action = 'publish'")|$(q "SELECT count(*) > 0 FROM ipai.cms_schedule WHERE status = 'done' AND action = 'unpublish'")" \
	"t|t" "scheduling: publications and unpublications were executed"
is "$(q "SELECT count(*) FROM (SELECT page_id FROM ipai.cms_page_versions GROUP BY page_id HAVING min(version) <> 1 OR max(version) <> count(*) OR count(DISTINCT version) <> count(*)) x")" 0 \
	"cms: version numbers gapless from 1 on every page"
is "$(q "SELECT count(*) FROM ipai.cms_pages p WHERE p.version <> (SELECT max(v.version) FROM ipai.cms_page_versions v WHERE v.page_id = p.id)")" 0 \
	"cms: every page's version is its newest snapshot"

# notifications
is "$(q "SELECT count(*) FROM (SELECT (payload->>'schedule_id')::bigint AS id, payload->>'status' AS st, count(*) AS k FROM soak.notified WHERE channel = 'cms_schedule' GROUP BY 1, 2) n FULL JOIN (SELECT id, status::text AS st FROM ipai.cms_schedule WHERE status IN ('done', 'failed')) s USING (id, st) WHERE n.id IS NULL OR s.id IS NULL OR n.k <> 1")" 0 \
	"notifications: exactly one cms_schedule notification per executed schedule, with its status"
is "$(q "WITH want AS (
		SELECT id, 'pending' AS st FROM ipai.cms_approvals
		UNION ALL SELECT id, CASE WHEN status = 'rejected' THEN 'rejected' ELSE 'approved' END FROM ipai.cms_approvals WHERE decided_at IS NOT NULL
		UNION ALL SELECT id, 'voided' FROM ipai.cms_approvals WHERE voided_at IS NOT NULL),
	w AS (SELECT id, st, count(*) AS k FROM want GROUP BY 1, 2),
	g AS (SELECT (payload->>'approval_id')::uuid AS id, payload->>'status' AS st, count(*) AS k FROM soak.notified WHERE channel = 'cms_approvals' GROUP BY 1, 2)
	SELECT count(*) FROM w FULL JOIN g USING (id, st) WHERE w.k IS DISTINCT FROM g.k")" 0 \
	"notifications: exactly one cms_approvals notification per committed approval state change"
echo "# notifications: $(q "SELECT string_agg(channel || '=' || n, ' ') FROM (SELECT channel, count(*) n FROM soak.notified GROUP BY 1 ORDER BY 1) x"); approvals $(q "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM ipai.cms_approvals GROUP BY 1 ORDER BY 1) x"); schedules $(q "SELECT string_agg(action || '/' || status || '=' || n, ' ') FROM (SELECT action, status, count(*) n FROM ipai.cms_schedule GROUP BY 1, 2 ORDER BY 1, 2) x")"

# outbox
is "$(q "SELECT count(*) FROM (SELECT outbox_id FROM soak.marks GROUP BY 1 HAVING count(*) > 1) x")" 0 \
	"outbox: no row marked sent twice"
is "$(q "SELECT (SELECT count(*) FROM soak.marks) = (SELECT count(*) FROM ipai.outbox WHERE sent_at IS NOT NULL) AND (SELECT count(*) FROM soak.marks) > 0")" t \
	"outbox: every sent row was marked by exactly one committed call"
is "$(q "SELECT count(*) FROM ipai.outbox WHERE topic = 'auth.invite' AND sent_at IS NOT NULL AND payload ? 'token'")" 0 \
	"outbox: sent invitations no longer carry their token"
is "$(q "SELECT count(*) FROM soak.outcomes WHERE result IN ('40P01', '40001')")" 0 "no deadlock or serialization failure"
echo "# totals: $(q "SELECT 'webhook events ' || (SELECT count(*) FROM ipai.webhook_events) || ', usage events ' || (SELECT count(*) FROM ipai.usage_events) || ', holds ' || (SELECT count(*) FROM ipai.usage_holds) || ', pages ' || (SELECT count(*) FROM ipai.cms_pages) || ', versions ' || (SELECT count(*) FROM ipai.cms_page_versions) || ', schedules ' || (SELECT count(*) FROM ipai.cms_schedule) || ', members ' || (SELECT count(*) FROM ipai.org_members) || ', invitations ' || (SELECT count(*) FROM ipai.org_invitations) || ', outbox ' || (SELECT count(*) FROM ipai.outbox) || ' (' || (SELECT count(*) FROM ipai.outbox WHERE sent_at IS NOT NULL) || ' sent)'")"
crash_done
