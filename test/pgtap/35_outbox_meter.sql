-- Stripe meter events leased for a sender (ipai.outbox_lease_meter_events):
-- rows alone under their own identifier, rows of one customer grouped at
-- volume under an identifier that every resend keeps, groups leased and
-- reported whole, and the rows that cannot be sent settled on the way.
BEGIN;
SELECT plan(38);
SET LOCAL client_min_messages = warning;
SET LOCAL ipai.user_id = '35000000-0000-4000-8000-0000000000f1';
INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('35000000-0000-4000-8000-00000000000a', 'Meter A', 'pro', 'UTC'),
	('35000000-0000-4000-8000-00000000000b', 'Meter B', 'pro', 'UTC'),
	('35000000-0000-4000-8000-00000000000c', 'Meter C (no customer)', 'pro', 'UTC');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES
	('35000000-0000-4000-8000-00000000000a', 'cus_MeterA'),
	('35000000-0000-4000-8000-00000000000b', 'cus_MeterB');

CREATE TEMP VIEW due_meter AS
SELECT * FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND sent_at IS NULL AND dead_at IS NULL;
CREATE TEMP TABLE leased AS SELECT * FROM ipai.outbox_lease_meter_events() WITH NO DATA;
CREATE FUNCTION pg_temp.lease(n integer DEFAULT 100, agg_min integer DEFAULT 20, agg_max integer DEFAULT 1000)
	RETURNS SETOF leased LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE leased;
	INSERT INTO leased SELECT * FROM ipai.outbox_lease_meter_events(n, '2 minutes', agg_min, agg_max);
	RETURN QUERY SELECT * FROM leased;
END $$;
-- a sender that died: its claims are old
CREATE FUNCTION pg_temp.crash() RETURNS void LANGUAGE sql AS $$
	UPDATE ipai.outbox SET claimed_at = now() - interval '1 hour'
	 WHERE topic = 'stripe.meter_event' AND claimed_at IS NOT NULL AND sent_at IS NULL $$;

-- few rows: each alone, with its own identifier
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', g) FROM generate_series(1, 5) g;
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 5, 'five rows of one customer, below aggregate_min: five meter events');
SELECT ok((SELECT bool_and(l.identifier = o.payload->>'identifier' AND l.ids = ARRAY[o.id]
						   AND l.value = (o.payload->>'value')::bigint
						   AND l."timestamp" = (o.payload->>'timestamp')::bigint
						   AND l.stripe_customer_id = 'cus_MeterA' AND l.event_name = 'ai_runs'
						   AND l.attempts = 1 AND NOT l.in_doubt)
			 FROM leased l JOIN ipai.outbox o ON o.id = l.ids[1]),
		  'each sent as it was written: its identifier, value, timestamp, customer and meter');
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 0, 'leased rows are not leased twice');
SELECT is(ipai.outbox_mark_sent_many((SELECT coalesce(array_agg(i), '{}') FROM leased, unnest(ids) i)), 0,
		  '(the second lease returned nothing to mark)');
SELECT pg_temp.crash();
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 5, 'after a crash they are leased again');
SELECT ok((SELECT bool_and(l.attempts = 2 AND l.in_doubt AND l.identifier = o.batch)
			 FROM leased l JOIN ipai.outbox o ON o.id = l.ids[1]),
		  'the same meter events: second attempt, in doubt, identifier recorded on the row');
SELECT is(ipai.outbox_mark_sent_many((SELECT array_agg(i) FROM leased, unnest(ids) i)), 5, 'marked sent');

-- many rows of one customer: one meter event
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 2) FROM generate_series(1, 25);
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 1, '25 rows of one customer: one meter event');
SELECT ok((SELECT l.value = 50 AND cardinality(l.ids) = 25
				  AND l.identifier = format('ipai_b_%s_%s', l.org_id, l.ids[1])
				  AND l."timestamp" = (SELECT max((payload->>'timestamp')::bigint) FROM ipai.outbox WHERE id = ANY (l.ids))
			 FROM leased l),
		  'value the sum, timestamp the latest, identifier ipai_b_<org>_<first row>');
CREATE TEMP TABLE first_lease AS SELECT * FROM leased;
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 1) FROM generate_series(1, 30);
SELECT pg_temp.crash();
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 2, 'after a crash, with 30 rows more: two meter events');
SELECT ok((SELECT l.identifier = f.identifier AND l.ids = f.ids AND l.value = f.value
				  AND l."timestamp" = f."timestamp" AND l.attempts = 2 AND l.in_doubt
			 FROM leased l JOIN first_lease f USING (identifier)),
		  'the first is resent exactly as before (Stripe deduplicates its identifier)');
SELECT ok((SELECT l.value = 30 AND cardinality(l.ids) = 30 AND l.identifier <> f.identifier
			 FROM leased l, first_lease f WHERE l.identifier <> f.identifier),
		  'the new rows form a meter event of their own');
SELECT is(ipai.outbox_mark_failed_many((SELECT ids FROM leased WHERE identifier = (SELECT identifier FROM first_lease)),
									   'HTTP 503'), 'retry', 'a failed group is retried');
SELECT ok((SELECT count(DISTINCT next_attempt_at) = 1 AND bool_and(claimed_at IS NULL AND last_error = 'HTTP 503')
			 FROM ipai.outbox WHERE id = ANY ((SELECT ids FROM first_lease)::bigint[])),
		  'all its rows together');
UPDATE ipai.outbox SET next_attempt_at = now() - interval '1 second' WHERE id = ANY ((SELECT ids FROM first_lease)::bigint[]);
SELECT is((SELECT identifier FROM pg_temp.lease()), (SELECT identifier FROM first_lease), 'and resent whole when due');
SELECT is(ipai.outbox_mark_sent_many((SELECT array_agg(i) FROM ipai.outbox o, LATERAL (SELECT o.id) x(i)
									   WHERE o.topic = 'stripe.meter_event' AND o.claimed_at IS NOT NULL AND o.sent_at IS NULL)), 55,
		  'both marked sent');

-- chunks, the cap on meter events, customers kept apart
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 1) FROM generate_series(1, 2500);
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000b', 'ai_runs', 3) FROM generate_series(1, 40);
SELECT is((SELECT array_agg(cardinality(ids) ORDER BY ids[1]) FROM pg_temp.lease(100, 20, 1000)), ARRAY[1000, 1000, 500, 40],
		  'at most aggregate_max rows per meter event; each customer apart');
SELECT is((SELECT array_agg(stripe_customer_id || ':' || value ORDER BY ids[1]) FROM leased),
		  ARRAY['cus_MeterA:1000', 'cus_MeterA:1000', 'cus_MeterA:500', 'cus_MeterB:120'], 'with their sums');
SELECT is(ipai.outbox_mark_sent_many((SELECT array_agg(i) FROM leased, unnest(ids) i)), 2540, 'sent');
SELECT ipai.record_usage(o, 'ai_runs', 1)
  FROM unnest(ARRAY['35000000-0000-4000-8000-00000000000a', '35000000-0000-4000-8000-00000000000b']::uuid[]) o;
SELECT is((SELECT count(*)::int FROM pg_temp.lease(1)), 1, 'max_events caps the meter events leased');
SELECT is((SELECT count(*)::int FROM pg_temp.lease(5)), 1, 'the rest on the next lease');

-- one meter event never spans two usage periods
UPDATE ipai.outbox SET sent_at = now() WHERE topic = 'stripe.meter_event' AND sent_at IS NULL;
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 1, NULL,
						 date_trunc('month', now()) - interval '1 hour') FROM generate_series(1, 20);
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 1) FROM generate_series(1, 20);
SELECT is((SELECT count(*)::int FROM pg_temp.lease()), 2, 'rows of last month and of this month: two meter events');
SELECT ok((SELECT bool_and(to_timestamp(l."timestamp") >= (SELECT min(ev.period_start) FROM ipai.usage_events ev
						   WHERE ev.org_id = l.org_id AND l.identifier LIKE 'ipai_b_%'
							 AND ipai._meter_identifier(ev.org_id, ev.id) = ANY (
								 SELECT payload->>'identifier' FROM ipai.outbox WHERE id = ANY (l.ids))))
			 FROM leased l),
		  'each stamped inside its own period');
UPDATE ipai.outbox SET sent_at = now() WHERE topic = 'stripe.meter_event' AND sent_at IS NULL;

-- what cannot be sent is settled on the way
INSERT INTO ipai.outbox (org_id, topic, payload) VALUES
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event', '"not an object"'),
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 '{"event_name": "ai_runs", "stripe_customer_id": "cus_MeterB", "value": "ten", "identifier": "bad-value", "timestamp": 1}'),
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 '{"event_name": "", "stripe_customer_id": "cus_MeterB", "value": 1, "identifier": "bad-name", "timestamp": 1}'),
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 format('{"event_name": "ai_runs", "stripe_customer_id": "cus_MeterB", "value": 1, "identifier": "%s", "timestamp": 1}',
			repeat('x', 101))::jsonb);
INSERT INTO ipai.outbox (org_id, topic, payload) VALUES
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 jsonb_build_object('event_name', 'ai_runs', 'stripe_customer_id', 'cus_MeterB', 'value', 4,
						'identifier', 'too-old', 'timestamp', extract(epoch FROM now() - interval '36 days')::bigint)),
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 jsonb_build_object('event_name', 'ai_runs', 'stripe_customer_id', 'cus_MeterB', 'value', 5,
						'identifier', 'future', 'timestamp', extract(epoch FROM now() + interval '1 hour')::bigint)),
	('35000000-0000-4000-8000-00000000000b', 'stripe.meter_event',
	 jsonb_build_object('event_name', 'ai_runs', 'stripe_customer_id', 'cus_MeterB', 'value', 6,
						'identifier', 'fine', 'timestamp', extract(epoch FROM now())::bigint));
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000c', 'ai_runs', 7);
SELECT is((SELECT array_agg(identifier) FILTER (WHERE given_up IS NULL) FROM pg_temp.lease()), ARRAY['fine'],
		  'only the row that can be sent is leased');
SELECT is((SELECT count(*)::int FROM leased WHERE given_up IS NOT NULL AND cardinality(ids) = 1), 5,
		  'the five given up come back with their reason, for the sender to count');
SELECT is((SELECT array_agg(last_error ORDER BY id) FROM ipai.outbox WHERE org_id = '35000000-0000-4000-8000-00000000000b'
			 AND dead_at IS NOT NULL AND payload->>'identifier' IS DISTINCT FROM 'too-old'),
		  ARRAY['malformed payload: the payload is not a JSON object',
				'malformed payload: value must be a non-negative integer',
				'malformed payload: event_name must be a string of 1 to 100 characters',
				'malformed payload: identifier must be a string of 1 to 100 characters'],
		  'malformed payloads are dead, saying what is wrong');
SELECT matches((SELECT last_error FROM ipai.outbox WHERE payload->>'identifier' = 'too-old' AND dead_at IS NOT NULL),
			   'older than the 35 days Stripe accepts', 'a meter event older than Stripe accepts is dead');
SELECT ok((SELECT dead_at IS NULL AND attempts = 0
				  AND next_attempt_at BETWEEN now() + interval '55 minutes' AND now() + interval '57 minutes'
			 FROM ipai.outbox WHERE payload->>'identifier' = 'future'),
		  'one stamped an hour ahead waits until it is 4 minutes ahead (Stripe takes 5)');
SELECT ok((SELECT next_attempt_at = 'infinity' AND attempts = 0 FROM ipai.outbox
			WHERE org_id = '35000000-0000-4000-8000-00000000000c' AND topic = 'stripe.meter_event'),
		  'one without a Stripe customer is parked');
SELECT is((SELECT count(*)::int FROM ipai.outbox WHERE topic = 'stripe.meter_event' AND sent_at IS NULL AND dead_at IS NULL
			AND claimed_at IS NULL AND next_attempt_at <= now()), 0, 'nothing else is left due');

-- a group out of attempts is dead whole; the operator's retry revives it whole
SELECT ipai.outbox_mark_sent_many((SELECT array_agg(i) FROM leased, unnest(ids) i));
SELECT ipai.record_usage('35000000-0000-4000-8000-00000000000a', 'ai_runs', 1) FROM generate_series(1, 20);
SELECT is((SELECT cardinality(ids) FROM pg_temp.lease()), 20, 'a group of 20');
CREATE TEMP TABLE g20 AS SELECT * FROM leased;
UPDATE ipai.outbox SET attempts = 20 WHERE id = (SELECT ids[3] FROM g20);
SELECT pg_temp.crash();
SELECT is((SELECT count(*) FILTER (WHERE given_up IS NULL)::text || ' leased, ' || count(*) FILTER (WHERE given_up LIKE 'gave up after%')
			 || ' given up' FROM pg_temp.lease()), '0 leased, 20 given up', 'one of its rows out of attempts: none leased, all 20 given up');
SELECT is((SELECT count(*)::int FROM ipai.outbox WHERE id = ANY ((SELECT ids FROM g20)::bigint[]) AND dead_at IS NOT NULL), 20,
		  'the whole group is dead');
SELECT ok(ipai.outbox_retry((SELECT ids[7] FROM g20)), 'outbox_retry of one of its rows');
SELECT is((SELECT cardinality(ids) FROM ipai.outbox_lease_meter_events()), 20, 'brings the whole group back');

SELECT throws_ok($$SELECT * FROM ipai.outbox_lease_meter_events(0)$$, '22023', NULL, 'max_events 0: 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_lease_meter_events(10, '1 minute', 1)$$, '22023', NULL, 'aggregate_min 1: 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_lease_meter_events(10, '0 seconds')$$, '22023', NULL, 'a lease of 0: 22023');

SELECT * FROM finish();
ROLLBACK;
