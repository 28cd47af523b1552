/*-------------------------------------------------------------------------
 *
 * diff_tokens.c
 *		Print how src/diff_core.c tokenizes texts, for tests written in other
 *		languages (test/t/diff_reference.t), so they never re-implement the
 *		tokenizer.
 *
 * Input on stdin, repeated: a line with a byte count, then that many bytes.
 * Output: one line per text with the byte length of each of its tokens,
 * separated by spaces (an empty line for an empty text).
 *
 *-------------------------------------------------------------------------
 */
#include "diff_core.h"

#include <stdio.h>
#include <stdlib.h>

static void *
std_alloc(void *arg, size_t size)
{
	(void) arg;
	return malloc(size);
}

static void
std_release(void *arg, void *ptr)
{
	(void) arg;
	free(ptr);
}

int
main(void)
{
	IpaiDiffEnv env = {std_alloc, std_release, NULL, NULL, 0};
	size_t		len;

	while (scanf("%zu", &len) == 1)
	{
		char	   *text = malloc(len ? len : 1);
		size_t	   *bounds;
		size_t		ntokens;
		size_t		i;

		if (text == NULL || getchar() != '\n' ||
			fread(text, 1, len, stdin) != len ||
			ipai_diff_tokenize(text, len, &env, &bounds, &ntokens) != IPAI_DIFF_OK)
		{
			fprintf(stderr, "diff_tokens: bad input or out of memory\n");
			return 1;
		}
		for (i = 0; i < ntokens; i++)
			printf(i ? " %zu" : "%zu", bounds[i + 1] - bounds[i]);
		putchar('\n');
		free(bounds);
		free(text);
	}
	return 0;
}
