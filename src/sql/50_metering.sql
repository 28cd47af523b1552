-- Metering (SPEC section 3, first half): usage events and live counters,
-- exact entitlement checks, holds, limits where usage is created, Stripe
-- meter events through the outbox, invoice previews.
--
-- The hot paths are C (src/entitlement.c, src/usage_cache.c, src/period.c,
-- src/usage_triggers.c): check_entitlement, consume_entitlement,
-- record_usage.  What is here is PL/pgSQL that is not on the hot path:
-- holds, refresh, invoice preview, and the triggers on other areas'
-- tables.  Every SECURITY DEFINER function pins its search_path and is
-- revoked from PUBLIC; ipai._grants_metering() grants them.

-- C entry points ----------------------------------------------------------

-- The answer of check_entitlement and consume_entitlement.  A named row
-- type (rather than OUT parameters) lets the executor take its descriptor
-- from the type cache instead of rebuilding it on every call.
CREATE TYPE ipai.entitlement_check AS (
	allowed boolean,
	feature text,
	plan_id text,
	current bigint,
	max bigint,
	remaining bigint,
	reason text
);
COMMENT ON TYPE ipai.entitlement_check IS
	'allowed, feature, plan_id, current (used plus held), max and remaining (NULL: unlimited), reason';

CREATE FUNCTION ipai.check_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1)
	RETURNS ipai.entitlement_check
	AS 'MODULE_PATHNAME', 'ipai_check_entitlement'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai.check_entitlement(uuid, text, bigint) FROM PUBLIC;
COMMENT ON FUNCTION ipai.check_entitlement(uuid, text, bigint) IS
	'Would quantity more usage of feature be allowed now?  Reads only; exact';

CREATE FUNCTION ipai.consume_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1,
										 idempotency_key text DEFAULT NULL)
	RETURNS ipai.entitlement_check
	AS 'MODULE_PATHNAME', 'ipai_consume_entitlement'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) IS
	'Checks and records usage atomically; IP001 over a hard limit';

CREATE FUNCTION ipai.record_usage(org_id uuid, feature text, quantity bigint DEFAULT 1,
								  idempotency_key text DEFAULT NULL,
								  occurred_at timestamptz DEFAULT now())
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_record_usage'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) IS
	'Records usage; false when the idempotency key was already recorded with the same quantity';

CREATE FUNCTION ipai.usage_period(org_id uuid, at timestamptz DEFAULT now(),
								  OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_period'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai.usage_period(uuid, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION ipai.usage_period(uuid, timestamptz) IS
	'The usage period containing at: the period of the subscription that grants the plan (active, trialing, past_due), else the calendar month in the organization''s time zone';

-- internal: no permission checks, not granted to anyone
CREATE FUNCTION ipai._usage_period(org_id uuid, feature text, at timestamptz,
								   OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_period_internal'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_period(uuid, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._usage_resolve(org_id uuid, feature text, at timestamptz,
									OUT plan_id text, OUT in_plan boolean, OUT max_quantity bigint,
									OUT hard boolean, OUT counted_by text, OUT metered boolean,
									OUT period_start timestamptz, OUT period_end timestamptz)
	AS 'MODULE_PATHNAME', 'ipai_usage_resolve'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_resolve(uuid, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._record_usage(org_id uuid, feature text, quantity bigint, hold_id uuid)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_record_usage_internal'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._record_usage(uuid, text, bigint, uuid) FROM PUBLIC;

-- a move of the organization's usage periods locks them against the
-- transactions recording usage (src/usage_period_lock.c)
CREATE FUNCTION ipai._usage_periods_lock(org_id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_usage_periods_lock'
	LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_periods_lock(uuid) FROM PUBLIC;

-- why this session's consumes would take the SPI path (NULL: the fast
-- path, src/usage_direct.c)
CREATE FUNCTION ipai._usage_fast_path() RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_usage_fast_path_status'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_fast_path() FROM PUBLIC;

CREATE FUNCTION ipai._raise_usage_limit(feature text, current bigint, held bigint,
										maximum bigint, requested bigint)
	RETURNS void
	AS 'MODULE_PATHNAME', 'ipai_raise_usage_limit'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._raise_usage_limit(text, bigint, bigint, bigint, bigint) FROM PUBLIC;

-- for the view ipai.org_usage_current: NULL for organizations of others
CREATE FUNCTION ipai._usage_period_is_current(org_id uuid, period_start timestamptz)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_usage_period_is_current'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION ipai._usage_period_is_current(uuid, timestamptz) FROM PUBLIC;

CREATE FUNCTION ipai._usage_cache_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_usage_cache_invalidate'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._usage_cache_invalidate() FROM PUBLIC;

-- the cache signals this backend sent (for tests)
CREATE FUNCTION ipai._usage_cache_signals() RETURNS bigint
	AS 'MODULE_PATHNAME', 'ipai_usage_cache_signals'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ipai._usage_cache_signals() FROM PUBLIC;

CREATE FUNCTION ipai._usage_subscription_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_usage_subscription_changed'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._usage_subscription_changed() FROM PUBLIC;

CREATE FUNCTION ipai._seat_limit() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_seat_limit'
	LANGUAGE C;
REVOKE ALL ON FUNCTION ipai._seat_limit() FROM PUBLIC;

-- Stripe meter events -----------------------------------------------------

-- The meter event identifier of a usage event: stable (derived from the
-- event's id) and unique; also the outbox dedupe_key.
CREATE FUNCTION ipai._meter_identifier(org_id uuid, event_id bigint) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT 'ipai_' OPERATOR(pg_catalog.||) $1::pg_catalog.text
				 OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) $2::pg_catalog.text $$;
REVOKE ALL ON FUNCTION ipai._meter_identifier(uuid, bigint) FROM PUBLIC;

-- The outbox payload of a metered usage event: the fields of Stripe's
-- meter events API (event_name, identifier, timestamp in Unix seconds),
-- stripe_customer_id and value flat as the SPEC names them, and the same
-- two again under "payload" as Stripe's API takes them (strings), so a
-- sender can pass it on as it is.  stripe_customer_id is null until the
-- organization has a Stripe customer (see ipai._usage_meter_fill_customers).
CREATE FUNCTION ipai._meter_event_payload(org_id uuid, event_id bigint, event_name text,
										  stripe_customer_id text, value bigint,
										  occurred_at timestamptz)
	RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE
	AS $$ SELECT pg_catalog.jsonb_build_object(
				'event_name', $3,
				'stripe_customer_id', $4,
				'value', $5,
				'identifier', ipai._meter_identifier($1, $2),
				'timestamp', pg_catalog.floor(pg_catalog.date_part('epoch', $6))::pg_catalog.int8,
				'payload', pg_catalog.jsonb_build_object('stripe_customer_id', $4,
														 'value', $5::pg_catalog.text)) $$;
REVOKE ALL ON FUNCTION ipai._meter_event_payload(uuid, bigint, text, text, bigint, timestamptz)
	FROM PUBLIC;

-- Fills the Stripe customer into unsent meter events written before the
-- organization had one (all organizations when only_org is NULL); returns
-- how many.  Senders skip (park) events whose stripe_customer_id is null
-- until then.
CREATE FUNCTION ipai._usage_meter_fill_customers(only_org uuid) RETURNS integer
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
REVOKE ALL ON FUNCTION ipai._usage_meter_fill_customers(uuid) FROM PUBLIC;

-- Trigger (AFTER INSERT OR UPDATE OF stripe_customer_id, each row) on
-- ipai.billing_customers: the organization's pending meter events get
-- their customer.
CREATE FUNCTION ipai._usage_meter_customer() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ipai._usage_meter_fill_customers(NEW.org_id);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_meter_customer() FROM PUBLIC;

-- Counters ----------------------------------------------------------------

-- Recomputes the held quantity of one counter from its active holds that
-- have not expired at "at".  Caller holds the counter's row lock.
CREATE FUNCTION ipai._usage_holds_recount(org_id uuid, feature text, period_start timestamptz,
										  at timestamptz)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	UPDATE ipai.usage_counters c
	   SET (held, hold_expires_at) =
		   (SELECT COALESCE(pg_catalog.sum(h.quantity), 0)::bigint, pg_catalog.min(h.expires_at)
			  FROM ipai.usage_holds h
			 WHERE h.org_id OPERATOR(pg_catalog.=) $1
			   AND h.feature OPERATOR(pg_catalog.=) $2
			   AND h.period_start OPERATOR(pg_catalog.=) $3
			   AND h.status OPERATOR(pg_catalog.=) 'active'
			   AND h.expires_at OPERATOR(pg_catalog.>) $4)
	 WHERE c.org_id OPERATOR(pg_catalog.=) $1
	   AND c.feature OPERATOR(pg_catalog.=) $2
	   AND c.period_start OPERATOR(pg_catalog.=) $3;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_holds_recount(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- Usage periods move: a time zone change, a subscription that starts, is
-- canceled or changes its billing anchor.  A counter therefore counts the
-- events whose occurred_at falls into its window [period_start,
-- period_end), whichever period they were recorded in: "own" events were
-- recorded in this period (and are added to the counter as they come),
-- "carried" ones in another period whose window overlaps (added when the
-- counter is created, and recomputed when the organization's periods
-- change; see ipai._usage_counters_rebase).  A window without an end runs
-- to infinity (features that never reset).
--
-- Events are indexed by (org_id, period_start, occurred_at)
-- (usage_events_period): a window is read period by period, so what other
-- periods carry into a counter is found without reading the counter's own
-- events, whose sum the counter already holds.

-- The usage periods of an organization's events that start before
-- "before", in order: a loose index scan, one probe per period.
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

-- What a window carries: the usage of feature recorded in other periods
-- than period_start with occurred_at inside [period_start, period_end).
-- Reads only those events (and one index probe per period).
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

-- The usage of a window: its own events (recorded in period_start) and
-- what it carries from other periods.
CREATE FUNCTION ipai._usage_window_sums(org_id uuid, feature text, period_start timestamptz,
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
REVOKE ALL ON FUNCTION ipai._usage_window_sums(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- Locks the counter of (org, feature, period), creating it when missing
-- (with the usage other periods recorded inside its window), forgets holds
-- that have expired at "at", and returns used and held.
-- The slow path of consume/record, and the start of every hold operation:
-- whoever holds this row lock decides the limit of that counter.  Events of
-- this period the caller has just inserted are not in a new counter: the
-- caller adds them.
CREATE FUNCTION ipai._usage_counter_lock(org_id uuid, feature text, period_start timestamptz,
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
REVOKE ALL ON FUNCTION ipai._usage_counter_lock(uuid, text, timestamptz, timestamptz, timestamptz)
	FROM PUBLIC;

-- The periods of an organization changed (time zone, subscription):
-- recompute what the counters whose window has not ended carry from other
-- periods, so the period that is current now counts every event inside it.
-- Those counters are locked first (in one order, as everyone locks them):
-- a consume still running on one of them has written its event, and the
-- sums below, read after it committed, count it.  The counter's own events
-- are kept as they are (and not read: see ipai._usage_window_carried).
-- Past periods are left to ipai.refresh_org_usage().
CREATE FUNCTION ipai._usage_counters_rebase(org_id uuid) RETURNS integer
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
REVOKE ALL ON FUNCTION ipai._usage_counters_rebase(uuid) FROM PUBLIC;

-- A subscription that grants a plan with metered features bills the usage
-- inside its period, also usage recorded before the subscription reached
-- the database (its webhooks come seconds after the period starts, and the
-- organization was on another plan meanwhile): writes the missing Stripe
-- meter events of the usage events with occurred_at in [from_at, until_at)
-- to the outbox, once each (the meter identifier is the outbox's dedupe
-- key).  Reads the events of that range period by period
-- (usage_events_period).  Returns how many.
CREATE FUNCTION ipai._usage_meter_backfill(for_org uuid, for_plan text,
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
REVOKE ALL ON FUNCTION ipai._usage_meter_backfill(uuid, text, timestamptz, timestamptz) FROM PUBLIC;

-- A subscription changed (its UPDATE, decided by the C trigger
-- ipai._usage_subscription_changed('periods')): only what changed is
-- done, from the old and the new organization, status, plan and period.
--  - the organization's usage periods move only when the window this
--	  subscription grants moves (or it starts or stops granting): then the
--	  counters whose window has not ended are rebased;
--  - meter events are back-filled for the part of the granted window that
--	  the same plan did not grant before (all of it for a new plan): the
--	  usage of a window already granted was billed when it was recorded or
--	  when the window was granted.
-- Both take time in what is not accounted for yet (see the functions), not
-- in the usage history.
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

-- Trigger (AFTER, each row) on ipai.organizations (time zone changed) and
-- ipai.subscriptions (inserted or deleted): rebase the counters of the
-- organizations concerned and back-fill the meter events of a new
-- subscription's window.  An UPDATE of a subscription is
-- ipai._usage_subscription_moved()'s (through the C trigger
-- ipai._usage_subscription_changed).
CREATE FUNCTION ipai._usage_periods_changed() RETURNS trigger
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
REVOKE ALL ON FUNCTION ipai._usage_periods_changed() FROM PUBLIC;

-- What the holds of a counter row keep back right now (for the view;
-- runs as the reader, so RLS applies to the holds).
CREATE FUNCTION ipai._usage_counter_held(org_id uuid, feature text, period_start timestamptz,
										 held bigint, hold_expires_at timestamptz)
	RETURNS bigint
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF $5 IS NULL THEN
		RETURN 0;
	ELSIF $5 OPERATOR(pg_catalog.>) pg_catalog.now() THEN
		RETURN $4;
	END IF;
	RETURN (SELECT COALESCE(pg_catalog.sum(h.quantity), 0)::bigint
			  FROM ipai.usage_holds h
			 WHERE h.org_id OPERATOR(pg_catalog.=) $1
			   AND h.feature OPERATOR(pg_catalog.=) $2
			   AND h.period_start OPERATOR(pg_catalog.=) $3
			   AND h.status OPERATOR(pg_catalog.=) 'active'
			   AND h.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_counter_held(uuid, text, timestamptz, bigint, timestamptz)
	FROM PUBLIC;

-- Usage events written directly -------------------------------------------

-- Trigger (BEFORE INSERT, each row, WHEN NOT counted_inline) on
-- ipai.usage_events: an event inserted directly (service_role, a DBA) gets
-- its usage period and metered flag like one recorded by record_usage.
CREATE FUNCTION ipai._usage_events_direct() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
BEGIN
	IF NEW.quantity OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023',
			DETAIL = pg_catalog.format('The quantity is %s.', NEW.quantity);
	END IF;
	IF NEW.idempotency_key IS NOT NULL
	   AND pg_catalog.length(NEW.idempotency_key) NOT BETWEEN 1 AND 255 THEN
		RAISE EXCEPTION 'idempotency key must have 1 to 255 characters' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO r FROM ipai._usage_resolve(NEW.org_id, NEW.feature, NEW.occurred_at);
	IF r.counted_by OPERATOR(pg_catalog.<>) 'usage_events' THEN
		RAISE EXCEPTION 'usage of feature "%" cannot be recorded', NEW.feature
			USING ERRCODE = '22023',
				  DETAIL = 'It is counted from what exists (pages, members and invitations).';
	END IF;
	IF NEW.period_start IS NULL THEN
		NEW.period_start := r.period_start;
	END IF;
	NEW.metered := NEW.metered OR (r.in_plan AND r.metered);
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_direct() FROM PUBLIC;

-- Trigger (AFTER INSERT, each row, WHEN NOT counted_inline) on
-- ipai.usage_events: counts a directly inserted event in its counter and,
-- when metered, writes its Stripe meter event, in the same transaction.
-- No limit applies: only privileged roles insert directly, and they report
-- usage that happened.
CREATE FUNCTION ipai._usage_events_count() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	customer text;
	event_name text;
BEGIN
	SELECT * INTO r FROM ipai._usage_resolve(NEW.org_id, NEW.feature, NEW.occurred_at);
	PERFORM 1 FROM ipai._usage_counter_lock(
		NEW.org_id, NEW.feature, NEW.period_start,
		CASE WHEN r.period_start OPERATOR(pg_catalog.=) NEW.period_start THEN r.period_end END,
		pg_catalog.now());
	UPDATE ipai.usage_counters c
	   SET used = c.used OPERATOR(pg_catalog.+) NEW.quantity, updated_at = pg_catalog.now()
	 WHERE c.org_id OPERATOR(pg_catalog.=) NEW.org_id
	   AND c.feature OPERATOR(pg_catalog.=) NEW.feature
	   AND c.period_start OPERATOR(pg_catalog.=) NEW.period_start;
	IF NEW.metered THEN
		SELECT b.stripe_customer_id INTO customer
		  FROM ipai.billing_customers b WHERE b.org_id OPERATOR(pg_catalog.=) NEW.org_id;
		SELECT e.stripe_meter_event_name INTO event_name
		  FROM ipai.plan_entitlements e
		 WHERE e.feature OPERATOR(pg_catalog.=) NEW.feature AND e.metered
		 ORDER BY e.plan_id OPERATOR(pg_catalog.=) r.plan_id DESC, e.plan_id
		 LIMIT 1;
		INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
		VALUES (NEW.org_id, 'stripe.meter_event',
				ipai._meter_event_payload(NEW.org_id, NEW.id, event_name, customer,
										  NEW.quantity, NEW.occurred_at),
				ipai._meter_identifier(NEW.org_id, NEW.id));
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_count() FROM PUBLIC;

-- Trigger (BEFORE UPDATE OR DELETE, each row) on ipai.usage_events: the
-- table is append-only, except that deleting an organization takes its
-- events with it.
CREATE FUNCTION ipai._usage_events_append_only() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE'
	   AND NOT EXISTS (SELECT 1 FROM ipai.organizations o
						WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'table %.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = '42501', DETAIL = pg_catalog.format('%s is not allowed.', TG_OP);
END
$$;
REVOKE ALL ON FUNCTION ipai._usage_events_append_only() FROM PUBLIC;

-- Trigger (AFTER DELETE OR TRUNCATE, each statement) on ipai.organizations:
-- the events of organizations that are gone go too (what ON DELETE CASCADE
-- would do; usage_events has no foreign key, see its table).  One
-- organization at a time: on Citus the trigger fires on a worker's shard,
-- where the transition table cannot go into a distributed statement, and a
-- statement filtered by one organization stays on its colocated shard.
CREATE FUNCTION ipai._usage_events_org_deleted() RETURNS trigger
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
REVOKE ALL ON FUNCTION ipai._usage_events_org_deleted() FROM PUBLIC;

-- Limits on other areas' tables -------------------------------------------

-- Trigger (AFTER INSERT / DELETE / TRUNCATE, each statement, with
-- transition tables) on ipai.cms_pages: keeps the lifetime counters of
-- features counted from pages (cms_items) and refuses inserts beyond the
-- organization's limit (IP001, as consume_entitlement), whoever inserts.
-- The counter row is the lock: concurrent inserts of one organization
-- serialize on it (organizations in order, so no deadlock).
CREATE FUNCTION ipai._cms_pages_usage() RETURNS trigger
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
REVOKE ALL ON FUNCTION ipai._cms_pages_usage() FROM PUBLIC;

-- Trigger (BEFORE INSERT OR UPDATE, each row) on ipai.plan_entitlements:
-- all plans count a feature the same way (counted_by, reset_period), since
-- its counters are shared when an organization changes plans.
CREATE FUNCTION ipai._plan_entitlements_consistent() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	other record;
BEGIN
	SELECT e.plan_id, e.counted_by, e.reset_period INTO other
	  FROM ipai.plan_entitlements e
	 WHERE e.feature OPERATOR(pg_catalog.=) NEW.feature
	   AND e.plan_id OPERATOR(pg_catalog.<>) NEW.plan_id
	   AND (e.counted_by OPERATOR(pg_catalog.<>) NEW.counted_by
			OR e.reset_period OPERATOR(pg_catalog.<>) NEW.reset_period)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'feature "%" is counted differently in plan "%"', NEW.feature, other.plan_id
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('Plan "%s" counts it by %s, reset %s.',
											 other.plan_id, other.counted_by, other.reset_period),
				  HINT = 'Every plan must use the same counted_by and reset_period for a feature.';
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._plan_entitlements_consistent() FROM PUBLIC;

-- Holds -------------------------------------------------------------------

-- Reserves quantity of feature for long-running work (an AI run) for ttl:
-- the hold counts against the limit at once (IP001 when it does not fit a
-- hard limit) and stops counting when it is finalized, released or
-- expired, with no job involved.  Features counted from usage events only.
-- Any member.
CREATE FUNCTION ipai.reserve_entitlement(org_id uuid, feature text, quantity bigint, ttl interval)
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	c record;
	hold uuid;
	expires timestamptz;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'organization id must not be null' USING ERRCODE = '22023';
	ELSIF $2 IS NULL THEN
		RAISE EXCEPTION 'feature must not be null' USING ERRCODE = '22023';
	ELSIF $3 IS NULL OR $3 OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023';
	ELSIF $4 IS NULL OR $4 OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'ttl must be a positive interval' USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role($1, 'viewer');
	SELECT * INTO r FROM ipai._usage_resolve($1, $2, pg_catalog.now());
	IF r.counted_by OPERATOR(pg_catalog.<>) 'usage_events' THEN
		RAISE EXCEPTION 'feature "%" cannot be reserved', $2
			USING ERRCODE = '22023',
				  DETAIL = 'It is counted from what exists (pages, members and invitations).';
	END IF;
	expires := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4;

	SELECT * INTO c FROM ipai._usage_counter_lock($1, $2, r.period_start, r.period_end,
												  pg_catalog.now());
	IF NOT r.in_plan
	   OR (r.hard AND r.max_quantity IS NOT NULL
		   AND ((c.used OPERATOR(pg_catalog.+) c.held) OPERATOR(pg_catalog.+) $3)
			   OPERATOR(pg_catalog.>) r.max_quantity) THEN
		PERFORM ipai._raise_usage_limit($2, c.used OPERATOR(pg_catalog.+) c.held, c.held,
										COALESCE(r.max_quantity, 0), $3);
	END IF;

	INSERT INTO ipai.usage_holds (org_id, feature, quantity, period_start, expires_at, created_by)
	VALUES ($1, $2, $3, r.period_start, expires, ipai.current_user_id())
	RETURNING id INTO hold;
	UPDATE ipai.usage_counters u
	   SET held = u.held OPERATOR(pg_catalog.+) $3,
		   hold_expires_at = LEAST(u.hold_expires_at, expires),
		   updated_at = pg_catalog.now()
	 WHERE u.org_id OPERATOR(pg_catalog.=) $1
	   AND u.feature OPERATOR(pg_catalog.=) $2
	   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
	RETURN hold;
END
$$;
REVOKE ALL ON FUNCTION ipai.reserve_entitlement(uuid, text, bigint, interval) FROM PUBLIC;

-- Records the real usage of a hold and closes it; true when recorded now,
-- false when the hold was already finalized with this quantity (a retry).
-- Usage up to the reserved quantity always fits while the hold counts;
-- beyond it, or once the hold has expired (or its period ended), the usage
-- must fit the limit like a consume (IP001 otherwise, nothing changed).
-- actual_quantity 0 closes the hold without usage.  Any member.
CREATE FUNCTION ipai.finalize_hold(hold_id uuid, actual_quantity bigint)
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
REVOKE ALL ON FUNCTION ipai.finalize_hold(uuid, bigint) FROM PUBLIC;

-- Cancels a hold: true when released now, false when it already was.  A
-- finalized hold cannot be released (22023).  Any member.
CREATE FUNCTION ipai.release_hold(hold_id uuid)
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
REVOKE ALL ON FUNCTION ipai.release_hold(uuid) FROM PUBLIC;

-- Invoices and repair -----------------------------------------------------

-- The invoice of the current usage period so far: the plan's base price
-- plus its metered features (usage inside the period's window that is
-- billed through a Stripe meter event, times the unit price), in currency
-- units.  Owner and admin only.
CREATE FUNCTION ipai.preview_invoice(org_id uuid,
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
REVOKE ALL ON FUNCTION ipai.preview_invoice(uuid) FROM PUBLIC;

-- What ipai.refresh_org_usage() repairs and ipai.health() reports: counters
-- that differ from what they count (the current period's: every event
-- inside its window, whichever period recorded it; other periods: their own
-- events and what they carried; cms_items: the pages), and periods that
-- have events or pages but no counter.  drifted: the usage is wrong (not
-- only the carried part of a correct total).
CREATE FUNCTION ipai._usage_counters_to_repair()
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
REVOKE ALL ON FUNCTION ipai._usage_counters_to_repair() FROM PUBLIC;

-- Recomputes every counter from the usage events (and the pages for
-- cms_items), repairs the ones that drifted, forgets expired holds, and
-- completes meter events written before the Stripe customer was known.
-- A counter counts the events inside its window, whichever period they
-- were recorded in (see ipai._usage_window_sums).  Returns the number of
-- counters repaired.  Safe to run while usage is recorded: candidates are
-- found without locks and each is re-counted under its counter's row lock
-- with a fresh snapshot.  Privileged callers only (pg_cron runs it every 5
-- minutes).
CREATE FUNCTION ipai.refresh_org_usage() RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	r record;
	cur record;
	sums record;
	pend timestamptz;
	repaired integer := 0;
BEGIN
	IF NOT ipai.caller_is_privileged() THEN
		RAISE EXCEPTION 'permission denied for function refresh_org_usage'
			USING ERRCODE = '42501', HINT = 'Run it as service_role or a superuser.';
	END IF;

	FOR r IN SELECT d.org_id, d.feature, d.period_start FROM ipai._usage_counters_to_repair() d
			  ORDER BY 1, 2, 3
	LOOP
		-- period_end of a counter to create, when the period is known
		pend := NULL;
		IF r.period_start OPERATOR(pg_catalog.<>) '-infinity'::timestamptz
		   AND EXISTS (SELECT 1 FROM ipai.plan_entitlements e
						WHERE e.feature OPERATOR(pg_catalog.=) r.feature) THEN
			SELECT CASE WHEN u.period_start OPERATOR(pg_catalog.=) r.period_start
						THEN u.period_end END INTO pend
			  FROM ipai._usage_period(r.org_id, r.feature, r.period_start) u;
		END IF;
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, pend,
												 pg_catalog.now());
		SELECT u.used, u.carried, u.period_end INTO cur
		  FROM ipai.usage_counters u
		 WHERE u.org_id OPERATOR(pg_catalog.=) r.org_id
		   AND u.feature OPERATOR(pg_catalog.=) r.feature
		   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
		IF EXISTS (SELECT 1 FROM ipai.plan_entitlements e
					WHERE e.feature OPERATOR(pg_catalog.=) r.feature
					  AND e.counted_by OPERATOR(pg_catalog.=) 'cms_pages') THEN
			SELECT pg_catalog.count(*)::bigint AS own, 0::bigint AS carried INTO sums
			  FROM ipai.cms_pages pg WHERE pg.org_id OPERATOR(pg_catalog.=) r.org_id;
		ELSE
			SELECT * INTO sums
			  FROM ipai._usage_window_sums(r.org_id, r.feature, r.period_start, cur.period_end);
			-- a window that is over (or not begun) keeps what it carried when
			-- it was current: windows of periods that moved overlap, and the
			-- events of the period that replaced it are not its usage
			IF NOT ipai._usage_period_is_current(r.org_id, r.period_start) THEN
				sums.carried := cur.carried;
			END IF;
		END IF;
		IF cur.used OPERATOR(pg_catalog.<>) (sums.own OPERATOR(pg_catalog.+) sums.carried)
		   OR cur.carried OPERATOR(pg_catalog.<>) sums.carried THEN
			UPDATE ipai.usage_counters u
			   SET used = sums.own OPERATOR(pg_catalog.+) sums.carried, carried = sums.carried,
				   updated_at = pg_catalog.now()
			 WHERE u.org_id OPERATOR(pg_catalog.=) r.org_id
			   AND u.feature OPERATOR(pg_catalog.=) r.feature
			   AND u.period_start OPERATOR(pg_catalog.=) r.period_start;
			IF cur.used OPERATOR(pg_catalog.<>) (sums.own OPERATOR(pg_catalog.+) sums.carried) THEN
				repaired := repaired OPERATOR(pg_catalog.+) 1;
			END IF;
		END IF;
	END LOOP;

	-- holds that expired: recompute what the counters hold back
	FOR r IN SELECT c.org_id, c.feature, c.period_start FROM ipai.usage_counters c
			  WHERE c.hold_expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
			  ORDER BY 1, 2, 3 LOOP
		PERFORM 1 FROM ipai._usage_counter_lock(r.org_id, r.feature, r.period_start, NULL,
												 pg_catalog.now());
	END LOOP;

	PERFORM ipai._usage_meter_fill_customers(NULL);
	RETURN repaired;
END
$$;
REVOKE ALL ON FUNCTION ipai.refresh_org_usage() FROM PUBLIC;

CREATE FUNCTION ipai._grants_metering() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.check_entitlement(uuid, text, bigint) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.consume_entitlement(uuid, text, bigint, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.record_usage(uuid, text, bigint, text, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.usage_period(uuid, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.reserve_entitlement(uuid, text, bigint, interval) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.finalize_hold(uuid, bigint) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.release_hold(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.preview_invoice(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.refresh_org_usage() TO service_role;
	-- used by the view ipai.org_usage_current, which runs as its reader
	GRANT EXECUTE ON FUNCTION ipai._usage_period_is_current(uuid, timestamptz) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._usage_counter_held(uuid, text, timestamptz, bigint, timestamptz)
		TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_metering() FROM PUBLIC;
