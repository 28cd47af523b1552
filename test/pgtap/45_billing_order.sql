-- Billing: any delivery order gives the same final state.
--
-- A realistic subscription history of 5 events (created incomplete,
-- updated to trialing, updated to active with the next period, invoice
-- paid, deleted) is delivered in all 120 orders, each order to its own
-- organization, in three variants:
--   A  distinct seconds, every event names its organization (metadata);
--   B  all five events in the same second (ties);
--   C  distinct seconds, no metadata: every event is deferred until a
--      checkout.session.completed, delivered at a varying position, links
--      customer and subscription.
-- Plus the 4-event history without the deletion (24 orders, distinct and
-- tied seconds): the organization ends on pro, on the later period.
BEGIN;
SELECT plan(19);
\ir ../fixtures/stripe/billing_events.sql
SET LOCAL client_min_messages = warning;

-- 600 organizations: skip the time zone check (it reads the whole zone
-- database, ~50 ms a row); every organization here is in UTC
ALTER TABLE ipai.organizations DISABLE TRIGGER organizations_check_timezone;

SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';

-- the history of one subscription; times in seconds from 2025-01-01
CREATE FUNCTION pg_temp.history(tag text, org uuid, tied boolean, with_metadata boolean)
	RETURNS TABLE (k int, payload text)
	LANGUAGE plpgsql AS $$
DECLARE
	s1 bigint := 1735689600;					-- trial starts
	s2 bigint := 1735689600 + 14 * 86400;		-- first paid period starts
	e2 bigint := 1735689600 + 45 * 86400;		-- and ends
	t bigint[] := CASE WHEN tied THEN ARRAY[s1 + 5, s1 + 5, s1 + 5, s1 + 5, s1 + 5]
					   ELSE ARRAY[s1 + 5, s1 + 6, s2 + 1, s2 + 2, s1 + 20 * 86400] END;
	sub text := 'sub_' || tag;
	cus text := 'cus_' || tag;
	meta uuid := CASE WHEN with_metadata THEN org END;
BEGIN
	RETURN QUERY VALUES
	(1, stripe_fixture.subscription_event('evt_' || tag || '_1', 'customer.subscription.created',
		t[1], sub, cus, 'incomplete', period_start => s1, period_end => s2, org => meta)),
	(2, stripe_fixture.subscription_event('evt_' || tag || '_2', 'customer.subscription.updated',
		t[2], sub, cus, 'trialing', period_start => s1, period_end => s2, org => meta)),
	(3, stripe_fixture.subscription_event('evt_' || tag || '_3', 'customer.subscription.updated',
		t[3], sub, cus, 'active', period_start => s2, period_end => e2, org => meta)),
	(4, stripe_fixture.invoice_event('evt_' || tag || '_4', 'invoice.paid',
		t[4], 'in_' || tag, cus, sub, 'paid', org => meta, period_start => s2, period_end => e2)),
	(5, stripe_fixture.subscription_event('evt_' || tag || '_5', 'customer.subscription.deleted',
		t[5], sub, cus, 'canceled', period_start => s2, period_end => e2, org => meta));
END
$$;

-- every order of n events: arrays of 1..n
CREATE FUNCTION pg_temp.permutations(n int) RETURNS SETOF int[]
	LANGUAGE sql AS $$
	WITH RECURSIVE p(perm) AS (
		SELECT ARRAY[i] FROM generate_series(1, n) i
		UNION ALL
		SELECT p.perm || i FROM p, generate_series(1, n) i WHERE i <> ALL (p.perm))
	SELECT perm FROM p WHERE cardinality(perm) = n ORDER BY perm
$$;

-- the final state of one organization, without the per-order id prefix
CREATE FUNCTION pg_temp.final_state(org uuid) RETURNS text
	LANGUAGE sql AS $$
	SELECT concat_ws(' ',
		'org_plan=' || o.plan_id,
		'sub=' || coalesce(s.status, '-') || '/' || coalesce(s.plan_id, '-'),
		'period=' || coalesce(to_char(s.current_period_start AT TIME ZONE 'UTC', 'MM-DD'), '-')
			|| '..' || coalesce(to_char(s.current_period_end AT TIME ZONE 'UTC', 'MM-DD'), '-'),
		'ended=' || coalesce(to_char(s.ended_at AT TIME ZONE 'UTC', 'MM-DD'), '-'),
		'last=' || coalesce(regexp_replace(s.last_event_id, '^.*_', ''), '-'),
		'invoice=' || coalesce((SELECT i.status || '/' || i.amount_paid FROM ipai.invoices i
								 WHERE i.org_id = o.id), '-'),
		'customer=' || (SELECT count(*) FROM ipai.billing_customers c WHERE c.org_id = o.id),
		'open=' || (SELECT count(*) FROM ipai.webhook_events e
					 WHERE e.status = 'deferred'
					   AND e.stripe_subscription_id = s.stripe_subscription_id))
	  FROM ipai.organizations o
	  LEFT JOIN ipai.subscriptions s ON s.org_id = o.id
	 WHERE o.id = org
$$;

CREATE TEMP TABLE outcome (variant text, perm int[], org uuid, final text, statuses text[]);

-- deliver one variant in every order; payloads are built once per variant
-- with placeholders for the order's tag and organization
CREATE FUNCTION pg_temp.run(variant text, n int, tied boolean, with_metadata boolean,
							with_checkout boolean) RETURNS void
	LANGUAGE plpgsql AS $$
DECLARE
	placeholder uuid := '00000000-0000-4000-8000-0000000000ff';
	templates text[];
	checkout_template text;
	perm int[];
	i int := 0;
	org uuid;
	tag text;
	statuses text[];
	j int;
	checkout_at int;
	st text;
BEGIN
	SELECT array_agg(h.payload ORDER BY h.k) INTO templates
	  FROM pg_temp.history('TAG', placeholder, tied, with_metadata) h;
	checkout_template := stripe_fixture.checkout_event('evt_TAG_cs', 1735689604, 'cs_TAG',
													   'cus_TAG', 'sub_TAG', org => placeholder);
	FOR perm IN SELECT * FROM pg_temp.permutations(n) LOOP
		i := i + 1;
		tag := variant || lpad(i::text, 3, '0');
		org := gen_random_uuid();
		INSERT INTO ipai.organizations (id, name) VALUES (org, 'Order ' || tag);
		statuses := '{}';
		checkout_at := CASE WHEN with_checkout THEN (i % (n + 1)) + 1 END;
		FOR j IN 1 .. n + 1 LOOP
			IF j = checkout_at THEN
				SELECT d.status INTO st FROM stripe_fixture.deliver(
					replace(replace(checkout_template, 'TAG', tag), placeholder::text, org::text)) d;
				statuses := statuses || ('cs:' || st);
			END IF;
			IF j <= n THEN
				SELECT d.status INTO st FROM stripe_fixture.deliver(
					replace(replace(templates[perm[j]], 'TAG', tag), placeholder::text, org::text)) d;
				statuses := statuses || (perm[j] || ':' || st);
			END IF;
		END LOOP;
		INSERT INTO outcome VALUES (variant, perm, org, pg_temp.final_state(org), statuses);
	END LOOP;
END
$$;

SELECT pg_temp.run('a', 5, false, true, false);
SELECT pg_temp.run('b', 5, true, true, false);
SELECT pg_temp.run('c', 5, false, false, true);
SELECT pg_temp.run('d', 4, false, true, false);
SELECT pg_temp.run('e', 4, true, true, false);

SELECT is((SELECT count(*) FROM outcome WHERE variant = 'a'), 120::bigint, 'A: 120 orders delivered');
SELECT is((SELECT count(DISTINCT final) FROM outcome WHERE variant = 'a'), 1::bigint,
		  'A: every order ends in the same state');
SELECT is((SELECT min(final) FROM outcome WHERE variant = 'a'),
		  'org_plan=free sub=canceled/pro period=01-15..02-15 ended=01-21 last=5 invoice=paid/9900 customer=1 open=0',
		  'A: canceled on the latest period, invoice paid, back on free');
SELECT is((SELECT count(*) FROM outcome o, unnest(o.statuses) s
			WHERE o.variant = 'a' AND s NOT LIKE '%:processed'), 0::bigint,
		  'A: every delivery is processed (an older one changes nothing)');

SELECT is((SELECT count(*) FROM outcome WHERE variant = 'b'), 120::bigint, 'B: 120 orders delivered');
SELECT is((SELECT count(DISTINCT final) FROM outcome WHERE variant = 'b'), 1::bigint,
		  'B: same-second events: every order ends in the same state');
SELECT is((SELECT min(final) FROM outcome WHERE variant = 'b'),
		  'org_plan=free sub=canceled/pro period=01-15..02-15 ended=01-01 last=5 invoice=paid/9900 customer=1 open=0',
		  'B: the deletion wins the tie, and the later period with it');

SELECT is((SELECT count(*) FROM outcome WHERE variant = 'c'), 120::bigint, 'C: 120 orders delivered');
SELECT is((SELECT count(DISTINCT final) FROM outcome WHERE variant = 'c'), 1::bigint,
		  'C: deferred until the checkout links them: every order ends in the same state');
SELECT is((SELECT min(final) FROM outcome WHERE variant = 'c'),
		  'org_plan=free sub=canceled/pro period=01-15..02-15 ended=01-21 last=5 invoice=paid/9900 customer=1 open=0',
		  'C: the same state as with metadata, nothing left deferred');
SELECT ok((SELECT bool_and(o.statuses[1] = 'cs:processed' OR o.statuses[1] LIKE '%:deferred')
			 FROM outcome o WHERE o.variant = 'c'),
		  'C: events before the checkout are deferred');
SELECT is((SELECT count(*) FROM outcome o, unnest(o.statuses[array_position(o.statuses, 'cs:processed') + 1:]) s
			WHERE o.variant = 'c' AND s NOT LIKE '%:processed'), 0::bigint,
		  'C: events after the checkout are processed at once');
SELECT is((SELECT count(*) FROM ipai.webhook_events e JOIN outcome o ON o.org = e.org_id
			WHERE o.variant = 'c' AND e.status <> 'processed'), 0::bigint,
		  'C: every deferred event was applied when the link arrived');

SELECT is((SELECT count(*) FROM outcome WHERE variant IN ('d', 'e')), 48::bigint,
		  'D, E: 24 orders each of the history without the deletion');
SELECT is((SELECT count(DISTINCT final) FROM outcome WHERE variant = 'd'), 1::bigint,
		  'D: every order ends in the same state');
SELECT is((SELECT min(final) FROM outcome WHERE variant = 'd'),
		  'org_plan=pro sub=active/pro period=01-15..02-15 ended=- last=3 invoice=paid/9900 customer=1 open=0',
		  'D: active on the later period: the organization is on pro');
SELECT is((SELECT count(DISTINCT final) FROM outcome WHERE variant = 'e'), 1::bigint,
		  'E: same-second events: every order ends in the same state');
SELECT is((SELECT min(final) FROM outcome WHERE variant = 'e'),
		  'org_plan=pro sub=active/pro period=01-15..02-15 ended=- last=3 invoice=paid/9900 customer=1 open=0',
		  'E: the later current_period_end wins the tie');

-- the audit trail of one order shows every applied change, never a revival
SELECT is((SELECT count(*) FROM ipai.audit_log a JOIN outcome o ON o.org = a.org_id
			WHERE o.variant = 'a' AND a.action = 'subscription.update'
			  AND a.old_values->>'status' = 'canceled'), 0::bigint,
		  'a canceled subscription is never updated again');

SELECT * FROM finish();
ROLLBACK;
