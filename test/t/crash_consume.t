#!/usr/bin/env bash
# kill -9 in the middle of consuming an entitlement (TAP), on a cluster of
# its own (test/crash/lib.sh).  An organization on a plan of 10 ai_runs a
# period (hard), another on pro (metered, with a Stripe customer).
#  1. Session A consumes (with an idempotency key) and reserves a hold in
#     one transaction and sleeps; session B's consume waits inside
#     ipai.consume_entitlement for the counter row A holds.  B is killed
#     with SIGKILL (the crash restart ends A too).
#  2. A session finalizes a committed hold and sleeps before its commit;
#     killed, the hold is still active and counts; finalized again, once.
# After each crash: every counter equals the sum of its events,
# ipai.refresh_org_usage() repairs nothing, what holds keep back equals the
# active holds, no hold of a killed transaction exists, the killed
# idempotency keys are free again, one meter event per metered event, and
# the limit is still exact (the 10th run fits, the 11th is IP001).
set -uo pipefail
. "$IPAI_SRC/test/crash/lib.sh"
crash_cluster "$0" "$@"
bg=()
trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done' EXIT

crash_install
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
INSERT INTO ipai.plans (id, name, base_amount) VALUES ('crash_ten', 'Ten runs', 10);
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('crash_ten', 'ai_runs', 10, 'hard', 'usage_events', 'billing_period');
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('c7000000-0000-4000-8000-00000000000a', 'Crash Ten', 'crash_ten'),
	('c7000000-0000-4000-8000-00000000000b', 'Crash Pro', 'pro');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('c7000000-0000-4000-8000-00000000000b', 'cus_crash_pro');
SELECT count(ipai.consume_entitlement('c7000000-0000-4000-8000-00000000000a', 'ai_runs', 2, 'k' || g)) FROM generate_series(1, 3) g;
SELECT count(ipai.consume_entitlement('c7000000-0000-4000-8000-00000000000b', 'ai_runs', 5, 'p' || g)) FROM generate_series(1, 2) g;
SQL
TEN=c7000000-0000-4000-8000-00000000000a
PRO=c7000000-0000-4000-8000-00000000000b
hold=$(q "SELECT ipai.reserve_entitlement('$TEN', 'ai_runs', 2, '10 minutes')")
is "$(q "SELECT current || ',' || remaining FROM ipai.check_entitlement('$TEN', 'ai_runs')")" "8,2" \
	"before: 6 used and a committed hold of 2 (8 of 10)"

invariants() {
	local when=$1
	is "$(q "SELECT count(*) FROM ipai.usage_counters c WHERE c.used <> (SELECT coalesce(sum(e.quantity), 0) FROM ipai.usage_events e WHERE e.org_id = c.org_id AND e.feature = c.feature AND e.period_start = c.period_start)")" 0 \
		"$when: every counter equals the sum of its events"
	is "$(q "SELECT count(*) FROM ipai.usage_counters c WHERE c.held <> (SELECT coalesce(sum(h.quantity), 0) FROM ipai.usage_holds h WHERE h.org_id = c.org_id AND h.feature = c.feature AND h.period_start = c.period_start AND h.status = 'active' AND h.expires_at > now())")" 0 \
		"$when: what counters hold back equals the active holds"
	is "$(q "SELECT (SELECT count(*) FROM ipai.usage_events WHERE metered) || ',' || (SELECT count(*) FROM ipai.outbox WHERE topic = 'stripe.meter_event') || ',' || (SELECT coalesce(sum(quantity), 0) FROM ipai.usage_events WHERE metered) || ',' || (SELECT coalesce(sum((payload->>'value')::bigint), 0) FROM ipai.outbox WHERE topic = 'stripe.meter_event')")" \
		"$2" "$when: one meter event per metered usage event (count, count, quantity, value)"
	is "$(q "SELECT ipai.refresh_org_usage()")" 0 "$when: refresh_org_usage() repairs nothing"
}

# 1. killed inside consume_entitlement, with another uncommitted consume and hold
PGAPPNAME=crash_holder psql -X -q -d postgres >/dev/null 2>&1 <<SQL &
BEGIN;
SELECT ipai.consume_entitlement('$TEN', 'ai_runs', 1, 'killed-a');
SELECT ipai.reserve_entitlement('$TEN', 'ai_runs', 1, '10 minutes');
SELECT ipai.consume_entitlement('$PRO', 'ai_runs', 7, 'killed-p');
SELECT pg_sleep(120);
COMMIT;
SQL
bg+=($!)
if wait_blocked crash_holder sleep; then ok "session A consumed 1, held 1 (10 of 10) and metered 7 on pro, uncommitted"; else nok "session A consumed 1, held 1 (10 of 10) and metered 7 on pro, uncommitted"; fi
PGAPPNAME=crash_victim psql -X -q -d postgres >/dev/null 2>&1 <<SQL &
SELECT ipai.consume_entitlement('$TEN', 'ai_runs', 1, 'killed-b');
SQL
bg+=($!)
if wait_blocked crash_victim lock; then ok "session B's consume waits inside consume_entitlement for the counter row"; else nok "session B's consume waits inside consume_entitlement for the counter row"; fi
if kill9 "$(backend_pid crash_victim)"; then ok "kill -9 of B; the server restarted and is ready"; else nok "kill -9 of B; the server restarted and is ready"; fi
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crash%'")" 0 "A was ended by the crash restart too"
is "$(q "SELECT count(*) FROM ipai.usage_events WHERE idempotency_key LIKE 'killed%'")|$(q "SELECT count(*) FROM ipai.usage_holds")" \
	"0|1" "no event of A or B survives, and no hold but the committed one"
invariants "after the first crash" "2,2,10,10"
is "$(q "SELECT current || ',' || remaining FROM ipai.check_entitlement('$TEN', 'ai_runs')")" "8,2" "the check sees 8 of 10 again"
is "$(q "SELECT reason FROM ipai.consume_entitlement('$TEN', 'ai_runs', 1, 'killed-a')")" ok \
	"A's idempotency key is free: consuming with it records (not a duplicate)"
is "$(q "SELECT reason FROM ipai.consume_entitlement('$TEN', 'ai_runs', 1, 'killed-a')")" duplicate "once"
is "$(q "SELECT current || ',' || remaining FROM ipai.consume_entitlement('$TEN', 'ai_runs', 1)")" "10,0" \
	"the 10th run fits exactly"
is "$(q "SELECT ipai.consume_entitlement('$TEN', 'ai_runs', 1)" | grep -o 'usage limit reached[^"]*"ai_runs"')" \
	'usage limit reached for feature "ai_runs"' "the 11th is refused (IP001): the limit is still exact"
is "$(psql -X -q -At -d postgres -v VERBOSITY=verbose -c "SELECT ipai.consume_entitlement('$TEN', 'ai_runs', 1)" 2>&1 | grep -o '^ERROR: *IP001' | head -1)" "ERROR:  IP001" "with SQLSTATE IP001"

# 2. killed between finalizing a committed hold and the commit
PGAPPNAME=crash_finalize psql -X -q -d postgres >/dev/null 2>&1 <<SQL &
BEGIN;
SELECT ipai.finalize_hold('$hold', 2);
SELECT pg_sleep(120);
COMMIT;
SQL
bg+=($!)
if wait_blocked crash_finalize sleep; then ok "a session finalized the committed hold and sleeps before its commit"; else nok "a session finalized the committed hold and sleeps before its commit"; fi
if kill9 "$(backend_pid crash_finalize)"; then ok "kill -9 of it; the server restarted"; else nok "kill -9 of it; the server restarted"; fi
is "$(q "SELECT status || ',' || (actual_quantity IS NULL) FROM ipai.usage_holds WHERE id = '$hold'")" "active,true" \
	"the hold is still active, unfinalized"
invariants "after the second crash" "2,2,10,10"
is "$(q "SELECT current || ',' || remaining FROM ipai.check_entitlement('$TEN', 'ai_runs')")" "10,0" "it still counts (8 used + 2 held)"
is "$(q "SELECT ipai.finalize_hold('$hold', 2)")|$(q "SELECT ipai.finalize_hold('$hold', 2)")" "t|f" \
	"finalized after the crash: recorded once, the same call again changes nothing"
is "$(q "SELECT used || ',' || held FROM ipai.usage_counters WHERE org_id = '$TEN'")" "10,0" "10 used, nothing held"
is "$(psql -X -q -At -d postgres -v VERBOSITY=verbose -c "SELECT ipai.release_hold('$hold')" 2>&1 | grep -o '^ERROR: *22023' | head -1)" "ERROR:  22023" \
	"releasing the finalized hold is refused (22023)"
invariants "at the end" "2,2,10,10"
is "$(q "SELECT reason FROM ipai.consume_entitlement('$PRO', 'ai_runs', 7, 'killed-p')")" unlimited \
	"the killed metered consume goes through when retried"
is "$(q "SELECT count(*) || ',' || sum((payload->>'value')::bigint) FROM ipai.outbox WHERE topic = 'stripe.meter_event'")" "3,17" \
	"with its one meter event"
crash_done
