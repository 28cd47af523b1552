-- Webhook signatures: Stripe's Stripe-Signature and Standard Webhooks
-- (Svix, Supabase Auth hooks).  C in src/signature.c over src/webhook_sig.c.
--
-- IMMUTABLE: the result depends on the arguments only; the default now()
-- is evaluated by the caller.  The verify functions are not STRICT: a NULL
-- payload, header, secret or now gives false, never NULL, so that
-- "IF NOT ipai.stripe_verify_signature(...)" cannot let a missing header
-- through.  tolerance_seconds NULL or <= 0 and an empty secret raise 22023.

CREATE FUNCTION ipai.stripe_verify_signature(
	payload bytea,
	signature_header text,
	secret text,
	tolerance_seconds integer DEFAULT 300,
	now timestamptz DEFAULT pg_catalog.now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_stripe_verify_signature'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.stripe_verify_signature(bytea, text, text, integer, timestamptz) IS
	'True when a v1 signature of the Stripe-Signature header is the HMAC-SHA256 of "t.payload" under the whole secret and |now - t| <= tolerance_seconds; false for any other header';

CREATE FUNCTION ipai.stripe_verify_signature(
	payload text,
	signature_header text,
	secret text,
	tolerance_seconds integer DEFAULT 300,
	now timestamptz DEFAULT pg_catalog.now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_stripe_verify_signature'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.stripe_verify_signature(text, text, text, integer, timestamptz) IS
	'ipai.stripe_verify_signature over the text''s bytes in the database encoding';

CREATE FUNCTION ipai.stripe_sign(
	payload text,
	secret text,
	t timestamptz DEFAULT pg_catalog.now())
	RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_stripe_sign'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ipai.stripe_sign(text, text, timestamptz) IS
	'A Stripe-Signature header "t=<Unix seconds>,v1=<hex>" for payload, for tests and local simulation';

CREATE FUNCTION ipai.stripe_sign(
	payload bytea,
	secret text,
	t timestamptz DEFAULT pg_catalog.now())
	RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_stripe_sign'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ipai.stripe_sign(bytea, text, timestamptz) IS
	'A Stripe-Signature header "t=<Unix seconds>,v1=<hex>" for payload, for tests and local simulation';

CREATE FUNCTION ipai.standard_webhook_verify(
	payload bytea,
	msg_id text,
	msg_timestamp text,
	signature_header text,
	secret text,
	tolerance_seconds integer DEFAULT 300,
	now timestamptz DEFAULT pg_catalog.now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_standard_webhook_verify'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.standard_webhook_verify(bytea, text, text, text, text, integer, timestamptz) IS
	'Standard Webhooks (Svix, Supabase Auth hooks): true when a v1 entry of webhook-signature is the HMAC-SHA256 of "id.timestamp.payload" under the base64 secret and the timestamp is within tolerance';

CREATE FUNCTION ipai.standard_webhook_verify(
	payload text,
	msg_id text,
	msg_timestamp text,
	signature_header text,
	secret text,
	tolerance_seconds integer DEFAULT 300,
	now timestamptz DEFAULT pg_catalog.now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_standard_webhook_verify'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.standard_webhook_verify(text, text, text, text, text, integer, timestamptz) IS
	'ipai.standard_webhook_verify over the text''s bytes in the database encoding';

CREATE FUNCTION ipai.standard_webhook_sign(
	payload bytea,
	msg_id text,
	msg_timestamp text,
	secret text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_standard_webhook_sign'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ipai.standard_webhook_sign(bytea, text, text, text) IS
	'The "v1,<base64>" webhook-signature entry for a Standard Webhooks message, for tests and local simulation';

CREATE FUNCTION ipai.standard_webhook_sign(
	payload text,
	msg_id text,
	msg_timestamp text,
	secret text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_standard_webhook_sign'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ipai.standard_webhook_sign(text, text, text, text) IS
	'The "v1,<base64>" webhook-signature entry for a Standard Webhooks message, for tests and local simulation';
