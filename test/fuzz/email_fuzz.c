/*-------------------------------------------------------------------------
 *
 * email_fuzz.c
 *		libFuzzer target for src/email_valid.c: any bytes, any length; an
 *		accepted address must also satisfy the documented invariants.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "email_valid.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy: a read past the end is caught by ASan */
	char	   *in = malloc(size ? size : 1);
	const char *at;

	memcpy(in, data, size);
	if (ipai_email_plausible(in, size))
	{
		/* what was accepted: 3..254 bytes, one '@', no space or control */
		if (size < 3 || size > 254)
			abort();
		at = memchr(in, '@', size);
		if (at == NULL || memchr(at + 1, '@', size - (at - in) - 1) != NULL)
			abort();
		for (size_t i = 0; i < size; i++)
			if ((unsigned char) in[i] <= 0x20 || in[i] == 0x7f)
				abort();
		if (memchr(at, '.', size - (at - in)) == NULL)
			abort();
	}
	free(in);
	return 0;
}
