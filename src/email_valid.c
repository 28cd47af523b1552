/*-------------------------------------------------------------------------
 *
 * email_valid.c
 *		Is a string a plausible e-mail address?
 *
 * "Plausible", not RFC 5322: the address a person types in an invitation
 * form.  Accepted: local@domain where
 *	- the whole address is at most 254 bytes, the local part 1..64;
 *	- the local part is printable ASCII other than space and
 *	  "(),:;<>@[\]", or UTF-8 characters (SMTPUTF8), with no leading,
 *	  trailing or doubled dot;
 *	- the domain has at least two dot-separated labels, each 1..63 bytes of
 *	  letters, digits, hyphens or UTF-8 characters, not starting or ending
 *	  with a hyphen, and a last label of at least two characters that is
 *	  not all digits.
 * Control characters, spaces, quotes-strings and IP literals are refused.
 * Bytes of 0x80 and above must form well-formed UTF-8 (no overlong forms,
 * no surrogates, nothing above U+10FFFF), and the characters they encode
 * must not be controls (C1), white space (NBSP, U+2000..U+200A, U+3000...)
 * or invisible format characters (zero-width, bidirectional overrides,
 * BOM), which make two different addresses look alike.
 *
 * Plain C with no allocation: safe on any bytes of any length.
 *
 *-------------------------------------------------------------------------
 */
#include "email_valid.h"

#include <string.h>

static bool
local_char_ok(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;			/* control characters and space */
	return strchr("\"(),:;<>@[\\]", c) == NULL;
}

static bool
domain_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '-';
}

/* A code point that has no place in an address: controls, spaces, formats. */
static bool
codepoint_refused(unsigned int cp)
{
	return (cp >= 0x80 && cp <= 0xa0) ||	/* C1 controls, no-break space */
		cp == 0xad ||				/* soft hyphen */
		cp == 0x034f ||				/* combining grapheme joiner */
		cp == 0x061c ||				/* Arabic letter mark */
		cp == 0x1680 ||				/* Ogham space */
		cp == 0x180e ||				/* Mongolian vowel separator */
		(cp >= 0x2000 && cp <= 0x200f) ||	/* spaces, zero-width, LRM/RLM */
		(cp >= 0x2028 && cp <= 0x202f) ||	/* separators, bidi embeddings */
		(cp >= 0x205f && cp <= 0x206f) ||	/* math space, invisible ops */
		cp == 0x3000 ||				/* ideographic space */
		cp == 0xfeff ||				/* BOM, zero-width no-break space */
		(cp >= 0xfff9 && cp <= 0xfffb) ||	/* interlinear annotation */
		(cp >= 0xe0000 && cp <= 0xe007f);	/* tag characters */
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most len bytes) that
 * encodes an acceptable character, or 0 when it is malformed or refused.
 */
static size_t
utf8_char_ok(const unsigned char *s, size_t len)
{
	unsigned int cp;
	size_t		n;
	size_t		k;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
	{
		n = 2;
		cp = s[0] & 0x1f;
	}
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
	{
		n = 3;
		cp = s[0] & 0x0f;
	}
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
	{
		n = 4;
		cp = s[0] & 0x07;
	}
	else
		return 0;				/* continuation byte, overlong lead, > U+10FFFF */
	if (n > len)
		return 0;
	for (k = 1; k < n; k++)
	{
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		(cp >= 0xd800 && cp <= 0xdfff))
		return 0;				/* overlong, out of range, surrogate */
	if (codepoint_refused(cp))
		return 0;
	return n;
}

bool
ipai_email_plausible(const char *s, size_t len)
{
	size_t		at = len;
	size_t		i;
	size_t		label_start;
	int			labels = 0;
	bool		last_all_digits = true;
	size_t		last_len = 0;

	if (s == NULL || len == 0 || len > 254)
		return false;

	/* exactly one '@' */
	for (i = 0; i < len; i++)
	{
		if (s[i] == '@')
		{
			if (at != len)
				return false;
			at = i;
		}
	}
	if (at == len || at == 0 || at > 64 || at + 1 >= len)
		return false;

	/* local part */
	if (s[0] == '.' || s[at - 1] == '.')
		return false;
	for (i = 0; i < at;)
	{
		if ((unsigned char) s[i] >= 0x80)
		{
			size_t		n = utf8_char_ok((const unsigned char *) s + i, at - i);

			if (n == 0)
				return false;
			i += n;
			continue;
		}
		if (!local_char_ok((unsigned char) s[i]))
			return false;
		if (s[i] == '.' && i > 0 && s[i - 1] == '.')
			return false;
		i++;
	}

	/* domain: labels separated by single dots */
	label_start = at + 1;
	for (i = at + 1; i <= len; i++)
	{
		if (i < len && (unsigned char) s[i] >= 0x80)
		{
			size_t		n = utf8_char_ok((const unsigned char *) s + i, len - i);

			if (n == 0)
				return false;
			i += n - 1;			/* the loop adds the last one */
			continue;
		}
		if (i == len || s[i] == '.')
		{
			size_t		l = i - label_start;
			size_t		k;

			if (l == 0 || l > 63)
				return false;
			if (s[label_start] == '-' || s[i - 1] == '-')
				return false;
			last_all_digits = true;
			for (k = label_start; k < i; k++)
				if (s[k] < '0' || s[k] > '9')
					last_all_digits = false;
			last_len = l;
			labels++;
			label_start = i + 1;
			continue;
		}
		if (!domain_char_ok((unsigned char) s[i]))
			return false;
	}
	if (labels < 2 || last_len < 2 || last_all_digits)
		return false;
	return true;
}
