-- Word diff (diff.c, diff_core.c): the chunks that turn one text into
-- another, for CMS version diffs and anyone comparing two texts.

CREATE FUNCTION ipai.diff_words(old text, new text)
	RETURNS TABLE (op text, chunk text)
	AS 'MODULE_PATHNAME', 'ipai_diff_words'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 50;
COMMENT ON FUNCTION ipai.diff_words(text, text) IS
	'Word diff: rows (op, chunk) in order, op = (both), - (old only) or + (new only); = and - chunks rebuild old, = and + chunks rebuild new; minimal in tokens within a work budget';
