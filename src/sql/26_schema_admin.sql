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
