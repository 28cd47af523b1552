-- The outbox: work for the Edge layer (SPEC section 6), written in the
-- same transaction as the change that causes it, claimed by senders with
-- FOR UPDATE SKIP LOCKED and marked sent once.  Only service_role and
-- superusers reach it (no EXECUTE for anon or authenticated, no RLS policy).

-- Claims up to max_rows unsent rows of topic, oldest first: rows nobody
-- holds, or whose claim is older than claim_timeout (a sender that died).
-- Concurrent claimers never get the same row.
-- (The work is in _outbox_claim: PL/pgSQL refuses an input parameter and an
-- output column of the same name, "topic", which the contract has.)
CREATE FUNCTION ipai._outbox_claim(want_topic text, max_rows integer, claim_timeout interval)
	RETURNS TABLE (out_id bigint, out_org_id uuid, out_topic text, out_payload jsonb,
				   out_created_at timestamptz)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF want_topic IS NULL THEN
		RAISE EXCEPTION 'topic must not be null' USING ERRCODE = '22023';
	END IF;
	IF max_rows IS NULL OR max_rows OPERATOR(pg_catalog.<) 1 OR max_rows OPERATOR(pg_catalog.>) 10000 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 10000' USING ERRCODE = '22023';
	END IF;
	IF claim_timeout IS NULL OR claim_timeout OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'claim_timeout must be positive' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
	WITH candidates AS (
		SELECT o.org_id, o.id FROM ipai.outbox o
		 WHERE o.topic OPERATOR(pg_catalog.=) want_topic
		   AND o.sent_at IS NULL
		   AND (o.claimed_at IS NULL
				OR o.claimed_at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) claim_timeout))
		 ORDER BY o.id
		 LIMIT max_rows
		 FOR UPDATE SKIP LOCKED
	)
	UPDATE ipai.outbox o
	   SET claimed_at = pg_catalog.clock_timestamp(),
		   claim_count = o.claim_count OPERATOR(pg_catalog.+) 1
	  FROM candidates c
	 WHERE o.org_id OPERATOR(pg_catalog.=) c.org_id AND o.id OPERATOR(pg_catalog.=) c.id
	RETURNING o.id, o.org_id, o.topic, o.payload, o.created_at;
END
$$;
REVOKE ALL ON FUNCTION ipai._outbox_claim(text, integer, interval) FROM PUBLIC;

CREATE FUNCTION ipai.outbox_claim(topic text, max_rows integer DEFAULT 100,
								  claim_timeout interval DEFAULT '5 minutes')
	RETURNS TABLE (id bigint, org_id uuid, topic text, payload jsonb, created_at timestamptz)
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT * FROM ipai._outbox_claim($1, $2, $3) $$;
REVOKE ALL ON FUNCTION ipai.outbox_claim(text, integer, interval) FROM PUBLIC;

-- Marks a row sent: true the first time, false when it was already sent
-- (a retrying sender).  Secrets in the payload (the invitation token of
-- auth.invite) are erased.  An unknown id is 22023.
CREATE FUNCTION ipai.outbox_mark_sent(id bigint) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
#variable_conflict use_column
DECLARE
	want bigint := outbox_mark_sent.id;
BEGIN
	IF want IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = '22023';
	END IF;
	UPDATE ipai.outbox o
	   SET sent_at = pg_catalog.clock_timestamp(),
		   payload = CASE WHEN o.topic OPERATOR(pg_catalog.=) 'auth.invite'
						  THEN o.payload OPERATOR(pg_catalog.-) 'token'::text ELSE o.payload END
	 WHERE o.id OPERATOR(pg_catalog.=) want AND o.sent_at IS NULL;
	IF FOUND THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT 1 FROM ipai.outbox o WHERE o.id OPERATOR(pg_catalog.=) want) THEN
		RETURN false;
	END IF;
	RAISE EXCEPTION 'outbox row % does not exist', want USING ERRCODE = '22023';
END
$$;
REVOKE ALL ON FUNCTION ipai.outbox_mark_sent(bigint) FROM PUBLIC;

CREATE FUNCTION ipai._grants_outbox() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.outbox_claim(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai._outbox_claim(text, integer, interval) TO service_role;
	GRANT EXECUTE ON FUNCTION ipai.outbox_mark_sent(bigint) TO service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_outbox() FROM PUBLIC;
