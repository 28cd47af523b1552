-- test/soak/setup.sql — the soak test's world and its thin callers
-- (psql, database postgres of the soak cluster, after the extension and
-- test/fixtures/stripe/billing_events.sql).
--
-- Organizations (index → id in soak.orgs):
--   1 free           100 ai_runs a month, 50 pages, 3 seats: hits its limits
--   2 soak_team      3,000 ai_runs, 3,000 pages, 30 seats (hard)
--   3 pro            unlimited metered ai_runs (meter events), Stripe customer
--   11..14           billing organizations: the webhook subscriptions' owners
-- Each of 1–3 has an owner, an admin and an editor.
--
-- soak.* functions are the pgbench scripts' callers: each acts as a real
-- caller does (role authenticated with ipai.user_id for members,
-- service_role for the Edge layer), calls one public function, and turns
-- the refusals a real caller expects (IP001, IP004, IP005, 22023) into a
-- result row in soak.outcomes instead of an error, so pgbench keeps going.
-- Any other error (a bug) aborts the pgbench client and fails the soak.
-- 40P01/40001 are logged as outcomes too, and the soak fails if any occurs.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
GRANT USAGE ON SCHEMA soak TO PUBLIC;

CREATE TABLE soak.orgs (i int PRIMARY KEY, id uuid NOT NULL, owner uuid, admin uuid, editor uuid);
INSERT INTO soak.orgs
SELECT i, ('c5000000-0000-4000-8000-0000000000' || lpad(i::text, 2, '0'))::uuid,
	   ('c5000000-0000-4000-8000-0000000001' || lpad(i::text, 2, '0'))::uuid,
	   ('c5000000-0000-4000-8000-0000000002' || lpad(i::text, 2, '0'))::uuid,
	   ('c5000000-0000-4000-8000-0000000003' || lpad(i::text, 2, '0'))::uuid
  FROM (VALUES (1), (2), (3), (11), (12), (13), (14)) v(i);

-- what the callers saw, written in their own transaction (so only what committed)
CREATE UNLOGGED TABLE soak.outcomes (kind text NOT NULL, result text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE UNLOGGED TABLE soak.webhook_calls (event_id text NOT NULL, sub text NOT NULL, r int NOT NULL, status text NOT NULL);
CREATE UNLOGGED TABLE soak.marks (outbox_id bigint NOT NULL, topic text NOT NULL);
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA soak TO PUBLIC;

INSERT INTO ipai.plans (id, name, base_amount) VALUES ('soak_team', 'Soak team', 29);
INSERT INTO ipai.plan_entitlements (plan_id, feature, max_quantity, enforcement, counted_by, reset_period)
VALUES ('soak_team', 'ai_runs', 3000, 'hard', 'usage_events', 'billing_period'),
	   ('soak_team', 'cms_items', 3000, 'hard', 'cms_pages', 'never'),
	   ('soak_team', 'seats', 30, 'hard', 'seats', 'never');
INSERT INTO ipai.organizations (id, name, plan_id)
SELECT id, 'Soak ' || i, CASE i WHEN 1 THEN 'free' WHEN 2 THEN 'soak_team' WHEN 3 THEN 'pro' ELSE 'free' END
  FROM soak.orgs;
INSERT INTO ipai.org_members (org_id, user_id, role)
SELECT id, owner, 'owner'::ipai.org_role FROM soak.orgs WHERE i <= 3
UNION ALL SELECT id, admin, 'admin' FROM soak.orgs WHERE i <= 3
UNION ALL SELECT id, editor, 'editor' FROM soak.orgs WHERE i <= 3;
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id) SELECT id, 'cus_soak_pro' FROM soak.orgs WHERE i = 3;
SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_1QmZ2aLgUG5tbmjcPr0Mnth' WHERE id = 'pro';

CREATE FUNCTION soak.org(i int) RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT id FROM soak.orgs WHERE orgs.i = $1 $$;
-- act as a member (role authenticated) or as the Edge layer (service_role), for this transaction
CREATE FUNCTION soak.act(who text, i int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF who = 'service' THEN
		PERFORM set_config('role', 'service_role', true);
	ELSE
		PERFORM set_config('ipai.user_id', (SELECT CASE who WHEN 'owner' THEN owner WHEN 'admin' THEN admin ELSE editor END
											FROM soak.orgs WHERE orgs.i = act.i)::text, true);
		PERFORM set_config('role', 'authenticated', true);
	END IF;
END $$;
CREATE FUNCTION soak.outcome(kind text, result text) RETURNS text LANGUAGE sql AS $$
	INSERT INTO soak.outcomes (kind, result) VALUES ($1, $2) RETURNING result $$;

-- webhooks: event r (1..pool) of subscription r % 8, owned by billing org 11 + (r % 8) % 4;
-- the same r is the same event, byte for byte (a redelivery)
CREATE FUNCTION soak.webhook(r int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	sub text := 'sub_soak_' || (r % 8);
	payload text := stripe_fixture.subscription_event('evt_soak_' || r, 'customer.subscription.updated',
		1767225600 + r, sub, 'cus_soak_' || (r % 8), (ARRAY['active', 'past_due', 'trialing'])[1 + r % 3],
		org => soak.org(11 + (r % 8) % 4));
	header text := ipai.stripe_sign(payload, stripe_fixture.secret());
	st text;
BEGIN
	PERFORM soak.act('service', 0);
	SELECT w.status INTO st FROM ipai.stripe_webhook(convert_to(payload, 'UTF8'), header) w;
	INSERT INTO soak.webhook_calls VALUES ('evt_soak_' || r, sub, r, st);
	RETURN st;
END $$;

-- metering
CREATE FUNCTION soak.consume(i int, k int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
	-- k = 0: no key; else key "k<k>" always for the same quantity
	PERFORM soak.act(CASE WHEN i = 3 THEN 'service' ELSE 'editor' END, i);
	BEGIN
		SELECT reason INTO res FROM ipai.consume_entitlement(soak.org(i), 'ai_runs', 1 + k % 3,
															 CASE WHEN k > 0 THEN 'k' || k END);
	EXCEPTION WHEN SQLSTATE 'IP001' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		res := SQLSTATE;
	END;
	RETURN soak.outcome('consume', res);
END $$;
CREATE FUNCTION soak.check(i int, f int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
	PERFORM soak.act('editor', i);
	SELECT reason INTO res FROM ipai.check_entitlement(soak.org(i), (ARRAY['ai_runs', 'cms_items', 'seats'])[1 + f % 3]);
	RETURN res;
END $$;
CREATE FUNCTION soak.record(k int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM soak.act('service', 3);
	RETURN soak.outcome('record', ipai.record_usage(soak.org(3), 'ai_runs', 1 + k % 5, 'r' || k)::text);
END $$;
CREATE FUNCTION soak.reserve(i int, q int, ttl_ms int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h uuid;
BEGIN
	PERFORM soak.act(CASE WHEN i = 3 THEN 'service' ELSE 'editor' END, i);
	BEGIN
		h := ipai.reserve_entitlement(soak.org(i), 'ai_runs', q, make_interval(secs => ttl_ms / 1000.0));
	EXCEPTION WHEN SQLSTATE 'IP001' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		PERFORM soak.outcome('reserve', SQLSTATE);
		RETURN '-';
	END;
	PERFORM soak.outcome('reserve', 'ok');
	RETURN h::text;
END $$;
-- how: 1 finalize, 2 release, 3 leave it to expire
CREATE FUNCTION soak.close_hold(i int, hold text, how int, q int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
	IF hold = '-' OR how = 3 THEN
		RETURN 'skip';
	END IF;
	PERFORM soak.act(CASE WHEN i = 3 THEN 'service' ELSE 'editor' END, i);
	BEGIN
		IF how = 1 THEN
			res := 'finalize:' || ipai.finalize_hold(hold::uuid, q);
		ELSE
			res := 'release:' || ipai.release_hold(hold::uuid);
		END IF;
	EXCEPTION WHEN SQLSTATE 'IP001' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		res := CASE how WHEN 1 THEN 'finalize:' ELSE 'release:' END || SQLSTATE;
	END;
	RETURN soak.outcome('hold', res);
END $$;

-- CMS: every call returns the page id or '-' (refused / nothing to do)
CREATE FUNCTION soak.cms_create(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p uuid;
BEGIN
	PERFORM soak.act('editor', i);
	BEGIN
		p := ipai.cms_create_page(soak.org(i), 'Soak page ' || md5(random()::text), '<p>' || md5(random()::text) || '</p>');
	EXCEPTION WHEN SQLSTATE 'IP001' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		PERFORM soak.outcome('cms_create', SQLSTATE);
		RETURN '-';
	END;
	PERFORM soak.outcome('cms_create', 'ok');
	RETURN p::text;
END $$;
-- step: request (editor), approve / reject / publish / unpublish (admin), edit (editor: plain UPDATE)
CREATE FUNCTION soak.cms_step(i int, page text, step text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF page = '-' OR page = '' THEN
		RETURN '-';
	END IF;
	PERFORM soak.act(CASE WHEN step IN ('request', 'edit') THEN 'editor' ELSE 'admin' END, i);
	BEGIN
		CASE step
		WHEN 'request' THEN PERFORM ipai.cms_request_approval(page::uuid, 'please');
		WHEN 'approve' THEN PERFORM ipai.cms_approve(page::uuid);
		WHEN 'reject' THEN PERFORM ipai.cms_reject(page::uuid, 'not yet');
		WHEN 'publish' THEN PERFORM ipai.cms_publish(page::uuid);
		WHEN 'unpublish' THEN PERFORM ipai.cms_unpublish(page::uuid);
		WHEN 'edit' THEN UPDATE ipai.cms_pages SET body = '<p>' || md5(random()::text) || '</p>' WHERE id = page::uuid;
		END CASE;
	EXCEPTION WHEN SQLSTATE 'IP004' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		PERFORM soak.outcome('cms_' || step, SQLSTATE);
		RETURN '-';
	END;
	PERFORM soak.outcome('cms_' || step, 'ok');
	RETURN page;
END $$;
-- a random page of organization i in a status (as its admin sees it)
CREATE FUNCTION soak.cms_pick(i int, st text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT id::text FROM ipai.cms_pages
					  WHERE org_id = soak.org(i) AND status = st::ipai.page_status
					  ORDER BY random() LIMIT 1), '-') $$;
-- schedule publish/unpublish in ms milliseconds (admin)
CREATE FUNCTION soak.cms_schedule(i int, page text, action text, ms int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF page = '-' THEN
		RETURN '-';
	END IF;
	PERFORM soak.act('admin', i);
	BEGIN
		PERFORM ipai.cms_schedule_publish(page::uuid, clock_timestamp() + make_interval(secs => ms / 1000.0), action);
	EXCEPTION WHEN SQLSTATE 'IP004' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		RETURN soak.outcome('cms_schedule', SQLSTATE);
	END;
	RETURN soak.outcome('cms_schedule', 'ok');
END $$;
CREATE FUNCTION soak.run_due() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	PERFORM soak.act('service', 0);
	RETURN ipai.run_due_publications();
END $$;

-- invitations: invite (admin) returns the token from the outbox row the
-- invitation wrote (read as the Edge sender would, in the same transaction)
CREATE FUNCTION soak.invite(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	email text := 'soak-' || substr(md5(random()::text), 1, 12) || '@example.com';
	tok text;
BEGIN
	PERFORM soak.act('admin', i);
	BEGIN
		PERFORM ipai.invite_member(soak.org(i), email, 'viewer');
	EXCEPTION WHEN SQLSTATE 'IP005' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		PERFORM soak.outcome('invite', SQLSTATE);
		RETURN '-';
	END;
	PERFORM soak.act('service', 0);
	SELECT payload->>'token' INTO STRICT tok FROM ipai.outbox WHERE topic = 'auth.invite' AND payload->>'email' = email;
	PERFORM soak.outcome('invite', 'ok');
	RETURN tok;
END $$;
CREATE FUNCTION soak.accept(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF tok = '-' THEN
		RETURN '-';
	END IF;
	PERFORM set_config('ipai.user_id', gen_random_uuid()::text, true);
	PERFORM set_config('role', 'authenticated', true);
	BEGIN
		PERFORM ipai.accept_invitation(tok);
	EXCEPTION WHEN SQLSTATE 'IP005' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
		RETURN soak.outcome('accept', SQLSTATE);
	END;
	RETURN soak.outcome('accept', 'ok');
END $$;

-- the outbox, as the Edge sender: claim (one transaction), then mark each
-- row sent (another); marking again (a retrying sender) must answer false
CREATE FUNCTION soak.claim(t int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM soak.act('service', 0);
	RETURN coalesce((SELECT string_agg(c.id::text, ',')
					   FROM ipai.outbox_claim((ARRAY['stripe.meter_event', 'auth.invite'])[1 + t % 2], 5) c), '-');
END $$;
CREATE FUNCTION soak.mark(ids text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE oid_ bigint; n int := 0;
BEGIN
	IF ids = '-' THEN
		RETURN 0;
	END IF;
	PERFORM soak.act('service', 0);
	FOREACH oid_ IN ARRAY string_to_array(ids, ',')::bigint[] LOOP
		IF ipai.outbox_mark_sent(oid_) THEN
			INSERT INTO soak.marks SELECT o.id, o.topic FROM ipai.outbox o WHERE o.id = oid_;
			n := n + 1;
		END IF;
	END LOOP;
	-- a retrying sender marks the first one again
	IF ipai.outbox_mark_sent(split_part(ids, ',', 1)::bigint) THEN
		INSERT INTO soak.marks SELECT o.id, o.topic FROM ipai.outbox o WHERE o.id = split_part(ids, ',', 1)::bigint;
	END IF;
	RETURN n;
END $$;
