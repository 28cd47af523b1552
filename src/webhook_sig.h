/*-------------------------------------------------------------------------
 *
 * webhook_sig.h
 *		Webhook signature schemes in plain C: Stripe's Stripe-Signature
 *		header and Standard Webhooks (Svix, Supabase Auth hooks).
 *
 * No server headers: this compiles, together with hmac.c, into the
 * standalone ASan/UBSan unit test and the libFuzzer target.  The server's
 * SQL functions and C API (signature.c, signature.h) wrap it.
 *
 * Every function takes explicit lengths and reads no byte outside the
 * ranges it is given; NUL is an ordinary byte.  A pointer may be NULL only
 * when its length is 0.  Parsing is one or two
 * linear passes with no allocation; a verification allocates one buffer
 * with malloc and frees it before returning (no server error can occur in
 * between, so nothing leaks).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_WEBHOOK_SIG_H
#define IPAI_WEBHOOK_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmac.h"

/*
 * Outcome of a verification.  IPAI_SIG_OK is the only success; the next six
 * are "not verified" (the SQL functions return false); the rest are the
 * caller's mistakes or resource failures (the SQL functions raise).
 */
typedef enum ipai_sig_status
{
	IPAI_SIG_OK = 0,
	IPAI_SIG_MALFORMED_HEADER,	/* header not of the scheme's form */
	IPAI_SIG_NO_SIGNATURE,		/* well-formed, but no v1 signature */
	IPAI_SIG_BAD_TIMESTAMP,		/* timestamp not a canonical integer */
	IPAI_SIG_MISSING_ID,		/* Standard Webhooks: empty message id */
	IPAI_SIG_MISMATCH,			/* no v1 signature matches */
	IPAI_SIG_OUTSIDE_TOLERANCE, /* authentic, but |now - t| > tolerance */
	IPAI_SIG_BAD_SECRET,		/* empty, or (Standard Webhooks) not base64 */
	IPAI_SIG_BAD_TOLERANCE,		/* tolerance <= 0 */
	IPAI_SIG_NO_MEMORY,
	IPAI_SIG_CRYPTO_ERROR,		/* the HMAC function failed */
	IPAI_SIG_BUFFER_TOO_SMALL	/* signing: output buffer too small */
} ipai_sig_status;

/* a short lower-case description, for log messages */
extern const char *ipai_sig_status_text(ipai_sig_status status);

/* true for the statuses that only mean "not verified" */
extern bool ipai_sig_status_is_rejection(ipai_sig_status status);

/* ---- Stripe ---- */

/* "t=" + 19 digits + ",v1=" + 64 hex digits + NUL, rounded up */
#define IPAI_STRIPE_HEADER_BUFLEN 96

/* what a well-formed Stripe-Signature header holds */
typedef struct ipai_stripe_header
{
	int64_t		timestamp;		/* t, Unix seconds */
	const char *t_text;			/* t's digits in the header, signed as is */
	size_t		t_len;
	size_t		n_v1;			/* number of usable v1 values (>= 1) */
} ipai_stripe_header;

extern ipai_sig_status ipai_wh_stripe_parse_header(const char *header,
												size_t header_len,
												ipai_stripe_header *out);

extern ipai_sig_status ipai_wh_stripe_verify(const void *payload,
										  size_t payload_len,
										  const char *header,
										  size_t header_len,
										  const char *secret,
										  size_t secret_len,
										  int64_t now,
										  int32_t tolerance,
										  ipai_hmac_sha256_fn hmac);

/* the same at now + now_us microseconds (0 <= now_us < 10^6), exactly */
extern ipai_sig_status ipai_wh_stripe_verify_us(const void *payload,
												size_t payload_len,
												const char *header,
												size_t header_len,
												const char *secret,
												size_t secret_len,
												int64_t now,
												int32_t now_us,
												int32_t tolerance,
												ipai_hmac_sha256_fn hmac);

extern ipai_sig_status ipai_wh_stripe_sign(const void *payload,
										size_t payload_len,
										const char *secret,
										size_t secret_len,
										int64_t t,
										char *out, size_t outsize,
										ipai_hmac_sha256_fn hmac);

/* ---- Standard Webhooks ---- */

/* "v1," + 44 base64 characters + NUL */
#define IPAI_STDWH_SIGNATURE_BUFLEN 48

extern ipai_sig_status ipai_wh_standard_verify(const void *payload,
										 size_t payload_len,
										 const char *msg_id, size_t id_len,
										 const char *msg_timestamp,
										 size_t ts_len,
										 const char *header,
										 size_t header_len,
										 const char *secret,
										 size_t secret_len,
										 int64_t now,
										 int32_t tolerance,
										 ipai_hmac_sha256_fn hmac);

/* the same at now + now_us microseconds (0 <= now_us < 10^6), exactly */
extern ipai_sig_status ipai_wh_standard_verify_us(const void *payload,
												  size_t payload_len,
												  const char *msg_id, size_t id_len,
												  const char *msg_timestamp,
												  size_t ts_len,
												  const char *header,
												  size_t header_len,
												  const char *secret,
												  size_t secret_len,
												  int64_t now,
												  int32_t now_us,
												  int32_t tolerance,
												  ipai_hmac_sha256_fn hmac);

extern ipai_sig_status ipai_wh_standard_sign(const void *payload,
									   size_t payload_len,
									   const char *msg_id, size_t id_len,
									   const char *msg_timestamp,
									   size_t ts_len,
									   const char *secret,
									   size_t secret_len,
									   char *out, size_t outsize,
									   ipai_hmac_sha256_fn hmac);

/* ---- event id, for logs ---- */

/* longest id copied, plus NUL */
#define IPAI_EVENT_ID_BUFLEN 256

extern size_t ipai_wh_event_id_hint(const char *payload, size_t payload_len,
									char *out, size_t outsize);

/* ---- building blocks, exported for the unit tests ---- */

extern bool ipai_parse_unix_seconds(const char *s, size_t len,
									int64_t *result);
extern bool ipai_within_tolerance(int64_t t, int64_t now, int32_t tolerance);
extern bool ipai_within_tolerance_us(int64_t t, int64_t now, int32_t now_us,
									 int32_t tolerance);
extern bool ipai_hex_decode(const char *src, size_t len,
							unsigned char *dst, size_t dstlen);
extern void ipai_hex_encode(const unsigned char *src, size_t len, char *dst);
extern bool ipai_base64_decode(const char *src, size_t len,
							   unsigned char *dst, size_t dstcap,
							   size_t *outlen);
extern size_t ipai_base64_encode(const unsigned char *src, size_t len,
								 char *dst);

#endif							/* IPAI_WEBHOOK_SIG_H */
