-- a signed Stripe delivery (service_role): events 1..3000 of 8 subscriptions;
-- the pool is small enough that most events are delivered several times
\set r random(1, 3000)
SELECT soak.webhook(:r);
