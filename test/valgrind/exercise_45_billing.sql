RESET ipai.user_id;

SELECT ipai.set_stripe_webhook_secret('whsec_valgrind_billing');

UPDATE ipai.plans SET stripe_price_id = 'price_vg_pro' WHERE id = 'pro';

INSERT INTO ipai.organizations (id, name) VALUES ('a9000000-0000-4000-8000-000000000000', 'Valgrind Billing');

CREATE FUNCTION pg_temp.vg_event(evt text, type text, created bigint, obj jsonb) RETURNS text LANGUAGE sql AS $$ SELECT jsonb_pretty(jsonb_build_object('id', evt, 'object', 'event', 'type', type, 'created', created, 'livemode', false, 'api_version', '2025-03-31.basil', 'data', jsonb_build_object('object', obj))) $$;

CREATE FUNCTION pg_temp.vg_sub(sub text, cus text, status text, org text, legacy boolean) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('id', sub, 'object', 'subscription', 'customer', CASE WHEN legacy THEN to_jsonb(cus) ELSE jsonb_build_object('id', cus, 'object', 'customer') END, 'status', status, 'cancel_at_period_end', false, 'canceled_at', NULL, 'trial_end', 1738368000, 'quantity', 2, 'metadata', CASE WHEN org IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('org_id', org) END, 'items', jsonb_build_object('data', jsonb_build_array(jsonb_build_object('id', 'si_1', 'quantity', 1, 'price', 'price_unknown'), jsonb_build_object('id', 'si_2', 'plan', jsonb_build_object('id', 'price_vg_pro'), 'current_period_start', 1735689600, 'current_period_end', 1738368000), 'not an item'))) || CASE WHEN legacy THEN jsonb_build_object('current_period_start', 1735689600, 'current_period_end', 1738368000) ELSE '{}' END $$;

CREATE FUNCTION pg_temp.vg_deliver(payload text) RETURNS text LANGUAGE sql AS $$ SELECT w.status FROM ipai.stripe_webhook(payload, ipai.stripe_sign(payload, 'whsec_valgrind_billing')) w $$;

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg1', 'customer.subscription.created', 1735689606, pg_temp.vg_sub('sub_vg1', 'cus_vg1', 'active', 'a9000000-0000-4000-8000-000000000000', false)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg1', 'customer.subscription.created', 1735689606, pg_temp.vg_sub('sub_vg1', 'cus_vg1', 'active', 'a9000000-0000-4000-8000-000000000000', false)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg0', 'customer.subscription.updated', 1735689000, pg_temp.vg_sub('sub_vg1', 'cus_vg1', 'trialing', NULL, true)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg2', 'customer.subscription.created', 1735689700, pg_temp.vg_sub('sub_vg2', 'cus_vg2', 'active', 'not-a-uuid', true)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg3', 'invoice.paid', 1735689701, jsonb_build_object('id', 'in_vg3', 'object', 'invoice', 'customer', 'cus_vg2', 'status', 'paid', 'currency', 'usd', 'amount_due', 9900, 'amount_paid', 9900, 'amount_remaining', 0, 'attempt_count', 1, 'status_transitions', jsonb_build_object('paid_at', 1735689701), 'lines', jsonb_build_object('data', jsonb_build_array(jsonb_build_object('period', jsonb_build_object('start', 1735689600, 'end', 1738368000)))), 'parent', jsonb_build_object('subscription_details', jsonb_build_object('subscription', 'sub_vg2', 'metadata', jsonb_build_object())))));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg4', 'checkout.session.completed', 1735689702, jsonb_build_object('id', 'cs_vg4', 'object', 'checkout.session', 'customer', 'cus_vg2', 'subscription', 'sub_vg2', 'client_reference_id', 'a9000000-0000-4000-8000-000000000000', 'customer_details', jsonb_build_object('email', 'vg@example.com'))));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg5', 'invoice.payment_failed', 1735689600, jsonb_build_object('id', 'in_vg3', 'object', 'invoice', 'customer', 'cus_vg2', 'subscription', 'sub_vg2', 'status', 'open', 'period_start', 1735689600, 'period_end', 1738368000, 'attempt_count', 99999999999)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg6', 'customer.subscription.deleted', 1735789702, pg_temp.vg_sub('sub_vg1', 'cus_vg1', 'active', NULL, false)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg7', 'checkout.session.completed', 1735689702, jsonb_build_object('id', 'cs_vg7', 'object', 'checkout.session')));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg8', 'customer.updated', 1735689702, jsonb_build_object('id', 'cus_vg8')));

SELECT pg_temp.vg_deliver('{"id": "evt_vg9", "type": "ping", "created": 1735689702}');

DO $$ DECLARE p text; BEGIN FOREACH p IN ARRAY ARRAY['', 'nope', '[1]', '{}', '{"id": 1}', '{"id": "e", "type": "invoice.paid", "created": 1.5}', '{"id": "e", "type": "invoice.paid", "created": 1}', '{"id": "e", "type": "invoice.paid", "created": 1, "data": {"object": {"id": "x"}}}', '{"id": "e", "type": "x", "created": 1, "a": "\u0000"}', '{"id": "e", "type": "x", "created": 1e30}'] LOOP BEGIN PERFORM pg_temp.vg_deliver(p); EXCEPTION WHEN invalid_parameter_value THEN NULL; END; END LOOP; END $$;

DO $$ DECLARE h text; BEGIN FOREACH h IN ARRAY ARRAY['', 't=1,v1=00', 't=1735689600,v1=' || repeat('0', 64), 'garbage'] LOOP BEGIN PERFORM * FROM ipai.stripe_webhook('{"id": "evt_vgx", "type": "x", "created": 1}'::text, h); EXCEPTION WHEN SQLSTATE 'IP002' THEN NULL; END; END LOOP; BEGIN PERFORM * FROM ipai.stripe_webhook('\x7b2269643a00'::bytea, NULL); EXCEPTION WHEN SQLSTATE 'IP002' THEN NULL; END; END $$;

SELECT ipai.checkout_session_params('a9000000-0000-4000-8000-000000000000', 'pro', 'https://a.example/ok', 'https://a.example/cancel');

INSERT INTO ipai.organizations (id, name) VALUES ('a9000000-0000-4000-8000-000000000001', 'Valgrind Billing Link');

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg10', 'customer.subscription.created', 1735689800, pg_temp.vg_sub('sub_vg10', 'cus_vg10', 'active', NULL, false)));

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg11', 'customer.subscription.created', 1735689800, pg_temp.vg_sub('sub_vg11', 'cus_vg11', 'active', NULL, true)));

INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('a9000000-0000-4000-8000-000000000001', 'cus_vg10');

UPDATE ipai.billing_customers SET stripe_customer_id = 'cus_vg11' WHERE org_id = 'a9000000-0000-4000-8000-000000000001';

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg12', 'customer.subscription.created', 1735689900, pg_temp.vg_sub('sub_vg12', 'cus_vg12', 'active', NULL, false)));

SET session_replication_role = replica;

UPDATE ipai.billing_customers SET stripe_customer_id = 'cus_vg12' WHERE org_id = 'a9000000-0000-4000-8000-000000000001';

RESET session_replication_role;

SELECT pg_temp.vg_deliver(pg_temp.vg_event('evt_vg13', 'customer.subscription.updated', 1735689901, pg_temp.vg_sub('sub_vg12', 'cus_vg12', 'past_due', NULL, false)));

SELECT ipai.retire_stripe_webhook_secret('whsec_valgrind_billing');
