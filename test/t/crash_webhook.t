#!/usr/bin/env bash
# kill -9 in the middle of a Stripe webhook delivery, then redelivery (TAP),
# on a cluster of its own (test/crash/lib.sh).
#  1. A delivery blocked inside ipai.stripe_webhook (another session holds
#     the organization row, which applying a subscription needs) is killed
#     with SIGKILL: the postmaster restarts every backend (crash recovery);
#     nothing of it is left, and Stripe's redelivery applies the event once.
#  2. A delivery that returned "processed" but whose transaction had not
#     committed (the session sleeps after the call), with a duplicate
#     delivery of the same event waiting behind it, is killed: the event is
#     neither applied nor in the inbox; redelivered, it is processed once
#     and every later delivery is a duplicate.
#  3. What committed before the crash survives it: a delivered invoice
#     event is a duplicate after recovery and its invoice row is unchanged.
# Afterwards: one inbox row per event, processed once, one audit row per
# applied change, the subscription in the state of its latest event and
# the organization on the plan that state grants.
set -uo pipefail
. "$IPAI_SRC/test/crash/lib.sh"
crash_cluster "$0" "$@"
bg=()
trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done' EXIT

crash_install
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$IPAI_SRC/test/fixtures/stripe/billing_events.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name) VALUES ('c7000000-0000-4000-8000-000000000001', 'Crash Webhook');
-- the events of this story, built once (payloads are compared byte for byte
-- by the signature: a redelivery is the same bytes)
CREATE TABLE public.evt (name text PRIMARY KEY, payload text NOT NULL);
INSERT INTO public.evt VALUES
 ('created', stripe_fixture.subscription_event('evt_crash_1', 'customer.subscription.created',
	stripe_fixture.unix(now()) - 300, 'sub_crash', 'cus_crash', 'active',
	org => 'c7000000-0000-4000-8000-000000000001')),
 ('invoice', stripe_fixture.invoice_event('evt_crash_inv', 'invoice.paid',
	stripe_fixture.unix(now()) - 250, 'in_crash', 'cus_crash', 'sub_crash', 'paid',
	org => 'c7000000-0000-4000-8000-000000000001')),
 ('updated', stripe_fixture.subscription_event('evt_crash_2', 'customer.subscription.updated',
	stripe_fixture.unix(now()) - 200, 'sub_crash', 'cus_crash', 'past_due',
	org => 'c7000000-0000-4000-8000-000000000001'));
SQL
deliver() { q "SELECT d.status FROM public.evt e, stripe_fixture.deliver(e.payload) d WHERE e.name = '$1'"; }
ORG=c7000000-0000-4000-8000-000000000001

# 1. killed while blocked inside ipai.stripe_webhook
PGAPPNAME=crash_lock psql -X -q -d postgres >/dev/null 2>&1 <<SQL &
BEGIN;
SELECT 1 FROM ipai.organizations WHERE id = '$ORG' FOR UPDATE;
SELECT pg_sleep(120);
SQL
bg+=($!)
wait_blocked crash_lock sleep || nok "the lock holder sleeps"
PGAPPNAME=crash_victim1 psql -X -q -d postgres >/dev/null 2>&1 <<'SQL' &
SELECT d.* FROM public.evt e, stripe_fixture.deliver(e.payload) d WHERE e.name = 'created';
SQL
bg+=($!)
if wait_blocked crash_victim1 lock; then
	ok "a delivery of customer.subscription.created waits inside ipai.stripe_webhook for the organization row"
else
	nok "a delivery of customer.subscription.created waits inside ipai.stripe_webhook for the organization row" \
		"$(q "SELECT application_name, state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE application_name LIKE 'crash%'")"
fi
victim=$(backend_pid crash_victim1)
if kill9 "$victim"; then ok "kill -9 of the delivering backend; the server restarted and is ready"; else nok "kill -9 of the delivering backend; the server restarted and is ready"; fi
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crash%'")" 0 \
	"the crash restart ended every session (the lock holder too)"
is "$(q "SELECT count(*) FROM ipai.webhook_events")|$(q "SELECT count(*) FROM ipai.subscriptions")|$(q "SELECT count(*) FROM ipai.audit_log WHERE action LIKE 'subscription.%' OR action = 'organization.plan'")" \
	"0|0|0" "nothing of the killed delivery is left: no inbox row, no subscription, no audit row"
is "$(deliver created)" processed "Stripe's redelivery is processed"
is "$(deliver created)" duplicate "and the next one is a duplicate"
is "$(q "SELECT plan_id FROM ipai.organizations WHERE id = '$ORG'")" pro "the organization is on pro"

# 3. (first half) a committed delivery before the next crash
is "$(deliver invoice)" processed "invoice.paid is delivered and committed"

# 2. killed after the call, before the commit, with a duplicate waiting
PGAPPNAME=crash_victim2 psql -X -q -d postgres >/dev/null 2>&1 <<'SQL' &
BEGIN;
SELECT d.* FROM public.evt e, stripe_fixture.deliver(e.payload) d WHERE e.name = 'updated';
SELECT pg_sleep(120);
COMMIT;
SQL
bg+=($!)
if wait_blocked crash_victim2 sleep; then ok "a delivery of the update returned and sleeps in its transaction"; else nok "a delivery of the update returned and sleeps in its transaction"; fi
PGAPPNAME=crash_dup psql -X -q -d postgres >/dev/null 2>&1 <<'SQL' &
SELECT d.* FROM public.evt e, stripe_fixture.deliver(e.payload) d WHERE e.name = 'updated';
SQL
bg+=($!)
if wait_blocked crash_dup lock; then ok "a duplicate delivery waits for it"; else nok "a duplicate delivery waits for it"; fi
is "$(q "SELECT status FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_crash'")" active \
	"others still see the subscription active (the update is uncommitted)"
victim=$(backend_pid crash_victim2)
if kill9 "$victim"; then ok "kill -9 of the backend before its commit; the server restarted"; else nok "kill -9 of the backend before its commit; the server restarted"; fi
is "$(q "SELECT count(*) FROM ipai.webhook_events WHERE event_id = 'evt_crash_2'")" 0 \
	"neither the killed delivery nor the waiting duplicate left an inbox row"
is "$(q "SELECT status || ',' || last_event_id FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_crash'")" \
	"active,evt_crash_1" "the subscription is as the last committed event left it"
is "$(deliver updated)" processed "the redelivered update is processed"
is "$(deliver updated)|$(deliver updated)" "duplicate|duplicate" "later deliveries are duplicates"
is "$(deliver invoice)" duplicate "the invoice event committed before the crash is a duplicate after it"

# the final state
is "$(q "SELECT string_agg(event_id || ':' || status || ':' || deliveries || ':' || (processed_at IS NOT NULL), ' ' ORDER BY event_id) FROM ipai.webhook_events")" \
	"evt_crash_1:processed:2:true evt_crash_2:processed:3:true evt_crash_inv:processed:2:true" \
	"one inbox row per event, processed, counting only the deliveries that committed"
is "$(q "SELECT string_agg(action || '@' || (new_values->>'event_id'), ' ' ORDER BY id) FROM ipai.audit_log WHERE action IN ('subscription.create', 'subscription.update', 'invoice.create', 'invoice.update')")" \
	"subscription.create@evt_crash_1 invoice.create@evt_crash_inv subscription.update@evt_crash_2" \
	"each event applied (audited) exactly once, in the order they committed"
is "$(q "SELECT count(*) FROM ipai.audit_log WHERE action = 'organization.plan'")" 1 "one plan change (free to pro)"
is "$(q "SELECT count(*) || ',' || min(status) || ',' || min(last_event_id) || ',' || min(org_id::text) FROM ipai.subscriptions")" \
	"1,past_due,evt_crash_2,$ORG" "one subscription, in the state of its latest event"
is "$(q "SELECT count(*) || ',' || min(status) FROM ipai.invoices")" "1,paid" "one invoice, paid"
is "$(q "SELECT plan_id FROM ipai.organizations WHERE id = '$ORG'")" pro "past_due keeps the plan: pro"
crash_done
