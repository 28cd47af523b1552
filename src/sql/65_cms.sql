-- CMS: the page workflow (SPEC section 4).
--
-- The rules live in triggers on ipai.cms_pages (attached in
-- src/sql/24_schema_cms.sql), so they hold for every writer: the functions
-- below and plain INSERTs and UPDATEs alike.  The triggers judge the
-- acting user (ipai.current_user_id()) and the calling role
-- (ipai.caller_is_privileged(), which a SECURITY DEFINER function does not
-- change), so the functions, SECURITY DEFINER to reach their internal
-- helpers, allow exactly what a plain UPDATE by the caller would, plus the
-- bookkeeping a plain UPDATE cannot carry (a comment) and friendly errors.
-- They show another organization's page as unknown (22023), as row-level
-- security would.
--
-- Status machine (anything else is IP004):
--   draft     -> pending    request approval            editor, admin, owner
--   pending   -> approved   approve                      admin, owner; not the requester
--   pending   -> draft      reject (comment required)    admin, owner; not the requester
--   approved  -> published  publish                      admin, owner
--   published -> draft      unpublish                    admin, owner
--   published -> archived   archive                      admin, owner
-- Content (title, body, metadata, content type, slug):
--   draft: editors and up edit freely;
--   pending or approved: an edit sends the page back to draft and voids the
--     request or approval (so what is published is what was approved);
--   published: IP004, unless the same UPDATE unpublishes (status = 'draft');
--   archived: read-only, nothing changes any more (IP004).
-- Viewers change nothing (42501).  A new page starts as a draft, version 1.
--
-- A comment travels from the functions to the triggers in the transaction-
-- local setting ipai_cms.comment; a plain UPDATE may set it the same way
-- (SET LOCAL ipai_cms.comment = '...'), which a rejection needs.

-- C trigger: version numbering (BEFORE) and snapshots (AFTER), src/versions.c
CREATE FUNCTION ipai._cms_pages_version() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ipai_cms_pages_version'
	LANGUAGE C;

-- A URL slug from a title: lower case ASCII letters and digits joined by
-- single hyphens, accents dropped (é -> e), at most 80 characters; 'page'
-- when nothing is left (a title in Chinese, say).
CREATE FUNCTION ipai.cms_slugify(title text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	s text := pg_catalog.lower(coalesce(title, ''));
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8' THEN
		s := pg_catalog.regexp_replace(pg_catalog.normalize(s, 'NFD'), '[\u0300-\u036f]', '', 'g');
	END IF;
	s := pg_catalog.regexp_replace(s, '[^a-z0-9]+', '-', 'g');
	s := pg_catalog.btrim(s, '-');
	s := pg_catalog.rtrim(pg_catalog.left(s, 80), '-');
	IF s OPERATOR(pg_catalog.=) '' THEN
		s := 'page';
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION ipai.cms_slugify(text) IS
	'URL slug of a title: lower-case ASCII words joined by hyphens, accents dropped, at most 80 characters';

-- The first free slug of org for base: base itself, else base-2, base-3...
-- Runs as the caller: a writer of pages of org (editor and up) sees all of
-- them, and nobody can probe the slugs of another organization with it.  A
-- concurrent insert can still take the slug first; ipai.cms_create_page
-- retries then.
CREATE FUNCTION ipai._cms_free_slug(org uuid, base text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	taken boolean;
	top bigint;
BEGIN
	SELECT bool_or(p.slug OPERATOR(pg_catalog.=) base),
		   max(CASE WHEN p.slug OPERATOR(pg_catalog.<>) base
					THEN pg_catalog.substr(p.slug, pg_catalog.length(base) OPERATOR(pg_catalog.+) 2)::numeric END)
	  INTO taken, top
	  FROM ipai.cms_pages p
	 WHERE p.org_id OPERATOR(pg_catalog.=) org
	   AND (p.slug OPERATOR(pg_catalog.=) base
			OR p.slug OPERATOR(pg_catalog.~) ('^' OPERATOR(pg_catalog.||) base OPERATOR(pg_catalog.||) '-[0-9]{1,9}$'));
	IF NOT coalesce(taken, false) THEN
		RETURN base;
	END IF;
	RETURN base OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||)
		   (GREATEST(coalesce(top, 1), 1) OPERATOR(pg_catalog.+) 1)::text;
END
$$;

-- JSON Schema subset for page metadata.
--
-- Validated keywords: type (string or array of: object, array, string,
-- number, integer, boolean, null), enum, const, required, properties,
-- additionalProperties (boolean or schema), items (one schema),
-- minItems, maxItems, minLength, maxLength (characters), minimum, maximum.
-- Annotations accepted and ignored: $schema, $id, $comment, title,
-- description, default, examples, format, readOnly, writeOnly, deprecated.
-- Any other keyword (pattern, oneOf, $ref...) is refused when the schema is
-- stored, so a schema never silently promises more than is checked.

-- Problems of a schema itself, as text (empty array: fine).
CREATE FUNCTION ipai._cms_schema_problems(sch jsonb, path text DEFAULT '$') RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[] := '{}';
	k text;
	v jsonb;
	t jsonb;
BEGIN
	IF pg_catalog.jsonb_typeof(sch) OPERATOR(pg_catalog.<>) 'object' THEN
		RETURN ARRAY[pg_catalog.format('%s: a schema must be a JSON object', path)];
	END IF;
	FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(sch) e LOOP
		CASE k
		WHEN '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples',
			 'format', 'readOnly', 'writeOnly', 'deprecated', 'enum', 'const' THEN
			IF k OPERATOR(pg_catalog.=) 'enum' AND pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'array' THEN
				problems := problems || pg_catalog.format('%s: "enum" must be an array', path);
			END IF;
		WHEN 'type' THEN
			FOR t IN SELECT x FROM pg_catalog.jsonb_array_elements(
						 CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'array'
							  THEN v ELSE pg_catalog.jsonb_build_array(v) END) x LOOP
				IF pg_catalog.jsonb_typeof(t) OPERATOR(pg_catalog.<>) 'string'
				   OR NOT (t OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.=) ANY
						  (ARRAY['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']) THEN
					problems := problems || pg_catalog.format('%s: unknown type %s', path, t);
				END IF;
			END LOOP;
		WHEN 'required' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'array'
			   OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v) x
						   WHERE pg_catalog.jsonb_typeof(x) OPERATOR(pg_catalog.<>) 'string') THEN
				problems := problems || pg_catalog.format('%s: "required" must be an array of strings', path);
			END IF;
		WHEN 'properties' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'object' THEN
				problems := problems || pg_catalog.format('%s: "properties" must be an object', path);
			ELSE
				SELECT problems || coalesce(pg_catalog.array_agg(p), '{}') INTO problems
				  FROM pg_catalog.jsonb_each(v) e,
					   LATERAL pg_catalog.unnest(ipai._cms_schema_problems(
						   e.value, path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) e.key)) p;
			END IF;
		WHEN 'additionalProperties', 'items' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'boolean' AND k OPERATOR(pg_catalog.=) 'additionalProperties' THEN
				NULL;
			ELSE
				problems := problems || ipai._cms_schema_problems(
					v, path OPERATOR(pg_catalog.||) CASE WHEN k OPERATOR(pg_catalog.=) 'items' THEN '[*]' ELSE '.*' END);
			END IF;
		WHEN 'minLength', 'maxLength', 'minItems', 'maxItems' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'number'
			   OR (v OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.<) 0
			   OR (v OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.<>)
				  pg_catalog.trunc((v OPERATOR(pg_catalog.#>>) '{}')::numeric) THEN
				problems := problems || pg_catalog.format('%s: "%s" must be a non-negative integer', path, k);
			END IF;
		WHEN 'minimum', 'maximum' THEN
			IF pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.<>) 'number' THEN
				problems := problems || pg_catalog.format('%s: "%s" must be a number', path, k);
			END IF;
		ELSE
			problems := problems || pg_catalog.format('%s: unsupported keyword "%s"', path, k);
		END CASE;
	END LOOP;
	RETURN problems;
END
$$;

-- Problems of value against schema sch (a schema without problems), as
-- text such as '$.author: is required'; an empty array when it conforms.
CREATE FUNCTION ipai.cms_metadata_problems(sch jsonb, val jsonb, path text DEFAULT '$')
	RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[] := '{}';
	vt text := pg_catalog.jsonb_typeof(val);
	types text[];
	k text;
	v jsonb;
	n numeric;
BEGIN
	IF sch IS NULL OR pg_catalog.jsonb_typeof(sch) OPERATOR(pg_catalog.<>) 'object' THEN
		RETURN problems;
	END IF;
	IF sch ? 'type' THEN
		SELECT pg_catalog.array_agg(x) INTO types
		  FROM pg_catalog.jsonb_array_elements_text(
			   CASE WHEN pg_catalog.jsonb_typeof(sch -> 'type') OPERATOR(pg_catalog.=) 'array'
					THEN sch -> 'type' ELSE pg_catalog.jsonb_build_array(sch -> 'type') END) x;
		IF NOT (vt OPERATOR(pg_catalog.=) ANY (types)
				OR (vt OPERATOR(pg_catalog.=) 'number' AND 'integer' OPERATOR(pg_catalog.=) ANY (types)
					AND (val OPERATOR(pg_catalog.#>>) '{}')::numeric OPERATOR(pg_catalog.=)
						pg_catalog.trunc((val OPERATOR(pg_catalog.#>>) '{}')::numeric))) THEN
			RETURN ARRAY[pg_catalog.format('%s: must be %s, not %s', path,
										   pg_catalog.array_to_string(types, ' or '), vt)];
		END IF;
	END IF;
	IF sch ? 'enum' AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(sch -> 'enum') e
									 WHERE e OPERATOR(pg_catalog.=) val) THEN
		problems := problems || pg_catalog.format('%s: must be one of %s', path, sch -> 'enum');
	END IF;
	IF sch ? 'const' AND (sch -> 'const') OPERATOR(pg_catalog.<>) val THEN
		problems := problems || pg_catalog.format('%s: must be %s', path, sch -> 'const');
	END IF;

	IF vt OPERATOR(pg_catalog.=) 'object' THEN
		IF sch ? 'required' THEN
			FOR k IN SELECT pg_catalog.jsonb_array_elements_text(sch -> 'required') LOOP
				IF NOT val ? k THEN
					problems := problems || pg_catalog.format('%s.%s: is required', path, k);
				END IF;
			END LOOP;
		END IF;
		FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(val) e ORDER BY e.key LOOP
			IF (sch -> 'properties') ? k THEN
				problems := problems || ipai.cms_metadata_problems(sch -> 'properties' -> k, v,
					path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) k);
			ELSIF (sch -> 'additionalProperties') OPERATOR(pg_catalog.=) 'false'::jsonb THEN
				problems := problems || pg_catalog.format('%s.%s: is not allowed', path, k);
			ELSIF pg_catalog.jsonb_typeof(sch -> 'additionalProperties') OPERATOR(pg_catalog.=) 'object' THEN
				problems := problems || ipai.cms_metadata_problems(sch -> 'additionalProperties', v,
					path OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) k);
			END IF;
		END LOOP;
	ELSIF vt OPERATOR(pg_catalog.=) 'array' THEN
		n := pg_catalog.jsonb_array_length(val);
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minItems')::numeric THEN
			problems := problems || pg_catalog.format('%s: needs at least %s items', path, sch ->> 'minItems');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maxItems')::numeric THEN
			problems := problems || pg_catalog.format('%s: allows at most %s items', path, sch ->> 'maxItems');
		END IF;
		IF pg_catalog.jsonb_typeof(sch -> 'items') OPERATOR(pg_catalog.=) 'object' THEN
			SELECT problems || coalesce(pg_catalog.array_agg(p ORDER BY e.i, p), '{}') INTO problems
			  FROM pg_catalog.jsonb_array_elements(val) WITH ORDINALITY e(x, i),
				   LATERAL pg_catalog.unnest(ipai.cms_metadata_problems(sch -> 'items', e.x,
					   pg_catalog.format('%s[%s]', path, e.i OPERATOR(pg_catalog.-) 1))) p;
		END IF;
	ELSIF vt OPERATOR(pg_catalog.=) 'string' THEN
		n := pg_catalog.length(val OPERATOR(pg_catalog.#>>) '{}');
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minLength')::numeric THEN
			problems := problems || pg_catalog.format('%s: needs at least %s characters', path, sch ->> 'minLength');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maxLength')::numeric THEN
			problems := problems || pg_catalog.format('%s: allows at most %s characters', path, sch ->> 'maxLength');
		END IF;
	ELSIF vt OPERATOR(pg_catalog.=) 'number' THEN
		n := (val OPERATOR(pg_catalog.#>>) '{}')::numeric;
		IF n OPERATOR(pg_catalog.<) (sch ->> 'minimum')::numeric THEN
			problems := problems || pg_catalog.format('%s: must be at least %s', path, sch ->> 'minimum');
		END IF;
		IF n OPERATOR(pg_catalog.>) (sch ->> 'maximum')::numeric THEN
			problems := problems || pg_catalog.format('%s: must be at most %s', path, sch ->> 'maximum');
		END IF;
	END IF;
	RETURN problems;
END
$$;
COMMENT ON FUNCTION ipai.cms_metadata_problems(jsonb, jsonb, text) IS
	'What is wrong with page metadata against a content type''s metadata schema (empty when it conforms)';

-- Trigger on content_types: a metadata schema uses only what is validated.
CREATE FUNCTION ipai._content_types_check_schema() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	problems text[];
BEGIN
	IF NEW.metadata_schema IS NOT NULL THEN
		problems := ipai._cms_schema_problems(NEW.metadata_schema);
		IF pg_catalog.cardinality(problems) OPERATOR(pg_catalog.>) 0 THEN
			RAISE EXCEPTION 'invalid metadata schema for content type "%"', NEW.key
				USING ERRCODE = '22023',
					  DETAIL = pg_catalog.array_to_string(problems, E'\n'),
					  HINT = 'Supported keywords: type, enum, const, required, properties, additionalProperties, items, minItems, maxItems, minLength, maxLength, minimum, maximum (and annotations such as title and description).';
		END IF;
		IF (NEW.metadata_schema ? 'type')
		   AND (NEW.metadata_schema -> 'type') OPERATOR(pg_catalog.<>) '"object"'::jsonb THEN
			RAISE EXCEPTION 'invalid metadata schema for content type "%"', NEW.key
				USING ERRCODE = '22023', DETAIL = 'Page metadata is a JSON object: the schema''s type must be "object".';
		END IF;
	END IF;
	RETURN NEW;
END
$$;

-- Raises 22023 unless metadata conforms to the schema of content type ct.
-- Runs as the caller, a member of org who can read its content types.
CREATE FUNCTION ipai._cms_check_metadata(org uuid, ct uuid, metadata jsonb) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	sch jsonb;
	ct_key text;
	problems text[];
BEGIN
	IF ct IS NULL THEN
		RETURN;
	END IF;
	SELECT t.metadata_schema, t.key INTO sch, ct_key FROM ipai.content_types t
	 WHERE t.org_id OPERATOR(pg_catalog.=) org AND t.id OPERATOR(pg_catalog.=) ct;
	problems := ipai.cms_metadata_problems(sch, metadata);
	IF pg_catalog.cardinality(problems) OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'page metadata does not match the schema of content type "%"', ct_key
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.array_to_string(problems, E'\n');
	END IF;
END
$$;

-- Checks that the acting user may move a page of org from status "from" to
-- "to", and raises otherwise: 42501 when the role is too low or someone
-- decides on their own request, IP004 when the transition does not exist,
-- 22023 when a rejection lacks its comment.  by_edit: the move is the
-- side effect of a content edit (pending/approved back to draft), which
-- editors may cause.  Privileged callers (service_role, superusers, the
-- scheduler) pass the role checks but not the four-eyes rule when they act
-- for a user.  Used by the workflow trigger, and by the functions before
-- they update so that a same-status call (approving an approved page)
-- errors the same way.  Runs as the caller (it only reads what a member
-- may read), so calling it directly reveals nothing.
CREATE FUNCTION ipai._cms_check_transition(org uuid, page uuid, from_status ipai.page_status,
										   to_status ipai.page_status, by_edit boolean)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	have ipai.org_role;
	needed ipai.org_role;
	requester uuid;
	verb text;
BEGIN
	verb := CASE
		WHEN to_status OPERATOR(pg_catalog.=) 'pending' THEN 'request approval for'
		WHEN to_status OPERATOR(pg_catalog.=) 'approved' THEN 'approve'
		WHEN to_status OPERATOR(pg_catalog.=) 'published' THEN 'publish'
		WHEN to_status OPERATOR(pg_catalog.=) 'archived' THEN 'archive'
		WHEN by_edit THEN 'edit'
		WHEN from_status OPERATOR(pg_catalog.=) 'pending' THEN 'reject'
		WHEN from_status OPERATOR(pg_catalog.=) 'published' THEN 'unpublish'
		ELSE 'move to draft' END;
	needed := CASE WHEN to_status OPERATOR(pg_catalog.=) 'pending' OR by_edit
				   THEN 'editor' ELSE 'admin' END::ipai.org_role;

	IF NOT ipai.caller_is_privileged() THEN
		have := ipai.org_role_of(org);
		IF have IS NULL THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = 'The acting user is not a member of the page''s organization.';
		ELSIF have OPERATOR(pg_catalog.<) needed THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = pg_catalog.format('This needs role %s or higher; the acting user is %s.', needed, have),
					  HINT = CASE WHEN needed OPERATOR(pg_catalog.=) 'admin'
								  THEN 'Only admins and owners approve, reject, publish, unpublish or archive pages.'
								  ELSE 'Ask an admin of the organization for the editor role.' END;
		END IF;
	END IF;

	IF from_status OPERATOR(pg_catalog.=) to_status THEN
		RAISE EXCEPTION 'page is already %', to_status
			USING ERRCODE = 'IP004',
				  DETAIL = CASE to_status
					  WHEN 'approved' THEN 'Only a page pending approval can be approved.'
					  WHEN 'published' THEN 'Only an approved page can be published.'
					  WHEN 'pending' THEN 'Only a draft can be submitted for approval.'
					  ELSE 'The page is not in the status this step starts from.' END;
	END IF;
	IF NOT ((from_status, to_status) IN (('draft', 'pending'), ('pending', 'approved'),
										 ('pending', 'draft'), ('approved', 'published'),
										 ('published', 'draft'), ('published', 'archived'))
			OR (by_edit AND from_status OPERATOR(pg_catalog.=) 'approved'
				AND to_status OPERATOR(pg_catalog.=) 'draft')) THEN
		RAISE EXCEPTION 'page status cannot change from % to %', from_status, to_status
			USING ERRCODE = 'IP004',
				  DETAIL = 'Allowed: draft to pending (request approval), pending to approved (approve) or to draft (reject), approved to published (publish), published to draft (unpublish) or to archived (archive).',
				  HINT = CASE
					  WHEN from_status OPERATOR(pg_catalog.=) 'archived'
						  THEN 'Archived pages are final; create a new page instead.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'approved'
						  THEN 'Only a page pending approval can be approved.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'published'
						  THEN 'Only an approved page can be published.'
					  WHEN to_status OPERATOR(pg_catalog.=) 'pending'
						  THEN 'Only a draft can be submitted for approval.'
					  ELSE 'Follow the workflow one step at a time.' END;
	END IF;

	-- four eyes: a decision on a request is never taken by its requester
	IF from_status OPERATOR(pg_catalog.=) 'pending' AND NOT by_edit AND actor IS NOT NULL THEN
		SELECT a.requested_by INTO requester FROM ipai.cms_approvals a
		 WHERE a.org_id OPERATOR(pg_catalog.=) org AND a.page_id OPERATOR(pg_catalog.=) page
		   AND a.status OPERATOR(pg_catalog.=) 'pending';
		IF requester OPERATOR(pg_catalog.=) actor THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  DETAIL = 'Nobody approves or rejects their own approval request.',
					  HINT = 'Another admin or owner must decide.';
		END IF;
	END IF;

	IF from_status OPERATOR(pg_catalog.=) 'pending' AND to_status OPERATOR(pg_catalog.=) 'draft'
	   AND NOT by_edit
	   AND coalesce(pg_catalog.btrim(pg_catalog.current_setting('ipai_cms.comment', true)), '')
		   OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'a rejection needs a comment'
			USING ERRCODE = '22023',
				  HINT = 'Call ipai.cms_reject(page_id, comment), or SET LOCAL ipai_cms.comment before the UPDATE.';
	END IF;
END
$$;

-- Trigger (BEFORE INSERT OR UPDATE, each row) on cms_pages: the workflow
-- for every writer; see the top of this file.  It also keeps the
-- bookkeeping columns (who and when) and derives a missing slug.
CREATE FUNCTION ipai._cms_pages_workflow() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	privileged boolean := ipai.caller_is_privileged();
	have ipai.org_role;
	content_changed boolean;
	by_edit boolean := false;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
		IF NOT privileged THEN
			have := ipai.org_role_of(NEW.org_id);
			IF have IS NULL OR have OPERATOR(pg_catalog.<) 'editor' THEN
				RAISE EXCEPTION 'permission denied to create pages'
					USING ERRCODE = '42501',
						  DETAIL = 'Editors, admins and owners create pages.';
			END IF;
		END IF;
		IF NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'a new page must be a draft, not %', NEW.status
				USING ERRCODE = 'IP004',
					  HINT = 'Create the draft, then request approval.';
		END IF;
		IF NEW.slug IS NULL THEN
			NEW.slug := ipai._cms_free_slug(NEW.org_id, ipai.cms_slugify(NEW.title));
		END IF;
		IF actor IS NOT NULL OR NOT privileged THEN
			NEW.created_by := actor;
		END IF;
		NEW.updated_by := NEW.created_by;
		IF NOT privileged THEN
			NEW.created_at := pg_catalog.now();
		END IF;
		NEW.updated_at := NEW.created_at;
		NEW.approved_by := NULL;
		NEW.approved_at := NULL;
		NEW.published_by := NULL;
		NEW.published_at := NULL;
		IF NEW.content_type_id IS NOT NULL THEN
			PERFORM ipai._cms_check_metadata(NEW.org_id, NEW.content_type_id, NEW.metadata);
		END IF;
		RETURN NEW;
	END IF;

	-- UPDATE
	IF NEW.org_id OPERATOR(pg_catalog.<>) OLD.org_id OR NEW.id OPERATOR(pg_catalog.<>) OLD.id THEN
		RAISE EXCEPTION 'a page cannot move to another organization or id'
			USING ERRCODE = '22023';
	END IF;
	IF NOT privileged THEN
		have := ipai.org_role_of(NEW.org_id);
		IF have IS NULL OR have OPERATOR(pg_catalog.<) 'editor' THEN
			RAISE EXCEPTION 'permission denied to edit page'
				USING ERRCODE = '42501',
					  DETAIL = pg_catalog.format('Viewers read pages; changing them needs role editor or higher (the acting user is %s).',
												 coalesce(have::text, 'not a member')),
					  HINT = 'Ask an admin of the organization for the editor role.';
		END IF;
	END IF;

	content_changed := NEW.title IS DISTINCT FROM OLD.title
		OR NEW.body IS DISTINCT FROM OLD.body
		OR NEW.metadata IS DISTINCT FROM OLD.metadata
		OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id
		OR NEW.slug IS DISTINCT FROM OLD.slug;

	IF NOT content_changed AND NEW.status OPERATOR(pg_catalog.=) OLD.status THEN
		-- nothing the workflow knows changed: keep updated_at, no snapshot
		RETURN NEW;
	END IF;

	IF OLD.status OPERATOR(pg_catalog.=) 'archived' THEN
		RAISE EXCEPTION 'archived pages cannot change'
			USING ERRCODE = 'IP004',
				  HINT = 'Archived pages are final; create a new page instead.';
	END IF;

	IF content_changed THEN
		IF OLD.status OPERATOR(pg_catalog.=) ANY ('{pending,approved}'::ipai.page_status[]) THEN
			IF NEW.status OPERATOR(pg_catalog.<>) OLD.status AND NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
				RAISE EXCEPTION 'page content cannot change while it is %', NEW.status
					USING ERRCODE = 'IP004',
						  DETAIL = 'A content edit sends a pending or approved page back to draft.',
						  HINT = 'Edit the page in one statement, then request approval again.';
			END IF;
			-- what is published must be what was approved
			NEW.status := 'draft';
			by_edit := true;
		ELSIF OLD.status OPERATOR(pg_catalog.=) 'published'
			  AND NEW.status OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'a published page cannot be edited'
				USING ERRCODE = 'IP004',
					  DETAIL = 'Its content is what was approved.',
					  HINT = 'Unpublish it first (ipai.cms_unpublish, or set status to draft in the same UPDATE), then edit and request approval.';
		END IF;
		IF NEW.metadata IS DISTINCT FROM OLD.metadata
		   OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id THEN
			PERFORM ipai._cms_check_metadata(NEW.org_id, NEW.content_type_id, NEW.metadata);
		END IF;
	END IF;

	IF NEW.status OPERATOR(pg_catalog.<>) OLD.status THEN
		PERFORM ipai._cms_check_transition(NEW.org_id, NEW.id, OLD.status, NEW.status, by_edit);
		IF NEW.status OPERATOR(pg_catalog.=) 'approved' THEN
			NEW.approved_by := actor;
			NEW.approved_at := pg_catalog.now();
		ELSIF NEW.status OPERATOR(pg_catalog.=) 'published' THEN
			NEW.published_by := actor;
			NEW.published_at := pg_catalog.now();
		ELSIF NEW.status OPERATOR(pg_catalog.=) ANY ('{draft,pending}'::ipai.page_status[]) THEN
			NEW.approved_by := NULL;
			NEW.approved_at := NULL;
		END IF;
	END IF;

	NEW.updated_by := actor;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;

-- Trigger (AFTER UPDATE, each row, when the status changed) on cms_pages:
-- keeps cms_approvals in step with the page and audits the change.
-- SECURITY DEFINER: tenants may not write approval records themselves.
CREATE FUNCTION ipai._cms_pages_approvals() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	actor uuid := ipai.current_user_id();
	note text := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('ipai_cms.comment', true)), '');
	by_edit boolean := NEW.title IS DISTINCT FROM OLD.title
		OR NEW.body IS DISTINCT FROM OLD.body
		OR NEW.metadata IS DISTINCT FROM OLD.metadata
		OR NEW.content_type_id IS DISTINCT FROM OLD.content_type_id
		OR NEW.slug IS DISTINCT FROM OLD.slug;
BEGIN
	IF NEW.status OPERATOR(pg_catalog.=) 'pending' THEN
		INSERT INTO ipai.cms_approvals (org_id, page_id, page_version, requested_by, request_comment)
		VALUES (NEW.org_id, NEW.id, NEW.version, actor, note);
	ELSIF OLD.status OPERATOR(pg_catalog.=) 'pending' THEN
		IF by_edit AND NEW.status OPERATOR(pg_catalog.=) 'draft' THEN
			UPDATE ipai.cms_approvals a
			   SET status = 'voided', voided_by = actor, voided_at = pg_catalog.now(),
				   decision_comment = note
			 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
			   AND a.status OPERATOR(pg_catalog.=) 'pending';
		ELSE
			UPDATE ipai.cms_approvals a
			   SET status = CASE WHEN NEW.status OPERATOR(pg_catalog.=) 'approved'
								 THEN 'approved' ELSE 'rejected' END,
				   reviewer_id = actor, decided_at = pg_catalog.now(), decision_comment = note
			 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
			   AND a.status OPERATOR(pg_catalog.=) 'pending';
		END IF;
	ELSIF OLD.status OPERATOR(pg_catalog.=) 'approved' AND NEW.status OPERATOR(pg_catalog.=) 'draft' THEN
		-- the approval of the content that was just edited
		UPDATE ipai.cms_approvals a
		   SET status = 'voided', voided_by = actor, voided_at = pg_catalog.now()
		 WHERE a.org_id OPERATOR(pg_catalog.=) NEW.org_id AND a.page_id OPERATOR(pg_catalog.=) NEW.id
		   AND a.status OPERATOR(pg_catalog.=) 'approved'
		   AND a.page_version OPERATOR(pg_catalog.=)
			   (SELECT max(b.page_version) FROM ipai.cms_approvals b
				 WHERE b.org_id OPERATOR(pg_catalog.=) NEW.org_id AND b.page_id OPERATOR(pg_catalog.=) NEW.id);
	END IF;
	PERFORM ipai._audit(NEW.org_id, 'cms.page.status', 'cms_page', NEW.id::text,
						pg_catalog.jsonb_build_object('status', OLD.status),
						pg_catalog.jsonb_build_object('status', NEW.status, 'version', NEW.version));
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_pages_approvals() FROM PUBLIC;

-- Trigger (AFTER INSERT OR UPDATE OF status, each row) on cms_approvals:
-- one notification on channel cms_approvals per approval state change,
-- delivered by NOTIFY semantics only when the transaction commits (on
-- Citus through ipai._notify_relay).  SECURITY DEFINER: it writes the
-- relay.  The
-- payload is small and fixed in shape (no comments), far below 8000 bytes.
CREATE FUNCTION ipai._cms_approvals_notify() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	payload text;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.status OPERATOR(pg_catalog.=) OLD.status THEN
		RETURN NULL;
	END IF;
	payload := pg_catalog.json_build_object(
		'org_id', NEW.org_id,
		'page_id', NEW.page_id,
		'approval_id', NEW.id,
		'status', NEW.status,
		'page_status', CASE NEW.status WHEN 'pending' THEN 'pending' WHEN 'approved' THEN 'approved'
						   ELSE 'draft' END,
		'page_version', NEW.page_version,
		'requested_by', NEW.requested_by,
		'actor_id', ipai.current_user_id(),
		'at', pg_catalog.now())::text;
	-- on Citus (this runs on a worker) the coordinator sends it at commit
	IF ipai.is_distributed() THEN
		INSERT INTO ipai._notify_relay (org_id, channel, payload)
		VALUES (NEW.org_id, 'cms_approvals', payload);
	ELSE
		PERFORM pg_catalog.pg_notify('cms_approvals', payload);
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_approvals_notify() FROM PUBLIC;

-- The page, locked for the change about to be made: its organization and
-- status.  22023 when the id is NULL or names no page the caller can see
-- (pages of other organizations look exactly like pages that do not
-- exist).
CREATE FUNCTION ipai._cms_lock_page(page_id uuid, OUT page_org uuid, OUT page_status ipai.page_status)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF page_id IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	-- the organization first, then the lock by it: Citus locks rows of one
	-- organization only
	SELECT c.org_id INTO page_org FROM ipai.cms_pages c
	 WHERE c.id OPERATOR(pg_catalog.=) _cms_lock_page.page_id;
	SELECT c.status INTO page_status FROM ipai.cms_pages c
	 WHERE c.org_id OPERATOR(pg_catalog.=) page_org
	   AND c.id OPERATOR(pg_catalog.=) _cms_lock_page.page_id
	 FOR NO KEY UPDATE;
	IF NOT FOUND
	   OR (NOT ipai.caller_is_privileged() AND ipai.org_role_of(page_org) IS NULL) THEN
		RAISE EXCEPTION 'page "%" does not exist', page_id USING ERRCODE = '22023';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_lock_page(uuid) FROM PUBLIC;

-- Locks page page_id and moves it to status "to" with comment note (NULL
-- for none), through the same trigger-enforced UPDATE a plain statement
-- would run; returns the page's organization and version afterwards.
-- from_required (with verb for the error): the status the page must be in,
-- where the target alone does not say it (reject: pending; unpublish:
-- published), so that rejecting a published page cannot unpublish it.
CREATE FUNCTION ipai._cms_set_status(page_id uuid, to_status ipai.page_status, note text,
									 from_required ipai.page_status, verb text,
									 OUT page_org uuid, OUT page_version integer)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	saved text := pg_catalog.current_setting('ipai_cms.comment', true);
	from_status ipai.page_status;
BEGIN
	SELECT l.page_org, l.page_status INTO page_org, from_status FROM ipai._cms_lock_page(page_id) l;
	IF from_required IS NOT NULL AND from_status OPERATOR(pg_catalog.<>) from_required THEN
		-- permission first, as for every status change
		IF NOT ipai.caller_is_privileged()
		   AND coalesce(ipai.org_role_of(page_org) OPERATOR(pg_catalog.<) 'admin'::ipai.org_role, true) THEN
			RAISE EXCEPTION 'permission denied to % page', verb
				USING ERRCODE = '42501',
					  HINT = 'Only admins and owners approve, reject, publish, unpublish or archive pages.';
		END IF;
		RAISE EXCEPTION 'cannot % a page that is %', verb, from_status
			USING ERRCODE = 'IP004',
				  DETAIL = pg_catalog.format('Only a %s page can be %s.', from_required,
											 CASE verb WHEN 'reject' THEN 'rejected' ELSE verb OPERATOR(pg_catalog.||) 'ed' END);
	END IF;
	PERFORM pg_catalog.set_config('ipai_cms.comment', coalesce(note, ''), true);
	-- same-status calls are no-ops for the trigger: refuse them here alike
	PERFORM ipai._cms_check_transition(page_org, page_id, from_status, to_status, false);
	UPDATE ipai.cms_pages c SET status = to_status
	 WHERE c.org_id OPERATOR(pg_catalog.=) page_org AND c.id OPERATOR(pg_catalog.=) _cms_set_status.page_id
	RETURNING c.version INTO page_version;
	PERFORM pg_catalog.set_config('ipai_cms.comment', coalesce(saved, ''), true);
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_set_status(uuid, ipai.page_status, text, ipai.page_status, text) FROM PUBLIC;

CREATE FUNCTION ipai.cms_create_page(org_id uuid, title text, body text, slug text DEFAULT NULL,
									 content_type text DEFAULT NULL, metadata jsonb DEFAULT '{}')
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := cms_create_page.org_id;
	ct uuid;
	md jsonb := coalesce(cms_create_page.metadata, '{}');
	new_id uuid;
	constraint_name text;
	attempt integer := 0;
BEGIN
	PERFORM ipai.require_org_role(org, 'editor');
	IF title IS NULL OR title OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'page title must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.length(title) OPERATOR(pg_catalog.>) 1000 THEN
		RAISE EXCEPTION 'page title is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 1000 characters are allowed.';
	END IF;
	IF body IS NULL THEN
		RAISE EXCEPTION 'page body must not be null'
			USING ERRCODE = '22023', HINT = 'Pass an empty string for an empty page.';
	END IF;
	IF pg_catalog.jsonb_typeof(md) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'page metadata must be a JSON object' USING ERRCODE = '22023';
	END IF;
	IF slug IS NOT NULL AND slug OPERATOR(pg_catalog.!~) '^[a-z0-9][a-z0-9-]{0,199}$' THEN
		RAISE EXCEPTION 'invalid slug "%"', slug
			USING ERRCODE = '22023',
				  HINT = 'Use lower-case letters, digits and hyphens (at most 200), or pass NULL to derive one from the title.';
	END IF;
	IF content_type IS NOT NULL THEN
		SELECT t.id INTO ct FROM ipai.content_types t
		 WHERE t.org_id OPERATOR(pg_catalog.=) org AND t.key OPERATOR(pg_catalog.=) content_type;
		IF ct IS NULL THEN
			RAISE EXCEPTION 'content type "%" does not exist in this organization', content_type
				USING ERRCODE = '22023';
		END IF;
	END IF;

	LOOP
		BEGIN
			INSERT INTO ipai.cms_pages (org_id, content_type_id, slug, title, body, metadata)
			VALUES (org, ct, slug, title, body, md)
			RETURNING id INTO new_id;
			RETURN new_id;
		EXCEPTION WHEN unique_violation THEN
			GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
			IF constraint_name OPERATOR(pg_catalog.<>) 'cms_pages_slug_unique' THEN
				RAISE;
			END IF;
			IF slug IS NOT NULL THEN
				RAISE EXCEPTION 'slug "%" is already used in this organization', slug
					USING ERRCODE = '23505',
						  HINT = 'Choose another slug, or pass NULL to derive a free one from the title.';
			END IF;
			-- a concurrent page took the derived slug first: derive again
			attempt := attempt OPERATOR(pg_catalog.+) 1;
			IF attempt OPERATOR(pg_catalog.>=) 10 THEN
				RAISE;
			END IF;
		END;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) IS
	'Creates a draft page (version 1); slug derived from the title when NULL; returns its id';

CREATE FUNCTION ipai.cms_request_approval(page_id uuid, comment text DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
	approval uuid;
BEGIN
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'pending', comment, NULL, 'request approval for') s;
	SELECT a.id INTO approval FROM ipai.cms_approvals a
	 WHERE a.org_id OPERATOR(pg_catalog.=) org
	   AND a.page_id OPERATOR(pg_catalog.=) cms_request_approval.page_id
	   AND a.status OPERATOR(pg_catalog.=) 'pending';
	RETURN approval;
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_request_approval(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_request_approval(uuid, text) IS
	'draft -> pending: asks admins to approve the page as it is now; returns the approval id';

-- The id of the approval of page (in org) decided last.
CREATE FUNCTION ipai._cms_last_approval(org uuid, page uuid) RETURNS uuid
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT a.id FROM ipai.cms_approvals a
			 WHERE a.org_id OPERATOR(pg_catalog.=) org AND a.page_id OPERATOR(pg_catalog.=) page
			 ORDER BY a.page_version DESC NULLS LAST, a.requested_at DESC
			 LIMIT 1);
END
$$;
REVOKE ALL ON FUNCTION ipai._cms_last_approval(uuid, uuid) FROM PUBLIC;

CREATE FUNCTION ipai.cms_approve(page_id uuid, comment text DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
BEGIN
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'approved', comment, NULL, 'approve') s;
	RETURN ipai._cms_last_approval(org, page_id);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_approve(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_approve(uuid, text) IS
	'pending -> approved (admin or owner, not the requester); returns the approval id';

CREATE FUNCTION ipai.cms_reject(page_id uuid, comment text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
BEGIN
	IF comment IS NULL OR comment OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'a rejection needs a comment'
			USING ERRCODE = '22023', HINT = 'Tell the author what to change.';
	END IF;
	SELECT s.page_org INTO org FROM ipai._cms_set_status(page_id, 'draft', comment, 'pending', 'reject') s;
	RETURN ipai._cms_last_approval(org, page_id);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_reject(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_reject(uuid, text) IS
	'pending -> draft with a required comment (admin or owner, not the requester); returns the approval id';

CREATE FUNCTION ipai.cms_publish(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'published', NULL, NULL, 'publish') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_publish(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_publish(uuid) IS
	'approved -> published (admin or owner); returns the new version number';

CREATE FUNCTION ipai.cms_unpublish(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'draft', NULL, 'published', 'unpublish') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_unpublish(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_unpublish(uuid) IS
	'published -> draft (admin or owner); returns the new version number';

CREATE FUNCTION ipai.cms_archive(page_id uuid) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN (SELECT s.page_version FROM ipai._cms_set_status(page_id, 'archived', NULL, NULL, 'archive') s);
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_archive(uuid) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_archive(uuid) IS
	'published -> archived (admin or owner), final; returns the new version number';

-- EXECUTE grants of the CMS functions; run by ipai.install_schema().
CREATE FUNCTION ipai._grants_cms() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.cms_create_page(uuid, text, text, text, text, jsonb) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_request_approval(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_approve(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_reject(uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_publish(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_unpublish(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.cms_archive(uuid) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_cms() FROM PUBLIC;
