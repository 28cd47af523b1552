-- a page's life: created by the editor, approval requested, approved by
-- the admin, then published now, scheduled within 2 s, or left approved
\set i random(1, 3)
\set mode random(1, 4)
\set ms random(0, 2000)
SELECT soak.cms_create(:i) AS page \gset
SELECT soak.cms_step(:i, :page, 'request');
SELECT soak.cms_step(:i, :page, 'approve') AS page \gset
\if :mode = 1
SELECT soak.cms_step(:i, :page, 'publish');
\elif :mode = 2
SELECT soak.cms_schedule(:i, :page, 'publish', :ms);
\endif
