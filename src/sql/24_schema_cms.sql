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
