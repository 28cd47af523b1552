-- ipai_saas 1.2 -> 1.3: code only (frozen once released).
--   * Supabase Realtime: where the supabase_realtime publication exists,
--     install_schema() adds the tables dashboards watch
--     (ipai.realtime_tables(), ipai._realtime_publish()) and health()
--     reports them (ipai._realtime_status(), check "realtime");
--   * the outbox keeps delivery failures (schema version 4, applied by
--     SELECT ipai.install_schema() after this update): attempts,
--     next_attempt_at with backoff and Retry-After, last_error, dead rows
--     and ipai.outbox_retry(), leases for senders (ipai.outbox_lease,
--     ipai.outbox_lease_meter_events with grouped meter events),
--     ipai.outbox_mark_failed, parked meter events without a Stripe
--     customer, the outbox_notify trigger that wakes senders; health()
--     reports the backlog due and the dead rows.
\echo Use "ALTER EXTENSION ipai_saas UPDATE TO '1.3'" to load this file. \quit

-- new: ipai.realtime_tables
CREATE FUNCTION ipai.realtime_tables() RETURNS regclass[]
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN ARRAY(SELECT r FROM pg_catalog.unnest(ARRAY[
					pg_catalog.to_regclass('ipai.cms_approvals'),
					pg_catalog.to_regclass('ipai.cms_schedule'),
					pg_catalog.to_regclass('ipai.cms_pages'),
					pg_catalog.to_regclass('ipai.subscriptions')]) WITH ORDINALITY AS u(r, n)
				  WHERE r IS NOT NULL ORDER BY n);
END
$$;
REVOKE ALL ON FUNCTION ipai.realtime_tables() FROM PUBLIC;
COMMENT ON FUNCTION ipai.realtime_tables() IS
	'The tables ipai.install_schema() adds to the supabase_realtime publication when it exists';

-- new: ipai._realtime_publish
CREATE FUNCTION ipai._realtime_publish() RETURNS regclass[]
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	pub record;
	t regclass;
	added regclass[] := '{}';
BEGIN
	SELECT p.oid, p.puballtables INTO pub FROM pg_catalog.pg_publication p
	 WHERE p.pubname OPERATOR(pg_catalog.=) 'supabase_realtime';
	IF NOT FOUND OR pub.puballtables THEN
		RETURN added;
	END IF;
	FOR t IN
		SELECT u.t FROM pg_catalog.unnest(ipai.realtime_tables()) WITH ORDINALITY AS u(t, n)
		 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
							WHERE r.prpubid OPERATOR(pg_catalog.=) pub.oid
							  AND r.prrelid OPERATOR(pg_catalog.=) u.t)
		 ORDER BY u.n
	LOOP
		EXECUTE pg_catalog.format('ALTER PUBLICATION supabase_realtime ADD TABLE %s', t);
		added := added OPERATOR(pg_catalog.||) t;
	END LOOP;
	RETURN added;
END
$$;
REVOKE ALL ON FUNCTION ipai._realtime_publish() FROM PUBLIC;

-- new: ipai._realtime_status
CREATE FUNCTION ipai._realtime_status(OUT published regclass[], OUT missing regclass[])
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	pub record;
BEGIN
	SELECT p.oid, p.puballtables INTO pub FROM pg_catalog.pg_publication p
	 WHERE p.pubname OPERATOR(pg_catalog.=) 'supabase_realtime';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT coalesce(pg_catalog.array_agg(t.t ORDER BY t.n) FILTER (WHERE t.in_pub), '{}'),
		   coalesce(pg_catalog.array_agg(t.t ORDER BY t.n) FILTER (WHERE NOT t.in_pub), '{}')
	  INTO published, missing
	  FROM (SELECT u.t, u.n,
				   pub.puballtables OR EXISTS (
					   SELECT 1 FROM pg_catalog.pg_publication_rel r
						WHERE r.prpubid OPERATOR(pg_catalog.=) pub.oid
						  AND r.prrelid OPERATOR(pg_catalog.=) u.t) AS in_pub
			  FROM pg_catalog.unnest(ipai.realtime_tables()) WITH ORDINALITY AS u(t, n)) t;
END
$$;
REVOKE ALL ON FUNCTION ipai._realtime_status() FROM PUBLIC;

-- new: ipai._outbox_policy
CREATE FUNCTION ipai._outbox_policy(OUT max_attempts integer, OUT horizon interval,
									OUT backoff_base interval, OUT backoff_cap interval)
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 20, interval '23 hours', interval '10 seconds', interval '1 hour' $$;
REVOKE ALL ON FUNCTION ipai._outbox_policy() FROM PUBLIC;

-- new: ipai._outbox_backoff
CREATE FUNCTION ipai._outbox_backoff(attempt integer) RETURNS interval
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p record;
BEGIN
	SELECT * INTO p FROM ipai._outbox_policy();
	RETURN least(p.backoff_base OPERATOR(pg_catalog.*)
								pg_catalog.power(2, least(greatest(attempt, 1) OPERATOR(pg_catalog.-) 1, 30)),
							p.backoff_cap)
		   OPERATOR(pg_catalog.*) (0.5 OPERATOR(pg_catalog.+) (pg_catalog.random() OPERATOR(pg_catalog./) 2));
END
$$;
REVOKE ALL ON FUNCTION ipai._outbox_backoff(integer) FROM PUBLIC;

-- new: ipai._outbox_check_lease
CREATE FUNCTION ipai._outbox_check_lease(max_rows integer, lease interval) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF max_rows IS NULL OR max_rows OPERATOR(pg_catalog.<) 1 OR max_rows OPERATOR(pg_catalog.>) 10000 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 10000' USING ERRCODE = '22023';
	END IF;
	IF lease IS NULL OR lease OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'the lease (claim_timeout) must be positive' USING ERRCODE = '22023';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._outbox_check_lease(integer, interval) FROM PUBLIC;

-- new: ipai._outbox_lease
CREATE FUNCTION ipai._outbox_lease(want_topic text, max_rows integer, lease interval)
	RETURNS TABLE (out_id bigint, out_org_id uuid, out_topic text, out_payload jsonb,
				   out_created_at timestamptz, out_attempts integer, out_in_doubt boolean,
				   out_given_up text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	now_ts timestamptz := pg_catalog.clock_timestamp();
	p record;
BEGIN
	IF want_topic IS NULL THEN
		RAISE EXCEPTION 'topic must not be null' USING ERRCODE = '22023';
	END IF;
	PERFORM ipai._outbox_check_lease(max_rows, lease);
	SELECT * INTO p FROM ipai._outbox_policy();
	RETURN QUERY
	WITH c AS (
		SELECT o.org_id, o.id, o.in_doubt,
			   (o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
				OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false)) AS give_up,
			   (o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
				AND pg_catalog.jsonb_typeof(o.payload OPERATOR(pg_catalog.->) 'stripe_customer_id')
					IS DISTINCT FROM 'string') AS park
		  FROM ipai.outbox o
		 WHERE o.topic OPERATOR(pg_catalog.=) want_topic
		   AND o.sent_at IS NULL AND o.dead_at IS NULL
		   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
		   AND (o.claimed_at IS NULL
				OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
		 ORDER BY o.next_attempt_at, o.id
		 LIMIT max_rows
		 FOR UPDATE SKIP LOCKED
	), u AS (
		UPDATE ipai.outbox o
		   SET dead_at = CASE WHEN c.give_up THEN now_ts END,
			   last_error = CASE WHEN c.give_up
								 THEN pg_catalog.format('gave up after %s attempts%s', o.attempts,
														': ' OPERATOR(pg_catalog.||) o.last_error)
								 ELSE o.last_error END,
			   next_attempt_at = CASE WHEN c.park THEN 'infinity' ELSE o.next_attempt_at END,
			   claimed_at = CASE WHEN c.give_up OR c.park THEN NULL ELSE now_ts END,
			   attempts = CASE WHEN c.give_up OR c.park THEN o.attempts
							   ELSE o.attempts OPERATOR(pg_catalog.+) 1 END,
			   first_attempt_at = CASE WHEN c.give_up OR c.park THEN o.first_attempt_at
									   ELSE coalesce(o.first_attempt_at, now_ts) END,
			   in_doubt = CASE WHEN c.give_up OR c.park THEN o.in_doubt ELSE true END
		  FROM c
		 WHERE o.org_id OPERATOR(pg_catalog.=) c.org_id AND o.id OPERATOR(pg_catalog.=) c.id
		RETURNING o.id, o.org_id, o.topic, o.payload, o.created_at, o.attempts, c.in_doubt,
				  c.park, o.dead_at, o.last_error
	)
	SELECT u.id, u.org_id, u.topic, u.payload, u.created_at, u.attempts, u.in_doubt,
		   CASE WHEN u.dead_at IS NOT NULL THEN u.last_error END
	  FROM u WHERE NOT u.park
	 ORDER BY u.id;
END
$$;
REVOKE ALL ON FUNCTION ipai._outbox_lease(text, integer, interval) FROM PUBLIC;

-- new: ipai.outbox_lease
CREATE FUNCTION ipai.outbox_lease(topic text, max_rows integer DEFAULT 100,
								  lease interval DEFAULT '5 minutes')
	RETURNS TABLE (id bigint, org_id uuid, topic text, payload jsonb, created_at timestamptz,
				   attempts integer, in_doubt boolean, given_up text)
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT * FROM ipai._outbox_lease($1, $2, $3) $$;
REVOKE ALL ON FUNCTION ipai.outbox_lease(text, integer, interval) FROM PUBLIC;
COMMENT ON FUNCTION ipai.outbox_lease(text, integer, interval) IS
	'Leases due outbox rows of a topic (FOR UPDATE SKIP LOCKED), with their attempt number; service_role';

-- new: ipai._meter_payload_problem
CREATE FUNCTION ipai._meter_payload_problem(payload jsonb) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF pg_catalog.jsonb_typeof(payload) IS DISTINCT FROM 'object' THEN
		RETURN 'the payload is not a JSON object';
	ELSIF pg_catalog.jsonb_typeof(payload OPERATOR(pg_catalog.->) 'event_name') IS DISTINCT FROM 'string'
		  OR pg_catalog.length(payload OPERATOR(pg_catalog.->>) 'event_name') NOT BETWEEN 1 AND 100 THEN
		RETURN 'event_name must be a string of 1 to 100 characters';
	ELSIF pg_catalog.jsonb_typeof(payload OPERATOR(pg_catalog.->) 'identifier') IS DISTINCT FROM 'string'
		  OR pg_catalog.length(payload OPERATOR(pg_catalog.->>) 'identifier') NOT BETWEEN 1 AND 100 THEN
		RETURN 'identifier must be a string of 1 to 100 characters';
	ELSIF pg_catalog.jsonb_typeof(payload OPERATOR(pg_catalog.->) 'timestamp') IS DISTINCT FROM 'number'
		  OR (payload OPERATOR(pg_catalog.->>) 'timestamp') OPERATOR(pg_catalog.!~) '^[0-9]{1,12}$' THEN
		RETURN 'timestamp must be a whole number of seconds since 1970';
	ELSIF (payload OPERATOR(pg_catalog.->>) 'value') OPERATOR(pg_catalog.!~) '^[0-9]{1,15}$' THEN
		RETURN 'value must be a non-negative integer';
	ELSIF pg_catalog.jsonb_typeof(payload OPERATOR(pg_catalog.->) 'stripe_customer_id') IS DISTINCT FROM 'string'
		  AND payload OPERATOR(pg_catalog.->) 'stripe_customer_id' IS DISTINCT FROM 'null'::jsonb
		  AND payload ? 'stripe_customer_id' THEN
		RETURN 'stripe_customer_id must be a string';
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._meter_payload_problem(jsonb) FROM PUBLIC;

-- new: ipai.outbox_lease_meter_events
CREATE FUNCTION ipai.outbox_lease_meter_events(max_events integer DEFAULT 100,
											   lease interval DEFAULT '2 minutes',
											   aggregate_min integer DEFAULT 20,
											   aggregate_max integer DEFAULT 1000)
	RETURNS TABLE (identifier text, ids bigint[], org_id uuid, event_name text,
				   stripe_customer_id text, value bigint, "timestamp" bigint,
				   attempts integer, in_doubt boolean, given_up text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	now_ts timestamptz := pg_catalog.clock_timestamp();
	now_s bigint := pg_catalog.floor(pg_catalog.date_part('epoch', now_ts))::bigint;
	p record;
	taken integer;
BEGIN
	PERFORM ipai._outbox_check_lease(max_events, lease);
	IF aggregate_min IS NULL OR aggregate_min OPERATOR(pg_catalog.<) 2
	   OR aggregate_max IS NULL OR aggregate_max OPERATOR(pg_catalog.<) aggregate_min
	   OR aggregate_max OPERATOR(pg_catalog.>) 100000 THEN
		RAISE EXCEPTION 'need 2 <= aggregate_min <= aggregate_max <= 100000' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO p FROM ipai._outbox_policy();

	-- the rows of this lease, worked on in a few statements
	IF pg_catalog.to_regclass('pg_temp.ipai_meter_lease') IS NULL THEN
		CREATE TEMP TABLE ipai_meter_lease (
			org_id uuid, id bigint, batch text, problem text, park boolean, defer_until bigint,
			give_up boolean, in_doubt boolean, customer text, event_name text, val bigint,
			ts bigint, period timestamptz, own_identifier text
		) ON COMMIT DELETE ROWS;
	END IF;
	TRUNCATE pg_temp.ipai_meter_lease;

	-- groups leased before (a resend): whole groups only, up to max_events
	INSERT INTO pg_temp.ipai_meter_lease (org_id, id, batch, in_doubt, give_up)
	SELECT o.org_id, o.id, o.batch, o.in_doubt,
		   o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
		   OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false)
	  FROM ipai.outbox o
	  -- (in the order of the index outbox_batch, which holds only the
	  -- groups in flight: a large backlog of new rows is not scanned)
	  JOIN (SELECT DISTINCT d.org_id, d.batch FROM ipai.outbox d
			 WHERE d.batch IS NOT NULL AND d.sent_at IS NULL AND d.dead_at IS NULL
			   AND d.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
			   AND d.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
			   AND (d.claimed_at IS NULL
					OR d.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
			 ORDER BY d.org_id, d.batch
			 LIMIT max_events) b
		ON o.org_id OPERATOR(pg_catalog.=) b.org_id AND o.batch OPERATOR(pg_catalog.=) b.batch
	 WHERE o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
	   AND o.sent_at IS NULL AND o.dead_at IS NULL
	   FOR UPDATE OF o SKIP LOCKED;
	-- a group another sender holds in part is left to it
	IF FOUND THEN
		DELETE FROM pg_temp.ipai_meter_lease l
		 WHERE EXISTS (SELECT 1 FROM ipai.outbox o
						WHERE o.org_id OPERATOR(pg_catalog.=) l.org_id
						  AND o.batch OPERATOR(pg_catalog.=) l.batch
						  AND o.sent_at IS NULL AND o.dead_at IS NULL
						  AND NOT EXISTS (SELECT 1 FROM pg_temp.ipai_meter_lease k
										   WHERE k.org_id OPERATOR(pg_catalog.=) o.org_id
											 AND k.id OPERATOR(pg_catalog.=) o.id));
	END IF;
	SELECT pg_catalog.count(DISTINCT (l.org_id, l.batch)) INTO taken FROM pg_temp.ipai_meter_lease l;

	-- new rows, up to what the remaining groups may hold (at most 20,000 a
	-- lease, enough for every group when a few customers have a backlog,
	-- and for many small groups otherwise)
	IF taken OPERATOR(pg_catalog.<) max_events THEN
		INSERT INTO pg_temp.ipai_meter_lease (org_id, id, in_doubt, give_up, problem, customer,
											  event_name, val, ts, own_identifier)
		SELECT o.org_id, o.id, o.in_doubt,
			   o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
			   OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false),
			   chk.problem,
			   o.payload OPERATOR(pg_catalog.->>) 'stripe_customer_id',
			   o.payload OPERATOR(pg_catalog.->>) 'event_name',
			   CASE WHEN chk.problem IS NULL THEN (o.payload OPERATOR(pg_catalog.->>) 'value')::bigint END,
			   CASE WHEN chk.problem IS NULL THEN (o.payload OPERATOR(pg_catalog.->>) 'timestamp')::bigint END,
			   o.payload OPERATOR(pg_catalog.->>) 'identifier'
		  FROM ipai.outbox o
		 CROSS JOIN LATERAL (SELECT ipai._meter_payload_problem(o.payload) AS problem) chk
		 WHERE o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
		   AND o.sent_at IS NULL AND o.dead_at IS NULL AND o.batch IS NULL
		   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
		   AND (o.claimed_at IS NULL
				OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
		 ORDER BY o.next_attempt_at, o.id
		 LIMIT CASE WHEN aggregate_min OPERATOR(pg_catalog.>) 20000
					THEN max_events OPERATOR(pg_catalog.-) taken
					ELSE least((max_events OPERATOR(pg_catalog.-) taken)::bigint
							   OPERATOR(pg_catalog.*) aggregate_max, 20000) END
		   FOR UPDATE OF o SKIP LOCKED;

		UPDATE pg_temp.ipai_meter_lease l
		   SET park = l.problem IS NULL AND l.customer IS NULL,
			   problem = CASE WHEN l.problem IS NOT NULL THEN 'malformed payload: ' OPERATOR(pg_catalog.||) l.problem
							  WHEN l.ts OPERATOR(pg_catalog.<) (now_s OPERATOR(pg_catalog.-) 3024000) -- 35 days
							  THEN pg_catalog.format('the meter event of %s is older than the 35 days Stripe accepts',
													 pg_catalog.to_timestamp(l.ts))
						 END,
			   defer_until = CASE WHEN l.ts OPERATOR(pg_catalog.>) (now_s OPERATOR(pg_catalog.+) 240)
								  THEN l.ts OPERATOR(pg_catalog.-) 240 END,
			   -- the usage event's period, where the identifier is ours
			   -- (ipai._meter_identifier: ipai_<org>_<event id>)
			   period = CASE WHEN l.own_identifier OPERATOR(pg_catalog.~) '^ipai_[0-9a-f-]{36}_[0-9]{1,18}$'
								  AND pg_catalog.split_part(l.own_identifier, '_', 2) OPERATOR(pg_catalog.=) l.org_id::text
							 THEN (SELECT ev.period_start FROM ipai.usage_events ev
									WHERE ev.org_id OPERATOR(pg_catalog.=) l.org_id
									  AND ev.id OPERATOR(pg_catalog.=)
										  pg_catalog.split_part(l.own_identifier, '_', 3)::bigint) END
		 WHERE l.batch IS NULL;

		-- group what can be sent: the first groups by their oldest row
		WITH sendable AS (
			SELECT l.org_id, l.id, l.customer, l.event_name, l.period, l.own_identifier,
				   pg_catalog.count(*) OVER w AS n,
				   (pg_catalog.row_number() OVER (w ORDER BY l.id) OPERATOR(pg_catalog.-) 1)
					 OPERATOR(pg_catalog./) aggregate_max AS chunk
			  FROM pg_temp.ipai_meter_lease l
			 WHERE l.batch IS NULL AND NOT l.give_up AND l.problem IS NULL AND NOT l.park
			   AND l.defer_until IS NULL
			WINDOW w AS (PARTITION BY l.org_id, l.customer, l.event_name, l.period)
		), keyed AS (
			SELECT s.org_id, s.id,
				   CASE WHEN s.n OPERATOR(pg_catalog.>=) aggregate_min AND s.period IS NOT NULL
						THEN pg_catalog.format('ipai_b_%s_%s', s.org_id,
							pg_catalog.min(s.id) OVER (PARTITION BY s.org_id, s.customer, s.event_name, s.period, s.chunk))
						ELSE s.own_identifier END AS batch
			  FROM sendable s
		), firsts AS (
			SELECT k.org_id, k.id, k.batch,
				   pg_catalog.min(k.id) OVER (PARTITION BY k.org_id, k.batch) AS first_id
			  FROM keyed k
		), ranked AS (
			SELECT f.org_id, f.id, f.batch,
				   pg_catalog.dense_rank() OVER (ORDER BY f.first_id) AS g
			  FROM firsts f
		)
		UPDATE pg_temp.ipai_meter_lease l SET batch = r.batch
		  FROM ranked r
		 WHERE l.org_id OPERATOR(pg_catalog.=) r.org_id AND l.id OPERATOR(pg_catalog.=) r.id
		   AND r.g OPERATOR(pg_catalog.<=) (max_events OPERATOR(pg_catalog.-) taken);
	END IF;

	-- settle what cannot be sent; the rows given up are returned too, with
	-- the reason (given_up), for the sender's count
	RETURN QUERY
	WITH s AS (
	UPDATE ipai.outbox o
	   SET dead_at = CASE WHEN l.give_up OR l.problem IS NOT NULL THEN now_ts END,
		   last_error = CASE WHEN l.problem IS NOT NULL THEN l.problem
							 WHEN l.give_up THEN pg_catalog.format('gave up after %s attempts%s', o.attempts,
																	': ' OPERATOR(pg_catalog.||) o.last_error)
							 ELSE o.last_error END,
		   next_attempt_at = CASE WHEN l.park THEN 'infinity'
								  WHEN l.defer_until IS NOT NULL THEN pg_catalog.to_timestamp(l.defer_until)
								  ELSE o.next_attempt_at END,
		   claimed_at = NULL
	  FROM pg_temp.ipai_meter_lease l
	 WHERE o.org_id OPERATOR(pg_catalog.=) l.org_id AND o.id OPERATOR(pg_catalog.=) l.id
	   AND (l.give_up OR l.problem IS NOT NULL OR l.park OR l.defer_until IS NOT NULL)
	RETURNING o.id, o.org_id, o.payload, o.attempts, o.in_doubt, o.dead_at, o.last_error
	)
	SELECT s.payload OPERATOR(pg_catalog.->>) 'identifier', ARRAY[s.id], s.org_id, NULL::text, NULL::text,
		   NULL::bigint, NULL::bigint, s.attempts, s.in_doubt, s.last_error
	  FROM s WHERE s.dead_at IS NOT NULL;
	-- a group with a row past its attempts is dead whole
	RETURN QUERY
	WITH s AS (
	UPDATE ipai.outbox o
	   SET dead_at = now_ts,
		   last_error = pg_catalog.format('gave up after %s attempts%s', o.attempts,
										  ': ' OPERATOR(pg_catalog.||) o.last_error)
	  FROM (SELECT DISTINCT l.org_id, l.batch FROM pg_temp.ipai_meter_lease l
			 WHERE l.give_up AND l.batch IS NOT NULL) d
	 WHERE o.org_id OPERATOR(pg_catalog.=) d.org_id AND o.batch OPERATOR(pg_catalog.=) d.batch
	   AND o.sent_at IS NULL AND o.dead_at IS NULL
	RETURNING o.id, o.org_id, o.batch, o.attempts, o.in_doubt, o.last_error
	)
	SELECT s.batch, ARRAY[s.id], s.org_id, NULL::text, NULL::text, NULL::bigint, NULL::bigint,
		   s.attempts, s.in_doubt, s.last_error
	  FROM s;
	DELETE FROM pg_temp.ipai_meter_lease l WHERE l.batch IS NULL;
	DELETE FROM pg_temp.ipai_meter_lease l
	 WHERE (l.org_id, l.batch) IN (SELECT k.org_id, k.batch FROM pg_temp.ipai_meter_lease k WHERE k.give_up);

	-- lease the groups and return them
	RETURN QUERY
	WITH u AS (
		UPDATE ipai.outbox o
		   SET batch = l.batch,
			   claimed_at = now_ts,
			   attempts = o.attempts OPERATOR(pg_catalog.+) 1,
			   first_attempt_at = coalesce(o.first_attempt_at, now_ts),
			   in_doubt = true
		  FROM pg_temp.ipai_meter_lease l
		 WHERE o.org_id OPERATOR(pg_catalog.=) l.org_id AND o.id OPERATOR(pg_catalog.=) l.id
		RETURNING o.org_id, o.id, o.batch, o.payload, o.attempts, l.in_doubt
	)
	SELECT u.batch, pg_catalog.array_agg(u.id ORDER BY u.id), u.org_id,
		   pg_catalog.min(u.payload OPERATOR(pg_catalog.->>) 'event_name'),
		   pg_catalog.min(u.payload OPERATOR(pg_catalog.->>) 'stripe_customer_id'),
		   pg_catalog.sum((u.payload OPERATOR(pg_catalog.->>) 'value')::bigint)::bigint,
		   pg_catalog.max((u.payload OPERATOR(pg_catalog.->>) 'timestamp')::bigint),
		   pg_catalog.max(u.attempts), pg_catalog.bool_or(u.in_doubt), NULL::text
	  FROM u
	 GROUP BY u.org_id, u.batch
	 ORDER BY pg_catalog.min(u.id);
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_lease_meter_events(integer, interval, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION ipai.outbox_lease_meter_events(integer, interval, integer, integer) IS
	'Leases Stripe meter events to send, rows of one customer grouped at volume under a stable identifier; service_role';

-- new: ipai.outbox_mark_sent_many
CREATE FUNCTION ipai.outbox_mark_sent_many(ids bigint[]) RETURNS integer
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer;
BEGIN
	IF ids IS NULL THEN
		RAISE EXCEPTION 'ids must not be null' USING ERRCODE = '22023';
	END IF;
	UPDATE ipai.outbox o
	   SET sent_at = pg_catalog.clock_timestamp(),
		   dead_at = NULL,
		   in_doubt = false,
		   payload = CASE WHEN o.topic OPERATOR(pg_catalog.=) 'auth.invite'
						  THEN o.payload OPERATOR(pg_catalog.-) 'token'::text ELSE o.payload END
	 WHERE o.id OPERATOR(pg_catalog.=) ANY (ids) AND o.sent_at IS NULL;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_mark_sent_many(bigint[]) FROM PUBLIC;

-- new: ipai.outbox_mark_failed_many
CREATE FUNCTION ipai.outbox_mark_failed_many(ids bigint[], error text,
											 retry_after interval DEFAULT NULL,
											 permanent boolean DEFAULT false,
											 maybe_delivered boolean DEFAULT true)
	RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	now_ts timestamptz := pg_catalog.clock_timestamp();
	p record;
	r record;
	pause interval;
	verdict text;
BEGIN
	IF ids IS NULL OR pg_catalog.cardinality(ids) OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'ids must name at least one outbox row' USING ERRCODE = '22023';
	END IF;
	IF permanent IS NULL OR maybe_delivered IS NULL THEN
		RAISE EXCEPTION 'permanent and maybe_delivered must not be null' USING ERRCODE = '22023';
	END IF;
	IF retry_after OPERATOR(pg_catalog.<) interval '0' THEN
		RAISE EXCEPTION 'retry_after must not be negative' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO p FROM ipai._outbox_policy();
	SELECT pg_catalog.max(o.attempts) AS attempts, pg_catalog.min(o.first_attempt_at) AS first_at,
		   pg_catalog.count(*) AS n, pg_catalog.count(*) FILTER (WHERE o.sent_at IS NULL) AS unsent
	  INTO r
	  FROM ipai.outbox o WHERE o.id OPERATOR(pg_catalog.=) ANY (ids);
	IF r.n OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'outbox rows % do not exist', ids USING ERRCODE = '22023';
	END IF;
	IF r.unsent OPERATOR(pg_catalog.=) 0 THEN
		RETURN 'sent';
	END IF;

	pause := greatest(ipai._outbox_backoff(coalesce(r.attempts, 1)),
								coalesce(retry_after, interval '0'));
	IF permanent THEN
		verdict := 'dead';
	ELSIF coalesce(r.attempts, 0) OPERATOR(pg_catalog.>=) p.max_attempts
		  OR (now_ts OPERATOR(pg_catalog.+) pause)
			 OPERATOR(pg_catalog.>) (coalesce(r.first_at, now_ts) OPERATOR(pg_catalog.+) p.horizon) THEN
		verdict := 'dead';
		error := pg_catalog.format('gave up after %s attempts: %s', coalesce(r.attempts, 0), error);
	ELSE
		verdict := 'retry';
	END IF;

	UPDATE ipai.outbox o
	   SET last_error = pg_catalog.left(coalesce(error, 'failed'), 2000),
		   dead_at = CASE WHEN verdict OPERATOR(pg_catalog.=) 'dead' THEN now_ts END,
		   next_attempt_at = CASE WHEN verdict OPERATOR(pg_catalog.=) 'dead' THEN o.next_attempt_at
								  ELSE now_ts OPERATOR(pg_catalog.+) pause END,
		   claimed_at = NULL,
		   in_doubt = o.in_doubt AND maybe_delivered
	 WHERE o.id OPERATOR(pg_catalog.=) ANY (ids) AND o.sent_at IS NULL;
	RETURN verdict;
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_mark_failed_many(bigint[], text, interval, boolean, boolean) FROM PUBLIC;

-- new: ipai.outbox_mark_failed
CREATE FUNCTION ipai.outbox_mark_failed(id bigint, error text, retry_after interval DEFAULT NULL,
										permanent boolean DEFAULT false,
										maybe_delivered boolean DEFAULT true)
	RETURNS text
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF outbox_mark_failed.id IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = '22023';
	END IF;
	RETURN ipai.outbox_mark_failed_many(ARRAY[outbox_mark_failed.id], error, retry_after,
										permanent, maybe_delivered);
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_mark_failed(bigint, text, interval, boolean, boolean) FROM PUBLIC;
COMMENT ON FUNCTION ipai.outbox_mark_failed(bigint, text, interval, boolean, boolean) IS
	'Records a failed delivery: retry after backoff (or Retry-After), or dead; service_role';

-- new: ipai.outbox_retry
CREATE FUNCTION ipai.outbox_retry(id bigint) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	want bigint := outbox_retry.id;
	r record;
BEGIN
	IF want IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT o.org_id, o.topic, o.batch, o.dead_at, o.in_doubt, o.first_attempt_at INTO r
	  FROM ipai.outbox o WHERE o.id OPERATOR(pg_catalog.=) want;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'outbox row % does not exist', want USING ERRCODE = '22023';
	END IF;
	IF r.dead_at IS NULL THEN
		RETURN false;
	END IF;
	IF r.topic OPERATOR(pg_catalog.=) 'stripe.meter_event' AND r.in_doubt
	   AND r.first_attempt_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '24 hours') THEN
		RAISE WARNING 'outbox row % may have reached Stripe more than 24 hours ago', want
			USING DETAIL = 'Stripe deduplicates a meter event''s identifier for 24 hours; a resend now may bill it twice.',
				  HINT = 'Check the customer''s usage in Stripe before it is sent again.';
	END IF;
	UPDATE ipai.outbox o
	   SET dead_at = NULL, attempts = 0, first_attempt_at = NULL, claimed_at = NULL,
		   next_attempt_at = pg_catalog.now()
	 WHERE o.org_id OPERATOR(pg_catalog.=) r.org_id AND o.dead_at IS NOT NULL AND o.sent_at IS NULL
	   AND (o.id OPERATOR(pg_catalog.=) want
			OR (r.batch IS NOT NULL AND o.batch OPERATOR(pg_catalog.=) r.batch));
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_retry(bigint) FROM PUBLIC;
COMMENT ON FUNCTION ipai.outbox_retry(bigint) IS
	'Sends a dead outbox row again (its whole meter-event group); service_role';

-- new: ipai._outbox_notify
CREATE FUNCTION ipai._outbox_notify() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'ipai_outbox_notify';
REVOKE ALL ON FUNCTION ipai._outbox_notify() FROM PUBLIC;

-- new: ipai.outbox_next_due
CREATE FUNCTION ipai.outbox_next_due(lease interval DEFAULT '5 minutes') RETURNS timestamptz
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT pg_catalog.min(greatest(o.next_attempt_at,
										   o.claimed_at OPERATOR(pg_catalog.+) lease))
			  FROM ipai.outbox o
			 WHERE o.sent_at IS NULL AND o.dead_at IS NULL
			   AND o.next_attempt_at OPERATOR(pg_catalog.<) 'infinity');
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_next_due(interval) FROM PUBLIC;

-- changed: ipai._schema_target_version
CREATE OR REPLACE FUNCTION ipai._schema_target_version() RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 4 $$;

-- changed: ipai.install_schema
CREATE OR REPLACE FUNCTION ipai.install_schema(distributed boolean DEFAULT false) RETURNS text
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

	-- Supabase Realtime, where its publication exists (every call: the
	-- publication may appear after the first install)
	PERFORM ipai._realtime_publish();

	IF from_version OPERATOR(pg_catalog.=) 0 THEN
		RETURN pg_catalog.format('ipai schema installed at version %s', target);
	ELSIF from_version OPERATOR(pg_catalog.<) target THEN
		RETURN pg_catalog.format('ipai schema migrated from version %s to %s',
								 from_version, target);
	END IF;
	RETURN pg_catalog.format('ipai schema is up to date at version %s', target);
END
$$;

-- changed: ipai._schema_core
CREATE OR REPLACE FUNCTION ipai._schema_core(from_version integer) RETURNS void
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

-- changed: ipai.outbox_claim
CREATE OR REPLACE FUNCTION ipai.outbox_claim(topic text, max_rows integer DEFAULT 100,
								  claim_timeout interval DEFAULT '5 minutes')
	RETURNS TABLE (id bigint, org_id uuid, topic text, payload jsonb, created_at timestamptz)
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT l.out_id, l.out_org_id, l.out_topic, l.out_payload, l.out_created_at
			FROM ipai._outbox_lease($1, $2, $3) l WHERE l.out_given_up IS NULL $$;

-- changed: ipai.outbox_mark_sent
CREATE OR REPLACE FUNCTION ipai.outbox_mark_sent(id bigint) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	want bigint := outbox_mark_sent.id;
BEGIN
	IF want IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = '22023';
	END IF;
	IF ipai.outbox_mark_sent_many(ARRAY[want]) OPERATOR(pg_catalog.>) 0 THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT 1 FROM ipai.outbox o WHERE o.id OPERATOR(pg_catalog.=) want) THEN
		RETURN false;
	END IF;
	RAISE EXCEPTION 'outbox row % does not exist', want USING ERRCODE = '22023';
END
$$;

-- changed: ipai._grants_outbox
CREATE OR REPLACE FUNCTION ipai._grants_outbox() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.outbox_claim(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_lease(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_lease(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_check_lease(integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_policy() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_backoff(integer) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._meter_payload_problem(jsonb) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_lease_meter_events(integer, interval, integer, integer)
		TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_sent(bigint) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_sent_many(bigint[]) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_failed(bigint, text, interval, boolean, boolean)
		TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_failed_many(bigint[], text, interval, boolean, boolean)
		TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_retry(bigint) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_next_due(interval) TO service_role;
END
$$;

-- changed: ipai._usage_meter_fill_customers
CREATE OR REPLACE FUNCTION ipai._usage_meter_fill_customers(only_org uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer;
BEGIN
	-- parked rows (next_attempt_at infinity, see 35_outbox.sql) are due now
	UPDATE ipai.outbox o
	   SET payload = o.payload
					 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
						'stripe_customer_id', b.stripe_customer_id,
						'payload', (o.payload OPERATOR(pg_catalog.->) 'payload')
								   OPERATOR(pg_catalog.||)
								   pg_catalog.jsonb_build_object('stripe_customer_id', b.stripe_customer_id)),
		   next_attempt_at = least(o.next_attempt_at, pg_catalog.now())
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

-- changed: ipai.health
CREATE OR REPLACE FUNCTION ipai.health()
	RETURNS TABLE (name text, status text, detail text)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n bigint;
	m bigint;
	oldest timestamptz;
	jobs text[];
	want text[] := ARRAY['ipai-recover-stuck-runs', 'ipai-refresh-org-usage',
						 'ipai-run-due-publications'];
	sched record;
	rt record;
	ob record;
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied for function health'
			USING ERRCODE = '42501', HINT = 'Run it as service_role or a superuser.';
	END IF;

	-- the schema matches the code
	SELECT pg_catalog.max(v.version) INTO n FROM ipai.schema_version v;
	name := 'schema';
	IF n IS NULL OR n OPERATOR(pg_catalog.<) ipai._schema_target_version() THEN
		status := 'critical';
		detail := pg_catalog.format('schema version %s, the installed code needs %s: run SELECT ipai.install_schema()',
									coalesce(n::text, 'none'), ipai._schema_target_version());
	ELSE
		status := 'ok';
		detail := pg_catalog.format('schema version %s, extension %s', n,
			(SELECT e.extversion FROM pg_catalog.pg_extension e
			  WHERE e.extname OPERATOR(pg_catalog.=) 'ipai_saas'));
	END IF;
	RETURN NEXT;

	-- pg_cron jobs (pg_cron lives in one database: cron.database_name)
	name := 'pg_cron jobs';
	IF pg_catalog.to_regclass('cron.job') IS NULL THEN
		status := 'warning';
		detail := 'pg_cron is not installed in this database: no periodic usage repair, and scheduled publishing depends on the worker alone';
	ELSE
		EXECUTE 'SELECT pg_catalog.array_agg(j.jobname ORDER BY j.jobname) FROM cron.job j
				  WHERE j.jobname OPERATOR(pg_catalog.=) ANY ($1) AND j.active'
			INTO jobs USING want;
		IF jobs IS NOT DISTINCT FROM want THEN
			status := 'ok';
			detail := 'ipai-refresh-org-usage, ipai-run-due-publications and ipai-recover-stuck-runs are scheduled';
		ELSE
			status := 'warning';
			detail := pg_catalog.format('missing or inactive: %s; run SELECT ipai.schedule_jobs()',
				pg_catalog.array_to_string(ARRAY(SELECT j FROM pg_catalog.unnest(want) j
												  WHERE NOT (j OPERATOR(pg_catalog.=) ANY (coalesce(jobs, '{}')))), ', '));
		END IF;
	END IF;
	RETURN NEXT;

	-- the scheduling worker
	SELECT * INTO sched FROM ipai.scheduler_status();
	name := 'scheduler worker';
	IF NOT sched.preloaded THEN
		status := 'warning';
		detail := 'ipai_saas is not in shared_preload_libraries: no worker, scheduled publishing runs only when pg_cron or a caller runs ipai.run_due_publications()';
	ELSIF NOT sched.enabled THEN
		status := 'warning';
		detail := 'ipai.scheduler_enabled is off';
	ELSIF NOT sched.serves_this_database THEN
		status := 'ok';
		detail := pg_catalog.format('the worker serves database %s, not this one', sched.database);
	ELSIF sched.worker_pid IS NULL
		  OR sched.heartbeat_at IS NULL
		  OR sched.heartbeat_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '3 minutes') THEN
		status := 'critical';
		detail := pg_catalog.format('the worker is not running (state %s, last heartbeat %s); see the server log',
									coalesce(sched.state, 'unknown'), coalesce(sched.heartbeat_at::text, 'never'));
	ELSE
		status := 'ok';
		detail := pg_catalog.format('alive (pid %s, state %s); %s executed, %s failed; last lateness %s ms, largest %s ms',
			sched.worker_pid, sched.state, sched.executed, sched.failed,
			coalesce(pg_catalog.round(extract(epoch FROM sched.last_lateness) OPERATOR(pg_catalog.*) 1000, 1)::text, '-'),
			coalesce(pg_catalog.round(extract(epoch FROM sched.max_lateness) OPERATOR(pg_catalog.*) 1000, 1)::text, '-'));
	END IF;
	RETURN NEXT;

	-- schedules: overdue, stuck, failed
	SELECT pg_catalog.count(*), pg_catalog.min(s.run_at) INTO n, oldest FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'pending'
	   AND s.run_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '2 minutes');
	name := 'overdue schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'critical';
		detail := pg_catalog.format('%s pending schedules are more than 2 minutes late (oldest due %s): nothing is executing them; check the worker and pg_cron, or call ipai.run_due_publications()',
									n, oldest);
	ELSE
		status := 'ok';
		detail := 'no schedule is more than 2 minutes late';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'running'
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
						WHERE a.pid OPERATOR(pg_catalog.=) s.claimed_by_pid
						  AND a.backend_start OPERATOR(pg_catalog.=) s.claimed_backend_start);
	name := 'stuck schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s runs were claimed by backends that are gone: run SELECT ipai.recover_stuck_runs() (pg_cron does every 2 minutes)', n);
	ELSE
		status := 'ok';
		detail := 'no run is held by a backend that is gone';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.cms_schedule s
	 WHERE s.status OPERATOR(pg_catalog.=) 'failed'
	   AND s.executed_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day');
	name := 'failed schedules';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s schedules failed in the last day: see ipai.cms_schedule.error (a page no longer approved, deleted, or its scheduler no longer an admin)', n);
	ELSE
		status := 'ok';
		detail := 'no schedule failed in the last day';
	END IF;
	RETURN NEXT;

	-- the webhook inbox
	SELECT pg_catalog.count(*), pg_catalog.min(w.received_at) INTO n, oldest FROM ipai.webhook_events w
	 WHERE w.status OPERATOR(pg_catalog.=) 'deferred';
	name := 'deferred webhooks';
	IF n OPERATOR(pg_catalog.>) 0
	   AND oldest OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour') THEN
		status := 'warning';
		detail := pg_catalog.format('%s events wait for their organization, the oldest since %s: a checkout without metadata.org_id or client_reference_id? see ipai.webhook_events', n, oldest);
	ELSE
		status := 'ok';
		detail := pg_catalog.format('%s events wait for their organization%s', n,
			CASE WHEN n OPERATOR(pg_catalog.>) 0 THEN pg_catalog.format(', the oldest since %s', oldest) ELSE '' END);
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) INTO n FROM ipai.webhook_events w
	 WHERE w.status OPERATOR(pg_catalog.=) 'failed';
	name := 'failed webhooks';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s events failed to apply: see ipai.webhook_events.error', n);
	ELSE
		status := 'ok';
		detail := 'no event failed to apply';
	END IF;
	RETURN NEXT;

	-- the outbox: rows due that nobody sends, rows given up
	SELECT pg_catalog.count(*) FILTER (WHERE d.due) AS due,
		   pg_catalog.min(d.due_since) FILTER (WHERE d.due) AS oldest_due,
		   pg_catalog.count(*) FILTER (WHERE d.leased) AS leased,
		   pg_catalog.count(*) FILTER (WHERE NOT d.due AND NOT d.leased AND NOT d.parked) AS waiting,
		   pg_catalog.count(*) FILTER (WHERE d.parked) AS parked
	  INTO ob
	  FROM (SELECT o.next_attempt_at OPERATOR(pg_catalog.=) 'infinity' AS parked,
				   coalesce(o.claimed_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '5 minutes'),
							false) AS leased,
				   o.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()
				   AND (o.claimed_at IS NULL
						OR o.claimed_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '5 minutes')) AS due,
				   greatest(o.next_attempt_at, o.claimed_at OPERATOR(pg_catalog.+) interval '5 minutes') AS due_since
			  FROM ipai.outbox o WHERE o.sent_at IS NULL AND o.dead_at IS NULL) d;
	name := 'outbox backlog';
	detail := pg_catalog.format('%s rows due%s, %s leased to a sender, %s waiting to retry, %s parked until their organization has a Stripe customer',
		ob.due,
		CASE WHEN ob.due OPERATOR(pg_catalog.>) 0
			 THEN pg_catalog.format(' (the oldest due since %s)', ob.oldest_due) ELSE '' END,
		ob.leased, ob.waiting, ob.parked);
	IF ob.due OPERATOR(pg_catalog.>) 0
	   AND ob.oldest_due OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '15 minutes') THEN
		status := 'warning';
		detail := detail OPERATOR(pg_catalog.||) ': is the sender (outbox-sender) running?';
	ELSE
		status := 'ok';
	END IF;
	RETURN NEXT;

	SELECT pg_catalog.count(*) AS dead,
		   pg_catalog.count(*) FILTER (WHERE o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event') AS dead_meter,
		   pg_catalog.max(o.dead_at) AS newest
	  INTO ob
	  FROM ipai.outbox o WHERE o.dead_at IS NOT NULL;
	name := 'outbox dead';
	IF ob.dead OPERATOR(pg_catalog.=) 0 THEN
		status := 'ok';
		detail := 'no row was given up';
	ELSE
		status := CASE WHEN ob.dead_meter OPERATOR(pg_catalog.>) 0 THEN 'critical' ELSE 'warning' END;
		detail := pg_catalog.format('%s rows given up (%s of them Stripe meter events: usage not billed), the newest at %s: read ipai.outbox.last_error, fix the cause, then SELECT ipai.outbox_retry(id) (or DELETE the row to give it up for good)',
									ob.dead, ob.dead_meter, ob.newest);
	END IF;
	RETURN NEXT;

	-- usage counters against the events they count
	SELECT pg_catalog.count(*) INTO n FROM ipai._usage_counters_to_repair() d WHERE d.drifted;
	name := 'usage counters';
	IF n OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('%s counters differ from their events: run SELECT ipai.refresh_org_usage() (pg_cron does every 5 minutes)', n);
	ELSE
		status := 'ok';
		detail := 'every counter equals its events';
	END IF;
	RETURN NEXT;

	-- Supabase Realtime: what the supabase_realtime publication carries
	SELECT r.published, r.missing INTO rt FROM ipai._realtime_status() r;
	name := 'realtime';
	IF rt.published IS NULL THEN
		status := 'ok';
		detail := 'no supabase_realtime publication in this database (Supabase Realtime not in use): nothing to publish';
	ELSIF pg_catalog.cardinality(rt.missing) OPERATOR(pg_catalog.>) 0 THEN
		status := 'warning';
		detail := pg_catalog.format('supabase_realtime lacks %s: run SELECT ipai.install_schema()',
									pg_catalog.array_to_string(rt.missing, ', '));
	ELSE
		status := 'ok';
		detail := pg_catalog.format('published to supabase_realtime: %s',
									pg_catalog.array_to_string(rt.published, ', '));
	END IF;
	RETURN NEXT;
END
$$;

-- changed: ipai._grants_health
CREATE OR REPLACE FUNCTION ipai._grants_health() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.health() TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.realtime_tables() TO service_role;
END
$$;

-- removed: the claim is ipai._outbox_lease now
DROP FUNCTION ipai._outbox_claim(text, integer, interval);



-- Metering at the physical limit (issue 16): a fast path without SPI for
-- check, consume and record (ipai._usage_fast_path() says whether it
-- runs); events indexed by period (schema version 4: usage_events_period);
-- subscription changes rebase and back-fill only what changed, decided in
-- C (ipai._usage_subscription_changed), in time that does not grow with
-- the usage already accounted for.

-- new: ipai._usage_fast_path
CREATE FUNCTION ipai._usage_fast_path() RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_usage_fast_path_status'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_fast_path() FROM PUBLIC;

-- new: ipai._usage_cache_signals
CREATE FUNCTION ipai._usage_cache_signals() RETURNS bigint
	AS 'MODULE_PATHNAME', 'ipai_usage_cache_signals'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_cache_signals() FROM PUBLIC;

-- new: ipai._usage_subscription_changed
CREATE FUNCTION ipai._usage_subscription_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_usage_subscription_changed'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._usage_subscription_changed() FROM PUBLIC;

-- new: ipai._usage_event_periods
CREATE FUNCTION ipai._usage_event_periods(org_id uuid, before timestamptz)
	RETURNS SETOF timestamptz
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	ROWS 12
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p timestamptz;
BEGIN
	SELECT pg_catalog.min(ev.period_start) INTO p
	  FROM ipai.usage_events ev WHERE ev.org_id OPERATOR(pg_catalog.=) $1;
	WHILE p IS NOT NULL AND p OPERATOR(pg_catalog.<) $2 LOOP
		RETURN NEXT p;
		SELECT pg_catalog.min(ev.period_start) INTO p
		  FROM ipai.usage_events ev
		 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
		   AND ev.period_start OPERATOR(pg_catalog.>) p;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_event_periods(uuid, timestamptz) FROM PUBLIC;

-- new: ipai._usage_window_carried
CREATE FUNCTION ipai._usage_window_carried(org_id uuid, feature text, period_start timestamptz,
										   period_end timestamptz)
	RETURNS bigint
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p timestamptz;
	total bigint := 0;
	part bigint;
BEGIN
	FOR p IN SELECT q FROM ipai._usage_event_periods($1, COALESCE($4, 'infinity')) q LOOP
		CONTINUE WHEN p OPERATOR(pg_catalog.=) $3;
		SELECT COALESCE(pg_catalog.sum(ev.quantity), 0)::bigint INTO part
		  FROM ipai.usage_events ev
		 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
		   AND ev.period_start OPERATOR(pg_catalog.=) p
		   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
		   AND ev.occurred_at OPERATOR(pg_catalog.<) COALESCE($4, 'infinity'::timestamptz)
		   AND ev.feature OPERATOR(pg_catalog.=) $2;
		total := total OPERATOR(pg_catalog.+) part;
	END LOOP;
	RETURN total;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_window_carried(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- changed: ipai._usage_window_sums
CREATE OR REPLACE FUNCTION ipai._usage_window_sums(org_id uuid, feature text, period_start timestamptz,
										period_end timestamptz,
										OUT own bigint, OUT carried bigint)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	SELECT COALESCE(pg_catalog.sum(ev.quantity), 0)::bigint INTO own
	  FROM ipai.usage_events ev
	 WHERE ev.org_id OPERATOR(pg_catalog.=) $1
	   AND ev.period_start OPERATOR(pg_catalog.=) $3
	   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
	   AND ev.occurred_at OPERATOR(pg_catalog.<) COALESCE($4, 'infinity'::timestamptz)
	   AND ev.feature OPERATOR(pg_catalog.=) $2;
	carried := ipai._usage_window_carried($1, $2, $3, $4);
END
$$;

-- changed: ipai._usage_counter_lock
CREATE OR REPLACE FUNCTION ipai._usage_counter_lock(org_id uuid, feature text, period_start timestamptz,
										 period_end timestamptz, at timestamptz)
	RETURNS TABLE (used bigint, held bigint)
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	c record;
	carry bigint := 0;
BEGIN
	SELECT u.used, u.held, u.hold_expires_at INTO c
	  FROM ipai.usage_counters u
	 WHERE u.org_id OPERATOR(pg_catalog.=) $1
	   AND u.feature OPERATOR(pg_catalog.=) $2
	   AND u.period_start OPERATOR(pg_catalog.=) $3
	   FOR UPDATE;
	IF NOT FOUND THEN
		IF $3 OPERATOR(pg_catalog.<>) '-infinity'::timestamptz THEN
			carry := ipai._usage_window_carried($1, $2, $3, $4);
		END IF;
		INSERT INTO ipai.usage_counters AS u
			   (org_id, feature, period_start, period_end, used, carried, updated_at)
		VALUES ($1, $2, $3, $4, carry, carry, $5)
		ON CONFLICT ON CONSTRAINT usage_counters_pkey DO NOTHING;
		SELECT u.used, u.held, u.hold_expires_at INTO c
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) $1
		   AND u.feature OPERATOR(pg_catalog.=) $2
		   AND u.period_start OPERATOR(pg_catalog.=) $3
		   FOR UPDATE;
	END IF;
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

-- changed: ipai._usage_counters_rebase
CREATE OR REPLACE FUNCTION ipai._usage_counters_rebase(org_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	n integer := 0;
BEGIN
	PERFORM 1 FROM ipai.usage_counters c
	  WHERE c.org_id OPERATOR(pg_catalog.=) $1
		AND c.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		AND (c.period_end IS NULL OR c.period_end OPERATOR(pg_catalog.>) pg_catalog.now())
	  ORDER BY c.feature, c.period_start
		FOR UPDATE;
	FOR r IN
		SELECT c.feature, c.period_start, c.period_end, c.carried,
			   ipai._usage_window_carried(c.org_id, c.feature, c.period_start,
										  c.period_end) AS carry
		  FROM ipai.usage_counters c
		 WHERE c.org_id OPERATOR(pg_catalog.=) $1
		   AND c.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		   AND (c.period_end IS NULL OR c.period_end OPERATOR(pg_catalog.>) pg_catalog.now())
		   AND EXISTS (SELECT 1 FROM ipai.plan_entitlements e
						WHERE e.feature OPERATOR(pg_catalog.=) c.feature
						  AND e.counted_by OPERATOR(pg_catalog.=) 'usage_events')
		 ORDER BY c.feature, c.period_start
	LOOP
		CONTINUE WHEN r.carried OPERATOR(pg_catalog.=) r.carry;
		UPDATE ipai.usage_counters c
		   SET used = (c.used OPERATOR(pg_catalog.-) c.carried) OPERATOR(pg_catalog.+) r.carry,
			   carried = r.carry,
			   updated_at = pg_catalog.now()
		 WHERE c.org_id OPERATOR(pg_catalog.=) $1
		   AND c.feature OPERATOR(pg_catalog.=) r.feature
		   AND c.period_start OPERATOR(pg_catalog.=) r.period_start;
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;

-- changed: ipai._usage_meter_backfill
CREATE OR REPLACE FUNCTION ipai._usage_meter_backfill(for_org uuid, for_plan text,
										   from_at timestamptz, until_at timestamptz)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
	SELECT ev.org_id, 'stripe.meter_event',
		   ipai._meter_event_payload(ev.org_id, ev.id, e.stripe_meter_event_name,
									 b.stripe_customer_id, ev.quantity, ev.occurred_at),
		   ipai._meter_identifier(ev.org_id, ev.id)
	  FROM ipai._usage_event_periods($1, $4) p
	  JOIN ipai.usage_events ev
		ON ev.org_id OPERATOR(pg_catalog.=) $1
	   AND ev.period_start OPERATOR(pg_catalog.=) p
	   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
	   AND ev.occurred_at OPERATOR(pg_catalog.<) $4
	   AND NOT ev.metered
	  JOIN ipai.plan_entitlements e
		ON e.plan_id OPERATOR(pg_catalog.=) $2
	   AND e.feature OPERATOR(pg_catalog.=) ev.feature
	   AND e.metered
	  LEFT JOIN ipai.billing_customers b ON b.org_id OPERATOR(pg_catalog.=) $1
	 ORDER BY ev.id
	ON CONFLICT (org_id, topic, dedupe_key) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- new: ipai._usage_subscription_moved
CREATE FUNCTION ipai._usage_subscription_moved(old_org uuid, old_status text, old_plan text,
											   old_start timestamptz, old_end timestamptz,
											   new_org uuid, new_status text, new_plan text,
											   new_start timestamptz, new_end timestamptz)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	old_from timestamptz;
	old_to timestamptz;
	new_from timestamptz;
	new_to timestamptz;
BEGIN
	-- the windows granted before and after (NULL: none)
	IF ipai.subscription_grants_plan(old_status) AND old_start IS NOT NULL
	   AND old_end OPERATOR(pg_catalog.>) old_start THEN
		old_from := old_start;
		old_to := old_end;
	END IF;
	IF ipai.subscription_grants_plan(new_status) AND new_start IS NOT NULL
	   AND new_end OPERATOR(pg_catalog.>) new_start THEN
		new_from := new_start;
		new_to := new_end;
	END IF;

	IF old_org IS DISTINCT FROM new_org THEN
		-- moved to another organization: both start over
		IF old_org IS NOT NULL THEN
			PERFORM ipai._usage_counters_rebase(old_org);
		END IF;
		IF new_org IS NOT NULL THEN
			PERFORM ipai._usage_counters_rebase(new_org);
			IF new_from IS NOT NULL AND new_plan IS NOT NULL THEN
				PERFORM ipai._usage_meter_backfill(new_org, new_plan, new_from, new_to);
			END IF;
		END IF;
		RETURN;
	END IF;
	IF new_org IS NULL THEN
		RETURN;
	END IF;
	IF old_from IS DISTINCT FROM new_from OR old_to IS DISTINCT FROM new_to THEN
		PERFORM ipai._usage_counters_rebase(new_org);
	END IF;
	IF new_from IS NOT NULL AND new_plan IS NOT NULL THEN
		IF old_from IS NULL OR old_plan IS DISTINCT FROM new_plan THEN
			PERFORM ipai._usage_meter_backfill(new_org, new_plan, new_from, new_to);
		ELSE
			IF new_from OPERATOR(pg_catalog.<) old_from THEN
				PERFORM ipai._usage_meter_backfill(new_org, new_plan, new_from,
												   LEAST(new_to, old_from));
			END IF;
			IF new_to OPERATOR(pg_catalog.>) old_to THEN
				PERFORM ipai._usage_meter_backfill(new_org, new_plan,
												   GREATEST(new_from, old_to), new_to);
			END IF;
		END IF;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_subscription_moved(uuid, text, text, timestamptz, timestamptz,
													  uuid, text, text, timestamptz, timestamptz)
	FROM PUBLIC;

-- changed: ipai._usage_periods_changed
CREATE OR REPLACE FUNCTION ipai._usage_periods_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	-- (on Citus the trigger fires on a shard: organizations_<shard id>)
	IF TG_TABLE_NAME OPERATOR(pg_catalog.~) '^organizations(_[0-9]+)?$' THEN
		PERFORM ipai._usage_counters_rebase(NEW.id);
	ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		PERFORM ipai._usage_subscription_moved(OLD.org_id, OLD.status, OLD.plan_id,
											   OLD.current_period_start, OLD.current_period_end,
											   NEW.org_id, NEW.status, NEW.plan_id,
											   NEW.current_period_start, NEW.current_period_end);
	ELSIF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
		PERFORM ipai._usage_subscription_moved(NULL, NULL, NULL, NULL, NULL,
											   NEW.org_id, NEW.status, NEW.plan_id,
											   NEW.current_period_start, NEW.current_period_end);
	ELSE
		PERFORM ipai._usage_subscription_moved(OLD.org_id, OLD.status, OLD.plan_id,
											   OLD.current_period_start, OLD.current_period_end,
											   NULL, NULL, NULL, NULL, NULL);
	END IF;
	RETURN NULL;
END
$$;

-- changed: ipai.preview_invoice
CREATE OR REPLACE FUNCTION ipai.preview_invoice(org_id uuid,
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
		  FROM ipai._usage_event_periods($1, p.period_end) ep
		  JOIN ipai.usage_events ev
			ON ev.org_id OPERATOR(pg_catalog.=) $1
		   AND ev.period_start OPERATOR(pg_catalog.=) ep
		   AND ev.occurred_at OPERATOR(pg_catalog.>=) p.period_start
		   AND ev.occurred_at OPERATOR(pg_catalog.<) p.period_end
		 WHERE ev.feature OPERATOR(pg_catalog.=) f.feature
		   AND (ev.metered
				OR EXISTS (SELECT 1 FROM ipai.outbox o
							WHERE o.org_id OPERATOR(pg_catalog.=) ev.org_id
							  AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
							  AND o.dedupe_key OPERATOR(pg_catalog.=)
								  ipai._meter_identifier(ev.org_id, ev.id)));
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

-- changed: ipai._schema_metering
CREATE OR REPLACE FUNCTION ipai._schema_metering(from_version integer) RETURNS void
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
	IF from_version < 3 THEN
		-- A counter counts the events inside its window, whichever period
		-- recorded them (usage periods move when the time zone or the
		-- subscription changes): carried is the part recorded in other
		-- periods, found through usage_events_window.
		ALTER TABLE ipai.usage_counters ADD COLUMN carried bigint NOT NULL DEFAULT 0;
		CREATE INDEX usage_events_window ON ipai.usage_events (org_id, feature, occurred_at);
		CREATE TRIGGER organizations_usage_periods
			AFTER UPDATE OF timezone, plan_id ON ipai.organizations
			FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id)
			EXECUTE FUNCTION ipai._usage_periods_changed();
		CREATE TRIGGER subscriptions_usage_periods
			AFTER INSERT OR DELETE ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_periods_changed();
		CREATE TRIGGER subscriptions_usage_periods_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id
							   OR OLD.status IS DISTINCT FROM NEW.status
							   OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
							   OR OLD.current_period_start IS DISTINCT FROM NEW.current_period_start
							   OR OLD.current_period_end IS DISTINCT FROM NEW.current_period_end)
			EXECUTE FUNCTION ipai._usage_periods_changed();
	END IF;
	IF from_version < 4 THEN
		-- The events' indexes are what a consume pays for most: two instead
		-- of three.  usage_events_metered served no query.  Windows are read
		-- period by period, so that what other periods carry into a counter
		-- is found without reading the counter's own events (see
		-- ipai._usage_window_carried): usage_events_period replaces
		-- usage_events_window (org_id, feature, occurred_at).
		DROP INDEX ipai.usage_events_metered;
		CREATE INDEX usage_events_period ON ipai.usage_events (org_id, period_start, occurred_at);
		DROP INDEX ipai.usage_events_window;
		-- Usage periods depend on the time zone and on the subscriptions,
		-- not on the plan; and a subscription moves them only when what it
		-- grants changes, not when it goes between two statuses that grant
		-- the plan (active and past_due while Stripe retries a payment).
		-- The caches keep the same things, so the same rule invalidates
		-- them.  Decided in C (ipai._usage_subscription_changed): a WHEN
		-- clause is parsed and planned anew for every statement.
		DROP TRIGGER organizations_usage_periods ON ipai.organizations;
		CREATE TRIGGER organizations_usage_periods
			AFTER UPDATE OF timezone ON ipai.organizations
			FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
			EXECUTE FUNCTION ipai._usage_periods_changed();
		DROP TRIGGER subscriptions_usage_periods_update ON ipai.subscriptions;
		CREATE TRIGGER subscriptions_usage_periods_update
			AFTER UPDATE OF org_id, status, plan_id, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_subscription_changed('periods');
		DROP TRIGGER subscriptions_usage_cache_update ON ipai.subscriptions;
		CREATE TRIGGER subscriptions_usage_cache_update
			AFTER UPDATE OF org_id, status, current_period_start, current_period_end
			ON ipai.subscriptions
			FOR EACH ROW EXECUTE FUNCTION ipai._usage_subscription_changed('cache');
		ALTER TABLE ipai.subscriptions ENABLE ALWAYS TRIGGER subscriptions_usage_cache_update;
	END IF;
END
$$;
