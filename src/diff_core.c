/*-------------------------------------------------------------------------
 *
 * diff_core.c
 *		Word diff of two UTF-8 texts: tokenizer, Myers O(ND) search with a
 *		work budget, chunk list.
 *
 * The pipeline:
 *	1. Tokenize both texts (rules below); tokens partition each text, so a
 *	   text is kept as the byte offsets of its token boundaries.
 *	2. Intern every token into a dense integer id (hash table with exact
 *	   byte comparison, so equal ids mean equal bytes, never a collision).
 *	3. Myers' O(ND) search in its linear-space form: find the "middle
 *	   snake" of a box of the edit graph, split the box there, repeat on
 *	   both halves (an explicit work list, no recursion), trimming the
 *	   common prefix and suffix of each box first.  The output is one
 *	   "changed" flag per token on each side.
 *	4. Walk both flag arrays together into chunks '=', '-', '+'.
 *
 * Budget.  Every diagonal step and token comparison counts one unit of
 * work.  The search in a box goes on while its work is small (2^16 units)
 * or at most budget / (4 (N + M)) units per token of progress made by its
 * furthest-reaching path; past that, the box is split at that furthest
 * point, which is valid but may not be minimal.  So sparse edits get the
 * exact answer even in megabyte texts, while dense ones are cut often
 * enough for the budget to cover the whole text.  Once the whole budget is
 * spent, every box still pending is trimmed and then marked deleted and
 * inserted whole.  Either way every token is accounted for exactly once, so
 * the chunks always rebuild both texts.  Time is linear in the input plus
 * the budget.
 *
 * Tokens (the rules the README repeats):
 *	- an HTML tag: '<' followed by an ASCII letter, '/' or '!', through the
 *	  next '>'; a '<' with no '>' after it is punctuation;
 *	- a word: a run of letters and digits: ASCII [A-Za-z0-9] and every
 *	  non-ASCII character not listed below as space, punctuation or CJK;
 *	- a whitespace run: ASCII space, \t \n \v \f \r, U+0085, U+00A0,
 *	  U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000;
 *	- a punctuation or symbol character, one per token: ASCII other than
 *	  letters, digits and spaces; C1 controls; Latin-1 signs (U+00A1..U+00BF
 *	  except ª ² ³ µ ¹ º ¼ ½ ¾, and × ÷); a few script punctuation marks
 *	  (Greek, Armenian, Hebrew, Arabic, Devanagari, Thai); U+200B; general
 *	  punctuation (U+2010..U+2027, U+2030..U+205E); currency (U+20A0..);
 *	  letterlike symbols (U+2100..U+214F); arrows, math, technical, box,
 *	  shapes, dingbats, braille and other symbols (U+2190..U+2BFF);
 *	  supplemental punctuation (U+2E00..); Yijing hexagrams; small form
 *	  variants (U+FE50..); specials (U+FFF0..); mahjong to emoji and
 *	  pictographs (U+1F000..U+1FBFF); and every byte that is not part of
 *	  valid UTF-8 (a token by itself);
 *	- a CJK character, one per token: Han (all blocks and extensions),
 *	  Hiragana, Katakana, Hangul syllables and leading jamo, Bopomofo, CJK
 *	  symbols and punctuation, enclosed and compatibility CJK, fullwidth and
 *	  halfwidth forms;
 *	- combining marks (U+0300.., U+1AB0.., U+1DC0.., U+20D0.., U+FE20..,
 *	  kana voicing marks), variation selectors, emoji skin tones, tag
 *	  characters, Hangul vowel and final jamo, soft hyphen and invisible
 *	  format characters (U+200C, U+200E/F, U+202A..E, U+2060..U+206F,
 *	  U+FEFF) never start a token when a character precedes them: they stay
 *	  with that character's token; after U+200D (zero-width joiner) the next
 *	  non-ASCII, non-space character stays in the token too; two regional
 *	  indicators make one flag token.  So emoji sequences and decomposed
 *	  accents are never cut.
 *
 * Memory: everything from env->alloc, freed before return (also on error).
 * The only way out other than return is env->interrupt.
 *
 *-------------------------------------------------------------------------
 */
#include "diff_core.h"

#include <string.h>

/* ----------------------------------------------------------------
 * Character classes
 * ----------------------------------------------------------------
 */

typedef enum CharClass
{
	CC_WORD,
	CC_SPACE,
	CC_PUNCT,
	CC_CJK,
	CC_EXTEND,					/* stays with the character before it */
	CC_JOIN,					/* U+200D: extend, and glue the next one */
	CC_RI						/* regional indicator: pairs into a flag */
} CharClass;

typedef struct ClassRange
{
	uint32_t	lo;
	uint32_t	hi;
	uint8_t		cls;
} ClassRange;

/*
 * Non-ASCII code points that are not word characters, sorted and disjoint.
 * Everything not listed is CC_WORD.  This is a deliberately small table in
 * the spirit of Unicode's categories and scripts, not a copy of them.
 */
static const ClassRange class_ranges[] = {
	{0x0080, 0x0084, CC_PUNCT},
	{0x0085, 0x0085, CC_SPACE},
	{0x0086, 0x009F, CC_PUNCT},
	{0x00A0, 0x00A0, CC_SPACE},
	{0x00A1, 0x00A9, CC_PUNCT},
	{0x00AB, 0x00AC, CC_PUNCT},
	{0x00AD, 0x00AD, CC_EXTEND},	/* soft hyphen stays inside its word */
	{0x00AE, 0x00B1, CC_PUNCT},
	{0x00B4, 0x00B4, CC_PUNCT},
	{0x00B6, 0x00B8, CC_PUNCT},
	{0x00BB, 0x00BB, CC_PUNCT},
	{0x00BF, 0x00BF, CC_PUNCT},
	{0x00D7, 0x00D7, CC_PUNCT},
	{0x00F7, 0x00F7, CC_PUNCT},
	{0x0300, 0x036F, CC_EXTEND},
	{0x037E, 0x037E, CC_PUNCT},
	{0x0387, 0x0387, CC_PUNCT},
	{0x055A, 0x055F, CC_PUNCT},
	{0x0589, 0x058A, CC_PUNCT},
	{0x05BE, 0x05BE, CC_PUNCT},
	{0x05C0, 0x05C0, CC_PUNCT},
	{0x05C3, 0x05C3, CC_PUNCT},
	{0x05C6, 0x05C6, CC_PUNCT},
	{0x05F3, 0x05F4, CC_PUNCT},
	{0x0600, 0x0605, CC_PUNCT},
	{0x0609, 0x060D, CC_PUNCT},
	{0x061B, 0x061B, CC_PUNCT},
	{0x061D, 0x061F, CC_PUNCT},
	{0x066A, 0x066D, CC_PUNCT},
	{0x06D4, 0x06D4, CC_PUNCT},
	{0x0964, 0x0965, CC_PUNCT},
	{0x0970, 0x0970, CC_PUNCT},
	{0x0E3F, 0x0E3F, CC_PUNCT},
	{0x0E4F, 0x0E4F, CC_PUNCT},
	{0x0E5A, 0x0E5B, CC_PUNCT},
	{0x1100, 0x115F, CC_CJK},	/* Hangul leading jamo */
	{0x1160, 0x11FF, CC_EXTEND},	/* Hangul vowel and final jamo */
	{0x1680, 0x1680, CC_SPACE},
	{0x1AB0, 0x1AFF, CC_EXTEND},
	{0x1DC0, 0x1DFF, CC_EXTEND},
	{0x2000, 0x200A, CC_SPACE},
	{0x200B, 0x200B, CC_PUNCT},	/* zero-width space */
	{0x200C, 0x200C, CC_EXTEND},
	{0x200D, 0x200D, CC_JOIN},
	{0x200E, 0x200F, CC_EXTEND},
	{0x2010, 0x2027, CC_PUNCT},
	{0x2028, 0x2029, CC_SPACE},
	{0x202A, 0x202E, CC_EXTEND},
	{0x202F, 0x202F, CC_SPACE},
	{0x2030, 0x205E, CC_PUNCT},
	{0x205F, 0x205F, CC_SPACE},
	{0x2060, 0x206F, CC_EXTEND},
	{0x20A0, 0x20CF, CC_PUNCT},
	{0x20D0, 0x20FF, CC_EXTEND},
	{0x2100, 0x214F, CC_PUNCT},
	{0x2190, 0x2BFF, CC_PUNCT},
	{0x2E00, 0x2E7F, CC_PUNCT},
	{0x2E80, 0x2FDF, CC_CJK},
	{0x2FF0, 0x2FFF, CC_CJK},
	{0x3000, 0x3000, CC_SPACE},
	{0x3001, 0x3098, CC_CJK},
	{0x3099, 0x309A, CC_EXTEND},	/* combining kana voicing marks */
	{0x309B, 0x4DBF, CC_CJK},
	{0x4DC0, 0x4DFF, CC_PUNCT},
	{0x4E00, 0x9FFF, CC_CJK},
	{0xA960, 0xA97F, CC_CJK},
	{0xAC00, 0xD7AF, CC_CJK},
	{0xD7B0, 0xD7FF, CC_EXTEND},
	{0xF900, 0xFAFF, CC_CJK},
	{0xFE00, 0xFE0F, CC_EXTEND},
	{0xFE10, 0xFE1F, CC_CJK},
	{0xFE20, 0xFE2F, CC_EXTEND},
	{0xFE30, 0xFE4F, CC_CJK},
	{0xFE50, 0xFE6F, CC_PUNCT},
	{0xFEFF, 0xFEFF, CC_EXTEND},
	{0xFF00, 0xFFEF, CC_CJK},
	{0xFFF0, 0xFFFF, CC_PUNCT},
	{0x1B000, 0x1B16F, CC_CJK},
	{0x1F000, 0x1F1E5, CC_PUNCT},
	{0x1F1E6, 0x1F1FF, CC_RI},
	{0x1F200, 0x1F3FA, CC_PUNCT},
	{0x1F3FB, 0x1F3FF, CC_EXTEND},	/* emoji skin tones */
	{0x1F400, 0x1FBFF, CC_PUNCT},
	{0x20000, 0x3FFFF, CC_CJK},
	{0xE0000, 0xE007F, CC_EXTEND},	/* tags */
	{0xE0100, 0xE01EF, CC_EXTEND},	/* variation selectors supplement */
};

#define INVALID_CP	0xFFFFFFFFu

static inline bool
ascii_is_alnum(unsigned char c)
{
	/* c | 0x20 folds A-Z onto a-z and moves nothing else into a-z */
	return (unsigned char) ((c | 0x20) - 'a') < 26 ||
		(unsigned char) (c - '0') < 10;
}

static inline bool
ascii_is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static CharClass
char_class(uint32_t cp)
{
	size_t		lo = 0;
	size_t		hi = sizeof(class_ranges) / sizeof(class_ranges[0]);

	if (cp < 0x80)
	{
		if (ascii_is_alnum((unsigned char) cp))
			return CC_WORD;
		if (ascii_is_space((unsigned char) cp))
			return CC_SPACE;
		return CC_PUNCT;
	}
	if (cp == INVALID_CP)
		return CC_PUNCT;

	/* binary search for the range holding cp */
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (cp < class_ranges[mid].lo)
			hi = mid;
		else if (cp > class_ranges[mid].hi)
			lo = mid + 1;
		else
			return (CharClass) class_ranges[mid].cls;
	}
	return CC_WORD;
}

/*
 * Decode the UTF-8 character at s (avail > 0 bytes left).  Returns its
 * length; a byte that does not start a well-formed, shortest-form character
 * of at most avail bytes decodes as INVALID_CP of length 1.
 */
static size_t
decode_utf8(const unsigned char *s, size_t avail, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t		need;
	uint32_t	v;
	uint32_t	min;
	size_t		i;

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c < 0xC2)
		goto invalid;			/* continuation byte or overlong lead */
	else if (c < 0xE0)
	{
		need = 1;
		v = c & 0x1F;
		min = 0x80;
	}
	else if (c < 0xF0)
	{
		need = 2;
		v = c & 0x0F;
		min = 0x800;
	}
	else if (c < 0xF5)
	{
		need = 3;
		v = c & 0x07;
		min = 0x10000;
	}
	else
		goto invalid;

	if (avail <= need)
		goto invalid;
	for (i = 1; i <= need; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			goto invalid;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		goto invalid;
	*cp = v;
	return need + 1;

invalid:
	*cp = INVALID_CP;
	return 1;
}

/* ----------------------------------------------------------------
 * Tokenizer
 * ----------------------------------------------------------------
 */

typedef struct Tokenizer
{
	const unsigned char *s;
	size_t		len;
	/* cache for find_gt: no '>' in [gt_from, gt_at), and s[gt_at] is '>' */
	size_t		gt_from;
	size_t		gt_at;			/* len when there is none */
} Tokenizer;

/*
 * Offset of the first '>' at or after pos, or len.  Callers ask with
 * increasing pos, and the cache makes the total scanning linear even for
 * text full of unterminated '<'.
 */
static size_t
find_gt(Tokenizer *tk, size_t pos)
{
	const unsigned char *p;

	if (pos >= tk->gt_from && pos <= tk->gt_at)
		return tk->gt_at;
	p = memchr(tk->s + pos, '>', tk->len - pos);
	tk->gt_from = pos;
	tk->gt_at = p ? (size_t) (p - tk->s) : tk->len;
	return tk->gt_at;
}

/*
 * From i, take the characters that continue a token: those of class run
 * (CC_WORD or CC_SPACE for runs; pass CC_EXTEND for single-character tokens)
 * and the extending ones.  Returns the token's end.
 */
static size_t
take_run(const Tokenizer *tk, size_t i, CharClass run)
{
	const unsigned char *s = tk->s;
	size_t		len = tk->len;

	for (;;)
	{
		uint32_t	cp;
		size_t		n;
		CharClass	cls;

		/* ASCII without decoding: only letters, digits and spaces continue */
		if (run == CC_WORD)
		{
			while (i < len && ascii_is_alnum(s[i]))
				i++;
		}
		else if (run == CC_SPACE)
		{
			while (i < len && ascii_is_space(s[i]))
				i++;
		}
		if (i >= len || s[i] < 0x80)
			return i;

		n = decode_utf8(s + i, len - i, &cp);
		if (cp == INVALID_CP)
			return i;
		cls = char_class(cp);
		if (cls == run || cls == CC_EXTEND)
		{
			i += n;
			continue;
		}
		if (cls != CC_JOIN)
			return i;
		i += n;
		/* after a joiner, the next non-ASCII, non-space character joins */
		if (i < len)
		{
			n = decode_utf8(s + i, len - i, &cp);
			if (cp >= 0x80 && cp != INVALID_CP && char_class(cp) != CC_SPACE)
				i += n;
		}
	}
}

/* End of the token that starts at pos (pos < len). */
static size_t
next_token(Tokenizer *tk, size_t pos)
{
	const unsigned char *s = tk->s;
	uint32_t	cp;
	size_t		n;
	size_t		i;

	/* HTML tag */
	if (s[pos] == '<' && pos + 1 < tk->len)
	{
		unsigned char c = s[pos + 1];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			c == '/' || c == '!')
		{
			size_t		gt = find_gt(tk, pos + 1);

			if (gt < tk->len)
				return gt + 1;
		}
	}

	if (s[pos] < 0x80)
	{
		if (ascii_is_alnum(s[pos]))
			return take_run(tk, pos + 1, CC_WORD);
		if (ascii_is_space(s[pos]))
			return take_run(tk, pos + 1, CC_SPACE);
		return take_run(tk, pos + 1, CC_EXTEND);
	}

	n = decode_utf8(s + pos, tk->len - pos, &cp);
	i = pos + n;
	if (cp == INVALID_CP)
		return i;

	switch (char_class(cp))
	{
		case CC_WORD:
			return take_run(tk, i, CC_WORD);
		case CC_SPACE:
			return take_run(tk, i, CC_SPACE);
		case CC_RI:
			if (i < tk->len)
			{
				n = decode_utf8(s + i, tk->len - i, &cp);
				if (cp != INVALID_CP && char_class(cp) == CC_RI)
					i += n;
			}
			return take_run(tk, i, CC_EXTEND);
		case CC_JOIN:
			/* a token that starts with a joiner: let take_run glue on */
			return take_run(tk, pos, CC_EXTEND);
		default:
			return take_run(tk, i, CC_EXTEND);
	}
}

/* How often the long loops call env->interrupt, in tokens or work units. */
#define TOKENS_PER_INTERRUPT	((size_t) 1 << 16)
#define WORK_PER_INTERRUPT		((uint64_t) 1 << 20)

/* Work any box may spend before its search can be cut heuristically. */
#define CUT_MIN_WORK			((uint64_t) 1 << 16)

static void *
env_alloc(const IpaiDiffEnv *env, size_t size)
{
	return env->alloc(env->arg, size ? size : 1);
}

static void
env_release(const IpaiDiffEnv *env, void *ptr)
{
	if (ptr)
		env->release(env->arg, ptr);
}

static void
env_interrupt(const IpaiDiffEnv *env)
{
	if (env->interrupt)
		env->interrupt(env->arg);
}

/* Does n * size overflow size_t? */
static bool
mul_overflows(size_t n, size_t size)
{
	return size != 0 && n > SIZE_MAX / size;
}

/*
 * Tokenize in one pass into an array that starts at a guess (prose averages
 * well over three bytes a token) and doubles when full.
 */
int
ipai_diff_tokenize(const char *text, size_t len, const IpaiDiffEnv *env,
				   size_t **bounds, size_t *ntokens)
{
	Tokenizer	tk;
	size_t		count = 0;
	size_t		cap = len / 3 + 16;
	size_t		pos;
	size_t	   *b;

	*bounds = NULL;
	*ntokens = 0;
	if (mul_overflows(cap, sizeof(size_t)))
		return IPAI_DIFF_ENOMEM;
	b = env_alloc(env, cap * sizeof(size_t));
	if (b == NULL)
		return IPAI_DIFF_ENOMEM;

	tk.s = (const unsigned char *) text;
	tk.len = len;
	tk.gt_from = 1;
	tk.gt_at = 0;				/* empty cache */
	for (pos = 0; pos < len; count++)
	{
		/* keep room for this token and the closing boundary */
		if (count + 2 > cap)
		{
			size_t	   *bigger;

			if (mul_overflows(cap * 2, sizeof(size_t)) ||
				(bigger = env_alloc(env, cap * 2 * sizeof(size_t))) == NULL)
			{
				env_release(env, b);
				return IPAI_DIFF_ENOMEM;
			}
			memcpy(bigger, b, count * sizeof(size_t));
			env_release(env, b);
			b = bigger;
			cap *= 2;
		}
		b[count] = pos;
		pos = next_token(&tk, pos);
		if ((count & (TOKENS_PER_INTERRUPT - 1)) == 0)
			env_interrupt(env);
	}
	b[count] = len;

	*bounds = b;
	*ntokens = count;
	return IPAI_DIFF_OK;
}

/* ----------------------------------------------------------------
 * Interning: token bytes -> dense ids
 * ----------------------------------------------------------------
 */

static uint64_t
hash_bytes(const unsigned char *p, size_t len)
{
	uint64_t	h = 0x9E3779B97F4A7C15ull ^ (uint64_t) len;
	uint64_t	w;

	while (len >= 8)
	{
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	w = 0;
	if (len > 0)
		memcpy(&w, p, len);
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	h ^= h >> 29;
	h *= 0x94D049BB133111EBull;
	h ^= h >> 32;
	return h;
}

typedef struct InternSlot
{
	uint32_t	hash;			/* low bits of the token's hash */
	uint32_t	id_plus_1;		/* 0: empty slot */
} InternSlot;

typedef struct Interner
{
	const IpaiDiffEnv *env;
	InternSlot *slots;
	size_t		mask;			/* slot count - 1 (a power of two) */
	uint32_t	count;			/* distinct tokens so far */
	uint32_t   *rep;			/* per id: its first token's number */
	/* token t < n is old token t, else new token t - n */
	const unsigned char *old_text;
	const unsigned char *new_text;
	const size_t *ba;
	const size_t *bb;
	size_t		n;
} Interner;

/* The bytes of token t (numbered as in Interner). */
static inline const unsigned char *
token_bytes(const Interner *in, size_t t, size_t *len)
{
	if (t < in->n)
	{
		*len = in->ba[t + 1] - in->ba[t];
		return in->old_text + in->ba[t];
	}
	t -= in->n;
	*len = in->bb[t + 1] - in->bb[t];
	return in->new_text + in->bb[t];
}

/* Double the slot table; returns false when out of memory. */
static bool
interner_grow(Interner *in)
{
	size_t		nslots = (in->mask + 1) * 2;
	InternSlot *slots;
	size_t		i;

	if (mul_overflows(nslots, sizeof(InternSlot)))
		return false;
	slots = env_alloc(in->env, nslots * sizeof(InternSlot));
	if (slots == NULL)
		return false;
	memset(slots, 0, nslots * sizeof(InternSlot));
	for (i = 0; i <= in->mask; i++)
	{
		size_t		j;

		if (in->slots[i].id_plus_1 == 0)
			continue;
		j = in->slots[i].hash & (nslots - 1);
		while (slots[j].id_plus_1 != 0)
			j = (j + 1) & (nslots - 1);
		slots[j] = in->slots[i];
	}
	env_release(in->env, in->slots);
	in->slots = slots;
	in->mask = nslots - 1;
	return true;
}

/*
 * The id of token t, assigning the next one when it is new.  in->rep must
 * have room for every token.  Returns false when out of memory.
 */
static bool
intern(Interner *in, size_t t, uint32_t *id)
{
	size_t		len;
	const unsigned char *p = token_bytes(in, t, &len);
	uint32_t	h = (uint32_t) hash_bytes(p, len);
	size_t		i;

	if ((size_t) in->count * 2 >= in->mask + 1 && !interner_grow(in))
		return false;
	for (i = h & in->mask;; i = (i + 1) & in->mask)
	{
		InternSlot *slot = &in->slots[i];

		if (slot->id_plus_1 == 0)
		{
			slot->hash = h;
			slot->id_plus_1 = in->count + 1;
			in->rep[in->count] = (uint32_t) t;
			*id = in->count++;
			return true;
		}
		if (slot->hash == h)
		{
			uint32_t	cand = slot->id_plus_1 - 1;
			size_t		cand_len;
			const unsigned char *cand_p = token_bytes(in, in->rep[cand],
													  &cand_len);

			if (cand_len == len && memcmp(cand_p, p, len) == 0)
			{
				*id = cand;
				return true;
			}
		}
	}
}

/* ----------------------------------------------------------------
 * Myers search
 * ----------------------------------------------------------------
 */

typedef struct DiffCtx
{
	const uint32_t *a;			/* old token ids */
	const uint32_t *b;			/* new token ids */
	uint8_t    *chg_a;			/* per old token: deleted? */
	uint8_t    *chg_b;			/* per new token: inserted? */
	ptrdiff_t  *fd;				/* forward frontier, by diagonal x - y */
	ptrdiff_t  *bd;				/* backward frontier, by diagonal */
	const IpaiDiffEnv *env;
	uint64_t	work;
	uint64_t	budget;
	uint64_t	next_interrupt;
	double		rate;			/* work a box may spend per token of progress */
	bool		heuristic;		/* some box was cut heuristically */
	bool		exhausted;		/* the budget is spent */
} DiffCtx;

/* A frontier entry for a diagonal no path reaches at this step. */
#define NO_X	((ptrdiff_t) -1)

/*
 * Take the work done so far into account: call the interrupt hook now and
 * then, and say whether the budget is spent.
 */
static bool
over_budget(DiffCtx *ctx)
{
	if (ctx->work >= ctx->next_interrupt)
	{
		env_interrupt(ctx->env);
		ctx->next_interrupt = ctx->work + WORK_PER_INTERRUPT;
	}
	return ctx->work > ctx->budget;
}

/*
 * Length of the common run of a and b going forward (from a[0], b[0]) or
 * backward (from a[-1], b[-1]), at most max: one bound check a step.
 */
static inline ptrdiff_t
run_forward(const uint32_t *a, const uint32_t *b, ptrdiff_t max)
{
	const uint32_t *p = a;
	const uint32_t *end = a + max;

	while (p < end && *p == *b)
	{
		p++;
		b++;
	}
	return p - a;
}

static inline ptrdiff_t
run_backward(const uint32_t *a, const uint32_t *b, ptrdiff_t max)
{
	const uint32_t *p = a;
	const uint32_t *end = a - max;

	while (p > end && p[-1] == b[-1])
	{
		p--;
		b--;
	}
	return a - p;
}

static inline ptrdiff_t
min_pd(ptrdiff_t x, ptrdiff_t y)
{
	return x < y ? x : y;
}

/*
 * Find where to split the box old[xoff..xlim) x new[yoff..ylim): a point
 * (*sx, *sy) on a minimal path through it, strictly between its corners.
 * The caller has trimmed the box's common prefix and suffix, and both sides
 * are non-empty.
 *
 * The forward search from (xoff, yoff) and the backward search from (xlim,
 * ylim) advance one edit step at a time; fd[k] / bd[k] hold the furthest
 * (smallest, for bd) x either reached on diagonal k = x - y with the current
 * number of steps, or NO_X.  Paths never leave the box: a move that would is
 * not taken.  When the two searches overlap on a diagonal, the end of the
 * search that just moved is on a minimal path (the cost to reach a point
 * never decreases along a diagonal).
 *
 * When the search costs too much for the progress it makes, or the budget
 * is spent, the split is the point either search got furthest with, which
 * keeps the result valid, not minimal.  Returns
 * false when no usable split exists (the caller then treats the box as
 * replaced whole).
 */
static bool
find_split(DiffCtx *ctx, ptrdiff_t xoff, ptrdiff_t xlim,
		   ptrdiff_t yoff, ptrdiff_t ylim, ptrdiff_t *sx, ptrdiff_t *sy)
{
	const uint32_t *a = ctx->a;
	const uint32_t *b = ctx->b;
	ptrdiff_t  *fd = ctx->fd;
	ptrdiff_t  *bd = ctx->bd;
	ptrdiff_t	dmin = xoff - ylim;
	ptrdiff_t	dmax = xlim - yoff;
	ptrdiff_t	fmid = xoff - yoff;
	ptrdiff_t	bmid = xlim - ylim;
	bool		odd = ((fmid - bmid) % 2) != 0;
	ptrdiff_t	flo = fmid,
				fhi = fmid,
				blo = bmid,
				bhi = bmid;
	ptrdiff_t	x,
				y,
				d,
				k;
	ptrdiff_t	best_x = 0,
				best_y = 0;
	ptrdiff_t	best_progress = -1;
	ptrdiff_t	fprog = 0;		/* progress (x + y) of the forward search */
	ptrdiff_t	bprog = 0;		/* and of the backward search */
	uint64_t	work_at_start = ctx->work;

	/* zero edit steps: the snakes from both corners */
	fd[fmid] = xoff + run_forward(a + xoff, b + yoff,
								  min_pd(xlim - xoff, ylim - yoff));
	bd[bmid] = xlim - run_backward(a + xlim, b + ylim,
								   min_pd(xlim - xoff, ylim - yoff));
	ctx->work += 2;

	for (d = 1;; d++)
	{
		ptrdiff_t	lo,
					hi;

		/* forward step d: diagonals of parity fmid + d within the box */
		lo = fmid - d > dmin ? fmid - d : dmin;
		if ((lo - fmid - d) % 2 != 0)
			lo++;
		hi = fmid + d < dmax ? fmid + d : dmax;
		if ((hi - fmid - d) % 2 != 0)
			hi--;
		for (k = hi; k >= lo; k -= 2)
		{
			ptrdiff_t	start = NO_X;
			ptrdiff_t	t;

			/* right from diagonal k - 1 (delete a[t]) */
			if (k - 1 >= flo && k - 1 <= fhi)
			{
				t = fd[k - 1];
				if (t != NO_X && t < xlim)
					start = t + 1;
			}
			/* down from diagonal k + 1 (insert b[t - k - 1]) */
			if (k + 1 >= flo && k + 1 <= fhi)
			{
				t = fd[k + 1];
				if (t != NO_X && t - (k + 1) < ylim && t > start)
					start = t;
			}
			if (start == NO_X)
			{
				fd[k] = NO_X;
				continue;
			}
			y = start - k;
			x = start + run_forward(a + start, b + y,
									min_pd(xlim - start, ylim - y));
			y = x - k;
			ctx->work += (uint64_t) (x - start) + 1;
			fd[k] = x;
			if ((x + y) - (xoff + yoff) > fprog)
				fprog = (x + y) - (xoff + yoff);
			if (odd && k >= blo && k <= bhi && bd[k] != NO_X && bd[k] <= x)
			{
				*sx = x;
				*sy = y;
				return true;
			}
		}
		flo = lo;
		fhi = hi;

		/* backward step d: diagonals of parity bmid + d */
		lo = bmid - d > dmin ? bmid - d : dmin;
		if ((lo - bmid - d) % 2 != 0)
			lo++;
		hi = bmid + d < dmax ? bmid + d : dmax;
		if ((hi - bmid - d) % 2 != 0)
			hi--;
		for (k = lo; k <= hi; k += 2)
		{
			ptrdiff_t	start = NO_X;
			ptrdiff_t	t;

			/* left from diagonal k + 1 (delete a[t - 1]) */
			if (k + 1 >= blo && k + 1 <= bhi)
			{
				t = bd[k + 1];
				if (t != NO_X && t > xoff)
					start = t - 1;
			}
			/* up from diagonal k - 1 (insert b[t - k]) */
			if (k - 1 >= blo && k - 1 <= bhi)
			{
				t = bd[k - 1];
				if (t != NO_X && t - (k - 1) > yoff &&
					(start == NO_X || t < start))
					start = t;
			}
			if (start == NO_X)
			{
				bd[k] = NO_X;
				continue;
			}
			y = start - k;
			x = start - run_backward(a + start, b + y,
									 min_pd(start - xoff, y - yoff));
			y = x - k;
			ctx->work += (uint64_t) (start - x) + 1;
			bd[k] = x;
			if ((xlim + ylim) - (x + y) > bprog)
				bprog = (xlim + ylim) - (x + y);
			if (!odd && k >= flo && k <= fhi && fd[k] != NO_X && x <= fd[k])
			{
				*sx = x;
				*sy = y;
				return true;
			}
		}
		blo = lo;
		bhi = hi;

		/*
		 * Go on while the work spent on this box is small, or in proportion
		 * to the progress made: sparse edits get their exact answer even in
		 * huge texts, while dense ones are cut often enough that the budget
		 * covers the whole text.
		 */
		if (over_budget(ctx))
			ctx->exhausted = true;
		else if (ctx->work - work_at_start < CUT_MIN_WORK ||
				 (double) (ctx->work - work_at_start) <=
				 ctx->rate * (double) (fprog > bprog ? fprog : bprog))
			continue;

		/*
		 * Too expensive: cut at the point that got furthest from its corner
		 * (x + y for the forward search, the rest for the backward one).
		 */
		ctx->heuristic = true;
		for (k = flo; k <= fhi; k += 2)
		{
			if (fd[k] != NO_X &&
				(2 * fd[k] - k) - (xoff + yoff) > best_progress)
			{
				best_progress = (2 * fd[k] - k) - (xoff + yoff);
				best_x = fd[k];
				best_y = fd[k] - k;
			}
		}
		for (k = blo; k <= bhi; k += 2)
		{
			if (bd[k] != NO_X &&
				(xlim + ylim) - (2 * bd[k] - k) > best_progress)
			{
				best_progress = (xlim + ylim) - (2 * bd[k] - k);
				best_x = bd[k];
				best_y = bd[k] - k;
			}
		}
		if (best_progress <= 0 ||
			(best_x == xoff && best_y == yoff) ||
			(best_x == xlim && best_y == ylim))
			return false;
		*sx = best_x;
		*sy = best_y;
		return true;
	}
}

/* A box of the edit graph still to be aligned. */
typedef struct Box
{
	ptrdiff_t	xoff;
	ptrdiff_t	xlim;
	ptrdiff_t	yoff;
	ptrdiff_t	ylim;
} Box;

/*
 * Align a[0..n) with b[0..m): set chg_a / chg_b for every token that is
 * deleted / inserted.  Returns false when out of memory.
 */
static bool
align(DiffCtx *ctx, ptrdiff_t n, ptrdiff_t m)
{
	const uint32_t *a = ctx->a;
	const uint32_t *b = ctx->b;
	Box		   *stack;
	size_t		depth = 0;
	size_t		cap = 64;

	stack = env_alloc(ctx->env, cap * sizeof(Box));
	if (stack == NULL)
		return false;
	stack[depth].xoff = 0;
	stack[depth].xlim = n;
	stack[depth].yoff = 0;
	stack[depth].ylim = m;
	depth++;

	while (depth > 0)
	{
		Box			box = stack[--depth];
		ptrdiff_t	sx,
					sy;
		ptrdiff_t	span = (box.xlim - box.xoff) + (box.ylim - box.yoff);
		ptrdiff_t	run;

		/* common prefix and suffix are unchanged */
		run = run_forward(a + box.xoff, b + box.yoff,
						  min_pd(box.xlim - box.xoff, box.ylim - box.yoff));
		box.xoff += run;
		box.yoff += run;
		run = run_backward(a + box.xlim, b + box.ylim,
						   min_pd(box.xlim - box.xoff, box.ylim - box.yoff));
		box.xlim -= run;
		box.ylim -= run;
		ctx->work += (uint64_t) (span - (box.xlim - box.xoff) -
								 (box.ylim - box.yoff)) / 2 + 1;
		if (ctx->work >= ctx->next_interrupt)
			(void) over_budget(ctx);

		if (box.xoff == box.xlim || box.yoff == box.ylim ||
			ctx->exhausted ||
			!find_split(ctx, box.xoff, box.xlim, box.yoff, box.ylim, &sx, &sy))
		{
			/* whatever is left on either side is deleted / inserted */
			if (box.xlim > box.xoff)
				memset(ctx->chg_a + box.xoff, 1, box.xlim - box.xoff);
			if (box.ylim > box.yoff)
				memset(ctx->chg_b + box.yoff, 1, box.ylim - box.yoff);
			continue;
		}

		/* push the second half first so the first is aligned first */
		if (depth + 2 > cap)
		{
			Box		   *bigger;

			if (mul_overflows(cap * 2, sizeof(Box)))
			{
				env_release(ctx->env, stack);
				return false;
			}
			bigger = env_alloc(ctx->env, cap * 2 * sizeof(Box));
			if (bigger == NULL)
			{
				env_release(ctx->env, stack);
				return false;
			}
			memcpy(bigger, stack, depth * sizeof(Box));
			env_release(ctx->env, stack);
			stack = bigger;
			cap *= 2;
		}
		stack[depth].xoff = sx;
		stack[depth].xlim = box.xlim;
		stack[depth].yoff = sy;
		stack[depth].ylim = box.ylim;
		depth++;
		stack[depth].xoff = box.xoff;
		stack[depth].xlim = sx;
		stack[depth].yoff = box.yoff;
		stack[depth].ylim = sy;
		depth++;
	}
	env_release(ctx->env, stack);
	return true;
}

/* ----------------------------------------------------------------
 * Readability: among minimal edits, match words rather than spaces
 * ----------------------------------------------------------------
 *
 * Equal-cost alignments differ in what they keep.  "one two three" ->
 * "one three four" costs four tokens whether it keeps the second space
 * (- two + three, - three + four) or the word "three" (- "two ",
 * + " four"); people read the second far better.  So after the search,
 * every stretch between two kept non-space tokens whose only kept tokens
 * are whitespace, and that has changes on both sides, is re-aligned by
 * dynamic programming that first keeps as many tokens as before (never
 * fewer: the cost stays minimal) and then as many non-space tokens as
 * possible; when that keeps no word either, the stretch stays as it was.  Stretches are small in practice; larger ones than
 * POLISH_MAX_CELLS are left alone, and the work counts against the budget.
 */

#define POLISH_MAX_CELLS	4096

/* Where diff_core finds the bytes of tokens, for the pass below. */
typedef struct TokenSource
{
	const unsigned char *old_text;
	const unsigned char *new_text;
	const size_t *ba;
	const size_t *bb;
} TokenSource;

/* Is this token a whitespace run?  (It starts with a space character.) */
static bool
token_is_space(const unsigned char *text, const size_t *bounds, size_t t)
{
	uint32_t	cp;

	if (text[bounds[t]] < 0x80)
		return ascii_is_space(text[bounds[t]]);
	decode_utf8(text + bounds[t], bounds[t + 1] - bounds[t], &cp);
	return cp != INVALID_CP && char_class(cp) == CC_SPACE;
}

/*
 * Re-align old[i0..i1) x new[j0..j1) (see above), using cells for the
 * table.  The caller guarantees the stretch fits POLISH_MAX_CELLS.
 */
static void
polish_stretch(DiffCtx *ctx, const TokenSource *src, uint32_t *cells,
			   size_t i0, size_t i1, size_t j0, size_t j1)
{
	size_t		p = i1 - i0;
	size_t		q = j1 - j0;
	uint32_t	big = (uint32_t) (p + q + 1);
	size_t		i,
				j;

#define CELL(i, j) cells[(i) * (q + 1) + (j)]
	for (j = 0; j <= q; j++)
		CELL(0, j) = 0;
	for (i = 1; i <= p; i++)
	{
		bool		word = !token_is_space(src->old_text, src->ba, i0 + i - 1);

		CELL(i, 0) = 0;
		for (j = 1; j <= q; j++)
		{
			uint32_t	best = CELL(i - 1, j) > CELL(i, j - 1)
				? CELL(i - 1, j) : CELL(i, j - 1);

			if (ctx->a[i0 + i - 1] == ctx->b[j0 + j - 1] &&
				CELL(i - 1, j - 1) + big + word > best)
				best = CELL(i - 1, j - 1) + big + word;
			CELL(i, j) = best;
		}
	}
	ctx->work += (uint64_t) (p + 1) * (q + 1);

	/* no word can be kept: leave the search's alignment as it is */
	if (CELL(p, q) % big == 0)
		return;

	/*
	 * Trace back, dropping tokens wherever that keeps the score: the kept
	 * tokens end up as early as possible, so "one two three" -> "one three
	 * four" reads "one [-two ]three[+ four]".
	 */
	i = p;
	j = q;
	while (i > 0 || j > 0)
	{
		if (i > 0 && CELL(i, j) == CELL(i - 1, j))
		{
			ctx->chg_a[i0 + i - 1] = 1;
			i--;
		}
		else if (j > 0 && CELL(i, j) == CELL(i, j - 1))
		{
			ctx->chg_b[j0 + j - 1] = 1;
			j--;
		}
		else
		{
			/* only a kept pair explains the score here */
			ctx->chg_a[i0 + i - 1] = 0;
			ctx->chg_b[j0 + j - 1] = 0;
			i--;
			j--;
		}
	}
#undef CELL
}

/*
 * Find the stretches worth re-aligning (bounded by kept non-space tokens,
 * changes on both sides, some kept whitespace inside) and polish them.
 * Returns false when out of memory.
 */
static bool
polish(DiffCtx *ctx, const TokenSource *src, size_t n, size_t m)
{
	uint32_t   *cells = NULL;
	size_t		i = 0,
				j = 0;
	size_t		si = 0,
				sj = 0;			/* start of the current stretch */
	bool		del = false,
				ins = false,
				kept_space = false;

	for (;;)
	{
		bool		at_end = (i >= n && j >= m);
		bool		anchor = false;

		if (!at_end && i < n && j < m && !ctx->chg_a[i] && !ctx->chg_b[j])
		{
			if (token_is_space(src->old_text, src->ba, i))
				kept_space = true;
			else
				anchor = true;
		}
		if (at_end || anchor)
		{
			size_t		cells_needed = (i - si + 1) * (j - sj + 1);

			if (del && ins && kept_space && cells_needed <= POLISH_MAX_CELLS &&
				ctx->work <= ctx->budget)
			{
				if (cells == NULL &&
					(cells = env_alloc(ctx->env,
									   POLISH_MAX_CELLS * sizeof(uint32_t))) == NULL)
					return false;
				polish_stretch(ctx, src, cells, si, i, sj, j);
			}
			if (at_end)
				break;
			si = i + 1;
			sj = j + 1;
			del = ins = kept_space = false;
		}
		if (i < n && j < m && !ctx->chg_a[i] && !ctx->chg_b[j])
		{
			i++;
			j++;
			continue;
		}
		if (i < n && ctx->chg_a[i])
		{
			del = true;
			i++;
			continue;
		}
		if (j < m && ctx->chg_b[j])
		{
			ins = true;
			j++;
			continue;
		}
		/* unchanged tokens left unpaired: walk_chunks reports it */
		break;
	}
	env_release(ctx->env, cells);
	return true;
}

/* ----------------------------------------------------------------
 * Chunks
 * ----------------------------------------------------------------
 */

/* Append a chunk, or only count it when out is NULL. */
static inline void
emit_chunk(IpaiDiffChunk *out, size_t *nc, char op,
		   size_t old_off, size_t new_off, size_t len)
{
	if (out)
	{
		out[*nc].op = op;
		out[*nc].old_off = old_off;
		out[*nc].new_off = new_off;
		out[*nc].len = len;
	}
	(*nc)++;
}

/*
 * Walk both flag arrays into chunks (into out, or just counting them when
 * out is NULL).  Unchanged tokens of old and new pair up in order (the
 * alignment guarantees their ids, hence bytes, are equal), so an '=' chunk
 * is a stretch where both sides are unchanged; between two such stretches
 * come the deleted tokens, then the inserted ones.
 */
static int
walk_chunks(const DiffCtx *ctx, const size_t *ba, size_t n,
			const size_t *bb, size_t m, IpaiDiffChunk *out,
			IpaiDiffResult *res)
{
	size_t		i = 0;
	size_t		j = 0;
	size_t		nc = 0;

	res->deleted_tokens = 0;
	res->inserted_tokens = 0;
	while (i < n || j < m)
	{
		size_t		i_start = i;
		size_t		j_start = j;
		size_t		i0 = i;
		size_t		j0 = j;

		while (i < n && j < m && !ctx->chg_a[i] && !ctx->chg_b[j])
		{
			i++;
			j++;
		}
		if (i > i0)
		{
			emit_chunk(out, &nc, IPAI_DIFF_EQUAL, ba[i0], bb[j0],
					   ba[i] - ba[i0]);
			i0 = i;
			j0 = j;
		}
		while (i < n && ctx->chg_a[i])
			i++;
		if (i > i0)
		{
			emit_chunk(out, &nc, IPAI_DIFF_DELETE, ba[i0], bb[j0],
					   ba[i] - ba[i0]);
			res->deleted_tokens += i - i0;
		}
		while (j < m && ctx->chg_b[j])
			j++;
		if (j > j0)
		{
			emit_chunk(out, &nc, IPAI_DIFF_INSERT, ba[i], bb[j0],
					   bb[j] - bb[j0]);
			res->inserted_tokens += j - j0;
		}
		if (i == i_start && j == j_start)
			return IPAI_DIFF_EINTERNAL; /* unchanged tokens left unpaired */
	}
	res->nchunks = nc;
	return IPAI_DIFF_OK;
}

/* ----------------------------------------------------------------
 * Entry points
 * ----------------------------------------------------------------
 */

void
ipai_diff_free_result(const IpaiDiffEnv *env, IpaiDiffResult *result)
{
	env_release(env, result->chunks);
	memset(result, 0, sizeof(*result));
}

int
ipai_diff_compute(const char *old_text, size_t old_len,
				  const char *new_text, size_t new_len,
				  const IpaiDiffEnv *env, IpaiDiffResult *result)
{
	size_t	   *ba = NULL;
	size_t	   *bb = NULL;
	size_t		n = 0;
	size_t		m = 0;
	uint32_t   *ids = NULL;
	uint8_t    *chg = NULL;
	ptrdiff_t  *frontier = NULL;
	Interner	in;
	DiffCtx		ctx;
	TokenSource src;
	size_t		total;
	size_t		i;
	int			rc;

	memset(result, 0, sizeof(*result));
	memset(&in, 0, sizeof(in));
	memset(&ctx, 0, sizeof(ctx));
	if (old_text == NULL)
		old_len = 0;
	if (new_text == NULL)
		new_len = 0;

	rc = ipai_diff_tokenize(old_text, old_len, env, &ba, &n);
	if (rc == IPAI_DIFF_OK)
		rc = ipai_diff_tokenize(new_text, new_len, env, &bb, &m);
	if (rc != IPAI_DIFF_OK)
		goto done;
	total = n + m;
	rc = IPAI_DIFF_ENOMEM;
	/* ids must fit uint32_t and diagonals a ptrdiff_t */
	if (total >= UINT32_MAX || total > (size_t) (PTRDIFF_MAX / 4))
		goto done;

	/* token ids: a first, then b */
	ids = env_alloc(env, total * sizeof(uint32_t));
	in.env = env;
	in.rep = env_alloc(env, total * sizeof(uint32_t));
	in.mask = 1023;
	in.slots = env_alloc(env, (in.mask + 1) * sizeof(InternSlot));
	in.old_text = (const unsigned char *) old_text;
	in.new_text = (const unsigned char *) new_text;
	in.ba = ba;
	in.bb = bb;
	in.n = n;
	if (ids == NULL || in.rep == NULL || in.slots == NULL)
		goto done;
	memset(in.slots, 0, (in.mask + 1) * sizeof(InternSlot));
	for (i = 0; i < total; i++)
	{
		if (!intern(&in, i, &ids[i]))
			goto done;
		if ((i & (TOKENS_PER_INTERRUPT - 1)) == 0)
			env_interrupt(env);
	}
	/* the interner is not needed any more */
	env_release(env, in.rep);
	env_release(env, in.slots);
	in.rep = NULL;
	in.slots = NULL;

	/* changed flags, and both frontiers indexed by diagonal -m-1 .. n+1 */
	chg = env_alloc(env, total);
	frontier = env_alloc(env, 2 * (total + 3) * sizeof(ptrdiff_t));
	if (chg == NULL || frontier == NULL)
		goto done;
	memset(chg, 0, total);

	ctx.a = ids;
	ctx.b = ids + n;
	ctx.chg_a = chg;
	ctx.chg_b = chg + n;
	ctx.fd = frontier + m + 1;
	ctx.bd = frontier + (total + 3) + m + 1;
	ctx.env = env;
	ctx.budget = env->budget ? env->budget : IPAI_DIFF_DEFAULT_BUDGET;
	ctx.next_interrupt = WORK_PER_INTERRUPT;

	/*
	 * Spread the budget over the input: a box may spend this much work per
	 * token its search has advanced.  A quarter of the even share leaves
	 * room for solving the pieces a cut leaves behind.
	 */
	ctx.rate = (double) ctx.budget / (4.0 * (double) (total + 1));

	if (!align(&ctx, (ptrdiff_t) n, (ptrdiff_t) m))
		goto done;
	src.old_text = (const unsigned char *) old_text;
	src.new_text = (const unsigned char *) new_text;
	src.ba = ba;
	src.bb = bb;
	if (!polish(&ctx, &src, n, m))
		goto done;
	/* count the chunks, then fill an array of just that size */
	rc = walk_chunks(&ctx, ba, n, bb, m, NULL, result);
	if (rc != IPAI_DIFF_OK)
		goto done;
	result->chunks = env_alloc(env, result->nchunks * sizeof(IpaiDiffChunk));
	if (result->chunks == NULL)
	{
		rc = IPAI_DIFF_ENOMEM;
		goto done;
	}
	rc = walk_chunks(&ctx, ba, n, bb, m, result->chunks, result);
	if (rc != IPAI_DIFF_OK)
		goto done;
	result->old_tokens = n;
	result->new_tokens = m;
	result->exact = !ctx.heuristic;
	result->work = ctx.work;

done:
	env_release(env, ba);
	env_release(env, bb);
	env_release(env, ids);
	env_release(env, in.rep);
	env_release(env, in.slots);
	env_release(env, chg);
	env_release(env, frontier);
	if (rc != IPAI_DIFF_OK)
		ipai_diff_free_result(env, result);
	return rc;
}
