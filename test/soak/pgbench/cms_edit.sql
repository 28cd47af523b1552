-- editors and admins at work on existing pages: edit (an approved page goes
-- back to draft; its schedule will fail), request, reject, schedule an
-- unpublication of a published page, run due publications beside the worker
\set i random(2, 3)
\set what random(1, 6)
\set ms random(0, 1500)
\if :what = 1
SELECT soak.cms_pick(:i, 'approved') AS page \gset
SELECT soak.cms_step(:i, :page, 'edit');
\elif :what = 2
SELECT soak.cms_pick(:i, 'draft') AS page \gset
SELECT soak.cms_step(:i, :page, 'request');
\elif :what = 3
SELECT soak.cms_pick(:i, 'pending') AS page \gset
SELECT soak.cms_step(:i, :page, 'reject');
\elif :what = 4
SELECT soak.cms_pick(:i, 'published') AS page \gset
SELECT soak.cms_schedule(:i, :page, 'unpublish', :ms);
\elif :what = 5
SELECT soak.cms_pick(:i, 'approved') AS page \gset
SELECT soak.cms_schedule(:i, :page, 'publish', :ms);
\else
SELECT soak.run_due();
\endif
