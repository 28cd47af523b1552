-- CMS workflow, versions and the diff, called as the Edge layer and psql do.
INSERT INTO hostile_ids SELECT 'page', ipai.cms_create_page((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'org'),
	'Hello hostile world', '<p>First draft.</p>', NULL, NULL, '{"tags": ["a"]}');
SELECT slug, status, version FROM ipai.cms_pages WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page');
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000002';
UPDATE ipai.cms_pages SET body = '<p>Second draft, better.</p>' WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page');
SELECT ipai.cms_request_approval((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page'), 'please') IS NOT NULL;
SET ipai.user_id = 'c0000000-0000-4000-8000-000000000001';
SELECT ipai.cms_approve((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page'), 'ok') IS NOT NULL;
SELECT ipai.cms_publish((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page'));
SELECT version, status, title, body FROM ipai.cms_page_versions WHERE page_id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page') ORDER BY version;
SELECT op, chunk FROM ipai.diff_words('<p>First draft.</p>', '<p>Second draft, better.</p>');
SELECT md5(ipai.cms_diff_html((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page'), 1, 4));
SELECT ipai.cms_slugify('Ça va? Hello World!');
SELECT ipai.cms_unpublish((SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page'));
SELECT status FROM ipai.cms_pages WHERE id OPERATOR(pg_catalog.=) (SELECT id FROM hostile_ids WHERE k OPERATOR(pg_catalog.=) 'page');
