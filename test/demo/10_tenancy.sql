-- Part 1: organizations, members, and what each user can see.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\echo
\echo '=== ipai_saas demo ================================================'
\echo 'One PostgreSQL database as the backbone of a multi-tenant SaaS.'
\echo
\echo '--- Installing: the extension ships code, install_schema() makes the tables'
\set ECHO queries
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
\set ECHO none
\echo
\echo '--- Two companies sign up.  Alice owns Acme, Bob owns Globex (Manila).'
\set ECHO queries
SELECT ipai.create_organization('Acme', 'a11ce000-0000-4000-8000-000000000001') AS acme \gset
SELECT ipai.create_organization('Globex', 'b0b00000-0000-4000-8000-000000000001',
								'billing@globex.example', 'Asia/Manila') AS globex \gset
\set ECHO none
\echo
\echo '--- Alice adds Carol as editor and Dave as viewer.'
\set ECHO queries
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT ipai.add_member(:'acme', 'ca201000-0000-4000-8000-000000000001', 'editor');
SELECT ipai.add_member(:'acme', 'da7e0000-0000-4000-8000-000000000001', 'viewer');
\set ECHO none
\echo
\echo '--- Row-level security: each user, as role authenticated, sees only their organizations.'
SET ROLE authenticated;
\set ECHO queries
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT o.name AS org, m.user_id, m.role FROM ipai.org_members m
  JOIN ipai.organizations o ON o.id = m.org_id ORDER BY o.name, m.role DESC;
SET ipai.user_id = 'b0b00000-0000-4000-8000-000000000001';
SELECT name, plan_id, timezone FROM ipai.organizations;
\set ECHO none
\echo
\echo '--- Dave (viewer) may not add members: the error carries SQLSTATE 42501.'
SET ipai.user_id = 'da7e0000-0000-4000-8000-000000000001';
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.add_member(:'acme', 'e0000000-0000-4000-8000-000000000001', 'viewer');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
RESET ROLE;
RESET ipai.user_id;
