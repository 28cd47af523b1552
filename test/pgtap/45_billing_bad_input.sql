-- Billing: every bad delivery gets the SPEC's SQLSTATE (IP002 for anything
-- wrong with the signature, 22023 for a verified payload that is not a
-- Stripe event) and leaves every table as it was.
BEGIN;
SELECT plan(52);
\ir ../fixtures/stripe/billing_events.sql
SET LOCAL client_min_messages = warning;

SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_pro_monthly' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name) VALUES ('a2000000-0000-4000-8000-000000000000', 'Bad input A');
-- some state that a bad delivery could damage
SELECT stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_ok1', 'customer.subscription.created', 1735689606, 'sub_OK', 'cus_OK', 'active',
	price => 'price_pro_monthly', org => 'a2000000-0000-4000-8000-000000000000'));
SELECT stripe_fixture.deliver(stripe_fixture.subscription_event(
	'evt_ok2', 'customer.subscription.created', 1735689606, 'sub_DEF', 'cus_DEF', 'active'));

-- a valid event: the bad headers below are tried on it
CREATE TEMP TABLE good AS
SELECT convert_to(stripe_fixture.subscription_event(
	'evt_bad', 'customer.subscription.deleted', 1735800000, 'sub_OK', 'cus_OK', 'canceled',
	org => 'a2000000-0000-4000-8000-000000000000'), 'UTF8') AS payload;
CREATE FUNCTION pg_temp.t(delta interval DEFAULT '0') RETURNS text
	LANGUAGE sql AS $$ SELECT extract(epoch FROM now() + delta)::bigint::text $$;
CREATE FUNCTION pg_temp.v1(payload bytea, t text, secret text DEFAULT stripe_fixture.secret()) RETURNS text
	LANGUAGE sql AS $$
	SELECT split_part(ipai.stripe_sign(payload, secret, to_timestamp(t::bigint)), 'v1=', 2) $$;
CREATE FUNCTION pg_temp.signed(payload bytea) RETURNS text
	LANGUAGE sql AS $$ SELECT ipai.stripe_sign(payload, stripe_fixture.secret()) $$;

CREATE TEMP TABLE cases (n serial, label text, payload bytea, header text, want text);

-- signature headers (the payload is fine)
INSERT INTO cases (label, payload, header, want)
SELECT label, g.payload, header, 'IP002' FROM good g, LATERAL (VALUES
	('no header (NULL)', NULL::text),
	('empty header', ''),
	('header without t', 'v1=' || pg_temp.v1(g.payload, pg_temp.t())),
	('non-numeric t', 't=abc,v1=' || pg_temp.v1(g.payload, pg_temp.t())),
	('t with a sign', 't=+' || pg_temp.t() || ',v1=' || pg_temp.v1(g.payload, pg_temp.t())),
	('t in exponent form', 't=1.7e9,v1=' || pg_temp.v1(g.payload, pg_temp.t())),
	('no v1 signature', 't=' || pg_temp.t()),
	('only a v0 signature', 't=' || pg_temp.t() || ',v0=' || pg_temp.v1(g.payload, pg_temp.t())),
	('odd-length v1', 't=' || pg_temp.t() || ',v1=' || substr(pg_temp.v1(g.payload, pg_temp.t()), 2)),
	('non-hex v1', 't=' || pg_temp.t() || ',v1=' || repeat('zz', 32)),
	('v1 one byte short', 't=' || pg_temp.t() || ',v1=' || substr(pg_temp.v1(g.payload, pg_temp.t()), 3)),
	('empty v1', 't=' || pg_temp.t() || ',v1='),
	('1 MB header', 't=' || pg_temp.t() || repeat(',v1=' || repeat('0', 64), 15400)),
	('1 MB of one value', 't=' || repeat('9', 1048576)),
	('control bytes in the header', E't=\x01\x02,v1=\x7f'),
	('garbage', 'Stripe says hi'),
	('signed with another secret', 't=' || pg_temp.t() || ',v1=' || pg_temp.v1(g.payload, pg_temp.t(), 'whsec_wrong')),
	('signed 10 minutes ago', 't=' || pg_temp.t('-10 minutes') || ',v1=' || pg_temp.v1(g.payload, pg_temp.t('-10 minutes'))),
	('signed 10 minutes ahead', 't=' || pg_temp.t('10 minutes') || ',v1=' || pg_temp.v1(g.payload, pg_temp.t('10 minutes'))),
	('signature of another payload', 't=' || pg_temp.t() || ',v1=' || pg_temp.v1(g.payload || '\x20'::bytea, pg_temp.t())),
	('signature of the re-rendered JSON', 't=' || pg_temp.t() || ',v1=' ||
		pg_temp.v1(convert_to(convert_from(g.payload, 'UTF8')::jsonb::text, 'UTF8'), pg_temp.t()))
) AS c(label, header);

-- payloads that verify but are not Stripe events
INSERT INTO cases (label, payload, header, want)
SELECT label, p, pg_temp.signed(p), '22023' FROM (VALUES
	('empty payload', ''::bytea),
	('not JSON', convert_to('not json', 'UTF8')),
	('truncated JSON', convert_to('{"id": "evt_t", "type": "invoice.paid", "created"', 'UTF8')),
	('a JSON array', convert_to('[{"id": "evt_t"}]', 'UTF8')),
	('a JSON string', convert_to('"evt_t"', 'UTF8')),
	('a JSON number', convert_to('42', 'UTF8')),
	('an empty object', convert_to('{}', 'UTF8')),
	('no id', convert_to('{"type": "customer.created", "created": 1735689600, "data": {"object": {}}}', 'UTF8')),
	('a numeric id', convert_to('{"id": 5, "type": "customer.created", "created": 1735689600}', 'UTF8')),
	('an empty id', convert_to('{"id": "", "type": "customer.created", "created": 1735689600}', 'UTF8')),
	('an id of 300 bytes', convert_to('{"id": "' || repeat('x', 300) || '", "type": "customer.created", "created": 1735689600}', 'UTF8')),
	('no type', convert_to('{"id": "evt_t", "created": 1735689600}', 'UTF8')),
	('a null type', convert_to('{"id": "evt_t", "type": null, "created": 1735689600}', 'UTF8')),
	('no created', convert_to('{"id": "evt_t", "type": "customer.created"}', 'UTF8')),
	('created as a string', convert_to('{"id": "evt_t", "type": "customer.created", "created": "1735689600"}', 'UTF8')),
	('created with a fraction', convert_to('{"id": "evt_t", "type": "customer.created", "created": 1735689600.5}', 'UTF8')),
	('negative created', convert_to('{"id": "evt_t", "type": "customer.created", "created": -1}', 'UTF8')),
	('created beyond year 9999', convert_to('{"id": "evt_t", "type": "customer.created", "created": 1e30}', 'UTF8')),
	('a handled type without data', convert_to('{"id": "evt_t", "type": "invoice.paid", "created": 1735689600}', 'UTF8')),
	('data.object not an object', convert_to('{"id": "evt_t", "type": "invoice.paid", "created": 1735689600, "data": {"object": "in_1"}}', 'UTF8')),
	('data.object without id', convert_to('{"id": "evt_t", "type": "invoice.paid", "created": 1735689600, "data": {"object": {"status": "paid"}}}', 'UTF8')),
	('a subscription without status', convert_to('{"id": "evt_t", "type": "customer.subscription.updated", "created": 1735689600, "data": {"object": {"id": "sub_OK", "customer": "cus_OK", "metadata": {"org_id": "a2000000-0000-4000-8000-000000000000"}}}}', 'UTF8')),
	('a NUL byte', '\x7b226964223a00227d'::bytea),
	('invalid UTF-8', '\x7b226964223a22ff227d'::bytea),
	('an escaped NUL', convert_to('{"id": "evt_t", "type": "customer.created", "created": 1735689600, "x": "\u0000"}', 'UTF8')),
	('a lone surrogate', convert_to('{"id": "evt_t", "type": "customer.created", "created": 1735689600, "x": "\ud800"}', 'UTF8'))
) AS c(label, p);

INSERT INTO cases (label, payload, header, want) VALUES ('NULL payload', NULL, 't=1,v1=00', '22023');

CREATE FUNCTION pg_temp.try(payload bytea, header text) RETURNS text
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM * FROM ipai.stripe_webhook(payload, header);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

CREATE TEMP TABLE before AS SELECT stripe_fixture.state() AS s;

SELECT is(pg_temp.try(c.payload, c.header), c.want, c.label || ': ' || c.want)
  FROM cases c ORDER BY c.n;

SELECT is(stripe_fixture.state(), (SELECT s FROM before), 'no bad delivery changed any table');
SELECT is((SELECT count(*) FROM ipai.webhook_events), 2::bigint, 'the inbox holds only the good events');

-- the text variant reads the same bytes; a valid header on it works
SELECT is((SELECT d.status FROM good g, ipai.stripe_webhook(convert_from(g.payload, 'UTF8'),
																	pg_temp.signed(g.payload)) d),
		  'processed', 'the good event with a good header is processed (text variant)');
SELECT is((SELECT status FROM ipai.subscriptions WHERE stripe_subscription_id = 'sub_OK'), 'canceled',
		  'and applied');

SELECT * FROM finish();
ROLLBACK;
