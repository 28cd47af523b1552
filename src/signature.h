/*-------------------------------------------------------------------------
 *
 * signature.h
 *		Server-side C API for webhook signatures, for other C files of the
 *		extension (the Stripe webhook inbox in particular).
 *
 * Include "ipai_saas.h" first.  The checks themselves live in plain C in
 * webhook_sig.c; these wrappers turn a caller's mistake into an ereport and
 * leave the "not verified" outcomes to the caller, who decides how to log
 * and which SQLSTATE to raise (IP002 for ipai.stripe_webhook).
 *
 * Typical use, once per active signing secret during a rotation:
 *
 *		TimestampTz now = GetCurrentTimestamp();
 *		st = ipai_stripe_signature_check(body, body_len, hdr, hdr_len,
 *										 secret, strlen(secret), now, 300);
 *		if (st == IPAI_SIG_OK) -> accept; otherwise try the next secret and,
 *		when none matches, log ipai_sig_status_text(st) with
 *		ipai_stripe_event_id_hint(body, body_len) and raise IP002.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_SIGNATURE_H
#define IPAI_SIGNATURE_H

#include "datatype/timestamp.h"

#include "webhook_sig.h"

/*
 * ipai_stripe_signature_check
 *		Verify a Stripe-Signature header against the raw payload and one
 *		secret (the whole "whsec_..." string is the HMAC key).
 *
 * Returns IPAI_SIG_OK, or a rejection status (ipai_sig_status_is_rejection:
 * malformed header, no v1, mismatch, outside tolerance).  Raises 22023 when
 * tolerance_seconds <= 0 or the secret is empty, and ERROR when memory or
 * OpenSSL fails.  Pure: reads no table or setting, keeps no state; safe in
 * any memory context.  now is compared exactly: |now - t| <= tolerance,
 * fractions of a second included.
 */
extern ipai_sig_status ipai_stripe_signature_check(const char *payload,
												   size_t payload_len,
												   const char *header,
												   size_t header_len,
												   const char *secret,
												   size_t secret_len,
												   TimestampTz now,
												   int32 tolerance_seconds);

/* the same, reduced to "verified or not" */
extern bool ipai_stripe_signature_ok(const char *payload, size_t payload_len,
									 const char *header, size_t header_len,
									 const char *secret, size_t secret_len,
									 TimestampTz now, int32 tolerance_seconds);

/*
 * ipai_standard_webhook_check
 *		The Standard Webhooks counterpart (secret "whsec_<base64>", bare
 *		base64 or "v1,whsec_<base64>"); raises 22023 also for a secret that
 *		is not base64.
 */
extern ipai_sig_status ipai_standard_webhook_check(const char *payload,
												   size_t payload_len,
												   const char *msg_id,
												   size_t id_len,
												   const char *msg_timestamp,
												   size_t ts_len,
												   const char *header,
												   size_t header_len,
												   const char *secret,
												   size_t secret_len,
												   TimestampTz now,
												   int32 tolerance_seconds);

/*
 * ipai_stripe_event_id_hint
 *		The payload's top-level "id" when it is a plain [A-Za-z0-9_-] string
 *		(palloc'd in the current context), else NULL.  Never raises on any
 *		payload.  Unverified: for the log line of a rejected delivery only.
 */
extern char *ipai_stripe_event_id_hint(const char *payload, size_t payload_len);

/*
 * ipai_timestamptz_to_unix
 *		Whole Unix seconds (rounded down) of a finite timestamptz; raises
 *		22008 for infinity.
 */
extern int64 ipai_timestamptz_to_unix(TimestampTz ts);

#endif							/* IPAI_SIGNATURE_H */
