-- Metering cache invalidation triggers: they fire (and so signal every
-- backend through ipai._usage_cache_signal) when, and only when, something
-- the caches hold changes; never a relcache invalidation of the source
-- table.  Counted by ipai._usage_cache_signals().  That the
-- signal reaches other backends is test/isolation/specs/
-- metering_cache_invalidation.spec.
BEGIN;
SELECT plan(24);
SET LOCAL client_min_messages = warning;
SET LOCAL track_functions = 'all';

-- signals sent so far by this backend (ipai._usage_cache_invalidate and
-- ipai._usage_subscription_changed('cache'), which decides in C)
CREATE FUNCTION pg_temp.signals() RETURNS bigint LANGUAGE sql VOLATILE AS $$
	SELECT ipai._usage_cache_signals()
$$;
-- how many signals a statement sent
CREATE FUNCTION pg_temp.signals_of(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	before bigint := pg_temp.signals();
BEGIN
	EXECUTE q;
	RETURN pg_temp.signals() - before;
END
$$;

-- the signal relation: no rows, no columns, RLS, nobody may write it
SELECT has_table('ipai', '_usage_cache_signal', 'the signal relation exists');
SELECT is((SELECT relnatts::int FROM pg_class WHERE oid = 'ipai._usage_cache_signal'::regclass), 0,
		  'the signal relation has no columns');
SELECT ok(NOT has_table_privilege('authenticated', 'ipai._usage_cache_signal', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
		  AND NOT has_table_privilege('anon', 'ipai._usage_cache_signal', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
		  'no privileges on the signal relation for anon and authenticated');

SELECT is(pg_temp.signals_of($$INSERT INTO ipai.organizations (id, name, plan_id, timezone)
	VALUES ('5e000000-0000-4000-8000-000000000001', 'Cache', 'free', 'UTC'),
		   ('5e000000-0000-4000-8000-000000000002', 'Cache 2', 'free', 'UTC')$$), 0::bigint,
		  'a new organization: nothing cached yet, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.organizations SET name = 'Cache renamed', updated_at = now()
	WHERE id = '5e000000-0000-4000-8000-000000000001'$$), 0::bigint,
		  'organization: name changed, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.organizations SET plan_id = plan_id, timezone = timezone
	WHERE id = '5e000000-0000-4000-8000-000000000001'$$), 0::bigint,
		  'organization: plan and time zone set to the same values, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.organizations SET timezone = 'Asia/Manila'
	WHERE id = '5e000000-0000-4000-8000-000000000001'$$), 1::bigint,
		  'organization: time zone changed, a signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.organizations SET plan_id = 'pro'
	WHERE id::text LIKE '5e000000-%'$$), 2::bigint,
		  'organization: plan changed, a signal per row');

SELECT is(pg_temp.signals_of($$INSERT INTO ipai.subscriptions (org_id, stripe_subscription_id, status, plan_id,
		current_period_start, current_period_end)
	VALUES ('5e000000-0000-4000-8000-000000000001', 'sub_cache', 'active', 'pro',
			'2026-03-15 00:00+00', '2026-04-15 00:00+00')$$), 1::bigint,
		  'subscription inserted, a signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions
	SET cancel_at_period_end = true, last_event_id = 'evt_x', last_event_type = 'customer.subscription.updated',
		last_event_created = now(), quantity = 3, updated_at = now()
	WHERE stripe_subscription_id = 'sub_cache'$$), 0::bigint,
		  'subscription: columns the caches do not read changed, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions
	SET org_id = org_id, status = status, plan_id = plan_id,
		current_period_start = current_period_start, current_period_end = current_period_end
	WHERE stripe_subscription_id = 'sub_cache'$$), 0::bigint,
		  'subscription: cached columns set to the same values, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions SET status = 'past_due'
	WHERE stripe_subscription_id = 'sub_cache'$$), 0::bigint,
		  'subscription: status changed between two that grant the plan (active, past_due), no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions SET status = 'unpaid'
	WHERE stripe_subscription_id = 'sub_cache'$$), 1::bigint,
		  'subscription: status changed to one that does not grant the plan, a signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions SET plan_id = 'free'
	WHERE stripe_subscription_id = 'sub_cache'$$), 0::bigint,
		  'subscription: plan changed, no signal (the caches keep the organization''s plan)');
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions
	SET current_period_start = '2026-04-15 00:00+00', current_period_end = '2026-05-15 00:00+00'
	WHERE stripe_subscription_id = 'sub_cache'$$), 1::bigint,
		  'subscription: period renewed, a signal');
SET LOCAL session_replication_role = replica;
SELECT is(pg_temp.signals_of($$UPDATE ipai.subscriptions SET status = 'active'
	WHERE stripe_subscription_id = 'sub_cache'$$), 1::bigint,
		  'subscription: status changed under session_replication_role = replica, a signal');
RESET session_replication_role;
SELECT is(pg_temp.signals_of($$DELETE FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_cache'$$), 1::bigint,
		  'subscription deleted, a signal');

SELECT is(pg_temp.signals_of($$INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
	VALUES ('5e000000-0000-4000-8000-000000000001', 'cus_cache')$$), 1::bigint,
		  'Stripe customer inserted, a signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.billing_customers SET email = 'billing@example.com', updated_at = now()
	WHERE org_id = '5e000000-0000-4000-8000-000000000001'$$), 0::bigint,
		  'Stripe customer: email changed, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.billing_customers SET stripe_customer_id = 'cus_cache2'
	WHERE org_id = '5e000000-0000-4000-8000-000000000001'$$), 1::bigint,
		  'Stripe customer: id changed, a signal');

SELECT is(pg_temp.signals_of($$UPDATE ipai.plan_entitlements SET max_quantity = max_quantity
	WHERE plan_id = 'free'$$), 0::bigint,
		  'entitlements set to the same values, no signal');
SELECT is(pg_temp.signals_of($$UPDATE ipai.plan_entitlements SET max_quantity = 101
	WHERE plan_id = 'free' AND feature = 'ai_runs'$$), 1::bigint,
		  'entitlement changed, a signal');

SELECT is(pg_temp.signals_of($$DELETE FROM ipai.organizations WHERE id::text LIKE '5e000000-%'$$), 3::bigint,
		  'organizations deleted: a signal per row, and per cascaded Stripe customer');
SELECT is(pg_temp.signals_of($$TRUNCATE ipai.billing_customers$$), 1::bigint,
		  'TRUNCATE: a signal');

SELECT * FROM finish();
ROLLBACK;
