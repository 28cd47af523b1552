-- ipai_saas on a Supabase (self-hosted) or plain PostgreSQL database: the
-- extension, its tables and its scheduled jobs.
--
-- The ipai_saas package must be installed on the server first (Debian
-- package, PGXN or from source; README "Installing"): a custom C extension
-- cannot be installed on hosted Supabase projects.  Run as a superuser
-- (supabase_admin / postgres): install_schema() creates roles, tables and
-- grants.  Re-running this file changes nothing.

CREATE EXTENSION IF NOT EXISTS ipai_saas CASCADE;

-- the tables (idempotent, versioned); on Supabase it also adds the tables
-- dashboards watch to the supabase_realtime publication
SELECT ipai.install_schema();

-- pg_cron jobs (refresh usage, run due publications, recover stuck runs),
-- where pg_cron can live: it is preloaded and this is its database
DO $$
BEGIN
	IF pg_catalog.current_setting('cron.database_name', true) IS NOT DISTINCT FROM pg_catalog.current_database()
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pg_cron') THEN
		CREATE EXTENSION IF NOT EXISTS pg_cron;
		PERFORM ipai.schedule_jobs();
	ELSE
		RAISE NOTICE 'pg_cron is not available in database %: scheduled jobs not registered', pg_catalog.current_database()
			USING HINT = 'Preload pg_cron and run SELECT ipai.schedule_jobs() in its database (cron.database_name); the ipai_saas worker publishes on time without it.';
	END IF;
END
$$;
