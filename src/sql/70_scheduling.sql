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
-- On the Citus coordinator: what the trigger on ipai.cms_schedule does
-- where it fires (on a worker there), wake this node's worker at commit.
CREATE FUNCTION ipai._scheduler_wake_at_commit() RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_scheduler_wake_at_commit'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._scheduler_wake_at_commit() FROM PUBLIC;

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

	-- on Citus the trigger that wakes the worker fires on a worker node
	IF ipai.is_distributed() THEN
		PERFORM ipai._scheduler_wake_at_commit();
	END IF;
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
	orgs uuid[] := '{NULL}';
	one_org uuid;
	wanted integer := max_rows;
	n integer;
BEGIN
	IF max_rows IS NOT NULL AND max_rows OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_rows must be positive' USING ERRCODE = '22023';
	END IF;
	-- On Citus a locking read names one organization (one shard): the
	-- organizations with due rows first, earliest first, then one claim each
	IF ipai.is_distributed() THEN
		SELECT pg_catalog.array_agg(d.org_id ORDER BY d.first_due) INTO orgs
		  FROM (SELECT s.org_id, pg_catalog.min(s.run_at) AS first_due
				  FROM ipai.cms_schedule s
				 WHERE s.status OPERATOR(pg_catalog.=) 'pending'
				   AND s.run_at OPERATOR(pg_catalog.<=) t
				   AND (s.retry_at IS NULL OR s.retry_at OPERATOR(pg_catalog.<=) t)
				 GROUP BY s.org_id) d;
	END IF;
	FOREACH one_org IN ARRAY coalesce(orgs, '{}') LOOP
		RETURN QUERY
		WITH due AS (
			SELECT s.org_id, s.id FROM ipai.cms_schedule s
			 WHERE (one_org IS NULL OR s.org_id OPERATOR(pg_catalog.=) one_org)
			   AND s.status OPERATOR(pg_catalog.=) 'pending'
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
			 LIMIT wanted
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
		   AND (one_org IS NULL OR s.org_id OPERATOR(pg_catalog.=) one_org)
		RETURNING s.org_id, s.id;
		GET DIAGNOSTICS n = ROW_COUNT;
		wanted := wanted OPERATOR(pg_catalog.-) n;
		EXIT WHEN wanted OPERATOR(pg_catalog.<=) 0;
	END LOOP;
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
	LOOP
		-- locked one at a time, by organization and id (one shard on Citus)
		PERFORM 1 FROM ipai.cms_schedule s
		  WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) r.id
			AND s.status OPERATOR(pg_catalog.=) 'running'
			AND s.claimed_by_pid OPERATOR(pg_catalog.=) me_pid
			AND s.claimed_backend_start OPERATOR(pg_catalog.=) me_start
			FOR UPDATE;
		CONTINUE WHEN NOT FOUND;
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
	-- whether the claimer lives is asked here, of this server's backends
	-- (OFFSET 0: on Citus the test is not pushed down to the workers,
	-- whose backends are others), then each row is locked by organization
	-- and id and taken only if its claim is still the same
	FOR r IN
		SELECT s.* FROM (
			SELECT s.org_id, s.id, s.page_id, s.action, s.run_at, s.attempts,
				   s.claimed_by_pid, s.claimed_backend_start
			  FROM ipai.cms_schedule s
			 WHERE s.status OPERATOR(pg_catalog.=) 'running'
			OFFSET 0) s
		 WHERE NOT ipai._backend_is_alive(s.claimed_by_pid, s.claimed_backend_start)
		 ORDER BY s.run_at, s.id
	LOOP
		PERFORM 1 FROM ipai.cms_schedule s
		  WHERE s.org_id OPERATOR(pg_catalog.=) r.org_id AND s.id OPERATOR(pg_catalog.=) r.id
			AND s.status OPERATOR(pg_catalog.=) 'running'
			AND s.claimed_by_pid IS NOT DISTINCT FROM r.claimed_by_pid
			AND s.claimed_backend_start IS NOT DISTINCT FROM r.claimed_backend_start
			FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
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
