/*-------------------------------------------------------------------------
 *
 * email_valid.c
 *		Is a string a plausible e-mail address?
 *
 * "Plausible", not RFC 5322: the address a person types in an invitation
 * form.  Accepted: local@domain where
 *	- the whole address is at most 254 bytes, the local part 1..64;
 *	- the local part is printable ASCII other than space and
 *	  "(),:;<>@[\]", or UTF-8 bytes (SMTPUTF8), with no leading, trailing
 *	  or doubled dot;
 *	- the domain has at least two dot-separated labels, each 1..63 bytes of
 *	  letters, digits, hyphens or UTF-8 bytes, not starting or ending with
 *	  a hyphen, and a last label of at least two characters that is not
 *	  all digits.
 * Control characters, spaces, quotes-strings and IP literals are refused.
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
	if (c >= 0x80)
		return true;			/* UTF-8 byte; the server has checked encoding */
	if (c <= 0x20 || c == 0x7f)
		return false;			/* control characters and space */
	return strchr("\"(),:;<>@[\\]", c) == NULL;
}

static bool
domain_char_ok(unsigned char c)
{
	return c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '-';
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
	for (i = 0; i < at; i++)
	{
		if (!local_char_ok((unsigned char) s[i]))
			return false;
		if (s[i] == '.' && i > 0 && s[i - 1] == '.')
			return false;
	}

	/* domain: labels separated by single dots */
	label_start = at + 1;
	for (i = at + 1; i <= len; i++)
	{
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
