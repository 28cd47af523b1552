-- The outbox: claim with SKIP LOCKED, expiry of claims, mark sent once,
-- token erasure, and who may touch it.
BEGIN;
SELECT plan(14);
SET LOCAL client_min_messages = warning;
INSERT INTO ipai.organizations (id, name) VALUES ('0b000000-0000-4000-8000-000000000000', 'Outbox Org');
INSERT INTO ipai.outbox (org_id, topic, payload)
SELECT '0b000000-0000-4000-8000-000000000000', 'auth.invite',
	   jsonb_build_object('email', 'u' || g || '@example.com', 'token', 'secret' || g)
  FROM generate_series(1, 5) g;
INSERT INTO ipai.outbox (org_id, topic, payload)
VALUES ('0b000000-0000-4000-8000-000000000000', 'stripe.meter_event', '{"value": 1}');

SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 3)), 3::bigint, 'claims up to max_rows');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)), 2::bigint,
		  'claimed rows are not handed out again');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10)), 0::bigint, 'nothing left to claim');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10, '1 microsecond')), 5::bigint,
		  'expired claims are handed out again');
SELECT is((SELECT topic FROM ipai.outbox_claim('stripe.meter_event')), 'stripe.meter_event',
		  'topics are separate');

SELECT ok(ipai.outbox_mark_sent((SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'the first mark_sent is true');
SELECT ok(NOT ipai.outbox_mark_sent((SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'a second mark_sent is false');
SELECT ok((SELECT NOT (payload ? 'token') AND payload ? 'email' FROM ipai.outbox
			WHERE id = (SELECT min(id) FROM ipai.outbox WHERE topic = 'auth.invite')),
		  'the invitation token is erased once sent');
SELECT is((SELECT count(*) FROM ipai.outbox_claim('auth.invite', 10, '1 microsecond')), 4::bigint,
		  'sent rows are never claimed again');

SELECT throws_ok($$SELECT ipai.outbox_mark_sent(-1)$$, '22023', NULL, 'unknown id is 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim(NULL)$$, '22023', NULL, 'NULL topic is 22023');
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim('auth.invite', 0)$$, '22023', NULL, 'max_rows 0 is 22023');

SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT * FROM ipai.outbox_claim('auth.invite')$$, '42501', NULL,
				 'authenticated cannot claim');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT lives_ok($$SELECT * FROM ipai.outbox_claim('auth.invite')$$, 'service_role claims');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
