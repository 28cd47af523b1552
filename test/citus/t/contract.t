#!/usr/bin/env bash
# The contract on a Citus cluster (TAP): a coordinator and two workers
# (test/citus/cluster.sh), callers on the coordinator.  install_schema
# (distributed => true) and what it makes of each table; the data of an
# existing install moving to the workers; tenancy and RLS with the
# caller's identity (SET LOCAL or set_config(), carried to the workers by
# src/citus_identity.c); metering
# through the delegated functions; webhooks; the CMS workflow; what lives
# where.
set -uo pipefail
. "$IPAI_SRC/test/citus/lib.sh"
db=ipai_citus_contract
TAP_DIAG="tail -20"
. "$IPAI_SRC/test/lib/tap.sh"
q() { psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 "$@" 2>&1; }
TMPDIR_C=$(mktemp -d)
trap 'q -c "ALTER SYSTEM RESET ipai.scheduler_database" -c "SELECT pg_reload_conf()" >/dev/null 2>&1; citus_drop_db "$db"; rm -rf "$TMPDIR_C"' EXIT

# an existing single-node install with data, distributed afterwards
citus_db "$db" >/dev/null
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION ipai_saas CASCADE" -c "SELECT ipai.install_schema()" >/dev/null
q <<'SQL' >/dev/null
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('c1000000-0000-4000-8000-00000000000a', 'Acme', 'free'),
	('c1000000-0000-4000-8000-00000000000b', 'Globex', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('c1000000-0000-4000-8000-00000000000a', 'c1000000-0000-4000-8000-0000000000a1', 'owner'),
	('c1000000-0000-4000-8000-00000000000a', 'c1000000-0000-4000-8000-0000000000a2', 'editor'),
	('c1000000-0000-4000-8000-00000000000b', 'c1000000-0000-4000-8000-0000000000b1', 'owner');
SELECT ipai.record_usage('c1000000-0000-4000-8000-00000000000a', 'ai_runs', 40);
SQL
out=$(q -c "SET client_min_messages = warning" -c "SELECT ipai.install_schema(distributed => true)")
is "$out" "ipai schema is up to date at version 4" "install_schema(distributed => true) on an existing install"
is "$(q -c "SELECT string_agg(logicalrelid::text || ':' || CASE partmethod WHEN 'h' THEN 'distributed' ELSE 'reference' END, ' ' ORDER BY logicalrelid::text)
              FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ipai.%' AND partmethod = 'n'")" \
	"ipai._usage_cache_signal:reference ipai.plan_entitlements:reference ipai.plans:reference ipai.schema_version:reference ipai.webhook_events:reference ipai.webhook_secrets:reference" \
	"the shared catalogues and the webhook inbox are reference tables"
is "$(q -c "SELECT count(DISTINCT colocationid) || ' ' || count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ipai.%' AND partmethod = 'h'")" \
	"1 17" "the 16 organization-owned tables and the notification relay are distributed, colocated"
is "$(q -c "SELECT string_agg(p.proname || ':' || d.distribution_argument_index, ' ' ORDER BY p.proname)
              FROM pg_dist_object d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
             WHERE p.pronamespace = 'ipai'::regnamespace AND d.distribution_argument_index IS NOT NULL")" \
	"check_entitlement:0 consume_entitlement:0 preview_invoice:0 record_usage:0 reserve_entitlement:0" \
	"the organization-scoped functions are delegated by their organization"
is "$(q -c "SELECT ipai.install_schema(distributed => true)")" "ipai schema is up to date at version 4" "calling it again changes nothing"
is "$(q -c "SELECT count(*) FROM ipai.org_members")|$(q -c "SELECT current FROM ipai.check_entitlement('c1000000-0000-4000-8000-00000000000a', 'ai_runs')")" \
	"3|40" "the rows moved to the workers"
is "$(q -c "SELECT count(DISTINCT nodeport) || ' ' || bool_and(nodeport <> $CITUS_COORDINATOR_PORT) FROM citus_shards WHERE citus_table_type = 'distributed'")" \
	"2 true" "their shards are on the two workers, none on the coordinator"

# tenancy: a new organization, members, RLS with the caller's identity
acme=c1000000-0000-4000-8000-00000000000a
new=$(q -c "SELECT ipai.create_organization('Initech', 'c1000000-0000-4000-8000-0000000000c1')")
[ -n "$new" ] && [ "${#new}" = 36 ] && ok "create_organization" || nok "create_organization" "$new"
as_user() { # user sql
	q -c "BEGIN" -c "SET LOCAL ROLE authenticated" -c "SET LOCAL ipai.user_id = '$1'" -c "$2" -c "COMMIT" | grep -v '^$'
}
is "$(as_user c1000000-0000-4000-8000-0000000000a2 "SELECT string_agg(name, ',' ORDER BY name) FROM ipai.organizations")" \
	"Acme" "RLS on the workers: a member sees only their organization (SET LOCAL ipai.user_id reaches the workers)"
is "$(as_user c1000000-0000-4000-8000-0000000000c1 "SELECT count(*) FROM ipai.org_members")" \
	"1" "another user sees their own"
is "$(q -c "BEGIN" -c "SET LOCAL ROLE authenticated" -c "SELECT count(*) FROM ipai.organizations" -c "COMMIT" | grep -v '^$')" \
	"0" "nobody: nothing (fails closed)"
claims='{"sub":"c1000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
is "$(q -c "BEGIN" -c "SET LOCAL ROLE authenticated" -c "SET LOCAL request.jwt.claims = '$claims'" \
	-c "SELECT string_agg(name, ',') FROM ipai.organizations" -c "COMMIT" | grep -v '^$')" \
	"Acme" "JWT claims set with SET LOCAL reach the workers"
# the PostgREST way: SET LOCAL ROLE, claims with set_config(..., true)
postgrest() { # claims sql...
	local c=$1
	shift
	q -c "BEGIN" -c "SET LOCAL ROLE authenticated" -c "SELECT set_config('request.jwt.claims', '$c', true)" "$@" -c "COMMIT" | sed '1d' | grep -v '^$'
}
is "$(postgrest "$claims" -c "SELECT string_agg(name, ',') FROM ipai.organizations")" \
	"Acme" "JWT claims set with set_config() reach the workers (RLS)"
is "$(postgrest "$claims" -c "SELECT count(*) FROM ipai.org_members" -c "SELECT set_config('request.jwt.claims', '{\"sub\":\"c1000000-0000-4000-8000-0000000000c1\",\"role\":\"authenticated\"}', true)" -c "SELECT string_agg(name, ',') FROM ipai.organizations")" \
	"$(printf '2\n{"sub":"c1000000-0000-4000-8000-0000000000c1","role":"authenticated"}\nInitech')" \
	"a new identity in the same transaction replaces the old one on the workers"
is "$(postgrest "$claims" -c "SELECT allowed FROM ipai.check_entitlement('$acme', 'ai_runs')")" \
	"t" "a member calls a delegated function with set_config() claims"
is "$(q -c "SET ROLE authenticated" -c "SET ipai.user_id = 'c1000000-0000-4000-8000-0000000000a2'" \
	-c "SELECT allowed FROM ipai.check_entitlement('$acme', 'ai_runs')" -c "SELECT (ipai.check_entitlement('$acme', 'ai_runs')).allowed" | tr '\n' ' ')" \
	"t t " "a member with a session SET calls it outside a transaction block (kept on the coordinator)"
err=$(postgrest '{"sub":"c1000000-0000-4000-8000-0000000000c1","role":"authenticated"}' -c "SELECT ipai.check_entitlement('$acme', 'ai_runs')" 2>&1)
case "$err" in *"permission denied"*) ok "a non-member calling it is refused (42501)";; *) nok "a non-member calling it is refused" "$err";; esac

# metering through the delegated functions
is "$(q -c "SELECT (ipai.consume_entitlement('$acme', 'ai_runs', 50)).current")" "90" "consume_entitlement (delegated)"
is "$(q -c "SELECT current FROM ipai.consume_entitlement('$acme', 'ai_runs', 10)")" "100" "consume_entitlement (FROM clause)"
err=$(q -c "SELECT ipai.consume_entitlement('$acme', 'ai_runs', 1)" 2>&1)
case "$err" in *"usage limit reached"*) ok "over the hard limit: the same error";; *) nok "over the hard limit: the same error" "$err";; esac
is "$(q -c "SELECT allowed || ',' || current || ',' || max FROM ipai.check_entitlement('$acme', 'ai_runs')")" "false,100,100" "check_entitlement"
is "$(q -c "SELECT ipai.record_usage('c1000000-0000-4000-8000-00000000000b', 'ai_runs', 2, 'k1')")|$(q -c "SELECT ipai.record_usage('c1000000-0000-4000-8000-00000000000b', 'ai_runs', 2, 'k1')")" \
	"t|f" "record_usage with an idempotency key"
hold=$(q -c "SELECT ipai.reserve_entitlement('c1000000-0000-4000-8000-00000000000b', 'ai_runs', 5, '10 minutes')")
[ "${#hold}" = 36 ] && ok "reserve_entitlement" || nok "reserve_entitlement" "$hold"
is "$(q -c "SELECT metered_quantity FROM ipai.preview_invoice('c1000000-0000-4000-8000-00000000000b')")" "2" "preview_invoice: the two metered runs recorded above"

# webhooks: signed deliveries on the coordinator, applied on the workers
secret=whsec_citus_contract
q -c "SELECT ipai.set_stripe_webhook_secret('$secret')" >/dev/null
q -c "UPDATE ipai.plans SET stripe_price_id = 'price_citus_pro' WHERE id = 'pro'" >/dev/null
deliver() { # json
	q -v payload="$1" -v secret="$secret" <<'SQL'
SELECT status FROM ipai.stripe_webhook(:'payload', ipai.stripe_sign(:'payload', :'secret'));
SQL
}
t=$(date +%s)
checkout="{\"id\":\"evt_citus_1\",\"object\":\"event\",\"type\":\"checkout.session.completed\",\"created\":$t,\"data\":{\"object\":{\"id\":\"cs_citus_1\",\"object\":\"checkout.session\",\"mode\":\"subscription\",\"client_reference_id\":\"$acme\",\"customer\":\"cus_citus_acme\",\"subscription\":\"sub_citus_acme\",\"metadata\":{\"org_id\":\"$acme\"}}}}"
is "$(deliver "$checkout")" "processed" "checkout.session.completed: processed"
is "$(deliver "$checkout")" "duplicate" "the same event again: duplicate"
sub="{\"id\":\"evt_citus_2\",\"object\":\"event\",\"type\":\"customer.subscription.updated\",\"created\":$((t + 1)),\"data\":{\"object\":{\"id\":\"sub_citus_acme\",\"object\":\"subscription\",\"customer\":\"cus_citus_acme\",\"status\":\"active\",\"metadata\":{\"org_id\":\"$acme\"},\"current_period_start\":$((t - 3600)),\"current_period_end\":$((t + 86400 * 30)),\"items\":{\"data\":[{\"price\":{\"id\":\"price_citus_pro\"},\"current_period_start\":$((t - 3600)),\"current_period_end\":$((t + 86400 * 30))}]}}}}"
is "$(deliver "$sub")" "processed" "customer.subscription.updated: processed"
is "$(q -c "SELECT plan_id FROM ipai.organizations WHERE id = '$acme'")" "pro" "the plan follows the subscription"

# the CMS workflow through the coordinator
as() { # user sql...
	local u=$1
	shift
	q -c "BEGIN" -c "SET LOCAL ROLE authenticated" -c "SET LOCAL ipai.user_id = '$u'" "$@" -c "COMMIT" | grep -v '^$'
}
(psql -X -q -At -d "$db" -c "LISTEN cms_approvals" -c "SELECT pg_sleep(5)" -c "SELECT 1" >"$TMPDIR_C/approvals" 2>&1) &
approvals_listener=$!
page=$(as c1000000-0000-4000-8000-0000000000a2 -c "SELECT ipai.cms_create_page('$acme', 'Citus launch', '<p>One</p>')")
[ "${#page}" = 36 ] && ok "an editor creates a page" || nok "an editor creates a page" "$page"
as c1000000-0000-4000-8000-0000000000a2 -c "UPDATE ipai.cms_pages SET body = '<p>One two</p>' WHERE id = '$page'" >/dev/null
r=$(as c1000000-0000-4000-8000-0000000000a2 -c "SELECT ipai.cms_request_approval('$page', 'please') IS NOT NULL")
is "$r" "t" "the editor requests approval"
as c1000000-0000-4000-8000-0000000000a1 -c "SELECT ipai.cms_approve('$page', 'ok')" >/dev/null
as c1000000-0000-4000-8000-0000000000a1 -c "SELECT ipai.cms_publish('$page')" >/dev/null
is "$(as c1000000-0000-4000-8000-0000000000a1 -c "SELECT status FROM ipai.cms_pages WHERE id = '$page'")" \
	"published" "the owner approves and publishes"
is "$(q -c "SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM ipai.cms_page_versions WHERE page_id = '$page'")" \
	"1:draft 2:pending 3:approved 4:published" "every status change snapshotted"
err=$(as c1000000-0000-4000-8000-0000000000a2 -c "SELECT ipai.cms_approve('$page')" 2>&1)
case "$err" in *"ERROR"*) ok "the editor may not approve (refused)";; *) nok "the editor may not approve" "$err";; esac
wait "$approvals_listener"
is "$(grep -o 'Asynchronous notification "cms_approvals" with payload "{[^}]*}"' "$TMPDIR_C/approvals" | grep -F "$page" | grep -o '"status" : "[a-z]*"' | tr '\n' ' ')" \
	'"status" : "pending" "status" : "approved" ' \
	"cms_approvals notifications reach a listener on the coordinator, one per change, at commit"
is "$(q -c "SELECT count(*) FROM ipai._notify_relay")" "0" "the relay is empty afterwards"

# team administration
tok=$(q -c "SELECT set_config('ipai.user_id', 'c1000000-0000-4000-8000-0000000000a1', false)" \
	-c "SELECT ipai.invite_member('$acme', 'erin@example.com', 'viewer')" -c "SELECT payload->>'token' FROM ipai.outbox WHERE topic = 'auth.invite' AND payload->>'email' = 'erin@example.com'" | tail -1)
[ "${#tok}" -gt 20 ] && ok "an invitation, its token in the outbox" || nok "an invitation, its token in the outbox" "$tok"
is "$(q -c "SELECT set_config('ipai.user_id', 'c1000000-0000-4000-8000-0000000000e9', false)" -c "SELECT ipai.accept_invitation('$tok')" | tail -1)" \
	"$acme" "accepted by the invited user"

# holds settle through the coordinator (looked up by id, locked by organization)
is "$(q -c "SELECT ipai.finalize_hold('$hold', 3)")|$(q -c "SELECT ipai.finalize_hold('$hold', 3)")" \
	"t|f" "finalize_hold, and again (idempotent)"
h2=$(q -c "SELECT ipai.reserve_entitlement('c1000000-0000-4000-8000-00000000000b', 'ai_runs', 4, '10 minutes')")
is "$(q -c "SELECT ipai.release_hold('$h2')")|$(q -c "SELECT ipai.release_hold('$h2')")" "t|f" "release_hold, and again"

# concurrent consumers at the limit, through the coordinator: exactly the limit
lim=$(q -c "SELECT id FROM ipai.organizations WHERE name = 'Initech'")
q -c "UPDATE ipai.organizations SET plan_id = 'free' WHERE id = '$lim'" >/dev/null
max=$(q -c "SELECT max_quantity FROM ipai.plan_entitlements WHERE plan_id = 'free' AND feature = 'ai_runs'")
for w in 1 2 3 4 5 6; do
	(for i in $(seq 1 $((max / 3 + 5))); do
		q -c "SELECT ipai.consume_entitlement('$lim', 'ai_runs', 1)" >/dev/null 2>&1 && echo ok
	done) >"$TMPDIR_C/consume.$w" &
done
wait
granted=$(cat "$TMPDIR_C"/consume.* | grep -c ok)
is "$granted|$(q -c "SELECT current FROM ipai.check_entitlement('$lim', 'ai_runs')")" "$max|$max" \
	"6 concurrent consumers at the limit: exactly $max granted and counted"

# a plan changed on a worker reaches a coordinator backend's usage cache
# (functions run on the coordinator, inside a DO block, are not delegated)
out=$(q <<SQL 2>&1
DO \$\$ BEGIN RAISE NOTICE 'max %', (SELECT max FROM ipai.check_entitlement('$lim', 'ai_runs')); END \$\$;
\! psql -X -q -d $db -c "UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = '$lim'"
DO \$\$ BEGIN RAISE NOTICE 'max %', (SELECT max FROM ipai.check_entitlement('$lim', 'ai_runs')); END \$\$;
SQL
)
is "$(printf '%s\n' "$out" | grep -o 'max .*' | tr '\n' ' ')" "max 100 max <NULL> " \
	"a coordinator backend sees a plan changed on a worker at its next transaction"

# several organizations in one statement (the shards' triggers run in parallel)
q -c "INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
      SELECT id, 'cus_multi_' || name FROM ipai.organizations WHERE id <> '$acme'
      ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id" >/dev/null 2>&1 \
	&& ok "a customer linked for several organizations in one INSERT" \
	|| nok "a customer linked for several organizations in one INSERT" "$(q -c "INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) SELECT id, 'cus_multi_' || name FROM ipai.organizations WHERE id <> '$acme' ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id")"

# scheduled publishing: the worker on the coordinator finds schedules made
# on the workers (it looks every second there), to the second
q -c "ALTER SYSTEM SET ipai.scheduler_database = '$db'" -c "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 1 50); do
	[ "$(q -c "SELECT database = '$db' AND state IN ('sleeping', 'working') FROM ipai.scheduler_status()")" = t ] && break
	sleep 0.2
done
(psql -X -q -At -d "$db" -c "LISTEN cms_schedule" -c "SELECT pg_sleep(8)" -c "SELECT 1" >"$TMPDIR_C/listen" 2>&1) &
listener=$!
p2=$(as c1000000-0000-4000-8000-0000000000a2 -c "SELECT ipai.cms_create_page('$acme', 'Citus scheduled', '<p>Later</p>')")
as c1000000-0000-4000-8000-0000000000a2 -c "SELECT ipai.cms_request_approval('$p2')" >/dev/null
as c1000000-0000-4000-8000-0000000000a1 -c "SELECT ipai.cms_approve('$p2', 'ok')" >/dev/null
raw=$(postgrest '{"sub":"c1000000-0000-4000-8000-0000000000a1","role":"authenticated"}' \
	-c "SELECT ipai.cms_schedule_publish('$p2', clock_timestamp() + interval '400 milliseconds')")
sid=$(printf '%s\n' "$raw" | grep -E '^[0-9]+$' | tail -1)
[ -n "$sid" ] && ok "an owner schedules a publication (after SET LOCAL ROLE, the SECURITY DEFINER write reaches the worker as its owner)" \
	|| nok "an owner schedules a publication" "$raw"
for i in $(seq 1 50); do
	[ "$(q -c "SELECT status FROM ipai.cms_schedule WHERE id = ${sid:-0}")" = done ] && break
	sleep 0.2
done
is "$(q -c "SELECT status || ' ' || executed_via || ' ' || (lateness < interval '1 second') FROM ipai.cms_schedule WHERE id = ${sid:-0}")|$(q -c "SELECT status FROM ipai.cms_pages WHERE id = '$p2'")" \
	"done ipai scheduler true|published" "the scheduler worker on the coordinator published it within a second of run_at"
wait "$listener"
grep -q "Asynchronous notification \"cms_schedule\" with payload \".*\"schedule_id\" : ${sid:-x}," "$TMPDIR_C/listen" \
	&& ok "its cms_schedule notification reached a listener on the coordinator" \
	|| nok "its cms_schedule notification reached a listener on the coordinator" "$(cat "$TMPDIR_C/listen")"
is "$(q -c "SELECT ipai.run_due_publications()")|$(q -c "SELECT ipai.recover_stuck_runs()")" "0|0" \
	"run_due_publications and recover_stuck_runs run on the cluster"

# the outbox through the coordinator: leases across organizations
q -c "SELECT set_config('ipai.user_id', 'c1000000-0000-4000-8000-0000000000c1', false)" \
	-c "SELECT ipai.invite_member('$lim', 'frank@example.com', 'viewer')" >/dev/null
inv=$(q -c "SELECT string_agg(id::text, ' ' ORDER BY id) FROM ipai.outbox_claim('auth.invite', 10)")
is "$(echo $inv | wc -w)|$(q -c "SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)")" "2|0" \
	"outbox_claim: the invitations of two organizations, not twice"
set -- $inv
is "$(q -c "SELECT ipai.outbox_mark_failed(${1:-0}, 'timeout')")|$(q -c "SELECT ipai.outbox_mark_sent(${2:-0})")|$(q -c "SELECT ipai.outbox_mark_sent(${2:-0})")" \
	"retry|t|f" "outbox_mark_failed, outbox_mark_sent and again"
q -c "UPDATE ipai.outbox SET next_attempt_at = now() WHERE topic = 'stripe.meter_event' AND sent_at IS NULL" >/dev/null
got=$(q -c "SELECT count(*) || ' ' || count(DISTINCT org_id) FROM ipai.outbox_lease_meter_events(100)")
case "$got" in "0 0") nok "outbox_lease_meter_events across organizations" "$got";; *) ok "outbox_lease_meter_events across organizations ($got)";; esac
is "$(q -c "SELECT count(*) FROM ipai.outbox_lease_meter_events(100)")" "0" "leased rows are not leased twice"

# the dashboard views, on the coordinator, as a member
out=$(postgrest "$claims" -c "SELECT count(*) FROM ipai.org_dashboard" -c "SELECT count(*) FROM ipai.billing_dashboard" \
	-c "SELECT count(*) >= 0 FROM ipai.cms_approval_queue" -c "SELECT count(*) >= 0 FROM ipai.invoice_history" 2>&1 | tr '\n' ' ')
is "$out" "1 1 t t " "the dashboard views work through the coordinator (a member sees their organization)"
is "$(postgrest "$claims" -c "SELECT d.ai_runs_used = (SELECT current FROM ipai.check_entitlement('$acme', 'ai_runs')) AND d.seats_used = o.seats_used AND o.seats_used >= 2 AND d.period_start IS NOT NULL FROM ipai.billing_dashboard d JOIN ipai.org_dashboard o USING (org_id)")" \
	"t" "their figures: usage as check_entitlement counts it, seats, the period"

# operations
is "$(q -c "SELECT count(*) FROM ipai.health() WHERE status = 'error'")" "0" "health() runs on the cluster, no errors"
is "$(q -c "SELECT ipai.refresh_org_usage()")" "0" "refresh_org_usage(): every counter equals its events"

# delegated functions in subqueries and CTEs the planner pulls up (Citus
# 13.2.2's coordinator crashed on them; src/citus_identity.c keeps them on
# the coordinator)
out=$(q -c "SELECT s.c = (SELECT current FROM ipai.check_entitlement('$acme', 'ai_runs', 1)) FROM (SELECT ipai.check_entitlement('$acme', 'ai_runs', 1) AS c) s0, LATERAL (SELECT (s0.c).current AS c) s" \
	-c "SELECT current >= 0 FROM (SELECT * FROM ipai.check_entitlement('$acme', 'ai_runs', 1)) s" \
	-c "WITH c AS (SELECT * FROM ipai.check_entitlement('$acme', 'ai_runs', 1)) SELECT allowed IS NOT NULL FROM c" \
	-c "SELECT count(*) FROM (SELECT * FROM (SELECT ipai.consume_entitlement('$acme', 'ai_runs', 1)) a) b" \
	-c "SELECT 'alive'" 2>&1 | tr '\n' ' ')
is "$out" "t t t 1 alive " "delegated functions in subqueries and CTEs answer, the coordinator stays up"

# an organization deleted through the coordinator takes its rows with it
# (usage_events has no foreign key: a trigger deletes its events, one
# organization at a time on the worker's shard)
others=$(q -c "SELECT count(*) FROM ipai.usage_events WHERE org_id <> '$acme'")
out=$(q -c "DELETE FROM ipai.organizations WHERE id = '$acme'" 2>&1)
is "$out|$(q -c "SELECT (SELECT count(*) FROM ipai.usage_events WHERE org_id = '$acme') + (SELECT count(*) FROM ipai.usage_counters WHERE org_id = '$acme') + (SELECT count(*) FROM ipai.org_members WHERE org_id = '$acme') + (SELECT count(*) FROM ipai.cms_pages WHERE org_id = '$acme')")|$(q -c "SELECT count(*) FROM ipai.usage_events WHERE org_id <> '$acme'")" \
	"|0|$others" "an organization deleted through the coordinator: its events, counters, members and pages go, the others' stay"

tap_done
