/*-------------------------------------------------------------------------
 *
 * diff_test.c
 *		Standalone TAP test of src/diff_core.c, built with ASan and UBSan by
 *		test/t/unit_diff.t.
 *
 * What it checks:
 *	- tokenizer rules on hand-written cases;
 *	- edge cases: empty sides, identical texts, invalid UTF-8 and random
 *	  bytes (every input lives in a malloc'd buffer of exactly its length,
 *	  so ASan catches any read past the end);
 *	- thousands of random edit pairs (insert/delete/replace of tokens from
 *	  a vocabulary with HTML, CJK, emoji, combining marks, random unicode):
 *	  both texts rebuild exactly, chunk offsets and ops are consistent, and
 *	  the edit is minimal: deleted + inserted tokens equal n + m - 2 LCS,
 *	  with the LCS computed by plain dynamic programming;
 *	- the budget: two unrelated large documents finish quickly with a
 *	  valid, non-exact diff, as do tiny budgets on many random pairs;
 *	- running out of memory at every allocation returns an error and leaks
 *	  nothing (LeakSanitizer checks at exit).
 *
 * Seed: DIFF_TEST_SEED in the environment, else time; printed as a comment.
 *
 *-------------------------------------------------------------------------
 */
#include "diff_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int	test_number = 0;
static int	failures = 0;

static void
ok(int cond, const char *fmt,...)
{
	va_list		ap;

	test_number++;
	printf("%s %d - ", cond ? "ok" : "not ok", test_number);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		failures++;
	fflush(stdout);
}

/* ---------------- allocator with failure injection ---------------- */

static long alloc_countdown = -1;	/* fail when it reaches 0; -1: never */
static long live_allocs = 0;

static void *
test_alloc(void *arg, size_t size)
{
	void	   *p;

	(void) arg;
	if (alloc_countdown == 0)
		return NULL;
	if (alloc_countdown > 0)
		alloc_countdown--;
	p = malloc(size);
	if (p)
		live_allocs++;
	return p;
}

static void
test_release(void *arg, void *ptr)
{
	(void) arg;
	live_allocs--;
	free(ptr);
}

static long interrupt_calls = 0;

static void
test_interrupt(void *arg)
{
	(void) arg;
	interrupt_calls++;
}

static IpaiDiffEnv
make_env(uint64_t budget)
{
	IpaiDiffEnv env;

	env.alloc = test_alloc;
	env.release = test_release;
	env.interrupt = test_interrupt;
	env.arg = NULL;
	env.budget = budget;
	return env;
}

/* ---------------- random numbers ---------------- */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t	x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static size_t
rnd_below(size_t n)
{
	return n ? (size_t) (rnd() % n) : 0;
}

/* ---------------- growable byte buffer ---------------- */

/* An empty buffer still points somewhere, so offsets into it are defined. */
static char empty_text[1];

#define BUF_INIT {empty_text, 0, 0}

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_add(Buf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 16;
		b->data = realloc(b->data == empty_text ? NULL : b->data, b->cap);
		if (b->data == NULL)
			abort();
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void
buf_free(Buf *b)
{
	if (b->data != empty_text)
		free(b->data);
}

/* Exactly len bytes in their own allocation, so ASan sees over-reads. */
static char *
exact_copy(const char *s, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (p == NULL)
		abort();
	if (len)
		memcpy(p, s, len);
	return p;
}

static size_t
put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* ---------------- checking a result ---------------- */

static char last_error[512];

/*
 * Does res rebuild old and new exactly, with consistent offsets, non-empty
 * chunks, no two neighbours of the same op, '-' before '+', and boundaries
 * on token boundaries?  On failure last_error says why.
 */
static int
check_result(const char *old_text, size_t old_len,
			 const char *new_text, size_t new_len, const IpaiDiffResult *res)
{
	IpaiDiffEnv env = make_env(0);
	size_t		op = 0;
	size_t		np = 0;
	size_t		i;
	size_t	   *bo,
			   *bn;
	size_t		no,
				nn;
	size_t		io = 0,
				in = 0;
	size_t		deleted = 0,
				inserted = 0;
	int			good = 0;

	if (ipai_diff_tokenize(old_text, old_len, &env, &bo, &no) != 0)
		abort();
	if (ipai_diff_tokenize(new_text, new_len, &env, &bn, &nn) != 0)
		abort();

	for (i = 0; i < res->nchunks; i++)
	{
		const IpaiDiffChunk *c = &res->chunks[i];

		if (c->len == 0)
		{
			snprintf(last_error, sizeof(last_error), "chunk %zu is empty", i);
			goto out;
		}
		if (c->old_off != op || c->new_off != np)
		{
			snprintf(last_error, sizeof(last_error),
					 "chunk %zu at %zu/%zu, expected %zu/%zu",
					 i, c->old_off, c->new_off, op, np);
			goto out;
		}
		if (i > 0 && (res->chunks[i - 1].op == c->op ||
					  (res->chunks[i - 1].op == '+' && c->op == '-')))
		{
			snprintf(last_error, sizeof(last_error),
					 "chunk %zu: '%c' after '%c'", i, c->op,
					 res->chunks[i - 1].op);
			goto out;
		}
		if (c->op == '=')
		{
			if (op + c->len > old_len || np + c->len > new_len ||
				memcmp(old_text + op, new_text + np, c->len) != 0)
			{
				snprintf(last_error, sizeof(last_error),
						 "chunk %zu: '=' text differs", i);
				goto out;
			}
			op += c->len;
			np += c->len;
		}
		else if (c->op == '-')
		{
			if (op + c->len > old_len)
			{
				snprintf(last_error, sizeof(last_error),
						 "chunk %zu: '-' past the end", i);
				goto out;
			}
			op += c->len;
		}
		else if (c->op == '+')
		{
			if (np + c->len > new_len)
			{
				snprintf(last_error, sizeof(last_error),
						 "chunk %zu: '+' past the end", i);
				goto out;
			}
			np += c->len;
		}
		else
		{
			snprintf(last_error, sizeof(last_error), "chunk %zu: bad op", i);
			goto out;
		}

		/* chunk ends must be token boundaries; count changed tokens */
		if (c->op != '+')
		{
			size_t		first = io;

			while (io < no && bo[io] < op)
				io++;
			if (bo[io] != op)
			{
				snprintf(last_error, sizeof(last_error),
						 "chunk %zu ends inside an old token", i);
				goto out;
			}
			if (c->op == '-')
				deleted += io - first;
		}
		if (c->op != '-')
		{
			size_t		first = in;

			while (in < nn && bn[in] < np)
				in++;
			if (bn[in] != np)
			{
				snprintf(last_error, sizeof(last_error),
						 "chunk %zu ends inside a new token", i);
				goto out;
			}
			if (c->op == '+')
				inserted += in - first;
		}
	}
	if (op != old_len || np != new_len)
	{
		snprintf(last_error, sizeof(last_error),
				 "chunks cover %zu/%zu of %zu/%zu bytes",
				 op, np, old_len, new_len);
		goto out;
	}
	if (deleted != res->deleted_tokens || inserted != res->inserted_tokens ||
		no != res->old_tokens || nn != res->new_tokens)
	{
		snprintf(last_error, sizeof(last_error), "token counts disagree");
		goto out;
	}
	good = 1;
out:
	free(bo);
	free(bn);
	live_allocs -= 2;
	return good;
}

/* Token list of a text as "tok|tok|tok", for the tokenizer cases. */
static void
tokens_joined(const char *s, char *out, size_t outsz)
{
	IpaiDiffEnv env = make_env(0);
	size_t	   *b;
	size_t		n,
				i,
				pos = 0;

	if (ipai_diff_tokenize(s, strlen(s), &env, &b, &n) != 0)
		abort();
	out[0] = '\0';
	for (i = 0; i < n; i++)
	{
		size_t		len = b[i + 1] - b[i];

		if (pos + len + 2 >= outsz)
			break;
		if (i > 0)
			out[pos++] = '|';
		memcpy(out + pos, s + b[i], len);
		pos += len;
		out[pos] = '\0';
	}
	free(b);
	live_allocs--;
}

/*
 * Minimal number of deleted + inserted tokens, by dynamic programming over
 * the token strings (independent of the diff's interning).
 */
static size_t
dp_edit_cost(const char *a, size_t alen, const char *b, size_t blen)
{
	IpaiDiffEnv env = make_env(0);
	size_t	   *ba,
			   *bb;
	size_t		n,
				m,
				i,
				j;
	size_t	   *prev,
			   *cur;
	size_t		lcs;

	if (ipai_diff_tokenize(a, alen, &env, &ba, &n) != 0 ||
		ipai_diff_tokenize(b, blen, &env, &bb, &m) != 0)
		abort();
	prev = calloc(m + 1, sizeof(size_t));
	cur = calloc(m + 1, sizeof(size_t));
	for (i = 1; i <= n; i++)
	{
		for (j = 1; j <= m; j++)
		{
			size_t		la = ba[i] - ba[i - 1];
			size_t		lb = bb[j] - bb[j - 1];

			if (la == lb && memcmp(a + ba[i - 1], b + bb[j - 1], la) == 0)
				cur[j] = prev[j - 1] + 1;
			else
				cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
		}
		memcpy(prev, cur, (m + 1) * sizeof(size_t));
	}
	lcs = prev[m];
	free(prev);
	free(cur);
	free(ba);
	free(bb);
	live_allocs -= 2;
	return n + m - 2 * lcs;
}

/* ---------------- random documents ---------------- */

static const char *const vocabulary[] = {
	"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "a",
	"b", "c", "x", "Postgres", "SaaS", "2024", "42", "naïve", "café",
	"Ωmega", "straße", "e\xcc\x81t\xc3\xa9", "Привет", "مرحبا",
	" ", " ", " ", " ", "  ", "\n", "\n\n", "\t", "\xc2\xa0",
	",", ".", "!", "?", "'", "\"", "(", ")", "-", ";", ":", "&amp;", "&",
	"<p>", "</p>", "<b class=\"x\">", "</b>", "<br/>", "<!-- note -->",
	"<a href='/x?y=1&z=2'>", "</a>", "<", ">", "< b", "a<b",
	"日本", "語", "漢字", "한국어", "カタカナ", "ひらがな", "、", "。", "「", "」",
	"\xef\xbc\x81",				/* fullwidth ! */
	"\xf0\x9f\x98\x80",			/* grinning face */
	"\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",	/* thumbs up, skin tone */
	"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",
	"\xf0\x9f\x87\xab\xf0\x9f\x87\xb7",	/* flag FR */
	"\xe2\x80\x94", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x82\xac",
};

#define NVOCAB (sizeof(vocabulary) / sizeof(vocabulary[0]))

/* A random piece: mostly vocabulary, sometimes random code points. */
static void
random_piece(Buf *b)
{
	if (rnd_below(10) > 0)
	{
		const char *w = vocabulary[rnd_below(NVOCAB)];

		buf_add(b, w, strlen(w));
	}
	else
	{
		static const uint32_t ranges[][2] = {
			{0x20, 0x7E}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x370, 0x3FF},
			{0x590, 0x6FF}, {0x1100, 0x11FF}, {0x2000, 0x206F},
			{0x2190, 0x2BFF}, {0x3000, 0x30FF}, {0x4E00, 0x9FFF},
			{0xAC00, 0xD7A3}, {0xFE00, 0xFE0F}, {0xFF00, 0xFFEF},
			{0x1F1E6, 0x1F1FF}, {0x1F300, 0x1FAFF}, {0x20000, 0x2A6DF},
			{0xE0020, 0xE007F},
		};
		size_t		r = rnd_below(sizeof(ranges) / sizeof(ranges[0]));
		size_t		count = 1 + rnd_below(3);
		char		tmp[4];

		while (count-- > 0)
		{
			uint32_t	cp = ranges[r][0] +
				(uint32_t) rnd_below(ranges[r][1] - ranges[r][0] + 1);

			buf_add(b, tmp, put_utf8(tmp, cp));
		}
	}
}

static void
random_doc(Buf *out, size_t npieces)
{
	size_t		i;

	for (i = 0; i < npieces; i++)
		random_piece(out);
}

/*
 * Copy src into dst with random edits at piece granularity: src is re-read
 * as a sequence of pieces by re-generating nothing; instead we cut at random
 * byte offsets that fall on UTF-8 character starts.
 */
static void
random_edit(const Buf *src, Buf *dst, size_t nedits)
{
	size_t	   *cuts = malloc((nedits * 2 + 2) * sizeof(size_t));
	size_t		ncuts = 0;
	size_t		i,
				pos = 0;

	for (i = 0; i < nedits * 2; i++)
	{
		size_t		c = src->len ? rnd_below(src->len + 1) : 0;

		/* move back to a character start */
		while (c > 0 && c < src->len &&
			   ((unsigned char) src->data[c] & 0xC0) == 0x80)
			c--;
		cuts[ncuts++] = c;
	}
	/* sort cuts (few) */
	for (i = 1; i < ncuts; i++)
	{
		size_t		v = cuts[i],
					j = i;

		while (j > 0 && cuts[j - 1] > v)
		{
			cuts[j] = cuts[j - 1];
			j--;
		}
		cuts[j] = v;
	}
	for (i = 0; i + 1 < ncuts; i += 2)
	{
		size_t		from = cuts[i],
					to = cuts[i + 1];
		int			kind = (int) rnd_below(3);

		buf_add(dst, src->data + pos, from - pos);
		if (kind == 0)			/* delete a short stretch */
			to = from + (to - from > 12 ? 12 : to - from);
		else if (kind == 1)		/* insert */
			to = from;
		if (kind != 0)
		{
			size_t		k = 1 + rnd_below(4);

			while (k-- > 0)
				random_piece(dst);
		}
		else
		{
			while (to < src->len &&
				   ((unsigned char) src->data[to] & 0xC0) == 0x80)
				to++;
		}
		if (kind == 2)			/* replace: drop a short stretch too */
		{
			to = from + (to - from > 12 ? 12 : to - from);
			while (to < src->len &&
				   ((unsigned char) src->data[to] & 0xC0) == 0x80)
				to++;
		}
		pos = to;
	}
	buf_add(dst, src->data + pos, src->len - pos);
	free(cuts);
}

/* ---------------- the tests ---------------- */

static int
diff_and_check(const char *a, size_t alen, const char *b, size_t blen,
			   uint64_t budget, IpaiDiffResult *res)
{
	IpaiDiffEnv env = make_env(budget);
	char	   *ca = exact_copy(a, alen);
	char	   *cb = exact_copy(b, blen);
	int			good;

	if (ipai_diff_compute(ca, alen, cb, blen, &env, res) != IPAI_DIFF_OK)
	{
		snprintf(last_error, sizeof(last_error), "compute failed");
		free(ca);
		free(cb);
		return 0;
	}
	good = check_result(ca, alen, cb, blen, res);
	free(ca);
	free(cb);
	return good;
}

static void
test_tokenizer(void)
{
	static const char *const cases[][2] = {
		{"Hello, world!", "Hello|,| |world|!"},
		{"don't stop", "don|'|t| |stop"},
		{"a  b\t\nc", "a|  |b|\t\n|c"},
		{"snake_case x1y2", "snake|_|case| |x1y2"},
		{"<p class=\"a\">Hi</p>", "<p class=\"a\">|Hi|</p>"},
		{"<!-- c --><br/>", "<!-- c -->|<br/>"},
		{"a < b > c", "a| |<| |b| |>| |c"},
		{"a<b", "a|<|b"},
		{"x <1> y", "x| |<|1|>| |y"},
		{"<p", "<|p"},
		{"naïve café", "naïve| |café"},
		{"e\xcc\x81t\xc3\xa9", "e\xcc\x81t\xc3\xa9"},
		{"日本語です", "日|本|語|で|す"},
		{"한국어 텍스트", "한|국|어| |텍|스|트"},
		{"Tokyo東京2020", "Tokyo|東|京|2020"},
		{"「引用」。", "「|引|用|」|。"},
		{"\xef\xbc\xa1\xef\xbc\xa2", "\xef\xbc\xa1|\xef\xbc\xa2"},
		{"hi\xf0\x9f\x98\x80!", "hi|\xf0\x9f\x98\x80|!"},
		{"\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ok",
		"\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd| |ok"},
		{"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7x",
		"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7|x"},
		{"\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa",
		"\xf0\x9f\x87\xab\xf0\x9f\x87\xb7|\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa"},
		{"a\xc2\xa0" "b\xe3\x80\x80" "c", "a|\xc2\xa0|b|\xe3\x80\x80|c"},
		{"price: 5\xe2\x82\xac \xe2\x80\x94 ok", "price|:| |5|\xe2\x82\xac| |\xe2\x80\x94| |ok"},
		{"\xff\xfe" "ab\xc3", "\xff|\xfe|ab|\xc3"},
		{"\xe6\x97", "\xe6|\x97"},
		{"", ""},
	};
	size_t		i;
	char		got[512];
	int			all = 1;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		tokens_joined(cases[i][0], got, sizeof(got));
		if (strcmp(got, cases[i][1]) != 0)
		{
			printf("# tokenize \"%s\": got \"%s\", want \"%s\"\n",
				   cases[i][0], got, cases[i][1]);
			all = 0;
		}
	}
	ok(all, "tokenizer: %zu hand-written cases",
	   sizeof(cases) / sizeof(cases[0]));
}

static void
test_edges(void)
{
	IpaiDiffResult res;
	IpaiDiffEnv env = make_env(0);
	int			good;

	good = diff_and_check("", 0, "", 0, 0, &res) && res.nchunks == 0;
	ipai_diff_free_result(&env, &res);
	ok(good, "both empty: no chunks");

	good = diff_and_check(NULL, 0, NULL, 0, 0, &res) && res.nchunks == 0;
	ipai_diff_free_result(&env, &res);
	ok(good, "NULL pointers with length 0: no chunks");

	good = diff_and_check("", 0, "new text", 8, 0, &res) &&
		res.nchunks == 1 && res.chunks[0].op == '+' && res.inserted_tokens == 3;
	ipai_diff_free_result(&env, &res);
	ok(good, "old empty: one '+' chunk");

	good = diff_and_check("old text", 8, "", 0, 0, &res) &&
		res.nchunks == 1 && res.chunks[0].op == '-' && res.deleted_tokens == 3;
	ipai_diff_free_result(&env, &res);
	ok(good, "new empty: one '-' chunk");

	good = diff_and_check("same <b>text</b> 日本", strlen("same <b>text</b> 日本"),
						  "same <b>text</b> 日本", strlen("same <b>text</b> 日本"),
						  0, &res) &&
		res.nchunks == 1 && res.chunks[0].op == '=' && res.exact;
	ipai_diff_free_result(&env, &res);
	ok(good, "identical: one '=' chunk");

	good = diff_and_check("the quick brown fox", 19, "the slow brown dog", 18,
						  0, &res) &&
		res.nchunks == 6 && res.deleted_tokens == 2 && res.inserted_tokens == 2;
	ipai_diff_free_result(&env, &res);
	ok(good, "two words replaced: = - + = - + (%s)", good ? "" : last_error);

	good = diff_and_check("one two three", 13, "one three four", 14, 0, &res) &&
		res.nchunks == 4 && res.chunks[1].op == '-' && res.chunks[1].len == 4 &&
		res.chunks[2].op == '=' && res.chunks[2].len == 5;
	ipai_diff_free_result(&env, &res);
	ok(good, "equal-cost edits keep words: one [-two ]three[+ four]");

	good = diff_and_check("a\xe6\x97", 3, "a\xe6\x97\xa5", 4, 0, &res) &&
		res.exact;
	ipai_diff_free_result(&env, &res);
	ok(good, "truncated UTF-8 at the end of old");

	good = diff_and_check("<p", 2, "<p>", 3, 0, &res);
	ipai_diff_free_result(&env, &res);
	ok(good, "unterminated tag becomes terminated");
}

/* Random bytes, including invalid UTF-8 and stray '<', '>'. */
static void
test_random_bytes(int rounds)
{
	int			i;
	int			all = 1;
	IpaiDiffEnv env = make_env(0);

	for (i = 0; i < rounds && all; i++)
	{
		Buf			a = BUF_INIT,
					b = BUF_INIT;
		size_t		la = rnd_below(64),
					lb = rnd_below(64),
					k;
		IpaiDiffResult res;
		static const char alphabet[] = "ab <>/!\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\x80\xff";

		for (k = 0; k < la; k++)
		{
			char		c = rnd_below(4) ? alphabet[rnd_below(sizeof(alphabet) - 1)]
				: (char) rnd();

			buf_add(&a, &c, 1);
		}
		for (k = 0; k < lb; k++)
		{
			char		c = rnd_below(4) ? alphabet[rnd_below(sizeof(alphabet) - 1)]
				: (char) rnd();

			buf_add(&b, &c, 1);
		}
		if (!diff_and_check(a.data, a.len, b.data, b.len, 0, &res) ||
			dp_edit_cost(a.data, a.len, b.data, b.len) !=
			res.deleted_tokens + res.inserted_tokens)
		{
			printf("# random bytes round %d: %s\n", i, last_error);
			all = 0;
		}
		ipai_diff_free_result(&env, &res);
		buf_free(&a);
		buf_free(&b);
	}
	ok(all, "%d pairs of random bytes: valid and minimal", rounds);
}

static void
test_random_edits(int rounds)
{
	int			i;
	int			valid = 1,
				minimal = 1,
				exact = 1;
	IpaiDiffEnv env = make_env(0);

	for (i = 0; i < rounds; i++)
	{
		Buf			a = BUF_INIT,
					b = BUF_INIT;
		IpaiDiffResult res;
		size_t		cost;

		random_doc(&a, rnd_below(60));
		if (rnd_below(10) == 0)
			random_doc(&b, rnd_below(60));	/* unrelated */
		else
			random_edit(&a, &b, rnd_below(8));
		if (rnd_below(2))
		{
			/* swap sides now and then */
			Buf			t = a;

			a = b;
			b = t;
		}
		if (!diff_and_check(a.data, a.len, b.data, b.len, 0, &res))
		{
			if (valid)
				printf("# random edit %d: %s\n", i, last_error);
			valid = 0;
		}
		else
		{
			cost = dp_edit_cost(a.data, a.len, b.data, b.len);
			if (!res.exact)
				exact = 0;
			if (cost != res.deleted_tokens + res.inserted_tokens)
			{
				if (minimal)
					printf("# random edit %d: cost %zu, minimal %zu\n", i,
						   res.deleted_tokens + res.inserted_tokens, cost);
				minimal = 0;
			}
		}
		ipai_diff_free_result(&env, &res);
		buf_free(&a);
		buf_free(&b);
	}
	ok(valid, "%d random edit pairs rebuild both texts", rounds);
	ok(exact, "%d random edit pairs stay within budget", rounds);
	ok(minimal, "%d random edit pairs are minimal (= dynamic programming)",
	   rounds);
}

/* Larger documents with sparse edits: exact, and minimal against DP. */
static void
test_medium_docs(int rounds)
{
	int			i;
	int			good = 1;
	IpaiDiffEnv env = make_env(0);

	for (i = 0; i < rounds; i++)
	{
		Buf			a = BUF_INIT,
					b = BUF_INIT;
		IpaiDiffResult res;

		random_doc(&a, 400 + rnd_below(800));
		random_edit(&a, &b, rnd_below(40));
		if (!diff_and_check(a.data, a.len, b.data, b.len, 0, &res) ||
			!res.exact ||
			dp_edit_cost(a.data, a.len, b.data, b.len) !=
			res.deleted_tokens + res.inserted_tokens)
		{
			if (good)
				printf("# medium doc %d: %s\n", i, last_error);
			good = 0;
		}
		ipai_diff_free_result(&env, &res);
		buf_free(&a);
		buf_free(&b);
	}
	ok(good, "%d documents of 400..1200 pieces: exact and minimal", rounds);
}

/* Tiny budgets force heuristic cuts and the give-up path: still valid. */
static void
test_small_budgets(int rounds)
{
	int			i;
	int			good = 1;
	int			inexact = 0;
	IpaiDiffEnv env = make_env(0);

	for (i = 0; i < rounds; i++)
	{
		Buf			a = BUF_INIT,
					b = BUF_INIT;
		IpaiDiffResult res;
		uint64_t	budget = 1 + rnd_below(2000);

		random_doc(&a, rnd_below(600));
		if (rnd_below(3) == 0)
			random_doc(&b, rnd_below(600));
		else
			random_edit(&a, &b, rnd_below(60));
		if (!diff_and_check(a.data, a.len, b.data, b.len, budget, &res))
		{
			if (good)
				printf("# small budget %d: %s\n", i, last_error);
			good = 0;
		}
		if (!res.exact)
			inexact++;
		ipai_diff_free_result(&env, &res);
		buf_free(&a);
		buf_free(&b);
	}
	ok(good && inexact > 0,
	   "%d pairs under budgets of 1..2000: valid (%d fell back)",
	   rounds, inexact);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Two unrelated documents of about size bytes each, default budget. */
static void
test_unrelated_large(size_t size, double limit_seconds)
{
	Buf			a = BUF_INIT,
				b = BUF_INIT;
	IpaiDiffResult res;
	IpaiDiffEnv env = make_env(0);
	double		t0,
				t1;
	int			good;

	while (a.len < size)
		random_piece(&a);
	while (b.len < size)
		random_piece(&b);
	t0 = now_seconds();
	good = diff_and_check(a.data, a.len, b.data, b.len, 0, &res);
	t1 = now_seconds();
	printf("# unrelated %zu/%zu bytes: %zu/%zu tokens, %zu chunks, work %llu, "
		   "%.3f s (with checking)\n", a.len, b.len, res.old_tokens,
		   res.new_tokens, res.nchunks, (unsigned long long) res.work, t1 - t0);
	ok(good && !res.exact && t1 - t0 < limit_seconds,
	   "two unrelated documents of %zu bytes: valid, fell back, under %.0f s",
	   size, limit_seconds);
	ipai_diff_free_result(&env, &res);
	buf_free(&a);
	buf_free(&b);
}

/* Fail each allocation in turn: an error comes back and nothing leaks. */
static void
test_out_of_memory(void)
{
	Buf			a = BUF_INIT,
				b = BUF_INIT;
	IpaiDiffEnv env = make_env(0);
	long		k;
	int			good = 1;
	int			succeeded = 0;

	random_doc(&a, 3000);
	random_edit(&a, &b, 30);
	for (k = 0; k < 200 && !succeeded; k++)
	{
		IpaiDiffResult res;
		long		before = live_allocs;
		int			rc;

		alloc_countdown = k;
		rc = ipai_diff_compute(a.data, a.len, b.data, b.len, &env, &res);
		alloc_countdown = -1;
		if (rc == IPAI_DIFF_OK)
		{
			succeeded = 1;
			ipai_diff_free_result(&env, &res);
		}
		else if (rc != IPAI_DIFF_ENOMEM || res.chunks != NULL)
			good = 0;
		if (live_allocs != before)
			good = 0;
	}
	ok(good && succeeded,
	   "allocation failure at each of the first %ld allocations: clean error",
	   k - 1);
	buf_free(&a);
	buf_free(&b);
}

int
main(void)
{
	const char *seed_env = getenv("DIFF_TEST_SEED");
	uint64_t	seed = seed_env ? strtoull(seed_env, NULL, 10)
		: (uint64_t) time(NULL);
	double		scale = getenv("DIFF_TEST_QUICK") ? 0.1 : 1.0;

	rng_state = seed * 2654435761u + 88172645463325252ull;
	printf("# seed %llu (set DIFF_TEST_SEED to repeat)\n",
		   (unsigned long long) seed);
	printf("1..20\n");

	test_tokenizer();
	test_edges();
	test_random_bytes((int) (3000 * scale));
	test_random_edits((int) (5000 * scale));
	test_medium_docs((int) (60 * scale));
	test_small_budgets((int) (1000 * scale));
	test_unrelated_large(300 * 1000, 20.0);
	test_out_of_memory();
	ok(interrupt_calls > 0, "the interrupt hook was called (%ld times)",
	   interrupt_calls);
	ok(live_allocs == 0, "every allocation was released (%ld live)",
	   live_allocs);
	printf("# %d passed, %d failed\n", test_number - failures, failures);
	return failures ? 1 : 0;
}
