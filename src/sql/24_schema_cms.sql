-- Schema area "cms": content types, pages, versions, approvals.

CREATE FUNCTION ipai._schema_cms(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
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

		CREATE TABLE ipai.cms_pages (
			org_id uuid NOT NULL REFERENCES ipai.organizations (id) ON DELETE CASCADE,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			content_type_id uuid,
			slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,199}$'),
			title text NOT NULL,
			body text NOT NULL DEFAULT '',
			metadata jsonb NOT NULL DEFAULT '{}',
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
			UNIQUE (org_id, slug),
			FOREIGN KEY (org_id, content_type_id)
				REFERENCES ipai.content_types (org_id, id)
		);
		CREATE INDEX cms_pages_id ON ipai.cms_pages (id);

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
			PRIMARY KEY (org_id, id),
			FOREIGN KEY (org_id, page_id) REFERENCES ipai.cms_pages (org_id, id) ON DELETE CASCADE
		);
		CREATE INDEX cms_approvals_id ON ipai.cms_approvals (id);
		CREATE UNIQUE INDEX cms_approvals_one_pending ON ipai.cms_approvals (org_id, page_id)
			WHERE status = 'pending';

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
		CREATE POLICY cms_pages_editor_update ON ipai.cms_pages FOR UPDATE
			USING (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('editor'))::uuid[]))
			WITH CHECK (org_id OPERATOR(pg_catalog.=) ANY ((SELECT ipai.user_org_ids('editor'))::uuid[]));
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
		GRANT SELECT, INSERT ON ipai.cms_page_versions TO service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_cms(integer) FROM PUBLIC;
