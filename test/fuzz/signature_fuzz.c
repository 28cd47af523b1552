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
 * secret at once, and as a payload for the event id hint; every result
 * must be a defined status.
 *
 * Differential part: in the two header roles, each '#' of the input is
 * replaced by the real signature (64 hex digits for Stripe at
 * t=1700000000, the 44 base64 characters for Standard Webhooks), so the
 * fuzzer can build headers that mix the real signature with junk.  The
 * verdict must then equal a deliberately naive model written from the
 * rules in webhook_sig.c's header comment (split as the SDKs split, last
 * "t" wins, an empty Stripe v1 rejects, a v1 matches when its value is the
 * expected text).  Without '#', nothing may verify (that would be a forged
 * HMAC).
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_sig.h"

static const char payload[] = "{\"id\":\"evt_fuzz\",\"object\":\"event\"}";
static const char sw_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static char stripe_sig[65];		/* hex HMAC at t=1700000000 */
static char sw_sig[45];			/* base64 HMAC of msg_fuzz.1700000000.payload */

/* success or a plain rejection: the header roles have no caller error */
static void
expect_defined(ipai_sig_status st)
{
	if (st > IPAI_SIG_BUFFER_TOO_SMALL ||
		(st != IPAI_SIG_OK && !ipai_sig_status_is_rejection(st)))
		abort();
}

/* any defined status but success (the secret may be invalid here) */
static void
expect_not_ok(ipai_sig_status st)
{
	if (st == IPAI_SIG_OK || st > IPAI_SIG_BUFFER_TOO_SMALL)
		abort();
}

static void
init_signatures(void)
{
	char		h[IPAI_STRIPE_HEADER_BUFLEN];
	char		s[IPAI_STDWH_SIGNATURE_BUFLEN];

	if (stripe_sig[0] != '\0')
		return;
	if (ipai_wh_stripe_sign(payload, sizeof(payload) - 1, "whsec_fuzz", 10,
							1700000000, h, sizeof(h), NULL) != IPAI_SIG_OK ||
		ipai_wh_standard_sign(payload, sizeof(payload) - 1, "msg_fuzz", 8,
							  "1700000000", 10, sw_secret, sizeof(sw_secret) - 1,
							  s, sizeof(s), NULL) != IPAI_SIG_OK)
		abort();
	memcpy(stripe_sig, h + strlen("t=1700000000,v1="), 64);
	memcpy(sw_sig, s + 3, 44);
}

/* input with every '#' replaced by sig; exact-size malloc'd copy */
static char *
expand(const char *in, size_t len, const char *sig, size_t *outlen)
{
	size_t		siglen = strlen(sig);
	size_t		n = 0;
	size_t		i;
	char	   *out;

	for (i = 0; i < len; i++)
		n += in[i] == '#' ? siglen : 1;
	out = malloc(n ? n : 1);
	if (out == NULL)
		abort();
	n = 0;
	for (i = 0; i < len; i++)
	{
		if (in[i] == '#')
		{
			memcpy(out + n, sig, siglen);
			n += siglen;
		}
		else
			out[n++] = in[i];
	}
	*outlen = n;
	return out;
}

static bool
text_is(const char *p, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(p, s, len) == 0;
}

/* the naive Stripe model: true when the header must verify */
static bool
stripe_model(const char *h, size_t len)
{
	size_t		start = 0;
	bool		have_t = false;
	bool		t_ok = false;
	bool		empty_v1 = false;
	bool		match = false;

	while (start <= len)
	{
		size_t		end = start;
		size_t		eq;
		size_t		vend;

		while (end < len && h[end] != ',')
			end++;
		eq = start;
		while (eq < end && h[eq] != '=')
			eq++;
		vend = eq < end ? eq + 1 : end;
		while (vend < end && h[vend] != '=')
			vend++;
		/* key h[start, eq), value h[eq + 1, vend) when eq < end */
		if (text_is(h + start, eq - start, "t"))
		{
			have_t = true;
			/* the only t our '#' signature can be valid for */
			t_ok = eq < end && text_is(h + eq + 1, vend - eq - 1, "1700000000");
		}
		else if (text_is(h + start, eq - start, "v1"))
		{
			if (eq == end || vend == eq + 1)
				empty_v1 = true;
			else if (text_is(h + eq + 1, vend - eq - 1, stripe_sig))
				match = true;
		}
		start = end + 1;
	}
	return have_t && t_ok && !empty_v1 && match;
}

/* the naive Standard Webhooks model */
static bool
sw_model(const char *h, size_t len)
{
	size_t		start = 0;
	bool		match = false;

	while (start <= len)
	{
		size_t		end = start;
		size_t		comma;
		size_t		send;

		while (end < len && h[end] != ' ')
			end++;
		comma = start;
		while (comma < end && h[comma] != ',')
			comma++;
		send = comma < end ? comma + 1 : end;
		while (send < end && h[send] != ',')
			send++;
		if (comma < end && text_is(h + start, comma - start, "v1") &&
			text_is(h + comma + 1, send - comma - 1, sw_sig))
			match = true;
		start = end + 1;
	}
	return match;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies: reads past the end are caught by ASan */
	char	   *in = malloc(size ? size : 1);
	char	   *h;
	size_t		hlen;
	ipai_sig_status st;

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	init_signatures();

	h = expand(in, size, stripe_sig, &hlen);
	st = ipai_wh_stripe_verify(payload, sizeof(payload) - 1, h, hlen,
							   "whsec_fuzz", 10, 1700000000, 300, NULL);
	expect_defined(st);
	if ((st == IPAI_SIG_OK) != stripe_model(h, hlen))
		abort();
	{
		ipai_stripe_header ph;

		expect_defined(ipai_wh_stripe_parse_header(h, hlen, &ph));
	}
	free(h);

	h = expand(in, size, sw_sig, &hlen);
	st = ipai_wh_standard_verify(payload, sizeof(payload) - 1,
								 "msg_fuzz", 8, "1700000000", 10,
								 h, hlen, sw_secret, sizeof(sw_secret) - 1,
								 1700000000, 300, NULL);
	expect_defined(st);
	if ((st == IPAI_SIG_OK) != sw_model(h, hlen))
		abort();
	free(h);

	expect_not_ok(ipai_wh_standard_verify(payload, sizeof(payload) - 1,
										  in, size, in, size,
										  "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
										  47, in, size, 1700000000, 300, NULL));
	{
		char		id[IPAI_EVENT_ID_BUFLEN];

		if (ipai_wh_event_id_hint(in, size, id, sizeof(id)) >= sizeof(id))
			abort();
	}
	free(in);
	return 0;
}
