-- CMS: side-by-side HTML diff of two versions of a page, built on the word
-- diff ipai.diff_words (src/sql/60_diff.sql).

-- Text made safe for HTML element content and attribute values.
CREATE FUNCTION ipai._html_escape(s text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
		pg_catalog.replace(s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');

-- Table rows showing old (left) and new (right) word by word: removed words
-- in <del> on the left, added words in <ins> on the right, everything
-- HTML-escaped.  A row ends at each line break the two texts share, so
-- unchanged lines stay side by side; line breaks inside a change stay in
-- their cell (the stylesheet keeps white space).  Arrays collect the pieces
-- so that a long one-line body costs linear time.
CREATE FUNCTION ipai._cms_diff_rows(old text, new text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	l text[] := '{}';
	r text[] := '{}';
	out_rows text[] := '{}';
	c record;
	parts text[];
	i integer;
BEGIN
	FOR c IN SELECT d.op, ipai._html_escape(d.chunk) AS h FROM ipai.diff_words(old, new) d LOOP
		IF c.op OPERATOR(pg_catalog.=) '=' THEN
			parts := pg_catalog.string_to_array(c.h, E'\n');
			FOR i IN 1 .. pg_catalog.cardinality(parts) LOOP
				IF i OPERATOR(pg_catalog.>) 1 THEN
					out_rows := out_rows || pg_catalog.format(
						'<tr><td class="ipai-diff-old">%s</td><td class="ipai-diff-new">%s</td></tr>',
						pg_catalog.array_to_string(l, ''), pg_catalog.array_to_string(r, ''));
					l := '{}';
					r := '{}';
				END IF;
				IF parts[i] OPERATOR(pg_catalog.<>) '' THEN
					l := l || parts[i];
					r := r || parts[i];
				END IF;
			END LOOP;
		ELSIF c.op OPERATOR(pg_catalog.=) '-' THEN
			l := l || ('<del>' OPERATOR(pg_catalog.||) c.h OPERATOR(pg_catalog.||) '</del>');
		ELSE
			r := r || ('<ins>' OPERATOR(pg_catalog.||) c.h OPERATOR(pg_catalog.||) '</ins>');
		END IF;
	END LOOP;
	out_rows := out_rows || pg_catalog.format(
		'<tr><td class="ipai-diff-old">%s</td><td class="ipai-diff-new">%s</td></tr>',
		pg_catalog.array_to_string(l, ''), pg_catalog.array_to_string(r, ''));
	RETURN pg_catalog.array_to_string(out_rows, E'\n');
END
$$;

-- ipai.cms_diff_html(page_id, from_version, to_version): a self-contained
-- HTML fragment (a <meta charset>, a small <style> scoped to the table's
-- class, and a <table class="ipai-diff">) that reads well opened as a file
-- or inserted into a page.  The left column is always from_version and the
-- right column to_version: with from < to it shows what changed; with
-- from > to it shows the change backwards (what going back would do), and
-- the caption says so; with from = to both columns are the same and the
-- caption says there are no differences.  Sections: title, body, and
-- metadata (pretty-printed JSON) when either version has any.  Page content
-- is always HTML-escaped: a version containing <script> shows the tag as
-- text and runs nothing.
-- Runs as the caller under row-level security: 22023 for a NULL argument,
-- a page the caller cannot see (another organization's) or that does not
-- exist, and a version the page does not have.
CREATE FUNCTION ipai.cms_diff_html(page_id uuid, from_version integer, to_version integer)
	RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	a record;
	b record;
	last_version integer;
	caption text;
	html text;
BEGIN
	IF page_id IS NULL THEN
		RAISE EXCEPTION 'page id must not be null' USING ERRCODE = '22023';
	END IF;
	IF from_version IS NULL OR to_version IS NULL THEN
		RAISE EXCEPTION 'version numbers must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT max(v.version) INTO last_version FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id;
	IF last_version IS NULL THEN
		RAISE EXCEPTION 'page "%" does not exist', page_id USING ERRCODE = '22023';
	END IF;
	SELECT v.* INTO a FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id
	   AND v.version OPERATOR(pg_catalog.=) from_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'page has no version %', from_version
			USING ERRCODE = '22023', DETAIL = pg_catalog.format('Its versions are 1 to %s.', last_version);
	END IF;
	SELECT v.* INTO b FROM ipai.cms_page_versions v
	 WHERE v.page_id OPERATOR(pg_catalog.=) cms_diff_html.page_id
	   AND v.version OPERATOR(pg_catalog.=) to_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'page has no version %', to_version
			USING ERRCODE = '22023', DETAIL = pg_catalog.format('Its versions are 1 to %s.', last_version);
	END IF;

	caption := CASE
		WHEN from_version OPERATOR(pg_catalog.=) to_version
			THEN pg_catalog.format('Version %s compared with itself: no differences.', from_version)
		WHEN from_version OPERATOR(pg_catalog.>) to_version
			THEN pg_catalog.format('Version %s (left) compared with the older version %s (right): the change backwards.',
								   from_version, to_version)
		WHEN a.title OPERATOR(pg_catalog.=) b.title AND a.body OPERATOR(pg_catalog.=) b.body
			 AND a.metadata OPERATOR(pg_catalog.=) b.metadata
			THEN pg_catalog.format('Version %s compared with version %s: same content.', from_version, to_version)
		ELSE pg_catalog.format('Version %s compared with version %s.', from_version, to_version) END;

	html := '<meta charset="utf-8">
<style>
table.ipai-diff{border-collapse:collapse;width:100%;table-layout:fixed;font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328}
table.ipai-diff caption{caption-side:top;text-align:left;padding:6px 0;font-weight:600}
table.ipai-diff th,table.ipai-diff td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left;width:50%}
table.ipai-diff thead th{background:#f6f8fa}
table.ipai-diff tr.ipai-diff-section th{background:#eaeef2;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table.ipai-diff td{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:13px}
table.ipai-diff del{background:#ffd7d5;color:#82071e;text-decoration:line-through}
table.ipai-diff ins{background:#ccffd8;color:#055d20;text-decoration:none}
</style>
<table class="ipai-diff">
<caption>' OPERATOR(pg_catalog.||) ipai._html_escape(caption) OPERATOR(pg_catalog.||) '</caption>
<colgroup><col class="ipai-diff-old"><col class="ipai-diff-new"></colgroup>
<thead><tr><th class="ipai-diff-old">'
		OPERATOR(pg_catalog.||) ipai._html_escape(pg_catalog.format('Version %s · %s · %s', a.version, a.status,
			pg_catalog.to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')))
		OPERATOR(pg_catalog.||) '</th><th class="ipai-diff-new">'
		OPERATOR(pg_catalog.||) ipai._html_escape(pg_catalog.format('Version %s · %s · %s', b.version, b.status,
			pg_catalog.to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')))
		OPERATOR(pg_catalog.||) '</th></tr></thead>
<tbody>
<tr class="ipai-diff-section"><th colspan="2">Title</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(a.title, b.title) OPERATOR(pg_catalog.||) '
<tr class="ipai-diff-section"><th colspan="2">Body</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(a.body, b.body);
	IF a.metadata OPERATOR(pg_catalog.<>) '{}'::jsonb OR b.metadata OPERATOR(pg_catalog.<>) '{}'::jsonb THEN
		html := html OPERATOR(pg_catalog.||) '
<tr class="ipai-diff-section"><th colspan="2">Metadata</th></tr>
' OPERATOR(pg_catalog.||) ipai._cms_diff_rows(pg_catalog.jsonb_pretty(a.metadata), pg_catalog.jsonb_pretty(b.metadata));
	END IF;
	RETURN html OPERATOR(pg_catalog.||) '
</tbody>
</table>
';
END
$$;
REVOKE ALL ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) IS
	'Side-by-side HTML diff of two versions of a page (from left, to right), <del>/<ins> around changed words, content HTML-escaped';

CREATE FUNCTION ipai._grants_cms_diff() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.cms_diff_html(uuid, integer, integer) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_cms_diff() FROM PUBLIC;
