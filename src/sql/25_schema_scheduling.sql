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
	IF from_version < 2 THEN
		-- ipai.health() counts the runs that failed in the last day
		CREATE INDEX cms_schedule_failed ON ipai.cms_schedule (executed_at)
			WHERE status = 'failed';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_scheduling(integer) FROM PUBLIC;
