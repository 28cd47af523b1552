-- Identity, organizations, members and the schema installer.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- a query's plan, one line per row, in the notation of PostgreSQL 15 and 16:
-- 17 prints an InitPlan's output as "(InitPlan 1).col1" where they print
-- "$0", and no longer says "(returns $0)"
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
		IF line ~ '^\s*InitPlan 1$' THEN
			line := line || ' (returns $0)';
		END IF;
		RETURN NEXT replace(line, '(InitPlan 1).col1', '$0');
	END LOOP;
END
$$;

-- the installer is idempotent and the roles exist
SELECT ipai.install_schema();
SELECT ipai.install_schema(distributed => false);
SELECT rolname, rolbypassrls FROM pg_roles
 WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY rolname;
SELECT version FROM ipai.schema_version;
-- Citus is not here
SELECT ipai.install_schema(distributed => true);
SELECT ipai.install_schema(NULL);
-- tenant data cannot be dropped with the extension by accident
\set VERBOSITY terse
DROP EXTENSION ipai_saas;
\set VERBOSITY default

-- identity: nobody
RESET ipai.user_id;
SELECT ipai.current_user_id() IS NULL AS anonymous;
-- from ipai.user_id
SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
SELECT ipai.current_user_id();
SET ipai.user_id = 'not-a-uuid';
SELECT ipai.current_user_id();
SET ipai.user_id = '';
-- JWT claims win
SET request.jwt.claims = '{"sub": "22222222-2222-4222-8222-222222222222", "role": "authenticated"}';
SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
SELECT ipai.current_user_id();
-- claims without sub (anon key): fall back to ipai.user_id, then NULL
SET request.jwt.claims = '{"role": "anon"}';
SELECT ipai.current_user_id();
SET ipai.user_id = '';
SELECT ipai.current_user_id() IS NULL AS anonymous;
SET request.jwt.claims = '{"sub": null}';
SELECT ipai.current_user_id() IS NULL AS anonymous;
-- a nested "sub" is not the subject
SET request.jwt.claims = '{"app": {"sub": "22222222-2222-4222-8222-222222222222"}}';
SELECT ipai.current_user_id() IS NULL AS anonymous;
-- malformed claims fail closed
SET request.jwt.claims = 'not json';
SELECT ipai.current_user_id();
SET request.jwt.claims = '["22222222-2222-4222-8222-222222222222"]';
SELECT ipai.current_user_id();
SET request.jwt.claims = '{"sub": 42}';
SELECT ipai.current_user_id();
SET request.jwt.claims = '{"sub": "user_2abc"}';
SELECT ipai.current_user_id();
SET request.jwt.claims = '{"sub": "22222222-2222-4222-8222-22222222222"}';
SELECT ipai.current_user_id();
SET request.jwt.claims = '{"sub": "22222222-2222-4222-8222-222222222222"';
SELECT ipai.current_user_id();
RESET request.jwt.claims;

-- organizations
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
GRANT SELECT, INSERT ON ids TO authenticated;
INSERT INTO ids SELECT 'acme', ipai.create_organization('Acme', '11111111-1111-4111-8111-111111111111');
INSERT INTO ids SELECT 'globex', ipai.create_organization('  Globex  ', '22222222-2222-4222-8222-222222222222',
															 'Billing@Globex.example', 'Asia/Manila');
SELECT o.name, o.plan_id, o.billing_email, o.timezone
  FROM ipai.organizations o JOIN ids USING (id) ORDER BY o.name;
SELECT ids.name, m.user_id, m.role FROM ipai.org_members m JOIN ids ON ids.id = m.org_id ORDER BY 1;
SELECT action, object_type FROM ipai.audit_log a JOIN ids ON ids.id = a.org_id ORDER BY a.id;

-- bad input changes nothing
SELECT count(*) AS orgs_before FROM ipai.organizations;
SELECT ipai.create_organization(NULL, '11111111-1111-4111-8111-111111111111');
SELECT ipai.create_organization('', '11111111-1111-4111-8111-111111111111');
SELECT ipai.create_organization('   ', '11111111-1111-4111-8111-111111111111');
SELECT ipai.create_organization(repeat('x', 201), '11111111-1111-4111-8111-111111111111');
SELECT ipai.create_organization('No owner', NULL);
SELECT ipai.create_organization('Bad zone', '11111111-1111-4111-8111-111111111111', NULL, 'Mars/Olympus');
SELECT ipai.create_organization('Bad mail', '11111111-1111-4111-8111-111111111111', 'not an address');
SELECT count(*) AS orgs_after FROM ipai.organizations;

-- roles: an unknown role name
SELECT ipai.add_member(id, '33333333-3333-4333-8333-333333333333', 'superhero') FROM ids WHERE name = 'acme';
SELECT ipai.add_member(id, '33333333-3333-4333-8333-333333333333', NULL) FROM ids WHERE name = 'acme';
INSERT INTO ipai.org_members (org_id, user_id, role)
SELECT id, '33333333-3333-4333-8333-333333333333', 'superhero' FROM ids WHERE name = 'acme';

-- as a tenant
SET ROLE authenticated;
SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
SELECT name FROM ipai.organizations ORDER BY name;
SELECT count(*) FROM ipai.org_members;
-- creating an organization for someone else is not allowed
SELECT ipai.create_organization('Sneaky', '22222222-2222-4222-8222-222222222222');
-- for oneself it is
INSERT INTO ids SELECT 'own', ipai.create_organization('Own Co');
SELECT name FROM ipai.organizations ORDER BY name;
-- an admin adds an editor; an editor cannot add anyone
SELECT ipai.add_member(id, '33333333-3333-4333-8333-333333333333', 'editor') FROM ids WHERE name = 'acme';
SET ipai.user_id = '33333333-3333-4333-8333-333333333333';
\set VERBOSITY terse
SELECT ipai.add_member(id, '44444444-4444-4444-8444-444444444444', 'viewer') FROM ids WHERE name = 'acme';
\set VERBOSITY default
INSERT INTO ipai.org_members (org_id, user_id, role)
SELECT id, '44444444-4444-4444-8444-444444444444', 'viewer' FROM ids WHERE name = 'acme';
-- a non-member learns nothing; an unknown organization is a bad argument
\set VERBOSITY terse
SELECT ipai.add_member(id, '44444444-4444-4444-8444-444444444444', 'viewer') FROM ids WHERE name = 'globex';
\set VERBOSITY default
SELECT ipai.add_member('99999999-9999-4999-8999-999999999999', '44444444-4444-4444-8444-444444444444');
-- the membership helper runs once per statement (an InitPlan), not per row
SELECT pg_temp.plan_of('SELECT * FROM ipai.org_members') AS "QUERY PLAN";
-- nobody but an owner grants owner
UPDATE ipai.org_members SET role = 'owner' WHERE user_id = '33333333-3333-4333-8333-333333333333';
SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
UPDATE ipai.org_members SET role = 'admin' WHERE user_id = '33333333-3333-4333-8333-333333333333';
SET ipai.user_id = '33333333-3333-4333-8333-333333333333';
UPDATE ipai.org_members SET role = 'owner' WHERE user_id = '33333333-3333-4333-8333-333333333333';
DELETE FROM ipai.org_members WHERE user_id = '11111111-1111-4111-8111-111111111111';
-- the last owner can neither leave nor be demoted
SET ipai.user_id = '11111111-1111-4111-8111-111111111111';
DELETE FROM ipai.org_members WHERE user_id = '11111111-1111-4111-8111-111111111111'
   AND org_id = (SELECT id FROM ids WHERE name = 'acme');
UPDATE ipai.org_members SET role = 'viewer' WHERE user_id = '11111111-1111-4111-8111-111111111111'
   AND org_id = (SELECT id FROM ids WHERE name = 'acme');
-- the plan is not the tenant's to change
UPDATE ipai.organizations SET plan_id = 'pro';
UPDATE ipai.organizations SET timezone = 'Nowhere/Land';
UPDATE ipai.organizations SET name = 'Acme Inc' WHERE name = 'Acme';
-- the audit log is append-only
RESET ROLE;
UPDATE ipai.audit_log SET action = 'x';
DELETE FROM ipai.audit_log;
TRUNCATE ipai.audit_log;
SELECT ids.name, o.name AS org_name, m.user_id, m.role
  FROM ipai.org_members m JOIN ids ON ids.id = m.org_id
  JOIN ipai.organizations o ON o.id = m.org_id ORDER BY 1, 3;
-- deleting an organization takes its members with it
DELETE FROM ipai.organizations WHERE id = (SELECT id FROM ids WHERE name = 'own');
SELECT count(*) FROM ipai.org_members WHERE org_id = (SELECT id FROM ids WHERE name = 'own');
RESET ipai.user_id;
