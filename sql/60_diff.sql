-- ipai.diff_words: word diff rows (op, chunk).
\set VERBOSITY default
SET client_min_messages = warning;

-- a helper for this test: does a diff rebuild both texts?
CREATE FUNCTION pg_temp.rebuilds(o text, n text) RETURNS boolean
	LANGUAGE sql AS $$
	SELECT coalesce(string_agg(chunk, '' ORDER BY k) FILTER (WHERE op <> '+'), '') = o
	   AND coalesce(string_agg(chunk, '' ORDER BY k) FILTER (WHERE op <> '-'), '') = n
	  FROM ipai.diff_words(o, n) WITH ORDINALITY AS d(op, chunk, k)
$$;

-- the signature
SELECT p.oid::regprocedure, p.provolatile, p.proisstrict, p.proparallel,
       pg_get_function_result(p.oid)
  FROM pg_proc p WHERE p.oid = 'ipai.diff_words'::regproc;

-- words replaced, spaces kept
SELECT * FROM ipai.diff_words('the quick brown fox', 'the slow brown dog');
-- words inserted and deleted; among equally small edits, the one that
-- keeps words rather than spaces
SELECT * FROM ipai.diff_words('one two three', 'one three four');
SELECT * FROM ipai.diff_words('alpha beta gamma delta', 'beta alpha gamma epsilon delta');
SELECT * FROM ipai.diff_words('Hello world', 'Hello brave new world');
-- punctuation is a token of its own
SELECT * FROM ipai.diff_words('Hello, world!', 'Hello world?');
SELECT * FROM ipai.diff_words('don''t stop', 'do not stop');
-- whitespace runs are tokens
SELECT * FROM ipai.diff_words(E'a b\nc', E'a  b\n\nc');

-- HTML tags are single tokens
SELECT * FROM ipai.diff_words('<p>Hello <b>world</b></p>', '<p>Hello <i>world</i></p>');
SELECT * FROM ipai.diff_words('<a href="/x">link</a>', '<a href="/y">link</a>');
SELECT * FROM ipai.diff_words('<!-- note --><br/>text', '<br/>text');
-- a < without a closing > is punctuation; so is < followed by a space or digit
SELECT * FROM ipai.diff_words('a <b and c', 'a <b or c');
SELECT * FROM ipai.diff_words('if a < b then', 'if a > b then');
SELECT * FROM ipai.diff_words('x <1> y', 'x <2> y');

-- CJK: one token per character
SELECT * FROM ipai.diff_words('日本語のテキスト', '日本語のテキスト。');
SELECT * FROM ipai.diff_words('我爱北京', '我爱上海');
SELECT * FROM ipai.diff_words('한국어 문서', '한국어 새 문서');
SELECT * FROM ipai.diff_words('Tokyo東京2020', 'Tokyo京都2020');
-- accented and non-Latin letters are word characters
SELECT * FROM ipai.diff_words('naïve café', 'naïve cafés');
SELECT * FROM ipai.diff_words('Привет мир', 'Привет, мир');
-- emoji: sequences are never cut (unaligned: psql's idea of their display
-- width changes with its Unicode tables, PostgreSQL 18's among them)
\pset format unaligned
SELECT * FROM ipai.diff_words('ok 👍 done', 'ok 👍🏽 done');
SELECT * FROM ipai.diff_words('family 👨‍👩‍👧 here', 'family 👨‍👩‍👦 here');
SELECT * FROM ipai.diff_words('flag 🇫🇷', 'flag 🇩🇪');
SELECT * FROM ipai.diff_words('smile😀', 'smile😀😀');
\pset format aligned

-- empty strings
SELECT * FROM ipai.diff_words('', '');
SELECT * FROM ipai.diff_words('', 'new text');
SELECT * FROM ipai.diff_words('old text', '');
-- NULL: STRICT, so no rows
SELECT count(*) FROM ipai.diff_words(NULL, 'x');
SELECT count(*) FROM ipai.diff_words('x', NULL);
-- identical texts: one '=' chunk
SELECT * FROM ipai.diff_words('Same text, <b>same</b> 日本 😀.', 'Same text, <b>same</b> 日本 😀.');
-- completely different
SELECT * FROM ipai.diff_words('alpha', 'omega');

-- both texts always rebuild, also for larger texts with many edits
SELECT bool_and(pg_temp.rebuilds(o, n)) AS all_rebuild, count(*)
  FROM (SELECT string_agg(w, ' ') AS o,
               string_agg(CASE WHEN i % 7 = 0 THEN upper(w) WHEN i % 11 = 0 THEN w || ',' ELSE w END, ' ') AS n
          FROM (SELECT i, s, md5((i * s)::text) AS w
                  FROM generate_series(1, 30) s, generate_series(1, 200) i) g
         GROUP BY s) t;
-- a minimal edit: a changed word costs one '-' and one '+'
SELECT op, count(*) FROM ipai.diff_words(
         (SELECT string_agg(i::text, ' ') FROM generate_series(1, 5000) i),
         (SELECT string_agg(CASE WHEN i % 1000 = 0 THEN 'x' ELSE i::text END, ' ') FROM generate_series(1, 5000) i))
 GROUP BY op ORDER BY op;

-- usable in a lateral join, and in parallel-safe plans
SELECT v.id, d.op, d.chunk
  FROM (VALUES (1, 'a b', 'a c'), (2, 'x', 'x')) AS v(id, o, n),
       LATERAL ipai.diff_words(v.o, v.n) AS d
 ORDER BY v.id;

-- two unrelated ~1 MB texts: the work budget ends the search early, and
-- the answer still rebuilds both texts
CREATE TEMP TABLE big AS
SELECT (SELECT string_agg(md5(i::text), ' ') FROM generate_series(1, 30000) i) AS a,
       (SELECT string_agg(md5((-i)::text), ' ') FROM generate_series(1, 30000) i) AS b;
SELECT length(a), length(b), pg_temp.rebuilds(a, b) AS rebuilds FROM big;
-- and a long diff can be cancelled: the search checks for interrupts
SET statement_timeout = '50ms';
SELECT count(*) FROM big, ipai.diff_words(a, b);
RESET statement_timeout;
