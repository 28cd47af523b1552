-- Billing functions, called the way callers do (results are compared).
RESET ipai.user_id;
SELECT ipai.set_stripe_webhook_secret('whsec_hostile_billing');
SELECT fingerprint, active FROM ipai.stripe_webhook_secrets() ORDER BY id;
UPDATE ipai.plans SET stripe_price_id = 'price_hostile_pro' WHERE id OPERATOR(pg_catalog.=) 'pro';
INSERT INTO ipai.organizations (id, name, billing_email) VALUES ('a8000000-0000-4000-8000-000000000000', 'Hostile Billing', 'billing@hostile.example');
CREATE TEMP TABLE hostile_events (k text, payload text);
INSERT INTO hostile_events VALUES
('sub', '{"id": "evt_h1", "object": "event", "type": "customer.subscription.created", "created": 1735689606, "data": {"object": {"id": "sub_h1", "object": "subscription", "customer": "cus_h1", "status": "active", "metadata": {"org_id": "a8000000-0000-4000-8000-000000000000"}, "items": {"data": [{"id": "si_h1", "quantity": 1, "price": {"id": "price_hostile_pro"}, "current_period_start": 1735689600, "current_period_end": 1738368000}]}}}}'),
('deferred', '{"id": "evt_h2", "object": "event", "type": "invoice.paid", "created": 1735689607, "data": {"object": {"id": "in_h2", "object": "invoice", "customer": "cus_h2", "subscription": "sub_h2", "status": "paid", "amount_paid": 9900, "amount_due": 9900, "amount_remaining": 0, "currency": "usd"}}}'),
('checkout', '{"id": "evt_h3", "object": "event", "type": "checkout.session.completed", "created": 1735689608, "data": {"object": {"id": "cs_h3", "object": "checkout.session", "customer": "cus_h2", "subscription": "sub_h2", "client_reference_id": "a8000000-0000-4000-8000-000000000000", "metadata": {"org_id": "a8000000-0000-4000-8000-000000000000"}}}}'),
('other', '{"id": "evt_h4", "object": "event", "type": "customer.updated", "created": 1735689609, "data": {"object": {"id": "cus_h1"}}}'),
('deleted', '{"id": "evt_h5", "object": "event", "type": "customer.subscription.deleted", "created": 1735789606, "data": {"object": {"id": "sub_h1", "object": "subscription", "customer": "cus_h1", "status": "canceled", "metadata": {"org_id": "a8000000-0000-4000-8000-000000000000"}, "items": {"data": [{"id": "si_h1", "price": {"id": "price_hostile_pro"}, "current_period_start": 1735689600, "current_period_end": 1738368000}]}}}}');
SELECT e.k, w.status, w.event_id, w.event_type FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'sub';
SELECT plan_id FROM ipai.organizations WHERE id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000';
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(convert_to(e.payload, 'UTF8'), ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'sub';
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'deferred';
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'checkout';
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'other';
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'deleted';
SELECT event_id, status, error FROM ipai.webhook_events WHERE event_id OPERATOR(pg_catalog.~~) 'evt_h_' ORDER BY event_id;
SELECT stripe_subscription_id, status, plan_id, current_period_end FROM ipai.subscriptions WHERE org_id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000' ORDER BY 1;
SELECT stripe_invoice_id, status, amount_paid FROM ipai.invoices WHERE org_id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000';
SELECT stripe_customer_id FROM ipai.billing_customers WHERE org_id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000';
SELECT plan_id FROM ipai.organizations WHERE id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000';
SELECT action, object_id FROM ipai.audit_log WHERE org_id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000000' ORDER BY id;
SELECT ipai.subscription_grants_plan(s) FROM unnest(ARRAY['active', 'trialing', 'past_due', 'unpaid', 'canceled', NULL]) s;
SELECT ipai.checkout_session_params('a8000000-0000-4000-8000-000000000000', 'pro', 'https://app.example.com/ok', 'https://app.example.com/cancel');
-- a deferred subscription released by an operator's link (the trigger)
INSERT INTO ipai.organizations (id, name) VALUES ('a8000000-0000-4000-8000-000000000001', 'Hostile Billing Link');
INSERT INTO hostile_events VALUES
('linked', '{"id": "evt_h6", "object": "event", "type": "customer.subscription.created", "created": 1735689610, "data": {"object": {"id": "sub_h6", "object": "subscription", "customer": "cus_h6", "status": "trialing", "metadata": {}, "items": {"data": [{"id": "si_h6", "quantity": 1, "price": {"id": "price_hostile_pro"}, "current_period_start": 1735689600, "current_period_end": 1738368000}]}}}}');
SELECT e.k, w.status FROM hostile_events e, ipai.stripe_webhook(e.payload, ipai.stripe_sign(e.payload, 'whsec_hostile_billing')) w WHERE e.k OPERATOR(pg_catalog.=) 'linked';
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) VALUES ('a8000000-0000-4000-8000-000000000001', 'cus_h6');
SELECT event_id, status, error FROM ipai.webhook_events WHERE event_id OPERATOR(pg_catalog.=) 'evt_h6';
SELECT stripe_subscription_id, status, plan_id FROM ipai.subscriptions WHERE org_id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000001';
SELECT plan_id FROM ipai.organizations WHERE id OPERATOR(pg_catalog.=) 'a8000000-0000-4000-8000-000000000001';
SELECT ipai.retire_stripe_webhook_secret('whsec_hostile_billing');
