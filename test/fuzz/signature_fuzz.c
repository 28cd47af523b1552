/*-------------------------------------------------------------------------
 *
 * signature_fuzz.c
 *		libFuzzer target for the webhook signature parsers.
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *		test/fuzz/signature_fuzz.c src/webhook_sig.c src/hmac.c -lcrypto \
 *		-o test/fuzz/build/signature_fuzz
 *	test/fuzz/build/signature_fuzz -max_total_time=60 -max_len=4096 \
 *		-dict=test/fuzz/signature.dict
 *
 * The input is used whole as a Stripe-Signature header, as a Standard
 * Webhooks signature header, as a Standard Webhooks id, timestamp and
 * secret at once, and as a payload for the event id hint.  Every result
 * must be a defined status and nothing may verify (that would mean forging
 * an HMAC).
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_sig.h"

static const char payload[] = "{\"id\":\"evt_fuzz\",\"object\":\"event\"}";

static void
expect_not_ok(ipai_sig_status st)
{
	if (st == IPAI_SIG_OK || st > IPAI_SIG_BUFFER_TOO_SMALL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy: reads past the end are caught by ASan */
	char	   *in = malloc(size ? size : 1);

	if (in == NULL)
		return 0;
	memcpy(in, data, size);

	expect_not_ok(ipai_wh_stripe_verify(payload, sizeof(payload) - 1,
										in, size, "whsec_fuzz", 10,
										1700000000, 300, NULL));
	expect_not_ok(ipai_wh_standard_verify(payload, sizeof(payload) - 1,
										  "msg_fuzz", 8, "1700000000", 10,
										  in, size,
										  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
										  38, 1700000000, 300, NULL));
	expect_not_ok(ipai_wh_standard_verify(payload, sizeof(payload) - 1,
										  in, size, in, size,
										  "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
										  47, in, size, 1700000000, 300, NULL));
	{
		ipai_stripe_header h;
		char		id[IPAI_EVENT_ID_BUFLEN];

		(void) ipai_wh_stripe_parse_header(in, size, &h);
		if (ipai_wh_event_id_hint(in, size, id, sizeof(id)) >= sizeof(id))
			abort();
	}
	free(in);
	return 0;
}
