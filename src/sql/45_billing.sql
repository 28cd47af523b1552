-- Billing: the Stripe webhook inbox (C, src/webhook.c over
-- src/stripe_event.c and src/stripe_apply.c), its signing secrets, and the
-- Checkout Session request behind the upgrade button.  See docs/billing.md.

-- Does a subscription in this status give the organization its plan?
-- active and trialing do; past_due keeps the plan while Stripe retries the
-- payment; incomplete, incomplete_expired, unpaid, paused and canceled do
-- not (the organization falls back to the default plan).
CREATE FUNCTION ipai.subscription_grants_plan(status text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT coalesce($1 OPERATOR(pg_catalog.=) ANY ('{active,trialing,past_due}'::text[]), false) $$;
COMMENT ON FUNCTION ipai.subscription_grants_plan(text) IS
	'True for the subscription statuses that give the organization the subscription''s plan';

-- ipai.stripe_webhook(payload, signature_header): verify, dedupe, apply.
-- SECURITY DEFINER: it reads the signing secrets and writes billing rows
-- that its caller (service_role) cannot write directly.
CREATE FUNCTION ipai.stripe_webhook(payload bytea, signature_header text,
									OUT status text, OUT event_id text, OUT event_type text)
	RETURNS record
	AS 'MODULE_PATHNAME', 'ipai_stripe_webhook'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION ipai.stripe_webhook(bytea, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.stripe_webhook(bytea, text) IS
	'Stripe webhook inbox: verifies the Stripe-Signature header (IP002 otherwise), applies the event once; status processed, duplicate, ignored or deferred';

CREATE FUNCTION ipai.stripe_webhook(payload text, signature_header text,
									OUT status text, OUT event_id text, OUT event_type text)
	RETURNS record
	AS 'MODULE_PATHNAME', 'ipai_stripe_webhook'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION ipai.stripe_webhook(text, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.stripe_webhook(text, text) IS
	'ipai.stripe_webhook over the text''s bytes in the database encoding';

-- Row trigger of ipai.billing_customers (BEFORE and AFTER INSERT OR UPDATE
-- OF stripe_customer_id, src/webhook.c): a link written by anyone but the
-- webhook releases the deferred events of that customer in the same
-- transaction.  BEFORE takes the customer's advisory lock (the one every
-- delivery of that customer takes), AFTER applies the events.
CREATE FUNCTION ipai._billing_customer_linked() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_billing_customer_linked'
	LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION ipai._billing_customer_linked() FROM PUBLIC;
COMMENT ON FUNCTION ipai._billing_customer_linked() IS
	'Trigger: a Stripe customer linked to an organization outside the webhook releases its deferred webhook events';

-- A short, non-reversible name for a secret in logs and listings.
CREATE FUNCTION ipai._secret_fingerprint(secret text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	AS $$ SELECT 'sha256:' OPERATOR(pg_catalog.||)
				 pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to($1, 'UTF8')), 'hex'), 12) $$;
REVOKE ALL ON FUNCTION ipai._secret_fingerprint(text) FROM PUBLIC;

-- Raises 42501 unless the caller is a superuser or service_role.
CREATE FUNCTION ipai._require_secret_admin() RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied to manage webhook signing secrets'
			USING ERRCODE = '42501',
				  HINT = 'Only superusers and service_role manage signing secrets.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._require_secret_admin() FROM PUBLIC;

-- Adds (or re-activates) a Stripe signing secret; older secrets stay
-- active, so a rotation is: set the new one, let Stripe sign with both,
-- retire the old one.  expires_at (optional, in the future) retires it
-- automatically.  Returns how many secrets are active now.
CREATE FUNCTION ipai.set_stripe_webhook_secret(secret text, expires_at timestamptz DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	new_secret text := set_stripe_webhook_secret.secret;
	new_expiry timestamptz := set_stripe_webhook_secret.expires_at;
	sid bigint;
	active integer;
BEGIN
	PERFORM ipai._require_secret_admin();
	IF new_secret IS NULL OR new_secret OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'webhook signing secret must not be empty' USING ERRCODE = '22023';
	END IF;
	IF new_secret OPERATOR(pg_catalog.~) '[[:space:][:cntrl:]]' THEN
		RAISE EXCEPTION 'webhook signing secret must not contain white space or control characters'
			USING ERRCODE = '22023',
				  HINT = 'Copy the endpoint''s secret exactly as Stripe shows it ("whsec_...").';
	END IF;
	IF pg_catalog.length(new_secret) OPERATOR(pg_catalog.>) 1024 THEN
		RAISE EXCEPTION 'webhook signing secret is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 1024 characters are allowed.';
	END IF;
	IF new_expiry IS NOT NULL AND new_expiry OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION 'expires_at must be in the future'
			USING ERRCODE = '22023',
				  HINT = 'Use ipai.retire_stripe_webhook_secret() to retire a secret now.';
	END IF;

	INSERT INTO ipai.webhook_secrets AS w (provider, secret, expires_at)
	VALUES ('stripe', new_secret, new_expiry)
	ON CONFLICT (provider, secret) DO UPDATE SET expires_at = EXCLUDED.expires_at
	RETURNING w.id INTO sid;

	PERFORM ipai._audit(NULL, 'webhook_secret.set', 'webhook_secret', sid::text, NULL,
						pg_catalog.jsonb_build_object('provider', 'stripe',
							'fingerprint', ipai._secret_fingerprint(new_secret),
							'expires_at', new_expiry));

	SELECT pg_catalog.count(*) INTO active FROM ipai.webhook_secrets w
	 WHERE w.provider OPERATOR(pg_catalog.=) 'stripe'
	   AND (w.expires_at IS NULL OR w.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
	RETURN active;
END
$$;
REVOKE ALL ON FUNCTION ipai.set_stripe_webhook_secret(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.set_stripe_webhook_secret(text, timestamptz) IS
	'Adds a Stripe webhook signing secret (several may be active during a rotation); superuser or service_role';

-- Retires a secret at time "at" (default now); 22023 when the secret is
-- not known or already retired.  Returns how many secrets stay active.
CREATE FUNCTION ipai.retire_stripe_webhook_secret(secret text, at timestamptz DEFAULT pg_catalog.now())
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	old_secret text := retire_stripe_webhook_secret.secret;
	retire_at timestamptz := coalesce(retire_stripe_webhook_secret.at, pg_catalog.now());
	sid bigint;
	active integer;
BEGIN
	PERFORM ipai._require_secret_admin();
	UPDATE ipai.webhook_secrets w SET expires_at = retire_at
	 WHERE w.provider OPERATOR(pg_catalog.=) 'stripe'
	   AND w.secret OPERATOR(pg_catalog.=) old_secret
	   AND (w.expires_at IS NULL OR w.expires_at OPERATOR(pg_catalog.>) retire_at)
	RETURNING w.id INTO sid;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'no active Stripe webhook secret matches'
			USING ERRCODE = '22023',
				  HINT = 'ipai.stripe_webhook_secrets() lists the secrets by fingerprint.';
	END IF;
	PERFORM ipai._audit(NULL, 'webhook_secret.retire', 'webhook_secret', sid::text, NULL,
						pg_catalog.jsonb_build_object('provider', 'stripe',
							'fingerprint', ipai._secret_fingerprint(old_secret),
							'expires_at', retire_at));
	SELECT pg_catalog.count(*) INTO active FROM ipai.webhook_secrets w
	 WHERE w.provider OPERATOR(pg_catalog.=) 'stripe'
	   AND (w.expires_at IS NULL OR w.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
	IF active OPERATOR(pg_catalog.=) 0 THEN
		RAISE WARNING 'no Stripe webhook signing secret is active any more'
			USING DETAIL = 'Every delivery is rejected with IP002 until a secret is set.';
	END IF;
	RETURN active;
END
$$;
REVOKE ALL ON FUNCTION ipai.retire_stripe_webhook_secret(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.retire_stripe_webhook_secret(text, timestamptz) IS
	'Retires a Stripe webhook signing secret at a time (default now); superuser or service_role';

-- The secrets by fingerprint, never the secrets themselves.
CREATE FUNCTION ipai.stripe_webhook_secrets()
	RETURNS TABLE (id bigint, fingerprint text, created_at timestamptz,
				   expires_at timestamptz, active boolean)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ipai._require_secret_admin();
	RETURN QUERY
	SELECT w.id, ipai._secret_fingerprint(w.secret), w.created_at, w.expires_at,
		   (w.expires_at IS NULL OR w.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())
	  FROM ipai.webhook_secrets w
	 WHERE w.provider OPERATOR(pg_catalog.=) 'stripe'
	 ORDER BY w.id;
END
$$;
REVOKE ALL ON FUNCTION ipai.stripe_webhook_secrets() FROM PUBLIC;
COMMENT ON FUNCTION ipai.stripe_webhook_secrets() IS
	'Stripe webhook signing secrets by fingerprint, with their state; superuser or service_role';

-- Is url an absolute http(s) URL fit for Stripe's success/cancel URLs?
CREATE FUNCTION ipai._is_http_url(url text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT coalesce($1 OPERATOR(pg_catalog.~*) '^https?://[^/?#@[:space:]]+([/?#][^[:space:][:cntrl:]]*)?$'
				 AND pg_catalog.length($1) OPERATOR(pg_catalog.<=) 2048, false) $$;
REVOKE ALL ON FUNCTION ipai._is_http_url(text) FROM PUBLIC;

-- The Stripe Checkout Session request for upgrading org_id to plan_id
-- (the upgrade button): subscription mode, the plan's price, the
-- organization in client_reference_id, metadata and the subscription's
-- metadata (so every later subscription event names it), and the
-- organization's Stripe customer when it has one (else its billing e-mail
-- as customer_email).  Owner or admin only (42501); unknown organization,
-- unknown plan, a plan without a Stripe price or a URL that is not
-- http(s) is 22023.  Reads only; the Edge handler billing-checkout posts
-- it to Stripe.
CREATE FUNCTION ipai.checkout_session_params(org_id uuid, plan_id text,
											 success_url text, cancel_url text)
	RETURNS jsonb
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := checkout_session_params.org_id;
	want text := checkout_session_params.plan_id;
	price text;
	customer text;
	email text;
	meta jsonb;
	params jsonb;
BEGIN
	PERFORM ipai.require_org_role(org, 'admin');
	IF want IS NULL OR NOT EXISTS (SELECT 1 FROM ipai.plans p WHERE p.id OPERATOR(pg_catalog.=) want) THEN
		RAISE EXCEPTION 'unknown plan "%"', want
			USING ERRCODE = '22023', HINT = 'The plans are listed in ipai.plans.';
	END IF;
	SELECT p.stripe_price_id INTO price FROM ipai.plans p WHERE p.id OPERATOR(pg_catalog.=) want;
	IF price IS NULL THEN
		RAISE EXCEPTION 'plan "%" has no Stripe price', want
			USING ERRCODE = '22023',
				  DETAIL = 'Only a plan with ipai.plans.stripe_price_id set can be bought through Stripe Checkout.',
				  HINT = 'Set it with UPDATE ipai.plans SET stripe_price_id = ''price_...'' WHERE id = ...';
	END IF;
	IF NOT ipai._is_http_url(success_url) THEN
		RAISE EXCEPTION 'invalid success_url "%"', success_url
			USING ERRCODE = '22023', HINT = 'Pass an absolute http:// or https:// URL.';
	END IF;
	IF NOT ipai._is_http_url(cancel_url) THEN
		RAISE EXCEPTION 'invalid cancel_url "%"', cancel_url
			USING ERRCODE = '22023', HINT = 'Pass an absolute http:// or https:// URL.';
	END IF;

	SELECT c.stripe_customer_id INTO customer FROM ipai.billing_customers c
	 WHERE c.org_id OPERATOR(pg_catalog.=) org;
	SELECT o.billing_email INTO email FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) org;

	meta := pg_catalog.jsonb_build_object('org_id', org::text, 'plan_id', want);
	params := pg_catalog.jsonb_build_object(
		'mode', 'subscription',
		'line_items', pg_catalog.jsonb_build_array(
			pg_catalog.jsonb_build_object('price', price, 'quantity', 1)),
		'success_url', success_url,
		'cancel_url', cancel_url,
		'client_reference_id', org::text,
		'metadata', meta,
		'subscription_data', pg_catalog.jsonb_build_object('metadata', meta));
	IF customer IS NOT NULL THEN
		params := params OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('customer', customer);
	ELSIF email IS NOT NULL THEN
		params := params OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('customer_email', email);
	END IF;
	RETURN params;
END
$$;
REVOKE ALL ON FUNCTION ipai.checkout_session_params(uuid, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.checkout_session_params(uuid, text, text, text) IS
	'The Stripe Checkout Session request (jsonb) for upgrading an organization to a plan; owner or admin';

CREATE FUNCTION ipai._grants_billing() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.stripe_webhook(bytea, text) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.stripe_webhook(text, text) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.set_stripe_webhook_secret(text, timestamptz) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.retire_stripe_webhook_secret(text, timestamptz) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.stripe_webhook_secrets() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.checkout_session_params(uuid, text, text, text)
		TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._is_http_url(text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_billing() FROM PUBLIC;
