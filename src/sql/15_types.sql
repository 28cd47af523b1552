-- Enumerated types of the public contract.  Tables depend on them, which is
-- also what makes DROP EXTENSION without CASCADE refuse while tables exist.

CREATE TYPE ipai.page_status AS ENUM ('draft', 'pending', 'approved', 'published', 'archived');
CREATE TYPE ipai.schedule_action AS ENUM ('publish', 'unpublish');
CREATE TYPE ipai.schedule_status AS ENUM ('pending', 'running', 'done', 'failed');
