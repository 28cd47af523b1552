SELECT * FROM ipai.diff_words('the quick brown fox', 'the slow brown dog');

SELECT * FROM ipai.diff_words('one two three', 'one three four');

SELECT * FROM ipai.diff_words('<p>Hello <b>world</b></p> a <b and < c', '<p>Hello <i>world</i></p> a <b or > c');

SELECT * FROM ipai.diff_words('日本語のテキスト 한국어 Tokyo東京', '日本語テキスト。한국어 Tokyo京都');

SELECT * FROM ipai.diff_words('ok 👍 👨‍👩‍👧 🇫🇷 e' || chr(769) || ' x', 'ok 👍🏽 👨‍👩‍👦 🇩🇪 é x');

SELECT * FROM ipai.diff_words('', '');

SELECT * FROM ipai.diff_words('', 'only new');

SELECT * FROM ipai.diff_words('only old', '');

SELECT count(*) FROM ipai.diff_words((SELECT string_agg(md5(i::text), ' ') FROM generate_series(1, 400) i), (SELECT string_agg(CASE WHEN i % 5 = 0 THEN md5((-i)::text) ELSE md5(i::text) END, ' ') FROM generate_series(1, 400) i));

SELECT count(*) FROM ipai.diff_words((SELECT string_agg(md5(i::text), ' ') FROM generate_series(1, 400) i), (SELECT string_agg(md5((-i)::text), ' ') FROM generate_series(1, 400) i));

