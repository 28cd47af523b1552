SET ipai.user_id = '11111111-1111-4111-8111-111111111111';

SELECT ipai.cms_create_page((SELECT id FROM ipai.organizations WHERE name = 'Valgrind Org'), 'Valgrind page', '<p>one two three</p>');

UPDATE ipai.cms_pages SET body = '<p>one two four</p>' WHERE slug = 'valgrind-page';

SELECT ipai.cms_request_approval((SELECT id FROM ipai.cms_pages WHERE slug = 'valgrind-page'));

UPDATE ipai.cms_pages SET status = 'draft', body = '<p>one 2 four</p>' WHERE slug = 'valgrind-page';

SELECT version, status FROM ipai.cms_page_versions ORDER BY version;

SELECT length(ipai.cms_diff_html((SELECT id FROM ipai.cms_pages WHERE slug = 'valgrind-page'), 1, 3));
