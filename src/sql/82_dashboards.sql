-- Helpers of the dashboard views (src/sql/27_schema_views.sql).
--
-- They run as the caller (SECURITY INVOKER, like the views), so row-level
-- security and the metering functions' own permission checks apply; the
-- views only call them for organizations the caller can see.  On Citus
-- install_schema(distributed => true) marks them IMMUTABLE, a white lie
-- that lets Citus run them on the worker of each row's organization
-- (it runs no other function in a FROM of a query over several shards);
-- they are only ever called with a column, never folded to a constant.

-- Usage of every feature of org's plan against its limit, as the limit
-- checks see it (ipai.check_entitlement: usage of the current period for
-- per-period features, pages that exist for cms_items, members plus open
-- invitations for seats).  percent_used is NULL when unlimited.
CREATE FUNCTION ipai._dashboard_usage(org uuid)
	RETURNS TABLE (feature text, used bigint, max_quantity bigint, remaining bigint,
				   percent_used numeric, enforcement text, metered boolean)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	e record;
	c record;
BEGIN
	FOR e IN
		SELECT pe.feature, pe.max_quantity, pe.enforcement, pe.metered
		  FROM ipai.organizations o
		  JOIN ipai.plan_entitlements pe ON pe.plan_id OPERATOR(pg_catalog.=) o.plan_id
		 WHERE o.id OPERATOR(pg_catalog.=) org
		 ORDER BY pe.feature
	LOOP
		SELECT * INTO c FROM ipai.check_entitlement(org, e.feature, 1);
		feature := e.feature;
		used := c.current;
		max_quantity := c.max;
		remaining := CASE WHEN c.max IS NULL THEN NULL
						  WHEN c.current OPERATOR(pg_catalog.>=) c.max THEN 0
						  ELSE c.max OPERATOR(pg_catalog.-) c.current END;
		percent_used := CASE WHEN c.max IS NULL THEN NULL
							 WHEN c.max OPERATOR(pg_catalog.=) 0 THEN 100.0
							 ELSE pg_catalog.round(100.0 OPERATOR(pg_catalog.*) c.current
												   OPERATOR(pg_catalog./) c.max, 1) END;
		enforcement := e.enforcement;
		metered := e.metered;
		RETURN NEXT;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai._dashboard_usage(uuid) FROM PUBLIC;

-- The usage period of org now (ipai.usage_period).
CREATE FUNCTION ipai._dashboard_period(org uuid)
	RETURNS TABLE (period_start timestamptz, period_end timestamptz)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT p.period_start, p.period_end FROM ipai.usage_period($1, pg_catalog.now()) p $$;
REVOKE ALL ON FUNCTION ipai._dashboard_period(uuid) FROM PUBLIC;

-- Seats of org: used (members plus open invitations), the plan's maximum,
-- what remains (ipai.check_entitlement).
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

-- ipai.preview_invoice(org) for owners and admins (and privileged
-- callers); no row for anyone else, so a viewer's dashboard shows the
-- usage but not the money.
CREATE FUNCTION ipai._dashboard_preview(org uuid)
	RETURNS TABLE (currency text, base_amount numeric, metered_quantity bigint,
				   metered_amount numeric, total numeric)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF ipai.caller_is_privileged() OR ipai.is_org_member(org, 'admin') THEN
		RETURN QUERY SELECT p.currency, p.base_amount, p.metered_quantity, p.metered_amount, p.total
					   FROM ipai.preview_invoice(org) p;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._dashboard_preview(uuid) FROM PUBLIC;

-- Invoice amounts arrive from Stripe in the currency's smallest unit;
-- this gives currency units (zero-decimal currencies as they are).
CREATE FUNCTION ipai._stripe_amount(amount bigint, currency text) RETURNS numeric
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT CASE
		WHEN $1 IS NULL THEN NULL
		WHEN pg_catalog.lower($2) OPERATOR(pg_catalog.=) ANY
			('{bif,clp,djf,gnf,jpy,kmf,krw,mga,pyg,rwf,ugx,vnd,vuv,xaf,xof,xpf}'::text[])
			THEN $1::numeric
		ELSE pg_catalog.round($1::numeric OPERATOR(pg_catalog./) 100, 2) END
$$;
REVOKE ALL ON FUNCTION ipai._stripe_amount(bigint, text) FROM PUBLIC;

CREATE FUNCTION ipai._grants_dashboards() RETURNS void
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
REVOKE ALL ON FUNCTION ipai._grants_dashboards() FROM PUBLIC;
