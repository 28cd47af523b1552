-- Schema area "admin": invitations.

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
			token_hash bytea NOT NULL,
			invited_by uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			expires_at timestamptz NOT NULL DEFAULT now() + interval '7 days',
			accepted_at timestamptz,
			accepted_by uuid,
			revoked_at timestamptz,
			PRIMARY KEY (org_id, id)
		);
		CREATE INDEX org_invitations_token ON ipai.org_invitations (token_hash);
		CREATE UNIQUE INDEX org_invitations_one_open ON ipai.org_invitations (org_id, email)
			WHERE accepted_at IS NULL AND revoked_at IS NULL;

		ALTER TABLE ipai.org_invitations ENABLE ROW LEVEL SECURITY;
		CREATE POLICY org_invitations_admin_read ON ipai.org_invitations FOR SELECT
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('admin'))::uuid[]));

		GRANT SELECT ON ipai.org_invitations TO authenticated;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ipai.org_invitations TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_admin(integer) FROM PUBLIC;
