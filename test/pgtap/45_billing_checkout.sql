-- Billing: ipai.checkout_session_params, the Stripe Checkout Session request
-- behind the upgrade button: who may ask, bad arguments, every field.
BEGIN;
SELECT plan(24);
SET LOCAL client_min_messages = warning;

UPDATE ipai.plans SET stripe_price_id = 'price_pro_monthly' WHERE id = 'pro';
INSERT INTO ipai.organizations (id, name, billing_email) VALUES
	('a3000000-0000-4000-8000-000000000000', 'Checkout A', 'billing@a.example'),
	('b3000000-0000-4000-8000-000000000000', 'Checkout B', NULL),
	('c3000000-0000-4000-8000-000000000000', 'Checkout C', 'billing@c.example');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('a3000000-0000-4000-8000-000000000000', 'a3000000-0000-4000-8000-00000000000f', 'owner'),
	('a3000000-0000-4000-8000-000000000000', 'a3000000-0000-4000-8000-00000000000a', 'admin'),
	('a3000000-0000-4000-8000-000000000000', 'a3000000-0000-4000-8000-00000000000e', 'editor'),
	('a3000000-0000-4000-8000-000000000000', 'a3000000-0000-4000-8000-00000000000c', 'viewer'),
	('b3000000-0000-4000-8000-000000000000', 'b3000000-0000-4000-8000-00000000000f', 'owner');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES
	('c3000000-0000-4000-8000-000000000000', 'cus_C3');

CREATE FUNCTION pg_temp.params(org uuid, plan text DEFAULT 'pro',
							   ok text DEFAULT 'https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}',
							   cancel text DEFAULT 'https://app.example.com/billing')
	RETURNS jsonb LANGUAGE sql AS $$ SELECT ipai.checkout_session_params(org, plan, ok, cancel) $$;

SELECT is(pg_temp.params('a3000000-0000-4000-8000-000000000000'),
		  '{"mode": "subscription",
			"line_items": [{"price": "price_pro_monthly", "quantity": 1}],
			"success_url": "https://app.example.com/billing?session_id={CHECKOUT_SESSION_ID}",
			"cancel_url": "https://app.example.com/billing",
			"client_reference_id": "a3000000-0000-4000-8000-000000000000",
			"metadata": {"org_id": "a3000000-0000-4000-8000-000000000000", "plan_id": "pro"},
			"subscription_data": {"metadata": {"org_id": "a3000000-0000-4000-8000-000000000000", "plan_id": "pro"}},
			"customer_email": "billing@a.example"}'::jsonb,
		  'every field of the request, customer_email from the billing e-mail');
SELECT is(pg_temp.params('c3000000-0000-4000-8000-000000000000')->>'customer', 'cus_C3',
		  'the organization''s Stripe customer when it has one');
SELECT ok(NOT pg_temp.params('c3000000-0000-4000-8000-000000000000') ? 'customer_email',
		  'and then no customer_email');
SELECT ok(NOT pg_temp.params('b3000000-0000-4000-8000-000000000000') ?| ARRAY['customer', 'customer_email'],
		  'neither without customer or billing e-mail');

-- bad arguments
SELECT throws_ok($$SELECT pg_temp.params('dead0000-0000-4000-8000-000000000000')$$, '22023', NULL,
				 'an unknown organization is 22023');
SELECT throws_ok($$SELECT pg_temp.params(NULL)$$, '22023', NULL, 'a NULL organization is 22023');
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', 'platinum')$$, '22023',
				 'unknown plan "platinum"', 'an unknown plan is 22023');
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', NULL)$$, '22023', NULL,
				 'a NULL plan is 22023');
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', 'free')$$, '22023',
				 'plan "free" has no Stripe price', 'a plan without a Stripe price is 22023');
SELECT throws_ok(format($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', 'pro', %L)$$, u),
				 '22023', NULL, format('success_url %s is 22023', coalesce(replace(u, E'\n', '\n'), 'NULL')))
  FROM unnest(ARRAY['ftp://app.example.com/', 'javascript:alert(1)', '/billing', 'https://',
					'https://app.example.com/bill ing', E'https://app.example.com/\n', NULL]) u;
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', 'pro',
										 'https://app.example.com/', 'mailto:x@example.com')$$,
				 '22023', NULL, 'a cancel_url that is not http(s) is 22023');
SELECT lives_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000', 'pro',
										'HTTP://localhost:3000/ok', 'http://127.0.0.1/cancel')$$,
				'plain http and localhost are accepted (development)');

-- who may ask
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', 'a3000000-0000-4000-8000-00000000000f', true);
SELECT lives_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000')$$, 'an owner may');
SELECT set_config('ipai.user_id', 'a3000000-0000-4000-8000-00000000000a', true);
SELECT lives_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000')$$, 'an admin may');
SELECT set_config('ipai.user_id', 'a3000000-0000-4000-8000-00000000000e', true);
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000')$$, '42501', NULL,
				 'an editor may not');
SELECT set_config('ipai.user_id', 'a3000000-0000-4000-8000-00000000000c', true);
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000')$$, '42501', NULL,
				 'a viewer may not');
SELECT set_config('ipai.user_id', 'b3000000-0000-4000-8000-00000000000f', true);
SELECT throws_ok($$SELECT pg_temp.params('a3000000-0000-4000-8000-000000000000')$$, '42501', NULL,
				 'the owner of another organization may not');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT ipai.checkout_session_params('a3000000-0000-4000-8000-000000000000', 'pro',
													   'https://a.example/', 'https://a.example/')$$,
				 '42501', NULL, 'anon may not');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
