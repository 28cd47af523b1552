/*-------------------------------------------------------------------------
 *
 * diff_fuzz.c
 *		libFuzzer target for src/diff_core.c: the input's first byte picks a
 *		split point and a budget; the two halves are diffed and the chunks
 *		must rebuild both exactly.  Any mismatch aborts.
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *		test/fuzz/diff_fuzz.c src/diff_core.c -o diff_fuzz
 *	./diff_fuzz -max_total_time=60
 *
 *-------------------------------------------------------------------------
 */
#include "diff_core.h"

#include <stdlib.h>
#include <string.h>

static void *
fuzz_alloc(void *arg, size_t size)
{
	(void) arg;
	return malloc(size);
}

static void
fuzz_release(void *arg, void *ptr)
{
	(void) arg;
	free(ptr);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IpaiDiffEnv env = {fuzz_alloc, fuzz_release, NULL, NULL, 0};
	IpaiDiffResult res;
	size_t		split;
	char	   *old_text;
	char	   *new_text;
	size_t		old_len,
				new_len,
				op = 0,
				np = 0,
				i;

	if (size == 0)
		return 0;
	/* low bits: where to split; high bit: a tiny budget */
	split = size > 1 ? (data[0] & 0x7F) * (size - 1) / 127 : 0;
	env.budget = (data[0] & 0x80) ? 1 + data[0] % 64 : 0;
	data++;
	size--;

	/* exact-size copies, so ASan sees any read past either end */
	old_len = split;
	new_len = size - split;
	old_text = malloc(old_len ? old_len : 1);
	new_text = malloc(new_len ? new_len : 1);
	if (old_text == NULL || new_text == NULL)
		abort();
	if (old_len)
		memcpy(old_text, data, old_len);
	if (new_len)
		memcpy(new_text, data + split, new_len);

	if (ipai_diff_compute(old_text, old_len, new_text, new_len, &env, &res) != 0)
		abort();
	for (i = 0; i < res.nchunks; i++)
	{
		const IpaiDiffChunk *c = &res.chunks[i];

		if (c->len == 0 || c->old_off != op || c->new_off != np)
			abort();
		if (c->op == IPAI_DIFF_EQUAL)
		{
			if (op + c->len > old_len || np + c->len > new_len ||
				memcmp(old_text + op, new_text + np, c->len) != 0)
				abort();
			op += c->len;
			np += c->len;
		}
		else if (c->op == IPAI_DIFF_DELETE)
			op += c->len;
		else if (c->op == IPAI_DIFF_INSERT)
			np += c->len;
		else
			abort();
	}
	if (op != old_len || np != new_len)
		abort();
	ipai_diff_free_result(&env, &res);
	free(old_text);
	free(new_text);
	return 0;
}
