--
-- 40_signature: webhook signature primitives
--   ipai.stripe_verify_signature, ipai.stripe_sign,
--   ipai.standard_webhook_verify, ipai.standard_webhook_sign
--
-- Runs in a database with the extension installed.  Times are fixed
-- (now => ...) so the output never depends on the clock.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

-- the SQLSTATE and message of a statement, or 'no error'
CREATE FUNCTION pg_temp.error_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

CREATE TEMP TABLE k AS SELECT
	'whsec_test_secret'::text AS secret,
	'{"id":"evt_test_webhook","object":"event"}'::text AS payload,
	to_timestamp(1700000000) AS t0,
	to_timestamp(1700000010) AS now;

-- the volatility and strictness chosen
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS function,
	   p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'ipai'
  AND p.proname IN ('stripe_verify_signature', 'stripe_sign',
					'standard_webhook_verify', 'standard_webhook_sign')
ORDER BY 1 COLLATE "C";

--
-- Stripe: known answer (openssl dgst -sha256 -hmac whsec_test_secret over
-- "1700000000.<payload>") and round trips
--
SELECT ipai.stripe_sign(payload, secret, t0) FROM k;
SELECT ipai.stripe_sign(payload, secret, t0) =
	   't=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990'
	   AS matches_openssl
FROM k;
SELECT ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, now) AS text_ok,
	   ipai.stripe_verify_signature(convert_to(payload, 'UTF8'),
									ipai.stripe_sign(payload, secret, t0),
									secret, 300, now) AS bytea_ok,
	   ipai.stripe_sign(convert_to(payload, 'UTF8'), secret, t0) =
	   ipai.stripe_sign(payload, secret, t0) AS same_header
FROM k;
-- the defaults: tolerance 300 and now(); a fresh signature verifies
SELECT ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret), secret)
	   AS fresh_ok
FROM k;
-- t is rounded down to whole seconds
SELECT ipai.stripe_sign('x', 'whsec_a', '2023-11-14 22:13:20.999+00') =
	   ipai.stripe_sign('x', 'whsec_a', '2023-11-14 22:13:20+00') AS floors;

--
-- Stripe: every malformed header is false, never an error; a v1 that
-- cannot be a signature is skipped (never matches) without hiding a good
-- one, as in Stripe's SDK; an empty v1 rejects the header (the SDK throws)
--
CREATE TEMP TABLE v AS
	SELECT substr(ipai.stripe_sign(payload, secret, t0), 17) AS v1 FROM k;
SELECT label, ipai.stripe_verify_signature(k.payload, header, k.secret, 300, k.now) AS verified
FROM k, v, LATERAL (VALUES
	('valid',                    't=1700000000,v1=' || v1),
	('v1 before t',              'v1=' || v1 || ',t=1700000000'),
	('v0 ignored',               't=1700000000,v0=' || repeat('0', 64) || ',v1=' || v1),
	('unknown scheme ignored',   't=1700000000,v1=' || v1 || ',v9=whatever'),
	('rotation: second v1',      't=1700000000,v1=' || repeat('ab', 32) || ',v1=' || v1),
	('upper-case hex alone',     't=1700000000,v1=' || upper(v1)),
	('upper-case hex, then good','t=1700000000,v1=' || upper(v1) || ',v1=' || v1),
	('empty header',             ''),
	('missing t',                'v1=' || v1),
	('empty t',                  't=,v1=' || v1),
	('non-numeric t',            't=abc,v1=' || v1),
	('negative t',               't=-1700000000,v1=' || v1),
	('t with leading zero',      't=01700000000,v1=' || v1),
	('t with spaces',            't= 1700000000,v1=' || v1),
	('overflowing t',            't=99999999999999999999,v1=' || v1),
	('duplicate t',              't=1700000000,t=1700000000,v1=' || v1),
	('duplicate t, last signed', 't=1600000000,t=1700000000,v1=' || v1),
	('duplicate t, first signed','t=1700000000,t=1700000001,v1=' || v1),
	('bad t, then good t',       't=abc,t=1700000000,v1=' || v1),
	('good t, then bare t',      't=1700000000,v1=' || v1 || ',t'),
	('t value ends at 2nd =',    't=1700000000=1,v1=' || v1),
	('no v1',                    't=1700000000'),
	('only v0',                  't=1700000000,v0=' || v1),
	('empty v1=',                't=1700000000,v1='),
	('good v1 and empty v1=',    't=1700000000,v1=' || v1 || ',v1='),
	('empty v1= and good v1',    't=1700000000,v1=,v1=' || v1),
	('bare v1 and good v1',      't=1700000000,v1,v1=' || v1),
	('non-hex v1, then good',    't=1700000000,v1=abc,v1=' || v1),
	('good, then non-hex v1',    't=1700000000,v1=' || v1 || ',v1=zz'),
	('odd-length v1, then good', 't=1700000000,v1=' || substr(v1, 2) || ',v1=' || v1),
	('long v1, then good',       't=1700000000,v1=' || v1 || '00,v1=' || v1),
	('short v1, then good',      't=1700000000,v1=' || substr(v1, 3) || ',v1=' || v1),
	('junk v1s around good',     't=1700000000,v1=!!!,v1=' || v1 || ',v1=' || repeat('g', 64)),
	('v1 value ends at 2nd =',   't=1700000000,v1=' || v1 || '=junk'),
	('odd-length v1',            't=1700000000,v1=' || substr(v1, 2)),
	('short v1',                 't=1700000000,v1=' || substr(v1, 3)),
	('long v1',                  't=1700000000,v1=' || v1 || '00'),
	('non-hex v1',               't=1700000000,v1=' || substr(v1, 2) || 'g'),
	('flipped v1',               't=1700000000,v1=' || translate(v1, '0123456789abcdef', '123456789abcdef0')),
	('trailing comma',           't=1700000000,v1=' || v1 || ','),
	('empty item',               't=1700000000,,v1=' || v1),
	('item without =',           't=1700000000,v1=' || v1 || ',junk'),
	('empty keys',               't=1700000000,=x,=,v1=' || v1),
	('space after comma',        't=1700000000, v1=' || v1),
	('other t',                  't=1700000001,v1=' || v1),
	('only commas',              ',,,,'),
	('binary-looking garbage',   E't=1700000000\x01\x7f,v1=' || v1)
) AS cases(label, header)
ORDER BY label COLLATE "C";

-- the acceptance probe's case: a junk v1 inserted before the good one
WITH h AS (SELECT ipai.stripe_sign('{}', 'whsec_x', to_timestamp(1767225600)) h)
SELECT ipai.stripe_verify_signature('{}'::text, replace(h, ',v1=', ',v1=abc,v1='), 'whsec_x',
									300, to_timestamp(1767225600)) AS junk_v1_then_good
FROM h;

-- 1 MB headers (repeat()): rejected or accepted in linear time
SELECT ipai.stripe_verify_signature(payload, repeat('x', 1048576), secret, 300, now) AS mb_of_x,
	   ipai.stripe_verify_signature(payload, repeat(',', 1048576), secret, 300, now) AS mb_of_commas,
	   ipai.stripe_verify_signature(payload, 't=' || repeat('9', 1048576) || ',v1=' || v1,
									secret, 300, now) AS mb_t,
	   ipai.stripe_verify_signature(payload, 't=1700000000,' || repeat('v0=abcdef,', 104858) ||
									'v1=' || v1, secret, 300, now) AS mb_of_v0_then_valid,
	   ipai.stripe_verify_signature(payload, 't=1700000000,' ||
									repeat('v1=' || repeat('0', 64) || ',', 15420) ||
									'v1=' || v1, secret, 300, now) AS mb_of_v1_then_valid
FROM k, v;

-- payload bytes: NULs in bytea, tampering, re-rendered JSON
SELECT ipai.stripe_verify_signature('\x7b00ff007d'::bytea,
									ipai.stripe_sign('\x7b00ff007d'::bytea, secret, t0),
									secret, 300, now) AS nul_bytes_ok,
	   ipai.stripe_verify_signature('\x7b00'::bytea,
									ipai.stripe_sign('\x7b00ff007d'::bytea, secret, t0),
									secret, 300, now) AS truncated_after_nul,
	   ipai.stripe_verify_signature('\x7b00ff007e'::bytea,
									ipai.stripe_sign('\x7b00ff007d'::bytea, secret, t0),
									secret, 300, now) AS last_byte_changed
FROM k;
CREATE TEMP TABLE pretty AS SELECT
	E'{\n  "id": "evt_1OxYz",\n  "object": "event",\n  "data": {\n    "object": {\n      "amount": 9900\n    }\n  }\n}'::text AS body;
SELECT body::jsonb::text AS rerendered FROM pretty;
SELECT ipai.stripe_verify_signature(body, ipai.stripe_sign(body, secret, t0),
									secret, 300, now) AS raw_body,
	   ipai.stripe_verify_signature(body::jsonb::text, ipai.stripe_sign(body, secret, t0),
									secret, 300, now) AS rerendered_json,
	   ipai.stripe_verify_signature(convert_to(body, 'UTF8'), ipai.stripe_sign(body, secret, t0),
									secret, 300, now) AS raw_bytes
FROM k, pretty;

-- secrets and time
SELECT ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									'whsec_other', 300, now) AS wrong_secret,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									'test_secret', 300, now) AS secret_without_prefix,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, t0 + interval '300 seconds') AS at_edge_past,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, t0 - interval '300 seconds') AS at_edge_future,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, t0 + interval '301 seconds') AS too_old,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, t0 - interval '301 seconds') AS too_new,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 300, 'infinity') AS now_infinity,
	   ipai.stripe_verify_signature(payload, ipai.stripe_sign(payload, secret, t0),
									secret, 2147483647, '-infinity') AS now_minus_infinity
FROM k;

-- NULLs: false, never NULL (the tolerance excepted)
SELECT ipai.stripe_verify_signature(NULL::text, 't=1,v1=00', 'whsec_x') AS null_payload,
	   ipai.stripe_verify_signature('x'::text, NULL, 'whsec_x') AS null_header,
	   ipai.stripe_verify_signature('x'::bytea, 't=1,v1=00', NULL) AS null_secret,
	   ipai.stripe_verify_signature('x'::text, 't=1,v1=00', 'whsec_x', 300, NULL) AS null_now,
	   ipai.stripe_sign(NULL::text, 'whsec_x') IS NULL AS sign_null_payload,
	   ipai.stripe_sign('x'::text, 'whsec_x', NULL) IS NULL AS sign_null_t;

-- caller errors: 22023 (and 22008 for timestamps that cannot be signed)
SELECT stmt, pg_temp.error_of(stmt) AS result
FROM (VALUES
	($$SELECT ipai.stripe_verify_signature('x'::text, 't=1,v1=00', 'whsec_x', 0)$$),
	($$SELECT ipai.stripe_verify_signature('x'::text, 'garbage', 'whsec_x', -1)$$),
	($$SELECT ipai.stripe_verify_signature('x'::text, 't=1,v1=00', 'whsec_x', NULL)$$),
	($$SELECT ipai.stripe_verify_signature('x'::bytea, 't=1,v1=00', '')$$),
	($$SELECT ipai.stripe_verify_signature(NULL::text, NULL, '', 0)$$),
	($$SELECT ipai.stripe_sign('x', '')$$),
	($$SELECT ipai.stripe_sign('x', 'whsec_x', '1969-12-31 23:59:59+00')$$),
	($$SELECT ipai.stripe_sign('x', 'whsec_x', 'infinity')$$)
) AS s(stmt);
-- as a client sees it
SELECT ipai.stripe_verify_signature('x'::text, 't=1,v1=00', 'whsec_x', 0);

--
-- Standard Webhooks: vectors from the reference libraries
-- (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts
-- and libraries/go/webhook_test.go)
--
CREATE TEMP TABLE sw AS SELECT
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'::text AS secret,
	'msg_p5jXN8AQM9LWM0D4loKWxJek'::text AS id,
	'1614265330'::text AS ts,
	'{"test": 2432232314}'::text AS payload,
	'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='::text AS sig,
	'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc='::text AS other,
	to_timestamp(1614265335) AS now;

SELECT ipai.standard_webhook_sign(payload, id, ts, secret) AS signature,
	   ipai.standard_webhook_sign(payload, id, ts, secret) = sig AS matches_library,
	   ipai.standard_webhook_sign(convert_to(payload, 'UTF8'), id, ts, secret) = sig AS bytea_matches
FROM sw;

SELECT label, ipai.standard_webhook_verify(convert_to(p, 'UTF8'), i, t, h, s, 300, sw.now) AS verified,
	   ipai.standard_webhook_verify(p, i, t, h, s, 300, sw.now) AS text_verified
FROM sw, LATERAL (VALUES
	('valid',                     payload, id, ts, sig, secret),
	('secret without prefix',     payload, id, ts, sig, substr(secret, 7)),
	('secret as Supabase shows',  payload, id, ts, sig, 'v1,' || secret),
	('multi sig (library)',       payload, id, ts, other || ' v2,' || substr(other, 4) || ' ' || sig || ' ' || other, secret),
	('v1a and spaces ignored',    payload, id, ts, '  v1a,abc  ' || sig || '  ', secret),
	('invalid signature',         payload, id, ts, other, secret),
	('short signature (library)', payload, id, ts, 'v1,dawfeoifkpqwoekfpqoekf', secret),
	('partial signature',         payload, id, ts, substr(sig, 1, 8), secret),
	('v1,!!! before a valid one', payload, id, ts, 'v1,!!! ' || sig, secret),
	('v1,!!! after a valid one',  payload, id, ts, sig || ' v1,!!!', secret),
	('short, then valid',         payload, id, ts, 'v1,dawfeoifkpqwoekfpqoekf ' || sig, secret),
	('unpadded, then valid',      payload, id, ts, rtrim(sig, '=') || ' ' || sig, secret),
	('too long, then valid',      payload, id, ts, sig || 'AAAA ' || sig, secret),
	('bare v1, then valid',       payload, id, ts, 'v1 ' || sig, secret),
	('signature, extra field',    payload, id, ts, sig || ',junk', secret),
	('sig in the third field',    payload, id, ts, 'v1,x,' || substr(sig, 4), secret),
	('tab after signature',       payload, id, ts, sig || E'\t', secret),
	('empty signature v1,',       payload, id, ts, 'v1,', secret),
	('v1, before a valid one',    payload, id, ts, 'v1, ' || sig, secret),
	('unpadded signature',        payload, id, ts, rtrim(sig, '='), secret),
	('missing signature',         payload, id, ts, '', secret),
	('missing id',                payload, '', ts, sig, secret),
	('missing timestamp',         payload, id, '', sig, secret),
	('timestamp hello (library)', payload, id, 'hello', sig, secret),
	('timestamp 1614265330.0',    payload, id, ts || '.0', sig, secret),
	('other id',                  payload, 'msg_other', ts, sig, secret),
	('tampered payload',          '{"test": 2432232315}', id, ts, sig, secret),
	('re-rendered payload',       payload::jsonb::text || ' ', id, ts, sig, secret)
) AS cases(label, p, i, t, h, s)
ORDER BY label COLLATE "C";

SELECT ipai.standard_webhook_verify(payload, id, ts, sig, secret, 300,
									to_timestamp(1614265330 + 301)) AS too_old,
	   ipai.standard_webhook_verify(payload, id, ts, sig, secret, 300,
									to_timestamp(1614265330 - 301)) AS too_new,
	   ipai.standard_webhook_verify(payload, id, ts, sig, secret, 300,
									to_timestamp(1614265330 - 300)) AS at_edge,
	   ipai.standard_webhook_verify(payload, id, ts, sig, secret) AS stale_with_defaults,
	   ipai.standard_webhook_verify(NULL::bytea, id, ts, sig, secret) AS null_payload,
	   ipai.standard_webhook_verify(payload, id, ts, NULL, secret) AS null_header
FROM sw;

SELECT stmt, pg_temp.error_of(stmt) AS result
FROM (VALUES
	($$SELECT ipai.standard_webhook_verify('x'::text, 'm', '1', 'v1,x', 'whsec_AAAA', 0)$$),
	($$SELECT ipai.standard_webhook_verify('x'::text, 'm', '1', 'v1,x', '')$$),
	($$SELECT ipai.standard_webhook_verify('x'::text, 'm', '1', 'v1,x', 'whsec_')$$),
	($$SELECT ipai.standard_webhook_verify('x'::text, 'm', '1', 'v1,x', 'whsec_not base64!')$$),
	($$SELECT ipai.standard_webhook_sign('x'::text, '', '1', 'whsec_AAAA')$$),
	($$SELECT ipai.standard_webhook_sign('x'::text, 'm', '-1', 'whsec_AAAA')$$)
) AS s(stmt);

--
-- ipai.stripe_webhook goes through the same parser: a junk v1 next to the
-- good one is accepted, an empty v1 or only junk is IP002 (all in a
-- transaction that is rolled back)
--
BEGIN;
SELECT ipai.set_stripe_webhook_secret('whsec_sig_regress') > 0 AS secret_set;
CREATE TEMP TABLE wh ON COMMIT DROP AS SELECT
	'{"id":"evt_sig_regress","object":"event","type":"customer.updated","created":1735689700,"data":{"object":{"id":"cus_sig_regress","object":"customer"}}}'::text AS body;
CREATE TEMP TABLE whh ON COMMIT DROP AS SELECT ipai.stripe_sign(body, 'whsec_sig_regress') AS h FROM wh;
SELECT w.* FROM wh, whh,
	LATERAL ipai.stripe_webhook(wh.body, replace(whh.h, ',v1=', ',v1=abc,v1=') || ',v1=' || repeat('0', 64)) w;
SELECT w.* FROM wh, whh,
	LATERAL ipai.stripe_webhook(convert_to(wh.body, 'UTF8'), replace(whh.h, ',v1=', ',v1=zz,,junk,v1=')) w;
SELECT label, pg_temp.error_of(format('SELECT * FROM ipai.stripe_webhook(%L::text, %L)', wh.body, header)) AS result
FROM wh, whh, LATERAL (VALUES
	('empty v1, then good', replace(whh.h, ',v1=', ',v1=,v1=')),
	('only a junk v1',      split_part(whh.h, ',', 1) || ',v1=abc'),
	('only upper-case hex', split_part(whh.h, 'v1=', 1) || 'v1=' || upper(split_part(whh.h, 'v1=', 2)))
) AS c(label, header)
ORDER BY label COLLATE "C";
ROLLBACK;

-- the tolerance is exact to the microsecond: |now - t| <= tolerance
WITH h AS (SELECT ipai.stripe_sign('{}', 'whsec_x', to_timestamp(1767225600)) AS h)
SELECT d AS seconds_after_t,
	   ipai.stripe_verify_signature('{}'::text, h, 'whsec_x', 300, to_timestamp(1767225600 + d)) AS ok
  FROM h, unnest(ARRAY[-300.5, -300.000001, -300, -299.5, 299.5, 300, 300.000001, 300.5]::numeric[]) d;
SELECT d AS seconds_after_t,
	   ipai.standard_webhook_verify(convert_to('{"test": 2432232314}', 'UTF8'), 'msg_p5jXN8AQM9LWM0D4loKWxJek',
			'1614265330', 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
			'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 300, to_timestamp(1614265330 + d)) AS ok
  FROM unnest(ARRAY[-300.5, -300, 300, 300.5]::numeric[]) d;
