-- Schema area "scheduling": scheduled publish/unpublish of pages.

CREATE FUNCTION ipai._schema_scheduling(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		CREATE TABLE ipai.cms_schedule (
			org_id uuid NOT NULL,
			id bigint GENERATED ALWAYS AS IDENTITY,
			page_id uuid NOT NULL,
			action ipai.schedule_action NOT NULL DEFAULT 'publish',
			run_at timestamptz NOT NULL,
			status ipai.schedule_status NOT NULL DEFAULT 'pending',
			attempts integer NOT NULL DEFAULT 0,
			claimed_by_pid integer,
			claimed_backend_start timestamptz,
			claimed_at timestamptz,
			executed_at timestamptz,
			lateness interval,
			error text,
			created_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (org_id, id),
			FOREIGN KEY (org_id, page_id) REFERENCES ipai.cms_pages (org_id, id) ON DELETE CASCADE
		);
		CREATE INDEX cms_schedule_id ON ipai.cms_schedule (id);
		CREATE INDEX cms_schedule_due ON ipai.cms_schedule (run_at) WHERE status = 'pending';
		CREATE UNIQUE INDEX cms_schedule_one_pending ON ipai.cms_schedule (org_id, page_id, action)
			WHERE status = 'pending';

		ALTER TABLE ipai.cms_schedule ENABLE ROW LEVEL SECURITY;
		CREATE POLICY cms_schedule_member_read ON ipai.cms_schedule FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('viewer'))::uuid[]));

		GRANT SELECT ON ipai.cms_schedule TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.cms_schedule TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_scheduling(integer) FROM PUBLIC;
