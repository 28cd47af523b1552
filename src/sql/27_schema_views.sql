-- Schema area "views": the dashboards and reader views.  They come last
-- because they read the tables of every other area.  Views are created
-- with security_invoker, so RLS of the reader applies.

CREATE FUNCTION ipai._schema_views(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		NULL;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_views(integer) FROM PUBLIC;
