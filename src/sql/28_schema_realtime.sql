-- Supabase Realtime: clients subscribe to table changes through the
-- publication supabase_realtime (logical replication, pgoutput), and
-- Realtime checks every change against the subscriber's RLS.  Where that
-- publication exists, ipai.install_schema() adds the tables dashboards
-- watch, idempotently and on every call, so a publication created after
-- the first install is filled by the next one.
--
-- Published: the approval queue (cms_approvals), schedules and their
-- outcome (cms_schedule), pages and their status (cms_pages), and
-- subscriptions (status, plan, period).  Not published: usage_counters
-- and usage_events, which change with every consume (thousands a second)
-- and would flood Realtime with messages it must each check against RLS
-- for every subscriber; a dashboard polls ipai.org_usage_current instead.
-- A DBA may add more with ALTER PUBLICATION; nothing here removes them.

-- The tables published to supabase_realtime, in publication order (those
-- that exist: none before ipai.install_schema()).
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

-- Adds what ipai.realtime_tables() names and the publication lacks.
-- Nothing to do without the publication, or when it publishes all tables.
-- Returns the tables added.
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

-- What supabase_realtime publishes of ours and lacks: (published,
-- missing), both NULL when the publication does not exist.
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
