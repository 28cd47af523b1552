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

	IF from_version < 4 THEN
		-- delivery failures are kept in the outbox (see src/sql/35_outbox.sql):
		-- attempts, when the next one is due, the last error, dead rows,
		-- and the meter-event group a row was sent in
		ALTER TABLE ipai.outbox RENAME COLUMN claim_count TO attempts;
		-- PostgreSQL 18 names NOT NULL constraints after their column, and
		-- a column's rename keeps the old name: as a fresh install has it
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
					WHERE c.conrelid OPERATOR(pg_catalog.=) 'ipai.outbox'::regclass
					  AND c.conname OPERATOR(pg_catalog.=) 'outbox_claim_count_not_null') THEN
			ALTER TABLE ipai.outbox RENAME CONSTRAINT outbox_claim_count_not_null TO outbox_attempts_not_null;
		END IF;
		ALTER TABLE ipai.outbox
			ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
			ADD COLUMN first_attempt_at timestamptz,
			ADD COLUMN last_error text,
			ADD COLUMN dead_at timestamptz,
			ADD COLUMN in_doubt boolean NOT NULL DEFAULT false,
			ADD COLUMN batch text,
			ADD CONSTRAINT outbox_sent_or_dead CHECK (sent_at IS NULL OR dead_at IS NULL);
		-- a row claimed before is in doubt: its sender may have delivered it
		UPDATE ipai.outbox SET first_attempt_at = claimed_at, in_doubt = true
		 WHERE sent_at IS NULL AND claimed_at IS NOT NULL;
		DROP INDEX ipai.outbox_unsent;
		CREATE INDEX outbox_due ON ipai.outbox (topic, next_attempt_at, id)
			WHERE sent_at IS NULL AND dead_at IS NULL;
		CREATE INDEX outbox_dead ON ipai.outbox (dead_at) WHERE dead_at IS NOT NULL;
		-- meter-event groups in flight (leased or waiting): few rows
		CREATE INDEX outbox_batch ON ipai.outbox (org_id, batch)
			WHERE batch IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL;
		CREATE TRIGGER outbox_notify AFTER INSERT ON ipai.outbox
			FOR EACH STATEMENT EXECUTE FUNCTION ipai._outbox_notify();
		COMMENT ON COLUMN ipai.outbox.next_attempt_at IS
			'When the row is due (again): at once, after a backoff, infinity while parked';
		COMMENT ON COLUMN ipai.outbox.dead_at IS
			'Set when delivery was given up (last_error says why); ipai.outbox_retry(id) sends it again';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_core(integer) FROM PUBLIC;
