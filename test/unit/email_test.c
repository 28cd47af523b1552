/*
 * email_test.c — unit test of src/email_valid.c, built standalone with
 * AddressSanitizer and UndefinedBehaviorSanitizer by test/t/unit_email.t.
 * Prints TAP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email_valid.h"

static int	n = 0;
static int	failed = 0;

static void
check(const char *s, size_t len, int want, const char *why)
{
	/* a private heap copy, so ASan catches any read past the end */
	char	   *copy = malloc(len ? len : 1);
	int			got;

	memcpy(copy, s, len);
	got = ipai_email_plausible(copy, len);
	free(copy);
	n++;
	if (got == want)
		printf("ok %d - %s\n", n, why);
	else
	{
		failed++;
		printf("not ok %d - %s (got %d)\n", n, why, got);
	}
}

#define OK(s, why)	check((s), strlen(s), 1, (why))
#define BAD(s, why) check((s), strlen(s), 0, (why))

int
main(void)
{
	char		buf[400];
	unsigned	seed = 12345;
	int			i;

	OK("alice@example.com", "plain address");
	OK("first.last+tag@sub.example.co.uk", "dots, plus, subdomains");
	OK("o'brien@example.ie", "apostrophe in local part");
	OK("user@xn--bcher-kva.example", "punycode domain");
	OK("jos\xc3\xa9" "@exampl\xc3\xa9" ".fr", "UTF-8 local part and domain");
	OK("a@b.co", "shortest sensible address");
	BAD("", "empty");
	BAD("alice.example.com", "no @");
	BAD("alice@@example.com", "two @");
	BAD("al ice@example.com", "space in local part");
	BAD("alice@exa mple.com", "space in domain");
	BAD(" alice@example.com", "leading space");
	BAD("alice@example.com ", "trailing space");
	BAD("ali\tce@example.com", "tab");
	BAD("ali\x01" "ce@example.com", "control character");
	BAD("alice\x7f@example.com", "DEL");
	BAD("alice@example", "no dot in domain");
	BAD("alice@example.", "empty last label");
	BAD("alice@.example.com", "empty first label");
	BAD("alice@example..com", "empty middle label");
	BAD("alice@-example.com", "label starting with hyphen");
	BAD("alice@example-.com", "label ending with hyphen");
	BAD("alice@example.c", "one-letter top-level domain");
	BAD("alice@10.0.0.1", "numeric top-level domain (IP address)");
	BAD("alice@[10.0.0.1]", "IP literal");
	BAD("@example.com", "empty local part");
	BAD("alice@", "empty domain");
	BAD(".alice@example.com", "leading dot");
	BAD("alice.@example.com", "trailing dot");
	BAD("al..ice@example.com", "double dot");
	BAD("\"alice\"@example.com", "quoted local part");
	BAD("alice(comment)@example.com", "comment");
	BAD("a,b@example.com", "comma");
	BAD("a<b>@example.com", "angle brackets");
	BAD("alice@exa_mple.com", "underscore in domain");

	/* lengths: local part at most 64, whole address at most 254 */
	memset(buf, 'a', 64);
	strcpy(buf + 64, "@example.com");
	OK(buf, "64-byte local part");
	memset(buf, 'a', 65);
	strcpy(buf + 65, "@example.com");
	BAD(buf, "65-byte local part");
	strcpy(buf, "a@");
	for (i = 0; i < 4; i++)
		strcat(buf, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");	/* 63 */
	buf[254] = '\0';
	buf[251] = '.';
	buf[252] = 'c';
	buf[253] = 'c';
	OK(buf, "254-byte address");
	strcat(buf, "c");
	BAD(buf, "255-byte address");
	memset(buf, 'a', 1);
	strcpy(buf + 1, "@");
	memset(buf + 2, 'b', 64);
	strcpy(buf + 66, ".com");
	BAD(buf, "64-byte domain label");

	/* embedded NUL: the length is what counts */
	check("alice@example.com\0x", 19, 0, "embedded NUL is refused");

	/* random bytes never crash and never read out of bounds */
	for (i = 0; i < 200000; i++)
	{
		size_t		len = (seed = seed * 1103515245u + 12345u) % 300;
		size_t		k;
		char	   *p = malloc(len ? len : 1);

		for (k = 0; k < len; k++)
		{
			seed = seed * 1103515245u + 12345u;
			p[k] = "ab.@-\x80 \t"[(seed >> 16) % 9];
		}
		(void) ipai_email_plausible(p, len);
		free(p);
	}
	n++;
	printf("ok %d - 200000 random inputs without a sanitizer report\n", n);

	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
