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
--     reports the backlog due and the dead rows;
--   * Citus: install_schema(distributed => true) distributes every table
--     (ipai._schema_distribute, ipai._citus_*), ipai.is_distributed(); the
--     grants of every area through ipai._run_grants(); statements Citus can
--     route (create_organization, _cms_pages_usage, _audit);
--   * metering at the physical limit: a fast path without SPI for check,
--     consume and record (ipai._usage_fast_path() says whether it runs);
--     events indexed by period (schema version 4: usage_events_period);
--     subscription changes rebase and back-fill only what changed, decided
--     in C (ipai._usage_subscription_changed), in time that does not grow
--     with the usage already accounted for.
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
	orgs uuid[] := '{NULL}';
	one_org uuid;
	wanted integer := max_rows;
	n integer;
BEGIN
	IF want_topic IS NULL THEN
		RAISE EXCEPTION 'topic must not be null' USING ERRCODE = '22023';
	END IF;
	PERFORM ipai._outbox_check_lease(max_rows, lease);
	SELECT * INTO p FROM ipai._outbox_policy();
	-- On Citus a locking read names one organization (one shard): the
	-- organizations with due rows first, earliest first, then one lease each
	IF ipai.is_distributed() THEN
		SELECT pg_catalog.array_agg(d.org_id ORDER BY d.first_due) INTO orgs
		  FROM (SELECT o.org_id, pg_catalog.min(o.next_attempt_at) AS first_due
				  FROM ipai.outbox o
				 WHERE o.topic OPERATOR(pg_catalog.=) want_topic
				   AND o.sent_at IS NULL AND o.dead_at IS NULL
				   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
				   AND (o.claimed_at IS NULL
						OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
				 GROUP BY o.org_id) d;
	END IF;
	FOREACH one_org IN ARRAY coalesce(orgs, '{}') LOOP
		RETURN QUERY
		WITH c AS (
			SELECT o.org_id, o.id, o.in_doubt,
				   (o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
					OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false)) AS give_up,
				   (o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
					AND pg_catalog.jsonb_typeof(o.payload OPERATOR(pg_catalog.->) 'stripe_customer_id')
						IS DISTINCT FROM 'string') AS park,
				   -- (worded here: Citus takes no stable function in an UPDATE's CASE)
				   pg_catalog.format('gave up after %s attempts%s', o.attempts,
									 ': ' OPERATOR(pg_catalog.||) o.last_error) AS give_up_error
			  FROM ipai.outbox o
			 WHERE (one_org IS NULL OR o.org_id OPERATOR(pg_catalog.=) one_org)
			   AND o.topic OPERATOR(pg_catalog.=) want_topic
			   AND o.sent_at IS NULL AND o.dead_at IS NULL
			   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
			   AND (o.claimed_at IS NULL
					OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
			 ORDER BY o.next_attempt_at, o.id
			 LIMIT wanted
			 FOR UPDATE SKIP LOCKED
		), u AS (
			UPDATE ipai.outbox o
			   SET dead_at = CASE WHEN c.give_up THEN now_ts END,
				   last_error = CASE WHEN c.give_up THEN c.give_up_error ELSE o.last_error END,
				   next_attempt_at = CASE WHEN c.park THEN 'infinity' ELSE o.next_attempt_at END,
				   claimed_at = CASE WHEN c.give_up OR c.park THEN NULL ELSE now_ts END,
				   attempts = CASE WHEN c.give_up OR c.park THEN o.attempts
								   ELSE o.attempts OPERATOR(pg_catalog.+) 1 END,
				   first_attempt_at = CASE WHEN c.give_up OR c.park THEN o.first_attempt_at
										   ELSE coalesce(o.first_attempt_at, now_ts) END,
				   in_doubt = CASE WHEN c.give_up OR c.park THEN o.in_doubt ELSE true END
			  FROM c
			 WHERE o.org_id OPERATOR(pg_catalog.=) c.org_id AND o.id OPERATOR(pg_catalog.=) c.id
			   AND (one_org IS NULL OR o.org_id OPERATOR(pg_catalog.=) one_org)
			RETURNING o.id, o.org_id, o.topic, o.payload, o.created_at, o.attempts, c.in_doubt,
					  c.park, o.dead_at, o.last_error
		)
		SELECT u.id, u.org_id, u.topic, u.payload, u.created_at, u.attempts, u.in_doubt,
			   CASE WHEN u.dead_at IS NOT NULL THEN u.last_error END
		  FROM u WHERE NOT u.park
		 ORDER BY u.id;
		GET DIAGNOSTICS n = ROW_COUNT;
		wanted := wanted OPERATOR(pg_catalog.-) n;
		EXIT WHEN wanted OPERATOR(pg_catalog.<=) 0;
	END LOOP;
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
	taken integer := 0;
	orgs uuid[] := '{NULL}';
	one_org uuid;
	wanted bigint;
	n integer;
	lease_orgs uuid[];
	lease_batches text[];
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
			ts bigint, period timestamptz, own_identifier text, give_up_error text
		) ON COMMIT DELETE ROWS;
	END IF;
	TRUNCATE pg_temp.ipai_meter_lease;

	-- On Citus a locking read names one organization (one shard): the
	-- organizations with due rows first, earliest first, then the reads
	-- below once for each
	IF ipai.is_distributed() THEN
		SELECT pg_catalog.array_agg(d.org_id ORDER BY d.first_due) INTO orgs
		  FROM (SELECT o.org_id, pg_catalog.min(o.next_attempt_at) AS first_due
				  FROM ipai.outbox o
				 WHERE o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
				   AND o.sent_at IS NULL AND o.dead_at IS NULL
				   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
				   AND (o.claimed_at IS NULL
						OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
				 GROUP BY o.org_id) d;
		orgs := coalesce(orgs, '{}');
	END IF;

	-- groups leased before (a resend): whole groups only, up to max_events
	FOREACH one_org IN ARRAY orgs LOOP
		INSERT INTO pg_temp.ipai_meter_lease (org_id, id, batch, in_doubt, give_up, give_up_error)
		SELECT o.org_id, o.id, o.batch, o.in_doubt,
			   o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
			   OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false),
			   pg_catalog.format('gave up after %s attempts%s', o.attempts,
								 ': ' OPERATOR(pg_catalog.||) o.last_error)
		  FROM ipai.outbox o
		  -- (in the order of the index outbox_batch, which holds only the
		  -- groups in flight: a large backlog of new rows is not scanned)
		  JOIN (SELECT DISTINCT d.org_id, d.batch FROM ipai.outbox d
				 WHERE (one_org IS NULL OR d.org_id OPERATOR(pg_catalog.=) one_org)
				   AND d.batch IS NOT NULL AND d.sent_at IS NULL AND d.dead_at IS NULL
				   AND d.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
				   AND d.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
				   AND (d.claimed_at IS NULL
						OR d.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
				 ORDER BY d.org_id, d.batch
				 LIMIT max_events OPERATOR(pg_catalog.-) taken) b
			ON o.org_id OPERATOR(pg_catalog.=) b.org_id AND o.batch OPERATOR(pg_catalog.=) b.batch
		 WHERE (one_org IS NULL OR o.org_id OPERATOR(pg_catalog.=) one_org)
		   AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
		   AND o.sent_at IS NULL AND o.dead_at IS NULL
		   FOR UPDATE OF o SKIP LOCKED;
		IF FOUND THEN
			SELECT pg_catalog.count(DISTINCT (l.org_id, l.batch)) INTO taken FROM pg_temp.ipai_meter_lease l;
			EXIT WHEN taken OPERATOR(pg_catalog.>=) max_events;
		END IF;
	END LOOP;
	-- a group another sender holds in part is left to it: one with more
	-- rows unsent than leased here (counted apart, then compared: Citus
	-- correlates no subquery of a temporary table with its tables)
	IF taken OPERATOR(pg_catalog.>) 0 THEN
		SELECT pg_catalog.array_agg(DISTINCT k.org_id), pg_catalog.array_agg(DISTINCT k.batch)
		  INTO lease_orgs, lease_batches FROM pg_temp.ipai_meter_lease k;
		DELETE FROM pg_temp.ipai_meter_lease l
		 WHERE (l.org_id, l.batch) IN (
				SELECT b.org_id, b.batch
				  FROM (SELECT o.org_id, o.batch, pg_catalog.count(*) AS n
						  FROM ipai.outbox o
						 WHERE o.org_id OPERATOR(pg_catalog.=) ANY (lease_orgs)
						   AND o.batch OPERATOR(pg_catalog.=) ANY (lease_batches)
						   AND o.sent_at IS NULL AND o.dead_at IS NULL
						 GROUP BY o.org_id, o.batch) b
				  JOIN (SELECT k.org_id, k.batch, pg_catalog.count(*) AS n
						  FROM pg_temp.ipai_meter_lease k GROUP BY k.org_id, k.batch) h
					ON h.org_id OPERATOR(pg_catalog.=) b.org_id AND h.batch OPERATOR(pg_catalog.=) b.batch
				 WHERE b.n OPERATOR(pg_catalog.>) h.n);
	END IF;
	SELECT pg_catalog.count(DISTINCT (l.org_id, l.batch)) INTO taken FROM pg_temp.ipai_meter_lease l;

	-- new rows, up to what the remaining groups may hold (at most 20,000 a
	-- lease, enough for every group when a few customers have a backlog,
	-- and for many small groups otherwise)
	IF taken OPERATOR(pg_catalog.<) max_events THEN
		wanted := CASE WHEN aggregate_min OPERATOR(pg_catalog.>) 20000
					   THEN max_events OPERATOR(pg_catalog.-) taken
					   ELSE least((max_events OPERATOR(pg_catalog.-) taken)::bigint
								  OPERATOR(pg_catalog.*) aggregate_max, 20000) END;
		FOREACH one_org IN ARRAY orgs LOOP
			INSERT INTO pg_temp.ipai_meter_lease (org_id, id, in_doubt, give_up, problem, customer,
												  event_name, val, ts, own_identifier, period,
												  give_up_error)
			SELECT o.org_id, o.id, o.in_doubt,
				   o.attempts OPERATOR(pg_catalog.>=) p.max_attempts
				   OR coalesce(o.first_attempt_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) p.horizon), false),
				   chk.problem,
				   o.payload OPERATOR(pg_catalog.->>) 'stripe_customer_id',
				   o.payload OPERATOR(pg_catalog.->>) 'event_name',
				   CASE WHEN chk.problem IS NULL THEN (o.payload OPERATOR(pg_catalog.->>) 'value')::bigint END,
				   CASE WHEN chk.problem IS NULL THEN (o.payload OPERATOR(pg_catalog.->>) 'timestamp')::bigint END,
				   o.payload OPERATOR(pg_catalog.->>) 'identifier',
				   ev.period_start,
				   pg_catalog.format('gave up after %s attempts%s', o.attempts,
									 ': ' OPERATOR(pg_catalog.||) o.last_error)
			  FROM ipai.outbox o
			 CROSS JOIN LATERAL (SELECT ipai._meter_payload_problem(o.payload) AS problem) chk
			  -- the usage event's period, where the identifier is ours
			  -- (ipai._meter_identifier: ipai_<org>_<event id>)
			  LEFT JOIN ipai.usage_events ev
				ON ev.org_id OPERATOR(pg_catalog.=) o.org_id
			   AND ev.id OPERATOR(pg_catalog.=) (
					CASE WHEN (o.payload OPERATOR(pg_catalog.->>) 'identifier')
								  OPERATOR(pg_catalog.~) '^ipai_[0-9a-f-]{36}_[0-9]{1,18}$'
							  AND pg_catalog.split_part(o.payload OPERATOR(pg_catalog.->>) 'identifier', '_', 2)
								  OPERATOR(pg_catalog.=) o.org_id::text
						 THEN pg_catalog.split_part(o.payload OPERATOR(pg_catalog.->>) 'identifier', '_', 3)::bigint
					END)
			 WHERE (one_org IS NULL OR o.org_id OPERATOR(pg_catalog.=) one_org)
			   AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
			   AND o.sent_at IS NULL AND o.dead_at IS NULL AND o.batch IS NULL
			   AND o.next_attempt_at OPERATOR(pg_catalog.<=) now_ts
			   AND (o.claimed_at IS NULL
					OR o.claimed_at OPERATOR(pg_catalog.<) (now_ts OPERATOR(pg_catalog.-) lease))
			 ORDER BY o.next_attempt_at, o.id
			 LIMIT wanted
			   FOR UPDATE OF o SKIP LOCKED;
			GET DIAGNOSTICS n = ROW_COUNT;
			wanted := wanted OPERATOR(pg_catalog.-) n;
			EXIT WHEN wanted OPERATOR(pg_catalog.<=) 0;
		END LOOP;

		UPDATE pg_temp.ipai_meter_lease l
		   SET park = l.problem IS NULL AND l.customer IS NULL,
			   problem = CASE WHEN l.problem IS NOT NULL THEN 'malformed payload: ' OPERATOR(pg_catalog.||) l.problem
							  WHEN l.ts OPERATOR(pg_catalog.<) (now_s OPERATOR(pg_catalog.-) 3024000) -- 35 days
							  THEN pg_catalog.format('the meter event of %s is older than the 35 days Stripe accepts',
													 pg_catalog.to_timestamp(l.ts))
						 END,
			   defer_until = CASE WHEN l.ts OPERATOR(pg_catalog.>) (now_s OPERATOR(pg_catalog.+) 240)
								  THEN l.ts OPERATOR(pg_catalog.-) 240 END
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
							 WHEN l.give_up THEN l.give_up_error
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
		   last_error = d.give_up_error
	  FROM (SELECT l.org_id, l.id, l.give_up_error FROM pg_temp.ipai_meter_lease l
			 WHERE (l.org_id, l.batch) IN (SELECT k.org_id, k.batch FROM pg_temp.ipai_meter_lease k
											WHERE k.give_up AND k.batch IS NOT NULL)) d
	 WHERE o.org_id OPERATOR(pg_catalog.=) d.org_id AND o.id OPERATOR(pg_catalog.=) d.id
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
	now_ts timestamptz := pg_catalog.clock_timestamp();
BEGIN
	IF ids IS NULL THEN
		RAISE EXCEPTION 'ids must not be null' USING ERRCODE = '22023';
	END IF;
	UPDATE ipai.outbox o
	   SET sent_at = now_ts,
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
	next_at timestamptz;
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
	-- (a value: Citus takes no stable function in an UPDATE's CASE)
	next_at := now_ts OPERATOR(pg_catalog.+) pause;

	UPDATE ipai.outbox o
	   SET last_error = pg_catalog.left(coalesce(error, 'failed'), 2000),
		   dead_at = CASE WHEN verdict OPERATOR(pg_catalog.=) 'dead' THEN now_ts END,
		   next_attempt_at = CASE WHEN verdict OPERATOR(pg_catalog.=) 'dead' THEN o.next_attempt_at
								  ELSE next_at END,
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

-- new: ipai._run_grants
CREATE FUNCTION ipai._run_grants() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	grants_fn regprocedure;
BEGIN
	FOR grants_fn IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND p.proname OPERATOR(pg_catalog.~) '^_grants_[a-z_]+$'
		   AND p.pronargs OPERATOR(pg_catalog.=) 0
		 ORDER BY p.proname
	LOOP
		EXECUTE pg_catalog.format('SELECT %s', grants_fn);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._run_grants() FROM PUBLIC;

-- new: ipai.is_distributed
CREATE FUNCTION ipai.is_distributed() RETURNS boolean
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL
	   OR pg_catalog.to_regclass('ipai.organizations') IS NULL THEN
		RETURN false;
	END IF;
	RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
					WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'ipai.organizations'::regclass);
END
$$;

-- new: ipai._citus_kind
CREATE FUNCTION ipai._citus_kind(rel regclass) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN $1::text IN ('ipai.plans', 'ipai.plan_entitlements', 'ipai.webhook_secrets',
										 'ipai.schema_version', 'ipai._usage_cache_signal',
										 'ipai.webhook_events')
					  THEN 'reference' ELSE 'distributed' END $$;
REVOKE ALL ON FUNCTION ipai._citus_kind(regclass) FROM PUBLIC;

-- new: ipai._citus_delegated
CREATE FUNCTION ipai._citus_delegated()
	RETURNS TABLE (fn regprocedure, arg text)
	LANGUAGE sql STABLE
	AS $$ SELECT p.oid::regprocedure, '$1'
			FROM pg_catalog.pg_proc p
		   WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			 AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY[
				 'check_entitlement', 'consume_entitlement', 'record_usage', 'reserve_entitlement',
				 'preview_invoice'])
			 AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'uuid'::regtype $$;
REVOKE ALL ON FUNCTION ipai._citus_delegated() FROM PUBLIC;

-- new: ipai._citus_policies
CREATE FUNCTION ipai._citus_policies() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p record;
	member text := '(\w+) = ANY \(\( SELECT ipai\.user_org_ids\(([^()]*)\) AS user_org_ids\)::uuid\[\]\)';
	scalar text := '\(\s*SELECT (ipai\.[a-z_]+\([^()]*\)) AS [a-z_]+\)';
BEGIN
	FOR p IN
		SELECT pol.tablename, pol.policyname,
			   pg_catalog.regexp_replace(pg_catalog.regexp_replace(pol.qual, member,
					'ipai.is_org_member(\1, \2)', 'g'), scalar, '\1', 'g') AS qual,
			   pg_catalog.regexp_replace(pg_catalog.regexp_replace(pol.with_check, member,
					'ipai.is_org_member(\1, \2)', 'g'), scalar, '\1', 'g') AS with_check
		  FROM pg_catalog.pg_policies pol
		 WHERE pol.schemaname OPERATOR(pg_catalog.=) 'ipai'
		   AND (pol.qual OPERATOR(pg_catalog.~) scalar OR pol.with_check OPERATOR(pg_catalog.~) scalar)
	LOOP
		IF p.qual IS NOT NULL THEN
			EXECUTE pg_catalog.format('ALTER POLICY %I ON ipai.%I USING (%s)', p.policyname, p.tablename, p.qual);
		END IF;
		IF p.with_check IS NOT NULL THEN
			EXECUTE pg_catalog.format('ALTER POLICY %I ON ipai.%I WITH CHECK (%s)', p.policyname, p.tablename,
									  p.with_check);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._citus_policies() FROM PUBLIC;

-- new: ipai._relay_notifications
CREATE FUNCTION ipai._relay_notifications() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	n integer := 0;
BEGIN
	IF pg_catalog.to_regclass('ipai._notify_relay') IS NULL
	   OR pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
		RETURN 0;
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_dist_local_group g
					 WHERE g.groupid OPERATOR(pg_catalog.=) 0)) THEN
		RETURN 0;
	END IF;
	FOR r IN
		WITH d AS (DELETE FROM ipai._notify_relay x RETURNING x.org_id, x.id, x.channel, x.payload)
		SELECT d.channel, d.payload FROM d ORDER BY d.id, d.org_id
	LOOP
		PERFORM pg_catalog.pg_notify(r.channel, r.payload);
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION ipai._relay_notifications() FROM PUBLIC;

-- new: ipai._scheduler_wake_at_commit
CREATE FUNCTION ipai._scheduler_wake_at_commit() RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_scheduler_wake_at_commit'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._scheduler_wake_at_commit() FROM PUBLIC;

-- new: ipai._dashboard_period
CREATE FUNCTION ipai._dashboard_period(org uuid)
	RETURNS TABLE (period_start timestamptz, period_end timestamptz)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT p.period_start, p.period_end FROM ipai.usage_period($1, pg_catalog.now()) p $$;
REVOKE ALL ON FUNCTION ipai._dashboard_period(uuid) FROM PUBLIC;

-- new: ipai._dashboard_seats
CREATE FUNCTION ipai._dashboard_seats(org uuid)
	RETURNS TABLE (used bigint, max_quantity bigint, remaining bigint)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT c.current, c.max,
				 CASE WHEN c.max IS NULL THEN NULL
					  WHEN c.current OPERATOR(pg_catalog.>=) c.max THEN 0
					  ELSE c.max OPERATOR(pg_catalog.-) c.current END
			FROM ipai.check_entitlement($1, 'seats', 1) c $$;
REVOKE ALL ON FUNCTION ipai._dashboard_seats(uuid) FROM PUBLIC;

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

-- new: ipai._usage_periods_lock
CREATE FUNCTION ipai._usage_periods_lock(org_id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_usage_periods_lock'
	LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_periods_lock(uuid) FROM PUBLIC;

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
	IF distributed AND roles_note OPERATOR(pg_catalog.~) '^created' THEN
		-- Citus propagates them, but its own connections (to the
		-- coordinator's placements too) cannot see roles this transaction
		-- has not committed
		RAISE EXCEPTION 'the Supabase roles must exist before the tables are distributed'
			USING ERRCODE = '55000',
				  HINT = 'Run SELECT ipai.create_supabase_roles(); first, then install_schema(distributed => true).';
	END IF;

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
	PERFORM ipai._run_grants();

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
	n integer := 0;
	m integer;
	b record;
BEGIN
	-- one organization at a time, the customer id as a value: Citus routes
	-- each UPDATE to the organization's worker and takes no function over
	-- a column there (jsonb_set is immutable).  Parked rows (next_attempt_at
	-- infinity, see 35_outbox.sql) are due now.
	FOR b IN SELECT c.org_id, c.stripe_customer_id FROM ipai.billing_customers c
			  WHERE only_org IS NULL OR c.org_id OPERATOR(pg_catalog.=) only_org
	LOOP
		UPDATE ipai.outbox o
		   SET payload = pg_catalog.jsonb_set(
						   o.payload OPERATOR(pg_catalog.||)
						   pg_catalog.jsonb_build_object('stripe_customer_id', b.stripe_customer_id),
						   '{payload,stripe_customer_id}', pg_catalog.to_jsonb(b.stripe_customer_id)),
			   next_attempt_at = least(o.next_attempt_at, pg_catalog.now())
		 WHERE o.org_id OPERATOR(pg_catalog.=) b.org_id
		   AND o.topic OPERATOR(pg_catalog.=) 'stripe.meter_event'
		   AND o.sent_at IS NULL
		   AND (o.payload OPERATOR(pg_catalog.->>) 'stripe_customer_id') IS NULL;
		GET DIAGNOSTICS m = ROW_COUNT;
		n := n OPERATOR(pg_catalog.+) m;
	END LOOP;
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

-- changed: ipai._schema_distribute
CREATE OR REPLACE FUNCTION ipai._schema_distribute() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	fk record;
	t record;
	f record;
	readd text[] := '{}';
	stmt text;
	todo integer;
	failed text;
BEGIN
	SELECT pg_catalog.count(*) INTO todo
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
	   AND c.relkind OPERATOR(pg_catalog.=) 'r'
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
						WHERE d.logicalrelid OPERATOR(pg_catalog.=) c.oid);
	IF todo OPERATOR(pg_catalog.>) 0 THEN
		-- Citus connects to the workers as the current role: a caller acting
		-- as authenticated or service_role (SET ROLE) needs it to log in
		-- there (pg_hba decides from where: the nodes only)
		ALTER ROLE anon LOGIN;
		ALTER ROLE authenticated LOGIN;
		ALTER ROLE service_role LOGIN;

		-- foreign keys to reference tables, added in the same transaction
		-- as the shards, need Citus's sequential mode
		PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
		-- rows of no organization get the nil uuid (see ipai._audit), and
		-- the key includes the organization, as Citus requires
		IF NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
						 WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'ipai.audit_log'::regclass)) THEN
			UPDATE ipai.audit_log SET org_id = '00000000-0000-0000-0000-000000000000' WHERE org_id IS NULL;
			ALTER TABLE ipai.audit_log ALTER COLUMN org_id SET NOT NULL,
				DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (org_id, id);
		END IF;

		FOR fk IN
			SELECT c.conrelid::regclass AS rel, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
			  FROM pg_catalog.pg_constraint c
			 WHERE c.contype OPERATOR(pg_catalog.=) 'f'
			   AND c.connamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			 ORDER BY c.conrelid, c.conname
		LOOP
			readd := readd OPERATOR(pg_catalog.||)
					 pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.rel, fk.conname, fk.def);
			EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
		END LOOP;

		-- policies: Citus refuses subqueries in them; ours wrap their
		-- function calls in a scalar subquery only so that PostgreSQL
		-- evaluates them once per statement
		PERFORM ipai._citus_policies();

		-- our triggers stay off while the rows move: they read and write
		-- other tables of the organization, which may not be on the
		-- workers yet
		FOR t IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c
				  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
					AND c.relkind OPERATOR(pg_catalog.=) 'r'
		LOOP
			EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER USER', t.rel);
		END LOOP;

		-- reference tables first, then organizations, then the rest
		FOR t IN
			SELECT c.oid::regclass AS rel, ipai._citus_kind(c.oid::regclass) AS kind
			  FROM pg_catalog.pg_class c
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
			   AND c.relkind OPERATOR(pg_catalog.=) 'r'
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
								WHERE d.logicalrelid OPERATOR(pg_catalog.=) c.oid)
			 ORDER BY ipai._citus_kind(c.oid::regclass) OPERATOR(pg_catalog.<>) 'reference',
					  c.oid::regclass OPERATOR(pg_catalog.<>) 'ipai.organizations'::regclass,
					  c.relname
		LOOP
			IF t.kind OPERATOR(pg_catalog.=) 'reference' THEN
				EXECUTE 'SELECT create_reference_table($1)' USING t.rel;
			ELSIF t.rel OPERATOR(pg_catalog.=) 'ipai.organizations'::regclass THEN
				EXECUTE 'SELECT create_distributed_table($1, $2)' USING t.rel, 'id';
			ELSE
				EXECUTE 'SELECT create_distributed_table($1, $2, colocate_with => $3)'
					USING t.rel, 'org_id', 'ipai.organizations';
			END IF;
		END LOOP;

		FOREACH stmt IN ARRAY readd LOOP
			EXECUTE stmt;
		END LOOP;
		FOR t IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c
				  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
					AND c.relkind OPERATOR(pg_catalog.=) 'r'
		LOOP
			EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER USER', t.rel);
		END LOOP;
		-- but not the outbox's NOTIFY: on a worker a notification reaches
		-- no listener on the coordinator, and Citus cannot commit (PREPARE)
		-- a transaction across nodes that has notified.  Outbox senders
		-- poll instead.  (The approvals' trigger writes to the relay below.)
		ALTER TABLE ipai.outbox DISABLE TRIGGER outbox_notify;
	END IF;

	-- the dashboards' per-organization functions, in the FROM of views
	-- that read every shard: Citus runs only immutable ones there (on the
	-- worker of each row); see src/sql/82_dashboards.sql
	ALTER FUNCTION ipai._dashboard_period(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_seats(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_usage(uuid) IMMUTABLE;
	ALTER FUNCTION ipai._dashboard_preview(uuid) IMMUTABLE;

	-- The notification relay: on Citus the approvals' trigger, on a worker,
	-- writes its notification here, and the coordinator sends and deletes
	-- it when the transaction commits (ipai._relay_notifications(),
	-- src/citus_relay.c).
	IF pg_catalog.to_regclass('ipai._notify_relay') IS NULL THEN
		CREATE TABLE ipai._notify_relay (
			org_id uuid NOT NULL,
			id bigint GENERATED ALWAYS AS IDENTITY,
			channel text NOT NULL,
			payload text NOT NULL,
			PRIMARY KEY (org_id, id)
		);
		ALTER TABLE ipai._notify_relay ENABLE ROW LEVEL SECURITY;
		REVOKE ALL ON ipai._notify_relay FROM PUBLIC;
		COMMENT ON TABLE ipai._notify_relay IS
			'On Citus: notifications written on the workers, sent by the coordinator at commit';
		EXECUTE 'SELECT create_distributed_table($1, $2, colocate_with => $3)'
			USING 'ipai._notify_relay', 'org_id', 'ipai.organizations';
	END IF;
	ALTER TABLE ipai.cms_approvals ENABLE TRIGGER cms_approvals_notify;

	-- the EXECUTE grants of our functions on the workers too: Citus
	-- propagates the extension, not what install_schema granted since
	-- (except on the delegated functions, whose grants it propagates and
	-- which the workers refuse to change)
	SELECT pg_catalog.string_agg(pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I;',
												   p.oid::regprocedure, r.rolname), ' ')
	  INTO stmt
	  FROM pg_catalog.pg_proc p
	 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
	   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object d
						WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
						  AND d.objid OPERATOR(pg_catalog.=) p.oid);
	IF stmt IS NOT NULL THEN
		EXECUTE 'SELECT pg_catalog.string_agg(r.nodename || '':'' || r.nodeport || '' '' || r.result, ''; '')
				   FROM run_command_on_workers($1) r WHERE NOT r.success'
			INTO failed USING 'DO $g$ BEGIN ' OPERATOR(pg_catalog.||) stmt OPERATOR(pg_catalog.||) ' END $g$';
		IF failed IS NOT NULL THEN
			RAISE EXCEPTION 'could not grant the ipai functions on the workers: %', failed
				USING ERRCODE = '55000',
					  HINT = 'Create the extension in a transaction of its own first (CREATE EXTENSION ipai_saas CASCADE), then install_schema(distributed => true).';
		END IF;
	END IF;

	-- delegation (again on every call: a function added by ALTER EXTENSION
	-- UPDATE gets it too)
	FOR f IN SELECT * FROM ipai._citus_delegated() LOOP
		EXECUTE 'SELECT create_distributed_function($1, $2, colocate_with => $3)'
			USING f.fn, f.arg, 'ipai.organizations';
	END LOOP;
END
$$;

-- changed: ipai._audit
CREATE OR REPLACE FUNCTION ipai._audit(org_id uuid, action text, object_type text, object_id text,
							old_values jsonb DEFAULT NULL, new_values jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	-- distributed by organization on Citus: rows of no organization (secret
	-- rotation) carry the nil uuid there
	INSERT INTO ipai.audit_log (org_id, actor_id, actor_role, action, object_type,
								object_id, old_values, new_values)
	VALUES (CASE WHEN _audit.org_id IS NULL AND ipai.is_distributed()
				 THEN '00000000-0000-0000-0000-000000000000'::uuid ELSE _audit.org_id END,
			ipai.current_user_id(), session_user, action, object_type,
			object_id, old_values, new_values);
END
$$;

-- changed: ipai.create_organization
CREATE OR REPLACE FUNCTION ipai.create_organization(name text,
										 owner uuid DEFAULT ipai.current_user_id(),
										 billing_email text DEFAULT NULL,
										 timezone text DEFAULT 'UTC')
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	new_id uuid;
	default_plan text;
	acting uuid := ipai.current_user_id();
BEGIN
	IF name IS NULL OR name OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'organization name must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.length(name) OPERATOR(pg_catalog.>) 200 THEN
		RAISE EXCEPTION 'organization name is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 200 characters are allowed.';
	END IF;
	IF owner IS NULL THEN
		RAISE EXCEPTION 'organization owner must not be null'
			USING ERRCODE = '22023',
				  HINT = 'Pass owner, or act as a user (JWT sub or the ipai.user_id setting).';
	END IF;
	IF NOT ipai.caller_is_privileged()
	   AND (acting IS NULL OR acting OPERATOR(pg_catalog.<>) owner) THEN
		RAISE EXCEPTION 'permission denied to create an organization for another user'
			USING ERRCODE = '42501';
	END IF;
	IF billing_email IS NOT NULL THEN
		billing_email := ipai.normalize_email(billing_email);
	END IF;

	-- (the default plan read first: Citus takes no subquery in an INSERT)
	SELECT p.id INTO default_plan FROM ipai.plans p WHERE p.is_default;
	INSERT INTO ipai.organizations (name, billing_email, timezone, plan_id, created_by)
	VALUES (pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), billing_email, coalesce(timezone, 'UTC'),
			coalesce(default_plan, 'free'), coalesce(acting, owner))
	RETURNING id INTO new_id;

	INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (new_id, owner, 'owner');

	PERFORM ipai._audit(new_id, 'organization.create', 'organization', new_id::text, NULL,
						pg_catalog.jsonb_build_object('name', pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), 'owner', owner));
	RETURN new_id;
END
$$;

-- changed: ipai._cms_pages_usage
CREATE OR REPLACE FUNCTION ipai._cms_pages_usage() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	page_count bigint;
	r record;
	f record;
	lim record;
	after_used bigint;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
		UPDATE ipai.usage_counters c SET used = 0, updated_at = pg_catalog.now()
		 WHERE c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
		   AND c.feature IN (SELECT e.feature FROM ipai.plan_entitlements e
							  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages');
		RETURN NULL;
	END IF;

	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		FOR r IN SELECT o.org_id, pg_catalog.count(*) AS n FROM old_rows o
				  GROUP BY o.org_id ORDER BY o.org_id LOOP
			UPDATE ipai.usage_counters c
			   SET used = GREATEST(c.used OPERATOR(pg_catalog.-) r.n, 0), updated_at = pg_catalog.now()
			 WHERE c.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
			   AND c.feature IN (SELECT e.feature FROM ipai.plan_entitlements e
								  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages');
		END LOOP;
		RETURN NULL;
	END IF;

	FOR r IN SELECT n.org_id, pg_catalog.count(*) AS n FROM new_rows n
			  GROUP BY n.org_id ORDER BY n.org_id LOOP
		FOR f IN SELECT DISTINCT e.feature FROM ipai.plan_entitlements e
				  WHERE e.counted_by OPERATOR(pg_catalog.=) 'cms_pages' ORDER BY 1 LOOP
			UPDATE ipai.usage_counters c
			   SET used = c.used OPERATOR(pg_catalog.+) r.n, updated_at = pg_catalog.now()
			 WHERE c.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND c.feature OPERATOR(pg_catalog.=) f.feature
			   AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz
			RETURNING c.used INTO after_used;
			IF NOT FOUND THEN
				-- the organization's first pages: count what exists, these included
				-- (counted first and the time through EXCLUDED: Citus takes
				-- neither an INSERT ... SELECT nor a function here)
				SELECT pg_catalog.count(*) INTO page_count
				  FROM ipai.cms_pages p WHERE p.org_id OPERATOR(pg_catalog.=) r.org_id;
				INSERT INTO ipai.usage_counters AS c (org_id, feature, period_start, used, updated_at)
				VALUES (r.org_id, f.feature, '-infinity'::timestamptz, page_count, pg_catalog.now())
				ON CONFLICT ON CONSTRAINT usage_counters_pkey
				DO UPDATE SET used = c.used OPERATOR(pg_catalog.+) r.n, updated_at = EXCLUDED.updated_at
				RETURNING c.used INTO after_used;
			END IF;

			SELECT e.max_quantity, e.enforcement INTO lim
			  FROM ipai.organizations o
			  JOIN ipai.plan_entitlements e ON e.plan_id OPERATOR(pg_catalog.=) o.plan_id
			 WHERE o.id OPERATOR(pg_catalog.=) r.org_id
			   AND e.feature OPERATOR(pg_catalog.=) f.feature;
			IF NOT FOUND THEN
				-- not in the organization's plan: nothing allowed
				PERFORM ipai._raise_usage_limit(f.feature, after_used OPERATOR(pg_catalog.-) r.n,
												0, 0, r.n);
			ELSIF lim.enforcement OPERATOR(pg_catalog.=) 'hard' AND lim.max_quantity IS NOT NULL
				  AND after_used OPERATOR(pg_catalog.>) lim.max_quantity THEN
				PERFORM ipai._raise_usage_limit(f.feature, after_used OPERATOR(pg_catalog.-) r.n,
												0, lim.max_quantity, r.n);
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
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
	n integer := 0;
	r record;
BEGIN
	IF ipai.is_distributed() THEN
		-- Citus takes no INSERT ... SELECT of this shape: one row at a time
		FOR r IN
			SELECT ev.id, ev.quantity, ev.occurred_at, e.stripe_meter_event_name AS event_name,
				   b.stripe_customer_id
			  FROM ipai.plan_entitlements e
			  JOIN ipai.usage_events ev
				ON ev.org_id OPERATOR(pg_catalog.=) $1
			   AND ev.feature OPERATOR(pg_catalog.=) e.feature
			   AND ev.occurred_at OPERATOR(pg_catalog.>=) $3
			   AND ev.occurred_at OPERATOR(pg_catalog.<) $4
			   AND NOT ev.metered
			  LEFT JOIN ipai.billing_customers b ON b.org_id OPERATOR(pg_catalog.=) $1
			 WHERE e.plan_id OPERATOR(pg_catalog.=) $2
			   AND e.metered
			 ORDER BY ev.id
		LOOP
			INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
			VALUES ($1, 'stripe.meter_event',
					ipai._meter_event_payload($1, r.id, r.event_name, r.stripe_customer_id,
											  r.quantity, r.occurred_at),
					ipai._meter_identifier($1, r.id))
			ON CONFLICT (org_id, topic, dedupe_key) DO NOTHING;
			IF FOUND THEN
				n := n OPERATOR(pg_catalog.+) 1;
			END IF;
		END LOOP;
		RETURN n;
	END IF;
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

-- changed: ipai._cms_lock_page
CREATE OR REPLACE FUNCTION ipai._cms_lock_page(page_id uuid, OUT page_org uuid, OUT page_status ipai.page_status)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF page_id IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	-- the organization first, then the lock by it: Citus locks rows of one
	-- organization only
	SELECT c.org_id INTO page_org FROM ipai.cms_pages c
	 WHERE c.id OPERATOR(pg_catalog.=) _cms_lock_page.page_id;
	SELECT c.status INTO page_status FROM ipai.cms_pages c
	 WHERE c.org_id OPERATOR(pg_catalog.=) page_org
	   AND c.id OPERATOR(pg_catalog.=) _cms_lock_page.page_id
	 FOR NO KEY UPDATE;
	IF NOT FOUND
	   OR (NOT ipai.caller_is_privileged() AND ipai.org_role_of(page_org) IS NULL) THEN
		RAISE EXCEPTION 'page "%" does not exist', page_id USING ERRCODE = '22023';
	END IF;
END
$$;

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

-- changed: ipai._claim_due_schedules
CREATE OR REPLACE FUNCTION ipai._claim_due_schedules(max_rows integer)
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

-- changed: ipai._execute_claimed_schedules
CREATE OR REPLACE FUNCTION ipai._execute_claimed_schedules(ids bigint[])
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

-- changed: ipai.recover_stuck_runs
CREATE OR REPLACE FUNCTION ipai.recover_stuck_runs() RETURNS integer
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

-- changed: ipai.finalize_hold
CREATE OR REPLACE FUNCTION ipai.finalize_hold(hold_id uuid, actual_quantity bigint)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	h record;
	hold_org uuid;
	-- (a value: Citus runs no volatile function in an UPDATE)
	closed timestamptz := pg_catalog.clock_timestamp();
	r record;
	c record;
	counted boolean;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'hold id must not be null' USING ERRCODE = '22023';
	ELSIF $2 IS NULL OR $2 OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'actual quantity must be zero or more' USING ERRCODE = '22023';
	END IF;
	-- its organization first: on Citus a locking read names one shard
	SELECT u.org_id INTO hold_org FROM ipai.usage_holds u WHERE u.id OPERATOR(pg_catalog.=) $1;
	SELECT * INTO h FROM ipai.usage_holds u
	 WHERE u.org_id OPERATOR(pg_catalog.=) hold_org AND u.id OPERATOR(pg_catalog.=) $1
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hold "%" does not exist', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(h.org_id, 'viewer');
	IF h.status OPERATOR(pg_catalog.=) 'finalized' THEN
		IF h.actual_quantity OPERATOR(pg_catalog.=) $2 THEN
			RETURN false;
		END IF;
		RAISE EXCEPTION 'hold "%" is already finalized', $1
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('It recorded %s.', h.actual_quantity);
	ELSIF h.status OPERATOR(pg_catalog.=) 'released' THEN
		RAISE EXCEPTION 'hold "%" was released', $1 USING ERRCODE = '22023';
	END IF;

	SELECT * INTO r FROM ipai._usage_resolve(h.org_id, h.feature, pg_catalog.now());
	PERFORM 1 FROM ipai._usage_counter_lock(h.org_id, h.feature, h.period_start, NULL,
											 pg_catalog.now());
	counted := h.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()
			   AND h.period_start OPERATOR(pg_catalog.=) r.period_start;
	UPDATE ipai.usage_holds u
	   SET status = 'finalized', actual_quantity = $2, closed_at = closed
	 WHERE u.org_id OPERATOR(pg_catalog.=) h.org_id AND u.id OPERATOR(pg_catalog.=) h.id;
	PERFORM ipai._usage_holds_recount(h.org_id, h.feature, h.period_start, pg_catalog.now());

	IF $2 OPERATOR(pg_catalog.>) 0 THEN
		SELECT * INTO c FROM ipai._usage_counter_lock(h.org_id, h.feature, r.period_start,
													  r.period_end, pg_catalog.now());
		IF NOT (counted AND $2 OPERATOR(pg_catalog.<=) h.quantity)
		   AND (NOT r.in_plan
				OR (r.hard AND r.max_quantity IS NOT NULL
					AND ((c.used OPERATOR(pg_catalog.+) c.held) OPERATOR(pg_catalog.+) $2)
						OPERATOR(pg_catalog.>) r.max_quantity)) THEN
			PERFORM ipai._raise_usage_limit(h.feature, c.used OPERATOR(pg_catalog.+) c.held,
											c.held, COALESCE(r.max_quantity, 0), $2);
		END IF;
		PERFORM ipai._record_usage(h.org_id, h.feature, $2, h.id);
	END IF;
	RETURN true;
END
$$;

-- changed: ipai.release_hold
CREATE OR REPLACE FUNCTION ipai.release_hold(hold_id uuid)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	h record;
	hold_org uuid;
	-- (a value: Citus runs no volatile function in an UPDATE)
	closed timestamptz := pg_catalog.clock_timestamp();
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'hold id must not be null' USING ERRCODE = '22023';
	END IF;
	-- its organization first: on Citus a locking read names one shard
	SELECT u.org_id INTO hold_org FROM ipai.usage_holds u WHERE u.id OPERATOR(pg_catalog.=) $1;
	SELECT * INTO h FROM ipai.usage_holds u
	 WHERE u.org_id OPERATOR(pg_catalog.=) hold_org AND u.id OPERATOR(pg_catalog.=) $1
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hold "%" does not exist', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(h.org_id, 'viewer');
	IF h.status OPERATOR(pg_catalog.=) 'released' THEN
		RETURN false;
	ELSIF h.status OPERATOR(pg_catalog.=) 'finalized' THEN
		RAISE EXCEPTION 'hold "%" is already finalized', $1 USING ERRCODE = '22023';
	END IF;
	PERFORM 1 FROM ipai._usage_counter_lock(h.org_id, h.feature, h.period_start, NULL,
											 pg_catalog.now());
	UPDATE ipai.usage_holds u
	   SET status = 'released', closed_at = closed
	 WHERE u.org_id OPERATOR(pg_catalog.=) h.org_id AND u.id OPERATOR(pg_catalog.=) h.id;
	PERFORM ipai._usage_holds_recount(h.org_id, h.feature, h.period_start, pg_catalog.now());
	RETURN true;
END
$$;

-- changed: ipai._usage_counters_to_repair
CREATE OR REPLACE FUNCTION ipai._usage_counters_to_repair()
	RETURNS TABLE (org_id uuid, feature text, period_start timestamptz, drifted boolean)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	orgs uuid[] := '{NULL}';
	one_org uuid;
BEGIN
	-- on Citus one organization at a time: each query then runs whole on
	-- the worker that holds it
	IF ipai.is_distributed() THEN
		SELECT pg_catalog.array_agg(o.id ORDER BY o.id) INTO orgs FROM ipai.organizations o;
	END IF;
	FOREACH one_org IN ARRAY coalesce(orgs, '{}') LOOP
		RETURN QUERY
		WITH kinds AS (
			SELECT DISTINCT e.feature, e.counted_by FROM ipai.plan_entitlements e
			 WHERE e.counted_by OPERATOR(pg_catalog.<>) 'seats'
		), counters AS (
			SELECT c.org_id, c.feature, c.period_start, c.used, c.carried,
				   (SELECT k.counted_by FROM kinds k
					 WHERE k.feature OPERATOR(pg_catalog.=) c.feature
					 ORDER BY k.counted_by LIMIT 1) AS counted_by, c.period_end
			  FROM ipai.usage_counters c
			 WHERE (one_org IS NULL OR c.org_id OPERATOR(pg_catalog.=) one_org)
		)
		-- counters that differ from what they count
		SELECT t.org_id, t.feature, t.period_start, t.used OPERATOR(pg_catalog.<>) t.total
		  FROM (SELECT c.org_id, c.feature, c.period_start, c.used, c.carried,
					   CASE WHEN c.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
							THEN (SELECT pg_catalog.count(*) FROM ipai.cms_pages pg
								   WHERE pg.org_id OPERATOR(pg_catalog.=) c.org_id
								   AND (one_org IS NULL OR pg.org_id OPERATOR(pg_catalog.=) one_org))
							ELSE w.own OPERATOR(pg_catalog.+) x.carry END AS total,
					   x.carry
				  FROM counters c
				  LEFT JOIN LATERAL ipai._usage_window_sums(c.org_id, c.feature, c.period_start,
															c.period_end) w
					ON c.counted_by IS DISTINCT FROM 'cms_pages'
				 CROSS JOIN LATERAL (
					   SELECT CASE WHEN c.counted_by IS DISTINCT FROM 'cms_pages'
									AND ipai._usage_period_is_current(c.org_id, c.period_start)
								   THEN w.carried ELSE c.carried END AS carry) x) t
		 WHERE t.used OPERATOR(pg_catalog.<>) t.total OR t.carried OPERATOR(pg_catalog.<>) t.carry
		UNION
		-- periods with events but no counter
		SELECT DISTINCT ev.org_id, ev.feature, ev.period_start, true
		  FROM ipai.usage_events ev
		 WHERE (one_org IS NULL OR ev.org_id OPERATOR(pg_catalog.=) one_org)
		   AND NOT EXISTS (SELECT 1 FROM ipai.usage_counters c
							WHERE c.org_id OPERATOR(pg_catalog.=) ev.org_id
							  AND (one_org IS NULL OR c.org_id OPERATOR(pg_catalog.=) one_org)
							  AND c.feature OPERATOR(pg_catalog.=) ev.feature
							  AND c.period_start OPERATOR(pg_catalog.=) ev.period_start)
		UNION
		-- organizations with pages but no cms_items counter
		SELECT DISTINCT pg.org_id, k.feature, '-infinity'::timestamptz, true
		  FROM ipai.cms_pages pg
		  JOIN kinds k ON k.counted_by OPERATOR(pg_catalog.=) 'cms_pages'
		 WHERE (one_org IS NULL OR pg.org_id OPERATOR(pg_catalog.=) one_org)
		   AND NOT EXISTS (SELECT 1 FROM ipai.usage_counters c
							WHERE c.org_id OPERATOR(pg_catalog.=) pg.org_id
							  AND (one_org IS NULL OR c.org_id OPERATOR(pg_catalog.=) one_org)
							  AND c.feature OPERATOR(pg_catalog.=) k.feature
							  AND c.period_start OPERATOR(pg_catalog.=) '-infinity'::timestamptz);
	END LOOP;
END
$$;

-- changed: ipai.is_org_member
CREATE OR REPLACE FUNCTION ipai.is_org_member(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS boolean
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	-- read here, not in the query: on Citus the query runs on a worker
	uid uuid := ipai.current_user_id();
BEGIN
	RETURN EXISTS (SELECT 1 FROM ipai.org_members m
					WHERE m.org_id OPERATOR(pg_catalog.=) is_org_member.org_id
					  AND m.user_id OPERATOR(pg_catalog.=) uid
					  AND m.role OPERATOR(pg_catalog.>=) min_role);
END
$$;

-- changed: ipai.org_role_of
CREATE OR REPLACE FUNCTION ipai.org_role_of(org_id uuid) RETURNS ipai.org_role
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	uid uuid := ipai.current_user_id();
BEGIN
	RETURN (SELECT m.role FROM ipai.org_members m
			 WHERE m.org_id OPERATOR(pg_catalog.=) org_role_of.org_id
			   AND m.user_id OPERATOR(pg_catalog.=) uid);
END
$$;

-- changed: ipai.require_org_role
CREATE OR REPLACE FUNCTION ipai.require_org_role(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS void
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	have ipai.org_role;
	uid uuid;
BEGIN
	IF org_id IS NULL THEN
		RAISE EXCEPTION 'organization id must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM ipai.organizations o
					WHERE o.id OPERATOR(pg_catalog.=) require_org_role.org_id)) THEN
		RAISE EXCEPTION 'organization "%" does not exist', org_id USING ERRCODE = '22023';
	END IF;
	IF ipai.caller_is_privileged() THEN
		RETURN;
	END IF;
	-- the acting user read here, not in the query (on Citus a worker's)
	uid := ipai.current_user_id();
	SELECT m.role INTO have FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) require_org_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) uid;
	IF have IS NULL THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('The acting user is not a member of organization %s.', org_id);
	END IF;
	IF have OPERATOR(pg_catalog.<) min_role THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('This needs role %s or higher in organization %s; the acting user is %s.',
											 min_role, org_id, have);
	END IF;
END
$$;

-- changed: ipai._cms_approvals_notify
CREATE OR REPLACE FUNCTION ipai._cms_approvals_notify() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	payload text;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.status OPERATOR(pg_catalog.=) OLD.status THEN
		RETURN NULL;
	END IF;
	payload := pg_catalog.json_build_object(
		'org_id', NEW.org_id,
		'page_id', NEW.page_id,
		'approval_id', NEW.id,
		'status', NEW.status,
		'page_status', CASE NEW.status WHEN 'pending' THEN 'pending' WHEN 'approved' THEN 'approved'
						   ELSE 'draft' END,
		'page_version', NEW.page_version,
		'requested_by', NEW.requested_by,
		'actor_id', ipai.current_user_id(),
		'at', pg_catalog.now())::text;
	-- on Citus (this runs on a worker) the coordinator sends it at commit
	IF ipai.is_distributed() THEN
		INSERT INTO ipai._notify_relay (org_id, channel, payload)
		VALUES (NEW.org_id, 'cms_approvals', payload);
	ELSE
		PERFORM pg_catalog.pg_notify('cms_approvals', payload);
	END IF;
	RETURN NULL;
END
$$;

-- changed: ipai.cms_schedule_publish
CREATE OR REPLACE FUNCTION ipai.cms_schedule_publish(page_id uuid, run_at timestamptz,
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

-- changed: ipai._schema_views
CREATE OR REPLACE FUNCTION ipai._schema_views(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- one row per Stripe invoice (owners and admins see their organizations')
		CREATE VIEW ipai.invoice_history WITH (security_invoker = true) AS
		SELECT i.org_id,
			   o.name AS org_name,
			   i.stripe_invoice_id,
			   i.stripe_subscription_id,
			   i.status,
			   i.currency,
			   i.amount_due,
			   i.amount_paid,
			   i.amount_remaining,
			   ipai._stripe_amount(i.amount_due, i.currency) AS amount_due_decimal,
			   ipai._stripe_amount(i.amount_paid, i.currency) AS amount_paid_decimal,
			   i.period_start,
			   i.period_end,
			   i.paid_at,
			   i.attempt_count,
			   i.hosted_invoice_url,
			   i.invoice_pdf,
			   i.created_at,
			   i.updated_at
		  FROM ipai.invoices i
		  JOIN ipai.organizations o ON o.id = i.org_id;
		COMMENT ON VIEW ipai.invoice_history IS
			'One row per Stripe invoice; amounts in the smallest currency unit and in currency units (_decimal)';

		GRANT SELECT ON ipai.invoice_history TO authenticated, service_role;
	END IF;
	IF from_version < 4 THEN
		-- (re)made in version 4: their per-organization functions are ones
		-- Citus can run on the workers (ipai._dashboard_period and
		-- ipai._dashboard_seats), and no correlated subquery sits in a
		-- FROM without a table.  A view of yours on one of them stops the
		-- upgrade here: drop it first, then make it again.
		IF pg_catalog.to_regclass('ipai.billing_dashboard') IS NOT NULL THEN
			DROP VIEW ipai.billing_dashboard;
		END IF;
		IF pg_catalog.to_regclass('ipai.org_dashboard') IS NOT NULL THEN
			DROP VIEW ipai.org_dashboard;
		END IF;
		IF pg_catalog.to_regclass('ipai.cms_approval_queue') IS NOT NULL THEN
			DROP VIEW ipai.cms_approval_queue;
		END IF;
		-- one row per organization: plan, subscription, usage period, usage
		-- of every feature against its limit, and the next invoice
		CREATE VIEW ipai.billing_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   p.name AS plan_name,
			   p.base_amount AS plan_amount,
			   p.currency AS plan_currency,
			   p.billing_interval AS plan_interval,
			   s.status AS subscription_status,
			   s.stripe_subscription_id,
			   bc.stripe_customer_id,
			   s.cancel_at_period_end,
			   per.period_start,
			   per.period_end,
			   u.ai_runs_used, u.ai_runs_max, u.ai_runs_percent,
			   u.cms_items_used, u.cms_items_max, u.cms_items_percent,
			   u.seats_used, u.seats_max, u.seats_percent,
			   u.usage,
			   inv.currency AS next_invoice_currency,
			   inv.base_amount AS next_invoice_base_amount,
			   inv.metered_quantity AS next_invoice_metered_quantity,
			   inv.metered_amount AS next_invoice_metered_amount,
			   inv.total AS next_invoice_total
		  FROM ipai.organizations o
		  JOIN ipai.plans p ON p.id = o.plan_id
		  LEFT JOIN ipai.billing_customers bc ON bc.org_id = o.id
		  LEFT JOIN LATERAL (
				SELECT s1.status, s1.stripe_subscription_id, s1.cancel_at_period_end
				  FROM ipai.subscriptions s1
				 WHERE s1.org_id = o.id
				 ORDER BY s1.status IN ('active', 'trialing', 'past_due') DESC,
						  s1.current_period_end DESC NULLS LAST, s1.updated_at DESC
				 LIMIT 1) s ON true
		  CROSS JOIN LATERAL ipai._dashboard_period(o.id) per
		  CROSS JOIN LATERAL (
				SELECT max(d.used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_percent,
					   max(d.used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'cms_items') AS cms_items_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_percent,
					   max(d.used) FILTER (WHERE d.feature = 'seats') AS seats_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'seats') AS seats_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'seats') AS seats_percent,
					   coalesce(jsonb_agg(jsonb_build_object(
							'feature', d.feature, 'used', d.used, 'max', d.max_quantity,
							'remaining', d.remaining, 'percent', d.percent_used,
							'enforcement', d.enforcement, 'metered', d.metered)
							ORDER BY d.feature), '[]'::jsonb) AS usage
				  FROM ipai._dashboard_usage(o.id) d) u
		  LEFT JOIN LATERAL ipai._dashboard_preview(o.id) inv ON true;
		COMMENT ON VIEW ipai.billing_dashboard IS
			'One row per organization: plan, subscription, usage period, usage against limits, next invoice (owners/admins)';

		-- one row per organization: members with roles, open invitations
		-- (owners and admins see them), seats used of the plan's maximum
		CREATE VIEW ipai.org_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   o.billing_email,
			   o.timezone,
			   ipai.org_role_of(o.id) AS my_role,
			   m.member_count,
			   m.members,
			   i.pending_invitation_count,
			   i.pending_invitations,
			   seats.used AS seats_used,
			   seats.max_quantity AS seats_max,
			   seats.remaining AS seats_remaining,
			   o.created_at
		  FROM ipai.organizations o
		  CROSS JOIN LATERAL (
				SELECT count(*) AS member_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'user_id', mm.user_id, 'role', mm.role, 'email', em.email,
							'joined_at', mm.created_at)
							ORDER BY mm.role DESC, mm.created_at, mm.user_id), '[]'::jsonb) AS members
				  FROM ipai.org_members mm
				  LEFT JOIN LATERAL (
						SELECT ai.email FROM ipai.org_invitations ai
						 WHERE ai.org_id = mm.org_id AND ai.accepted_by = mm.user_id
						 ORDER BY ai.accepted_at DESC LIMIT 1) em ON true
				 WHERE mm.org_id = o.id) m
		  CROSS JOIN LATERAL (
				SELECT count(*) AS pending_invitation_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'id', pi.id, 'email', pi.email, 'role', pi.role,
							'invited_by', pi.invited_by, 'invited_at', pi.last_sent_at,
							'expires_at', pi.expires_at)
							ORDER BY pi.created_at, pi.email), '[]'::jsonb) AS pending_invitations
				  FROM ipai.org_invitations pi
				 WHERE pi.org_id = o.id AND pi.accepted_at IS NULL AND pi.revoked_at IS NULL
				   AND pi.expires_at > now()) i
		  LEFT JOIN LATERAL ipai._dashboard_seats(o.id) seats ON true;
		COMMENT ON VIEW ipai.org_dashboard IS
			'One row per organization: members with roles, pending invitations (owners/admins), seats used of max';

		-- one row per pending approval request, with what a reviewer needs
		-- to call ipai.cms_diff_html(page_id, diff_from_version, diff_to_version)
		CREATE VIEW ipai.cms_approval_queue WITH (security_invoker = true) AS
		SELECT a.org_id,
			   o.name AS org_name,
			   a.id AS approval_id,
			   a.page_id,
			   pg.slug AS page_slug,
			   pg.title AS page_title,
			   pg.status AS page_status,
			   a.requested_by,
			   a.requested_at,
			   now() - a.requested_at AS age,
			   a.request_comment,
			   dv.from_version AS diff_from_version,
			   dv.to_version AS diff_to_version,
			   (a.requested_by IS DISTINCT FROM ipai.current_user_id()
				AND (ipai.caller_is_privileged() OR ipai.is_org_member(a.org_id, 'admin'))) AS can_review
		  FROM ipai.cms_approvals a
		  JOIN ipai.cms_pages pg ON pg.org_id = a.org_id AND pg.id = a.page_id
		  JOIN ipai.organizations o ON o.id = a.org_id
		  LEFT JOIN LATERAL (
				SELECT t.to_version,
					   coalesce((SELECT max(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id
									AND v.status = 'published' AND v.version < t.to_version),
								(SELECT min(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id)) AS from_version
				  FROM (SELECT coalesce(a.page_version, max(v.version)) AS to_version
						  FROM ipai.cms_page_versions v
						 WHERE v.org_id = a.org_id AND v.page_id = a.page_id) t
				 WHERE t.to_version IS NOT NULL) dv ON true
		 WHERE a.status = 'pending';
		COMMENT ON VIEW ipai.cms_approval_queue IS
			'Pending CMS approval requests with page, requester, age and the inputs of ipai.cms_diff_html()';

		GRANT SELECT ON ipai.billing_dashboard, ipai.org_dashboard, ipai.cms_approval_queue
			TO authenticated, service_role;
	END IF;
END
$$;

-- changed: ipai._grants_dashboards
CREATE OR REPLACE FUNCTION ipai._grants_dashboards() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai._dashboard_usage(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._dashboard_preview(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._dashboard_period(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._dashboard_seats(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._stripe_amount(bigint, text) TO authenticated, service_role;
END
$$;

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
	-- the transactions that recorded usage under the old periods end
	-- first; the next ones wait for this one (src/usage_period_lock.c)
	PERFORM ipai._usage_periods_lock($1);
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

-- changed: ipai._usage_events_org_deleted
CREATE OR REPLACE FUNCTION ipai._usage_events_org_deleted() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	gone uuid;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		FOR gone IN SELECT DISTINCT o.id FROM old_rows o ORDER BY 1 LOOP
			DELETE FROM ipai.usage_events e WHERE e.org_id OPERATOR(pg_catalog.=) gone;
		END LOOP;
	ELSE
		DELETE FROM ipai.usage_events e
		 WHERE NOT EXISTS (SELECT 1 FROM ipai.organizations o
							WHERE o.id OPERATOR(pg_catalog.=) e.org_id);
	END IF;
	RETURN NULL;
END
$$;

-- SECURITY DEFINER now (it writes the Citus relay): internal
REVOKE ALL ON FUNCTION ipai._cms_approvals_notify() FROM PUBLIC;

-- removed: the claim is ipai._outbox_lease now
DROP FUNCTION ipai._outbox_claim(text, integer, interval);
