-- Local demo data: `supabase db reset` loads it after the migrations (or
-- psql -f supabase/seed.sql).  One organization, "Demo Co", owned by a
-- fixed user id, with a member, some AI-run usage and a draft page.
--
-- To log in as its owner on a local stack, sign up a user and make them a
-- member:  SELECT ipai.add_member('d3e00000-0000-4000-8000-00000000000a',
--                                 '<auth.users id>', 'owner');
-- Run as a superuser (supabase_admin / postgres).  Loading it twice
-- changes nothing.
DO $$
DECLARE
	org uuid := 'd3e00000-0000-4000-8000-00000000000a';
	owner uuid := 'd3e00000-0000-4000-8000-0000000000f1';
	editor uuid := 'd3e00000-0000-4000-8000-0000000000e1';
BEGIN
	IF EXISTS (SELECT 1 FROM ipai.organizations WHERE id = org) THEN
		RETURN;
	END IF;
	INSERT INTO ipai.organizations (id, name, billing_email, timezone)
	VALUES (org, 'Demo Co', 'billing@demo.example', 'Europe/Paris');
	INSERT INTO ipai.org_members (org_id, user_id, role)
	VALUES (org, owner, 'owner'), (org, editor, 'editor');
	PERFORM ipai.record_usage(org, 'ai_runs', 42, 'seed-demo-usage');
	PERFORM set_config('ipai.user_id', editor::text, true);
	PERFORM ipai.cms_create_page(org, 'Welcome to Demo Co',
		'<h1>Welcome</h1><p>This page is a draft waiting for review.</p>');
END
$$;
