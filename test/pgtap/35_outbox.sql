-- The outbox: claims with SKIP LOCKED and their expiry, mark sent once,
-- token erasure, failed attempts (backoff, Retry-After, dead), the
-- operator's retry, parked meter events, and who may touch it.
BEGIN;
SELECT plan(63);
SET LOCAL client_min_messages = warning;
INSERT INTO ipai.organizations (id, name) VALUES ('0b000000-0000-4000-8000-000000000000', 'Outbox Org');
INSERT INTO ipai.outbox (org_id, topic, payload)
SELECT '0b000000-0000-4000-8000-000000000000', 'auth.invite',
	   jsonb_build_object('email', 'u' || g || '@example.com', 'token', 'secret' || g)
  FROM generate_series(1, 5) g;
INSERT INTO ipai.outbox (org_id, topic, payload)
VALUES ('0b000000-0000-4000-8000-000000000000', 'stripe.meter_event',
		'{"event_name": "ai_runs", "stripe_customer_id": "cus_O", "value": 1, "identifier": "id-1", "timestamp": 1}');

-- claims
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 3)), 3::bigint, 'claims up to max_rows');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)), 2::bigint,
		  'claimed rows are not handed out again');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)), 0::bigint, 'nothing left to claim');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10, '1 microsecond')), 5::bigint,
		  'expired claims are handed out again');
SELECT is((SELECT sum(attempts)::int FROM ipai.outbox WHERE topic = 'auth.invite'), 10,
		  'every claim counts an attempt');
SELECT ok((SELECT bool_and(in_doubt AND first_attempt_at IS NOT NULL) FROM ipai.outbox WHERE topic = 'auth.invite'),
		  'a claimed row is in doubt until reported: its sender may have delivered it');
SELECT is((SELECT topic FROM ipai.outbox_claim('stripe.meter_event')), 'stripe.meter_event',
		  'topics are separate');
UPDATE ipai.outbox SET claimed_at = now() - interval '2 hours' WHERE topic = 'auth.invite';
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)), 5::bigint,
		  'a claim older than the claimer''s timeout has expired (a sender that died)');

-- mark sent
SELECT ok(ipai.outbox_mark_sent((SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'the first mark_sent is true');
SELECT ok(NOT ipai.outbox_mark_sent((SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'a second mark_sent is false');
SELECT ok((SELECT NOT (payload ? 'token') AND payload ? 'email' AND NOT in_doubt FROM ipai.outbox
			WHERE id = (SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'the invitation token is erased once sent, and the row is no longer in doubt');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10, '1 microsecond')), 4::bigint,
		  'sent rows are never claimed again');

SELECT throws_ok($$SELECT ipai.outbox_mark_sent(-1)$$, '22023', NULL, 'unknown id is 22023');
SELECT throws_ok($$SELECT ipai.outbox_mark_sent(NULL)$$, '22023', NULL, 'NULL id is 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim(NULL)$$, '22023', NULL, 'NULL topic is 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim('auth.invite', 0)$$, '22023', NULL, 'max_rows 0 is 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim('auth.invite', 10, '-1 second')$$, '22023', NULL,
				 'a negative claim timeout is 22023');

-- a failed attempt: due again after the backoff, in doubt or not
CREATE TEMP TABLE f AS SELECT id FROM ipai.outbox WHERE topic = 'auth.invite' AND sent_at IS NULL ORDER BY id;
UPDATE ipai.outbox SET attempts = 1 WHERE id IN (SELECT id FROM f);
SELECT is(ipai.outbox_mark_failed((SELECT min(id) FROM f), 'HTTP 500: boom'), 'retry', 'a 5xx is retried');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '4 seconds' AND clock_timestamp() + interval '10 seconds'
				  AND claimed_at IS NULL AND last_error = 'HTTP 500: boom' AND in_doubt
			 FROM ipai.outbox WHERE id = (SELECT min(id) FROM f)),
		  'after the first attempt: 5 to 10 s (10 s with jitter), the claim released, the error kept, still in doubt');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10) WHERE id = (SELECT min(id) FROM f)), 0::bigint,
		  'not claimed before its next attempt');
UPDATE ipai.outbox SET attempts = 5 WHERE id = (SELECT min(id) FROM f);
SELECT is(ipai.outbox_mark_failed((SELECT min(id) FROM f), 'timeout', maybe_delivered => false), 'retry', 'again');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '79 seconds' AND clock_timestamp() + interval '161 seconds'
				  AND NOT in_doubt
			 FROM ipai.outbox WHERE id = (SELECT min(id) FROM f)),
		  'after the fifth: 80 to 160 s (doubling); a request that cannot have arrived clears the doubt');
UPDATE ipai.outbox SET attempts = 15 WHERE id = (SELECT min(id) FROM f);
SELECT is(ipai.outbox_mark_failed((SELECT min(id) FROM f), 'HTTP 503'), 'retry', 'and again');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '29 minutes' AND clock_timestamp() + interval '61 minutes'
			 FROM ipai.outbox WHERE id = (SELECT min(id) FROM f)),
		  'the backoff is capped at an hour');
SELECT is(ipai.outbox_mark_failed((SELECT min(id) FROM f), 'HTTP 429', retry_after => '3 hours'), 'retry',
		  'a 429 with Retry-After');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '179 minutes' AND clock_timestamp() + interval '181 minutes'
			 FROM ipai.outbox WHERE id = (SELECT min(id) FROM f)),
		  'Retry-After is honoured when longer than the backoff');
SELECT ok((SELECT count(DISTINCT extract(epoch FROM ipai._outbox_backoff(3))) > 10 FROM generate_series(1, 20)),
		  'the backoff is jittered');
SELECT ok((SELECT min(ipai._outbox_backoff(3)) >= interval '20 seconds' AND max(ipai._outbox_backoff(3)) < interval '40 seconds'
			 FROM generate_series(1, 200)),
		  'within [0.5, 1) of 10 s * 2^(n-1)');

-- dead: a permanent refusal, too many attempts, or the 23-hour horizon
SELECT is(ipai.outbox_mark_failed((SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1),
								  'HTTP 400: Invalid email address', permanent => true), 'dead',
		  'a permanent refusal is dead at once');
SELECT ok((SELECT dead_at IS NOT NULL AND last_error = 'HTTP 400: Invalid email address' AND sent_at IS NULL
			 FROM ipai.outbox WHERE id = (SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1)),
		  'with the receiver''s reason');
UPDATE ipai.outbox SET attempts = 20 WHERE id = (SELECT id FROM f ORDER BY id OFFSET 2 LIMIT 1);
SELECT is(ipai.outbox_mark_failed((SELECT id FROM f ORDER BY id OFFSET 2 LIMIT 1), 'HTTP 502'), 'dead',
		  'the 20th failure is the last');
SELECT is((SELECT last_error FROM ipai.outbox WHERE id = (SELECT id FROM f ORDER BY id OFFSET 2 LIMIT 1)),
		  'gave up after 20 attempts: HTTP 502', 'saying so');
UPDATE ipai.outbox SET first_attempt_at = now() - interval '22 hours 59 minutes 50 seconds', attempts = 3
 WHERE id = (SELECT id FROM f ORDER BY id OFFSET 3 LIMIT 1);
SELECT is(ipai.outbox_mark_failed((SELECT id FROM f ORDER BY id OFFSET 3 LIMIT 1), 'HTTP 500'), 'dead',
		  'no retry beyond 23 hours after the first attempt (inside Stripe''s 24-hour deduplication)');
INSERT INTO ipai.outbox (org_id, topic, payload, attempts, claimed_at)
VALUES ('0b000000-0000-4000-8000-000000000000', 'auth.invite', '{"email": "crash@example.com"}', 20, now() - interval '1 hour');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10) WHERE payload->>'email' = 'crash@example.com'), 0::bigint,
		  'a row whose senders kept dying is not claimed a 21st time');
SELECT ok((SELECT dead_at IS NOT NULL AND last_error LIKE 'gave up after 20 attempts%' FROM ipai.outbox
			WHERE payload->>'email' = 'crash@example.com'), 'it is dead instead');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10, '1 microsecond')
			WHERE id IN (SELECT id FROM ipai.outbox WHERE dead_at IS NOT NULL)), 0::bigint,
		  'dead rows are never claimed');
SELECT is(ipai.outbox_mark_failed((SELECT min(id) FROM ipai.outbox WHERE sent_at IS NOT NULL), 'late'), 'sent',
		  'a failure reported for a row already sent changes nothing');

SELECT throws_ok($$SELECT ipai.outbox_mark_failed(NULL, 'x')$$, '22023', NULL, 'mark_failed(NULL): 22023');
SELECT throws_ok($$SELECT ipai.outbox_mark_failed(-5, 'x')$$, '22023', NULL, 'mark_failed of an unknown id: 22023');
SELECT throws_ok($$SELECT ipai.outbox_mark_failed((SELECT min(id) FROM f), 'x', retry_after => '-1 s')$$, '22023', NULL,
				 'a negative Retry-After: 22023');
SELECT throws_ok($$SELECT ipai.outbox_mark_failed_many('{}', 'x')$$, '22023', NULL, 'an empty id list: 22023');

-- the operator's retry
SELECT ok(ipai.outbox_retry((SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1)), 'outbox_retry of a dead row: true');
SELECT ok((SELECT dead_at IS NULL AND attempts = 0 AND next_attempt_at <= clock_timestamp() AND claimed_at IS NULL
			 FROM ipai.outbox WHERE id = (SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1)),
		  'due now with a fresh count of attempts');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10) WHERE id = (SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1)),
		  1::bigint, 'and claimed again');
SELECT ok(NOT ipai.outbox_retry((SELECT id FROM f ORDER BY id OFFSET 1 LIMIT 1)), 'outbox_retry of a row that is not dead: false');
SELECT ok(NOT ipai.outbox_retry((SELECT min(id) FROM ipai.outbox WHERE sent_at IS NOT NULL)), 'nor of a sent row');
SELECT throws_ok($$SELECT ipai.outbox_retry(-1)$$, '22023', NULL, 'outbox_retry of an unknown id: 22023');
SELECT throws_ok($$SELECT ipai.outbox_retry(NULL)$$, '22023', NULL, 'outbox_retry(NULL): 22023');

-- meter events without a Stripe customer are parked, not worn out
INSERT INTO ipai.outbox (org_id, topic, payload)
VALUES ('0b000000-0000-4000-8000-000000000000', 'stripe.meter_event',
		'{"event_name": "ai_runs", "stripe_customer_id": null, "value": 2, "identifier": "id-2", "timestamp": 2,
		  "payload": {"value": "2", "stripe_customer_id": null}}');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('stripe.meter_event', 10, '1 microsecond') WHERE payload->>'identifier' = 'id-2'),
		  0::bigint, 'a meter event without customer is not handed out');
SELECT ok((SELECT next_attempt_at = 'infinity' AND attempts = 0 FROM ipai.outbox WHERE payload->>'identifier' = 'id-2'),
		  'it is parked, no attempt counted');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('0b000000-0000-4000-8000-000000000000', 'cus_Linked');
SELECT ok((SELECT next_attempt_at <= now() AND payload->>'stripe_customer_id' = 'cus_Linked'
				  AND payload->'payload'->>'stripe_customer_id' = 'cus_Linked'
			 FROM ipai.outbox WHERE payload->>'identifier' = 'id-2'),
		  'linking a customer fills it in and makes the row due');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('stripe.meter_event', 10, '1 microsecond') WHERE payload->>'identifier' = 'id-2'),
		  1::bigint, 'then it is handed out');

-- health
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox dead'), 'warning',
		  'dead invitations: a warning');
UPDATE ipai.outbox SET dead_at = now(), last_error = 'x' WHERE payload->>'identifier' = 'id-2';
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox dead'), 'critical',
		  'a dead meter event (usage not billed): critical');
SELECT matches((SELECT detail FROM ipai.health() WHERE name = 'outbox dead'),
			   '^4 rows given up \(1 of them Stripe meter events: usage not billed\).*outbox_retry', 'with counts and the remedy');
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox backlog'), 'ok', 'nothing due for long: ok');
UPDATE ipai.outbox SET next_attempt_at = now() - interval '20 minutes', claimed_at = NULL
 WHERE id = (SELECT min(id) FROM f);
SELECT is((SELECT status FROM ipai.health() WHERE name = 'outbox backlog'), 'warning',
		  'a row due for 20 minutes that nobody sends: a warning');
SELECT matches((SELECT detail FROM ipai.health() WHERE name = 'outbox backlog'),
			   '^1 rows due \(the oldest due since .*\), [0-9]+ leased to a sender, [0-9]+ waiting to retry, 0 parked',
			   'saying how many are due, leased, waiting and parked');

-- who may
SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim('auth.invite')$$, '42501', NULL,
				 'authenticated cannot claim');
SELECT throws_ok($$SELECT ipai.outbox_retry(1)$$, '42501', NULL, 'authenticated cannot retry');
SELECT throws_ok($$SELECT ipai.outbox_mark_failed(1, 'x')$$, '42501', NULL, 'authenticated cannot report');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT lives_ok($$SELECT * FROM ipai.outbox_claim('auth.invite')$$, 'service_role claims');
SELECT lives_ok($$SELECT ipai.outbox_retry((SELECT min(id) FROM ipai.outbox))$$, 'service_role retries');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
