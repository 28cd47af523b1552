-- Part 4: the CMS workflow, one page from draft to publication.
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT id AS acme FROM ipai.organizations WHERE name = 'Acme' \gset
\echo
\echo '=== CMS: approvals enforced by the database, versions by a C trigger ======'
\echo
\echo '--- Carol (editor at Acme) writes a draft.  Every status change is a snapshot; creation is version 1.'
SET ROLE authenticated;
\set ECHO queries
SET ipai.user_id = 'ca201000-0000-4000-8000-000000000001';
SELECT ipai.cms_create_page(:'acme', 'Spring launch',
	'<h1>Spring launch</h1><p>Our new plan ships in May for all customers.</p>') AS page \gset
SELECT slug, status, version FROM ipai.cms_pages WHERE id = :'page';
SELECT ipai.cms_request_approval(:'page', 'Ready for review') IS NOT NULL AS requested;
\set ECHO none
\echo
\echo '--- Carol cannot approve (only admins and owners can, and never their own request).'
\set ON_ERROR_STOP off
\set ECHO queries
SELECT ipai.cms_approve(:'page');
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- Alice (owner) rejects it with a comment; Carol edits the draft and asks again.'
\set ECHO queries
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT ipai.cms_reject(:'page', 'Say which customers, and give the date.') IS NOT NULL AS rejected;
SET ipai.user_id = 'ca201000-0000-4000-8000-000000000001';
UPDATE ipai.cms_pages
   SET body = '<h1>Spring launch</h1><p>Our new Pro plan ships on 12 May for all paying customers.</p>'
 WHERE id = :'page';
SELECT ipai.cms_request_approval(:'page') IS NOT NULL AS requested;
\set ECHO none
\echo
\echo '--- Alice approves and publishes.  Publishing a page that is not approved would be IP004.'
\set ECHO queries
SET ipai.user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT ipai.cms_approve(:'page', 'Good to go') IS NOT NULL AS approved;
SELECT ipai.cms_publish(:'page') AS published \gset
\set ECHO none
\echo 'published as version' :published
\echo
\echo '--- Dave (viewer) cannot edit, and nobody edits the live page in place.'
\set ON_ERROR_STOP off
\set ECHO queries
SET ipai.user_id = 'da7e0000-0000-4000-8000-000000000001';
UPDATE ipai.cms_pages SET body = 'defaced' WHERE id = :'page';
\set ECHO none
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
\echo
\echo '--- The history: one snapshot per status change, the approvals with their comments.'
\set ECHO queries
SELECT version, status, created_by FROM ipai.cms_page_versions WHERE page_id = :'page' ORDER BY version;
SELECT status, request_comment, decision_comment FROM ipai.cms_approvals
 WHERE page_id = :'page' ORDER BY page_version;
\set ECHO none
\echo
\echo '--- What changed between the first draft and the published version (ipai.diff_words):'
\set ECHO queries
SELECT d.op, d.chunk
  FROM ipai.cms_page_versions a, ipai.cms_page_versions b, ipai.diff_words(a.body, b.body) d
 WHERE a.page_id = :'page' AND a.version = 1
   AND b.page_id = :'page' AND b.version = :published;
\set ECHO none
\echo
\echo '--- ipai.cms_diff_html renders it as a side-by-side HTML table, everything escaped (the row that changed):'
\pset format unaligned
\pset tuples_only on
\set ECHO queries
SELECT l FROM regexp_split_to_table(ipai.cms_diff_html(:'page', 1, :published), E'\n') l
 WHERE l ~ '<(del|ins)>';
\set ECHO none
\pset format aligned
\pset tuples_only off
RESET ROLE;
RESET ipai.user_id;
