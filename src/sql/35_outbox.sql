-- The outbox: work for the Edge layer (SPEC section 6), written in the
-- same transaction as the change that causes it, delivered by senders
-- (supabase/functions/outbox-sender) and kept until then.  Only
-- service_role and superusers reach it (no EXECUTE for anon or
-- authenticated, no RLS policy).
--
-- Lifecycle of a row, all of it in the table, none in a sender's memory:
--
--   due      sent_at, dead_at NULL, next_attempt_at <= now, and not
--            claimed, or claimed longer ago than the claimer's timeout
--   leased   a sender holds it (claimed_at); if the sender dies, the row
--            is due again when the claim times out (5 minutes by default)
--   waiting  after a failed attempt: next_attempt_at = now + backoff
--            (10 s doubling to 1 h, times a random factor in [0.5, 1),
--            never before the receiver's Retry-After)
--   parked   a Stripe meter event whose organization has no Stripe
--            customer yet: next_attempt_at = infinity until one is linked
--   sent     sent_at set (the invitation token erased)
--   dead     dead_at set: a permanent refusal, a malformed payload, 20
--            attempts, or 23 hours since the first (so that every
--            automatic resend of a meter event falls inside Stripe's
--            24-hour identifier deduplication); last_error says why.
--            ipai.outbox_retry(id) makes it due again.
--
-- Leases use FOR UPDATE SKIP LOCKED: concurrent senders never hold the
-- same row.  Every lease counts an attempt (attempts, first_attempt_at)
-- and marks the row in_doubt: a sender that dies may have delivered it;
-- a failure report says whether the receiver may have seen the request.

-- Retry policy: attempts before a row is dead, how long automatic retries
-- go on after the first attempt, and the backoff's base and cap.
CREATE FUNCTION ipai._outbox_policy(OUT max_attempts integer, OUT horizon interval,
									OUT backoff_base interval, OUT backoff_cap interval)
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 20, interval '23 hours', interval '10 seconds', interval '1 hour' $$;
REVOKE ALL ON FUNCTION ipai._outbox_policy() FROM PUBLIC;

-- The wait after the n-th failed attempt (n >= 1): base * 2^(n-1), at most
-- the cap, times a random factor in [0.5, 1) so that senders that failed
-- together do not retry together.
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

-- Leases up to max_rows due rows of want_topic, oldest due first, for
-- `lease`; returns them with their attempt number and whether an earlier
-- attempt may have reached the receiver (in_doubt before this lease).
-- On the way: a row past its attempts or its horizon is made dead instead
-- (returned with given_up, the reason), and a Stripe meter event without
-- a customer is parked.
-- (PL/pgSQL refuses an input parameter and an output column of the same
-- name, "topic", which the contract has: the public functions below are
-- SQL wrappers.)
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

-- The contract's claim (SPEC section 6): up to max_rows due rows of topic,
-- held for claim_timeout (then due again if never marked sent).
CREATE FUNCTION ipai.outbox_claim(topic text, max_rows integer DEFAULT 100,
								  claim_timeout interval DEFAULT '5 minutes')
	RETURNS TABLE (id bigint, org_id uuid, topic text, payload jsonb, created_at timestamptz)
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT l.out_id, l.out_org_id, l.out_topic, l.out_payload, l.out_created_at
			FROM ipai._outbox_lease($1, $2, $3) l WHERE l.out_given_up IS NULL $$;
REVOKE ALL ON FUNCTION ipai.outbox_claim(text, integer, interval) FROM PUBLIC;

-- The same with what a sender needs besides: the attempt number, whether
-- an earlier attempt may have reached the receiver, and the rows given up
-- on the way (given_up: why; they are dead, not leased).
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

-- What is wrong with a stripe.meter_event payload, or NULL: the fields
-- Stripe's meter events API takes (event_name 1-100 characters, an
-- identifier 1-100 characters, a timestamp in Unix seconds, a value that
-- is a non-negative integer) and the customer (a string once linked).
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

-- Leases Stripe meter events for a sender, grouped: returns up to
-- max_events meter events to send, each the rows it stands for, and the
-- rows given up on the way (given_up: why; they are dead).
--
-- Rows of one organization, customer, meter and usage period that number
-- at least aggregate_min in this lease are sent as one meter event (value
-- the sum, timestamp the latest, at most aggregate_max rows each), as
-- Stripe advises at volume; other rows are sent alone with their own
-- identifier.  The grouping is written to the rows (batch = the meter
-- event's identifier) in the lease's transaction, so every resend of a
-- group, after a failure or a sender's death, is the same meter event
-- with the same identifier, value and timestamp: Stripe deduplicates it.
-- A group is leased and reported whole.
--
-- On the way, rows that cannot be sent are settled: a malformed payload
-- or a timestamp older than Stripe accepts (35 days) is dead, a timestamp
-- more than 4 minutes ahead waits until it is not, a row without a
-- customer is parked.
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

-- Marks rows sent: how many were not sent before.  The invitation token
-- of auth.invite is erased.  Unknown ids are ignored here (the one-row
-- form below says 22023).
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

-- Marks a row sent: true the first time, false when it was already sent
-- (a retrying sender).  A dead row that was delivered after all is sent.
-- An unknown id is 22023.
CREATE FUNCTION ipai.outbox_mark_sent(id bigint) RETURNS boolean
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
REVOKE ALL ON FUNCTION ipai.outbox_mark_sent(bigint) FROM PUBLIC;

-- Records a failed attempt at the rows `ids` (one row, or a group sent as
-- one meter event) and returns what they become: 'retry' (due again after
-- the backoff, or Retry-After when later), 'dead' (permanent, or out of
-- attempts or horizon), or 'sent' when they were sent meanwhile.
-- maybe_delivered says whether the receiver may have seen the request (a
-- timeout, a reset connection, a 5xx answer): the rows stay in doubt.
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

-- An operator sends a dead row again (with the rows sent with it as one
-- meter event): due now, with a fresh count of attempts.  True when it was
-- dead, false when it is not (due, waiting or sent: nothing to do).  An
-- unknown id is 22023.  Stripe deduplicates a meter event's identifier for
-- 24 hours only: past that, a row whose earlier attempt may have reached
-- Stripe is resent with a WARNING to check the customer's usage first.
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

-- Trigger (AFTER INSERT, each statement) on ipai.outbox: wakes senders
-- waiting in LISTEN ipai_outbox, at most once per backend every 100 ms
-- (src/outbox_notify.c; the notification is sent at commit).
CREATE FUNCTION ipai._outbox_notify() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'ipai_outbox_notify';
REVOKE ALL ON FUNCTION ipai._outbox_notify() FROM PUBLIC;

-- When the next outbox row is due for a sender whose claims last `lease`
-- (NULL: nothing pending); for a sender deciding how long to sleep.
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

CREATE FUNCTION ipai._grants_outbox() RETURNS void
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
REVOKE ALL ON FUNCTION ipai._grants_outbox() FROM PUBLIC;
