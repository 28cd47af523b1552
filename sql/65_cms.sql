-- CMS: error texts of the workflow, and the HTML of a version diff.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('c6000000-0000-4000-8000-000000000000', 'Regress CMS', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('c6000000-0000-4000-8000-000000000000', 'c6000000-0000-4000-8000-0000000000f1', 'owner'),
	('c6000000-0000-4000-8000-000000000000', 'c6000000-0000-4000-8000-0000000000a1', 'admin'),
	('c6000000-0000-4000-8000-000000000000', 'c6000000-0000-4000-8000-0000000000e1', 'editor'),
	('c6000000-0000-4000-8000-000000000000', 'c6000000-0000-4000-8000-0000000000c1', 'viewer');
-- a helper to hide the clock in diff headers
CREATE FUNCTION pg_temp.no_clock(html text) RETURNS text LANGUAGE sql
	AS $$ SELECT regexp_replace(html, '\d{4}-\d\d-\d\d \d\d:\d\d UTC', 'YYYY-MM-DD HH:MI UTC', 'g') $$;

SET ROLE authenticated;
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000e1';
INSERT INTO ipai.cms_pages (org_id, id, title, body) VALUES
	('c6000000-0000-4000-8000-000000000000', 'c6000000-0000-4000-8000-0000000000b1', 'Release notes',
	 E'<h1>Release 1.0</h1>\n<p>We fixed three bugs.</p>\n<p>Thanks to all.</p>');
SELECT slug, status, version FROM ipai.cms_pages WHERE id = 'c6000000-0000-4000-8000-0000000000b1';

-- errors, with their details and hints
SELECT ipai.cms_approve('c6000000-0000-4000-8000-0000000000b1');
SELECT ipai.cms_publish('c6000000-0000-4000-8000-0000000000b1');
SELECT ipai.cms_request_approval('c6000000-0000-4000-8000-0000000000b1', 'ready') IS NOT NULL AS requested;
SELECT ipai.cms_request_approval('c6000000-0000-4000-8000-0000000000b1');
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000c1';
UPDATE ipai.cms_pages SET body = 'defaced' WHERE id = 'c6000000-0000-4000-8000-0000000000b1';
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000a1';
SELECT ipai.cms_reject('c6000000-0000-4000-8000-0000000000b1', NULL);
UPDATE ipai.cms_pages SET status = 'draft' WHERE id = 'c6000000-0000-4000-8000-0000000000b1';
UPDATE ipai.cms_pages SET status = 'published' WHERE id = 'c6000000-0000-4000-8000-0000000000b1';
SELECT ipai.cms_unpublish('c6000000-0000-4000-8000-0000000000b1');
SELECT ipai.cms_approve('c6000000-0000-4000-8000-00000000ffff');
-- a plain UPDATE rejection carries its comment in ipai_cms.comment
BEGIN;
SET LOCAL ipai_cms.comment = 'Name the three bugs.';
UPDATE ipai.cms_pages SET status = 'draft' WHERE id = 'c6000000-0000-4000-8000-0000000000b1';
COMMIT;
SELECT status, decision_comment, reviewer_id FROM ipai.cms_approvals
 WHERE page_id = 'c6000000-0000-4000-8000-0000000000b1';

-- the editor answers; the body gains a line and a <script> someone pasted
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000e1';
UPDATE ipai.cms_pages
   SET body = E'<h1>Release 1.1</h1>\n<p>We fixed the login, export and search bugs.</p>\n<script>alert("x")</script>\n<p>Thanks to all.</p>',
	   metadata = '{"audience": "customers"}'
 WHERE id = 'c6000000-0000-4000-8000-0000000000b1';
SELECT ipai.cms_request_approval('c6000000-0000-4000-8000-0000000000b1') IS NOT NULL AS requested;
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000f1';
SELECT ipai.cms_approve('c6000000-0000-4000-8000-0000000000b1', 'Good') IS NOT NULL AS approved;
SELECT ipai.cms_publish('c6000000-0000-4000-8000-0000000000b1') AS version;
UPDATE ipai.cms_pages SET title = 'Hot fix' WHERE id = 'c6000000-0000-4000-8000-0000000000b1';

SELECT version, status, title, created_by FROM ipai.cms_page_versions
 WHERE page_id = 'c6000000-0000-4000-8000-0000000000b1' ORDER BY version;

-- the diff of the first and last versions
\pset format unaligned
\pset tuples_only on
SELECT pg_temp.no_clock(ipai.cms_diff_html('c6000000-0000-4000-8000-0000000000b1', 1, 6));
-- the same versions backwards, and a version with itself (without the stylesheet)
SELECT regexp_replace(pg_temp.no_clock(ipai.cms_diff_html('c6000000-0000-4000-8000-0000000000b1', 6, 1)),
					  '<style>.*</style>\n', '');
SELECT regexp_replace(pg_temp.no_clock(ipai.cms_diff_html('c6000000-0000-4000-8000-0000000000b1', 3, 3)),
					  '<style>.*</style>\n', '');
\pset format aligned
\pset tuples_only off
SELECT ipai.cms_diff_html('c6000000-0000-4000-8000-0000000000b1', 1, 7);
SELECT ipai.cms_diff_html('c6000000-0000-4000-8000-0000000000b1', NULL, 1);

-- metadata schemas
RESET ROLE;
INSERT INTO ipai.content_types (org_id, key, name, metadata_schema) VALUES
	('c6000000-0000-4000-8000-000000000000', 'event', 'Event',
	 '{"type": "object", "required": ["starts", "seats"],
	   "properties": {"starts": {"type": "string"}, "seats": {"type": "integer", "minimum": 1}}}');
INSERT INTO ipai.content_types (org_id, key, name, metadata_schema) VALUES
	('c6000000-0000-4000-8000-000000000000', 'broken', 'Broken',
	 '{"type": "object", "properties": {"a": {"oneOf": []}, "b": {"type": "date"}}, "required": "a"}');
SET ROLE authenticated;
SET ipai.user_id = 'c6000000-0000-4000-8000-0000000000e1';
SELECT ipai.cms_create_page('c6000000-0000-4000-8000-000000000000', 'Meetup', '', NULL, 'event',
							'{"seats": 2.5}');
SELECT ipai.cms_create_page('c6000000-0000-4000-8000-000000000000', 'Meetup', '', 'meetup', 'event',
							'{"starts": "2030-01-01T18:00:00Z", "seats": 40}') IS NOT NULL AS created;
SELECT ipai.cms_create_page('c6000000-0000-4000-8000-000000000000', 'Meetup', '', 'meetup');
RESET ROLE;
RESET ipai.user_id;
