-- Schema area "metering": usage events, live counters, holds.

CREATE FUNCTION ipai._schema_metering(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- append-only record of usage; the idempotency key is unique per org
		CREATE TABLE ipai.usage_events (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id bigint GENERATED ALWAYS AS IDENTITY,
			feature text NOT NULL,
			quantity bigint NOT NULL CHECK (quantity > 0),
			idempotency_key text,
			occurred_at timestamptz NOT NULL DEFAULT now(),
			period_start timestamptz NOT NULL,
			hold_id uuid,
			recorded_by uuid,
			recorded_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id),
			UNIQUE (org_id, idempotency_key)
		);
		CREATE INDEX usage_events_period ON ipai.usage_events (org_id, feature, period_start);
		CREATE TRIGGER usage_events_append_only
			BEFORE UPDATE OR DELETE ON ipai.usage_events
			FOR EACH ROW EXECUTE FUNCTION ipai._append_only();

		-- live counters per (org, feature, period), kept in the event's transaction
		CREATE TABLE ipai.usage_counters (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			feature text NOT NULL,
			period_start timestamptz NOT NULL,
			period_end timestamptz,
			used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, feature, period_start)
		);

		-- reservations for long-running work; expired holds stop counting
		CREATE TABLE ipai.usage_holds (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			feature text NOT NULL,
			quantity bigint NOT NULL CHECK (quantity > 0),
			period_start timestamptz NOT NULL,
			expires_at timestamptz NOT NULL,
			status text NOT NULL DEFAULT 'active'
				CHECK (status IN ('active', 'finalized', 'released')),
			actual_quantity bigint,
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			closed_at timestamptz,
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX usage_holds_id ON ipai.usage_holds (id);
		CREATE INDEX usage_holds_active ON ipai.usage_holds (org_id, feature, expires_at)
			WHERE status = 'active';

		ALTER TABLE ipai.usage_events ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_counters ENABLE ROW LEVEL SECURITY;
		ALTER TABLE ipai.usage_holds ENABLE ROW LEVEL SECURITY;

		CREATE POLICY usage_events_member_read ON ipai.usage_events FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_counters_member_read ON ipai.usage_counters FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));
		CREATE POLICY usage_holds_member_read ON ipai.usage_holds FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		GRANT SELECT ON ipai.usage_events, ipai.usage_counters, ipai.usage_holds TO authenticated;
		GRANT SELECT, INSERT ON ipai.usage_events TO service_role;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.usage_counters, ipai.usage_holds TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_metering(integer) FROM PUBLIC;
