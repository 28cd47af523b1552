-- ipai_saas 1.0, the first released version: frozen, never edited.  It is
-- what src/sql/*.sql built at the release; installs of later versions
-- start from the current sources, upgrades from here run the upgrade
-- scripts ipai_saas--1.0--<next>.sql of this folder in turn.
\echo Use "CREATE EXTENSION ipai_saas" to load this file. \quit
-- Identity and roles: who is acting, and whether the caller is privileged.

-- Values are ordered so that "role >= 'editor'" means editor, admin or owner.
CREATE TYPE ipai.org_role AS ENUM ('viewer', 'editor', 'admin', 'owner');

CREATE FUNCTION ipai.current_user_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ipai_current_user_id'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ipai.current_user_id() IS
	'The acting user: request.jwt.claims sub, else the ipai.user_id setting, else NULL';

-- True when the role that called in (outside any SECURITY DEFINER function)
-- is a superuser, has BYPASSRLS, or belongs to service_role.
CREATE FUNCTION ipai.caller_is_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_caller_is_privileged'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Creates the Supabase roles on plain PostgreSQL; a no-op where they exist.
-- Needs a superuser (service_role has BYPASSRLS).
CREATE FUNCTION ipai.create_supabase_roles() RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	created text[] := '{}';
BEGIN
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'anon')) THEN
		CREATE ROLE anon NOLOGIN NOINHERIT;
		created := created || 'anon'::text;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'authenticated')) THEN
		CREATE ROLE authenticated NOLOGIN NOINHERIT;
		created := created || 'authenticated'::text;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role')) THEN
		CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
		created := created || 'service_role'::text;
	END IF;
	IF pg_catalog.cardinality(created) OPERATOR(pg_catalog.=) 0 THEN
		RETURN 'roles anon, authenticated, service_role already exist';
	END IF;
	RETURN 'created roles: ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(created, ', ');
END
$$;
REVOKE ALL ON FUNCTION ipai.create_supabase_roles() FROM PUBLIC;
-- Enumerated types of the public contract.  Tables depend on them, which is
-- also what makes DROP EXTENSION without CASCADE refuse while tables exist.

CREATE TYPE ipai.page_status AS ENUM ('draft', 'pending', 'approved', 'published', 'archived');
CREATE TYPE ipai.schedule_action AS ENUM ('publish', 'unpublish');
CREATE TYPE ipai.schedule_status AS ENUM ('pending', 'running', 'done', 'failed');
-- ipai.install_schema(): creates and migrates the extension's tables.
--
-- The tables are ordinary tables, not extension members, so pg_dump keeps
-- them and what users add to them, ALTER EXTENSION stays code-only, and
-- DROP EXTENSION without CASCADE cannot destroy tenant data (the tables
-- depend on the extension's types and functions).
--
-- Migration steps are grouped by area, one function each
-- (ipai._schema_<area>(from_version)); every step is guarded by
-- "IF from_version < N" so a database at any recorded version is brought
-- to ipai._schema_target_version() exactly once.  Areas run in dependency
-- order: core, billing, cms, scheduling, admin, then metering (which
-- attaches its limit triggers to pages, members and invitations), then
-- views that read across areas (dashboards).

-- The schema version this code creates.  Bump it with a new step in every
-- area function that changes.
CREATE FUNCTION ipai._schema_target_version() RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 1 $$;

CREATE FUNCTION ipai.install_schema(distributed boolean DEFAULT false) RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	from_version integer := 0;
	target integer := ipai._schema_target_version();
	ext_version text;
	roles_note text;
	grants_fn regprocedure;
BEGIN
	IF distributed IS NULL THEN
		RAISE EXCEPTION 'argument "distributed" must not be null'
			USING ERRCODE = '22023';
	END IF;
	IF distributed AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
								   WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION 'citus is not installed in this database'
			USING ERRCODE = '0A000',
				  DETAIL = 'install_schema(distributed => true) distributes the tables with Citus.',
				  HINT = 'Run CREATE EXTENSION citus first, or call ipai.install_schema() for a single node.';
	END IF;

	-- one installer at a time; a second caller waits and then finds it done
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('ipai.install_schema'));

	SELECT extversion INTO ext_version FROM pg_catalog.pg_extension
	 WHERE extname OPERATOR(pg_catalog.=) 'ipai_saas';

	IF pg_catalog.to_regclass('ipai.schema_version') IS NULL THEN
		CREATE TABLE ipai.schema_version (
			version integer PRIMARY KEY,
			extension_version text NOT NULL,
			installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
		);
		COMMENT ON TABLE ipai.schema_version IS
			'Schema versions applied by ipai.install_schema(), newest last';
		ALTER TABLE ipai.schema_version ENABLE ROW LEVEL SECURITY;
	ELSE
		SELECT coalesce(max(version), 0) INTO from_version FROM ipai.schema_version;
	END IF;

	IF from_version OPERATOR(pg_catalog.>) target THEN
		RAISE EXCEPTION 'ipai schema version % is newer than this extension supports (%)',
			from_version, target
			USING ERRCODE = '55000',
				  HINT = 'Run ALTER EXTENSION ipai_saas UPDATE first.';
	END IF;

	roles_note := ipai.create_supabase_roles();

	IF from_version OPERATOR(pg_catalog.<) target THEN
		PERFORM ipai._schema_core(from_version);
		PERFORM ipai._schema_billing(from_version);
		PERFORM ipai._schema_cms(from_version);
		PERFORM ipai._schema_scheduling(from_version);
		PERFORM ipai._schema_admin(from_version);
		PERFORM ipai._schema_metering(from_version);
		PERFORM ipai._schema_views(from_version);
		INSERT INTO ipai.schema_version (version, extension_version)
			VALUES (target, ext_version);
	END IF;

	-- EXECUTE grants of every area, each in its ipai._grants_<area>(); run
	-- every time, so functions added by ALTER EXTENSION UPDATE get theirs
	FOR grants_fn IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND p.proname OPERATOR(pg_catalog.~) '^_grants_[a-z_]+$'
		   AND p.pronargs OPERATOR(pg_catalog.=) 0
		 ORDER BY p.proname
	LOOP
		EXECUTE pg_catalog.format('SELECT %s', grants_fn);
	END LOOP;

	IF distributed THEN
		PERFORM ipai._schema_distribute();
	END IF;

	IF from_version OPERATOR(pg_catalog.=) 0 THEN
		RETURN pg_catalog.format('ipai schema installed at version %s', target);
	ELSIF from_version OPERATOR(pg_catalog.<) target THEN
		RETURN pg_catalog.format('ipai schema migrated from version %s to %s',
								 from_version, target);
	END IF;
	RETURN pg_catalog.format('ipai schema is up to date at version %s', target);
END
$$;
REVOKE ALL ON FUNCTION ipai.install_schema(boolean) FROM PUBLIC;
COMMENT ON FUNCTION ipai.install_schema(boolean) IS
	'Creates or migrates the ipai tables (idempotent); distributed => true uses Citus';

-- Citus: shared tables become reference tables, organization-owned tables
-- are distributed by org_id and colocated with ipai.organizations.  Only
-- called when citus is installed; tables already distributed are skipped.
CREATE FUNCTION ipai._schema_distribute() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT c.oid::regclass AS rel,
			   EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
						WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid
						  AND a.attname OPERATOR(pg_catalog.=) 'org_id'
						  AND a.attnotnull AND NOT a.attisdropped) AS has_org
		  FROM pg_catalog.pg_class c
		 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND c.relkind OPERATOR(pg_catalog.=) 'r'
		 ORDER BY c.oid
	LOOP
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_class p
					WHERE p.relname OPERATOR(pg_catalog.=) 'pg_dist_partition')
		   AND EXISTS (SELECT 1 FROM pg_dist_partition d
						WHERE d.logicalrelid OPERATOR(pg_catalog.=) t.rel) THEN
			CONTINUE;
		END IF;
		IF t.rel OPERATOR(pg_catalog.=) 'ipai.organizations'::regclass THEN
			PERFORM create_distributed_table('ipai.organizations', 'id');
		ELSIF t.has_org THEN
			PERFORM create_distributed_table(t.rel, 'org_id',
											 colocate_with => 'ipai.organizations');
		ELSE
			-- plans, entitlements, inbox and other tables without a tenant
			PERFORM create_reference_table(t.rel);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_distribute() FROM PUBLIC;
-- Schema area "core": plans (shared), organizations, members, audit log.
--
-- Conventions for every area (see README, "Design"):
--  * every organization-owned table has org_id uuid NOT NULL, RLS enabled,
--    and every primary key, unique constraint, ON CONFLICT target and
--    foreign key between organization-owned tables includes org_id;
--  * ids are uuid or bigint identity;
--  * shared tables (plans) hold no organization data;
--  * policies compare org_id with (SELECT ipai.user_org_ids(...)), which
--    PostgreSQL evaluates once per statement, not once per row;
--  * authenticated gets table privileges only where RLS decides;
--    service_role gets everything and bypasses RLS; anon gets nothing but
--    the plan catalogue.

CREATE FUNCTION ipai._schema_core(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- plans: shared catalogue, readable by everyone, written by service_role
		CREATE TABLE ipai.plans (
			id text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,62}$'),
			name text NOT NULL,
			stripe_price_id text UNIQUE,
			currency text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
			base_amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (base_amount >= 0),
			billing_interval text NOT NULL DEFAULT 'month'
				CHECK (billing_interval IN ('month', 'year')),
			is_default boolean NOT NULL DEFAULT false,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE UNIQUE INDEX plans_one_default ON ipai.plans (is_default) WHERE is_default;
		COMMENT ON TABLE ipai.plans IS
			'Plans; stripe_price_id maps a Stripe price to a plan (set it with UPDATE)';

		-- features of a plan, as data (metering owns this block).  A NULL
		-- max_quantity is unlimited; enforcement 'hard' refuses usage beyond
		-- max_quantity (IP001, IP005 for seats), 'soft' allows it and says
		-- so.  counted_by says where usage comes from: usage_events (per
		-- usage period when reset_period is 'billing_period', else for the
		-- organization's lifetime), cms_pages (pages that exist) or seats
		-- (members plus pending invitations).  Metered features are billed
		-- per unit_price through Stripe meter events named
		-- stripe_meter_event_name.
		CREATE TABLE ipai.plan_entitlements (
			plan_id text NOT NULL REFERENCES ipai.plans (id) ON DELETE CASCADE,
			feature text NOT NULL CHECK (feature ~ '^[a-z][a-z0-9_]{0,62}$'),
			max_quantity bigint CHECK (max_quantity >= 0),
			enforcement text NOT NULL DEFAULT 'hard' CHECK (enforcement IN ('hard', 'soft')),
			counted_by text NOT NULL DEFAULT 'usage_events'
				CHECK (counted_by IN ('usage_events', 'cms_pages', 'seats')),
			reset_period text NOT NULL DEFAULT 'billing_period'
				CHECK (reset_period IN ('billing_period', 'never')),
			metered boolean NOT NULL DEFAULT false,
			unit_price numeric(12,4) CHECK (unit_price >= 0),
			stripe_meter_event_name text
				CHECK (stripe_meter_event_name ~ '^[A-Za-z0-9_.:-]{1,100}$'),
			PRIMARY KEY (plan_id, feature),
			-- pages and seats exist; they are not reset
			CHECK (counted_by = 'usage_events' OR reset_period = 'never'),
			-- only usage events can be billed per unit
			CHECK (NOT metered OR (counted_by = 'usage_events' AND unit_price IS NOT NULL
								   AND stripe_meter_event_name IS NOT NULL))
		);
		COMMENT ON TABLE ipai.plan_entitlements IS
			'What each plan allows per feature; max_quantity NULL means unlimited';

		INSERT INTO ipai.plans (id, name, currency, base_amount, is_default)
		VALUES ('free', 'Free', 'usd', 0, true),
			   ('pro', 'Pro', 'usd', 99.00, false)
		ON CONFLICT (id) DO NOTHING;

		INSERT INTO ipai.plan_entitlements
			(plan_id, feature, max_quantity, enforcement, counted_by, reset_period, metered,
			 unit_price, stripe_meter_event_name)
		VALUES ('free', 'ai_runs', 100, 'hard', 'usage_events', 'billing_period', false, NULL, NULL),
			   ('free', 'cms_items', 50, 'hard', 'cms_pages', 'never', false, NULL, NULL),
			   ('free', 'seats', 3, 'hard', 'seats', 'never', false, NULL, NULL),
			   ('pro', 'ai_runs', NULL, 'soft', 'usage_events', 'billing_period', true, 0.10, 'ai_runs'),
			   ('pro', 'cms_items', 10000, 'hard', 'cms_pages', 'never', false, NULL, NULL),
			   ('pro', 'seats', 25, 'hard', 'seats', 'never', false, NULL, NULL)
		ON CONFLICT (plan_id, feature) DO NOTHING;

		CREATE TABLE ipai.organizations (
			id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
			name text NOT NULL CHECK (name ~ '\S' AND length(name) <= 200),
			billing_email text CHECK (billing_email IS NULL OR ipai.email_is_valid(billing_email)),
			timezone text NOT NULL DEFAULT 'UTC',
			plan_id text NOT NULL DEFAULT 'free' REFERENCES ipai.plans (id),
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE TRIGGER organizations_check_timezone
			BEFORE INSERT OR UPDATE OF timezone ON ipai.organizations
			FOR EACH ROW EXECUTE FUNCTION ipai._organizations_check_timezone();
		COMMENT ON TABLE ipai.organizations IS
			'Tenants; a new organization is on the default plan (free)';

		CREATE TABLE ipai.org_members (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			user_id uuid NOT NULL,
			role ipai.org_role NOT NULL DEFAULT 'viewer',
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, user_id)
		);
		CREATE INDEX org_members_user_id ON ipai.org_members (user_id, org_id, role);
		CREATE TRIGGER org_members_guard
			BEFORE INSERT OR UPDATE OR DELETE ON ipai.org_members
			FOR EACH ROW EXECUTE FUNCTION ipai._org_members_guard();
		CREATE TRIGGER org_members_keep_owner
			AFTER UPDATE OR DELETE ON ipai.org_members
			FOR EACH ROW EXECUTE FUNCTION ipai._org_members_keep_owner();
		CREATE TRIGGER org_members_audit
			AFTER INSERT OR UPDATE OR DELETE ON ipai.org_members
			FOR EACH ROW EXECUTE FUNCTION ipai._org_members_audit();
		COMMENT ON TABLE ipai.org_members IS
			'Who belongs to which organization, with role owner/admin/editor/viewer';

		-- append-only journal; org_id is NULL for events of no organization
		CREATE TABLE ipai.audit_log (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			org_id uuid,
			actor_id uuid,
			actor_role name NOT NULL DEFAULT current_user,
			action text NOT NULL,
			object_type text,
			object_id text,
			old_values jsonb,
			new_values jsonb,
			created_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE INDEX audit_log_org ON ipai.audit_log (org_id, created_at);
		CREATE TRIGGER audit_log_append_only
			BEFORE UPDATE OR DELETE ON ipai.audit_log
			FOR EACH ROW EXECUTE FUNCTION ipai._append_only();
		CREATE TRIGGER audit_log_no_truncate
			BEFORE TRUNCATE ON ipai.audit_log
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._append_only();
		COMMENT ON TABLE ipai.audit_log IS
			'Append-only journal of changes (UPDATE, DELETE and TRUNCATE are refused)';

		-- work for the Edge layer, written in the same transaction as its cause
		CREATE TABLE ipai.outbox (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id bigint GENERATED ALWAYS AS IDENTITY,
			topic text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.]*$'),
			payload jsonb NOT NULL,
			dedupe_key text,
			created_at timestamptz NOT NULL DEFAULT now(),
			claimed_at timestamptz,
			claim_count integer NOT NULL DEFAULT 0,
			sent_at timestamptz,
			PRIMARY KEY (org_id, id),
			UNIQUE (org_id, topic, dedupe_key)
		);
		CREATE INDEX outbox_unsent ON ipai.outbox (topic, id) WHERE sent_at IS NULL;
		CREATE INDEX outbox_id ON ipai.outbox (id);
		COMMENT ON TABLE ipai.outbox IS
			'Work for the Edge layer (auth.invite, stripe.meter_event); service_role only';

		-- row-level security
		ALTER TABLE ipai.plans ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.plan_entitlements ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.organizations ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.org_members ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.audit_log ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.outbox ENABLE ROW LEVEL SECURITY;
		-- outbox: no policy; only service_role and superusers reach it

		CREATE POLICY plans_read ON ipai.plans FOR SELECT USING (true);
		CREATE POLICY plan_entitlements_read ON ipai.plan_entitlements FOR SELECT USING (true);

		CREATE POLICY organizations_member_read ON ipai.organizations FOR SELECT
			USING (id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY organizations_admin_update ON ipai.organizations FOR UPDATE
			USING (id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]))
			WITH CHECK (id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		CREATE POLICY organizations_owner_delete ON ipai.organizations FOR DELETE
			USING (id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('owner'))::uuid[]));

		CREATE POLICY org_members_member_read ON ipai.org_members FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY org_members_admin_insert ON ipai.org_members FOR INSERT
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		CREATE POLICY org_members_admin_update ON ipai.org_members FOR UPDATE
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]))
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		-- admins remove others; anyone may leave (the last owner cannot)
		CREATE POLICY org_members_admin_delete ON ipai.org_members FOR DELETE
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[])
				   OR user_id OPERATOR(pg_catalog.=) (SELECT ipai.current_user_id()));

		CREATE POLICY audit_log_admin_read ON ipai.audit_log FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));

		-- privileges
		GRANT USAGE ON SCHEMA ipai TO anon, authenticated, service_role;
		GRANT SELECT ON ipai.plans, ipai.plan_entitlements TO anon, authenticated;
		GRANT ALL ON ipai.plans, ipai.plan_entitlements TO service_role;
		GRANT SELECT ON ipai.organizations TO authenticated;
		GRANT UPDATE (name, billing_email, timezone) ON ipai.organizations TO authenticated;
		GRANT DELETE ON ipai.organizations TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.org_members TO authenticated;
		GRANT SELECT ON ipai.audit_log TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.organizations, ipai.org_members TO service_role;
		GRANT SELECT, INSERT ON ipai.audit_log TO service_role;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.outbox TO service_role;
		GRANT SELECT ON ipai.schema_version TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_core(integer) FROM PUBLIC;
-- Schema area "billing": Stripe customers, subscriptions, invoices, the
-- webhook inbox and the signing secrets.
--
-- Rows of customers, subscriptions and invoices are written only by
-- ipai.stripe_webhook() (src/webhook.c, src/stripe_apply.c), which keeps on
-- every row the event that last wrote it (last_event_created,
-- last_event_type, last_event_id): the ordering rule compares an incoming
-- event with these columns (see docs/billing.md, "Ordering").

CREATE FUNCTION ipai._schema_billing(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.billing_customers (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_customer_id text NOT NULL CHECK (stripe_customer_id <> ''),
			email text,
			last_event_id text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id)
		);
		COMMENT ON TABLE ipai.billing_customers IS
			'The Stripe customer of each organization, linked by checkout.session.completed';
		CREATE INDEX billing_customers_stripe_id ON ipai.billing_customers (stripe_customer_id);

		CREATE TABLE ipai.subscriptions (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_subscription_id text NOT NULL CHECK (stripe_subscription_id <> ''),
			stripe_customer_id text,
			status text NOT NULL,
			plan_id text REFERENCES ipai.plans (id),
			stripe_price_id text,
			quantity bigint,
			current_period_start timestamptz,
			current_period_end timestamptz,
			cancel_at_period_end boolean NOT NULL DEFAULT false,
			canceled_at timestamptz,
			ended_at timestamptz,
			trial_end timestamptz,
			last_event_id text,
			last_event_type text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, stripe_subscription_id)
		) WITH (fillfactor = 70);
		-- every event of a subscription rewrites its row: room on the page
		-- keeps those updates HOT (no index entries, pruned in place)
		CREATE INDEX subscriptions_stripe_id ON ipai.subscriptions (stripe_subscription_id);
		COMMENT ON TABLE ipai.subscriptions IS
			'Stripe subscriptions as of the newest applied event; the organization''s plan follows them';

		CREATE TABLE ipai.invoices (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			stripe_invoice_id text NOT NULL CHECK (stripe_invoice_id <> ''),
			stripe_subscription_id text,
			stripe_customer_id text,
			status text NOT NULL,
			currency text,
			amount_due bigint,
			amount_paid bigint,
			amount_remaining bigint,
			period_start timestamptz,
			period_end timestamptz,
			hosted_invoice_url text,
			invoice_pdf text,
			paid_at timestamptz,
			attempt_count integer,
			last_event_id text,
			last_event_type text,
			last_event_created timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, stripe_invoice_id)
		);
		CREATE INDEX invoices_stripe_id ON ipai.invoices (stripe_invoice_id);
		COMMENT ON TABLE ipai.invoices IS
			'Stripe invoices as of the newest applied event; amounts in minor units (cents)';

		-- the inbox: every delivered event once, with what became of it
		CREATE TABLE ipai.webhook_events (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			provider text NOT NULL DEFAULT 'stripe',
			event_id text NOT NULL,
			event_type text NOT NULL,
			event_created timestamptz,
			livemode boolean,
			api_version text,
			org_id uuid,
			stripe_object_id text,
			stripe_customer_id text,
			stripe_subscription_id text,
			payload jsonb NOT NULL,
			status text NOT NULL DEFAULT 'received'
				CHECK (status IN ('received', 'processed', 'ignored', 'deferred', 'failed')),
			error text,
			attempts integer NOT NULL DEFAULT 0,
			deliveries integer NOT NULL DEFAULT 1,
			received_at timestamptz NOT NULL DEFAULT now(),
			last_delivery_at timestamptz NOT NULL DEFAULT now(),
			processed_at timestamptz,
			UNIQUE (provider, event_id)
		);
		-- deferred events are found again by the customer or subscription
		-- whose link to an organization releases them
		CREATE INDEX webhook_events_deferred_customer
			ON ipai.webhook_events (stripe_customer_id) WHERE status = 'deferred';
		CREATE INDEX webhook_events_deferred_subscription
			ON ipai.webhook_events (stripe_subscription_id) WHERE status = 'deferred';
		-- a completed checkout attributes its subscription's later events
		CREATE INDEX webhook_events_checkout_subscription
			ON ipai.webhook_events (stripe_subscription_id)
			WHERE event_type = 'checkout.session.completed';
		CREATE INDEX webhook_events_org ON ipai.webhook_events (org_id, received_at);
		-- lz4 compresses a 3 KB event ~10x faster than pglz, where available
		BEGIN
			ALTER TABLE ipai.webhook_events ALTER COLUMN payload SET COMPRESSION lz4;
		EXCEPTION WHEN feature_not_supported THEN
			NULL;
		END;
		COMMENT ON TABLE ipai.webhook_events IS
			'Webhook inbox: every event once (deliveries counts re-deliveries), with its status and why';
		COMMENT ON COLUMN ipai.webhook_events.error IS
			'Why the event was deferred, ignored, or found older than the state already applied';

		-- signing secrets; several may be active during a rotation
		CREATE TABLE ipai.webhook_secrets (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			provider text NOT NULL DEFAULT 'stripe',
			secret text NOT NULL CHECK (secret <> ''),
			created_at timestamptz NOT NULL DEFAULT now(),
			expires_at timestamptz,
			UNIQUE (provider, secret)
		);
		COMMENT ON TABLE ipai.webhook_secrets IS
			'Webhook signing secrets; active while expires_at is NULL or in the future (no policy: functions only)';

		ALTER TABLE ipai.billing_customers ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.subscriptions ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.invoices ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.webhook_events ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.webhook_secrets ENABLE ROW LEVEL SECURITY;

		-- members read their organization's billing; Stripe writes it
		CREATE POLICY billing_customers_member_read ON ipai.billing_customers FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY subscriptions_member_read ON ipai.subscriptions FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY invoices_admin_read ON ipai.invoices FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		CREATE POLICY webhook_events_admin_read ON ipai.webhook_events FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));
		-- webhook_secrets: no policy at all, so nobody but service_role and
		-- superusers (who bypass RLS) sees a row, and only through functions

		GRANT SELECT ON ipai.billing_customers, ipai.subscriptions, ipai.invoices,
			ipai.webhook_events TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.billing_customers, ipai.subscriptions,
			ipai.invoices, ipai.webhook_events TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_billing(integer) FROM PUBLIC;
-- Schema area "metering": usage events, live counters, holds, and the
-- triggers that keep limits wherever usage is created.
--
-- Runs after core, billing, cms, scheduling and admin: it attaches limit
-- triggers to ipai.cms_pages (cms_items), ipai.org_members and
-- ipai.org_invitations (seats), and cache invalidation triggers to the
-- tables the entitlement functions cache per backend (organizations,
-- subscriptions, billing_customers, plan_entitlements), which signal
-- through ipai._usage_cache_signal.  The functions
-- named here live in src/sql/50_metering.sql and src/usage*.c.

CREATE FUNCTION ipai._schema_metering(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- Append-only record of usage.  period_start is the usage period the
		-- event counts in (fixed when it is recorded; '-infinity' for
		-- features that never reset); metered marks events billed through
		-- Stripe meter events; counted_inline says the recording function
		-- already added the event to its counter in the same transaction
		-- (direct INSERTs leave it false and a trigger counts them).
		--
		-- No foreign key and no CHECK constraints, on purpose: this is the
		-- hot insert of consume_entitlement, and a foreign-key check costs a
		-- query and a row lock on the organization per event, and CHECK
		-- expressions are re-read for every statement.  The recording
		-- functions validate organization, quantity and key (as the trigger
		-- does for direct INSERTs), and deleting an organization deletes
		-- its events (trigger organizations_usage_events).
		CREATE TABLE ipai.usage_events (
			org_id uuid NOT NULL,
			id bigint GENERATED ALWAYS AS IDENTITY,
			feature text NOT NULL,
			quantity bigint NOT NULL,
			idempotency_key text,
			occurred_at timestamptz NOT NULL DEFAULT now(),
			period_start timestamptz NOT NULL,
			metered boolean NOT NULL DEFAULT false,
			counted_inline boolean NOT NULL DEFAULT false,
			hold_id uuid,
			recorded_by uuid,
			recorded_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id)
		);
		-- the idempotency key is unique per organization; events without a
		-- key stay out of the index
		CREATE UNIQUE INDEX usage_events_idempotency_key
			ON ipai.usage_events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
		-- invoice previews read metered events
		CREATE INDEX usage_events_metered
			ON ipai.usage_events (org_id, period_start, feature) WHERE metered;
		CREATE TRIGGER usage_events_direct
			BEFORE INSERT ON ipai.usage_events
			FOR EACH ROW WHEN (NOT NEW.counted_inline)
			EXECUTE FUNCTION ipai._usage_events_direct();
		CREATE TRIGGER usage_events_count
			AFTER INSERT ON ipai.usage_events
			FOR EACH ROW WHEN (NOT NEW.counted_inline)
			EXECUTE FUNCTION ipai._usage_events_count();
		CREATE TRIGGER usage_events_append_only
			BEFORE UPDATE OR DELETE ON ipai.usage_events
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_events_append_only();
		CREATE TRIGGER usage_events_no_truncate
			BEFORE TRUNCATE ON ipai.usage_events
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._append_only();
		CREATE TRIGGER organizations_usage_events
			AFTER DELETE ON ipai.organizations
			REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_events_org_deleted();
		CREATE TRIGGER organizations_usage_events_truncate
			AFTER TRUNCATE ON ipai.organizations
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_events_org_deleted();
		COMMENT ON TABLE ipai.usage_events IS
			'Append-only usage; the idempotency key is unique per organization';

		-- Live counters per (org, feature, period), kept in the transaction
		-- of the event (period_start '-infinity': features that never
		-- reset, such as cms_items).  held is the sum of the active holds
		-- of the period that had not expired when it was last computed;
		-- hold_expires_at is the earliest of their expiries, so held is
		-- exact while now() < hold_expires_at and is recomputed from
		-- ipai.usage_holds otherwise.
		CREATE TABLE ipai.usage_counters (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			feature text NOT NULL,
			period_start timestamptz NOT NULL,
			period_end timestamptz,
			used bigint NOT NULL DEFAULT 0,
			held bigint NOT NULL DEFAULT 0,
			hold_expires_at timestamptz,
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, feature, period_start)
		);
		COMMENT ON TABLE ipai.usage_counters IS
			'Live usage counters, maintained with the events; ipai.refresh_org_usage() repairs drift';

		-- reservations for long-running work; a hold counts while it is
		-- active and not expired
		CREATE TABLE ipai.usage_holds (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			feature text NOT NULL,
			quantity bigint NOT NULL CHECK (quantity > 0),
			period_start timestamptz NOT NULL,
			expires_at timestamptz NOT NULL,
			status text NOT NULL DEFAULT 'active'
				CHECK (status IN ('active', 'finalized', 'released')),
			actual_quantity bigint CHECK (actual_quantity >= 0),
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			closed_at timestamptz,
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX usage_holds_id ON ipai.usage_holds (id);
		CREATE INDEX usage_holds_active ON ipai.usage_holds (org_id, feature, period_start, expires_at)
			WHERE status = 'active';
		COMMENT ON TABLE ipai.usage_holds IS
			'Reservations against a limit; active holds count until they expire';

		ALTER TABLE ipai.usage_events ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_counters ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_holds ENABLE ROW LEVEL SECURITY;

		CREATE POLICY usage_events_member_read ON ipai.usage_events FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_counters_member_read ON ipai.usage_counters FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_holds_member_read ON ipai.usage_holds FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		-- usage per organization, feature and period, from the live
		-- counters (period_start is NULL for features that never reset);
		-- reserved is what active holds keep back right now
		CREATE VIEW ipai.org_usage_current WITH (security_invoker = true) AS
		SELECT c.org_id, c.feature,
			   CASE WHEN c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
					THEN NULL ELSE c.period_start END AS period_start,
			   c.used,
			   c.period_end,
			   ipai._usage_counter_held(c.org_id, c.feature, c.period_start, c.held,
										c.hold_expires_at) AS reserved,
			   ipai._usage_period_is_current(c.org_id, c.period_start) AS is_current,
			   c.updated_at
		  FROM ipai.usage_counters c;
		COMMENT ON VIEW ipai.org_usage_current IS
			'Usage per organization, feature and period (live counters; refresh_org_usage repairs drift)';

		-- Writes go through the functions (record_usage, consume_entitlement,
		-- holds); service_role may also INSERT events directly, which a
		-- trigger counts.
		GRANT SELECT ON ipai.usage_events, ipai.usage_counters, ipai.usage_holds,
			ipai.org_usage_current TO authenticated;
		GRANT SELECT, INSERT ON ipai.usage_events TO service_role;
		GRANT SELECT ON ipai.usage_counters, ipai.usage_holds, ipai.org_usage_current TO service_role;

		-- limits where usage is created: pages (cms_items) ...
		CREATE TRIGGER cms_pages_usage_insert
			AFTER INSERT ON ipai.cms_pages
			REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		CREATE TRIGGER cms_pages_usage_delete
			AFTER DELETE ON ipai.cms_pages
			REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		CREATE TRIGGER cms_pages_usage_truncate
			AFTER TRUNCATE ON ipai.cms_pages
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._cms_pages_usage();
		-- ... and seats: members plus pending invitations
		CREATE TRIGGER org_members_seat_limit
			BEFORE INSERT ON ipai.org_members
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('member');
		CREATE TRIGGER org_invitations_seat_limit
			BEFORE INSERT OR UPDATE ON ipai.org_invitations
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('invitation');
		CREATE TRIGGER org_invitations_seat_accepted
			AFTER UPDATE OF accepted_at ON ipai.org_invitations
			FOR EACH ROW EXECUTE FUNCTION ipai._seat_limit('accepted');

		-- The entitlement functions cache plans, organizations and their
		-- subscription period per backend.  A change of what they cache
		-- registers a relcache invalidation of ipai._usage_cache_signal,
		-- which every backend receives at commit and which no statement
		-- reads: invalidating the changed table itself would re-plan every
		-- cached statement on it in every backend (the Stripe webhook's, on
		-- each subscription write).  Row triggers fire only when a column
		-- the caches read changed; ENABLE ALWAYS: also under
		-- session_replication_role = replica (logical replication).
		CREATE TABLE ipai._usage_cache_signal ();
		ALTER TABLE ipai._usage_cache_signal ENABLE ROW LEVEL SECURITY;
		REVOKE ALL ON ipai._usage_cache_signal FROM PUBLIC;
		COMMENT ON TABLE ipai._usage_cache_signal IS
			'No rows: its relcache invalidation tells every backend to drop its metering caches';

		CREATE TRIGGER plan_entitlements_consistent
			BEFORE INSERT OR UPDATE ON ipai.plan_entitlements
			FOR EACH ROW EXECUTE FUNCTION ipai._plan_entitlements_consistent();
		CREATE TRIGGER plan_entitlements_cache
			AFTER INSERT OR DELETE ON ipai.plan_entitlements
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER plan_entitlements_cache_update
			AFTER UPDATE ON ipai.plan_entitlements
			FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER plan_entitlements_cache_truncate
			AFTER TRUNCATE ON ipai.plan_entitlements
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		-- organizations: a new one is not cached yet (misses are not cached)
		CREATE TRIGGER organizations_usage_cache
			AFTER DELETE ON ipai.organizations
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER organizations_usage_cache_update
			AFTER UPDATE OF id, plan_id, timezone ON ipai.organizations
			FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.timezone IS DISTINCT FROM NEW.timezone)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER organizations_usage_cache_truncate
			AFTER TRUNCATE ON ipai.organizations
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache
			AFTER INSERT OR DELETE ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.status IS DISTINCT FROM NEW.status
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.current_period_start IS DISTINCT FROM NEW.current_period_start
							   OR OLD.current_period_end IS DISTINCT FROM NEW.current_period_end)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER subscriptions_usage_cache_truncate
			AFTER TRUNCATE ON ipai.subscriptions
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache
			AFTER INSERT OR DELETE ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache_update
			AFTER UPDATE OF org_id, stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.stripe_customer_id IS DISTINCT FROM NEW.stripe_customer_id)
			EXECUTE FUNCTION ipai._usage_cache_invalidate();
		CREATE TRIGGER billing_customers_usage_cache_truncate
			AFTER TRUNCATE ON ipai.billing_customers
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._usage_cache_invalidate();
		ALTER TABLE ipai.plan_entitlements
			ENABLE ALWAYS TRIGGER plan_entitlements_cache,
			ENABLE ALWAYS TRIGGER plan_entitlements_cache_update,
			ENABLE ALWAYS TRIGGER plan_entitlements_cache_truncate;
		ALTER TABLE ipai.organizations
			ENABLE ALWAYS TRIGGER organizations_usage_cache,
			ENABLE ALWAYS TRIGGER organizations_usage_cache_update,
			ENABLE ALWAYS TRIGGER organizations_usage_cache_truncate;
		ALTER TABLE ipai.subscriptions
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache,
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache_update,
			ENABLE ALWAYS TRIGGER subscriptions_usage_cache_truncate;
		ALTER TABLE ipai.billing_customers
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache,
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache_update,
			ENABLE ALWAYS TRIGGER billing_customers_usage_cache_truncate;
		-- meter events written before the Stripe customer was known get it
		CREATE TRIGGER billing_customers_meter_events
			AFTER INSERT OR UPDATE OF stripe_customer_id ON ipai.billing_customers
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_meter_customer();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_metering(integer) FROM PUBLIC;
-- Schema area "cms": content types, pages, versions, approvals.
--
-- The workflow lives in triggers on ipai.cms_pages so that it holds for
-- every writer, the ipai.cms_* functions and plain UPDATEs alike (see
-- src/sql/65_cms.sql and src/versions.c).  Trigger names carry a number:
-- PostgreSQL fires the triggers of one event in name order, and the
-- version numbering (20) must see the status the workflow guard (10) has
-- settled on.
--   cms_pages_10_workflow   BEFORE INSERT/UPDATE  transitions, roles, four eyes,
--                                                 content rules, slugs, metadata
--   cms_pages_20_version    BEFORE INSERT/UPDATE  (C) version := old + 1 on a
--                                                 status change, 1 on insert
--   cms_pages_snapshot_*    AFTER INSERT/UPDATE   (C) the full snapshot row
--   cms_pages_approvals     AFTER UPDATE          approval records, audit
-- and on ipai.cms_approvals:
--   cms_approvals_notify    AFTER INSERT/UPDATE   pg_notify('cms_approvals')

CREATE FUNCTION ipai._schema_cms(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- kinds of pages per organization; metadata_schema is the JSON Schema
		-- subset described in ipai.cms_metadata_problems()
		CREATE TABLE ipai.content_types (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_-]{0,62}$'),
			name text NOT NULL,
			metadata_schema jsonb,
			created_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id),
			UNIQUE (org_id, key)
		);
		CREATE TRIGGER content_types_check_schema
			BEFORE INSERT OR UPDATE OF metadata_schema ON ipai.content_types
			FOR EACH ROW EXECUTE FUNCTION ipai._content_types_check_schema();
		COMMENT ON TABLE ipai.content_types IS
			'Kinds of CMS pages per organization, with an optional JSON schema for page metadata';

		CREATE TABLE ipai.cms_pages (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			content_type_id uuid,
			slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,199}$'),
			title text NOT NULL,
			body text NOT NULL DEFAULT '',
			metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
			status ipai.page_status NOT NULL DEFAULT 'draft',
			version integer NOT NULL DEFAULT 0,
			created_by uuid,
			updated_by uuid,
			approved_by uuid,
			approved_at timestamptz,
			published_by uuid,
			published_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id),
			CONSTRAINT cms_pages_slug_unique UNIQUE (org_id, slug),
			FOREIGN KEY (org_id, content_type_id)
				REFERENCES ipai.content_types (org_id, id)
		);
		CREATE INDEX cms_pages_id ON ipai.cms_pages (id);
		CREATE INDEX cms_pages_status ON ipai.cms_pages (org_id, status);
		CREATE TRIGGER cms_pages_10_workflow
			BEFORE INSERT OR UPDATE ON ipai.cms_pages
			FOR EACH ROW EXECUTE FUNCTION ipai._cms_pages_workflow();
		CREATE TRIGGER cms_pages_20_version
			BEFORE INSERT OR UPDATE ON ipai.cms_pages
			FOR EACH ROW EXECUTE FUNCTION ipai._cms_pages_version();
		CREATE TRIGGER cms_pages_snapshot_insert
			AFTER INSERT ON ipai.cms_pages
			FOR EACH ROW EXECUTE FUNCTION ipai._cms_pages_version();
		CREATE TRIGGER cms_pages_snapshot_update
			AFTER UPDATE ON ipai.cms_pages
			FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
			EXECUTE FUNCTION ipai._cms_pages_version();
		CREATE TRIGGER cms_pages_approvals
			AFTER UPDATE ON ipai.cms_pages
			FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
			EXECUTE FUNCTION ipai._cms_pages_approvals();
		COMMENT ON TABLE ipai.cms_pages IS
			'CMS pages; status follows draft -> pending -> approved -> published, enforced by triggers';
		COMMENT ON COLUMN ipai.cms_pages.version IS
			'Number of the latest snapshot in ipai.cms_page_versions (set by trigger)';

		-- one full snapshot per status change (and the initial draft),
		-- written only by the trigger; numbered 1, 2, 3... per page
		CREATE TABLE ipai.cms_page_versions (
			org_id uuid NOT NULL,
			page_id uuid NOT NULL,
			version integer NOT NULL CHECK (version > 0),
			status ipai.page_status NOT NULL,
			title text NOT NULL,
			body text NOT NULL,
			metadata jsonb NOT NULL,
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, page_id, version),
			FOREIGN KEY (org_id, page_id) REFERENCES ipai.cms_pages (org_id, id) ON DELETE CASCADE
		);
		CREATE INDEX cms_page_versions_page ON ipai.cms_page_versions (page_id, version);
		CREATE TRIGGER cms_page_versions_append_only
			BEFORE UPDATE ON ipai.cms_page_versions
			FOR EACH ROW EXECUTE FUNCTION ipai._append_only();
		COMMENT ON TABLE ipai.cms_page_versions IS
			'Snapshot of a page at each status change, written by trigger; never updated';

		-- approval requests and their decisions; at most one pending per page
		CREATE TABLE ipai.cms_approvals (
			org_id uuid NOT NULL,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			page_id uuid NOT NULL,
			page_version integer,
			status text NOT NULL DEFAULT 'pending'
				CHECK (status IN ('pending', 'approved', 'rejected', 'voided')),
			requested_by uuid,
			requested_at timestamptz NOT NULL DEFAULT now(),
			request_comment text,
			reviewer_id uuid,
			decided_at timestamptz,
			decision_comment text,
			voided_by uuid,
			voided_at timestamptz,
			PRIMARY KEY (org_id, id),
			FOREIGN KEY (org_id, page_id) REFERENCES ipai.cms_pages (org_id, id) ON DELETE CASCADE
		);
		CREATE INDEX cms_approvals_id ON ipai.cms_approvals (id);
		CREATE INDEX cms_approvals_page ON ipai.cms_approvals (org_id, page_id, page_version);
		CREATE UNIQUE INDEX cms_approvals_one_pending ON ipai.cms_approvals (org_id, page_id)
			WHERE status = 'pending';
		CREATE TRIGGER cms_approvals_notify
			AFTER INSERT OR UPDATE OF status ON ipai.cms_approvals
			FOR EACH ROW EXECUTE FUNCTION ipai._cms_approvals_notify();
		COMMENT ON TABLE ipai.cms_approvals IS
			'Approval requests of CMS pages and their decisions (pending, approved, rejected, voided)';

		ALTER TABLE ipai.content_types ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.cms_pages ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.cms_page_versions ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.cms_approvals ENABLE ROW LEVEL SECURITY;

		CREATE POLICY content_types_member_read ON ipai.content_types FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY content_types_admin_write ON ipai.content_types FOR ALL
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]))
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));

		CREATE POLICY cms_pages_member_read ON ipai.cms_pages FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY cms_pages_editor_insert ON ipai.cms_pages FOR INSERT
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('editor'))::uuid[]));
		-- members of every role reach the workflow trigger, which refuses a
		-- viewer's edit with 42501 instead of silently updating no row
		CREATE POLICY cms_pages_member_update ON ipai.cms_pages FOR UPDATE
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]))
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY cms_pages_admin_delete ON ipai.cms_pages FOR DELETE
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));

		CREATE POLICY cms_page_versions_member_read ON ipai.cms_page_versions FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY cms_approvals_member_read ON ipai.cms_approvals FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		GRANT SELECT ON ipai.content_types, ipai.cms_pages, ipai.cms_page_versions,
			ipai.cms_approvals TO authenticated;
		GRANT INSERT, UPDATE, DELETE ON ipai.content_types TO authenticated;
		GRANT INSERT, DELETE ON ipai.cms_pages TO authenticated;
		GRANT UPDATE (title, body, metadata, slug, content_type_id, status) ON ipai.cms_pages
			TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.content_types, ipai.cms_pages,
			ipai.cms_approvals TO service_role;
		-- versions come from the trigger only
		GRANT SELECT ON ipai.cms_page_versions TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_cms(integer) FROM PUBLIC;
-- Schema area "scheduling": scheduled publish/unpublish of pages and the
-- reader view that shows a page live from its scheduled instant.
--
-- A schedule row goes pending -> running -> done | failed.  "running" is a
-- claim: claimed_by_pid and claimed_backend_start name the backend that
-- holds it, so a claim whose backend died is found by asking whether that
-- backend still exists (see src/sql/70_scheduling.sql, recover_stuck_runs).
-- There is no foreign key to the page on purpose: a schedule whose page is
-- deleted before run time must fail with a reason, not vanish.

CREATE FUNCTION ipai._schema_scheduling(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.cms_schedule (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id bigint GENERATED ALWAYS AS IDENTITY,
			page_id uuid NOT NULL,
			action ipai.schedule_action NOT NULL DEFAULT 'publish',
			run_at timestamptz NOT NULL CHECK (isfinite(run_at)),
			status ipai.schedule_status NOT NULL DEFAULT 'pending',
			attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
			-- a page locked by another transaction defers a run to retry_at
			retry_at timestamptz,
			claimed_by_pid integer,
			claimed_backend_start timestamptz,
			claimed_at timestamptz,
			executed_at timestamptz,
			lateness interval,
			executed_via text,
			error text,
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX cms_schedule_id ON ipai.cms_schedule (id);
		-- the claim scans this in run_at order; the worker reads its minimum
		CREATE INDEX cms_schedule_due ON ipai.cms_schedule (run_at, id) WHERE status = 'pending';
		CREATE INDEX cms_schedule_running ON ipai.cms_schedule (claimed_by_pid)
			WHERE status = 'running';
		-- one pending schedule per page and action: a new one replaces it
		CREATE UNIQUE INDEX cms_schedule_one_pending ON ipai.cms_schedule (org_id, page_id, action)
			WHERE status = 'pending';
		-- the reader view and the claim look up a page's open schedules
		CREATE INDEX cms_schedule_open ON ipai.cms_schedule (org_id, page_id, run_at, id)
			WHERE status IN ('pending', 'running');
		CREATE INDEX cms_schedule_page ON ipai.cms_schedule (org_id, page_id, executed_at)
			WHERE status = 'done';
		COMMENT ON TABLE ipai.cms_schedule IS
			'Scheduled publish/unpublish of pages: pending, running (claimed), done or failed';

		-- wakes the background worker once the inserting transaction commits
		CREATE TRIGGER cms_schedule_wake_worker
			AFTER INSERT OR UPDATE ON ipai.cms_schedule
			FOR EACH ROW WHEN (NEW.status = 'pending')
			EXECUTE FUNCTION ipai._cms_schedule_wake_worker();

		ALTER TABLE ipai.cms_schedule ENABLE ROW LEVEL SECURITY;
		CREATE POLICY cms_schedule_member_read ON ipai.cms_schedule FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		-- writes go through ipai.cms_schedule_publish / cms_cancel_schedule
		GRANT SELECT ON ipai.cms_schedule TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.cms_schedule TO service_role;

		-- Pages as readers should see them now, by the transaction clock:
		-- a due schedule counts as executed even before a job ran.  The
		-- effect of the open schedules is simulated in (run_at, id) order
		-- with the executor's own run-time rules (publish needs an approved
		-- page, unpublish a published one, the scheduler must still be an
		-- admin or owner).  See docs/scheduling.md for every column.
		CREATE VIEW ipai.cms_live_pages WITH (security_invoker = true) AS
		SELECT p.org_id, p.id, p.slug, p.title, p.body, p.metadata, p.content_type_id,
			   p.version, p.status,
			   live.status_live,
			   live.status_live OPERATOR(pg_catalog.=) 'published' AS is_live,
			   CASE WHEN live.status_live OPERATOR(pg_catalog.=) 'published' THEN
					CASE WHEN p.status OPERATOR(pg_catalog.=) 'published'
						 THEN coalesce(done.run_at, p.published_at)
						 ELSE o.pub_at END
			   END AS live_since,
			   o.next_publish_at,
			   o.next_unpublish_at,
			   p.published_at, p.updated_at
		  FROM ipai.cms_pages p
		  -- the page's open schedules in one index scan: the earliest due
		  -- publish and unpublish whose scheduler may still act, and the
		  -- next ones ahead (there is one pending schedule per page and
		  -- action, and a running one only while it executes, so the
		  -- smallest id goes with the earliest run_at)
		  CROSS JOIN LATERAL (
			SELECT pg_catalog.min(s.run_at) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'publish') AS pub_at,
				   pg_catalog.min(s.id) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'publish') AS pub_id,
				   pg_catalog.min(s.run_at) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS unp_at,
				   pg_catalog.min(s.id) FILTER (WHERE s.due_ok AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS unp_id,
				   pg_catalog.min(s.run_at) FILTER (WHERE NOT s.due AND s.action OPERATOR(pg_catalog.=) 'publish') AS next_publish_at,
				   pg_catalog.min(s.run_at) FILTER (WHERE NOT s.due AND s.action OPERATOR(pg_catalog.=) 'unpublish') AS next_unpublish_at
			  FROM (SELECT s.id, s.action, s.run_at,
						   s.run_at OPERATOR(pg_catalog.<=) pg_catalog.now() AS due,
						   s.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()
						   AND (s.created_by IS NULL OR EXISTS (
								SELECT 1 FROM ipai.org_members m
								 WHERE m.org_id OPERATOR(pg_catalog.=) s.org_id
								   AND m.user_id OPERATOR(pg_catalog.=) s.created_by
								   AND m.role OPERATOR(pg_catalog.>=) 'admin')) AS due_ok
					  FROM ipai.cms_schedule s
					 WHERE s.org_id OPERATOR(pg_catalog.=) p.org_id
					   AND s.page_id OPERATOR(pg_catalog.=) p.id
					   AND s.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::ipai.schedule_status[])) s
		  ) o
		  -- the executed schedule that published the page, for live_since
		  LEFT JOIN LATERAL (
			SELECT s.run_at FROM ipai.cms_schedule s
			 WHERE p.status OPERATOR(pg_catalog.=) 'published'
			   AND s.org_id OPERATOR(pg_catalog.=) p.org_id
			   AND s.page_id OPERATOR(pg_catalog.=) p.id
			   AND s.action OPERATOR(pg_catalog.=) 'publish'
			   AND s.status OPERATOR(pg_catalog.=) 'done'
			   AND s.executed_at OPERATOR(pg_catalog.>=) p.published_at
			 ORDER BY s.executed_at LIMIT 1) done ON true
		  CROSS JOIN LATERAL (
			SELECT CASE
				-- approved + due publish: published, unless a later due unpublish follows
				WHEN p.status OPERATOR(pg_catalog.=) 'approved' AND o.pub_at IS NOT NULL THEN
					CASE WHEN o.unp_at IS NOT NULL
							  AND (o.unp_at, o.unp_id) OPERATOR(pg_catalog.>) (o.pub_at, o.pub_id)
						 THEN 'draft'::ipai.page_status
						 ELSE 'published'::ipai.page_status END
				-- published + due unpublish: draft (a publish cannot follow: draft is not approved)
				WHEN p.status OPERATOR(pg_catalog.=) 'published' AND o.unp_at IS NOT NULL THEN
					'draft'::ipai.page_status
				ELSE p.status
			END AS status_live) live;
		COMMENT ON VIEW ipai.cms_live_pages IS
			'Pages with status_live: the status readers see now, counting due schedules as executed';

		GRANT SELECT ON ipai.cms_live_pages TO authenticated, service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_scheduling(integer) FROM PUBLIC;
-- Schema area "admin": invitations, and the audit of organization settings.
--
-- An invitation is "open" until it is accepted or revoked; an open
-- invitation whose expires_at has passed is "expired" and can no longer be
-- accepted.  At most one open invitation exists per organization and
-- address (org_invitations_one_open).  The token is never stored: only its
-- SHA-256 (token_hash); the raw token lives in the auth.invite outbox row
-- until the Edge layer has sent it (ipai.outbox_mark_sent erases it).
-- Nobody but the extension's functions and service_role writes the table.

CREATE FUNCTION ipai._schema_admin(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.org_invitations (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			email text NOT NULL CHECK (email = lower(email) AND ipai.email_is_valid(email)),
			role ipai.org_role NOT NULL DEFAULT 'editor',
			token_hash bytea NOT NULL CHECK (length(token_hash) = 32),
			invited_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			expires_at timestamptz NOT NULL DEFAULT now() + interval '7 days',
			sent_count integer NOT NULL DEFAULT 1 CHECK (sent_count > 0),
			last_sent_at timestamptz NOT NULL DEFAULT now(),
			accepted_at timestamptz,
			accepted_by uuid,
			revoked_at timestamptz,
			revoked_by uuid,
			revoke_reason text CHECK (revoke_reason IN ('revoked', 'expired')),
			PRIMARY KEY (org_id, id),
			CHECK (accepted_at IS NULL OR revoked_at IS NULL),
			CHECK ((accepted_at IS NULL) = (accepted_by IS NULL))
		);
		-- not UNIQUE: keys of organization tables include org_id (Citus); a
		-- collision of 256-bit random tokens does not happen
		CREATE INDEX org_invitations_token ON ipai.org_invitations (token_hash);
		CREATE INDEX org_invitations_id ON ipai.org_invitations (id);
		CREATE UNIQUE INDEX org_invitations_one_open ON ipai.org_invitations (org_id, email)
			WHERE accepted_at IS NULL AND revoked_at IS NULL;
		COMMENT ON TABLE ipai.org_invitations IS
			'Invitations to join an organization; the token is stored only as its SHA-256 (token_hash)';

		ALTER TABLE ipai.org_invitations ENABLE ROW LEVEL SECURITY;
		CREATE POLICY org_invitations_admin_read ON ipai.org_invitations FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));

		-- settings changes are audited whoever makes them (functions or UPDATE)
		CREATE TRIGGER organizations_audit_settings
			AFTER UPDATE OF name, billing_email, timezone ON ipai.organizations
			FOR EACH ROW
			WHEN (OLD.name IS DISTINCT FROM NEW.name
				  OR OLD.billing_email IS DISTINCT FROM NEW.billing_email
				  OR OLD.timezone IS DISTINCT FROM NEW.timezone)
			EXECUTE FUNCTION ipai._organizations_audit_settings();

		GRANT SELECT ON ipai.org_invitations TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.org_invitations TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_admin(integer) FROM PUBLIC;
-- Schema area "views": the dashboards and reader views.  They come last
-- because they read the tables of every other area.  Views are created
-- with security_invoker, so RLS of the reader applies: a member sees the
-- rows of their organizations only (within their role: invoices and
-- invitations are for admins and owners, the invoice preview too).
--
-- Each view is a public contract (README, "Dashboards"): columns are only
-- ever added, never renamed or removed.

CREATE FUNCTION ipai._schema_views(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- one row per organization: plan, subscription, usage period, usage
		-- of every feature against its limit, and the next invoice
		CREATE VIEW ipai.billing_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   p.name AS plan_name,
			   p.base_amount AS plan_amount,
			   p.currency AS plan_currency,
			   p.billing_interval AS plan_interval,
			   s.status AS subscription_status,
			   s.stripe_subscription_id,
			   bc.stripe_customer_id,
			   s.cancel_at_period_end,
			   per.period_start,
			   per.period_end,
			   u.ai_runs_used, u.ai_runs_max, u.ai_runs_percent,
			   u.cms_items_used, u.cms_items_max, u.cms_items_percent,
			   u.seats_used, u.seats_max, u.seats_percent,
			   u.usage,
			   inv.currency AS next_invoice_currency,
			   inv.base_amount AS next_invoice_base_amount,
			   inv.metered_quantity AS next_invoice_metered_quantity,
			   inv.metered_amount AS next_invoice_metered_amount,
			   inv.total AS next_invoice_total
		  FROM ipai.organizations o
		  JOIN ipai.plans p ON p.id = o.plan_id
		  LEFT JOIN ipai.billing_customers bc ON bc.org_id = o.id
		  LEFT JOIN LATERAL (
				SELECT s1.status, s1.stripe_subscription_id, s1.cancel_at_period_end
				  FROM ipai.subscriptions s1
				 WHERE s1.org_id = o.id
				 ORDER BY s1.status IN ('active', 'trialing', 'past_due') DESC,
						  s1.current_period_end DESC NULLS LAST, s1.updated_at DESC
				 LIMIT 1) s ON true
		  CROSS JOIN LATERAL ipai.usage_period(o.id) per
		  CROSS JOIN LATERAL (
				SELECT max(d.used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_percent,
					   max(d.used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'cms_items') AS cms_items_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_percent,
					   max(d.used) FILTER (WHERE d.feature = 'seats') AS seats_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'seats') AS seats_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'seats') AS seats_percent,
					   coalesce(jsonb_agg(jsonb_build_object(
							'feature', d.feature, 'used', d.used, 'max', d.max_quantity,
							'remaining', d.remaining, 'percent', d.percent_used,
							'enforcement', d.enforcement, 'metered', d.metered)
							ORDER BY d.feature), '[]'::jsonb) AS usage
				  FROM ipai._dashboard_usage(o.id) d) u
		  LEFT JOIN LATERAL ipai._dashboard_preview(o.id) inv ON true;
		COMMENT ON VIEW ipai.billing_dashboard IS
			'One row per organization: plan, subscription, usage period, usage against limits, next invoice (owners/admins)';

		-- one row per Stripe invoice (owners and admins see their organizations')
		CREATE VIEW ipai.invoice_history WITH (security_invoker = true) AS
		SELECT i.org_id,
			   o.name AS org_name,
			   i.stripe_invoice_id,
			   i.stripe_subscription_id,
			   i.status,
			   i.currency,
			   i.amount_due,
			   i.amount_paid,
			   i.amount_remaining,
			   ipai._stripe_amount(i.amount_due, i.currency) AS amount_due_decimal,
			   ipai._stripe_amount(i.amount_paid, i.currency) AS amount_paid_decimal,
			   i.period_start,
			   i.period_end,
			   i.paid_at,
			   i.attempt_count,
			   i.hosted_invoice_url,
			   i.invoice_pdf,
			   i.created_at,
			   i.updated_at
		  FROM ipai.invoices i
		  JOIN ipai.organizations o ON o.id = i.org_id;
		COMMENT ON VIEW ipai.invoice_history IS
			'One row per Stripe invoice; amounts in the smallest currency unit and in currency units (_decimal)';

		-- one row per organization: members with roles, open invitations
		-- (owners and admins see them), seats used of the plan's maximum
		CREATE VIEW ipai.org_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   o.billing_email,
			   o.timezone,
			   ipai.org_role_of(o.id) AS my_role,
			   m.member_count,
			   m.members,
			   i.pending_invitation_count,
			   i.pending_invitations,
			   seats.used AS seats_used,
			   seats.max_quantity AS seats_max,
			   seats.remaining AS seats_remaining,
			   o.created_at
		  FROM ipai.organizations o
		  CROSS JOIN LATERAL (
				SELECT count(*) AS member_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'user_id', mm.user_id, 'role', mm.role, 'email', em.email,
							'joined_at', mm.created_at)
							ORDER BY mm.role DESC, mm.created_at, mm.user_id), '[]'::jsonb) AS members
				  FROM ipai.org_members mm
				  LEFT JOIN LATERAL (
						SELECT ai.email FROM ipai.org_invitations ai
						 WHERE ai.org_id = mm.org_id AND ai.accepted_by = mm.user_id
						 ORDER BY ai.accepted_at DESC LIMIT 1) em ON true
				 WHERE mm.org_id = o.id) m
		  CROSS JOIN LATERAL (
				SELECT count(*) AS pending_invitation_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'id', pi.id, 'email', pi.email, 'role', pi.role,
							'invited_by', pi.invited_by, 'invited_at', pi.last_sent_at,
							'expires_at', pi.expires_at)
							ORDER BY pi.created_at, pi.email), '[]'::jsonb) AS pending_invitations
				  FROM ipai.org_invitations pi
				 WHERE pi.org_id = o.id AND pi.accepted_at IS NULL AND pi.revoked_at IS NULL
				   AND pi.expires_at > now()) i
		  LEFT JOIN LATERAL (
				SELECT c.current AS used, c.max AS max_quantity,
					   CASE WHEN c.max IS NULL THEN NULL
							WHEN c.current >= c.max THEN 0 ELSE c.max - c.current END AS remaining
				  FROM ipai.check_entitlement(o.id, 'seats', 1) c) seats ON true;
		COMMENT ON VIEW ipai.org_dashboard IS
			'One row per organization: members with roles, pending invitations (owners/admins), seats used of max';

		-- one row per pending approval request, with what a reviewer needs
		-- to call ipai.cms_diff_html(page_id, diff_from_version, diff_to_version)
		CREATE VIEW ipai.cms_approval_queue WITH (security_invoker = true) AS
		SELECT a.org_id,
			   o.name AS org_name,
			   a.id AS approval_id,
			   a.page_id,
			   pg.slug AS page_slug,
			   pg.title AS page_title,
			   pg.status AS page_status,
			   a.requested_by,
			   a.requested_at,
			   now() - a.requested_at AS age,
			   a.request_comment,
			   dv.from_version AS diff_from_version,
			   dv.to_version AS diff_to_version,
			   (a.requested_by IS DISTINCT FROM ipai.current_user_id()
				AND (ipai.caller_is_privileged() OR ipai.is_org_member(a.org_id, 'admin'))) AS can_review
		  FROM ipai.cms_approvals a
		  JOIN ipai.cms_pages pg ON pg.org_id = a.org_id AND pg.id = a.page_id
		  JOIN ipai.organizations o ON o.id = a.org_id
		  LEFT JOIN LATERAL (
				SELECT t.to_version,
					   coalesce((SELECT max(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id
									AND v.status = 'published' AND v.version < t.to_version),
								(SELECT min(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id)) AS from_version
				  FROM (SELECT coalesce(a.page_version,
										(SELECT max(v.version) FROM ipai.cms_page_versions v
										  WHERE v.org_id = a.org_id AND v.page_id = a.page_id)) AS to_version) t
				 WHERE t.to_version IS NOT NULL) dv ON true
		 WHERE a.status = 'pending';
		COMMENT ON VIEW ipai.cms_approval_queue IS
			'Pending CMS approval requests with page, requester, age and the inputs of ipai.cms_diff_html()';

		GRANT SELECT ON ipai.billing_dashboard, ipai.invoice_history, ipai.org_dashboard,
			ipai.cms_approval_queue TO authenticated, service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_views(integer) FROM PUBLIC;
-- Tenancy: membership helpers used by every policy and function, the
-- organization life cycle, and the triggers that guard membership.

-- Organizations where the acting user holds at least min_role.  Policies
-- call it as (SELECT ipai.user_org_ids(...)) so it runs once per statement.
-- SECURITY DEFINER: it must read org_members whatever the caller's grants.
CREATE FUNCTION ipai.user_org_ids(min_role ipai.org_role DEFAULT 'viewer')
	RETURNS uuid[]
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	uid uuid := ipai.current_user_id();
	ids uuid[];
BEGIN
	IF uid IS NULL THEN
		RETURN '{}';
	END IF;
	SELECT coalesce(array_agg(m.org_id), '{}') INTO ids
	  FROM ipai.org_members m
	 WHERE m.user_id OPERATOR(pg_catalog.=) uid
	   AND m.role OPERATOR(pg_catalog.>=) min_role;
	RETURN ids;
END
$$;
REVOKE ALL ON FUNCTION ipai.user_org_ids(ipai.org_role) FROM PUBLIC;

-- Does the acting user hold at least min_role in org?
CREATE FUNCTION ipai.is_org_member(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS boolean
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM ipai.org_members m
					WHERE m.org_id OPERATOR(pg_catalog.=) is_org_member.org_id
					  AND m.user_id OPERATOR(pg_catalog.=) ipai.current_user_id()
					  AND m.role OPERATOR(pg_catalog.>=) min_role);
END
$$;
REVOKE ALL ON FUNCTION ipai.is_org_member(uuid, ipai.org_role) FROM PUBLIC;

-- The acting user's role in org, or NULL.
CREATE FUNCTION ipai.org_role_of(org_id uuid) RETURNS ipai.org_role
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT m.role FROM ipai.org_members m
			 WHERE m.org_id OPERATOR(pg_catalog.=) org_role_of.org_id
			   AND m.user_id OPERATOR(pg_catalog.=) ipai.current_user_id());
END
$$;
REVOKE ALL ON FUNCTION ipai.org_role_of(uuid) FROM PUBLIC;

-- Raises unless the caller may act on org with at least min_role:
-- 22023 when org does not exist (or is NULL), 42501 when the acting user is
-- not a member with that role.  Privileged callers (superuser, service_role)
-- pass.  Functions call this first, before revealing anything.
CREATE FUNCTION ipai.require_org_role(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS void
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	have ipai.org_role;
BEGIN
	IF org_id IS NULL THEN
		RAISE EXCEPTION 'organization id must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM ipai.organizations o
					WHERE o.id OPERATOR(pg_catalog.=) require_org_role.org_id)) THEN
		RAISE EXCEPTION 'organization "%" does not exist', org_id USING ERRCODE = '22023';
	END IF;
	IF ipai.caller_is_privileged() THEN
		RETURN;
	END IF;
	SELECT m.role INTO have FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) require_org_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) ipai.current_user_id();
	IF have IS NULL THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('The acting user is not a member of organization %s.', org_id);
	END IF;
	IF have OPERATOR(pg_catalog.<) min_role THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('This needs role %s or higher in organization %s; the acting user is %s.',
											 min_role, org_id, have);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.require_org_role(uuid, ipai.org_role) FROM PUBLIC;

-- Writes one audit_log row; internal, called by the extension's functions.
CREATE FUNCTION ipai._audit(org_id uuid, action text, object_type text, object_id text,
							old_values jsonb DEFAULT NULL, new_values jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	INSERT INTO ipai.audit_log (org_id, actor_id, actor_role, action, object_type,
								object_id, old_values, new_values)
	VALUES (org_id, ipai.current_user_id(), session_user, action, object_type,
			object_id, old_values, new_values);
END
$$;
REVOKE ALL ON FUNCTION ipai._audit(uuid, text, text, text, jsonb, jsonb) FROM PUBLIC;

CREATE FUNCTION ipai.create_organization(name text,
										 owner uuid DEFAULT ipai.current_user_id(),
										 billing_email text DEFAULT NULL,
										 timezone text DEFAULT 'UTC')
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	new_id uuid;
	acting uuid := ipai.current_user_id();
BEGIN
	IF name IS NULL OR name OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'organization name must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.length(name) OPERATOR(pg_catalog.>) 200 THEN
		RAISE EXCEPTION 'organization name is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 200 characters are allowed.';
	END IF;
	IF owner IS NULL THEN
		RAISE EXCEPTION 'organization owner must not be null'
			USING ERRCODE = '22023',
				  HINT = 'Pass owner, or act as a user (JWT sub or the ipai.user_id setting).';
	END IF;
	IF NOT ipai.caller_is_privileged()
	   AND (acting IS NULL OR acting OPERATOR(pg_catalog.<>) owner) THEN
		RAISE EXCEPTION 'permission denied to create an organization for another user'
			USING ERRCODE = '42501';
	END IF;
	IF billing_email IS NOT NULL THEN
		billing_email := ipai.normalize_email(billing_email);
	END IF;

	INSERT INTO ipai.organizations (name, billing_email, timezone, plan_id, created_by)
	VALUES (pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), billing_email, coalesce(timezone, 'UTC'),
			coalesce((SELECT p.id FROM ipai.plans p WHERE p.is_default), 'free'),
			coalesce(acting, owner))
	RETURNING id INTO new_id;

	INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (new_id, owner, 'owner');

	PERFORM ipai._audit(new_id, 'organization.create', 'organization', new_id::text, NULL,
						pg_catalog.jsonb_build_object('name', pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), 'owner', owner));
	RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.create_organization(text, uuid, text, text) FROM PUBLIC;

-- Adds user_id to org with role (text, validated: 22023 for an unknown
-- role).  Admins and owners add members; only owners add owners (the
-- membership guard trigger enforces it for tenants).  Seat limits apply
-- (enforced where members are inserted).
CREATE FUNCTION ipai.add_member(org_id uuid, user_id uuid, role text DEFAULT 'viewer')
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ipai.require_org_role(add_member.org_id, 'admin');
	IF user_id IS NULL THEN
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	IF role IS NULL OR NOT role OPERATOR(pg_catalog.=) ANY (pg_catalog.enum_range(NULL::ipai.org_role)::text[]) THEN
		RAISE EXCEPTION 'unknown role "%"', role
			USING ERRCODE = '22023', HINT = 'Use owner, admin, editor or viewer.';
	END IF;
	INSERT INTO ipai.org_members (org_id, user_id, role)
	VALUES (add_member.org_id, add_member.user_id, add_member.role::ipai.org_role);
END
$$;
REVOKE ALL ON FUNCTION ipai.add_member(uuid, uuid, text) FROM PUBLIC;

-- Trigger: organizations.timezone must be a zone the server knows by name.
CREATE FUNCTION ipai._organizations_check_timezone() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT ipai._timezone_is_valid(NEW.timezone) THEN
		RAISE EXCEPTION 'invalid time zone "%"', NEW.timezone
			USING ERRCODE = '22023',
				  HINT = 'Use a name from pg_timezone_names, such as "Asia/Manila" or "UTC".';
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		NEW.updated_at := pg_catalog.now();
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._organizations_check_timezone() FROM PUBLIC;

-- Trigger (BEFORE, each row) on org_members for unprivileged writers:
-- org_id and user_id never change, roles are valid, and only an owner may
-- grant the owner role or change or remove another owner.  Trusted code
-- (SECURITY DEFINER functions of the extension, service_role) skips this.
CREATE FUNCTION ipai._org_members_guard() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	acting uuid;
	acting_role ipai.org_role;
	org uuid := CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD.org_id ELSE NEW.org_id END;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		IF NEW.org_id OPERATOR(pg_catalog.<>) OLD.org_id
		   OR NEW.user_id OPERATOR(pg_catalog.<>) OLD.user_id THEN
			RAISE EXCEPTION 'cannot move a membership to another organization or user'
				USING ERRCODE = '22023', HINT = 'Delete the membership and insert a new one.';
		END IF;
		NEW.updated_at := pg_catalog.now();
	END IF;
	IF ipai._current_role_is_privileged() THEN
		RETURN CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD ELSE NEW END;
	END IF;

	acting := ipai.current_user_id();
	acting_role := ipai.org_role_of(org);
	IF acting_role IS DISTINCT FROM 'owner'::ipai.org_role THEN
		IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' AND NEW.role OPERATOR(pg_catalog.=) 'owner' THEN
			RAISE EXCEPTION 'only an owner can grant the owner role' USING ERRCODE = '42501';
		END IF;
		IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' AND OLD.role OPERATOR(pg_catalog.=) 'owner'
		   AND NOT (TG_OP OPERATOR(pg_catalog.=) 'DELETE'
					AND OLD.user_id OPERATOR(pg_catalog.=) acting) THEN
			RAISE EXCEPTION 'only an owner can change or remove an owner' USING ERRCODE = '42501';
		END IF;
	END IF;
	RETURN CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_guard() FROM PUBLIC;

-- Trigger (AFTER, each row): an organization always keeps an owner.  The
-- organization row is locked first, so two owners demoting each other at
-- the same time are serialized and the second one is refused.  Deleting
-- the organization itself (cascade) is allowed.
CREATE FUNCTION ipai._org_members_keep_owner() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF OLD.role OPERATOR(pg_catalog.<>) 'owner'
	   OR (TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.role OPERATOR(pg_catalog.=) 'owner') THEN
		RETURN NULL;
	END IF;
	PERFORM 1 FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;			-- the organization is being deleted
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM ipai.org_members m
					WHERE m.org_id OPERATOR(pg_catalog.=) OLD.org_id
					  AND m.role OPERATOR(pg_catalog.=) 'owner')) THEN
		RAISE EXCEPTION 'an organization must keep at least one owner'
			USING ERRCODE = '23514',
				  HINT = 'Make another member owner first, or delete the organization.';
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_keep_owner() FROM PUBLIC;

-- Trigger (AFTER, each row): every membership change is audited, whoever
-- makes it (functions or plain INSERT/UPDATE/DELETE).
CREATE FUNCTION ipai._org_members_audit() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
		PERFORM ipai._audit(NEW.org_id, 'member.add', 'member', NEW.user_id::text, NULL,
							pg_catalog.jsonb_build_object('role', NEW.role));
	ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		IF NEW.role OPERATOR(pg_catalog.<>) OLD.role THEN
			PERFORM ipai._audit(NEW.org_id, 'member.role', 'member', NEW.user_id::text,
								pg_catalog.jsonb_build_object('role', OLD.role),
								pg_catalog.jsonb_build_object('role', NEW.role));
		END IF;
	ELSE
		-- not when the whole organization goes
		IF EXISTS (SELECT 1 FROM ipai.organizations o WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id) THEN
			PERFORM ipai._audit(OLD.org_id, 'member.remove', 'member', OLD.user_id::text,
								pg_catalog.jsonb_build_object('role', OLD.role), NULL);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_audit() FROM PUBLIC;

-- Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only tables.  A
-- superuser can still disable the trigger deliberately.
CREATE FUNCTION ipai._append_only() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RAISE EXCEPTION 'table %.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = '42501', DETAIL = pg_catalog.format('%s is not allowed.', TG_OP);
END
$$;
REVOKE ALL ON FUNCTION ipai._append_only() FROM PUBLIC;

-- True when the current role (inside SECURITY DEFINER code: the definer)
-- is a superuser or has BYPASSRLS.  Triggers use it to trust the
-- extension's own functions.
CREATE FUNCTION ipai._current_role_is_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_current_role_is_privileged'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Is name one of the server's time zone names (pg_timezone_names)?  Cached
-- per backend in C: reading pg_timezone_names costs tens of milliseconds.
CREATE FUNCTION ipai._timezone_is_valid(name text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_timezone_is_valid'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- E-mail addresses: plausibility check and normalised form.
CREATE FUNCTION ipai.email_is_valid(email text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_email_is_valid'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- lower-cased and trimmed; 22023 when not a plausible address
CREATE FUNCTION ipai.normalize_email(email text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	e text := pg_catalog.lower(email);
BEGIN
	IF email IS NULL OR NOT ipai.email_is_valid(e) THEN
		RAISE EXCEPTION 'invalid e-mail address "%"', email USING ERRCODE = '22023';
	END IF;
	RETURN e;
END
$$;

-- EXECUTE grants of this file's functions to the Supabase roles; called by
-- ipai.install_schema() on every run (the roles may not exist when the
-- extension is created), like every other ipai._grants_<area>() function.
CREATE FUNCTION ipai._grants_tenancy() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.user_org_ids(ipai.org_role) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.is_org_member(uuid, ipai.org_role) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.org_role_of(uuid) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.require_org_role(uuid, ipai.org_role) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.add_member(uuid, uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.create_organization(text, uuid, text, text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_tenancy() FROM PUBLIC;
-- The outbox: work for the Edge layer (SPEC section 6), written in the
-- same transaction as the change that causes it, claimed by senders with
-- FOR UPDATE SKIP LOCKED and marked sent once.  Only service_role and
-- superusers reach it (no EXECUTE for anon or authenticated, no RLS policy).

-- Claims up to max_rows unsent rows of topic, oldest first: rows nobody
-- holds, or whose claim is older than claim_timeout (a sender that died).
-- Concurrent claimers never get the same row.
-- (The work is in _outbox_claim: PL/pgSQL refuses an input parameter and an
-- output column of the same name, "topic", which the contract has.)
CREATE FUNCTION ipai._outbox_claim(want_topic text, max_rows integer, claim_timeout interval)
	RETURNS TABLE (out_id bigint, out_org_id uuid, out_topic text, out_payload jsonb,
				   out_created_at timestamptz)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF want_topic IS NULL THEN
		RAISE EXCEPTION 'topic must not be null' USING ERRCODE = '22023';
	END IF;
	IF max_rows IS NULL OR max_rows OPERATOR(pg_catalog.<) 1 OR max_rows OPERATOR(pg_catalog.>) 10000 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 10000' USING ERRCODE = '22023';
	END IF;
	IF claim_timeout IS NULL OR claim_timeout OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'claim_timeout must be positive' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
	WITH candidates AS (
		SELECT o.org_id, o.id FROM ipai.outbox o
		 WHERE o.topic OPERATOR(pg_catalog.=) want_topic
		   AND o.sent_at IS NULL
		   AND (o.claimed_at IS NULL
				OR o.claimed_at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) claim_timeout))
		 ORDER BY o.id
		 LIMIT max_rows
		 FOR UPDATE SKIP LOCKED
	)
	UPDATE ipai.outbox o
	   SET claimed_at = pg_catalog.clock_timestamp(),
		   claim_count = o.claim_count OPERATOR(pg_catalog.+) 1
	  FROM candidates c
	 WHERE o.org_id OPERATOR(pg_catalog.=) c.org_id AND o.id OPERATOR(pg_catalog.=) c.id
	RETURNING o.id, o.org_id, o.topic, o.payload, o.created_at;
END
$$;
REVOKE ALL ON FUNCTION ipai._outbox_claim(text, integer, interval) FROM PUBLIC;

CREATE FUNCTION ipai.outbox_claim(topic text, max_rows integer DEFAULT 100,
								  claim_timeout interval DEFAULT '5 minutes')
	RETURNS TABLE (id bigint, org_id uuid, topic text, payload jsonb, created_at timestamptz)
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT * FROM ipai._outbox_claim($1, $2, $3) $$;
REVOKE ALL ON FUNCTION ipai.outbox_claim(text, integer, interval) FROM PUBLIC;

-- Marks a row sent: true the first time, false when it was already sent
-- (a retrying sender).  Secrets in the payload (the invitation token of
-- auth.invite) are erased.  An unknown id is 22023.
CREATE FUNCTION ipai.outbox_mark_sent(id bigint) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	want bigint := outbox_mark_sent.id;
BEGIN
	IF want IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = '22023';
	END IF;
	UPDATE ipai.outbox o
	   SET sent_at = pg_catalog.clock_timestamp(),
		   payload = CASE WHEN o.topic OPERATOR(pg_catalog.=) 'auth.invite'
						  THEN o.payload OPERATOR(pg_catalog.-) 'token'::text ELSE o.payload END
	 WHERE o.id OPERATOR(pg_catalog.=) want AND o.sent_at IS NULL;
	IF FOUND THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT 1 FROM ipai.outbox o WHERE o.id OPERATOR(pg_catalog.=) want) THEN
		RETURN false;
	END IF;
	RAISE EXCEPTION 'outbox row % does not exist', want USING ERRCODE = '22023';
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_mark_sent(bigint) FROM PUBLIC;

CREATE FUNCTION ipai._grants_outbox() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.outbox_claim(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_claim(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_sent(bigint) TO service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_outbox() FROM PUBLIC;
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
-- Metering (SPEC section 3, first half): usage events and live counters,
-- exact entitlement checks, holds, limits where usage is created, Stripe
-- meter events through the outbox, invoice previews.
--
-- The hot paths are C (src/entitlement.c, src/usage_cache.c, src/period.c,
-- src/usage_triggers.c): check_entitlement, consume_entitlement,
-- record_usage.  What is here is PL/pgSQL that is not on the hot path:
-- holds, refresh, invoice preview, and the triggers on other areas'
-- tables.  Every SECURITY DEFINER function pins its search_path and is
-- revoked from PUBLIC; ipai._grants_metering() grants them.

-- C entry points ----------------------------------------------------------

-- The answer of check_entitlement and consume_entitlement.  A named row
-- type (rather than OUT parameters) lets the executor take its descriptor
-- from the type cache instead of rebuilding it on every call.
CREATE TYPE ipai.entitlement_check AS (
	allowed boolean,
	feature text,
	plan_id text,
	current bigint,
	max bigint,
	remaining bigint,
	reason text
);
COMMENT ON TYPE ipai.entitlement_check IS
	'allowed, feature, plan_id, current (used plus held), max and remaining (NULL: unlimited), reason';

CREATE FUNCTION ipai.check_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1)
	RETURNS ipai.entitlement_check
	AS 'MODULE_PATHNAME', 'ipai_check_entitlement'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai.check_entitlement(uuid, text, bigint) FROM PUBLIC;
COMMENT ON FUNCTION ipai.check_entitlement(uuid, text, bigint) IS
	'Would quantity more usage of feature be allowed now?  Reads only; exact';

CREATE FUNCTION ipai.consume_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1,
										 idempotency_key text DEFAULT NULL)
	RETURNS ipai.entitlement_check
	AS 'MODULE_PATHNAME', 'ipai_consume_entitlement'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) IS
	'Checks and records usage atomically; IP001 over a hard limit';

CREATE FUNCTION ipai.record_usage(org_id uuid, feature text, quantity bigint DEFAULT 1,
								  idempotency_key text DEFAULT NULL,
								  occurred_at timestamptz DEFAULT now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_record_usage'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) IS
	'Records usage; false when the idempotency key was already recorded with the same quantity';

CREATE FUNCTION ipai.usage_period(org_id uuid, at timestamptz DEFAULT now(),
								  OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_period'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai.usage_period(uuid, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.usage_period(uuid, timestamptz) IS
	'The usage period containing at: the period of the subscription that grants the plan (active, trialing, past_due), else the calendar month in the organization''s time zone';

-- internal: no permission checks, not granted to anyone
CREATE FUNCTION ipai._usage_period(org_id uuid, feature text, at timestamptz,
								   OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_period_internal'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_period(uuid, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._usage_resolve(org_id uuid, feature text, at timestamptz,
									OUT plan_id text, OUT in_plan boolean, OUT max_quantity bigint,
									OUT hard boolean, OUT counted_by text, OUT metered boolean,
									OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_resolve'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_resolve(uuid, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._record_usage(org_id uuid, feature text, quantity bigint, hold_id uuid)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_record_usage_internal'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._record_usage(uuid, text, bigint, uuid) FROM PUBLIC;

CREATE FUNCTION ipai._raise_usage_limit(feature text, current bigint, held bigint,
										maximum bigint, requested bigint)
	RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_raise_usage_limit'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._raise_usage_limit(text, bigint, bigint, bigint, bigint) FROM PUBLIC;

-- for the view ipai.org_usage_current: NULL for organizations of others
CREATE FUNCTION ipai._usage_period_is_current(org_id uuid, period_start timestamptz)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_usage_period_is_current'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_period_is_current(uuid, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._usage_cache_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_usage_cache_invalidate'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._usage_cache_invalidate() FROM PUBLIC;

CREATE FUNCTION ipai._seat_limit() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_seat_limit'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._seat_limit() FROM PUBLIC;

-- Stripe meter events -----------------------------------------------------

-- The meter event identifier of a usage event: stable (derived from the
-- event's id) and unique; also the outbox dedupe_key.
CREATE FUNCTION ipai._meter_identifier(org_id uuid, event_id bigint) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 'ipai_' OPERATOR(pg_catalog.||) $1::pg_catalog.text
				 OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) $2::pg_catalog.text $$;
REVOKE ALL ON FUNCTION ipai._meter_identifier(uuid, bigint) FROM PUBLIC;

-- The outbox payload of a metered usage event: the fields of Stripe's
-- meter events API (event_name, identifier, timestamp in Unix seconds),
-- stripe_customer_id and value flat as the SPEC names them, and the same
-- two again under "payload" as Stripe's API takes them (strings), so a
-- sender can pass it on as it is.  stripe_customer_id is null until the
-- organization has a Stripe customer (see ipai._usage_meter_fill_customers).
CREATE FUNCTION ipai._meter_event_payload(org_id uuid, event_id bigint, event_name text,
										  stripe_customer_id text, value bigint,
										  occurred_at timestamptz)
	RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE
	AS $$ SELECT pg_catalog.jsonb_build_object(
				'event_name', $3,
				'stripe_customer_id', $4,
				'value', $5,
				'identifier', ipai._meter_identifier($1, $2),
				'timestamp', pg_catalog.floor(pg_catalog.date_part('epoch', $6))::pg_catalog.int8,
				'payload', pg_catalog.jsonb_build_object('stripe_customer_id', $4,
														 'value', $5::pg_catalog.text)) $$;
REVOKE ALL ON FUNCTION ipai._meter_event_payload(uuid, bigint, text, text, bigint, timestamptz)
	FROM PUBLIC;

-- Fills the Stripe customer into unsent meter events written before the
-- organization had one (all organizations when only_org is NULL); returns
-- how many.  Senders skip events whose stripe_customer_id is null.
CREATE FUNCTION ipai._usage_meter_fill_customers(only_org uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer;
BEGIN
	UPDATE ipai.outbox o
	   SET payload = o.payload
					 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
						'stripe_customer_id', b.stripe_customer_id,
						'payload', (o.payload OPERATOR(pg_catalog.->) 'payload')
								   OPERATOR(pg_catalog.||)
								   pg_catalog.jsonb_build_object('stripe_customer_id', b.stripe_customer_id))
	  FROM ipai.billing_customers b
	 WHERE b.org_id OPERATOR(pg_catalog.=) o.org_id
	   AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
	   AND o.sent_at IS NULL
	   AND (o.payload OPERATOR(pg_catalog.->>) 'stripe_customer_id') IS NULL
	   AND (only_org IS NULL OR o.org_id OPERATOR(pg_catalog.=) only_org);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_meter_fill_customers(uuid) FROM PUBLIC;

-- Trigger (AFTER INSERT OR UPDATE OF stripe_customer_id, each row) on
-- ipai.billing_customers: the organization's pending meter events get
-- their customer.
CREATE FUNCTION ipai._usage_meter_customer() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ipai._usage_meter_fill_customers(NEW.org_id);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_meter_customer() FROM PUBLIC;

-- Counters ----------------------------------------------------------------

-- Recomputes the held quantity of one counter from its active holds that
-- have not expired at "at".  Caller holds the counter's row lock.
CREATE FUNCTION ipai._usage_holds_recount(org_id uuid, feature text, period_start timestamptz,
										  at timestamptz)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	UPDATE ipai.usage_counters c
	   SET (held, hold_expires_at) =
		   (SELECT COALESCE(pg_catalog.sum(h.quantity), 0)::bigint, pg_catalog.min(h.expires_at)
			  FROM ipai.usage_holds h
			 WHERE h.org_id OPERATOR(pg_catalog.=) $1
			   AND h.feature OPERATOR(pg_catalog.=) $2
			   AND h.period_start OPERATOR(pg_catalog.=) $3
			   AND h.status OPERATOR(pg_catalog.=) 'active'
			   AND h.expires_at OPERATOR(pg_catalog.>) $4)
	 WHERE c.org_id OPERATOR(pg_catalog.=) $1
	   AND c.feature OPERATOR(pg_catalog.=) $2
	   AND c.period_start OPERATOR(pg_catalog.=) $3;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_holds_recount(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- Locks the counter of (org, feature, period), creating it when missing,
-- forgets holds that have expired at "at", and returns used and held.
-- The slow path of consume/record, and the start of every hold operation:
-- whoever holds this row lock decides the limit of that counter.
CREATE FUNCTION ipai._usage_counter_lock(org_id uuid, feature text, period_start timestamptz,
										 period_end timestamptz, at timestamptz)
	RETURNS TABLE (used bigint, held bigint)
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	c record;
BEGIN
	INSERT INTO ipai.usage_counters AS u (org_id, feature, period_start, period_end, updated_at)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT ON CONSTRAINT usage_counters_pkey DO NOTHING;
	SELECT u.used, u.held, u.hold_expires_at INTO c
	  FROM ipai.usage_counters u
	 WHERE u.org_id OPERATOR(pg_catalog.=) $1
	   AND u.feature OPERATOR(pg_catalog.=) $2
	   AND u.period_start OPERATOR(pg_catalog.=) $3
	   FOR UPDATE;
	IF c.hold_expires_at IS NOT NULL AND c.hold_expires_at OPERATOR(pg_catalog.<=) $5 THEN
		PERFORM ipai._usage_holds_recount($1, $2, $3, $5);
		SELECT u.used, u.held INTO c
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) $1
		   AND u.feature OPERATOR(pg_catalog.=) $2
		   AND u.period_start OPERATOR(pg_catalog.=) $3;
	END IF;
	used := c.used;
	held := c.held;
	RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_counter_lock(uuid, text, timestamptz, timestamptz, timestamptz)
	FROM PUBLIC;

-- What the holds of a counter row keep back right now (for the view;
-- runs as the reader, so RLS applies to the holds).
CREATE FUNCTION ipai._usage_counter_held(org_id uuid, feature text, period_start timestamptz,
										 held bigint, hold_expires_at timestamptz)
	RETURNS bigint
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF $5 IS NULL THEN
		RETURN 0;
	ELSIF $5 OPERATOR(pg_catalog.>) pg_catalog.now() THEN
		RETURN $4;
	END IF;
	RETURN (SELECT COALESCE(pg_catalog.sum(h.quantity), 0)::bigint
			  FROM ipai.usage_holds h
			 WHERE h.org_id OPERATOR(pg_catalog.=) $1
			   AND h.feature OPERATOR(pg_catalog.=) $2
			   AND h.period_start OPERATOR(pg_catalog.=) $3
			   AND h.status OPERATOR(pg_catalog.=) 'active'
			   AND h.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_counter_held(uuid, text, timestamptz, bigint, timestamptz)
	FROM PUBLIC;

-- Usage events written directly -------------------------------------------

-- Trigger (BEFORE INSERT, each row, WHEN NOT counted_inline) on
-- ipai.usage_events: an event inserted directly (service_role, a DBA) gets
-- its usage period and metered flag like one recorded by record_usage.
CREATE FUNCTION ipai._usage_events_direct() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
BEGIN
	IF NEW.quantity OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023',
			DETAIL = pg_catalog.format('The quantity is %s.', NEW.quantity);
	END IF;
	IF NEW.idempotency_key IS NOT NULL
	   AND pg_catalog.length(NEW.idempotency_key) NOT BETWEEN 1 AND 255 THEN
		RAISE EXCEPTION 'idempotency key must have 1 to 255 characters' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO r FROM ipai._usage_resolve(NEW.org_id, NEW.feature, NEW.occurred_at);
	IF r.counted_by OPERATOR(pg_catalog.<>) 'usage_events' THEN
		RAISE EXCEPTION 'usage of feature "%" cannot be recorded', NEW.feature
			USING ERRCODE = '22023',
				  DETAIL = 'It is counted from what exists (pages, members and invitations).';
	END IF;
	IF NEW.period_start IS NULL THEN
		NEW.period_start := r.period_start;
	END IF;
	NEW.metered := NEW.metered OR (r.in_plan AND r.metered);
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_direct() FROM PUBLIC;

-- Trigger (AFTER INSERT, each row, WHEN NOT counted_inline) on
-- ipai.usage_events: counts a directly inserted event in its counter and,
-- when metered, writes its Stripe meter event, in the same transaction.
-- No limit applies: only privileged roles insert directly, and they report
-- usage that happened.
CREATE FUNCTION ipai._usage_events_count() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	customer text;
	event_name text;
BEGIN
	SELECT * INTO r FROM ipai._usage_resolve(NEW.org_id, NEW.feature, NEW.occurred_at);
	PERFORM 1 FROM ipai._usage_counter_lock(
		NEW.org_id, NEW.feature, NEW.period_start,
		CASE WHEN r.period_start OPERATOR(pg_catalog.=) NEW.period_start THEN r.period_end END,
		pg_catalog.now());
	UPDATE ipai.usage_counters c
	   SET used = c.used OPERATOR(pg_catalog.+) NEW.quantity, updated_at = pg_catalog.now()
	 WHERE c.org_id OPERATOR(pg_catalog.=) NEW.org_id
	   AND c.feature OPERATOR(pg_catalog.=) NEW.feature
	   AND c.period_start OPERATOR(pg_catalog.=) NEW.period_start;
	IF NEW.metered THEN
		SELECT b.stripe_customer_id INTO customer
		  FROM ipai.billing_customers b WHERE b.org_id OPERATOR(pg_catalog.=) NEW.org_id;
		SELECT e.stripe_meter_event_name INTO event_name
		  FROM ipai.plan_entitlements e
		 WHERE e.feature OPERATOR(pg_catalog.=) NEW.feature AND e.metered
		 ORDER BY e.plan_id OPERATOR(pg_catalog.=) r.plan_id DESC, e.plan_id
		 LIMIT 1;
		INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
		VALUES (NEW.org_id, 'stripe.meter_event',
				ipai._meter_event_payload(NEW.org_id, NEW.id, event_name, customer,
										  NEW.quantity, NEW.occurred_at),
				ipai._meter_identifier(NEW.org_id, NEW.id));
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_count() FROM PUBLIC;

-- Trigger (BEFORE UPDATE OR DELETE, each row) on ipai.usage_events: the
-- table is append-only, except that deleting an organization takes its
-- events with it.
CREATE FUNCTION ipai._usage_events_append_only() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE'
	   AND NOT EXISTS (SELECT 1 FROM ipai.organizations o
						WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'table %.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = '42501', DETAIL = pg_catalog.format('%s is not allowed.', TG_OP);
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_append_only() FROM PUBLIC;

-- Trigger (AFTER DELETE OR TRUNCATE, each statement) on ipai.organizations:
-- the events of organizations that are gone go too (what ON DELETE CASCADE
-- would do; usage_events has no foreign key, see its table).
CREATE FUNCTION ipai._usage_events_org_deleted() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		DELETE FROM ipai.usage_events e
		 WHERE e.org_id IN (SELECT o.id FROM old_rows o);
	ELSE
		DELETE FROM ipai.usage_events e
		 WHERE NOT EXISTS (SELECT 1 FROM ipai.organizations o
							WHERE o.id OPERATOR(pg_catalog.=) e.org_id);
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_org_deleted() FROM PUBLIC;

-- Limits on other areas' tables -------------------------------------------

-- Trigger (AFTER INSERT / DELETE / TRUNCATE, each statement, with
-- transition tables) on ipai.cms_pages: keeps the lifetime counters of
-- features counted from pages (cms_items) and refuses inserts beyond the
-- organization's limit (IP001, as consume_entitlement), whoever inserts.
-- The counter row is the lock: concurrent inserts of one organization
-- serialize on it (organizations in order, so no deadlock).
CREATE FUNCTION ipai._cms_pages_usage() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	f record;
	lim record;
	after_used bigint;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
		UPDATE ipai.usage_counters c SET used = 0, updated_at = pg_catalog.now()
		 WHERE c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
		   AND c.feature IN (SELECT e.feature FROM ipai.plan_entitlements e
							  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages');
		RETURN NULL;
	END IF;

	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		FOR r IN SELECT o.org_id, pg_catalog.count(*) AS n FROM old_rows o
				  GROUP BY o.org_id ORDER BY o.org_id LOOP
			UPDATE ipai.usage_counters c
			   SET used = GREATEST(c.used OPERATOR(pg_catalog.-) r.n, 0), updated_at = pg_catalog.now()
			 WHERE c.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
			   AND c.feature IN (SELECT e.feature FROM ipai.plan_entitlements e
								  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages');
		END LOOP;
		RETURN NULL;
	END IF;

	FOR r IN SELECT n.org_id, pg_catalog.count(*) AS n FROM new_rows n
			  GROUP BY n.org_id ORDER BY n.org_id LOOP
		FOR f IN SELECT DISTINCT e.feature FROM ipai.plan_entitlements e
				  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages' ORDER BY 1 LOOP
			UPDATE ipai.usage_counters c
			   SET used = c.used OPERATOR(pg_catalog.+) r.n, updated_at = pg_catalog.now()
			 WHERE c.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND c.feature OPERATOR(pg_catalog.=) f.feature
			   AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
			RETURNING c.used INTO after_used;
			IF NOT FOUND THEN
				-- the organization's first pages: count what exists, these included
				INSERT INTO ipai.usage_counters AS c (org_id, feature, period_start, used)
				SELECT r.org_id, f.feature, '-infinity'::timestamptz, pg_catalog.count(*)
				  FROM ipai.cms_pages p WHERE p.org_id OPERATOR(pg_catalog.=) r.org_id
				ON CONFLICT ON CONSTRAINT usage_counters_pkey
				DO UPDATE SET used = c.used OPERATOR(pg_catalog.+) r.n, updated_at = pg_catalog.now()
				RETURNING c.used INTO after_used;
			END IF;

			SELECT e.max_quantity, e.enforcement INTO lim
			  FROM ipai.organizations o
			  JOIN ipai.plan_entitlements e ON e.plan_id OPERATOR(pg_catalog.=) o.plan_id
			 WHERE o.id OPERATOR(pg_catalog.=) r.org_id
			   AND e.feature OPERATOR(pg_catalog.=) f.feature;
			IF NOT FOUND THEN
				-- not in the organization's plan: nothing allowed
				PERFORM ipai._raise_usage_limit(f.feature, after_used OPERATOR(pg_catalog.-) r.n,
												0, 0, r.n);
			ELSIF lim.enforcement OPERATOR(pg_catalog.=) 'hard' AND lim.max_quantity IS NOT NULL
				  AND after_used OPERATOR(pg_catalog.>) lim.max_quantity THEN
				PERFORM ipai._raise_usage_limit(f.feature, after_used OPERATOR(pg_catalog.-) r.n,
												0, lim.max_quantity, r.n);
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_pages_usage() FROM PUBLIC;

-- Trigger (BEFORE INSERT OR UPDATE, each row) on ipai.plan_entitlements:
-- all plans count a feature the same way (counted_by, reset_period), since
-- its counters are shared when an organization changes plans.
CREATE FUNCTION ipai._plan_entitlements_consistent() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	other record;
BEGIN
	SELECT e.plan_id, e.counted_by, e.reset_period INTO other
	  FROM ipai.plan_entitlements e
	 WHERE e.feature OPERATOR(pg_catalog.=) NEW.feature
	   AND e.plan_id OPERATOR(pg_catalog.<>) NEW.plan_id
	   AND (e.counted_by OPERATOR(pg_catalog.<>) NEW.counted_by
			OR e.reset_period OPERATOR(pg_catalog.<>) NEW.reset_period)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'feature "%" is counted differently in plan "%"', NEW.feature, other.plan_id
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('Plan "%s" counts it by %s, reset %s.',
											 other.plan_id, other.counted_by, other.reset_period),
				  HINT = 'Every plan must use the same counted_by and reset_period for a feature.';
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._plan_entitlements_consistent() FROM PUBLIC;

-- Holds -------------------------------------------------------------------

-- Reserves quantity of feature for long-running work (an AI run) for ttl:
-- the hold counts against the limit at once (IP001 when it does not fit a
-- hard limit) and stops counting when it is finalized, released or
-- expired, with no job involved.  Features counted from usage events only.
-- Any member.
CREATE FUNCTION ipai.reserve_entitlement(org_id uuid, feature text, quantity bigint, ttl interval)
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	c record;
	hold uuid;
	expires timestamptz;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'organization id must not be null' USING ERRCODE = '22023';
	ELSIF $2 IS NULL THEN
		RAISE EXCEPTION 'feature must not be null' USING ERRCODE = '22023';
	ELSIF $3 IS NULL OR $3 OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023';
	ELSIF $4 IS NULL OR $4 OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'ttl must be a positive interval' USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role($1, 'viewer');
	SELECT * INTO r FROM ipai._usage_resolve($1, $2, pg_catalog.now());
	IF r.counted_by OPERATOR(pg_catalog.<>) 'usage_events' THEN
		RAISE EXCEPTION 'feature "%" cannot be reserved', $2
			USING ERRCODE = '22023',
				  DETAIL = 'It is counted from what exists (pages, members and invitations).';
	END IF;
	expires := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4;

	SELECT * INTO c FROM ipai._usage_counter_lock($1, $2, r.period_start, r.period_end,
												  pg_catalog.now());
	IF NOT r.in_plan
	   OR (r.hard AND r.max_quantity IS NOT NULL
		   AND ((c.used OPERATOR(pg_catalog.+) c.held) OPERATOR(pg_catalog.+) $3)
			   OPERATOR(pg_catalog.>) r.max_quantity) THEN
		PERFORM ipai._raise_usage_limit($2, c.used OPERATOR(pg_catalog.+) c.held, c.held,
										COALESCE(r.max_quantity, 0), $3);
	END IF;

	INSERT INTO ipai.usage_holds (org_id, feature, quantity, period_start, expires_at, created_by)
	VALUES ($1, $2, $3, r.period_start, expires, ipai.current_user_id())
	RETURNING id INTO hold;
	UPDATE ipai.usage_counters u
	   SET held = u.held OPERATOR(pg_catalog.+) $3,
		   hold_expires_at = LEAST(u.hold_expires_at, expires),
		   updated_at = pg_catalog.now()
	 WHERE u.org_id OPERATOR(pg_catalog.=) $1
	   AND u.feature OPERATOR(pg_catalog.=) $2
	   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
	RETURN hold;
END
$$;
REVOKE ALL ON FUNCTION ipai.reserve_entitlement(uuid, text, bigint, interval) FROM PUBLIC;

-- Records the real usage of a hold and closes it; true when recorded now,
-- false when the hold was already finalized with this quantity (a retry).
-- Usage up to the reserved quantity always fits while the hold counts;
-- beyond it, or once the hold has expired (or its period ended), the usage
-- must fit the limit like a consume (IP001 otherwise, nothing changed).
-- actual_quantity 0 closes the hold without usage.  Any member.
CREATE FUNCTION ipai.finalize_hold(hold_id uuid, actual_quantity bigint)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	h record;
	r record;
	c record;
	counted boolean;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'hold id must not be null' USING ERRCODE = '22023';
	ELSIF $2 IS NULL OR $2 OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'actual quantity must be zero or more' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO h FROM ipai.usage_holds u WHERE u.id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hold "%" does not exist', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(h.org_id, 'viewer');
	IF h.status OPERATOR(pg_catalog.=) 'finalized' THEN
		IF h.actual_quantity OPERATOR(pg_catalog.=) $2 THEN
			RETURN false;
		END IF;
		RAISE EXCEPTION 'hold "%" is already finalized', $1
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('It recorded %s.', h.actual_quantity);
	ELSIF h.status OPERATOR(pg_catalog.=) 'released' THEN
		RAISE EXCEPTION 'hold "%" was released', $1 USING ERRCODE = '22023';
	END IF;

	SELECT * INTO r FROM ipai._usage_resolve(h.org_id, h.feature, pg_catalog.now());
	PERFORM 1 FROM ipai._usage_counter_lock(h.org_id, h.feature, h.period_start, NULL,
											 pg_catalog.now());
	counted := h.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()
			   AND h.period_start OPERATOR(pg_catalog.=) r.period_start;
	UPDATE ipai.usage_holds u
	   SET status = 'finalized', actual_quantity = $2, closed_at = pg_catalog.clock_timestamp()
	 WHERE u.org_id OPERATOR(pg_catalog.=) h.org_id AND u.id OPERATOR(pg_catalog.=) h.id;
	PERFORM ipai._usage_holds_recount(h.org_id, h.feature, h.period_start, pg_catalog.now());

	IF $2 OPERATOR(pg_catalog.>) 0 THEN
		SELECT * INTO c FROM ipai._usage_counter_lock(h.org_id, h.feature, r.period_start,
													  r.period_end, pg_catalog.now());
		IF NOT (counted AND $2 OPERATOR(pg_catalog.<=) h.quantity)
		   AND (NOT r.in_plan
				OR (r.hard AND r.max_quantity IS NOT NULL
					AND ((c.used OPERATOR(pg_catalog.+) c.held) OPERATOR(pg_catalog.+) $2)
						OPERATOR(pg_catalog.>) r.max_quantity)) THEN
			PERFORM ipai._raise_usage_limit(h.feature, c.used OPERATOR(pg_catalog.+) c.held,
											c.held, COALESCE(r.max_quantity, 0), $2);
		END IF;
		PERFORM ipai._record_usage(h.org_id, h.feature, $2, h.id);
	END IF;
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.finalize_hold(uuid, bigint) FROM PUBLIC;

-- Cancels a hold: true when released now, false when it already was.  A
-- finalized hold cannot be released (22023).  Any member.
CREATE FUNCTION ipai.release_hold(hold_id uuid)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	h record;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'hold id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO h FROM ipai.usage_holds u WHERE u.id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hold "%" does not exist', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(h.org_id, 'viewer');
	IF h.status OPERATOR(pg_catalog.=) 'released' THEN
		RETURN false;
	ELSIF h.status OPERATOR(pg_catalog.=) 'finalized' THEN
		RAISE EXCEPTION 'hold "%" is already finalized', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM 1 FROM ipai._usage_counter_lock(h.org_id, h.feature, h.period_start, NULL,
											 pg_catalog.now());
	UPDATE ipai.usage_holds u
	   SET status = 'released', closed_at = pg_catalog.clock_timestamp()
	 WHERE u.org_id OPERATOR(pg_catalog.=) h.org_id AND u.id OPERATOR(pg_catalog.=) h.id;
	PERFORM ipai._usage_holds_recount(h.org_id, h.feature, h.period_start, pg_catalog.now());
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.release_hold(uuid) FROM PUBLIC;

-- Invoices and repair -----------------------------------------------------

-- The invoice of the current usage period so far: the plan's base price
-- plus its metered features (recorded metered usage of the period times
-- the unit price), in currency units.  Owner and admin only.
CREATE FUNCTION ipai.preview_invoice(org_id uuid,
									 OUT plan_id text, OUT currency text,
									 OUT period_start timestamptz, OUT period_end timestamptz,
									 OUT base_amount numeric, OUT metered_quantity bigint,
									 OUT metered_amount numeric, OUT total numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	the_plan text;
	the_currency text;
	base numeric;
	p record;
	f record;
	q bigint;
	mq bigint := 0;
	ma numeric := 0;
BEGIN
	PERFORM ipai.require_org_role($1, 'admin');
	SELECT o.plan_id, pl.currency, pl.base_amount INTO the_plan, the_currency, base
	  FROM ipai.organizations o JOIN ipai.plans pl ON pl.id OPERATOR(pg_catalog.=) o.plan_id
	 WHERE o.id OPERATOR(pg_catalog.=) $1;
	SELECT * INTO p FROM ipai.usage_period($1, pg_catalog.now());
	FOR f IN SELECT e.feature, e.unit_price FROM ipai.plan_entitlements e
			  WHERE e.plan_id OPERATOR(pg_catalog.=) the_plan AND e.metered
			  ORDER BY e.feature LOOP
		SELECT COALESCE(pg_catalog.sum(ev.quantity), 0)::bigint INTO q
		  FROM ipai.usage_events ev
		 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
		   AND ev.period_start OPERATOR(pg_catalog.=) p.period_start
		   AND ev.feature OPERATOR(pg_catalog.=) f.feature
		   AND ev.metered;
		mq := mq OPERATOR(pg_catalog.+) q;
		ma := ma OPERATOR(pg_catalog.+) (q::numeric OPERATOR(pg_catalog.*) f.unit_price);
	END LOOP;
	plan_id := the_plan;
	currency := the_currency;
	period_start := p.period_start;
	period_end := p.period_end;
	base_amount := pg_catalog.round(base, 2);
	metered_quantity := mq;
	metered_amount := pg_catalog.round(ma, 2);
	total := base_amount OPERATOR(pg_catalog.+) metered_amount;
END
$$;
REVOKE ALL ON FUNCTION ipai.preview_invoice(uuid) FROM PUBLIC;

-- Recomputes every counter from the usage events (and the pages for
-- cms_items), repairs the ones that drifted, forgets expired holds, and
-- completes meter events written before the Stripe customer was known.
-- Returns the number of counters repaired.  Safe to run while usage is
-- recorded: candidates are found without locks and each is re-counted
-- under its counter's row lock with a fresh snapshot.  Privileged
-- callers only (pg_cron runs it every 5 minutes).
CREATE FUNCTION ipai.refresh_org_usage() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	pend timestamptz;
	exact bigint;
	repaired integer := 0;
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied for function refresh_org_usage'
			USING ERRCODE = '42501', HINT = 'Run it as service_role or a superuser.';
	END IF;

	FOR r IN
		WITH kinds AS (
			SELECT DISTINCT e.feature, e.counted_by FROM ipai.plan_entitlements e
			 WHERE e.counted_by OPERATOR(pg_catalog.<>) 'seats'
		), truth AS (
			SELECT ev.org_id, ev.feature, ev.period_start,
				   pg_catalog.sum(ev.quantity)::bigint AS total
			  FROM ipai.usage_events ev
			 GROUP BY ev.org_id, ev.feature, ev.period_start
			UNION ALL
			SELECT pg.org_id, k.feature, '-infinity'::timestamptz, pg_catalog.count(*)
			  FROM ipai.cms_pages pg
			  JOIN kinds k ON k.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
			 GROUP BY pg.org_id, k.feature
		), counted AS (
			SELECT c.org_id, c.feature, c.period_start, c.used FROM ipai.usage_counters c
		)
		SELECT COALESCE(t.org_id, c.org_id) AS org_id,
			   COALESCE(t.feature, c.feature) AS feature,
			   COALESCE(t.period_start, c.period_start) AS period_start
		  FROM truth t
		  FULL JOIN counted c
			ON c.org_id OPERATOR(pg_catalog.=) t.org_id
		   AND c.feature OPERATOR(pg_catalog.=) t.feature
		   AND c.period_start OPERATOR(pg_catalog.=) t.period_start
		 WHERE c.used IS NULL
			OR c.used OPERATOR(pg_catalog.<>) COALESCE(t.total, 0)
		 ORDER BY 1, 2, 3
	LOOP
		-- period_end of a counter to create, when the period is known
		pend := NULL;
		IF r.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		   AND EXISTS (SELECT 1 FROM ipai.plan_entitlements e
						WHERE e.feature OPERATOR(pg_catalog.=) r.feature) THEN
			SELECT CASE WHEN u.period_start OPERATOR(pg_catalog.=) r.period_start
						THEN u.period_end END INTO pend
			  FROM ipai._usage_period(r.org_id, r.feature, r.period_start) u;
		END IF;
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, pend,
												 pg_catalog.now());
		IF EXISTS (SELECT 1 FROM ipai.plan_entitlements e
					WHERE e.feature OPERATOR(pg_catalog.=) r.feature
					  AND e.counted_by OPERATOR(pg_catalog.=) 'cms_pages') THEN
			SELECT pg_catalog.count(*) INTO exact
			  FROM ipai.cms_pages pg WHERE pg.org_id OPERATOR(pg_catalog.=) r.org_id;
		ELSE
			SELECT COALESCE(pg_catalog.sum(ev.quantity), 0)::bigint INTO exact
			  FROM ipai.usage_events ev
			 WHERE ev.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND ev.feature OPERATOR(pg_catalog.=) r.feature
			   AND ev.period_start OPERATOR(pg_catalog.=) r.period_start;
		END IF;
		UPDATE ipai.usage_counters c SET used = exact, updated_at = pg_catalog.now()
		 WHERE c.org_id OPERATOR(pg_catalog.=) r.org_id
		   AND c.feature OPERATOR(pg_catalog.=) r.feature
		   AND c.period_start OPERATOR(pg_catalog.=) r.period_start
		   AND c.used OPERATOR(pg_catalog.<>) exact;
		IF FOUND THEN
			repaired := repaired OPERATOR(pg_catalog.+) 1;
		END IF;
	END LOOP;

	-- holds that expired: recompute what the counters hold back
	FOR r IN SELECT c.org_id, c.feature, c.period_start FROM ipai.usage_counters c
			  WHERE c.hold_expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
			  ORDER BY 1, 2, 3 LOOP
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, NULL,
												 pg_catalog.now());
	END LOOP;

	PERFORM ipai._usage_meter_fill_customers(NULL);
	RETURN repaired;
END
$$;
REVOKE ALL ON FUNCTION ipai.refresh_org_usage() FROM PUBLIC;

CREATE FUNCTION ipai._grants_metering() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.check_entitlement(uuid, text, bigint) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.usage_period(uuid, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.reserve_entitlement(uuid, text, bigint, interval) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.finalize_hold(uuid, bigint) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.release_hold(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.preview_invoice(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.refresh_org_usage() TO service_role;
	-- used by the view ipai.org_usage_current, which runs as its reader
	GRANT EXECUTE ON FUNCTION ipai._usage_period_is_current(uuid, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._usage_counter_held(uuid, text, timestamptz, bigint, timestamptz)
		TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_metering() FROM PUBLIC;
-- Word diff (diff.c, diff_core.c): the chunks that turn one text into
-- another, for CMS version diffs and anyone comparing two texts.

CREATE FUNCTION ipai.diff_words(old text, new text)
	RETURNS TABLE (op text, chunk text)
	AS 'MODULE_PATHNAME', 'ipai_diff_words'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 50;
COMMENT ON FUNCTION ipai.diff_words(text, text) IS
	'Word diff: rows (op, chunk) in order, op = (both), - (old only) or + (new only); = and - chunks rebuild old, = and + chunks rebuild new; minimal in tokens within a work budget';
-- CMS: the page workflow (SPEC section 4).
--
-- The rules live in triggers on ipai.cms_pages (attached in
-- src/sql/24_schema_cms.sql), so they hold for every writer: the functions
-- below and plain INSERTs and UPDATEs alike.  The triggers judge the
-- acting user (ipai.current_user_id()) and the calling role
-- (ipai.caller_is_privileged(), which a SECURITY DEFINER function does not
-- change), so the functions, SECURITY DEFINER to reach their internal
-- helpers, allow exactly what a plain UPDATE by the caller would, plus the
-- bookkeeping a plain UPDATE cannot carry (a comment) and friendly errors.
-- They show another organization's page as unknown (22023), as row-level
-- security would.
--
-- Status machine (anything else is IP004):
--   draft     -> pending    request approval            editor, admin, owner
--   pending   -> approved   approve                      admin, owner; not the requester
--   pending   -> draft      reject (comment required)    admin, owner; not the requester
--   approved  -> published  publish                      admin, owner
--   published -> draft      unpublish                    admin, owner
--   published -> archived   archive                      admin, owner
-- Content (title, body, metadata, content type, slug):
--   draft: editors and up edit freely;
--   pending or approved: an edit sends the page back to draft and voids the
--     request or approval (so what is published is what was approved);
--   published: IP004, unless the same UPDATE unpublishes (status = 'draft');
--   archived: read-only, nothing changes any more (IP004).
-- Viewers change nothing (42501).  A new page starts as a draft, version 1.
--
-- A comment travels from the functions to the triggers in the transaction-
-- local setting ipai_cms.comment; a plain UPDATE may set it the same way
-- (SET LOCAL ipai_cms.comment = '...'), which a rejection needs.

-- C trigger: version numbering (BEFORE) and snapshots (AFTER), src/versions.c
CREATE FUNCTION ipai._cms_pages_version() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_cms_pages_version'
	LANGUAGE C;

-- A URL slug from a title: lower case ASCII letters and digits joined by
-- single hyphens, accents dropped (é -> e), at most 80 characters; 'page'
-- when nothing is left (a title in Chinese, say).
CREATE FUNCTION ipai.cms_slugify(title text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	s text := pg_catalog.lower(coalesce(title, ''));
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8' THEN
		s := pg_catalog.regexp_replace(pg_catalog.normalize(s, 'NFD'), '[\u0300-\u036f]', '', 'g');
	END IF;
	s := pg_catalog.regexp_replace(s, '[^a-z0-9]+', '-', 'g');
	s := pg_catalog.btrim(s, '-');
	s := pg_catalog.rtrim(pg_catalog.left(s, 80), '-');
	IF s OPERATOR(pg_catalog.=) '' THEN
		s := 'page';
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION ipai.cms_slugify(text) IS
	'URL slug of a title: lower-case ASCII words joined by hyphens, accents dropped, at most 80 characters';

-- The first free slug of org for base: base itself, else base-2, base-3...
-- Runs as the caller: a writer of pages of org (editor and up) sees all of
-- them, and nobody can probe the slugs of another organization with it.  A
-- concurrent insert can still take the slug first; ipai.cms_create_page
-- retries then.
CREATE FUNCTION ipai._cms_free_slug(org uuid, base text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	taken boolean;
	top bigint;
BEGIN
	SELECT bool_or(p.slug OPERATOR(pg_catalog.=) base),
		   max(CASE WHEN p.slug OPERATOR(pg_catalog.<>) base
					THEN pg_catalog.substr(p.slug, pg_catalog.length(base) OPERATOR(pg_catalog.+) 2)::numeric END)
	  INTO taken, top
	  FROM ipai.cms_pages p
	 WHERE p.org_id OPERATOR(pg_catalog.=) org
	   AND (p.slug OPERATOR(pg_catalog.=) base
			OR p.slug OPERATOR(pg_catalog.~) ('^' OPERATOR(pg_catalog.||) base OPERATOR(pg_catalog.||) '-[0-9]{1,9}$'));
	IF NOT coalesce(taken, false) THEN
		RETURN base;
	END IF;
	RETURN base OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||)
		   (GREATEST(coalesce(top, 1), 1) OPERATOR(pg_catalog.+) 1)::text;
END
$$;

-- JSON Schema subset for page metadata.
--
-- Validated keywords: type (string or array of: object, array, string,
-- number, integer, boolean, null), enum, const, required, properties,
-- additionalProperties (boolean or schema), items (one schema),
-- minItems, maxItems, minLength, maxLength (characters), minimum, maximum.
-- Annotations accepted and ignored: $schema, $id, $comment, title,
-- description, default, examples, format, readOnly, writeOnly, deprecated.
-- Any other keyword (pattern, oneOf, $ref...) is refused when the schema is
-- stored, so a schema never silently promises more than is checked.

-- Problems of a schema itself, as text (empty array: fine).
CREATE FUNCTION ipai._cms_schema_problems(sch jsonb, path text DEFAULT '$') RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[] := '{}';
	k text;
	v jsonb;
	t jsonb;
BEGIN
	IF pg_catalog.jsonb_typeof(sch) OPERATOR(pg_catalog.<>) 'object' THEN
		RETURN ARRAY[pg_catalog.format('%s: a schema must be a JSON object', path)];
	END IF;
	FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(sch) e LOOP
		CASE k
		WHEN '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples',
			 'format', 'readOnly', 'writeOnly', 'deprecated', 'enum', 'const' THEN
			IF k OPERATOR(pg_catalog.=) 'enum' AND pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'array' THEN
				problems := problems || pg_catalog.format('%s: "enum" must be an array', path);
			END IF;
		WHEN 'type' THEN
			FOR t IN SELECT x FROM pg_catalog.jsonb_array_elements(
						 CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'array'
							  THEN v ELSE pg_catalog.jsonb_build_array(v) END) x LOOP
				IF pg_catalog.jsonb_typeof(t) OPERATOR(pg_catalog.<>) 'string'
				   OR NOT (t OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.=) ANY
						  (ARRAY['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']) THEN
					problems := problems || pg_catalog.format('%s: unknown type %s', path, t);
				END IF;
			END LOOP;
		WHEN 'required' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'array'
			   OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v) x
						   WHERE pg_catalog.jsonb_typeof(x) OPERATOR(pg_catalog.<>) 'string') THEN
				problems := problems || pg_catalog.format('%s: "required" must be an array of strings', path);
			END IF;
		WHEN 'properties' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'object' THEN
				problems := problems || pg_catalog.format('%s: "properties" must be an object', path);
			ELSE
				SELECT problems || coalesce(pg_catalog.array_agg(p), '{}') INTO problems
				  FROM pg_catalog.jsonb_each(v) e,
					   LATERAL pg_catalog.unnest(ipai._cms_schema_problems(
						   e.value, path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) e.key)) p;
			END IF;
		WHEN 'additionalProperties', 'items' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'boolean' AND k OPERATOR(pg_catalog.=) 'additionalProperties' THEN
				NULL;
			ELSE
				problems := problems || ipai._cms_schema_problems(
					v, path OPERATOR(pg_catalog.||) CASE WHEN k OPERATOR(pg_catalog.=) 'items' THEN '[*]' ELSE '.*' END);
			END IF;
		WHEN 'minLength', 'maxLength', 'minItems', 'maxItems' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'number'
			   OR (v OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.<) 0
			   OR (v OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.<>)
				  pg_catalog.trunc((v OPERATOR(pg_catalog.#>>) '{}')::numeric) THEN
				problems := problems || pg_catalog.format('%s: "%s" must be a non-negative integer', path, k);
			END IF;
		WHEN 'minimum', 'maximum' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'number' THEN
				problems := problems || pg_catalog.format('%s: "%s" must be a number', path, k);
			END IF;
		ELSE
			problems := problems || pg_catalog.format('%s: unsupported keyword "%s"', path, k);
		END CASE;
	END LOOP;
	RETURN problems;
END
$$;

-- Problems of value against schema sch (a schema without problems), as
-- text such as '$.author: is required'; an empty array when it conforms.
CREATE FUNCTION ipai.cms_metadata_problems(sch jsonb, val jsonb, path text DEFAULT '$')
	RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[] := '{}';
	vt text := pg_catalog.jsonb_typeof(val);
	types text[];
	k text;
	v jsonb;
	n numeric;
BEGIN
	IF sch IS NULL OR pg_catalog.jsonb_typeof(sch) OPERATOR(pg_catalog.<>) 'object' THEN
		RETURN problems;
	END IF;
	IF sch ? 'type' THEN
		SELECT pg_catalog.array_agg(x) INTO types
		  FROM pg_catalog.jsonb_array_elements_text(
			   CASE WHEN pg_catalog.jsonb_typeof(sch -> 'type') OPERATOR(pg_catalog.=) 'array'
					THEN sch -> 'type' ELSE pg_catalog.jsonb_build_array(sch -> 'type') END) x;
		IF NOT (vt OPERATOR(pg_catalog.=) ANY (types)
				OR (vt OPERATOR(pg_catalog.=) 'number' AND 'integer' OPERATOR(pg_catalog.=) ANY (types)
					AND (val OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.=)
						pg_catalog.trunc((val OPERATOR(pg_catalog.#>>) '{}')::numeric))) THEN
			RETURN ARRAY[pg_catalog.format('%s: must be %s, not %s', path,
										   pg_catalog.array_to_string(types, ' or '), vt)];
		END IF;
	END IF;
	IF sch ? 'enum' AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(sch -> 'enum') e
									 WHERE e OPERATOR(pg_catalog.=) val) THEN
		problems := problems || pg_catalog.format('%s: must be one of %s', path, sch -> 'enum');
	END IF;
	IF sch ? 'const' AND (sch -> 'const') OPERATOR(pg_catalog.<>) val THEN
		problems := problems || pg_catalog.format('%s: must be %s', path, sch -> 'const');
	END IF;

	IF vt OPERATOR(pg_catalog.=) 'object' THEN
		IF sch ? 'required' THEN
			FOR k IN SELECT pg_catalog.jsonb_array_elements_text(sch -> 'required') LOOP
				IF NOT val ? k THEN
					problems := problems || pg_catalog.format('%s.%s: is required', path, k);
				END IF;
			END LOOP;
		END IF;
		FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(val) e ORDER BY e.key LOOP
			IF (sch -> 'properties') ? k THEN
				problems := problems || ipai.cms_metadata_problems(sch -> 'properties' -> k, v,
					path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) k);
			ELSIF (sch -> 'additionalProperties') OPERATOR(pg_catalog.=) 'false'::jsonb THEN
				problems := problems || pg_catalog.format('%s.%s: is not allowed', path, k);
			ELSIF pg_catalog.jsonb_typeof(sch -> 'additionalProperties') OPERATOR(pg_catalog.=) 'object' THEN
				problems := problems || ipai.cms_metadata_problems(sch -> 'additionalProperties', v,
					path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) k);
			END IF;
		END LOOP;
	ELSIF vt OPERATOR(pg_catalog.=) 'array' THEN
		n := pg_catalog.jsonb_array_length(val);
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minItems')::numeric THEN
			problems := problems || pg_catalog.format('%s: needs at least %s items', path, sch ->> 'minItems');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maxItems')::numeric THEN
			problems := problems || pg_catalog.format('%s: allows at most %s items', path, sch ->> 'maxItems');
		END IF;
		IF pg_catalog.jsonb_typeof(sch -> 'items') OPERATOR(pg_catalog.=) 'object' THEN
			SELECT problems || coalesce(pg_catalog.array_agg(p ORDER BY e.i, p), '{}') INTO problems
			  FROM pg_catalog.jsonb_array_elements(val) WITH ORDINALITY e(x, i),
				   LATERAL pg_catalog.unnest(ipai.cms_metadata_problems(sch -> 'items', e.x,
					   pg_catalog.format('%s[%s]', path, e.i OPERATOR(pg_catalog.-) 1))) p;
		END IF;
	ELSIF vt OPERATOR(pg_catalog.=) 'string' THEN
		n := pg_catalog.length(val OPERATOR(pg_catalog.#>>) '{}');
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minLength')::numeric THEN
			problems := problems || pg_catalog.format('%s: needs at least %s characters', path, sch ->> 'minLength');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maxLength')::numeric THEN
			problems := problems || pg_catalog.format('%s: allows at most %s characters', path, sch ->> 'maxLength');
		END IF;
	ELSIF vt OPERATOR(pg_catalog.=) 'number' THEN
		n := (val OPERATOR(pg_catalog.#>>) '{}')::numeric;
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minimum')::numeric THEN
			problems := problems || pg_catalog.format('%s: must be at least %s', path, sch ->> 'minimum');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maximum')::numeric THEN
			problems := problems || pg_catalog.format('%s: must be at most %s', path, sch ->> 'maximum');
		END IF;
	END IF;
	RETURN problems;
END
$$;
COMMENT ON FUNCTION ipai.cms_metadata_problems(jsonb, jsonb, text) IS
	'What is wrong with page metadata against a content type''s metadata schema (empty when it conforms)';

-- Trigger on content_types: a metadata schema uses only what is validated.
CREATE FUNCTION ipai._content_types_check_schema() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[];
BEGIN
	IF NEW.metadata_schema IS NOT NULL THEN
		problems := ipai._cms_schema_problems(NEW.metadata_schema);
		IF pg_catalog.cardinality(problems) OPERATOR(pg_catalog.>) 0 THEN
			RAISE EXCEPTION 'invalid metadata schema for content type "%"', NEW.key
				USING ERRCODE = '22023',
					  DETAIL = pg_catalog.array_to_string(problems, E'\n'),
					  HINT = 'Supported keywords: type, enum, const, required, properties, additionalProperties, items, minItems, maxItems, minLength, maxLength, minimum, maximum (and annotations such as title and description).';
		END IF;
		IF (NEW.metadata_schema ? 'type')
		   AND (NEW.metadata_schema -> 'type') OPERATOR(pg_catalog.<>) '"object"'::jsonb THEN
			RAISE EXCEPTION 'invalid metadata schema for content type "%"', NEW.key
				USING ERRCODE = '22023', DETAIL = 'Page metadata is a JSON object: the schema''s type must be "object".';
		END IF;
	END IF;
	RETURN NEW;
END
$$;

-- Raises 22023 unless metadata conforms to the schema of content type ct.
-- Runs as the caller, a member of org who can read its content types.
CREATE FUNCTION ipai._cms_check_metadata(org uuid, ct uuid, metadata jsonb) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	sch jsonb;
	ct_key text;
	problems text[];
BEGIN
	IF ct IS NULL THEN
		RETURN;
	END IF;
	SELECT t.metadata_schema, t.key INTO sch, ct_key FROM ipai.content_types t
	 WHERE t.org_id OPERATOR(pg_catalog.=) org AND t.id OPERATOR(pg_catalog.=) ct;
	problems := ipai.cms_metadata_problems(sch, metadata);
	IF pg_catalog.cardinality(problems) OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'page metadata does not match the schema of content type "%"', ct_key
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.array_to_string(problems, E'\n');
	END IF;
END
$$;

-- Checks that the acting user may move a page of org from status "from" to
-- "to", and raises otherwise: 42501 when the role is too low or someone
-- decides on their own request, IP004 when the transition does not exist,
-- 22023 when a rejection lacks its comment.  by_edit: the move is the
-- side effect of a content edit (pending/approved back to draft), which
-- editors may cause.  Privileged callers (service_role, superusers, the
-- scheduler) pass the role checks but not the four-eyes rule when they act
-- for a user.  Used by the workflow trigger, and by the functions before
-- they update so that a same-status call (approving an approved page)
-- errors the same way.  Runs as the caller (it only reads what a member
-- may read), so calling it directly reveals nothing.
CREATE FUNCTION ipai._cms_check_transition(org uuid, page uuid, from_status ipai.page_status,
										   to_status ipai.page_status, by_edit boolean)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	have ipai.org_role;
	needed ipai.org_role;
	requester uuid;
	verb text;
BEGIN
	verb := CASE
		WHEN to_status OPERATOR(pg_catalog.=) 'pending' THEN 'request approval for'
		WHEN to_status OPERATOR(pg_catalog.=) 'approved' THEN 'approve'
		WHEN to_status OPERATOR(pg_catalog.=) 'published' THEN 'publish'
		WHEN to_status OPERATOR(pg_catalog.=) 'archived' THEN 'archive'
		WHEN by_edit THEN 'edit'
		WHEN from_status OPERATOR(pg_catalog.=) 'pending' THEN 'reject'
		WHEN from_status OPERATOR(pg_catalog.=) 'published' THEN 'unpublish'
		ELSE 'move to draft' END;
	needed := CASE WHEN to_status OPERATOR(pg_catalog.=) 'pending' OR by_edit
				   THEN 'editor' ELSE 'admin' END::ipai.org_role;

	IF NOT ipai.caller_is_privileged() THEN
		have := ipai.org_role_of(org);
		IF have IS NULL THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = 'The acting user is not a member of the page''s organization.';
		ELSIF have OPERATOR(pg_catalog.<) needed THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = pg_catalog.format('This needs role %s or higher; the acting user is %s.', needed, have),
					  HINT = CASE WHEN needed OPERATOR(pg_catalog.=) 'admin'
								  THEN 'Only admins and owners approve, reject, publish, unpublish or archive pages.'
								  ELSE 'Ask an admin of the organization for the editor role.' END;
		END IF;
	END IF;

	IF from_status OPERATOR(pg_catalog.=) to_status THEN
		RAISE EXCEPTION 'page is already %', to_status
			USING ERRCODE = 'IP004',
				  DETAIL = CASE to_status
					  WHEN 'approved' THEN 'Only a page pending approval can be approved.'
					  WHEN 'published' THEN 'Only an approved page can be published.'
					  WHEN 'pending' THEN 'Only a draft can be submitted for approval.'
					  ELSE 'The page is not in the status this step starts from.' END;
	END IF;
	IF NOT ((from_status, to_status) IN (('draft', 'pending'), ('pending', 'approved'),
										 ('pending', 'draft'), ('approved', 'published'),
										 ('published', 'draft'), ('published', 'archived'))
			OR (by_edit AND from_status OPERATOR(pg_catalog.=) 'approved'
				AND to_status OPERATOR(pg_catalog.=) 'draft')) THEN
		RAISE EXCEPTION 'page status cannot change from % to %', from_status, to_status
			USING ERRCODE = 'IP004',
				  DETAIL = 'Allowed: draft to pending (request approval), pending to approved (approve) or to draft (reject), approved to published (publish), published to draft (unpublish) or to archived (archive).',
				  HINT = CASE
					  WHEN from_status OPERATOR(pg_catalog.=) 'archived'
						  THEN 'Archived pages are final; create a new page instead.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'approved'
						  THEN 'Only a page pending approval can be approved.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'published'
						  THEN 'Only an approved page can be published.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'pending'
						  THEN 'Only a draft can be submitted for approval.'
					  ELSE 'Follow the workflow one step at a time.' END;
	END IF;

	-- four eyes: a decision on a request is never taken by its requester
	IF from_status OPERATOR(pg_catalog.=) 'pending' AND NOT by_edit AND actor IS NOT NULL THEN
		SELECT a.requested_by INTO requester FROM ipai.cms_approvals a
		 WHERE a.org_id OPERATOR(pg_catalog.=) org AND a.page_id OPERATOR(pg_catalog.=) page
		   AND a.status OPERATOR(pg_catalog.=) 'pending';
		IF requester OPERATOR(pg_catalog.=) actor THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = 'Nobody approves or rejects their own approval request.',
					  HINT = 'Another admin or owner must decide.';
		END IF;
	END IF;

	IF from_status OPERATOR(pg_catalog.=) 'pending' AND to_status OPERATOR(pg_catalog.=) 'draft'
	   AND NOT by_edit
	   AND coalesce(pg_catalog.btrim(pg_catalog.current_setting('ipai_cms.comment', true)), '')
		   OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a rejection needs a comment'
			USING ERRCODE = '22023',
				  HINT = 'Call ipai.cms_reject(page_id, comment), or SET LOCAL ipai_cms.comment before the UPDATE.';
	END IF;
END
$$;

-- Trigger (BEFORE INSERT OR UPDATE, each row) on cms_pages: the workflow
-- for every writer; see the top of this file.  It also keeps the
-- bookkeeping columns (who and when) and derives a missing slug.
CREATE FUNCTION ipai._cms_pages_workflow() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	privileged boolean := ipai.caller_is_privileged();
	have ipai.org_role;
	content_changed boolean;
	by_edit boolean := false;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
		IF NOT privileged THEN
			have := ipai.org_role_of(NEW.org_id);
			IF have IS NULL OR have OPERATOR(pg_catalog.<) 'editor' THEN
				RAISE EXCEPTION 'permission denied to create pages'
					USING ERRCODE = '42501',
						  DETAIL = 'Editors, admins and owners create pages.';
			END IF;
		END IF;
		IF NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'a new page must be a draft, not %', NEW.status
				USING ERRCODE = 'IP004',
					  HINT = 'Create the draft, then request approval.';
		END IF;
		IF NEW.slug IS NULL THEN
			NEW.slug := ipai._cms_free_slug(NEW.org_id, ipai.cms_slugify(NEW.title));
		END IF;
		IF actor IS NOT NULL OR NOT privileged THEN
			NEW.created_by := actor;
		END IF;
		NEW.updated_by := NEW.created_by;
		IF NOT privileged THEN
			NEW.created_at := pg_catalog.now();
		END IF;
		NEW.updated_at := NEW.created_at;
		NEW.approved_by := NULL;
		NEW.approved_at := NULL;
		NEW.published_by := NULL;
		NEW.published_at := NULL;
		IF NEW.content_type_id IS NOT NULL THEN
			PERFORM ipai._cms_check_metadata(NEW.org_id, NEW.content_type_id, NEW.metadata);
		END IF;
		RETURN NEW;
	END IF;

	-- UPDATE
	IF NEW.org_id OPERATOR(pg_catalog.<>) OLD.org_id OR NEW.id OPERATOR(pg_catalog.<>) OLD.id THEN
		RAISE EXCEPTION 'a page cannot move to another organization or id'
			USING ERRCODE = '22023';
	END IF;
	IF NOT privileged THEN
		have := ipai.org_role_of(NEW.org_id);
		IF have IS NULL OR have OPERATOR(pg_catalog.<) 'editor' THEN
			RAISE EXCEPTION 'permission denied to edit page'
				USING ERRCODE = '42501',
					  DETAIL = pg_catalog.format('Viewers read pages; changing them needs role editor or higher (the acting user is %s).',
												 coalesce(have::text, 'not a member')),
					  HINT = 'Ask an admin of the organization for the editor role.';
		END IF;
	END IF;

	content_changed := NEW.title IS DISTINCT FROM OLD.title
		OR NEW.body IS DISTINCT FROM OLD.body
		OR NEW.metadata IS DISTINCT FROM OLD.metadata
		OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id
		OR NEW.slug IS DISTINCT FROM OLD.slug;

	IF NOT content_changed AND NEW.status OPERATOR(pg_catalog.=) OLD.status THEN
		-- nothing the workflow knows changed: keep updated_at, no snapshot
		RETURN NEW;
	END IF;

	IF OLD.status OPERATOR(pg_catalog.=) 'archived' THEN
		RAISE EXCEPTION 'archived pages cannot change'
			USING ERRCODE = 'IP004',
				  HINT = 'Archived pages are final; create a new page instead.';
	END IF;

	IF content_changed THEN
		IF OLD.status OPERATOR(pg_catalog.=) ANY ('{pending,approved}'::ipai.page_status[]) THEN
			IF NEW.status OPERATOR(pg_catalog.<>) OLD.status AND NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
				RAISE EXCEPTION 'page content cannot change while it is %', NEW.status
					USING ERRCODE = 'IP004',
						  DETAIL = 'A content edit sends a pending or approved page back to draft.',
						  HINT = 'Edit the page in one statement, then request approval again.';
			END IF;
			-- what is published must be what was approved
			NEW.status := 'draft';
			by_edit := true;
		ELSIF OLD.status OPERATOR(pg_catalog.=) 'published'
			  AND NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'a published page cannot be edited'
				USING ERRCODE = 'IP004',
					  DETAIL = 'Its content is what was approved.',
					  HINT = 'Unpublish it first (ipai.cms_unpublish, or set status to draft in the same UPDATE), then edit and request approval.';
		END IF;
		IF NEW.metadata IS DISTINCT FROM OLD.metadata
		   OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id THEN
			PERFORM ipai._cms_check_metadata(NEW.org_id, NEW.content_type_id, NEW.metadata);
		END IF;
	END IF;

	IF NEW.status OPERATOR(pg_catalog.<>) OLD.status THEN
		PERFORM ipai._cms_check_transition(NEW.org_id, NEW.id, OLD.status, NEW.status, by_edit);
		IF NEW.status OPERATOR(pg_catalog.=) 'approved' THEN
			NEW.approved_by := actor;
			NEW.approved_at := pg_catalog.now();
		ELSIF NEW.status OPERATOR(pg_catalog.=) 'published' THEN
			NEW.published_by := actor;
			NEW.published_at := pg_catalog.now();
		ELSIF NEW.status OPERATOR(pg_catalog.=) ANY ('{draft,pending}'::ipai.page_status[]) THEN
			NEW.approved_by := NULL;
			NEW.approved_at := NULL;
		END IF;
	END IF;

	NEW.updated_by := actor;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;

-- Trigger (AFTER UPDATE, each row, when the status changed) on cms_pages:
-- keeps cms_approvals in step with the page and audits the change.
-- SECURITY DEFINER: tenants may not write approval records themselves.
CREATE FUNCTION ipai._cms_pages_approvals() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	note text := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('ipai_cms.comment', true)), '');
	by_edit boolean := NEW.title IS DISTINCT FROM OLD.title
		OR NEW.body IS DISTINCT FROM OLD.body
		OR NEW.metadata IS DISTINCT FROM OLD.metadata
		OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id
		OR NEW.slug IS DISTINCT FROM OLD.slug;
BEGIN
	IF NEW.status OPERATOR(pg_catalog.=) 'pending' THEN
		INSERT INTO ipai.cms_approvals (org_id, page_id, page_version, requested_by, request_comment)
		VALUES (NEW.org_id, NEW.id, NEW.version, actor, note);
	ELSIF OLD.status OPERATOR(pg_catalog.=) 'pending' THEN
		IF by_edit AND NEW.status OPERATOR(pg_catalog.=) 'draft' THEN
			UPDATE ipai.cms_approvals a
			   SET status = 'voided', voided_by = actor, voided_at = pg_catalog.now(),
				   decision_comment = note
			 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
			   AND a.status OPERATOR(pg_catalog.=) 'pending';
		ELSE
			UPDATE ipai.cms_approvals a
			   SET status = CASE WHEN NEW.status OPERATOR(pg_catalog.=) 'approved'
								 THEN 'approved' ELSE 'rejected' END,
				   reviewer_id = actor, decided_at = pg_catalog.now(), decision_comment = note
			 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
			   AND a.status OPERATOR(pg_catalog.=) 'pending';
		END IF;
	ELSIF OLD.status OPERATOR(pg_catalog.=) 'approved' AND NEW.status OPERATOR(pg_catalog.=) 'draft' THEN
		-- the approval of the content that was just edited
		UPDATE ipai.cms_approvals a
		   SET status = 'voided', voided_by = actor, voided_at = pg_catalog.now()
		 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
		   AND a.status OPERATOR(pg_catalog.=) 'approved'
		   AND a.page_version OPERATOR(pg_catalog.=)
			   (SELECT max(b.page_version) FROM ipai.cms_approvals b
				 WHERE b.org_id OPERATOR(pg_catalog.=) NEW.org_id AND b.page_id OPERATOR(pg_catalog.=) NEW.id);
	END IF;
	PERFORM ipai._audit(NEW.org_id, 'cms.page.status', 'cms_page', NEW.id::text,
						pg_catalog.jsonb_build_object('status', OLD.status),
						pg_catalog.jsonb_build_object('status', NEW.status, 'version', NEW.version));
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_pages_approvals() FROM PUBLIC;

-- Trigger (AFTER INSERT OR UPDATE OF status, each row) on cms_approvals:
-- one notification on channel cms_approvals per approval state change,
-- delivered by NOTIFY semantics only when the transaction commits.  The
-- payload is small and fixed in shape (no comments), far below 8000 bytes.
CREATE FUNCTION ipai._cms_approvals_notify() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.status OPERATOR(pg_catalog.=) OLD.status THEN
		RETURN NULL;
	END IF;
	PERFORM pg_catalog.pg_notify('cms_approvals', pg_catalog.json_build_object(
		'org_id', NEW.org_id,
		'page_id', NEW.page_id,
		'approval_id', NEW.id,
		'status', NEW.status,
		'page_status', CASE NEW.status WHEN 'pending' THEN 'pending' WHEN 'approved' THEN 'approved'
						   ELSE 'draft' END,
		'page_version', NEW.page_version,
		'requested_by', NEW.requested_by,
		'actor_id', ipai.current_user_id(),
		'at', pg_catalog.now())::text);
	RETURN NULL;
END
$$;

-- The page, locked for the change about to be made: its organization and
-- status.  22023 when the id is NULL or names no page the caller can see
-- (pages of other organizations look exactly like pages that do not
-- exist).
CREATE FUNCTION ipai._cms_lock_page(page_id uuid, OUT page_org uuid, OUT page_status ipai.page_status)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF page_id IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT c.org_id, c.status INTO page_org, page_status FROM ipai.cms_pages c
	 WHERE c.id OPERATOR(pg_catalog.=) _cms_lock_page.page_id
	 FOR NO KEY UPDATE;
	IF NOT FOUND
	   OR (NOT ipai.caller_is_privileged() AND ipai.org_role_of(page_org) IS NULL) THEN
		RAISE EXCEPTION 'page "%" does not exist', page_id USING ERRCODE = '22023';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_lock_page(uuid) FROM PUBLIC;

-- Locks page page_id and moves it to status "to" with comment note (NULL
-- for none), through the same trigger-enforced UPDATE a plain statement
-- would run; returns the page's organization and version afterwards.
-- from_required (with verb for the error): the status the page must be in,
-- where the target alone does not say it (reject: pending; unpublish:
-- published), so that rejecting a published page cannot unpublish it.
CREATE FUNCTION ipai._cms_set_status(page_id uuid, to_status ipai.page_status, note text,
									 from_required ipai.page_status, verb text,
									 OUT page_org uuid, OUT page_version integer)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	saved text := pg_catalog.current_setting('ipai_cms.comment', true);
	from_status ipai.page_status;
BEGIN
	SELECT l.page_org, l.page_status INTO page_org, from_status FROM ipai._cms_lock_page(page_id) l;
	IF from_required IS NOT NULL AND from_status OPERATOR(pg_catalog.<>) from_required THEN
		-- permission first, as for every status change
		IF NOT ipai.caller_is_privileged()
		   AND coalesce(ipai.org_role_of(page_org) OPERATOR(pg_catalog.<) 'admin'::ipai.org_role, true) THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  HINT = 'Only admins and owners approve, reject, publish, unpublish or archive pages.';
		END IF;
		RAISE EXCEPTION 'cannot % a page that is %', verb, from_status
			USING ERRCODE = 'IP004',
				  DETAIL = pg_catalog.format('Only a %s page can be %s.', from_required,
											 CASE verb WHEN 'reject' THEN 'rejected' ELSE verb OPERATOR(pg_catalog.||) 'ed' END);
	END IF;
	PERFORM pg_catalog.set_config('ipai_cms.comment', coalesce(note, ''), true);
	-- same-status calls are no-ops for the trigger: refuse them here alike
	PERFORM ipai._cms_check_transition(page_org, page_id, from_status, to_status, false);
	UPDATE ipai.cms_pages c SET status = to_status
	 WHERE c.org_id OPERATOR(pg_catalog.=) page_org AND c.id OPERATOR(pg_catalog.=) _cms_set_status.page_id
	RETURNING c.version INTO page_version;
	PERFORM pg_catalog.set_config('ipai_cms.comment', coalesce(saved, ''), true);
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_set_status(uuid, ipai.page_status, text, ipai.page_status, text) FROM PUBLIC;

CREATE FUNCTION ipai.cms_create_page(org_id uuid, title text, body text, slug text DEFAULT NULL,
									 content_type text DEFAULT NULL, metadata jsonb DEFAULT '{}')
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := cms_create_page.org_id;
	ct uuid;
	md jsonb := coalesce(cms_create_page.metadata, '{}');
	new_id uuid;
	constraint_name text;
	attempt integer := 0;
BEGIN
	PERFORM ipai.require_org_role(org, 'editor');
	IF title IS NULL OR title OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'page title must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.length(title) OPERATOR(pg_catalog.>) 1000 THEN
		RAISE EXCEPTION 'page title is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 1000 characters are allowed.';
	END IF;
	IF body IS NULL THEN
		RAISE EXCEPTION 'page body must not be null'
			USING ERRCODE = '22023', HINT = 'Pass an empty string for an empty page.';
	END IF;
	IF pg_catalog.jsonb_typeof(md) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'page metadata must be a JSON object' USING ERRCODE = '22023';
	END IF;
	IF slug IS NOT NULL AND slug OPERATOR(pg_catalog.!~) '^[a-z0-9][a-z0-9-]{0,199}$' THEN
		RAISE EXCEPTION 'invalid slug "%"', slug
			USING ERRCODE = '22023',
				  HINT = 'Use lower-case letters, digits and hyphens (at most 200), or pass NULL to derive one from the title.';
	END IF;
	IF content_type IS NOT NULL THEN
		SELECT t.id INTO ct FROM ipai.content_types t
		 WHERE t.org_id OPERATOR(pg_catalog.=) org AND t.key OPERATOR(pg_catalog.=) content_type;
		IF ct IS NULL THEN
			RAISE EXCEPTION 'content type "%" does not exist in this organization', content_type
				USING ERRCODE = '22023';
		END IF;
	END IF;

	LOOP
		BEGIN
			INSERT INTO ipai.cms_pages (org_id, content_type_id, slug, title, body, metadata)
			VALUES (org, ct, slug, title, body, md)
			RETURNING id INTO new_id;
			RETURN new_id;
		EXCEPTION WHEN unique_violation THEN
			GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
			IF constraint_name OPERATOR(pg_catalog.<>) 'cms_pages_slug_unique' THEN
				RAISE;
			END IF;
			IF slug IS NOT NULL THEN
				RAISE EXCEPTION 'slug "%" is already used in this organization', slug
					USING ERRCODE = '23505',
						  HINT = 'Choose another slug, or pass NULL to derive a free one from the title.';
			END IF;
			-- a concurrent page took the derived slug first: derive again
			attempt := attempt OPERATOR(pg_catalog.+) 1;
			IF attempt OPERATOR(pg_catalog.>=) 10 THEN
				RAISE;
			END IF;
		END;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) IS
	'Creates a draft page (version 1); slug derived from the title when NULL; returns its id';

CREATE FUNCTION ipai.cms_request_approval(page_id uuid, comment text DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
	approval uuid;
BEGIN
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'pending', comment, NULL, 'request approval for') s;
	SELECT a.id INTO approval FROM ipai.cms_approvals a
	 WHERE a.org_id OPERATOR(pg_catalog.=) org
	   AND a.page_id OPERATOR(pg_catalog.=) cms_request_approval.page_id
	   AND a.status OPERATOR(pg_catalog.=) 'pending';
	RETURN approval;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_request_approval(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_request_approval(uuid, text) IS
	'draft -> pending: asks admins to approve the page as it is now; returns the approval id';

-- The id of the approval of page (in org) decided last.
CREATE FUNCTION ipai._cms_last_approval(org uuid, page uuid) RETURNS uuid
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT a.id FROM ipai.cms_approvals a
			 WHERE a.org_id OPERATOR(pg_catalog.=) org AND a.page_id OPERATOR(pg_catalog.=) page
			 ORDER BY a.page_version DESC NULLS LAST, a.requested_at DESC
			 LIMIT 1);
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_last_approval(uuid, uuid) FROM PUBLIC;

CREATE FUNCTION ipai.cms_approve(page_id uuid, comment text DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
BEGIN
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'approved', comment, NULL, 'approve') s;
	RETURN ipai._cms_last_approval(org, page_id);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_approve(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_approve(uuid, text) IS
	'pending -> approved (admin or owner, not the requester); returns the approval id';

CREATE FUNCTION ipai.cms_reject(page_id uuid, comment text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
BEGIN
	IF comment IS NULL OR comment OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'a rejection needs a comment'
			USING ERRCODE = '22023', HINT = 'Tell the author what to change.';
	END IF;
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'draft', comment, 'pending', 'reject') s;
	RETURN ipai._cms_last_approval(org, page_id);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_reject(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_reject(uuid, text) IS
	'pending -> draft with a required comment (admin or owner, not the requester); returns the approval id';

CREATE FUNCTION ipai.cms_publish(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'published', NULL, NULL, 'publish') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_publish(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_publish(uuid) IS
	'approved -> published (admin or owner); returns the new version number';

CREATE FUNCTION ipai.cms_unpublish(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'draft', NULL, 'published', 'unpublish') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_unpublish(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_unpublish(uuid) IS
	'published -> draft (admin or owner); returns the new version number';

CREATE FUNCTION ipai.cms_archive(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'archived', NULL, NULL, 'archive') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_archive(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_archive(uuid) IS
	'published -> archived (admin or owner), final; returns the new version number';

-- EXECUTE grants of the CMS functions; run by ipai.install_schema().
CREATE FUNCTION ipai._grants_cms() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_request_approval(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_approve(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_reject(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_publish(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_unpublish(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_archive(uuid) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_cms() FROM PUBLIC;
-- CMS: side-by-side HTML diff of two versions of a page, built on the word
-- diff ipai.diff_words (src/sql/60_diff.sql).

-- Text made safe for HTML element content and attribute values.
CREATE FUNCTION ipai._html_escape(s text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
		pg_catalog.replace(s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');

-- Table rows showing old (left) and new (right) word by word: removed words
-- in <del> on the left, added words in <ins> on the right, everything
-- HTML-escaped.  A row ends at each line break the two texts share, so
-- unchanged lines stay side by side; line breaks inside a change stay in
-- their cell (the stylesheet keeps white space).  Arrays collect the pieces
-- so that a long one-line body costs linear time.
CREATE FUNCTION ipai._cms_diff_rows(old text, new text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	l text[] := '{}';
	r text[] := '{}';
	out_rows text[] := '{}';
	c record;
	parts text[];
	i integer;
BEGIN
	FOR c IN SELECT d.op, ipai._html_escape(d.chunk) AS h FROM ipai.diff_words(old, new) d LOOP
		IF c.op OPERATOR(pg_catalog.=) '=' THEN
			parts := pg_catalog.string_to_array(c.h, E'\n');
			FOR i IN 1 .. pg_catalog.cardinality(parts) LOOP
				IF i OPERATOR(pg_catalog.>) 1 THEN
					out_rows := out_rows || pg_catalog.format(
						'<tr><td class="ipai-diff-old">%s</td><td class="ipai-diff-new">%s</td></tr>',
						pg_catalog.array_to_string(l, ''), pg_catalog.array_to_string(r, ''));
					l := '{}';
					r := '{}';
				END IF;
				IF parts[i] OPERATOR(pg_catalog.<>) '' THEN
					l := l || parts[i];
					r := r || parts[i];
				END IF;
			END LOOP;
		ELSIF c.op OPERATOR(pg_catalog.=) '-' THEN
			l := l || ('<del>' OPERATOR(pg_catalog.||) c.h OPERATOR(pg_catalog.||) '</del>');
		ELSE
			r := r || ('<ins>' OPERATOR(pg_catalog.||) c.h OPERATOR(pg_catalog.||) '</ins>');
		END IF;
	END LOOP;
	out_rows := out_rows || pg_catalog.format(
		'<tr><td class="ipai-diff-old">%s</td><td class="ipai-diff-new">%s</td></tr>',
		pg_catalog.array_to_string(l, ''), pg_catalog.array_to_string(r, ''));
	RETURN pg_catalog.array_to_string(out_rows, E'\n');
END
$$;

-- ipai.cms_diff_html(page_id, from_version, to_version): a self-contained
-- HTML fragment (a <meta charset>, a small <style> scoped to the table's
-- class, and a <table class="ipai-diff">) that reads well opened as a file
-- or inserted into a page.  The left column is always from_version and the
-- right column to_version: with from < to it shows what changed; with
-- from > to it shows the change backwards (what going back would do), and
-- the caption says so; with from = to both columns are the same and the
-- caption says there are no differences.  Sections: title, body, and
-- metadata (pretty-printed JSON) when either version has any.  Page content
-- is always HTML-escaped: a version containing <script> shows the tag as
-- text and runs nothing.
-- Runs as the caller under row-level security: 22023 for a NULL argument,
-- a page the caller cannot see (another organization's) or that does not
-- exist, and a version the page does not have.
CREATE FUNCTION ipai.cms_diff_html(page_id uuid, from_version integer, to_version integer)
	RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	a record;
	b record;
	last_version integer;
	caption text;
	html text;
BEGIN
	IF page_id IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	IF from_version IS NULL OR to_version IS NULL THEN
		RAISE EXCEPTION 'version numbers must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT max(v.version) INTO last_version FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id;
	IF last_version IS NULL THEN
		RAISE EXCEPTION 'page "%" does not exist', page_id USING ERRCODE = '22023';
	END IF;
	SELECT v.* INTO a FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id
	   AND v.version OPERATOR(pg_catalog.=) from_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'page has no version %', from_version
			USING ERRCODE = '22023', DETAIL = pg_catalog.format('Its versions are 1 to %s.', last_version);
	END IF;
	SELECT v.* INTO b FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id
	   AND v.version OPERATOR(pg_catalog.=) to_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'page has no version %', to_version
			USING ERRCODE = '22023', DETAIL = pg_catalog.format('Its versions are 1 to %s.', last_version);
	END IF;

	caption := CASE
		WHEN from_version OPERATOR(pg_catalog.=) to_version
			THEN pg_catalog.format('Version %s compared with itself: no differences.', from_version)
		WHEN from_version OPERATOR(pg_catalog.>) to_version
			THEN pg_catalog.format('Version %s (left) compared with the older version %s (right): the change backwards.',
								   from_version, to_version)
		WHEN a.title OPERATOR(pg_catalog.=) b.title AND a.body OPERATOR(pg_catalog.=) b.body
			 AND a.metadata OPERATOR(pg_catalog.=) b.metadata
			THEN pg_catalog.format('Version %s compared with version %s: same content.', from_version, to_version)
		ELSE pg_catalog.format('Version %s compared with version %s.', from_version, to_version) END;

	html := '<meta charset="utf-8">
<style>
table.ipai-diff{border-collapse:collapse;width:100%;table-layout:fixed;font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328}
table.ipai-diff caption{caption-side:top;text-align:left;padding:6px 0;font-weight:600}
table.ipai-diff th,table.ipai-diff td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left;width:50%}
table.ipai-diff thead th{background:#f6f8fa}
table.ipai-diff tr.ipai-diff-section th{background:#eaeef2;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table.ipai-diff td{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:13px}
table.ipai-diff del{background:#ffd7d5;color:#82071e;text-decoration:line-through}
table.ipai-diff ins{background:#ccffd8;color:#055d20;text-decoration:none}
</style>
<table class="ipai-diff">
<caption>' OPERATOR(pg_catalog.||) ipai._html_escape(caption) OPERATOR(pg_catalog.||) '</caption>
<colgroup><col class="ipai-diff-old"><col class="ipai-diff-new"></colgroup>
<thead><tr><th class="ipai-diff-old">'
		OPERATOR(pg_catalog.||) ipai._html_escape(pg_catalog.format('Version %s · %s · %s', a.version, a.status,
			pg_catalog.to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')))
		OPERATOR(pg_catalog.||) '</th><th class="ipai-diff-new">'
		OPERATOR(pg_catalog.||) ipai._html_escape(pg_catalog.format('Version %s · %s · %s', b.version, b.status,
			pg_catalog.to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')))
		OPERATOR(pg_catalog.||) '</th></tr></thead>
<tbody>
<tr class="ipai-diff-section"><th colspan="2">Title</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(a.title, b.title) OPERATOR(pg_catalog.||) '
<tr class="ipai-diff-section"><th colspan="2">Body</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(a.body, b.body);
	IF a.metadata OPERATOR(pg_catalog.<>) '{}'::jsonb OR b.metadata OPERATOR(pg_catalog.<>) '{}'::jsonb THEN
		html := html OPERATOR(pg_catalog.||) '
<tr class="ipai-diff-section"><th colspan="2">Metadata</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(pg_catalog.jsonb_pretty(a.metadata), pg_catalog.jsonb_pretty(b.metadata));
	END IF;
	RETURN html OPERATOR(pg_catalog.||) '
</tbody>
</table>
';
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) IS
	'Side-by-side HTML diff of two versions of a page (from left, to right), <del>/<ins> around changed words, content HTML-escaped';

CREATE FUNCTION ipai._grants_cms_diff() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_cms_diff() FROM PUBLIC;
-- Scheduled publishing (SPEC sections 4, 7): schedule, cancel, execute,
-- recover, the pg_cron jobs, and the worker's view of its own state.
--
-- The row protocol every executor follows (see docs/scheduling.md):
--  * claim: pending rows with run_at (and retry_at) <= clock_timestamp(),
--    FOR UPDATE SKIP LOCKED, become running with attempts + 1 and the
--    claimer's (pid, backend start);
--  * execute: each claimed row in its own subtransaction, with the page row
--    locked; the "done"/"failed" mark and pg_notify commit together with
--    the page change, so a row is executed at most once, and a row whose
--    transaction is lost stays pending (claim and execution in one
--    transaction: ipai.run_due_publications) or running under a dead
--    backend (claim committed first: the background worker);
--  * recover: running rows whose claimer is no longer alive (its pid with
--    that backend start time is absent from pg_stat_activity) go back to
--    pending: executed at least once.  Together: exactly once.

-- When this backend started; with pg_backend_pid() it names the backend
-- uniquely even when the operating system reuses pids.
CREATE FUNCTION ipai._backend_start() RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'ipai_backend_start'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION ipai._backend_start() FROM PUBLIC;

-- Is the backend with this pid and start time still running?  A definer
-- function: pg_stat_activity shows backend_start of other roles' sessions
-- only to privileged roles.  The caller should have called
-- pg_stat_clear_snapshot() if its transaction is long.
CREATE FUNCTION ipai._backend_is_alive(pid integer, started timestamptz) RETURNS boolean
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF pid IS NULL OR started IS NULL THEN
		RETURN false;
	END IF;
	RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(pid) a
					WHERE a.pid OPERATOR(pg_catalog.=) _backend_is_alive.pid
					  AND a.backend_start OPERATOR(pg_catalog.=) started);
END
$$;
REVOKE ALL ON FUNCTION ipai._backend_is_alive(integer, timestamptz) FROM PUBLIC;

-- Wakes the worker at commit when a pending schedule is written (C,
-- src/scheduler.c); a no-op without shared_preload_libraries.
CREATE FUNCTION ipai._cms_schedule_wake_worker() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_cms_schedule_wake_worker'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._cms_schedule_wake_worker() FROM PUBLIC;

-- The background worker's state (src/scheduler.c); one row.
CREATE FUNCTION ipai.scheduler_status(
	OUT preloaded boolean, OUT enabled boolean, OUT database text,
	OUT serves_this_database boolean, OUT worker_pid integer, OUT state text,
	OUT started_at timestamptz, OUT heartbeat_at timestamptz,
	OUT next_wakeup_at timestamptz, OUT executed bigint, OUT failed bigint,
	OUT deferred bigint, OUT recovered bigint, OUT last_lateness interval,
	OUT max_lateness interval, OUT last_executed_at timestamptz,
	OUT worker_starts integer, OUT helpers integer)
	AS 'MODULE_PATHNAME', 'ipai_scheduler_status'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.scheduler_status() FROM PUBLIC;
COMMENT ON FUNCTION ipai.scheduler_status() IS
	'The scheduled-publishing background worker: alive, state, counters and lateness';

-- Makes the worker look at the schedule now; 55000 without preloading.
CREATE FUNCTION ipai.scheduler_wakeup() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_scheduler_wakeup'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.scheduler_wakeup() FROM PUBLIC;

-- Schedules publish (default) or unpublish of a page at run_at; returns the
-- schedule id.  A pending schedule of the same page and action is replaced
-- (same id, new run_at and scheduler).  Errors: 22023 for a NULL, infinite
-- or past run_at (more than 5 seconds of grace), an unknown action or an
-- unknown page; 42501 for a page of another organization or a caller below
-- admin; IP004 when the action cannot apply (publish needs an approved
-- page; unpublish a published one, or an approved one with a publication
-- scheduled at or before run_at).  The page is checked again at run time.
CREATE FUNCTION ipai.cms_schedule_publish(page_id uuid, run_at timestamptz,
										  action text DEFAULT 'publish')
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	grace CONSTANT interval := '5 seconds';
	want_page uuid := cms_schedule_publish.page_id;
	want_run timestamptz := cms_schedule_publish.run_at;
	act ipai.schedule_action;
	acting uuid := ipai.current_user_id();
	t timestamptz := pg_catalog.clock_timestamp();
	pg record;
	old record;
	sid bigint;
BEGIN
	IF action IS NULL OR NOT (action OPERATOR(pg_catalog.=) ANY ('{publish,unpublish}'::text[])) THEN
		RAISE EXCEPTION 'unknown schedule action "%"', coalesce(action, 'NULL')
			USING ERRCODE = '22023', HINT = 'Use publish or unpublish.';
	END IF;
	act := action::ipai.schedule_action;
	IF want_page IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	IF want_run IS NULL THEN
		RAISE EXCEPTION 'run_at must not be null'
			USING ERRCODE = '22023', HINT = 'Pass the time the page should be published.';
	END IF;
	IF NOT pg_catalog.isfinite(want_run) THEN
		RAISE EXCEPTION 'run_at must be a finite time' USING ERRCODE = '22023';
	END IF;
	IF want_run OPERATOR(pg_catalog.<) (t OPERATOR(pg_catalog.-) grace) THEN
		RAISE EXCEPTION 'run_at is in the past'
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('run_at %s is %s before the current time; up to %s of grace are allowed.',
											 want_run, pg_catalog.date_trunc('second', t OPERATOR(pg_catalog.-) want_run), grace),
				  HINT = 'Pass a future time; to act now, call ipai.cms_publish() directly.';
	END IF;

	SELECT p.org_id, p.status INTO pg FROM ipai.cms_pages p
	 WHERE p.id OPERATOR(pg_catalog.=) want_page;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'page "%" does not exist', want_page USING ERRCODE = '22023';
	END IF;
	-- a non-member learns nothing about the page, not even its organization
	IF NOT ipai.caller_is_privileged() AND NOT ipai.is_org_member(pg.org_id, 'viewer') THEN
		RAISE EXCEPTION 'permission denied for page "%"', want_page
			USING ERRCODE = '42501',
				  DETAIL = 'The acting user is not a member of the organization that owns the page.';
	END IF;
	PERFORM ipai.require_org_role(pg.org_id, 'admin');

	IF act OPERATOR(pg_catalog.=) 'publish' AND pg.status OPERATOR(pg_catalog.<>) 'approved' THEN
		RAISE EXCEPTION 'cannot schedule the publication of a page that is %', pg.status
			USING ERRCODE = 'IP004',
				  DETAIL = 'Only approved pages can be published; the page is checked again at run time.',
				  HINT = 'Have the page approved first.';
	END IF;
	IF act OPERATOR(pg_catalog.=) 'unpublish' AND pg.status OPERATOR(pg_catalog.<>) 'published'
	   AND NOT (pg.status OPERATOR(pg_catalog.=) 'approved' AND EXISTS (
			SELECT 1 FROM ipai.cms_schedule s
			 WHERE s.org_id OPERATOR(pg_catalog.=) pg.org_id
			   AND s.page_id OPERATOR(pg_catalog.=) want_page
			   AND s.action OPERATOR(pg_catalog.=) 'publish'
			   AND s.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::ipai.schedule_status[])
			   AND s.run_at OPERATOR(pg_catalog.<=) want_run)) THEN
		RAISE EXCEPTION 'cannot schedule the unpublication of a page that is %', pg.status
			USING ERRCODE = 'IP004',
				  DETAIL = 'Only published pages, or approved pages with a publication scheduled at or before run_at, can be unpublished.';
	END IF;

	SELECT s.id, s.run_at, s.created_by INTO old FROM ipai.cms_schedule s
	 WHERE s.org_id OPERATOR(pg_catalog.=) pg.org_id
	   AND s.page_id OPERATOR(pg_catalog.=) want_page
	   AND s.action OPERATOR(pg_catalog.=) act
	   AND s.status OPERATOR(pg_catalog.=) 'pending';

	INSERT INTO ipai.cms_schedule AS s (org_id, page_id, action, run_at, created_by, updated_at)
	VALUES (pg.org_id, want_page, act, want_run, acting, t)
	ON CONFLICT (org_id, page_id, action) WHERE status = 'pending'
	DO UPDATE SET run_at = EXCLUDED.run_at,
				  created_by = EXCLUDED.created_by,
				  retry_at = NULL,
				  error = NULL,
				  updated_at = EXCLUDED.updated_at
	RETURNING s.id INTO sid;

	IF old.id IS NOT NULL AND old.id OPERATOR(pg_catalog.=) sid THEN
		PERFORM ipai._audit(pg.org_id, 'schedule.replace', 'cms_schedule', sid::text,
							pg_catalog.jsonb_build_object('run_at', old.run_at, 'created_by', old.created_by),
							pg_catalog.jsonb_build_object('page_id', want_page, 'action', act, 'run_at', want_run));
	ELSE
		PERFORM ipai._audit(pg.org_id, 'schedule.create', 'cms_schedule', sid::text, NULL,
							pg_catalog.jsonb_build_object('page_id', want_page, 'action', act, 'run_at', want_run));
	END IF;
	RETURN sid;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_schedule_publish(uuid, timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_schedule_publish(uuid, timestamptz, text) IS
	'Schedules publish/unpublish of a page at run_at (admin/owner); replaces a pending one';

-- Cancels a pending schedule: true when cancelled, false when it already
-- ran, failed or is running.  22023 for an unknown id, 42501 for a
-- schedule of another organization or a caller below admin.
CREATE FUNCTION ipai.cms_cancel_schedule(schedule_id bigint) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	want bigint := cms_cancel_schedule.schedule_id;
	r record;
BEGIN
	IF want IS NULL THEN
		RAISE EXCEPTION 'schedule id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT s.org_id, s.id, s.page_id, s.action, s.run_at INTO r FROM ipai.cms_schedule s
	 WHERE s.id OPERATOR(pg_catalog.=) want;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'schedule % does not exist', want USING ERRCODE = '22023';
	END IF;
	IF NOT ipai.caller_is_privileged() AND NOT ipai.is_org_member(r.org_id, 'viewer') THEN
		RAISE EXCEPTION 'permission denied for schedule %', want
			USING ERRCODE = '42501',
				  DETAIL = 'The acting user is not a member of the organization that owns the schedule.';
	END IF;
	PERFORM ipai.require_org_role(r.org_id, 'admin');

	-- waits for an executor holding the row; then it is done, not pending
	DELETE FROM ipai.cms_schedule s
	 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) want
	   AND s.status OPERATOR(pg_catalog.=) 'pending';
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM ipai._audit(r.org_id, 'schedule.cancel', 'cms_schedule', want::text,
						pg_catalog.jsonb_build_object('page_id', r.page_id, 'action', r.action,
													  'run_at', r.run_at), NULL);
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_cancel_schedule(bigint) FROM PUBLIC;

-- Claims up to max_rows due schedules (NULL: all), oldest run_at first, for
-- this backend: status running, attempts + 1, claimed_by_pid and
-- claimed_backend_start set.  Rows held by other sessions are skipped, and
-- so is a row while an earlier open (pending or running) schedule of the
-- same page exists: the actions on one page happen in (run_at, id) order
-- even with several executors (a publish and an unpublish due together).
-- Whether the claim is committed before execution is the caller's choice.
-- The claim walks the due index (run_at, id) in order and stops after
-- max_rows: a plan that reads and sorts every pending row instead turns a
-- backlog of n rows into n/64 full scans.  Statistics lag behind a burst of
-- new schedules (they may still say "no pending rows"), so the plan is
-- pinned: no sort, no bitmap or sequential scan of the table.
CREATE FUNCTION ipai._claim_due_schedules(max_rows integer)
	RETURNS TABLE (claimed_org_id uuid, claimed_id bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	SET enable_sort = off
	SET enable_bitmapscan = off
	SET enable_seqscan = off
	AS $$
DECLARE
	t timestamptz := pg_catalog.clock_timestamp();
	me_pid integer := pg_catalog.pg_backend_pid();
	me_start timestamptz := ipai._backend_start();
BEGIN
	IF max_rows IS NOT NULL AND max_rows OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_rows must be positive' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
	WITH due AS (
		SELECT s.org_id, s.id FROM ipai.cms_schedule s
		 WHERE s.status OPERATOR(pg_catalog.=) 'pending'
		   AND s.run_at OPERATOR(pg_catalog.<=) t
		   AND (s.retry_at IS NULL OR s.retry_at OPERATOR(pg_catalog.<=) t)
		   -- one page at a time, in (run_at, id) order, across all executors
		   AND NOT (EXISTS (
				SELECT 1 FROM ipai.cms_schedule o
				 WHERE o.org_id OPERATOR(pg_catalog.=) s.org_id
				   AND o.page_id OPERATOR(pg_catalog.=) s.page_id
				   AND o.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::ipai.schedule_status[])
				   AND (o.run_at, o.id) OPERATOR(pg_catalog.<) (s.run_at, s.id)))
		 ORDER BY s.run_at, s.id
		 LIMIT max_rows
		 FOR UPDATE SKIP LOCKED
	)
	UPDATE ipai.cms_schedule s
	   SET status = 'running',
		   attempts = s.attempts OPERATOR(pg_catalog.+) 1,
		   claimed_by_pid = me_pid,
		   claimed_backend_start = me_start,
		   claimed_at = t,
		   retry_at = NULL,
		   updated_at = t
	  FROM due
	 WHERE s.org_id OPERATOR(pg_catalog.=) due.org_id AND s.id OPERATOR(pg_catalog.=) due.id
	RETURNING s.org_id, s.id;
END
$$;
REVOKE ALL ON FUNCTION ipai._claim_due_schedules(integer) FROM PUBLIC;

-- Executes the given schedules if this backend holds their claim (status
-- running, our pid and backend start), in (run_at, id) order; the action
-- of each runs in its own subtransaction so one failure leaves the others
-- alone.  Run-time checks, with the page row locked first: the page
-- exists; the scheduler is still an admin or owner; publish needs an
-- approved page, unpublish a published one.  A failed check or an error
-- marks the row failed with the reason and leaves the page untouched.  A
-- page locked by another transaction defers the row (back to pending,
-- retry_at in 250 ms, the attempt not counted) rather than waiting behind
-- that transaction.  The action runs through the CMS workflow functions
-- (ipai.cms_publish / ipai.cms_unpublish, so the version trigger snapshots
-- it) acting as the user who scheduled it: ipai.user_id is set to
-- created_by (empty when NULL, as for service_role) and request.jwt.claims
-- cleared for the call, and both are put back before returning.  Executed
-- rows (done or failed) get executed_at (the
-- clock when the action finished), lateness = executed_at - run_at,
-- executed_via = application_name, and one pg_notify('cms_schedule') each,
-- delivered at commit.  The marks are written in one statement at the end.
CREATE FUNCTION ipai._execute_claimed_schedules(ids bigint[])
	RETURNS TABLE (o_id bigint, o_org_id uuid, o_page_id uuid, o_action ipai.schedule_action,
				   o_outcome text, o_lateness interval, o_error text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	page_status ipai.page_status;
	may_act boolean;
	t timestamptz;
	newer bigint;
	via text := nullif(pg_catalog.current_setting('application_name', true), '');
	me_pid integer := pg_catalog.pg_backend_pid();
	me_start timestamptz := ipai._backend_start();
	-- executed rows, marked in one statement at the end
	x_org uuid[] := '{}';
	x_id bigint[] := '{}';
	x_status ipai.schedule_status[] := '{}';
	x_at timestamptz[] := '{}';
	x_error text[] := '{}';
	-- the caller's identity, restored at the end
	saved_user text := pg_catalog.current_setting('ipai.user_id', true);
	saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
	acting_set boolean := false;
	acting uuid;
BEGIN
	IF coalesce(saved_claims, '') OPERATOR(pg_catalog.<>) '' THEN
		PERFORM pg_catalog.set_config('request.jwt.claims', '', true);
	END IF;
	FOR r IN
		SELECT s.org_id, s.id, s.page_id, s.action, s.run_at, s.created_by, s.attempts
		  FROM ipai.cms_schedule s
		 WHERE s.id OPERATOR(pg_catalog.=) ANY (ids)
		   AND s.status OPERATOR(pg_catalog.=) 'running'
		   AND s.claimed_by_pid OPERATOR(pg_catalog.=) me_pid
		   AND s.claimed_backend_start OPERATOR(pg_catalog.=) me_start
		 ORDER BY s.run_at, s.id
		   FOR UPDATE
	LOOP
		o_id := r.id;
		o_org_id := r.org_id;
		o_page_id := r.page_id;
		o_action := r.action;
		o_outcome := 'done';
		o_error := NULL;

		SELECT p.status,
			   r.created_by IS NULL OR EXISTS (
					SELECT 1 FROM ipai.org_members m
					 WHERE m.org_id OPERATOR(pg_catalog.=) r.org_id
					   AND m.user_id OPERATOR(pg_catalog.=) r.created_by
					   AND m.role OPERATOR(pg_catalog.>=) 'admin')
		  INTO page_status, may_act
		  FROM ipai.cms_pages p
		 WHERE p.org_id OPERATOR(pg_catalog.=) r.org_id AND p.id OPERATOR(pg_catalog.=) r.page_id
		   FOR NO KEY UPDATE OF p SKIP LOCKED;
		IF NOT FOUND THEN
			IF EXISTS (SELECT 1 FROM ipai.cms_pages p
						WHERE p.org_id OPERATOR(pg_catalog.=) r.org_id
						  AND p.id OPERATOR(pg_catalog.=) r.page_id) THEN
				o_outcome := 'deferred';
			ELSE
				o_outcome := 'failed';
				o_error := 'the page does not exist any more';
			END IF;
		ELSIF NOT may_act THEN
			o_outcome := 'failed';
			o_error := pg_catalog.format('user %s who scheduled it is no longer an admin or owner of the organization',
										 r.created_by);
		ELSIF r.action OPERATOR(pg_catalog.=) 'publish' AND page_status OPERATOR(pg_catalog.<>) 'approved' THEN
			o_outcome := 'failed';
			o_error := pg_catalog.format('the page is %s, not approved', page_status);
		ELSIF r.action OPERATOR(pg_catalog.=) 'unpublish' AND page_status OPERATOR(pg_catalog.<>) 'published' THEN
			o_outcome := 'failed';
			o_error := pg_catalog.format('the page is %s, not published', page_status);
		ELSE
			-- outside the subtransaction, so that its rollback cannot undo it
			IF NOT acting_set OR r.created_by IS DISTINCT FROM acting THEN
				PERFORM pg_catalog.set_config('ipai.user_id', coalesce(r.created_by::text, ''), true);
				acting := r.created_by;
				acting_set := true;
			END IF;
			BEGIN
				IF r.action OPERATOR(pg_catalog.=) 'publish' THEN
					PERFORM ipai.cms_publish(r.page_id);
				ELSE
					PERFORM ipai.cms_unpublish(r.page_id);
				END IF;
			EXCEPTION WHEN OTHERS THEN
				o_outcome := 'failed';
				o_error := pg_catalog.format('%s (SQLSTATE %s)', SQLERRM, SQLSTATE);
			END;
		END IF;

		t := pg_catalog.clock_timestamp();
		IF o_outcome OPERATOR(pg_catalog.=) 'deferred' THEN
			-- a newer pending schedule of the page and action supersedes this one
			SELECT s.id INTO newer FROM ipai.cms_schedule s
			 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND s.page_id OPERATOR(pg_catalog.=) r.page_id
			   AND s.action OPERATOR(pg_catalog.=) r.action
			   AND s.status OPERATOR(pg_catalog.=) 'pending';
			IF newer IS NULL THEN
				UPDATE ipai.cms_schedule s
				   SET status = 'pending',
					   attempts = r.attempts OPERATOR(pg_catalog.-) 1,
					   retry_at = t OPERATOR(pg_catalog.+) interval '250 milliseconds',
					   claimed_by_pid = NULL, claimed_backend_start = NULL, claimed_at = NULL,
					   error = 'deferred: the page was locked by another transaction',
					   updated_at = t
				 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) r.id;
				o_lateness := NULL;
				RETURN NEXT;
				CONTINUE;
			END IF;
			o_outcome := 'failed';
			o_error := pg_catalog.format('superseded by schedule %s', newer);
		END IF;

		o_lateness := t OPERATOR(pg_catalog.-) r.run_at;
		x_org := x_org OPERATOR(pg_catalog.||) r.org_id;
		x_id := x_id OPERATOR(pg_catalog.||) r.id;
		x_status := x_status OPERATOR(pg_catalog.||) o_outcome::ipai.schedule_status;
		x_at := x_at OPERATOR(pg_catalog.||) t;
		x_error := x_error OPERATOR(pg_catalog.||) o_error;
		RETURN NEXT;
	END LOOP;

	IF acting_set THEN
		PERFORM pg_catalog.set_config('ipai.user_id', coalesce(saved_user, ''), true);
	END IF;
	IF coalesce(saved_claims, '') OPERATOR(pg_catalog.<>) '' THEN
		PERFORM pg_catalog.set_config('request.jwt.claims', saved_claims, true);
	END IF;

	IF pg_catalog.cardinality(x_id) OPERATOR(pg_catalog.=) 0 THEN
		RETURN;
	END IF;
	WITH x AS (
		SELECT * FROM ROWS FROM (pg_catalog.unnest(x_org), pg_catalog.unnest(x_id),
								 pg_catalog.unnest(x_status), pg_catalog.unnest(x_at),
								 pg_catalog.unnest(x_error))
			 WITH ORDINALITY AS u(org_id, id, status, executed_at, error, n)
	), marked AS (
		UPDATE ipai.cms_schedule s
		   SET status = x.status,
			   executed_at = x.executed_at,
			   lateness = x.executed_at OPERATOR(pg_catalog.-) s.run_at,
			   executed_via = via,
			   error = x.error,
			   updated_at = x.executed_at
		  FROM x
		 WHERE s.org_id OPERATOR(pg_catalog.=) x.org_id AND s.id OPERATOR(pg_catalog.=) x.id
		RETURNING s.org_id, s.id, s.page_id, s.action, s.status, s.run_at, s.executed_at,
				  s.lateness, s.error
	)
	-- one notification per executed row, in execution order
	SELECT pg_catalog.count(pg_catalog.pg_notify('cms_schedule', pg_catalog.json_build_object(
			'org_id', e.org_id,
			'page_id', e.page_id,
			'schedule_id', e.id,
			'action', e.action,
			'status', e.status,
			'run_at', e.run_at,
			'executed_at', e.executed_at,
			'lateness_ms', pg_catalog.round((pg_catalog.date_part('epoch', e.lateness)
											 OPERATOR(pg_catalog.*) 1000)::numeric, 3),
			'error', e.error)::text))
	  INTO newer
	  FROM (SELECT m.*, x.n FROM marked m
			  JOIN x ON x.org_id OPERATOR(pg_catalog.=) m.org_id AND x.id OPERATOR(pg_catalog.=) m.id
			 ORDER BY x.n) e;
END
$$;
REVOKE ALL ON FUNCTION ipai._execute_claimed_schedules(bigint[]) FROM PUBLIC;

-- Executes every due schedule once and returns how many were executed
-- (status done; failed rows are recorded with their reason but not
-- counted).  Claim and execution share the caller's transaction: if it
-- rolls back or its backend dies, the rows are simply pending again.  Safe
-- with any number of concurrent callers (SKIP LOCKED); call it in READ
-- COMMITTED, as pg_cron and the Edge handler do.
CREATE FUNCTION ipai.run_due_publications() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	ids bigint[];
	done_now integer;
	executed_now integer;
	n integer := 0;
BEGIN
	-- Again while a round executed something: a later schedule of a page
	-- becomes claimable once the earlier one is executed.  A round of
	-- deferred rows only (pages locked elsewhere) ends the call, so a page
	-- locked for long cannot keep it spinning.
	LOOP
		SELECT pg_catalog.array_agg(c.claimed_id) INTO ids FROM ipai._claim_due_schedules(NULL) c;
		EXIT WHEN ids IS NULL;
		SELECT count(*) FILTER (WHERE e.o_outcome OPERATOR(pg_catalog.=) 'done'),
			   count(*) FILTER (WHERE e.o_outcome OPERATOR(pg_catalog.<>) 'deferred')
		  INTO done_now, executed_now
		  FROM ipai._execute_claimed_schedules(ids) e;
		n := n OPERATOR(pg_catalog.+) done_now;
		EXIT WHEN executed_now OPERATOR(pg_catalog.=) 0;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai.run_due_publications() FROM PUBLIC;
COMMENT ON FUNCTION ipai.run_due_publications() IS
	'Executes every due schedule once (concurrency-safe); returns how many were executed';

-- Puts runs stuck in "running" back to pending when the backend that
-- claimed them is gone (its pid with that backend start time is not in
-- pg_stat_activity): a crash, kill -9 or pg_terminate_backend between a
-- committed claim and its execution.  A live claimer is never touched,
-- however old its claim.  A run claimed 5 times already fails instead
-- ("gave up"), and one whose page and action got a newer pending schedule
-- fails as superseded.  Returns how many stuck runs it handled.
CREATE FUNCTION ipai.recover_stuck_runs() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	max_attempts CONSTANT integer := 5;
	r record;
	newer bigint;
	n integer := 0;
	t timestamptz;
	reason text;
BEGIN
	-- pg_stat_activity as of now, not as of this transaction's first look
	PERFORM pg_catalog.pg_stat_clear_snapshot();
	FOR r IN
		SELECT s.org_id, s.id, s.page_id, s.action, s.run_at, s.attempts,
			   s.claimed_by_pid, s.claimed_backend_start
		  FROM ipai.cms_schedule s
		 WHERE s.status OPERATOR(pg_catalog.=) 'running'
		   AND NOT ipai._backend_is_alive(s.claimed_by_pid, s.claimed_backend_start)
		 ORDER BY s.run_at, s.id
		   FOR UPDATE SKIP LOCKED
	LOOP
		t := pg_catalog.clock_timestamp();
		reason := pg_catalog.format('backend %s (started %s) that claimed the run at %s is gone',
									coalesce(r.claimed_by_pid::text, '?'),
									coalesce(r.claimed_backend_start::text, '?'),
									(SELECT s.claimed_at FROM ipai.cms_schedule s
									  WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id
										AND s.id OPERATOR(pg_catalog.=) r.id));
		SELECT s.id INTO newer FROM ipai.cms_schedule s
		 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id
		   AND s.page_id OPERATOR(pg_catalog.=) r.page_id
		   AND s.action OPERATOR(pg_catalog.=) r.action
		   AND s.status OPERATOR(pg_catalog.=) 'pending';
		IF newer IS NOT NULL OR r.attempts OPERATOR(pg_catalog.>=) max_attempts THEN
			UPDATE ipai.cms_schedule s
			   SET status = 'failed',
				   executed_at = t,
				   lateness = t OPERATOR(pg_catalog.-) s.run_at,
				   error = CASE WHEN newer IS NOT NULL
								THEN pg_catalog.format('%s; superseded by schedule %s', reason, newer)
								ELSE pg_catalog.format('%s; gave up after %s attempts', reason, r.attempts) END,
				   updated_at = t
			 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) r.id;
			PERFORM pg_catalog.pg_notify('cms_schedule', pg_catalog.json_build_object(
				'org_id', r.org_id, 'page_id', r.page_id, 'schedule_id', r.id,
				'action', r.action, 'status', 'failed', 'run_at', r.run_at,
				'executed_at', t)::text);
		ELSE
			UPDATE ipai.cms_schedule s
			   SET status = 'pending',
				   claimed_by_pid = NULL, claimed_backend_start = NULL, claimed_at = NULL,
				   error = pg_catalog.format('%s; retried', reason),
				   updated_at = t
			 WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) r.id;
		END IF;
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai.recover_stuck_runs() FROM PUBLIC;
COMMENT ON FUNCTION ipai.recover_stuck_runs() IS
	'Retries runs claimed by backends that died (liveness by pid and backend start); returns how many';

-- The worker's next deadline: the earliest run_at (or retry_at) of a
-- pending schedule, NULL when none.
CREATE FUNCTION ipai._next_schedule_due() RETURNS timestamptz
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN LEAST(
		(SELECT s.run_at FROM ipai.cms_schedule s
		  WHERE s.status OPERATOR(pg_catalog.=) 'pending' AND s.retry_at IS NULL
		  ORDER BY s.run_at LIMIT 1),
		(SELECT pg_catalog.min(GREATEST(s.run_at, s.retry_at)) FROM ipai.cms_schedule s
		  WHERE s.status OPERATOR(pg_catalog.=) 'pending' AND s.retry_at IS NOT NULL));
END
$$;
REVOKE ALL ON FUNCTION ipai._next_schedule_due() FROM PUBLIC;

-- The jobs of SPEC section 7, as (name, cron schedule, command).
CREATE FUNCTION ipai._scheduled_jobs() RETURNS TABLE (job_name text, job_schedule text, job_command text)
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
	VALUES ('ipai-refresh-org-usage', '*/5 * * * *', 'SELECT ipai.refresh_org_usage()'),
		   ('ipai-run-due-publications', '* * * * *', 'SELECT ipai.run_due_publications()'),
		   ('ipai-recover-stuck-runs', '*/2 * * * *', 'SELECT ipai.recover_stuck_runs()')
$$;
REVOKE ALL ON FUNCTION ipai._scheduled_jobs() FROM PUBLIC;

-- Raises 55000 with directions unless pg_cron is installed here.
CREATE FUNCTION ipai._require_pg_cron() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
					WHERE e.extname OPERATOR(pg_catalog.=) 'pg_cron')) THEN
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('pg_cron runs jobs from the database named by cron.database_name (%s).',
											 coalesce(nullif(pg_catalog.current_setting('cron.database_name', true), ''),
													  'not set: pg_cron is not preloaded')),
				  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
						 'restart, and run CREATE EXTENSION pg_cron.  Without pg_cron, the ipai_saas background '
						 'worker (shared_preload_libraries) or any caller of ipai.run_due_publications() '
						 'executes scheduled publications.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._require_pg_cron() FROM PUBLIC;

-- Registers the jobs of SPEC section 7 with pg_cron, idempotently (pg_cron
-- updates a job of the same name and owner in place, keeping its id):
-- ipai-refresh-org-usage every 5 minutes, ipai-run-due-publications every
-- minute, ipai-recover-stuck-runs every 2 minutes.  Returns the jobs.  The
-- jobs run as the calling role.  Raises 55000 when pg_cron is not
-- installed in this database; skips ipai-refresh-org-usage with a notice
-- while ipai.refresh_org_usage() does not exist.
CREATE FUNCTION ipai.schedule_jobs()
	RETURNS TABLE (jobname text, schedule text, command text, jobid bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	j record;
BEGIN
	PERFORM ipai._require_pg_cron();
	FOR j IN SELECT * FROM ipai._scheduled_jobs() LOOP
		IF j.job_name OPERATOR(pg_catalog.=) 'ipai-refresh-org-usage'
		   AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
							 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
							   AND p.proname OPERATOR(pg_catalog.=) 'refresh_org_usage')) THEN
			RAISE NOTICE 'job "%" not scheduled: ipai.refresh_org_usage() does not exist', j.job_name
				USING HINT = 'Call ipai.schedule_jobs() again once the metering functions are installed.';
			CONTINUE;
		END IF;
		jobname := j.job_name;
		schedule := j.job_schedule;
		command := j.job_command;
		EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, j.job_schedule, j.job_command;
		RETURN NEXT;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai.schedule_jobs() FROM PUBLIC;
COMMENT ON FUNCTION ipai.schedule_jobs() IS
	'Registers the ipai pg_cron jobs (idempotent); 55000 when pg_cron is missing';

-- Removes the jobs ipai.schedule_jobs() registers; returns how many.
CREATE FUNCTION ipai.unschedule_jobs() RETURNS integer
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer := 0;
	id bigint;
BEGIN
	PERFORM ipai._require_pg_cron();
	FOR id IN EXECUTE 'SELECT j.jobid FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) ANY ($1)'
		USING ARRAY(SELECT s.job_name FROM ipai._scheduled_jobs() s)
	LOOP
		EXECUTE 'SELECT cron.unschedule($1)' USING id;
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai.unschedule_jobs() FROM PUBLIC;

-- EXECUTE grants of this file (run by ipai.install_schema()).  Tenants
-- schedule and cancel; service_role (Edge handlers, operators) also runs,
-- recovers and inspects.  pg_cron jobs and the worker run as superusers.
CREATE FUNCTION ipai._grants_scheduling() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.cms_schedule_publish(uuid, timestamptz, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_cancel_schedule(bigint) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.run_due_publications() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.recover_stuck_runs() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.scheduler_status() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.scheduler_wakeup() TO service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_scheduling() FROM PUBLIC;
-- Team administration (SPEC section 5): invitations within seat limits,
-- member management, organization settings.
--
-- Locking: every function that changes invitations or memberships of an
-- organization locks its ipai.organizations row FOR NO KEY UPDATE first and
-- the invitation row second (the order of the keep-an-owner trigger and of
-- the seat-limit triggers), so concurrent invites, accepts and revokes of
-- one organization are serialized without deadlocks and never block
-- ordinary inserts of the organization's data (foreign-key checks take
-- KEY SHARE, which does not conflict).
--
-- Seats: the seat-limit triggers of the metering area on
-- ipai.org_invitations and ipai.org_members are the authority (members plus
-- open invitations may not exceed the plan's "seats"; SQLSTATE IP005 with
-- current and maximum in the DETAIL).  invite_member inserts a new
-- invitation only when it adds a seat, so no caller can get around them.

-- A new random token: 256 bits from pg_strong_random, base64url (token.c).
CREATE FUNCTION ipai._new_token() RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_new_token'
	LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION ipai._new_token() FROM PUBLIC;

-- SHA-256 of a token: what ipai.org_invitations.token_hash stores.
CREATE FUNCTION ipai._token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ipai_token_hash'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ipai._token_hash(text) FROM PUBLIC;

-- A role name as given by a caller, checked: 22023 for NULL or unknown.
CREATE FUNCTION ipai._org_role_from_text(role text) RETURNS ipai.org_role
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF role IS NULL OR NOT role OPERATOR(pg_catalog.=) ANY (pg_catalog.enum_range(NULL::ipai.org_role)::text[]) THEN
		RAISE EXCEPTION 'unknown role "%"', role
			USING ERRCODE = '22023', HINT = 'Use owner, admin, editor or viewer.';
	END IF;
	RETURN role::ipai.org_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_role_from_text(text) FROM PUBLIC;

-- Does an address already belong to a member of org?  Known when the
-- member joined through an invitation to that address, or, on Supabase,
-- from auth.users.  (Plain PostgreSQL has no directory of users' e-mail
-- addresses; a member added by user id alone is recognised when accepting.)
CREATE FUNCTION ipai._email_is_member(org uuid, addr text) RETURNS boolean
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	found_member boolean;
BEGIN
	IF EXISTS (SELECT 1 FROM ipai.org_invitations i
				 JOIN ipai.org_members m
				   ON m.org_id OPERATOR(pg_catalog.=) i.org_id
				  AND m.user_id OPERATOR(pg_catalog.=) i.accepted_by
				WHERE i.org_id OPERATOR(pg_catalog.=) org
				  AND i.email OPERATOR(pg_catalog.=) addr
				  AND i.accepted_at IS NOT NULL) THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
				WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.users')
				  AND a.attname OPERATOR(pg_catalog.=) 'email' AND NOT a.attisdropped)
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
				WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.users')
				  AND a.attname OPERATOR(pg_catalog.=) 'id'
				  AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype) THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM auth.users u JOIN ipai.org_members m'
			' ON m.user_id OPERATOR(pg_catalog.=) u.id'
			' WHERE m.org_id OPERATOR(pg_catalog.=) $1'
			' AND pg_catalog.lower(u.email::pg_catalog.text) OPERATOR(pg_catalog.=) $2)'
			INTO found_member USING org, addr;
		RETURN found_member;
	END IF;
	RETURN false;
END
$$;
REVOKE ALL ON FUNCTION ipai._email_is_member(uuid, text) FROM PUBLIC;

-- Removes the auth.invite outbox rows of an invitation that no sender has
-- claimed yet, when its token dies before it was sent (a newer token
-- replaces it, or the invitation is revoked): nobody should get a dead
-- link.  Rows a sender holds are left to it.
CREATE FUNCTION ipai._invitation_drop_unsent(org uuid, invitation uuid) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	DELETE FROM ipai.outbox o
	 WHERE o.org_id OPERATOR(pg_catalog.=) org
	   AND o.topic OPERATOR(pg_catalog.=) 'auth.invite'
	   AND o.sent_at IS NULL AND o.claimed_at IS NULL
	   AND o.payload OPERATOR(pg_catalog.->>) 'invitation_id'::text
		   OPERATOR(pg_catalog.=) invitation::text;
END
$$;
REVOKE ALL ON FUNCTION ipai._invitation_drop_unsent(uuid, uuid) FROM PUBLIC;

-- Invites email to org with role; returns the invitation id.
--
-- Only owners and admins invite (42501), only owners invite owners.  The
-- address is checked (22023) and lower-cased.  An open, unexpired
-- invitation to the same address is reused: it gets a new token (the old
-- link stops working), a new expiry and the new role, and is sent again.
-- An expired one is closed (revoke_reason 'expired') and replaced by a new
-- invitation.  A new invitation takes a seat: over the plan's seats the
-- metering trigger raises IP005 and nothing is written.  Inviting an
-- address that is already a member is 22023.  Writes one auth.invite
-- outbox row (payload email, role, org_id, token, invitation_id,
-- expires_at, organization) in the caller's transaction.
CREATE FUNCTION ipai.invite_member(org_id uuid, email text, role text, expires_in interval)
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := invite_member.org_id;
	want_role ipai.org_role;
	addr text;
	acting uuid := ipai.current_user_id();
	caller_is_owner boolean;
	inv record;
	inv_id uuid;
	token text;
	expires timestamptz;
	sends integer := 1;
	org_name text;
	refreshed boolean := false;
BEGIN
	PERFORM ipai.require_org_role(org, 'admin');
	want_role := ipai._org_role_from_text(invite_member.role);
	caller_is_owner := ipai.caller_is_privileged()
		OR ipai.org_role_of(org) OPERATOR(pg_catalog.=) 'owner';
	IF want_role OPERATOR(pg_catalog.=) 'owner' AND NOT caller_is_owner THEN
		RAISE EXCEPTION 'only an owner can invite an owner' USING ERRCODE = '42501';
	END IF;
	IF invite_member.email IS NULL THEN
		RAISE EXCEPTION 'e-mail address must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT ipai.email_is_valid(invite_member.email) THEN
		RAISE EXCEPTION 'invalid e-mail address "%"',
			pg_catalog.left(invite_member.email, 300)
			USING ERRCODE = '22023',
				  DETAIL = 'An address is local@domain, at most 254 characters, without spaces or control characters, and its domain has a dot.';
	END IF;
	addr := pg_catalog.lower(invite_member.email);
	IF expires_in IS NULL OR expires_in OPERATOR(pg_catalog.<=) interval '0'
	   OR expires_in OPERATOR(pg_catalog.>) interval '365 days' THEN
		RAISE EXCEPTION 'invitation lifetime must be positive and at most 365 days'
			USING ERRCODE = '22023';
	END IF;

	-- serializes invitations, accepts and revokes of this organization
	SELECT o.name INTO org_name FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;

	IF ipai._email_is_member(org, addr) THEN
		RAISE EXCEPTION '"%" is already a member of this organization', addr
			USING ERRCODE = '22023',
				  HINT = 'Change the member''s role with ipai.set_member_role() instead.';
	END IF;

	token := ipai._new_token();
	expires := pg_catalog.now() OPERATOR(pg_catalog.+) expires_in;

	SELECT i.* INTO inv FROM ipai.org_invitations i
	 WHERE i.org_id OPERATOR(pg_catalog.=) org
	   AND i.email OPERATOR(pg_catalog.=) addr
	   AND i.accepted_at IS NULL AND i.revoked_at IS NULL
	   FOR UPDATE;
	IF FOUND AND inv.role OPERATOR(pg_catalog.=) 'owner' AND NOT caller_is_owner THEN
		RAISE EXCEPTION 'only an owner can change an invitation to the owner role'
			USING ERRCODE = '42501';
	END IF;
	IF FOUND AND inv.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN
		-- reuse: same invitation, same seat, new token
		sends := inv.sent_count OPERATOR(pg_catalog.+) 1;
		UPDATE ipai.org_invitations i
		   SET token_hash = ipai._token_hash(token), role = want_role,
			   expires_at = expires, invited_by = coalesce(acting, i.invited_by),
			   sent_count = sends, last_sent_at = pg_catalog.now()
		 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
		inv_id := inv.id;
		refreshed := true;
		PERFORM ipai._invitation_drop_unsent(org, inv_id);
	ELSE
		IF FOUND THEN
			-- expired: close it; the new invitation below takes the seat anew
			UPDATE ipai.org_invitations i
			   SET revoked_at = pg_catalog.now(), revoked_by = acting, revoke_reason = 'expired'
			 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
			PERFORM ipai._invitation_drop_unsent(org, inv.id);
		END IF;
		INSERT INTO ipai.org_invitations (org_id, email, role, token_hash, invited_by, expires_at)
		VALUES (org, addr, want_role, ipai._token_hash(token), acting, expires)
		RETURNING id INTO inv_id;
	END IF;

	INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
	VALUES (org, 'auth.invite',
			pg_catalog.jsonb_build_object(
				'email', addr, 'role', want_role, 'org_id', org, 'token', token,
				'invitation_id', inv_id, 'expires_at', expires,
				'organization', org_name, 'invited_by', acting),
			pg_catalog.format('invitation:%s:%s', inv_id, sends));

	PERFORM ipai._audit(org, CASE WHEN refreshed THEN 'invitation.resend' ELSE 'invitation.create' END,
						'invitation', inv_id::text,
						CASE WHEN refreshed THEN pg_catalog.jsonb_build_object(
							'role', inv.role, 'expires_at', inv.expires_at) END,
						pg_catalog.jsonb_build_object('email', addr, 'role', want_role,
													  'expires_at', expires));
	RETURN inv_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.invite_member(uuid, text, text, interval) FROM PUBLIC;

-- The SPEC's form: an invitation valid for 7 days.
CREATE FUNCTION ipai.invite_member(org_id uuid, email text, role text DEFAULT 'editor')
	RETURNS uuid
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN ipai.invite_member(org_id, email, role, interval '7 days');
END
$$;
REVOKE ALL ON FUNCTION ipai.invite_member(uuid, text, text) FROM PUBLIC;

-- Accepts an invitation for the acting user; returns the organization id.
--
-- The token must belong to an open invitation that has not expired; the
-- acting user becomes a member with the invited role, once: the invitation
-- is marked accepted in the same transaction, and concurrent accepts of one
-- token are serialized on the invitation row, so exactly one succeeds.
-- When the caller's JWT carries an "email" claim (Supabase Auth), it must
-- be the invited address (42501 otherwise).  Without one (psql, Odoo, a
-- service), the token alone is the proof: whoever holds it may accept.
-- Errors change nothing: 42501 without an acting user or for another
-- address, 22023 for an empty, unknown, replaced, revoked, used or expired
-- token and when the user is already a member.
CREATE FUNCTION ipai.accept_invitation(token text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	acting uuid := ipai.current_user_id();
	h bytea;
	org uuid;
	inv record;
	found_inv boolean := false;
	claims text;
	claim_email text;
BEGIN
	IF acting IS NULL THEN
		RAISE EXCEPTION 'accepting an invitation needs an acting user'
			USING ERRCODE = '42501',
				  HINT = 'Sign in (JWT sub) or set ipai.user_id.';
	END IF;
	IF token IS NULL OR token OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'invitation token must not be empty' USING ERRCODE = '22023';
	END IF;
	h := ipai._token_hash(token);

	-- lock order: organization, then invitation (as invite_member)
	SELECT i.org_id INTO org FROM ipai.org_invitations i
	 WHERE i.token_hash OPERATOR(pg_catalog.=) h;
	IF FOUND THEN
		PERFORM 1 FROM ipai.organizations o
		 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;
		SELECT i.* INTO inv FROM ipai.org_invitations i
		 WHERE i.org_id OPERATOR(pg_catalog.=) org
		   AND i.token_hash OPERATOR(pg_catalog.=) h
		   FOR UPDATE;
		found_inv := FOUND;
	END IF;
	IF NOT found_inv THEN
		RAISE EXCEPTION 'invitation token is not valid'
			USING ERRCODE = '22023',
				  DETAIL = 'No invitation has this token; a newer invitation to the same address replaces the token of an older one.',
				  HINT = 'Ask an administrator of the organization for a new invitation.';
	END IF;
	IF inv.accepted_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has already been accepted'
			USING ERRCODE = '22023', DETAIL = 'An invitation can be accepted once.';
	END IF;
	IF inv.revoked_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has been revoked'
			USING ERRCODE = '22023',
				  HINT = 'Ask an administrator of the organization for a new invitation.';
	END IF;
	IF inv.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION 'invitation has expired'
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('It expired at %s.', inv.expires_at),
				  HINT = 'Ask an administrator of the organization to invite you again.';
	END IF;

	-- the signed-in user's address must be the invited one
	claims := pg_catalog.current_setting('request.jwt.claims', true);
	IF claims IS NOT NULL AND claims OPERATOR(pg_catalog.<>) '' THEN
		claim_email := claims::jsonb OPERATOR(pg_catalog.->>) 'email'::text;
	END IF;
	IF claim_email IS NULL THEN
		claim_email := NULLIF(pg_catalog.current_setting('request.jwt.claim.email', true), '');
	END IF;
	IF claim_email IS NOT NULL AND claim_email OPERATOR(pg_catalog.<>) '' AND
	   pg_catalog.lower(claim_email) OPERATOR(pg_catalog.<>) inv.email THEN
		RAISE EXCEPTION 'invitation is for another e-mail address'
			USING ERRCODE = '42501',
				  DETAIL = 'The e-mail address of the signed-in user is not the invited address.',
				  HINT = 'Sign in with the invited address.';
	END IF;

	IF EXISTS (SELECT 1 FROM ipai.org_members m
				WHERE m.org_id OPERATOR(pg_catalog.=) org
				  AND m.user_id OPERATOR(pg_catalog.=) acting) THEN
		RAISE EXCEPTION 'user is already a member of this organization'
			USING ERRCODE = '22023',
				  HINT = 'An administrator can change the role with ipai.set_member_role().';
	END IF;

	-- accepted first: the seat moves from the invitation to the membership
	UPDATE ipai.org_invitations i
	   SET accepted_at = pg_catalog.now(), accepted_by = acting
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
	INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (org, acting, inv.role);
	PERFORM ipai._audit(org, 'invitation.accept', 'invitation', inv.id::text, NULL,
						pg_catalog.jsonb_build_object('email', inv.email, 'role', inv.role,
													  'user_id', acting));
	RETURN org;
END
$$;
REVOKE ALL ON FUNCTION ipai.accept_invitation(text) FROM PUBLIC;

-- Revokes an open invitation: true when revoked now, false when it was
-- already revoked.  Owners and admins of its organization (only owners for
-- an owner invitation); an accepted invitation cannot be revoked (remove
-- the member instead); an unknown id is 22023.
CREATE FUNCTION ipai.revoke_invitation(invitation_id uuid) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
	inv record;
BEGIN
	IF invitation_id IS NULL THEN
		RAISE EXCEPTION 'invitation id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT i.org_id INTO org FROM ipai.org_invitations i
	 WHERE i.id OPERATOR(pg_catalog.=) invitation_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'invitation "%" does not exist', invitation_id USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(org, 'admin');

	PERFORM 1 FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;
	SELECT i.* INTO inv FROM ipai.org_invitations i
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) invitation_id
	   FOR UPDATE;
	IF inv.accepted_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has already been accepted'
			USING ERRCODE = '22023',
				  HINT = 'Remove the member with ipai.remove_member() instead.';
	END IF;
	IF inv.revoked_at IS NOT NULL THEN
		RETURN false;
	END IF;
	IF inv.role OPERATOR(pg_catalog.=) 'owner' AND NOT ipai.caller_is_privileged()
	   AND ipai.org_role_of(org) IS DISTINCT FROM 'owner'::ipai.org_role THEN
		RAISE EXCEPTION 'only an owner can revoke an owner invitation' USING ERRCODE = '42501';
	END IF;
	UPDATE ipai.org_invitations i
	   SET revoked_at = pg_catalog.now(), revoked_by = ipai.current_user_id(), revoke_reason = 'revoked'
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) invitation_id;
	PERFORM ipai._invitation_drop_unsent(org, invitation_id);
	PERFORM ipai._audit(org, 'invitation.revoke', 'invitation', invitation_id::text,
						pg_catalog.jsonb_build_object('email', inv.email, 'role', inv.role), NULL);
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.revoke_invitation(uuid) FROM PUBLIC;

-- Changes a member's role.  Runs as the caller, so the table's rules apply:
-- owners and admins change roles (42501 otherwise), only owners grant the
-- owner role or change an owner, and the last owner cannot be demoted
-- (23514).  Unknown role or non-member: 22023.  Audited by the membership
-- trigger.
CREATE FUNCTION ipai.set_member_role(org_id uuid, user_id uuid, role text) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	want_role ipai.org_role;
	cur ipai.org_role;
BEGIN
	PERFORM ipai.require_org_role(set_member_role.org_id, 'admin');
	want_role := ipai._org_role_from_text(set_member_role.role);
	IF set_member_role.user_id IS NULL THEN
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT m.role INTO cur FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) set_member_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) set_member_role.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', set_member_role.user_id
			USING ERRCODE = '22023';
	END IF;
	IF cur OPERATOR(pg_catalog.=) want_role THEN
		RETURN;
	END IF;
	UPDATE ipai.org_members m SET role = want_role
	 WHERE m.org_id OPERATOR(pg_catalog.=) set_member_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) set_member_role.user_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.set_member_role(uuid, uuid, text) FROM PUBLIC;

-- Removes a member.  Owners and admins remove others (only owners remove
-- an owner); every member may remove themselves (leave).  The last owner
-- cannot go (23514).  Non-member: 22023.  Runs as the caller; audited by
-- the membership trigger.
CREATE FUNCTION ipai.remove_member(org_id uuid, user_id uuid) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF remove_member.user_id IS NULL THEN
		PERFORM ipai.require_org_role(remove_member.org_id, 'viewer');
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	IF remove_member.user_id IS NOT DISTINCT FROM ipai.current_user_id() THEN
		PERFORM ipai.require_org_role(remove_member.org_id, 'viewer');
	ELSE
		PERFORM ipai.require_org_role(remove_member.org_id, 'admin');
	END IF;
	PERFORM 1 FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) remove_member.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) remove_member.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', remove_member.user_id
			USING ERRCODE = '22023';
	END IF;
	DELETE FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) remove_member.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) remove_member.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'permission denied to remove this member' USING ERRCODE = '42501';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.remove_member(uuid, uuid) FROM PUBLIC;

-- Makes new_owner (already a member) an owner and steps the acting owner
-- down to admin, in one transaction.  Called by a privileged caller that
-- is not itself an owner of the organization (service_role, a DBA), every
-- other owner becomes admin, so new_owner is the only owner.  Only owners
-- transfer (42501); new_owner must be a member other than the caller
-- (22023).  Audited (and each role change by the membership trigger).
CREATE FUNCTION ipai.transfer_ownership(org_id uuid, new_owner uuid) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := transfer_ownership.org_id;
	acting uuid := ipai.current_user_id();
	target_role ipai.org_role;
	acting_is_owner boolean;
	previous uuid[];
BEGIN
	PERFORM ipai.require_org_role(org, 'owner');
	IF new_owner IS NULL THEN
		RAISE EXCEPTION 'new owner must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT m.role INTO target_role FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) org AND m.user_id OPERATOR(pg_catalog.=) new_owner;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', new_owner
			USING ERRCODE = '22023', HINT = 'Invite the user first.';
	END IF;
	IF new_owner IS NOT DISTINCT FROM acting THEN
		RAISE EXCEPTION 'cannot transfer ownership to yourself' USING ERRCODE = '22023';
	END IF;
	acting_is_owner := ipai.org_role_of(org) IS NOT DISTINCT FROM 'owner'::ipai.org_role;

	IF target_role OPERATOR(pg_catalog.<>) 'owner' THEN
		UPDATE ipai.org_members m SET role = 'owner'
		 WHERE m.org_id OPERATOR(pg_catalog.=) org AND m.user_id OPERATOR(pg_catalog.=) new_owner;
	END IF;
	WITH stepped AS (
		UPDATE ipai.org_members m SET role = 'admin'
		 WHERE m.org_id OPERATOR(pg_catalog.=) org
		   AND m.role OPERATOR(pg_catalog.=) 'owner'
		   AND m.user_id OPERATOR(pg_catalog.<>) new_owner
		   AND (NOT acting_is_owner OR m.user_id OPERATOR(pg_catalog.=) acting)
		RETURNING m.user_id
	)
	SELECT pg_catalog.array_agg(s.user_id ORDER BY s.user_id) INTO previous FROM stepped s;

	PERFORM ipai._audit(org, 'organization.transfer_ownership', 'organization', org::text,
						pg_catalog.jsonb_build_object('owners', coalesce(previous, '{}')),
						pg_catalog.jsonb_build_object('owner', new_owner));
END
$$;
REVOKE ALL ON FUNCTION ipai.transfer_ownership(uuid, uuid) FROM PUBLIC;

-- Changes an organization's settings; a NULL argument leaves that setting
-- as it is, billing_email '' clears it.  Owners and admins only (42501).
-- The name is trimmed and must not be empty (at most 200 characters), the
-- billing address must be plausible (lower-cased), the time zone must be a
-- name the server knows (pg_timezone_names; matched without regard to
-- case and stored as the server spells it): 22023 otherwise, with nothing
-- changed.  Every change is written to ipai.audit_log with old and new
-- values (action organization.settings), by a trigger, so direct UPDATEs
-- are audited too.  Runs as the caller.
CREATE FUNCTION ipai.update_organization_settings(org_id uuid, name text DEFAULT NULL,
												  billing_email text DEFAULT NULL,
												  timezone text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := update_organization_settings.org_id;
	new_name text;
	new_email text;
	clear_email boolean := false;
	new_tz text;
BEGIN
	PERFORM ipai.require_org_role(org, 'admin');
	IF update_organization_settings.name IS NOT NULL THEN
		new_name := pg_catalog.regexp_replace(update_organization_settings.name, '^\s+|\s+$', '', 'g');
		IF new_name OPERATOR(pg_catalog.=) '' THEN
			RAISE EXCEPTION 'organization name must not be empty' USING ERRCODE = '22023';
		END IF;
		IF pg_catalog.length(new_name) OPERATOR(pg_catalog.>) 200 THEN
			RAISE EXCEPTION 'organization name is too long'
				USING ERRCODE = '22023', DETAIL = 'At most 200 characters are allowed.';
		END IF;
	END IF;
	IF update_organization_settings.billing_email OPERATOR(pg_catalog.=) '' THEN
		clear_email := true;
	ELSIF update_organization_settings.billing_email IS NOT NULL THEN
		IF NOT ipai.email_is_valid(update_organization_settings.billing_email) THEN
			RAISE EXCEPTION 'invalid e-mail address "%"',
				pg_catalog.left(update_organization_settings.billing_email, 300)
				USING ERRCODE = '22023',
					  HINT = 'Pass an empty string to clear the billing address.';
		END IF;
		new_email := pg_catalog.lower(update_organization_settings.billing_email);
	END IF;
	IF update_organization_settings.timezone IS NOT NULL THEN
		SELECT z.name INTO new_tz FROM pg_catalog.pg_timezone_names z
		 WHERE pg_catalog.lower(z.name) OPERATOR(pg_catalog.=) pg_catalog.lower(update_organization_settings.timezone)
		 ORDER BY z.name OPERATOR(pg_catalog.=) update_organization_settings.timezone DESC, z.name
		 LIMIT 1;
		IF new_tz IS NULL THEN
			RAISE EXCEPTION 'invalid time zone "%"', pg_catalog.left(update_organization_settings.timezone, 100)
				USING ERRCODE = '22023',
					  HINT = 'Use a name from pg_timezone_names, such as "Asia/Manila" or "UTC".';
		END IF;
	END IF;

	UPDATE ipai.organizations o
	   SET name = coalesce(new_name, o.name),
		   billing_email = CASE WHEN clear_email THEN NULL ELSE coalesce(new_email, o.billing_email) END,
		   timezone = coalesce(new_tz, o.timezone)
	 WHERE o.id OPERATOR(pg_catalog.=) org;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'permission denied for organization' USING ERRCODE = '42501';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.update_organization_settings(uuid, text, text, text) FROM PUBLIC;

-- Trigger (AFTER UPDATE OF name, billing_email, timezone, when one
-- changed): audits the settings that changed, old and new.
CREATE FUNCTION ipai._organizations_audit_settings() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	old_values jsonb := '{}';
	new_values jsonb := '{}';
BEGIN
	IF OLD.name IS DISTINCT FROM NEW.name THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('name', OLD.name);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('name', NEW.name);
	END IF;
	IF OLD.billing_email IS DISTINCT FROM NEW.billing_email THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('billing_email', OLD.billing_email);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('billing_email', NEW.billing_email);
	END IF;
	IF OLD.timezone IS DISTINCT FROM NEW.timezone THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('timezone', OLD.timezone);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('timezone', NEW.timezone);
	END IF;
	PERFORM ipai._audit(NEW.id, 'organization.settings', 'organization', NEW.id::text,
						old_values, new_values);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._organizations_audit_settings() FROM PUBLIC;

CREATE FUNCTION ipai._grants_admin() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.invite_member(uuid, text, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.invite_member(uuid, text, text, interval) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.accept_invitation(text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.revoke_invitation(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.set_member_role(uuid, uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.remove_member(uuid, uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.transfer_ownership(uuid, uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.update_organization_settings(uuid, text, text, text)
		TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._org_role_from_text(text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_admin() FROM PUBLIC;
-- ipai.typescript_types(): TypeScript declarations of schema ipai, made
-- from the catalog, so the Edge layer and the web client's types
-- (packages/saas-types) are generated, never hand-written, and cannot
-- drift from the database.
--
-- The output follows the layout of `supabase gen types typescript`
-- (a Database type with Tables {Row, Insert, Update}, Views {Row},
-- Functions {Args, Returns}, Enums and CompositeTypes per schema), so
-- supabase-js accepts it as createClient<Database>(...), plus short
-- aliases.  Objects whose names start with "_" are internal and left out.
-- Everything is ordered by name (columns by position, overloads by their
-- argument list), so the same catalog always gives the same text.

-- A property name as TypeScript wants it: bare when it is an identifier.
CREATE FUNCTION ipai._ts_prop(name text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE STRICT
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF name OPERATOR(pg_catalog.~) '^[A-Za-z_$][A-Za-z0-9_$]*$' THEN
		RETURN name;
	END IF;
	RETURN pg_catalog.to_jsonb(name)::text;
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_prop(text) FROM PUBLIC;

-- The TypeScript type of a PostgreSQL type (without "| null").  Numbers
-- (including bigint and numeric, as PostgREST returns them), booleans,
-- Json for json/jsonb, arrays, enums and row types of schema ipai by
-- reference into Database; every other scalar is a string (its text
-- form); pseudo-types are unknown.
CREATE FUNCTION ipai._ts_type(t oid) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	y record;
	elem text;
	rel record;
BEGIN
	SELECT ty.typname, ty.typtype, ty.typcategory, ty.typelem, ty.typbasetype,
		   ty.typnamespace, ty.typrelid, ty.typlen
	  INTO y FROM pg_catalog.pg_type ty WHERE ty.oid OPERATOR(pg_catalog.=) t;
	IF NOT FOUND THEN
		RETURN 'unknown';
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'd' THEN
		RETURN ipai._ts_type(y.typbasetype);
	END IF;
	IF y.typcategory OPERATOR(pg_catalog.=) 'A' AND y.typelem OPERATOR(pg_catalog.<>) 0 THEN
		elem := ipai._ts_type(y.typelem);
		IF pg_catalog.strpos(elem, '|') OPERATOR(pg_catalog.>) 0 THEN
			elem := '(' OPERATOR(pg_catalog.||) elem OPERATOR(pg_catalog.||) ')';
		END IF;
		RETURN elem OPERATOR(pg_catalog.||) '[]';
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'e' THEN
		IF y.typnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace THEN
			RETURN pg_catalog.format('Database["ipai"]["Enums"][%s]', pg_catalog.to_jsonb(y.typname::text));
		END IF;
		RETURN (SELECT pg_catalog.string_agg(pg_catalog.to_jsonb(e.enumlabel::text)::text, ' | ' ORDER BY e.enumsortorder)
				  FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t);
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'c' THEN
		SELECT c.relname::text AS relname, c.relkind, c.relnamespace INTO rel
		  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) y.typrelid;
		IF rel.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND rel.relname OPERATOR(pg_catalog.!~) '^_' THEN
			RETURN pg_catalog.format('Database["ipai"][%s][%s]%s',
				CASE WHEN rel.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[]) THEN '"Tables"'
					 WHEN rel.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[]) THEN '"Views"'
					 ELSE '"CompositeTypes"' END,
				pg_catalog.to_jsonb(rel.relname),
				CASE WHEN rel.relkind OPERATOR(pg_catalog.=) 'c' THEN '' ELSE '["Row"]' END);
		END IF;
		RETURN 'Record<string, unknown>';
	END IF;
	RETURN CASE
		WHEN y.typname OPERATOR(pg_catalog.=) 'bool' THEN 'boolean'
		WHEN y.typname OPERATOR(pg_catalog.=) ANY ('{int2,int4,int8,float4,float8,numeric,oid,money}'::name[]) THEN 'number'
		WHEN y.typname OPERATOR(pg_catalog.=) ANY ('{json,jsonb}'::name[]) THEN 'Json'
		WHEN y.typname OPERATOR(pg_catalog.=) 'void' THEN 'undefined'
		WHEN y.typname OPERATOR(pg_catalog.=) 'record' THEN 'Record<string, unknown>'
		WHEN y.typtype OPERATOR(pg_catalog.=) 'p' THEN 'unknown'
		ELSE 'string' END;
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_type(oid) FROM PUBLIC;

-- The columns of a relation as the body of a TypeScript object type.
-- kind: 'row' (nullable columns are "T | null"; for views every column,
-- since PostgreSQL does not know), 'insert' (columns with a default or
-- NULL allowed are optional, generated ones never), 'update' (all
-- optional, generated ones never).
CREATE FUNCTION ipai._ts_columns(rel oid, kind text, indent text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	is_view boolean := (SELECT c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[])
						  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) rel);
BEGIN
	RETURN coalesce((
		SELECT pg_catalog.string_agg(
			indent OPERATOR(pg_catalog.||) ipai._ts_prop(a.attname::text) OPERATOR(pg_catalog.||)
			CASE
				WHEN kind OPERATOR(pg_catalog.<>) 'row'
					 AND (a.attidentity OPERATOR(pg_catalog.=) 'a' OR a.attgenerated OPERATOR(pg_catalog.<>) '')
					THEN '?: never'
				WHEN kind OPERATOR(pg_catalog.=) 'update'
					 OR (kind OPERATOR(pg_catalog.=) 'insert'
						 AND (NOT a.attnotnull OR a.atthasdef OR a.attidentity OPERATOR(pg_catalog.<>) ''))
					THEN '?: ' OPERATOR(pg_catalog.||) ipai._ts_type(a.atttypid)
						 OPERATOR(pg_catalog.||) CASE WHEN a.attnotnull THEN '' ELSE ' | null' END
				ELSE ': ' OPERATOR(pg_catalog.||) ipai._ts_type(a.atttypid)
					 OPERATOR(pg_catalog.||) CASE WHEN a.attnotnull AND NOT is_view THEN '' ELSE ' | null' END
			END OPERATOR(pg_catalog.||) ';',
			E'\n' ORDER BY a.attnum)
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0
		   AND NOT a.attisdropped), '');
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_columns(oid, text, text) FROM PUBLIC;

-- One function's {Args, Returns} entry.
CREATE FUNCTION ipai._ts_function(fn oid, indent text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p record;
	args text;
	outs text;
	ret text;
	n_in integer;
BEGIN
	SELECT pr.proname, pr.prorettype, pr.proretset, pr.pronargs, pr.pronargdefaults,
		   coalesce(pr.proallargtypes, (pr.proargtypes::oid[])[:]) AS types,
		   coalesce(pr.proargmodes, pg_catalog.array_fill('i'::"char", ARRAY[pr.pronargs])) AS modes,
		   pr.proargnames AS names
	  INTO p FROM pg_catalog.pg_proc pr WHERE pr.oid OPERATOR(pg_catalog.=) fn;

	-- input arguments, in order; the last pronargdefaults of them are optional
	WITH a AS (
		SELECT k.ord, p.types[k.ord] AS typ, p.modes[k.ord] AS mode,
			   coalesce(NULLIF(p.names[k.ord], ''), '$' OPERATOR(pg_catalog.||) k.ord) AS name
		  FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p.types)) AS k(ord)
	), i AS (
		SELECT a.*, pg_catalog.row_number() OVER (ORDER BY a.ord) AS pos FROM a
		 WHERE a.mode OPERATOR(pg_catalog.=) ANY ('{i,b,v}'::"char"[])
	)
	SELECT pg_catalog.string_agg(
			   indent OPERATOR(pg_catalog.||) '    ' OPERATOR(pg_catalog.||) ipai._ts_prop(i.name)
			   OPERATOR(pg_catalog.||)
			   CASE WHEN i.pos OPERATOR(pg_catalog.>) (p.pronargs OPERATOR(pg_catalog.-) p.pronargdefaults)
					THEN '?: ' ELSE ': ' END
			   OPERATOR(pg_catalog.||) ipai._ts_type(i.typ) OPERATOR(pg_catalog.||) ';',
			   E'\n' ORDER BY i.ord),
		   pg_catalog.count(*)::integer
	  INTO args, n_in FROM i;

	-- output columns (OUT, INOUT, TABLE)
	SELECT pg_catalog.string_agg(
			   indent OPERATOR(pg_catalog.||) '    ' OPERATOR(pg_catalog.||)
			   ipai._ts_prop(coalesce(NULLIF(p.names[k.ord], ''), 'column' OPERATOR(pg_catalog.||) k.ord))
			   OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) ipai._ts_type(p.types[k.ord])
			   OPERATOR(pg_catalog.||) ' | null;',
			   E'\n' ORDER BY k.ord)
	  INTO outs
	  FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p.types)) AS k(ord)
	 WHERE p.modes[k.ord] OPERATOR(pg_catalog.=) ANY ('{o,b,t}'::"char"[]);

	IF outs IS NOT NULL THEN
		ret := E'{\n' OPERATOR(pg_catalog.||) outs OPERATOR(pg_catalog.||) E'\n'
			   OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  }';
	ELSE
		ret := ipai._ts_type(p.prorettype);
	END IF;
	IF p.proretset THEN
		ret := CASE WHEN pg_catalog.strpos(ret, '|') OPERATOR(pg_catalog.>) 0 AND outs IS NULL
					THEN '(' OPERATOR(pg_catalog.||) ret OPERATOR(pg_catalog.||) ')' ELSE ret END
			   OPERATOR(pg_catalog.||) '[]';
	END IF;

	RETURN indent OPERATOR(pg_catalog.||) E'{\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  Args: '
		OPERATOR(pg_catalog.||) CASE WHEN n_in OPERATOR(pg_catalog.=) 0 THEN 'Record<PropertyKey, never>'
			ELSE E'{\n' OPERATOR(pg_catalog.||) args OPERATOR(pg_catalog.||) E'\n'
				 OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  }' END
		OPERATOR(pg_catalog.||) E';\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  Returns: '
		OPERATOR(pg_catalog.||) ret OPERATOR(pg_catalog.||) E';\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '}';
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_function(oid, text) FROM PUBLIC;

-- The declarations, as one text ending in a newline.  Regenerate the
-- committed copy with:
--   psql -X -A -t -c 'SELECT ipai.typescript_types()' -o packages/saas-types/src/ipai.d.ts
CREATE FUNCTION ipai.typescript_types() RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	out text;
	tables text;
	views text;
	functions text;
	enums text;
	composites text;
	ipai_ns oid := 'ipai'::regnamespace;
	empty constant text := '      [_ in never]: never;';
BEGIN
	SELECT pg_catalog.string_agg(
			   coalesce('      /** ' OPERATOR(pg_catalog.||)
						pg_catalog.replace(pg_catalog.obj_description(c.oid, 'pg_class'), '*/', '* /')
						OPERATOR(pg_catalog.||) E' */\n', '')
			   OPERATOR(pg_catalog.||) '      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
			   OPERATOR(pg_catalog.||) E': {\n'
			   OPERATOR(pg_catalog.||) E'        Row: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n'
			   OPERATOR(pg_catalog.||) E'        Insert: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'insert', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n'
			   OPERATOR(pg_catalog.||) E'        Update: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'update', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n      };',
			   E'\n' ORDER BY c.relname)
	  INTO tables
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns
	   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[])
	   AND NOT c.relispartition
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	SELECT pg_catalog.string_agg(
			   coalesce('      /** ' OPERATOR(pg_catalog.||)
						pg_catalog.replace(pg_catalog.obj_description(c.oid, 'pg_class'), '*/', '* /')
						OPERATOR(pg_catalog.||) E' */\n', '')
			   OPERATOR(pg_catalog.||) '      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
			   OPERATOR(pg_catalog.||) E': {\n'
			   OPERATOR(pg_catalog.||) E'        Row: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n      };',
			   E'\n' ORDER BY c.relname)
	  INTO views
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns
	   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[])
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	-- overloads of one name are a union of their {Args, Returns}
	WITH f AS (
		SELECT pr.proname::text AS name,
			   CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
					THEN ' ' OPERATOR(pg_catalog.||) pg_catalog.ltrim(pg_catalog.min(ipai._ts_function(pr.oid, '      ')))
					ELSE E'\n' OPERATOR(pg_catalog.||) pg_catalog.string_agg(
						'        | ' OPERATOR(pg_catalog.||) pg_catalog.ltrim(ipai._ts_function(pr.oid, '          ')),
						E'\n' ORDER BY pg_catalog.pg_get_function_identity_arguments(pr.oid)) END AS body
		  FROM pg_catalog.pg_proc pr
		 WHERE pr.pronamespace OPERATOR(pg_catalog.=) ipai_ns
		   AND pr.prokind OPERATOR(pg_catalog.=) 'f'
		   AND pr.proname OPERATOR(pg_catalog.!~) '^_'
		   AND pr.prorettype OPERATOR(pg_catalog.<>) ALL ('{trigger,event_trigger,internal,language_handler,fdw_handler,index_am_handler,tsm_handler,table_am_handler}'::regtype[]::oid[])
		   AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(pr.proargtypes::oid[]) AS t(oid)
							WHERE t.oid OPERATOR(pg_catalog.=) 'internal'::regtype)
		 GROUP BY pr.proname
	)
	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(f.name)
								 OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) f.body
								 OPERATOR(pg_catalog.||) ';', E'\n' ORDER BY f.name)
	  INTO functions FROM f;

	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(t.typname::text)
								 OPERATOR(pg_catalog.||) ': '
								 OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(pg_catalog.to_jsonb(e.enumlabel::text)::text, ' | ' ORDER BY e.enumsortorder)
									   FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid)
								 OPERATOR(pg_catalog.||) ';', E'\n' ORDER BY t.typname)
	  INTO enums
	  FROM pg_catalog.pg_type t
	 WHERE t.typnamespace OPERATOR(pg_catalog.=) ipai_ns AND t.typtype OPERATOR(pg_catalog.=) 'e'
	   AND t.typname OPERATOR(pg_catalog.!~) '^_';

	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
								 OPERATOR(pg_catalog.||) E': {\n'
								 OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '        ')
								 OPERATOR(pg_catalog.||) E'\n      };', E'\n' ORDER BY c.relname)
	  INTO composites
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns AND c.relkind OPERATOR(pg_catalog.=) 'c'
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	out := pg_catalog.format(
E'// TypeScript declarations of schema "ipai" (ipai_saas %s, schema version %s),\n'
'// generated from the catalog by ipai.typescript_types().  Do not edit:\n'
'// psql -X -A -t -c ''SELECT ipai.typescript_types()'' -o packages/saas-types/src/ipai.d.ts\n'
'\n'
'export type Json =\n'
'  | string\n'
'  | number\n'
'  | boolean\n'
'  | null\n'
'  | { [key: string]: Json | undefined }\n'
'  | Json[];\n'
'\n'
'export type Database = {\n'
'  ipai: {\n'
'    Tables: {\n%s\n    };\n'
'    Views: {\n%s\n    };\n'
'    Functions: {\n%s\n    };\n'
'    Enums: {\n%s\n    };\n'
'    CompositeTypes: {\n%s\n    };\n'
'  };\n'
'};\n'
'\n'
'type Schema = Database["ipai"];\n'
'\n'
'/** The row type of a table or view: Row<"organizations">. */\n'
'export type Row<T extends keyof Schema["Tables"] | keyof Schema["Views"]> =\n'
'  T extends keyof Schema["Tables"] ? Schema["Tables"][T]["Row"]\n'
'  : T extends keyof Schema["Views"] ? Schema["Views"][T]["Row"]\n'
'  : never;\n'
'/** What an INSERT takes: Insert<"cms_pages">. */\n'
'export type Insert<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Insert"];\n'
'/** What an UPDATE takes: Update<"cms_pages">. */\n'
'export type Update<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Update"];\n'
'/** An enum: Enum<"org_role">. */\n'
'export type Enum<T extends keyof Schema["Enums"]> = Schema["Enums"][T];\n'
'/** Arguments of a function: Args<"invite_member">. */\n'
'export type Args<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Args"];\n'
'/** Result of a function: Returns<"check_entitlement">. */\n'
'export type Returns<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Returns"];',
		(SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'ipai_saas'),
		ipai._schema_target_version(),
		coalesce(tables, empty), coalesce(views, empty), coalesce(functions, empty),
		coalesce(enums, empty), coalesce(composites, empty));
	RETURN out;
END
$$;
REVOKE ALL ON FUNCTION ipai.typescript_types() FROM PUBLIC;
COMMENT ON FUNCTION ipai.typescript_types() IS
	'TypeScript declarations of the tables, views, functions, enums and composite types of schema ipai';

CREATE FUNCTION ipai._grants_typescript() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.typescript_types() TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_prop(text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_type(oid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_columns(oid, text, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_function(oid, text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_typescript() FROM PUBLIC;
-- Helpers of the dashboard views (src/sql/27_schema_views.sql).
--
-- They run as the caller (SECURITY INVOKER, like the views), so row-level
-- security and the metering functions' own permission checks apply; the
-- views only call them for organizations the caller can see.

-- Usage of every feature of org's plan against its limit, as the limit
-- checks see it (ipai.check_entitlement: usage of the current period for
-- per-period features, pages that exist for cms_items, members plus open
-- invitations for seats).  percent_used is NULL when unlimited.
CREATE FUNCTION ipai._dashboard_usage(org uuid)
	RETURNS TABLE (feature text, used bigint, max_quantity bigint, remaining bigint,
				   percent_used numeric, enforcement text, metered boolean)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	e record;
	c record;
BEGIN
	FOR e IN
		SELECT pe.feature, pe.max_quantity, pe.enforcement, pe.metered
		  FROM ipai.organizations o
		  JOIN ipai.plan_entitlements pe ON pe.plan_id OPERATOR(pg_catalog.=) o.plan_id
		 WHERE o.id OPERATOR(pg_catalog.=) org
		 ORDER BY pe.feature
	LOOP
		SELECT * INTO c FROM ipai.check_entitlement(org, e.feature, 1);
		feature := e.feature;
		used := c.current;
		max_quantity := c.max;
		remaining := CASE WHEN c.max IS NULL THEN NULL
						  WHEN c.current OPERATOR(pg_catalog.>=) c.max THEN 0
						  ELSE c.max OPERATOR(pg_catalog.-) c.current END;
		percent_used := CASE WHEN c.max IS NULL THEN NULL
							 WHEN c.max OPERATOR(pg_catalog.=) 0 THEN 100.0
							 ELSE pg_catalog.round(100.0 OPERATOR(pg_catalog.*) c.current
												   OPERATOR(pg_catalog./) c.max, 1) END;
		enforcement := e.enforcement;
		metered := e.metered;
		RETURN NEXT;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._dashboard_usage(uuid) FROM PUBLIC;

-- ipai.preview_invoice(org) for owners and admins (and privileged
-- callers); no row for anyone else, so a viewer's dashboard shows the
-- usage but not the money.
CREATE FUNCTION ipai._dashboard_preview(org uuid)
	RETURNS TABLE (currency text, base_amount numeric, metered_quantity bigint,
				   metered_amount numeric, total numeric)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF ipai.caller_is_privileged() OR ipai.is_org_member(org, 'admin') THEN
		RETURN QUERY SELECT p.currency, p.base_amount, p.metered_quantity, p.metered_amount, p.total
					   FROM ipai.preview_invoice(org) p;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._dashboard_preview(uuid) FROM PUBLIC;

-- Invoice amounts arrive from Stripe in the currency's smallest unit;
-- this gives currency units (zero-decimal currencies as they are).
CREATE FUNCTION ipai._stripe_amount(amount bigint, currency text) RETURNS numeric
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT CASE
		WHEN $1 IS NULL THEN NULL
		WHEN pg_catalog.lower($2) OPERATOR(pg_catalog.=) ANY
			('{bif,clp,djf,gnf,jpy,kmf,krw,mga,pyg,rwf,ugx,vnd,vuv,xaf,xof,xpf}'::text[])
			THEN $1::numeric
		ELSE pg_catalog.round($1::numeric OPERATOR(pg_catalog./) 100, 2) END
$$;
REVOKE ALL ON FUNCTION ipai._stripe_amount(bigint, text) FROM PUBLIC;

CREATE FUNCTION ipai._grants_dashboards() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai._dashboard_usage(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._dashboard_preview(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._stripe_amount(bigint, text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_dashboards() FROM PUBLIC;
